//! `osc-central`: Central Command.
//!
//! # Layout
//! - [`store`]: the only code that knows SQL; objects as JSON with one global resourceVersion and
//!   a watch history, on SQLite or PostgreSQL behind the one [`store::Store`] type.
//! - [`config`]: the `osc-central` command line, `OSC_*` variables and YAML file, merged
//!   (flag > environment > file > default) into one checked [`config::Config`].
//! - [`tls`]: certificates from PEM files, or a private CA in the data folder that issues the
//!   server certificate at each start.
//! - [`telemetry`]: the log subscriber (text or JSON lines).

pub mod config;
pub mod store;
pub mod telemetry;
pub mod tls;
