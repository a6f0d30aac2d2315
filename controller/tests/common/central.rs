//! A real Central Command in the test process, over TLS with its generated CA, on SQLite; it can
//! be stopped and started again on the same data and port (a central outage).
// Each test crate that includes this uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use osc_central::api::{self, AppState};
use osc_central::auth::{Role, TokenSpec};
use osc_central::config::{Config as CentralConfig, Options};
use osc_central::reconcile::{ComplianceOptions, SystemClock, run_compliance};
use osc_central::server::{Server, Services};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A running central on 127.0.0.1, with an admin token and a client that pins its CA.
pub struct Central {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// Its address, to start it again on the same port.
    pub addr: SocketAddr,
    /// Its CA certificate (PEM file).
    pub ca: PathBuf,
    /// A client that trusts only that CA.
    pub client: reqwest::Client,
    /// An admin bearer token.
    pub admin: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    rollup: tokio::task::JoinHandle<()>,
    /// Owns the data folder when the test does not.
    _data: Option<tempfile::TempDir>,
}

impl Central {
    /// A central on fresh data, on a free port.
    pub async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut central = Self::start_on(data.path(), None).await;
        central._data = Some(data);
        central
    }

    /// A central on the data in `data`, on `addr` (a free port when `None`): stopping it and
    /// starting it again on the same two is a restart.
    pub async fn start_on(data: &Path, addr: Option<SocketAddr>) -> Self {
        let config = CentralConfig::from_options(Options {
            data_dir: Some(data.join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Options::default()
        })
        .unwrap();
        let listener =
            tokio::net::TcpListener::bind(addr.unwrap_or("127.0.0.1:0".parse().unwrap()))
                .await
                .unwrap();
        let server = Server::new(&config, listener).unwrap();
        let services = Services::open(&config, &server).await.unwrap();
        // The compliance roll-up, as `server::run` starts it beside the API.
        let rollup = tokio::spawn(run_compliance(
            services.store.clone(),
            SystemClock,
            ComplianceOptions::default(),
            services.stopping.clone().cancelled_owned(),
        ));
        let state = AppState::new(services);
        let admin = state
            .auth
            .issue(TokenSpec {
                name: "admin".into(),
                role: Role::Admin,
                expires_at: None,
            })
            .await
            .unwrap()
            .bearer;
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(api::app(state), async {
            let _ = stopped.await;
        }));
        let ca = data.join("data/tls/ca.crt");
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        Self {
            url: format!("https://{addr}"),
            addr,
            ca,
            client,
            admin,
            stop: Some(stop),
            task,
            rollup,
            _data: None,
        }
    }

    /// Calls `path` as the holder of `token`; the status and the JSON answer (`Null` if none).
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Replaces the `spec` of the object at `path` as the admin: reads it, writes it back with
    /// `spec`, and reads again on 409 Conflict (central's compliance roll-up writes a Site's
    /// status meanwhile, which moves its resourceVersion). Panics on any other failure.
    pub async fn set_spec(&self, path: &str, spec: &Value) {
        for _ in 0..20 {
            let (status, mut object) = self
                .call(&self.admin, reqwest::Method::GET, path, None)
                .await;
            assert_eq!(status, 200, "{path}: {object}");
            object["spec"] = spec.clone();
            let (status, body) = self
                .call(&self.admin, reqwest::Method::PUT, path, Some(object))
                .await;
            if status != 409 {
                assert_eq!(status, 200, "{path}: {body}");
                return;
            }
        }
        panic!("{path}: 409 Conflict twenty times in a row");
    }

    /// A fresh enrollment token for `site`.
    pub async fn enrollment_token(&self, site: &str) -> String {
        let (status, body) = self
            .call(
                &self.admin,
                reqwest::Method::POST,
                &format!("/osc/v1/sites/{site}/enrollment-tokens"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Stops serving and waits until it has.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
        self.rollup.abort();
        let _ = self.rollup.await;
    }
}
