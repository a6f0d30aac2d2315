//! `Release`: a signed appliance system image that rollouts deliver.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Kind, NoStatus, Object, Signature, Spec};

/// A release, cluster-scoped.
pub type Release = Object<ReleaseSpec>;

/// What an appliance needs to fetch, check and trust an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseSpec {
    /// The release's semantic version (e.g. `1.4.2`); appliances refuse a lower one than they accepted.
    pub version: String,
    /// The image to download.
    pub image: Image,
    /// Ed25519 signatures over the release manifest (version, image sha256 and size, expiry) by the
    /// release keys the appliances pin. Added by the offline signing ceremony when the image is
    /// published, so absent before; appliances refuse a release without enough valid signatures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
    /// The oldest controller version (semver) that can install this release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_controller_version: Option<String>,
    /// Release notes for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// When the signed manifest stops being trusted (RFC 3339); required, so that a captured old release
    /// cannot be replayed forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
}

/// The image file of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// Where to download it; `https` only.
    pub url: String,
    /// SHA-256 of the whole image, 64 lowercase hex digits.
    pub sha256: String,
    /// Length of the image in bytes.
    pub size: u64,
}

impl Spec for ReleaseSpec {
    const KIND: Kind = Kind::Release;
    type Status = NoStatus;
}
