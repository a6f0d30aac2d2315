//! JSON Schemas and `CustomResourceDefinition`s for every kind, generated from the Rust types so that what
//! editors, `kubectl` and the server's OpenAPI document describe can never drift from what the crate
//! accepts.
//!
//! Two flavours come out of the same types:
//! - [`object_schema`]: a plain JSON Schema (draft 2020-12, shared types under `$defs`) for editors and
//!   validators of manifests.
//! - [`structural_schema`] and [`crd`]: the `openAPIV3Schema` Kubernetes wants in a CRD. Kubernetes only
//!   accepts *structural* schemas: every node typed, no `$ref`, `nullable` instead of `"null"` types, no
//!   `additionalProperties` beside `properties`, and `oneOf`/`anyOf` only as extra value checks on fields
//!   that are also declared outside them. schemars emits OpenAPI 3 with subschemas inlined; [`Structural`]
//!   then rewrites what remains (enums, optional enums, tagged unions, free-form values) into that form.
//!
//! The checked-in copies under `crds/generated/` are compared with these functions by
//! `crds/tests/generated.rs`; regenerate them with
//! `UPDATE_GENERATED=1 cargo test -p osc-crds --test generated`.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::transform::RestrictFormats;
use serde_json::{Map, Value, json};

use crate::kinds::{Appliance, Credential, Host, Release, Rollout, Runbook, Site};
use crate::{API_VERSION, GROUP, Kind, VERSION};

/// The JSON Schema (draft 2020-12) of a whole object of `kind`: `apiVersion`, `kind`, `metadata`, `spec`
/// and `status`, with shared types under `$defs`. Keys are sorted so that the output is byte-stable.
pub fn object_schema(kind: Kind) -> Value {
    let settings = SchemaSettings::draft2020_12();
    let mut schema = root_schema(kind, settings);
    schema.sort_all_objects();
    schema
}

/// The structural `openAPIV3Schema` of a whole object of `kind`, as a CRD carries it and as Central
/// Command's OpenAPI document can serve it. `metadata` is only `type: object`: the API server owns its
/// schema.
pub fn structural_schema(kind: Kind) -> Value {
    let mut schema = root_schema(kind, openapi_settings());
    make_structural(&mut schema, "");
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("metadata".to_owned(), json!({ "type": "object" }));
        properties.insert(
            "apiVersion".to_owned(),
            json!({ "type": "string", "description": format!("Always `{API_VERSION}`.") }),
        );
        properties.insert(
            "kind".to_owned(),
            json!({ "type": "string", "description": format!("Always `{}`.", kind.as_str()) }),
        );
    }
    schema.sort_all_objects();
    schema
}

/// The `apiextensions.k8s.io/v1` `CustomResourceDefinition` of `kind`: names, scope, the one served and
/// stored version with a status subresource, the printer columns `kubectl get` shows, and the structural
/// schema.
pub fn crd(kind: Kind) -> Value {
    let mut crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{}.{GROUP}", kind.plural()) },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.as_str(),
                "listKind": kind.list_kind(),
                "plural": kind.plural(),
                "singular": kind.singular(),
                "shortNames": kind.short_names(),
            },
            "scope": if kind.namespaced() { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "additionalPrinterColumns": printer_columns(kind),
                "schema": { "openAPIV3Schema": structural_schema(kind) },
            }],
        },
    });
    crd.sort_all_objects();
    crd
}

/// [`crd`] as the YAML file `kubectl apply -f` reads.
///
/// serde_yaml writes YAML 1.2, where `off` or `yes` are strings, but `kubectl` and the API server read
/// YAML 1.1, where they are booleans (a healing mode `off` would turn into `false`); such values are
/// quoted.
pub fn crd_yaml(kind: Kind) -> String {
    let yaml = serde_yaml::to_string(&crd(kind)).expect("JSON values always serialize to YAML");
    quote_yaml11_booleans(&yaml)
}

/// Generates the root schema of `kind`'s object type with `settings`.
fn root_schema(kind: Kind, settings: SchemaSettings) -> Value {
    fn of<T: JsonSchema>(settings: SchemaSettings) -> Value {
        SchemaGenerator::new(settings)
            .into_root_schema_for::<T>()
            .to_value()
    }
    match kind {
        Kind::Site => of::<Site>(settings),
        Kind::Host => of::<Host>(settings),
        Kind::Appliance => of::<Appliance>(settings),
        Kind::Credential => of::<Credential>(settings),
        Kind::Runbook => of::<Runbook>(settings),
        Kind::Release => of::<Release>(settings),
        Kind::Rollout => of::<Rollout>(settings),
    }
}

/// The columns `kubectl get` prints for `kind`, besides the name (and namespace) it always prints: what
/// an operator scans a fleet for. Conditions show their status (`True`/`False`/`Unknown`).
fn printer_columns(kind: Kind) -> Value {
    use crate::kinds::{appliance, host, rollout, site};

    /// A column: header, column type, and the field it shows.
    enum Column {
        /// A field, by JSONPath.
        Field(&'static str, &'static str, &'static str),
        /// The status of the condition of this type.
        Condition(&'static str),
    }
    use Column::{Condition, Field};

    let columns: &[Column] = match kind {
        Kind::Site => &[
            Field("Partner", "string", ".spec.partner"),
            Condition(site::CONDITION_READY),
            Condition(site::CONDITION_COMPLIANT),
            Condition(site::CONDITION_APPLIANCE_ONLINE),
            Field("Hosts", "integer", ".status.counts.hosts"),
        ],
        Kind::Host => &[
            Field("Address", "string", ".spec.address"),
            Field("Platform", "string", ".spec.platform"),
            Condition(host::CONDITION_REACHABLE),
            Condition(host::CONDITION_COMPLIANT),
        ],
        Kind::Appliance => &[
            Field("Desired", "string", ".spec.desiredVersion"),
            Field("Current", "string", ".status.currentVersion"),
            Field("Slot", "string", ".status.bootedSlot"),
            Field("Update", "string", ".status.updatePhase"),
            Condition(appliance::CONDITION_ONLINE),
            Field("Heartbeat", "date", ".status.lastHeartbeat"),
        ],
        Kind::Credential => &[
            Field("Type", "string", ".spec.type"),
            Field("Username", "string", ".spec.username"),
        ],
        Kind::Runbook => &[
            Field("Platform", "string", ".spec.platform"),
            Field("Severity", "string", ".spec.severity"),
            Field("Disruptive", "boolean", ".spec.disruptive"),
        ],
        Kind::Release => &[
            Field("Version", "string", ".spec.version"),
            Field("Min-Controller", "string", ".spec.minControllerVersion"),
        ],
        Kind::Rollout => &[
            Field("Release", "string", ".spec.release"),
            Field("Wave", "integer", ".status.currentWave"),
            Field("Succeeded", "integer", ".status.counts.succeeded"),
            Field("Failed", "integer", ".status.counts.failed"),
            Condition(rollout::CONDITION_PROGRESSING),
            Condition(rollout::CONDITION_COMPLETE),
        ],
    };
    let mut columns: Vec<Value> = columns
        .iter()
        .map(|column| match column {
            Field(name, type_, path) => json!({ "name": name, "type": type_, "jsonPath": path }),
            Condition(condition) => json!({
                "name": condition,
                "type": "string",
                "jsonPath": format!(".status.conditions[?(@.type==\"{condition}\")].status"),
            }),
        })
        .collect();
    columns
        .push(json!({ "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp" }));
    Value::Array(columns)
}

/// Single-quotes the plain scalars of `yaml` (as serde_yaml writes it: block style, one value per line)
/// that YAML 1.1 reads as booleans, leaving the contents of block scalars (`|-` descriptions) alone.
fn quote_yaml11_booleans(yaml: &str) -> String {
    const BOOLEANS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    let mut out = String::with_capacity(yaml.len());
    // The indentation of the key that opened the block scalar being skipped, if any.
    let mut block_scalar: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(opener) = block_scalar {
            if line.trim().is_empty() || indent > opener {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            block_scalar = None;
        }
        let value_start = match line.rfind(": ") {
            Some(colon) => colon + 2,
            None if line.trim_start().starts_with("- ") => indent + 2,
            None => line.len(),
        };
        let value = &line[value_start..];
        if BOOLEANS.contains(&value) {
            out.push_str(&line[..value_start]);
            out.push('\'');
            out.push_str(value);
            out.push('\'');
        } else {
            if value.starts_with(['|', '>']) {
                block_scalar = Some(indent);
            }
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// schemars' OpenAPI 3 output (`nullable`, `const` as `enum`) with every subschema inlined, since CRD
/// schemas cannot hold `$ref`s.
fn openapi_settings() -> SchemaSettings {
    SchemaSettings::openapi3().with(|settings| {
        settings.inline_subschemas = true;
        settings.meta_schema = None;
        settings.transforms.push(Box::new(kubernetes_formats()));
    })
}

/// Keeps only the `format` values Kubernetes knows; others (schemars' `uint16`, …) carry no meaning there
/// and newer API servers warn about them. Their range is still enforced by `minimum`/`maximum`.
fn kubernetes_formats() -> RestrictFormats {
    let mut formats = RestrictFormats::default();
    formats.infer_from_meta_schema = false;
    formats.allowed_formats = [
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "date",
        "date-time",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "uuid",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    formats
}

/// Keywords a structural schema may not carry, or that Kubernetes does not know.
const DROPPED_KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "definitions",
    "$comment",
    "title",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    // Kubernetes rejects `uniqueItems: true`; list semantics would go in `x-kubernetes-list-type`.
    "uniqueItems",
];

const PRESERVE_UNKNOWN: &str = "x-kubernetes-preserve-unknown-fields";

/// Rewrites `node`, a schemars OpenAPI 3 schema with subschemas inlined found at `at` (a dotted path for
/// panic messages), and everything below it into a Kubernetes structural schema. It panics on shapes
/// that have no structural form (recursive types, union variants that give one field two different
/// types): those are bugs in the resource types, caught by the generated-files test, never by a user.
fn make_structural(node: &mut Value, at: &str) {
    // `true` and `{}` accept any value, e.g. a `serde_json::Value` field.
    if node.as_bool() == Some(true) || node.as_object().is_some_and(Map::is_empty) {
        *node = json!({ PRESERVE_UNKNOWN: true });
        return;
    }
    let Some(schema) = node.as_object_mut() else {
        panic!("{at}: a schema that is neither an object nor `true` has no structural form");
    };
    assert!(
        !schema.contains_key("$ref"),
        "{at}: `$ref` survived inlining, so the type is recursive; CRD schemas cannot express that"
    );
    for keyword in DROPPED_KEYWORDS {
        schema.remove(*keyword);
    }

    // Children first, so that the junctor rules below see structural branches.
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            make_structural(property, &format!("{at}.{name}"));
        }
    }
    if let Some(items) = schema.get_mut("items") {
        make_structural(items, &format!("{at}[]"));
    }
    match schema.get("additionalProperties") {
        // Unknown fields are pruned by the API server anyway, and a structural schema may not list
        // `additionalProperties` beside `properties`.
        Some(Value::Bool(false)) => {
            schema.remove("additionalProperties");
        }
        Some(Value::Bool(true)) => {
            schema.remove("additionalProperties");
            schema.insert(PRESERVE_UNKNOWN.to_owned(), Value::Bool(true));
        }
        Some(_) => {
            if let Some(values) = schema.get_mut("additionalProperties") {
                make_structural(values, &format!("{at}.*"));
            }
        }
        None => {}
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get_mut(junctor) {
            for (index, branch) in branches.iter_mut().enumerate() {
                make_structural(branch, &format!("{at}({junctor}[{index}])"));
            }
        }
    }

    if let Some(Value::Array(branches)) = schema.remove("allOf") {
        for branch in branches {
            absorb(schema, branch, at);
        }
    }
    for junctor in ["anyOf", "oneOf"] {
        hoist_null_branch(schema, junctor, at);
        hoist_union(schema, junctor, at);
    }
    // An optional enum lists `null` among its values; `nullable` already says that. (A schema of
    // `null` alone is left for `hoist_null_branch` to recognise.)
    if schema.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::Array(values)) = schema.get_mut("enum")
        && values.iter().any(|value| !value.is_null())
    {
        values.retain(|value| !value.is_null());
    }
}

/// Removes the `null` branch an `Option<T>` adds to `junctor`, marking the schema `nullable` instead, and
/// when only one branch is left, merges it into the schema.
fn hoist_null_branch(schema: &mut Map<String, Value>, junctor: &str, at: &str) {
    let Some(Value::Array(branches)) = schema.get_mut(junctor) else {
        return;
    };
    let before = branches.len();
    branches.retain(|branch| !is_null_schema(branch));
    if branches.len() == before {
        return;
    }
    schema.insert("nullable".to_owned(), Value::Bool(true));
    if let Some(Value::Array(mut branches)) = schema.remove(junctor) {
        if branches.len() == 1 {
            absorb(schema, branches.remove(0), at);
        } else {
            schema.insert(junctor.to_owned(), Value::Array(branches));
        }
    }
}

/// Whether `schema` accepts only `null`, in any of the spellings schemars uses.
fn is_null_schema(schema: &Value) -> bool {
    schema.get("type") == Some(&json!("null")) || schema.get("enum") == Some(&json!([null]))
}

/// Rewrites the union in `junctor` into structural form:
/// - all branches single values of one type (a Rust enum of unit variants): one `enum`, with each
///   variant's documentation appended to the description;
/// - all branches objects (a tagged Rust enum): their properties declared on the schema itself, and the
///   union kept as bare value checks (`required`, discriminator `enum`s) when every branch has one;
/// - anything else: a field of any value, checked by the crate's own validation instead.
fn hoist_union(schema: &mut Map<String, Value>, junctor: &str, at: &str) {
    let Some(Value::Array(branches)) = schema.remove(junctor) else {
        return;
    };
    let types: Vec<Option<&Value>> = branches.iter().map(|branch| branch.get("type")).collect();
    let one_type = types
        .first()
        .copied()
        .flatten()
        .filter(|first| types.iter().all(|t| t == &Some(*first)));

    match one_type.and_then(Value::as_str) {
        Some("object") => hoist_object_union(schema, junctor, branches, at),
        Some(scalar) if branches.iter().all(|branch| branch.get("enum").is_some()) => {
            let scalar = scalar.to_owned();
            let mut values = Vec::new();
            let mut notes = Vec::new();
            for branch in branches {
                let branch_values = branch["enum"].as_array().cloned().unwrap_or_default();
                if let (Some(description), [value]) =
                    (branch.get("description"), &branch_values[..])
                {
                    notes.push(format!(
                        "- {value}: {}",
                        description.as_str().unwrap_or_default()
                    ));
                }
                values.extend(branch_values);
            }
            schema.insert("type".to_owned(), Value::String(scalar));
            schema.insert("enum".to_owned(), Value::Array(values));
            if !notes.is_empty() {
                let description = schema
                    .get("description")
                    .and_then(Value::as_str)
                    .map(|description| format!("{description}\n\n"))
                    .unwrap_or_default();
                schema.insert(
                    "description".to_owned(),
                    Value::String(format!("{description}{}", notes.join("\n"))),
                );
            }
        }
        _ => {
            let mut kinds: Vec<&str> = types.iter().flatten().filter_map(|t| t.as_str()).collect();
            kinds.sort_unstable();
            schema.remove("type");
            if kinds == ["integer", "string"] {
                schema.insert("x-kubernetes-int-or-string".to_owned(), Value::Bool(true));
            } else {
                schema.insert(PRESERVE_UNKNOWN.to_owned(), Value::Bool(true));
            }
        }
    }
}

/// Declares the properties of every object branch on `schema` and keeps, per branch, only the value
/// checks a structural junctor may hold: `required` and the `enum` of each property.
fn hoist_object_union(
    schema: &mut Map<String, Value>,
    junctor: &str,
    branches: Vec<Value>,
    at: &str,
) {
    schema.insert("type".to_owned(), json!("object"));
    let mut checks = Vec::with_capacity(branches.len());
    for branch in branches {
        let Value::Object(mut branch) = branch else {
            unreachable!("branches typed `object` are JSON objects");
        };
        let mut check = Map::new();
        if let Some(required) = branch.remove("required") {
            check.insert("required".to_owned(), required);
        }
        if let Some(Value::Object(properties)) = branch.remove("properties") {
            let mut enums = Map::new();
            for (name, property) in properties {
                if let Some(values) = property.get("enum") {
                    enums.insert(name.clone(), json!({ "enum": values }));
                }
                merge_property(schema, name, property, at);
            }
            if !enums.is_empty() {
                check.insert("properties".to_owned(), Value::Object(enums));
            }
        }
        checks.push(Value::Object(check));
    }
    // A branch without checks matches everything, which would break `oneOf`; then the union can only be
    // enforced by the crate's validation.
    if checks
        .iter()
        .all(|check| check.as_object().is_some_and(|check| !check.is_empty()))
    {
        schema.insert(junctor.to_owned(), Value::Array(checks));
    }
}

/// Merges `branch` into `schema`: properties one by one, `required` as a union, and any other keyword
/// only where `schema` has none (the schema's own description wins over the branch's).
fn absorb(schema: &mut Map<String, Value>, branch: Value, at: &str) {
    let Value::Object(branch) = branch else {
        panic!("{at}: cannot merge the non-object schema {branch}");
    };
    for (keyword, value) in branch {
        match (keyword.as_str(), value) {
            ("properties", Value::Object(properties)) => {
                for (name, property) in properties {
                    merge_property(schema, name, property, at);
                }
            }
            ("required", Value::Array(required)) => {
                let Value::Array(existing) = schema.entry("required").or_insert_with(|| json!([]))
                else {
                    panic!("{at}: `required` is not an array");
                };
                for name in required {
                    if !existing.contains(&name) {
                        existing.push(name);
                    }
                }
            }
            (_, value) => {
                schema.entry(keyword).or_insert(value);
            }
        }
    }
}

/// Declares property `name` on `schema`. When another branch declared it already, the two must agree up
/// to their description and `enum` values, whose union is kept (a tag field such as `type: ssh | winrm`).
fn merge_property(schema: &mut Map<String, Value>, name: String, property: Value, at: &str) {
    let Value::Object(properties) = schema.entry("properties").or_insert_with(|| json!({})) else {
        panic!("{at}: `properties` is not an object");
    };
    let Some(existing) = properties.get_mut(&name) else {
        properties.insert(name, property);
        return;
    };
    if *existing == property {
        return;
    }
    let shape = |schema: &Value| {
        let mut schema = schema.clone();
        if let Some(schema) = schema.as_object_mut() {
            schema.remove("description");
            schema.remove("enum");
        }
        schema
    };
    let (Some(Value::Array(values)), Some(Value::Array(more))) =
        (existing.get("enum").cloned(), property.get("enum"))
    else {
        panic!(
            "{at}.{name}: union variants give this field different schemas: {existing} and {property}"
        );
    };
    assert!(
        shape(existing) == shape(&property),
        "{at}.{name}: union variants give this field different schemas: {existing} and {property}"
    );
    let mut values = values;
    for value in more {
        if !values.contains(value) {
            values.push(value.clone());
        }
    }
    existing["enum"] = Value::Array(values);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::{make_structural, openapi_settings};

    fn structural<T: JsonSchema>() -> Value {
        let mut schema = openapi_settings()
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value();
        make_structural(&mut schema, "");
        schema
    }

    /// How a site heals.
    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        /// Fix drift.
        Enforce,
        /// Only report drift.
        Audit,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
    enum Transport {
        Local,
        Ssh { port: u16, user: String },
        Winrm { port: u16 },
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Target {
        Webhook { url: String },
        Syslog { address: String },
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Spec {
        mode: Mode,
        optional_mode: Option<Mode>,
        transport: Transport,
        target: Target,
        params: Value,
        labels: BTreeMap<String, String>,
        port: u16,
        list: Vec<u32>,
    }

    #[test]
    fn unit_enums_become_one_documented_string_enum() {
        let schema = structural::<Spec>();
        assert_eq!(
            schema["properties"]["mode"],
            json!({
                "description": "How a site heals.\n\n- \"enforce\": Fix drift.\n- \"audit\": Only report drift.",
                "type": "string",
                "enum": ["enforce", "audit"],
            })
        );
        let optional = &schema["properties"]["optionalMode"];
        assert_eq!(optional["nullable"], true);
        assert_eq!(optional["type"], "string");
        assert_eq!(optional["enum"], json!(["enforce", "audit"]));
    }

    #[test]
    fn tagged_unions_declare_all_fields_and_keep_only_value_checks_per_variant() {
        let schema = structural::<Spec>();
        let transport = &schema["properties"]["transport"];
        assert_eq!(transport["type"], "object");
        assert_eq!(
            transport["properties"]["type"],
            json!({ "type": "string", "enum": ["local", "ssh", "winrm"] })
        );
        assert_eq!(transport["properties"]["port"]["type"], "integer");
        assert_eq!(transport["properties"]["user"], json!({ "type": "string" }));
        assert_eq!(
            transport["oneOf"],
            json!([
                { "required": ["type"], "properties": { "type": { "enum": ["local"] } } },
                { "required": ["type", "port", "user"], "properties": { "type": { "enum": ["ssh"] } } },
                { "required": ["type", "port"], "properties": { "type": { "enum": ["winrm"] } } },
            ])
        );
        assert_eq!(
            schema["properties"]["target"]["oneOf"],
            json!([{ "required": ["webhook"] }, { "required": ["syslog"] }])
        );
    }

    #[test]
    fn free_form_values_maps_and_unknown_formats() {
        let schema = structural::<Spec>();
        assert_eq!(
            schema["properties"]["params"],
            json!({ "x-kubernetes-preserve-unknown-fields": true })
        );
        assert_eq!(
            schema["properties"]["labels"],
            json!({ "type": "object", "additionalProperties": { "type": "string" } })
        );
        // `uint16` means nothing to Kubernetes; the range stays.
        assert_eq!(
            schema["properties"]["port"],
            json!({ "type": "integer", "minimum": 0, "maximum": 65535 })
        );
        assert!(
            schema.get("additionalProperties").is_none(),
            "denied unknown fields are pruned instead"
        );
        assert!(schema.get("title").is_none());
    }

    #[test]
    fn yaml11_booleans_are_quoted_outside_block_scalars() {
        let cases = [
            ("enum:\n- enforce\n- off\n", "enum:\n- enforce\n- 'off'\n"),
            (
                "a:\n  default: yes\n  b: No\n",
                "a:\n  default: 'yes'\n  b: 'No'\n",
            ),
            ("k: offline\nj: 'on'\n", "k: offline\nj: 'on'\n"),
            (
                "description: |-\n  Heal: no\n  - off\n\n  more\nnext: off\n",
                "description: |-\n  Heal: no\n  - off\n\n  more\nnext: 'off'\n",
            ),
        ];
        for (yaml, expected) in cases {
            assert_eq!(super::quote_yaml11_booleans(yaml), expected, "for {yaml:?}");
        }
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(untagged)]
    enum Conflicting {
        Number { value: u32 },
        Text { value: String },
    }

    #[test]
    #[should_panic(expected = ".value: union variants give this field different schemas")]
    fn variants_that_disagree_on_a_field_are_refused() {
        structural::<Conflicting>();
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    struct Tree {
        children: Vec<Tree>,
    }

    #[test]
    #[should_panic(expected = "the type is recursive")]
    fn recursive_types_are_refused() {
        structural::<Tree>();
    }
}
