//! The admission stage: client and peer transactions into the mempool, the durable mempool
//! log behind every `202 Accepted`, gossip, the expiry of transactions stuck behind a
//! missing nonce, and ready transactions handed to consensus.
//!
//! What a client's `202` promises (`docs/adr/0014-what-accepted-promises.md`): the
//! transaction is in this node's mempool log, synced to disk, before the answer leaves.
//! A log-writer thread makes the accepted transactions of every admission batch queued
//! behind its previous write durable in one synced write (group commit), then answers
//! their clients, while admission goes on verifying the next batches. After a crash the node
//! re-admits everything in its log before it takes new submissions, and gossips it again.
//! A transaction leaves the log when it leaves the mempool: committed, made stale by
//! another transaction with its nonce, expired behind a gap, or its signer unenrolled.

use pactum_storage::StoreRead;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use pactum_mempool::{Admitted, Expired, Mempool, PooledTransaction, Rejection, Source};
use pactum_types::hash::sha3_256;
use pactum_types::{Encode, EnvelopeFault, Hash, limits};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::{ByzantineMode, LedgerView, LocalEvent, Shared, Submission, SubmitError};
use crate::clock::{Stopwatch, unix_millis};
use crate::wire::Wire;

/// How often admission hands waiting ready transactions to consensus when idle.
const ADMISSION_TICK: Duration = Duration::from_millis(20);
/// How often admission looks for transactions that waited too long behind a gap.
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);
/// Admission batches the log writer makes durable in one synced write, at most.
const MEMPOOL_LOG_GROUP_MAX: usize = 64;
/// How often an idle log writer deletes settled transactions from the log.
const LOG_DELETE_INTERVAL: Duration = Duration::from_millis(100);

/// What a node did with a transaction a client gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// It is pending: in the mempool and in the durable mempool log.
    Pending(Hash),
    /// The very same transaction is already committed, here.
    Committed { hash: Hash, height: u64, position: u32 },
}

impl Accepted {
    pub fn hash(&self) -> Hash {
        match self {
            Accepted::Pending(hash) | Accepted::Committed { hash, .. } => *hash,
        }
    }
}

/// Transactions this node dropped after they waited too long behind a missing nonce,
/// remembered (bounded, oldest forgotten first) so `GET /v1/transactions/{hash}` can say
/// so instead of "unknown".
#[derive(Debug, Default)]
pub(super) struct ExpiredTransactions {
    by_hash: HashMap<Hash, Expired>,
    order: VecDeque<Hash>,
}

impl ExpiredTransactions {
    fn insert(&mut self, expired: Expired) {
        let hash = expired.hash;
        if self.by_hash.insert(hash, expired).is_none() {
            self.order.push_back(hash);
        }
        while self.order.len() > limits::EXPIRED_TRANSACTIONS_REMEMBERED_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.by_hash.remove(&oldest);
            }
        }
    }

    pub(super) fn get(&self, hash: &Hash) -> Option<&Expired> {
        self.by_hash.get(hash)
    }
}

pub(super) fn run_admission(
    shared: &Arc<Shared>,
    submissions: &Receiver<Submission>,
    log_writer: &SyncSender<Promise>,
) {
    recover(shared);
    let mut since_sweep = Stopwatch::start();
    while !shared.stopping.load(Ordering::Relaxed) {
        if since_sweep.elapsed() >= EXPIRY_SWEEP {
            expire(shared);
            since_sweep = Stopwatch::start();
        }
        let first = match submissions.recv_timeout(ADMISSION_TICK) {
            Ok(submission) => submission,
            Err(RecvTimeoutError::Timeout) => {
                // Idle: hand on transactions that became ready since.
                feed_consensus(shared);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < limits::ADMISSION_BATCH_TRANSACTIONS_MAX {
            match submissions.try_recv() {
                Ok(submission) => batch.push(submission),
                Err(_) => break,
            }
        }
        admit(shared, batch, log_writer);
        feed_consensus(shared);
        gossip(shared);
    }
}

/// Writes to the mempool log: `put` synced (when there is any), `delete` along with it.
fn write_log(
    shared: &Shared,
    put: &[Arc<PooledTransaction>],
    delete: &[Hash],
) -> Result<(), pactum_storage::StorageError> {
    if put.is_empty() && delete.is_empty() {
        return Ok(());
    }
    let entries: Vec<(Hash, &[u8])> =
        put.iter().map(|pooled| (pooled.hash(), pooled.encoded())).collect();
    let sync = !put.is_empty();
    let watch = Stopwatch::start();
    let outcome = shared.mempool_log.write(&entries, delete, sync);
    if sync && outcome.is_ok() {
        shared.metrics.mempool_log_syncs.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(watch.elapsed().as_micros()).unwrap_or(u64::MAX);
        shared.metrics.mempool_log_sync_micros.fetch_add(micros, Ordering::Relaxed);
    }
    outcome
}

/// Queues, for the log writer to delete, the durable transactions the mempool let go of.
/// No other thread waits on the log: a write queues behind the writer's sync.
pub(super) fn forget_durable(shared: &Shared, mempool: &mut Mempool) {
    let forgotten = mempool.take_forgotten_durable();
    if !forgotten.is_empty() {
        shared.log_deletes.lock().expect("log lock is never poisoned").extend(forgotten);
    }
}

/// Re-admits every transaction of the mempool log (what clients gave this node before it
/// stopped), as if the clients sent them again: they are gossiped again, and those the
/// ledger has since settled are dropped from the log.
fn recover(shared: &Arc<Shared>) {
    let entries = match shared.mempool_log.entries() {
        Ok(entries) => entries,
        Err(error) => {
            error!(%error, "cannot read the mempool log; transactions accepted before the restart wait in it");
            return;
        }
    };
    if entries.is_empty() {
        return;
    }
    let (mut recovered, mut dropped) = (0usize, 0usize);
    for chunk in entries.chunks(limits::ADMISSION_BATCH_TRANSACTIONS_MAX) {
        let items: Vec<Vec<u8>> = chunk.iter().map(|(_, bytes)| bytes.clone()).collect();
        let mut durable = Vec::new();
        let mut settled = Vec::new();
        let mut refiled: Vec<Arc<PooledTransaction>> = Vec::new();
        {
            let mut mempool = shared.mempool.lock().expect("mempool lock is never poisoned");
            let ledger = shared.reader.snapshot();
            let view = LedgerView { ledger: &ledger, trust: &shared.trust };
            let outcomes = mempool.admit(items, Source::Client, &view, &view, unix_millis());
            for ((key, _), outcome) in chunk.iter().zip(outcomes) {
                match outcome {
                    Ok(admitted) => {
                        if admitted.hash() != *key {
                            // Filed under another key than its hash: file it again.
                            warn!(key = %key, hash = %admitted.hash(), "a mempool log entry was filed under a wrong key");
                            settled.push(*key);
                            refiled.extend(mempool.get(&admitted.hash()));
                        }
                        durable.push(admitted.hash());
                    }
                    Err(_) => settled.push(*key),
                }
            }
            let unheld = mempool.mark_durable(&durable);
            settled.extend(unheld);
            forget_durable(shared, &mut mempool);
        }
        if let Err(error) = write_log(shared, &refiled, &settled) {
            warn!(%error, "could not tidy the mempool log after recovery");
        }
        recovered += durable.len();
        dropped += settled.len();
    }
    shared.metrics.mempool_recovered.fetch_add(recovered as u64, Ordering::Relaxed);
    info!(
        recovered,
        settled = dropped,
        "re-admitted the transactions clients gave this validator before it stopped"
    );
}

/// Client transactions one admission batch accepted, on their way to the mempool log:
/// their clients hear "accepted" only once the log writer has synced them.
pub(super) struct Promise {
    transactions: Vec<Arc<PooledTransaction>>,
    replies: Vec<(oneshot::Sender<Result<Accepted, SubmitError>>, Accepted)>,
}

/// Admits one batch (one batch signature verification per source) and answers each
/// submission: refusals at once, acceptances of client transactions once the log writer
/// has made them durable. Empty submissions only wake the stage.
pub(super) fn admit(
    shared: &Arc<Shared>,
    batch: Vec<Submission>,
    log_writer: &SyncSender<Promise>,
) {
    let (clients, peers): (Vec<Submission>, Vec<Submission>) = batch
        .into_iter()
        .filter(|submission| !submission.bytes.is_empty())
        .partition(|submission| submission.source == Source::Client);
    for (source, group) in [(Source::Client, clients), (Source::Peer, peers)] {
        if group.is_empty() {
            continue;
        }
        let hashes: Vec<Hash> = if source == Source::Client {
            group.iter().map(|submission| sha3_256(&submission.bytes)).collect()
        } else {
            Vec::new()
        };
        let (items, replies): (Vec<Vec<u8>>, Vec<_>) =
            group.into_iter().map(|submission| (submission.bytes, submission.reply)).unzip();
        let (outcomes, promised) = {
            let mut mempool = shared.mempool.lock().expect("mempool lock is never poisoned");
            let ledger = shared.reader.snapshot();
            let view = LedgerView { ledger: &ledger, trust: &shared.trust };
            let outcomes = mempool.admit(items, source, &view, &view, unix_millis());
            // Every client transaction answered "accepted" is logged, including one a peer
            // gossiped here first: this node is now the one that promised it.
            let promised: Vec<Arc<PooledTransaction>> = if source == Source::Client {
                outcomes
                    .iter()
                    .filter_map(|outcome| outcome.as_ref().ok())
                    .filter_map(|admitted| mempool.get(&admitted.hash()))
                    .collect()
            } else {
                Vec::new()
            };
            forget_durable(shared, &mut mempool);
            (outcomes, promised)
        };
        let mut promise = Promise { transactions: promised, replies: Vec::new() };
        for (index, (outcome, reply)) in outcomes.into_iter().zip(replies).enumerate() {
            let answer = match outcome {
                Ok(admitted) => {
                    shared.metrics.admissions.fetch_add(1, Ordering::Relaxed);
                    shared.verified.insert(admitted.hash());
                    if source == Source::Client {
                        if let Admitted::Added(hash) = admitted {
                            shared
                                .admitted_at
                                .lock()
                                .expect("latency lock is never poisoned")
                                .insert(hash);
                        }
                        if let Some(reply) = reply {
                            promise.replies.push((reply, Accepted::Pending(admitted.hash())));
                        }
                        continue;
                    }
                    Ok(Accepted::Pending(admitted.hash()))
                }
                Err(rejection) => {
                    let committed = match (&rejection, hashes.get(index)) {
                        (Rejection::Envelope(EnvelopeFault::StaleNonce { .. }), Some(hash)) => {
                            committed_at(shared, hash)
                        }
                        _ => None,
                    };
                    match committed {
                        Some(accepted) => {
                            shared.metrics.resubmitted_committed.fetch_add(1, Ordering::Relaxed);
                            Ok(accepted)
                        }
                        None => {
                            shared.metrics.record_rejection(rejection.code());
                            Err(SubmitError::Rejected(rejection))
                        }
                    }
                }
            };
            if let Some(reply) = reply {
                let _ = reply.send(answer);
            }
        }
        if !promise.transactions.is_empty() || !promise.replies.is_empty() {
            // Blocks while the writer is this far behind: the disk sets the pace.
            if let Err(std::sync::mpsc::SendError(promise)) = log_writer.send(promise) {
                for (reply, _) in promise.replies {
                    let _ = reply.send(Err(SubmitError::ShuttingDown));
                }
            }
        }
    }
}

/// The mempool log writer: makes accepted client transactions durable, many admission
/// batches per synced write (group commit), then tells their clients. Ends when the
/// admission stage drops its sender.
pub(super) fn run_log_writer(shared: &Arc<Shared>, promises: &Receiver<Promise>) {
    loop {
        let mut group = Vec::new();
        match promises.recv_timeout(LOG_DELETE_INTERVAL) {
            Ok(first) => group.push(first),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                delete_settled(shared);
                return;
            }
        }
        while group.len() < MEMPOOL_LOG_GROUP_MAX {
            match promises.try_recv() {
                Ok(promise) => group.push(promise),
                Err(_) => break,
            }
        }
        if group.is_empty() {
            delete_settled(shared);
            continue;
        }
        let transactions: Vec<Arc<PooledTransaction>> =
            group.iter().flat_map(|promise| promise.transactions.iter().cloned()).collect();
        let deletes =
            std::mem::take(&mut *shared.log_deletes.lock().expect("log lock is never poisoned"));
        let outcome = match write_log(shared, &transactions, &deletes) {
            Ok(()) => {
                let hashes: Vec<Hash> = transactions.iter().map(|pooled| pooled.hash()).collect();
                // Committed or evicted while the write was under way: not needed in the log.
                let settled = shared
                    .mempool
                    .lock()
                    .expect("mempool lock is never poisoned")
                    .mark_durable(&hashes);
                shared.log_deletes.lock().expect("log lock is never poisoned").extend(settled);
                Ok(())
            }
            Err(error) => {
                error!(%error, "the mempool log refused a write; client transactions are not accepted");
                shared.metrics.mempool_log_failures.fetch_add(1, Ordering::Relaxed);
                Err(SubmitError::NotDurable(error.to_string()))
            }
        };
        for (reply, accepted) in group.into_iter().flat_map(|promise| promise.replies) {
            let _ = reply.send(outcome.clone().map(|()| accepted));
        }
    }
}

/// Deletes what the mempool let go of from the log (unsynced: an entry a crash brings
/// back is found settled at the next start and dropped then).
fn delete_settled(shared: &Shared) {
    let deletes =
        std::mem::take(&mut *shared.log_deletes.lock().expect("log lock is never poisoned"));
    if let Err(error) = write_log(shared, &[], &deletes) {
        warn!(%error, "could not delete settled transactions from the mempool log");
    }
}

/// Where `hash` was committed, if this node has executed it: a client resending a
/// committed transaction is told so, not refused.
fn committed_at(shared: &Shared, hash: &Hash) -> Option<Accepted> {
    match shared.reader.store().transaction_location(hash) {
        Ok(Some(location)) => Some(Accepted::Committed {
            hash: *hash,
            height: location.height,
            position: location.position,
        }),
        _ => None,
    }
}

/// Drops transactions that waited longer than the limit behind a missing nonce, and
/// remembers them for `GET /v1/transactions/{hash}`.
fn expire(shared: &Arc<Shared>) {
    // While execution is behind consensus, this node's nonces lag the ledger's: a gap it
    // sees may already be filled. It waits until it has caught up.
    let last_delivered =
        shared.status.lock().expect("status lock is never poisoned").last_delivered;
    if shared.metrics.height.load(Ordering::Relaxed) < last_delivered {
        return;
    }
    let expired = {
        let mut mempool = shared.mempool.lock().expect("mempool lock is never poisoned");
        let expired = mempool.expire_waiting(unix_millis(), shared.gap_wait_ms);
        forget_durable(shared, &mut mempool);
        expired
    };
    if expired.is_empty() {
        return;
    }
    shared.metrics.transactions_expired.fetch_add(expired.len() as u64, Ordering::Relaxed);
    let mut remembered = shared.expired.lock().expect("expired lock is never poisoned");
    for gone in expired {
        info!(
            hash = %gone.hash, sender = %gone.sender, nonce = gone.nonce,
            missing_nonce = gone.missing_nonce,
            "dropped a transaction that waited too long behind a missing nonce"
        );
        remembered.insert(gone);
    }
}

/// Hands the mempool's ready transactions (nonce order per sender) to the replica.
fn feed_consensus(shared: &Arc<Shared>) {
    let parameters = &shared.consortium().parameters;
    let ready = {
        let mut mempool = shared.mempool.lock().expect("mempool lock is never poisoned");
        mempool.ready_batch(
            parameters.batch_transactions_max.max(1) * 4,
            parameters.batch_bytes_max.max(1) * 4,
        )
    };
    let mut requests: Vec<Vec<u8>> = ready.iter().map(|pooled| pooled.encoded().to_vec()).collect();
    if shared.byzantine_for_tests == Some(ByzantineMode::IncludeUnenrolled) {
        requests.extend(unenrolled_request(shared));
    }
    if requests.is_empty() {
        return;
    }
    if shared.consensus.blocking_send(LocalEvent::Requests(requests)).is_err() {
        warn!("the consensus stage has stopped; ready transactions stay pooled");
    }
}

/// Test-only ([`ByzantineMode::IncludeUnenrolled`]): while this node is primary, about once
/// a second, a validly signed transaction from a fresh key the ledger never enrolled,
/// handed straight to the replica past the mempool's rules.
fn unenrolled_request(shared: &Shared) -> Option<Vec<u8>> {
    static LAST_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let view = shared.status.lock().expect("status lock is never poisoned").view;
    let epoch = shared.genesis.epoch_config(&shared.consortium(), Hash::ZERO);
    if Some(epoch.primary(pactum_consensus::View(view))) != shared.own_replica() {
        return None;
    }
    let now = unix_millis();
    if now.saturating_sub(LAST_MS.load(Ordering::Relaxed)) < 1_000 {
        return None;
    }
    LAST_MS.store(now, Ordering::Relaxed);
    let stranger = pactum_types::crypto::Keypair::generate().ok()?;
    let unsigned = pactum_types::UnsignedTransaction {
        chain_id: shared.genesis.file.chain_id.clone(),
        sender: stranger.public_key(),
        nonce: 0,
        gas_limit: 1_000_000,
        payload: pactum_types::Payload::CallContract {
            contract: pactum_types::Address([0x42; 32]),
            method: "anything".into(),
            input: Vec::new(),
        },
    };
    Some(unsigned.sign(&stranger).to_bytes())
}

/// Encoded transactions cut into gossip frames within the frame limits.
pub(super) fn gossip_frames(transactions: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut frame: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    for transaction in transactions {
        let size = transaction.len() + 4;
        if !frame.is_empty()
            && (bytes + size > limits::GOSSIP_FRAME_BYTES_MAX
                || frame.len() >= limits::GOSSIP_TRANSACTIONS_PER_FRAME_MAX)
        {
            frames.push(Wire::Transactions(std::mem::take(&mut frame)).to_bytes());
            bytes = 0;
        }
        bytes += size;
        frame.push(transaction);
    }
    if !frame.is_empty() {
        frames.push(Wire::Transactions(frame).to_bytes());
    }
    frames
}

/// Sends the transactions clients gave this node to every other validator.
fn gossip(shared: &Arc<Shared>) {
    loop {
        let pooled = {
            let mut mempool = shared.mempool.lock().expect("mempool lock is never poisoned");
            mempool.take_gossip(limits::GOSSIP_TRANSACTIONS_PER_FRAME_MAX)
        };
        if pooled.is_empty() {
            return;
        }
        let transactions: Vec<Vec<u8>> =
            pooled.iter().map(|transaction| transaction.encoded().to_vec()).collect();
        for frame in gossip_frames(transactions) {
            for peer in shared.peer_keys() {
                if shared.transport.send(&peer, frame.clone()).is_err() {
                    shared.metrics.gossip_frames_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
