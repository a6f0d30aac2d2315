//! Watches: replay of the kept history, then live events, in resourceVersion order with no gap
//! and no duplicate.
//!
//! Live events reach watchers through one in-process broadcast channel. On SQLite the writer
//! sends each event after its commit; on PostgreSQL a feeder task per replica reads new events
//! from the table whenever a writer (on any replica) notifies, so every replica sees every write.
//!
//! Gap detection rests on one invariant of the write path: resourceVersions are dense (each
//! committed write takes the previous one plus one; see the migrations). A watcher that has
//! reached version N takes N + 1 from the channel; anything else (a later version, or a lag
//! notice because it fell more than the channel's capacity behind) sends it back to the table,
//! where it reads on from N. Writers never wait for watchers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use sqlx::postgres::PgListener;
use sqlx::{AnyPool, Connection as _, Row as _};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use super::backend::{Backend, NOTIFY_CHANNEL, describe_postgres};
use super::error::Context as _;
use super::lease::Lease;
use super::objects::{current_resource_version, parse_object, to_i64};
use super::{EventType, ObjectKey, Store, StoreError, WatchEvent};

/// The events of one watch. It ends with an `Err` item (after which it yields nothing) when the
/// watcher fell so far behind that the events it needs were compacted ([`StoreError::Gone`]) or
/// the database failed; the client then lists again or resumes from its last version.
pub type WatchStream = BoxStream<'static, Result<Arc<WatchEvent>, StoreError>>;

impl Store {
    /// Watches `resource` (in `namespace`, if given) from just after resourceVersion `from`:
    /// first every kept event after `from`, then live events.
    ///
    /// Fails at once with [`StoreError::FutureResourceVersion`] if `from` is beyond
    /// [`Store::current_rv`], and with [`StoreError::Gone`] if events after `from` were compacted.
    pub async fn watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        from: i64,
    ) -> Result<WatchStream, StoreError> {
        let filter = EventFilter {
            resource: Some(resource.to_owned()),
            namespace: namespace.map(str::to_owned),
        };
        // Subscribe before the first read, so that nothing committed in between is missed.
        let receiver = self.inner.fanout.subscribe();
        let mut watcher = Watcher {
            store: self.clone(),
            filter,
            position: from,
            pending: VecDeque::new(),
            live: false,
            receiver,
            finished: false,
        };
        watcher.catch_up().await?;
        Ok(futures::stream::unfold(watcher, |mut watcher| async move {
            let item = watcher.next().await?;
            Some((item, watcher))
        })
        .boxed())
    }
}

/// Starts the tasks that feed a PostgreSQL replica's watchers: one listens for the writers'
/// notifications, the other reads the announced events and broadcasts them. They run until the
/// returned handles are aborted (when the store is dropped).
pub(crate) async fn start_postgres_feed(
    url: &str,
    pool: AnyPool,
    fanout: broadcast::Sender<Arc<WatchEvent>>,
    poll_interval: Duration,
) -> Result<[JoinHandle<()>; 2], StoreError> {
    let connect_error = |source| StoreError::Connect {
        backend: Backend::Postgres,
        target: describe_postgres(url),
        source,
    };
    let mut listener = PgListener::connect(url).await.map_err(connect_error)?;
    listener
        .listen(NOTIFY_CHANNEL)
        .await
        .map_err(connect_error)?;
    // Listening before reading the position: every write committed after this read is notified.
    let mut connection = Lease::acquire(&pool)
        .await
        .context(|| "reading the resourceVersion".to_owned())?;
    let start = current_resource_version(&mut connection).await?;
    connection.release();

    let wake = Arc::new(Notify::new());
    let listen = tokio::spawn(listen(listener, Arc::clone(&wake)));
    let feed = tokio::spawn(feed(pool, fanout, wake, start, poll_interval));
    Ok([listen, feed])
}

/// The most events read per query.
const EVENT_BATCH: u64 = 512;

/// Which events a reader wants.
#[derive(Debug, Clone, Default)]
struct EventFilter {
    /// Only this resource (`None`: all, for the PostgreSQL feeder).
    resource: Option<String>,
    /// Only this namespace (`None`: all).
    namespace: Option<String>,
}

impl EventFilter {
    /// Whether a live event passes the filter.
    fn matches(&self, event: &WatchEvent) -> bool {
        self.resource
            .as_ref()
            .is_none_or(|resource| *resource == event.key.resource)
            && self
                .namespace
                .as_ref()
                .is_none_or(|namespace| *namespace == event.key.namespace)
    }
}

/// What one read of the event table found.
struct EventPage {
    /// The matching events after the position, oldest first, at most [`EVENT_BATCH`].
    events: Vec<Arc<WatchEvent>>,
    /// The store's resourceVersion in the read's snapshot.
    head: i64,
    /// The oldest kept event's resourceVersion, if any is kept.
    oldest_kept: Option<i64>,
    /// Whether the read reached `head` (fewer than a batch matched).
    complete: bool,
}

impl EventPage {
    /// Where a reader stands after taking this page's events.
    fn position_after(&self, previous: i64) -> i64 {
        match (self.complete, self.events.last()) {
            (true, _) => self.head,
            (false, Some(last)) => last.resource_version,
            (false, None) => previous,
        }
    }
}

/// Reads the events after `after` that pass `filter`, up to the head of one snapshot.
async fn read_events(
    pool: &AnyPool,
    backend: Backend,
    filter: &EventFilter,
    after: i64,
) -> Result<EventPage, StoreError> {
    let operation = || format!("reading watch events after resourceVersion {after}");
    let mut connection = Lease::acquire(pool).await.context(operation)?;
    let mut tx = connection
        .begin_with(backend.begin_read())
        .await
        .context(operation)?;
    let head = current_resource_version(&mut tx).await?;
    let oldest_kept: Option<i64> = sqlx::query("SELECT MIN(resource_version) FROM events")
        .fetch_one(&mut *tx)
        .await
        .and_then(|row| row.try_get(0))
        .context(operation)?;
    let rows = sqlx::query(
        "SELECT resource_version, event_type, resource, namespace, name, object FROM events \
         WHERE resource_version > $1 AND resource_version <= $2 \
         AND (CAST($3 AS TEXT) IS NULL OR resource = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR namespace = $4) \
         ORDER BY resource_version LIMIT $5",
    )
    .bind(after)
    .bind(head)
    .bind(filter.resource.as_deref())
    .bind(filter.namespace.as_deref())
    .bind(to_i64(EVENT_BATCH))
    .fetch_all(&mut *tx)
    .await
    .context(operation)?;
    tx.commit().await.context(operation)?;
    connection.release();

    let complete = (rows.len() as u64) < EVENT_BATCH;
    let events = rows
        .into_iter()
        .map(|row| {
            let resource_version: i64 = row.try_get(0).context(operation)?;
            let event_type: String = row.try_get(1).context(operation)?;
            let key = ObjectKey::namespaced(
                row.try_get::<String, _>(2).context(operation)?,
                row.try_get::<String, _>(3).context(operation)?,
                row.try_get::<String, _>(4).context(operation)?,
            );
            let event_type = EventType::parse(&event_type).ok_or_else(|| StoreError::Corrupt {
                what: format!("event {resource_version}"),
                source: format!("unknown event type {event_type:?}").into(),
            })?;
            let object = parse_object(&key, &row.try_get::<String, _>(5).context(operation)?)?;
            Ok(Arc::new(WatchEvent {
                resource_version,
                event_type,
                key,
                object,
            }))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(EventPage {
        events,
        head,
        oldest_kept,
        complete,
    })
}

/// The state of one watch stream.
struct Watcher {
    /// The store, for reads from the event table.
    store: Store,
    /// Which events this watch wants.
    filter: EventFilter,
    /// The resourceVersion up to which every event has been considered (delivered or filtered
    /// out); the next one the watcher takes from the channel is `position + 1`.
    position: i64,
    /// Events read from the table, not yet yielded.
    pending: VecDeque<Arc<WatchEvent>>,
    /// Whether the watcher is caught up and takes events from the channel rather than the table.
    live: bool,
    /// This watcher's end of the fan-out channel.
    receiver: broadcast::Receiver<Arc<WatchEvent>>,
    /// Set after an error has been yielded: the stream ends.
    finished: bool,
}

impl Watcher {
    /// The next event for the stream, `None` at its end.
    async fn next(&mut self) -> Option<Result<Arc<WatchEvent>, StoreError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            if !self.live {
                if let Err(error) = self.catch_up().await {
                    self.finished = true;
                    return Some(Err(error));
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(event) if event.resource_version <= self.position => {}
                Ok(event) if event.resource_version == self.position + 1 => {
                    self.position = event.resource_version;
                    if self.filter.matches(&event) {
                        return Some(Ok(event));
                    }
                }
                // A version was skipped (another task's send overtook it, or it is still on its
                // way from the feeder) or the channel dropped events for this slow receiver.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.live = false,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Reads one page of missed events from the table and moves the position past it; goes live
    /// when the page reaches the head. Fails if the events needed were compacted.
    async fn catch_up(&mut self) -> Result<(), StoreError> {
        let inner = &self.store.inner;
        let page = read_events(&inner.reads, inner.backend, &self.filter, self.position).await?;
        if self.position > page.head {
            return Err(StoreError::FutureResourceVersion {
                requested: self.position,
                current: page.head,
            });
        }
        // A watch can start from the version just before the oldest kept event; with no event
        // kept, only from the head.
        let oldest = page.oldest_kept.map_or(page.head, |oldest| oldest - 1);
        if self.position < oldest {
            return Err(StoreError::Gone {
                requested: self.position,
                oldest,
            });
        }
        self.position = page.position_after(self.position);
        self.live = page.complete;
        self.pending.extend(page.events);
        Ok(())
    }
}

/// Wakes the feeder for every notification, and after every reconnection of the listening
/// connection (notifications sent while it was down are lost; the feeder's read finds them).
async fn listen(mut listener: PgListener, wake: Arc<Notify>) {
    loop {
        match listener.try_recv().await {
            Ok(_) => wake.notify_one(),
            Err(error) => {
                tracing::warn!(%error, "listening for PostgreSQL notifications failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                wake.notify_one();
            }
        }
    }
}

/// Broadcasts, in order, every event after `position` whenever woken, and at least every
/// `poll_interval`.
async fn feed(
    pool: AnyPool,
    fanout: broadcast::Sender<Arc<WatchEvent>>,
    wake: Arc<Notify>,
    mut position: i64,
    poll_interval: Duration,
) {
    let everything = EventFilter::default();
    loop {
        // A timeout is not an error: it is the periodic poll.
        let _ = tokio::time::timeout(poll_interval, wake.notified()).await;
        loop {
            match read_events(&pool, Backend::Postgres, &everything, position).await {
                Ok(page) => {
                    position = page.position_after(position);
                    let complete = page.complete;
                    for event in page.events {
                        // No receiver is not an error: nobody is watching.
                        let _ = fanout.send(event);
                    }
                    if complete {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "reading new watch events failed; retrying");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(resource: &str, namespace: &str) -> WatchEvent {
        WatchEvent {
            resource_version: 1,
            event_type: EventType::Added,
            key: ObjectKey::namespaced(resource, namespace, "x"),
            object: json!({}),
        }
    }

    #[test]
    fn filters_match_resource_and_namespace() {
        let filter = |resource: Option<&str>, namespace: Option<&str>| EventFilter {
            resource: resource.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
        };
        let cases = [
            (filter(None, None), event("hosts", "a"), true),
            (filter(Some("hosts"), None), event("hosts", "a"), true),
            (filter(Some("hosts"), None), event("sites", ""), false),
            (filter(Some("hosts"), Some("a")), event("hosts", "a"), true),
            (filter(Some("hosts"), Some("a")), event("hosts", "b"), false),
            (filter(None, Some("")), event("sites", ""), true),
        ];
        for (filter, event, expected) in cases {
            assert_eq!(
                filter.matches(&event),
                expected,
                "{filter:?} {:?}",
                event.key
            );
        }
    }

    #[test]
    fn a_reader_moves_to_the_head_only_when_the_page_reached_it() {
        let page = |complete, last: Option<i64>| EventPage {
            events: last
                .map(|rv| {
                    Arc::new(WatchEvent {
                        resource_version: rv,
                        ..event("hosts", "a")
                    })
                })
                .into_iter()
                .collect(),
            head: 100,
            oldest_kept: Some(1),
            complete,
        };
        let cases = [
            (page(true, None), 100),
            (page(true, Some(40)), 100),
            (page(false, Some(40)), 40),
            (page(false, None), 7),
        ];
        for (page, expected) in cases {
            assert_eq!(page.position_after(7), expected);
        }
    }
}
