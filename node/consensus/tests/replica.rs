//! The replica alone and in a hand-driven cluster: the normal case (PBFT §4.2),
//! checkpoints (§4.3), Byzantine input as evidence, and recovery from persisted records.
//! Golden file: `golden/quorum.txt` (refresh with `PACTUM_UPDATE_GOLDEN=1`).

mod common;

use common::{Cluster, TestCrypto, config, replica, signed};
use pactum_consensus::SignedMessage;
use pactum_consensus::{
    BatchHeader, Effect, Evidence, Input, Message, Record, Replica, encode_batch,
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
            (0..=u64::from(replicas)).map(|view| config.primary(view).to_string()).collect();
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
        assert_eq!(replica.low_watermark(), 10, "checkpoint 10 is stable everywhere");
    }
    assert!(cluster.evidence.is_empty(), "{:?}", cluster.evidence);
    // Persist before send: every message a replica broadcast is in its records.
    assert!(cluster.records.iter().all(|records| !records.is_empty()));
}

#[test]
fn the_window_holds_proposals_until_a_checkpoint_is_stable() {
    let mut primary = replica(0, 4, &[], 0);
    let mut broadcasts = 0;
    for index in 0..6u8 {
        for effect in primary.step(Input::Request { request: vec![index] }) {
            if matches!(effect, Effect::Broadcast(_)) {
                broadcasts += 1;
            }
            // With the window full, no batch timer spins: the next stable checkpoint
            // resumes batching.
            assert!(
                index < 4
                    || !matches!(
                        effect,
                        Effect::ScheduleTimeout {
                            kind: pactum_consensus::TimeoutKind::Batch { .. },
                            ..
                        }
                    ),
                "request {index}: {effect:?}"
            );
        }
    }
    assert_eq!(broadcasts, 4, "only sequence numbers 1..=h+L (L = 4) are proposed");
}

#[test]
fn byzantine_input_becomes_evidence_not_a_panic() {
    let mut backup = replica(1, 4, &[], 0);
    let batch = encode_batch(BatchHeader::default(), &[b"batch"]);
    let digest = sha3_256(&batch);

    // A PRE-PREPARE from a replica that is not the primary of view 0.
    let effects = backup.step(Input::Message(signed(
        2,
        Message::PrePrepare { view: 0, sequence: 1, digest, batch: batch.clone() },
    )));
    assert!(effects.contains(&Effect::Evidence(Evidence::NotPrimary { sender: 2, view: 0 })));

    // A bad signature.
    let mut forged =
        signed(0, Message::PrePrepare { view: 0, sequence: 1, digest, batch: batch.clone() });
    forged.signature.0[5] ^= 1;
    let effects = backup.step(Input::Message(forged));
    assert!(
        effects
            .contains(&Effect::Evidence(Evidence::BadSignature { sender: 0, kind: "pre-prepare" }))
    );

    // A batch that does not match its digest.
    let effects = backup.step(Input::Message(signed(
        0,
        Message::PrePrepare { view: 0, sequence: 1, digest: Hash([9; 32]), batch: batch.clone() },
    )));
    assert!(
        effects
            .contains(&Effect::Evidence(Evidence::BatchDigestMismatch { sender: 0, sequence: 1 }))
    );

    // A batch that is not a list of requests within the batch limits.
    let junk = b"not a batch".to_vec();
    let effects = backup.step(Input::Message(signed(
        0,
        Message::PrePrepare { view: 0, sequence: 1, digest: sha3_256(&junk), batch: junk },
    )));
    assert!(
        effects.contains(&Effect::Evidence(Evidence::MalformedBatch { sender: 0, sequence: 1 }))
    );

    // The real PRE-PREPARE is accepted and prepared (persisted before it is broadcast).
    let effects = backup.step(Input::Message(signed(
        0,
        Message::PrePrepare { view: 0, sequence: 1, digest, batch },
    )));
    let persist =
        effects.iter().position(|effect| matches!(effect, Effect::Persist(Record::Sent(_))));
    let broadcast = effects.iter().position(|effect| matches!(effect, Effect::Broadcast(_)));
    assert!(persist.unwrap() < broadcast.unwrap(), "persist before send");

    // The primary equivocates: a second PRE-PREPARE for (0, 1) with another batch.
    let other = encode_batch(BatchHeader::default(), &[b"other"]);
    let effects = backup.step(Input::Message(signed(
        0,
        Message::PrePrepare { view: 0, sequence: 1, digest: sha3_256(&other), batch: other },
    )));
    assert!(effects.contains(&Effect::Evidence(Evidence::Equivocation {
        sender: 0,
        view: 0,
        sequence: 1
    })));

    // Conflicting votes from one replica.
    backup.step(Input::Message(signed(2, Message::Prepare { view: 0, sequence: 1, digest })));
    let effects = backup.step(Input::Message(signed(
        2,
        Message::Prepare { view: 0, sequence: 1, digest: Hash([7; 32]) },
    )));
    assert!(effects.contains(&Effect::Evidence(Evidence::ConflictingVote {
        sender: 2,
        kind: "prepare",
        view: 0,
        sequence: 1
    })));

    // Out of the window, from another view, and from a replica that does not exist.
    let effects =
        backup.step(Input::Message(signed(2, Message::Commit { view: 0, sequence: 99, digest })));
    assert!(effects.iter().any(|effect| matches!(
        effect,
        Effect::Evidence(Evidence::OutOfWindow { sequence: 99, .. })
    )));
    // (A COMMIT from a later view is not misbehaviour: a replica behind in views learns
    // decisions from them. A PREPARE from a view it is not in is out of place.)
    let effects =
        backup.step(Input::Message(signed(2, Message::Prepare { view: 5, sequence: 1, digest })));
    assert!(effects.contains(&Effect::Evidence(Evidence::WrongView {
        sender: 2,
        view: 5,
        current: 0
    })));
    let effects =
        backup.step(Input::Message(signed(9, Message::Commit { view: 0, sequence: 1, digest })));
    assert!(effects.contains(&Effect::Evidence(Evidence::UnknownSender { sender: 9 })));
}

#[test]
fn a_restarted_replica_never_prepares_a_conflicting_batch() {
    let batch = encode_batch(BatchHeader::default(), &[b"first"]);
    let digest = sha3_256(&batch);
    let mut backup = replica(1, 4, &[], 0);
    let mut records = Vec::new();
    for effect in backup.step(Input::Message(signed(
        0,
        Message::PrePrepare { view: 0, sequence: 1, digest, batch },
    ))) {
        if let Effect::Persist(record) = effect {
            records.push(record);
        }
    }
    // Crash, restart from the records, and receive an equivocating PRE-PREPARE.
    let mut restarted = replica(1, 4, &records, 0);
    let other = encode_batch(BatchHeader::default(), &[b"second"]);
    let effects = restarted.step(Input::Message(signed(
        0,
        Message::PrePrepare { view: 0, sequence: 1, digest: sha3_256(&other), batch: other },
    )));
    assert!(
        !effects.iter().any(|effect| matches!(effect, Effect::Broadcast(_))),
        "no conflicting PREPARE: {effects:?}"
    );
    assert!(effects.contains(&Effect::Evidence(Evidence::Equivocation {
        sender: 0,
        view: 0,
        sequence: 1
    })));
}

#[test]
fn bad_configurations_are_refused() {
    let crypto = TestCrypto { id: 0 };
    assert!(Replica::new(0, config(3), crypto.clone(), &[], 0).is_err());
    let mut window = config(4);
    window.watermark_window = 3;
    assert!(Replica::new(0, window, crypto.clone(), &[], 0).is_err());
    assert!(Replica::new(4, config(4), crypto, &[], 0).is_err());
}

#[test]
fn the_primary_batches_by_count_by_bytes_and_by_timeout() {
    use pactum_consensus::{Config, TimeoutKind, batch_requests};

    let batching = Config { batch_requests_max: 3, batch_bytes_max: 10, ..config(4) };
    let mut primary = Replica::new(0, batching, TestCrypto { id: 0 }, &[], 0).unwrap();
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
    assert!(
        first.contains(&Effect::ScheduleTimeout {
            kind: TimeoutKind::Batch { view: 0 },
            after_ms: 10
        })
    );
    assert!(proposed(&primary.step(Input::Request { request: b"b".to_vec() })).is_empty());
    // The third fills the batch by count.
    let effects = primary.step(Input::Request { request: b"c".to_vec() });
    assert_eq!(proposed(&effects), vec![vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]]);
    // By bytes: 6 + 6 bytes do not fit in 10, so the first is cut when the second comes.
    assert!(proposed(&primary.step(Input::Request { request: b"dddddd".to_vec() })).is_empty());
    let effects = primary.step(Input::Request { request: b"eeeeee".to_vec() });
    assert_eq!(proposed(&effects), vec![vec![b"dddddd".to_vec()]]);
    // By timeout: the remainder goes out when the batch timer fires.
    let effects = primary.step(Input::Timeout(TimeoutKind::Batch { view: 0 }));
    assert_eq!(proposed(&effects), vec![vec![b"eeeeee".to_vec()]]);
    // A request larger than a whole batch is refused, not queued.
    let effects = primary.step(Input::Request { request: vec![0; 11] });
    assert!(matches!(effects.as_slice(), [Effect::RequestRefused { .. }]), "{effects:?}");
}

#[test]
fn a_replica_restarted_below_its_stable_checkpoint_fetches_the_state() {
    // A crash between persisting a stable checkpoint and fetching its state: the records
    // say 8 is stable, the state reflects only 3.
    let state_digest = sha3_256(b"state at 8");
    let proof: Vec<SignedMessage> = (0..3)
        .map(|sender| signed(sender, Message::Checkpoint { sequence: 8, state_digest }))
        .collect();
    let records = vec![Record::Stable { sequence: 8, state_digest, proof: proof.clone() }];
    let mut restarted = replica(3, 4, &records, 3);
    let effects = restarted.start();
    assert!(
        effects.contains(&Effect::RequestStateTransfer { sequence: 8, state_digest, proof }),
        "{effects:?}"
    );
    // Asked once: the retransmission tick does not ask again while the fetch is under way.
    let again = restarted.step(Input::Timeout(pactum_consensus::TimeoutKind::Retransmit));
    assert!(!again.iter().any(|effect| matches!(effect, Effect::RequestStateTransfer { .. })));
}
