//! The evidence log's RFC 6962 Merkle tree: hashing, an append-only tree over leaf hashes,
//! inclusion and consistency proofs, their offline verifiers, and signed tree heads.
//!
//! Central keeps one [`MerkleTree`] per log and answers proofs for any past size, because a
//! verifier holds whatever tree head it saw last; the controller and `oscctl` only call the pure
//! verifiers. Proofs are exactly those of RFC 6962 §2.1.1 and §2.1.2, so any RFC 6962 / RFC 9162
//! verifier accepts them, and verification follows the algorithms of RFC 9162 §2.1.3.2 and
//! §2.1.4.2.
//!
//! Why not the `ct-merkle` crate: its `MemoryBackedTree` stores the leaf *values* and hashes them
//! itself (a tree cannot be rebuilt from stored leaf hashes without holding every evidence
//! payload), it proves inclusion and consistency only against its *current* size (central must
//! answer for past tree heads), its verifiers also want leaf values, and its provers panic on an
//! out-of-range index instead of returning an error. The algorithms are short, so they live here.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dsse::{self, PublicKey, Signer};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The root of the empty tree, `SHA-256("")` (RFC 6962 §2.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The hash of a log entry: `SHA-256(0x00 || data)`.
///
/// The prefix byte keeps a leaf from ever being mistaken for an interior node (second-preimage
/// resistance, RFC 6962 §2.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Why a Merkle proof could not be produced or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    /// A proof or root was asked for a tree size larger than the log holds.
    #[error(
        "tree size {size} is beyond this log, which holds {log_size} entries; ask for a size up to {log_size}"
    )]
    SizeBeyondLog {
        /// The size asked for.
        size: u64,
        /// The number of entries the log holds.
        log_size: u64,
    },
    /// An inclusion proof named a leaf that is not inside the tree (this includes every leaf of
    /// the empty tree).
    #[error(
        "leaf index {index} is outside a tree of size {size}; an inclusion proof needs index < size"
    )]
    IndexOutOfRange {
        /// The zero-based leaf index.
        index: u64,
        /// The tree size the proof is for.
        size: u64,
    },
    /// A consistency proof was asked between an older size larger than the newer one.
    #[error(
        "consistency between sizes {old_size} and {new_size} is undefined: a log only grows, so the old size must not exceed the new one"
    )]
    OldSizeAfterNewSize {
        /// The size of the older tree head.
        old_size: u64,
        /// The size of the newer tree head.
        new_size: u64,
    },
    /// An inclusion proof has the wrong number of hashes for its index and tree size.
    #[error(
        "inclusion proof for leaf {index} in a tree of size {size} has {actual} hashes, but such a proof has {expected}; the proof belongs to another index or size"
    )]
    InclusionProofLength {
        /// The zero-based leaf index.
        index: u64,
        /// The tree size.
        size: u64,
        /// The number of hashes such a proof has.
        expected: usize,
        /// The number of hashes received.
        actual: usize,
    },
    /// An inclusion proof has the right shape but does not lead to the expected root.
    #[error(
        "inclusion proof for leaf {index} in a tree of size {size} does not lead to the expected root: the entry is not in that tree, or the leaf hash, proof or root is wrong"
    )]
    InclusionMismatch {
        /// The zero-based leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof has the wrong number of hashes for its two sizes.
    #[error(
        "consistency proof from size {old_size} to {new_size} has {actual} hashes, but such a proof has {expected}; the proof belongs to other sizes"
    )]
    ConsistencyProofLength {
        /// The size of the older tree head.
        old_size: u64,
        /// The size of the newer tree head.
        new_size: u64,
        /// The number of hashes such a proof has.
        expected: usize,
        /// The number of hashes received.
        actual: usize,
    },
    /// A consistency proof does not reproduce the older root: the older tree head is not a
    /// prefix of the newer log, or the proof or root is wrong.
    #[error(
        "consistency proof from size {old_size} to {new_size} does not reproduce the old root: the log may have been rewritten, or the proof or old root is wrong"
    )]
    OldRootMismatch {
        /// The size of the older tree head.
        old_size: u64,
        /// The size of the newer tree head.
        new_size: u64,
    },
    /// A consistency proof does not reproduce the newer root.
    #[error(
        "consistency proof from size {old_size} to {new_size} does not reproduce the new root: the log may have been rewritten, or the proof or new root is wrong"
    )]
    NewRootMismatch {
        /// The size of the older tree head.
        old_size: u64,
        /// The size of the newer tree head.
        new_size: u64,
    },
    /// A signed tree head names a key other than the one it is checked against.
    #[error(
        "tree head of size {size} is signed by key {keyid}, not by the trusted log key {trusted_keyid}; check which log key is pinned"
    )]
    TreeHeadKeyMismatch {
        /// The tree size of the head.
        size: u64,
        /// The key id the head names.
        keyid: String,
        /// The key id of the trusted log key.
        trusted_keyid: String,
    },
    /// A signed tree head's signature does not verify under the trusted log key.
    #[error(
        "signature of the tree head of size {size} (key {keyid}) does not verify: the head was altered or not signed by this key"
    )]
    TreeHeadSignature {
        /// The tree size of the head.
        size: u64,
        /// The key id the head names.
        keyid: String,
        /// The verifier's reason.
        #[source]
        source: ed25519_dalek::SignatureError,
    },
}

/// An append-only RFC 6962 tree over leaf hashes, answering roots and proofs for every size it
/// has had.
///
/// It holds the hash of every complete subtree (about two hashes per leaf: 64 MiB for a million
/// entries) and never rehashes entries, so central rebuilds it from stored leaf hashes with
/// [`FromIterator`]. Appending hashes amortised O(1) nodes; a root or proof for any size hashes
/// O(log n) nodes, because only the right edge of a tree of that size is incomplete.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[k][i]` is the hash of the complete subtree over leaves `[i·2^k, (i+1)·2^k)`;
    /// `levels[0]` holds the leaf hashes. Only complete subtrees are stored, so an append never
    /// changes a stored hash and every past tree is still described.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash (see [`leaf_hash`]) and returns its zero-based index.
    pub fn push(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.len();
        let mut hash = leaf_hash;
        for level in 0.. {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(hash);
            // An odd count means the new node has no sibling yet, so no parent completes.
            if nodes.len() % 2 == 1 {
                break;
            }
            hash = node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
        }
        index
    }

    /// The root of the tree as it is now.
    pub fn root(&self) -> Hash {
        self.range_hash(0, self.len())
    }

    /// The root the tree had when it held `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        Ok(self.range_hash(0, size))
    }

    /// The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 §2.1.1, `PATH`),
    /// ordered from the leaf's sibling up to the root's other child.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, MerkleError> {
        self.check_size(size)?;
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        // Walk down from the root; each step records the subtree on the side away from the leaf.
        let (mut start, mut end) = (0, size);
        let mut hashes = Vec::new();
        while end - start > 1 {
            let split = start + split_point(end - start);
            if index < split {
                hashes.push(self.range_hash(split, end));
                end = split;
            } else {
                hashes.push(self.range_hash(start, split));
                start = split;
            }
        }
        hashes.reverse();
        Ok(InclusionProof {
            leaf_index: index,
            tree_size: size,
            hashes,
        })
    }

    /// The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size`
    /// leaves (RFC 6962 §2.1.2, `PROOF`); empty when `old_size` is 0 or equals `new_size`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, MerkleError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(MerkleError::OldSizeAfterNewSize { old_size, new_size });
        }
        let mut hashes = Vec::new();
        if old_size > 0 {
            // `SUBPROOF(m, D[start:end], old_root_known)` unrolled: descend towards the old
            // tree's right edge until a subtree ends exactly where the old tree ends.
            let (mut start, mut end) = (0, new_size);
            let mut old_root_known = true;
            while old_size != end {
                let split = start + split_point(end - start);
                if old_size <= split {
                    hashes.push(self.range_hash(split, end));
                    end = split;
                } else {
                    hashes.push(self.range_hash(start, split));
                    start = split;
                    old_root_known = false;
                }
            }
            // The verifier knows the old root itself, so that subtree is only sent when it is
            // a proper part of the old tree.
            if !old_root_known {
                hashes.push(self.range_hash(start, end));
            }
        }
        hashes.reverse();
        Ok(ConsistencyProof {
            old_size,
            new_size,
            hashes,
        })
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        let log_size = self.len();
        if size > log_size {
            return Err(MerkleError::SizeBeyondLog { size, log_size });
        }
        Ok(())
    }

    /// `MTH(D[start:end])` for a range that RFC 6962's recursion produces, i.e. `start` is a
    /// multiple of the smallest power of two not below `end - start`.
    ///
    /// Such a range is a run of complete subtrees, largest first, matching the binary digits of
    /// its width; MTH joins them from the right, so the fold starts at the smallest.
    fn range_hash(&self, start: u64, end: u64) -> Hash {
        let mut width = end - start;
        let mut acc: Option<Hash> = None;
        let mut chunk_end = end;
        while width != 0 {
            let chunk = 1u64 << width.trailing_zeros();
            let subtree = self.complete_subtree(chunk_end - chunk, chunk);
            acc = Some(match acc {
                None => subtree,
                Some(right) => node_hash(&subtree, &right),
            });
            chunk_end -= chunk;
            width -= chunk;
        }
        acc.unwrap_or(EMPTY_ROOT)
    }

    fn complete_subtree(&self, start: u64, width: u64) -> Hash {
        let level = width.trailing_zeros() as usize;
        // Indices stay below a `Vec` length, so they fit in `usize`.
        self.levels[level][(start >> level) as usize]
    }
}

impl std::fmt::Debug for MerkleTree {
    /// Prints the size and root, not the (possibly million) stored hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("len", &self.len())
            .field("root", &hex::encode(self.root()))
            .finish()
    }
}

impl FromIterator<Hash> for MerkleTree {
    fn from_iter<I: IntoIterator<Item = Hash>>(leaf_hashes: I) -> Self {
        let mut tree = Self::new();
        tree.extend(leaf_hashes);
        tree
    }
}

impl Extend<Hash> for MerkleTree {
    fn extend<I: IntoIterator<Item = Hash>>(&mut self, leaf_hashes: I) {
        for leaf_hash in leaf_hashes {
            self.push(leaf_hash);
        }
    }
}

/// An inclusion proof as it crosses the wire; hashes are lowercase hex in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// The zero-based index of the entry in the log.
    pub leaf_index: u64,
    /// The size of the tree head the proof is for.
    pub tree_size: u64,
    /// The audit path, from the leaf's sibling upwards.
    #[serde(with = "hex_hashes")]
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Checks that `leaf_hash` sits at this proof's index in the tree whose root is `root`.
    pub fn verify(&self, leaf_hash: &Hash, root: &Hash) -> Result<(), MerkleError> {
        verify_inclusion(
            leaf_hash,
            self.leaf_index,
            self.tree_size,
            &self.hashes,
            root,
        )
    }
}

/// A consistency proof as it crosses the wire; hashes are lowercase hex in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    /// The size of the older tree head.
    pub old_size: u64,
    /// The size of the newer tree head.
    pub new_size: u64,
    /// The proof's subtree hashes, in RFC 6962 order.
    #[serde(with = "hex_hashes")]
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks that the tree with root `old_root` is a prefix of the tree with root `new_root`.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), MerkleError> {
        verify_consistency(
            self.old_size,
            self.new_size,
            old_root,
            new_root,
            &self.hashes,
        )
    }
}

/// Checks an audit path (RFC 9162 §2.1.3.2): `leaf_hash` is leaf `index` of the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let sides = path_sides(index, size - 1);
    if sides.len() != proof.len() {
        return Err(MerkleError::InclusionProofLength {
            index,
            size,
            expected: sides.len(),
            actual: proof.len(),
        });
    }
    let computed = sides
        .iter()
        .zip(proof)
        .fold(*leaf_hash, |acc, (side, sibling)| side.join(sibling, &acc));
    if computed != *root {
        return Err(MerkleError::InclusionMismatch { index, size });
    }
    Ok(())
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): the tree of `old_size` leaves with root
/// `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.
///
/// The proof is empty when the sizes are equal (then the roots must be equal) and when
/// `old_size` is 0 (then `old_root` must be [`EMPTY_ROOT`]: the empty tree is a prefix of every
/// log, but a non-empty-tree root claimed for size 0 is refused).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldSizeAfterNewSize { old_size, new_size });
    }
    let length_error = |expected: usize| MerkleError::ConsistencyProofLength {
        old_size,
        new_size,
        expected,
        actual: proof.len(),
    };
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(length_error(0));
        }
        if old_size == 0 && *old_root != EMPTY_ROOT {
            return Err(MerkleError::OldRootMismatch { old_size, new_size });
        }
        if old_size == new_size && old_root != new_root {
            return Err(MerkleError::NewRootMismatch { old_size, new_size });
        }
        return Ok(());
    }

    // Node positions as in RFC 9162: skip the levels where the old tree's last node is a right
    // child, since its subtree there is whole in both trees.
    let (mut first, mut second) = (old_size - 1, new_size - 1);
    while first & 1 == 1 {
        first >>= 1;
        second >>= 1;
    }
    let sides = path_sides(first, second);
    // When the old tree is one complete subtree of the new one, its root starts both folds and
    // the proof leaves it out.
    let old_is_subtree = old_size.is_power_of_two();
    let expected = sides.len() + usize::from(!old_is_subtree);
    if proof.len() != expected {
        return Err(length_error(expected));
    }
    let (seed, path) = if old_is_subtree {
        (*old_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let (mut old_acc, mut new_acc) = (seed, seed);
    for (side, hash) in sides.iter().zip(path) {
        // A left sibling lies inside the old tree too; a right sibling only in the new one.
        if *side == Side::Left {
            old_acc = side.join(hash, &old_acc);
        }
        new_acc = side.join(hash, &new_acc);
    }
    if old_acc != *old_root {
        return Err(MerkleError::OldRootMismatch { old_size, new_size });
    }
    if new_acc != *new_root {
        return Err(MerkleError::NewRootMismatch { old_size, new_size });
    }
    Ok(())
}

/// A tree head signed by the log's Ed25519 key: the log vouches that its first `size` entries
/// hash to `root`.
///
/// The signature is Ed25519 over [`SignedTreeHead::signed_bytes`]: DSSE's pre-authentication
/// encoding ([`dsse::pae`]) of the type [`TREE_HEAD_PAYLOAD_TYPE`] and a fixed 52-byte body, so
/// no JSON canonicalisation is involved and a tree-head signature can never pass as a signature
/// over any other kind of document. The body is `size` as a big-endian u64, the timestamp as
/// big-endian i64 seconds and u32 nanoseconds since the Unix epoch, then the 32-byte root. The
/// key id is not signed: it only says which pinned key to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTreeHead {
    /// The number of entries the head covers.
    pub size: u64,
    /// The Merkle root of those entries, lowercase hex in JSON.
    #[serde(with = "hex_hash")]
    pub root: Hash,
    /// When the log signed the head; RFC 3339 in JSON.
    pub timestamp: DateTime<Utc>,
    /// The DSSE key id of the log key ([`dsse::PublicKey::keyid`]), so a verifier can pick the
    /// pinned key.
    pub keyid: String,
    /// The Ed25519 signature over [`SignedTreeHead::signed_bytes`], base64 in JSON.
    #[serde(with = "base64_signature")]
    pub signature: [u8; 64],
}

/// The type bound into a tree-head signature by the DSSE pre-authentication encoding.
pub const TREE_HEAD_PAYLOAD_TYPE: &str = "application/vnd.osiriscare.tree-head.v1";

impl SignedTreeHead {
    /// Signs the head of a tree of `size` entries with root `root`.
    pub fn sign(size: u64, root: Hash, timestamp: DateTime<Utc>, log_key: &Signer) -> Self {
        let mut head = SignedTreeHead {
            size,
            root,
            timestamp,
            keyid: log_key.keyid().to_owned(),
            signature: [0; 64],
        };
        head.signature = log_key.signing_key().sign(&head.signed_bytes()).to_bytes();
        head
    }

    /// The exact bytes the signature covers (layout in the type's documentation).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(52);
        body.extend_from_slice(&self.size.to_be_bytes());
        body.extend_from_slice(&self.timestamp.timestamp().to_be_bytes());
        body.extend_from_slice(&self.timestamp.timestamp_subsec_nanos().to_be_bytes());
        body.extend_from_slice(&self.root);
        dsse::pae(TREE_HEAD_PAYLOAD_TYPE, &body)
    }

    /// Checks that the pinned log key signed this head.
    pub fn verify(&self, log_key: &PublicKey) -> Result<(), MerkleError> {
        if self.keyid != log_key.keyid() {
            return Err(MerkleError::TreeHeadKeyMismatch {
                size: self.size,
                keyid: self.keyid.clone(),
                trusted_keyid: log_key.keyid().to_owned(),
            });
        }
        log_key
            .verifying_key()
            .verify_strict(
                &self.signed_bytes(),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|source| MerkleError::TreeHeadSignature {
                size: self.size,
                keyid: self.keyid.clone(),
                source,
            })
    }
}

/// Where a proof hash sits relative to the running hash at one level of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The proof hash is the left sibling.
    Left,
    /// The proof hash is the right sibling.
    Right,
}

impl Side {
    fn join(self, sibling: &Hash, acc: &Hash) -> Hash {
        match self {
            Side::Left => node_hash(sibling, acc),
            Side::Right => node_hash(acc, sibling),
        }
    }
}

/// The sides of the proof hashes on the path from node `first` to the root of a tree whose
/// last node at that level is `last` (the `fn`/`sn` walk of RFC 9162 §2.1.3.2). Its length is
/// the number of hashes a valid proof has.
fn path_sides(mut first: u64, mut last: u64) -> Vec<Side> {
    let mut sides = Vec::new();
    while last != 0 {
        if first & 1 == 1 || first == last {
            sides.push(Side::Left);
            // A last node without a right sibling climbs levels without hashing.
            while first & 1 == 0 && first != 0 {
                first >>= 1;
                last >>= 1;
            }
        } else {
            sides.push(Side::Right);
        }
        first >>= 1;
        last >>= 1;
    }
    sides
}

/// The largest power of two strictly below `width` (RFC 6962's `k`); `width` is at least 2.
fn split_point(width: u64) -> u64 {
    1 << (u64::BITS - 1 - (width - 1).leading_zeros())
}

/// Serde for a list of hashes as lowercase hex strings.
mod hex_hashes {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hashes.iter().map(hex::encode))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .enumerate()
            .map(|(i, text)| {
                super::hex_hash::parse(text)
                    .map_err(|e| D::Error::custom(format!("hash [{i}]: {e}")))
            })
            .collect()
    }
}

/// Serde for one hash as a lowercase hex string; the release manifest's image digest uses it
/// too.
pub(crate) mod hex_hash {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }

    pub(super) fn parse(text: &str) -> Result<Hash, String> {
        let mut hash = [0; 32];
        hex::decode_to_slice(text, &mut hash).map_err(|e| {
            format!("expected a SHA-256 digest as 64 hex characters, got {text:?}: {e}")
        })?;
        Ok(hash)
    }
}

/// Serde for an Ed25519 signature as standard base64, as DSSE writes signatures.
mod base64_signature {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(sig))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD
            .decode(&text)
            .map_err(|e| D::Error::custom(format!("signature is not base64: {e}")))?;
        bytes.try_into().map_err(|bytes: Vec<u8>| {
            D::Error::custom(format!(
                "an Ed25519 signature has 64 bytes, this one has {}",
                bytes.len()
            ))
        })
    }
}
