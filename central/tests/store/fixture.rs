//! A throw-away database per test, on either backend, and small helpers that keep tests short.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use osc_central::store::{ObjectKey, Store, StoreOptions, WatchEvent, WatchStream};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The environment variable naming the PostgreSQL server the tests may create databases on.
const DATABASE_URL_VAR: &str = "OSC_TEST_DATABASE_URL";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database: a SQLite file in a temporary directory, or a PostgreSQL database created
/// for the test and dropped (with its connections) by [`TestDb::remove`] at the test's end.
pub struct TestDb {
    /// How stores reach the database.
    location: Location,
}

/// Where a test database lives.
enum Location {
    /// The SQLite file; the directory is deleted on drop.
    Sqlite { dir: tempfile::TempDir },
    /// The PostgreSQL database and how to reach it and the server.
    Postgres {
        admin_url: String,
        url: String,
        name: String,
    },
    /// Already removed by [`TestDb::remove`].
    Removed,
}

impl TestDb {
    /// A fresh, empty database.
    pub async fn new(kind: Kind) -> Self {
        let location = match kind {
            Kind::Sqlite => Location::Sqlite {
                dir: tempfile::tempdir().expect("a temporary directory"),
            },
            Kind::Postgres => {
                let admin_url = std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
                    panic!(
                        "{DATABASE_URL_VAR} is not set, so the PostgreSQL store tests cannot run. \
                         Start PostgreSQL and point it at a role that may create databases, e.g. \
                         {DATABASE_URL_VAR}=postgres://postgres:osc-test@127.0.0.1:5432/postgres \
                         (tests/run sets this up)."
                    )
                });
                let name = format!("osc_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|error| {
                        panic!("cannot connect with {DATABASE_URL_VAR}: {error}")
                    });
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .await
                    .expect("CREATE DATABASE for the test");
                let mut url = url::Url::parse(&admin_url).expect("a URL");
                url.set_path(&name);
                Location::Postgres {
                    admin_url,
                    url: url.into(),
                    name,
                }
            }
        };
        Self { location }
    }

    /// Opens a store on this database with options suited to tests.
    pub async fn open(&self) -> Store {
        self.open_with(options()).await
    }

    /// Opens a store on this database; another call gives another instance (a "replica").
    pub async fn open_with(&self, options: StoreOptions) -> Store {
        match &self.location {
            Location::Sqlite { dir } => {
                Store::open_sqlite(&dir.path().join("central.sqlite3"), options).await
            }
            Location::Postgres { url, .. } => Store::connect_postgres(url, options).await,
            Location::Removed => unreachable!("a removed database is not opened"),
        }
        .expect("the test store opens")
    }
}

impl TestDb {
    /// A plain connection to the test database, past the store: what a person with database
    /// access has, for tests of what the database itself enforces.
    pub async fn raw_connection(&self) -> sqlx::AnyConnection {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let url = match &self.location {
            Location::Sqlite { dir } => {
                format!("sqlite://{}", dir.path().join("central.sqlite3").display())
            }
            Location::Postgres { url, .. } => url.clone(),
            Location::Removed => unreachable!("a removed database is not opened"),
        };
        sqlx::AnyConnection::connect(&url)
            .await
            .expect("a raw connection to the test database")
    }
}

impl TestDb {
    /// Opens a store that reaches PostgreSQL through a relay which holds back every answer for
    /// as long as the returned [`Lateness`] says. While answers are late, each database round
    /// trip takes one poll of the future that waits for it, so that a test can stop an
    /// operation at a chosen await. On SQLite (no socket to slow down) it is
    /// [`TestDb::open_with`], and the lateness has no effect.
    pub async fn open_with_late_answers(&self, options: StoreOptions) -> (Store, Lateness) {
        let lateness = Lateness::default();
        let Location::Postgres { url, .. } = &self.location else {
            return (self.open_with(options).await, lateness);
        };
        let mut url = url::Url::parse(url).expect("a URL");
        let server = (
            url.host_str().expect("a host").to_owned(),
            url.port().unwrap_or(5432),
        );
        let relay = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a relay port");
        url.set_port(Some(
            relay.local_addr().expect("the relay's address").port(),
        ))
        .expect("a URL with a host takes a port");
        tokio::spawn(relay_late(relay, server, lateness.clone()));
        let store = Store::connect_postgres(url.as_str(), options)
            .await
            .expect("the test store opens through the relay");
        (store, lateness)
    }

    /// Drops the PostgreSQL database while the test's runtime still runs, so that connections
    /// the stores were still opening can finish and be terminated. (The `Drop` fallback blocks
    /// the runtime's thread; a connection caught mid-handshake then holds `DROP DATABASE` up
    /// until the server's authentication timeout.)
    pub async fn remove(mut self) {
        if let Location::Postgres {
            admin_url, name, ..
        } = &self.location
        {
            drop_database(admin_url, name)
                .await
                .expect("the test database is dropped");
        }
        self.location = Location::Removed;
    }
}

/// A fallback for a test that panicked before [`TestDb::remove`].
impl Drop for TestDb {
    fn drop(&mut self) {
        let Location::Postgres {
            admin_url, name, ..
        } = &self.location
        else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot block on a future: use another thread.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(drop_database(&admin_url, &name))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop the test database: {dropped:?}");
        }
    }
}

/// How late a relay from [`TestDb::open_with_late_answers`] delivers the database's answers;
/// clones share the setting. Answers are on time until [`Lateness::set`].
#[derive(Clone, Default)]
pub struct Lateness {
    /// The delay in microseconds.
    micros: Arc<AtomicU64>,
}

impl Lateness {
    /// Holds back each answer that arrives from now on for `delay`.
    pub fn set(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.micros.store(micros, Ordering::Relaxed);
    }

    /// The current delay.
    fn get(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

/// Relays every connection accepted on `relay` to `server`, holding back each chunk of the
/// server's answers for as long as `lateness` says. Runs until the test's runtime ends.
async fn relay_late(relay: TcpListener, server: (String, u16), lateness: Lateness) {
    while let Ok((client, _)) = relay.accept().await {
        let (server, lateness) = (server.clone(), lateness.clone());
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(server).await else {
                return;
            };
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            let requests = tokio::io::copy(&mut from_client, &mut to_server);
            let answers = async {
                let mut buffer = vec![0; 64 * 1024];
                loop {
                    let read = from_server.read(&mut buffer).await?;
                    if read == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    let delay = lateness.get();
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    to_client.write_all(&buffer[..read]).await?;
                }
            };
            // Either side closing or failing ends the relayed connection.
            tokio::select! {
                _ = requests => {}
                _ = answers => {}
            }
        });
    }
}

/// Drops a test database, disconnecting whoever is still connected to it.
async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(admin_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await
        .map(drop)
}

/// Store options for tests. PostgreSQL's fallback poll is set far beyond any test's length, so
/// that every live event a PostgreSQL test sees was delivered by LISTEN/NOTIFY.
pub fn options() -> StoreOptions {
    StoreOptions {
        max_connections: 4,
        poll_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

/// The key of a host.
pub fn host_key(site: &str, name: &str) -> ObjectKey {
    ObjectKey::namespaced("hosts", site, name)
}

/// A minimal host object for `key`, carrying `value` in its spec.
pub fn host(key: &ObjectKey, value: i64) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Host",
        "metadata": {"name": key.name, "namespace": key.namespace},
        "spec": {"value": value},
    })
}

/// The `spec.value` of an object made by [`host`].
pub fn value_of(object: &Value) -> i64 {
    object["spec"]["value"].as_i64().expect("spec.value")
}

/// The resourceVersion the store stamped into an object.
pub fn rv(object: &Value) -> i64 {
    osc_central::store::resource_version_of(object).expect("metadata.resourceVersion")
}

/// The next event of a watch; fails the test if none comes within a generous time.
pub async fn next_event(stream: &mut WatchStream) -> Arc<WatchEvent> {
    tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("a watch event within 30 s")
        .expect("the watch stream has not ended")
        .expect("the watch event is not an error")
}

/// The next `count` events of a watch.
pub async fn next_events(stream: &mut WatchStream, count: usize) -> Vec<Arc<WatchEvent>> {
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        events.push(next_event(stream).await);
    }
    events
}
