//! `osc-controller`: the appliance controller.
//!
//! The controller checks every (host, runbook) pair of its site, heals drift with signed runbooks,
//! and sends signed, hash-chained evidence and status to central through a durable outbox. The
//! parts that decide are pure; the parts that reach hosts and central sit behind narrow traits
//! ([`exec::Executor`] and [`run::Transports`], [`central::Central`], [`sync::Source`],
//! [`credentials::Pull`], [`ntp::Ntp`], and the store behind [`outbox::OutboxStore`]), each with a
//! production and a test implementation.
//!
//! # Layout
//! - [`config`]: the YAML config file, option for option the NixOS module's, checked on load.
//! - [`items`]: the work items, pure: the (host, runbook) pairs a site's selection produces, with
//!   merged parameters and intervals, and which of them a change of desired state affects.
//! - [`trust`]: the pure check that a Runbook's digest and signature verify against the trusted
//!   runbook keys.
//! - [`plan`]: the pure reconcile decision `plan(desired, observed, now) -> Plan` for one item.
//! - [`reconcile`]: one reconcile of an item: plan, run through an executor, plan again; the
//!   Host result, the evidence and the requeue that follow from it.
//! - [`queue`]: the work queue: requeue after each item's interval, per-item exponential backoff
//!   with jitter, no item twice at once, coalesced triggers.
//! - [`outbox`]: the durable outbox (SQLite, WAL) for evidence, status patches and notifications,
//!   with the evidence chain head in the same transactions, and its in-memory twin for tests.
//! - [`deliver`]: draining the outbox to central, kind by kind, in order, with backoff.
//! - [`evidence`]: one signed, chained evidence bundle per reconcile, built from what it observed.
//! - [`exec`]: the [`exec::Executor`] trait that runs a runbook step on a host, what a run means
//!   ([`exec::judge`]), the local executor, the SSH executor ([`exec::ssh`]) and a scripted
//!   executor for tests.
//! - [`central`]: the [`central::Central`] trait (enroll, post evidence, patch status), its HTTP
//!   implementation with the CA pinned, and an in-memory central for tests.
//! - [`enroll`]: `osc-controller enroll`: key generation (0600), the enrollment request and its
//!   proof, writing the token and config files.
//! - [`cache`]: the site's desired state as last seen ([`cache::Snapshot`]), changed by pure list
//!   and watch-event functions, saved atomically under the state directory.
//! - [`sync`]: list + watch of the site's resources into the cache, with resume, re-list on 410,
//!   bookmarks and backoff; whether the controller runs from the cache and since when.
//! - [`credentials`]: the credential pull, secrets in memory only, refreshed per resourceVersion.
//! - [`run`]: the run loop (`osc-controller run`): items, workers, evidence, status, notices,
//!   delivery and heartbeat; the [`run::Transports`] seam over the executors.
//! - [`status`]: the Host's and the Appliance's status patches, pure.
//! - [`notify`]: escalation notices: one outbox entry per target, webhook (HMAC-signed) and
//!   syslog (RFC 5424) delivery.
//! - [`ntp`]: the clock's offset from NTP, from chrony.

pub mod cache;
pub mod central;
pub mod config;
pub mod credentials;
pub mod deliver;
pub mod enroll;
mod error;
pub mod evidence;
pub mod exec;
pub mod items;
pub mod notify;
pub mod ntp;
pub mod outbox;
pub mod plan;
pub mod queue;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod sync;
pub mod trust;

pub use error::Error;
