//! The Merkle log against published RFC 6962 test vectors, its edge cases, and its wire format.

use chrono::DateTime;
use osc_proto::dsse::{Signer, pae};
use osc_proto::merkle::{
    ConsistencyProof, EMPTY_ROOT, Hash, InclusionProof, MerkleError, MerkleTree, SignedTreeHead,
    TREE_HEAD_PAYLOAD_TYPE, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The vectors file: see its `source` field for where the values come from.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vectors {
    leaves: Vec<String>,
    roots_by_size: Vec<String>,
    inclusion: Vec<InclusionVector>,
    consistency: Vec<ConsistencyVector>,
}

#[derive(Deserialize)]
struct InclusionVector {
    index: u64,
    size: u64,
    path: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyVector {
    old_size: u64,
    new_size: u64,
    proof: Vec<String>,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("data/rfc6962_vectors.json")).expect("vectors file parses")
}

fn h(text: &str) -> Hash {
    hex::decode(text)
        .expect("vector is hex")
        .try_into()
        .expect("vector is 32 bytes")
}

fn hashes(texts: &[String]) -> Vec<Hash> {
    texts.iter().map(|t| h(t)).collect()
}

/// The eight-leaf reference tree, and its roots indexed by size.
fn reference_tree() -> (MerkleTree, Vec<Hash>) {
    let v = vectors();
    let tree = v
        .leaves
        .iter()
        .map(|leaf| leaf_hash(&hex::decode(leaf).expect("leaf is hex")))
        .collect();
    (tree, hashes(&v.roots_by_size))
}

#[test]
fn empty_root_is_sha256_of_nothing() {
    let digest: Hash = Sha256::digest(b"").into();
    assert_eq!(EMPTY_ROOT, digest);
    assert_eq!(MerkleTree::new().root(), EMPTY_ROOT);
    assert_eq!(reference_tree().1[0], EMPTY_ROOT);
}

#[test]
fn leaf_and_node_hashes_use_the_rfc_prefixes() {
    let (_, roots) = reference_tree();
    // A one-leaf tree's root is the leaf hash of "", and a two-leaf root joins two leaf hashes.
    assert_eq!(leaf_hash(b""), roots[1]);
    assert_eq!(node_hash(&leaf_hash(b""), &leaf_hash(&[0x00])), roots[2]);
}

#[test]
fn roots_match_the_vectors_while_growing_and_for_past_sizes() {
    let (full, roots) = reference_tree();
    let mut growing = MerkleTree::new();
    for (size, leaf) in vectors().leaves.iter().enumerate() {
        assert_eq!(
            growing.root(),
            roots[size],
            "root of size {size} while growing"
        );
        assert_eq!(
            growing.push(leaf_hash(&hex::decode(leaf).unwrap())),
            size as u64
        );
    }
    assert_eq!(growing, full);
    for (size, root) in roots.iter().enumerate() {
        assert_eq!(&full.root_at(size as u64).unwrap(), root, "root_at({size})");
    }
}

#[test]
fn inclusion_proofs_match_the_vectors_and_verify() {
    let (tree, roots) = reference_tree();
    let v = vectors();
    for case in &v.inclusion {
        let expected = hashes(&case.path);
        let proof = tree.inclusion_proof(case.index, case.size).unwrap();
        assert_eq!(
            proof.hashes, expected,
            "proof of {} in {}",
            case.index, case.size
        );
        let leaf = leaf_hash(&hex::decode(&v.leaves[case.index as usize]).unwrap());
        verify_inclusion(
            &leaf,
            case.index,
            case.size,
            &expected,
            &roots[case.size as usize],
        )
        .unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_vectors_and_verify() {
    let (tree, roots) = reference_tree();
    for case in &vectors().consistency {
        let expected = hashes(&case.proof);
        let proof = tree
            .consistency_proof(case.old_size, case.new_size)
            .unwrap();
        assert_eq!(
            proof.hashes, expected,
            "proof {} -> {}",
            case.old_size, case.new_size
        );
        verify_consistency(
            case.old_size,
            case.new_size,
            &roots[case.old_size as usize],
            &roots[case.new_size as usize],
            &expected,
        )
        .unwrap();
    }
}

#[test]
fn a_one_leaf_tree_proves_inclusion_with_an_empty_path() {
    let leaf = leaf_hash(b"data");
    let tree: MerkleTree = [leaf].into_iter().collect();
    assert_eq!(tree.root(), leaf);
    assert!(tree.inclusion_proof(0, 1).unwrap().hashes.is_empty());
    verify_inclusion(&leaf, 0, 1, &[], &leaf).unwrap();
    assert!(matches!(
        verify_inclusion(&leaf, 0, 1, &[], &EMPTY_ROOT),
        Err(MerkleError::InclusionMismatch { index: 0, size: 1 })
    ));
}

/// Whether an error is the expected kind.
type Expect = fn(&MerkleError) -> bool;

#[test]
fn provers_refuse_impossible_requests() {
    let (tree, _) = reference_tree();
    let beyond: Expect = |e| {
        matches!(
            e,
            MerkleError::SizeBeyondLog {
                size: 9,
                log_size: 8
            }
        )
    };
    let out_of_range: Expect = |e| matches!(e, MerkleError::IndexOutOfRange { .. });
    let cases: [(&str, Result<(), MerkleError>, Expect); 7] = [
        ("root beyond log", tree.root_at(9).map(drop), beyond),
        (
            "inclusion beyond log",
            tree.inclusion_proof(0, 9).map(drop),
            beyond,
        ),
        (
            "consistency beyond log",
            tree.consistency_proof(1, 9).map(drop),
            beyond,
        ),
        (
            "inclusion in empty tree",
            tree.inclusion_proof(0, 0).map(drop),
            out_of_range,
        ),
        (
            "index == size",
            tree.inclusion_proof(5, 5).map(drop),
            out_of_range,
        ),
        (
            "inclusion in a never-filled tree",
            MerkleTree::new().inclusion_proof(0, 0).map(drop),
            out_of_range,
        ),
        ("old > new", tree.consistency_proof(6, 5).map(drop), |e| {
            matches!(
                e,
                MerkleError::OldSizeAfterNewSize {
                    old_size: 6,
                    new_size: 5
                }
            )
        }),
    ];
    for (name, result, expect) in cases {
        let err = result.expect_err(name);
        assert!(expect(&err), "{name}: unexpected {err:?}");
    }
}

#[test]
fn consistency_from_empty_or_to_the_same_size_is_an_empty_proof() {
    let (tree, roots) = reference_tree();
    for (old, new) in [(0, 0), (0, 1), (0, 8), (1, 1), (5, 5), (8, 8)] {
        assert!(
            tree.consistency_proof(old, new).unwrap().hashes.is_empty(),
            "{old} -> {new}"
        );
        verify_consistency(old, new, &roots[old as usize], &roots[new as usize], &[])
            .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
    }
}

#[test]
fn verifiers_refuse_malformed_requests() {
    let (_, r) = reference_tree();
    let x = leaf_hash(b"some");
    let out_of_range: Expect = |e| matches!(e, MerkleError::IndexOutOfRange { .. });
    let consistency_length: Expect = |e| matches!(e, MerkleError::ConsistencyProofLength { .. });
    let cases: [(&str, Result<(), MerkleError>, Expect); 8] = [
        (
            "inclusion in empty tree",
            verify_inclusion(&x, 0, 0, &[], &EMPTY_ROOT),
            out_of_range,
        ),
        (
            "index == size",
            verify_inclusion(&x, 3, 3, &[x, x], &x),
            out_of_range,
        ),
        (
            "inclusion path too long",
            verify_inclusion(&x, 0, 1, &[x], &x),
            |e| {
                matches!(
                    e,
                    MerkleError::InclusionProofLength {
                        expected: 0,
                        actual: 1,
                        ..
                    }
                )
            },
        ),
        (
            "old > new",
            verify_consistency(2, 1, &r[2], &r[1], &[]),
            |e| matches!(e, MerkleError::OldSizeAfterNewSize { .. }),
        ),
        (
            "size-0 head with a non-empty root",
            verify_consistency(0, 3, &r[1], &r[3], &[]),
            |e| matches!(e, MerkleError::OldRootMismatch { .. }),
        ),
        (
            "equal sizes, different roots",
            verify_consistency(4, 4, &r[4], &r[5], &[]),
            |e| matches!(e, MerkleError::NewRootMismatch { .. }),
        ),
        (
            "equal sizes, non-empty proof",
            verify_consistency(4, 4, &r[4], &r[4], &[r[4]]),
            consistency_length,
        ),
        (
            "empty proof between different sizes",
            verify_consistency(1, 2, &r[1], &r[2], &[]),
            consistency_length,
        ),
    ];
    for (name, result, expect) in cases {
        let err = result.expect_err(name);
        assert!(expect(&err), "{name}: unexpected {err:?}");
    }
}

#[test]
fn proofs_serialize_as_camel_case_json_with_hex_hashes() {
    let (tree, roots) = reference_tree();
    let inclusion = tree.inclusion_proof(2, 3).unwrap();
    let json = serde_json::to_value(&inclusion).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "leafIndex": 2,
            "treeSize": 3,
            "hashes": ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        })
    );
    let back: InclusionProof = serde_json::from_value(json).unwrap();
    back.verify(&leaf_hash(&[0x10]), &roots[3]).unwrap();

    let consistency = tree.consistency_proof(2, 5).unwrap();
    let json = serde_json::to_string(&consistency).unwrap();
    assert!(json.starts_with(r#"{"oldSize":2,"newSize":5,"hashes":["5f083f0a"#));
    let back: ConsistencyProof = serde_json::from_str(&json).unwrap();
    assert_eq!(back, consistency);
    back.verify(&roots[2], &roots[5]).unwrap();
}

#[test]
fn a_malformed_hash_in_json_is_refused_with_its_position() {
    let err = serde_json::from_str::<ConsistencyProof>(
        r#"{"oldSize":1,"newSize":2,"hashes":["6e340b9c","zz"]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("hash [0]"), "{err}");
    assert!(err.contains("64 hex characters"), "{err}");
}

fn log_key(seed: u8) -> Signer {
    Signer::from_seed(&[seed; 32])
}

fn signed_head() -> SignedTreeHead {
    let (tree, _) = reference_tree();
    let at = DateTime::parse_from_rfc3339("2026-03-01T12:00:00.123456789Z")
        .unwrap()
        .to_utc();
    SignedTreeHead::sign(tree.len(), tree.root(), at, &log_key(7))
}

#[test]
fn a_signed_tree_head_verifies_under_its_log_key() {
    let head = signed_head();
    assert_eq!(head.keyid, log_key(7).keyid());
    head.verify(&log_key(7).public_key()).unwrap();
}

#[test]
fn signed_tree_head_bytes_follow_the_documented_layout() {
    let head = signed_head();
    let mut body = Vec::new();
    body.extend_from_slice(&8u64.to_be_bytes());
    body.extend_from_slice(&1_772_366_400i64.to_be_bytes());
    body.extend_from_slice(&123_456_789u32.to_be_bytes());
    body.extend_from_slice(&head.root);
    assert_eq!(body.len(), 52);
    assert_eq!(head.signed_bytes(), pae(TREE_HEAD_PAYLOAD_TYPE, &body));
    assert!(
        head.signed_bytes()
            .starts_with(b"DSSEv1 39 application/vnd.osiriscare.tree-head.v1 52 ")
    );
}

#[test]
fn an_altered_or_foreign_tree_head_is_refused() {
    let trusted = log_key(7).public_key();
    let signature_fails: Expect = |e| matches!(e, MerkleError::TreeHeadSignature { size: 8, .. });
    let mut cases: Vec<(&str, SignedTreeHead, Expect)> = Vec::new();
    let mut head = signed_head();
    head.root[0] ^= 1;
    cases.push(("altered root", head, signature_fails));
    let mut head = signed_head();
    head.size = 9;
    cases.push(("altered size", head, |e| {
        matches!(e, MerkleError::TreeHeadSignature { size: 9, .. })
    }));
    let mut head = signed_head();
    head.timestamp += chrono::Duration::nanoseconds(1);
    cases.push(("altered timestamp", head, signature_fails));
    let mut head = signed_head();
    head.signature[10] ^= 1;
    cases.push(("altered signature", head, signature_fails));
    let (tree, _) = reference_tree();
    let foreign = SignedTreeHead::sign(8, tree.root(), signed_head().timestamp, &log_key(8));
    cases.push(("signed by another key", foreign.clone(), |e| {
        matches!(e, MerkleError::TreeHeadKeyMismatch { .. })
    }));
    let mut head = foreign;
    head.keyid = log_key(7).keyid().to_owned();
    cases.push((
        "another key's signature under the trusted keyid",
        head,
        signature_fails,
    ));
    for (name, head, expect) in cases {
        let err = head.verify(&trusted).expect_err(name);
        assert!(expect(&err), "{name}: unexpected {err:?}");
    }
}

#[test]
fn a_signed_tree_head_round_trips_through_json() {
    let head = signed_head();
    let json = serde_json::to_value(&head).unwrap();
    assert_eq!(json["size"], 8);
    assert_eq!(json["root"], hex::encode(head.root));
    assert_eq!(json["timestamp"], "2026-03-01T12:00:00.123456789Z");
    assert_eq!(json["keyid"], head.keyid.as_str());
    assert_eq!(
        json["signature"].as_str().unwrap().len(),
        88,
        "base64 of 64 bytes"
    );
    let back: SignedTreeHead = serde_json::from_value(json).unwrap();
    back.verify(&log_key(7).public_key()).unwrap();
    assert_eq!(back, head);

    let mut short = serde_json::to_value(&head).unwrap();
    short["signature"] = "AAAA".into();
    let err = serde_json::from_value::<SignedTreeHead>(short).unwrap_err();
    assert!(err.to_string().contains("64 bytes"), "{err}");
}
