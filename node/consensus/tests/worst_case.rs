//! The largest consensus messages a replica can build, at the largest parameters a
//! configuration may set, fit the message limit (and so a transport frame): a NEW-VIEW
//! carrying 2f + 1 VIEW-CHANGEs, each with a checkpoint proof signed by all n replicas and
//! a prepared certificate for every sequence number of the window, and a re-proposal for
//! every sequence number; and a PRE-PREPARE carrying the largest batch.
//! `Config::largest_message_bytes` is the bound the configuration check uses; this test
//! builds the messages and compares.

use pactum_consensus::{
    BatchHeader, CheckpointCertificate, Config, Message, PreparedCertificate, Reproposal, Sequence,
    SignedMessage, View, batch_bytes_limit, encode_batch,
};
use pactum_types::{Encode, Hash, Signature, limits};

fn config(replicas: u16, window: u64) -> Config {
    Config {
        members: (0..replicas).collect(),
        epoch: 0,
        chain: Hash([1; 32]),
        start: Sequence::ZERO,
        start_digest: Hash::ZERO,
        checkpoint_interval: window / 2,
        watermark_window: window,
        retransmit_interval_ms: 1,
        request_timeout_ms: 1,
        view_change_timeout_ms: 1,
        view_change_timeout_max_ms: 1,
        batch_requests_max: 1,
        batch_bytes_max: batch_bytes_limit(1),
        batch_timeout_ms: 1,
        batch_weight_max: u64::MAX,
        weight_ahead_max: u64::MAX,
        timestamp_skew_max_ms: 10_000,
        delivery_backlog_max: 1,
        mutation: None,
    }
}

/// The largest window (a multiple of 2) this many replicas may use.
fn largest_window(replicas: u16) -> Option<u64> {
    (1..=limits::WATERMARK_WINDOW_MAX / 2)
        .rev()
        .map(|half| half * 2)
        .find(|window| config(replicas, *window).validate().is_ok())
}

fn signed(sender: u16, message: Message) -> SignedMessage {
    SignedMessage { sender, message, signature: Signature([0xab; 64]) }
}

fn worst_new_view(config: &Config) -> SignedMessage {
    let replicas = config.replicas() as u16;
    let faults = config.faults_tolerated() as u16;
    let window = config.watermark_window;
    let signers = |count: u16| (0..count).map(|id| (id, Signature([7; 64]))).collect::<Vec<_>>();
    let checkpoint = CheckpointCertificate {
        sequence: Sequence(window),
        state_digest: Hash([2; 32]),
        signatures: signers(replicas),
    };
    let prepared: Vec<PreparedCertificate> = (1..=window)
        .map(|offset| PreparedCertificate {
            view: View(u64::MAX - 1),
            sequence: Sequence(window + offset),
            digest: Hash([3; 32]),
            primary_signature: Signature([4; 64]),
            prepares: signers(2 * faults),
        })
        .collect();
    let view_change = Message::ViewChange { new_view: View(u64::MAX), checkpoint, prepared };
    let view_changes = (0..=2 * faults).map(|sender| signed(sender, view_change.clone())).collect();
    let pre_prepares = (1..=window)
        .map(|offset| Reproposal {
            sequence: Sequence(window + offset),
            digest: Hash([5; 32]),
            signature: Signature([6; 64]),
        })
        .collect();
    signed(0, Message::NewView { view: View(u64::MAX), view_changes, pre_prepares })
}

#[test]
fn the_largest_messages_fit_at_the_largest_parameters() {
    let mut table = Vec::new();
    for replicas in [4u16, 7, 16, 31, 64, 100, 128, 256] {
        let Some(window) = largest_window(replicas) else {
            panic!("no window at all is allowed for {replicas} replicas");
        };
        let config = config(replicas, window);
        let new_view = worst_new_view(&config).to_bytes().len();
        let bound = config.largest_message_bytes();
        assert!(
            new_view <= bound,
            "n = {replicas}: a NEW-VIEW of {new_view} bytes exceeds the bound {bound}"
        );
        assert!(bound <= limits::CONSENSUS_MESSAGE_BYTES_MAX);
        // One window more is refused.
        let larger = Config {
            watermark_window: window + 2,
            checkpoint_interval: window / 2 + 1,
            ..config.clone()
        };
        assert!(larger.validate().is_err() || window + 2 > limits::WATERMARK_WINDOW_MAX);
        table.push(format!("n = {replicas}: L <= {window}, NEW-VIEW {new_view} bytes"));
    }
    // The largest batch in a PRE-PREPARE.
    let config = config(4, 64);
    let request = vec![0u8; config.batch_bytes_max];
    let batch = encode_batch(BatchHeader::default(), &[request]);
    let pre_prepare = signed(
        0,
        Message::PrePrepare { view: View(1), sequence: Sequence(1), digest: Hash([1; 32]), batch },
    );
    let bytes = pre_prepare.to_bytes().len();
    assert!(
        bytes <= config.largest_message_bytes() && bytes <= limits::CONSENSUS_MESSAGE_BYTES_MAX
    );
    println!("{}\nPRE-PREPARE with the largest batch: {bytes} bytes", table.join("\n"));
}
