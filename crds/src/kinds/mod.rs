//! The seven kinds, the generic object envelope they share, and [`AnyObject`] for code that handles
//! objects of any kind (the loader, the API server).

use std::fmt;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::defaults::ApplyDefaults;
use crate::meta::{API_VERSION, ObjectMeta};

pub mod appliance;
pub mod credential;
pub mod host;
pub mod release;
pub mod rollout;
pub mod runbook;
mod shared;
pub mod site;

pub use appliance::{Appliance, ApplianceSpec, ApplianceStatus};
pub use credential::{Credential, CredentialSpec};
pub use host::{Host, HostSpec, HostStatus};
pub use release::{Release, ReleaseSpec};
pub use rollout::{Rollout, RolloutSpec, RolloutStatus};
pub use runbook::{Runbook, RunbookSpec};
pub use shared::{Framework, Platform, Signature};
pub use site::{Site, SiteSpec, SiteStatus};

/// The kinds of the `osiriscare.net` API group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A customer practice; cluster-scoped; its name is the namespace of the next three.
    Site,
    /// A managed machine at a site.
    Host,
    /// A site's appliance.
    Appliance,
    /// Login material for a site's hosts.
    Credential,
    /// A signed check-and-heal procedure; cluster-scoped.
    Runbook,
    /// A signed appliance image; cluster-scoped.
    Release,
    /// A staged update of appliances to a release; cluster-scoped.
    Rollout,
}

/// The `spec` type of a kind, tying it to the kind and to its `status` type.
pub trait Spec: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + JsonSchema {
    /// The kind whose spec this is.
    const KIND: Kind;
    /// The kind's status type ([`NoStatus`] for kinds that have none).
    type Status: Clone
        + fmt::Debug
        + PartialEq
        + Default
        + Serialize
        + DeserializeOwned
        + JsonSchema;
}

/// One object of the kind `S` belongs to: the envelope shared by all kinds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
// `Spec` already requires every serde trait of the spec and status types; derived bounds would only
// make them ambiguous.
#[serde(rename_all = "camelCase", deny_unknown_fields, bound = "")]
pub struct Object<S: Spec> {
    /// Always `osiriscare.net/v1alpha1`.
    pub api_version: String,
    /// The kind's name, e.g. `Site`.
    pub kind: String,
    /// Name, namespace, labels and the server's bookkeeping.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the object should be, written by people and rollouts.
    pub spec: S,
    /// What the object is, written only by its controller through the `status` subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<S::Status>,
}

/// The status of kinds that have none (Credential, Runbook, Release); it has no fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoStatus {}

/// An object of any kind.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyObject {
    /// A Site.
    Site(Site),
    /// A Host.
    Host(Host),
    /// An Appliance.
    Appliance(Appliance),
    /// A Credential.
    Credential(Credential),
    /// A Runbook.
    Runbook(Runbook),
    /// A Release.
    Release(Release),
    /// A Rollout.
    Rollout(Rollout),
}

/// Why a JSON value is not an object of this API.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The document is not a JSON object (e.g. a list or a string).
    #[error("expected an object with apiVersion, kind, metadata and spec, found {found}")]
    NotAnObject {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// `apiVersion` or `kind` is missing or not a string.
    #[error(
        "missing {field}: every object needs apiVersion: {API_VERSION} and kind (one of {})",
        known_kinds()
    )]
    MissingField {
        /// The missing field.
        field: &'static str,
    },
    /// `apiVersion` names another group or version.
    #[error("apiVersion {found:?} is not served here; use {API_VERSION:?}")]
    WrongApiVersion {
        /// The apiVersion as given.
        found: String,
    },
    /// `kind` names no kind of this group.
    #[error("unknown kind {found:?}; known kinds: {}", known_kinds())]
    UnknownKind {
        /// The kind as given.
        found: String,
    },
    /// The object does not match the kind's schema (unknown field, wrong type, missing field).
    #[error("invalid {kind}: {source}")]
    Invalid {
        /// The kind it was decoded as.
        kind: Kind,
        /// What serde found wrong, with the field.
        #[source]
        source: serde_json::Error,
    },
}

impl Kind {
    /// Every kind, in the order of the docs.
    pub const ALL: [Kind; 7] = [
        Kind::Site,
        Kind::Host,
        Kind::Appliance,
        Kind::Credential,
        Kind::Runbook,
        Kind::Release,
        Kind::Rollout,
    ];

    /// The kind as written in `kind:` (`"Site"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Site => "Site",
            Kind::Host => "Host",
            Kind::Appliance => "Appliance",
            Kind::Credential => "Credential",
            Kind::Runbook => "Runbook",
            Kind::Release => "Release",
            Kind::Rollout => "Rollout",
        }
    }

    /// The resource name in API paths (`"sites"`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Site => "sites",
            Kind::Host => "hosts",
            Kind::Appliance => "appliances",
            Kind::Credential => "credentials",
            Kind::Runbook => "runbooks",
            Kind::Release => "releases",
            Kind::Rollout => "rollouts",
        }
    }

    /// The lowercase singular name (`"site"`), accepted by `kubectl get site`.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Site => "site",
            Kind::Host => "host",
            Kind::Appliance => "appliance",
            Kind::Credential => "credential",
            Kind::Runbook => "runbook",
            Kind::Release => "release",
            Kind::Rollout => "rollout",
        }
    }

    /// Abbreviations for the CLI; none clashes with a Kubernetes built-in (`po`, `svc`, `rs`, …).
    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Kind::Site => &["st"],
            Kind::Host => &["ho"],
            Kind::Appliance => &["appl"],
            Kind::Credential => &["cred"],
            Kind::Runbook => &["rb"],
            Kind::Release => &["rel"],
            Kind::Rollout => &["ro"],
        }
    }

    /// The kind of a list of these (`"SiteList"`).
    pub fn list_kind(self) -> &'static str {
        match self {
            Kind::Site => "SiteList",
            Kind::Host => "HostList",
            Kind::Appliance => "ApplianceList",
            Kind::Credential => "CredentialList",
            Kind::Runbook => "RunbookList",
            Kind::Release => "ReleaseList",
            Kind::Rollout => "RolloutList",
        }
    }

    /// Whether objects live in a site's namespace (Host, Appliance, Credential) rather than cluster-wide.
    pub fn namespaced(self) -> bool {
        matches!(self, Kind::Host | Kind::Appliance | Kind::Credential)
    }

    /// The kind named exactly (case-sensitive, as in `kind:`).
    pub fn from_kind_str(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind whose plural resource name this is (as in an API path).
    pub fn from_plural(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == s)
    }

    /// The kind a person means by a resource name on a command line: plural, singular, short name or
    /// kind, in any case (`hosts`, `host`, `ho`, `Host`).
    pub fn resolve(s: &str) -> Option<Kind> {
        let s = s.to_ascii_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.plural() == s || k.singular() == s || k.short_names().contains(&s.as_str()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<S: Spec> Object<S> {
    /// A new object with the right apiVersion and kind, the given metadata and spec, and no status.
    pub fn new(metadata: ObjectMeta, spec: S) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: S::KIND.as_str().to_owned(),
            metadata,
            spec,
            status: None,
        }
    }
}

/// Expands `$body` once per kind with `$kind` bound to the variant name, for dispatch over [`AnyObject`].
macro_rules! for_each_kind {
    ($object:expr, $inner:ident => $body:expr) => {
        match $object {
            AnyObject::Site($inner) => $body,
            AnyObject::Host($inner) => $body,
            AnyObject::Appliance($inner) => $body,
            AnyObject::Credential($inner) => $body,
            AnyObject::Runbook($inner) => $body,
            AnyObject::Release($inner) => $body,
            AnyObject::Rollout($inner) => $body,
        }
    };
}

impl AnyObject {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            AnyObject::Site(_) => Kind::Site,
            AnyObject::Host(_) => Kind::Host,
            AnyObject::Appliance(_) => Kind::Appliance,
            AnyObject::Credential(_) => Kind::Credential,
            AnyObject::Runbook(_) => Kind::Runbook,
            AnyObject::Release(_) => Kind::Release,
            AnyObject::Rollout(_) => Kind::Rollout,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        for_each_kind!(self, o => &o.metadata)
    }

    /// The object's metadata, for the server to stamp uid, resourceVersion and the like.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        for_each_kind!(self, o => &mut o.metadata)
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The object's namespace (its site), for namespaced kinds.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// Fills every absent defaulted field (see [`crate::defaults`]); idempotent.
    pub fn apply_defaults(&mut self) {
        for_each_kind!(self, o => o.apply_defaults())
    }

    /// The object as JSON, exactly as it serializes.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("objects always serialize to JSON")
    }

    /// Decodes an object of the given kind from any serde format, so that the caller keeps its format's
    /// error positions (serde_yaml's line numbers, for instance).
    ///
    /// The apiVersion and kind fields inside are checked by validation, not here.
    pub fn deserialize_kind<'de, D: Deserializer<'de>>(
        kind: Kind,
        deserializer: D,
    ) -> Result<AnyObject, D::Error> {
        Ok(match kind {
            Kind::Site => AnyObject::Site(Deserialize::deserialize(deserializer)?),
            Kind::Host => AnyObject::Host(Deserialize::deserialize(deserializer)?),
            Kind::Appliance => AnyObject::Appliance(Deserialize::deserialize(deserializer)?),
            Kind::Credential => AnyObject::Credential(Deserialize::deserialize(deserializer)?),
            Kind::Runbook => AnyObject::Runbook(Deserialize::deserialize(deserializer)?),
            Kind::Release => AnyObject::Release(Deserialize::deserialize(deserializer)?),
            Kind::Rollout => AnyObject::Rollout(Deserialize::deserialize(deserializer)?),
        })
    }

    /// Decodes an object from JSON, checking `apiVersion` and `kind` first so that a typo there gets a
    /// message naming what is allowed rather than a schema error.
    pub fn from_json(value: serde_json::Value) -> Result<AnyObject, DecodeError> {
        let serde_json::Value::Object(map) = &value else {
            return Err(DecodeError::NotAnObject {
                found: json_type(&value),
            });
        };
        let field = |field: &'static str| {
            map.get(field)
                .and_then(|v| v.as_str())
                .ok_or(DecodeError::MissingField { field })
        };
        let api_version = field("apiVersion")?;
        if api_version != API_VERSION {
            return Err(DecodeError::WrongApiVersion {
                found: api_version.to_owned(),
            });
        }
        let kind_str = field("kind")?;
        let kind = Kind::from_kind_str(kind_str).ok_or_else(|| DecodeError::UnknownKind {
            found: kind_str.to_owned(),
        })?;
        AnyObject::deserialize_kind(kind, value)
            .map_err(|source| DecodeError::Invalid { kind, source })
    }
}

impl Serialize for AnyObject {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        for_each_kind!(self, o => o.serialize(serializer))
    }
}

impl<'de> Deserialize<'de> for AnyObject {
    /// Decodes through [`AnyObject::from_json`], so the kind is read from the document itself.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        AnyObject::from_json(value).map_err(serde::de::Error::custom)
    }
}

macro_rules! impl_from_object {
    ($($variant:ident),*) => {
        $(impl From<$variant> for AnyObject {
            fn from(object: $variant) -> Self {
                AnyObject::$variant(object)
            }
        })*
    };
}
impl_from_object!(Site, Host, Appliance, Credential, Runbook, Release, Rollout);

fn known_kinds() -> String {
    Kind::ALL.map(Kind::as_str).join(", ")
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_kind_str(kind.as_str()), Some(kind));
            assert_eq!(Kind::from_plural(kind.plural()), Some(kind));
            assert_eq!(kind.list_kind(), format!("{kind}List"));
            assert_eq!(kind.singular(), kind.as_str().to_ascii_lowercase());
            assert_eq!(kind.plural(), format!("{}s", kind.singular()));
            for short in kind.short_names() {
                assert_eq!(Kind::resolve(short), Some(kind));
            }
            assert_eq!(Kind::resolve(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::from_kind_str("site"), None);
        assert_eq!(Kind::from_plural("site"), None);
        assert_eq!(Kind::resolve("pods"), None);
    }

    #[test]
    fn short_names_are_unique_and_avoid_kubernetes_builtins() {
        let builtins = [
            "cm", "cs", "csr", "ds", "deploy", "ep", "ev", "hpa", "ing", "limits", "netpol", "no",
            "ns", "pc", "pdb", "po", "psp", "pv", "pvc", "quota", "rc", "rs", "sa", "sc", "sts",
            "svc", "crd", "crds",
        ];
        let mut seen = std::collections::BTreeSet::new();
        for kind in Kind::ALL {
            for short in kind.short_names() {
                assert!(!builtins.contains(short), "{short}");
                assert!(seen.insert(*short), "{short} used twice");
            }
        }
    }

    #[test]
    fn scope_per_kind() {
        let namespaced: Vec<_> = Kind::ALL.into_iter().filter(|k| k.namespaced()).collect();
        assert_eq!(namespaced, [Kind::Host, Kind::Appliance, Kind::Credential]);
    }

    fn host_json() -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "osiriscare.net/v1alpha1",
            "kind": "Host",
            "metadata": {"name": "web1", "namespace": "clinic-a", "labels": {"role": "web"}},
            "spec": {"address": "10.0.0.5", "platform": "linux"}
        })
    }

    #[test]
    fn from_json_decodes_and_serializes_back_unchanged() {
        let object = AnyObject::from_json(host_json()).unwrap();
        assert_eq!(object.kind(), Kind::Host);
        assert_eq!(object.name(), "web1");
        assert_eq!(object.namespace(), Some("clinic-a"));
        assert_eq!(object.to_json(), host_json());
        let via_serde: AnyObject = serde_json::from_value(host_json()).unwrap();
        assert_eq!(via_serde, object);
    }

    #[test]
    fn from_json_errors_table() {
        let with = |key: &str, value: serde_json::Value| {
            let mut json = host_json();
            json[key] = value;
            json
        };
        let without = |key: &str| {
            let mut json = host_json();
            json.as_object_mut().unwrap().remove(key);
            json
        };
        let cases = [
            (serde_json::json!([1]), "expected an object"),
            (without("apiVersion"), "missing apiVersion"),
            (
                with("apiVersion", "v1".into()),
                "apiVersion \"v1\" is not served here; use \"osiriscare.net/v1alpha1\"",
            ),
            (without("kind"), "missing kind"),
            (
                with("kind", "Hots".into()),
                "unknown kind \"Hots\"; known kinds: Site, Host, Appliance, Credential, Runbook, Release, Rollout",
            ),
            (
                with(
                    "spec",
                    serde_json::json!({"platform": "linux", "adress": "x"}),
                ),
                "invalid Host: unknown field `adress`",
            ),
            (
                with("spec", serde_json::json!({"platform": "bsd"})),
                "invalid Host: unknown variant `bsd`, expected one of `linux`, `windows`, `appliance`",
            ),
            (with("extra", serde_json::json!(1)), "unknown field `extra`"),
        ];
        for (json, expected) in cases {
            let err = AnyObject::from_json(json).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn deserialize_kind_works_with_any_deserializer() {
        let yaml = "apiVersion: osiriscare.net/v1alpha1\nkind: Site\nmetadata:\n  name: clinic-a\n\
                    spec:\n  displayName: Clinic A\n  partner: msp-1\n";
        let object =
            AnyObject::deserialize_kind(Kind::Site, serde_yaml::Deserializer::from_str(yaml))
                .unwrap();
        assert_eq!(object.kind(), Kind::Site);
        let yaml_err = "apiVersion: osiriscare.net/v1alpha1\nkind: Site\nmetadata:\n  name: a\n\
                        spec:\n  displayName: A\n  partner: p\n  healing:\n    mood: audit\n";
        let err =
            AnyObject::deserialize_kind(Kind::Site, serde_yaml::Deserializer::from_str(yaml_err))
                .unwrap_err();
        assert!(err.to_string().contains("unknown field `mood`"), "{err}");
        assert_eq!(err.location().map(|l| l.line()), Some(9), "{err}");
    }

    #[test]
    fn object_new_fills_api_version_and_kind() {
        let site = Site::new(
            ObjectMeta::named("clinic-a"),
            serde_json::from_value(serde_json::json!({"displayName": "A", "partner": "p"}))
                .unwrap(),
        );
        assert_eq!(site.api_version, API_VERSION);
        assert_eq!(site.kind, "Site");
        assert_eq!(AnyObject::from(site).kind(), Kind::Site);
    }
}
