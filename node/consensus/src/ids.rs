//! The protocol's numbers as types: a [`View`] and a [`Sequence`] number cannot be mixed
//! up with each other or with a count.

use std::fmt;

use pactum_types::codec::{Decode, DecodeError, Encode, Reader, write};

/// A replica's index in the validator set: replica `i` is the `i`-th validator.
pub type ReplicaId = u16;

/// A PBFT view (§4.1): view `v` has primary `v mod n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct View(pub u64);

/// A PBFT sequence number (§4.2): the position of a batch in the total order, which is
/// also the height of the block it becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sequence(pub u64);

impl View {
    pub const ZERO: View = View(0);

    pub fn next(self) -> View {
        View(self.0.saturating_add(1))
    }

    /// The view `count` views above this one.
    pub fn plus(self, count: u64) -> View {
        View(self.0.saturating_add(count))
    }
}

impl Sequence {
    pub const ZERO: Sequence = Sequence(0);

    pub fn next(self) -> Sequence {
        Sequence(self.0.saturating_add(1))
    }

    /// The sequence number `count` above this one.
    pub fn plus(self, count: u64) -> Sequence {
        Sequence(self.0.saturating_add(count))
    }

    /// Whether this is a checkpoint of interval `interval` (and not the genesis).
    pub fn is_checkpoint(self, interval: u64) -> bool {
        self.0 != 0 && self.0.is_multiple_of(interval)
    }
}

impl fmt::Display for View {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl Encode for View {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.0);
    }
}

impl Decode for View {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(View(reader.u64("view")?))
    }
}

impl Encode for Sequence {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.0);
    }
}

impl Decode for Sequence {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Sequence(reader.u64("sequence")?))
    }
}

/// A signer and its signature, as certificates hold them.
pub type SignerSignature = (ReplicaId, pactum_types::Signature);

pub(crate) fn encode_signers(out: &mut Vec<u8>, signers: &[SignerSignature]) {
    write::length(out, signers.len());
    for (signer, signature) in signers {
        write::u16(out, *signer);
        signature.encode_to(out);
    }
}

pub(crate) fn decode_signers(
    reader: &mut Reader<'_>,
    what: &'static str,
) -> Result<Vec<SignerSignature>, DecodeError> {
    let count = reader.length(pactum_types::limits::VALIDATORS_MAX, what)?;
    let mut signers = Vec::with_capacity(count);
    for _ in 0..count {
        signers.push((reader.u16("signer")?, pactum_types::Signature::decode_from(reader)?));
    }
    Ok(signers)
}
