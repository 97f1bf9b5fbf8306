//! Nonce ordering, ready batches, the in-flight mark, commit eviction and gossip.

mod common;

use common::*;
use pactum_mempool::{Admitted, Mempool, MempoolConfig, RejectionCode, Source};
use pactum_types::{Hash, PublicKey};

fn admit_all(pool: &mut Mempool, ledger: &Ledger, items: Vec<Vec<u8>>, source: Source) {
    for answer in pool.admit(items, source, ledger, ledger, 0) {
        assert!(matches!(answer, Ok(Admitted::Added(_))), "{answer:?}");
    }
    pool.check_invariants().unwrap();
}

#[test]
fn out_of_order_arrivals_become_ready_in_nonce_order() {
    let ledger = Ledger::with_enrolled(1);
    let mut pool = mempool();
    let sender = key(0);
    let items = [3, 1, 0, 2].iter().map(|&nonce| encoded(&sender, nonce)).collect();
    admit_all(&mut pool, &ledger, items, Source::Client);
    let batch = pool.ready_batch(10, usize::MAX);
    let nonces: Vec<u64> = batch.iter().map(|pooled| pooled.nonce()).collect();
    assert_eq!(nonces, vec![0, 1, 2, 3]);
}

#[test]
fn a_gap_holds_back_later_nonces_until_it_is_filled() {
    let ledger = Ledger::with_enrolled(1);
    let mut pool = mempool();
    let sender = key(0);
    admit_all(&mut pool, &ledger, vec![encoded(&sender, 0), encoded(&sender, 2)], Source::Client);
    let first = pool.ready_batch(10, usize::MAX);
    assert_eq!(hashes(&first), vec![transaction(&sender, 0).hash()]);
    assert!(pool.ready_batch(10, usize::MAX).is_empty(), "nonce 2 must wait for nonce 1");

    admit_all(&mut pool, &ledger, vec![encoded(&sender, 1)], Source::Client);
    let next = pool.ready_batch(10, usize::MAX);
    let nonces: Vec<u64> = next.iter().map(|pooled| pooled.nonce()).collect();
    assert_eq!(nonces, vec![1, 2]);
}

#[test]
fn a_sender_ahead_of_the_ledger_waits_for_its_next_nonce() {
    let mut ledger = Ledger::with_enrolled(1);
    let sender = key(0);
    ledger.set_next_nonce(&sender.public_key(), 4);
    let mut pool = mempool();
    admit_all(&mut pool, &ledger, vec![encoded(&sender, 5)], Source::Client);
    assert!(pool.ready_batch(10, usize::MAX).is_empty());
    admit_all(&mut pool, &ledger, vec![encoded(&sender, 4)], Source::Client);
    let nonces: Vec<u64> =
        pool.ready_batch(10, usize::MAX).iter().map(|pooled| pooled.nonce()).collect();
    assert_eq!(nonces, vec![4, 5]);
}

#[test]
fn ready_order_follows_arrival_across_senders() {
    let ledger = Ledger::with_enrolled(3);
    let mut pool = mempool();
    let (a, b, c) = (key(0), key(1), key(2));
    // a1 arrives before a0 but is ready only after it; then it goes by its own arrival.
    let items =
        vec![encoded(&b, 0), encoded(&a, 1), encoded(&c, 0), encoded(&a, 0), encoded(&b, 1)];
    admit_all(&mut pool, &ledger, items, Source::Client);
    let order = senders_and_nonces(&pool.ready_batch(10, usize::MAX));
    let (a, b, c) = (a.public_key(), b.public_key(), c.public_key());
    assert_eq!(order, vec![(b, 0), (c, 0), (a, 0), (a, 1), (b, 1)]);
}

#[test]
fn ready_batches_respect_their_count_and_byte_budgets() {
    let ledger = Ledger::with_enrolled(4);
    let mut pool = mempool();
    let items = (0..4).map(|sender| encoded(&key(sender), 0)).collect();
    admit_all(&mut pool, &ledger, items, Source::Client);
    assert_eq!(pool.ready_batch(0, usize::MAX).len(), 0);
    assert_eq!(pool.ready_batch(2, usize::MAX).len(), 2);
    let size = transaction_bytes();
    assert_eq!(pool.ready_batch(10, size - 1).len(), 0, "nothing fits in fewer bytes than one");
    assert_eq!(pool.ready_batch(10, size + size / 2).len(), 1);
    assert_eq!(pool.ready_batch(10, usize::MAX).len(), 1);
    assert_eq!(pool.status().in_flight, 4);
}

#[test]
fn a_large_head_is_skipped_without_blocking_smaller_ones() {
    let ledger = Ledger::with_enrolled(2);
    let mut pool = mempool();
    let big_sender = key(0);
    let mut big = unsigned(&big_sender, 0, 0);
    big.payload =
        pactum_types::Payload::DeployContract { code: vec![1; 2000], init_input: Vec::new() };
    let big = pactum_types::Encode::to_bytes(&big.sign(&big_sender));
    admit_all(&mut pool, &ledger, vec![big, encoded(&key(1), 0)], Source::Client);
    let batch = pool.ready_batch(10, 1000);
    assert_eq!(senders_and_nonces(&batch), vec![(key(1).public_key(), 0)]);
    let rest = pool.ready_batch(10, usize::MAX);
    assert_eq!(senders_and_nonces(&rest), vec![(big_sender.public_key(), 0)]);
}

#[test]
fn in_flight_transactions_are_not_handed_out_twice_until_released() {
    let ledger = Ledger::with_enrolled(2);
    let mut pool = mempool();
    let (a, b) = (key(0), key(1));
    admit_all(
        &mut pool,
        &ledger,
        vec![encoded(&a, 0), encoded(&a, 1), encoded(&b, 0)],
        Source::Client,
    );
    let first = pool.ready_batch(2, usize::MAX);
    let second = pool.ready_batch(10, usize::MAX);
    let mut all = hashes(&first);
    all.extend(hashes(&second));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 3);
    assert!(pool.ready_batch(10, usize::MAX).is_empty());
    assert_eq!(pool.status().in_flight, 3);

    pool.release_in_flight();
    pool.check_invariants().unwrap();
    assert_eq!(pool.status().in_flight, 0);
    let again = pool.ready_batch(10, usize::MAX);
    let (a, b) = (a.public_key(), b.public_key());
    assert_eq!(senders_and_nonces(&again), vec![(a, 0), (a, 1), (b, 0)]);
}

#[test]
fn commit_evicts_and_promotes_waiting_transactions() {
    let mut ledger = Ledger::with_enrolled(1);
    let mut pool = mempool();
    let sender = key(0);
    admit_all(
        &mut pool,
        &ledger,
        vec![encoded(&sender, 0), encoded(&sender, 1), encoded(&sender, 3)],
        Source::Client,
    );
    let batch = pool.ready_batch(10, usize::MAX);
    assert_eq!(batch.len(), 2);
    commit(&mut pool, &mut ledger, &batch);
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.status().in_flight, 0);
    assert_eq!(pool.counters().evicted_committed, 2);
    for pooled in &batch {
        assert!(!pool.contains(&pooled.hash()));
        // A committed transaction can never come back.
        let answer = admit_one(&mut pool, &ledger, pooled.encoded().to_vec());
        assert_eq!(answer.unwrap_err().code(), RejectionCode::StaleNonce);
    }
    assert!(pool.ready_batch(10, usize::MAX).is_empty(), "nonce 3 waits for nonce 2");
    admit_all(&mut pool, &ledger, vec![encoded(&sender, 2)], Source::Client);
    let nonces: Vec<u64> =
        pool.ready_batch(10, usize::MAX).iter().map(|pooled| pooled.nonce()).collect();
    assert_eq!(nonces, vec![2, 3]);
}

#[test]
fn a_nonce_used_elsewhere_evicts_the_pending_rival() {
    let mut ledger = Ledger::with_enrolled(1);
    let mut pool = mempool();
    let sender = key(0);
    admit_all(&mut pool, &ledger, vec![encoded(&sender, 0), encoded(&sender, 1)], Source::Client);
    let in_flight = pool.ready_batch(1, usize::MAX);
    assert_eq!(in_flight.len(), 1);
    // Another validator's block committed a different transaction with nonce 0.
    let rival = unsigned(&sender, 0, 5).sign(&sender);
    ledger.set_next_nonce(&sender.public_key(), 1);
    let stale = pool.committed([(rival.hash(), sender.public_key())], &ledger);
    pool.check_invariants().unwrap();
    assert_eq!(stale, vec![in_flight[0].hash()], "the evicted transaction is reported");
    assert!(!pool.contains(&in_flight[0].hash()));
    assert_eq!(pool.counters().evicted_stale, 1);
    assert_eq!(pool.status().in_flight, 0);
    let nonces: Vec<u64> =
        pool.ready_batch(10, usize::MAX).iter().map(|pooled| pooled.nonce()).collect();
    assert_eq!(nonces, vec![1]);
}

#[test]
fn admission_learns_nonces_committed_without_the_mempool_hearing() {
    let mut ledger = Ledger::with_enrolled(1);
    let mut pool = mempool();
    let sender = key(0);
    admit_all(&mut pool, &ledger, vec![encoded(&sender, 0), encoded(&sender, 1)], Source::Client);
    ledger.set_next_nonce(&sender.public_key(), 2);
    admit_all(&mut pool, &ledger, vec![encoded(&sender, 2)], Source::Client);
    assert_eq!(pool.len(), 1);
    assert_eq!(
        senders_and_nonces(&pool.ready_batch(10, usize::MAX)),
        vec![(sender.public_key(), 2)]
    );
}

#[test]
fn committing_unknown_hashes_and_senders_changes_nothing_else() {
    let ledger = Ledger::with_enrolled(1);
    let mut pool = mempool();
    admit_all(&mut pool, &ledger, vec![encoded(&key(0), 0)], Source::Client);
    let before = held(&pool);
    pool.committed(
        [(Hash([9; 32]), PublicKey([9; 32])), (Hash([8; 32]), key(0).public_key())],
        &ledger,
    );
    pool.check_invariants().unwrap();
    assert_eq!(held(&pool), before);
}

#[test]
fn client_transactions_are_gossiped_once_and_peer_ones_never() {
    let ledger = Ledger::with_enrolled(4);
    let mut pool = mempool();
    let from_clients: Vec<_> = (0..3).map(|sender| transaction(&key(sender), 0)).collect();
    admit_all(
        &mut pool,
        &ledger,
        from_clients.iter().map(pactum_types::Encode::to_bytes).collect(),
        Source::Client,
    );
    admit_all(&mut pool, &ledger, vec![encoded(&key(3), 0)], Source::Peer);
    // Admitting a client transaction again does not gossip it again.
    let answer = admit_one(&mut pool, &ledger, pactum_types::Encode::to_bytes(&from_clients[0]));
    assert!(matches!(answer, Ok(Admitted::AlreadyPending(_))));

    let first = pool.take_gossip(2);
    assert_eq!(hashes(&first), vec![from_clients[0].hash(), from_clients[1].hash()]);
    assert_eq!(first[0].encoded(), pactum_types::Encode::to_bytes(&from_clients[0]).as_slice());
    let rest = pool.take_gossip(10);
    assert_eq!(hashes(&rest), vec![from_clients[2].hash()]);
    assert!(pool.take_gossip(10).is_empty());
}

#[test]
fn committed_transactions_are_not_gossiped() {
    let mut ledger = Ledger::with_enrolled(2);
    let mut pool = mempool();
    admit_all(&mut pool, &ledger, vec![encoded(&key(0), 0), encoded(&key(1), 0)], Source::Client);
    let batch = pool.ready_batch(1, usize::MAX);
    commit(&mut pool, &mut ledger, &batch);
    let gossip = pool.take_gossip(10);
    assert_eq!(senders_and_nonces(&gossip), vec![(key(1).public_key(), 0)]);
}

#[test]
fn the_gossip_queue_stays_bounded_when_nobody_takes_it() {
    let mut ledger = Ledger::with_enrolled(1);
    let mut pool =
        Mempool::new(MempoolConfig { transactions_max: 4, sender_transactions_max: 4, ..config() })
            .unwrap();
    let sender = key(0);
    for nonce in 0..40 {
        admit_all(&mut pool, &ledger, vec![encoded(&sender, nonce)], Source::Client);
        let batch = pool.ready_batch(1, usize::MAX);
        commit(&mut pool, &mut ledger, &batch);
        assert!(pool.status().gossip_queued <= 8);
    }
    assert!(pool.take_gossip(100).is_empty());
}

#[test]
fn revoked_signers_lose_their_pending_transactions() {
    let mut ledger = Ledger::with_enrolled(2);
    let mut pool = mempool();
    admit_all(
        &mut pool,
        &ledger,
        vec![encoded(&key(0), 0), encoded(&key(0), 1), encoded(&key(1), 0)],
        Source::Client,
    );
    pool.ready_batch(1, usize::MAX);
    ledger.set_status(&key(0), SignerStatus::Revoked);
    assert_eq!(pool.evict_unenrolled(&ledger), 2);
    pool.check_invariants().unwrap();
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.counters().evicted_signer, 2);
    assert_eq!(
        senders_and_nonces(&pool.ready_batch(10, usize::MAX)),
        vec![(key(1).public_key(), 0)]
    );
}

#[test]
fn an_enrolment_is_admitted_on_its_certificate_and_nothing_else() {
    let ledger = Ledger::with_enrolled(0);
    let mut pool = mempool();
    let newcomer = key(7);
    let enrol = |certificate_der: Vec<u8>| {
        let mut transaction = unsigned(&newcomer, 0, 0);
        transaction.payload = pactum_types::Payload::EnrolIdentity { certificate_der };
        pactum_types::Encode::to_bytes(&transaction.sign(&newcomer))
    };
    let other_key = test_certificate(&key(8).public_key());
    let refused = pool.admit(vec![enrol(other_key)], Source::Client, &ledger, &ledger, 0);
    assert!(
        matches!(&refused[0], Err(rejection) if rejection.code() == RejectionCode::UnknownSigner),
        "{refused:?}"
    );
    let call = encoded(&newcomer, 0);
    let refused = pool.admit(vec![call], Source::Client, &ledger, &ledger, 0);
    assert!(
        matches!(&refused[0], Err(rejection) if rejection.code() == RejectionCode::UnknownSigner)
    );
    let admitted = pool.admit(
        vec![enrol(test_certificate(&newcomer.public_key()))],
        Source::Client,
        &ledger,
        &ledger,
        0,
    );
    assert!(matches!(admitted[0], Ok(Admitted::Added(_))), "{admitted:?}");
    pool.check_invariants().unwrap();
}

#[test]
fn transactions_behind_a_missing_nonce_expire_after_the_wait_and_others_never() {
    let ledger = Ledger::with_enrolled(2);
    let mut pool = mempool();
    let (stuck, flowing) = (key(0), key(1));
    // Sender 0 gave nonces 0, 2 and 3 (1 never arrives); sender 1 gave 0 and 1.
    for (keypair, nonce, at) in
        [(&stuck, 0, 0), (&stuck, 2, 0), (&stuck, 3, 500), (&flowing, 0, 0), (&flowing, 1, 0)]
    {
        let answers =
            pool.admit(vec![encoded(keypair, nonce)], Source::Client, &ledger, &ledger, at);
        assert!(matches!(answers[0], Ok(Admitted::Added(_))), "{answers:?}");
    }
    let pending = pool.sender_pending(&stuck.public_key()).unwrap();
    assert_eq!(pending.pending, vec![0, 2, 3]);
    assert_eq!(pending.missing_nonce, Some(1));
    assert_eq!(pending.waiting, vec![2, 3]);
    assert_eq!(pending.oldest_waiting_admitted_ms, Some(0));
    let flowing_pending = pool.sender_pending(&flowing.public_key()).unwrap();
    assert_eq!((flowing_pending.missing_nonce, flowing_pending.waiting.len()), (None, 0));

    // Not yet: nothing has waited 1,000 ms at 999.
    assert!(pool.expire_waiting(999, 1_000).is_empty());
    let expired = pool.expire_waiting(1_000, 1_000);
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!((expired[0].nonce, expired[0].missing_nonce, expired[0].waited_ms), (2, 1, 1_000));
    pool.check_invariants().unwrap();
    // Much later: nonce 3 goes too; nonce 0 (ready) and sender 1 (no gap) never expire.
    let expired = pool.expire_waiting(1_000_000, 1_000);
    assert_eq!(expired.iter().map(|gone| gone.nonce).collect::<Vec<_>>(), vec![3]);
    assert_eq!(pool.sender_pending(&stuck.public_key()).unwrap().pending, vec![0]);
    assert_eq!(pool.len(), 3);
    assert_eq!(pool.counters().expired, 2);
    pool.check_invariants().unwrap();
    // Resubmitted once the gap is filled, the same transaction is admitted again.
    let answers = pool.admit(
        vec![encoded(&stuck, 1), encoded(&stuck, 2)],
        Source::Client,
        &ledger,
        &ledger,
        1_000_001,
    );
    assert!(answers.iter().all(|answer| matches!(answer, Ok(Admitted::Added(_)))), "{answers:?}");
    assert_eq!(pool.sender_pending(&stuck.public_key()).unwrap().missing_nonce, None);
    assert!(pool.expire_waiting(9_000_000, 1_000).is_empty());
}

#[test]
fn one_organisation_cannot_take_the_whole_pool_from_the_others() {
    // Issue 9: a member's clients could fill the pool that every member shares.
    let config = MempoolConfig {
        organisation_share: Some(pactum_mempool::OrganisationShare {
            transactions_max: 3,
            bytes_max: 64 * transaction_bytes(),
        }),
        ..config()
    };
    let mut pool = Mempool::new(config).unwrap();
    let mut ledger = Ledger::with_enrolled(4);
    for index in 0..3 {
        ledger.set_organisation(&key(index), "Member A");
    }
    ledger.set_organisation(&key(3), "Member B");
    for index in 0..3 {
        admit_one(&mut pool, &ledger, encoded(&key(index), 0)).unwrap();
    }
    // Member A holds its share: its next transaction waits, however the pool stands.
    let refused = admit_one(&mut pool, &ledger, encoded(&key(0), 1)).unwrap_err();
    assert_eq!(refused.code(), RejectionCode::OrganisationShareFull);
    assert!(refused.code().is_retryable());
    assert!(refused.to_string().contains("Member A"), "{refused}");
    // Member B is not affected.
    admit_one(&mut pool, &ledger, encoded(&key(3), 0)).unwrap();
    pool.check_invariants().unwrap();
    // A commit frees Member A's room.
    let committed = transaction(&key(1), 0).hash();
    ledger.set_next_nonce(&key(1).public_key(), 1);
    pool.committed([(committed, key(1).public_key())], &ledger);
    admit_one(&mut pool, &ledger, encoded(&key(0), 1)).unwrap();
    pool.check_invariants().unwrap();
}
