//! Rebuilding a replica from what it persisted (its consensus log), so that a restarted
//! replica never contradicts what it sent before it crashed:
//!
//! - the view it was in (its last NEW-VIEW, or the view of its last votes) and the view
//!   it promised to move to (its last VIEW-CHANGE above that);
//! - its PRE-PREPAREs, PREPAREs and COMMITs of that view, so it never votes for another
//!   batch at a sequence number it voted on;
//! - its prepared certificates, so its next VIEW-CHANGE reports them (PBFT §4.4: safety
//!   must survive a crash of every replica, as in a power cut);
//! - its decisions above the stable checkpoint (immutable across restarts too);
//! - its stable checkpoint and its own latest CHECKPOINT;
//! - the batches of the PRE-PREPAREs it accepted, which a later view may re-propose.

use super::{Replica, Slot};
use crate::crypto::Crypto;
use crate::ids::{Sequence, View};
use crate::message::{Message, SignedMessage};
use crate::record::Record;

impl<C: Crypto> Replica<C> {
    pub(super) fn restore(&mut self, records: &[Record]) {
        let view = records.iter().filter_map(entered_view).max().unwrap_or(View::ZERO);
        self.view = view;
        for record in records {
            match record {
                Record::Stable(checkpoint) => {
                    if checkpoint.sequence > self.stable.sequence {
                        self.stable = checkpoint.clone();
                    }
                }
                Record::Prepared(certificate) => {
                    let higher = self
                        .prepared
                        .get(&certificate.sequence)
                        .is_none_or(|kept| kept.view < certificate.view);
                    if higher {
                        self.prepared.insert(certificate.sequence, certificate.clone());
                    }
                }
                Record::Decided(certificate) => {
                    self.decided.entry(certificate.sequence).or_insert_with(|| certificate.clone());
                }
                Record::Sent(message) | Record::Accepted(message) => {
                    self.restore_message(message, view);
                }
            }
        }
        let h = self.stable.sequence;
        self.slots.retain(|sequence, _| *sequence > h);
        self.prepared.retain(|sequence, _| *sequence > h);
        self.decided.retain(|sequence, _| *sequence > h);
        self.votes.forget_through(h);
        // The keeper reports no second certificate for what is already decided.
        for sequence in self.decided.keys() {
            self.votes.mark_decided(*sequence);
        }
        self.view_change =
            self.view_changes.keys().next_back().copied().filter(|pending| *pending > view);
        self.view_changes.retain(|pending, _| *pending > view);
        self.next_sequence = self.next_sequence.max(h.next()).max(self.last_delivered.next());
        self.requeue_needed = true;
        self.collect_batches();
    }

    fn restore_message(&mut self, message: &SignedMessage, view: View) {
        let own = message.sender == self.id;
        match &message.message {
            Message::PrePrepare { view: of, sequence, digest, batch } => {
                self.batches.insert(*digest, batch.clone());
                if *of == view {
                    self.slot(*sequence).pre_prepare = Some((*digest, message.signature));
                    if own {
                        self.next_sequence = self.next_sequence.max(sequence.next());
                    }
                }
            }
            Message::NewView { view: of, pre_prepares, .. } if *of == view => {
                self.new_view = Some(message.clone());
                for reproposal in pre_prepares {
                    let slot = self.slot(reproposal.sequence);
                    slot.pre_prepare = Some((reproposal.digest, reproposal.signature));
                    if own {
                        self.next_sequence = self.next_sequence.max(reproposal.sequence.next());
                    }
                }
            }
            Message::Prepare { view: of, sequence, digest } if own && *of == view => {
                self.votes.add_prepare(*sequence, view, self.id, *digest, message.signature);
                self.slot(*sequence).sent_prepare = Some(message.clone());
            }
            Message::Commit { view: of, sequence, digest } if own && *of == view => {
                self.votes.add_commit(
                    &self.config,
                    *sequence,
                    view,
                    self.id,
                    *digest,
                    message.signature,
                );
                self.slot(*sequence).sent_commit = Some(message.clone());
            }
            Message::Checkpoint { .. } if own => self.own_checkpoint = Some(message.clone()),
            Message::ViewChange { new_view, .. } if own => {
                self.view_changes.entry(*new_view).or_default().insert(self.id, message.clone());
            }
            _ => {}
        }
    }

    fn slot(&mut self, sequence: Sequence) -> &mut Slot {
        self.slots.entry(sequence).or_default()
    }
}

/// The view a record shows the replica was in: a NEW-VIEW it sent or accepted, or the
/// view of a PRE-PREPARE or vote it sent or accepted.
fn entered_view(record: &Record) -> Option<View> {
    let (Record::Sent(message) | Record::Accepted(message)) = record else { return None };
    match message.message {
        Message::NewView { view, .. }
        | Message::PrePrepare { view, .. }
        | Message::Prepare { view, .. }
        | Message::Commit { view, .. } => Some(view),
        _ => None,
    }
}
