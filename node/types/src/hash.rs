//! SHA3-256 hashing and the 32-byte `Hash` type.

use std::fmt;

use sha3::{Digest, Sha3_256};

use crate::codec::{Decode, DecodeError, Encode, Reader};

/// A SHA3-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash, used where no predecessor exists (the parent of the first block).
    pub const ZERO: Hash = Hash([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Hash({})", self.to_hex())
    }
}

impl Encode for Hash {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for Hash {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Hash(reader.array("hash")?))
    }
}

/// SHA3-256 of `data`.
pub fn sha3_256(data: &[u8]) -> Hash {
    Hash(Sha3_256::digest(data).into())
}

/// SHA3-256 of the concatenation of `parts`, without copying them together first.
pub fn sha3_256_parts(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha3_256::new();
    for part in parts {
        hasher.update(part);
    }
    Hash(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha3_256_matches_the_fips_202_empty_string_vector() {
        assert_eq!(
            sha3_256(b"").to_hex(),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
    }

    #[test]
    fn parts_hash_like_their_concatenation() {
        assert_eq!(sha3_256_parts(&[b"pac", b"tum"]), sha3_256(b"pactum"));
    }
}
