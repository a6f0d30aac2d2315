//! Credential secrets on the wire: what the appliance's credential pull answers, and what a
//! master-key rotation reports.
//!
//! Central serves [`CredentialData`] at
//! `GET /apis/osiriscare.net/v1alpha1/namespaces/{site}/credentials/{name}/data` to the site's
//! appliance only, and [`MasterKeyRotation`] from `POST /osc/v1/master-key/rotate`. The secret
//! values are [`Zeroizing`] strings on both sides, wiped when dropped, and `Debug` shows the keys
//! only, so a secret never reaches a log through these types.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The `kind` of [`CredentialData`].
pub const CREDENTIAL_DATA_KIND: &str = "CredentialData";

/// The `kind` of [`MasterKeyRotation`].
pub const MASTER_KEY_ROTATION_KIND: &str = "MasterKeyRotation";

/// The decrypted secret of one Credential, for its site's appliance.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialData {
    /// `osiriscare.net/v1alpha1`.
    pub api_version: String,
    /// [`CREDENTIAL_DATA_KIND`].
    pub kind: String,
    /// Which Credential, at which version.
    pub metadata: CredentialDataMeta,
    /// The credential type (`ssh-key`, `password`, `winrm`).
    #[serde(rename = "type")]
    pub type_: String,
    /// The account to log in as.
    pub username: String,
    /// The secret values by data key (`password`, `privateKey`, `passphrase`).
    pub data: BTreeMap<String, Zeroizing<String>>,
}

/// The Credential a [`CredentialData`] was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialDataMeta {
    /// The Credential's name.
    pub name: String,
    /// Its site.
    pub namespace: String,
    /// The Credential's resourceVersion when read, so the appliance can tell whether the secret
    /// it holds is current.
    pub resource_version: String,
}

/// Shows the data keys, never the values.
impl fmt::Debug for CredentialData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialData")
            .field("metadata", &self.metadata)
            .field("type", &self.type_)
            .field("username", &self.username)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What a master-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MasterKeyRotation {
    /// `osiriscare.net/v1alpha1`.
    pub api_version: String,
    /// [`MASTER_KEY_ROTATION_KIND`].
    pub kind: String,
    /// The id of the key every secret is now sealed under.
    pub primary_key_id: String,
    /// The ids of the keys removed from the key file.
    pub retired_key_ids: Vec<String>,
    /// How many Credentials were re-sealed.
    pub resealed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_data_round_trips_and_debug_hides_the_values() {
        let text = r#"{"apiVersion":"osiriscare.net/v1alpha1","kind":"CredentialData","metadata":{"name":"ssh","namespace":"alpha","resourceVersion":"7"},"type":"password","username":"svc","data":{"password":"hunter2"}}"#;
        let data: CredentialData = serde_json::from_str(text).unwrap();
        assert_eq!(data.data["password"].as_str(), "hunter2");
        assert_eq!(serde_json::to_string(&data).unwrap(), text);
        let debug = format!("{data:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("password"), "{debug}");
    }
}
