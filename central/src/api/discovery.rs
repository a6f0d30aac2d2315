//! Discovery: `/api`, `/apis`, `/apis/osiriscare.net`, `/apis/osiriscare.net/v1alpha1` and
//! `/version`, in the legacy (unaggregated) form.
//!
//! kubectl asks for aggregated discovery (`as=APIGroupDiscoveryList`) first; client-go reads the
//! response's `Content-Type` and, getting plain `application/json`, parses the legacy documents
//! and fetches each group-version's resource list, which is all we serve. The core group is empty
//! (`/api` lists no versions), so names like `hosts` resolve only to our kinds.

use axum::Json;
use osc_crds::{API_VERSION, GROUP, Kind, VERSION};
use serde_json::{Value, json};

/// The verbs served on each resource.
const VERBS: [&str; 7] = [
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The verbs served on each `/status` subresource.
const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

/// The category every kind belongs to: `kubectl get osiriscare` lists them all.
pub const CATEGORY: &str = "osiriscare";

/// The Kubernetes API level whose conventions this server follows, as `/version` reports it.
const KUBERNETES_MINOR: &str = "32";

/// `GET /api`: the core group's versions, of which this server has none.
pub async fn core() -> Json<Value> {
    Json(json!({
        "kind": "APIVersions",
        "versions": [],
        "serverAddressByClientCIDRs": [],
    }))
}

/// `GET /apis`: the one group, `osiriscare.net`.
pub async fn groups() -> Json<Value> {
    Json(json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group()],
    }))
}

/// `GET /apis/osiriscare.net`.
pub async fn group() -> Json<Value> {
    Json(api_group())
}

/// `GET /apis/osiriscare.net/v1alpha1`: every kind and its status subresource.
pub async fn resources() -> Json<Value> {
    Json(resource_list())
}

/// `GET /version`: a `version.Info`. `gitVersion` is a semantic version at the Kubernetes API
/// level we follow, with this build as metadata, so that `kubectl version` parses it.
pub async fn version() -> Json<Value> {
    Json(json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!(
            "v1.{KUBERNETES_MINOR}.0+osc-central-{}",
            env!("CARGO_PKG_VERSION")
        ),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    }))
}

/// The `APIResourceList` of the group-version.
pub fn resource_list() -> Value {
    let resources: Vec<Value> = Kind::ALL
        .into_iter()
        .flat_map(|kind| {
            [
                json!({
                    "name": kind.plural(),
                    "singularName": kind.singular(),
                    "namespaced": kind.namespaced(),
                    "kind": kind.as_str(),
                    "verbs": VERBS,
                    "shortNames": kind.short_names(),
                    "categories": [CATEGORY],
                }),
                json!({
                    "name": format!("{}/status", kind.plural()),
                    "singularName": "",
                    "namespaced": kind.namespaced(),
                    "kind": kind.as_str(),
                    "verbs": STATUS_VERBS,
                }),
            ]
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": API_VERSION,
        "resources": resources,
    })
}

/// The group with its one (preferred) version.
fn api_group() -> Value {
    let version = json!({ "groupVersion": API_VERSION, "version": VERSION });
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [version],
        "preferredVersion": version,
    })
}

/// The architecture as Go names it (`amd64`, `arm64`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_with_its_status_subresource() {
        let list = resource_list();
        let resources = list["resources"].as_array().unwrap();
        assert_eq!(resources.len(), 2 * Kind::ALL.len());
        for kind in Kind::ALL {
            let main = resources
                .iter()
                .find(|resource| resource["name"] == kind.plural())
                .unwrap();
            assert_eq!(main["kind"], kind.as_str());
            assert_eq!(main["namespaced"], kind.namespaced());
            assert_eq!(main["shortNames"], json!(kind.short_names()));
            assert_eq!(main["categories"], json!(["osiriscare"]));
            let status = resources
                .iter()
                .find(|resource| resource["name"] == format!("{}/status", kind.plural()))
                .unwrap();
            assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        }
    }
}
