//! Semantic validation: every rule the schema cannot express, reported all at once with field paths.
//!
//! Validation runs in central on every write, in `oscctl` before sending, and in tests. It never stops at
//! the first problem: a person fixing a manifest sees every error, each with its path
//! (`spec.maintenanceWindow.start`, `spec.runbooks[2].names[0]`), what was wrong and what is allowed.
//! Rules that need other objects (does the referenced Site exist?) are in [`validate_references`].
//! Status is not validated here: only controllers write it, through the status subresource.

use std::fmt;

use crate::kinds::{AnyObject, Kind, Object, Spec};
use crate::meta::{API_VERSION, ObjectMeta};

mod format;
mod refs;
pub(crate) mod spec;

pub use refs::{ObjectError, validate_references};

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where: a dotted path from the object root with `[i]` for list items and `[key]` for map entries,
    /// e.g. `spec.exceptions[0].expires` or `metadata.labels[tier]`.
    pub path: String,
    /// The kind of problem, which maps to a Kubernetes `StatusCause` reason.
    pub reason: FieldErrorReason,
    /// The offending value as written (shortened when long), when echoing it helps and it is not secret.
    pub value: Option<String>,
    /// What was wrong and what is allowed instead.
    pub message: String,
}

/// The kinds of field problem, as Kubernetes names them in `StatusCause.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorReason {
    /// A required field is missing or empty.
    Required,
    /// A value breaks a syntax or range rule.
    Invalid,
    /// A value is not one of the supported choices in this context.
    NotSupported,
    /// A value appears twice where it must be unique.
    Duplicate,
    /// A value is longer than allowed.
    TooLong,
    /// A field is set where it must not be.
    Forbidden,
    /// A reference names an object that does not exist.
    NotFound,
}

/// Every problem found in an object (or a set of objects), in the order the rules ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl FieldErrorReason {
    /// The `reason` of a Kubernetes `StatusCause` (`"FieldValueInvalid"`…), for 422 responses.
    pub fn status_cause(self) -> &'static str {
        match self {
            FieldErrorReason::Required => "FieldValueRequired",
            FieldErrorReason::Invalid => "FieldValueInvalid",
            FieldErrorReason::NotSupported => "FieldValueNotSupported",
            FieldErrorReason::Duplicate => "FieldValueDuplicate",
            FieldErrorReason::TooLong => "FieldValueTooLong",
            FieldErrorReason::Forbidden => "FieldValueForbidden",
            FieldErrorReason::NotFound => "FieldValueNotFound",
        }
    }

    /// The phrase Kubernetes prints for the reason (`"Invalid value"`).
    fn phrase(self) -> &'static str {
        match self {
            FieldErrorReason::Required => "Required value",
            FieldErrorReason::Invalid => "Invalid value",
            FieldErrorReason::NotSupported => "Unsupported value",
            FieldErrorReason::Duplicate => "Duplicate value",
            FieldErrorReason::TooLong => "Too long",
            FieldErrorReason::Forbidden => "Forbidden",
            FieldErrorReason::NotFound => "Not found",
        }
    }
}

impl fmt::Display for FieldError {
    /// Kubernetes' format: `spec.x: Invalid value: "25:00": must be HH:MM …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.path, self.reason.phrase())?;
        if let Some(value) = &self.value {
            write!(f, "{value:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for FieldError {}

impl ValidationErrors {
    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// `Ok` when empty, the errors otherwise.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    /// One line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl AnyObject {
    /// Checks every rule that concerns this object alone and returns all problems found.
    ///
    /// Run it after [`AnyObject::apply_defaults`] to validate what will be stored; before, to validate
    /// what was written (absent defaulted fields are not errors either way).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Errors::default();
        match self {
            AnyObject::Site(o) => validate_object(o, &mut errors),
            AnyObject::Host(o) => validate_object(o, &mut errors),
            AnyObject::Appliance(o) => validate_object(o, &mut errors),
            AnyObject::Credential(o) => validate_object(o, &mut errors),
            AnyObject::Runbook(o) => validate_object(o, &mut errors),
            AnyObject::Release(o) => validate_object(o, &mut errors),
            AnyObject::Rollout(o) => validate_object(o, &mut errors),
        }
        ValidationErrors(errors.0).into_result()
    }
}

/// A path under construction, such as `spec.runbooks[2].names`.
#[derive(Clone, Debug)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root(name: &str) -> Path {
        Path(name.to_owned())
    }

    /// `self.name`.
    pub(crate) fn field(&self, name: &str) -> Path {
        Path(format!("{}.{name}", self.0))
    }

    /// `self[i]`.
    pub(crate) fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    /// `self[key]`.
    pub(crate) fn key(&self, key: &str) -> Path {
        Path(format!("{}[{key}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rule's verdict on a value: which reason and what message, when the value breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) reason: FieldErrorReason,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn invalid(message: impl Into<String>) -> Problem {
        Problem {
            reason: FieldErrorReason::Invalid,
            message: message.into(),
        }
    }

    pub(crate) fn too_long(message: impl Into<String>) -> Problem {
        Problem {
            reason: FieldErrorReason::TooLong,
            message: message.into(),
        }
    }
}

/// The collector every rule writes to.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<FieldError>);

/// Echoed values longer than this are cut, so that a whole script never lands in an error message.
const MAX_ECHO: usize = 80;

impl Errors {
    pub(crate) fn push(
        &mut self,
        path: &Path,
        reason: FieldErrorReason,
        value: Option<&str>,
        message: impl Into<String>,
    ) {
        self.0.push(FieldError {
            path: path.to_string(),
            reason,
            value: value.map(echo),
            message: message.into(),
        });
    }

    pub(crate) fn required(&mut self, path: &Path, message: impl Into<String>) {
        self.push(path, FieldErrorReason::Required, None, message);
    }

    pub(crate) fn invalid(&mut self, path: &Path, value: &str, message: impl Into<String>) {
        self.push(path, FieldErrorReason::Invalid, Some(value), message);
    }

    pub(crate) fn forbidden(&mut self, path: &Path, message: impl Into<String>) {
        self.push(path, FieldErrorReason::Forbidden, None, message);
    }

    /// Records `result`'s problem, if any, against `value` at `path`.
    pub(crate) fn check(&mut self, path: &Path, value: &str, result: Result<(), Problem>) {
        if let Err(problem) = result {
            let echoed = (problem.reason != FieldErrorReason::TooLong).then_some(value);
            self.push(path, problem.reason, echoed, problem.message);
        }
    }

    /// Requires a non-blank string, then applies `rule` to it.
    pub(crate) fn check_required(
        &mut self,
        path: &Path,
        value: &str,
        what: &str,
        rule: impl FnOnce(&str) -> Result<(), Problem>,
    ) {
        if value.trim().is_empty() {
            self.required(path, format!("{what} is required"));
        } else {
            self.check(path, value, rule(value));
        }
    }

    /// Reports every item of `items` equal to an earlier one.
    pub(crate) fn unique<T: PartialEq + fmt::Display>(&mut self, path: &Path, items: &[T]) {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                self.push(
                    &path.index(i),
                    FieldErrorReason::Duplicate,
                    Some(&item.to_string()),
                    "each value may appear only once",
                );
            }
        }
    }
}

fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

/// The checks common to every kind, then the kind's own.
fn validate_object<S: Spec + spec::SpecRules>(object: &Object<S>, errors: &mut Errors) {
    if object.api_version != API_VERSION {
        errors.push(
            &Path::root("apiVersion"),
            FieldErrorReason::NotSupported,
            Some(&object.api_version),
            format!("must be {API_VERSION:?}"),
        );
    }
    if object.kind != S::KIND.as_str() {
        errors.push(
            &Path::root("kind"),
            FieldErrorReason::NotSupported,
            Some(&object.kind),
            format!("must be {:?} for this object", S::KIND.as_str()),
        );
    }
    validate_metadata(S::KIND, &object.metadata, errors);
    object.spec.validate_spec(&Path::root("spec"), errors);
}

fn validate_metadata(kind: Kind, meta: &ObjectMeta, errors: &mut Errors) {
    let path = Path::root("metadata");
    // A site's name becomes the namespace of its objects, so it must be a DNS label like a Kubernetes
    // namespace; other names are DNS subdomains like most Kubernetes object names.
    let name_rule = if kind == Kind::Site {
        format::dns_label
    } else {
        format::dns_subdomain
    };
    errors.check_required(&path.field("name"), &meta.name, "a name", name_rule);
    match (&meta.namespace, kind.namespaced()) {
        (None, true) => errors.required(
            &path.field("namespace"),
            format!("a {kind} belongs to a site: set namespace to the site's name"),
        ),
        (Some(namespace), true) => errors.check_required(
            &path.field("namespace"),
            namespace,
            "the namespace (the site's name)",
            format::dns_label,
        ),
        (Some(_), false) => errors.forbidden(
            &path.field("namespace"),
            format!("a {kind} is cluster-scoped: remove namespace"),
        ),
        (None, false) => {}
    }
    for (key, value) in &meta.labels {
        let label = path.field("labels").key(key);
        errors.check(&label, key, format::label_key(key));
        errors.check(&label, value, format::label_value(value));
    }
    for key in meta.annotations.keys() {
        errors.check(
            &path.field("annotations").key(key),
            key,
            format::label_key(key),
        );
    }
    let annotations_size: usize = meta
        .annotations
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if annotations_size > format::MAX_ANNOTATIONS_BYTES {
        errors.push(
            &path.field("annotations"),
            FieldErrorReason::TooLong,
            None,
            format!(
                "annotations total {annotations_size} bytes; at most {} are allowed",
                format::MAX_ANNOTATIONS_BYTES
            ),
        );
    }
    for (i, finalizer) in meta.finalizers.iter().enumerate() {
        errors.check(
            &path.field("finalizers").index(i),
            finalizer,
            format::label_key(finalizer),
        );
    }
    errors.unique(&path.field("finalizers"), &meta.finalizers);
}

#[cfg(test)]
mod tests;
