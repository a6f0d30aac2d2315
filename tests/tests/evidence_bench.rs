//! A smoke test of the `evidence-bench` binary itself: `--quick --json` on each backend must
//! report every measurement with the counts the quick settings ask for. Timings are never
//! asserted: the benchmark measures speed, the test only that it measured.
//!
//! The PostgreSQL run needs `OSC_TEST_DATABASE_URL` (`tests/run` sets it up).

use std::process::Command;

use osc_tests::bench::Backend;
use osc_tests::evidence_bench::Settings;
use serde_json::Value;

#[test]
fn quick_run_on_sqlite_reports_every_measurement() {
    check(&run_quick(&["--backend", "sqlite"]), "sqlite");
}

#[test]
fn quick_run_on_postgres_reports_every_measurement() {
    let url = std::env::var("OSC_TEST_DATABASE_URL").expect(
        "OSC_TEST_DATABASE_URL is not set, so the PostgreSQL benchmark cannot run; point it at a \
         role that may create databases (tests/run sets it up)",
    );
    check(
        &run_quick(&["--backend", "postgres", "--database-url", &url]),
        "postgres",
    );
}

#[test]
fn the_table_names_every_measurement_the_limits_and_the_aim() {
    let output = Command::new(env!("CARGO_BIN_EXE_evidence-bench"))
        .args(["--quick", "--backend", "sqlite"])
        .output()
        .expect("evidence-bench runs");
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8(output.stdout).expect("UTF-8");
    for label in [
        "Ed25519 verify, 1 core",
        "bare insert, 1 envelope per transaction",
        "bare insert, batches of 512",
        "POST evidence, 1 appliance",
        "POST evidence, 4 appliances",
        "fill 300 entries in-process",
        "inclusion proof at 300 entries",
        "(aim on SQLite: >= 5,000)",
    ] {
        assert!(table.contains(label), "the table lacks {label:?}:\n{table}");
    }
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(progress.contains("enrolling 5 appliances"), "{progress}");
}

/// Runs `evidence-bench --quick --json` with `args` and parses its report.
fn run_quick(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_evidence-bench"))
        .args(["--quick", "--json"])
        .args(args)
        .output()
        .expect("evidence-bench runs");
    assert!(
        output.status.success(),
        "evidence-bench {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the report is JSON")
}

/// Checks every measurement's count and that rates and latencies are positive numbers.
fn check(report: &Value, backend: &str) {
    let quick = Settings::quick(Backend::Sqlite);
    assert_eq!(report["backend"], backend);
    let counted = [
        ("verify", quick.verifications),
        ("bareInserts", quick.bare_inserts),
        ("bareBatchedInserts", quick.bare_inserts),
        ("single", quick.single),
        ("concurrent", quick.appliances * quick.per_appliance),
        ("fill", usize::try_from(quick.log_size).unwrap()),
    ];
    for (name, count) in counted {
        let figure = &report[name];
        assert_eq!(figure["operations"], count, "{name}: {figure}");
        assert!(
            figure["perSecond"].as_f64().unwrap() > 0.0,
            "{name}: {figure}"
        );
        let latency = &figure["latency"];
        assert!(latency["p50Ms"].as_f64().unwrap() <= latency["p99Ms"].as_f64().unwrap());
    }
    assert_eq!(report["concurrent"]["clients"], quick.appliances);
    assert_eq!(report["logSize"], quick.log_size);
    assert_eq!(report["inclusion"]["count"], quick.proofs);
    assert!(report["loadMs"].as_f64().unwrap() > 0.0);
}
