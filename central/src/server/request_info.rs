//! What a request is in Kubernetes terms (its verb and resource), from the method, the path and
//! the `watch` parameter alone, as the API server's `RequestInfo` does. Metrics label requests with
//! it and the server exempts watches from the request timeout with it.

use axum::http::{Method, Uri};
use osc_crds::Kind;

/// A request's Kubernetes verb and resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestInfo {
    /// What the request does.
    pub verb: Verb,
    /// The resource under `/apis/osiriscare.net/v1alpha1/`, or `None` for any other path
    /// (discovery, `/healthz`, `/metrics`, unknown resources).
    pub resource: Option<Kind>,
}

/// The Kubernetes verbs, plus `Other` for methods the API does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object (or of a path that is not a collection).
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection or object with `?watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
    /// Any other method (OPTIONS, CONNECT, …).
    Other,
}

impl Verb {
    /// The verb as Kubernetes writes it (`deletecollection`), used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Other => "other",
        }
    }
}

impl RequestInfo {
    /// Classifies a request by its method and URI.
    pub fn of(method: &Method, uri: &Uri) -> Self {
        let (resource, named) = match resource_path(uri.path()) {
            Some((plural, named)) => (Kind::ALL.into_iter().find(|k| k.plural() == plural), named),
            // A path outside the resource tree addresses one thing, like a named object.
            None => (None, true),
        };
        let verb = match *method {
            Method::GET | Method::HEAD if is_watch(uri.query()) => Verb::Watch,
            Method::GET | Method::HEAD if named => Verb::Get,
            Method::GET | Method::HEAD => Verb::List,
            Method::POST => Verb::Create,
            Method::PUT => Verb::Update,
            Method::PATCH => Verb::Patch,
            Method::DELETE if named => Verb::Delete,
            Method::DELETE => Verb::DeleteCollection,
            _ => Verb::Other,
        };
        Self { verb, resource }
    }

    /// The resource's plural, or `other`, used as a metric label.
    pub fn resource_label(&self) -> &'static str {
        self.resource.map_or("other", Kind::plural)
    }
}

/// Whether a query string asks for a watch: `watch` set to a true value as Go's `ParseBool`
/// reads it (`1`, `t`, `T`, `true`, `TRUE`, `True`), which is what Kubernetes clients send.
pub fn is_watch(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        query.split('&').any(|pair| {
            matches!(
                pair.split_once('='),
                Some(("watch", "1" | "t" | "T" | "true" | "TRUE" | "True"))
            )
        })
    })
}

/// The group's path prefix.
const PREFIX: &str = "/apis/osiriscare.net/v1alpha1/";

/// For a path in the resource tree, the resource segment and whether an object name follows it.
fn resource_path(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix(PREFIX)?;
    let segments: Vec<&str> = rest.split('/').collect();
    let (plural, after) = match segments.as_slice() {
        ["namespaces", _namespace, plural, after @ ..] => (*plural, after),
        [plural, after @ ..] => (*plural, after),
        [] => return None,
    };
    let named = after.first().is_some_and(|name| !name.is_empty());
    (!plural.is_empty()).then_some((plural, named))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_as_the_api_server_does() {
        let cases = [
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/sites",
                Verb::List,
                "sites",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/sites/",
                Verb::List,
                "sites",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/sites/alpha",
                Verb::Get,
                "sites",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/sites?watch=true",
                Verb::Watch,
                "sites",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/sites?limit=5&watch=1",
                Verb::Watch,
                "sites",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/sites?watch=false",
                Verb::List,
                "sites",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/sites?watch",
                Verb::List,
                "sites",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/sites?nowatch=1",
                Verb::List,
                "sites",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/namespaces/alpha/hosts",
                Verb::List,
                "hosts",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/namespaces/alpha/hosts/h1",
                Verb::Get,
                "hosts",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/namespaces/alpha/hosts?watch=1&resourceVersion=7",
                Verb::Watch,
                "hosts",
            ),
            (
                "PUT",
                "/apis/osiriscare.net/v1alpha1/namespaces/a/hosts/h1/status",
                Verb::Update,
                "hosts",
            ),
            (
                "POST",
                "/apis/osiriscare.net/v1alpha1/namespaces/a/appliances",
                Verb::Create,
                "appliances",
            ),
            (
                "PATCH",
                "/apis/osiriscare.net/v1alpha1/rollouts/r1",
                Verb::Patch,
                "rollouts",
            ),
            (
                "DELETE",
                "/apis/osiriscare.net/v1alpha1/runbooks/rb1",
                Verb::Delete,
                "runbooks",
            ),
            (
                "DELETE",
                "/apis/osiriscare.net/v1alpha1/releases",
                Verb::DeleteCollection,
                "releases",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/namespaces/a/credentials/c",
                Verb::Get,
                "credentials",
            ),
            (
                "HEAD",
                "/apis/osiriscare.net/v1alpha1/rollouts",
                Verb::List,
                "rollouts",
            ),
            // Unknown resources never become label values, so clients cannot grow the label set.
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/pods",
                Verb::List,
                "other",
            ),
            (
                "GET",
                "/apis/osiriscare.net/v1alpha1/namespaces/a/x9z",
                Verb::List,
                "other",
            ),
            ("GET", "/apis/osiriscare.net/v1alpha1/", Verb::Get, "other"),
            ("GET", "/apis/osiriscare.net/v1alpha1", Verb::Get, "other"),
            ("GET", "/apis", Verb::Get, "other"),
            ("GET", "/healthz", Verb::Get, "other"),
            ("GET", "/metrics", Verb::Get, "other"),
            ("POST", "/healthz", Verb::Create, "other"),
            (
                "OPTIONS",
                "/apis/osiriscare.net/v1alpha1/sites",
                Verb::Other,
                "sites",
            ),
        ];
        for (method, uri, verb, resource) in cases {
            let info = RequestInfo::of(&method.parse().unwrap(), &uri.parse().unwrap());
            assert_eq!(
                (info.verb, info.resource_label()),
                (verb, resource),
                "{method} {uri}"
            );
        }
    }

    #[test]
    fn every_kind_is_a_resource_label() {
        for kind in Kind::ALL {
            let uri = format!("/apis/osiriscare.net/v1alpha1/{}", kind.plural());
            let info = RequestInfo::of(&Method::GET, &uri.parse().unwrap());
            assert_eq!(info.resource, Some(kind));
        }
    }
}
