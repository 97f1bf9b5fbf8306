//! Helpers shared by the replica tests: keyed-hash test signatures, a configuration,
//! message builders that take plain numbers, and a cluster that delivers every message at
//! once in FIFO order, checking each replica's invariants after every step.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::collections::VecDeque;

use pactum_consensus::{
    BatchHeader, CheckpointCertificate, Config, Crypto, Effect, Evidence, Input, Message,
    PreparedCertificate, Record, Replica, ReplicaId, Sequence, SignedMessage, Verifier, View,
    encode_batch, pre_prepare_signing_bytes,
};
use pactum_types::hash::{sha3_256, sha3_256_parts};
use pactum_types::{Hash, Signature};

/// The chain every test replica belongs to.
pub const CHAIN: Hash = Hash([0xc4; 32]);

/// Keyed-hash signatures: enough to tell replicas apart in a unit test.
#[derive(Debug, Clone)]
pub struct TestCrypto {
    pub id: ReplicaId,
}

pub fn signature_of(id: ReplicaId, bytes: &[u8]) -> Signature {
    let hash = sha3_256_parts(&[&id.to_be_bytes(), bytes]);
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&hash.0);
    Signature(signature)
}

impl Verifier for TestCrypto {
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        signature_of(signer, bytes) == *signature
    }
    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}

impl Crypto for TestCrypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        signature_of(self.id, bytes)
    }

    /// A request weighs its length (the node's weight is a transaction's gas limit).
    fn request_weight(&self, request: &[u8]) -> u64 {
        request.len() as u64
    }

    /// A request's first byte names its group (the node's group is the sender's
    /// organisation).
    fn request_group(&self, request: &[u8]) -> u64 {
        request.first().copied().map_or(0, u64::from)
    }
}

pub fn config(replicas: u16) -> Config {
    Config {
        members: (0..replicas).collect(),
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
        batch_requests_max: 1,
        batch_bytes_max: 1024,
        batch_timeout_ms: 10,
        batch_weight_max: u64::MAX,
        weight_ahead_max: u64::MAX,
        timestamp_skew_max_ms: 10_000,
        delivery_backlog_max: 64,
        mutation: None,
    }
}

pub fn replica(
    id: ReplicaId,
    replicas: u16,
    records: &[Record],
    executed: u64,
) -> Replica<TestCrypto> {
    Replica::new(id, config(replicas), TestCrypto { id }, records, Sequence(executed)).unwrap()
}

pub fn signed(sender: ReplicaId, message: Message) -> SignedMessage {
    let signature = signature_of(sender, &message.signing_bytes(&CHAIN, sender));
    SignedMessage { sender, message, signature }
}

pub fn primary_of(view: u64, replicas: u16) -> ReplicaId {
    (view % u64::from(replicas)) as ReplicaId
}

/// A batch cut in `view` holding the one request `request`.
pub fn batch_in(view: u64, request: &[u8]) -> Vec<u8> {
    encode_batch(BatchHeader { view, timestamp_ms: 0 }, &[request])
}

/// The primary of `view`'s (n = 4) PRE-PREPARE of `batch` at `sequence`.
pub fn pre_prepare(view: u64, sequence: u64, batch: Vec<u8>) -> SignedMessage {
    signed(
        primary_of(view, 4),
        Message::PrePrepare {
            view: View(view),
            sequence: Sequence(sequence),
            digest: sha3_256(&batch),
            batch,
        },
    )
}

pub fn prepare(sender: ReplicaId, view: u64, sequence: u64, digest: Hash) -> SignedMessage {
    signed(sender, Message::Prepare { view: View(view), sequence: Sequence(sequence), digest })
}

pub fn commit(sender: ReplicaId, view: u64, sequence: u64, digest: Hash) -> SignedMessage {
    signed(sender, Message::Commit { view: View(view), sequence: Sequence(sequence), digest })
}

pub fn suspect(sender: ReplicaId, view: u64) -> SignedMessage {
    signed(sender, Message::Suspect { view: View(view) })
}

/// A prepared certificate (n = 4) for `batch` at (view, sequence), with PREPAREs from
/// `preparers`.
pub fn certificate(
    view: u64,
    sequence: u64,
    batch: &[u8],
    preparers: &[ReplicaId],
) -> PreparedCertificate {
    let digest = sha3_256(batch);
    let primary = primary_of(view, 4);
    let (view, sequence) = (View(view), Sequence(sequence));
    PreparedCertificate {
        view,
        sequence,
        digest,
        primary_signature: signature_of(
            primary,
            &pre_prepare_signing_bytes(&CHAIN, primary, view, sequence, &digest),
        ),
        prepares: preparers
            .iter()
            .map(|&sender| {
                let vote = Message::Prepare { view, sequence, digest };
                (sender, signature_of(sender, &vote.signing_bytes(&CHAIN, sender)))
            })
            .collect(),
    }
}

/// A checkpoint certificate at `sequence` (of the test state digest) signed by `signers`.
pub fn checkpoint_certificate(sequence: u64, signers: &[ReplicaId]) -> CheckpointCertificate {
    if sequence == 0 {
        return CheckpointCertificate::genesis();
    }
    let state_digest = state(sequence);
    let vote = Message::Checkpoint { sequence: Sequence(sequence), state_digest };
    CheckpointCertificate {
        sequence: Sequence(sequence),
        state_digest,
        signatures: signers
            .iter()
            .map(|&signer| (signer, signature_of(signer, &vote.signing_bytes(&CHAIN, signer))))
            .collect(),
    }
}

/// The test state digest after `sequence`.
pub fn state(sequence: u64) -> Hash {
    sha3_256(&sequence.to_be_bytes())
}

pub fn view_change(
    sender: ReplicaId,
    new_view: u64,
    checkpoint: CheckpointCertificate,
    prepared: Vec<PreparedCertificate>,
) -> SignedMessage {
    signed(sender, Message::ViewChange { new_view: View(new_view), checkpoint, prepared })
}

/// Feeds VIEW-CHANGEs to a fresh primary of `new_view` (n = 4) and returns the NEW-VIEW it
/// sends.
pub fn new_view_from(new_view: u64, view_changes: &[SignedMessage]) -> Option<SignedMessage> {
    let mut new_primary = replica(primary_of(new_view, 4), 4, &[], 0);
    for message in view_changes {
        let effects = new_primary.step(Input::Message(message.clone()));
        new_primary.check_invariants();
        if let Some(found) = broadcasts(&effects)
            .into_iter()
            .find(|message| matches!(message.message, Message::NewView { .. }))
        {
            return Some(found.clone());
        }
    }
    None
}

pub fn broadcasts(effects: &[Effect]) -> Vec<&SignedMessage> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Broadcast(message) => Some(message),
            _ => None,
        })
        .collect()
}

pub fn evidence(effects: &[Effect]) -> Vec<&Evidence> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Evidence(evidence) => Some(evidence),
            _ => None,
        })
        .collect()
}

pub fn records(effects: &[Effect]) -> Vec<Record> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Persist(record) => Some(record.clone()),
            _ => None,
        })
        .collect()
}

/// Steps `replica` through `inputs`, checking its invariants after each, and returns every
/// effect.
pub fn feed<C: Crypto>(
    replica: &mut Replica<C>,
    inputs: impl IntoIterator<Item = Input>,
) -> Vec<Effect> {
    let mut effects = Vec::new();
    for input in inputs {
        effects.extend(replica.step(input));
        replica.check_invariants();
    }
    effects
}

/// Which messages the cluster drops on the way: `(to, message) -> dropped`.
pub type DropRule = Box<dyn Fn(ReplicaId, &SignedMessage) -> bool>;

/// A cluster where every message is delivered at once, in FIFO order.
pub struct Cluster {
    pub replicas: Vec<Replica<TestCrypto>>,
    pub records: Vec<Vec<Record>>,
    pub delivered: Vec<Vec<(u64, Hash)>>,
    pub evidence: Vec<Evidence>,
    pub queue: VecDeque<(ReplicaId, Input)>,
    /// Replicas that are down: nothing reaches them and nothing they send goes out.
    pub down: Vec<ReplicaId>,
    /// Every view a replica entered, in order.
    pub views: Vec<(ReplicaId, u64)>,
    /// Messages dropped on the way.
    pub drop: DropRule,
}

impl Cluster {
    pub fn new(size: u16) -> Self {
        Self {
            replicas: (0..size).map(|id| replica(id, size, &[], 0)).collect(),
            records: vec![Vec::new(); usize::from(size)],
            delivered: vec![Vec::new(); usize::from(size)],
            evidence: Vec::new(),
            queue: VecDeque::new(),
            down: Vec::new(),
            views: Vec::new(),
            drop: Box::new(|_, _| false),
        }
    }

    fn send(&mut self, to: ReplicaId, message: SignedMessage) {
        if !self.down.contains(&to) && !(self.drop)(to, &message) {
            self.queue.push_back((to, Input::Message(message)));
        }
    }

    pub fn run(&mut self) {
        let mut steps = 0;
        while let Some((id, input)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "the cluster does not quiesce");
            if self.down.contains(&id) {
                continue;
            }
            let effects = self.replicas[usize::from(id)].step(input);
            self.replicas[usize::from(id)].check_invariants();
            for effect in effects {
                match effect {
                    Effect::Persist(record) => self.records[usize::from(id)].push(record),
                    Effect::Broadcast(message) => {
                        for to in 0..self.replicas.len() as u16 {
                            if to != id {
                                self.send(to, message.clone());
                            }
                        }
                    }
                    Effect::Send { to, message } => self.send(to, message),
                    Effect::Deliver(delivery) => {
                        let replicas = self.replicas.len() as u16;
                        delivery
                            .certificate
                            .verify(&config(replicas), &TestCrypto { id })
                            .expect("every delivery carries a valid commit certificate");
                        let sequence = delivery.sequence.0;
                        self.delivered[usize::from(id)]
                            .push((sequence, delivery.certificate.digest));
                        self.queue.push_back((
                            id,
                            Input::Executed {
                                sequence: delivery.sequence,
                                state_digest: state(sequence),
                            },
                        ));
                    }
                    Effect::Evidence(evidence) => self.evidence.push(evidence),
                    Effect::Relay { to, requests } => {
                        for request in requests {
                            self.queue.push_back((to, Input::Request { request }));
                        }
                    }
                    Effect::ScheduleTimeout { .. }
                    | Effect::RequestStateTransfer { .. }
                    | Effect::RequestRefused { .. } => {}
                    Effect::ViewEntered { view, .. } => self.views.push((id, view.0)),
                }
            }
        }
    }
}
