//! Batches by digest, and fetching one a replica lacks.
//!
//! Consensus orders digests; the batches travel beside them. A replica can hold a
//! decision, or a NEW-VIEW's re-proposal, without the batch: the primary skipped it, or it
//! learned the decision from COMMITs of a view it never entered. It then asks f + 1 of the
//! replicas that vouched for the digest (one of them is honest and holds it), a few at a
//! time and again on every retransmission tick, and accepts an answer only if it hashes
//! to the digest. Each peer gets at most one answer per digest per tick.

use std::collections::{BTreeMap, BTreeSet};

use pactum_types::Hash;

use super::Replica;
use crate::crypto::Crypto;
use crate::ids::ReplicaId;
use crate::message::Message;
use crate::{Effect, Evidence};

#[derive(Debug)]
struct Wanted {
    /// Replicas that vouched for the digest (signed a vote for it); empty means anyone.
    holders: Vec<ReplicaId>,
    /// Where the next round of asking starts in `holders`.
    next: usize,
}

/// The batches a replica holds, by digest.
#[derive(Debug)]
pub(super) struct Batches {
    /// The null batch's digest: always at hand (it is empty).
    null: Hash,
    held: BTreeMap<Hash, Vec<u8>>,
    wanted: BTreeMap<Hash, Wanted>,
    /// (peer, digest) answered since the last tick.
    served: BTreeSet<(ReplicaId, Hash)>,
}

impl Batches {
    pub fn new(null: Hash) -> Self {
        Self { null, held: BTreeMap::new(), wanted: BTreeMap::new(), served: BTreeSet::new() }
    }

    pub fn get(&self, digest: &Hash) -> Option<&[u8]> {
        if *digest == self.null {
            return Some(&[]);
        }
        self.held.get(digest).map(Vec::as_slice)
    }

    pub fn is_wanted(&self, digest: &Hash) -> bool {
        self.wanted.contains_key(digest)
    }

    /// Holds `batch` (whose digest the caller checked); whether it was wanted.
    pub fn insert(&mut self, digest: Hash, batch: Vec<u8>) -> bool {
        let wanted = self.wanted.remove(&digest).is_some();
        if digest != self.null {
            self.held.insert(digest, batch);
        }
        wanted
    }

    /// Starts wanting `digest`; false if it is at hand or already wanted.
    fn want(&mut self, digest: Hash, holders: Vec<ReplicaId>) -> bool {
        if self.get(&digest).is_some() || self.wanted.contains_key(&digest) {
            return false;
        }
        self.wanted.insert(digest, Wanted { holders, next: 0 });
        true
    }

    /// Whether to answer `peer`'s request for `digest` now (once per tick).
    fn serve(&mut self, peer: ReplicaId, digest: Hash) -> bool {
        self.served.insert((peer, digest))
    }

    pub fn new_tick(&mut self) {
        self.served.clear();
    }

    /// Keeps only the batches (and wants) `referenced` names.
    pub fn retain(&mut self, referenced: &BTreeSet<Hash>) {
        self.held.retain(|digest, _| referenced.contains(digest));
        self.wanted.retain(|digest, _| referenced.contains(digest));
    }

    pub fn check(&self) {
        assert!(!self.held.contains_key(&self.null), "the null batch is never stored");
        assert!(
            self.wanted.keys().all(|digest| !self.held.contains_key(digest)),
            "a batch at hand is not wanted"
        );
    }
}

impl<C: Crypto> Replica<C> {
    /// Starts fetching the batch with `digest` from `holders` (anyone if empty).
    pub(super) fn want_batch(
        &mut self,
        digest: Hash,
        holders: Vec<ReplicaId>,
        effects: &mut Vec<Effect>,
    ) {
        let holders: Vec<ReplicaId> = holders.into_iter().filter(|id| *id != self.id).collect();
        if self.batches.want(digest, holders) {
            self.ask_for_batch(digest, effects);
        }
    }

    /// Asks the next f + 1 holders of a wanted batch (every peer if none is known).
    fn ask_for_batch(&mut self, digest: Hash, effects: &mut Vec<Effect>) {
        let count = self.config.weak_quorum();
        let Some(wanted) = self.batches.wanted.get_mut(&digest) else { return };
        let request = Message::FetchBatch { digest };
        if wanted.holders.is_empty() {
            let message = self.sign(request);
            effects.push(Effect::Broadcast(message));
            return;
        }
        let mut targets = Vec::new();
        for offset in 0..count.min(wanted.holders.len()) {
            targets.push(wanted.holders[(wanted.next + offset) % wanted.holders.len()]);
        }
        wanted.next = (wanted.next + count) % wanted.holders.len();
        let message = self.sign(request);
        for to in targets {
            effects.push(Effect::Send { to, message: message.clone() });
        }
    }

    /// On every retransmission tick: ask again for every batch still wanted.
    pub(super) fn refetch(&mut self, effects: &mut Vec<Effect>) {
        let digests: Vec<Hash> = self.batches.wanted.keys().copied().collect();
        for digest in digests {
            self.ask_for_batch(digest, effects);
        }
    }

    pub(super) fn on_fetch_batch(
        &mut self,
        sender: ReplicaId,
        digest: Hash,
        effects: &mut Vec<Effect>,
    ) {
        let Some(batch) = self.batches.get(&digest).map(<[u8]>::to_vec) else { return };
        if self.batches.serve(sender, digest) {
            let message = self.sign(Message::Batch { digest, batch });
            effects.push(Effect::Send { to: sender, message });
        }
    }

    pub(super) fn on_batch(
        &mut self,
        sender: ReplicaId,
        digest: Hash,
        batch: Vec<u8>,
        effects: &mut Vec<Effect>,
    ) {
        if !self.batches.is_wanted(&digest) {
            // A late answer to a fetch that another answer already satisfied.
            return;
        }
        if self.crypto.digest(&batch) != digest {
            effects.push(Effect::Evidence(Evidence::BatchDigestMismatch { sender }));
            return;
        }
        self.offer_batch(digest, batch, effects);
    }

    /// A batch whose digest was checked: kept if this replica waits for it, and then
    /// whatever waited for it goes on.
    pub(super) fn offer_batch(&mut self, digest: Hash, batch: Vec<u8>, effects: &mut Vec<Effect>) {
        if !self.batches.is_wanted(&digest) {
            return;
        }
        self.batches.insert(digest, batch);
        self.deliver_in_order(effects);
        self.cut_batches(false, effects);
    }

    /// Drops the batches nothing refers to any more: not a slot of the current view, a
    /// decision, a prepared certificate, or an early PRE-PREPARE.
    pub(super) fn collect_batches(&mut self) {
        let mut referenced: BTreeSet<Hash> = BTreeSet::new();
        referenced.extend(self.slots.values().filter_map(|slot| slot.pre_prepare.map(|(d, _)| d)));
        referenced.extend(self.decided.values().map(|certificate| certificate.digest));
        referenced.extend(self.prepared.values().map(|certificate| certificate.digest));
        referenced.extend(self.early.values().filter_map(|message| match message.message {
            Message::PrePrepare { digest, .. } => Some(digest),
            _ => None,
        }));
        self.batches.retain(&referenced);
    }
}
