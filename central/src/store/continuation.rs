//! List continue tokens: opaque to clients, they carry the last key a page returned and the
//! list they belong to, so a token pasted into another list is refused instead of misread.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Where the next page of a list starts, and which list that is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Continuation {
    /// The listed resource.
    #[serde(rename = "r")]
    pub resource: String,
    /// The namespace filter of the list (`None`: all namespaces).
    #[serde(rename = "f")]
    pub filter: Option<String>,
    /// Namespace of the last object returned.
    #[serde(rename = "ns")]
    pub namespace: String,
    /// Name of the last object returned.
    #[serde(rename = "n")]
    pub name: String,
}

impl Continuation {
    /// The token a client sees: base64url of the JSON form, so that it is URL-safe.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a struct of strings always serializes");
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a token back and checks that it belongs to the list of `resource` in `filter`.
    pub fn decode(token: &str, resource: &str, filter: Option<&str>) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidContinue { reason };
        let json = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|error| invalid(format!("not base64url ({error})")))?;
        let continuation: Self = serde_json::from_slice(&json)
            .map_err(|error| invalid(format!("not a token this server issued ({error})")))?;
        if continuation.resource != resource || continuation.filter.as_deref() != filter {
            return Err(invalid(format!(
                "it continues a list of {} in {}, not of {resource} in {}",
                continuation.resource,
                describe(continuation.filter.as_deref()),
                describe(filter),
            )));
        }
        Ok(continuation)
    }
}

/// A namespace filter in words, for error messages.
fn describe(filter: Option<&str>) -> String {
    match filter {
        Some(namespace) => format!("namespace {namespace:?}"),
        None => "all namespaces".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(resource: &str, filter: Option<&str>) -> Continuation {
        Continuation {
            resource: resource.to_owned(),
            filter: filter.map(str::to_owned),
            namespace: "alpha".to_owned(),
            name: "web-1".to_owned(),
        }
    }

    #[test]
    fn a_token_decodes_to_itself_for_the_same_list() {
        for filter in [None, Some("alpha"), Some("")] {
            let original = token("hosts", filter);
            let encoded = original.encode();
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{encoded} is not URL-safe"
            );
            assert_eq!(
                Continuation::decode(&encoded, "hosts", filter).unwrap(),
                original
            );
        }
    }

    #[test]
    fn bad_or_foreign_tokens_are_invalid() {
        let hosts_in_alpha = token("hosts", Some("alpha")).encode();
        let cases: [(&str, &str, Option<&str>, &str); 6] = [
            ("%%%", "hosts", None, "not base64url"),
            (
                &URL_SAFE_NO_PAD.encode("{}"),
                "hosts",
                None,
                "not a token this server issued",
            ),
            (
                &URL_SAFE_NO_PAD.encode("[1,2]"),
                "hosts",
                None,
                "not a token",
            ),
            (&hosts_in_alpha, "sites", Some("alpha"), "not of sites"),
            (&hosts_in_alpha, "hosts", Some("beta"), "namespace \"beta\""),
            (&hosts_in_alpha, "hosts", None, "all namespaces"),
        ];
        for (token, resource, filter, expected) in cases {
            match Continuation::decode(token, resource, filter) {
                Err(StoreError::InvalidContinue { reason }) => {
                    assert!(reason.contains(expected), "{reason:?} lacks {expected:?}")
                }
                other => panic!("{token} for {resource} {filter:?}: {other:?}"),
            }
        }
    }
}
