//! The API load benchmark behind `api-bench`: a real Central Command started in-process on
//! 127.0.0.1 (plain HTTP, so that it measures the API rather than TLS), driven over real HTTP,
//! next to a bare axum handler doing the same database write (the limit).
//!
//! Phases, in order, on one fresh database per server:
//! 1. one client: GET of one object, then PUT (update) of it, one request at a time;
//! 2. many clients (100) updating their own objects at once, then all updating one object
//!    (read, change, write; on 409 Conflict back off and again), then the same own-object load on the bare handler;
//! 3. many clients creating the list phase's objects (10,000), then LIST of all of them in one
//!    response and page by page (`limit=500` and `continue`);
//! 4. many open watches (1,000), then writes one at a time: the time from each write's answer
//!    until the last watcher has its event.
//!
//! Client and server share the machine's cores, as they do when both run on one host; the
//! figures are therefore a floor of what the server does on its own.

mod error;
mod fanout;
pub(crate) mod load;
pub(crate) mod report;
pub(crate) mod target;

pub use error::BenchError;
pub use report::{Contention, Fanout, Latency, List, Machine, PagedList, Report, Throughput};
pub use target::BARE_HANDLER;

use load::{Api, Writer, host, hosts_of, site};
use target::{Bare, Central, Database};

/// The namespace (Site) of the objects that are read and updated.
const WORK_SITE: &str = "bench";
/// The namespace (Site) of the objects that are listed.
const FLEET_SITE: &str = "fleet";

/// Which database the servers store in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (WAL) in a scratch folder of the system's temporary folder.
    Sqlite,
    /// A database created for the run on this PostgreSQL server, dropped after.
    Postgres {
        /// A URL of the server whose role may create databases.
        admin_url: String,
    },
}

/// How much load each phase makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the servers store.
    pub backend: Backend,
    /// Timed requests of each one-client phase (GET, PUT).
    pub samples: usize,
    /// Clients sending at once in the throughput phases.
    pub clients: usize,
    /// Timed updates each client makes on its own object.
    pub updates_per_client: usize,
    /// Timed updates each client makes on the one object all of them update.
    pub contended_per_client: usize,
    /// Objects in the listed collection (rounded up to a multiple of `clients`).
    pub list_objects: usize,
    /// `limit` of the paged list.
    pub page_size: u64,
    /// How often each list is timed.
    pub list_repeats: usize,
    /// Open watches in the fan-out phase.
    pub watchers: usize,
    /// Writes timed in the fan-out phase.
    pub fanout_writes: usize,
}

impl Settings {
    /// The figures the README reports: 100 clients, 10,000 objects, 1,000 watchers.
    pub fn full(backend: Backend) -> Self {
        Self {
            backend,
            samples: 2_000,
            clients: 100,
            updates_per_client: 100,
            contended_per_client: 10,
            list_objects: 10_000,
            page_size: 500,
            list_repeats: 20,
            watchers: 1_000,
            fanout_writes: 100,
        }
    }

    /// Small counts that still run every phase, for a smoke test of the benchmark itself.
    pub fn quick(backend: Backend) -> Self {
        Self {
            backend,
            samples: 20,
            clients: 4,
            updates_per_client: 5,
            contended_per_client: 2,
            list_objects: 40,
            page_size: 15,
            list_repeats: 2,
            watchers: 8,
            fanout_writes: 3,
        }
    }
}

/// Prints a benchmark's `report` on standard output: as JSON when `json` (machine output), else
/// as the aligned table `table` makes of it.
pub fn print_report<R: serde::Serialize>(
    report: &R,
    json: bool,
    table: impl FnOnce(&R) -> String,
) -> serde_json::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", table(report));
    }
    Ok(())
}

/// The flags every benchmark binary takes.
#[derive(Debug, clap::Args)]
pub struct RunFlags {
    /// The database the servers store in.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: BackendFlag,

    /// With `--backend postgres`: a server and a role that may create databases; the run creates
    /// its own databases there and drops them after.
    #[arg(
        long,
        env = "OSC_TEST_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Small counts, for checking that the benchmark works rather than for figures.
    #[arg(long)]
    pub quick: bool,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl RunFlags {
    /// The backend `--backend` and `--database-url` name.
    pub fn backend(&self) -> Result<Backend, BenchError> {
        Backend::from_flags(self.backend, self.database_url.clone())
    }
}

/// The `--backend` values of the benchmark binaries.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BackendFlag {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server (`--database-url`).
    Postgres,
}

impl Backend {
    /// The backend a binary's `--backend` and `--database-url` name.
    pub fn from_flags(flag: BackendFlag, database_url: Option<String>) -> Result<Self, BenchError> {
        Ok(match flag {
            BackendFlag::Sqlite => Self::Sqlite,
            BackendFlag::Postgres => Self::Postgres {
                admin_url: database_url.ok_or_else(|| BenchError::Unexpected {
                    what: "--backend postgres needs --database-url (or OSC_TEST_DATABASE_URL), \
                           e.g. postgres://postgres:osc-test@127.0.0.1:5432/postgres"
                        .to_owned(),
                })?,
            },
        })
    }

    /// `sqlite` or `postgres`, as the flag and the report spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// Runs every phase and returns the figures; `progress` gets a line at each phase. The
/// databases are removed afterwards, whether the run succeeded or not.
pub async fn run(settings: &Settings, progress: &dyn Fn(&str)) -> Result<Report, BenchError> {
    let api_database = Database::create(&settings.backend).await?;
    let bare_database = Database::create(&settings.backend).await?;
    let result = measure(settings, &api_database, &bare_database, progress).await;
    let removed = (api_database.remove().await, bare_database.remove().await);
    let report = result?;
    removed.0?;
    removed.1?;
    Ok(report)
}

/// The phases, with the servers started and stopped around them.
async fn measure(
    settings: &Settings,
    api_database: &Database,
    bare_database: &Database,
    progress: &dyn Fn(&str),
) -> Result<Report, BenchError> {
    let central = Central::start(api_database).await?;
    let api = Api::new(&central.base, Some(&central.token));
    let figures = api_phases(settings, &api, bare_database, progress).await;
    central.stop().await?;
    figures
}

/// Every phase; the bare handler's runs in the middle, on its own server and database.
async fn api_phases(
    settings: &Settings,
    api: &Api,
    bare_database: &Database,
    progress: &dyn Fn(&str),
) -> Result<Report, BenchError> {
    let clients = settings.clients;
    let per_client = settings.updates_per_client;
    progress(&format!(
        "setting up: Site {WORK_SITE} and {} Hosts",
        clients + 2
    ));
    let work = hosts_of(WORK_SITE);
    api.create(&format!("{}/sites", load::GROUP_VERSION), &site(WORK_SITE))
        .await?;
    let mut writers = Vec::with_capacity(clients + 2);
    for index in 0..clients + 2 {
        let name = format!("host-{index:04}");
        let created = api.create(&work, &host(WORK_SITE, &name)).await?;
        writers.push(Writer::new(
            format!("{work}/{name}"),
            created,
            format!("w{index}"),
        ));
    }
    let fanout_writer = writers.pop().expect("clients + 2 writers");
    let single = writers.pop().expect("clients + 1 writers");

    progress(&format!(
        "GET and PUT of one object, {} of each",
        settings.samples
    ));
    let path = single.path.clone();
    let (get, ()) = load::sequential((), settings.samples, |()| async {
        api.get(&path).await.map(drop)
    })
    .await?;
    let (update, single) =
        load::sequential(single, settings.samples, |writer| api.update(writer)).await?;

    progress(&format!(
        "{} updates by {clients} clients on their own objects",
        clients * per_client
    ));
    let bare_objects: Vec<_> = writers.iter().map(|writer| writer.object.clone()).collect();
    let updates_own_objects = {
        let api = api.clone();
        load::concurrent(writers, per_client, move |writer| {
            let api = api.clone();
            async move { api.update(writer).await }
        })
        .await?
        .0
    };

    progress(&format!(
        "{} updates by {clients} clients on one object",
        clients * settings.contended_per_client
    ));
    let updates_one_object =
        load::contended_updates(api, &single.path, clients, settings.contended_per_client).await?;

    progress(&format!(
        "{} updates by {clients} clients on the bare handler",
        clients * per_client
    ));
    let bare_updates = bare_phase(bare_database, bare_objects, per_client).await?;

    let fleet = hosts_of(FLEET_SITE);
    let per_creator = settings.list_objects.div_ceil(clients);
    let list_objects = per_creator * clients;
    progress(&format!(
        "creating {list_objects} Hosts with {clients} clients"
    ));
    api.create(&format!("{}/sites", load::GROUP_VERSION), &site(FLEET_SITE))
        .await?;
    let creators = (0..clients).map(|client| (client, 0_usize)).collect();
    let creates = {
        let api = api.clone();
        let fleet = fleet.clone();
        // One untimed create per client warms its connection, so each makes one more.
        load::concurrent(creators, per_creator - 1, move |(client, made)| {
            let api = api.clone();
            let fleet = fleet.clone();
            async move {
                let name = format!("host-{client:03}-{made:05}");
                api.create(&fleet, &host(FLEET_SITE, &name)).await?;
                Ok((client, made + 1))
            }
        })
        .await?
        .0
    };

    progress(&format!(
        "LIST of {list_objects} Hosts, {} times whole and {} times in pages of {}",
        settings.list_repeats, settings.list_repeats, settings.page_size
    ));
    let list_all = load::list_all(api, &fleet, list_objects, settings.list_repeats).await?;
    let list_paged = load::list_paged(
        api,
        &fleet,
        list_objects,
        settings.page_size,
        settings.list_repeats,
    )
    .await?;

    progress(&format!(
        "opening {} watches, then {} writes",
        settings.watchers, settings.fanout_writes
    ));
    let fanout = fanout::fanout(
        api,
        &work,
        fanout_writer,
        settings.watchers,
        settings.fanout_writes,
        progress,
    )
    .await?;

    Ok(Report {
        backend: settings.backend.name().to_owned(),
        machine: Machine::this(),
        bare_handler: BARE_HANDLER.to_owned(),
        api_to_bare: ratio(updates_own_objects.per_second, bare_updates.per_second),
        get,
        update,
        updates_own_objects,
        updates_one_object,
        bare_updates,
        creates,
        list_all,
        list_paged,
        fanout,
    })
}

/// The bare handler's updates: the same clients, each on a copy of the object it updated
/// through the API (same bytes, so the same write).
async fn bare_phase(
    database: &Database,
    objects: Vec<serde_json::Value>,
    per_client: usize,
) -> Result<Throughput, BenchError> {
    let bare = Bare::start(database).await?;
    let mut writers = Vec::with_capacity(objects.len());
    for (index, object) in objects.into_iter().enumerate() {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let key = osc_central::store::ObjectKey::namespaced("hosts", namespace, name);
        let stored = bare
            .store
            .create(&key, object.clone())
            .await
            .map_err(|source| BenchError::Store { source })?;
        writers.push(Writer::new(
            Bare::path(namespace, name),
            stored,
            format!("w{index}"),
        ));
    }
    let api = Api::new(&bare.base, None);
    let result = load::concurrent(writers, per_client, move |writer| {
        let api = api.clone();
        async move { api.update(writer).await }
    })
    .await;
    bare.stop().await?;
    Ok(result?.0)
}

/// `part / whole`, or 0 when `whole` is 0.
fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

impl Machine {
    /// This machine, from `std` and `/proc`.
    pub fn this() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: u64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or("unknown", |(_, model)| model.trim())
            .to_owned();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: (kib as f64 / (1024.0 * 1024.0)).round() as u64,
            cpu_model,
        }
    }
}
