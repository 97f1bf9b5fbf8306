//! PBFT (Castro and Liskov, OSDI '99 and TOCS 2002) as a pure state machine.
//!
//! A [`Replica`] is driven by [`Replica::step`]: each [`Input`] (a message from a peer, a
//! request to order, a timer firing, a report that a sequence number was executed or its
//! state installed) returns the [`Effect`]s the caller must carry out. Every `Persist` of a
//! step comes first: the caller writes them all durably, in one write, before it carries
//! out any other effect of the step (persist before send).
//!
//! This crate must never do IO, read a clock or draw randomness. Time arrives as timeout
//! inputs, signing and verification go through the [`Crypto`] trait, so the simulator in
//! `tests/sim` can run thousands of seeded clusters in one thread.
//!
//! Decisions are immutable: a sequence number is decided by a [`CommitCertificate`] (2f + 1
//! COMMITs of one view and digest) and never by anything else; a decision once made is
//! never replaced. Every [`Delivery`] carries the certificate that decided it. See
//! `docs/protocol/pbft.md` for the paper's sections mapped to the modules below.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod batch;
mod certificate;
mod config;
mod crypto;
mod ed25519;
mod ids;
mod message;
mod record;
mod replica;
mod requests;
mod vote_keeper;

use pactum_types::Hash;

pub use batch::{BatchHeader, DecodedBatch, batch_requests, decode_batch, encode_batch};
pub use certificate::{
    CertificateError, CheckpointCertificate, CheckpointStrength, CommitCertificate,
    PreparedCertificate,
};
pub use config::{
    Config, ConfigError, Mutation, batch_bytes_limit, epoch_identity, epoch_last_sequence,
    faults_tolerated,
};
pub use crypto::{Crypto, Verifier};
pub use ed25519::{Ed25519Crypto, Ed25519Verifier};
pub use ids::{ReplicaId, Sequence, SignerSignature, View};
pub use message::{DOMAIN, Message, Reproposal, SignedMessage, pre_prepare_signing_bytes};
pub use record::{LogFloor, RECORD_FORMAT_VERSION, Record};
pub use replica::{
    NewViewError, Replica, TRANSFER_PATIENCE_TICKS, VIEW_CHANGE_VIEWS_AHEAD_MAX, ViewChangeError,
};
pub use requests::PENDING_REQUESTS_MAX;

/// What a backup's request timer waits for (PBFT §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Watch {
    /// A request this replica holds: it must be executed before the timer fires.
    Request(Hash),
    /// A sequence number with a PRE-PREPARE: it must be delivered before the timer fires.
    Delivery(Sequence),
}

/// Timers the replica asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// Re-send own messages for sequence numbers not yet stable; retry fetches.
    Retransmit,
    /// PBFT §4.4: the watched request (or sequence number) of `view` was not executed in
    /// time.
    Request { view: View, watch: Watch },
    /// The NEW-VIEW for `view` has not arrived.
    ViewChange { view: View },
    /// The primary of `view` cuts a batch from the requests waiting (batch timeout).
    Batch { view: View },
}

/// What drives a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message from a peer. The transport authenticated the peer; `message.sender` is
    /// checked against the signature here.
    Message(SignedMessage),
    /// A client request to order (in the node, a transaction). The primary batches
    /// requests by count, bytes and timeout; a backup keeps them and suspects the primary
    /// if one is not executed in time (PBFT §4.4).
    Request { request: Vec<u8> },
    /// Requests the caller dropped (their digests): they will never be ordered (in the
    /// node, a transaction whose nonce another one used), so nobody waits for them.
    Withdraw { requests: Vec<Hash> },
    /// A timer fired.
    Timeout(TimeoutKind),
    /// The caller executed the delivered batch at `sequence`; the state digest after it.
    /// After a restart the caller reports its last executed sequence once more, so that the
    /// replica signs that CHECKPOINT if a crash came before it was persisted.
    Executed { sequence: Sequence, state_digest: Hash },
    /// The caller installed the state of the checkpoint at `sequence` it was asked to
    /// fetch, with digest `state_digest`; `requests` are the digests of the requests that
    /// state covers, which are no longer pending.
    StateTransferred { sequence: Sequence, state_digest: Hash, requests: Vec<Hash> },
    /// The caller could not fetch the state at `sequence` (no peer answered, or none with
    /// a block that checks out). The replica asks again later.
    StateTransferFailed { sequence: Sequence },
    /// ADR 0021: the batch the caller just executed (or a state it installed) scheduled
    /// the next epoch; this epoch orders nothing past `last`
    /// ([`epoch_last_sequence`]). The caller reports it before any other input once
    /// it knows, and again after a restart; the replica then neither proposes nor votes
    /// past `last`, and is finished once it executed `last`
    /// ([`Replica::epoch_finished`]).
    EpochEnds { last: Sequence },
}

/// A committed batch, delivered strictly in sequence order, with the certificate that
/// decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub sequence: Sequence,
    pub batch: Vec<u8>,
    /// 2f + 1 COMMITs of one view for this sequence number and the batch's digest.
    pub certificate: CommitCertificate,
}

/// Byzantine or out-of-place input, recorded and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    UnknownSender {
        sender: ReplicaId,
    },
    BadSignature {
        sender: ReplicaId,
        kind: &'static str,
    },
    NotPrimary {
        sender: ReplicaId,
        view: View,
    },
    /// A batch that does not hash to the digest it was sent for.
    BatchDigestMismatch {
        sender: ReplicaId,
    },
    /// A batch that is not a well-formed list of valid requests within the batch limits,
    /// or that names another view than the PRE-PREPARE that carries it.
    MalformedBatch {
        sender: ReplicaId,
        sequence: Sequence,
    },
    /// The primary signed two different PRE-PREPAREs for one (view, sequence): this
    /// replica got both, or f + 1 replicas prepared another digest than the one it got.
    Equivocation {
        sender: ReplicaId,
        view: View,
        sequence: Sequence,
    },
    /// Two different votes of one kind from one replica for one (view, sequence).
    ConflictingVote {
        sender: ReplicaId,
        kind: &'static str,
        view: View,
        sequence: Sequence,
    },
    ConflictingCheckpoint {
        sender: ReplicaId,
        sequence: Sequence,
    },
    /// PRE-PREPAREs are sent by the primary only; a PREPARE from the primary is invalid.
    PrepareFromPrimary {
        sender: ReplicaId,
    },
    /// A VIEW-CHANGE whose proofs do not check out, or for a view too far ahead.
    InvalidViewChange {
        sender: ReplicaId,
        error: ViewChangeError,
    },
    /// A NEW-VIEW whose contents do not follow from its VIEW-CHANGEs.
    InvalidNewView {
        sender: ReplicaId,
        error: NewViewError,
    },
    /// A relayed decision whose commit certificate does not verify.
    InvalidCertificate {
        sender: ReplicaId,
        error: CertificateError,
    },
    /// A commit certificate or a re-proposal for a sequence number this replica decided
    /// otherwise. With at most f faulty replicas this cannot happen; it is reported and the
    /// first decision stands.
    ConflictingDecision {
        sequence: Sequence,
    },
}

impl Evidence {
    /// A short name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::UnknownSender { .. } => "unknown_sender",
            Evidence::BadSignature { .. } => "bad_signature",
            Evidence::NotPrimary { .. } => "not_primary",
            Evidence::BatchDigestMismatch { .. } => "batch_digest_mismatch",
            Evidence::MalformedBatch { .. } => "malformed_batch",
            Evidence::Equivocation { .. } => "equivocation",
            Evidence::ConflictingVote { .. } => "conflicting_vote",
            Evidence::ConflictingCheckpoint { .. } => "conflicting_checkpoint",
            Evidence::PrepareFromPrimary { .. } => "prepare_from_primary",
            Evidence::InvalidViewChange { .. } => "invalid_view_change",
            Evidence::InvalidNewView { .. } => "invalid_new_view",
            Evidence::ConflictingDecision { .. } => "conflicting_decision",
            Evidence::InvalidCertificate { .. } => "invalid_certificate",
        }
    }
}

/// What the caller must do. All `Persist`s of a step come first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write durably before carrying out any other effect of the step.
    Persist(Record),
    Broadcast(SignedMessage),
    Send {
        to: ReplicaId,
        message: SignedMessage,
    },
    Deliver(Delivery),
    ScheduleTimeout {
        kind: TimeoutKind,
        after_ms: u64,
    },
    /// The replica lacks the batches up to a checkpoint that f + 1 replicas (one of them
    /// honest) reached: fetch and verify the state at `checkpoint`, then answer with
    /// [`Input::StateTransferred`] for exactly that sequence number, or with
    /// [`Input::StateTransferFailed`].
    RequestStateTransfer {
        checkpoint: CheckpointCertificate,
    },
    Evidence(Evidence),
    /// PBFT §4.1: these pending requests (the one a backup's timer watched, and others
    /// waiting longest) are not executed in time; hand them to replica `to`, the primary,
    /// which may never have received them (in the node, as gossiped transactions).
    Relay {
        to: ReplicaId,
        requests: Vec<Vec<u8>>,
    },
    /// The request was not taken: the queue of pending requests is full, or the request
    /// alone is larger than a batch may be.
    RequestRefused {
        request: Vec<u8>,
    },
    /// The replica entered `view`, whose primary is `primary`.
    ViewEntered {
        view: View,
        primary: ReplicaId,
    },
}

impl Effect {
    /// Splits a step's effects into the records to persist (first, in one write) and the
    /// rest, in order, in one pass.
    pub fn split_records(effects: Vec<Effect>) -> (Vec<Record>, Vec<Effect>) {
        let mut records = Vec::new();
        let mut others = Vec::with_capacity(effects.len());
        for effect in effects {
            match effect {
                Effect::Persist(record) => records.push(record),
                other => others.push(other),
            }
        }
        (records, others)
    }
}
