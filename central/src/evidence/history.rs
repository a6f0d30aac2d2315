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
                        + chrono::Duration::milliseconds(1)
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
    let result = match (bundle.pre_state.verdict, bundle.outcome) {
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
    };
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
