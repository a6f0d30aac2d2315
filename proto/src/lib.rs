//! `osc-proto`: everything that crosses the wire between OsirisCare's parts.
//!
//! No I/O: encoding, decoding, hashing, signing and verifying only.
//!
//! # Layout
