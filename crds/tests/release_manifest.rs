//! A Release carries exactly what its signatures cover: the release manifest that `osc-proto` signs and
//! verifies can be rebuilt from it, byte for byte, after a trip through git.
//!
//! The two crates do not depend on each other; this test (with `osc-proto` as a dev-dependency) is
//! where they meet. A failure here means a field was renamed, retyped, added or dropped on one side
//! only, and signed releases would stop verifying on appliances.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Duration;
use osc_crds::AnyObject;
use osc_crds::kinds::Signature;
use osc_crds::kinds::release::{Release, ReleaseSpec};
use osc_crds::load::{load_path, load_str};
use osc_proto::dsse::{self, Envelope, Signer};
use osc_proto::release::{
    RELEASE_PAYLOAD_TYPE, ReleaseError, ReleaseImage, ReleaseManifest, UpdatePolicy, sign_release,
    verify_release,
};
use serde_json::Value;

/// The manifest whose signatures a Release carries, as an appliance rebuilds it.
fn manifest_of(spec: &ReleaseSpec) -> ReleaseManifest {
    let mut sha256 = [0; 32];
    hex::decode_to_slice(&spec.image.sha256, &mut sha256).expect("validated: 64 hex digits");
    ReleaseManifest {
        version: spec.version.clone(),
        image: ReleaseImage {
            url: spec.image.url.clone(),
            sha256,
            size: spec.image.size,
        },
        built: spec.built.expect("validated: built is required"),
        expires: spec.expires.expect("validated: expires is required"),
        min_controller_version: spec.min_controller_version.clone(),
    }
}

/// The DSSE envelope an appliance verifies: the rebuilt manifest and the Release's signatures.
fn envelope_of(spec: &ReleaseSpec) -> Envelope {
    Envelope {
        payload_type: RELEASE_PAYLOAD_TYPE.to_owned(),
        payload: serde_json::to_vec(&manifest_of(spec)).unwrap(),
        signatures: spec
            .signatures
            .iter()
            .map(|s| dsse::Signature {
                keyid: s.keyid.clone(),
                sig: BASE64.decode(&s.sig).expect("validated: standard base64"),
            })
            .collect(),
    }
}

/// The example repo's release, unsigned as committed.
fn example_release() -> Release {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../desired-state/releases");
    load_path(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find_map(|loaded| match loaded.object {
            AnyObject::Release(release) => Some(release),
            _ => None,
        })
        .expect("desired-state/releases holds a Release")
}

/// The three pinned release keys of these tests.
fn release_keys() -> [Signer; 3] {
    [1u8, 2, 3].map(|seed| Signer::from_seed(&[seed; 32]))
}

/// `release` signed by the first two release keys, as the ceremony's pull request commits it.
fn signed(mut release: Release) -> Release {
    let keys = release_keys();
    let envelope = sign_release(&manifest_of(&release.spec), &keys[..2]);
    release.spec.signatures = envelope
        .signatures
        .iter()
        .map(|s| Signature {
            keyid: s.keyid.clone(),
            sig: BASE64.encode(&s.sig),
        })
        .collect();
    release
}

/// Verifies `spec` as an appliance that pins all three keys and needs two signatures.
fn verify(spec: &ReleaseSpec) -> Result<ReleaseManifest, ReleaseError> {
    let pinned = release_keys().map(|k| k.public_key());
    let policy = UpdatePolicy {
        highest_accepted_version: None,
        time_floor: spec.built.unwrap(),
        allow_downgrade: false,
    };
    verify_release(&envelope_of(spec), &pinned, 2, &policy).map(|v| v.manifest().clone())
}

/// Writes `release` as YAML and loads it back through the loader, as a commit and a checkout do.
fn through_git(release: &Release, edit: impl Fn(String) -> String) -> Release {
    let yaml = edit(serde_yaml::to_string(release).unwrap());
    let loaded = load_str("release.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    match loaded.into_iter().next().map(|l| l.object) {
        Some(AnyObject::Release(release)) => release,
        other => panic!("expected a Release, got {other:?}"),
    }
}

#[test]
fn the_signed_fields_serialize_under_the_manifests_names_and_encodings() {
    let release = example_release();
    let manifest = serde_json::to_value(manifest_of(&release.spec)).unwrap();
    let Value::Object(manifest) = manifest else {
        unreachable!()
    };
    let keys: Vec<&str> = manifest.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "built",
            "expires",
            "image",
            "minControllerVersion",
            "version"
        ],
        "the example sets every manifest field"
    );
    let spec = serde_json::to_value(&release.spec).unwrap();
    for (key, value) in &manifest {
        assert_eq!(
            &spec[key], value,
            "spec.{key} differs from the manifest's {key}"
        );
    }
}

#[test]
fn a_release_signed_at_the_ceremony_verifies_after_a_trip_through_git() {
    let unsigned = example_release();
    assert!(
        matches!(verify(&unsigned.spec), Err(ReleaseError::Unsigned)),
        "the example is committed unsigned"
    );
    let release = signed(unsigned);
    AnyObject::from(release.clone())
        .validate()
        .unwrap_or_else(|e| panic!("a ceremony's signatures must pass validation:\n{e}"));
    let expected = manifest_of(&release.spec);

    let as_committed = through_git(&release, |yaml| yaml);
    assert_eq!(verify(&as_committed.spec).unwrap(), expected);

    // The signed bytes depend on the instants, not on how a person writes them in the file.
    let in_another_offset = through_git(&release, |yaml| {
        let built = "2026-11-16T14:02:00Z";
        assert!(yaml.contains(built), "{yaml}");
        yaml.replace(built, "2026-11-16T09:02:00-05:00")
    });
    assert_eq!(verify(&in_another_offset.spec).unwrap(), expected);
}

#[test]
fn every_signed_field_is_covered_and_notes_are_not() {
    let release = signed(example_release());
    type Edit = fn(&mut ReleaseSpec);
    let tampered: [(&str, Edit); 8] = [
        ("version", |s| s.version = "1.4.3".into()),
        ("image.url", |s| s.image.url.push_str("?mirror=1")),
        ("image.sha256", |s| s.image.sha256 = "0".repeat(64)),
        ("image.size", |s| s.image.size += 1),
        ("built", |s| {
            s.built = s.built.map(|t| t - Duration::seconds(1))
        }),
        ("expires", |s| {
            s.expires = s.expires.map(|t| t + Duration::days(365))
        }),
        ("minControllerVersion changed", |s| {
            s.min_controller_version = Some("1.0.0".into())
        }),
        ("minControllerVersion removed", |s| {
            s.min_controller_version = None
        }),
    ];
    for (field, edit) in tampered {
        let mut spec = release.spec.clone();
        edit(&mut spec);
        assert!(
            matches!(verify(&spec), Err(ReleaseError::BadSignature { .. })),
            "changing {field} must break the signatures"
        );
    }
    let mut spec = release.spec.clone();
    spec.notes = Some("Corrected notes.".into());
    assert_eq!(verify(&spec).unwrap(), manifest_of(&release.spec));
}
