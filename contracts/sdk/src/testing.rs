//! The native test harness: a mock chain that runs contracts in process, with several
//! accounts and contracts, control of block height and time, and a gas report.
//!
//! Contracts run through the very entry points the `contract!` macro generates for the
//! VM, against an in-process implementation of the host ABI: storage namespaced per
//! contract, events, reverts (which discard the call's writes and events), nested calls
//! with the VM's reentrancy and depth rules. Scenarios written against the [`Chain`]
//! trait run unchanged here and, through the VM crate's implementation of the trait, in
//! the real VM against the wasm build.
//!
//! Gas here counts host-call charges only, by the VM's gas schedule (`GasSchedule::V1`);
//! the instructions' own fuel exists only in the VM, whose receipts give the full figure.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::vec::Vec;

use pactum_types::gas::GasSchedule;

use crate::Address;
use crate::codec::{Decode, Encode};

/// A contract's entry points, as the `contract!` macro defines them (`NATIVE`).
#[derive(Debug, Clone, Copy)]
pub struct NativeContract {
    pub name: &'static str,
    pub init: fn(),
    pub call: fn(),
}

/// An event a contract emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub contract: Address,
    pub topic: String,
    pub data: Vec<u8>,
}

impl Event {
    /// The event's data decoded as `T`; panics (failing the test) if it does not decode.
    pub fn decode<T: Decode>(&self) -> T {
        T::decode(&self.data).unwrap_or_else(|error| panic!("event `{}`: {error}", self.topic))
    }
}

/// How a deploy or call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Success,
    Reverted(String),
    OutOfGas,
    Trapped(String),
}

/// The outcome of a deploy or call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub return_data: Vec<u8>,
    /// Events of a successful call (none otherwise).
    pub events: Vec<Event>,
    /// Host-call gas in the mock chain; all gas (fuel included) in the VM.
    pub gas_used: u64,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        self.status == Status::Success
    }

    /// The return data decoded as `R`; panics (failing the test) unless the call succeeded.
    #[track_caller]
    pub fn returned<R: Decode>(&self) -> R {
        assert_eq!(self.status, Status::Success, "the call did not succeed");
        R::decode(&self.return_data).expect("return data decodes")
    }

    /// Panics (failing the test) unless the call succeeded.
    #[track_caller]
    pub fn expect_success(&self) -> &Self {
        assert_eq!(self.status, Status::Success, "the call did not succeed");
        self
    }

    /// The revert reason, if the call reverted.
    pub fn revert_reason(&self) -> Option<&str> {
        match &self.status {
            Status::Reverted(reason) => Some(reason),
            _ => None,
        }
    }

    /// The topics of the emitted events, in order.
    pub fn topics(&self) -> Vec<&str> {
        self.events.iter().map(|event| event.topic.as_str()).collect()
    }
}

/// A chain to run contract scenarios on: the mock chain here, or the real VM.
pub trait Chain {
    /// Deploys the contract registered as `contract` with the encoded init arguments.
    fn deploy_raw(
        &mut self,
        deployer: Address,
        contract: &str,
        init_input: Vec<u8>,
    ) -> (Address, Outcome);

    fn call_raw(
        &mut self,
        caller: Address,
        contract: Address,
        method: &str,
        input: Vec<u8>,
    ) -> Outcome;

    /// Sets the height and timestamp of the blocks that following calls run in.
    fn set_block(&mut self, height: u64, timestamp_ms: u64);

    /// Deploys and asserts success.
    #[track_caller]
    fn deploy(&mut self, deployer: Address, contract: &str, arguments: &impl Encode) -> Address
    where
        Self: Sized,
    {
        let (address, outcome) = self.deploy_raw(deployer, contract, arguments.encode());
        assert_eq!(outcome.status, Status::Success, "deploying {contract}");
        address
    }

    fn call(
        &mut self,
        caller: Address,
        contract: Address,
        method: &str,
        arguments: &impl Encode,
    ) -> Outcome
    where
        Self: Sized,
    {
        self.call_raw(caller, contract, method, arguments.encode())
    }
}

/// A named account's address: SHA3-256 of the name, so scenarios read `account("alice")`.
pub fn account(name: &str) -> Address {
    Address(pactum_types::hash::sha3_256(name.as_bytes()).0)
}

/// The address the VM gives the contract `deployer` deploys with `nonce` (the same
/// derivation as `pactum_vm::contract_address`).
pub fn contract_address(deployer: &Address, nonce: u64) -> Address {
    Address(
        pactum_types::hash::sha3_256_parts(&[
            b"pactum.contract.v1\0",
            &deployer.0,
            &nonce.to_be_bytes(),
        ])
        .0,
    )
}

/// One line of the gas report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GasLine {
    pub calls: u64,
    pub total: u64,
    pub max: u64,
}

/// The in-process mock chain.
#[derive(Debug, Default)]
pub struct MockChain {
    registry: BTreeMap<String, NativeContract>,
    storage: BTreeMap<(Address, Vec<u8>), Vec<u8>>,
    contracts: BTreeMap<Address, NativeContract>,
    nonces: BTreeMap<Address, u64>,
    height: u64,
    timestamp_ms: u64,
    log: Vec<Event>,
    gas: BTreeMap<(String, String), GasLine>,
}

impl MockChain {
    /// A chain at height 1, time 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self { height: 1, timestamp_ms: 1_767_225_600_000, ..Self::default() }
    }

    /// Makes `contract` deployable under `name`.
    pub fn register(&mut self, name: &str, contract: NativeContract) -> &mut Self {
        self.registry.insert(name.to_string(), contract);
        self
    }

    /// Advances the chain by `blocks` blocks and `milliseconds` of block time.
    pub fn advance(&mut self, blocks: u64, milliseconds: u64) {
        self.height += blocks;
        self.timestamp_ms += milliseconds;
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    /// Every event of every successful call so far, in order.
    pub fn event_log(&self) -> &[Event] {
        &self.log
    }

    /// The raw value under `key` in `contract`'s storage.
    pub fn storage(&self, contract: &Address, key: &[u8]) -> Option<&[u8]> {
        self.storage.get(&(*contract, key.to_vec())).map(Vec::as_slice)
    }

    /// Host-call gas per (contract, method): calls, total, maximum.
    pub fn gas_lines(&self) -> &BTreeMap<(String, String), GasLine> {
        &self.gas
    }

    /// The gas report as a table, for printing from a test.
    pub fn gas_report(&self) -> String {
        let mut report = String::from("contract method calls host_gas_mean host_gas_max\n");
        for ((contract, method), line) in &self.gas {
            report.push_str(&std::format!(
                "{contract} {method} {} {} {}\n",
                line.calls,
                line.total / line.calls.max(1),
                line.max
            ));
        }
        report
    }

    fn run(&mut self, entry: fn(), frame: Frame, name: &str, method: &str) -> Outcome {
        let context = Context {
            storage: std::mem::take(&mut self.storage),
            contracts: self.contracts.clone(),
            frames: std::vec![frame],
            events: Vec::new(),
            call_result: Vec::new(),
            height: self.height,
            timestamp_ms: self.timestamp_ms,
            // Entering a contract costs `call_base` in the VM too.
            host_gas: S.call_base,
        };
        let before = context.storage.clone();
        CONTEXT.with(|cell| *cell.borrow_mut() = Some(context));
        let status = run_entry(entry);
        let context =
            CONTEXT.with(|cell| cell.borrow_mut().take()).expect("the harness context is set");
        let line = self.gas.entry((name.to_string(), method.to_string())).or_default();
        line.calls += 1;
        line.total += context.host_gas;
        line.max = line.max.max(context.host_gas);
        let mut frames = context.frames;
        if status == Status::Success {
            self.storage = context.storage;
            self.log.extend(context.events.iter().cloned());
            Outcome {
                status,
                return_data: frames.pop().map(|frame| frame.return_data).unwrap_or_default(),
                events: context.events,
                gas_used: context.host_gas,
            }
        } else {
            self.storage = before;
            Outcome {
                status,
                return_data: Vec::new(),
                events: Vec::new(),
                gas_used: context.host_gas,
            }
        }
    }
}

impl Chain for MockChain {
    fn deploy_raw(
        &mut self,
        deployer: Address,
        contract: &str,
        init_input: Vec<u8>,
    ) -> (Address, Outcome) {
        let native = *self
            .registry
            .get(contract)
            .unwrap_or_else(|| panic!("no contract registered as `{contract}`"));
        let nonce = self.nonces.entry(deployer).or_insert(0);
        let address = contract_address(&deployer, *nonce);
        *nonce += 1;
        self.contracts.insert(address, native);
        let frame = Frame::new(address, deployer, "init", init_input);
        let outcome = self.run(native.init, frame, native.name, "init");
        if !outcome.is_success() {
            self.contracts.remove(&address);
        }
        (address, outcome)
    }

    fn call_raw(
        &mut self,
        caller: Address,
        contract: Address,
        method: &str,
        input: Vec<u8>,
    ) -> Outcome {
        let native =
            *self.contracts.get(&contract).unwrap_or_else(|| panic!("no contract at {contract:?}"));
        let frame = Frame::new(contract, caller, method, input);
        self.run(native.call, frame, native.name, method)
    }

    fn set_block(&mut self, height: u64, timestamp_ms: u64) {
        self.height = height;
        self.timestamp_ms = timestamp_ms;
    }
}

struct Frame {
    contract: Address,
    caller: Address,
    method: String,
    input: Vec<u8>,
    return_data: Vec<u8>,
}

impl Frame {
    fn new(contract: Address, caller: Address, method: &str, input: Vec<u8>) -> Self {
        Self { contract, caller, method: method.to_string(), input, return_data: Vec::new() }
    }
}

struct Context {
    storage: BTreeMap<(Address, Vec<u8>), Vec<u8>>,
    contracts: BTreeMap<Address, NativeContract>,
    frames: Vec<Frame>,
    events: Vec<Event>,
    call_result: Vec<u8>,
    height: u64,
    timestamp_ms: u64,
    host_gas: u64,
}

std::thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// The panic payload of a revert, so the harness tells it from a real panic.
struct RevertSignal(String);

fn run_entry(entry: fn()) -> Status {
    static QUIET_REVERTS: std::sync::Once = std::sync::Once::new();
    QUIET_REVERTS.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(std::boxed::Box::new(move |info| {
            if info.payload().downcast_ref::<RevertSignal>().is_none() {
                previous(info);
            }
        }));
    });
    match std::panic::catch_unwind(entry) {
        Ok(()) => Status::Success,
        Err(payload) => {
            if let Some(RevertSignal(reason)) = payload.downcast_ref::<RevertSignal>() {
                Status::Reverted(reason.clone())
            } else if let Some(message) = payload.downcast_ref::<&str>() {
                Status::Trapped(std::format!("panic: {message}"))
            } else if let Some(message) = payload.downcast_ref::<String>() {
                Status::Trapped(std::format!("panic: {message}"))
            } else {
                Status::Trapped(String::from("panic"))
            }
        }
    }
}

fn with<R>(body: impl FnOnce(&mut Context) -> R) -> R {
    CONTEXT.with(|cell| {
        let mut borrowed = cell.borrow_mut();
        let context = borrowed.as_mut().expect("host function called outside a harness call");
        body(context)
    })
}

fn charge(gas: u64) {
    with(|context| context.host_gas = context.host_gas.saturating_add(gas));
}

const S: GasSchedule = GasSchedule::V1;

/// The host ABI in process; `crate::host` re-exports these on native builds.
pub mod host {
    use super::*;

    fn frame<R>(body: impl FnOnce(&mut Frame) -> R) -> R {
        with(|context| body(context.frames.last_mut().expect("a frame is on the stack")))
    }

    pub(crate) fn input() -> Vec<u8> {
        let input = frame(|frame| frame.input.clone());
        charge(2 * S.host_call_base + GasSchedule::cost(0, S.memory_copy_per_byte, input.len()));
        input
    }

    pub(crate) fn method() -> String {
        let method = frame(|frame| frame.method.clone());
        charge(2 * S.host_call_base + GasSchedule::cost(0, S.memory_copy_per_byte, method.len()));
        method
    }

    pub(crate) fn return_set(data: &[u8]) {
        charge(GasSchedule::cost(S.host_call_base, S.memory_copy_per_byte, data.len()));
        frame(|frame| frame.return_data = data.to_vec());
    }

    pub(crate) fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
        charge(GasSchedule::cost(
            S.host_call_base + S.storage_read_base,
            S.storage_read_per_byte,
            key.len(),
        ));
        let value = with(|context| {
            let contract = context.frames.last().expect("a frame is on the stack").contract;
            context.storage.get(&(contract, key.to_vec())).cloned()
        })?;
        charge(
            GasSchedule::cost(0, S.storage_read_per_byte, value.len())
                + GasSchedule::cost(0, S.memory_copy_per_byte, value.len()),
        );
        Some(value)
    }

    pub(crate) fn storage_set(key: &[u8], value: &[u8]) {
        charge(GasSchedule::cost(
            S.host_call_base + S.storage_write_base,
            S.storage_write_per_byte,
            key.len() + value.len(),
        ));
        with(|context| {
            let contract = context.frames.last().expect("a frame is on the stack").contract;
            context.storage.insert((contract, key.to_vec()), value.to_vec());
        });
    }

    pub(crate) fn storage_remove(key: &[u8]) {
        charge(GasSchedule::cost(
            S.host_call_base + S.storage_remove_base,
            S.storage_remove_per_byte,
            key.len(),
        ));
        with(|context| {
            let contract = context.frames.last().expect("a frame is on the stack").contract;
            context.storage.remove(&(contract, key.to_vec()));
        });
    }

    pub(crate) fn caller() -> [u8; 32] {
        charge(GasSchedule::cost(S.host_call_base, S.memory_copy_per_byte, 32));
        frame(|frame| frame.caller.0)
    }

    pub(crate) fn self_address() -> [u8; 32] {
        charge(GasSchedule::cost(S.host_call_base, S.memory_copy_per_byte, 32));
        frame(|frame| frame.contract.0)
    }

    pub(crate) fn block_height() -> u64 {
        charge(S.host_call_base);
        with(|context| context.height)
    }

    pub(crate) fn block_timestamp_ms() -> u64 {
        charge(S.host_call_base);
        with(|context| context.timestamp_ms)
    }

    pub(crate) fn event_emit(topic: &str, data: &[u8]) {
        // The VM's limits (pactum_types::limits), checked the same way here.
        if topic.len() > pactum_types::limits::EVENT_TOPIC_BYTES_MAX
            || data.len() > pactum_types::limits::EVENT_DATA_BYTES_MAX
            || with(|context| context.events.len())
                >= pactum_types::limits::EVENTS_PER_TRANSACTION_MAX
        {
            panic!("event limit exceeded");
        }
        charge(GasSchedule::cost(
            S.host_call_base + S.event_base,
            S.event_per_byte,
            topic.len() + data.len(),
        ));
        with(|context| {
            let contract = context.frames.last().expect("a frame is on the stack").contract;
            context.events.push(Event { contract, topic: topic.to_string(), data: data.to_vec() });
        });
    }

    pub(crate) fn revert(reason: &str) -> ! {
        // Like the VM: a reason is cut to its first REASON_BYTES_MAX bytes.
        let mut end = reason.len().min(pactum_types::limits::REASON_BYTES_MAX);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        charge(GasSchedule::cost(S.host_call_base, S.memory_copy_per_byte, end));
        std::panic::panic_any(RevertSignal(reason[..end].to_string()))
    }

    pub(crate) fn sha3_256(data: &[u8]) -> [u8; 32] {
        charge(GasSchedule::cost(S.host_call_base + S.sha3_base, S.sha3_per_byte, data.len()));
        pactum_types::hash::sha3_256(data).0
    }

    pub(crate) fn ed25519_verify(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        charge(GasSchedule::cost(
            S.host_call_base + S.ed25519_verify_base,
            S.ed25519_verify_per_byte,
            message.len(),
        ));
        pactum_types::PublicKey(*key)
            .verify(&[], message, &pactum_types::Signature(*signature))
            .is_ok()
    }

    pub(crate) fn call(
        address: &[u8; 32],
        method: &str,
        input: &[u8],
        _gas_limit: u64,
    ) -> (i32, Vec<u8>) {
        charge(GasSchedule::cost(
            S.host_call_base + S.call_base,
            S.memory_copy_per_byte,
            32 + method.len() + input.len(),
        ));
        let address = Address(*address);
        let refused = |reason: &str| {
            let result = reason.as_bytes().to_vec();
            with(|context| context.call_result = result.clone());
            (crate::host::CALL_REFUSED, result)
        };
        let (depth, reentrant, callee) = with(|context| {
            (
                context.frames.len(),
                context.frames.iter().any(|frame| frame.contract == address),
                context.contracts.get(&address).copied(),
            )
        });
        if depth >= pactum_types::limits::CONTRACT_CALL_DEPTH_MAX {
            return refused("call depth limit reached");
        }
        if reentrant {
            return refused("reentrant call refused: the contract is already on the call stack");
        }
        let Some(callee) = callee else { return refused("no contract at that address") };
        let (snapshot, events_length) = with(|context| {
            let caller = context.frames.last().expect("a frame is on the stack").contract;
            context.frames.push(Frame::new(address, caller, method, input.to_vec()));
            (context.storage.clone(), context.events.len())
        });
        let status = run_entry(callee.call);
        let (code, result) = with(|context| {
            let frame = context.frames.pop().expect("the callee's frame is on the stack");
            let (code, result) = match status {
                Status::Success => (crate::host::CALL_SUCCESS, frame.return_data),
                Status::Reverted(reason) => (crate::host::CALL_REVERTED, reason.into_bytes()),
                Status::OutOfGas => (crate::host::CALL_OUT_OF_GAS, b"out of gas".to_vec()),
                Status::Trapped(trap) => (crate::host::CALL_TRAPPED, trap.into_bytes()),
            };
            if code != crate::host::CALL_SUCCESS {
                context.storage = snapshot;
                context.events.truncate(events_length);
            }
            context.call_result = result.clone();
            (code, result)
        });
        (code, result)
    }
}

#[cfg(test)]
mod tests {
    //! The harness's own rules, with two small contracts: calls between contracts, the
    //! rollback of a failed callee, and the refusal of reentrancy (as in the VM).

    use std::string::String;

    use super::{Chain, MockChain, Status, account};
    use crate::Address;

    mod caller {
        use crate::env::{self, CallError};
        use crate::storage::Value;
        use crate::{Address, Result};

        const TOUCHED: Value<u8> = Value::new(b"touched");

        crate::contract! {
            init() => init;
            methods {
                relay(target: Address, fail: bool) -> u8;
                ping();
            }
        }

        pub fn init() -> Result<()> {
            Ok(())
        }

        /// Calls `target.echo`, and reports how it went: 0 success, 1 reverted, 4 refused.
        pub fn relay(target: Address, fail: bool) -> Result<u8> {
            TOUCHED.set(&1);
            Ok(match env::call::<()>(target, "echo", &(env::self_address(), fail), 100_000) {
                Ok(()) => 0,
                Err(CallError::Reverted { .. }) => 1,
                Err(CallError::Refused { .. }) => 4,
                Err(_) => 9,
            })
        }

        pub fn ping() -> Result<()> {
            Ok(())
        }
    }

    mod callee {
        use crate::env::{self, CallError};
        use crate::storage::Value;
        use crate::{Address, Result};

        const SEEN: Value<u8> = Value::new(b"seen");

        crate::contract! {
            init() => init;
            methods {
                echo(back: Address, fail: bool);
            }
        }

        pub fn init() -> Result<()> {
            Ok(())
        }

        /// Records what calling back into `back` gave, then fails if asked to.
        pub fn echo(back: Address, fail: bool) -> Result<()> {
            let code = match env::call::<()>(back, "ping", &(), 10_000) {
                Ok(()) => 0,
                Err(CallError::Refused { .. }) => 4,
                Err(_) => 9,
            };
            SEEN.set(&code);
            env::emit("echoed", &code);
            crate::ensure!(!fail, "asked to fail");
            Ok(())
        }
    }

    #[test]
    fn the_interface_text_is_the_declarations() {
        assert_eq!(
            caller::INTERFACE,
            "init()\nmethod relay(target:Address,fail:bool,)->u8\nmethod ping()->\n"
        );
        assert_eq!(callee::INTERFACE, "init()\nmethod echo(back:Address,fail:bool,)->\n");
    }

    fn setup() -> (MockChain, Address, Address) {
        let mut chain = MockChain::new();
        chain.register("caller", caller::NATIVE).register("callee", callee::NATIVE);
        let deployer = account("deployer");
        let caller = chain.deploy(deployer, "caller", &());
        let callee = chain.deploy(deployer, "callee", &());
        (chain, caller, callee)
    }

    #[test]
    fn reentrant_calls_are_refused_like_in_the_vm() {
        let (mut chain, caller, callee) = setup();
        let outcome = chain.call(account("user"), caller, "relay", &(callee, false));
        assert_eq!(outcome.returned::<u8>(), 0);
        assert_eq!(outcome.topics(), ["echoed"]);
        // The callee's call back into the caller was refused.
        assert_eq!(chain.storage(&callee, b"seen"), Some(&[4u8][..]));
    }

    #[test]
    fn a_failed_callee_is_rolled_back_and_the_caller_carries_on() {
        let (mut chain, caller, callee) = setup();
        let outcome = chain.call(account("user"), caller, "relay", &(callee, true));
        assert_eq!(outcome.returned::<u8>(), 1);
        assert!(outcome.events.is_empty(), "the callee's event was discarded");
        assert_eq!(chain.storage(&callee, b"seen"), None);
        assert_eq!(chain.storage(&caller, b"touched"), Some(&[1u8][..]));
        let missing = chain.call(account("user"), caller, "relay", &(account("nobody"), false));
        assert_eq!(missing.returned::<u8>(), 4);
        let unknown = chain.call(account("user"), caller, "nope", &());
        assert_eq!(unknown.status, Status::Reverted(String::from("unknown method `nope`")));
    }
}
