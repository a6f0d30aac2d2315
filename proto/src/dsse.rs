//! DSSE v1 envelopes (the Dead Simple Signing Envelope of in-toto and Sigstore) signed with Ed25519.
//!
//! A signature covers `PAE(payloadType, payload)`, never the JSON envelope, so the envelope's own
//! encoding (field order, base64 alphabet, padding) can vary without breaking signatures; this is why
//! [`Envelope`] holds decoded bytes and why decoding accepts both base64 alphabets, padded or not.
//!
//! Key ids: a key's `keyid` is `"ed25519:"` followed by the lowercase hex of the first 16 bytes of the
//! SHA-256 of its 32-byte public key (see [`PublicKey::keyid`]). The keyid is an unauthenticated hint
//! that picks the key to try; trust comes only from the signature verifying under a trusted key.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::{SignatureError, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The DSSE v1 pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, with
/// lengths in bytes as ASCII decimal. This, not the envelope, is what signatures cover; binding the type
/// stops a signed document from being replayed as a document of another kind.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let header = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    );
    let mut out = Vec::with_capacity(header.len() + body.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Signs `payload` as a document of `payload_type` and wraps it in an envelope with one signature.
pub fn sign(payload_type: &str, payload: Vec<u8>, signer: &Signer) -> Envelope {
    let sig = signer
        .key
        .sign(&pae(payload_type, &payload))
        .to_bytes()
        .to_vec();
    Envelope {
        payload_type: payload_type.to_owned(),
        payload,
        signatures: vec![Signature {
            keyid: signer.keyid.clone(),
            sig,
        }],
    }
}

/// Checks that `envelope` carries a `payload_type` document signed by one of `trusted`.
///
/// The type is checked first. Then each signature is tried against the trusted key its `keyid` names (or
/// against every trusted key when its keyid is empty, which DSSE allows); the first that verifies wins.
/// When none does, the error is the first failed verification, or [`DsseError::UntrustedKey`] when no
/// signature named a trusted key at all.
pub fn verify<'a>(
    envelope: &'a Envelope,
    payload_type: &str,
    trusted: &'a [PublicKey],
) -> Result<Verified<'a>, DsseError> {
    if envelope.payload_type != payload_type {
        return Err(DsseError::WrongPayloadType {
            expected: payload_type.to_owned(),
            found: envelope.payload_type.clone(),
        });
    }
    let keyids = |keys: &mut dyn Iterator<Item = &str>| keys.map(str::to_owned).collect::<Vec<_>>();
    if envelope.signatures.is_empty() {
        return Err(DsseError::Unsigned {
            trusted: keyids(&mut trusted.iter().map(PublicKey::keyid)),
        });
    }
    let message = pae(&envelope.payload_type, &envelope.payload);
    let mut first_failure = None;
    for signature in &envelope.signatures {
        let named = |key: &&PublicKey| signature.keyid.is_empty() || signature.keyid == key.keyid;
        for key in trusted.iter().filter(named) {
            match key.check(&message, &signature.sig) {
                Ok(()) => {
                    return Ok(Verified {
                        payload: &envelope.payload,
                        key,
                    });
                }
                Err(error) => {
                    first_failure.get_or_insert(error);
                }
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| DsseError::UntrustedKey {
        signed_by: keyids(&mut envelope.signatures.iter().map(|s| s.keyid.as_str())),
        trusted: keyids(&mut trusted.iter().map(PublicKey::keyid)),
    }))
}

/// A DSSE envelope as it travels in JSON: `{"payloadType", "payload", "signatures": [{"keyid", "sig"}]}`.
///
/// Byte fields are written in standard base64 with padding and read in either alphabet, padded or not.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The media type of the payload, bound into every signature by [`pae`].
    pub payload_type: String,
    /// The signed document, exactly the bytes that were signed.
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// One entry per signer.
    pub signatures: Vec<Signature>,
}

impl fmt::Debug for Envelope {
    /// Shows the payload as text (our payloads are JSON) rather than as a list of byte values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("payload_type", &self.payload_type)
            .field("payload", &String::from_utf8_lossy(&self.payload))
            .field("signatures", &self.signatures)
            .finish()
    }
}

/// One signature of an [`Envelope`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Which key made the signature (see the module doc); empty when the signer gave no hint.
    #[serde(default)]
    pub keyid: String,
    /// The Ed25519 signature over `PAE(payloadType, payload)`, 64 bytes when well formed.
    #[serde(with = "base64_bytes")]
    pub sig: Vec<u8>,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("keyid", &self.keyid)
            .field(
                "sig",
                &base64::engine::general_purpose::STANDARD.encode(&self.sig),
            )
            .finish()
    }
}

/// A payload whose signature verified, and the trusted key that verified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The signed bytes.
    pub payload: &'a [u8],
    /// The trusted key whose signature verified.
    pub key: &'a PublicKey,
}

/// An Ed25519 public key that signatures are checked against, with its keyid.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key itself.
    key: VerifyingKey,
    /// Its keyid, derived once because every verification compares it.
    keyid: String,
}

impl PublicKey {
    /// Reads a public key from its 32-byte encoding.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DsseError> {
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|source| DsseError::InvalidPublicKey { source })?;
        Ok(Self::from(key))
    }

    /// Reads a public key from the base64 of its 32 bytes (either alphabet, padding optional).
    pub fn from_base64(text: &str) -> Result<Self, DsseError> {
        Self::from_bytes(&decode_key(text, KeyKind::Public)?)
    }

    /// The standard, padded base64 of the key's 32 bytes: the form enrollment sends and config files hold.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.as_bytes())
    }

    /// The keyid: `"ed25519:"` and the hex of the first 16 bytes of SHA-256 of the 32-byte key.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The underlying key, for signatures made outside DSSE (such as signed tree heads).
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Verifies one raw signature over a PAE message.
    fn check(&self, message: &[u8], sig: &[u8]) -> Result<(), DsseError> {
        let signature = ed25519_dalek::Signature::from_slice(sig).map_err(|_| {
            DsseError::MalformedSignature {
                keyid: self.keyid.clone(),
                len: sig.len(),
            }
        })?;
        // Strict verification rejects small-order keys and non-canonical signatures, so one message has
        // exactly one valid signature per key.
        self.key
            .verify_strict(message, &signature)
            .map_err(|source| DsseError::BadSignature {
                keyid: self.keyid.clone(),
                source,
            })
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(key: VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let keyid = format!("ed25519:{}", hex::encode(&digest[..16]));
        Self { key, keyid }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.keyid).finish()
    }
}

/// An Ed25519 signing key with its keyid. Its `Debug` shows only the keyid; the secret is never printed.
#[derive(Clone)]
pub struct Signer {
    /// The secret key; zeroed on drop by ed25519-dalek.
    key: SigningKey,
    /// The keyid of its public half, written into every signature.
    keyid: String,
}

impl Signer {
    /// Generates a new key from the operating system's randomness.
    pub fn generate() -> Result<Self, DsseError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|source| DsseError::Randomness { source })?;
        Ok(Self::from_seed(&seed))
    }

    /// The key whose 32-byte secret seed is `seed` (RFC 8032's private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let keyid = PublicKey::from(key.verifying_key()).keyid;
        Self { key, keyid }
    }

    /// Reads a key from the base64 of its 32-byte seed (either alphabet, padding optional). Errors never
    /// echo the text.
    pub fn from_base64(text: &str) -> Result<Self, DsseError> {
        let seed = Zeroizing::new(decode_key(text, KeyKind::Seed)?);
        Ok(Self::from_seed(&seed))
    }

    /// The standard, padded base64 of the 32-byte seed, for the key file; zeroed when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.key.as_bytes()))
    }

    /// The public half, to enroll or pin.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
            keyid: self.keyid.clone(),
        }
    }

    /// The keyid of the public half.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The underlying key, for signatures made outside DSSE (such as signed tree heads).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Signer").field(&self.keyid).finish()
    }
}

/// Why an envelope did not verify, or a key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    /// The envelope carries another kind of document than the one expected.
    #[error(
        "envelope payloadType is {found:?}, but {expected:?} was expected: this envelope carries another kind of document"
    )]
    WrongPayloadType {
        /// The type the caller expects.
        expected: String,
        /// The type the envelope declares.
        found: String,
    },
    /// The envelope has no signature at all.
    #[error("envelope has no signature; it must be signed by one of the trusted keys [{}]", trusted.join(", "))]
    Unsigned {
        /// The keyids of the trusted keys.
        trusted: Vec<String>,
    },
    /// No signature names a trusted key: the signer is not the one expected, or its key is not enrolled.
    #[error(
        "envelope is signed by [{}], none of which is trusted here (trusted: [{}]); check which key signed it, or enroll or pin its public key",
        signed_by.join(", "), trusted.join(", ")
    )]
    UntrustedKey {
        /// The keyids the envelope's signatures name.
        signed_by: Vec<String>,
        /// The keyids of the trusted keys.
        trusted: Vec<String>,
    },
    /// A signature by a trusted key does not verify.
    #[error(
        "signature by trusted key {keyid} does not verify: the payload or payloadType changed after signing, or the signature was made over other bytes"
    )]
    BadSignature {
        /// The keyid of the trusted key.
        keyid: String,
        /// The verifier's reason.
        #[source]
        source: SignatureError,
    },
    /// A signature that cannot be an Ed25519 signature.
    #[error("signature for key {keyid} is {len} bytes long; Ed25519 signatures are 64 bytes")]
    MalformedSignature {
        /// The keyid of the trusted key it was tried with.
        keyid: String,
        /// Its decoded length.
        len: usize,
    },
    /// Key text that is not base64. The text is not repeated, as it may be a secret.
    #[error("the {kind} is not base64 (standard or URL-safe alphabet, padding optional)")]
    KeyNotBase64 {
        /// Which key was being read.
        kind: KeyKind,
    },
    /// Key text that decodes to the wrong number of bytes.
    #[error("the {kind} decodes to {len} bytes; Ed25519 keys are 32 bytes")]
    KeyLength {
        /// Which key was being read.
        kind: KeyKind,
        /// The decoded length.
        len: usize,
    },
    /// 32 bytes that are not the encoding of a point on Curve25519.
    #[error("the public key is not a valid Ed25519 public key (not a curve point)")]
    InvalidPublicKey {
        /// The decoder's reason.
        #[source]
        source: SignatureError,
    },
    /// The operating system gave no randomness to generate a key with.
    #[error("could not read the operating system's randomness to generate a key")]
    Randomness {
        /// The operating system's error.
        #[source]
        source: getrandom::Error,
    },
}

/// Which key a [`DsseError`] about key text is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A 32-byte Ed25519 public key.
    Public,
    /// A 32-byte Ed25519 secret seed.
    Seed,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Public => "Ed25519 public key",
            KeyKind::Seed => "Ed25519 signing key (32-byte seed)",
        })
    }
}

/// Decodes base64 in the standard or URL-safe alphabet, with or without padding. The alphabet is chosen
/// by the characters present, since `-`/`_` and `+`/`/` never appear in the other one.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
    if text.contains(['-', '_']) {
        URL_SAFE.decode(text)
    } else {
        STANDARD.decode(text)
    }
}

/// Decodes a 32-byte key from base64; the intermediate buffer is zeroed because it may hold a secret.
fn decode_key(text: &str, kind: KeyKind) -> Result<[u8; 32], DsseError> {
    let bytes =
        Zeroizing::new(decode_base64(text.trim()).map_err(|_| DsseError::KeyNotBase64 { kind })?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| DsseError::KeyLength {
        kind,
        len: bytes.len(),
    })
}

/// Serde for byte fields: standard padded base64 out, [`decode_base64`] in.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        super::decode_base64(&text).map_err(|e| {
            D::Error::custom(format!(
                "expected base64 (standard or URL-safe alphabet, padding optional): {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "application/vnd.osiriscare.test+json";

    fn signer(byte: u8) -> Signer {
        Signer::from_seed(&[byte; 32])
    }

    /// The example of the DSSE v1 protocol specification (`protocol.md`, "Test vectors").
    #[test]
    fn pae_matches_the_dsse_spec_test_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn pae_counts_bytes_not_characters_and_handles_empty_parts() {
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        assert_eq!(pae("t/é", "ü".as_bytes()), "DSSEv1 4 t/é 2 ü".as_bytes());
    }

    /// RFC 8032 §7.1, TEST 1: the signature made through [`sign`] is the RFC's for the PAE message, so our
    /// keys, seeds and signing are plain Ed25519.
    #[test]
    fn signing_is_rfc8032_ed25519_over_the_pae() {
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let signer = Signer::from_seed(&seed);
        assert_eq!(
            hex::encode(signer.public_key().verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let envelope = sign(TYPE, b"{}".to_vec(), &signer);
        let expected = signer.signing_key().sign(&pae(TYPE, b"{}"));
        assert_eq!(envelope.signatures[0].sig, expected.to_bytes());
        assert_eq!(envelope.signatures[0].keyid, signer.keyid());
    }

    #[test]
    fn keyid_is_the_documented_digest_of_the_public_key() {
        let key = signer(7).public_key();
        let digest = Sha256::digest(key.verifying_key().as_bytes());
        assert_eq!(
            key.keyid(),
            format!("ed25519:{}", hex::encode(&digest[..16]))
        );
        assert_eq!(key.keyid().len(), "ed25519:".len() + 32);
        assert_ne!(key.keyid(), signer(8).keyid());
    }

    #[test]
    fn a_signed_envelope_verifies_and_names_its_key() {
        let alice = signer(1);
        let trusted = [signer(2).public_key(), alice.public_key()];
        let envelope = sign(TYPE, b"{\"a\":1}".to_vec(), &alice);
        let verified = verify(&envelope, TYPE, &trusted).unwrap();
        assert_eq!(verified.payload, b"{\"a\":1}");
        assert_eq!(verified.key, &trusted[1]);
    }

    #[test]
    fn verification_failures_say_which_check_failed() {
        let alice = signer(1);
        let trusted = [alice.public_key()];
        let good = sign(TYPE, b"payload".to_vec(), &alice);

        let err = verify(&good, "application/other", &trusted).unwrap_err();
        assert!(
            matches!(&err, DsseError::WrongPayloadType { found, .. } if found == TYPE),
            "{err}"
        );

        let mut tampered = good.clone();
        tampered.payload = b"payloaD".to_vec();
        let err = verify(&tampered, TYPE, &trusted).unwrap_err();
        assert!(
            matches!(&err, DsseError::BadSignature { keyid, .. } if keyid == alice.keyid()),
            "{err}"
        );

        // The type is bound into the signature: relabelling the envelope breaks it.
        let relabelled = Envelope {
            payload_type: "application/other".into(),
            ..good.clone()
        };
        assert!(matches!(
            verify(&relabelled, "application/other", &trusted),
            Err(DsseError::BadSignature { .. })
        ));

        let mallory = sign(TYPE, b"payload".to_vec(), &signer(9));
        let err = verify(&mallory, TYPE, &trusted).unwrap_err();
        assert!(
            matches!(&err, DsseError::UntrustedKey { signed_by, .. } if signed_by == &[signer(9).keyid()]),
            "{err}"
        );
        assert!(err.to_string().contains(alice.keyid()), "{err}");

        let unsigned = Envelope {
            signatures: vec![],
            ..good.clone()
        };
        assert!(matches!(
            verify(&unsigned, TYPE, &trusted),
            Err(DsseError::Unsigned { .. })
        ));

        let mut short = good.clone();
        short.signatures[0].sig.truncate(10);
        assert!(matches!(
            verify(&short, TYPE, &trusted),
            Err(DsseError::MalformedSignature { len: 10, .. })
        ));

        // A forged keyid does not help: the signature is checked under the key the keyid names.
        let mut forged = mallory.clone();
        forged.signatures[0].keyid = alice.keyid().to_owned();
        assert!(matches!(
            verify(&forged, TYPE, &trusted),
            Err(DsseError::BadSignature { .. })
        ));
    }

    #[test]
    fn an_empty_keyid_is_tried_against_every_trusted_key() {
        let alice = signer(1);
        let mut envelope = sign(TYPE, b"x".to_vec(), &alice);
        envelope.signatures[0].keyid.clear();
        let trusted = [signer(2).public_key(), alice.public_key()];
        assert_eq!(verify(&envelope, TYPE, &trusted).unwrap().key, &trusted[1]);
    }

    #[test]
    fn any_verifying_signature_among_several_is_enough() {
        let alice = signer(1);
        let mut envelope = sign(TYPE, b"x".to_vec(), &signer(3));
        envelope
            .signatures
            .push(sign(TYPE, b"x".to_vec(), &alice).signatures.remove(0));
        assert!(verify(&envelope, TYPE, &[alice.public_key()]).is_ok());
    }

    #[test]
    fn envelope_json_is_dsse_shaped_and_round_trips() {
        let envelope = Envelope {
            payload_type: "http://example.com/HelloWorld".into(),
            payload: b"hello world".to_vec(),
            signatures: vec![Signature {
                keyid: "k1".into(),
                sig: vec![0xfb, 0xff],
            }],
        };
        let json = serde_json::to_string(&envelope).unwrap();
        assert_eq!(
            json,
            r#"{"payloadType":"http://example.com/HelloWorld","payload":"aGVsbG8gd29ybGQ=","signatures":[{"keyid":"k1","sig":"+/8="}]}"#
        );
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), envelope);
    }

    #[test]
    fn envelope_bytes_decode_from_either_alphabet_with_or_without_padding() {
        for (payload, sig) in [
            ("aGVsbG8gd29ybGQ=", "+/8="),
            ("aGVsbG8gd29ybGQ", "+/8"),
            ("aGVsbG8gd29ybGQ=", "-_8="),
            ("aGVsbG8gd29ybGQ", "-_8"),
        ] {
            let json = format!(
                r#"{{"payloadType":"t","payload":"{payload}","signatures":[{{"sig":"{sig}"}}]}}"#
            );
            let envelope: Envelope =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(envelope.payload, b"hello world");
            assert_eq!(envelope.signatures[0].sig, [0xfb, 0xff]);
            assert_eq!(envelope.signatures[0].keyid, "");
        }
        let err = serde_json::from_str::<Envelope>(
            r#"{"payloadType":"t","payload":"a+b_","signatures":[]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("expected base64"), "{err}");
    }

    #[test]
    fn a_signature_in_url_safe_base64_verifies() {
        let alice = signer(1);
        let envelope = sign(TYPE, b"x".to_vec(), &alice);
        let mut json: serde_json::Value = serde_json::to_value(&envelope).unwrap();
        let url_safe =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&envelope.signatures[0].sig);
        json["signatures"][0]["sig"] = url_safe.into();
        let reread: Envelope = serde_json::from_value(json).unwrap();
        assert!(verify(&reread, TYPE, &[alice.public_key()]).is_ok());
    }

    #[test]
    fn keys_round_trip_through_base64_and_bad_key_text_is_explained() {
        let alice = signer(1);
        let public = PublicKey::from_base64(&alice.public_key().to_base64()).unwrap();
        assert_eq!(public, alice.public_key());
        let reread = Signer::from_base64(&alice.to_base64()).unwrap();
        assert_eq!(reread.keyid(), alice.keyid());
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(alice.public_key().verifying_key().as_bytes());
        assert_eq!(PublicKey::from_base64(&url_safe).unwrap(), public);

        assert!(matches!(
            PublicKey::from_base64("not base64!"),
            Err(DsseError::KeyNotBase64 {
                kind: KeyKind::Public
            })
        ));
        assert!(matches!(
            Signer::from_base64("AAAA"),
            Err(DsseError::KeyLength {
                kind: KeyKind::Seed,
                len: 3
            })
        ));
        // A secret's text is never echoed in the error.
        let err = Signer::from_base64("secret-ish text!").unwrap_err();
        assert!(!err.to_string().contains("secret-ish"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_secret_seed() {
        let alice = signer(0xab);
        let debug = format!("{alice:?}");
        assert!(debug.contains(alice.keyid()), "{debug}");
        assert!(
            !debug.contains(alice.to_base64().as_str())
                && !debug.contains("abab")
                && !debug.contains("171"),
            "{debug}"
        );
    }

    #[test]
    fn generated_keys_differ_and_sign() {
        let (a, b) = (Signer::generate().unwrap(), Signer::generate().unwrap());
        assert_ne!(a.keyid(), b.keyid());
        let envelope = sign(TYPE, b"x".to_vec(), &a);
        assert!(verify(&envelope, TYPE, &[a.public_key()]).is_ok());
    }
}
