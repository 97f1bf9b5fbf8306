//! Each admission rule refuses with its code and leaves what was already admitted alone.

mod common;

use common::*;
use pactum_mempool::{
    Admitted, ConfigError, Mempool, MempoolConfig, Rejection, RejectionCode, Source,
};
use pactum_types::{ChainId, Encode, EnvelopeFault, limits};

/// A mempool already holding two transactions of sender 0 and one of sender 1, so each
/// refusal can be checked to lose nothing.
fn populated() -> (Mempool, Ledger) {
    let ledger = Ledger::with_enrolled(4);
    let mut pool = mempool();
    for bytes in [encoded(&key(0), 0), encoded(&key(0), 1), encoded(&key(1), 0)] {
        assert!(matches!(admit_one(&mut pool, &ledger, bytes), Ok(Admitted::Added(_))));
    }
    (pool, ledger)
}

#[test]
fn a_valid_transaction_is_admitted_under_its_hash() {
    let (mut pool, ledger) = populated();
    let transaction = transaction(&key(2), 0);
    let answer = admit_one(&mut pool, &ledger, transaction.to_bytes()).unwrap();
    assert_eq!(answer, Admitted::Added(transaction.hash()));
    assert!(pool.contains(&transaction.hash()));
    assert_eq!(pool.get(&transaction.hash()).unwrap().transaction(), &transaction);
    assert_eq!(pool.len(), 4);
    assert_eq!(pool.bytes(), 4 * transaction_bytes());
    assert_eq!(pool.counters().admitted, 4);
}

#[test]
fn malformed_bytes_are_refused() {
    let (mut pool, ledger) = populated();
    let mut truncated = encoded(&key(2), 0);
    truncated.pop();
    let rejection = assert_refused(&mut pool, &ledger, truncated, RejectionCode::Malformed);
    assert!(rejection.to_string().contains("not a canonical encoding"), "{rejection}");

    let mut trailing = encoded(&key(2), 0);
    trailing.push(0);
    let rejection = assert_refused(&mut pool, &ledger, trailing, RejectionCode::Malformed);
    assert!(rejection.to_string().contains("trailing"), "{rejection}");

    assert_refused(&mut pool, &ledger, Vec::new(), RejectionCode::Malformed);
    assert_refused(&mut pool, &ledger, vec![0xff; 300], RejectionCode::Malformed);
}

#[test]
fn oversized_bytes_are_refused_before_decoding() {
    let (mut pool, ledger) = populated();
    let bytes = vec![1u8; limits::TRANSACTION_BYTES_MAX + 1];
    let rejection = assert_refused(&mut pool, &ledger, bytes, RejectionCode::TooLarge);
    assert_eq!(
        rejection,
        Rejection::Envelope(EnvelopeFault::TooLarge {
            bytes: limits::TRANSACTION_BYTES_MAX + 1,
            max: limits::TRANSACTION_BYTES_MAX
        })
    );
}

#[test]
fn gas_limit_over_the_maximum_is_refused() {
    let (mut pool, ledger) = populated();
    let sender = key(2);
    let mut unsigned = unsigned(&sender, 0, 0);
    unsigned.gas_limit = limits::TRANSACTION_GAS_MAX + 1;
    let bytes = unsigned.sign(&sender).to_bytes();
    let rejection = assert_refused(&mut pool, &ledger, bytes, RejectionCode::GasLimitTooHigh);
    assert_eq!(
        rejection,
        Rejection::Envelope(EnvelopeFault::GasLimitTooHigh {
            gas_limit: limits::TRANSACTION_GAS_MAX + 1,
            max: limits::TRANSACTION_GAS_MAX
        })
    );
}

/// Issue 9, finding 2: a transaction that cannot fit in any block (its gas limit is above
/// the chain's block gas limit) is refused at the door instead of waiting forever.
#[test]
fn gas_limit_over_the_block_gas_limit_is_refused() {
    let ledger = Ledger::with_enrolled(4);
    let mut pool = Mempool::new(MempoolConfig { gas_limit_max: 50_000, ..config() }).unwrap();
    let sender = key(2);
    let mut fits = unsigned(&sender, 0, 0);
    let mut heavy = fits.clone();
    heavy.gas_limit = 50_001;
    let bytes = heavy.sign(&sender).to_bytes();
    let rejection = assert_refused(&mut pool, &ledger, bytes, RejectionCode::GasLimitTooHigh);
    assert_eq!(
        rejection,
        Rejection::Envelope(EnvelopeFault::GasLimitTooHigh { gas_limit: 50_001, max: 50_000 })
    );
    fits.gas_limit = 50_000;
    assert!(matches!(
        admit_one(&mut pool, &ledger, fits.sign(&sender).to_bytes()),
        Ok(Admitted::Added(_))
    ));
}

#[test]
fn another_chain_is_refused() {
    let (mut pool, ledger) = populated();
    let sender = key(2);
    let mut unsigned = unsigned(&sender, 0, 0);
    unsigned.chain_id = ChainId::new("other-chain").unwrap();
    let bytes = unsigned.sign(&sender).to_bytes();
    let rejection = assert_refused(&mut pool, &ledger, bytes, RejectionCode::WrongChain);
    let message = rejection.to_string();
    assert!(message.contains("other-chain") && message.contains(CHAIN), "{message}");
}

#[test]
fn a_bad_signature_is_refused() {
    let (mut pool, ledger) = populated();
    let mut tampered = transaction(&key(2), 0);
    tampered.signature.0[5] ^= 0x10;
    assert_refused(&mut pool, &ledger, tampered.to_bytes(), RejectionCode::BadSignature);

    // A signature by another enrolled key does not pass for the sender's.
    let mut forged = transaction(&key(2), 0);
    forged.signature = transaction(&key(3), 0).signature;
    assert_refused(&mut pool, &ledger, forged.to_bytes(), RejectionCode::BadSignature);
}

#[test]
fn unknown_and_revoked_signers_are_refused() {
    let (mut pool, mut ledger) = populated();
    let stranger = key(9);
    let rejection =
        assert_refused(&mut pool, &ledger, encoded(&stranger, 0), RejectionCode::UnknownSigner);
    assert_eq!(
        rejection,
        Rejection::Envelope(EnvelopeFault::UnknownSigner { sender: stranger.public_key() })
    );

    ledger.set_status(&key(2), SignerStatus::Revoked);
    let rejection =
        assert_refused(&mut pool, &ledger, encoded(&key(2), 0), RejectionCode::RevokedSigner);
    assert!(rejection.to_string().contains("revoked"), "{rejection}");
}

#[test]
fn a_used_nonce_is_refused_as_stale() {
    let (mut pool, mut ledger) = populated();
    let sender = key(2);
    ledger.set_next_nonce(&sender.public_key(), 5);
    let rejection =
        assert_refused(&mut pool, &ledger, encoded(&sender, 4), RejectionCode::StaleNonce);
    assert_eq!(
        rejection,
        Rejection::Envelope(EnvelopeFault::StaleNonce {
            sender: sender.public_key(),
            nonce: 4,
            next_nonce: 5
        })
    );
    assert!(admit_one(&mut pool, &ledger, encoded(&sender, 5)).is_ok());
}

#[test]
fn a_pending_nonce_cannot_be_taken_by_a_different_transaction() {
    let (mut pool, ledger) = populated();
    let sender = key(0);
    let pending = transaction(&sender, 1).hash();
    let rival = unsigned(&sender, 1, 9).sign(&sender).to_bytes();
    let rejection = assert_refused(&mut pool, &ledger, rival, RejectionCode::NonceTaken);
    assert_eq!(rejection, Rejection::NonceTaken { sender: sender.public_key(), nonce: 1, pending });
}

#[test]
fn the_same_transaction_again_is_already_pending() {
    let (mut pool, ledger) = populated();
    let transaction = transaction(&key(0), 1);
    let before = held(&pool);
    let answer = admit_one(&mut pool, &ledger, transaction.to_bytes()).unwrap();
    assert_eq!(answer, Admitted::AlreadyPending(transaction.hash()));
    assert_eq!(held(&pool), before);
    assert_eq!(pool.counters().already_pending, 1);

    // Within one batch, a repeat gets its first occurrence's answer.
    let fresh = encoded(&key(3), 0);
    let hash = pactum_types::hash::sha3_256(&fresh);
    let answers = pool.admit(vec![fresh.clone(), fresh], Source::Client, &ledger, &ledger, 0);
    assert_eq!(answers, vec![Ok(Admitted::Added(hash)), Ok(Admitted::AlreadyPending(hash))]);
    assert_eq!(pool.len(), 4);

    // A refused item repeated in the batch is refused again with the same rule.
    let mut forged = common::transaction(&key(2), 0);
    forged.signature.0[1] ^= 1;
    let answers =
        pool.admit(vec![forged.to_bytes(), forged.to_bytes()], Source::Peer, &ledger, &ledger, 0);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].as_ref().unwrap_err().code(), RejectionCode::BadSignature);
    assert_eq!(pool.len(), 4);
}

#[test]
fn a_nonce_too_far_ahead_is_refused() {
    let (mut pool, mut ledger) = populated();
    let sender = key(2);
    ledger.set_next_nonce(&sender.public_key(), 10);
    let window = config().nonces_ahead_max;
    let rejection = assert_refused(
        &mut pool,
        &ledger,
        encoded(&sender, 10 + window),
        RejectionCode::NonceTooFarAhead,
    );
    assert_eq!(
        rejection,
        Rejection::NonceTooFarAhead {
            sender: sender.public_key(),
            nonce: 10 + window,
            next_nonce: 10,
            window
        }
    );
    assert!(admit_one(&mut pool, &ledger, encoded(&sender, 10 + window - 1)).is_ok());
    assert_refused(&mut pool, &ledger, encoded(&sender, u64::MAX), RejectionCode::NonceTooFarAhead);
}

#[test]
fn a_sender_over_its_share_is_refused() {
    let ledger = Ledger::with_enrolled(2);
    let mut pool = Mempool::new(MempoolConfig { sender_transactions_max: 3, ..config() }).unwrap();
    let sender = key(0);
    for nonce in 0..3 {
        admit_one(&mut pool, &ledger, encoded(&sender, nonce)).unwrap();
    }
    let rejection =
        assert_refused(&mut pool, &ledger, encoded(&sender, 3), RejectionCode::SenderQueueFull);
    assert!(rejection.code().is_retryable());
    // Other senders are unaffected.
    assert!(admit_one(&mut pool, &ledger, encoded(&key(1), 0)).is_ok());
}

#[test]
fn a_full_mempool_answers_mempool_full_by_count_and_by_bytes() {
    let ledger = Ledger::with_enrolled(8);
    let mut pool =
        Mempool::new(MempoolConfig { transactions_max: 4, sender_transactions_max: 4, ..config() })
            .unwrap();
    for sender in 0..4 {
        admit_one(&mut pool, &ledger, encoded(&key(sender), 0)).unwrap();
    }
    let rejection =
        assert_refused(&mut pool, &ledger, encoded(&key(4), 0), RejectionCode::MempoolFull);
    assert_eq!(rejection.code().as_str(), "mempool_full");
    assert!(rejection.to_string().contains("mempool is full"), "{rejection}");

    let mut pool =
        Mempool::new(MempoolConfig { bytes_max: 3 * transaction_bytes() - 1, ..config() }).unwrap();
    for sender in 0..2 {
        admit_one(&mut pool, &ledger, encoded(&key(sender), 0)).unwrap();
    }
    assert_refused(&mut pool, &ledger, encoded(&key(2), 0), RejectionCode::MempoolFull);
    assert_eq!(pool.bytes(), 2 * transaction_bytes());
}

#[test]
fn a_mixed_batch_rejects_exactly_the_bad_signatures() {
    let ledger = Ledger::with_enrolled(12);
    let mut pool = mempool();
    let mut transactions: Vec<_> = (0..12).map(|sender| transaction(&key(sender), 0)).collect();
    let bad = [2usize, 5, 11];
    for &index in &bad {
        transactions[index].signature.0[40] ^= 1;
    }
    let batch: Vec<Vec<u8>> =
        transactions.iter().map(|transaction| transaction.to_bytes()).collect();
    let answers = pool.admit(batch, Source::Peer, &ledger, &ledger, 0);
    for (index, answer) in answers.iter().enumerate() {
        if bad.contains(&index) {
            assert_eq!(answer.as_ref().unwrap_err().code(), RejectionCode::BadSignature);
        } else {
            assert_eq!(answer, &Ok(Admitted::Added(transactions[index].hash())));
        }
    }
    assert_eq!(pool.len(), 9);
    assert_eq!(pool.counters().rejected(RejectionCode::BadSignature), 3);
    pool.check_invariants().unwrap();
}

#[test]
fn a_forgery_earlier_in_a_batch_cannot_take_the_nonce_of_the_real_transaction() {
    let ledger = Ledger::with_enrolled(1);
    let mut pool = mempool();
    let sender = key(0);
    let real = transaction(&sender, 0);
    let mut forged = unsigned(&sender, 0, 7).sign(&sender);
    forged.signature = real.signature;
    let answers =
        pool.admit(vec![forged.to_bytes(), real.to_bytes()], Source::Peer, &ledger, &ledger, 0);
    assert_eq!(answers[0].as_ref().unwrap_err().code(), RejectionCode::BadSignature);
    assert_eq!(answers[1], Ok(Admitted::Added(real.hash())));
}

#[test]
fn two_valid_transactions_for_one_nonce_in_a_batch_keep_the_first() {
    let ledger = Ledger::with_enrolled(1);
    let mut pool = mempool();
    let sender = key(0);
    let first = unsigned(&sender, 0, 1).sign(&sender);
    let second = unsigned(&sender, 0, 2).sign(&sender);
    let answers =
        pool.admit(vec![first.to_bytes(), second.to_bytes()], Source::Client, &ledger, &ledger, 0);
    assert_eq!(answers[0], Ok(Admitted::Added(first.hash())));
    assert_eq!(answers[1].as_ref().unwrap_err().code(), RejectionCode::NonceTaken);
    assert_eq!(pool.len(), 1);
}

#[test]
fn one_batch_reports_every_rule_and_counts_each_by_code() {
    let mut ledger = Ledger::with_enrolled(4);
    ledger.set_status(&key(3), SignerStatus::Revoked);
    let mut pool = mempool();
    let mut bad_signature = transaction(&key(1), 0);
    bad_signature.signature.0[0] ^= 1;
    let batch = vec![
        encoded(&key(0), 0),
        vec![1, 2, 3],
        bad_signature.to_bytes(),
        encoded(&key(9), 0),
        encoded(&key(3), 0),
        encoded(&key(0), 1),
    ];
    let answers = pool.admit(batch, Source::Client, &ledger, &ledger, 0);
    let codes: Vec<Option<&str>> = answers
        .iter()
        .map(|answer| answer.as_ref().err().map(|rejection| rejection.code().as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some("malformed"),
            Some("bad_signature"),
            Some("unknown_signer"),
            Some("revoked_signer"),
            None
        ]
    );
    let counters = pool.counters();
    assert_eq!(counters.admitted, 2);
    assert_eq!(counters.rejected_total(), 4);
    for code in [
        RejectionCode::Malformed,
        RejectionCode::BadSignature,
        RejectionCode::UnknownSigner,
        RejectionCode::RevokedSigner,
    ] {
        assert_eq!(counters.rejected(code), 1, "{code}");
    }
}

#[test]
fn configurations_outside_the_limits_are_refused() {
    let zero = MempoolConfig { transactions_max: 0, ..MempoolConfig::new(chain_id()) };
    assert!(matches!(
        Mempool::new(zero),
        Err(ConfigError::OutOfRange { name: "transactions_max", .. })
    ));
    let huge = MempoolConfig {
        bytes_max: limits::MEMPOOL_BYTES_MAX + 1,
        ..MempoolConfig::new(chain_id())
    };
    assert!(Mempool::new(huge).is_err());
    let share = MempoolConfig {
        transactions_max: 10,
        sender_transactions_max: 11,
        ..MempoolConfig::new(chain_id())
    };
    assert!(Mempool::new(share).is_err());
    assert!(Mempool::new(MempoolConfig::new(chain_id())).is_ok());
}
