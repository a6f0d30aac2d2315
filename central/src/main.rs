//! The `osc-central` binary: parses the command line and hands over to the library.

use anyhow::Context;
use clap::Parser;
use osc_central::config::{Cli, Command, Config};
use osc_central::{server, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::CheckConfig(options) => {
            print!("{}", Config::from_options(options)?.to_yaml());
            Ok(())
        }
        Command::Serve(options) => {
            let config = Config::from_options(options)?;
            telemetry::init(&config.log)?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {}; pick another --listen address or stop the process \
                         using it",
                        config.listen
                    )
                })?;
            let shutdown = server::termination_signal().context("cannot handle signals")?;
            // The resource API is not written yet: only /healthz and /metrics are served.
            server::run(config, listener, |_services| axum::Router::new(), shutdown).await?;
            Ok(())
        }
    }
}
