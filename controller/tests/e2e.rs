//! End to end: a real central (in this process, TLS, SQLite) seeded with a Site, a signed
//! Runbook and a `local` Host; the `osc-controller` binary enrolled with `enroll` and run with
//! `run`. Drift is injected and healed (a change of desired state runs the item at once), the
//! Host's status and the Site's compliance show it, and the evidence central exports verifies.
//! Chaos: central stops (healing goes on from the cache), the controller is killed with SIGKILL
//! while central is away, again while it delivers the backlog, and again in the middle of a
//! remediation; in the end every bundle the controller chained is in central once, in order, and
//! the chain verifies.
//!
//! The clock's NTP offset comes from a stand-in `chronyc` on the controller's `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;

use osc_controller::outbox::{OutboxStore as _, SqliteOutbox};
use osc_controller::trust::sign_runbook;
use osc_crds::kinds::RunbookSpec;
use osc_proto::dsse::{PublicKey, Signer};
use osc_proto::export::{EvidenceExport, verify_export};
use serde_json::{Value, json};

#[path = "common/central.rs"]
mod test_central;
use test_central::Central;

const BINARY: &str = env!("CARGO_BIN_EXE_osc-controller");
const API: &str = "/apis/osiriscare.net/v1alpha1";
const HOST: &str = "/apis/osiriscare.net/v1alpha1/namespaces/smile/hosts/appliance";

/// The running controller process; killed when dropped (a failing test leaves nothing behind,
/// and shows the controller's log).
struct Running(Child, PathBuf);

impl Running {
    /// Starts the controller for the `start`-th time (counted in its log).
    fn start(config: &Path, bin: &Path, log: &Path, start: usize) -> Self {
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(BINARY)
            .args(["run", "--config"])
            .arg(config)
            .env("PATH", path)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let running = Self(child, log.to_owned());
        running.wait_started(start);
        running
    }

    /// Waits until the log holds `n` starts: the controller handles its stop signal by then.
    fn wait_started(&self, n: usize) {
        for _ in 0..300 {
            let text = std::fs::read_to_string(&self.1).unwrap_or_default();
            if text.matches("controller running").count() >= n {
                return;
            }
            std::thread::sleep(StdDuration::from_millis(100));
        }
        panic!("the controller did not start");
    }

    fn kill9(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }

    fn terminate(mut self) {
        let pid = self.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.0.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            eprintln!("controller log:\n{log}");
        }
    }
}

/// The runbook: the marker file holds `good`; remediation writes it. `ROUND` does nothing but
/// lets the test change the desired state of the item.
fn runbook(signer: &Signer, marker: &Path) -> Value {
    let mut spec: RunbookSpec = serde_json::from_value(json!({
        "platform": "appliance",
        "severity": "high",
        "description": "the marker file says good",
        "controls": [{"framework": "HIPAA", "id": "164.312(c)(1)"}],
        "params": {
            "MARKER": {"description": "the file", "default": marker.display().to_string()},
            "ROUND": {"description": "which round of the test", "default": "0"}
        },
        "check": {"interpreter": "sh", "script": "cat \"$MARKER\"; test \"$(cat \"$MARKER\")\" = good"},
        "remediate": {"interpreter": "sh", "script": "echo good > \"$MARKER\""}
    }))
    .unwrap();
    sign_runbook(&mut spec, signer);
    json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Runbook",
           "metadata": {"name": "marker"}, "spec": spec})
}

/// The same runbook with a slow remediation that says when it starts (beside the marker), so the
/// test can kill the controller in the middle of it.
fn slow_runbook(signer: &Signer, marker: &Path) -> Value {
    let mut object = runbook(signer, marker);
    let mut spec: RunbookSpec = serde_json::from_value(object["spec"].clone()).unwrap();
    spec.remediate = Some(
        serde_json::from_value(json!({"interpreter": "sh",
            "script": "touch \"$MARKER.remediating\"; sleep 3; echo good > \"$MARKER\""}))
        .unwrap(),
    );
    spec.digest = None;
    spec.signatures.clear();
    sign_runbook(&mut spec, signer);
    object["spec"] = serde_json::to_value(spec).unwrap();
    object
}

fn site(round: u32) -> Value {
    json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Site",
           "metadata": {"name": "smile"},
           "spec": {"displayName": "Smile Dental", "partner": "acme", "frameworks": ["HIPAA"],
                    "healing": {"mode": "enforce"},
                    "runbooks": [{"names": ["marker"], "interval": "1m",
                                  "params": {"ROUND": round.to_string()}}]}})
}

async fn create(central: &Central, path: &str, object: Value) {
    let (status, body) = central
        .call(&central.admin, reqwest::Method::POST, path, Some(object))
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn get(central: &Central, path: &str) -> Value {
    let (status, body) = central
        .call(&central.admin, reqwest::Method::GET, path, None)
        .await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Polls `check` every 200 ms until it holds, for at most `within`; panics naming `what`.
async fn eventually<F, Fut>(what: &str, within: StdDuration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
}

fn marker_result(host: &Value) -> String {
    host["status"]["results"]["marker"]["result"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Central's export of the site, verified; returns (entries, box1's head seq, outcomes).
async fn verified_export(central: &Central) -> (usize, u64, Vec<String>) {
    let key = get(central, "/osc/v1/log/key").await;
    let key = PublicKey::from_base64(key["publicKey"].as_str().unwrap()).unwrap();
    let export: EvidenceExport =
        serde_json::from_value(get(central, "/osc/v1/sites/smile/evidence/export").await).unwrap();
    let verified = verify_export(&export, &key, None).expect("central's export verifies");
    let entries = get(central, "/osc/v1/sites/smile/evidence").await;
    let outcomes = entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    let head = verified.heads["box1"].map_or(0, |h| h.seq);
    (verified.entries, head, outcomes)
}

/// Enrolls with the binary and adds the trusted runbook key to the config it wrote.
fn enroll(central: &Central, token: &str, dir: &Path, runbooks: &Signer) -> PathBuf {
    let config = dir.join("etc/controller.yaml");
    let output = Command::new(BINARY)
        .args([
            "enroll",
            "--central",
            &central.url,
            "--token",
            token,
            "--ca",
        ])
        .arg(&central.ca)
        .args(["--appliance", "box1", "--config"])
        .arg(&config)
        .arg("--state-directory")
        .arg(dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "trustedRunbookKeys:\n  - keyid: \"{}\"\n    publicKey: \"{}\"\n",
        runbooks.keyid(),
        runbooks.public_key().to_base64()
    ));
    std::fs::write(&config, text).unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_healed_through_outages_and_crashes_and_every_bundle_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("central");
    let central = Central::start_on(&data, None).await;
    let runbook_key = Signer::from_seed(&[42; 32]);
    let marker = dir.path().join("marker");
    std::fs::write(&marker, "good\n").unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("chronyc"),
        "#!/bin/sh\necho 'A9FEA97B,127.0.0.1,3,1700000000.1,0.000200000,0,0,0,0,0,0,0,64,Normal'\n",
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("chronyc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    create(&central, &format!("{API}/sites"), site(0)).await;
    create(
        &central,
        &format!("{API}/runbooks"),
        runbook(&runbook_key, &marker),
    )
    .await;
    create(
        &central,
        &format!("{API}/namespaces/smile/hosts"),
        json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
               "metadata": {"name": "appliance", "namespace": "smile"},
               "spec": {"platform": "appliance", "transport": {"type": "local"}}}),
    )
    .await;
    let token = central.enrollment_token("smile").await;
    let config = enroll(&central, &token, dir.path(), &runbook_key);
    let log = dir.path().join("controller.log");
    let controller = Running::start(&config, &bin, &log, 1);

    // The first check passes and the Host says so.
    let minute = StdDuration::from_secs(90);
    eventually("the first pass on the Host", minute, || async {
        marker_result(&get(&central, HOST).await) == "pass"
    })
    .await;

    // Drift, and a change of desired state: the item runs at once and heals.
    std::fs::write(&marker, "tampered\n").unwrap();
    central
        .set_spec(&format!("{API}/sites/smile"), &site(1)["spec"])
        .await;
    eventually("the drift healed", minute, || async {
        marker_result(&get(&central, HOST).await) == "healed"
    })
    .await;
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "good\n");
    let host = get(&central, HOST).await;
    let conditions = host["status"]["conditions"].as_array().unwrap();
    let condition = |t: &str| conditions.iter().find(|c| c["type"] == t).unwrap()["status"].clone();
    assert_eq!(condition("Reachable"), "True", "{host}");
    assert_eq!(condition("Compliant"), "True", "{host}");
    assert_eq!(host["status"]["results"]["marker"]["attempts"], 1);
    eventually("the site's HIPAA score is 1", minute, || async {
        get(&central, &format!("{API}/sites/smile")).await["status"]["compliance"]["HIPAA"] == 1.0
    })
    .await;
    eventually("the heal's evidence in central", minute, || async {
        verified_export(&central)
            .await
            .2
            .iter()
            .any(|o| o == "healed")
    })
    .await;

    // Central goes away. Drift is healed from the cache at the next interval.
    let addr = central.addr;
    central.stop().await;
    std::fs::write(&marker, "tampered again\n").unwrap();
    eventually("healed while central is down", 2 * minute, || async {
        std::fs::read_to_string(&marker).unwrap() == "good\n"
    })
    .await;
    // The controller dies while central is away, with evidence undelivered.
    controller.kill9();

    // Central comes back; the controller restarts and is killed again while delivering.
    let central = Central::start_on(&data, Some(addr)).await;
    let before = verified_export(&central).await.1;
    let controller = Running::start(&config, &bin, &log, 2);
    eventually("delivery of the backlog started", minute, || async {
        verified_export(&central).await.1 > before
    })
    .await;
    controller.kill9();
    let controller = Running::start(&config, &bin, &log, 3);

    // The Appliance says it ran from its cache, and since when.
    let appliance = format!("{API}/namespaces/smile/appliances/box1");
    eventually("the Appliance reports the outage", minute, || async {
        let a = get(&central, &appliance).await;
        a["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Synced" && c["status"] == "True")
        }) && a["status"]["lastHeartbeat"].is_string()
    })
    .await;
    let status = get(&central, &appliance).await["status"].clone();
    assert_eq!(status["ntpOffsetMs"], 0, "{status}");
    assert!(status["lastSync"].is_string(), "{status}");

    // The controller dies in the middle of a remediation (the runbook changes to a slow one,
    // which runs the item at once): after a restart the drift is gone and the host passes or is
    // healed again, and the chain below still holds every bundle once.
    let path = format!("{API}/runbooks/marker");
    let mut slow = get(&central, &path).await;
    slow["spec"] = slow_runbook(&runbook_key, &marker)["spec"].clone();
    std::fs::write(&marker, "tampered a third time\n").unwrap();
    let (status, body) = central
        .call(&central.admin, reqwest::Method::PUT, &path, Some(slow))
        .await;
    assert_eq!(status, 200, "{body}");
    let started = marker.with_extension("remediating");
    eventually("a slow remediation started", minute, || async {
        started.exists()
    })
    .await;
    controller.kill9();
    let controller = Running::start(&config, &bin, &log, 4);
    eventually("the drift is gone after the kill", 2 * minute, || async {
        std::fs::read_to_string(&marker).unwrap() == "good\n"
            && ["healed", "pass"].contains(&marker_result(&get(&central, HOST).await).as_str())
    })
    .await;

    // Everything the controller chained reaches central once, in order, and verifies: a
    // SIGTERM delivers what is still queued before the controller exits.
    controller.terminate();
    let outbox = SqliteOutbox::open(&dir.path().join("state/outbox.sqlite3"))
        .await
        .unwrap();
    let chained = outbox.chain_head().await.unwrap().unwrap().seq;
    let undelivered = outbox.depth().await.unwrap().evidence;
    outbox.close().await;
    assert_eq!(
        undelivered, 0,
        "nothing left undelivered after a graceful stop"
    );
    let (entries, head, outcomes) = verified_export(&central).await;
    assert_eq!(head, chained, "central holds the controller's whole chain");
    assert_eq!(entries as u64, chained, "one entry per seq: nothing twice");
    assert!(
        outcomes.iter().filter(|o| *o == "healed").count() >= 2,
        "both heals are evidenced: {outcomes:?}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log.contains(&token),
        "the enrollment token is never logged"
    );
    // Written to a file, not a terminal: plain text, no colour codes.
    assert!(!log.contains('\u{1b}'), "ANSI escapes in the log:\n{log}");
    central.stop().await;
}
