//! Static protocol parameters, the same on every replica: n, f, quorums, the primary of a
//! view, timers, batching, and the worst-case message sizes they imply.

use pactum_types::{Hash, limits};
use thiserror::Error;

use crate::certificate::CheckpointCertificate;
use crate::ids::{ReplicaId, Sequence, View};

/// A bug planted on purpose, so the simulator can show that its checkers catch it
/// (PBFT §4, each rule in turn). The node never sets one.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// Quorums of 2f instead of 2f + 1.
    QuorumOfTwoF,
    /// A VIEW-CHANGE that leaves out the replica's prepared certificates.
    ViewChangeWithoutCertificates,
    /// A new primary that re-proposes the batch of the lowest-view certificate.
    NewViewLowestCertificate,
    /// A backup that accepts a NEW-VIEW's re-proposals without recomputing them.
    NewViewUnchecked,
    /// A decision is overwritten by a later one for the same sequence number.
    OverwriteDecision,
    /// The caller carries out a step's sends before it persists the step's records
    /// (applied by the simulator's carrier; the replica itself is unchanged).
    SendBeforePersist,
    /// An epoch ends at the first checkpoint after the batch that changed the validator
    /// set, inside the window, instead of a whole window later (applied by the
    /// simulator's executor, which computes the boundary; ADR 0021).
    EpochBoundaryInsideWindow,
}

impl Mutation {
    pub const ALL: [Mutation; 7] = [
        Mutation::QuorumOfTwoF,
        Mutation::ViewChangeWithoutCertificates,
        Mutation::NewViewLowestCertificate,
        Mutation::NewViewUnchecked,
        Mutation::OverwriteDecision,
        Mutation::SendBeforePersist,
        Mutation::EpochBoundaryInsideWindow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutation::QuorumOfTwoF => "quorum-of-2f",
            Mutation::ViewChangeWithoutCertificates => "view-change-without-certificates",
            Mutation::NewViewLowestCertificate => "new-view-lowest-certificate",
            Mutation::NewViewUnchecked => "new-view-unchecked",
            Mutation::OverwriteDecision => "overwrite-decision",
            Mutation::SendBeforePersist => "send-before-persist",
            Mutation::EpochBoundaryInsideWindow => "epoch-boundary-inside-window",
        }
    }

    pub fn from_name(name: &str) -> Option<Mutation> {
        Mutation::ALL.into_iter().find(|mutation| mutation.name() == name)
    }
}

/// The protocol parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The epoch's replicas, ascending and distinct: n is their number. Replica ids are
    /// stable across epochs (in the node, a validator's index in the consortium, never
    /// reused), so an epoch that adds or removes validators renames nobody.
    pub members: Vec<ReplicaId>,
    /// The epoch: 0 is the genesis set; each validator-set change starts the next one
    /// (ADR 0021). View numbers restart at 0 in every epoch.
    pub epoch: u64,
    /// The identity of the chain and epoch ([`epoch_identity`] of the genesis hash). Every
    /// signature covers it, so a vote of one chain, or of one epoch, is never a vote of
    /// another.
    pub chain: Hash,
    /// The sequence number the epoch starts after, and the state digest there: the
    /// epoch's first stable checkpoint, which every member executed before it joined the
    /// epoch (0 and the zero digest for epoch 0). It needs no signatures.
    pub start: Sequence,
    pub start_digest: Hash,
    /// K: a checkpoint every K sequence numbers (PBFT §4.3).
    pub checkpoint_interval: u64,
    /// L: sequence numbers accepted above the low watermark h (PBFT §4.3).
    pub watermark_window: u64,
    /// How often a replica re-sends its own messages for unfinished sequence numbers.
    pub retransmit_interval_ms: u64,
    /// PBFT §4.4: how long a backup waits for a request it holds to be executed before it
    /// suspects the primary.
    pub request_timeout_ms: u64,
    /// How long a replica waits for the NEW-VIEW of a view it moved to; doubled for each
    /// consecutive view that fails to start, up to `view_change_timeout_max_ms`.
    pub view_change_timeout_ms: u64,
    pub view_change_timeout_max_ms: u64,
    /// The primary cuts a batch once this many requests are waiting...
    pub batch_requests_max: usize,
    /// ...or this many bytes of requests...
    pub batch_bytes_max: usize,
    /// ...or when the oldest unproposed request has waited this long. A batch never
    /// holds more weight than `batch_weight_max` ([`crate::Crypto::request_weight`]; in
    /// the node, the gas limits of its transactions against the block gas limit): the
    /// primary cuts batches within it, backups refuse one above it, and a request heavier
    /// than it alone is refused.
    pub batch_timeout_ms: u64,
    pub batch_weight_max: u64,
    /// The primary cuts a new batch only while the weight of what it proposed in this view
    /// and has not executed yet is at most this: execution paces proposals, so a backlog
    /// of heavy requests cannot fill the window ahead of requests that arrive behind it
    /// (in the node, the block gas limit: at most two blocks' gas ahead).
    pub weight_ahead_max: u64,
    /// A backup prepares a new batch only if its timestamp (the primary's clock) is within
    /// this many milliseconds of its own clock ([`crate::Replica::observe_time`]), so a
    /// primary can neither back-date nor post-date a block by more.
    pub timestamp_skew_max_ms: u64,
    /// Committed batches delivered but not yet reported executed: the replica holds further
    /// decisions back until execution catches up, so the caller's queue to its executor
    /// never needs more room than this.
    pub delivery_backlog_max: u64,
    /// Test-only: a planted bug (see [`Mutation`]). `None` everywhere but the simulator's
    /// mutation tests.
    #[doc(hidden)]
    pub mutation: Option<Mutation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("PBFT needs between 4 and {max} replicas, ascending and distinct, got {replicas}")]
    Replicas { replicas: usize, max: usize },
    #[error("an epoch starts at a checkpoint: {start} is not a multiple of {interval}")]
    BadStart { start: Sequence, interval: u64 },
    #[error("the replica executed up to {executed}, below the start {start} of its epoch")]
    ExecutedBelowStart { executed: Sequence, start: Sequence },
    #[error(
        "the watermark window {window} must be a positive multiple of the checkpoint interval {interval}, at least twice it and at most {max}"
    )]
    BadWindow { window: u64, interval: u64, max: u64 },
    #[error("replica {id} is not a member of epoch {epoch}")]
    NotAMember { id: ReplicaId, epoch: u64 },
    #[error(
        "batches need room for at least one request, one byte and one millisecond, and at most {bytes_max} bytes"
    )]
    BadBatching { bytes_max: usize },
    #[error("the delivery backlog must hold at least one batch")]
    BadBacklog,
    #[error(
        "with {replicas} replicas and a window of {window}, a NEW-VIEW could take {bytes} bytes, over the {max}-byte message limit; use a smaller window"
    )]
    MessagesTooLarge { replicas: usize, window: u64, bytes: usize, max: usize },
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max = limits::VALIDATORS_MAX;
        let replicas = self.replicas();
        if replicas < 4 || replicas > max || self.members.windows(2).any(|pair| pair[0] >= pair[1])
        {
            return Err(ConfigError::Replicas { replicas, max });
        }
        let interval = self.checkpoint_interval;
        let window = self.watermark_window;
        let window_max = limits::WATERMARK_WINDOW_MAX;
        if interval == 0
            || window < 2 * interval
            || !window.is_multiple_of(interval)
            || window > window_max
        {
            return Err(ConfigError::BadWindow { window, interval, max: window_max });
        }
        if !self.start.0.is_multiple_of(interval) {
            return Err(ConfigError::BadStart { start: self.start, interval });
        }
        let bytes_max = batch_bytes_limit(self.batch_requests_max);
        if self.batch_requests_max == 0
            || self.batch_bytes_max == 0
            || self.batch_timeout_ms == 0
            || self.batch_weight_max == 0
            || self.timestamp_skew_max_ms == 0
            || self.batch_requests_max > limits::BLOCK_TRANSACTIONS_MAX
            || self.batch_bytes_max > bytes_max
        {
            return Err(ConfigError::BadBatching { bytes_max });
        }
        if self.delivery_backlog_max == 0 {
            return Err(ConfigError::BadBacklog);
        }
        let bytes = self.largest_message_bytes();
        if bytes > limits::CONSENSUS_MESSAGE_BYTES_MAX {
            return Err(ConfigError::MessagesTooLarge {
                replicas,
                window,
                bytes,
                max: limits::CONSENSUS_MESSAGE_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// n: the number of the epoch's replicas.
    pub fn replicas(&self) -> usize {
        self.members.len()
    }

    /// Whether `replica` is a member of this epoch.
    pub fn is_member(&self, replica: ReplicaId) -> bool {
        self.members.binary_search(&replica).is_ok()
    }

    /// f: the most faulty replicas tolerated, ⌊(n − 1) / 3⌋.
    pub fn faults_tolerated(&self) -> usize {
        faults_tolerated(self.replicas())
    }

    /// The quorum: n − f, which is 2f + 1 when n = 3f + 1. Any two quorums intersect in at
    /// least f + 1 replicas, so in at least one honest replica.
    pub fn quorum(&self) -> usize {
        let quorum = self.replicas() - self.faults_tolerated();
        if self.mutation == Some(Mutation::QuorumOfTwoF) { quorum - 1 } else { quorum }
    }

    /// f + 1: enough replicas that at least one of them is honest.
    pub fn weak_quorum(&self) -> usize {
        self.faults_tolerated() + 1
    }

    /// PBFT §4.1: the primary of view v is the member at position v mod n (so view 0 of
    /// every epoch is led by its lowest replica id).
    pub fn primary(&self, view: View) -> ReplicaId {
        let n = self.replicas().max(1) as u64;
        self.members.get((view.0 % n) as usize).copied().unwrap_or_default()
    }

    /// The epoch's first stable checkpoint: `start` with `start_digest`, unsigned (every
    /// member executed it; a certificate of the previous epoch proved it).
    pub fn base_checkpoint(&self) -> CheckpointCertificate {
        CheckpointCertificate {
            sequence: self.start,
            state_digest: self.start_digest,
            signatures: Vec::new(),
        }
    }

    pub(crate) fn mutated(&self, mutation: Mutation) -> bool {
        self.mutation == Some(mutation)
    }

    /// The largest message a replica of this configuration builds or accepts: a NEW-VIEW
    /// carrying 2f + 1 VIEW-CHANGEs, each with a checkpoint proof signed by all n replicas
    /// and a prepared certificate for every sequence number of the window, and a
    /// re-proposal for every sequence number of the window; or a PRE-PREPARE carrying the
    /// largest batch. `tests/worst_case.rs` builds those messages and checks this bound.
    pub fn largest_message_bytes(&self) -> usize {
        let replicas = self.replicas();
        let faults = replicas.saturating_sub(1) / 3;
        let window = self.watermark_window as usize;
        let signed = 2 + 1 + 64; // sender, tag, signature
        let signers = |count: usize| 4 + count * (2 + 64);
        let checkpoint = 8 + 32 + signers(replicas);
        let prepared = 8 + 8 + 32 + 64 + signers(2 * faults);
        let view_change = signed + 8 + checkpoint + 4 + window * prepared;
        let reproposal = 8 + 32 + 64;
        let new_view = signed + 8 + 4 + (2 * faults + 1) * view_change + 4 + window * reproposal;
        let pre_prepare = signed + 8 + 8 + 32 + 4 + batch_bytes(self.batch_requests_max);
        new_view.max(pre_prepare)
    }
}

/// The identity an epoch's signatures cover: the genesis hash itself for epoch 0 (so the
/// genesis epoch's votes are what they always were), and SHA3-256 of a domain tag, the
/// genesis hash and the epoch after it.
pub fn epoch_identity(genesis: &Hash, epoch: u64) -> Hash {
    if epoch == 0 {
        return *genesis;
    }
    pactum_types::hash::sha3_256_parts(&[b"pactum.epoch.v1\0", &genesis.0, &epoch.to_be_bytes()])
}

/// ADR 0021: the last sequence number of an epoch whose successor was decided by the
/// batch at `decided_at`: the first checkpoint at or after `decided_at + window`. A
/// replica votes only inside its window above a checkpoint it holds as stable; until it
/// has executed `decided_at` (and so knows the epoch ends) its window ends below this,
/// and once a checkpoint at or past `decided_at` is stable, f + 1 honest replicas know
/// it and refuse to vote beyond it, so no quorum of the old epoch forms there.
pub fn epoch_last_sequence(
    decided_at: Sequence,
    checkpoint_interval: u64,
    window: u64,
) -> Sequence {
    let reach = decided_at.0.saturating_add(window);
    Sequence(reach.div_ceil(checkpoint_interval).saturating_mul(checkpoint_interval))
}

/// The encoded size of a batch of `requests_max` requests filling `BLOCK_BODY_BYTES_MAX`.
fn batch_bytes(requests_max: usize) -> usize {
    limits::BLOCK_BODY_BYTES_MAX.max(batch_overhead(requests_max))
}

/// Bytes a batch spends on its header and length prefixes.
fn batch_overhead(requests_max: usize) -> usize {
    8 + 8 + 4 + 4 * requests_max
}

/// The most request bytes a batch may hold so that, with its header and length prefixes,
/// it still fits a block body.
/// f for `replicas` validators: ⌊(n − 1) / 3⌋ (0 for none); the quorum is n − f.
pub fn faults_tolerated(replicas: usize) -> usize {
    replicas.saturating_sub(1) / 3
}

pub fn batch_bytes_limit(requests_max: usize) -> usize {
    limits::BLOCK_BODY_BYTES_MAX.saturating_sub(batch_overhead(requests_max))
}
