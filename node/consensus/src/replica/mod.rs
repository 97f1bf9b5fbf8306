//! The PBFT replica: its state, and [`Replica::step`], which hands each input to the
//! module of its protocol phase:
//!
//! - `normal`: requests, batching, PRE-PREPARE, PREPARE, COMMIT, decisions and in-order
//!   delivery (§4.2);
//! - `fetch`: the batches a replica holds by digest, and fetching one it lacks;
//! - `checkpoint`: checkpoints, garbage collection and state transfer (§4.3);
//! - `view_change`: suspicion, VIEW-CHANGE, NEW-VIEW (§4.4, §4.5.2);
//! - `recovery`: rebuilding a replica from what it persisted.
//!
//! Invariants (checked by [`Replica::check_invariants`] after every step in the tests and
//! the simulator):
//! - a decision, once made, is never replaced, and each is a commit certificate of 2f + 1
//!   distinct replicas for its sequence number;
//! - delivery is in sequence order, and never runs more than `delivery_backlog_max` ahead
//!   of execution;
//! - the slots hold the current view only, inside the window (h, h + L];
//! - a replica moving to a view is moving above the one it is in.

mod checkpoint;
mod fetch;
mod normal;
mod recovery;
mod view_change;

pub use view_change::{NewViewError, ViewChangeError};

use std::collections::{BTreeMap, BTreeSet};

use pactum_types::{Hash, Signature};

use crate::certificate::{CheckpointCertificate, CommitCertificate, PreparedCertificate};
use crate::config::{Config, ConfigError};
use crate::crypto::Crypto;
use crate::ids::{ReplicaId, Sequence, View};
use crate::message::{Message, SignedMessage};
use crate::record::Record;
use crate::requests::Requests;
use crate::vote_keeper::VoteKeeper;
use crate::{Effect, Evidence, Input, TimeoutKind, Watch};

use fetch::Batches;

/// VIEW-CHANGEs (and COMMITs) are kept for at most this many views above the current one;
/// further ahead they are dropped, which bounds what a flood can make a replica hold. A
/// NEW-VIEW is self-certifying and has no such bound: a replica any number of views
/// behind joins on a valid one.
pub const VIEW_CHANGE_VIEWS_AHEAD_MAX: u64 = 64;

/// Retransmission ticks a state transfer may stay unanswered before it is asked again.
pub const TRANSFER_PATIENCE_TICKS: u32 = 5;

/// The current view's state for one sequence number.
#[derive(Debug, Default, Clone)]
struct Slot {
    /// The accepted PRE-PREPARE: its digest and the primary's signature.
    pre_prepare: Option<(Hash, Signature)>,
    sent_prepare: Option<SignedMessage>,
    sent_commit: Option<SignedMessage>,
}

/// A state transfer asked of the caller.
#[derive(Debug, Clone)]
struct Transfer {
    target: CheckpointCertificate,
    /// Whether the caller is working on it (false once it reported a failure).
    in_flight: bool,
    /// Retransmission ticks since it was asked.
    ticks: u32,
}

/// One PBFT replica.
#[derive(Debug)]
pub struct Replica<C> {
    id: ReplicaId,
    config: Config,
    crypto: C,

    // ---- Views (§4.4) ----
    view: View,
    /// The view this replica moved to and awaits a NEW-VIEW for.
    view_change: Option<View>,
    /// Valid VIEW-CHANGEs by the view they ask for, then sender.
    view_changes: BTreeMap<View, BTreeMap<ReplicaId, SignedMessage>>,
    /// SUSPECTs of the current view by sender (own included), at most n.
    suspects: BTreeMap<ReplicaId, SignedMessage>,
    /// The NEW-VIEW that started the current view (none in view 0).
    new_view: Option<SignedMessage>,
    /// Peers this replica sent its NEW-VIEW since the last retransmission tick.
    new_view_served: BTreeSet<ReplicaId>,
    /// Whether it asked for a later view's NEW-VIEW since the last tick.
    new_view_asked: bool,
    /// Consecutive views that failed to start: the view-change timeout doubles with each.
    failed_views: u32,
    /// PRE-PREPAREs of the view this replica is moving to, received before its NEW-VIEW
    /// (at most one per sequence number of the window).
    early: BTreeMap<Sequence, SignedMessage>,

    // ---- Normal case (§4.2) ----
    /// The current view's slots, inside the window (h, h + L].
    slots: BTreeMap<Sequence, Slot>,
    votes: VoteKeeper,
    /// The prepared certificate of the highest view this replica prepared in, per
    /// sequence number above h: what its VIEW-CHANGEs report.
    prepared: BTreeMap<Sequence, PreparedCertificate>,
    /// Decisions: written once, never replaced; pruned at stable checkpoints.
    decided: BTreeMap<Sequence, CommitCertificate>,
    batches: Batches,
    /// The primary's next sequence number to assign.
    next_sequence: Sequence,
    last_delivered: Sequence,
    last_executed: Sequence,
    requests: Requests,
    /// The weight of each batch this replica proposed as primary in this view, until it
    /// has executed it (`Config::weight_ahead_max`).
    proposed_weight: BTreeMap<Sequence, u64>,
    /// After a view change the primary recomputes which requests the re-proposed batches
    /// hold before it cuts new batches (once it holds them all).
    requeue_needed: bool,
    batch_timer_armed: bool,
    /// What the armed request timer watches.
    request_timer: Option<Watch>,
    /// The watched request this replica already relayed to the primary of this view.
    relayed: Option<Watch>,
    /// What the request timer has watched since when: the watch, and the highest sequence
    /// number the primary had proposed (as far as this replica knows) when it began.
    watch_began: Option<(Watch, Sequence)>,
    /// This replica's last delivered and last executed sequence numbers when the request
    /// timer was last armed: whether the ledger moved while it ran.
    progress_at_arm: (Sequence, Sequence),
    /// The caller's clock as last observed ([`Replica::observe_time`]); proposals carry it.
    clock_ms: u64,
    last_proposal_time_ms: u64,

    // ---- Checkpoints (§4.3) ----
    /// The last stable checkpoint: h is its sequence number.
    stable: CheckpointCertificate,
    /// CHECKPOINTs inside the window, by sequence then sender.
    checkpoints: BTreeMap<Sequence, BTreeMap<ReplicaId, (Hash, Signature)>>,
    /// Each sender's latest CHECKPOINT above the window: how a replica that fell behind
    /// learns where the others are, in memory bounded by n.
    far_checkpoints: BTreeMap<ReplicaId, (Sequence, Hash, Signature)>,
    own_checkpoint: Option<SignedMessage>,
    transfer: Option<Transfer>,
    /// `last_executed` at the previous retransmission tick.
    executed_at_last_tick: Sequence,

    // ---- Epochs (ADR 0021) ----
    /// The last sequence number this epoch orders, once the caller executed the batch
    /// that scheduled the next epoch ([`Input::EpochEnds`]).
    epoch_last: Option<Sequence>,
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
        if !config.is_member(id) {
            return Err(ConfigError::NotAMember { id, epoch: config.epoch });
        }
        if last_executed < config.start {
            return Err(ConfigError::ExecutedBelowStart {
                executed: last_executed,
                start: config.start,
            });
        }
        let null = crypto.digest(&[]);
        let stable = config.base_checkpoint();
        let next_sequence = config.start.next();
        let mut replica = Self {
            id,
            config,
            crypto,
            view: View::ZERO,
            view_change: None,
            view_changes: BTreeMap::new(),
            suspects: BTreeMap::new(),
            new_view: None,
            new_view_served: BTreeSet::new(),
            new_view_asked: false,
            failed_views: 0,
            early: BTreeMap::new(),
            slots: BTreeMap::new(),
            votes: VoteKeeper::default(),
            prepared: BTreeMap::new(),
            decided: BTreeMap::new(),
            batches: Batches::new(null),
            next_sequence,
            last_delivered: last_executed,
            last_executed,
            requests: Requests::default(),
            proposed_weight: BTreeMap::new(),
            requeue_needed: false,
            batch_timer_armed: false,
            request_timer: None,
            relayed: None,
            watch_began: None,
            progress_at_arm: (Sequence(0), Sequence(0)),
            clock_ms: 0,
            last_proposal_time_ms: 0,
            stable,
            checkpoints: BTreeMap::new(),
            far_checkpoints: BTreeMap::new(),
            own_checkpoint: None,
            transfer: None,
            executed_at_last_tick: last_executed,
            epoch_last: None,
        };
        replica.restore(records);
        Ok(replica)
    }

    /// Effects to carry out once at start: the first retransmission timer, the view-change
    /// timer of a view change in progress, and a state transfer if the replica restarted
    /// below a checkpoint it had recorded stable (a crash can land between persisting the
    /// checkpoint and fetching its state).
    pub fn start(&mut self) -> Vec<Effect> {
        let mut effects = vec![Effect::ScheduleTimeout {
            kind: TimeoutKind::Retransmit,
            after_ms: self.config.retransmit_interval_ms,
        }];
        if let Some(pending) = self.view_change {
            effects.push(Effect::ScheduleTimeout {
                kind: TimeoutKind::ViewChange { view: pending },
                after_ms: self.view_change_timeout_ms(),
            });
        }
        if self.last_delivered < self.stable.sequence {
            self.request_transfer(self.stable.clone(), &mut effects);
        }
        // Decisions restored without their batch: fetch them.
        let missing: Vec<(Hash, Vec<ReplicaId>)> = self
            .decided
            .range(self.last_delivered.next()..)
            .filter(|(_, certificate)| self.batches.get(&certificate.digest).is_none())
            .map(|(_, certificate)| {
                (certificate.digest, certificate.commits.iter().map(|(id, _)| *id).collect())
            })
            .collect();
        for (digest, holders) in missing {
            self.want_batch(digest, holders, &mut effects);
        }
        self.deliver_in_order(&mut effects);
        effects
    }

    pub fn id(&self) -> ReplicaId {
        self.id
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn view(&self) -> View {
        self.view
    }

    /// h: the sequence number of the last stable checkpoint.
    pub fn low_watermark(&self) -> Sequence {
        self.stable.sequence
    }

    /// Whether the replica has left its view and awaits a NEW-VIEW (PBFT §4.4).
    pub fn in_view_change(&self) -> bool {
        self.view_change.is_some()
    }

    pub fn last_delivered(&self) -> Sequence {
        self.last_delivered
    }

    pub fn last_executed(&self) -> Sequence {
        self.last_executed
    }

    pub fn is_primary(&self) -> bool {
        self.config.primary(self.view) == self.id
    }

    /// The decision at `sequence`, if this replica holds it (until a stable checkpoint
    /// passes it).
    pub fn decision(&self, sequence: Sequence) -> Option<&CommitCertificate> {
        self.decided.get(&sequence)
    }

    /// Every decision this replica holds, by sequence number.
    pub fn decisions(&self) -> impl Iterator<Item = &CommitCertificate> {
        self.decided.values()
    }

    /// Requests this replica holds that are not yet executed.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// H: the top of the window, h + L, and never past the epoch's last sequence number.
    fn high_watermark(&self) -> Sequence {
        let high = self.stable.sequence.plus(self.config.watermark_window);
        self.epoch_last.map_or(high, |last| high.min(last))
    }

    /// The epoch's last sequence number, once known ([`Input::EpochEnds`]).
    pub fn epoch_last(&self) -> Option<Sequence> {
        self.epoch_last
    }

    /// Whether this replica delivered its epoch's last sequence number: the requests it
    /// still holds are the next epoch's to order, and nobody is suspected for them.
    fn epoch_delivered(&self) -> bool {
        self.epoch_last.is_some_and(|last| self.last_delivered >= last)
    }

    /// Whether this replica executed its epoch's last sequence number: the caller starts
    /// the next epoch's replica (ADR 0021).
    pub fn epoch_finished(&self) -> bool {
        self.epoch_last.is_some_and(|last| self.last_executed >= last)
    }

    fn in_window(&self, sequence: Sequence) -> bool {
        sequence > self.stable.sequence && sequence <= self.high_watermark()
    }

    fn sign(&self, message: Message) -> SignedMessage {
        let signature = self.crypto.sign(&message.signing_bytes(&self.config.chain, self.id));
        SignedMessage { sender: self.id, message, signature }
    }

    fn signed_by(&self, message: &SignedMessage) -> bool {
        self.config.is_member(message.sender)
            && self.crypto.verify(
                message.sender,
                &message.message.signing_bytes(&self.config.chain, message.sender),
                &message.signature,
            )
    }

    /// Tells the replica the caller's wall-clock time, in milliseconds since the Unix
    /// epoch. The primary stamps the batches it cuts with it (contracts read block time
    /// from there), and a backup prepares a new batch only if its stamp is within
    /// `Config::timestamp_skew_max_ms` of it. The replica reads no clock itself: the
    /// caller reports time before each step.
    pub fn observe_time(&mut self, now_ms: u64) {
        self.clock_ms = now_ms;
    }

    /// Advances the state machine by one input. The effects' `Persist`s come first.
    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::Message(message) => self.on_message(message, &mut effects),
            Input::Request { request } => self.on_request(request, &mut effects),
            Input::Withdraw { requests } => self.on_withdraw(&requests, &mut effects),
            Input::Timeout(TimeoutKind::Batch { view }) => {
                if view == self.view {
                    self.batch_timer_armed = false;
                    self.cut_batches(true, &mut effects);
                }
            }
            Input::Timeout(TimeoutKind::Retransmit) => self.on_retransmit(&mut effects),
            Input::Timeout(TimeoutKind::Request { view, watch }) => {
                self.on_request_timeout(view, watch, &mut effects);
            }
            Input::Timeout(TimeoutKind::ViewChange { view }) => {
                self.on_view_change_timeout(view, &mut effects);
            }
            Input::Executed { sequence, state_digest } => {
                self.on_executed(sequence, state_digest, &mut effects);
            }
            Input::StateTransferred { sequence, state_digest, requests } => {
                self.on_state_transferred(sequence, state_digest, &requests, &mut effects);
            }
            Input::StateTransferFailed { sequence } => self.on_state_transfer_failed(sequence),
            Input::EpochEnds { last } => self.on_epoch_ends(last, &mut effects),
        }
        // Persist before send: the caller writes every record of the step first.
        effects.sort_by_key(|effect| !matches!(effect, Effect::Persist(_)));
        effects
    }

    fn on_message(&mut self, message: SignedMessage, effects: &mut Vec<Effect>) {
        let sender = message.sender;
        if !self.config.is_member(sender) {
            effects.push(Effect::Evidence(Evidence::UnknownSender { sender }));
            return;
        }
        if sender == self.id || self.finished_with(&message.message) {
            return;
        }
        if !self.signed_by(&message) {
            let kind = message.message.kind();
            effects.push(Effect::Evidence(Evidence::BadSignature { sender, kind }));
            return;
        }
        self.compare_views(sender, &message.message, effects);
        let signature = message.signature;
        match message.message {
            Message::PrePrepare { view, sequence, digest, batch } => {
                let pre_prepare = normal::PrePrepare { sender, view, sequence, digest, signature };
                self.on_pre_prepare(pre_prepare, batch, effects);
            }
            Message::Prepare { view, sequence, digest } => {
                self.on_prepare(sender, view, sequence, digest, signature, effects);
            }
            Message::Commit { view, sequence, digest } => {
                self.on_commit(sender, view, sequence, digest, signature, effects);
            }
            Message::Checkpoint { sequence, state_digest } => {
                self.on_checkpoint(sender, sequence, state_digest, signature, effects);
            }
            Message::ViewChange { new_view, .. } => {
                let message = SignedMessage { sender, message: message.message, signature };
                self.on_view_change(message, new_view, effects);
            }
            Message::NewView { view, .. } => {
                let message = SignedMessage { sender, message: message.message, signature };
                self.on_new_view(&message, view, effects);
            }
            Message::Suspect { view } => {
                let message = SignedMessage { sender, message: message.message, signature };
                self.on_suspect(message, view, effects);
            }
            Message::FetchBatch { digest } => self.on_fetch_batch(sender, digest, effects),
            Message::Batch { digest, batch } => self.on_batch(sender, digest, batch, effects),
            // Answered in `compare_views`.
            Message::FetchNewView { .. } => {}
            Message::Decided { certificate } => self.on_decided(sender, certificate, effects),
        }
    }

    /// A peer still in a view this replica left may be missing its NEW-VIEW: it gets it
    /// (if this replica started the view). A peer in a later view shows that this replica
    /// is the one behind: it asks that view's primary for the NEW-VIEW, once per tick. A
    /// NEW-VIEW proves itself, so this is how a replica any number of views behind (it
    /// restarted, or missed the NEW-VIEW) takes part again.
    fn compare_views(&mut self, sender: ReplicaId, message: &Message, effects: &mut Vec<Effect>) {
        let Some(view) = message.view() else { return };
        let behind = match message {
            Message::ViewChange { new_view, .. } => *new_view <= self.view,
            _ => view < self.view,
        };
        if behind {
            self.serve_new_view(sender, effects);
            return;
        }
        let ahead = matches!(
            message,
            Message::PrePrepare { .. } | Message::Prepare { .. } | Message::Commit { .. }
        ) && view > self.view
            && self.view_change.is_none_or(|pending| view >= pending);
        let primary = self.config.primary(view);
        if ahead && !self.new_view_asked && primary != self.id {
            self.new_view_asked = true;
            let request = self.sign(Message::FetchNewView { view: self.view });
            effects.push(Effect::Send { to: primary, message: request });
        }
    }

    /// Messages about sequence numbers this replica is done with (executed and below its
    /// stable checkpoint) are dropped before their signature is checked: late duplicates
    /// of finished work, common after a peer restarts.
    fn finished_with(&self, message: &Message) -> bool {
        let sequence = match message {
            Message::PrePrepare { sequence, .. }
            | Message::Prepare { sequence, .. }
            | Message::Commit { sequence, .. }
            | Message::Checkpoint { sequence, .. } => *sequence,
            // A decision it holds already needs no checking.
            Message::Decided { certificate } => {
                if self.decided.contains_key(&certificate.sequence) {
                    return true;
                }
                certificate.sequence
            }
            _ => return false,
        };
        sequence <= self.stable.sequence && sequence <= self.last_delivered
    }

    /// Re-sends this replica's own messages for unfinished work, so lost messages are
    /// eventually replaced, and retries what waits on others (fetches, state transfer).
    fn on_retransmit(&mut self, effects: &mut Vec<Effect>) {
        self.transfer_on_tick(effects);
        self.executed_at_last_tick = self.last_executed;
        self.new_view_served.clear();
        self.new_view_asked = false;
        self.batches.new_tick();
        for (sequence, slot) in &self.slots {
            if self.decided.contains_key(sequence) {
                // Decided here: the decision itself is re-sent below.
                continue;
            }
            if let Some((digest, signature)) = slot.pre_prepare
                && self.is_primary()
                && let Some(batch) = self.batches.get(&digest)
            {
                effects.push(Effect::Broadcast(SignedMessage {
                    sender: self.id,
                    message: Message::PrePrepare {
                        view: self.view,
                        sequence: *sequence,
                        digest,
                        batch: batch.to_vec(),
                    },
                    signature,
                }));
            }
            for message in [&slot.sent_prepare, &slot.sent_commit].into_iter().flatten() {
                effects.push(Effect::Broadcast(message.clone()));
            }
        }
        // Every decision above the stable checkpoint: whoever still lacks one decides from
        // the certificate (the others drop it unread).
        let decisions: Vec<SignedMessage> = self
            .decided
            .values()
            .map(|certificate| self.sign(Message::Decided { certificate: certificate.clone() }))
            .collect();
        effects.extend(decisions.into_iter().map(Effect::Broadcast));
        if let Some(checkpoint) = &self.own_checkpoint {
            effects.push(Effect::Broadcast(checkpoint.clone()));
        }
        match self.view_change {
            Some(pending) => {
                if let Some(own) =
                    self.view_changes.get(&pending).and_then(|votes| votes.get(&self.id))
                {
                    effects.push(Effect::Broadcast(own.clone()));
                }
            }
            None => {
                if let Some(suspect) = self.suspects.get(&self.id) {
                    effects.push(Effect::Broadcast(suspect.clone()));
                }
            }
        }
        self.refetch(effects);
        effects.push(Effect::ScheduleTimeout {
            kind: TimeoutKind::Retransmit,
            after_ms: self.config.retransmit_interval_ms,
        });
    }

    /// Checks the replica's invariants, in pairs where a fact is held in two places.
    /// Panics on a broken one: that is a bug in this crate, not a peer's fault. The tests
    /// and the simulator call it after every step.
    pub fn check_invariants(&self) {
        let h = self.stable.sequence;
        let quorum = self.config.quorum();
        assert!(self.last_executed <= self.last_delivered, "executed only what was delivered");
        assert!(
            self.last_delivered.0 - self.last_executed.0 <= self.config.delivery_backlog_max,
            "delivery runs at most the backlog ahead of execution"
        );
        for (sequence, certificate) in &self.decided {
            assert_eq!(*sequence, certificate.sequence, "a decision is filed at its sequence");
            assert!(*sequence > h, "decisions at or below h are pruned");
            let signers: BTreeSet<ReplicaId> =
                certificate.commits.iter().map(|(replica, _)| *replica).collect();
            assert_eq!(signers.len(), certificate.commits.len(), "distinct signers");
            assert!(signers.len() >= quorum, "a decision is a quorum of COMMITs");
            assert!(signers.iter().all(|replica| self.config.is_member(*replica)));
            if *sequence > self.last_delivered {
                assert!(
                    self.batches.get(&certificate.digest).is_some()
                        || self.batches.is_wanted(&certificate.digest),
                    "an undelivered decision's batch is held or being fetched"
                );
            }
        }
        if let Some(next) = self.decided.get(&self.last_delivered.next())
            && self.batches.get(&next.digest).is_some()
        {
            assert!(
                self.last_delivered.0 - self.last_executed.0 >= self.config.delivery_backlog_max,
                "a deliverable decision waits only for execution"
            );
        }
        for (sequence, slot) in &self.slots {
            assert!(self.in_window(*sequence), "slots lie inside the window");
            if let Some(prepare) = &slot.sent_prepare {
                assert_eq!(prepare.message.view(), Some(self.view), "slots hold the current view");
                assert!(slot.pre_prepare.is_some(), "a PREPARE follows a PRE-PREPARE");
            }
            if let Some(commit) = &slot.sent_commit {
                assert_eq!(commit.message.view(), Some(self.view), "slots hold the current view");
            }
        }
        for (sequence, certificate) in &self.prepared {
            assert_eq!(*sequence, certificate.sequence);
            assert!(*sequence > h && certificate.view <= self.view);
        }
        if let Some(pending) = self.view_change {
            assert!(pending > self.view, "a view change moves up");
        }
        if let Some((low, high)) = self.votes.sequence_range() {
            assert!(low > h && high <= self.high_watermark(), "votes lie inside the window");
        }
        assert!(self.votes.prepare_views().iter().all(|view| *view >= self.view));
        assert!(self.suspects.len() <= self.config.replicas());
        assert!(self.far_checkpoints.len() <= self.config.replicas());
        assert!(h >= self.config.start, "nothing below the epoch's start");
        if let Some(last) = self.epoch_last {
            assert!(
                self.slots.keys().chain(self.prepared.keys()).all(|sequence| *sequence <= last),
                "nothing past the epoch's last sequence number"
            );
        }
        assert!(self.early.len() as u64 <= self.config.watermark_window);
        assert!(self.checkpoints.keys().all(|sequence| self.in_window(*sequence)));
        if self.is_primary() && self.view_change.is_none() {
            assert!(self.next_sequence > h, "the primary proposes above h");
        }
        self.requests.check();
        self.batches.check();
    }
}
