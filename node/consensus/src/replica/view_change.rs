//! PBFT §4.4 and §4.5.2: the request timer and suspicion, VIEW-CHANGE, NEW-VIEW, and
//! entering a view.

use std::collections::{BTreeMap, BTreeSet};

use pactum_types::Hash;
use thiserror::Error;

use super::{Replica, Slot, VIEW_CHANGE_VIEWS_AHEAD_MAX};
use crate::certificate::{CertificateError, CheckpointCertificate, CheckpointStrength};
use crate::config::Mutation;
use crate::crypto::Crypto;
use crate::ids::{ReplicaId, Sequence, View};
use crate::message::{Message, Reproposal, SignedMessage, pre_prepare_signing_bytes};
use crate::record::Record;
use crate::{Effect, Evidence, TimeoutKind, Watch};

/// Why a VIEW-CHANGE is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ViewChangeError {
    #[error("view too far ahead")]
    TooFarAhead,
    #[error("the checkpoint proof does not hold: {0}")]
    Checkpoint(CertificateError),
    #[error("a prepared certificate from a view not below the new one")]
    CertificateFromNewView,
    #[error("a prepared certificate outside the window")]
    OutsideWindow,
    #[error("two prepared certificates for one sequence number")]
    DuplicateSequence,
    #[error("the prepared certificate at sequence {sequence}: {error}")]
    Prepared { sequence: Sequence, error: CertificateError },
}

/// Why a NEW-VIEW is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NewViewError {
    #[error("not from the primary of the new view")]
    NotFromPrimary,
    #[error("the VIEW-CHANGE of replica {sender} has a bad signature")]
    ViewChangeSignature { sender: ReplicaId },
    #[error("the VIEW-CHANGE of replica {sender} is for another view")]
    ViewChangeForAnotherView { sender: ReplicaId },
    #[error("the VIEW-CHANGE of replica {sender} is invalid: {error}")]
    InvalidViewChange { sender: ReplicaId, error: ViewChangeError },
    #[error("it carries replica {sender}'s VIEW-CHANGE twice")]
    DuplicateViewChange { sender: ReplicaId },
    #[error("it carries {found} VIEW-CHANGEs; 2f + 1 = {needed} distinct ones are needed")]
    TooFewViewChanges { found: usize, needed: usize },
    #[error("its PRE-PREPAREs do not follow from its VIEW-CHANGEs")]
    ReproposalsDoNotFollow,
    #[error("a re-proposal is not signed by the new primary")]
    ReproposalSignature,
}

/// What a valid set of VIEW-CHANGEs implies for the new view: the checkpoint it starts
/// above, and a digest for every sequence number up to the highest prepared one.
#[derive(Debug)]
struct NewViewPlan {
    stable: CheckpointCertificate,
    proposals: Vec<(Sequence, Hash)>,
}

impl<C: Crypto> Replica<C> {
    // ---- The request timer and suspicion ----

    /// PBFT §4.4: a backup waiting for a request (or for a sequence number with a
    /// PRE-PREPARE to be delivered) runs a timer on the one it has waited for longest.
    /// Other batches being ordered meanwhile do not stop it, so a primary cannot hold a
    /// chosen request back forever while it orders others.
    pub(super) fn arm_request_timer(&mut self, effects: &mut Vec<Effect>) {
        if self.request_timer.is_some()
            || self.view_change.is_some()
            || self.is_primary()
            || self.epoch_delivered()
        {
            return;
        }
        let next = self.last_delivered.next();
        let watch = match self.requests.oldest() {
            Some(digest) => Watch::Request(digest),
            // ADR 0021: an epoch whose end is known must reach it, requests or not (the
            // primary closes it with null batches), or the next epoch never starts.
            None if self.decided.contains_key(&next)
                || self.slots.range(next..).any(|(_, slot)| slot.pre_prepare.is_some())
                || self.epoch_last.is_some_and(|last| self.last_delivered < last) =>
            {
                Watch::Delivery(next)
            }
            None => return,
        };
        self.request_timer = Some(watch);
        if self.watch_began.is_none_or(|(watched, _)| watched != watch) {
            self.watch_began = Some((watch, self.highest_proposed()));
        }
        self.progress_at_arm = (self.last_delivered, self.last_executed);
        effects.push(Effect::ScheduleTimeout {
            kind: TimeoutKind::Request { view: self.view, watch },
            after_ms: self.config.request_timeout_ms,
        });
    }

    /// The watched request was not executed in time: suspect the primary, and keep
    /// watching (the oldest outstanding work, which may be the same request).
    pub(super) fn on_request_timeout(
        &mut self,
        view: View,
        watch: Watch,
        effects: &mut Vec<Effect>,
    ) {
        if view != self.view || self.request_timer != Some(watch) {
            return;
        }
        self.request_timer = None;
        if self.view_change.is_some() || self.epoch_delivered() {
            return;
        }
        let outstanding = match watch {
            Watch::Request(digest) => self.requests.contains(&digest),
            Watch::Delivery(sequence) => self.last_delivered < sequence,
        };
        // PBFT §4.1: the primary may never have received the request. The first time a
        // request times out the backup relays it (with the others waiting longest) to the
        // primary; only if it times out again does the backup suspect the primary.
        if outstanding && matches!(watch, Watch::Request(_)) && self.relayed != Some(watch) {
            self.relayed = Some(watch);
            let requests = self
                .requests
                .oldest_requests(self.config.batch_requests_max, self.config.batch_bytes_max);
            effects.push(Effect::Relay { to: self.config.primary(view), requests });
            self.arm_request_timer(effects);
            return;
        }
        // The wait may be the ledger's, not the primary's: a full window waits on execution
        // and checkpoints, and a block of a billion gas takes seconds to execute.
        if outstanding && self.waited_on_the_ledger(watch) {
            self.arm_request_timer(effects);
            return;
        }
        if outstanding {
            if !self.suspects.contains_key(&self.id) {
                let suspect = self.sign(Message::Suspect { view });
                effects.push(Effect::Broadcast(suspect.clone()));
                self.suspects.insert(self.id, suspect);
            }
            self.check_suspicion(effects);
        }
        self.arm_request_timer(effects);
    }

    /// Whether the watched work's wait is not the primary's fault: the ledger moved while
    /// the timer ran (this replica delivered or executed a batch, or its execution still
    /// has delivered batches in hand), and the primary has proposed fewer than a
    /// checkpoint interval of new batches since the work began to wait. A primary whose
    /// window is full cannot propose until execution and a checkpoint make room, so a slow
    /// block (a billion gas takes seconds, more when validators share a machine) does not
    /// make it suspect; one that proposes a checkpoint interval of other batches while the
    /// work waits is suspected however fast it goes, and so is one under which nothing
    /// moves for a whole timer period.
    fn waited_on_the_ledger(&self, watch: Watch) -> bool {
        let (delivered, executed) = self.progress_at_arm;
        let moved = self.last_delivered > delivered
            || self.last_executed > executed
            || self.last_executed < self.last_delivered;
        let Some((watched, proposed_then)) = self.watch_began else { return false };
        moved
            && watched == watch
            && self.highest_proposed().0.saturating_sub(proposed_then.0)
                < self.config.checkpoint_interval
    }

    /// The highest sequence number this replica holds a PRE-PREPARE of in this view, or
    /// its last delivered one if higher.
    fn highest_proposed(&self) -> Sequence {
        let proposed = self
            .slots
            .iter()
            .rev()
            .find_map(|(sequence, slot)| slot.pre_prepare.map(|_| *sequence))
            .unwrap_or(Sequence(0));
        proposed.max(self.last_delivered)
    }

    pub(super) fn on_suspect(
        &mut self,
        message: SignedMessage,
        view: View,
        effects: &mut Vec<Effect>,
    ) {
        if view == self.view && !self.suspects.contains_key(&message.sender) {
            self.suspects.insert(message.sender, message);
            self.check_suspicion(effects);
        }
    }

    /// f + 1 SUSPECTs for the current view include an honest replica's: move to the next
    /// view. Fewer commit no one to anything, so one replica that merely lost messages
    /// keeps working in the current view and catches up by retransmission.
    fn check_suspicion(&mut self, effects: &mut Vec<Effect>) {
        if self.view_change.is_none() && self.suspects.len() >= self.config.weak_quorum() {
            self.start_view_change(self.view.next(), effects);
        }
    }

    /// The NEW-VIEW did not come: try the view after, waiting twice as long (§4.5.2).
    pub(super) fn on_view_change_timeout(&mut self, view: View, effects: &mut Vec<Effect>) {
        if self.view_change != Some(view) {
            return;
        }
        self.failed_views = self.failed_views.saturating_add(1);
        self.start_view_change(view.next(), effects);
    }

    pub(super) fn view_change_timeout_ms(&self) -> u64 {
        let factor = 1u64 << self.failed_views.min(30);
        self.config
            .view_change_timeout_ms
            .saturating_mul(factor)
            .min(self.config.view_change_timeout_max_ms)
    }

    // ---- VIEW-CHANGE ----

    /// PBFT §4.4: stop taking part in the current view and ask for `new_view`, with the
    /// last stable checkpoint and every prepared certificate above it.
    fn start_view_change(&mut self, new_view: View, effects: &mut Vec<Effect>) {
        if new_view <= self.view || self.view_change.is_some_and(|pending| pending >= new_view) {
            return;
        }
        self.view_change = Some(new_view);
        self.request_timer = None;
        self.watch_began = None;
        self.early.clear();
        let prepared = if self.config.mutated(Mutation::ViewChangeWithoutCertificates) {
            Vec::new()
        } else {
            self.prepared.values().cloned().collect()
        };
        let message =
            self.sign(Message::ViewChange { new_view, checkpoint: self.stable.clone(), prepared });
        effects.push(Effect::Persist(Record::Sent(message.clone())));
        effects.push(Effect::Broadcast(message.clone()));
        self.view_changes.entry(new_view).or_default().insert(self.id, message);
        effects.push(Effect::ScheduleTimeout {
            kind: TimeoutKind::ViewChange { view: new_view },
            after_ms: self.view_change_timeout_ms(),
        });
        self.try_new_view(new_view, effects);
    }

    /// A VIEW-CHANGE is valid if its checkpoint proof holds f + 1 valid matching
    /// CHECKPOINTs (an honest replica has that state) and each prepared certificate is
    /// valid, from a view below the new one, inside the window above the checkpoint, one
    /// per sequence number. Its own signature is the caller's to check.
    fn check_view_change(&self, message: &SignedMessage) -> Result<View, ViewChangeError> {
        let Message::ViewChange { new_view, checkpoint, prepared } = &message.message else {
            // Callers hand in VIEW-CHANGEs only; anything else proves nothing.
            return Err(ViewChangeError::CertificateFromNewView);
        };
        checkpoint
            .verify(&self.config, &self.crypto, CheckpointStrength::Weak)
            .map_err(ViewChangeError::Checkpoint)?;
        let low = checkpoint.sequence;
        let high = low.plus(self.config.watermark_window);
        let mut sequences = BTreeSet::new();
        for certificate in prepared {
            if certificate.view >= *new_view {
                return Err(ViewChangeError::CertificateFromNewView);
            }
            if certificate.sequence <= low || certificate.sequence > high {
                return Err(ViewChangeError::OutsideWindow);
            }
            if !sequences.insert(certificate.sequence) {
                return Err(ViewChangeError::DuplicateSequence);
            }
            certificate.verify(&self.config, &self.crypto).map_err(|error| {
                ViewChangeError::Prepared { sequence: certificate.sequence, error }
            })?;
        }
        Ok(*new_view)
    }

    pub(super) fn on_view_change(
        &mut self,
        message: SignedMessage,
        new_view: View,
        effects: &mut Vec<Effect>,
    ) {
        let sender = message.sender;
        if new_view <= self.view {
            return;
        }
        if new_view > self.view.plus(VIEW_CHANGE_VIEWS_AHEAD_MAX) {
            let error = ViewChangeError::TooFarAhead;
            effects.push(Effect::Evidence(Evidence::InvalidViewChange { sender, error }));
            return;
        }
        if self.view_changes.get(&new_view).is_some_and(|votes| votes.contains_key(&sender)) {
            return;
        }
        if let Err(error) = self.check_view_change(&message) {
            effects.push(Effect::Evidence(Evidence::InvalidViewChange { sender, error }));
            return;
        }
        // A VIEW-CHANGE away from the current view is the strongest form of suspicion.
        if let std::collections::btree_map::Entry::Vacant(entry) = self.suspects.entry(sender) {
            entry.insert(message.clone());
            self.check_suspicion(effects);
        }
        self.view_changes.entry(new_view).or_default().insert(sender, message);
        // §4.5.2: f + 1 replicas asking for views above ours include an honest one; join
        // the smallest of those views without waiting for a timer.
        let current = self.view_change.unwrap_or(self.view);
        let mut smallest_by_sender: BTreeMap<ReplicaId, View> = BTreeMap::new();
        for (view, votes) in self.view_changes.range(current.next()..) {
            for voter in votes.keys() {
                smallest_by_sender.entry(*voter).or_insert(*view);
            }
        }
        if smallest_by_sender.len() >= self.config.weak_quorum()
            && let Some(target) = smallest_by_sender.values().min().copied()
        {
            self.start_view_change(target, effects);
        }
        self.try_new_view(new_view, effects);
    }

    // ---- NEW-VIEW ----

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
        let plan = self.plan_new_view(new_view, &chosen);
        let pre_prepares: Vec<Reproposal> = plan
            .proposals
            .iter()
            .map(|(sequence, digest)| Reproposal {
                sequence: *sequence,
                digest: *digest,
                signature: self.crypto.sign(&pre_prepare_signing_bytes(
                    &self.config.chain,
                    self.id,
                    new_view,
                    *sequence,
                    digest,
                )),
            })
            .collect();
        let message = self.sign(Message::NewView {
            view: new_view,
            view_changes: chosen,
            pre_prepares: pre_prepares.clone(),
        });
        effects.push(Effect::Persist(Record::Sent(message.clone())));
        effects.push(Effect::Broadcast(message.clone()));
        self.enter_view(new_view, plan.stable, &pre_prepares, message, effects);
    }

    /// PBFT §4.4: the new view starts above the highest checkpoint among the chosen
    /// VIEW-CHANGEs (min-s) and re-proposes, for every sequence number up to the highest
    /// prepared one (max-s), the digest prepared in the highest view, or the null batch
    /// where none was prepared.
    fn plan_new_view(&self, new_view: View, chosen: &[SignedMessage]) -> NewViewPlan {
        let lowest_wins = self.config.mutated(Mutation::NewViewLowestCertificate);
        let mut stable = self.config.base_checkpoint();
        let mut best: BTreeMap<Sequence, (View, Hash)> = BTreeMap::new();
        for message in chosen {
            let Message::ViewChange { checkpoint, prepared, .. } = &message.message else {
                continue;
            };
            if checkpoint.sequence > stable.sequence {
                stable = checkpoint.clone();
            }
            for certificate in prepared {
                let replace = best.get(&certificate.sequence).is_none_or(|(kept, _)| {
                    if lowest_wins { certificate.view < *kept } else { certificate.view > *kept }
                });
                if replace {
                    best.insert(certificate.sequence, (certificate.view, certificate.digest));
                }
            }
        }
        let _ = new_view;
        let highest =
            best.keys().next_back().copied().unwrap_or(stable.sequence).max(stable.sequence);
        let null = self.crypto.digest(&[]);
        let proposals = (stable.sequence.0 + 1..=highest.0)
            .map(Sequence)
            .map(|sequence| (sequence, best.get(&sequence).map_or(null, |(_, digest)| *digest)))
            .collect();
        NewViewPlan { stable, proposals }
    }

    /// PBFT §4.4: a backup accepts a NEW-VIEW from the new primary that carries 2f + 1
    /// valid VIEW-CHANGEs for that view from distinct replicas and exactly the
    /// re-proposals they imply, signed by the new primary. A NEW-VIEW proves itself, so a
    /// replica any number of views behind joins on one; a replica that asked for view w
    /// accepts none below w.
    pub(super) fn on_new_view(
        &mut self,
        message: &SignedMessage,
        view: View,
        effects: &mut Vec<Effect>,
    ) {
        let sender = message.sender;
        if view <= self.view || self.view_change.is_some_and(|pending| view < pending) {
            return;
        }
        let Message::NewView { view_changes, pre_prepares, .. } = &message.message else { return };
        let plan = match self.check_new_view(sender, view, view_changes, pre_prepares) {
            Ok(plan) => plan,
            Err(error) => {
                effects.push(Effect::Evidence(Evidence::InvalidNewView { sender, error }));
                return;
            }
        };
        effects.push(Effect::Persist(Record::Accepted(message.clone())));
        let pre_prepares = pre_prepares.clone();
        self.enter_view(view, plan.stable, &pre_prepares, message.clone(), effects);
    }

    /// PBFT §4.4: checks a NEW-VIEW for `view` and returns what it implies.
    fn check_new_view(
        &self,
        sender: ReplicaId,
        view: View,
        view_changes: &[SignedMessage],
        pre_prepares: &[Reproposal],
    ) -> Result<NewViewPlan, NewViewError> {
        if sender != self.config.primary(view) {
            return Err(NewViewError::NotFromPrimary);
        }
        let mut senders = BTreeSet::new();
        for view_change in view_changes {
            let sender = view_change.sender;
            if !self.signed_by(view_change) {
                return Err(NewViewError::ViewChangeSignature { sender });
            }
            match self.check_view_change(view_change) {
                Ok(target) if target == view => {}
                Ok(_) => return Err(NewViewError::ViewChangeForAnotherView { sender }),
                Err(error) => return Err(NewViewError::InvalidViewChange { sender, error }),
            }
            if !senders.insert(sender) {
                return Err(NewViewError::DuplicateViewChange { sender });
            }
        }
        let needed = self.config.quorum();
        if senders.len() < needed {
            return Err(NewViewError::TooFewViewChanges { found: senders.len(), needed });
        }
        let plan = self.plan_new_view(view, view_changes);
        let carried: Vec<(Sequence, Hash)> = pre_prepares
            .iter()
            .map(|reproposal| (reproposal.sequence, reproposal.digest))
            .collect();
        if carried != plan.proposals && !self.config.mutated(Mutation::NewViewUnchecked) {
            return Err(NewViewError::ReproposalsDoNotFollow);
        }
        let signed_by_primary = pre_prepares.iter().all(|reproposal| {
            let bytes = pre_prepare_signing_bytes(
                &self.config.chain,
                sender,
                view,
                reproposal.sequence,
                &reproposal.digest,
            );
            self.crypto.verify(sender, &bytes, &reproposal.signature)
        });
        if !signed_by_primary {
            return Err(NewViewError::ReproposalSignature);
        }
        Ok(plan)
    }

    /// Sends this replica's NEW-VIEW (if it started the current view) to a peer that is
    /// still in an earlier view, at most once per retransmission tick: the NEW-VIEW is
    /// re-sent to whoever still needs it, not to everyone for the life of the view.
    pub(super) fn serve_new_view(&mut self, peer: ReplicaId, effects: &mut Vec<Effect>) {
        let Some(new_view) = &self.new_view else { return };
        if new_view.sender == self.id && self.new_view_served.insert(peer) {
            effects.push(Effect::Send { to: peer, message: new_view.clone() });
        }
    }

    /// Replicas the chosen VIEW-CHANGEs show holding each re-proposed batch: the primary
    /// and the backups of every prepared certificate for its digest.
    fn holders(&self, new_view: &SignedMessage) -> BTreeMap<Hash, Vec<ReplicaId>> {
        let mut holders: BTreeMap<Hash, BTreeSet<ReplicaId>> = BTreeMap::new();
        if let Message::NewView { view_changes, .. } = &new_view.message {
            for view_change in view_changes {
                if let Message::ViewChange { prepared, .. } = &view_change.message {
                    for certificate in prepared {
                        let entry = holders.entry(certificate.digest).or_default();
                        entry.insert(self.config.primary(certificate.view));
                        entry.extend(certificate.prepares.iter().map(|(replica, _)| *replica));
                    }
                }
            }
        }
        holders
            .into_iter()
            .map(|(digest, replicas)| (digest, replicas.into_iter().collect()))
            .collect()
    }

    /// Starts `view`: adopts its checkpoint, takes its re-proposals as this view's
    /// PRE-PREPAREs (preparing them as a backup, fetching batches it lacks), then the
    /// PRE-PREPAREs that arrived early, and resumes batching and the request timer. A
    /// re-proposal never replaces a decision: one that conflicts with a decision is
    /// evidence, and this replica does not vote for it.
    fn enter_view(
        &mut self,
        view: View,
        stable: CheckpointCertificate,
        reproposals: &[Reproposal],
        new_view: SignedMessage,
        effects: &mut Vec<Effect>,
    ) {
        self.view = view;
        self.relayed = None;
        self.proposed_weight.clear();
        // Still "changing views" until the re-proposals are in place, so nothing below
        // (adopting the checkpoint) cuts a batch or arms the request timer too early.
        self.view_change = Some(view);
        self.failed_views = 0;
        self.request_timer = None;
        self.watch_began = None;
        self.batch_timer_armed = false;
        self.view_changes.retain(|pending, _| *pending > view);
        self.suspects.clear();
        self.new_view_served.clear();
        self.votes.forget_prepares_below(view);
        let holders = self.holders(&new_view);
        self.new_view = Some(new_view);
        // The old view's slots and early PRE-PREPAREs go only now: until the re-proposals
        // are in place their batches stay held (a re-proposal is usually one of them).
        self.adopt_stable(stable, effects);
        let early = std::mem::take(&mut self.early);
        let old_slots = std::mem::take(&mut self.slots);
        let h = self.stable.sequence;
        let primary = self.config.primary(view);
        let mut highest = h;
        for reproposal in reproposals {
            let Reproposal { sequence, digest, signature } = *reproposal;
            highest = highest.max(sequence);
            if sequence <= h {
                continue;
            }
            if self.decided.get(&sequence).is_some_and(|decided| decided.digest != digest)
                && !self.overwrite_decision_for_tests(sequence, digest)
            {
                effects.push(Effect::Evidence(Evidence::ConflictingDecision { sequence }));
                continue;
            }
            self.slots.insert(
                sequence,
                Slot { pre_prepare: Some((digest, signature)), ..Slot::default() },
            );
            self.send_prepare(sequence, digest, effects);
            if sequence > self.last_delivered && self.batches.get(&digest).is_none() {
                let from = holders.get(&digest).cloned().unwrap_or_default();
                self.want_batch(digest, from, effects);
            }
        }
        self.next_sequence = highest.max(self.last_delivered).next();
        self.requeue_needed = true;
        self.view_change = None;
        drop(old_slots);
        self.collect_batches();
        effects.push(Effect::ViewEntered { view, primary });
        for (sequence, message) in early {
            if let Message::PrePrepare { view: early_view, digest, batch, .. } = message.message
                && early_view == view
            {
                let pre_prepare = super::normal::PrePrepare {
                    sender: message.sender,
                    view,
                    sequence,
                    digest,
                    signature: message.signature,
                };
                self.on_pre_prepare(pre_prepare, batch, effects);
            }
        }
        let sequences: Vec<Sequence> = self.slots.keys().copied().collect();
        for sequence in sequences {
            self.try_prepared(sequence, effects);
        }
        self.deliver_in_order(effects);
        self.cut_batches(false, effects);
        self.arm_request_timer(effects);
    }
}
