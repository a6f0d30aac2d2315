//! PostgreSQL with several central replicas: two store instances on one database.

use std::collections::BTreeMap;

use osc_central::store::{EventType, ObjectKey, Store, StoreError};

use crate::fixture::{Kind, TestDb, host, host_key, next_events, rv, value_of};

/// Writers on both replicas at once; a watch on each replica must see every write, in
/// resourceVersion order, with no gap or duplicate, and both must see the same sequence.
/// Guards against the out-of-order commit pitfall: were versions taken from a sequence, a
/// transaction could commit version 10 after another committed 11, and a watcher that had moved
/// past 11 would never deliver 10.
#[tokio::test]
async fn watches_on_each_replica_see_all_writes_in_order() {
    let db = TestDb::new(Kind::Postgres).await;
    let (a, b) = (db.open().await, db.open().await);
    let mut watch_a = a.watch("hosts", None, 0).await.unwrap();
    let mut watch_b = b.watch("hosts", None, 0).await.unwrap();

    const WRITERS_PER_REPLICA: usize = 4;
    const OBJECTS_PER_WRITER: usize = 15;
    let writers: Vec<_> = [&a, &b]
        .into_iter()
        .enumerate()
        .flat_map(|(replica, store)| {
            (0..WRITERS_PER_REPLICA).map(move |writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..OBJECTS_PER_WRITER {
                        let key = host_key(&format!("site-{replica}"), &format!("w{writer}-{i}"));
                        let created = store.create(&key, host(&key, 0)).await.unwrap();
                        store
                            .update(&key, host(&key, 1), Some(rv(&created)))
                            .await
                            .unwrap();
                    }
                })
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }

    let writes = 2 * WRITERS_PER_REPLICA * OBJECTS_PER_WRITER * 2;
    let seen_a = next_events(&mut watch_a, writes).await;
    let seen_b = next_events(&mut watch_b, writes).await;
    let versions: Vec<_> = seen_a.iter().map(|event| event.resource_version).collect();
    assert_eq!(versions, (1..=writes as i64).collect::<Vec<_>>());
    assert_eq!(seen_a, seen_b, "both replicas deliver the same sequence");
    // Each object was added, then modified, in that order.
    let mut per_object: BTreeMap<ObjectKey, Vec<EventType>> = BTreeMap::new();
    for event in &seen_a {
        assert_eq!(rv(&event.object), event.resource_version);
        per_object
            .entry(event.key.clone())
            .or_default()
            .push(event.event_type);
    }
    assert_eq!(per_object.len(), writes / 2);
    assert!(
        per_object
            .values()
            .all(|types| types == &[EventType::Added, EventType::Modified])
    );
    assert_eq!(a.current_rv().await.unwrap(), writes as i64);
    drop((a, b, watch_a, watch_b));
    db.remove().await;
}

/// Read-modify-write through two replicas at once loses no increment.
#[tokio::test]
async fn read_modify_write_across_replicas_loses_no_update() {
    let db = TestDb::new(Kind::Postgres).await;
    let (a, b) = (db.open().await, db.open().await);
    let key = ObjectKey::cluster("counters", "shared");
    a.create(&key, host(&key, 0)).await.unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|task| {
            let store: Store = if task % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let current = store.get(&key).await.unwrap();
                        let next = host(&key, value_of(&current) + 1);
                        match store.update(&key, next, Some(rv(&current))).await {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => {}
                            Err(error) => panic!("{error}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    assert_eq!(value_of(&b.get(&key).await.unwrap()), 200);
    drop((a, b));
    db.remove().await;
}
