//! Who is asking, and what they may see and do.
//!
//! Every request under the API carries a bearer token; the authentication layer resolves it to a
//! [`Principal`] (a name and a [`Role`]) and puts it in the request's extensions, where handlers
//! take it with `axum::Extension<Principal>`. A request without a valid token gets 401 before any
//! handler runs.
//!
//! Tenancy rule: what a principal may not see does not exist for it. Another partner's Site, or a
//! site an appliance does not belong to, answers 404 (never 403) and is left out of lists and
//! watches; 403 is only for an object the principal can see but may not change.

pub use osc_proto::auth::Role;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name, as its creator gave it (for an appliance, `<site>/<appliance>`); shown in
    /// the audit log.
    pub name: String,
    /// The token's id (the public part of the token), for the audit log and revocation.
    pub token_id: String,
    /// What the principal may do.
    pub role: Role,
}

mod enroll;
mod layer;
pub mod policy;
mod routes;
mod tokens;

use chrono::{DateTime, Utc};
use osc_crds::Kind;
use serde_json::Value;

pub use layer::{AuditWriter, audit_writer, authenticate};
pub use policy::{Decision, SiteRef, Verb, Visibility};
pub(crate) use routes::require_admin;
pub use routes::{public_routes, routes};
pub use tokens::{Auth, BOOTSTRAP_TOKEN_FILE, BootstrapError, IssuedToken, TokenError, TokenSpec};

use crate::api::{ApiError, AppState};
use crate::store::{ListOptions, ObjectKey, StoreError};

impl Principal {
    /// The server itself, for writes that no request makes (`--seed`, enrollment).
    pub fn system() -> Self {
        Self {
            name: "system".to_owned(),
            token_id: String::new(),
            role: Role::Admin,
        }
    }

    /// Whether this is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Checks that `principal` may do `verb` to the object `name` of `kind` in `namespace` (or to
/// the collection, when `name` is `None`), and returns what of a collection it may see.
///
/// A hidden object answers as a missing one would: a named object 404s as not found, a write
/// into a hidden site 404s as a missing Site, and a read of a hidden collection sees nothing.
pub async fn authorize(
    state: &AppState,
    principal: &Principal,
    kind: Kind,
    namespace: Option<&str>,
    name: Option<&str>,
    verb: Verb,
) -> Result<Visibility, ApiError> {
    let site_name = if kind == Kind::Site { name } else { namespace };
    let partner = match site_name {
        Some(site) if needs_partner(&principal.role) => site_partner(state, site).await?,
        _ => None,
    };
    let site = site_name.map(|name| SiteRef {
        name,
        partner: partner.as_deref(),
    });
    match policy::decide(&principal.role, kind, name, site, verb) {
        Decision::Allow if name.is_some() || namespace.is_some() => Ok(Visibility::All),
        Decision::Allow => visibility(state, &principal.role, kind).await,
        Decision::Hidden => match (name, namespace) {
            (Some(name), _) => Err(ApiError::NotFound {
                kind,
                name: name.to_owned(),
            }),
            (None, Some(site)) if verb != Verb::Read => Err(ApiError::NotFound {
                kind: Kind::Site,
                name: site.to_owned(),
            }),
            (None, _) => Ok(Visibility::Nothing),
        },
        Decision::Forbidden(why) => Err(ApiError::Forbidden {
            kind,
            name: name.unwrap_or_default().to_owned(),
            why,
        }),
    }
}

/// 404 (as a missing Site) unless `principal` may see `site`; for routes outside the resource
/// API that concern one site (evidence, enrollment tokens, credential data).
pub async fn visible_site(
    state: &AppState,
    principal: &Principal,
    site: &str,
) -> Result<(), ApiError> {
    authorize(state, principal, Kind::Site, None, Some(site), Verb::Read)
        .await
        .map(drop)
}

/// Refuses a Site that an operator writes with a partner it does not hold: admission's check
/// of the object as it will be stored (the stored one was checked by [`authorize`]).
pub fn check_site_partner(
    principal: &Principal,
    kind: Kind,
    object: &Value,
) -> Result<(), ApiError> {
    let Role::Operator { partners } = &principal.role else {
        return Ok(());
    };
    if kind != Kind::Site {
        return Ok(());
    }
    let partner = object["spec"]["partner"].as_str().unwrap_or_default();
    if partners.contains(partner) {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        kind,
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        why: format!(
            "this operator token works for partners {}; spec.partner {partner:?} is not one of them",
            partners.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    })
}

/// Whether deciding for `role` needs the site's partner.
fn needs_partner(role: &Role) -> bool {
    matches!(role, Role::Operator { .. })
}

/// The stored Site's `spec.partner`, or `None` when there is no such Site.
async fn site_partner(state: &AppState, site: &str) -> Result<Option<String>, ApiError> {
    match state
        .store
        .get(&ObjectKey::cluster(Kind::Site.plural(), site))
        .await
    {
        Ok(object) => Ok(object["spec"]["partner"].as_str().map(str::to_owned)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// What of a collection of `kind` a role sees; an operator's sites are read now.
async fn visibility(state: &AppState, role: &Role, kind: Kind) -> Result<Visibility, ApiError> {
    Ok(match role {
        Role::Admin | Role::ReadOnly => Visibility::All,
        Role::Appliance { .. } if kind == Kind::Rollout => Visibility::Nothing,
        Role::Appliance { site, .. } => Visibility::Site(site.clone()),
        Role::Operator { partners } => {
            let options = ListOptions::default();
            let sites = state
                .store
                .list(Kind::Site.plural(), &options, |site| {
                    site["spec"]["partner"]
                        .as_str()
                        .is_some_and(|partner| partners.contains(partner))
                })
                .await?
                .items
                .iter()
                .filter_map(|site| site["metadata"]["name"].as_str().map(str::to_owned))
                .collect();
            Visibility::Partners {
                partners: partners.clone(),
                sites,
            }
        }
    })
}

/// Milliseconds since the epoch as a time, for rows.
fn time_of(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}
