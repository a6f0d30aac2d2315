//! The evidence log: envelopes that appliances post, checked, appended in group commits, and an
//! RFC 6962 Merkle tree over them with signed tree heads and proofs.
//!
//! # Layout
//! - [`submission`]: the pure checks of a posted envelope (size, decoding, enrolled key,
//!   signature, schema, site and appliance, clock), run concurrently outside the write path.
//! - this file: [`EvidenceLog`], which batches concurrent submissions into one store transaction
//!   (group commit) while each caller gets its own answer, and keeps the Merkle tree's leaf
//!   hashes in memory, loaded at start and extended from the table after every commit (which is
//!   also how a PostgreSQL replica learns of entries another replica appended); and the log's
//!   Ed25519 key in the data folder.
//!
//! Why group commit ([`crate::batch::Batcher`]): one SQLite write transaction costs about a
//! millisecond (the WAL sync), so one per envelope caps ingestion near 1,000/s; a batch of every
//! envelope that arrived while the previous transaction ran costs one sync for all of them.

mod export;
mod history;
pub mod submission;

pub use history::{ComplianceAt, compliance_at};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use osc_proto::dsse::{DsseError, PublicKey, Signer};
use osc_proto::merkle::{
    ConsistencyProof, InclusionProof, MerkleError, MerkleTree, SignedTreeHead,
};

use crate::batch::Batcher;
use crate::store::{Ingested, NewEvidence, ObjectKey, Store, StoreError};

use self::submission::{SubmissionError, Submitter};

/// The log key's file in the data folder (mode 0600): base64 of the Ed25519 seed.
pub const LOG_KEY_FILE: &str = "evidence-log.key";

/// The most envelopes one transaction appends; more waiting go in the next.
const MAX_BATCH: usize = 512;

/// How many submissions may wait for the writer before callers queue on the channel.
const QUEUE: usize = 4 * MAX_BATCH;

/// The evidence log of one central process. Cheap to clone.
#[derive(Clone)]
pub struct EvidenceLog {
    /// What the clones and the writer task share.
    shared: Arc<Shared>,
    /// Submissions for the writer task, which ends when every clone is dropped.
    submit: Batcher<NewEvidence, Answer>,
}

/// The state the writer task and the readers share.
struct Shared {
    /// Where the entries live.
    store: Store,
    /// The log's signing key.
    key: Signer,
    /// The tree over every committed entry this process has seen.
    tree: RwLock<MerkleTree>,
    /// Held while the tree catches up, so two catch-ups do not append the same leaves.
    catching_up: tokio::sync::Mutex<()>,
    /// Enrolled keys read recently, by (site, appliance), with when they were read: a posting
    /// appliance costs no read of its Appliance object per envelope.
    keys: Mutex<HashMap<(String, String), (PublicKey, Instant)>>,
}

/// How long an enrolled key is used without reading the Appliance again. A key replaced by a
/// re-enrollment is read again at once when an envelope does not verify under the cached one;
/// the old key's envelopes cannot arrive meanwhile, since re-enrollment revokes its token.
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// What the writer answers each submission: what became of it, or the store failure that failed
/// its whole batch.
type Answer = Result<Ingested, Arc<StoreError>>;

/// Why the log could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The posted envelope was refused before it reached the chain.
    #[error(transparent)]
    Submission(#[from] SubmissionError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The same store failure, shared by every envelope of the batch it failed.
    #[error(transparent)]
    Batch(Arc<StoreError>),
    /// The writer task is gone (the server is shutting down).
    #[error("the evidence writer has stopped; retry")]
    Stopped,
    /// A proof was asked for sizes or indexes the log cannot prove.
    #[error(transparent)]
    Proof(#[from] MerkleError),
    /// The log key file could not be read or written.
    #[error("cannot {action} the evidence log key {path}")]
    KeyFile {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The log key file does not hold a key.
    #[error("the evidence log key {path} is not a base64 Ed25519 seed; restore it from a backup")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: DsseError,
    },
}

impl std::fmt::Debug for EvidenceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceLog")
            .field("keyid", &self.shared.key.keyid())
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

impl EvidenceLog {
    /// Starts the log on `store`, signing with `key` (inside a Tokio runtime): starts the writer
    /// task and, beside it, the load of every leaf hash, so that the first proof finds the tree
    /// ready; every read of the tree also catches up first, so none can see it half-loaded.
    pub fn start(store: Store, key: Signer) -> Self {
        let shared = Arc::new(Shared {
            store,
            key,
            tree: RwLock::new(MerkleTree::new()),
            catching_up: tokio::sync::Mutex::new(()),
            keys: Mutex::default(),
        });
        let writer = Arc::clone(&shared);
        let submit = Batcher::start(QUEUE, MAX_BATCH, move |entries| {
            write_batch(Arc::clone(&writer), entries)
        });
        let loading = Arc::clone(&shared);
        tokio::spawn(async move {
            if let Err(error) = loading.catch_up().await {
                tracing::warn!(%error, "the evidence tree could not load; the next read retries");
            }
        });
        Self { shared, submit }
    }

    /// Receives an envelope posted by `submitter` at `now`: checks it against the appliance's
    /// enrolled key (read from its Appliance object) and the other rules of
    /// [`submission::check`], then submits it. Answers what became of it and its bundle id.
    pub async fn receive(
        &self,
        submitter: Submitter<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(Ingested, String), LogError> {
        // The size first: a huge body costs no read of the store.
        submission::check_size(body)?;
        let cached = self.shared.cached_key(submitter);
        let key = match &cached {
            Some(key) => key.clone(),
            None => self.shared.read_key(submitter).await?,
        };
        let entry = match submission::check(body, submitter, &key, now) {
            // The appliance may have been re-enrolled with another key since the cached read:
            // ask the store before refusing.
            Err(SubmissionError::Signature { .. }) if cached.is_some() => {
                let key = self.shared.read_key(submitter).await?;
                submission::check(body, submitter, &key, now)?
            }
            result => result?,
        };
        let bundle_id = entry.bundle_id.clone();
        Ok((self.submit(entry).await?, bundle_id))
    }

    /// Appends a checked envelope (or finds it a duplicate or refuses it), together with the
    /// envelopes other callers submit meanwhile. When it answers, an appended entry is in the tree.
    pub async fn submit(&self, entry: NewEvidence) -> Result<Ingested, LogError> {
        self.submit
            .submit(entry)
            .await
            .ok_or(LogError::Stopped)?
            .map_err(LogError::Batch)
    }

    /// The log's public key, which verifies its tree heads.
    pub fn public_key(&self) -> PublicKey {
        self.shared.key.public_key()
    }

    /// The number of entries in the tree as this process last saw it.
    pub fn size(&self) -> u64 {
        self.shared.read_tree().len()
    }

    /// Takes in the entries committed since the tree last looked (by any replica); answers the size.
    pub async fn catch_up(&self) -> Result<u64, LogError> {
        self.shared.catch_up().await
    }

    /// A tree head over every committed entry, signed now.
    pub async fn tree_head(&self, now: DateTime<Utc>) -> Result<SignedTreeHead, LogError> {
        self.catch_up().await?;
        let tree = self.shared.read_tree();
        Ok(SignedTreeHead::sign(
            tree.len(),
            tree.root(),
            now,
            &self.shared.key,
        ))
    }

    /// A tree head at a past `size` (for an export that pins one), signed now.
    pub async fn tree_head_at(
        &self,
        size: u64,
        now: DateTime<Utc>,
    ) -> Result<SignedTreeHead, LogError> {
        self.catch_up().await?;
        let root = self.shared.read_tree().root_at(size)?;
        Ok(SignedTreeHead::sign(size, root, now, &self.shared.key))
    }

    /// The proof that entry `index` is in the tree of `size` entries.
    pub async fn inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, LogError> {
        self.catch_up().await?;
        Ok(self.shared.read_tree().inclusion_proof(index, size)?)
    }

    /// The proof that the tree of `old` entries is a prefix of the tree of `new` entries.
    pub async fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyProof, LogError> {
        self.catch_up().await?;
        Ok(self.shared.read_tree().consistency_proof(old, new)?)
    }
}

impl Shared {
    /// The key of `submitter` read within [`KEY_CACHE_TTL`], if any.
    fn cached_key(&self, submitter: Submitter<'_>) -> Option<PublicKey> {
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (key, read_at) =
            keys.get(&(submitter.site.to_owned(), submitter.appliance.to_owned()))?;
        (read_at.elapsed() < KEY_CACHE_TTL).then(|| key.clone())
    }

    /// Reads `submitter`'s enrolled key from its Appliance object and remembers it.
    async fn read_key(&self, submitter: Submitter<'_>) -> Result<PublicKey, LogError> {
        let object = ObjectKey::namespaced("appliances", submitter.site, submitter.appliance);
        let appliance = match self.store.get(&object).await {
            Err(StoreError::NotFound { .. }) => serde_json::Value::Null,
            other => other?,
        };
        let key = submission::enrolled_key(&appliance, submitter)?;
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                (submitter.site.to_owned(), submitter.appliance.to_owned()),
                (key.clone(), Instant::now()),
            );
        Ok(key)
    }

    /// The tree, for reading. A panic while it was held cannot leave it half-extended
    /// ([`MerkleTree::extend`] pushes whole leaves), so a poisoned lock is still good to read.
    fn read_tree(&self) -> std::sync::RwLockReadGuard<'_, MerkleTree> {
        self.tree
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// See [`EvidenceLog::catch_up`].
    async fn catch_up(&self) -> Result<u64, LogError> {
        let _one_at_a_time = self.catching_up.lock().await;
        let from = self.read_tree().len();
        let hashes = self.store.evidence_leaf_hashes(from).await?;
        let mut tree = self
            .tree
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tree.extend(hashes);
        Ok(tree.len())
    }
}

/// Writes one group commit: appends `entries` in one transaction, brings the tree up to date,
/// and answers each entry.
async fn write_batch(shared: Arc<Shared>, entries: Vec<NewEvidence>) -> Vec<Answer> {
    let mut result = shared
        .store
        .append_evidence(&entries)
        .await
        .map_err(Arc::new);
    if let Ok(outcomes) = &result
        && outcomes
            .iter()
            .any(|o| matches!(o, Ingested::Appended { .. }))
        && let Err(error) = shared.catch_up().await
    {
        // The entries are committed and the next catch-up (any read of the tree) adds them,
        // but "appended" promises they are in the tree: answer the failure instead, and the
        // appliance's retry is answered as a duplicate with its index.
        tracing::warn!(%error, "the evidence tree could not catch up after a commit");
        if let LogError::Store(error) = error {
            result = Err(Arc::new(error));
        }
    }
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let answer = match &result {
                Ok(outcomes) => Ok(outcomes[index]),
                Err(error) => Err(Arc::clone(error)),
            };
            log_refusal(entry, answer.as_ref().ok());
            answer
        })
        .collect()
}

/// Logs a fork without the payload's contents: who, which seq and bundle, and the hashes.
fn log_refusal(entry: &NewEvidence, outcome: Option<&Ingested>) {
    if let Some(Ingested::Conflict { reused, alert }) = outcome {
        tracing::warn!(
            site = %entry.site,
            appliance = %entry.appliance,
            seq = entry.seq,
            bundle_id = %entry.bundle_id,
            payload_hash = %entry.payload_hash,
            alert,
            ?reused,
            "evidence fork refused: different bytes under a used seq or bundle id"
        );
    }
}

/// Loads the log key from `<data_dir>/evidence-log.key`, or creates it (mode 0600) on the
/// first start. Losing it does not lose evidence, but tree heads signed before verify only with
/// the old public key, so back it up with the database.
pub fn load_or_create_key(data_dir: &Path) -> Result<Signer, LogError> {
    let path = data_dir.join(LOG_KEY_FILE);
    let io = |action, source| LogError::KeyFile {
        action,
        path: path.clone(),
        source,
    };
    if !path.exists() {
        let key = Signer::generate().map_err(|source| LogError::BadKey {
            path: path.clone(),
            source,
        })?;
        crate::tls::write_new(&path, key.to_base64().as_bytes(), 0o600)
            .map_err(|source| io("write", source))?;
    }
    let text = std::fs::read_to_string(&path).map_err(|source| io("read", source))?;
    Signer::from_base64(text.trim()).map_err(|source| LogError::BadKey { path, source })
}
