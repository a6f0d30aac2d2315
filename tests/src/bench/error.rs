//! The benchmark's one error type: a run stops at the first failure and says where it was.

use osc_central::config::ConfigError;
use osc_central::server::ServeError;
use osc_central::store::StoreError;

/// Why a benchmark run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The scratch folder for the SQLite files and the server's data could not be created.
    #[error("cannot create a scratch folder in the system's temporary folder: {source}")]
    Scratch {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A loopback port could not be bound for a server.
    #[error("cannot listen on 127.0.0.1: {source}")]
    Bind {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The PostgreSQL server refused to create or drop the run's database.
    #[error(
        "cannot {action} the benchmark database {name} on {server}: {source}; check that \
         --database-url names a running server and a role that may create databases"
    )]
    Database {
        /// `create` or `drop`.
        action: &'static str,
        /// The database's name.
        name: String,
        /// `host:port` of the server (never the password).
        server: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// Central Command refused the configuration the benchmark gave it.
    #[error("Central Command refused the benchmark's configuration: {source}")]
    Config {
        /// Which option was wrong (boxed: it is large, and rare).
        #[source]
        source: Box<ConfigError>,
    },

    /// Central Command failed to start or stopped with an error.
    #[error("Central Command failed: {source}")]
    Serve {
        /// The server's error (boxed: it is large, and rare).
        #[source]
        source: Box<ServeError>,
    },

    /// A store the benchmark opens itself (the bare handler's, or the one it fills directly)
    /// could not be opened or written.
    #[error("the benchmark's own use of the store failed: {source}")]
    Store {
        /// The store's error.
        #[source]
        source: StoreError,
    },

    /// A request got no answer (connection refused or reset, timeout).
    #[error("{method} {path} got no answer: {source}")]
    Http {
        /// The request's method.
        method: String,
        /// The request's path and query.
        path: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },

    /// A request was answered with another status code than the API promises.
    #[error("{method} {path} answered {status} where {expected} was expected: {body}")]
    Status {
        /// The request's method.
        method: String,
        /// The request's path and query.
        path: String,
        /// The status code received.
        status: u16,
        /// The status code expected.
        expected: u16,
        /// The start of the response body (a Kubernetes `Status` says why).
        body: String,
    },

    /// An answer did not have the shape the API promises (not JSON, no resourceVersion, a
    /// list with the wrong number of items).
    #[error("{what}")]
    Unexpected {
        /// What was wrong, and in which answer.
        what: String,
    },

    /// Not every watcher received a write's event in time: the fan-out lost or held events.
    #[error(
        "only {received} of {watchers} watchers received the event of resourceVersion \
         {resource_version} within {waited_secs} s"
    )]
    FanoutIncomplete {
        /// Watchers that received the event.
        received: usize,
        /// Watchers open.
        watchers: usize,
        /// The write's resourceVersion.
        resource_version: i64,
        /// How long the benchmark waited.
        waited_secs: u64,
    },
}
