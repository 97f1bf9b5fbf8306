//! Byzantine replicas: what each [`Strategy`] does to the messages its replica sends and
//! receives. A Byzantine replica runs the honest replica code underneath and signs only
//! with its own key; the strategies rewrite, withhold, delay, replay and add messages.

use pactum_consensus::{
    BatchHeader, Crypto, Message, ReplicaId, Reproposal, Sequence, SignedMessage, View,
    decode_batch, encode_batch, pre_prepare_signing_bytes,
};
use pactum_types::Hash;
use pactum_types::hash::sha3_256;
use rand::Rng;

use crate::scenario::Strategy;
use crate::simulation::Simulation;

impl Simulation {
    /// `message` signed by node `node`'s key for its epoch.
    fn resign(&self, node: usize, message: Message) -> SignedMessage {
        let from = self.node_id(node);
        let crypto = self.crypto_of(from);
        let signature = crypto.sign(&message.signing_bytes(&self.chain_of(node), from));
        SignedMessage { sender: from, message, signature }
    }

    /// What a Byzantine replica `from` (a node) sends to replica `to` instead of
    /// `message`: zero or more messages, each with an extra delay.
    pub(crate) fn byzantine_outgoing(
        &mut self,
        from: usize,
        to: ReplicaId,
        strategy: Strategy,
        message: SignedMessage,
    ) -> Vec<(SignedMessage, u64)> {
        let id = self.node_id(from);
        let own = message.sender == id;
        match strategy {
            Strategy::Corrupt => self.corrupt(from, message),
            Strategy::Equivocate => match &message.message {
                // As primary: the odd replicas get a different, well-formed batch (the same
                // requests cut a millisecond later).
                Message::PrePrepare { view, sequence, batch, .. } if own && to % 2 == 1 => {
                    match self.variant(batch) {
                        Some(batch) => {
                            let digest = sha3_256(&batch);
                            let (view, sequence) = (*view, *sequence);
                            vec![(
                                self.resign(
                                    from,
                                    Message::PrePrepare { view, sequence, digest, batch },
                                ),
                                0,
                            )]
                        }
                        None => vec![(message, 0)],
                    }
                }
                // Its VIEW-CHANGEs hide what it prepared.
                Message::ViewChange { new_view, checkpoint, prepared }
                    if own && !prepared.is_empty() =>
                {
                    let (new_view, checkpoint) = (*new_view, checkpoint.clone());
                    let hidden = Message::ViewChange { new_view, checkpoint, prepared: Vec::new() };
                    vec![(self.resign(from, hidden), 0)]
                }
                // And, as new primary, it plays its NEW-VIEW as a withholder does: the
                // stale NEW-VIEW of issue 7's first finding needs both.
                Message::NewView { .. } if own => {
                    self.byzantine_outgoing(from, to, Strategy::WithholdNewView, message)
                }
                _ => vec![(message, 0)],
            },
            Strategy::Censor => match &message.message {
                Message::PrePrepare { view, sequence, batch, .. } if own => {
                    match self.censored(batch) {
                        Some(batch) if batch.is_empty() => Vec::new(),
                        Some(batch) => {
                            let digest = sha3_256(&batch);
                            let (view, sequence) = (*view, *sequence);
                            vec![(
                                self.resign(
                                    from,
                                    Message::PrePrepare { view, sequence, digest, batch },
                                ),
                                0,
                            )]
                        }
                        None => vec![(message, 0)],
                    }
                }
                _ => vec![(message, 0)],
            },
            Strategy::ForgeNewView => match &message.message {
                Message::NewView { view, view_changes, pre_prepares } if own && to % 2 == 1 => {
                    let crypto = self.crypto_of(id);
                    let null = sha3_256(&[]);
                    let forged: Vec<Reproposal> = pre_prepares
                        .iter()
                        .map(|reproposal| Reproposal {
                            sequence: reproposal.sequence,
                            digest: null,
                            signature: crypto.sign(&pre_prepare_signing_bytes(
                                &self.chain_of(from),
                                id,
                                *view,
                                reproposal.sequence,
                                &null,
                            )),
                        })
                        .collect();
                    // It commits the forged re-proposals too, so the replicas it fooled
                    // can gather a quorum for them.
                    let commits: Vec<(SignedMessage, u64)> = forged
                        .iter()
                        .map(|reproposal| {
                            let commit = Message::Commit {
                                view: *view,
                                sequence: reproposal.sequence,
                                digest: null,
                            };
                            (self.resign(from, commit), 1)
                        })
                        .collect();
                    let forged = Message::NewView {
                        view: *view,
                        view_changes: view_changes.clone(),
                        pre_prepares: forged,
                    };
                    std::iter::once((self.resign(from, forged), 0)).chain(commits).collect()
                }
                _ => vec![(message, 0)],
            },
            Strategy::WithholdNewView => match &message.message {
                Message::NewView { .. } if own => {
                    // Replayed much later, whatever happens to it now.
                    if self.rng.random_bool(0.5) {
                        let later = self.rng.random_range(1_000..=20_000);
                        let epoch = self.epoch_of_node(from);
                        for node in self.nodes_of(to) {
                            self.push_message(later, node, epoch, message.clone());
                        }
                    }
                    match self.rng.random_range(0..3) {
                        0 => Vec::new(),
                        1 => {
                            let delay = self.rng.random_range(1_000..=15_000);
                            vec![(message, delay)]
                        }
                        _ => vec![(message, 0)],
                    }
                }
                _ => vec![(message, 0)],
            },
        }
    }

    /// What a Byzantine replica does on receiving `message`: it remembers it (for replays),
    /// and an equivocating one votes for every PRE-PREPARE it sees, in that PRE-PREPARE's
    /// view, whatever else it voted for.
    pub(crate) fn byzantine_received(
        &mut self,
        node: usize,
        strategy: Strategy,
        message: &SignedMessage,
    ) {
        self.remember_seen(node, message);
        if strategy != Strategy::Equivocate {
            return;
        }
        let Message::PrePrepare { view, sequence, digest, .. } = message.message else { return };
        if !self.first_vote(node, (view, sequence, digest)) {
            return;
        }
        let id = self.node_id(node);
        let votes = [
            Message::Prepare { view, sequence, digest },
            Message::Commit { view, sequence, digest },
        ];
        let epoch = self.epoch_of_node(node);
        for vote in votes {
            let signed = self.resign(node, vote);
            for to in self.members_of(node) {
                if to != id {
                    for target in self.nodes_of(to) {
                        let delay = self.rng.random_range(1..=self.scenario.delay_max_ms);
                        self.push_message(delay, target, epoch, signed.clone());
                    }
                }
            }
        }
    }

    /// The same requests in a batch stamped a millisecond later (another digest).
    fn variant(&self, batch: &[u8]) -> Option<Vec<u8>> {
        let (requests_max, bytes_max) = self.batch_limits();
        let decoded = decode_batch(batch, requests_max, bytes_max).ok()?;
        let header = decoded.header?;
        let later = BatchHeader { view: header.view, timestamp_ms: header.timestamp_ms + 1 };
        Some(encode_batch(later, &decoded.requests))
    }

    /// The batch without the requests whose digest starts with an even byte (empty if none
    /// is left; `None` if it is not a batch).
    fn censored(&self, batch: &[u8]) -> Option<Vec<u8>> {
        let (requests_max, bytes_max) = self.batch_limits();
        let decoded = decode_batch(batch, requests_max, bytes_max).ok()?;
        let header = decoded.header?;
        let kept: Vec<&[u8]> = decoded
            .requests
            .into_iter()
            .filter(|request| sha3_256(request).0[0] % 2 == 1)
            .collect();
        if kept.is_empty() {
            return Some(Vec::new());
        }
        Some(encode_batch(header, &kept))
    }

    /// Random corruption, mixed with honest messages.
    fn corrupt(&mut self, from: usize, message: SignedMessage) -> Vec<(SignedMessage, u64)> {
        let roll = self.rng.random_range(0..100);
        let random_digest = |rng: &mut rand::rngs::StdRng| Hash(rng.random());
        let outgoing = match (roll, &message.message) {
            (0..=24, _) => {
                let mut forged = message;
                forged.signature.0[0] ^= 0xff;
                vec![forged]
            }
            (25..=49, Message::Prepare { view, sequence, .. }) => {
                let (view, sequence) = (*view, *sequence);
                let digest = random_digest(&mut self.rng);
                vec![self.resign(from, Message::Prepare { view, sequence, digest }), message]
            }
            (25..=49, Message::Commit { view, sequence, .. }) => {
                let (view, sequence) = (*view, *sequence);
                let digest = random_digest(&mut self.rng);
                vec![self.resign(from, Message::Commit { view, sequence, digest })]
            }
            (25..=49, Message::Checkpoint { sequence, .. }) => {
                let sequence = *sequence;
                let state_digest = random_digest(&mut self.rng);
                vec![self.resign(from, Message::Checkpoint { sequence, state_digest })]
            }
            (50..=59, _) => {
                let sequence = Sequence(self.rng.random_range(1_000_000..2_000_000));
                let digest = random_digest(&mut self.rng);
                vec![
                    self.resign(from, Message::Commit { view: View(0), sequence, digest }),
                    message,
                ]
            }
            (60..=64, _) => {
                let batch = b"forged".to_vec();
                let digest = random_digest(&mut self.rng);
                let forged =
                    Message::PrePrepare { view: View(0), sequence: Sequence(1), digest, batch };
                vec![self.resign(from, forged)]
            }
            (65..=69, _) => {
                // A view-change flood: VIEW-CHANGEs for arbitrary views.
                let new_view = View(self.rng.random_range(1..200));
                let flood = Message::ViewChange {
                    new_view,
                    checkpoint: pactum_consensus::CheckpointCertificate::genesis(),
                    prepared: Vec::new(),
                };
                vec![self.resign(from, flood), message]
            }
            (70..=79, _) => {
                // A replay of something received earlier: old views, old sequence numbers,
                // other replicas' signatures.
                let seen = self.seen(from).len();
                if seen == 0 {
                    vec![message]
                } else {
                    let index = self.rng.random_range(0..seen);
                    vec![self.seen(from)[index].clone(), message]
                }
            }
            _ => vec![message],
        };
        outgoing.into_iter().map(|message| (message, 0)).collect()
    }
}
