//! Regression tests for the consensus findings of issue 7 (review against Castro and
//! Liskov, TOCS 2002). Each test states the correct behaviour; each failed on the code the
//! review was written against (commit "Consensus regression tests for issue 7's
//! findings", where they were written against the old interface).

mod common;

use common::{
    TestCrypto, batch_in, certificate, checkpoint_certificate, commit, config, feed, new_view_from,
    pre_prepare, prepare, records, replica, signed, suspect, view_change,
};
use pactum_consensus::{
    CheckpointCertificate, Config, Delivery, Effect, Evidence, Input, Message, Record, Replica,
    ReplicaId, Sequence, SignedMessage, TimeoutKind, View,
};
use pactum_types::hash::sha3_256;
use pactum_types::{Encode, Hash, limits};

const N: u16 = 4;

fn genesis() -> CheckpointCertificate {
    CheckpointCertificate::genesis()
}

fn deliveries(effects: &[Effect]) -> Vec<Delivery> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Deliver(delivery) => Some(delivery.clone()),
            _ => None,
        })
        .collect()
}

/// Finding 1: a NEW-VIEW of a view the others abandoned arrives late at R (replica 3),
/// after R learned view 2's decision D at sequence 2 but before it could deliver it. R must
/// not replace D with the stale re-proposal X.
#[test]
fn finding_1_a_stale_new_view_never_overwrites_a_learned_decision() {
    let x = batch_in(0, b"X");
    let d = batch_in(2, b"D");
    let c = batch_in(2, b"C");
    // Replica 2 holds a view-0 prepared certificate for X at 2 and puts it in VIEW-CHANGE(1);
    // the primary of view 1 re-proposes X there. Everyone but R then moves on to view 2.
    let stale = new_view_from(
        1,
        &[
            view_change(0, 1, genesis(), vec![]),
            view_change(2, 1, genesis(), vec![certificate(0, 2, &x, &[1, 2])]),
        ],
    )
    .unwrap();
    let mut r = replica(3, N, &[], 0);
    // View 2 decides D at 2: R, still in view 0, learns it from the COMMIT certificate.
    let digest_d = sha3_256(&d);
    let mut effects =
        feed(&mut r, (0..3).map(|sender| Input::Message(commit(sender, 2, 2, digest_d))));
    effects.extend(feed(&mut r, [Input::Message(pre_prepare(2, 2, d.clone()))]));
    // Then the stale NEW-VIEW(1) arrives, and view 2's decision C at 1.
    effects.extend(feed(&mut r, [Input::Message(stale)]));
    let digest_c = sha3_256(&c);
    effects
        .extend(feed(&mut r, (0..3).map(|sender| Input::Message(commit(sender, 2, 1, digest_c)))));
    effects.extend(feed(&mut r, [Input::Message(pre_prepare(2, 1, c.clone()))]));
    // R may need to fetch D (the PRE-PREPARE of a view it never entered is not kept unless
    // it waits for that digest); answer its fetches.
    for effect in effects.clone() {
        if let Effect::Send {
            to,
            message: SignedMessage { message: Message::FetchBatch { digest }, .. },
        } = effect
        {
            let batch = if digest == digest_d { d.clone() } else { c.clone() };
            effects.extend(feed(
                &mut r,
                [Input::Message(signed(to, Message::Batch { digest, batch }))],
            ));
        }
    }
    let delivered: Vec<(u64, Hash)> = deliveries(&effects)
        .iter()
        .map(|delivery| (delivery.sequence.0, delivery.certificate.digest))
        .collect();
    assert_eq!(delivered, vec![(1, digest_c), (2, digest_d)], "R forked from the decided chain");
    assert!(
        effects
            .contains(&Effect::Evidence(Evidence::ConflictingDecision { sequence: Sequence(2) })),
        "the stale re-proposal conflicts with the decision"
    );
}

/// Finding 2: a sequence committed in view 0 but not yet delivered (a gap below it) is
/// delivered after a view change with the certificate of the view it was committed in.
#[test]
fn finding_2_a_delivery_carries_the_certificate_it_was_decided_by() {
    let d = batch_in(0, b"D");
    let digest_d = sha3_256(&d);
    let mut r = replica(3, N, &[], 0);
    let mut inputs = vec![Input::Message(pre_prepare(0, 2, d.clone()))];
    inputs.extend([1, 2].map(|sender| Input::Message(prepare(sender, 0, 2, digest_d))));
    inputs.extend([0, 1].map(|sender| Input::Message(commit(sender, 0, 2, digest_d))));
    let mut effects = feed(&mut r, inputs);
    assert!(deliveries(&effects).is_empty(), "sequence 1 is still missing");
    // View 1 re-proposes D at 2 and a null batch at 1; everyone commits both in view 1,
    // but R hears only the COMMITs for 1.
    let new_view = new_view_from(
        1,
        &[
            view_change(0, 1, genesis(), vec![]),
            view_change(2, 1, genesis(), vec![certificate(0, 2, &d, &[2, 3])]),
        ],
    )
    .unwrap();
    effects.extend(feed(&mut r, [Input::Message(new_view)]));
    let null = sha3_256(&[]);
    effects.extend(feed(&mut r, [0, 2].map(|sender| Input::Message(prepare(sender, 1, 1, null)))));
    effects
        .extend(feed(&mut r, [0, 1, 2].map(|sender| Input::Message(commit(sender, 1, 1, null)))));
    let delivered = deliveries(&effects);
    assert_eq!(delivered.iter().map(|delivery| delivery.sequence.0).collect::<Vec<_>>(), [1, 2]);
    for delivery in &delivered {
        delivery
            .certificate
            .verify(&config(N), &TestCrypto { id: 3 })
            .expect("the certificate it was decided by");
        assert_eq!(delivery.certificate.sequence, delivery.sequence);
    }
    assert_eq!(delivered[1].certificate.view, View(0), "decided by view 0's COMMITs");
}

/// Finding 3: a replica that prepared a batch and restarted still reports its prepared
/// certificate in its next VIEW-CHANGE.
#[test]
fn finding_3_prepared_certificates_survive_a_restart() {
    let x = batch_in(0, b"X");
    let digest = sha3_256(&x);
    let mut backup = replica(1, N, &[], 0);
    let effects = feed(
        &mut backup,
        [
            Input::Message(pre_prepare(0, 1, x)),
            Input::Message(prepare(2, 0, 1, digest)),
            Input::Message(prepare(3, 0, 1, digest)),
        ],
    );
    assert!(
        effects.iter().any(|effect| matches!(
            effect,
            Effect::Broadcast(SignedMessage { message: Message::Commit { .. }, .. })
        )),
        "the backup prepared"
    );
    let mut restarted = replica(1, N, &records(&effects), 0);
    let effects = feed(&mut restarted, [2, 3].map(|sender| Input::Message(suspect(sender, 0))));
    let prepared = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::Broadcast(SignedMessage {
                message: Message::ViewChange { prepared, .. },
                ..
            }) => Some(prepared.clone()),
            _ => None,
        })
        .expect("f + 1 suspicions start a view change");
    assert_eq!(prepared.len(), 1, "the VIEW-CHANGE must carry the prepared certificate");
    prepared[0].verify(&config(N), &TestCrypto { id: 1 }).unwrap();
    assert_eq!(prepared[0].digest, digest);
}

/// Finding 4: with large batches and a full window, a VIEW-CHANGE still fits in a frame.
#[test]
fn finding_4_a_view_change_with_a_full_window_of_large_batches_fits_in_a_frame() {
    let config = Config {
        watermark_window: 64,
        checkpoint_interval: 16,
        batch_bytes_max: 1024 * 1024,
        ..config(N)
    };
    let mut backup = Replica::new(1, config, TestCrypto { id: 1 }, &[], Sequence(0)).unwrap();
    for sequence in 1..=64u64 {
        let request = vec![sequence as u8; 1024 * 1024 - 64];
        let batch = batch_in(0, &request);
        let digest = sha3_256(&batch);
        feed(
            &mut backup,
            [
                Input::Message(pre_prepare(0, sequence, batch)),
                Input::Message(prepare(2, 0, sequence, digest)),
                Input::Message(prepare(3, 0, sequence, digest)),
            ],
        );
    }
    let effects = feed(&mut backup, [2, 3].map(|sender| Input::Message(suspect(sender, 0))));
    let view_change = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::Broadcast(
                message @ SignedMessage { message: Message::ViewChange { .. }, .. },
            ) => Some(message.clone()),
            _ => None,
        })
        .expect("a view change");
    let bytes = view_change.to_bytes().len();
    assert!(
        bytes <= limits::NETWORK_FRAME_BYTES_MAX,
        "a VIEW-CHANGE of {bytes} bytes does not fit a frame of {}",
        limits::NETWORK_FRAME_BYTES_MAX
    );
    let Message::ViewChange { prepared, .. } = &view_change.message else { unreachable!() };
    assert_eq!(prepared.len(), 64, "every prepared sequence number is reported, by digest");
}

/// Finding 4, second half: the new primary does not re-broadcast its NEW-VIEW for the
/// whole life of the view; it answers whoever is still behind.
#[test]
fn finding_4_the_new_primary_does_not_rebroadcast_its_new_view_forever() {
    let mut new_primary = replica(1, N, &[], 0);
    let effects = feed(
        &mut new_primary,
        [0, 2, 3].map(|sender| Input::Message(view_change(sender, 1, genesis(), vec![]))),
    );
    assert!(
        effects.iter().any(|effect| matches!(effect, Effect::ViewEntered { view: View(1), .. }))
    );
    for _ in 0..3 {
        let effects = feed(&mut new_primary, [Input::Timeout(TimeoutKind::Retransmit)]);
        assert!(
            !effects.iter().any(|effect| matches!(
                effect,
                Effect::Broadcast(SignedMessage { message: Message::NewView { .. }, .. })
                    | Effect::Send {
                        message: SignedMessage { message: Message::NewView { .. }, .. },
                        ..
                    }
            )),
            "a NEW-VIEW is re-sent to whoever still asks for the view, not to everyone forever"
        );
    }
    // Replica 3 is still in view 0 (it suspects view 0): it gets the NEW-VIEW, once a tick.
    let sent_to_3 = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|effect| {
                matches!(
                    effect,
                    Effect::Send {
                        to: 3,
                        message: SignedMessage { message: Message::NewView { .. }, .. }
                    }
                )
            })
            .count()
    };
    let effects =
        feed(&mut new_primary, [Input::Message(suspect(3, 0)), Input::Message(suspect(3, 0))]);
    assert_eq!(sent_to_3(&effects), 1);
}

/// Finding 5: a primary that keeps ordering other batches cannot hold back one request
/// forever: the backup's timer watches that request, not deliveries in general.
#[test]
fn finding_5_a_primary_ordering_other_batches_cannot_censor_a_request() {
    let mut backup = replica(1, N, &[], 0);
    let mut timers: Vec<TimeoutKind> = Vec::new();
    let mut suspected = false;
    let mut collect = |effects: Vec<Effect>, timers: &mut Vec<TimeoutKind>| {
        for effect in effects {
            match effect {
                Effect::ScheduleTimeout { kind: kind @ TimeoutKind::Request { .. }, .. } => {
                    timers.push(kind)
                }
                Effect::Broadcast(SignedMessage { message: Message::Suspect { .. }, .. }) => {
                    suspected = true
                }
                _ => {}
            }
        }
    };
    collect(feed(&mut backup, [Input::Request { request: b"censored".to_vec() }]), &mut timers);
    // Config L = 4, K = 2: sequence numbers 1..=3 stay inside the window.
    for sequence in 1..=3u64 {
        let batch = batch_in(0, format!("other {sequence}").as_bytes());
        let digest = sha3_256(&batch);
        let mut inputs = vec![Input::Message(pre_prepare(0, sequence, batch))];
        inputs.extend([2, 3].map(|sender| Input::Message(prepare(sender, 0, sequence, digest))));
        inputs.extend([0, 2].map(|sender| Input::Message(commit(sender, 0, sequence, digest))));
        let effects = feed(&mut backup, inputs);
        assert_eq!(deliveries(&effects).len(), 1, "the primary orders another batch");
        collect(effects, &mut timers);
        // The request timer fires after each delivery.
        for kind in std::mem::take(&mut timers) {
            collect(feed(&mut backup, [Input::Timeout(kind)]), &mut timers);
        }
    }
    assert!(suspected, "the backup never suspected the primary that held its request back");
}

/// Finding 6: a replica many views behind accepts a valid (self-certifying) NEW-VIEW.
#[test]
fn finding_6_a_replica_far_behind_in_views_joins_on_a_valid_new_view() {
    // Built by hand: the VIEW-CHANGEs of replicas 1, 2 and 3 for view 100, and the
    // NEW-VIEW of its primary (replica 0) with nothing to re-propose.
    let view = 100;
    let new_view = signed(
        0,
        Message::NewView {
            view: View(view),
            view_changes: (1..N)
                .map(|sender| view_change(sender, view, genesis(), vec![]))
                .collect(),
            pre_prepares: Vec::new(),
        },
    );
    let mut behind = replica(3, N, &[], 0);
    let effects = feed(&mut behind, [Input::Message(new_view)]);
    assert!(
        effects.iter().any(|effect| matches!(effect, Effect::ViewEntered { view: View(100), .. })),
        "{effects:?}"
    );
}

/// Finding 7: a state transfer that did not complete is asked for again, even if the
/// cluster is idle and no higher checkpoint comes along.
#[test]
fn finding_7_a_state_transfer_that_did_not_complete_is_asked_for_again() {
    let mut behind = replica(3, N, &[], 0);
    let checkpoint = checkpoint_certificate(8, &[0, 1]);
    let count = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|effect| matches!(effect, Effect::RequestStateTransfer { .. }))
            .count()
    };
    let mut asked = 0;
    for (sender, signature) in &checkpoint.signatures {
        let message =
            Message::Checkpoint { sequence: Sequence(8), state_digest: checkpoint.state_digest };
        let effects = feed(
            &mut behind,
            [Input::Message(SignedMessage { sender: *sender, message, signature: *signature })],
        );
        asked += count(&effects);
    }
    assert_eq!(asked, 1, "f + 1 CHECKPOINTs above the window start a state transfer");
    // Nobody answers, and nothing else happens in the cluster.
    for _ in 0..10 {
        asked += count(&feed(&mut behind, [Input::Timeout(TimeoutKind::Retransmit)]));
    }
    assert!(asked >= 2, "the replica never asked for the state again");
    // A fetch that gave up is asked again at the next tick.
    let before = asked;
    feed(&mut behind, [Input::StateTransferFailed { sequence: Sequence(8) }]);
    asked += count(&feed(&mut behind, [Input::Timeout(TimeoutKind::Retransmit)]));
    assert_eq!(asked, before + 1);
}

/// Finding 7: a replica the primary skipped (it never gets the PRE-PREPARE) still gets
/// the batch from its peers once the others decide it.
#[test]
fn finding_7_a_replica_the_primary_skipped_gets_the_batch_from_its_peers() {
    let mut cluster = common::Cluster::new(N);
    // The primary never sends its PRE-PREPARE to replica 3.
    cluster.drop = Box::new(|to: ReplicaId, message: &SignedMessage| {
        to == 3 && matches!(message.message, Message::PrePrepare { .. })
    });
    for id in 0..N {
        cluster.queue.push_back((id, Input::Request { request: b"skipped".to_vec() }));
    }
    cluster.run();
    assert_eq!(cluster.delivered[0].len(), 1, "the others decide the batch");
    assert_eq!(cluster.delivered[3], cluster.delivered[0], "replica 3 never got the batch");
}

/// Finding 8: a normal-case PRE-PREPARE must carry a batch cut in its own view; only a
/// NEW-VIEW re-proposes a batch of an earlier view.
#[test]
fn finding_8_a_normal_case_batch_names_its_own_view() {
    let new_view = new_view_from(
        1,
        &[view_change(0, 1, genesis(), vec![]), view_change(2, 1, genesis(), vec![])],
    )
    .unwrap();
    let mut backup = replica(3, N, &[], 0);
    feed(&mut backup, [Input::Message(new_view)]);
    assert_eq!(backup.view(), View(1));
    let effects =
        feed(&mut backup, [Input::Message(pre_prepare(1, 1, batch_in(0, b"back-dated")))]);
    assert!(
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::Evidence(Evidence::MalformedBatch { .. }))),
        "a batch naming view 0 was accepted in view 1's normal case: {effects:?}"
    );
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::Persist(Record::Accepted(_)))));
}

/// Finding 8: records of views a replica has left, and of sequence numbers below its
/// stable checkpoint, are obsolete, so the consensus log stays bounded across view changes.
#[test]
fn finding_8_view_change_records_do_not_accumulate() {
    let mut floor = pactum_consensus::LogFloor::default();
    let mut log: Vec<Record> = Vec::new();
    for view in 1..=20u64 {
        let vc = view_change(2, view, genesis(), vec![]);
        let nv = signed(
            primary_of(view),
            Message::NewView {
                view: View(view),
                view_changes: Vec::new(),
                pre_prepares: Vec::new(),
            },
        );
        for record in [Record::Sent(vc), Record::Accepted(nv)] {
            floor.observe(&record);
            log.push(record);
            log.retain(|kept| !kept.obsolete(&floor));
        }
    }
    assert_eq!(log.len(), 1, "only the NEW-VIEW of the current view remains: {log:?}");
}

/// Found by the Twins soak (`simulate -- --twins-random 412468`): a replica crashed after
/// its executor committed checkpoint block 2 but before the replica persisted its
/// CHECKPOINT. Restarted with sequence 2 executed and told that state again, it must sign
/// that CHECKPOINT: otherwise it only ever repeats an older one, a stable checkpoint may
/// never form, and a replica left behind never sees f + 1 matching ones to fetch.
#[test]
fn a_replica_restarted_after_executing_a_checkpoint_it_never_signed_signs_it() {
    let mut restarted = replica(1, N, &[], 2);
    let _ = restarted.start();
    let state_digest = Hash([7; 32]);
    let effects = feed(&mut restarted, [Input::Executed { sequence: Sequence(2), state_digest }]);
    let signed_it = effects.iter().any(|effect| {
        matches!(effect, Effect::Broadcast(message)
            if message.message == Message::Checkpoint { sequence: Sequence(2), state_digest })
    });
    assert!(signed_it, "no CHECKPOINT for the executed sequence: {effects:?}");
    let again = feed(&mut restarted, [Input::Executed { sequence: Sequence(2), state_digest }]);
    assert!(
        !again.iter().any(|effect| matches!(effect, Effect::Broadcast(_))),
        "signed only once: {again:?}"
    );
}

fn primary_of(view: u64) -> ReplicaId {
    common::primary_of(view, N)
}
