//! The controller against a real Central Command (in this process, over TLS with its generated
//! CA, on SQLite): `enroll` (the key stays local and private, the proof is accepted, the token
//! and config are written 0600 and work, enrolling again with the same key is safe), then the
//! outbox delivered through `HttpCentral` (evidence in order, duplicates, gaps, status patches).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use chrono::Utc;
use osc_controller::central::{Answer, Central as _, HttpCentral, StatusPatch, StatusTarget};
use osc_controller::config::{SecretString, read_signing_key, read_token};
use osc_controller::deliver::{Drained, ToCentral, drain};
use osc_controller::enroll::{Enrollment, enroll};
use osc_controller::evidence::EvidenceChain;
use osc_controller::outbox::{EntryKind, OutboxStore as _, SqliteOutbox};
use serde_json::json;

mod common;
use common::record;
#[path = "common/central.rs"]
mod test_central;
use test_central::Central;

/// An enrollment of `box1` with `token`, pinning `ca`, writing into `dir`.
fn enrollment(central: &Central, ca: &Path, token: &str, dir: &Path) -> Enrollment {
    Enrollment {
        central: central.url.parse().unwrap(),
        token: SecretString::new(token.to_owned()),
        ca_file: ca.to_owned(),
        appliance: "box1".into(),
        config: dir.join("etc/controller.yaml"),
        state_directory: dir.join("state"),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn enroll_writes_a_private_key_token_and_config_that_central_accepts() {
    let central = Central::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (enrolled, enrollment_token) = enrolled(&central, dir.path()).await;
    assert_eq!(enrolled.response.site, "smile");
    assert!(!format!("{enrolled:?}").contains(&enrolled.response.token));

    // Key, token and config are private to the appliance and read back as they were written.
    let config = &enrolled.config;
    for file in [
        &config.signing_key_file,
        &config.token_file,
        &dir.path().join("etc/controller.yaml"),
    ] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(config.site, "smile");
    assert_eq!(config.appliance, "box1");
    assert_eq!(config.central_url.as_str(), format!("{}/", central.url));
    let key = read_signing_key(&config.signing_key_file).unwrap();
    assert_eq!(enrolled.response.key_id, key.keyid());

    // Central holds the public key, and the appliance token reads its own Appliance.
    let token = read_token(&config.token_file).unwrap();
    let path = "/apis/osiriscare.net/v1alpha1/namespaces/smile/appliances/box1";
    let (status, appliance) = central
        .call(token.expose(), reqwest::Method::GET, path, None)
        .await;
    assert_eq!(status, 200, "{appliance}");
    assert_eq!(
        appliance["spec"]["enrollment"]["publicKey"],
        key.public_key().to_base64()
    );

    // Enrolling again with the same token (the answer was lost) reuses the key: same appliance,
    // a fresh token, the old one revoked.
    let again = enroll(&enrollment(
        &central,
        &central.ca,
        &enrollment_token,
        dir.path(),
    ))
    .await
    .unwrap();
    assert_eq!(again.response.key_id, key.keyid());
    let fresh = read_token(&config.token_file).unwrap();
    assert_ne!(fresh, token);
    let (status, _) = central
        .call(token.expose(), reqwest::Method::GET, path, None)
        .await;
    assert_eq!(status, 401, "the previous token is revoked");
    let (status, _) = central
        .call(fresh.expose(), reqwest::Method::GET, path, None)
        .await;
    assert_eq!(status, 200);

    central.stop().await;
}

#[tokio::test]
async fn a_spent_or_unknown_token_is_refused_with_central_s_reason() {
    let central = Central::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = "osce_0123456789abcdef.not-a-real-secret";
    let error = enroll(&enrollment(&central, &central.ca, token, dir.path()))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("401"), "{error}");
    assert!(!error.contains("not-a-real-secret"), "{error}");
    assert!(!dir.path().join("etc/controller.yaml").exists());
    central.stop().await;
}

#[tokio::test]
async fn a_central_whose_certificate_the_pinned_ca_did_not_sign_is_refused() {
    let central = Central::start().await;
    let other = Central::start().await;
    let dir = tempfile::tempdir().unwrap();
    let error = enroll(&enrollment(
        &central,
        &other.ca,
        "osce_0123456789abcdef.x",
        dir.path(),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("cannot reach central"), "{error}");
    central.stop().await;
    other.stop().await;
}

/// Creates the site `smile` and enrolls `box1` into it, writing into `dir`; returns what was
/// written and the enrollment token used.
async fn enrolled(central: &Central, dir: &Path) -> (osc_controller::enroll::Enrolled, String) {
    let site = json!({
        "apiVersion": "osiriscare.net/v1alpha1", "kind": "Site",
        "metadata": {"name": "smile"},
        "spec": {"displayName": "Smile Dental", "partner": "acme"}
    });
    let path = "/apis/osiriscare.net/v1alpha1/sites";
    let (status, body) = central
        .call(&central.admin, reqwest::Method::POST, path, Some(site))
        .await;
    assert_eq!(status, 201, "{body}");
    let token = central.enrollment_token("smile").await;
    let enrolled = enroll(&enrollment(central, &central.ca, &token, dir))
        .await
        .unwrap();
    (enrolled, token)
}

#[tokio::test]
async fn the_outbox_reaches_central_in_order_once_and_recovers_from_a_gap() {
    let central = Central::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = enrolled(&central, dir.path()).await.0.config;
    let token = read_token(&config.token_file).unwrap();
    let http = HttpCentral::new(
        config.central_url.clone(),
        &std::fs::read(&config.ca_file).unwrap(),
        Some(token.clone()),
    )
    .unwrap();
    let sink = ToCentral {
        central: &http,
        site: "smile",
    };
    std::fs::create_dir_all(&config.state_directory).unwrap();
    let store = SqliteOutbox::open(&config.outbox_path()).await.unwrap();
    let signer = read_signing_key(&config.signing_key_file).unwrap();
    let mut chain = EvidenceChain::open(&store, "box1", signer).await.unwrap();
    let logged = async || {
        let (status, body) = central
            .call(
                token.expose(),
                reqwest::Method::GET,
                "/osc/v1/sites/smile/evidence",
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().len()
    };

    let drained = async |kind| drain(&store, &sink, kind, Utc::now).await.unwrap();

    record(&store, &mut chain, 3).await;
    assert_eq!(drained(EntryKind::Evidence).await, Drained::Empty);
    assert_eq!(logged().await, 3);

    // A crash after central stored them but before the outbox knew: all three go again, and
    // central answers duplicates without storing anything twice.
    store.resend_from(1).await.unwrap();
    assert_eq!(drained(EntryKind::Evidence).await, Drained::Empty);
    assert_eq!(logged().await, 3);

    // Seq 5 before seq 4: central's 409 names the seq to resend from.
    record(&store, &mut chain, 2).await;
    let fourth = store.next(EntryKind::Evidence).await.unwrap().unwrap();
    store.delivered(fourth.id, Utc::now()).await.unwrap();
    let fifth = store.next(EntryKind::Evidence).await.unwrap().unwrap();
    assert_eq!(
        http.post_evidence(&fifth.body).await,
        Answer::Gap { expected: 4 }
    );
    assert_eq!(drained(EntryKind::Evidence).await, Drained::Empty);
    assert_eq!(logged().await, 5);
    assert_eq!(store.depth().await.unwrap().total(), 0);

    // Status: the appliance's own object takes the patch; a Host that does not exist is dropped.
    for (target, name) in [
        (StatusTarget::Appliance, "box1"),
        (StatusTarget::Host, "gone"),
    ] {
        let patch = StatusPatch {
            target,
            name: name.into(),
            patch: json!({"status": {"outboxDepth": 0}}),
        };
        let body = serde_json::to_vec(&patch).unwrap();
        store
            .enqueue(EntryKind::Status, &body, Utc::now())
            .await
            .unwrap();
    }
    assert_eq!(drained(EntryKind::Status).await, Drained::Empty);
    let path = "/apis/osiriscare.net/v1alpha1/namespaces/smile/appliances/box1";
    let (_, appliance) = central
        .call(token.expose(), reqwest::Method::GET, path, None)
        .await;
    assert_eq!(appliance["status"]["outboxDepth"], 0, "{appliance}");

    store.close().await;
    central.stop().await;
}
