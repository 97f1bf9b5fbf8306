//! Helpers shared by the replica tests: keyed-hash test signatures, a configuration, and
//! a cluster that delivers every message at once in FIFO order.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::collections::VecDeque;

use pactum_consensus::{
    Config, Crypto, Effect, Evidence, Input, Message, Record, Replica, ReplicaId, SignedMessage,
};
use pactum_types::hash::{sha3_256, sha3_256_parts};
use pactum_types::{Hash, Signature};

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

impl Crypto for TestCrypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        signature_of(self.id, bytes)
    }
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        signature_of(signer, bytes) == *signature
    }
    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}

pub fn config(replicas: u16) -> Config {
    Config {
        replicas,
        checkpoint_interval: 2,
        watermark_window: 4,
        retransmit_interval_ms: 100,
        request_timeout_ms: 1_000,
        view_change_timeout_ms: 1_000,
        view_change_timeout_max_ms: 8_000,
        batch_requests_max: 1,
        batch_bytes_max: 1024,
        batch_timeout_ms: 10,
        broken_quorum_for_tests: false,
    }
}

pub fn replica(
    id: ReplicaId,
    replicas: u16,
    records: &[Record],
    executed: u64,
) -> Replica<TestCrypto> {
    Replica::new(id, config(replicas), TestCrypto { id }, records, executed).unwrap()
}

pub fn signed(sender: ReplicaId, message: Message) -> SignedMessage {
    let signature = signature_of(sender, &message.signing_bytes(sender));
    SignedMessage { sender, message, signature }
}

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
            for effect in effects {
                match effect {
                    Effect::Persist(record) => self.records[usize::from(id)].push(record),
                    Effect::Broadcast(message) => {
                        for to in 0..self.replicas.len() as u16 {
                            if to != id && !self.down.contains(&to) {
                                self.queue.push_back((to, Input::Message(message.clone())));
                            }
                        }
                    }
                    Effect::Send { to, message } => {
                        self.queue.push_back((to, Input::Message(message)))
                    }
                    Effect::Deliver(delivery) => {
                        assert_eq!(
                            delivery.commit_certificate.len(),
                            3,
                            "2f + 1 commit signatures"
                        );
                        self.delivered[usize::from(id)].push((delivery.sequence, delivery.digest));
                        let state = sha3_256(&delivery.sequence.to_be_bytes());
                        self.queue.push_back((
                            id,
                            Input::Executed { sequence: delivery.sequence, state_digest: state },
                        ));
                    }
                    Effect::Evidence(evidence) => self.evidence.push(evidence),
                    Effect::ScheduleTimeout { .. }
                    | Effect::RequestStateTransfer { .. }
                    | Effect::RequestRefused { .. } => {}
                    Effect::ViewEntered { view, .. } => self.views.push((id, view)),
                }
            }
        }
    }
}
