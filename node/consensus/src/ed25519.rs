//! The production [`Crypto`]: Ed25519 signatures (strict verification) and SHA3-256 batch
//! digests. The replica's own key signs; the validator set's keys verify, by replica id.

use pactum_types::crypto::Keypair;
use pactum_types::hash::sha3_256;
use pactum_types::{Hash, PublicKey, Signature};

use crate::message::ReplicaId;
use crate::replica::Crypto;

/// Ed25519 with the validators' keys in replica-id order.
#[derive(Debug)]
pub struct Ed25519Crypto {
    keypair: Keypair,
    validators: Vec<PublicKey>,
}

impl Ed25519Crypto {
    /// `validators[i]` is replica `i`'s consensus key (the key in its certificate).
    pub fn new(keypair: Keypair, validators: Vec<PublicKey>) -> Self {
        Self { keypair, validators }
    }
}

impl Crypto for Ed25519Crypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        // The PBFT domain tag is already the first part of `bytes`.
        self.keypair.sign(&[], bytes)
    }

    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        self.validators
            .get(usize::from(signer))
            .is_some_and(|key| key.verify(&[], bytes, signature).is_ok())
    }

    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}
