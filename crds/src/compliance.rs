//! The compliance score of a site, computed from its hosts' latest results: a pure function of the
//! resources and `now`, shared by central's roll-up and by point-in-time reports.
//!
//! # The formula
//!
//! ```text
//! score = (pass + healed) / (all results − not applicable − waived)
//!       = compliant / (compliant + drifted + failing + noAnswer)
//! ```
//!
//! computed per framework over the (host, runbook) pairs the site's selection produces. A result
//! older than two intervals of its pair counts as "no answer": it stays in the total and is not
//! compliant, so a silent appliance lowers the score instead of freezing it.
//!
//! # Which pairs count
//!
//! A pair is a Host of the site and a Runbook that one of the site's `spec.runbooks` entries selects
//! for it: the runbook is named in `names` or its labels match `selector`, the host matches `hosts`
//! (every host when absent), and the two platforms are equal. A selector that does not parse selects
//! nothing. The pair's interval is the entry's `interval`, else the runbook's, else
//! [`CHECK_INTERVAL`](crate::defaults::CHECK_INTERVAL); when several entries select one pair, the shortest of their intervals is in
//! force, since the pair is checked as often as the most demanding entry asks.
//!
//! A pair counts towards a framework when its runbook cites a control of that framework and the
//! framework is in the site's `spec.frameworks` (HIPAA when empty). The site's [`SiteCounts`] and its
//! `Compliant` condition count every pair once, whatever frameworks it cites.
//!
//! # How a pair stands
//!
//! Each pair gets one [`Standing`], decided in this order:
//!
//! 1. `waived`: an exception of the site names the runbook, covers the host (by name or selector)
//!    and has not expired (`now < expires`; an exception without `expires` is not in force);
//! 2. `noAnswer`: no result, a result without `lastChecked`, or one whose age exceeds two intervals
//!    (a result exactly two intervals old still counts);
//! 3. otherwise by the latest [`CheckResult`], every variant explicitly:
//!
//! | result | standing | in the total | compliant |
//! |---|---|---|---|
//! | `pass` | compliant | yes | yes |
//! | `healed` | compliant | yes | yes |
//! | `drifted` | drifted | yes | no |
//! | `deferred` | drifted | yes | no (the drift is still there, healing waits) |
//! | `failed` | failing | yes | no |
//! | `escalated` | failing | yes | no |
//! | `error` | failing | yes | no (an unanswered check cannot prove compliance) |
//! | `notApplicable` | notApplicable | no | — |
//! | `waived` | noAnswer | yes | no |
//!
//! A `waived` result with no exception in force here is the appliance echoing a waiver that has
//! expired or was withdrawn; it says nothing about the host, so it counts as no answer until the next
//! check replaces it. The site's exceptions, not the appliance, decide what is waived.
//!
//! A site whose `healing.mode` is `off` runs no checks, so its pairs fall to `noAnswer` as their
//! results age: nobody vouches for those hosts any more, and the score says so.
//!
//! # Representation
//!
//! A score is a ratio in [0, 1], rounded down to four decimals (`2/3` → `0.6666`), so that it
//! serializes to short, stable JSON and reaches `1` only when every counted pair is compliant. A
//! framework with nothing in the denominator (no pair, or only waived and not-applicable ones) has no
//! score: it is absent from the map, never 0, 1 or NaN.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::condition::{Condition, ConditionStatus, set_condition};
use crate::defaults::FRAMEWORKS;
use crate::kinds::host::{CheckResult, RunbookResult};
use crate::kinds::site::{CONDITION_COMPLIANT, SiteCounts};
use crate::kinds::{Framework, Host, Runbook, Site, SiteStatus};
use crate::selection::Selection;

/// How many intervals a result stays fresh: older results count as "no answer".
pub const STALE_AFTER_INTERVALS: u32 = 2;

/// Scores are rounded down to multiples of `1 / SCORE_SCALE` (four decimals).
pub const SCORE_SCALE: u64 = 10_000;

/// `Compliant` reason: every counted pair passes or was healed.
pub const REASON_ALL_COMPLIANT: &str = "AllCompliant";
/// `Compliant` reason: a pair's remediation failed, was escalated, or its check errored.
pub const REASON_CHECKS_FAILING: &str = "ChecksFailing";
/// `Compliant` reason: a pair drifted and was not (yet) healed.
pub const REASON_DRIFT_DETECTED: &str = "DriftDetected";
/// `Compliant` reason: a pair has no result, or only a stale one.
pub const REASON_NO_ANSWER: &str = "NoAnswer";
/// `Compliant` reason (status `Unknown`): no pair is left to score.
pub const REASON_NO_RESULTS: &str = "NoResults";

/// Where one (host, runbook) pair stands for the score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Standing {
    /// Passed or healed: in the total and compliant.
    Compliant,
    /// Drifted or deferred: in the total, not compliant.
    Drifted,
    /// Failed, escalated or errored: in the total, not compliant.
    Failing,
    /// No fresh result: in the total, not compliant.
    NoAnswer,
    /// Covered by an exception in force: out of the total.
    Waived,
    /// The runbook does not apply to the host: out of the total.
    NotApplicable,
}

/// The latest result of a pair, as far as the score needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// What the check found.
    pub result: CheckResult,
    /// When it was found; a result without a time cannot be shown fresh and counts as no answer.
    pub checked_at: Option<DateTime<Utc>>,
}

/// One (host, runbook) pair with everything that decides its [`Standing`]. Built from resources by
/// [`pairs`], or by a report from the evidence log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The Host's name.
    pub host: &'a str,
    /// The Runbook's name.
    pub runbook: &'a str,
    /// The frameworks the runbook cites a control of.
    pub frameworks: BTreeSet<Framework>,
    /// How often the pair is checked; results older than [`STALE_AFTER_INTERVALS`] of it are stale.
    pub interval: StdDuration,
    /// The latest expiry among the site's exceptions covering the pair; waived while `now` is before.
    pub waived_until: Option<DateTime<Utc>>,
    /// The latest result, if any.
    pub latest: Option<Observation>,
}

/// Pairs counted by standing: one framework's, or the whole site's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Pairs that pass or were healed.
    pub compliant: u32,
    /// Pairs that drifted or whose healing is deferred.
    pub drifted: u32,
    /// Pairs that failed, were escalated or errored.
    pub failing: u32,
    /// Pairs without a fresh result.
    pub no_answer: u32,
    /// Pairs covered by an exception in force.
    pub waived: u32,
    /// Pairs the runbook does not apply to.
    pub not_applicable: u32,
}

/// A site's compliance at one moment: what central writes into [`SiteStatus`].
#[derive(Clone, Debug, PartialEq)]
pub struct SiteCompliance {
    /// One tally per framework of the site, including those with nothing to score.
    pub frameworks: BTreeMap<Framework, Tally>,
    /// Every pair of the site once, and the number of its hosts.
    pub counts: SiteCounts,
    /// The first moment after `now` at which the same resources give another answer (a result goes
    /// stale or an exception lapses); `None` when only a write can change it. A roll-up recomputes
    /// then, because time alone changes the score.
    pub next_change: Option<DateTime<Utc>>,
}

impl Standing {
    /// The standing a fresh, unwaived result gives (the table in the module documentation).
    pub fn of_result(result: CheckResult) -> Standing {
        match result {
            CheckResult::Pass | CheckResult::Healed => Standing::Compliant,
            CheckResult::Drifted | CheckResult::Deferred => Standing::Drifted,
            CheckResult::Failed | CheckResult::Escalated | CheckResult::Error => Standing::Failing,
            CheckResult::NotApplicable => Standing::NotApplicable,
            // Only the site's exceptions waive; a waiver they no longer hold is no evidence.
            CheckResult::Waived => Standing::NoAnswer,
        }
    }
}

impl Observation {
    /// The score's view of a Host's stored result.
    pub fn of(result: &RunbookResult) -> Self {
        Self {
            result: result.result,
            checked_at: result.last_checked,
        }
    }
}

impl Pair<'_> {
    /// Where the pair stands at `now` (see the module documentation for the order of the rules).
    pub fn standing(&self, now: DateTime<Utc>) -> Standing {
        if self.waived_at(now) {
            return Standing::Waived;
        }
        match self.latest {
            Some(observation) if self.fresh_until(observation).is_some_and(|end| now <= end) => {
                Standing::of_result(observation.result)
            }
            _ => Standing::NoAnswer,
        }
    }

    /// The first moment after `now` at which [`Pair::standing`] may change with no new result: the
    /// end of the waiver in force, or the moment the fresh result goes stale.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.waived_at(now) {
            return self.waived_until;
        }
        let end = self.fresh_until(self.latest?)?;
        // A result exactly at the end still counts; it is stale one tick later.
        (now <= end).then(|| end + TimeDelta::nanoseconds(1))
    }

    /// Whether an exception covers the pair at `now`.
    fn waived_at(&self, now: DateTime<Utc>) -> bool {
        self.waived_until.is_some_and(|until| now < until)
    }

    /// The last moment `observation` counts; `None` when it has no time. A lifetime too long for a
    /// timestamp (an absurd interval) ends at [`DateTime::MAX_UTC`]: such a result never goes stale.
    fn fresh_until(&self, observation: Observation) -> Option<DateTime<Utc>> {
        let checked_at = observation.checked_at?;
        let lifetime = self
            .interval
            .checked_mul(STALE_AFTER_INTERVALS)
            .and_then(|d| TimeDelta::from_std(d).ok());
        Some(
            lifetime
                .and_then(|d| checked_at.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }
}

impl Tally {
    /// Counts one more pair.
    pub fn add(&mut self, standing: Standing) {
        let count = match standing {
            Standing::Compliant => &mut self.compliant,
            Standing::Drifted => &mut self.drifted,
            Standing::Failing => &mut self.failing,
            Standing::NoAnswer => &mut self.no_answer,
            Standing::Waived => &mut self.waived,
            Standing::NotApplicable => &mut self.not_applicable,
        };
        *count = count.saturating_add(1);
    }

    /// The denominator: every pair except waived and not-applicable ones.
    pub fn total(&self) -> u64 {
        [self.compliant, self.drifted, self.failing, self.no_answer]
            .into_iter()
            .map(u64::from)
            .sum()
    }

    /// `compliant / total`, rounded down to four decimals; `None` when the total is 0.
    pub fn ratio(&self) -> Option<f64> {
        let total = self.total();
        // Integer arithmetic first, so that the rounding is exact and the same on every machine.
        let scaled = (total > 0).then(|| u64::from(self.compliant) * SCORE_SCALE / total)?;
        Some(scaled as f64 / SCORE_SCALE as f64)
    }
}

impl SiteCompliance {
    /// The scores per framework, as `SiteStatus.compliance` holds them: frameworks without a
    /// denominator are left out.
    pub fn scores(&self) -> BTreeMap<Framework, f64> {
        self.frameworks
            .iter()
            .filter_map(|(framework, tally)| Some((*framework, tally.ratio()?)))
            .collect()
    }

    /// The site's `Compliant` condition: `True` when every counted pair is compliant, `False` when
    /// one fails, drifted or has no answer (the reason names the worst, in that order), `Unknown`
    /// when no pair is left to score.
    pub fn condition(&self, generation: Option<i64>, now: DateTime<Utc>) -> Condition {
        let c = &self.counts;
        let (status, reason) = if c.failing > 0 {
            (ConditionStatus::False, REASON_CHECKS_FAILING)
        } else if c.drifted > 0 {
            (ConditionStatus::False, REASON_DRIFT_DETECTED)
        } else if c.no_answer > 0 {
            (ConditionStatus::False, REASON_NO_ANSWER)
        } else if c.compliant > 0 {
            (ConditionStatus::True, REASON_ALL_COMPLIANT)
        } else {
            (ConditionStatus::Unknown, REASON_NO_RESULTS)
        };
        let message = format!(
            "{} compliant, {} drifted, {} failing, {} without a fresh result, {} waived, {} not \
             applicable, on {} hosts",
            c.compliant, c.drifted, c.failing, c.no_answer, c.waived, c.not_applicable, c.hosts
        );
        let condition =
            Condition::new(CONDITION_COMPLIANT, status, reason, now).with_message(message);
        match generation {
            Some(generation) => condition.with_observed_generation(generation),
            None => condition,
        }
    }

    /// Writes the scores, counts, `Compliant` condition and `observedGeneration` into `status`,
    /// leaving other conditions alone; returns whether anything changed, so that the caller can skip
    /// a write that would change nothing.
    pub fn write_to(
        &self,
        status: &mut SiteStatus,
        generation: Option<i64>,
        now: DateTime<Utc>,
    ) -> bool {
        let before = status.clone();
        status.observed_generation = generation;
        status.compliance = self.scores();
        status.counts = Some(self.counts.clone());
        set_condition(&mut status.conditions, self.condition(generation, now), now);
        *status != before
    }
}

/// The compliance of `site` at `now`, from its hosts (hosts of other sites are ignored) and the
/// runbook library.
pub fn site_compliance(
    site: &Site,
    hosts: &[Host],
    runbooks: &[Runbook],
    now: DateTime<Utc>,
) -> SiteCompliance {
    let hosts: Vec<&Host> = hosts
        .iter()
        .filter(|host| host.metadata.namespace.as_deref() == Some(site.metadata.name.as_str()))
        .collect();
    let frameworks = if site.spec.frameworks.is_empty() {
        &FRAMEWORKS[..]
    } else {
        &site.spec.frameworks[..]
    };
    let host_count = u32::try_from(hosts.len()).unwrap_or(u32::MAX);
    score(frameworks, host_count, &pairs(site, &hosts, runbooks), now)
}

/// Scores `pairs` at `now` for `frameworks` (the site's), on a site of `hosts` hosts.
pub fn score(
    frameworks: &[Framework],
    hosts: u32,
    pairs: &[Pair<'_>],
    now: DateTime<Utc>,
) -> SiteCompliance {
    let mut per_framework: BTreeMap<Framework, Tally> = frameworks
        .iter()
        .map(|framework| (*framework, Tally::default()))
        .collect();
    let mut all = Tally::default();
    let mut next_change: Option<DateTime<Utc>> = None;
    for pair in pairs {
        let standing = pair.standing(now);
        all.add(standing);
        for framework in &pair.frameworks {
            if let Some(tally) = per_framework.get_mut(framework) {
                tally.add(standing);
            }
        }
        if let Some(at) = pair.next_change(now) {
            next_change = Some(next_change.map_or(at, |earliest| earliest.min(at)));
        }
    }
    SiteCompliance {
        frameworks: per_framework,
        counts: SiteCounts {
            hosts,
            compliant: all.compliant,
            drifted: all.drifted,
            failing: all.failing,
            no_answer: all.no_answer,
            waived: all.waived,
            not_applicable: all.not_applicable,
        },
        next_change,
    }
}

/// The (host, runbook) pairs `site`'s selection produces over `hosts` and `runbooks`, each with its
/// interval in force, waiver and latest result; ordered by host, then runbook, as given.
pub fn pairs<'a>(site: &'a Site, hosts: &[&'a Host], runbooks: &'a [Runbook]) -> Vec<Pair<'a>> {
    let selection = Selection::new(&site.spec);
    let mut pairs = Vec::new();
    for host in hosts {
        for runbook in runbooks {
            let Some(interval) = selection.interval(host, runbook) else {
                continue;
            };
            let latest = host
                .status
                .as_ref()
                .and_then(|status| status.results.get(runbook.metadata.name.as_str()))
                .map(Observation::of);
            pairs.push(Pair {
                host: host.metadata.name.as_str(),
                runbook: runbook.metadata.name.as_str(),
                frameworks: runbook.spec.controls.iter().map(|c| c.framework).collect(),
                interval,
                waived_until: selection.waived_until(host, runbook),
                latest,
            });
        }
    }
    pairs
}

#[cfg(test)]
mod tests;
