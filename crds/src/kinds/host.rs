//! `Host`: one machine at a site that the appliance checks and heals.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Kind, Object, Platform, Spec};
use crate::condition::Condition;
use crate::defaults;

/// A managed machine, namespaced by its site. Its labels decide which runbooks apply to it.
pub type Host = Object<HostSpec>;

/// Condition type: the appliance could reach the host over its transport at the last attempt.
pub const CONDITION_REACHABLE: &str = "Reachable";
/// Condition type: every applicable check on the host passes or was healed.
pub const CONDITION_COMPLIANT: &str = "Compliant";

/// How to reach a host and what it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostSpec {
    /// DNS name or IP address the appliance connects to; required unless the transport is `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Operating system family; selects which runbooks can apply.
    pub platform: Platform,
    /// How the appliance runs scripts on the host; defaults follow the platform (linux: ssh on 22,
    /// windows: winrm on 5986, appliance: local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
}

/// The channel scripts run over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transport {
    /// `local` (the appliance itself), `ssh` (linux, appliance) or `winrm` (windows).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<TransportType>,
    /// TCP port; defaults to 22 for ssh and 5986 (WinRM over HTTPS) for winrm; none for local.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Name of the Credential in the same site used to log in; required for ssh and winrm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_ref: Option<String>,
}

/// The kinds of transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportType {
    /// Processes on the appliance itself; only for `platform: appliance`.
    Local,
    /// OpenSSH; for linux and appliance hosts.
    Ssh,
    /// Windows Remote Management; for windows hosts.
    Winrm,
}

/// What the appliance observed about a host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostStatus {
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Reachable` and `Compliant`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Latest result per runbook name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub results: BTreeMap<String, RunbookResult>,
    /// SSH host key fingerprint (`SHA256:<base64>`) pinned on first contact; a different key later is
    /// refused as a possible man in the middle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

/// The latest outcome of one runbook on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunbookResult {
    /// What happened.
    pub result: CheckResult,
    /// When the check last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<DateTime<Utc>>,
    /// When a remediation last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_healed: Option<DateTime<Utc>>,
    /// Remediation attempts in the current drift episode (reset when the check passes).
    #[serde(default)]
    pub attempts: u32,
    /// Digest (`sha256:<hex>`) of the runbook content that produced the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_digest: Option<String>,
    /// Short human-readable detail, such as why a check errored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The outcome of reconciling one (host, runbook) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CheckResult {
    /// The check passed; nothing to do.
    Pass,
    /// The check failed and healing was not attempted (audit mode or no remediation).
    Drifted,
    /// The check failed, remediation ran and the verification passed.
    Healed,
    /// Remediation ran but verification still fails; it will be retried within the attempt budget.
    Failed,
    /// The attempt budget is spent or healing flaps; people were notified.
    Escalated,
    /// Healing waits for the maintenance window (disruptive runbook) or a sane clock.
    Deferred,
    /// An exception covers the pair; checked but not healed or scored.
    Waived,
    /// The check could not run (unreachable host, timeout, bad signature).
    Error,
    /// The check reported that the runbook does not apply to this host.
    NotApplicable,
}

impl HostSpec {
    /// The transport in force: the one given, or the platform's default.
    pub fn transport_type(&self) -> TransportType {
        self.transport
            .as_ref()
            .and_then(|t| t.type_)
            .unwrap_or_else(|| defaults::transport_type(self.platform))
    }
}

impl TransportType {
    /// The name as written in manifests (`"winrm"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportType::Local => "local",
            TransportType::Ssh => "ssh",
            TransportType::Winrm => "winrm",
        }
    }
}

impl Spec for HostSpec {
    const KIND: Kind = Kind::Host;
    type Status = HostStatus;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_names_match_serde() {
        for t in [
            TransportType::Local,
            TransportType::Ssh,
            TransportType::Winrm,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    #[test]
    fn transport_in_force_table() {
        let host = |platform, type_: Option<TransportType>| HostSpec {
            address: None,
            platform,
            transport: type_.map(|type_| Transport {
                type_: Some(type_),
                ..Transport::default()
            }),
        };
        let cases = [
            (Platform::Linux, None, TransportType::Ssh),
            (Platform::Windows, None, TransportType::Winrm),
            (Platform::Appliance, None, TransportType::Local),
            (
                Platform::Appliance,
                Some(TransportType::Ssh),
                TransportType::Ssh,
            ),
        ];
        for (platform, given, expected) in cases {
            assert_eq!(
                host(platform, given).transport_type(),
                expected,
                "{platform:?} {given:?}"
            );
        }
    }
}
