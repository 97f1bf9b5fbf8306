//! Signatures for simulated replicas: cheap keyed SHA3 for most seeds, the node's own
//! Ed25519 for some. Twins share their replica's secret, as two copies of one validator
//! share its key.

use std::sync::Arc;

use pactum_consensus::{Crypto, Ed25519Crypto, ReplicaId, Verifier};
use pactum_types::crypto::Keypair;
use pactum_types::hash::{sha3_256, sha3_256_parts};
use pactum_types::{Hash, Signature};

/// SHA3 keyed by a per-replica secret. Forgery is impossible for the simulated Byzantine
/// replicas: they never see the other replicas' secrets.
#[derive(Debug, Clone)]
pub struct FastCrypto {
    id: ReplicaId,
    secrets: Arc<Vec<[u8; 32]>>,
}

fn fast_signature(secret: &[u8; 32], bytes: &[u8]) -> Signature {
    let first = sha3_256_parts(&[secret, bytes]);
    let second = sha3_256(&first.0);
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&first.0);
    signature[32..].copy_from_slice(&second.0);
    Signature(signature)
}

impl Verifier for FastCrypto {
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        self.secrets
            .get(usize::from(signer))
            .is_some_and(|secret| fast_signature(secret, bytes) == *signature)
    }

    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}

impl Crypto for FastCrypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        fast_signature(&self.secrets[usize::from(self.id)], bytes)
    }
}

/// Either crypto, so one simulator drives both.
#[derive(Debug)]
pub enum SimCrypto {
    Fast(FastCrypto),
    Ed25519(Box<Ed25519Crypto>),
}

impl SimCrypto {
    pub fn new(secrets: &Arc<Vec<[u8; 32]>>, id: ReplicaId, real_signatures: bool) -> Self {
        if real_signatures {
            let keys =
                secrets.iter().map(|secret| Keypair::from_seed(secret).public_key()).collect();
            let own = Keypair::from_seed(&secrets[usize::from(id)]);
            SimCrypto::Ed25519(Box::new(Ed25519Crypto::new(own, keys)))
        } else {
            SimCrypto::Fast(FastCrypto { id, secrets: Arc::clone(secrets) })
        }
    }
}

impl Verifier for SimCrypto {
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        match self {
            SimCrypto::Fast(crypto) => crypto.verify(signer, bytes, signature),
            SimCrypto::Ed25519(crypto) => crypto.verify(signer, bytes, signature),
        }
    }

    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}

/// The most weight a simulated batch holds: with requests weighing 1 to 3, batches are
/// often cut by weight before they are full by count.
pub const SIM_BATCH_WEIGHT_MAX: u64 = 5;

impl Crypto for SimCrypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        match self {
            SimCrypto::Fast(crypto) => crypto.sign(bytes),
            SimCrypto::Ed25519(crypto) => crypto.sign(bytes),
        }
    }

    /// 1 to 3, from the request's bytes (as the node's weight is its gas limit).
    fn request_weight(&self, request: &[u8]) -> u64 {
        1 + u64::from(sha3_256(request).0[0] % 3)
    }
}
