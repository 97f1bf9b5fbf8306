//! Blocks, their headers and commit certificates, and contract addresses.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, write};
use crate::crypto::{PublicKey, Signature, SignatureError, SignedMessage, domain};
use crate::hash::{Hash, sha3_256};
use crate::limits;
use crate::merkle;
use crate::transaction::{ChainId, Transaction};

/// The block format this build writes and reads: the first byte of every encoded header.
pub const BLOCK_FORMAT_VERSION: u8 = 1;

/// A contract's address (32 bytes, derived deterministically at deploy time).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 32]);

impl fmt::Display for Address {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Address({})", hex::encode(self.0))
    }
}

impl Encode for Address {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for Address {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Address(reader.array("contract address")?))
    }
}

/// A block header. Its SHA3-256 hash is the block's hash, and what validators sign.
///
/// The two result roots lag one block: they commit to the receipts and the state *after
/// executing the parent block*, because consensus agrees on a header before the block is
/// executed (see `docs/adr/0002-state-root-lags-one-block.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    /// 1 for the first block after genesis.
    pub height: u64,
    /// Hash of the parent header; [`Hash::ZERO`] for height 1.
    pub previous_hash: Hash,
    /// Milliseconds since the Unix epoch, as proposed by the primary. Contracts read time
    /// from here, never from a clock.
    pub timestamp_ms: u64,
    /// The validator (primary) that proposed this block.
    pub proposer: PublicKey,
    /// PBFT view in which the block was proposed.
    pub view: u64,
    /// PBFT sequence number the block was ordered at.
    pub sequence: u64,
    /// Merkle root of this block's transaction hashes.
    pub transactions_root: Hash,
    /// Merkle root of the receipts of the parent block (height - 1).
    pub previous_receipts_root: Hash,
    /// State root after executing the parent block (height - 1).
    pub previous_state_root: Hash,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash {
        sha3_256(&self.to_bytes())
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, BLOCK_FORMAT_VERSION);
        self.chain_id.encode_to(out);
        write::u64(out, self.height);
        self.previous_hash.encode_to(out);
        write::u64(out, self.timestamp_ms);
        self.proposer.encode_to(out);
        write::u64(out, self.view);
        write::u64(out, self.sequence);
        self.transactions_root.encode_to(out);
        self.previous_receipts_root.encode_to(out);
        self.previous_state_root.encode_to(out);
    }
}

impl Decode for BlockHeader {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8("block version")?;
        if version != BLOCK_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "block",
                version,
                supported: BLOCK_FORMAT_VERSION,
            });
        }
        Ok(Self {
            chain_id: ChainId::decode_from(reader)?,
            height: reader.u64("height")?,
            previous_hash: Hash::decode_from(reader)?,
            timestamp_ms: reader.u64("timestamp")?,
            proposer: PublicKey::decode_from(reader)?,
            view: reader.u64("view")?,
            sequence: reader.u64("sequence")?,
            transactions_root: Hash::decode_from(reader)?,
            previous_receipts_root: Hash::decode_from(reader)?,
            previous_state_root: Hash::decode_from(reader)?,
        })
    }
}

/// One validator's COMMIT signature over a header hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSignature {
    pub validator: PublicKey,
    pub signature: Signature,
}

/// The COMMIT signatures that committed a block: with 2f+1 of them from the validator set
/// in force, anyone can check the block without trusting the node that served it.
///
/// Signers are kept sorted by key with no duplicates, so the certificate has one encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<CommitSignature>", into = "Vec<CommitSignature>")]
pub struct CommitCertificate {
    signatures: Vec<CommitSignature>,
}

/// Why a commit certificate is not acceptable on its own terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the certificate has no signatures")]
    Empty,
    #[error("the certificate holds {count} signatures, over the limit of {max}")]
    TooMany { count: usize, max: usize },
    #[error("validator {validator} signed twice")]
    DuplicateSigner { validator: PublicKey },
    #[error("signature by validator {validator} is invalid: {source}")]
    BadSignature {
        validator: PublicKey,
        #[source]
        source: SignatureError,
    },
}

impl CommitCertificate {
    /// Builds a certificate, sorting the signatures by validator.
    pub fn new(mut signatures: Vec<CommitSignature>) -> Result<Self, CertificateError> {
        if signatures.len() > limits::VALIDATORS_MAX {
            return Err(CertificateError::TooMany {
                count: signatures.len(),
                max: limits::VALIDATORS_MAX,
            });
        }
        signatures.sort_by_key(|entry| entry.validator);
        if let Some(pair) =
            signatures.windows(2).find(|pair| pair[0].validator == pair[1].validator)
        {
            return Err(CertificateError::DuplicateSigner { validator: pair[0].validator });
        }
        Ok(Self { signatures })
    }

    pub fn signatures(&self) -> &[CommitSignature] {
        &self.signatures
    }

    /// The message every signer signed for `header_hash`, domain tag included.
    pub fn commit_message(header_hash: &Hash) -> Vec<u8> {
        [domain::COMMIT, &header_hash.0].concat()
    }

    /// Checks that every signature is valid over `header_hash`. Whether the signers form a
    /// quorum of the validator set in force is the caller's question: this type does not
    /// know the validator set.
    pub fn verify_signatures(&self, header_hash: &Hash) -> Result<(), CertificateError> {
        if self.signatures.is_empty() {
            return Err(CertificateError::Empty);
        }
        let message = Self::commit_message(header_hash);
        let items: Vec<SignedMessage<'_>> = self
            .signatures
            .iter()
            .map(|entry| SignedMessage {
                public_key: &entry.validator,
                message: &message,
                signature: &entry.signature,
            })
            .collect();
        match crate::crypto::verify_batch(&items) {
            Ok(()) => Ok(()),
            Err(failed) => {
                let entry = self.signatures[failed[0]];
                let source = entry
                    .validator
                    .verify(domain::COMMIT, &header_hash.0, &entry.signature)
                    .expect_err("verify_batch names only failing signatures");
                Err(CertificateError::BadSignature { validator: entry.validator, source })
            }
        }
    }
}

impl TryFrom<Vec<CommitSignature>> for CommitCertificate {
    type Error = CertificateError;
    fn try_from(signatures: Vec<CommitSignature>) -> Result<Self, Self::Error> {
        Self::new(signatures)
    }
}

impl From<CommitCertificate> for Vec<CommitSignature> {
    fn from(certificate: CommitCertificate) -> Self {
        certificate.signatures
    }
}

impl Encode for CommitSignature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.validator.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for CommitSignature {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            validator: PublicKey::decode_from(reader)?,
            signature: Signature::decode_from(reader)?,
        })
    }
}

impl Encode for CommitCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::sequence(out, &self.signatures);
    }
}

impl Decode for CommitCertificate {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signatures: Vec<CommitSignature> =
            reader.sequence(limits::VALIDATORS_MAX, "commit certificate")?;
        if signatures.windows(2).any(|pair| pair[0].validator >= pair[1].validator) {
            return Err(DecodeError::Invalid {
                what: "commit certificate",
                reason: "signers are not in strictly ascending key order",
            });
        }
        Ok(Self { signatures })
    }
}

/// A block: header, body (its transactions, in order) and commit certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub header: BlockHeader,
    pub transactions: Vec<Transaction>,
    pub certificate: CommitCertificate,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The Merkle root of the body's transaction hashes, for comparison with the header.
    pub fn computed_transactions_root(&self) -> Hash {
        transactions_root(&self.transactions)
    }
}

/// The Merkle root over the hashes of `transactions`.
pub fn transactions_root(transactions: &[Transaction]) -> Hash {
    let hashes: Vec<Hash> = transactions.iter().map(Transaction::hash).collect();
    merkle::root(&hashes)
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        write::sequence(out, &self.transactions);
        self.certificate.encode_to(out);
    }
}

impl Decode for Block {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = reader.remaining();
        let header = BlockHeader::decode_from(reader)?;
        let body_start = reader.remaining();
        let transactions = reader.sequence(limits::BLOCK_TRANSACTIONS_MAX, "block body")?;
        let body_length = body_start - reader.remaining();
        if body_length > limits::BLOCK_BODY_BYTES_MAX {
            return Err(DecodeError::TooLong {
                what: "block body",
                length: body_length as u64,
                max: limits::BLOCK_BODY_BYTES_MAX,
            });
        }
        let certificate = CommitCertificate::decode_from(reader)?;
        let length = start - reader.remaining();
        if length > limits::BLOCK_BYTES_MAX {
            return Err(DecodeError::TooLong {
                what: "block",
                length: length as u64,
                max: limits::BLOCK_BYTES_MAX,
            });
        }
        Ok(Self { header, transactions, certificate })
    }
}
