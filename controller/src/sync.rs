//! Keeping the desired state current: one list + watch per watched kind ([`watch_kind`]),
//! resuming from the last resourceVersion when a stream breaks, listing again on a 410 (`ERROR`
//! event) and every `resyncInterval`, moving the resume point on bookmarks, and backing off
//! with jitter (backon, through [`Backoff`]) while central is unreachable. Every change goes
//! into the shared [`Desired`]: saved to the on-disk cache and published to the run loop.
//!
//! The I/O is behind [`Source`] (list and watch of one kind): [`HttpCentral`] in production,
//! [`ScriptedSource`] in tests.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use osc_crds::kinds::Kind;
use osc_proto::api::{List, WatchEvent};
use serde_json::Value;
use tokio::sync::watch;

use crate::Error;
use crate::cache::{Applied, Snapshot, WATCHED};
use crate::central::HttpCentral;
use crate::queue::Backoff;

/// Lists and watches one kind of the site's resources.
pub trait Source: Send + Sync {
    /// The stream of a watch.
    type Stream: EventStream;

    /// Every object of `kind` the appliance watches, and the list's resourceVersion.
    fn list(&self, kind: Kind) -> impl Future<Output = Result<(Vec<Value>, String), Error>> + Send;

    /// A watch of `kind` from `version`, with bookmarks, that central ends after `timeout`.
    fn watch(
        &self,
        kind: Kind,
        version: &str,
        timeout: StdDuration,
    ) -> impl Future<Output = Result<Self::Stream, Error>> + Send;
}

/// The events of one watch; `None` when central ended it.
pub trait EventStream: Send {
    /// The next event, or why the stream broke.
    fn next(&mut self) -> impl Future<Output = Option<Result<WatchEvent<Value>, Error>>> + Send;
}

/// The desired state shared by the watches and the run loop.
#[derive(Debug)]
pub struct Desired {
    /// The snapshot and the bookkeeping of outages.
    state: Mutex<State>,
    /// Where the cache is saved.
    cache: PathBuf,
    /// Publishes each new snapshot to the run loop.
    published: watch::Sender<Arc<Snapshot>>,
}

#[derive(Debug)]
struct State {
    /// The current snapshot, with the outage bookkeeping; the published one is the same `Arc`,
    /// so a change copies it once ([`State::snapshot_mut`]) and reading costs nothing.
    snapshot: Arc<Snapshot>,
    /// Kinds listed since the outage began; all of them ends it.
    relisted: Vec<Kind>,
    /// When the cache was last written.
    saved_at: Option<tokio::time::Instant>,
    /// Whether the snapshot changed since (written by [`Desired::flush`]).
    unsaved: bool,
}

impl State {
    /// The snapshot to change: copied first while the run loop holds the published one.
    fn snapshot_mut(&mut self) -> &mut Snapshot {
        Arc::make_mut(&mut self.snapshot)
    }
}

/// How often the cache is written at most while watch events stream in. Every Host status the
/// controller patches comes back as an event, so writing each one (the whole snapshot, synced)
/// would cost more than the reconciles; a cache up to this much older only makes a restart
/// resume its watches a few events earlier. Outages are written at once.
pub const SAVE_EVERY: StdDuration = StdDuration::from_secs(5);

/// How the controller stands with central, for the Appliance's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Running from the cache since then: central unreachable.
    pub offline_since: Option<DateTime<Utc>>,
    /// The last time it ran from the cache, once central was back: (from, to).
    pub last_outage: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Desired {
    /// Starts from the cache at `cache` (or empty). A cache that does not read is logged and
    /// replaced.
    pub fn open(cache: PathBuf) -> Self {
        let snapshot = match Snapshot::load(&cache) {
            Ok(snapshot) => snapshot.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, "starting without a cache; central's lists will fill it");
                Snapshot::default()
            }
        };
        let snapshot = Arc::new(snapshot);
        let (published, _) = watch::channel(Arc::clone(&snapshot));
        Self {
            state: Mutex::new(State {
                snapshot,
                relisted: vec![],
                saved_at: None,
                unsaved: false,
            }),
            cache,
            published,
        }
    }

    /// Snapshots as they change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.published.subscribe()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published.borrow().clone()
    }

    /// Whether the controller runs from its cache, and since when.
    pub fn connection(&self) -> Connection {
        let state = self.lock();
        Connection {
            offline_since: state.snapshot.offline_since,
            last_outage: state.snapshot.last_outage,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the snapshot with `f`, then publishes it when `f` says it changed (the resume
    /// point and contact times count: a restart resumes from them) and saves it: at once when
    /// the outage bookkeeping changed or the last save is [`SAVE_EVERY`] old, else at the next
    /// [`Desired::flush`].
    fn update<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Error>) -> Result<T, Error> {
        let mut state = self.lock();
        let before = Arc::clone(&state.snapshot);
        let out = f(&mut state)?;
        if !Arc::ptr_eq(&state.snapshot, &before) && *state.snapshot != *before {
            let outage = |s: &Snapshot| (s.offline_since, s.last_outage);
            let due = state.saved_at.is_none_or(|at| at.elapsed() >= SAVE_EVERY);
            if due || outage(&state.snapshot) != outage(&before) {
                self.save(&mut state);
            } else {
                state.unsaved = true;
            }
            let snapshot = Arc::clone(&state.snapshot);
            drop(state);
            self.published.send_replace(snapshot);
        }
        Ok(out)
    }

    /// Writes the cache if the snapshot changed since it was last written.
    pub fn flush(&self) {
        let mut state = self.lock();
        if state.unsaved {
            self.save(&mut state);
        }
    }

    fn save(&self, state: &mut State) {
        if let Err(error) = state.snapshot.save(&self.cache) {
            tracing::error!(%error, "cannot save the desired-state cache");
        }
        state.saved_at = Some(tokio::time::Instant::now());
        state.unsaved = false;
    }

    fn listed(
        &self,
        kind: Kind,
        items: Vec<Value>,
        version: String,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.update(|state| {
            state.snapshot_mut().replace(kind, items, version, now)?;
            if let Some(since) = state.snapshot.offline_since {
                if !state.relisted.contains(&kind) {
                    state.relisted.push(kind);
                }
                if WATCHED.iter().all(|k| state.relisted.contains(k)) {
                    tracing::info!(%since, "central is reachable again; the cache is current");
                    let snapshot = state.snapshot_mut();
                    snapshot.offline_since = None;
                    snapshot.last_outage = Some((since, now));
                    state.relisted.clear();
                }
            }
            Ok(())
        })
    }

    fn unreachable(&self, now: DateTime<Utc>) {
        let marked = self.update(|state| {
            state.relisted.clear();
            if state.snapshot.offline_since.is_none() {
                tracing::warn!("central is unreachable; reconciling from the cache");
                state.snapshot_mut().offline_since = Some(now);
            }
            Ok(())
        });
        if let Err(error) = marked {
            tracing::error!(%error, "cannot note the outage");
        }
    }
}

/// Keeps `kind` current in `desired` from `source` for as long as the future lives: list, then
/// watch from the list's version; resume from the last version seen when a stream breaks;
/// list again on 410 and once `resync` has passed since the last list; back off while central
/// fails. `now` stamps contacts.
pub async fn watch_kind(
    source: &impl Source,
    kind: Kind,
    desired: &Desired,
    resync: StdDuration,
    backoff: Backoff,
    now: impl Fn() -> DateTime<Utc>,
) {
    let mut delays = None;
    let mut relist_at = tokio::time::Instant::now();
    loop {
        let version = desired.lock().snapshot.version(kind).map(str::to_owned);
        let version = match version {
            Some(version) if tokio::time::Instant::now() < relist_at => Ok(version),
            _ => match source.list(kind).await {
                Ok((items, version)) => {
                    relist_at = tokio::time::Instant::now() + resync;
                    desired
                        .listed(kind, items, version.clone(), now())
                        .map(|()| version)
                }
                Err(error) => Err(error),
            },
        };
        let failure = match version {
            Ok(version) => {
                let left = relist_at.saturating_duration_since(tokio::time::Instant::now());
                match source
                    .watch(kind, &version, left.max(StdDuration::from_secs(1)))
                    .await
                {
                    Ok(mut stream) => {
                        delays = None;
                        follow(&mut stream, kind, desired, &now).await
                    }
                    Err(error) => Some(error.to_string()),
                }
            }
            Err(error) => Some(error.to_string()),
        };
        if let Some(reason) = failure {
            desired.unreachable(now());
            let delay = delays
                .get_or_insert_with(|| backoff.delays())
                .next()
                .unwrap_or(backoff.max);
            tracing::warn!(kind = kind.as_str(), %reason, ?delay, "watch failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

/// Applies a stream's events until it ends (`None`: resume) or fails (`Some(why)`: back off).
async fn follow(
    stream: &mut impl EventStream,
    kind: Kind,
    desired: &Desired,
    now: &impl Fn() -> DateTime<Utc>,
) -> Option<String> {
    while let Some(event) = stream.next().await {
        let applied =
            event.and_then(|event| desired.update(|s| s.snapshot_mut().apply(kind, event, now())));
        match applied {
            Ok(Applied::Changed | Applied::Progress) => {}
            Ok(Applied::Expired) => {
                tracing::info!(kind = kind.as_str(), "watch expired (410); listing again");
                return None;
            }
            Ok(Applied::Failed(reason)) => return Some(reason),
            Err(error) => return Some(error.to_string()),
        }
    }
    None
}

/// Runs [`watch_kind`] for every watched kind at once, and writes the cache every
/// [`SAVE_EVERY`] while it has unsaved changes.
pub async fn watch_all(
    source: &impl Source,
    desired: &Desired,
    resync: StdDuration,
    backoff: Backoff,
    now: impl Fn() -> DateTime<Utc> + Copy,
) {
    let [a, b, c, d, e] =
        WATCHED.map(|kind| watch_kind(source, kind, desired, resync, backoff, now));
    let flushes = async {
        let mut ticks = tokio::time::interval(SAVE_EVERY);
        loop {
            ticks.tick().await;
            desired.flush();
        }
    };
    tokio::join!(a, b, c, d, e, flushes);
}

/// The collection path of `kind` for `site` and `appliance`, with the selector that narrows it.
fn collection(site: &str, appliance: &str, kind: Kind) -> (String, Option<String>) {
    let base = "/apis/osiriscare.net/v1alpha1";
    match kind {
        Kind::Site => (
            format!("{base}/sites"),
            Some(format!("metadata.name={site}")),
        ),
        Kind::Appliance => (
            format!("{base}/namespaces/{site}/appliances"),
            Some(format!("metadata.name={appliance}")),
        ),
        k if k.namespaced() => (format!("{base}/namespaces/{site}/{}", k.plural()), None),
        k => (format!("{base}/{}", k.plural()), None),
    }
}

/// A [`Source`] reading central over HTTPS for one site and appliance.
#[derive(Clone, Debug)]
pub struct CentralSource {
    /// The client, CA pinned and token set.
    pub central: HttpCentral,
    /// The appliance's site.
    pub site: String,
    /// The appliance's name.
    pub appliance: String,
}

impl Source for CentralSource {
    type Stream = HttpWatch;

    async fn list(&self, kind: Kind) -> Result<(Vec<Value>, String), Error> {
        let (path, selector) = collection(&self.site, &self.appliance, kind);
        let mut items = vec![];
        let mut next: Option<String> = None;
        loop {
            let mut query = vec![("limit", "500".to_owned())];
            query.extend(selector.clone().map(|s| ("fieldSelector", s)));
            query.extend(next.take().map(|c| ("continue", c)));
            let body = self.central.get(&path, &query, None).await?;
            let list: List<Value> =
                serde_json::from_slice(&body).map_err(|source| Error::Decode {
                    what: format!("the list of {}", kind.plural()),
                    source,
                })?;
            items.extend(list.items);
            match list.metadata.continue_token.filter(|c| !c.is_empty()) {
                Some(token) => next = Some(token),
                None => return Ok((items, list.metadata.resource_version.unwrap_or_default())),
            }
        }
    }

    async fn watch(
        &self,
        kind: Kind,
        version: &str,
        timeout: StdDuration,
    ) -> Result<HttpWatch, Error> {
        let (path, selector) = collection(&self.site, &self.appliance, kind);
        let mut query = vec![
            ("watch", "1".to_owned()),
            ("allowWatchBookmarks", "true".to_owned()),
            ("resourceVersion", version.to_owned()),
            ("timeoutSeconds", timeout.as_secs().to_string()),
        ];
        query.extend(selector.map(|s| ("fieldSelector", s)));
        let response = self
            .central
            .open(&path, &query, Some(timeout + StdDuration::from_secs(30)))
            .await?;
        Ok(HttpWatch {
            response,
            buffer: VecDeque::new(),
            kind,
        })
    }
}

/// A watch stream from central: newline-delimited `WatchEvent`s.
#[derive(Debug)]
pub struct HttpWatch {
    /// The streaming response.
    response: reqwest::Response,
    /// Bytes read and not yet a whole line.
    buffer: VecDeque<u8>,
    /// The kind watched, for messages.
    kind: Kind,
}

impl EventStream for HttpWatch {
    async fn next(&mut self) -> Option<Result<WatchEvent<Value>, Error>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(
                    serde_json::from_slice(&line).map_err(|source| Error::Decode {
                        what: format!("a watch event of {}", self.kind.plural()),
                        source,
                    }),
                );
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend(chunk.iter()),
                Ok(None) => return None,
                Err(e) => {
                    return Some(Err(Error::Central {
                        url: self.response.url().to_string(),
                        message: format!("the watch broke: {e}"),
                    }));
                }
            }
        }
    }
}

/// A [`Source`] that answers from a script, for tests: each list and watch takes the next
/// answer queued for its kind; with none left, it fails as if central were down.
#[derive(Debug, Default)]
pub struct ScriptedSource {
    /// Queued answers per kind.
    answers: Mutex<Vec<(Kind, Scripted)>>,
    /// Every call, as (kind, the version a watch started from; `None` for a list).
    calls: Mutex<Vec<(Kind, Option<String>)>>,
}

/// One scripted answer.
#[derive(Debug)]
pub enum Scripted {
    /// A list: objects and version.
    List(Vec<Value>, String),
    /// A watch that sends these events, then ends.
    Watch(Vec<WatchEvent<Value>>),
    /// A failed request.
    Down,
}

impl ScriptedSource {
    /// Queues `answer` for the next request of `kind`.
    pub fn answer(&self, kind: Kind, answer: Scripted) {
        lock(&self.answers).push((kind, answer));
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<(Kind, Option<String>)> {
        lock(&self.calls).clone()
    }

    fn take(&self, kind: Kind) -> Scripted {
        let mut answers = lock(&self.answers);
        match answers.iter().position(|(k, _)| *k == kind) {
            Some(i) => answers.remove(i).1,
            None => Scripted::Down,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn down(kind: Kind) -> Error {
    Error::Central {
        url: format!("scripted {}", kind.plural()),
        message: "central is down (ScriptedSource has no answer)".to_owned(),
    }
}

impl Source for ScriptedSource {
    type Stream = VecDeque<WatchEvent<Value>>;

    async fn list(&self, kind: Kind) -> Result<(Vec<Value>, String), Error> {
        lock(&self.calls).push((kind, None));
        match self.take(kind) {
            Scripted::List(items, version) => Ok((items, version)),
            _ => {
                // Nothing scripted: stay down without spinning the test's clock.
                tokio::time::sleep(StdDuration::from_secs(1)).await;
                Err(down(kind))
            }
        }
    }

    async fn watch(
        &self,
        kind: Kind,
        version: &str,
        _: StdDuration,
    ) -> Result<Self::Stream, Error> {
        lock(&self.calls).push((kind, Some(version.to_owned())));
        match self.take(kind) {
            Scripted::Watch(events) => Ok(events.into()),
            _ => {
                tokio::time::sleep(StdDuration::from_secs(1)).await;
                Err(down(kind))
            }
        }
    }
}

impl EventStream for VecDeque<WatchEvent<Value>> {
    async fn next(&mut self) -> Option<Result<WatchEvent<Value>, Error>> {
        self.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use osc_proto::api::{Bookmark, Status};

    use super::*;
    use crate::cache::tests::{host, now};

    /// A 410 `ERROR` event, as central sends when a resume point is too old.
    fn expired_event() -> WatchEvent<Value> {
        WatchEvent::Error(Status::too_old_resource_version("1", "2"))
    }

    fn backoff() -> Backoff {
        Backoff {
            min: StdDuration::from_secs(1),
            max: StdDuration::from_secs(8),
            seed: Some(3),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_resumes_relists_on_gone_and_backs_off_while_central_is_down() {
        let dir = tempfile::tempdir().unwrap();
        let desired = Desired::open(Snapshot::path(dir.path()));
        let source = ScriptedSource::default();
        let bookmark = WatchEvent::Bookmark(Bookmark::new("osiriscare.net/v1alpha1", "Host", "7"));
        source.answer(
            Kind::Host,
            Scripted::List(vec![host("ehr", "3")], "5".into()),
        );
        // The first watch adds a host and bookmarks, then breaks: the next resumes from 7.
        source.answer(
            Kind::Host,
            Scripted::Watch(vec![WatchEvent::Added(host("files", "6")), bookmark]),
        );
        source.answer(Kind::Host, Scripted::Watch(vec![expired_event()]));
        // 410: a fresh list replaces everything.
        source.answer(
            Kind::Host,
            Scripted::List(vec![host("files", "9")], "9".into()),
        );
        let task = watch_kind(
            &source,
            Kind::Host,
            &desired,
            StdDuration::from_secs(300),
            backoff(),
            now,
        );
        tokio::select! {
            () = task => unreachable!("watches run for ever"),
            () = tokio::time::sleep(StdDuration::from_secs(30)) => {}
        }
        let calls = source.calls();
        assert_eq!(
            calls[..5],
            [
                (Kind::Host, None),
                (Kind::Host, Some("5".to_owned())),
                (Kind::Host, Some("7".to_owned())),
                (Kind::Host, None),
                (Kind::Host, Some("9".to_owned())),
            ]
        );
        // Then central is down: retries back off (1–2 s, 2–4 s, …), not one per tick.
        assert!(calls.len() < 12, "{} calls in 30 s", calls.len());
        let snapshot = desired.snapshot();
        assert_eq!(snapshot.hosts.keys().collect::<Vec<_>>(), ["files"]);
        // The cache on disk holds the same.
        let cached = Snapshot::load(&Snapshot::path(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(cached.hosts.keys().collect::<Vec<_>>(), ["files"]);
        assert_eq!(desired.connection().offline_since, Some(now()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_remembered_across_restarts_and_ends_when_every_kind_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let start = now();
        let desired = Desired::open(Snapshot::path(dir.path()));
        let source = ScriptedSource::default();
        // Central is down from the start: the outage begins at the first failure.
        tokio::select! {
            () = watch_kind(&source, Kind::Site, &desired, StdDuration::from_secs(300), backoff(), move || start) => {}
            () = tokio::time::sleep(StdDuration::from_secs(2)) => {}
        }
        assert_eq!(desired.connection().offline_since, Some(start));
        drop(desired);

        // A restart reads the outage back from the cache; every kind listed ends it.
        let desired = Desired::open(Snapshot::path(dir.path()));
        assert_eq!(desired.connection().offline_since, Some(start));
        for kind in WATCHED {
            source.answer(kind, Scripted::List(vec![], "1".into()));
        }
        let later = start + chrono::TimeDelta::seconds(42);
        tokio::select! {
            () = watch_all(&source, &desired, StdDuration::from_secs(300), backoff(), move || later) => {}
            () = tokio::time::sleep(StdDuration::from_millis(10)) => {}
        }
        assert_eq!(desired.connection().last_outage, Some((start, later)));
        assert_eq!(desired.snapshot().synced_at(), Some(later));
        let cached = Snapshot::load(&Snapshot::path(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(cached.last_outage, Some((start, later)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_of_events_is_written_to_the_cache_once_per_save_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = Snapshot::path(dir.path());
        let desired = Desired::open(path.clone());
        let cached_hosts = || Snapshot::load(&path).unwrap().unwrap().hosts.len();
        let added = |version: u32| {
            let event = WatchEvent::Added(host(&format!("h{version}"), &version.to_string()));
            desired
                .update(|s| s.snapshot_mut().apply(Kind::Host, event, now()))
                .unwrap();
        };
        // The first change is written at once.
        desired
            .listed(Kind::Host, vec![host("h1", "1")], "1".into(), now())
            .unwrap();
        assert_eq!(cached_hosts(), 1);
        // Events right after it are published, not written...
        for version in 2..40 {
            added(version);
        }
        assert_eq!(desired.snapshot().hosts.len(), 39);
        assert_eq!(cached_hosts(), 1);
        // ...until a flush.
        desired.flush();
        assert_eq!(cached_hosts(), 39);
        // Once the last save is SAVE_EVERY old, the next change is written at once.
        added(40);
        assert_eq!(cached_hosts(), 39);
        tokio::time::advance(SAVE_EVERY).await;
        added(41);
        assert_eq!(cached_hosts(), 41);
        // An outage is written at once, whatever the interval.
        desired.unreachable(now());
        let cached = Snapshot::load(&path).unwrap().unwrap();
        assert_eq!(cached.offline_since, Some(now()));
    }

    #[test]
    fn collections_narrow_to_the_site_and_the_appliance() {
        let cases = [
            (
                Kind::Site,
                "/apis/osiriscare.net/v1alpha1/sites",
                Some("metadata.name=smile"),
            ),
            (
                Kind::Host,
                "/apis/osiriscare.net/v1alpha1/namespaces/smile/hosts",
                None,
            ),
            (
                Kind::Appliance,
                "/apis/osiriscare.net/v1alpha1/namespaces/smile/appliances",
                Some("metadata.name=box1"),
            ),
            (
                Kind::Runbook,
                "/apis/osiriscare.net/v1alpha1/runbooks",
                None,
            ),
        ];
        for (kind, path, selector) in cases {
            let (p, s) = collection("smile", "box1", kind);
            assert_eq!((p.as_str(), s.as_deref()), (path, selector), "{kind:?}");
        }
    }
}
