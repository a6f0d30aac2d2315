//! `Site`: one customer practice. Its name is the namespace of its Hosts, Appliances and Credentials.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Framework, Kind, Object, Spec};
use crate::condition::Condition;
use crate::defaults;
use crate::duration::Duration;
use crate::validate::spec::{FLAP_THRESHOLD_RANGE, MAX_ATTEMPTS_RANGE};
use crate::window::MaintenanceWindow;

/// A customer site (a practice), cluster-scoped.
pub type Site = Object<SiteSpec>;

/// Condition type: the site's appliance and configuration are in working order.
pub const CONDITION_READY: &str = "Ready";
/// Condition type: every applicable check at the site passes or was healed.
pub const CONDITION_COMPLIANT: &str = "Compliant";
/// Condition type: at least one of the site's appliances sent a heartbeat recently.
pub const CONDITION_APPLIANCE_ONLINE: &str = "ApplianceOnline";

/// What a site wants: who manages it, when disruptive work may happen, how drift is healed, which
/// runbooks run on which hosts, and who hears about problems.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteSpec {
    /// Human-readable name of the practice, shown in the dashboard and reports.
    pub display_name: String,
    /// Identifier of the managed-service provider (MSP) responsible for the site; tenancy follows it.
    pub partner: String,
    /// Whether the MSP buys through a reseller or directly; recorded in every evidence bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::deployment_mode")]
    pub deployment_mode: Option<DeploymentMode>,
    /// Identifier of the reseller; required with `deploymentMode: reseller`, forbidden otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller_id: Option<String>,
    /// When disruptive runbooks and appliance reboots may run; 02:00–05:00 UTC every day by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::maintenance_window")]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// How drift is handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healing: Option<Healing>,
    /// Which runbooks run on which hosts; the union of all entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runbooks: Vec<RunbookSelection>,
    /// Frameworks whose compliance scores the site reports; HIPAA when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frameworks: Vec<Framework>,
    /// Approved, expiring waivers: a waived (runbook, host) pair is checked but neither healed nor counted
    /// against the score.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<Exception>,
    /// Where escalations (healing that failed or flaps) are sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationTarget>,
}

/// How the MSP that manages a site is contracted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentMode {
    /// The MSP buys through a reseller, named by `resellerId`.
    Reseller,
    /// The MSP contracts directly.
    Direct,
}

/// The healing policy of a site.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Healing {
    /// `enforce` heals drift, `audit` only reports it, `off` does not even check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::healing_mode")]
    pub mode: Option<HealingMode>,
    /// Remediation attempts for one drifted (host, runbook) pair before it is escalated; the budget
    /// resets when the check passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::max_attempts", range(min = MAX_ATTEMPTS_RANGE.0, max = MAX_ATTEMPTS_RANGE.1))]
    pub max_attempts: Option<u32>,
    /// Heals of one pair within this window that count as flapping (see `flapThreshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::flap_window")]
    pub flap_window: Option<Duration>,
    /// A pair healed this many times within `flapWindow` is escalated instead of healed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        default = "defaults::flap_threshold",
        range(min = FLAP_THRESHOLD_RANGE.0, max = FLAP_THRESHOLD_RANGE.1)
    )]
    pub flap_threshold: Option<u32>,
}

/// Whether and how a site's appliance acts on drift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealingMode {
    /// Check, and remediate drift.
    Enforce,
    /// Check and report drift, never remediate.
    Audit,
    /// Neither check nor remediate.
    Off,
}

/// One entry of a site's runbook selection: these runbooks on these hosts.
///
/// A runbook is selected when it is named in `names` or its labels match `selector`; it runs on every
/// host matched by `hosts` whose platform equals the runbook's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunbookSelection {
    /// Label selector over the site's Hosts (e.g. `role=ehr,tier!=test`); every host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
    /// Runbooks selected by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Label selector over Runbooks; at least one of `names` and `selector` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// How often the selected runbooks check these hosts, overriding each runbook's own `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Values for the runbooks' declared parameters, overriding their defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// A waiver of one runbook on some hosts, with who approved it, why, and until when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exception {
    /// Name of the waived Runbook.
    pub runbook: String,
    /// The hosts the waiver covers.
    pub hosts: HostTarget,
    /// Why the control does not apply or is accepted as a risk; kept as audit evidence.
    pub justification: String,
    /// When the waiver lapses (RFC 3339); required, because a HIPAA risk acceptance must be reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    /// Who approved the waiver (a person, e.g. the practice's security officer).
    pub approved_by: String,
}

/// A set of a site's hosts, given either by name or by label selector (exactly one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostTarget {
    /// Hosts by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Hosts by label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// One place escalations go; exactly one of `webhook` and `syslog` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationTarget {
    /// An HTTP(S) endpoint that receives a JSON POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookTarget>,
    /// A syslog collector that receives an RFC 5424 message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogTarget>,
}

/// A webhook notification target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookTarget {
    /// The `http` or `https` URL to POST to.
    pub url: String,
    /// Name of a `password` Credential in the site whose password is the HMAC-SHA256 key that signs each
    /// body; unsigned when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
}

/// A syslog notification target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyslogTarget {
    /// The collector as `host:port` (`[v6]:port` for IPv6 literals).
    pub address: String,
    /// Transport to the collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::syslog_protocol")]
    pub protocol: Option<SyslogProtocol>,
    /// Syslog facility of the messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::syslog_facility")]
    pub facility: Option<SyslogFacility>,
}

/// Syslog transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    /// RFC 5426, one message per datagram.
    Udp,
    /// RFC 6587 octet-counted framing.
    Tcp,
}

/// Syslog facility of notification messages (RFC 5424 numbers in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFacility {
    /// Kernel messages (0).
    Kern,
    /// User-level messages (1).
    User,
    /// Mail system (2).
    Mail,
    /// System daemons (3).
    Daemon,
    /// Security/authorization (4).
    Auth,
    /// Syslogd itself (5).
    Syslog,
    /// Line printer (6).
    Lpr,
    /// Network news (7).
    News,
    /// UUCP (8).
    Uucp,
    /// Clock daemon (9).
    Cron,
    /// Private security/authorization (10).
    Authpriv,
    /// FTP daemon (11).
    Ftp,
    /// Local use 0 (16).
    Local0,
    /// Local use 1 (17).
    Local1,
    /// Local use 2 (18).
    Local2,
    /// Local use 3 (19).
    Local3,
    /// Local use 4 (20).
    Local4,
    /// Local use 5 (21).
    Local5,
    /// Local use 6 (22).
    Local6,
    /// Local use 7 (23).
    Local7,
}

/// What central observed about a site, rolled up from its hosts and appliances.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteStatus {
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Compliant` and `ApplianceOnline`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Compliance score per framework as a ratio in [0, 1]:
    /// (pass + healed) / (all results − not applicable − waived), counting results older than two
    /// intervals as "no answer" (in the total, not compliant).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compliance: BTreeMap<Framework, f64>,
    /// How the site's checks stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<SiteCounts>,
}

/// Counts behind a site's score. Except `hosts`, each counts (host, runbook) pairs by latest result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteCounts {
    /// Hosts at the site.
    pub hosts: u32,
    /// Pairs whose latest result is `pass` or `healed`.
    pub compliant: u32,
    /// Pairs whose latest result is `drifted` or `deferred`.
    pub drifted: u32,
    /// Pairs whose latest result is `failed`, `escalated` or `error`.
    pub failing: u32,
    /// Pairs with no result, or one older than two intervals.
    pub no_answer: u32,
    /// Pairs covered by an exception.
    pub waived: u32,
    /// Pairs whose check found the runbook does not apply.
    pub not_applicable: u32,
}

impl Spec for SiteSpec {
    const KIND: Kind = Kind::Site;
    type Status = SiteStatus;
}
