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

use ed25519_dalek::Signer;
use thiserror::Error;

use crate::codec::{Decode, DecodeError, Encode, Reader};

/// Domain tags, one per kind of signed message.
pub mod domain {
    /// A transaction's unsigned bytes.
    pub const TRANSACTION: &[u8] = b"pactum.tx.v1\0";
    /// A read-only query signed by its caller (`crate::query`).
    pub const QUERY: &[u8] = b"pactum.query.v1\0";
    /// Test chains built without consensus (the storage chain builder, executor fixtures)
    /// sign their header hashes under this tag. A real block's certificate holds PBFT
    /// COMMITs instead (ADR 0011), which carry the PBFT domain tag.
    pub const TEST_CHAIN_COMMIT: &[u8] = b"pactum.test-chain.commit.v1\0";
    /// A new validator's proof of possession of its key
    /// (`crate::governance::join_message`).
    pub const VALIDATOR_JOIN: &[u8] = b"pactum.validator-join.v1\0";
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
        let signed = [domain, message].concat();
        let prepared = zip215::Prepared::new(&self.0, &signed, &signature.0)
            .map_err(|fault| self.fault(fault))?;
        if prepared.verify() { Ok(()) } else { Err(SignatureError::Mismatch { public_key: *self }) }
    }

    fn fault(&self, fault: zip215::Fault) -> SignatureError {
        match fault {
            zip215::Fault::Key => SignatureError::InvalidPublicKey { public_key: *self },
            zip215::Fault::Signature => SignatureError::Mismatch { public_key: *self },
        }
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
    let prepared: Vec<Option<zip215::Prepared>> = items
        .iter()
        .map(|item| zip215::Prepared::new(&item.public_key.0, item.message, &item.signature.0).ok())
        .collect();
    if prepared.iter().all(Option::is_some) {
        let all: Vec<&zip215::Prepared> = prepared.iter().flatten().collect();
        if zip215::verify_batch(&all) {
            return Ok(());
        }
    }
    // Some item is bad: the single rule, which accepts exactly what the batch equation
    // accepts (both are ZIP-215's cofactored equation), names which.
    let failed: Vec<usize> = prepared
        .iter()
        .enumerate()
        .filter(|(_, prepared)| !prepared.as_ref().is_some_and(zip215::Prepared::verify))
        .map(|(index, _)| index)
        .collect();
    debug_assert!(!failed.is_empty(), "the batch and single ZIP-215 equations disagreed");
    Err(failed)
}

/// Verifies one already-prefixed message with the single-signature rule, for callers
/// (such as benchmarks) that compare it with batches.
pub fn verify_single(item: &SignedMessage<'_>) -> bool {
    zip215::Prepared::new(&item.public_key.0, item.message, &item.signature.0)
        .is_ok_and(|prepared| prepared.verify())
}

/// Ed25519 verification by the rules of ZIP-215 (ADR 0003), in single and batch form.
///
/// The rules: `A` and `R` may be any encoding of a curve point, canonical or not, of any
/// order; `s` must be canonical (below the group order); the equation is the cofactored
/// `[8][s]B = [8]R + [8][k]A` with `k = SHA-512(R || A || M)`. The batch equation is the
/// same equation in a random linear combination, also multiplied by the cofactor, so a
/// batch accepts exactly when every item would alone (up to a 2^-128 chance of
/// accepting a bad batch). With cofactorless single verification, as before, a signer
/// could craft a signature with a small-order component that batches accept about one
/// time in eight and single verification refuses.
mod zip215 {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use sha2::{Digest, Sha512};
    use sha3::Sha3_256;

    /// Why a signature cannot even be checked.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Fault {
        /// The key's bytes are not a curve point.
        Key,
        /// `R` is not a curve point, or `s` is not canonical.
        Signature,
    }

    /// A signature decoded and its challenge computed.
    pub(super) struct Prepared {
        key: [u8; 32],
        a: EdwardsPoint,
        r_bytes: [u8; 32],
        r: EdwardsPoint,
        s: Scalar,
        k: Scalar,
    }

    impl Prepared {
        pub(super) fn new(
            key: &[u8; 32],
            message: &[u8],
            signature: &[u8; 64],
        ) -> Result<Self, Fault> {
            let a = CompressedEdwardsY(*key).decompress().ok_or(Fault::Key)?;
            let mut r_bytes = [0u8; 32];
            r_bytes.copy_from_slice(&signature[..32]);
            let mut s_bytes = [0u8; 32];
            s_bytes.copy_from_slice(&signature[32..]);
            let r = CompressedEdwardsY(r_bytes).decompress().ok_or(Fault::Signature)?;
            let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
                .ok_or(Fault::Signature)?;
            let mut hasher = Sha512::new();
            hasher.update(r_bytes);
            hasher.update(key);
            hasher.update(message);
            let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
            Ok(Self { key: *key, a, r_bytes, r, s, k })
        }

        /// `[8]([s]B - [k]A - R)` is the identity.
        pub(super) fn verify(&self) -> bool {
            let sb_minus_ka =
                EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-self.a, &self.s);
            (sb_minus_ka - self.r).mul_by_cofactor().is_identity()
        }
    }

    /// `[8]([-(sum z_i s_i)]B + sum [z_i]R_i + sum [z_i k_i]A_i)` is the identity, for
    /// 128-bit coefficients `z_i` drawn from a hash of the whole batch: nobody can choose
    /// signatures for coefficients they do not know yet, and verification stays free of
    /// randomness, so every validator reaches the same answer.
    pub(super) fn verify_batch(items: &[&Prepared]) -> bool {
        let mut transcript = Sha3_256::new();
        transcript.update(b"pactum.zip215-batch.v1\0");
        for item in items {
            transcript.update(item.key);
            transcript.update(item.r_bytes);
            transcript.update(item.s.as_bytes());
            transcript.update(item.k.as_bytes());
        }
        let seed = transcript.finalize();
        let mut scalars = Vec::with_capacity(2 * items.len() + 1);
        let mut points = Vec::with_capacity(2 * items.len() + 1);
        let mut basepoint = Scalar::ZERO;
        for (index, item) in items.iter().enumerate() {
            let mut hasher = Sha3_256::new();
            hasher.update(seed);
            hasher.update((index as u64).to_le_bytes());
            let digest = hasher.finalize();
            let mut wide = [0u8; 32];
            wide[..16].copy_from_slice(&digest[..16]);
            let z = Scalar::from_bytes_mod_order(wide);
            basepoint -= z * item.s;
            scalars.push(z);
            points.push(item.r);
            scalars.push(z * item.k);
            points.push(item.a);
        }
        scalars.push(basepoint);
        points.push(ED25519_BASEPOINT_POINT);
        EdwardsPoint::vartime_multiscalar_mul(scalars, points).mul_by_cofactor().is_identity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature by `keypair` whose `R` carries the small-order component `torsion`:
    /// valid under the cofactored equation, refused by the cofactorless one.
    fn signature_with_torsion(
        keypair: &Keypair,
        message: &[u8],
        torsion: curve25519_dalek::EdwardsPoint,
    ) -> Signature {
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use sha2::{Digest, Sha512};
        let expanded = Sha512::digest(keypair.seed());
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&expanded[..32]);
        secret[0] &= 248;
        secret[31] &= 127;
        secret[31] |= 64;
        let a = Scalar::from_bytes_mod_order(secret);
        assert_eq!(EdwardsPoint::mul_base(&a).compress().0, keypair.public_key().0);
        let nonce = Scalar::from_bytes_mod_order_wide(&Sha512::digest(message).into());
        let r = (EdwardsPoint::mul_base(&nonce) + torsion).compress().0;
        let mut hasher = Sha512::new();
        hasher.update(r);
        hasher.update(keypair.public_key().0);
        hasher.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
        let s = nonce + k * a;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r);
        signature[32..].copy_from_slice(s.as_bytes());
        Signature(signature)
    }

    #[test]
    fn a_signature_with_a_small_order_component_gets_the_same_answer_alone_and_in_any_batch() {
        // Before ZIP-215, single verification refused this signature and the batch
        // equation accepted it about one time in eight, depending on its random
        // coefficients: a client could make backups refuse a primary's batch.
        let signer = keypair(3);
        let torsion = curve25519_dalek::constants::EIGHT_TORSION[1];
        let message = [domain::TRANSACTION, b"crafted"].concat();
        let crafted = signature_with_torsion(&signer, &message, torsion);
        let public_key = signer.public_key();
        let alone = public_key.verify(&[], &message, &crafted).is_ok();
        assert!(alone, "ZIP-215 accepts a small-order component in R");
        let honest: Vec<(Keypair, Vec<u8>)> =
            (10..40u8).map(|byte| (keypair(byte), vec![byte; 40])).collect();
        let honest_signatures: Vec<(PublicKey, Signature)> = honest
            .iter()
            .map(|(key, message)| (key.public_key(), key.sign(&[], message)))
            .collect();
        for size in 0..honest.len() {
            let mut items: Vec<SignedMessage<'_>> = (0..size)
                .map(|index| SignedMessage {
                    public_key: &honest_signatures[index].0,
                    message: &honest[index].1,
                    signature: &honest_signatures[index].1,
                })
                .collect();
            items.push(SignedMessage {
                public_key: &public_key,
                message: &message,
                signature: &crafted,
            });
            assert_eq!(verify_batch(&items), Ok(()), "in a batch of {}", size + 1);
            assert!(verify_single(items.last().unwrap()));
        }
    }

    /// Every encoding of a point of order dividing 8: the canonical ones, those with the
    /// sign bit set on x = 0, and those with y + p in place of y (possible for y < 19).
    fn small_order_encodings() -> Vec<[u8; 32]> {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        let mut encodings = Vec::new();
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let canonical = point.compress().0;
            let mut variants = vec![canonical];
            let x_is_zero = {
                let mut flipped = canonical;
                flipped[31] ^= 0x80;
                CompressedEdwardsY(flipped).decompress() == Some(point)
            };
            if x_is_zero {
                let mut flipped = canonical;
                flipped[31] ^= 0x80;
                variants.push(flipped);
            }
            // y + p, where y is small: p = 2^255 - 19.
            let small_y = canonical[1..31].iter().all(|byte| *byte == 0)
                && canonical[31] & 0x7f == 0
                && canonical[0] < 19;
            if small_y {
                for variant in variants.clone() {
                    let mut plus_p = variant;
                    plus_p[0] += 0xed; // 2^255 - 19 = 0x7fff..ffed
                    for byte in &mut plus_p[1..31] {
                        *byte = 0xff;
                    }
                    plus_p[31] = (variant[31] & 0x80) | 0x7f;
                    variants.push(plus_p);
                }
            }
            encodings.extend(variants);
        }
        encodings
    }

    #[test]
    fn the_zip215_vectors_verify_alone_and_in_batches() {
        // ZIP-215's vectors: every pair of small-order encodings (A, R), s = 0, message
        // "Zcash"; all valid under its rules, all refused by strict verification.
        let encodings = small_order_encodings();
        assert_eq!(encodings.len(), 14, "ZIP-215 names 14 such encodings");
        for encoding in &encodings {
            let point = curve25519_dalek::edwards::CompressedEdwardsY(*encoding).decompress();
            assert!(point.is_some_and(|point| point.is_small_order()));
        }
        let message = b"Zcash".to_vec();
        let mut vectors = Vec::new();
        for a in &encodings {
            for r in &encodings {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(r);
                vectors.push((PublicKey(*a), Signature(signature)));
            }
        }
        assert_eq!(vectors.len(), 196);
        for (public_key, signature) in &vectors {
            assert!(public_key.verify(&[], &message, signature).is_ok(), "{public_key}");
            let strict = ed25519_dalek::VerifyingKey::from_bytes(&public_key.0).is_ok_and(|key| {
                key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature.0))
                    .is_ok()
            });
            assert!(!strict, "strict verification refuses every vector");
        }
        let items: Vec<SignedMessage<'_>> = vectors
            .iter()
            .map(|(public_key, signature)| SignedMessage {
                public_key,
                message: &message,
                signature,
            })
            .collect();
        assert_eq!(verify_batch(&items), Ok(()));
        // s must still be canonical: s = l (the group order) is refused.
        let (public_key, mut signature) = vectors[0];
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        signature.0[32..].copy_from_slice(&order);
        assert!(public_key.verify(&[], &message, &signature).is_err());
        let item =
            SignedMessage { public_key: &public_key, message: &message, signature: &signature };
        assert_eq!(verify_batch(&[items[1], item, items[2]]), Err(vec![1]));
    }

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
