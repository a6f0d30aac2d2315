//! `osc-tests`: end-to-end tests and benchmarks of OsirisCare.
//!
//! # Layout
//! - [`bench`]: the API load benchmark behind `api-bench`: a real Central Command in-process,
//!   driven over HTTP on loopback, next to a bare axum handler doing the same database write.

pub mod bench;
