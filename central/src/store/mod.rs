//! The storage layer: objects as JSON keyed by (resource, namespace, name), one global
//! resourceVersion, and a watch history, on SQLite or PostgreSQL.
//!
//! The store does not know the resource kinds: the API layer types, validates and defaults
//! objects, and sets `uid`, `generation` and timestamps. The store only assigns
//! `metadata.resourceVersion`, enforces create/update/delete preconditions, and streams changes.
//!
//! Guarantees, on both backends:
//! - every write gets the next resourceVersion (one counter for all resources, never reused, with
//!   no holes) and appends its watch event in the same transaction;
//! - an update or delete with a resourceVersion precondition checks and writes atomically;
//! - a watch delivers every kept event after its start version, then live ones, in order, with
//!   no gap and no duplicate, on every replica (PostgreSQL: LISTEN/NOTIFY between replicas);
//! - a slow watcher never slows writers: it re-reads what it missed from the event table;
//! - every operation may be cancelled (its future dropped) at any await: a write then commits
//!   whole or not at all, and the connection it held is closed, never pooled again in the middle
//!   of a transaction (see `lease.rs`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), osc_central::store::StoreError> {
//! use osc_central::store::{ListOptions, ObjectKey, Store, StoreOptions};
//! use serde_json::json;
//!
//! let store = Store::open_sqlite("/var/lib/osc-central/central.sqlite3".as_ref(), StoreOptions::default()).await?;
//! let key = ObjectKey::cluster("sites", "alpha");
//! let created = store.create(&key, json!({"metadata": {"name": "alpha"}})).await?;
//! let list = store.list("sites", &ListOptions::default(), |_| true).await?;
//! let mut events = store.watch("sites", None, list.resource_version).await?;
//! # Ok(()) }
//! ```

mod auth;
mod backend;
mod continuation;
mod error;
mod evidence;
mod lease;
mod objects;
mod types;
mod watch;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use sqlx::AnyPool;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use auth::{AUDIT_PAGE_MAX, AuditQuery, AuditRecord, EnrollmentRow, EnrollmentUse, TokenRow};
pub use backend::Backend;
pub use error::StoreError;
pub use evidence::{
    EvidenceAlert, EvidenceFilter, EvidencePage, EvidenceRecord, Ingested, NewEvidence, Reused,
};
pub use types::{
    Counts, EventType, HistoryRetention, ListOptions, ObjectKey, ObjectList, StoreOptions,
    WatchEvent, resource_version_of,
};
pub use watch::WatchStream;

/// A handle on the database. Cheap to clone (all clones share the pools and the watch fan-out);
/// share one per process, e.g. in the API's state.
#[derive(Clone)]
pub struct Store {
    /// What the clones share.
    inner: Arc<Inner>,
}

impl Store {
    /// Opens the SQLite database file at `path` (created if missing, with its schema migrated),
    /// in WAL mode. One process should own the file: writes are serialized inside it.
    pub async fn open_sqlite(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let pools = backend::open_sqlite(path, &options).await?;
        let fanout = fanout(&options);
        Ok(Self::assemble(
            Backend::Sqlite,
            pools,
            options,
            fanout,
            Vec::new(),
        ))
    }

    /// Connects to PostgreSQL at `url` (`postgres://user:password@host:port/database`),
    /// migrates the schema, and starts listening for the writes of other replicas.
    pub async fn connect_postgres(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let pools = backend::connect_postgres(url, &options).await?;
        let fanout = fanout(&options);
        let tasks = watch::start_postgres_feed(
            url,
            pools.reads.clone(),
            fanout.clone(),
            options.poll_interval,
        )
        .await?;
        Ok(Self::assemble(
            Backend::Postgres,
            pools,
            options,
            fanout,
            tasks.into(),
        ))
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Puts the parts together.
    fn assemble(
        backend: Backend,
        pools: backend::Pools,
        options: StoreOptions,
        fanout: broadcast::Sender<Arc<WatchEvent>>,
        tasks: Vec<JoinHandle<()>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                reads: pools.reads,
                writes: pools.writes,
                options,
                fanout,
                tasks,
            }),
        }
    }
}

/// A fan-out channel of the configured capacity (at least one).
fn fanout(options: &StoreOptions) -> broadcast::Sender<Arc<WatchEvent>> {
    broadcast::channel(options.watch_buffer.max(1)).0
}

/// Shows the backend only: the pools' options hold the database URL, password included.
impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

/// The state that the clones of a [`Store`] share.
struct Inner {
    /// Which database.
    backend: Backend,
    /// Connections for reads.
    reads: AnyPool,
    /// Connections for writes (see [`backend::Pools::writes`]).
    writes: AnyPool,
    /// The tuning the store was opened with.
    options: StoreOptions,
    /// The in-process fan-out of committed events to watchers.
    fanout: broadcast::Sender<Arc<WatchEvent>>,
    /// Background tasks (PostgreSQL's listener and feeder), stopped with the store.
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
