//! `osc-proto`: everything that crosses the wire between OsirisCare's parts.
//!
//! No I/O: encoding, decoding, hashing, signing and verifying only.
//!
//! # Layout
//!
//! - [`merkle`]: the evidence log's RFC 6962 Merkle tree, inclusion and consistency proofs with
//!   offline verifiers, and signed tree heads.

pub mod merkle;
