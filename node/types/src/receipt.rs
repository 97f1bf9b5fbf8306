//! Receipts: the outcome of executing one transaction.

use serde::{Deserialize, Serialize};

use crate::block::Address;
use crate::codec::{Decode, DecodeError, Encode, Reader, write};
use crate::hash::Hash;
use crate::limits;
use crate::merkle;

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// It ran to completion and its state changes were applied.
    Success,
    /// The contract reverted; state changes were discarded, gas was charged.
    Reverted { reason: String },
    /// It ran out of gas; state changes were discarded, the whole gas limit was charged.
    OutOfGas,
    /// It could not run at all (for example, a stale nonce or an unknown contract).
    Invalid { reason: String },
    /// The contract trapped (a WebAssembly trap such as unreachable or a stack overflow, a
    /// memory or table cap, a bad pointer passed to a host call); state changes were
    /// discarded, gas was charged. `reason` names the trap.
    Trapped { reason: String },
}

/// An event a contract emitted during a successful transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub contract: Address,
    pub topic: String,
    #[serde(with = "crate::json::hex_bytes")]
    pub data: Vec<u8>,
}

/// The receipt of one transaction.
///
/// Its JSON form is flat: `status` is one of `success`, `reverted`, `out_of_gas` and
/// `invalid`, and `reason` is present exactly for `reverted` and `invalid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ReceiptJson", try_from = "ReceiptJson")]
pub struct Receipt {
    pub transaction_hash: Hash,
    pub status: ReceiptStatus,
    pub gas_used: u64,
    pub events: Vec<Event>,
    pub return_data: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StatusName {
    Success,
    Reverted,
    OutOfGas,
    Invalid,
    Trapped,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptJson {
    transaction_hash: Hash,
    status: StatusName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    gas_used: u64,
    events: Vec<Event>,
    #[serde(with = "crate::json::hex_bytes")]
    return_data: Vec<u8>,
}

impl From<Receipt> for ReceiptJson {
    fn from(receipt: Receipt) -> Self {
        let (status, reason) = match receipt.status {
            ReceiptStatus::Success => (StatusName::Success, None),
            ReceiptStatus::Reverted { reason } => (StatusName::Reverted, Some(reason)),
            ReceiptStatus::OutOfGas => (StatusName::OutOfGas, None),
            ReceiptStatus::Invalid { reason } => (StatusName::Invalid, Some(reason)),
            ReceiptStatus::Trapped { reason } => (StatusName::Trapped, Some(reason)),
        };
        Self {
            transaction_hash: receipt.transaction_hash,
            status,
            reason,
            gas_used: receipt.gas_used,
            events: receipt.events,
            return_data: receipt.return_data,
        }
    }
}

impl TryFrom<ReceiptJson> for Receipt {
    type Error = &'static str;

    fn try_from(json: ReceiptJson) -> Result<Self, Self::Error> {
        let status = match (json.status, json.reason) {
            (StatusName::Success, None) => ReceiptStatus::Success,
            (StatusName::OutOfGas, None) => ReceiptStatus::OutOfGas,
            (StatusName::Reverted, Some(reason)) => ReceiptStatus::Reverted { reason },
            (StatusName::Invalid, Some(reason)) => ReceiptStatus::Invalid { reason },
            (StatusName::Trapped, Some(reason)) => ReceiptStatus::Trapped { reason },
            (StatusName::Success | StatusName::OutOfGas, Some(_)) => {
                return Err(
                    "`reason` is only allowed with status `reverted`, `invalid` or `trapped`",
                );
            }
            (StatusName::Reverted | StatusName::Invalid | StatusName::Trapped, None) => {
                return Err("status `reverted`, `invalid` and `trapped` need a `reason`");
            }
        };
        Ok(Self {
            transaction_hash: json.transaction_hash,
            status,
            gas_used: json.gas_used,
            events: json.events,
            return_data: json.return_data,
        })
    }
}

/// The Merkle root over the canonical encodings of `receipts`.
pub fn receipts_root(receipts: &[Receipt]) -> Hash {
    let encoded: Vec<Vec<u8>> = receipts.iter().map(Encode::to_bytes).collect();
    merkle::root(&encoded)
}

impl Encode for ReceiptStatus {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            ReceiptStatus::Success => write::u8(out, 0),
            ReceiptStatus::Reverted { reason } => {
                write::u8(out, 1);
                write::string(out, reason);
            }
            ReceiptStatus::OutOfGas => write::u8(out, 2),
            ReceiptStatus::Invalid { reason } => {
                write::u8(out, 3);
                write::string(out, reason);
            }
            ReceiptStatus::Trapped { reason } => {
                write::u8(out, 4);
                write::string(out, reason);
            }
        }
    }
}

impl Decode for ReceiptStatus {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("receipt status")? {
            0 => Ok(ReceiptStatus::Success),
            1 => Ok(ReceiptStatus::Reverted {
                reason: reader.string(limits::REASON_BYTES_MAX, "revert reason")?,
            }),
            2 => Ok(ReceiptStatus::OutOfGas),
            3 => Ok(ReceiptStatus::Invalid {
                reason: reader.string(limits::REASON_BYTES_MAX, "invalidity reason")?,
            }),
            4 => Ok(ReceiptStatus::Trapped {
                reason: reader.string(limits::REASON_BYTES_MAX, "trap reason")?,
            }),
            tag => Err(DecodeError::UnknownTag { what: "receipt status", tag }),
        }
    }
}

impl Encode for Event {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.contract.encode_to(out);
        write::string(out, &self.topic);
        write::bytes(out, &self.data);
    }
}

impl Decode for Event {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            contract: Address::decode_from(reader)?,
            topic: reader.string(limits::EVENT_TOPIC_BYTES_MAX, "event topic")?,
            data: reader.byte_vec(limits::EVENT_DATA_BYTES_MAX, "event data")?,
        })
    }
}

impl Encode for Receipt {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.transaction_hash.encode_to(out);
        self.status.encode_to(out);
        write::u64(out, self.gas_used);
        write::sequence(out, &self.events);
        write::bytes(out, &self.return_data);
    }
}

impl Decode for Receipt {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            transaction_hash: Hash::decode_from(reader)?,
            status: ReceiptStatus::decode_from(reader)?,
            gas_used: reader.u64("gas used")?,
            events: reader.sequence(limits::EVENTS_PER_TRANSACTION_MAX, "events")?,
            return_data: reader.byte_vec(limits::RETURN_DATA_BYTES_MAX, "return data")?,
        })
    }
}
