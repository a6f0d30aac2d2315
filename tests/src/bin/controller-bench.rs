//! `controller-bench`: measures the appliance controller in this process: drift-to-heal time on
//! the local transport with real scripts, and the RSS and CPU of 100 hosts x 20 runbooks at the
//! default interval with steps answered at once. Build it with `--release` for figures worth
//! reporting:
//!
//! ```text
//! cargo run --release -p osc-tests --bin controller-bench
//! ```

use anyhow::Context as _;
use clap::Parser;
use osc_tests::controller_bench::{self, Settings};

/// Measures the controller's drift-to-heal time and its own memory and CPU under load.
#[derive(Debug, Parser)]
#[command(name = "controller-bench")]
struct Flags {
    /// Small counts that run every phase in seconds (a smoke test, not figures).
    #[arg(long)]
    quick: bool,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let settings = if flags.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    let report = controller_bench::run(&settings, &|line| eprintln!("{line}"))
        .await
        .context("the controller benchmark failed")?;
    if flags.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
