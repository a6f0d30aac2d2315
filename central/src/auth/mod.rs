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

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The token's name, as its creator gave it (for an appliance, `<site>/<appliance>`); shown in
    /// the audit log.
    pub name: String,
    /// The token's id (the public part of the token), for the audit log and revocation.
    pub token_id: String,
    /// What the principal may do.
    pub role: Role,
}

/// What a principal may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "role")]
pub enum Role {
    /// Everything, including tokens, the audit log and master-key rotation.
    Admin,
    /// Read and write the Sites whose `spec.partner` is one of `partners`, and everything in their
    /// namespaces; read the shared catalogue (Runbooks, Releases, Rollouts).
    Operator {
        /// The MSPs (partners) this operator works for.
        partners: BTreeSet<String>,
    },
    /// Read everything except secret data.
    #[serde(rename = "readonly")]
    ReadOnly,
    /// One enrolled appliance: read its own site's desired state and credentials (secret data
    /// included), write its site's Host and Appliance status, post evidence.
    Appliance {
        /// The site (namespace) the appliance belongs to.
        site: String,
        /// The Appliance object's name.
        appliance: String,
    },
}
