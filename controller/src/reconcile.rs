//! One reconcile of one item: asks [`plan`] what to do, runs it with an [`Executor`], tells
//! [`plan`] what it saw, until the plan is an end. Returns everything observed, from which the
//! Host's result ([`Reconciliation::result`]), the evidence ([`Reconciliation::evidence`]) and the
//! next requeue ([`Plan::requeue`]) follow, each a pure function.
//!
//! The loop runs at most check, remediate and verify: [`plan`] answers `Check` only without a
//! check verdict and `Heal` only without a verify verdict.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use osc_crds::kinds::host::RunbookResult;
use osc_crds::kinds::runbook::Step;
use osc_proto::evidence::Verdict;

use crate::Error;
use crate::evidence::Reconciled;
use crate::exec::{Executor, StepRequest, StepRun, judge};
use crate::plan::{Deferral, Desired, Observed, Plan, Refusal, plan};
use crate::queue::Requeue;

/// What one reconcile did and saw.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconciliation {
    /// How it ended (never `Check` or `Heal`).
    pub plan: Plan,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When its last step ended.
    pub ended: DateTime<Utc>,
    /// The check's verdict and run, if it ran.
    pub check: Option<(Verdict, StepRun)>,
    /// The remediation's run, if it ran.
    pub remediation: Option<StepRun>,
    /// The verify's verdict and run, after a remediation.
    pub verify: Option<(Verdict, StepRun)>,
}

/// Runs one reconcile of `desired.item` on its host through `executor`, starting from what the
/// appliance remembers (`observed`, without check or verify verdicts); `clock` gives `now` for
/// each decision. `Err` when a step could not run at all (host unreachable): requeue with backoff
/// and record an `error` result.
pub async fn reconcile(
    desired: Desired<'_>,
    mut observed: Observed,
    executor: &impl Executor,
    clock: impl Fn() -> DateTime<Utc>,
) -> Result<Reconciliation, Error> {
    let started = clock();
    let (mut check, mut remediation, mut verify) = (None, None, None);
    loop {
        match plan(desired, &observed, clock()) {
            Plan::Check => {
                let step = &desired.runbook.check;
                let run = executor.run(request(desired, "check", step)).await?;
                let verdict = judge(step, &run);
                observed.check = Some(verdict);
                check = Some((verdict, run));
            }
            Plan::Heal { .. } => {
                let Some(fix) = desired.runbook.remediate.as_ref() else {
                    unreachable!("plan heals only runbooks with a remediate step")
                };
                remediation = Some(executor.run(request(desired, "remediate", fix)).await?);
                let step = desired
                    .runbook
                    .verify
                    .as_ref()
                    .unwrap_or(&desired.runbook.check);
                let run = executor.run(request(desired, "verify", step)).await?;
                let verdict = judge(step, &run);
                observed.verify = Some(verdict);
                verify = Some((verdict, run));
            }
            end => {
                return Ok(Reconciliation {
                    plan: end,
                    started,
                    ended: clock(),
                    check,
                    remediation,
                    verify,
                });
            }
        }
    }
}

fn request<'a>(desired: Desired<'a>, name: &'static str, step: &'a Step) -> StepRequest<'a> {
    StepRequest {
        host: &desired.item.key.host,
        address: desired.item.address.as_deref(),
        name,
        step,
        params: &desired.item.params,
    }
}

impl Reconciliation {
    /// The Host's new result for the pair, or `None` when nothing is recorded (`Skip`):
    /// `lastChecked` moves when the check ran, `lastHealed` when it healed, `attempts` as
    /// [`Plan::attempts`] says, `runbookDigest` names `digest`, `message` says why for refusals,
    /// deferrals and escalations.
    pub fn result(&self, previous: Option<&RunbookResult>, digest: &str) -> Option<RunbookResult> {
        let result = self.plan.result()?;
        Some(RunbookResult {
            result,
            last_checked: match self.check {
                Some(_) => Some(self.ended),
                None => previous.and_then(|p| p.last_checked),
            },
            last_healed: match self.plan {
                Plan::Healed { .. } => Some(self.ended),
                _ => previous.and_then(|p| p.last_healed),
            },
            // Attempts of another runbook version belong to another drift episode (see `plan`).
            attempts: self.plan.attempts(
                previous
                    .filter(|p| p.runbook_digest.as_deref().is_none_or(|d| d == digest))
                    .map_or(0, |p| p.attempts),
            ),
            runbook_digest: Some(digest.to_owned()),
            message: message(&self.plan),
        })
    }

    /// What the evidence bundle is built from, or `None` when the reconcile writes none (it was
    /// refused or skipped, so it observed nothing).
    pub fn evidence<'a>(
        &'a self,
        desired: Desired<'a>,
        digest: &'a str,
        policy_version: String,
        ntp_offset_ms: Option<i64>,
    ) -> Option<Reconciled<'a>> {
        let outcome = self.plan.outcome()?;
        let (verdict, run) = self.check.as_ref()?;
        Some(Reconciled {
            host: &desired.item.key.host,
            runbook: &desired.item.key.runbook,
            runbook_digest: digest,
            controls: &desired.runbook.controls,
            policy_version,
            check_name: desired
                .runbook
                .description
                .clone()
                .unwrap_or_else(|| desired.item.key.runbook.clone()),
            ntp_offset_ms,
            started: self.started,
            ended: self.ended,
            check: (*verdict, run),
            actions: self
                .remediation
                .iter()
                .map(|run| ("remediate", run))
                .collect(),
            verify: self.verify.as_ref().map(|(v, run)| (*v, run)),
            outcome,
        })
    }
}

impl Plan {
    /// When the item comes back: at the window's opening for a deferral until then, with
    /// backoff after an error, a failed heal, a clock that cannot be trusted or a desired state
    /// not (or no longer) synced (each may clear soon: at start the first lists are seconds
    /// away), else after its interval.
    pub fn requeue(&self, now: DateTime<Utc>) -> Requeue {
        match self {
            Plan::Defer(Deferral::OutsideWindow { opens: Some(opens) }) => {
                Requeue::After((*opens - now).to_std().unwrap_or(StdDuration::ZERO))
            }
            Plan::CheckError
            | Plan::Failed { .. }
            | Plan::Defer(Deferral::ClockUnknown | Deferral::ClockSkew { .. })
            | Plan::Refuse(Refusal::StaleCache { .. }) => Requeue::Backoff,
            _ => Requeue::Interval,
        }
    }
}

/// The Host result's message: why a pair was refused, deferred or escalated.
fn message(plan: &Plan) -> Option<String> {
    Some(match plan {
        Plan::Refuse(Refusal::HostNotAllowed { address }) => {
            format!("address {address:?} is not in the appliance's allowedHosts")
        }
        Plan::Refuse(Refusal::Undecided(undecided)) => undecided
            .iter()
            .map(|u| format!("{}: {}", u.field, u.error))
            .collect::<Vec<_>>()
            .join("; "),
        Plan::Refuse(Refusal::StaleCache { synced_at }) => match synced_at {
            Some(at) => format!("desired state last synced at {at}, older than cacheMaxAge"),
            None => "desired state never synced from central".to_owned(),
        },
        Plan::Refuse(Refusal::Untrusted(why)) => why.to_string(),
        Plan::Defer(Deferral::ClockUnknown) => "clock offset from NTP unknown".to_owned(),
        Plan::Defer(Deferral::ClockSkew { offset_ms }) => {
            format!("clock is {offset_ms} ms off NTP, beyond ntpMaxSkew")
        }
        Plan::Defer(Deferral::OutsideWindow { opens }) => match opens {
            Some(at) => format!("disruptive: waits for the maintenance window at {at}"),
            None => "disruptive: the maintenance window never opens".to_owned(),
        },
        Plan::Escalate {
            reason, attempts, ..
        } => format!("escalated: {reason:?} after {attempts} attempts"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use osc_crds::kinds::RunbookSpec;
    use osc_crds::kinds::host::CheckResult;
    use osc_proto::dsse::Signer;
    use osc_proto::evidence::Outcome;
    use serde_json::json;

    use super::*;
    use crate::exec::ScriptedExecutor;
    use crate::items::tests::{host, runbook, site};
    use crate::items::{Item, items};
    use crate::plan::Local;
    use crate::trust::sign_runbook;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
    }

    fn key() -> Signer {
        Signer::from_seed(&[11; 32])
    }

    fn setup(mode: &str) -> (Item, RunbookSpec, Local) {
        let rb = runbook(
            "ssh-root",
            "linux",
            json!({}),
            json!({"remediate": {"interpreter": "sh", "script": "fix"},
                   "params": {"PORT": {"description": "port", "default": "22"}}}),
        );
        let mut spec = rb.spec.clone();
        sign_runbook(&mut spec, &key());
        let item = items(
            &site(json!({"runbooks": [{"names": ["ssh-root"]}], "healing": {"mode": mode}})),
            &[host("ehr", "linux", json!({}))],
            &[rb],
        )
        .remove(0);
        let local = Local {
            allow_disruptive_outside_window: false,
            ntp_max_skew: StdDuration::from_secs(10),
            cache_max_age: StdDuration::from_secs(3600),
            allowed_hosts: vec![],
            trusted_keys: vec![key().public_key()],
        };
        (item, spec, local)
    }

    fn desired((item, runbook, local): &(Item, RunbookSpec, Local)) -> Desired<'_> {
        Desired {
            item,
            runbook,
            local,
        }
    }

    fn remembered() -> Observed {
        Observed {
            ntp_offset_ms: Some(0),
            synced_at: Some(now()),
            ..Observed::default()
        }
    }

    #[tokio::test]
    async fn drift_is_remediated_verified_and_recorded() {
        let parts = setup("enforce");
        let desired = desired(&parts);
        let executor = ScriptedExecutor::new();
        executor.answer(
            "ehr",
            "check",
            Ok(StepRun::exited(1, b"PermitRootLogin yes")),
        );
        executor.answer("ehr", "remediate", Ok(StepRun::exited(0, b"")));
        executor.answer(
            "ehr",
            "verify",
            Ok(StepRun::exited(0, b"PermitRootLogin no")),
        );
        let done = reconcile(desired, remembered(), &executor, now)
            .await
            .unwrap();
        assert_eq!(done.plan, Plan::Healed { attempts: 1 });
        let calls: Vec<String> = executor.calls().into_iter().map(|(_, s)| s).collect();
        assert_eq!(calls, ["check", "remediate", "verify"]);

        let digest = parts.1.digest.clone().unwrap();
        let result = done.result(None, &digest).unwrap();
        assert_eq!(result.result, CheckResult::Healed);
        assert_eq!(
            (result.last_checked, result.last_healed),
            (Some(now()), Some(now()))
        );
        assert_eq!(result.attempts, 1);
        assert_eq!(result.runbook_digest.as_deref(), Some(digest.as_str()));

        let evidence = done
            .evidence(desired, &digest, "site/1".into(), Some(0))
            .unwrap();
        assert_eq!(evidence.outcome, Outcome::Healed);
        assert_eq!(evidence.check.0, Verdict::Drifted);
        assert_eq!(evidence.actions.len(), 1);
        assert_eq!(evidence.verify.unwrap().0, Verdict::Compliant);
        assert_eq!(done.plan.requeue(now()), Requeue::Interval);
    }

    #[tokio::test]
    async fn audit_mode_checks_and_never_remediates() {
        let parts = setup("audit");
        let desired = desired(&parts);
        let executor = ScriptedExecutor::new();
        executor.answer("ehr", "check", Ok(StepRun::exited(1, b"")));
        let done = reconcile(desired, remembered(), &executor, now)
            .await
            .unwrap();
        assert_eq!(executor.calls().len(), 1);
        let result = done.result(None, "d").unwrap();
        assert_eq!(result.result, CheckResult::Drifted);
        let evidence = done.evidence(desired, "d", "site/1".into(), None).unwrap();
        assert_eq!(evidence.outcome, Outcome::DryRun);
        assert!(evidence.actions.is_empty());
    }

    #[tokio::test]
    async fn a_refused_item_runs_nothing_and_writes_no_evidence() {
        let mut parts = setup("enforce");
        parts.1.check.script.push_str(" # changed after signing");
        let desired = desired(&parts);
        let executor = ScriptedExecutor::new();
        let done = reconcile(desired, remembered(), &executor, now)
            .await
            .unwrap();
        assert!(executor.calls().is_empty());
        assert!(matches!(done.plan, Plan::Refuse(Refusal::Untrusted(_))));
        let result = done.result(None, "d").unwrap();
        assert_eq!(result.result, CheckResult::Error);
        assert!(
            result
                .message
                .unwrap()
                .contains("changed after it was signed")
        );
        assert!(done.evidence(desired, "d", "site/1".into(), None).is_none());
    }

    #[tokio::test]
    async fn an_unreachable_host_is_an_error_to_back_off_from() {
        let parts = setup("enforce");
        let desired = desired(&parts);
        let executor = ScriptedExecutor::new();
        executor.answer("ehr", "check", Err("connection refused".into()));
        let error = reconcile(desired, remembered(), &executor, now)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("connection refused"), "{error}");
    }

    #[test]
    fn requeue_table() {
        let opens = now() + chrono::TimeDelta::hours(14);
        let cases = [
            (Plan::Pass, Requeue::Interval),
            (
                Plan::Defer(Deferral::OutsideWindow { opens: Some(opens) }),
                Requeue::After(StdDuration::from_secs(14 * 3600)),
            ),
            (
                Plan::Defer(Deferral::OutsideWindow { opens: None }),
                Requeue::Interval,
            ),
            (Plan::Defer(Deferral::ClockUnknown), Requeue::Backoff),
            (Plan::CheckError, Requeue::Backoff),
            (Plan::Failed { attempts: 1 }, Requeue::Backoff),
            (
                Plan::Refuse(Refusal::StaleCache { synced_at: None }),
                Requeue::Backoff,
            ),
            (
                Plan::Refuse(Refusal::StaleCache {
                    synced_at: Some(now() - chrono::TimeDelta::days(2)),
                }),
                Requeue::Backoff,
            ),
            (
                Plan::Refuse(Refusal::HostNotAllowed {
                    address: Some("10.0.0.9".into()),
                }),
                Requeue::Interval,
            ),
        ];
        for (plan, requeue) in cases {
            assert_eq!(plan.requeue(now()), requeue, "{plan:?}");
        }
    }
}
