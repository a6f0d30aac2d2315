//! `evidence-bench`: measures how fast Central Command ingests signed evidence and proves
//! inclusion in a large log, on SQLite or PostgreSQL, and prints a table (or JSON). Build it with
//! `--release` for figures worth reporting:
//!
//! ```text
//! cargo run --release -p osc-tests --bin evidence-bench -- --backend sqlite
//! cargo run --release -p osc-tests --bin evidence-bench -- --backend postgres \
//!     --database-url postgres://postgres:osc-test@127.0.0.1:5432/postgres
//! ```

use anyhow::Context as _;
use clap::Parser;
use osc_tests::bench::{RunFlags, print_report};
use osc_tests::evidence_bench::{self, Settings};

/// Measures evidence ingestion (one and many enrolled appliances posting signed, chained
/// bundles) and inclusion-proof latency in a large log, beside the machine's limits.
#[derive(Debug, Parser)]
#[command(name = "evidence-bench")]
struct Flags {
    #[command(flatten)]
    run: RunFlags,

    /// Entries of the log the inclusion proofs are timed on (default: 1,000,000).
    #[arg(long, value_name = "N")]
    log_size: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let backend = flags.run.backend()?;
    let mut settings = if flags.run.quick {
        Settings::quick(backend)
    } else {
        Settings::full(backend)
    };
    if let Some(size) = flags.log_size {
        settings.log_size = size;
    }
    let report = evidence_bench::run(&settings, &|line| eprintln!("{line}"))
        .await
        .with_context(|| format!("the benchmark on {} failed", settings.backend.name()))?;
    print_report(&report, flags.run.json, |report| report.table())?;
    Ok(())
}
