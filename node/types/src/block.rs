//! Blocks, their headers and commit certificates, and contract addresses.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, write};
use crate::crypto::{PublicKey, Signature, SignatureError, SignedMessage};
use crate::hash::{Hash, sha3_256};
use crate::limits;
use crate::merkle;
use crate::transaction::{ChainId, Transaction};

/// The block format this build writes and reads: the first byte of every encoded header.
pub const BLOCK_FORMAT_VERSION: u8 = 3;

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

/// A block header. Its SHA3-256 hash is the block's hash.
///
/// Consensus orders a proposal (view, timestamp, transactions); every validator derives
/// the header from the committed proposal and its own execution of the parent
/// (`docs/adr/0011-what-pbft-commits.md`). The two result roots lag one block: they commit
/// to the receipts and the state *after executing the parent block*
/// (`docs/adr/0002-state-root-lags-one-block.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    /// 1 for the first block after genesis.
    pub height: u64,
    /// Hash of the parent header; [`Hash::ZERO`] for height 1.
    pub previous_hash: Hash,
    /// Milliseconds since the Unix epoch, as proposed by the primary. Contracts read time
    /// from here, never from a clock. An empty (null) block repeats its parent's.
    pub timestamp_ms: u64,
    /// The validator (primary) that proposed this block; the all-zero key for a null
    /// block that a view change put in a gap.
    pub proposer: PublicKey,
    /// PBFT view in which the block was proposed (0 for a null block).
    pub view: u64,
    /// PBFT sequence number the block was ordered at.
    pub sequence: u64,
    /// Merkle root of this block's transaction hashes.
    pub transactions_root: Hash,
    /// Merkle root of the receipts of the parent block (height - 1).
    pub previous_receipts_root: Hash,
    /// State root after executing the parent block (height - 1).
    pub previous_state_root: Hash,
    /// SHA3-256 of the validator set in force at this height (each validator's index and
    /// key): the set whose quorum must sign the commit certificate (ADR 0021).
    /// [`Hash::ZERO`] on a chain without a consortium (test fixtures).
    pub validators_hash: Hash,
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
        self.validators_hash.encode_to(out);
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
            validators_hash: Hash::decode_from(reader)?,
        })
    }
}

/// One validator's COMMIT signature (see [`CommitCertificate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSignature {
    pub validator: PublicKey,
    pub signature: Signature,
}

/// The COMMIT signatures that committed a block: the PBFT COMMITs of `view` for the
/// block's sequence number and proposal digest (ADR 0011). With a quorum of them from the
/// validator set in force, anyone can check the block without trusting the node that
/// served it: rebuild the proposal from the block, hash it, and verify each COMMIT.
///
/// `view` is the view of the COMMITs, which may be later than the header's view (the view
/// the block was proposed in) when a view change re-proposed it. Signers are kept sorted
/// by key with no duplicates, so the certificate has one encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "CertificateJson", into = "CertificateJson")]
pub struct CommitCertificate {
    view: u64,
    signatures: Vec<CommitSignature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateJson {
    view: u64,
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
    #[error("{validator} is not a validator of this chain")]
    UnknownSigner { validator: PublicKey },
    #[error("signature by validator {validator} is invalid: {source}")]
    BadSignature {
        validator: PublicKey,
        #[source]
        source: SignatureError,
    },
}

impl CommitCertificate {
    /// Builds a certificate of `view`, sorting the signatures by validator.
    pub fn new(view: u64, mut signatures: Vec<CommitSignature>) -> Result<Self, CertificateError> {
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
        Ok(Self { view, signatures })
    }

    /// The view of the COMMITs.
    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn signatures(&self) -> &[CommitSignature] {
        &self.signatures
    }

    /// Checks every signature against the bytes `signed_bytes(validator)` says that
    /// validator signed (domain tag included; `None` for a key that is not a validator),
    /// in one batch verification. Whether the signers form a quorum of the validator set
    /// in force is the caller's question: this type does not know the validator set.
    pub fn verify_signatures(
        &self,
        signed_bytes: &dyn Fn(&PublicKey) -> Option<Vec<u8>>,
    ) -> Result<(), CertificateError> {
        if self.signatures.is_empty() {
            return Err(CertificateError::Empty);
        }
        let mut messages = Vec::with_capacity(self.signatures.len());
        for entry in &self.signatures {
            let Some(bytes) = signed_bytes(&entry.validator) else {
                return Err(CertificateError::UnknownSigner { validator: entry.validator });
            };
            messages.push(bytes);
        }
        let items: Vec<SignedMessage<'_>> = self
            .signatures
            .iter()
            .zip(&messages)
            .map(|(entry, message)| SignedMessage {
                public_key: &entry.validator,
                message,
                signature: &entry.signature,
            })
            .collect();
        match crate::crypto::verify_batch(&items) {
            Ok(()) => Ok(()),
            Err(failed) => {
                let entry = self.signatures[failed[0]];
                let source = entry
                    .validator
                    .verify(&[], &messages[failed[0]], &entry.signature)
                    .expect_err("verify_batch names only failing signatures");
                Err(CertificateError::BadSignature { validator: entry.validator, source })
            }
        }
    }
}

impl TryFrom<CertificateJson> for CommitCertificate {
    type Error = CertificateError;
    fn try_from(json: CertificateJson) -> Result<Self, Self::Error> {
        Self::new(json.view, json.signatures)
    }
}

impl From<CommitCertificate> for CertificateJson {
    fn from(certificate: CommitCertificate) -> Self {
        Self { view: certificate.view, signatures: certificate.signatures }
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
        write::u64(out, self.view);
        write::sequence(out, &self.signatures);
    }
}

impl Decode for CommitCertificate {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let view = reader.u64("certificate view")?;
        let signatures: Vec<CommitSignature> =
            reader.sequence(limits::VALIDATORS_MAX, "commit certificate")?;
        if signatures.windows(2).any(|pair| pair[0].validator >= pair[1].validator) {
            return Err(DecodeError::Invalid {
                what: "commit certificate",
                reason: "signers are not in strictly ascending key order",
            });
        }
        Ok(Self { view, signatures })
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

/// The domain tag of contract address derivation.
pub const CONTRACT_ADDRESS_DOMAIN: &[u8] = b"pactum.contract.v1\0";

/// The address of the contract that `deployer` deploys with transaction nonce `nonce`:
/// `sha3_256(CONTRACT_ADDRESS_DOMAIN || deployer || nonce as 8 big-endian bytes)`.
///
/// A deployer never reuses a nonce, so two deploys never collide, and anyone can compute
/// the address before the deploy commits.
pub fn contract_address(deployer: &Address, nonce: u64) -> Address {
    Address(
        crate::hash::sha3_256_parts(&[CONTRACT_ADDRESS_DOMAIN, &deployer.0, &nonce.to_be_bytes()])
            .0,
    )
}

/// The address of an account: the 32 bytes of its Ed25519 public key. This is what a
/// contract sees as its caller when a transaction calls it.
pub fn account_address(public_key: &PublicKey) -> Address {
    Address(public_key.0)
}
