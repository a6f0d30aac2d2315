//! A smoke test of the `controller-bench` binary itself: `--quick --json` must report every
//! measurement with the counts the quick settings ask for, and the table must name them.
//! Timings are never asserted: the benchmark measures speed, the test only that it measured.

use std::process::Command;

use osc_tests::controller_bench::Settings;
use serde_json::Value;

#[test]
fn quick_run_reports_every_measurement() {
    let output = Command::new(env!("CARGO_BIN_EXE_controller-bench"))
        .args(["--quick", "--json"])
        .output()
        .expect("controller-bench runs");
    assert!(
        output.status.success(),
        "controller-bench --quick --json failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the report is JSON");
    let quick = Settings::quick();
    let load = &report["load"];
    let items = quick.hosts * quick.runbooks;
    assert_eq!(load["hosts"], quick.hosts, "{load}");
    assert_eq!(load["runbooks"], quick.runbooks, "{load}");
    // Every item was checked (a check step each) and recorded once at least.
    assert!(load["steps"].as_u64().unwrap() >= items as u64, "{load}");
    assert!(load["evidence"].as_u64().unwrap() >= items as u64, "{load}");
    assert!(
        load["patches"].as_u64().unwrap() >= quick.hosts as u64,
        "{load}"
    );
    assert!(load["rssPeakMib"].as_f64().unwrap() >= load["rssStartMib"].as_f64().unwrap());
    assert!(load["rssEndMib"].as_f64().unwrap() > 0.0, "{load}");
    let drift = &report["driftToHeal"];
    assert_eq!(drift["count"], quick.drifts, "{drift}");
    assert!(drift["p50Ms"].as_f64().unwrap() <= drift["p99Ms"].as_f64().unwrap());
    assert_eq!(report["driftIntervalSecs"], 1.0);
}

#[test]
fn the_table_names_every_measurement_and_the_aims() {
    let output = Command::new(env!("CARGO_BIN_EXE_controller-bench"))
        .arg("--quick")
        .output()
        .expect("controller-bench runs");
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8(output.stdout).expect("UTF-8");
    for label in [
        "drift to heal, interval 1 s",
        "drift to heal at the default interval (900 s)",
        "10 hosts x 4 runbooks",
        "steady state:",
        "(aim < 2%)",
        "(aim < 30 MB)",
    ] {
        assert!(table.contains(label), "the table lacks {label:?}:\n{table}");
    }
}
