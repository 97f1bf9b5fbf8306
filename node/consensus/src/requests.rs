//! Client requests a replica holds until they are executed: the primary's batching queue
//! and what a backup's request timer watches (PBFT §4.4).
//!
//! A request leaves only when a delivered batch holds it, state transfer covers it, or the
//! caller withdraws it; never when it is merely proposed, since a view change can void a
//! proposal. Its identity is its digest.
//!
//! The primary takes what it proposes by fair queuing over groups (in the node, a group
//! is the sender's member organisation): each group's requests stay in arrival order,
//! and the next request comes from the group whose weight proposed so far is least
//! (start-time fair queuing: a group's next request starts at the later of its last
//! request's finish and the queue's virtual time, and finishes its weight later). So one
//! group's heavy requests cannot crowd the others out of a batch or make them wait behind
//! its whole backlog; with one group, or requests of equal tags, it is plain arrival
//! order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use pactum_types::Hash;

/// Client requests a replica holds that are not yet delivered.
pub const PENDING_REQUESTS_MAX: usize = 65_536;

#[derive(Debug, Clone)]
struct Pending {
    arrival: u64,
    request: Vec<u8>,
    weight: u64,
    group: u64,
}

/// One group's requests no batch of this view holds yet, oldest first (digests that left
/// meanwhile are skipped when they come up), and the virtual time its last proposed
/// request finished at.
#[derive(Debug, Default)]
struct GroupQueue {
    queue: VecDeque<Hash>,
    finish: u128,
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
    /// Pending requests no batch of this view holds yet, by group.
    unproposed: BTreeMap<u64, GroupQueue>,
    /// Entries in all the group queues, live or not (for compaction).
    queued_entries: usize,
    /// The fair queue's virtual time: the start of the last request taken.
    virtual_time: u128,
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

    /// Takes a request of `group`; `Ok(false)` if it is already held.
    pub fn add(
        &mut self,
        digest: Hash,
        request: Vec<u8>,
        weight: u64,
        group: u64,
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
            self.unproposed.entry(group).or_default().queue.push_back(digest);
            self.queued_entries += 1;
            self.unproposed_count += 1;
            self.unproposed_bytes += request.len();
            self.unproposed_weight = self.unproposed_weight.saturating_add(weight);
        }
        self.by_arrival.insert(self.arrivals, digest);
        self.pending.insert(digest, Pending { arrival: self.arrivals, request, weight, group });
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
        if self.queued_entries > 2 * self.unproposed_count + 64 {
            let (pending, proposed) = (&self.pending, &self.proposed);
            let mut seen = BTreeSet::new();
            for group in self.unproposed.values_mut() {
                group.queue.retain(|digest| {
                    pending.contains_key(digest)
                        && !proposed.contains(digest)
                        && seen.insert(*digest)
                });
            }
            let virtual_time = self.virtual_time;
            self.unproposed
                .retain(|_, group| !group.queue.is_empty() || group.finish > virtual_time);
            self.queued_entries = seen.len();
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

    /// The unproposed requests that fit one batch, taken by fair queuing over groups
    /// (each group's in arrival order), now marked proposed, and their total weight. A
    /// group whose next request does not fit takes no more in this batch; the others may
    /// still fill it.
    pub fn take_batch(&mut self, limits: BatchLimits) -> (Vec<(Hash, Vec<u8>)>, u64) {
        let BatchLimits { requests_max, bytes_max, weight_max } = limits;
        let mut taken: Vec<(Hash, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        let mut weight = 0u64;
        let mut full: BTreeSet<u64> = BTreeSet::new();
        while taken.len() < requests_max {
            self.drop_stale_heads();
            // The group whose next request starts first; ties go to the older request.
            let mut next: Option<(u128, u64, u64, Hash)> = None;
            for (group, queue) in &self.unproposed {
                if full.contains(group) {
                    continue;
                }
                let Some(head) = queue.queue.front() else { continue };
                let start = queue.finish.max(self.virtual_time);
                let key = (start, self.pending[head].arrival, *group, *head);
                if next.is_none_or(|best| key < best) {
                    next = Some(key);
                }
            }
            let Some((start, _, group, digest)) = next else { break };
            let Some(queue) = self.unproposed.get_mut(&group) else { break };
            let pending = &self.pending[&digest];
            if !taken.is_empty()
                && (bytes + pending.request.len() > bytes_max
                    || weight.saturating_add(pending.weight) > weight_max)
            {
                full.insert(group);
                continue;
            }
            bytes += pending.request.len();
            weight = weight.saturating_add(pending.weight);
            self.virtual_time = start;
            queue.finish = start + u128::from(pending.weight);
            taken.push((digest, pending.request.clone()));
            queue.queue.pop_front();
            self.queued_entries -= 1;
        }
        self.unproposed_count -= taken.len();
        self.unproposed_bytes -= bytes;
        self.unproposed_weight = self.unproposed_weight.saturating_sub(weight);
        self.proposed.extend(taken.iter().map(|(digest, _)| *digest));
        (taken, weight)
    }

    /// Drops, from the front of every group's queue, digests that left while they waited
    /// or that a batch already holds, so each head is a live unproposed request.
    fn drop_stale_heads(&mut self) {
        for queue in self.unproposed.values_mut() {
            while let Some(digest) = queue.queue.front() {
                if self.pending.contains_key(digest) && !self.proposed.contains(digest) {
                    break;
                }
                queue.queue.pop_front();
                self.queued_entries -= 1;
            }
        }
    }

    /// A new view: the batches it holds so far are `proposed` (its re-proposals); every
    /// other pending request waits to be proposed again, in arrival order.
    pub fn requeue(&mut self, proposed: impl IntoIterator<Item = Hash>) {
        self.proposed =
            proposed.into_iter().filter(|digest| !self.delivered_index.contains(digest)).collect();
        // The fair queue starts afresh: every group at the same virtual time.
        self.virtual_time = 0;
        self.unproposed = BTreeMap::new();
        self.unproposed_count = 0;
        self.unproposed_bytes = 0;
        for digest in self.by_arrival.values() {
            if self.proposed.contains(digest) {
                continue;
            }
            let pending = &self.pending[digest];
            self.unproposed.entry(pending.group).or_default().queue.push_back(*digest);
            self.unproposed_count += 1;
            self.unproposed_bytes += pending.request.len();
        }
        self.queued_entries = self.unproposed_count;
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
        let queued: BTreeSet<(u64, &Hash)> = self
            .unproposed
            .iter()
            .flat_map(|(group, queue)| queue.queue.iter().map(move |digest| (*group, digest)))
            .collect();
        let entries: usize = self.unproposed.values().map(|queue| queue.queue.len()).sum();
        assert_eq!(self.queued_entries, entries, "queued entries");
        let waiting: Vec<&Hash> =
            self.pending.keys().filter(|digest| !self.proposed.contains(*digest)).collect();
        assert!(
            waiting.iter().all(|digest| queued.contains(&(self.pending[*digest].group, *digest))),
            "a waiting request is queued in its group"
        );
        assert_eq!(self.unproposed_count, waiting.len(), "unproposed count");
        let bytes: usize = waiting.iter().map(|digest| self.pending[*digest].request.len()).sum();
        assert_eq!(self.unproposed_bytes, bytes, "unproposed bytes");
        assert_eq!(self.unproposed_weight, self.unproposed_weight_now(), "unproposed weight");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNLIMITED: BatchLimits =
        BatchLimits { requests_max: usize::MAX, bytes_max: usize::MAX, weight_max: u64::MAX };

    fn digest(number: u8) -> Hash {
        Hash([number; 32])
    }

    /// Adds request `number` of `group` weighing `weight`.
    fn add(requests: &mut Requests, number: u8, weight: u64, group: u64) {
        assert_eq!(requests.add(digest(number), vec![number], weight, group, 1_000), Ok(true));
    }

    fn numbers(taken: &[(Hash, Vec<u8>)]) -> Vec<u8> {
        taken.iter().map(|(_, request)| request[0]).collect()
    }

    #[test]
    fn one_group_is_served_in_arrival_order_and_stops_at_the_first_request_that_does_not_fit() {
        let mut requests = Requests::default();
        for (number, weight) in [(1, 3), (2, 1), (3, 5), (4, 1)] {
            add(&mut requests, number, weight, 0);
        }
        let limits = BatchLimits { weight_max: 6, ..UNLIMITED };
        assert_eq!(numbers(&requests.take_batch(limits).0), [1, 2]);
        assert_eq!(numbers(&requests.take_batch(limits).0), [3, 4]);
        requests.check();
    }

    #[test]
    fn a_group_with_heavy_requests_queued_first_does_not_crowd_out_a_light_group() {
        let mut requests = Requests::default();
        // Group 7 queues ten requests of weight 100 before group 1's twenty of weight 10.
        for number in 0..10 {
            add(&mut requests, number, 100, 7);
        }
        for number in 10..30 {
            add(&mut requests, number, 10, 1);
        }
        // A batch holds 100: the first is a heavy one (the older request wins the tie at
        // the start); from then on the light group has the least weight proposed, so it
        // fills the next batches until it has caught up, and only then is it group 7's turn.
        let limits = BatchLimits { weight_max: 100, ..UNLIMITED };
        assert_eq!(numbers(&requests.take_batch(limits).0), [0]);
        assert_eq!(numbers(&requests.take_batch(limits).0), (10..20).collect::<Vec<u8>>());
        assert_eq!(numbers(&requests.take_batch(limits).0), [1]);
        assert_eq!(numbers(&requests.take_batch(limits).0), (20..30).collect::<Vec<u8>>());
        assert_eq!(numbers(&requests.take_batch(limits).0), [2]);
        requests.check();
    }

    #[test]
    fn groups_share_a_batch_by_weight_and_each_keeps_its_own_order() {
        let mut requests = Requests::default();
        for number in 0..6 {
            add(&mut requests, number, 2, 1);
        }
        for number in 10..16 {
            add(&mut requests, number, 1, 2);
        }
        let taken = numbers(&requests.take_batch(BatchLimits { requests_max: 6, ..UNLIMITED }).0);
        // Equal weight proposed: group 2 (weight 1) gets two requests for each of group 1's.
        let first: Vec<u8> = taken.iter().copied().filter(|number| *number < 10).collect();
        let second: Vec<u8> = taken.iter().copied().filter(|number| *number >= 10).collect();
        assert_eq!(first, [0, 1]);
        assert_eq!(second, [10, 11, 12, 13]);
        // The rest, whatever the interleaving, still in each group's order.
        let rest = numbers(&requests.take_batch(UNLIMITED).0);
        let first: Vec<u8> = rest.iter().copied().filter(|number| *number < 10).collect();
        assert_eq!(first, [2, 3, 4, 5]);
        assert_eq!(rest.iter().filter(|number| **number >= 10).count(), 2);
        requests.check();
    }

    #[test]
    fn a_view_change_requeues_every_unproposed_request_in_its_group() {
        let mut requests = Requests::default();
        for number in 0..4 {
            add(&mut requests, number, 1, u64::from(number % 2));
        }
        let (taken, _) = requests.take_batch(BatchLimits { requests_max: 2, ..UNLIMITED });
        assert_eq!(numbers(&taken), [0, 1]);
        requests.requeue(std::iter::empty());
        requests.check();
        assert_eq!(numbers(&requests.take_batch(UNLIMITED).0), [0, 1, 2, 3]);
        requests.check();
    }
}
