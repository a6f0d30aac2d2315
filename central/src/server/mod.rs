//! Serving the API: the accept loop (TLS or loopback-only plain HTTP, HTTP/1.1 and HTTP/2), the
//! layers every request passes (log span, metrics, timeout, body limit), the built-in endpoints
//! (`/healthz`, `/metrics`) and graceful shutdown.
//!
//! The resource API is a plain [`Router`] built from [`Services`]; this module wraps it and never
//! looks inside. Shutdown happens in three steps: stop accepting and cancel
//! [`Services::stopping`] (watch streams select on it and end), let in-flight requests finish for
//! up to the grace period, then close whatever is left.
//!
//! ```no_run
//! # async fn demo(config: osc_central::config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! use osc_central::server::{self, Server};
//!
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let server = Server::new(&config, listener)?;
//! let api = axum::Router::new(); // the resource API, given server.metrics() and server.stopping()
//! server.serve(api, server::termination_signal()?).await;
//! # Ok(()) }
//! ```

pub mod request_info;

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use osc_proto::api::{Status, StatusReason};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{Config, ConfigError, Database, Limits, MasterKeys, SQLITE_FILE, Transport};
use crate::evidence::EvidenceLog;
use crate::keyring::{Keyring, KeyringError};
use crate::metrics::{self, Metrics};
use crate::seed::{self, SeedError};
use crate::store::{Store, StoreError, StoreOptions};
use crate::tls::{self, TlsError};

use self::request_info::is_watch;

/// What the serving layer hands the resource API: build the API's state from it.
#[derive(Clone, Debug)]
pub struct Services {
    /// The opened store.
    pub store: Store,
    /// The metrics handle: count watchers with [`Metrics::watcher`], report store sizes with
    /// [`Metrics::set_store_objects`].
    pub metrics: Metrics,
    /// Cancelled when shutdown starts; long-lived responses (watches) select on
    /// `stopping.cancelled()` and end their stream, since in-flight requests are otherwise awaited.
    pub stopping: CancellationToken,
    /// The master keys that seal credential secrets.
    pub keyring: Keyring,
    /// The PEM of the private CA behind the server's certificate, for enrolling appliances to
    /// pin (`None` with certificates from files, or plain HTTP).
    pub ca_certificate: Option<String>,
    /// The evidence log on `store`, with its writer task and Merkle tree.
    pub evidence: EvidenceLog,
}

impl Services {
    /// Opens what the API needs as `serve` does, for the server on `config`: the master keys
    /// (finishing a rotation a stop interrupted), the store (writing the bootstrap admin token
    /// into an empty one) and the evidence log with its key.
    pub async fn open(config: &Config, server: &Server) -> Result<Self, ServeError> {
        let store = open_store(config).await?;
        Self::assemble(config, server, store).await
    }

    /// As [`Services::open`], on a store the caller opened (with its own options).
    pub async fn assemble(
        config: &Config,
        server: &Server,
        store: Store,
    ) -> Result<Self, ServeError> {
        let keyring = open_keyring(config)?;
        if let Some(path) = crate::auth::Auth::new(store.clone())
            .bootstrap(&config.data_dir)
            .await?
        {
            info!(path = %path.display(), "wrote the bootstrap admin token (mode 0600); use it to create the other tokens");
        }
        let log_key = crate::evidence::load_or_create_key(&config.data_dir)?;
        let services = Self {
            evidence: EvidenceLog::start(store.clone(), log_key),
            store,
            metrics: server.metrics().clone(),
            stopping: server.stopping(),
            keyring,
            ca_certificate: server.ca_certificate().map(str::to_owned),
        };
        crate::api::finish_rotation(&services).await;
        Ok(services)
    }
}

/// A listener with its TLS, limits and metrics, ready to serve a router.
pub struct Server {
    /// Where connections come from.
    listener: TcpListener,
    /// The address `listener` is bound to.
    local_addr: SocketAddr,
    /// The handshake, or `None` for plain HTTP on loopback.
    tls: Option<TlsAcceptor>,
    /// Request counters and the `/metrics` registry.
    metrics: Metrics,
    /// Cancelled when shutdown starts.
    stopping: CancellationToken,
    /// Body size and time limits.
    limits: Limits,
    /// How long in-flight requests get once shutdown starts.
    grace: Duration,
    /// The PEM of the private CA, when the certificate comes from it.
    ca_certificate: Option<String>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration does not fit the listener (plain HTTP on a non-loopback address).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data folder could not be created or secured.
    #[error("cannot prepare the data folder {path}: {source}; check its owner and permissions")]
    DataDir {
        /// The folder.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The listener's address could not be read.
    #[error("cannot read the listening address: {source}")]
    Listener {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The master keys could not be loaded or created.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The bootstrap admin token could not be created.
    #[error(transparent)]
    Bootstrap(#[from] crate::auth::BootstrapError),
    /// The `--seed` manifests have problems, or could not be stored.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The evidence log's key could not be read or created.
    #[error(transparent)]
    EvidenceKey(#[from] crate::evidence::LogError),
    /// The store could not be opened.
    #[error("cannot open the {what}: {source}")]
    Store {
        /// Which database, with any password masked.
        what: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
}

/// Runs Central Command on `listener` until `shutdown` completes: loads and checks the `--seed`
/// manifests (before anything else, so that a bad one stops the start at once), prepares the data
/// folder and TLS, loads the master keys, opens the store, finishes any master-key rotation
/// (secrets still sealed under a previous key are re-sealed), creates the seed's missing objects, starts the compliance
/// roll-up beside the API (it ends with shutdown), builds the resource API with `api` and serves
/// it.
pub async fn run<A>(
    config: Config,
    listener: TcpListener,
    api: A,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError>
where
    A: FnOnce(Services) -> Router,
{
    let seed = (!config.seed.is_empty())
        .then(|| seed::load(&config.seed))
        .transpose()?;
    let server = Server::new(&config, listener)?;
    let services = Services::open(&config, &server).await?;
    if let Some(seed) = seed {
        seed::apply(&services, seed).await?;
    }
    tokio::spawn(crate::reconcile::run_compliance(
        services.store.clone(),
        crate::reconcile::SystemClock,
        Default::default(),
        server.stopping().cancelled_owned(),
    ));
    server.serve(api(services), shutdown).await;
    Ok(())
}

/// Loads the master keys the configuration names: from the configuration itself, or from the key
/// file, which is created (with one new key, mode 0600) on the first start.
pub fn open_keyring(config: &Config) -> Result<Keyring, ServeError> {
    match &config.master_keys {
        MasterKeys::Configured(keys) => Ok(Keyring::from_configuration(keys.clone())),
        MasterKeys::File(path) => {
            let (keyring, created) = Keyring::open_file(path)?;
            if created {
                info!(
                    path = %path.display(),
                    "created the master key file that seals credential secrets; back it up apart \
                     from the database"
                );
            }
            Ok(keyring)
        }
    }
}

/// Opens the store the configuration names: PostgreSQL, or SQLite in the data folder.
pub async fn open_store(config: &Config) -> Result<Store, ServeError> {
    let options = StoreOptions::default();
    match &config.database {
        Database::Sqlite => {
            let path = config.data_dir.join(SQLITE_FILE);
            Store::open_sqlite(&path, options)
                .await
                .map_err(|source| ServeError::Store {
                    what: format!("SQLite database {}", path.display()),
                    source,
                })
        }
        Database::Postgres(url) => Store::connect_postgres(url.expose(), options)
            .await
            .map_err(|source| ServeError::Store {
                what: format!("PostgreSQL database {url}"),
                source,
            }),
    }
}

/// Completes on the first SIGTERM or SIGINT; the handlers are installed before it returns, so a
/// signal that arrives before the future is polled is not lost.
pub fn termination_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        info!(signal = name, "shutting down");
    })
}

/// Renders a Kubernetes `Status` as the response, with its `code` as the HTTP status.
pub fn status_response(status: Status) -> Response {
    let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(status)).into_response()
}

/// Creates the data folder with mode 0700 when missing, and warns when an existing one is open to
/// other users: it holds the CA key and, with SQLite, every object.
pub fn prepare_data_dir(path: &Path) -> Result<(), ServeError> {
    let failed = |source| ServeError::DataDir {
        path: path.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(failed)?;
    let mode = std::fs::metadata(path)
        .map_err(failed)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "the data folder is readable by other users; `chmod 700` it"
        );
    }
    Ok(())
}

impl Server {
    /// Prepares the data folder and TLS for serving on `listener` as `config` says.
    ///
    /// With generated TLS, the first call creates the CA in `<data-dir>/tls/` and later calls reuse
    /// it. Plain HTTP is refused here too unless `listener` is bound to a loopback address, so no
    /// caller can serve it on the network by accident.
    pub fn new(config: &Config, listener: TcpListener) -> Result<Self, ServeError> {
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServeError::Listener { source })?;
        prepare_data_dir(&config.data_dir)?;
        let tls = match &config.transport {
            Transport::InsecureHttp if !local_addr.ip().is_loopback() => {
                return Err(ConfigError::InsecureNotLoopback { listen: local_addr }.into());
            }
            Transport::InsecureHttp => None,
            Transport::TlsFiles { cert, key } => Some(tls::from_files(cert, key)?),
            Transport::TlsGenerated { extra_sans } => {
                Some(tls::generated(&config.data_dir, local_addr, extra_sans)?)
            }
        };
        let mut ca_certificate = None;
        if let Some(tls::ServerTls {
            ca_cert: Some(ca),
            ca_created,
            ..
        }) = &tls
        {
            ca_certificate =
                Some(
                    std::fs::read_to_string(ca).map_err(|source| ServeError::DataDir {
                        path: ca.clone(),
                        source,
                    })?,
                );
            if *ca_created {
                info!(ca = %ca.display(), "created a private CA; clients must pin this certificate");
            } else {
                info!(ca = %ca.display(), "serving a certificate from the private CA; clients pin this certificate");
            }
        }
        Ok(Self {
            listener,
            local_addr,
            tls: tls.map(|tls| TlsAcceptor::from(tls.config)),
            metrics: Metrics::new(),
            stopping: CancellationToken::new(),
            limits: config.limits,
            grace: config.shutdown_grace,
            ca_certificate,
        })
    }

    /// The PEM of the private CA the server's certificate comes from, if it does.
    pub fn ca_certificate(&self) -> Option<&str> {
        self.ca_certificate.as_deref()
    }

    /// The address the server listens on (useful when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The metrics handle shared with the API.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A token cancelled when shutdown starts.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Serves `api` (with the built-in endpoints and layers around it) until `shutdown` completes,
    /// then shuts down gracefully. Failed handshakes and broken connections are logged and never
    /// stop the server.
    pub async fn serve(self, api: Router, shutdown: impl Future<Output = ()>) {
        let app = self.app(api);
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        info!(address = %format_args!("{scheme}://{}", self.local_addr()), "serving");
        let Server {
            listener,
            tls,
            stopping,
            grace,
            ..
        } = self;

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(HTTP2_KEEP_ALIVE);
        let connection = Arc::new(ConnectionContext {
            builder,
            app,
            tls,
            stopping: stopping.clone(),
            closing: CancellationToken::new(),
        });

        let connections = TaskTracker::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Responses go out in more than one write (TLS records, headers and
                        // body): with Nagle's algorithm on, each waited for the client's delayed
                        // ACK, about 40 ms per request on a connection used one at a time.
                        if let Err(error) = stream.set_nodelay(true) {
                            warn!(%error, %peer, "cannot set TCP_NODELAY");
                        }
                        connections.spawn(Arc::clone(&connection).handle(stream, peer));
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning, as
                        // the condition usually clears when connections close.
                        warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }

        drop(listener);
        stopping.cancel();
        connections.close();
        info!(
            connections = connections.len(),
            grace = %osc_crds::Duration::from_std(grace),
            "stopped accepting; finishing in-flight requests"
        );
        if tokio::time::timeout(grace, connections.wait())
            .await
            .is_err()
        {
            warn!(
                connections = connections.len(),
                "grace period over; closing the remaining connections"
            );
            connection.closing.cancel();
            connections.wait().await;
        }
        info!("stopped");
    }

    /// The router actually served: built-ins merged with `api`, inside the common layers.
    fn app(&self, api: Router) -> Router {
        let max_body = self.limits.max_body_bytes;
        let builtins = Router::new()
            .route("/metrics", get(metrics::serve_metrics))
            .with_state(self.metrics.clone())
            .route("/healthz", get(healthz));
        // Layers run outside-in from the last added: the log span sees everything, metrics see
        // the 413s and 504s, and the timeout also bounds reading the body.
        builtins
            .merge(api)
            .layer(DefaultBodyLimit::max(
                usize::try_from(max_body).unwrap_or(usize::MAX),
            ))
            .layer(middleware::from_fn_with_state(max_body, limit_body))
            .layer(middleware::from_fn_with_state(
                self.limits.request_timeout,
                limit_time,
            ))
            .layer(middleware::from_fn_with_state(
                self.metrics.clone(),
                metrics::track_requests,
            ))
            .layer(middleware::from_fn(trace))
    }
}

/// How long a client may take to send a request's headers (slow-loris protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an HTTP/2 connection is pinged, so that a vanished client's watches are noticed.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Pause after a failed `accept`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection task needs, shared.
struct ConnectionContext {
    /// HTTP/1.1 and HTTP/2 settings.
    builder: auto::Builder<TokioExecutor>,
    /// The served router.
    app: Router,
    /// The handshake, or `None` for plain HTTP.
    tls: Option<TlsAcceptor>,
    /// Cancelled when shutdown starts: connections finish their requests and close.
    stopping: CancellationToken,
    /// Cancelled when the grace period is over: connections close at once.
    closing: CancellationToken,
}

impl ConnectionContext {
    /// Serves one accepted connection until it ends.
    async fn handle(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let Some(acceptor) = &self.tls else {
            return self.serve_http(stream, peer).await;
        };
        let handshake = tokio::select! {
            result = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => result,
            () = self.stopping.cancelled() => return,
        };
        match handshake {
            Ok(Ok(stream)) => self.serve_http(stream, peer).await,
            // Scanners, clients that do not trust the CA and plain HTTP sent to the TLS port all
            // end here; they are the client's problem, so they are logged at debug only.
            Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => debug!(%peer, "TLS handshake timed out"),
        }
    }

    /// Serves HTTP on an established (possibly TLS) stream.
    async fn serve_http<I>(&self, io: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Handlers can read the client's address with the `ConnectInfo<SocketAddr>` extractor.
        let service =
            self.app
                .clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection = self
            .builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = self.stopping.cancelled() => {
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    result = connection.as_mut() => result,
                    () = self.closing.cancelled() => return,
                }
            }
        };
        if let Err(error) = result {
            debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// `/healthz`: the process is up and serving (liveness).
async fn healthz() -> &'static str {
    "ok"
}

/// Opens a span per request (method, path, client) and logs its outcome (status, latency).
async fn trace(request: Request, next: Next) -> Response {
    let span = info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        peer = tracing::field::Empty,
    );
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        span.record("peer", tracing::field::display(peer));
    }
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        warn!(parent: &span, status, latency_ms, "request failed");
    } else {
        info!(parent: &span, status, latency_ms, "request");
    }
    response
}

/// Refuses bodies over `max` bytes with a 413 `Status`, and hands the handler the body buffered.
///
/// A declared `Content-Length` over the limit is refused before reading anything; a chunked body
/// is read up to the limit. Handlers read whole bodies anyway, so buffering here costs nothing
/// and lets the 413 be a proper `Status` whatever extractor the handler uses.
async fn limit_body(State(max): State<u64>, request: Request, next: Next) -> Response {
    let too_large = || {
        status_response(Status::request_entity_too_large(format!(
            "the request body is larger than the server accepts ({max} bytes)"
        )))
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            next.run(Request::from_parts(parts, Body::from(collected.to_bytes())))
                .await
        }
        Err(error) if error.is::<LengthLimitError>() => too_large(),
        Err(error) => status_response(Status::bad_request(format!(
            "cannot read the request body: {error}"
        ))),
    }
}

/// Answers 504 with a `Timeout` status when a request takes longer than `limit`; watches, which
/// are meant to stay open, are exempt.
async fn limit_time(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if is_watch(request.uri().query()) {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => status_response(timeout_status(limit)),
    }
}

/// The `Status` of a request that ran out of time, as the API server words it.
fn timeout_status(limit: Duration) -> Status {
    Status {
        code: 504,
        reason: Some(StatusReason::Timeout),
        message: format!(
            "Timeout: request did not complete within the server's limit of {}",
            osc_crds::Duration::from_std(limit)
        ),
        ..Status::service_unavailable(String::new())
    }
}
