//! Transactions: what a client signs and submits.

use serde::{Deserialize, Serialize};

use crate::block::Address;
use crate::codec::{Decode, DecodeError, Encode, Reader, write};
use crate::crypto::{Keypair, PublicKey, Signature, SignatureError, SignedMessage, domain};
use crate::governance::GovernanceAction;
use crate::hash::{Hash, sha3_256};
use crate::limits;

/// The transaction format this build writes and reads. It is the first byte of every
/// encoded transaction; a new format gets a new number, and old ones stay readable.
pub const TRANSACTION_FORMAT_VERSION: u8 = 1;

/// A chain identifier: 1 to 64 bytes of `a-z`, `0-9`, `.`, `_` and `-`.
///
/// Every transaction and block names its chain, so nothing signed for one ledger can be
/// replayed on another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChainId(String);

impl ChainId {
    pub fn new(value: impl Into<String>) -> Result<Self, DecodeError> {
        let value = value.into();
        if value.is_empty() {
            return Err(DecodeError::Invalid { what: "chain id", reason: "empty" });
        }
        if value.len() > limits::CHAIN_ID_BYTES_MAX {
            return Err(DecodeError::TooLong {
                what: "chain id",
                length: value.len() as u64,
                max: limits::CHAIN_ID_BYTES_MAX,
            });
        }
        let allowed = |byte: u8| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
        };
        if !value.bytes().all(allowed) {
            return Err(DecodeError::Invalid {
                what: "chain id",
                reason: "only a-z, 0-9, '.', '_' and '-' are allowed",
            });
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ChainId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl TryFrom<String> for ChainId {
    type Error = DecodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ChainId> for String {
    fn from(value: ChainId) -> Self {
        value.0
    }
}

impl Encode for ChainId {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::string(out, &self.0);
    }
}

impl Decode for ChainId {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::new(reader.string(limits::CHAIN_ID_BYTES_MAX, "chain id")?)
    }
}

/// What a transaction asks the ledger to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    /// Deploy a WebAssembly contract, running its `init` entry point with `init_input`.
    DeployContract {
        #[serde(with = "crate::json::hex_bytes")]
        code: Vec<u8>,
        #[serde(with = "crate::json::hex_bytes")]
        init_input: Vec<u8>,
    },
    /// Call `method` of the contract at `contract` with `input`.
    CallContract {
        contract: Address,
        method: String,
        #[serde(with = "crate::json::hex_bytes")]
        input: Vec<u8>,
    },
    /// Propose or approve a change to the consortium.
    Governance { action: GovernanceAction },
    /// Enrol the sender as an identity, proven by a certificate from a member CA whose key
    /// is the sender's key.
    EnrolIdentity {
        #[serde(with = "crate::json::hex_bytes")]
        certificate_der: Vec<u8>,
    },
}

/// The part of a transaction that the sender signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsignedTransaction {
    pub chain_id: ChainId,
    pub sender: PublicKey,
    /// Per-sender sequence number; each nonce is used once.
    pub nonce: u64,
    /// The most gas the sender will pay for; at most [`limits::TRANSACTION_GAS_MAX`].
    pub gas_limit: u64,
    pub payload: Payload,
}

/// A signed transaction. Its JSON form is flat: the unsigned fields and `signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "TransactionJson", from = "TransactionJson")]
pub struct Transaction {
    pub unsigned: UnsignedTransaction,
    /// Ed25519 signature by `sender` over `pactum.tx.v1\0 || canonical unsigned bytes`.
    pub signature: Signature,
}

/// The flat JSON form of [`Transaction`]. (`#[serde(flatten)]` cannot be combined with
/// `deny_unknown_fields`, and unknown fields must be refused.)
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionJson {
    chain_id: ChainId,
    sender: PublicKey,
    nonce: u64,
    gas_limit: u64,
    payload: Payload,
    signature: Signature,
}

impl From<Transaction> for TransactionJson {
    fn from(transaction: Transaction) -> Self {
        let UnsignedTransaction { chain_id, sender, nonce, gas_limit, payload } =
            transaction.unsigned;
        Self { chain_id, sender, nonce, gas_limit, payload, signature: transaction.signature }
    }
}

impl From<TransactionJson> for Transaction {
    fn from(json: TransactionJson) -> Self {
        let TransactionJson { chain_id, sender, nonce, gas_limit, payload, signature } = json;
        Self {
            unsigned: UnsignedTransaction { chain_id, sender, nonce, gas_limit, payload },
            signature,
        }
    }
}

impl UnsignedTransaction {
    /// Signs the transaction with `keypair`. The caller sets `sender` to the keypair's key.
    pub fn sign(self, keypair: &Keypair) -> Transaction {
        debug_assert_eq!(self.sender, keypair.public_key());
        let signature = keypair.sign(domain::TRANSACTION, &self.to_bytes());
        Transaction { unsigned: self, signature }
    }
}

impl Transaction {
    /// SHA3-256 of the canonical signed bytes: the transaction's identity everywhere.
    pub fn hash(&self) -> Hash {
        sha3_256(&self.to_bytes())
    }

    /// The exact bytes the signature covers, domain tag included.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut message = domain::TRANSACTION.to_vec();
        self.unsigned.encode_to(&mut message);
        message
    }

    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        self.unsigned.sender.verify(domain::TRANSACTION, &self.unsigned.to_bytes(), &self.signature)
    }

    /// A batch item for [`crate::crypto::verify_batch`]; `message` must come from
    /// [`Transaction::signing_message`].
    pub fn signed_message<'a>(&'a self, message: &'a [u8]) -> SignedMessage<'a> {
        SignedMessage { public_key: &self.unsigned.sender, message, signature: &self.signature }
    }
}

impl Encode for Payload {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Payload::DeployContract { code, init_input } => {
                write::u8(out, 1);
                write::bytes(out, code);
                write::bytes(out, init_input);
            }
            Payload::CallContract { contract, method, input } => {
                write::u8(out, 2);
                contract.encode_to(out);
                write::string(out, method);
                write::bytes(out, input);
            }
            Payload::Governance { action } => {
                write::u8(out, 3);
                action.encode_to(out);
            }
            Payload::EnrolIdentity { certificate_der } => {
                write::u8(out, 4);
                write::bytes(out, certificate_der);
            }
        }
    }
}

impl Decode for Payload {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("payload")? {
            1 => Ok(Payload::DeployContract {
                code: reader.byte_vec(limits::CONTRACT_CODE_BYTES_MAX, "contract code")?,
                init_input: reader.byte_vec(limits::CALL_INPUT_BYTES_MAX, "init input")?,
            }),
            2 => Ok(Payload::CallContract {
                contract: Address::decode_from(reader)?,
                method: reader.string(limits::METHOD_NAME_BYTES_MAX, "method name")?,
                input: reader.byte_vec(limits::CALL_INPUT_BYTES_MAX, "call input")?,
            }),
            3 => Ok(Payload::Governance { action: GovernanceAction::decode_from(reader)? }),
            4 => Ok(Payload::EnrolIdentity {
                certificate_der: reader.byte_vec(limits::CERTIFICATE_BYTES_MAX, "certificate")?,
            }),
            tag => Err(DecodeError::UnknownTag { what: "payload", tag }),
        }
    }
}

impl Encode for UnsignedTransaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, TRANSACTION_FORMAT_VERSION);
        self.chain_id.encode_to(out);
        self.sender.encode_to(out);
        write::u64(out, self.nonce);
        write::u64(out, self.gas_limit);
        self.payload.encode_to(out);
    }
}

impl Decode for UnsignedTransaction {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8("transaction version")?;
        if version != TRANSACTION_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "transaction",
                version,
                supported: TRANSACTION_FORMAT_VERSION,
            });
        }
        let chain_id = ChainId::decode_from(reader)?;
        let sender = PublicKey::decode_from(reader)?;
        let nonce = reader.u64("nonce")?;
        let gas_limit = reader.u64("gas limit")?;
        if gas_limit > limits::TRANSACTION_GAS_MAX {
            return Err(DecodeError::TooLong {
                what: "gas limit",
                length: gas_limit,
                max: limits::TRANSACTION_GAS_MAX as usize,
            });
        }
        let payload = Payload::decode_from(reader)?;
        Ok(Self { chain_id, sender, nonce, gas_limit, payload })
    }
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.unsigned.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for Transaction {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = reader.remaining();
        let unsigned = UnsignedTransaction::decode_from(reader)?;
        let signature = Signature::decode_from(reader)?;
        let length = start - reader.remaining();
        if length > limits::TRANSACTION_BYTES_MAX {
            return Err(DecodeError::TooLong {
                what: "transaction",
                length: length as u64,
                max: limits::TRANSACTION_BYTES_MAX,
            });
        }
        Ok(Self { unsigned, signature })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_rules() {
        assert!(ChainId::new("pactum-devnet").is_ok());
        assert!(ChainId::new("").is_err());
        assert!(ChainId::new("Upper").is_err());
        assert!(ChainId::new("a".repeat(65)).is_err());
        assert!(ChainId::new("a".repeat(64)).is_ok());
    }

    #[test]
    fn signed_transaction_verifies_and_tampering_breaks_it() {
        let keypair = Keypair::from_seed(&[7; 32]);
        let unsigned = UnsignedTransaction {
            chain_id: ChainId::new("test").unwrap(),
            sender: keypair.public_key(),
            nonce: 1,
            gas_limit: 100,
            payload: Payload::CallContract {
                contract: Address([1; 32]),
                method: "transfer".into(),
                input: vec![1, 2, 3],
            },
        };
        let mut transaction = unsigned.sign(&keypair);
        assert!(transaction.verify_signature().is_ok());
        transaction.unsigned.nonce = 2;
        assert!(transaction.verify_signature().is_err());
    }

    #[test]
    fn gas_limit_over_maximum_is_refused() {
        let keypair = Keypair::from_seed(&[7; 32]);
        let transaction = UnsignedTransaction {
            chain_id: ChainId::new("test").unwrap(),
            sender: keypair.public_key(),
            nonce: 1,
            gas_limit: limits::TRANSACTION_GAS_MAX + 1,
            payload: Payload::EnrolIdentity { certificate_der: vec![] },
        }
        .sign(&keypair);
        assert!(matches!(
            Transaction::from_bytes(&transaction.to_bytes()),
            Err(DecodeError::TooLong { what: "gas limit", .. })
        ));
    }
}
