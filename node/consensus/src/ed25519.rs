//! The production [`Crypto`]: Ed25519 signatures (strict verification) and SHA3-256 batch
//! digests. The replica's own key signs; the validator set's keys verify, by replica id.

use pactum_types::crypto::Keypair;
use pactum_types::hash::sha3_256;
use pactum_types::{Hash, PublicKey, Signature};

use crate::crypto::{Crypto, Verifier};
use crate::ids::ReplicaId;

/// Verification against the validators' Ed25519 keys in replica-id order: what anyone
/// holding the validator set needs to check a certificate.
#[derive(Debug, Clone)]
pub struct Ed25519Verifier {
    validators: Vec<PublicKey>,
}

impl Ed25519Verifier {
    /// `validators[i]` is replica `i`'s consensus key (the key in its certificate).
    pub fn new(validators: Vec<PublicKey>) -> Self {
        Self { validators }
    }
}

impl Verifier for Ed25519Verifier {
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        self.validators
            .get(usize::from(signer))
            .is_some_and(|key| key.verify(&[], bytes, signature).is_ok())
    }

    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}

/// Ed25519 with this replica's key and the validators' keys in replica-id order.
#[derive(Debug)]
pub struct Ed25519Crypto {
    keypair: Keypair,
    verifier: Ed25519Verifier,
}

impl Ed25519Crypto {
    /// `validators[i]` is replica `i`'s consensus key (the key in its certificate).
    pub fn new(keypair: Keypair, validators: Vec<PublicKey>) -> Self {
        Self { keypair, verifier: Ed25519Verifier::new(validators) }
    }
}

impl Verifier for Ed25519Crypto {
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        self.verifier.verify(signer, bytes, signature)
    }

    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}

impl Crypto for Ed25519Crypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        // The PBFT domain tag is already the first part of `bytes`.
        self.keypair.sign(&[], bytes)
    }
}
