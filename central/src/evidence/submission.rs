//! The checks a posted evidence envelope passes before it reaches the write path: size, JSON and
//! base64, the enrolled key, signature and bundle schema (`osc_proto::evidence::open`), the
//! caller's site and appliance, and the clock. Pure: the caller passes the Appliance object and
//! `now`, so these run concurrently, outside the one write transaction.

use chrono::{DateTime, Duration, Utc};
use osc_proto::dsse::{DsseError, Envelope, PublicKey};
use osc_proto::evidence::{self, EvidenceError};
use serde_json::Value;

use crate::store::NewEvidence;

/// The largest envelope accepted (256 KiB): a bundle's check output is capped at 16 KiB, so a
/// real envelope is far smaller; anything bigger is refused before it is parsed.
pub const MAX_ENVELOPE_BYTES: usize = 256 * 1024;

/// How far in the future a bundle's end may lie: appliances keep their clocks within this by NTP
/// (and report `ntpOffsetMs`); more means a broken clock, whose evidence would mislead.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// How old a bundle's start may be when it arrives: an appliance's outbox holds evidence through
/// a central outage, but a bundle older than this is a replay of stale history, not a delivery.
pub const MAX_AGE: Duration = Duration::days(30);

/// The appliance that posts, as authentication established it.
#[derive(Debug, Clone, Copy)]
pub struct Submitter<'a> {
    /// Its site (namespace).
    pub site: &'a str,
    /// Its Appliance object's name.
    pub appliance: &'a str,
}

/// Why a posted envelope was refused before its chain was looked at.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    /// The body is larger than [`MAX_ENVELOPE_BYTES`].
    #[error(
        "the evidence envelope is {size} bytes; the most accepted is {limit} bytes (check output is capped at 16 KiB)"
    )]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not a DSSE envelope in JSON (truncated, mistyped, or bad base64).
    #[error(
        "the body is not a DSSE envelope (JSON with payloadType, base64 payload and signatures[{{keyid, sig}}]): {source}"
    )]
    Undecodable {
        /// The decoder's error, with its position.
        #[source]
        source: serde_json::Error,
    },
    /// The Appliance object has no usable enrolled public key.
    #[error(
        "appliance {site}/{appliance} has no valid spec.enrollment.publicKey ({problem}); enroll it again"
    )]
    NotEnrolled {
        /// The site.
        site: String,
        /// The appliance.
        appliance: String,
        /// What is wrong with the key.
        problem: String,
    },
    /// The envelope is not signed by the appliance's enrolled key (tampered, or another key).
    #[error(
        "the evidence envelope does not verify against appliance {appliance}'s enrolled key: {source}"
    )]
    Signature {
        /// The appliance.
        appliance: String,
        /// Why verification failed.
        #[source]
        source: DsseError,
    },
    /// The payload is not a valid v1 bundle.
    #[error("{0}")]
    Bundle(#[source] EvidenceError),
    /// The bundle names another site or appliance than the caller's.
    #[error(
        "the bundle names {field} {found:?}, but this appliance belongs to {expected:?}: an appliance posts only its own evidence"
    )]
    Foreign {
        /// `site_id` or `appliance`.
        field: &'static str,
        /// The caller's.
        expected: String,
        /// The bundle's.
        found: String,
    },
    /// A timestamp outside the accepted window.
    #[error("bundle field `{field}` is {value}, {problem}")]
    Clock {
        /// `timestamp_start` or `timestamp_end`.
        field: &'static str,
        /// Its value.
        value: DateTime<Utc>,
        /// What is wrong and what is allowed.
        problem: String,
    },
}

/// The enrolled public key of an Appliance object: `spec.enrollment.publicKey`, base64 of 32
/// bytes. Its DSSE keyid is derived from the key; `spec.enrollment.keyId` is never trusted.
pub fn enrolled_key(
    appliance: &Value,
    submitter: Submitter<'_>,
) -> Result<PublicKey, SubmissionError> {
    let not_enrolled = |problem: String| SubmissionError::NotEnrolled {
        site: submitter.site.to_owned(),
        appliance: submitter.appliance.to_owned(),
        problem,
    };
    let text = appliance
        .pointer("/spec/enrollment/publicKey")
        .and_then(Value::as_str)
        .ok_or_else(|| not_enrolled("it is missing".to_owned()))?;
    PublicKey::from_base64(text).map_err(|error| not_enrolled(error.to_string()))
}

/// Refuses a body over [`MAX_ENVELOPE_BYTES`]; the first check, and the only one that needs no key.
pub fn check_size(body: &[u8]) -> Result<(), SubmissionError> {
    if body.len() > MAX_ENVELOPE_BYTES {
        return Err(SubmissionError::TooLarge {
            size: body.len(),
            limit: MAX_ENVELOPE_BYTES,
        });
    }
    Ok(())
}

/// Checks `body` as an evidence envelope from `submitter`, signed with `key`, at `now`; answers
/// the row to append (its chain is decided by the store, inside the write transaction).
pub fn check(
    body: &[u8],
    submitter: Submitter<'_>,
    key: &PublicKey,
    now: DateTime<Utc>,
) -> Result<NewEvidence, SubmissionError> {
    check_size(body)?;
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|source| SubmissionError::Undecodable { source })?;
    let verified =
        evidence::open(&envelope, submitter.appliance, key).map_err(|error| match error {
            EvidenceError::Envelope(source) => SubmissionError::Signature {
                appliance: submitter.appliance.to_owned(),
                source,
            },
            EvidenceError::ForeignAppliance { expected, found } => SubmissionError::Foreign {
                field: "appliance",
                expected,
                found,
            },
            other => SubmissionError::Bundle(other),
        })?;
    let bundle = verified.bundle;
    if bundle.site_id != submitter.site {
        return Err(SubmissionError::Foreign {
            field: "site_id",
            expected: submitter.site.to_owned(),
            found: bundle.site_id,
        });
    }
    if bundle.timestamp_end > now + MAX_CLOCK_SKEW {
        return Err(SubmissionError::Clock {
            field: "timestamp_end",
            value: bundle.timestamp_end,
            problem: format!(
                "more than {} minutes after central's clock ({now}); fix the appliance's clock (NTP) and resend",
                MAX_CLOCK_SKEW.num_minutes()
            ),
        });
    }
    if bundle.timestamp_start < now - MAX_AGE {
        return Err(SubmissionError::Clock {
            field: "timestamp_start",
            value: bundle.timestamp_start,
            problem: format!(
                "more than {} days before central's clock ({now}); evidence that old is not accepted",
                MAX_AGE.num_days()
            ),
        });
    }
    let outcome = serde_json::to_value(bundle.outcome)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(NewEvidence {
        site: bundle.site_id,
        appliance: bundle.appliance,
        seq: bundle.seq,
        prev_hash: bundle.prev_hash,
        payload_hash: verified.payload_hash,
        bundle_id: bundle.bundle_id,
        host: bundle.host_id,
        runbook: bundle.runbook,
        outcome,
        timestamp_end: bundle.timestamp_end,
        // The canonical re-encoding: standard base64, no stray whitespace, so the stored bytes
        // (the Merkle leaf) do not depend on how the appliance formatted its JSON.
        envelope: serde_json::to_string(&envelope).unwrap_or_default(),
        public_key: key.to_base64(),
    })
}
