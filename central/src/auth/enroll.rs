//! Appliance enrollment: one-time, expiring tokens per site, and the exchange of such a token
//! and a freshly generated public key for an Appliance object and the appliance's own token.
//!
//! Safe to retry: the token records the key and name it was used with, so the same request again
//! (a lost answer) gets the same Appliance and a fresh bearer token (the previous one is
//! revoked); any other use of a spent token is refused.

use chrono::{DateTime, Duration, Utc};
use osc_crds::{AnyObject, Kind};
use osc_proto::auth::{EnrollRequest, EnrollResponse, EnrollmentToken, enrollment_proof_message};
use osc_proto::dsse::PublicKey;
use serde_json::{Value, json};
use tracing::info;

use super::tokens::{ENROLLMENT_PREFIX, new_secret, secret_matches, sha256, split};
use super::{Principal, Role, TokenSpec, Verb, authorize};
use crate::api::{self, ApiError, AppState};
use crate::store::{EnrollmentRow, EnrollmentUse, ObjectKey, StoreError};

/// How long an enrollment token lasts unless asked otherwise.
pub const DEFAULT_TTL: Duration = Duration::days(1);

/// The longest an enrollment token may last.
pub const MAX_TTL: Duration = Duration::days(7);

/// Creates a one-time enrollment token for `site`, valid for `ttl`. Whoever may change the
/// Site may create one.
pub async fn create_token(
    state: &AppState,
    principal: &Principal,
    site: &str,
    ttl: Duration,
) -> Result<EnrollmentToken, ApiError> {
    authorize(state, principal, Kind::Site, None, Some(site), Verb::Write).await?;
    state
        .store
        .get(&ObjectKey::cluster(Kind::Site.plural(), site))
        .await?;
    if ttl <= Duration::zero() || ttl > MAX_TTL {
        return Err(ApiError::bad_request(format!(
            "ttlSeconds must be between 1 and {} (a week)",
            MAX_TTL.num_seconds()
        )));
    }
    let (id, secret) = new_secret();
    let now = Utc::now();
    let expires_at = now + ttl;
    state
        .store
        .insert_enrollment(&EnrollmentRow {
            id: id.clone(),
            secret_sha256: hex::encode(sha256(secret.as_bytes())),
            site: site.to_owned(),
            created_by: principal.name.clone(),
            created_at_ms: now.timestamp_millis(),
            expires_at_ms: expires_at.timestamp_millis(),
            used: None,
        })
        .await?;
    Ok(EnrollmentToken {
        site: site.to_owned(),
        token: format!("{ENROLLMENT_PREFIX}{id}.{}", secret.as_str()),
        expires_at,
    })
}

/// Enrolls an appliance: checks the token and the proof of key possession, creates (or re-keys)
/// the Appliance object, and issues the appliance's bearer token.
pub async fn enroll(
    state: &AppState,
    request: &EnrollRequest,
    now: DateTime<Utc>,
) -> Result<EnrollResponse, ApiError> {
    let row = check_token(state, &request.token, now).await?;
    let key = PublicKey::from_base64(&request.public_key).map_err(|error| {
        ApiError::bad_request(format!(
            "publicKey is not an Ed25519 public key ({error}); send the standard base64 of its 32 \
             bytes"
        ))
    })?;
    check_proof(&key, request)?;

    let appliance = appliance_object(&row.site, &request.appliance, &key);
    let system = Principal::system();
    // Admission first, as a dry run, so that a bad name does not spend the token.
    if stored_appliance(state, &row.site, &request.appliance)
        .await?
        .is_none()
    {
        api::create_object(state, &system, &appliance, true).await?;
    }
    match &row.used {
        None => {
            let usage = EnrollmentUse {
                at_ms: now.timestamp_millis(),
                appliance: request.appliance.clone(),
                public_key: key.to_base64(),
                appliance_token: String::new(),
            };
            if !state.store.use_enrollment(&row.id, &usage).await? {
                // Another enrollment spent it in between: judge this one as a retry of that.
                let row = check_token(state, &request.token, now).await?;
                same_request(&row, request, &key)?;
            }
        }
        Some(_) => same_request(&row, request, &key)?,
    }
    ensure_appliance(state, &row.site, &request.appliance, &appliance, &key).await?;
    // An appliance holds one live token: the one this enrollment issues. Whatever an earlier
    // enrollment (or this one's lost answer) issued ends now, whether the key changed or not.
    let role = Role::Appliance {
        site: row.site.clone(),
        appliance: request.appliance.clone(),
    };
    state.auth.revoke_role(&role).await?;
    let token = state
        .auth
        .issue(TokenSpec {
            name: format!("{}/{}", row.site, request.appliance),
            role,
            expires_at: None,
        })
        .await?;
    state.store.reissue_enrollment(&row.id, &token.id).await?;
    info!(site = %row.site, appliance = %request.appliance, keyid = %key.keyid(), "appliance enrolled");
    Ok(EnrollResponse {
        site: row.site,
        appliance: request.appliance.clone(),
        key_id: key.keyid().to_owned(),
        token: token.bearer,
        ca_certificate: state.ca_certificate.as_deref().map(str::to_owned),
    })
}

/// The stored enrollment token that `token` names, if its secret matches and it has not expired.
async fn check_token(
    state: &AppState,
    token: &str,
    now: DateTime<Utc>,
) -> Result<EnrollmentRow, ApiError> {
    let invalid = || ApiError::Unauthorized("the enrollment token is not valid".to_owned());
    let (id, secret) = split(token, ENROLLMENT_PREFIX).ok_or_else(invalid)?;
    let row = state.store.enrollment(id).await?.ok_or_else(invalid)?;
    if !secret_matches(secret, &row.secret_sha256) {
        return Err(invalid());
    }
    let expires_at = DateTime::from_timestamp_millis(row.expires_at_ms).unwrap_or(now);
    if expires_at <= now {
        return Err(ApiError::Unauthorized(format!(
            "the enrollment token expired at {}; create a new one for site {}",
            expires_at.to_rfc3339(),
            row.site
        )));
    }
    Ok(row)
}

/// The proof must be the key's signature over the token.
fn check_proof(key: &PublicKey, request: &EnrollRequest) -> Result<(), ApiError> {
    use base64::Engine as _;
    let bad = || {
        ApiError::Unauthorized(
            "the proof is not this key's signature over the enrollment token; sign \
             PAE(\"application/vnd.osiriscare.enrollment.v1\", token) with the private key"
                .to_owned(),
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&request.proof)
        .map_err(|_| bad())?;
    let signature = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| bad())?;
    key.verifying_key()
        .verify_strict(&enrollment_proof_message(&request.token), &signature)
        .map_err(|_| bad())
}

/// A spent token is answered again only for the same appliance name and key.
fn same_request(
    row: &EnrollmentRow,
    request: &EnrollRequest,
    key: &PublicKey,
) -> Result<(), ApiError> {
    match &row.used {
        Some(used) if used.appliance == request.appliance && used.public_key == key.to_base64() => {
            Ok(())
        }
        _ => Err(ApiError::Unauthorized(
            "the enrollment token was already used; create a new one".to_owned(),
        )),
    }
}

/// The Appliance object an enrollment creates.
fn appliance_object(site: &str, name: &str, key: &PublicKey) -> AnyObject {
    let value = json!({
        "apiVersion": osc_crds::API_VERSION,
        "kind": "Appliance",
        "metadata": {"name": name, "namespace": site},
        "spec": {"enrollment": {"publicKey": key.to_base64(), "keyId": key.keyid()}},
    });
    AnyObject::from_json(value).expect("an enrollment decodes as an Appliance")
}

/// The stored Appliance, if any.
async fn stored_appliance(
    state: &AppState,
    site: &str,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    match state
        .store
        .get(&ObjectKey::namespaced(Kind::Appliance.plural(), site, name))
        .await
    {
        Ok(object) => Ok(Some(object)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Creates the Appliance, or gives an existing one this key (re-enrollment of a replaced box;
/// the caller then revokes the appliance's other tokens).
async fn ensure_appliance(
    state: &AppState,
    site: &str,
    name: &str,
    appliance: &AnyObject,
    key: &PublicKey,
) -> Result<(), ApiError> {
    let system = Principal::system();
    match stored_appliance(state, site, name).await? {
        None => match api::create_object(state, &system, appliance, false).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(error) => Err(error),
        },
        Some(stored) if stored["spec"]["enrollment"]["publicKey"] == key.to_base64() => Ok(()),
        Some(mut stored) => {
            stored["spec"]["enrollment"] =
                json!({"publicKey": key.to_base64(), "keyId": key.keyid()});
            api::replace_object(state, &system, Kind::Appliance, stored).await?;
            Ok(())
        }
    }
}
