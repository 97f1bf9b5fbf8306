//! The gas schedule: what each contract host call costs, on top of the WebAssembly fuel the
//! contract's own instructions consume (about one unit per instruction).
//!
//! The schedule is part of the consortium configuration on the ledger: every validator
//! charges by the one in force at the block it executes, so old blocks replay to the same
//! receipts. Version 1 is the genesis schedule; a `set_gas_schedule` proposal installs the
//! next version from the block after it is applied. `docs/contract-abi.md` lists the
//! figures and explains them.

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, write};

/// The costs of the host calls, in gas units. A cost "per byte" multiplies the number of
/// bytes the host call reads from or writes to contract memory (keys, values, data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasSchedule {
    /// The schedule's version: 1 at genesis, and each schedule governance sets the next.
    pub version: u32,
    /// Every host call, charged before anything else it costs.
    pub host_call_base: u64,
    /// Copying bytes between contract memory and the host (input, method, return data,
    /// addresses, revert reasons, call results).
    pub memory_copy_per_byte: u64,
    pub storage_read_base: u64,
    /// Per byte of key and of the value found.
    pub storage_read_per_byte: u64,
    pub storage_write_base: u64,
    /// Per byte of key and of value written.
    pub storage_write_per_byte: u64,
    pub storage_remove_base: u64,
    /// Per byte of the key removed.
    pub storage_remove_per_byte: u64,
    pub event_base: u64,
    /// Per byte of topic and data.
    pub event_per_byte: u64,
    pub sha3_base: u64,
    pub sha3_per_byte: u64,
    pub ed25519_verify_base: u64,
    pub ed25519_verify_per_byte: u64,
    /// A nested contract call, charged to the caller before the callee's own gas.
    pub call_base: u64,
    /// Deploying a contract: validation and compilation.
    pub deploy_base: u64,
    /// Per byte of deployed code.
    pub deploy_per_byte: u64,
}

impl GasSchedule {
    /// Version 1, the schedule at genesis.
    pub const V1: GasSchedule = GasSchedule {
        version: 1,
        host_call_base: 20,
        memory_copy_per_byte: 1,
        storage_read_base: 200,
        storage_read_per_byte: 2,
        storage_write_base: 1_000,
        storage_write_per_byte: 10,
        storage_remove_base: 500,
        storage_remove_per_byte: 2,
        event_base: 300,
        event_per_byte: 4,
        sha3_base: 100,
        sha3_per_byte: 2,
        ed25519_verify_base: 20_000,
        ed25519_verify_per_byte: 2,
        call_base: 2_000,
        deploy_base: 50_000,
        deploy_per_byte: 20,
    };

    /// The costs by name, in encoding order (after the version).
    pub fn costs(&self) -> [(&'static str, u64); 17] {
        [
            ("host_call_base", self.host_call_base),
            ("memory_copy_per_byte", self.memory_copy_per_byte),
            ("storage_read_base", self.storage_read_base),
            ("storage_read_per_byte", self.storage_read_per_byte),
            ("storage_write_base", self.storage_write_base),
            ("storage_write_per_byte", self.storage_write_per_byte),
            ("storage_remove_base", self.storage_remove_base),
            ("storage_remove_per_byte", self.storage_remove_per_byte),
            ("event_base", self.event_base),
            ("event_per_byte", self.event_per_byte),
            ("sha3_base", self.sha3_base),
            ("sha3_per_byte", self.sha3_per_byte),
            ("ed25519_verify_base", self.ed25519_verify_base),
            ("ed25519_verify_per_byte", self.ed25519_verify_per_byte),
            ("call_base", self.call_base),
            ("deploy_base", self.deploy_base),
            ("deploy_per_byte", self.deploy_per_byte),
        ]
    }

    /// Why this schedule cannot replace `current`, if it cannot: it must be the next
    /// version, every base cost must be positive and at most [`GAS_COST_MAX`], and storage
    /// writes must cost more than reads (they grow every validator's state forever).
    pub fn check_successor(&self, current: &GasSchedule) -> Result<(), String> {
        if u64::from(self.version) != u64::from(current.version) + 1 {
            return Err(format!(
                "the schedule in force is version {}; the next one must be version {}, not {}",
                current.version,
                u64::from(current.version) + 1,
                self.version
            ));
        }
        for (name, value) in self.costs() {
            if value > GAS_COST_MAX {
                return Err(format!("{name} is {value}; a cost is at most {GAS_COST_MAX}"));
            }
            if name.ends_with("_base") && value == 0 {
                return Err(format!("{name} must be positive: every host call costs something"));
            }
        }
        if self.storage_write_base <= self.storage_read_base
            || self.storage_write_per_byte <= self.storage_read_per_byte
        {
            return Err("storage writes must cost more than reads, base and per byte".into());
        }
        Ok(())
    }

    /// `base + per_byte * bytes`, saturating: a saturated cost exceeds any gas limit and
    /// so ends the transaction as out of gas.
    pub fn cost(base: u64, per_byte: u64, bytes: usize) -> u64 {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        base.saturating_add(per_byte.saturating_mul(bytes))
    }
}

/// The largest single cost a schedule may set.
pub const GAS_COST_MAX: u64 = 100_000_000;

impl Default for GasSchedule {
    fn default() -> Self {
        GasSchedule::V1
    }
}

impl Encode for GasSchedule {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u32(out, self.version);
        for (_, value) in self.costs() {
            write::u64(out, value);
        }
    }
}

impl Decode for GasSchedule {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: reader.u32("gas schedule version")?,
            host_call_base: reader.u64("host_call_base")?,
            memory_copy_per_byte: reader.u64("memory_copy_per_byte")?,
            storage_read_base: reader.u64("storage_read_base")?,
            storage_read_per_byte: reader.u64("storage_read_per_byte")?,
            storage_write_base: reader.u64("storage_write_base")?,
            storage_write_per_byte: reader.u64("storage_write_per_byte")?,
            storage_remove_base: reader.u64("storage_remove_base")?,
            storage_remove_per_byte: reader.u64("storage_remove_per_byte")?,
            event_base: reader.u64("event_base")?,
            event_per_byte: reader.u64("event_per_byte")?,
            sha3_base: reader.u64("sha3_base")?,
            sha3_per_byte: reader.u64("sha3_per_byte")?,
            ed25519_verify_base: reader.u64("ed25519_verify_base")?,
            ed25519_verify_per_byte: reader.u64("ed25519_verify_per_byte")?,
            call_base: reader.u64("call_base")?,
            deploy_base: reader.u64("deploy_base")?,
            deploy_per_byte: reader.u64("deploy_per_byte")?,
        })
    }
}

// Storage writes must cost more than reads: they grow every validator's state forever.
const _: () = assert!(GasSchedule::V1.storage_write_base > GasSchedule::V1.storage_read_base);
const _: () =
    assert!(GasSchedule::V1.storage_write_per_byte > GasSchedule::V1.storage_read_per_byte);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_base_plus_per_byte_and_saturates() {
        assert_eq!(GasSchedule::cost(200, 2, 10), 220);
        assert_eq!(GasSchedule::cost(u64::MAX - 1, 2, 10), u64::MAX);
        assert_eq!(GasSchedule::cost(1, u64::MAX, 2), u64::MAX);
    }

    #[test]
    fn a_schedule_round_trips_and_only_a_sound_next_version_succeeds() {
        let mut next = GasSchedule { version: 2, call_base: 3_000, ..GasSchedule::V1 };
        assert_eq!(GasSchedule::from_bytes(&next.to_bytes()).unwrap(), next);
        assert_eq!(next.check_successor(&GasSchedule::V1), Ok(()));
        assert!(next.check_successor(&next).unwrap_err().contains("version 3"));
        next.storage_write_base = next.storage_read_base;
        assert!(next.check_successor(&GasSchedule::V1).unwrap_err().contains("more than reads"));
        next = GasSchedule { version: 2, sha3_base: 0, ..GasSchedule::V1 };
        assert!(next.check_successor(&GasSchedule::V1).unwrap_err().contains("sha3_base"));
        next = GasSchedule { version: 2, event_per_byte: GAS_COST_MAX + 1, ..GasSchedule::V1 };
        assert!(next.check_successor(&GasSchedule::V1).unwrap_err().contains("event_per_byte"));
    }
}
