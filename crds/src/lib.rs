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
//! - `meta`: the API group and version constants and `ObjectMeta`, the metadata every object carries.
//! - `condition`: `metav1.Condition`-shaped status conditions and the helpers that keep their transition
//!   times honest.
//! - `kinds`: the seven kinds (one module each), the generic `Object` envelope, `Kind` and `AnyObject`.
//! - `duration`: Go-style duration strings (`"90s"`, `"1h30m"`) that round-trip exactly.
//! - `window`: maintenance windows and the pure "open now?" / "opens next when?" questions, DST-aware.
//! - `defaults`: every default of the model, applied by `apply_defaults` and shown in the schemas.
//! - `validate`: semantic validation of one object and of references across a set, reporting every
//!   problem at once with its field path and a Kubernetes `StatusCause` reason.
//! - `load`: reads manifests (YAML streams, JSON, `List`s) from strings, files and directories into
//!   validated objects, with every problem at its file, line and column; the crate's only I/O.
//! - `schema`: JSON Schemas and structural `CustomResourceDefinition`s generated from the types, checked in
//!   under `crds/generated/`.
//! - `selection`: a site's runbook selection read once: the (host, runbook) pairs it selects, their
//!   intervals and waivers, and the selectors that leave a pair undecided.
//! - `compliance`: the published compliance score, counts and `Compliant` condition of a site, computed
//!   from its hosts' latest results, the runbook library and `now`.

pub mod selector;

pub mod compliance;
pub mod condition;
pub mod defaults;
pub mod duration;
pub mod kinds;
pub mod load;
pub mod meta;
pub mod schema;
pub mod selection;
pub mod validate;
pub mod window;

pub use duration::Duration;
pub use kinds::{AnyObject, Kind, Object};
pub use meta::{API_VERSION, GROUP, ObjectMeta, VERSION};
pub use validate::{
    FieldError, FieldErrorReason, ObjectError, ValidationErrors, validate_references,
};
