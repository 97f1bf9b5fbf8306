//! PBFT messages, their canonical encoding and the bytes each signature covers
//! (PBFT §4.2–§4.4).
//!
//! Batches travel beside signatures, never under them: a PRE-PREPARE's signature covers
//! its digest, and the digest binds the batch. So view changes carry digests only
//! (prepared certificates and re-proposals are a few hundred bytes each), and a replica
//! that lacks a batch fetches it by digest ([`Message::FetchBatch`], [`Message::Batch`])
//! and checks it against the digest.

use pactum_types::codec::{Decode, DecodeError, Encode, Reader, write};
use pactum_types::{Hash, Signature, limits};

use crate::certificate::{CheckpointCertificate, CommitCertificate, PreparedCertificate};
use crate::ids::{ReplicaId, Sequence, View};

/// Domain tag of every PBFT signature; the chain identity and the sender follow it.
pub const DOMAIN: &[u8] = b"pactum.pbft.v2\0";

/// A protocol message, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// PBFT §4.2: the primary of `view` assigns `sequence` to the batch with `digest`.
    PrePrepare { view: View, sequence: Sequence, digest: Hash, batch: Vec<u8> },
    /// PBFT §4.2: a backup accepted the PRE-PREPARE for `(view, sequence, digest)`.
    Prepare { view: View, sequence: Sequence, digest: Hash },
    /// PBFT §4.2: the sender is prepared for `(view, sequence, digest)`.
    Commit { view: View, sequence: Sequence, digest: Hash },
    /// PBFT §4.3: the sender's state after executing `sequence` has digest `state_digest`.
    Checkpoint { sequence: Sequence, state_digest: Hash },
    /// PBFT §4.4: the sender moves to `new_view`, with its last stable checkpoint and a
    /// prepared certificate for every sequence number above it that it prepared.
    ViewChange {
        new_view: View,
        checkpoint: CheckpointCertificate,
        prepared: Vec<PreparedCertificate>,
    },
    /// PBFT §4.4: the primary of `view` starts it with the 2f + 1 VIEW-CHANGEs it chose
    /// and the re-proposals they imply (a null batch where nothing was prepared).
    NewView { view: View, view_changes: Vec<SignedMessage>, pre_prepares: Vec<Reproposal> },
    /// Pactum's non-binding step before §4.4: the sender's request timer expired in
    /// `view` (see `docs/protocol/pbft.md`, "Suspicion before view change").
    Suspect { view: View },
    /// The sender lacks the batch with `digest` (it learned a decision or a re-proposal
    /// without it) and asks for it.
    FetchBatch { digest: Hash },
    /// A decision the sender holds, re-sent on retransmission ticks until it is below the
    /// stable checkpoint: a replica that missed the votes (or some of them came from a
    /// faulty replica that never re-sends) decides from the certificate itself.
    Decided { certificate: CommitCertificate },
    /// The sender is in `view` and saw messages of a later view: it asks that view's
    /// primary for the NEW-VIEW that started it.
    FetchNewView { view: View },
    /// An answer to [`Message::FetchBatch`]. The signature covers the digest; the batch is
    /// accepted only if it hashes to it.
    Batch { digest: Hash, batch: Vec<u8> },
}

/// A NEW-VIEW's PRE-PREPARE for one sequence number: the digest (the null batch's where
/// nothing was prepared) and the new primary's signature over PRE-PREPARE(view, sequence,
/// digest), so it can stand in a prepared certificate of the new view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reproposal {
    pub sequence: Sequence,
    pub digest: Hash,
    pub signature: Signature,
}

/// A message with its sender and the sender's signature over [`Message::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    pub sender: ReplicaId,
    pub message: Message,
    pub signature: Signature,
}

const TAG_PRE_PREPARE: u8 = 1;
const TAG_PREPARE: u8 = 2;
const TAG_COMMIT: u8 = 3;
const TAG_CHECKPOINT: u8 = 4;
const TAG_VIEW_CHANGE: u8 = 5;
const TAG_NEW_VIEW: u8 = 6;
const TAG_SUSPECT: u8 = 7;
const TAG_FETCH_BATCH: u8 = 8;
const TAG_BATCH: u8 = 9;
const TAG_FETCH_NEW_VIEW: u8 = 10;
const TAG_DECIDED: u8 = 11;

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
            Message::FetchBatch { .. } => "fetch-batch",
            Message::Batch { .. } => "batch",
            Message::FetchNewView { .. } => "fetch-new-view",
            Message::Decided { .. } => "decided",
        }
    }

    /// The view a message belongs to, for the messages that belong to one.
    pub fn view(&self) -> Option<View> {
        match self {
            Message::PrePrepare { view, .. }
            | Message::Prepare { view, .. }
            | Message::Commit { view, .. }
            | Message::NewView { view, .. }
            | Message::Suspect { view }
            | Message::FetchNewView { view } => Some(*view),
            Message::ViewChange { new_view, .. } => Some(*new_view),
            Message::Checkpoint { .. }
            | Message::FetchBatch { .. }
            | Message::Batch { .. }
            | Message::Decided { .. } => None,
        }
    }

    /// The bytes `sender`'s signature covers on chain `chain`: domain tag, chain, sender,
    /// then the encoded message, except that a PRE-PREPARE and a batch answer cover their
    /// digest and not the batch.
    pub fn signing_bytes(&self, chain: &Hash, sender: ReplicaId) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(DOMAIN.len() + 32 + 2 + 64);
        bytes.extend_from_slice(DOMAIN);
        chain.encode_to(&mut bytes);
        write::u16(&mut bytes, sender);
        match self {
            Message::PrePrepare { view, sequence, digest, .. } => {
                pre_prepare_body(&mut bytes, *view, *sequence, digest);
            }
            Message::Batch { digest, .. } => {
                write::u8(&mut bytes, TAG_BATCH);
                digest.encode_to(&mut bytes);
            }
            other => other.encode_to(&mut bytes),
        }
        bytes
    }
}

/// The bytes the primary of `view` signs for PRE-PREPARE(view, sequence, digest) on
/// `chain`. A NEW-VIEW's re-proposals and prepared certificates carry that signature.
pub fn pre_prepare_signing_bytes(
    chain: &Hash,
    sender: ReplicaId,
    view: View,
    sequence: Sequence,
    digest: &Hash,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(DOMAIN.len() + 32 + 2 + 49);
    bytes.extend_from_slice(DOMAIN);
    chain.encode_to(&mut bytes);
    write::u16(&mut bytes, sender);
    pre_prepare_body(&mut bytes, view, sequence, digest);
    bytes
}

fn pre_prepare_body(out: &mut Vec<u8>, view: View, sequence: Sequence, digest: &Hash) {
    write::u8(out, TAG_PRE_PREPARE);
    view.encode_to(out);
    sequence.encode_to(out);
    digest.encode_to(out);
}

fn vote_body(out: &mut Vec<u8>, tag: u8, view: View, sequence: Sequence, digest: &Hash) {
    write::u8(out, tag);
    view.encode_to(out);
    sequence.encode_to(out);
    digest.encode_to(out);
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::PrePrepare { view, sequence, digest, batch } => {
                pre_prepare_body(out, *view, *sequence, digest);
                write::bytes(out, batch);
            }
            Message::Prepare { view, sequence, digest } => {
                vote_body(out, TAG_PREPARE, *view, *sequence, digest);
            }
            Message::Commit { view, sequence, digest } => {
                vote_body(out, TAG_COMMIT, *view, *sequence, digest);
            }
            Message::Checkpoint { sequence, state_digest } => {
                write::u8(out, TAG_CHECKPOINT);
                sequence.encode_to(out);
                state_digest.encode_to(out);
            }
            Message::ViewChange { new_view, checkpoint, prepared } => {
                write::u8(out, TAG_VIEW_CHANGE);
                new_view.encode_to(out);
                checkpoint.encode_to(out);
                write::sequence(out, prepared);
            }
            Message::NewView { view, view_changes, pre_prepares } => {
                write::u8(out, TAG_NEW_VIEW);
                view.encode_to(out);
                write::sequence(out, view_changes);
                write::sequence(out, pre_prepares);
            }
            Message::Suspect { view } => {
                write::u8(out, TAG_SUSPECT);
                view.encode_to(out);
            }
            Message::FetchBatch { digest } => {
                write::u8(out, TAG_FETCH_BATCH);
                digest.encode_to(out);
            }
            Message::Batch { digest, batch } => {
                write::u8(out, TAG_BATCH);
                digest.encode_to(out);
                write::bytes(out, batch);
            }
            Message::FetchNewView { view } => {
                write::u8(out, TAG_FETCH_NEW_VIEW);
                view.encode_to(out);
            }
            Message::Decided { certificate } => {
                write::u8(out, TAG_DECIDED);
                certificate.encode_to(out);
            }
        }
    }
}

fn vote_fields(reader: &mut Reader<'_>) -> Result<(View, Sequence, Hash), DecodeError> {
    Ok((View::decode_from(reader)?, Sequence::decode_from(reader)?, Hash::decode_from(reader)?))
}

impl Decode for Message {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let window = limits::WATERMARK_WINDOW_MAX as usize;
        match reader.u8("pbft message")? {
            TAG_PRE_PREPARE => {
                let (view, sequence, digest) = vote_fields(reader)?;
                let batch = reader.byte_vec(limits::BLOCK_BODY_BYTES_MAX, "batch")?;
                Ok(Message::PrePrepare { view, sequence, digest, batch })
            }
            TAG_PREPARE => {
                let (view, sequence, digest) = vote_fields(reader)?;
                Ok(Message::Prepare { view, sequence, digest })
            }
            TAG_COMMIT => {
                let (view, sequence, digest) = vote_fields(reader)?;
                Ok(Message::Commit { view, sequence, digest })
            }
            TAG_CHECKPOINT => Ok(Message::Checkpoint {
                sequence: Sequence::decode_from(reader)?,
                state_digest: Hash::decode_from(reader)?,
            }),
            TAG_VIEW_CHANGE => Ok(Message::ViewChange {
                new_view: View::decode_from(reader)?,
                checkpoint: CheckpointCertificate::decode_from(reader)?,
                prepared: reader.sequence(window, "prepared certificates")?,
            }),
            TAG_NEW_VIEW => Ok(Message::NewView {
                view: View::decode_from(reader)?,
                view_changes: reader.sequence(limits::VALIDATORS_MAX, "view changes")?,
                pre_prepares: reader.sequence(window, "re-proposals")?,
            }),
            TAG_SUSPECT => Ok(Message::Suspect { view: View::decode_from(reader)? }),
            TAG_FETCH_BATCH => Ok(Message::FetchBatch { digest: Hash::decode_from(reader)? }),
            TAG_BATCH => Ok(Message::Batch {
                digest: Hash::decode_from(reader)?,
                batch: reader.byte_vec(limits::BLOCK_BODY_BYTES_MAX, "batch")?,
            }),
            TAG_DECIDED => {
                Ok(Message::Decided { certificate: CommitCertificate::decode_from(reader)? })
            }
            TAG_FETCH_NEW_VIEW => Ok(Message::FetchNewView { view: View::decode_from(reader)? }),
            tag => Err(DecodeError::UnknownTag { what: "pbft message", tag }),
        }
    }
}

impl Encode for Reproposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.sequence.encode_to(out);
        self.digest.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for Reproposal {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            sequence: Sequence::decode_from(reader)?,
            digest: Hash::decode_from(reader)?,
            signature: Signature::decode_from(reader)?,
        })
    }
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
