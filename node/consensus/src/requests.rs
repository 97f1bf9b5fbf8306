//! Client requests a replica holds until they are executed: the primary's batching queue
//! and what a backup's request timer watches (PBFT §4.4).
//!
//! A request leaves only when a delivered batch holds it, state transfer covers it, or the
//! caller withdraws it; never when it is merely proposed, since a view change can void a
//! proposal. Its identity is its digest.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use pactum_types::Hash;

/// Client requests a replica holds that are not yet delivered.
pub const PENDING_REQUESTS_MAX: usize = 65_536;

#[derive(Debug, Clone)]
struct Pending {
    arrival: u64,
    request: Vec<u8>,
    weight: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Requests {
    pending: BTreeMap<Hash, Pending>,
    /// Pending digests by arrival, for the oldest one.
    by_arrival: BTreeMap<u64, Hash>,
    arrivals: u64,
    /// Requests a batch of the current view already holds, pending here or not (yet): the
    /// primary does not propose them twice, even if one arrives only after its batch.
    proposed: BTreeSet<Hash>,
    /// Pending requests no batch of this view holds yet, oldest first; digests that left
    /// meanwhile are skipped when they come up.
    unproposed: VecDeque<Hash>,
    unproposed_count: usize,
    unproposed_bytes: usize,
    unproposed_weight: u64,
    /// Requests delivered recently, by the sequence number that delivered them: a request
    /// that arrives again (the caller handed it over just as its batch was delivered) is
    /// not pending. Kept for two checkpoint windows, and at least one checkpoint interval
    /// after their execution.
    delivered: BTreeMap<u64, Vec<Hash>>,
    delivered_index: BTreeSet<Hash>,
}

/// What one batch may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchLimits {
    pub requests_max: usize,
    pub bytes_max: usize,
    pub weight_max: u64,
}

/// Why a request was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    TooLarge,
}

impl Requests {
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn contains(&self, digest: &Hash) -> bool {
        self.pending.contains_key(digest)
    }

    /// Whether the request was delivered recently.
    pub fn recently_delivered(&self, digest: &Hash) -> bool {
        self.delivered_index.contains(digest)
    }

    /// The requests of the batch delivered at `sequence` are done.
    pub fn delivered(&mut self, sequence: u64, digests: Vec<Hash>) {
        for digest in &digests {
            self.forget(digest);
            self.delivered_index.insert(*digest);
        }
        self.delivered.entry(sequence).or_default().extend(digests);
    }

    /// Forgets what was delivered at or below `sequence`.
    pub fn forget_delivered_through(&mut self, sequence: u64) {
        let kept = self.delivered.split_off(&(sequence + 1));
        for digest in std::mem::replace(&mut self.delivered, kept).into_values().flatten() {
            self.delivered_index.remove(&digest);
        }
    }

    /// The request that has waited longest.
    pub fn oldest(&self) -> Option<Hash> {
        self.by_arrival.values().next().copied()
    }

    /// The requests that have waited longest, at most `count_max` of them and
    /// `bytes_max` bytes together (at least one).
    pub fn oldest_requests(&self, count_max: usize, bytes_max: usize) -> Vec<Vec<u8>> {
        let mut oldest = Vec::new();
        let mut bytes = 0usize;
        for digest in self.by_arrival.values() {
            let Some(pending) = self.pending.get(digest) else { continue };
            if oldest.len() >= count_max
                || (!oldest.is_empty() && bytes + pending.request.len() > bytes_max)
            {
                break;
            }
            bytes += pending.request.len();
            oldest.push(pending.request.clone());
        }
        oldest
    }

    /// Takes a request; `Ok(false)` if it is already held.
    pub fn add(
        &mut self,
        digest: Hash,
        request: Vec<u8>,
        weight: u64,
        bytes_max: usize,
    ) -> Result<bool, Refusal> {
        if self.pending.contains_key(&digest) {
            return Ok(false);
        }
        if request.len() > bytes_max {
            return Err(Refusal::TooLarge);
        }
        if self.pending.len() >= PENDING_REQUESTS_MAX {
            return Err(Refusal::Full);
        }
        self.arrivals += 1;
        if !self.proposed.contains(&digest) {
            self.unproposed.push_back(digest);
            self.unproposed_count += 1;
            self.unproposed_bytes += request.len();
            self.unproposed_weight = self.unproposed_weight.saturating_add(weight);
        }
        self.by_arrival.insert(self.arrivals, digest);
        self.pending.insert(digest, Pending { arrival: self.arrivals, request, weight });
        Ok(true)
    }

    /// The request is done (delivered, transferred or withdrawn).
    pub fn forget(&mut self, digest: &Hash) {
        if let Some(pending) = self.pending.remove(digest) {
            self.by_arrival.remove(&pending.arrival);
            if !self.proposed.contains(digest) {
                self.unproposed_count -= 1;
                self.unproposed_bytes -= pending.request.len();
                self.unproposed_weight = self.unproposed_weight.saturating_sub(pending.weight);
            }
        }
        self.proposed.remove(digest);
        // A backup never takes batches, so entries of requests that left accumulate at
        // the front of the queue: compact it once they outnumber the live ones (amortised
        // constant time, and the queue stays within twice the pending requests).
        if self.unproposed.len() > 2 * self.unproposed_count + 64 {
            let (pending, proposed) = (&self.pending, &self.proposed);
            let mut seen = BTreeSet::new();
            self.unproposed.retain(|digest| {
                pending.contains_key(digest) && !proposed.contains(digest) && seen.insert(*digest)
            });
        }
    }

    pub fn has_unproposed(&self) -> bool {
        self.unproposed_count > 0
    }

    /// Whether enough requests wait to fill a batch by count, bytes or weight.
    pub fn batch_full(&self, limits: BatchLimits) -> bool {
        self.unproposed_count >= limits.requests_max
            || self.unproposed_bytes >= limits.bytes_max
            || self.unproposed_weight >= limits.weight_max
    }

    /// The oldest unproposed requests that fit one batch, now marked proposed.
    pub fn take_batch(&mut self, limits: BatchLimits) -> Vec<(Hash, Vec<u8>)> {
        let BatchLimits { requests_max, bytes_max, weight_max } = limits;
        let mut taken: Vec<(Hash, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        let mut weight = 0u64;
        while taken.len() < requests_max {
            let Some(digest) = self.unproposed.front().copied() else { break };
            let Some(pending) = self.pending.get(&digest) else {
                // It left while it waited.
                self.unproposed.pop_front();
                continue;
            };
            if self.proposed.contains(&digest) {
                self.unproposed.pop_front();
                continue;
            }
            if !taken.is_empty()
                && (bytes + pending.request.len() > bytes_max
                    || weight.saturating_add(pending.weight) > weight_max)
            {
                break;
            }
            bytes += pending.request.len();
            weight = weight.saturating_add(pending.weight);
            taken.push((digest, pending.request.clone()));
            self.unproposed.pop_front();
        }
        self.unproposed_count -= taken.len();
        self.unproposed_bytes -= bytes;
        self.unproposed_weight = self.unproposed_weight.saturating_sub(weight);
        self.proposed.extend(taken.iter().map(|(digest, _)| *digest));
        taken
    }

    /// A new view: the batches it holds so far are `proposed` (its re-proposals); every
    /// other pending request waits to be proposed again, in arrival order.
    pub fn requeue(&mut self, proposed: impl IntoIterator<Item = Hash>) {
        self.proposed =
            proposed.into_iter().filter(|digest| !self.delivered_index.contains(digest)).collect();
        self.unproposed = self
            .by_arrival
            .values()
            .filter(|digest| !self.proposed.contains(digest))
            .copied()
            .collect();
        self.unproposed_count = self.unproposed.len();
        self.unproposed_bytes = self
            .unproposed
            .iter()
            .filter_map(|digest| self.pending.get(digest))
            .map(|pending| pending.request.len())
            .sum();
        self.unproposed_weight = self.unproposed_weight_now();
    }

    fn unproposed_weight_now(&self) -> u64 {
        self.pending
            .iter()
            .filter(|(digest, _)| !self.proposed.contains(*digest))
            .fold(0u64, |sum, (_, pending)| sum.saturating_add(pending.weight))
    }

    /// Paired checks of the counters against the queues (for `check_invariants`).
    pub fn check(&self) {
        assert_eq!(self.pending.len(), self.by_arrival.len(), "arrival index matches");
        let queued: BTreeSet<&Hash> = self.unproposed.iter().collect();
        let waiting: Vec<&Hash> =
            self.pending.keys().filter(|digest| !self.proposed.contains(*digest)).collect();
        assert!(
            waiting.iter().all(|digest| queued.contains(digest)),
            "a waiting request is queued"
        );
        assert_eq!(self.unproposed_count, waiting.len(), "unproposed count");
        let bytes: usize = waiting.iter().map(|digest| self.pending[*digest].request.len()).sum();
        assert_eq!(self.unproposed_bytes, bytes, "unproposed bytes");
        assert_eq!(self.unproposed_weight, self.unproposed_weight_now(), "unproposed weight");
    }
}
