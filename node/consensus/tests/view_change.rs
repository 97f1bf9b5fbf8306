//! View changes (PBFT §4.4, §4.5.2) and Pactum's suspicion step before them.
//!
//! The golden file `golden/new_view.txt` (refresh with `PACTUM_UPDATE_GOLDEN=1`) holds the
//! paper's scenarios: which PRE-PREPAREs a new primary re-proposes from a set of
//! VIEW-CHANGEs, and which prepared certificates, checkpoint proofs and NEW-VIEWs a replica
//! accepts or refuses, with the reason.

mod common;

use common::{Cluster, replica, signed};
use pactum_consensus::{
    BatchHeader, Effect, Evidence, Input, Message, PreparedCertificate, Record, ReplicaId,
    SignedMessage, TimeoutKind, batch_requests, encode_batch,
};
use pactum_types::Hash;
use pactum_types::hash::sha3_256;

const N: u16 = 4;

fn primary(view: u64) -> ReplicaId {
    (view % u64::from(N)) as ReplicaId
}

/// A batch holding the one request `request`.
fn batch_of(request: &[u8]) -> Vec<u8> {
    encode_batch(BatchHeader::default(), &[request])
}

/// The primary of `view`'s PRE-PREPARE of a batch holding the one request `batch`.
fn pre_prepare(view: u64, sequence: u64, batch: &[u8]) -> SignedMessage {
    signed(
        primary(view),
        Message::PrePrepare {
            view,
            sequence,
            digest: sha3_256(&batch_of(batch)),
            batch: batch_of(batch),
        },
    )
}

/// A prepared certificate for `batch` at (view, sequence), with PREPAREs from `preparers`.
fn certificate(
    view: u64,
    sequence: u64,
    batch: &[u8],
    preparers: &[ReplicaId],
) -> PreparedCertificate {
    let digest = sha3_256(&batch_of(batch));
    PreparedCertificate {
        pre_prepare: pre_prepare(view, sequence, batch),
        prepares: preparers
            .iter()
            .map(|&sender| signed(sender, Message::Prepare { view, sequence, digest }))
            .collect(),
    }
}

fn state(sequence: u64) -> Hash {
    sha3_256(&sequence.to_be_bytes())
}

fn view_change(
    sender: ReplicaId,
    new_view: u64,
    stable: u64,
    checkpoint_signers: &[ReplicaId],
    prepared: Vec<PreparedCertificate>,
) -> SignedMessage {
    let state_digest = state(stable);
    let checkpoint_proof = checkpoint_signers
        .iter()
        .map(|&signer| signed(signer, Message::Checkpoint { sequence: stable, state_digest }))
        .collect();
    signed(
        sender,
        Message::ViewChange {
            new_view,
            stable_sequence: stable,
            stable_digest: if stable == 0 { Hash::ZERO } else { state_digest },
            checkpoint_proof,
            prepared,
        },
    )
}

fn broadcasts(effects: &[Effect]) -> Vec<&SignedMessage> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Broadcast(message) => Some(message),
            _ => None,
        })
        .collect()
}

fn evidence(effects: &[Effect]) -> Vec<&Evidence> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Evidence(evidence) => Some(evidence),
            _ => None,
        })
        .collect()
}

/// Feeds VIEW-CHANGEs to the primary of `new_view` and returns the NEW-VIEW it sends.
fn new_view_from(new_view: u64, view_changes: &[SignedMessage]) -> Option<SignedMessage> {
    let mut new_primary = replica(primary(new_view), N, &[], 0);
    for message in view_changes {
        let effects = new_primary.step(Input::Message(message.clone()));
        if let Some(found) = broadcasts(&effects)
            .into_iter()
            .find(|message| matches!(message.message, Message::NewView { .. }))
        {
            return Some(found.clone());
        }
    }
    None
}

/// One line per re-proposed sequence number: its batch, or `null`.
fn describe_new_view(message: &SignedMessage) -> String {
    let Message::NewView { view, view_changes, pre_prepares } = &message.message else {
        return "not a NEW-VIEW".into();
    };
    let senders: Vec<String> =
        view_changes.iter().map(|message| format!("r{}", message.sender)).collect();
    let mut out = format!(
        "new-view v{view} by r{}, from the view-changes of {}\n",
        message.sender,
        senders.join(" ")
    );
    for pre_prepare in pre_prepares {
        if let Message::PrePrepare { view, sequence, batch, .. } = &pre_prepare.message {
            let content = if batch.is_empty() {
                "null".to_string()
            } else {
                let requests = batch_requests(batch, 16, 1024).expect("a well-formed batch");
                let requests: Vec<String> = requests
                    .iter()
                    .map(|request| format!("{:?}", String::from_utf8_lossy(request)))
                    .collect();
                requests.join(" ")
            };
            out.push_str(&format!("  s{sequence} v{view} {content}\n"));
        }
    }
    out
}

/// What a backup that has not moved makes of `message`: accepted (the view it entered)
/// or the evidence it recorded.
fn verdict(message: SignedMessage) -> String {
    let mut backup = replica(3, N, &[], 0);
    let effects = backup.step(Input::Message(message));
    if let Some(Effect::ViewEntered { view, .. }) =
        effects.iter().find(|effect| matches!(effect, Effect::ViewEntered { .. }))
    {
        return format!("accepted, entered view {view}");
    }
    match evidence(&effects).first() {
        Some(Evidence::InvalidViewChange { reason, .. }) => format!("refused: {reason}"),
        Some(Evidence::InvalidNewView { reason, .. }) => format!("refused: {reason}"),
        Some(other) => format!("refused: {other:?}"),
        None => "ignored".into(),
    }
}

#[test]
fn new_view_re_proposals_and_certificate_checks_match_the_golden_file() {
    let mut out = String::from(
        "# PBFT §4.4 scenarios, n = 4, f = 1, K = 2, L = 4 (refresh with PACTUM_UPDATE_GOLDEN=1)\n",
    );

    out.push_str("\n## certificates at s1 and s3, nothing at s2: s2 becomes a null request\n");
    let new_view = new_view_from(
        1,
        &[
            view_change(2, 1, 0, &[], vec![certificate(0, 1, b"a", &[1, 2])]),
            view_change(3, 1, 0, &[], vec![certificate(0, 3, b"c", &[2, 3])]),
        ],
    )
    .expect("r1 starts view 1");
    out.push_str(&describe_new_view(&new_view));
    out.push_str(&format!("backup: {}\n", verdict(new_view.clone())));

    out.push_str("\n## one sequence number prepared in views 0 and 1: the later view wins\n");
    let newer = new_view_from(
        2,
        &[
            view_change(0, 2, 0, &[], vec![certificate(0, 1, b"old", &[1, 2])]),
            view_change(1, 2, 0, &[], vec![certificate(1, 1, b"new", &[2, 3])]),
        ],
    )
    .expect("r2 starts view 2");
    out.push_str(&describe_new_view(&newer));

    out.push_str(
        "\n## stable checkpoints 2 and 4: the new view starts above the highest (min-s)\n",
    );
    let above = new_view_from(
        1,
        &[
            view_change(2, 1, 2, &[0, 2], vec![certificate(0, 3, b"below", &[1, 2])]),
            view_change(3, 1, 4, &[2, 3], vec![certificate(0, 5, b"above", &[2, 3])]),
        ],
    )
    .expect("r1 starts view 1");
    out.push_str(&describe_new_view(&above));

    out.push_str("\n## no certificates at all: a new view with nothing to re-propose\n");
    let empty =
        new_view_from(1, &[view_change(2, 1, 0, &[], vec![]), view_change(3, 1, 0, &[], vec![])])
            .expect("r1 starts view 1");
    out.push_str(&describe_new_view(&empty));

    out.push_str("\n## VIEW-CHANGEs a replica refuses\n");
    let cases: Vec<(&str, SignedMessage)> = vec![
        (
            "a certificate with one PREPARE (2f = 2 needed)",
            view_change(2, 1, 0, &[], vec![certificate(0, 1, b"a", &[2])]),
        ),
        (
            "a certificate whose PREPAREs include the primary's",
            view_change(2, 1, 0, &[], vec![certificate(0, 1, b"a", &[0, 2])]),
        ),
        (
            "a certificate with the same backup twice",
            view_change(2, 1, 0, &[], vec![certificate(0, 1, b"a", &[2, 2])]),
        ),
        (
            "a certificate from the new view itself",
            view_change(2, 1, 0, &[], vec![certificate(1, 1, b"a", &[2, 3])]),
        ),
        (
            "a certificate above the window h + L",
            view_change(2, 1, 0, &[], vec![certificate(0, 5, b"a", &[1, 2])]),
        ),
        (
            "two certificates for one sequence number",
            view_change(
                2,
                1,
                0,
                &[],
                vec![certificate(0, 1, b"a", &[1, 2]), certificate(0, 1, b"b", &[1, 3])],
            ),
        ),
        ("a checkpoint proof with f = 1 signature", view_change(2, 1, 2, &[2], vec![])),
        ("a checkpoint proof signed twice by one replica", view_change(2, 1, 2, &[2, 2], vec![])),
        ("a view too far ahead", view_change(2, 1_000, 0, &[], vec![])),
    ];
    for (name, message) in cases {
        out.push_str(&format!("{name}: {}\n", verdict(message)));
    }

    out.push_str("\n## NEW-VIEWs a backup refuses\n");
    let Message::NewView { view_changes, pre_prepares, .. } = new_view.message else {
        unreachable!()
    };
    let omitted = signed(
        1,
        Message::NewView {
            view: 1,
            view_changes: view_changes.clone(),
            pre_prepares: pre_prepares[..2].to_vec(),
        },
    );
    out.push_str(&format!("omits the certified s3: {}\n", verdict(omitted)));
    let swapped = {
        let mut pre_prepares = pre_prepares.clone();
        pre_prepares[0] = signed(
            1,
            Message::PrePrepare {
                view: 1,
                sequence: 1,
                digest: sha3_256(&batch_of(b"mine")),
                batch: batch_of(b"mine"),
            },
        );
        signed(1, Message::NewView { view: 1, view_changes: view_changes.clone(), pre_prepares })
    };
    out.push_str(&format!("replaces the certified s1: {}\n", verdict(swapped)));
    let too_few = signed(
        1,
        Message::NewView {
            view: 1,
            view_changes: view_changes[..2].to_vec(),
            pre_prepares: pre_prepares.clone(),
        },
    );
    out.push_str(&format!("carries 2f VIEW-CHANGEs: {}\n", verdict(too_few)));
    let wrong_sender = signed(2, Message::NewView { view: 1, view_changes, pre_prepares });
    out.push_str(&format!(
        "sent by a replica other than the new primary: {}\n",
        verdict(wrong_sender)
    ));

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/new_view.txt");
    if std::env::var_os("PACTUM_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &out).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), out);
}

#[test]
fn one_suspicious_replica_keeps_working_and_f_plus_one_move_to_the_next_view() {
    let mut backup = replica(2, N, &[], 0);
    backup.step(Input::Request { request: b"waiting".to_vec() });
    let effects = backup.step(Input::Timeout(TimeoutKind::Request { view: 0, delivered: 0 }));
    let sent = broadcasts(&effects);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message, Message::Suspect { view: 0 });
    // Still in view 0: it prepares what the primary sends.
    let effects = backup.step(Input::Message(pre_prepare(0, 1, b"waiting")));
    assert!(
        broadcasts(&effects)
            .iter()
            .any(|message| matches!(message.message, Message::Prepare { .. }))
    );
    // A second suspicion (f + 1 = 2) moves it to view 1.
    let effects = backup.step(Input::Message(signed(3, Message::Suspect { view: 0 })));
    let sent = broadcasts(&effects);
    assert!(
        sent.iter()
            .any(|message| matches!(message.message, Message::ViewChange { new_view: 1, .. })),
        "{effects:?}"
    );
    // The VIEW-CHANGE carries nothing prepared (it only pre-prepared s1) and was persisted
    // before it was broadcast.
    let persisted = effects.iter().position(|effect| {
        matches!(
            effect,
            Effect::Persist(Record::Sent(SignedMessage {
                message: Message::ViewChange { .. },
                ..
            }))
        )
    });
    let broadcast = effects.iter().position(|effect| matches!(effect, Effect::Broadcast(_)));
    assert!(persisted.unwrap() < broadcast.unwrap(), "persist before send");
    // From now on it takes no part in view 0.
    let effects = backup.step(Input::Message(pre_prepare(0, 2, b"later")));
    assert!(broadcasts(&effects).is_empty(), "{effects:?}");
}

#[test]
fn f_plus_one_view_changes_pull_a_replica_along_and_timeouts_double_up_to_the_cap() {
    let mut backup = replica(3, N, &[], 0);
    let effects = backup.step(Input::Message(view_change(1, 2, 0, &[], vec![])));
    assert!(broadcasts(&effects).is_empty(), "one VIEW-CHANGE may be a faulty replica's");
    let effects = backup.step(Input::Message(view_change(2, 1, 0, &[], vec![])));
    // f + 1 = 2 replicas want views above 0; it joins the smallest, view 1.
    assert!(
        broadcasts(&effects)
            .iter()
            .any(|message| matches!(message.message, Message::ViewChange { new_view: 1, .. })),
        "{effects:?}"
    );
    let timeout = |effects: &[Effect]| {
        effects.iter().find_map(|effect| match effect {
            Effect::ScheduleTimeout { kind: TimeoutKind::ViewChange { view }, after_ms } => {
                Some((*view, *after_ms))
            }
            _ => None,
        })
    };
    assert_eq!(timeout(&effects), Some((1, 1_000)));
    let mut waits = Vec::new();
    let mut view = 1;
    for _ in 0..5 {
        let effects = backup.step(Input::Timeout(TimeoutKind::ViewChange { view }));
        let (next, after) = timeout(&effects).expect("the next view's timer");
        assert_eq!(next, view + 1);
        waits.push(after);
        view = next;
    }
    assert_eq!(waits, vec![2_000, 4_000, 8_000, 8_000, 8_000], "doubling up to the cap");
    // A stale timer for a view it already left does nothing.
    assert!(backup.step(Input::Timeout(TimeoutKind::ViewChange { view: 1 })).is_empty());
}

#[test]
fn a_replica_never_returns_to_a_view_below_the_one_it_asked_for() {
    // Build a valid NEW-VIEW for view 1.
    let new_view =
        new_view_from(1, &[view_change(2, 1, 0, &[], vec![]), view_change(3, 1, 0, &[], vec![])])
            .unwrap();
    // Replica 3 asked for view 2 already (after view 1 timed out).
    let mut backup = replica(3, N, &[], 0);
    backup.step(Input::Message(view_change(1, 1, 0, &[], vec![])));
    backup.step(Input::Message(view_change(2, 1, 0, &[], vec![])));
    backup.step(Input::Timeout(TimeoutKind::ViewChange { view: 1 }));
    let effects = backup.step(Input::Message(new_view));
    assert!(
        !effects.iter().any(|effect| matches!(effect, Effect::ViewEntered { .. })),
        "{effects:?}"
    );
    assert_eq!(backup.view(), 0);
}

#[test]
fn a_restarted_replica_keeps_its_view_change_promise() {
    let mut backup = replica(2, N, &[], 0);
    let mut records = Vec::new();
    for input in [
        Input::Message(signed(1, Message::Suspect { view: 0 })),
        Input::Message(signed(3, Message::Suspect { view: 0 })),
    ] {
        for effect in backup.step(input) {
            if let Effect::Persist(record) = effect {
                records.push(record);
            }
        }
    }
    assert!(records.iter().any(|record| matches!(
        record,
        Record::Sent(SignedMessage { message: Message::ViewChange { new_view: 1, .. }, .. })
    )));
    let mut restarted = replica(2, N, &records, 0);
    let effects = restarted.step(Input::Message(pre_prepare(0, 1, b"old view")));
    assert!(broadcasts(&effects).is_empty(), "no PREPARE in the view it left: {effects:?}");
}

#[test]
fn a_replica_in_a_view_change_still_learns_committed_batches() {
    let mut backup = replica(3, N, &[], 0);
    backup.step(Input::Message(signed(1, Message::Suspect { view: 0 })));
    backup.step(Input::Message(signed(2, Message::Suspect { view: 0 })));
    let batch = b"decided".to_vec();
    let digest = sha3_256(&batch_of(&batch));
    let mut delivered = Vec::new();
    let mut sent = 0;
    let mut inputs = vec![Input::Message(pre_prepare(0, 1, &batch))];
    for sender in 0..3 {
        inputs
            .push(Input::Message(signed(sender, Message::Commit { view: 0, sequence: 1, digest })));
    }
    for input in inputs {
        let effects = backup.step(input);
        sent += broadcasts(&effects).len();
        for effect in effects {
            if let Effect::Deliver(delivery) = effect {
                delivered.push((
                    delivery.sequence,
                    delivery.digest,
                    delivery.commit_certificate.len(),
                ));
            }
        }
    }
    assert_eq!(delivered, vec![(1, digest, 3)], "2f + 1 COMMITs decide the batch");
    assert_eq!(sent, 0, "nothing is sent in the view it left");
}

#[test]
fn a_silent_primary_is_replaced_and_the_new_primary_commits_the_pending_batch() {
    let mut cluster = Cluster::new(N);
    cluster.down.push(0);
    let batch = b"stuck behind a silent primary".to_vec();
    for id in 1..N {
        cluster.queue.push_back((id, Input::Request { request: batch.clone() }));
    }
    cluster.run();
    assert!(cluster.delivered.iter().all(Vec::is_empty));
    for id in 1..N {
        cluster
            .queue
            .push_back((id, Input::Timeout(TimeoutKind::Request { view: 0, delivered: 0 })));
    }
    cluster.run();
    for id in 1..N {
        assert!(cluster.views.contains(&(id, 1)), "replica {id} entered view 1");
        assert_eq!(
            cluster.delivered[usize::from(id)],
            vec![(1, sha3_256(&encode_batch(BatchHeader { view: 1, timestamp_ms: 0 }, &[&batch])))],
            "replica {id} delivered the batch the primary of view 1 cut"
        );
    }
    assert!(cluster.evidence.is_empty(), "{:?}", cluster.evidence);
}

#[test]
fn a_replica_behind_in_views_learns_decisions_from_commit_certificates() {
    // Replica 3 is still in view 0 (it missed the NEW-VIEW); the others decided s1 in
    // view 1, where replica 1 is the primary.
    let mut backup = replica(3, N, &[], 0);
    let batch = b"decided in view 1".to_vec();
    let digest = sha3_256(&batch_of(&batch));
    let commit = |sender| signed(sender, Message::Commit { view: 1, sequence: 1, digest });
    let mut delivered = Vec::new();
    let mut sent = 0;
    // Too early: no COMMIT vouches for the batch yet, so it is not kept...
    let inputs = vec![
        Input::Message(pre_prepare(1, 1, &batch)),
        Input::Message(commit(0)),
        Input::Message(commit(1)),
        // ...two COMMITs (f + 1) vouch for it now; the primary re-sends it.
        Input::Message(pre_prepare(1, 1, &batch)),
        Input::Message(commit(2)),
    ];
    for input in inputs {
        let effects = backup.step(input);
        assert!(evidence(&effects).is_empty(), "a later view is not misbehaviour: {effects:?}");
        sent += broadcasts(&effects).len();
        for effect in effects {
            if let Effect::Deliver(delivery) = effect {
                delivered.push((delivery.view, delivery.sequence, delivery.digest));
            }
        }
    }
    assert_eq!(delivered, vec![(1, 1, digest)]);
    assert_eq!(sent, 0, "it votes in no view it has not entered");
    assert_eq!(backup.view(), 0);

    // A faulty primary's batch that no COMMITs vouch for is never kept or delivered.
    let mut other = replica(3, N, &[], 0);
    let junk = b"junk".to_vec();
    let junk_digest = sha3_256(&batch_of(&junk));
    other.step(Input::Message(pre_prepare(1, 1, &junk)));
    for sender in [0, 2] {
        let effects = other.step(Input::Message(signed(
            sender,
            Message::Commit { view: 1, sequence: 1, digest: junk_digest },
        )));
        assert!(!effects.iter().any(|effect| matches!(effect, Effect::Deliver(_))));
    }
}
