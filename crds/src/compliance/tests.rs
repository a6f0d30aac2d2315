//! The score as tables: first over bare pairs (the minimal input a report from the evidence log
//! also has), then over resources, for the selection, waivers, intervals and the status write.

use chrono::TimeZone;
use serde_json::{Value, json};

use super::*;
use crate::condition::find_condition;

const MINUTE: StdDuration = StdDuration::from_secs(60);

/// The moment every table is evaluated at.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

fn minutes_ago(minutes: i64) -> DateTime<Utc> {
    now() - TimeDelta::minutes(minutes)
}

/// A HIPAA pair checked every 15 minutes with `latest` as its result.
fn pair(result: CheckResult, minutes_old: i64) -> Pair<'static> {
    Pair {
        host: "web-1",
        runbook: "auditd",
        frameworks: BTreeSet::from([Framework::Hipaa]),
        interval: 15 * MINUTE,
        waived_until: None,
        latest: Some(Observation {
            result,
            checked_at: Some(minutes_ago(minutes_old)),
        }),
    }
}

fn citing(pair: Pair<'static>, frameworks: &[Framework]) -> Pair<'static> {
    Pair {
        frameworks: frameworks.iter().copied().collect(),
        ..pair
    }
}

fn waived_until(pair: Pair<'static>, until: DateTime<Utc>) -> Pair<'static> {
    Pair {
        waived_until: Some(until),
        ..pair
    }
}

use CheckResult::*;
use Framework::{Cis, Hipaa, Soc2};

#[test]
fn every_result_has_an_explicit_standing() {
    let table = [
        (Pass, Standing::Compliant),
        (Healed, Standing::Compliant),
        (Drifted, Standing::Drifted),
        (Deferred, Standing::Drifted),
        (Failed, Standing::Failing),
        (Escalated, Standing::Failing),
        (Error, Standing::Failing),
        (NotApplicable, Standing::NotApplicable),
        (Waived, Standing::NoAnswer),
    ];
    for (result, standing) in table {
        assert_eq!(Standing::of_result(result), standing, "{result:?}");
        assert_eq!(pair(result, 1).standing(now()), standing, "{result:?}");
    }
}

#[test]
fn score_table() {
    struct Case {
        name: &'static str,
        frameworks: &'static [Framework],
        pairs: Vec<Pair<'static>>,
        scores: &'static [(Framework, f64)],
        tally: Tally,
    }
    let in_a_day = now() + TimeDelta::days(1);
    let yesterday = now() - TimeDelta::days(1);
    let cases = [
        Case {
            name: "no pairs: no score, not 0 or 1",
            frameworks: &[Hipaa],
            pairs: vec![],
            scores: &[],
            tally: Tally::default(),
        },
        Case {
            name: "all pass",
            frameworks: &[Hipaa],
            pairs: vec![pair(Pass, 1), pair(Pass, 5)],
            scores: &[(Hipaa, 1.0)],
            tally: Tally {
                compliant: 2,
                ..Tally::default()
            },
        },
        Case {
            name: "healed counts as compliant, drifted does not",
            frameworks: &[Hipaa],
            pairs: vec![pair(Pass, 1), pair(Healed, 1), pair(Drifted, 1)],
            scores: &[(Hipaa, 0.6666)],
            tally: Tally {
                compliant: 2,
                drifted: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "deferred, failed, escalated and error count against",
            frameworks: &[Hipaa],
            pairs: vec![
                pair(Pass, 1),
                pair(Deferred, 1),
                pair(Failed, 1),
                pair(Escalated, 1),
                pair(Error, 1),
            ],
            scores: &[(Hipaa, 0.2)],
            tally: Tally {
                compliant: 1,
                drifted: 1,
                failing: 3,
                ..Tally::default()
            },
        },
        Case {
            name: "waived and not applicable are out of the total",
            frameworks: &[Hipaa],
            pairs: vec![
                pair(Pass, 1),
                pair(NotApplicable, 1),
                waived_until(pair(Failed, 1), in_a_day),
            ],
            scores: &[(Hipaa, 1.0)],
            tally: Tally {
                compliant: 1,
                waived: 1,
                not_applicable: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "an expired exception waives nothing",
            frameworks: &[Hipaa],
            pairs: vec![pair(Pass, 1), waived_until(pair(Failed, 1), yesterday)],
            scores: &[(Hipaa, 0.5)],
            tally: Tally {
                compliant: 1,
                failing: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "an exception in force waives even a stale pair",
            frameworks: &[Hipaa],
            pairs: vec![pair(Pass, 1), waived_until(pair(Pass, 600), in_a_day)],
            scores: &[(Hipaa, 1.0)],
            tally: Tally {
                compliant: 1,
                waived: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "a result older than two intervals is no answer: in the total, not compliant",
            frameworks: &[Hipaa],
            pairs: vec![pair(Pass, 1), pair(Pass, 31)],
            scores: &[(Hipaa, 0.5)],
            tally: Tally {
                compliant: 1,
                no_answer: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "a result exactly two intervals old still counts",
            frameworks: &[Hipaa],
            pairs: vec![pair(Pass, 30)],
            scores: &[(Hipaa, 1.0)],
            tally: Tally {
                compliant: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "a stale not-applicable result is no answer too",
            frameworks: &[Hipaa],
            pairs: vec![pair(NotApplicable, 31)],
            scores: &[(Hipaa, 0.0)],
            tally: Tally {
                no_answer: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "no result, or one without a time, is no answer",
            frameworks: &[Hipaa],
            pairs: vec![
                Pair {
                    latest: None,
                    ..pair(Pass, 1)
                },
                Pair {
                    latest: Some(Observation {
                        result: Pass,
                        checked_at: None,
                    }),
                    ..pair(Pass, 1)
                },
            ],
            scores: &[(Hipaa, 0.0)],
            tally: Tally {
                no_answer: 2,
                ..Tally::default()
            },
        },
        Case {
            name: "a waived result without an exception in force is no answer",
            frameworks: &[Hipaa],
            pairs: vec![pair(Pass, 1), pair(Waived, 1)],
            scores: &[(Hipaa, 0.5)],
            tally: Tally {
                compliant: 1,
                no_answer: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "a runbook with only a CIS control does not count for HIPAA",
            frameworks: &[Hipaa, Cis],
            pairs: vec![
                citing(pair(Pass, 1), &[Hipaa]),
                citing(pair(Drifted, 1), &[Cis]),
                citing(pair(Failed, 1), &[Hipaa, Cis]),
            ],
            scores: &[(Hipaa, 0.5), (Cis, 0.0)],
            tally: Tally {
                compliant: 1,
                drifted: 1,
                failing: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "a framework the site does not track is absent",
            frameworks: &[Hipaa],
            pairs: vec![
                citing(pair(Pass, 1), &[Soc2]),
                citing(pair(Pass, 1), &[Hipaa]),
            ],
            scores: &[(Hipaa, 1.0)],
            tally: Tally {
                compliant: 2,
                ..Tally::default()
            },
        },
        Case {
            name: "a runbook citing no framework counts for the site, not for a score",
            frameworks: &[Hipaa],
            pairs: vec![citing(pair(Drifted, 1), &[])],
            scores: &[],
            tally: Tally {
                drifted: 1,
                ..Tally::default()
            },
        },
        Case {
            name: "denominator 0: only waived and not applicable gives no score",
            frameworks: &[Hipaa],
            pairs: vec![
                pair(NotApplicable, 1),
                waived_until(pair(Pass, 1), in_a_day),
            ],
            scores: &[],
            tally: Tally {
                waived: 1,
                not_applicable: 1,
                ..Tally::default()
            },
        },
    ];
    for case in cases {
        let result = score(case.frameworks, 3, &case.pairs, now());
        let expected: BTreeMap<Framework, f64> = case.scores.iter().copied().collect();
        assert_eq!(result.scores(), expected, "{}", case.name);
        let t = case.tally;
        assert_eq!(
            result.counts,
            SiteCounts {
                hosts: 3,
                compliant: t.compliant,
                drifted: t.drifted,
                failing: t.failing,
                no_answer: t.no_answer,
                waived: t.waived,
                not_applicable: t.not_applicable,
            },
            "{}",
            case.name
        );
        assert_eq!(
            result.frameworks.keys().copied().collect::<Vec<_>>(),
            case.frameworks,
            "{}: one tally per framework of the site",
            case.name
        );
    }
}

#[test]
fn ratios_round_down_to_four_decimals() {
    let cases = [
        (1, 3, Some(0.3333)),
        (2, 3, Some(0.6666)),
        (1, 8, Some(0.125)),
        // Rounding down: one non-compliant pair in 20 000 is not shown as 100 %.
        (19_999, 20_000, Some(0.9999)),
        (0, 5, Some(0.0)),
        (5, 5, Some(1.0)),
        (0, 0, None),
    ];
    for (compliant, total, expected) in cases {
        let tally = Tally {
            compliant,
            drifted: total - compliant,
            ..Tally::default()
        };
        assert_eq!(tally.ratio(), expected, "{compliant}/{total}");
    }
    assert_eq!(
        serde_json::to_string(
            &Tally {
                compliant: 2,
                drifted: 1,
                ..Tally::default()
            }
            .ratio()
        )
        .unwrap(),
        "0.6666",
        "scores serialize short and stable"
    );
}

#[test]
fn next_change_is_when_time_alone_changes_the_standing() {
    let in_an_hour = now() + TimeDelta::hours(1);
    let cases = [
        (
            "a fresh result changes one tick after two intervals",
            pair(Pass, 10),
            Some(minutes_ago(10) + TimeDelta::minutes(30) + TimeDelta::nanoseconds(1)),
        ),
        (
            "a result exactly two intervals old changes in one tick",
            pair(Pass, 30),
            Some(now() + TimeDelta::nanoseconds(1)),
        ),
        (
            "a stale result does not change by itself",
            pair(Pass, 31),
            None,
        ),
        (
            "a waiver changes when it lapses",
            waived_until(pair(Pass, 31), in_an_hour),
            Some(in_an_hour),
        ),
        (
            "no result does not change by itself",
            Pair {
                latest: None,
                ..pair(Pass, 1)
            },
            None,
        ),
    ];
    for (name, pair, expected) in cases {
        let at = pair.next_change(now());
        assert_eq!(at, expected, "{name}");
        if let Some(at) = at {
            assert!(
                at > now(),
                "{name}: strictly later, or a roll-up would spin"
            );
            assert_ne!(
                pair.standing(at),
                pair.standing(now()),
                "{name}: the standing does change then"
            );
            assert_eq!(
                pair.standing(at - TimeDelta::nanoseconds(1)),
                pair.standing(now()),
                "{name}: and not before"
            );
        }
    }
    let site = score(
        &[Hipaa],
        1,
        &[pair(Pass, 31), pair(Pass, 5), pair(Pass, 20)],
        now(),
    );
    assert_eq!(
        site.next_change,
        Some(minutes_ago(20) + TimeDelta::minutes(30) + TimeDelta::nanoseconds(1)),
        "a site changes at its earliest pair's change"
    );
}

#[test]
fn an_interval_too_long_to_represent_never_goes_stale() {
    let forever = Pair {
        interval: StdDuration::MAX,
        ..pair(Pass, 1_000_000)
    };
    assert_eq!(forever.standing(now()), Standing::Compliant);
}

#[test]
fn compliant_condition_table() {
    let cases = [
        (vec![], ConditionStatus::Unknown, REASON_NO_RESULTS),
        (
            vec![pair(NotApplicable, 1)],
            ConditionStatus::Unknown,
            REASON_NO_RESULTS,
        ),
        (
            vec![pair(Pass, 1), pair(Healed, 1)],
            ConditionStatus::True,
            REASON_ALL_COMPLIANT,
        ),
        (
            vec![pair(Pass, 1), pair(Pass, 31)],
            ConditionStatus::False,
            REASON_NO_ANSWER,
        ),
        (
            vec![pair(Pass, 31), pair(Deferred, 1)],
            ConditionStatus::False,
            REASON_DRIFT_DETECTED,
        ),
        (
            vec![pair(Pass, 31), pair(Drifted, 1), pair(Error, 1)],
            ConditionStatus::False,
            REASON_CHECKS_FAILING,
        ),
        // A pair that cites no framework still decides the site's condition.
        (
            vec![pair(Pass, 1), citing(pair(Drifted, 1), &[])],
            ConditionStatus::False,
            REASON_DRIFT_DETECTED,
        ),
    ];
    for (pairs, status, reason) in cases {
        let condition = score(&[Hipaa], 1, &pairs, now()).condition(Some(4), now());
        assert_eq!(condition.type_, CONDITION_COMPLIANT);
        assert_eq!(
            (condition.status, condition.reason.as_str()),
            (status, reason),
            "{pairs:?}"
        );
        assert_eq!(condition.observed_generation, Some(4));
    }
}

#[test]
fn write_to_changes_only_what_it_owns_and_reports_no_op_writes() {
    let ready = Condition::new("Ready", ConditionStatus::True, "Healthy", minutes_ago(600));
    let mut status = SiteStatus {
        conditions: vec![ready.clone()],
        ..SiteStatus::default()
    };
    let passing = score(&[Hipaa], 1, &[pair(Pass, 1)], now());
    assert!(passing.write_to(&mut status, Some(2), minutes_ago(10)));
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.compliance, BTreeMap::from([(Hipaa, 1.0)]));
    assert_eq!(status.counts.as_ref().map(|c| c.compliant), Some(1));
    assert_eq!(find_condition(&status.conditions, "Ready"), Some(&ready));

    let written = status.clone();
    assert!(
        !passing.write_to(&mut status, Some(2), now()),
        "the same answer later is no change"
    );
    assert_eq!(status, written, "in particular lastTransitionTime stays");

    let drifted = score(&[Hipaa], 1, &[pair(Drifted, 1)], now());
    assert!(drifted.write_to(&mut status, Some(2), now()));
    let compliant = find_condition(&status.conditions, CONDITION_COMPLIANT).unwrap();
    assert_eq!(compliant.status, ConditionStatus::False);
    assert_eq!(compliant.last_transition_time, now());
    assert_eq!(
        status.compliance,
        BTreeMap::from([(Hipaa, 0.0)]),
        "a score of 0 is written, not left out"
    );

    let nothing = score(&[Hipaa], 0, &[], now());
    assert!(nothing.write_to(&mut status, Some(3), now()));
    assert!(
        status.compliance.is_empty(),
        "a score without denominator is removed"
    );
}

// ---- From resources: the selection, intervals, waivers and hosts of the site. ----

fn site(spec: Value) -> Site {
    let mut spec = spec;
    spec["displayName"] = json!("Alpha Dental");
    spec["partner"] = json!("msp-one");
    serde_json::from_value(json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Site",
        "metadata": {"name": "alpha", "generation": 3},
        "spec": spec,
    }))
    .unwrap()
}

fn host(name: &str, platform: &str, labels: Value, results: Value) -> Host {
    serde_json::from_value(json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Host",
        "metadata": {"name": name, "namespace": "alpha", "labels": labels},
        "spec": {"platform": platform, "address": "10.0.0.1"},
        "status": {"results": results},
    }))
    .unwrap()
}

fn runbook(
    name: &str,
    platform: &str,
    labels: Value,
    frameworks: &[&str],
    interval: Option<&str>,
) -> Runbook {
    let controls: Vec<Value> = frameworks
        .iter()
        .map(|f| json!({"framework": f, "id": "1"}))
        .collect();
    let mut spec = json!({
        "platform": platform,
        "severity": "high",
        "controls": controls,
        "check": {"interpreter": if platform == "windows" { "powershell" } else { "sh" }, "script": "true"},
    });
    if let Some(interval) = interval {
        spec["interval"] = json!(interval);
    }
    serde_json::from_value(json!({
        "apiVersion": "osiriscare.net/v1alpha1",
        "kind": "Runbook",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .unwrap()
}

fn result(result: &str, minutes_old: i64) -> Value {
    json!({"result": result, "lastChecked": minutes_ago(minutes_old)})
}

fn library() -> Vec<Runbook> {
    vec![
        runbook(
            "auditd",
            "linux",
            json!({"tier": "baseline"}),
            &["HIPAA", "CIS"],
            Some("10m"),
        ),
        runbook(
            "ssh-config",
            "linux",
            json!({"tier": "baseline"}),
            &["CIS"],
            None,
        ),
        runbook(
            "bitlocker",
            "windows",
            json!({"tier": "baseline"}),
            &["HIPAA"],
            None,
        ),
        runbook("ntp", "linux", json!({}), &["HIPAA"], Some("1h")),
    ]
}

/// (host, runbook, interval in minutes) of each pair.
fn pair_summary(site: &Site, hosts: &[Host], runbooks: &[Runbook]) -> Vec<(String, String, u64)> {
    let hosts: Vec<&Host> = hosts.iter().collect();
    pairs(site, &hosts, runbooks)
        .into_iter()
        .map(|p| {
            (
                p.host.to_owned(),
                p.runbook.to_owned(),
                p.interval.as_secs() / 60,
            )
        })
        .collect()
}

#[test]
fn selection_table() {
    let hosts = vec![
        host("db-1", "linux", json!({"role": "db"}), json!({})),
        host("pc-1", "windows", json!({"role": "desk"}), json!({})),
        host("web-1", "linux", json!({"role": "web"}), json!({})),
    ];
    let s = |host, runbook, minutes| (String::from(host), String::from(runbook), minutes);
    let cases = [
        (
            "a selector picks runbooks of each host's platform only; the runbook's interval, else 15m",
            json!([{"selector": "tier=baseline"}]),
            vec![
                s("db-1", "auditd", 10),
                s("db-1", "ssh-config", 15),
                s("pc-1", "bitlocker", 15),
                s("web-1", "auditd", 10),
                s("web-1", "ssh-config", 15),
            ],
        ),
        (
            "names and a hosts selector; the entry's interval overrides the runbook's",
            json!([{"names": ["ntp"], "hosts": "role=db", "interval": "5m"}]),
            vec![s("db-1", "ntp", 5)],
        ),
        (
            "several entries selecting one pair: one pair, the shortest interval",
            json!([
                {"names": ["ntp"]},
                {"names": ["ntp"], "hosts": "role=web", "interval": "20m"},
                {"names": ["auditd"], "hosts": "role=web", "interval": "30m"},
            ]),
            vec![
                s("db-1", "ntp", 60),
                s("web-1", "ntp", 20),
                s("web-1", "auditd", 30),
            ],
        ),
        (
            "a selector that does not parse selects nothing",
            json!([{"selector": "tier in ("}, {"names": ["ntp"], "hosts": "role in ("}]),
            vec![],
        ),
        (
            "an unknown runbook name selects nothing",
            json!([{"names": ["nope"]}]),
            vec![],
        ),
    ];
    for (name, runbooks, mut expected) in cases {
        let site = site(json!({"runbooks": runbooks}));
        let mut found = pair_summary(&site, &hosts, &library());
        found.sort();
        expected.sort();
        assert_eq!(found, expected, "{name}");
    }
}

#[test]
fn exceptions_waive_by_host_name_or_selector_until_they_expire() {
    let in_a_day = now() + TimeDelta::days(1);
    let yesterday = now() - TimeDelta::days(1);
    let exception = |runbook: &str, hosts: Value, expires: DateTime<Utc>| {
        json!({"runbook": runbook, "hosts": hosts, "justification": "vendor-managed", "expires": expires,
               "approvedBy": "Dr. Ada"})
    };
    let site = site(json!({
        "runbooks": [{"names": ["auditd", "ntp"]}],
        "exceptions": [
            exception("auditd", json!({"names": ["db-1"]}), yesterday),
            exception("auditd", json!({"names": ["db-1"]}), in_a_day),
            exception("ntp", json!({"selector": "role=web"}), in_a_day),
            exception("ntp", json!({"selector": "role in ("}), in_a_day),
        ],
    }));
    let hosts = [
        host("db-1", "linux", json!({"role": "db"}), json!({})),
        host("web-1", "linux", json!({"role": "web"}), json!({})),
    ];
    let hosts: Vec<&Host> = hosts.iter().collect();
    let runbooks = library();
    let waived: Vec<(&str, &str, Option<DateTime<Utc>>)> = pairs(&site, &hosts, &runbooks)
        .into_iter()
        .map(|p| (p.host, p.runbook, p.waived_until))
        .collect();
    assert_eq!(
        waived,
        [
            ("db-1", "auditd", Some(in_a_day)),
            ("db-1", "ntp", None),
            ("web-1", "auditd", None),
            ("web-1", "ntp", Some(in_a_day)),
        ],
        "the latest expiry of the covering exceptions; a bad selector covers nothing"
    );
}

#[test]
fn site_compliance_from_resources() {
    let site = site(json!({
        "frameworks": ["HIPAA", "CIS", "SOC2"],
        "runbooks": [{"selector": "tier=baseline"}, {"names": ["ntp"], "hosts": "role=db"}],
    }));
    let hosts = vec![
        host(
            "db-1",
            "linux",
            json!({"role": "db"}),
            json!({
                "auditd": result("pass", 5),
                "ssh-config": result("drifted", 5),
                // Checked every 10 minutes: 25 minutes old is stale.
                "ntp": result("healed", 25),
                // Not selected for this host: ignored.
                "bitlocker": result("failed", 1),
            }),
        ),
        host(
            "web-1",
            "linux",
            json!({"role": "web"}),
            json!({"auditd": result("healed", 19), "ssh-config": result("notApplicable", 1)}),
        ),
        // Another site's host is not this site's business.
        serde_json::from_value(json!({
            "apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
            "metadata": {"name": "x", "namespace": "beta"},
            "spec": {"platform": "linux", "address": "10.0.0.9"},
            "status": {"results": {"auditd": result("failed", 1)}},
        }))
        .unwrap(),
    ];
    let mut runbooks = library();
    runbooks[3].spec.interval = Some("10m".parse().unwrap());

    let compliance = site_compliance(&site, &hosts, &runbooks, now());

    assert_eq!(
        compliance.counts,
        SiteCounts {
            hosts: 2,
            compliant: 2,
            drifted: 1,
            failing: 0,
            no_answer: 1,
            waived: 0,
            not_applicable: 1,
        }
    );
    // HIPAA: auditd ×2 (pass, healed) + ntp (stale) → 2/3. CIS: auditd ×2, ssh-config drifted
    // (web-1's is not applicable) → 2/3. SOC2: no runbook cites it → absent.
    assert_eq!(
        compliance.scores(),
        BTreeMap::from([(Hipaa, 0.6666), (Cis, 0.6666)])
    );
    assert_eq!(compliance.frameworks[&Soc2], Tally::default());
    // web-1's healed auditd (19 minutes old, interval 10m) goes stale first.
    assert_eq!(
        compliance.next_change,
        Some(minutes_ago(19) + TimeDelta::minutes(20) + TimeDelta::nanoseconds(1))
    );
}

#[test]
fn a_site_without_frameworks_is_scored_for_hipaa() {
    let site = site(json!({"runbooks": [{"names": ["auditd"]}]}));
    let hosts = [host(
        "db-1",
        "linux",
        json!({}),
        json!({"auditd": result("pass", 1)}),
    )];
    let compliance = site_compliance(&site, &hosts, &library(), now());
    assert_eq!(compliance.scores(), BTreeMap::from([(Hipaa, 1.0)]));
}

#[test]
fn every_score_survives_a_json_round_trip_exactly() {
    // Central skips a status write when the fresh status equals the stored one, so a score read
    // back from JSON must be the very same f64, or every recomputation would write.
    let scale = u32::try_from(SCORE_SCALE).unwrap();
    for compliant in 0..=scale {
        let tally = Tally {
            compliant,
            drifted: scale - compliant,
            ..Tally::default()
        };
        let ratio = tally.ratio().unwrap();
        let back: f64 = serde_json::from_str(&serde_json::to_string(&ratio).unwrap()).unwrap();
        assert_eq!(back.to_bits(), ratio.to_bits(), "{compliant}/{scale}");
    }
}
