//! The PBFT replica state machine.

use std::collections::{BTreeMap, VecDeque};

use pactum_types::{Hash, Signature};
use thiserror::Error;

use crate::message::{Message, PreparedCertificate, ReplicaId, Sequence, SignedMessage, View};

/// Client requests a replica holds that are not yet delivered.
pub const PENDING_REQUESTS_MAX: usize = 65_536;

/// VIEW-CHANGEs are kept for at most this many views above the current one; messages for
/// views further ahead are dropped as evidence (bounding view-change floods).
pub const VIEW_CHANGE_VIEWS_AHEAD_MAX: u64 = 64;

/// Static protocol parameters, the same on every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// n: the number of replicas.
    pub replicas: u16,
    /// K: a checkpoint every K sequence numbers (PBFT §4.3).
    pub checkpoint_interval: u64,
    /// L: sequence numbers accepted above the low watermark h (PBFT §4.3).
    pub watermark_window: u64,
    /// How often a replica re-sends its own messages for unfinished sequence numbers.
    pub retransmit_interval_ms: u64,
    /// PBFT §4.4: how long a backup waits for pending work to make progress before it
    /// asks for a view change.
    pub request_timeout_ms: u64,
    /// How long a replica waits for the NEW-VIEW of a view it moved to; doubled for each
    /// consecutive view that fails to start, up to `view_change_timeout_max_ms`.
    pub view_change_timeout_ms: u64,
    pub view_change_timeout_max_ms: u64,
    /// The primary cuts a batch once this many requests are waiting...
    pub batch_requests_max: usize,
    /// ...or this many bytes of requests...
    pub batch_bytes_max: usize,
    /// ...or when the oldest unproposed request has waited this long.
    pub batch_timeout_ms: u64,
    /// Test-only: count 2f matching votes as a quorum instead of 2f + 1. It exists so the
    /// simulator can prove its safety checker catches a broken rule; the node never sets it.
    #[doc(hidden)]
    pub broken_quorum_for_tests: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("PBFT needs at least 4 replicas to tolerate a fault, got {replicas}")]
    TooFewReplicas { replicas: u16 },
    #[error(
        "the watermark window {window} must be a positive multiple of the checkpoint interval {interval}, at least twice it"
    )]
    BadWindow { window: u64, interval: u64 },
    #[error("replica id {id} is outside 0..{replicas}")]
    BadReplicaId { id: ReplicaId, replicas: u16 },
    #[error("batches need room for at least one request, one byte and one millisecond")]
    BadBatching,
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.replicas < 4 {
            return Err(ConfigError::TooFewReplicas { replicas: self.replicas });
        }
        let interval = self.checkpoint_interval;
        let window = self.watermark_window;
        if interval == 0 || window < 2 * interval || !window.is_multiple_of(interval) {
            return Err(ConfigError::BadWindow { window, interval });
        }
        if self.batch_requests_max == 0 || self.batch_bytes_max == 0 || self.batch_timeout_ms == 0 {
            return Err(ConfigError::BadBatching);
        }
        Ok(())
    }

    /// f: the most faulty replicas tolerated, ⌊(n − 1) / 3⌋.
    pub fn faults_tolerated(&self) -> usize {
        (usize::from(self.replicas) - 1) / 3
    }

    /// The quorum: n − f, which is 2f + 1 when n = 3f + 1. Any two quorums intersect in at
    /// least f + 1 replicas, so in at least one honest replica.
    pub fn quorum(&self) -> usize {
        let quorum = usize::from(self.replicas) - self.faults_tolerated();
        if self.broken_quorum_for_tests { quorum - 1 } else { quorum }
    }

    /// PBFT §4.1: the primary of view v is replica v mod n.
    pub fn primary(&self, view: View) -> ReplicaId {
        (view % u64::from(self.replicas)) as ReplicaId
    }
}

/// Signing, verification and batch digests, supplied by the caller.
pub trait Crypto {
    /// Signs `bytes` as this replica.
    fn sign(&self, bytes: &[u8]) -> Signature;
    /// Whether `signature` is `signer`'s signature over `bytes`.
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool;
    /// The digest that identifies a batch.
    fn digest(&self, batch: &[u8]) -> Hash;
    /// Whether a request in a proposal is acceptable to order at all. A backup refuses to
    /// prepare a batch holding a request that fails (as [`Evidence::MalformedBatch`]), so
    /// a faulty primary cannot get undecodable or unsigned transactions committed. It
    /// must be a deterministic function of the bytes.
    fn validate_request(&self, request: &[u8]) -> bool {
        let _ = request;
        true
    }
}

/// Timers the replica asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// Re-send own messages for sequence numbers not yet stable.
    Retransmit,
    /// PBFT §4.4: pending work in `view` has not progressed; armed with the delivery
    /// height at the time.
    Request { view: View, delivered: Sequence },
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
    /// if they are not ordered in time (PBFT §4.4).
    Request { request: Vec<u8> },
    /// A timer fired.
    Timeout(TimeoutKind),
    /// The caller executed the delivered batch at `sequence`; the state digest after it.
    Executed { sequence: Sequence, state_digest: Hash },
    /// The caller installed state at a stable checkpoint it had been asked to fetch;
    /// `requests` are the digests of the requests that state covers, which are no longer
    /// pending.
    StateTransferred { sequence: Sequence, state_digest: Hash, requests: Vec<Hash> },
}

/// A committed batch, delivered strictly in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The view of the COMMITs in `commit_certificate`.
    pub view: View,
    pub sequence: Sequence,
    pub digest: Hash,
    pub batch: Vec<u8>,
    /// The 2f + 1 COMMIT signatures that committed it, by replica.
    pub commit_certificate: Vec<(ReplicaId, Signature)>,
}

/// What must survive a crash, written before any message that depends on it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message this replica sent.
    Sent(SignedMessage),
    /// A PRE-PREPARE this replica accepted (and will prepare).
    Accepted(SignedMessage),
    /// The checkpoint at `sequence` became stable; `proof` holds the CHECKPOINTs.
    Stable { sequence: Sequence, state_digest: Hash, proof: Vec<SignedMessage> },
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
    WrongView {
        sender: ReplicaId,
        view: View,
        current: View,
    },
    OutOfWindow {
        sender: ReplicaId,
        sequence: Sequence,
        low: Sequence,
        high: Sequence,
    },
    BatchDigestMismatch {
        sender: ReplicaId,
        sequence: Sequence,
    },
    /// A batch that is not a well-formed list of requests within the batch limits.
    MalformedBatch {
        sender: ReplicaId,
        sequence: Sequence,
    },
    /// Two different PRE-PREPAREs for one (view, sequence): the primary equivocated.
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
        reason: &'static str,
    },
    /// A NEW-VIEW that is not from the new primary, or whose contents do not follow from
    /// its VIEW-CHANGEs.
    InvalidNewView {
        sender: ReplicaId,
        reason: &'static str,
    },
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write durably before carrying out any later effect.
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
    /// The replica is behind a stable checkpoint: fetch and verify the state at
    /// `sequence` (with digest `state_digest`, proven by `proof`), then answer with
    /// [`Input::StateTransferred`].
    RequestStateTransfer {
        sequence: Sequence,
        state_digest: Hash,
        proof: Vec<SignedMessage>,
    },
    Evidence(Evidence),
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

#[derive(Debug, Default, Clone)]
struct Slot {
    /// The view the per-view fields below belong to.
    view: View,
    /// The accepted PRE-PREPARE (with its batch).
    pre_prepare: Option<SignedMessage>,
    prepares: BTreeMap<ReplicaId, (Hash, Signature)>,
    commits: BTreeMap<ReplicaId, (Hash, Signature)>,
    sent_prepare: Option<SignedMessage>,
    sent_commit: Option<SignedMessage>,
    committed: bool,
    /// The prepared certificate from the highest view this replica prepared in; kept
    /// across views for VIEW-CHANGE messages (PBFT §4.4).
    prepared_certificate: Option<PreparedCertificate>,
}

impl Slot {
    /// Moves the slot to `view`, dropping the votes of older views.
    fn enter(&mut self, view: View) {
        if view > self.view {
            self.view = view;
            self.pre_prepare = None;
            self.prepares.clear();
            self.commits.clear();
            self.sent_prepare = None;
            self.sent_commit = None;
        }
    }

    fn digest(&self) -> Option<Hash> {
        match &self.pre_prepare {
            Some(SignedMessage { message: Message::PrePrepare { digest, .. }, .. }) => {
                Some(*digest)
            }
            _ => None,
        }
    }
}

/// One PBFT replica.
#[derive(Debug)]
pub struct Replica<C> {
    id: ReplicaId,
    config: Config,
    crypto: C,
    view: View,
    /// The primary's next sequence number to assign.
    next_sequence: Sequence,
    /// h: the last stable checkpoint.
    low_watermark: Sequence,
    stable_digest: Hash,
    slots: BTreeMap<Sequence, Slot>,
    last_delivered: Sequence,
    last_executed: Sequence,
    /// CHECKPOINT messages by sequence, then sender.
    checkpoints: BTreeMap<Sequence, BTreeMap<ReplicaId, SignedMessage>>,
    own_checkpoint: Option<SignedMessage>,
    /// Each sender's latest CHECKPOINT above the high watermark: how a replica that fell
    /// behind learns where the others are, in memory bounded by n.
    far_checkpoints: BTreeMap<ReplicaId, SignedMessage>,
    /// Requests not yet delivered, with their digests, oldest first. A request leaves only
    /// when it is delivered (or installed by state transfer), never when it is merely
    /// proposed: a proposal can be voided by a view change.
    pending_requests: BTreeMap<Hash, PendingRequest>,
    /// Arrival counter for `pending_requests`.
    arrivals: u64,
    /// Digests of pending requests that a batch in this view already holds (the primary
    /// does not propose them twice).
    proposed: std::collections::BTreeSet<Hash>,
    /// Pending requests no batch of this view holds yet, oldest first, with their count
    /// and bytes; digests delivered meanwhile are skipped when they come up.
    unproposed: VecDeque<Hash>,
    unproposed_count: usize,
    unproposed_bytes: usize,
    batch_timer_armed: bool,
    /// The caller's clock as last observed ([`Replica::observe_time`]); proposals carry it.
    clock_ms: u64,
    last_proposal_time_ms: u64,
    transfer_requested: Option<Sequence>,
    /// The CHECKPOINTs proving the checkpoint at the low watermark (f + 1 or more).
    stable_proof: Vec<SignedMessage>,
    /// The proof of the state transfer in progress, adopted when it completes.
    transfer_proof: Vec<SignedMessage>,
    /// PBFT §4.4: the view this replica has moved to and awaits a NEW-VIEW for.
    view_change: Option<View>,
    /// Valid VIEW-CHANGE messages by new view, then sender.
    view_changes: BTreeMap<View, BTreeMap<ReplicaId, SignedMessage>>,
    request_timer_armed: bool,
    /// The NEW-VIEW this replica sent as primary of the current view, for retransmission.
    own_new_view: Option<SignedMessage>,
    /// Consecutive views that failed to start: the view-change timeout doubles with each.
    failed_views: u32,
    /// `last_executed` at the previous retransmission tick: a replica that did not move
    /// for a whole interval while f + 1 replicas are past it fetches their state.
    executed_at_last_tick: Sequence,
    /// SUSPECTs for the current view, by sender (at most n).
    suspects: BTreeMap<ReplicaId, SignedMessage>,
    /// COMMITs from views above this replica's, by sequence then sender (the latest view
    /// each sender voted in), for sequence numbers in the window: how a replica that is
    /// behind in views still learns decisions.
    future_commits: BTreeMap<Sequence, BTreeMap<ReplicaId, (View, Hash, Signature)>>,
    /// PRE-PREPAREs from views above this replica's whose digest f + 1 of those COMMITs
    /// vouch for, by sequence then digest.
    future_batches: BTreeMap<Sequence, BTreeMap<Hash, SignedMessage>>,
}

impl<C: Crypto> Replica<C> {
    /// A fresh replica, or one restarting: `records` are everything it persisted, in order,
    /// and `last_executed` is the last sequence number its state reflects.
    pub fn new(
        id: ReplicaId,
        config: Config,
        crypto: C,
        records: &[Record],
        last_executed: Sequence,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if id >= config.replicas {
            return Err(ConfigError::BadReplicaId { id, replicas: config.replicas });
        }
        let mut replica = Self {
            id,
            config,
            crypto,
            view: 0,
            next_sequence: 1,
            low_watermark: 0,
            stable_digest: Hash::ZERO,
            slots: BTreeMap::new(),
            last_delivered: last_executed,
            last_executed,
            checkpoints: BTreeMap::new(),
            own_checkpoint: None,
            far_checkpoints: BTreeMap::new(),
            pending_requests: BTreeMap::new(),
            arrivals: 0,
            unproposed: VecDeque::new(),
            unproposed_count: 0,
            unproposed_bytes: 0,
            proposed: std::collections::BTreeSet::new(),
            batch_timer_armed: false,
            clock_ms: 0,
            last_proposal_time_ms: 0,
            transfer_requested: None,
            stable_proof: Vec::new(),
            transfer_proof: Vec::new(),
            view_change: None,
            view_changes: BTreeMap::new(),
            request_timer_armed: false,
            own_new_view: None,
            failed_views: 0,
            executed_at_last_tick: last_executed,
            suspects: BTreeMap::new(),
            future_commits: BTreeMap::new(),
            future_batches: BTreeMap::new(),
        };
        for record in records {
            replica.restore(record);
        }
        replica.next_sequence = replica.next_sequence.max(replica.last_delivered + 1);
        Ok(replica)
    }

    /// Effects to carry out once at start: the first retransmission timer.
    /// Effects to carry out once at start: the first retransmission timer, and a state
    /// transfer if the replica restarted below a checkpoint it had recorded stable (a crash
    /// can land between persisting the checkpoint and fetching its state).
    pub fn start(&mut self) -> Vec<Effect> {
        let mut effects = vec![Effect::ScheduleTimeout {
            kind: TimeoutKind::Retransmit,
            after_ms: self.config.retransmit_interval_ms,
        }];
        self.transfer_if_below_low_watermark(&mut effects);
        effects
    }

    /// PBFT §4.3: `stable` becomes the low watermark (if it is above it): the log at and
    /// below it is discarded, the checkpoint is persisted with its proof, and the state is
    /// fetched if this replica has not executed that far.
    fn adopt_stable(&mut self, stable: StableCheckpoint, effects: &mut Vec<Effect>) {
        let StableCheckpoint { sequence, state_digest, proof } = stable;
        if sequence <= self.low_watermark {
            return;
        }
        self.low_watermark = sequence;
        self.stable_digest = state_digest;
        self.slots.retain(|slot, _| *slot > sequence);
        self.checkpoints.retain(|slot, _| *slot >= sequence);
        self.far_checkpoints.retain(|_, message| checkpoint_sequence(message) > sequence);
        effects.push(Effect::Persist(Record::Stable {
            sequence,
            state_digest,
            proof: proof.clone(),
        }));
        self.stable_proof = proof;
        self.transfer_if_below_low_watermark(effects);
    }

    /// A replica whose state is below its own stable checkpoint cannot catch up by
    /// messages (the others discarded that log): it fetches the state, once at a time.
    fn transfer_if_below_low_watermark(&mut self, effects: &mut Vec<Effect>) {
        if self.last_executed < self.low_watermark
            && self.transfer_requested.is_none_or(|requested| requested < self.low_watermark)
        {
            self.transfer_requested = Some(self.low_watermark);
            self.transfer_proof = self.stable_proof.clone();
            effects.push(Effect::RequestStateTransfer {
                sequence: self.low_watermark,
                state_digest: self.stable_digest,
                proof: self.stable_proof.clone(),
            });
        }
    }

    fn restore(&mut self, record: &Record) {
        match record {
            Record::Stable { sequence, state_digest, proof } => {
                if *sequence > self.low_watermark {
                    self.low_watermark = *sequence;
                    self.stable_digest = *state_digest;
                    self.stable_proof = proof.clone();
                    self.slots.retain(|slot, _| *slot > *sequence);
                }
            }
            Record::Accepted(message) | Record::Sent(message) => match &message.message {
                Message::PrePrepare { view, sequence, .. } => {
                    self.view = self.view.max(*view);
                    let slot = self.slots.entry(*sequence).or_default();
                    slot.enter(*view);
                    if slot.view == *view {
                        slot.pre_prepare = Some(message.clone());
                    }
                    if message.sender == self.id {
                        self.next_sequence = self.next_sequence.max(sequence + 1);
                    }
                }
                Message::Prepare { view, sequence, digest } => {
                    let slot = self.slots.entry(*sequence).or_default();
                    slot.enter(*view);
                    if slot.view == *view {
                        slot.prepares.insert(self.id, (*digest, message.signature));
                        slot.sent_prepare = Some(message.clone());
                    }
                }
                Message::Commit { view, sequence, digest } => {
                    let slot = self.slots.entry(*sequence).or_default();
                    slot.enter(*view);
                    if slot.view == *view {
                        slot.commits.insert(self.id, (*digest, message.signature));
                        slot.sent_commit = Some(message.clone());
                    }
                }
                Message::Checkpoint { sequence, .. } => {
                    self.checkpoints.entry(*sequence).or_default().insert(self.id, message.clone());
                    self.own_checkpoint = Some(message.clone());
                }
                Message::ViewChange { new_view, .. } => {
                    if *new_view > self.view {
                        self.view_change =
                            Some(self.view_change.map_or(*new_view, |v| v.max(*new_view)));
                        self.view_changes
                            .entry(*new_view)
                            .or_default()
                            .insert(self.id, message.clone());
                    }
                }
                // Suspicion is not binding and not persisted.
                Message::Suspect { .. } => {}
                Message::NewView { view, pre_prepares, .. } => {
                    if *view >= self.view {
                        self.view = *view;
                        if self.view_change.is_some_and(|pending| pending <= *view) {
                            self.view_change = None;
                        }
                        for pre_prepare in pre_prepares {
                            if let Message::PrePrepare { sequence, .. } = pre_prepare.message {
                                let slot = self.slots.entry(sequence).or_default();
                                slot.enter(*view);
                                slot.pre_prepare = Some(pre_prepare.clone());
                                if pre_prepare.sender == self.id {
                                    self.next_sequence = self.next_sequence.max(sequence + 1);
                                }
                            }
                        }
                    }
                }
            },
        }
    }

    pub fn id(&self) -> ReplicaId {
        self.id
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn low_watermark(&self) -> Sequence {
        self.low_watermark
    }

    /// Whether the replica has left its view and awaits a NEW-VIEW (PBFT §4.4).
    pub fn in_view_change(&self) -> bool {
        self.view_change.is_some()
    }

    pub fn last_delivered(&self) -> Sequence {
        self.last_delivered
    }

    pub fn is_primary(&self) -> bool {
        self.config.primary(self.view) == self.id
    }

    fn high_watermark(&self) -> Sequence {
        self.low_watermark + self.config.watermark_window
    }

    fn sign(&self, message: Message) -> SignedMessage {
        let signature = self.crypto.sign(&message.signing_bytes(self.id));
        SignedMessage { sender: self.id, message, signature }
    }

    /// Tells the replica the caller's wall-clock time, in milliseconds since the Unix
    /// epoch. The primary stamps the batches it cuts with it (contracts read block time
    /// from there); nothing in the protocol's decisions depends on it. The replica reads
    /// no clock itself: the caller reports time before each step that may cut a batch.
    pub fn observe_time(&mut self, now_ms: u64) {
        self.clock_ms = now_ms;
    }

    /// Advances the state machine by one input.
    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::Message(message) => self.on_message(message, &mut effects),
            Input::Request { request } => self.on_request(request, &mut effects),
            Input::Timeout(TimeoutKind::Batch { view }) => {
                if view == self.view {
                    self.batch_timer_armed = false;
                    self.cut_batches(true, &mut effects);
                }
            }
            Input::Timeout(TimeoutKind::Retransmit) => self.on_retransmit(&mut effects),
            Input::Timeout(TimeoutKind::Request { view, delivered }) => {
                self.on_request_timeout(view, delivered, &mut effects);
            }
            Input::Timeout(TimeoutKind::ViewChange { view }) => {
                self.on_view_change_timeout(view, &mut effects);
            }
            Input::Executed { sequence, state_digest } => {
                self.on_executed(sequence, state_digest, &mut effects);
            }
            Input::StateTransferred { sequence, state_digest, requests } => {
                for digest in &requests {
                    self.forget_request(digest);
                }
                self.on_state_transferred(sequence, state_digest, &mut effects);
            }
        }
        effects
    }

    // ---- PBFT §4.2: normal case ----

    fn on_request(&mut self, request: Vec<u8>, effects: &mut Vec<Effect>) {
        let digest = self.crypto.digest(&request);
        if self.pending_requests.contains_key(&digest) {
            return;
        }
        if self.pending_requests.len() >= PENDING_REQUESTS_MAX
            || request.len() > self.config.batch_bytes_max
        {
            effects.push(Effect::RequestRefused { request });
            return;
        }
        self.arrivals += 1;
        self.unproposed.push_back(digest);
        self.unproposed_count += 1;
        self.unproposed_bytes += request.len();
        self.pending_requests.insert(digest, PendingRequest { arrival: self.arrivals, request });
        self.cut_batches(false, effects);
        self.arm_request_timer(effects);
    }

    fn pre_prepare(&mut self, batch: Vec<u8>, digest: Hash, effects: &mut Vec<Effect>) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let view = self.view;
        let message = self.sign(Message::PrePrepare { view, sequence, digest, batch });
        let slot = self.slots.entry(sequence).or_default();
        slot.enter(view);
        slot.pre_prepare = Some(message.clone());
        effects.push(Effect::Persist(Record::Sent(message.clone())));
        effects.push(Effect::Broadcast(message));
        self.try_progress(sequence, effects);
    }

    /// The primary cuts batches from the requests no batch holds yet, while the window has
    /// room: full batches (by count or bytes) at once, and the remainder too when `force`
    /// (the batch timer fired). A remainder waits for the batch timer.
    fn cut_batches(&mut self, force: bool, effects: &mut Vec<Effect>) {
        if !self.is_primary() || self.view_change.is_some() {
            return;
        }
        let (requests_max, bytes_max) =
            (self.config.batch_requests_max, self.config.batch_bytes_max);
        while self.unproposed_count > 0 && self.next_sequence <= self.high_watermark() {
            let full = self.unproposed_count >= requests_max || self.unproposed_bytes >= bytes_max;
            if !full && !force {
                break;
            }
            let mut requests: Vec<(Hash, Vec<u8>)> = Vec::new();
            let mut bytes = 0usize;
            while requests.len() < requests_max {
                let Some(digest) = self.unproposed.front().copied() else { break };
                let Some(pending) = self.pending_requests.get(&digest) else {
                    // Delivered (or transferred) while it waited.
                    self.unproposed.pop_front();
                    continue;
                };
                if !requests.is_empty() && bytes + pending.request.len() > bytes_max {
                    break;
                }
                bytes += pending.request.len();
                requests.push((digest, pending.request.clone()));
                self.unproposed.pop_front();
            }
            if requests.is_empty() {
                break;
            }
            self.unproposed_count -= requests.len();
            self.unproposed_bytes -= bytes;
            // The proposal's time never goes backwards at this replica, even if the
            // caller's clock does.
            let header = crate::batch::BatchHeader {
                view: self.view,
                timestamp_ms: self.clock_ms.max(self.last_proposal_time_ms),
            };
            self.last_proposal_time_ms = header.timestamp_ms;
            let encoded = crate::batch::encode_batch(
                header,
                &requests.iter().map(|(_, request)| request).collect::<Vec<_>>(),
            );
            let digest = self.crypto.digest(&encoded);
            self.proposed.extend(requests.iter().map(|(digest, _)| *digest));
            self.pre_prepare(encoded, digest, effects);
        }
        // The batch timer runs only while a batch could go out: with the window full, the
        // next stable checkpoint calls this again.
        if self.unproposed_count > 0
            && !self.batch_timer_armed
            && self.next_sequence <= self.high_watermark()
        {
            self.batch_timer_armed = true;
            effects.push(Effect::ScheduleTimeout {
                kind: TimeoutKind::Batch { view: self.view },
                after_ms: self.config.batch_timeout_ms,
            });
        }
    }

    /// A request is no longer pending (delivered, or covered by transferred state).
    fn forget_request(&mut self, digest: &Hash) {
        if let Some(pending) = self.pending_requests.remove(digest)
            && !self.proposed.remove(digest)
        {
            self.unproposed_count -= 1;
            self.unproposed_bytes -= pending.request.len();
        }
    }

    /// Rebuilds the queue of unproposed requests from what is pending and what this view's
    /// batches hold (after a view change).
    fn requeue_unproposed(&mut self) {
        let mut waiting: Vec<(u64, Hash, usize)> = self
            .pending_requests
            .iter()
            .filter(|(digest, _)| !self.proposed.contains(digest))
            .map(|(digest, pending)| (pending.arrival, *digest, pending.request.len()))
            .collect();
        waiting.sort_unstable();
        self.unproposed = waiting.iter().map(|(_, digest, _)| *digest).collect();
        self.unproposed_count = waiting.len();
        self.unproposed_bytes = waiting.iter().map(|(_, _, bytes)| bytes).sum();
    }

    fn on_message(&mut self, message: SignedMessage, effects: &mut Vec<Effect>) {
        let sender = message.sender;
        if sender >= self.config.replicas {
            effects.push(Effect::Evidence(Evidence::UnknownSender { sender }));
            return;
        }
        if sender == self.id {
            return;
        }
        let bytes = message.message.signing_bytes(sender);
        if !self.crypto.verify(sender, &bytes, &message.signature) {
            let kind = message.message.kind();
            effects.push(Effect::Evidence(Evidence::BadSignature { sender, kind }));
            return;
        }
        match message.message.clone() {
            Message::PrePrepare { view, sequence, digest, batch } if view > self.view => {
                if sender == self.config.primary(view) && self.crypto.digest(&batch) == digest {
                    self.on_future_pre_prepare(message, sequence, digest, effects);
                }
            }
            Message::Commit { view, sequence, digest } if view > self.view => {
                self.on_future_commit(sender, view, sequence, digest, message.signature, effects);
            }
            Message::PrePrepare { view, sequence, digest, batch } => {
                if !self.in_view_and_window(sender, view, sequence, effects) {
                    return;
                }
                self.on_pre_prepare(message, view, sequence, digest, &batch, effects);
            }
            Message::Prepare { view, sequence, digest } => {
                // PBFT §4.4: a replica moving to a new view takes no part in the old one.
                if self.view_change.is_some()
                    || !self.in_view_and_window(sender, view, sequence, effects)
                {
                    return;
                }
                if sender == self.config.primary(view) {
                    effects.push(Effect::Evidence(Evidence::PrepareFromPrimary { sender }));
                    return;
                }
                let vote = Vote { kind: VoteKind::Prepare, sender, view, sequence, digest };
                self.on_vote(vote, message.signature, effects);
            }
            Message::Commit { view, sequence, digest } => {
                if !self.in_view_and_window(sender, view, sequence, effects) {
                    return;
                }
                let vote = Vote { kind: VoteKind::Commit, sender, view, sequence, digest };
                self.on_vote(vote, message.signature, effects);
            }
            Message::Checkpoint { sequence, state_digest } => {
                self.on_checkpoint(message, sequence, state_digest, effects);
            }
            Message::ViewChange { new_view, .. } => self.on_view_change(message, new_view, effects),
            Message::NewView { view, .. } => self.on_new_view(&message, view, effects),
            Message::Suspect { view } => {
                if view == self.view && !self.suspects.contains_key(&sender) {
                    self.suspects.insert(sender, message);
                    self.check_suspicion(effects);
                }
            }
        }
    }

    /// Records a PREPARE or COMMIT (PBFT §4.2); a second, different vote of the same kind
    /// from the same replica for the same (view, sequence) is evidence.
    fn on_vote(&mut self, vote: Vote, signature: Signature, effects: &mut Vec<Effect>) {
        let Vote { kind, sender, view, sequence, digest } = vote;
        let slot = self.slots.entry(sequence).or_default();
        slot.enter(view);
        let (votes, name) = match kind {
            VoteKind::Prepare => (&mut slot.prepares, "prepare"),
            VoteKind::Commit => (&mut slot.commits, "commit"),
        };
        if !record_vote(votes, sender, digest, signature) {
            effects.push(Effect::Evidence(Evidence::ConflictingVote {
                sender,
                kind: name,
                view,
                sequence,
            }));
            return;
        }
        self.try_progress(sequence, effects);
    }

    fn in_view_and_window(
        &self,
        sender: ReplicaId,
        view: View,
        sequence: Sequence,
        effects: &mut Vec<Effect>,
    ) -> bool {
        if view != self.view {
            effects.push(Effect::Evidence(Evidence::WrongView {
                sender,
                view,
                current: self.view,
            }));
            return false;
        }
        let (low, high) = (self.low_watermark, self.high_watermark());
        if sequence <= low || sequence > high {
            // Below h is a late duplicate of finished work; above H is out of bounds.
            if sequence > high {
                effects.push(Effect::Evidence(Evidence::OutOfWindow {
                    sender,
                    sequence,
                    low,
                    high,
                }));
            }
            return false;
        }
        true
    }

    fn on_pre_prepare(
        &mut self,
        message: SignedMessage,
        view: View,
        sequence: Sequence,
        digest: Hash,
        batch: &[u8],
        effects: &mut Vec<Effect>,
    ) {
        let sender = message.sender;
        if sender != self.config.primary(view) {
            effects.push(Effect::Evidence(Evidence::NotPrimary { sender, view }));
            return;
        }
        if self.crypto.digest(batch) != digest {
            effects.push(Effect::Evidence(Evidence::BatchDigestMismatch { sender, sequence }));
            return;
        }
        // A proposal names the view it was cut in: this one, or an earlier one when a
        // NEW-VIEW re-proposes it.
        match crate::batch::decode_batch(
            batch,
            self.config.batch_requests_max,
            self.config.batch_bytes_max,
        ) {
            Ok(decoded)
                if decoded.header.is_none_or(|header| header.view <= view)
                    && decoded
                        .requests
                        .iter()
                        .all(|request| self.crypto.validate_request(request)) => {}
            _ => {
                effects.push(Effect::Evidence(Evidence::MalformedBatch { sender, sequence }));
                return;
            }
        }
        let slot = self.slots.entry(sequence).or_default();
        slot.enter(view);
        match slot.digest() {
            Some(existing) if existing == digest => return,
            Some(_) => {
                effects.push(Effect::Evidence(Evidence::Equivocation { sender, view, sequence }));
                return;
            }
            None => {}
        }
        // A replica that already sent a PREPARE for another digest (before a crash, say)
        // must not prepare this one.
        if let Some((own, _)) = slot.prepares.get(&self.id)
            && *own != digest
        {
            effects.push(Effect::Evidence(Evidence::Equivocation { sender, view, sequence }));
            return;
        }
        slot.pre_prepare = Some(message.clone());
        if self.view_change.is_some() {
            // Moving to a new view: keep the batch (a commit certificate may still arrive
            // for it), but take no part in the old view.
            self.try_progress(sequence, effects);
            return;
        }
        effects.push(Effect::Persist(Record::Accepted(message)));
        self.arm_request_timer(effects);
        let slot = self.slots.entry(sequence).or_default();
        if slot.sent_prepare.is_none() {
            let prepare = self.sign(Message::Prepare { view, sequence, digest });
            let slot = self.slots.entry(sequence).or_default();
            slot.prepares.insert(self.id, (digest, prepare.signature));
            slot.sent_prepare = Some(prepare.clone());
            effects.push(Effect::Persist(Record::Sent(prepare.clone())));
            effects.push(Effect::Broadcast(prepare));
        }
        self.try_progress(sequence, effects);
    }

    /// PBFT §4.2: prepared(m, v, n, i) holds once the replica has the PRE-PREPARE and 2f
    /// matching PREPAREs from distinct backups; committed-local once it is prepared and has
    /// 2f + 1 matching COMMITs (its own included).
    fn try_progress(&mut self, sequence: Sequence, effects: &mut Vec<Effect>) {
        let quorum = self.config.quorum();
        let primary = self.config.primary(self.view);
        let view = self.view;
        let Some(slot) = self.slots.get(&sequence) else { return };
        let Some(digest) = slot.digest() else { return };
        if self.view_change.is_some() {
            // A replica moving to a new view sends nothing in the old one, but it still
            // learns decisions: 2f + 1 matching COMMITs prove that f + 1 honest replicas
            // prepared the batch, so no later view can order anything else there.
            let matching_commits =
                slot.commits.values().filter(|(vote, _)| *vote == digest).count();
            if !slot.committed && matching_commits >= quorum {
                if let Some(slot) = self.slots.get_mut(&sequence) {
                    slot.committed = true;
                }
                self.deliver_in_order(effects);
            }
            return;
        }
        let matching_prepares = slot
            .prepares
            .iter()
            .filter(|(sender, (vote, _))| **sender != primary && *vote == digest)
            .count();
        let prepared = matching_prepares + 1 >= quorum;
        if prepared
            && slot
                .prepared_certificate
                .as_ref()
                .is_none_or(|certificate| certificate_view(certificate) < view)
        {
            let prepares: Vec<SignedMessage> = slot
                .prepares
                .iter()
                .filter(|(sender, (vote, _))| **sender != primary && *vote == digest)
                .take(quorum - 1)
                .map(|(sender, (_, signature))| SignedMessage {
                    sender: *sender,
                    message: Message::Prepare { view, sequence, digest },
                    signature: *signature,
                })
                .collect();
            let certificate = slot
                .pre_prepare
                .clone()
                .map(|pre_prepare| PreparedCertificate { pre_prepare, prepares });
            if let Some(slot) = self.slots.get_mut(&sequence) {
                slot.prepared_certificate = certificate;
            }
        }
        let Some(slot) = self.slots.get(&sequence) else { return };
        if prepared && slot.sent_commit.is_none() {
            let commit = self.sign(Message::Commit { view, sequence, digest });
            let Some(slot) = self.slots.get_mut(&sequence) else { return };
            slot.commits.insert(self.id, (digest, commit.signature));
            slot.sent_commit = Some(commit.clone());
            effects.push(Effect::Persist(Record::Sent(commit.clone())));
            effects.push(Effect::Broadcast(commit));
        }
        let Some(slot) = self.slots.get_mut(&sequence) else { return };
        let matching_commits = slot.commits.values().filter(|(vote, _)| *vote == digest).count();
        if prepared && !slot.committed && matching_commits >= quorum {
            slot.committed = true;
            self.deliver_in_order(effects);
        }
    }

    /// The requests in a delivered batch are no longer pending.
    fn forget_delivered_requests(&mut self, batch: &[u8]) {
        if self.pending_requests.is_empty() {
            return;
        }
        let Ok(requests) = self.batch_requests(batch) else { return };
        let done: Vec<Hash> = requests.iter().map(|request| self.crypto.digest(request)).collect();
        for digest in &done {
            self.forget_request(digest);
        }
    }

    fn batch_requests<'b>(
        &self,
        batch: &'b [u8],
    ) -> Result<Vec<&'b [u8]>, pactum_types::DecodeError> {
        crate::batch::batch_requests(
            batch,
            self.config.batch_requests_max,
            self.config.batch_bytes_max,
        )
    }

    fn deliver_in_order(&mut self, effects: &mut Vec<Effect>) {
        let quorum = self.config.quorum();
        while let Some(slot) = self.slots.get(&(self.last_delivered + 1)) {
            if !slot.committed {
                break;
            }
            let Some(SignedMessage {
                message: Message::PrePrepare { sequence, digest, batch, .. },
                ..
            }) = slot.pre_prepare.clone()
            else {
                break;
            };
            // The certificate's COMMITs are from the slot's view, which may be later than
            // the PRE-PREPARE's when the decision was learned from another view.
            let view = slot.view;
            let commit_certificate: Vec<(ReplicaId, Signature)> = slot
                .commits
                .iter()
                .filter(|(_, (vote, _))| *vote == digest)
                .map(|(sender, (_, signature))| (*sender, *signature))
                .take(quorum)
                .collect();
            self.last_delivered = sequence;
            self.forget_delivered_requests(&batch);
            self.future_commits.retain(|pending, _| *pending > sequence);
            self.future_batches.retain(|pending, _| *pending > sequence);
            effects.push(Effect::Deliver(Delivery {
                view,
                sequence,
                digest,
                batch,
                commit_certificate,
            }));
        }
    }

    // ---- Learning decisions of views this replica has not entered ----

    /// A sequence number a decision could still be learned for: undelivered, in the window.
    fn learnable(&self, sequence: Sequence, view: View) -> bool {
        sequence > self.last_delivered
            && sequence <= self.high_watermark()
            && view <= self.view + VIEW_CHANGE_VIEWS_AHEAD_MAX
    }

    fn on_future_commit(
        &mut self,
        sender: ReplicaId,
        view: View,
        sequence: Sequence,
        digest: Hash,
        signature: Signature,
        effects: &mut Vec<Effect>,
    ) {
        if !self.learnable(sequence, view) {
            return;
        }
        let votes = self.future_commits.entry(sequence).or_default();
        if votes.get(&sender).is_some_and(|(known, _, _)| *known >= view) {
            return;
        }
        votes.insert(sender, (view, digest, signature));
        self.try_learn(sequence, effects);
    }

    fn on_future_pre_prepare(
        &mut self,
        message: SignedMessage,
        sequence: Sequence,
        digest: Hash,
        effects: &mut Vec<Effect>,
    ) {
        let Message::PrePrepare { view, .. } = message.message else { return };
        if !self.learnable(sequence, view) {
            return;
        }
        // Keep only batches that f + 1 COMMITs vouch for (one of them honest), so a
        // faulty primary of a later view cannot fill memory with batches; the primary
        // re-sends its PRE-PREPAREs, so one that came too early comes again.
        let vouching = self
            .future_commits
            .get(&sequence)
            .map_or(0, |votes| votes.values().filter(|(_, vote, _)| *vote == digest).count());
        if vouching <= self.config.faults_tolerated() {
            return;
        }
        self.future_batches.entry(sequence).or_default().insert(digest, message);
        self.try_learn(sequence, effects);
    }

    /// 2f + 1 matching COMMITs from one view are a commit certificate: f + 1 honest
    /// replicas prepared the batch, so no view orders anything else at this sequence
    /// number, whichever view this replica is in. With the batch at hand, it is decided.
    fn try_learn(&mut self, sequence: Sequence, effects: &mut Vec<Effect>) {
        let quorum = self.config.quorum();
        let Some(votes) = self.future_commits.get(&sequence) else { return };
        let mut tally: BTreeMap<(View, Hash), BTreeMap<ReplicaId, (Hash, Signature)>> =
            BTreeMap::new();
        for (sender, (view, digest, signature)) in votes {
            tally.entry((*view, *digest)).or_default().insert(*sender, (*digest, *signature));
        }
        let Some(((view, digest), certificate)) =
            tally.into_iter().find(|(_, voters)| voters.len() >= quorum)
        else {
            return;
        };
        let Some(pre_prepare) =
            self.future_batches.get(&sequence).and_then(|batches| batches.get(&digest)).cloned()
        else {
            return;
        };
        let slot = self.slots.entry(sequence).or_default();
        slot.view = view;
        slot.pre_prepare = Some(pre_prepare);
        slot.prepares.clear();
        slot.commits = certificate;
        slot.committed = true;
        self.future_commits.remove(&sequence);
        self.future_batches.remove(&sequence);
        self.deliver_in_order(effects);
    }

    // ---- PBFT §4.3: checkpoints and garbage collection ----

    fn on_executed(&mut self, sequence: Sequence, state_digest: Hash, effects: &mut Vec<Effect>) {
        self.last_executed = self.last_executed.max(sequence);
        self.send_checkpoint(sequence, state_digest, effects);
    }

    /// Signs and broadcasts this replica's CHECKPOINT at `sequence`, if it is a
    /// checkpoint. It is sent even when the checkpoint is already stable here: the others
    /// may still need this vote, and it is what retransmission repeats.
    fn send_checkpoint(
        &mut self,
        sequence: Sequence,
        state_digest: Hash,
        effects: &mut Vec<Effect>,
    ) {
        if sequence == 0
            || !sequence.is_multiple_of(self.config.checkpoint_interval)
            || sequence < self.low_watermark
            || self.own_checkpoint.as_ref().is_some_and(|own| checkpoint_sequence(own) >= sequence)
        {
            return;
        }
        let checkpoint = self.sign(Message::Checkpoint { sequence, state_digest });
        effects.push(Effect::Persist(Record::Sent(checkpoint.clone())));
        effects.push(Effect::Broadcast(checkpoint.clone()));
        self.own_checkpoint = Some(checkpoint.clone());
        self.checkpoints.entry(sequence).or_default().insert(self.id, checkpoint);
        self.try_stabilise(sequence, effects);
    }

    fn on_checkpoint(
        &mut self,
        message: SignedMessage,
        sequence: Sequence,
        state_digest: Hash,
        effects: &mut Vec<Effect>,
    ) {
        let sender = message.sender;
        if sequence <= self.low_watermark
            || !sequence.is_multiple_of(self.config.checkpoint_interval)
        {
            return;
        }
        if sequence > self.high_watermark() {
            let newer = self
                .far_checkpoints
                .get(&sender)
                .is_none_or(|existing| checkpoint_sequence(existing) < sequence);
            if newer {
                self.far_checkpoints.insert(sender, message);
                let votes: Vec<SignedMessage> = self.far_checkpoints.values().cloned().collect();
                self.maybe_transfer(sequence, state_digest, &votes, effects);
            }
            return;
        }
        let votes = self.checkpoints.entry(sequence).or_default();
        if let Some(existing) = votes.get(&sender) {
            if existing.message != message.message {
                effects
                    .push(Effect::Evidence(Evidence::ConflictingCheckpoint { sender, sequence }));
            }
            return;
        }
        votes.insert(sender, message);
        // Inside the window a replica that is behind usually catches up by itself; it
        // fetches state once the checkpoint is stable here (`try_stabilise`), or when it
        // made no progress for a whole retransmission interval (`on_retransmit`).
        self.try_stabilise(sequence, effects);
    }

    /// State transfer on a weak certificate: f + 1 matching CHECKPOINTs at a sequence past
    /// what this replica executed prove that at least one honest replica has that state.
    /// The others may already have discarded the log this replica would need to catch up
    /// message by message, so it fetches the committed batches up to there instead (in
    /// the node, the blocks with their commit certificates).
    fn maybe_transfer(
        &mut self,
        sequence: Sequence,
        state_digest: Hash,
        votes: &[SignedMessage],
        effects: &mut Vec<Effect>,
    ) {
        if sequence <= self.last_executed
            || self.transfer_requested.is_some_and(|requested| requested >= sequence)
        {
            return;
        }
        let proof: Vec<SignedMessage> = votes
            .iter()
            .filter(|vote| vote.message == Message::Checkpoint { sequence, state_digest })
            .cloned()
            .collect();
        if proof.len() > self.config.faults_tolerated() {
            self.transfer_requested = Some(sequence);
            self.transfer_proof = proof.clone();
            effects.push(Effect::RequestStateTransfer { sequence, state_digest, proof });
        }
    }

    /// A replica that made no progress for a retransmission interval, while f + 1
    /// replicas (one of them honest) signed a checkpoint past it inside the window, fetches
    /// that state: the others may have discarded the log it is missing.
    fn transfer_if_stuck(&mut self, effects: &mut Vec<Effect>) {
        let past: Vec<(Sequence, Vec<SignedMessage>)> = self
            .checkpoints
            .range(self.last_executed + 1..)
            .rev()
            .map(|(sequence, votes)| (*sequence, votes.values().cloned().collect()))
            .collect();
        for (sequence, votes) in past {
            let mut tally: BTreeMap<Hash, usize> = BTreeMap::new();
            for vote in &votes {
                if let Message::Checkpoint { state_digest, .. } = vote.message {
                    *tally.entry(state_digest).or_default() += 1;
                }
            }
            let vouched = tally
                .into_iter()
                .find(|(_, count)| *count > self.config.faults_tolerated())
                .map(|(digest, _)| digest);
            if let Some(state_digest) = vouched {
                self.maybe_transfer(sequence, state_digest, &votes, effects);
                return;
            }
        }
    }

    /// PBFT §4.3: a checkpoint with 2f + 1 matching messages is stable; everything at or
    /// below it is discarded and the window moves up.
    fn try_stabilise(&mut self, sequence: Sequence, effects: &mut Vec<Effect>) {
        let quorum = self.config.quorum();
        let Some(votes) = self.checkpoints.get(&sequence) else { return };
        let mut tally: BTreeMap<Hash, Vec<SignedMessage>> = BTreeMap::new();
        for message in votes.values() {
            if let Message::Checkpoint { state_digest, .. } = message.message {
                tally.entry(state_digest).or_default().push(message.clone());
            }
        }
        let Some((state_digest, proof)) =
            tally.into_iter().find(|(_, messages)| messages.len() >= quorum)
        else {
            return;
        };
        if sequence <= self.low_watermark {
            return;
        }
        self.adopt_stable(StableCheckpoint { sequence, state_digest, proof }, effects);
        self.next_sequence = self.next_sequence.max(sequence + 1);
        self.cut_batches(false, effects);
    }

    fn on_state_transferred(
        &mut self,
        sequence: Sequence,
        state_digest: Hash,
        effects: &mut Vec<Effect>,
    ) {
        if self.transfer_requested.is_some_and(|requested| requested <= sequence) {
            self.transfer_requested = None;
        }
        if sequence <= self.last_executed {
            return;
        }
        self.last_executed = sequence;
        self.last_delivered = self.last_delivered.max(sequence);
        let proof = std::mem::take(&mut self.transfer_proof);
        self.adopt_stable(StableCheckpoint { sequence, state_digest, proof }, effects);
        self.send_checkpoint(sequence, state_digest, effects);
        self.next_sequence = self.next_sequence.max(sequence + 1);
        self.cut_batches(false, effects);
        self.deliver_in_order(effects);
    }

    // ---- PBFT §4.4: view changes ----

    fn has_pending_work(&self) -> bool {
        !self.pending_requests.is_empty()
            || self.slots.iter().any(|(sequence, slot)| {
                *sequence > self.last_delivered && slot.pre_prepare.is_some()
            })
    }

    fn arm_request_timer(&mut self, effects: &mut Vec<Effect>) {
        if self.request_timer_armed || self.view_change.is_some() {
            return;
        }
        self.request_timer_armed = true;
        effects.push(Effect::ScheduleTimeout {
            kind: TimeoutKind::Request { view: self.view, delivered: self.last_delivered },
            after_ms: self.config.request_timeout_ms,
        });
    }

    /// PBFT §4.4: a backup whose pending work made no progress for a whole timeout
    /// suspects the primary and moves to the next view.
    fn on_request_timeout(&mut self, view: View, delivered: Sequence, effects: &mut Vec<Effect>) {
        self.request_timer_armed = false;
        if view != self.view || self.view_change.is_some() || !self.has_pending_work() {
            return;
        }
        if self.last_delivered > delivered {
            self.arm_request_timer(effects);
            return;
        }
        if !self.suspects.contains_key(&self.id) {
            let suspect = self.sign(Message::Suspect { view });
            effects.push(Effect::Broadcast(suspect.clone()));
            self.suspects.insert(self.id, suspect);
        }
        self.check_suspicion(effects);
        // Keep watching: progress clears the worry, and the SUSPECT is re-sent meanwhile.
        self.arm_request_timer(effects);
    }

    /// f + 1 SUSPECTs for the current view include an honest replica's: move to the next
    /// view. Fewer commit no one to anything, so one replica that merely lost messages
    /// keeps working in the current view and catches up by retransmission.
    fn check_suspicion(&mut self, effects: &mut Vec<Effect>) {
        if self.view_change.is_none() && self.suspects.len() > self.config.faults_tolerated() {
            self.start_view_change(self.view + 1, effects);
        }
    }

    /// The NEW-VIEW did not come: try the view after, waiting twice as long (PBFT §4.5.2).
    fn on_view_change_timeout(&mut self, view: View, effects: &mut Vec<Effect>) {
        if self.view_change != Some(view) {
            return;
        }
        self.failed_views = self.failed_views.saturating_add(1);
        self.start_view_change(view + 1, effects);
    }

    fn view_change_timeout_ms(&self) -> u64 {
        let factor = 1u64 << self.failed_views.min(30);
        self.config
            .view_change_timeout_ms
            .saturating_mul(factor)
            .min(self.config.view_change_timeout_max_ms)
    }

    fn start_view_change(&mut self, new_view: View, effects: &mut Vec<Effect>) {
        if new_view <= self.view || self.view_change.is_some_and(|pending| pending >= new_view) {
            return;
        }
        self.view_change = Some(new_view);
        self.request_timer_armed = false;
        let low_watermark = self.low_watermark;
        let prepared: Vec<PreparedCertificate> = self
            .slots
            .iter()
            .filter(|(sequence, _)| **sequence > low_watermark)
            .filter_map(|(_, slot)| slot.prepared_certificate.clone())
            .collect();
        let message = self.sign(Message::ViewChange {
            new_view,
            stable_sequence: self.low_watermark,
            stable_digest: self.stable_digest,
            checkpoint_proof: self.stable_proof.clone(),
            prepared,
        });
        effects.push(Effect::Persist(Record::Sent(message.clone())));
        effects.push(Effect::Broadcast(message.clone()));
        self.view_changes.entry(new_view).or_default().insert(self.id, message);
        effects.push(Effect::ScheduleTimeout {
            kind: TimeoutKind::ViewChange { view: new_view },
            after_ms: self.view_change_timeout_ms(),
        });
        self.try_new_view(new_view, effects);
    }

    fn signed_by(&self, message: &SignedMessage) -> bool {
        message.sender < self.config.replicas
            && self.crypto.verify(
                message.sender,
                &message.message.signing_bytes(message.sender),
                &message.signature,
            )
    }

    /// Checks a VIEW-CHANGE's own signature, its checkpoint proof (at least f + 1 valid,
    /// matching CHECKPOINTs from distinct replicas, so at least one honest replica has that
    /// state) and each prepared certificate (a PRE-PREPARE by the primary of its view and
    /// 2f matching PREPAREs from distinct backups, in an earlier view, in the window above
    /// the checkpoint, one per sequence number).
    fn check_view_change(&self, message: &SignedMessage) -> Result<View, &'static str> {
        let Message::ViewChange {
            new_view,
            stable_sequence,
            stable_digest,
            checkpoint_proof,
            prepared,
        } = &message.message
        else {
            return Err("not a VIEW-CHANGE");
        };
        if !self.signed_by(message) {
            return Err("bad signature");
        }
        if *stable_sequence > 0 {
            let expected =
                Message::Checkpoint { sequence: *stable_sequence, state_digest: *stable_digest };
            let mut signers = std::collections::BTreeSet::new();
            for checkpoint in checkpoint_proof {
                if checkpoint.message == expected && self.signed_by(checkpoint) {
                    signers.insert(checkpoint.sender);
                }
            }
            if signers.len() <= self.config.faults_tolerated() {
                return Err("the checkpoint proof has too few valid signatures");
            }
        }
        let mut sequences = std::collections::BTreeSet::new();
        for certificate in prepared {
            let Message::PrePrepare { view, sequence, digest, batch } =
                &certificate.pre_prepare.message
            else {
                return Err("a prepared certificate without a PRE-PREPARE");
            };
            if *view >= *new_view {
                return Err("a prepared certificate from a view not below the new one");
            }
            if *sequence <= *stable_sequence
                || *sequence > stable_sequence + self.config.watermark_window
            {
                return Err("a prepared certificate outside the window");
            }
            if !sequences.insert(*sequence) {
                return Err("two prepared certificates for one sequence number");
            }
            let primary = self.config.primary(*view);
            if certificate.pre_prepare.sender != primary
                || !self.signed_by(&certificate.pre_prepare)
            {
                return Err("a PRE-PREPARE not signed by its view's primary");
            }
            if self.crypto.digest(batch) != *digest {
                return Err("a PRE-PREPARE whose batch does not match its digest");
            }
            let expected = Message::Prepare { view: *view, sequence: *sequence, digest: *digest };
            let mut signers = std::collections::BTreeSet::new();
            for prepare in &certificate.prepares {
                if prepare.sender != primary
                    && prepare.message == expected
                    && self.signed_by(prepare)
                {
                    signers.insert(prepare.sender);
                }
            }
            if signers.len() + 1 < self.config.quorum() {
                return Err("a prepared certificate with too few valid PREPAREs");
            }
        }
        Ok(*new_view)
    }

    fn on_view_change(
        &mut self,
        message: SignedMessage,
        new_view: View,
        effects: &mut Vec<Effect>,
    ) {
        let sender = message.sender;
        if new_view <= self.view {
            return;
        }
        if new_view > self.view + VIEW_CHANGE_VIEWS_AHEAD_MAX {
            effects.push(Effect::Evidence(Evidence::InvalidViewChange {
                sender,
                reason: "view too far ahead",
            }));
            return;
        }
        if self.view_changes.get(&new_view).is_some_and(|votes| votes.contains_key(&sender)) {
            return;
        }
        if let Err(reason) = self.check_view_change(&message) {
            effects.push(Effect::Evidence(Evidence::InvalidViewChange { sender, reason }));
            return;
        }
        // A VIEW-CHANGE away from the current view is the strongest form of suspicion.
        if let std::collections::btree_map::Entry::Vacant(entry) = self.suspects.entry(sender) {
            entry.insert(message.clone());
            self.check_suspicion(effects);
        }
        self.view_changes.entry(new_view).or_default().insert(sender, message);
        // PBFT §4.5.2: f + 1 replicas asking for views above ours include an honest one;
        // join the smallest of those views without waiting for a timer.
        let current = self.view_change.unwrap_or(self.view);
        let mut smallest_by_sender: BTreeMap<ReplicaId, View> = BTreeMap::new();
        for (view, votes) in self.view_changes.range(current + 1..) {
            for voter in votes.keys() {
                smallest_by_sender.entry(*voter).or_insert(*view);
            }
        }
        if smallest_by_sender.len() > self.config.faults_tolerated()
            && let Some(target) = smallest_by_sender.values().min().copied()
        {
            self.start_view_change(target, effects);
        }
        self.try_new_view(new_view, effects);
    }

    /// The new primary, holding 2f + 1 VIEW-CHANGEs for the view it moved to, starts it.
    fn try_new_view(&mut self, new_view: View, effects: &mut Vec<Effect>) {
        if self.config.primary(new_view) != self.id || self.view_change != Some(new_view) {
            return;
        }
        let quorum = self.config.quorum();
        let Some(votes) = self.view_changes.get(&new_view) else { return };
        if votes.len() < quorum {
            return;
        }
        let chosen: Vec<SignedMessage> = votes.values().take(quorum).cloned().collect();
        let (stable, pre_prepares) = self.compute_new_view(new_view, &chosen);
        let signed: Vec<SignedMessage> =
            pre_prepares.into_iter().map(|message| self.sign(message)).collect();
        let new_view_message = self.sign(Message::NewView {
            view: new_view,
            view_changes: chosen,
            pre_prepares: signed.clone(),
        });
        effects.push(Effect::Persist(Record::Sent(new_view_message.clone())));
        effects.push(Effect::Broadcast(new_view_message.clone()));
        self.own_new_view = Some(new_view_message);
        self.enter_view(new_view, stable, &signed, effects);
    }

    /// PBFT §4.4: from the chosen VIEW-CHANGEs, the new view starts above the highest
    /// stable checkpoint among them (min-s) and re-proposes, for every sequence number up
    /// to the highest prepared one (max-s), the batch prepared in the highest view, or a
    /// null (empty) batch where none was prepared.
    fn compute_new_view(
        &self,
        new_view: View,
        chosen: &[SignedMessage],
    ) -> (StableCheckpoint, Vec<Message>) {
        let mut stable =
            StableCheckpoint { sequence: 0, state_digest: Hash::ZERO, proof: Vec::new() };
        let mut best: BTreeMap<Sequence, (View, Hash, Vec<u8>)> = BTreeMap::new();
        for message in chosen {
            let Message::ViewChange {
                stable_sequence,
                stable_digest,
                checkpoint_proof,
                prepared,
                ..
            } = &message.message
            else {
                continue;
            };
            if *stable_sequence > stable.sequence {
                stable = StableCheckpoint {
                    sequence: *stable_sequence,
                    state_digest: *stable_digest,
                    proof: checkpoint_proof.clone(),
                };
            }
            for certificate in prepared {
                if let Message::PrePrepare { view, sequence, digest, batch } =
                    &certificate.pre_prepare.message
                    && best.get(sequence).is_none_or(|(best_view, _, _)| view > best_view)
                {
                    best.insert(*sequence, (*view, *digest, batch.clone()));
                }
            }
        }
        let highest =
            best.keys().next_back().copied().unwrap_or(stable.sequence).max(stable.sequence);
        let null_digest = self.crypto.digest(&[]);
        let pre_prepares = (stable.sequence + 1..=highest)
            .map(|sequence| match best.get(&sequence) {
                Some((_, digest, batch)) => Message::PrePrepare {
                    view: new_view,
                    sequence,
                    digest: *digest,
                    batch: batch.clone(),
                },
                None => Message::PrePrepare {
                    view: new_view,
                    sequence,
                    digest: null_digest,
                    batch: Vec::new(),
                },
            })
            .collect();
        (stable, pre_prepares)
    }

    fn on_new_view(&mut self, message: &SignedMessage, view: View, effects: &mut Vec<Effect>) {
        let sender = message.sender;
        // A replica that asked for view w promised to accept nothing from views below w.
        if view <= self.view || self.view_change.is_some_and(|pending| view < pending) {
            return;
        }
        let invalid = |reason| Effect::Evidence(Evidence::InvalidNewView { sender, reason });
        if sender != self.config.primary(view) {
            effects.push(invalid("not from the primary of the new view"));
            return;
        }
        if view > self.view + VIEW_CHANGE_VIEWS_AHEAD_MAX {
            effects.push(invalid("view too far ahead"));
            return;
        }
        let Message::NewView { view_changes, pre_prepares, .. } = &message.message else { return };
        let mut senders = std::collections::BTreeSet::new();
        for view_change in view_changes {
            match self.check_view_change(view_change) {
                Ok(target) if target == view => {
                    senders.insert(view_change.sender);
                }
                _ => {
                    effects.push(invalid("it carries an invalid VIEW-CHANGE"));
                    return;
                }
            }
        }
        if senders.len() < self.config.quorum() || senders.len() != view_changes.len() {
            effects.push(invalid("it does not carry 2f + 1 distinct VIEW-CHANGEs"));
            return;
        }
        let (stable, expected) = self.compute_new_view(view, view_changes);
        let matches = pre_prepares.len() == expected.len()
            && pre_prepares.iter().zip(&expected).all(|(pre_prepare, expected)| {
                pre_prepare.sender == sender
                    && pre_prepare.message == *expected
                    && self.signed_by(pre_prepare)
            });
        if !matches {
            effects.push(invalid("its PRE-PREPAREs do not follow from its VIEW-CHANGEs"));
            return;
        }
        effects.push(Effect::Persist(Record::Accepted(message.clone())));
        let pre_prepares = pre_prepares.clone();
        self.enter_view(view, stable, &pre_prepares, effects);
    }

    fn enter_view(
        &mut self,
        view: View,
        stable: StableCheckpoint,
        pre_prepares: &[SignedMessage],
        effects: &mut Vec<Effect>,
    ) {
        self.view = view;
        self.view_change = None;
        self.failed_views = 0;
        self.request_timer_armed = false;
        self.view_changes.retain(|pending, _| *pending > view);
        self.suspects.clear();
        self.batch_timer_armed = false;
        // What this view's batches hold: the re-proposals, and nothing else yet.
        self.proposed.clear();
        for pre_prepare in pre_prepares {
            if let Message::PrePrepare { batch, .. } = &pre_prepare.message
                && let Ok(requests) = self.batch_requests(batch)
            {
                let digests: Vec<Hash> =
                    requests.iter().map(|request| self.crypto.digest(request)).collect();
                self.proposed.extend(digests);
            }
        }
        self.proposed.retain(|digest| self.pending_requests.contains_key(digest));
        self.requeue_unproposed();
        if self.own_new_view.as_ref().is_some_and(
            |own| !matches!(own.message, Message::NewView { view: sent, .. } if sent == view),
        ) {
            self.own_new_view = None;
        }
        self.adopt_stable(stable, effects);
        let highest = pre_prepares
            .iter()
            .filter_map(|message| match message.message {
                Message::PrePrepare { sequence, .. } => Some(sequence),
                _ => None,
            })
            .max()
            .unwrap_or(self.low_watermark)
            .max(self.low_watermark);
        // Sequence numbers above max-s were prepared nowhere in the new view's proof:
        // what this replica held for them belongs to an old view and is void.
        self.slots.retain(|slot, _| *slot <= highest);
        let primary = self.config.primary(view);
        for pre_prepare in pre_prepares {
            let Message::PrePrepare { sequence, digest, .. } = pre_prepare.message else {
                continue;
            };
            if sequence <= self.low_watermark {
                continue;
            }
            let slot = self.slots.entry(sequence).or_default();
            slot.enter(view);
            slot.pre_prepare = Some(pre_prepare.clone());
            if primary != self.id {
                let prepare = self.sign(Message::Prepare { view, sequence, digest });
                let slot = self.slots.entry(sequence).or_default();
                slot.prepares.insert(self.id, (digest, prepare.signature));
                slot.sent_prepare = Some(prepare.clone());
                effects.push(Effect::Persist(Record::Sent(prepare.clone())));
                effects.push(Effect::Broadcast(prepare));
            }
        }
        self.next_sequence = highest + 1;
        effects.push(Effect::ViewEntered { view, primary });
        let sequences: Vec<Sequence> = self.slots.keys().copied().collect();
        for sequence in sequences {
            self.try_progress(sequence, effects);
        }
        self.cut_batches(false, effects);
        if self.has_pending_work() {
            self.arm_request_timer(effects);
        }
    }

    /// Re-sends this replica's own messages for every sequence number above h, and its
    /// latest checkpoint, so lost messages are eventually replaced.
    fn on_retransmit(&mut self, effects: &mut Vec<Effect>) {
        if self.last_executed == self.executed_at_last_tick {
            self.transfer_if_stuck(effects);
        }
        self.transfer_if_below_low_watermark(effects);
        self.executed_at_last_tick = self.last_executed;
        for slot in self.slots.values() {
            if let Some(pre_prepare) = &slot.pre_prepare
                && pre_prepare.sender == self.id
            {
                effects.push(Effect::Broadcast(pre_prepare.clone()));
            }
            for message in [&slot.sent_prepare, &slot.sent_commit].into_iter().flatten() {
                effects.push(Effect::Broadcast(message.clone()));
            }
        }
        if let Some(checkpoint) = &self.own_checkpoint {
            effects.push(Effect::Broadcast(checkpoint.clone()));
        }
        if let Some(pending) = self.view_change
            && let Some(own) = self.view_changes.get(&pending).and_then(|votes| votes.get(&self.id))
        {
            effects.push(Effect::Broadcast(own.clone()));
        }
        if let Some(new_view) = &self.own_new_view {
            effects.push(Effect::Broadcast(new_view.clone()));
        }
        if self.view_change.is_none()
            && let Some(suspect) = self.suspects.get(&self.id)
        {
            effects.push(Effect::Broadcast(suspect.clone()));
        }
        effects.push(Effect::ScheduleTimeout {
            kind: TimeoutKind::Retransmit,
            after_ms: self.config.retransmit_interval_ms,
        });
    }
}

/// A checkpoint with the CHECKPOINT messages that prove it.
#[derive(Debug, Clone)]
struct StableCheckpoint {
    sequence: Sequence,
    state_digest: Hash,
    proof: Vec<SignedMessage>,
}

#[derive(Debug, Clone, Copy)]
enum VoteKind {
    Prepare,
    Commit,
}

/// A PREPARE or COMMIT from a peer, checked for view and window.
#[derive(Debug, Clone, Copy)]
struct Vote {
    kind: VoteKind,
    sender: ReplicaId,
    view: View,
    sequence: Sequence,
    digest: Hash,
}

/// A client request waiting to be delivered.
#[derive(Debug, Clone)]
struct PendingRequest {
    arrival: u64,
    request: Vec<u8>,
}

/// Records a vote; returns false if the sender already voted for another digest.
fn record_vote(
    votes: &mut BTreeMap<ReplicaId, (Hash, Signature)>,
    sender: ReplicaId,
    digest: Hash,
    signature: Signature,
) -> bool {
    match votes.get(&sender) {
        Some((existing, _)) => *existing == digest,
        None => {
            votes.insert(sender, (digest, signature));
            true
        }
    }
}

fn certificate_view(certificate: &PreparedCertificate) -> View {
    match certificate.pre_prepare.message {
        Message::PrePrepare { view, .. } => view,
        _ => 0,
    }
}

fn checkpoint_sequence(message: &SignedMessage) -> Sequence {
    match message.message {
        Message::Checkpoint { sequence, .. } => sequence,
        _ => 0,
    }
}
