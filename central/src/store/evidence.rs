//! The evidence log's rows: appending verified envelopes in batches (one transaction each, the
//! chain decided inside it), alerts for forks, and the reads that queries, exports and the Merkle
//! tree need.
//!
//! Every evidence write transaction first increments the `evidence_log` counter row, as object
//! writes do with `resource_version`: writers on every replica queue on it, so the chain checks
//! below cannot be raced and log indexes commit in order with no holes. The tables are
//! write-once in the database itself (triggers in migration 0003); this file only ever inserts.

use chrono::{DateTime, TimeZone as _, Utc};
use osc_proto::chain::{self, ChainHead, ChainLink, Ingest};
use osc_proto::evidence::Sha256Digest;
use osc_proto::merkle::Hash;
use sqlx::{AnyConnection, Connection as _, Row as _};

use super::error::Context as _;
use super::lease::Lease;
use super::objects::{now_ms, to_i64};
use super::{Store, StoreError};

/// A verified envelope, ready to be appended: what the caller checked (signature, schema, site,
/// appliance, clock), and the copies of bundle fields that queries filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvidence {
    /// The site (namespace) of the appliance that signed it.
    pub site: String,
    /// The appliance whose chain it extends.
    pub appliance: String,
    /// Its place in the appliance's chain.
    pub seq: u64,
    /// The payload hash it claims for its predecessor.
    pub prev_hash: Sha256Digest,
    /// SHA-256 of its payload bytes.
    pub payload_hash: Sha256Digest,
    /// The bundle's id, unique across the log.
    pub bundle_id: String,
    /// The host the reconcile ran on.
    pub host: String,
    /// The runbook that ran.
    pub runbook: String,
    /// The outcome, in the bundle's spelling (`pass`, `healed`, ...).
    pub outcome: String,
    /// When the reconcile ended, by the appliance's clock.
    pub timestamp_end: DateTime<Utc>,
    /// The envelope as stored and exported: its Merkle leaf is the hash of exactly these bytes.
    pub envelope: String,
    /// The appliance key (base64) its signature was verified against.
    pub public_key: String,
}

impl NewEvidence {
    /// The chain fields, as [`chain::decide`] wants them.
    fn link(&self) -> ChainLink {
        ChainLink {
            seq: self.seq,
            prev_hash: self.prev_hash,
            payload_hash: self.payload_hash,
        }
    }
}

/// What became of one envelope of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Appended to the log at this index.
    Appended {
        /// Its index in the Merkle log (0-based).
        log_index: u64,
    },
    /// The same payload is already stored under this seq: nothing was written.
    Duplicate {
        /// The index of the stored copy.
        log_index: u64,
    },
    /// Different bytes under a seq or bundle id already used: refused, and an alert recorded.
    Conflict {
        /// Which of the two was reused.
        reused: Reused,
        /// The alert's id.
        alert: i64,
    },
    /// Bundles are missing before this one: refused, the appliance must send `expected` first.
    Gap {
        /// The seq the chain needs next.
        expected: u64,
    },
    /// The next seq, but its `prev_hash` is not the stored head's payload hash: refused.
    BrokenLink {
        /// The `prev_hash` the next bundle must carry.
        expected_prev_hash: Sha256Digest,
    },
}

/// Which identifier of a refused envelope was already taken by other bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reused {
    /// The appliance's chain already holds another payload under this seq.
    Seq(u64),
    /// Another stored envelope has this bundle id.
    BundleId,
}

impl Reused {
    /// The alert's `reason` column.
    fn reason(self) -> &'static str {
        match self {
            Self::Seq(_) => "seq-reused",
            Self::BundleId => "bundle-id-reused",
        }
    }
}

/// One stored envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    /// Its index in the Merkle log.
    pub log_index: u64,
    /// The site of the appliance that signed it.
    pub site: String,
    /// The appliance.
    pub appliance: String,
    /// Its seq in the appliance's chain.
    pub seq: u64,
    /// The bundle's id.
    pub bundle_id: String,
    /// The host the reconcile ran on.
    pub host: String,
    /// The runbook that ran.
    pub runbook: String,
    /// The bundle's outcome.
    pub outcome: String,
    /// When the reconcile ended (milliseconds are kept).
    pub timestamp_end: DateTime<Utc>,
    /// When central accepted it.
    pub received_at: DateTime<Utc>,
    /// The stored envelope's JSON text: the Merkle leaf's data.
    pub envelope: String,
    /// The appliance key (base64) its signature was verified against.
    pub public_key: String,
}

/// Which envelopes [`Store::list_evidence`] returns; every filter left at its default matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceFilter {
    /// Only this site's envelopes.
    pub site: Option<String>,
    /// Only this host's.
    pub host: Option<String>,
    /// Only this runbook's.
    pub runbook: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only this appliance's.
    pub appliance: Option<String>,
    /// Only seqs in this inclusive range (of each appliance's chain).
    pub seqs: Option<(u64, u64)>,
    /// Only reconciles that ended at or after this moment.
    pub since: Option<DateTime<Utc>>,
    /// Only reconciles that ended before this moment.
    pub until: Option<DateTime<Utc>>,
    /// Only entries after this log index (the previous page's continue point).
    pub after: Option<u64>,
    /// At most this many (all when `None`).
    pub limit: Option<u64>,
}

/// One page of envelopes, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidencePage {
    /// The matching envelopes.
    pub items: Vec<EvidenceRecord>,
    /// The log index to continue after, when more may match.
    pub more_after: Option<u64>,
}

/// A recorded fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceAlert {
    /// Its id, increasing in recording order.
    pub id: i64,
    /// The site of the appliance that sent the refused envelope.
    pub site: String,
    /// The appliance.
    pub appliance: String,
    /// The seq the refused envelope carried.
    pub seq: u64,
    /// The bundle id it carried.
    pub bundle_id: String,
    /// `seq-reused` or `bundle-id-reused`.
    pub reason: String,
    /// The payload hash stored under that seq or bundle id, when there is one.
    pub stored_payload_hash: Option<String>,
    /// The refused envelope's payload hash.
    pub received_payload_hash: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A value bound to a query whose conditions depend on a filter.
enum Arg {
    /// An integer column's value.
    Int(i64),
    /// A text column's value.
    Text(String),
}

/// The columns of an [`EvidenceRecord`], in the order [`record`] reads them.
const RECORD_COLUMNS: &str = "log_index, site, appliance, seq, bundle_id, host, runbook, outcome, \
                              timestamp_end_ms, received_at_ms, envelope, public_key";

/// How many leaf hashes one query reads while the tree catches up, so that a start with a
/// million entries does not hold them all as rows at once.
const LEAF_BATCH: u64 = 50_000;

impl Store {
    /// Appends `batch` in one transaction: decides each envelope against its chain as stored
    /// (including the earlier envelopes of the same batch), inserts the ones that extend it, and
    /// records an alert for each fork. Answers one [`Ingested`] per envelope, in order. A refusal
    /// of one envelope does not affect the others; a database error fails the whole batch and
    /// stores nothing.
    pub async fn append_evidence(
        &self,
        batch: &[NewEvidence],
    ) -> Result<Vec<Ingested>, StoreError> {
        let operation = || format!("appending {} evidence envelope(s)", batch.len());
        let mut connection = Lease::acquire(&self.inner.writes)
            .await
            .context(operation)?;
        let mut tx = connection
            .begin_with(self.inner.backend.begin_write())
            .await
            .context(operation)?;
        let outcomes = match append_all(&mut tx, batch).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                if tx.rollback().await.is_ok() {
                    connection.release();
                }
                return Err(error);
            }
        };
        tx.commit().await.context(operation)?;
        connection.release();
        Ok(outcomes)
    }

    /// The leaf hashes of the log entries from index `from` on, in log order: what a Merkle tree
    /// of `from` entries needs to catch up with the table.
    pub async fn evidence_leaf_hashes(&self, from: u64) -> Result<Vec<Hash>, StoreError> {
        let operation = || format!("reading evidence leaf hashes from {from}");
        let mut connection = Lease::acquire(&self.inner.reads).await.context(operation)?;
        let mut hashes = Vec::new();
        loop {
            let start = from + hashes.len() as u64;
            let rows = sqlx::query(
                "SELECT log_index, leaf_hash FROM evidence WHERE log_index >= $1 \
                 ORDER BY log_index LIMIT $2",
            )
            .bind(to_i64(start))
            .bind(to_i64(LEAF_BATCH))
            .fetch_all(&mut *connection)
            .await
            .context(operation)?;
            let done = (rows.len() as u64) < LEAF_BATCH;
            for row in rows {
                let index: i64 = row.try_get(0).context(operation)?;
                let text: String = row.try_get(1).context(operation)?;
                let expected = from + hashes.len() as u64;
                let mut hash = [0; 32];
                if index.unsigned_abs() != expected
                    || hex::decode_to_slice(&text, &mut hash).is_err()
                {
                    return Err(corrupt(
                        format!("evidence entry {index}"),
                        format!("expected entry {expected} with a hex SHA-256 leaf hash"),
                    ));
                }
                hashes.push(hash);
            }
            if done {
                break;
            }
        }
        connection.release();
        Ok(hashes)
    }

    /// The stored envelope with this bundle id.
    pub async fn evidence_by_bundle(
        &self,
        bundle_id: &str,
    ) -> Result<Option<EvidenceRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM evidence WHERE bundle_id = $1");
        self.one_record(
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(bundle_id),
            || format!("reading evidence bundle {bundle_id}"),
        )
        .await
    }

    /// The stored envelope at this log index.
    pub async fn evidence_at(&self, log_index: u64) -> Result<Option<EvidenceRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM evidence WHERE log_index = $1");
        self.one_record(
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_i64(log_index)),
            || format!("reading evidence entry {log_index}"),
        )
        .await
    }

    /// The envelopes that match `filter`, in log order, one page at a time.
    pub async fn list_evidence(&self, filter: &EvidenceFilter) -> Result<EvidencePage, StoreError> {
        let operation = || "listing evidence".to_owned();
        // Only the conditions the filter sets, so that the planner can use the indexes on
        // (site, log_index), (site, timestamp_end_ms) and (site, appliance, seq).
        let mut conditions = vec!["log_index > $1".to_owned()];
        let mut args = vec![Arg::Int(filter.after.map_or(-1, to_i64))];
        let mut add = |condition: &str, arg: Arg| {
            args.push(arg);
            conditions.push(format!("{condition} ${}", args.len()));
        };
        let texts = [
            ("site =", &filter.site),
            ("host =", &filter.host),
            ("runbook =", &filter.runbook),
            ("outcome =", &filter.outcome),
            ("appliance =", &filter.appliance),
        ];
        for (condition, value) in texts {
            if let Some(value) = value {
                add(condition, Arg::Text(value.clone()));
            }
        }
        if let Some(since) = filter.since {
            add("timestamp_end_ms >=", Arg::Int(since.timestamp_millis()));
        }
        if let Some(until) = filter.until {
            add("timestamp_end_ms <", Arg::Int(until.timestamp_millis()));
        }
        if let Some((from, to)) = filter.seqs {
            add("seq >=", Arg::Int(to_i64(from)));
            add("seq <=", Arg::Int(to_i64(to)));
        }
        // One more than asked tells whether another page follows.
        args.push(Arg::Int(
            filter
                .limit
                .map_or(i64::MAX, |limit| to_i64(limit.saturating_add(1))),
        ));
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM evidence WHERE {} ORDER BY log_index LIMIT ${}",
            conditions.join(" AND "),
            args.len()
        );
        let query =
            args.into_iter().fold(
                sqlx::query(sqlx::AssertSqlSafe(sql)),
                |query, arg| match arg {
                    Arg::Int(value) => query.bind(value),
                    Arg::Text(value) => query.bind(value),
                },
            );
        let mut connection = Lease::acquire(&self.inner.reads).await.context(operation)?;
        let rows = query.fetch_all(&mut *connection).await.context(operation)?;
        connection.release();
        let mut items = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        let more_after = match filter.limit {
            Some(limit) if items.len() as u64 > limit => {
                items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                items.last().map(|last| last.log_index)
            }
            _ => None,
        };
        Ok(EvidencePage { items, more_after })
    }

    /// The recorded forks, oldest first, of one site or of all (`site` `None`).
    pub async fn evidence_alerts(
        &self,
        site: Option<&str>,
    ) -> Result<Vec<EvidenceAlert>, StoreError> {
        let operation = || "reading evidence alerts".to_owned();
        let mut connection = Lease::acquire(&self.inner.reads).await.context(operation)?;
        let rows = sqlx::query(
            "SELECT id, site, appliance, seq, bundle_id, reason, stored_payload_hash, \
             received_payload_hash, created_at_ms FROM evidence_alerts \
             WHERE ($1 = '' OR site = $1) ORDER BY id",
        )
        .bind(site.unwrap_or_default())
        .fetch_all(&mut *connection)
        .await
        .context(operation)?;
        connection.release();
        rows.iter()
            .map(|row| {
                Ok(EvidenceAlert {
                    id: row.try_get(0)?,
                    site: row.try_get(1)?,
                    appliance: row.try_get(2)?,
                    seq: row.try_get::<i64, _>(3)?.unsigned_abs(),
                    bundle_id: row.try_get(4)?,
                    reason: row.try_get(5)?,
                    stored_payload_hash: row.try_get(6)?,
                    received_payload_hash: row.try_get(7)?,
                    created_at: from_ms(row.try_get(8)?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context(operation)
    }

    /// Runs a query for at most one evidence row.
    async fn one_record(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        operation: impl Fn() -> String,
    ) -> Result<Option<EvidenceRecord>, StoreError> {
        let mut connection = Lease::acquire(&self.inner.reads)
            .await
            .context(&operation)?;
        let row = query
            .fetch_optional(&mut *connection)
            .await
            .context(&operation)?;
        connection.release();
        row.as_ref().map(record).transpose()
    }
}

/// The body of an append transaction.
async fn append_all(
    tx: &mut AnyConnection,
    batch: &[NewEvidence],
) -> Result<Vec<Ingested>, StoreError> {
    let operation = || "appending evidence".to_owned();
    // Taking the counter first serializes evidence writers (see the module doc).
    let mut size: i64 =
        sqlx::query("UPDATE evidence_log SET size = size WHERE id = 1 RETURNING size")
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .context(operation)?;
    let received_at = now_ms();
    let mut outcomes = Vec::with_capacity(batch.len());
    for entry in batch {
        let outcome = append_one(tx, entry, size, received_at).await?;
        if matches!(outcome, Ingested::Appended { .. }) {
            size += 1;
        }
        outcomes.push(outcome);
    }
    sqlx::query("UPDATE evidence_log SET size = $1 WHERE id = 1")
        .bind(size)
        .execute(&mut *tx)
        .await
        .context(operation)?;
    Ok(outcomes)
}

/// Decides one envelope against its chain as stored and writes what the decision says.
async fn append_one(
    tx: &mut AnyConnection,
    entry: &NewEvidence,
    size: i64,
    received_at: i64,
) -> Result<Ingested, StoreError> {
    let operation = || {
        format!(
            "appending evidence seq {} of {}/{}",
            entry.seq, entry.site, entry.appliance
        )
    };
    let head = sqlx::query(
        "SELECT seq, payload_hash FROM evidence WHERE site = $1 AND appliance = $2 \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(&entry.site)
    .bind(&entry.appliance)
    .fetch_optional(&mut *tx)
    .await
    .context(operation)?
    .map(|row| chain_head(&row))
    .transpose()?;
    // The row under the candidate's seq, looked up only when the chain already reached it.
    let at_seq = match head {
        Some(head) if entry.seq <= head.seq => sqlx::query(
            "SELECT log_index, payload_hash FROM evidence \
             WHERE site = $1 AND appliance = $2 AND seq = $3",
        )
        .bind(&entry.site)
        .bind(&entry.appliance)
        .bind(to_i64(entry.seq))
        .fetch_optional(&mut *tx)
        .await
        .context(operation)?
        .map(|row| Ok::<_, StoreError>((index_of(&row)?, digest(&row, 1)?)))
        .transpose()?,
        _ => None,
    };
    match chain::decide(
        head.as_ref(),
        at_seq.as_ref().map(|(_, hash)| hash),
        &entry.link(),
    ) {
        Ingest::Duplicate => {
            let (log_index, _) = at_seq.ok_or_else(|| {
                corrupt(
                    format!("evidence chain {}/{}", entry.site, entry.appliance),
                    format!("its head seq {} has no row", entry.seq),
                )
            })?;
            Ok(Ingested::Duplicate { log_index })
        }
        Ingest::Conflict { seq } => {
            let stored = at_seq.map(|(_, hash)| hash);
            alert(tx, entry, Reused::Seq(seq), stored, received_at).await
        }
        Ingest::Gap { expected } => Ok(Ingested::Gap { expected }),
        Ingest::BrokenLink { expected_prev_hash } => {
            Ok(Ingested::BrokenLink { expected_prev_hash })
        }
        Ingest::Append => {
            let taken = sqlx::query("SELECT payload_hash FROM evidence WHERE bundle_id = $1")
                .bind(&entry.bundle_id)
                .fetch_optional(&mut *tx)
                .await
                .context(operation)?
                .map(|row| digest(&row, 0))
                .transpose()?;
            if taken.is_some() {
                return alert(tx, entry, Reused::BundleId, taken, received_at).await;
            }
            let leaf = osc_proto::merkle::leaf_hash(entry.envelope.as_bytes());
            sqlx::query(
                "INSERT INTO evidence (log_index, site, appliance, seq, bundle_id, payload_hash, \
                 leaf_hash, host, runbook, outcome, timestamp_end_ms, received_at_ms, envelope, \
                 public_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(size)
            .bind(&entry.site)
            .bind(&entry.appliance)
            .bind(to_i64(entry.seq))
            .bind(&entry.bundle_id)
            .bind(entry.payload_hash.to_string())
            .bind(hex::encode(leaf))
            .bind(&entry.host)
            .bind(&entry.runbook)
            .bind(&entry.outcome)
            .bind(entry.timestamp_end.timestamp_millis())
            .bind(received_at)
            .bind(&entry.envelope)
            .bind(&entry.public_key)
            .execute(&mut *tx)
            .await
            .context(operation)?;
            Ok(Ingested::Appended {
                log_index: size.unsigned_abs(),
            })
        }
    }
}

/// Records a fork and answers the refusal that names it.
async fn alert(
    tx: &mut AnyConnection,
    entry: &NewEvidence,
    reused: Reused,
    stored: Option<Sha256Digest>,
    received_at: i64,
) -> Result<Ingested, StoreError> {
    let alert: i64 = sqlx::query(
        "INSERT INTO evidence_alerts (site, appliance, seq, bundle_id, reason, \
         stored_payload_hash, received_payload_hash, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&entry.site)
    .bind(&entry.appliance)
    .bind(to_i64(entry.seq))
    .bind(&entry.bundle_id)
    .bind(reused.reason())
    .bind(stored.map(|hash| hash.to_string()))
    .bind(entry.payload_hash.to_string())
    .bind(received_at)
    .fetch_one(&mut *tx)
    .await
    .and_then(|row| row.try_get(0))
    .context(|| {
        format!(
            "recording an evidence alert for {}/{}",
            entry.site, entry.appliance
        )
    })?;
    Ok(Ingested::Conflict { reused, alert })
}

/// Reads a chain head from a `(seq, payload_hash)` row.
fn chain_head(row: &sqlx::any::AnyRow) -> Result<ChainHead, StoreError> {
    Ok(ChainHead {
        seq: row
            .try_get::<i64, _>(0)
            .context(|| "reading an evidence chain head".to_owned())?
            .unsigned_abs(),
        payload_hash: digest(row, 1)?,
    })
}

/// Reads column 0 as a log index.
fn index_of(row: &sqlx::any::AnyRow) -> Result<u64, StoreError> {
    Ok(row
        .try_get::<i64, _>(0)
        .context(|| "reading an evidence log index".to_owned())?
        .unsigned_abs())
}

/// Reads a stored hex SHA-256 from column `column`.
fn digest(row: &sqlx::any::AnyRow, column: usize) -> Result<Sha256Digest, StoreError> {
    let text: String = row
        .try_get(column)
        .context(|| "reading an evidence payload hash".to_owned())?;
    text.parse().map_err(|_| {
        corrupt(
            "evidence payload hash".to_owned(),
            format!("{text:?} is not hex SHA-256"),
        )
    })
}

/// Reads an [`EvidenceRecord`] from a row of [`RECORD_COLUMNS`].
fn record(row: &sqlx::any::AnyRow) -> Result<EvidenceRecord, StoreError> {
    let read = || -> Result<EvidenceRecord, sqlx::Error> {
        Ok(EvidenceRecord {
            log_index: row.try_get::<i64, _>(0)?.unsigned_abs(),
            site: row.try_get(1)?,
            appliance: row.try_get(2)?,
            seq: row.try_get::<i64, _>(3)?.unsigned_abs(),
            bundle_id: row.try_get(4)?,
            host: row.try_get(5)?,
            runbook: row.try_get(6)?,
            outcome: row.try_get(7)?,
            timestamp_end: from_ms(row.try_get(8)?),
            received_at: from_ms(row.try_get(9)?),
            envelope: row.try_get(10)?,
            public_key: row.try_get(11)?,
        })
    };
    read().context(|| "reading an evidence row".to_owned())
}

/// A moment from milliseconds since the epoch (the epoch itself if out of range).
fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A row that does not hold what this file writes.
fn corrupt(what: String, problem: String) -> StoreError {
    StoreError::Corrupt {
        what,
        source: problem.into(),
    }
}
