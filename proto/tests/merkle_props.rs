//! The Merkle log against a literal transcription of RFC 6962's recursive definitions, for every
//! small size, plus tamper properties and a log of a million entries.

use std::sync::OnceLock;

use osc_proto::merkle::{
    EMPTY_ROOT, Hash, MerkleTree, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

/// The largest size checked exhaustively and by the properties.
const MAX_SIZE: u64 = 300;

/// Distinct leaf hashes; their values do not matter to the tree, only that they differ.
fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// One tree of `MAX_SIZE` leaves: every smaller size is a past size of it, which is exactly how
/// central answers proofs for older tree heads.
fn tree() -> &'static MerkleTree {
    static TREE: OnceLock<MerkleTree> = OnceLock::new();
    TREE.get_or_init(|| leaves(MAX_SIZE).into_iter().collect())
}

/// RFC 6962 §2.1, transcribed without cleverness: the oracle the tree is compared with.
mod rfc {
    use super::*;

    fn k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    pub fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => EMPTY_ROOT,
            1 => d[0],
            n => node_hash(&mth(&d[..k(n)]), &mth(&d[k(n)..])),
        }
    }

    pub fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = k(n);
        let (mut proof, other) = if m < k {
            (path(m, &d[..k]), mth(&d[k..]))
        } else {
            (path(m - k, &d[k..]), mth(&d[..k]))
        };
        proof.push(other);
        proof
    }

    pub fn proof(m: usize, d: &[Hash]) -> Vec<Hash> {
        if m == 0 || m == d.len() {
            return Vec::new();
        }
        subproof(m, d, true)
    }

    fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(d)] };
        }
        let k = k(n);
        let (mut proof, other) = if m <= k {
            (subproof(m, &d[..k], b), mth(&d[k..]))
        } else {
            (subproof(m - k, &d[k..], false), mth(&d[..k]))
        };
        proof.push(other);
        proof
    }
}

#[test]
fn roots_and_proofs_equal_the_rfc_definitions_for_every_size_up_to_64() {
    let all = leaves(64);
    let tree: MerkleTree = all.iter().copied().collect();
    for n in 0..=64 {
        let d = &all[..n];
        let size = n as u64;
        assert_eq!(tree.root_at(size).unwrap(), rfc::mth(d), "root of {n}");
        for m in 0..n {
            let proof = tree.inclusion_proof(m as u64, size).unwrap();
            assert_eq!(proof.hashes, rfc::path(m, d), "PATH({m}, D[{n}])");
        }
        for m in 0..=n {
            let proof = tree.consistency_proof(m as u64, size).unwrap();
            assert_eq!(proof.hashes, rfc::proof(m, d), "PROOF({m}, D[{n}])");
        }
    }
}

#[test]
fn every_inclusion_and_consistency_proof_verifies_up_to_max_size() {
    let tree = tree();
    let all = leaves(MAX_SIZE);
    for size in 0..=MAX_SIZE {
        let root = tree.root_at(size).unwrap();
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).unwrap();
            proof
                .verify(&all[index as usize], &root)
                .unwrap_or_else(|e| panic!("inclusion {index} in {size}: {e}"));
        }
        for old in 0..=size {
            let proof = tree.consistency_proof(old, size).unwrap();
            proof
                .verify(&tree.root_at(old).unwrap(), &root)
                .unwrap_or_else(|e| panic!("consistency {old} -> {size}: {e}"));
        }
    }
}

/// A size in `1..=MAX_SIZE` and an index below it.
fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1..=MAX_SIZE).prop_flat_map(|size| (Just(size), 0..size))
}

/// A new size in `1..=MAX_SIZE` and an old size up to it.
fn old_and_new() -> impl Strategy<Value = (u64, u64)> {
    (1..=MAX_SIZE).prop_flat_map(|new| (0..=new, Just(new)))
}

fn flip(hash: &Hash, byte: prop::sample::Index, bits: u8) -> Hash {
    let mut out = *hash;
    out[byte.index(32)] ^= bits;
    out
}

proptest! {
    #[test]
    fn a_flipped_byte_anywhere_breaks_an_inclusion_proof(
        (size, index) in size_and_index(),
        target in 0..3u8,
        at in any::<prop::sample::Index>(),
        byte in any::<prop::sample::Index>(),
        bits in 1..=255u8,
    ) {
        let tree = tree();
        let root = tree.root_at(size).unwrap();
        let leaf = leaves(MAX_SIZE)[index as usize];
        let mut proof = tree.inclusion_proof(index, size).unwrap().hashes;
        let (leaf, root) = match target {
            0 if !proof.is_empty() => {
                let i = at.index(proof.len());
                proof[i] = flip(&proof[i], byte, bits);
                (leaf, root)
            }
            1 => (flip(&leaf, byte, bits), root),
            _ => (leaf, flip(&root, byte, bits)),
        };
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_err());
    }

    #[test]
    fn an_inclusion_proof_verifies_only_for_its_own_index_and_size(
        (size, index) in size_and_index(),
        (other_size, other_index) in size_and_index(),
    ) {
        let tree = tree();
        let leaf = leaves(MAX_SIZE)[index as usize];
        let proof = tree.inclusion_proof(index, size).unwrap().hashes;
        prop_assume!((other_index, other_size) != (index, size));
        // Each tree head is checked against its own root, as a verifier holding that head would.
        let other_root = tree.root_at(other_size).unwrap();
        prop_assert!(verify_inclusion(&leaf, other_index, other_size, &proof, &other_root).is_err());
    }

    #[test]
    fn a_flipped_byte_anywhere_breaks_a_consistency_proof(
        (old, new) in old_and_new(),
        target in 0..3u8,
        at in any::<prop::sample::Index>(),
        byte in any::<prop::sample::Index>(),
        bits in 1..=255u8,
    ) {
        let tree = tree();
        let (mut old_root, mut new_root) = (tree.root_at(old).unwrap(), tree.root_at(new).unwrap());
        let mut proof = tree.consistency_proof(old, new).unwrap().hashes;
        match target {
            0 if !proof.is_empty() => {
                let i = at.index(proof.len());
                proof[i] = flip(&proof[i], byte, bits);
            }
            1 => old_root = flip(&old_root, byte, bits),
            _ => new_root = flip(&new_root, byte, bits),
        }
        // Growing from the empty tree proves nothing about the new root, so the only tamper
        // that can be caught there is one to the old root.
        prop_assume!(old != 0 || target == 1);
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof).is_err());
    }

    #[test]
    fn a_consistency_proof_verifies_only_for_sizes_it_was_made_for(
        (old, new) in old_and_new(),
        (other_old, other_new) in old_and_new(),
    ) {
        let tree = tree();
        let proof = tree.consistency_proof(old, new).unwrap().hashes;
        // Distinct size pairs can share a proof: every (0, n) and (n, n) proof is empty.
        prop_assume!(tree.consistency_proof(other_old, other_new).unwrap().hashes != proof);
        let (old_root, new_root) =
            (tree.root_at(other_old).unwrap(), tree.root_at(other_new).unwrap());
        prop_assert!(verify_consistency(other_old, other_new, &old_root, &new_root, &proof).is_err());
    }
}

#[test]
fn a_log_of_a_million_entries_answers_for_past_sizes() {
    const N: u64 = 1_000_003;
    // The tree takes leaf hashes as given, so cheap distinct values stand in for hashed entries.
    let leaf = |i: u64| -> Hash {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&i.to_be_bytes());
        h
    };
    let tree: MerkleTree = (0..N).map(leaf).collect();
    assert_eq!(tree.len(), N);
    let root = tree.root();
    for (index, size) in [(0, N), (N - 1, N), (524_287, 524_289), (777_777, 999_999)] {
        let proof = tree.inclusion_proof(index, size).unwrap();
        assert!(proof.hashes.len() <= 20, "audit path is logarithmic");
        proof
            .verify(&leaf(index), &tree.root_at(size).unwrap())
            .unwrap();
    }
    for old in [1, 2, 3, 524_288, 524_289, 999_999, N] {
        let proof = tree.consistency_proof(old, N).unwrap();
        proof.verify(&tree.root_at(old).unwrap(), &root).unwrap();
    }
}
