//! `osc-central`: Central Command.
//!
//! # Layout
