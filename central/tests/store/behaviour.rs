//! The store's behaviour, written once and run against every backend (see `on_every_backend!`).

use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::task::Poll;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _, TryFutureExt as _};
use osc_central::store::{
    EventType, HistoryRetention, ListOptions, ObjectKey, Store, StoreError, StoreOptions,
};
use serde_json::{Value, json};

use crate::fixture::{TestDb, host, host_key, next_event, next_events, options, rv, value_of};

pub async fn create_get_update_delete(db: &TestDb) {
    let store = db.open().await;
    let key = host_key("alpha", "web-1");

    let created = store.create(&key, host(&key, 1)).await.unwrap();
    assert_eq!(
        rv(&created),
        1,
        "the first write of a store gets resourceVersion 1"
    );
    assert_eq!(created["spec"], json!({"value": 1}));
    assert_eq!(store.get(&key).await.unwrap(), created);

    let updated = store.update(&key, host(&key, 2), None).await.unwrap();
    assert_eq!(rv(&updated), 2);
    assert_eq!(store.get(&key).await.unwrap(), updated);

    let deleted = store.delete(&key, None).await.unwrap();
    assert_eq!(rv(&deleted), 3, "a deletion gets its own resourceVersion");
    assert_eq!(value_of(&deleted), 2, "a deletion returns the last state");
    for result in [
        store.get(&key).await,
        store.delete(&key, None).await,
        store.update(&key, host(&key, 3), None).await,
    ] {
        assert!(matches!(result, Err(StoreError::NotFound { key: k }) if k == key));
    }
    assert_eq!(
        store.current_rv().await.unwrap(),
        3,
        "failed writes take no version"
    );
}

pub async fn create_of_an_existing_key_is_already_exists(db: &TestDb) {
    let store = db.open().await;
    let key = host_key("alpha", "web-1");
    let first = store.create(&key, host(&key, 1)).await.unwrap();

    let again = store.create(&key, host(&key, 2)).await;

    assert!(matches!(again, Err(StoreError::AlreadyExists { key: k }) if k == key));
    assert_eq!(store.get(&key).await.unwrap(), first);
    assert_eq!(store.current_rv().await.unwrap(), 1);
}

pub async fn a_stale_precondition_conflicts_and_changes_nothing(db: &TestDb) {
    let store = db.open().await;
    let key = host_key("alpha", "web-1");
    let v1 = rv(&store.create(&key, host(&key, 1)).await.unwrap());
    let v2 = rv(&store.update(&key, host(&key, 2), Some(v1)).await.unwrap());

    for result in [
        store.update(&key, host(&key, 3), Some(v1)).await,
        store.delete(&key, Some(v1)).await,
    ] {
        match result {
            Err(StoreError::Conflict {
                key: k,
                expected,
                current,
            }) => assert_eq!((k, expected, current), (key.clone(), v1, v2)),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(value_of(&store.get(&key).await.unwrap()), 2);
    assert_eq!(store.current_rv().await.unwrap(), v2);

    let deleted = store.delete(&key, Some(v2)).await.unwrap();
    assert_eq!(rv(&deleted), v2 + 1);
}

pub async fn objects_that_are_not_json_objects_are_refused(db: &TestDb) {
    let store = db.open().await;
    let key = host_key("alpha", "web-1");
    for object in [json!("text"), json!({"metadata": []})] {
        let result = store.create(&key, object).await;
        assert!(
            matches!(result, Err(StoreError::InvalidObject { .. })),
            "{result:?}"
        );
    }
    assert_eq!(store.current_rv().await.unwrap(), 0);
}

pub async fn resource_versions_rise_by_one_across_resources(db: &TestDb) {
    let store = db.open().await;
    let keys = [
        ObjectKey::cluster("sites", "alpha"),
        host_key("alpha", "web-1"),
        ObjectKey::cluster("runbooks", "ntp"),
        host_key("beta", "web-1"),
    ];
    let mut versions = Vec::new();
    for key in &keys {
        versions.push(rv(&store.create(key, host(key, 0)).await.unwrap()));
        versions.push(rv(&store.update(key, host(key, 1), None).await.unwrap()));
    }
    versions.push(rv(&store.delete(&keys[1], None).await.unwrap()));

    assert_eq!(versions, (1..=9).collect::<Vec<_>>());
    assert_eq!(store.current_rv().await.unwrap(), 9);
}

pub async fn data_survives_reopening(db: &TestDb) {
    let key = host_key("alpha", "web-1");
    let written = {
        let store = db.open().await;
        store.create(&key, host(&key, 1)).await.unwrap()
    };
    let store = db.open().await;
    assert_eq!(store.get(&key).await.unwrap(), written);
    let updated = store
        .update(&key, host(&key, 2), Some(rv(&written)))
        .await
        .unwrap();
    assert_eq!(rv(&updated), 2, "the counter continues after a reopen");
}

pub async fn list_pages_through_every_object_once_in_order(db: &TestDb) {
    let store = db.open().await;
    let mut expected = Vec::new();
    for i in 0..25 {
        // Three sites and names whose byte order differs from their creation order.
        let key = host_key(&format!("site-{}", i % 3), &format!("host-{:02}", 24 - i));
        store.create(&key, host(&key, i)).await.unwrap();
        expected.push((key.namespace, key.name));
    }
    expected.sort();

    let pages = list_all(&store, "hosts", None, Some(10), |_| true).await;

    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    let listed: Vec<_> = pages.concat().iter().map(namespace_and_name).collect();
    assert_eq!(listed, expected);
}

pub async fn list_filters_by_namespace(db: &TestDb) {
    let store = db.open().await;
    for site in ["alpha", "beta", "gamma"] {
        for i in 0..4 {
            let key = host_key(site, &format!("web-{i}"));
            store.create(&key, host(&key, i)).await.unwrap();
        }
    }
    let site = ObjectKey::cluster("sites", "beta");
    store.create(&site, host(&site, 0)).await.unwrap();

    let pages = list_all(&store, "hosts", Some("beta"), Some(3), |_| true).await;

    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
    let listed: Vec<_> = pages.concat().iter().map(namespace_and_name).collect();
    let expected: Vec<_> = (0..4)
        .map(|i| ("beta".to_owned(), format!("web-{i}")))
        .collect();
    assert_eq!(listed, expected);
    let sites = list_all(&store, "sites", Some(""), None, |_| true).await;
    assert_eq!(
        sites.concat().len(),
        1,
        "cluster-scoped objects live in namespace \"\""
    );
}

pub async fn the_predicate_runs_before_the_limit(db: &TestDb) {
    let store = db.open().await;
    for i in 0..30 {
        let key = host_key("alpha", &format!("web-{i:02}"));
        store.create(&key, host(&key, i)).await.unwrap();
    }
    let even = |object: &Value| value_of(object) % 2 == 0;

    let pages = list_all(&store, "hosts", None, Some(4), even).await;

    // 15 matches in pages of 4, and no empty page after the last match.
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4, 3]);
    let values: Vec<_> = pages.concat().iter().map(value_of).collect();
    assert_eq!(values, (0..30).step_by(2).collect::<Vec<_>>());
}

pub async fn a_list_reports_a_version_a_watch_can_start_from(db: &TestDb) {
    let store = db.open().await;
    let key = host_key("alpha", "web-1");
    store.create(&key, host(&key, 1)).await.unwrap();
    store
        .create(&ObjectKey::cluster("sites", "alpha"), json!({}))
        .await
        .unwrap();

    let list = store
        .list("hosts", &ListOptions::default(), |_| true)
        .await
        .unwrap();
    assert_eq!(
        list.resource_version, 2,
        "the list's version is the store's, not its items'"
    );
    let mut watch = store
        .watch("hosts", None, list.resource_version)
        .await
        .unwrap();
    store.update(&key, host(&key, 2), None).await.unwrap();

    let event = next_event(&mut watch).await;
    assert_eq!(
        (event.resource_version, event.event_type),
        (3, EventType::Modified)
    );
}

pub async fn foreign_or_garbled_continue_tokens_are_invalid(db: &TestDb) {
    let store = db.open().await;
    for i in 0..3 {
        let key = host_key("alpha", &format!("web-{i}"));
        store.create(&key, host(&key, i)).await.unwrap();
    }
    let first = list_page(&store, "hosts", Some("alpha"), Some(1), None)
        .await
        .unwrap();
    let token = first.continue_token.expect("more pages");

    for (resource, namespace, token) in [
        ("hosts", Some("alpha"), "garbage!".to_owned()),
        ("hosts", Some("beta"), token.clone()),
        ("hosts", None, token.clone()),
        ("sites", Some("alpha"), token.clone()),
    ] {
        let result = list_page(&store, resource, namespace, Some(1), Some(token)).await;
        assert!(
            matches!(result, Err(StoreError::InvalidContinue { .. })),
            "{result:?}"
        );
    }
}

pub async fn a_watch_replays_history_then_streams_live_events(db: &TestDb) {
    let store = db.open().await;
    let web1 = host_key("alpha", "web-1");
    let web2 = host_key("alpha", "web-2");
    let other_site = host_key("beta", "web-1");
    store.create(&web1, host(&web1, 1)).await.unwrap();
    store
        .create(&ObjectKey::cluster("sites", "alpha"), json!({}))
        .await
        .unwrap();
    store
        .create(&other_site, host(&other_site, 1))
        .await
        .unwrap();
    store.update(&web1, host(&web1, 2), None).await.unwrap();

    let mut all_hosts = store.watch("hosts", None, 0).await.unwrap();
    let mut alpha_hosts = store.watch("hosts", Some("alpha"), 0).await.unwrap();
    store.create(&web2, host(&web2, 1)).await.unwrap();
    store.delete(&web1, None).await.unwrap();

    let seen = |events: Vec<std::sync::Arc<osc_central::store::WatchEvent>>| {
        events
            .iter()
            .map(|event| {
                assert_eq!(rv(&event.object), event.resource_version);
                (event.resource_version, event.event_type, event.key.clone())
            })
            .collect::<Vec<_>>()
    };
    use EventType::{Added, Deleted, Modified};
    assert_eq!(
        seen(next_events(&mut all_hosts, 5).await),
        [
            (1, Added, web1.clone()),
            (3, Added, other_site.clone()),
            (4, Modified, web1.clone()),
            (5, Added, web2.clone()),
            (6, Deleted, web1.clone()),
        ]
    );
    assert_eq!(
        seen(next_events(&mut alpha_hosts, 4).await),
        [
            (1, Added, web1.clone()),
            (4, Modified, web1.clone()),
            (5, Added, web2.clone()),
            (6, Deleted, web1.clone()),
        ]
    );
}

pub async fn a_watch_from_the_current_version_sees_only_new_events(db: &TestDb) {
    let store = db.open().await;
    for i in 0..5 {
        let key = host_key("alpha", &format!("web-{i}"));
        store.create(&key, host(&key, i)).await.unwrap();
    }
    let now = store.current_rv().await.unwrap();
    let mut watch = store.watch("hosts", None, now).await.unwrap();
    let key = host_key("alpha", "new");
    store.create(&key, host(&key, 9)).await.unwrap();

    let event = next_event(&mut watch).await;
    assert_eq!((event.resource_version, &event.key), (now + 1, &key));
}

pub async fn a_watch_from_the_future_is_refused(db: &TestDb) {
    let store = db.open().await;
    let key = host_key("alpha", "web-1");
    store.create(&key, host(&key, 1)).await.unwrap();

    let result = store.watch("hosts", None, 2).await;

    assert!(matches!(
        result,
        Err(StoreError::FutureResourceVersion {
            requested: 2,
            current: 1
        })
    ));
}

pub async fn a_watch_before_the_kept_history_is_gone(db: &TestDb) {
    let store = db
        .open_with(StoreOptions {
            history: HistoryRetention {
                max_events: NonZeroU64::new(5).unwrap(),
                max_age: None,
            },
            ..options()
        })
        .await;
    let key = host_key("alpha", "web-1");
    store.create(&key, host(&key, 0)).await.unwrap();
    for i in 1..10 {
        store.update(&key, host(&key, i), None).await.unwrap();
    }
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.events, stats.oldest_event), (5, Some(6)));

    for from in [0, 4] {
        let result = store.watch("hosts", None, from).await;
        assert!(
            matches!(result, Err(StoreError::Gone { requested, oldest: 5 }) if requested == from),
            "from {from}: {:?}",
            result.err()
        );
    }
    let mut watch = store.watch("hosts", None, 5).await.unwrap();
    let versions: Vec<_> = next_events(&mut watch, 5)
        .await
        .iter()
        .map(|e| e.resource_version)
        .collect();
    assert_eq!(versions, [6, 7, 8, 9, 10]);
}

pub async fn history_older_than_its_maximum_age_is_gone(db: &TestDb) {
    let store = db
        .open_with(StoreOptions {
            history: HistoryRetention {
                max_events: NonZeroU64::new(1000).unwrap(),
                max_age: Some(Duration::from_millis(100)),
            },
            ..options()
        })
        .await;
    let key = host_key("alpha", "web-1");
    store.create(&key, host(&key, 0)).await.unwrap();
    store.update(&key, host(&key, 1), None).await.unwrap();
    // Event ages come from the wall clock, so the test must let real time pass.
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.update(&key, host(&key, 2), None).await.unwrap();

    let result = store.watch("hosts", None, 1).await;

    assert!(
        matches!(
            result,
            Err(StoreError::Gone {
                requested: 1,
                oldest: 2
            })
        ),
        "{:?}",
        result.err()
    );
    assert_eq!(store.stats().await.unwrap().events, 1);
}

pub async fn a_lagging_watcher_catches_up_from_the_table(db: &TestDb) {
    let store = db
        .open_with(StoreOptions {
            watch_buffer: 2,
            ..options()
        })
        .await;
    let mut watch = store.watch("hosts", None, 0).await.unwrap();
    // The watcher reads nothing while 40 writes overflow its channel many times over.
    for i in 0..40 {
        let key = host_key("alpha", &format!("web-{i:02}"));
        store.create(&key, host(&key, i)).await.unwrap();
    }

    let versions: Vec<_> = next_events(&mut watch, 40)
        .await
        .iter()
        .map(|e| e.resource_version)
        .collect();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());
    // And it is live again afterwards.
    let key = host_key("alpha", "late");
    store.create(&key, host(&key, 0)).await.unwrap();
    assert_eq!(next_event(&mut watch).await.resource_version, 41);
}

pub async fn a_watcher_that_lags_past_the_history_gets_gone(db: &TestDb) {
    let store = db
        .open_with(StoreOptions {
            watch_buffer: 2,
            history: HistoryRetention {
                max_events: NonZeroU64::new(5).unwrap(),
                max_age: None,
            },
            ..options()
        })
        .await;
    let mut watch = store.watch("hosts", None, 0).await.unwrap();
    for i in 0..20 {
        let key = host_key("alpha", &format!("web-{i:02}"));
        store.create(&key, host(&key, i)).await.unwrap();
    }

    let mut delivered = Vec::new();
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .unwrap()
        {
            Some(Ok(event)) => delivered.push(event.resource_version),
            Some(Err(error)) => break error,
            None => panic!("the stream ended without an error"),
        }
    };
    assert!(
        matches!(error, StoreError::Gone { oldest: 15, .. }),
        "{error:?}"
    );
    assert_eq!(delivered, (1..=delivered.len() as i64).collect::<Vec<_>>());
    assert!(
        watch.next().await.is_none(),
        "the stream ends after its error"
    );
}

pub async fn concurrent_read_modify_write_loses_no_update(db: &TestDb) {
    let store = db.open().await;
    let key = ObjectKey::cluster("counters", "shared");
    store.create(&key, host(&key, 0)).await.unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let mut conflicts = 0;
                for _ in 0..10 {
                    loop {
                        let current = store.get(&key).await.unwrap();
                        let next = host(&key, value_of(&current) + 1);
                        match store.update(&key, next, Some(rv(&current))).await {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => conflicts += 1,
                            Err(error) => panic!("{error}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }

    let counter = store.get(&key).await.unwrap();
    assert_eq!(value_of(&counter), 200);
    assert_eq!(
        rv(&counter),
        201,
        "one version per successful write, none for conflicts"
    );
    // Not asserted, only reported: how much the tasks contended.
    println!("{conflicts} conflicts were retried");
}

pub async fn stats_count_objects_per_resource_and_kept_events(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.stats().await.unwrap(), Default::default());
    for i in 0..3 {
        let key = host_key("alpha", &format!("web-{i}"));
        store.create(&key, host(&key, i)).await.unwrap();
    }
    store
        .create(&ObjectKey::cluster("sites", "alpha"), json!({}))
        .await
        .unwrap();
    store
        .delete(&host_key("alpha", "web-0"), None)
        .await
        .unwrap();

    let stats = store.stats().await.unwrap();

    assert_eq!(
        stats.objects.into_iter().collect::<Vec<_>>(),
        [("hosts".to_owned(), 2), ("sites".to_owned(), 1)]
    );
    assert_eq!(
        (stats.events, stats.oldest_event, stats.resource_version),
        (5, Some(1), 5)
    );
}

/// Regression test for transact-rs/sqlx#4393: in sqlx 0.9.0 a future dropped while its `BEGIN`
/// is in flight on PostgreSQL leaves the pooled connection inside the transaction, and the pool
/// hands it to the next borrower. A list, the stats or a watch's catch-up (`BEGIN ... READ ONLY`)
/// dropped there made the next write on that connection fail with SQLSTATE 25006. SQLite was not
/// affected (sqlx's worker rolls back a `BEGIN` whose answer nobody takes), but runs the test too:
/// a read connection left in its transaction would serve an old snapshot, which the reads after
/// each write would catch.
///
/// Every operation is dropped after each number of polls in turn, on a one-connection pool so
/// that the next operation gets that very connection. While it is polled, PostgreSQL's answers
/// arrive late and each poll comes after the answer, so poll k meets the k-th round trip (on
/// SQLite the polls fall where the worker thread's timing puts them). Afterwards the store must
/// still work.
pub async fn a_cancelled_operation_leaves_no_connection_inside_a_transaction(db: &TestDb) {
    let one_connection = StoreOptions {
        max_connections: 1,
        ..options()
    };
    let (store, lateness) = db.open_with_late_answers(one_connection).await;
    let mut round = 0;
    for operation in Operation::ALL {
        for polls in 1.. {
            assert!(polls < 100, "{operation:?} does not finish");
            round += 1;
            // Update and delete need an object of their own.
            let target = host_key("target", &format!("t-{round:04}"));
            store.create(&target, host(&target, 0)).await.unwrap();
            // PostgreSQL's feeder reads the event of that write on the one connection: let it
            // finish, so that the polls meet the operation's own awaits.
            tokio::time::sleep(SETTLE).await;
            lateness.set(LATE);
            let finished = poll_then_drop(operation.start(&store, &target), polls).await;
            lateness.set(Duration::ZERO);
            if let Some(result) = finished {
                result.unwrap_or_else(|error| panic!("{operation:?} failed: {error}"));
                break;
            }
            assert_store_works(
                &store,
                round,
                &format!("{operation:?} dropped after {polls} polls"),
            )
            .await;
        }
    }
    // A write that was dropped took all or nothing: each kept version has its event.
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.events, stats.resource_version.unsigned_abs());
}

/// The store operations that [`a_cancelled_operation_leaves_no_connection_inside_a_transaction`]
/// drops midway.
#[derive(Debug, Clone, Copy)]
enum Operation {
    Create,
    Update,
    Delete,
    Get,
    List,
    Stats,
    CurrentRv,
    Watch,
}

impl Operation {
    const ALL: [Self; 8] = [
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Get,
        Self::List,
        Self::Stats,
        Self::CurrentRv,
        Self::Watch,
    ];

    /// The operation's future, on `target` (an existing object) or beside it.
    fn start<'a>(
        self,
        store: &'a Store,
        target: &'a ObjectKey,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        match self {
            Self::Create => {
                let key = host_key("created", &target.name);
                async move { store.create(&key, host(&key, 1)).await.map(drop) }.boxed()
            }
            Self::Update => store
                .update(target, host(target, 1), None)
                .map_ok(drop)
                .boxed(),
            Self::Delete => store.delete(target, None).map_ok(drop).boxed(),
            Self::Get => store.get(target).map_ok(drop).boxed(),
            Self::List => async move {
                store
                    .list("hosts", &ListOptions::default(), |_| true)
                    .await
                    .map(drop)
            }
            .boxed(),
            Self::Stats => store.stats().map_ok(drop).boxed(),
            Self::CurrentRv => store.current_rv().map_ok(drop).boxed(),
            Self::Watch => store.watch("hosts", None, 0).map_ok(drop).boxed(),
        }
    }
}

/// How late the relay delivers each of PostgreSQL's answers: long enough that no answer arrives
/// within the poll that sent its request.
const LATE: Duration = Duration::from_millis(2);

/// Long enough for a late answer to have arrived.
const PAUSE: Duration = Duration::from_millis(10);

/// Long enough for PostgreSQL's feeder to read the event of a write and free the connection.
const SETTLE: Duration = Duration::from_millis(30);

/// Polls `operation` up to `polls` times, pausing before each poll after the first long enough
/// for the database to answer what it awaits, and drops it if it has not finished by then.
async fn poll_then_drop<T>(operation: BoxFuture<'_, T>, polls: usize) -> Option<T> {
    let mut operation = operation;
    for poll in 0..polls {
        if poll > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        if let Poll::Ready(output) = futures::poll!(operation.as_mut()) {
            return Some(output);
        }
    }
    None
}

/// Writes, then reads back through every read path; `context` says what happened before.
async fn assert_store_works(store: &Store, round: usize, context: &str) {
    let fail = |step: &str, error: StoreError| -> ! {
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        panic!("{context}, then {step}: {error} ({cause:?})")
    };
    let key = host_key("check", &format!("c-{round:04}"));
    let created = store
        .create(&key, host(&key, 0))
        .await
        .unwrap_or_else(|error| fail("creating", error));
    let version = rv(&created);
    let got = store
        .get(&key)
        .await
        .unwrap_or_else(|error| fail("getting", error));
    assert_eq!(got, created, "{context}, then getting");
    let in_check = ListOptions {
        namespace: Some("check".to_owned()),
        ..ListOptions::default()
    };
    let list = store
        .list("hosts", &in_check, |_| true)
        .await
        .unwrap_or_else(|error| fail("listing", error));
    assert_eq!(list.items.last(), Some(&created), "{context}, then listing");
    assert!(list.resource_version >= version, "{context}, then listing");
    let mut watch = store
        .watch("hosts", Some("check"), version - 1)
        .await
        .unwrap_or_else(|error| fail("watching", error));
    assert_eq!(
        next_event(&mut watch).await.object,
        created,
        "{context}, then watching"
    );
}

/// Every page of a list, following continue tokens; checks that no page repeats an object.
async fn list_all(
    store: &Store,
    resource: &str,
    namespace: Option<&str>,
    limit: Option<u64>,
    predicate: impl Fn(&Value) -> bool + Sync,
) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut seen = BTreeSet::new();
    let mut token = None;
    loop {
        let options = ListOptions {
            namespace: namespace.map(str::to_owned),
            limit,
            continue_token: token,
        };
        let page = store.list(resource, &options, &predicate).await.unwrap();
        for item in &page.items {
            assert!(seen.insert(namespace_and_name(item)), "{item} listed twice");
        }
        pages.push(page.items);
        token = page.continue_token;
        if token.is_none() {
            return pages;
        }
        assert!(pages.len() < 100, "the list does not end");
    }
}

/// One page of a list.
async fn list_page(
    store: &Store,
    resource: &str,
    namespace: Option<&str>,
    limit: Option<u64>,
    continue_token: Option<String>,
) -> Result<osc_central::store::ObjectList, StoreError> {
    let options = ListOptions {
        namespace: namespace.map(str::to_owned),
        limit,
        continue_token,
    };
    store.list(resource, &options, |_| true).await
}

/// An object's (namespace, name), as stamped by [`host`].
fn namespace_and_name(object: &Value) -> (String, String) {
    let field = |name: &str| {
        object["metadata"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    (field("namespace"), field("name"))
}
