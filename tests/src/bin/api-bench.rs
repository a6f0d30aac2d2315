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
use osc_tests::bench::{self, Backend, BackendFlag, Settings};

/// Measures Central Command's API: single-object latency, update throughput with many clients
/// (beside a bare axum handler doing the same database write), large lists and watch fan-out.
#[derive(Debug, Parser)]
#[command(name = "api-bench")]
struct Flags {
    /// The database both servers store in.
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
    let settings = if flags.quick {
        Settings::quick(backend)
    } else {
        Settings::full(backend)
    };
    let report = bench::run(&settings, &|line| eprintln!("{line}"))
        .await
        .with_context(|| format!("the benchmark on {} failed", settings.backend.name()))?;
    if flags.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
