//! Pactum's block executor: it runs committed blocks in the contract VM against the
//! RocksDB state and commits each block, its receipts and its state changes atomically.
//!
//! It owns the execution rules of a block (`docs/adr/0010-executor-nonces-and-invalid-transactions.md`):
//! transactions run strictly in order; each sees the successful writes of the ones before
//! it; a transaction whose envelope is not acceptable (wrong chain, stale or future nonce,
//! gas limit over the maximum, a payload not executed yet) gets an `Invalid` receipt and
//! changes nothing; every other transaction consumes its nonce and is charged gas, whatever
//! its outcome. The block then goes to `Store::commit_block` in one synced `WriteBatch`.
//!
//! It must never let anything but the block and the committed state decide a receipt: no
//! clock, no randomness, no disk error. A node failure (a RocksDB read error, an engine
//! failure) is an [`ExecutorError`] that aborts the whole block with nothing written.
//!
//! It does not verify transaction signatures: every validator verifies each transaction
//! once, on admission or when a proposal brings it, before it can be ordered, and a
//! block is executed only once 2f + 1 validators committed it.

pub mod governance;
mod state;

use std::sync::{Arc, Mutex};

use pactum_certs::identity::Role;
use pactum_certs::verify::TrustStore;
use pactum_governance::{Consortium, Proposal};
use pactum_storage::{
    BlockCommit, StateSpace, StorageError, Store, StoreRead, StoreReader, StoreSnapshot,
};
use pactum_types::gas::GasSchedule;
use pactum_types::receipt::receipts_root;
use pactum_types::{
    Address, Block, BlockHeader, ChainId, ConsensusParameters, Encode, EnvelopeFault, Event, Hash,
    Payload, PublicKey, Receipt, ReceiptStatus, Transaction, limits,
};
use pactum_vm::{
    BlockContext, CallRequest, DeployRequest, Execution, StateView, Vm, VmError, VmOptions,
    account_address,
};
use thiserror::Error;

use governance::BlockGovernance;
pub use state::ledger;
use state::{BlockState, committed_code_hash, committed_next_nonce};

/// The reason of the `Invalid` receipt of a governance transaction on an executor
/// without a consortium.
pub const GOVERNANCE_NOT_EXECUTED: &str = "this executor has no consortium to govern";
/// The reason of the `Invalid` receipt of an identity enrolment on an executor without
/// trust roots.
pub const ENROLMENT_NOT_EXECUTED: &str = "this executor has no trust roots to enrol identities";

/// Checks the enrolment `record` of `sender` (from [`ledger::identity_key`]) at Unix time
/// `at`: it exists, its organisation is still a member (has a CA in `trust`), its
/// certificate is not revoked in `trust`, and it has not expired.
/// A record that does not decode is a damaged store. The one signer rule admission (at
/// the node's clock) and execution (at the block's time) both apply, so a transaction a
/// Byzantine primary orders from a key the ledger does not accept gets the same `Invalid`
/// receipt on every validator (ADR 0015).
pub fn signer_fault(
    sender: &PublicKey,
    record: Option<&[u8]>,
    trust: &TrustStore,
    at: u64,
) -> Result<Option<EnvelopeFault>, StorageError> {
    let Some(record) = record else {
        return Ok(Some(EnvelopeFault::UnknownSigner { sender: *sender }));
    };
    let enrolment =
        ledger::Enrolment::from_bytes(record).map_err(|error| StorageError::Corrupt {
            what: format!("the enrolment of {sender}"),
            detail: error.to_string(),
        })?;
    if !trust.has_organisation(&enrolment.organisation) {
        return Ok(Some(EnvelopeFault::FormerMember {
            sender: *sender,
            organisation: enrolment.organisation,
        }));
    }
    if trust.is_revoked(&enrolment.organisation, &enrolment.serial) {
        return Ok(Some(EnvelopeFault::RevokedSigner {
            sender: *sender,
            organisation: enrolment.organisation,
            serial: hex::encode(&enrolment.serial),
        }));
    }
    if let Some(not_after) = enrolment.not_after
        && at > not_after
    {
        return Ok(Some(EnvelopeFault::ExpiredSigner { sender: *sender, not_after, at }));
    }
    Ok(None)
}

/// Why a block could not be executed. Nothing of the block was written.
#[derive(Debug, Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "the VM failed on transaction {position} ({transaction}) of block {height}: {source}; \
         nothing of the block was written"
    )]
    Vm {
        height: u64,
        position: usize,
        transaction: Hash,
        #[source]
        source: VmError,
    },
    #[error("the VM failed during a query: {source}")]
    Query {
        #[source]
        source: VmError,
    },
    #[error("the contract VM could not be set up: {source}")]
    VmSetup {
        #[source]
        source: VmError,
    },
    #[error("cannot execute block {got}: the next height is {expected}")]
    HeightOutOfOrder { expected: u64, got: u64 },
    #[error("block {height} is for chain {found}, but this executor runs chain {expected}")]
    WrongChain { height: u64, expected: ChainId, found: ChainId },
    #[error(
        "block {height} says the {field} is {found}, but this node has {expected}: this node \
         has diverged from the validators that committed the block; stop it and restore its \
         data from a healthy validator"
    )]
    Diverged { height: u64, field: &'static str, expected: Hash, found: Hash },
    #[error("stored {what} is missing: the store is damaged")]
    Missing { what: String },
}

/// How to build an [`Executor`].
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The chain this node runs; blocks and transactions for any other are refused.
    pub chain_id: ChainId,
    /// The VM's options; set `artifact_directory` (inside the node's data directory) so
    /// that compiled contracts survive restarts.
    pub vm: VmOptions,
    /// The consortium at genesis: its member CAs and revocations check identity
    /// enrolments and signers until governance changes them. Without it every enrolment
    /// and governance transaction is refused and signers are not checked.
    pub consortium: Option<Arc<Consortium>>,
    /// What one block may use, for an executor without a consortium; with one, each
    /// block's budget comes from the consortium's parameters in force at it (ADR 0022).
    pub budget: BlockBudget,
}

impl ExecutorOptions {
    pub fn new(chain_id: ChainId) -> Self {
        Self {
            chain_id,
            vm: VmOptions::default(),
            consortium: None,
            budget: BlockBudget::default(),
        }
    }
}

/// What one block may use, whatever its primary put in it (ADR 0016). Every validator
/// applies it the same way, in order:
/// - a transaction whose gas limit would take the block's gas limits past `gas_max` is
///   `Invalid` (its nonce is not used; an honest primary never cuts such a batch, and
///   backups refuse one);
/// - a transaction whose writes (keys, values, contract code) or receipt (events, return
///   data) would take the block past `state_bytes_max` or `receipt_bytes_max` is reverted:
///   its gas is charged, nothing it wrote is kept, and its receipt says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockBudget {
    pub gas_max: u64,
    pub state_bytes_max: u64,
    pub receipt_bytes_max: u64,
}

impl BlockBudget {
    /// The budget `parameters` set.
    pub fn of(parameters: &ConsensusParameters) -> Self {
        Self {
            gas_max: parameters.block_gas_max,
            state_bytes_max: parameters.block_state_bytes_max,
            receipt_bytes_max: parameters.block_receipt_bytes_max,
        }
    }
}

impl Default for BlockBudget {
    fn default() -> Self {
        Self {
            gas_max: limits::BLOCK_GAS_DEFAULT,
            state_bytes_max: limits::BLOCK_STATE_BYTES_DEFAULT,
            receipt_bytes_max: limits::BLOCK_RECEIPT_BYTES_DEFAULT,
        }
    }
}

/// What a block has used of its [`BlockBudget`] so far.
#[derive(Debug, Default)]
struct BlockUsage {
    /// The block's budget.
    budget: BlockBudget,
    /// The gas limits of the transactions that passed the envelope checks.
    gas_reserved: u64,
    state_bytes: u64,
    state_writes: usize,
    receipt_bytes: u64,
}

/// The last executed block: what the runtime needs to fill the next header (ADR 0002).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTip {
    /// 0 before the first block.
    pub height: u64,
    /// The header hash of the block at `height`: the next header's `previous_hash`
    /// ([`Hash::ZERO`] at height 0).
    pub block_hash: Hash,
    /// Its header's timestamp (0 at height 0).
    pub timestamp_ms: u64,
    /// The Merkle root of its receipts: the next header's `previous_receipts_root`.
    pub receipts_root: Hash,
    /// The state root after it: the next header's `previous_state_root`.
    pub state_root: Hash,
}

/// What executing and committing one block produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutedBlock {
    pub height: u64,
    pub block_hash: Hash,
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// The next header's `previous_receipts_root`.
    pub receipts_root: Hash,
    /// The state root after this block: the next header's `previous_state_root`.
    pub state_root: Hash,
    /// The gas charged to the block's transactions.
    pub gas_used: u64,
    /// How many state entries the block wrote or removed.
    pub state_changes: usize,
}

/// The result of a read-only call: a receipt without a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutcome {
    /// The height of the committed state the query ran against.
    pub height: u64,
    pub status: ReceiptStatus,
    pub gas_used: u64,
    /// Events the call would have emitted; nothing is recorded.
    pub events: Vec<Event>,
    pub return_data: Vec<u8>,
}

/// Executes committed blocks against a store. One per node.
///
/// It owns the store: the VM reads state through shared handles that live only for one
/// call, and `execute_block` takes `&mut self` because `Store::commit_block` needs the
/// store alone. Everything else reads the store through [`Executor::store`]; a runtime
/// that serves queries beside execution puts the executor behind a lock.
pub struct Executor {
    store: Arc<Store>,
    vm: Vm,
    chain_id: ChainId,
    /// The gas schedule queries run by: the one in force after the last executed block.
    query_schedule: Arc<Mutex<GasSchedule>>,
    metering: bool,
    /// The genesis consortium, and the configuration in force now with its trust store.
    governed: Option<Governed>,
    budget: BlockBudget,
    tip: ChainTip,
    /// The tip readers see: set under this lock in the same critical section as the
    /// block's write, so a reader that takes a snapshot under it gets the matching tip.
    published: Arc<Mutex<ChainTip>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Executor")
            .field("chain_id", &self.chain_id)
            .field("tip", &self.tip)
            .field("vm", &self.vm)
            .finish_non_exhaustive()
    }
}

/// The consortium an executor governs by.
#[derive(Debug, Clone)]
struct Governed {
    genesis: Arc<Consortium>,
    /// In force after the last executed block.
    consortium: Arc<Consortium>,
    /// Its CAs and revocations.
    trust: Arc<TrustStore>,
    /// The hash of its validator set, which every block header names (ADR 0021).
    validators_hash: Hash,
}

impl Governed {
    fn new(genesis: Arc<Consortium>, consortium: Arc<Consortium>) -> Self {
        let trust = Arc::new(consortium.trust_store());
        let validators_hash = consortium.validator_set_hash();
        Self { genesis, consortium, trust, validators_hash }
    }
}

/// How the executor answers a `VmError`: a refusal that is the transaction's doing becomes
/// its receipt; anything else is the node's failure.
enum Refusal {
    /// The VM refused to run the transaction for a reason that follows from the
    /// transaction and the state alone; every validator refuses it the same way.
    Transaction {
        reason: String,
    },
    Node(VmError),
}

fn classify(error: VmError, deploying: bool) -> Refusal {
    match error {
        VmError::Deploy(_)
        | VmError::ContractExists { .. }
        | VmError::UnknownContract { .. }
        | VmError::MethodNameTooLong { .. }
        | VmError::InputTooLarge { .. }
        | VmError::GasLimitTooHigh { .. } => Refusal::Transaction { reason: error.to_string() },
        // Validated code that Cranelift still cannot compile fails the same way on every
        // validator running the same release. A module already deployed compiled once, so
        // failing to compile it again is this node's problem.
        VmError::Compile { .. } if deploying => Refusal::Transaction { reason: error.to_string() },
        VmError::Compile { .. }
        | VmError::MissingCode { .. }
        | VmError::State(_)
        | VmError::Artifact { .. }
        | VmError::Engine { .. } => Refusal::Node(error),
    }
}

/// Cuts `reason` to at most `REASON_BYTES_MAX` bytes at a character boundary, so that
/// every receipt decodes again.
fn bounded_reason(mut reason: String) -> String {
    if reason.len() > limits::REASON_BYTES_MAX {
        let mut end = limits::REASON_BYTES_MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

fn receipt_without_run(transaction_hash: Hash, status: ReceiptStatus, gas_used: u64) -> Receipt {
    Receipt { transaction_hash, status, gas_used, events: Vec::new(), return_data: Vec::new() }
}

fn invalid(transaction_hash: Hash, reason: String) -> Receipt {
    receipt_without_run(
        transaction_hash,
        ReceiptStatus::Invalid { reason: bounded_reason(reason) },
        0,
    )
}

/// A receipt from an execution, moving its events and return data instead of copying.
fn receipt_from(transaction_hash: Hash, execution: &mut Execution) -> Receipt {
    let events = std::mem::take(&mut execution.events);
    let return_data = std::mem::take(&mut execution.return_data);
    let mut receipt = execution.receipt(transaction_hash);
    receipt.events = events;
    receipt.return_data = return_data;
    receipt
}

impl Executor {
    /// Opens an executor over `store`, continuing after its last committed block.
    pub fn open(store: Store, options: ExecutorOptions) -> Result<Self, ExecutorError> {
        let ExecutorOptions { chain_id, vm, consortium, budget } = options;
        let metering = vm.metering;
        let vm = Vm::new(vm).map_err(|source| ExecutorError::VmSetup { source })?;
        let tip = load_tip(&store)?;
        if tip.height > 0 {
            let header = stored_block(&store, tip.height)?.header;
            if header.chain_id != chain_id {
                return Err(ExecutorError::WrongChain {
                    height: tip.height,
                    expected: chain_id,
                    found: header.chain_id,
                });
            }
        }
        let governed = match consortium {
            Some(genesis) => {
                let current = governance::current(&store, &genesis)?;
                Some(Governed::new(genesis, current))
            }
            None => None,
        };
        let published = Arc::new(Mutex::new(tip.clone()));
        let schedule = governed.as_ref().map_or(GasSchedule::V1, |g| g.consortium.gas_schedule);
        let query_schedule = Arc::new(Mutex::new(schedule));
        Ok(Self {
            store: Arc::new(store),
            vm,
            chain_id,
            query_schedule,
            metering,
            governed,
            budget,
            tip,
            published,
        })
    }

    /// What the next block may use and the gas schedule it is charged by: the
    /// consortium's in force after the last executed block, or, without a consortium, the
    /// options' budget and schedule version 1.
    fn block_rules(&self) -> (BlockBudget, GasSchedule) {
        match &self.governed {
            Some(governed) => {
                (BlockBudget::of(&governed.consortium.parameters), governed.consortium.gas_schedule)
            }
            None => (self.budget, GasSchedule::V1),
        }
    }

    /// The store, for reads (blocks, receipts, state, the consensus log).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The consortium configuration in force after the last executed block (`None` for an
    /// executor without one).
    pub fn consortium(&self) -> Option<&Arc<Consortium>> {
        self.governed.as_ref().map(|governed| &governed.consortium)
    }

    /// The last executed block, from which the next header takes its parent hash and its
    /// lagging result roots.
    pub fn tip(&self) -> &ChainTip {
        &self.tip
    }

    /// The next nonce the ledger accepts from `sender` (0 for a sender never seen).
    pub fn next_nonce(&self, sender: &PublicKey) -> Result<u64, ExecutorError> {
        Ok(committed_next_nonce(self.store.as_ref(), sender)?)
    }

    /// The code hash of the contract deployed at `address`, if any.
    pub fn contract_code_hash(&self, address: &Address) -> Result<Option<Hash>, ExecutorError> {
        Ok(committed_code_hash(self.store.as_ref(), address)?)
    }

    /// Executes `block`, the next committed block, and commits it with its receipts and
    /// state changes in one synced write. On any error nothing is written and the
    /// executor stays at the block before.
    pub fn execute_block(&mut self, block: &Block) -> Result<ExecutedBlock, ExecutorError> {
        self.check_header(&block.header)?;
        let height = block.header.height;
        let (budget, schedule) = self.block_rules();
        let mut context = BlockContext::new(&block.header, schedule);
        // Block time moves forward: a block stamped at or before its parent (a primary
        // whose clock is behind the previous one's, within the allowed skew) runs 1 ms
        // after its parent.
        context.timestamp_ms = block_time(block.header.timestamp_ms, &self.tip);
        let mut state = BlockState::new(Arc::clone(&self.store) as Arc<dyn StoreRead>);
        if context.timestamp_ms != block.header.timestamp_ms {
            state.set_block_time(height, context.timestamp_ms);
        }
        let mut state = Arc::new(state);
        let mut receipts = Vec::with_capacity(block.transactions.len());
        let mut gas_used = 0u64;
        let mut usage = BlockUsage { budget, ..BlockUsage::default() };
        let mut governance = self.governed.as_ref().map(|governed| {
            let store = Arc::clone(&self.store) as Arc<dyn StoreRead>;
            let rules = governance::Rules { chain: self.chain_id.clone() };
            BlockGovernance::new(store, Arc::clone(&governed.consortium), rules)
        });
        for (position, transaction) in block.transactions.iter().enumerate() {
            let mut step = Step { context: &context, position, usage: &mut usage };
            let receipt =
                self.execute_transaction(&mut state, &mut governance, &mut step, transaction)?;
            gas_used = gas_used.saturating_add(receipt.gas_used);
            receipts.push(receipt);
        }
        let mut state = Arc::into_inner(state)
            .expect("the VM keeps no reference to a state view after a call returns");
        let (governed, governance_changes) = match governance {
            Some(governance) => {
                let at = unix_seconds_of(context.timestamp_ms);
                let check = |state: &BlockState, contract: &Address, code: &[u8]| {
                    self.upgrade_fault(state, contract, code)
                };
                let outcome = governance.finish(height, at, &mut state, &check)?;
                (outcome.consortium, outcome.changes)
            }
            None => (None, Vec::new()),
        };
        let mut state_changes = state.into_state_changes()?;
        state_changes.extend(governance_changes);
        let store = Arc::get_mut(&mut self.store)
            .expect("the executor hands out no clone of its store outside a call");
        // Readers take a snapshot and the tip together under this lock; it is held here
        // only for the write, never for a read.
        let mut published = lock_whole(&self.published);
        let state_root = store.commit_block(BlockCommit {
            block,
            receipts: &receipts,
            state_changes: &state_changes,
        })?;
        let receipts_root = receipts_root(&receipts);
        let block_hash = block.hash();
        self.tip = ChainTip {
            height,
            block_hash,
            timestamp_ms: context.timestamp_ms,
            receipts_root,
            state_root,
        };
        *published = self.tip.clone();
        drop(published);
        if let (Some(consortium), Some(current)) = (governed, self.governed.as_mut()) {
            *lock_whole(&self.query_schedule) = consortium.gas_schedule;
            *current = Governed::new(Arc::clone(&current.genesis), consortium);
        }
        Ok(ExecutedBlock {
            height,
            block_hash,
            receipts,
            receipts_root,
            state_root,
            gas_used,
            state_changes: state_changes.len(),
        })
    }

    /// Runs `method` of `contract` against the committed state, as of the last block, and
    /// commits nothing. Outcomes read as receipts do: a revert, running out of gas or an
    /// unknown contract is a status, never an error.
    pub fn query(
        &self,
        contract: Address,
        method: &str,
        input: &[u8],
        gas_limit: u64,
        caller: Address,
    ) -> Result<QueryOutcome, ExecutorError> {
        let store: Arc<dyn StoreRead> = Arc::clone(&self.store) as Arc<dyn StoreRead>;
        let call = QueryCall { contract, method, input, gas_limit, caller };
        self.queries().run(store, &self.tip, &call)
    }

    /// A read handle for other threads: committed blocks, receipts and state, snapshots and
    /// queries, read beside this executor without waiting for it or making it wait.
    pub fn reader(&self) -> LedgerReader {
        LedgerReader {
            store: self.store.reader(),
            published: Arc::clone(&self.published),
            queries: self.queries(),
            genesis: self.governed.as_ref().map(|governed| Arc::clone(&governed.genesis)),
        }
    }

    fn queries(&self) -> Queries {
        Queries {
            vm: self.vm.clone(),
            schedule: Arc::clone(&self.query_schedule),
            metering: self.metering,
        }
    }

    fn check_header(&self, header: &BlockHeader) -> Result<(), ExecutorError> {
        let expected = self.tip.height + 1;
        if header.height != expected {
            return Err(ExecutorError::HeightOutOfOrder { expected, got: header.height });
        }
        if header.chain_id != self.chain_id {
            return Err(ExecutorError::WrongChain {
                height: header.height,
                expected: self.chain_id.clone(),
                found: header.chain_id.clone(),
            });
        }
        // The validator set the block names is the one in force at its height (ADR 0021);
        // an executor without a consortium (test fixtures) checks no set.
        let validators = self
            .governed
            .as_ref()
            .map_or(header.validators_hash, |governed| governed.validators_hash);
        for (field, expected, found) in [
            ("previous block hash", self.tip.block_hash, header.previous_hash),
            ("previous receipts root", self.tip.receipts_root, header.previous_receipts_root),
            ("previous state root", self.tip.state_root, header.previous_state_root),
            ("validator set", validators, header.validators_hash),
        ] {
            if expected != found {
                return Err(ExecutorError::Diverged {
                    height: header.height,
                    field,
                    expected,
                    found,
                });
            }
        }
        Ok(())
    }

    /// Checks an enrolment at the block's time: the certificate chains to a member CA, is
    /// valid and unrevoked, is not a validator's, and certifies the sender's own key. The
    /// ledger record on success; the `Invalid` reason otherwise.
    fn enrolment(
        &self,
        context: &BlockContext,
        sender: PublicKey,
        certificate_der: &[u8],
    ) -> Result<Vec<u8>, String> {
        let Some(governed) = &self.governed else { return Err(ENROLMENT_NOT_EXECUTED.into()) };
        let trust = &governed.trust;
        let at = unix_seconds_of(context.timestamp_ms);
        let verified = trust
            .verify(certificate_der, at, None)
            .map_err(|error| format!("the enrolment certificate is not acceptable: {error}"))?;
        let info = verified.info;
        let role = match info.role {
            Some(role @ (Role::Client | Role::Admin)) => role,
            Some(other) => {
                return Err(format!(
                    "a {} certificate cannot enrol a transaction signer; use a client or admin certificate",
                    other.as_str()
                ));
            }
            None => return Err("the enrolment certificate names no role".into()),
        };
        if info.public_key != sender {
            return Err(format!(
                "the certificate is for key {}, not the sender {sender}",
                info.public_key
            ));
        }
        let enrolment = ledger::Enrolment {
            organisation: info.organisation,
            role: role.as_str().to_string(),
            serial: info.serial,
            not_after: Some(u64::try_from(info.not_after).unwrap_or(0)),
        };
        Ok(enrolment.to_bytes())
    }

    /// The gas charged when the VM refuses a transaction before running it: the deploy
    /// charge for a deploy (validation is its work), `call_base` for a call.
    fn refusal_gas(
        &self,
        schedule: &GasSchedule,
        deployed_code_bytes: Option<usize>,
        gas_limit: u64,
    ) -> u64 {
        if !self.metering {
            return 0;
        }
        let charge = match deployed_code_bytes {
            Some(bytes) => GasSchedule::cost(schedule.deploy_base, schedule.deploy_per_byte, bytes),
            None => schedule.call_base,
        };
        charge.min(gas_limit)
    }

    /// Why the transaction's envelope is not acceptable, if it is not. Checked before the
    /// VM runs; an unacceptable transaction changes nothing and is charged nothing.
    fn envelope_fault(
        &self,
        state: &BlockState,
        context: &BlockContext,
        transaction: &Transaction,
        usage: &BlockUsage,
    ) -> Result<Option<EnvelopeFault>, StorageError> {
        let unsigned = &transaction.unsigned;
        let sender = unsigned.sender;
        let nonce = unsigned.nonce;
        let bytes = transaction.to_bytes().len();
        if bytes > limits::TRANSACTION_BYTES_MAX {
            return Ok(Some(EnvelopeFault::TooLarge { bytes, max: limits::TRANSACTION_BYTES_MAX }));
        }
        if unsigned.chain_id != self.chain_id {
            return Ok(Some(EnvelopeFault::WrongChain {
                expected: self.chain_id.clone(),
                found: unsigned.chain_id.clone(),
            }));
        }
        let gas_limit = unsigned.gas_limit;
        if gas_limit > limits::TRANSACTION_GAS_MAX {
            return Ok(Some(EnvelopeFault::GasLimitTooHigh {
                gas_limit,
                max: limits::TRANSACTION_GAS_MAX,
            }));
        }
        if usage.gas_reserved.saturating_add(gas_limit) > usage.budget.gas_max {
            return Ok(Some(EnvelopeFault::BlockGasFull {
                gas_limit,
                reserved: usage.gas_reserved,
                max: usage.budget.gas_max,
            }));
        }
        let next_nonce = state.next_nonce(&sender)?;
        if nonce < next_nonce {
            return Ok(Some(EnvelopeFault::StaleNonce { sender, nonce, next_nonce }));
        }
        if nonce > next_nonce {
            return Ok(Some(EnvelopeFault::NonceAhead { sender, nonce, next_nonce }));
        }
        if nonce == u64::MAX {
            return Ok(Some(EnvelopeFault::LastNonce { sender, nonce }));
        }
        // An enrolment is how a signer becomes known; `enrolment` checks its certificate.
        // Every other payload needs a signer the ledger accepts at the block's time. An
        // executor without trust roots (tests, offline tools) enrols nobody and checks no
        // signer.
        // A validator a planned epoch adds announces itself ready with its own key, which
        // no certificate enrols as a transacting identity (ADR 0021).
        let joiner_ready = matches!(
            unsigned.payload,
            Payload::Governance { action: pactum_types::GovernanceAction::Ready }
        ) && self.governed.as_ref().is_some_and(|governed| {
            governed
                .consortium
                .planned
                .as_ref()
                .is_some_and(|planned| planned.waiting.contains(&sender))
        });
        if let Some(governed) = &self.governed
            && !matches!(unsigned.payload, Payload::EnrolIdentity { .. })
            && !joiner_ready
        {
            let record = state.identity(&sender)?;
            let at = context.timestamp_ms / 1000;
            return signer_fault(&sender, record.as_deref(), &governed.trust, at);
        }
        Ok(None)
    }

    fn execute_transaction(
        &self,
        state: &mut Arc<BlockState>,
        governance: &mut Option<BlockGovernance>,
        step: &mut Step<'_>,
        transaction: &Transaction,
    ) -> Result<Receipt, ExecutorError> {
        let Step { context, position, usage } = step;
        let (context, position) = (*context, *position);
        let unsigned = &transaction.unsigned;
        let transaction_hash = transaction.hash();
        if let Some(reason) = self.envelope_fault(state, context, transaction, usage)? {
            return Ok(invalid(transaction_hash, reason.to_string()));
        }
        usage.gas_reserved = usage.gas_reserved.saturating_add(unsigned.gas_limit);
        let caller = account_address(&unsigned.sender);
        let gas_limit = unsigned.gas_limit;
        // The VM holds a shared handle on the block state for the length of one call.
        let view = || Arc::clone(state) as Arc<dyn StateView>;
        let (outcome, deployed_code_bytes) = match &unsigned.payload {
            Payload::DeployContract { code, init_input } => {
                if let Some(reason) =
                    self.deploy_refusal(state, governance.as_ref(), &unsigned.sender, code)?
                {
                    let state = Arc::get_mut(state)
                        .expect("the VM keeps no reference to a state view after a call returns");
                    state.set_next_nonce(unsigned.sender, unsigned.nonce + 1);
                    return Ok(receipt_without_run(
                        transaction_hash,
                        ReceiptStatus::Reverted { reason: bounded_reason(reason) },
                        self.refusal_gas(&context.gas_schedule, Some(code.len()), gas_limit),
                    ));
                }
                let request = DeployRequest {
                    deployer: caller,
                    nonce: unsigned.nonce,
                    code,
                    init_input,
                    gas_limit,
                };
                (self.vm.deploy(view(), context, &request), Some(code.len()))
            }
            Payload::CallContract { contract, method, input } => {
                let request = CallRequest { caller, contract: *contract, method, input, gas_limit };
                (self.vm.call(view(), context, &request), None)
            }
            Payload::Governance { action } => {
                let Some(governance) = governance.as_mut() else {
                    return Ok(invalid(transaction_hash, GOVERNANCE_NOT_EXECUTED.into()));
                };
                let state = Arc::get_mut(state)
                    .expect("the VM keeps no reference to a state view after a call returns");
                return self.govern(state, governance, context, transaction, action);
            }
            Payload::EnrolIdentity { certificate_der } => {
                let record = match self.enrolment(context, unsigned.sender, certificate_der) {
                    Ok(record) => record,
                    Err(reason) => return Ok(invalid(transaction_hash, reason)),
                };
                let state = Arc::get_mut(state)
                    .expect("the VM keeps no reference to a state view after a call returns");
                state.set_identity(unsigned.sender, record);
                state.set_next_nonce(unsigned.sender, unsigned.nonce + 1);
                let gas_used =
                    if self.metering { context.gas_schedule.call_base.min(gas_limit) } else { 0 };
                return Ok(receipt_without_run(transaction_hash, ReceiptStatus::Success, gas_used));
            }
        };
        let state = Arc::get_mut(state)
            .expect("the VM keeps no reference to a state view after a call returns");
        let receipt = match outcome {
            Ok(mut execution) => {
                let receipt = receipt_from(transaction_hash, &mut execution);
                let state_bytes = write_set_bytes(&execution.write_set);
                let state_writes =
                    execution.write_set.storage.len() + execution.write_set.contracts.len();
                let receipt_bytes = receipt_payload_bytes(&receipt);
                match self.over_budget(usage, state_bytes, state_writes, receipt_bytes) {
                    Some(reason) => receipt_without_run(
                        transaction_hash,
                        ReceiptStatus::Reverted { reason: bounded_reason(reason) },
                        receipt.gas_used,
                    ),
                    None => {
                        usage.state_bytes += state_bytes;
                        usage.state_writes += state_writes;
                        usage.receipt_bytes += receipt_bytes;
                        // Only a successful execution carries writes; the VM discarded the
                        // rest.
                        state.apply(std::mem::take(&mut execution.write_set));
                        receipt
                    }
                }
            }
            Err(error) => match classify(error, deployed_code_bytes.is_some()) {
                Refusal::Transaction { reason } => receipt_without_run(
                    transaction_hash,
                    ReceiptStatus::Reverted { reason: bounded_reason(reason) },
                    self.refusal_gas(&context.gas_schedule, deployed_code_bytes, gas_limit),
                ),
                Refusal::Node(source) => {
                    return Err(ExecutorError::Vm {
                        height: context.height,
                        position,
                        transaction: transaction_hash,
                        source,
                    });
                }
            },
        };
        // Every transaction that passed the envelope checks used its nonce.
        state.set_next_nonce(unsigned.sender, unsigned.nonce + 1);
        Ok(receipt)
    }
}

/// Where in its block a transaction runs.
struct Step<'a> {
    context: &'a BlockContext,
    position: usize,
    usage: &'a mut BlockUsage,
}

impl Executor {
    /// Runs a governance action from an enrolled signer (the envelope checks passed): its
    /// receipt is a success with the governance events, or reverted with the reason. It
    /// uses its nonce and is charged `call_base` either way.
    fn govern(
        &self,
        state: &mut BlockState,
        governance: &mut BlockGovernance,
        context: &BlockContext,
        transaction: &Transaction,
        action: &pactum_types::GovernanceAction,
    ) -> Result<Receipt, ExecutorError> {
        let unsigned = &transaction.unsigned;
        let transaction_hash = transaction.hash();
        let outcome = if matches!(action, pactum_types::GovernanceAction::Ready) {
            governance.ready(unsigned.sender, context.height)
        } else {
            let record =
                state.identity(&unsigned.sender)?.ok_or_else(|| ExecutorError::Missing {
                    what: format!("the enrolment of {} (checked just before)", unsigned.sender),
                })?;
            let enrolment =
                ledger::Enrolment::from_bytes(&record).map_err(|error| StorageError::Corrupt {
                    what: format!("the enrolment of {}", unsigned.sender),
                    detail: error.to_string(),
                })?;
            let check = |state: &BlockState, contract: &Address, code: &[u8]| {
                self.upgrade_fault(state, contract, code)
            };
            governance.execute(
                action,
                unsigned.sender,
                &enrolment,
                transaction_hash,
                context.height,
                unix_seconds_of(context.timestamp_ms),
                state,
                &check,
            )?
        };
        state.set_next_nonce(unsigned.sender, unsigned.nonce + 1);
        let gas_used =
            if self.metering { context.gas_schedule.call_base.min(unsigned.gas_limit) } else { 0 };
        let receipt = match outcome {
            Ok(events) => {
                let mut receipt =
                    receipt_without_run(transaction_hash, ReceiptStatus::Success, gas_used);
                receipt.events = events;
                receipt
            }
            Err(error) => receipt_without_run(
                transaction_hash,
                ReceiptStatus::Reverted { reason: bounded_reason(error.to_string()) },
                gas_used,
            ),
        };
        Ok(receipt)
    }

    /// Why `code` cannot replace the code of the contract at `contract` now, if it cannot.
    fn upgrade_fault(
        &self,
        state: &BlockState,
        contract: &Address,
        code: &[u8],
    ) -> Result<Option<String>, StorageError> {
        if state.code_hash_of(contract)?.is_none() {
            return Ok(Some(format!("no contract is deployed at {contract}")));
        }
        Ok(self.vm.validate(code).err().map(|error| format!("the new code is refused: {error}")))
    }

    /// Why the block's deploy policy refuses `sender`'s deploy of `code`, if it does.
    fn deploy_refusal(
        &self,
        state: &BlockState,
        governance: Option<&BlockGovernance>,
        sender: &PublicKey,
        code: &[u8],
    ) -> Result<Option<String>, StorageError> {
        let Some(governance) = governance else { return Ok(None) };
        let organisation = match state.identity(sender)? {
            Some(record) => {
                ledger::Enrolment::from_bytes(&record)
                    .map_err(|error| StorageError::Corrupt {
                        what: format!("the enrolment of {sender}"),
                        detail: error.to_string(),
                    })?
                    .organisation
            }
            None => String::new(),
        };
        let code_hash = pactum_types::hash::sha3_256(code);
        Ok(governance.consortium().deploy_refusal(&organisation, &code_hash))
    }

    /// Why a transaction's writes or receipt do not fit in what is left of the block's
    /// budget, if they do not.
    fn over_budget(
        &self,
        usage: &BlockUsage,
        state_bytes: u64,
        state_writes: usize,
        receipt_bytes: u64,
    ) -> Option<String> {
        let budget = &usage.budget;
        if usage.state_bytes.saturating_add(state_bytes) > budget.state_bytes_max {
            return Some(format!(
                "the block's state budget is used up: this transaction writes {state_bytes} bytes, {} of {} are taken; send it again",
                usage.state_bytes, budget.state_bytes_max
            ));
        }
        if usage.state_writes + state_writes > limits::BLOCK_STATE_CHANGES_MAX {
            return Some(format!(
                "the block's state budget is used up: this transaction makes {state_writes} writes, {} of {} are taken; send it again",
                usage.state_writes,
                limits::BLOCK_STATE_CHANGES_MAX
            ));
        }
        if usage.receipt_bytes.saturating_add(receipt_bytes) > budget.receipt_bytes_max {
            return Some(format!(
                "the block's receipt budget is used up: this receipt holds {receipt_bytes} bytes, {} of {} are taken; send it again",
                usage.receipt_bytes, budget.receipt_bytes_max
            ));
        }
        None
    }
}

/// Unix seconds of a block time in milliseconds.
fn unix_seconds_of(timestamp_ms: u64) -> i64 {
    i64::try_from(timestamp_ms / 1000).unwrap_or(i64::MAX)
}

/// The time a block runs at: its header's, or 1 ms after its parent's if that is not
/// earlier.
fn block_time(header_ms: u64, parent: &ChainTip) -> u64 {
    if parent.height == 0 {
        header_ms
    } else {
        header_ms.max(parent.timestamp_ms.saturating_add(1))
    }
}

/// The bytes a write set adds to the state: keys, values and deployed code.
fn write_set_bytes(write_set: &pactum_vm::WriteSet) -> u64 {
    let storage = write_set.storage.iter().map(|((_, key), value)| {
        key.len() as u64 + value.as_ref().map_or(0, |value| value.len() as u64)
    });
    let code = write_set.contracts.values().map(|contract| contract.code.len() as u64);
    storage.chain(code).sum()
}

/// One read-only call.
struct QueryCall<'a> {
    contract: Address,
    method: &'a str,
    input: &'a [u8],
    gas_limit: u64,
    caller: Address,
}

/// What a query needs besides the state: the VM and the charge for a refused call.
#[derive(Debug, Clone)]
struct Queries {
    vm: Vm,
    /// The gas schedule in force after the last executed block: what a query is charged,
    /// and `call_base` when the VM refuses to run it. Updated just after the tip, so a
    /// query racing a block that changes it may run by either schedule.
    schedule: Arc<Mutex<GasSchedule>>,
    metering: bool,
}

impl Queries {
    /// Runs `call` against `store` as of `tip`. Outcomes read as receipts do: a revert,
    /// running out of gas or an unknown contract is a status, never an error.
    fn run(
        &self,
        store: Arc<dyn StoreRead>,
        tip: &ChainTip,
        call: &QueryCall<'_>,
    ) -> Result<QueryOutcome, ExecutorError> {
        let height = tip.height;
        let gas_limit = call.gas_limit;
        let finish = |status, gas_used, events, return_data| QueryOutcome {
            height,
            status,
            gas_used,
            events,
            return_data,
        };
        if gas_limit > limits::TRANSACTION_GAS_MAX {
            let reason = format!(
                "gas limit {gas_limit} exceeds the maximum {}",
                limits::TRANSACTION_GAS_MAX
            );
            return Ok(finish(ReceiptStatus::Invalid { reason }, 0, Vec::new(), Vec::new()));
        }
        let gas_schedule = *lock_whole(&self.schedule);
        let context = BlockContext { height, timestamp_ms: tip.timestamp_ms, gas_schedule };
        let refusal_gas = if self.metering { gas_schedule.call_base } else { 0 };
        let view: Arc<dyn StateView> = Arc::new(BlockState::new(store));
        let request = CallRequest {
            caller: call.caller,
            contract: call.contract,
            method: call.method,
            input: call.input,
            gas_limit,
        };
        match self.vm.call(view, &context, &request) {
            Ok(mut execution) => {
                let receipt = receipt_from(Hash::ZERO, &mut execution);
                Ok(finish(receipt.status, receipt.gas_used, receipt.events, receipt.return_data))
            }
            Err(error) => match classify(error, false) {
                Refusal::Transaction { reason } => Ok(finish(
                    ReceiptStatus::Reverted { reason: bounded_reason(reason) },
                    refusal_gas.min(gas_limit),
                    Vec::new(),
                    Vec::new(),
                )),
                Refusal::Node(source) => Err(ExecutorError::Query { source }),
            },
        }
    }
}

/// A read handle on the ledger for threads other than the executor's (the REST API, peers
/// asking for blocks). Its reads never take the executor's lock: a long read never delays
/// a block, and a block never delays a read. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LedgerReader {
    store: StoreReader,
    published: Arc<Mutex<ChainTip>>,
    queries: Queries,
    genesis: Option<Arc<Consortium>>,
}

impl LedgerReader {
    /// Reads of the live store (each read sees the latest committed block).
    pub fn store(&self) -> &StoreReader {
        &self.store
    }

    /// The ledger exactly as it stands after its last committed block, however many blocks
    /// commit while the snapshot is read.
    pub fn snapshot(&self) -> LedgerSnapshot {
        let published = lock_whole(&self.published);
        let store = Arc::new(self.store.snapshot());
        let tip = published.clone();
        drop(published);
        LedgerSnapshot { store, tip, queries: self.queries.clone(), genesis: self.genesis.clone() }
    }

    /// The last committed block.
    pub fn tip(&self) -> ChainTip {
        lock_whole(&self.published).clone()
    }
}

/// The ledger as of one committed block (from [`LedgerReader::snapshot`]).
#[derive(Debug)]
pub struct LedgerSnapshot {
    store: Arc<StoreSnapshot>,
    tip: ChainTip,
    queries: Queries,
    genesis: Option<Arc<Consortium>>,
}

impl LedgerSnapshot {
    /// The block this snapshot stands at.
    pub fn tip(&self) -> &ChainTip {
        &self.tip
    }

    pub fn store(&self) -> &StoreSnapshot {
        &self.store
    }

    /// The next nonce the ledger accepts from `sender` (0 for a sender never seen).
    pub fn next_nonce(&self, sender: &PublicKey) -> Result<u64, ExecutorError> {
        Ok(committed_next_nonce(self.store.as_ref(), sender)?)
    }

    /// The code hash of the contract deployed at `address`, if any.
    pub fn contract_code_hash(&self, address: &Address) -> Result<Option<Hash>, ExecutorError> {
        Ok(committed_code_hash(self.store.as_ref(), address)?)
    }

    /// The consortium configuration in force after this snapshot's block (`None` on a
    /// ledger without one).
    pub fn consortium(&self) -> Result<Option<Arc<Consortium>>, ExecutorError> {
        let Some(genesis) = &self.genesis else { return Ok(None) };
        Ok(Some(governance::current(self.store.as_ref(), genesis)?))
    }

    /// The consortium configuration in force for block `height` (genesis for block 1).
    pub fn consortium_at(&self, height: u64) -> Result<Option<Arc<Consortium>>, ExecutorError> {
        let Some(genesis) = &self.genesis else { return Ok(None) };
        Ok(Some(governance::at_height(self.store.as_ref(), genesis, height)?))
    }

    pub fn proposal(&self, id: &Hash) -> Result<Option<Proposal>, ExecutorError> {
        Ok(governance::proposal(self.store.as_ref(), id)?)
    }

    /// Up to `limit` proposals in id order, after `after` when given.
    pub fn proposals(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<Proposal>, ExecutorError> {
        Ok(governance::proposals(self.store.as_ref(), after, limit)?)
    }

    /// Runs `method` of `contract` against this snapshot and commits nothing (see
    /// [`Executor::query`]).
    pub fn query(
        &self,
        contract: Address,
        method: &str,
        input: &[u8],
        gas_limit: u64,
        caller: Address,
    ) -> Result<QueryOutcome, ExecutorError> {
        let store: Arc<dyn StoreRead> = Arc::clone(&self.store) as Arc<dyn StoreRead>;
        let call = QueryCall { contract, method, input, gas_limit, caller };
        self.queries.run(store, &self.tip, &call)
    }
}

/// Locks a value that is only ever replaced whole (the tip, the gas schedule): a panicking
/// holder cannot leave half of one.
fn lock_whole<T>(value: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    value.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The bytes of a receipt's events and return data.
fn receipt_payload_bytes(receipt: &Receipt) -> u64 {
    let events =
        receipt.events.iter().map(|event| event.topic.len() as u64 + event.data.len() as u64);
    events.sum::<u64>() + receipt.return_data.len() as u64
}

fn stored_block(store: &dyn StoreRead, height: u64) -> Result<Block, ExecutorError> {
    store.block(height)?.ok_or_else(|| ExecutorError::Missing { what: format!("block {height}") })
}

/// The tip of the chain in `store`.
fn load_tip(store: &dyn StoreRead) -> Result<ChainTip, ExecutorError> {
    let height = store.committed_height()?;
    if height == 0 {
        return Ok(ChainTip {
            height: 0,
            block_hash: Hash::ZERO,
            timestamp_ms: 0,
            receipts_root: receipts_root(&[]),
            state_root: store.committed_state_root()?,
        });
    }
    let block = stored_block(store, height)?;
    let outcome = store
        .block_outcome(height)?
        .ok_or_else(|| ExecutorError::Missing { what: format!("receipts of block {height}") })?;
    // The header's time, unless the block ran later than it (ADR 0016).
    let timestamp_ms = match store.state_get(StateSpace::Ledger, ledger::BLOCK_TIME_KEY)? {
        Some(bytes) => {
            let array: [u8; 16] =
                bytes.as_slice().try_into().map_err(|_| StorageError::Corrupt {
                    what: "block time".into(),
                    detail: format!("expected 16 bytes, found {}", bytes.len()),
                })?;
            let (at, time) = array.split_at(8);
            let at = u64::from_be_bytes(at.try_into().expect("8 bytes"));
            let time = u64::from_be_bytes(time.try_into().expect("8 bytes"));
            if at == height { time } else { block.header.timestamp_ms }
        }
        None => block.header.timestamp_ms,
    };
    Ok(ChainTip {
        height,
        block_hash: block.hash(),
        timestamp_ms,
        receipts_root: receipts_root(&outcome.receipts),
        state_root: outcome.state_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_at_a_character_boundary_within_the_limit() {
        let long = "é".repeat(limits::REASON_BYTES_MAX);
        let cut = bounded_reason(long);
        assert!(cut.len() <= limits::REASON_BYTES_MAX);
        assert!(cut.len() >= limits::REASON_BYTES_MAX - 1);
        assert!(cut.chars().all(|character| character == 'é'));
        assert_eq!(bounded_reason("short".into()), "short");
    }

    #[test]
    fn enrolment_records_round_trip_and_refuse_trailing_bytes() {
        let enrolment = ledger::Enrolment {
            organisation: "Member 1".into(),
            role: "client".into(),
            serial: vec![7, 8, 9],
            not_after: Some(1_900_000_000),
        };
        // A record of the first version, without the expiry, still reads.
        let first = ledger::Enrolment { not_after: None, ..enrolment.clone() };
        assert_eq!(ledger::Enrolment::from_bytes(&first.to_bytes()).unwrap(), first);
        let bytes = enrolment.to_bytes();
        assert_eq!(ledger::Enrolment::from_bytes(&bytes).unwrap(), enrolment);
        assert!(ledger::Enrolment::from_bytes(&[bytes.as_slice(), &[0]].concat()).is_err());
        assert!(ledger::Enrolment::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn node_failures_are_never_receipts() {
        let state = VmError::State(pactum_vm::StateError { reason: "disk".into() });
        assert!(matches!(classify(state, false), Refusal::Node(_)));
        let engine = VmError::Engine { reason: "pool".into() };
        assert!(matches!(classify(engine, true), Refusal::Node(_)));
        let compile = VmError::Compile { reason: "x".into() };
        assert!(matches!(classify(compile.clone(), false), Refusal::Node(_)));
        assert!(matches!(classify(compile, true), Refusal::Transaction { .. }));
        let unknown = VmError::UnknownContract { address: Address([3; 32]) };
        assert!(matches!(classify(unknown, false), Refusal::Transaction { .. }));
    }
}
