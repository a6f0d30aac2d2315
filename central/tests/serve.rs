//! The serving layer against real servers on 127.0.0.1:0, with a stand-in router in place of the
//! resource API: TLS with the generated CA and with given files, plain HTTP on loopback only, the
//! body limit, the request timeout, `/metrics`, graceful shutdown, and the `osc-central` binary's
//! configuration precedence, logs and signal handling.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::routing::{get, post};
use futures::StreamExt;
use osc_central::config::{Config, Options};
use osc_central::metrics::Metrics;
use osc_central::server::{ServeError, Server};
use osc_crds::Kind;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A server running in this process on 127.0.0.1:0, serving [`stand_in`].
struct TestServer {
    /// Where it listens.
    addr: SocketAddr,
    /// The data folder (deleted on drop).
    data: Arc<TempDir>,
    /// Cancelled when shutdown starts (the same token handlers see).
    stopping: CancellationToken,
    /// Completing this starts the shutdown.
    shutdown: Option<oneshot::Sender<()>>,
    /// The serve task; it ends when shutdown is complete.
    task: JoinHandle<()>,
    /// Notified by `/slow` when a request has arrived.
    arrived: Arc<Notify>,
}

impl TestServer {
    /// Starts a server with `options` over test defaults (loopback, port 0, a fresh data folder).
    async fn start(options: Options) -> Self {
        Self::start_in(Arc::new(TempDir::new().unwrap()), options).await
    }

    /// Starts a server on an existing data folder.
    async fn start_in(data: Arc<TempDir>, options: Options) -> Self {
        let config = config(&data, options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::new(&config, listener).unwrap();
        let addr = server.local_addr();
        let stopping = server.stopping();
        let arrived = Arc::new(Notify::new());
        let api = stand_in(server.metrics().clone(), stopping.clone(), arrived.clone());
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(api, async {
            let _ = signal.await;
        }));
        Self {
            addr,
            data,
            stopping,
            shutdown: Some(shutdown),
            task,
            arrived,
        }
    }

    /// `https://127.0.0.1:port{path}` (or `http` for plain servers).
    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The generated CA certificate.
    fn ca(&self) -> PathBuf {
        self.data.path().join("data/tls/ca.crt")
    }

    /// Starts the shutdown without waiting for it.
    fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts down and waits until the server has stopped.
    async fn stop(mut self) {
        self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

/// A checked configuration: test defaults under `options`.
fn config(data: &TempDir, options: Options) -> Config {
    let defaults = Options {
        data_dir: Some(data.path().join("data")),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Options::default()
    };
    Config::from_options(options.over(defaults)).unwrap()
}

/// Options for a plain-HTTP server.
fn insecure() -> Options {
    Options {
        insecure_http: Some(true),
        ..Options::default()
    }
}

/// A client trusting only `ca` (or nothing at all).
fn client(ca: Option<&Path>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .no_proxy();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// Query of the stand-in collection route.
#[derive(serde::Deserialize)]
struct SitesQuery {
    /// Set for a watch.
    watch: Option<String>,
    /// How long the watch stays open unless shutdown ends it first.
    hold_ms: Option<u64>,
}

/// What the stand-in handlers share.
#[derive(Clone)]
struct StandIn {
    /// For the watch gauge.
    metrics: Metrics,
    /// Ends watches at shutdown.
    stopping: CancellationToken,
    /// Tells the test that `/slow` has started.
    arrived: Arc<Notify>,
}

/// A tiny API in place of the resource API: an echo, a slow request, a request that never ends,
/// and a sites collection that lists or watches the way the real one will (the watch holds a
/// watcher guard and ends at shutdown).
fn stand_in(metrics: Metrics, stopping: CancellationToken, arrived: Arc<Notify>) -> Router {
    Router::new()
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/slow",
            get(|State(s): State<StandIn>| async move {
                s.arrived.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        )
        .route("/forever", get(std::future::pending::<String>))
        .route(
            "/apis/osiriscare.net/v1alpha1/sites",
            get(
                |State(s): State<StandIn>, Query(q): Query<SitesQuery>| async move {
                    if q.watch.is_none() {
                        return Body::from(r#"{"kind":"SiteList","items":[]}"#);
                    }
                    let guard = s.metrics.watcher(Kind::Site);
                    let hold = Duration::from_millis(q.hold_ms.unwrap_or(60_000));
                    let first = futures::stream::once(async { Ok::<_, Infallible>("ADDED\n") });
                    let last = futures::stream::once(async move {
                        let _guard = guard;
                        tokio::select! {
                            () = s.stopping.cancelled() => Ok("STOPPING\n"),
                            () = tokio::time::sleep(hold) => Ok("HELD\n"),
                        }
                    });
                    Body::from_stream(first.chain(last))
                },
            ),
        )
        .with_state(StandIn {
            metrics,
            stopping,
            arrived,
        })
}

/// The value of the sample named exactly `series` (name and labels) in a metrics exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Sends raw bytes over plain TCP and returns everything the server answers until it closes.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A response body as JSON (reqwest's `json` feature is left off for this one use).
async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The JSON body of an HTTP/1.1 response read raw.
fn raw_body(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").expect("a response").1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

// ---------------------------------------------------------------------------------------------
// TLS

#[tokio::test]
async fn a_client_pinning_the_generated_ca_connects_over_http2() {
    let server = TestServer::start(Options::default()).await;
    let response = client(Some(&server.ca()))
        .get(server.url("https", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2"
    );
    assert_eq!(response.text().await.unwrap(), "ok");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_pin_the_ca_is_refused() {
    let server = TestServer::start(Options::default()).await;
    let error = client(None)
        .get(server.url("https", "/healthz"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    let chain = format!("{error:?}");
    assert!(chain.contains("UnknownIssuer"), "{chain}");
    server.stop().await;
}

#[tokio::test]
async fn a_second_start_reuses_the_ca_so_pinned_clients_keep_working() {
    let data = Arc::new(TempDir::new().unwrap());
    let first = TestServer::start_in(data.clone(), Options::default()).await;
    let ca_before = std::fs::read(first.ca()).unwrap();
    let pinned = client(Some(&first.ca()));
    first.stop().await;

    let second = TestServer::start_in(data.clone(), Options::default()).await;
    assert_eq!(std::fs::read(second.ca()).unwrap(), ca_before);
    let response = pinned
        .get(second.url("https", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    second.stop().await;
}

#[tokio::test]
async fn the_data_folder_and_the_ca_key_are_private() {
    let server = TestServer::start(Options::default()).await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let data_dir = server.data.path().join("data");
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&data_dir.join("tls")), 0o700);
    assert_eq!(mode(&data_dir.join("tls/ca.key")), 0o600);
    server.stop().await;
}

#[tokio::test]
async fn failed_handshakes_do_not_stop_the_server() {
    let server = TestServer::start(Options::default()).await;
    // Plain HTTP to the TLS port, a connection closed mid-record, one closed before a byte, and
    // a client that does not trust the certificate.
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        for bytes in [
            &b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0][..],
        ] {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(bytes).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            assert!(
                !answer.starts_with(b"HTTP/"),
                "no HTTP is spoken before TLS"
            );
        }
        drop(TcpStream::connect(addr).unwrap());
    })
    .await
    .unwrap();
    client(None)
        .get(server.url("https", "/healthz"))
        .send()
        .await
        .unwrap_err();

    let response = client(Some(&server.ca()))
        .get(server.url("https", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_from_files_is_served_and_a_foreign_key_is_refused() {
    let files = TempDir::new().unwrap();
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let cert = files.path().join("cert.pem");
    let key = files.path().join("key.pem");
    let foreign_key = files.path().join("other.pem");
    std::fs::write(&cert, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.signing_key.serialize_pem()).unwrap();
    std::fs::write(&foreign_key, other.serialize_pem()).unwrap();

    let server = TestServer::start(Options {
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        ..Options::default()
    })
    .await;
    let response = client(Some(&cert))
        .get(server.url("https", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !server.ca().exists(),
        "no CA is generated when files are given"
    );
    server.stop().await;

    let data = TempDir::new().unwrap();
    let config = config(
        &data,
        Options {
            tls_cert: Some(cert.clone()),
            tls_key: Some(foreign_key.clone()),
            ..Options::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let message = Server::new(&config, listener).err().unwrap().to_string();
    assert!(message.contains(&cert.display().to_string()), "{message}");
    assert!(
        message.contains(&foreign_key.display().to_string()),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP

#[tokio::test]
async fn insecure_http_serves_on_loopback() {
    let server = TestServer::start(insecure()).await;
    let response = client(None)
        .get(server.url("http", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn insecure_http_is_refused_off_loopback() {
    // By the configuration, from the address asked for…
    let data = TempDir::new().unwrap();
    let message = Config::from_options(Options {
        listen: Some("0.0.0.0:8080".parse().unwrap()),
        data_dir: Some(data.path().to_owned()),
        ..insecure()
    })
    .unwrap_err()
    .to_string();
    assert!(message.contains("--insecure-http"), "{message}");
    assert!(message.contains("0.0.0.0:8080"), "{message}");

    // …and by the server, from the address the listener is actually bound to.
    let config = config(&data, insecure());
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let error = Server::new(&config, listener).err().unwrap();
    assert!(matches!(error, ServeError::Config(_)), "{error:?}");
    assert!(
        error.to_string().contains("not a loopback address"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// Limits

#[tokio::test]
async fn a_body_over_the_limit_gets_a_413_status() {
    let server = TestServer::start(Options {
        max_body_bytes: Some(1000),
        ..insecure()
    })
    .await;
    let http = client(None);
    let ok = http
        .post(server.url("http", "/echo"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1000");

    let refused = http
        .post(server.url("http", "/echo"))
        .body(vec![b'x'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let status = json(refused).await;
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["apiVersion"], "v1");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "RequestEntityTooLarge");
    assert_eq!(status["code"], 413);
    assert!(status["message"].as_str().unwrap().contains("1000 bytes"));
    server.stop().await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_a_413_status_too() {
    let server = TestServer::start(Options {
        max_body_bytes: Some(1000),
        ..insecure()
    })
    .await;
    let addr = server.addr;
    let chunk = format!("258\r\n{}\r\n", "y".repeat(600));
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
         {chunk}{chunk}0\r\n\r\n"
    );
    let response = tokio::task::spawn_blocking(move || raw_exchange(addr, request.as_bytes()))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let status = raw_body(&response);
    assert_eq!(status["reason"], "RequestEntityTooLarge");
    assert_eq!(status["code"], 413);
    server.stop().await;
}

/// Regression guard: axum's extractors have their own 2 MB default limit, which would refuse
/// bodies that `--max-body-bytes` (3 MiB by default) allows.
#[tokio::test]
async fn the_default_limit_is_three_mebibytes_whatever_the_extractor() {
    let server = TestServer::start(insecure()).await;
    let http = client(None);
    let size = 3 * 1024 * 1024;
    let ok = http
        .post(server.url("http", "/echo"))
        .body(vec![b'x'; size])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), size.to_string());
    let refused = http
        .post(server.url("http", "/echo"))
        .body(vec![b'x'; size + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_request_gets_a_504_status_but_a_watch_stays_open() {
    let server = TestServer::start(Options {
        request_timeout: Some("200ms".parse().unwrap()),
        ..insecure()
    })
    .await;
    let http = client(None);
    let slow = http.get(server.url("http", "/slow")).send().await.unwrap();
    assert_eq!(slow.status(), 504);
    let status = json(slow).await;
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(status["code"], 504);
    assert!(
        status["message"].as_str().unwrap().contains("200ms"),
        "{status}"
    );

    // The watch is held open five times longer than the timeout and still ends normally.
    let watch = http
        .get(server.url(
            "http",
            "/apis/osiriscare.net/v1alpha1/sites?watch=true&hold_ms=1000",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);
    assert_eq!(watch.text().await.unwrap(), "ADDED\nHELD\n");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[tokio::test]
async fn metrics_count_requests_by_verb_resource_and_code() {
    let server = TestServer::start(Options {
        max_body_bytes: Some(10),
        ..insecure()
    })
    .await;
    let http = client(None);
    for _ in 0..2 {
        http.get(server.url("http", "/healthz"))
            .send()
            .await
            .unwrap();
    }
    http.get(server.url("http", "/apis/osiriscare.net/v1alpha1/sites"))
        .send()
        .await
        .unwrap();
    http.post(server.url("http", "/echo"))
        .body("far more than ten bytes")
        .send()
        .await
        .unwrap();
    http.get(server.url("http", "/apis/osiriscare.net/v1alpha1/pods"))
        .send()
        .await
        .unwrap();
    let mut watch = http
        .get(server.url("http", "/apis/osiriscare.net/v1alpha1/sites?watch=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.chunk().await.unwrap().unwrap(), "ADDED\n");

    let response = http
        .get(server.url("http", "/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let expected = [
        (
            r#"osc_http_requests_total{verb="get",resource="other",code="200"}"#,
            2.0,
        ),
        (
            r#"osc_http_requests_total{verb="list",resource="sites",code="200"}"#,
            1.0,
        ),
        (
            r#"osc_http_requests_total{verb="create",resource="other",code="413"}"#,
            1.0,
        ),
        (
            r#"osc_http_requests_total{verb="list",resource="other",code="404"}"#,
            1.0,
        ),
        (
            r#"osc_http_requests_total{verb="watch",resource="sites",code="200"}"#,
            1.0,
        ),
        (
            r#"osc_http_request_duration_seconds_count{verb="list",resource="sites"}"#,
            1.0,
        ),
        (r#"osc_watchers{resource="sites"}"#, 1.0),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    drop(watch);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Shutdown

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_ends_watches() {
    let mut server = TestServer::start(Options {
        shutdown_grace: Some("20s".parse().unwrap()),
        ..Options::default()
    })
    .await;
    let http = client(Some(&server.ca()));
    let mut watch = http
        .get(server.url("https", "/apis/osiriscare.net/v1alpha1/sites?watch=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.chunk().await.unwrap().unwrap(), "ADDED\n");
    let arrived = server.arrived.notified();
    let slow = tokio::spawn(http.get(server.url("https", "/slow")).send());
    arrived.await;

    server.begin_shutdown();
    server.stopping.cancelled().await;
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "no new connections once shutdown has started"
    );

    let slow = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(slow.status(), 200);
    assert_eq!(slow.text().await.unwrap(), "done");
    // The rest of the watch arrives and the body ends without an error.
    assert_eq!(watch.text().await.unwrap(), "STOPPING\n");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_what_is_still_running_when_the_grace_period_ends() {
    let server = TestServer::start(Options {
        shutdown_grace: Some("300ms".parse().unwrap()),
        request_timeout: Some("1h".parse().unwrap()),
        ..insecure()
    })
    .await;
    let stuck = tokio::spawn(client(None).get(server.url("http", "/forever")).send());
    // Let the request reach the handler before shutting down.
    let http = client(None);
    http.get(server.url("http", "/healthz"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.stop().await;
    let result = stuck.await.unwrap();
    assert!(result.is_err(), "the stuck request is cut off: {result:?}");
}

// ---------------------------------------------------------------------------------------------
// The binary

/// `osc-central` with no `OSC_*` variables inherited from the test's environment.
fn osc_central() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_osc-central"));
    for (name, _) in std::env::vars() {
        if name.starts_with("OSC_") {
            command.env_remove(name);
        }
    }
    command
}

#[test]
fn check_config_applies_flag_over_environment_over_file_over_default() {
    let folder = TempDir::new().unwrap();
    let file = folder.path().join("central.yaml");
    std::fs::write(
        &file,
        "listen: 127.0.0.1:1001\n\
         log-level: warn\n\
         max-body-bytes: 2048\n\
         data-dir: state\n",
    )
    .unwrap();
    let output = osc_central()
        .args(["check-config", "--listen", "127.0.0.1:1003", "--config"])
        .arg(&file)
        .env("OSC_LISTEN", "127.0.0.1:1002")
        .env("OSC_LOG_LEVEL", "debug")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let effective: Value = serde_yaml::from_slice(&output.stdout).unwrap();
    assert_eq!(
        effective["listen"], "127.0.0.1:1003",
        "flag over env and file"
    );
    assert_eq!(effective["log-level"], "debug", "env over file");
    assert_eq!(effective["max-body-bytes"], 2048, "file over default");
    assert_eq!(effective["request-timeout"], "1m", "default");
    assert_eq!(
        effective["data-dir"],
        folder.path().join("state").display().to_string(),
        "relative to the file"
    );
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let folder = TempDir::new().unwrap();
    let file = folder.path().join("central.yaml");
    std::fs::write(&file, "log-format: json\n").unwrap();
    let output = osc_central()
        .arg("check-config")
        .env("OSC_CONFIG", &file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let effective: Value = serde_yaml::from_slice(&output.stdout).unwrap();
    assert_eq!(effective["log-format"], "json");
}

#[test]
fn an_unknown_key_in_the_config_file_fails_naming_key_and_file() {
    let folder = TempDir::new().unwrap();
    let file = folder.path().join("central.yaml");
    std::fs::write(&file, "listen: 127.0.0.1:1\nlisten_address: 0.0.0.0:1\n").unwrap();
    let output = osc_central()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen_address"), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
}

#[test]
fn serve_refuses_insecure_http_on_a_public_address() {
    let output = osc_central()
        .args(["serve", "--insecure-http", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}

/// Master keys for the tests of the binary: the base64 of 32 bytes each.
const MASTER_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const PREVIOUS_MASTER_KEY: &str = "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A=";

#[test]
fn check_config_masks_master_keys_and_refuses_a_bad_one_without_echoing_it() {
    let output = osc_central()
        .arg("check-config")
        .env("OSC_MASTER_KEY", MASTER_KEY)
        .env("OSC_PREVIOUS_MASTER_KEYS", PREVIOUS_MASTER_KEY)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    for key in [MASTER_KEY, PREVIOUS_MASTER_KEY] {
        assert!(!printed.contains(key), "{printed}");
    }
    let effective: Value = serde_yaml::from_slice(&output.stdout).unwrap();
    assert_eq!(effective["master-key"], "***");
    assert_eq!(
        effective["previous-master-keys"],
        serde_json::json!(["***"])
    );
    assert!(effective.get("master-key-file").is_none(), "{printed}");

    let bad = "c2hvcnQta2V5LW1hdGVyaWFs";
    let output = osc_central()
        .arg("check-config")
        .env("OSC_MASTER_KEY", bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--master-key: not 32 bytes long"),
        "{stderr}"
    );
    assert!(!stderr.contains(bad), "{stderr}");
}

#[test]
fn help_explains_every_option_and_its_variable() {
    let output = osc_central()
        .args(["serve", "--help"])
        .env("OSC_DATABASE_URL", "postgres://osc:hunter2@db/osc")
        .env("OSC_MASTER_KEY", MASTER_KEY)
        .env("OSC_PREVIOUS_MASTER_KEYS", PREVIOUS_MASTER_KEY)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        !help.contains("hunter2"),
        "the password stays out of --help"
    );
    for key in [MASTER_KEY, PREVIOUS_MASTER_KEY] {
        assert!(!help.contains(key), "a master key in --help:\n{help}");
    }
    for (flag, variable) in [
        ("--config", "OSC_CONFIG"),
        ("--data-dir", "OSC_DATA_DIR"),
        ("--database-url", "OSC_DATABASE_URL"),
        ("--listen", "OSC_LISTEN"),
        ("--tls-cert", "OSC_TLS_CERT"),
        ("--tls-key", "OSC_TLS_KEY"),
        ("--tls-san", "OSC_TLS_SAN"),
        ("--insecure-http", "OSC_INSECURE_HTTP"),
        ("--log-format", "OSC_LOG_FORMAT"),
        ("--log-level", "OSC_LOG_LEVEL"),
        ("--max-body-bytes", "OSC_MAX_BODY_BYTES"),
        ("--request-timeout", "OSC_REQUEST_TIMEOUT"),
        ("--shutdown-grace", "OSC_SHUTDOWN_GRACE"),
        ("--master-key-file", "OSC_MASTER_KEY_FILE"),
        ("--master-key", "OSC_MASTER_KEY"),
        ("--previous-master-keys", "OSC_PREVIOUS_MASTER_KEYS"),
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} in\n{help}"
        );
    }
}

/// The real binary: JSON logs name the CA and the address, a request is logged with its span
/// fields, and SIGTERM ends the process cleanly.
#[test]
fn the_binary_serves_logs_json_and_exits_cleanly_on_sigterm() {
    let data = TempDir::new().unwrap();
    let mut child = osc_central()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<Value>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if lines_tx.send(event).is_err() {
                break;
            }
        }
    });
    let next_event = |message: &str| loop {
        let event = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no {message:?} event"));
        if event["fields"]["message"] == message {
            break event;
        }
    };

    let created = next_event("created a private CA; clients must pin this certificate");
    let ca = PathBuf::from(created["fields"]["ca"].as_str().unwrap());
    assert_eq!(ca, data.path().join("tls/ca.crt"));
    let keys = next_event(
        "created the master key file that seals credential secrets; back it up apart from the \
         database",
    );
    let key_file = PathBuf::from(keys["fields"]["path"].as_str().unwrap());
    assert_eq!(key_file, data.path().join("master.key"));
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let serving = next_event("serving");
    let address = serving["fields"]["address"].as_str().unwrap().to_owned();
    assert!(address.starts_with("https://127.0.0.1:"), "{address}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let response = runtime
        .block_on(client(Some(&ca)).get(format!("{address}/healthz")).send())
        .unwrap();
    assert_eq!(response.status(), 200);
    let request = next_event("request");
    assert_eq!(request["fields"]["status"], 200);
    assert_eq!(request["span"]["method"], "GET");
    assert_eq!(request["span"]["path"], "/healthz");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    next_event("stopped");
    drop(lines);
    reader.join().unwrap();
}
