//! What a contract can know and do besides its storage.

use alloc::string::String;
use alloc::vec::Vec;

use crate::codec::{Decode, Encode};
use crate::{Address, Revert, host};

/// Who called: the account that signed the transaction, or the calling contract.
pub fn caller() -> Address {
    Address(host::caller())
}

/// This contract's own address.
pub fn self_address() -> Address {
    Address(host::self_address())
}

/// The height of the block being executed.
pub fn block_height() -> u64 {
    host::block_height()
}

/// The timestamp of the block being executed (milliseconds since the Unix epoch, from the
/// block header; there is no clock).
pub fn block_timestamp_ms() -> u64 {
    host::block_timestamp_ms()
}

/// Emits an event with `topic` and the encoding of `data`. Events of a transaction that
/// does not succeed are discarded.
pub fn emit(topic: &str, data: &impl Encode) {
    host::event_emit(topic, &data.encode());
}

/// Reverts the transaction with `reason`; never returns.
pub fn revert(reason: &str) -> ! {
    host::revert(reason)
}

pub fn sha3_256(data: &[u8]) -> [u8; 32] {
    host::sha3_256(data)
}

/// Whether `signature` is a valid Ed25519 signature of `message` by `public_key`
/// (strict verification, no domain prefix added).
pub fn ed25519_verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    host::ed25519_verify(public_key, message, signature)
}

/// Why a call to another contract did not succeed. Its state changes were discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    Reverted {
        reason: String,
    },
    OutOfGas,
    Trapped {
        trap: String,
    },
    Refused {
        reason: String,
    },
    /// The callee succeeded but its return data did not decode as the expected type.
    BadReturn,
}

impl From<CallError> for Revert {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Reverted { reason } => {
                Revert::new(alloc::format!("inner call reverted: {reason}"))
            }
            CallError::OutOfGas => Revert::new("inner call ran out of gas"),
            CallError::Trapped { trap } => {
                Revert::new(alloc::format!("inner call trapped: {trap}"))
            }
            CallError::Refused { reason } => {
                Revert::new(alloc::format!("inner call refused: {reason}"))
            }
            CallError::BadReturn => Revert::new("inner call returned undecodable data"),
        }
    }
}

/// Calls `method` of `contract` with the encoded `arguments`, giving it at most
/// `gas_limit` gas, and decodes its return data as `R`.
pub fn call<R: Decode>(
    contract: Address,
    method: &str,
    arguments: &impl Encode,
    gas_limit: u64,
) -> Result<R, CallError> {
    let data = call_raw(contract, method, &arguments.encode(), gas_limit)?;
    R::decode(&data).map_err(|_| CallError::BadReturn)
}

/// [`call`] without decoding: the callee's raw return data.
pub fn call_raw(
    contract: Address,
    method: &str,
    input: &[u8],
    gas_limit: u64,
) -> Result<Vec<u8>, CallError> {
    let (status, result) = host::call(&contract.0, method, input, gas_limit);
    let text = || String::from_utf8_lossy(&result).into_owned();
    match status {
        host::CALL_SUCCESS => Ok(result),
        host::CALL_REVERTED => Err(CallError::Reverted { reason: text() }),
        host::CALL_OUT_OF_GAS => Err(CallError::OutOfGas),
        host::CALL_TRAPPED => Err(CallError::Trapped { trap: text() }),
        _ => Err(CallError::Refused { reason: text() }),
    }
}
