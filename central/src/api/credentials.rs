//! What Credentials have beyond the generic verbs: the appliance's credential pull, the
//! master-key rotation, and the walk that re-seals every Credential under the primary key.
//!
//! ```text
//! GET  /apis/osiriscare.net/v1alpha1/namespaces/{site}/credentials/{name}/data   the site's appliance only
//! POST /osc/v1/master-key/rotate                                                  admins only
//! ```
//!
//! The pull answers a [`CredentialData`] document with the decrypted values, marked `no-store`:
//! the appliance keeps secrets in memory only. The rule of who may pull is the pure
//! [`pull_access`]: the site's own appliance; anyone else who can see the site gets 403, and
//! whoever cannot see it (an appliance of another site, an operator of another partner) 404, so
//! that the path reveals nothing about sites the caller may not know of.
//!
//! A rotation makes a new random key primary (written to the key file beside the old one before
//! it seals anything), re-seals every Credential under it while the API keeps serving (reads open
//! with whichever key a value names), then retires the old key. If it stops part-way, the key file
//! still holds both keys and the next start (or rotation) finishes the walk.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use osc_crds::{API_VERSION, Kind};
use osc_proto::credentials::{
    CREDENTIAL_DATA_KIND, CredentialData, CredentialDataMeta, MASTER_KEY_ROTATION_KIND,
    MasterKeyRotation,
};
use serde_json::Value;
use tokio::sync::OwnedMutexGuard;
use tracing::{error, info};

use super::AppState;
use super::error::ApiError;
use super::secrets::{open_data, reseal};
use crate::auth::{self, Principal, Role};
use crate::keyring::KeyId;
use crate::server::Services;
use crate::store::{ListOptions, ObjectKey, StoreError, resource_version_of};

/// The path of the master-key rotation.
pub const ROTATE_PATH: &str = "/osc/v1/master-key/rotate";

/// The path of a credential's decrypted data, as the router spells it.
pub const PULL_ROUTE: &str =
    "/apis/osiriscare.net/v1alpha1/namespaces/{site}/credentials/{name}/data";

/// How many Credentials the re-sealing walk reads per page.
const RESEAL_PAGE: u64 = 100;

/// How many times one Credential is re-read and re-sealed when writers keep changing it under the
/// walk; past that the walk fails and the previous keys stay until the next try.
const RESEAL_ATTEMPTS: usize = 16;

/// What a caller gets when asking for a credential's secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullAccess {
    /// The values (the site's own appliance).
    Allowed,
    /// 403: the caller can see the site, but secret data is for its appliance only.
    Forbidden,
    /// 404: the caller cannot see the site at all.
    Hidden,
}

/// Who may read the secret data of a credential of `site`, given whether the caller can see that
/// site ([`auth::visible_site`], the tenancy rule).
pub fn pull_access(role: &Role, site: &str, site_visible: bool) -> PullAccess {
    match role {
        Role::Appliance { site: own, .. } if own == site => PullAccess::Allowed,
        Role::Appliance { .. } => PullAccess::Hidden,
        _ if site_visible => PullAccess::Forbidden,
        _ => PullAccess::Hidden,
    }
}

/// `GET .../namespaces/{site}/credentials/{name}/data`.
pub async fn pull_route(
    State(state): State<AppState>,
    Path((site, name)): Path<(String, String)>,
    Extension(principal): Extension<Principal>,
) -> Response {
    pull(&state, &principal, &site, &name)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /osc/v1/master-key/rotate`.
pub async fn rotate_route(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Response {
    rotate(&state, &principal)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The decrypted data of the Credential `site`/`name` for `principal`, or why not.
pub async fn pull(
    state: &AppState,
    principal: &Principal,
    site: &str,
    name: &str,
) -> Result<Response, ApiError> {
    let hidden = || ApiError::NotFound {
        kind: Kind::Credential,
        name: name.to_owned(),
    };
    let visible = match auth::visible_site(state, principal, site).await {
        Ok(()) => true,
        Err(ApiError::NotFound { .. }) => false,
        Err(error) => return Err(error),
    };
    let access = pull_access(&principal.role, site, visible);
    if access == PullAccess::Hidden {
        return Err(hidden());
    }
    // A missing credential is a 404 for whoever may see the site, before any 403: a site that
    // does not exist (which an operator may "see", to create it) has no credentials either.
    let key = ObjectKey::namespaced(Kind::Credential.plural(), site, name);
    let stored = state.store.get(&key).await?;
    if access == PullAccess::Forbidden {
        return Err(ApiError::ForbiddenPath(format!(
            "credentials.osiriscare.net {name:?}: the secret data of a credential is given only \
             to its site's appliance; people set it with a write and see which keys are set in \
             the osiriscare.net/data-keys annotation"
        )));
    }
    let values = {
        let keys = state.keyring.keys().await;
        open_data(&keys, (site, name), &stored).map_err(|source| ApiError::Secret {
            name: name.to_owned(),
            source,
        })?
    };
    let text = |field: &str| {
        stored["spec"][field]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let document = CredentialData {
        api_version: API_VERSION.to_owned(),
        kind: CREDENTIAL_DATA_KIND.to_owned(),
        metadata: CredentialDataMeta {
            name: name.to_owned(),
            namespace: site.to_owned(),
            resource_version: stored["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        },
        type_: text("type"),
        username: text("username"),
        data: values,
    };
    // Serializing strings and maps of strings cannot fail.
    let body = serde_json::to_vec(&document).unwrap_or_default();
    Ok((
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
        ],
        Body::from(body),
    )
        .into_response())
}

/// Rotates the master key for `principal` (an admin) and reports the key ids and the number of
/// Credentials re-sealed.
pub async fn rotate(state: &AppState, principal: &Principal) -> Result<Response, ApiError> {
    auth::require_admin(principal, "rotate the master key")?;
    let running = state.keyring.start_rotation().map_err(ApiError::Keyring)?;
    // The rotation runs in its own task, so a client that leaves (or the request timeout) never
    // stops it half-way; the answer waits for it.
    let task = tokio::spawn(rotate_all(state.clone(), principal.name.clone(), running));
    let report = match task.await {
        Ok(report) => report?,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    Ok(axum::Json(report).into_response())
}

/// The steps of a rotation, with `_running` held throughout: a new primary key, every
/// Credential re-sealed under it, the old keys retired.
async fn rotate_all(
    state: AppState,
    by: String,
    _running: OwnedMutexGuard<()>,
) -> Result<MasterKeyRotation, ApiError> {
    let primary = state
        .keyring
        .rotate_primary()
        .await
        .map_err(ApiError::Keyring)?;
    info!(primary = %primary, by = %by, "master key rotation started: new secrets are sealed under the new key");
    let resealed = reseal_all(&state).await?;
    let retired = state
        .keyring
        .retire_previous()
        .await
        .map_err(ApiError::Keyring)?;
    info!(primary = %primary, resealed, retired = ?retired, "master key rotation finished");
    Ok(MasterKeyRotation {
        api_version: API_VERSION.to_owned(),
        kind: MASTER_KEY_ROTATION_KIND.to_owned(),
        primary_key_id: primary.to_string(),
        retired_key_ids: retired.iter().map(KeyId::to_string).collect(),
        resealed,
    })
}

/// At start-up: when the keyring holds previous keys, re-seals every Credential under the
/// primary key and retires the previous keys from the key file. A failure is logged and leaves
/// the previous keys in place (values under them still open); serving goes on.
pub async fn finish_rotation(services: &Services) {
    let state = AppState::new(services.clone());
    let previous = state.keyring.keys().await.previous_ids();
    if previous.is_empty() {
        return;
    }
    let outcome = match reseal_all(&state).await {
        Ok(resealed) => state
            .keyring
            .retire_previous()
            .await
            .map(|retired| (resealed, retired))
            .map_err(ApiError::Keyring),
        Err(error) => Err(error),
    };
    match outcome {
        Ok((resealed, retired)) if retired.is_empty() => info!(
            resealed,
            previous = ?previous,
            "every credential secret is sealed under the primary master key; the previous keys \
             can be removed from --previous-master-keys"
        ),
        Ok((resealed, retired)) => info!(
            resealed,
            retired = ?retired,
            "finished a master key rotation: every credential secret is sealed under the primary \
             key and the previous keys are gone from the key file"
        ),
        Err(error) => error!(
            error = %super::error::ErrorChain(&error),
            "cannot move every credential secret to the primary master key; the previous keys \
             stay until a start or a rotation succeeds"
        ),
    }
}

/// Re-seals under the primary key every stored Credential value sealed under another key, and
/// returns how many Credentials changed. Each write is conditional on the version read; a
/// Credential changed meanwhile is read again (its writer sealed under the primary key, or kept
/// the stored value, which is then moved).
pub async fn reseal_all(state: &AppState) -> Result<u64, ApiError> {
    let mut options = ListOptions {
        namespace: None,
        limit: Some(RESEAL_PAGE),
        continue_token: None,
    };
    let mut resealed = 0;
    loop {
        let page = state
            .store
            .list(Kind::Credential.plural(), &options, |_| true)
            .await?;
        for object in page.items {
            resealed += u64::from(reseal_one(state, object).await?);
        }
        match page.continue_token {
            Some(token) => options.continue_token = Some(token),
            None => return Ok(resealed),
        }
    }
}

/// Re-seals one Credential (read as `object`); says whether it was written.
async fn reseal_one(state: &AppState, mut object: Value) -> Result<bool, ApiError> {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (site, name) = (text("/metadata/namespace"), text("/metadata/name"));
    let key = ObjectKey::namespaced(Kind::Credential.plural(), &site, &name);
    for _ in 0..RESEAL_ATTEMPTS {
        let version = resource_version_of(&object);
        let changed = {
            let keys = state.keyring.keys().await;
            reseal(&keys, (&site, &name), &mut object).map_err(|source| ApiError::Secret {
                name: format!("{site}/{name}"),
                source,
            })?
        };
        if !changed {
            return Ok(false);
        }
        match state.store.update(&key, object, version).await {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict { .. }) => {}
            Err(StoreError::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error.into()),
        }
        object = match state.store.get(&key).await {
            Ok(object) => object,
            Err(StoreError::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
    }
    Err(ApiError::stale(Kind::Credential, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sites_own_appliance_pulls_and_others_learn_nothing_of_hidden_sites() {
        let appliance = |site: &str| Role::Appliance {
            site: site.into(),
            appliance: "gw".into(),
        };
        let operator = Role::Operator {
            partners: ["msp-1".to_owned()].into(),
        };
        let cases = [
            (appliance("a"), true, PullAccess::Allowed),
            (appliance("b"), false, PullAccess::Hidden),
            // Even if some tenancy rule let an appliance see another site, it may not pull.
            (appliance("b"), true, PullAccess::Hidden),
            (Role::Admin, true, PullAccess::Forbidden),
            (Role::ReadOnly, true, PullAccess::Forbidden),
            (operator.clone(), true, PullAccess::Forbidden),
            (operator, false, PullAccess::Hidden),
        ];
        for (role, visible, expected) in cases {
            assert_eq!(pull_access(&role, "a", visible), expected, "{role:?}");
        }
    }
}
