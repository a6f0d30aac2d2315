//! OpenAPI v3: the index at `/openapi/v3` and the group-version document at
//! `/openapi/v3/apis/osiriscare.net/v1alpha1`, generated from the kinds' structural schemas.
//!
//! kubectl reads it for `explain` (it finds a kind's schema by `x-kubernetes-group-version-kind`)
//! and before `apply`/`create`: when a kind's PATCH operation declares the `fieldValidation`
//! parameter, kubectl leaves validation to the server (which always refuses unknown fields, as
//! `fieldValidation=Strict` asks) instead of fetching the protobuf OpenAPI v2 document, which this
//! server does not serve.

use std::sync::LazyLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use axum::response::{IntoResponse, Response};
use osc_crds::{API_VERSION, GROUP, Kind, VERSION};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::request::{JSON, Query};

/// The group-version document's path under `/openapi/v3/`, as the index names it.
const GROUP_VERSION_PATH: &str = "apis/osiriscare.net/v1alpha1";

/// The group-version document, serialized once, and its hash.
static DOCUMENT: LazyLock<(String, String)> = LazyLock::new(|| {
    let text = document().to_string();
    let hash = hex::encode_upper(Sha256::digest(text.as_bytes()));
    (text, hash)
});

/// `GET /openapi/v3`: where each group-version's document is, with a hash that changes with it.
pub async fn index() -> Response {
    let (_, hash) = &*DOCUMENT;
    let body = json!({
        "paths": {
            GROUP_VERSION_PATH: {
                "serverRelativeURL": format!("/openapi/v3/{GROUP_VERSION_PATH}?hash={hash}"),
            },
        },
    });
    ([(CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

/// `GET /openapi/v3/apis/osiriscare.net/v1alpha1`. Asked for with the current hash, it may be
/// cached for good (kubectl keeps it in its cache directory).
pub async fn group_version(axum::extract::RawQuery(raw): axum::extract::RawQuery) -> Response {
    let (text, hash) = &*DOCUMENT;
    let cache = if Query::parse(raw.as_deref()).get("hash") == Some(hash.as_str()) {
        "public, immutable, max-age=31536000"
    } else {
        "no-cache"
    };
    (
        [
            (CONTENT_TYPE, JSON.to_owned()),
            (CACHE_CONTROL, cache.to_owned()),
            (ETAG, format!("\"{hash}\"")),
        ],
        text.clone(),
    )
        .into_response()
}

/// The OpenAPI 3.0 document of the group-version: every path and operation, and each kind's
/// schema (and its list's) under `components.schemas`.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for kind in Kind::ALL {
        add_paths(kind, &mut paths);
        let mut schema = osc_crds::schema::structural_schema(kind);
        schema["x-kubernetes-group-version-kind"] = json!([gvk(kind.as_str())]);
        schemas.insert(schema_name(kind.as_str()), schema);
        schemas.insert(schema_name(kind.list_kind()), list_schema(kind));
    }
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status".to_owned(),
        json!({
            "type": "object",
            "description": "The outcome of a call that returns no object, and every error.",
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}],
        }),
    );
    json!({
        "openapi": "3.0.0",
        "info": {
            "title": "OsirisCare Central Command",
            "version": API_VERSION,
        },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// The name of a schema in `components.schemas`, as Kubernetes names CRD schemas (the group
/// reversed): `net.osiriscare.v1alpha1.Site`.
fn schema_name(kind: &str) -> String {
    let reversed: Vec<&str> = GROUP.rsplit('.').collect();
    format!("{}.{VERSION}.{kind}", reversed.join("."))
}

/// `{"group": …, "kind": …, "version": …}`: the extension that ties operations and schemas to a
/// kind.
fn gvk(kind: &str) -> Value {
    json!({ "group": GROUP, "kind": kind, "version": VERSION })
}

/// A reference to a schema.
fn reference(kind: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}", schema_name(kind)) })
}

/// The schema of a kind's list.
fn list_schema(kind: Kind) -> Value {
    json!({
        "type": "object",
        "description": format!("A list of {}.", kind.plural()),
        "required": ["items"],
        "properties": {
            "apiVersion": { "type": "string" },
            "kind": { "type": "string" },
            "metadata": { "type": "object" },
            "items": { "type": "array", "items": reference(kind.as_str()) },
        },
        "x-kubernetes-group-version-kind": [gvk(kind.list_kind())],
    })
}

/// The paths of `kind`: its collection(s), each object, and each object's status.
fn add_paths(kind: Kind, paths: &mut Map<String, Value>) {
    let prefix = format!("/apis/{API_VERSION}");
    let scoped = if kind.namespaced() {
        format!("{prefix}/namespaces/{{namespace}}/{}", kind.plural())
    } else {
        format!("{prefix}/{}", kind.plural())
    };
    let mut path_parameters = Vec::new();
    if kind.namespaced() {
        path_parameters.push(path_parameter(
            "namespace",
            "The site (namespace) of the object.",
        ));
        // The list of every site's objects.
        paths.insert(
            format!("{prefix}/{}", kind.plural()),
            json!({ "get": operation(kind, "list", "AllNamespaces") }),
        );
    }
    let mut collection = json!({
        "get": operation(kind, "list", ""),
        "post": operation(kind, "post", ""),
    });
    collection["parameters"] = json!(path_parameters);
    paths.insert(scoped.clone(), collection);

    path_parameters.push(path_parameter("name", "The name of the object."));
    let mut object = json!({
        "get": operation(kind, "get", ""),
        "put": operation(kind, "put", ""),
        "patch": operation(kind, "patch", ""),
        "delete": operation(kind, "delete", ""),
    });
    object["parameters"] = json!(path_parameters);
    paths.insert(format!("{scoped}/{{name}}"), object);

    let mut status = json!({
        "get": operation(kind, "get", "Status"),
        "put": operation(kind, "put", "Status"),
        "patch": operation(kind, "patch", "Status"),
    });
    status["parameters"] = json!(path_parameters);
    paths.insert(format!("{scoped}/{{name}}/status"), status);
}

/// One operation: its id, the Kubernetes action, the kind, query parameters, body and result.
fn operation(kind: Kind, action: &str, suffix: &str) -> Value {
    let verb = match action {
        "post" => "create",
        "put" => "replace",
        other => other,
    };
    let scope = if kind.namespaced() && suffix != "AllNamespaces" {
        "Namespaced"
    } else {
        ""
    };
    let mut parameters: Vec<Value> = Vec::new();
    match action {
        "list" => {
            for (name, description) in [
                (
                    "labelSelector",
                    "Only objects whose labels match this selector.",
                ),
                (
                    "fieldSelector",
                    "Only objects whose metadata.name / metadata.namespace match.",
                ),
                (
                    "limit",
                    "At most this many objects; the rest by `continue`.",
                ),
                ("continue", "The token of the previous page."),
                ("resourceVersion", "Serve a state at least this recent."),
                ("watch", "Stream changes instead of listing."),
            ] {
                parameters.push(query_parameter(name, description));
            }
        }
        "post" | "put" | "patch" => {
            for (name, description) in [
                ("dryRun", "`All`: check the write, store nothing."),
                ("fieldManager", "The name of the actor making the change."),
                (
                    "fieldValidation",
                    "Unknown fields are always refused, as `Strict` asks.",
                ),
            ] {
                parameters.push(query_parameter(name, description));
            }
            if action == "patch" {
                parameters.push(query_parameter(
                    "force",
                    "Take over conflicting fields (apply).",
                ));
            }
        }
        "delete" => parameters.push(query_parameter("dryRun", "`All`: check, delete nothing.")),
        _ => {}
    }
    let result = if action == "list" {
        kind.list_kind()
    } else {
        kind.as_str()
    };
    let mut operation = json!({
        "operationId": format!("{verb}{scope}{}{suffix}", kind.as_str()),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(kind.as_str()),
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "OK",
                "content": { JSON: { "schema": reference(result) } },
            },
        },
    });
    let body_types: &[&str] = match action {
        "post" | "put" => &[JSON],
        "patch" => &[
            "application/merge-patch+json",
            "application/json-patch+json",
            "application/apply-patch+yaml",
        ],
        _ => &[],
    };
    if !body_types.is_empty() {
        let content: Map<String, Value> = body_types
            .iter()
            .map(|media_type| {
                let schema = if action == "patch" {
                    json!({ "type": "object" })
                } else {
                    reference(kind.as_str())
                };
                ((*media_type).to_owned(), json!({ "schema": schema }))
            })
            .collect();
        operation["requestBody"] = json!({ "content": content, "required": true });
    }
    operation
}

/// A string query parameter.
fn query_parameter(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

/// A required path parameter.
fn path_parameter(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_schema_and_a_patch_that_declares_field_validation() {
        let document = document();
        for kind in Kind::ALL {
            let schema = &document["components"]["schemas"][schema_name(kind.as_str())];
            assert_eq!(
                schema["x-kubernetes-group-version-kind"],
                json!([{"group": "osiriscare.net", "kind": kind.as_str(), "version": "v1alpha1"}])
            );
            assert!(schema["properties"]["spec"].is_object(), "{kind}");

            // What kubectl's query-parameter verifier looks for.
            let patches: Vec<&Value> = document["paths"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|path| path.get("patch"))
                .filter(|patch| patch["x-kubernetes-group-version-kind"]["kind"] == kind.as_str())
                .collect();
            assert_eq!(patches.len(), 2, "{kind}: the object and its status");
            for patch in patches {
                let names: Vec<&str> = patch["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|parameter| parameter["name"].as_str().unwrap())
                    .collect();
                assert!(names.contains(&"fieldValidation"), "{kind}: {names:?}");
                assert!(names.contains(&"dryRun"), "{kind}: {names:?}");
            }
        }
        assert!(
            document["paths"]
                .get("/apis/osiriscare.net/v1alpha1/namespaces/{namespace}/hosts/{name}/status")
                .is_some()
        );
        assert!(
            document["paths"]
                .get("/apis/osiriscare.net/v1alpha1/sites/{name}")
                .is_some()
        );
    }

    #[test]
    fn schema_names_reverse_the_group() {
        assert_eq!(schema_name("Site"), "net.osiriscare.v1alpha1.Site");
    }
}
