//! The API group and version, and the metadata every object carries (Kubernetes `ObjectMeta`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every OsirisCare kind.
pub const GROUP: &str = "osiriscare.net";

/// The only served version of the group.
pub const VERSION: &str = "v1alpha1";

/// The `apiVersion` every object must carry: `GROUP/VERSION`.
pub const API_VERSION: &str = "osiriscare.net/v1alpha1";

/// Standard object metadata, a subset of Kubernetes `metav1.ObjectMeta`.
///
/// Every field is optional and empty values are not serialized, so that a hand-written manifest can give
/// only `name` (and `namespace` for kinds that belong to a site). The server fills `uid`,
/// `resourceVersion`, `generation` and the timestamps; a client sends them back unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Name of the object, unique per kind within its namespace (or cluster-wide for cluster-scoped kinds).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The site the object belongs to; only for namespaced kinds (Host, Appliance, Credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Unique identity assigned by the server at creation; never reused, even after the name is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Opaque version for optimistic concurrency: a write carrying a stale value is refused with 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Incremented by the server on every change of `spec`; status writers echo it as `observedGeneration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When the server created the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// When a delete was requested; the object stays until its finalizers are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// Identifying key/value pairs that label selectors match (e.g. which runbooks apply to a host).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Non-identifying key/value pairs for tools and people; never used for selection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Keys of cleanups that must finish before a deleted object goes away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// Server-side apply field ownership; accepted and kept verbatim so that
    /// `kubectl apply --server-side` round-trips.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<serde_json::Value>,
}

impl ObjectMeta {
    /// Metadata with only a name, for cluster-scoped objects.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Metadata with a namespace (a site name) and a name, for namespaced objects.
    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: Some(namespace.into()),
            ..Self::named(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_only_manifest_round_trips_without_empty_fields() {
        let meta: ObjectMeta = serde_json::from_str(r#"{"name":"clinic-a"}"#).unwrap();
        assert_eq!(meta, ObjectMeta::named("clinic-a"));
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            r#"{"name":"clinic-a"}"#
        );
    }

    #[test]
    fn server_fields_use_kubernetes_names_and_survive_a_round_trip() {
        let json = serde_json::json!({
            "name": "web1",
            "namespace": "clinic-a",
            "uid": "6b1c",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2025-01-02T03:04:05Z",
            "deletionTimestamp": "2025-01-03T00:00:00Z",
            "labels": {"role": "web"},
            "annotations": {"note": "x"},
            "finalizers": ["osiriscare.net/evidence"],
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
        });
        let meta: ObjectMeta = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(meta.resource_version.as_deref(), Some("42"));
        assert_eq!(meta.generation, Some(3));
        assert_eq!(serde_json::to_value(&meta).unwrap(), json);
    }

    #[test]
    fn unknown_metadata_field_is_rejected() {
        let err = serde_json::from_str::<ObjectMeta>(r#"{"name":"a","lables":{}}"#).unwrap_err();
        assert!(err.to_string().contains("lables"), "{err}");
    }
}
