//! `osc-proto`: everything that crosses the wire between OsirisCare's parts.
//!
//! No I/O: encoding, decoding, hashing, signing and verifying only.
//!
//! # Layout
//!
//! - [`api`]: Kubernetes API envelopes: `List`, watch events, `Status` errors worded as the API server
//!   words them, and the `Table` that `kubectl get` prints.
//! - [`auth`]: roles, the bodies of the token, audit and enrollment endpoints, the enrollment proof.
//! - [`chain`]: the per-appliance evidence hash chain: the builder that signs each bundle, the verifier
//!   that says where and how a chain breaks, and central's append/duplicate/conflict/gap decision.
//! - [`dsse`]: DSSE v1 envelopes, the PAE, Ed25519 keys with their keyids, signing and verifying.
//! - [`evidence`]: the evidence bundle (every seed field, snake_case, strict), its canonical payload
//!   bytes, the capped check output, and opening a signed evidence envelope.
//! - [`export`]: a site's evidence export (envelopes, inclusion proofs against one signed tree head,
//!   the appliances' keys) and its offline verifier.
//! - [`merkle`]: the evidence log's RFC 6962 Merkle tree, inclusion and consistency proofs with
//!   offline verifiers, and signed tree heads.
//! - [`release`]: the signed release manifest and the checks an appliance makes before and after
//!   downloading an update.

pub mod api;
pub mod auth;
pub mod chain;
pub mod dsse;
pub mod evidence;
pub mod export;
pub mod merkle;
pub mod release;
