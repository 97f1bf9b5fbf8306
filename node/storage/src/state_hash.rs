//! The state root: a homomorphic multiset hash (LtHash) over every state entry.
//!
//! Each entry `(space, key, value)` is expanded with SHAKE256 into 1,024 16-bit lanes; the
//! state's hash is the lane-wise sum (mod 2^16) over all entries. Writing a key subtracts
//! the old entry and adds the new one, so a block's state root costs O(its writes), not
//! O(the state), and a snapshot can still be checked by summing its entries from scratch.
//! The root published in headers is SHA3-256 over the lanes. See
//! `docs/adr/0004-state-root-lthash.md`.

use pactum_types::Hash;
use pactum_types::hash::sha3_256_parts;
use shake::Shake256;
use shake::digest::{ExtendableOutput, Update, XofReader};

/// Lanes in the hash: 1,024 lanes of 16 bits, as in LtHash16.
pub const LANES: usize = 1024;

/// Bytes in the serialised hash.
pub const BYTES: usize = LANES * 2;

const ENTRY_DOMAIN: &[u8] = b"pactum.state.entry.v1\0";
const ROOT_DOMAIN: &[u8] = b"pactum.state.root.v1\0";

/// The running multiset hash of the state.
#[derive(Clone, PartialEq, Eq)]
pub struct StateHash {
    lanes: Box<[u16; LANES]>,
}

impl std::fmt::Debug for StateHash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "StateHash(root {})", self.root())
    }
}

impl Default for StateHash {
    fn default() -> Self {
        Self { lanes: Box::new([0; LANES]) }
    }
}

impl StateHash {
    /// Adds the entry whose full storage key is `key` with `value`.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        let expanded = expand(key, value);
        for (lane, add) in self.lanes.iter_mut().zip(expanded.iter()) {
            *lane = lane.wrapping_add(*add);
        }
    }

    /// Removes an entry previously inserted with the same key and value.
    pub fn remove(&mut self, key: &[u8], value: &[u8]) {
        let expanded = expand(key, value);
        for (lane, sub) in self.lanes.iter_mut().zip(expanded.iter()) {
            *lane = lane.wrapping_sub(*sub);
        }
    }

    /// The 32-byte root published in block headers.
    pub fn root(&self) -> Hash {
        sha3_256_parts(&[ROOT_DOMAIN, &self.to_bytes()])
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.lanes.iter().flat_map(|lane| lane.to_le_bytes()).collect()
    }

    /// Reads a hash written by [`StateHash::to_bytes`]; `None` if the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != BYTES {
            return None;
        }
        let mut lanes = Box::new([0u16; LANES]);
        for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([chunk[0], chunk[1]]);
        }
        Some(Self { lanes })
    }
}

fn expand(key: &[u8], value: &[u8]) -> [u16; LANES] {
    let mut xof = Shake256::default();
    xof.update(ENTRY_DOMAIN);
    xof.update(&(key.len() as u64).to_be_bytes());
    xof.update(key);
    xof.update(&(value.len() as u64).to_be_bytes());
    xof.update(value);
    let mut reader = xof.finalize_xof();
    let mut bytes = [0u8; BYTES];
    reader.read(&mut bytes);
    let mut lanes = [0u16; LANES];
    for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
        *lane = u16::from_le_bytes([chunk[0], chunk[1]]);
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_insertion_does_not_matter() {
        let mut forward = StateHash::default();
        forward.insert(b"a", b"1");
        forward.insert(b"b", b"2");
        let mut backward = StateHash::default();
        backward.insert(b"b", b"2");
        backward.insert(b"a", b"1");
        assert_eq!(forward.root(), backward.root());
    }

    #[test]
    fn remove_undoes_insert() {
        let empty = StateHash::default();
        let mut state = StateHash::default();
        state.insert(b"a", b"1");
        assert_ne!(state.root(), empty.root());
        state.remove(b"a", b"1");
        assert_eq!(state.root(), empty.root());
    }

    #[test]
    fn key_and_value_boundaries_are_unambiguous() {
        let mut left = StateHash::default();
        left.insert(b"ab", b"c");
        let mut right = StateHash::default();
        right.insert(b"a", b"bc");
        assert_ne!(left.root(), right.root());
    }

    #[test]
    fn bytes_round_trip() {
        let mut state = StateHash::default();
        state.insert(b"k", b"v");
        assert_eq!(StateHash::from_bytes(&state.to_bytes()), Some(state));
        assert_eq!(StateHash::from_bytes(&[0; 3]), None);
    }
}
