//! `osc-central`: Central Command.
//!
//! # Layout
//! - [`auth`]: who is asking ([`auth::Principal`]): bearer tokens, roles, tenancy.
//! - [`batch`]: group commit: concurrent callers' items written in one transaction.
//! - [`api`]: the Kubernetes-compatible resource API (discovery, OpenAPI, the verbs on objects,
//!   tables, watch and patch) as the router [`api::app`] builds from an [`api::AppState`].
//! - [`store`]: the only code that knows SQL; objects as JSON with one global resourceVersion and
//!   a watch history, on SQLite or PostgreSQL behind the one [`store::Store`] type.
//! - [`evidence`]: the evidence log: posted envelopes checked and appended in group commits,
//!   and the RFC 6962 Merkle tree over them with signed tree heads and proofs.
//! - [`config`]: the `osc-central` command line, `OSC_*` variables and YAML file, merged
//!   (flag > environment > file > default) into one checked [`config::Config`].
//! - [`server`]: the accept loop (TLS, HTTP/1.1 and HTTP/2), the layers around every request
//!   (log span, metrics, timeout, body limit), `/healthz`, and graceful shutdown.
//! - [`tls`]: certificates from PEM files, or a private CA in the data folder that issues the
//!   server certificate at each start.
//! - [`metrics`]: the Prometheus registry behind the [`metrics::Metrics`] handle and `/metrics`.
//! - [`telemetry`]: the log subscriber (text or JSON lines).
//! - [`seed`]: `--seed`: creates the objects of a GitOps repo's manifests that the store lacks,
//!   at start-up and through the API's admission, all checked before any is written.
//! - [`reconcile`]: server-side reconcilers that keep derived status current, such as every
//!   Site's compliance roll-up.

pub mod api;
pub mod auth;
pub mod batch;
pub mod config;
pub mod evidence;
pub mod metrics;
pub mod reconcile;
pub mod seed;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
