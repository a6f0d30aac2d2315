//! The signed release manifest: what an appliance checks before it writes an image to its
//! inactive slot (DESIGN §6).
//!
//! A manifest travels as a DSSE envelope whose payload type is [`RELEASE_PAYLOAD_TYPE`] and
//! whose payload is the manifest's JSON; each signature is an Ed25519 signature by a release key
//! over DSSE's pre-authentication encoding of that type and payload, so the signed bytes are
//! exactly the bytes received and no JSON canonicalisation is needed. Acceptance is TUF's
//! targets-role rule kept minimal: at least `threshold` distinct pinned keys must have signed,
//! and, as in TUF, signatures beyond that (by unknown keys, or ones that fail) are ignored, so
//! keys can be rotated by signing with old and new keys for a while.
//! The appliance's clock is never the only defence against replay of an old release: expiry is
//! judged against a time floor the caller computes, and versions must rise.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::dsse::{self, DsseError, Envelope, PublicKey, Signer};
use crate::merkle::{Hash, hex_hash};

/// The DSSE payload type of a release manifest.
pub const RELEASE_PAYLOAD_TYPE: &str = "application/vnd.osiriscare.release.v1+json";

/// What a release is and until when it may be installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseManifest {
    /// The release's semantic version; updates only ever move it up (unless a rollout allows a
    /// downgrade).
    pub version: String,
    /// The appliance image this release installs.
    pub image: ReleaseImage,
    /// When the release was built; appliances raise their time floor to it.
    pub built: DateTime<Utc>,
    /// After this instant the release must not be installed, so a captured manifest cannot be
    /// replayed forever.
    pub expires: DateTime<Utc>,
    /// The oldest controller version that may install this release, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_controller_version: Option<String>,
}

/// The image a release installs, as the update agent downloads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseImage {
    /// Where to download the image from.
    pub url: String,
    /// The SHA-256 of the whole image, lowercase hex in JSON.
    #[serde(with = "hex_hash")]
    pub sha256: Hash,
    /// The image's length in bytes; a download longer than this is stopped early.
    pub size: u64,
}

/// The appliance's state that decides whether a correctly signed release may be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// The highest version this appliance has ever accepted (kept on the data partition, not
    /// in a slot); `None` before the first accepted release.
    pub highest_accepted_version: Option<Version>,
    /// The earliest the current time can be: the maximum of the RTC, the running build's time
    /// and the `built` time of the last verified manifest, computed by the caller.
    pub time_floor: DateTime<Utc>,
    /// Whether the rollout allows installing a version not higher than the highest accepted.
    pub allow_downgrade: bool,
}

/// A release that passed [`verify_release`]; only that function makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRelease {
    /// The manifest as signed.
    manifest: ReleaseManifest,
    /// The manifest's version, parsed.
    version: Version,
    /// The manifest's minimum controller version, parsed.
    min_controller_version: Option<Version>,
    /// The ids of the pinned keys whose signatures verified, sorted.
    signed_by: Vec<String>,
}

impl VerifiedRelease {
    /// The manifest as signed.
    pub fn manifest(&self) -> &ReleaseManifest {
        &self.manifest
    }

    /// The release's version.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The oldest controller version that may install this release, if the manifest sets one.
    pub fn min_controller_version(&self) -> Option<&Version> {
        self.min_controller_version.as_ref()
    }

    /// The ids of the pinned keys whose signatures verified, sorted.
    pub fn signed_by(&self) -> &[String] {
        &self.signed_by
    }
}

/// Why a release was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The caller asked for a threshold no set of pinned keys can meet (or 0, which would
    /// accept unsigned releases).
    #[error(
        "release signature threshold {threshold} is impossible with {keys} pinned release keys; set it between 1 and {keys}"
    )]
    InvalidThreshold {
        /// The requested threshold.
        threshold: usize,
        /// The number of pinned keys.
        keys: usize,
    },
    /// The envelope holds something other than a release manifest.
    #[error(
        "envelope payload type is {found:?}, not {RELEASE_PAYLOAD_TYPE:?}: this is not a release manifest"
    )]
    WrongPayloadType {
        /// The payload type found.
        found: String,
    },
    /// The envelope carries no signature.
    #[error("release manifest is unsigned; sign it with a pinned release key")]
    Unsigned,
    /// Too few pinned keys signed, and a signature naming a pinned key does not verify.
    #[error("release manifest signature is bad: {source}")]
    BadSignature {
        /// The first failed verification, naming the key.
        #[source]
        source: DsseError,
    },
    /// Too few pinned keys signed, and no signature names a pinned key.
    #[error(
        "release manifest is signed only by keys this appliance does not pin ({keyids:?}); sign it with a pinned release key"
    )]
    UnknownKeys {
        /// The key ids the signatures name.
        keyids: Vec<String>,
    },
    /// Some pinned keys signed, but fewer distinct ones than the threshold requires.
    #[error(
        "release manifest is signed by {valid} pinned release key(s), the threshold is {threshold}; add signatures by more release keys"
    )]
    BelowThreshold {
        /// The number of distinct pinned keys whose signatures verified.
        valid: usize,
        /// The number required.
        threshold: usize,
    },
    /// The signed payload is not a release manifest's JSON.
    #[error("signed release payload is not a valid manifest: {source}")]
    MalformedManifest {
        /// The JSON decoder's reason, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A version field is not a semantic version.
    #[error(
        "release manifest field {field} is {value:?}, which is not a semantic version: {source}"
    )]
    MalformedVersion {
        /// The manifest field (`version` or `minControllerVersion`).
        field: &'static str,
        /// The text found.
        value: String,
        /// The parser's reason.
        #[source]
        source: semver::Error,
    },
    /// The release expired before the time floor.
    #[error(
        "release {version} expired at {expires}, which is not after the time floor {time_floor}; publish a freshly signed manifest"
    )]
    Expired {
        /// The release's version.
        version: String,
        /// The manifest's expiry.
        expires: DateTime<Utc>,
        /// The appliance's time floor.
        time_floor: DateTime<Utc>,
    },
    /// The release is not newer than what the appliance has accepted, and the rollout does
    /// not allow a downgrade.
    #[error(
        "release {version} is not higher than the highest accepted version {highest}; a downgrade or reinstall needs allowDowngrade on the rollout"
    )]
    NotNewer {
        /// The release's version.
        version: Version,
        /// The highest version accepted so far.
        highest: Version,
    },
    /// The downloaded image's length differs from the manifest's.
    #[error(
        "downloaded image is {actual} bytes, the manifest says {expected}; discard it and download again"
    )]
    ImageLength {
        /// The manifest's size.
        expected: u64,
        /// The downloaded length.
        actual: u64,
    },
    /// The downloaded image's SHA-256 differs from the manifest's.
    #[error(
        "downloaded image has SHA-256 {actual}, the manifest says {expected}; discard it and download again"
    )]
    ImageDigest {
        /// The manifest's digest, hex.
        expected: String,
        /// The downloaded image's digest, hex.
        actual: String,
    },
}

/// Signs a manifest with each of `signers`, as release tooling does; with no signers the
/// envelope is unsigned.
pub fn sign_release(manifest: &ReleaseManifest, signers: &[Signer]) -> Envelope {
    let payload = serde_json::to_vec(manifest).expect("a manifest's fields always serialize");
    let signatures = signers
        .iter()
        .flat_map(|signer| dsse::sign(RELEASE_PAYLOAD_TYPE, payload.clone(), signer).signatures)
        .collect();
    Envelope {
        payload_type: RELEASE_PAYLOAD_TYPE.to_owned(),
        payload,
        signatures,
    }
}

/// Decides whether a signed release may be installed: signed by at least `threshold` distinct
/// keys of `trusted_keys`, not expired at the policy's time floor, with well-formed versions,
/// and higher than any version accepted before unless the policy allows a downgrade.
///
/// The payload is parsed only after its signatures verified, so unauthenticated bytes never
/// reach the JSON decoder.
pub fn verify_release(
    signed: &Envelope,
    trusted_keys: &[PublicKey],
    threshold: usize,
    policy: &UpdatePolicy,
) -> Result<VerifiedRelease, ReleaseError> {
    let signed_by = count_signers(signed, trusted_keys, threshold)?;
    let manifest: ReleaseManifest = serde_json::from_slice(&signed.payload)
        .map_err(|source| ReleaseError::MalformedManifest { source })?;
    let version = parse_version("version", &manifest.version)?;
    let min_controller_version = manifest
        .min_controller_version
        .as_deref()
        .map(|text| parse_version("minControllerVersion", text))
        .transpose()?;
    if manifest.expires <= policy.time_floor {
        return Err(ReleaseError::Expired {
            version: manifest.version,
            expires: manifest.expires,
            time_floor: policy.time_floor,
        });
    }
    if let Some(highest) = &policy.highest_accepted_version
        && version <= *highest
        && !policy.allow_downgrade
    {
        return Err(ReleaseError::NotNewer {
            version,
            highest: highest.clone(),
        });
    }
    Ok(VerifiedRelease {
        manifest,
        version,
        min_controller_version,
        signed_by,
    })
}

/// Checks a downloaded image against its manifest entry, given the length and SHA-256 the
/// caller computed while streaming it.
pub fn check_image(image: &ReleaseImage, length: u64, sha256: &Hash) -> Result<(), ReleaseError> {
    if length != image.size {
        return Err(ReleaseError::ImageLength {
            expected: image.size,
            actual: length,
        });
    }
    if *sha256 != image.sha256 {
        return Err(ReleaseError::ImageDigest {
            expected: hex::encode(image.sha256),
            actual: hex::encode(sha256),
        });
    }
    Ok(())
}

/// The sorted ids of the distinct pinned keys that signed `signed`, if they meet `threshold`.
fn count_signers(
    signed: &Envelope,
    trusted_keys: &[PublicKey],
    threshold: usize,
) -> Result<Vec<String>, ReleaseError> {
    if threshold == 0 || threshold > trusted_keys.len() {
        return Err(ReleaseError::InvalidThreshold {
            threshold,
            keys: trusted_keys.len(),
        });
    }
    if signed.payload_type != RELEASE_PAYLOAD_TYPE {
        return Err(ReleaseError::WrongPayloadType {
            found: signed.payload_type.clone(),
        });
    }
    if signed.signatures.is_empty() {
        return Err(ReleaseError::Unsigned);
    }
    // Each signature is checked on its own so that every distinct signer counts; DSSE's
    // verifier stops at the first good one.
    let mut signers = BTreeSet::new();
    let mut first_bad = None;
    for signature in &signed.signatures {
        let single = Envelope {
            signatures: vec![signature.clone()],
            ..signed.clone()
        };
        match dsse::verify(&single, RELEASE_PAYLOAD_TYPE, trusted_keys) {
            Ok(verified) => {
                signers.insert(verified.key.keyid().to_owned());
            }
            Err(DsseError::UntrustedKey { .. }) => {}
            Err(error) => {
                first_bad.get_or_insert(error);
            }
        }
    }
    if signers.len() >= threshold {
        return Ok(signers.into_iter().collect());
    }
    Err(match first_bad {
        Some(source) => ReleaseError::BadSignature { source },
        None if signers.is_empty() => ReleaseError::UnknownKeys {
            keyids: signed.signatures.iter().map(|s| s.keyid.clone()).collect(),
        },
        None => ReleaseError::BelowThreshold {
            valid: signers.len(),
            threshold,
        },
    })
}

fn parse_version(field: &'static str, text: &str) -> Result<Version, ReleaseError> {
    Version::parse(text).map_err(|source| ReleaseError::MalformedVersion {
        field,
        value: text.to_owned(),
        source,
    })
}
