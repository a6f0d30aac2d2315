//! PATCH: merge, JSON and server-side apply, through the same admission as PUT.

use std::collections::BTreeSet;

use osc_central::keyring::Binding;
use osc_central::store::ObjectKey;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestCentral, host, host_path, site, version};

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// A server with site `alpha` and host `web-1` (role `web`).
async fn with_host() -> (TestCentral, crate::harness::Database) {
    let (central, database) = TestCentral::sqlite().await;
    central.create("/sites", site("alpha")).await;
    central
        .create("/namespaces/alpha/hosts", host("web-1", "web"))
        .await;
    (central, database)
}

#[tokio::test]
async fn a_merge_patch_changes_what_it_names_and_bumps_generation_for_spec_only() {
    let (central, _database) = with_host().await;
    let labelled = central
        .merge(
            &host_path("web-1"),
            json!({"metadata": {"labels": {"tier": "gold", "role": null}}}),
        )
        .await;
    assert_eq!(labelled["metadata"]["labels"], json!({"tier": "gold"}));
    assert_eq!(labelled["metadata"]["generation"], 1);
    assert_eq!(labelled["spec"]["address"], "10.0.0.1");

    let moved = central
        .merge(
            &host_path("web-1"),
            json!({"spec": {"address": "10.0.0.9"}}),
        )
        .await;
    assert_eq!(moved["spec"]["address"], "10.0.0.9");
    assert_eq!(moved["metadata"]["generation"], 2);
    assert!(version(&moved) > version(&labelled));
    assert_eq!(central.get(&host_path("web-1")).await, moved);
}

#[tokio::test]
async fn a_json_patch_applies_its_operations_in_order() {
    let (central, _database) = with_host().await;
    let patch = json!([
        {"op": "test", "path": "/metadata/labels/role", "value": "web"},
        {"op": "replace", "path": "/metadata/labels/role", "value": "db"},
        {"op": "add", "path": "/metadata/annotations", "value": {"owner": "ops"}},
    ]);
    let (status, patched) = central
        .patch(&host_path("web-1"), JSON_PATCH, patch.to_string())
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["metadata"]["labels"], json!({"role": "db"}));
    assert_eq!(patched["metadata"]["annotations"], json!({"owner": "ops"}));
}

#[tokio::test]
async fn a_json_patch_whose_test_fails_is_422_and_stores_nothing() {
    let (central, _database) = with_host().await;
    let before = central.get(&host_path("web-1")).await;
    let patch = json!([
        {"op": "replace", "path": "/spec/address", "value": "10.0.0.2"},
        {"op": "test", "path": "/metadata/labels/role", "value": "db"},
    ]);
    let (status, body) = central
        .patch(&host_path("web-1"), JSON_PATCH, patch.to_string())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["reason"], "Invalid");
    assert!(
        body["message"].as_str().unwrap().contains("patch[1]"),
        "{body}"
    );
    assert_eq!(central.get(&host_path("web-1")).await, before);
}

#[tokio::test]
async fn a_patched_object_is_validated_like_an_update() {
    let (central, _database) = with_host().await;
    let (status, body) = central
        .patch(
            &host_path("web-1"),
            MERGE,
            json!({"spec": {"platform": "beos"}}).to_string(),
        )
        .await;
    // Either the decoder (400) or validation (422) refuses it, never the store.
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status} {body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("platform"),
        "{body}"
    );

    let (status, body) = central
        .patch(
            &host_path("web-1"),
            MERGE,
            json!({"metadata": {"name": "web-2"}}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = central
        .patch(&host_path("nope"), MERGE, "{}".to_owned())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn status_patches_change_only_status_and_object_patches_never_status() {
    let (central, _database) = with_host().await;
    let status_patch = json!({
        "spec": {"address": "10.6.6.6"},
        "metadata": {"labels": {"sneaky": "yes"}},
        "status": {"observedGeneration": 1},
    });
    let patched = central
        .merge(&format!("{}/status", host_path("web-1")), status_patch)
        .await;
    assert_eq!(patched["status"], json!({"observedGeneration": 1}));
    assert_eq!(patched["spec"]["address"], "10.0.0.1");
    assert_eq!(patched["metadata"]["labels"], json!({"role": "web"}));

    let patched = central
        .merge(
            &host_path("web-1"),
            json!({"status": {"observedGeneration": 7}, "metadata": {"labels": {"a": "b"}}}),
        )
        .await;
    assert_eq!(patched["status"], json!({"observedGeneration": 1}));
    assert_eq!(patched["metadata"]["labels"]["a"], "b");
}

#[tokio::test]
async fn unknown_patch_types_are_415_naming_the_accepted_ones() {
    let (central, _database) = with_host().await;
    for content_type in [
        "application/strategic-merge-patch+json",
        "application/json",
        "text/plain",
    ] {
        let (status, body) = central
            .patch(&host_path("web-1"), content_type, "{}".to_owned())
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        assert_eq!(body["reason"], "UnsupportedMediaType");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("application/merge-patch+json"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_patch_carrying_a_resource_version_is_a_precondition() {
    let (central, _database) = with_host().await;
    let current = central.get(&host_path("web-1")).await;
    let stale = version(&current) - 1;
    let (status, body) = central
        .patch(
            &host_path("web-1"),
            MERGE,
            json!({"metadata": {"resourceVersion": stale.to_string(), "labels": {"x": "1"}}})
                .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["reason"], "Conflict");

    let patched = central
        .merge(
            &host_path("web-1"),
            json!({"metadata": {"resourceVersion": version(&current).to_string(),
                                "labels": {"x": "1"}}}),
        )
        .await;
    assert_eq!(patched["metadata"]["labels"]["x"], "1");
}

#[tokio::test]
async fn concurrent_merge_patches_all_land() {
    const WRITERS: usize = 16;
    let (central, _database) = with_host().await;
    let start = version(&central.get(&host_path("web-1")).await);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|index| {
            let client = central.client.clone();
            let url = central.url(&host_path("web-1"));
            tokio::spawn(async move {
                let patch = json!({"metadata": {"labels": {format!("writer-{index}"): "done"}}});
                let response = client
                    .patch(url)
                    .header("content-type", MERGE)
                    .body(patch.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let after = central.get(&host_path("web-1")).await;
    let labels: BTreeSet<&str> = after["metadata"]["labels"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected: BTreeSet<String> = (0..WRITERS).map(|i| format!("writer-{i}")).collect();
    expected.insert("role".to_owned());
    assert_eq!(
        labels,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    // One write per patch: none was lost, none was written twice.
    assert_eq!(version(&after), start + WRITERS as i64);
}

#[tokio::test]
async fn patches_never_see_nor_erase_a_credential_secret() {
    let (central, _database) = with_host().await;
    let credential = json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Credential",
        "metadata": {"name": "ssh", "namespace": "alpha"},
        "spec": {"type": "password", "username": "svc", "data": {"password": "hunter2"}},
    });
    central
        .create("/namespaces/alpha/credentials", credential)
        .await;
    let path = "/namespaces/alpha/credentials/ssh";
    // A test op cannot probe the secret: to a patch, it is not there.
    let probe = json!([{"op": "test", "path": "/spec/data/password", "value": "hunter2"}]);
    let (status, body) = central.patch(path, JSON_PATCH, probe.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(!body.to_string().contains("hunter2"));

    let patched = central
        .merge(path, json!({"metadata": {"labels": {"rotated": "no"}}}))
        .await;
    assert!(patched["spec"].get("data").is_none(), "{patched}");
    let stored = central
        .store
        .get(&ObjectKey::namespaced("credentials", "alpha", "ssh"))
        .await
        .unwrap();
    let binding = Binding {
        site: "alpha",
        credential: "ssh",
        field: "password",
    };
    let sealed = stored["spec"]["data"]["password"].as_str().unwrap();
    let opened = central.keyring.keys().await.open(&binding, sealed).unwrap();
    assert_eq!(opened.as_str(), "hunter2");
    assert_eq!(stored["metadata"]["labels"], json!({"rotated": "no"}));
}

/// A server-side apply of `config` (YAML) by `manager`.
async fn apply(
    central: &TestCentral,
    manager: &str,
    force: bool,
    config: &str,
) -> (StatusCode, Value) {
    let path = format!("/sites/alpha?fieldManager={manager}&force={force}");
    central.patch(&path, APPLY, config.to_owned()).await
}

/// The fieldsV1 of `manager`'s Apply entry.
fn owned(object: &Value, manager: &str) -> Value {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["manager"] == manager && entry["operation"] == "Apply")
        .map(|entry| entry["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

const ALPHA: &str = "apiVersion: osiriscare.net/v1alpha1
kind: Site
metadata:
  name: alpha
  labels:
    tier: gold
spec:
  displayName: Alpha Dental
  partner: bluelake-msp
";

#[tokio::test]
async fn server_side_apply_creates_then_is_a_no_op_when_nothing_changed() {
    let (central, _database) = TestCentral::sqlite().await;
    let (status, created) = apply(&central, "kubectl", false, ALPHA).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["spec"]["displayName"], "Alpha Dental");
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(
        owned(&created, "kubectl"),
        json!({"f:metadata": {"f:labels": {"f:tier": {}}},
               "f:spec": {"f:displayName": {}, "f:partner": {}}})
    );
    let (status, again) = apply(&central, "kubectl", false, ALPHA).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again, created,
        "a second apply of the same configuration writes nothing"
    );
}

#[tokio::test]
async fn server_side_apply_conflicts_between_managers_unless_forced() {
    let (central, _database) = TestCentral::sqlite().await;
    apply(&central, "kubectl", false, ALPHA).await;
    let theirs = "apiVersion: osiriscare.net/v1alpha1
kind: Site
metadata: {name: alpha}
spec: {displayName: Renamed, partner: bluelake-msp}
";
    let (status, body) = apply(&central, "dashboard", false, theirs).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["reason"], "Conflict");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("conflict with \"kubectl\": .spec.displayName"),
        "{message}"
    );
    assert_eq!(
        central.get("/sites/alpha").await["spec"]["displayName"],
        "Alpha Dental"
    );

    let (status, forced) = apply(&central, "dashboard", true, theirs).await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(forced["spec"]["displayName"], "Renamed");
    assert_eq!(
        owned(&forced, "kubectl"),
        json!({"f:metadata": {"f:labels": {"f:tier": {}}}, "f:spec": {"f:partner": {}}})
    );
    assert_eq!(
        owned(&forced, "dashboard"),
        json!({"f:spec": {"f:displayName": {}, "f:partner": {}}})
    );
}

#[tokio::test]
async fn server_side_apply_removes_fields_dropped_from_the_configuration() {
    let (central, _database) = TestCentral::sqlite().await;
    apply(&central, "kubectl", false, ALPHA).await;
    // Someone else labels the site by merge patch; that label is no manager's.
    central
        .merge(
            "/sites/alpha",
            json!({"metadata": {"labels": {"region": "eu"}}}),
        )
        .await;
    let without_tier = ALPHA.replace("  labels:\n    tier: gold\n", "");
    let (status, applied) = apply(&central, "kubectl", false, &without_tier).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["metadata"]["labels"], json!({"region": "eu"}));
    assert_eq!(
        owned(&applied, "kubectl"),
        json!({"f:spec": {"f:displayName": {}, "f:partner": {}}})
    );
}

#[tokio::test]
async fn server_side_apply_checks_its_request() {
    let (central, _database) = TestCentral::sqlite().await;
    let (status, body) = central.patch("/sites/alpha", APPLY, ALPHA.to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("fieldManager is required"),
        "{body}"
    );
    let invalid = ALPHA.replace("partner: bluelake-msp", "partner: \"\"");
    let (status, body) = apply(&central, "kubectl", false, &invalid).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = apply(&central, "kubectl", false, "kind: [").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
