//! Whether a Runbook may run: its declared digest is its content's, and a trusted runbook key
//! signed that digest. Pure: the keys come from the config, nothing is read or fetched.
//!
//! The contract (docs/DESIGN.md 2.8): `digest` is `RunbookSpec::content_digest` (SHA-256 of the
//! canonical JSON of the defaulted spec without `digest` and `signatures`); each signature is
//! Ed25519 over the UTF-8 bytes of `digest`, its `keyid` the DSSE keyid of the signing key and `sig`
//! the base64 of the 64 bytes. One signature by one trusted key suffices; signatures by keys not
//! trusted are ignored, so keys can rotate. Verification is strict (no small-order keys, no
//! non-canonical signatures), as for DSSE.

use base64::Engine as _;
use osc_crds::kinds::RunbookSpec;
use osc_proto::dsse::PublicKey;

/// Why a runbook is not trusted; each names what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// The runbook carries no `digest`.
    #[error("the runbook has no spec.digest; sign it (desired-state/README.md) before it can run")]
    NoDigest,
    /// The declared digest is not the content's: the scripts changed after signing.
    #[error(
        "spec.digest is {declared} but the content hashes to {computed}: the runbook changed after it was signed"
    )]
    DigestMismatch {
        /// What the runbook declares.
        declared: String,
        /// What its content hashes to.
        computed: String,
    },
    /// The runbook carries no signature.
    #[error("the runbook has no spec.signatures; a trusted runbook key must sign its digest")]
    Unsigned,
    /// No signature is by a trusted key.
    #[error(
        "no signature is by a trusted runbook key (signed by {signed_by:?}, trusted {trusted:?}); \
         add the signer's key to trustedRunbookKeys or re-sign"
    )]
    UntrustedKeys {
        /// The keyids that signed.
        signed_by: Vec<String>,
        /// The keyids trusted.
        trusted: Vec<String>,
    },
    /// A trusted key's signature does not verify (or is not a signature at all).
    #[error(
        "the signature by {keyid} does not verify over the digest: the runbook was tampered with or mis-signed"
    )]
    BadSignature {
        /// The trusted key whose signature failed.
        keyid: String,
    },
}

/// Checks `spec` against `trusted`; on success returns the verified digest, the one every result
/// and evidence bundle names.
pub fn verify_runbook(spec: &RunbookSpec, trusted: &[PublicKey]) -> Result<String, Untrusted> {
    let declared = spec.digest.as_deref().ok_or(Untrusted::NoDigest)?;
    let computed = spec.content_digest();
    if declared != computed {
        return Err(Untrusted::DigestMismatch {
            declared: declared.to_owned(),
            computed,
        });
    }
    if spec.signatures.is_empty() {
        return Err(Untrusted::Unsigned);
    }
    let mut failed = None;
    for signature in &spec.signatures {
        let Some(key) = trusted.iter().find(|k| k.keyid() == signature.keyid) else {
            continue;
        };
        let verified = base64::engine::general_purpose::STANDARD
            .decode(&signature.sig)
            .ok()
            .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
            .is_some_and(|sig| {
                key.verifying_key()
                    .verify_strict(declared.as_bytes(), &sig)
                    .is_ok()
            });
        if verified {
            return Ok(computed);
        }
        failed.get_or_insert_with(|| signature.keyid.clone());
    }
    Err(match failed {
        Some(keyid) => Untrusted::BadSignature { keyid },
        None => Untrusted::UntrustedKeys {
            signed_by: spec.signatures.iter().map(|s| s.keyid.clone()).collect(),
            trusted: trusted.iter().map(|k| k.keyid().to_owned()).collect(),
        },
    })
}

/// Signs `spec` with `signer`: sets `digest` to the content digest and adds the signature. For
/// tests and the runbook-signing tool; appliances only verify.
pub fn sign_runbook(spec: &mut RunbookSpec, signer: &osc_proto::dsse::Signer) {
    use ed25519_dalek::Signer as _;
    let digest = spec.content_digest();
    let sig = signer.signing_key().sign(digest.as_bytes());
    spec.signatures.push(osc_crds::kinds::Signature {
        keyid: signer.keyid().to_owned(),
        sig: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
    });
    spec.digest = Some(digest);
}

#[cfg(test)]
mod tests {
    use osc_proto::dsse::Signer;

    use super::*;

    pub(crate) fn spec() -> RunbookSpec {
        serde_json::from_value(serde_json::json!({
            "platform": "linux",
            "severity": "high",
            "check": {"interpreter": "sh", "script": "grep -q '^PermitRootLogin no' /etc/ssh/sshd_config"},
            "remediate": {"interpreter": "sh", "script": "echo 'PermitRootLogin no' >> /etc/ssh/sshd_config"}
        }))
        .unwrap()
    }

    #[test]
    fn verification_table() {
        let trusted = Signer::from_seed(&[1; 32]);
        let stranger = Signer::from_seed(&[2; 32]);
        let keys = [trusted.public_key()];
        let signed = |signer: &Signer| {
            let mut s = spec();
            sign_runbook(&mut s, signer);
            s
        };
        let digest = spec().content_digest();
        type Case = (&'static str, RunbookSpec, Result<String, Untrusted>);
        let cases: Vec<Case> = vec![
            (
                "signed by a trusted key",
                signed(&trusted),
                Ok(digest.clone()),
            ),
            (
                "signed by a stranger and by a trusted key: the trusted one counts",
                {
                    let mut s = signed(&stranger);
                    sign_runbook(&mut s, &trusted);
                    s
                },
                Ok(digest.clone()),
            ),
            ("no digest", spec(), Err(Untrusted::NoDigest)),
            (
                "digest but no signature",
                {
                    let mut s = spec();
                    s.digest = Some(digest.clone());
                    s
                },
                Err(Untrusted::Unsigned),
            ),
            (
                "a script changed after signing",
                {
                    let mut s = signed(&trusted);
                    s.check.script.push_str(" || true");
                    s
                },
                Err(Untrusted::DigestMismatch {
                    declared: digest.clone(),
                    computed: {
                        let mut s = spec();
                        s.check.script.push_str(" || true");
                        s.content_digest()
                    },
                }),
            ),
            (
                "signed only by a key not trusted",
                signed(&stranger),
                Err(Untrusted::UntrustedKeys {
                    signed_by: vec![stranger.keyid().to_owned()],
                    trusted: vec![trusted.keyid().to_owned()],
                }),
            ),
            (
                "a stranger's signature under the trusted keyid",
                {
                    let mut s = signed(&stranger);
                    s.signatures[0].keyid = trusted.keyid().to_owned();
                    s
                },
                Err(Untrusted::BadSignature {
                    keyid: trusted.keyid().to_owned(),
                }),
            ),
            (
                "a signature that is not base64",
                {
                    let mut s = signed(&trusted);
                    s.signatures[0].sig = "***".to_owned();
                    s
                },
                Err(Untrusted::BadSignature {
                    keyid: trusted.keyid().to_owned(),
                }),
            ),
        ];
        for (name, spec, expected) in cases {
            assert_eq!(verify_runbook(&spec, &keys), expected, "{name}");
        }
        assert_eq!(
            verify_runbook(&signed(&trusted), &[]),
            Err(Untrusted::UntrustedKeys {
                signed_by: vec![trusted.keyid().to_owned()],
                trusted: vec![],
            }),
            "no trusted keys: nothing runs"
        );
    }
}
