//! The per-appliance hash chain over evidence bundles: building it, verifying a run of it, and deciding
//! what central does with a newly posted bundle.
//!
//! The rules: an appliance's first bundle has `seq` 1 and a `prev_hash` of 64 zeros; each next bundle has
//! `seq` one higher and a `prev_hash` equal to the SHA-256 of the previous bundle's payload bytes (the
//! exact bytes signed, see [`crate::evidence`]). Altering, dropping, reordering or forking any bundle
//! therefore shows at the next link.

use std::collections::HashMap;
use std::fmt;

use crate::dsse::{self, Envelope, PublicKey, Signer};
use crate::evidence::{self, Bundle, EvidenceError, PAYLOAD_TYPE, Sha256Digest, VerifiedBundle};

/// The last accepted bundle of a chain: all that is needed to link or judge the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Its sequence number.
    pub seq: u64,
    /// SHA-256 of its payload bytes.
    pub payload_hash: Sha256Digest,
}

/// The chain fields of a verified bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLink {
    /// The bundle's sequence number.
    pub seq: u64,
    /// The payload hash it claims for its predecessor.
    pub prev_hash: Sha256Digest,
    /// SHA-256 of its own payload bytes.
    pub payload_hash: Sha256Digest,
}

impl VerifiedBundle {
    /// The chain fields of this bundle.
    pub fn link(&self) -> ChainLink {
        ChainLink {
            seq: self.bundle.seq,
            prev_hash: self.bundle.prev_hash,
            payload_hash: self.payload_hash,
        }
    }
}

/// Appends bundles to one appliance's chain: numbers, links and signs them.
///
/// The builder owns the chain fields (`appliance`, `seq`, `prev_hash`) and overwrites whatever the caller
/// put there; everything else is the caller's. Persist [`ChainBuilder::head`] with each envelope (the
/// controller's outbox does) and pass it back to [`ChainBuilder::new`] after a restart.
#[derive(Debug)]
pub struct ChainBuilder {
    /// The appliance whose chain this is; written into every bundle.
    appliance: String,
    /// The appliance's key; signs every envelope.
    signer: Signer,
    /// The last bundle appended, or `None` before the first.
    head: Option<ChainHead>,
}

impl ChainBuilder {
    /// A builder that continues after `head`, or starts a new chain at seq 1 when `head` is `None`.
    pub fn new(appliance: impl Into<String>, signer: Signer, head: Option<ChainHead>) -> Self {
        Self {
            appliance: appliance.into(),
            signer,
            head,
        }
    }

    /// The last bundle appended (or the head given to [`ChainBuilder::new`]).
    pub fn head(&self) -> Option<ChainHead> {
        self.head
    }

    /// Sets the chain fields of `bundle`, checks it, signs its payload and advances the head.
    ///
    /// Fails only when the bundle breaks an invariant of [`Bundle::validate`]; the head does not move then.
    pub fn append(&mut self, mut bundle: Bundle) -> Result<Envelope, EvidenceError> {
        bundle.appliance.clone_from(&self.appliance);
        bundle.seq = self.head.map_or(1, |head| head.seq + 1);
        bundle.prev_hash = self
            .head
            .map_or(Sha256Digest::ZERO, |head| head.payload_hash);
        bundle.validate()?;
        let payload = bundle.to_payload();
        let payload_hash = Sha256Digest::of(&payload);
        let envelope = dsse::sign(PAYLOAD_TYPE, payload, &self.signer);
        self.head = Some(ChainHead {
            seq: bundle.seq,
            payload_hash,
        });
        Ok(envelope)
    }
}

/// What central does with a verified bundle, given the appliance's chain so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    /// The next link: store it and make it the head.
    Append,
    /// Exactly these bytes are already stored under this seq: answer as for the first post (200), store
    /// nothing. This is how delivery retries stay idempotent.
    Duplicate,
    /// Different bytes under a seq already used: refuse (409). The appliance's history forked, or it lost
    /// its chain state.
    Conflict {
        /// The sequence number in dispute.
        seq: u64,
    },
    /// Bundles are missing before this one: refuse, the appliance must send `expected` first.
    Gap {
        /// The seq central needs next.
        expected: u64,
    },
    /// The right seq, but its `prev_hash` is not the head's payload hash: refuse (409).
    BrokenLink {
        /// The `prev_hash` the next bundle must carry.
        expected_prev_hash: Sha256Digest,
    },
}

/// Decides what to do with `candidate`, given the chain's `head` (`None` before its first bundle) and the
/// payload hash already stored under `candidate.seq`, if any (central looks it up only for a seq at or
/// below its head). Pure: no store, no clock.
///
/// A seq at or below the head whose bytes central does not have (`stored_at_seq` is `None`) is a
/// conflict too: it can never be appended without rewriting the chain.
pub fn decide(
    head: Option<&ChainHead>,
    stored_at_seq: Option<&Sha256Digest>,
    candidate: &ChainLink,
) -> Ingest {
    let expected = head.map_or(1, |head| head.seq + 1);
    if candidate.seq < expected {
        let stored = match head {
            Some(head) if head.seq == candidate.seq => Some(&head.payload_hash),
            _ => stored_at_seq,
        };
        return if stored == Some(&candidate.payload_hash) {
            Ingest::Duplicate
        } else {
            Ingest::Conflict { seq: candidate.seq }
        };
    }
    if candidate.seq > expected {
        return Ingest::Gap { expected };
    }
    let expected_prev_hash = head.map_or(Sha256Digest::ZERO, |head| head.payload_hash);
    if candidate.prev_hash == expected_prev_hash {
        Ingest::Append
    } else {
        Ingest::BrokenLink { expected_prev_hash }
    }
}

/// Verifies `envelopes` as consecutive links of `appliance`'s chain, signed with its `key`, starting after
/// `start` (or at seq 1 when `None`). Stops at the first break and says where and how it breaks.
pub fn verify_chain(
    envelopes: &[Envelope],
    appliance: &str,
    key: &PublicKey,
    start: Option<ChainHead>,
) -> Result<VerifiedChain, ChainError> {
    let opened: Vec<_> = envelopes
        .iter()
        .map(|envelope| evidence::open(envelope, appliance, key))
        .collect();
    // The seq of every readable entry, to tell reordering (the expected seq comes later) from a gap.
    let seqs: Vec<Option<u64>> = opened
        .iter()
        .map(|r| r.as_ref().ok().map(|v| v.bundle.seq))
        .collect();
    let mut head = start;
    // Every accepted link by seq, with its entry index, to tell a fork from a duplicate.
    let mut accepted: HashMap<u64, (usize, Sha256Digest)> = HashMap::new();
    let mut bundles = Vec::with_capacity(opened.len());
    for (index, result) in opened.into_iter().enumerate() {
        let fail = |seq, kind| ChainError {
            appliance: appliance.to_owned(),
            index,
            seq,
            kind,
        };
        let verified = result.map_err(|error| fail(None, ChainBreak::Entry(error)))?;
        let link = verified.link();
        let earlier = accepted.get(&link.seq).copied();
        let kind = match decide(head.as_ref(), earlier.as_ref().map(|(_, hash)| hash), &link) {
            Ingest::Append => {
                accepted.insert(link.seq, (index, link.payload_hash));
                head = Some(ChainHead {
                    seq: link.seq,
                    payload_hash: link.payload_hash,
                });
                bundles.push(verified);
                continue;
            }
            Ingest::Duplicate => ChainBreak::Duplicate {
                seq: link.seq,
                first_index: earlier.map(|(i, _)| i),
            },
            Ingest::Conflict { seq } => ChainBreak::Fork {
                seq,
                first_index: earlier.map(|(i, _)| i),
            },
            Ingest::Gap { expected } => {
                match seqs[index + 1..]
                    .iter()
                    .position(|&seq| seq == Some(expected))
                {
                    Some(offset) => ChainBreak::Reordered {
                        expected,
                        found: link.seq,
                        expected_at: index + 1 + offset,
                    },
                    None => ChainBreak::Gap {
                        expected,
                        found: link.seq,
                    },
                }
            }
            Ingest::BrokenLink { expected_prev_hash } => ChainBreak::PrevHashMismatch {
                expected: expected_prev_hash,
                found: link.prev_hash,
            },
        };
        return Err(fail(Some(link.seq), kind));
    }
    Ok(VerifiedChain { bundles, head })
}

/// A run of a chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The bundles, in chain order.
    pub bundles: Vec<VerifiedBundle>,
    /// The last link (the `start` given when the run was empty).
    pub head: Option<ChainHead>,
}

/// Where and how a chain breaks.
#[derive(Debug, thiserror::Error)]
#[error("evidence chain of appliance {appliance:?} breaks at entry {index}{}: {kind}", seq.map(|s| format!(" (seq {s})")).unwrap_or_default())]
pub struct ChainError {
    /// The appliance whose chain was checked.
    pub appliance: String,
    /// Zero-based position of the offending envelope in the sequence checked.
    pub index: usize,
    /// Its seq, when its bundle could be read.
    pub seq: Option<u64>,
    /// How the chain breaks there.
    #[source]
    pub kind: ChainBreak,
}

/// How a chain breaks.
#[derive(Debug, thiserror::Error)]
pub enum ChainBreak {
    /// The envelope itself fails: wrong payload type, signed by a key other than the appliance's, bad
    /// signature, undecodable or invalid payload, or a bundle of another appliance.
    #[error(transparent)]
    Entry(EvidenceError),
    /// Bundles are missing: the seq jumps ahead, and the missing one appears nowhere later.
    #[error("expected seq {expected}, found seq {found}: {} bundle(s) are missing", found - expected)]
    Gap {
        /// The seq that should come next.
        expected: u64,
        /// The seq found instead.
        found: u64,
    },
    /// The expected seq is there, but later: the entries are out of order.
    #[error(
        "expected seq {expected}, found seq {found}; seq {expected} comes later, at entry {expected_at}: the entries are out of order"
    )]
    Reordered {
        /// The seq that should come next.
        expected: u64,
        /// The seq found instead.
        found: u64,
        /// Where the expected seq is.
        expected_at: usize,
    },
    /// A seq already used, with different payload bytes: the appliance's history forked.
    #[error("seq {seq} appears again with a different payload{}: the chain forked", Earlier(*first_index))]
    Fork {
        /// The seq used twice.
        seq: u64,
        /// Where it was first seen, when that was in the sequence checked.
        first_index: Option<usize>,
    },
    /// A seq already used, with the same payload bytes: the sequence holds a copy of an entry.
    #[error("seq {seq} appears again with the same payload{}: the entry is duplicated", Earlier(*first_index))]
    Duplicate {
        /// The seq used twice.
        seq: u64,
        /// Where it was first seen, when that was in the sequence checked.
        first_index: Option<usize>,
    },
    /// The right seq, but `prev_hash` does not match the previous payload: something before was altered.
    #[error(
        "prev_hash is {found}, but the previous payload hashes to {expected}: an earlier bundle was altered or replaced"
    )]
    PrevHashMismatch {
        /// The hash of the previous payload.
        expected: Sha256Digest,
        /// The `prev_hash` the bundle carries.
        found: Sha256Digest,
    },
}

/// Says where a repeated seq was first seen.
struct Earlier(Option<usize>);

impl fmt::Display for Earlier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(index) => write!(f, " (first at entry {index})"),
            None => f.write_str(" (first before the entries checked)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsse::DsseError;
    use crate::evidence::tests::sample_bundle;

    const APPLIANCE: &str = "clinic-1-appliance";

    fn signer() -> Signer {
        Signer::from_seed(&[42; 32])
    }

    /// The `n`-th bundle of a run; each differs, so payloads (and hashes) differ.
    fn bundle(n: usize) -> Bundle {
        Bundle {
            bundle_id: format!("bundle-{n}"),
            ..sample_bundle()
        }
    }

    /// A valid chain of `n` envelopes from seq 1, with the builder that made it.
    fn chain(n: usize) -> (ChainBuilder, Vec<Envelope>) {
        let mut builder = ChainBuilder::new(APPLIANCE, signer(), None);
        let envelopes = (0..n).map(|i| builder.append(bundle(i)).unwrap()).collect();
        (builder, envelopes)
    }

    fn verify(envelopes: &[Envelope]) -> Result<VerifiedChain, ChainError> {
        verify_chain(envelopes, APPLIANCE, &signer().public_key(), None)
    }

    fn hash(text: &str) -> Sha256Digest {
        Sha256Digest::of(text.as_bytes())
    }

    /// A row of `decide_table`: name, head, hash stored under the candidate's seq, candidate, decision.
    type Row<'a> = (
        &'a str,
        Option<&'a ChainHead>,
        Option<Sha256Digest>,
        ChainLink,
        Ingest,
    );

    #[test]
    fn decide_table() {
        let head = ChainHead {
            seq: 5,
            payload_hash: hash("p5"),
        };
        let link = |seq, prev: &str, payload: &str| ChainLink {
            seq,
            prev_hash: hash(prev),
            payload_hash: hash(payload),
        };
        let first = |payload: &str| ChainLink {
            seq: 1,
            prev_hash: Sha256Digest::ZERO,
            payload_hash: hash(payload),
        };
        #[rustfmt::skip]
        let cases: &[Row] = &[
            ("first bundle of a new chain", None, None, first("p1"), Ingest::Append),
            ("first bundle with a non-zero prev_hash", None, None, link(1, "x", "p1"),
                Ingest::BrokenLink { expected_prev_hash: Sha256Digest::ZERO }),
            ("a new chain cannot start past 1", None, None, link(2, "p1", "p2"), Ingest::Gap { expected: 1 }),
            ("next link", Some(&head), None, link(6, "p5", "p6"), Ingest::Append),
            ("next seq, wrong predecessor", Some(&head), None, link(6, "p4", "p6"),
                Ingest::BrokenLink { expected_prev_hash: hash("p5") }),
            ("retry of the head", Some(&head), None, link(5, "p4", "p5"), Ingest::Duplicate),
            ("other bytes under the head's seq", Some(&head), None, link(5, "p4", "q5"), Ingest::Conflict { seq: 5 }),
            ("retry of an older bundle", Some(&head), Some(hash("p3")), link(3, "p2", "p3"), Ingest::Duplicate),
            ("other bytes under an older seq", Some(&head), Some(hash("p3")), link(3, "p2", "q3"), Ingest::Conflict { seq: 3 }),
            ("an older seq the store lacks", Some(&head), None, link(3, "p2", "p3"), Ingest::Conflict { seq: 3 }),
            ("a restarted chain after a reinstall", Some(&head), None, first("p1"), Ingest::Conflict { seq: 1 }),
            ("missing bundles", Some(&head), None, link(8, "p7", "p8"), Ingest::Gap { expected: 6 }),
        ];
        for (name, head, stored, candidate, expected) in cases {
            assert_eq!(
                decide(*head, stored.as_ref(), candidate),
                *expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_long_built_chain_verifies_and_links_every_payload() {
        let (builder, envelopes) = chain(200);
        let verified = verify(&envelopes).unwrap();
        assert_eq!(verified.bundles.len(), 200);
        for (i, (entry, envelope)) in verified.bundles.iter().zip(&envelopes).enumerate() {
            assert_eq!(entry.bundle.seq, i as u64 + 1);
            assert_eq!(entry.bundle.appliance, APPLIANCE);
            let expected_prev = if i == 0 {
                Sha256Digest::ZERO
            } else {
                Sha256Digest::of(&envelopes[i - 1].payload)
            };
            assert_eq!(entry.bundle.prev_hash, expected_prev);
            assert_eq!(entry.payload_hash, Sha256Digest::of(&envelope.payload));
        }
        assert_eq!(verified.head, builder.head());
        assert_eq!(builder.head().unwrap().seq, 200);
    }

    #[test]
    fn a_builder_resumed_from_its_head_continues_the_same_chain() {
        let (_, mut envelopes) = chain(3);
        let head = verify(&envelopes).unwrap().head;
        let mut resumed = ChainBuilder::new(APPLIANCE, signer(), head);
        envelopes.push(resumed.append(bundle(3)).unwrap());
        assert_eq!(verify(&envelopes).unwrap().bundles.len(), 4);
        // Verification can also start from a known head, as for an export that begins mid-chain.
        let tail = verify_chain(&envelopes[3..], APPLIANCE, &signer().public_key(), head).unwrap();
        assert_eq!(tail.head, resumed.head());
    }

    #[test]
    fn the_builder_owns_the_chain_fields_and_rejects_invalid_bundles_without_moving() {
        let mut builder = ChainBuilder::new(APPLIANCE, signer(), None);
        let mut wild = bundle(0);
        (wild.appliance, wild.seq, wild.prev_hash) = ("someone-else".into(), 99, hash("junk"));
        let envelope = builder.append(wild).unwrap();
        let opened = evidence::open(&envelope, APPLIANCE, &signer().public_key()).unwrap();
        assert_eq!(
            (opened.bundle.seq, opened.bundle.prev_hash),
            (1, Sha256Digest::ZERO)
        );

        let before = builder.head();
        let err = builder
            .append(Bundle {
                runbook: String::new(),
                ..bundle(1)
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                EvidenceError::Invalid {
                    field: "runbook",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(builder.head(), before);
    }

    /// Asserts that `envelopes` break at entry `index` with a break `matching`.
    fn assert_breaks(
        envelopes: &[Envelope],
        index: usize,
        matching: impl FnOnce(&ChainBreak) -> bool,
    ) {
        let err = verify(envelopes).unwrap_err();
        assert_eq!(err.index, index, "{err}");
        assert!(matching(&err.kind), "unexpected break: {err}");
    }

    #[test]
    fn gap() {
        let (_, mut envelopes) = chain(5);
        envelopes.remove(2);
        assert_breaks(&envelopes, 2, |kind| {
            matches!(
                kind,
                ChainBreak::Gap {
                    expected: 3,
                    found: 4
                }
            )
        });
    }

    #[test]
    fn an_export_that_starts_mid_chain_without_a_head_is_a_gap() {
        let (_, envelopes) = chain(3);
        assert_breaks(&envelopes[1..], 0, |kind| {
            matches!(
                kind,
                ChainBreak::Gap {
                    expected: 1,
                    found: 2
                }
            )
        });
    }

    #[test]
    fn reordering() {
        let (_, mut envelopes) = chain(5);
        envelopes.swap(1, 3);
        assert_breaks(&envelopes, 1, |kind| {
            matches!(
                kind,
                ChainBreak::Reordered {
                    expected: 2,
                    found: 4,
                    expected_at: 3
                }
            )
        });
    }

    #[test]
    fn fork() {
        let (builder, mut envelopes) = chain(3);
        // A second history from the same point: another bundle under seq 3, signed by the right key.
        let mut other =
            ChainBuilder::new(APPLIANCE, signer(), verify(&envelopes[..2]).unwrap().head);
        envelopes.push(other.append(bundle(99)).unwrap());
        assert_ne!(other.head(), builder.head());
        assert_breaks(&envelopes, 3, |kind| {
            matches!(
                kind,
                ChainBreak::Fork {
                    seq: 3,
                    first_index: Some(2)
                }
            )
        });
    }

    #[test]
    fn duplicate() {
        let (_, mut envelopes) = chain(3);
        envelopes.push(envelopes[1].clone());
        assert_breaks(&envelopes, 3, |kind| {
            matches!(
                kind,
                ChainBreak::Duplicate {
                    seq: 2,
                    first_index: Some(1)
                }
            )
        });
    }

    #[test]
    fn prev_hash_mismatch() {
        let (_, mut envelopes) = chain(4);
        // Replace entry 1 with another validly signed seq 2: entry 2 no longer links to it.
        let mut forged = bundle(50);
        (forged.seq, forged.prev_hash) = (2, Sha256Digest::of(&envelopes[0].payload));
        envelopes[1] = dsse::sign(PAYLOAD_TYPE, forged.to_payload(), &signer());
        let expected = Sha256Digest::of(&envelopes[1].payload);
        assert_breaks(
            &envelopes,
            2,
            |kind| matches!(kind, ChainBreak::PrevHashMismatch { expected: e, .. } if *e == expected),
        );
    }

    #[test]
    fn bad_signature() {
        let (_, mut envelopes) = chain(3);
        let mut bundle = Bundle::from_payload(&envelopes[1].payload).unwrap();
        bundle.outcome = evidence::Outcome::Pass;
        envelopes[1].payload = bundle.to_payload();
        assert_breaks(&envelopes, 1, |kind| {
            matches!(
                kind,
                ChainBreak::Entry(EvidenceError::Envelope(DsseError::BadSignature { .. }))
            )
        });
    }

    #[test]
    fn wrong_key() {
        let (builder, mut envelopes) = chain(2);
        let mut intruder =
            ChainBuilder::new(APPLIANCE, Signer::from_seed(&[7; 32]), builder.head());
        envelopes.push(intruder.append(bundle(2)).unwrap());
        assert_breaks(&envelopes, 2, |kind| {
            matches!(
                kind,
                ChainBreak::Entry(EvidenceError::Envelope(DsseError::UntrustedKey { .. }))
            )
        });
    }

    #[test]
    fn wrong_payload_type() {
        let (_, mut envelopes) = chain(2);
        envelopes[0].payload_type = "application/vnd.in-toto+json".into();
        assert_breaks(&envelopes, 0, |kind| {
            matches!(
                kind,
                ChainBreak::Entry(EvidenceError::Envelope(DsseError::WrongPayloadType { .. }))
            )
        });
    }

    #[test]
    fn undecodable_payload() {
        let (_, mut envelopes) = chain(2);
        envelopes.push(dsse::sign(
            PAYLOAD_TYPE,
            br#"{"version":1}"#.to_vec(),
            &signer(),
        ));
        assert_breaks(&envelopes, 2, |kind| {
            matches!(kind, ChainBreak::Entry(EvidenceError::Undecodable { .. }))
        });
    }

    #[test]
    fn another_appliances_bundle() {
        let (builder, mut envelopes) = chain(2);
        let mut other = ChainBuilder::new("clinic-2-appliance", signer(), builder.head());
        envelopes.push(other.append(bundle(2)).unwrap());
        assert_breaks(&envelopes, 2, |kind| {
            matches!(
                kind,
                ChainBreak::Entry(EvidenceError::ForeignAppliance { .. })
            )
        });
    }

    proptest::proptest! {
        /// Any selection of entries from a valid chain verifies exactly when it is a prefix of the chain in
        /// order: every drop, repeat or reordering is caught.
        #[test]
        fn only_prefixes_of_a_chain_verify(picks in proptest::collection::vec(0..8usize, 0..10)) {
            let (_, envelopes) = chain(8);
            let selection: Vec<Envelope> = picks.iter().map(|&i| envelopes[i].clone()).collect();
            let is_prefix = picks.iter().enumerate().all(|(position, &i)| position == i);
            proptest::prop_assert_eq!(verify(&selection).is_ok(), is_prefix, "{:?}", picks);
        }
    }

    #[test]
    fn the_error_message_says_where_and_how() {
        let (_, mut envelopes) = chain(5);
        envelopes.remove(2);
        let message = verify(&envelopes).unwrap_err().to_string();
        assert_eq!(
            message,
            "evidence chain of appliance \"clinic-1-appliance\" breaks at entry 2 (seq 4): expected seq 3, found seq 4: 1 bundle(s) are missing"
        );
    }
}
