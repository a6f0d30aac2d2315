//! `controller-bench`: measures the appliance controller: the `osc-controller` binary with a real
//! central and 100 hosts x 20 runbooks over SSH at the default interval (its RSS and CPU, and
//! drift-to-heal time; about 17 minutes), then drift-to-heal at a 1 s interval in this process.
//! Runs as root (the test host is an sshd in network namespaces). Build both with `--release`
//! for figures worth reporting:
//!
//! ```text
//! cargo build --release -p osc-controller
//! cargo run --release -p osc-tests --bin controller-bench
//! ```

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use osc_tests::bench::print_report;
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

    /// The `osc-controller` binary to measure [default: the one beside this program]
    #[arg(long, value_name = "PATH")]
    controller: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let settings = if flags.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    let controller = match flags.controller {
        Some(path) => path,
        None => controller_bench::controller_beside(&std::env::current_exe()?)?,
    };
    let report = controller_bench::run(&settings, &controller, &|line| eprintln!("{line}"))
        .await
        .context("the controller benchmark failed")?;
    print_report(&report, flags.json, |report| report.table())?;
    Ok(())
}
