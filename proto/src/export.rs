//! A site's evidence export and its offline verifier: everything an auditor needs to check, without
//! central, that the envelopes are signed by the site's appliances, form unbroken chains, and are in
//! central's append-only log.
//!
//! Central writes one [`EvidenceExport`] per request (`GET /osc/v1/sites/{site}/evidence/export`);
//! `oscctl evidence verify` calls [`verify_export`]. The verifier trusts only the log's public key,
//! which the auditor pins out of band (central publishes it at `GET /osc/v1/log/key`), and,
//! optionally, a tree head it saw earlier: then the export must come with a consistency proof from
//! that head, so central cannot have rewritten the log between the two.
//!
//! The appliances' public keys travel in the export, so a signature proves only that the holder of
//! that key signed; the log's inclusion proofs are what bind the envelopes to what central accepted
//! (and checked against the enrolled keys) at the time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chain::{self, ChainError, ChainHead};
use crate::dsse::{DsseError, Envelope, PublicKey};
use crate::evidence::Sha256Digest;
use crate::merkle::{self, ConsistencyProof, InclusionProof, MerkleError, SignedTreeHead};

/// The export format version this crate writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// A site's evidence over a time range, with the proofs that it is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvidenceExport {
    /// [`EXPORT_VERSION`].
    pub version: u32,
    /// The site whose evidence this is.
    pub site: String,
    /// The range asked for: reconciles that ended at or after `since` ...
    pub since: Option<DateTime<Utc>>,
    /// ... and before `until`.
    pub until: Option<DateTime<Utc>>,
    /// The log's signed head that every inclusion proof is against.
    pub tree_head: SignedTreeHead,
    /// Each appliance with an entry in the export: its key and where its exported chain starts.
    pub appliances: BTreeMap<String, ExportedAppliance>,
    /// The envelopes, in log order.
    pub entries: Vec<ExportedEntry>,
}

/// An appliance of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportedAppliance {
    /// The keys its exported envelopes are signed with, in chain order: each from its `fromSeq`
    /// until the next one's (an appliance enrolled again signs with its new key, and its chain
    /// goes on).
    pub keys: Vec<ExportedKey>,
    /// The link before its first exported entry, or `None` when the export starts at seq 1.
    pub start: Option<ExportedLink>,
}

/// A key an appliance signed with, and from which seq on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportedKey {
    /// The Ed25519 public key, base64: the one central verified the envelopes against when it
    /// accepted them (the appliance's `spec.enrollment.publicKey` at the time).
    pub public_key: String,
    /// The first seq signed with it.
    pub from_seq: u64,
}

/// A chain link named by its seq and payload hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportedLink {
    /// The link's seq.
    pub seq: u64,
    /// SHA-256 of its payload.
    pub payload_hash: Sha256Digest,
}

/// One envelope of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportedEntry {
    /// The appliance that signed it.
    pub appliance: String,
    /// The envelope's JSON text exactly as the log stores it: its leaf is `SHA-256(0x00 || text)`.
    pub envelope: String,
    /// Its place in the log and the proof against the export's tree head.
    pub inclusion: InclusionProof,
}

/// A tree head the verifier saw before, and the proof that the export's head extends it.
#[derive(Debug, Clone, Copy)]
pub struct KnownHead<'a> {
    /// The earlier head (its signature is checked too).
    pub head: &'a SignedTreeHead,
    /// The consistency proof from it to the export's head.
    pub proof: &'a ConsistencyProof,
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedExport {
    /// How many envelopes were checked.
    pub entries: usize,
    /// Each appliance's last verified link.
    pub heads: BTreeMap<String, Option<ChainHead>>,
    /// The size of the verified tree head.
    pub tree_size: u64,
}

/// Why an export does not verify.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The export is of another format version.
    #[error(
        "export version {found} is not supported; this verifier reads version {EXPORT_VERSION}"
    )]
    Version {
        /// The export's version.
        found: u32,
    },
    /// The tree head is not signed by the pinned log key.
    #[error("the export's tree head does not verify against the pinned log key: {0}")]
    TreeHead(#[source] MerkleError),
    /// The earlier head does not verify, or the export's head does not extend it.
    #[error("the export's tree head is not consistent with the head seen before: {0}")]
    Consistency(#[source] MerkleError),
    /// An entry's proof is for another tree size than the export's head.
    #[error(
        "entry {position}: its inclusion proof is for tree size {proof_size}, the export's head has size {head_size}"
    )]
    ProofSize {
        /// The entry's position in the export.
        position: usize,
        /// The proof's tree size.
        proof_size: u64,
        /// The head's size.
        head_size: u64,
    },
    /// An entry is not in the log at its index.
    #[error("entry {position} (log index {log_index}) is not in the log: {source}")]
    Inclusion {
        /// The entry's position in the export.
        position: usize,
        /// The log index it claims.
        log_index: u64,
        /// Why its proof fails.
        #[source]
        source: MerkleError,
    },
    /// Entries are not in increasing log order.
    #[error(
        "entry {position} (log index {log_index}) is not after the entry before it: entries must be in log order"
    )]
    Order {
        /// The entry's position.
        position: usize,
        /// Its log index.
        log_index: u64,
    },
    /// An entry's text is not a DSSE envelope.
    #[error("entry {position} is not a DSSE envelope: {source}")]
    Envelope {
        /// The entry's position.
        position: usize,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// An entry names an appliance the export lists no key for.
    #[error("entry {position} is from appliance {appliance:?}, which the export lists no key for")]
    UnknownAppliance {
        /// The entry's position.
        position: usize,
        /// The appliance.
        appliance: String,
    },
    /// An appliance's keys do not cover its entries in order.
    #[error("the keys listed for appliance {appliance:?} {problem}")]
    Keys {
        /// The appliance.
        appliance: String,
        /// What is wrong with them.
        problem: String,
    },
    /// An appliance's key is not an Ed25519 public key.
    #[error("the key of appliance {appliance:?}: {source}")]
    Key {
        /// The appliance.
        appliance: String,
        /// Why the key does not read.
        #[source]
        source: DsseError,
    },
    /// An appliance's envelopes do not verify as a chain.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A bundle belongs to another site.
    #[error(
        "appliance {appliance:?}'s bundle seq {seq} names site {found:?}, but the export is of site {expected:?}"
    )]
    ForeignSite {
        /// The appliance.
        appliance: String,
        /// The bundle's seq.
        seq: u64,
        /// The export's site.
        expected: String,
        /// The bundle's site.
        found: String,
    },
}

/// Verifies `export` against the pinned `log_key` and, when given, a head seen before: the tree
/// head's signature, each entry's inclusion in it, each appliance's chain (signatures, schema,
/// seq and prev_hash from its stated start), and that every bundle is the export's site's.
pub fn verify_export(
    export: &EvidenceExport,
    log_key: &PublicKey,
    known: Option<KnownHead<'_>>,
) -> Result<VerifiedExport, ExportError> {
    if export.version != EXPORT_VERSION {
        return Err(ExportError::Version {
            found: export.version,
        });
    }
    let head = &export.tree_head;
    head.verify(log_key).map_err(ExportError::TreeHead)?;
    if let Some(known) = known {
        known
            .head
            .verify(log_key)
            .and_then(|()| {
                merkle::verify_consistency(
                    known.head.size,
                    head.size,
                    &known.head.root,
                    &head.root,
                    &known.proof.hashes,
                )
            })
            .map_err(ExportError::Consistency)?;
    }

    let mut per_appliance: BTreeMap<&str, Vec<Envelope>> = BTreeMap::new();
    let mut previous: Option<u64> = None;
    for (position, entry) in export.entries.iter().enumerate() {
        let proof = &entry.inclusion;
        if proof.tree_size != head.size {
            return Err(ExportError::ProofSize {
                position,
                proof_size: proof.tree_size,
                head_size: head.size,
            });
        }
        if previous.is_some_and(|previous| proof.leaf_index <= previous) {
            return Err(ExportError::Order {
                position,
                log_index: proof.leaf_index,
            });
        }
        previous = Some(proof.leaf_index);
        proof
            .verify(&merkle::leaf_hash(entry.envelope.as_bytes()), &head.root)
            .map_err(|source| ExportError::Inclusion {
                position,
                log_index: proof.leaf_index,
                source,
            })?;
        let envelope = serde_json::from_str(&entry.envelope)
            .map_err(|source| ExportError::Envelope { position, source })?;
        if !export.appliances.contains_key(&entry.appliance) {
            return Err(ExportError::UnknownAppliance {
                position,
                appliance: entry.appliance.clone(),
            });
        }
        per_appliance
            .entry(entry.appliance.as_str())
            .or_default()
            .push(envelope);
    }

    let mut heads = BTreeMap::new();
    for (appliance, envelopes) in per_appliance {
        let listed = &export.appliances[appliance];
        let mut head = listed.start.map(|link| ChainHead {
            seq: link.seq,
            payload_hash: link.payload_hash,
        });
        for (offset, envelopes, key) in segments(appliance, listed, &envelopes, head)? {
            let verified =
                chain::verify_chain(envelopes, appliance, &key, head).map_err(|mut error| {
                    error.index += offset;
                    error
                })?;
            if let Some(foreign) = verified
                .bundles
                .iter()
                .find(|verified| verified.bundle.site_id != export.site)
            {
                return Err(ExportError::ForeignSite {
                    appliance: appliance.to_owned(),
                    seq: foreign.bundle.seq,
                    expected: export.site.clone(),
                    found: foreign.bundle.site_id.clone(),
                });
            }
            head = verified.head;
        }
        heads.insert(appliance.to_owned(), head);
    }
    Ok(VerifiedExport {
        entries: export.entries.len(),
        heads,
        tree_size: head.size,
    })
}

/// A run of an appliance's envelopes signed with one key: its offset among them, the run, the key.
type Segment<'a> = (usize, &'a [Envelope], PublicKey);

/// Splits an appliance's envelopes (consecutive seqs after `start`, which the chain check then
/// confirms) into runs signed by one listed key each.
fn segments<'a>(
    appliance: &str,
    listed: &ExportedAppliance,
    envelopes: &'a [Envelope],
    start: Option<ChainHead>,
) -> Result<Vec<Segment<'a>>, ExportError> {
    let problem = |problem: String| ExportError::Keys {
        appliance: appliance.to_owned(),
        problem,
    };
    let first_seq = start.map_or(1, |head| head.seq + 1);
    if listed
        .keys
        .windows(2)
        .any(|pair| pair[0].from_seq >= pair[1].from_seq)
    {
        return Err(problem("are not in increasing fromSeq order".to_owned()));
    }
    if listed
        .keys
        .first()
        .is_none_or(|key| key.from_seq > first_seq)
    {
        return Err(problem(format!(
            "do not cover its first exported seq {first_seq}"
        )));
    }
    let mut runs = Vec::new();
    for (index, key) in listed.keys.iter().enumerate() {
        let until = listed
            .keys
            .get(index + 1)
            .map_or(u64::MAX, |next| next.from_seq);
        // Positions of the seqs this key signs, clamped to the envelopes there are.
        let position = |seq: u64| {
            usize::try_from(seq.saturating_sub(first_seq))
                .unwrap_or(usize::MAX)
                .min(envelopes.len())
        };
        let (from, to) = (position(key.from_seq), position(until));
        if from == to {
            continue;
        }
        let public_key =
            PublicKey::from_base64(&key.public_key).map_err(|source| ExportError::Key {
                appliance: appliance.to_owned(),
                source,
            })?;
        runs.push((from, &envelopes[from..to], public_key));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainBreak, ChainBuilder};
    use crate::dsse::Signer;
    use crate::evidence::tests::sample_bundle;
    use crate::merkle::MerkleTree;

    const SITE: &str = "clinic-1";
    const APPLIANCE: &str = "clinic-1-appliance";

    fn log_key() -> Signer {
        Signer::from_seed(&[1; 32])
    }

    fn appliance_key() -> Signer {
        Signer::from_seed(&[2; 32])
    }

    /// A log of 12 entries, every other one of another site's, around a chain of 6 envelopes,
    /// exported from seq 3 on.
    fn export() -> EvidenceExport {
        exported().0
    }

    /// [`export`] and the log's tree.
    fn exported() -> (EvidenceExport, MerkleTree) {
        let mut builder = ChainBuilder::new(APPLIANCE, appliance_key(), None);
        let mut tree = MerkleTree::new();
        let mut entries = Vec::new();
        let mut start = None;
        for n in 0..6 {
            tree.push(merkle::leaf_hash(format!("other site {n}").as_bytes()));
            let envelope = builder
                .append(crate::evidence::Bundle {
                    bundle_id: format!("bundle-{n}"),
                    ..sample_bundle()
                })
                .unwrap();
            let text = serde_json::to_string(&envelope).unwrap();
            let index = tree.push(merkle::leaf_hash(text.as_bytes()));
            if n == 1 {
                start = builder.head();
            }
            if n >= 2 {
                entries.push((index, text));
            }
        }
        let keys = vec![ExportedKey {
            public_key: appliance_key().public_key().to_base64(),
            from_seq: 1,
        }];
        let export = assemble(&tree, entries, keys, start);
        (export, tree)
    }

    fn verify(export: &EvidenceExport) -> Result<VerifiedExport, ExportError> {
        verify_export(export, &log_key().public_key(), None)
    }

    #[test]
    fn a_faithful_export_verifies_and_survives_json() {
        let export = export();
        let text = serde_json::to_string(&export).unwrap();
        let read: EvidenceExport = serde_json::from_str(&text).unwrap();
        let verified = verify(&read).unwrap();
        assert_eq!(verified.entries, 4);
        assert_eq!(verified.tree_size, 12);
        assert_eq!(verified.heads[APPLIANCE].unwrap().seq, 6);
    }

    #[test]
    fn tampering_anywhere_is_caught() {
        type Tamper = Box<dyn Fn(&mut EvidenceExport)>;
        let cases: Vec<(&str, Tamper)> = vec![
            (
                "payload",
                Box::new(|e| {
                    let text = &e.entries[1].envelope;
                    let mut envelope: Envelope = serde_json::from_str(text).unwrap();
                    let payload = String::from_utf8(envelope.payload).unwrap();
                    envelope.payload = payload.replace("\"healed\"", "\"failed\"").into_bytes();
                    e.entries[1].envelope = serde_json::to_string(&envelope).unwrap();
                }),
            ),
            (
                "envelope bytes",
                Box::new(|e| e.entries[1].envelope.push(' ')),
            ),
            (
                "dropped entry",
                Box::new(|e| {
                    e.entries.remove(1);
                }),
            ),
            ("tree root", Box::new(|e| e.tree_head.root[0] ^= 1)),
            (
                "log index",
                Box::new(|e| e.entries[0].inclusion.leaf_index += 2),
            ),
            (
                "chain start",
                Box::new(|e| e.appliances.get_mut(APPLIANCE).unwrap().start = None),
            ),
            (
                "appliance key",
                Box::new(|e| {
                    e.appliances.get_mut(APPLIANCE).unwrap().keys[0].public_key =
                        log_key().public_key().to_base64()
                }),
            ),
            ("reordered", Box::new(|e| e.entries.swap(0, 1))),
            ("site", Box::new(|e| e.site = "clinic-2".into())),
        ];
        for (name, tamper) in cases {
            let mut export = export();
            tamper(&mut export);
            assert!(verify(&export).is_err(), "{name} was not caught");
        }
    }

    #[test]
    fn a_dropped_entry_is_named_as_a_gap() {
        let mut export = export();
        export.entries.remove(1);
        let error = verify(&export).unwrap_err();
        assert!(
            matches!(
                &error,
                ExportError::Chain(ChainError {
                    kind: ChainBreak::Gap {
                        expected: 4,
                        found: 5
                    },
                    ..
                })
            ),
            "{error}"
        );
    }

    #[test]
    fn a_head_seen_before_must_be_extended() {
        let (export, tree) = exported();
        let key = log_key().public_key();
        let timestamp = export.tree_head.timestamp;
        let old = SignedTreeHead::sign(5, tree.root_at(5).unwrap(), timestamp, &log_key());
        let proof = tree.consistency_proof(5, 12).unwrap();
        let known = KnownHead {
            head: &old,
            proof: &proof,
        };
        verify_export(&export, &key, Some(known)).unwrap();

        // A head of another history of 5 entries: the log was rewritten since.
        let other: MerkleTree = (0..5u8).map(|n| merkle::leaf_hash(&[n])).collect();
        let forged = SignedTreeHead::sign(5, other.root(), timestamp, &log_key());
        let known = KnownHead {
            head: &forged,
            proof: &proof,
        };
        let error = verify_export(&export, &key, Some(known)).unwrap_err();
        assert!(matches!(error, ExportError::Consistency(_)), "{error}");
    }

    /// An export of exactly `envelopes` (the whole log), listing `keys` as (seed, from seq).
    fn export_of(envelopes: &[Envelope], keys: &[(u8, u64)]) -> EvidenceExport {
        let texts: Vec<String> = envelopes
            .iter()
            .map(|envelope| serde_json::to_string(envelope).unwrap())
            .collect();
        let tree: MerkleTree = texts
            .iter()
            .map(|t| merkle::leaf_hash(t.as_bytes()))
            .collect();
        let keys = keys
            .iter()
            .map(|&(seed, from_seq)| ExportedKey {
                public_key: Signer::from_seed(&[seed; 32]).public_key().to_base64(),
                from_seq,
            })
            .collect();
        let entries = (0..).zip(texts).collect();
        assemble(&tree, entries, keys, None)
    }

    /// An export of [`APPLIANCE`]'s `entries` (log index, envelope text) in `tree`, as central
    /// writes one.
    fn assemble(
        tree: &MerkleTree,
        entries: Vec<(u64, String)>,
        keys: Vec<ExportedKey>,
        start: Option<ChainHead>,
    ) -> EvidenceExport {
        let size = tree.len();
        EvidenceExport {
            version: EXPORT_VERSION,
            site: SITE.into(),
            since: None,
            until: None,
            tree_head: SignedTreeHead::sign(
                size,
                tree.root(),
                sample_bundle().timestamp_end,
                &log_key(),
            ),
            appliances: BTreeMap::from([(
                APPLIANCE.to_owned(),
                ExportedAppliance {
                    keys,
                    start: start.map(|head| ExportedLink {
                        seq: head.seq,
                        payload_hash: head.payload_hash,
                    }),
                },
            )]),
            entries: entries
                .into_iter()
                .map(|(index, envelope)| ExportedEntry {
                    appliance: APPLIANCE.into(),
                    envelope,
                    inclusion: tree.inclusion_proof(index, size).unwrap(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_chain_that_changes_keys_verifies_with_each_key_from_its_seq() {
        // Seqs 1-3 signed with key 5; the appliance is enrolled again and signs 4-6 with key 6.
        let mut old = ChainBuilder::new(APPLIANCE, Signer::from_seed(&[5; 32]), None);
        let bundle = |n: usize| crate::evidence::Bundle {
            bundle_id: format!("bundle-{n}"),
            ..sample_bundle()
        };
        let mut envelopes: Vec<Envelope> = (0..3).map(|n| old.append(bundle(n)).unwrap()).collect();
        let mut new = ChainBuilder::new(APPLIANCE, Signer::from_seed(&[6; 32]), old.head());
        envelopes.extend((3..6).map(|n| new.append(bundle(n)).unwrap()));

        let verified = verify(&export_of(&envelopes, &[(5, 1), (6, 4)])).unwrap();
        assert_eq!(verified.heads[APPLIANCE], new.head());
        for (keys, why) in [
            (&[(5, 1)][..], "the new key is missing"),
            (&[(5, 1), (6, 5)][..], "the new key starts a seq too late"),
            (&[(5, 1), (6, 3)][..], "the new key starts a seq too early"),
            (&[(6, 4), (5, 1)][..], "keys out of order"),
            (&[(5, 2), (6, 4)][..], "no key for seq 1"),
        ] {
            assert!(verify(&export_of(&envelopes, keys)).is_err(), "{why}");
        }
    }
}
