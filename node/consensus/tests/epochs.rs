//! Epochs (ADR 0021): an epoch orders nothing past its last sequence number once told,
//! the next epoch starts above it with its own members, view 0 and signatures that no
//! other epoch accepts.

mod common;

use common::{CHAIN, Cluster, TestCrypto, config, signature_of, signed, state};
use pactum_consensus::{
    CertificateError, CheckpointCertificate, CheckpointStrength, Config, ConfigError, Effect,
    Evidence, Input, Message, Replica, ReplicaId, Sequence, SignedMessage, View, epoch_identity,
    epoch_last_sequence,
};
use pactum_types::Hash;

/// Epoch 1 of the test chain: replicas 1 to 4 (0 left, 4 joined), after sequence 4.
fn epoch_one() -> Config {
    Config {
        members: vec![1, 2, 3, 4],
        epoch: 1,
        chain: epoch_identity(&CHAIN, 1),
        start: Sequence(4),
        start_digest: state(4),
        ..config(4)
    }
}

fn signed_in(config: &Config, sender: ReplicaId, message: Message) -> SignedMessage {
    let signature = signature_of(sender, &message.signing_bytes(&config.chain, sender));
    SignedMessage { sender, message, signature }
}

#[test]
fn the_last_sequence_of_an_epoch_is_a_checkpoint_a_whole_window_past_the_decision() {
    // Interval 2, window 4: decided at 1 -> the first checkpoint at or after 5 is 6.
    assert_eq!(epoch_last_sequence(Sequence(1), 2, 4), Sequence(6));
    assert_eq!(epoch_last_sequence(Sequence(2), 2, 4), Sequence(6));
    assert_eq!(epoch_last_sequence(Sequence(3), 2, 4), Sequence(8));
    // The node's defaults: interval 16, window 64.
    assert_eq!(epoch_last_sequence(Sequence(100), 16, 64), Sequence(176));
    for decided in 0..200u64 {
        let last = epoch_last_sequence(Sequence(decided), 16, 64);
        assert!(last.0.is_multiple_of(16) && last.0 >= decided + 64 && last.0 < decided + 80);
    }
    assert_eq!(epoch_identity(&CHAIN, 0), CHAIN, "epoch 0 signs what the genesis signed");
    assert_ne!(epoch_identity(&CHAIN, 1), epoch_identity(&CHAIN, 2));
}

#[test]
fn an_epoch_told_its_end_orders_up_to_it_and_no_further() {
    let mut cluster = Cluster::new(4);
    for index in 0..8u8 {
        cluster.queue.push_back((0, Input::Request { request: vec![index; 16] }));
    }
    for id in 0..4 {
        cluster.queue.push_back((id, Input::EpochEnds { last: Sequence(4) }));
    }
    cluster.run();
    for (id, delivered) in cluster.delivered.iter().enumerate() {
        let sequences: Vec<u64> = delivered.iter().map(|(sequence, _)| *sequence).collect();
        assert_eq!(sequences, vec![1, 2, 3, 4], "replica {id}");
    }
    for replica in &cluster.replicas {
        assert!(replica.epoch_finished());
        assert_eq!(replica.epoch_last(), Some(Sequence(4)));
    }
    assert_eq!(cluster.replicas[0].pending_requests(), 4, "the rest waits for the next epoch");
    // A PRE-PREPARE past the end (a primary that did not know it) is not voted on.
    let batch = common::batch_in(0, b"late");
    let digest = pactum_types::hash::sha3_256(&batch);
    let late =
        signed(0, Message::PrePrepare { view: View(0), sequence: Sequence(5), digest, batch });
    let effects = cluster.replicas[1].step(Input::Message(late));
    assert!(
        !effects.iter().any(|effect| matches!(effect, Effect::Broadcast(_))),
        "no PREPARE past the epoch's end: {effects:?}"
    );
    assert!(cluster.evidence.is_empty(), "{:?}", cluster.evidence);
}

#[test]
fn a_replica_told_the_end_late_drops_what_it_held_past_it() {
    let mut cluster = Cluster::new(4);
    // Replica 3 never hears a COMMIT: it holds prepared sequence numbers it cannot decide.
    cluster.drop =
        Box::new(|to, message| to == 3 && matches!(message.message, Message::Commit { .. }));
    for index in 0..4u8 {
        cluster.queue.push_back((0, Input::Request { request: vec![index; 16] }));
        cluster.run();
    }
    assert!(cluster.replicas[3].decisions().count() == 0);
    let effects = cluster.replicas[3].step(Input::EpochEnds { last: Sequence(2) });
    cluster.replicas[3].check_invariants();
    assert!(effects.iter().all(|effect| !matches!(effect, Effect::Deliver(_))));
    assert_eq!(cluster.replicas[3].epoch_last(), Some(Sequence(2)));
}

#[test]
fn the_next_epoch_starts_above_its_base_with_its_own_members_and_signatures() {
    let config = epoch_one();
    assert_eq!(
        Replica::new(0, config.clone(), TestCrypto { id: 0 }, &[], Sequence(4)).err(),
        Some(ConfigError::NotAMember { id: 0, epoch: 1 }),
        "replica 0 left"
    );
    assert!(matches!(
        Replica::new(1, config.clone(), TestCrypto { id: 1 }, &[], Sequence(3)),
        Err(ConfigError::ExecutedBelowStart { .. })
    ));
    let bad_start = Config { start: Sequence(5), ..config.clone() };
    assert!(matches!(bad_start.validate(), Err(ConfigError::BadStart { .. })));

    // The new primary (the lowest member, replica 1) proposes sequence 5 in view 0.
    let mut primary = Replica::new(1, config.clone(), TestCrypto { id: 1 }, &[], Sequence(4))
        .expect("a member that executed the start");
    assert_eq!(primary.low_watermark(), Sequence(4));
    assert!(primary.is_primary());
    let mut effects = primary.start();
    effects.extend(primary.step(Input::Request { request: vec![7; 16] }));
    effects.extend(
        primary.step(Input::Timeout(pactum_consensus::TimeoutKind::Batch { view: View(0) })),
    );
    let proposed: Vec<Sequence> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Broadcast(SignedMessage {
                message: Message::PrePrepare { sequence, .. },
                ..
            }) => Some(*sequence),
            _ => None,
        })
        .collect();
    assert_eq!(proposed, vec![Sequence(5)]);

    // A backup refuses the replica that left, and a vote signed for epoch 0.
    let mut backup = Replica::new(4, config.clone(), TestCrypto { id: 4 }, &[], Sequence(4))
        .expect("the joiner, which executed the start");
    let digest = Hash([9; 32]);
    let vote = Message::Prepare { view: View(0), sequence: Sequence(5), digest };
    let from_leaver = signed_in(&config, 0, vote.clone());
    let old_epoch = signed(2, vote);
    let effects: Vec<Effect> = [from_leaver, old_epoch]
        .into_iter()
        .flat_map(|message| backup.step(Input::Message(message)))
        .collect();
    let evidence: Vec<&Evidence> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Evidence(evidence) => Some(evidence),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            evidence[..],
            [Evidence::UnknownSender { sender: 0 }, Evidence::BadSignature { sender: 2, .. }]
        ),
        "{evidence:?}"
    );
    backup.check_invariants();
}

#[test]
fn the_base_checkpoint_is_the_only_unsigned_one_and_nothing_below_it_is() {
    let config = epoch_one();
    let crypto = TestCrypto { id: 1 };
    let base = config.base_checkpoint();
    assert_eq!(base.verify(&config, &crypto, CheckpointStrength::Stable), Ok(()));
    let wrong_state = CheckpointCertificate { state_digest: Hash([1; 32]), ..base };
    let genesis = CheckpointCertificate::genesis();
    for forged in [wrong_state, genesis] {
        assert_eq!(
            forged.verify(&config, &crypto, CheckpointStrength::Weak),
            Err(CertificateError::BadBaseCheckpoint { start: Sequence(4) })
        );
    }
    // A certificate of epoch 0's replicas at sequence 8 does not count in epoch 1.
    let vote = Message::Checkpoint { sequence: Sequence(8), state_digest: state(8) };
    let signatures = [0u16, 1, 2]
        .into_iter()
        .map(|id| (id, signature_of(id, &vote.signing_bytes(&CHAIN, id))))
        .collect();
    let old = CheckpointCertificate { sequence: Sequence(8), state_digest: state(8), signatures };
    assert!(old.verify(&config, &crypto, CheckpointStrength::Weak).is_err());
}

#[test]
fn an_epoch_with_nothing_to_order_closes_with_null_batches() {
    let mut cluster = Cluster::new(4);
    cluster.queue.push_back((0, Input::Request { request: vec![1; 16] }));
    cluster.run();
    // A backup learns the end before the primary: it holds the primary's null batches
    // back until it too knows (no evidence: an honest primary sent them).
    cluster.queue.push_back((1, Input::EpochEnds { last: Sequence(4) }));
    cluster.queue.push_back((0, Input::EpochEnds { last: Sequence(4) }));
    cluster.run();
    let null = pactum_types::hash::sha3_256(&[]);
    for id in [2, 3] {
        assert_eq!(cluster.delivered[id].len(), 1, "replica {id} does not know the end yet");
        cluster.queue.push_back((id as ReplicaId, Input::EpochEnds { last: Sequence(4) }));
    }
    cluster.run();
    // Replicas 2 and 3 prepare once the primary re-sends (its retransmission tick).
    cluster.queue.push_back((0, Input::Timeout(pactum_consensus::TimeoutKind::Retransmit)));
    cluster.run();
    for (id, delivered) in cluster.delivered.iter().enumerate() {
        let sequences: Vec<u64> = delivered.iter().map(|(sequence, _)| *sequence).collect();
        assert_eq!(sequences, vec![1, 2, 3, 4], "replica {id}");
        assert!(delivered[1..].iter().all(|(_, digest)| *digest == null), "replica {id}");
    }
    assert!(cluster.evidence.is_empty(), "{:?}", cluster.evidence);
    assert!(cluster.replicas.iter().all(Replica::epoch_finished));
}

#[test]
fn a_backup_watches_for_the_end_of_its_epoch_even_with_no_request_waiting() {
    // Nothing to order, but the epoch must reach its end: a primary that does not close
    // it gets suspected like one that sits on a request.
    let mut backup = common::replica(1, 4, &[], 0);
    let effects = backup.step(Input::EpochEnds { last: Sequence(4) });
    let watched = effects.iter().any(|effect| {
        matches!(
            effect,
            Effect::ScheduleTimeout {
                kind: pactum_consensus::TimeoutKind::Request {
                    watch: pactum_consensus::Watch::Delivery(Sequence(1)),
                    ..
                },
                ..
            }
        )
    });
    assert!(watched, "{effects:?}");
}
