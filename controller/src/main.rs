//! The `osc-controller` binary: parses the command line and hands over to the library.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use osc_controller::cache::Snapshot;
use osc_controller::central::HttpCentral;
use osc_controller::config::{self, Config, LogLevel, SecretString};
use osc_controller::enroll::{Enrollment, enroll};
use osc_controller::exec::SshSettings;
use osc_controller::ntp::Chrony;
use osc_controller::outbox::{OutboxStore as _, SqliteOutbox};
use osc_controller::run::{BuiltIn, Controller, Services, Settings, nixos_revision};
use osc_controller::sync::CentralSource;
use url::Url;

/// The OsirisCare appliance controller.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the controller with a config file.
    Run {
        /// The config file (docs/controller.md).
        #[arg(long, default_value = "/etc/osiris/controller.yaml")]
        config: PathBuf,
    },
    /// Joins a site: generates the appliance's key, enrolls with central, writes the config.
    Enroll {
        /// Central's base URL, e.g. https://central.example.net:8443.
        #[arg(long)]
        central: Url,
        /// The one-time enrollment token (`osce_…`), from `POST /osc/v1/sites/{site}/enrollment-tokens`.
        #[arg(long, env = "OSC_ENROLL_TOKEN", hide_env_values = true)]
        token: String,
        /// Central's CA certificate (PEM), pinned from now on.
        #[arg(long)]
        ca: PathBuf,
        /// This appliance's name, a DNS label (its Appliance object).
        #[arg(long)]
        appliance: String,
        /// Where to write the config; the key and token files go beside it.
        #[arg(long, default_value = "/etc/osiris/controller.yaml")]
        config: PathBuf,
        /// The config's state directory.
        #[arg(long, default_value = "/var/lib/osiris/controller")]
        state_directory: PathBuf,
    },
}

// One thread: the controller waits on hosts and central, and the run loop already ran on the
// main thread; each runtime worker thread only added its own malloc arena to the RSS.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Enroll {
            central,
            token,
            ca,
            appliance,
            config,
            state_directory,
        } => {
            init_logs(LogLevel::Info);
            let enrolled = enroll(&Enrollment {
                central,
                token: SecretString::new(token),
                ca_file: ca,
                appliance,
                config: config.clone(),
                state_directory,
            })
            .await?;
            println!(
                "enrolled appliance {} in site {} (key {}); config written to {}",
                enrolled.response.appliance,
                enrolled.response.site,
                enrolled.response.key_id,
                config.display()
            );
            Ok(())
        }
        Command::Run { config } => {
            // Handled from the start, so a stop signal never kills a half-started controller.
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .context("cannot handle SIGTERM")?;
            let config = Config::load(&config)?;
            init_logs(config.log_level);
            let signer = config::read_signing_key(&config.signing_key_file)?;
            let token = config::read_token(&config.token_file)?;
            let ca = std::fs::read(&config.ca_file)
                .with_context(|| format!("cannot read caFile {}", config.ca_file.display()))?;
            std::fs::create_dir_all(&config.state_directory)
                .with_context(|| format!("cannot create {}", config.state_directory.display()))?;
            let central = HttpCentral::new(config.central_url.clone(), &ca, Some(token))?;
            let outbox = SqliteOutbox::open(&config.outbox_path()).await?;
            let services = Services {
                central: central.clone(),
                source: CentralSource {
                    central: central.clone(),
                    site: config.site.clone(),
                    appliance: config.appliance.clone(),
                },
                pull: central,
                transports: BuiltIn::new(SshSettings::default()),
                ntp: Chrony::default(),
            };
            let settings = Settings::from_config(&config, nixos_revision());
            let controller = Controller::new(
                settings,
                services,
                outbox.clone(),
                signer,
                Snapshot::path(&config.state_directory),
            )
            .await?;
            tracing::info!(
                site = config.site,
                appliance = config.appliance,
                outbox = %config.outbox_path().display(),
                undelivered = outbox.depth().await?.total(),
                "controller running"
            );
            let shutdown = async move {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            };
            controller.run(shutdown).await?;
            outbox.close().await;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

fn init_logs(level: LogLevel) {
    let level = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    // Colours only on a terminal: journald and log files get plain text.
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
