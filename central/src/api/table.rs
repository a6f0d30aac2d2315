//! Server-side printing: the `Table` that `kubectl get` shows, and `PartialObjectMetadata`.
//!
//! The columns are the printer columns of the kind's generated CRD (`osc_crds::schema::crd`), so
//! `kubectl get` prints the same whether it talks to Central Command or to a Kubernetes cluster
//! with our CRDs installed. Cells are computed as the API server's CRD table convertor does:
//! strings as printed, numbers and booleans typed, dates as ages (`5m`, `3d4h`).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use osc_crds::Kind;
use osc_proto::api::{ColumnType, ListMeta, Table, TableColumnDefinition, TableRow};
use serde_json::{Value, json};

use super::error::ApiError;
use super::request::Query;

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata as `PartialObjectMetadata`, which kubectl reads names from.
    #[default]
    Metadata,
    /// The whole (redacted) object.
    Object,
}

impl IncludeObject {
    /// Reads `?includeObject=` (default `Metadata`).
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        match query.get("includeObject") {
            None | Some("Metadata") => Ok(Self::Metadata),
            Some("None") => Ok(Self::None),
            Some("Object") => Ok(Self::Object),
            Some(other) => Err(ApiError::bad_request(format!(
                "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \
                 \"None\", \"Object\""
            ))),
        }
    }
}

/// The table of `objects` (already redacted) of `kind`, with ages computed at `now`.
pub fn table(
    kind: Kind,
    objects: &[Value],
    metadata: ListMeta,
    include: IncludeObject,
    now: DateTime<Utc>,
) -> Table {
    let columns = &COLUMNS[&kind];
    let definitions = std::iter::once(name_column())
        .chain(columns.iter().map(|column| column.definition.clone()))
        .collect();
    let rows = objects
        .iter()
        .map(|object| {
            let name = object["metadata"]["name"].clone();
            let cells = std::iter::once(name)
                .chain(columns.iter().map(|column| column.cell(object, now)))
                .collect();
            let object = match include {
                IncludeObject::None => None,
                IncludeObject::Metadata => Some(partial_metadata(object)),
                IncludeObject::Object => Some(object.clone()),
            };
            TableRow { cells, object }
        })
        .collect();
    Table::new(metadata, definitions, rows)
}

/// An object's `metadata` as a `meta.k8s.io/v1` `PartialObjectMetadata`.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

/// A list of `PartialObjectMetadata`.
pub fn partial_metadata_list(objects: &[Value], metadata: ListMeta) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "items": objects.iter().map(partial_metadata).collect::<Vec<_>>(),
    })
}

/// How long ago, as Kubernetes prints ages (`k8s.io/apimachinery/pkg/util/duration.HumanDuration`):
/// precise when recent, coarser as it grows (`90s`, `5m30s`, `3h`, `2d4h`, `400d`, `3y20d`).
pub fn human_duration(elapsed: chrono::Duration) -> String {
    let seconds = elapsed.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The first column of every table: the object's name.
fn name_column() -> TableColumnDefinition {
    TableColumnDefinition::new(
        "Name",
        ColumnType::String,
        "Name must be unique within a namespace (metadata.name).",
    )
    .with_format("name")
}

/// A printer column: its definition and the path of the value it shows.
#[derive(Debug, Clone)]
struct Column {
    /// Header, type and description, as sent.
    definition: TableColumnDefinition,
    /// Where the value is.
    path: Vec<Step>,
}

/// One step of the JSONPath subset that printer columns use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `.name`: a field of an object.
    Field(String),
    /// `[?(@.key=="value")]`: the first item of a list whose `key` is `value`.
    Where {
        /// The compared field of each item.
        key: String,
        /// The value it must have.
        value: String,
    },
}

/// Every kind's columns, read once from the generated CRDs.
static COLUMNS: LazyLock<HashMap<Kind, Vec<Column>>> = LazyLock::new(|| {
    Kind::ALL
        .into_iter()
        .map(|kind| {
            let crd = osc_crds::schema::crd(kind);
            let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|column| Column::from_crd(kind, column))
                .collect();
            (kind, columns)
        })
        .collect()
});

impl Column {
    /// Reads a CRD `additionalPrinterColumns` entry. The CRDs are generated by our own code and
    /// checked by its tests, so a column this cannot read is a bug, caught by this module's tests.
    fn from_crd(kind: Kind, column: &Value) -> Self {
        let text = |field: &str| column[field].as_str().unwrap_or_default().to_owned();
        let json_path = text("jsonPath");
        let path = parse_path(&json_path)
            .unwrap_or_else(|| panic!("{kind} printer column path {json_path:?} is not supported"));
        let column_type = match text("type").as_str() {
            "integer" => ColumnType::Integer,
            "number" => ColumnType::Number,
            "boolean" => ColumnType::Boolean,
            "date" => ColumnType::Date,
            _ => ColumnType::String,
        };
        let description =
            format!("Custom resource definition column (in JSONPath format): {json_path}");
        Self {
            definition: TableColumnDefinition::new(text("name"), column_type, description)
                .with_format(text("format"))
                .with_priority(
                    column["priority"]
                        .as_i64()
                        .unwrap_or(0)
                        .try_into()
                        .unwrap_or(0),
                ),
            path,
        }
    }

    /// The cell for `object`: `null` (kubectl prints `<none>`) when the value is absent or of
    /// another type than the column's.
    fn cell(&self, object: &Value, now: DateTime<Utc>) -> Value {
        let Some(value) = evaluate(&self.path, object) else {
            return Value::Null;
        };
        match self.definition.column_type {
            ColumnType::String => match value {
                Value::String(text) => Value::String(text.clone()),
                Value::Null => Value::Null,
                other => Value::String(other.to_string()),
            },
            ColumnType::Integer => value.as_i64().map_or(Value::Null, Value::from),
            ColumnType::Number => value.as_f64().map_or(Value::Null, Value::from),
            ColumnType::Boolean => value.as_bool().map_or(Value::Null, Value::from),
            ColumnType::Date => match value.as_str() {
                Some(text) => match DateTime::parse_from_rfc3339(text) {
                    Ok(time) => Value::String(human_duration(now - time.with_timezone(&Utc))),
                    Err(_) => Value::String("<invalid>".to_owned()),
                },
                None => Value::Null,
            },
        }
    }
}

/// Parses `.a.b`, with `[?(@.key=="value")]` after any field; `None` for anything else.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Field(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("[?(@.") {
            let end = after.find(")]")?;
            let (key, value) = after[..end].split_once("==")?;
            let value = value.strip_prefix('"')?.strip_suffix('"')?;
            steps.push(Step::Where {
                key: key.to_owned(),
                value: value.to_owned(),
            });
            rest = &after[end + 2..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Follows `path` in `object`.
fn evaluate<'a>(path: &[Step], object: &'a Value) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, step| match step {
        Step::Field(name) => value.get(name),
        Step::Where { key, value: wanted } => value
            .as_array()?
            .iter()
            .find(|item| item.get(key).and_then(Value::as_str) == Some(wanted)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_print_as_kubernetes_prints_them() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (5 * 60 + 30, "5m30s"),
            (10 * 60 + 30, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (7 * 3600 + 59 * 60, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 4 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (730 * 86400, "2y"),
            (3 * 365 * 86400 + 20 * 86400, "3y20d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(
                human_duration(chrono::Duration::seconds(seconds)),
                expected,
                "{seconds}s"
            );
        }
    }

    #[test]
    fn printer_column_paths_parse_and_evaluate() {
        let object = json!({
            "spec": {"partner": "msp-1", "n": 3},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Compliant", "status": "False"},
            ]},
        });
        let cases = [
            (".spec.partner", Some(json!("msp-1"))),
            (".spec.n", Some(json!(3))),
            (".spec.missing", None),
            (
                ".status.conditions[?(@.type==\"Compliant\")].status",
                Some(json!("False")),
            ),
            (".status.conditions[?(@.type==\"Online\")].status", None),
        ];
        for (path, expected) in cases {
            let steps = parse_path(path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(evaluate(&steps, &object).cloned(), expected, "{path}");
        }
        for unsupported in ["spec", ".spec..x", ".a[0]", ".a[?(@.t=='x')]"] {
            assert_eq!(parse_path(unsupported), None, "{unsupported}");
        }
    }

    #[test]
    fn every_kind_has_the_columns_of_its_crd_after_the_name() {
        let now = Utc::now();
        for kind in Kind::ALL {
            let crd = osc_crds::schema::crd(kind);
            let expected: Vec<&str> = std::iter::once("Name")
                .chain(
                    crd["spec"]["versions"][0]["additionalPrinterColumns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|column| column["name"].as_str().unwrap()),
                )
                .collect();
            let table = table(kind, &[], ListMeta::default(), IncludeObject::None, now);
            let names: Vec<&str> = table
                .column_definitions
                .iter()
                .map(|column| column.name.as_str())
                .collect();
            assert_eq!(names, expected, "{kind}");
            assert_eq!(names.last(), Some(&"Age"), "{kind}");
        }
    }

    #[test]
    fn cells_are_typed_as_their_columns_and_ages_are_relative() {
        let now: DateTime<Utc> = "2025-06-01T12:00:00Z".parse().unwrap();
        let site = json!({
            "metadata": {"name": "alpha", "creationTimestamp": "2025-06-01T11:55:00Z"},
            "spec": {"partner": "msp-1"},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "counts": {"hosts": 4},
            },
        });
        let table = table(
            Kind::Site,
            std::slice::from_ref(&site),
            ListMeta::default(),
            IncludeObject::Metadata,
            now,
        );
        let row = &table.rows[0];
        let cell = |name: &str| {
            let index = table
                .column_definitions
                .iter()
                .position(|column| column.name == name)
                .unwrap_or_else(|| panic!("no column {name}"));
            row.cells[index].clone()
        };
        assert_eq!(cell("Name"), json!("alpha"));
        assert_eq!(cell("Partner"), json!("msp-1"));
        assert_eq!(cell("Ready"), json!("True"));
        assert_eq!(cell("Compliant"), Value::Null);
        assert_eq!(cell("Hosts"), json!(4));
        assert_eq!(cell("Age"), json!("5m"));
        assert_eq!(
            row.object,
            Some(json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": site["metadata"],
            }))
        );
    }
}
