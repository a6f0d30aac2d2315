//! Small types that more than one kind uses.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The operating system family of a host, and the one a runbook is written for; a runbook applies to a
/// host only when the two are equal.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// A Linux server or workstation, managed over SSH.
    Linux,
    /// A Windows machine, managed over WinRM.
    Windows,
    /// The OsirisCare appliance itself (NixOS), managed locally by its own controller.
    Appliance,
}

/// A compliance framework that a site is held to and that runbook controls cite.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Framework {
    /// The HIPAA Security Rule (45 CFR Part 164), e.g. control `164.312(b)`.
    #[serde(rename = "HIPAA")]
    Hipaa,
    /// AICPA SOC 2 trust services criteria, e.g. `CC6.1`.
    #[serde(rename = "SOC2")]
    Soc2,
    /// PCI DSS requirements, e.g. `8.3.6`.
    #[serde(rename = "PCI-DSS")]
    PciDss,
    /// NIST Cybersecurity Framework subcategories, 1.1 (`PR.AC-1`) or 2.0 (`PR.AA-01`).
    #[serde(rename = "NIST-CSF")]
    NistCsf,
    /// CIS Benchmarks or CIS Controls recommendations, e.g. `5.2.8`.
    #[serde(rename = "CIS")]
    Cis,
}

/// An Ed25519 signature in DSSE form: which key signed and the signature bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signature {
    /// Identifier of the signing key, as the verifier's trusted key list names it.
    pub keyid: String,
    /// The 64-byte Ed25519 signature, standard base64.
    pub sig: String,
}

impl Framework {
    /// Every framework, in declaration order.
    pub const ALL: [Framework; 5] = [
        Framework::Hipaa,
        Framework::Soc2,
        Framework::PciDss,
        Framework::NistCsf,
        Framework::Cis,
    ];

    /// The name as written in manifests (`"PCI-DSS"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Hipaa => "HIPAA",
            Framework::Soc2 => "SOC2",
            Framework::PciDss => "PCI-DSS",
            Framework::NistCsf => "NIST-CSF",
            Framework::Cis => "CIS",
        }
    }
}

impl Platform {
    /// The name as written in manifests (`"linux"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::Windows => "windows",
            Platform::Appliance => "appliance",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde() {
        for framework in Framework::ALL {
            assert_eq!(serde_json::to_value(framework).unwrap(), framework.as_str());
        }
        for platform in [Platform::Linux, Platform::Windows, Platform::Appliance] {
            assert_eq!(serde_json::to_value(platform).unwrap(), platform.as_str());
        }
    }
}
