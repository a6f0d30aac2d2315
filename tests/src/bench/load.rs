//! The load: an HTTP client of the API, one client timing requests one at a time, many clients
//! at once, and list walks.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use backon::{ExponentialBuilder, Retryable as _};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use super::BenchError;
use super::report::{Contention, Latency, List, PagedList, Throughput};

/// The API group-version prefix of every resource path.
pub const GROUP_VERSION: &str = "/apis/osiriscare.net/v1alpha1";

/// How long a request (other than a watch) may take before the run fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The waits between conflicting attempts on one object: from 5 ms, doubling up to 1 s, each
/// jittered so that the clients spread out instead of colliding again in step. Unlike
/// client-go's `DefaultRetry` it never gives up, so that every client's updates are counted.
const CONFLICT_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(5))
    .with_max_delay(Duration::from_secs(1))
    .with_factor(2.0)
    .with_jitter()
    .without_max_times();

/// Untimed requests before a one-client phase, so that it measures a warm connection.
const WARM_UP: usize = 10;

/// An HTTP client of one server.
#[derive(Debug, Clone)]
pub struct Api {
    /// The connection pool (HTTP/1.1, one connection per request in flight).
    http: reqwest::Client,
    /// The bearer token it sends, if any.
    token: Option<String>,
    /// `http://127.0.0.1:port`.
    base: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// One client's object and what it writes next: each update sets the label `round` to a value
/// no other update used, so that every PUT changes the object (an unchanged object is not
/// written at all, which would flatter the figures).
#[derive(Debug, Clone)]
pub struct Writer {
    /// The path the object is PUT to.
    pub path: String,
    /// The object as last read or written, with its resourceVersion.
    pub object: Value,
    /// Distinguishes this client's label values from other clients'.
    pub tag: String,
    /// How many updates this client made.
    pub round: u64,
}

impl Api {
    /// A client of the server at `base`, sending the bearer `token` if given, whose requests
    /// fail after two minutes.
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Self::with(
            base,
            token,
            reqwest::Client::builder().timeout(REQUEST_TIMEOUT),
        )
    }

    /// A client of the same server, with the same token, for long-lived streams: no time limit.
    pub fn for_streams(&self) -> Self {
        Self::with(
            &self.base,
            self.token.as_deref(),
            reqwest::Client::builder(),
        )
    }

    /// A client built by `builder`.
    fn with(base: &str, token: Option<&str>, builder: reqwest::ClientBuilder) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}")
                    .parse()
                    .expect("a token is a valid header value"),
            );
        }
        Self {
            http: builder
                .default_headers(headers)
                .build()
                .expect("a client without TLS settings builds"),
            base: base.to_owned(),
            token: token.map(str::to_owned),
        }
    }

    /// `base` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request (with a JSON body, if given) and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, BenchError> {
        let failed = |source| BenchError::Http {
            method: method.to_string(),
            path: path.to_owned(),
            source,
        };
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).expect("JSON values serialize"));
        }
        let response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(failed)?;
        Ok(Reply { status, body })
    }

    /// Sends a request and checks its status; returns the body.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Result<Bytes, BenchError> {
        let reply = self.send(method.clone(), path, body).await?;
        if reply.status != expected {
            return Err(unexpected_status(
                &method,
                path,
                reply.status,
                expected,
                &reply.body,
            ));
        }
        Ok(reply.body)
    }

    /// GETs `path` expecting 200, and returns the response before reading its body (a watch).
    pub async fn open(&self, path: &str) -> Result<reqwest::Response, BenchError> {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .map_err(|source| BenchError::Http {
                method: "GET".to_owned(),
                path: path.to_owned(),
                source,
            })?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.bytes().await.unwrap_or_default();
            return Err(unexpected_status(&Method::GET, path, status, 200, &body));
        }
        Ok(response)
    }

    /// GET as JSON, expecting 200.
    pub async fn get(&self, path: &str) -> Result<Value, BenchError> {
        parse(path, &self.expect(Method::GET, path, None, 200).await?)
    }

    /// POST of `object` to its collection, expecting 201; returns it as stored.
    pub async fn create(&self, collection: &str, object: &Value) -> Result<Value, BenchError> {
        parse(
            collection,
            &self
                .expect(Method::POST, collection, Some(object), 201)
                .await?,
        )
    }

    /// PUTs the writer's next change, expecting 200, and keeps the stored object.
    pub async fn update(&self, mut writer: Writer) -> Result<Writer, BenchError> {
        let next = writer.next();
        let body = self
            .expect(Method::PUT, &writer.path, Some(&next), 200)
            .await?;
        writer.object = parse(&writer.path, &body)?;
        Ok(writer)
    }

    /// Makes the writer's next change as client-go's `retry.RetryOnConflict` loops do: each
    /// attempt reads the object, changes it and PUTs it back with its resourceVersion; a 409
    /// Conflict (counted in `conflicts`) waits a jittered, growing delay, then tries again.
    pub async fn update_retrying(
        &self,
        mut writer: Writer,
        conflicts: &AtomicU64,
    ) -> Result<Writer, BenchError> {
        let label = writer.next_label();
        let path = &writer.path;
        let stored = (|| async {
            let mut object = self.get(path).await?;
            object["metadata"]["labels"]["round"] = json!(label);
            parse(
                path,
                &self.expect(Method::PUT, path, Some(&object), 200).await?,
            )
        })
        .retry(CONFLICT_BACKOFF)
        .when(|error| matches!(error, BenchError::Status { status: 409, .. }))
        .notify(|_, _| {
            conflicts.fetch_add(1, Ordering::Relaxed);
        })
        .await?;
        writer.object = stored;
        Ok(writer)
    }
}

impl Writer {
    /// A writer of `object` at `path`.
    pub fn new(path: String, object: Value, tag: String) -> Self {
        Self {
            path,
            object,
            tag,
            round: 0,
        }
    }

    /// The object with this writer's next label value, keeping its resourceVersion (so that
    /// the write is conditional, as a controller's is).
    fn next(&mut self) -> Value {
        let mut next = self.object.clone();
        next["metadata"]["labels"]["round"] = json!(self.next_label());
        next
    }

    /// The label value of this writer's next update.
    fn next_label(&mut self) -> String {
        self.round += 1;
        format!("{}-{}", self.tag, self.round)
    }

    /// The `metadata.resourceVersion` of the object as last seen.
    pub fn resource_version(&self) -> Result<i64, BenchError> {
        resource_version(&self.path, &self.object)
    }
}

/// A Site, the namespace of the Hosts.
pub fn site(name: &str) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {"displayName": format!("Benchmark practice {name}"), "partner": "msp-bench"},
    })
}

/// A valid Linux Host of `site`: the object every phase reads and writes.
pub fn host(site: &str, name: &str) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Host",
        "metadata": {"name": name, "namespace": site, "labels": {"bench": "api", "round": "0"}},
        "spec": {
            "address": "10.0.0.5",
            "platform": "linux",
            "transport": {"type": "ssh", "port": 22, "credentialRef": "linux-ssh"},
        },
    })
}

/// The collection of the Hosts of `site`.
pub fn hosts_of(site: &str) -> String {
    format!("{GROUP_VERSION}/namespaces/{site}/hosts")
}

/// Times `samples` calls of `operation` made one after the other (after a few untimed ones).
pub async fn sequential<S, F, Fut>(
    mut state: S,
    samples: usize,
    mut operation: F,
) -> Result<(Latency, S), BenchError>
where
    F: FnMut(S) -> Fut,
    Fut: Future<Output = Result<S, BenchError>>,
{
    for _ in 0..WARM_UP {
        state = operation(state).await?;
    }
    let mut durations = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        state = operation(state).await?;
        durations.push(started.elapsed());
    }
    Ok((Latency::of(&mut durations), state))
}

/// Runs one client per state, all at once: each makes one untimed `operation` (opening its
/// connection), then all start together and each makes `per_client` timed ones, each waiting
/// for the previous. Returns the throughput and the states.
pub async fn concurrent<S, F, Fut>(
    states: Vec<S>,
    per_client: usize,
    operation: F,
) -> Result<(Throughput, Vec<S>), BenchError>
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<S, BenchError>> + Send + 'static,
{
    let clients = states.len();
    let start = Arc::new(Barrier::new(clients + 1));
    let tasks: Vec<_> = states
        .into_iter()
        .map(|state| {
            let operation = operation.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                // A client that fails still reaches the barrier, so that the others start.
                let warm = operation(state).await;
                start.wait().await;
                let mut state = warm?;
                let mut durations = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let started = Instant::now();
                    state = operation(state).await?;
                    durations.push(started.elapsed());
                }
                Ok::<_, BenchError>((durations, state))
            })
        })
        .collect();
    start.wait().await;
    let started = Instant::now();
    let mut durations = Vec::with_capacity(clients * per_client);
    let mut states = Vec::with_capacity(clients);
    for task in tasks {
        let (client_durations, state) = match task.await {
            Ok(result) => result?,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        durations.extend(client_durations);
        states.push(state);
    }
    let elapsed = started.elapsed();
    Ok((Throughput::of(clients, elapsed, &mut durations), states))
}

/// Many clients updating one object at `path` (which `api` serves), retrying on conflicts.
pub async fn contended_updates(
    api: &Api,
    path: &str,
    clients: usize,
    per_client: usize,
) -> Result<Contention, BenchError> {
    let object = api.get(path).await?;
    let writers = (0..clients)
        .map(|client| Writer::new(path.to_owned(), object.clone(), format!("c{client}")))
        .collect();
    let conflicts = Arc::new(AtomicU64::new(0));
    let (throughput, _) = {
        let api = api.clone();
        let conflicts = Arc::clone(&conflicts);
        concurrent(writers, per_client, move |writer| {
            let api = api.clone();
            let conflicts = Arc::clone(&conflicts);
            async move { api.update_retrying(writer, &conflicts).await }
        })
        .await?
    };
    Ok(Contention {
        throughput,
        conflicts: conflicts.load(Ordering::Relaxed),
    })
}

/// LISTs `collection` (of `objects` items) in one response, `repeats` times.
pub async fn list_all(
    api: &Api,
    collection: &str,
    objects: usize,
    repeats: usize,
) -> Result<List, BenchError> {
    let mut durations = Vec::with_capacity(repeats);
    let mut bytes = 0;
    for _ in 0..repeats {
        let started = Instant::now();
        let body = api.expect(Method::GET, collection, None, 200).await?;
        durations.push(started.elapsed());
        bytes = body.len();
        check_items(collection, &parse(collection, &body)?, objects)?;
    }
    Ok(List {
        objects,
        bytes,
        latency: Latency::of(&mut durations),
    })
}

/// LISTs `collection` (of `objects` items) page by page with `limit=page_size`, `repeats`
/// times.
pub async fn list_paged(
    api: &Api,
    collection: &str,
    objects: usize,
    page_size: u64,
    repeats: usize,
) -> Result<PagedList, BenchError> {
    let mut walks = Vec::with_capacity(repeats);
    let mut pages = Vec::new();
    let mut pages_per_walk = 0;
    for _ in 0..repeats {
        let walk_started = Instant::now();
        let mut seen = 0;
        let mut walk_pages = 0;
        let mut token: Option<String> = None;
        loop {
            let path = match &token {
                None => format!("{collection}?limit={page_size}"),
                Some(token) => format!("{collection}?limit={page_size}&continue={token}"),
            };
            let started = Instant::now();
            let body = api.expect(Method::GET, &path, None, 200).await?;
            pages.push(started.elapsed());
            walk_pages += 1;
            let page = parse(&path, &body)?;
            seen += items(&path, &page)?.len();
            token = page["metadata"]["continue"]
                .as_str()
                .filter(|token| !token.is_empty())
                .map(|token| url::form_urlencoded::byte_serialize(token.as_bytes()).collect());
            if token.is_none() {
                break;
            }
        }
        walks.push(walk_started.elapsed());
        pages_per_walk = walk_pages;
        if seen != objects {
            return Err(BenchError::Unexpected {
                what: format!("paging through {collection} found {seen} objects, not {objects}"),
            });
        }
    }
    Ok(PagedList {
        page_size,
        pages: pages_per_walk,
        walk: Latency::of(&mut walks),
        page: Latency::of(&mut pages),
    })
}

/// The error of an answer with another status than `expected`, with the start of its body.
fn unexpected_status(
    method: &Method,
    path: &str,
    status: u16,
    expected: u16,
    body: &[u8],
) -> BenchError {
    BenchError::Status {
        method: method.to_string(),
        path: path.to_owned(),
        status,
        expected,
        body: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
    }
}

/// Parses an answer of `path` as JSON.
pub fn parse(path: &str, body: &[u8]) -> Result<Value, BenchError> {
    serde_json::from_slice(body).map_err(|error| BenchError::Unexpected {
        what: format!("the answer of {path} is not JSON: {error}"),
    })
}

/// The `metadata.resourceVersion` of an object answered at `path`.
pub fn resource_version(path: &str, object: &Value) -> Result<i64, BenchError> {
    osc_central::store::resource_version_of(object).ok_or_else(|| BenchError::Unexpected {
        what: format!("the object answered at {path} has no numeric metadata.resourceVersion"),
    })
}

/// The items of a list answered at `path`.
fn items<'a>(path: &str, list: &'a Value) -> Result<&'a Vec<Value>, BenchError> {
    list["items"]
        .as_array()
        .ok_or_else(|| BenchError::Unexpected {
            what: format!("the list answered at {path} has no items array"),
        })
}

/// Checks that a list answered at `path` has `expected` items.
fn check_items(path: &str, list: &Value, expected: usize) -> Result<(), BenchError> {
    let found = items(path, list)?.len();
    if found == expected {
        Ok(())
    } else {
        Err(BenchError::Unexpected {
            what: format!("the list of {path} has {found} items, not {expected}"),
        })
    }
}
