//! Identities on the wire: roles, the token and audit endpoints' bodies, and appliance
//! enrollment.
//!
//! Central serves these under `/osc/v1` (outside the Kubernetes resource API, since tokens and
//! audit records are not resources); `oscctl` and the controller read them with these types.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dsse;

/// The payload type bound into an enrollment proof: the appliance signs
/// `PAE(ENROLLMENT_PAYLOAD_TYPE, token)` with its new key, which proves it holds the private key
/// whose public half it enrolls, and that signature cannot pass for any other signed document.
pub const ENROLLMENT_PAYLOAD_TYPE: &str = "application/vnd.osiriscare.enrollment.v1";

/// The bytes an enrolling appliance signs for its proof.
pub fn enrollment_proof_message(token: &str) -> Vec<u8> {
    dsse::pae(ENROLLMENT_PAYLOAD_TYPE, token.as_bytes())
}

/// What a principal may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "role", deny_unknown_fields)]
pub enum Role {
    /// Everything, including tokens, the audit log and master-key rotation.
    #[serde(rename = "admin")]
    Admin,
    /// Read and write the Sites whose `spec.partner` is one of `partners`, and everything in
    /// their namespaces; read the shared catalogue (Runbooks, Releases, Rollouts).
    #[serde(rename = "operator")]
    Operator {
        /// The MSPs (partners) this operator works for.
        partners: BTreeSet<String>,
    },
    /// Read everything except secret data.
    #[serde(rename = "readonly")]
    ReadOnly,
    /// One enrolled appliance: read its own site's desired state and credentials (secret data
    /// included), write its site's Host and Appliance status, post evidence.
    #[serde(rename = "appliance")]
    Appliance {
        /// The site (namespace) the appliance belongs to.
        site: String,
        /// The Appliance object's name.
        appliance: String,
    },
}

/// `POST /osc/v1/tokens`: a new bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// A name people recognise.
    pub name: String,
    /// What it may do (appliance tokens come from enrollment, not from here).
    pub role: Role,
    /// When it stops working; absent for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenInfo {
    /// Its public id (the part after `osc_`, before the dot).
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The answer to a token request: the only time the secret is sent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuedToken {
    /// The token as listed.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The bearer token to send as `Authorization: Bearer <token>`.
    pub token: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// A list of items (tokens, audit records) with the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One mutating request, as `GET /osc/v1/audit` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditEntry {
    /// Its position in the log.
    pub id: i64,
    /// When it was answered.
    pub time: DateTime<Utc>,
    /// Who (the token's name).
    pub principal: String,
    /// With which token.
    pub token_id: String,
    /// The HTTP method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The HTTP status it was answered with.
    pub code: u16,
}

/// `POST /osc/v1/sites/{site}/enrollment-tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollmentTokenRequest {
    /// How long it stays valid, in seconds (default a day, at most a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// A one-time enrollment token, returned once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollmentToken {
    /// The site an appliance enrolled with it joins.
    pub site: String,
    /// The token, for `osc-controller enroll --token`.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("site", &self.site)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `POST /osc/v1/enroll`: an appliance joins its site. Sent without a bearer token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token.
    pub token: String,
    /// The Appliance object's name (a DNS label).
    pub appliance: String,
    /// The appliance's Ed25519 public key, standard base64 of 32 bytes.
    pub public_key: String,
    /// Base64 Ed25519 signature, by that key, over [`enrollment_proof_message`] of the token.
    pub proof: String,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("appliance", &self.appliance)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// What an enrolled appliance needs to run.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollResponse {
    /// Its site.
    pub site: String,
    /// Its Appliance object's name.
    pub appliance: String,
    /// The DSSE keyid of its key, as evidence signatures name it.
    pub key_id: String,
    /// Its own bearer token.
    pub token: String,
    /// The PEM of the CA to pin for central, when central runs on its private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

impl std::fmt::Debug for EnrollResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollResponse")
            .field("site", &self.site)
            .field("appliance", &self.appliance)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_as_tagged_objects() {
        let operator: Role =
            serde_json::from_str(r#"{"role":"operator","partners":["acme"]}"#).unwrap();
        assert_eq!(
            operator,
            Role::Operator {
                partners: ["acme".to_owned()].into()
            }
        );
        assert_eq!(
            serde_json::to_string(&Role::ReadOnly).unwrap(),
            r#"{"role":"readonly"}"#
        );
        assert!(serde_json::from_str::<Role>(r#"{"role":"root"}"#).is_err());
        assert!(
            serde_json::from_str::<Role>(r#"{"role":"operator","partners":[],"sites":[]}"#)
                .is_err()
        );
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let enroll = EnrollRequest {
            token: "osce_0123456789abcdef.hush".to_owned(),
            appliance: "box".to_owned(),
            public_key: "key".to_owned(),
            proof: "proof".to_owned(),
        };
        assert!(!format!("{enroll:?}").contains("hush"));
    }
}
