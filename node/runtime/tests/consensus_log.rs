//! The consensus log on a real RocksDB store: a backup's records survive a restart in
//! order, compaction at stable checkpoints keeps the log bounded, the restarted replica
//! keeps its promises, and a damaged record is a clear error.

use pactum_consensus::{
    BatchHeader, CheckpointCertificate, Config, Crypto, Ed25519Crypto, Effect, Input, Message,
    Record, Replica, Sequence, SignedMessage, View, encode_batch,
};
use pactum_runtime::{ConsensusLog, LogError};
use pactum_storage::Store;
use pactum_types::Hash;
use pactum_types::crypto::Keypair;
use pactum_types::hash::sha3_256;

const N: u16 = 4;

fn keypair(id: u16) -> Keypair {
    Keypair::from_seed(&sha3_256(&id.to_be_bytes()).0)
}

fn crypto(id: u16) -> Ed25519Crypto {
    Ed25519Crypto::new(keypair(id), (0..N).map(|id| keypair(id).public_key()).collect())
}

const CHAIN: Hash = Hash([9; 32]);

fn config() -> Config {
    Config {
        members: (0..N).collect(),
        epoch: 0,
        chain: CHAIN,
        start: Sequence::ZERO,
        start_digest: Hash::ZERO,
        checkpoint_interval: 2,
        watermark_window: 4,
        retransmit_interval_ms: 100,
        request_timeout_ms: 1_000,
        view_change_timeout_ms: 1_000,
        view_change_timeout_max_ms: 8_000,
        batch_requests_max: 16,
        batch_bytes_max: 4096,
        batch_timeout_ms: 10,
        batch_weight_max: u64::MAX,
        weight_ahead_max: u64::MAX,
        timestamp_skew_max_ms: 10_000,
        delivery_backlog_max: 64,
        mutation: None,
    }
}

fn signed(sender: u16, message: Message) -> SignedMessage {
    let signature = crypto(sender).sign(&message.signing_bytes(&CHAIN, sender));
    SignedMessage { sender, message, signature }
}

/// Steps the replica, persisting its records before looking at anything else (as the
/// runtime does); returns the other effects.
fn step(
    replica: &mut Replica<Ed25519Crypto>,
    log: &mut ConsensusLog,
    store: &Store,
    input: Input,
) -> Vec<Effect> {
    let effects = replica.step(input);
    let records: Vec<Record> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Persist(record) => Some(record.clone()),
            _ => None,
        })
        .collect();
    log.persist(store, &records).unwrap();
    effects.into_iter().filter(|effect| !matches!(effect, Effect::Persist(_))).collect()
}

/// Replica 1 (a backup) orders `batches` batches proposed by replica 0, with replicas 2
/// and 3 voting and checkpointing.
fn run_backup(
    store: &Store,
    log: &mut ConsensusLog,
    replica: &mut Replica<Ed25519Crypto>,
    batches: u64,
) {
    for sequence in (1..=batches).map(Sequence) {
        let batch =
            encode_batch(BatchHeader::default(), &[format!("request {sequence}").into_bytes()]);
        let digest = sha3_256(&batch);
        let mut inputs = vec![Input::Message(signed(
            0,
            Message::PrePrepare { view: View(0), sequence, digest, batch },
        ))];
        for voter in [2, 3] {
            inputs.push(Input::Message(signed(
                voter,
                Message::Prepare { view: View(0), sequence, digest },
            )));
        }
        for voter in [0, 2, 3] {
            inputs.push(Input::Message(signed(
                voter,
                Message::Commit { view: View(0), sequence, digest },
            )));
        }
        for input in inputs {
            for effect in step(replica, log, store, input) {
                if let Effect::Deliver(delivery) = effect {
                    let state_digest = sha3_256(&delivery.sequence.0.to_be_bytes());
                    step(
                        replica,
                        log,
                        store,
                        Input::Executed { sequence: delivery.sequence, state_digest },
                    );
                    if delivery.sequence.0 % 2 == 0 {
                        for voter in [0, 2] {
                            step(
                                replica,
                                log,
                                store,
                                Input::Message(signed(
                                    voter,
                                    Message::Checkpoint {
                                        sequence: delivery.sequence,
                                        state_digest,
                                    },
                                )),
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn records_survive_a_restart_in_order_and_compaction_keeps_the_log_bounded() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    let store = Store::open(&path).unwrap();
    let (mut log, replay) = ConsensusLog::open(&store, 0).unwrap();
    assert!(replay.is_empty());
    let mut replica = Replica::new(1, config(), crypto(1), &replay, Sequence(0)).unwrap();
    run_backup(&store, &mut log, &mut replica, 40);
    assert_eq!(replica.low_watermark(), Sequence(40), "checkpoint 40 is stable");
    // Forty batches wrote well over a hundred records; compaction keeps those above the
    // last stable checkpoint and the checkpoint itself only.
    assert!(log.len() <= 4, "the log holds {} records", log.len());
    assert!(log.writes() <= 40 * 7, "at most one synced write per step");

    // Prepare sequence 41 (not yet stable), then crash and reopen.
    let batch = encode_batch(BatchHeader::default(), &[b"in flight"]);
    let digest = sha3_256(&batch);
    step(
        &mut replica,
        &mut log,
        &store,
        Input::Message(signed(
            0,
            Message::PrePrepare { view: View(0), sequence: Sequence(41), digest, batch },
        )),
    );
    drop(replica);
    drop(store);
    let store = Store::open(&path).unwrap();
    let (log, replay) = ConsensusLog::open(&store, 0).unwrap();
    assert_eq!(log.len(), replay.len());
    assert!(
        replay.iter().any(
            |record| matches!(record, Record::Stable(checkpoint) if checkpoint.sequence == Sequence(40))
        ),
        "{replay:?}"
    );
    let mut restarted = Replica::new(1, config(), crypto(1), &replay, Sequence(40)).unwrap();
    assert_eq!(restarted.low_watermark(), Sequence(40));
    // An equivocating PRE-PREPARE for 41 gets no PREPARE from the restarted replica.
    let other = encode_batch(BatchHeader::default(), &[b"conflicting"]);
    let effects = restarted.step(Input::Message(signed(
        0,
        Message::PrePrepare {
            view: View(0),
            sequence: Sequence(41),
            digest: sha3_256(&other),
            batch: other,
        },
    )));
    assert!(
        !effects.iter().any(|effect| matches!(effect, Effect::Broadcast(_))),
        "no conflicting PREPARE after a restart: {effects:?}"
    );
}

/// Replica 1's VIEW-CHANGE for `view` and the NEW-VIEW that starts it, as records.
fn view_change_and_new_view(view: u64) -> (Record, Record) {
    let view_change = signed(
        1,
        Message::ViewChange {
            new_view: View(view),
            checkpoint: CheckpointCertificate::genesis(),
            prepared: Vec::new(),
        },
    );
    let primary = (view % u64::from(N)) as u16;
    let new_view = signed(
        primary,
        Message::NewView { view: View(view), view_changes: Vec::new(), pre_prepares: Vec::new() },
    );
    (Record::Sent(view_change), Record::Accepted(new_view))
}

/// Issue 7, finding 8: records of the views a replica has left do not accumulate.
#[test]
fn view_change_records_are_compacted_away() {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("store")).unwrap();
    let (mut log, _) = ConsensusLog::open(&store, 0).unwrap();
    for view in 1..=30u64 {
        let (view_change, new_view) = view_change_and_new_view(view);
        log.persist(&store, &[view_change]).unwrap();
        log.persist(&store, &[new_view]).unwrap();
    }
    assert_eq!(log.len(), 1, "only the NEW-VIEW of the current view is kept");
    let (reopened, replay) = ConsensusLog::open(&store, 0).unwrap();
    assert_eq!(reopened.len(), 1);
    assert!(
        matches!(&replay[0], Record::Accepted(message) if message.message.view() == Some(View(30)))
    );
}

#[test]
fn a_damaged_record_is_a_clear_error() {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("store")).unwrap();
    store.consensus_log_put(&7u64.to_be_bytes(), b"\x01\x09garbage").unwrap();
    let error = ConsensusLog::open(&store, 0).unwrap_err();
    assert!(matches!(error, LogError::Corrupt { .. }));
    let message = error.to_string();
    assert!(message.contains("0000000000000007") && message.contains("damaged"), "{message}");
}

/// ADR 0021: the log is one epoch's. A replica of another epoch starts from an empty log
/// whatever a crash left, and the epoch survives compaction.
#[test]
fn a_log_belongs_to_one_epoch_and_keeps_it_through_compaction() {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("store")).unwrap();
    let (mut log, _) = ConsensusLog::open(&store, 0).unwrap();
    log.persist(&store, &[view_change_and_new_view(1).0]).unwrap();
    assert_eq!(ConsensusLog::open(&store, 0).unwrap().1.len(), 1, "the same epoch replays");
    // Epoch 1's replica: the genesis epoch's record is gone, for good.
    let (mut log, replay) = ConsensusLog::open(&store, 1).unwrap();
    assert!(replay.is_empty());
    assert_eq!(log.epoch(), 1);
    assert!(ConsensusLog::open(&store, 0).unwrap().1.is_empty());
    // Compaction (every NEW-VIEW raises the floor) keeps the epoch mark.
    let (mut log5, _) = ConsensusLog::open(&store, 5).unwrap();
    for view in 1..=10u64 {
        let (view_change, new_view) = view_change_and_new_view(view);
        log5.persist(&store, &[view_change]).unwrap();
        log5.persist(&store, &[new_view]).unwrap();
    }
    assert_eq!(ConsensusLog::open(&store, 5).unwrap().1.len(), 1, "epoch 5's log survived");
    // Starting the next epoch empties the log in one write.
    log.start_epoch(&store, 6).unwrap();
    assert!(ConsensusLog::open(&store, 6).unwrap().1.is_empty());
}
