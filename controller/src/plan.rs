//! The reconcile decision for one work item: `plan(desired, observed, now) -> Plan`. Pure: the
//! caller runs what the plan says, observes, and asks again with what it saw.
//!
//! A reconcile is level-triggered: it decides from the current desired state and what this
//! reconcile observed, never from the events that led there. It goes in up to three rounds:
//!
//! 1. nothing observed yet: refuse (fail closed), skip (healing `off`) or [`Plan::Check`];
//! 2. the check's verdict is in: record a pass, not-applicable or an error, or, on drift, decide
//!    among waive, report drift (audit mode or a check-only runbook), escalate, defer and
//!    [`Plan::Heal`] (remediate, then verify);
//! 3. the verify's verdict is in: healed, failed (attempts left) or escalate (budget spent).
//!
//! On drift the rules apply in this order, and the first that holds decides:
//!
//! | rule | plan |
//! |---|---|
//! | an exception covers the pair and `now` is before its expiry | `Waive` |
//! | healing mode `audit` | `ReportDrift(Audit)` |
//! | the runbook has no `remediate` | `ReportDrift(CheckOnly)` |
//! | the drift episode already used `maxAttempts` remediations | `Escalate(AttemptsExhausted)` |
//! | `flapThreshold` heals within `flapWindow` | `Escalate(Flapping)` |
//! | the NTP offset is unknown or beyond `ntpMaxSkew` | `Defer(Clock…)` |
//! | the runbook is disruptive, the site's window is closed, and `allowDisruptiveOutsideWindow` is off | `Defer(OutsideWindow)` |
//! | otherwise | `Heal` |
//!
//! Before anything runs, the item is refused (nothing runs, the Host reports why) when the host's
//! address is not allowed, its selection or waiver cannot be decided, the cached desired state is
//! older than `cacheMaxAge`, or the runbook's digest or signature does not verify.

use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};
use osc_crds::kinds::RunbookSpec;
use osc_crds::kinds::host::{CheckResult, RunbookResult};
use osc_crds::kinds::site::HealingMode;
use osc_crds::selection::Undecided;
use osc_proto::dsse::PublicKey;
use osc_proto::evidence::{Outcome, Verdict};

use crate::items::Item;
use crate::trust::{Untrusted, verify_runbook};

/// What the decision reads from desired state and the appliance's own config.
#[derive(Clone, Copy, Debug)]
pub struct Desired<'a> {
    /// The work item (pair, params, interval, waiver, site policy).
    pub item: &'a Item,
    /// The runbook as cached.
    pub runbook: &'a RunbookSpec,
    /// The appliance's local rules.
    pub local: &'a Local,
}

/// The appliance's own rules, from its config file.
#[derive(Clone, Debug, PartialEq)]
pub struct Local {
    /// `allowDisruptiveOutsideWindow`.
    pub allow_disruptive_outside_window: bool,
    /// `ntpMaxSkew`.
    pub ntp_max_skew: StdDuration,
    /// `cacheMaxAge`.
    pub cache_max_age: StdDuration,
    /// `allowedHosts` (empty allows every address).
    pub allowed_hosts: Vec<String>,
    /// `trustedRunbookKeys`.
    pub trusted_keys: Vec<PublicKey>,
}

/// What this reconcile has observed so far, and what the appliance remembers of the pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The check's verdict in this reconcile; `None` before it ran.
    pub check: Option<Verdict>,
    /// The verify's verdict after this reconcile's remediation; `None` before.
    pub verify: Option<Verdict>,
    /// The pair's latest recorded result (attempts of the current drift episode, whether it was
    /// already escalated).
    pub previous: Option<RunbookResult>,
    /// When the pair was healed recently (at least within the flap window), any order.
    pub heals: Vec<DateTime<Utc>>,
    /// The clock's offset from NTP in milliseconds; `None` when unknown.
    pub ntp_offset_ms: Option<i64>,
    /// When the cached desired state was last known to be central's current state.
    pub synced_at: Option<DateTime<Utc>>,
}

/// What to do next with an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Fail closed: run nothing, report the reason on the Host.
    Refuse(Refusal),
    /// Healing mode `off`: neither check nor remediate, record nothing.
    Skip,
    /// Run the check, then plan again with its verdict.
    Check,
    /// Compliant: record a pass (and end the drift episode).
    Pass,
    /// The check says the runbook does not apply to this host.
    NotApplicable,
    /// The check could not decide (failed to run, timed out, unexpected output).
    CheckError,
    /// Drifted, but an exception covers the pair until `until`.
    Waive {
        /// When the exception lapses.
        until: DateTime<Utc>,
    },
    /// Drifted; report it and do not remediate.
    ReportDrift(DriftOnly),
    /// Drifted; healing waits.
    Defer(Deferral),
    /// Hand the pair to people (L3).
    Escalate {
        /// Why.
        reason: Escalation,
        /// Whether to notify the site's targets: only when the pair was not escalated already.
        notify: bool,
        /// Remediation attempts in the drift episode.
        attempts: u32,
    },
    /// Remediate, then verify, then plan again with the verify's verdict.
    Heal {
        /// This remediation's number in the drift episode, from 1.
        attempt: u32,
    },
    /// The verify passed after remediation.
    Healed {
        /// Remediation attempts in the drift episode, this one included.
        attempts: u32,
    },
    /// The verify still fails; the next reconcile tries again within the budget.
    Failed {
        /// Remediation attempts in the drift episode, this one included.
        attempts: u32,
    },
}

/// Why an item is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The host's address is not in `allowedHosts`.
    HostNotAllowed {
        /// The address (or none).
        address: Option<String>,
    },
    /// The pair's selection or waiver cannot be decided.
    Undecided(Vec<Undecided>),
    /// The cached desired state is older than `cacheMaxAge` (or was never synced).
    StaleCache {
        /// When it was last known current.
        synced_at: Option<DateTime<Utc>>,
    },
    /// The runbook's digest or signature does not verify.
    Untrusted(Untrusted),
}

/// Why drift is only reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftOnly {
    /// The site's healing mode is `audit`.
    Audit,
    /// The runbook has no `remediate` step.
    CheckOnly,
}

/// Why healing waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deferral {
    /// The clock's offset from NTP is not known.
    ClockUnknown,
    /// The clock is off by more than `ntpMaxSkew`.
    ClockSkew {
        /// The offset, in milliseconds.
        offset_ms: i64,
    },
    /// A disruptive runbook outside the site's maintenance window.
    OutsideWindow {
        /// When the window opens next (`None` for a window that never opens).
        opens: Option<DateTime<Utc>>,
    },
}

/// Why a pair is escalated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalation {
    /// The drift episode used the whole attempt budget.
    AttemptsExhausted,
    /// The pair was healed `flapThreshold` times within `flapWindow`.
    Flapping {
        /// Heals within the window.
        heals: u32,
    },
}

/// Decides the next step for `desired.item` given what was `observed`, at `now`.
pub fn plan(desired: Desired<'_>, observed: &Observed, now: DateTime<Utc>) -> Plan {
    let Desired {
        item,
        runbook,
        local,
    } = desired;
    if item.policy.mode == HealingMode::Off {
        return Plan::Skip;
    }
    if let Some(refusal) = refusal(desired, observed, now) {
        return Plan::Refuse(refusal);
    }
    // A new version of the runbook starts a new drift episode: a fixed remediation gets a fresh
    // budget, and people hear again if it fails too.
    let digest = runbook.content_digest();
    let previous = observed
        .previous
        .as_ref()
        .filter(|p| p.runbook_digest.as_ref().is_none_or(|d| *d == digest));
    let attempts = previous.map_or(0, |p| p.attempts);
    let escalated = previous.is_some_and(|p| p.result == CheckResult::Escalated);
    let Some(check) = observed.check else {
        return Plan::Check;
    };
    if let Some(verify) = observed.verify {
        let attempts = attempts + 1;
        return match verify {
            Verdict::Compliant => Plan::Healed { attempts },
            _ if attempts >= item.policy.max_attempts => Plan::Escalate {
                reason: Escalation::AttemptsExhausted,
                notify: !escalated,
                attempts,
            },
            _ => Plan::Failed { attempts },
        };
    }
    match check {
        Verdict::Compliant => return Plan::Pass,
        Verdict::NotApplicable => return Plan::NotApplicable,
        Verdict::Error => return Plan::CheckError,
        Verdict::Drifted => {}
    }
    if let Some(until) = item.waived_until.filter(|until| now < *until) {
        return Plan::Waive { until };
    }
    if item.policy.mode == HealingMode::Audit {
        return Plan::ReportDrift(DriftOnly::Audit);
    }
    if runbook.remediate.is_none() {
        return Plan::ReportDrift(DriftOnly::CheckOnly);
    }
    let escalate = |reason| Plan::Escalate {
        reason,
        notify: !escalated,
        attempts,
    };
    if attempts >= item.policy.max_attempts {
        return escalate(Escalation::AttemptsExhausted);
    }
    let flap_start = TimeDelta::from_std(item.policy.flap_window)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let heals = observed
        .heals
        .iter()
        .filter(|at| **at > flap_start && **at <= now)
        .count();
    let heals = u32::try_from(heals).unwrap_or(u32::MAX);
    if heals >= item.policy.flap_threshold {
        return escalate(Escalation::Flapping { heals });
    }
    match observed.ntp_offset_ms {
        None => return Plan::Defer(Deferral::ClockUnknown),
        Some(offset_ms) if offset_ms.unsigned_abs() > millis(local.ntp_max_skew) => {
            return Plan::Defer(Deferral::ClockSkew { offset_ms });
        }
        Some(_) => {}
    }
    if runbook.disruptive
        && !local.allow_disruptive_outside_window
        && !item.policy.window.contains(now)
    {
        return Plan::Defer(Deferral::OutsideWindow {
            opens: item.policy.window.next_start(now),
        });
    }
    Plan::Heal {
        attempt: attempts + 1,
    }
}

/// The first reason to run nothing at all, if any.
fn refusal(desired: Desired<'_>, observed: &Observed, now: DateTime<Utc>) -> Option<Refusal> {
    let Desired {
        item,
        runbook,
        local,
    } = desired;
    // `allowedHosts` limits whom the controller contacts over the network; the appliance's own
    // checks (local transport, no address) contact nobody.
    let allowed = local.allowed_hosts.is_empty()
        || item
            .address
            .as_ref()
            .is_none_or(|a| local.allowed_hosts.contains(a));
    if !allowed {
        return Some(Refusal::HostNotAllowed {
            address: item.address.clone(),
        });
    }
    if !item.undecided.is_empty() {
        return Some(Refusal::Undecided(item.undecided.clone()));
    }
    let fresh = observed.synced_at.is_some_and(|at| {
        TimeDelta::from_std(local.cache_max_age)
            .ok()
            .and_then(|limit| at.checked_add_signed(limit))
            .is_none_or(|until| now <= until)
    });
    if !fresh {
        return Some(Refusal::StaleCache {
            synced_at: observed.synced_at,
        });
    }
    verify_runbook(runbook, &local.trusted_keys)
        .err()
        .map(Refusal::Untrusted)
}

fn millis(d: StdDuration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Plan {
    /// The result to record on the Host, or `None` while the reconcile goes on (`Check`, `Heal`)
    /// or records nothing (`Skip`). A refusal is recorded as an error.
    pub fn result(&self) -> Option<CheckResult> {
        Some(match self {
            Plan::Skip | Plan::Check | Plan::Heal { .. } => return None,
            Plan::Refuse(_) | Plan::CheckError => CheckResult::Error,
            Plan::Pass => CheckResult::Pass,
            Plan::NotApplicable => CheckResult::NotApplicable,
            Plan::Waive { .. } => CheckResult::Waived,
            Plan::ReportDrift(_) => CheckResult::Drifted,
            Plan::Defer(_) => CheckResult::Deferred,
            Plan::Escalate { .. } => CheckResult::Escalated,
            Plan::Healed { .. } => CheckResult::Healed,
            Plan::Failed { .. } => CheckResult::Failed,
        })
    }

    /// The evidence outcome of a reconcile that ends here, or `None` when no bundle is written:
    /// a refused or skipped item observed nothing, and `Check`/`Heal` are not ends. A check that
    /// errors ends as `failed` with verdict `error`; not-applicable as `pass` with its verdict.
    pub fn outcome(&self) -> Option<Outcome> {
        Some(match self {
            Plan::Refuse(_) | Plan::Skip | Plan::Check | Plan::Heal { .. } => return None,
            Plan::Pass | Plan::NotApplicable => Outcome::Pass,
            Plan::CheckError | Plan::Failed { .. } => Outcome::Failed,
            Plan::Waive { .. } => Outcome::Waived,
            Plan::ReportDrift(_) => Outcome::DryRun,
            Plan::Defer(_) => Outcome::Deferred,
            Plan::Escalate { .. } => Outcome::Escalated,
            Plan::Healed { .. } => Outcome::Healed,
        })
    }

    /// The remediation attempts of the drift episode to record: reset to 0 by a pass, kept by
    /// outcomes that did not remediate.
    pub fn attempts(&self, previous: u32) -> u32 {
        match self {
            Plan::Pass | Plan::NotApplicable => 0,
            Plan::Heal { attempt } => *attempt,
            Plan::Healed { attempts } | Plan::Failed { attempts } => *attempts,
            Plan::Escalate { attempts, .. } => *attempts,
            _ => previous,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use osc_proto::dsse::Signer;
    use serde_json::json;

    use super::*;
    use crate::items::tests::{host, runbook, site};
    use crate::items::{Item, items};
    use crate::trust::sign_runbook;

    /// 2026-03-10 12:00 UTC, a Tuesday, outside the default 02:00–05:00 window.
    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
    }

    fn key() -> Signer {
        Signer::from_seed(&[3; 32])
    }

    fn local() -> Local {
        Local {
            allow_disruptive_outside_window: false,
            ntp_max_skew: StdDuration::from_secs(10),
            cache_max_age: StdDuration::from_secs(3600),
            allowed_hosts: vec![],
            trusted_keys: vec![key().public_key()],
        }
    }

    fn signed(extra: serde_json::Value) -> RunbookSpec {
        let mut spec = runbook("ssh-root", "linux", json!({}), extra).spec;
        spec.remediate = Some(spec.check.clone());
        sign_runbook(&mut spec, &key());
        spec
    }

    fn item(site_spec: serde_json::Value) -> Item {
        let mut spec = site_spec;
        spec.as_object_mut()
            .unwrap()
            .insert("runbooks".into(), json!([{"names": ["ssh-root"]}]));
        let rb = runbook("ssh-root", "linux", json!({}), json!({}));
        items(
            &site(spec),
            &[host("ehr", "linux", json!({}))],
            std::slice::from_ref(&rb),
        )
        .remove(0)
    }

    fn drifted() -> Observed {
        Observed {
            check: Some(Verdict::Drifted),
            ntp_offset_ms: Some(3),
            synced_at: Some(noon() - TimeDelta::minutes(5)),
            ..Observed::default()
        }
    }

    fn previous(result: CheckResult, attempts: u32) -> Option<RunbookResult> {
        Some(RunbookResult {
            result,
            last_checked: None,
            last_healed: None,
            attempts,
            runbook_digest: None,
            message: None,
        })
    }

    /// One row: name, site spec, runbook extra fields, local rules, observation, time, plan.
    struct Case {
        name: &'static str,
        site: serde_json::Value,
        runbook: RunbookSpec,
        local: Local,
        observed: Observed,
        now: DateTime<Utc>,
        expected: Plan,
    }

    fn case(name: &'static str, expected: Plan) -> Case {
        Case {
            name,
            site: json!({}),
            runbook: signed(json!({})),
            local: local(),
            observed: drifted(),
            now: noon(),
            expected,
        }
    }

    #[test]
    fn decision_table() {
        let waived_site = json!({"exceptions": [{"runbook": "ssh-root", "hosts": {"names": ["ehr"]},
            "justification": "vendor", "expires": "2026-04-01T00:00:00Z", "approvedBy": "officer"}]});
        let cases = vec![
            Case {
                observed: Observed {
                    check: None,
                    ..drifted()
                },
                ..case("nothing observed yet: check", Plan::Check)
            },
            Case {
                observed: Observed {
                    check: Some(Verdict::Compliant),
                    previous: previous(CheckResult::Failed, 2),
                    ..drifted()
                },
                ..case("compliant: pass", Plan::Pass)
            },
            Case {
                observed: Observed {
                    check: Some(Verdict::NotApplicable),
                    ..drifted()
                },
                ..case("not applicable", Plan::NotApplicable)
            },
            Case {
                observed: Observed {
                    check: Some(Verdict::Error),
                    ..drifted()
                },
                ..case("the check errored", Plan::CheckError)
            },
            case("drifted: heal, attempt 1", Plan::Heal { attempt: 1 }),
            Case {
                observed: Observed {
                    previous: previous(CheckResult::Failed, 1),
                    ..drifted()
                },
                ..case("second attempt", Plan::Heal { attempt: 2 })
            },
            Case {
                site: json!({"healing": {"mode": "off"}}),
                observed: Observed::default(),
                ..case("healing off: nothing runs", Plan::Skip)
            },
            Case {
                site: json!({"healing": {"mode": "audit"}}),
                ..case(
                    "audit mode: report drift",
                    Plan::ReportDrift(DriftOnly::Audit),
                )
            },
            Case {
                runbook: {
                    let mut spec = runbook("ssh-root", "linux", json!({}), json!({})).spec;
                    sign_runbook(&mut spec, &key());
                    spec
                },
                ..case(
                    "check-only runbook",
                    Plan::ReportDrift(DriftOnly::CheckOnly),
                )
            },
            Case {
                site: waived_site.clone(),
                ..case(
                    "an exception in force waives",
                    Plan::Waive {
                        until: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
                    },
                )
            },
            Case {
                site: waived_site,
                now: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
                observed: Observed {
                    synced_at: Some(Utc.with_ymd_and_hms(2026, 3, 31, 23, 59, 0).unwrap()),
                    ..drifted()
                },
                ..case(
                    "an exception at its expiry no longer waives",
                    Plan::Heal { attempt: 1 },
                )
            },
            Case {
                observed: Observed {
                    previous: previous(CheckResult::Failed, 3),
                    ..drifted()
                },
                ..case(
                    "budget spent: escalate and notify",
                    Plan::Escalate {
                        reason: Escalation::AttemptsExhausted,
                        notify: true,
                        attempts: 3,
                    },
                )
            },
            Case {
                observed: Observed {
                    previous: previous(CheckResult::Escalated, 3),
                    ..drifted()
                },
                ..case(
                    "already escalated: escalate without notifying again",
                    Plan::Escalate {
                        reason: Escalation::AttemptsExhausted,
                        notify: false,
                        attempts: 3,
                    },
                )
            },
            Case {
                observed: Observed {
                    previous: Some(RunbookResult {
                        runbook_digest: Some("sha256:an-older-version".into()),
                        ..previous(CheckResult::Escalated, 3).unwrap()
                    }),
                    ..drifted()
                },
                ..case(
                    "a new runbook version gets a fresh budget",
                    Plan::Heal { attempt: 1 },
                )
            },
            Case {
                observed: Observed {
                    previous: Some(RunbookResult {
                        runbook_digest: signed(json!({})).digest,
                        ..previous(CheckResult::Failed, 3).unwrap()
                    }),
                    ..drifted()
                },
                ..case(
                    "the same version keeps its spent budget",
                    Plan::Escalate {
                        reason: Escalation::AttemptsExhausted,
                        notify: true,
                        attempts: 3,
                    },
                )
            },
            Case {
                site: json!({"healing": {"maxAttempts": 5}}),
                observed: Observed {
                    previous: previous(CheckResult::Failed, 3),
                    ..drifted()
                },
                ..case("the site's budget counts", Plan::Heal { attempt: 4 })
            },
            Case {
                observed: Observed {
                    heals: vec![
                        noon() - TimeDelta::hours(1),
                        noon() - TimeDelta::hours(5),
                        noon() - TimeDelta::hours(23),
                    ],
                    ..drifted()
                },
                ..case(
                    "three heals within 24h: flapping",
                    Plan::Escalate {
                        reason: Escalation::Flapping { heals: 3 },
                        notify: true,
                        attempts: 0,
                    },
                )
            },
            Case {
                observed: Observed {
                    heals: vec![
                        noon() - TimeDelta::hours(1),
                        noon() - TimeDelta::hours(5),
                        noon() - TimeDelta::hours(25),
                    ],
                    ..drifted()
                },
                ..case(
                    "a heal outside the flap window does not count",
                    Plan::Heal { attempt: 1 },
                )
            },
            Case {
                observed: Observed {
                    ntp_offset_ms: None,
                    ..drifted()
                },
                ..case("clock unknown: defer", Plan::Defer(Deferral::ClockUnknown))
            },
            Case {
                observed: Observed {
                    ntp_offset_ms: Some(-10_001),
                    ..drifted()
                },
                ..case(
                    "clock skewed past the limit: defer",
                    Plan::Defer(Deferral::ClockSkew { offset_ms: -10_001 }),
                )
            },
            Case {
                observed: Observed {
                    ntp_offset_ms: Some(10_000),
                    ..drifted()
                },
                ..case("skew at the limit still heals", Plan::Heal { attempt: 1 })
            },
            Case {
                runbook: signed(json!({"disruptive": true})),
                ..case(
                    "disruptive outside the window: defer until it opens",
                    Plan::Defer(Deferral::OutsideWindow {
                        opens: Some(Utc.with_ymd_and_hms(2026, 3, 11, 2, 0, 0).unwrap()),
                    }),
                )
            },
            Case {
                runbook: signed(json!({"disruptive": true})),
                now: Utc.with_ymd_and_hms(2026, 3, 10, 3, 0, 0).unwrap(),
                observed: Observed {
                    synced_at: Some(Utc.with_ymd_and_hms(2026, 3, 10, 2, 59, 0).unwrap()),
                    ..drifted()
                },
                ..case(
                    "disruptive inside the window: heal",
                    Plan::Heal { attempt: 1 },
                )
            },
            Case {
                runbook: signed(json!({"disruptive": true})),
                local: Local {
                    allow_disruptive_outside_window: true,
                    ..local()
                },
                ..case(
                    "disruptive allowed outside the window",
                    Plan::Heal { attempt: 1 },
                )
            },
            Case {
                observed: Observed {
                    verify: Some(Verdict::Compliant),
                    previous: previous(CheckResult::Failed, 1),
                    ..drifted()
                },
                ..case(
                    "verified after remediation: healed",
                    Plan::Healed { attempts: 2 },
                )
            },
            Case {
                observed: Observed {
                    verify: Some(Verdict::Drifted),
                    ..drifted()
                },
                ..case("verify still drifted: failed", Plan::Failed { attempts: 1 })
            },
            Case {
                observed: Observed {
                    verify: Some(Verdict::Error),
                    previous: previous(CheckResult::Failed, 2),
                    ..drifted()
                },
                ..case(
                    "the last attempt failed: escalate",
                    Plan::Escalate {
                        reason: Escalation::AttemptsExhausted,
                        notify: true,
                        attempts: 3,
                    },
                )
            },
            Case {
                runbook: {
                    let mut spec = signed(json!({}));
                    spec.check.script = "exit 0 # tampered".into();
                    spec
                },
                ..case(
                    "a runbook changed after signing is refused",
                    Plan::Refuse(Refusal::Untrusted(Untrusted::DigestMismatch {
                        declared: signed(json!({})).digest.unwrap(),
                        computed: {
                            let mut spec = signed(json!({}));
                            spec.check.script = "exit 0 # tampered".into();
                            spec.content_digest()
                        },
                    })),
                )
            },
            Case {
                local: Local {
                    trusted_keys: vec![Signer::from_seed(&[4; 32]).public_key()],
                    ..local()
                },
                ..case(
                    "signed by a key not trusted: refused",
                    Plan::Refuse(Refusal::Untrusted(Untrusted::UntrustedKeys {
                        signed_by: vec![key().keyid().to_owned()],
                        trusted: vec![Signer::from_seed(&[4; 32]).keyid().to_owned()],
                    })),
                )
            },
            Case {
                observed: Observed {
                    synced_at: Some(noon() - TimeDelta::minutes(61)),
                    ..drifted()
                },
                ..case(
                    "cache older than its limit: refused",
                    Plan::Refuse(Refusal::StaleCache {
                        synced_at: Some(noon() - TimeDelta::minutes(61)),
                    }),
                )
            },
            Case {
                observed: Observed {
                    synced_at: None,
                    check: None,
                    ..drifted()
                },
                ..case(
                    "never synced: refused",
                    Plan::Refuse(Refusal::StaleCache { synced_at: None }),
                )
            },
            Case {
                local: Local {
                    allowed_hosts: vec!["10.0.0.9".into()],
                    ..local()
                },
                ..case(
                    "a host outside allowedHosts: refused",
                    Plan::Refuse(Refusal::HostNotAllowed {
                        address: Some("ehr.smile.local".into()),
                    }),
                )
            },
            Case {
                site: json!({"exceptions": [{"runbook": "ssh-root", "hosts": {"selector": "a in ("},
                    "justification": "x", "expires": "2030-01-01T00:00:00Z", "approvedBy": "o"}]}),
                ..case(
                    "a waiver that cannot be decided: refused",
                    Plan::Refuse(Refusal::Undecided(vec![Undecided {
                        field: "spec.exceptions[0].hosts.selector".into(),
                        error: osc_crds::selector::parse("a in (").unwrap_err().to_string(),
                    }])),
                )
            },
        ];
        for c in cases {
            let item = item(c.site);
            let desired = Desired {
                item: &item,
                runbook: &c.runbook,
                local: &c.local,
            };
            assert_eq!(plan(desired, &c.observed, c.now), c.expected, "{}", c.name);
        }
    }

    /// Regression: with `allowedHosts` set, the appliance's own checks (local transport, no
    /// address) were refused as "not allowed", though they contact nobody.
    #[test]
    fn allowed_hosts_never_refuses_the_appliances_own_checks() {
        let mut own = item(json!({}));
        own.address = None;
        let local = Local {
            allowed_hosts: vec!["10.0.0.9".into()],
            ..local()
        };
        let runbook = signed(json!({}));
        let desired = Desired {
            item: &own,
            runbook: &runbook,
            local: &local,
        };
        assert_eq!(
            plan(desired, &drifted(), noon()),
            Plan::Heal { attempt: 1 },
            "a local item is judged as if allowedHosts were empty"
        );
    }

    #[test]
    fn results_outcomes_and_attempts_of_each_end() {
        use CheckResult as R;
        let escalate = Plan::Escalate {
            reason: Escalation::AttemptsExhausted,
            notify: true,
            attempts: 3,
        };
        let cases: Vec<(Plan, Option<R>, Option<Outcome>, u32)> = vec![
            (Plan::Check, None, None, 2),
            (Plan::Skip, None, None, 2),
            (Plan::Heal { attempt: 3 }, None, None, 3),
            (
                Plan::Refuse(Refusal::StaleCache { synced_at: None }),
                Some(R::Error),
                None,
                2,
            ),
            (Plan::Pass, Some(R::Pass), Some(Outcome::Pass), 0),
            (
                Plan::NotApplicable,
                Some(R::NotApplicable),
                Some(Outcome::Pass),
                0,
            ),
            (Plan::CheckError, Some(R::Error), Some(Outcome::Failed), 2),
            (
                Plan::Waive { until: noon() },
                Some(R::Waived),
                Some(Outcome::Waived),
                2,
            ),
            (
                Plan::ReportDrift(DriftOnly::Audit),
                Some(R::Drifted),
                Some(Outcome::DryRun),
                2,
            ),
            (
                Plan::Defer(Deferral::ClockUnknown),
                Some(R::Deferred),
                Some(Outcome::Deferred),
                2,
            ),
            (escalate, Some(R::Escalated), Some(Outcome::Escalated), 3),
            (
                Plan::Healed { attempts: 1 },
                Some(R::Healed),
                Some(Outcome::Healed),
                1,
            ),
            (
                Plan::Failed { attempts: 2 },
                Some(R::Failed),
                Some(Outcome::Failed),
                2,
            ),
        ];
        for (plan, result, outcome, attempts) in cases {
            assert_eq!(plan.result(), result, "{plan:?}");
            assert_eq!(plan.outcome(), outcome, "{plan:?}");
            assert_eq!(plan.attempts(2), attempts, "{plan:?}");
        }
    }
}
