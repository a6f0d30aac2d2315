//! Where reconcilers get the time from.
//!
//! A compliance score changes with time alone (results go stale), so the reconciler needs `now`
//! and a way to sleep until a given instant. Both go through [`Clock`], so that tests drive time
//! with a [`ManualClock`] instead of waiting for it.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

/// The wall clock of a reconciler.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Completes once [`Clock::now`] has reached `deadline` (at once if it already has).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// The system's clock; sleeps with tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        // A jump of the wall clock while asleep makes this wake early or late; the reconcilers
        // bound every sleep by their resync period, so the error is bounded too.
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}

/// A clock that stands still until told to move; clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    /// The current time; sleepers wait for it to change.
    time: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            time: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the time forward by `step` and wakes the sleepers whose deadline has come.
    pub fn advance(&self, step: TimeDelta) {
        self.time.send_modify(|time| *time += step);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.time.borrow()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let mut time = self.time.subscribe();
        // The sender lives as long as `self`, so this ends only when the deadline is reached.
        let _ = time.wait_for(|now| *now >= deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone as _;

    use super::*;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_when_time_reaches_its_deadline() {
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap());
        let deadline = clock.now() + TimeDelta::minutes(10);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(deadline).await }
        });

        clock.advance(TimeDelta::minutes(9));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sleeper.is_finished(), "nine minutes are not ten");

        clock.advance(TimeDelta::minutes(1));
        tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("the sleeper wakes at its deadline")
            .unwrap();

        // A deadline in the past does not wait.
        clock.sleep_until(deadline).await;
    }
}
