//! Every default of the resource model, in one place.
//!
//! Defaulted fields are `Option`s in the types, so that an object keeps what its author wrote until
//! [`ApplyDefaults::apply_defaults`] fills the gaps (the server does so on every write). The same
//! functions feed the `default` shown in the JSON Schemas, so documentation and behaviour cannot drift
//! apart. Applying defaults twice changes nothing.

use std::time::Duration as StdDuration;

use crate::kinds::appliance::{Partitions, Slot, SlotPartition};
use crate::kinds::host::{Transport, TransportType};
use crate::kinds::rollout::{MaxFailures, Wave};
use crate::kinds::runbook::{Expect, Step};
use crate::kinds::site::{DeploymentMode, Healing, HealingMode, SyslogFacility, SyslogProtocol};
use crate::kinds::{
    ApplianceSpec, CredentialSpec, Framework, HostSpec, Object, Platform, ReleaseSpec, RolloutSpec,
    RunbookSpec, SiteSpec, Spec,
};
use crate::window::MaintenanceWindow;

/// Maintenance window start: 02:00, when a practice is closed.
pub const MAINTENANCE_START: &str = "02:00";
/// Maintenance window end: 05:00, before staff arrive.
pub const MAINTENANCE_END: &str = "05:00";
/// Timezone of a maintenance window that names none.
pub const MAINTENANCE_TIMEZONE: &str = "UTC";
/// Deployment mode of a site that names none.
pub const DEPLOYMENT_MODE: DeploymentMode = DeploymentMode::Direct;
/// Healing mode: heal, because routine drift should need no person.
pub const HEALING_MODE: HealingMode = HealingMode::Enforce;
/// Remediation attempts per drift episode before escalation.
pub const MAX_ATTEMPTS: u32 = 3;
/// The window in which repeated heals count as flapping.
pub const FLAP_WINDOW: StdDuration = StdDuration::from_secs(24 * 3_600);
/// Heals within [`FLAP_WINDOW`] after which a pair is escalated instead of healed again.
pub const FLAP_THRESHOLD: u32 = 3;
/// Frameworks of a site that names none: OsirisCare exists for HIPAA.
pub const FRAMEWORKS: [Framework; 1] = [Framework::Hipaa];
/// Syslog transport.
pub const SYSLOG_PROTOCOL: SyslogProtocol = SyslogProtocol::Udp;
/// Syslog facility, one reserved for local use so collectors can route it.
pub const SYSLOG_FACILITY: SyslogFacility = SyslogFacility::Local0;
/// SSH port.
pub const SSH_PORT: u16 = 22;
/// WinRM over HTTPS port (never plain-HTTP 5985: credentials would cross the network readable).
pub const WINRM_PORT: u16 = 5986;
/// GPT partition name of slot A.
pub const SLOT_A_PART_LABEL: &str = "osc-a";
/// GPT partition name of slot B.
pub const SLOT_B_PART_LABEL: &str = "osc-b";
/// How often a runbook's check runs on each host.
pub const CHECK_INTERVAL: StdDuration = StdDuration::from_secs(15 * 60);
/// How long one script may run.
pub const SCRIPT_TIMEOUT: StdDuration = StdDuration::from_secs(60);
/// The exit code of success.
pub const EXIT_CODE: i32 = 0;
/// Failures tolerated by a rollout: 10% of its targets.
pub const MAX_FAILURES: MaxFailures = MaxFailures::Percent(10);
/// Whether appliances wait for the maintenance window to reboot.
pub const RESPECT_MAINTENANCE_WINDOWS: bool = true;
/// Percent of a wave that must succeed before the next starts; 90 leaves room for the default
/// [`MAX_FAILURES`] so that one failure does not stall a wave.
pub const SUCCESS_THRESHOLD: u32 = 90;
/// The single wave of a rollout that names none.
pub const FINAL_WAVE_PERCENT: u32 = 100;

/// The transport of a host that names none: the one its platform is managed over.
pub fn transport_type(platform: Platform) -> TransportType {
    match platform {
        Platform::Linux => TransportType::Ssh,
        Platform::Windows => TransportType::Winrm,
        Platform::Appliance => TransportType::Local,
    }
}

/// Filling the fields an author left out with their defaults.
pub trait ApplyDefaults {
    /// Sets every absent defaulted field; fields already set are left alone, so this is idempotent.
    fn apply_defaults(&mut self);
}

impl<S: Spec + ApplyDefaults> ApplyDefaults for Object<S> {
    fn apply_defaults(&mut self) {
        self.spec.apply_defaults();
    }
}

impl ApplyDefaults for SiteSpec {
    fn apply_defaults(&mut self) {
        fill(&mut self.deployment_mode, deployment_mode);
        fill(&mut self.maintenance_window, maintenance_window);
        if let Some(window) = &mut self.maintenance_window {
            fill(&mut window.timezone, maintenance_timezone);
        }
        let healing = self.healing.get_or_insert_with(Healing::default);
        fill(&mut healing.mode, healing_mode);
        fill(&mut healing.max_attempts, max_attempts);
        fill(&mut healing.flap_window, flap_window);
        fill(&mut healing.flap_threshold, flap_threshold);
        if self.frameworks.is_empty() {
            self.frameworks = FRAMEWORKS.to_vec();
        }
        for syslog in self
            .notifications
            .iter_mut()
            .filter_map(|n| n.syslog.as_mut())
        {
            fill(&mut syslog.protocol, syslog_protocol);
            fill(&mut syslog.facility, syslog_facility);
        }
    }
}

impl ApplyDefaults for HostSpec {
    fn apply_defaults(&mut self) {
        let transport = self.transport.get_or_insert_with(Transport::default);
        let type_ = *transport.type_.get_or_insert(transport_type(self.platform));
        if transport.port.is_none() {
            transport.port = match type_ {
                TransportType::Ssh => Some(SSH_PORT),
                TransportType::Winrm => Some(WINRM_PORT),
                TransportType::Local => None,
            };
        }
    }
}

impl ApplyDefaults for ApplianceSpec {
    fn apply_defaults(&mut self) {
        fill(&mut self.partitions, partitions);
    }
}

impl ApplyDefaults for CredentialSpec {
    /// Credentials have no defaults.
    fn apply_defaults(&mut self) {}
}

impl ApplyDefaults for RunbookSpec {
    fn apply_defaults(&mut self) {
        fill(&mut self.interval, check_interval);
        for step in [
            Some(&mut self.check),
            self.remediate.as_mut(),
            self.verify.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            default_step(step);
        }
    }
}

impl ApplyDefaults for ReleaseSpec {
    /// Releases have no defaults: every field is part of what was signed.
    fn apply_defaults(&mut self) {}
}

impl ApplyDefaults for RolloutSpec {
    fn apply_defaults(&mut self) {
        if self.waves.is_empty() {
            self.waves.push(Wave {
                percent: Some(FINAL_WAVE_PERCENT),
                ..Wave::default()
            });
        }
        for wave in &mut self.waves {
            fill(&mut wave.success_threshold, success_threshold);
        }
        fill(&mut self.max_failures, max_failures);
        fill(
            &mut self.respect_maintenance_windows,
            respect_maintenance_windows,
        );
    }
}

/// Defaults of one runbook step.
fn default_step(step: &mut Step) {
    fill(&mut step.timeout, script_timeout);
    fill(&mut step.expect, expect);
    if let Some(expect) = &mut step.expect {
        fill(&mut expect.exit_code, exit_code);
    }
}

/// Sets `field` from `default` when it is absent.
fn fill<T>(field: &mut Option<T>, default: fn() -> Option<T>) {
    if field.is_none() {
        *field = default();
    }
}

// The defaults as the `Option` values the fields hold; `#[schemars(default = …)]` shows them in the schema.

pub(crate) fn deployment_mode() -> Option<DeploymentMode> {
    Some(DEPLOYMENT_MODE)
}

pub(crate) fn maintenance_window() -> Option<MaintenanceWindow> {
    Some(MaintenanceWindow {
        start: MAINTENANCE_START.to_owned(),
        end: MAINTENANCE_END.to_owned(),
        timezone: maintenance_timezone(),
        days: Vec::new(),
    })
}

pub(crate) fn maintenance_timezone() -> Option<String> {
    Some(MAINTENANCE_TIMEZONE.to_owned())
}

pub(crate) fn healing_mode() -> Option<HealingMode> {
    Some(HEALING_MODE)
}

pub(crate) fn max_attempts() -> Option<u32> {
    Some(MAX_ATTEMPTS)
}

pub(crate) fn flap_window() -> Option<crate::Duration> {
    Some(FLAP_WINDOW.into())
}

pub(crate) fn flap_threshold() -> Option<u32> {
    Some(FLAP_THRESHOLD)
}

pub(crate) fn syslog_protocol() -> Option<SyslogProtocol> {
    Some(SYSLOG_PROTOCOL)
}

pub(crate) fn syslog_facility() -> Option<SyslogFacility> {
    Some(SYSLOG_FACILITY)
}

pub(crate) fn partitions() -> Option<Partitions> {
    Some(Partitions {
        slots: vec![
            SlotPartition {
                name: Slot::A,
                part_label: SLOT_A_PART_LABEL.to_owned(),
            },
            SlotPartition {
                name: Slot::B,
                part_label: SLOT_B_PART_LABEL.to_owned(),
            },
        ],
    })
}

pub(crate) fn check_interval() -> Option<crate::Duration> {
    Some(CHECK_INTERVAL.into())
}

pub(crate) fn script_timeout() -> Option<crate::Duration> {
    Some(SCRIPT_TIMEOUT.into())
}

pub(crate) fn expect() -> Option<Expect> {
    Some(Expect {
        exit_code: exit_code(),
        output_contains: None,
        not_applicable_exit_code: None,
        undecided_exit_code: None,
    })
}

pub(crate) fn exit_code() -> Option<i32> {
    Some(EXIT_CODE)
}

pub(crate) fn max_failures() -> Option<MaxFailures> {
    Some(MAX_FAILURES)
}

pub(crate) fn respect_maintenance_windows() -> Option<bool> {
    Some(RESPECT_MAINTENANCE_WINDOWS)
}

pub(crate) fn success_threshold() -> Option<u32> {
    Some(SUCCESS_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::AnyObject;
    use serde_json::json;

    fn object(json: serde_json::Value) -> AnyObject {
        AnyObject::from_json(json).unwrap()
    }

    fn minimal_objects() -> Vec<AnyObject> {
        let meta = |ns: Option<&str>| match ns {
            Some(ns) => json!({"name": "x", "namespace": ns}),
            None => json!({"name": "x"}),
        };
        let make = |kind: &str, ns: Option<&str>, spec: serde_json::Value| {
            object(json!({
                "apiVersion": "osiriscare.net/v1alpha1", "kind": kind, "metadata": meta(ns), "spec": spec
            }))
        };
        vec![
            make(
                "Site",
                None,
                json!({"displayName": "A", "partner": "p",
                       "maintenanceWindow": {"start": "01:00", "end": "03:00"},
                       "notifications": [{"syslog": {"address": "log:514"}}]}),
            ),
            make(
                "Host",
                Some("s"),
                json!({"platform": "linux", "address": "h"}),
            ),
            make(
                "Host",
                Some("s"),
                json!({"platform": "windows", "address": "h"}),
            ),
            make("Host", Some("s"), json!({"platform": "appliance"})),
            make("Appliance", Some("s"), json!({})),
            make(
                "Credential",
                Some("s"),
                json!({"type": "password", "username": "u"}),
            ),
            make(
                "Runbook",
                None,
                json!({"platform": "linux", "severity": "low",
                       "check": {"interpreter": "sh", "script": "true", "expect": {"outputContains": "ok"}},
                       "remediate": {"interpreter": "sh", "script": "true"}}),
            ),
            make(
                "Release",
                None,
                json!({"version": "1.0.0", "image": {"url": "https://x/i", "sha256": "00", "size": 1}}),
            ),
            make(
                "Rollout",
                None,
                json!({"release": "r", "waves": [{"count": 1}, {"percent": 100}]}),
            ),
        ]
    }

    #[test]
    fn applying_defaults_twice_changes_nothing() {
        for mut object in minimal_objects() {
            object.apply_defaults();
            let once = object.clone();
            object.apply_defaults();
            assert_eq!(object, once, "{:?}", object.kind());
        }
    }

    #[test]
    fn defaults_fill_only_what_is_absent() {
        let defaulted: Vec<serde_json::Value> = minimal_objects()
            .into_iter()
            .map(|mut o| {
                o.apply_defaults();
                o.to_json()["spec"].clone()
            })
            .collect();
        let expected = [
            json!({"displayName": "A", "partner": "p", "deploymentMode": "direct",
                   "maintenanceWindow": {"start": "01:00", "end": "03:00", "timezone": "UTC"},
                   "healing": {"mode": "enforce", "maxAttempts": 3, "flapWindow": "24h", "flapThreshold": 3},
                   "frameworks": ["HIPAA"],
                   "notifications": [{"syslog": {"address": "log:514", "protocol": "udp", "facility": "local0"}}]}),
            json!({"platform": "linux", "address": "h", "transport": {"type": "ssh", "port": 22}}),
            json!({"platform": "windows", "address": "h", "transport": {"type": "winrm", "port": 5986}}),
            json!({"platform": "appliance", "transport": {"type": "local"}}),
            json!({"partitions": {"slots": [{"name": "A", "partLabel": "osc-a"}, {"name": "B", "partLabel": "osc-b"}]}}),
            json!({"type": "password", "username": "u"}),
            json!({"platform": "linux", "severity": "low", "disruptive": false, "interval": "15m",
                   "check": {"interpreter": "sh", "script": "true", "timeout": "1m",
                             "expect": {"exitCode": 0, "outputContains": "ok"}},
                   "remediate": {"interpreter": "sh", "script": "true", "timeout": "1m",
                                 "expect": {"exitCode": 0}}}),
            json!({"version": "1.0.0", "image": {"url": "https://x/i", "sha256": "00", "size": 1}}),
            json!({"release": "r", "target": {}, "paused": false, "allowDowngrade": false,
                   "waves": [{"count": 1, "successThreshold": 90, "pauseAfter": false},
                             {"percent": 100, "successThreshold": 90, "pauseAfter": false}],
                   "maxFailures": "10%", "respectMaintenanceWindows": true}),
        ];
        assert_eq!(defaulted.len(), expected.len());
        for (got, want) in defaulted.iter().zip(&expected) {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn site_without_window_gets_the_nightly_default_and_rollout_a_single_wave() {
        let mut site: SiteSpec =
            serde_json::from_value(json!({"displayName": "A", "partner": "p"})).unwrap();
        site.apply_defaults();
        let window = site.maintenance_window.unwrap();
        assert_eq!(
            (window.start.as_str(), window.end.as_str()),
            ("02:00", "05:00")
        );
        assert_eq!(window.timezone.as_deref(), Some("UTC"));

        let mut rollout: RolloutSpec = serde_json::from_value(json!({"release": "r"})).unwrap();
        rollout.apply_defaults();
        assert_eq!(rollout.waves.len(), 1);
        assert_eq!(rollout.waves[0].percent, Some(100));
    }

    #[test]
    fn explicit_values_win_over_defaults() {
        let mut host: HostSpec = serde_json::from_value(
            json!({"platform": "linux", "address": "h", "transport": {"port": 2222}}),
        )
        .unwrap();
        host.apply_defaults();
        let transport = host.transport.unwrap();
        assert_eq!(transport.type_, Some(TransportType::Ssh));
        assert_eq!(transport.port, Some(2222));

        let mut site: SiteSpec = serde_json::from_value(
            json!({"displayName": "A", "partner": "p", "frameworks": ["SOC2"], "healing": {"mode": "audit"}}),
        )
        .unwrap();
        site.apply_defaults();
        assert_eq!(site.frameworks, [Framework::Soc2]);
        let healing = site.healing.unwrap();
        assert_eq!(healing.mode, Some(HealingMode::Audit));
        assert_eq!(healing.max_attempts, Some(MAX_ATTEMPTS));
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;
    use serde_json::{Value, json};

    /// The `default` the JSON Schema of `T` shows at `pointer` (a JSON pointer into the schema).
    fn schema_default<T: schemars::JsonSchema>(pointer: &str) -> Value {
        let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap();
        schema
            .pointer(pointer)
            .unwrap_or_else(|| panic!("no {pointer} in {schema:#}"))
            .clone()
    }

    #[test]
    fn schemas_show_the_constants_that_apply_defaults_uses() {
        let cases = [
            (
                schema_default::<SiteSpec>("/$defs/Healing/properties/maxAttempts/default"),
                json!(MAX_ATTEMPTS),
            ),
            (
                schema_default::<SiteSpec>("/$defs/Healing/properties/mode/default"),
                json!("enforce"),
            ),
            (
                schema_default::<SiteSpec>("/properties/maintenanceWindow/default"),
                json!({"start": MAINTENANCE_START, "end": MAINTENANCE_END, "timezone": MAINTENANCE_TIMEZONE}),
            ),
            (
                schema_default::<RunbookSpec>("/properties/interval/default"),
                json!("15m"),
            ),
            (
                schema_default::<RunbookSpec>("/$defs/Step/properties/timeout/default"),
                json!("1m"),
            ),
            (
                schema_default::<RolloutSpec>("/properties/maxFailures/default"),
                json!(MAX_FAILURES.to_string()),
            ),
            (
                schema_default::<RolloutSpec>("/properties/respectMaintenanceWindows/default"),
                json!(RESPECT_MAINTENANCE_WINDOWS),
            ),
        ];
        for (shown, constant) in cases {
            assert_eq!(shown, constant);
        }
    }
}
