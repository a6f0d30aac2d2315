//! `api-bench`: measures Central Command's API on SQLite or PostgreSQL and prints a table (or
//! JSON). Build it with `--release` for figures worth reporting:
//!
//! ```text
//! cargo run --release -p osc-tests --bin api-bench -- --backend sqlite
//! cargo run --release -p osc-tests --bin api-bench -- --backend postgres \
//!     --database-url postgres://postgres:osc-test@127.0.0.1:5432/postgres
//! ```

use anyhow::Context as _;
use clap::Parser;
use osc_tests::bench::{self, RunFlags, Settings, print_report};

/// Measures Central Command's API: single-object latency, update throughput with many clients
/// (beside a bare axum handler doing the same database write), large lists and watch fan-out.
#[derive(Debug, Parser)]
#[command(name = "api-bench")]
struct Flags {
    #[command(flatten)]
    run: RunFlags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let backend = flags.run.backend()?;
    let settings = if flags.run.quick {
        Settings::quick(backend)
    } else {
        Settings::full(backend)
    };
    let report = bench::run(&settings, &|line| eprintln!("{line}"))
        .await
        .with_context(|| format!("the benchmark on {} failed", settings.backend.name()))?;
    print_report(&report, flags.run.json, |report| report.table())?;
    Ok(())
}
