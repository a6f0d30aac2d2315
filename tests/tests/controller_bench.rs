//! A smoke test of the `controller-bench` binary itself (its quick settings: a small fleet at
//! central's minimum interval, about 80 s): `--json` must report every measurement with the
//! counts the settings ask for, and the table made from that report must name them. Timings
//! are never asserted: the benchmark measures speed, the test only that it measured.
//!
//! Needs the `osc-controller` binary beside `controller-bench` (`cargo nextest run --workspace`
//! builds both) and root, for the test host's namespaces.

use std::process::Command;

use osc_tests::controller_bench::{Report, Settings};

#[test]
fn quick_run_reports_every_measurement_and_the_table_names_them() {
    let output = Command::new(env!("CARGO_BIN_EXE_controller-bench"))
        .args(["--quick", "--json"])
        .output()
        .expect("controller-bench runs");
    assert!(
        output.status.success(),
        "controller-bench --quick --json failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Report = serde_json::from_slice(&output.stdout).expect("the report is JSON");
    let quick = Settings::quick();
    let fleet = &report.fleet;
    assert_eq!((fleet.hosts, fleet.runbooks), (quick.hosts, quick.runbooks));
    assert_eq!(fleet.interval_secs, quick.fleet_interval.as_secs_f64());
    assert!(!fleet.default_interval, "{fleet:?}");
    // The steady window ends once every item was checked again.
    assert!(fleet.steady_secs > 0.0, "{fleet:?}");
    assert_eq!(fleet.rechecked, quick.hosts * quick.runbooks, "{fleet:?}");
    assert_eq!(fleet.drift_to_heal.count, quick.fleet_drifts, "{fleet:?}");
    assert!(fleet.drift_to_heal.p50_ms > 0.0, "{fleet:?}");
    assert!(fleet.rss_end_mib > 0.0 && fleet.rss_peak_mib >= fleet.rss_end_mib);
    assert!(fleet.first_pass_secs > 0.0, "{fleet:?}");
    assert_eq!(report.drift_to_heal.count, quick.drifts, "{report:?}");
    assert!(report.drift_to_heal.p50_ms <= report.drift_to_heal.p99_ms);
    assert_eq!(report.drift_interval_secs, 1.0);

    let table = report.table();
    for label in [
        "drift to heal, interval 60 s, over SSH",
        "drift to heal, interval 1 s, in-process",
        "osc-controller, 3 hosts x 3 runbooks over SSH",
        "first pass over every item:",
        "(9 items checked again)",
        "(aim < 2%)",
        "(aim < 30 MB)",
    ] {
        assert!(table.contains(label), "the table lacks {label:?}:\n{table}");
    }
}
