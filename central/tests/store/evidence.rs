//! The evidence log's storage and Merkle state, run against every backend (see `on_every_backend!`):
//! chain decisions inside the write transaction, alerts, write-once tables enforced by the
//! database, queries, and the in-memory tree against the table on one process and on replicas.

use chrono::{DateTime, Duration, Utc};
use osc_central::evidence::EvidenceLog;
use osc_central::store::{EvidenceFilter, Ingested, NewEvidence, Reused, Store};
use osc_proto::dsse::Signer;
use osc_proto::evidence::Sha256Digest;
use osc_proto::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use sqlx::Row as _;

use crate::fixture::TestDb;

/// A stand-in for a verified envelope: the store trusts its caller for signatures and schema, so
/// the tests need only consistent chain fields. `variant` changes the payload (a fork).
fn entry(site: &str, appliance: &str, seq: u64, prev: Sha256Digest, variant: &str) -> NewEvidence {
    let payload = format!("{site}/{appliance}/{seq}/{variant}");
    let start: DateTime<Utc> = "2026-03-01T02:00:00Z".parse().unwrap();
    NewEvidence {
        site: site.into(),
        appliance: appliance.into(),
        seq,
        prev_hash: prev,
        payload_hash: Sha256Digest::of(payload.as_bytes()),
        bundle_id: format!("{site}-{appliance}-{seq}-{variant}"),
        host: format!("host-{}", seq % 2),
        runbook: format!("runbook-{}", seq % 3),
        outcome: if seq.is_multiple_of(2) {
            "pass"
        } else {
            "healed"
        }
        .into(),
        timestamp_end: start + Duration::minutes(i64::try_from(seq).unwrap()),
        envelope: format!("{{\"payload\":\"{payload}\"}}"),
        public_key: format!("key-of-{appliance}"),
    }
}

/// The first `n` links of an appliance's chain.
fn chain(site: &str, appliance: &str, n: u64) -> Vec<NewEvidence> {
    let mut prev = Sha256Digest::ZERO;
    (1..=n)
        .map(|seq| {
            let next = entry(site, appliance, seq, prev, "a");
            prev = next.payload_hash;
            next
        })
        .collect()
}

/// Every stored envelope, in log order.
async fn everything(store: &Store) -> Vec<osc_central::store::EvidenceRecord> {
    store
        .list_evidence(&EvidenceFilter::default())
        .await
        .unwrap()
        .items
}

pub async fn a_chain_is_appended_in_log_order_and_retries_are_duplicates(db: &TestDb) {
    let store = db.open().await;
    let links = chain("alpha", "box", 3);
    let outcomes = store.append_evidence(&links).await.unwrap();
    assert_eq!(
        outcomes,
        (0..3)
            .map(|log_index| Ingested::Appended { log_index })
            .collect::<Vec<_>>(),
        "one batch may carry consecutive links of one chain"
    );
    let retried = store
        .append_evidence(&[links[1].clone(), links[2].clone()])
        .await
        .unwrap();
    assert_eq!(
        retried,
        [
            Ingested::Duplicate { log_index: 1 },
            Ingested::Duplicate { log_index: 2 }
        ]
    );
    let stored = everything(&store).await;
    assert_eq!(stored.len(), 3, "a duplicate stores nothing");
    assert_eq!(stored[2].envelope, links[2].envelope);
    assert_eq!(stored[2].bundle_id, links[2].bundle_id);
    assert_eq!(stored[2].timestamp_end, links[2].timestamp_end);
    assert_eq!(
        store.evidence_leaf_hashes(1).await.unwrap(),
        vec![
            leaf_hash(links[1].envelope.as_bytes()),
            leaf_hash(links[2].envelope.as_bytes())
        ],
        "the leaf is the hash of the stored envelope bytes"
    );
}

pub async fn forks_gaps_and_broken_links_are_refused_and_forks_alerted(db: &TestDb) {
    let store = db.open().await;
    let links = chain("alpha", "box", 3);
    store.append_evidence(&links).await.unwrap();
    let before = everything(&store).await;

    let fork = entry("alpha", "box", 2, links[0].payload_hash, "forked");
    let reused_id = NewEvidence {
        bundle_id: links[0].bundle_id.clone(),
        ..entry("alpha", "box", 4, links[2].payload_hash, "a")
    };
    let gap = entry("alpha", "box", 6, Sha256Digest::ZERO, "a");
    let broken = entry("alpha", "box", 4, Sha256Digest::of(b"not the head"), "a");
    let outcomes = store
        .append_evidence(&[fork.clone(), reused_id, gap, broken])
        .await
        .unwrap();
    assert!(
        matches!(
            outcomes[0],
            Ingested::Conflict {
                reused: Reused::Seq(2),
                ..
            }
        ),
        "{outcomes:?}"
    );
    assert!(
        matches!(
            outcomes[1],
            Ingested::Conflict {
                reused: Reused::BundleId,
                ..
            }
        ),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], Ingested::Gap { expected: 4 });
    assert_eq!(
        outcomes[3],
        Ingested::BrokenLink {
            expected_prev_hash: links[2].payload_hash
        }
    );
    assert_eq!(
        everything(&store).await,
        before,
        "nothing refused is stored"
    );

    let alerts = store.evidence_alerts(Some("alpha")).await.unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(
        (alerts[0].seq, alerts[0].reason.as_str()),
        (2, "seq-reused")
    );
    assert_eq!(
        alerts[0].stored_payload_hash,
        Some(links[1].payload_hash.to_string())
    );
    assert_eq!(
        alerts[0].received_payload_hash,
        fork.payload_hash.to_string()
    );
    assert_eq!(alerts[1].reason, "bundle-id-reused");
    assert!(
        store
            .evidence_alerts(Some("beta"))
            .await
            .unwrap()
            .is_empty(),
        "alerts are per site"
    );
    assert_eq!(store.evidence_alerts(None).await.unwrap(), alerts);

    // The chain is intact: its next link is still accepted.
    let next = entry("alpha", "box", 4, links[2].payload_hash, "a");
    assert_eq!(
        store.append_evidence(&[next]).await.unwrap(),
        [Ingested::Appended { log_index: 3 }]
    );
}

pub async fn the_database_refuses_to_update_or_delete_evidence(db: &TestDb) {
    let store = db.open().await;
    let links = chain("alpha", "box", 2);
    store.append_evidence(&links).await.unwrap();
    let fork = entry("alpha", "box", 1, Sha256Digest::ZERO, "forked");
    store.append_evidence(&[fork]).await.unwrap();
    let evidence_before = everything(&store).await;
    let alerts_before = store.evidence_alerts(None).await.unwrap();

    let mut raw = db.raw_connection().await;
    for statement in [
        "UPDATE evidence SET outcome = 'pass', envelope = '{}'",
        "UPDATE evidence SET log_index = log_index + 100 WHERE seq = 2",
        "DELETE FROM evidence",
        "DELETE FROM evidence WHERE seq = 2",
        "UPDATE evidence_alerts SET reason = 'nothing'",
        "DELETE FROM evidence_alerts",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut raw)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("write-once"),
            "{statement}: {error}"
        );
    }
    let counted: i64 = sqlx::query("SELECT COUNT(*) FROM evidence")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, 2);
    assert_eq!(everything(&store).await, evidence_before);
    assert_eq!(store.evidence_alerts(None).await.unwrap(), alerts_before);
}

pub async fn evidence_is_queried_by_site_host_runbook_outcome_and_time_in_pages(db: &TestDb) {
    let store = db.open().await;
    let mut all = chain("alpha", "box", 12);
    all.extend(chain("beta", "box", 5));
    store.append_evidence(&all).await.unwrap();

    let alpha = EvidenceFilter {
        site: Some("alpha".into()),
        ..EvidenceFilter::default()
    };
    let seqs = |filter: EvidenceFilter| {
        let store = store.clone();
        async move {
            let page = store.list_evidence(&filter).await.unwrap();
            assert!(page.items.iter().all(|r| r.site == "alpha"));
            page.items.iter().map(|r| r.seq).collect::<Vec<_>>()
        }
    };
    assert_eq!(seqs(alpha.clone()).await, (1..=12).collect::<Vec<_>>());
    assert_eq!(
        seqs(EvidenceFilter {
            host: Some("host-0".into()),
            runbook: Some("runbook-0".into()),
            ..alpha.clone()
        })
        .await,
        [6, 12]
    );
    assert_eq!(
        seqs(EvidenceFilter {
            outcome: Some("healed".into()),
            ..alpha.clone()
        })
        .await,
        [1, 3, 5, 7, 9, 11]
    );
    let start: DateTime<Utc> = "2026-03-01T02:00:00Z".parse().unwrap();
    assert_eq!(
        seqs(EvidenceFilter {
            since: Some(start + Duration::minutes(3)),
            until: Some(start + Duration::minutes(6)),
            ..alpha.clone()
        })
        .await,
        [3, 4, 5],
        "since is inclusive, until exclusive"
    );

    // Pages of 5 cover every match once, in log order.
    let mut filter = EvidenceFilter {
        limit: Some(5),
        ..alpha
    };
    let mut pages = Vec::new();
    loop {
        let page = store.list_evidence(&filter).await.unwrap();
        pages.push(page.items.iter().map(|r| r.seq).collect::<Vec<_>>());
        match page.more_after {
            Some(after) => filter.after = Some(after),
            None => break,
        }
    }
    assert_eq!(
        pages,
        [vec![1, 2, 3, 4, 5], vec![6, 7, 8, 9, 10], vec![11, 12]]
    );
    let by_bundle = store
        .evidence_by_bundle(&all[13].bundle_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_bundle.site.as_str(), by_bundle.seq, by_bundle.log_index),
        ("beta", 2, 13)
    );
    assert_eq!(store.evidence_at(13).await.unwrap(), Some(by_bundle));
    assert_eq!(store.evidence_at(17).await.unwrap(), None);
}

pub async fn concurrent_submissions_build_one_tree_that_replicas_agree_on(db: &TestDb) {
    let store = db.open().await;
    let key = Signer::from_seed(&[9; 32]);
    let log = EvidenceLog::start(store.clone(), Signer::from_seed(&[9; 32]));
    // 20 appliances post their chains at once; each chain's links go in order.
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for link in chain("alpha", &format!("box-{n}"), 10) {
                    answers.push(log.submit(link).await.unwrap());
                }
                answers
            })
        })
        .collect();
    let mut indexes = Vec::new();
    for task in tasks {
        for answer in task.await.unwrap() {
            let Ingested::Appended { log_index } = answer else {
                panic!("every link is appended: {answer:?}");
            };
            indexes.push(log_index);
        }
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..200).collect::<Vec<_>>(), "indexes are dense");
    assert_eq!(log.size(), 200, "an answered append is in the tree");

    let now = Utc::now();
    let head = log.tree_head(now).await.unwrap();
    head.verify(&key.public_key()).unwrap();
    assert_eq!((head.size, head.timestamp), (200, now));
    for record in everything(&store).await.iter().step_by(17) {
        let proof = log.inclusion(record.log_index, head.size).await.unwrap();
        verify_inclusion(
            &leaf_hash(record.envelope.as_bytes()),
            record.log_index,
            head.size,
            &proof.hashes,
            &head.root,
        )
        .unwrap();
    }

    // Another process on the same database (a replica, or a restart) rebuilds the same tree, and
    // proves its earlier heads consistent with later ones.
    let replica = EvidenceLog::start(db.open().await, Signer::from_seed(&[9; 32]));
    assert_eq!(replica.tree_head(now).await.unwrap(), head);
    let old = replica.tree_head_at(50, now).await.unwrap();
    let proof = replica.consistency(50, 200).await.unwrap();
    verify_consistency(50, 200, &old.root, &head.root, &proof.hashes).unwrap();

    // Entries appended through one process reach the other's tree when it next answers.
    log.submit(entry("alpha", "late", 1, Sha256Digest::ZERO, "a"))
        .await
        .unwrap();
    assert_eq!(replica.tree_head(now).await.unwrap().size, 201);
    assert!(
        replica.inclusion(0, 202).await.is_err(),
        "no proof for a size the log has not reached"
    );
}
