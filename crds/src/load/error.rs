//! What can go wrong while loading manifests, each problem with the place it was found.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::validate::FieldError;
use crate::{API_VERSION, Kind};

/// A place in a manifest: the source (a file path, or the label given to [`super::load_str`]), a 1-based
/// line and, when the parser knows it, a 1-based column. Without a column the line is the first line of
/// the document the problem belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file path or label the text came from.
    pub source: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)?;
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        Ok(())
    }
}

/// The object a problem is about, as far as it could be read: `Host "smile-dental/fileserver"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName {
    /// The object's kind.
    pub kind: Kind,
    /// `metadata.namespace`, for namespaced kinds that set it.
    pub namespace: Option<String>,
    /// `metadata.name`, if the document has one.
    pub name: Option<String>,
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.as_str();
        match (&self.namespace, &self.name) {
            (Some(namespace), Some(name)) => write!(f, "{kind} \"{namespace}/{name}\""),
            (None, Some(name)) => write!(f, "{kind} \"{name}\""),
            (_, None) => write!(f, "{kind} (no metadata.name)"),
        }
    }
}

/// One problem found while loading manifests.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The text is not well-formed YAML or JSON. Nothing after this point of the file was read, because
    /// the parser cannot find the next document reliably.
    #[error("{at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's explanation.
        message: String,
    },
    /// A document is not a mapping, so it cannot be an object.
    #[error(
        "{at}: expected an object (a mapping with apiVersion, kind, metadata and spec), found {found}"
    )]
    NotAnObject {
        /// The document's first line.
        at: Location,
        /// What the document is instead, e.g. "a sequence".
        found: &'static str,
    },
    /// `apiVersion` is missing or is not the one this crate serves.
    #[error("{at}: {}", api_version_message(found.as_deref()))]
    ApiVersion {
        /// The document's first line.
        at: Location,
        /// The `apiVersion` written, if any.
        found: Option<String>,
    },
    /// `kind` is missing or names no kind of this crate.
    #[error("{at}: {}", kind_message(found.as_deref()))]
    Kind {
        /// The document's first line.
        at: Location,
        /// The `kind` written, if any.
        found: Option<String>,
    },
    /// The document does not match its kind's types: an unknown or misspelt field, a wrong type, a
    /// missing required field.
    #[error("{at}: {object}: {message}")]
    Decode {
        /// Where the decoder stopped.
        at: Location,
        /// The object being decoded.
        object: ObjectName,
        /// The field path and the decoder's explanation.
        message: String,
    },
    /// The object decoded but breaks a rule of its kind, or refers to an object that is not there.
    #[error("{at}: {object}: {problem}")]
    Invalid {
        /// The object's first line.
        at: Location,
        /// The object.
        object: ObjectName,
        /// The field, what is wrong with it and what is allowed. For an item of a `List` its path starts
        /// with `items[i].`.
        problem: FieldError,
    },
    /// The same object (kind, namespace, name) is defined twice.
    #[error("{at}: {object} is already defined at {first}; define each object once")]
    Duplicate {
        /// The second definition.
        at: Location,
        /// The object.
        object: ObjectName,
        /// The first definition.
        first: Location,
    },
}

impl LoadError {
    /// Where the problem is; errors sort by this.
    pub fn location(&self) -> Location {
        match self {
            LoadError::Read { path, .. } => Location {
                source: path.display().to_string(),
                line: 0,
                column: None,
            },
            LoadError::Syntax { at, .. }
            | LoadError::NotAnObject { at, .. }
            | LoadError::ApiVersion { at, .. }
            | LoadError::Kind { at, .. }
            | LoadError::Decode { at, .. }
            | LoadError::Invalid { at, .. }
            | LoadError::Duplicate { at, .. } => at.clone(),
        }
    }
}

/// Every problem found in one load, sorted by file and line. Display prints one per line.
#[derive(Debug)]
pub struct LoadErrors(Vec<LoadError>);

impl LoadErrors {
    /// Sorts `errors` by location, keeping the order of problems found at the same place.
    pub(super) fn new(mut errors: Vec<LoadError>) -> Self {
        errors.sort_by_cached_key(LoadError::location);
        LoadErrors(errors)
    }

    /// The problems, sorted by file and line.
    pub fn errors(&self) -> &[LoadError] {
        &self.0
    }
}

impl IntoIterator for LoadErrors {
    type Item = LoadError;
    type IntoIter = std::vec::IntoIter<LoadError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

fn api_version_message(found: Option<&str>) -> String {
    match found {
        None => format!("apiVersion is missing; OsirisCare objects use apiVersion: {API_VERSION}"),
        Some(found) => {
            format!(
                "apiVersion \"{found}\" is not served here; OsirisCare objects use {API_VERSION}"
            )
        }
    }
}

fn kind_message(found: Option<&str>) -> String {
    let known = Kind::ALL.map(Kind::as_str).join(", ");
    match found {
        None => {
            format!("kind is missing; expected one of {known} (apiVersion {API_VERSION}) or List")
        }
        Some(found) => format!(
            "unknown kind \"{found}\"; expected one of {known} (apiVersion {API_VERSION}) or List"
        ),
    }
}
