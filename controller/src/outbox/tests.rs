//! The outbox's tests: a model-based property test of the SQLite store against the in-memory
//! one, and the cases the model alone would not show (retention order, gap answers, fork
//! refusal).

use chrono::TimeDelta;
use osc_crds::Duration;
use proptest::prelude::*;

use super::*;

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    /// Append the next evidence envelope with this body.
    Append(Vec<u8>),
    /// Try to append on a stale head (a second writer): must be refused by both.
    AppendStale,
    /// Enqueue a status patch or a notification.
    Enqueue(EntryKind, Vec<u8>),
    /// Deliver the oldest entry of a kind successfully.
    Deliver(EntryKind),
    /// Fail to deliver the oldest entry of a kind.
    Fail(EntryKind),
    /// Central answers a gap: resend from head - back (possibly pruned or absent).
    Gap(u64),
    /// Drop the store without closing it and reopen the file.
    Crash,
    /// Close the store and reopen the file.
    Restart,
    /// Prune with this many delivered entries kept and this age in ms.
    Prune(u64, u64),
    /// Let time pass.
    Advance(u32),
}

fn kind() -> impl Strategy<Value = EntryKind> {
    prop_oneof![
        Just(EntryKind::Evidence),
        Just(EntryKind::Status),
        Just(EntryKind::Notification)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let body = proptest::collection::vec(any::<u8>(), 0..16);
    prop_oneof![
        4 => body.clone().prop_map(Op::Append),
        1 => Just(Op::AppendStale),
        2 => (prop_oneof![Just(EntryKind::Status), Just(EntryKind::Notification)], body)
            .prop_map(|(k, b)| Op::Enqueue(k, b)),
        4 => kind().prop_map(Op::Deliver),
        2 => kind().prop_map(Op::Fail),
        1 => (0u64..6).prop_map(Op::Gap),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
        1 => (0u64..5, 0u64..5_000).prop_map(|(n, age)| Op::Prune(n, age)),
        2 => (0u32..3_000).prop_map(Op::Advance),
    ]
}

/// What a store holds, as comparable rows: (id, kind, seq, body, attempts, delivered).
type Snapshot = (
    Vec<(i64, EntryKind, Option<u64>, Vec<u8>, u32, bool)>,
    Option<ChainHead>,
);

async fn snapshot_sqlite(store: &SqliteOutbox) -> Snapshot {
    let rows = sqlx::query(
        "SELECT id, kind, seq, body, attempts, delivered_ms IS NOT NULL FROM entries ORDER BY id",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    let rows = rows
        .into_iter()
        .map(|r| {
            (
                r.get::<i64, _>(0),
                r.get::<String, _>(1).parse().unwrap(),
                r.get::<Option<i64>, _>(2).map(i64::unsigned_abs),
                r.get::<Vec<u8>, _>(3),
                u32::try_from(r.get::<i64, _>(4)).unwrap(),
                r.get::<bool, _>(5),
            )
        })
        .collect();
    (rows, store.chain_head().await.unwrap())
}

fn snapshot_memory(store: &MemoryOutbox) -> Snapshot {
    let rows = store
        .entries()
        .into_iter()
        .map(|(e, delivered)| (e.id, e.kind, e.seq, e.body, e.attempts, delivered))
        .collect();
    (rows, store.with(|m| m.head))
}

/// The head after appending `body` on `prev`: a stand-in for ChainBuilder (the chain itself is
/// tested in `evidence`), hashing the body so that heads differ.
fn next_head(prev: Option<ChainHead>, body: &[u8]) -> ChainHead {
    ChainHead {
        seq: prev.map_or(1, |h| h.seq + 1),
        payload_hash: Sha256Digest::of(body),
    }
}

fn retention(entries: u64, age_ms: u64) -> Retention {
    Retention {
        max_age: Duration::from_std(std::time::Duration::from_millis(age_ms)),
        max_entries: entries,
    }
}

/// Same outcome on both sides: both Ok with equal values, or both the same kind of error.
fn same<T: PartialEq + std::fmt::Debug>(model: Result<T, Error>, real: Result<T, Error>, op: &Op) {
    match (model, real) {
        (Ok(m), Ok(r)) => assert_eq!(m, r, "{op:?}"),
        (Err(Error::ChainMoved { .. }), Err(Error::ChainMoved { .. })) => {}
        (
            Err(Error::GapPruned {
                expected: a,
                oldest: b,
            }),
            Err(Error::GapPruned {
                expected: c,
                oldest: d,
            }),
        ) => {
            assert_eq!((a, b), (c, d), "{op:?}");
        }
        (m, r) => panic!("{op:?}: model {m:?}, store {r:?}"),
    }
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite3");
    let model = MemoryOutbox::new();
    let mut real = Some(SqliteOutbox::open(&path).await.unwrap());
    let mut now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    for op in &ops {
        let store = real.as_ref().unwrap();
        match op {
            Op::Append(body) => {
                let prev = model.chain_head().await.unwrap();
                let head = next_head(prev, body);
                same(
                    model.append_evidence(prev, head, body, now).await,
                    store.append_evidence(prev, head, body, now).await,
                    op,
                );
            }
            Op::AppendStale => {
                let stale = model
                    .chain_head()
                    .await
                    .unwrap()
                    .and_then(|h| (h.seq > 1).then(|| next_head(None, b"stale")));
                let head = next_head(stale, b"fork");
                same(
                    model.append_evidence(stale, head, b"fork", now).await,
                    store.append_evidence(stale, head, b"fork", now).await,
                    op,
                );
            }
            Op::Enqueue(kind, body) => same(
                model.enqueue(*kind, body, now).await,
                store.enqueue(*kind, body, now).await,
                op,
            ),
            Op::Deliver(kind) | Op::Fail(kind) => {
                let m = model.next(*kind).await.unwrap();
                let r = store.next(*kind).await.unwrap();
                assert_eq!(m, r, "{op:?}");
                if let Some(entry) = m {
                    if matches!(op, Op::Deliver(_)) {
                        model.delivered(entry.id, now).await.unwrap();
                        store.delivered(entry.id, now).await.unwrap();
                    } else {
                        same(
                            model.failed(entry.id).await,
                            store.failed(entry.id).await,
                            op,
                        );
                    }
                }
            }
            Op::Gap(back) => {
                let seq = model
                    .chain_head()
                    .await
                    .unwrap()
                    .map_or(1, |h| (h.seq + 1).saturating_sub(*back).max(1));
                same(
                    model.resend_from(seq).await,
                    store.resend_from(seq).await,
                    op,
                );
            }
            Op::Crash => {
                // Dropped mid-life, as a kill -9 would leave it: no close, no checkpoint.
                drop(real.take());
                real = Some(SqliteOutbox::open(&path).await.unwrap());
            }
            Op::Restart => {
                real.take().unwrap().close().await;
                real = Some(SqliteOutbox::open(&path).await.unwrap());
            }
            Op::Prune(entries, age) => {
                let policy = retention(*entries, *age);
                same(
                    model.prune(&policy, now).await,
                    store.prune(&policy, now).await,
                    op,
                );
            }
            Op::Advance(ms) => now += TimeDelta::milliseconds(i64::from(*ms)),
        }
        let store = real.as_ref().unwrap();
        assert_eq!(
            snapshot_memory(&model),
            snapshot_sqlite(store).await,
            "after {op:?}"
        );
        assert_eq!(
            model.depth().await.unwrap(),
            store.depth().await.unwrap(),
            "after {op:?}"
        );
    }
    real.take().unwrap().close().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The SQLite store behaves as the in-memory model after every step, crashes included.
    #[test]
    fn sqlite_store_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops));
    }
}

#[tokio::test]
async fn pruning_keeps_every_undelivered_entry_and_drops_the_oldest_delivered_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteOutbox::open(&dir.path().join("o.sqlite3"))
        .await
        .unwrap();
    let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    let mut head = None;
    for i in 0..6u8 {
        let next = next_head(head, &[i]);
        store
            .append_evidence(head, next, &[i], t0 + TimeDelta::seconds(i.into()))
            .await
            .unwrap();
        head = Some(next);
    }
    // Deliver seqs 1..=4; 5 and 6 stay undelivered.
    for _ in 0..4 {
        let entry = store.next(EntryKind::Evidence).await.unwrap().unwrap();
        store.delivered(entry.id, t0).await.unwrap();
    }
    let seqs = |s: Snapshot| s.0.iter().map(|r| (r.2.unwrap(), r.5)).collect::<Vec<_>>();
    // Keep two delivered: seqs 1 and 2 go.
    assert_eq!(
        store.prune(&retention(2, u64::MAX / 2), t0).await.unwrap(),
        2
    );
    assert_eq!(
        seqs(snapshot_sqlite(&store).await),
        [(3, true), (4, true), (5, false), (6, false)]
    );
    // An age of zero an hour later removes every delivered entry and nothing undelivered.
    let later = t0 + TimeDelta::hours(1);
    assert_eq!(store.prune(&retention(100, 0), later).await.unwrap(), 2);
    assert_eq!(
        seqs(snapshot_sqlite(&store).await),
        [(5, false), (6, false)]
    );
    // Central asking for seq 3 again: it was pruned, which is an error that says so.
    let error = store.resend_from(3).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::GapPruned {
                expected: 3,
                oldest: Some(5)
            }
        ),
        "{error}"
    );
    store.close().await;
}

#[tokio::test]
async fn a_gap_answer_resends_from_the_expected_seq_in_order() {
    let store = MemoryOutbox::new();
    let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    let mut head = None;
    for i in 1..=4u8 {
        let next = next_head(head, &[i]);
        store.append_evidence(head, next, &[i], now).await.unwrap();
        head = Some(next);
        let entry = store.next(EntryKind::Evidence).await.unwrap().unwrap();
        store.delivered(entry.id, now).await.unwrap();
    }
    store.resend_from(2).await.unwrap();
    let mut resent = Vec::new();
    while let Some(entry) = store.next(EntryKind::Evidence).await.unwrap() {
        resent.push(entry.seq.unwrap());
        store.delivered(entry.id, now).await.unwrap();
    }
    assert_eq!(resent, [2, 3, 4]);
}
