//! The canonical encoding of consensus-log [`Record`]s, and which records a stable
//! checkpoint makes obsolete. The node writes records to its consensus log with this
//! encoding; the simulator applies the same pruning rule.

use pactum_types::codec::{Decode, DecodeError, Encode, Reader, write};
use pactum_types::{Hash, limits};

use crate::message::{Message, Sequence, SignedMessage};
use crate::replica::Record;

/// The format of an encoded record: its first byte. A new format gets a new number.
pub const RECORD_FORMAT_VERSION: u8 = 1;

impl Encode for Record {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, RECORD_FORMAT_VERSION);
        match self {
            Record::Sent(message) => {
                write::u8(out, 1);
                message.encode_to(out);
            }
            Record::Accepted(message) => {
                write::u8(out, 2);
                message.encode_to(out);
            }
            Record::Stable { sequence, state_digest, proof } => {
                write::u8(out, 3);
                write::u64(out, *sequence);
                state_digest.encode_to(out);
                write::sequence(out, proof);
            }
        }
    }
}

impl Decode for Record {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8("consensus record version")?;
        if version != RECORD_FORMAT_VERSION {
            return Err(DecodeError::UnknownTag { what: "consensus record version", tag: version });
        }
        match reader.u8("consensus record")? {
            1 => Ok(Record::Sent(SignedMessage::decode_from(reader)?)),
            2 => Ok(Record::Accepted(SignedMessage::decode_from(reader)?)),
            3 => Ok(Record::Stable {
                sequence: reader.u64("sequence")?,
                state_digest: Hash::decode_from(reader)?,
                proof: reader.sequence(limits::VALIDATORS_MAX, "checkpoint proof")?,
            }),
            tag => Err(DecodeError::UnknownTag { what: "consensus record", tag }),
        }
    }
}

impl Record {
    /// The sequence number a record is about, if it is bound to one.
    pub fn sequence(&self) -> Option<Sequence> {
        let message = match self {
            Record::Sent(message) | Record::Accepted(message) => message,
            Record::Stable { sequence, .. } => return Some(*sequence),
        };
        match message.message {
            Message::PrePrepare { sequence, .. }
            | Message::Prepare { sequence, .. }
            | Message::Commit { sequence, .. }
            | Message::Checkpoint { sequence, .. } => Some(sequence),
            Message::ViewChange { .. } | Message::NewView { .. } | Message::Suspect { .. } => None,
        }
    }

    /// Whether a stable checkpoint at `stable` makes this record unnecessary for
    /// recovery: votes and PRE-PREPAREs at or below it, and older stable checkpoints.
    /// Records of views (VIEW-CHANGE, NEW-VIEW) are kept: they carry the view a replica
    /// promised to stay out of.
    pub fn obsolete_at(&self, stable: Sequence) -> bool {
        match self {
            Record::Stable { sequence, .. } => *sequence < stable,
            _ => self.sequence().is_some_and(|sequence| sequence <= stable),
        }
    }
}

#[cfg(test)]
mod tests {
    use pactum_types::Signature;

    use super::*;

    fn message(message: Message) -> SignedMessage {
        SignedMessage { sender: 2, message, signature: Signature([7; 64]) }
    }

    #[test]
    fn every_record_round_trips_and_foreign_versions_are_refused() {
        let digest = Hash([3; 32]);
        let records = [
            Record::Sent(message(Message::Prepare { view: 1, sequence: 5, digest })),
            Record::Accepted(message(Message::PrePrepare {
                view: 1,
                sequence: 5,
                digest,
                batch: b"batch".to_vec(),
            })),
            Record::Stable {
                sequence: 4,
                state_digest: digest,
                proof: vec![message(Message::Checkpoint { sequence: 4, state_digest: digest })],
            },
            Record::Sent(message(Message::Suspect { view: 3 })),
        ];
        for record in &records {
            let bytes = record.to_bytes();
            assert_eq!(&Record::from_bytes(&bytes).unwrap(), record);
            let mut newer = bytes.clone();
            newer[0] = RECORD_FORMAT_VERSION + 1;
            assert!(Record::from_bytes(&newer).is_err());
            assert!(Record::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    #[test]
    fn a_stable_checkpoint_makes_lower_records_obsolete_but_keeps_view_records() {
        let digest = Hash([3; 32]);
        let vote = Record::Sent(message(Message::Commit { view: 0, sequence: 4, digest }));
        assert!(vote.obsolete_at(4));
        assert!(!vote.obsolete_at(3));
        let stable = Record::Stable { sequence: 4, state_digest: digest, proof: Vec::new() };
        assert!(!stable.obsolete_at(4), "the newest stable checkpoint stays");
        assert!(stable.obsolete_at(6));
        let view_change = Record::Sent(message(Message::ViewChange {
            new_view: 2,
            stable_sequence: 0,
            stable_digest: Hash::ZERO,
            checkpoint_proof: Vec::new(),
            prepared: Vec::new(),
        }));
        assert!(!view_change.obsolete_at(1_000));
    }
}
