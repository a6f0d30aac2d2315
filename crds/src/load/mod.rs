//! Loading manifests: YAML streams and JSON files, from a string or from files and directories, decoded
//! into [`AnyObject`]s and validated, with every problem placed at its file, line and column.
//!
//! This module is the one place in `osc-crds` that does I/O: reading manifest files is shared by
//! `oscctl`, the GitOps sync and the tests, and must behave the same for all of them. Everything else in
//! the crate stays pure; [`load_str`] is the pure entry point.
//!
//! # Formats
//! - YAML: one or more documents separated by `---`; empty documents are skipped.
//! - JSON: one object per file.
//! - In both, a document may be a `List` (`kind: List` with `items`), as `kubectl get -o yaml|json`
//!   writes; its own `apiVersion` is not checked, each item's is. An item's decoding error stops the rest
//!   of that list, since the decoder cannot resume inside a sequence; items carry the list's first line
//!   as their location.
//!
//! # What is checked
//! Each document's `apiVersion` and `kind` come first, then the document is decoded straight from the
//! parser into its kind's types, which deny unknown fields. Decoded objects are then validated: each on
//! its own with [`AnyObject::validate`], and all together with [`validate_references`]. Validation runs on
//! a defaulted copy, so that a field left out because it has a default is not reported as missing; the
//! objects returned are as written, so that callers store and show what the person wrote. References are
//! only checked when every document decoded, because a document that failed would otherwise show up as a
//! missing reference target. Problems of all files are collected and returned together.

mod decode;
mod error;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

pub use error::{LoadError, LoadErrors, Location, ObjectName};

use crate::AnyObject;
use crate::validate::{FieldError, FieldErrorReason, validate_references};
use decode::Decoded;

/// An object read from a manifest, with where it was written.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The object as written (not defaulted).
    pub object: AnyObject,
    /// The first line of its document.
    pub location: Location,
    /// Its index among the `items` of a `List` document.
    pub list_item: Option<usize>,
}

/// Loads the manifests in `text`, labelled `source` in locations and messages (a file name, `-` for
/// standard input). The text is JSON when `source` ends in `.json`, YAML otherwise (YAML also reads JSON
/// objects, with YAML's error messages).
pub fn load_str(source: &str, text: &str) -> Result<Vec<Loaded>, LoadErrors> {
    let mut batch = Batch::default();
    batch.text(source, text);
    batch.finish()
}

/// Loads the manifests under `path`: a file (whatever its extension), or a directory searched
/// recursively for `.yaml`, `.yml` and `.json` files, in file-name order, skipping hidden files and
/// directories (names starting with `.`).
pub fn load_path(path: impl AsRef<Path>) -> Result<Vec<Loaded>, LoadErrors> {
    load_paths([path])
}

/// Loads the manifests under each of `paths` as [`load_path`] does, validating all of them together, so
/// that references and duplicates across paths are checked.
pub fn load_paths<P: AsRef<Path>>(
    paths: impl IntoIterator<Item = P>,
) -> Result<Vec<Loaded>, LoadErrors> {
    let mut batch = Batch::default();
    for path in paths {
        batch.path(path.as_ref());
    }
    batch.finish()
}

/// Objects and problems gathered so far in one load.
#[derive(Default)]
struct Batch {
    /// Objects decoded, in file and document order.
    objects: Vec<Decoded>,
    /// Problems found.
    errors: Vec<LoadError>,
}

impl Batch {
    /// Decodes `text` into the batch.
    fn text(&mut self, source: &str, text: &str) {
        if source.ends_with(".json") {
            decode::json(source, text, &mut self.objects, &mut self.errors);
        } else {
            decode::yaml(source, text, &mut self.objects, &mut self.errors);
        }
    }

    /// Reads the file or directory at `root` into the batch.
    fn path(&mut self, root: &Path) {
        let entries = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            // The root itself is loaded even when hidden: it was named on purpose.
            .filter_entry(|entry| {
                entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.')
            });
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    let path = error.path().unwrap_or(root).to_path_buf();
                    self.errors.push(LoadError::Read {
                        path,
                        source: error.into(),
                    });
                    continue;
                }
            };
            let is_manifest = entry.path().extension().is_some_and(|extension| {
                ["yaml", "yml", "json"]
                    .iter()
                    .any(|known| extension == *known)
            });
            if !entry.file_type().is_file() || !(entry.depth() == 0 || is_manifest) {
                continue;
            }
            match fs::read_to_string(entry.path()) {
                Ok(text) => self.text(&entry.path().display().to_string(), &text),
                Err(source) => self.errors.push(LoadError::Read {
                    path: entry.path().to_path_buf(),
                    source,
                }),
            }
        }
    }

    /// Checks for duplicates, validates, and returns the objects or every problem found.
    fn finish(mut self) -> Result<Vec<Loaded>, LoadErrors> {
        let decoded_all = self.errors.is_empty();
        let mut first_definitions: BTreeMap<ObjectName, &Location> = BTreeMap::new();
        let mut defaulted = Vec::with_capacity(self.objects.len());
        for decoded in &self.objects {
            let name = object_name(&decoded.object);
            match first_definitions.get(&name) {
                Some(first) => self.errors.push(LoadError::Duplicate {
                    at: decoded.at.clone(),
                    object: name.clone(),
                    first: (*first).clone(),
                }),
                None => {
                    first_definitions.insert(name.clone(), &decoded.at);
                }
            }

            let mut object = decoded.object.clone();
            object.apply_defaults();
            if let Err(problems) = object.validate() {
                for problem in problems.0 {
                    self.errors.push(invalid(decoded, name.clone(), problem));
                }
            }
            defaulted.push(object);
        }

        if decoded_all {
            for problem in validate_references(&defaulted) {
                // Duplicates are reported above, with both places.
                if problem.error.reason == FieldErrorReason::Duplicate
                    && problem.error.path == "metadata.name"
                {
                    continue;
                }
                let name = ObjectName {
                    kind: problem.kind,
                    namespace: problem.namespace,
                    name: Some(problem.name),
                };
                let decoded = self
                    .objects
                    .iter()
                    .find(|decoded| object_name(&decoded.object) == name)
                    .expect("reference problems are about objects that were passed in");
                self.errors.push(invalid(decoded, name, problem.error));
            }
        }

        if self.errors.is_empty() {
            Ok(self
                .objects
                .into_iter()
                .map(|decoded| Loaded {
                    object: decoded.object,
                    location: decoded.at,
                    list_item: decoded.item,
                })
                .collect())
        } else {
            Err(LoadErrors::new(self.errors))
        }
    }
}

/// A validation problem of `decoded`, its path prefixed with the item for objects of a `List`.
fn invalid(decoded: &Decoded, object: ObjectName, mut problem: FieldError) -> LoadError {
    if let Some(index) = decoded.item {
        problem.path = format!("items[{index}].{}", problem.path);
    }
    LoadError::Invalid {
        at: decoded.at.clone(),
        object,
        problem,
    }
}

/// The kind, namespace and name of a decoded object.
fn object_name(object: &AnyObject) -> ObjectName {
    let metadata = object.metadata();
    ObjectName {
        kind: object.kind(),
        namespace: metadata.namespace.clone(),
        name: Some(metadata.name.clone()),
    }
}
