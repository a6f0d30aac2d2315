//! What a run measures: Central Command served in-process by [`server::run`] over plain HTTP on
//! loopback, and the bare axum handler, each on a fresh [`Database`] of the run's backend.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::put;
use osc_central::api::{self, AppState};
use osc_central::auth::BOOTSTRAP_TOKEN_FILE;
use osc_central::config::{Config, Options, SecretText};
use osc_central::server::{self, ServeError};
use osc_central::store::{ObjectKey, Store, StoreOptions, resource_version_of};
use serde_json::Value;
use sqlx::{Connection as _, Executor as _, PgConnection};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Backend, BenchError};

/// What the bare handler does, as the report states it.
pub const BARE_HANDLER: &str = "axum PUT handler: JSON body -> Store::update(key, body, \
    precondition = body's resourceVersion) -> JSON answer; the API's write transaction (bump the \
    counter, check and write the row, append the event, compact) without its routing, decoding, \
    admission, validation, read before write or redaction";

/// A fresh, empty database for one server: a SQLite file in a scratch folder, or a PostgreSQL
/// database created for the run. [`Database::remove`] deletes it.
pub struct Database {
    /// The server's data folder (and the SQLite file); deleted on drop.
    scratch: TempDir,
    /// The PostgreSQL database, if the backend is PostgreSQL.
    postgres: Option<PostgresDatabase>,
}

/// Central Command serving the real API in this process.
pub struct Central {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The bootstrap admin token the server wrote at its first start.
    pub token: String,
    /// The running server.
    serving: Serving<Result<(), ServeError>>,
}

/// The bare handler serving on its own port.
pub struct Bare {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The store the handler writes to, for creating its objects.
    pub store: Store,
    /// The running server.
    serving: Serving<std::io::Result<()>>,
}

impl Database {
    /// Creates an empty database on `backend`.
    pub async fn create(backend: &Backend) -> Result<Self, BenchError> {
        let scratch = tempfile::Builder::new()
            .prefix("osc-api-bench-")
            .tempdir()
            .map_err(|source| BenchError::Scratch { source })?;
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres { admin_url } => Some(PostgresDatabase::create(admin_url).await?),
        };
        Ok(Self { scratch, postgres })
    }

    /// Where the server keeps its data (and SQLite its file).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.scratch.path().join("data")
    }

    /// Opens the database directly, as a server would: on SQLite the file `sqlite_file` in the
    /// data folder (`central.sqlite3` is the one Central Command serves from).
    /// The data folder is created either way (the evidence log keeps its key there).
    pub(crate) async fn open_store(&self, sqlite_file: &str) -> Result<Store, BenchError> {
        std::fs::create_dir_all(self.data_dir())
            .map_err(|source| BenchError::Scratch { source })?;
        match &self.postgres {
            None => {
                Store::open_sqlite(&self.data_dir().join(sqlite_file), StoreOptions::default())
                    .await
            }
            Some(postgres) => Store::connect_postgres(&postgres.url, StoreOptions::default()).await,
        }
        .map_err(|source| BenchError::Store { source })
    }

    /// Drops the PostgreSQL database (disconnecting whoever is still connected) and deletes the
    /// scratch folder.
    pub async fn remove(self) -> Result<(), BenchError> {
        if let Some(postgres) = self.postgres {
            postgres.drop_database().await?;
        }
        Ok(())
    }
}

impl Central {
    /// Starts Central Command as `osc-central serve --insecure-http` would, on a free loopback
    /// port and `database`, and waits until it answers `/healthz`.
    pub async fn start(database: &Database) -> Result<Self, BenchError> {
        let listener = bind().await?;
        let addr = local_addr(&listener)?;
        let options = Options {
            data_dir: Some(database.data_dir()),
            listen: Some(addr),
            database_url: database
                .postgres
                .as_ref()
                .map(|postgres| SecretText(postgres.url.clone())),
            insecure_http: Some(true),
            ..Options::default()
        };
        let config = Config::from_options(options).map_err(|source| BenchError::Config {
            source: Box::new(source),
        })?;
        let serving = Serving::spawn(|shutdown| {
            server::run(
                config,
                listener,
                |services| api::app(AppState::new(services)),
                shutdown,
            )
        });
        let mut central = Self {
            base: format!("http://{addr}"),
            token: String::new(),
            serving,
        };
        central.wait_until_healthy().await?;
        let token_file = database.data_dir().join(BOOTSTRAP_TOKEN_FILE);
        central.token = std::fs::read_to_string(&token_file)
            .map_err(|error| BenchError::Unexpected {
                what: format!(
                    "cannot read the admin token {}: {error}",
                    token_file.display()
                ),
            })?
            .trim()
            .to_owned();
        Ok(central)
    }

    /// Stops the server, letting in-flight requests finish.
    pub async fn stop(self) -> Result<(), BenchError> {
        self.serving
            .stop()
            .await
            .map_err(|source| BenchError::Serve {
                source: Box::new(source),
            })
    }

    /// Polls `/healthz` until it answers: the store opens (and migrates) before the server
    /// serves. A server that stops instead hands over its error.
    async fn wait_until_healthy(&mut self) -> Result<(), BenchError> {
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", self.base);
        loop {
            if self.serving.task.is_finished() {
                return match (&mut self.serving.task).await {
                    Ok(Err(source)) => Err(BenchError::Serve {
                        source: Box::new(source),
                    }),
                    Ok(Ok(())) => Err(BenchError::Unexpected {
                        what: "Central Command stopped before it served".to_owned(),
                    }),
                    Err(error) => std::panic::resume_unwind(error.into_panic()),
                };
            }
            match client.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

impl Bare {
    /// Serves the bare handler on a free loopback port, writing to `database`.
    pub async fn start(database: &Database) -> Result<Self, BenchError> {
        let store = database.open_store("bare.sqlite3").await?;
        let listener = bind().await?;
        let addr = local_addr(&listener)?;
        let router = Router::new()
            .route("/bare/{namespace}/{name}", put(bare_update))
            .with_state(store.clone());
        let serving = Serving::spawn(|shutdown| async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        });
        Ok(Self {
            base: format!("http://{addr}"),
            store,
            serving,
        })
    }

    /// The path the handler updates the Host `name` of `namespace` at.
    pub fn path(namespace: &str, name: &str) -> String {
        format!("/bare/{namespace}/{name}")
    }

    /// Stops the server.
    pub async fn stop(self) -> Result<(), BenchError> {
        self.serving
            .stop()
            .await
            .map_err(|source| BenchError::Bind { source })
    }
}

/// The bare handler: the store's update of a Host, nothing else.
async fn bare_update(
    State(store): State<Store>,
    Path((namespace, name)): Path<(String, String)>,
    Json(object): Json<Value>,
) -> Response {
    let key = ObjectKey::namespaced("hosts", namespace, name);
    let precondition = resource_version_of(&object);
    match store.update(&key, object, precondition).await {
        Ok(stored) => Json(stored).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// Completes when a server should shut down.
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server task and the switch that stops it.
struct Serving<T> {
    /// Completing this starts the shutdown.
    shutdown: oneshot::Sender<()>,
    /// The server; it ends when shutdown is complete.
    task: JoinHandle<T>,
}

impl<T: Send + 'static> Serving<T> {
    /// Spawns `serve`, handing it the future that completes on [`Serving::stop`].
    fn spawn<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (shutdown, signal) = oneshot::channel::<()>();
        let signal: Shutdown = Box::pin(async move {
            let _ = signal.await;
        });
        Self {
            shutdown,
            task: tokio::spawn(serve(signal)),
        }
    }

    /// Starts the shutdown and waits for the server's result.
    async fn stop(self) -> T {
        let _ = self.shutdown.send(());
        match self.task.await {
            Ok(result) => result,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

/// A database created on a PostgreSQL server for one run.
struct PostgresDatabase {
    /// Where databases are created and dropped (a URL with a password: never shown).
    admin_url: String,
    /// The database's name.
    name: String,
    /// The URL of the database itself.
    url: String,
}

impl PostgresDatabase {
    /// Creates a database with a unique name on the server of `admin_url`.
    async fn create(admin_url: &str) -> Result<Self, BenchError> {
        let name = format!("osc_bench_{}", uuid::Uuid::new_v4().simple());
        let failed = |source| BenchError::Database {
            action: "create",
            name: name.clone(),
            server: server_of(admin_url),
            source,
        };
        let mut url = url::Url::parse(admin_url)
            .map_err(|error| failed(sqlx::Error::Configuration(error.into())))?;
        let mut connection = PgConnection::connect(admin_url).await.map_err(failed)?;
        connection
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .map_err(failed)?;
        url.set_path(&name);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: url.into(),
            name,
        })
    }

    /// Drops the database, disconnecting whoever is still connected.
    async fn drop_database(self) -> Result<(), BenchError> {
        let failed = |source| BenchError::Database {
            action: "drop",
            name: self.name.clone(),
            server: server_of(&self.admin_url),
            source,
        };
        let mut connection = PgConnection::connect(&self.admin_url)
            .await
            .map_err(failed)?;
        connection
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .await
            .map_err(failed)?;
        Ok(())
    }
}

/// `host:port` of a database URL, leaving out the user and password.
fn server_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "(unparseable URL)".to_owned(),
        |url| {
            format!(
                "{}:{}",
                url.host_str().unwrap_or("(no host)"),
                url.port().unwrap_or(5432)
            )
        },
    )
}

/// A listener on a free loopback port.
async fn bind() -> Result<TcpListener, BenchError> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| BenchError::Bind { source })
}

/// The address a listener is bound to.
fn local_addr(listener: &TcpListener) -> Result<SocketAddr, BenchError> {
    listener
        .local_addr()
        .map_err(|source| BenchError::Bind { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_servers_are_shown_without_credentials() {
        let cases = [
            (
                "postgres://postgres:osc-test@127.0.0.1:5432/postgres",
                "127.0.0.1:5432",
            ),
            ("postgres://u:s3cret@db.example/x", "db.example:5432"),
            ("not a url s3cret", "(unparseable URL)"),
        ];
        for (url, shown) in cases {
            assert_eq!(server_of(url), shown);
        }
    }
}
