//! `kill -9` while evidence is being appended: a child process (this test binary again, running
//! `crash_child`) appends signed bundles to a real outbox file as fast as it can and prints each
//! seq once its transaction committed; the parent kills it with SIGKILL at an arbitrary moment,
//! reopens the file and checks that every committed bundle is there exactly once, the chain
//! verifies from seq 1 to the stored head, and the next run continues it.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::Utc;
use osc_controller::evidence::EvidenceChain;
use osc_controller::outbox::{EntryKind, OutboxStore as _, SqliteOutbox};
use osc_proto::chain::verify_chain;
use osc_proto::dsse::{Envelope, Signer};

mod common;
use common::record;

/// Set in the child's environment: the outbox file to append to.
const CHILD_OUTBOX: &str = "OSC_CRASH_CHILD_OUTBOX";

fn signer() -> Signer {
    Signer::from_seed(&[42; 32])
}

/// The child's side: a no-op unless the parent set [`CHILD_OUTBOX`].
#[tokio::test]
async fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_OUTBOX) else {
        return;
    };
    let store = SqliteOutbox::open(Path::new(&path)).await.unwrap();
    let mut chain = EvidenceChain::open(&store, "box1", signer()).await.unwrap();
    loop {
        let seq = record(&store, &mut chain, 1).await;
        println!("committed {seq}");
    }
}

/// Runs the child until it reported `count` commits, then kills it with SIGKILL; returns the
/// seqs it reported.
fn run_child_and_kill(outbox: &Path, count: usize) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_OUTBOX, outbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut committed = Vec::new();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if let Some(seq) = line.unwrap().strip_prefix("committed ") {
            committed.push(seq.parse().unwrap());
            if committed.len() == count {
                break;
            }
        }
    }
    // Child::kill sends SIGKILL: no destructor, no close, mid-transaction at any point.
    child.kill().unwrap();
    child.wait().unwrap();
    committed
}

#[tokio::test]
async fn kill_9_while_appending_loses_nothing_and_forks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.sqlite3");
    let mut reported = Vec::new();
    for round in 0..3 {
        reported.extend(run_child_and_kill(&path, 15 + round * 7));
        let store = SqliteOutbox::open(&path).await.unwrap();
        let mut envelopes: Vec<Envelope> = Vec::new();
        let mut seqs = Vec::new();
        while let Some(entry) = store.next(EntryKind::Evidence).await.unwrap() {
            envelopes.push(serde_json::from_slice(&entry.body).unwrap());
            seqs.push(entry.seq.unwrap());
            store.delivered(entry.id, Utc::now()).await.unwrap();
        }
        // Mark them undelivered again so the next round reads the whole chain.
        store.resend_from(1).await.unwrap();
        let head = store.chain_head().await.unwrap().unwrap();
        assert_eq!(
            seqs,
            (1..=head.seq).collect::<Vec<_>>(),
            "round {round}: dense, once each"
        );
        for seq in &reported {
            assert!(
                seqs.contains(seq),
                "round {round}: committed seq {seq} lost"
            );
        }
        let verified = verify_chain(&envelopes, "box1", &signer().public_key(), None).unwrap();
        assert_eq!(
            verified.head,
            Some(head),
            "round {round}: the stored head is the chain's"
        );
        store.close().await;
    }
    // The parent continues the chain where the last child left it.
    let store = SqliteOutbox::open(&path).await.unwrap();
    let mut chain = EvidenceChain::open(&store, "box1", signer()).await.unwrap();
    let before = chain.head().unwrap().seq;
    assert_eq!(record(&store, &mut chain, 1).await, before + 1);
    store.close().await;
}
