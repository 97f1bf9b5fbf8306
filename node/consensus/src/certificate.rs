//! The protocol's proofs, each with one `verify`:
//!
//! - [`PreparedCertificate`] (PBFT §4.2, §4.4): the primary's PRE-PREPARE signature and
//!   2f matching PREPAREs from distinct backups. VIEW-CHANGEs carry them.
//! - [`CommitCertificate`] (§4.2): 2f + 1 matching COMMITs of one view from distinct
//!   replicas. Every delivery carries one; the node stores it with the block, state
//!   transfer checks it, and so does `pactum chain verify`.
//! - [`CheckpointCertificate`] (§4.3): matching CHECKPOINTs from distinct replicas: f + 1
//!   prove that an honest replica reached that state (enough to fetch it or to start a
//!   new view above it), 2f + 1 make it stable.
//!
//! Certificates hold digests, never batches, and signers as replica ids with signatures.

use std::collections::BTreeSet;

use pactum_types::codec::{Decode, DecodeError, Encode, Reader};
use pactum_types::{Hash, Signature};
use thiserror::Error;

use crate::config::Config;
use crate::crypto::Verifier;
use crate::ids::{ReplicaId, Sequence, SignerSignature, View, decode_signers, encode_signers};
use crate::message::{Message, pre_prepare_signing_bytes};

/// Why a certificate does not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    #[error("{kind}: replica {replica} is not a validator")]
    UnknownSigner { kind: &'static str, replica: ReplicaId },
    #[error("{kind}: replica {replica} signed twice")]
    DuplicateSigner { kind: &'static str, replica: ReplicaId },
    #[error("{kind}: the signature of replica {replica} is invalid")]
    BadSignature { kind: &'static str, replica: ReplicaId },
    #[error("{kind}: the primary {replica} cannot be one of the PREPAREs")]
    PrimaryPrepared { kind: &'static str, replica: ReplicaId },
    #[error("{kind}: {found} distinct signers, {needed} needed")]
    TooFewSigners { kind: &'static str, found: usize, needed: usize },
    #[error("{kind}: {found} signers, more than the {max} it needs")]
    TooManySigners { kind: &'static str, found: usize, max: usize },
    #[error(
        "a checkpoint at or below {start}, where the epoch starts, is the epoch's base: that sequence number, no signatures and the state digest there"
    )]
    BadBaseCheckpoint { start: Sequence },
}

/// Checks that `signers` are distinct validators whose signatures over
/// `bytes(signer)` verify, and returns how many there are.
fn check_signers(
    kind: &'static str,
    config: &Config,
    verifier: &impl Verifier,
    signers: &[SignerSignature],
    bytes: impl Fn(ReplicaId) -> Vec<u8>,
) -> Result<usize, CertificateError> {
    let mut seen = BTreeSet::new();
    for (replica, signature) in signers {
        let replica = *replica;
        if !config.is_member(replica) {
            return Err(CertificateError::UnknownSigner { kind, replica });
        }
        if !seen.insert(replica) {
            return Err(CertificateError::DuplicateSigner { kind, replica });
        }
        if !verifier.verify(replica, &bytes(replica), signature) {
            return Err(CertificateError::BadSignature { kind, replica });
        }
    }
    Ok(seen.len())
}

fn at_least(kind: &'static str, found: usize, needed: usize) -> Result<(), CertificateError> {
    if found < needed {
        return Err(CertificateError::TooFewSigners { kind, found, needed });
    }
    Ok(())
}

/// PBFT §4.2: the batch with `digest` is prepared at `(view, sequence)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCertificate {
    pub view: View,
    pub sequence: Sequence,
    pub digest: Hash,
    /// The primary of `view`'s signature over PRE-PREPARE(view, sequence, digest).
    pub primary_signature: Signature,
    /// 2f PREPAREs from distinct backups.
    pub prepares: Vec<SignerSignature>,
}

impl PreparedCertificate {
    const KIND: &'static str = "prepared certificate";

    /// The PRE-PREPARE is the primary's, and exactly 2f distinct backups signed matching
    /// PREPAREs (no more: the size of a VIEW-CHANGE is bounded by that).
    pub fn verify(
        &self,
        config: &Config,
        verifier: &impl Verifier,
    ) -> Result<(), CertificateError> {
        let kind = Self::KIND;
        let primary = config.primary(self.view);
        let bytes = pre_prepare_signing_bytes(
            &config.chain,
            primary,
            self.view,
            self.sequence,
            &self.digest,
        );
        if !verifier.verify(primary, &bytes, &self.primary_signature) {
            return Err(CertificateError::BadSignature { kind, replica: primary });
        }
        if let Some((replica, _)) = self.prepares.iter().find(|(replica, _)| *replica == primary) {
            return Err(CertificateError::PrimaryPrepared { kind, replica: *replica });
        }
        let needed = config.quorum() - 1;
        if self.prepares.len() > needed {
            return Err(CertificateError::TooManySigners {
                kind,
                found: self.prepares.len(),
                max: needed,
            });
        }
        let vote =
            Message::Prepare { view: self.view, sequence: self.sequence, digest: self.digest };
        let found = check_signers(kind, config, verifier, &self.prepares, |replica| {
            vote.signing_bytes(&config.chain, replica)
        })?;
        at_least(kind, found, needed)
    }
}

/// PBFT §4.2: the batch with `digest` is committed at `sequence`, by 2f + 1 COMMITs of
/// `view`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitCertificate {
    pub view: View,
    pub sequence: Sequence,
    pub digest: Hash,
    /// The COMMITs, sorted by replica.
    pub commits: Vec<SignerSignature>,
}

impl CommitCertificate {
    const KIND: &'static str = "commit certificate";

    /// At least 2f + 1 distinct replicas signed COMMIT(view, sequence, digest).
    pub fn verify(
        &self,
        config: &Config,
        verifier: &impl Verifier,
    ) -> Result<(), CertificateError> {
        let kind = Self::KIND;
        let vote =
            Message::Commit { view: self.view, sequence: self.sequence, digest: self.digest };
        let found = check_signers(kind, config, verifier, &self.commits, |replica| {
            vote.signing_bytes(&config.chain, replica)
        })?;
        at_least(kind, found, config.quorum())
    }
}

/// PBFT §4.3: replicas that executed up to `sequence` agree its state digest is
/// `state_digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointCertificate {
    pub sequence: Sequence,
    pub state_digest: Hash,
    /// The CHECKPOINTs, sorted by replica.
    pub signatures: Vec<SignerSignature>,
}

/// How many matching CHECKPOINTs a use needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointStrength {
    /// f + 1: an honest replica has that state (fetch it, start a view above it).
    Weak,
    /// 2f + 1: the checkpoint is stable (§4.3).
    Stable,
}

impl CheckpointCertificate {
    const KIND: &'static str = "checkpoint certificate";

    /// The genesis: sequence 0, before anything was executed (the base of epoch 0;
    /// [`Config::base_checkpoint`] in general).
    pub fn genesis() -> Self {
        Self { sequence: Sequence::ZERO, state_digest: Hash::ZERO, signatures: Vec::new() }
    }

    pub fn verify(
        &self,
        config: &Config,
        verifier: &impl Verifier,
        strength: CheckpointStrength,
    ) -> Result<(), CertificateError> {
        if self.sequence <= config.start {
            if *self == config.base_checkpoint() {
                return Ok(());
            }
            return Err(CertificateError::BadBaseCheckpoint { start: config.start });
        }
        let kind = Self::KIND;
        let vote = Message::Checkpoint { sequence: self.sequence, state_digest: self.state_digest };
        let found = check_signers(kind, config, verifier, &self.signatures, |replica| {
            vote.signing_bytes(&config.chain, replica)
        })?;
        let needed = match strength {
            CheckpointStrength::Weak => config.weak_quorum(),
            CheckpointStrength::Stable => config.quorum(),
        };
        at_least(kind, found, needed)
    }
}

impl Encode for PreparedCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.view.encode_to(out);
        self.sequence.encode_to(out);
        self.digest.encode_to(out);
        self.primary_signature.encode_to(out);
        encode_signers(out, &self.prepares);
    }
}

impl Decode for PreparedCertificate {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            view: View::decode_from(reader)?,
            sequence: Sequence::decode_from(reader)?,
            digest: Hash::decode_from(reader)?,
            primary_signature: Signature::decode_from(reader)?,
            prepares: decode_signers(reader, "prepares")?,
        })
    }
}

impl Encode for CommitCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.view.encode_to(out);
        self.sequence.encode_to(out);
        self.digest.encode_to(out);
        encode_signers(out, &self.commits);
    }
}

impl Decode for CommitCertificate {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            view: View::decode_from(reader)?,
            sequence: Sequence::decode_from(reader)?,
            digest: Hash::decode_from(reader)?,
            commits: decode_signers(reader, "commits")?,
        })
    }
}

impl Encode for CheckpointCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.sequence.encode_to(out);
        self.state_digest.encode_to(out);
        encode_signers(out, &self.signatures);
    }
}

impl Decode for CheckpointCertificate {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            sequence: Sequence::decode_from(reader)?,
            state_digest: Hash::decode_from(reader)?,
            signatures: decode_signers(reader, "checkpoint signatures")?,
        })
    }
}
