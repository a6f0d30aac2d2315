//! The compliance roll-up: keeps every Site's `status.compliance`, `status.counts`, `Compliant`
//! condition and `observedGeneration` equal to what `osc_crds::compliance` computes from the
//! store's Hosts and Runbooks.
//!
//! The task lists the sites, watches sites, hosts and runbooks from the store's resourceVersion,
//! and recomputes a site whenever something it depends on changes: its own spec (selection,
//! frameworks, exceptions), one of its hosts (results), or any runbook (the library is shared).
//! A burst of events is gathered for [`ComplianceOptions::coalesce`] and each affected site is
//! recomputed once. Time alone also changes a score (results go stale, exceptions lapse), so the
//! task sleeps until the earliest such moment of any site, and at most
//! [`ComplianceOptions::resync`], then recomputes. On `410 Gone` (its watch fell behind the kept
//! history) it lists again at once; on other store errors it lists again after a backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt as _;
use osc_crds::Kind;
use osc_crds::compliance::site_compliance;
use osc_crds::kinds::{Host, Runbook, Site};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::{Clock, ReconcileError};
use crate::store::resource_version_of;
use crate::store::{EventType, ListOptions, ObjectKey, Store, StoreError, WatchEvent};

/// Tuning of [`run_compliance`]. `ComplianceOptions::default()` suits production.
#[derive(Clone, Debug)]
pub struct ComplianceOptions {
    /// Longest time between two recomputations of every site, by the reconciler's clock, even when
    /// no event and no stale result asks for one: the safety net for anything missed.
    pub resync: Duration,
    /// How long events are gathered after the first of a burst before the affected sites are
    /// recomputed, so that an appliance reporting fifty results causes one write, not fifty.
    pub coalesce: Duration,
    /// How many times a site's status write is retried after losing a race (409 Conflict) before
    /// the site is left to the event the competing write causes.
    pub conflict_retries: u32,
    /// The first pause before listing again after a store error; it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// The longest pause before listing again after a store error.
    pub max_backoff: Duration,
}

impl Default for ComplianceOptions {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(5 * 60),
            coalesce: Duration::from_millis(250),
            conflict_retries: 5,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Keeps every Site's compliance status current until `shutdown` completes.
///
/// It never ends on its own: store errors are logged and followed by a fresh list (see the
/// module documentation). Shutdown is noticed while the task waits for events or time, so a
/// batch of sites in progress is finished first and no status write is cut off halfway. Run it
/// on every replica; see [`super`] for why that is safe.
pub async fn run_compliance<C: Clock>(
    store: Store,
    clock: C,
    options: ComplianceOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut reconciler = Reconciler {
        backoff: backoff(&options),
        store,
        clock,
        options,
        sites: BTreeMap::new(),
    };
    tokio::pin!(shutdown);
    info!("compliance roll-up started");
    loop {
        let Err(error) = reconciler.session(shutdown.as_mut()).await else {
            break;
        };
        if error.is_gone() {
            info!(%error, "compliance roll-up fell behind the watch history; listing again");
            continue;
        }
        let delay = reconciler
            .backoff
            .next()
            .unwrap_or(reconciler.options.max_backoff);
        warn!(%error, retry_in = ?delay, "compliance roll-up failed; listing again");
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    info!("compliance roll-up stopped");
}

/// The roll-up's state across sessions (one session = one list and its watches).
struct Reconciler<C> {
    /// Where objects are read and statuses written.
    store: Store,
    /// Where `now` comes from.
    clock: C,
    /// Tuning.
    options: ComplianceOptions,
    /// Every site known to exist, with what the roll-up remembers of it.
    sites: BTreeMap<String, SiteState>,
    /// Pauses between failed sessions; reset when a session starts well.
    backoff: ExponentialBackoff,
}

/// What the roll-up remembers of one site between recomputations.
#[derive(Debug, Default)]
struct SiteState {
    /// When time alone changes the site's score next; the task wakes then.
    next_change: Option<DateTime<Utc>>,
    /// The resourceVersion of the roll-up's own last write, so that the event it causes is not
    /// taken for news.
    written_rv: Option<i64>,
}

/// The resources a site's compliance depends on.
const WATCHED: [Kind; 3] = [Kind::Site, Kind::Host, Kind::Runbook];

/// One item of the merged watch: the resource, and the event, the error that ended its stream,
/// or `None` when the stream ended without one.
type Tagged = (Kind, Option<Result<Arc<WatchEvent>, StoreError>>);

/// The merged watch of one session.
type Events = mpsc::Receiver<Tagged>;

/// Events buffered between the watches and the roll-up; beyond it the watches wait, and the
/// store lets a waiting watcher catch up from its table later, so memory stays bounded.
const EVENT_BUFFER: usize = 256;

impl<C: Clock> Reconciler<C> {
    /// Lists, watches and recomputes until `shutdown` completes (`Ok`) or something fails.
    async fn session<S: Future<Output = ()>>(
        &mut self,
        mut shutdown: Pin<&mut S>,
    ) -> Result<(), ReconcileError> {
        // Watch from the version read before the list: every write after it arrives as an event,
        // and everything before it is in the state the recomputations read.
        let from = self
            .store
            .current_rv()
            .await
            .map_err(store_error(|| "reading the store's resourceVersion".into()))?;
        let mut events = self.watch(from).await?;
        let listed = self
            .store
            .list(Kind::Site.plural(), &ListOptions::default(), |_| true)
            .await
            .map_err(store_error(|| "listing sites".into()))?;
        let names = listed
            .items
            .iter()
            .filter_map(|site| site.pointer("/metadata/name")?.as_str().map(str::to_owned));
        self.sites = names.map(|name| (name, SiteState::default())).collect();
        let mut dirty: BTreeSet<String> = self.sites.keys().cloned().collect();
        self.backoff = backoff(&self.options);
        let mut resync_at = later(self.clock.now(), self.options.resync);

        loop {
            self.reconcile(std::mem::take(&mut dirty)).await?;
            let wake = self
                .sites
                .values()
                .filter_map(|site| site.next_change)
                .fold(resync_at, DateTime::min);
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                event = events.recv() => {
                    self.note(event, &mut dirty)?;
                    self.gather(&mut events, &mut dirty).await?;
                }
                () = self.clock.sleep_until(wake) => {
                    let now = self.clock.now();
                    if now >= resync_at {
                        resync_at = later(now, self.options.resync);
                        dirty.extend(self.sites.keys().cloned());
                    } else {
                        let due = self
                            .sites
                            .iter()
                            .filter(|(_, site)| site.next_change.is_some_and(|at| at <= now));
                        dirty.extend(due.map(|(name, _)| name.clone()));
                    }
                }
            }
        }
    }

    /// The events of every watched resource after `from`, merged into one channel.
    ///
    /// Each store watch is read by a task of its own that ends only after it has taken an item
    /// and finds the channel closed. Dropping a store watch while its catch-up read is opening a
    /// transaction can leave that pooled connection inside the transaction (sqlx 0.9 does not
    /// roll back a cancelled `BEGIN` on PostgreSQL), so the roll-up, which drops its watches on
    /// every relist, never drops one in the middle of a read.
    async fn watch(&self, from: i64) -> Result<Events, ReconcileError> {
        let (sender, events) = mpsc::channel(EVENT_BUFFER);
        for kind in WATCHED {
            let mut watch = self
                .store
                .watch(kind.plural(), None, from)
                .await
                .map_err(store_error(|| format!("watching {}", kind.plural())))?;
            let sender = sender.clone();
            tokio::spawn(async move {
                while let Some(event) = watch.next().await {
                    let failed = event.is_err();
                    if sender.send((kind, Some(event))).await.is_err() || failed {
                        return;
                    }
                }
                // A marker tells an ended stream from a quiet one.
                let _ = sender.send((kind, None)).await;
            });
        }
        Ok(events)
    }

    /// Adds to `dirty` the sites `event` may have changed the compliance of.
    fn note(
        &mut self,
        event: Option<Tagged>,
        dirty: &mut BTreeSet<String>,
    ) -> Result<(), ReconcileError> {
        let event = match event {
            Some((_, Some(Ok(event)))) => event,
            Some((kind, Some(Err(source)))) => {
                return Err(ReconcileError::Store {
                    operation: format!("watching {}", kind.plural()),
                    source,
                });
            }
            Some((kind, None)) => {
                return Err(ReconcileError::WatchEnded {
                    resource: kind.plural(),
                });
            }
            // Every reader sends an error or an end marker before it stops, so this takes a
            // reader that panicked.
            None => {
                return Err(ReconcileError::WatchEnded {
                    resource: "sites, hosts and runbooks",
                });
            }
        };
        let key = &event.key;
        match Kind::from_plural(&key.resource) {
            Some(Kind::Site) if event.event_type == EventType::Deleted => {
                self.sites.remove(&key.name);
                dirty.remove(&key.name);
            }
            Some(Kind::Site) => {
                let site = self.sites.entry(key.name.clone()).or_default();
                if site.written_rv != Some(event.resource_version) {
                    dirty.insert(key.name.clone());
                }
            }
            Some(Kind::Host) if self.sites.contains_key(&key.namespace) => {
                dirty.insert(key.namespace.clone());
            }
            // A host of a site not seen yet: the site's own event will bring it.
            Some(Kind::Host) => {}
            // The library is shared: any runbook may be selected by any site.
            _ => dirty.extend(self.sites.keys().cloned()),
        }
        Ok(())
    }

    /// Gathers the events that arrive within [`ComplianceOptions::coalesce`].
    async fn gather(
        &mut self,
        events: &mut Events,
        dirty: &mut BTreeSet<String>,
    ) -> Result<(), ReconcileError> {
        let until = tokio::time::Instant::now() + self.options.coalesce;
        while let Ok(event) = tokio::time::timeout_at(until, events.recv()).await {
            self.note(event, dirty)?;
        }
        Ok(())
    }

    /// Recomputes `sites`, reading the runbook library once for all of them.
    async fn reconcile(&mut self, sites: BTreeSet<String>) -> Result<(), ReconcileError> {
        if sites.is_empty() {
            return Ok(());
        }
        let runbooks: Vec<Runbook> = match self.list(Kind::Runbook, None).await {
            Ok(runbooks) => runbooks,
            Err(error @ ReconcileError::Decode { .. }) => {
                // Every site depends on the library: none is scored until the runbook is fixed,
                // which is an event that brings them all back.
                error!(%error, "cannot compute any site's compliance");
                for name in &sites {
                    self.forget_next_change(name);
                }
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        for name in sites {
            match self.reconcile_site(&name, &runbooks).await {
                Ok(()) => {}
                Err(error @ ReconcileError::Decode { .. }) => {
                    error!(site = name, %error, "cannot compute the site's compliance");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Recomputes one site from the store's current state and writes its status if it changed.
    async fn reconcile_site(
        &mut self,
        name: &str,
        runbooks: &[Runbook],
    ) -> Result<(), ReconcileError> {
        // Cleared first, so that a site that cannot be computed does not keep waking the task.
        self.forget_next_change(name);
        let key = ObjectKey::cluster(Kind::Site.plural(), name);
        for attempt in 0..=self.options.conflict_retries {
            let stored = match self.store.get(&key).await {
                Err(StoreError::NotFound { .. }) => {
                    self.sites.remove(name);
                    return Ok(());
                }
                stored => stored.map_err(store_error(|| format!("reading {key}")))?,
            };
            // The store stamps every object it returns; the write below is conditional on it.
            let precondition = resource_version_of(&stored);
            let site: Site = decode(&key, Kind::Site, stored.clone())?;
            let hosts: Vec<Host> = self.list(Kind::Host, Some(name)).await?;
            let now = self.clock.now();
            let compliance = site_compliance(&site, &hosts, runbooks, now);
            let state = self.sites.entry(name.to_owned()).or_default();
            state.next_change = compliance.next_change;

            let mut status = site.status.unwrap_or_default();
            if !compliance.write_to(&mut status, site.metadata.generation, now) {
                return Ok(());
            }
            let mut object = stored;
            object["status"] =
                serde_json::to_value(&status).expect("a SiteStatus always serializes to JSON");
            match self.store.update(&key, object, precondition).await {
                Ok(written) => {
                    state.written_rv = resource_version_of(&written);
                    debug!(
                        site = name,
                        resource_version = state.written_rv,
                        scores = ?status.compliance,
                        "wrote compliance status"
                    );
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) => {
                    debug!(
                        site = name,
                        attempt, "site changed under the roll-up; recomputing"
                    );
                }
                Err(StoreError::NotFound { .. }) => {
                    self.sites.remove(name);
                    return Ok(());
                }
                Err(source) => {
                    return Err(ReconcileError::Store {
                        operation: format!("writing the status of {key}"),
                        source,
                    });
                }
            }
        }
        // Someone else keeps writing the site; each of their writes is an event that brings the
        // site back here, so giving up now loses nothing.
        debug!(
            site = name,
            "left the site to the next event after repeated conflicts"
        );
        Ok(())
    }

    /// Every object of `kind` (in `namespace`, if given), decoded.
    async fn list<T: DeserializeOwned>(
        &self,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<Vec<T>, ReconcileError> {
        let options = ListOptions {
            namespace: namespace.map(str::to_owned),
            ..ListOptions::default()
        };
        let listed = self
            .store
            .list(kind.plural(), &options, |_| true)
            .await
            .map_err(store_error(|| match namespace {
                Some(namespace) => format!("listing {} of site {namespace}", kind.plural()),
                None => format!("listing {}", kind.plural()),
            }))?;
        listed
            .items
            .into_iter()
            .map(|object| {
                let key = key_of(kind, &object);
                decode(&key, kind, object)
            })
            .collect()
    }

    fn forget_next_change(&mut self, name: &str) {
        if let Some(site) = self.sites.get_mut(name) {
            site.next_change = None;
        }
    }
}

/// The pauses between failed sessions: exponential with jitter, without end.
fn backoff(options: &ComplianceOptions) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_jitter()
        .with_min_delay(options.min_backoff)
        .with_max_delay(options.max_backoff)
        .without_max_times()
        .build()
}

/// `duration` after `now`; an absurd length saturates (a resync that never comes).
fn later(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| now.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Wraps a store error with what the roll-up was doing.
fn store_error(operation: impl FnOnce() -> String) -> impl FnOnce(StoreError) -> ReconcileError {
    move |source| ReconcileError::Store {
        operation: operation(),
        source,
    }
}

/// The key of a listed object, for error messages.
fn key_of(kind: Kind, object: &Value) -> ObjectKey {
    let field = |name: &str| {
        object["metadata"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    ObjectKey::namespaced(kind.plural(), field("namespace"), field("name"))
}

/// Reads a stored object as its kind.
fn decode<T: DeserializeOwned>(
    key: &ObjectKey,
    kind: Kind,
    object: Value,
) -> Result<T, ReconcileError> {
    serde_json::from_value(object).map_err(|source| ReconcileError::Decode {
        key: key.clone(),
        kind,
        source,
    })
}
