//! Turning one text (YAML stream or JSON) into objects, with every error placed at its file line and
//! column.
//!
//! Each document is read twice. The first pass ([`Header`]) reads only `apiVersion`, `kind`, the name and,
//! for a `List`, the same of each item; it accepts any shape, so it fails only where the YAML itself is
//! broken. The second pass decodes the document straight from the parser into the kind's types with
//! [`AnyObject::deserialize_kind`], so that decoding errors keep the parser's position. serde_yaml reports
//! positions from the start of the stream, not of the document, so they are file positions as they are.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::error::{LoadError, Location, ObjectName};
use crate::{API_VERSION, AnyObject, Kind};

/// An object decoded from a text, before validation.
pub(super) struct Decoded {
    /// The decoded object.
    pub object: AnyObject,
    /// The first line of its document.
    pub at: Location,
    /// Its index in the `items` of a `List` document.
    pub item: Option<usize>,
}

/// Decodes a YAML stream of `---`-separated documents, skipping empty ones.
pub(super) fn yaml(
    source: &str,
    text: &str,
    objects: &mut Vec<Decoded>,
    errors: &mut Vec<LoadError>,
) {
    // The two passes walk the same stream in step; the second is only asked to decode documents the first
    // found well-formed, because serde_yaml repeats a syntax error forever (and can panic) past one.
    let mut second_pass = serde_yaml::Deserializer::from_str(text);
    for document in serde_yaml::Deserializer::from_str(text) {
        let Some(typed) = second_pass.next() else {
            unreachable!("both passes parse the same text");
        };
        let mut header = None;
        let marker = match document.deserialize_any(HeaderVisitor(Stash(&mut header))) {
            Ok(never) => match never {},
            Err(error) => error,
        };
        let Some(header) = header else {
            let (at, message) = yaml_error(source, &marker, 1);
            errors.push(LoadError::Syntax { at, message });
            break;
        };
        // The stash's own error carries the position of the document's root node.
        let at = Location {
            source: source.to_owned(),
            line: marker.location().map_or(1, |location| location.line()),
            column: None,
        };
        let Some(plan) = plan(&header, &at, errors) else {
            continue;
        };
        let current = Cell::new(None);
        match plan.decode(typed, &current) {
            Ok(decoded) => objects.extend(plan.place(decoded, &at)),
            Err(error) => {
                let (at, message) = yaml_error(source, &error, at.line);
                errors.push(plan.decode_error(at, current.get(), message));
            }
        }
    }
}

/// Decodes a JSON text: one object, or a `List` of objects. Whitespace alone is no object.
pub(super) fn json(
    source: &str,
    text: &str,
    objects: &mut Vec<Decoded>,
    errors: &mut Vec<LoadError>,
) {
    let Some(start) = text.find(|c: char| !c.is_whitespace()) else {
        return;
    };
    let at = Location {
        source: source.to_owned(),
        line: 1 + text[..start].matches('\n').count(),
        column: None,
    };
    let header = match serde_json::from_str::<Header>(text) {
        Ok(header) => header,
        Err(error) => {
            let (at, message) = json_error(source, &error, None);
            errors.push(LoadError::Syntax { at, message });
            return;
        }
    };
    let Some(plan) = plan(&header, &at, errors) else {
        return;
    };
    let current = Cell::new(None);
    let mut parser = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let result = plan.decode(
        serde_path_to_error::Deserializer::new(&mut parser, &mut track),
        &current,
    );
    match result.and_then(|decoded| parser.end().map(|()| decoded)) {
        Ok(decoded) => objects.extend(plan.place(decoded, &at)),
        Err(error) => {
            let path = track.path().to_string();
            let (at, message) = json_error(source, &error, Some(&path));
            errors.push(plan.decode_error(at, current.get(), message));
        }
    }
}

/// What a document holds, learnt from its header: one object, or the items of a `List`.
enum Plan {
    /// A single object of this kind.
    One(ObjectName),
    /// A `List`; items with a bad header are `None` and skipped (their error is already reported).
    List(Vec<Option<ObjectName>>),
}

impl Plan {
    /// Decodes the document from `parser`, recording in `current` the `List` item being decoded so that
    /// an error can name its object.
    fn decode<'de, D: de::Deserializer<'de>>(
        &self,
        parser: D,
        current: &Cell<Option<usize>>,
    ) -> Result<Vec<(Option<usize>, AnyObject)>, D::Error> {
        match self {
            Plan::One(object) => {
                AnyObject::deserialize_kind(object.kind, parser).map(|object| vec![(None, object)])
            }
            Plan::List(items) => parser.deserialize_map(ListVisitor { items, current }),
        }
    }

    /// Attaches the document's location to decoded objects.
    fn place(
        &self,
        decoded: Vec<(Option<usize>, AnyObject)>,
        at: &Location,
    ) -> impl Iterator<Item = Decoded> {
        decoded.into_iter().map(|(item, object)| Decoded {
            object,
            at: at.clone(),
            item,
        })
    }

    /// A decoding error at `at`, about the object being decoded when it happened.
    fn decode_error(&self, at: Location, current: Option<usize>, message: String) -> LoadError {
        let object = match (self, current) {
            (Plan::One(object), _) => Some(object),
            (Plan::List(items), Some(index)) => items.get(index).and_then(Option::as_ref),
            (Plan::List(_), None) => None,
        };
        match object {
            Some(object) => LoadError::Decode {
                at,
                object: object.clone(),
                message,
            },
            None => LoadError::Syntax { at, message },
        }
    }
}

/// Checks a document's header, reporting every problem, and says how to decode it.
fn plan(header: &Header, at: &Location, errors: &mut Vec<LoadError>) -> Option<Plan> {
    match (header.shape, header.kind.as_deref()) {
        (Shape::Empty, _) => None,
        (Shape::Other(found), _) => {
            errors.push(LoadError::NotAnObject {
                at: at.clone(),
                found,
            });
            None
        }
        (Shape::Mapping, Some("List")) => {
            let items = header.items.as_deref().unwrap_or_default();
            Some(Plan::List(
                items
                    .iter()
                    .map(|item| object_name(item, at, errors))
                    .collect(),
            ))
        }
        (Shape::Mapping, _) => object_name(header, at, errors).map(Plan::One),
    }
}

/// The object a header describes, if its `apiVersion` and `kind` are ours.
fn object_name(header: &Header, at: &Location, errors: &mut Vec<LoadError>) -> Option<ObjectName> {
    if header.shape != Shape::Mapping {
        let found = match header.shape {
            Shape::Other(found) => found,
            Shape::Empty | Shape::Mapping => "nothing",
        };
        errors.push(LoadError::NotAnObject {
            at: at.clone(),
            found,
        });
        return None;
    }
    let api_version_ok = header.api_version.as_deref() == Some(API_VERSION);
    if !api_version_ok {
        errors.push(LoadError::ApiVersion {
            at: at.clone(),
            found: header.api_version.clone(),
        });
    }
    let kind = header.kind.as_deref().and_then(Kind::from_kind_str);
    if kind.is_none() {
        errors.push(LoadError::Kind {
            at: at.clone(),
            found: header.kind.clone(),
        });
    }
    let metadata = header.metadata.as_deref();
    Some(ObjectName {
        kind: kind.filter(|_| api_version_ok)?,
        namespace: metadata.and_then(|metadata| metadata.namespace.clone()),
        name: metadata.and_then(|metadata| metadata.name.clone()),
    })
}

/// The location and message of a serde_yaml error; `line` is used when the error has no position.
fn yaml_error(source: &str, error: &serde_yaml::Error, line: usize) -> (Location, String) {
    let message = error.to_string();
    match error.location() {
        Some(location) => (
            Location {
                source: source.to_owned(),
                line: location.line(),
                column: Some(location.column()),
            },
            strip_position(message, location.line(), location.column()),
        ),
        None => (
            Location {
                source: source.to_owned(),
                line,
                column: None,
            },
            message,
        ),
    }
}

/// The location and message of a serde_json error, prefixed with the field path where one is known.
fn json_error(source: &str, error: &serde_json::Error, path: Option<&str>) -> (Location, String) {
    let message = strip_position(error.to_string(), error.line(), error.column());
    let message = match path {
        Some(path) if path != "." && !path.is_empty() => format!("{path}: {message}"),
        _ => message,
    };
    let at = Location {
        source: source.to_owned(),
        line: error.line().max(1),
        column: Some(error.column().max(1)),
    };
    (at, message)
}

/// Removes the " at line L column C" both parsers append, since the location is printed in front.
fn strip_position(message: String, line: usize, column: usize) -> String {
    let suffix = format!(" at line {line} column {column}");
    match message.find(&suffix) {
        Some(start) => format!("{}{}", &message[..start], &message[start + suffix.len()..]),
        None => message,
    }
}

/// The `items` of a `List`: each decoded with its kind, or skipped when its header was bad.
struct ListVisitor<'a> {
    /// The kind and name of each item, from the first pass.
    items: &'a [Option<ObjectName>],
    /// The item being decoded, for error messages.
    current: &'a Cell<Option<usize>>,
}

impl<'de> Visitor<'de> for ListVisitor<'_> {
    type Value = Vec<(Option<usize>, AnyObject)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a List with items")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut objects = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                objects = map.next_value_seed(ItemsSeed {
                    items: self.items,
                    current: self.current,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(objects)
    }
}

/// Decodes the `items` sequence of a `List`.
struct ItemsSeed<'a> {
    /// The kind and name of each item, from the first pass.
    items: &'a [Option<ObjectName>],
    /// The item being decoded, for error messages.
    current: &'a Cell<Option<usize>>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Vec<(Option<usize>, AnyObject)>;

    fn deserialize<D: de::Deserializer<'de>>(self, parser: D) -> Result<Self::Value, D::Error> {
        parser.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Vec<(Option<usize>, AnyObject)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut objects = Vec::new();
        for (index, item) in self.items.iter().enumerate() {
            self.current.set(Some(index));
            match item {
                Some(object) => {
                    if let Some(decoded) = seq.next_element_seed(KindSeed(object.kind))? {
                        objects.push((Some(index), decoded));
                    }
                }
                None => {
                    seq.next_element::<IgnoredAny>()?;
                }
            }
        }
        self.current.set(None);
        Ok(objects)
    }
}

/// Decodes one object of a known kind.
struct KindSeed(Kind);

impl<'de> DeserializeSeed<'de> for KindSeed {
    type Value = AnyObject;

    fn deserialize<D: de::Deserializer<'de>>(self, parser: D) -> Result<AnyObject, D::Error> {
        AnyObject::deserialize_kind(self.0, parser)
    }
}

/// The shape of a document or item, as far as the loader cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `null`, `~` or nothing at all.
    Empty,
    /// A mapping: possibly an object.
    Mapping,
    /// Anything else, described for the error message ("a sequence").
    Other(&'static str),
}

/// What the first pass reads from any value: a string's text, a sequence's elements, and from a mapping
/// `apiVersion`, `kind`, `metadata` (whose own `name` and `namespace` it reads with the same visitor) and
/// a `List`'s `items`. It accepts every shape and reads what it does not need as absent, so that
/// deserializing a `Header` never fails on well-formed input.
#[derive(Debug)]
struct Header {
    /// What the value is.
    shape: Shape,
    /// The value itself, if it is a string.
    text: Option<String>,
    /// `apiVersion`, if it is a string.
    api_version: Option<String>,
    /// `kind`, if it is a string.
    kind: Option<String>,
    /// `name`, if it is a string (read from `metadata`).
    name: Option<String>,
    /// `namespace`, if it is a string (read from `metadata`).
    namespace: Option<String>,
    /// `metadata`, if present.
    metadata: Option<Box<Header>>,
    /// The elements of a sequence; for a mapping, those of its `items`.
    items: Option<Vec<Header>>,
}

impl Header {
    fn of(shape: Shape) -> Self {
        Header {
            shape,
            text: None,
            api_version: None,
            kind: None,
            name: None,
            namespace: None,
            metadata: None,
            items: None,
        }
    }
}

impl<'de> de::Deserialize<'de> for Header {
    fn deserialize<D: de::Deserializer<'de>>(parser: D) -> Result<Self, D::Error> {
        parser.deserialize_any(HeaderVisitor(Keep))
    }
}

/// What [`HeaderVisitor`] does with the header it read.
trait Finish {
    type Value;
    fn finish<E: de::Error>(self, header: Header) -> Result<Self::Value, E>;
}

/// Returns the header.
struct Keep;

impl Finish for Keep {
    type Value = Header;

    fn finish<E: de::Error>(self, header: Header) -> Result<Header, E> {
        Ok(header)
    }
}

/// Stores the header and fails on purpose: serde_yaml exposes positions only on errors, and an error
/// raised by the root visitor carries the position of the document's root node, i.e. its first line.
struct Stash<'a>(&'a mut Option<Header>);

impl Finish for Stash<'_> {
    type Value = std::convert::Infallible;

    fn finish<E: de::Error>(self, header: Header) -> Result<Self::Value, E> {
        *self.0 = Some(header);
        Err(E::custom("header read"))
    }
}

/// Reads a [`Header`] from any value.
struct HeaderVisitor<F>(F);

impl<F: Finish> HeaderVisitor<F> {
    fn other<E: de::Error>(self, found: &'static str) -> Result<F::Value, E> {
        self.0.finish(Header::of(Shape::Other(found)))
    }
}

impl<'de, F: Finish> Visitor<'de> for HeaderVisitor<F> {
    type Value = F::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<F::Value, E> {
        self.other("a boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<F::Value, E> {
        self.other("a number")
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<F::Value, E> {
        self.other("a number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<F::Value, E> {
        self.other("a number")
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<F::Value, E> {
        self.other("a number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<F::Value, E> {
        self.other("a number")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<F::Value, E> {
        let mut header = Header::of(Shape::Other("a string"));
        header.text = Some(text.to_owned());
        self.0.finish(header)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<F::Value, E> {
        self.other("bytes")
    }
    fn visit_none<E: de::Error>(self) -> Result<F::Value, E> {
        self.0.finish(Header::of(Shape::Empty))
    }
    fn visit_unit<E: de::Error>(self) -> Result<F::Value, E> {
        self.0.finish(Header::of(Shape::Empty))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<F::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Header>()? {
            items.push(item);
        }
        let mut header = Header::of(Shape::Other("a sequence"));
        header.items = Some(items);
        self.0.finish(header)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<F::Value, A::Error> {
        IgnoredAny.visit_enum(data)?;
        self.other("a tagged value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<F::Value, A::Error> {
        let mut header = Header::of(Shape::Mapping);
        while let Some(key) = map.next_key::<Header>()? {
            match key.text.as_deref() {
                Some("apiVersion") => header.api_version = map.next_value::<Header>()?.text,
                Some("kind") => header.kind = map.next_value::<Header>()?.text,
                Some("name") => header.name = map.next_value::<Header>()?.text,
                Some("namespace") => header.namespace = map.next_value::<Header>()?.text,
                Some("metadata") => header.metadata = Some(Box::new(map.next_value::<Header>()?)),
                Some("items") => header.items = map.next_value::<Header>()?.items,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.0.finish(header)
    }
}
