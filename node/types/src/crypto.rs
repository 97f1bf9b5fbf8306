//! Ed25519 keys, signatures, domain-separated signing, and batch verification.
//!
//! Every signed message in Pactum starts with a domain tag naming what is signed
//! (`pactum.tx.v1`, `pactum.commit.v1`, ...), so a signature made for one purpose can
//! never be replayed as another.
//!
//! Single verification is `verify_strict` (canonical `s`, no small-order keys or `R`).
//! Batch verification runs ed25519-dalek's batch equation first and, only when a batch
//! fails, verifies its members one by one to name the bad ones. See
//! `docs/adr/0003-signature-verification.md` for how the two relate.

use std::fmt;

use ed25519_dalek::{Signer, Verifier};
use thiserror::Error;

use crate::codec::{Decode, DecodeError, Encode, Reader};

/// Domain tags, one per kind of signed message.
pub mod domain {
    /// A transaction's unsigned bytes.
    pub const TRANSACTION: &[u8] = b"pactum.tx.v1\0";
    /// Test chains built without consensus (the storage chain builder, executor fixtures)
    /// sign their header hashes under this tag. A real block's certificate holds PBFT
    /// COMMITs instead (ADR 0011), which carry the PBFT domain tag.
    pub const TEST_CHAIN_COMMIT: &[u8] = b"pactum.test-chain.commit.v1\0";
}

/// An Ed25519 public key, as its 32-byte compressed encoding.
///
/// Any 32 bytes decode; a key that is not a valid curve point simply fails verification.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature (`R || s`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("public key {public_key} is not a valid Ed25519 point")]
    InvalidPublicKey { public_key: PublicKey },
    #[error("signature does not verify under public key {public_key}")]
    Mismatch { public_key: PublicKey },
}

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Verifies `signature` over `domain || message`.
    pub fn verify(
        &self,
        domain: &[u8],
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let key = self.dalek()?;
        let signed = [domain, message].concat();
        key.verify_strict(&signed, &ed25519_dalek::Signature::from_bytes(&signature.0))
            .map_err(|_| SignatureError::Mismatch { public_key: *self })
    }

    fn dalek(&self) -> Result<ed25519_dalek::VerifyingKey, SignatureError> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0)
            .map_err(|_| SignatureError::InvalidPublicKey { public_key: *self })
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Signature({})", hex::encode(self.0))
    }
}

impl Encode for PublicKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for PublicKey {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PublicKey(reader.array("public key")?))
    }
}

impl Encode for Signature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for Signature {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature(reader.array("signature")?))
    }
}

/// An Ed25519 signing key. Its secret never appears in `Debug` output.
pub struct Keypair {
    signing: ed25519_dalek::SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Keypair({})", self.public_key())
    }
}

/// The operating system could not supply randomness for a new key.
#[derive(Debug, Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct EntropyError(String);

impl Keypair {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, EntropyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| EntropyError(error.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The key whose 32-byte secret seed is `seed` (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self { signing: ed25519_dalek::SigningKey::from_bytes(seed) }
    }

    /// The 32-byte secret seed. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `domain || message`.
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> Signature {
        let signed = [domain, message].concat();
        Signature(self.signing.sign(&signed).to_bytes())
    }
}

/// One signature to check in a batch. `message` already includes its domain tag.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    pub public_key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Verifies many signatures at once.
///
/// Returns `Ok(())` when all verify, or the indices of every item that does not. The fast
/// path is one batch equation; a failing batch is re-checked item by item so that the
/// caller learns exactly which items to reject.
pub fn verify_batch(items: &[SignedMessage<'_>]) -> Result<(), Vec<usize>> {
    if items.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(items.len());
    let mut invalid_keys = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item.public_key.dalek() {
            Ok(key) => keys.push(key),
            Err(_) => invalid_keys.push(index),
        }
    }
    if invalid_keys.is_empty() {
        let messages: Vec<&[u8]> = items.iter().map(|item| item.message).collect();
        let signatures: Vec<ed25519_dalek::Signature> = items
            .iter()
            .map(|item| ed25519_dalek::Signature::from_bytes(&item.signature.0))
            .collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return Ok(());
        }
    }
    let failed: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| !verify_prefixed(item))
        .map(|(index, _)| index)
        .collect();
    if failed.is_empty() {
        // The batch equation and strict single verification disagree: only possible for
        // crafted signatures with small-order components. Strict single verification is
        // the rule; such items were accepted by it, so the batch is valid.
        Ok(())
    } else {
        Err(failed)
    }
}

fn verify_prefixed(item: &SignedMessage<'_>) -> bool {
    let Ok(key) = item.public_key.dalek() else {
        return false;
    };
    key.verify_strict(item.message, &ed25519_dalek::Signature::from_bytes(&item.signature.0))
        .is_ok()
}

/// Verifies a single already-prefixed message with the non-strict equation, for callers
/// (such as benchmarks) that want ed25519-dalek's plain `verify`.
pub fn verify_single(item: &SignedMessage<'_>) -> bool {
    let Ok(key) = item.public_key.dalek() else {
        return false;
    };
    key.verify(item.message, &ed25519_dalek::Signature::from_bytes(&item.signature.0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(byte: u8) -> Keypair {
        Keypair::from_seed(&[byte; 32])
    }

    #[test]
    fn signature_verifies_only_under_its_domain_and_message() {
        let key = keypair(1);
        let signature = key.sign(domain::TRANSACTION, b"hello");
        let public_key = key.public_key();
        assert!(public_key.verify(domain::TRANSACTION, b"hello", &signature).is_ok());
        assert!(public_key.verify(domain::TEST_CHAIN_COMMIT, b"hello", &signature).is_err());
        assert!(public_key.verify(domain::TRANSACTION, b"hellp", &signature).is_err());
        assert!(keypair(2).public_key().verify(domain::TRANSACTION, b"hello", &signature).is_err());
    }

    #[test]
    fn batch_names_exactly_the_bad_signatures() {
        let keys: Vec<Keypair> = (0..8).map(keypair).collect();
        let public_keys: Vec<PublicKey> = keys.iter().map(Keypair::public_key).collect();
        let messages: Vec<Vec<u8>> =
            (0..8u8).map(|index| [domain::TRANSACTION, &[index]].concat()).collect();
        let mut signatures: Vec<Signature> =
            keys.iter().zip(&messages).map(|(key, message)| key.sign(&[], message)).collect();
        let items = |signatures: &[Signature]| -> Vec<(PublicKey, Vec<u8>, Signature)> {
            (0..8)
                .map(|index| (public_keys[index], messages[index].clone(), signatures[index]))
                .collect()
        };
        let owned = items(&signatures);
        let batch: Vec<SignedMessage<'_>> = owned
            .iter()
            .map(|(public_key, message, signature)| SignedMessage {
                public_key,
                message,
                signature,
            })
            .collect();
        assert_eq!(verify_batch(&batch), Ok(()));

        signatures[2].0[10] ^= 1;
        signatures[5] = signatures[4];
        let owned = items(&signatures);
        let batch: Vec<SignedMessage<'_>> = owned
            .iter()
            .map(|(public_key, message, signature)| SignedMessage {
                public_key,
                message,
                signature,
            })
            .collect();
        assert_eq!(verify_batch(&batch), Err(vec![2, 5]));
    }

    #[test]
    fn invalid_point_is_reported_not_panicked() {
        // y = 2 is not on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let public_key = PublicKey(bytes);
        let signature = Signature([0; 64]);
        assert_eq!(
            public_key.verify(domain::TRANSACTION, b"x", &signature),
            Err(SignatureError::InvalidPublicKey { public_key })
        );
        let item = SignedMessage { public_key: &public_key, message: b"x", signature: &signature };
        assert_eq!(verify_batch(&[item]), Err(vec![0]));
    }
}
