//! The crate's one error type.

use std::path::PathBuf;

use osc_proto::dsse::DsseError;
use osc_proto::evidence::EvidenceError;

/// Everything that can go wrong in the controller's library, one variant per failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid; the message says where and what to change.
    #[error("{}{}: {message}", file.display(), place(*line, *column))]
    Config {
        /// The config file.
        file: PathBuf,
        /// 1-based line, when the problem has one.
        line: Option<usize>,
        /// 1-based column, when the problem has one.
        column: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The signing key file does not hold a key; its contents are never echoed.
    #[error("{}: not an Ed25519 signing key (base64 of a 32-byte seed): {source}", path.display())]
    SigningKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: DsseError,
    },
    /// The outbox database failed.
    #[error("outbox {}: {source}", path.display())]
    Outbox {
        /// The database file.
        path: PathBuf,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// The outbox's chain head is not the one the caller built on: another writer appended, or
    /// the caller's head is stale. Nothing was written.
    #[error("the evidence chain moved: expected head {expected:?}, found {found:?}")]
    ChainMoved {
        /// The head the caller built on (seq).
        expected: Option<u64>,
        /// The stored head (seq).
        found: Option<u64>,
    },
    /// Central asks for evidence from a seq that local retention already pruned.
    #[error(
        "central expects evidence from seq {expected}, but the oldest kept locally is {oldest:?}: \
         central lost evidence that was delivered; restore central's log from backup"
    )]
    GapPruned {
        /// The seq central expects.
        expected: u64,
        /// The oldest evidence seq still held.
        oldest: Option<u64>,
    },
    /// An evidence bundle broke an invariant of the bundle format.
    #[error("evidence bundle refused: {0}")]
    Evidence(#[from] EvidenceError),
    /// A runbook step could not run on a host (unreachable, interpreter missing, refused).
    #[error("{host}: {step} could not run: {message}")]
    Exec {
        /// The Host.
        host: String,
        /// `check`, `remediate` or `verify`.
        step: &'static str,
        /// Why, without any output or parameter value.
        message: String,
    },
    /// Something central sent (or the cache holds) does not decode.
    #[error("{what} does not decode: {source}")]
    Decode {
        /// What it was.
        what: String,
        /// serde's error, with the field.
        #[source]
        source: serde_json::Error,
    },
    /// An SSH host presented another key than the one pinned for it (a reinstalled host, or
    /// someone in between): nothing was run on it.
    #[error(
        "{host} ({address}): the SSH host key changed: pinned {expected}, presented {presented}; \
         nothing was run. If the host was reinstalled, check the new key on its console \
         (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and clear the Host's \
         status.hostKey, so that the next contact pins it"
    )]
    HostKeyMismatch {
        /// The Host.
        host: String,
        /// Its address and port.
        address: String,
        /// The pinned fingerprint (`SHA256:…`).
        expected: String,
        /// The fingerprint the host presented.
        presented: String,
    },
    /// A host could not be reached or logged in to over SSH.
    #[error("{host} ({address}): {message}")]
    Connect {
        /// The Host.
        host: String,
        /// Its address and port.
        address: String,
        /// What failed and what to check; never a secret.
        message: String,
    },
    /// A Credential cannot be used to log in; the message names keys, never values.
    #[error("credential {credential}: {message}")]
    Credential {
        /// The Credential (`site/name`).
        credential: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A request to central failed.
    #[error("central {url}: {message}")]
    Central {
        /// What was asked.
        url: String,
        /// What went wrong, with central's message when it gave one.
        message: String,
    },
}

/// `:line:column`, `:line` or nothing.
fn place(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}
