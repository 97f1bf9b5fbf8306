//! The VM's typed errors: what stops a transaction from running at all.
//!
//! A contract's own failure (a revert, a trap, running out of gas) is not an error here:
//! it is a [`crate::Status`] inside an [`crate::Execution`], with gas charged.

use pactum_types::Address;
use thiserror::Error;

use crate::state::StateError;

/// Why deployed code was refused. Each is checked before the code is compiled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeployError {
    #[error("contract code is {bytes} bytes; the maximum is {max}")]
    CodeTooLarge { bytes: usize, max: usize },
    #[error("contract code is not a valid WebAssembly module for Pactum's engine: {reason}")]
    InvalidModule { reason: String },
    #[error(
        "the module imports `{module}.{name}`, which is not in the Pactum host ABI \
         (module `{abi}`) with that signature"
    )]
    UnknownImport { module: String, name: String, abi: &'static str },
    #[error("the module lacks the required export `{name}` ({kind})")]
    MissingExport { name: &'static str, kind: &'static str },
    #[error("the module has a start function; contracts run only through their entry points")]
    StartFunction,
    #[error("the module declares {pages} initial memory pages; the maximum is {max}")]
    MemoryTooLarge { pages: u64, max: u64 },
    #[error(
        "data segment {index} covers bytes {start}..{end}, beyond the initial memory of {memory_bytes} bytes"
    )]
    DataSegmentOutOfBounds { index: u32, start: u64, end: u64, memory_bytes: u64 },
    #[error("the module declares a table of {elements} elements; the maximum is {max}")]
    TableTooLarge { elements: u64, max: u64 },
    #[error("the module has {count} {what}; the maximum is {max}")]
    TooMany { what: &'static str, count: u64, max: u64 },
    #[error("function {index} of the module {what} {count}; the maximum is {max}")]
    FunctionTooLarge { index: u32, what: &'static str, count: u64, max: u64 },
}

/// Why the VM could not produce a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VmError {
    #[error("deploy refused: {0}")]
    Deploy(#[from] DeployError),
    #[error("no contract is deployed at {address}")]
    UnknownContract { address: Address },
    #[error("a contract is already deployed at {address}")]
    ContractExists { address: Address },
    #[error("the code of the contract at {address} (code hash {code_hash}) is missing from state")]
    MissingCode { address: Address, code_hash: pactum_types::Hash },
    #[error("method name is {bytes} bytes; the maximum is {max}")]
    MethodNameTooLong { bytes: usize, max: usize },
    #[error("call input is {bytes} bytes; the maximum is {max}")]
    InputTooLarge { bytes: usize, max: usize },
    #[error("gas limit {gas_limit} exceeds the maximum {max}")]
    GasLimitTooHigh { gas_limit: u64, max: u64 },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("compiling a validated module failed: {reason}")]
    Compile { reason: String },
    #[error("precompiled artifact store at {path}: {reason}")]
    Artifact { path: String, reason: String },
    #[error("the VM's engine failed: {reason}")]
    Engine { reason: String },
}
