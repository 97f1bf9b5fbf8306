//! Signing, verification and batch digests, supplied by the caller: the replica never
//! holds a key or picks an algorithm. The simulator supplies cheap keyed hashes, the node
//! Ed25519 ([`crate::Ed25519Crypto`]).

use pactum_types::{Hash, Signature};

use crate::ids::ReplicaId;

/// What checking a certificate needs: the validators' public keys (by replica id) and the
/// batch digest. Anyone holding the validator set has one, a replica or not.
pub trait Verifier {
    /// Whether `signature` is `signer`'s signature over `bytes`.
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool;
    /// The digest that identifies a batch.
    fn digest(&self, batch: &[u8]) -> Hash;
}

/// What a replica needs besides verification: its own signing key and the rule for what
/// may be ordered at all.
pub trait Crypto: Verifier {
    /// Signs `bytes` as this replica.
    fn sign(&self, bytes: &[u8]) -> Signature;
    /// Whether a request in a proposal is acceptable to order at all. A backup refuses to
    /// prepare a batch holding a request that fails (as `Evidence::MalformedBatch`), so a
    /// faulty primary cannot get undecodable or unsigned transactions committed. It must
    /// be a deterministic function of the bytes.
    fn validate_request(&self, request: &[u8]) -> bool {
        let _ = request;
        true
    }
    /// The request's weight against [`crate::Config::batch_weight_max`] (in the node, the
    /// transaction's gas limit). A deterministic function of the bytes; only called on
    /// requests `validate_request` accepts.
    fn request_weight(&self, request: &[u8]) -> u64 {
        let _ = request;
        0
    }
    /// The group whose share of what the primary proposes the request counts against
    /// (in the node, its sender's member organisation): groups are served by fair
    /// queuing over weight, each in arrival order. It must give every request of one
    /// client the same group, so a client's requests keep their order. A primary's local
    /// policy, not a validity rule: backups never check it.
    fn request_group(&self, request: &[u8]) -> u64 {
        let _ = request;
        0
    }
}
