//! Status conditions in the shape of Kubernetes `metav1.Condition`, and the helpers that keep their
//! `lastTransitionTime` honest.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One observation about an object, e.g. `Ready` or `Compliant`, as `metav1.Condition` defines it.
///
/// Conditions replace a single `phase` field: each says one thing, and tools such as `kubectl wait
/// --for=condition=Ready` understand them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// What the condition is about, in CamelCase (`Ready`, `Reachable`, `Online`…); unique in its list.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether the condition holds: `True`, `False`, or `Unknown` when it cannot be told.
    pub status: ConditionStatus,
    /// The `metadata.generation` the writer had seen when it set the condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed; it stays put while only reason or message change.
    pub last_transition_time: DateTime<Utc>,
    /// Machine-readable cause of the last change, in CamelCase (e.g. `SshTimeout`).
    pub reason: String,
    /// Human-readable details; may be empty.
    #[serde(default)]
    pub message: String,
}

/// The three values of a condition's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It cannot be told whether the condition holds (e.g. the host did not answer).
    Unknown,
}

impl Condition {
    /// A condition of `type_` with the given status and reason, an empty message and no generation.
    ///
    /// `lastTransitionTime` is set to `now`; [`set_condition`] replaces it with the right value.
    pub fn new(
        type_: impl Into<String>,
        status: ConditionStatus,
        reason: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            type_: type_.into(),
            status,
            observed_generation: None,
            last_transition_time: now,
            reason: reason.into(),
            message: String::new(),
        }
    }

    /// The same condition with a human-readable message.
    pub fn with_message(self, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..self
        }
    }

    /// The same condition stamped with the generation the writer observed.
    pub fn with_observed_generation(self, generation: i64) -> Self {
        Self {
            observed_generation: Some(generation),
            ..self
        }
    }
}

/// Adds `new` to `conditions` or replaces the condition of the same type, and returns whether anything
/// changed (so that a writer can skip a no-op status update).
///
/// `lastTransitionTime` becomes `now` when the status changes (or the type is new) and is kept otherwise,
/// whatever `new` carries: it records when the condition last flipped, not when it was last written.
/// Reason, message and observedGeneration are always taken from `new`.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition, now: DateTime<Utc>) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            let last_transition_time = if existing.status == new.status {
                existing.last_transition_time
            } else {
                now
            };
            let updated = Condition {
                last_transition_time,
                ..new
            };
            let changed = *existing != updated;
            *existing = updated;
            changed
        }
        None => {
            conditions.push(Condition {
                last_transition_time: now,
                ..new
            });
            true
        }
    }
}

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type is present with status `True` (absent counts as not true).
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionStatus::{False, True, Unknown};
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, hour, 0, 0).unwrap()
    }

    #[test]
    fn set_condition_table() {
        struct Case {
            name: &'static str,
            before: Option<(ConditionStatus, &'static str, u32)>,
            new: (ConditionStatus, &'static str),
            changed: bool,
            transition_hour: u32,
        }
        let cases = [
            Case {
                name: "new type is added with now",
                before: None,
                new: (True, "Healthy"),
                changed: true,
                transition_hour: 5,
            },
            Case {
                name: "same status and reason keeps everything",
                before: Some((True, "Healthy", 1)),
                new: (True, "Healthy"),
                changed: false,
                transition_hour: 1,
            },
            Case {
                name: "same status, new reason keeps the transition time",
                before: Some((True, "Healthy", 1)),
                new: (True, "Recovered"),
                changed: true,
                transition_hour: 1,
            },
            Case {
                name: "status flip moves the transition time",
                before: Some((True, "Healthy", 1)),
                new: (False, "SshTimeout"),
                changed: true,
                transition_hour: 5,
            },
            Case {
                name: "unknown to true is a transition",
                before: Some((Unknown, "NotChecked", 2)),
                new: (True, "Healthy"),
                changed: true,
                transition_hour: 5,
            },
        ];
        for case in cases {
            let mut conditions = vec![Condition::new("Other", False, "Untouched", at(0))];
            if let Some((status, reason, hour)) = case.before {
                conditions.push(Condition::new("Ready", status, reason, at(hour)));
            }
            // The caller's lastTransitionTime (hour 9) must never leak through.
            let new = Condition::new("Ready", case.new.0, case.new.1, at(9));
            let changed = set_condition(&mut conditions, new, at(5));
            assert_eq!(changed, case.changed, "{}", case.name);
            let ready = find_condition(&conditions, "Ready").unwrap();
            assert_eq!(ready.status, case.new.0, "{}", case.name);
            assert_eq!(ready.reason, case.new.1, "{}", case.name);
            assert_eq!(
                ready.last_transition_time,
                at(case.transition_hour),
                "{}",
                case.name
            );
            assert_eq!(conditions.len(), 2, "{}: one entry per type", case.name);
            assert_eq!(conditions[0].reason, "Untouched", "{}", case.name);
        }
    }

    #[test]
    fn message_and_observed_generation_update_without_a_transition() {
        let mut conditions = vec![Condition::new("Ready", True, "Healthy", at(1))];
        let new = Condition::new("Ready", True, "Healthy", at(5))
            .with_message("all 12 checks pass")
            .with_observed_generation(7);
        assert!(set_condition(&mut conditions, new, at(5)));
        assert_eq!(conditions[0].message, "all 12 checks pass");
        assert_eq!(conditions[0].observed_generation, Some(7));
        assert_eq!(conditions[0].last_transition_time, at(1));
    }

    #[test]
    fn is_true_table() {
        let conditions = vec![
            Condition::new("Ready", True, "Healthy", at(1)),
            Condition::new("Compliant", False, "Drifted", at(1)),
            Condition::new("Online", Unknown, "NoHeartbeat", at(1)),
        ];
        for (type_, expected) in [
            ("Ready", true),
            ("Compliant", false),
            ("Online", false),
            ("Missing", false),
        ] {
            assert_eq!(is_true(&conditions, type_), expected, "{type_}");
        }
    }

    #[test]
    fn serializes_like_metav1_condition() {
        let c = Condition::new("Ready", True, "Healthy", at(1)).with_observed_generation(2);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({
                "type": "Ready",
                "status": "True",
                "observedGeneration": 2,
                "lastTransitionTime": "2025-06-01T01:00:00Z",
                "reason": "Healthy",
                "message": ""
            })
        );
    }
}
