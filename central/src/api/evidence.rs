//! The evidence API under `/osc/v1`: appliances post envelopes; people query, export and score
//! evidence of the sites they can see; anyone authenticated reads the log's key, tree head and
//! proofs. The work is in [`crate::evidence`]; this file maps it to HTTP and to tenancy.
//!
//! ```text
//! POST /osc/v1/evidence                          an appliance's envelope: 201, 200 (again), 409, 4xx
//! GET  /osc/v1/log/key                           the log's public key
//! GET  /osc/v1/log/tree-head                     the latest signed tree head
//! GET  /osc/v1/log/inclusion?bundle=|index=[&size=]
//! GET  /osc/v1/log/consistency?from=&to=
//! GET  /osc/v1/sites/{site}/evidence?host=&runbook=&outcome=&appliance=&since=&until=&limit=&continue=
//! GET  /osc/v1/sites/{site}/evidence/export?since=&until=
//! GET  /osc/v1/sites/{site}/compliance?at=
//! GET  /osc/v1/evidence/alerts[?site=]          admins only
//! ```

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use osc_crds::kinds::{Host, Runbook, Site};
use osc_crds::{GROUP, Kind};
use osc_proto::api::{CauseType, GroupKind, GroupResource, Status, StatusCause};
use osc_proto::merkle::MerkleError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::{status_response, store_status};
use super::request::Query;
use super::{ApiError, AppState};
use crate::auth::{self, Principal, Role};
use crate::evidence::submission::{SubmissionError, Submitter};
use crate::evidence::{self, LogError};
use crate::store::{
    EvidenceFilter, EvidenceRecord, Ingested, ListOptions, ObjectKey, Reused, StoreError,
};

/// How messages and `details` name evidence: `evidence.osiriscare.net`.
const EVIDENCE: GroupResource<'static> = GroupResource {
    group: GROUP,
    resource: "evidence",
};

/// The most entries one page of a query holds, and the default.
const MAX_PAGE: u64 = 1_000;

/// The evidence routes (mounted behind authentication).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/osc/v1/evidence", post(receive))
        .route("/osc/v1/evidence/alerts", get(alerts))
        .route("/osc/v1/log/key", get(log_key))
        .route("/osc/v1/log/tree-head", get(tree_head))
        .route("/osc/v1/log/inclusion", get(inclusion))
        .route("/osc/v1/log/consistency", get(consistency))
        .route("/osc/v1/sites/{site}/evidence", get(query))
        .route("/osc/v1/sites/{site}/evidence/export", get(export))
        .route("/osc/v1/sites/{site}/compliance", get(compliance))
}

/// `POST /osc/v1/evidence`: one DSSE envelope from the calling appliance.
async fn receive(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Role::Appliance { site, appliance } = &principal.role else {
        return Err(ApiError::ForbiddenPath(
            "only an enrolled appliance's token posts evidence; this token is not an appliance's"
                .to_owned(),
        ));
    };
    let submitter = Submitter { site, appliance };
    let (ingested, bundle_id) = state.evidence.receive(submitter, &body, Utc::now()).await?;
    Ok(answer(&bundle_id, ingested))
}

/// The response to a received envelope.
fn answer(bundle_id: &str, ingested: Ingested) -> Response {
    let receipt = |code, log_index, duplicate| {
        let body = json!({
            "kind": "EvidenceReceipt",
            "bundleId": bundle_id,
            "logIndex": log_index,
            "duplicate": duplicate,
        });
        (code, Json(body)).into_response()
    };
    let conflict = |why: String, cause: StatusCause| {
        let mut status = Status::conflict(EVIDENCE, bundle_id, &why);
        if let Some(details) = &mut status.details {
            details.causes.push(cause);
        }
        status_response(status)
    };
    match ingested {
        Ingested::Appended { log_index } => receipt(StatusCode::CREATED, log_index, false),
        Ingested::Duplicate { log_index } => receipt(StatusCode::OK, log_index, true),
        Ingested::Conflict { reused, alert } => {
            let (field, what) = match reused {
                Reused::Seq(seq) => ("seq", format!("seq {seq}")),
                Reused::BundleId => ("bundle_id", "this bundle_id".to_owned()),
            };
            conflict(
                format!(
                    "a different payload is already stored under {what}: the appliance's evidence \
                     history forked; alert {alert} was recorded for an administrator"
                ),
                StatusCause::new(
                    CauseType::FieldValueDuplicate,
                    field,
                    "already used by other bytes",
                ),
            )
        }
        Ingested::Gap { expected } => conflict(
            format!(
                "bundles are missing before this one: the chain needs seq {expected} next; resend \
                 from seq {expected}"
            ),
            // Machine-readable: `field` names what to resend, `message` is the number.
            StatusCause::new(
                CauseType::FieldValueInvalid,
                "expectedSeq",
                expected.to_string(),
            ),
        ),
        Ingested::BrokenLink { expected_prev_hash } => conflict(
            format!(
                "prev_hash does not match the payload stored at the previous seq (it must be \
                 {expected_prev_hash}): an earlier bundle was altered or replaced"
            ),
            StatusCause::new(
                CauseType::FieldValueInvalid,
                "expectedPrevHash",
                expected_prev_hash.to_string(),
            ),
        ),
    }
}

/// `GET /osc/v1/log/key`: the public key that verifies tree heads.
async fn log_key(State(state): State<AppState>) -> Json<Value> {
    let key = state.evidence.public_key();
    Json(json!({
        "kind": "EvidenceLogKey",
        "keyid": key.keyid(),
        "publicKey": key.to_base64(),
    }))
}

/// `GET /osc/v1/log/tree-head`.
async fn tree_head(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.evidence.tree_head(Utc::now()).await?).into_response())
}

/// `GET /osc/v1/log/inclusion?bundle=<id>|index=<n>[&size=<n>]`: the entry's proof against the
/// tree of `size` entries (the latest when absent), with the head of that size.
async fn inclusion(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = params(raw.as_deref(), &["bundle", "index", "size"])?;
    let record = match (query.get("bundle"), query.get("index")) {
        (Some(bundle), None) => state.store.evidence_by_bundle(bundle).await?,
        (None, Some(_)) => {
            let index = number(&query, "index")?.unwrap_or_default();
            state.store.evidence_at(index).await?
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of bundle=<bundle id> or index=<log index>",
            ));
        }
    };
    let record = visible_record(&state, &principal, record).await?;
    let log = &state.evidence;
    let size = match number(&query, "size")? {
        Some(size) => size,
        None => log.catch_up().await?,
    };
    let proof = log.inclusion(record.log_index, size).await?;
    let head = log.tree_head_at(size, Utc::now()).await?;
    Ok(Json(json!({
        "kind": "EvidenceInclusion",
        "bundleId": record.bundle_id,
        "logIndex": record.log_index,
        "envelope": record.envelope,
        "treeHead": head,
        "proof": proof,
    }))
    .into_response())
}

/// `GET /osc/v1/log/consistency?from=<size>&to=<size>`: `to` defaults to the latest size.
async fn consistency(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = params(raw.as_deref(), &["from", "to"])?;
    let from = number(&query, "from")?
        .ok_or_else(|| ApiError::bad_request("from=<tree size> is required"))?;
    let log = &state.evidence;
    let to = match number(&query, "to")? {
        Some(to) => to,
        None => log.catch_up().await?,
    };
    Ok(Json(log.consistency(from, to).await?).into_response())
}

/// One stored envelope as a query lists it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    /// Its log index.
    log_index: u64,
    /// Its bundle id.
    bundle_id: String,
    /// The appliance that signed it.
    appliance: String,
    /// Its seq in that appliance's chain.
    seq: u64,
    /// The host.
    host: String,
    /// The runbook.
    runbook: String,
    /// The outcome.
    outcome: String,
    /// When the reconcile ended.
    timestamp_end: DateTime<Utc>,
    /// When central accepted it.
    received_at: DateTime<Utc>,
    /// The envelope, as stored (JSON).
    envelope: Value,
}

/// `GET /osc/v1/sites/{site}/evidence`: a page of the site's envelopes, in log order.
async fn query(
    State(state): State<AppState>,
    SiteRequest { site, raw }: SiteRequest,
) -> Result<Response, ApiError> {
    let query = params(
        raw.as_deref(),
        &[
            "host",
            "runbook",
            "outcome",
            "appliance",
            "since",
            "until",
            "limit",
            "continue",
        ],
    )?;
    let text = |name| query.get(name).map(str::to_owned);
    let limit = number(&query, "limit")?
        .unwrap_or(MAX_PAGE)
        .clamp(1, MAX_PAGE);
    let after = match query.get("continue") {
        Some(token) => Some(token.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid continue token {token:?}; start the query again without it"
            ))
        })?),
        None => None,
    };
    let page = state
        .store
        .list_evidence(&EvidenceFilter {
            site: Some(site),
            host: text("host"),
            runbook: text("runbook"),
            outcome: text("outcome"),
            appliance: text("appliance"),
            since: time(&query, "since")?,
            until: time(&query, "until")?,
            after,
            limit: Some(limit),
            seqs: None,
        })
        .await?;
    let items: Vec<Item> = page.items.into_iter().map(item).collect();
    Ok(Json(json!({
        "kind": "EvidenceList",
        "items": items,
        "continue": page.more_after.map(|after| after.to_string()),
    }))
    .into_response())
}

/// A stored record as a list item.
fn item(record: EvidenceRecord) -> Item {
    Item {
        envelope: serde_json::from_str(&record.envelope).unwrap_or(Value::Null),
        log_index: record.log_index,
        bundle_id: record.bundle_id,
        appliance: record.appliance,
        seq: record.seq,
        host: record.host,
        runbook: record.runbook,
        outcome: record.outcome,
        timestamp_end: record.timestamp_end,
        received_at: record.received_at,
    }
}

/// `GET /osc/v1/sites/{site}/evidence/export?since=&until=`: one JSON file for an offline verifier.
async fn export(
    State(state): State<AppState>,
    SiteRequest { site, raw }: SiteRequest,
) -> Result<Response, ApiError> {
    let query = params(raw.as_deref(), &["since", "until"])?;
    let export = state
        .evidence
        .export(
            &site,
            time(&query, "since")?,
            time(&query, "until")?,
            Utc::now(),
        )
        .await?;
    Ok(Json(export).into_response())
}

/// `GET /osc/v1/sites/{site}/compliance?at=<RFC 3339>`: the site's score at that moment, from the log.
async fn compliance(
    State(state): State<AppState>,
    SiteRequest { site, raw }: SiteRequest,
) -> Result<Response, ApiError> {
    let query = params(raw.as_deref(), &["at"])?;
    let at = time(&query, "at")?
        .ok_or_else(|| ApiError::bad_request("at=<RFC 3339 time> is required"))?;
    let store = &state.store;
    let site: Site = decode(
        store
            .get(&ObjectKey::cluster(Kind::Site.plural(), &site))
            .await?,
    )?;
    let name = site.metadata.name.clone();
    let hosts: Vec<Host> = list(&state, Kind::Host, Some(name)).await?;
    let runbooks: Vec<Runbook> = list(&state, Kind::Runbook, None).await?;
    let report = evidence::compliance_at(store, &site, &hosts, &runbooks, at).await?;
    Ok(Json(report).into_response())
}

/// `GET /osc/v1/evidence/alerts[?site=]`: the recorded forks, for admins.
async fn alerts(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    auth::require_admin(&principal, "read evidence alerts")?;
    let query = params(raw.as_deref(), &["site"])?;
    let alerts = state.store.evidence_alerts(query.get("site")).await?;
    let items: Vec<Value> = alerts
        .into_iter()
        .map(|alert| {
            json!({
                "id": alert.id,
                "site": alert.site,
                "appliance": alert.appliance,
                "seq": alert.seq,
                "bundleId": alert.bundle_id,
                "reason": alert.reason,
                "storedPayloadHash": alert.stored_payload_hash,
                "receivedPayloadHash": alert.received_payload_hash,
                "createdAt": alert.created_at,
            })
        })
        .collect();
    Ok(Json(json!({"kind": "EvidenceAlertList", "items": items})).into_response())
}

/// A request about one site, which the caller may see (else 404, as for a missing Site).
struct SiteRequest {
    /// The site, from the path.
    site: String,
    /// The raw query string.
    raw: Option<String>,
}

impl FromRequestParts<AppState> for SiteRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("no bearer token was resolved".to_owned()))?;
        let Path(site) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        auth::visible_site(state, &principal, &site).await?;
        Ok(Self {
            site,
            raw: parts.uri.query().map(str::to_owned),
        })
    }
}

/// The record, if the caller may see its site; otherwise (or when there is none) a 404 that does
/// not say which.
async fn visible_record(
    state: &AppState,
    principal: &Principal,
    record: Option<EvidenceRecord>,
) -> Result<EvidenceRecord, ApiError> {
    let not_found = || ApiError::NotFoundPath("no such evidence entry".to_owned());
    let record = record.ok_or_else(not_found)?;
    auth::visible_site(state, principal, &record.site)
        .await
        .map_err(|error| match error {
            ApiError::NotFound { .. } => not_found(),
            other => other,
        })?;
    Ok(record)
}

/// The query's parameters, refusing any not in `known` (a typo must not widen a query silently).
fn params(raw: Option<&str>, known: &[&str]) -> Result<Query, ApiError> {
    let query = Query::parse(raw);
    if let Some(unknown) = query.names().find(|name| !known.contains(name)) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {unknown:?}; this endpoint takes {}",
            known.join(", ")
        )));
    }
    Ok(query)
}

/// Parameter `name` as a non-negative integer.
fn number(query: &Query, name: &str) -> Result<Option<u64>, ApiError> {
    query
        .get(name)
        .map(|text| {
            text.parse().map_err(|_| {
                ApiError::bad_request(format!("{name}={text:?} is not a non-negative integer"))
            })
        })
        .transpose()
}

/// Parameter `name` as an RFC 3339 time.
fn time(query: &Query, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    query
        .get(name)
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|error| {
                    ApiError::bad_request(format!(
                        "{name}={text:?} is not an RFC 3339 time ({error}); write e.g. 2026-03-01T02:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// Every stored object of `kind` (in `namespace`), decoded.
async fn list<T: DeserializeOwned>(
    state: &AppState,
    kind: Kind,
    namespace: Option<String>,
) -> Result<Vec<T>, ApiError> {
    let options = ListOptions {
        namespace,
        ..ListOptions::default()
    };
    let list = state.store.list(kind.plural(), &options, |_| true).await?;
    list.items.into_iter().map(decode).collect()
}

/// A stored object as its kind; the store holds only what admission let in, so a failure is
/// corruption.
fn decode<T: DeserializeOwned>(object: Value) -> Result<T, ApiError> {
    serde_json::from_value(object).map_err(|error| {
        ApiError::Store(StoreError::Corrupt {
            what: "object read for a compliance report".to_owned(),
            source: error.into(),
        })
    })
}

/// The `Status` of an evidence log failure.
pub(super) fn log_status(error: &LogError) -> Status {
    let bundle = GroupKind {
        group: GROUP,
        kind: "EvidenceBundle",
    };
    let forbidden = |why: &str| Status::forbidden(EVIDENCE, "", why);
    match error {
        LogError::Submission(submission) => {
            let message = submission.to_string();
            match submission {
                SubmissionError::TooLarge { .. } => Status::request_entity_too_large(message),
                SubmissionError::Undecodable { .. } => Status::bad_request(message),
                SubmissionError::NotEnrolled { .. }
                | SubmissionError::Signature { .. }
                | SubmissionError::Foreign { .. } => forbidden(&message),
                SubmissionError::Bundle(osc_proto::evidence::EvidenceError::Invalid {
                    field,
                    ..
                }) => Status::invalid(
                    bundle,
                    "",
                    vec![StatusCause::new(
                        CauseType::FieldValueInvalid,
                        *field,
                        message,
                    )],
                ),
                SubmissionError::Bundle(_) => Status::invalid(
                    bundle,
                    "",
                    vec![StatusCause::new(
                        CauseType::FieldValueInvalid,
                        "payload",
                        message,
                    )],
                ),
                SubmissionError::Clock { field, .. } => Status::invalid(
                    bundle,
                    "",
                    vec![StatusCause::new(
                        CauseType::FieldValueInvalid,
                        *field,
                        message,
                    )],
                ),
            }
        }
        LogError::Proof(
            MerkleError::SizeBeyondLog { .. }
            | MerkleError::IndexOutOfRange { .. }
            | MerkleError::OldSizeAfterNewSize { .. },
        ) => Status::bad_request(error.to_string()),
        LogError::Store(store) => store_status(store),
        LogError::Batch(store) => store_status(store),
        LogError::Stopped => Status::service_unavailable(error.to_string()),
        LogError::Proof(_) | LogError::KeyFile { .. } | LogError::BadKey { .. } => {
            Status::internal_error("the request could not be completed; the server logged why")
        }
    }
}
