//! The run loop with scripted central watches, a scripted executor and an in-memory central, on
//! a real SQLite outbox: a pair whose remediation never sticks escalates after the site's
//! `maxAttempts` (the Host gets `Escalated`, `Compliant` False, and the site's notification
//! targets hear once: a webhook on 127.0.0.1 signed with the pulled `secretRef` secret and a UDP
//! syslog listener on 127.0.0.1); and a desired state older than `cacheMaxAge` (central gone)
//! stops every step, fail closed, and the Host says why.

use std::time::Duration as StdDuration;

use osc_controller::central::{FakeCentral, StatusTarget};
use osc_controller::config::Retention;
use osc_controller::credentials::MapPull;
use osc_controller::evidence::Context;
use osc_controller::exec::{ScriptedExecutor, StepRun};
use osc_controller::notify::{Escalation, SIGNATURE_HEADER, signature};
use osc_controller::ntp::FixedNtp;
use osc_controller::outbox::SqliteOutbox;
use osc_controller::plan::Local;
use osc_controller::queue::Backoff;
use osc_controller::run::{Controller, Services, Settings};
use osc_controller::sync::{Scripted, ScriptedSource};
use osc_controller::trust::sign_runbook;
use osc_crds::kinds::Kind;
use osc_crds::kinds::RunbookSpec;
use osc_crds::kinds::site::DeploymentMode;
use osc_proto::dsse::Signer;
use serde_json::{Value, json};

#[path = "common/receivers.rs"]
mod receivers;
use receivers::{hook_secret, webhook};

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": kind,
           "metadata": {"name": name, "namespace": "smile", "resourceVersion": "1", "generation": 1},
           "spec": spec})
}

/// Runbook `stubborn`, signed by `key`.
fn runbook(key: &Signer) -> RunbookSpec {
    let mut spec: RunbookSpec = serde_json::from_value(json!({
        "platform": "appliance", "severity": "high",
        "check": {"interpreter": "sh", "script": "check"},
        "remediate": {"interpreter": "sh", "script": "fix"}
    }))
    .unwrap();
    sign_runbook(&mut spec, key);
    spec
}

/// The loop's types in these tests.
type TestController = Controller<FakeCentral, ScriptedSource, MapPull, ScriptedExecutor, FixedNtp>;

/// A controller whose central lists once (the Site with `site_spec`, Host `box` on the local
/// transport, Credential `hook`, Runbook `stubborn` signed by a trusted key) and is down after.
async fn controller(
    dir: &std::path::Path,
    site_spec: Value,
    executor: ScriptedExecutor,
    cache_max_age: StdDuration,
    host_status: Value,
) -> TestController {
    let runbook_key = Signer::from_seed(&[44; 32]);
    let spec = runbook(&runbook_key);
    let source = ScriptedSource::default();
    let mut host = object(
        "Host",
        "box",
        json!({"platform": "appliance", "transport": {"type": "local"}}),
    );
    host["status"] = host_status;
    let credential = json!({"type": "password", "username": "hook"});
    let lists = [
        (Kind::Site, vec![object("Site", "smile", site_spec)]),
        (Kind::Host, vec![host]),
        (
            Kind::Credential,
            vec![object("Credential", "hook", credential)],
        ),
        (Kind::Appliance, vec![]),
        (
            Kind::Runbook,
            vec![object(
                "Runbook",
                "stubborn",
                serde_json::to_value(&spec).unwrap(),
            )],
        ),
    ];
    for (kind, items) in lists {
        source.answer(kind, Scripted::List(items, "1".into()));
    }
    let appliance = Signer::from_seed(&[45; 32]);
    let outbox = SqliteOutbox::open(&dir.join("outbox.sqlite3"))
        .await
        .unwrap();
    let settings = Settings {
        site: "smile".into(),
        appliance: "box1".into(),
        local: Local {
            allow_disruptive_outside_window: false,
            ntp_max_skew: StdDuration::from_secs(10),
            cache_max_age,
            allowed_hosts: vec![],
            trusted_keys: vec![runbook_key.public_key()],
        },
        context: Context {
            site: "smile".into(),
            deployment_mode: DeploymentMode::Direct,
            reseller_id: None,
            nixos_revision: "test".into(),
        },
        retention: Retention::default(),
        resync: StdDuration::from_secs(300),
        rmm_webhook_url: None,
        syslog_target: None,
        workers: 2,
        heartbeat: StdDuration::from_secs(30),
        backoff: Backoff {
            min: StdDuration::from_millis(10),
            max: StdDuration::from_millis(50),
            seed: Some(1),
        },
    };
    let services = Services {
        central: FakeCentral::new("box1", appliance.public_key()),
        source,
        pull: hook_secret("hmac-key"),
        transports: executor,
        ntp: FixedNtp(Some(0)),
    };
    Controller::new(
        settings,
        services,
        outbox,
        appliance,
        dir.join("cache/desired-v1.json"),
    )
    .await
    .unwrap()
}

/// The last Host status patch's condition `type_`.
fn condition(controller: &TestController, type_: &str) -> Value {
    let patches = controller.services().central.patches();
    let last = patches
        .iter()
        .rev()
        .find(|p| p.target == StatusTarget::Host)
        .unwrap();
    let conditions = last.patch["status"]["conditions"].as_array().unwrap();
    conditions
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heal_that_never_sticks_escalates_on_the_host_and_to_every_target_once() {
    let (url, received) = webhook(0).await;
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let site = json!({"displayName": "Smile", "partner": "acme",
        "healing": {"mode": "enforce", "maxAttempts": 2},
        "runbooks": [{"names": ["stubborn"]}],
        "notifications": [{"webhook": {"url": url, "secretRef": "hook"},
                           "syslog": {"address": syslog.local_addr().unwrap().to_string()}}]});
    // The check always finds drift; the remediation "works" but the check after it still fails.
    let executor = ScriptedExecutor::new();
    executor.answer("box", "check", Ok(StepRun::exited(1, b"drifted")));
    executor.answer("box", "remediate", Ok(StepRun::exited(0, b"")));
    executor.answer("box", "verify", Ok(StepRun::exited(1, b"still drifted")));
    let dir = tempfile::tempdir().unwrap();
    let controller = controller(
        dir.path(),
        site,
        executor,
        StdDuration::from_secs(3600),
        json!({}),
    )
    .await;

    let test = async {
        let mut datagram = vec![0; 4096];
        let (n, _) =
            tokio::time::timeout(StdDuration::from_secs(30), syslog.recv_from(&mut datagram))
                .await
                .expect("a syslog message within 30 s")
                .unwrap();
        let line = String::from_utf8_lossy(&datagram[..n]).into_owned();
        assert!(line.contains("[escalation@32473 site=\"smile\" appliance=\"box1\" host=\"box\" runbook=\"stubborn\" reason=\"AttemptsExhausted\" attempts=\"2\"]"), "{line}");
        for _ in 0..300 {
            if !received.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        // Later reconciles stay escalated and tell nobody again.
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    };
    tokio::select! {
        ended = controller.run(std::future::pending()) => panic!("the loop ended: {ended:?}"),
        () = test => {}
    }

    let calls = received.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the webhook hears once");
    let (headers, body) = &calls[0];
    assert_eq!(
        headers[SIGNATURE_HEADER].to_str().unwrap(),
        signature(b"hmac-key", body)
    );
    let escalation: Escalation = serde_json::from_slice(body).unwrap();
    assert_eq!((escalation.host.as_str(), escalation.attempts), ("box", 2));
    assert!(
        tokio::time::timeout(
            StdDuration::from_millis(200),
            syslog.recv_from(&mut [0; 4096])
        )
        .await
        .is_err(),
        "syslog hears once"
    );

    // The Host says so: Escalated with the reason, not Compliant, the result escalated.
    let escalated = condition(&controller, "Escalated");
    assert_eq!(escalated["status"], "True", "{escalated}");
    assert!(
        escalated["message"]
            .as_str()
            .unwrap()
            .contains("AttemptsExhausted")
    );
    assert_eq!(condition(&controller, "Compliant")["status"], "False");
    let patches = controller.services().central.patches();
    let escalated = patches
        .iter()
        .filter(|p| p.patch["status"]["results"]["stubborn"]["result"] == "escalated")
        .count();
    assert!(escalated >= 1, "{patches:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desired_state_older_than_cache_max_age_stops_every_step() {
    let site =
        json!({"displayName": "Smile", "partner": "acme", "runbooks": [{"names": ["stubborn"]}]});
    // The host is unreachable, so the item is retried with backoff (10 to 50 ms) for ever.
    let executor = ScriptedExecutor::new();
    executor.answer("box", "check", Err("connection refused".into()));
    let dir = tempfile::tempdir().unwrap();
    let controller = controller(
        dir.path(),
        site,
        executor,
        StdDuration::from_millis(800),
        json!({}),
    )
    .await;
    let test = async {
        // Central listed once and is gone since: after cacheMaxAge nothing runs any more.
        let refused = || {
            controller.services().central.patches().iter().any(|p| {
                p.patch["status"]["results"]["stubborn"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("older than cacheMaxAge"))
            })
        };
        for _ in 0..100 {
            if refused() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        assert!(refused(), "the Host says the desired state is too old");
        let calls = controller.services().transports.calls().len();
        tokio::time::sleep(StdDuration::from_millis(500)).await;
        assert_eq!(
            controller.services().transports.calls().len(),
            calls,
            "no step ran after"
        );
        assert!(calls > 1, "the check was tried while the cache was fresh");
    };
    tokio::select! {
        ended = controller.run(std::future::pending()) => panic!("the loop ended: {ended:?}"),
        () = test => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_recorded_before_a_restart_is_not_notified_again() {
    let (url, received) = webhook(0).await;
    let site = json!({"displayName": "Smile", "partner": "acme",
        "healing": {"mode": "enforce", "maxAttempts": 2},
        "runbooks": [{"names": ["stubborn"]}],
        "notifications": [{"webhook": {"url": url}}]});
    // Central's Host status, written before the restart: this episode already escalated.
    let digest = runbook(&Signer::from_seed(&[44; 32])).digest.unwrap();
    let status = json!({"results": {"stubborn": {
        "result": "escalated", "attempts": 2, "runbookDigest": digest,
        "lastChecked": "2026-01-01T00:00:00Z"}}});
    let executor = ScriptedExecutor::new();
    executor.answer("box", "check", Ok(StepRun::exited(1, b"drifted")));
    let dir = tempfile::tempdir().unwrap();
    let controller = controller(
        dir.path(),
        site,
        executor,
        StdDuration::from_secs(3600),
        status,
    )
    .await;
    let test = async {
        for _ in 0..100 {
            if !controller.services().central.patches().is_empty() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    };
    tokio::select! {
        ended = controller.run(std::future::pending()) => panic!("the loop ended: {ended:?}"),
        () = test => {}
    }
    let escalated = condition(&controller, "Escalated");
    assert_eq!(escalated["status"], "True", "{escalated}");
    let calls = controller.services().transports.calls();
    assert!(
        calls.iter().all(|(_, step)| step == "check"),
        "no remediation after the budget: {calls:?}"
    );
    assert!(received.lock().unwrap().is_empty(), "nobody is told twice");
}
