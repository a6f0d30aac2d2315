//! A smoke test of the `api-bench` binary itself: `--quick --json` on each backend must report
//! every measurement with the counts the quick settings ask for. Timings are never asserted:
//! the benchmark measures speed, the test only that it measured.
//!
//! The PostgreSQL run needs `OSC_TEST_DATABASE_URL` (`tests/run` sets it up).

use std::process::Command;

use osc_tests::bench::{BARE_HANDLER, Backend, Settings};
use serde_json::Value;

#[test]
fn quick_run_on_sqlite_reports_every_measurement() {
    let report = run_quick(&["--backend", "sqlite"]);
    check(&report, "sqlite");
}

#[test]
fn quick_run_on_postgres_reports_every_measurement() {
    let url = std::env::var("OSC_TEST_DATABASE_URL").expect(
        "OSC_TEST_DATABASE_URL is not set, so the PostgreSQL benchmark cannot run; point it at a \
         role that may create databases (tests/run sets it up)",
    );
    let report = run_quick(&["--backend", "postgres", "--database-url", &url]);
    check(&report, "postgres");
}

#[test]
fn the_table_names_every_measurement_and_the_aims() {
    let output = Command::new(env!("CARGO_BIN_EXE_api-bench"))
        .args(["--quick", "--backend", "sqlite"])
        .output()
        .expect("api-bench runs");
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8(output.stdout).expect("UTF-8");
    for label in [
        "GET one object, 1 client",
        "PUT one object, 1 client",
        "PUT, 4 clients, own objects",
        "PUT, 4 clients, one object",
        "bare handler, 4 clients, own objects",
        "POST, 4 clients",
        "LIST 40 objects, one page",
        "LIST 40 objects, 3 pages of 15",
        "write -> last of 8 watchers, from response",
        "% of the bare handler's (aim: >= 50%)",
        "(aim: < 100 ms)",
        BARE_HANDLER,
    ] {
        assert!(table.contains(label), "the table lacks {label:?}:\n{table}");
    }
    // Progress goes to standard error, so that standard output is only the report.
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(progress.contains("opening 8 watches"), "{progress}");
}

/// Runs `api-bench --quick --json` with `args` and parses its report.
fn run_quick(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_api-bench"))
        .args(["--quick", "--json"])
        .args(args)
        .output()
        .expect("api-bench runs");
    assert!(
        output.status.success(),
        "api-bench {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the report is JSON")
}

/// Checks that `report` has every measurement with the quick settings' counts, and durations
/// that are numbers in a sane order (never their size).
fn check(report: &Value, backend: &str) {
    let quick = Settings::quick(Backend::Sqlite);
    let updates = quick.clients * quick.updates_per_client;
    let contended = quick.clients * quick.contended_per_client;
    assert_eq!(report["backend"], backend);
    assert!(report["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(report["bareHandler"], BARE_HANDLER);

    let latencies = [
        ("/get", quick.samples),
        ("/update", quick.samples),
        ("/updatesOwnObjects/latency", updates),
        ("/updatesOneObject/throughput/latency", contended),
        ("/bareUpdates/latency", updates),
        ("/listAll/latency", quick.list_repeats),
        ("/listPaged/walk", quick.list_repeats),
        ("/listPaged/page", quick.list_repeats * 3),
        ("/fanout/lastWatcherAfterResponse", quick.fanout_writes),
        ("/fanout/lastWatcherAfterRequest", quick.fanout_writes),
        (
            "/fanout/eachWatcherAfterResponse",
            quick.fanout_writes * quick.watchers,
        ),
    ];
    for (pointer, count) in latencies {
        let latency = &report.pointer(pointer).unwrap_or_else(|| {
            panic!("the report lacks {pointer}: {report:#}");
        });
        assert_eq!(latency["count"], count, "{pointer}: {latency}");
        let [p50, p99, max, mean] =
            ["p50Ms", "p99Ms", "maxMs", "meanMs"].map(|field| latency[field].as_f64().unwrap());
        assert!(
            0.0 <= p50 && p50 <= p99 && p99 <= max && mean <= max,
            "{pointer}: {latency}"
        );
    }
    // Only requests that complete can be timed as more than zero.
    assert!(report["get"]["p50Ms"].as_f64().unwrap() > 0.0);
    assert!(
        report["fanout"]["lastWatcherAfterRequest"]["maxMs"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    for (pointer, operations) in [
        ("/updatesOwnObjects", updates),
        ("/bareUpdates", updates),
        ("/updatesOneObject/throughput", contended),
    ] {
        let throughput = &report.pointer(pointer).unwrap();
        assert_eq!(throughput["clients"], quick.clients, "{pointer}");
        assert_eq!(throughput["operations"], operations, "{pointer}");
        assert!(throughput["perSecond"].as_f64().unwrap() > 0.0, "{pointer}");
    }
    // One create per client warms its connection and is not timed.
    assert_eq!(
        report["creates"]["operations"],
        quick.list_objects - quick.clients
    );
    assert!(report["apiToBare"].as_f64().unwrap() > 0.0);
    assert_eq!(report["listAll"]["objects"], quick.list_objects);
    assert!(report["listAll"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(report["listPaged"]["pageSize"], quick.page_size);
    assert_eq!(
        report["listPaged"]["pages"],
        quick.list_objects.div_ceil(quick.page_size as usize)
    );
    assert_eq!(report["fanout"]["watchers"], quick.watchers);
    assert_eq!(report["fanout"]["writes"], quick.fanout_writes);
}
