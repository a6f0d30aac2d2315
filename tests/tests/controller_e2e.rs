//! End to end over SSH: a real central (in this process, TLS, SQLite), the controller's run loop
//! (`osc_controller::run::Controller` with the built-in transports, as `osc-controller run`
//! builds it) enrolled through `enroll`, and three test hosts reached over SSH with key
//! Credentials pulled from central. A marker file absent on every host is healed on each; drift
//! injected on one host is healed again when the desired state changes; each Host records its
//! pinned host key, Reachable and Compliant; the site's score reaches 1; the evidence central
//! exports verifies. Then one host becomes unreachable: it reports `Reachable=False` while drift on
//! another is healed. (Central outages and SIGKILLs: `controller/tests/e2e.rs`.)

use std::time::Duration;

use osc_controller::cache::Snapshot;
use osc_controller::central::HttpCentral;
use osc_controller::config::{SecretString, TrustedKey, read_signing_key, read_token};
use osc_controller::enroll::{Enrollment, enroll};
use osc_controller::exec::SshSettings;
use osc_controller::ntp::FixedNtp;
use osc_controller::outbox::SqliteOutbox;
use osc_controller::run::{BuiltIn, Controller, Services, Settings};
use osc_controller::sync::CentralSource;
use osc_controller::trust::sign_runbook;
use osc_crds::kinds::RunbookSpec;
use osc_proto::dsse::{PublicKey, Signer};
use osc_proto::export::{EvidenceExport, verify_export};
use osc_tests::central::Central;
use osc_tests::host::TestHost;
use serde_json::{Value, json};

const API: &str = "/apis/osiriscare.net/v1alpha1";
const MARKER: &str = "/etc/osc-e2e-marker";

fn runbook(signer: &Signer) -> Value {
    let mut spec: RunbookSpec = serde_json::from_value(json!({
        "platform": "linux",
        "severity": "high",
        "description": "the marker file says good",
        "controls": [{"framework": "HIPAA", "id": "164.312(c)(1)"}],
        "params": {"ROUND": {"description": "which round of the test", "default": "0"}},
        "check": {"interpreter": "sh", "script": format!("test \"$(cat {MARKER} 2>/dev/null)\" = good")},
        "remediate": {"interpreter": "sh", "script": format!("echo good > {MARKER}")}
    }))
    .unwrap();
    sign_runbook(&mut spec, signer);
    json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Runbook",
           "metadata": {"name": "marker"}, "spec": spec})
}

fn site_spec(round: u32) -> Value {
    json!({"displayName": "Smile Dental", "partner": "acme", "frameworks": ["HIPAA"],
           "healing": {"mode": "enforce"},
           "runbooks": [{"names": ["marker"], "interval": "10m", "params": {"ROUND": round.to_string()}}]})
}

async fn call(
    central: &Central,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, answer) = central.call(&central.admin, method, path, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Drifts `host`'s marker, then changes the desired state (a new `round`) so the item runs at once.
async fn drift_and_touch_the_site(central: &Central, host: &TestHost, round: u32) {
    host.exec_ok(&format!("echo tampered > {MARKER}")).unwrap();
    central
        .set_spec(&format!("{API}/sites/smile"), &site_spec(round))
        .await;
}

/// Waits until central holds `count` heals of `host`.
async fn healed_times(central: &Central, host: &str, count: usize) {
    let path = format!("/osc/v1/sites/smile/evidence?host={host}&outcome=healed");
    eventually(&format!("{host} healed {count} times"), || async {
        call(central, reqwest::Method::GET, &path, None).await["items"]
            .as_array()
            .is_some_and(|items| items.len() == count)
    })
    .await;
}

async fn result(central: &Central, host: &str) -> Value {
    let host = call(
        central,
        reqwest::Method::GET,
        &format!("{API}/namespaces/smile/hosts/{host}"),
        None,
    )
    .await;
    host["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_ssh_hosts_are_healed_and_their_status_and_evidence_reach_central() {
    let hosts: Vec<TestHost> = (0..3)
        .map(|_| TestHost::start().expect("a test host"))
        .collect();
    let central = Central::start().await;
    let runbook_key = Signer::from_seed(&[43; 32]);
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    call(
        &central,
        post.clone(),
        &format!("{API}/sites"),
        Some(
            json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Site",
                    "metadata": {"name": "smile"}, "spec": site_spec(0)}),
        ),
    )
    .await;
    call(
        &central,
        post.clone(),
        &format!("{API}/runbooks"),
        Some(runbook(&runbook_key)),
    )
    .await;
    for (i, host) in hosts.iter().enumerate() {
        let key = std::fs::read_to_string(host.client_key()).unwrap();
        call(&central, post.clone(), &format!("{API}/namespaces/smile/credentials"),
            Some(json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Credential",
                        "metadata": {"name": format!("ssh-{i}"), "namespace": "smile"},
                        "spec": {"type": "ssh-key", "username": host.user(), "data": {"privateKey": key}}}))).await;
        call(&central, post.clone(), &format!("{API}/namespaces/smile/hosts"),
            Some(json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
                        "metadata": {"name": format!("h{i}"), "namespace": "smile"},
                        "spec": {"platform": "linux", "address": host.address().to_string(),
                                 "transport": {"type": "ssh", "port": host.port(), "credentialRef": format!("ssh-{i}")}}}))).await;
    }

    // Enroll, then run the loop in this process as the binary would.
    let dir = tempfile::tempdir().unwrap();
    let token = central.enrollment_token("smile").await;
    let enrolled = enroll(&Enrollment {
        central: central.url.parse().unwrap(),
        token: SecretString::new(token),
        ca_file: central.ca.clone(),
        appliance: "box1".into(),
        config: dir.path().join("etc/controller.yaml"),
        state_directory: dir.path().join("state"),
    })
    .await
    .unwrap();
    let mut config = enrolled.config;
    config.trusted_runbook_keys = vec![TrustedKey(runbook_key.public_key())];
    let http = HttpCentral::new(
        config.central_url.clone(),
        &std::fs::read(&config.ca_file).unwrap(),
        Some(read_token(&config.token_file).unwrap()),
    )
    .unwrap();
    std::fs::create_dir_all(&config.state_directory).unwrap();
    let outbox = SqliteOutbox::open(&config.outbox_path()).await.unwrap();
    let services = Services {
        central: http.clone(),
        source: CentralSource {
            central: http.clone(),
            site: "smile".into(),
            appliance: "box1".into(),
        },
        pull: http,
        transports: BuiltIn::new(SshSettings {
            connect_timeout: Duration::from_secs(5),
            ..SshSettings::default()
        }),
        ntp: FixedNtp(Some(3)),
    };
    let controller = Controller::new(
        Settings::from_config(&config, "test".into()),
        services,
        outbox,
        read_signing_key(&config.signing_key_file).unwrap(),
        Snapshot::path(&config.state_directory),
    )
    .await
    .unwrap();
    let running = controller.run(std::future::pending());
    let test = async {
        // The marker is missing everywhere: each host is healed over SSH, pins its key, and is
        // reachable and compliant.
        for (i, host) in hosts.iter().enumerate() {
            let name = format!("h{i}");
            eventually(&format!("{name} healed"), || async {
                result(&central, &name).await["results"]["marker"]["result"] == "healed"
            })
            .await;
            assert_eq!(host.exec_ok(&format!("cat {MARKER}")).unwrap(), "good\n");
            eventually(&format!("{name} pinned its host key"), || async {
                result(&central, &name).await["hostKey"] == host.host_key_fingerprint()
            })
            .await;
            let status = result(&central, &name).await;
            let conditions = status["conditions"].as_array().unwrap().clone();
            let condition =
                |t: &str| conditions.iter().find(|c| c["type"] == t).unwrap()["status"].clone();
            assert_eq!(condition("Reachable"), "True", "{status}");
            assert_eq!(condition("Compliant"), "True", "{status}");
        }

        // Drift on one host and a change of desired state: it is healed again, the others pass.
        drift_and_touch_the_site(&central, &hosts[1], 1).await;
        healed_times(&central, "h1", 2).await;
        for name in ["h0", "h2"] {
            eventually(&format!("{name} passes"), || async {
                result(&central, name).await["results"]["marker"]["result"] == "pass"
            })
            .await;
        }
        assert_eq!(
            hosts[1].exec_ok(&format!("cat {MARKER}")).unwrap(),
            "good\n"
        );

        // The score and the evidence.
        eventually("the site's HIPAA score is 1", || async {
            call(&central, get.clone(), &format!("{API}/sites/smile"), None).await["status"]["compliance"]["HIPAA"] == 1.0
        })
        .await;
        let key = call(&central, get.clone(), "/osc/v1/log/key", None).await;
        let key = PublicKey::from_base64(key["publicKey"].as_str().unwrap()).unwrap();
        eventually("four heals and two passes in central", || async {
            let export: EvidenceExport = serde_json::from_value(
                call(
                    &central,
                    get.clone(),
                    "/osc/v1/sites/smile/evidence/export",
                    None,
                )
                .await,
            )
            .unwrap();
            verify_export(&export, &key, None)
                .expect("central's export verifies")
                .entries
                >= 6
        })
        .await;

        // h2 becomes unreachable (its SSH port answers every packet with a reset, so the open
        // session breaks at once and reconnections are refused): it reports Reachable=False,
        // while drift on h0 is healed as before.
        hosts[2]
            .exec_ok(&format!(
                "nft add table inet cut && \
                 nft add chain inet cut input '{{ type filter hook input priority 0; }}' && \
                 nft add rule inet cut input tcp dport {} reject with tcp reset",
                hosts[2].port()
            ))
            .unwrap();
        drift_and_touch_the_site(&central, &hosts[0], 2).await;
        eventually("h2 is reported unreachable", || async {
            let status = result(&central, "h2").await;
            status["conditions"].as_array().is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c["type"] == "Reachable" && c["status"] == "False")
            })
        })
        .await;
        healed_times(&central, "h0", 2).await;
        assert_eq!(
            hosts[0].exec_ok(&format!("cat {MARKER}")).unwrap(),
            "good\n"
        );
    };
    tokio::select! {
        ended = running => panic!("the loop ended: {ended:?}"),
        () = test => {}
    }
    central.stop().await;
}
