//! `osc-central`: Central Command.
//!
//! # Layout
//! - [`store`]: the only code that knows SQL; objects as JSON with one global resourceVersion and
//!   a watch history, on SQLite or PostgreSQL behind the one [`store::Store`] type.

pub mod store;
