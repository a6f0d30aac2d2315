//! The compliance roll-up against a real store, on SQLite and PostgreSQL: Sites, Hosts with
//! results and Runbooks are written through the store as the API would, the reconciler runs as a
//! task with a manual clock, and each test waits (with a generous deadline that only guards
//! against a hang) for the Site's status to show what `osc_crds::compliance` defines.
//!
//! PostgreSQL tests need `OSC_TEST_DATABASE_URL` (see `store/fixture.rs`); without it they fail.

// The store suite's throw-away databases; this suite uses only some of its helpers.
#[allow(dead_code)]
#[path = "store/fixture.rs"]
mod fixture;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use osc_central::reconcile::{ComplianceOptions, ManualClock, run_compliance};
use osc_central::store::{HistoryRetention, ObjectKey, Store, StoreOptions};
use osc_crds::condition::{ConditionStatus, find_condition};
use osc_crds::kinds::site::{CONDITION_COMPLIANT, SiteCounts};
use osc_crds::kinds::{Framework, SiteStatus};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use fixture::{Kind, TestDb, rv};

/// Runs each test (an `async fn(Kind)` below) once per backend, as `sqlite::NAME` and
/// `postgres::NAME`.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::fixture::Kind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::fixture::Kind::Postgres).await;
                }
            )*
        }
    };
}

on_every_backend!(
    scores_every_site_at_start,
    follows_results_specs_runbooks_and_new_sites,
    time_alone_makes_results_stale_and_exceptions_lapse,
    a_quiet_system_makes_no_writes,
    an_unreadable_host_leaves_only_its_site_alone,
    converges_after_a_burst_that_outruns_the_watch_history,
    shutdown_ends_the_task,
);

// ---------------------------------------------------------------------------------------------
// The tests

async fn scores_every_site_at_start(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    put_alpha(&store).await;
    put(
        &store,
        site("beta", json!({"runbooks": [{"names": ["auditd"]}]})),
    )
    .await;

    let roll = Rollup::start(&store);

    let alpha = wait_for(&store, "alpha", "alpha's first score", |s| {
        !s.compliance.is_empty()
    })
    .await;
    // auditd (HIPAA, CIS): pass and healed; ssh-config (CIS): drifted and pass.
    assert_eq!(
        alpha.compliance,
        scores(&[(Framework::Hipaa, 1.0), (Framework::Cis, 0.75)])
    );
    assert_eq!(
        alpha.counts,
        Some(SiteCounts {
            hosts: 2,
            compliant: 3,
            drifted: 1,
            ..SiteCounts::default()
        })
    );
    assert_eq!(alpha.observed_generation, Some(1));
    assert_compliant(&alpha, ConditionStatus::False, "DriftDetected");

    let beta = wait_for(&store, "beta", "beta's status", |s| s.counts.is_some()).await;
    assert!(
        beta.compliance.is_empty(),
        "no host, no score: not 0, not 1"
    );
    assert_compliant(&beta, ConditionStatus::Unknown, "NoResults");

    roll.stop().await;
    db.remove().await;
}

async fn follows_results_specs_runbooks_and_new_sites(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    put_alpha(&store).await;
    let roll = Rollup::start(&store);
    wait_for(&store, "alpha", "the first score", |s| {
        score(s, Framework::Cis) == Some(0.75)
    })
    .await;

    // A host's result.
    set_result(
        &store,
        "alpha",
        "web-1",
        "ssh-config",
        "pass",
        roll.minutes_ago(1),
    )
    .await;
    let status = wait_for(&store, "alpha", "CIS at 100 %", |s| {
        score(s, Framework::Cis) == Some(1.0)
    })
    .await;
    assert_compliant(&status, ConditionStatus::True, "AllCompliant");

    // The site's spec: a new generation, and frameworks without HIPAA.
    edit(&store, &site_key("alpha"), |site| {
        site["spec"]["frameworks"] = json!(["CIS"]);
        site["metadata"]["generation"] = json!(2);
    })
    .await;
    let status = wait_for(&store, "alpha", "generation 2 observed", |s| {
        s.observed_generation == Some(2)
    })
    .await;
    assert_eq!(status.compliance, scores(&[(Framework::Cis, 1.0)]));

    // A runbook: ssh-config drifts on web-1, and stops citing CIS, so CIS counts auditd only.
    set_result(
        &store,
        "alpha",
        "web-1",
        "ssh-config",
        "drifted",
        roll.minutes_ago(1),
    )
    .await;
    wait_for(&store, "alpha", "the drift", |s| {
        s.counts.as_ref().is_some_and(|c| c.drifted == 1)
    })
    .await;
    edit(
        &store,
        &ObjectKey::cluster("runbooks", "ssh-config"),
        |runbook| {
            runbook["spec"]["controls"] = json!([{"framework": "SOC2", "id": "CC6.1"}]);
        },
    )
    .await;
    let status = wait_for(&store, "alpha", "CIS without ssh-config", |s| {
        score(s, Framework::Cis) == Some(1.0)
    })
    .await;
    assert_compliant(&status, ConditionStatus::False, "DriftDetected");

    // A site created while the roll-up runs.
    put(
        &store,
        site("gamma", json!({"runbooks": [{"names": ["auditd"]}]})),
    )
    .await;
    put(
        &store,
        host(
            "gamma",
            "pc-1",
            json!({"auditd": result("failed", roll.minutes_ago(1))}),
        ),
    )
    .await;
    let gamma = wait_for(&store, "gamma", "gamma's score", |s| {
        !s.compliance.is_empty()
    })
    .await;
    assert_eq!(gamma.compliance, scores(&[(Framework::Hipaa, 0.0)]));
    assert_compliant(&gamma, ConditionStatus::False, "ChecksFailing");

    // A deleted host leaves the counts.
    store
        .delete(&host_key("alpha", "db-1"), None)
        .await
        .unwrap();
    wait_for(&store, "alpha", "one host left", |s| {
        s.counts.as_ref().is_some_and(|c| c.hosts == 1)
    })
    .await;

    roll.stop().await;
    db.remove().await;
}

async fn time_alone_makes_results_stale_and_exceptions_lapse(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    let clock = ManualClock::new(start());
    // Checked every 15 minutes, so a result is stale when more than 30 minutes old. db-1's
    // auditd is waived for 45 minutes.
    put(&store, runbook("auditd", &["HIPAA"])).await;
    put(
        &store,
        site(
            "alpha",
            json!({
                "runbooks": [{"names": ["auditd"], "interval": "15m"}],
                "exceptions": [{
                    "runbook": "auditd", "hosts": {"names": ["db-1"]}, "justification": "vendor",
                    "approvedBy": "Dr. Ada", "expires": start() + TimeDelta::minutes(45),
                }],
            }),
        ),
    )
    .await;
    let fresh = start() - TimeDelta::minutes(1);
    put(
        &store,
        host("alpha", "web-1", json!({"auditd": result("pass", fresh)})),
    )
    .await;
    put(
        &store,
        host("alpha", "db-1", json!({"auditd": result("failed", fresh)})),
    )
    .await;
    let host_versions = host_versions(&store).await;
    let roll = Rollup::start_with(&store, clock.clone(), options());

    let status = wait_for(&store, "alpha", "the first score", |s| {
        !s.compliance.is_empty()
    })
    .await;
    assert_eq!(status.compliance, scores(&[(Framework::Hipaa, 1.0)]));
    assert_eq!(
        status.counts.as_ref().map(|c| (c.compliant, c.waived)),
        Some((1, 1))
    );

    // 31 minutes after the checks: web-1's pass is no answer, and the score falls with no write.
    clock.advance(TimeDelta::minutes(30));
    let status = wait_for(&store, "alpha", "the stale result", |s| {
        score(s, Framework::Hipaa) == Some(0.0)
    })
    .await;
    assert_eq!(
        status
            .counts
            .as_ref()
            .map(|c| (c.compliant, c.no_answer, c.waived)),
        Some((0, 1, 1))
    );
    assert_compliant(&status, ConditionStatus::False, "NoAnswer");

    // At 45 minutes the exception lapses and db-1's stale failure joins the total.
    clock.advance(TimeDelta::minutes(15));
    wait_for(&store, "alpha", "the lapsed exception", |s| {
        s.counts
            .as_ref()
            .is_some_and(|c| c.no_answer == 2 && c.waived == 0)
    })
    .await;
    assert_eq!(
        host_versions,
        self::host_versions(&store).await,
        "only time moved"
    );

    roll.stop().await;
    db.remove().await;
}

async fn a_quiet_system_makes_no_writes(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    put_alpha(&store).await;
    // A second site, later in name order, whose change serves as a barrier below.
    put(
        &store,
        site("zulu", json!({"runbooks": [{"names": ["auditd"]}]})),
    )
    .await;
    let checked = start() - TimeDelta::minutes(1);
    put(
        &store,
        host(
            "zulu",
            "web-1",
            json!({"auditd": result("drifted", checked)}),
        ),
    )
    .await;
    let clock = ManualClock::new(start());
    let roll = Rollup::start_with(&store, clock.clone(), options());
    wait_for(&store, "zulu", "zulu's score", |s| !s.compliance.is_empty()).await;
    wait_for(&store, "alpha", "alpha's score", |s| {
        !s.compliance.is_empty()
    })
    .await;
    let alpha_rv = rv(&store.get(&site_key("alpha")).await.unwrap());

    // Changes that make the roll-up recompute alpha without changing its answer: a newer
    // check with the same result, a runbook's label, and a resync period.
    set_result(&store, "alpha", "web-1", "auditd", "pass", start()).await;
    edit(
        &store,
        &ObjectKey::cluster("runbooks", "ssh-config"),
        |runbook| {
            runbook["metadata"]["labels"] = json!({"tier": "baseline", "touched": "yes"});
        },
    )
    .await;
    clock.advance(TimeDelta::minutes(6));

    // The barrier: a host event after alpha's in the same watch, for a site recomputed after
    // alpha in any batch that holds both. Once zulu shows it, alpha has been recomputed.
    set_result(&store, "zulu", "web-1", "auditd", "pass", start()).await;
    wait_for(&store, "zulu", "zulu's new score", |s| {
        score(s, Framework::Hipaa) == Some(1.0)
    })
    .await;
    let zulu_rv = rv(&store.get(&site_key("zulu")).await.unwrap());

    assert_eq!(
        rv(&store.get(&site_key("alpha")).await.unwrap()),
        alpha_rv,
        "recomputing alpha to the same answer writes nothing"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.current_rv().await.unwrap(),
        zulu_rv,
        "nothing was written after zulu's status: no write answers the roll-up's own write"
    );

    roll.stop().await;
    db.remove().await;
}

async fn an_unreadable_host_leaves_only_its_site_alone(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    put_alpha(&store).await;
    put(
        &store,
        site("beta", json!({"runbooks": [{"names": ["auditd"]}]})),
    )
    .await;
    put(
        &store,
        json!({
            "apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
            "metadata": {"name": "broken", "namespace": "alpha"},
            "spec": {"platform": "amiga"},
        }),
    )
    .await;

    let roll = Rollup::start(&store);
    // beta comes after alpha in the first pass, so alpha has been tried by then.
    wait_for(&store, "beta", "beta's status", |s| s.counts.is_some()).await;
    assert_eq!(
        store.get(&site_key("alpha")).await.unwrap().get("status"),
        None,
        "no score is published from a site whose hosts cannot all be read"
    );

    // Fixing the host is an event that brings alpha back.
    store
        .delete(&host_key("alpha", "broken"), None)
        .await
        .unwrap();
    let alpha = wait_for(&store, "alpha", "alpha's score", |s| {
        !s.compliance.is_empty()
    })
    .await;
    assert_eq!(alpha.counts.map(|c| c.hosts), Some(2));

    roll.stop().await;
    db.remove().await;
}

/// Whether or not a given run hits `410 Gone`, the roll-up must end on the burst's last result.
///
/// Regression guard: the roll-up used to drop its watches, on every `Gone`, in the middle of their
/// catch-up reads; on PostgreSQL that left a pooled connection inside a READ ONLY transaction
/// (sqlx 0.9.0 does not roll back a cancelled `BEGIN`, transact-rs/sqlx#4393), and the next write
/// on it, here the test's own, failed with SQLSTATE 25006 in about one run in five.
async fn converges_after_a_burst_that_outruns_the_watch_history(kind: Kind) {
    let db = TestDb::new(kind).await;
    // One kept event and a one-slot fan-out: a watcher that is busy while others write falls
    // behind the history and gets 410 Gone, which the roll-up answers by listing again.
    let store = db
        .open_with(StoreOptions {
            history: HistoryRetention {
                max_events: std::num::NonZeroU64::new(1).unwrap(),
                max_age: None,
            },
            watch_buffer: 1,
            ..fixture::options()
        })
        .await;
    put_alpha(&store).await;
    let roll = Rollup::start(&store);
    wait_for(&store, "alpha", "the first score", |s| {
        !s.compliance.is_empty()
    })
    .await;

    for i in 0..40 {
        let outcome = if i % 2 == 0 { "drifted" } else { "pass" };
        set_result(
            &store,
            "alpha",
            "db-1",
            "auditd",
            outcome,
            roll.minutes_ago(1),
        )
        .await;
    }
    set_result(
        &store,
        "alpha",
        "db-1",
        "auditd",
        "escalated",
        roll.minutes_ago(1),
    )
    .await;
    let status = wait_for(&store, "alpha", "the last result of the burst", |s| {
        s.counts.as_ref().is_some_and(|c| c.failing == 1)
    })
    .await;
    assert_eq!(score(&status, Framework::Hipaa), Some(0.5));

    roll.stop().await;
    db.remove().await;
}

async fn shutdown_ends_the_task(kind: Kind) {
    let db = TestDb::new(kind).await;
    let store = db.open().await;
    put_alpha(&store).await;
    let roll = Rollup::start(&store);
    wait_for(&store, "alpha", "the first score", |s| {
        !s.compliance.is_empty()
    })
    .await;

    // `stop` fails the test unless the task ends within its deadline.
    roll.stop().await;
    db.remove().await;
}

#[tokio::test]
async fn postgres_replicas_share_the_work_without_ping_pong() {
    let db = TestDb::new(Kind::Postgres).await;
    let (one, two) = (db.open().await, db.open().await);
    put_alpha(&one).await;
    put(
        &one,
        site("zulu", json!({"runbooks": [{"names": ["auditd"]}]})),
    )
    .await;
    let checked = start() - TimeDelta::minutes(1);
    put(
        &one,
        host(
            "zulu",
            "web-1",
            json!({"auditd": result("drifted", checked)}),
        ),
    )
    .await;
    let clock = ManualClock::new(start());
    let first = Rollup::start_with(&one, clock.clone(), options());
    let second = Rollup::start_with(&two, clock.clone(), options());

    set_result(&two, "alpha", "web-1", "ssh-config", "pass", start()).await;
    wait_for(&one, "alpha", "CIS at 100 %", |s| {
        score(s, Framework::Cis) == Some(1.0)
    })
    .await;
    let alpha_rv = rv(&one.get(&site_key("alpha")).await.unwrap());

    // As in `a_quiet_system_makes_no_writes`: a later event for a later site is the barrier.
    set_result(&one, "alpha", "db-1", "auditd", "healed", start()).await;
    set_result(&two, "zulu", "web-1", "auditd", "pass", start()).await;
    wait_for(&two, "zulu", "zulu's new score", |s| {
        score(s, Framework::Hipaa) == Some(1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rv(&one.get(&site_key("alpha")).await.unwrap()),
        alpha_rv,
        "two replicas computing the same answer do not overwrite each other"
    );
    let zulu_rv = rv(&one.get(&site_key("zulu")).await.unwrap());
    assert_eq!(
        one.current_rv().await.unwrap(),
        zulu_rv,
        "zulu was written once"
    );

    first.stop().await;
    second.stop().await;
    db.remove().await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A running roll-up and the means to stop it.
struct Rollup {
    /// Its clock.
    clock: ManualClock,
    /// Ends the task when sent (or dropped).
    stop: oneshot::Sender<()>,
    /// The task.
    task: JoinHandle<()>,
}

impl Rollup {
    /// Starts a roll-up on `store` with its own manual clock at [`start`].
    fn start(store: &Store) -> Self {
        Self::start_with(store, ManualClock::new(start()), options())
    }

    fn start_with(store: &Store, clock: ManualClock, options: ComplianceOptions) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run_compliance(
            store.clone(),
            clock.clone(),
            options,
            async {
                let _ = stopped.await;
            },
        ));
        Self { clock, stop, task }
    }

    /// The roll-up's time `minutes` ago.
    fn minutes_ago(&self, minutes: i64) -> DateTime<Utc> {
        osc_central::reconcile::Clock::now(&self.clock) - TimeDelta::minutes(minutes)
    }

    /// Signals shutdown and fails the test unless the task ends.
    async fn stop(self) {
        self.stop.send(()).expect("the roll-up is still running");
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the roll-up ends after shutdown")
            .expect("the roll-up did not panic");
    }
}

/// Options with short pauses, so that tests spend their time on the store, not on sleeping.
fn options() -> ComplianceOptions {
    ComplianceOptions {
        coalesce: Duration::from_millis(20),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..ComplianceOptions::default()
    }
}

/// Where every manual clock starts.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

/// Site alpha tracking HIPAA and CIS, with two linux hosts and two baseline runbooks:
/// web-1: auditd pass, ssh-config drifted; db-1: auditd healed, ssh-config pass.
async fn put_alpha(store: &Store) {
    put(store, runbook("auditd", &["HIPAA", "CIS"])).await;
    put(store, runbook("ssh-config", &["CIS"])).await;
    put(
        store,
        site(
            "alpha",
            json!({"frameworks": ["HIPAA", "CIS"], "runbooks": [{"selector": "tier=baseline"}]}),
        ),
    )
    .await;
    let checked = start() - TimeDelta::minutes(1);
    put(
        store,
        host(
            "alpha",
            "web-1",
            json!({"auditd": result("pass", checked), "ssh-config": result("drifted", checked)}),
        ),
    )
    .await;
    put(
        store,
        host(
            "alpha",
            "db-1",
            json!({"auditd": result("healed", checked), "ssh-config": result("pass", checked)}),
        ),
    )
    .await;
}

fn site(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["displayName"] = json!(format!("Practice {name}"));
    spec["partner"] = json!("msp-one");
    json!({
        "apiVersion": "osiriscare.net/v1alpha1", "kind": "Site",
        "metadata": {"name": name, "generation": 1},
        "spec": spec,
    })
}

fn host(site: &str, name: &str, results: Value) -> Value {
    json!({
        "apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
        "metadata": {"name": name, "namespace": site, "generation": 1},
        "spec": {"platform": "linux", "address": format!("{name}.{site}.example")},
        "status": {"results": results},
    })
}

/// A linux runbook labelled `tier=baseline`, citing one control of each framework named.
fn runbook(name: &str, frameworks: &[&str]) -> Value {
    let controls: Vec<Value> = frameworks
        .iter()
        .map(|framework| json!({"framework": framework, "id": "1.1"}))
        .collect();
    json!({
        "apiVersion": "osiriscare.net/v1alpha1", "kind": "Runbook",
        "metadata": {"name": name, "labels": {"tier": "baseline"}, "generation": 1},
        "spec": {
            "platform": "linux", "severity": "high", "controls": controls,
            "check": {"interpreter": "sh", "script": "true"},
        },
    })
}

fn result(result: &str, checked: DateTime<Utc>) -> Value {
    json!({"result": result, "lastChecked": checked})
}

fn site_key(name: &str) -> ObjectKey {
    ObjectKey::cluster("sites", name)
}

fn host_key(site: &str, name: &str) -> ObjectKey {
    ObjectKey::namespaced("hosts", site, name)
}

/// Creates `object` under the key its kind and metadata give.
async fn put(store: &Store, object: Value) {
    let resource = match object["kind"].as_str() {
        Some("Site") => "sites",
        Some("Host") => "hosts",
        Some("Runbook") => "runbooks",
        other => panic!("no resource for kind {other:?}"),
    };
    let key = ObjectKey::namespaced(
        resource,
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap(),
    );
    store.create(&key, object).await.unwrap();
}

/// Reads, changes and writes back an object, conditional on the version read.
async fn edit(store: &Store, key: &ObjectKey, change: impl Fn(&mut Value)) {
    // The roll-up may write a site's status in between: read again and reapply.
    loop {
        let mut object = store.get(key).await.unwrap();
        let version = rv(&object);
        change(&mut object);
        match store.update(key, object, Some(version)).await {
            Ok(_) => return,
            Err(osc_central::store::StoreError::Conflict { .. }) => continue,
            Err(error) => panic!("cannot update {key}: {error:?}"),
        }
    }
}

/// Records a host's latest result for a runbook, as an appliance's status write would.
async fn set_result(
    store: &Store,
    site: &str,
    host: &str,
    runbook: &str,
    outcome: &str,
    checked: DateTime<Utc>,
) {
    edit(store, &host_key(site, host), |object| {
        object["status"]["results"][runbook] = result(outcome, checked);
    })
    .await;
}

/// The resourceVersion of every host.
async fn host_versions(store: &Store) -> Vec<i64> {
    let listed = store
        .list("hosts", &Default::default(), |_| true)
        .await
        .unwrap();
    listed.items.iter().map(rv).collect()
}

/// Polls the site's status until `done` holds; the deadline only guards against a hang.
async fn wait_for(
    store: &Store,
    site: &str,
    what: &str,
    done: impl Fn(&SiteStatus) -> bool,
) -> SiteStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let object = store.get(&site_key(site)).await.unwrap();
        let status: SiteStatus = match object.get("status") {
            Some(status) => serde_json::from_value(status.clone()).expect("a SiteStatus"),
            None => SiteStatus::default(),
        };
        if done(&status) {
            return status;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("no {what} on site {site} within 30 s; its status is {status:#?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn score(status: &SiteStatus, framework: Framework) -> Option<f64> {
    status.compliance.get(&framework).copied()
}

fn scores(entries: &[(Framework, f64)]) -> std::collections::BTreeMap<Framework, f64> {
    entries.iter().copied().collect()
}

fn assert_compliant(status: &SiteStatus, expected: ConditionStatus, reason: &str) {
    let condition = find_condition(&status.conditions, CONDITION_COMPLIANT)
        .unwrap_or_else(|| panic!("no Compliant condition in {status:#?}"));
    assert_eq!(
        (condition.status, condition.reason.as_str()),
        (expected, reason),
        "{condition:?}"
    );
}
