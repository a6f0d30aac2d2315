//! Evidence: one bundle per reconcile of an item, built from what that reconcile observed
//! ([`bundle`], pure), then signed and chained into the outbox ([`EvidenceChain::record`]).
//!
//! The chain head lives in the outbox and moves in the transaction that stores the envelope,
//! so a crash between signing and storing leaves the head where it was: the next bundle reuses
//! the seq of the one that was never stored, and nothing forks.

use chrono::{DateTime, Utc};
use osc_crds::kinds::runbook::Control;
use osc_crds::kinds::site::DeploymentMode as SiteDeploymentMode;
use osc_proto::chain::{ChainBuilder, ChainHead};
use osc_proto::dsse::{Envelope, Signer};
use osc_proto::evidence::{
    ActionStep, BUNDLE_VERSION, Bundle, CappedOutput, Control as BundleControl, DeploymentMode,
    Observation, Outcome, Sha256Digest, Verdict,
};

use crate::Error;
use crate::exec::StepRun;
use crate::outbox::OutboxStore;

/// The site-wide facts every bundle of this appliance carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The Site's name.
    pub site: String,
    /// Its deployment mode.
    pub deployment_mode: SiteDeploymentMode,
    /// Its reseller, with `reseller` mode.
    pub reseller_id: Option<String>,
    /// The NixOS revision the appliance runs.
    pub nixos_revision: String,
}

/// What one reconcile of an item observed, from the first step to the last.
#[derive(Clone, Debug)]
pub struct Reconciled<'a> {
    /// The Host.
    pub host: &'a str,
    /// The Runbook.
    pub runbook: &'a str,
    /// Its verified content digest.
    pub runbook_digest: &'a str,
    /// The controls it evidences.
    pub controls: &'a [Control],
    /// The desired state in force: the Site's `generation` as `site/<generation>`.
    pub policy_version: String,
    /// What the check is, in words (the runbook's description, else its name).
    pub check_name: String,
    /// The clock's offset from NTP, when known.
    pub ntp_offset_ms: Option<i64>,
    /// When the check started.
    pub started: DateTime<Utc>,
    /// When the last step ended.
    pub ended: DateTime<Utc>,
    /// The check's verdict and run.
    pub check: (Verdict, &'a StepRun),
    /// Remediation steps that ran, by name.
    pub actions: Vec<(&'static str, &'a StepRun)>,
    /// The verify's verdict and run, after a remediation.
    pub verify: Option<(Verdict, &'a StepRun)>,
    /// How it ended.
    pub outcome: Outcome,
}

/// The bundle of `reconciled`, with `bundle_id`; the chain fields are left for
/// [`EvidenceChain::record`] to set.
pub fn bundle(context: &Context, reconciled: &Reconciled<'_>, bundle_id: String) -> Bundle {
    let observation = |(verdict, run): (Verdict, &StepRun)| Observation {
        verdict,
        exit_code: run.exit_code,
        output_sha256: run.output_sha256,
    };
    let (_, check_run) = reconciled.check;
    let mut check_output = CappedOutput::capture(&check_run.output);
    // The executor may have kept less than the whole output already.
    check_output.truncated |= check_run.output_bytes > check_run.output.len() as u64;
    check_output.original_bytes = check_run.output_bytes;
    Bundle {
        version: BUNDLE_VERSION,
        bundle_id,
        site_id: context.site.clone(),
        host_id: reconciled.host.to_owned(),
        appliance: String::new(),
        seq: 0,
        prev_hash: Sha256Digest::ZERO,
        deployment_mode: match context.deployment_mode {
            SiteDeploymentMode::Reseller => DeploymentMode::Reseller,
            SiteDeploymentMode::Direct => DeploymentMode::Direct,
        },
        reseller_id: context.reseller_id.clone(),
        timestamp_start: reconciled.started,
        timestamp_end: reconciled.ended,
        policy_version: reconciled.policy_version.clone(),
        ruleset_hash: reconciled.runbook_digest.to_owned(),
        runbook: reconciled.runbook.to_owned(),
        runbook_digest: reconciled.runbook_digest.to_owned(),
        controls: reconciled
            .controls
            .iter()
            .map(|c| BundleControl {
                framework: c.framework.as_str().to_owned(),
                id: c.id.clone(),
            })
            .collect(),
        nixos_revision: context.nixos_revision.clone(),
        ntp_offset_ms: reconciled.ntp_offset_ms,
        check: reconciled.check_name.clone(),
        pre_state: observation(reconciled.check),
        action_taken: reconciled
            .actions
            .iter()
            .map(|(step, run)| ActionStep {
                step: (*step).to_owned(),
                exit_code: run.exit_code,
                output_sha256: run.output_sha256,
                duration_ms: u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX),
            })
            .collect(),
        post_state: reconciled.verify.map(observation),
        rollback_available: false,
        outcome: reconciled.outcome,
        check_output,
    }
}

/// A fresh `bundle_id`: a random UUID, so that reports and tickets can name one bundle.
pub fn new_bundle_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The appliance's evidence chain, appending into an outbox.
#[derive(Debug)]
pub struct EvidenceChain {
    /// The appliance, written into every bundle.
    appliance: String,
    /// Its key.
    signer: Signer,
    /// The head as stored in the outbox.
    head: Option<ChainHead>,
}

impl EvidenceChain {
    /// Resumes the chain from the head stored in `store`.
    pub async fn open(
        store: &impl OutboxStore,
        appliance: impl Into<String>,
        signer: Signer,
    ) -> Result<Self, Error> {
        Ok(Self {
            appliance: appliance.into(),
            signer,
            head: store.chain_head().await?,
        })
    }

    /// The last bundle stored.
    pub fn head(&self) -> Option<ChainHead> {
        self.head
    }

    /// Numbers, links and signs `bundle`, stores the envelope with the new head in one
    /// transaction, and returns it. On any error the head stays where it was, so the next
    /// bundle takes the same seq; on [`Error::ChainMoved`] re-[`open`](Self::open) the chain.
    pub async fn record(
        &mut self,
        store: &impl OutboxStore,
        bundle: Bundle,
        now: DateTime<Utc>,
    ) -> Result<Envelope, Error> {
        let mut builder = ChainBuilder::new(self.appliance.clone(), self.signer.clone(), self.head);
        let envelope = builder.append(bundle)?;
        let head = builder.head().expect("append sets the head");
        let body = serde_json::to_vec(&envelope).expect("an envelope serializes");
        store.append_evidence(self.head, head, &body, now).await?;
        self.head = Some(head);
        Ok(envelope)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration as StdDuration;

    use chrono::TimeZone;
    use osc_crds::kinds::Framework;
    use osc_proto::chain::verify_chain;
    use osc_proto::evidence::CHECK_OUTPUT_CAP;

    use super::*;
    use crate::outbox::{EntryKind, MemoryOutbox, SqliteOutbox};

    pub(crate) fn context() -> Context {
        Context {
            site: "smile".into(),
            deployment_mode: SiteDeploymentMode::Reseller,
            reseller_id: Some("acme-resale".into()),
            nixos_revision: "24.11.20250101.abcdef0".into(),
        }
    }

    fn controls() -> Vec<Control> {
        vec![Control {
            framework: Framework::Hipaa,
            id: "164.312(d)".into(),
        }]
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, minute, 0).unwrap()
    }

    fn healed<'a>(
        check: &'a StepRun,
        fix: &'a StepRun,
        verify: &'a StepRun,
        controls: &'a [Control],
    ) -> Reconciled<'a> {
        Reconciled {
            host: "ehr",
            runbook: "ssh-root",
            runbook_digest: "sha256:0011",
            controls,
            policy_version: "site/7".into(),
            check_name: "SSH root login is off".into(),
            ntp_offset_ms: Some(-4),
            started: at(0),
            ended: at(1),
            check: (Verdict::Drifted, check),
            actions: vec![("remediate", fix)],
            verify: Some((Verdict::Compliant, verify)),
            outcome: Outcome::Healed,
        }
    }

    /// A reconcile whose check passed.
    pub(crate) fn passed<'a>(check: &'a StepRun, controls: &'a [Control]) -> Reconciled<'a> {
        Reconciled {
            check: (Verdict::Compliant, check),
            actions: vec![],
            verify: None,
            outcome: Outcome::Pass,
            ..healed(check, check, check, controls)
        }
    }

    #[test]
    fn a_bundle_carries_every_field_from_what_the_reconcile_saw() {
        let check = StepRun::exited(1, b"PermitRootLogin yes\n");
        let fix = StepRun {
            duration: StdDuration::from_millis(1234),
            ..StepRun::exited(0, b"fixed")
        };
        let verify = StepRun::exited(0, b"PermitRootLogin no\n");
        let controls = controls();
        let b = bundle(
            &context(),
            &healed(&check, &fix, &verify, &controls),
            "b-1".into(),
        );
        assert_eq!(b.version, BUNDLE_VERSION);
        assert_eq!(b.bundle_id, "b-1");
        assert_eq!((b.site_id.as_str(), b.host_id.as_str()), ("smile", "ehr"));
        assert_eq!(b.deployment_mode, DeploymentMode::Reseller);
        assert_eq!(b.reseller_id.as_deref(), Some("acme-resale"));
        assert_eq!((b.timestamp_start, b.timestamp_end), (at(0), at(1)));
        assert_eq!(b.policy_version, "site/7");
        assert_eq!(b.ruleset_hash, "sha256:0011");
        assert_eq!(b.runbook_digest, "sha256:0011");
        assert_eq!(b.controls[0].framework, "HIPAA");
        assert_eq!(b.controls[0].id, "164.312(d)");
        assert_eq!(b.nixos_revision, "24.11.20250101.abcdef0");
        assert_eq!(b.ntp_offset_ms, Some(-4));
        assert_eq!(b.check, "SSH root login is off");
        assert_eq!(b.pre_state.verdict, Verdict::Drifted);
        assert_eq!(b.pre_state.exit_code, Some(1));
        assert_eq!(
            b.pre_state.output_sha256,
            Sha256Digest::of(b"PermitRootLogin yes\n")
        );
        assert_eq!(b.action_taken.len(), 1);
        assert_eq!(b.action_taken[0].step, "remediate");
        assert_eq!(b.action_taken[0].duration_ms, 1234);
        assert_eq!(b.post_state.as_ref().unwrap().verdict, Verdict::Compliant);
        assert!(!b.rollback_available);
        assert_eq!(b.outcome, Outcome::Healed);
        assert_eq!(b.check_output.text, "PermitRootLogin yes\n");
        assert!(!b.check_output.truncated);
    }

    #[test]
    fn check_output_is_capped_and_counts_what_the_executor_dropped() {
        let mut check = StepRun::exited(1, &vec![b'x'; CHECK_OUTPUT_CAP + 10]);
        check.output_bytes = 1_000_000;
        let controls = controls();
        let b = bundle(
            &context(),
            &Reconciled {
                actions: vec![],
                verify: None,
                outcome: Outcome::DryRun,
                ..healed(&check, &check, &check, &controls)
            },
            "b-2".into(),
        );
        assert_eq!(b.check_output.text.len(), CHECK_OUTPUT_CAP);
        assert!(b.check_output.truncated);
        assert_eq!(b.check_output.original_bytes, 1_000_000);
        assert_eq!(b.post_state, None);
    }

    #[tokio::test]
    async fn bundles_chain_across_a_restart_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.sqlite3");
        let signer = Signer::from_seed(&[5; 32]);
        let check = StepRun::exited(0, b"ok");
        let controls = controls();
        let pass = passed(&check, &controls);
        for round in 0..2 {
            let store = SqliteOutbox::open(&path).await.unwrap();
            let mut chain = EvidenceChain::open(&store, "box1", signer.clone())
                .await
                .unwrap();
            for i in 0..3 {
                let b = bundle(&context(), &pass, format!("b-{round}-{i}"));
                chain.record(&store, b, at(2)).await.unwrap();
            }
            // A crash: dropped without closing.
            drop(store);
        }
        let store = SqliteOutbox::open(&path).await.unwrap();
        let mut envelopes = Vec::new();
        while let Some(entry) = store.next(EntryKind::Evidence).await.unwrap() {
            envelopes.push(serde_json::from_slice(&entry.body).unwrap());
            store.delivered(entry.id, at(3)).await.unwrap();
        }
        let verified = verify_chain(&envelopes, "box1", &signer.public_key(), None).unwrap();
        assert_eq!(verified.bundles.len(), 6);
        assert_eq!(verified.head, store.chain_head().await.unwrap());
        store.close().await;
    }

    #[tokio::test]
    async fn a_refused_store_leaves_the_head_for_the_next_bundle() {
        let store = MemoryOutbox::new();
        let signer = Signer::from_seed(&[6; 32]);
        let mut chain = EvidenceChain::open(&store, "box1", signer.clone())
            .await
            .unwrap();
        let mut other = EvidenceChain::open(&store, "box1", signer).await.unwrap();
        let check = StepRun::exited(0, b"ok");
        let controls = controls();
        let pass = passed(&check, &controls);
        chain
            .record(&store, bundle(&context(), &pass, "a".into()), at(1))
            .await
            .unwrap();
        // A second writer on a stale head is refused and its head does not move.
        let error = other
            .record(&store, bundle(&context(), &pass, "b".into()), at(1))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::ChainMoved {
                    expected: None,
                    found: Some(1)
                }
            ),
            "{error}"
        );
        assert_eq!(other.head(), None);
        assert_eq!(store.entries().len(), 1);
    }
}
