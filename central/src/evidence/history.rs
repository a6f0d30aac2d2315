//! Point-in-time compliance: a site's score per framework at a past moment, recomputed from the
//! evidence log with the published formula (`osc_crds::compliance::score`, `docs/DESIGN.md` §4).
//!
//! Results come from the log alone: each (host, runbook) pair's latest bundle that ended at or
//! before the moment, its outcome (or its check's `not-applicable` / `error` verdict) and the
//! frameworks its controls cite. A log does not record how often a pair was meant to be checked,
//! so the staleness interval is the one today's resources give the pair (the Site's selection, the
//! Runbook), else the default; and a `waived` result counts as waived while it is fresh, because
//! the appliance decided it under the exceptions in force when it ran (today's exceptions say
//! nothing about the past).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use osc_crds::compliance::{self, Observation, Pair, STALE_AFTER_INTERVALS};
use osc_crds::defaults::{CHECK_INTERVAL, FRAMEWORKS};
use osc_crds::kinds::host::CheckResult;
use osc_crds::kinds::site::SiteCounts;
use osc_crds::kinds::{Framework, Host, Runbook, Site};
use osc_proto::dsse::Envelope;
use osc_proto::evidence::{Bundle, Outcome, Verdict};
use serde::Serialize;

use super::LogError;
use crate::store::{EvidenceFilter, EvidenceRecord, Store, StoreError};

/// How many rows one read of the log takes while a report gathers results.
const PAGE: u64 = 5_000;

/// A site's compliance at a past moment, as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceAt {
    /// The site.
    pub site: String,
    /// The moment.
    pub at: DateTime<Utc>,
    /// Score per framework, as in `SiteStatus.compliance` (absent: nothing to score).
    pub compliance: BTreeMap<Framework, f64>,
    /// The counts behind the scores, as in `SiteStatus.counts`; `hosts` counts hosts with evidence.
    pub counts: SiteCounts,
    /// How many log entries the answer read.
    pub entries: u64,
}

/// The latest result of one pair by a moment.
#[derive(Debug, Clone)]
struct Latest {
    /// When its reconcile ended.
    ended: DateTime<Utc>,
    /// Its log index, to order results that ended at the same moment.
    log_index: u64,
    /// The result it gives the pair.
    result: CheckResult,
    /// The frameworks its controls cite.
    frameworks: BTreeSet<Framework>,
}

/// The compliance of `site` at `at` from its evidence; `hosts` and `runbooks` are today's, for the
/// pairs' intervals only.
pub async fn compliance_at(
    store: &Store,
    site: &Site,
    hosts: &[Host],
    runbooks: &[Runbook],
    at: DateTime<Utc>,
) -> Result<ComplianceAt, LogError> {
    let name = site.metadata.name.as_str();
    let mut latest: BTreeMap<(String, String), Latest> = BTreeMap::new();
    let mut filter = EvidenceFilter {
        site: Some(name.to_owned()),
        // `until` is exclusive; a result that ended exactly at `at` counts.
        until: Some(at + chrono::Duration::milliseconds(1)),
        limit: Some(PAGE),
        ..EvidenceFilter::default()
    };
    let mut entries = 0;
    loop {
        let page = store.list_evidence(&filter).await?;
        for record in &page.items {
            entries += 1;
            let result = read(record)?;
            let slot = latest.entry((record.host.clone(), record.runbook.clone()));
            let newer =
                |held: &Latest| (result.ended, result.log_index) > (held.ended, held.log_index);
            match slot {
                std::collections::btree_map::Entry::Vacant(vacant) => {
                    vacant.insert(result);
                }
                std::collections::btree_map::Entry::Occupied(mut held) => {
                    if newer(held.get()) {
                        held.insert(result);
                    }
                }
            }
        }
        match page.more_after {
            Some(after) => filter.after = Some(after),
            None => break,
        }
    }
    let (compliance, counts) = score_at(site, hosts, runbooks, &latest, at);
    Ok(ComplianceAt {
        site: name.to_owned(),
        at,
        compliance,
        counts,
        entries,
    })
}

/// Scores the logged pairs at `at` (pure).
fn score_at(
    site: &Site,
    hosts: &[Host],
    runbooks: &[Runbook],
    latest: &BTreeMap<(String, String), Latest>,
    at: DateTime<Utc>,
) -> (BTreeMap<Framework, f64>, SiteCounts) {
    let site_hosts: Vec<&Host> = hosts
        .iter()
        .filter(|host| host.metadata.namespace.as_deref() == Some(site.metadata.name.as_str()))
        .collect();
    let intervals: BTreeMap<(&str, &str), StdDuration> =
        compliance::pairs(site, &site_hosts, runbooks)
            .into_iter()
            .map(|pair| ((pair.host, pair.runbook), pair.interval))
            .collect();
    let pairs: Vec<Pair<'_>> = latest
        .iter()
        .map(|((host, runbook), result)| {
            let interval = intervals
                .get(&(host.as_str(), runbook.as_str()))
                .copied()
                .unwrap_or(CHECK_INTERVAL);
            let fresh_for = interval * STALE_AFTER_INTERVALS;
            Pair {
                host,
                runbook,
                frameworks: result.frameworks.clone(),
                interval,
                waived_until: (result.result == CheckResult::Waived).then(|| {
                    result.ended
                        + chrono::Duration::from_std(fresh_for).unwrap_or(chrono::Duration::MAX)
                        // Waived through the last moment the result counts, as crds keeps it fresh.
                        + chrono::Duration::nanoseconds(1)
                }),
                latest: Some(Observation {
                    result: result.result,
                    checked_at: Some(result.ended),
                }),
            }
        })
        .collect();
    let frameworks = if site.spec.frameworks.is_empty() {
        &FRAMEWORKS[..]
    } else {
        &site.spec.frameworks[..]
    };
    let hosts_seen: BTreeSet<&str> = latest.keys().map(|(host, _)| host.as_str()).collect();
    let scored = compliance::score(
        frameworks,
        u32::try_from(hosts_seen.len()).unwrap_or(u32::MAX),
        &pairs,
        at,
    );
    (scored.scores(), scored.counts)
}

/// The result a bundle's check verdict and outcome give its pair: an observation that the runbook
/// does not apply, or that the check could not decide, comes before the outcome.
fn result_of(verdict: Verdict, outcome: Outcome) -> CheckResult {
    match (verdict, outcome) {
        (Verdict::NotApplicable, _) => CheckResult::NotApplicable,
        (Verdict::Error, _) => CheckResult::Error,
        (_, Outcome::Pass) => CheckResult::Pass,
        (_, Outcome::Healed) => CheckResult::Healed,
        (_, Outcome::Failed) => CheckResult::Failed,
        (_, Outcome::Escalated) => CheckResult::Escalated,
        (_, Outcome::Deferred) => CheckResult::Deferred,
        (_, Outcome::Waived) => CheckResult::Waived,
        // An audit-mode drift: what would have run is recorded, the host is still drifted.
        (_, Outcome::DryRun) => CheckResult::Drifted,
    }
}

/// The result a stored bundle gives its pair.
fn read(record: &EvidenceRecord) -> Result<Latest, LogError> {
    let corrupt = |problem: String| {
        LogError::Store(StoreError::Corrupt {
            what: format!("evidence entry {}", record.log_index),
            source: problem.into(),
        })
    };
    let envelope: Envelope = serde_json::from_str(&record.envelope)
        .map_err(|error| corrupt(format!("its envelope does not decode: {error}")))?;
    let bundle = Bundle::from_payload(&envelope.payload)
        .map_err(|error| corrupt(format!("its bundle does not decode: {error}")))?;
    let result = result_of(bundle.pre_state.verdict, bundle.outcome);
    let frameworks = bundle
        .controls
        .iter()
        .filter_map(|control| {
            serde_json::from_value(serde_json::Value::String(control.framework.clone())).ok()
        })
        .collect();
    Ok(Latest {
        ended: bundle.timestamp_end,
        log_index: record.log_index,
        result,
        frameworks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_that_decides_nothing_comes_before_the_outcome() {
        #[rustfmt::skip]
        let cases = [
            (Verdict::NotApplicable, Outcome::Pass, CheckResult::NotApplicable),
            (Verdict::Error, Outcome::Failed, CheckResult::Error),
            (Verdict::Compliant, Outcome::Pass, CheckResult::Pass),
            (Verdict::Drifted, Outcome::Healed, CheckResult::Healed),
            (Verdict::Drifted, Outcome::Failed, CheckResult::Failed),
            (Verdict::Drifted, Outcome::Escalated, CheckResult::Escalated),
            (Verdict::Drifted, Outcome::Deferred, CheckResult::Deferred),
            (Verdict::Drifted, Outcome::Waived, CheckResult::Waived),
            (Verdict::Drifted, Outcome::DryRun, CheckResult::Drifted),
        ];
        for (verdict, outcome, expected) in cases {
            assert_eq!(
                result_of(verdict, outcome),
                expected,
                "{verdict:?} {outcome:?}"
            );
        }
    }

    fn site() -> Site {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "osiriscare.net/v1alpha1",
            "kind": "Site",
            "metadata": {"name": "clinic-1"},
            "spec": {"displayName": "Clinic", "partner": "msp-1"},
        }))
        .unwrap()
    }

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-03-01T02:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minute)
    }

    /// One logged pair per (host, result, minute it ended), all citing HIPAA.
    fn logged(results: &[(&str, CheckResult, i64)]) -> BTreeMap<(String, String), Latest> {
        results
            .iter()
            .enumerate()
            .map(|(index, (host, result, minute))| {
                let latest = Latest {
                    ended: at(*minute),
                    log_index: index as u64,
                    result: *result,
                    frameworks: [Framework::Hipaa].into(),
                };
                (((*host).to_owned(), "ssh".to_owned()), latest)
            })
            .collect()
    }

    #[test]
    fn a_waived_result_is_waived_while_fresh_then_no_answer() {
        let latest = logged(&[
            ("a", CheckResult::Waived, 0),
            ("b", CheckResult::Pass, 0),
            ("c", CheckResult::NotApplicable, 0),
        ]);
        let (scores, counts) = score_at(&site(), &[], &[], &latest, at(30));
        assert_eq!(
            scores[&Framework::Hipaa],
            1.0,
            "waived and not-applicable leave the total"
        );
        assert_eq!(
            (counts.waived, counts.not_applicable, counts.hosts),
            (1, 1, 3)
        );
        // Past two default intervals (15m) nothing is fresh: every pair is no answer.
        let (scores, counts) = score_at(&site(), &[], &[], &latest, at(31));
        assert_eq!(scores[&Framework::Hipaa], 0.0);
        assert_eq!((counts.no_answer, counts.waived), (3, 0));
    }
}
