//! The work queue: which item to reconcile next, and when each comes back.
//!
//! Level-triggered reconciling makes requeueing the safe default: every item comes back after
//! its interval whatever happened, so a missed event, a lost watch or a host that drifted in
//! silence is noticed within one interval, and nothing depends on having seen every change.
//! Events only make things sooner: [`WorkQueue::trigger`] runs an item at once.
//!
//! Rules:
//! - an item is handed out by [`WorkQueue::next`] when it is due and not running, so it never
//!   runs twice at once; a trigger while it runs marks it to run again as soon as it is done;
//! - triggers of an item already due coalesce into one run;
//! - [`WorkQueue::done`] requeues: after the interval ([`Requeue::Interval`]), sooner
//!   ([`Requeue::After`], e.g. when a maintenance window opens), or after a per-item
//!   exponential backoff with jitter on errors ([`Requeue::Backoff`], delays from backon's
//!   `ExponentialBuilder`), reset by the next success;
//! - [`WorkQueue::forget`] drops an item (gone from desired state); one that is running is
//!   dropped when it is done.
//!
//! Time is tokio's, so tests drive it with `tokio::time::pause` and `advance`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::items::{self, Item, ItemKey};

/// How an item comes back after a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// After its interval: the reconcile finished (whatever it found).
    Interval,
    /// After this long, or its interval if that is sooner (a deferral that ends earlier).
    After(StdDuration),
    /// After the item's next backoff delay: the reconcile failed (host unreachable, outbox
    /// error). Backoff grows with each consecutive failure and resets on the next success.
    Backoff,
}

impl WorkQueue<ItemKey> {
    /// Brings the queue to a new desired state: items only in `old` are forgotten, new items are
    /// added (due at once), changed ones get their new interval and run at once
    /// ([`items::affected`]), unchanged ones keep their schedule.
    pub fn desired(&self, old: &[Item], new: &[Item]) {
        let kept: std::collections::HashSet<&ItemKey> = new.iter().map(|i| &i.key).collect();
        for gone in old.iter().filter(|i| !kept.contains(&i.key)) {
            self.forget(&gone.key);
        }
        for item in new {
            self.set(item.key.clone(), item.interval);
        }
        for key in items::affected(old, new) {
            self.trigger(&key);
        }
    }
}

/// Backoff settings for failed items.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub min: StdDuration,
    /// The largest delay.
    pub max: StdDuration,
    /// A seed for the jitter, for reproducible tests; `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl Backoff {
    /// The delays of one run of failures: `min`, doubling, capped at `max`, each plus a jitter
    /// of up to itself, without end.
    pub fn delays(self) -> Box<dyn Iterator<Item = StdDuration> + Send> {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        if let Some(seed) = self.seed {
            builder = builder.with_jitter_seed(seed);
        }
        Box::new(builder.build())
    }
}

impl Default for Backoff {
    /// 5 s, doubling, at most 10 minutes.
    fn default() -> Self {
        Self {
            min: StdDuration::from_secs(5),
            max: StdDuration::from_secs(600),
            seed: None,
        }
    }
}

/// A queue of items keyed by `K`.
#[derive(Debug)]
pub struct WorkQueue<K> {
    /// Items and their schedule.
    state: Mutex<HashMap<K, Slot>>,
    /// Woken when an item becomes due sooner or is released.
    changed: Notify,
    /// Backoff settings.
    backoff: Backoff,
}

/// One item's schedule.
struct Slot {
    /// Its requeue interval.
    interval: StdDuration,
    /// When it is due; `None` while running.
    due: Option<Instant>,
    /// Whether a reconcile is running.
    running: bool,
    /// Triggered while running: due again as soon as it is done.
    rerun: bool,
    /// Forgotten while running: dropped when done.
    forgotten: bool,
    /// The delays of the current run of failures; `None` after a success.
    failures: Option<Box<dyn Iterator<Item = StdDuration> + Send>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("interval", &self.interval)
            .field("due", &self.due)
            .field("running", &self.running)
            .field("rerun", &self.rerun)
            .field("failing", &self.failures.is_some())
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// An empty queue.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            state: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            backoff,
        }
    }

    /// Adds `key` with `interval`, due at once; for a known key only updates the interval.
    pub fn set(&self, key: K, interval: StdDuration) {
        let mut state = self.lock();
        match state.get_mut(&key) {
            Some(slot) => {
                slot.interval = interval;
                slot.forgotten = false;
            }
            None => {
                state.insert(
                    key,
                    Slot {
                        interval,
                        due: Some(Instant::now()),
                        running: false,
                        rerun: false,
                        forgotten: false,
                        failures: None,
                    },
                );
                drop(state);
                self.changed.notify_waiters();
            }
        }
    }

    /// Makes `key` due now (desired state changed); coalesces with a pending run, and with a
    /// running one by running once more after it. Unknown keys are ignored.
    pub fn trigger(&self, key: &K) {
        let mut state = self.lock();
        let Some(slot) = state.get_mut(key) else {
            return;
        };
        let now = Instant::now();
        if slot.running {
            slot.rerun = true;
        } else if slot.due.is_none_or(|due| due > now) {
            slot.due = Some(now);
            drop(state);
            self.changed.notify_waiters();
        }
    }

    /// Drops `key` (no longer desired).
    pub fn forget(&self, key: &K) {
        let mut state = self.lock();
        match state.get_mut(key) {
            Some(slot) if slot.running => slot.forgotten = true,
            Some(_) => {
                state.remove(key);
            }
            None => {}
        }
    }

    /// The earliest due item that is not running, if one is due now; marks it running.
    pub fn try_next(&self) -> Option<K> {
        self.take_due().ok()
    }

    /// Waits for the earliest due item that is not running; marks it running.
    pub async fn next(&self) -> K {
        loop {
            // Registered before looking, so a change between the look and the wait is not lost.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.take_due() {
                Ok(key) => return key,
                Err(Some(due)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = changed => {}
                    }
                }
                Err(None) => changed.await,
            }
        }
    }

    /// Ends the reconcile of `key` (handed out by [`next`](Self::next)) and schedules it.
    pub fn done(&self, key: &K, requeue: Requeue) {
        let mut state = self.lock();
        let Some(slot) = state.get_mut(key) else {
            return;
        };
        slot.running = false;
        if slot.forgotten {
            state.remove(key);
            return;
        }
        let now = Instant::now();
        let delay = match requeue {
            Requeue::Interval => {
                slot.failures = None;
                slot.interval
            }
            Requeue::After(after) => {
                slot.failures = None;
                after.min(slot.interval)
            }
            Requeue::Backoff => {
                let backoff = self.backoff;
                let delays = slot.failures.get_or_insert_with(|| backoff.delays());
                delays.next().unwrap_or(backoff.max)
            }
        };
        let due = if std::mem::take(&mut slot.rerun) {
            now
        } else {
            now + delay
        };
        slot.due = Some(due);
        drop(state);
        self.changed.notify_waiters();
    }

    /// How many items the queue holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the earliest due item, or says when the next is due (`None`: nothing is waiting).
    fn take_due(&self) -> Result<K, Option<Instant>> {
        let mut state = self.lock();
        let now = Instant::now();
        let earliest = state
            .iter()
            .filter_map(|(key, slot)| Some((slot.due?, key)))
            .min_by_key(|(due, _)| *due)
            .map(|(due, key)| (due, key.clone()));
        match earliest {
            Some((due, key)) if due <= now => {
                let slot = state.get_mut(&key).expect("the key was just found");
                slot.due = None;
                slot.running = true;
                Ok(key)
            }
            Some((due, _)) => Err(Some(due)),
            None => Err(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Slot>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const MIN: StdDuration = StdDuration::from_secs(1);

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::new(Backoff {
            min: MIN,
            max: StdDuration::from_secs(8),
            seed: Some(7),
        })
    }

    async fn advance(secs: f64) {
        tokio::time::advance(StdDuration::from_secs_f64(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn items_run_at_once_then_after_each_interval() {
        let q = queue();
        q.set("a", StdDuration::from_secs(60));
        q.set("b", StdDuration::from_secs(30));
        let mut first = [q.try_next().unwrap(), q.try_next().unwrap()];
        first.sort_unstable();
        assert_eq!(first, ["a", "b"]);
        assert_eq!(q.try_next(), None);
        q.done(&"a", Requeue::Interval);
        q.done(&"b", Requeue::Interval);
        advance(29.9).await;
        assert_eq!(q.try_next(), None);
        advance(0.1).await;
        assert_eq!(q.try_next(), Some("b"));
        advance(30.0).await;
        assert_eq!(q.try_next(), Some("a"));
        assert_eq!(q.try_next(), None, "b is still running");
    }

    #[tokio::test(start_paused = true)]
    async fn errors_back_off_exponentially_with_jitter_and_a_success_resets() {
        let q = queue();
        q.set("a", StdDuration::from_secs(3600));
        let mut delays = Vec::new();
        assert_eq!(q.try_next(), Some("a"));
        for _ in 0..6 {
            q.done(&"a", Requeue::Backoff);
            // Step through time until it is due again, to measure the delay to 10 ms.
            let mut waited = 0u64;
            while q.try_next().is_none() {
                advance(0.01).await;
                waited += 10;
            }
            delays.push(waited);
        }
        // Attempt n waits base(n) plus a jitter below base(n): 1, 2, 4, 8, 8, 8 s.
        for (delay, base) in delays.iter().zip([1000, 2000, 4000, 8000, 8000, 8000]) {
            assert!((base..2 * base + 10).contains(delay), "{delays:?}");
        }
        // A success resets: the next failure waits 1–2 s again.
        q.done(&"a", Requeue::Interval);
        q.trigger(&"a");
        assert_eq!(q.try_next(), Some("a"));
        q.done(&"a", Requeue::Backoff);
        advance(2.0).await;
        assert_eq!(q.try_next(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_never_runs_twice_at_once_and_a_trigger_while_running_runs_it_after() {
        let q = queue();
        q.set("a", StdDuration::from_secs(600));
        assert_eq!(q.try_next(), Some("a"));
        q.trigger(&"a");
        q.trigger(&"a");
        advance(1000.0).await;
        assert_eq!(q.try_next(), None, "running: not handed out again");
        q.done(&"a", Requeue::Interval);
        assert_eq!(q.try_next(), Some("a"), "triggered while running: at once");
        q.done(&"a", Requeue::Interval);
        assert_eq!(q.try_next(), None, "the two triggers made one extra run");
    }

    #[tokio::test(start_paused = true)]
    async fn triggers_coalesce_and_run_an_idle_item_at_once() {
        let q = queue();
        q.set("a", StdDuration::from_secs(600));
        assert_eq!(q.try_next(), Some("a"));
        q.done(&"a", Requeue::Interval);
        advance(10.0).await;
        for _ in 0..3 {
            q.trigger(&"a");
        }
        assert_eq!(q.try_next(), Some("a"));
        q.done(&"a", Requeue::Interval);
        assert_eq!(q.try_next(), None);
        q.trigger(&"unknown");
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sooner_requeue_never_waits_longer_than_the_interval() {
        let q = queue();
        q.set("a", StdDuration::from_secs(60));
        q.try_next();
        q.done(&"a", Requeue::After(StdDuration::from_secs(3600)));
        advance(60.0).await;
        assert_eq!(q.try_next(), Some("a"));
        q.done(&"a", Requeue::After(StdDuration::from_secs(5)));
        advance(5.0).await;
        assert_eq!(q.try_next(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn forgotten_items_stop_even_when_running() {
        let q = queue();
        q.set("a", StdDuration::from_secs(60));
        q.set("b", StdDuration::from_secs(60));
        let running = q.try_next().unwrap();
        let idle = if running == "a" { "b" } else { "a" };
        q.forget(&running);
        q.forget(&idle);
        q.done(&running, Requeue::Interval);
        advance(120.0).await;
        assert_eq!(q.try_next(), None);
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_of_desired_state_runs_the_affected_items_at_once() {
        use serde_json::json;

        use crate::items::tests::{host, runbook, site};

        let hosts = [
            host("ehr", "linux", json!({})),
            host("files", "linux", json!({})),
        ];
        let runbooks = [
            runbook("ntp", "linux", json!({}), json!({})),
            runbook("ssh", "linux", json!({}), json!({})),
        ];
        let before = items::items(
            &site(json!({"runbooks": [{"names": ["ntp", "ssh"]}]})),
            &hosts,
            &runbooks,
        );
        let q = WorkQueue::new(Backoff::default());
        q.desired(&[], &before);
        while let Some(key) = q.try_next() {
            q.done(&key, Requeue::Interval);
        }
        advance(60.0).await;
        // ssh leaves the selection, ntp on ehr gets a shorter interval: only that runs now.
        let after = items::items(
            &site(
                json!({"runbooks": [{"names": ["ntp"]}, {"names": ["ntp"], "hosts": "", "interval": "5m"}]}),
            ),
            &hosts[..1],
            &runbooks,
        );
        q.desired(&before, &after);
        let key = q.try_next().unwrap();
        assert_eq!((key.host.as_str(), key.runbook.as_str()), ("ehr", "ntp"));
        assert_eq!(q.try_next(), None);
        assert_eq!(q.len(), 1, "files and ssh are forgotten");
        q.done(&key, Requeue::Interval);
        advance(300.0).await;
        assert_eq!(q.try_next(), Some(key), "the new interval is in force");
    }

    #[tokio::test(start_paused = true)]
    async fn next_waits_for_the_due_time_or_a_trigger() {
        let q = Arc::new(queue());
        q.set("a", StdDuration::from_secs(300));
        assert_eq!(q.next().await, "a");
        q.done(&"a", Requeue::Interval);
        let started = Instant::now();
        assert_eq!(q.next().await, "a");
        assert_eq!(started.elapsed(), StdDuration::from_secs(300));
        q.done(&"a", Requeue::Interval);

        let waiter = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.next().await }
        });
        advance(10.0).await;
        assert!(!waiter.is_finished());
        q.trigger(&"a");
        assert_eq!(waiter.await.unwrap(), "a");
        assert_eq!(started.elapsed(), StdDuration::from_secs(310));
    }
}
