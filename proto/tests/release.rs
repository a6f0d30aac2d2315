//! The release manifest: what an appliance accepts, what it refuses and why.

use chrono::{DateTime, Duration, Utc};
use osc_proto::dsse::{self, Envelope, PublicKey, Signer};
use osc_proto::merkle::Hash;
use osc_proto::release::{
    RELEASE_PAYLOAD_TYPE, ReleaseError, ReleaseImage, ReleaseManifest, UpdatePolicy, check_image,
    sign_release, verify_release,
};
use semver::Version;
use sha2::{Digest, Sha256};

fn key(seed: u8) -> Signer {
    Signer::from_seed(&[seed; 32])
}

/// The appliance pins release keys 1, 2 and 3.
fn pinned() -> Vec<PublicKey> {
    (1..=3).map(|seed| key(seed).public_key()).collect()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

const IMAGE: &[u8] = b"squashfs image bytes";

fn image_digest() -> Hash {
    Sha256::digest(IMAGE).into()
}

fn manifest(version: &str) -> ReleaseManifest {
    ReleaseManifest {
        version: version.to_owned(),
        image: ReleaseImage {
            url: "https://releases.osiriscare.example/appliance-1.4.0.img".to_owned(),
            sha256: image_digest(),
            size: IMAGE.len() as u64,
        },
        built: at("2026-03-01T00:00:00Z"),
        expires: at("2026-04-01T00:00:00Z"),
        min_controller_version: Some("1.2.0".to_owned()),
    }
}

/// An appliance that has accepted 1.3.0 and whose time floor is mid-March.
fn policy() -> UpdatePolicy {
    UpdatePolicy {
        highest_accepted_version: Some(Version::new(1, 3, 0)),
        time_floor: at("2026-03-15T00:00:00Z"),
        allow_downgrade: false,
    }
}

#[test]
fn a_newer_release_signed_by_a_pinned_key_is_accepted() {
    let signed = sign_release(&manifest("1.4.0"), &[key(2)]);
    let verified = verify_release(&signed, &pinned(), 1, &policy()).unwrap();
    assert_eq!(verified.manifest(), &manifest("1.4.0"));
    assert_eq!(verified.version(), &Version::new(1, 4, 0));
    assert_eq!(
        verified.min_controller_version(),
        Some(&Version::new(1, 2, 0))
    );
    assert_eq!(verified.signed_by(), [key(2).keyid()]);
}

#[test]
fn the_first_release_is_accepted_with_no_version_history() {
    let signed = sign_release(&manifest("0.1.0"), &[key(1)]);
    let first_boot = UpdatePolicy {
        highest_accepted_version: None,
        ..policy()
    };
    assert!(verify_release(&signed, &pinned(), 1, &first_boot).is_ok());
}

#[test]
fn a_threshold_counts_distinct_pinned_keys_and_ignores_extra_signatures() {
    // Two pinned keys meet a threshold of 2; an unknown key's signature and a corrupt one are
    // ignored once it is met (TUF's rule), which lets release keys be rotated.
    let mut signed = sign_release(&manifest("1.4.0"), &[key(3), key(9), key(1), key(2)]);
    signed.signatures[3].sig[0] ^= 1;
    let verified = verify_release(&signed, &pinned(), 2, &policy()).unwrap();
    let mut expected = vec![key(1).keyid().to_owned(), key(3).keyid().to_owned()];
    expected.sort();
    assert_eq!(verified.signed_by(), expected);
}

#[test]
fn a_rollout_that_allows_downgrade_may_reinstall_or_go_back() {
    let allowed = UpdatePolicy {
        allow_downgrade: true,
        ..policy()
    };
    for version in ["1.3.0", "1.2.9"] {
        let signed = sign_release(&manifest(version), &[key(1)]);
        assert!(
            verify_release(&signed, &pinned(), 1, &allowed).is_ok(),
            "{version}"
        );
    }
}

/// Whether an error is the expected refusal.
type Expect = fn(&ReleaseError) -> bool;

/// Signs arbitrary bytes as if they were a manifest, as a careless or hostile signer might.
fn sign_payload(payload: &[u8]) -> Envelope {
    dsse::sign(RELEASE_PAYLOAD_TYPE, payload.to_vec(), &key(1))
}

#[test]
fn every_refusal_has_its_own_reason() {
    let good = || sign_release(&manifest("1.4.0"), &[key(1)]);
    let with = |f: fn(&mut ReleaseManifest)| {
        let mut m = manifest("1.4.0");
        f(&mut m);
        sign_release(&m, &[key(1)])
    };
    let tampered = {
        let mut envelope = good();
        let text = String::from_utf8(envelope.payload).unwrap();
        envelope.payload = text.replace("1.4.0", "9.4.0").into_bytes();
        envelope
    };
    let relabelled = Envelope {
        payload_type: "application/vnd.osiriscare.evidence.v1+json".to_owned(),
        ..good()
    };
    let cases: Vec<(&str, Envelope, usize, Expect)> = vec![
        (
            "no signature",
            sign_release(&manifest("1.4.0"), &[]),
            1,
            |e| matches!(e, ReleaseError::Unsigned),
        ),
        ("altered after signing", tampered, 1, |e| {
            matches!(e, ReleaseError::BadSignature { .. })
        }),
        (
            "signed by an unpinned key",
            sign_release(&manifest("1.4.0"), &[key(9)]),
            1,
            |e| matches!(e, ReleaseError::UnknownKeys { keyids } if keyids == &[key(9).keyid()]),
        ),
        ("one pinned key of two needed", good(), 2, |e| {
            matches!(
                e,
                ReleaseError::BelowThreshold {
                    valid: 1,
                    threshold: 2
                }
            )
        }),
        (
            "the same pinned key twice",
            sign_release(&manifest("1.4.0"), &[key(1), key(1)]),
            2,
            |e| matches!(e, ReleaseError::BelowThreshold { valid: 1, .. }),
        ),
        ("threshold 0", good(), 0, |e| {
            matches!(e, ReleaseError::InvalidThreshold { threshold: 0, .. })
        }),
        ("threshold above the pinned keys", good(), 4, |e| {
            matches!(
                e,
                ReleaseError::InvalidThreshold {
                    threshold: 4,
                    keys: 3
                }
            )
        }),
        ("another kind of document", relabelled, 1, |e| {
            matches!(e, ReleaseError::WrongPayloadType { .. })
        }),
        (
            "signed bytes that are not a manifest",
            sign_payload(b"{\"version\":"),
            1,
            |e| matches!(e, ReleaseError::MalformedManifest { .. }),
        ),
        (
            "malformed version",
            with(|m| m.version = "1.4".into()),
            1,
            |e| {
                matches!(
                    e,
                    ReleaseError::MalformedVersion {
                        field: "version",
                        ..
                    }
                )
            },
        ),
        (
            "malformed minimum controller version",
            with(|m| m.min_controller_version = Some("latest".into())),
            1,
            |e| {
                matches!(
                    e,
                    ReleaseError::MalformedVersion {
                        field: "minControllerVersion",
                        ..
                    }
                )
            },
        ),
        (
            "expired before the time floor",
            with(|m| m.expires = at("2026-03-14T23:59:59Z")),
            1,
            |e| matches!(e, ReleaseError::Expired { .. }),
        ),
        (
            "expiring exactly at the time floor",
            with(|m| m.expires = at("2026-03-15T00:00:00Z")),
            1,
            |e| matches!(e, ReleaseError::Expired { .. }),
        ),
        (
            "a downgrade",
            with(|m| m.version = "1.2.9".into()),
            1,
            |e| matches!(e, ReleaseError::NotNewer { .. }),
        ),
        (
            "the version already accepted",
            with(|m| m.version = "1.3.0".into()),
            1,
            |e| matches!(e, ReleaseError::NotNewer { .. }),
        ),
        (
            "a pre-release of the accepted version",
            with(|m| m.version = "1.3.0-rc.1".into()),
            1,
            |e| matches!(e, ReleaseError::NotNewer { .. }),
        ),
    ];
    for (name, envelope, threshold, expect) in cases {
        let err = verify_release(&envelope, &pinned(), threshold, &policy()).expect_err(name);
        assert!(expect(&err), "{name}: unexpected {err:?}");
    }
}

#[test]
fn refusals_say_what_to_do() {
    let signed = sign_release(&manifest("1.3.0"), &[key(1)]);
    let err = verify_release(&signed, &pinned(), 1, &policy()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "release 1.3.0 is not higher than the highest accepted version 1.3.0; a downgrade or \
         reinstall needs allowDowngrade on the rollout"
    );
    let bad = verify_release(
        &sign_release(&manifest("1.4.0"), &[key(2)]),
        &pinned(),
        3,
        &policy(),
    )
    .unwrap_err();
    assert!(bad.to_string().contains("add signatures"), "{bad}");
}

#[test]
fn expiry_is_judged_against_the_time_floor_alone() {
    // The floor is the caller's max(RTC, build time, last verified manifest): a release is
    // refused once the floor reaches its expiry, whatever else the clock says.
    let signed = sign_release(&manifest("1.4.0"), &[key(1)]);
    let expires = manifest("1.4.0").expires;
    let floor = |time_floor| UpdatePolicy {
        time_floor,
        ..policy()
    };
    assert!(
        verify_release(
            &signed,
            &pinned(),
            1,
            &floor(expires - Duration::seconds(1))
        )
        .is_ok()
    );
    let err =
        verify_release(&signed, &pinned(), 1, &floor(expires + Duration::days(1))).unwrap_err();
    assert!(
        matches!(&err, ReleaseError::Expired { version, .. } if version == "1.4.0"),
        "{err:?}"
    );
}

#[test]
fn a_downloaded_image_must_match_length_and_digest() {
    let image = manifest("1.4.0").image;
    let length = IMAGE.len() as u64;
    check_image(&image, length, &image_digest()).unwrap();
    assert!(matches!(
        check_image(&image, length + 1, &image_digest()),
        Err(ReleaseError::ImageLength { expected, actual }) if expected == length && actual == length + 1
    ));
    let other: Hash = Sha256::digest(b"another image").into();
    let err = check_image(&image, length, &other).unwrap_err();
    assert!(
        matches!(&err, ReleaseError::ImageDigest { expected, actual }
            if *expected == hex::encode(image_digest()) && *actual == hex::encode(other)),
        "{err:?}"
    );
}

#[test]
fn the_manifest_json_is_camel_case_with_a_hex_digest() {
    let json = serde_json::to_value(manifest("1.4.0")).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "version": "1.4.0",
            "image": {
                "url": "https://releases.osiriscare.example/appliance-1.4.0.img",
                "sha256": hex::encode(image_digest()),
                "size": IMAGE.len(),
            },
            "built": "2026-03-01T00:00:00Z",
            "expires": "2026-04-01T00:00:00Z",
            "minControllerVersion": "1.2.0",
        })
    );
    let mut bare = manifest("1.4.0");
    bare.min_controller_version = None;
    let json = serde_json::to_value(&bare).unwrap();
    assert!(json.get("minControllerVersion").is_none());
    assert_eq!(
        serde_json::from_value::<ReleaseManifest>(json).unwrap(),
        bare
    );
}

#[test]
fn a_signed_release_survives_the_wire() {
    let signed = sign_release(&manifest("1.4.0"), &[key(1)]);
    let text = serde_json::to_string(&signed).unwrap();
    let received: Envelope = serde_json::from_str(&text).unwrap();
    assert_eq!(received.payload_type, RELEASE_PAYLOAD_TYPE);
    assert!(verify_release(&received, &pinned(), 1, &policy()).is_ok());
}
