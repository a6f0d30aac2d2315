//! `osc-crds`: the OsirisCare resource model.
//!
//! Everything a person writes in a GitOps repo, and everything Central Command stores, is one of the kinds
//! defined here. This crate owns their Rust types, their defaults, the semantic validation that runs in the
//! server, in `oscctl` and in tests, label selectors, and the generation of JSON Schemas and
//! `CustomResourceDefinition`s. It knows nothing of HTTP, SQL or the clock: callers pass `now` in.
//!
//! # Layout
//! - `selector`: Kubernetes label selectors, parsed with errors that point at the offending character, and
//!   matched against label maps.

pub mod selector;
