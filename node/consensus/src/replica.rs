//! The PBFT replica state machine.

use std::collections::{BTreeMap, VecDeque};

use pactum_types::{Hash, Signature};
use thiserror::Error;

use crate::message::{Message, ReplicaId, Sequence, SignedMessage, View};

/// Proposals the primary holds while the watermark window is full.
pub const PENDING_PROPOSALS_MAX: usize = 1024;

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
        Ok(())
    }

    /// f: the most faulty replicas tolerated, ⌊(n − 1) / 3⌋.
    pub fn faults_tolerated(&self) -> usize {
        (usize::from(self.replicas) - 1) / 3
    }

    /// The quorum: n − f, which is 2f + 1 when n = 3f + 1. Any two quorums intersect in at
    /// least f + 1 replicas, so in at least one honest replica.
    pub fn quorum(&self) -> usize {
        usize::from(self.replicas) - self.faults_tolerated()
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
}

/// Timers the replica asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// Re-send own messages for sequence numbers not yet stable.
    Retransmit,
}

/// What drives a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message from a peer. The transport authenticated the peer; `message.sender` is
    /// checked against the signature here.
    Message(SignedMessage),
    /// A batch to order; acted on by the primary only.
    Propose { batch: Vec<u8> },
    /// A timer fired.
    Timeout(TimeoutKind),
    /// The caller executed the delivered batch at `sequence`; the state digest after it.
    Executed { sequence: Sequence, state_digest: Hash },
    /// The caller installed state at a stable checkpoint it had been asked to fetch.
    StateTransferred { sequence: Sequence, state_digest: Hash },
}

/// A committed batch, delivered strictly in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
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
    /// The checkpoint at `sequence` became stable.
    Stable { sequence: Sequence, state_digest: Hash },
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
    /// The primary's window and queue are full; the batch was not taken.
    ProposalRefused {
        batch: Vec<u8>,
    },
}

#[derive(Debug, Default, Clone)]
struct Slot {
    /// The accepted PRE-PREPARE (with its batch).
    pre_prepare: Option<SignedMessage>,
    prepares: BTreeMap<ReplicaId, (Hash, Signature)>,
    commits: BTreeMap<ReplicaId, (Hash, Signature)>,
    sent_prepare: Option<SignedMessage>,
    sent_commit: Option<SignedMessage>,
    committed: bool,
}

impl Slot {
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
    pending_proposals: VecDeque<Vec<u8>>,
    transfer_requested: Option<Sequence>,
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
            pending_proposals: VecDeque::new(),
            transfer_requested: None,
        };
        for record in records {
            replica.restore(record);
        }
        replica.next_sequence = replica.next_sequence.max(replica.last_delivered + 1);
        Ok(replica)
    }

    /// Effects to carry out once at start: the first retransmission timer.
    pub fn start(&self) -> Vec<Effect> {
        vec![Effect::ScheduleTimeout {
            kind: TimeoutKind::Retransmit,
            after_ms: self.config.retransmit_interval_ms,
        }]
    }

    fn restore(&mut self, record: &Record) {
        match record {
            Record::Stable { sequence, state_digest } => {
                if *sequence > self.low_watermark {
                    self.low_watermark = *sequence;
                    self.stable_digest = *state_digest;
                    self.slots.retain(|slot, _| *slot > *sequence);
                }
            }
            Record::Accepted(message) => {
                if let Message::PrePrepare { sequence, .. } = message.message {
                    self.slots.entry(sequence).or_default().pre_prepare = Some(message.clone());
                }
            }
            Record::Sent(message) => match &message.message {
                Message::PrePrepare { sequence, .. } => {
                    self.slots.entry(*sequence).or_default().pre_prepare = Some(message.clone());
                    self.next_sequence = self.next_sequence.max(sequence + 1);
                }
                Message::Prepare { sequence, digest, .. } => {
                    let slot = self.slots.entry(*sequence).or_default();
                    slot.prepares.insert(self.id, (*digest, message.signature));
                    slot.sent_prepare = Some(message.clone());
                }
                Message::Commit { sequence, digest, .. } => {
                    let slot = self.slots.entry(*sequence).or_default();
                    slot.commits.insert(self.id, (*digest, message.signature));
                    slot.sent_commit = Some(message.clone());
                }
                Message::Checkpoint { sequence, .. } => {
                    self.checkpoints.entry(*sequence).or_default().insert(self.id, message.clone());
                    self.own_checkpoint = Some(message.clone());
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

    /// Advances the state machine by one input.
    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::Message(message) => self.on_message(message, &mut effects),
            Input::Propose { batch } => self.on_propose(batch, &mut effects),
            Input::Timeout(TimeoutKind::Retransmit) => self.on_retransmit(&mut effects),
            Input::Executed { sequence, state_digest } => {
                self.on_executed(sequence, state_digest, &mut effects);
            }
            Input::StateTransferred { sequence, state_digest } => {
                self.on_state_transferred(sequence, state_digest, &mut effects);
            }
        }
        effects
    }

    // ---- PBFT §4.2: normal case ----

    fn on_propose(&mut self, batch: Vec<u8>, effects: &mut Vec<Effect>) {
        if !self.is_primary() {
            effects.push(Effect::ProposalRefused { batch });
            return;
        }
        if self.next_sequence > self.high_watermark() {
            if self.pending_proposals.len() >= PENDING_PROPOSALS_MAX {
                effects.push(Effect::ProposalRefused { batch });
            } else {
                self.pending_proposals.push_back(batch);
            }
            return;
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let digest = self.crypto.digest(&batch);
        let message = self.sign(Message::PrePrepare { view: self.view, sequence, digest, batch });
        self.slots.entry(sequence).or_default().pre_prepare = Some(message.clone());
        effects.push(Effect::Persist(Record::Sent(message.clone())));
        effects.push(Effect::Broadcast(message));
        self.try_progress(sequence, effects);
    }

    fn drain_pending_proposals(&mut self, effects: &mut Vec<Effect>) {
        while self.is_primary() && self.next_sequence <= self.high_watermark() {
            let Some(batch) = self.pending_proposals.pop_front() else { break };
            self.on_propose(batch, effects);
        }
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
            Message::PrePrepare { view, sequence, digest, batch } => {
                if !self.in_view_and_window(sender, view, sequence, effects) {
                    return;
                }
                self.on_pre_prepare(message, view, sequence, digest, &batch, effects);
            }
            Message::Prepare { view, sequence, digest } => {
                if sender == self.config.primary(view) {
                    effects.push(Effect::Evidence(Evidence::PrepareFromPrimary { sender }));
                    return;
                }
                self.on_vote(
                    Vote::Prepare,
                    sender,
                    view,
                    sequence,
                    digest,
                    message.signature,
                    effects,
                );
            }
            Message::Commit { view, sequence, digest } => {
                self.on_vote(
                    Vote::Commit,
                    sender,
                    view,
                    sequence,
                    digest,
                    message.signature,
                    effects,
                );
            }
            Message::Checkpoint { sequence, state_digest } => {
                self.on_checkpoint(message, sequence, state_digest, effects);
            }
        }
    }

    /// Records a PREPARE or COMMIT vote (PBFT §4.2); a second, different vote from the
    /// same replica for the same (view, sequence) is evidence.
    #[allow(clippy::too_many_arguments, reason = "the fields of one vote message")]
    fn on_vote(
        &mut self,
        vote: Vote,
        sender: ReplicaId,
        view: View,
        sequence: Sequence,
        digest: Hash,
        signature: Signature,
        effects: &mut Vec<Effect>,
    ) {
        if !self.in_view_and_window(sender, view, sequence, effects) {
            return;
        }
        let slot = self.slots.entry(sequence).or_default();
        let (votes, kind) = match vote {
            Vote::Prepare => (&mut slot.prepares, "prepare"),
            Vote::Commit => (&mut slot.commits, "commit"),
        };
        if !record_vote(votes, sender, digest, signature) {
            effects.push(Effect::Evidence(Evidence::ConflictingVote {
                sender,
                kind,
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
        let slot = self.slots.entry(sequence).or_default();
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
        effects.push(Effect::Persist(Record::Accepted(message)));
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
        let matching_prepares = slot
            .prepares
            .iter()
            .filter(|(sender, (vote, _))| **sender != primary && *vote == digest)
            .count();
        let prepared = matching_prepares + 1 >= quorum;
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

    fn deliver_in_order(&mut self, effects: &mut Vec<Effect>) {
        let quorum = self.config.quorum();
        while let Some(slot) = self.slots.get(&(self.last_delivered + 1)) {
            if !slot.committed {
                break;
            }
            let Some(SignedMessage {
                message: Message::PrePrepare { view, sequence, digest, batch },
                ..
            }) = slot.pre_prepare.clone()
            else {
                break;
            };
            let commit_certificate: Vec<(ReplicaId, Signature)> = slot
                .commits
                .iter()
                .filter(|(_, (vote, _))| *vote == digest)
                .map(|(sender, (_, signature))| (*sender, *signature))
                .take(quorum)
                .collect();
            self.last_delivered = sequence;
            effects.push(Effect::Deliver(Delivery {
                view,
                sequence,
                digest,
                batch,
                commit_certificate,
            }));
        }
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
        let votes: Vec<SignedMessage> = votes.values().cloned().collect();
        self.try_stabilise(sequence, effects);
        self.maybe_transfer(sequence, state_digest, &votes, effects);
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
            effects.push(Effect::RequestStateTransfer { sequence, state_digest, proof });
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
        self.low_watermark = sequence;
        self.stable_digest = state_digest;
        self.slots.retain(|slot, _| *slot > sequence);
        self.checkpoints.retain(|slot, _| *slot >= sequence);
        self.far_checkpoints.retain(|_, message| checkpoint_sequence(message) > sequence);
        effects.push(Effect::Persist(Record::Stable { sequence, state_digest }));
        if self.last_executed < sequence {
            // PBFT §4.3 / state transfer: the others are past this point; fetch the state.
            if self.transfer_requested.is_none_or(|requested| requested < sequence) {
                self.transfer_requested = Some(sequence);
                effects.push(Effect::RequestStateTransfer { sequence, state_digest, proof });
            }
        }
        self.next_sequence = self.next_sequence.max(sequence + 1);
        self.drain_pending_proposals(effects);
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
        if sequence > self.low_watermark {
            self.low_watermark = sequence;
            self.stable_digest = state_digest;
            self.slots.retain(|slot, _| *slot > sequence);
            self.checkpoints.retain(|slot, _| *slot > sequence);
            self.far_checkpoints.retain(|_, message| checkpoint_sequence(message) > sequence);
            effects.push(Effect::Persist(Record::Stable { sequence, state_digest }));
        }
        self.send_checkpoint(sequence, state_digest, effects);
        self.next_sequence = self.next_sequence.max(sequence + 1);
        self.drain_pending_proposals(effects);
        self.deliver_in_order(effects);
    }

    /// Re-sends this replica's own messages for every sequence number above h, and its
    /// latest checkpoint, so lost messages are eventually replaced.
    fn on_retransmit(&mut self, effects: &mut Vec<Effect>) {
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
        effects.push(Effect::ScheduleTimeout {
            kind: TimeoutKind::Retransmit,
            after_ms: self.config.retransmit_interval_ms,
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Vote {
    Prepare,
    Commit,
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

fn checkpoint_sequence(message: &SignedMessage) -> Sequence {
    match message.message {
        Message::Checkpoint { sequence, .. } => sequence,
        _ => 0,
    }
}
