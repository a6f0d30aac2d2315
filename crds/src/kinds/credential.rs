//! `Credential`: how the appliance logs in to a site's hosts. Its secret data is write-only.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Kind, NoStatus, Object, Spec};

/// Login material for hosts, namespaced by its site.
pub type Credential = Object<CredentialSpec>;

/// Who to log in as and the secret to log in with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialSpec {
    /// What kind of secret this is; decides which `data` keys are allowed.
    #[serde(rename = "type")]
    pub type_: CredentialType,
    /// The account name on the host.
    pub username: String,
    /// The secret values. Never kept in a GitOps repo: set through the API, stored encrypted, returned
    /// only to the site's appliance.
    #[serde(default, skip_serializing_if = "SecretData::is_empty")]
    pub data: SecretData,
}

/// The kinds of credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialType {
    /// An SSH private key; `data` keys `privateKey` (OpenSSH PEM) and optional `passphrase`.
    SshKey,
    /// A password for SSH, or for signing webhooks; `data` key `password`.
    Password,
    /// A WinRM account; `data` key `password`.
    Winrm,
}

/// Secret key/value pairs whose `Debug` output shows the keys only, so that a secret never reaches a log.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SecretData(pub BTreeMap<String, String>);

impl CredentialType {
    /// The `data` keys this type allows, and whether each is required.
    pub fn data_keys(self) -> &'static [(&'static str, bool)] {
        match self {
            CredentialType::SshKey => &[("privateKey", true), ("passphrase", false)],
            CredentialType::Password | CredentialType::Winrm => &[("password", true)],
        }
    }

    /// The name as written in manifests (`"ssh-key"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::SshKey => "ssh-key",
            CredentialType::Password => "password",
            CredentialType::Winrm => "winrm",
        }
    }
}

impl SecretData {
    /// Whether there are no values (as in every manifest from a GitOps repo).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

impl Spec for CredentialSpec {
    const KIND: Kind = Kind::Credential;
    type Status = NoStatus;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_values() {
        let spec = CredentialSpec {
            type_: CredentialType::Password,
            username: "admin".into(),
            data: SecretData(BTreeMap::from([("password".into(), "hunter2".into())])),
        };
        let debug = format!("{spec:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("password"), "{debug}");
    }

    #[test]
    fn type_names_match_serde() {
        for t in [
            CredentialType::SshKey,
            CredentialType::Password,
            CredentialType::Winrm,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
