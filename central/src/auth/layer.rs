//! The layer in front of the API: resolves the bearer token to a [`Principal`] (401 without a
//! valid one) and records every mutating request in the audit log once it is answered.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use osc_proto::api::Status;
use tracing::{error, info};

use crate::api::AppState;
use crate::server::status_response;
use std::sync::Arc;

use crate::batch::Batcher;
use crate::store::{AuditRecord, Store, StoreError};

/// Authenticates the request, runs it with its [`Principal`] in the extensions, and appends a
/// mutating request to the audit log with the status it was answered with.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(bearer) = bearer else {
        return unauthorized(
            "Unauthorized: send a bearer token (Authorization: Bearer osc_…); the first start \
             wrote an admin token to admin.token in the data folder",
        );
    };
    let principal = match state.auth.authenticate(bearer, Utc::now()).await {
        Ok(principal) => principal,
        Err(error) => {
            // The reason (unknown, revoked, expired) is for the operator's log; the client only
            // learns that the token is not valid, and never sees it echoed.
            info!(%error, "refused a bearer token");
            return unauthorized(
                "Unauthorized: the bearer token is not valid (unknown, revoked or expired)",
            );
        }
    };
    let audited = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_owned(), ToString::to_string);
    request.extensions_mut().insert(principal.clone());
    let response = next.run(request).await;
    if audited {
        let code = response.status().as_u16();
        record(
            &state,
            &principal.name,
            &principal.token_id,
            &method,
            &path,
            code,
        )
        .await;
    }
    response
}

/// Records a request by `who` (with token `token_id`) answered with `code`, and waits until the
/// record is stored; a failure is logged, since the request is already answered.
pub(super) async fn record(
    state: &AppState,
    who: &str,
    token_id: &str,
    method: &str,
    path: &str,
    code: u16,
) {
    let record = AuditRecord {
        id: 0,
        at_ms: Utc::now().timestamp_millis(),
        principal: who.to_owned(),
        token_id: token_id.to_owned(),
        method: method.to_owned(),
        path: path.to_owned(),
        code: i64::from(code),
    };
    match state.audit.submit(record).await {
        Some(Ok(())) => {}
        Some(Err(error)) => {
            error!(%error, principal = %who, %method, %path, "cannot append to the audit log");
        }
        None => error!(principal = %who, %method, %path, "the audit log writer has stopped"),
    }
}

/// The audit log's writer: records of concurrent requests are stored together, one transaction
/// per batch, so auditing does not halve the rate of writes (every write would otherwise cost a
/// second transaction on the same write connection).
pub fn audit_writer(store: Store) -> AuditWriter {
    Batcher::start(
        AUDIT_QUEUE,
        AUDIT_BATCH,
        move |records: Vec<AuditRecord>| {
            let store = store.clone();
            async move {
                let result = store.append_audit(&records).await.map_err(Arc::new);
                vec![result; records.len()]
            }
        },
    )
}

/// Records waiting to be written, at most.
const AUDIT_QUEUE: usize = 4096;

/// Records written in one transaction, at most.
const AUDIT_BATCH: usize = 256;

/// The handle requests record through: each gets the result of the batch its record was in.
pub type AuditWriter = Batcher<AuditRecord, Result<(), Arc<StoreError>>>;

/// A 401 `Status` with the challenge clients expect.
fn unauthorized(message: &str) -> Response {
    let mut response = status_response(Status::unauthorized(message)).into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
