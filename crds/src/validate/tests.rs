//! Every rule with a failing and a passing case, as tables over valid base objects.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::FieldErrorReason::{self, *};
use super::*;
use crate::kinds::{AnyObject, Kind};

/// A rule case: an object, and the exact (path, reason) pairs validation must report (none: valid).
struct Case {
    name: &'static str,
    object: Value,
    expected: Vec<(&'static str, FieldErrorReason)>,
}

fn case(name: &'static str, object: Value, expected: &[(&'static str, FieldErrorReason)]) -> Case {
    Case {
        name,
        object,
        expected: expected.to_vec(),
    }
}

/// Decodes `object` as the kind its `kind` field names (falling back to Site for a wrong kind, so that
/// the kind rule itself can be tested) and returns its errors as sorted (path, reason) pairs.
fn problems(object: &Value) -> Vec<(String, FieldErrorReason)> {
    let kind = object["kind"]
        .as_str()
        .and_then(Kind::from_kind_str)
        .unwrap_or(Kind::Site);
    let decoded = AnyObject::deserialize_kind(kind, object.clone())
        .unwrap_or_else(|e| panic!("{object}: {e}"));
    let mut found: Vec<_> = match decoded.validate() {
        Ok(()) => Vec::new(),
        Err(errors) => errors.0.into_iter().map(|e| (e.path, e.reason)).collect(),
    };
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let mut expected: Vec<(String, FieldErrorReason)> = case
            .expected
            .iter()
            .map(|(p, r)| (p.to_string(), *r))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(problems(&case.object), expected, "case {:?}", case.name);
    }
}

/// `base` with the value at `path` (object keys, or list indices as numbers) replaced; `Value::Null`
/// removes it. Missing objects on the way are created.
fn set(mut base: Value, path: &[&str], value: Value) -> Value {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut cursor = &mut base;
    for key in parents {
        cursor = match key.parse::<usize>() {
            Ok(i) if cursor.is_array() => &mut cursor[i],
            _ => {
                if cursor.get(*key).is_none() {
                    cursor[*key] = json!({});
                }
                &mut cursor[*key]
            }
        };
    }
    match (cursor, value) {
        (Value::Object(map), Value::Null) => {
            map.remove(*last);
        }
        (Value::Array(items), value) => items[last.parse::<usize>().unwrap()] = value,
        (cursor, value) => cursor[*last] = value,
    }
    base
}

fn object(kind: &str, namespace: Option<&str>, spec: Value) -> Value {
    let mut metadata = json!({"name": "x"});
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec})
}

fn site() -> Value {
    let mut site = object(
        "Site",
        None,
        json!({
            "displayName": "Clinic A",
            "partner": "msp-1",
            "maintenanceWindow": {"start": "02:00", "end": "05:00", "timezone": "America/New_York", "days": ["Sat", "Sun"]},
            "healing": {"mode": "enforce", "maxAttempts": 3, "flapWindow": "24h", "flapThreshold": 3},
            "runbooks": [{"hosts": "role=ehr", "names": ["auditd"], "selector": "tier=baseline", "interval": "15m", "params": {"MAX_AGE": "7"}}],
            "frameworks": ["HIPAA", "SOC2"],
            "exceptions": [{"runbook": "auditd", "hosts": {"names": ["web1"]}, "justification": "vendor appliance",
                            "expires": "2026-01-31T00:00:00Z", "approvedBy": "Dr. Smith"}],
            "notifications": [{"webhook": {"url": "https://hooks.msp.example/osc", "secretRef": "hook"}},
                              {"syslog": {"address": "logs.msp.example:514", "protocol": "tcp"}}]
        }),
    );
    site["metadata"]["name"] = json!("clinic-a");
    site
}

fn host() -> Value {
    object(
        "Host",
        Some("clinic-a"),
        json!({"address": "10.0.0.5", "platform": "linux", "transport": {"type": "ssh", "port": 22, "credentialRef": "ssh"}}),
    )
}

fn appliance() -> Value {
    object(
        "Appliance",
        Some("clinic-a"),
        json!({
            "enrollment": {"publicKey": BASE64.encode([1u8; 32]), "keyId": "appliance-clinic-a"},
            "desiredVersion": "1.4.2",
            "partitions": {"slots": [{"name": "A", "partLabel": "osc-a"}, {"name": "B", "partLabel": "osc-b"}]}
        }),
    )
}

fn credential() -> Value {
    object(
        "Credential",
        Some("clinic-a"),
        json!({"type": "ssh-key", "username": "osc", "data": {"privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----"}}),
    )
}

fn runbook() -> Value {
    object(
        "Runbook",
        None,
        json!({
            "platform": "linux",
            "severity": "high",
            "controls": [{"framework": "HIPAA", "id": "164.312(b)"}, {"framework": "CIS", "id": "4.1.1"}],
            "params": {"MAX_AGE": {"description": "days", "default": "7"}},
            "check": {"interpreter": "sh", "script": "systemctl is-active auditd", "timeout": "30s", "expect": {"exitCode": 0}},
            "remediate": {"interpreter": "bash", "script": "systemctl restart auditd"},
            "verify": {"interpreter": "sh", "script": "systemctl is-active auditd"},
            "interval": "15m"
        }),
    )
}

fn signature(keyid: &str) -> Value {
    json!({"keyid": keyid, "sig": BASE64.encode([2u8; 64])})
}

/// A keyid of the form DSSE derives from a release key.
const RELEASE_KEYID: &str = "ed25519:00112233445566778899aabbccddeeff";

fn release() -> Value {
    object(
        "Release",
        None,
        json!({
            "version": "1.4.2",
            "image": {"url": "https://releases.osiriscare.net/1.4.2.img", "sha256": "ab".repeat(32), "size": 1_000_000},
            "built": "2025-12-01T00:00:00Z",
            "expires": "2026-06-01T00:00:00Z",
            "minControllerVersion": "1.2.0",
            "signatures": [signature(RELEASE_KEYID)],
            "notes": "fixes"
        }),
    )
}

fn rollout() -> Value {
    object(
        "Rollout",
        None,
        json!({
            "release": "v1-4-2",
            "target": {"sites": "ring=early", "appliances": "hw=nuc"},
            "waves": [{"count": 1}, {"count": 5}, {"percent": 25}, {"percent": 100, "successThreshold": 95}],
            "maxFailures": "10%"
        }),
    )
}

#[test]
fn base_objects_are_valid() {
    for object in [
        site(),
        host(),
        appliance(),
        credential(),
        runbook(),
        release(),
        rollout(),
    ] {
        assert_eq!(problems(&object), [], "{object}");
    }
}

#[test]
fn metadata_rules() {
    run(vec![
        case(
            "wrong apiVersion",
            set(site(), &["apiVersion"], json!("v1")),
            &[("apiVersion", NotSupported)],
        ),
        case(
            "wrong kind",
            set(site(), &["kind"], json!("Hots")),
            &[("kind", NotSupported)],
        ),
        case(
            "name missing",
            set(site(), &["metadata", "name"], json!("")),
            &[("metadata.name", Required)],
        ),
        case(
            "site name with a dot",
            set(site(), &["metadata", "name"], json!("clinic.a")),
            &[("metadata.name", Invalid)],
        ),
        case(
            "site name of 64",
            set(site(), &["metadata", "name"], json!("a".repeat(64))),
            &[("metadata.name", TooLong)],
        ),
        case(
            "runbook name with dots",
            set(runbook(), &["metadata", "name"], json!("cis.4.1.1")),
            &[],
        ),
        case(
            "uppercase host name",
            set(host(), &["metadata", "name"], json!("Web1")),
            &[("metadata.name", Invalid)],
        ),
        case(
            "host without namespace",
            set(host(), &["metadata", "namespace"], Value::Null),
            &[("metadata.namespace", Required)],
        ),
        case(
            "host with bad namespace",
            set(host(), &["metadata", "namespace"], json!("Clinic")),
            &[("metadata.namespace", Invalid)],
        ),
        case(
            "site with namespace",
            set(site(), &["metadata", "namespace"], json!("x")),
            &[("metadata.namespace", Forbidden)],
        ),
        case(
            "good labels",
            set(
                host(),
                &["metadata", "labels"],
                json!({"osiriscare.net/role": "ehr", "tier": ""}),
            ),
            &[],
        ),
        case(
            "bad label key",
            set(host(), &["metadata", "labels"], json!({"-role": "ehr"})),
            &[("metadata.labels[-role]", Invalid)],
        ),
        case(
            "bad label value",
            set(host(), &["metadata", "labels"], json!({"role": "e h r"})),
            &[("metadata.labels[role]", Invalid)],
        ),
        case(
            "bad annotation key",
            set(host(), &["metadata", "annotations"], json!({"a b": "x"})),
            &[("metadata.annotations[a b]", Invalid)],
        ),
        case(
            "annotations too large",
            set(
                host(),
                &["metadata", "annotations"],
                json!({"note": "x".repeat(300 * 1024)}),
            ),
            &[("metadata.annotations", TooLong)],
        ),
        case(
            "duplicate finalizer",
            set(
                host(),
                &["metadata", "finalizers"],
                json!(["osiriscare.net/evidence", "osiriscare.net/evidence"]),
            ),
            &[("metadata.finalizers[1]", Duplicate)],
        ),
    ]);
}

#[test]
fn site_rules() {
    let window = ["spec", "maintenanceWindow"];
    let at = |tail: &[&'static str]| -> Vec<&'static str> {
        window.iter().chain(tail).copied().collect()
    };
    run(vec![
        case(
            "display name blank",
            set(site(), &["spec", "displayName"], json!(" ")),
            &[("spec.displayName", Required)],
        ),
        case(
            "partner not a DNS label",
            set(site(), &["spec", "partner"], json!("MSP_1")),
            &[("spec.partner", Invalid)],
        ),
        case(
            "reseller without id",
            set(site(), &["spec", "deploymentMode"], json!("reseller")),
            &[("spec.resellerId", Required)],
        ),
        case(
            "reseller with id",
            set(
                set(site(), &["spec", "deploymentMode"], json!("reseller")),
                &["spec", "resellerId"],
                json!("res-9"),
            ),
            &[],
        ),
        case(
            "direct with reseller id",
            set(site(), &["spec", "resellerId"], json!("res-9")),
            &[("spec.resellerId", Forbidden)],
        ),
        case(
            "start not HH:MM",
            set(site(), &at(&["start"]), json!("2:00")),
            &[("spec.maintenanceWindow.start", Invalid)],
        ),
        case(
            "end past 23:59",
            set(site(), &at(&["end"]), json!("24:00")),
            &[("spec.maintenanceWindow.end", Invalid)],
        ),
        case(
            "empty window",
            set(site(), &at(&["end"]), json!("02:00")),
            &[("spec.maintenanceWindow.end", Invalid)],
        ),
        case(
            "window wrapping midnight",
            set(site(), &at(&["start"]), json!("22:00")),
            &[],
        ),
        case(
            "unknown timezone",
            set(site(), &at(&["timezone"]), json!("Mars/Olympus")),
            &[("spec.maintenanceWindow.timezone", Invalid)],
        ),
        case(
            "duplicate day",
            set(site(), &at(&["days"]), json!(["Sat", "Sat"])),
            &[("spec.maintenanceWindow.days[1]", Duplicate)],
        ),
        case(
            "no attempts",
            set(site(), &["spec", "healing", "maxAttempts"], json!(0)),
            &[("spec.healing.maxAttempts", Invalid)],
        ),
        case(
            "ten attempts",
            set(site(), &["spec", "healing", "maxAttempts"], json!(10)),
            &[],
        ),
        case(
            "zero flap window",
            set(site(), &["spec", "healing", "flapWindow"], json!("0s")),
            &[("spec.healing.flapWindow", Invalid)],
        ),
        case(
            "flap threshold 1",
            set(site(), &["spec", "healing", "flapThreshold"], json!(1)),
            &[("spec.healing.flapThreshold", Invalid)],
        ),
        case(
            "selection without runbooks",
            set(
                set(site(), &["spec", "runbooks", "0", "names"], Value::Null),
                &["spec", "runbooks", "0", "selector"],
                Value::Null,
            ),
            &[("spec.runbooks[0].names", Required)],
        ),
        case(
            "selection by selector only",
            set(site(), &["spec", "runbooks", "0", "names"], Value::Null),
            &[],
        ),
        case(
            "bad hosts selector",
            set(
                site(),
                &["spec", "runbooks", "0", "hosts"],
                json!("role in (ehr"),
            ),
            &[("spec.runbooks[0].hosts", Invalid)],
        ),
        case(
            "bad runbook selector",
            set(site(), &["spec", "runbooks", "0", "selector"], json!("=x")),
            &[("spec.runbooks[0].selector", Invalid)],
        ),
        case(
            "bad runbook name",
            set(
                site(),
                &["spec", "runbooks", "0", "names"],
                json!(["Audit_D"]),
            ),
            &[("spec.runbooks[0].names[0]", Invalid)],
        ),
        case(
            "duplicate runbook name",
            set(
                site(),
                &["spec", "runbooks", "0", "names"],
                json!(["auditd", "auditd"]),
            ),
            &[("spec.runbooks[0].names[1]", Duplicate)],
        ),
        case(
            "interval too short",
            set(site(), &["spec", "runbooks", "0", "interval"], json!("10s")),
            &[("spec.runbooks[0].interval", Invalid)],
        ),
        case(
            "param name with dash",
            set(
                site(),
                &["spec", "runbooks", "0", "params"],
                json!({"max-age": "7"}),
            ),
            &[("spec.runbooks[0].params[max-age]", Invalid)],
        ),
        case(
            "duplicate framework",
            set(site(), &["spec", "frameworks"], json!(["HIPAA", "HIPAA"])),
            &[("spec.frameworks[1]", Duplicate)],
        ),
        case(
            "exception without runbook",
            set(site(), &["spec", "exceptions", "0", "runbook"], json!("")),
            &[("spec.exceptions[0].runbook", Required)],
        ),
        case(
            "exception without hosts",
            set(site(), &["spec", "exceptions", "0", "hosts"], json!({})),
            &[("spec.exceptions[0].hosts", Required)],
        ),
        case(
            "exception by selector",
            set(
                site(),
                &["spec", "exceptions", "0", "hosts"],
                json!({"selector": "role=web"}),
            ),
            &[],
        ),
        case(
            "exception with names and selector",
            set(
                site(),
                &["spec", "exceptions", "0", "hosts", "selector"],
                json!("role=web"),
            ),
            &[("spec.exceptions[0].hosts.selector", Forbidden)],
        ),
        case(
            "exception with bad selector",
            set(
                site(),
                &["spec", "exceptions", "0", "hosts"],
                json!({"selector": "role in ("}),
            ),
            &[("spec.exceptions[0].hosts.selector", Invalid)],
        ),
        case(
            "exception without expiry",
            set(site(), &["spec", "exceptions", "0", "expires"], Value::Null),
            &[("spec.exceptions[0].expires", Required)],
        ),
        case(
            "exception without justification",
            set(
                site(),
                &["spec", "exceptions", "0", "justification"],
                json!(""),
            ),
            &[("spec.exceptions[0].justification", Required)],
        ),
        case(
            "exception without approver",
            set(
                site(),
                &["spec", "exceptions", "0", "approvedBy"],
                json!(""),
            ),
            &[("spec.exceptions[0].approvedBy", Required)],
        ),
        case(
            "empty notification",
            set(site(), &["spec", "notifications", "0"], json!({})),
            &[("spec.notifications[0]", Required)],
        ),
        case(
            "webhook and syslog in one entry",
            set(
                site(),
                &["spec", "notifications", "0", "syslog"],
                json!({"address": "logs:514"}),
            ),
            &[("spec.notifications[0].syslog", Forbidden)],
        ),
        case(
            "plain http webhook",
            set(
                site(),
                &["spec", "notifications", "0", "webhook", "url"],
                json!("http://hooks.local/x"),
            ),
            &[],
        ),
        case(
            "ftp webhook",
            set(
                site(),
                &["spec", "notifications", "0", "webhook", "url"],
                json!("ftp://hooks.local/x"),
            ),
            &[("spec.notifications[0].webhook.url", Invalid)],
        ),
        case(
            "webhook with credentials in the URL",
            set(
                site(),
                &["spec", "notifications", "0", "webhook", "url"],
                json!("https://user:pw@hooks.local/x"),
            ),
            &[("spec.notifications[0].webhook.url", Invalid)],
        ),
        case(
            "bad secretRef",
            set(
                site(),
                &["spec", "notifications", "0", "webhook", "secretRef"],
                json!("Hook"),
            ),
            &[("spec.notifications[0].webhook.secretRef", Invalid)],
        ),
        case(
            "syslog without port",
            set(
                site(),
                &["spec", "notifications", "1", "syslog", "address"],
                json!("logs.msp.example"),
            ),
            &[("spec.notifications[1].syslog.address", Invalid)],
        ),
    ]);
}

#[test]
fn host_rules() {
    let spec = |v: Value| set(host(), &["spec"], v);
    run(vec![
        case(
            "windows over ssh",
            spec(
                json!({"address": "pc1", "platform": "windows", "transport": {"type": "ssh", "credentialRef": "c"}}),
            ),
            &[("spec.transport.type", NotSupported)],
        ),
        case(
            "windows over winrm",
            spec(
                json!({"address": "pc1", "platform": "windows", "transport": {"type": "winrm", "credentialRef": "c"}}),
            ),
            &[],
        ),
        case(
            "linux over winrm",
            spec(
                json!({"address": "h", "platform": "linux", "transport": {"type": "winrm", "credentialRef": "c"}}),
            ),
            &[("spec.transport.type", NotSupported)],
        ),
        case(
            "linux local",
            spec(json!({"address": "h", "platform": "linux", "transport": {"type": "local"}})),
            &[("spec.transport.type", NotSupported)],
        ),
        case(
            "appliance over ssh",
            spec(
                json!({"address": "h", "platform": "appliance", "transport": {"type": "ssh", "credentialRef": "c"}}),
            ),
            &[],
        ),
        case(
            "appliance local by default, no address",
            spec(json!({"platform": "appliance"})),
            &[],
        ),
        case(
            "ssh without address",
            spec(json!({"platform": "linux", "transport": {"credentialRef": "c"}})),
            &[("spec.address", Required)],
        ),
        case(
            "address with scheme",
            set(host(), &["spec", "address"], json!("ssh://h")),
            &[("spec.address", Invalid)],
        ),
        case(
            "local with port and credential",
            spec(
                json!({"platform": "appliance", "transport": {"type": "local", "port": 22, "credentialRef": "c"}}),
            ),
            &[
                ("spec.transport.port", Forbidden),
                ("spec.transport.credentialRef", Forbidden),
            ],
        ),
        case(
            "ssh without credential",
            set(host(), &["spec", "transport", "credentialRef"], Value::Null),
            &[("spec.transport.credentialRef", Required)],
        ),
        case(
            "port zero",
            set(host(), &["spec", "transport", "port"], json!(0)),
            &[("spec.transport.port", Invalid)],
        ),
    ]);
}

#[test]
fn appliance_rules() {
    let slots = ["spec", "partitions", "slots"];
    run(vec![
        case(
            "short public key",
            set(
                appliance(),
                &["spec", "enrollment", "publicKey"],
                json!(BASE64.encode([1u8; 31])),
            ),
            &[("spec.enrollment.publicKey", Invalid)],
        ),
        case(
            "blank key id",
            set(appliance(), &["spec", "enrollment", "keyId"], json!("")),
            &[("spec.enrollment.keyId", Required)],
        ),
        case(
            "not enrolled yet",
            set(appliance(), &["spec", "enrollment"], Value::Null),
            &[],
        ),
        case(
            "version not semver",
            set(appliance(), &["spec", "desiredVersion"], json!("1.4")),
            &[("spec.desiredVersion", Invalid)],
        ),
        case(
            "slot B missing, A twice",
            set(
                appliance(),
                &slots,
                json!([{"name": "A", "partLabel": "osc-a"}, {"name": "A", "partLabel": "osc-a2"}]),
            ),
            &[
                ("spec.partitions.slots[1]", Duplicate),
                ("spec.partitions.slots", Required),
            ],
        ),
        case(
            "partition label too long",
            set(
                appliance(),
                &["spec", "partitions", "slots", "0", "partLabel"],
                json!("a".repeat(37)),
            ),
            &[("spec.partitions.slots[0].partLabel", TooLong)],
        ),
        case(
            "partition label with slash",
            set(
                appliance(),
                &["spec", "partitions", "slots", "0", "partLabel"],
                json!("osc/a"),
            ),
            &[("spec.partitions.slots[0].partLabel", Invalid)],
        ),
        case(
            "both slots on one partition",
            set(
                appliance(),
                &["spec", "partitions", "slots", "1", "partLabel"],
                json!("osc-a"),
            ),
            &[("spec.partitions.slots[1].partLabel", Duplicate)],
        ),
    ]);
}

#[test]
fn credential_rules() {
    run(vec![
        case(
            "blank username",
            set(credential(), &["spec", "username"], json!("")),
            &[("spec.username", Required)],
        ),
        case(
            "unknown data key",
            set(credential(), &["spec", "data", "token"], json!("s3cret")),
            &[("spec.data[token]", NotSupported)],
        ),
        case(
            "ssh key without privateKey",
            set(
                credential(),
                &["spec", "data"],
                json!({"passphrase": "s3cret"}),
            ),
            &[("spec.data[privateKey]", Required)],
        ),
        case(
            "no data (as in a GitOps repo)",
            set(credential(), &["spec", "data"], Value::Null),
            &[],
        ),
        case(
            "winrm with password",
            set(
                credential(),
                &["spec"],
                json!({"type": "winrm", "username": "u", "data": {"password": "p"}}),
            ),
            &[],
        ),
    ]);
}

#[test]
fn credential_errors_never_echo_secret_values() {
    let object = set(
        credential(),
        &["spec", "data", "token"],
        json!("s3cret-value"),
    );
    let decoded = AnyObject::from_json(object).unwrap();
    let errors = decoded.validate().unwrap_err();
    assert!(!errors.to_string().contains("s3cret-value"), "{errors}");
}

#[test]
fn runbook_rules() {
    let digest = || {
        let AnyObject::Runbook(r) = AnyObject::from_json(runbook()).unwrap() else {
            unreachable!()
        };
        r.spec.content_digest()
    };
    run(vec![
        case(
            "powershell on linux",
            set(
                runbook(),
                &["spec", "check", "interpreter"],
                json!("powershell"),
            ),
            &[("spec.check.interpreter", NotSupported)],
        ),
        case(
            "powershell on windows",
            set(
                set(
                    set(runbook(), &["spec", "platform"], json!("windows")),
                    &["spec", "check", "interpreter"],
                    json!("powershell"),
                ),
                &["spec", "remediate", "interpreter"],
                json!("python3"),
            ),
            &[("spec.verify.interpreter", NotSupported)],
        ),
        case(
            "blank script",
            set(runbook(), &["spec", "remediate", "script"], json!("")),
            &[("spec.remediate.script", Required)],
        ),
        case(
            "huge script",
            set(
                runbook(),
                &["spec", "check", "script"],
                json!("#".repeat(64 * 1024 + 1)),
            ),
            &[("spec.check.script", TooLong)],
        ),
        case(
            "zero timeout",
            set(runbook(), &["spec", "check", "timeout"], json!("0s")),
            &[("spec.check.timeout", Invalid)],
        ),
        case(
            "two-hour timeout",
            set(runbook(), &["spec", "check", "timeout"], json!("2h")),
            &[("spec.check.timeout", Invalid)],
        ),
        case(
            "exit code 256",
            set(
                runbook(),
                &["spec", "check", "expect", "exitCode"],
                json!(256),
            ),
            &[("spec.check.expect.exitCode", Invalid)],
        ),
        case(
            "check with every verdict code",
            set(
                runbook(),
                &["spec", "check", "expect"],
                json!({"exitCode": 0, "undecidedExitCode": 2, "notApplicableExitCode": 3}),
            ),
            &[],
        ),
        case(
            "verify may be undecided",
            set(
                runbook(),
                &["spec", "verify", "expect"],
                json!({"undecidedExitCode": 2}),
            ),
            &[],
        ),
        case(
            "verdict codes where they mean nothing",
            set(
                set(
                    runbook(),
                    &["spec", "remediate", "expect"],
                    json!({"undecidedExitCode": 2, "notApplicableExitCode": 3}),
                ),
                &["spec", "verify", "expect"],
                json!({"notApplicableExitCode": 3}),
            ),
            &[
                ("spec.remediate.expect.notApplicableExitCode", Forbidden),
                ("spec.remediate.expect.undecidedExitCode", Forbidden),
                ("spec.verify.expect.notApplicableExitCode", Forbidden),
            ],
        ),
        case(
            "one code, two meanings",
            set(
                runbook(),
                &["spec", "check", "expect"],
                json!({"notApplicableExitCode": 0, "undecidedExitCode": 0}),
            ),
            &[
                ("spec.check.expect.notApplicableExitCode", Invalid),
                ("spec.check.expect.undecidedExitCode", Invalid),
            ],
        ),
        case(
            "verdict codes out of range",
            set(
                runbook(),
                &["spec", "check", "expect"],
                json!({"notApplicableExitCode": 256, "undecidedExitCode": -1}),
            ),
            &[
                ("spec.check.expect.notApplicableExitCode", Invalid),
                ("spec.check.expect.undecidedExitCode", Invalid),
            ],
        ),
        case(
            "verify without remediate",
            set(runbook(), &["spec", "remediate"], Value::Null),
            &[("spec.verify", Forbidden)],
        ),
        case(
            "check-only runbook",
            set(
                set(runbook(), &["spec", "remediate"], Value::Null),
                &["spec", "verify"],
                Value::Null,
            ),
            &[],
        ),
        case(
            "HIPAA control in SOC2 notation",
            set(runbook(), &["spec", "controls", "0", "id"], json!("CC6.1")),
            &[("spec.controls[0].id", Invalid)],
        ),
        case(
            "every framework's notation",
            set(
                runbook(),
                &["spec", "controls"],
                json!([
                    {"framework": "HIPAA", "id": "164.308(a)(1)(ii)(D)"}, {"framework": "SOC2", "id": "CC6.1"},
                    {"framework": "PCI-DSS", "id": "8.3.6"}, {"framework": "NIST-CSF", "id": "PR.AA-01"},
                    {"framework": "NIST-CSF", "id": "PR.AC-1"}, {"framework": "CIS", "id": "5.2.8"}
                ]),
            ),
            &[],
        ),
        case(
            "duplicate control",
            set(
                runbook(),
                &["spec", "controls", "1"],
                json!({"framework": "HIPAA", "id": "164.312(b)"}),
            ),
            &[("spec.controls[1]", Duplicate)],
        ),
        case(
            "param name with dash",
            set(
                runbook(),
                &["spec", "params"],
                json!({"max-age": {"description": "d"}}),
            ),
            &[("spec.params[max-age]", Invalid)],
        ),
        case(
            "param without description",
            set(
                runbook(),
                &["spec", "params", "MAX_AGE", "description"],
                json!(""),
            ),
            &[("spec.params[MAX_AGE].description", Required)],
        ),
        case(
            "interval 30s",
            set(runbook(), &["spec", "interval"], json!("30s")),
            &[("spec.interval", Invalid)],
        ),
        case(
            "weekly interval",
            set(runbook(), &["spec", "interval"], json!("168h")),
            &[],
        ),
        case(
            "malformed digest",
            set(runbook(), &["spec", "digest"], json!("md5:abc")),
            &[("spec.digest", Invalid)],
        ),
        case(
            "stale digest",
            set(
                runbook(),
                &["spec", "digest"],
                json!(format!("sha256:{}", "0".repeat(64))),
            ),
            &[("spec.digest", Invalid)],
        ),
        case(
            "signed with the right digest",
            set(
                set(runbook(), &["spec", "digest"], json!(digest())),
                &["spec", "signatures"],
                json!([signature("runbooks")]),
            ),
            &[],
        ),
        case(
            "signatures without digest",
            set(
                runbook(),
                &["spec", "signatures"],
                json!([signature("runbooks")]),
            ),
            &[("spec.digest", Required)],
        ),
        case(
            "bad signature and repeated key",
            set(
                set(runbook(), &["spec", "digest"], json!(digest())),
                &["spec", "signatures"],
                json!([{"keyid": "runbooks", "sig": "AAAA"}, signature("runbooks")]),
            ),
            &[
                ("spec.signatures[0].sig", Invalid),
                ("spec.signatures[1].keyid", Duplicate),
            ],
        ),
    ]);
}

#[test]
fn digest_error_names_the_expected_digest() {
    let object = set(
        runbook(),
        &["spec", "digest"],
        json!(format!("sha256:{}", "0".repeat(64))),
    );
    let AnyObject::Runbook(r) = AnyObject::from_json(object.clone()).unwrap() else {
        unreachable!()
    };
    let errors = AnyObject::Runbook(r.clone()).validate().unwrap_err();
    assert!(
        errors.to_string().contains(&r.spec.content_digest()),
        "{errors}"
    );
}

#[test]
fn release_rules() {
    run(vec![
        case(
            "version with v",
            set(release(), &["spec", "version"], json!("v1.4.2")),
            &[("spec.version", Invalid)],
        ),
        case(
            "image over http",
            set(
                release(),
                &["spec", "image", "url"],
                json!("http://releases.osiriscare.net/x.img"),
            ),
            &[("spec.image.url", Invalid)],
        ),
        case(
            "uppercase sha256",
            set(
                release(),
                &["spec", "image", "sha256"],
                json!("AB".repeat(32)),
            ),
            &[("spec.image.sha256", Invalid)],
        ),
        case(
            "empty image",
            set(release(), &["spec", "image", "size"], json!(0)),
            &[("spec.image.size", Invalid)],
        ),
        // Signatures arrive with the offline signing ceremony, after the release is in the repo.
        case(
            "not signed yet",
            set(release(), &["spec", "signatures"], json!([])),
            &[],
        ),
        case(
            "signature too short",
            set(
                release(),
                &["spec", "signatures", "0", "sig"],
                json!(BASE64.encode([2u8; 32])),
            ),
            &[("spec.signatures[0].sig", Invalid)],
        ),
        case(
            "keyid that names no key the way appliances look keys up",
            set(
                release(),
                &["spec", "signatures", "0", "keyid"],
                json!("release-2026-a"),
            ),
            &[("spec.signatures[0].keyid", Invalid)],
        ),
        case(
            "missing keyid is reported once, as required",
            set(release(), &["spec", "signatures", "0", "keyid"], json!("")),
            &[("spec.signatures[0].keyid", Required)],
        ),
        case(
            "bad controller version",
            set(
                release(),
                &["spec", "minControllerVersion"],
                json!("latest"),
            ),
            &[("spec.minControllerVersion", Invalid)],
        ),
        case(
            "no expiry",
            set(release(), &["spec", "expires"], Value::Null),
            &[("spec.expires", Required)],
        ),
        case(
            "no build time",
            set(release(), &["spec", "built"], Value::Null),
            &[("spec.built", Required)],
        ),
        case(
            "neither time",
            set(
                set(release(), &["spec", "built"], Value::Null),
                &["spec", "expires"],
                Value::Null,
            ),
            &[("spec.built", Required), ("spec.expires", Required)],
        ),
        case(
            "expires when built",
            set(
                release(),
                &["spec", "expires"],
                json!("2025-12-01T00:00:00Z"),
            ),
            &[("spec.expires", Invalid)],
        ),
        case(
            "expires before built, in another offset",
            set(
                release(),
                &["spec", "expires"],
                json!("2025-12-01T00:30:00+01:00"),
            ),
            &[("spec.expires", Invalid)],
        ),
        case(
            "notes too long",
            set(
                release(),
                &["spec", "notes"],
                json!("n".repeat(64 * 1024 + 1)),
            ),
            &[("spec.notes", TooLong)],
        ),
    ]);
}

#[test]
fn rollout_rules() {
    let waves = |w: Value| set(rollout(), &["spec", "waves"], w);
    run(vec![
        case(
            "no release",
            set(rollout(), &["spec", "release"], json!("")),
            &[("spec.release", Required)],
        ),
        case(
            "bad site selector",
            set(rollout(), &["spec", "target", "sites"], json!("ring in ()")),
            &[("spec.target.sites", Invalid)],
        ),
        case(
            "bad appliance selector",
            set(rollout(), &["spec", "target", "appliances"], json!("!")),
            &[("spec.target.appliances", Invalid)],
        ),
        case("no waves: one of 100% by default", waves(json!([])), &[]),
        case("single final wave", waves(json!([{"percent": 100}])), &[]),
        case(
            "wave without size",
            waves(json!([{}, {"percent": 100}])),
            &[("spec.waves[0]", Required)],
        ),
        case(
            "wave with count and percent",
            waves(json!([{"count": 1, "percent": 10}, {"percent": 100}])),
            &[("spec.waves[0].percent", Forbidden)],
        ),
        case(
            "counts not growing",
            waves(json!([{"count": 5}, {"count": 5}, {"percent": 100}])),
            &[("spec.waves[1].count", Invalid)],
        ),
        case(
            "count after percent",
            waves(json!([{"percent": 10}, {"count": 50}, {"percent": 100}])),
            &[("spec.waves[1].count", Invalid)],
        ),
        case(
            "percents not growing",
            waves(json!([{"percent": 50}, {"percent": 25}, {"percent": 100}])),
            &[("spec.waves[1].percent", Invalid)],
        ),
        case(
            "percent zero",
            waves(json!([{"percent": 0}, {"percent": 100}])),
            &[("spec.waves[0].percent", Invalid)],
        ),
        case(
            "waves that stop short",
            waves(json!([{"count": 1}, {"percent": 50}])),
            &[("spec.waves[1]", Invalid)],
        ),
        case(
            "threshold zero",
            waves(json!([{"percent": 100, "successThreshold": 0}])),
            &[("spec.waves[0].successThreshold", Invalid)],
        ),
        case(
            "maxFailures over 100%",
            set(rollout(), &["spec", "maxFailures"], json!("150%")),
            &[("spec.maxFailures", Invalid)],
        ),
        case(
            "maxFailures as a count",
            set(rollout(), &["spec", "maxFailures"], json!(3)),
            &[],
        ),
    ]);
}

#[test]
fn syntax_errors_fail_at_decode_with_the_allowed_form() {
    let cases = [
        (
            set(runbook(), &["spec", "interval"], json!("15 minutes")),
            "e.g. \"90s\"",
        ),
        (
            set(rollout(), &["spec", "maxFailures"], json!("ten")),
            "e.g. \"3\" or \"10%\"",
        ),
        (
            set(site(), &["spec", "frameworks"], json!(["HIPPA"])),
            "expected one of `HIPAA`",
        ),
        (
            set(
                site(),
                &["spec", "maintenanceWindow", "days"],
                json!(["Monday"]),
            ),
            "expected one of `Mon`",
        ),
        (
            set(
                site(),
                &["spec", "exceptions", "0", "expires"],
                json!("next year"),
            ),
            "input contains invalid characters",
        ),
    ];
    for (object, expected) in cases {
        let err = AnyObject::from_json(object).unwrap_err().to_string();
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
    }
}

#[test]
fn reasons_map_to_kubernetes_status_causes() {
    let cases = [
        (Required, "FieldValueRequired"),
        (Invalid, "FieldValueInvalid"),
        (NotSupported, "FieldValueNotSupported"),
        (Duplicate, "FieldValueDuplicate"),
        (TooLong, "FieldValueTooLong"),
        (Forbidden, "FieldValueForbidden"),
        (NotFound, "FieldValueNotFound"),
    ];
    for (reason, cause) in cases {
        assert_eq!(reason.status_cause(), cause);
    }
}

#[test]
fn display_is_one_kubernetes_style_line_per_error() {
    let object = set(
        set(
            site(),
            &["spec", "maintenanceWindow", "start"],
            json!("25:00"),
        ),
        &["spec", "displayName"],
        json!(""),
    );
    let errors = AnyObject::from_json(object)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "spec.displayName: Required value: a display name is required\n\
         spec.maintenanceWindow.start: Invalid value: \"25:00\": must be HH:MM in 24-hour time, e.g. 02:00 or 23:30"
    );
}

#[test]
fn long_values_are_shortened_in_messages() {
    let object = set(
        runbook(),
        &["spec", "digest"],
        json!(format!("sha256:{}", "z".repeat(200))),
    );
    let errors = AnyObject::from_json(object)
        .unwrap()
        .validate()
        .unwrap_err();
    let value = errors.0[0].value.as_deref().unwrap();
    assert_eq!(value.chars().count(), 81, "{value}");
    assert!(value.ends_with('…'));
}

/// A consistent set: the site, its host and credentials, runbooks, a release and a rollout.
fn site_set() -> Vec<Value> {
    let labelled = |mut v: Value, labels: Value| {
        v["metadata"]["labels"] = labels;
        v
    };
    let named = |mut v: Value, name: &str| {
        v["metadata"]["name"] = json!(name);
        v
    };
    vec![
        site(),
        labelled(named(host(), "web1"), json!({"role": "ehr"})),
        named(credential(), "ssh"),
        named(
            set(
                credential(),
                &["spec"],
                json!({"type": "password", "username": "hook"}),
            ),
            "hook",
        ),
        named(appliance(), "appliance"),
        labelled(named(runbook(), "auditd"), json!({"tier": "baseline"})),
        named(release(), "v1-4-2"),
        rollout(),
    ]
}

fn reference_problems(objects: Vec<Value>) -> Vec<(String, String, FieldErrorReason)> {
    let objects: Vec<AnyObject> = objects
        .into_iter()
        .map(|o| AnyObject::from_json(o).unwrap())
        .collect();
    for object in &objects {
        assert_eq!(object.validate(), Ok(()), "{object:?}");
    }
    let mut found: Vec<_> = validate_references(&objects)
        .into_iter()
        .map(|e| {
            let who = format!("{} {}", e.kind, e.name);
            (who, e.error.path, e.error.reason)
        })
        .collect();
    found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    found
}

/// Replaces the object at `index` of the consistent set.
fn changed(index: usize, change: impl FnOnce(Value) -> Value) -> Vec<Value> {
    let mut set = site_set();
    set[index] = change(set[index].clone());
    set
}

/// A name, a set of objects, and the (object, path, reason) triples expected from it.
type ReferenceCase = (
    &'static str,
    Vec<Value>,
    Vec<(&'static str, &'static str, FieldErrorReason)>,
);

#[test]
fn reference_rules() {
    let cases: Vec<ReferenceCase> = vec![
        ("consistent set", site_set(), vec![]),
        (
            "host in a site that does not exist",
            changed(1, |h| set(h, &["metadata", "namespace"], json!("clinic-b"))),
            // Its credential and the exception naming it are left behind in clinic-a.
            vec![
                ("Host web1", "metadata.namespace", NotFound),
                ("Host web1", "spec.transport.credentialRef", NotFound),
                ("Site clinic-a", "spec.exceptions[0].hosts.names[0]", NotFound),
            ],
        ),
        (
            "credentialRef to nothing",
            changed(1, |h| set(h, &["spec", "transport", "credentialRef"], json!("nope"))),
            vec![("Host web1", "spec.transport.credentialRef", NotFound)],
        ),
        (
            "ssh with a winrm credential",
            changed(2, |c| set(c, &["spec"], json!({"type": "winrm", "username": "u"}))),
            vec![("Host web1", "spec.transport.credentialRef", Invalid)],
        ),
        (
            "rollout of a missing release",
            changed(7, |r| set(r, &["spec", "release"], json!("v9"))),
            vec![("Rollout x", "spec.release", NotFound)],
        ),
        (
            "selection and exception name a missing runbook",
            changed(5, |r| set(r, &["metadata", "name"], json!("auditd-v2"))),
            vec![
                ("Site clinic-a", "spec.exceptions[0].runbook", NotFound),
                ("Site clinic-a", "spec.runbooks[0].names[0]", NotFound),
            ],
        ),
        (
            "exception for a missing host",
            changed(0, |s| set(s, &["spec", "exceptions", "0", "hosts", "names"], json!(["web9"]))),
            vec![("Site clinic-a", "spec.exceptions[0].hosts.names[0]", NotFound)],
        ),
        (
            "linux runbook named for a windows host",
            changed(1, |h| {
                set(h, &["spec"], json!({"address": "pc1", "platform": "windows", "transport": {"credentialRef": "win"}}))
            })
            .into_iter()
            .chain([set(
                set(credential(), &["spec"], json!({"type": "winrm", "username": "u"})),
                &["metadata", "name"],
                json!("win"),
            )])
            .collect(),
            vec![("Site clinic-a", "spec.runbooks[0].names[0]", Invalid)],
        ),
        (
            "host outside the entry's selector is not checked",
            changed(1, |h| {
                set(
                    set(h, &["spec"], json!({"address": "pc1", "platform": "windows", "transport": {"credentialRef": "win"}})),
                    &["metadata", "labels"],
                    json!({"role": "desk"}),
                )
            })
            .into_iter()
            .chain([set(
                set(credential(), &["spec"], json!({"type": "winrm", "username": "u"})),
                &["metadata", "name"],
                json!("win"),
            )])
            .collect(),
            vec![],
        ),
        (
            "undeclared parameter",
            changed(0, |s| set(s, &["spec", "runbooks", "0", "params"], json!({"MAX_AGE": "7", "COLOUR": "red"}))),
            vec![("Site clinic-a", "spec.runbooks[0].params[COLOUR]", NotSupported)],
        ),
        (
            "parameter without default not given",
            changed(5, |r| set(r, &["spec", "params", "OWNER"], json!({"description": "who"}))),
            vec![("Site clinic-a", "spec.runbooks[0].params[OWNER]", Required)],
        ),
        (
            "webhook secret is an ssh key",
            changed(3, |c| set(c, &["spec"], json!({"type": "ssh-key", "username": "u"}))),
            vec![("Site clinic-a", "spec.notifications[0].webhook.secretRef", Invalid)],
        ),
        (
            "webhook secret missing",
            changed(0, |s| set(s, &["spec", "notifications", "0", "webhook", "secretRef"], json!("gone"))),
            vec![("Site clinic-a", "spec.notifications[0].webhook.secretRef", NotFound)],
        ),
        (
            "the same host twice",
            site_set().into_iter().chain([set(host(), &["metadata", "name"], json!("web1"))]).collect(),
            vec![("Host web1", "metadata.name", Duplicate)],
        ),
    ];
    for (name, objects, expected) in cases {
        let expected: Vec<(String, String, FieldErrorReason)> = expected
            .into_iter()
            .map(|(who, path, reason)| (who.to_owned(), path.to_owned(), reason))
            .collect();
        assert_eq!(reference_problems(objects), expected, "case {name:?}");
    }
}

#[test]
fn platform_mismatch_names_the_host() {
    let mut objects = changed(1, |h| {
        set(
            h,
            &["spec"],
            json!({"address": "pc1", "platform": "windows", "transport": {"credentialRef": "win"}}),
        )
    });
    objects.push(set(
        set(
            credential(),
            &["spec"],
            json!({"type": "winrm", "username": "u"}),
        ),
        &["metadata", "name"],
        json!("win"),
    ));
    let objects: Vec<AnyObject> = objects
        .into_iter()
        .map(|o| AnyObject::from_json(o).unwrap())
        .collect();
    let errors = validate_references(&objects);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = errors[0].to_string();
    assert!(
        line.starts_with("Site clinic-a: spec.runbooks[0].names[0]: Invalid value: \"auditd\""),
        "{line}"
    );
    assert!(line.contains("host(s) web1"), "{line}");
}
