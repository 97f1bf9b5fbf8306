//! Regression tests for the consensus findings of issue 7 (review against Castro and
//! Liskov, TOCS 2002). Each test states the correct behaviour; each failed on the code the
//! review was written against.

mod common;

use common::{config, replica, signature_of, signed};
use pactum_consensus::{
    BatchHeader, Config, Delivery, Effect, Evidence, Input, Message, PreparedCertificate, Record,
    Replica, ReplicaId, SignedMessage, TimeoutKind, encode_batch,
};
use pactum_types::Hash;
use pactum_types::hash::sha3_256;
use pactum_types::limits;

const N: u16 = 4;

fn primary(view: u64) -> ReplicaId {
    (view % u64::from(N)) as ReplicaId
}

fn batch_in(view: u64, request: &[u8]) -> Vec<u8> {
    encode_batch(BatchHeader { view, timestamp_ms: 0 }, &[request])
}

fn pre_prepare_of(view: u64, sequence: u64, batch: Vec<u8>) -> SignedMessage {
    signed(primary(view), Message::PrePrepare { view, sequence, digest: sha3_256(&batch), batch })
}

fn commit(sender: ReplicaId, view: u64, sequence: u64, digest: Hash) -> SignedMessage {
    signed(sender, Message::Commit { view, sequence, digest })
}

fn prepare(sender: ReplicaId, view: u64, sequence: u64, digest: Hash) -> SignedMessage {
    signed(sender, Message::Prepare { view, sequence, digest })
}

fn certificate_of(
    view: u64,
    sequence: u64,
    batch: &[u8],
    preparers: &[ReplicaId],
) -> PreparedCertificate {
    let digest = sha3_256(batch);
    PreparedCertificate {
        pre_prepare: pre_prepare_of(view, sequence, batch.to_vec()),
        prepares: preparers.iter().map(|&sender| prepare(sender, view, sequence, digest)).collect(),
    }
}

fn view_change(
    sender: ReplicaId,
    new_view: u64,
    prepared: Vec<PreparedCertificate>,
) -> SignedMessage {
    signed(
        sender,
        Message::ViewChange {
            new_view,
            stable_sequence: 0,
            stable_digest: Hash::ZERO,
            checkpoint_proof: Vec::new(),
            prepared,
        },
    )
}

/// The NEW-VIEW the primary of `new_view` sends once it holds `view_changes`.
fn new_view_from(new_view: u64, view_changes: &[SignedMessage]) -> SignedMessage {
    let mut new_primary = replica(primary(new_view), N, &[], 0);
    for message in view_changes {
        for effect in new_primary.step(Input::Message(message.clone())) {
            if let Effect::Broadcast(found) = effect
                && matches!(found.message, Message::NewView { .. })
            {
                return found;
            }
        }
    }
    panic!("the primary of view {new_view} sent no NEW-VIEW");
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

fn feed<C: pactum_consensus::Crypto>(
    replica: &mut Replica<C>,
    inputs: impl IntoIterator<Item = Input>,
) -> Vec<Effect> {
    inputs.into_iter().flat_map(|input| replica.step(input)).collect()
}

/// Every delivery carries 2f + 1 COMMITs of its own view, sequence and digest.
fn assert_certificate_valid(delivery: &Delivery) {
    let expected = Message::Commit {
        view: delivery.view,
        sequence: delivery.sequence,
        digest: delivery.digest,
    };
    let mut signers = std::collections::BTreeSet::new();
    for (signer, signature) in &delivery.commit_certificate {
        if signature_of(*signer, &expected.signing_bytes(*signer)) == *signature {
            signers.insert(*signer);
        }
    }
    assert!(
        signers.len() >= 3,
        "sequence {} delivered with {} valid COMMITs of view {}",
        delivery.sequence,
        signers.len(),
        delivery.view
    );
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
        &[view_change(0, 1, vec![]), view_change(2, 1, vec![certificate_of(0, 2, &x, &[1, 2])])],
    );
    let mut r = replica(3, N, &[], 0);
    // View 2 decides D at 2: R, still in view 0, learns it from the COMMIT certificate.
    let digest_d = sha3_256(&d);
    let mut effects =
        feed(&mut r, (0..3).map(|sender| Input::Message(commit(sender, 2, 2, digest_d))));
    effects.extend(r.step(Input::Message(pre_prepare_of(2, 2, d.clone()))));
    // Then the stale NEW-VIEW(1) arrives, and view 2's decision C at 1.
    effects.extend(r.step(Input::Message(stale)));
    let digest_c = sha3_256(&c);
    effects
        .extend(feed(&mut r, (0..3).map(|sender| Input::Message(commit(sender, 2, 1, digest_c)))));
    effects.extend(r.step(Input::Message(pre_prepare_of(2, 1, c.clone()))));
    let delivered: Vec<(u64, Hash)> =
        deliveries(&effects).iter().map(|delivery| (delivery.sequence, delivery.digest)).collect();
    assert_eq!(delivered, vec![(1, digest_c), (2, digest_d)], "R forked from the decided chain");
}

/// Finding 2: a sequence committed in view 0 but not yet delivered (a gap below it) is
/// delivered after a view change with the certificate of the view it was committed in.
#[test]
fn finding_2_a_delivery_carries_the_certificate_it_was_decided_by() {
    let d = batch_in(0, b"D");
    let digest_d = sha3_256(&d);
    let mut r = replica(3, N, &[], 0);
    let mut effects = r.step(Input::Message(pre_prepare_of(0, 2, d.clone())));
    effects.extend(feed(
        &mut r,
        [1, 2].into_iter().map(|sender| Input::Message(prepare(sender, 0, 2, digest_d))),
    ));
    effects.extend(feed(
        &mut r,
        [0, 1].into_iter().map(|sender| Input::Message(commit(sender, 0, 2, digest_d))),
    ));
    assert!(deliveries(&effects).is_empty(), "sequence 1 is still missing");
    // View 1 re-proposes D at 2 and a null batch at 1; everyone commits both in view 1,
    // but R hears only the COMMITs for 1.
    let new_view = new_view_from(
        1,
        &[
            view_change(0, 1, vec![]),
            view_change(2, 1, vec![certificate_of(0, 2, &d, &[2, 3])]),
            view_change(3, 1, vec![]),
        ],
    );
    effects.extend(r.step(Input::Message(new_view)));
    let null = sha3_256(&[]);
    effects.extend(feed(
        &mut r,
        [0, 2].into_iter().map(|sender| Input::Message(prepare(sender, 1, 1, null))),
    ));
    effects.extend(feed(
        &mut r,
        [0, 1, 2].into_iter().map(|sender| Input::Message(commit(sender, 1, 1, null))),
    ));
    let delivered = deliveries(&effects);
    assert_eq!(delivered.iter().map(|delivery| delivery.sequence).collect::<Vec<_>>(), [1, 2]);
    for delivery in &delivered {
        assert_certificate_valid(delivery);
    }
}

/// Finding 3: a replica that prepared a batch and restarted still reports its prepared
/// certificate in its next VIEW-CHANGE.
#[test]
fn finding_3_prepared_certificates_survive_a_restart() {
    let x = batch_in(0, b"X");
    let digest = sha3_256(&x);
    let mut backup = replica(1, N, &[], 0);
    let mut records = Vec::new();
    let effects = feed(
        &mut backup,
        [
            Input::Message(pre_prepare_of(0, 1, x.clone())),
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
    records.extend(effects.into_iter().filter_map(|effect| match effect {
        Effect::Persist(record) => Some(record),
        _ => None,
    }));
    let mut restarted = replica(1, N, &records, 0);
    let effects = feed(
        &mut restarted,
        [2, 3]
            .into_iter()
            .map(|sender| Input::Message(signed(sender, Message::Suspect { view: 0 }))),
    );
    let view_change = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::Broadcast(SignedMessage {
                message: Message::ViewChange { prepared, .. },
                ..
            }) => Some(prepared.clone()),
            _ => None,
        })
        .expect("f + 1 suspicions start a view change");
    assert_eq!(view_change.len(), 1, "the VIEW-CHANGE must carry the prepared certificate");
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
    let mut backup = Replica::new(1, config, common::TestCrypto { id: 1 }, &[], 0).unwrap();
    for sequence in 1..=64u64 {
        let request = vec![sequence as u8; 1024 * 1024 - 64];
        let batch = batch_in(0, &request);
        let digest = sha3_256(&batch);
        feed(
            &mut backup,
            [
                Input::Message(pre_prepare_of(0, sequence, batch)),
                Input::Message(prepare(2, 0, sequence, digest)),
                Input::Message(prepare(3, 0, sequence, digest)),
            ],
        );
    }
    let effects = feed(
        &mut backup,
        [2, 3]
            .into_iter()
            .map(|sender| Input::Message(signed(sender, Message::Suspect { view: 0 }))),
    );
    let view_change = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::Broadcast(
                message @ SignedMessage { message: Message::ViewChange { .. }, .. },
            ) => Some(message.clone()),
            _ => None,
        })
        .expect("a view change");
    use pactum_types::Encode;
    let bytes = view_change.to_bytes().len();
    assert!(
        bytes <= limits::NETWORK_FRAME_BYTES_MAX,
        "a VIEW-CHANGE of {bytes} bytes does not fit a frame of {}",
        limits::NETWORK_FRAME_BYTES_MAX
    );
}

/// Finding 4, second half: the new primary does not re-broadcast its NEW-VIEW for the
/// whole life of the view.
#[test]
fn finding_4_the_new_primary_does_not_rebroadcast_its_new_view_forever() {
    let mut new_primary = replica(1, N, &[], 0);
    let effects = feed(
        &mut new_primary,
        [0, 2, 3].into_iter().map(|sender| Input::Message(view_change(sender, 1, vec![]))),
    );
    assert!(effects.iter().any(|effect| matches!(effect, Effect::ViewEntered { view: 1, .. })));
    for _ in 0..3 {
        let effects = new_primary.step(Input::Timeout(TimeoutKind::Retransmit));
        assert!(
            !effects.iter().any(|effect| matches!(
                effect,
                Effect::Broadcast(SignedMessage { message: Message::NewView { .. }, .. })
            )),
            "a NEW-VIEW is re-sent to whoever still asks for the view, not to everyone forever"
        );
    }
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
    collect(backup.step(Input::Request { request: b"censored".to_vec() }), &mut timers);
    // Config L = 4, K = 2: stay inside the window by checkpointing as we go.
    for sequence in 1..=3u64 {
        let batch = batch_in(0, format!("other {sequence}").as_bytes());
        let digest = sha3_256(&batch);
        let mut inputs = vec![Input::Message(pre_prepare_of(0, sequence, batch))];
        inputs.extend(
            [2, 3].into_iter().map(|sender| Input::Message(prepare(sender, 0, sequence, digest))),
        );
        inputs.extend(
            [0, 2].into_iter().map(|sender| Input::Message(commit(sender, 0, sequence, digest))),
        );
        let effects = feed(&mut backup, inputs);
        assert_eq!(deliveries(&effects).len(), 1, "the primary orders another batch");
        collect(effects, &mut timers);
        // The request timer fires after each delivery.
        for kind in std::mem::take(&mut timers) {
            collect(backup.step(Input::Timeout(kind)), &mut timers);
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
        primary(view),
        Message::NewView {
            view,
            view_changes: (1..N).map(|sender| view_change(sender, view, vec![])).collect(),
            pre_prepares: Vec::new(),
        },
    );
    let mut behind = replica(3, N, &[], 0);
    let effects = behind.step(Input::Message(new_view));
    assert!(
        effects.iter().any(|effect| matches!(effect, Effect::ViewEntered { view: 100, .. })),
        "{effects:?}"
    );
}

/// Finding 7: a state transfer that did not complete is asked for again, even if the
/// cluster is idle and no higher checkpoint comes along.
#[test]
fn finding_7_a_state_transfer_that_did_not_complete_is_asked_for_again() {
    let mut behind = replica(3, N, &[], 0);
    let state_digest = sha3_256(b"state at 8");
    let mut asked = 0;
    for sender in [0, 1] {
        let effects = behind.step(Input::Message(signed(
            sender,
            Message::Checkpoint { sequence: 8, state_digest },
        )));
        asked += effects
            .iter()
            .filter(|effect| matches!(effect, Effect::RequestStateTransfer { .. }))
            .count();
    }
    assert_eq!(asked, 1, "f + 1 CHECKPOINTs above the window start a state transfer");
    // The fetch fails (no peer answered); nothing else happens in the cluster.
    for _ in 0..10 {
        let effects = behind.step(Input::Timeout(TimeoutKind::Retransmit));
        asked += effects
            .iter()
            .filter(|effect| matches!(effect, Effect::RequestStateTransfer { .. }))
            .count();
    }
    assert!(asked >= 2, "the replica never asked for the state again");
}

/// Finding 7: a replica the primary skipped (it never gets the PRE-PREPARE) still gets
/// the batch from its peers once the others decide it.
#[test]
fn finding_7_a_replica_the_primary_skipped_gets_the_batch_from_its_peers() {
    let mut replicas: Vec<_> = (0..N).map(|id| replica(id, N, &[], 0)).collect();
    let mut queue: std::collections::VecDeque<(ReplicaId, Input)> = Default::default();
    for id in 0..N {
        queue.push_back((id, Input::Request { request: b"skipped".to_vec() }));
    }
    let mut delivered = vec![Vec::new(); usize::from(N)];
    let mut steps = 0;
    while let Some((id, input)) = queue.pop_front() {
        steps += 1;
        assert!(steps < 10_000);
        for effect in replicas[usize::from(id)].step(input) {
            let mut send = |to: ReplicaId, message: SignedMessage| {
                // The primary never sends its PRE-PREPARE to replica 3.
                let skipped = to == 3 && matches!(message.message, Message::PrePrepare { .. });
                if !skipped {
                    queue.push_back((to, Input::Message(message)));
                }
            };
            match effect {
                Effect::Broadcast(message) => {
                    for to in (0..N).filter(|to| *to != id) {
                        send(to, message.clone());
                    }
                }
                Effect::Send { to, message } => send(to, message),
                Effect::Deliver(delivery) => delivered[usize::from(id)].push(delivery.digest),
                _ => {}
            }
        }
    }
    assert_eq!(delivered[0].len(), 1, "the others decide the batch");
    assert_eq!(delivered[3], delivered[0], "replica 3 never got the batch it was skipped for");
}

/// Finding 8: a normal-case PRE-PREPARE must carry a batch cut in its own view; only a
/// NEW-VIEW re-proposes a batch of an earlier view.
#[test]
fn finding_8_a_normal_case_batch_names_its_own_view() {
    let new_view = new_view_from(
        1,
        &[view_change(0, 1, vec![]), view_change(2, 1, vec![]), view_change(3, 1, vec![])],
    );
    let mut backup = replica(3, N, &[], 0);
    backup.step(Input::Message(new_view));
    assert_eq!(backup.view(), 1);
    let effects = backup.step(Input::Message(pre_prepare_of(1, 1, batch_in(0, b"back-dated"))));
    assert!(
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::Evidence(Evidence::MalformedBatch { .. }))),
        "a batch naming view 0 was accepted in view 1's normal case: {effects:?}"
    );
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::Persist(Record::Accepted(_)))));
}
