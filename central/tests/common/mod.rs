//! Shared helpers of the API and kubectl tests: a [`TestCentral`] (a real server on
//! 127.0.0.1:0 with generated TLS, over SQLite or a fresh PostgreSQL database), a client for it,
//! a kubeconfig, and builders of valid objects.
//!
//! PostgreSQL tests need `OSC_TEST_DATABASE_URL`: a server and a role that may create databases
//! (`tests/run` sets it up). Without it they fail with a message saying so.

#![allow(dead_code)] // Each test crate uses its own part of these helpers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use osc_central::api::{self, AppState};
use osc_central::auth::{Auth, Role, TokenSpec};
use osc_central::config::{Config, Options, SecretText};
use osc_central::keyring::{Binding, Keyring, SEALED_PREFIX};
use osc_central::server::{Server, Services};
use osc_central::store::{ObjectKey, Store};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Instantiates each behaviour test (an `async fn(&TestCentral)` at the test crate's root)
/// once per backend, as `sqlite::NAME` and `postgres::NAME`.
#[allow(unused_macros)] // Only the crates with backend suites use it.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let central = crate::common::TestCentral::start(crate::common::Backend::Sqlite).await;
                    crate::$test(&central).await;
                    central.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let central = crate::common::TestCentral::start(crate::common::Backend::Postgres).await;
                    crate::$test(&central).await;
                    central.stop().await;
                }
            )*
        }
    };
}

/// The environment variable naming the PostgreSQL server tests may create databases on.
const DATABASE_URL_VAR: &str = "OSC_TEST_DATABASE_URL";

/// The seven kinds' plurals, for snapshots of the whole store.
pub const PLURALS: [&str; 7] = [
    "sites",
    "hosts",
    "appliances",
    "credentials",
    "runbooks",
    "releases",
    "rollouts",
];

/// Which database a [`TestCentral`] stores in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the server's data folder.
    Sqlite,
    /// A database created for the test on `OSC_TEST_DATABASE_URL`'s server.
    Postgres,
}

/// Central Command running in this process, serving the real API over TLS.
pub struct TestCentral {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client that trusts the server's generated CA and sends the admin token.
    pub client: reqwest::Client,
    /// The server's store, for the few checks the API cannot make (secrets it never returns).
    pub store: Store,
    /// The server's master keys, to open what the store holds.
    pub keyring: Keyring,
    /// The state the API serves with, for calling handlers' functions directly.
    pub state: AppState,
    /// The server's tokens, to issue more.
    pub auth: Auth,
    /// An admin's bearer token; [`TestCentral::send`] and kubectl use it.
    pub admin_token: String,
    /// The data folder (CA, SQLite file, kubeconfig, kubectl's cache); deleted on drop.
    data: TempDir,
    /// The PostgreSQL database to drop at the end, as (admin URL, name, URL of the database).
    database: Option<(String, String, String)>,
    /// Completing this starts the shutdown.
    shutdown: Option<oneshot::Sender<()>>,
    /// The serve task; it ends when the shutdown is complete.
    task: Option<JoinHandle<()>>,
}

/// Issues a token named `name` of `role` straight through the server's token store.
pub async fn issue(auth: &Auth, name: &str, role: Role) -> String {
    auth.issue(TokenSpec {
        name: name.to_owned(),
        role,
        expires_at: None,
    })
    .await
    .expect("a token is issued")
    .bearer
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// The body as JSON (`Value::Null` if it was empty or not JSON).
    pub body: Value,
}

impl TestCentral {
    /// Starts a server on `backend` with a fresh, empty database.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Options::default()).await
    }

    /// Starts a server on `backend` with a fresh, empty database and `extra` options (such as
    /// master keys) over the test's own.
    pub async fn start_with(backend: Backend, extra: Options) -> Self {
        let data = TempDir::new().expect("a temporary directory");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(create_database().await),
        };
        Self::serve(data, database, extra).await
    }

    /// Stops the server and starts another over the same data folder and database, with
    /// `extra` options, as a restart of the process would.
    pub async fn restart(mut self, extra: Options) -> Self {
        self.shut_down().await;
        let data = std::mem::replace(
            &mut self.data,
            TempDir::new().expect("a temporary directory"),
        );
        let database = self.database.take();
        Self::serve(data, database, extra).await
    }

    /// The data folder the server was started with.
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// The URL of the test's PostgreSQL database, if it runs on one.
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|(_, _, url)| url.as_str())
    }

    /// Serves the API over `data` and `database` as `osc-central serve` does: keys loaded, store
    /// opened, any unfinished master-key rotation finished, then serving.
    async fn serve(
        data: TempDir,
        database: Option<(String, String, String)>,
        extra: Options,
    ) -> Self {
        let options = Options {
            data_dir: Some(data.path().join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            database_url: database.as_ref().map(|(_, _, url)| SecretText(url.clone())),
            ..Options::default()
        };
        let config = Config::from_options(extra.over(options)).expect("a valid test configuration");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::new(&config, listener).expect("the server starts");
        let addr = server.local_addr();
        let services = Services::open(&config, &server)
            .await
            .expect("the services open");
        let store = services.store.clone();
        let keyring = services.keyring.clone();
        let state = AppState::new(services);
        let auth = state.auth.clone();
        let admin_token = issue(&auth, "test-admin", Role::Admin).await;
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(api::app(state.clone()), async {
            let _ = signal.await;
        }));
        let ca = std::fs::read(data.path().join("data/tls/ca.crt")).expect("the generated CA");
        // The admin token goes with every request of `client` unless one sets its own.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {admin_token}").parse().unwrap(),
        );
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .default_headers(headers)
            .build()
            .unwrap();
        Self {
            addr,
            client,
            store,
            keyring,
            state,
            auth,
            admin_token,
            data,
            database,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// `https://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The stored secret `field` of the Credential `site`/`name`, opened with the server's keys;
    /// fails the test unless it is stored sealed.
    pub async fn stored_secret(&self, site: &str, name: &str, field: &str) -> String {
        stored_secret(&self.store, &self.keyring, (site, name, field)).await
    }

    /// The CA certificate clients pin.
    pub fn ca(&self) -> PathBuf {
        self.data.path().join("data/tls/ca.crt")
    }

    /// A new bearer token of `role`.
    pub async fn token(&self, role: Role) -> String {
        issue(&self.auth, "test-user", role).await
    }

    /// Sends a request as the admin; `body` goes with `content_type`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        self.send_as(&self.admin_token, method, path, accept, body)
            .await
    }

    /// Sends a request with the bearer `token`; `body` goes with `content_type`.
    pub async fn send_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.expect("a body");
        Reply {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response
            .expect("the server answers")
            .text()
            .await
            .expect("a body")
    }

    /// GET as JSON.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    /// GET with an `Accept` header.
    pub async fn get_as(&self, path: &str, accept: &str) -> Reply {
        self.send(Method::GET, path, Some(accept), None).await
    }

    /// POST of a JSON value.
    pub async fn post(&self, path: &str, value: &Value) -> Reply {
        self.send(Method::POST, path, None, Some(json_body(value)))
            .await
    }

    /// PUT of a JSON value.
    pub async fn put(&self, path: &str, value: &Value) -> Reply {
        self.send(Method::PUT, path, None, Some(json_body(value)))
            .await
    }

    /// DELETE without a body.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, None).await
    }

    /// DELETE with a `DeleteOptions` body.
    pub async fn delete_with(&self, path: &str, options: &Value) -> Reply {
        self.send(Method::DELETE, path, None, Some(json_body(options)))
            .await
    }

    /// Creates `object` at its collection and checks that it worked; returns it as stored.
    pub async fn create(&self, object: &Value) -> Value {
        let reply = self.post(&collection_of(object), object).await;
        assert_eq!(reply.status, 201, "creating {object}: {:?}", reply.body);
        reply.body
    }

    /// Every object of every kind, with the lists' resourceVersions: equal snapshots mean
    /// the store did not change in between (every write bumps the resourceVersion).
    pub async fn snapshot(&self) -> Value {
        let mut lists = serde_json::Map::new();
        for plural in PLURALS {
            let reply = self
                .get(&format!("/apis/osiriscare.net/v1alpha1/{plural}"))
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
            lists.insert(plural.to_owned(), reply.body);
        }
        Value::Object(lists)
    }

    /// Writes a kubeconfig for this server (TLS with the generated CA, a bearer token) and
    /// returns its path.
    pub fn kubeconfig(&self) -> PathBuf {
        self.kubeconfig_for(&self.admin_token)
    }

    /// A kubeconfig like [`TestCentral::kubeconfig`] with the bearer `token`.
    pub fn kubeconfig_for(&self, token: &str) -> PathBuf {
        let path = self
            .data
            .path()
            .join(format!("kubeconfig-{}", &token[..20.min(token.len())]));
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: central\n  cluster:\n    \
             server: {server}\n    certificate-authority: {ca}\nusers:\n- name: operator\n  \
             user:\n    token: {token}\ncontexts:\n- name: \
             central\n  context:\n    cluster: central\n    user: operator\ncurrent-context: \
             central\n",
            server = self.url(""),
            ca = self.ca().display(),
            token = token,
        );
        std::fs::write(&path, config).expect("the kubeconfig is written");
        path
    }

    /// Runs the real `kubectl` against this server with `args`, with its cache and home in the
    /// data folder, off the runtime's threads (the server runs on them).
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.admin_token, args).await
    }

    /// `kubectl args` with the bearer `token`.
    pub async fn kubectl_as(&self, token: &str, args: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig_for(token);
        let cache = self.data.path().join("kube-cache");
        let home = self.data.path().join("home");
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--cache-dir")
                .arg(&cache)
                .args(&args)
                .env("HOME", &home)
                .env_remove("KUBECONFIG")
                .output()
                .expect("kubectl runs (it must be on PATH)")
        })
        .await
        .unwrap()
    }

    /// Runs kubectl and fails the test unless it succeeds; returns its standard output.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args).await;
        assert!(
            output.status.success(),
            "kubectl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Shuts the server down and drops the PostgreSQL database, if any.
    pub async fn stop(mut self) {
        self.shut_down().await;
        if let Some((admin, name, _)) = self.database.take() {
            drop_database(&admin, &name).await;
        }
    }

    /// Shuts the server down, keeping its data and database.
    async fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server stops cleanly");
        }
    }
}

/// A fallback for a test that panicked before [`TestCentral::stop`]: drops its database from
/// another thread (this one is inside the test's runtime).
impl Drop for TestCentral {
    fn drop(&mut self) {
        if let Some((admin, name, _)) = self.database.take() {
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(drop_database(&admin, &name))
            })
            .join();
        }
    }
}

/// The stored secret `field` of the Credential `site`/`name` in `store`, opened with `keyring`;
/// fails the test unless it is stored sealed.
pub async fn stored_secret(
    store: &Store,
    keyring: &Keyring,
    (site, name, field): (&str, &str, &str),
) -> String {
    let stored = store
        .get(&ObjectKey::namespaced("credentials", site, name))
        .await
        .expect("the credential is stored");
    let sealed = stored["spec"]["data"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in the stored data: {stored}"));
    assert!(
        sealed.starts_with(SEALED_PREFIX),
        "stored unsealed: {stored}"
    );
    let binding = Binding {
        site,
        credential: name,
        field,
    };
    keyring
        .keys()
        .await
        .open(&binding, sealed)
        .expect("the stored value opens")
        .to_string()
}

/// The collection path an object is created at.
pub fn collection_of(object: &Value) -> String {
    let plural = format!(
        "{}s",
        object["kind"].as_str().expect("kind").to_ascii_lowercase()
    );
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => {
            format!("/apis/osiriscare.net/v1alpha1/namespaces/{namespace}/{plural}")
        }
        None => format!("/apis/osiriscare.net/v1alpha1/{plural}"),
    }
}

/// The path of an object.
pub fn path_of(object: &Value) -> String {
    format!(
        "{}/{}",
        collection_of(object),
        object["metadata"]["name"].as_str().expect("a name")
    )
}

/// A JSON body.
pub fn json_body(value: &Value) -> (&'static str, Vec<u8>) {
    ("application/json", serde_json::to_vec(value).unwrap())
}

/// A valid Site.
pub fn site(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Site",
        "metadata": {"name": name, "labels": labels},
        "spec": {"displayName": format!("Practice {name}"), "partner": "msp-1"},
    })
}

/// A valid Linux Host of `site`, logging in with the Credential `linux-ssh`.
pub fn host(site: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Host",
        "metadata": {"name": name, "namespace": site, "labels": labels},
        "spec": {
            "address": "10.0.0.5",
            "platform": "linux",
            "transport": {"type": "ssh", "credentialRef": "linux-ssh"},
        },
    })
}

/// A valid password Credential of `site`, with its secret.
pub fn credential(site: &str, name: &str, password: &str) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Credential",
        "metadata": {"name": name, "namespace": site},
        "spec": {"type": "password", "username": "svc", "data": {"password": password}},
    })
}

/// The `metadata.resourceVersion` of an object.
pub fn rv(object: &Value) -> &str {
    object["metadata"]["resourceVersion"]
        .as_str()
        .expect("metadata.resourceVersion")
}

/// Creates a database for one test: (admin URL, name, URL of the new database).
async fn create_database() -> (String, String, String) {
    let admin = std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{DATABASE_URL_VAR} is not set, so the PostgreSQL API tests cannot run. Start \
             PostgreSQL and point it at a role that may create databases, e.g. \
             {DATABASE_URL_VAR}=postgres://postgres:osc-test@127.0.0.1:5432/postgres \
             (tests/run sets this up)."
        )
    });
    let name = format!("osc_api_{}", uuid::Uuid::new_v4().simple());
    let mut connection = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|error| panic!("cannot connect with {DATABASE_URL_VAR}: {error}"));
    connection
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .expect("CREATE DATABASE for the test");
    let mut url = url::Url::parse(&admin).expect("a URL");
    url.set_path(&name);
    (admin, name, url.into())
}

/// Drops a test database, disconnecting whoever is still connected.
async fn drop_database(admin: &str, name: &str) {
    let mut connection = PgConnection::connect(admin)
        .await
        .expect("connect to drop the test database");
    connection
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await
        .expect("the test database is dropped");
}

/// Reads a file of the repository (relative to the workspace root).
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}
