//! The values that cross the store's API: keys, options, list pages, watch events and counts.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

use serde_json::Value;

/// Where an object lives: its resource (the lower-case plural of its kind, e.g. `hosts`), its
/// namespace (`""` for a cluster-scoped resource) and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The resource's plural name, as in the API path (`sites`, `hosts`).
    pub resource: String,
    /// The site the object belongs to, or `""` for a cluster-scoped resource.
    pub namespace: String,
    /// The object's `metadata.name`.
    pub name: String,
}

impl ObjectKey {
    /// The key of an object of a namespaced resource.
    pub fn namespaced(
        resource: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an object of a cluster-scoped resource (its namespace is `""`).
    pub fn cluster(resource: impl Into<String>, name: impl Into<String>) -> Self {
        Self::namespaced(resource, "", name)
    }
}

/// `hosts/site-a/web-1`, or `sites/site-a` for a cluster-scoped object: the form errors and logs use.
impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.resource, self.name)
        } else {
            write!(f, "{}/{}/{}", self.resource, self.namespace, self.name)
        }
    }
}

/// Tuning of a [`Store`](super::Store). `StoreOptions::default()` suits production.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How much watch history is kept; older events are deleted in the write that outgrows it.
    pub history: HistoryRetention,
    /// Capacity of the in-process fan-out channel. A watcher that falls further behind than this
    /// does not slow writers down: it re-reads what it missed from the event table.
    pub watch_buffer: usize,
    /// Most pooled database connections for reads (and, on PostgreSQL, for writes too).
    pub max_connections: u32,
    /// PostgreSQL only: how often a replica re-reads the event table without a notification, which
    /// bounds the delay when a notification is lost while its listening connection reconnects.
    pub poll_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            history: HistoryRetention::default(),
            watch_buffer: 1024,
            max_connections: 8,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// How much watch history is kept. An event is dropped as soon as either limit says so; the
/// newest event is always kept. A watch that starts before the oldest kept event gets
/// [`StoreError::Gone`](super::StoreError::Gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRetention {
    /// At most this many of the newest events are kept.
    pub max_events: NonZeroU64,
    /// Events older than this are dropped (by the clock of the replica that writes).
    pub max_age: Option<Duration>,
}

impl Default for HistoryRetention {
    fn default() -> Self {
        Self {
            max_events: NonZeroU64::new(10_000).expect("10 000 is not zero"),
            max_age: None,
        }
    }
}

/// Which objects a [`Store::list`](super::Store::list) returns and where a page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only objects in this namespace; `None` lists every namespace.
    pub namespace: Option<String>,
    /// At most this many objects per page; `None` returns every match in one page.
    pub limit: Option<u64>,
    /// The `continue` token of the previous page, to get the next one.
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectList {
    /// The matching objects, ordered by (namespace, name), each with its `metadata.resourceVersion`.
    pub items: Vec<Value>,
    /// The store's resourceVersion when the page was read: a watch from here misses nothing.
    pub resource_version: i64,
    /// Set when more objects match: pass it back in [`ListOptions::continue_token`]. Pages after
    /// the first show the objects as they are when that page is read, not as of the first page.
    pub continue_token: Option<String>,
}

/// What happened to an object in a [`WatchEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was updated.
    Modified,
    /// The object was deleted; the event carries its last state.
    Deleted,
}

impl EventType {
    /// The Kubernetes spelling (`ADDED`, `MODIFIED`, `DELETED`), also the stored one.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }

    /// Reads the stored spelling back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Added, Self::Modified, Self::Deleted]
            .into_iter()
            .find(|event_type| event_type.as_str() == text)
    }
}

/// One write, as watchers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// The resourceVersion the write was given; also in the object's `metadata.resourceVersion`.
    pub resource_version: i64,
    /// Whether the object was added, modified or deleted.
    pub event_type: EventType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the write (for a deletion: its last state, with the deletion's
    /// resourceVersion).
    pub object: Value,
}

/// Sizes of the store, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    /// Number of stored objects per resource; a resource with none is absent.
    pub objects: BTreeMap<String, u64>,
    /// Number of events kept for watches.
    pub events: u64,
    /// The resourceVersion of the oldest kept event, if any is kept.
    pub oldest_event: Option<i64>,
    /// The store's current resourceVersion.
    pub resource_version: i64,
}

/// Reads `metadata.resourceVersion` of an object as the integer the store assigned; `None` when
/// it is missing or not a decimal integer.
pub fn resource_version_of(object: &Value) -> Option<i64> {
    object
        .pointer("/metadata/resourceVersion")?
        .as_str()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_display_as_api_paths_do() {
        let cases = [
            (ObjectKey::cluster("sites", "alpha"), "sites/alpha"),
            (
                ObjectKey::namespaced("hosts", "alpha", "web-1"),
                "hosts/alpha/web-1",
            ),
        ];
        for (key, shown) in cases {
            assert_eq!(key.to_string(), shown);
        }
    }

    #[test]
    fn event_types_round_trip_through_their_stored_spelling() {
        for event_type in [EventType::Added, EventType::Modified, EventType::Deleted] {
            assert_eq!(EventType::parse(event_type.as_str()), Some(event_type));
        }
        assert_eq!(EventType::parse("BOOKMARK"), None);
        assert_eq!(EventType::parse("added"), None);
    }

    #[test]
    fn resource_version_of_reads_only_decimal_strings() {
        let cases = [
            (json!({"metadata": {"resourceVersion": "42"}}), Some(42)),
            (json!({"metadata": {"resourceVersion": 42}}), None),
            (json!({"metadata": {"resourceVersion": "4x"}}), None),
            (json!({"metadata": {}}), None),
            (json!("not an object"), None),
        ];
        for (object, expected) in cases {
            assert_eq!(resource_version_of(&object), expected, "{object}");
        }
    }
}
