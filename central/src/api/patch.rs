//! PATCH of an object or of its `/status`: JSON merge patch (RFC 7396), JSON patch (RFC 6902)
//! and server-side apply, chosen by `Content-Type` as the API server does.
//!
//! A patch is applied to the object as a reader sees it (credential secrets redacted, so that a
//! JSON patch `test` can never probe a secret), and the result goes through the same admission
//! as a PUT ([`objects::replace`]): decoding, defaults, validation (422), generation, status
//! isolation, finalizers. Concurrency, as in Kubernetes:
//! - a patch that carries `metadata.resourceVersion` is a precondition: a stale one is a 409;
//! - any other patch is re-applied to the fresh object when a write slips in between the read and
//!   the write, so that concurrent patches never lose one another's changes.
//!
//! `kubectl apply` (client side) sends merge patches for our kinds: it sends a strategic merge
//! patch only to resources whose OpenAPI `PATCH` operation lists
//! `application/strategic-merge-patch+json` (built-ins), which ours never do. Strategic merge
//! patch is therefore answered with 415, as the API server answers it for custom resources.
//!
//! Server-side apply (`application/apply-patch+yaml`, what `kubectl apply --server-side` sends)
//! is decided in [`apply`]; see there for the subset implemented.

mod apply;

use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use backon::{ExponentialBuilder, Retryable as _};
use chrono::Utc;
use osc_crds::{API_VERSION, FieldError, FieldErrorReason, Kind};
use osc_proto::api::OPTIMISTIC_LOCK_MESSAGE;
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::objects;
use super::request::{Query, ResourcePath, decode_object};
use super::secrets::{keep_stored_secret, redact};
use crate::auth::Principal;
use crate::store::resource_version_of;

use apply::Conflicts;

/// The patch formats the API reads, as its 415 lists them.
pub const ACCEPTED_PATCH_TYPES: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

/// The most operations a JSON patch may have, as in the API server.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Patch formats, by their `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`: RFC 6902 operations.
    Json,
    /// `application/merge-patch+json`: RFC 7396, a partial object where `null` deletes.
    Merge,
    /// `application/apply-patch+yaml`: server-side apply of a whole configuration.
    Apply,
}

impl PatchType {
    /// The patch type a `Content-Type` names (parameters such as `charset` ignored); 415 for
    /// anything else, strategic merge patch included.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .map(|value| value.to_str().unwrap_or("(not text)"))
            .unwrap_or("none");
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/apply-patch+yaml" => Ok(Self::Apply),
            _ => Err(ApiError::UnsupportedMediaType {
                content_type: content_type.to_owned(),
                accepted: ACCEPTED_PATCH_TYPES,
            }),
        }
    }
}

/// Serves `PATCH` on an object or its `/status`: the patched object as stored, redacted, with
/// 201 when a server-side apply created it.
pub async fn serve(
    state: &AppState,
    principal: &Principal,
    path: &ResourcePath,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let patch_type = PatchType::from_headers(headers)?;
    let name = path.require_name("patch")?.to_owned();
    let dry_run = query.dry_run()?;
    let (code, mut object) = match patch_type {
        PatchType::Json | PatchType::Merge => {
            let patch = Patch::parse(patch_type, body)?;
            let object =
                with_retries(|| patch_once(state, principal, path, &name, &patch, dry_run)).await?;
            (StatusCode::OK, object)
        }
        PatchType::Apply => {
            let apply = ApplyPatch::parse(path, &name, query, body)?;
            with_retries(|| apply_once(state, principal, path, &name, &apply, dry_run)).await?
        }
    };
    redact(path.kind, &mut object);
    Ok((code, object))
}

/// A decoded JSON or merge patch.
#[derive(Debug, Clone)]
enum Patch {
    /// RFC 6902 operations.
    Json(json_patch::Patch),
    /// An RFC 7396 merge patch (always a JSON object).
    Merge(Value),
}

impl Patch {
    /// Decodes a patch body (400 when it is not one, 413 when it has too many operations).
    fn parse(patch_type: PatchType, body: &[u8]) -> Result<Self, ApiError> {
        match patch_type {
            PatchType::Json => {
                let patch: json_patch::Patch = serde_json::from_slice(body).map_err(|error| {
                    ApiError::bad_request(format!(
                        "the body is not a JSON patch (a list of operations such as \
                         {{\"op\": \"replace\", \"path\": \"/spec/x\", \"value\": 1}}): {error}"
                    ))
                })?;
                if patch.0.len() > MAX_JSON_PATCH_OPERATIONS {
                    return Err(ApiError::bad_request(format!(
                        "the allowed maximum operations in a JSON patch is \
                         {MAX_JSON_PATCH_OPERATIONS}, got {}; split the patch",
                        patch.0.len()
                    )));
                }
                Ok(Self::Json(patch))
            }
            _ => match serde_json::from_slice(body) {
                Ok(Value::Object(map)) => Ok(Self::Merge(Value::Object(map))),
                Ok(_) => Err(ApiError::bad_request(
                    "a merge patch must be a JSON object, such as {\"spec\": {\"x\": 1}}",
                )),
                Err(error) => Err(ApiError::bad_request(format!(
                    "the body is not valid JSON: {error}"
                ))),
            },
        }
    }

    /// The patched object. A JSON patch that fails (a `test` that does not hold, a path that
    /// does not exist) is a 422, as in the API server.
    fn apply_to(&self, kind: Kind, name: &str, object: &Value) -> Result<Value, ApiError> {
        let mut patched = object.clone();
        match self {
            Self::Json(patch) => {
                json_patch::patch(&mut patched, patch).map_err(|error| ApiError::Invalid {
                    kind,
                    name: name.to_owned(),
                    errors: vec![FieldError {
                        path: format!("patch[{}]", error.operation),
                        reason: FieldErrorReason::Invalid,
                        value: None,
                        message: format!(
                            "{} at {:?}; read the object again and rebuild the patch",
                            error.kind, error.path
                        ),
                    }],
                })?
            }
            Self::Merge(patch) => json_patch::merge(&mut patched, patch),
        }
        Ok(patched)
    }
}

/// One try of a JSON or merge patch: read, patch, write through the update admission.
async fn patch_once(
    state: &AppState,
    principal: &Principal,
    path: &ResourcePath,
    name: &str,
    patch: &Patch,
    dry_run: bool,
) -> Result<Value, Attempt> {
    let stored = state.store.get(&path.key_for(name)).await.map_err(fail)?;
    let mut patched = patch
        .apply_to(path.kind, name, &readable(path.kind, &stored))
        .map_err(Attempt::Failed)?;
    keep_stored_secret(path.kind, &mut patched, &stored);
    write(state, principal, path, &stored, patched, dry_run).await
}

/// Stores `object` (the patched `stored` object) through [`objects::replace`]. A conflict is
/// retried only when the object carries the version that was read: then the patch did not set
/// a resourceVersion of its own, and it is re-applied to the fresh object.
async fn write(
    state: &AppState,
    principal: &Principal,
    path: &ResourcePath,
    stored: &Value,
    object: Value,
    dry_run: bool,
) -> Result<Value, Attempt> {
    let own_version = resource_version_of(&object) == resource_version_of(stored);
    match objects::replace(state, principal, path, object, dry_run).await {
        Err(error @ ApiError::Conflict { .. }) if own_version && is_stale(&error) => {
            Err(Attempt::Raced(error))
        }
        result => result.map_err(Attempt::Failed),
    }
}

/// A server-side apply request, checked.
#[derive(Debug, Clone)]
struct ApplyPatch {
    /// The applied configuration, as JSON.
    config: Value,
    /// `fieldManager`.
    manager: String,
    /// `force=true`.
    force: bool,
}

impl ApplyPatch {
    /// Reads the YAML (or JSON) body and the query, and checks that the configuration is the
    /// object of the URL (400 otherwise).
    fn parse(
        path: &ResourcePath,
        name: &str,
        query: &Query,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        if path.status {
            return Err(ApiError::bad_request(
                "server-side apply is served on the object, not on its status; patch the status \
                 with application/merge-patch+json",
            ));
        }
        let manager = query.get("fieldManager").ok_or_else(|| {
            ApiError::bad_request(
                "fieldManager is required for apply requests: name who owns the applied fields \
                 (?fieldManager=…; kubectl sends its own)",
            )
        })?;
        let config: Value = serde_yaml::from_slice(body).map_err(|error| {
            ApiError::bad_request(format!("the applied configuration is not YAML: {error}"))
        })?;
        let field = |pointer: &str| config.pointer(pointer).and_then(Value::as_str);
        if field("/apiVersion") != Some(API_VERSION) || field("/kind") != Some(path.kind.as_str()) {
            return Err(ApiError::bad_request(format!(
                "the applied configuration must have apiVersion {API_VERSION} and kind {}, as \
                 the URL names",
                path.kind
            )));
        }
        if field("/metadata/name") != Some(name) {
            return Err(ApiError::bad_request(format!(
                "the name of the applied configuration ({}) does not match the name on the URL \
                 ({name})",
                field("/metadata/name").unwrap_or("none")
            )));
        }
        match (config.pointer("/metadata/namespace"), &path.namespace) {
            (None | Some(Value::Null), _) => {}
            (Some(Value::String(given)), Some(namespace)) if given != namespace => {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the applied configuration ({given}) does not match the \
                     namespace on the URL ({namespace})"
                )));
            }
            (Some(Value::String(_)), _) => {}
            // Checked here, not by the object's schema: the URL's namespace replaces it later.
            (Some(other), _) => {
                return Err(ApiError::bad_request(format!(
                    "metadata.namespace of the applied configuration must be a string, not \
                     {other}; quote it if YAML reads it as a number"
                )));
            }
        }
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|fields| !fields.is_null())
        {
            return Err(ApiError::bad_request(
                "metadata.managedFields must be absent from an applied configuration: the server \
                 records ownership itself",
            ));
        }
        Ok(Self {
            manager: manager.to_owned(),
            force: query.flag("force")?,
            config,
        })
    }
}

/// One try of a server-side apply: read, decide, then create or write through the admission.
async fn apply_once(
    state: &AppState,
    principal: &Principal,
    path: &ResourcePath,
    name: &str,
    apply: &ApplyPatch,
    dry_run: bool,
) -> Result<(StatusCode, Value), Attempt> {
    let normalize = |value: &Value| normalized(path.kind, value);
    let request = apply::ApplyRequest {
        manager: &apply.manager,
        force: apply.force,
        now: Utc::now(),
        normalize: &normalize,
    };
    let stored = match state.store.get(&path.key_for(name)).await {
        Ok(stored) => stored,
        Err(crate::store::StoreError::NotFound { .. }) => {
            let object = apply::decide(None, &apply.config, &request)
                .map_err(|conflicts| Attempt::Failed(conflict(path.kind, name, &conflicts)))?;
            let collection = ResourcePath {
                name: None,
                ..path.clone()
            };
            return match objects::create(state, principal, &collection, object, dry_run).await {
                // Created meanwhile by someone else: apply to it.
                Err(error @ ApiError::AlreadyExists { .. }) => Err(Attempt::Raced(error)),
                result => result
                    .map(|created| (StatusCode::CREATED, created))
                    .map_err(Attempt::Failed),
            };
        }
        Err(error) => return Err(fail(error)),
    };
    let live = readable(path.kind, &stored);
    let mut object = apply::decide(Some(&live), &apply.config, &request)
        .map_err(|conflicts| Attempt::Failed(conflict(path.kind, name, &conflicts)))?;
    if object == live {
        return Ok((StatusCode::OK, stored));
    }
    keep_stored_secret(path.kind, &mut object, &stored);
    if let Some(version) = apply.config.pointer("/metadata/resourceVersion") {
        object["metadata"]["resourceVersion"] = version.clone();
    }
    let written = write(state, principal, path, &stored, object, dry_run).await?;
    Ok((StatusCode::OK, written))
}

/// How one try of a write ended, when it did not succeed.
#[derive(Debug)]
enum Attempt {
    /// Another write slipped in between the read and the write: try again on the fresh object.
    Raced(ApiError),
    /// A final answer.
    Failed(ApiError),
}

/// Runs `attempt` until it succeeds or fails for good, backing off (with jitter) between
/// races, so that concurrent patches of one object all land.
async fn with_retries<T, F, Fut>(attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(200))
        .with_max_times(RACE_RETRIES)
        .with_jitter();
    attempt
        .retry(backoff)
        .when(|outcome| matches!(outcome, Attempt::Raced(_)))
        .await
        .map_err(|outcome| match outcome {
            Attempt::Raced(error) | Attempt::Failed(error) => error,
        })
}

/// How many times a patch is re-applied after losing a race; each race is won by some writer,
/// so this bounds the number of writers one patch can wait behind.
const RACE_RETRIES: usize = 64;

/// A store error as a final answer.
fn fail(error: crate::store::StoreError) -> Attempt {
    Attempt::Failed(error.into())
}

/// Whether a 409 is about a stale resourceVersion (rather than, say, another uid).
fn is_stale(error: &ApiError) -> bool {
    matches!(error, ApiError::Conflict { why, .. } if why == OPTIMISTIC_LOCK_MESSAGE)
}

/// `value` as the server stores an object of `kind`: decoded, defaulted and encoded again; a
/// value that is not a whole object (a partial apply configuration) is returned as it is.
fn normalized(kind: Kind, value: &Value) -> Value {
    match decode_object(kind, value.clone()) {
        Ok(mut object) => {
            object.apply_defaults();
            object.to_json()
        }
        Err(_) => value.clone(),
    }
}

/// The object as a reader sees it.
fn readable(kind: Kind, stored: &Value) -> Value {
    let mut object = stored.clone();
    redact(kind, &mut object);
    object
}

/// The 409 of an apply that conflicts with other managers.
fn conflict(kind: Kind, name: &str, conflicts: &Conflicts) -> ApiError {
    ApiError::Conflict {
        kind,
        name: name.to_owned(),
        why: conflicts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn the_content_type_decides_the_patch_type() {
        let cases = [
            (Some("application/merge-patch+json"), Some(PatchType::Merge)),
            (Some("application/json-patch+json"), Some(PatchType::Json)),
            (Some("application/apply-patch+yaml"), Some(PatchType::Apply)),
            (
                Some("application/merge-patch+json; charset=utf-8"),
                Some(PatchType::Merge),
            ),
            (Some("Application/JSON-Patch+JSON"), Some(PatchType::Json)),
            (Some("application/strategic-merge-patch+json"), None),
            (Some("application/json"), None),
            (None, None),
        ];
        for (content_type, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(content_type) = content_type {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            match (PatchType::from_headers(&headers), expected) {
                (Ok(got), Some(expected)) => assert_eq!(got, expected, "{content_type:?}"),
                (Err(error), None) => {
                    let status = error.status();
                    assert_eq!(status.code, 415, "{content_type:?}");
                    assert!(
                        status.message.contains(ACCEPTED_PATCH_TYPES),
                        "{}",
                        status.message
                    );
                }
                (got, expected) => panic!("{content_type:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn patches_apply_as_their_rfcs_say() {
        let object = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
                            "spec": {"list": [1, 2]}});
        let cases = [
            (
                PatchType::Merge,
                json!({"metadata": {"labels": {"x": null, "z": "3"}}, "spec": {"list": [9]}}),
                json!({"metadata": {"name": "a", "labels": {"y": "2", "z": "3"}},
                       "spec": {"list": [9]}}),
            ),
            (
                PatchType::Json,
                json!([
                    {"op": "test", "path": "/metadata/labels/x", "value": "1"},
                    {"op": "add", "path": "/spec/list/-", "value": 3},
                    {"op": "remove", "path": "/metadata/labels/y"},
                ]),
                json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"list": [1, 2, 3]}}),
            ),
        ];
        for (patch_type, patch, expected) in cases {
            let patch = Patch::parse(patch_type, patch.to_string().as_bytes()).unwrap();
            let patched = patch.apply_to(Kind::Site, "a", &object).unwrap();
            assert_eq!(patched, expected, "{patch_type:?}");
        }
    }

    #[test]
    fn a_failed_json_patch_is_invalid_naming_the_operation() {
        let object = json!({"spec": {"x": 1}});
        let patch = json!([
            {"op": "replace", "path": "/spec/x", "value": 2},
            {"op": "test", "path": "/spec/x", "value": 5},
        ]);
        let patch = Patch::parse(PatchType::Json, patch.to_string().as_bytes()).unwrap();
        let status = patch
            .apply_to(Kind::Site, "a", &object)
            .unwrap_err()
            .status();
        assert_eq!(status.code, 422);
        assert!(
            status.message.contains("patch[1]") && status.message.contains("value did not match"),
            "{}",
            status.message
        );
    }

    #[test]
    fn malformed_patches_are_bad_requests() {
        let cases: [(PatchType, &[u8], &str); 4] = [
            (PatchType::Merge, b"[1]", "must be a JSON object"),
            (PatchType::Merge, b"{", "not valid JSON"),
            (PatchType::Json, b"{\"op\": \"add\"}", "not a JSON patch"),
            (
                PatchType::Json,
                b"[{\"op\": \"jump\", \"path\": \"/a\"}]",
                "not a JSON patch",
            ),
        ];
        for (patch_type, body, expected) in cases {
            match Patch::parse(patch_type, body) {
                Err(ApiError::BadRequest(message)) => {
                    assert!(message.contains(expected), "{message}")
                }
                other => panic!("{patch_type:?} {body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_applied_configuration_must_be_the_object_of_the_url() {
        let path = ResourcePath::parse("namespaces/alpha/hosts/web-1").unwrap();
        let body = |name: &str, namespace: &str, extra: &str| {
            format!(
                "apiVersion: osiriscare.net/v1alpha1\nkind: Host\nmetadata:\n  name: {name}\n  \
                 namespace: {namespace}\n{extra}spec:\n  platform: linux\n"
            )
        };
        let query = Query::parse(Some("fieldManager=kubectl&force=true"));
        let apply = ApplyPatch::parse(
            &path,
            "web-1",
            &query,
            body("web-1", "alpha", "").as_bytes(),
        )
        .unwrap();
        assert_eq!(apply.manager, "kubectl");
        assert!(apply.force);
        assert_eq!(apply.config["spec"], json!({"platform": "linux"}));

        let cases = [
            (
                Query::parse(None),
                body("web-1", "alpha", ""),
                "fieldManager is required",
            ),
            (
                query.clone(),
                body("web-2", "alpha", ""),
                "does not match the name on the URL",
            ),
            (
                query.clone(),
                body("web-1", "beta", ""),
                "does not match the namespace",
            ),
            (
                query.clone(),
                body("web-1", "1e300", ""),
                "metadata.namespace of the applied configuration must be a string",
            ),
            (
                query.clone(),
                body("web-1", "alpha", "  managedFields: [{manager: x}]\n"),
                "managedFields must be absent",
            ),
            (
                query.clone(),
                body("web-1", "alpha", "").replace("kind: Host", "kind: Site"),
                "must have apiVersion osiriscare.net/v1alpha1 and kind Host",
            ),
            (query.clone(), "a: [".to_owned(), "is not YAML"),
        ];
        for (query, body, expected) in cases {
            match ApplyPatch::parse(&path, "web-1", &query, body.as_bytes()) {
                Err(ApiError::BadRequest(message)) => {
                    assert!(message.contains(expected), "{message:?} lacks {expected:?}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let status_path = ResourcePath::parse("namespaces/alpha/hosts/web-1/status").unwrap();
        assert!(matches!(
            ApplyPatch::parse(&status_path, "web-1", &query, body("web-1", "alpha", "").as_bytes()),
            Err(ApiError::BadRequest(message)) if message.contains("not on its status")
        ));
    }
}
