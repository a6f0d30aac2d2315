//! Draining the outbox: each kind in its own loop, oldest entry first, one at a time, so each
//! kind arrives in order; a failed delivery backs off exponentially with jitter and retries the
//! same entry; a gap answer rewinds the evidence to the seq central expects.

use std::future::Future;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::Error;
use crate::central::{Answer, Central, StatusPatch};
use crate::outbox::{Entry, EntryKind, OutboxStore};
use crate::queue::Backoff;

/// Where entries go: central for evidence and status, notification targets for notifications.
pub trait Sink: Send + Sync {
    /// Delivers one entry.
    fn send(&self, entry: &Entry) -> impl Future<Output = Answer> + Send;
}

/// Evidence and status entries to central, for the site `site`.
#[derive(Debug)]
pub struct ToCentral<'a, C> {
    /// The central client.
    pub central: &'a C,
    /// The site status patches belong to.
    pub site: &'a str,
}

impl<C: Central> Sink for ToCentral<'_, C> {
    async fn send(&self, entry: &Entry) -> Answer {
        match entry.kind {
            EntryKind::Evidence => self.central.post_evidence(&entry.body).await,
            EntryKind::Status => match serde_json::from_slice::<StatusPatch>(&entry.body) {
                Ok(patch) => self.central.patch_status(self.site, &patch).await,
                Err(e) => Answer::Obsolete(format!(
                    "outbox entry {} is not a status patch: {e}",
                    entry.id
                )),
            },
            EntryKind::Notification => {
                Answer::Retry("notifications go to the site's targets, not central".to_owned())
            }
        }
    }
}

/// How a drain ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drained {
    /// Nothing of the kind is left.
    Empty,
    /// The oldest entry could not be delivered; retry later.
    Blocked(String),
}

/// Delivers entries of `kind` from `store` to `sink`, oldest first, until none is left or one
/// fails. `now` stamps deliveries.
pub async fn drain(
    store: &impl OutboxStore,
    sink: &impl Sink,
    kind: EntryKind,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Drained, Error> {
    while let Some(entry) = store.next(kind).await? {
        match sink.send(&entry).await {
            Answer::Accepted => store.delivered(entry.id, now()).await?,
            Answer::Obsolete(reason) => {
                tracing::warn!(id = entry.id, kind = kind.as_str(), %reason, "dropping an undeliverable outbox entry");
                store.delivered(entry.id, now()).await?;
            }
            Answer::Gap { expected } => {
                tracing::warn!(
                    expected,
                    sent = entry.seq,
                    "central asks for earlier evidence; resending from there"
                );
                match store.resend_from(expected).await {
                    Ok(()) => {}
                    Err(error @ Error::GapPruned { .. }) => {
                        return Ok(Drained::Blocked(error.to_string()));
                    }
                    Err(error) => return Err(error),
                }
            }
            Answer::Retry(reason) => {
                let attempts = store.failed(entry.id).await?;
                return Ok(Drained::Blocked(format!(
                    "outbox entry {} ({}) not delivered after {attempts} attempts: {reason}",
                    entry.id,
                    kind.as_str()
                )));
            }
        }
    }
    Ok(Drained::Empty)
}

/// Drains `kind` for as long as the future lives: after each empty drain it waits for `wake`
/// (an enqueue), after each blocked one for the next backoff delay (reset by a success).
/// Returns only on a store error.
pub async fn run(
    store: &impl OutboxStore,
    sink: &impl Sink,
    kind: EntryKind,
    backoff: Backoff,
    wake: &Notify,
    now: impl Fn() -> DateTime<Utc>,
) -> Error {
    let mut delays = None;
    loop {
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match drain(store, sink, kind, &now).await {
            Ok(Drained::Empty) => {
                delays = None;
                woken.await;
            }
            Ok(Drained::Blocked(reason)) => {
                tracing::warn!(kind = kind.as_str(), %reason, "delivery blocked; backing off");
                let delay = delays
                    .get_or_insert_with(|| backoff.delays())
                    .next()
                    .unwrap_or(backoff.max);
                tokio::time::sleep(delay).await;
            }
            Err(error) => return error,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration as StdDuration;

    use osc_proto::chain::verify_chain;
    use osc_proto::dsse::Signer;
    use serde_json::json;

    use super::*;
    use crate::central::{FakeCentral, StatusTarget};
    use crate::evidence::tests::{context, passed};
    use crate::evidence::{EvidenceChain, bundle, new_bundle_id};
    use crate::exec::StepRun;
    use crate::outbox::MemoryOutbox;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// Appends `n` passing bundles.
    async fn record(store: &MemoryOutbox, chain: &mut EvidenceChain, n: usize) {
        let run = StepRun::exited(0, b"ok");
        for _ in 0..n {
            let b = bundle(&context(), &passed(&run, &[]), new_bundle_id());
            chain.record(store, b, now()).await.unwrap();
        }
    }

    fn setup() -> (MemoryOutbox, FakeCentral, Signer) {
        let signer = Signer::from_seed(&[9; 32]);
        let central = FakeCentral::new("box1", signer.public_key());
        (MemoryOutbox::new(), central, signer)
    }

    #[tokio::test]
    async fn evidence_arrives_in_order_once_through_outages_and_lost_acknowledgements() {
        let (store, central, signer) = setup();
        let mut chain = EvidenceChain::open(&store, "box1", signer.clone())
            .await
            .unwrap();
        record(&store, &mut chain, 3).await;
        let sink = ToCentral {
            central: &central,
            site: "smile",
        };
        central.fail_next(1);
        let blocked = drain(&store, &sink, EntryKind::Evidence, now)
            .await
            .unwrap();
        assert!(
            matches!(blocked, Drained::Blocked(ref r) if r.contains("after 1 attempts")),
            "{blocked:?}"
        );
        assert_eq!(
            drain(&store, &sink, EntryKind::Evidence, now)
                .await
                .unwrap(),
            Drained::Empty
        );
        // A crash after central stored seq 4 but before the outbox marked it: it is sent again
        // and central answers a duplicate.
        record(&store, &mut chain, 1).await;
        let entry = store.next(EntryKind::Evidence).await.unwrap().unwrap();
        assert_eq!(central.post_evidence(&entry.body).await, Answer::Accepted);
        assert_eq!(
            drain(&store, &sink, EntryKind::Evidence, now)
                .await
                .unwrap(),
            Drained::Empty
        );
        assert_eq!(central.duplicates(), 1);
        let stored = central.evidence();
        let verified = verify_chain(&stored, "box1", &signer.public_key(), None).unwrap();
        assert_eq!(verified.bundles.len(), 4, "every bundle once, in order");
    }

    #[tokio::test]
    async fn a_gap_answer_resends_from_the_seq_central_expects() {
        let (store, central, signer) = setup();
        let mut chain = EvidenceChain::open(&store, "box1", signer.clone())
            .await
            .unwrap();
        let sink = ToCentral {
            central: &central,
            site: "smile",
        };
        record(&store, &mut chain, 4).await;
        drain(&store, &sink, EntryKind::Evidence, now)
            .await
            .unwrap();
        // Central is restored from a backup that lacks seqs 3 and 4; the next bundle gets a gap.
        central.lose_from(3);
        record(&store, &mut chain, 1).await;
        assert_eq!(
            drain(&store, &sink, EntryKind::Evidence, now)
                .await
                .unwrap(),
            Drained::Empty
        );
        let verified =
            verify_chain(&central.evidence(), "box1", &signer.public_key(), None).unwrap();
        assert_eq!(verified.bundles.len(), 5);
    }

    #[tokio::test]
    async fn status_patches_go_in_order_and_patches_of_deleted_objects_are_dropped() {
        let (store, central, _) = setup();
        let sink = ToCentral {
            central: &central,
            site: "smile",
        };
        for name in ["ehr", "gone", "files"] {
            let patch = StatusPatch {
                target: StatusTarget::Host,
                name: name.into(),
                patch: json!({"status": {"observedGeneration": 1}}),
            };
            store
                .enqueue(
                    EntryKind::Status,
                    &serde_json::to_vec(&patch).unwrap(),
                    now(),
                )
                .await
                .unwrap();
        }
        central.remove_object("gone");
        assert_eq!(
            drain(&store, &sink, EntryKind::Status, now).await.unwrap(),
            Drained::Empty
        );
        let names: Vec<String> = central.patches().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["ehr", "files"]);
        assert_eq!(store.depth().await.unwrap().total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_backs_off_while_central_is_down_then_delivers_everything() {
        let (store, central, signer) = setup();
        let store = Arc::new(store);
        let central = Arc::new(central);
        let mut chain = EvidenceChain::open(&*store, "box1", signer.clone())
            .await
            .unwrap();
        record(&store, &mut chain, 2).await;
        central.fail_next(4);
        let wake = Arc::new(Notify::new());
        let backoff = Backoff {
            min: StdDuration::from_secs(1),
            max: StdDuration::from_secs(60),
            seed: Some(1),
        };
        let task = tokio::spawn({
            let (store, central, wake) = (store.clone(), central.clone(), wake.clone());
            async move {
                let sink = ToCentral {
                    central: &*central,
                    site: "smile",
                };
                run(&*store, &sink, EntryKind::Evidence, backoff, &wake, now).await
            }
        });
        // Four failures back off 1–2, 2–4, 4–8 and 8–16 s: nothing arrives within the first second,
        // everything within 30 s.
        tokio::time::sleep(StdDuration::from_millis(500)).await;
        assert!(central.evidence().is_empty());
        tokio::time::sleep(StdDuration::from_secs(30)).await;
        assert_eq!(central.evidence().len(), 2);
        // New evidence and a wake-up: delivered at once.
        record(&store, &mut chain, 1).await;
        wake.notify_waiters();
        tokio::time::sleep(StdDuration::from_millis(1)).await;
        assert_eq!(central.evidence().len(), 3);
        assert!(!task.is_finished());
        task.abort();
    }
}
