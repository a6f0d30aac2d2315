//! Which objects a list (or watch) returns: `?labelSelector=` and `?fieldSelector=`.

use std::collections::BTreeMap;

use osc_crds::Kind;
use osc_crds::selector::{self, Selector};
use serde_json::Value;

use super::error::ApiError;
use super::request::Query;
use crate::auth::Visibility;

/// A list's label and field selectors, parsed; [`Filter::matches`] is the list predicate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `?labelSelector=`; empty selects everything.
    labels: Selector,
    /// `?fieldSelector=` requirements, all of which must hold.
    fields: Vec<FieldRequirement>,
    /// What the caller may see of the collection (`None`: everything).
    tenancy: Option<(Kind, Visibility)>,
}

/// One requirement of a field selector: `metadata.name=web-1` or `metadata.namespace!=alpha`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    /// Which field.
    field: Field,
    /// `true` for `=`/`==`, `false` for `!=`.
    equal: bool,
    /// The value compared with.
    value: String,
}

/// The fields a field selector may name, as for custom resources in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `metadata.name`.
    Name,
    /// `metadata.namespace`.
    Namespace,
}

impl Filter {
    /// Reads `labelSelector` and `fieldSelector` from the query. A selector that does not
    /// parse is a 400 whose message points at the offending character.
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        let labels = match query.get("labelSelector") {
            Some(text) => selector::parse(text).map_err(|error| {
                ApiError::bad_request(format!("unable to parse labelSelector: {error}"))
            })?,
            None => Selector::everything(),
        };
        let fields = match query.get("fieldSelector") {
            Some(text) => parse_fields(text)?,
            None => Vec::new(),
        };
        Ok(Self {
            labels,
            fields,
            tenancy: None,
        })
    }

    /// The same filter, also leaving out the objects of `kind` that `visibility` hides.
    pub fn restricted(self, kind: Kind, visibility: Visibility) -> Self {
        Self {
            tenancy: (visibility != Visibility::All).then_some((kind, visibility)),
            ..self
        }
    }

    /// Whether the object (as JSON) passes every selector.
    pub fn matches(&self, object: &Value) -> bool {
        let metadata = &object["metadata"];
        let fields_hold = self.fields.iter().all(|requirement| {
            let actual = match requirement.field {
                Field::Name => metadata["name"].as_str(),
                Field::Namespace => metadata["namespace"].as_str(),
            }
            .unwrap_or_default();
            (actual == requirement.value) == requirement.equal
        });
        let visible = self
            .tenancy
            .as_ref()
            .is_none_or(|(kind, visibility)| visibility.admits(*kind, object));
        visible
            && fields_hold
            && (self.labels.is_empty() || self.labels.matches(&labels_of(object)))
    }
}

/// An object's `metadata.labels` (empty when absent).
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses `field=value,field!=value,…` (`==` also allowed) over the supported fields.
fn parse_fields(text: &str) -> Result<Vec<FieldRequirement>, ApiError> {
    text.split(',')
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .map(|term| {
            let (field, equal, value) = if let Some((field, value)) = term.split_once("!=") {
                (field, false, value)
            } else if let Some((field, value)) = term.split_once("==") {
                (field, true, value)
            } else if let Some((field, value)) = term.split_once('=') {
                (field, true, value)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid fieldSelector term {term:?}: expected field=value, field==value or \
                     field!=value"
                )));
            };
            let field = match field.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "{other:?} is not a known field selector: only \"metadata.name\", \
                         \"metadata.namespace\""
                    )));
                }
            };
            Ok(FieldRequirement {
                field,
                equal,
                value: value.trim().to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(query: &str) -> Result<Filter, ApiError> {
        Filter::from_query(&Query::parse(Some(query)))
    }

    #[test]
    fn selectors_select_by_labels_name_and_namespace() {
        let web =
            json!({"metadata": {"name": "web-1", "namespace": "alpha", "labels": {"role": "web"}}});
        let db =
            json!({"metadata": {"name": "db-1", "namespace": "beta", "labels": {"role": "db"}}});
        let bare = json!({"metadata": {"name": "bare", "namespace": "alpha"}});
        let cases = [
            ("", [true, true, true]),
            ("labelSelector=role%3Dweb", [true, false, false]),
            ("labelSelector=role!%3Dweb", [false, true, true]),
            ("labelSelector=!role", [false, false, true]),
            ("labelSelector=role+in+(web,db)", [true, true, false]),
            ("fieldSelector=metadata.name%3Dweb-1", [true, false, false]),
            (
                "fieldSelector=metadata.name%3D%3Dweb-1",
                [true, false, false],
            ),
            (
                "fieldSelector=metadata.namespace!%3Dalpha",
                [false, true, false],
            ),
            (
                "fieldSelector=metadata.namespace%3Dalpha&labelSelector=role",
                [true, false, false],
            ),
        ];
        for (query, expected) in cases {
            let filter = filter(query).unwrap();
            let got = [&web, &db, &bare].map(|object| filter.matches(object));
            assert_eq!(got, expected, "{query}");
        }
    }

    #[test]
    fn bad_selectors_are_bad_requests_that_say_where() {
        let cases = [
            ("labelSelector=role%3D(x", "unable to parse labelSelector"),
            ("labelSelector=role%3D(x", "position 5"),
            (
                "fieldSelector=spec.address%3Dx",
                "\"spec.address\" is not a known field selector",
            ),
            ("fieldSelector=metadata.name", "invalid fieldSelector term"),
        ];
        for (query, expected) in cases {
            match filter(query) {
                Err(ApiError::BadRequest(message)) => {
                    assert!(message.contains(expected), "{message:?} lacks {expected:?}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
