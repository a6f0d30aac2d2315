//! Prometheus metrics: the registry behind a cheap [`Metrics`] handle, the middleware that counts
//! and times every request, and the hooks the API and the store report through.
//!
//! Label values come only from closed sets (Kubernetes verbs, the group's resource plurals, HTTP
//! status codes), so no client can grow the number of series by sending odd paths.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use osc_crds::Kind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::server::request_info::RequestInfo;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A handle on the process's metrics; clones share one registry. The API's state carries one.
#[derive(Clone)]
pub struct Metrics {
    /// What the clones share.
    inner: Arc<Inner>,
}

/// Keeps a watch counted in `osc_watchers` for as long as it lives; hold it in the watch stream
/// so that every way a watch can end (shutdown, client gone, error) uncounts it.
#[must_use = "the watcher is uncounted as soon as the guard is dropped"]
pub struct WatcherGuard {
    /// The gauge of the watch's resource.
    gauge: Gauge,
}

impl Metrics {
    /// A registry with every metric registered and no samples yet.
    pub fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<EndpointLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                // 5 ms to about 41 s: from a cached get to a large list on a slow disk.
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            });
        let watchers = Family::<ResourceLabels, Gauge>::default();
        let store_objects = Family::<ResourceLabels, Gauge>::default();

        let mut registry = Registry::default();
        registry.register(
            "osc_http_requests",
            "HTTP requests answered, by Kubernetes verb, resource and status code",
            requests.clone(),
        );
        registry.register_with_unit(
            "osc_http_request_duration",
            "Time from a request's arrival to its response head, by verb and resource (a watch's \
             is its set-up time)",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            "osc_watchers",
            "Watch streams open now, by resource",
            watchers.clone(),
        );
        registry.register(
            "osc_store_objects",
            "Objects stored, by resource, as last reported by the store",
            store_objects.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                durations,
                watchers,
                store_objects,
                local_moves: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Counts a new watch on `resource` until the returned guard is dropped.
    pub fn watcher(&self, resource: Kind) -> WatcherGuard {
        let gauge = self
            .inner
            .watchers
            .get_or_create_owned(&ResourceLabels::of(resource));
        gauge.inc();
        WatcherGuard { gauge }
    }

    /// Records that the store holds `count` objects of `resource`.
    pub fn set_store_objects(&self, resource: Kind, count: u64) {
        self.inner
            .store_objects
            .get_or_create(&ResourceLabels::of(resource))
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Records that this replica just stored (`delta` 1) or deleted (`delta` -1) one object of
    /// `resource`, without recounting the store on the request path; the periodic full count
    /// ([`Metrics::set_store_objects`]) corrects for other replicas' writes.
    pub fn add_store_objects(&self, resource: Kind, delta: i64) {
        self.inner
            .local_moves
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner
            .store_objects
            .get_or_create(&ResourceLabels::of(resource))
            .inc_by(delta);
    }

    /// How many local creates and deletes have moved the store-size gauges so far: a recount
    /// read before and after its count, and applied only when this did not change, never
    /// overwrites a write it did not see.
    pub fn store_object_moves(&self) -> u64 {
        self.inner
            .local_moves
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts one answered request and its latency.
    pub fn observe_request(&self, info: RequestInfo, code: u16, latency: Duration) {
        let verb = info.verb.as_str();
        let resource = info.resource_label();
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                verb,
                resource,
                code,
            })
            .inc();
        self.inner
            .durations
            .get_or_create(&EndpointLabels { verb, resource })
            .observe(latency.as_secs_f64());
    }

    /// Every metric in the OpenMetrics text format, which Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Middleware that counts and times every request by [`RequestInfo`] and status code.
pub async fn track_requests(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let info = RequestInfo::of(request.method(), request.uri());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(info, response.status().as_u16(), started.elapsed());
    response
}

/// The `/metrics` endpoint.
pub async fn serve_metrics(State(metrics): State<Metrics>) -> Response {
    ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], metrics.render()).into_response()
}

/// The registry and the metrics in it (the families are handles into the registry).
struct Inner {
    /// Encodes everything for `/metrics`.
    registry: Registry,
    /// `osc_http_requests_total`.
    requests: Family<RequestLabels, Counter>,
    /// `osc_http_request_duration_seconds`.
    durations: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// `osc_watchers`.
    watchers: Family<ResourceLabels, Gauge>,
    /// `osc_store_objects`.
    store_objects: Family<ResourceLabels, Gauge>,
    /// How many times [`Metrics::add_store_objects`] moved the gauges, so that a recount that
    /// raced a local write can tell and leave the gauges alone.
    local_moves: std::sync::atomic::AtomicU64,
}

/// Labels of `osc_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// Kubernetes verb.
    verb: &'static str,
    /// Resource plural or `other`.
    resource: &'static str,
    /// HTTP status code.
    code: u16,
}

/// Labels of `osc_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    /// Kubernetes verb.
    verb: &'static str,
    /// Resource plural or `other`.
    resource: &'static str,
}

/// Labels of the per-resource gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    /// Resource plural.
    resource: &'static str,
}

impl ResourceLabels {
    fn of(kind: Kind) -> Self {
        Self {
            resource: kind.plural(),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    /// The value of the sample whose name and labels are exactly `series`, if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    }

    #[test]
    fn requests_are_counted_by_verb_resource_and_code() {
        let metrics = Metrics::new();
        let list = RequestInfo::of(
            &Method::GET,
            &"/apis/osiriscare.net/v1alpha1/sites".parse().unwrap(),
        );
        metrics.observe_request(list, 200, Duration::from_millis(3));
        metrics.observe_request(list, 200, Duration::from_millis(30));
        metrics.observe_request(list, 500, Duration::from_millis(3));
        let text = metrics.render();
        assert_eq!(
            sample(
                &text,
                r#"osc_http_requests_total{verb="list",resource="sites",code="200"}"#
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"osc_http_requests_total{verb="list",resource="sites",code="500"}"#
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"osc_http_request_duration_seconds_count{verb="list",resource="sites"}"#
            ),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"osc_http_request_duration_seconds_bucket{le="0.005",verb="list",resource="sites"}"#
            ),
            Some(2.0),
            "{text}"
        );
    }

    #[test]
    fn a_watcher_is_counted_until_its_guard_drops() {
        let metrics = Metrics::new();
        let first = metrics.watcher(Kind::Host);
        let second = metrics.watcher(Kind::Host);
        let series = r#"osc_watchers{resource="hosts"}"#;
        assert_eq!(sample(&metrics.render(), series), Some(2.0));
        drop(first);
        assert_eq!(sample(&metrics.render(), series), Some(1.0));
        drop(second);
        assert_eq!(sample(&metrics.render(), series), Some(0.0));
    }

    #[test]
    fn store_sizes_show_the_last_value_set() {
        let metrics = Metrics::new();
        metrics.set_store_objects(Kind::Site, 4);
        metrics.set_store_objects(Kind::Site, 7);
        let text = metrics.render();
        assert_eq!(
            sample(&text, r#"osc_store_objects{resource="sites"}"#),
            Some(7.0),
            "{text}"
        );
    }

    #[test]
    fn clones_share_one_registry() {
        let metrics = Metrics::new();
        metrics.clone().set_store_objects(Kind::Rollout, 1);
        assert_eq!(
            sample(
                &metrics.render(),
                r#"osc_store_objects{resource="rollouts"}"#
            ),
            Some(1.0)
        );
    }
}
