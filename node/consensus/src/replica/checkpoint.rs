//! PBFT §4.3: checkpoints, the watermark window and garbage collection; and state
//! transfer to a checkpoint when this replica lacks the batches below it.

use std::collections::BTreeMap;

use pactum_types::{Hash, Signature};

use super::{Replica, TRANSFER_PATIENCE_TICKS, Transfer};
use crate::certificate::CheckpointCertificate;
use crate::crypto::Crypto;
use crate::ids::{ReplicaId, Sequence, SignerSignature};
use crate::message::Message;
use crate::record::Record;
use crate::{Effect, Evidence};

/// The certificate of the (sequence, digest) that `quorum` of `votes` agree on, if any.
fn agreed(
    sequence: Sequence,
    votes: &BTreeMap<ReplicaId, (Hash, Signature)>,
    quorum: usize,
) -> Option<CheckpointCertificate> {
    let mut tally: BTreeMap<Hash, Vec<SignerSignature>> = BTreeMap::new();
    for (sender, (digest, signature)) in votes {
        tally.entry(*digest).or_default().push((*sender, *signature));
    }
    tally.into_iter().find(|(_, signers)| signers.len() >= quorum).map(
        |(state_digest, signatures)| CheckpointCertificate { sequence, state_digest, signatures },
    )
}

impl<C: Crypto> Replica<C> {
    pub(super) fn on_executed(
        &mut self,
        sequence: Sequence,
        state_digest: Hash,
        effects: &mut Vec<Effect>,
    ) {
        if sequence == self.last_executed && sequence > Sequence::ZERO {
            // Told again what it executed last (the node does so at start-up): a replica
            // that crashed after its executor committed a checkpoint's block but before it
            // persisted its CHECKPOINT signs it now (once: `send_checkpoint` skips what it
            // signed), or it would only ever repeat an older one.
            self.send_checkpoint(sequence, state_digest, effects);
            return;
        }
        if sequence <= self.last_executed || sequence > self.last_delivered {
            return;
        }
        self.last_executed = sequence;
        self.send_checkpoint(sequence, state_digest, effects);
        self.deliver_in_order(effects);
        // What this primary proposed ahead of its execution shrank: room for a batch.
        self.proposed_weight = self.proposed_weight.split_off(&sequence.next());
        self.cut_batches(false, effects);
    }

    /// Signs and multicasts this replica's CHECKPOINT at `sequence`, if it is a
    /// checkpoint. It is sent even when the checkpoint is already stable here: the others
    /// may still need this vote, and it is what retransmission repeats.
    fn send_checkpoint(
        &mut self,
        sequence: Sequence,
        state_digest: Hash,
        effects: &mut Vec<Effect>,
    ) {
        let own_latest =
            self.own_checkpoint.as_ref().map_or(Sequence::ZERO, |own| match own.message {
                Message::Checkpoint { sequence, .. } => sequence,
                _ => Sequence::ZERO,
            });
        if !sequence.is_checkpoint(self.config.checkpoint_interval)
            || sequence <= self.config.start
            || sequence < self.stable.sequence
            || sequence <= own_latest
        {
            return;
        }
        let checkpoint = self.sign(Message::Checkpoint { sequence, state_digest });
        effects.push(Effect::Persist(Record::Sent(checkpoint.clone())));
        effects.push(Effect::Broadcast(checkpoint.clone()));
        let signature = checkpoint.signature;
        self.own_checkpoint = Some(checkpoint);
        if self.in_window(sequence) {
            self.checkpoints
                .entry(sequence)
                .or_default()
                .insert(self.id, (state_digest, signature));
            self.try_stabilise(sequence, effects);
        }
    }

    pub(super) fn on_checkpoint(
        &mut self,
        sender: ReplicaId,
        sequence: Sequence,
        state_digest: Hash,
        signature: Signature,
        effects: &mut Vec<Effect>,
    ) {
        if !sequence.is_checkpoint(self.config.checkpoint_interval)
            || sequence <= self.stable.sequence
        {
            return;
        }
        if sequence > self.high_watermark() {
            self.on_far_checkpoint(sender, sequence, state_digest, signature, effects);
            return;
        }
        let votes = self.checkpoints.entry(sequence).or_default();
        if let Some((existing, _)) = votes.get(&sender) {
            if *existing != state_digest {
                effects
                    .push(Effect::Evidence(Evidence::ConflictingCheckpoint { sender, sequence }));
            }
            return;
        }
        votes.insert(sender, (state_digest, signature));
        // Inside the window a replica that is behind usually catches up by itself; it
        // fetches state once the checkpoint is stable here, or when it made no progress for
        // a whole retransmission interval (`transfer_on_tick`).
        self.try_stabilise(sequence, effects);
    }

    /// A CHECKPOINT above the window: the sender is ahead. 2f + 1 matching ones make it
    /// stable (the window jumps there); f + 1 prove that an honest replica has that state,
    /// which this replica then fetches (§4.3, TOCS §5: a weak certificate).
    fn on_far_checkpoint(
        &mut self,
        sender: ReplicaId,
        sequence: Sequence,
        state_digest: Hash,
        signature: Signature,
        effects: &mut Vec<Effect>,
    ) {
        if self.far_checkpoints.get(&sender).is_some_and(|(kept, _, _)| *kept >= sequence) {
            return;
        }
        self.far_checkpoints.insert(sender, (sequence, state_digest, signature));
        let votes: BTreeMap<ReplicaId, (Hash, Signature)> = self
            .far_checkpoints
            .iter()
            .filter(|(_, (kept, _, _))| *kept == sequence)
            .map(|(sender, (_, digest, signature))| (*sender, (*digest, *signature)))
            .collect();
        if let Some(stable) = agreed(sequence, &votes, self.config.quorum()) {
            self.adopt_stable(stable, effects);
        } else if let Some(weak) = agreed(sequence, &votes, self.config.weak_quorum()) {
            self.request_transfer(weak, effects);
        }
    }

    /// PBFT §4.3: a checkpoint with 2f + 1 matching messages is stable.
    fn try_stabilise(&mut self, sequence: Sequence, effects: &mut Vec<Effect>) {
        let Some(votes) = self.checkpoints.get(&sequence) else { return };
        if let Some(stable) = agreed(sequence, votes, self.config.quorum()) {
            self.adopt_stable(stable, effects);
        }
    }

    /// PBFT §4.3: `stable` becomes the low watermark h (if it is above it): the log at
    /// and below it is discarded, the checkpoint is persisted with its proof, the window
    /// moves up, and the state is fetched if this replica lacks the batches below it.
    pub(super) fn adopt_stable(
        &mut self,
        stable: CheckpointCertificate,
        effects: &mut Vec<Effect>,
    ) {
        let h = stable.sequence;
        if h <= self.stable.sequence {
            return;
        }
        effects.push(Effect::Persist(Record::Stable(stable.clone())));
        // Requests delivered in the previous window are remembered one more window, and
        // never forgotten before one checkpoint interval after their execution: until
        // execution evicts a request from the node's mempool, the mempool may hand it
        // over again, and a replica executing far behind (up to `delivery_backlog_max`
        // blocks) would otherwise take it as new and propose it twice.
        let previous = self.stable.sequence;
        let executed_margin = self.last_executed.0.saturating_sub(self.config.checkpoint_interval);
        self.requests.forget_delivered_through(previous.0.min(executed_margin));
        self.stable = stable;
        self.slots.retain(|sequence, _| *sequence > h);
        self.prepared.retain(|sequence, _| *sequence > h);
        self.decided.retain(|sequence, _| *sequence > h);
        self.early.retain(|sequence, _| *sequence > h);
        self.votes.forget_through(h);
        self.checkpoints.retain(|sequence, _| *sequence > h);
        let high = self.high_watermark();
        let now_inside: Vec<(ReplicaId, Sequence, Hash, Signature)> = self
            .far_checkpoints
            .iter()
            .filter(|(_, (sequence, _, _))| *sequence <= high)
            .map(|(sender, (sequence, digest, signature))| {
                (*sender, *sequence, *digest, *signature)
            })
            .collect();
        self.far_checkpoints.retain(|_, (sequence, _, _)| *sequence > high);
        for (sender, sequence, digest, signature) in now_inside {
            if sequence > h && sequence.is_checkpoint(self.config.checkpoint_interval) {
                self.checkpoints.entry(sequence).or_default().insert(sender, (digest, signature));
            }
        }
        self.collect_batches();
        self.next_sequence = self.next_sequence.max(h.next());
        if self.last_delivered < h {
            self.request_transfer(self.stable.clone(), effects);
        }
        let inside: Vec<Sequence> = self.checkpoints.keys().copied().collect();
        for sequence in inside {
            self.try_stabilise(sequence, effects);
        }
        self.cut_batches(false, effects);
    }

    /// Asks the caller for the state at `checkpoint`, unless it already works on that or a
    /// later one.
    pub(super) fn request_transfer(
        &mut self,
        checkpoint: CheckpointCertificate,
        effects: &mut Vec<Effect>,
    ) {
        if checkpoint.sequence <= self.last_delivered {
            return;
        }
        if self.transfer.as_ref().is_some_and(|transfer| {
            transfer.in_flight && transfer.target.sequence >= checkpoint.sequence
        }) {
            return;
        }
        self.transfer = Some(Transfer { target: checkpoint.clone(), in_flight: true, ticks: 0 });
        effects.push(Effect::RequestStateTransfer { checkpoint });
    }

    /// On every retransmission tick: a transfer the caller gave up on, or that stayed
    /// unanswered for [`TRANSFER_PATIENCE_TICKS`], is asked again; a replica below its own
    /// stable checkpoint, or one that made no progress for a whole interval while f + 1
    /// replicas signed a checkpoint past it, asks for the state.
    pub(super) fn transfer_on_tick(&mut self, effects: &mut Vec<Effect>) {
        if let Some(transfer) = self.transfer.as_mut() {
            if transfer.target.sequence <= self.last_delivered {
                self.transfer = None;
            } else {
                transfer.ticks += 1;
                if !transfer.in_flight || transfer.ticks >= TRANSFER_PATIENCE_TICKS {
                    transfer.in_flight = true;
                    transfer.ticks = 0;
                    let checkpoint = transfer.target.clone();
                    effects.push(Effect::RequestStateTransfer { checkpoint });
                }
                return;
            }
        }
        if self.last_delivered < self.stable.sequence {
            self.request_transfer(self.stable.clone(), effects);
            return;
        }
        if self.last_executed != self.executed_at_last_tick {
            return;
        }
        let past: Vec<CheckpointCertificate> = self
            .checkpoints
            .range(self.last_delivered.next()..)
            .rev()
            .filter_map(|(sequence, votes)| agreed(*sequence, votes, self.config.weak_quorum()))
            .collect();
        if let Some(weak) = past.into_iter().next() {
            self.request_transfer(weak, effects);
        }
    }

    pub(super) fn on_state_transferred(
        &mut self,
        sequence: Sequence,
        state_digest: Hash,
        requests: &[Hash],
        effects: &mut Vec<Effect>,
    ) {
        self.requests.delivered(sequence.0, requests.to_vec());
        let target = match &self.transfer {
            Some(transfer) if transfer.target.sequence == sequence => {
                let target = transfer.target.clone();
                self.transfer = None;
                Some(target)
            }
            _ => None,
        };
        if sequence <= self.last_executed {
            return;
        }
        self.last_executed = sequence;
        self.last_delivered = self.last_delivered.max(sequence);
        self.decided.retain(|decided, _| *decided > sequence);
        self.early.retain(|early, _| *early > sequence);
        if let Some(target) = target.filter(|target| target.state_digest == state_digest) {
            self.adopt_stable(target, effects);
        }
        self.send_checkpoint(sequence, state_digest, effects);
        self.next_sequence = self.next_sequence.max(sequence.next());
        self.cut_batches(false, effects);
        self.deliver_in_order(effects);
        self.arm_request_timer(effects);
    }

    /// ADR 0021: the epoch orders nothing past `last`. What this replica holds past it
    /// (only a replica told late could hold any) is dropped; decisions are never dropped.
    pub(super) fn on_epoch_ends(&mut self, last: Sequence, effects: &mut Vec<Effect>) {
        if self.epoch_last.is_some_and(|known| known <= last) {
            return;
        }
        self.epoch_last = Some(last);
        let above = last.next();
        self.slots.split_off(&above);
        self.prepared.split_off(&above);
        self.early.split_off(&above);
        self.checkpoints.split_off(&above);
        self.far_checkpoints.retain(|_, (sequence, _, _)| *sequence <= last);
        self.proposed_weight.split_off(&above);
        self.votes.forget_above(last);
        self.next_sequence = self.next_sequence.min(above);
        // A primary with nothing waiting closes the epoch now.
        self.cut_batches(false, effects);
        self.arm_request_timer(effects);
    }

    pub(super) fn on_state_transfer_failed(&mut self, sequence: Sequence) {
        if let Some(transfer) = self.transfer.as_mut()
            && transfer.target.sequence == sequence
        {
            transfer.in_flight = false;
        }
    }
}
