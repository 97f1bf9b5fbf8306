//! Pactum's contract VM: deterministic, gas-metered WebAssembly on wasmtime.
//!
//! This crate owns the engine configuration every validator shares, deploy-time
//! validation, the compiled-module cache and its precompiled artifacts, the host ABI
//! (`docs/contract-abi.md`) and its gas charges, and the execution of a deploy or a call
//! against a [`StateView`] through a write overlay.
//!
//! **API boundary.** It is the only crate that imports wasmtime, and no wasmtime type
//! appears in its public API: callers hand in a contract, a call, a gas limit and a state
//! view, and get back an [`Execution`] (which becomes a receipt) or a [`VmError`]. It must
//! never read a clock, draw randomness, touch the filesystem on a contract's behalf, or
//! let a contract's behaviour depend on anything but its inputs and the state.

mod abi;
mod engine;
mod error;
mod host;
mod state;
mod validate;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pactum_types::gas::GasSchedule;
use pactum_types::hash::sha3_256;
use pactum_types::{Address, BlockHeader, Event, Hash, Receipt, ReceiptStatus, limits};
use wasmtime::{Engine, InstancePre, Linker, Module, Store};

pub use abi::{
    AbiType, HOST_FUNCTIONS, HostFunction, MODULE as ABI_MODULE, STORAGE_ABSENT, call_status,
};
pub use engine::{CacheStats, INSTANCE_POOL_SLOTS_DEFAULT};
pub use error::{DeployError, VmError};
pub use state::{DeployedContract, MemoryState, StateError, StateView, WriteSet};
pub use validate::REQUIRED_EXPORTS;

use engine::{ArtifactStore, Limiter, ModuleCache};
use host::{Frame, HostState};
use state::Overlay;

pub use pactum_types::block::{CONTRACT_ADDRESS_DOMAIN, account_address, contract_address};

/// What a contract may know of the block it runs in. Time comes from the block header,
/// never from a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockContext {
    pub height: u64,
    pub timestamp_ms: u64,
    /// The gas schedule in force at this block (the consortium's; version 1 at genesis).
    pub gas_schedule: GasSchedule,
}

impl BlockContext {
    /// The block `header`, charged by `gas_schedule`.
    pub fn new(header: &BlockHeader, gas_schedule: GasSchedule) -> Self {
        Self { height: header.height, timestamp_ms: header.timestamp_ms, gas_schedule }
    }
}

/// A trap: the contract did something WebAssembly or the host forbids.
///
/// The names are part of receipts (through [`Execution::receipt`]), so they are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    Unreachable,
    MemoryOutOfBounds,
    StackOverflow,
    IntegerDivisionByZero,
    IntegerOverflow,
    BadConversionToInteger,
    IndirectCallToNull,
    BadSignature,
    TableOutOfBounds,
    /// `memory.grow` past `CONTRACT_MEMORY_BYTES_MAX` or `TRANSACTION_MEMORY_BYTES_MAX`.
    MemoryLimitExceeded,
    TableLimitExceeded,
    /// A host call was given a pointer and length outside the contract's memory.
    HostPointerOutOfBounds,
    /// A host call argument (key, value, event, return data, ...) exceeded its limit.
    HostLimitExceeded {
        what: &'static str,
    },
    EventTopicNotUtf8,
    /// Any other WebAssembly trap.
    Other,
}

impl std::fmt::Display for Trap {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Trap::Unreachable => "unreachable",
            Trap::MemoryOutOfBounds => "memory out of bounds",
            Trap::StackOverflow => "stack overflow",
            Trap::IntegerDivisionByZero => "integer division by zero",
            Trap::IntegerOverflow => "integer overflow",
            Trap::BadConversionToInteger => "bad conversion to integer",
            Trap::IndirectCallToNull => "indirect call to null",
            Trap::BadSignature => "indirect call signature mismatch",
            Trap::TableOutOfBounds => "table out of bounds",
            Trap::MemoryLimitExceeded => "memory limit exceeded",
            Trap::TableLimitExceeded => "table limit exceeded",
            Trap::HostPointerOutOfBounds => "host call pointer out of bounds",
            Trap::HostLimitExceeded { what } => {
                return write!(formatter, "{what} exceeds its limit");
            }
            Trap::EventTopicNotUtf8 => "event topic is not UTF-8",
            Trap::Other => "other trap",
        };
        formatter.write_str(name)
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Success,
    Reverted { reason: String },
    OutOfGas,
    Trapped { trap: Trap },
}

/// The outcome of one deploy or call: a receipt's contents plus the write set.
///
/// Only a successful execution carries events, return data and writes; every other
/// outcome carries empty ones. Gas is charged in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub status: Status,
    pub gas_used: u64,
    pub events: Vec<Event>,
    pub return_data: Vec<u8>,
    pub write_set: WriteSet,
    /// The contract called, or the contract deployed.
    pub contract: Address,
}

impl Execution {
    /// The receipt for this execution. A trap becomes `Trapped` with the trap's stable
    /// name as its reason.
    pub fn receipt(&self, transaction_hash: Hash) -> Receipt {
        let status = match &self.status {
            Status::Success => ReceiptStatus::Success,
            Status::Reverted { reason } => ReceiptStatus::Reverted { reason: reason.clone() },
            Status::OutOfGas => ReceiptStatus::OutOfGas,
            Status::Trapped { trap } => ReceiptStatus::Trapped { reason: trap.to_string() },
        };
        Receipt {
            transaction_hash,
            status,
            gas_used: self.gas_used,
            events: self.events.clone(),
            return_data: self.return_data.clone(),
        }
    }
}

/// A transaction's call of a contract method.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    pub caller: Address,
    pub contract: Address,
    pub method: &'a str,
    pub input: &'a [u8],
    pub gas_limit: u64,
}

/// A transaction's deploy of a contract; its `pactum_init` runs with `init_input`.
#[derive(Debug, Clone, Copy)]
pub struct DeployRequest<'a> {
    pub deployer: Address,
    pub nonce: u64,
    pub code: &'a [u8],
    pub init_input: &'a [u8],
    pub gas_limit: u64,
}

/// How to build a [`Vm`].
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// Fuel metering. Always on for validators; off only to measure what it costs.
    pub metering: bool,
    /// Where precompiled modules are kept across restarts; `None` keeps them in memory only.
    pub artifact_directory: Option<PathBuf>,
    /// Compiled modules kept in memory.
    pub module_cache_entries: usize,
    /// Instance slots of wasmtime's pooling allocator (pre-reserved, reused slots), by
    /// default [`INSTANCE_POOL_SLOTS_DEFAULT`] (four transactions at the instance limit
    /// at once); 0 allocates each instance on demand instead, about 3x slower (see
    /// `docs/benchmarks.md`). A run that finds the pool empty is a `VmError::Engine`.
    pub instance_pool_slots: u32,
}

impl Default for VmOptions {
    fn default() -> Self {
        Self {
            metering: true,
            artifact_directory: None,
            module_cache_entries: limits::CONTRACT_MODULE_CACHE_ENTRIES_MAX,
            instance_pool_slots: INSTANCE_POOL_SLOTS_DEFAULT,
        }
    }
}

/// What every store of a VM shares.
pub(crate) struct Shared {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<ModuleCache>,
    artifacts: Option<ArtifactStore>,
    pub(crate) metering: bool,
}

impl Shared {
    /// The ready-to-instantiate module for `code_hash`: from memory, else from a
    /// precompiled artifact, else compiled from the code `code` returns (`None` if the
    /// state has no such code).
    pub(crate) fn instance_pre(
        &self,
        code_hash: &Hash,
        code: impl FnOnce() -> Result<Option<Arc<Vec<u8>>>, StateError>,
    ) -> Result<Option<InstancePre<HostState>>, VmError> {
        if let Some(pre) = self.lock_cache().get(code_hash) {
            return Ok(Some(pre));
        }
        let loaded = self.artifacts.as_ref().and_then(|store| store.load(&self.engine, code_hash));
        let from_artifact = loaded.is_some();
        let module = match loaded {
            Some(module) => module,
            None => {
                let Some(code) = code()? else { return Ok(None) };
                let module = Module::new(&self.engine, code.as_slice())
                    .map_err(|error| VmError::Compile { reason: format!("{error:#}") })?;
                if let Some(store) = &self.artifacts {
                    store.save(code_hash, &module)?;
                }
                module
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|error| VmError::Compile { reason: format!("{error:#}") })?;
        let mut cache = self.lock_cache();
        if from_artifact {
            cache.stats.loaded_from_artifact += 1;
        } else {
            cache.stats.compiled += 1;
        }
        cache.insert(*code_hash, pre.clone());
        Ok(Some(pre))
    }

    /// Forgets the compiled module of `code_hash` (memory and artifact): the code of a
    /// deploy that did not succeed, which no contract uses.
    pub(crate) fn forget(&self, code_hash: &Hash) -> Result<(), VmError> {
        self.lock_cache().remove(code_hash);
        match &self.artifacts {
            Some(store) => store.remove(code_hash),
            None => Ok(()),
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ModuleCache> {
        // The cache holds no invariant a panicking holder could break half-way.
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The contract VM. Cheap to share between threads; one per node.
#[derive(Clone)]
pub struct Vm {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Vm")
            .field("metering", &self.shared.metering)
            .field("cache", &self.cache_stats())
            .finish()
    }
}

impl Vm {
    pub fn new(options: VmOptions) -> Result<Self, VmError> {
        let VmOptions { metering, artifact_directory, module_cache_entries, instance_pool_slots } =
            options;
        let engine = engine::engine(metering, instance_pool_slots)?;
        let linker = host::linker(&engine)
            .map_err(|error| VmError::Engine { reason: format!("{error:#}") })?;
        let artifacts = match artifact_directory {
            Some(directory) => Some(ArtifactStore::open(&directory, &engine)?),
            None => None,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                engine,
                linker,
                cache: Mutex::new(ModuleCache::new(module_cache_entries.max(1))),
                artifacts,
                metering,
            }),
        })
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.shared.lock_cache().stats
    }

    /// Checks `code` against every deploy rule without deploying it.
    pub fn validate(&self, code: &[u8]) -> Result<(), DeployError> {
        validate::validate(&self.shared.engine, code)
    }

    /// Deploys a contract and runs its `pactum_init` export.
    ///
    /// Gas: `deploy_base + deploy_per_byte * code bytes`, then whatever `pactum_init`
    /// uses. On success the write set registers the contract at
    /// [`contract_address`]`(deployer, nonce)`.
    pub fn deploy(
        &self,
        state: Arc<dyn StateView>,
        block: &BlockContext,
        request: &DeployRequest<'_>,
    ) -> Result<Execution, VmError> {
        check_gas_limit(request.gas_limit)?;
        check_input(request.init_input)?;
        self.validate(request.code)?;
        let address = contract_address(&request.deployer, request.nonce);
        if state.contract_code_hash(&address)?.is_some() {
            return Err(VmError::ContractExists { address });
        }
        let code_hash = sha3_256(request.code);
        let schedule = &block.gas_schedule;
        let deploy_cost = if self.shared.metering {
            GasSchedule::cost(schedule.deploy_base, schedule.deploy_per_byte, request.code.len())
        } else {
            0
        };
        // Out of gas before compiling: a deploy that cannot pay compiles nothing.
        if deploy_cost > request.gas_limit {
            return Ok(Execution {
                status: Status::OutOfGas,
                gas_used: request.gas_limit,
                events: Vec::new(),
                return_data: Vec::new(),
                write_set: WriteSet::default(),
                contract: address,
            });
        }
        // Code some contract already uses keeps its compiled module whatever happens here.
        let code_in_use = state.code(&code_hash)?.is_some();
        let code = Arc::new(request.code.to_vec());
        let pre = self
            .shared
            .instance_pre(&code_hash, || Ok(Some(Arc::clone(&code))))?
            .ok_or(VmError::MissingCode { address, code_hash })?;
        let mut overlay = Overlay::new(state);
        overlay.deploy(address, DeployedContract { code_hash, code });
        let frame = Frame {
            contract: address,
            caller: request.deployer,
            method: String::from("init"),
            input: request.init_input.to_vec(),
            memory: None,
            return_data: Vec::new(),
        };
        let execution = self.execute(
            overlay,
            block,
            frame,
            &pre,
            "pactum_init",
            request.gas_limit - deploy_cost,
        );
        // Nothing is kept from a deploy that did not succeed: not its compiled module in
        // memory, nor its artifact on disk.
        let succeeded = matches!(&execution, Ok(execution) if execution.status == Status::Success);
        if !succeeded && !code_in_use {
            self.shared.forget(&code_hash)?;
        }
        let mut execution = execution?;
        execution.gas_used += deploy_cost;
        Ok(execution)
    }

    /// Calls `request.method` of the contract at `request.contract`.
    pub fn call(
        &self,
        state: Arc<dyn StateView>,
        block: &BlockContext,
        request: &CallRequest<'_>,
    ) -> Result<Execution, VmError> {
        check_gas_limit(request.gas_limit)?;
        check_input(request.input)?;
        if request.method.len() > limits::METHOD_NAME_BYTES_MAX {
            return Err(VmError::MethodNameTooLong {
                bytes: request.method.len(),
                max: limits::METHOD_NAME_BYTES_MAX,
            });
        }
        let address = request.contract;
        let code_hash =
            state.contract_code_hash(&address)?.ok_or(VmError::UnknownContract { address })?;
        let pre = self
            .shared
            .instance_pre(&code_hash, || state.code(&code_hash))?
            .ok_or(VmError::MissingCode { address, code_hash })?;
        let frame = Frame {
            contract: address,
            caller: request.caller,
            method: request.method.to_string(),
            input: request.input.to_vec(),
            memory: None,
            return_data: Vec::new(),
        };
        self.execute(Overlay::new(state), block, frame, &pre, "pactum_call", request.gas_limit)
    }

    fn execute(
        &self,
        overlay: Overlay,
        block: &BlockContext,
        frame: Frame,
        pre: &InstancePre<HostState>,
        entry: &str,
        gas_limit: u64,
    ) -> Result<Execution, VmError> {
        let contract = frame.contract;
        // Entering a contract costs `call_base`, like a nested call, so that even a run
        // that traps in its first instruction is charged for its instantiation.
        let entry_cost = if self.shared.metering { block.gas_schedule.call_base } else { 0 };
        if entry_cost > gas_limit {
            return Ok(Execution {
                status: Status::OutOfGas,
                gas_used: gas_limit,
                events: Vec::new(),
                return_data: Vec::new(),
                write_set: WriteSet::default(),
                contract,
            });
        }
        let mut store = Store::new(
            &self.shared.engine,
            HostState {
                shared: Arc::clone(&self.shared),
                overlay,
                frames: vec![frame],
                events: Vec::new(),
                call_result: Vec::new(),
                block: *block,
                limiter: Limiter::default(),
                instances: 0,
                state_error: None,
                engine_error: None,
            },
        );
        store.limiter(|state| &mut state.limiter);
        let engine_error =
            |error: wasmtime::Error| VmError::Engine { reason: format!("{error:#}") };
        if self.shared.metering {
            store.set_fuel(gas_limit - entry_cost).map_err(engine_error)?;
        }
        let result = host::run_frame(&mut store, pre, entry);
        let remaining =
            if self.shared.metering { store.get_fuel().map_err(engine_error)? } else { gas_limit };
        let mut host = store.into_data();
        if let Some(error) = host.state_error.take() {
            return Err(VmError::State(error));
        }
        if let Some(reason) = host.engine_error.take() {
            return Err(VmError::Engine { reason });
        }
        let status = host::classify(result).map_err(|reason| VmError::Engine { reason })?;
        let gas_used = match status {
            Status::OutOfGas => gas_limit,
            _ => gas_limit - remaining.min(gas_limit),
        };
        if status != Status::Success {
            return Ok(Execution {
                status,
                gas_used,
                events: Vec::new(),
                return_data: Vec::new(),
                write_set: WriteSet::default(),
                contract,
            });
        }
        let return_data = host.frames.pop().map(|frame| frame.return_data).unwrap_or_default();
        Ok(Execution {
            status,
            gas_used,
            events: host.events,
            return_data,
            write_set: host.overlay.into_write_set(),
            contract,
        })
    }
}

fn check_gas_limit(gas_limit: u64) -> Result<(), VmError> {
    if gas_limit > limits::TRANSACTION_GAS_MAX {
        return Err(VmError::GasLimitTooHigh { gas_limit, max: limits::TRANSACTION_GAS_MAX });
    }
    Ok(())
}

fn check_input(input: &[u8]) -> Result<(), VmError> {
    if input.len() > limits::CALL_INPUT_BYTES_MAX {
        return Err(VmError::InputTooLarge {
            bytes: input.len(),
            max: limits::CALL_INPUT_BYTES_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vm_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Vm>();
    }

    #[test]
    fn contract_addresses_depend_on_deployer_and_nonce() {
        let deployer = Address([7; 32]);
        let address = contract_address(&deployer, 0);
        assert_eq!(address, contract_address(&deployer, 0));
        assert_ne!(address, contract_address(&deployer, 1));
        assert_ne!(address, contract_address(&Address([8; 32]), 0));
        let expected =
            sha3_256(&[CONTRACT_ADDRESS_DOMAIN, &[7; 32][..], &0u64.to_be_bytes()[..]].concat());
        assert_eq!(address.0, expected.0);
    }
}
