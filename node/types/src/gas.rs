//! The gas schedule: what each contract host call costs, on top of the WebAssembly fuel the
//! contract's own instructions consume (about one unit per instruction).
//!
//! The schedule is versioned. Every validator must charge by the same version, so a new
//! schedule is a new constant with a new `version`, activated by governance at a block
//! height; the old one stays so that old blocks replay to the same receipts.
//! `docs/contract-abi.md` lists the figures and explains them.

/// The costs of the host calls, in gas units. A cost "per byte" multiplies the number of
/// bytes the host call reads from or writes to contract memory (keys, values, data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasSchedule {
    /// The schedule's version; receipts and blocks are only comparable under one version.
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

    /// `base + per_byte * bytes`, saturating: a saturated cost exceeds any gas limit and
    /// so ends the transaction as out of gas.
    pub fn cost(base: u64, per_byte: u64, bytes: usize) -> u64 {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        base.saturating_add(per_byte.saturating_mul(bytes))
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
}
