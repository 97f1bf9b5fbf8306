//! The mempool itself: admission, per-sender nonce queues, the ready order, the in-flight
//! mark, commit eviction and the gossip queue.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use pactum_types::crypto::{SignedMessage, domain, verify_batch};
use pactum_types::hash::sha3_256;
use pactum_types::{
    Decode, DecodeError, EnvelopeFault, Hash, Payload, PublicKey, Transaction, limits,
};

use crate::{ConfigError, MempoolConfig, NonceState, Rejection, RejectionCode, SignerRegistry};

/// Bytes of an encoded signature, the last field of an encoded transaction.
const SIGNATURE_BYTES: usize = 64;

/// Where a batch of transactions came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A client submitted them to this node; once admitted they are gossiped to the peers.
    Client,
    /// Another validator gossiped them; they are not gossiped again.
    Peer,
}

/// A successful admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// The transaction is new and now pending.
    Added(Hash),
    /// The very same transaction was already pending (or earlier in the same batch).
    AlreadyPending(Hash),
}

impl Admitted {
    pub fn hash(&self) -> Hash {
        match self {
            Admitted::Added(hash) | Admitted::AlreadyPending(hash) => *hash,
        }
    }
}

/// A transaction held by the mempool: decoded, with its hash and its canonical bytes (the
/// bytes it arrived as, which decoding proved canonical), shared without copying.
#[derive(Debug)]
pub struct PooledTransaction {
    hash: Hash,
    transaction: Transaction,
    encoded: Vec<u8>,
}

impl PooledTransaction {
    pub fn hash(&self) -> Hash {
        self.hash
    }

    pub fn transaction(&self) -> &Transaction {
        &self.transaction
    }

    /// The canonical encoding, as sent on the wire and stored in blocks.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    pub fn sender(&self) -> &PublicKey {
        &self.transaction.unsigned.sender
    }

    pub fn nonce(&self) -> u64 {
        self.transaction.unsigned.nonce
    }
}

/// Counters for metrics, monotonic since the mempool was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// New transactions admitted.
    pub admitted: u64,
    /// Admissions answered "already pending" (the same transaction again).
    pub already_pending: u64,
    rejected: [u64; RejectionCode::ALL.len()],
    /// Transactions removed because a block committed them.
    pub evicted_committed: u64,
    /// Transactions removed because their nonce was used by another committed transaction.
    pub evicted_stale: u64,
    /// Transactions removed because their signer is no longer enrolled.
    pub evicted_signer: u64,
    /// Transactions dropped after waiting too long behind a missing nonce.
    pub expired: u64,
}

impl Counters {
    /// Rejections under `code`.
    pub fn rejected(&self, code: RejectionCode) -> u64 {
        self.rejected[code.index()]
    }

    /// Rejections under every code.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

/// The current size of the mempool, for `/v1/status` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolStatus {
    pub transactions: usize,
    pub bytes: usize,
    pub senders: usize,
    pub in_flight: usize,
    pub gossip_queued: usize,
}

#[derive(Debug)]
struct Entry {
    pooled: Arc<PooledTransaction>,
    /// Unique admission sequence number; orders the ready queue and names gossip slots.
    arrival: u64,
    /// When it was admitted (milliseconds, the caller's clock): how long it has waited.
    admitted_ms: u64,
    /// The runtime holds it in its durable mempool log ([`Mempool::mark_durable`]).
    durable: bool,
    /// The member organisation of its sender, whose share it counts against.
    organisation: Option<Arc<str>>,
}

/// What the senders of each member organisation hold: (transactions, bytes).
type Shares = HashMap<Arc<str>, (usize, usize)>;

/// A transaction that passed every rule but the signature: it, its encoding, its sender's
/// next nonce on the ledger and its sender's organisation.
type Checked = (Transaction, Vec<u8>, u64, Option<Arc<str>>);

/// A transaction that waited too long behind a missing nonce of its sender and was
/// dropped ([`Mempool::expire_waiting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub hash: Hash,
    pub sender: PublicKey,
    pub nonce: u64,
    /// The first nonce of the sender that no one gave this mempool.
    pub missing_nonce: u64,
    /// How long it waited, in milliseconds.
    pub waited_ms: u64,
}

/// One sender's transactions in the mempool, for `GET /v1/accounts/{key}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderPending {
    /// The next nonce of the ledger, as the mempool last learned it.
    pub next_nonce: u64,
    /// Every pending nonce, ascending.
    pub pending: Vec<u64>,
    /// The first nonce at or after `next_nonce` that is not pending, when some pending
    /// nonce is above it: the gap the later transactions wait behind.
    pub missing_nonce: Option<u64>,
    /// The pending nonces above `missing_nonce`: they cannot be ordered until it arrives.
    pub waiting: Vec<u64>,
    /// When the oldest waiting transaction was admitted (milliseconds).
    pub oldest_waiting_admitted_ms: Option<u64>,
}

/// One sender's pending transactions.
///
/// Nonces in `next_nonce..in_flight_next` are in flight (handed to a proposal) and all
/// present; the transaction at `in_flight_next`, if present, is the sender's ready head;
/// nonces after a gap wait.
#[derive(Debug)]
struct SenderQueue {
    /// The next nonce the ledger accepts from this sender, as last learned.
    next_nonce: u64,
    /// The first nonce not yet handed out by `ready_batch`.
    in_flight_next: u64,
    by_nonce: BTreeMap<u64, Hash>,
    /// The arrival key under which this sender sits in the ready queue.
    head: Option<u64>,
}

/// Where the answer for one item of an admission batch comes from.
enum Slot {
    /// Refused, or already pending, before signature verification.
    Answered(Result<Admitted, Rejection>),
    /// The item became the candidate at this position.
    Candidate(usize),
    /// The same bytes as the item at this earlier index of the batch.
    RepeatOf(usize),
}

/// A transaction that passed every check that does not need its signature.
struct Candidate {
    hash: Hash,
    transaction: Transaction,
    encoded: Vec<u8>,
    next_nonce: u64,
    organisation: Option<Arc<str>>,
    message: Range<usize>,
}

/// The first nonce at or after the sender's next nonce that is missing, when some pending
/// transaction sits above it (and so cannot be ordered until it arrives).
fn first_missing(queue: &SenderQueue) -> Option<u64> {
    // Nonces `next_nonce..in_flight_next` are all present, so the gap starts at or after
    // `in_flight_next`: at the end of the contiguous run from there.
    let start = queue.in_flight_next;
    let run = queue
        .by_nonce
        .range(start..)
        .map(|(nonce, _)| *nonce)
        .zip(start..)
        .take_while(|(nonce, expected)| nonce == expected)
        .count() as u64;
    let missing = start + run;
    queue.by_nonce.range(missing..).next().is_some().then_some(missing)
}

/// The validator mempool. See the crate documentation.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    entries: HashMap<Hash, Entry>,
    senders: HashMap<PublicKey, SenderQueue>,
    /// Ready heads, one per sender with one, ordered by the head's arrival.
    ready: BTreeSet<(u64, PublicKey)>,
    /// Client transactions to gossip, as (hash, arrival); a slot whose arrival no longer
    /// matches the pooled entry is stale and skipped.
    gossip: VecDeque<(Hash, u64)>,
    bytes: usize,
    /// Per member organisation, what its senders' entries hold.
    shares: Shares,
    in_flight: usize,
    arrivals: u64,
    counters: Counters,
    /// Durable transactions removed since the runtime last asked
    /// ([`Mempool::take_forgotten_durable`]).
    forgotten_durable: Vec<Hash>,
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            entries: HashMap::new(),
            senders: HashMap::new(),
            ready: BTreeSet::new(),
            gossip: VecDeque::new(),
            bytes: 0,
            shares: HashMap::new(),
            in_flight: 0,
            arrivals: 0,
            counters: Counters::default(),
            forgotten_durable: Vec::new(),
        })
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Sets the largest gas limit a transaction may set from now on (the block gas limit
    /// changed at an epoch boundary). Transactions already pooled stay: one that no longer
    /// fits in a block gets an `Invalid` receipt, and its sender hears why.
    pub fn set_gas_limit_max(&mut self, gas_limit_max: u64) {
        self.config.gas_limit_max = gas_limit_max;
    }

    /// Admits a batch of encoded transactions, answering for each in order.
    ///
    /// Every rule that needs no signature is checked first (size, canonical decoding, gas
    /// limit, chain, signer, nonce, capacity); the signatures of the survivors are then
    /// verified together in one batch, and only after that are the survivors inserted, in
    /// order, so an invalid transaction can never take a nonce or capacity from a valid one
    /// in the same batch. A rejection adds and takes nothing, except that any admission
    /// may forget transactions that `nonces` shows the ledger has already made stale.
    /// `now_ms` (the caller's clock) stamps the admitted transactions, for
    /// [`Mempool::expire_waiting`].
    pub fn admit<R, N>(
        &mut self,
        items: Vec<Vec<u8>>,
        source: Source,
        registry: &R,
        nonces: &N,
        now_ms: u64,
    ) -> Vec<Result<Admitted, Rejection>>
    where
        R: SignerRegistry + ?Sized,
        N: NonceState + ?Sized,
    {
        let count = items.len();
        let mut slots: Vec<Slot> = Vec::with_capacity(count);
        let mut first_by_hash: HashMap<Hash, usize> = HashMap::with_capacity(count);
        let mut candidates: Vec<Candidate> = Vec::with_capacity(count);
        let mut messages: Vec<u8> = Vec::new();

        for (index, encoded) in items.into_iter().enumerate() {
            if encoded.len() > limits::TRANSACTION_BYTES_MAX {
                slots.push(Slot::Answered(Err(Rejection::Envelope(EnvelopeFault::TooLarge {
                    bytes: encoded.len(),
                    max: limits::TRANSACTION_BYTES_MAX,
                }))));
                continue;
            }
            // Decoding is canonical, so equal bytes are equal transactions and the hash
            // of the bytes is the transaction's hash: a repeat is found before decoding.
            let hash = sha3_256(&encoded);
            if self.entries.contains_key(&hash) {
                slots.push(Slot::Answered(Ok(Admitted::AlreadyPending(hash))));
                continue;
            }
            if let Some(&first) = first_by_hash.get(&hash) {
                slots.push(Slot::RepeatOf(first));
                continue;
            }
            first_by_hash.insert(hash, index);
            match self.check_without_signature(encoded, registry, nonces) {
                Ok((transaction, encoded, next_nonce, organisation)) => {
                    let start = messages.len();
                    messages.extend_from_slice(domain::TRANSACTION);
                    // The encoding is the unsigned transaction followed by the signature,
                    // so the signed bytes are a prefix of what arrived.
                    let unsigned_length = encoded.len().saturating_sub(SIGNATURE_BYTES);
                    messages.extend_from_slice(&encoded[..unsigned_length]);
                    slots.push(Slot::Candidate(candidates.len()));
                    candidates.push(Candidate {
                        hash,
                        transaction,
                        encoded,
                        next_nonce,
                        organisation,
                        message: start..messages.len(),
                    });
                }
                Err(rejection) => slots.push(Slot::Answered(Err(rejection))),
            }
        }

        let mut signature_valid = vec![true; candidates.len()];
        let batch: Vec<SignedMessage<'_>> = candidates
            .iter()
            .map(|candidate| {
                candidate.transaction.signed_message(&messages[candidate.message.clone()])
            })
            .collect();
        if let Err(bad) = verify_batch(&batch) {
            for position in bad {
                if let Some(valid) = signature_valid.get_mut(position) {
                    *valid = false;
                }
            }
        }
        drop(batch);

        let candidate_answers: Vec<Result<Admitted, Rejection>> = candidates
            .into_iter()
            .zip(signature_valid)
            .map(|(candidate, valid)| {
                if valid {
                    self.insert(candidate, source, now_ms).map(Admitted::Added)
                } else {
                    Err(Rejection::BadSignature { sender: candidate.transaction.unsigned.sender })
                }
            })
            .collect();

        let mut answers: Vec<Result<Admitted, Rejection>> = Vec::with_capacity(count);
        for slot in slots {
            let answer = match slot {
                Slot::Answered(answer) => answer,
                Slot::Candidate(position) => candidate_answers[position].clone(),
                // A repeat within the batch gets its first occurrence's answer; the first
                // occurrence comes earlier, so its answer is already there.
                Slot::RepeatOf(first) => match &answers[first] {
                    Ok(admitted) => Ok(Admitted::AlreadyPending(admitted.hash())),
                    Err(rejection) => Err(rejection.clone()),
                },
            };
            answers.push(answer);
        }
        for answer in &answers {
            match answer {
                Ok(Admitted::Added(_)) => self.counters.admitted += 1,
                Ok(Admitted::AlreadyPending(_)) => self.counters.already_pending += 1,
                Err(rejection) => self.counters.rejected[rejection.code().index()] += 1,
            }
        }
        answers
    }

    /// Every admission rule except the signature, against the pool as it stands.
    fn check_without_signature<R, N>(
        &mut self,
        encoded: Vec<u8>,
        registry: &R,
        nonces: &N,
    ) -> Result<Checked, Rejection>
    where
        R: SignerRegistry + ?Sized,
        N: NonceState + ?Sized,
    {
        let transaction = match Transaction::from_bytes(&encoded) {
            Ok(transaction) => transaction,
            Err(DecodeError::TooLong { what: "gas limit", length, max }) => {
                return Err(
                    EnvelopeFault::GasLimitTooHigh { gas_limit: length, max: max as u64 }.into()
                );
            }
            Err(reason) => return Err(Rejection::Malformed { reason }),
        };
        let unsigned = &transaction.unsigned;
        if unsigned.gas_limit > self.config.gas_limit_max {
            return Err(EnvelopeFault::GasLimitTooHigh {
                gas_limit: unsigned.gas_limit,
                max: self.config.gas_limit_max,
            }
            .into());
        }
        if unsigned.chain_id != self.config.chain_id {
            return Err(EnvelopeFault::WrongChain {
                expected: self.config.chain_id.clone(),
                found: unsigned.chain_id.clone(),
            }
            .into());
        }
        let sender = unsigned.sender;
        // An enrolment is how a signer becomes known: its certificate vouches for it.
        // An enrolment counts against no organisation's share.
        let (fault, organisation) = match &unsigned.payload {
            Payload::EnrolIdentity { certificate_der } => {
                (registry.enrolment_fault(&sender, certificate_der), None)
            }
            Payload::Governance { action: pactum_types::GovernanceAction::Ready } => {
                (registry.joiner_fault(&sender), None)
            }
            _ => registry.signer(&sender),
        };
        if let Some(fault) = fault {
            return Err(fault.into());
        }
        let next_nonce = nonces.next_nonce(&sender);
        // The ledger may have moved on since this sender's queue last heard of it.
        self.advance_sender(sender, next_nonce, None);
        let nonce = unsigned.nonce;
        if nonce < next_nonce {
            return Err(EnvelopeFault::StaleNonce { sender, nonce, next_nonce }.into());
        }
        let window = self.config.nonces_ahead_max;
        if nonce >= next_nonce.saturating_add(window) {
            return Err(Rejection::NonceTooFarAhead { sender, nonce, next_nonce, window });
        }
        if nonce == u64::MAX {
            return Err(EnvelopeFault::LastNonce { sender, nonce }.into());
        }
        let organisation: Option<Arc<str>> = organisation.map(Arc::from);
        self.check_room(&sender, nonce, encoded.len(), organisation.as_ref())?;
        Ok((transaction, encoded, next_nonce, organisation))
    }

    /// The rules that depend on what the pool already holds: the nonce slot and capacity.
    fn check_room(
        &self,
        sender: &PublicKey,
        nonce: u64,
        bytes: usize,
        organisation: Option<&Arc<str>>,
    ) -> Result<(), Rejection> {
        if let Some(queue) = self.senders.get(sender) {
            if let Some(pending) = queue.by_nonce.get(&nonce) {
                return Err(Rejection::NonceTaken { sender: *sender, nonce, pending: *pending });
            }
            if queue.by_nonce.len() >= self.config.sender_transactions_max {
                return Err(Rejection::SenderQueueFull {
                    sender: *sender,
                    max: self.config.sender_transactions_max,
                });
            }
        }
        let bytes_after = self.bytes.saturating_add(bytes);
        if self.entries.len() >= self.config.transactions_max || bytes_after > self.config.bytes_max
        {
            return Err(Rejection::MempoolFull {
                transactions: self.entries.len(),
                bytes: self.bytes,
                transactions_max: self.config.transactions_max,
                bytes_max: self.config.bytes_max,
            });
        }
        if let (Some(share), Some(organisation)) = (&self.config.organisation_share, organisation) {
            let (transactions, held) = self.shares.get(organisation).copied().unwrap_or((0, 0));
            if transactions >= share.transactions_max
                || held.saturating_add(bytes) > share.bytes_max
            {
                return Err(Rejection::OrganisationShareFull {
                    organisation: organisation.to_string(),
                    transactions,
                    bytes: held,
                    transactions_max: share.transactions_max,
                    bytes_max: share.bytes_max,
                });
            }
        }
        Ok(())
    }

    /// Inserts a verified candidate, re-checking the rules that earlier members of its
    /// batch may have changed.
    fn insert(
        &mut self,
        candidate: Candidate,
        source: Source,
        now_ms: u64,
    ) -> Result<Hash, Rejection> {
        let Candidate { hash, transaction, encoded, next_nonce, organisation, .. } = candidate;
        let sender = transaction.unsigned.sender;
        let nonce = transaction.unsigned.nonce;
        if let Some(queue) = self.senders.get(&sender)
            && nonce < queue.next_nonce
        {
            let next_nonce = queue.next_nonce;
            return Err(EnvelopeFault::StaleNonce { sender, nonce, next_nonce }.into());
        }
        self.check_room(&sender, nonce, encoded.len(), organisation.as_ref())?;

        let arrival = self.arrivals;
        self.arrivals += 1;
        self.bytes += encoded.len();
        if let Some(organisation) = &organisation {
            let share = self.shares.entry(Arc::clone(organisation)).or_default();
            share.0 += 1;
            share.1 += encoded.len();
        }
        let pooled = Arc::new(PooledTransaction { hash, transaction, encoded });
        let entry = Entry { pooled, arrival, admitted_ms: now_ms, durable: false, organisation };
        self.entries.insert(hash, entry);
        self.senders
            .entry(sender)
            .or_insert_with(|| SenderQueue {
                next_nonce,
                in_flight_next: next_nonce,
                by_nonce: BTreeMap::new(),
                head: None,
            })
            .by_nonce
            .insert(nonce, hash);
        self.refresh_head(&sender);
        if source == Source::Client {
            self.queue_gossip(hash, arrival);
        }
        Ok(hash)
    }

    fn queue_gossip(&mut self, hash: Hash, arrival: u64) {
        // Stale slots (transactions committed or evicted before they were gossiped) are
        // dropped when the queue reaches twice the pool's bound, so it stays bounded by
        // that and compaction costs O(1) per admission over time.
        if self.gossip.len() >= 2 * self.config.transactions_max {
            let entries = &self.entries;
            self.gossip.retain(|(hash, arrival)| {
                entries.get(hash).is_some_and(|entry| entry.arrival == *arrival)
            });
        }
        self.gossip.push_back((hash, arrival));
    }

    /// Removes an entry, keeping the byte count and remembering it if it was durable.
    /// (A function of the fields it touches, so callers may hold a sender's queue.)
    fn forget(
        entries: &mut HashMap<Hash, Entry>,
        bytes: &mut usize,
        shares: &mut Shares,
        forgotten_durable: &mut Vec<Hash>,
        hash: &Hash,
    ) {
        if let Some(entry) = entries.remove(hash) {
            *bytes = bytes.saturating_sub(entry.pooled.encoded.len());
            if let Some(organisation) = &entry.organisation
                && let Some(share) = shares.get_mut(organisation)
            {
                share.0 = share.0.saturating_sub(1);
                share.1 = share.1.saturating_sub(entry.pooled.encoded.len());
                if share.0 == 0 {
                    shares.remove(organisation);
                }
            }
            if entry.durable {
                forgotten_durable.push(*hash);
            }
        }
    }

    /// Re-derives `sender`'s ready head after its queue changed.
    fn refresh_head(&mut self, sender: &PublicKey) {
        let Some(queue) = self.senders.get_mut(sender) else {
            return;
        };
        if let Some(arrival) = queue.head.take() {
            self.ready.remove(&(arrival, *sender));
        }
        if queue.by_nonce.is_empty() {
            self.senders.remove(sender);
            return;
        }
        if let Some(entry) =
            queue.by_nonce.get(&queue.in_flight_next).and_then(|hash| self.entries.get(hash))
        {
            queue.head = Some(entry.arrival);
            self.ready.insert((entry.arrival, *sender));
        }
    }

    /// Learns that the ledger's next nonce for `sender` is `next_nonce`: every pending
    /// transaction of the sender below it is evicted (it was committed, or its nonce was
    /// used by another transaction), and waiting ones may become ready.
    /// `committed` names the transactions a block just committed, to count evictions by
    /// cause.
    fn advance_sender(
        &mut self,
        sender: PublicKey,
        next_nonce: u64,
        committed: Option<&HashSet<Hash>>,
    ) -> Vec<Hash> {
        let mut stale = Vec::new();
        let Some(queue) = self.senders.get_mut(&sender) else {
            return stale;
        };
        if next_nonce <= queue.next_nonce {
            return stale;
        }
        let kept = queue.by_nonce.split_off(&next_nonce);
        let removed = std::mem::replace(&mut queue.by_nonce, kept);
        for (nonce, hash) in removed {
            if nonce < queue.in_flight_next {
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            Self::forget(
                &mut self.entries,
                &mut self.bytes,
                &mut self.shares,
                &mut self.forgotten_durable,
                &hash,
            );
            if committed.is_some_and(|committed| committed.contains(&hash)) {
                self.counters.evicted_committed += 1;
            } else {
                self.counters.evicted_stale += 1;
                stale.push(hash);
            }
        }
        queue.next_nonce = next_nonce;
        queue.in_flight_next = queue.in_flight_next.max(next_nonce);
        self.refresh_head(&sender);
        stale
    }

    /// Takes up to `transactions_max` ready transactions totalling at most `bytes_max`
    /// encoded bytes, oldest ready head first, and marks them in flight so they are not
    /// handed out again until [`Mempool::release_in_flight`] or their commit.
    ///
    /// A sender's transactions come out in nonce order, each only after its predecessor
    /// is committed or in flight. A head too large for the remaining bytes is skipped for
    /// this batch without blocking smaller transactions of other senders.
    pub fn ready_batch(
        &mut self,
        transactions_max: usize,
        bytes_max: usize,
    ) -> Vec<Arc<PooledTransaction>> {
        let mut batch = Vec::new();
        let mut batch_bytes = 0usize;
        let mut skipped: Vec<(u64, PublicKey)> = Vec::new();
        while batch.len() < transactions_max {
            let Some((arrival, sender)) = self.ready.pop_first() else {
                break;
            };
            let Some(queue) = self.senders.get_mut(&sender) else {
                continue;
            };
            let Some(entry) =
                queue.by_nonce.get(&queue.in_flight_next).and_then(|hash| self.entries.get(hash))
            else {
                queue.head = None;
                continue;
            };
            let size = entry.pooled.encoded.len();
            if batch_bytes.saturating_add(size) > bytes_max {
                // Keep `head` set: the sender goes back into the ready queue below.
                skipped.push((arrival, sender));
                continue;
            }
            batch_bytes += size;
            batch.push(Arc::clone(&entry.pooled));
            queue.head = None;
            queue.in_flight_next = queue.in_flight_next.saturating_add(1);
            self.in_flight += 1;
            self.refresh_head(&sender);
        }
        self.ready.extend(skipped);
        batch
    }

    /// Makes every in-flight transaction ready again, for a new primary after a view
    /// change or a proposal that was abandoned.
    pub fn release_in_flight(&mut self) {
        let mut released = Vec::new();
        for (sender, queue) in &mut self.senders {
            if queue.in_flight_next > queue.next_nonce {
                queue.in_flight_next = queue.next_nonce;
                released.push(*sender);
            }
        }
        self.in_flight = 0;
        for sender in released {
            self.refresh_head(&sender);
        }
    }

    /// Evicts the transactions of a committed block, given as (hash, sender) pairs, and
    /// every other pending transaction whose nonce the commit used up; a sender's waiting
    /// transactions that now follow on become ready. `nonces` is the ledger's state after
    /// the block. Returns the hashes of the pending transactions it evicted as stale
    /// (another transaction used their nonce): they will never be ordered.
    pub fn committed<I, N>(&mut self, transactions: I, nonces: &N) -> Vec<Hash>
    where
        I: IntoIterator<Item = (Hash, PublicKey)>,
        N: NonceState + ?Sized,
    {
        let transactions: Vec<(Hash, PublicKey)> = transactions.into_iter().collect();
        let committed: HashSet<Hash> = transactions.iter().map(|(hash, _)| *hash).collect();
        let mut stale = Vec::new();
        for (hash, sender) in transactions {
            let mut next_nonce = nonces.next_nonce(&sender);
            if let Some(entry) = self.entries.get(&hash) {
                let unsigned = &entry.pooled.transaction.unsigned;
                if unsigned.sender == sender {
                    next_nonce = next_nonce.max(unsigned.nonce.saturating_add(1));
                }
            }
            stale.extend(self.advance_sender(sender, next_nonce, Some(&committed)));
        }
        stale
    }

    /// Evicts every pending transaction whose signer the registry no longer reports as
    /// enrolled (after a revocation or removal commits). Returns how many were evicted.
    pub fn evict_unenrolled<R: SignerRegistry + ?Sized>(&mut self, registry: &R) -> usize {
        let gone: Vec<PublicKey> = self
            .senders
            .keys()
            .filter(|sender| registry.signer_fault(sender).is_some())
            .copied()
            .collect();
        let mut evicted = 0;
        for sender in gone {
            let Some(queue) = self.senders.remove(&sender) else {
                continue;
            };
            if let Some(arrival) = queue.head {
                self.ready.remove(&(arrival, sender));
            }
            for (nonce, hash) in queue.by_nonce {
                if nonce < queue.in_flight_next {
                    self.in_flight = self.in_flight.saturating_sub(1);
                }
                Self::forget(
                    &mut self.entries,
                    &mut self.bytes,
                    &mut self.shares,
                    &mut self.forgotten_durable,
                    &hash,
                );
                evicted += 1;
            }
        }
        self.counters.evicted_signer += evicted as u64;
        evicted
    }

    /// Takes up to `max` transactions that clients gave this node and that are still
    /// pending, oldest first, for the runtime to gossip to the other validators. Each is
    /// handed out once.
    pub fn take_gossip(&mut self, max: usize) -> Vec<Arc<PooledTransaction>> {
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some((hash, arrival)) = self.gossip.pop_front() else {
                break;
            };
            if let Some(entry) = self.entries.get(&hash)
                && entry.arrival == arrival
            {
                taken.push(Arc::clone(&entry.pooled));
            }
        }
        taken
    }

    /// Records that the runtime's durable log now holds these transactions, so that their
    /// removal, whatever its cause, is reported by [`Mempool::take_forgotten_durable`].
    /// Returns the hashes it does not hold (settled meanwhile): the log need not keep them.
    pub fn mark_durable(&mut self, hashes: &[Hash]) -> Vec<Hash> {
        let mut unheld = Vec::new();
        for hash in hashes {
            match self.entries.get_mut(hash) {
                Some(entry) => entry.durable = true,
                None => unheld.push(*hash),
            }
        }
        unheld
    }

    /// The durable transactions removed (committed, stale, expired or unenrolled) since
    /// the last call: the runtime deletes them from its log. Each is reported once.
    pub fn take_forgotten_durable(&mut self) -> Vec<Hash> {
        std::mem::take(&mut self.forgotten_durable)
    }

    /// Drops every transaction that has waited at least `wait_ms` behind a missing nonce
    /// of its sender (admitted at or before `now_ms - wait_ms`), so that no sender's
    /// transactions wait forever for a predecessor that never comes. Ready and in-flight
    /// transactions never expire. Returns what it dropped.
    pub fn expire_waiting(&mut self, now_ms: u64, wait_ms: u64) -> Vec<Expired> {
        let mut expired = Vec::new();
        let mut emptied = Vec::new();
        for (sender, queue) in &mut self.senders {
            let Some(missing_nonce) = first_missing(queue) else { continue };
            let waiting: Vec<(u64, Hash)> = queue
                .by_nonce
                .range(missing_nonce..)
                .map(|(nonce, hash)| (*nonce, *hash))
                .collect();
            for (nonce, hash) in waiting {
                let Some(entry) = self.entries.get(&hash) else { continue };
                let waited_ms = now_ms.saturating_sub(entry.admitted_ms);
                if waited_ms < wait_ms {
                    continue;
                }
                queue.by_nonce.remove(&nonce);
                Self::forget(
                    &mut self.entries,
                    &mut self.bytes,
                    &mut self.shares,
                    &mut self.forgotten_durable,
                    &hash,
                );
                expired.push(Expired { hash, sender: *sender, nonce, missing_nonce, waited_ms });
            }
            if queue.by_nonce.is_empty() {
                emptied.push(*sender);
            }
        }
        // A waiting transaction is never a head, so only emptied queues need tidying.
        for sender in emptied {
            self.refresh_head(&sender);
        }
        self.counters.expired += expired.len() as u64;
        expired
    }

    /// What the mempool holds of `sender`'s transactions, if anything.
    pub fn sender_pending(&self, sender: &PublicKey) -> Option<SenderPending> {
        let queue = self.senders.get(sender)?;
        let missing_nonce = first_missing(queue);
        let waiting: Vec<u64> = match missing_nonce {
            Some(missing) => queue.by_nonce.range(missing..).map(|(nonce, _)| *nonce).collect(),
            None => Vec::new(),
        };
        let oldest_waiting_admitted_ms = match missing_nonce {
            Some(missing) => queue
                .by_nonce
                .range(missing..)
                .filter_map(|(_, hash)| self.entries.get(hash))
                .map(|entry| entry.admitted_ms)
                .min(),
            None => None,
        };
        Some(SenderPending {
            next_nonce: queue.next_nonce,
            pending: queue.by_nonce.keys().copied().collect(),
            missing_nonce,
            waiting,
            oldest_waiting_admitted_ms,
        })
    }

    pub fn get(&self, hash: &Hash) -> Option<Arc<PooledTransaction>> {
        self.entries.get(hash).map(|entry| Arc::clone(&entry.pooled))
    }

    /// The hashes of every transaction held, in no particular order.
    pub fn hashes(&self) -> impl Iterator<Item = &Hash> + '_ {
        self.entries.keys()
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn status(&self) -> MempoolStatus {
        MempoolStatus {
            transactions: self.entries.len(),
            bytes: self.bytes,
            senders: self.senders.len(),
            in_flight: self.in_flight,
            gossip_queued: self.gossip.len(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Checks every internal invariant, describing the first one broken. Tests call it
    /// after each operation; it walks the whole pool, so the runtime should not.
    pub fn check_invariants(&self) -> Result<(), String> {
        let config = &self.config;
        if self.entries.len() > config.transactions_max {
            return Err(format!(
                "{} transactions over {}",
                self.entries.len(),
                config.transactions_max
            ));
        }
        if self.bytes > config.bytes_max {
            return Err(format!("{} bytes over {}", self.bytes, config.bytes_max));
        }
        let bytes: usize = self.entries.values().map(|entry| entry.pooled.encoded.len()).sum();
        if bytes != self.bytes {
            return Err(format!("byte count {} but entries hold {bytes}", self.bytes));
        }
        let mut shares: Shares = HashMap::new();
        for entry in self.entries.values() {
            if let Some(organisation) = &entry.organisation {
                let share = shares.entry(Arc::clone(organisation)).or_default();
                share.0 += 1;
                share.1 += entry.pooled.encoded.len();
            }
        }
        if shares != self.shares {
            return Err(format!(
                "organisation shares {:?} but entries hold {shares:?}",
                self.shares
            ));
        }
        if let Some(share) = &config.organisation_share {
            for (organisation, (transactions, bytes)) in &shares {
                if *transactions > share.transactions_max || *bytes > share.bytes_max {
                    return Err(format!(
                        "{organisation} holds {transactions} transactions, {bytes} bytes, over its share {share:?}"
                    ));
                }
            }
        }
        let mut queued = 0;
        let mut in_flight = 0;
        let mut heads = 0;
        for (sender, queue) in &self.senders {
            if queue.by_nonce.is_empty() {
                return Err(format!("sender {sender} has an empty queue"));
            }
            if queue.by_nonce.len() > config.sender_transactions_max {
                return Err(format!("sender {sender} holds {} transactions", queue.by_nonce.len()));
            }
            if queue.in_flight_next < queue.next_nonce {
                return Err(format!("sender {sender} in flight below its next nonce"));
            }
            for nonce in queue.next_nonce..queue.in_flight_next {
                if !queue.by_nonce.contains_key(&nonce) {
                    return Err(format!("sender {sender} has a gap at in-flight nonce {nonce}"));
                }
            }
            for (nonce, hash) in &queue.by_nonce {
                if *nonce < queue.next_nonce {
                    return Err(format!("sender {sender} holds stale nonce {nonce}"));
                }
                let Some(entry) = self.entries.get(hash) else {
                    return Err(format!("sender {sender} nonce {nonce} has no entry"));
                };
                if entry.pooled.sender() != sender || entry.pooled.nonce() != *nonce {
                    return Err(format!("entry {hash} is filed under the wrong sender or nonce"));
                }
            }
            queued += queue.by_nonce.len();
            in_flight += (queue.in_flight_next - queue.next_nonce) as usize;
            let expected_head = queue
                .by_nonce
                .get(&queue.in_flight_next)
                .and_then(|hash| self.entries.get(hash))
                .map(|entry| entry.arrival);
            if queue.head != expected_head {
                return Err(format!(
                    "sender {sender} head {:?}, expected {expected_head:?}",
                    queue.head
                ));
            }
            if let Some(arrival) = queue.head {
                heads += 1;
                if !self.ready.contains(&(arrival, *sender)) {
                    return Err(format!("sender {sender} head missing from the ready queue"));
                }
            }
        }
        if queued != self.entries.len() {
            return Err(format!("{queued} queued but {} entries", self.entries.len()));
        }
        if in_flight != self.in_flight {
            return Err(format!("in-flight count {} but queues say {in_flight}", self.in_flight));
        }
        if heads != self.ready.len() {
            return Err(format!("{heads} heads but {} ready entries", self.ready.len()));
        }
        if self.gossip.len() > 2 * config.transactions_max {
            return Err(format!("gossip queue holds {}", self.gossip.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use pactum_types::{ChainId, Encode, Keypair, Payload, UnsignedTransaction};

    use super::*;

    #[test]
    fn signed_bytes_are_the_encoding_without_its_signature() {
        let keypair = Keypair::from_seed(&[3; 32]);
        let transaction = UnsignedTransaction {
            chain_id: ChainId::new("test").unwrap(),
            sender: keypair.public_key(),
            nonce: 9,
            gas_limit: 10,
            payload: Payload::EnrolIdentity { certificate_der: vec![1, 2, 3] },
        }
        .sign(&keypair);
        let encoded = transaction.to_bytes();
        let prefix = [domain::TRANSACTION, &encoded[..encoded.len() - SIGNATURE_BYTES]].concat();
        assert_eq!(prefix, transaction.signing_message());
    }
}
