//! Signing the runbook library: each runbook's `digest` ([`RunbookSpec::content_digest`]) and an
//! Ed25519 signature over its UTF-8 bytes (`docs/DESIGN.md` 2.8), written into the runbook's file.
//!
//! [`sign_file`] rewrites only the tail of a file: `digest` and `signatures` are the last fields of
//! `spec`, and everything above them is kept byte for byte, comments included. Signing is deterministic
//! (Ed25519), so signing an unchanged runbook again changes nothing; signatures by other keys stay while
//! the digest is the same and are dropped when it changes, since they no longer verify.
//!
//! The repo's key is the *development* runbook key ([`dev_signer`]): its secret is derived from a
//! published text, so anyone can sign with it and it protects nothing. It exists so that the example
//! repo and the tests carry real, verifiable signatures; appliances in production trust only the MSP's
//! own runbook keys, kept offline and passed to `sign-runbooks --key`.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use osc_crds::AnyObject;
use osc_crds::kinds::Signature;
use osc_crds::kinds::runbook::Runbook;
use osc_crds::load::load_str;
use osc_proto::dsse::{PublicKey, Signer};
use sha2::{Digest, Sha256};

/// The text whose SHA-256 is the development key's secret seed. Published on purpose: the key signs
/// the example library and the tests' runbooks, and no appliance in production may trust it.
pub const DEV_KEY_SEED_TEXT: &str =
    "OsirisCare development runbook key v1: public, protects nothing";

/// Where the repo publishes the development key's public half (standard base64 of the 32 bytes).
pub const DEV_PUBLIC_KEY_FILE: &str = "desired-state/keys/runbooks-dev.pub";

/// The line that starts the signed tail of a runbook file.
const DIGEST_LINE: &str = "  digest: ";

/// What went wrong signing or checking a runbook file.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not load as exactly one Runbook.
    #[error("{path}: {message}")]
    NotARunbook {
        /// The file.
        path: PathBuf,
        /// What the loader said.
        message: String,
    },
    /// `digest` or `signatures` is somewhere else than at the end of the file, where the tool keeps them.
    #[error(
        "{path}: `digest:` and `signatures:` must be the last fields of spec, at two spaces of indent, \
         with nothing after them; move them to the end (or delete them) and sign again"
    )]
    Layout {
        /// The file.
        path: PathBuf,
    },
    /// `--check` found a runbook whose signature by the key is missing or stale.
    #[error("{path}: not signed by {keyid} for its current content: run tests/sign-runbooks")]
    Unsigned {
        /// The file.
        path: PathBuf,
        /// The key that should have signed it.
        keyid: String,
    },
}

/// What [`sign_file`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signed {
    /// The file already carried the current digest and a signature by the key.
    Unchanged,
    /// The digest or the key's signature was written.
    Written,
}

/// The development runbook key (see the module documentation).
pub fn dev_signer() -> Signer {
    Signer::from_seed(&Sha256::digest(DEV_KEY_SEED_TEXT.as_bytes()).into())
}

/// Signs the runbook in `path` with `signer`, rewriting the file only when something changes; with
/// `check_only`, writes nothing and fails with [`SignError::Unsigned`] when it would have written.
pub fn sign_file(path: &Path, signer: &Signer, check_only: bool) -> Result<Signed, SignError> {
    let io = |source| SignError::Io {
        path: path.to_owned(),
        source,
    };
    let text = fs::read_to_string(path).map_err(io)?;
    // The content without its tail always loads; the whole file does not after an edit, since its old
    // digest no longer matches (and then none of its signatures is worth keeping).
    let body = unsigned_body(path, &text)?;
    let digest = load_runbook(path, body)?.spec.content_digest();
    let mut signatures: Vec<Signature> = match load_runbook(path, &text) {
        Ok(signed) if signed.spec.digest.as_deref() == Some(&digest) => signed.spec.signatures,
        _ => Vec::new(),
    };
    let ours = Signature {
        keyid: signer.keyid().to_owned(),
        sig: base64::engine::general_purpose::STANDARD
            .encode(signer.signing_key().sign(digest.as_bytes()).to_bytes()),
    };
    match signatures.iter_mut().find(|s| s.keyid == ours.keyid) {
        Some(existing) => *existing = ours,
        None => signatures.push(ours),
    }

    let mut signed = body.to_owned();
    signed.push_str(&format!("{DIGEST_LINE}{digest}\n  signatures:\n"));
    for signature in &signatures {
        signed.push_str(&format!(
            "    - keyid: {}\n      sig: {}\n",
            signature.keyid, signature.sig
        ));
    }
    if signed == text {
        return Ok(Signed::Unchanged);
    }
    if check_only {
        return Err(SignError::Unsigned {
            path: path.to_owned(),
            keyid: signer.keyid().to_owned(),
        });
    }
    // A complete copy renamed over the file: an interrupted run leaves the old file, never half of one.
    let tmp = path.with_extension("yaml.signing");
    fs::write(&tmp, &signed).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    Ok(Signed::Written)
}

/// Verifies that `runbook` carries its current digest and a signature over it by one of `keys`;
/// returns the keyid that verified.
pub fn verify_runbook(runbook: &Runbook, keys: &[PublicKey]) -> Result<String, String> {
    let name = &runbook.metadata.name;
    let digest = runbook.spec.content_digest();
    if runbook.spec.digest.as_deref() != Some(&digest) {
        return Err(format!(
            "runbook {name}: digest {:?} is not its content's {digest}",
            runbook.spec.digest
        ));
    }
    for signature in &runbook.spec.signatures {
        let Some(key) = keys.iter().find(|k| k.keyid() == signature.keyid) else {
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&signature.sig)
            .map_err(|e| {
                format!(
                    "runbook {name}: signature by {} is not base64: {e}",
                    signature.keyid
                )
            })?;
        let sig = ed25519_dalek::Signature::from_slice(&bytes)
            .map_err(|e| format!("runbook {name}: signature by {}: {e}", signature.keyid))?;
        return key
            .verifying_key()
            .verify_strict(digest.as_bytes(), &sig)
            .map(|()| signature.keyid.clone())
            .map_err(|_| {
                format!(
                    "runbook {name}: the signature by {} does not verify",
                    signature.keyid
                )
            });
    }
    Err(format!(
        "runbook {name}: no signature by a trusted key ({})",
        keys.iter()
            .map(PublicKey::keyid)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The runbook files under `dir`, sorted.
pub fn runbook_files(dir: &Path) -> Result<Vec<PathBuf>, SignError> {
    let io = |source| SignError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn load_runbook(path: &Path, text: &str) -> Result<Runbook, SignError> {
    let not_a_runbook = |message: String| SignError::NotARunbook {
        path: path.to_owned(),
        message,
    };
    let loaded = load_str(&path.display().to_string(), text)
        .map_err(|errors| not_a_runbook(errors.to_string()))?;
    let mut objects = loaded.into_iter().map(|l| l.object);
    match (objects.next(), objects.next()) {
        (Some(AnyObject::Runbook(runbook)), None) => Ok(runbook),
        _ => Err(not_a_runbook(
            "the file must hold exactly one Runbook".into(),
        )),
    }
}

/// The file without its signed tail (`digest:` to the end), after checking that nothing else follows.
fn unsigned_body<'a>(path: &Path, text: &'a str) -> Result<&'a str, SignError> {
    let layout = || SignError::Layout {
        path: path.to_owned(),
    };
    let start = if text.starts_with(DIGEST_LINE) {
        Some(0)
    } else {
        text.find(&format!("\n{DIGEST_LINE}")).map(|i| i + 1)
    };
    let Some(start) = start else {
        // Unsigned: signatures without a digest are refused by validation, so none can be here.
        if text.lines().any(|l| l.starts_with("  signatures:")) || !text.ends_with('\n') {
            return Err(layout());
        }
        return Ok(text);
    };
    let mut tail = text[start..].lines();
    tail.next(); // the digest line
    let mut rest = tail.peekable();
    if rest.peek().is_some_and(|l| *l == "  signatures:") {
        rest.next();
        for line in rest {
            if !(line.starts_with("    - keyid: ") || line.starts_with("      sig: ")) {
                return Err(layout());
            }
        }
    } else if rest.peek().is_some() {
        return Err(layout());
    }
    Ok(&text[..start])
}
