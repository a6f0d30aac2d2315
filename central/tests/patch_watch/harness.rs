//! A Central Command per test on 127.0.0.1:0 (plain HTTP, loopback), over a throw-away SQLite
//! file or PostgreSQL database, with helpers that keep each test a few lines of intent.

use std::time::Duration;

use osc_central::api::{AppState, WatchSettings, app};
use osc_central::auth::{Role, TokenSpec};
use osc_central::config::{Config, Options};
use osc_central::keyring::Keyring;
use osc_central::server::{Server, Services};
use osc_central::store::{HistoryRetention, Store, StoreOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The group-version prefix of every resource path.
pub const API: &str = "/apis/osiriscare.net/v1alpha1";

/// The variable naming the PostgreSQL server tests may create databases on.
const DATABASE_URL_VAR: &str = "OSC_TEST_DATABASE_URL";

/// How long a test waits for something that should happen at once before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A throw-away database: a SQLite file in a temporary folder, or a PostgreSQL database made
/// for the test (dropped by [`Database::remove`]).
pub struct Database {
    /// The SQLite file's folder (also used for the servers' data folders).
    dir: TempDir,
    /// The admin URL, the database's URL and its name, on PostgreSQL.
    postgres: Option<(String, String, String)>,
}

impl Database {
    /// A fresh database on `backend`. On PostgreSQL, a missing `OSC_TEST_DATABASE_URL` fails the
    /// test with what to do.
    pub async fn new(backend: Backend) -> Self {
        let dir = TempDir::new().unwrap();
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let admin = std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
                    panic!(
                        "{DATABASE_URL_VAR} is not set, so the PostgreSQL watch tests cannot run; \
                         point it at a role that may create databases, e.g. \
                         {DATABASE_URL_VAR}=postgres://postgres:osc-test@127.0.0.1:5432/postgres \
                         (tests/run sets this up)"
                    )
                });
                let name = format!("osc_api_{}", uuid::Uuid::new_v4().simple());
                let mut connection = PgConnection::connect(&admin).await.unwrap_or_else(|error| {
                    panic!("cannot connect with {DATABASE_URL_VAR}: {error}")
                });
                connection
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&name);
                Some((admin, url.into(), name))
            }
        };
        Self { dir, postgres }
    }

    /// A store on this database keeping at most `history` watch events.
    pub async fn open(&self, history: u64) -> Store {
        let options = StoreOptions {
            history: HistoryRetention {
                max_events: history.try_into().unwrap(),
                max_age: None,
            },
            poll_interval: Duration::from_millis(200),
            ..StoreOptions::default()
        };
        match &self.postgres {
            None => Store::open_sqlite(&self.dir.path().join("central.sqlite3"), options)
                .await
                .unwrap(),
            Some((_, url, _)) => Store::connect_postgres(url, options).await.unwrap(),
        }
    }

    /// Drops the PostgreSQL database (and its connections).
    pub async fn remove(self) {
        if let Some((admin, _, name)) = &self.postgres {
            let mut connection = PgConnection::connect(admin).await.unwrap();
            connection
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await
                .unwrap();
        }
    }
}

/// A running Central Command.
pub struct TestCentral {
    /// `https://127.0.0.1:port`.
    pub base: String,
    /// A client for it.
    pub client: reqwest::Client,
    /// The store it serves (for checks the API cannot make, such as secrets kept).
    pub store: Store,
    /// Its master keys, to open the secrets the store holds.
    pub keyring: Keyring,
    /// An admin's bearer token, which `client` sends.
    pub token: String,
    /// The CA certificate to pin.
    pub ca: std::path::PathBuf,
    /// Completing this starts the shutdown.
    shutdown: Option<oneshot::Sender<()>>,
    /// The serve task; it ends when shutdown is complete.
    task: JoinHandle<()>,
    /// The data folder.
    _data: TempDir,
}

impl TestCentral {
    /// A server on a fresh SQLite database with default history and fast bookmarks.
    pub async fn sqlite() -> (Self, Database) {
        let database = Database::new(Backend::Sqlite).await;
        let central = Self::start(database.open(10_000).await, fast_watches()).await;
        (central, database)
    }

    /// Serves `store` with watch `settings`.
    pub async fn start(store: Store, settings: WatchSettings) -> Self {
        let data = TempDir::new().unwrap();
        let options = Options {
            data_dir: Some(data.path().join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Options::default()
        };
        let config = Config::from_options(options).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::new(&config, listener).unwrap();
        // TLS with the generated CA: kubectl sends bearer tokens only over TLS.
        let base = format!("https://{}", server.local_addr());
        let ca = data.path().join("data/tls/ca.crt");
        let services = Services::assemble(&config, &server, store.clone())
            .await
            .unwrap();
        let keyring = services.keyring.clone();
        let state = AppState {
            watch: settings,
            ..AppState::new(services)
        };
        let token = state
            .auth
            .issue(TokenSpec {
                name: "test-admin".to_owned(),
                role: Role::Admin,
                expires_at: None,
            })
            .await
            .unwrap()
            .bearer;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(app(state), async {
            let _ = signal.await;
        }));
        Self {
            base,
            client: reqwest::Client::builder()
                .add_root_certificate(
                    reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap(),
                )
                .default_headers(headers)
                .build()
                .unwrap(),
            token,
            ca,
            store,
            keyring,
            shutdown: Some(shutdown),
            task,
            _data: data,
        }
    }

    /// The URL of an API path (`/sites/x`, relative to the group-version).
    pub fn url(&self, path: &str) -> String {
        format!("{}{API}{path}", self.base)
    }

    /// POSTs `object` to `collection` and returns it as stored (the create must succeed).
    pub async fn create(&self, collection: &str, object: Value) -> Value {
        let response = self
            .client
            .post(self.url(collection))
            .header("content-type", "application/json")
            .body(object.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = json_of(response).await;
        assert_eq!(status, StatusCode::CREATED, "create {collection}: {body}");
        body
    }

    /// GETs an object (which must exist).
    pub async fn get(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "get {path}");
        json_of(response).await
    }

    /// PATCHes `path` with `body` as `content_type`; the status and the JSON answer.
    pub async fn patch(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .patch(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, json_of(response).await)
    }

    /// A merge patch that must succeed; the patched object.
    pub async fn merge(&self, path: &str, patch: Value) -> Value {
        let (status, body) = self
            .patch(path, "application/merge-patch+json", patch.to_string())
            .await;
        assert_eq!(status, StatusCode::OK, "merge patch {path}: {body}");
        body
    }

    /// Opens a watch (`path_and_query` relative to the group-version) with `accept`.
    pub async fn watch_as(&self, path_and_query: &str, accept: &str) -> Watch {
        let response = self
            .client
            .get(self.url(path_and_query))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        Watch {
            response,
            buffer: Vec::new(),
        }
    }

    /// Opens a watch as client-go does.
    pub async fn watch(&self, path_and_query: &str) -> Watch {
        self.watch_as(path_and_query, "application/json;stream=watch")
            .await
    }

    /// The value of a series in `/metrics`, e.g. `osc_watchers{resource="hosts"}`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    /// Starts the shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts down and waits until the server has stopped.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

/// A response's body as JSON.
pub async fn json_of(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&bytes)))
}

/// Watch settings for tests: bookmarks every 200 ms, a short wait for future versions.
pub fn fast_watches() -> WatchSettings {
    WatchSettings {
        bookmark_interval: Duration::from_millis(200),
        future_wait: Duration::from_millis(300),
    }
}

/// An open watch response, read event by event.
pub struct Watch {
    /// The streaming response.
    pub response: reqwest::Response,
    /// Bytes received after the last complete line.
    buffer: Vec<u8>,
}

impl Watch {
    /// The next event, or `None` when the stream ended; fails the test after [`PATIENCE`].
    pub async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(PATIENCE, self.next_line())
            .await
            .expect("a watch event in time")
    }

    /// The next event that is not a bookmark.
    pub async fn next_change(&mut self) -> Option<Value> {
        loop {
            let event = self.next().await?;
            if event["type"] != "BOOKMARK" {
                return Some(event);
            }
        }
    }

    /// The type and object name of the next event that is not a bookmark.
    pub async fn next_named(&mut self) -> (String, String) {
        let event = self.next_change().await.expect("an event");
        (
            event["type"].as_str().unwrap().to_owned(),
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// Reads until a whole line is buffered.
    async fn next_line(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("each line is JSON"));
            }
            let chunk = self.response.chunk().await.expect("the stream reads")?;
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

/// A Site with a display name.
pub fn site(name: &str) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {"displayName": format!("Practice {name}"), "partner": "bluelake-msp"},
    })
}

/// A Linux Host of site `alpha` with a `role` label.
pub fn host(name: &str, role: &str) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Host",
        "metadata": {"name": name, "namespace": "alpha", "labels": {"role": role}},
        "spec": {
            "platform": "linux",
            "address": "10.0.0.1",
            "transport": {"type": "ssh", "credentialRef": "linux-ssh"},
        },
    })
}

/// The path of host `name` of site `alpha`.
pub fn host_path(name: &str) -> String {
    format!("/namespaces/alpha/hosts/{name}")
}

/// An object's `metadata.resourceVersion` as a number.
pub fn version(object: &Value) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .parse()
        .unwrap()
}
