//! Server-side reconcilers: tasks that keep derived `status` fields current from what the store
//! holds.
//!
//! Each reconciler is level-triggered: an event only says *which* object to look at again; what
//! to write is recomputed from the current state in the store, never from the event's payload,
//! so a missed, duplicated or reordered event cannot leave a wrong status behind. Writes touch
//! only `status`, carry the read's resourceVersion as a precondition (a lost race is retried
//! from a fresh read), and are skipped when nothing would change, so a reconciler's own write
//! does not wake it into another one. Those three properties also make it safe for every
//! central replica to run every reconciler at once: they compute the same status from the same
//! state, and the loser of a race finds nothing left to write.
//!
//! # Layout
//! - [`clock`]: the [`Clock`] the reconcilers read time from: the system's, or a manual one for
//!   tests that move time forward without sleeping.
//! - [`compliance`]: keeps every Site's compliance scores, counts and `Compliant` condition
//!   current ([`run_compliance`]).

pub mod clock;
pub mod compliance;

pub use clock::{Clock, ManualClock, SystemClock};
pub use compliance::{ComplianceOptions, run_compliance};

use osc_crds::Kind;

use crate::store::{ObjectKey, StoreError};

/// Why one pass of a reconciler failed. The task itself never ends on an error: it logs it and
/// starts again from a fresh list after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed (database unreachable, history compacted under a watch, …).
    #[error("{operation}: {source}")]
    Store {
        /// What the reconciler was doing, e.g. `listing hosts of site alpha`.
        operation: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },

    /// A stored object is not a valid object of its kind, so nothing derived from it can be
    /// trusted; the objects that depend on it are left as they are until it is fixed.
    #[error(
        "the stored {key} is not a valid {kind}: {source}; correct it through the API (a read \
         and write back shows every problem)"
    )]
    Decode {
        /// Which object.
        key: ObjectKey,
        /// The kind it should have.
        kind: Kind,
        /// What does not match the kind's schema.
        #[source]
        source: serde_json::Error,
    },

    /// A watch stream ended without an error, which the store never does while it is open.
    #[error("the watch on {resource} ended unexpectedly; listing again")]
    WatchEnded {
        /// The watched resource.
        resource: &'static str,
    },
}

impl ReconcileError {
    /// Whether a fresh list and watch is the fix, at once and without a backoff.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            ReconcileError::Store {
                source: StoreError::Gone { .. },
                ..
            }
        )
    }
}
