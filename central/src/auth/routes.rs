//! Central's own endpoints for identities, under `/osc/v1`: tokens and the audit log (admins),
//! enrollment tokens (whoever may change the site), and enrollment itself (no bearer token: the
//! enrollment token is the credential).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Duration, Utc};
use osc_proto::auth::{
    AuditEntry, EnrollRequest, EnrollmentTokenRequest, IssuedToken, Page, TokenInfo, TokenRequest,
};
use serde::Deserialize;

use super::layer::record;
use super::{Principal, Role, TokenSpec, enroll, time_of};
use crate::api::{ApiError, AppState, json_request};
use crate::store::{AuditQuery, TokenRow};

/// The routes that need a bearer token (mounted behind [`super::authenticate`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/osc/v1/tokens", get(list_tokens).post(create_token))
        .route("/osc/v1/tokens/{id}", delete(revoke_token))
        .route("/osc/v1/audit", get(audit))
        .route(
            "/osc/v1/sites/{site}/enrollment-tokens",
            post(create_enrollment_token),
        )
}

/// The enrollment route, which takes no bearer token.
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/osc/v1/enroll", post(enroll_appliance))
}

/// 403 unless the caller is an admin.
pub(crate) fn require_admin(principal: &Principal, what: &str) -> Result<(), ApiError> {
    if principal.is_admin() {
        return Ok(());
    }
    Err(ApiError::ForbiddenPath(format!(
        "only admin tokens may {what}"
    )))
}

async fn create_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    require_admin(&principal, "create tokens")?;
    let request: TokenRequest = json_request(&body, "a TokenRequest")?;
    if request.name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "name must not be empty: name the token after its holder",
        ));
    }
    if matches!(request.role, Role::Appliance { .. }) {
        return Err(ApiError::bad_request(
            "appliance tokens come from enrollment: create an enrollment token for the site \
             (POST /osc/v1/sites/{site}/enrollment-tokens) and enroll the appliance with it",
        ));
    }
    if let Role::Operator { partners } = &request.role
        && partners.is_empty()
    {
        return Err(ApiError::bad_request(
            "an operator token needs at least one partner in role.partners",
        ));
    }
    if request.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::bad_request("expiresAt is in the past"));
    }
    let issued = state
        .auth
        .issue_by(
            TokenSpec {
                name: request.name,
                role: request.role,
                expires_at: request.expires_at,
            },
            &principal.name,
        )
        .await?;
    let row = state
        .store
        .token(&issued.id)
        .await?
        .ok_or_else(|| ApiError::bad_request("the token vanished as it was created"))?;
    let answer = IssuedToken {
        info: token_info(&row)?,
        token: issued.bearer,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn list_tokens(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Page<TokenInfo>>, ApiError> {
    require_admin(&principal, "list tokens")?;
    let items = state
        .store
        .tokens()
        .await?
        .iter()
        .map(token_info)
        .collect::<Result<_, _>>()?;
    Ok(Json(Page { items, next: None }))
}

async fn revoke_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    require_admin(&principal, "revoke tokens")?;
    let row = state
        .auth
        .revoke(&id)
        .await?
        .ok_or_else(|| ApiError::NotFoundPath(format!("token {id:?} not found")))?;
    Ok(Json(token_info(&row)?))
}

/// `GET /osc/v1/audit` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    /// Records after this id.
    after: Option<i64>,
    /// One principal's only.
    principal: Option<String>,
    /// At or after this time.
    since: Option<DateTime<Utc>>,
    /// Page size (default 100, at most 1000).
    limit: Option<u32>,
}

async fn audit(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    require_admin(&principal, "read the audit log")?;
    let Query(params) = params.map_err(|rejection| {
        ApiError::bad_request(format!(
            "{}; the audit log takes after=<id>, principal=<name>, since=<RFC 3339>, limit=<1-1000>",
            rejection.body_text()
        ))
    })?;
    let limit = params.limit.unwrap_or(100);
    let records = state
        .store
        .audit(&AuditQuery {
            after: params.after,
            principal: params.principal,
            since_ms: params.since.map(|since| since.timestamp_millis()),
            limit,
        })
        .await?;
    let next = (records.len() == limit.clamp(1, crate::store::AUDIT_PAGE_MAX) as usize)
        .then(|| records.last().map(|record| record.id.to_string()))
        .flatten();
    let items = records
        .into_iter()
        .map(|record| AuditEntry {
            id: record.id,
            time: time_of(record.at_ms).unwrap_or_default(),
            principal: record.principal,
            token_id: record.token_id,
            method: record.method,
            path: record.path,
            code: u16::try_from(record.code).unwrap_or_default(),
        })
        .collect();
    Ok(Json(Page { items, next }))
}

async fn create_enrollment_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(site): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: EnrollmentTokenRequest = if body.is_empty() {
        EnrollmentTokenRequest::default()
    } else {
        json_request(&body, "an EnrollmentTokenRequest")?
    };
    let ttl = match request.ttl_seconds {
        Some(seconds) => Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)),
        None => enroll::DEFAULT_TTL,
    };
    let token = enroll::create_token(&state, &principal, &site, ttl).await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

async fn enroll_appliance(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> Response {
    let (answer, appliance) = match json_request::<EnrollRequest>(&body, "an EnrollRequest") {
        Ok(request) => (
            enroll::enroll(&state, &request, Utc::now()).await.map(Json),
            Some(request.appliance),
        ),
        Err(error) => (Err(error), None),
    };
    let response = answer.map_or_else(IntoResponse::into_response, IntoResponse::into_response);
    // Enrollment has no bearer token, so the authentication layer does not audit it: every
    // attempt is recorded here, under the appliance name it asked for.
    let who = appliance.map_or_else(
        || "enrollment".to_owned(),
        |name| format!("enrollment of {name}"),
    );
    let code = response.status().as_u16();
    record(&state, &who, "", "POST", uri.path(), code).await;
    response
}

/// A stored token as listed.
fn token_info(row: &TokenRow) -> Result<TokenInfo, ApiError> {
    let role = serde_json::from_str(&row.role).map_err(|error| {
        ApiError::bad_request(format!("token {} has an unreadable role: {error}", row.id))
    })?;
    Ok(TokenInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        role,
        created_by: row.created_by.clone(),
        created_at: time_of(row.created_at_ms).unwrap_or_default(),
        expires_at: row.expires_at_ms.and_then(time_of),
        revoked_at: row.revoked_at_ms.and_then(time_of),
    })
}
