//! Reading a request: which resource a path addresses, the query parameters, which
//! representation `Accept` asks for, and the JSON body.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use osc_crds::kinds::DecodeError;
use osc_crds::{AnyObject, Kind};
use serde_json::Value;

use super::error::ApiError;
use crate::store::ObjectKey;

/// What a path under `/apis/osiriscare.net/v1alpha1/` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// The kind of the resource.
    pub kind: Kind,
    /// The site from `namespaces/{site}/…`; `None` for cluster-scoped kinds and for the
    /// all-namespaces collection of a namespaced kind.
    pub namespace: Option<String>,
    /// The object's name; `None` for the collection.
    pub name: Option<String>,
    /// Whether the path ends in `/status` (the status subresource).
    pub status: bool,
}

/// The query parameters of a request, decoded, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

/// The representation a read answers with, from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The object (or list) itself, as JSON.
    Object,
    /// A `meta.k8s.io/v1` `Table` with the kind's printer columns (`kubectl get`).
    Table,
    /// `meta.k8s.io/v1` `PartialObjectMetadata` (or `…List`): the metadata only.
    PartialObjectMetadata,
}

/// The only request body type the resource API reads.
pub const JSON: &str = "application/json";

impl ResourcePath {
    /// Parses the part of the path after the group-version prefix, e.g. `sites/alpha/status`
    /// or `namespaces/alpha/hosts`. A kind addressed in the wrong scope (a Host without its
    /// namespace, a Site inside one) is a path that does not exist, as in Kubernetes.
    pub fn parse(rest: &str) -> Result<Self, ApiError> {
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return Err(ApiError::NoSuchPath);
        }
        let (namespace, tail) = match segments.as_slice() {
            ["namespaces", namespace, tail @ ..] if !tail.is_empty() => {
                (Some((*namespace).to_owned()), tail)
            }
            tail => (None, tail),
        };
        let (plural, name, status) = match tail {
            [plural] => (*plural, None, false),
            [plural, name] => (*plural, Some((*name).to_owned()), false),
            [plural, name, "status"] => (*plural, Some((*name).to_owned()), true),
            _ => return Err(ApiError::NoSuchPath),
        };
        let kind = Kind::from_plural(plural).ok_or(ApiError::NoSuchPath)?;
        let scoped_right = match (&namespace, &name) {
            (Some(_), _) => kind.namespaced(),
            // The all-namespaces list of a namespaced kind has no name.
            (None, Some(_)) => !kind.namespaced(),
            (None, None) => true,
        };
        if !scoped_right {
            return Err(ApiError::NoSuchPath);
        }
        Ok(Self {
            kind,
            namespace,
            name,
            status,
        })
    }

    /// The object's name, or a 405 for a collection path (`action` names the verb).
    pub fn require_name(&self, action: &'static str) -> Result<&str, ApiError> {
        self.name.as_deref().ok_or(ApiError::MethodNotAllowed {
            kind: self.kind,
            action,
        })
    }

    /// The store key of the object named `name` at this path's kind and namespace.
    pub fn key_for(&self, name: &str) -> ObjectKey {
        ObjectKey::namespaced(
            self.kind.plural(),
            self.namespace.clone().unwrap_or_default(),
            name,
        )
    }
}

impl Query {
    /// Decodes a raw query string (`a=1&b=x%20y`); a missing query is empty.
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The names of the parameters given, in order (repeats included).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }

    /// The first value of `name`, if given; an empty value counts as not given, as in
    /// Kubernetes (`?labelSelector=` selects everything).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// A boolean parameter as Go's `strconv.ParseBool` reads it; absent is `false`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(ApiError::bad_request(format!(
                "query parameter {name}={other:?} is not a boolean; use true or false"
            ))),
        }
    }

    /// Whether `?dryRun=All` asks for a write that is checked but not stored; any other
    /// value is refused, as the API server does.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }
}

impl Representation {
    /// Reads `Accept` (a comma-separated list, best first) and picks the first representation
    /// this server produces. A missing header, `*/*` and plain `application/json` get the
    /// object; only `Table` and `PartialObjectMetadata` of `meta.k8s.io/v1` are offered besides.
    pub fn negotiate(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(accept) = headers.get(ACCEPT) else {
            return Ok(Self::Object);
        };
        let accept = accept.to_str().unwrap_or_default();
        if accept.trim().is_empty() {
            return Ok(Self::Object);
        }
        accept
            .split(',')
            .find_map(Self::of_media_range)
            .ok_or_else(|| ApiError::NotAcceptable {
                accept: accept.to_owned(),
                produced: "application/json, optionally as=Table or \
                           as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            })
    }

    /// The representation one media range asks for, if this server produces it.
    fn of_media_range(range: &str) -> Option<Self> {
        let mut parts = range.split(';').map(str::trim);
        let media_type = parts.next()?.to_ascii_lowercase();
        if !matches!(
            media_type.as_str(),
            "application/json" | "application/*" | "*/*"
        ) {
            return None;
        }
        let (mut as_, mut group, mut version) = (None, None, None);
        for parameter in parts {
            match parameter.split_once('=') {
                Some(("as", value)) => as_ = Some(value),
                Some(("g", value)) => group = Some(value),
                Some(("v", value)) => version = Some(value),
                _ => {}
            }
        }
        match as_ {
            None => Some(Self::Object),
            Some(_) if (group, version) != (Some("meta.k8s.io"), Some("v1")) => None,
            Some("Table") => Some(Self::Table),
            Some("PartialObjectMetadata" | "PartialObjectMetadataList") => {
                Some(Self::PartialObjectMetadata)
            }
            Some(_) => None,
        }
    }
}

/// Checks that the body is JSON by its `Content-Type` (415 otherwise) and parses it (400 with
/// the line and column of the first syntax error).
pub fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or("(not text)"))
        .unwrap_or("none");
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case(JSON) {
        return Err(ApiError::UnsupportedMediaType {
            content_type: content_type.to_owned(),
            accepted: JSON,
        });
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!("the request body is not valid JSON: {error}"))
    })
}

/// Decodes the JSON body of one of central's own endpoints as `T` (`what` names it in the
/// message); a problem is a 400 naming the field path, e.g. `role.partners: invalid type`.
pub fn json_request<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    let mut decoder = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut decoder).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        ApiError::bad_request(format!(
            "the request body is not {what}{at}: {}",
            error.inner()
        ))
    })
}

/// Decodes `value` as an object of `kind`: apiVersion and kind must name it, and every field
/// must be one the kind has, with the right type (400 naming the field path otherwise).
pub fn decode_object(kind: Kind, value: Value) -> Result<AnyObject, ApiError> {
    // The kind is compared first, so that an object sent to the wrong resource is told so
    // rather than that its spec has fields of another kind.
    let named = value.get("kind").and_then(Value::as_str);
    if let Some(other) = named
        .and_then(Kind::from_kind_str)
        .filter(|other| *other != kind)
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the body ({other}) does not match the resource in the URL ({}, kind \
             {kind}); send the object to its own resource",
            kind.plural(),
        )));
    }
    match AnyObject::from_json(value.clone()) {
        Ok(object) => Ok(object),
        Err(DecodeError::Invalid { kind: decoded, .. }) => {
            Err(ApiError::bad_request(describe_invalid(decoded, value)))
        }
        Err(error) => Err(ApiError::bad_request(error.to_string())),
    }
}

/// Decodes again, tracking the path, to say which field serde refused:
/// `Host in the request body is invalid: spec.adress: unknown field ...`.
fn describe_invalid(kind: Kind, value: Value) -> String {
    let mut track = serde_path_to_error::Track::new();
    let result = AnyObject::deserialize_kind(
        kind,
        serde_path_to_error::Deserializer::new(value, &mut track),
    );
    let problem = match result {
        Err(error) => error.to_string(),
        // Unreachable in practice: the first decode of the same value failed.
        Ok(_) => "it does not match the schema".to_owned(),
    };
    let path = track.path().to_string();
    if path.is_empty() || path == "." {
        format!("{kind} in the request body is invalid: {problem}")
    } else {
        format!("{kind} in the request body is invalid: {path}: {problem}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn paths_resolve_to_kind_scope_name_and_subresource() {
        let ok = |kind, namespace: Option<&str>, name: Option<&str>, status| ResourcePath {
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            status,
        };
        let cases = [
            ("sites", ok(Kind::Site, None, None, false)),
            ("sites/alpha", ok(Kind::Site, None, Some("alpha"), false)),
            (
                "sites/alpha/status",
                ok(Kind::Site, None, Some("alpha"), true),
            ),
            ("hosts", ok(Kind::Host, None, None, false)),
            (
                "namespaces/alpha/hosts",
                ok(Kind::Host, Some("alpha"), None, false),
            ),
            (
                "namespaces/alpha/hosts/web-1",
                ok(Kind::Host, Some("alpha"), Some("web-1"), false),
            ),
            (
                "namespaces/alpha/credentials/ssh/status",
                ok(Kind::Credential, Some("alpha"), Some("ssh"), true),
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(ResourcePath::parse(path).unwrap(), expected, "{path}");
        }
    }

    #[test]
    fn paths_that_do_not_exist_are_not_found() {
        for path in [
            "pods",
            "sites/",
            "sites/alpha/spec",
            "sites/alpha/status/x",
            "hosts/web-1",
            "namespaces/alpha/sites",
            "namespaces/alpha/sites/alpha",
            "namespaces/alpha",
            "namespaces//hosts",
            "",
        ] {
            assert!(
                matches!(ResourcePath::parse(path), Err(ApiError::NoSuchPath)),
                "{path}"
            );
        }
    }

    #[test]
    fn accept_headers_pick_the_first_representation_produced() {
        let cases = [
            (None, Some(Representation::Object)),
            (Some("application/json"), Some(Representation::Object)),
            (Some("*/*"), Some(Representation::Object)),
            // What kubectl get sends.
            (
                Some(
                    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;\
                     v=v1beta1;g=meta.k8s.io,application/json",
                ),
                Some(Representation::Table),
            ),
            (
                Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json"),
                Some(Representation::Object),
            ),
            (
                Some("application/json; as=PartialObjectMetadataList; g=meta.k8s.io; v=v1"),
                Some(Representation::PartialObjectMetadata),
            ),
            (Some("application/vnd.kubernetes.protobuf"), None),
            (Some("application/yaml"), None),
        ];
        for (accept, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(accept) = accept {
                headers.insert(ACCEPT, HeaderValue::from_str(accept).unwrap());
            }
            let got = Representation::negotiate(&headers).ok();
            assert_eq!(got, expected, "{accept:?}");
        }
    }

    #[test]
    fn query_flags_and_dry_run_read_as_kubernetes_does() {
        let query = Query::parse(Some("watch=1&pretty=false&dryRun=All&x=%20y"));
        assert!(query.flag("watch").unwrap());
        assert!(!query.flag("pretty").unwrap());
        assert!(!query.flag("absent").unwrap());
        assert!(query.dry_run().unwrap());
        assert_eq!(query.get("x"), Some(" y"));
        assert!(Query::parse(Some("watch=yes")).flag("watch").is_err());
        assert!(Query::parse(Some("dryRun=Some")).dry_run().is_err());
        assert!(!Query::parse(Some("dryRun=")).dry_run().unwrap());
    }

    #[test]
    fn bodies_must_be_json_by_content_type_and_syntax() {
        let headers = |content_type: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(content_type) = content_type {
                headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
            }
            headers
        };
        assert_eq!(
            json_body(
                &headers(Some("application/json; charset=utf-8")),
                b"{\"a\":1}"
            )
            .unwrap(),
            json!({"a": 1})
        );
        for content_type in [None, Some("application/yaml"), Some("text/plain")] {
            assert!(
                matches!(
                    json_body(&headers(content_type), b"{}"),
                    Err(ApiError::UnsupportedMediaType { .. })
                ),
                "{content_type:?}"
            );
        }
        let error = json_body(&headers(Some(JSON)), b"{\n  \"a\": }").unwrap_err();
        assert!(error.to_string().contains("line 2 column 8"), "{error}");
    }

    #[test]
    fn decoding_names_the_offending_field() {
        let host = |spec: Value| {
            json!({
                "apiVersion": "osiriscare.net/v1alpha1",
                "kind": "Host",
                "metadata": {"name": "web-1", "namespace": "alpha"},
                "spec": spec,
            })
        };
        assert!(
            decode_object(
                Kind::Host,
                host(json!({"platform": "linux", "address": "10.0.0.1"}))
            )
            .is_ok()
        );
        let cases = [
            (
                host(json!({"platform": "linux", "adress": "x"})),
                Kind::Host,
                "Host in the request body is invalid: spec.adress: unknown field `adress`",
            ),
            (
                host(json!({"platform": "linux", "address": 5})),
                Kind::Host,
                "spec.address: invalid type: integer `5`, expected a string",
            ),
            (
                host(json!({"platform": "linux", "address": "x"})),
                Kind::Site,
                "the kind in the body (Host) does not match the resource in the URL (sites, kind Site)",
            ),
            (json!([1]), Kind::Host, "expected an object"),
        ];
        for (value, kind, expected) in cases {
            let error = decode_object(kind, value).unwrap_err().to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }
}
