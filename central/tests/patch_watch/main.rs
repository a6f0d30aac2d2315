//! PATCH and WATCH of the resource API over real HTTP, against servers on 127.0.0.1:0: every patch
//! type, admission and concurrency of patches, server-side apply, watch semantics on SQLite and
//! PostgreSQL (two replicas on one database included), and the real `kubectl` (`get -w`, `wait`,
//! `apply --server-side`).

mod harness;
mod kubectl;
mod patch;
mod watch;
