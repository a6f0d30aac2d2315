//! Server-side apply's decision: given the live object and an applied configuration, the object to
//! store and its new `metadata.managedFields`, or the conflicts with other field managers. Pure:
//! no I/O, the clock is passed in.
//!
//! The subset implemented, kept small enough to test well:
//! - Objects are granular maps: each leaf (a scalar, a list, or an empty object) is one field.
//! - Lists are atomic: a manager owns a list as a whole, as Kubernetes does for custom resources
//!   whose schema declares no `x-kubernetes-list-type` (ours declare none).
//! - Ownership is recorded for `Apply` operations only. Writes by PUT, merge patch and JSON patch
//!   do not take ownership (Kubernetes records them as `Update` managers), so an apply never
//!   conflicts with them and may overwrite what they changed.
//! - `null` in an applied configuration means "not set", not "delete".
//! - Removing a field from a manager's configuration deletes it from the object when no other
//!   manager owns it; objects that become empty through the removal go too (top-level fields stay).
//! - Only the object itself is applied: `status` in a configuration is ignored, and apply to the
//!   `/status` subresource is not served (status writers use merge patch or PUT).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The operation name server-side apply records in `managedFields`.
pub const APPLY_OPERATION: &str = "Apply";

/// One apply request, as the decision needs it.
#[derive(Clone)]
pub struct ApplyRequest<'a> {
    /// The `fieldManager` query parameter: who owns what this configuration sets.
    pub manager: &'a str,
    /// `force=true`: take the conflicting fields from their owners instead of failing.
    pub force: bool,
    /// When the apply happens, recorded in the manager's entry.
    pub now: DateTime<Utc>,
    /// The object as the server would store it (defaults filled, values in canonical form), or
    /// the value unchanged when it is not a whole object. Values are compared in this form, so
    /// that a configuration that leaves a field to its default, or spells a value differently,
    /// neither conflicts nor counts as a change.
    pub normalize: &'a (dyn Fn(&Value) -> Value + Sync),
}

/// Fields that the applied configuration sets with a value other than the live one while another
/// manager owns them. Answered with 409 unless the apply is forced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

/// One field that another manager owns with another value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conflict {
    /// The manager that owns the field.
    pub manager: String,
    /// The field, as `.spec.displayName`.
    pub field: String,
}

/// Decides an apply: the object to store, with the manager's entry in `metadata.managedFields`.
///
/// `live` is the stored object, or `None` to create one from `config`. The caller has already
/// checked that `config` names the right kind and object, and strips nothing else: fields the
/// server owns (`uid`, `resourceVersion`, timestamps, `managedFields`) are neither owned nor
/// merged.
pub fn decide(
    live: Option<&Value>,
    config: &Value,
    request: &ApplyRequest<'_>,
) -> Result<Value, Conflicts> {
    let config = without_nulls(config);
    let applied = FieldSet::of_config(&config);
    let mut entries = live.map(managed_fields).unwrap_or_default();
    let mine = entries
        .iter()
        .position(|entry| entry.is_apply_of(request.manager));
    let previously = match mine.map(|index| &entries[index]) {
        Some(ManagedEntry::Known { fields, .. }) => fields.clone(),
        _ => FieldSet::default(),
    };

    let live_or_empty = live.cloned().unwrap_or_else(|| identity(&config));
    let normalized = (request.normalize)(&config);
    let mut conflicts = BTreeSet::new();
    for (index, entry) in entries.iter_mut().enumerate() {
        let Some((manager, fields)) = entry.owner().filter(|_| Some(index) != mine) else {
            continue;
        };
        let taken: Vec<&Path> = applied
            .0
            .iter()
            .filter(|path| {
                fields.overlaps(path)
                    && value_at(&live_or_empty, path) != value_at(&normalized, path)
            })
            .collect();
        for path in taken {
            if request.force {
                fields.remove_overlapping(path);
            } else {
                conflicts.insert(Conflict {
                    manager: manager.to_owned(),
                    field: display_path(path),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(Conflicts(conflicts.into_iter().collect()));
    }

    let mut object = live_or_empty;
    for path in previously.0.difference(&applied.0) {
        let kept_by_other = entries
            .iter()
            .enumerate()
            .any(|(index, entry)| Some(index) != mine && entry.overlaps(path));
        if !kept_by_other {
            remove_path(&mut object, path);
        }
    }
    json_patch::merge(&mut object, &owned_part(&config));

    // An apply that changes nothing keeps the entry's time too, so that the stored object is
    // unchanged and the caller can skip the write (a second `kubectl apply` is a no-op).
    let unchanged = previously == applied
        && live.is_some_and(|live| {
            without_managed_fields(live) == (request.normalize)(&without_managed_fields(&object))
        });
    match mine {
        Some(_) if unchanged => {}
        Some(index) => entries[index] = ManagedEntry::apply(request, applied),
        None => entries.push(ManagedEntry::apply(request, applied)),
    }
    entries.retain(ManagedEntry::is_kept);
    let managed: Vec<Value> = entries.iter().map(ManagedEntry::to_json).collect();
    let metadata = object
        .as_object_mut()
        .expect("the object was checked to be a JSON object")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(metadata) = metadata {
        metadata.insert("managedFields".to_owned(), Value::Array(managed));
    }
    Ok(object)
}

impl fmt::Display for Conflicts {
    /// Worded as the API server words it, so that `kubectl` users recognise it:
    /// `Apply failed with 1 conflict: conflict with "a": .spec.x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        let plural = if count == 1 { "" } else { "s" };
        write!(f, "Apply failed with {count} conflict{plural}: ")?;
        match self.0.as_slice() {
            [one] => write!(f, "conflict with {:?}: {}", one.manager, one.field)?,
            many => {
                let mut managers: Vec<&str> = many.iter().map(|c| c.manager.as_str()).collect();
                managers.dedup();
                for manager in managers {
                    write!(f, "conflicts with {manager:?}:")?;
                    for conflict in many.iter().filter(|c| c.manager == manager) {
                        write!(f, "\n- {}", conflict.field)?;
                    }
                    writeln!(f)?;
                }
            }
        }
        f.write_str(
            "\nPut the fields in another manager's configuration, or take them with force \
             (kubectl apply --server-side --force-conflicts)",
        )
    }
}

/// A field's path from the object's root, one segment per map key.
type Path = Vec<String>;

/// A set of fields, each a leaf: a scalar, a list (lists are atomic) or an empty object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    /// The fields an applied configuration sets, less those the server owns.
    fn of_config(config: &Value) -> Self {
        let mut set = BTreeSet::new();
        collect_leaves(&owned_part(config), &mut Vec::new(), &mut set);
        Self(set)
    }

    /// Reads `fieldsV1`: `{"f:spec": {"f:x": {}}}`. Keys of list items (`k:`, `v:`, `i:`) make
    /// the list itself the field, since lists are atomic here.
    fn from_fields_v1(fields: &Value) -> Self {
        fn walk(node: &Value, path: &mut Path, set: &mut BTreeSet<Path>) {
            let Value::Object(children) = node else {
                return;
            };
            let mut leaf = children.is_empty();
            for (key, child) in children {
                match key.strip_prefix("f:") {
                    Some(name) => {
                        path.push(name.to_owned());
                        walk(child, path, set);
                        path.pop();
                    }
                    // "." (the map itself) and list item keys.
                    None => leaf = true,
                }
            }
            if leaf && !path.is_empty() {
                set.insert(path.clone());
            }
        }
        let mut set = BTreeSet::new();
        walk(fields, &mut Vec::new(), &mut set);
        Self(set)
    }

    /// Writes `fieldsV1`, leaves as `{}`.
    fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for segment in path {
                let child = node
                    .entry(format!("f:{segment}"))
                    .or_insert_with(|| Value::Object(Map::new()));
                node = match child {
                    Value::Object(map) => map,
                    _ => unreachable!("fieldsV1 nodes are all objects"),
                };
            }
        }
        Value::Object(root)
    }

    /// Whether some field of the set is `path`, inside it, or contains it.
    fn overlaps(&self, path: &Path) -> bool {
        self.0.iter().any(|owned| overlap(owned, path))
    }

    /// Drops every field that overlaps `path`.
    fn remove_overlapping(&mut self, path: &Path) {
        self.0.retain(|owned| !overlap(owned, path));
    }
}

/// Whether one path is a prefix of the other (or they are equal).
fn overlap(a: &Path, b: &Path) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// `.spec.displayName`, as the API server shows a field.
fn display_path(path: &Path) -> String {
    path.iter().map(|segment| format!(".{segment}")).collect()
}

/// Adds the leaves under `value` (at `path`) to `set`.
fn collect_leaves(value: &Value, path: &mut Path, set: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.clone());
                collect_leaves(child, path, set);
                path.pop();
            }
        }
        _ if path.is_empty() => {}
        _ => {
            set.insert(path.clone());
        }
    }
}

/// Metadata the server owns: never part of a manager's fields, never taken from a configuration.
const SERVER_METADATA: [&str; 8] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
];

/// The part of `config` that a manager may own: everything but `apiVersion`, `kind`, `status`
/// (written only through `/status`) and the server's metadata.
fn owned_part(config: &Value) -> Value {
    let Value::Object(map) = config else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for (key, value) in map {
        match (key.as_str(), value) {
            ("apiVersion" | "kind" | "status", _) => {}
            ("metadata", Value::Object(metadata)) => {
                let kept: Map<String, Value> = metadata
                    .iter()
                    .filter(|(key, _)| !SERVER_METADATA.contains(&key.as_str()))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                if !kept.is_empty() {
                    out.insert(key.clone(), Value::Object(kept));
                }
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

/// `value` without its `null` members, at any depth (an applied `null` means "not set").
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, child)| !child.is_null())
                .map(|(key, child)| (key.clone(), without_nulls(child)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a new object starts as before an apply's fields are merged in: the configuration's
/// `apiVersion`, `kind`, and `metadata.name` and `namespace`.
fn identity(config: &Value) -> Value {
    let mut object = Map::new();
    let mut metadata = Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(value) = config.get(key) {
            object.insert(key.to_owned(), value.clone());
        }
    }
    for key in ["name", "namespace"] {
        if let Some(value) = config.pointer(&format!("/metadata/{key}")) {
            metadata.insert(key.to_owned(), value.clone());
        }
    }
    object.insert("metadata".to_owned(), Value::Object(metadata));
    Value::Object(object)
}

/// `object` without `metadata.managedFields`.
fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        metadata.remove("managedFields");
    }
    object
}

/// The value at `path`, following object members only.
fn value_at<'v>(value: &'v Value, path: &Path) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |node, segment| node.as_object()?.get(segment))
}

/// Removes the field at `path`, and then each enclosing object the removal left empty, up to
/// (not including) the top-level field.
fn remove_path(value: &mut Value, path: &Path) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(Value::Object(parent)) = parents.iter().try_fold(&mut *value, |node, segment| {
        node.as_object_mut()?.get_mut(segment)
    }) else {
        return;
    };
    if parent.remove(last).is_some() && parent.is_empty() && parents.len() > 1 {
        remove_path(value, &parents.to_vec());
    }
}

/// One `managedFields` entry: the wire form of `metav1.ManagedFieldsEntry`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEntry {
    /// Who manages the fields.
    manager: String,
    /// `Apply` or `Update`.
    operation: String,
    /// The apiVersion the fields are expressed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_version: Option<String>,
    /// When the manager last wrote (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    /// Always `FieldsV1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fields_type: Option<String>,
    /// The fields, as a trie of `f:` keys.
    #[serde(default, rename = "fieldsV1", skip_serializing_if = "Option::is_none")]
    fields_v1: Option<Value>,
    /// `status` for writes through the status subresource; absent for the main resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subresource: Option<String>,
}

/// A `managedFields` entry as the decision works on it.
#[derive(Debug, Clone)]
enum ManagedEntry {
    /// An entry in the wire form, with the fields it owns.
    Known {
        /// The entry as read (its `fieldsV1` is rewritten from `fields`).
        wire: WireEntry,
        /// The fields the entry owns.
        fields: FieldSet,
    },
    /// An entry that could not be read: kept verbatim, owning nothing here.
    Opaque(Value),
}

impl ManagedEntry {
    /// The entry an apply writes for its manager.
    fn apply(request: &ApplyRequest<'_>, fields: FieldSet) -> Self {
        Self::Known {
            wire: WireEntry {
                manager: request.manager.to_owned(),
                operation: APPLY_OPERATION.to_owned(),
                api_version: Some(osc_crds::API_VERSION.to_owned()),
                time: Some(request.now.to_rfc3339_opts(SecondsFormat::Secs, true)),
                fields_type: Some("FieldsV1".to_owned()),
                fields_v1: None,
                subresource: None,
            },
            fields,
        }
    }

    /// Reads one entry of `metadata.managedFields`.
    fn read(value: &Value) -> Self {
        match serde_json::from_value::<WireEntry>(value.clone()) {
            Ok(wire) => Self::Known {
                fields: wire
                    .fields_v1
                    .as_ref()
                    .map(FieldSet::from_fields_v1)
                    .unwrap_or_default(),
                wire,
            },
            Err(_) => Self::Opaque(value.clone()),
        }
    }

    /// The manager's name and its fields, for a readable entry.
    fn owner(&mut self) -> Option<(&str, &mut FieldSet)> {
        match self {
            Self::Known { wire, fields } => Some((&wire.manager, fields)),
            Self::Opaque(_) => None,
        }
    }

    /// Whether this entry owns a field overlapping `path`.
    fn overlaps(&self, path: &Path) -> bool {
        matches!(self, Self::Known { fields, .. } if fields.overlaps(path))
    }

    /// Whether this is the entry of `manager`'s applies to the object (not a subresource).
    fn is_apply_of(&self, manager: &str) -> bool {
        matches!(self, Self::Known { wire, .. } if wire.manager == manager
            && wire.operation == APPLY_OPERATION
            && wire.subresource.is_none())
    }

    /// Whether the entry should be stored: readable entries that own nothing are dropped.
    fn is_kept(&self) -> bool {
        match self {
            Self::Known { fields, .. } => !fields.0.is_empty(),
            Self::Opaque(_) => true,
        }
    }

    /// The entry as stored.
    fn to_json(&self) -> Value {
        match self {
            Self::Known { wire, fields } => {
                let wire = WireEntry {
                    fields_v1: Some(fields.to_fields_v1()),
                    ..wire.clone()
                };
                serde_json::to_value(wire).expect("a managedFields entry serializes")
            }
            Self::Opaque(value) => value.clone(),
        }
    }
}

/// The entries of an object's `metadata.managedFields`.
fn managed_fields(object: &Value) -> Vec<ManagedEntry> {
    match object.pointer("/metadata/managedFields") {
        Some(Value::Array(entries)) => entries.iter().map(ManagedEntry::read).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(manager: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            manager,
            force,
            now: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
            normalize: &Value::clone,
        }
    }

    /// A normalizer that defaults `spec.waves[].pause` to `false`, as a server's defaults would.
    fn defaulting(value: &Value) -> Value {
        let mut value = value.clone();
        if let Some(Value::Array(waves)) = value.pointer_mut("/spec/waves") {
            for wave in waves {
                wave.as_object_mut()
                    .unwrap()
                    .entry("pause")
                    .or_insert(Value::Bool(false));
            }
        }
        value
    }

    fn site(spec: Value) -> Value {
        json!({
            "apiVersion": "osiriscare.net/v1alpha1",
            "kind": "Site",
            "metadata": {"name": "alpha"},
            "spec": spec,
        })
    }

    /// The fieldsV1 of `manager`'s Apply entry.
    fn owned(object: &Value, manager: &str) -> Option<Value> {
        object["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|entry| entry["manager"] == manager && entry["operation"] == "Apply")
            .map(|entry| entry["fieldsV1"].clone())
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let config = json!({
            "apiVersion": "osiriscare.net/v1alpha1",
            "kind": "Site",
            "metadata": {"name": "alpha", "uid": "u", "labels": {"osiriscare.net/tier": "gold"}},
            "spec": {"displayName": "A", "frameworks": ["HIPAA"], "window": {}},
            "status": {"score": 1},
        });
        let set = FieldSet::of_config(&config);
        let fields = set.to_fields_v1();
        assert_eq!(
            fields,
            json!({
                "f:metadata": {"f:labels": {"f:osiriscare.net/tier": {}}},
                "f:spec": {"f:displayName": {}, "f:frameworks": {}, "f:window": {}},
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&fields), set);
    }

    #[test]
    fn fields_v1_from_other_servers_reads_list_keys_and_dots_as_the_enclosing_field() {
        let cases = [
            (
                json!({"f:a": {".": {}, "f:b": {}}}),
                vec![vec!["a"], vec!["a", "b"]],
            ),
            (
                json!({"f:list": {"k:{\"name\":\"x\"}": {".": {}}}}),
                vec![vec!["list"]],
            ),
            (json!({"f:x": {}}), vec![vec!["x"]]),
            (json!({}), vec![]),
        ];
        for (fields, expected) in cases {
            let expected: BTreeSet<Path> = expected
                .into_iter()
                .map(|path| path.into_iter().map(str::to_owned).collect())
                .collect();
            assert_eq!(FieldSet::from_fields_v1(&fields).0, expected, "{fields}");
        }
    }

    #[test]
    fn the_first_apply_creates_the_object_owned_by_its_manager() {
        let config = site(json!({"displayName": "Alpha", "partner": "msp"}));
        let object = decide(None, &config, &request("kubectl", false)).unwrap();
        assert_eq!(object["spec"], config["spec"]);
        assert_eq!(object["apiVersion"], "osiriscare.net/v1alpha1");
        assert_eq!(object["kind"], "Site");
        assert_eq!(object["metadata"]["name"], "alpha");
        assert_eq!(
            owned(&object, "kubectl").unwrap(),
            json!({"f:spec": {"f:displayName": {}, "f:partner": {}}})
        );
        let entry = &object["metadata"]["managedFields"][0];
        assert_eq!(entry["time"], "2026-01-02T03:04:05Z");
        assert_eq!(entry["fieldsType"], "FieldsV1");
        assert_eq!(entry["apiVersion"], "osiriscare.net/v1alpha1");
        assert!(entry.get("subresource").is_none());
    }

    #[test]
    fn applying_the_same_configuration_again_changes_nothing_not_even_the_time() {
        let config = site(json!({"displayName": "Alpha"}));
        let first = decide(None, &config, &request("kubectl", false)).unwrap();
        let later = ApplyRequest {
            now: request("kubectl", false).now + chrono::Duration::hours(1),
            ..request("kubectl", false)
        };
        let second = decide(Some(&first), &config, &later).unwrap();
        assert_eq!(first, second);
        // A change does record the new time.
        let changed = decide(Some(&first), &site(json!({"displayName": "B"})), &later).unwrap();
        assert_eq!(
            changed["metadata"]["managedFields"][0]["time"],
            "2026-01-02T04:04:05Z"
        );
    }

    #[test]
    fn values_are_compared_as_the_server_stores_them() {
        let config = site(json!({"waves": [{"count": 1}]}));
        let defaulting_request = |manager| ApplyRequest {
            normalize: &defaulting,
            ..request(manager, false)
        };
        let created = decide(None, &config, &defaulting_request("alice")).unwrap();
        // As the server would store it, with the default filled in.
        let stored = defaulting(&created);
        // The same configuration again, an hour later: once stored, nothing has changed, not
        // even the time.
        let later = ApplyRequest {
            now: request("alice", false).now + chrono::Duration::hours(1),
            ..defaulting_request("alice")
        };
        let again = decide(Some(&stored), &config, &later).unwrap();
        assert_eq!(defaulting(&again), stored);
        // Another manager with the same list, defaults left out: no conflict.
        assert!(decide(Some(&stored), &config, &defaulting_request("bob")).is_ok());
        // Without normalization, the spelling difference would be a change and a conflict.
        assert!(decide(Some(&stored), &config, &request("bob", false)).is_err());
    }

    #[test]
    fn a_second_manager_setting_an_owned_field_to_another_value_conflicts() {
        let live = decide(
            None,
            &site(json!({"displayName": "Alpha", "partner": "msp"})),
            &request("alice", false),
        )
        .unwrap();
        let error = decide(
            Some(&live),
            &site(json!({"displayName": "Beta", "partner": "msp"})),
            &request("bob", false),
        )
        .unwrap_err();
        assert_eq!(
            error.0,
            vec![Conflict {
                manager: "alice".to_owned(),
                field: ".spec.displayName".to_owned()
            }]
        );
        let message = error.to_string();
        assert!(
            message.starts_with(
                "Apply failed with 1 conflict: conflict with \"alice\": .spec.displayName"
            ),
            "{message}"
        );
        assert!(message.contains("--force-conflicts"), "{message}");
    }

    #[test]
    fn the_same_value_is_shared_and_force_takes_the_field() {
        let live = decide(
            None,
            &site(json!({"displayName": "Alpha", "partner": "msp"})),
            &request("alice", false),
        )
        .unwrap();
        // The same value: no conflict, both own it.
        let shared = decide(
            Some(&live),
            &site(json!({"partner": "msp"})),
            &request("bob", false),
        )
        .unwrap();
        assert_eq!(
            owned(&shared, "alice").unwrap(),
            json!({"f:spec": {"f:displayName": {}, "f:partner": {}}})
        );
        assert_eq!(
            owned(&shared, "bob").unwrap(),
            json!({"f:spec": {"f:partner": {}}})
        );
        // Forced: bob takes displayName from alice.
        let forced = decide(
            Some(&shared),
            &site(json!({"partner": "msp", "displayName": "Beta"})),
            &request("bob", true),
        )
        .unwrap();
        assert_eq!(forced["spec"]["displayName"], "Beta");
        assert_eq!(
            owned(&forced, "alice").unwrap(),
            json!({"f:spec": {"f:partner": {}}})
        );
        assert_eq!(
            owned(&forced, "bob").unwrap(),
            json!({"f:spec": {"f:displayName": {}, "f:partner": {}}})
        );
    }

    #[test]
    fn a_field_dropped_from_the_configuration_is_removed_unless_another_manager_owns_it() {
        let live = decide(
            None,
            &site(json!({"displayName": "Alpha", "partner": "msp", "notes": {"a": "1"}})),
            &request("alice", false),
        )
        .unwrap();
        let live = decide(
            Some(&live),
            &site(json!({"partner": "msp"})),
            &request("bob", false),
        )
        .unwrap();
        let after = decide(
            Some(&live),
            &site(json!({"displayName": "Alpha"})),
            &request("alice", false),
        )
        .unwrap();
        // partner stays (bob owns it too); notes.a goes, and the emptied notes with it.
        assert_eq!(
            after["spec"],
            json!({"displayName": "Alpha", "partner": "msp"})
        );
        assert_eq!(
            owned(&after, "alice").unwrap(),
            json!({"f:spec": {"f:displayName": {}}})
        );
    }

    #[test]
    fn fields_no_manager_owns_are_kept_and_nulls_are_not_set() {
        let mut live = site(json!({"displayName": "Alpha", "partner": "msp"}));
        live["status"] = json!({"score": 3});
        let after = decide(
            Some(&live),
            &site(json!({"displayName": "Beta", "partner": null})),
            &request("kubectl", false),
        )
        .unwrap();
        assert_eq!(
            after["spec"],
            json!({"displayName": "Beta", "partner": "msp"})
        );
        assert_eq!(after["status"], json!({"score": 3}));
        assert_eq!(
            owned(&after, "kubectl").unwrap(),
            json!({"f:spec": {"f:displayName": {}}})
        );
    }

    #[test]
    fn server_metadata_in_a_configuration_is_neither_owned_nor_merged() {
        let mut live = site(json!({"displayName": "Alpha"}));
        live["metadata"]["uid"] = json!("real");
        let mut config = site(json!({"displayName": "Alpha"}));
        config["metadata"]["uid"] = json!("forged");
        config["metadata"]["labels"] = json!({"tier": "gold"});
        let after = decide(Some(&live), &config, &request("kubectl", false)).unwrap();
        assert_eq!(after["metadata"]["uid"], "real");
        assert_eq!(after["metadata"]["labels"], json!({"tier": "gold"}));
        assert_eq!(
            owned(&after, "kubectl").unwrap(),
            json!({"f:metadata": {"f:labels": {"f:tier": {}}}, "f:spec": {"f:displayName": {}}})
        );
    }

    #[test]
    fn status_and_other_subresources_entries_are_other_managers() {
        let mut live = site(json!({"displayName": "Alpha"}));
        live["status"] = json!({"score": 7});
        live["metadata"]["managedFields"] = json!([{
            "manager": "kubectl", "operation": "Apply", "subresource": "status",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:score": {}}},
        }]);
        let mut config = site(json!({"displayName": "Alpha"}));
        config["status"] = json!({"score": 1});
        let after = decide(Some(&live), &config, &request("kubectl", false)).unwrap();
        // Status is not the object's to apply; the status entry stays as it was.
        assert_eq!(after["status"], json!({"score": 7}));
        let entries = after["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], live["metadata"]["managedFields"][0]);
        assert_eq!(
            entries[1]["fieldsV1"],
            json!({"f:spec": {"f:displayName": {}}})
        );
    }

    #[test]
    fn unreadable_entries_are_kept_verbatim() {
        let mut live = site(json!({"displayName": "Alpha"}));
        live["metadata"]["managedFields"] = json!([{"weird": true}]);
        let after = decide(
            Some(&live),
            &site(json!({"displayName": "Alpha"})),
            &request("kubectl", false),
        )
        .unwrap();
        assert_eq!(
            after["metadata"]["managedFields"][0],
            json!({"weird": true})
        );
        assert_eq!(
            after["metadata"]["managedFields"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn conflicts_with_several_managers_list_each_field_under_its_manager() {
        let conflicts = Conflicts(vec![
            Conflict {
                manager: "a".to_owned(),
                field: ".spec.x".to_owned(),
            },
            Conflict {
                manager: "a".to_owned(),
                field: ".spec.y".to_owned(),
            },
            Conflict {
                manager: "b".to_owned(),
                field: ".spec.z".to_owned(),
            },
        ]);
        let message = conflicts.to_string();
        assert!(
            message.starts_with(
                "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.x\n- .spec.y\n\
                 conflicts with \"b\":\n- .spec.z\n"
            ),
            "{message}"
        );
    }
}
