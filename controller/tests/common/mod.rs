//! Helpers shared by the controller's integration tests.

use chrono::Utc;
use osc_controller::evidence::{Context, EvidenceChain, Reconciled, bundle, new_bundle_id};
use osc_controller::exec::StepRun;
use osc_controller::outbox::SqliteOutbox;
use osc_crds::kinds::site::DeploymentMode;
use osc_proto::evidence::{Outcome, Verdict};

/// Appends `n` bundles of a passing check of `ssh-root` on host `ehr` at site `smile`, stamped
/// now (central refuses bundles far from its clock); returns the last seq.
pub async fn record(store: &SqliteOutbox, chain: &mut EvidenceChain, n: usize) -> u64 {
    let run = StepRun::exited(0, b"PermitRootLogin no\n");
    let context = Context {
        site: "smile".into(),
        deployment_mode: DeploymentMode::Direct,
        reseller_id: None,
        nixos_revision: "24.11".into(),
    };
    for _ in 0..n {
        let now = Utc::now();
        let reconciled = Reconciled {
            host: "ehr",
            runbook: "ssh-root",
            runbook_digest: "sha256:5d41402abc4b2a76b9719d911017c592",
            controls: &[],
            policy_version: "site/1".into(),
            check_name: "SSH root login is off".into(),
            ntp_offset_ms: Some(2),
            started: now,
            ended: now,
            check: (Verdict::Compliant, &run),
            actions: vec![],
            verify: None,
            outcome: Outcome::Pass,
        };
        let b = bundle(&context, &reconciled, new_bundle_id());
        chain.record(store, b, now).await.unwrap();
    }
    chain.head().map_or(0, |h| h.seq)
}
