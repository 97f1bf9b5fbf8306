//! PBFT §4.2, the normal case: requests and batching, PRE-PREPARE, PREPARE, COMMIT,
//! decisions by commit certificate, and in-order delivery.

use pactum_types::{Hash, Signature};

use super::Replica;
use crate::batch::{BatchHeader, batch_requests, decode_batch, encode_batch};
use crate::certificate::{CommitCertificate, PreparedCertificate};
use crate::config::Mutation;
use crate::crypto::Crypto;
use crate::ids::{ReplicaId, Sequence, View};
use crate::message::{Message, SignedMessage};
use crate::record::Record;
use crate::requests::{BatchLimits, PENDING_REQUESTS_MAX};
use crate::vote_keeper::Recorded;
use crate::{Delivery, Effect, Evidence, TimeoutKind};

/// A PRE-PREPARE's signed part, its batch aside.
#[derive(Debug, Clone, Copy)]
pub(super) struct PrePrepare {
    pub sender: ReplicaId,
    pub view: View,
    pub sequence: Sequence,
    pub digest: Hash,
    pub signature: Signature,
}

/// Why a backup does not prepare a PRE-PREPARE's batch.
enum ProposalFault {
    /// Malformed, over a limit, or holding a request nobody may order: proof of a fault.
    Malformed,
    /// Stamped too far from this replica's clock.
    Untimely,
}

impl<C: Crypto> Replica<C> {
    pub(super) fn on_request(&mut self, request: Vec<u8>, effects: &mut Vec<Effect>) {
        let digest = self.crypto.digest(&request);
        if self.requests.contains(&digest) || self.requests.recently_delivered(&digest) {
            return;
        }
        let weight = self.crypto.request_weight(&request);
        if request.len() > self.config.batch_bytes_max
            || weight > self.config.batch_weight_max
            || self.requests.len() >= PENDING_REQUESTS_MAX
        {
            effects.push(Effect::RequestRefused { request });
            return;
        }
        // Checked just above, so the queue takes it.
        let group = self.crypto.request_group(&request);
        let _ = self.requests.add(digest, request, weight, group, self.config.batch_bytes_max);
        self.cut_batches(false, effects);
        self.arm_request_timer(effects);
    }

    pub(super) fn on_withdraw(&mut self, digests: &[Hash], effects: &mut Vec<Effect>) {
        for digest in digests {
            self.requests.forget(digest);
        }
        self.arm_request_timer(effects);
    }

    /// The primary cuts batches from the requests no batch holds yet, while the window has
    /// room: full batches (by count or bytes) at once, and the remainder too when `force`
    /// (the batch timer fired). After a view change it first waits until it holds every
    /// re-proposed batch and has caught up to the new view's checkpoint, so it never
    /// proposes a request that one of them already holds.
    pub(super) fn cut_batches(&mut self, force: bool, effects: &mut Vec<Effect>) {
        if !self.is_primary() || self.view_change.is_some() {
            return;
        }
        // A primary behind its stable checkpoint (fetching the state) cannot tell which of
        // its pending requests were executed below it: it waits until it has caught up.
        if self.last_delivered < self.stable.sequence {
            return;
        }
        if self.requeue_needed {
            let mut held = Vec::new();
            for (sequence, slot) in &self.slots {
                let Some((digest, _)) = slot.pre_prepare else { continue };
                if *sequence <= self.last_delivered {
                    continue;
                }
                let Some(batch) = self.batches.get(&digest) else { return };
                let requests = batch_requests(
                    batch,
                    self.config.batch_requests_max,
                    self.config.batch_bytes_max,
                )
                .unwrap_or_default();
                held.extend(requests.iter().map(|request| self.crypto.digest(request)));
            }
            self.requests.requeue(held);
            self.requeue_needed = false;
        }
        let limits = BatchLimits {
            requests_max: self.config.batch_requests_max,
            bytes_max: self.config.batch_bytes_max,
            weight_max: self.config.batch_weight_max,
        };
        // Execution paces proposals: a new batch goes out only while what this primary
        // proposed beyond its own execution weighs at most `weight_ahead_max` (in the
        // node, one block's gas), so a backlog of heavy requests (a billion gas each takes
        // seconds to run) cannot fill the window ahead of the requests that arrive behind
        // it (ADR 0016).
        while self.requests.has_unproposed()
            && self.next_sequence <= self.high_watermark()
            && self.weight_ahead_of_execution() <= self.config.weight_ahead_max
        {
            if !force && !self.requests.batch_full(limits) {
                break;
            }
            let (taken, weight) = self.requests.take_batch(limits);
            if taken.is_empty() {
                break;
            }
            self.proposed_weight.insert(self.next_sequence, weight);
            // The proposal's time never goes backwards at this replica, even if the
            // caller's clock does.
            let header = BatchHeader {
                view: self.view.0,
                timestamp_ms: self.clock_ms.max(self.last_proposal_time_ms),
            };
            self.last_proposal_time_ms = header.timestamp_ms;
            let requests: Vec<&Vec<u8>> = taken.iter().map(|(_, request)| request).collect();
            let batch = encode_batch(header, &requests);
            self.propose(batch, effects);
        }
        // ADR 0021: an epoch whose end is known ends even if nobody sends anything: with
        // no request waiting, the primary fills the window up to the last sequence number
        // with null batches (whatever arrives later is the next epoch's to order).
        if self.epoch_last.is_some() && !self.requests.has_unproposed() {
            while self.next_sequence <= self.high_watermark() {
                self.proposed_weight.insert(self.next_sequence, 0);
                self.propose(Vec::new(), effects);
            }
        }
        // The batch timer runs only while a batch could go out: with the window full, the
        // next stable checkpoint calls this again.
        if self.requests.has_unproposed()
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

    /// The weight of the batches this primary proposed in this view and has not executed.
    pub(super) fn weight_ahead_of_execution(&self) -> u64 {
        self.proposed_weight
            .range(self.last_executed.next()..)
            .fold(0u64, |sum, (_, weight)| sum.saturating_add(*weight))
    }

    /// PBFT §4.2: the primary assigns the next sequence number and multicasts PRE-PREPARE.
    fn propose(&mut self, batch: Vec<u8>, effects: &mut Vec<Effect>) {
        let sequence = self.next_sequence;
        self.next_sequence = sequence.next();
        let digest = self.crypto.digest(&batch);
        // The same batch may already be decided (another view cut it identically) and
        // waited for: delivery resumes below.
        let wanted = self.batches.insert(digest, batch.clone());
        let view = self.view;
        let message = self.sign(Message::PrePrepare { view, sequence, digest, batch });
        self.slots.entry(sequence).or_default().pre_prepare = Some((digest, message.signature));
        effects.push(Effect::Persist(Record::Sent(message.clone())));
        effects.push(Effect::Broadcast(message));
        self.try_prepared(sequence, effects);
        if wanted {
            self.deliver_in_order(effects);
        }
    }

    /// PBFT §4.2: a backup accepts a PRE-PREPARE signed by the primary of its view, in its
    /// view and window, whose batch matches the digest and is a well-formed batch of valid
    /// requests cut in that view, if it accepted no other for (view, sequence).
    pub(super) fn on_pre_prepare(
        &mut self,
        pre_prepare: PrePrepare,
        batch: Vec<u8>,
        effects: &mut Vec<Effect>,
    ) {
        let PrePrepare { sender, view, sequence, digest, signature } = pre_prepare;
        if sender != self.config.primary(view) {
            effects.push(Effect::Evidence(Evidence::NotPrimary { sender, view }));
            return;
        }
        if self.crypto.digest(&batch) != digest {
            effects.push(Effect::Evidence(Evidence::BatchDigestMismatch { sender }));
            return;
        }
        if view != self.view {
            // Not this view's. The batch may still be one it waits for; a PRE-PREPARE of
            // the view it is moving to waits for the NEW-VIEW.
            let target = self.view_change.unwrap_or(self.view.next());
            if view == target
                && self.in_window(sequence)
                && (self.early.len() as u64) < self.config.watermark_window
            {
                let message = Message::PrePrepare { view, sequence, digest, batch: batch.clone() };
                self.early.entry(sequence).or_insert(SignedMessage { sender, message, signature });
            }
            self.offer_batch(digest, batch, effects);
            return;
        }
        if !self.in_window(sequence) {
            self.offer_batch(digest, batch, effects);
            return;
        }
        match self.slots.get(&sequence).and_then(|slot| slot.pre_prepare) {
            // A retransmission, or the batch of a re-proposal.
            Some((existing, _)) if existing == digest => {
                self.offer_batch(digest, batch, effects);
                return;
            }
            Some(_) => {
                effects.push(Effect::Evidence(Evidence::Equivocation { sender, view, sequence }));
                return;
            }
            None => {}
        }
        if self.decided.get(&sequence).is_some_and(|decided| decided.digest != digest) {
            effects.push(Effect::Evidence(Evidence::ConflictingDecision { sequence }));
            return;
        }
        match self.proposal_fault(&batch, view) {
            None => {}
            Some(ProposalFault::Malformed) => {
                effects.push(Effect::Evidence(Evidence::MalformedBatch { sender, sequence }));
                return;
            }
            // A clock too far from this one, or a PRE-PREPARE that arrived very late: no
            // proof of a fault, but no PREPARE either. The others may still decide the
            // batch, and this replica then learns the decision.
            Some(ProposalFault::Untimely) => return,
        }
        self.slots.entry(sequence).or_default().pre_prepare = Some((digest, signature));
        if self.view_change.is_some() {
            // Leaving this view: keep the batch (a commit certificate may still decide
            // it), but take no part in the view.
            self.batches.insert(digest, batch);
            self.deliver_in_order(effects);
            return;
        }
        let message = Message::PrePrepare { view, sequence, digest, batch: batch.clone() };
        effects.push(Effect::Persist(Record::Accepted(SignedMessage {
            sender,
            message,
            signature,
        })));
        self.batches.insert(digest, batch);
        self.send_prepare(sequence, digest, effects);
        if self.votes.equivocation_shown(&self.config, sequence, view, digest) {
            effects.push(Effect::Evidence(Evidence::Equivocation { sender, view, sequence }));
        }
        self.try_prepared(sequence, effects);
        self.deliver_in_order(effects);
        self.arm_request_timer(effects);
    }

    /// A normal-case batch is the null batch that closes an epoch whose end is known, or
    /// it is cut in the view of its PRE-PREPARE (only a NEW-VIEW re-proposes an earlier
    /// view's), is well formed within the batch limits (its weight
    /// too), holds only requests the caller accepts to order, and is stamped within the
    /// allowed skew of this replica's clock.
    fn proposal_fault(&self, batch: &[u8], view: View) -> Option<ProposalFault> {
        if batch.is_empty() {
            // The null batch closes an epoch (ADR 0021). A replica that does not know yet
            // that the epoch ends prepares it once it does (the primary re-sends it).
            return self.epoch_last.is_none().then_some(ProposalFault::Untimely);
        }
        let Ok(decoded) =
            decode_batch(batch, self.config.batch_requests_max, self.config.batch_bytes_max)
        else {
            return Some(ProposalFault::Malformed);
        };
        let Some(header) = decoded.header.filter(|header| header.view == view.0) else {
            return Some(ProposalFault::Malformed);
        };
        if !decoded.requests.iter().all(|request| self.crypto.validate_request(request)) {
            return Some(ProposalFault::Malformed);
        }
        let weight = decoded
            .requests
            .iter()
            .fold(0u64, |sum, request| sum.saturating_add(self.crypto.request_weight(request)));
        if weight > self.config.batch_weight_max {
            return Some(ProposalFault::Malformed);
        }
        if header.timestamp_ms.abs_diff(self.clock_ms) > self.config.timestamp_skew_max_ms {
            return Some(ProposalFault::Untimely);
        }
        None
    }

    /// Signs and multicasts this backup's PREPARE for the slot's PRE-PREPARE, once.
    pub(super) fn send_prepare(
        &mut self,
        sequence: Sequence,
        digest: Hash,
        effects: &mut Vec<Effect>,
    ) {
        if self.is_primary()
            || self.slots.get(&sequence).is_some_and(|slot| slot.sent_prepare.is_some())
        {
            return;
        }
        let view = self.view;
        let prepare = self.sign(Message::Prepare { view, sequence, digest });
        self.votes.add_prepare(sequence, view, self.id, digest, prepare.signature);
        self.slots.entry(sequence).or_default().sent_prepare = Some(prepare.clone());
        effects.push(Effect::Persist(Record::Sent(prepare.clone())));
        effects.push(Effect::Broadcast(prepare));
    }

    pub(super) fn on_prepare(
        &mut self,
        sender: ReplicaId,
        view: View,
        sequence: Sequence,
        digest: Hash,
        signature: Signature,
        effects: &mut Vec<Effect>,
    ) {
        let target = self.view_change.unwrap_or(self.view);
        if !self.in_window(sequence) || (view != self.view && view != target) {
            return;
        }
        if sender == self.config.primary(view) {
            effects.push(Effect::Evidence(Evidence::PrepareFromPrimary { sender }));
            return;
        }
        match self.votes.add_prepare(sequence, view, sender, digest, signature) {
            Recorded::Conflict => {
                let kind = "prepare";
                effects.push(Effect::Evidence(Evidence::ConflictingVote {
                    sender,
                    kind,
                    view,
                    sequence,
                }));
                return;
            }
            Recorded::Duplicate | Recorded::Superseded => return,
            Recorded::New => {}
        }
        if view != self.view || self.view_change.is_some() {
            return;
        }
        if let Some((own, _)) = self.slots.get(&sequence).and_then(|slot| slot.pre_prepare)
            && self.votes.equivocation_shown(&self.config, sequence, view, own)
        {
            let primary = self.config.primary(view);
            effects.push(Effect::Evidence(Evidence::Equivocation {
                sender: primary,
                view,
                sequence,
            }));
        }
        self.try_prepared(sequence, effects);
    }

    /// COMMITs of any view up to [`super::VIEW_CHANGE_VIEWS_AHEAD_MAX`] ahead count: 2f + 1
    /// matching ones of one view decide the sequence number, whichever view this replica
    /// is in.
    pub(super) fn on_commit(
        &mut self,
        sender: ReplicaId,
        view: View,
        sequence: Sequence,
        digest: Hash,
        signature: Signature,
        effects: &mut Vec<Effect>,
    ) {
        if !self.in_window(sequence) || view > self.view.plus(super::VIEW_CHANGE_VIEWS_AHEAD_MAX) {
            return;
        }
        let (recorded, certificate) =
            self.votes.add_commit(&self.config, sequence, view, sender, digest, signature);
        if recorded == Recorded::Conflict {
            let kind = "commit";
            effects.push(Effect::Evidence(Evidence::ConflictingVote {
                sender,
                kind,
                view,
                sequence,
            }));
        }
        if let Some(certificate) = certificate {
            self.decide(certificate, effects);
        }
    }

    /// A relayed decision: its certificate must verify (2f + 1 distinct valid COMMITs of
    /// one view), then it decides like the COMMITs themselves would.
    pub(super) fn on_decided(
        &mut self,
        sender: ReplicaId,
        certificate: CommitCertificate,
        effects: &mut Vec<Effect>,
    ) {
        let sequence = certificate.sequence;
        if !self.in_window(sequence) || sequence <= self.last_delivered {
            return;
        }
        if let Err(error) = certificate.verify(&self.config, &self.crypto) {
            effects.push(Effect::Evidence(Evidence::InvalidCertificate { sender, error }));
            return;
        }
        self.decide(certificate, effects);
    }

    /// PBFT §4.2: prepared(m, v, n, i) holds once the replica has the PRE-PREPARE and 2f
    /// matching PREPAREs from distinct backups. It records the prepared certificate (for
    /// its VIEW-CHANGEs, durably) and multicasts its COMMIT.
    pub(super) fn try_prepared(&mut self, sequence: Sequence, effects: &mut Vec<Effect>) {
        if self.view_change.is_some() {
            return;
        }
        let view = self.view;
        let Some((digest, primary_signature)) =
            self.slots.get(&sequence).and_then(|slot| slot.pre_prepare)
        else {
            return;
        };
        let Some(prepares) = self.votes.prepared(&self.config, sequence, view, digest) else {
            return;
        };
        let certificate =
            PreparedCertificate { view, sequence, digest, primary_signature, prepares };
        self.prepared.insert(sequence, certificate.clone());
        effects.push(Effect::Persist(Record::Prepared(certificate)));
        if self.slots.get(&sequence).is_some_and(|slot| slot.sent_commit.is_some()) {
            return;
        }
        let commit = self.sign(Message::Commit { view, sequence, digest });
        self.slots.entry(sequence).or_default().sent_commit = Some(commit.clone());
        effects.push(Effect::Persist(Record::Sent(commit.clone())));
        effects.push(Effect::Broadcast(commit.clone()));
        let (_, certificate) =
            self.votes.add_commit(&self.config, sequence, view, self.id, digest, commit.signature);
        if let Some(certificate) = certificate {
            self.decide(certificate, effects);
        }
    }

    /// A commit certificate decides its sequence number, once and for good: a later
    /// certificate for another digest is evidence (it cannot exist with at most f faulty
    /// replicas) and changes nothing.
    pub(super) fn decide(&mut self, certificate: CommitCertificate, effects: &mut Vec<Effect>) {
        let sequence = certificate.sequence;
        if sequence <= self.last_delivered && !self.decided.contains_key(&sequence) {
            return;
        }
        match self.decided.get(&sequence) {
            Some(decided) if decided.digest == certificate.digest => return,
            Some(_) => {
                effects.push(Effect::Evidence(Evidence::ConflictingDecision { sequence }));
                return;
            }
            None => {}
        }
        let digest = certificate.digest;
        let holders: Vec<ReplicaId> =
            certificate.commits.iter().map(|(replica, _)| *replica).collect();
        effects.push(Effect::Persist(Record::Decided(certificate.clone())));
        self.decided.insert(sequence, certificate);
        if self.batches.get(&digest).is_none() {
            self.want_batch(digest, holders, effects);
        }
        self.deliver_in_order(effects);
    }

    /// PBFT §4.2: execute in sequence order. Delivers each decided batch that follows the
    /// last delivered one and is at hand, while execution is at most the backlog behind.
    pub(super) fn deliver_in_order(&mut self, effects: &mut Vec<Effect>) {
        let mut delivered = false;
        while self.last_delivered.0 - self.last_executed.0 < self.config.delivery_backlog_max {
            let next = self.last_delivered.next();
            let Some(certificate) = self.decided.get(&next) else { break };
            let Some(batch) = self.batches.get(&certificate.digest) else { break };
            let (batch, certificate) = (batch.to_vec(), certificate.clone());
            self.last_delivered = next;
            self.forget_delivered_requests(next, &batch);
            self.early.retain(|sequence, _| *sequence > next);
            effects.push(Effect::Deliver(Delivery { sequence: next, batch, certificate }));
            delivered = true;
        }
        if delivered {
            self.arm_request_timer(effects);
        }
    }

    /// The requests in the batch delivered at `sequence` are no longer pending.
    fn forget_delivered_requests(&mut self, sequence: Sequence, batch: &[u8]) {
        let Ok(requests) =
            batch_requests(batch, self.config.batch_requests_max, self.config.batch_bytes_max)
        else {
            return;
        };
        let done: Vec<Hash> = requests.iter().map(|request| self.crypto.digest(request)).collect();
        self.requests.delivered(sequence.0, done);
    }

    /// Test-only planted bug [`Mutation::OverwriteDecision`]: a re-proposal replaces the
    /// batch of an undelivered decision, under the decision's certificate (the fork of
    /// issue 7's first finding, where a stale NEW-VIEW overwrote a learned decision).
    pub(super) fn overwrite_decision_for_tests(
        &mut self,
        sequence: Sequence,
        digest: Hash,
    ) -> bool {
        if !self.config.mutated(Mutation::OverwriteDecision) || sequence <= self.last_delivered {
            return false;
        }
        if let Some(decided) = self.decided.get_mut(&sequence) {
            decided.digest = digest;
        }
        true
    }
}
