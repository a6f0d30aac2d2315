//! `?watch=1` on a collection: a chunked stream of newline-delimited
//! `{"type": …, "object": …}` events, with the Kubernetes semantics that client-go's reflector
//! and `kubectl get -w` rely on.
//!
//! - Where it starts: without `resourceVersion` (or with `"0"`) the watch first sends every
//!   existing object that matches as `ADDED`, then the changes after that snapshot ("get state and
//!   start at most recent"); with a version, it replays the kept changes after that version, then
//!   goes on live ("start at exact").
//! - A version older than the kept history is answered with 200 and one `ERROR` event carrying a
//!   410 `Expired` Status, then the end: client-go re-lists on exactly that. The same happens
//!   when a slow watch falls behind compaction later. A version the store has not reached yet is
//!   waited for (up to [`WatchSettings::future_wait`]), then answered with an `ERROR` event
//!   carrying 504 `Too large resource version`, as the API server's watch cache does.
//! - Selectors: `labelSelector` and `fieldSelector` (name, namespace). An object that stops
//!   matching is sent as `DELETED`, one that starts matching as `ADDED`.
//! - `allowWatchBookmarks=true`: a `BOOKMARK` every [`WatchSettings::bookmark_interval`] with the
//!   resourceVersion up to which the watch has seen every change (the last change it read, so it
//!   never claims more than it saw).
//! - `timeoutSeconds` ends the stream; so do server shutdown and the client going away. The stream
//!   owns everything it uses (no task is spawned), so dropping the response body frees it all and
//!   uncounts the watcher in `osc_watchers`.
//! - `sendInitialEvents` (watch-list) is refused with 400, so that clients fall back to list then
//!   watch.
//!
//! One approximation, for watches with selectors that start at an exact version: the stream
//! cannot know whether an object matched at that version when its first replayed change is a
//! modification (the store keeps changes, not the state before them). Such a change is sent as
//! `MODIFIED` when the object matches and as `DELETED` when it does not; a client that never had
//! the object ignores that deletion.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::StreamExt as _;
use osc_crds::{API_VERSION, Kind};
use osc_proto::api::{Bookmark, ListMeta, Status, WatchEvent as WireEvent};
use serde_json::Value;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use super::filter::Filter;
use super::request::{Query, Representation, ResourcePath};
use super::secrets::redact;
use super::table::{IncludeObject, partial_metadata, table};
use crate::metrics::{Metrics, WatcherGuard};
use crate::store::{
    EventType, ListOptions, ObjectKey, ObjectList, Store, StoreError, WatchEvent, WatchStream,
};

/// Tuning of watches; `WatchSettings::default()` suits production, tests shorten the intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSettings {
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// How long a watch from a resourceVersion the store has not reached waits for it before
    /// answering 504 (the API server waits 3 s).
    pub future_wait: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            bookmark_interval: Duration::from_secs(60),
            future_wait: Duration::from_secs(3),
        }
    }
}

/// What a watch needs from the server, borrowed from the API's state.
#[derive(Debug, Clone, Copy)]
pub struct WatchContext<'a> {
    /// Where the objects and their changes are.
    pub store: &'a Store,
    /// Counts open watches in `osc_watchers`.
    pub metrics: &'a Metrics,
    /// Cancelled when the server shuts down: every watch ends.
    pub stopping: &'a CancellationToken,
    /// Intervals.
    pub settings: WatchSettings,
    /// What the caller may see: objects it may not see are never sent, and one that leaves its
    /// sight (an operator's Site given to another partner) is sent as `DELETED`.
    pub tenancy: &'a crate::auth::Visibility,
}

/// Serves `GET <collection>?watch=1`, each object shown as `Accept` asks (the object, a one-row
/// `Table`, or its metadata), credentials redacted. Errors before the stream starts are answered
/// as a `Status`.
pub async fn serve(
    context: WatchContext<'_>,
    path: &ResourcePath,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let kind = path.kind;
    let mut request = WatchRequest::from_query(query)?;
    request.filter = request.filter.restricted(kind, context.tenancy.clone());
    let render = renderer(path.kind, headers, query)?;
    let namespace = path.namespace.as_deref();
    let guard = context.metrics.watcher(kind);

    let (initial, from) = match request.start {
        Start::Current => {
            let list = list_matching(context.store, kind, namespace, &request.filter).await?;
            (list.items, list.resource_version)
        }
        Start::Exact(version) => (Vec::new(), version),
    };
    let events = match open(context, kind, namespace, from).await {
        Ok(events) => events,
        // Past parsing, a watch fails with an ERROR event rather than an HTTP error, as the API
        // server's does; client-go reads the Status from it.
        Err(error @ (StoreError::Gone { .. } | StoreError::FutureResourceVersion { .. })) => {
            let line = encode(&WireEvent::Error(ApiError::from(error).status()));
            return Ok(respond(headers, Body::from(line)));
        }
        Err(error) => return Err(error.into()),
    };
    let visibility = if request.filter == Filter::default() {
        None
    } else if let Start::Exact(_) = request.start {
        // Which objects match now, at the store's version H: an object without a change
        // between `from` and H matched at `from` exactly when it matches now.
        let now = list_matching(context.store, kind, namespace, &request.filter).await?;
        Some(Visibility::new(
            request.filter.clone(),
            keys_of(kind, &now.items),
            now.resource_version,
        ))
    } else {
        Some(Visibility::new(
            request.filter.clone(),
            keys_of(kind, &initial),
            from,
        ))
    };

    let bookmarks = request.bookmarks.then(|| {
        let period = context.settings.bookmark_interval;
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let stream = Watch {
        kind,
        initial: initial.into(),
        events,
        visibility,
        position: from,
        bookmarks,
        // A `timeoutSeconds` beyond what the clock can represent is a watch with no deadline; adding
        // it would overflow and panic the handler (found by tests/decoders.rs).
        deadline: request
            .timeout
            .and_then(|timeout| Instant::now().checked_add(timeout)),
        stopping: context.stopping.clone(),
        render,
        finished: false,
        _guard: guard,
    };
    let body = futures::stream::unfold(stream, |mut watch| async move {
        let line = watch.next_line().await?;
        Some((Ok::<_, Infallible>(Bytes::from(line)), watch))
    });
    Ok(respond(headers, Body::from_stream(body)))
}

/// How each event's object is shown: as `Accept` asks, and always redacted.
fn renderer(kind: Kind, headers: &HeaderMap, query: &Query) -> Result<Render, ApiError> {
    Ok(match Representation::negotiate(headers)? {
        Representation::Object => Box::new(move |mut object| {
            redact(kind, &mut object);
            object
        }),
        Representation::PartialObjectMetadata => Box::new(|object| partial_metadata(&object)),
        Representation::Table => {
            let include = IncludeObject::from_query(query)?;
            Box::new(move |mut object| {
                redact(kind, &mut object);
                let metadata = ListMeta {
                    resource_version: object["metadata"]["resourceVersion"]
                        .as_str()
                        .map(str::to_owned),
                    ..ListMeta::default()
                };
                let table = table(kind, &[object], metadata, include, Utc::now());
                serde_json::to_value(table).expect("tables serialize")
            })
        }
    })
}

/// Turns a stored object into what a watch sends.
type Render = Box<dyn Fn(Value) -> Value + Send>;

/// The query parameters of a watch, checked.
#[derive(Debug, Clone, PartialEq)]
struct WatchRequest {
    /// Where the stream starts.
    start: Start,
    /// Label and field selectors.
    filter: Filter,
    /// `allowWatchBookmarks=true`.
    bookmarks: bool,
    /// `timeoutSeconds`: the stream ends after this long.
    timeout: Option<Duration>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// No `resourceVersion`, or `"0"`: the current objects as `ADDED`, then what follows.
    Current,
    /// The changes after this resourceVersion.
    Exact(i64),
}

impl WatchRequest {
    /// Reads and checks the watch's query parameters (400 for anything malformed).
    fn from_query(query: &Query) -> Result<Self, ApiError> {
        if query.flag("sendInitialEvents")? {
            return Err(ApiError::bad_request(
                "sendInitialEvents (watch-list streaming) is not supported by this server; list \
                 the collection, then watch from the list's metadata.resourceVersion",
            ));
        }
        if let Some(match_) = query.get("resourceVersionMatch") {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch={match_:?} is forbidden for watch unless sendInitialEvents \
                 is provided; watch with resourceVersion alone"
            )));
        }
        let start = match query.get("resourceVersion") {
            None | Some("0") => Start::Current,
            Some(text) => match text.parse::<i64>() {
                Ok(version) if version > 0 => Start::Exact(version),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid resourceVersion {text:?}: expected a resourceVersion from a \
                         list or an object of this server (a positive integer), or \"0\""
                    )));
                }
            },
        };
        let timeout = query
            .get("timeoutSeconds")
            .map(|text| {
                text.parse::<u64>().map(Duration::from_secs).map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid timeoutSeconds {text:?}: expected a whole number of seconds"
                    ))
                })
            })
            .transpose()?;
        Ok(Self {
            start,
            filter: Filter::from_query(query)?,
            bookmarks: query.flag("allowWatchBookmarks")?,
            timeout,
        })
    }
}

/// Opens the store's stream from `from`, waiting up to [`WatchSettings::future_wait`] for a
/// version the store has not reached yet.
async fn open(
    context: WatchContext<'_>,
    kind: Kind,
    namespace: Option<&str>,
    from: i64,
) -> Result<WatchStream, StoreError> {
    let give_up = Instant::now() + context.settings.future_wait;
    loop {
        match context.store.watch(kind.plural(), namespace, from).await {
            Err(StoreError::FutureResourceVersion { .. }) if Instant::now() < give_up => {
                tokio::time::sleep(FUTURE_POLL).await;
            }
            other => return other,
        }
    }
}

/// How often a watch from a future resourceVersion checks whether the store has reached it.
const FUTURE_POLL: Duration = Duration::from_millis(50);

/// The response around a watch body: 200, JSON, streamed. A client that asks for
/// `application/json;stream=watch` (kubectl, client-go) gets that media type back.
fn respond(headers: &HeaderMap, body: Body) -> Response {
    let asks_stream = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("stream=watch"));
    let content_type = if asks_stream {
        "application/json;stream=watch"
    } else {
        "application/json"
    };
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// One event as a line of the stream.
fn encode(event: &WireEvent<Value>) -> Vec<u8> {
    let mut line = serde_json::to_vec(event).expect("watch events serialize");
    line.push(b'\n');
    line
}

/// The state of one watch stream; dropping it ends the watch.
struct Watch {
    /// The watched kind, for bookmarks.
    kind: Kind,
    /// Objects still to send as `ADDED` at the start.
    initial: VecDeque<Value>,
    /// The store's changes.
    events: WatchStream,
    /// Selector bookkeeping; `None` when the watch selects everything.
    visibility: Option<Visibility>,
    /// The resourceVersion up to which the watch has read every change.
    position: i64,
    /// Ticks when a bookmark is due, if bookmarks were asked for.
    bookmarks: Option<Interval>,
    /// When `timeoutSeconds` ends the stream.
    deadline: Option<Instant>,
    /// Cancelled at server shutdown.
    stopping: CancellationToken,
    /// Turns an object into what the client asked for (redacted object, table…).
    render: Render,
    /// Set after an `ERROR` event: the stream ends.
    finished: bool,
    /// Keeps the watch counted in `osc_watchers` while the stream lives.
    _guard: WatcherGuard,
}

impl Watch {
    /// The next line to send, or `None` when the stream ends.
    async fn next_line(&mut self) -> Option<Vec<u8>> {
        if self.finished {
            return None;
        }
        if let Some(object) = self.initial.pop_front() {
            return Some(encode(&WireEvent::Added((self.render)(object))));
        }
        let deadline = self.deadline;
        loop {
            let event = tokio::select! {
                biased;
                () = self.stopping.cancelled() => return None,
                () = sleep_until(deadline) => return None,
                event = self.events.next() => event?,
                _ = tick(&mut self.bookmarks) => {
                    let bookmark = Bookmark::new(
                        API_VERSION,
                        self.kind.as_str(),
                        self.position.to_string(),
                    );
                    return Some(encode(&WireEvent::Bookmark(bookmark)));
                }
            };
            match event {
                Ok(event) => {
                    self.position = event.resource_version;
                    if let Some(line) = self.translate(&event) {
                        return Some(line);
                    }
                }
                Err(error) => {
                    self.finished = true;
                    let status: Status = ApiError::from(error).status();
                    if status.code >= 500 {
                        tracing::warn!(message = %status.message, "a watch ended with an error");
                    }
                    return Some(encode(&WireEvent::Error(status)));
                }
            }
        }
    }

    /// The line for a store change, if the client is to see it.
    fn translate(&mut self, event: &WatchEvent) -> Option<Vec<u8>> {
        let shown = match &mut self.visibility {
            None => event.event_type,
            Some(visibility) => visibility.translate(event)?,
        };
        let object = (self.render)(event.object.clone());
        Some(encode(&match shown {
            EventType::Added => WireEvent::Added(object),
            EventType::Modified => WireEvent::Modified(object),
            EventType::Deleted => WireEvent::Deleted(object),
        }))
    }
}

/// Completes at `deadline`, or never.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Completes at the interval's next tick, or never.
async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// How a watch with selectors shows each change: which objects the client has been shown as
/// matching, so that one that stops matching is sent as `DELETED` and one that starts as `ADDED`.
#[derive(Debug)]
struct Visibility {
    /// The selectors.
    filter: Filter,
    /// The objects that match as far as the client knows.
    matching: HashSet<ObjectKey>,
    /// Changes up to this resourceVersion are replayed history: before its first replayed
    /// change, whether an object matched is unknown.
    replay_until: i64,
    /// Objects with a replayed change already seen (their state is known from then on).
    settled: HashSet<ObjectKey>,
}

impl Visibility {
    /// Selection bookkeeping for `filter`, where `matching` are the objects that match as of
    /// `replay_until`, the version up to which changes are replayed history.
    fn new(filter: Filter, matching: HashSet<ObjectKey>, replay_until: i64) -> Self {
        Self {
            filter,
            matching,
            replay_until,
            settled: HashSet::new(),
        }
    }

    /// The type the client sees a change as, or `None` when it is not to see it.
    fn translate(&mut self, event: &WatchEvent) -> Option<EventType> {
        let key = &event.key;
        let replayed = event.resource_version <= self.replay_until;
        let before = (!replayed || self.settled.contains(key)).then(|| self.matching.contains(key));
        if replayed {
            self.settled.insert(key.clone());
        } else if !self.settled.is_empty() {
            self.settled = HashSet::new();
        }
        let now = self.filter.matches(&event.object);
        let shown = match (event.event_type, before, now) {
            (EventType::Added, _, now) => now.then_some(EventType::Added),
            // The last state of a deleted object is its state before the deletion.
            (EventType::Deleted, before, now) => {
                before.unwrap_or(now).then_some(EventType::Deleted)
            }
            (EventType::Modified, Some(false), true) => Some(EventType::Added),
            (EventType::Modified, Some(true) | None, true) => Some(EventType::Modified),
            (EventType::Modified, Some(true) | None, false) => Some(EventType::Deleted),
            (EventType::Modified, Some(false), false) => None,
        };
        if now && event.event_type != EventType::Deleted {
            self.matching.insert(key.clone());
        } else {
            self.matching.remove(key);
        }
        shown
    }
}

/// Every object of `kind` (in `namespace`) that passes `filter`, with the store's version.
async fn list_matching(
    store: &Store,
    kind: Kind,
    namespace: Option<&str>,
    filter: &Filter,
) -> Result<ObjectList, StoreError> {
    let options = ListOptions {
        namespace: namespace.map(str::to_owned),
        ..ListOptions::default()
    };
    store
        .list(kind.plural(), &options, |object| filter.matches(object))
        .await
}

/// The store keys of listed objects of `kind`.
fn keys_of(kind: Kind, objects: &[Value]) -> HashSet<ObjectKey> {
    objects
        .iter()
        .map(|object| {
            let metadata = &object["metadata"];
            ObjectKey::namespaced(
                kind.plural(),
                metadata["namespace"].as_str().unwrap_or_default(),
                metadata["name"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(query: &str) -> Result<WatchRequest, ApiError> {
        WatchRequest::from_query(&Query::parse(Some(query)))
    }

    #[test]
    fn watch_parameters_are_read_as_kubernetes_reads_them() {
        let cases = [
            ("watch=1", Start::Current, false, None),
            ("watch=1&resourceVersion=0", Start::Current, false, None),
            ("watch=1&resourceVersion=", Start::Current, false, None),
            ("watch=1&resourceVersion=42", Start::Exact(42), false, None),
            (
                "watch=true&allowWatchBookmarks=true&timeoutSeconds=5",
                Start::Current,
                true,
                Some(Duration::from_secs(5)),
            ),
            (
                "watch=1&sendInitialEvents=false",
                Start::Current,
                false,
                None,
            ),
        ];
        for (query, start, bookmarks, timeout) in cases {
            let parsed = request(query).unwrap();
            assert_eq!(
                (parsed.start, parsed.bookmarks, parsed.timeout),
                (start, bookmarks, timeout),
                "{query}"
            );
        }
    }

    #[test]
    fn malformed_watch_parameters_are_bad_requests_that_say_what_to_do() {
        let cases = [
            ("resourceVersion=abc", "invalid resourceVersion \"abc\""),
            ("resourceVersion=-3", "invalid resourceVersion \"-3\""),
            ("timeoutSeconds=soon", "invalid timeoutSeconds \"soon\""),
            ("sendInitialEvents=true", "not supported by this server"),
            ("sendInitialEvents=true", "then watch from the list's"),
            (
                "resourceVersionMatch=NotOlderThan&resourceVersion=5",
                "forbidden for watch unless sendInitialEvents",
            ),
            ("labelSelector=a%3D(", "unable to parse labelSelector"),
            ("fieldSelector=spec.x%3D1", "not a known field selector"),
            ("allowWatchBookmarks=maybe", "not a boolean"),
        ];
        for (query, expected) in cases {
            match request(query) {
                Err(ApiError::BadRequest(message)) => {
                    assert!(message.contains(expected), "{query}: {message:?}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    fn host(name: &str, role: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "alpha", "labels": {"role": role}}})
    }

    fn change(version: i64, event_type: EventType, name: &str, role: &str) -> WatchEvent {
        WatchEvent {
            resource_version: version,
            event_type,
            key: ObjectKey::namespaced("hosts", "alpha", name),
            object: host(name, role),
        }
    }

    fn visibility(matching: &[&str], replay_until: i64) -> Visibility {
        let seed: Vec<Value> = matching.iter().map(|name| host(name, "web")).collect();
        Visibility::new(
            Filter::from_query(&Query::parse(Some("labelSelector=role%3Dweb"))).unwrap(),
            keys_of(Kind::Host, &seed),
            replay_until,
        )
    }

    #[test]
    fn objects_entering_and_leaving_a_selector_are_added_and_deleted() {
        use EventType::{Added, Deleted, Modified};
        // Live changes (after the seed at version 10), in order, against `role=web`.
        let cases = [
            (change(11, Added, "a", "web"), Some(Added)),
            (change(12, Added, "b", "db"), None),
            (change(13, Modified, "a", "web"), Some(Modified)),
            (change(14, Modified, "a", "db"), Some(Deleted)),
            (change(15, Modified, "a", "db"), None),
            (change(16, Modified, "b", "web"), Some(Added)),
            (change(17, Deleted, "b", "web"), Some(Deleted)),
            (change(18, Deleted, "a", "db"), None),
            (change(19, Modified, "seeded", "web"), Some(Modified)),
            (change(20, Modified, "unseeded", "db"), None),
        ];
        let mut visibility = visibility(&["seeded"], 10);
        for (event, expected) in cases {
            assert_eq!(
                visibility.translate(&event),
                expected,
                "{} {:?}",
                event.resource_version,
                event.event_type
            );
        }
    }

    #[test]
    fn a_replayed_first_change_of_an_object_of_unknown_past_is_sent_conservatively() {
        use EventType::{Deleted, Modified};
        // The watch starts at an exact version; the seed was read at 20, so changes up to 20 are
        // replayed. "x" matched at the seed but its state before change 5 is unknown.
        let cases = [
            (change(5, Modified, "x", "db"), Some(Deleted)),
            (change(6, Modified, "x", "db"), None),
            (change(7, Modified, "y", "web"), Some(Modified)),
            (change(8, Modified, "y", "web"), Some(Modified)),
            (change(9, Deleted, "z", "db"), None),
            (change(21, Modified, "w", "web"), Some(Modified)),
        ];
        let mut visibility = visibility(&["x", "w"], 20);
        for (event, expected) in cases {
            assert_eq!(
                visibility.translate(&event),
                expected,
                "{}",
                event.resource_version
            );
        }
        assert!(
            visibility.settled.is_empty(),
            "live changes forget the replay"
        );
    }

    #[test]
    fn events_are_lines_of_the_kubernetes_wire_form() {
        let line = encode(&WireEvent::Added(json!({"a": 1})));
        assert_eq!(line, b"{\"type\":\"ADDED\",\"object\":{\"a\":1}}\n");
        let bookmark = encode(&WireEvent::Bookmark(Bookmark::new(
            API_VERSION,
            "Host",
            "7",
        )));
        assert_eq!(
            String::from_utf8(bookmark).unwrap(),
            "{\"type\":\"BOOKMARK\",\"object\":{\"apiVersion\":\"osiriscare.net/v1alpha1\",\
             \"kind\":\"Host\",\"metadata\":{\"resourceVersion\":\"7\"}}}\n"
        );
    }
}
