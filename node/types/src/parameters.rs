//! The consensus and block parameters: PBFT's timing and window, how the primary cuts
//! batches, and what one block may use. The genesis file gives their first values; a
//! `set_parameters` proposal changes them from an epoch boundary on (ADR 0022).

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, write};
use crate::limits;

/// PBFT, batching and block parameters, the same on every validator of an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParameters {
    /// The primary cuts a batch at this many transactions...
    pub batch_transactions_max: usize,
    /// ...or this many bytes of transactions...
    pub batch_bytes_max: usize,
    /// ...or when the oldest pending transaction has waited this long.
    pub batch_timeout_ms: u64,
    pub checkpoint_interval: u64,
    pub watermark_window: u64,
    pub retransmit_interval_ms: u64,
    pub request_timeout_ms: u64,
    pub view_change_timeout_ms: u64,
    pub view_change_timeout_max_ms: u64,
    /// The block gas limit: a block's transactions' gas limits add up to at most this.
    #[serde(default = "default_block_gas_max")]
    pub block_gas_max: u64,
    /// Bytes of state (keys, values, contract code) one block may write.
    #[serde(default = "default_block_state_bytes_max")]
    pub block_state_bytes_max: u64,
    /// Bytes of events and return data one block's receipts may hold.
    #[serde(default = "default_block_receipt_bytes_max")]
    pub block_receipt_bytes_max: u64,
    /// How far a block's timestamp may be from a backup's clock.
    #[serde(default = "default_timestamp_skew_max_ms")]
    pub timestamp_skew_max_ms: u64,
}

fn default_block_gas_max() -> u64 {
    limits::BLOCK_GAS_DEFAULT
}

fn default_block_state_bytes_max() -> u64 {
    limits::BLOCK_STATE_BYTES_DEFAULT
}

fn default_block_receipt_bytes_max() -> u64 {
    limits::BLOCK_RECEIPT_BYTES_DEFAULT
}

fn default_timestamp_skew_max_ms() -> u64 {
    limits::TIMESTAMP_SKEW_DEFAULT_MS
}

impl Default for ConsensusParameters {
    fn default() -> Self {
        Self {
            batch_transactions_max: 2_000,
            batch_bytes_max: 1024 * 1024,
            batch_timeout_ms: 50,
            // Small checkpoint intervals keep few unstable slots, and a replica
            // retransmits its messages for every unstable slot each interval: over TCP a
            // slower retransmission costs little and saves re-verifying whole batches.
            checkpoint_interval: 16,
            watermark_window: 64,
            retransmit_interval_ms: 2_000,
            request_timeout_ms: 2_000,
            view_change_timeout_ms: 2_000,
            view_change_timeout_max_ms: 30_000,
            block_gas_max: limits::BLOCK_GAS_DEFAULT,
            block_state_bytes_max: limits::BLOCK_STATE_BYTES_DEFAULT,
            block_receipt_bytes_max: limits::BLOCK_RECEIPT_BYTES_DEFAULT,
            timestamp_skew_max_ms: limits::TIMESTAMP_SKEW_DEFAULT_MS,
        }
    }
}

impl ConsensusParameters {
    /// The fields by name, in encoding order, as `(name, value)`.
    pub fn fields(&self) -> [(&'static str, u64); 13] {
        [
            ("batch_transactions_max", self.batch_transactions_max as u64),
            ("batch_bytes_max", self.batch_bytes_max as u64),
            ("batch_timeout_ms", self.batch_timeout_ms),
            ("checkpoint_interval", self.checkpoint_interval),
            ("watermark_window", self.watermark_window),
            ("retransmit_interval_ms", self.retransmit_interval_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("view_change_timeout_ms", self.view_change_timeout_ms),
            ("view_change_timeout_max_ms", self.view_change_timeout_max_ms),
            ("block_gas_max", self.block_gas_max),
            ("block_state_bytes_max", self.block_state_bytes_max),
            ("block_receipt_bytes_max", self.block_receipt_bytes_max),
            ("timestamp_skew_max_ms", self.timestamp_skew_max_ms),
        ]
    }
}

impl Encode for ConsensusParameters {
    fn encode_to(&self, out: &mut Vec<u8>) {
        for (_, value) in self.fields() {
            write::u64(out, value);
        }
    }
}

impl Decode for ConsensusParameters {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut size = |what| -> Result<usize, DecodeError> {
            usize::try_from(reader.u64(what)?)
                .map_err(|_| DecodeError::Invalid { what, reason: "too large for this machine" })
        };
        let batch_transactions_max = size("batch_transactions_max")?;
        let batch_bytes_max = size("batch_bytes_max")?;
        Ok(Self {
            batch_transactions_max,
            batch_bytes_max,
            batch_timeout_ms: reader.u64("batch_timeout_ms")?,
            checkpoint_interval: reader.u64("checkpoint_interval")?,
            watermark_window: reader.u64("watermark_window")?,
            retransmit_interval_ms: reader.u64("retransmit_interval_ms")?,
            request_timeout_ms: reader.u64("request_timeout_ms")?,
            view_change_timeout_ms: reader.u64("view_change_timeout_ms")?,
            view_change_timeout_max_ms: reader.u64("view_change_timeout_max_ms")?,
            block_gas_max: reader.u64("block_gas_max")?,
            block_state_bytes_max: reader.u64("block_state_bytes_max")?,
            block_receipt_bytes_max: reader.u64("block_receipt_bytes_max")?,
            timestamp_skew_max_ms: reader.u64("timestamp_skew_max_ms")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip_through_the_encoding_and_json() {
        let parameters = ConsensusParameters {
            block_gas_max: 5_000_000,
            checkpoint_interval: 8,
            ..Default::default()
        };
        let bytes = parameters.to_bytes();
        assert_eq!(bytes.len(), 13 * 8);
        assert_eq!(ConsensusParameters::from_bytes(&bytes).unwrap(), parameters);
        let json = serde_json::to_string(&parameters).unwrap();
        assert_eq!(serde_json::from_str::<ConsensusParameters>(&json).unwrap(), parameters);
    }
}
