//! `Release`: a signed appliance system image that rollouts deliver.
//!
//! A Release carries every field of the release manifest that its signatures cover, under the same
//! JSON names, so the exact signed bytes can be rebuilt from it: the manifest is `version`, `image`
//! (`url`, `sha256`, `size`), `built`, `expires` and `minControllerVersion` (omitted when absent),
//! encoded as `osc_proto::release::ReleaseManifest` encodes them, and each signature is a DSSE
//! signature over that encoding with the payload type `application/vnd.osiriscare.release.v1+json`.
//! `signatures` and `notes` are not signed. This crate does not depend on `osc-proto` (nor it on this
//! one); `crds/tests/release_manifest.rs` holds the two together.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Kind, NoStatus, Object, Signature, Spec};

/// A release, cluster-scoped.
pub type Release = Object<ReleaseSpec>;

/// What an appliance needs to fetch, check and trust an image: the signed manifest's fields, then the
/// signatures and the notes.
///
/// `built` and `expires` are required, yet optional in the type, so that a missing one is reported by
/// validation together with every other problem rather than as a decoding error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseSpec {
    /// The release's semantic version (e.g. `1.4.2`); appliances refuse a lower one than they accepted.
    /// Signed.
    pub version: String,
    /// The image to download. Signed.
    pub image: Image,
    /// When the image was built (RFC 3339); required. Signed; appliances raise their time floor to it,
    /// so a clock set back cannot make an expired release look fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built: Option<DateTime<Utc>>,
    /// When the signed manifest stops being trusted (RFC 3339), after `built`; required, so that a
    /// captured old release cannot be replayed forever. Signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    /// The oldest controller version (semver) that can install this release. Signed when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_controller_version: Option<String>,
    /// DSSE Ed25519 signatures over the release manifest (version, image, built, expires,
    /// minControllerVersion) by the release keys the appliances pin, each naming its key by DSSE keyid
    /// (`ed25519:` and 32 hex digits). Added by the offline signing ceremony after the image is
    /// published, so absent before; appliances refuse a release without enough valid signatures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
    /// Release notes for people; not signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The image file of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// Where to download it; `https` only.
    pub url: String,
    /// SHA-256 of the whole image, 64 lowercase hex digits (the manifest's encoding).
    pub sha256: String,
    /// Length of the image in bytes.
    pub size: u64,
}

impl Spec for ReleaseSpec {
    const KIND: Kind = Kind::Release;
    type Status = NoStatus;
}
