//! The wasmtime engine configuration every validator shares, the resource limiter, and the
//! compiled-module cache with its on-disk precompiled artifacts.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher};
use std::path::{Path, PathBuf};

use pactum_types::hash::sha3_256;
use pactum_types::{Hash, limits};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Module, OptLevel,
    PoolingAllocationConfig, ResourceLimiter, WasmFeatures,
};

/// Instance slots of the pooling allocator by default: enough for four transactions with
/// the most instances a transaction may create, running at once on one VM. Each slot
/// reserves (but does not commit) 4 GiB of address space, so that memory accesses need
/// no explicit bounds checks. A run that finds the pool empty ends in `VmError::Engine`,
/// never in a receipt.
pub const INSTANCE_POOL_SLOTS_DEFAULT: u32 =
    4 * limits::CONTRACT_INSTANCES_PER_TRANSACTION_MAX as u32;

/// Bytes of each pooled memory (and of each table) kept resident between instances
/// instead of being given back to the kernel: a contract's stack and first heap pages.
const POOL_MEMORY_KEEP_RESIDENT_BYTES: usize = 256 * 1024;
const POOL_TABLE_KEEP_RESIDENT_BYTES: usize = 16 * 1024;

use crate::error::VmError;
use crate::host::{HostState, HostTrap};

/// Builds the engine. Every validator must use exactly this configuration (see
/// `docs/contract-abi.md`, "Engine configuration"); only `metering` may be switched off,
/// and only by benchmarks that measure what metering costs.
/// `pool_slots` is the pooling allocator's size; 0 allocates each instance on demand.
pub(crate) fn engine(metering: bool, pool_slots: u32) -> Result<Engine, VmError> {
    let mut config = Config::new();
    // Gas: wasmtime fuel, about one unit per instruction, plus host-call charges.
    config.consume_fuel(metering);
    // Every NaN a float instruction produces has the one canonical bit pattern, so no
    // result depends on the host CPU's NaN payloads.
    config.cranelift_nan_canonicalization(true);
    config.cranelift_opt_level(OptLevel::Speed);
    // The features Rust's wasm32-unknown-unknown target emits by default, all deterministic.
    config.wasm_bulk_memory(true);
    config.wasm_multi_value(true);
    config.wasm_features(
        WasmFeatures::REFERENCE_TYPES
            | WasmFeatures::SIGN_EXTENSION
            | WasmFeatures::SATURATING_FLOAT_TO_INT
            | WasmFeatures::MUTABLE_GLOBAL,
        true,
    );
    // Off: non-deterministic (threads, relaxed SIMD), or not needed by contracts and one
    // more surface to keep deterministic (SIMD, memory64, several memories, GC, ...).
    config.wasm_simd(false);
    config.wasm_relaxed_simd(false);
    config.wasm_multi_memory(false);
    config.wasm_memory64(false);
    config.wasm_tail_call(false);
    config.wasm_custom_page_sizes(false);
    config.wasm_wide_arithmetic(false);
    config.wasm_extended_const(false);
    config.wasm_stack_switching(false);
    config.wasm_gc(false);
    config.wasm_features(
        WasmFeatures::THREADS
            | WasmFeatures::SHARED_EVERYTHING_THREADS
            | WasmFeatures::EXCEPTIONS
            | WasmFeatures::LEGACY_EXCEPTIONS
            | WasmFeatures::FUNCTION_REFERENCES
            | WasmFeatures::GC
            | WasmFeatures::COMPONENT_MODEL
            | WasmFeatures::MEMORY_CONTROL,
        false,
    );
    // The native stack WebAssembly may use, for the whole chain of nested calls.
    config.max_wasm_stack(limits::CONTRACT_WASM_STACK_BYTES_MAX);
    // Receipts never carry backtraces; skipping them makes traps cheaper.
    config.wasm_backtrace_max_frames(None);
    if pool_slots > 0 {
        // Instances reuse pre-reserved slots and keep their first pages resident, which
        // saves the mmap, page faults and madvise of each instantiation.
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(pool_slots)
            .total_memories(pool_slots)
            .total_tables(pool_slots)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(limits::CONTRACT_MEMORY_BYTES_MAX)
            .table_elements(limits::CONTRACT_TABLE_ELEMENTS_MAX)
            .linear_memory_keep_resident(POOL_MEMORY_KEEP_RESIDENT_BYTES)
            .table_keep_resident(POOL_TABLE_KEEP_RESIDENT_BYTES);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config).map_err(|error| VmError::Engine { reason: format!("{error:#}") })
}

/// Caps the memories, tables and instances of one transaction's store.
///
/// Exceeding a cap traps (an `Err` from the limiter), which ends the transaction with a
/// trap receipt. The figures come from `pactum_types::limits`.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    memory_bytes_total: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > limits::CONTRACT_MEMORY_BYTES_MAX {
            return Err(wasmtime::Error::new(HostTrap::MemoryLimitExceeded));
        }
        let total = self.memory_bytes_total.saturating_add(desired.saturating_sub(current));
        if total > limits::TRANSACTION_MEMORY_BYTES_MAX {
            return Err(wasmtime::Error::new(HostTrap::MemoryLimitExceeded));
        }
        self.memory_bytes_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > limits::CONTRACT_TABLE_ELEMENTS_MAX {
            return Err(wasmtime::Error::new(HostTrap::TableLimitExceeded));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        limits::CONTRACT_INSTANCES_PER_TRANSACTION_MAX
    }

    fn tables(&self) -> usize {
        limits::CONTRACT_INSTANCES_PER_TRANSACTION_MAX
    }

    fn memories(&self) -> usize {
        limits::CONTRACT_INSTANCES_PER_TRANSACTION_MAX
    }
}

/// How the module cache has been used, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Modules currently held in memory.
    pub entries: usize,
    /// Lookups answered from memory.
    pub hits: u64,
    /// Modules compiled from WebAssembly.
    pub compiled: u64,
    /// Modules loaded from a precompiled artifact instead of compiled.
    pub loaded_from_artifact: u64,
    /// Modules dropped to stay within the cache's bound.
    pub evicted: u64,
}

/// A bounded, least-recently-used map from code hash to a ready-to-instantiate module.
pub(crate) struct ModuleCache {
    entries: HashMap<Hash, (u64, InstancePre<HostState>)>,
    capacity: usize,
    tick: u64,
    pub(crate) stats: CacheStats,
}

impl ModuleCache {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "the module cache needs room for at least one module");
        Self { entries: HashMap::new(), capacity, tick: 0, stats: CacheStats::default() }
    }

    pub(crate) fn get(&mut self, code_hash: &Hash) -> Option<InstancePre<HostState>> {
        self.tick += 1;
        let tick = self.tick;
        let (last_used, pre) = self.entries.get_mut(code_hash)?;
        *last_used = tick;
        self.stats.hits += 1;
        Some(pre.clone())
    }

    /// Drops the module for `code_hash`, if cached.
    pub(crate) fn remove(&mut self, code_hash: &Hash) {
        if self.entries.remove(code_hash).is_some() {
            self.stats.entries = self.entries.len();
        }
    }

    pub(crate) fn insert(&mut self, code_hash: Hash, pre: InstancePre<HostState>) {
        self.tick += 1;
        if !self.entries.contains_key(&code_hash) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (last_used, _))| *last_used)
                .map(|(hash, _)| *hash);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
                self.stats.evicted += 1;
            }
        }
        self.entries.insert(code_hash, (self.tick, pre));
        self.stats.entries = self.entries.len();
        assert!(self.entries.len() <= self.capacity);
    }
}

/// Precompiled modules on disk, one file per code hash and engine configuration.
///
/// A file is `sha3_256(artifact) || artifact`, written to a temporary name and renamed,
/// so a torn or corrupted file is detected and simply recompiled.
#[derive(Debug)]
pub(crate) struct ArtifactStore {
    directory: PathBuf,
    engine_tag: String,
}

impl ArtifactStore {
    pub(crate) fn open(directory: &Path, engine: &Engine) -> Result<Self, VmError> {
        std::fs::create_dir_all(directory).map_err(|error| VmError::Artifact {
            path: directory.display().to_string(),
            reason: error.to_string(),
        })?;
        // The compatibility hash covers wasmtime's version and every compilation
        // setting, so an upgraded node never even tries an old artifact.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            directory: directory.to_path_buf(),
            engine_tag: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, code_hash: &Hash) -> PathBuf {
        self.directory.join(format!("{code_hash}-{}.cwasm", self.engine_tag))
    }

    /// The module stored for `code_hash`, or `None` if absent, corrupt or incompatible.
    pub(crate) fn load(&self, engine: &Engine, code_hash: &Hash) -> Option<Module> {
        let bytes = std::fs::read(self.path(code_hash)).ok()?;
        if bytes.len() < 32 || sha3_256(&bytes[32..]).0[..] != bytes[..32] {
            return None;
        }
        load_precompiled(engine, &bytes[32..])
    }

    /// Deletes the artifact of `code_hash`, if there is one.
    pub(crate) fn remove(&self, code_hash: &Hash) -> Result<(), VmError> {
        let path = self.path(code_hash);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(VmError::Artifact {
                path: path.display().to_string(),
                reason: error.to_string(),
            }),
        }
    }

    pub(crate) fn save(&self, code_hash: &Hash, module: &Module) -> Result<(), VmError> {
        let path = self.path(code_hash);
        let error = |reason: String| VmError::Artifact { path: path.display().to_string(), reason };
        let artifact = module.serialize().map_err(|e| error(format!("{e:#}")))?;
        let mut bytes = Vec::with_capacity(32 + artifact.len());
        bytes.extend_from_slice(&sha3_256(&artifact).0);
        bytes.extend_from_slice(&artifact);
        let temporary = path.with_extension("cwasm.tmp");
        std::fs::write(&temporary, &bytes).map_err(|e| error(e.to_string()))?;
        std::fs::rename(&temporary, &path).map_err(|e| error(e.to_string()))
    }
}

#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, artifact: &[u8]) -> Option<Module> {
    // SAFETY: `Module::deserialize` trusts its input to be wasmtime's own output. These
    // bytes are: they were written by `ArtifactStore::save` from `Module::serialize`, into
    // the node's private data directory, and their SHA3-256 checksum was verified above,
    // so a torn or corrupted file never gets here. wasmtime itself refuses (with an error,
    // not undefined behaviour) an artifact from another wasmtime version or configuration.
    unsafe { Module::deserialize(engine, artifact) }.ok()
}
