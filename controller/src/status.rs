//! What the controller writes into `status`, pure: the Host's per-runbook results and its
//! `Reachable`, `Compliant` and `Escalated` conditions ([`HostState::record`]), and the
//! Appliance's heartbeat ([`appliance`]). Each returns a merge patch of the object's `/status`;
//! conditions go whole (a merge patch replaces a list), results one runbook at a time (a map).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use osc_crds::condition::{Condition, ConditionStatus, set_condition};
use osc_crds::kinds::Host;
use osc_crds::kinds::appliance::{CONDITION_CLOCK_SYNCED, CONDITION_ONLINE};
use osc_crds::kinds::host::{CONDITION_COMPLIANT, CONDITION_REACHABLE, CheckResult, RunbookResult};
use serde_json::{Value, json};

use crate::sync::Connection;

/// The Host condition that says a pair needs a person (L3).
pub const CONDITION_ESCALATED: &str = "Escalated";

/// The Appliance condition that says whether the desired state comes from central or from the
/// cache, and when it last ran from the cache.
pub const CONDITION_SYNCED: &str = "Synced";

/// Whether this reconcile reached the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    /// A step ran on it.
    Reached,
    /// A step could not run: why.
    Unreachable(String),
    /// Nothing ran (refused, skipped): Reachable stays as it was.
    None,
}

/// What the appliance holds of one Host's status between reconciles, seeded from central's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostState {
    /// The Host's `metadata.generation` last seen.
    pub generation: Option<i64>,
    /// Its conditions.
    pub conditions: Vec<Condition>,
    /// Its results by runbook.
    pub results: BTreeMap<String, RunbookResult>,
}

impl HostState {
    /// The state central shows for `host`.
    pub fn from_host(host: &Host) -> Self {
        let status = host.status.clone().unwrap_or_default();
        Self {
            generation: host.metadata.generation,
            conditions: status.conditions,
            results: status.results,
        }
    }

    /// Records a reconcile of `runbook` (one of the host's `runbooks`) at `now`, and returns
    /// the merge patch of the Host's status: the result, `observedGeneration`, and every
    /// condition (Reachable from `contact`, Compliant and Escalated from all the results).
    pub fn record(
        &mut self,
        runbook: &str,
        result: Option<RunbookResult>,
        contact: &Contact,
        runbooks: &[&str],
        now: DateTime<Utc>,
    ) -> Value {
        let mut results = serde_json::Map::new();
        if let Some(result) = result {
            results.insert(runbook.to_owned(), json!(result));
            self.results.insert(runbook.to_owned(), result);
        }
        let generation = self.generation;
        let condition = |type_: &str, status, reason: &str, message: String| Condition {
            observed_generation: generation,
            message,
            ..Condition::new(type_, status, reason, now)
        };
        match contact {
            Contact::Reached => {
                let reached = condition(
                    CONDITION_REACHABLE,
                    ConditionStatus::True,
                    "StepsRan",
                    String::new(),
                );
                set_condition(&mut self.conditions, reached, now);
            }
            Contact::Unreachable(why) => {
                let lost = condition(
                    CONDITION_REACHABLE,
                    ConditionStatus::False,
                    "StepFailedToRun",
                    why.clone(),
                );
                set_condition(&mut self.conditions, lost, now);
            }
            Contact::None => {}
        }
        let (status, reason, message) = compliance(&self.results, runbooks);
        set_condition(
            &mut self.conditions,
            condition(CONDITION_COMPLIANT, status, reason, message),
            now,
        );
        let escalated: Vec<String> = runbooks
            .iter()
            .filter(|r| {
                self.results
                    .get(**r)
                    .is_some_and(|r| r.result == CheckResult::Escalated)
            })
            .map(|r| {
                format!(
                    "{r}: {}",
                    self.results[*r].message.as_deref().unwrap_or("escalated")
                )
            })
            .collect();
        let escalation = if escalated.is_empty() {
            condition(
                CONDITION_ESCALATED,
                ConditionStatus::False,
                "NothingEscalated",
                String::new(),
            )
        } else {
            condition(
                CONDITION_ESCALATED,
                ConditionStatus::True,
                "NeedsAPerson",
                escalated.join("; "),
            )
        };
        set_condition(&mut self.conditions, escalation, now);
        json!({"status": {
            "observedGeneration": generation,
            "conditions": self.conditions,
            "results": results,
        }})
    }
}

/// Compliant: True when every runbook of the host passed, healed, does not apply or is waived;
/// Unknown while one has no result yet; else False naming the others.
fn compliance(
    results: &BTreeMap<String, RunbookResult>,
    runbooks: &[&str],
) -> (ConditionStatus, &'static str, String) {
    let mut failing = vec![];
    let mut unknown = vec![];
    for runbook in runbooks {
        match results.get(*runbook).map(|r| r.result) {
            None => unknown.push((*runbook).to_owned()),
            Some(
                CheckResult::Pass
                | CheckResult::Healed
                | CheckResult::NotApplicable
                | CheckResult::Waived,
            ) => {}
            Some(other) => failing.push(format!("{runbook}: {}", result_name(other))),
        }
    }
    if !failing.is_empty() {
        (ConditionStatus::False, "Drift", failing.join(", "))
    } else if !unknown.is_empty() {
        (
            ConditionStatus::Unknown,
            "NotYetChecked",
            unknown.join(", "),
        )
    } else {
        (ConditionStatus::True, "AllPassing", String::new())
    }
}

/// The result as written in `status.results` (`drifted`, `escalated`, …).
fn result_name(result: CheckResult) -> String {
    serde_json::to_value(result)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The merge patch that records the host key the executor saw on first contact (trust on
/// first use; the SSH executor calls this hook).
pub fn host_key(key: &str) -> Value {
    json!({"status": {"hostKey": key}})
}

/// What the Appliance's heartbeat reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Heartbeat<'a> {
    /// Now: `lastHeartbeat`.
    pub now: DateTime<Utc>,
    /// The controller's version.
    pub version: &'a str,
    /// The clock's offset from NTP, when known.
    pub ntp_offset_ms: Option<i64>,
    /// The largest offset that is still synced (`ntpMaxSkew`), in ms.
    pub ntp_max_skew_ms: i64,
    /// Undelivered outbox entries.
    pub outbox_depth: u64,
    /// When the desired state was last known current.
    pub last_sync: Option<DateTime<Utc>>,
    /// Whether it runs from the cache.
    pub connection: Connection,
}

/// The Appliance's status patch for `beat`, updating `conditions` (Online, ClockSynced, Synced).
pub fn appliance(beat: &Heartbeat<'_>, conditions: &mut Vec<Condition>) -> Value {
    let now = beat.now;
    let condition = |type_: &str, status, reason: &str, message: String| Condition {
        message,
        ..Condition::new(type_, status, reason, now)
    };
    set_condition(
        conditions,
        condition(
            CONDITION_ONLINE,
            ConditionStatus::True,
            "Heartbeat",
            String::new(),
        ),
        now,
    );
    let clock = match beat.ntp_offset_ms {
        None => condition(
            CONDITION_CLOCK_SYNCED,
            ConditionStatus::Unknown,
            "OffsetUnknown",
            "no NTP offset could be read (chronyc tracking); remediations are deferred".to_owned(),
        ),
        Some(ms) if ms.abs() > beat.ntp_max_skew_ms => condition(
            CONDITION_CLOCK_SYNCED,
            ConditionStatus::False,
            "Skewed",
            format!("{ms} ms off NTP, beyond ntpMaxSkew; remediations are deferred"),
        ),
        Some(ms) => condition(
            CONDITION_CLOCK_SYNCED,
            ConditionStatus::True,
            "WithinSkew",
            format!("{ms} ms off NTP"),
        ),
    };
    set_condition(conditions, clock, now);
    let synced = match (beat.connection.offline_since, beat.connection.last_outage) {
        (Some(since), _) => condition(
            CONDITION_SYNCED,
            ConditionStatus::False,
            "FromCache",
            format!(
                "reconciling from the cache since {since}: central's watches are not all current"
            ),
        ),
        (None, Some((from, to))) => condition(
            CONDITION_SYNCED,
            ConditionStatus::True,
            "RecoveredFromCache",
            format!("ran from the cache from {from} to {to}; watching central since"),
        ),
        (None, None) => condition(
            CONDITION_SYNCED,
            ConditionStatus::True,
            "Watching",
            String::new(),
        ),
    };
    set_condition(conditions, synced, now);
    json!({"status": {
        "lastHeartbeat": now,
        "currentVersion": beat.version,
        "ntpOffsetMs": beat.ntp_offset_ms,
        "outboxDepth": beat.outbox_depth,
        "lastSync": beat.last_sync,
        "conditions": conditions,
    }})
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn result(result: CheckResult) -> RunbookResult {
        RunbookResult {
            result,
            last_checked: Some(now()),
            last_healed: None,
            attempts: 0,
            runbook_digest: Some("sha256:ab".into()),
            message: None,
        }
    }

    fn find<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn compliance_table() {
        use CheckResult::*;
        type Results<'a> = &'a [(&'a str, CheckResult)];
        let cases: [(Results<'_>, ConditionStatus, &str); 5] = [
            (&[("a", Pass), ("b", Healed)], ConditionStatus::True, ""),
            (&[("a", Pass), ("b", Waived)], ConditionStatus::True, ""),
            (&[("a", Pass)], ConditionStatus::Unknown, "b"),
            (
                &[("a", Drifted), ("b", Pass)],
                ConditionStatus::False,
                "a: drifted",
            ),
            (
                &[("a", Error), ("b", Escalated)],
                ConditionStatus::False,
                "a: error, b: escalated",
            ),
        ];
        for (results, status, message) in cases {
            let results = results
                .iter()
                .map(|(r, c)| ((*r).to_owned(), result(*c)))
                .collect();
            let (s, _, m) = compliance(&results, &["a", "b"]);
            assert_eq!((s, m.as_str()), (status, message), "{results:?}");
        }
    }

    #[test]
    fn a_record_patches_one_result_and_every_condition() {
        let mut host = HostState {
            generation: Some(3),
            ..HostState::default()
        };
        let patch = host.record(
            "a",
            Some(result(CheckResult::Pass)),
            &Contact::Reached,
            &["a"],
            now(),
        );
        assert_eq!(patch["status"]["observedGeneration"], 3);
        assert_eq!(patch["status"]["results"]["a"]["result"], "pass");
        assert_eq!(
            find(&host.conditions, CONDITION_COMPLIANT).status,
            ConditionStatus::True
        );
        assert_eq!(
            find(&host.conditions, CONDITION_REACHABLE).status,
            ConditionStatus::True
        );

        // Unreachable later: Reachable flips with a new transition time, the message says why.
        let later = now() + TimeDelta::minutes(5);
        let mut failed = result(CheckResult::Error);
        failed.message = Some("connection refused".into());
        host.record(
            "a",
            Some(failed),
            &Contact::Unreachable("connection refused".into()),
            &["a"],
            later,
        );
        let reachable = find(&host.conditions, CONDITION_REACHABLE);
        assert_eq!(
            (reachable.status, reachable.last_transition_time),
            (ConditionStatus::False, later)
        );
        assert_eq!(reachable.message, "connection refused");

        // An escalation raises Escalated; a refusal leaves Reachable alone.
        let mut escalated = result(CheckResult::Escalated);
        escalated.message = Some("escalated: AttemptsExhausted after 3 attempts".into());
        let patch = host.record("a", Some(escalated), &Contact::None, &["a"], later);
        let escalation = find(&host.conditions, CONDITION_ESCALATED);
        assert_eq!(escalation.status, ConditionStatus::True);
        assert!(
            escalation
                .message
                .contains("a: escalated: AttemptsExhausted")
        );
        assert_eq!(
            find(&host.conditions, CONDITION_REACHABLE).status,
            ConditionStatus::False
        );
        assert_eq!(patch["status"]["conditions"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn the_heartbeat_says_when_the_controller_ran_from_its_cache() {
        let back = now() + TimeDelta::minutes(3);
        let beat = |connection, offset| Heartbeat {
            now: back,
            version: "0.1.0",
            ntp_offset_ms: offset,
            ntp_max_skew_ms: 10_000,
            outbox_depth: 4,
            last_sync: Some(back),
            connection,
        };
        let mut conditions = vec![];
        let offline = Connection {
            offline_since: Some(now()),
            last_outage: None,
        };
        appliance(&beat(offline, None), &mut conditions);
        assert_eq!(find(&conditions, CONDITION_SYNCED).reason, "FromCache");
        assert_eq!(
            find(&conditions, CONDITION_CLOCK_SYNCED).status,
            ConditionStatus::Unknown
        );

        let recovered = Connection {
            offline_since: None,
            last_outage: Some((now(), back)),
        };
        let patch = appliance(&beat(recovered, Some(-12)), &mut conditions);
        let synced = find(&conditions, CONDITION_SYNCED);
        assert_eq!(
            (synced.status, synced.reason.as_str()),
            (ConditionStatus::True, "RecoveredFromCache")
        );
        assert!(
            synced.message.contains(&now().to_string()),
            "{}",
            synced.message
        );
        assert_eq!(
            find(&conditions, CONDITION_CLOCK_SYNCED).status,
            ConditionStatus::True
        );
        assert_eq!(patch["status"]["outboxDepth"], 4);
        assert_eq!(patch["status"]["ntpOffsetMs"], -12);
        assert_eq!(patch["status"]["currentVersion"], "0.1.0");
    }
}
