//! `Rollout`: moves a set of appliances to a Release in waves, stopping when too many fail.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Kind, Object, Spec};
use crate::condition::Condition;
use crate::defaults;
use crate::validate::spec::PERCENT_RANGE;

/// A rollout, cluster-scoped.
pub type Rollout = Object<RolloutSpec>;

/// Condition type: a wave is being rolled out.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type: the rollout waits for `spec.paused` to clear (set by a person or by `pauseAfter`).
pub const CONDITION_PAUSED: &str = "Paused";
/// Condition type: failures passed `maxFailures` and the rollout stopped.
pub const CONDITION_FAILED: &str = "Failed";
/// Condition type: every wave succeeded.
pub const CONDITION_COMPLETE: &str = "Complete";

/// Which release goes to which appliances, and how carefully.
///
/// Waves are cumulative: each says how many of the targeted appliances must have been offered the
/// release by the time the wave is done, as a `count` or a `percent` of all targets (rounded up). The
/// totals grow from wave to wave and the last wave is `percent: 100`, so every target is covered exactly
/// once. A wave starts when the previous one reached its `successThreshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutSpec {
    /// Name of the Release to install.
    pub release: String,
    /// The appliances to update.
    #[serde(default)]
    pub target: RolloutTarget,
    /// The stages of the rollout; one wave of 100% when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
    /// Failed appliances, over the whole rollout, beyond which it stops: a count (`"3"`) or a percent of
    /// the targets (`"10%"`, rounded down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::max_failures")]
    pub max_failures: Option<MaxFailures>,
    /// Stops starting new updates while true; updates already running finish.
    #[serde(default)]
    pub paused: bool,
    /// Whether appliances wait for their site's maintenance window to reboot into the new release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::respect_maintenance_windows")]
    pub respect_maintenance_windows: Option<bool>,
    /// Whether appliances may accept a release older than the newest they accepted before.
    #[serde(default)]
    pub allow_downgrade: bool,
}

/// Label selectors choosing the appliances of a rollout; an appliance is targeted when its site matches
/// `sites` and it matches `appliances`. Absent selectors match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutTarget {
    /// Label selector over Sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<String>,
    /// Label selector over Appliances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliances: Option<String>,
}

/// One stage of a rollout: the cumulative share of targets reached when it is done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wave {
    /// Targets updated by the end of this wave, as a number of appliances; exclusive with `percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Targets updated by the end of this wave, as a percent of all targets (1–100, rounded up);
    /// exclusive with `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = PERCENT_RANGE.0, max = PERCENT_RANGE.1))]
    pub percent: Option<u32>,
    /// Percent of this wave's appliances that must succeed before the next wave starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        default = "defaults::success_threshold",
        range(min = PERCENT_RANGE.0, max = PERCENT_RANGE.1)
    )]
    pub success_threshold: Option<u32>,
    /// Whether the rollout pauses (sets `spec.paused`) when this wave succeeds, for a person to resume.
    #[serde(default)]
    pub pause_after: bool,
}

/// A failure budget: an absolute count or a percent of the targets.
///
/// Serialized as a string (`"3"`, `"10%"`); an integer is accepted too, like Kubernetes' IntOrString.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaxFailures {
    /// At most this many failed appliances.
    Count(u32),
    /// At most this percent of the targets (0–100), rounded down.
    Percent(u32),
}

/// Why a string is not a failure budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maxFailures {input:?} is neither a count nor a percent; write e.g. \"3\" or \"10%\"")]
pub struct MaxFailuresError {
    /// The string as given.
    pub input: String,
}

/// How a rollout is going.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutStatus {
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Progressing`, `Paused`, `Failed` and `Complete`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Index into `spec.waves` of the wave in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_wave: Option<u32>,
    /// Progress of each wave, in the order of `spec.waves`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<WaveStatus>,
    /// Targets by where their update stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<RolloutCounts>,
}

/// Progress of one wave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveStatus {
    /// Where the wave stands.
    pub phase: WavePhase,
    /// Appliances this wave offers the release to (beyond earlier waves).
    pub targets: u32,
    /// Of those, how many reported `Succeeded`.
    pub succeeded: u32,
    /// Of those, how many reported `Failed` or `RolledBack`.
    pub failed: u32,
    /// When the wave started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the wave reached its threshold or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where a wave stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum WavePhase {
    /// Not started.
    Pending,
    /// Appliances in the wave are updating.
    Progressing,
    /// Reached its success threshold.
    Succeeded,
    /// The rollout's failure budget ran out during this wave.
    Failed,
}

/// Targets of a rollout counted by update state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutCounts {
    /// Appliances the rollout targets.
    pub targets: u32,
    /// Not yet offered the release.
    pub pending: u32,
    /// Offered it and somewhere between `Downloading` and `HealthCheck`.
    pub updating: u32,
    /// Running the release.
    pub succeeded: u32,
    /// Stopped before reboot.
    pub failed: u32,
    /// Booted the release, failed the health gate and went back.
    pub rolled_back: u32,
}

impl MaxFailures {
    /// The number of failed appliances tolerated among `targets`; one more stops the rollout.
    pub fn threshold(self, targets: u32) -> u32 {
        match self {
            MaxFailures::Count(count) => count,
            // The product fits in u64; the quotient is at most `targets` for percents up to 100.
            MaxFailures::Percent(percent) => {
                (u64::from(targets) * u64::from(percent) / 100).min(u64::from(u32::MAX)) as u32
            }
        }
    }
}

impl FromStr for MaxFailures {
    type Err = MaxFailuresError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = |t: &str| {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        let parsed = match s.strip_suffix('%') {
            Some(percent) => digits(percent).map(MaxFailures::Percent),
            None => digits(s).map(MaxFailures::Count),
        };
        parsed.ok_or_else(|| MaxFailuresError {
            input: s.to_owned(),
        })
    }
}

impl fmt::Display for MaxFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxFailures::Count(count) => write!(f, "{count}"),
            MaxFailures::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

impl Serialize for MaxFailures {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MaxFailures {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MaxFailures;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a count such as \"3\" or a percent such as \"10%\"")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<MaxFailures, E> {
                u32::try_from(v)
                    .map(MaxFailures::Count)
                    .map_err(|_| E::custom(format!("maxFailures {v} is too large")))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<MaxFailures, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("maxFailures {v} must not be negative")))
                    .and_then(|v| self.visit_u64(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MaxFailures, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for MaxFailures {
    fn schema_name() -> Cow<'static, str> {
        "MaxFailures".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]+%?$"}
            ]
        })
    }
}

impl Spec for RolloutSpec {
    const KIND: Kind = Kind::Rollout;
    type Status = RolloutStatus;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_failures_parse_table() {
        let cases = [
            ("3", Some(MaxFailures::Count(3))),
            ("0", Some(MaxFailures::Count(0))),
            ("10%", Some(MaxFailures::Percent(10))),
            ("100%", Some(MaxFailures::Percent(100))),
            ("", None),
            ("%", None),
            ("-1", None),
            ("1.5%", None),
            ("10 %", None),
            ("ten", None),
            ("99999999999", None),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<MaxFailures>().ok(), expected, "{text:?}");
        }
        let err = "ten".parse::<MaxFailures>().unwrap_err().to_string();
        assert!(err.contains("e.g. \"3\" or \"10%\""), "{err}");
    }

    #[test]
    fn max_failures_serde_accepts_int_or_string_and_writes_strings() {
        let cases = [
            (serde_json::json!(3), "\"3\""),
            (serde_json::json!("3"), "\"3\""),
            (serde_json::json!("10%"), "\"10%\""),
        ];
        for (input, output) in cases {
            let parsed: MaxFailures = serde_json::from_value(input.clone()).unwrap();
            assert_eq!(serde_json::to_string(&parsed).unwrap(), output, "{input}");
        }
        assert!(serde_json::from_value::<MaxFailures>(serde_json::json!(-1)).is_err());
        assert!(serde_json::from_value::<MaxFailures>(serde_json::json!(true)).is_err());
    }

    #[test]
    fn threshold_table() {
        let cases = [
            (MaxFailures::Count(3), 100, 3),
            (MaxFailures::Count(3), 1, 3),
            (MaxFailures::Percent(10), 100, 10),
            (MaxFailures::Percent(10), 19, 1),
            (MaxFailures::Percent(10), 9, 0),
            (MaxFailures::Percent(100), 7, 7),
            (MaxFailures::Percent(0), 50, 0),
        ];
        for (budget, targets, expected) in cases {
            assert_eq!(budget.threshold(targets), expected, "{budget} of {targets}");
        }
    }
}
