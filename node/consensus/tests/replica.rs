//! The replica alone and in a hand-driven cluster: the normal case (PBFT §4.2),
//! checkpoints (§4.3), Byzantine input as evidence, and recovery from persisted records.
//! Golden file: `golden/quorum.txt` (refresh with `PACTUM_UPDATE_GOLDEN=1`).

mod common;

use common::{
    Cluster, TestCrypto, batch_in, checkpoint_certificate, commit, config, feed, pre_prepare,
    prepare, records, replica, signed, state,
};
use pactum_consensus::{
    BatchHeader, Config, Effect, Evidence, Input, Message, Record, Replica, Sequence,
    SignedMessage, TimeoutKind, View, batch_requests, encode_batch,
};
use pactum_types::Hash;
use pactum_types::hash::sha3_256;

#[test]
fn quorum_sizes_match_the_golden_table() {
    let mut table =
        String::from("# n f quorum primary(view 0..n+1)  (refresh with PACTUM_UPDATE_GOLDEN=1)\n");
    for replicas in 4..=13u16 {
        let config = config(replicas);
        let primaries: Vec<String> =
            (0..=u64::from(replicas)).map(|view| config.primary(View(view)).to_string()).collect();
        table.push_str(&format!(
            "{replicas} {} {} {}\n",
            config.faults_tolerated(),
            config.quorum(),
            primaries.join(",")
        ));
        // Any two quorums share at least f + 1 replicas, so at least one honest one.
        assert!(2 * config.quorum() - usize::from(replicas) > config.faults_tolerated());
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quorum.txt");
    if std::env::var_os("PACTUM_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &table).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), table);
}

#[test]
fn normal_case_commits_batches_in_order_on_every_replica() {
    // PBFT §4.2: PRE-PREPARE, PREPARE, COMMIT; §4.3: checkpoints move the window.
    let mut cluster = Cluster::new(4);
    for index in 0..10u8 {
        cluster.queue.push_back((0, Input::Request { request: vec![index; 16] }));
        cluster.run();
    }
    let expected: Vec<(u64, Hash)> = (0..10u8)
        .map(|index| {
            (u64::from(index) + 1, sha3_256(&encode_batch(BatchHeader::default(), &[[index; 16]])))
        })
        .collect();
    for delivered in &cluster.delivered {
        assert_eq!(delivered, &expected);
    }
    for replica in &cluster.replicas {
        assert_eq!(replica.low_watermark(), Sequence(10), "checkpoint 10 is stable everywhere");
    }
    assert!(cluster.evidence.is_empty(), "{:?}", cluster.evidence);
    // Persist before send: every replica wrote records, and the prepared certificates
    // among them.
    for records in &cluster.records {
        assert!(records.iter().any(|record| matches!(record, Record::Prepared(_))));
    }
}

#[test]
fn the_window_holds_proposals_until_a_checkpoint_is_stable() {
    let mut primary = replica(0, 4, &[], 0);
    let mut proposals = 0;
    for index in 0..6u8 {
        for effect in primary.step(Input::Request { request: vec![index] }) {
            if matches!(effect, Effect::Broadcast(_)) {
                proposals += 1;
            }
            // With the window full, no batch timer spins: the next stable checkpoint
            // resumes batching.
            assert!(
                index < 4
                    || !matches!(
                        effect,
                        Effect::ScheduleTimeout { kind: TimeoutKind::Batch { .. }, .. }
                    ),
                "request {index}: {effect:?}"
            );
        }
        primary.check_invariants();
    }
    assert_eq!(proposals, 4, "only sequence numbers 1..=h+L (L = 4) are proposed");
}

#[test]
fn byzantine_input_becomes_evidence_not_a_panic() {
    let mut backup = replica(1, 4, &[], 0);
    let batch = batch_in(0, b"batch");
    let digest = sha3_256(&batch);
    let (v0, s1) = (View(0), Sequence(1));

    // A PRE-PREPARE from a replica that is not the primary of view 0.
    let effects = backup.step(Input::Message(signed(
        2,
        Message::PrePrepare { view: v0, sequence: s1, digest, batch: batch.clone() },
    )));
    assert!(effects.contains(&Effect::Evidence(Evidence::NotPrimary { sender: 2, view: v0 })));

    // A bad signature.
    let mut forged = pre_prepare(0, 1, batch.clone());
    forged.signature.0[5] ^= 1;
    let effects = backup.step(Input::Message(forged));
    assert!(
        effects
            .contains(&Effect::Evidence(Evidence::BadSignature { sender: 0, kind: "pre-prepare" }))
    );

    // A signature of another chain.
    let message = Message::Prepare { view: v0, sequence: s1, digest };
    let other_chain = SignedMessage {
        sender: 2,
        signature: common::signature_of(2, &message.signing_bytes(&Hash([1; 32]), 2)),
        message,
    };
    let effects = backup.step(Input::Message(other_chain));
    assert!(
        effects.contains(&Effect::Evidence(Evidence::BadSignature { sender: 2, kind: "prepare" }))
    );

    // A batch that does not match its digest.
    let effects = backup.step(Input::Message(signed(
        0,
        Message::PrePrepare { view: v0, sequence: s1, digest: Hash([9; 32]), batch: batch.clone() },
    )));
    assert!(effects.contains(&Effect::Evidence(Evidence::BatchDigestMismatch { sender: 0 })));

    // A batch that is not a list of requests within the batch limits.
    let effects = backup.step(Input::Message(pre_prepare(0, 1, b"not a batch".to_vec())));
    assert!(
        effects.contains(&Effect::Evidence(Evidence::MalformedBatch { sender: 0, sequence: s1 }))
    );

    // The real PRE-PREPARE is accepted and prepared (persisted before it is broadcast).
    let effects = backup.step(Input::Message(pre_prepare(0, 1, batch)));
    let persist =
        effects.iter().position(|effect| matches!(effect, Effect::Persist(Record::Sent(_))));
    let broadcast = effects.iter().position(|effect| matches!(effect, Effect::Broadcast(_)));
    assert!(persist.unwrap() < broadcast.unwrap(), "persist before send");

    // The primary equivocates: a second PRE-PREPARE for (0, 1) with another batch.
    let effects = backup.step(Input::Message(pre_prepare(0, 1, batch_in(0, b"other"))));
    assert!(effects.contains(&Effect::Evidence(Evidence::Equivocation {
        sender: 0,
        view: v0,
        sequence: s1
    })));

    // Conflicting votes from one replica.
    backup.step(Input::Message(prepare(2, 0, 1, digest)));
    let effects = backup.step(Input::Message(prepare(2, 0, 1, Hash([7; 32]))));
    assert!(effects.contains(&Effect::Evidence(Evidence::ConflictingVote {
        sender: 2,
        kind: "prepare",
        view: v0,
        sequence: s1
    })));
    // A PREPARE from the primary.
    let effects = backup.step(Input::Message(prepare(0, 0, 1, digest)));
    assert!(effects.contains(&Effect::Evidence(Evidence::PrepareFromPrimary { sender: 0 })));

    // Out of the window, or from views this replica is not in: dropped quietly (a peer
    // ahead of or behind this one is not misbehaving).
    for message in [commit(2, 0, 99, digest), prepare(2, 5, 1, digest)] {
        let effects = backup.step(Input::Message(message));
        assert!(effects.is_empty(), "{effects:?}");
    }
    let effects = backup.step(Input::Message(commit(9, 0, 1, digest)));
    assert!(effects.contains(&Effect::Evidence(Evidence::UnknownSender { sender: 9 })));
    backup.check_invariants();
}

#[test]
fn a_restarted_replica_never_prepares_a_conflicting_batch() {
    let mut backup = replica(1, 4, &[], 0);
    let records =
        records(&feed(&mut backup, [Input::Message(pre_prepare(0, 1, batch_in(0, b"first")))]));
    // Crash, restart from the records, and receive an equivocating PRE-PREPARE.
    let mut restarted = replica(1, 4, &records, 0);
    let effects = feed(&mut restarted, [Input::Message(pre_prepare(0, 1, batch_in(0, b"second")))]);
    assert!(
        !effects.iter().any(|effect| matches!(effect, Effect::Broadcast(_))),
        "no conflicting PREPARE: {effects:?}"
    );
    assert!(effects.contains(&Effect::Evidence(Evidence::Equivocation {
        sender: 0,
        view: View(0),
        sequence: Sequence(1)
    })));
}

#[test]
fn bad_configurations_are_refused() {
    let crypto = TestCrypto { id: 0 };
    let refused =
        |config: Config| Replica::new(0, config, crypto.clone(), &[], Sequence(0)).is_err();
    assert!(refused(config(3)));
    assert!(refused(Config { watermark_window: 3, ..config(4) }));
    assert!(refused(Config { watermark_window: 4096, checkpoint_interval: 16, ..config(4) }));
    assert!(refused(Config { delivery_backlog_max: 0, ..config(4) }));
    assert!(refused(Config { batch_bytes_max: 64 * 1024 * 1024, ..config(4) }));
    // 256 validators with a window of 64: a NEW-VIEW could not fit in a frame.
    assert!(refused(Config { watermark_window: 64, checkpoint_interval: 16, ..config(256) }));
    assert!(Replica::new(4, config(4), crypto, &[], Sequence(0)).is_err());
}

#[test]
fn the_primary_batches_by_count_by_bytes_and_by_timeout() {
    let batching = Config { batch_requests_max: 3, batch_bytes_max: 10, ..config(4) };
    let mut primary = Replica::new(0, batching, TestCrypto { id: 0 }, &[], Sequence(0)).unwrap();
    let proposed = |effects: &[Effect]| -> Vec<Vec<Vec<u8>>> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Broadcast(SignedMessage {
                    message: Message::PrePrepare { batch, .. },
                    ..
                }) => Some(
                    batch_requests(batch, 3, 10).unwrap().into_iter().map(<[u8]>::to_vec).collect(),
                ),
                _ => None,
            })
            .collect()
    };
    // Two small requests wait for a third (count) or for the batch timer.
    let first = primary.step(Input::Request { request: b"a".to_vec() });
    assert!(proposed(&first).is_empty());
    assert!(first.contains(&Effect::ScheduleTimeout {
        kind: TimeoutKind::Batch { view: View(0) },
        after_ms: 10
    }));
    assert!(proposed(&primary.step(Input::Request { request: b"b".to_vec() })).is_empty());
    // The third fills the batch by count.
    let effects = primary.step(Input::Request { request: b"c".to_vec() });
    assert_eq!(proposed(&effects), vec![vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]]);
    // By bytes: 6 + 6 bytes do not fit in 10, so the first is cut when the second comes.
    assert!(proposed(&primary.step(Input::Request { request: b"dddddd".to_vec() })).is_empty());
    let effects = primary.step(Input::Request { request: b"eeeeee".to_vec() });
    assert_eq!(proposed(&effects), vec![vec![b"dddddd".to_vec()]]);
    // By timeout: the remainder goes out when the batch timer fires.
    let effects = primary.step(Input::Timeout(TimeoutKind::Batch { view: View(0) }));
    assert_eq!(proposed(&effects), vec![vec![b"eeeeee".to_vec()]]);
    // A request larger than a whole batch is refused, not queued.
    let effects = primary.step(Input::Request { request: vec![0; 11] });
    assert!(matches!(effects.as_slice(), [Effect::RequestRefused { .. }]), "{effects:?}");
    primary.check_invariants();
}

/// The requests of every batch a step broadcast a PRE-PREPARE for (the weight tests'
/// limits: at most 8 requests and 1,024 bytes).
fn proposed_batches(effects: &[Effect]) -> Vec<Vec<Vec<u8>>> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Broadcast(SignedMessage {
                message: Message::PrePrepare { batch, .. }, ..
            }) => Some(
                batch_requests(batch, 8, 1024).unwrap().into_iter().map(<[u8]>::to_vec).collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Issue 9, finding 2: a batch holds at most `batch_weight_max` of weight (in the node, the
/// block gas limit over the transactions' gas limits). The primary cuts within it, a
/// request heavier than a whole batch is refused, and backups refuse a heavier batch.
#[test]
fn batches_stay_within_the_weight_limit_at_the_primary_and_the_backups() {
    let weighed =
        Config { batch_requests_max: 8, batch_bytes_max: 1024, batch_weight_max: 10, ..config(4) };
    let mut primary =
        Replica::new(0, weighed.clone(), TestCrypto { id: 0 }, &[], Sequence(0)).unwrap();
    let proposed = |effects: &[Effect]| -> Vec<usize> {
        proposed_batches(effects).iter().map(Vec::len).collect()
    };
    // 6 + 6 weigh more than 10: the first is cut as soon as the second comes (by weight,
    // long before the count or the bytes fill a batch).
    assert!(proposed(&primary.step(Input::Request { request: vec![1; 6] })).is_empty());
    assert_eq!(proposed(&primary.step(Input::Request { request: vec![2; 6] })), vec![1]);
    // Heavier than a whole batch: refused, not queued.
    let effects = primary.step(Input::Request { request: vec![3; 11] });
    assert!(matches!(effects.as_slice(), [Effect::RequestRefused { .. }]), "{effects:?}");
    primary.check_invariants();

    // A faulty primary's batch of weight 12: no backup prepares it, and it is evidence.
    let mut backup = Replica::new(1, weighed, TestCrypto { id: 1 }, &[], Sequence(0)).unwrap();
    let heavy = encode_batch(BatchHeader { view: 0, timestamp_ms: 0 }, &[&vec![4; 6], &vec![5; 6]]);
    let effects = backup.step(Input::Message(pre_prepare(0, 1, heavy)));
    assert!(
        !effects.iter().any(|effect| matches!(
            effect,
            Effect::Broadcast(SignedMessage { message: Message::Prepare { .. }, .. })
        )),
        "{effects:?}"
    );
    assert!(
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::Evidence(Evidence::MalformedBatch { .. })))
    );
    backup.check_invariants();
}

/// Issue 9's attack test: a backlog of heavy requests (a billion gas each) filled the
/// primary's whole window at once, and requests arriving behind it waited for all of it
/// to execute. A primary now proposes ahead of its own execution by at most two batches'
/// weight, and the requests of another group go first once there is room.
#[test]
fn a_primary_proposes_at_most_two_batches_weight_ahead_of_its_execution() {
    let weighed = Config {
        batch_requests_max: 8,
        batch_bytes_max: 1024,
        batch_weight_max: 10,
        weight_ahead_max: 10,
        ..config(4)
    };
    let mut primary = Replica::new(0, weighed, TestCrypto { id: 0 }, &[], Sequence(0)).unwrap();
    let proposed = proposed_batches;
    // Five heavy requests of one group (weight 10: a full batch each), and the batch
    // timer firing.
    let mut first = Vec::new();
    for number in 0..5 {
        let request = [vec![7, number], vec![0; 8]].concat();
        first.extend(proposed(&primary.step(Input::Request { request })));
    }
    let timer = TimeoutKind::Batch { view: View(0) };
    first.extend(proposed(&primary.step(Input::Timeout(timer))));
    assert_eq!(first.len(), 2, "two heavy batches ahead of execution, not the window: {first:?}");
    // A light request of another group arrives: no room yet.
    let light = b"x".to_vec();
    assert!(proposed(&primary.step(Input::Request { request: light.clone() })).is_empty());
    assert!(proposed(&primary.step(Input::Timeout(timer))).is_empty());
    primary.check_invariants();
    // The first batch is decided and executed: room for one more, and it is the light
    // request's (its group has proposed nothing yet).
    let digest = sha3_256(&encode_batch(
        BatchHeader { view: 0, timestamp_ms: 0 },
        &first[0].iter().collect::<Vec<&Vec<u8>>>(),
    ));
    for sender in [1, 2] {
        primary.step(Input::Message(prepare(sender, 0, 1, digest)));
    }
    for sender in [1, 2] {
        primary.step(Input::Message(commit(sender, 0, 1, digest)));
    }
    let effects = primary.step(Input::Executed { sequence: Sequence(1), state_digest: state(1) });
    let effects = [effects, primary.step(Input::Timeout(timer))].concat();
    assert_eq!(proposed(&effects), vec![vec![light]]);
    primary.check_invariants();
}

/// Issue 9, finding 3: a backup prepares a batch only if the primary's timestamp is within
/// `timestamp_skew_max_ms` of its own clock, so a primary cannot back-date a block (to
/// enrol an expired certificate) or post-date one.
#[test]
fn a_backup_prepares_only_batches_stamped_within_the_allowed_skew_of_its_clock() {
    let prepared = |effects: &[Effect]| {
        effects.iter().any(|effect| {
            matches!(
                effect,
                Effect::Broadcast(SignedMessage { message: Message::Prepare { .. }, .. })
            )
        })
    };
    let now = 1_000_000;
    for (stamp, expected) in
        [(now - 10_001, false), (now + 10_001, false), (now - 9_000, true), (now + 9_000, true)]
    {
        let mut backup = replica(1, 4, &[], 0);
        backup.observe_time(now);
        let batch = encode_batch(BatchHeader { view: 0, timestamp_ms: stamp }, &[b"r"]);
        let effects = backup.step(Input::Message(pre_prepare(0, 1, batch)));
        assert_eq!(prepared(&effects), expected, "stamped {stamp}, clock {now}: {effects:?}");
        assert!(
            !effects.iter().any(|effect| matches!(effect, Effect::Evidence(_))),
            "a distant clock is not proof of a fault"
        );
    }
}

#[test]
fn a_replica_restarted_below_its_stable_checkpoint_fetches_the_state() {
    // A crash between persisting a stable checkpoint and fetching its state: the records
    // say 8 is stable, the state reflects only 3.
    let checkpoint = checkpoint_certificate(8, &[0, 1, 2]);
    let records = vec![Record::Stable(checkpoint.clone())];
    let mut restarted = replica(3, 4, &records, 3);
    let effects = restarted.start();
    assert!(
        effects.contains(&Effect::RequestStateTransfer { checkpoint: checkpoint.clone() }),
        "{effects:?}"
    );
    // Asked once: the retransmission tick does not ask again while the fetch is under way.
    let again = restarted.step(Input::Timeout(TimeoutKind::Retransmit));
    assert!(!again.iter().any(|effect| matches!(effect, Effect::RequestStateTransfer { .. })));
    // Done: the replica is at 8 and sends its own CHECKPOINT there.
    let effects = restarted.step(Input::StateTransferred {
        sequence: Sequence(8),
        state_digest: checkpoint.state_digest,
        requests: Vec::new(),
    });
    restarted.check_invariants();
    assert_eq!(restarted.last_executed(), Sequence(8));
    assert!(effects.iter().any(|effect| matches!(
        effect,
        Effect::Broadcast(SignedMessage { message: Message::Checkpoint { .. }, .. })
    )));
}

#[test]
fn a_backlog_of_unexecuted_deliveries_holds_further_deliveries_back() {
    // Execution is slow: the replica delivers at most `delivery_backlog_max` batches
    // beyond what was executed, and resumes as execution reports progress.
    let slow = Config {
        delivery_backlog_max: 2,
        watermark_window: 8,
        checkpoint_interval: 4,
        ..config(4)
    };
    let mut backup = Replica::new(1, slow, TestCrypto { id: 1 }, &[], Sequence(0)).unwrap();
    let mut delivered = Vec::new();
    for sequence in 1..=5u64 {
        let batch = batch_in(0, &[sequence as u8]);
        let digest = sha3_256(&batch);
        let mut inputs = vec![Input::Message(pre_prepare(0, sequence, batch))];
        inputs.extend([0, 2, 3].map(|sender| Input::Message(commit(sender, 0, sequence, digest))));
        for effect in feed(&mut backup, inputs) {
            if let Effect::Deliver(delivery) = effect {
                delivered.push(delivery.sequence.0);
            }
        }
    }
    assert_eq!(delivered, [1, 2], "two delivered, none executed: the rest wait");
    let effects =
        feed(&mut backup, [Input::Executed { sequence: Sequence(1), state_digest: state(1) }]);
    let more: Vec<u64> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Deliver(delivery) => Some(delivery.sequence.0),
            _ => None,
        })
        .collect();
    assert_eq!(more, [3]);
}

#[test]
fn a_request_delivered_but_not_yet_executed_is_not_taken_again_however_far_checkpoints_move() {
    // Found by the 100-cycle chaos soak: a restarted validator executing far behind its
    // deliveries (up to `delivery_backlog_max` blocks) got back, from its mempool, requests
    // it had delivered more than two checkpoint windows earlier but not yet executed; it
    // had forgotten delivering them, took them as new, and as primary proposed them again
    // (515 transfers included twice; the executor gave the copies `Invalid` receipts).
    let slow = Config { delivery_backlog_max: 64, ..config(4) };
    let mut backup = Replica::new(1, slow, TestCrypto { id: 1 }, &[], Sequence(0)).unwrap();
    let request = b"transfer".to_vec();
    let batch = batch_in(0, &request);
    let digest = sha3_256(&batch);
    let mut inputs = vec![Input::Message(pre_prepare(0, 1, batch))];
    inputs.extend([0, 2, 3].map(|sender| Input::Message(commit(sender, 0, 1, digest))));
    let delivered = feed(&mut backup, inputs);
    assert!(delivered.iter().any(|effect| matches!(effect, Effect::Deliver(_))));
    // The others execute on and their checkpoints become stable, window after window,
    // while this replica's execution has not reported sequence 1 yet.
    for sequence in [2u64, 4, 6, 8, 10] {
        let vote =
            Message::Checkpoint { sequence: Sequence(sequence), state_digest: state(sequence) };
        feed(&mut backup, [0, 2, 3].map(|sender| Input::Message(signed(sender, vote.clone()))));
    }
    assert!(backup.low_watermark() >= Sequence(8), "{:?}", backup.low_watermark());
    assert_eq!(backup.last_executed(), Sequence(0));
    // The mempool hands the request over again, as it does until execution evicts it.
    feed(&mut backup, [Input::Request { request }]);
    assert_eq!(backup.pending_requests(), 0, "a delivered request was taken as new");
    backup.check_invariants();
}
