//! Evidence bundles: what one reconcile of a (host, runbook) did, as signed by the appliance.
//!
//! A bundle travels as the payload of a DSSE envelope of type [`PAYLOAD_TYPE`]. The payload bytes are
//! the canonical form: they are what is signed, what `prev_hash` and the Merkle log hash, and what is
//! stored, so nobody re-serializes a bundle to check it. [`Bundle::to_payload`] is compact JSON with the
//! fields in declaration order. Field names are snake_case, as in the original evidence design, and
//! decoding rejects unknown fields: a bundle means exactly what its schema version says.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dsse::{self, DsseError, Envelope, PublicKey};

/// The DSSE `payloadType` of an evidence bundle.
pub const PAYLOAD_TYPE: &str = "application/vnd.osiriscare.evidence.v1+json";

/// The bundle schema version this crate writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// The most bytes of raw check output a bundle carries (16 KiB): enough for any check's verdict and
/// context, small enough that six years of bundles stay cheap to keep. See [`CappedOutput::capture`].
pub const CHECK_OUTPUT_CAP: usize = 16 * 1024;

/// Verifies an evidence envelope from `appliance`, signed with its enrolled `key`, and decodes its bundle.
///
/// Checks, in order: the payload type, the signature, the bundle schema ([`Bundle::from_payload`]), and
/// that the bundle names `appliance`, so one appliance's key cannot vouch for another's chain.
pub fn open(
    envelope: &Envelope,
    appliance: &str,
    key: &PublicKey,
) -> Result<VerifiedBundle, EvidenceError> {
    let verified = dsse::verify(envelope, PAYLOAD_TYPE, std::slice::from_ref(key))?;
    let bundle = Bundle::from_payload(verified.payload)?;
    if bundle.appliance != appliance {
        return Err(EvidenceError::ForeignAppliance {
            expected: appliance.to_owned(),
            found: bundle.appliance,
        });
    }
    Ok(VerifiedBundle {
        payload_hash: Sha256Digest::of(verified.payload),
        bundle,
    })
}

/// One reconcile's evidence. Field order is the serialized order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Schema version, [`BUNDLE_VERSION`].
    pub version: u32,
    /// Unique id of this bundle (a UUID), for references from reports and tickets.
    pub bundle_id: String,
    /// The Site (practice) the host belongs to.
    pub site_id: String,
    /// The Host that was checked.
    pub host_id: String,
    /// The Appliance that ran the reconcile and signed the bundle; the chain is per appliance.
    pub appliance: String,
    /// Position in the appliance's chain: 1 for its first bundle, then +1 each time.
    pub seq: u64,
    /// SHA-256 of the previous bundle's payload bytes; 64 zeros for seq 1.
    pub prev_hash: Sha256Digest,
    /// Whether the site is served through a reseller (MSP) or directly.
    pub deployment_mode: DeploymentMode,
    /// The reseller (the Site's partner) when `deployment_mode` is `reseller`; null otherwise.
    pub reseller_id: Option<String>,
    /// When the check started (RFC 3339, UTC).
    pub timestamp_start: DateTime<Utc>,
    /// When the last step finished (RFC 3339, UTC); not before `timestamp_start`.
    pub timestamp_end: DateTime<Utc>,
    /// Which desired state was in force: the version of the Site's policy the decision used.
    pub policy_version: String,
    /// The digest of the rules applied; here the runbook digest, so it equals `runbook_digest`.
    pub ruleset_hash: String,
    /// The Runbook that was run.
    pub runbook: String,
    /// The digest of that runbook's signed content, so every result names exactly what produced it.
    pub runbook_digest: String,
    /// The framework controls this result evidences.
    pub controls: Vec<Control>,
    /// The NixOS revision the appliance was running.
    pub nixos_revision: String,
    /// The appliance clock's offset from NTP at the time, in milliseconds; null when unknown.
    pub ntp_offset_ms: Option<i64>,
    /// What was checked, as the runbook names its check.
    pub check: String,
    /// What the check found before any action.
    pub pre_state: Observation,
    /// The remediation steps run, in order; empty when none ran.
    pub action_taken: Vec<ActionStep>,
    /// What the verify step found after remediation; null when nothing was remediated.
    pub post_state: Option<Observation>,
    /// Whether the host can be returned to its pre-action state.
    pub rollback_available: bool,
    /// The result of the reconcile.
    pub outcome: Outcome,
    /// The check's raw output, capped at [`CHECK_OUTPUT_CAP`] bytes.
    pub check_output: CappedOutput,
}

impl Bundle {
    /// The canonical payload bytes: compact JSON, fields in declaration order.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a Bundle has only string keys and serializable values")
    }

    /// Decodes payload bytes and checks the bundle's own invariants ([`Bundle::validate`]).
    pub fn from_payload(payload: &[u8]) -> Result<Self, EvidenceError> {
        let bundle: Self = serde_json::from_slice(payload)
            .map_err(|source| EvidenceError::Undecodable { source })?;
        bundle.validate()?;
        Ok(bundle)
    }

    /// Checks what the schema alone cannot: the version, required text, the chain start, time order, the
    /// reseller matching the deployment mode, the ruleset hash naming the runbook digest, and the output cap.
    pub fn validate(&self) -> Result<(), EvidenceError> {
        let invalid =
            |field: &'static str, problem: String| Err(EvidenceError::Invalid { field, problem });
        if self.version != BUNDLE_VERSION {
            return invalid(
                "version",
                format!(
                    "is {}, but this reader knows only version {BUNDLE_VERSION}",
                    self.version
                ),
            );
        }
        let required = [
            ("bundle_id", &self.bundle_id),
            ("site_id", &self.site_id),
            ("host_id", &self.host_id),
            ("appliance", &self.appliance),
            ("policy_version", &self.policy_version),
            ("runbook", &self.runbook),
            ("runbook_digest", &self.runbook_digest),
            ("nixos_revision", &self.nixos_revision),
            ("check", &self.check),
        ];
        if let Some((field, _)) = required.iter().find(|(_, value)| value.is_empty()) {
            return invalid(field, "is empty; it is required".to_owned());
        }
        if self.seq == 0 {
            return invalid("seq", "is 0; sequences start at 1".to_owned());
        }
        if self.seq == 1 && self.prev_hash != Sha256Digest::ZERO {
            return invalid(
                "prev_hash",
                format!(
                    "is {}, but seq 1 has no predecessor and must carry 64 zeros",
                    self.prev_hash
                ),
            );
        }
        if self.timestamp_end < self.timestamp_start {
            let (start, end) = (
                self.timestamp_start.to_rfc3339(),
                self.timestamp_end.to_rfc3339(),
            );
            return invalid(
                "timestamp_end",
                format!("is {end}, before timestamp_start {start}"),
            );
        }
        match (self.deployment_mode, &self.reseller_id) {
            (DeploymentMode::Reseller, None) => {
                return invalid(
                    "reseller_id",
                    "is null, but deployment_mode is reseller; name the reseller".to_owned(),
                );
            }
            (DeploymentMode::Direct, Some(reseller)) => {
                return invalid(
                    "reseller_id",
                    format!("is {reseller:?}, but deployment_mode is direct; set it to null"),
                );
            }
            _ => {}
        }
        if self.ruleset_hash != self.runbook_digest {
            return invalid(
                "ruleset_hash",
                format!(
                    "is {:?}, but it must equal runbook_digest {:?}",
                    self.ruleset_hash, self.runbook_digest
                ),
            );
        }
        if self.check_output.text.len() > CHECK_OUTPUT_CAP {
            let len = self.check_output.text.len();
            return invalid(
                "check_output.text",
                format!("is {len} bytes, over the cap of {CHECK_OUTPUT_CAP}"),
            );
        }
        Ok(())
    }
}

/// An evidence envelope whose signature, schema and appliance checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    /// The decoded bundle.
    pub bundle: Bundle,
    /// SHA-256 of the payload bytes: the next bundle's `prev_hash`, and the identity for deduplication.
    pub payload_hash: Sha256Digest,
}

/// How the site is served, which decides whether a reseller is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentMode {
    /// Through an MSP that resells OsirisCare.
    Reseller,
    /// Directly by the practice.
    Direct,
}

/// A compliance control, such as HIPAA `164.312(b)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// The framework, as the Runbook names it (`HIPAA`, `SOC2`, `PCI-DSS`, `NIST-CSF`, `CIS`).
    pub framework: String,
    /// The control's id within the framework.
    pub id: String,
}

/// The state a check (or the verify step) observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// What the observation means for compliance.
    pub verdict: Verdict,
    /// The script's exit code; null when it was killed (timeout) or never started.
    pub exit_code: Option<i32>,
    /// SHA-256 of the script's full output, however long.
    pub output_sha256: Sha256Digest,
}

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The host is as the runbook wants it.
    Compliant,
    /// The host has drifted.
    Drifted,
    /// The runbook does not apply to this host; such results leave the compliance score's total.
    NotApplicable,
    /// The check could not decide (failed to run, timed out, unexpected output).
    Error,
}

/// One remediation step that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionStep {
    /// The runbook phase that ran, e.g. `remediate`.
    pub step: String,
    /// Its exit code; null when it was killed (timeout) or never started.
    pub exit_code: Option<i32>,
    /// SHA-256 of its full output.
    pub output_sha256: Sha256Digest,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// The result of a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Compliant when checked; nothing to do.
    Pass,
    /// Drifted, remediated, and verified compliant.
    Healed,
    /// Drifted, and remediation did not make it compliant.
    Failed,
    /// Handed to people (L3): healing failed or flapped beyond the budget.
    Escalated,
    /// Drifted, and healing waits (maintenance window, clock not trusted, backoff).
    Deferred,
    /// Drifted, and an approved exception covers it.
    Waived,
    /// Drifted, and the site's healing mode is audit: what would have run is recorded, nothing ran.
    DryRun,
}

/// Raw output kept in a bundle, cut to at most [`CHECK_OUTPUT_CAP`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CappedOutput {
    /// The output as text (invalid UTF-8 replaced by U+FFFD), at most [`CHECK_OUTPUT_CAP`] bytes.
    pub text: String,
    /// Whether `text` holds less than the whole output.
    pub truncated: bool,
    /// The length of the whole output in bytes.
    pub original_bytes: u64,
}

impl CappedOutput {
    /// Keeps the first [`CHECK_OUTPUT_CAP`] bytes of `raw` as text, cut back to a character boundary, and
    /// records whether anything was dropped. A character split by the cut becomes U+FFFD or is dropped.
    pub fn capture(raw: &[u8]) -> Self {
        let kept = &raw[..raw.len().min(CHECK_OUTPUT_CAP)];
        let mut text = String::from_utf8_lossy(kept).into_owned();
        // Replacement characters are 3 bytes for 1 invalid byte, so lossy text can outgrow the cap.
        let mut cut = text.len().min(CHECK_OUTPUT_CAP);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let truncated = kept.len() < raw.len() || cut < text.len();
        text.truncate(cut);
        Self {
            text,
            truncated,
            original_bytes: raw.len() as u64,
        }
    }
}

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// All zeros: the `prev_hash` of seq 1.
    pub const ZERO: Self = Self([0; 32]);

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl FromStr for Sha256Digest {
    type Err = hex::FromHexError;

    /// Reads 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(s, &mut bytes)?;
        Ok(Self(bytes))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(|e| {
            serde::de::Error::custom(format!("expected a SHA-256 digest as 64 hex digits: {e}"))
        })
    }
}

/// Why an evidence envelope or bundle was rejected.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The envelope is not an evidence envelope signed by the appliance's key.
    #[error(transparent)]
    Envelope(#[from] DsseError),
    /// The payload is not JSON of the v1 bundle schema (missing, unknown or mistyped field).
    #[error("payload is not an evidence bundle v1: {source}")]
    Undecodable {
        /// The decoder's error, which names the field and position.
        #[source]
        source: serde_json::Error,
    },
    /// The bundle decodes but breaks an invariant of the schema.
    #[error("evidence bundle field `{field}` {problem}")]
    Invalid {
        /// The bundle field at fault.
        field: &'static str,
        /// What is wrong with it and what is expected.
        problem: String,
    },
    /// The bundle names another appliance than the one whose key signed it.
    #[error(
        "bundle names appliance {found:?}, but it was signed with the key of appliance {expected:?}"
    )]
    ForeignAppliance {
        /// The appliance whose key verified the signature.
        expected: String,
        /// The appliance the bundle names.
        found: String,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dsse::Signer;

    /// A complete, valid bundle of a heal, as the controller would write it; chain fields at seq 1.
    pub(crate) fn sample_bundle() -> Bundle {
        let start: DateTime<Utc> = "2026-03-01T02:00:00Z".parse().unwrap();
        Bundle {
            version: BUNDLE_VERSION,
            bundle_id: "0e6f7f4a-8b0c-4f5e-9a3b-2d1c0b9a8f7e".into(),
            site_id: "clinic-1".into(),
            host_id: "frontdesk-01".into(),
            appliance: "clinic-1-appliance".into(),
            seq: 1,
            prev_hash: Sha256Digest::ZERO,
            deployment_mode: DeploymentMode::Reseller,
            reseller_id: Some("acme-msp".into()),
            timestamp_start: start,
            timestamp_end: start + chrono::Duration::seconds(3),
            policy_version: "17".into(),
            ruleset_hash: "sha256:5f1c".into(),
            runbook: "ssh-no-root-login".into(),
            runbook_digest: "sha256:5f1c".into(),
            controls: vec![Control {
                framework: "HIPAA".into(),
                id: "164.312(a)(1)".into(),
            }],
            nixos_revision: "24.11.20250301.abcdef0".into(),
            ntp_offset_ms: Some(-4),
            check: "sshd PermitRootLogin is no".into(),
            pre_state: Observation {
                verdict: Verdict::Drifted,
                exit_code: Some(1),
                output_sha256: Sha256Digest::of(b"PermitRootLogin yes\n"),
            },
            action_taken: vec![ActionStep {
                step: "remediate".into(),
                exit_code: Some(0),
                output_sha256: Sha256Digest::of(b""),
                duration_ms: 412,
            }],
            post_state: Some(Observation {
                verdict: Verdict::Compliant,
                exit_code: Some(0),
                output_sha256: Sha256Digest::of(b"PermitRootLogin no\n"),
            }),
            rollback_available: true,
            outcome: Outcome::Healed,
            check_output: CappedOutput::capture(b"PermitRootLogin yes\n"),
        }
    }

    #[test]
    fn payload_golden_has_every_field_in_order() {
        let payload = String::from_utf8(sample_bundle().to_payload()).unwrap();
        let zeros = "0".repeat(64);
        let golden = format!(
            concat!(
                r#"{{"version":1,"bundle_id":"0e6f7f4a-8b0c-4f5e-9a3b-2d1c0b9a8f7e","site_id":"clinic-1","#,
                r#""host_id":"frontdesk-01","appliance":"clinic-1-appliance","seq":1,"prev_hash":"{zeros}","#,
                r#""deployment_mode":"reseller","reseller_id":"acme-msp","timestamp_start":"2026-03-01T02:00:00Z","#,
                r#""timestamp_end":"2026-03-01T02:00:03Z","policy_version":"17","ruleset_hash":"sha256:5f1c","#,
                r#""runbook":"ssh-no-root-login","runbook_digest":"sha256:5f1c","#,
                r#""controls":[{{"framework":"HIPAA","id":"164.312(a)(1)"}}],"#,
                r#""nixos_revision":"24.11.20250301.abcdef0","ntp_offset_ms":-4,"check":"sshd PermitRootLogin is no","#,
                r#""pre_state":{{"verdict":"drifted","exit_code":1,"output_sha256":"{pre}"}},"#,
                r#""action_taken":[{{"step":"remediate","exit_code":0,"output_sha256":"{empty}","duration_ms":412}}],"#,
                r#""post_state":{{"verdict":"compliant","exit_code":0,"output_sha256":"{post}"}},"#,
                r#""rollback_available":true,"outcome":"healed","#,
                r#""check_output":{{"text":"PermitRootLogin yes\n","truncated":false,"original_bytes":20}}}}"#,
            ),
            zeros = zeros,
            pre = Sha256Digest::of(b"PermitRootLogin yes\n"),
            empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            post = Sha256Digest::of(b"PermitRootLogin no\n"),
        );
        assert_eq!(payload, golden);
        assert_eq!(
            Bundle::from_payload(payload.as_bytes()).unwrap(),
            sample_bundle()
        );
    }

    #[test]
    fn every_outcome_and_verdict_has_its_documented_spelling() {
        #[rustfmt::skip]
        let outcomes = [
            (Outcome::Pass, "pass"), (Outcome::Healed, "healed"), (Outcome::Failed, "failed"),
            (Outcome::Escalated, "escalated"), (Outcome::Deferred, "deferred"), (Outcome::Waived, "waived"),
            (Outcome::DryRun, "dry-run"),
        ];
        for (outcome, text) in outcomes {
            assert_eq!(serde_json::to_value(outcome).unwrap(), text);
        }
        assert_eq!(
            serde_json::to_value(Verdict::NotApplicable).unwrap(),
            "not-applicable"
        );
        assert_eq!(
            serde_json::to_value(DeploymentMode::Direct).unwrap(),
            "direct"
        );
    }

    #[test]
    fn decoding_is_strict() {
        let mut json: serde_json::Value = serde_json::to_value(sample_bundle()).unwrap();
        json["extra"] = true.into();
        let err = Bundle::from_payload(&serde_json::to_vec(&json).unwrap()).unwrap_err();
        assert!(err.to_string().contains("unknown field `extra`"), "{err}");

        let mut json: serde_json::Value = serde_json::to_value(sample_bundle()).unwrap();
        json["pre_state"]["colour"] = "blue".into();
        let err = Bundle::from_payload(&serde_json::to_vec(&json).unwrap()).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");

        let mut json: serde_json::Value = serde_json::to_value(sample_bundle()).unwrap();
        json.as_object_mut().unwrap().remove("outcome");
        let err = Bundle::from_payload(&serde_json::to_vec(&json).unwrap()).unwrap_err();
        assert!(err.to_string().contains("missing field `outcome`"), "{err}");

        let mut json: serde_json::Value = serde_json::to_value(sample_bundle()).unwrap();
        json["prev_hash"] = "abc".into();
        let err = Bundle::from_payload(&serde_json::to_vec(&json).unwrap()).unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }

    #[test]
    fn validate_table() {
        type Edit = fn(&mut Bundle);
        #[rustfmt::skip]
        let cases: &[(Edit, &str, &str)] = &[
            (|b| b.version = 2, "version", "knows only version 1"),
            (|b| b.bundle_id.clear(), "bundle_id", "is empty"),
            (|b| b.host_id.clear(), "host_id", "is empty"),
            (|b| b.runbook_digest.clear(), "runbook_digest", "is empty"),
            (|b| b.seq = 0, "seq", "start at 1"),
            (|b| b.prev_hash = Sha256Digest::of(b"x"), "prev_hash", "must carry 64 zeros"),
            (|b| b.timestamp_end = b.timestamp_start - chrono::Duration::seconds(1), "timestamp_end", "before timestamp_start"),
            (|b| b.reseller_id = None, "reseller_id", "deployment_mode is reseller"),
            (|b| b.deployment_mode = DeploymentMode::Direct, "reseller_id", "set it to null"),
            (|b| b.ruleset_hash = "sha256:other".into(), "ruleset_hash", "must equal runbook_digest"),
            (|b| b.check_output.text = "x".repeat(CHECK_OUTPUT_CAP + 1), "check_output.text", "over the cap"),
        ];
        for (edit, field, fragment) in cases {
            let mut bundle = sample_bundle();
            edit(&mut bundle);
            let err = bundle.validate().unwrap_err();
            assert!(
                matches!(&err, EvidenceError::Invalid { field: f, .. } if f == field)
                    && err.to_string().contains(fragment),
                "{field}: {err}"
            );
        }
        // Valid variations.
        let mut direct = sample_bundle();
        (direct.deployment_mode, direct.reseller_id) = (DeploymentMode::Direct, None);
        assert!(direct.validate().is_ok());
        let mut later = sample_bundle();
        (later.seq, later.prev_hash) = (2, Sha256Digest::of(b"previous payload"));
        assert!(later.validate().is_ok());
    }

    #[test]
    fn capture_keeps_small_output_whole() {
        let output = CappedOutput::capture("ok ✓\n".as_bytes());
        assert_eq!(
            output,
            CappedOutput {
                text: "ok ✓\n".into(),
                truncated: false,
                original_bytes: 7
            }
        );
    }

    #[test]
    fn capture_truncates_at_the_cap_and_records_it() {
        let raw = vec![b'a'; CHECK_OUTPUT_CAP + 10];
        let output = CappedOutput::capture(&raw);
        assert_eq!(output.text.len(), CHECK_OUTPUT_CAP);
        assert!(output.truncated);
        assert_eq!(output.original_bytes, (CHECK_OUTPUT_CAP + 10) as u64);

        let exact = CappedOutput::capture(&raw[..CHECK_OUTPUT_CAP]);
        assert!(!exact.truncated && exact.text.len() == CHECK_OUTPUT_CAP);
    }

    #[test]
    fn capture_never_exceeds_the_cap_with_multibyte_or_invalid_bytes() {
        // A 3-byte character straddling the cap, and invalid bytes that expand to 3-byte U+FFFD.
        let mut straddling = vec![b'a'; CHECK_OUTPUT_CAP - 1];
        straddling.extend_from_slice("€".as_bytes());
        let invalid = vec![0xff; CHECK_OUTPUT_CAP];
        for raw in [straddling, invalid] {
            let output = CappedOutput::capture(&raw);
            assert!(
                output.text.len() <= CHECK_OUTPUT_CAP,
                "{}",
                output.text.len()
            );
            assert!(output.truncated);
            assert_eq!(output.original_bytes, raw.len() as u64);
        }
    }

    #[test]
    fn open_checks_type_signature_schema_and_appliance() {
        let signer = Signer::from_seed(&[5; 32]);
        let key = signer.public_key();
        let bundle = sample_bundle();
        let envelope = dsse::sign(PAYLOAD_TYPE, bundle.to_payload(), &signer);
        let verified = open(&envelope, "clinic-1-appliance", &key).unwrap();
        assert_eq!(verified.bundle, bundle);
        assert_eq!(verified.payload_hash, Sha256Digest::of(&envelope.payload));

        let err = open(&envelope, "other-appliance", &key).unwrap_err();
        assert!(
            matches!(err, EvidenceError::ForeignAppliance { .. }),
            "{err}"
        );

        let other_type = dsse::sign("application/json", bundle.to_payload(), &signer);
        let err = open(&other_type, "clinic-1-appliance", &key).unwrap_err();
        assert!(
            matches!(
                err,
                EvidenceError::Envelope(DsseError::WrongPayloadType { .. })
            ),
            "{err}"
        );

        let garbage = dsse::sign(PAYLOAD_TYPE, b"not json".to_vec(), &signer);
        let err = open(&garbage, "clinic-1-appliance", &key).unwrap_err();
        assert!(matches!(err, EvidenceError::Undecodable { .. }), "{err}");
    }

    #[test]
    fn digest_text_round_trips_and_rejects_bad_lengths() {
        let digest = Sha256Digest::of(b"abc");
        assert_eq!(
            digest.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest.to_string().parse::<Sha256Digest>().unwrap(), digest);
        assert!("ba78".parse::<Sha256Digest>().is_err());
        assert_eq!(Sha256Digest::ZERO.to_string(), "0".repeat(64));
    }
}
