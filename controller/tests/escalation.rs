//! The run loop escalates a pair whose remediation never sticks: after the site's `maxAttempts`
//! the Host gets `Escalated` (and `Compliant` False), and the site's notification targets hear
//! once: a webhook on 127.0.0.1 signed with the pulled `secretRef` secret, and a UDP syslog
//! listener on 127.0.0.1. The loop runs with scripted central watches, a scripted executor and
//! an in-memory central, on a real SQLite outbox.

use std::time::Duration as StdDuration;

use osc_controller::central::{FakeCentral, StatusTarget};
use osc_controller::config::Retention;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heal_that_never_sticks_escalates_on_the_host_and_to_every_target_once() {
    let (url, received) = webhook(0).await;
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let runbook_key = Signer::from_seed(&[44; 32]);
    let mut spec: RunbookSpec = serde_json::from_value(json!({
        "platform": "appliance", "severity": "high",
        "check": {"interpreter": "sh", "script": "check"},
        "remediate": {"interpreter": "sh", "script": "fix"}
    }))
    .unwrap();
    sign_runbook(&mut spec, &runbook_key);

    let source = ScriptedSource::default();
    let site = object(
        "Site",
        "smile",
        json!({"displayName": "Smile", "partner": "acme",
               "healing": {"mode": "enforce", "maxAttempts": 2},
               "runbooks": [{"names": ["stubborn"]}],
               "notifications": [{"webhook": {"url": url, "secretRef": "hook"},
                                  "syslog": {"address": syslog.local_addr().unwrap().to_string()}}]}),
    );
    let lists = [
        (Kind::Site, vec![site]),
        (
            Kind::Host,
            vec![object(
                "Host",
                "box",
                json!({"platform": "appliance", "transport": {"type": "local"}}),
            )],
        ),
        (
            Kind::Credential,
            vec![object(
                "Credential",
                "hook",
                json!({"type": "password", "username": "hook"}),
            )],
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
    let pull = hook_secret("hmac-key");
    // The check always finds drift; the remediation "works" but the check after it still fails.
    let executor = ScriptedExecutor::new();
    executor.answer("box", "check", Ok(StepRun::exited(1, b"drifted")));
    executor.answer("box", "remediate", Ok(StepRun::exited(0, b"")));
    executor.answer("box", "verify", Ok(StepRun::exited(1, b"still drifted")));
    let appliance = Signer::from_seed(&[45; 32]);
    let central = FakeCentral::new("box1", appliance.public_key());

    let dir = tempfile::tempdir().unwrap();
    let outbox = SqliteOutbox::open(&dir.path().join("outbox.sqlite3"))
        .await
        .unwrap();
    let settings = Settings {
        site: "smile".into(),
        appliance: "box1".into(),
        local: Local {
            allow_disruptive_outside_window: false,
            ntp_max_skew: StdDuration::from_secs(10),
            cache_max_age: StdDuration::from_secs(3600),
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
        central,
        source,
        pull,
        transports: executor,
        ntp: FixedNtp(Some(0)),
    };
    let controller = Controller::new(
        settings,
        services,
        outbox,
        appliance,
        dir.path().join("cache/desired-v1.json"),
    )
    .await
    .unwrap();

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
    let patches = controller.services().central.patches();
    let last = patches
        .iter()
        .rev()
        .find(|p| p.target == StatusTarget::Host)
        .unwrap();
    let status = &last.patch["status"];
    let condition = |t: &str| {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(condition("Escalated")["status"], "True", "{status}");
    assert!(
        condition("Escalated")["message"]
            .as_str()
            .unwrap()
            .contains("AttemptsExhausted")
    );
    assert_eq!(condition("Compliant")["status"], "False");
    let escalated = patches
        .iter()
        .filter(|p| p.patch["status"]["results"]["stubborn"]["result"] == "escalated")
        .count();
    assert!(escalated >= 1, "{patches:?}");
}
