//! Static protocol parameters, the same on every replica: n, f, quorums, the primary of a
//! view, timers, batching, and the worst-case message sizes they imply.

use pactum_types::{Hash, limits};
use thiserror::Error;

use crate::ids::{ReplicaId, View};

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
}

impl Mutation {
    pub const ALL: [Mutation; 6] = [
        Mutation::QuorumOfTwoF,
        Mutation::ViewChangeWithoutCertificates,
        Mutation::NewViewLowestCertificate,
        Mutation::NewViewUnchecked,
        Mutation::OverwriteDecision,
        Mutation::SendBeforePersist,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutation::QuorumOfTwoF => "quorum-of-2f",
            Mutation::ViewChangeWithoutCertificates => "view-change-without-certificates",
            Mutation::NewViewLowestCertificate => "new-view-lowest-certificate",
            Mutation::NewViewUnchecked => "new-view-unchecked",
            Mutation::OverwriteDecision => "overwrite-decision",
            Mutation::SendBeforePersist => "send-before-persist",
        }
    }

    pub fn from_name(name: &str) -> Option<Mutation> {
        Mutation::ALL.into_iter().find(|mutation| mutation.name() == name)
    }
}

/// The protocol parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// n: the number of replicas.
    pub replicas: u16,
    /// The chain's identity (in the node, the genesis hash). Every signature covers it, so
    /// a vote of one chain is never a vote of another.
    pub chain: Hash,
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
    #[error("PBFT needs between 4 and {max} replicas, got {replicas}")]
    Replicas { replicas: u16, max: usize },
    #[error(
        "the watermark window {window} must be a positive multiple of the checkpoint interval {interval}, at least twice it and at most {max}"
    )]
    BadWindow { window: u64, interval: u64, max: u64 },
    #[error("replica id {id} is outside 0..{replicas}")]
    BadReplicaId { id: ReplicaId, replicas: u16 },
    #[error(
        "batches need room for at least one request, one byte and one millisecond, and at most {bytes_max} bytes"
    )]
    BadBatching { bytes_max: usize },
    #[error("the delivery backlog must hold at least one batch")]
    BadBacklog,
    #[error(
        "with {replicas} replicas and a window of {window}, a NEW-VIEW could take {bytes} bytes, over the {max}-byte message limit; use a smaller window"
    )]
    MessagesTooLarge { replicas: u16, window: u64, bytes: usize, max: usize },
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max = limits::VALIDATORS_MAX;
        if self.replicas < 4 || usize::from(self.replicas) > max {
            return Err(ConfigError::Replicas { replicas: self.replicas, max });
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
                replicas: self.replicas,
                window,
                bytes,
                max: limits::CONSENSUS_MESSAGE_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// f: the most faulty replicas tolerated, ⌊(n − 1) / 3⌋.
    pub fn faults_tolerated(&self) -> usize {
        faults_tolerated(usize::from(self.replicas))
    }

    /// The quorum: n − f, which is 2f + 1 when n = 3f + 1. Any two quorums intersect in at
    /// least f + 1 replicas, so in at least one honest replica.
    pub fn quorum(&self) -> usize {
        let quorum = usize::from(self.replicas) - self.faults_tolerated();
        if self.mutation == Some(Mutation::QuorumOfTwoF) { quorum - 1 } else { quorum }
    }

    /// f + 1: enough replicas that at least one of them is honest.
    pub fn weak_quorum(&self) -> usize {
        self.faults_tolerated() + 1
    }

    /// PBFT §4.1: the primary of view v is replica v mod n.
    pub fn primary(&self, view: View) -> ReplicaId {
        (view.0 % u64::from(self.replicas)) as ReplicaId
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
        let replicas = usize::from(self.replicas);
        let faults = (replicas - 1) / 3;
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
