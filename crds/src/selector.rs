//! Kubernetes label selectors: the string form that `?labelSelector=`, `kubectl get -l` and our own specs use.
//!
//! The grammar is the one of `k8s.io/apimachinery/pkg/labels`:
//!
//! ```text
//! selector    = "" | requirement ( "," requirement )*
//! requirement = "!" key                      (the key is absent)
//!             | key                          (the key is present)
//!             | key ( "=" | "==" | "!=" ) value
//!             | key ( "in" | "notin" ) "(" value ( "," value )* ")"
//! ```
//!
//! Whitespace (space, tab, CR, LF) is allowed between tokens and separates them; a key or value never
//! contains it. Keys are qualified names (`role`, `osiriscare.net/role`) and values follow the label value
//! rules, which allow the empty value (`tier=` selects objects whose `tier` label is empty). `!=` and
//! `notin` also select objects that do not carry the key at all, as in Kubernetes.
//!
//! One deliberate superset: `in` and `notin` are accepted as keys (`in=x`), because they are valid label
//! keys and the position of a word tells its role unambiguously.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// Parses the string form of a label selector; the empty (or all-whitespace) string selects everything.
///
/// The result is normalised: `==` becomes `=`, requirements are ordered by key (keeping the written order
/// among requirements on the same key) and value lists are sorted and deduplicated, so two selectors that
/// differ only in those ways compare equal and print the same.
pub fn parse(input: &str) -> Result<Selector, SelectorError> {
    Parser::new(input).selector()
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
pub fn validate_key(key: &str) -> Result<(), LabelError> {
    let (prefix, name, name_start) = match key.find('/') {
        Some(slash) => (Some(&key[..slash]), &key[slash + 1..], slash + 1),
        None => (None, key, 0),
    };
    if let Some(extra) = name.find('/') {
        return Err(LabelError::at(
            name_start + extra,
            LabelErrorKind::ExtraSlash,
        ));
    }
    if let Some(prefix) = prefix {
        check_prefix(prefix)?;
    }
    check_name(name, name_start, LabelPart::KeyName)
}

/// Checks a label value: empty, or at most 63 letters, digits, `-`, `_` and `.` that start and end with a
/// letter or digit.
pub fn validate_value(value: &str) -> Result<(), LabelError> {
    if value.is_empty() {
        return Ok(());
    }
    check_name(value, 0, LabelPart::Value)
}

/// A parsed label selector: requirements that must all hold. The empty selector selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    /// The conjunction, ordered by key so that the printed form is canonical.
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that selects every object (the empty string).
    pub fn everything() -> Self {
        Self::default()
    }

    /// Whether this selector has no requirement, and so selects every object.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, ordered by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether an object carrying `labels` is selected: every requirement holds.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
    /// Prints the canonical string form, which [`parse`] reads back to an equal selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Selectors travel as their string form, in specs as on the wire, so that manifests stay readable.
impl serde::Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Selector {
    fn schema_name() -> Cow<'static, str> {
        "LabelSelector".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A Kubernetes label selector in string form, e.g. `role=db,tier notin (test)`; \
                            empty selects everything.",
        })
    }
}

/// One condition on one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key the condition is about; always a valid qualified name.
    key: String,
    /// What the key's presence or value must be.
    operator: Operator,
}

impl Requirement {
    /// The label key this requirement tests.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The condition on that key.
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// Whether `labels` satisfy this requirement. A missing key satisfies only `!key`, `!=` and `notin`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match &self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals(wanted) => value == Some(wanted),
            Operator::NotEquals(unwanted) => value != Some(unwanted),
            Operator::In(set) => value.is_some_and(|v| set.contains(v)),
            Operator::NotIn(set) => !value.is_some_and(|v| set.contains(v)),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match &self.operator {
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::Equals(value) => write!(f, "{key}={value}"),
            Operator::NotEquals(value) => write!(f, "{key}!={value}"),
            Operator::In(set) => write!(f, "{key} in ({})", ValueList(set)),
            Operator::NotIn(set) => write!(f, "{key} notin ({})", ValueList(set)),
        }
    }
}

/// The condition a [`Requirement`] puts on its key. Values are valid label values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// `key`: the label is present, whatever its value.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key=value` or `key==value`: the label is present with this value.
    Equals(String),
    /// `key!=value`: the label is absent or has another value.
    NotEquals(String),
    /// `key in (a,b)`: the label is present with one of these values (never empty).
    In(BTreeSet<String>),
    /// `key notin (a,b)`: the label is absent or has none of these values (never empty).
    NotIn(BTreeSet<String>),
}

/// A selector that does not parse: where, what was expected there, and the input to show it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    /// The selector as given, echoed in the message with a caret under the offending character.
    pub input: String,
    /// Byte offset of the offending character (the input's length when the input ended too early).
    pub position: usize,
    /// What went wrong at that position.
    pub kind: SelectorErrorKind,
}

impl std::error::Error for SelectorError {}

impl fmt::Display for SelectorError {
    /// Three lines: the message with the position, the input, and a caret under the offending character.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let column = caret_column(&self.input, self.position);
        write!(
            f,
            "{} at position {}\n{}\n{:>width$}",
            self.kind,
            self.position,
            echo(&self.input),
            "^",
            width = column + 1
        )
    }
}

/// What a [`SelectorError`] found wrong; each message says what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorErrorKind {
    /// A requirement must start with a key or with `!` and a key.
    #[error("expected a label key or \"!\" and a label key")]
    ExpectedKey,
    /// A key that is neither alone nor followed by an operator.
    #[error("expected \"=\", \"!=\", \"in\" or \"notin\" after key {key:?}")]
    ExpectedOperator {
        /// The key just read.
        key: String,
    },
    /// `=`, `==` or `!=` followed by something that cannot be a value, such as `(`.
    #[error("expected a label value after {operator:?} for key {key:?}")]
    ExpectedValue {
        /// The key of the requirement.
        key: String,
        /// The operator just read.
        operator: &'static str,
    },
    /// `in` or `notin` not followed by `(`.
    #[error("expected \"(\" to open the value list after {operator:?} for key {key:?}")]
    ExpectedOpenParen {
        /// The key of the requirement.
        key: String,
        /// `in` or `notin`.
        operator: &'static str,
    },
    /// `in ()` or `notin ()`: Kubernetes requires at least one value.
    #[error(
        "expected at least one value between \"(\" and \")\" after {operator:?} for key {key:?}"
    )]
    EmptyValueList {
        /// The key of the requirement.
        key: String,
        /// `in` or `notin`.
        operator: &'static str,
    },
    /// Something other than a value, `,` or `)` inside a value list.
    #[error("expected a label value, \",\" or \")\" in the value list of key {key:?}")]
    ExpectedListValue {
        /// The key of the requirement.
        key: String,
    },
    /// A value in a list followed by something other than `,` or `)`.
    #[error("expected \",\" or \")\" after a value in the value list of key {key:?}")]
    ExpectedCommaOrClose {
        /// The key of the requirement.
        key: String,
    },
    /// A complete requirement followed by something other than `,` or the end.
    #[error("expected \",\" or the end of the selector after requirement \"{requirement}\"")]
    ExpectedComma {
        /// The requirement just read, in canonical form.
        requirement: String,
    },
    /// A key that breaks the label key rules.
    #[error("invalid label key {key:?}: {reason}")]
    InvalidKey {
        /// The key as written.
        key: String,
        /// The rule it breaks.
        reason: LabelErrorKind,
    },
    /// A value that breaks the label value rules.
    #[error("invalid label value {value:?}: {reason}")]
    InvalidValue {
        /// The value as written.
        value: String,
        /// The rule it breaks.
        reason: LabelErrorKind,
    },
}

/// A label key or value that breaks the Kubernetes syntax rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct LabelError {
    /// Byte offset, inside the key or value, of the offending character.
    pub offset: usize,
    /// The rule that is broken.
    pub kind: LabelErrorKind,
}

/// The label syntax rule a key or value breaks; each message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelErrorKind {
    /// A key name (or a key prefix before `/`) that is empty.
    #[error("the {part} must not be empty")]
    Empty {
        /// Which part is empty.
        part: LabelPart,
    },
    /// A part longer than Kubernetes allows.
    #[error("the {part} must be at most {max} characters, not {len}")]
    TooLong {
        /// Which part is too long.
        part: LabelPart,
        /// Its limit: 63 for names and values, 253 for prefixes.
        max: usize,
        /// Its actual length.
        len: usize,
    },
    /// A character that the part may not contain.
    #[error("{found:?} is not allowed in the {part}; it may contain only {}", part.allowed())]
    InvalidChar {
        /// The part containing the character.
        part: LabelPart,
        /// The character.
        found: char,
    },
    /// A name or value whose first or last character is `-`, `_` or `.`.
    #[error("the {part} must start and end with a letter or digit")]
    BadEdge {
        /// The part with the bad edge.
        part: LabelPart,
    },
    /// A prefix segment between dots that is empty or starts or ends with `-`.
    #[error(
        "each dot-separated segment of the key prefix must start and end with a lowercase letter or digit"
    )]
    BadPrefixSegment,
    /// A second `/` in a key.
    #[error("a key may contain at most one \"/\", between its DNS prefix and its name")]
    ExtraSlash,
}

/// The part of a label that a [`LabelErrorKind`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelPart {
    /// The DNS subdomain before `/` in a key, such as `osiriscare.net`.
    KeyPrefix,
    /// The name of a key, after the optional prefix.
    KeyName,
    /// A label value.
    Value,
}

impl LabelPart {
    /// The characters the part may contain, as a phrase for error messages.
    fn allowed(self) -> &'static str {
        match self {
            LabelPart::KeyPrefix => "lowercase letters, digits, '-' and '.'",
            LabelPart::KeyName | LabelPart::Value => "letters, digits, '-', '_' and '.'",
        }
    }
}

impl fmt::Display for LabelPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelPart::KeyPrefix => "key prefix",
            LabelPart::KeyName => "key name",
            LabelPart::Value => "value",
        })
    }
}

impl LabelError {
    fn at(offset: usize, kind: LabelErrorKind) -> Self {
        Self { offset, kind }
    }
}

/// Longest key name or value, in characters.
const MAX_NAME: usize = 63;
/// Longest key prefix (a DNS subdomain), in characters.
const MAX_PREFIX: usize = 253;

/// Checks a key name or a non-empty value that starts at `base` inside the text the offsets refer to.
fn check_name(name: &str, base: usize, part: LabelPart) -> Result<(), LabelError> {
    if name.is_empty() {
        return Err(LabelError::at(base, LabelErrorKind::Empty { part }));
    }
    if let Some((i, found)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(LabelError::at(
            base + i,
            LabelErrorKind::InvalidChar { part, found },
        ));
    }
    // Only ASCII is left, so byte offsets and character counts agree from here on.
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() {
        return Err(LabelError::at(base, LabelErrorKind::BadEdge { part }));
    }
    if !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err(LabelError::at(
            base + bytes.len() - 1,
            LabelErrorKind::BadEdge { part },
        ));
    }
    if name.len() > MAX_NAME {
        let kind = LabelErrorKind::TooLong {
            part,
            max: MAX_NAME,
            len: name.len(),
        };
        return Err(LabelError::at(base + MAX_NAME, kind));
    }
    Ok(())
}

/// Checks a key prefix, a DNS-1123 subdomain, which always starts at offset 0 of its key.
fn check_prefix(prefix: &str) -> Result<(), LabelError> {
    let part = LabelPart::KeyPrefix;
    if prefix.is_empty() {
        return Err(LabelError::at(0, LabelErrorKind::Empty { part }));
    }
    if let Some((i, found)) = prefix
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')))
    {
        return Err(LabelError::at(
            i,
            LabelErrorKind::InvalidChar { part, found },
        ));
    }
    let mut start = 0;
    for segment in prefix.split('.') {
        let bytes = segment.as_bytes();
        if bytes.first() == Some(&b'-') || segment.is_empty() {
            return Err(LabelError::at(start, LabelErrorKind::BadPrefixSegment));
        }
        if bytes.last() == Some(&b'-') {
            return Err(LabelError::at(
                start + bytes.len() - 1,
                LabelErrorKind::BadPrefixSegment,
            ));
        }
        start += segment.len() + 1;
    }
    if prefix.len() > MAX_PREFIX {
        let kind = LabelErrorKind::TooLong {
            part,
            max: MAX_PREFIX,
            len: prefix.len(),
        };
        return Err(LabelError::at(MAX_PREFIX, kind));
    }
    Ok(())
}

/// Prints a value list for `in` / `notin`. The list holding only the empty value prints as `,` because
/// `()` would read back as an (invalid) empty list.
struct ValueList<'a>(&'a BTreeSet<String>);

impl fmt::Display for ValueList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() == 1 && self.0.contains("") {
            return f.write_str(",");
        }
        for (i, value) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(value)?;
        }
        Ok(())
    }
}

/// The input as shown above the caret: whitespace control characters become spaces so that the caret,
/// placed by counting characters, lines up.
fn echo(input: &str) -> String {
    input
        .chars()
        .map(|c| if is_space(c) { ' ' } else { c })
        .collect()
}

/// The column (in characters) under which the caret for byte `position` goes.
fn caret_column(input: &str, position: usize) -> usize {
    input
        .get(..position)
        .map_or(position, |before| before.chars().count())
}

/// The whitespace that Kubernetes' selector lexer skips between tokens.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// One lexical token of a selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// A run of characters that are neither whitespace nor one of `!=(),`: a key, value or keyword.
    Word(&'a str),
    /// `!`
    Not,
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// `(`
    Open,
    /// `)`
    Close,
    /// `,`
    Comma,
    /// The end of the input.
    End,
}

/// A recursive-descent parser with one token of lookahead.
struct Parser<'a> {
    /// The whole selector, for slicing words and for error messages.
    input: &'a str,
    /// Byte offset where lexing resumes after `peeked`.
    cursor: usize,
    /// The next token and its byte offset.
    peeked: (Token<'a>, usize),
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        let mut parser = Parser {
            input,
            cursor: 0,
            peeked: (Token::End, 0),
        };
        parser.peeked = parser.lex();
        parser
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peeked.0 != Token::End {
            loop {
                let requirement = self.requirement()?;
                match self.bump() {
                    (Token::Comma, _) => requirements.push(requirement),
                    (Token::End, _) => {
                        requirements.push(requirement);
                        break;
                    }
                    (_, at) => {
                        let requirement = requirement.to_string();
                        return Err(
                            self.error(at, SelectorErrorKind::ExpectedComma { requirement })
                        );
                    }
                }
            }
        }
        // A stable sort keeps several requirements on one key in their written order.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector { requirements })
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peeked.0 == Token::Not {
            self.bump();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
            });
        }
        let key = self.key()?;
        let operator = match self.peeked.0 {
            Token::Comma | Token::End => Operator::Exists,
            Token::Equals | Token::DoubleEquals => Operator::Equals(self.exact_value(&key, "=")?),
            Token::NotEquals => Operator::NotEquals(self.exact_value(&key, "!=")?),
            Token::Word("in") => Operator::In(self.value_list(&key, "in")?),
            Token::Word("notin") => Operator::NotIn(self.value_list(&key, "notin")?),
            _ => return Err(self.error(self.peeked.1, SelectorErrorKind::ExpectedOperator { key })),
        };
        Ok(Requirement { key, operator })
    }

    /// Reads and validates a key.
    fn key(&mut self) -> Result<String, SelectorError> {
        match self.bump() {
            (Token::Word(key), at) => match validate_key(key) {
                Ok(()) => Ok(key.to_owned()),
                Err(LabelError { offset, kind }) => {
                    let kind = SelectorErrorKind::InvalidKey {
                        key: key.to_owned(),
                        reason: kind,
                    };
                    Err(self.error(at + offset, kind))
                }
            },
            (_, at) => Err(self.error(at, SelectorErrorKind::ExpectedKey)),
        }
    }

    /// Reads the operator `=`, `==` or `!=` (already peeked) and the value after it, which is empty when
    /// a `,` or the end follows.
    fn exact_value(&mut self, key: &str, operator: &'static str) -> Result<String, SelectorError> {
        self.bump();
        match self.peeked {
            (Token::Comma | Token::End, _) => Ok(String::new()),
            (Token::Word(value), at) => {
                self.bump();
                self.value(value, at)
            }
            (_, at) => Err(self.error(
                at,
                SelectorErrorKind::ExpectedValue {
                    key: key.to_owned(),
                    operator,
                },
            )),
        }
    }

    /// Reads the keyword `in` or `notin` (already peeked) and the parenthesised, non-empty value list after
    /// it. An item may be empty, as in Kubernetes: `(a,)` holds `a` and the empty value.
    fn value_list(
        &mut self,
        key: &str,
        operator: &'static str,
    ) -> Result<BTreeSet<String>, SelectorError> {
        self.bump();
        let key = || key.to_owned();
        match self.bump() {
            (Token::Open, _) => {}
            (_, at) => {
                return Err(self.error(
                    at,
                    SelectorErrorKind::ExpectedOpenParen {
                        key: key(),
                        operator,
                    },
                ));
            }
        }
        if let (Token::Close, at) = self.peeked {
            return Err(self.error(
                at,
                SelectorErrorKind::EmptyValueList {
                    key: key(),
                    operator,
                },
            ));
        }
        let mut values = BTreeSet::new();
        loop {
            let value = match self.peeked {
                (Token::Word(value), at) => {
                    self.bump();
                    self.value(value, at)?
                }
                (Token::Comma | Token::Close, _) => String::new(),
                (_, at) => {
                    return Err(self.error(at, SelectorErrorKind::ExpectedListValue { key: key() }));
                }
            };
            values.insert(value);
            match self.bump() {
                (Token::Comma, _) => {}
                (Token::Close, _) => return Ok(values),
                (_, at) => {
                    return Err(
                        self.error(at, SelectorErrorKind::ExpectedCommaOrClose { key: key() })
                    );
                }
            }
        }
    }

    /// Validates a value word that starts at byte `at`.
    fn value(&self, value: &str, at: usize) -> Result<String, SelectorError> {
        match validate_value(value) {
            Ok(()) => Ok(value.to_owned()),
            Err(LabelError { offset, kind }) => {
                let kind = SelectorErrorKind::InvalidValue {
                    value: value.to_owned(),
                    reason: kind,
                };
                Err(self.error(at + offset, kind))
            }
        }
    }

    /// Returns the peeked token and its offset, and lexes the next one.
    fn bump(&mut self) -> (Token<'a>, usize) {
        let current = self.peeked;
        self.peeked = self.lex();
        current
    }

    /// Lexes the token at the cursor, skipping whitespace before it.
    fn lex(&mut self) -> (Token<'a>, usize) {
        let rest = &self.input[self.cursor..];
        let start = self.cursor + (rest.len() - rest.trim_start_matches(is_space).len());
        let rest = &self.input[start..];
        let (token, len) = match rest.as_bytes() {
            [] => (Token::End, 0),
            [b'!', b'=', ..] => (Token::NotEquals, 2),
            [b'=', b'=', ..] => (Token::DoubleEquals, 2),
            [b'!', ..] => (Token::Not, 1),
            [b'=', ..] => (Token::Equals, 1),
            [b'(', ..] => (Token::Open, 1),
            [b')', ..] => (Token::Close, 1),
            [b',', ..] => (Token::Comma, 1),
            _ => {
                let len = rest
                    .find(|c: char| is_space(c) || matches!(c, '!' | '=' | '(' | ')' | ','))
                    .unwrap_or(rest.len());
                (Token::Word(&rest[..len]), len)
            }
        };
        self.cursor = start + len;
        (token, start)
    }

    fn error(&self, position: usize, kind: SelectorErrorKind) -> SelectorError {
        SelectorError {
            input: self.input.to_owned(),
            position,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Label pairs as written in a table row.
    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn labels(pairs: Pairs) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matches_table() {
        let db = &[
            ("role", "db"),
            ("tier", "prod"),
            ("osiriscare.net/site", "clinic-1"),
        ][..];
        let untiered = &[("role", "web")][..];
        let empty_tier = &[("role", "db"), ("tier", "")][..];
        #[rustfmt::skip]
        let cases: &[(&str, Pairs, bool)] = &[
            ("", &[], true),
            ("", db, true),
            ("   ", db, true),
            ("role=db", db, true),
            ("role==db", db, true),
            ("role=web", db, false),
            ("role=db", &[], false),
            ("role!=web", db, true),
            ("role!=db", db, false),
            ("tier!=prod", untiered, true),
            ("role in (db,web)", db, true),
            ("role in (web,cache)", db, false),
            ("tier in (prod)", untiered, false),
            ("role notin (web)", db, true),
            ("role notin (db,web)", db, false),
            ("tier notin (prod)", untiered, true),
            ("tier", db, true),
            ("tier", untiered, false),
            ("!tier", untiered, true),
            ("!tier", db, false),
            ("tier=", empty_tier, true),
            ("tier=", db, false),
            ("tier=", untiered, false),
            ("tier!=", db, true),
            ("tier!=", empty_tier, false),
            ("tier in (prod,)", empty_tier, true),
            ("tier in (,)", empty_tier, true),
            ("tier in (,)", db, false),
            ("role=db,tier=prod", db, true),
            ("role=db,tier=test", db, false),
            ("role=db,role=web", db, false),
            ("role=db,!tier", db, false),
            ("role=db,!tier", &[("role", "db")], true),
            ("osiriscare.net/site=clinic-1", db, true),
            ("osiriscare.net/site=clinic-2", db, false),
            (" role = db , tier in ( prod , test ) ", db, true),
            ("\trole\n=\rdb", db, true),
            ("! tier", untiered, true),
            ("role in (db),tier notin (test),osiriscare.net/site", db, true),
            ("role in (db),tier notin (prod),osiriscare.net/site", db, false),
            ("in=x", &[("in", "x")], true),
            ("notin notin (in)", &[("notin", "out")], true),
            ("k=in", &[("k", "in")], true),
            ("Role=DB", &[("Role", "DB")], true),
            ("Role=DB", &[("role", "db")], false),
            ("a.b_c-d=e.f_g-h", &[("a.b_c-d", "e.f_g-h")], true),
        ];
        for (selector, pairs, expected) in cases {
            let parsed =
                parse(selector).unwrap_or_else(|e| panic!("{selector:?} should parse:\n{e}"));
            assert_eq!(
                parsed.matches(&labels(pairs)),
                *expected,
                "{selector:?} against {pairs:?}"
            );
        }
    }

    #[test]
    fn errors_table() {
        let long = "a".repeat(64);
        let long_key = format!("{long}=x");
        let long_value = format!("k={long}");
        let long_prefix = format!("{}/k", "a".repeat(254));
        #[rustfmt::skip]
        let cases: &[(&str, usize, &str)] = &[
            ("role foo", 5, r#"expected "=", "!=", "in" or "notin" after key "role""#),
            ("role (a)", 5, r#"after key "role""#),
            ("role=db tier=x", 8, r#"expected "," or the end of the selector after requirement "role=db""#),
            ("!role=db", 5, r#"after requirement "!role""#),
            ("role=db,", 8, "expected a label key"),
            (",role=db", 0, "expected a label key"),
            ("role=db,,tier", 8, "expected a label key"),
            ("!", 1, "expected a label key"),
            ("!=db", 0, "expected a label key"),
            ("=db", 0, "expected a label key"),
            ("(a)", 0, "expected a label key"),
            ("role=(db)", 5, r#"expected a label value after "=" for key "role""#),
            ("role!=!", 6, r#"after "!=" for key "role""#),
            ("role in db", 8, r#"expected "(" to open the value list after "in" for key "role""#),
            ("role notin", 10, r#"after "notin" for key "role""#),
            ("role in ()", 9, "expected at least one value"),
            ("role notin ( )", 13, r#"after "notin""#),
            ("role in (a", 10, r#"expected "," or ")" after a value in the value list of key "role""#),
            ("role in (a b)", 11, r#"expected "," or ")""#),
            ("role in (a,=)", 11, r#"expected a label value, "," or ")" in the value list of key "role""#),
            ("-role=db", 0, "the key name must start and end with a letter or digit"),
            ("role-=db", 4, "must start and end with a letter or digit"),
            ("ro$le=db", 2, r#"'$' is not allowed in the key name; it may contain only letters, digits, '-', '_' and '.'"#),
            ("rôle=db", 1, "'ô' is not allowed in the key name"),
            ("a/b/c=x", 3, r#"a key may contain at most one "/""#),
            ("/role=db", 0, "the key prefix must not be empty"),
            ("osiriscare.net/=db", 15, "the key name must not be empty"),
            ("OsirisCare.net/role=db", 0, "'O' is not allowed in the key prefix; it may contain only lowercase letters"),
            ("osiriscare..net/role", 11, "each dot-separated segment of the key prefix"),
            ("osiriscare-.net/role", 10, "each dot-separated segment"),
            ("-osiriscare.net/role", 0, "each dot-separated segment"),
            ("osiriscare.net_/role", 14, "'_' is not allowed in the key prefix"),
            (&long_key, 63, "the key name must be at most 63 characters, not 64"),
            (&long_value, 65, "the value must be at most 63 characters, not 64"),
            (&long_prefix, 253, "the key prefix must be at most 253 characters, not 254"),
            ("role=-db", 5, r#"invalid label value "-db": the value must start and end with a letter or digit"#),
            ("role in (db,w@b)", 13, r#"invalid label value "w@b": '@' is not allowed in the value"#),
            ("role>3", 4, "'>' is not allowed in the key name"),
        ];
        for (input, position, fragment) in cases {
            let error = parse(input).expect_err(input);
            assert_eq!(error.position, *position, "position for {input:?}: {error}");
            assert!(
                error.to_string().contains(fragment),
                "{input:?}: {error:?} lacks {fragment:?}"
            );
            assert!(
                error
                    .to_string()
                    .contains(&format!("at position {position}")),
                "{error}"
            );
        }
    }

    #[test]
    fn error_display_puts_a_caret_under_the_offending_character() {
        let error = parse("role foo").unwrap_err();
        assert_eq!(
            error.to_string(),
            "expected \"=\", \"!=\", \"in\" or \"notin\" after key \"role\" at position 5\nrole foo\n     ^"
        );
        // Tabs and newlines are echoed as spaces so that the caret stays aligned.
        let error = parse("role\tfoo").unwrap_err();
        assert!(error.to_string().ends_with("\nrole foo\n     ^"), "{error}");
        let error = parse("rôle").unwrap_err();
        assert!(error.to_string().ends_with("\nrôle\n ^"), "{error}");
        // An input that ends too early gets the caret just past its end.
        let error = parse("role in").unwrap_err();
        assert!(
            error.to_string().ends_with("\nrole in\n       ^"),
            "{error}"
        );
    }

    #[test]
    fn canonical_form_table() {
        #[rustfmt::skip]
        let cases = [
            ("", ""),
            ("role==db", "role=db"),
            ("  tier  in ( b , a , b ) , role ", "role,tier in (a,b)"),
            ("z,!y,x!=1,w notin (q)", "w notin (q),x!=1,!y,z"),
            ("b=2,a=1,b=1", "a=1,b=2,b=1"),
            ("tier=", "tier="),
            ("tier in (,)", "tier in (,)"),
            ("tier in (a,)", "tier in (,a)"),
        ];
        for (input, canonical) in cases {
            let selector = parse(input).unwrap();
            assert_eq!(selector.to_string(), canonical, "{input:?}");
            assert_eq!(
                parse(canonical).unwrap(),
                selector,
                "{canonical:?} reads back"
            );
        }
    }

    #[test]
    fn everything_is_the_empty_selector() {
        assert!(Selector::everything().is_empty());
        assert_eq!(parse(" \t").unwrap(), Selector::everything());
        assert!(!parse("a").unwrap().is_empty());
        assert_eq!(Selector::everything().to_string(), "");
    }

    #[test]
    fn serde_uses_the_string_form_and_rejects_bad_selectors() {
        let selector: Selector = serde_json::from_str(r#""role == db, tier""#).unwrap();
        assert_eq!(
            serde_json::to_string(&selector).unwrap(),
            r#""role=db,tier""#
        );
        let error = serde_json::from_str::<Selector>(r#""role foo""#).unwrap_err();
        assert!(error.to_string().contains("at position 5"), "{error}");
    }

    #[test]
    fn validate_key_and_value_accept_kubernetes_examples() {
        for key in [
            "a",
            "app.kubernetes.io/name",
            "osiriscare.net/role",
            "A_b.C-9",
            &"k".repeat(63),
        ] {
            assert_eq!(validate_key(key), Ok(()), "{key:?}");
        }
        for value in ["", "a", "v1.2_3-x", &"v".repeat(63)] {
            assert_eq!(validate_value(value), Ok(()), "{value:?}");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z0-9]", "[a-zA-Z0-9][-a-zA-Z0-9_.]{0,20}[a-zA-Z0-9]"]
    }

    fn key() -> impl Strategy<Value = String> {
        (
            proptest::option::of("[a-z0-9]([-a-z0-9]{0,5}[a-z0-9])?(\\.[a-z0-9]{1,6}){0,2}"),
            name(),
        )
            .prop_map(|(prefix, name)| prefix.map_or(name.clone(), |p| format!("{p}/{name}")))
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), name()]
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        let values = || proptest::collection::btree_set(value(), 1..4);
        let operator = prop_oneof![
            Just(Operator::Exists),
            Just(Operator::DoesNotExist),
            value().prop_map(Operator::Equals),
            value().prop_map(Operator::NotEquals),
            values().prop_map(Operator::In),
            values().prop_map(Operator::NotIn),
        ];
        (key(), operator).prop_map(|(key, operator)| Requirement { key, operator })
    }

    proptest! {
        #[test]
        fn display_round_trips(mut requirements in proptest::collection::vec(requirement(), 0..5)) {
            requirements.sort_by(|a, b| a.key.cmp(&b.key));
            let selector = Selector { requirements };
            let text = selector.to_string();
            prop_assert_eq!(parse(&text), Ok(selector), "{}", text);
        }

        /// Whatever parses prints to a form that parses back to the same selector; whatever fails points
        /// inside (or just past) the input, on a character boundary.
        #[test]
        fn arbitrary_input_parses_canonically_or_points_at_a_character(input in "[ a-c/.=!(),in\t-]{0,24}") {
            match parse(&input) {
                Ok(selector) => prop_assert_eq!(parse(&selector.to_string()), Ok(selector)),
                Err(error) => {
                    prop_assert!(error.position <= input.len());
                    prop_assert!(input.is_char_boundary(error.position));
                }
            }
        }
    }
}
