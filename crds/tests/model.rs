//! The resource model end to end, from YAML as a person writes it: decoding, defaults, validation and
//! reference checks together.

use osc_crds::kinds::Kind;
use osc_crds::{AnyObject, FieldErrorReason, validate_references};
use serde::Deserialize;

/// Decodes every document of a YAML stream, taking each document's kind from its `kind` field.
fn decode_all(yaml: &str) -> Vec<AnyObject> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| {
            let value = serde_json::Value::deserialize(document).expect("valid YAML");
            AnyObject::from_json(value).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

const BROKEN_SITE: &str = r#"
apiVersion: osiriscare.net/v1alpha1
kind: Site
metadata:
  name: Clinic_A
  namespace: nope
  labels:
    "-tier": gold
spec:
  displayName: ""
  partner: msp-1
  deploymentMode: reseller
  maintenanceWindow:
    start: "25:00"
    end: "5:00"
    timezone: America/NewYork
  healing:
    maxAttempts: 0
    flapWindow: 0s
  runbooks:
    - hosts: "role in (ehr"
      names: [auditd, auditd]
    - hosts: role=web
  frameworks: [HIPAA, HIPAA]
  exceptions:
    - runbook: auditd
      hosts: {}
      justification: ""
      approvedBy: Dr. Smith
  notifications:
    - webhook: {url: "ftp://hooks.msp.example/osc"}
    - {}
"#;

#[test]
fn a_broken_manifest_reports_every_problem_with_its_path() {
    use FieldErrorReason::*;
    let site = decode_all(BROKEN_SITE).remove(0);
    let errors = site.validate().unwrap_err();
    let mut found: Vec<(&str, FieldErrorReason)> =
        errors.iter().map(|e| (e.path.as_str(), e.reason)).collect();
    found.sort_by_key(|(path, _)| *path);
    let mut expected = vec![
        ("metadata.name", Invalid),
        ("metadata.namespace", Forbidden),
        ("metadata.labels[-tier]", Invalid),
        ("spec.displayName", Required),
        ("spec.resellerId", Required),
        ("spec.maintenanceWindow.start", Invalid),
        ("spec.maintenanceWindow.end", Invalid),
        ("spec.maintenanceWindow.timezone", Invalid),
        ("spec.healing.maxAttempts", Invalid),
        ("spec.healing.flapWindow", Invalid),
        ("spec.runbooks[0].hosts", Invalid),
        ("spec.runbooks[0].names[1]", Duplicate),
        ("spec.runbooks[1].names", Required),
        ("spec.frameworks[1]", Duplicate),
        ("spec.exceptions[0].hosts", Required),
        ("spec.exceptions[0].justification", Required),
        ("spec.exceptions[0].expires", Required),
        ("spec.notifications[0].webhook.url", Invalid),
        ("spec.notifications[1]", Required),
    ];
    expected.sort_by_key(|(path, _)| *path);
    assert_eq!(found, expected, "\n{errors}");
    // One line per problem, each naming its path.
    assert_eq!(errors.to_string().lines().count(), expected.len());
}

const CLINIC: &str = r#"
apiVersion: osiriscare.net/v1alpha1
kind: Site
metadata:
  name: clinic-a
  labels: {ring: early}
spec:
  displayName: Clinic A
  partner: msp-1
  maintenanceWindow: {start: "22:00", end: "02:00", timezone: America/New_York, days: [Fri, Sat]}
  runbooks:
    - hosts: os=linux
      names: [auditd]
    - selector: baseline=windows
      hosts: os=windows
      params: {MAX_AGE_DAYS: "30"}
  exceptions:
    - runbook: auditd
      hosts: {names: [lab-pc]}
      justification: Lab analyser vendor forbids changes to its audit setup.
      expires: 2026-06-30T00:00:00Z
      approvedBy: Dr. Jane Smith (security officer)
  notifications:
    - syslog: {address: "logs.msp.example:6514", protocol: tcp}
---
apiVersion: osiriscare.net/v1alpha1
kind: Host
metadata: {name: ehr01, namespace: clinic-a, labels: {os: linux, role: ehr}}
spec: {address: ehr01.clinic-a.internal, platform: linux, transport: {credentialRef: osc-ssh}}
---
apiVersion: osiriscare.net/v1alpha1
kind: Host
metadata: {name: lab-pc, namespace: clinic-a, labels: {os: windows}}
spec: {address: 10.20.0.31, platform: windows, transport: {credentialRef: osc-winrm}}
---
apiVersion: osiriscare.net/v1alpha1
kind: Credential
metadata: {name: osc-ssh, namespace: clinic-a}
spec: {type: ssh-key, username: osc}
---
apiVersion: osiriscare.net/v1alpha1
kind: Credential
metadata: {name: osc-winrm, namespace: clinic-a}
spec: {type: winrm, username: OSC\svc}
---
apiVersion: osiriscare.net/v1alpha1
kind: Appliance
metadata: {name: appliance, namespace: clinic-a}
spec: {}
---
apiVersion: osiriscare.net/v1alpha1
kind: Runbook
metadata: {name: auditd}
spec:
  platform: linux
  severity: high
  controls: [{framework: HIPAA, id: "164.312(b)"}]
  check: {interpreter: sh, script: "systemctl is-active --quiet auditd"}
  remediate: {interpreter: sh, script: "systemctl enable --now auditd"}
---
apiVersion: osiriscare.net/v1alpha1
kind: Runbook
metadata: {name: password-age, labels: {baseline: windows}}
spec:
  platform: windows
  severity: medium
  controls: [{framework: HIPAA, id: "164.308(a)(5)(ii)(D)"}, {framework: CIS, id: "1.1.2"}]
  params: {MAX_AGE_DAYS: {description: Longest password age in days}}
  check: {interpreter: powershell, script: "exit 0", expect: {outputContains: OK}}
---
apiVersion: osiriscare.net/v1alpha1
kind: Rollout
metadata: {name: early-ring}
spec:
  release: v1-4-2
  target: {sites: ring=early}
  waves: [{count: 1, pauseAfter: true}, {percent: 100}]
  maxFailures: 1
---
apiVersion: osiriscare.net/v1alpha1
kind: Release
metadata: {name: v1-4-2}
spec:
  version: 1.4.2
  image: {url: "https://releases.osiriscare.net/osiris-1.4.2.img", sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", size: 734003200}
  built: 2026-06-01T08:00:00Z
  expires: 2026-12-31T00:00:00Z
  signatures: [{keyid: "ed25519:6a0c2a3e9f4b7d1c5e8f0a2b4c6d8e0f", sig: "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kA=="}]
"#;

#[test]
fn a_consistent_site_validates_and_survives_defaults_and_json() {
    let mut objects = decode_all(CLINIC);
    let kinds: Vec<Kind> = objects.iter().map(AnyObject::kind).collect();
    assert_eq!(kinds.len(), 10);
    for kind in Kind::ALL {
        assert!(kinds.contains(&kind), "{kind} missing from the example");
    }
    for object in &mut objects {
        object
            .validate()
            .unwrap_or_else(|e| panic!("{object:?}:\n{e}"));
        object.apply_defaults();
        object
            .validate()
            .unwrap_or_else(|e| panic!("defaulted {object:?}:\n{e}"));
        let again = AnyObject::from_json(object.to_json()).unwrap();
        assert_eq!(&again, object, "JSON round trip");
    }
    assert_eq!(validate_references(&objects), []);
}

#[test]
fn reference_errors_name_the_object_and_the_field() {
    let broken = CLINIC.replace("credentialRef: osc-winrm", "credentialRef: osc-ssh");
    let objects = decode_all(&broken);
    let lines: Vec<String> = validate_references(&objects)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "Host clinic-a/lab-pc: spec.transport.credentialRef: Invalid value: \"osc-ssh\": \
             Credential osc-ssh is of type ssh-key; the winrm transport needs type winrm"
        ]
    );
}
