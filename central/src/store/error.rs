//! The store's one error type. The API layer maps each variant to a Kubernetes `Status`.

use super::{Backend, ObjectKey};

/// Everything a store operation can fail with.
///
/// Suggested HTTP mapping: `NotFound` 404, `AlreadyExists` 409, `Conflict` 409, `Gone` 410,
/// `InvalidContinue` 400 (Kubernetes answers an expired continue token with 410; ours never
/// expire, so a bad one is the client's mistake), `FutureResourceVersion` 504 as Kubernetes does
/// ("Too large resource version", the client retries) or 400, `InvalidObject` 400 (the API layer
/// should have caught it), the rest 500 with the details logged, not sent.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object has this key.
    #[error("{key} not found")]
    NotFound {
        /// The key that was looked up.
        key: ObjectKey,
    },

    /// A create found an object with the same key.
    #[error("{key} already exists; update it, or delete it first")]
    AlreadyExists {
        /// The key that is taken.
        key: ObjectKey,
    },

    /// An update or delete with a resourceVersion precondition found the object changed since.
    #[error(
        "{key} has been modified: the write expected resourceVersion {expected} but the stored \
         object has {current}; read it again and reapply the change"
    )]
    Conflict {
        /// The object.
        key: ObjectKey,
        /// The resourceVersion the caller expected.
        expected: i64,
        /// The resourceVersion the stored object has.
        current: i64,
    },

    /// A watch asked for events that history compaction has already dropped.
    #[error(
        "too old resource version: {requested} (the oldest a watch can start from is {oldest}); \
         list again and watch from the list's resourceVersion"
    )]
    Gone {
        /// The resourceVersion the watch started from (or had reached when it fell behind).
        requested: i64,
        /// The smallest resourceVersion a watch can start from now.
        oldest: i64,
    },

    /// A watch asked for a resourceVersion the store has not reached yet.
    #[error(
        "resource version {requested} is newer than the store's current {current}; \
         retry later or list again"
    )]
    FutureResourceVersion {
        /// The resourceVersion asked for.
        requested: i64,
        /// The store's current resourceVersion.
        current: i64,
    },

    /// A list's continue token was not one this store issued for the same resource and namespace.
    #[error("invalid continue token: {reason}; start the list again without it")]
    InvalidContinue {
        /// What is wrong with the token.
        reason: String,
    },

    /// The value to store is not a JSON object whose `metadata` is an object.
    #[error("{key} cannot be stored: {reason}")]
    InvalidObject {
        /// The object's key.
        key: ObjectKey,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A stored row does not hold what the store writes (the database was edited by hand or is
    /// damaged).
    #[error("the stored {what} is unreadable; restore the database from a backup")]
    Corrupt {
        /// Which row, e.g. `object hosts/alpha/web-1` or `event 42`.
        what: String,
        /// Why it could not be read.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The database could not be opened or reached at start-up.
    #[error(
        "cannot open the {backend} database {target}; check that it is reachable and the credentials"
    )]
    Connect {
        /// Which backend.
        backend: Backend,
        /// The file or `host:port/database` (never a password).
        target: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// The schema migrations could not be applied at start-up.
    #[error("cannot apply the {backend} schema migrations")]
    Migrate {
        /// Which backend.
        backend: Backend,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A query failed.
    #[error("database error while {operation}")]
    Database {
        /// What the store was doing, e.g. `updating hosts/alpha/web-1`.
        operation: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

/// Attaches "what the store was doing" to driver errors, so that a `?` reads as one line.
pub(crate) trait Context<T> {
    /// Wraps the error in [`StoreError::Database`] with the operation's description.
    fn context(self, operation: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, operation: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database {
            operation: operation(),
            source,
        })
    }
}
