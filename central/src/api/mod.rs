//! The Kubernetes-compatible resource API of the `osiriscare.net/v1alpha1` group, as an axum
//! [`Router`] built by [`app`] from an [`AppState`].
//!
//! ```text
//! /api, /apis, /apis/osiriscare.net, /apis/osiriscare.net/v1alpha1, /version   discovery
//! /openapi/v3, /openapi/v3/apis/osiriscare.net/v1alpha1                        OpenAPI
//! /apis/osiriscare.net/v1alpha1/{plural}[/{name}[/status]]                      cluster-scoped
//! /apis/osiriscare.net/v1alpha1/namespaces/{site}/{plural}[/{name}[/status]]    namespaced
//! /apis/osiriscare.net/v1alpha1/{plural}                                        every site's
//! ```
//!
//! Every failure is a Kubernetes `Status` with the API server's reason and code
//! ([`ApiError`]). Reads answer with the object, a `Table` or `PartialObjectMetadata` as `Accept`
//! asks; every object a response carries has passed [`redact`]. Every route but `/osc/v1/enroll`
//! needs a bearer token ([`auth::authenticate`]), and every resource request is checked by
//! [`auth::authorize`]: what the caller may not see answers as if it did not exist.

mod discovery;
mod error;
mod evidence;
mod filter;
mod objects;
mod openapi;
mod patch;
mod request;
mod secrets;
mod table;
mod watch;

use std::time::Duration;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use chrono::Utc;
use osc_crds::{API_VERSION, AnyObject, Kind};
use osc_proto::api::{List, ListMeta};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::auth::{self, AuditWriter, Auth, Principal, Verb};
use crate::metrics::Metrics;
use crate::server::Services;
use crate::store::{ObjectList, Store, resource_version_of};

pub use error::ApiError;
pub use request::json_request;
pub use secrets::redact;
pub use watch::WatchSettings;

use request::{Query, Representation, ResourcePath};
use table::IncludeObject;

/// What the API's handlers share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Where objects live.
    pub store: Store,
    /// Request, watcher and store-size metrics.
    pub metrics: Metrics,
    /// Cancelled when the server starts shutting down; watches end on it.
    pub stopping: CancellationToken,
    /// Bookmark and wait intervals of watches.
    pub watch: WatchSettings,
    /// Bearer tokens: who is asking.
    pub auth: Auth,
    /// Where every mutating request is recorded.
    pub audit: AuditWriter,
    /// The evidence log and its Merkle tree.
    pub evidence: crate::evidence::EvidenceLog,
    /// The PEM of the private CA that central's certificate comes from, handed to enrolling
    /// appliances to pin (`None` with certificates from files, or plain HTTP).
    pub ca_certificate: Option<Arc<str>>,
}

impl AppState {
    /// The state for the services the serving layer opened, with default watch settings.
    pub fn new(services: Services) -> Self {
        Self {
            auth: Auth::new(services.store.clone()),
            audit: auth::audit_writer(services.store.clone()),
            evidence: services.evidence,
            store: services.store,
            metrics: services.metrics,
            stopping: services.stopping,
            watch: WatchSettings::default(),
            ca_certificate: services.ca_certificate.map(Arc::from),
        }
    }

    /// Reports the number of stored objects per kind to `osc_store_objects`. Best effort: a
    /// failure is logged and the gauges keep their last values, and a count that raced a local
    /// create or delete is dropped (regression: such a count used to undo the write's move).
    pub async fn refresh_metrics(&self) {
        let moves = self.metrics.store_object_moves();
        match self.store.stats().await {
            // A create or delete here moved the gauges while the count was read; the count may
            // not include it, so it waits for the next round rather than undo it.
            Ok(_) if self.metrics.store_object_moves() != moves => {}
            Ok(counts) => {
                for kind in Kind::ALL {
                    let count = counts.objects.get(kind.plural()).copied().unwrap_or(0);
                    self.metrics.set_store_objects(kind, count);
                }
            }
            Err(error) => warn!(%error, "cannot count the stored objects for /metrics"),
        }
    }
}

/// How often the store-size gauges are recounted from the store; between counts, creates and
/// deletes through this replica move them by one, and a recount picks up other replicas' writes.
const METRICS_REFRESH: Duration = Duration::from_secs(30);

/// The resource API and central's own endpoints, every route but enrollment behind
/// [`auth::authenticate`]. Must be called inside a Tokio runtime: it starts the task that keeps
/// the store-size gauges current until `state.stopping` is cancelled.
pub fn app(state: AppState) -> Router {
    tokio::spawn(refresh_metrics_until_stopped(state.clone()));
    let authenticated = Router::new()
        .route("/api", get(discovery::core))
        .route("/apis", get(discovery::groups))
        .route("/apis/osiriscare.net", get(discovery::group))
        .route("/apis/osiriscare.net/v1alpha1", get(discovery::resources))
        .route("/apis/osiriscare.net/v1alpha1/{*rest}", any(resource))
        .route("/version", get(discovery::version))
        .route("/openapi/v3", get(openapi::index))
        .route(
            "/openapi/v3/apis/osiriscare.net/v1alpha1",
            get(openapi::group_version),
        )
        .merge(auth::routes())
        .merge(evidence::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .merge(auth::public_routes())
        .merge(authenticated)
        .with_state(state)
}

/// Creates `object` exactly as a POST to its collection would, through the same admission
/// (defaults, validation, server-owned fields, the Site check), and returns it as stored; with
/// `dry_run`, checks without writing. This is how objects enter without HTTP, such as the
/// `--seed` manifests, so that there is one set of admission rules.
pub async fn create_object(
    state: &AppState,
    principal: &Principal,
    object: &AnyObject,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let path = ResourcePath {
        kind: object.kind(),
        namespace: object.namespace().map(str::to_owned),
        name: None,
        status: false,
    };
    objects::create(state, principal, &path, object.to_json(), dry_run).await
}

/// Replaces a stored object of `kind` with `object` (its namespace and name say which) as a PUT
/// would, through the same admission, and returns it as stored.
pub async fn replace_object(
    state: &AppState,
    principal: &Principal,
    kind: Kind,
    object: Value,
) -> Result<Value, ApiError> {
    let metadata = &object["metadata"];
    let path = ResourcePath {
        kind,
        namespace: metadata["namespace"].as_str().map(str::to_owned),
        name: metadata["name"].as_str().map(str::to_owned),
        status: false,
    };
    objects::replace(state, principal, &path, object, false).await
}

/// Refreshes the store-size gauges now and every [`METRICS_REFRESH`] until shutdown.
async fn refresh_metrics_until_stopped(state: AppState) {
    loop {
        state.refresh_metrics().await;
        tokio::select! {
            () = tokio::time::sleep(METRICS_REFRESH) => {}
            () = state.stopping.cancelled() => return,
        }
    }
}

/// Any path this server does not have.
async fn not_found() -> Response {
    ApiError::NoSuchPath.into_response()
}

/// A discovery or OpenAPI path asked with another method than GET.
async fn method_not_allowed(method: Method) -> Response {
    error::status_response(osc_proto::api::Status {
        code: 405,
        reason: Some(osc_proto::api::StatusReason::MethodNotAllowed),
        ..osc_proto::api::Status::bad_request(format!("{method} is not supported on this path"))
    })
}

/// Every request under `/apis/osiriscare.net/v1alpha1/`.
async fn resource(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(rest): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    serve_resource(
        &state,
        &principal,
        &rest,
        &method,
        &headers,
        raw.as_deref(),
        &body,
    )
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// Dispatches a resource request by method and path.
async fn serve_resource(
    state: &AppState,
    principal: &Principal,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let path = ResourcePath::parse(rest)?;
    let query = Query::parse(raw_query);
    let kind = path.kind;
    let verb = match *method {
        Method::GET => Verb::Read,
        _ if path.status => Verb::WriteStatus,
        _ => Verb::Write,
    };
    let tenancy = auth::authorize(
        state,
        principal,
        kind,
        path.namespace.as_deref(),
        path.name.as_deref(),
        verb,
    )
    .await?;
    match *method {
        Method::GET if query.flag("watch")? => {
            if path.name.is_some() {
                return Err(ApiError::bad_request(
                    "watch a collection with ?fieldSelector=metadata.name=<name> to follow one \
                     object",
                ));
            }
            let context = watch::WatchContext {
                store: &state.store,
                metrics: &state.metrics,
                stopping: &state.stopping,
                settings: state.watch,
                tenancy: &tenancy,
            };
            watch::serve(context, &path, &query, headers).await
        }
        Method::GET if path.name.is_none() => {
            let representation = Representation::negotiate(headers)?;
            let include = IncludeObject::from_query(&query)?;
            let list = objects::list(state, &path, &query, tenancy).await?;
            Ok(list_response(kind, list, representation, include))
        }
        Method::GET => {
            let representation = Representation::negotiate(headers)?;
            let include = IncludeObject::from_query(&query)?;
            let object = objects::get(state, &path).await?;
            Ok(get_response(kind, object, representation, include))
        }
        Method::POST => {
            let value = request::json_body(headers, body)?;
            let created = objects::create(state, principal, &path, value, query.dry_run()?).await?;
            Ok(object_response(kind, StatusCode::CREATED, created))
        }
        Method::PUT => {
            let value = request::json_body(headers, body)?;
            let replaced =
                objects::replace(state, principal, &path, value, query.dry_run()?).await?;
            Ok(object_response(kind, StatusCode::OK, replaced))
        }
        Method::PATCH => {
            let (code, patched) =
                patch::serve(state, principal, &path, &query, headers, body).await?;
            Ok((code, Json(patched)).into_response())
        }
        Method::DELETE => {
            let body = if body.is_empty() {
                None
            } else {
                Some(request::json_body(headers, body)?)
            };
            let options = objects::delete_options(body, &query)?;
            let last = objects::delete(state, &path, &options).await?;
            Ok(object_response(kind, StatusCode::OK, last))
        }
        _ => Err(ApiError::MethodNotAllowed {
            kind,
            action: "this method",
        }),
    }
}

/// A write's answer: the object, redacted.
fn object_response(kind: Kind, code: StatusCode, mut object: Value) -> Response {
    redact(kind, &mut object);
    (code, Json(object)).into_response()
}

/// A get's answer in the representation asked for.
fn get_response(
    kind: Kind,
    mut object: Value,
    representation: Representation,
    include: IncludeObject,
) -> Response {
    redact(kind, &mut object);
    match representation {
        Representation::Object => Json(object).into_response(),
        Representation::PartialObjectMetadata => {
            Json(table::partial_metadata(&object)).into_response()
        }
        Representation::Table => {
            let metadata = list_meta(resource_version_of(&object), None);
            Json(table::table(kind, &[object], metadata, include, Utc::now())).into_response()
        }
    }
}

/// A list's answer in the representation asked for.
fn list_response(
    kind: Kind,
    mut list: ObjectList,
    representation: Representation,
    include: IncludeObject,
) -> Response {
    for object in &mut list.items {
        redact(kind, object);
    }
    let metadata = list_meta(Some(list.resource_version), list.continue_token);
    match representation {
        Representation::Object => {
            Json(List::new(API_VERSION, kind.as_str(), metadata, list.items)).into_response()
        }
        Representation::PartialObjectMetadata => {
            Json(table::partial_metadata_list(&list.items, metadata)).into_response()
        }
        Representation::Table => Json(table::table(
            kind,
            &list.items,
            metadata,
            include,
            Utc::now(),
        ))
        .into_response(),
    }
}

/// List metadata with a resourceVersion and a continue token.
fn list_meta(resource_version: Option<i64>, continue_token: Option<String>) -> ListMeta {
    ListMeta {
        resource_version: resource_version.map(|version| version.to_string()),
        continue_token,
        remaining_item_count: None,
    }
}
