//! Object reads and writes: every write takes the next resourceVersion, stamps it into the
//! object, and appends its watch event in the same transaction.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::{Any, AnyConnection, Connection as _, Row as _};

use super::continuation::Continuation;
use super::error::Context as _;
use super::lease::Lease;
use super::{
    Backend, Counts, EventType, ListOptions, ObjectKey, ObjectList, Store, StoreError, WatchEvent,
    backend::NOTIFY_CHANNEL,
};

impl Store {
    /// Stores a new object under `key` and returns it as stored, with its new
    /// `metadata.resourceVersion`. Fails with [`StoreError::AlreadyExists`] if the key is taken.
    pub async fn create(&self, key: &ObjectKey, object: Value) -> Result<Value, StoreError> {
        self.write(key, Write::Create(object)).await
    }

    /// The stored object, or [`StoreError::NotFound`].
    pub async fn get(&self, key: &ObjectKey) -> Result<Value, StoreError> {
        let operation = || format!("reading {key}");
        let mut connection = Lease::acquire(&self.inner.reads).await.context(operation)?;
        let row = keyed(
            "SELECT object FROM objects WHERE resource = $1 AND namespace = $2 AND name = $3",
            key,
        )
        .fetch_optional(&mut *connection)
        .await
        .context(operation)?;
        connection.release();
        let row = row.ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
        parse_object(key, &row.try_get::<String, _>(0).context(operation)?)
    }

    /// Replaces the object under `key` with `object` and returns it as stored. With
    /// `precondition`, the write happens only if the stored object still has that
    /// resourceVersion (else [`StoreError::Conflict`]); the check and the write are atomic.
    pub async fn update(
        &self,
        key: &ObjectKey,
        object: Value,
        precondition: Option<i64>,
    ) -> Result<Value, StoreError> {
        self.write(
            key,
            Write::Update {
                object,
                precondition,
            },
        )
        .await
    }

    /// Deletes the object under `key` and returns its last state, stamped with the deletion's
    /// resourceVersion (what watchers get in the DELETED event). `precondition` as in
    /// [`Store::update`].
    pub async fn delete(
        &self,
        key: &ObjectKey,
        precondition: Option<i64>,
    ) -> Result<Value, StoreError> {
        self.write(key, Write::Delete { precondition }).await
    }

    /// One page of the objects of `resource` (in `options.namespace`, if set) for which
    /// `predicate` holds, ordered by (namespace, name). The predicate (a label selector, say)
    /// runs before the limit, so a page holds `limit` matches whenever that many remain, and a
    /// continue token is returned only when another match follows.
    pub async fn list<P>(
        &self,
        resource: &str,
        options: &ListOptions,
        predicate: P,
    ) -> Result<ObjectList, StoreError>
    where
        P: Fn(&Value) -> bool + Sync,
    {
        let filter = options.namespace.as_deref();
        let mut after = match &options.continue_token {
            Some(token) => {
                let continuation = Continuation::decode(token, resource, filter)?;
                (continuation.namespace, continuation.name)
            }
            None => (filter.unwrap_or_default().to_owned(), String::new()),
        };
        let limit = options.limit.filter(|&limit| limit > 0);
        let batch = limit.map_or(LIST_BATCH, |limit| (limit + 1).min(LIST_BATCH));
        let operation = || format!("listing {resource}");
        let query = match filter {
            Some(_) => {
                "SELECT namespace, name, object FROM objects \
                 WHERE resource = $1 AND namespace = $2 AND name > $3 \
                 ORDER BY namespace, name LIMIT $4"
            }
            None => {
                "SELECT namespace, name, object FROM objects \
                 WHERE resource = $1 AND (namespace, name) > ($2, $3) \
                 ORDER BY namespace, name LIMIT $4"
            }
        };

        let mut connection = Lease::acquire(&self.inner.reads).await.context(operation)?;
        let mut tx = connection
            .begin_with(self.inner.backend.begin_read())
            .await
            .context(operation)?;
        let resource_version = current_resource_version(&mut tx).await?;
        let mut items = Vec::new();
        let mut last_returned = None;
        let mut more = false;
        'scan: loop {
            let rows = sqlx::query(query)
                .bind(resource)
                .bind(&after.0)
                .bind(&after.1)
                .bind(to_i64(batch))
                .fetch_all(&mut *tx)
                .await
                .context(operation)?;
            let exhausted = (rows.len() as u64) < batch;
            for row in rows {
                let key = ObjectKey::namespaced(
                    resource,
                    row.try_get::<String, _>(0).context(operation)?,
                    row.try_get::<String, _>(1).context(operation)?,
                );
                let object = parse_object(&key, &row.try_get::<String, _>(2).context(operation)?)?;
                after = (key.namespace, key.name);
                if !predicate(&object) {
                    continue;
                }
                if limit.is_some_and(|limit| items.len() as u64 == limit) {
                    more = true;
                    break 'scan;
                }
                items.push(object);
                last_returned = Some(after.clone());
            }
            if exhausted {
                break;
            }
        }
        tx.commit().await.context(operation)?;
        connection.release();

        let continue_token = more
            .then_some(last_returned)
            .flatten()
            .map(|(namespace, name)| {
                Continuation {
                    resource: resource.to_owned(),
                    filter: filter.map(str::to_owned),
                    namespace,
                    name,
                }
                .encode()
            });
        Ok(ObjectList {
            items,
            resource_version,
            continue_token,
        })
    }

    /// The resourceVersion of the newest write (0 before the first): what a bookmark carries.
    pub async fn current_rv(&self) -> Result<i64, StoreError> {
        let mut connection = Lease::acquire(&self.inner.reads)
            .await
            .context(|| "reading the resourceVersion".to_owned())?;
        let resource_version = current_resource_version(&mut connection).await?;
        connection.release();
        Ok(resource_version)
    }

    /// Objects per resource and the size of the watch history, read in one snapshot.
    pub async fn stats(&self) -> Result<Counts, StoreError> {
        let operation = || "counting objects and events".to_owned();
        let mut connection = Lease::acquire(&self.inner.reads).await.context(operation)?;
        let mut tx = connection
            .begin_with(self.inner.backend.begin_read())
            .await
            .context(operation)?;
        let resource_version = current_resource_version(&mut tx).await?;
        let mut objects = std::collections::BTreeMap::new();
        for row in sqlx::query("SELECT resource, COUNT(*) FROM objects GROUP BY resource")
            .fetch_all(&mut *tx)
            .await
            .context(operation)?
        {
            let count: i64 = row.try_get(1).context(operation)?;
            objects.insert(row.try_get(0).context(operation)?, count.unsigned_abs());
        }
        let row = sqlx::query("SELECT COUNT(*), MIN(resource_version) FROM events")
            .fetch_one(&mut *tx)
            .await
            .context(operation)?;
        let events: i64 = row.try_get(0).context(operation)?;
        let oldest_event = row.try_get(1).context(operation)?;
        tx.commit().await.context(operation)?;
        connection.release();
        Ok(Counts {
            objects,
            events: events.unsigned_abs(),
            oldest_event,
            resource_version,
        })
    }

    /// Runs one write in its own transaction and, on SQLite, hands its event to local watchers
    /// (PostgreSQL replicas get theirs from the notification, see `watch.rs`).
    async fn write(&self, key: &ObjectKey, write: Write) -> Result<Value, StoreError> {
        let verb = write.verb();
        let operation = || format!("{verb} {key}");
        let backend = self.inner.backend;
        // On SQLite the write pool has one connection, held until the event is sent below, so
        // local watchers receive events in resourceVersion order.
        let mut connection = Lease::acquire(&self.inner.writes)
            .await
            .context(operation)?;
        let mut tx = connection
            .begin_with(backend.begin_write())
            .await
            .context(operation)?;
        let event = match apply(&mut tx, backend, &self.inner.options.history, key, write).await {
            Ok(event) => event,
            Err(error) => {
                match tx.rollback().await {
                    Ok(()) => connection.release(),
                    Err(rollback) => {
                        tracing::warn!(%key, error = %rollback, "rolling back a failed {verb} failed");
                    }
                }
                return Err(error);
            }
        };
        tx.commit()
            .await
            .context(|| format!("committing {verb} {key}"))?;
        let object = event.object.clone();
        if backend == Backend::Sqlite {
            // No receiver is not an error: nobody is watching.
            let _ = self.inner.fanout.send(Arc::new(event));
        }
        connection.release();
        Ok(object)
    }
}

/// The most objects read per query while listing.
const LIST_BATCH: u64 = 256;

/// A write and what it requires of the stored object.
enum Write {
    /// Insert; the key must be free.
    Create(Value),
    /// Replace; the object must exist (and have the precondition's resourceVersion, if given).
    Update {
        object: Value,
        precondition: Option<i64>,
    },
    /// Remove; the object must exist (and have the precondition's resourceVersion, if given).
    Delete { precondition: Option<i64> },
}

impl Write {
    /// The write in words, for errors and logs.
    fn verb(&self) -> &'static str {
        match self {
            Self::Create(_) => "creating",
            Self::Update { .. } => "updating",
            Self::Delete { .. } => "deleting",
        }
    }
}

/// The body of a write transaction. Taking the counter first serializes writers (its row lock
/// on PostgreSQL, the write lock on SQLite), so the check of the stored object below cannot be
/// raced by another writer, and resourceVersions commit in order.
async fn apply(
    tx: &mut AnyConnection,
    backend: Backend,
    history: &super::HistoryRetention,
    key: &ObjectKey,
    write: Write,
) -> Result<WatchEvent, StoreError> {
    let verb = write.verb();
    let operation = || format!("{verb} {key}");
    let resource_version: i64 =
        sqlx::query("UPDATE resource_version SET value = value + 1 WHERE id = 1 RETURNING value")
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .context(operation)?;
    let stored: Option<i64> = keyed(
        "SELECT resource_version FROM objects WHERE resource = $1 AND namespace = $2 AND name = $3",
        key,
    )
    .fetch_optional(&mut *tx)
    .await
    .and_then(|row| row.map(|row| row.try_get(0)).transpose())
    .context(operation)?;

    let (event_type, object) = match write {
        Write::Create(object) => {
            if stored.is_some() {
                return Err(StoreError::AlreadyExists { key: key.clone() });
            }
            let object = stamp(key, object, resource_version)?;
            let sql = "INSERT INTO objects (resource, namespace, name, resource_version, object) \
                       VALUES ($1, $2, $3, $4, $5)";
            write_row(&mut *tx, sql, key, resource_version, &object)
                .await
                .context(operation)?;
            (EventType::Added, object)
        }
        Write::Update {
            object,
            precondition,
        } => {
            check(key, stored, precondition)?;
            let object = stamp(key, object, resource_version)?;
            let sql = "UPDATE objects SET resource_version = $4, object = $5 \
                       WHERE resource = $1 AND namespace = $2 AND name = $3";
            write_row(&mut *tx, sql, key, resource_version, &object)
                .await
                .context(operation)?;
            (EventType::Modified, object)
        }
        Write::Delete { precondition } => {
            check(key, stored, precondition)?;
            let last: String = keyed(
                "DELETE FROM objects WHERE resource = $1 AND namespace = $2 AND name = $3 \
                 RETURNING object",
                key,
            )
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .context(operation)?;
            let object = stamp(key, parse_object(key, &last)?, resource_version)?;
            (EventType::Deleted, object)
        }
    };

    keyed(
        "INSERT INTO events \
         (resource, namespace, name, resource_version, event_type, object, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        key,
    )
    .bind(resource_version)
    .bind(event_type.as_str())
    .bind(object.to_string())
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .context(operation)?;
    compact(tx, history, resource_version).await?;
    if backend == Backend::Postgres {
        // Delivered to every listening replica when, and only if, the transaction commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(resource_version.to_string())
            .execute(&mut *tx)
            .await
            .context(operation)?;
    }
    Ok(WatchEvent {
        resource_version,
        event_type,
        key: key.clone(),
        object,
    })
}

/// Drops the events that `history` no longer keeps, in the transaction that wrote `newest`.
/// The newest event is always kept: it is within both limits.
async fn compact(
    tx: &mut AnyConnection,
    history: &super::HistoryRetention,
    newest: i64,
) -> Result<(), StoreError> {
    let keep_from_count = newest.saturating_sub(to_i64(history.max_events.get()));
    let keep_from_time = history.max_age.map_or(i64::MIN, |age| {
        now_ms().saturating_sub(to_i64(age.as_millis().try_into().unwrap_or(u64::MAX)))
    });
    sqlx::query("DELETE FROM events WHERE resource_version <= $1 OR created_at_ms < $2")
        .bind(keep_from_count)
        .bind(keep_from_time)
        .execute(&mut *tx)
        .await
        .context(|| "compacting the watch history".to_owned())?;
    Ok(())
}

/// Reads the counter on `connection` (in its transaction's snapshot, if one is open).
pub(crate) async fn current_resource_version(
    connection: &mut AnyConnection,
) -> Result<i64, StoreError> {
    sqlx::query("SELECT value FROM resource_version WHERE id = 1")
        .fetch_one(connection)
        .await
        .and_then(|row| row.try_get(0))
        .context(|| "reading the resourceVersion".to_owned())
}

/// Parses a stored object, or reports the row as corrupt.
pub(crate) fn parse_object(key: &ObjectKey, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        what: format!("object {key}"),
        source: error.into(),
    })
}

/// A query whose first three parameters are the key's resource, namespace and name.
fn keyed<'q>(
    sql: &'static str,
    key: &'q ObjectKey,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    sqlx::query(sql)
        .bind(key.resource.as_str())
        .bind(key.namespace.as_str())
        .bind(key.name.as_str())
}

/// Runs an INSERT or UPDATE of the object row: `$1..$3` are the key, `$4` the resourceVersion,
/// `$5` the object's JSON text.
async fn write_row(
    tx: &mut AnyConnection,
    sql: &'static str,
    key: &ObjectKey,
    resource_version: i64,
    object: &Value,
) -> Result<(), sqlx::Error> {
    keyed(sql, key)
        .bind(resource_version)
        .bind(object.to_string())
        .execute(tx)
        .await
        .map(drop)
}

/// Checks that the object exists and, with a precondition, that it has that resourceVersion.
fn check(
    key: &ObjectKey,
    stored: Option<i64>,
    precondition: Option<i64>,
) -> Result<(), StoreError> {
    let current = stored.ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
    match precondition {
        Some(expected) if expected != current => Err(StoreError::Conflict {
            key: key.clone(),
            expected,
            current,
        }),
        _ => Ok(()),
    }
}

/// Writes the resourceVersion into `metadata.resourceVersion` as a string, as Kubernetes does.
fn stamp(key: &ObjectKey, mut object: Value, resource_version: i64) -> Result<Value, StoreError> {
    let invalid = |reason| StoreError::InvalidObject {
        key: key.clone(),
        reason,
    };
    let Value::Object(fields) = &mut object else {
        return Err(invalid("it is not a JSON object"));
    };
    let Value::Object(metadata) = fields
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()))
    else {
        return Err(invalid("its metadata is not a JSON object"));
    };
    metadata.insert(
        "resourceVersion".to_owned(),
        Value::String(resource_version.to_string()),
    );
    Ok(object)
}

/// Milliseconds since the Unix epoch, for the age of events.
pub(crate) fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    to_i64(since_epoch.as_millis().try_into().unwrap_or(u64::MAX))
}

/// Databases store signed 64-bit integers; counts beyond that saturate.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamp_writes_the_resource_version_as_a_string() {
        let key = ObjectKey::cluster("sites", "alpha");
        let cases = [
            (
                json!({"metadata": {"name": "alpha", "resourceVersion": "3"}}),
                json!({"metadata": {"name": "alpha", "resourceVersion": "7"}}),
            ),
            (
                json!({"spec": {}}),
                json!({"spec": {}, "metadata": {"resourceVersion": "7"}}),
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(stamp(&key, object, 7).unwrap(), expected);
        }
    }

    #[test]
    fn stamp_refuses_what_is_not_an_object_with_object_metadata() {
        let key = ObjectKey::cluster("sites", "alpha");
        let cases = [
            (json!([1]), "it is not a JSON object"),
            (
                json!({"metadata": "x"}),
                "its metadata is not a JSON object",
            ),
        ];
        for (object, expected) in cases {
            match stamp(&key, object, 1) {
                Err(StoreError::InvalidObject { reason, .. }) => assert_eq!(reason, expected),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn check_tells_missing_from_conflicting() {
        let key = ObjectKey::cluster("sites", "alpha");
        assert!(matches!(
            check(&key, None, None),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            check(&key, None, Some(1)),
            Err(StoreError::NotFound { .. })
        ));
        assert!(check(&key, Some(4), None).is_ok());
        assert!(check(&key, Some(4), Some(4)).is_ok());
        assert!(matches!(
            check(&key, Some(4), Some(3)),
            Err(StoreError::Conflict {
                expected: 3,
                current: 4,
                ..
            })
        ));
    }
}
