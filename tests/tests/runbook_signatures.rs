//! Every Linux runbook in `desired-state/` carries its current digest and a signature by the runbook key
//! the repo publishes (`desired-state/keys/runbooks-dev.pub`), and the signing tool keeps it so.
//!
//! A failure of the first test after an edit means the runbook was not signed again: run
//! `tests/sign-runbooks`.

use std::fs;
use std::path::PathBuf;

use osc_crds::AnyObject;
use osc_crds::kinds::runbook::Runbook;
use osc_crds::load::{load_path, load_str};
use osc_proto::dsse::PublicKey;
use osc_tests::runbook::library_dir;
use osc_tests::signing::{
    DEV_PUBLIC_KEY_FILE, SignError, Signed, dev_signer, runbook_files, sign_file, verify_runbook,
};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The published key, read from the repo as an appliance's configuration would carry it.
fn published_key() -> PublicKey {
    let text = fs::read_to_string(workspace().join(DEV_PUBLIC_KEY_FILE)).expect("read the key");
    PublicKey::from_base64(text.trim()).expect("a base64 Ed25519 public key")
}

fn linux_runbooks() -> Vec<Runbook> {
    load_path(library_dir().join("linux"))
        .expect("the library loads")
        .into_iter()
        .filter_map(|l| match l.object {
            AnyObject::Runbook(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn runbook_from(text: &str) -> Runbook {
    match load_str("runbook.yaml", text)
        .expect("loads")
        .remove(0)
        .object
    {
        AnyObject::Runbook(r) => r,
        other => panic!("not a runbook: {other:?}"),
    }
}

#[test]
fn every_linux_runbook_is_signed_for_its_content_by_the_published_key() {
    let key = published_key();
    let runbooks = linux_runbooks();
    assert!(
        runbooks.len() >= 16,
        "only {} Linux runbooks",
        runbooks.len()
    );
    for runbook in &runbooks {
        assert_eq!(
            verify_runbook(runbook, std::slice::from_ref(&key)),
            Ok(key.keyid().to_owned())
        );
    }
}

#[test]
fn the_published_key_is_the_development_key_the_tool_signs_with() {
    assert_eq!(published_key(), dev_signer().public_key());
}

#[test]
fn a_signature_does_not_verify_for_other_content_or_under_another_key() {
    let key = published_key();
    let runbooks = linux_runbooks();
    let (first, second) = (&runbooks[0], &runbooks[1]);

    // One runbook's signature carried over to another, with the other's digest.
    let mut swapped = second.clone();
    swapped.spec.signatures = first.spec.signatures.clone();
    let refused = verify_runbook(&swapped, std::slice::from_ref(&key)).unwrap_err();
    assert!(refused.contains("does not verify"), "{refused}");

    // A script changed after signing: the digest no longer matches.
    let mut edited = first.clone();
    edited.spec.check.script.push_str("\necho backdoor\n");
    let refused = verify_runbook(&edited, std::slice::from_ref(&key)).unwrap_err();
    assert!(refused.contains("is not its content's"), "{refused}");

    // Signed, but by no trusted key.
    let stranger = osc_proto::dsse::Signer::from_seed(&[7; 32]).public_key();
    let refused = verify_runbook(first, &[stranger]).unwrap_err();
    assert!(
        refused.contains("no signature by a trusted key"),
        "{refused}"
    );
}

#[test]
fn the_repo_needs_no_signing() {
    let signer = dev_signer();
    for file in runbook_files(&library_dir().join("linux")).expect("list the library") {
        assert_eq!(
            sign_file(&file, &signer, true).unwrap_or_else(|e| panic!("{e}")),
            Signed::Unchanged
        );
    }
}

/// A copy of the AIDE runbook in a temporary directory, with one default changed: the signed
/// original, the edited text above the signed tail, and the edited file as a person leaves it (old
/// digest and signature still at its end).
struct Edited {
    dir: tempfile::TempDir,
    body: String,
    with_stale_tail: String,
}

impl Edited {
    fn new() -> Self {
        let original =
            fs::read_to_string(library_dir().join("linux/aide.yaml")).expect("read a runbook");
        let edit = |text: &str| {
            let edited = text.replace(
                "default: \"/etc/aide/aide.conf\"",
                "default: \"/etc/aide.conf\"",
            );
            assert_ne!(edited, text, "the edit must change the runbook");
            edited
        };
        let tail = original.find("\n  digest: ").expect("signed") + 1;
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            body: edit(&original[..tail]),
            with_stale_tail: edit(&original),
        }
    }

    /// Writes `text` as the runbook's file and signs it with the development key, which must be
    /// needed (`--check` fails) and must keep the edited body; returns the file and its signed text.
    fn sign(&self, text: &str) -> (PathBuf, String) {
        let file = self.dir.path().join("aide.yaml");
        fs::write(&file, text).expect("write");
        let signer = dev_signer();
        assert!(matches!(
            sign_file(&file, &signer, true),
            Err(SignError::Unsigned { .. })
        ));
        assert_eq!(sign_file(&file, &signer, false).unwrap(), Signed::Written);
        let signed = fs::read_to_string(&file).expect("read");
        assert!(
            signed.starts_with(&self.body),
            "the body above the tail is kept"
        );
        (file, signed)
    }
}

#[test]
fn an_edited_runbook_is_signed_again_and_only_its_tail_changes() {
    let edited = Edited::new();
    let (_, signed) = edited.sign(&edited.with_stale_tail);
    let key = dev_signer().public_key();
    assert_eq!(
        verify_runbook(&runbook_from(&signed), std::slice::from_ref(&key)),
        Ok(key.keyid().to_owned())
    );
}

#[test]
fn signing_an_unsigned_runbook_adds_the_tail_and_a_second_run_changes_nothing() {
    let edited = Edited::new();
    let (file, signed) = edited.sign(&edited.body);
    let signer = dev_signer();
    assert_eq!(sign_file(&file, &signer, false).unwrap(), Signed::Unchanged);
    assert_eq!(fs::read_to_string(&file).expect("read"), signed);

    // A second key's signature joins the first while the content stays the same.
    let other = osc_proto::dsse::Signer::from_seed(&[9; 32]);
    assert_eq!(sign_file(&file, &other, false).unwrap(), Signed::Written);
    let both = runbook_from(&fs::read_to_string(&file).expect("read"));
    assert_eq!(both.spec.signatures.len(), 2);
    for key in [signer.public_key(), other.public_key()] {
        assert!(verify_runbook(&both, &[key]).is_ok());
    }
}
