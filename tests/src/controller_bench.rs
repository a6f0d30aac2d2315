//! The controller benchmark behind `controller-bench`: how fast the controller heals drift, and
//! what it costs in memory and CPU with a fleet of 100 hosts x 20 runbooks.
//!
//! Phases, in order:
//! 1. **fleet**: the `osc-controller` binary, enrolled (`osc_controller::enroll`) with a real
//!    Central Command (in this process, TLS with its own CA, SQLite: [`Central`]), runs as a
//!    child process and reconciles `hosts` Hosts x `runbooks` Runbooks at central's default
//!    interval. Every Host is reached over SSH at one real test host ([`TestHost`]: Debian's
//!    sshd in its own namespaces), each with its own session, as a fleet would be. One runbook
//!    (`marker`) checks a file of each Host's own on the test host; the others exit 0 at once.
//!    The scripts run in the test host's sshd, so the controller's figures exclude them: VmHWM
//!    and VmRSS of `/proc/<pid>/status`, and CPU time (utime + stime of `/proc/<pid>/stat`,
//!    children not counted) of the controller's process alone. CPU is reported for the first
//!    pass over every item (until central shows each checked) and for the steady state after
//!    it, until central shows every item checked again (one interval later). From the start,
//!    drift is injected into one Host's file at a time, spread evenly over one interval, and
//!    the time to the heal is measured: from changing the file to central's Host status showing
//!    a new `lastHealed` (central is polled every [`POLL_EVERY`]).
//! 2. **drift at 1 s**: central refuses runbook intervals under one minute (`crds` validation
//!    at admission), so this phase runs the controller's run loop in this process
//!    (`osc_controller::run::Controller::run`, a real SQLite outbox and evidence chain) on a
//!    desired state from a [`ScriptedSource`] whose Site carries the 1 s interval; central is the
//!    [`Recorder`], which stamps each Host status patch recording a heal. One host on the `local`
//!    transport, one runbook whose real `sh` scripts check and heal a file; drift is injected on
//!    a timer at a varying phase against the interval.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use osc_controller::central::{Answer, Central as CentralApi, StatusPatch};
use osc_controller::config::{Retention, SecretString};
use osc_controller::credentials::MapPull;
use osc_controller::enroll::{Enrollment, enroll};
use osc_controller::evidence::Context;
use osc_controller::exec::LocalExecutor;
use osc_controller::ntp::FixedNtp;
use osc_controller::outbox::SqliteOutbox;
use osc_controller::plan::Local;
use osc_controller::queue::Backoff;
use osc_controller::run::{Controller, Services, Settings as LoopSettings};
use osc_controller::sync::{Scripted, ScriptedSource};
use osc_controller::trust::sign_runbook;
use osc_crds::kinds::site::DeploymentMode;
use osc_crds::kinds::{Kind, RunbookSpec};
use osc_proto::auth::{EnrollRequest, EnrollResponse};
use osc_proto::dsse::Signer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::bench::BenchError;
use crate::bench::report::{Latency, Machine, aligned, header_row, latency_row};
use crate::central::Central;
use crate::host::TestHost;

/// The site of both phases.
const SITE: &str = "bench";

/// The resource API's prefix.
const API: &str = "/apis/osiriscare.net/v1alpha1";

/// Where the fleet's marker files are on the test host, one per Host.
const MARKERS: &str = "/etc/osc-bench";

/// How often the fleet phase reads central's Hosts and the controller's `/proc` entries.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How much each phase does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Hosts of the fleet phase.
    pub hosts: usize,
    /// Runbooks on each of them (one `marker`, the rest exit 0).
    pub runbooks: usize,
    /// The fleet's runbook interval: central's default, or its minimum (1 min) for a quick run.
    pub fleet_interval: Duration,
    /// Drifts injected in the fleet phase, spread evenly over one interval (at most `hosts`).
    pub fleet_drifts: usize,
    /// Drifts injected and healed in the 1 s phase.
    pub drifts: usize,
    /// The 1 s phase's runbook interval.
    pub drift_interval: Duration,
}

impl Settings {
    /// The figures the README reports: about 17 minutes, most of it one default interval.
    pub fn full() -> Self {
        Self {
            hosts: 100,
            runbooks: 20,
            fleet_interval: osc_crds::defaults::CHECK_INTERVAL,
            fleet_drifts: 20,
            drifts: 100,
            drift_interval: Duration::from_secs(1),
        }
    }

    /// Small counts that run every phase in about 80 s, for a smoke test of the benchmark.
    pub fn quick() -> Self {
        Self {
            hosts: 3,
            runbooks: 3,
            fleet_interval: Duration::from_secs(60),
            fleet_drifts: 2,
            drifts: 3,
            drift_interval: Duration::from_secs(1),
        }
    }
}

/// Every figure of one run. Serialized by `controller-bench --json` (and read back by its test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The machine the run was on.
    pub machine: Machine,
    /// The fleet phase: the `osc-controller` process with a real central and SSH.
    pub fleet: Fleet,
    /// The 1 s phase: from injecting drift to the heal's status patch reaching central.
    pub drift_to_heal: Latency,
    /// Its runbook interval, in seconds.
    pub drift_interval_secs: f64,
}

/// What the fleet phase measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    /// Hosts.
    pub hosts: usize,
    /// Runbooks per host.
    pub runbooks: usize,
    /// The runbook interval, in seconds.
    pub interval_secs: f64,
    /// Whether that is central's default interval (the Site names none).
    pub default_interval: bool,
    /// Seconds from starting the controller until central showed every item checked.
    pub first_pass_secs: f64,
    /// CPU of the controller over the first pass, % of one core.
    pub first_pass_cpu_percent: f64,
    /// Seconds from the first pass until every item was checked again (the steady window).
    pub steady_secs: f64,
    /// Items central showed checked again within the steady window (every item, or the run
    /// fails).
    pub rechecked: usize,
    /// CPU of the controller over the steady window, % of one core.
    pub steady_cpu_percent: f64,
    /// The controller's highest RSS (VmHWM), MiB.
    pub rss_peak_mib: f64,
    /// Its RSS at the end, MiB.
    pub rss_end_mib: f64,
    /// From changing a Host's file to central showing its heal.
    pub drift_to_heal: Latency,
}

/// Runs both phases; `controller` is the `osc-controller` binary; `progress` gets a line at
/// each step.
pub async fn run(
    settings: &Settings,
    controller: &Path,
    progress: &dyn Fn(&str),
) -> Result<Report, BenchError> {
    let dir = tempfile::tempdir().map_err(|error| unexpected(format!("no temp dir: {error}")))?;
    let fleet = fleet_phase(settings, controller, &dir.path().join("fleet"), progress).await?;
    progress(&format!(
        "drift at {} s: {} drifts of a local file, controller in this process",
        settings.drift_interval.as_secs_f64(),
        settings.drifts,
    ));
    let drift_to_heal = drift_phase(settings, &dir.path().join("drift")).await?;
    Ok(Report {
        machine: Machine::this(),
        fleet,
        drift_to_heal,
        drift_interval_secs: settings.drift_interval.as_secs_f64(),
    })
}

fn unexpected(what: String) -> BenchError {
    BenchError::Unexpected { what }
}

/// The `osc-controller` binary beside `exe` (in the same target folder, or the one above
/// `deps/`), where `cargo build -p osc-controller` puts it.
pub fn controller_beside(exe: &Path) -> Result<PathBuf, BenchError> {
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("osc-controller"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            unexpected(format!(
                "no osc-controller binary beside {}: build it with the same profile first \
                 (cargo build --release -p osc-controller), or name it with --controller",
                exe.display()
            ))
        })
}

/// How long the first pass over the fleet may take before the run is called failed.
const FIRST_PASS_LIMIT: Duration = Duration::from_secs(600);

/// What central shows of one item (a Host's result for one runbook).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Seen {
    /// `lastChecked`.
    checked: Option<DateTime<Utc>>,
    /// `lastHealed`.
    healed: Option<DateTime<Utc>>,
}

/// One drift of the fleet phase: a Host's marker file changed at `due`.
#[derive(Debug)]
struct Drift {
    /// The Host whose file drifts.
    host: String,
    /// When to change it.
    due: Instant,
    /// When it was changed, and the item's `lastHealed` then.
    injected: Option<(Instant, Option<DateTime<Utc>>)>,
    /// From the change to central showing a new `lastHealed`.
    healed: Option<Duration>,
}

/// The fleet phase: the `osc-controller` binary, a real central, one real sshd.
async fn fleet_phase(
    settings: &Settings,
    binary: &Path,
    dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Fleet, BenchError> {
    progress("fleet: starting a test host (sshd in its own namespaces) and central");
    std::fs::create_dir_all(dir)
        .map_err(|error| unexpected(format!("cannot create {}: {error}", dir.display())))?;
    let host = TestHost::start().map_err(|error| unexpected(format!("the test host: {error}")))?;
    let central = Central::start().await;
    let names: Vec<String> = (0..settings.hosts).map(|i| format!("h{i:03}")).collect();
    on_host(
        &host,
        &format!(
            "mkdir -p {MARKERS} && cd {MARKERS} && for h in {}; do echo good > $h; done",
            names.join(" ")
        ),
    )?;
    let runbook_key = Signer::from_seed(&[63; 32]);
    seed(&central, settings, &names, &host, &runbook_key).await?;
    let config = enroll_controller(&central, dir, &host, &runbook_key).await?;
    let items = settings.hosts * settings.runbooks;
    progress(&format!(
        "fleet: {} hosts x {} runbooks over SSH, interval {} s; waiting for the first pass",
        settings.hosts,
        settings.runbooks,
        settings.fleet_interval.as_secs()
    ));
    let mut process = Process::spawn(binary, &config, dir)?;
    let started = Instant::now();
    process.wait_running()?;
    let pid = process.pid();

    // Drifts are spread over one interval from the start, independent of when items run, so
    // their waits for the next check sample every phase alike.
    let mut drifts = drift_schedule(settings, &names, started);
    let mut first: Option<(Instant, DateTime<Utc>, Duration)> = None;
    let limit = FIRST_PASS_LIMIT + settings.fleet_interval * 2;
    let mut reported = Duration::ZERO;
    let rechecked = loop {
        tokio::time::sleep(POLL_EVERY).await;
        process.check_alive()?;
        let seen = observe(&central).await?;
        for drift in &mut drifts {
            follow_drift(drift, &seen, &host)?;
        }
        let healed = drifts.iter().filter(|d| d.healed.is_some()).count();
        let elapsed = started.elapsed();
        if elapsed > limit {
            return Err(unexpected(format!(
                "after {} s: first pass {}, {healed} of {} drifts healed",
                elapsed.as_secs(),
                if first.is_some() { "done" } else { "not done" },
                drifts.len()
            )));
        }
        let Some((_, first_utc, _)) = first else {
            let checked = seen.values().filter(|s| s.checked.is_some()).count();
            if checked >= items {
                first = Some((Instant::now(), Utc::now(), proc_cpu(pid)?));
                progress(&format!(
                    "fleet: first pass in {:.1} s; then at least {} s until every item is \
                     checked again",
                    elapsed.as_secs_f64(),
                    settings.fleet_interval.as_secs(),
                ));
            } else if elapsed > FIRST_PASS_LIMIT {
                return Err(unexpected(format!(
                    "only {checked} of {items} items were checked in {} s",
                    FIRST_PASS_LIMIT.as_secs()
                )));
            }
            continue;
        };
        let rechecked = seen
            .values()
            .filter(|seen| seen.checked > Some(first_utc))
            .count();
        if elapsed >= settings.fleet_interval && rechecked >= items && healed == drifts.len() {
            break rechecked;
        }
        if elapsed >= reported + Duration::from_secs(60) {
            reported = elapsed;
            progress(&format!(
                "fleet: {} s, {rechecked}/{items} items checked again, {healed}/{} drifts healed",
                elapsed.as_secs(),
                drifts.len()
            ));
        }
    };
    let (window, _, first_cpu) = first.expect("the loop ends after the first pass");
    let first_wall = window - started;
    let steady = window.elapsed();
    let steady_cpu = proc_cpu(pid)?.saturating_sub(first_cpu);
    let rss_end = proc_kib(pid, "VmRSS")?;
    let rss_peak = proc_kib(pid, "VmHWM")?;
    process.stop()?;
    central.stop().await;
    let mut samples: Vec<Duration> = drifts.iter().filter_map(|d| d.healed).collect();
    Ok(Fleet {
        hosts: settings.hosts,
        runbooks: settings.runbooks,
        interval_secs: settings.fleet_interval.as_secs_f64(),
        default_interval: settings.fleet_interval == osc_crds::defaults::CHECK_INTERVAL,
        first_pass_secs: first_wall.as_secs_f64(),
        first_pass_cpu_percent: percent_of_core(first_cpu, first_wall),
        steady_secs: steady.as_secs_f64(),
        rechecked,
        steady_cpu_percent: percent_of_core(steady_cpu, steady),
        rss_peak_mib: mib(rss_peak),
        rss_end_mib: mib(rss_end),
        drift_to_heal: Latency::of(&mut samples),
    })
}

/// Injects `drift` once due, and stamps its heal once central shows a new `lastHealed` for the
/// Host's marker (whose file must then hold `good` again).
fn follow_drift(
    drift: &mut Drift,
    seen: &BTreeMap<(String, String), Seen>,
    host: &TestHost,
) -> Result<(), BenchError> {
    let healed_then = seen
        .get(&(drift.host.clone(), "marker".to_owned()))
        .and_then(|seen| seen.healed);
    match drift.injected {
        None if drift.due <= Instant::now() => {
            on_host(host, &format!("echo tampered > {MARKERS}/{}", drift.host))?;
            drift.injected = Some((Instant::now(), healed_then));
        }
        Some((at, before)) if drift.healed.is_none() && healed_then != before => {
            drift.healed = Some(at.elapsed());
            let content = on_host(host, &format!("cat {MARKERS}/{}", drift.host))?;
            if content != "good\n" {
                return Err(unexpected(format!(
                    "{} holds {content:?} after its heal",
                    drift.host
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// One drift per Host (at most one per Host, so heals do not mix), spread evenly over one
/// interval from `start`: every phase against the item's checks is sampled alike.
fn drift_schedule(settings: &Settings, names: &[String], start: Instant) -> Vec<Drift> {
    let count = settings.fleet_drifts.min(names.len());
    names
        .iter()
        .take(count)
        .enumerate()
        .map(|(k, host)| Drift {
            host: host.clone(),
            due: start
                + settings
                    .fleet_interval
                    .mul_f64((k as f64 + 0.5) / count as f64),
            injected: None,
            healed: None,
        })
        .collect()
}

/// Runs `command` on the test host (outside SSH: the harness's own way in); its stdout.
fn on_host(host: &TestHost, command: &str) -> Result<String, BenchError> {
    host.exec_ok(command)
        .map_err(|error| unexpected(format!("on the test host, {command}: {error}")))
}

/// Calls central as its admin; the JSON answer of a 2xx, else an error naming the call.
async fn send(
    central: &Central,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, BenchError> {
    let (status, answer) = central
        .call(&central.admin, method.clone(), path, body)
        .await;
    if (200..300).contains(&status) {
        Ok(answer)
    } else {
        Err(unexpected(format!("{method} {path}: {status} {answer}")))
    }
}

/// Creates an object in central.
async fn post(central: &Central, path: String, body: Value) -> Result<Value, BenchError> {
    send(central, reqwest::Method::POST, &path, Some(body)).await
}

/// Every item central shows on the site's Hosts, by (host, runbook).
async fn observe(central: &Central) -> Result<BTreeMap<(String, String), Seen>, BenchError> {
    let list = send(
        central,
        reqwest::Method::GET,
        &format!("{API}/namespaces/{SITE}/hosts"),
        None,
    )
    .await?;
    let time = |value: &Value| serde_json::from_value::<Option<DateTime<Utc>>>(value.clone());
    let mut seen = BTreeMap::new();
    for host in list["items"].as_array().into_iter().flatten() {
        let name = host["metadata"]["name"].as_str().unwrap_or_default();
        let results = host["status"]["results"].as_object().into_iter().flatten();
        for (runbook, result) in results {
            let item = Seen {
                checked: time(&result["lastChecked"])
                    .map_err(|error| unexpected(format!("{name}/{runbook}: {error}")))?,
                healed: time(&result["lastHealed"])
                    .map_err(|error| unexpected(format!("{name}/{runbook}: {error}")))?,
            };
            seen.insert((name.to_owned(), runbook.clone()), item);
        }
    }
    Ok(seen)
}

/// The fleet's desired state in central: the runbooks (signed with `key`), the Site selecting
/// them, one SSH key Credential and the Hosts, all at `host`'s address.
async fn seed(
    central: &Central,
    settings: &Settings,
    names: &[String],
    host: &TestHost,
    key: &Signer,
) -> Result<(), BenchError> {
    let noops: Vec<String> = (1..settings.runbooks)
        .map(|i| format!("noop-{i:02}"))
        .collect();
    let mut runbooks = vec![(
        "marker".to_owned(),
        bench_runbook(
            "the Host's marker file says good",
            json!({"MARKER": {"description": "the Host's file", "default": format!("{MARKERS}/none")}}),
            "test \"$(cat \"$MARKER\")\" = good",
            "echo good > \"$MARKER\"",
            key,
        )?,
    )];
    for name in &noops {
        let spec = bench_runbook("passes at once", json!({}), "exit 0", "exit 0", key)?;
        runbooks.push((name.clone(), spec));
    }
    for (name, spec) in runbooks {
        post(
            central,
            format!("{API}/runbooks"),
            json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Runbook",
                   "metadata": {"name": name}, "spec": spec}),
        )
        .await?;
    }
    // The default interval is what the Site gets when it names none.
    let interval = (settings.fleet_interval != osc_crds::defaults::CHECK_INTERVAL)
        .then(|| format!("{}s", settings.fleet_interval.as_secs()));
    let selection = |hosts: Option<String>, names: &[String], params: Value| {
        let mut selection = json!({"names": names, "params": params});
        if let Some(hosts) = hosts {
            selection["hosts"] = json!(hosts);
        }
        if let Some(interval) = &interval {
            selection["interval"] = json!(interval);
        }
        selection
    };
    let mut selections: Vec<Value> = names
        .iter()
        .map(|name| {
            selection(
                Some(format!("bench-host={name}")),
                &["marker".to_owned()],
                json!({"MARKER": format!("{MARKERS}/{name}")}),
            )
        })
        .collect();
    if !noops.is_empty() {
        selections.push(selection(None, &noops, json!({})));
    }
    post(
        central,
        format!("{API}/sites"),
        json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Site",
               "metadata": {"name": SITE},
               "spec": {"displayName": "Bench", "partner": "bench", "frameworks": ["HIPAA"],
                        "healing": {"mode": "enforce"}, "runbooks": selections}}),
    )
    .await?;
    let private_key = std::fs::read_to_string(host.client_key())
        .map_err(|error| unexpected(format!("the test host's client key: {error}")))?;
    post(
        central,
        format!("{API}/namespaces/{SITE}/credentials"),
        json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Credential",
               "metadata": {"name": "ssh", "namespace": SITE},
               "spec": {"type": "ssh-key", "username": host.user(),
                        "data": {"privateKey": private_key}}}),
    )
    .await?;
    for name in names {
        post(
            central,
            format!("{API}/namespaces/{SITE}/hosts"),
            json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
                   "metadata": {"name": name, "namespace": SITE, "labels": {"bench-host": name}},
                   "spec": {"platform": "linux", "address": host.address().to_string(),
                            "transport": {"type": "ssh", "port": host.port(),
                                          "credentialRef": "ssh"}}}),
        )
        .await?;
    }
    Ok(())
}

/// A Linux runbook's spec, signed with `key`.
fn bench_runbook(
    description: &str,
    params: Value,
    check: &str,
    remediate: &str,
    key: &Signer,
) -> Result<Value, BenchError> {
    let mut spec: RunbookSpec = serde_json::from_value(json!({
        "platform": "linux", "severity": "high", "description": description,
        "controls": [{"framework": "HIPAA", "id": "164.312(c)(1)"}],
        "params": params,
        "check": {"interpreter": "sh", "script": check},
        "remediate": {"interpreter": "sh", "script": remediate}
    }))
    .map_err(|error| unexpected(format!("the benchmark's runbook: {error}")))?;
    sign_runbook(&mut spec, key);
    serde_json::to_value(&spec).map_err(|error| unexpected(format!("a runbook: {error}")))
}

/// Enrolls an appliance of the site as `osc-controller enroll` does, then adds to the config
/// it wrote the runbook key to trust and the test host as the one allowed address.
async fn enroll_controller(
    central: &Central,
    dir: &Path,
    host: &TestHost,
    key: &Signer,
) -> Result<PathBuf, BenchError> {
    let config = dir.join("etc/controller.yaml");
    let enrollment = Enrollment {
        central: central
            .url
            .parse()
            .map_err(|error| unexpected(format!("central's URL: {error}")))?,
        token: SecretString::new(central.enrollment_token(SITE).await),
        ca_file: central.ca.clone(),
        appliance: "bench-box".into(),
        config: config.clone(),
        state_directory: dir.join("state"),
    };
    enroll(&enrollment)
        .await
        .map_err(|error| unexpected(format!("enrollment: {error}")))?;
    let mut text = std::fs::read_to_string(&config)
        .map_err(|error| unexpected(format!("the enrolled config: {error}")))?;
    text.push_str(&format!(
        "trustedRunbookKeys:\n  - keyid: \"{}\"\n    publicKey: \"{}\"\nallowedHosts: [\"{}\"]\n",
        key.keyid(),
        key.public_key().to_base64(),
        host.address()
    ));
    std::fs::write(&config, text)
        .map_err(|error| unexpected(format!("cannot write {}: {error}", config.display())))?;
    Ok(config)
}

/// The controller's process; killed when dropped, so that a failed run leaves none behind.
struct Process {
    child: Child,
    /// Its stdout and stderr.
    log: PathBuf,
}

impl Process {
    /// Starts `binary run --config <config>`, logging into `dir`, with a stand-in `chronyc`
    /// (the appliance's NTP source, absent here) first on its `PATH`.
    fn spawn(binary: &Path, config: &Path, dir: &Path) -> Result<Self, BenchError> {
        let io = |what: &str, error: std::io::Error| unexpected(format!("{what}: {error}"));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| io("the stand-in's folder", e))?;
        let chronyc = bin.join("chronyc");
        std::fs::write(
            &chronyc,
            "#!/bin/sh\n\
             echo 'A9FEA97B,127.0.0.1,3,1700000000.1,0.000200000,0,0,0,0,0,0,0,64,Normal'\n",
        )
        .map_err(|e| io("the stand-in chronyc", e))?;
        std::fs::set_permissions(
            &chronyc,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| io("the stand-in chronyc", e))?;
        let log = dir.join("controller.log");
        let file = std::fs::File::create(&log).map_err(|e| io("the controller's log", e))?;
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // setpriv: the controller dies with this process even when it is killed before Drop.
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--"])
            .arg(binary)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(
                file.try_clone()
                    .map_err(|e| io("the controller's log", e))?,
            )
            .stderr(file)
            .spawn()
            .map_err(|e| io(&format!("cannot start {}", binary.display()), e))?;
        Ok(Self { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of the controller's log, to explain a failure.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// An error if the controller has exited.
    fn check_alive(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(unexpected(format!(
                "the controller exited ({status}); its log ends:\n{}",
                self.log_tail()
            ))),
            Err(error) => Err(unexpected(format!(
                "cannot wait for the controller: {error}"
            ))),
        }
    }

    /// Waits until the controller logs that it runs (a minute at most).
    fn wait_running(&mut self) -> Result<(), BenchError> {
        for _ in 0..600 {
            self.check_alive()?;
            if std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .contains("controller running")
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(unexpected(format!(
            "the controller did not start within a minute; its log ends:\n{}",
            self.log_tail()
        )))
    }

    /// Stops the controller with SIGTERM, as systemd does, and waits for a clean exit.
    fn stop(mut self) -> Result<(), BenchError> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map_err(|error| unexpected(format!("cannot run kill: {error}")))?;
        if !status.success() {
            return Err(unexpected(format!("kill -TERM failed: {status}")));
        }
        for _ in 0..300 {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|error| unexpected(format!("cannot wait for the controller: {error}")))?
            {
                return if status.success() {
                    Ok(())
                } else {
                    Err(unexpected(format!(
                        "the controller ended with {status} on SIGTERM; its log ends:\n{}",
                        self.log_tail()
                    )))
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(unexpected(
            "the controller did not stop within 30 s of SIGTERM".to_owned(),
        ))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of process `pid` itself (utime + stime of `/proc/<pid>/stat`; children not counted).
fn proc_cpu(pid: u32) -> Result<Duration, BenchError> {
    /// `/proc` counts in USER_HZ, which Linux fixes at 100 for user space.
    const USER_HZ: u64 = 100;
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .map_err(|error| unexpected(format!("cannot read {path}: {error}")))?;
    // The command name (field 2) may hold spaces: count the fields after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15, i.e. the 12th and 13th after the name.
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(utime), Some(stime)) => Ok(Duration::from_millis((utime + stime) * 1000 / USER_HZ)),
        _ => Err(unexpected(format!("{path} has no utime and stime: {stat}"))),
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
fn proc_kib(pid: u32, field: &str) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|error| unexpected(format!("cannot read {path}: {error}")))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| unexpected(format!("{path} has no {field} line in kB")))
}

/// `cpu` over `wall` as % of one core.
fn percent_of_core(cpu: Duration, wall: Duration) -> f64 {
    cpu.as_secs_f64() / wall.as_secs_f64().max(f64::MIN_POSITIVE) * 100.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Central in memory for the 1 s phase: accepts every delivery and wakes whoever waits for a
/// Host result `healed`.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Host status patches that record a `healed` result.
    heals: AtomicUsize,
    /// Notified at each of those.
    healed: Notify,
}

impl CentralApi for Recorder {
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
        Answer::Accepted
    }

    async fn patch_status(&self, _site: &str, patch: &StatusPatch) -> Answer {
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

/// A controller in this process over the desired state `site_spec`, one Host `box` on the
/// local transport and `runbooks` (name and check/remediate scripts, signed here).
async fn in_process_controller(
    dir: &Path,
    site_spec: Value,
    runbooks: &[(String, String, String)],
) -> Result<Controller<Recorder, ScriptedSource, MapPull, LocalExecutor, FixedNtp>, BenchError> {
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
    let host = object(
        "Host",
        "box",
        json!({"platform": "appliance", "transport": {"type": "local"}}),
    );
    let source = ScriptedSource::default();
    for (kind, items) in [
        (Kind::Site, vec![object("Site", SITE, site_spec)]),
        (Kind::Host, vec![host]),
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
        transports: LocalExecutor,
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
    let controller = in_process_controller(dir, site, &runbooks).await?;
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
            let injected = Instant::now();
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
    /// The report as an aligned table, then the fleet's figures beside the aims.
    pub fn table(&self) -> String {
        let fleet = &self.fleet;
        let interval = if fleet.default_interval {
            format!("default interval ({:.0} s)", fleet.interval_secs)
        } else {
            format!("interval {:.0} s", fleet.interval_secs)
        };
        let rows = vec![
            header_row(),
            latency_row(
                &format!("drift to heal, {interval}, over SSH"),
                &fleet.drift_to_heal,
                None,
            ),
            latency_row(
                &format!(
                    "drift to heal, interval {} s, in-process",
                    self.drift_interval_secs
                ),
                &self.drift_to_heal,
                None,
            ),
        ];
        let mut out = aligned(
            &format!(
                "controller-bench ({} CPUs, {} GiB, {})",
                self.machine.cpus, self.machine.memory_gib, self.machine.cpu_model
            ),
            rows,
        );
        out.push_str(&format!(
            "osc-controller, {} hosts x {} runbooks over SSH at the {interval}:\n\
             first pass over every item: {:.1} s at {:.1}% of one core\n\
             steady state over {:.0} s ({} items checked again): {:.2}% of one core (aim < 2%)\n\
             RSS: {:.1} MiB peak, {:.1} MiB at the end (aim < 30 MB)\n",
            fleet.hosts,
            fleet.runbooks,
            fleet.first_pass_secs,
            fleet.first_pass_cpu_percent,
            fleet.steady_secs,
            fleet.rechecked,
            fleet.steady_cpu_percent,
            fleet.rss_peak_mib,
            fleet.rss_end_mib,
        ));
        out
    }
}
