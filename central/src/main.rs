//! The `osc-central` binary: parses the command line and hands over to the library.

use anyhow::Context;
use clap::Parser;
use osc_central::api::{self, AppState};
use osc_central::auth::{Auth, Role, TokenSpec};
use osc_central::config::{Cli, Command, Config, IssueAdminToken};
use osc_central::{server, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::CheckConfig(options) => {
            print!("{}", Config::from_options(options)?.to_yaml());
            Ok(())
        }
        Command::IssueAdminToken(IssueAdminToken { name, options }) => {
            let config = Config::from_options(options)?;
            let store = server::open_store(&config).await?;
            let token = Auth::new(store)
                .issue(TokenSpec {
                    name,
                    role: Role::Admin,
                    expires_at: None,
                })
                .await
                .context("cannot store the new admin token")?;
            println!("{}", token.bearer);
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
            let api = |services| api::app(AppState::new(services));
            server::run(config, listener, api, shutdown).await?;
            Ok(())
        }
    }
}
