//! `osc-tests`: end-to-end tests and benchmarks of OsirisCare.
//!
//! # Layout
//! - [`bench`]: the API load benchmark behind `api-bench`: a real Central Command in-process,
//!   driven over HTTP on loopback, next to a bare axum handler doing the same database write.
//! - [`central`]: a real Central Command in-process over TLS on SQLite, shared with the
//!   controller's own integration tests (the file lives beside them).
//! - [`controller_bench`]: the controller benchmark behind `controller-bench`: the
//!   `osc-controller` binary with a real central and a fleet of Hosts over SSH, and drift-to-heal.
//! - [`evidence_bench`]: the evidence benchmark behind `evidence-bench`: ingestion of signed
//!   envelopes by one and many enrolled appliances and inclusion proofs in a large log, beside
//!   the machine's limits (Ed25519 verifications on one core, bare inserts).
//! - [`host`]: test hosts, a real sshd in its own network, mount and PID namespaces, and the SSH
//!   client that reaches it.
//! - [`runbook`]: runbooks of the library in `desired-state/`, run step by step on a test host.
//! - [`signing`]: the runbook library's digests and signatures, written by `sign-runbooks`.

pub mod bench;
#[path = "../../controller/tests/common/central.rs"]
pub mod central;
pub mod controller_bench;
pub mod evidence_bench;
pub mod host;
pub mod runbook;
pub mod signing;
