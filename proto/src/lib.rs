//! `osc-proto`: everything that crosses the wire between OsirisCare's parts.
//!
//! No I/O: encoding, decoding, hashing, signing and verifying only.
//!
//! # Layout
//!
//! - [`dsse`]: DSSE v1 envelopes, the PAE, Ed25519 keys with their keyids, signing and verifying.
//! - [`merkle`]: the evidence log's RFC 6962 Merkle tree, inclusion and consistency proofs with
//!   offline verifiers, and signed tree heads.

pub mod dsse;
pub mod merkle;
