//! The controller benchmark behind `controller-bench`: how fast the controller heals drift, and
//! what its own work costs in memory and CPU, in this process with the real controller library
//! (`osc_controller::run::Controller::run`, a real SQLite outbox and evidence chain).
//!
//! Phases, in order:
//! 1. **load**: 100 hosts x 20 runbooks at the default interval, every step answered at once by
//!    an executor that runs nothing ([`Instant`]), so only the controller's own work counts
//!    (planning, evidence signing and chaining, the outbox, status patches). VmRSS and CPU time
//!    (utime + stime) of this process are read from `/proc/self` over a fixed time; the first
//!    pass over every item is reported apart from the rest of the run (steady state).
//! 2. **drift**: one host on the `local` transport and one runbook whose real `sh` scripts check
//!    and heal a file; drift (the file's content changed) is injected on a timer and the time to
//!    the verified heal being recorded is measured: the Host status patch with result `healed`
//!    handed to central by the controller's delivery loop.
//!
//! Central is the [`Recorder`], an in-memory [`Central`] that accepts every delivery and stamps
//! the heals; the desired state comes from a [`ScriptedSource`] (one list per kind, no watch).
//! Central's own runbook intervals are at least one minute (`crds` validation at admission); the
//! controller's item parser does not re-check, so the scripted Site carries the drift phase's
//! interval (1 s) directly.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as Clock};

use osc_controller::central::{Answer, Central, StatusPatch};
use osc_controller::config::Retention;
use osc_controller::credentials::MapPull;
use osc_controller::evidence::Context;
use osc_controller::exec::{Executor, LocalExecutor, StepRequest, StepRun};
use osc_controller::ntp::FixedNtp;
use osc_controller::outbox::SqliteOutbox;
use osc_controller::plan::Local;
use osc_controller::queue::Backoff;
use osc_controller::run::{Controller, Services, Settings as LoopSettings, Transports};
use osc_controller::sync::{Scripted, ScriptedSource};
use osc_controller::trust::sign_runbook;
use osc_crds::kinds::site::DeploymentMode;
use osc_crds::kinds::{Kind, RunbookSpec};
use osc_proto::auth::{EnrollRequest, EnrollResponse};
use osc_proto::dsse::Signer;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::bench::BenchError;
use crate::bench::report::{Latency, Machine, aligned, header_row, latency_row};

/// The site of both phases.
const SITE: &str = "bench";

/// How often `/proc/self/status` is read for the RSS peak.
const RSS_EVERY: Duration = Duration::from_millis(100);

/// How much each phase does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Hosts of the load phase.
    pub hosts: usize,
    /// Runbooks on each of them.
    pub runbooks: usize,
    /// How long the load phase runs.
    pub load_time: Duration,
    /// Drifts injected and healed in the drift phase.
    pub drifts: usize,
    /// The drift phase's runbook interval.
    pub drift_interval: Duration,
}

impl Settings {
    /// The figures the README reports.
    pub fn full() -> Self {
        Self {
            hosts: 100,
            runbooks: 20,
            load_time: Duration::from_secs(60),
            drifts: 100,
            drift_interval: Duration::from_secs(1),
        }
    }

    /// Small counts that run every phase, for a smoke test of the benchmark itself.
    pub fn quick() -> Self {
        Self {
            hosts: 10,
            runbooks: 4,
            load_time: Duration::from_secs(3),
            drifts: 3,
            drift_interval: Duration::from_secs(1),
        }
    }
}

/// Every figure of one run. Serialized by `controller-bench --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The machine the run was on.
    pub machine: Machine,
    /// The load phase.
    pub load: Load,
    /// The drift phase: from injecting drift to the heal's status patch reaching central.
    pub drift_to_heal: Latency,
    /// Its runbook interval, in seconds.
    pub drift_interval_secs: f64,
    /// The default runbook interval, in seconds (drift waits up to one for its next check).
    pub default_interval_secs: f64,
}

/// What the load phase measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Load {
    /// Hosts.
    pub hosts: usize,
    /// Runbooks per host.
    pub runbooks: usize,
    /// Seconds the controller ran.
    pub seconds: f64,
    /// Steps the executor answered (a check per item per pass).
    pub steps: usize,
    /// Status patches central received.
    pub patches: usize,
    /// Evidence envelopes central received.
    pub evidence: usize,
    /// Seconds until every item had been checked once.
    pub first_pass_secs: f64,
    /// CPU of the first pass, % of one core.
    pub first_pass_cpu_percent: f64,
    /// CPU of the rest of the run (steady state at the default interval), % of one core.
    pub steady_cpu_percent: f64,
    /// VmRSS before the controller started, MiB.
    pub rss_start_mib: f64,
    /// Highest VmRSS seen, MiB.
    pub rss_peak_mib: f64,
    /// VmRSS at the end, MiB.
    pub rss_end_mib: f64,
}

/// Runs both phases; `progress` gets a line at each.
pub async fn run(settings: &Settings, progress: &dyn Fn(&str)) -> Result<Report, BenchError> {
    let dir = tempfile::tempdir().map_err(|error| unexpected(format!("no temp dir: {error}")))?;
    progress(&format!(
        "load: {} hosts x {} runbooks at the default interval for {} s, steps answered at once",
        settings.hosts,
        settings.runbooks,
        settings.load_time.as_secs_f64()
    ));
    let load = load_phase(settings, &dir.path().join("load")).await?;
    progress(&format!(
        "drift: {} drifts of a local file, runbook interval {} s",
        settings.drifts,
        settings.drift_interval.as_secs_f64()
    ));
    let drift_to_heal = drift_phase(settings, &dir.path().join("drift")).await?;
    Ok(Report {
        machine: Machine::this(),
        load,
        drift_to_heal,
        drift_interval_secs: settings.drift_interval.as_secs_f64(),
        default_interval_secs: osc_crds::defaults::CHECK_INTERVAL.as_secs_f64(),
    })
}

fn unexpected(what: String) -> BenchError {
    BenchError::Unexpected { what }
}

/// Central in memory: accepts every delivery, counts them, and wakes whoever waits for a
/// Host result `healed`.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Evidence envelopes received.
    evidence: AtomicUsize,
    /// Status patches received.
    patches: AtomicUsize,
    /// Host status patches that record a `healed` result.
    heals: AtomicUsize,
    /// Notified at each of those.
    healed: Notify,
}

impl Central for Recorder {
    async fn enroll(
        &self,
        _request: &EnrollRequest,
    ) -> Result<EnrollResponse, osc_controller::Error> {
        Err(osc_controller::Error::Central {
            url: "recorder".to_owned(),
            message: "the benchmark's central does not enroll".to_owned(),
        })
    }

    async fn post_evidence(&self, _envelope: &[u8]) -> Answer {
        self.evidence.fetch_add(1, Ordering::Relaxed);
        Answer::Accepted
    }

    async fn patch_status(&self, _site: &str, patch: &StatusPatch) -> Answer {
        self.patches.fetch_add(1, Ordering::Relaxed);
        let results = &patch.patch["status"]["results"];
        let healed = results
            .as_object()
            .is_some_and(|results| results.values().any(|r| r["result"] == "healed"));
        if healed {
            self.heals.fetch_add(1, Ordering::SeqCst);
            self.healed.notify_waiters();
        }
        Answer::Accepted
    }
}

/// An executor that runs nothing: every step exits 0 at once (every check passes).
#[derive(Debug, Default)]
pub struct Instant {
    /// Steps answered.
    steps: AtomicUsize,
}

impl Executor for Instant {
    async fn run(&self, _request: StepRequest<'_>) -> Result<StepRun, osc_controller::Error> {
        self.steps.fetch_add(1, Ordering::Relaxed);
        Ok(StepRun::exited(0, b"ok\n"))
    }
}

/// A controller on `transports` over the desired state `site_spec`, `hosts` (names, on the
/// local transport) and `runbooks` (name and check/remediate scripts, signed here).
async fn controller<T: Transports>(
    dir: &Path,
    transports: T,
    site_spec: Value,
    hosts: &[String],
    runbooks: &[(String, String, String)],
) -> Result<Controller<Recorder, ScriptedSource, MapPull, T, FixedNtp>, BenchError> {
    let runbook_key = Signer::from_seed(&[61; 32]);
    let object = |kind: &str, name: &str, spec: Value| {
        json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": kind,
               "metadata": {"name": name, "namespace": SITE, "resourceVersion": "1", "generation": 1},
               "spec": spec})
    };
    let mut signed = Vec::with_capacity(runbooks.len());
    for (name, check, remediate) in runbooks {
        let mut spec: RunbookSpec = serde_json::from_value(json!({
            "platform": "appliance", "severity": "high",
            "check": {"interpreter": "sh", "script": check},
            "remediate": {"interpreter": "sh", "script": remediate}
        }))
        .map_err(|error| unexpected(format!("the benchmark's runbook {name}: {error}")))?;
        sign_runbook(&mut spec, &runbook_key);
        let spec = serde_json::to_value(&spec).expect("a runbook serializes");
        signed.push(object("Runbook", name, spec));
    }
    let host_objects = hosts
        .iter()
        .map(|name| {
            object(
                "Host",
                name,
                json!({"platform": "appliance", "transport": {"type": "local"}}),
            )
        })
        .collect();
    let source = ScriptedSource::default();
    for (kind, items) in [
        (Kind::Site, vec![object("Site", SITE, site_spec)]),
        (Kind::Host, host_objects),
        (Kind::Credential, vec![]),
        (Kind::Appliance, vec![]),
        (Kind::Runbook, signed),
    ] {
        source.answer(kind, Scripted::List(items, "1".into()));
    }
    std::fs::create_dir_all(dir)
        .map_err(|error| unexpected(format!("cannot create {}: {error}", dir.display())))?;
    let outbox = SqliteOutbox::open(&dir.join("outbox.sqlite3"))
        .await
        .map_err(|error| unexpected(format!("the outbox: {error}")))?;
    let settings = LoopSettings {
        site: SITE.into(),
        appliance: "bench-box".into(),
        local: Local {
            allow_disruptive_outside_window: true,
            ntp_max_skew: Duration::from_secs(10),
            cache_max_age: Duration::from_secs(24 * 3600),
            allowed_hosts: vec![],
            trusted_keys: vec![runbook_key.public_key()],
        },
        context: Context {
            site: SITE.into(),
            deployment_mode: DeploymentMode::Direct,
            reseller_id: None,
            nixos_revision: "bench".into(),
        },
        retention: Retention::default(),
        resync: Duration::from_secs(3600),
        rmm_webhook_url: None,
        syslog_target: None,
        workers: osc_controller::run::WORKERS,
        heartbeat: osc_controller::run::HEARTBEAT,
        backoff: Backoff::default(),
    };
    let services = Services {
        central: Recorder::default(),
        source,
        pull: MapPull::default(),
        transports,
        ntp: FixedNtp(Some(0)),
    };
    Controller::new(
        settings,
        services,
        outbox,
        Signer::from_seed(&[62; 32]),
        dir.join("cache/desired-v1.json"),
    )
    .await
    .map_err(|error| unexpected(format!("the controller does not start: {error}")))
}

/// This process's VmRSS in KiB.
fn rss_kib() -> Result<u64, BenchError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|error| unexpected(format!("cannot read /proc/self/status: {error}")))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| unexpected("/proc/self/status has no VmRSS line in kB".to_owned()))
}

/// This process's CPU time (utime + stime of `/proc/self/stat`).
fn cpu_time() -> Result<Duration, BenchError> {
    /// `/proc` counts in USER_HZ, which Linux fixes at 100 for user space.
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|error| unexpected(format!("cannot read /proc/self/stat: {error}")))?;
    // The command name (field 2) may hold spaces: count the fields after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15, i.e. the 12th and 13th after the name.
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(utime), Some(stime)) => Ok(Duration::from_millis((utime + stime) * 1000 / USER_HZ)),
        _ => Err(unexpected(format!(
            "/proc/self/stat has no utime and stime: {stat}"
        ))),
    }
}

/// `cpu` over `wall` as % of one core.
fn percent_of_core(cpu: Duration, wall: Duration) -> f64 {
    cpu.as_secs_f64() / wall.as_secs_f64().max(f64::MIN_POSITIVE) * 100.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The load phase: every item checked at once by [`Instant`], over `settings.load_time`.
async fn load_phase(settings: &Settings, dir: &Path) -> Result<Load, BenchError> {
    let hosts: Vec<String> = (0..settings.hosts)
        .map(|i| format!("host-{i:03}"))
        .collect();
    let runbooks: Vec<(String, String, String)> = (0..settings.runbooks)
        .map(|i| {
            (
                format!("runbook-{i:02}"),
                format!("check {i}"),
                format!("fix {i}"),
            )
        })
        .collect();
    let names: Vec<&str> = runbooks.iter().map(|(name, _, _)| name.as_str()).collect();
    let site = json!({"displayName": "Bench", "partner": "bench", "frameworks": ["HIPAA"],
                      "healing": {"mode": "enforce"},
                      "runbooks": [{"names": names}]});
    let items = settings.hosts * settings.runbooks;
    let rss_start = rss_kib()?;
    let controller = controller(dir, Instant::default(), site, &hosts, &runbooks).await?;
    let cpu_start = cpu_time()?;
    let started = Clock::now();
    let mut peak = rss_start;
    let mut first_pass: Option<(Duration, Duration)> = None;
    let running = controller.run(std::future::pending());
    let measuring = async {
        while started.elapsed() < settings.load_time {
            tokio::time::sleep(RSS_EVERY).await;
            peak = peak.max(rss_kib()?);
            if first_pass.is_none()
                && controller
                    .services()
                    .central
                    .patches
                    .load(Ordering::Relaxed)
                    >= settings.hosts
                && controller
                    .services()
                    .transports
                    .steps
                    .load(Ordering::Relaxed)
                    >= items
            {
                first_pass = Some((started.elapsed(), cpu_time()?));
            }
        }
        Ok::<_, BenchError>(())
    };
    tokio::select! {
        ended = running => return Err(unexpected(format!("the controller stopped: {ended:?}"))),
        measured = measuring => measured?,
    }
    let wall = started.elapsed();
    let cpu = cpu_time()?;
    let rss_end = rss_kib()?;
    let steps = controller
        .services()
        .transports
        .steps
        .load(Ordering::Relaxed);
    if steps < items {
        return Err(unexpected(format!(
            "only {steps} of {items} items were checked in {} s",
            wall.as_secs_f64()
        )));
    }
    let (first_wall, first_cpu) = first_pass.unwrap_or((wall, cpu));
    let central = &controller.services().central;
    Ok(Load {
        hosts: settings.hosts,
        runbooks: settings.runbooks,
        seconds: wall.as_secs_f64(),
        steps,
        patches: central.patches.load(Ordering::Relaxed),
        evidence: central.evidence.load(Ordering::Relaxed),
        first_pass_secs: first_wall.as_secs_f64(),
        first_pass_cpu_percent: percent_of_core(first_cpu - cpu_start, first_wall),
        steady_cpu_percent: percent_of_core(cpu - first_cpu, wall.saturating_sub(first_wall)),
        rss_start_mib: mib(rss_start),
        rss_peak_mib: mib(peak.max(rss_end)),
        rss_end_mib: mib(rss_end),
    })
}

/// The drift phase: a real file checked and healed by real scripts on the local transport.
async fn drift_phase(settings: &Settings, dir: &Path) -> Result<Latency, BenchError> {
    std::fs::create_dir_all(dir)
        .map_err(|error| unexpected(format!("cannot create {}: {error}", dir.display())))?;
    let file = dir.join("marker");
    let path = file.display().to_string();
    let runbooks = [(
        "marker".to_owned(),
        format!("test \"$(cat '{path}' 2>/dev/null)\" = good"),
        format!("echo good > '{path}'"),
    )];
    let interval = format!("{}ms", settings.drift_interval.as_millis());
    // Heals a few seconds apart are the drift, not flapping: a short flap window.
    let site = json!({"displayName": "Bench", "partner": "bench", "frameworks": ["HIPAA"],
                      "healing": {"mode": "enforce", "flapWindow": "100ms"},
                      "runbooks": [{"names": ["marker"], "interval": interval}]});
    let controller = controller(dir, LocalExecutor, site, &["box".to_owned()], &runbooks).await?;
    let recorder = &controller.services().central;
    let samples = Mutex::new(Vec::with_capacity(settings.drifts));
    let running = controller.run(std::future::pending());
    let measuring = async {
        // The file is missing at the start: the first heal.
        wait_for_heal(recorder, 0).await?;
        for drift in 0..settings.drifts {
            // A varying phase against the interval: up to one interval past the check.
            let phase = settings
                .drift_interval
                .mul_f64(((drift * 37) % 100) as f64 / 100.0);
            tokio::time::sleep(settings.drift_interval + phase).await;
            let heals = recorder.heals.load(Ordering::SeqCst);
            let injected = Clock::now();
            std::fs::write(&file, "tampered\n")
                .map_err(|error| unexpected(format!("cannot drift {path}: {error}")))?;
            wait_for_heal(recorder, heals).await?;
            lock(&samples).push(injected.elapsed());
            let content = std::fs::read_to_string(&file).unwrap_or_default();
            if content != "good\n" {
                return Err(unexpected(format!(
                    "{path} holds {content:?} after the heal"
                )));
            }
        }
        Ok::<_, BenchError>(())
    };
    tokio::select! {
        ended = running => return Err(unexpected(format!("the controller stopped: {ended:?}"))),
        measured = measuring => measured?,
    }
    let mut samples = samples.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Latency::of(&mut samples))
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until central has recorded more than `seen` heals, at most a minute.
async fn wait_for_heal(recorder: &Recorder, seen: usize) -> Result<(), BenchError> {
    let waiting = async {
        loop {
            let notified = recorder.healed.notified();
            if recorder.heals.load(Ordering::SeqCst) > seen {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .map_err(|_| unexpected("no heal was recorded within 60 s of the drift".to_owned()))
}

impl Report {
    /// The report as an aligned table, then the load phase's figures beside the aims.
    pub fn table(&self) -> String {
        let rows = vec![
            header_row(),
            latency_row(
                &format!("drift to heal, interval {} s", self.drift_interval_secs),
                &self.drift_to_heal,
                None,
            ),
        ];
        let mut out = aligned(
            &format!(
                "controller-bench ({} CPUs, {} GiB, {}), controller in-process, local transport",
                self.machine.cpus, self.machine.memory_gib, self.machine.cpu_model
            ),
            rows,
        );
        let load = &self.load;
        out.push_str(&format!(
            "drift to heal at the default interval ({:.0} s): the next check, up to one interval \
             later, plus the heal above\n\
             {} hosts x {} runbooks, {:.0} s: {} steps, {} status patches, {} evidence\n\
             first pass over every item: {:.1} s at {:.1}% of one core\n\
             steady state: {:.2}% of one core (aim < 2%)\n\
             RSS of the process: {:.1} MiB before, {:.1} MiB peak, {:.1} MiB at the end (aim < 30 MB)\n",
            self.default_interval_secs,
            load.hosts,
            load.runbooks,
            load.seconds,
            load.steps,
            load.patches,
            load.evidence,
            load.first_pass_secs,
            load.first_pass_cpu_percent,
            load.steady_cpu_percent,
            load.rss_start_mib,
            load.rss_peak_mib,
            load.rss_end_mib,
        ));
        out
    }
}
