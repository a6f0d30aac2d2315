//! `osc-tests`: end-to-end tests and benchmarks of OsirisCare.
//!
//! # Layout
//! - [`bench`]: the API load benchmark behind `api-bench`: a real Central Command in-process,
//!   driven over HTTP on loopback, next to a bare axum handler doing the same database write.
//! - [`evidence_bench`]: the evidence benchmark behind `evidence-bench`: ingestion of signed
//!   envelopes by one and many enrolled appliances and inclusion proofs in a large log, beside
//!   the machine's limits (Ed25519 verifications on one core, bare inserts).

pub mod bench;
pub mod evidence_bench;
