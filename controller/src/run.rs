//! The run loop (`osc-controller run`): the watches keep the desired state current (and the
//! cache on disk); each new snapshot becomes work items in the [`WorkQueue`] (new and changed
//! items run at once); workers take due items and [`reconcile`] them through the host's
//! transport; each result goes into the evidence chain and the outbox (evidence, the Host's
//! status patch, escalation notices), which the delivery loops drain; a heartbeat renews the
//! Appliance's status. Everything only calls out: no socket listens.
//!
//! On shutdown the workers take no new item and finish the reconciles they are in, evidence
//! and status still queued get one delivery attempt (at most [`FLUSH`]), and everything else
//! stops (the outbox keeps what was not delivered).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};
use osc_crds::condition::Condition;
use osc_crds::kinds::Host;
use osc_crds::kinds::host::{CheckResult, RunbookResult, TransportType};
use osc_crds::kinds::site::SyslogTarget;
use osc_proto::credentials::CredentialData;
use osc_proto::dsse::Signer;
use tokio::sync::Notify;

use crate::Error;
use crate::cache::Snapshot;
use crate::central::{Answer, Central, StatusPatch, StatusTarget};
use crate::config::{Config, Retention};
use crate::credentials::{Credentials, Pull};
use crate::deliver::{self, ToCentral};
use crate::evidence::{Context, EvidenceChain, bundle, new_bundle_id};
use crate::exec::{
    Executor, LocalExecutor, SshCredential, SshExecutor, SshSettings, SshTarget, StepRequest,
    StepRun,
};
use crate::items::{Item, ItemKey, items};
use crate::notify::{Escalation, Notifier, outgoing};
use crate::ntp::Ntp;
use crate::outbox::{EntryKind, OutboxStore, SqliteOutbox};
use crate::plan::{Desired as PlanDesired, Local, Observed, Plan};
use crate::queue::{Backoff, Requeue, WorkQueue};
use crate::reconcile::reconcile;
use crate::status::{self, Contact, Heartbeat, HostState};
use crate::sync::{Desired, Source, watch_all};

/// Runs a step on a host through the transport its Host names.
pub trait Transports: Send + Sync {
    /// Runs `request` on `host`, with the secret of the host's `credentialRef` when pulled.
    fn run(
        &self,
        host: &Host,
        credential: Option<Arc<CredentialData>>,
        request: StepRequest<'_>,
    ) -> impl Future<Output = Result<StepRun, Error>> + Send;

    /// The host key pinned for `host` on first contact, to record in its `status.hostKey`.
    fn host_key(&self, _host: &str) -> Option<String> {
        None
    }
}

/// The transports built into this controller: `local` runs on the appliance
/// ([`LocalExecutor`]); `ssh` through one [`SshExecutor`] (one session per host), whose target
/// is set again whenever the Host's address, port or Credential version changes, pinned to the
/// Host's `status.hostKey` when it has one; `winrm` is refused as not available yet, which the
/// Host reports (an error result, Reachable False).
#[derive(Debug)]
pub struct BuiltIn {
    /// Steps on the appliance itself.
    pub local: LocalExecutor,
    /// Steps on Linux hosts.
    pub ssh: SshExecutor,
    /// Per host, what its SSH target was set from: (address, port, Credential version).
    targets: Mutex<HashMap<String, (String, u16, String)>>,
}

impl BuiltIn {
    /// Transports with `ssh` settings.
    pub fn new(ssh: SshSettings) -> Self {
        Self {
            local: LocalExecutor,
            ssh: SshExecutor::new(ssh),
            targets: Mutex::default(),
        }
    }

    /// Makes sure the SSH executor reaches `host` as its spec and `credential` say.
    fn ssh_target(
        &self,
        host: &Host,
        credential: Option<&CredentialData>,
        step: &'static str,
    ) -> Result<(), Error> {
        let name = host.metadata.name.as_str();
        let refuse = |message: String| Error::Exec {
            host: name.to_owned(),
            step,
            message,
        };
        let address =
            host.spec.address.clone().ok_or_else(|| {
                refuse("the Host has no spec.address to reach it over SSH".into())
            })?;
        let transport = host.spec.transport.as_ref();
        let port = transport.and_then(|t| t.port).unwrap_or(22);
        let Some(credential) = credential else {
            let reference = transport.and_then(|t| t.credential_ref.as_deref());
            return Err(refuse(match reference {
                Some(name) => format!("the secret of Credential {name:?} is not pulled (yet)"),
                None => "the Host names no transport.credentialRef to log in with".into(),
            }));
        };
        let wanted = (address, port, credential.metadata.resource_version.clone());
        if lock(&self.targets).get(name) == Some(&wanted) {
            return Ok(());
        }
        let target = SshTarget {
            address: wanted.0.clone(),
            port,
            credential: SshCredential::from_data(credential)?,
            host_key: host.status.as_ref().and_then(|s| s.host_key.clone()),
        };
        self.ssh.set_target(name, target);
        lock(&self.targets).insert(name.to_owned(), wanted);
        Ok(())
    }
}

impl Transports for BuiltIn {
    async fn run(
        &self,
        host: &Host,
        credential: Option<Arc<CredentialData>>,
        request: StepRequest<'_>,
    ) -> Result<StepRun, Error> {
        match host.spec.transport_type() {
            TransportType::Local => Executor::run(&self.local, request).await,
            TransportType::Ssh => {
                self.ssh_target(host, credential.as_deref(), request.name)?;
                Executor::run(&self.ssh, request).await
            }
            TransportType::Winrm => Err(Error::Exec {
                host: request.host.to_owned(),
                step: request.name,
                message: "transport winrm is not built into this controller yet".into(),
            }),
        }
    }

    fn host_key(&self, host: &str) -> Option<String> {
        self.ssh.host_key(host)
    }
}

/// One executor for every transport: how tests run the loop with a
/// [`ScriptedExecutor`](crate::exec::ScriptedExecutor).
impl<E: Executor> Transports for E {
    async fn run(
        &self,
        _host: &Host,
        _credential: Option<Arc<CredentialData>>,
        request: StepRequest<'_>,
    ) -> Result<StepRun, Error> {
        Executor::run(self, request).await
    }
}

/// One host's transport as an [`Executor`], for [`reconcile`].
struct OnHost<'a, T> {
    transports: &'a T,
    host: &'a Host,
    credential: Option<Arc<CredentialData>>,
}

impl<T: Transports> Executor for OnHost<'_, T> {
    async fn run(&self, request: StepRequest<'_>) -> Result<StepRun, Error> {
        self.transports
            .run(self.host, self.credential.clone(), request)
            .await
    }
}

/// The loop's settings, from the config.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The site.
    pub site: String,
    /// This appliance.
    pub appliance: String,
    /// The appliance's own rules for `plan`.
    pub local: Local,
    /// What every bundle carries.
    pub context: Context,
    /// How much delivered evidence stays.
    pub retention: Retention,
    /// How often every kind is listed again.
    pub resync: StdDuration,
    /// The RMM webhook that gets every escalation.
    pub rmm_webhook_url: Option<url::Url>,
    /// The syslog collector that gets every escalation.
    pub syslog_target: Option<SyslogTarget>,
    /// Reconciles at once.
    pub workers: usize,
    /// How often the Appliance's heartbeat is renewed (the lease).
    pub heartbeat: StdDuration,
    /// Backoff of failed items, watches and deliveries.
    pub backoff: Backoff,
}

/// How long a stop waits for the outbox to reach central.
pub const FLUSH: StdDuration = StdDuration::from_secs(10);

/// Reconciles at once by default: hosts are slow, the appliance is small.
pub const WORKERS: usize = 8;

/// The heartbeat interval: central counts an appliance offline after a few missed beats.
pub const HEARTBEAT: StdDuration = StdDuration::from_secs(30);

impl Settings {
    /// The settings of `config`, the evidence naming `nixos_revision`.
    pub fn from_config(config: &Config, nixos_revision: String) -> Self {
        Self {
            site: config.site.clone(),
            appliance: config.appliance.clone(),
            local: Local {
                allow_disruptive_outside_window: config.allow_disruptive_outside_window,
                ntp_max_skew: config.ntp_max_skew.as_std(),
                cache_max_age: config.cache_max_age.as_std(),
                allowed_hosts: config.allowed_hosts.clone(),
                trusted_keys: config
                    .trusted_runbook_keys
                    .iter()
                    .map(|k| k.0.clone())
                    .collect(),
            },
            context: Context {
                site: config.site.clone(),
                deployment_mode: config.deployment_mode,
                reseller_id: config.reseller_id.clone(),
                nixos_revision,
            },
            retention: config.evidence_retention.clone(),
            resync: config.resync_interval.as_std(),
            rmm_webhook_url: config.rmm_webhook_url.clone(),
            syslog_target: config.syslog_target.clone(),
            workers: WORKERS,
            heartbeat: HEARTBEAT,
            backoff: Backoff::default(),
        }
    }
}

/// The NixOS revision the appliance runs (`/run/current-system/nixos-version`), else `unknown`.
pub fn nixos_revision() -> String {
    std::fs::read_to_string("/run/current-system/nixos-version")
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// What the controller talks to.
#[derive(Debug)]
pub struct Services<C, S, P, T, N> {
    /// Central, for evidence and status.
    pub central: C,
    /// Central's lists and watches.
    pub source: S,
    /// Central's credential pull.
    pub pull: P,
    /// The hosts' transports.
    pub transports: T,
    /// The clock's offset from NTP.
    pub ntp: N,
}

/// The running controller.
pub struct Controller<C, S, P, T, N> {
    settings: Settings,
    services: Services<C, S, P, T, N>,
    outbox: SqliteOutbox,
    chain: tokio::sync::Mutex<EvidenceChain>,
    desired: Desired,
    credentials: Credentials,
    queue: WorkQueue<ItemKey>,
    /// The current items by key.
    items: Mutex<HashMap<ItemKey, Item>>,
    /// Per item, the last result and recent heal times (for `plan`'s budget and flapping).
    memory: Mutex<HashMap<ItemKey, Memory>>,
    /// Per host, its status as written.
    hosts: Mutex<HashMap<String, HostState>>,
    /// Per host, the host key recorded in its status by this process (first contact).
    host_keys: Mutex<HashMap<String, String>>,
    /// The Appliance's conditions as written.
    appliance_conditions: Mutex<Vec<Condition>>,
    /// The last NTP offset read.
    ntp_offset: Mutex<Option<i64>>,
    /// Wakes the delivery loops after an enqueue.
    wake: Notify,
}

impl<C, S, P, T, N> std::fmt::Debug for Controller<C, S, P, T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("site", &self.settings.site)
            .field("appliance", &self.settings.appliance)
            .field("items", &self.queue.len())
            .finish_non_exhaustive()
    }
}

/// What the loop remembers of an item between reconciles: its last result and recent heals.
type Memory = (Option<RunbookResult>, Vec<DateTime<Utc>>);

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<C, S, P, T, N> Controller<C, S, P, T, N>
where
    C: Central,
    S: Source,
    P: Pull,
    T: Transports,
    N: Ntp,
{
    /// A controller with `settings`, its outbox and chain open, its desired state from the
    /// cache in `state_directory` (if any).
    pub async fn new(
        settings: Settings,
        services: Services<C, S, P, T, N>,
        outbox: SqliteOutbox,
        signer: Signer,
        cache: std::path::PathBuf,
    ) -> Result<Self, Error> {
        let chain = EvidenceChain::open(&outbox, settings.appliance.clone(), signer).await?;
        let queue = WorkQueue::new(settings.backoff);
        Ok(Self {
            desired: Desired::open(cache),
            settings,
            services,
            outbox,
            chain: tokio::sync::Mutex::new(chain),
            credentials: Credentials::default(),
            queue,
            items: Mutex::default(),
            memory: Mutex::default(),
            hosts: Mutex::default(),
            host_keys: Mutex::default(),
            appliance_conditions: Mutex::default(),
            ntp_offset: Mutex::default(),
            wake: Notify::new(),
        })
    }

    /// What the controller talks to (tests read their doubles through it).
    pub fn services(&self) -> &Services<C, S, P, T, N> {
        &self.services
    }

    /// The desired state as the controller holds it.
    pub fn desired(&self) -> &Desired {
        &self.desired
    }

    /// Runs until `shutdown` completes, then lets running reconciles finish. `Err` only when
    /// the outbox fails.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        // Read the clock before the first reconcile, so healing is not deferred for a beat.
        *lock(&self.ntp_offset) = self.services.ntp.offset_ms().await;
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let workers = async {
            let workers = (0..self.settings.workers).map(|_| self.worker(stopping.clone()));
            futures::future::join_all(workers).await;
        };
        let background = async {
            tokio::select! {
                () = watch_all(&self.services.source, &self.desired, self.settings.resync, watch_backoff(), Utc::now) => Ok(()),
                () = self.follow_desired() => Ok(()),
                () = self.heartbeats() => Ok(()),
                error = self.deliver() => Err(error),
            }
        };
        // Boxed so that it can be dropped before the final flush: a delivery loop stopped
        // mid-query must give the outbox's one connection back.
        let mut background = Box::pin(background);
        tokio::pin!(workers, shutdown);
        tokio::select! {
            result = &mut background => return result,
            // Workers return only once told to stop.
            () = &mut workers => return Ok(()),
            () = &mut shutdown => {}
        }
        tracing::info!("stopping: finishing the reconciles in progress");
        let _ = stop.send(true);
        tokio::select! {
            () = &mut workers => {}
            result = &mut background => return result,
        }
        drop(background);
        self.desired.flush();
        // What the last reconciles queued goes out now if central takes it; the rest waits in
        // the outbox for the next start.
        let central = ToCentral {
            central: &self.services.central,
            site: &self.settings.site,
        };
        let flush = async {
            for kind in [EntryKind::Evidence, EntryKind::Status] {
                deliver::drain(&self.outbox, &central, kind, Utc::now).await?;
            }
            Ok::<_, Error>(())
        };
        match tokio::time::timeout(FLUSH, flush).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error),
            Err(_) => {
                tracing::warn!("central did not take the outbox in time; it stays queued");
                Ok(())
            }
        }
    }

    /// Takes due items until told to stop.
    async fn worker(&self, mut stopping: tokio::sync::watch::Receiver<bool>) {
        loop {
            let key = tokio::select! {
                key = self.queue.next() => key,
                _ = stopping.wait_for(|stop| *stop) => return,
            };
            let requeue = self.reconcile_item(&key).await;
            self.queue.done(&key, requeue);
        }
    }

    /// Turns each snapshot into items (and pulls the credentials it names).
    async fn follow_desired(&self) {
        let mut snapshots = self.desired.subscribe();
        let mut applied: Option<Arc<Snapshot>> = None;
        loop {
            let snapshot = snapshots.borrow_and_update().clone();
            // A snapshot that changes only statuses needs no new items (and replaces the one
            // held, which would otherwise stay as a third copy); one whose credentials did not
            // all pull is applied again on the next change, to retry them.
            if applied
                .as_ref()
                .is_some_and(|last| last.same_work(&snapshot))
            {
                applied = Some(snapshot);
            } else {
                let pulled = self.apply_desired(&snapshot).await;
                applied = pulled.then_some(snapshot);
            }
            if snapshots.changed().await.is_err() {
                return;
            }
        }
    }

    /// Returns whether every credential it names was pulled.
    async fn apply_desired(&self, snapshot: &Snapshot) -> bool {
        let new = match &snapshot.site {
            Some(site) => {
                let hosts: Vec<Host> = snapshot.hosts.values().cloned().collect();
                let runbooks: Vec<_> = snapshot.runbooks.values().cloned().collect();
                items(site, &hosts, &runbooks)
            }
            None => vec![],
        };
        {
            let mut held = lock(&self.hosts);
            for (name, host) in &snapshot.hosts {
                held.entry(name.clone())
                    .or_insert_with(|| HostState::from_host(host))
                    .generation = host.metadata.generation;
            }
            held.retain(|name, _| snapshot.hosts.contains_key(name));
        }
        let old: Vec<Item> = {
            let mut current = lock(&self.items);
            let old = current.drain().map(|(_, item)| item).collect();
            current.extend(new.iter().map(|i| (i.key.clone(), i.clone())));
            old
        };
        if old.len() != new.len() {
            tracing::info!(
                items = new.len(),
                hosts = snapshot.hosts.len(),
                "work items changed"
            );
        }
        // Credentials first: the items queued next use them at once.
        let failed = self
            .credentials
            .refresh(&self.services.pull, &self.settings.site, snapshot)
            .await;
        self.queue.desired(&old, &new);
        for (name, error) in &failed {
            tracing::warn!(credential = name, %error, "cannot pull a credential; retrying on the next change");
        }
        failed.is_empty()
    }

    /// One reconcile of `key`, and everything recorded from it; returns the requeue.
    async fn reconcile_item(&self, key: &ItemKey) -> Requeue {
        let snapshot = self.desired.snapshot();
        let item = lock(&self.items).get(key).cloned();
        let (Some(item), Some(host), Some(runbook)) = (
            item,
            snapshot.hosts.get(&key.host),
            snapshot.runbooks.get(&key.runbook),
        ) else {
            return Requeue::Interval;
        };
        // After a restart the Host's status in central is the memory: attempts and an
        // escalation carry over, so a restart neither refreshes the budget nor notifies again.
        let (previous, mut heals) = lock(&self.memory).get(key).cloned().unwrap_or_else(|| {
            let recorded = lock(&self.hosts)
                .get(&key.host)
                .and_then(|h| h.results.get(&key.runbook).cloned());
            (recorded, vec![])
        });
        let ntp_offset_ms = *lock(&self.ntp_offset);
        let observed = Observed {
            previous: previous.clone(),
            heals: heals.clone(),
            ntp_offset_ms,
            synced_at: snapshot.synced_at(),
            ..Observed::default()
        };
        let desired = PlanDesired {
            item: &item,
            runbook: &runbook.spec,
            local: &self.settings.local,
        };
        let credential = host
            .spec
            .transport
            .as_ref()
            .and_then(|t| t.credential_ref.as_deref())
            .and_then(|name| self.credentials.get(name));
        let executor = OnHost {
            transports: &self.services.transports,
            host,
            credential,
        };
        let digest = item.runbook_digest.as_str();
        let done = reconcile(desired, observed, &executor, Utc::now).await;
        let now = Utc::now();
        let (result, contact, requeue) = match &done {
            Ok(done) => {
                if let Some(reconciled) =
                    done.evidence(desired, digest, policy_version(&snapshot), ntp_offset_ms)
                {
                    let bundle = bundle(&self.settings.context, &reconciled, new_bundle_id());
                    let recorded = self
                        .chain
                        .lock()
                        .await
                        .record(&self.outbox, bundle, now)
                        .await;
                    if let Err(error) = recorded {
                        tracing::error!(%error, host = key.host, runbook = key.runbook, "cannot record evidence; retrying the item");
                        return Requeue::Backoff;
                    }
                    self.wake.notify_waiters();
                }
                if let Plan::Escalate {
                    reason,
                    attempts,
                    notify: true,
                } = done.plan
                {
                    self.escalate(&snapshot, key, digest, reason, attempts, now)
                        .await;
                }
                if matches!(done.plan, Plan::Healed { .. }) {
                    heals.push(now);
                }
                let contact = if done.check.is_some() {
                    Contact::Reached
                } else {
                    Contact::None
                };
                (
                    done.result(previous.as_ref(), digest),
                    contact,
                    done.plan.requeue(now),
                )
            }
            Err(error) => {
                tracing::warn!(host = key.host, runbook = key.runbook, %error, "reconcile failed");
                let result = RunbookResult {
                    result: CheckResult::Error,
                    message: Some(error.to_string()),
                    runbook_digest: Some(digest.to_owned()),
                    attempts: previous.as_ref().map_or(0, |p| p.attempts),
                    last_checked: previous.as_ref().and_then(|p| p.last_checked),
                    last_healed: previous.as_ref().and_then(|p| p.last_healed),
                };
                (
                    Some(result),
                    Contact::Unreachable(error.to_string()),
                    Requeue::Backoff,
                )
            }
        };
        let pinned = self.services.transports.host_key(&key.host);
        let recorded = host.status.as_ref().and_then(|s| s.host_key.clone());
        if let Some(pinned) = pinned.filter(|p| Some(p) != recorded.as_ref())
            && lock(&self.host_keys)
                .insert(key.host.clone(), pinned.clone())
                .as_ref()
                != Some(&pinned)
        {
            let patch = StatusPatch {
                target: StatusTarget::Host,
                name: key.host.clone(),
                patch: status::host_key(&pinned),
            };
            let body = serde_json::to_vec(&patch).expect("a patch serializes");
            self.enqueue(EntryKind::Status, &body, now).await;
        }
        let window = TimeDelta::from_std(item.policy.flap_window).unwrap_or(TimeDelta::MAX);
        heals.retain(|at| now - *at <= window);
        lock(&self.memory).insert(key.clone(), (result.clone().or(previous), heals));
        self.record_status(key, result, &contact, now).await;
        requeue
    }

    async fn record_status(
        &self,
        key: &ItemKey,
        result: Option<RunbookResult>,
        contact: &Contact,
        now: DateTime<Utc>,
    ) {
        let runbooks: Vec<String> = lock(&self.items)
            .keys()
            .filter(|k| k.host == key.host)
            .map(|k| k.runbook.clone())
            .collect();
        let runbooks: Vec<&str> = runbooks.iter().map(String::as_str).collect();
        let patch = {
            let mut hosts = lock(&self.hosts);
            let host = hosts.entry(key.host.clone()).or_default();
            host.record(&key.runbook, result, contact, &runbooks, now)
        };
        let patch = StatusPatch {
            target: StatusTarget::Host,
            name: key.host.clone(),
            patch,
        };
        self.enqueue(
            EntryKind::Status,
            &serde_json::to_vec(&patch).expect("a patch serializes"),
            now,
        )
        .await;
    }

    async fn escalate(
        &self,
        snapshot: &Snapshot,
        key: &ItemKey,
        digest: &str,
        reason: crate::plan::Escalation,
        attempts: u32,
        now: DateTime<Utc>,
    ) {
        let reason = match reason {
            crate::plan::Escalation::AttemptsExhausted => "AttemptsExhausted",
            crate::plan::Escalation::Flapping { .. } => "Flapping",
        };
        let escalation = Escalation {
            site: self.settings.site.clone(),
            appliance: self.settings.appliance.clone(),
            host: key.host.clone(),
            runbook: key.runbook.clone(),
            runbook_digest: digest.to_owned(),
            reason: reason.to_owned(),
            attempts,
            message: format!(
                "{} on {} needs a person: {reason} after {attempts} heal attempts",
                key.runbook, key.host
            ),
            at: now,
        };
        let targets = snapshot
            .site
            .as_ref()
            .map(|s| s.spec.notifications.as_slice())
            .unwrap_or_default();
        for notice in outgoing(
            targets,
            self.settings.rmm_webhook_url.as_ref(),
            self.settings.syslog_target.as_ref(),
            &escalation,
        ) {
            let body = serde_json::to_vec(&notice).expect("a notice serializes");
            self.enqueue(EntryKind::Notification, &body, now).await;
        }
    }

    async fn enqueue(&self, kind: EntryKind, body: &[u8], now: DateTime<Utc>) {
        match self.outbox.enqueue(kind, body, now).await {
            Ok(_) => self.wake.notify_waiters(),
            Err(error) => {
                tracing::error!(%error, kind = kind.as_str(), "cannot enqueue into the outbox")
            }
        }
    }

    /// The delivery loops: evidence and status to central, notifications to their targets.
    async fn deliver(&self) -> Error {
        let central = ToCentral {
            central: &self.services.central,
            site: &self.settings.site,
        };
        let notifier = Notifier::new(&self.credentials);
        let backoff = delivery_backoff();
        tokio::select! {
            error = deliver::run(&self.outbox, &central, EntryKind::Evidence, backoff, &self.wake, Utc::now) => error,
            error = deliver::run(&self.outbox, &central, EntryKind::Status, backoff, &self.wake, Utc::now) => error,
            error = deliver::run(&self.outbox, &notifier, EntryKind::Notification, backoff, &self.wake, Utc::now) => error,
        }
    }

    /// Renews the Appliance's status every heartbeat interval (sent directly: a stale
    /// heartbeat is worth nothing, so it is not queued), reads the NTP offset, prunes the outbox.
    async fn heartbeats(&self) {
        let mut ticks = tokio::time::interval(self.settings.heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let offset = self.services.ntp.offset_ms().await;
            *lock(&self.ntp_offset) = offset;
            let now = Utc::now();
            if let Err(error) = self.outbox.prune(&self.settings.retention, now).await {
                tracing::warn!(%error, "cannot prune the outbox");
            }
            let depth = match self.outbox.depth().await {
                Ok(depth) => depth.total(),
                Err(error) => {
                    tracing::warn!(%error, "cannot read the outbox depth");
                    continue;
                }
            };
            let max_skew = self.settings.local.ntp_max_skew.as_millis();
            let beat = Heartbeat {
                now,
                version: env!("CARGO_PKG_VERSION"),
                ntp_offset_ms: offset,
                ntp_max_skew_ms: i64::try_from(max_skew).unwrap_or(i64::MAX),
                outbox_depth: depth,
                last_sync: self.desired.snapshot().synced_at(),
                connection: self.desired.connection(),
            };
            let patch = status::appliance(&beat, &mut lock(&self.appliance_conditions));
            let patch = StatusPatch {
                target: StatusTarget::Appliance,
                name: self.settings.appliance.clone(),
                patch,
            };
            match self
                .services
                .central
                .patch_status(&self.settings.site, &patch)
                .await
            {
                Answer::Accepted => {}
                answer => tracing::warn!(?answer, "heartbeat not delivered"),
            }
        }
    }
}

/// `site/<generation>`: the desired state a result was decided under.
fn policy_version(snapshot: &Snapshot) -> String {
    let generation = snapshot
        .site
        .as_ref()
        .and_then(|s| s.metadata.generation)
        .unwrap_or_default();
    format!("site/{generation}")
}

/// Watches retry quickly at first (a restart of central), then settle at a minute.
fn watch_backoff() -> Backoff {
    Backoff {
        min: StdDuration::from_secs(1),
        max: StdDuration::from_secs(60),
        seed: None,
    }
}

/// Deliveries back off the same way.
fn delivery_backoff() -> Backoff {
    watch_backoff()
}
