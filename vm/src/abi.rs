//! The Pactum host ABI, version 1: the only functions a contract may import.
//!
//! This table is the single source of truth: deploy validation checks imports against it,
//! the linker defines exactly these functions (a test checks that the two agree), and
//! `docs/contract-abi.md` documents each one. Pointers and lengths are `i32` offsets into
//! the contract's exported `memory`; a range outside it traps.

/// The import module name of ABI version 1. A future version gets a new module name, and
/// the engine links both for as long as contracts built for the old one exist.
pub const MODULE: &str = "pactum_v1";

/// A WebAssembly value type used by the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiType {
    I32,
    I64,
}

/// One host function's name and signature.
#[derive(Debug, Clone, Copy)]
pub struct HostFunction {
    pub name: &'static str,
    pub params: &'static [AbiType],
    pub results: &'static [AbiType],
}

use AbiType::{I32, I64};

const fn function(
    name: &'static str,
    params: &'static [AbiType],
    results: &'static [AbiType],
) -> HostFunction {
    HostFunction { name, params, results }
}

/// Every host function of ABI version 1.
pub const HOST_FUNCTIONS: &[HostFunction] = &[
    function("input_size", &[], &[I32]),
    function("input_copy", &[I32], &[]),
    function("method_size", &[], &[I32]),
    function("method_copy", &[I32], &[]),
    function("return_set", &[I32, I32], &[]),
    function("storage_get", &[I32, I32, I32, I32], &[I32]),
    function("storage_set", &[I32, I32, I32, I32], &[]),
    function("storage_remove", &[I32, I32], &[]),
    function("caller", &[I32], &[]),
    function("self_address", &[I32], &[]),
    function("block_height", &[], &[I64]),
    function("block_timestamp_ms", &[], &[I64]),
    function("event_emit", &[I32, I32, I32, I32], &[]),
    function("revert", &[I32, I32], &[]),
    function("sha3_256", &[I32, I32, I32], &[]),
    function("ed25519_verify", &[I32, I32, I32, I32], &[I32]),
    function("call", &[I32, I32, I32, I32, I32, I64], &[I32]),
    function("call_result_size", &[], &[I32]),
    function("call_result_copy", &[I32], &[]),
];

/// `storage_get`'s answer when the key holds no value.
pub const STORAGE_ABSENT: i32 = -1;

/// The answers of `call`.
pub mod call_status {
    /// The callee succeeded; its state changes stand and the call result is its return data.
    pub const SUCCESS: i32 = 0;
    /// The callee reverted; its state changes are discarded and the call result is its reason.
    pub const REVERTED: i32 = 1;
    /// The callee ran out of the gas it was given; its state changes are discarded.
    pub const OUT_OF_GAS: i32 = 2;
    /// The callee trapped; its state changes are discarded and the call result names the trap.
    pub const TRAPPED: i32 = 3;
    /// The call did not run: unknown contract, reentrancy, call depth or instance limit.
    /// The call result says which.
    pub const REFUSED: i32 = 4;
}
