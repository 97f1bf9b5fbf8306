//! View changes (PBFT §4.4, §4.5.2) and Pactum's suspicion step before them.
//!
//! The golden file `golden/new_view.txt` (refresh with `PACTUM_UPDATE_GOLDEN=1`) holds the
//! paper's scenarios: which PRE-PREPAREs a new primary re-proposes from a set of
//! VIEW-CHANGEs, and which prepared certificates, checkpoint proofs and NEW-VIEWs a replica
//! accepts or refuses, with the reason.

mod common;

use common::{
    Cluster, batch_in, broadcasts, certificate, checkpoint_certificate, commit, evidence, feed,
    new_view_from, pre_prepare, records, replica, signed, suspect, view_change,
};
use pactum_consensus::{
    Effect, Evidence, Input, Message, Record, ReplicaId, Reproposal, SignedMessage, TimeoutKind,
    View, Watch,
};
use pactum_types::hash::sha3_256;

const N: u16 = 4;

/// A batch cut in view 0 holding the one request `request`.
fn batch_of(request: &[u8]) -> Vec<u8> {
    batch_in(0, request)
}

fn genesis() -> pactum_consensus::CheckpointCertificate {
    checkpoint_certificate(0, &[])
}

/// One line per re-proposed sequence number: its digest's batch (by the names used in the
/// scenario), or `null`.
fn describe_new_view(message: &SignedMessage, names: &[&[u8]]) -> String {
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
    for Reproposal { sequence, digest, .. } in pre_prepares {
        let content = if *digest == sha3_256(&[]) {
            "null".to_string()
        } else {
            names
                .iter()
                .find(|name| sha3_256(&batch_of(name)) == *digest)
                .map_or("unknown".to_string(), |name| {
                    format!("{:?}", String::from_utf8_lossy(name))
                })
        };
        out.push_str(&format!("  s{sequence} {content}\n"));
    }
    out
}

/// What a backup that has not moved makes of `message`: accepted (the view it entered)
/// or the evidence it recorded.
fn verdict(message: SignedMessage) -> String {
    let mut backup = replica(3, N, &[], 0);
    let effects = feed(&mut backup, [Input::Message(message)]);
    if let Some(Effect::ViewEntered { view, .. }) =
        effects.iter().find(|effect| matches!(effect, Effect::ViewEntered { .. }))
    {
        return format!("accepted, entered view {view}");
    }
    match evidence(&effects).first() {
        Some(Evidence::InvalidViewChange { error, .. }) => format!("refused: {error}"),
        Some(Evidence::InvalidNewView { error, .. }) => format!("refused: {error}"),
        Some(other) => format!("refused: {other:?}"),
        None => "ignored".into(),
    }
}

#[test]
fn new_view_re_proposals_and_certificate_checks_match_the_golden_file() {
    let names: &[&[u8]] = &[b"a", b"c", b"old", b"new", b"below", b"above"];
    let mut out = String::from(
        "# PBFT §4.4 scenarios, n = 4, f = 1, K = 2, L = 4 (refresh with PACTUM_UPDATE_GOLDEN=1)\n",
    );

    out.push_str("\n## certificates at s1 and s3, nothing at s2: s2 becomes a null request\n");
    let new_view = new_view_from(
        1,
        &[
            view_change(2, 1, genesis(), vec![certificate(0, 1, &batch_of(b"a"), &[1, 2])]),
            view_change(3, 1, genesis(), vec![certificate(0, 3, &batch_of(b"c"), &[2, 3])]),
        ],
    )
    .expect("r1 starts view 1");
    out.push_str(&describe_new_view(&new_view, names));
    out.push_str(&format!("backup: {}\n", verdict(new_view.clone())));

    out.push_str("\n## one sequence number prepared in views 0 and 1: the later view wins\n");
    let newer = new_view_from(
        2,
        &[
            view_change(0, 2, genesis(), vec![certificate(0, 1, &batch_of(b"old"), &[1, 2])]),
            view_change(1, 2, genesis(), vec![certificate(1, 1, &batch_of(b"new"), &[2, 3])]),
        ],
    )
    .expect("r2 starts view 2");
    out.push_str(&describe_new_view(&newer, names));

    out.push_str(
        "\n## stable checkpoints 2 and 4: the new view starts above the highest (min-s)\n",
    );
    let above = new_view_from(
        1,
        &[
            view_change(
                2,
                1,
                checkpoint_certificate(2, &[0, 2]),
                vec![certificate(0, 3, &batch_of(b"below"), &[1, 2])],
            ),
            view_change(
                3,
                1,
                checkpoint_certificate(4, &[2, 3]),
                vec![certificate(0, 5, &batch_of(b"above"), &[2, 3])],
            ),
        ],
    )
    .expect("r1 starts view 1");
    out.push_str(&describe_new_view(&above, names));

    out.push_str("\n## no certificates at all: a new view with nothing to re-propose\n");
    let empty = new_view_from(
        1,
        &[view_change(2, 1, genesis(), vec![]), view_change(3, 1, genesis(), vec![])],
    )
    .expect("r1 starts view 1");
    out.push_str(&describe_new_view(&empty, names));

    out.push_str("\n## VIEW-CHANGEs a replica refuses\n");
    let a = batch_of(b"a");
    let cases: Vec<(&str, SignedMessage)> = vec![
        (
            "a certificate with one PREPARE (2f = 2 needed)",
            view_change(2, 1, genesis(), vec![certificate(0, 1, &a, &[2])]),
        ),
        (
            "a certificate whose PREPAREs include the primary's",
            view_change(2, 1, genesis(), vec![certificate(0, 1, &a, &[0, 2])]),
        ),
        (
            "a certificate with the same backup twice",
            view_change(2, 1, genesis(), vec![certificate(0, 1, &a, &[2, 2])]),
        ),
        (
            "a certificate with more PREPAREs than it needs",
            view_change(2, 1, genesis(), vec![certificate(0, 1, &a, &[1, 2, 3])]),
        ),
        (
            "a certificate from the new view itself",
            view_change(2, 1, genesis(), vec![certificate(1, 1, &a, &[2, 3])]),
        ),
        (
            "a certificate above the window h + L",
            view_change(2, 1, genesis(), vec![certificate(0, 5, &a, &[1, 2])]),
        ),
        (
            "two certificates for one sequence number",
            view_change(
                2,
                1,
                genesis(),
                vec![certificate(0, 1, &a, &[1, 2]), certificate(0, 1, &batch_of(b"b"), &[1, 3])],
            ),
        ),
        (
            "a checkpoint proof with f = 1 signature",
            view_change(2, 1, checkpoint_certificate(2, &[2]), vec![]),
        ),
        (
            "a checkpoint proof signed twice by one replica",
            view_change(2, 1, checkpoint_certificate(2, &[2, 2]), vec![]),
        ),
        ("a view too far ahead", view_change(2, 1_000, genesis(), vec![])),
    ];
    for (name, message) in cases {
        out.push_str(&format!("{name}: {}\n", verdict(message)));
    }

    out.push_str("\n## NEW-VIEWs a backup refuses\n");
    let Message::NewView { view_changes, pre_prepares, .. } = new_view.message else {
        unreachable!()
    };
    let new_view = |sender, view_changes: Vec<SignedMessage>, pre_prepares: Vec<Reproposal>| {
        signed(sender, Message::NewView { view: View(1), view_changes, pre_prepares })
    };
    let omitted = new_view(1, view_changes.clone(), pre_prepares[..2].to_vec());
    out.push_str(&format!("omits the certified s3: {}\n", verdict(omitted)));
    let mut swapped = pre_prepares.clone();
    swapped[0].digest = sha3_256(&batch_of(b"mine"));
    out.push_str(&format!(
        "replaces the certified s1: {}\n",
        verdict(new_view(1, view_changes.clone(), swapped))
    ));
    let mut unsigned = pre_prepares.clone();
    unsigned[1].signature.0[0] ^= 1;
    out.push_str(&format!(
        "a re-proposal with a bad signature: {}\n",
        verdict(new_view(1, view_changes.clone(), unsigned))
    ));
    let too_few = new_view(1, view_changes[..2].to_vec(), pre_prepares.clone());
    out.push_str(&format!("carries 2f VIEW-CHANGEs: {}\n", verdict(too_few)));
    let twice = new_view(
        1,
        vec![view_changes[0].clone(), view_changes[0].clone(), view_changes[1].clone()],
        pre_prepares.clone(),
    );
    out.push_str(&format!("carries one VIEW-CHANGE twice: {}\n", verdict(twice)));
    let wrong_sender = new_view(2, view_changes, pre_prepares);
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

/// The request timers a step armed.
fn request_timers(effects: &[Effect]) -> Vec<TimeoutKind> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::ScheduleTimeout { kind: kind @ TimeoutKind::Request { .. }, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

#[test]
fn one_suspicious_replica_keeps_working_and_f_plus_one_move_to_the_next_view() {
    let mut backup = replica(2, N, &[], 0);
    let armed = request_timers(&backup.step(Input::Request { request: b"waiting".to_vec() }));
    let digest = sha3_256(b"waiting");
    assert_eq!(
        armed,
        [TimeoutKind::Request { view: View(0), watch: Watch::Request(digest) }],
        "the timer watches the request itself"
    );
    // The first expiry relays the request to the primary (it may never have had it) and
    // keeps watching; the second suspects the primary.
    let effects = feed(&mut backup, [Input::Timeout(armed[0])]);
    assert!(broadcasts(&effects).is_empty(), "no suspicion yet: {effects:?}");
    assert!(effects.contains(&Effect::Relay { to: 0, requests: vec![b"waiting".to_vec()] }));
    assert_eq!(request_timers(&effects), armed, "the same request is watched again");
    let effects = feed(&mut backup, [Input::Timeout(armed[0])]);
    let sent = broadcasts(&effects);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message, Message::Suspect { view: View(0) });
    // Still in view 0: it prepares what the primary sends.
    let effects = feed(&mut backup, [Input::Message(pre_prepare(0, 1, batch_of(b"other")))]);
    assert!(
        broadcasts(&effects)
            .iter()
            .any(|message| matches!(message.message, Message::Prepare { .. }))
    );
    // A second suspicion (f + 1 = 2) moves it to view 1.
    let effects = feed(&mut backup, [Input::Message(suspect(3, 0))]);
    let sent = broadcasts(&effects);
    assert!(
        sent.iter().any(|message| matches!(
            message.message,
            Message::ViewChange { new_view: View(1), .. }
        )),
        "{effects:?}"
    );
    // The VIEW-CHANGE was persisted before it was broadcast.
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
    let effects = feed(&mut backup, [Input::Message(pre_prepare(0, 2, batch_of(b"later")))]);
    assert!(broadcasts(&effects).is_empty(), "{effects:?}");
}

#[test]
fn f_plus_one_view_changes_pull_a_replica_along_and_timeouts_double_up_to_the_cap() {
    let mut backup = replica(3, N, &[], 0);
    let effects = feed(&mut backup, [Input::Message(view_change(1, 2, genesis(), vec![]))]);
    assert!(broadcasts(&effects).is_empty(), "one VIEW-CHANGE may be a faulty replica's");
    let effects = feed(&mut backup, [Input::Message(view_change(2, 1, genesis(), vec![]))]);
    // f + 1 = 2 replicas want views above 0; it joins the smallest, view 1.
    assert!(
        broadcasts(&effects).iter().any(|message| matches!(
            message.message,
            Message::ViewChange { new_view: View(1), .. }
        )),
        "{effects:?}"
    );
    let timeout = |effects: &[Effect]| {
        effects.iter().find_map(|effect| match effect {
            Effect::ScheduleTimeout { kind: TimeoutKind::ViewChange { view }, after_ms } => {
                Some((view.0, *after_ms))
            }
            _ => None,
        })
    };
    assert_eq!(timeout(&effects), Some((1, 1_000)));
    let mut waits = Vec::new();
    let mut view = 1;
    for _ in 0..5 {
        let effects =
            feed(&mut backup, [Input::Timeout(TimeoutKind::ViewChange { view: View(view) })]);
        let (next, after) = timeout(&effects).expect("the next view's timer");
        assert_eq!(next, view + 1);
        waits.push(after);
        view = next;
    }
    assert_eq!(waits, vec![2_000, 4_000, 8_000, 8_000, 8_000], "doubling up to the cap");
    // A stale timer for a view it already left does nothing.
    assert!(backup.step(Input::Timeout(TimeoutKind::ViewChange { view: View(1) })).is_empty());
}

#[test]
fn a_replica_never_returns_to_a_view_below_the_one_it_asked_for() {
    let new_view = new_view_from(
        1,
        &[view_change(2, 1, genesis(), vec![]), view_change(3, 1, genesis(), vec![])],
    )
    .unwrap();
    // Replica 3 asked for view 2 already (after view 1 timed out).
    let mut backup = replica(3, N, &[], 0);
    feed(
        &mut backup,
        [
            Input::Message(view_change(1, 1, genesis(), vec![])),
            Input::Message(view_change(2, 1, genesis(), vec![])),
            Input::Timeout(TimeoutKind::ViewChange { view: View(1) }),
        ],
    );
    let effects = feed(&mut backup, [Input::Message(new_view)]);
    assert!(
        !effects.iter().any(|effect| matches!(effect, Effect::ViewEntered { .. })),
        "{effects:?}"
    );
    assert_eq!(backup.view(), View(0));
}

#[test]
fn a_restarted_replica_keeps_its_view_change_promise() {
    let mut backup = replica(2, N, &[], 0);
    let records =
        records(&feed(&mut backup, [Input::Message(suspect(1, 0)), Input::Message(suspect(3, 0))]));
    assert!(records.iter().any(|record| matches!(
        record,
        Record::Sent(SignedMessage { message: Message::ViewChange { new_view: View(1), .. }, .. })
    )));
    let mut restarted = replica(2, N, &records, 0);
    assert!(restarted.in_view_change());
    let effects = feed(&mut restarted, [Input::Message(pre_prepare(0, 1, batch_of(b"old view")))]);
    assert!(broadcasts(&effects).is_empty(), "no PREPARE in the view it left: {effects:?}");
}

#[test]
fn a_replica_in_a_view_change_still_learns_committed_batches() {
    let mut backup = replica(3, N, &[], 0);
    feed(&mut backup, [Input::Message(suspect(1, 0)), Input::Message(suspect(2, 0))]);
    assert!(backup.in_view_change());
    let batch = batch_of(b"decided");
    let digest = sha3_256(&batch);
    let mut inputs = vec![Input::Message(pre_prepare(0, 1, batch))];
    inputs.extend((0..3).map(|sender| Input::Message(commit(sender, 0, 1, digest))));
    let effects = feed(&mut backup, inputs);
    let delivered: Vec<(u64, usize)> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Deliver(delivery) => {
                Some((delivery.sequence.0, delivery.certificate.commits.len()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(delivered, vec![(1, 3)], "2f + 1 COMMITs decide the batch");
    assert!(
        broadcasts(&effects)
            .iter()
            .all(|message| matches!(message.message, Message::FetchBatch { .. })),
        "nothing is sent in the view it left: {effects:?}"
    );
}

#[test]
fn a_silent_primary_is_replaced_and_the_new_primary_commits_the_pending_batch() {
    let mut cluster = Cluster::new(N);
    cluster.down.push(0);
    let request = b"stuck behind a silent primary".to_vec();
    for id in 1..N {
        cluster.queue.push_back((id, Input::Request { request: request.clone() }));
    }
    cluster.run();
    assert!(cluster.delivered.iter().all(Vec::is_empty));
    let watch = Watch::Request(sha3_256(&request));
    // Each backup's timer expires twice: it relays the request, then suspects.
    for _ in 0..2 {
        for id in 1..N {
            cluster
                .queue
                .push_back((id, Input::Timeout(TimeoutKind::Request { view: View(0), watch })));
        }
        cluster.run();
    }
    for id in 1..N {
        assert!(cluster.views.contains(&(id, 1)), "replica {id} entered view 1");
        assert_eq!(
            cluster.delivered[usize::from(id)],
            vec![(1, sha3_256(&batch_in(1, &request)))],
            "replica {id} delivered the batch the primary of view 1 cut"
        );
    }
    assert!(cluster.evidence.is_empty(), "{:?}", cluster.evidence);
}

#[test]
fn a_replica_behind_in_views_learns_decisions_from_commit_certificates_and_fetches_the_batch() {
    // Replica 3 is still in view 0 (it missed the NEW-VIEW); the others decided s1 in
    // view 1, where replica 1 is the primary.
    let mut backup = replica(3, N, &[], 0);
    let batch = batch_in(1, b"decided in view 1");
    let digest = sha3_256(&batch);
    let effects =
        feed(&mut backup, (0..3).map(|sender| Input::Message(commit(sender, 1, 1, digest))));
    assert!(evidence(&effects).is_empty(), "a later view is not misbehaviour: {effects:?}");
    // It decided, lacks the batch, and asks f + 1 of the replicas that committed it.
    let asked: Vec<ReplicaId> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { to, message } if message.message == Message::FetchBatch { digest } => {
                Some(*to)
            }
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 2, "{effects:?}");
    // A wrong batch is evidence; the right one is delivered.
    let wrong = batch_in(1, b"something else");
    let effects = feed(
        &mut backup,
        [Input::Message(signed(asked[0], Message::Batch { digest, batch: wrong }))],
    );
    assert_eq!(evidence(&effects), [&Evidence::BatchDigestMismatch { sender: asked[0] }]);
    let effects = feed(
        &mut backup,
        [Input::Message(signed(asked[1], Message::Batch { digest, batch: batch.clone() }))],
    );
    let delivered: Vec<(u64, u64)> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Deliver(delivery) => Some((delivery.certificate.view.0, delivery.sequence.0)),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, vec![(1, 1)]);
    assert_eq!(backup.view(), View(0), "it votes in no view it has not entered");
    // A batch nobody asked for is dropped without a word.
    let effects = feed(&mut backup, [Input::Message(signed(1, Message::Batch { digest, batch }))]);
    assert!(effects.is_empty());
}

// ---- A primary whose window waits on execution is not suspected (issue 9's attack) ----

/// Batch `sequence` of view 0, holding `request`, decided at `backup`: the primary's
/// PRE-PREPARE and the other backups' votes.
fn decide(
    backup: &mut pactum_consensus::Replica<common::TestCrypto>,
    sequence: u64,
    request: &[u8],
) -> Vec<Effect> {
    let batch = batch_of(request);
    let digest = sha3_256(&batch);
    let effects = feed(
        backup,
        [
            Input::Message(pre_prepare(0, sequence, batch)),
            Input::Message(common::prepare(1, 0, sequence, digest)),
            Input::Message(common::prepare(3, 0, sequence, digest)),
            Input::Message(commit(1, 0, sequence, digest)),
            Input::Message(commit(3, 0, sequence, digest)),
        ],
    );
    assert!(
        effects.iter().any(|effect| matches!(effect, Effect::Deliver(_))),
        "batch {sequence} is delivered: {effects:?}"
    );
    effects
}

fn executed(sequence: u64) -> Input {
    Input::Executed {
        sequence: pactum_consensus::Sequence(sequence),
        state_digest: common::state(sequence),
    }
}

fn suspected(effects: &[Effect]) -> bool {
    broadcasts(effects).iter().any(|message| matches!(message.message, Message::Suspect { .. }))
}

/// The request `waiting` arrives at a backup whose primary has filled its window (four
/// batches decided, none executed yet); its first expiry relays it. Returns the timer.
fn waiting_behind_a_full_window(
    backup: &mut pactum_consensus::Replica<common::TestCrypto>,
) -> TimeoutKind {
    let mut timers = Vec::new();
    for sequence in 1..=4 {
        timers.extend(request_timers(&decide(
            backup,
            sequence,
            format!("other {sequence}").as_bytes(),
        )));
    }
    timers.extend(request_timers(&backup.step(Input::Request { request: b"waiting".to_vec() })));
    // The timer armed so far watched the first batch's delivery, done now: when it fires,
    // the backup watches the request.
    let effects = feed(backup, [Input::Timeout(*timers.last().expect("a timer"))]);
    let armed = request_timers(&effects);
    let watch = Watch::Request(sha3_256(b"waiting"));
    assert_eq!(armed, [TimeoutKind::Request { view: View(0), watch }], "{effects:?}");
    let effects = feed(backup, [Input::Timeout(armed[0])]);
    assert!(effects.iter().any(|effect| matches!(effect, Effect::Relay { .. })), "{effects:?}");
    armed[0]
}

#[test]
fn a_backup_does_not_suspect_a_primary_whose_full_window_waits_on_slow_execution() {
    let mut backup = replica(2, N, &[], 0);
    let timer = waiting_behind_a_full_window(&mut backup);
    // Execution is slow (a block of a billion gas takes seconds): a timer period in which
    // it finishes no block, and periods in which it finishes one each. The primary has had
    // no room to propose the request, so the wait is not its fault.
    let effects = feed(&mut backup, [Input::Timeout(timer)]);
    assert!(!suspected(&effects), "suspected while execution had blocks in hand: {effects:?}");
    for sequence in 1..=4 {
        let effects = feed(&mut backup, [executed(sequence), Input::Timeout(timer)]);
        assert!(!suspected(&effects), "suspected while execution moved: {effects:?}");
        assert_eq!(request_timers(&effects), [timer], "the request is watched again");
    }
    // Everything delivered is executed and nothing moves: then the primary is suspected,
    // as before.
    let effects = feed(&mut backup, [Input::Timeout(timer)]);
    assert!(suspected(&effects), "{effects:?}");
}

#[test]
fn a_primary_that_proposes_a_checkpoint_interval_of_other_batches_is_suspected_however_fast_it_goes()
 {
    let mut backup = replica(2, N, &[], 0);
    let timer = waiting_behind_a_full_window(&mut backup);
    // The ledger moves on: the first two batches are executed and checkpointed, which
    // makes room for two more, and the primary proposes other batches there.
    let effects = feed(&mut backup, [executed(1), executed(2)]);
    assert!(!suspected(&effects));
    for sender in [1, 3] {
        let checkpoint = Message::Checkpoint {
            sequence: pactum_consensus::Sequence(2),
            state_digest: common::state(2),
        };
        feed(&mut backup, [Input::Message(signed(sender, checkpoint))]);
    }
    decide(&mut backup, 5, b"other 5");
    let effects = feed(&mut backup, [Input::Timeout(timer)]);
    assert!(!suspected(&effects), "one batch past the request: {effects:?}");
    // A checkpoint interval (two batches) proposed since the request began to wait.
    decide(&mut backup, 6, b"other 6");
    let effects = feed(&mut backup, [Input::Timeout(timer)]);
    assert!(suspected(&effects), "{effects:?}");
}
