//! The Kubernetes API envelopes around our resources: `List`, watch events, `Status` errors and the
//! server-side printing `Table`.
//!
//! Field names, field order, omitted-when-empty rules and error wording follow `k8s.io/apimachinery`
//! (`metav1.ListMeta`, `metav1.Status`, `metav1.WatchEvent`, `metav1.Table` and `api/errors`), because
//! `kubectl` and client-go read these bytes: client-go's reflector, for instance, re-lists only when a
//! watch `ERROR` carries a `Status` with code 410 and reason `Expired` or `Gone`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The standard message of a write whose `resourceVersion` is stale, as the Kubernetes API server words it.
pub const OPTIMISTIC_LOCK_MESSAGE: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// The metadata of a list (and of a `Status` or `Table`): where the list stands in the history and how to
/// get the next page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// The store's version when the list was read; a watch resumes from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Opaque token for the next page (`?continue=`); absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
    /// How many items remain after this page, when the server knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

/// A list of one kind of object, such as a `SiteList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    /// The items' group and version, e.g. `osiriscare.net/v1alpha1`.
    pub api_version: String,
    /// The item kind followed by `List`, e.g. `SiteList`.
    pub kind: String,
    /// Version and paging.
    pub metadata: ListMeta,
    /// The objects; always present, `[]` when there are none, as clients expect.
    pub items: Vec<T>,
}

impl<T> List<T> {
    /// A list of `item_kind` objects; the list's kind is `item_kind` + `List`.
    pub fn new(
        api_version: impl Into<String>,
        item_kind: &str,
        metadata: ListMeta,
        items: Vec<T>,
    ) -> Self {
        Self {
            api_version: api_version.into(),
            kind: format!("{item_kind}List"),
            metadata,
            items,
        }
    }
}

/// One event of a watch stream: `{"type": "ADDED", "object": …}`.
///
/// `BOOKMARK` carries only a resource version and `ERROR` carries a [`Status`], so those two have their
/// own object types rather than `T`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "object", rename_all = "UPPERCASE")]
pub enum WatchEvent<T> {
    /// An object was created (or existed when a watch started from the current state).
    Added(T),
    /// An object changed; the event holds its new state.
    Modified(T),
    /// An object was deleted; the event holds its last state.
    Deleted(T),
    /// Progress without a change: the watch has seen everything up to this resource version.
    Bookmark(Bookmark),
    /// The watch failed, e.g. 410 when the requested resource version is older than the kept history.
    Error(Status),
}

/// The object of a `BOOKMARK` event: the kind and only `metadata.resourceVersion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bookmark {
    /// The watched kind's group and version.
    pub api_version: String,
    /// The watched kind, e.g. `Site`.
    pub kind: String,
    /// The resource version reached.
    pub metadata: BookmarkMeta,
}

impl Bookmark {
    /// A bookmark for a watch of `kind` objects that has seen everything up to `resource_version`.
    pub fn new(
        api_version: impl Into<String>,
        kind: impl Into<String>,
        resource_version: impl Into<String>,
    ) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            metadata: BookmarkMeta {
                resource_version: resource_version.into(),
                annotations: BTreeMap::new(),
            },
        }
    }
}

/// The metadata of a [`Bookmark`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookmarkMeta {
    /// Where a client resumes its watch after a disconnect.
    pub resource_version: String,
    /// Annotations such as `k8s.io/initial-events-end`; omitted when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The outcome of an API call that returns no object, and every error: `kind: Status`, `apiVersion: v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `Status`.
    pub kind: String,
    /// Always `v1`: `Status` lives in the core group whatever resource the call was about.
    pub api_version: String,
    /// Empty (`{}`), as the API server sends it.
    pub metadata: ListMeta,
    /// `Success` or `Failure`.
    pub status: StatusResult,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The machine-readable cause; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
    /// The object concerned and per-field causes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code, repeated so the body stands on its own (as in a watch `ERROR` event).
    pub code: u16,
}

impl Status {
    /// A successful call that returns no object (200).
    pub fn success() -> Self {
        Self {
            status: StatusResult::Success,
            ..Self::failure(200, None, String::new(), None)
        }
    }

    /// 400: the request itself is malformed (bad query parameter, undecodable body).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(400, Some(StatusReason::BadRequest), message.into(), None)
    }

    /// 401: no valid credentials came with the request.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::failure(401, Some(StatusReason::Unauthorized), message.into(), None)
    }

    /// 403: `{resource} "{name}" is forbidden: {why}` (without the name for collection calls).
    pub fn forbidden(resource: GroupResource<'_>, name: &str, why: &str) -> Self {
        let message = if name.is_empty() {
            format!("{resource} is forbidden: {why}")
        } else {
            format!("{resource} {name:?} is forbidden: {why}")
        };
        Self::failure(
            403,
            Some(StatusReason::Forbidden),
            message,
            Some(StatusDetails::of(resource, name)),
        )
    }

    /// 404: `sites.osiriscare.net "x" not found`. Also the answer for another tenant's object.
    pub fn not_found(resource: GroupResource<'_>, name: &str) -> Self {
        let message = format!("{resource} {name:?} not found");
        Self::failure(
            404,
            Some(StatusReason::NotFound),
            message,
            Some(StatusDetails::of(resource, name)),
        )
    }

    /// 405: `{action} is not supported on resources of kind "{resource}"`.
    pub fn method_not_allowed(resource: GroupResource<'_>, action: &str) -> Self {
        let message = format!("{action} is not supported on resources of kind \"{resource}\"");
        Self::failure(
            405,
            Some(StatusReason::MethodNotAllowed),
            message,
            Some(StatusDetails::of(resource, "")),
        )
    }

    /// 406: none of the media types in `Accept` can be produced.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::failure(406, Some(StatusReason::NotAcceptable), message.into(), None)
    }

    /// 409 AlreadyExists: `{resource} "{name}" already exists`.
    pub fn already_exists(resource: GroupResource<'_>, name: &str) -> Self {
        let message = format!("{resource} {name:?} already exists");
        Self::failure(
            409,
            Some(StatusReason::AlreadyExists),
            message,
            Some(StatusDetails::of(resource, name)),
        )
    }

    /// 409 Conflict: `Operation cannot be fulfilled on {resource} "{name}": {why}`; for a stale
    /// `resourceVersion`, `why` is [`OPTIMISTIC_LOCK_MESSAGE`].
    pub fn conflict(resource: GroupResource<'_>, name: &str, why: &str) -> Self {
        let message = format!("Operation cannot be fulfilled on {resource} {name:?}: {why}");
        Self::failure(
            409,
            Some(StatusReason::Conflict),
            message,
            Some(StatusDetails::of(resource, name)),
        )
    }

    /// 410 Gone: the thing asked for existed but no longer does.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::failure(410, Some(StatusReason::Gone), message.into(), None)
    }

    /// 410 Expired: a watch or `continue` from a resource version older than the kept history, worded as
    /// the API server does (`too old resource version: 5 (10)`); clients re-list on it.
    pub fn too_old_resource_version(requested: &str, oldest: &str) -> Self {
        let message = format!("too old resource version: {requested} ({oldest})");
        Self::failure(410, Some(StatusReason::Expired), message, None)
    }

    /// 413: the request body is larger than the server accepts.
    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        Self::failure(
            413,
            Some(StatusReason::RequestEntityTooLarge),
            message.into(),
            None,
        )
    }

    /// 415: the request body's `Content-Type` (or patch type) is not one the endpoint reads.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::failure(
            415,
            Some(StatusReason::UnsupportedMediaType),
            message.into(),
            None,
        )
    }

    /// 422: `{Kind.group} "{name}" is invalid: …`, one cause per field problem, all at once.
    ///
    /// The message lists the causes as `field: message`, bracketed when there are several, as the API
    /// server's aggregate error does, so that `kubectl` shows every problem without reading `details`.
    pub fn invalid(kind: GroupKind<'_>, name: &str, causes: Vec<StatusCause>) -> Self {
        let problems: Vec<String> = causes.iter().map(StatusCause::to_string).collect();
        let problems = match problems.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let message = format!("{kind} {name:?} is invalid: {problems}");
        let details = StatusDetails {
            name: name.to_owned(),
            group: kind.group.to_owned(),
            kind: kind.kind.to_owned(),
            causes,
            ..StatusDetails::default()
        };
        Self::failure(422, Some(StatusReason::Invalid), message, Some(details))
    }

    /// 429: slow down; `retry_after_seconds` is also sent as `details.retryAfterSeconds` (and belongs in
    /// the `Retry-After` header).
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        let details = StatusDetails {
            retry_after_seconds: Some(retry_after_seconds),
            ..StatusDetails::default()
        };
        Self::failure(
            429,
            Some(StatusReason::TooManyRequests),
            message.into(),
            Some(details),
        )
    }

    /// 500: `Internal error occurred: {message}`. The message goes to the client, so it must not carry
    /// internal details; log those instead.
    pub fn internal_error(message: &str) -> Self {
        let details = StatusDetails {
            causes: vec![StatusCause {
                reason: None,
                message: message.to_owned(),
                field: String::new(),
            }],
            ..StatusDetails::default()
        };
        let text = format!("Internal error occurred: {message}");
        Self::failure(500, Some(StatusReason::InternalError), text, Some(details))
    }

    /// 503: the server cannot answer now (e.g. its store is unreachable); the client may retry.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::failure(
            503,
            Some(StatusReason::ServiceUnavailable),
            message.into(),
            None,
        )
    }

    fn failure(
        code: u16,
        reason: Option<StatusReason>,
        message: String,
        details: Option<StatusDetails>,
    ) -> Self {
        Self {
            kind: "Status".to_owned(),
            api_version: "v1".to_owned(),
            metadata: ListMeta::default(),
            status: StatusResult::Failure,
            message,
            reason,
            details,
            code,
        }
    }
}

/// `Status.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum StatusResult {
    /// The call succeeded.
    Success,
    /// The call failed; `reason` and `code` say how.
    Failure,
}

/// `Status.reason`: why a call failed, in the API server's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum StatusReason {
    /// 400: the request is malformed.
    BadRequest,
    /// 401: no valid credentials.
    Unauthorized,
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: no such object (or not the caller's to see).
    NotFound,
    /// 405: the verb is not supported on this resource.
    MethodNotAllowed,
    /// 406: the `Accept` header names nothing the server produces.
    NotAcceptable,
    /// 409: create of a name that is taken.
    AlreadyExists,
    /// 409: a concurrent change won (stale `resourceVersion`).
    Conflict,
    /// 410: the thing asked for is gone.
    Gone,
    /// 410: a resource version or `continue` token older than the kept history.
    Expired,
    /// 413: the request body is too large.
    RequestEntityTooLarge,
    /// 415: the request body's media type is not accepted.
    UnsupportedMediaType,
    /// 422: the object fails validation; `details.causes` lists the fields.
    Invalid,
    /// 429: too many requests; retry after `details.retryAfterSeconds`.
    TooManyRequests,
    /// 500: a server bug or an unexpected state.
    InternalError,
    /// 503: the server cannot answer now.
    ServiceUnavailable,
    /// 504: the server gave up waiting for the operation.
    Timeout,
    /// A reason this version does not know, read from a newer server; never sent.
    #[serde(other)]
    Unknown,
}

/// `Status.details`: the object a failure is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// The object's name, when the call was about one object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The API group, e.g. `osiriscare.net`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The resource (`sites`) or, for `Invalid`, the kind (`Site`), as the API server fills it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The object's uid, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// One entry per problem, with its field path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// How long to wait before retrying (429, 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

impl StatusDetails {
    fn of(resource: GroupResource<'_>, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            group: resource.group.to_owned(),
            kind: resource.resource.to_owned(),
            ..Self::default()
        }
    }
}

/// One problem in a failed call, usually one field of an invalid object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCause {
    /// What kind of problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CauseType>,
    /// What was wrong and what is allowed, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field path, e.g. `spec.maintenanceWindow.start` or `spec.exceptions[0].expires`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

impl StatusCause {
    /// A problem of kind `reason` at `field`.
    pub fn new(reason: CauseType, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: Some(reason),
            message: message.into(),
            field: field.into(),
        }
    }
}

impl fmt::Display for StatusCause {
    /// `field: message`, as an item of an `Invalid` status message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// `StatusCause.reason`, the API server's field error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum CauseType {
    /// A required field is missing.
    FieldValueRequired,
    /// A field's value is not allowed.
    FieldValueInvalid,
    /// A value outside a fixed set (an enum).
    FieldValueNotSupported,
    /// A value that must be unique appears twice.
    FieldValueDuplicate,
    /// A field that may not be set (or changed) here.
    FieldValueForbidden,
    /// A value longer than allowed.
    FieldValueTooLong,
    /// A list with more items than allowed.
    FieldValueTooMany,
    /// A referenced object does not exist.
    FieldValueNotFound,
    /// A value of the wrong JSON type.
    FieldValueTypeInvalid,
    /// A server-side apply conflict with another field manager.
    FieldManagerConflict,
    /// A `resourceVersion` ahead of the store.
    ResourceVersionTooLarge,
    /// A cause that is not about one field.
    InternalError,
    /// A cause type this version does not know, read from a newer server; never sent.
    #[serde(other)]
    Unknown,
}

/// A resource in a group, as error messages and `details` name it: `sites.osiriscare.net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupResource<'a> {
    /// The API group; empty for the core group.
    pub group: &'a str,
    /// The plural resource name, e.g. `sites`.
    pub resource: &'a str,
}

impl fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// A kind in a group, as `Invalid` messages name it: `Site.osiriscare.net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupKind<'a> {
    /// The API group; empty for the core group.
    pub group: &'a str,
    /// The kind, e.g. `Site`.
    pub kind: &'a str,
}

impl fmt::Display for GroupKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// `meta.k8s.io/v1` `Table`: what a list or get returns for
/// `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`, so `kubectl get` prints our columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// Always `meta.k8s.io/v1`.
    pub api_version: String,
    /// Always `Table`.
    pub kind: String,
    /// Version and paging, as for a list.
    pub metadata: ListMeta,
    /// The columns, in display order.
    pub column_definitions: Vec<TableColumnDefinition>,
    /// One row per object, cells in column order.
    pub rows: Vec<TableRow>,
}

impl Table {
    /// A table with these columns and rows.
    pub fn new(
        metadata: ListMeta,
        column_definitions: Vec<TableColumnDefinition>,
        rows: Vec<TableRow>,
    ) -> Self {
        Self {
            api_version: "meta.k8s.io/v1".to_owned(),
            kind: "Table".to_owned(),
            metadata,
            column_definitions,
            rows,
        }
    }
}

/// One column of a [`Table`]. Every field is always sent, as the API server does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableColumnDefinition {
    /// The header, e.g. `Compliance`.
    pub name: String,
    /// The cells' type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// A hint for the type: `name` for the object-name column, otherwise usually empty.
    pub format: String,
    /// What the column shows, for `kubectl explain`-like help.
    pub description: String,
    /// 0 for columns always shown; higher only with `kubectl get -o wide`.
    pub priority: i32,
}

impl TableColumnDefinition {
    /// A priority-0 column with no format hint.
    pub fn new(
        name: impl Into<String>,
        column_type: ColumnType,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            column_type,
            format: String::new(),
            description: description.into(),
            priority: 0,
        }
    }

    /// Sets the format hint (`name` for the column holding object names).
    pub fn with_format(self, format: impl Into<String>) -> Self {
        Self {
            format: format.into(),
            ..self
        }
    }

    /// Sets the priority; columns above 0 appear only with `-o wide`.
    pub fn with_priority(self, priority: i32) -> Self {
        Self { priority, ..self }
    }
}

/// The type of a [`TableColumnDefinition`]'s cells, an OpenAPI type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Text.
    String,
    /// Whole numbers.
    Integer,
    /// Any numbers, such as a compliance percentage.
    Number,
    /// `true` / `false`.
    Boolean,
    /// Timestamps or ages.
    Date,
}

/// One row of a [`Table`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRow {
    /// The cell values, one per column.
    pub cells: Vec<serde_json::Value>,
    /// The object the row shows, usually as `PartialObjectMetadata` (`?includeObject=Metadata`, the
    /// default), which `kubectl` reads the namespace and name from; omitted with `includeObject=None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    const SITES: GroupResource<'static> = GroupResource {
        group: "osiriscare.net",
        resource: "sites",
    };
    const SITE: GroupKind<'static> = GroupKind {
        group: "osiriscare.net",
        kind: "Site",
    };

    /// Serializes `value` to exactly `golden` (compact, in field order) and reads it back equal.
    fn assert_golden<T: Serialize + DeserializeOwned + PartialEq + fmt::Debug>(
        value: &T,
        golden: &str,
    ) {
        assert_eq!(serde_json::to_string(value).unwrap(), golden);
        assert_eq!(&serde_json::from_str::<T>(golden).unwrap(), value);
    }

    #[test]
    fn list_golden() {
        let metadata = ListMeta {
            resource_version: Some("42".into()),
            continue_token: Some("c2l0ZS0y".into()),
            remaining_item_count: Some(3),
        };
        let list = List::new(
            "osiriscare.net/v1alpha1",
            "Site",
            metadata,
            vec![json!({"metadata": {"name": "a"}})],
        );
        assert_golden(
            &list,
            r#"{"apiVersion":"osiriscare.net/v1alpha1","kind":"SiteList","metadata":{"resourceVersion":"42","continue":"c2l0ZS0y","remainingItemCount":3},"items":[{"metadata":{"name":"a"}}]}"#,
        );
    }

    #[test]
    fn an_empty_list_still_has_items_and_empty_metadata() {
        let list = List::<serde_json::Value>::new(
            "osiriscare.net/v1alpha1",
            "Host",
            ListMeta::default(),
            vec![],
        );
        assert_golden(
            &list,
            r#"{"apiVersion":"osiriscare.net/v1alpha1","kind":"HostList","metadata":{},"items":[]}"#,
        );
    }

    #[test]
    fn watch_event_golden() {
        let object = json!({"kind": "Site", "metadata": {"name": "a", "resourceVersion": "7"}});
        #[rustfmt::skip]
        let cases = [
            (WatchEvent::Added(object.clone()), r#"{"type":"ADDED","object":{"kind":"Site","metadata":{"name":"a","resourceVersion":"7"}}}"#),
            (WatchEvent::Modified(object.clone()), r#"{"type":"MODIFIED","object":{"kind":"Site","metadata":{"name":"a","resourceVersion":"7"}}}"#),
            (WatchEvent::Deleted(object), r#"{"type":"DELETED","object":{"kind":"Site","metadata":{"name":"a","resourceVersion":"7"}}}"#),
            (
                WatchEvent::Bookmark(Bookmark::new("osiriscare.net/v1alpha1", "Site", "12")),
                r#"{"type":"BOOKMARK","object":{"apiVersion":"osiriscare.net/v1alpha1","kind":"Site","metadata":{"resourceVersion":"12"}}}"#,
            ),
            (
                WatchEvent::Error(Status::too_old_resource_version("5", "10")),
                r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (10)","reason":"Expired","code":410}}"#,
            ),
        ];
        for (event, golden) in cases {
            assert_golden(&event, golden);
        }
    }

    #[test]
    fn status_golden_follows_the_api_servers_wording() {
        #[rustfmt::skip]
        let cases = [
            (Status::success(), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":200}"#),
            (Status::not_found(SITES, "clinic-1"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"sites.osiriscare.net \"clinic-1\" not found","reason":"NotFound","details":{"name":"clinic-1","group":"osiriscare.net","kind":"sites"},"code":404}"#),
            (Status::not_found(GroupResource { group: "", resource: "pods" }, "foo"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"foo\" not found","reason":"NotFound","details":{"name":"foo","kind":"pods"},"code":404}"#),
            (Status::already_exists(SITES, "a"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"sites.osiriscare.net \"a\" already exists","reason":"AlreadyExists","details":{"name":"a","group":"osiriscare.net","kind":"sites"},"code":409}"#),
            (Status::conflict(SITES, "a", OPTIMISTIC_LOCK_MESSAGE), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on sites.osiriscare.net \"a\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"a","group":"osiriscare.net","kind":"sites"},"code":409}"#),
            (Status::forbidden(SITES, "a", "readonly tokens cannot update"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"sites.osiriscare.net \"a\" is forbidden: readonly tokens cannot update","reason":"Forbidden","details":{"name":"a","group":"osiriscare.net","kind":"sites"},"code":403}"#),
            (Status::forbidden(SITES, "", "no"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"sites.osiriscare.net is forbidden: no","reason":"Forbidden","details":{"group":"osiriscare.net","kind":"sites"},"code":403}"#),
            (Status::method_not_allowed(SITES, "deletecollection"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deletecollection is not supported on resources of kind \"sites.osiriscare.net\"","reason":"MethodNotAllowed","details":{"group":"osiriscare.net","kind":"sites"},"code":405}"#),
            (Status::bad_request("sendInitialEvents is not supported"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"sendInitialEvents is not supported","reason":"BadRequest","code":400}"#),
            (Status::unauthorized("Unauthorized"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#),
            (Status::not_acceptable("only application/json is produced"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"only application/json is produced","reason":"NotAcceptable","code":406}"#),
            (Status::gone("gone"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"gone","reason":"Gone","code":410}"#),
            (Status::request_entity_too_large("limit is 3145728 bytes"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"limit is 3145728 bytes","reason":"RequestEntityTooLarge","code":413}"#),
            (Status::unsupported_media_type("text/plain"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"text/plain","reason":"UnsupportedMediaType","code":415}"#),
            (Status::too_many_requests("slow down", 2), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"slow down","reason":"TooManyRequests","details":{"retryAfterSeconds":2},"code":429}"#),
            (Status::internal_error("store unavailable"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error occurred: store unavailable","reason":"InternalError","details":{"causes":[{"message":"store unavailable"}]},"code":500}"#),
            (Status::service_unavailable("try later"), r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"try later","reason":"ServiceUnavailable","code":503}"#),
        ];
        for (status, golden) in cases {
            assert_golden(&status, golden);
        }
    }

    #[test]
    fn invalid_lists_every_cause_in_the_message_and_in_details() {
        let one = Status::invalid(
            SITE,
            "a",
            vec![StatusCause::new(
                CauseType::FieldValueRequired,
                "spec.partner",
                "Required value",
            )],
        );
        assert_golden(
            &one,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Site.osiriscare.net \"a\" is invalid: spec.partner: Required value","reason":"Invalid","details":{"name":"a","group":"osiriscare.net","kind":"Site","causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec.partner"}]},"code":422}"#,
        );
        let two = Status::invalid(
            SITE,
            "a",
            vec![
                StatusCause::new(
                    CauseType::FieldValueRequired,
                    "spec.partner",
                    "Required value",
                ),
                StatusCause::new(
                    CauseType::FieldValueNotSupported,
                    "spec.healing",
                    "Unsupported value: \"x\": supported values: \"enforce\", \"audit\", \"off\"",
                ),
            ],
        );
        assert_eq!(
            two.message,
            r#"Site.osiriscare.net "a" is invalid: [spec.partner: Required value, spec.healing: Unsupported value: "x": supported values: "enforce", "audit", "off"]"#
        );
        assert_eq!(two.details.as_ref().unwrap().causes.len(), 2);
        assert_eq!(two.code, 422);
    }

    #[test]
    fn unknown_reasons_from_a_newer_server_still_decode() {
        let status: Status = serde_json::from_str(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"SomethingNew","details":{"causes":[{"reason":"FieldValueNew"}]},"code":418}"#,
        )
        .unwrap();
        assert_eq!(status.reason, Some(StatusReason::Unknown));
        assert_eq!(
            status.details.unwrap().causes[0].reason,
            Some(CauseType::Unknown)
        );
    }

    #[test]
    fn table_golden() {
        let table = Table::new(
            ListMeta {
                resource_version: Some("9".into()),
                ..ListMeta::default()
            },
            vec![
                TableColumnDefinition::new("Name", ColumnType::String, "Name of the site")
                    .with_format("name"),
                TableColumnDefinition::new(
                    "Compliance",
                    ColumnType::Number,
                    "Compliance score, percent",
                ),
                TableColumnDefinition::new("Partner", ColumnType::String, "The MSP")
                    .with_priority(1),
            ],
            vec![TableRow {
                cells: vec![json!("clinic-1"), json!(97.5), json!("acme")],
                object: Some(
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "clinic-1"}}),
                ),
            }],
        );
        assert_golden(
            &table,
            r#"{"apiVersion":"meta.k8s.io/v1","kind":"Table","metadata":{"resourceVersion":"9"},"columnDefinitions":[{"name":"Name","type":"string","format":"name","description":"Name of the site","priority":0},{"name":"Compliance","type":"number","format":"","description":"Compliance score, percent","priority":0},{"name":"Partner","type":"string","format":"","description":"The MSP","priority":1}],"rows":[{"cells":["clinic-1",97.5,"acme"],"object":{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":{"name":"clinic-1"}}}]}"#,
        );
        let bare = TableRow {
            cells: vec![json!(1)],
            object: None,
        };
        assert_golden(&bare, r#"{"cells":[1]}"#);
    }
}
