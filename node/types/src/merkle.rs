//! Binary Merkle roots with domain-separated leaves and inner nodes.
//!
//! - leaf node:  `SHA3-256(0x00 || leaf)`
//! - inner node: `SHA3-256(0x01 || left || right)`
//! - empty list: `SHA3-256(0x02)`
//!
//! A list of `n > 1` leaves splits at the largest power of two below `n` (the shape of
//! RFC 6962's Merkle tree hash). No node is ever duplicated to fill a level, so the
//! CVE-2012-2459 ambiguity, where `[a, b, c]` and `[a, b, c, c]` shared a root, cannot
//! arise; and since leaves and inner nodes are hashed under different tags, a leaf can
//! never be mistaken for an inner node (the second-preimage trick on unbalanced trees).

use crate::hash::{Hash, sha3_256, sha3_256_parts};

const LEAF_TAG: u8 = 0x00;
const INNER_TAG: u8 = 0x01;
const EMPTY_TAG: u8 = 0x02;

/// The hash of one leaf.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    sha3_256_parts(&[&[LEAF_TAG], leaf])
}

fn inner_hash(left: &Hash, right: &Hash) -> Hash {
    sha3_256_parts(&[&[INNER_TAG], &left.0, &right.0])
}

/// The Merkle root of `leaves`, in order.
pub fn root<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
    if leaves.is_empty() {
        return sha3_256(&[EMPTY_TAG]);
    }
    let hashes: Vec<Hash> = leaves.iter().map(|leaf| leaf_hash(leaf.as_ref())).collect();
    subtree_root(&hashes)
}

/// The root over already-hashed leaves (each from [`leaf_hash`]).
fn subtree_root(hashes: &[Hash]) -> Hash {
    match hashes.len() {
        0 => unreachable!("empty lists are handled by `root`"),
        1 => hashes[0],
        length => {
            let split = largest_power_of_two_below(length);
            inner_hash(&subtree_root(&hashes[..split]), &subtree_root(&hashes[split..]))
        }
    }
}

/// The largest power of two strictly less than `length` (for `length >= 2`).
fn largest_power_of_two_below(length: usize) -> usize {
    debug_assert!(length >= 2);
    let power = length.next_power_of_two() / 2;
    if power == length { power / 2 } else { power }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_follow_rfc_6962() {
        assert_eq!(largest_power_of_two_below(2), 1);
        assert_eq!(largest_power_of_two_below(3), 2);
        assert_eq!(largest_power_of_two_below(4), 2);
        assert_eq!(largest_power_of_two_below(5), 4);
        assert_eq!(largest_power_of_two_below(8), 4);
        assert_eq!(largest_power_of_two_below(9), 8);
    }

    #[test]
    fn duplicated_last_leaf_changes_the_root() {
        let three: Vec<&[u8]> = vec![b"a", b"b", b"c"];
        let four: Vec<&[u8]> = vec![b"a", b"b", b"c", b"c"];
        assert_ne!(root(&three), root(&four));
    }

    #[test]
    fn single_leaf_root_is_its_leaf_hash_and_differs_from_empty() {
        let one: Vec<&[u8]> = vec![b""];
        let none: Vec<&[u8]> = vec![];
        assert_eq!(root(&one), leaf_hash(b""));
        assert_ne!(root(&one), root(&none));
    }

    #[test]
    fn inner_node_is_not_a_valid_leaf() {
        // A two-leaf root equals inner(leaf(a), leaf(b)); presenting the 64 bytes of the two
        // child hashes as a single leaf must not give the same root.
        let pair: Vec<&[u8]> = vec![b"a", b"b"];
        let concatenated = [leaf_hash(b"a").0, leaf_hash(b"b").0].concat();
        assert_ne!(root(&pair), root(&[concatenated]));
    }
}
