//! Random sequences of admissions, proposals, releases and commits from several senders,
//! checked against the mempool's promises after every step.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::*;
use pactum_mempool::{
    Admitted, Mempool, MempoolConfig, NonceState, PooledTransaction, RejectionCode, Source,
};
use pactum_types::{Encode, Hash, PublicKey};
use proptest::prelude::*;

const SENDERS: u8 = 4;

#[derive(Debug, Clone)]
enum Operation {
    /// A batch of transactions: (sender, nonce past the ledger's next, payload variant,
    /// corrupt the signature).
    Admit {
        items: Vec<(u8, u64, u8, bool)>,
        from_peer: bool,
    },
    /// The primary asks for a batch.
    Ready {
        transactions_max: usize,
        bytes_in_transactions: usize,
    },
    /// A view change: everything in flight goes back.
    Release,
    /// The ledger commits the oldest `count` proposed transactions.
    Commit {
        count: usize,
    },
    /// Another validator's block used a sender's next nonce for a transaction this
    /// mempool never saw.
    CommitElsewhere {
        sender: u8,
    },
    Gossip {
        max: usize,
    },
    /// Time passes (milliseconds).
    Tick {
        ms: u64,
    },
    /// Transactions waiting behind a gap for at least `wait_ms` are dropped.
    Expire {
        wait_ms: u64,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => (
            prop::collection::vec((0..SENDERS, 0u64..8, 0u8..2, prop::bool::weighted(0.1)), 1..6),
            any::<bool>(),
        )
            .prop_map(|(items, from_peer)| Operation::Admit { items, from_peer }),
        2 => (0usize..6, 1usize..6).prop_map(|(transactions_max, bytes_in_transactions)| {
            Operation::Ready { transactions_max, bytes_in_transactions }
        }),
        1 => Just(Operation::Release),
        2 => (0usize..6).prop_map(|count| Operation::Commit { count }),
        1 => (0..SENDERS).prop_map(|sender| Operation::CommitElsewhere { sender }),
        1 => (0usize..4).prop_map(|max| Operation::Gossip { max }),
        1 => (1u64..500).prop_map(|ms| Operation::Tick { ms }),
        1 => (0u64..800).prop_map(|wait_ms| Operation::Expire { wait_ms }),
    ]
}

/// What the test knows independently of the mempool.
struct Model {
    ledger: Ledger,
    /// Handed out by `ready_batch` and neither committed nor released, in handout order.
    proposed: Vec<Arc<PooledTransaction>>,
    committed: HashSet<Hash>,
    /// New admissions seen in answers, to check the metrics counter.
    added: u64,
    gossiped: HashSet<Hash>,
    from_clients: HashSet<Hash>,
    now_ms: u64,
    /// Client transactions marked durable and not yet reported forgotten.
    durable: HashSet<Hash>,
}

fn check(pool: &Mempool, model: &Model, config: &MempoolConfig) -> Result<(), TestCaseError> {
    pool.check_invariants().map_err(TestCaseError::fail)?;
    prop_assert!(pool.len() <= config.transactions_max);
    prop_assert!(pool.bytes() <= config.bytes_max);
    for hash in &model.committed {
        prop_assert!(!pool.contains(hash), "committed transaction {hash} is back");
    }
    prop_assert_eq!(pool.status().in_flight, model.proposed.len());
    prop_assert_eq!(pool.counters().admitted, model.added);
    for pooled in &model.proposed {
        prop_assert!(pool.contains(&pooled.hash()), "proposed transaction lost");
    }
    Ok(())
}

/// `count_binds` picks which global cap the sequence runs into first: the transaction
/// count, or the bytes.
fn run(operations: Vec<Operation>, count_binds: bool) -> Result<(), TestCaseError> {
    let (transactions_max, bytes_max) =
        if count_binds { (8, 64 * transaction_bytes()) } else { (64, 9 * transaction_bytes()) };
    let config = MempoolConfig {
        transactions_max,
        bytes_max,
        sender_transactions_max: 5,
        nonces_ahead_max: 6,
        // Two member organisations, each with two thirds of the pool.
        organisation_share: Some(pactum_mempool::OrganisationShare {
            transactions_max: transactions_max * 2 / 3,
            bytes_max: bytes_max * 2 / 3,
        }),
        ..MempoolConfig::new(chain_id())
    };
    let mut pool = Mempool::new(config.clone()).unwrap();
    let mut ledger = Ledger::with_enrolled(SENDERS);
    for index in 0..SENDERS {
        ledger.set_organisation(&key(index), if index % 2 == 0 { "Member A" } else { "Member B" });
    }
    let mut model = Model {
        ledger,
        proposed: Vec::new(),
        committed: HashSet::new(),
        added: 0,
        gossiped: HashSet::new(),
        from_clients: HashSet::new(),
        now_ms: 0,
        durable: HashSet::new(),
    };
    let keys: Vec<_> = (0..SENDERS).map(key).collect();

    for operation in operations {
        match operation {
            Operation::Admit { items, from_peer } => {
                let mut bytes = Vec::new();
                let mut corrupt = Vec::new();
                for &(sender, ahead, variant, corrupted) in &items {
                    let keypair = &keys[usize::from(sender)];
                    let nonce = model.ledger.next_nonce(&keypair.public_key()) + ahead;
                    let mut transaction = unsigned(keypair, nonce, variant).sign(keypair);
                    if corrupted {
                        transaction.signature.0[63] ^= 0x40;
                    }
                    bytes.push(transaction.to_bytes());
                    corrupt.push(corrupted);
                }
                let before = pool.len();
                let source = if from_peer { Source::Peer } else { Source::Client };
                let answers = pool.admit(bytes, source, &model.ledger, &model.ledger, model.now_ms);
                prop_assert_eq!(answers.len(), items.len());
                let mut added = 0;
                for (answer, corrupted) in answers.iter().zip(corrupt) {
                    match answer {
                        Ok(Admitted::Added(hash)) => {
                            prop_assert!(!corrupted, "a corrupted signature was admitted");
                            prop_assert!(!model.committed.contains(hash));
                            prop_assert!(pool.contains(hash));
                            if !from_peer {
                                model.from_clients.insert(*hash);
                            }
                            added += 1;
                            model.added += 1;
                        }
                        Ok(Admitted::AlreadyPending(hash)) => {
                            prop_assert!(pool.contains(hash));
                        }
                        Err(rejection) => {
                            // A valid signature is never blamed; a corrupted one may
                            // first break a cheaper rule.
                            if rejection.code() == RejectionCode::BadSignature {
                                prop_assert!(corrupted, "a valid signature was refused");
                            }
                        }
                    }
                }
                // Admission never drops anything except what the ledger made stale, and
                // the model's ledger did not move here.
                prop_assert_eq!(pool.len(), before + added);
                // The runtime logs what clients gave it, as it would.
                if !from_peer {
                    let accepted: Vec<Hash> = answers
                        .iter()
                        .filter_map(|answer| answer.as_ref().ok())
                        .map(Admitted::hash)
                        .collect();
                    prop_assert!(pool.mark_durable(&accepted).is_empty());
                    model.durable.extend(accepted);
                }
            }
            Operation::Ready { transactions_max, bytes_in_transactions } => {
                let bytes_max = bytes_in_transactions * transaction_bytes();
                let batch = pool.ready_batch(transactions_max, bytes_max);
                prop_assert!(batch.len() <= transactions_max);
                let total: usize = batch.iter().map(|pooled| pooled.encoded().len()).sum();
                prop_assert!(total <= bytes_max);
                // Each sender's next proposable nonce: after its last proposed one, or
                // the ledger's next if none is in flight.
                let mut expected: HashMap<PublicKey, u64> = HashMap::new();
                for pooled in &model.proposed {
                    expected.insert(*pooled.sender(), pooled.nonce() + 1);
                }
                let proposed: HashSet<Hash> =
                    model.proposed.iter().map(|pooled| pooled.hash()).collect();
                for pooled in &batch {
                    prop_assert!(!proposed.contains(&pooled.hash()), "in-flight handed out again");
                    prop_assert!(!model.committed.contains(&pooled.hash()));
                    let sender = *pooled.sender();
                    let next = *expected.get(&sender).unwrap_or(&model.ledger.next_nonce(&sender));
                    prop_assert_eq!(pooled.nonce(), next, "nonce order broken");
                    expected.insert(sender, next + 1);
                }
                model.proposed.extend(batch);
            }
            Operation::Release => {
                pool.release_in_flight();
                model.proposed.clear();
            }
            Operation::Commit { count } => {
                let count = count.min(model.proposed.len());
                let block: Vec<_> = model.proposed.drain(..count).collect();
                for pooled in &block {
                    let sender = *pooled.sender();
                    prop_assert_eq!(pooled.nonce(), model.ledger.next_nonce(&sender));
                    model.ledger.set_next_nonce(&sender, pooled.nonce() + 1);
                    model.committed.insert(pooled.hash());
                }
                pool.committed(
                    block.iter().map(|pooled| (pooled.hash(), *pooled.sender())),
                    &model.ledger,
                );
            }
            Operation::CommitElsewhere { sender } => {
                let keypair = &keys[usize::from(sender)];
                let public_key = keypair.public_key();
                let nonce = model.ledger.next_nonce(&public_key);
                let foreign = unsigned(keypair, nonce, 99).sign(keypair);
                model.ledger.set_next_nonce(&public_key, nonce + 1);
                model.committed.insert(foreign.hash());
                // The sender's transaction with that nonce, if proposed, is now stale;
                // its successors wait on nothing and stay proposed.
                model
                    .proposed
                    .retain(|pooled| *pooled.sender() != public_key || pooled.nonce() > nonce);
                pool.committed([(foreign.hash(), public_key)], &model.ledger);
                // Proposed successors of a stale transaction are still valid in order.
            }
            Operation::Gossip { max } => {
                let taken = pool.take_gossip(max);
                prop_assert!(taken.len() <= max);
                for pooled in taken {
                    prop_assert!(
                        model.from_clients.contains(&pooled.hash()),
                        "peer transaction re-gossiped"
                    );
                    prop_assert!(model.gossiped.insert(pooled.hash()), "gossiped twice");
                    prop_assert!(!model.committed.contains(&pooled.hash()));
                }
            }
            Operation::Tick { ms } => model.now_ms += ms,
            Operation::Expire { wait_ms } => {
                let before: HashMap<PublicKey, Option<pactum_mempool::SenderPending>> = keys
                    .iter()
                    .map(|keypair| {
                        (keypair.public_key(), pool.sender_pending(&keypair.public_key()))
                    })
                    .collect();
                let proposed: HashSet<Hash> =
                    model.proposed.iter().map(|pooled| pooled.hash()).collect();
                let expired = pool.expire_waiting(model.now_ms, wait_ms);
                for gone in &expired {
                    prop_assert!(!pool.contains(&gone.hash));
                    // Gone from the pool: admitted again later, it is new and is
                    // gossiped again.
                    model.gossiped.remove(&gone.hash);
                    prop_assert!(
                        !proposed.contains(&gone.hash),
                        "an in-flight transaction expired"
                    );
                    prop_assert!(gone.waited_ms >= wait_ms);
                    let pending = before[&gone.sender].as_ref().expect("the sender had some");
                    prop_assert_eq!(pending.missing_nonce, Some(gone.missing_nonce));
                    prop_assert!(gone.nonce > gone.missing_nonce, "expired below the gap");
                    prop_assert!(!pending.pending.contains(&gone.missing_nonce));
                }
                // Nothing still waits behind a gap for longer than allowed.
                for keypair in &keys {
                    if let Some(pending) = pool.sender_pending(&keypair.public_key())
                        && let Some(oldest) = pending.oldest_waiting_admitted_ms
                    {
                        prop_assert!(model.now_ms - oldest < wait_ms, "{pending:?}");
                    }
                }
            }
        }
        // Every durable transaction that left is reported once, and only those.
        for hash in pool.take_forgotten_durable() {
            prop_assert!(
                model.durable.remove(&hash),
                "{hash} reported forgotten twice or never durable"
            );
            prop_assert!(!pool.contains(&hash));
        }
        for hash in &model.durable {
            prop_assert!(pool.contains(hash), "durable {hash} left without being reported");
        }
        check(&pool, &model, &config)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_promise(
        operations in prop::collection::vec(operation(), 1..60),
        count_binds in any::<bool>(),
    ) {
        run(operations, count_binds)?;
    }

    /// Arbitrary bytes, and valid encodings with bytes flipped, cut or appended, never
    /// make admission panic, never get in with a bad signature, and keep every invariant.
    #[test]
    fn hostile_bytes_never_break_admission(
        noise in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 0..6),
        edits in prop::collection::vec((0u8..4, 0u64..4, any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
    ) {
        let ledger = Ledger::with_enrolled(SENDERS);
        let mut pool = mempool();
        let mut items = noise;
        let mut pristine = Vec::new();
        for (sender, nonce, position, byte, kind) in edits {
            let mut bytes = encoded(&key(sender), nonce);
            let position = position.index(bytes.len());
            match kind {
                0 => bytes[position] ^= byte | 1,
                1 => bytes.truncate(position),
                _ => bytes.push(byte),
            }
            pristine.push(encoded(&key(sender), nonce));
            items.push(bytes);
        }
        let answers = pool.admit(items.clone(), Source::Peer, &ledger, &ledger, 0);
        prop_assert_eq!(answers.len(), items.len());
        pool.check_invariants().map_err(TestCaseError::fail)?;
        for (answer, bytes) in answers.iter().zip(&items) {
            if let Ok(admitted) = answer {
                // Whatever got in decodes, is signed by its sender, and is what was sent.
                let pooled = pool.get(&admitted.hash()).unwrap();
                prop_assert_eq!(pooled.encoded(), bytes.as_slice());
                prop_assert!(pooled.transaction().verify_signature().is_ok());
                prop_assert!(pristine.contains(bytes), "an edited encoding was admitted");
            }
        }
    }
}
