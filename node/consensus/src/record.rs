//! What a replica persists before it sends anything that depends on it, the canonical
//! encoding of those records, and which records later ones make obsolete. The node writes
//! records to its consensus log with this encoding; the simulator's storage applies the
//! same pruning rule.

use pactum_types::codec::{Decode, DecodeError, Encode, Reader, write};

use crate::certificate::{CheckpointCertificate, CommitCertificate, PreparedCertificate};
use crate::ids::{Sequence, View};
use crate::message::{Message, SignedMessage};

/// The format of an encoded record: its first byte. A new format gets a new number.
pub const RECORD_FORMAT_VERSION: u8 = 2;

/// What must survive a crash, written before any message that depends on it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message this replica sent (a PRE-PREPARE with its batch, a vote, a CHECKPOINT, a
    /// VIEW-CHANGE, a NEW-VIEW).
    Sent(SignedMessage),
    /// A PRE-PREPARE (with its batch) or a NEW-VIEW this replica accepted.
    Accepted(SignedMessage),
    /// PBFT §4.4: the replica became prepared; its next VIEW-CHANGEs report this
    /// certificate (or a later one for the same sequence number), also after a restart.
    Prepared(PreparedCertificate),
    /// The checkpoint became stable (or its state was installed).
    Stable(CheckpointCertificate),
    /// A sequence number was decided. Decisions are immutable across restarts too, and a
    /// restarted replica still relays the ones it holds to replicas that lack them.
    Decided(CommitCertificate),
}

/// The point below which records no longer matter: the last stable checkpoint and the
/// view the replica entered last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogFloor {
    pub stable: Sequence,
    pub view: View,
}

impl LogFloor {
    /// Raises the floor for a record just written; whether it moved (then the log can be
    /// compacted).
    pub fn observe(&mut self, record: &Record) -> bool {
        let before = *self;
        match record {
            Record::Stable(checkpoint) => self.stable = self.stable.max(checkpoint.sequence),
            Record::Sent(message) | Record::Accepted(message) => {
                if let Message::NewView { view, .. } = message.message {
                    self.view = self.view.max(view);
                }
            }
            Record::Prepared(_) | Record::Decided(_) => {}
        }
        *self != before
    }
}

impl Record {
    /// Whether a restarted replica needs this record no more, given `floor`:
    /// - anything at or below the stable checkpoint (an older stable checkpoint too);
    /// - votes of views below the one entered (the replica never votes there again), but
    ///   not PRE-PREPAREs, whose batches a later view may re-propose;
    /// - VIEW-CHANGEs for views it entered since, and NEW-VIEWs of earlier views.
    pub fn obsolete(&self, floor: &LogFloor) -> bool {
        let message = match self {
            Record::Stable(checkpoint) => return checkpoint.sequence < floor.stable,
            Record::Prepared(certificate) => return certificate.sequence <= floor.stable,
            Record::Decided(certificate) => return certificate.sequence <= floor.stable,
            Record::Sent(message) | Record::Accepted(message) => message,
        };
        match &message.message {
            Message::PrePrepare { sequence, .. } => *sequence <= floor.stable,
            Message::Prepare { view, sequence, .. } | Message::Commit { view, sequence, .. } => {
                *sequence <= floor.stable || *view < floor.view
            }
            Message::Checkpoint { sequence, .. } => *sequence < floor.stable,
            Message::ViewChange { new_view, .. } => *new_view <= floor.view,
            Message::NewView { view, .. } => *view < floor.view,
            Message::Suspect { .. }
            | Message::FetchBatch { .. }
            | Message::Batch { .. }
            | Message::FetchNewView { .. }
            | Message::Decided { .. } => true,
        }
    }
}

const TAG_SENT: u8 = 1;
const TAG_ACCEPTED: u8 = 2;
const TAG_STABLE: u8 = 3;
const TAG_PREPARED: u8 = 4;
const TAG_DECIDED: u8 = 5;

impl Encode for Record {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, RECORD_FORMAT_VERSION);
        match self {
            Record::Sent(message) => {
                write::u8(out, TAG_SENT);
                message.encode_to(out);
            }
            Record::Accepted(message) => {
                write::u8(out, TAG_ACCEPTED);
                message.encode_to(out);
            }
            Record::Stable(checkpoint) => {
                write::u8(out, TAG_STABLE);
                checkpoint.encode_to(out);
            }
            Record::Prepared(certificate) => {
                write::u8(out, TAG_PREPARED);
                certificate.encode_to(out);
            }
            Record::Decided(certificate) => {
                write::u8(out, TAG_DECIDED);
                certificate.encode_to(out);
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
            TAG_SENT => Ok(Record::Sent(SignedMessage::decode_from(reader)?)),
            TAG_ACCEPTED => Ok(Record::Accepted(SignedMessage::decode_from(reader)?)),
            TAG_STABLE => Ok(Record::Stable(CheckpointCertificate::decode_from(reader)?)),
            TAG_PREPARED => Ok(Record::Prepared(PreparedCertificate::decode_from(reader)?)),
            TAG_DECIDED => Ok(Record::Decided(CommitCertificate::decode_from(reader)?)),
            tag => Err(DecodeError::UnknownTag { what: "consensus record", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use pactum_types::{Hash, Signature};

    use super::*;

    fn message(message: Message) -> SignedMessage {
        SignedMessage { sender: 2, message, signature: Signature([7; 64]) }
    }

    fn certificate(sequence: u64) -> PreparedCertificate {
        PreparedCertificate {
            view: View(1),
            sequence: Sequence(sequence),
            digest: Hash([3; 32]),
            primary_signature: Signature([1; 64]),
            prepares: vec![(2, Signature([2; 64])), (3, Signature([3; 64]))],
        }
    }

    #[test]
    fn every_record_round_trips_and_foreign_versions_are_refused() {
        let digest = Hash([3; 32]);
        let records = [
            Record::Sent(message(Message::Prepare {
                view: View(1),
                sequence: Sequence(5),
                digest,
            })),
            Record::Accepted(message(Message::PrePrepare {
                view: View(1),
                sequence: Sequence(5),
                digest,
                batch: b"batch".to_vec(),
            })),
            Record::Stable(CheckpointCertificate {
                sequence: Sequence(4),
                state_digest: digest,
                signatures: vec![(1, Signature([9; 64]))],
            }),
            Record::Prepared(certificate(5)),
            Record::Decided(CommitCertificate {
                view: View(1),
                sequence: Sequence(5),
                digest,
                commits: vec![(0, Signature([4; 64]))],
            }),
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
    fn stable_checkpoints_and_new_views_make_older_records_obsolete() {
        let digest = Hash([3; 32]);
        let mut floor = LogFloor::default();
        let vote =
            Record::Sent(message(Message::Commit { view: View(0), sequence: Sequence(4), digest }));
        let pre_prepare = Record::Accepted(message(Message::PrePrepare {
            view: View(0),
            sequence: Sequence(5),
            digest,
            batch: Vec::new(),
        }));
        let view_change = |new_view| {
            Record::Sent(message(Message::ViewChange {
                new_view: View(new_view),
                checkpoint: CheckpointCertificate::genesis(),
                prepared: Vec::new(),
            }))
        };
        let new_view = |view| {
            Record::Accepted(message(Message::NewView {
                view: View(view),
                view_changes: Vec::new(),
                pre_prepares: Vec::new(),
            }))
        };
        assert!(!vote.obsolete(&floor) && !view_change(1).obsolete(&floor));
        assert!(floor.observe(&new_view(2)), "a NEW-VIEW raises the floor");
        assert!(vote.obsolete(&floor), "a vote of view 0 once view 2 is entered");
        assert!(!pre_prepare.obsolete(&floor), "a batch a later view may re-propose stays");
        assert!(view_change(2).obsolete(&floor) && !view_change(3).obsolete(&floor));
        assert!(new_view(1).obsolete(&floor) && !new_view(2).obsolete(&floor));
        assert!(!Record::Prepared(certificate(5)).obsolete(&floor), "prepared certificates stay");
        let stable = Record::Stable(CheckpointCertificate {
            sequence: Sequence(6),
            state_digest: digest,
            signatures: Vec::new(),
        });
        assert!(floor.observe(&stable));
        assert!(!stable.obsolete(&floor), "the newest stable checkpoint stays");
        assert!(pre_prepare.obsolete(&floor) && Record::Prepared(certificate(5)).obsolete(&floor));
        assert!(!floor.observe(&stable), "the same floor again");
    }
}
