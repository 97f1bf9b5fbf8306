//! PBFT messages and their canonical encoding (PBFT §4.2, §4.3).

use pactum_types::codec::{Decode, DecodeError, Encode, Reader, write};
use pactum_types::{Hash, Signature, limits};

/// A replica's index in the validator set: replica `i` is the `i`-th validator.
pub type ReplicaId = u16;
pub type View = u64;
pub type Sequence = u64;

/// Domain tag of every PBFT message signature.
pub const DOMAIN: &[u8] = b"pactum.pbft.v1\0";

/// A protocol message, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// PBFT §4.2: the primary assigns `sequence` to the batch whose digest is `digest`.
    PrePrepare { view: View, sequence: Sequence, digest: Hash, batch: Vec<u8> },
    /// PBFT §4.2: a backup accepted the PRE-PREPARE for `(view, sequence, digest)`.
    Prepare { view: View, sequence: Sequence, digest: Hash },
    /// PBFT §4.2: the sender has a prepared certificate for `(view, sequence, digest)`.
    Commit { view: View, sequence: Sequence, digest: Hash },
    /// PBFT §4.3: the sender's state after executing `sequence` has digest `state_digest`.
    Checkpoint { sequence: Sequence, state_digest: Hash },
    /// PBFT §4.4: the sender moves to `new_view`. It proves its last stable checkpoint
    /// (`checkpoint_proof`: matching CHECKPOINTs) and lists a prepared certificate for every
    /// sequence number above it that it prepared.
    ViewChange {
        new_view: View,
        stable_sequence: Sequence,
        stable_digest: Hash,
        checkpoint_proof: Vec<SignedMessage>,
        prepared: Vec<PreparedCertificate>,
    },
    /// PBFT §4.4: the primary of `view` starts it, with the 2f + 1 VIEW-CHANGEs it chose
    /// and the PRE-PREPAREs they imply (re-proposals, and null batches for gaps).
    NewView { view: View, view_changes: Vec<SignedMessage>, pre_prepares: Vec<SignedMessage> },
    /// Pactum's non-binding step before §4.4: the sender's request timer expired in
    /// `view`. It keeps working in `view`; a replica moves to `view + 1` only once f + 1
    /// replicas (so at least one honest one) suspect the primary. See
    /// `docs/protocol/pbft.md`, "Suspicion before view change".
    Suspect { view: View },
}

/// PBFT §4.4: a PRE-PREPARE and 2f matching PREPAREs from distinct backups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCertificate {
    pub pre_prepare: SignedMessage,
    pub prepares: Vec<SignedMessage>,
}

/// Most prepared certificates one VIEW-CHANGE may carry (one per sequence number in the
/// largest allowed watermark window).
pub const PREPARED_CERTIFICATES_MAX: usize = 4096;

impl Encode for PreparedCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.pre_prepare.encode_to(out);
        write::sequence(out, &self.prepares);
    }
}

impl Decode for PreparedCertificate {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            pre_prepare: SignedMessage::decode_from(reader)?,
            prepares: reader.sequence(limits::VALIDATORS_MAX, "prepares")?,
        })
    }
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PrePrepare { .. } => "pre-prepare",
            Message::Prepare { .. } => "prepare",
            Message::Commit { .. } => "commit",
            Message::Checkpoint { .. } => "checkpoint",
            Message::ViewChange { .. } => "view-change",
            Message::NewView { .. } => "new-view",
            Message::Suspect { .. } => "suspect",
        }
    }

    /// The bytes a signature covers: domain tag, sender, then the encoded message. For a
    /// PRE-PREPARE only the digest is signed, not the batch (PBFT §4.2: the batch travels
    /// beside the signed part, and the digest binds it).
    pub fn signing_bytes(&self, sender: ReplicaId) -> Vec<u8> {
        let mut bytes = DOMAIN.to_vec();
        write::u16(&mut bytes, sender);
        match self {
            Message::PrePrepare { view, sequence, digest, .. } => {
                write::u8(&mut bytes, 1);
                write::u64(&mut bytes, *view);
                write::u64(&mut bytes, *sequence);
                digest.encode_to(&mut bytes);
            }
            other => other.encode_to(&mut bytes),
        }
        bytes
    }
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::PrePrepare { view, sequence, digest, batch } => {
                write::u8(out, 1);
                write::u64(out, *view);
                write::u64(out, *sequence);
                digest.encode_to(out);
                write::bytes(out, batch);
            }
            Message::Prepare { view, sequence, digest } => {
                write::u8(out, 2);
                write::u64(out, *view);
                write::u64(out, *sequence);
                digest.encode_to(out);
            }
            Message::Commit { view, sequence, digest } => {
                write::u8(out, 3);
                write::u64(out, *view);
                write::u64(out, *sequence);
                digest.encode_to(out);
            }
            Message::Checkpoint { sequence, state_digest } => {
                write::u8(out, 4);
                write::u64(out, *sequence);
                state_digest.encode_to(out);
            }
            Message::ViewChange {
                new_view,
                stable_sequence,
                stable_digest,
                checkpoint_proof,
                prepared,
            } => {
                write::u8(out, 5);
                write::u64(out, *new_view);
                write::u64(out, *stable_sequence);
                stable_digest.encode_to(out);
                write::sequence(out, checkpoint_proof);
                write::sequence(out, prepared);
            }
            Message::NewView { view, view_changes, pre_prepares } => {
                write::u8(out, 6);
                write::u64(out, *view);
                write::sequence(out, view_changes);
                write::sequence(out, pre_prepares);
            }
            Message::Suspect { view } => {
                write::u8(out, 7);
                write::u64(out, *view);
            }
        }
    }
}

impl Decode for Message {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("pbft message")? {
            1 => Ok(Message::PrePrepare {
                view: reader.u64("view")?,
                sequence: reader.u64("sequence")?,
                digest: Hash::decode_from(reader)?,
                batch: reader.byte_vec(limits::BLOCK_BODY_BYTES_MAX, "batch")?,
            }),
            2 => Ok(Message::Prepare {
                view: reader.u64("view")?,
                sequence: reader.u64("sequence")?,
                digest: Hash::decode_from(reader)?,
            }),
            3 => Ok(Message::Commit {
                view: reader.u64("view")?,
                sequence: reader.u64("sequence")?,
                digest: Hash::decode_from(reader)?,
            }),
            4 => Ok(Message::Checkpoint {
                sequence: reader.u64("sequence")?,
                state_digest: Hash::decode_from(reader)?,
            }),
            5 => Ok(Message::ViewChange {
                new_view: reader.u64("view")?,
                stable_sequence: reader.u64("sequence")?,
                stable_digest: Hash::decode_from(reader)?,
                checkpoint_proof: reader.sequence(limits::VALIDATORS_MAX, "checkpoint proof")?,
                prepared: reader.sequence(PREPARED_CERTIFICATES_MAX, "prepared certificates")?,
            }),
            6 => Ok(Message::NewView {
                view: reader.u64("view")?,
                view_changes: reader.sequence(limits::VALIDATORS_MAX, "view changes")?,
                pre_prepares: reader.sequence(PREPARED_CERTIFICATES_MAX, "pre-prepares")?,
            }),
            7 => Ok(Message::Suspect { view: reader.u64("view")? }),
            tag => Err(DecodeError::UnknownTag { what: "pbft message", tag }),
        }
    }
}

/// A message with its sender and the sender's signature over [`Message::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    pub sender: ReplicaId,
    pub message: Message,
    pub signature: Signature,
}

impl Encode for SignedMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u16(out, self.sender);
        self.message.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for SignedMessage {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            sender: reader.u16("sender")?,
            message: Message::decode_from(reader)?,
            signature: Signature::decode_from(reader)?,
        })
    }
}
