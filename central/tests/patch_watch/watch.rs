//! WATCH: start semantics, order, selectors, bookmarks, errors and the end of streams, on SQLite
//! and PostgreSQL.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{
    Backend, Database, PATIENCE, TestCentral, fast_watches, host, host_path, json_of, site, version,
};

/// Runs a test body once per backend, as `sqlite` and `postgres` tests of a module.
macro_rules! on_both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body(super::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$body(super::Backend::Postgres).await;
            }
        }
    };
}

/// A server on `backend` keeping `history` events, with site `alpha`.
async fn central(backend: Backend, history: u64) -> (TestCentral, Database) {
    let database = Database::new(backend).await;
    let central = TestCentral::start(database.open(history).await, fast_watches()).await;
    central.create("/sites", site("alpha")).await;
    (central, database)
}

const HOSTS: &str = "/namespaces/alpha/hosts";

on_both_backends!(
    without_a_version_a_watch_sends_the_current_state_then_changes_in_order,
    current_state_then_changes
);
async fn current_state_then_changes(backend: Backend) {
    let (central, database) = central(backend, 10_000).await;
    central.create(HOSTS, host("web-2", "web")).await;
    central.create(HOSTS, host("web-1", "web")).await;
    let mut watch = central.watch(&format!("{HOSTS}?watch=1")).await;
    assert_eq!(watch.response.status(), StatusCode::OK);
    let content_type = watch.response.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "application/json;stream=watch");
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-1".into()));
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-2".into()));

    central.create(HOSTS, host("web-3", "web")).await;
    central
        .merge(
            &host_path("web-1"),
            json!({"spec": {"address": "10.0.0.8"}}),
        )
        .await;
    central
        .client
        .delete(central.url(&host_path("web-2")))
        .send()
        .await
        .unwrap();
    let mut versions = Vec::new();
    for expected in [
        ("ADDED", "web-3"),
        ("MODIFIED", "web-1"),
        ("DELETED", "web-2"),
    ] {
        let event = watch.next_change().await.unwrap();
        assert_eq!(event["type"], expected.0, "{event}");
        assert_eq!(event["object"]["metadata"]["name"], expected.1, "{event}");
        versions.push(version(&event["object"]));
    }
    assert!(versions.is_sorted(), "{versions:?}");
    drop(watch);
    central.stop().await;
    database.remove().await;
}

on_both_backends!(
    from_a_version_a_watch_replays_what_followed_it,
    replay_from_a_version
);
async fn replay_from_a_version(backend: Backend) {
    let (central, database) = central(backend, 10_000).await;
    let created = central.create(HOSTS, host("web-1", "web")).await;
    central
        .merge(
            &host_path("web-1"),
            json!({"metadata": {"labels": {"x": "1"}}}),
        )
        .await;
    central.create(HOSTS, host("web-2", "web")).await;
    let from = version(&created);
    let mut watch = central
        .watch(&format!("{HOSTS}?watch=true&resourceVersion={from}"))
        .await;
    assert_eq!(
        watch.next_named().await,
        ("MODIFIED".into(), "web-1".into())
    );
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-2".into()));
    central.create(HOSTS, host("web-3", "web")).await;
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-3".into()));
    drop(watch);
    central.stop().await;
    database.remove().await;
}

on_both_backends!(
    objects_entering_and_leaving_a_label_selector_are_added_and_deleted,
    label_transitions
);
async fn label_transitions(backend: Backend) {
    let (central, database) = central(backend, 10_000).await;
    central.create(HOSTS, host("db-1", "db")).await;
    central.create(HOSTS, host("web-1", "web")).await;
    let mut watch = central
        .watch(&format!("{HOSTS}?watch=1&labelSelector=role%3Dweb"))
        .await;
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-1".into()));
    let relabel = |name: &'static str, role: &'static str| {
        let central = &central;
        async move {
            central
                .merge(
                    &host_path(name),
                    json!({"metadata": {"labels": {"role": role}}}),
                )
                .await
        }
    };
    relabel("db-1", "web").await;
    assert_eq!(watch.next_named().await, ("ADDED".into(), "db-1".into()));
    relabel("web-1", "db").await;
    assert_eq!(watch.next_named().await, ("DELETED".into(), "web-1".into()));
    relabel("web-1", "cache").await; // Not shown: it did not match before and does not now.
    relabel("db-1", "web").await; // No change: not stored, not shown.
    central
        .merge(&host_path("db-1"), json!({"spec": {"address": "10.0.0.7"}}))
        .await;
    assert_eq!(watch.next_named().await, ("MODIFIED".into(), "db-1".into()));
    drop(watch);
    central.stop().await;
    database.remove().await;
}

#[tokio::test]
async fn a_field_selector_follows_one_object() {
    let (central, database) = central(Backend::Sqlite, 10_000).await;
    let mut watch = central
        .watch(&format!(
            "{HOSTS}?watch=1&fieldSelector=metadata.name%3Dweb-2"
        ))
        .await;
    central.create(HOSTS, host("web-1", "web")).await;
    central.create(HOSTS, host("web-2", "web")).await;
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-2".into()));
    drop(watch);
    database.remove().await;
}

#[tokio::test]
async fn bookmarks_carry_the_version_the_watch_has_seen() {
    let (central, _database) = central(Backend::Sqlite, 10_000).await;
    let mut watch = central
        .watch(&format!("{HOSTS}?watch=1&allowWatchBookmarks=true"))
        .await;
    let created = central.create(HOSTS, host("web-1", "web")).await;
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-1".into()));
    let bookmark = watch.next().await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK", "{bookmark}");
    assert_eq!(
        bookmark["object"],
        json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
               "metadata": {"resourceVersion": version(&created).to_string()}})
    );
    // Without allowWatchBookmarks, none.
    let mut quiet = central
        .watch(&format!("{HOSTS}?watch=1&timeoutSeconds=1"))
        .await;
    assert_eq!(quiet.next_named().await, ("ADDED".into(), "web-1".into()));
    assert_eq!(
        quiet.next().await,
        None,
        "only the end of the stream follows"
    );
}

on_both_backends!(
    a_version_older_than_the_kept_history_gets_one_410_error_event,
    expired
);
async fn expired(backend: Backend) {
    let (central, database) = central(backend, 2).await;
    let first = central.create(HOSTS, host("web-1", "web")).await;
    for index in 0..4 {
        central
            .merge(
                &host_path("web-1"),
                json!({"metadata": {"labels": {"n": index.to_string()}}}),
            )
            .await;
    }
    let mut watch = central
        .watch(&format!(
            "{HOSTS}?watch=1&resourceVersion={}",
            version(&first)
        ))
        .await;
    assert_eq!(watch.response.status(), StatusCode::OK);
    let error = watch.next().await.unwrap();
    assert_eq!(error["type"], "ERROR", "{error}");
    let status = &error["object"];
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 410);
    assert_eq!(status["reason"], "Expired");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version"),
        "{status}"
    );
    assert_eq!(watch.next().await, None, "the stream ends after the error");
    central.stop().await;
    database.remove().await;
}

#[tokio::test]
async fn a_future_version_is_waited_for_then_refused_with_504() {
    let (central, _database) = central(Backend::Sqlite, 10_000).await;
    let current = version(&central.get("/sites/alpha").await);
    // Reached within the wait: the watch starts from it.
    let path = format!("{HOSTS}?watch=1&resourceVersion={}", current + 1);
    let watch = central.watch(&path);
    let create = central.create(HOSTS, host("web-1", "web"));
    let (mut watch, _) = tokio::join!(watch, create);
    let mut late = central
        .watch(&format!(
            "{HOSTS}?watch=1&resourceVersion={}",
            current + 100
        ))
        .await;
    central.create(HOSTS, host("web-2", "web")).await;
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-2".into()));
    let error = late.next().await.unwrap();
    assert_eq!(error["type"], "ERROR", "{error}");
    assert_eq!(error["object"]["code"], 504);
    assert_eq!(error["object"]["reason"], "Timeout");
    assert_eq!(
        error["object"]["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );
    assert_eq!(late.next().await, None);
}

#[tokio::test]
async fn watch_list_and_malformed_versions_are_400() {
    let (central, _database) = central(Backend::Sqlite, 10_000).await;
    let cases = [
        (
            "sendInitialEvents=true&allowWatchBookmarks=true",
            "sendInitialEvents",
        ),
        ("resourceVersion=abc", "invalid resourceVersion"),
        ("labelSelector=role%3D%3D(", "labelSelector"),
    ];
    for (query, expected) in cases {
        let response = central
            .client
            .get(central.url(&format!("{HOSTS}?watch=1&{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let status = json_of(response).await;
        assert_eq!(status["kind"], "Status");
        assert!(
            status["message"].as_str().unwrap().contains(expected),
            "{query}: {status}"
        );
    }
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream() {
    let (central, _database) = central(Backend::Sqlite, 10_000).await;
    let mut watch = central
        .watch(&format!("{HOSTS}?watch=1&timeoutSeconds=1"))
        .await;
    assert_eq!(watch.next().await, None);
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let (mut central, _database) = central(Backend::Sqlite, 10_000).await;
    let mut watch = central.watch(&format!("{HOSTS}?watch=1")).await;
    central.create(HOSTS, host("web-1", "web")).await;
    assert_eq!(watch.next_named().await, ("ADDED".into(), "web-1".into()));
    central.begin_shutdown();
    assert_eq!(watch.next().await, None, "the stream ends at shutdown");
    central.stop().await;
}

#[tokio::test]
async fn a_client_going_away_ends_its_watch_and_uncounts_it() {
    let (central, _database) = central(Backend::Sqlite, 10_000).await;
    let series = r#"osc_watchers{resource="hosts"}"#;
    let watch = central.watch(&format!("{HOSTS}?watch=1")).await;
    let other = central.watch("/sites?watch=1").await;
    assert_eq!(central.metric(series).await, Some(1.0));
    drop(watch);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while central.metric(series).await != Some(0.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch is still counted after its client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        central.metric(r#"osc_watchers{resource="sites"}"#).await,
        Some(1.0)
    );
    drop(other);
}

#[tokio::test]
async fn credential_events_never_carry_secret_data() {
    let (central, _database) = central(Backend::Sqlite, 10_000).await;
    let mut watch = central.watch("/namespaces/alpha/credentials?watch=1").await;
    let credential = json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Credential",
        "metadata": {"name": "ssh", "namespace": "alpha"},
        "spec": {"type": "password", "username": "svc", "data": {"password": "hunter2"}},
    });
    central
        .create("/namespaces/alpha/credentials", credential)
        .await;
    let event = watch.next_change().await.unwrap();
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["spec"]["username"], "svc");
    assert!(!event.to_string().contains("hunter2"), "{event}");
}

#[tokio::test]
async fn a_table_watch_sends_one_row_tables() {
    let (central, _database) = central(Backend::Sqlite, 10_000).await;
    central.create(HOSTS, host("web-1", "web")).await;
    let mut watch = central
        .watch_as(
            &format!("{HOSTS}?watch=1"),
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .await;
    let event = watch.next().await.unwrap();
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["kind"], "Table", "{event}");
    let rows = event["object"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cells"][0], "web-1");
}

#[tokio::test]
async fn a_watch_on_one_replica_sees_the_writes_of_another_in_order() {
    const WRITES: usize = 20;
    let database = Database::new(Backend::Postgres).await;
    let one = TestCentral::start(database.open(10_000).await, fast_watches()).await;
    let two = TestCentral::start(database.open(10_000).await, fast_watches()).await;
    two.create("/sites", site("alpha")).await;
    let mut watch = one.watch(&format!("{HOSTS}?watch=1")).await;
    let mut written = Vec::new();
    for index in 0..WRITES {
        let created = two
            .create(HOSTS, host(&format!("web-{index:02}"), "web"))
            .await;
        written.push(version(&created));
    }
    let mut seen = Vec::new();
    for index in 0..WRITES {
        let event = watch.next_change().await.unwrap();
        assert_eq!(event["type"], "ADDED");
        assert_eq!(
            event["object"]["metadata"]["name"],
            format!("web-{index:02}")
        );
        seen.push(version(&event["object"]));
    }
    assert_eq!(seen, written, "every write, in order, none missed");
    drop(watch);
    one.stop().await;
    two.stop().await;
    database.remove().await;
}
