//! The durable outbox: what must leave the appliance (evidence envelopes, status patches,
//! notifications), kept until delivered, plus the head of the evidence chain.
//!
//! Invariants, each kept by one transaction:
//! - An evidence envelope and the chain head it creates are written together, and only on top of
//!   the head the caller built on ([`Error::ChainMoved`] otherwise), so a crash at any moment
//!   leaves either both or neither and the chain never forks.
//! - Each kind is delivered in the order it was enqueued: [`OutboxStore::next`] is the oldest
//!   undelivered entry of that kind. An entry is marked delivered only after the receiver
//!   accepted it; a crash between the two resends it, and central answers a resent envelope as
//!   a duplicate (200), so nothing is lost and nothing is stored twice.
//! - Central's gap answer ("send seq N first") marks the evidence from N on undelivered again
//!   ([`OutboxStore::resend_from`]).
//! - Pruning removes delivered entries only, oldest first: those older than the retention age,
//!   then the oldest beyond the retention count. Undelivered entries are never pruned.
//!
//! [`SqliteOutbox`] is the production store (SQLite in WAL mode, `synchronous = FULL`, one
//! connection so that writes are serialized in the process). [`MemoryOutbox`] holds the same
//! state in memory: the test double for the I/O half and the model of the property test below.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use osc_proto::chain::ChainHead;
use osc_proto::evidence::Sha256Digest;
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use crate::Error;
use crate::config::Retention;

/// What an entry is, and so where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// A DSSE evidence envelope (JSON), for `POST /osc/v1/evidence`.
    Evidence,
    /// A status patch of a Host or the Appliance, for central.
    Status,
    /// An escalation for the site's notification targets.
    Notification,
}

/// One entry as the store returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its place in the outbox, increasing in enqueue order.
    pub id: i64,
    /// What it is.
    pub kind: EntryKind,
    /// The chain seq of an evidence envelope.
    pub seq: Option<u64>,
    /// The bytes to send.
    pub body: Vec<u8>,
    /// Failed deliveries so far.
    pub attempts: u32,
}

/// Undelivered entries per kind: the Appliance's `outboxDepth` is their sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Evidence envelopes waiting.
    pub evidence: u64,
    /// Status patches waiting.
    pub status: u64,
    /// Notifications waiting.
    pub notification: u64,
}

/// The outbox's storage, narrow so that the delivery loop and the reconciler can run on the
/// in-memory twin in tests.
pub trait OutboxStore: Send + Sync {
    /// The evidence chain head, `None` before the first bundle.
    fn chain_head(&self) -> impl Future<Output = Result<Option<ChainHead>, Error>> + Send;

    /// Appends the evidence envelope `body` of `head.seq`, built on `prev`, and makes `head` the
    /// chain head, atomically; [`Error::ChainMoved`] (nothing written) when the stored head is not
    /// `prev`.
    fn append_evidence(
        &self,
        prev: Option<ChainHead>,
        head: ChainHead,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64, Error>> + Send;

    /// Enqueues a status patch or a notification; evidence goes through
    /// [`OutboxStore::append_evidence`].
    fn enqueue(
        &self,
        kind: EntryKind,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64, Error>> + Send;

    /// The oldest undelivered entry of `kind`.
    fn next(&self, kind: EntryKind) -> impl Future<Output = Result<Option<Entry>, Error>> + Send;

    /// Marks entry `id` delivered at `now`.
    fn delivered(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Counts a failed delivery of entry `id`; returns its failures so far.
    fn failed(&self, id: i64) -> impl Future<Output = Result<u32, Error>> + Send;

    /// Marks the evidence from `seq` on undelivered, because central expects `seq` next;
    /// [`Error::GapPruned`] when `seq` is no longer held.
    fn resend_from(&self, seq: u64) -> impl Future<Output = Result<(), Error>> + Send;

    /// Removes delivered entries past `retention` at `now`; returns how many.
    fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Undelivered entries per kind.
    fn depth(&self) -> impl Future<Output = Result<Depth, Error>> + Send;
}

/// The outbox in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    /// The database file, for messages.
    path: PathBuf,
    /// One connection: writes queue in the process, and reads see every committed write.
    pool: SqlitePool,
}

impl SqliteOutbox {
    /// Opens (creating it and its schema when missing) the outbox at `path`.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL syncs the WAL at every commit: a power cut, not only a crash, keeps what was
            // committed.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        let pool = sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| Error::Outbox {
                path: path.to_owned(),
                source,
            })?;
        let outbox = Self {
            path: path.to_owned(),
            pool,
        };
        static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
        MIGRATOR
            .run(&outbox.pool)
            .await
            .map_err(|e| outbox.error(e.into()))?;
        Ok(outbox)
    }

    /// Closes the database cleanly (a crash instead is safe too).
    pub async fn close(self) {
        self.pool.close().await;
    }

    fn error(&self, source: sqlx::Error) -> Error {
        Error::Outbox {
            path: self.path.clone(),
            source,
        }
    }

    async fn head_in<'c, E>(&self, executor: E) -> Result<Option<ChainHead>, Error>
    where
        E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
    {
        let row = sqlx::query("SELECT seq, payload_hash FROM chain_head WHERE only = 1")
            .fetch_optional(executor)
            .await
            .map_err(|e| self.error(e))?;
        row.map(|row| {
            let seq: i64 = row.get(0);
            let hash: Vec<u8> = row.get(1);
            let hash: [u8; 32] = hash.try_into().map_err(|_| {
                self.error(sqlx::Error::Decode(
                    "chain_head.payload_hash is not 32 bytes".into(),
                ))
            })?;
            Ok(ChainHead {
                seq: seq.unsigned_abs(),
                payload_hash: Sha256Digest(hash),
            })
        })
        .transpose()
    }
}

impl OutboxStore for SqliteOutbox {
    async fn chain_head(&self) -> Result<Option<ChainHead>, Error> {
        self.head_in(&self.pool).await
    }

    async fn append_evidence(
        &self,
        prev: Option<ChainHead>,
        head: ChainHead,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<i64, Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        let stored = self.head_in(&mut *tx).await?;
        if stored != prev {
            return Err(Error::ChainMoved {
                expected: prev.map(|h| h.seq),
                found: stored.map(|h| h.seq),
            });
        }
        let id = sqlx::query(
            "INSERT INTO entries (kind, seq, body, created_ms) VALUES ('evidence', ?, ?, ?)",
        )
        .bind(sql_int(head.seq))
        .bind(body)
        .bind(now.timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .last_insert_rowid();
        sqlx::query(
            "INSERT INTO chain_head (only, seq, payload_hash) VALUES (1, ?, ?) \
             ON CONFLICT (only) DO UPDATE SET seq = excluded.seq, payload_hash = excluded.payload_hash",
        )
        .bind(sql_int(head.seq))
        .bind(&head.payload_hash.0[..])
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(id)
    }

    async fn enqueue(
        &self,
        kind: EntryKind,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<i64, Error> {
        debug_assert!(
            kind != EntryKind::Evidence,
            "evidence goes through append_evidence"
        );
        Ok(
            sqlx::query("INSERT INTO entries (kind, body, created_ms) VALUES (?, ?, ?)")
                .bind(kind.as_str())
                .bind(body)
                .bind(now.timestamp_millis())
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .last_insert_rowid(),
        )
    }

    async fn next(&self, kind: EntryKind) -> Result<Option<Entry>, Error> {
        let row = sqlx::query(
            "SELECT id, seq, body, attempts FROM entries \
             WHERE kind = ? AND delivered_ms IS NULL ORDER BY id LIMIT 1",
        )
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        Ok(row.map(|row| Entry {
            id: row.get(0),
            kind,
            seq: row.get::<Option<i64>, _>(1).map(i64::unsigned_abs),
            body: row.get(2),
            attempts: u32::try_from(row.get::<i64, _>(3)).unwrap_or(u32::MAX),
        }))
    }

    async fn delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), Error> {
        sqlx::query("UPDATE entries SET delivered_ms = ? WHERE id = ? AND delivered_ms IS NULL")
            .bind(now.timestamp_millis())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn failed(&self, id: i64) -> Result<u32, Error> {
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE entries SET attempts = attempts + 1 WHERE id = ? RETURNING attempts",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        Ok(attempts.map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX)))
    }

    async fn resend_from(&self, seq: u64) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        let held: Option<i64> =
            sqlx::query_scalar("SELECT id FROM entries WHERE kind = 'evidence' AND seq = ?")
                .bind(sql_int(seq))
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
        if held.is_none() {
            let oldest: Option<i64> =
                sqlx::query_scalar("SELECT min(seq) FROM entries WHERE kind = 'evidence'")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| self.error(e))?;
            return Err(Error::GapPruned {
                expected: seq,
                oldest: oldest.map(i64::unsigned_abs),
            });
        }
        sqlx::query("UPDATE entries SET delivered_ms = NULL WHERE kind = 'evidence' AND seq >= ?")
            .bind(sql_int(seq))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))
    }

    async fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<u64, Error> {
        let cutoff = cutoff(retention, now);
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        let old =
            sqlx::query("DELETE FROM entries WHERE delivered_ms IS NOT NULL AND created_ms < ?")
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected();
        let surplus = sqlx::query(
            "DELETE FROM entries WHERE id IN (SELECT id FROM entries WHERE delivered_ms IS NOT NULL \
             ORDER BY id DESC LIMIT -1 OFFSET ?)",
        )
        .bind(sql_int(retention.max_entries))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .rows_affected();
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(old + surplus)
    }

    async fn depth(&self) -> Result<Depth, Error> {
        let rows = sqlx::query(
            "SELECT kind, count(*) FROM entries WHERE delivered_ms IS NULL GROUP BY kind",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        let mut depth = Depth::default();
        for row in rows {
            let kind: String = row.get(0);
            let count = row.get::<i64, _>(1).unsigned_abs();
            if let Ok(kind) = kind.parse() {
                *depth.of_mut(kind) = count;
            }
        }
        Ok(depth)
    }
}

/// The outbox in memory: the same behaviour without a file.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    /// Everything, under one lock.
    state: Mutex<Memory>,
}

/// The state of a [`MemoryOutbox`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Memory {
    /// Entries in id order, with when each was created and delivered (Unix ms).
    entries: Vec<(Entry, i64, Option<i64>)>,
    /// The last id handed out.
    last_id: i64,
    /// The chain head.
    head: Option<ChainHead>,
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        // A panic while holding the lock (only in a failing test) must not hide the state.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    /// Every entry held, delivered or not, in id order: for tests.
    pub fn entries(&self) -> Vec<(Entry, bool)> {
        self.with(|m| {
            m.entries
                .iter()
                .map(|(e, _, d)| (e.clone(), d.is_some()))
                .collect()
        })
    }
}

impl Memory {
    fn push(&mut self, kind: EntryKind, seq: Option<u64>, body: &[u8], now: DateTime<Utc>) -> i64 {
        self.last_id += 1;
        let entry = Entry {
            id: self.last_id,
            kind,
            seq,
            body: body.to_vec(),
            attempts: 0,
        };
        self.entries.push((entry, now.timestamp_millis(), None));
        self.last_id
    }
}

impl OutboxStore for MemoryOutbox {
    async fn chain_head(&self) -> Result<Option<ChainHead>, Error> {
        Ok(self.with(|m| m.head))
    }

    async fn append_evidence(
        &self,
        prev: Option<ChainHead>,
        head: ChainHead,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<i64, Error> {
        self.with(|m| {
            if m.head != prev {
                return Err(Error::ChainMoved {
                    expected: prev.map(|h| h.seq),
                    found: m.head.map(|h| h.seq),
                });
            }
            m.head = Some(head);
            Ok(m.push(EntryKind::Evidence, Some(head.seq), body, now))
        })
    }

    async fn enqueue(
        &self,
        kind: EntryKind,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<i64, Error> {
        Ok(self.with(|m| m.push(kind, None, body, now)))
    }

    async fn next(&self, kind: EntryKind) -> Result<Option<Entry>, Error> {
        Ok(self.with(|m| {
            m.entries
                .iter()
                .find(|(e, _, d)| e.kind == kind && d.is_none())
                .map(|(e, _, _)| e.clone())
        }))
    }

    async fn delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), Error> {
        self.with(|m| {
            if let Some((_, _, d)) = m.entries.iter_mut().find(|(e, _, _)| e.id == id) {
                d.get_or_insert(now.timestamp_millis());
            }
        });
        Ok(())
    }

    async fn failed(&self, id: i64) -> Result<u32, Error> {
        Ok(self.with(|m| {
            m.entries
                .iter_mut()
                .find(|(e, _, _)| e.id == id)
                .map_or(0, |(e, _, _)| {
                    e.attempts += 1;
                    e.attempts
                })
        }))
    }

    async fn resend_from(&self, seq: u64) -> Result<(), Error> {
        self.with(|m| {
            let evidence = || m.entries.iter().filter_map(|(e, _, _)| e.seq);
            if !evidence().any(|s| s == seq) {
                return Err(Error::GapPruned {
                    expected: seq,
                    oldest: evidence().min(),
                });
            }
            for (e, _, d) in &mut m.entries {
                if e.seq.is_some_and(|s| s >= seq) {
                    *d = None;
                }
            }
            Ok(())
        })
    }

    async fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<u64, Error> {
        let cutoff = cutoff(retention, now);
        Ok(self.with(|m| {
            let before = m.entries.len();
            m.entries
                .retain(|(_, created, d)| d.is_none() || *created >= cutoff);
            let delivered = m.entries.iter().filter(|(_, _, d)| d.is_some()).count();
            let mut surplus = delivered
                .saturating_sub(usize::try_from(retention.max_entries).unwrap_or(usize::MAX));
            m.entries.retain(|(_, _, d)| {
                let drop = d.is_some() && surplus > 0;
                surplus -= usize::from(drop);
                !drop
            });
            (before - m.entries.len()) as u64
        }))
    }

    async fn depth(&self) -> Result<Depth, Error> {
        Ok(self.with(|m| {
            let mut depth = Depth::default();
            for (e, _, d) in &m.entries {
                if d.is_none() {
                    *depth.of_mut(e.kind) += 1;
                }
            }
            depth
        }))
    }
}

impl EntryKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Evidence => "evidence",
            EntryKind::Status => "status",
            EntryKind::Notification => "notification",
        }
    }
}

impl FromStr for EntryKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            EntryKind::Evidence,
            EntryKind::Status,
            EntryKind::Notification,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown outbox entry kind {s:?}"))
    }
}

impl Depth {
    /// All undelivered entries.
    pub fn total(&self) -> u64 {
        self.evidence + self.status + self.notification
    }

    fn of_mut(&mut self, kind: EntryKind) -> &mut u64 {
        match kind {
            EntryKind::Evidence => &mut self.evidence,
            EntryKind::Status => &mut self.status,
            EntryKind::Notification => &mut self.notification,
        }
    }
}

/// Entries created before this (Unix ms) are past the retention age.
fn cutoff(retention: &Retention, now: DateTime<Utc>) -> i64 {
    let age = i64::try_from(retention.max_age.as_std().as_millis()).unwrap_or(i64::MAX);
    now.timestamp_millis().saturating_sub(age)
}

/// SQLite integers are signed; seqs and counts past `i64::MAX` do not occur.
fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
