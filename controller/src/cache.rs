//! The appliance's copy of its site's desired state: what the watches of central last saw
//! ([`Snapshot`]), changed only by the pure [`Snapshot::replace`] (a list) and
//! [`Snapshot::apply`] (a watch event), and kept on disk ([`Snapshot::save`], written
//! atomically) so that the controller starts from it and goes on reconciling while central is
//! unreachable.
//!
//! How old it may grow is bounded by `cacheMaxAge`: [`Snapshot::synced_at`] is the last moment
//! every watched kind was known current (the oldest of their last contacts), and `plan` refuses
//! items once that is too old (fail closed).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use osc_crds::kinds::{Appliance, Credential, Host, Kind, Runbook, Site};
use osc_proto::api::{StatusReason, WatchEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// The kinds the controller watches, in the order it lists them.
pub const WATCHED: [Kind; 5] = [
    Kind::Site,
    Kind::Host,
    Kind::Credential,
    Kind::Appliance,
    Kind::Runbook,
];

/// The file under `<stateDirectory>/cache/`; the `v1` names the format, so a later format
/// starts from an empty cache instead of misreading this one.
pub const CACHE_FILE: &str = "desired-v1.json";

/// The site's resources as last seen, with where each watch resumes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// The appliance's Site.
    pub site: Option<Site>,
    /// The site's Hosts by name.
    pub hosts: BTreeMap<String, Host>,
    /// The site's Credentials by name, as central shows them (secret values redacted): their
    /// `resourceVersion` tells when a pulled secret is stale.
    pub credentials: BTreeMap<String, Credential>,
    /// The appliance's own Appliance.
    pub appliance: Option<Appliance>,
    /// Every Runbook by name.
    pub runbooks: BTreeMap<String, Runbook>,
    /// Per kind (`Kind::as_str`), the resourceVersion its watch resumes from.
    pub versions: BTreeMap<String, String>,
    /// Per kind, when central last confirmed it current (a list, an event or a bookmark).
    pub contact: BTreeMap<String, DateTime<Utc>>,
    /// Since when central is unreachable (kept across restarts, so an outage that outlives the
    /// process is reported whole).
    #[serde(default)]
    pub offline_since: Option<DateTime<Utc>>,
    /// The last outage once over: (from, to), for the Appliance's status.
    #[serde(default)]
    pub last_outage: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// What a watch event did to a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// An object was added, changed or removed.
    Changed,
    /// Only the resume point moved (a bookmark).
    Progress,
    /// The resume point is older than central's history (410): list again.
    Expired,
    /// The watch failed otherwise; the message is central's. Resume after a backoff.
    Failed(String),
}

impl Snapshot {
    /// The last moment all watched kinds were known current: the oldest last contact, `None`
    /// until every kind was listed once.
    pub fn synced_at(&self) -> Option<DateTime<Utc>> {
        WATCHED
            .iter()
            .map(|k| self.contact.get(k.as_str()).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()
    }

    /// Where the watch of `kind` resumes, `None` when it must list first.
    pub fn version(&self, kind: Kind) -> Option<&str> {
        self.versions.get(kind.as_str()).map(String::as_str)
    }

    /// Forgets the resume point of `kind`, so its watch lists again (410, resync).
    pub fn expire(&mut self, kind: Kind) {
        self.versions.remove(kind.as_str());
    }

    /// Replaces every object of `kind` with a fresh list taken at `version`, at `now`.
    /// An object that does not decode is an error naming it; nothing changes then.
    pub fn replace(
        &mut self,
        kind: Kind,
        items: Vec<Value>,
        version: String,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut fresh = Self::default();
        for item in items {
            fresh.upsert(kind, item)?;
        }
        match kind {
            Kind::Site => self.site = fresh.site,
            Kind::Host => self.hosts = fresh.hosts,
            Kind::Credential => self.credentials = fresh.credentials,
            Kind::Appliance => self.appliance = fresh.appliance,
            _ => self.runbooks = fresh.runbooks,
        }
        self.versions.insert(kind.as_str().to_owned(), version);
        self.contact.insert(kind.as_str().to_owned(), now);
        Ok(())
    }

    /// Applies one watch event of `kind` at `now`.
    pub fn apply(
        &mut self,
        kind: Kind,
        event: WatchEvent<Value>,
        now: DateTime<Utc>,
    ) -> Result<Applied, Error> {
        let (applied, version) = match event {
            WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                let version = resource_version(&object);
                self.upsert(kind, object)?;
                (Applied::Changed, version)
            }
            WatchEvent::Deleted(object) => {
                let version = resource_version(&object);
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                match kind {
                    Kind::Site => self.site = None,
                    Kind::Host => drop(self.hosts.remove(name)),
                    Kind::Credential => drop(self.credentials.remove(name)),
                    Kind::Appliance => self.appliance = None,
                    _ => drop(self.runbooks.remove(name)),
                }
                (Applied::Changed, version)
            }
            WatchEvent::Bookmark(bookmark) => {
                (Applied::Progress, Some(bookmark.metadata.resource_version))
            }
            WatchEvent::Error(status) => {
                if status.code == 410 || status.reason == Some(StatusReason::Expired) {
                    self.expire(kind);
                    return Ok(Applied::Expired);
                }
                return Ok(Applied::Failed(format!(
                    "{}: {}",
                    status.code, status.message
                )));
            }
        };
        if let Some(version) = version {
            self.versions.insert(kind.as_str().to_owned(), version);
        }
        self.contact.insert(kind.as_str().to_owned(), now);
        Ok(applied)
    }

    fn upsert(&mut self, kind: Kind, object: Value) -> Result<(), Error> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let bad = |source: serde_json::Error| Error::Decode {
            what: format!("{} {name:?} from central", kind.as_str()),
            source,
        };
        match kind {
            Kind::Site => self.site = Some(serde_json::from_value(object).map_err(bad)?),
            Kind::Host => {
                self.hosts
                    .insert(name.clone(), serde_json::from_value(object).map_err(bad)?);
            }
            Kind::Credential => {
                self.credentials
                    .insert(name.clone(), serde_json::from_value(object).map_err(bad)?);
            }
            Kind::Appliance => self.appliance = Some(serde_json::from_value(object).map_err(bad)?),
            _ => {
                self.runbooks
                    .insert(name.clone(), serde_json::from_value(object).map_err(bad)?);
            }
        }
        Ok(())
    }

    /// Whether `other` asks for the same work: the same Runbooks and Credentials, and the same
    /// Site and Hosts apart from their status and resourceVersion. The controller's own status
    /// patches (and central's roll-up of the Site) come back as watch events that change only
    /// those, so the run loop recomputes its items only when this is false.
    pub fn same_work(&self, other: &Snapshot) -> bool {
        fn written<S: osc_crds::kinds::Spec + PartialEq>(
            object: &osc_crds::kinds::Object<S>,
        ) -> impl PartialEq + '_ {
            let meta = &object.metadata;
            (
                (&meta.name, &meta.namespace, &meta.uid, meta.generation),
                (&meta.labels, &meta.annotations, &meta.deletion_timestamp),
                &object.spec,
            )
        }
        self.runbooks == other.runbooks
            && self.credentials == other.credentials
            && self.site.as_ref().map(written) == other.site.as_ref().map(written)
            && self.hosts.len() == other.hosts.len()
            && self
                .hosts
                .values()
                .zip(other.hosts.values())
                .all(|(a, b)| written(a) == written(b))
    }

    /// The cache file in `state_directory`.
    pub fn path(state_directory: &Path) -> PathBuf {
        state_directory.join("cache").join(CACHE_FILE)
    }

    /// Reads the cache at `path`; `None` when there is none. A cache that does not parse is an
    /// error naming the file (the caller starts empty and says so: central fills it again).
    pub fn load(path: &Path) -> Result<Option<Self>, Error> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::ReadFile {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Decode {
                what: format!("the desired-state cache {}", path.display()),
                source,
            })
    }

    /// Writes the cache to `path` atomically: a temporary file beside it, synced, renamed over
    /// it, then the folder synced, so a crash leaves the old cache or the new one, never half.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let failed = |source: std::io::Error| Error::WriteFile {
            path: path.to_owned(),
            source,
        };
        let folder = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder).map_err(failed)?;
        let temporary = path.with_extension("json.tmp");
        // Serialized first, then written at once: a `File` is unbuffered, and the serializer
        // writes token by token.
        let bytes = serde_json::to_vec(self).expect("a snapshot serializes");
        let mut file = std::fs::File::create(&temporary).map_err(failed)?;
        file.write_all(&bytes).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        std::fs::rename(&temporary, path).map_err(failed)?;
        std::fs::File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(failed)
    }
}

fn resource_version(object: &Value) -> Option<String> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeDelta;
    use osc_proto::api::{Bookmark, Status};
    use serde_json::json;

    use super::*;

    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// A Host object as central sends it, at `version`.
    pub(crate) fn host(name: &str, version: &str) -> Value {
        json!({"apiVersion": "osiriscare.net/v1alpha1", "kind": "Host",
               "metadata": {"name": name, "namespace": "smile", "resourceVersion": version},
               "spec": {"platform": "linux"}})
    }

    fn listed() -> Snapshot {
        let mut snapshot = Snapshot::default();
        for kind in WATCHED {
            snapshot.replace(kind, vec![], "1".into(), now()).unwrap();
        }
        snapshot
    }

    #[test]
    fn only_status_and_bookkeeping_changes_ask_for_the_same_work() {
        let with = |host_changes: Value| {
            let mut s = listed();
            let mut object = host("ehr", "2");
            json_patch_merge(&mut object, host_changes);
            s.apply(Kind::Host, WatchEvent::Added(object), now())
                .unwrap();
            s
        };
        let base = with(json!({}));
        let same = [
            json!({"metadata": {"resourceVersion": "9"}}),
            json!({"status": {"observedGeneration": 1}}),
        ];
        for change in same {
            assert!(base.same_work(&with(change.clone())), "{change}");
        }
        let different = [
            json!({"metadata": {"labels": {"role": "ehr"}}}),
            json!({"metadata": {"generation": 2}}),
            json!({"spec": {"address": "10.0.0.9"}}),
        ];
        for change in different {
            assert!(!base.same_work(&with(change.clone())), "{change}");
        }
        let mut other_host = listed();
        other_host
            .apply(Kind::Host, WatchEvent::Added(host("files", "2")), now())
            .unwrap();
        assert!(!base.same_work(&other_host));
        // Bookkeeping alone (a later contact, another resume point) is the same work.
        let mut later = base.clone();
        later.contact.clear();
        later.versions.insert("Host".into(), "99".into());
        assert!(base.same_work(&later));
    }

    /// `patch` merged into `target` as a JSON merge patch (RFC 7386, without deletions).
    fn json_patch_merge(target: &mut Value, patch: Value) {
        match (target, patch) {
            (Value::Object(target), Value::Object(patch)) => {
                for (key, value) in patch {
                    json_patch_merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
            (target, patch) => *target = patch,
        }
    }

    #[test]
    fn events_change_objects_and_move_the_resume_point() {
        let mut s = listed();
        let later = now() + TimeDelta::seconds(5);
        let bookmark = |v: &str| {
            WatchEvent::Bookmark(Bookmark::new(
                "osiriscare.net/v1alpha1",
                "Host",
                v.to_owned(),
            ))
        };
        let cases: Vec<(WatchEvent<Value>, Applied, Vec<&str>, &str)> = vec![
            (
                WatchEvent::Added(host("ehr", "2")),
                Applied::Changed,
                vec!["ehr"],
                "2",
            ),
            (
                WatchEvent::Added(host("files", "3")),
                Applied::Changed,
                vec!["ehr", "files"],
                "3",
            ),
            (
                WatchEvent::Modified(host("ehr", "4")),
                Applied::Changed,
                vec!["ehr", "files"],
                "4",
            ),
            (bookmark("9"), Applied::Progress, vec!["ehr", "files"], "9"),
            (
                WatchEvent::Deleted(host("files", "10")),
                Applied::Changed,
                vec!["ehr"],
                "10",
            ),
        ];
        for (event, applied, hosts, version) in cases {
            let what = format!("{event:?}");
            assert_eq!(
                s.apply(Kind::Host, event, later).unwrap(),
                applied,
                "{what}"
            );
            assert_eq!(s.hosts.keys().collect::<Vec<_>>(), hosts, "{what}");
            assert_eq!(s.version(Kind::Host), Some(version), "{what}");
        }
        // Host contact moved, the others did not: synced_at is the oldest.
        assert_eq!(s.contact["Host"], later);
        assert_eq!(s.synced_at(), Some(now()));
    }

    #[test]
    fn gone_forgets_the_resume_point_and_other_errors_keep_it() {
        let mut s = listed();
        let failed = s
            .apply(
                Kind::Host,
                WatchEvent::Error(Status::internal_error("boom")),
                now(),
            )
            .unwrap();
        assert!(
            matches!(failed, Applied::Failed(ref m) if m.contains("500")),
            "{failed:?}"
        );
        assert_eq!(s.version(Kind::Host), Some("1"));
        let gone = WatchEvent::Error(Status::too_old_resource_version("1", "5"));
        assert_eq!(s.apply(Kind::Host, gone, now()).unwrap(), Applied::Expired);
        assert_eq!(s.version(Kind::Host), None);
    }

    #[test]
    fn synced_at_waits_for_every_kind() {
        let mut s = Snapshot::default();
        for kind in &WATCHED[..4] {
            s.replace(*kind, vec![], "1".into(), now()).unwrap();
            assert_eq!(s.synced_at(), None);
        }
        s.replace(Kind::Runbook, vec![], "1".into(), now()).unwrap();
        assert_eq!(s.synced_at(), Some(now()));
    }

    #[test]
    fn an_object_that_does_not_decode_is_named_and_changes_nothing() {
        let mut s = listed();
        let bad = json!({"metadata": {"name": "ehr"}, "spec": {"platform": 7}});
        let error = s.replace(Kind::Host, vec![host("ok", "2"), bad], "3".into(), now());
        let message = error.unwrap_err().to_string();
        assert!(message.contains("Host \"ehr\" from central"), "{message}");
        assert!(s.hosts.is_empty());
        assert_eq!(s.version(Kind::Host), Some("1"));
    }

    #[test]
    fn the_cache_round_trips_through_its_file_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = Snapshot::path(dir.path());
        assert_eq!(Snapshot::load(&path).unwrap(), None);
        let mut s = listed();
        s.apply(Kind::Host, WatchEvent::Added(host("ehr", "2")), now())
            .unwrap();
        s.save(&path).unwrap();
        assert_eq!(Snapshot::load(&path).unwrap(), Some(s));
        std::fs::write(&path, b"{not json").unwrap();
        let error = Snapshot::load(&path).unwrap_err().to_string();
        assert!(error.contains("desired-state cache"), "{error}");
    }
}
