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
use osc_tests::bench::{Backend, BackendFlag};
use osc_tests::evidence_bench::{self, Settings};

/// Measures evidence ingestion (one and many enrolled appliances posting signed, chained
/// bundles) and inclusion-proof latency in a large log, beside the machine's limits.
#[derive(Debug, Parser)]
#[command(name = "evidence-bench")]
struct Flags {
    /// The database the servers store in.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendFlag,

    /// With `--backend postgres`: a server and a role that may create databases; the run creates
    /// its own databases there and drops them after.
    #[arg(
        long,
        env = "OSC_TEST_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,

    /// Entries of the log the inclusion proofs are timed on (default: 1,000,000).
    #[arg(long, value_name = "N")]
    log_size: Option<u64>,

    /// Small counts, for checking that the benchmark works rather than for figures.
    #[arg(long)]
    quick: bool,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let backend = Backend::from_flags(flags.backend, flags.database_url)?;
    let mut settings = if flags.quick {
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
    if flags.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
