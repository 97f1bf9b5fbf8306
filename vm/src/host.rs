//! The host side of the ABI: the store's data, the host functions, gas charging, nested
//! calls, and the mapping of every way a run can end onto a [`Status`].
//!
//! A host function never panics on contract input: a bad pointer, an oversized argument
//! or missing gas becomes a [`HostTrap`], which ends the contract's run as a trap.

use std::sync::Arc;

use pactum_types::crypto::{PublicKey, Signature};
use pactum_types::gas::GasSchedule;
use pactum_types::hash::sha3_256;
use pactum_types::{Address, Event, limits};
use thiserror::Error;
use wasmtime::{AsContextMut, Caller, InstancePre, Linker, Memory};

use crate::abi::{self, call_status};
use crate::engine::Limiter;
use crate::state::{Overlay, StateError};
use crate::{BlockContext, Shared, Status, Trap};

/// A host function's reason to stop the contract.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum HostTrap {
    #[error("out of gas")]
    OutOfGas,
    #[error("reverted: {reason}")]
    Revert { reason: String },
    #[error("pointer and length outside contract memory")]
    PointerOutOfBounds,
    #[error("{what} exceeds its limit")]
    LimitExceeded { what: &'static str },
    #[error("event topic is not UTF-8")]
    TopicNotUtf8,
    #[error("memory limit exceeded")]
    MemoryLimitExceeded,
    #[error("table limit exceeded")]
    TableLimitExceeded,
    #[error("the state view failed")]
    StateFailed,
    #[error("the engine failed")]
    EngineFailed,
    #[error("the contract exports no memory")]
    NoMemory,
}

/// One contract invocation on the call stack.
pub(crate) struct Frame {
    pub(crate) contract: Address,
    pub(crate) caller: Address,
    pub(crate) method: String,
    pub(crate) input: Vec<u8>,
    pub(crate) memory: Option<Memory>,
    pub(crate) return_data: Vec<u8>,
}

/// Everything a transaction's store holds.
pub(crate) struct HostState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) overlay: Overlay,
    pub(crate) frames: Vec<Frame>,
    pub(crate) events: Vec<Event>,
    pub(crate) call_result: Vec<u8>,
    pub(crate) block: BlockContext,
    pub(crate) limiter: Limiter,
    pub(crate) instances: usize,
    /// Set when the state view failed; the VM then answers with an error, not a receipt.
    pub(crate) state_error: Option<StateError>,
    /// Set when a nested run failed for a reason that is not the contract's doing.
    pub(crate) engine_error: Option<String>,
}

impl HostState {
    fn frame(&self) -> &Frame {
        // A host function runs only inside a contract, so a frame is always on the stack.
        self.frames.last().expect("host function called outside any contract frame")
    }

    fn frame_mut(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("host function called outside any contract frame")
    }
}

type HostResult<T> = wasmtime::Result<T>;

fn trap(host_trap: HostTrap) -> wasmtime::Error {
    wasmtime::Error::new(host_trap)
}

/// How a run ended, before gas accounting; `Err` when it ended for a reason that is not
/// the contract's doing (an exhausted instance pool, a failed state view), which must
/// never decide a receipt.
pub(crate) fn classify(result: wasmtime::Result<()>) -> Result<Status, String> {
    let Err(error) = result else { return Ok(Status::Success) };
    if let Some(host_trap) = error.downcast_ref::<HostTrap>() {
        return Ok(match host_trap {
            HostTrap::OutOfGas => Status::OutOfGas,
            HostTrap::Revert { reason } => Status::Reverted { reason: reason.clone() },
            HostTrap::PointerOutOfBounds => Status::Trapped { trap: Trap::HostPointerOutOfBounds },
            HostTrap::LimitExceeded { what } => {
                Status::Trapped { trap: Trap::HostLimitExceeded { what } }
            }
            HostTrap::TopicNotUtf8 => Status::Trapped { trap: Trap::EventTopicNotUtf8 },
            HostTrap::MemoryLimitExceeded => Status::Trapped { trap: Trap::MemoryLimitExceeded },
            HostTrap::TableLimitExceeded => Status::Trapped { trap: Trap::TableLimitExceeded },
            // Validation guarantees an exported memory; kept as a trap for completeness.
            HostTrap::NoMemory => Status::Trapped { trap: Trap::Other },
            HostTrap::StateFailed | HostTrap::EngineFailed => return Err(host_trap.to_string()),
        });
    }
    if let Some(wasm_trap) = error.downcast_ref::<wasmtime::Trap>() {
        let trap = match wasm_trap {
            wasmtime::Trap::OutOfFuel => return Ok(Status::OutOfGas),
            wasmtime::Trap::StackOverflow => Trap::StackOverflow,
            wasmtime::Trap::MemoryOutOfBounds => Trap::MemoryOutOfBounds,
            wasmtime::Trap::TableOutOfBounds => Trap::TableOutOfBounds,
            wasmtime::Trap::IndirectCallToNull => Trap::IndirectCallToNull,
            wasmtime::Trap::BadSignature => Trap::BadSignature,
            wasmtime::Trap::IntegerOverflow => Trap::IntegerOverflow,
            wasmtime::Trap::IntegerDivisionByZero => Trap::IntegerDivisionByZero,
            wasmtime::Trap::BadConversionToInteger => Trap::BadConversionToInteger,
            wasmtime::Trap::UnreachableCodeReached => Trap::Unreachable,
            _ => Trap::Other,
        };
        return Ok(Status::Trapped { trap });
    }
    // Anything else (for example no free slot in the instance pool) is the node's
    // problem, not the contract's.
    Err(format!("{error:#}"))
}

/// Instantiates `pre` for the frame on top of the stack and runs its `entry` export.
pub(crate) fn run_frame(
    mut context: impl AsContextMut<Data = HostState>,
    pre: &InstancePre<HostState>,
    entry: &str,
) -> wasmtime::Result<()> {
    let mut context = context.as_context_mut();
    context.data_mut().instances += 1;
    let instance = pre.instantiate(&mut context)?;
    let memory =
        instance.get_memory(&mut context, "memory").ok_or_else(|| trap(HostTrap::NoMemory))?;
    context.data_mut().frame_mut().memory = Some(memory);
    let function = instance.get_typed_func::<(), ()>(&mut context, entry)?;
    function.call(&mut context, ())
}

/// Charges `gas` from the store's fuel, or traps with out-of-gas (leaving no fuel).
fn charge(caller: &mut Caller<'_, HostState>, gas: u64) -> HostResult<()> {
    if !caller.data().shared.metering {
        return Ok(());
    }
    let fuel = caller.get_fuel()?;
    if fuel < gas {
        caller.set_fuel(0)?;
        return Err(trap(HostTrap::OutOfGas));
    }
    caller.set_fuel(fuel - gas)
}

fn schedule(caller: &Caller<'_, HostState>) -> GasSchedule {
    caller.data().block.gas_schedule
}

fn memory(caller: &Caller<'_, HostState>) -> HostResult<Memory> {
    caller.data().frame().memory.ok_or_else(|| trap(HostTrap::NoMemory))
}

/// The byte range `pointer .. pointer + length` of contract memory, checked.
fn range(
    caller: &Caller<'_, HostState>,
    pointer: i32,
    length: usize,
) -> HostResult<std::ops::Range<usize>> {
    let start = pointer as u32 as usize;
    let end = start.checked_add(length).ok_or_else(|| trap(HostTrap::PointerOutOfBounds))?;
    if end > memory(caller)?.data_size(caller) {
        return Err(trap(HostTrap::PointerOutOfBounds));
    }
    Ok(start..end)
}

/// A length argument, checked against `max` (a negative length is out of any bound).
fn length(value: i32, max: usize, what: &'static str) -> HostResult<usize> {
    let length = usize::try_from(value).map_err(|_| trap(HostTrap::PointerOutOfBounds))?;
    if length > max {
        return Err(trap(HostTrap::LimitExceeded { what }));
    }
    Ok(length)
}

fn read(caller: &Caller<'_, HostState>, pointer: i32, length: usize) -> HostResult<Vec<u8>> {
    let range = range(caller, pointer, length)?;
    Ok(memory(caller)?.data(caller)[range].to_vec())
}

fn write(caller: &mut Caller<'_, HostState>, pointer: i32, bytes: &[u8]) -> HostResult<()> {
    let range = range(caller, pointer, bytes.len())?;
    let memory = memory(caller)?;
    memory.data_mut(&mut *caller)[range].copy_from_slice(bytes);
    Ok(())
}

fn state_failed(caller: &mut Caller<'_, HostState>, error: StateError) -> wasmtime::Error {
    caller.data_mut().state_error = Some(error);
    trap(HostTrap::StateFailed)
}

/// A revert reason of at most `REASON_BYTES_MAX` bytes of UTF-8, whatever the contract
/// sent: invalid UTF-8 is replaced (which can lengthen it), then the text is cut at a
/// character boundary.
pub(crate) fn bounded_reason(bytes: &[u8]) -> String {
    let mut reason = String::from_utf8_lossy(bytes).into_owned();
    if reason.len() > limits::REASON_BYTES_MAX {
        let mut end = limits::REASON_BYTES_MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

fn i32_length(length: usize) -> i32 {
    // Every length handed back is bounded by a limit far below i32::MAX.
    i32::try_from(length).expect("host lengths are bounded below i32::MAX")
}

/// The linker with every function of [`abi::HOST_FUNCTIONS`].
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    let module = abi::MODULE;

    linker.func_wrap(
        module,
        "input_size",
        |mut caller: Caller<'_, HostState>| -> HostResult<i32> {
            let gas = schedule(&caller).host_call_base;
            charge(&mut caller, gas)?;
            Ok(i32_length(caller.data().frame().input.len()))
        },
    )?;
    linker.func_wrap(
        module,
        "input_copy",
        |mut caller: Caller<'_, HostState>, pointer: i32| -> HostResult<()> {
            let s = schedule(&caller);
            let input = std::mem::take(&mut caller.data_mut().frame_mut().input);
            let result = charge(
                &mut caller,
                GasSchedule::cost(s.host_call_base, s.memory_copy_per_byte, input.len()),
            )
            .and_then(|()| write(&mut caller, pointer, &input));
            caller.data_mut().frame_mut().input = input;
            result
        },
    )?;
    linker.func_wrap(
        module,
        "method_size",
        |mut caller: Caller<'_, HostState>| -> HostResult<i32> {
            let gas = schedule(&caller).host_call_base;
            charge(&mut caller, gas)?;
            Ok(i32_length(caller.data().frame().method.len()))
        },
    )?;
    linker.func_wrap(
        module,
        "method_copy",
        |mut caller: Caller<'_, HostState>, pointer: i32| -> HostResult<()> {
            let s = schedule(&caller);
            let method = caller.data().frame().method.clone();
            charge(
                &mut caller,
                GasSchedule::cost(s.host_call_base, s.memory_copy_per_byte, method.len()),
            )?;
            write(&mut caller, pointer, method.as_bytes())
        },
    )?;
    linker.func_wrap(
        module,
        "return_set",
        |mut caller: Caller<'_, HostState>, pointer: i32, data_length: i32| -> HostResult<()> {
            let s = schedule(&caller);
            let data_length = length(data_length, limits::RETURN_DATA_BYTES_MAX, "return data")?;
            range(&caller, pointer, data_length)?;
            charge(
                &mut caller,
                GasSchedule::cost(s.host_call_base, s.memory_copy_per_byte, data_length),
            )?;
            let data = read(&caller, pointer, data_length)?;
            caller.data_mut().frame_mut().return_data = data;
            Ok(())
        },
    )?;
    linker.func_wrap(
        module,
        "storage_get",
        |mut caller: Caller<'_, HostState>,
         key_pointer: i32,
         key_length: i32,
         value_pointer: i32,
         value_capacity: i32|
         -> HostResult<i32> {
            let s = schedule(&caller);
            let key_length = length(key_length, limits::STATE_KEY_BYTES_MAX, "storage key")?;
            let value_capacity =
                usize::try_from(value_capacity).map_err(|_| trap(HostTrap::PointerOutOfBounds))?;
            range(&caller, value_pointer, value_capacity)?;
            charge(
                &mut caller,
                GasSchedule::cost(
                    s.host_call_base + s.storage_read_base,
                    s.storage_read_per_byte,
                    key_length,
                ),
            )?;
            let key = read(&caller, key_pointer, key_length)?;
            let contract = caller.data().frame().contract;
            let value = match caller.data().overlay.get(&contract, &key) {
                Ok(value) => value,
                Err(error) => return Err(state_failed(&mut caller, error)),
            };
            let Some(value) = value else { return Ok(abi::STORAGE_ABSENT) };
            let copied = value.len().min(value_capacity);
            charge(
                &mut caller,
                GasSchedule::cost(0, s.storage_read_per_byte, value.len())
                    .saturating_add(GasSchedule::cost(0, s.memory_copy_per_byte, copied)),
            )?;
            write(&mut caller, value_pointer, &value[..copied])?;
            Ok(i32_length(value.len()))
        },
    )?;
    linker.func_wrap(
        module,
        "storage_set",
        |mut caller: Caller<'_, HostState>,
         key_pointer: i32,
         key_length: i32,
         value_pointer: i32,
         value_length: i32|
         -> HostResult<()> {
            let s = schedule(&caller);
            let key_length = length(key_length, limits::STATE_KEY_BYTES_MAX, "storage key")?;
            let value_length =
                length(value_length, limits::STATE_VALUE_BYTES_MAX, "storage value")?;
            range(&caller, key_pointer, key_length)?;
            range(&caller, value_pointer, value_length)?;
            charge(
                &mut caller,
                GasSchedule::cost(
                    s.host_call_base + s.storage_write_base,
                    s.storage_write_per_byte,
                    key_length + value_length,
                ),
            )?;
            let key = read(&caller, key_pointer, key_length)?;
            let value = read(&caller, value_pointer, value_length)?;
            let contract = caller.data().frame().contract;
            caller.data_mut().overlay.set(contract, key, Some(value));
            Ok(())
        },
    )?;
    linker.func_wrap(
        module,
        "storage_remove",
        |mut caller: Caller<'_, HostState>, key_pointer: i32, key_length: i32| -> HostResult<()> {
            let s = schedule(&caller);
            let key_length = length(key_length, limits::STATE_KEY_BYTES_MAX, "storage key")?;
            range(&caller, key_pointer, key_length)?;
            charge(
                &mut caller,
                GasSchedule::cost(
                    s.host_call_base + s.storage_remove_base,
                    s.storage_remove_per_byte,
                    key_length,
                ),
            )?;
            let key = read(&caller, key_pointer, key_length)?;
            let contract = caller.data().frame().contract;
            caller.data_mut().overlay.set(contract, key, None);
            Ok(())
        },
    )?;
    linker.func_wrap(
        module,
        "caller",
        |mut caller: Caller<'_, HostState>, pointer: i32| -> HostResult<()> {
            let s = schedule(&caller);
            charge(&mut caller, GasSchedule::cost(s.host_call_base, s.memory_copy_per_byte, 32))?;
            let address = caller.data().frame().caller;
            write(&mut caller, pointer, &address.0)
        },
    )?;
    linker.func_wrap(
        module,
        "self_address",
        |mut caller: Caller<'_, HostState>, pointer: i32| -> HostResult<()> {
            let s = schedule(&caller);
            charge(&mut caller, GasSchedule::cost(s.host_call_base, s.memory_copy_per_byte, 32))?;
            let address = caller.data().frame().contract;
            write(&mut caller, pointer, &address.0)
        },
    )?;
    linker.func_wrap(
        module,
        "block_height",
        |mut caller: Caller<'_, HostState>| -> HostResult<i64> {
            let gas = schedule(&caller).host_call_base;
            charge(&mut caller, gas)?;
            Ok(caller.data().block.height as i64)
        },
    )?;
    linker.func_wrap(
        module,
        "block_timestamp_ms",
        |mut caller: Caller<'_, HostState>| -> HostResult<i64> {
            let gas = schedule(&caller).host_call_base;
            charge(&mut caller, gas)?;
            Ok(caller.data().block.timestamp_ms as i64)
        },
    )?;
    linker.func_wrap(
        module,
        "event_emit",
        |mut caller: Caller<'_, HostState>,
         topic_pointer: i32,
         topic_length: i32,
         data_pointer: i32,
         data_length: i32|
         -> HostResult<()> {
            let s = schedule(&caller);
            let topic_length = length(topic_length, limits::EVENT_TOPIC_BYTES_MAX, "event topic")?;
            let data_length = length(data_length, limits::EVENT_DATA_BYTES_MAX, "event data")?;
            if caller.data().events.len() >= limits::EVENTS_PER_TRANSACTION_MAX {
                return Err(trap(HostTrap::LimitExceeded { what: "events per transaction" }));
            }
            range(&caller, topic_pointer, topic_length)?;
            range(&caller, data_pointer, data_length)?;
            charge(
                &mut caller,
                GasSchedule::cost(
                    s.host_call_base + s.event_base,
                    s.event_per_byte,
                    topic_length + data_length,
                ),
            )?;
            let topic = String::from_utf8(read(&caller, topic_pointer, topic_length)?)
                .map_err(|_| trap(HostTrap::TopicNotUtf8))?;
            let data = read(&caller, data_pointer, data_length)?;
            let contract = caller.data().frame().contract;
            caller.data_mut().events.push(Event { contract, topic, data });
            Ok(())
        },
    )?;
    linker.func_wrap(
        module,
        "revert",
        |mut caller: Caller<'_, HostState>, pointer: i32, reason_length: i32| -> HostResult<()> {
            let s = schedule(&caller);
            // A long reason is cut to its first `REASON_BYTES_MAX` bytes rather than
            // turned into a trap: the revert is what the contract meant.
            let reason_length = length(reason_length, usize::MAX, "revert reason")?;
            range(&caller, pointer, reason_length)?;
            let kept = reason_length.min(limits::REASON_BYTES_MAX);
            charge(&mut caller, GasSchedule::cost(s.host_call_base, s.memory_copy_per_byte, kept))?;
            let reason = bounded_reason(&read(&caller, pointer, kept)?);
            Err(trap(HostTrap::Revert { reason }))
        },
    )?;
    linker.func_wrap(
        module,
        "sha3_256",
        |mut caller: Caller<'_, HostState>,
         pointer: i32,
         data_length: i32,
         output: i32|
         -> HostResult<()> {
            let s = schedule(&caller);
            let data_length =
                usize::try_from(data_length).map_err(|_| trap(HostTrap::PointerOutOfBounds))?;
            range(&caller, pointer, data_length)?;
            range(&caller, output, 32)?;
            charge(
                &mut caller,
                GasSchedule::cost(s.host_call_base + s.sha3_base, s.sha3_per_byte, data_length),
            )?;
            let digest = sha3_256(&read(&caller, pointer, data_length)?);
            write(&mut caller, output, &digest.0)
        },
    )?;
    linker.func_wrap(
        module,
        "ed25519_verify",
        |mut caller: Caller<'_, HostState>,
         key_pointer: i32,
         message_pointer: i32,
         message_length: i32,
         signature_pointer: i32|
         -> HostResult<i32> {
            let s = schedule(&caller);
            let message_length =
                usize::try_from(message_length).map_err(|_| trap(HostTrap::PointerOutOfBounds))?;
            range(&caller, key_pointer, 32)?;
            range(&caller, message_pointer, message_length)?;
            range(&caller, signature_pointer, 64)?;
            charge(
                &mut caller,
                GasSchedule::cost(
                    s.host_call_base + s.ed25519_verify_base,
                    s.ed25519_verify_per_byte,
                    message_length,
                ),
            )?;
            let key: [u8; 32] = read(&caller, key_pointer, 32)?
                .try_into()
                .map_err(|_| trap(HostTrap::PointerOutOfBounds))?;
            let signature: [u8; 64] = read(&caller, signature_pointer, 64)?
                .try_into()
                .map_err(|_| trap(HostTrap::PointerOutOfBounds))?;
            let message = read(&caller, message_pointer, message_length)?;
            let valid = PublicKey(key).verify(&[], &message, &Signature(signature)).is_ok();
            Ok(i32::from(valid))
        },
    )?;
    linker.func_wrap(
        module,
        "call",
        |mut caller: Caller<'_, HostState>,
         address_pointer: i32,
         method_pointer: i32,
         method_length: i32,
         input_pointer: i32,
         input_length: i32,
         gas_limit: i64|
         -> HostResult<i32> {
            nested_call(
                &mut caller,
                address_pointer,
                method_pointer,
                method_length,
                input_pointer,
                input_length,
                gas_limit,
            )
        },
    )?;
    linker.func_wrap(
        module,
        "call_result_size",
        |mut caller: Caller<'_, HostState>| -> HostResult<i32> {
            let gas = schedule(&caller).host_call_base;
            charge(&mut caller, gas)?;
            Ok(i32_length(caller.data().call_result.len()))
        },
    )?;
    linker.func_wrap(
        module,
        "call_result_copy",
        |mut caller: Caller<'_, HostState>, pointer: i32| -> HostResult<()> {
            let s = schedule(&caller);
            let result = std::mem::take(&mut caller.data_mut().call_result);
            let outcome = charge(
                &mut caller,
                GasSchedule::cost(s.host_call_base, s.memory_copy_per_byte, result.len()),
            )
            .and_then(|()| write(&mut caller, pointer, &result));
            caller.data_mut().call_result = result;
            outcome
        },
    )?;
    Ok(linker)
}

fn refuse(caller: &mut Caller<'_, HostState>, reason: &str) -> HostResult<i32> {
    caller.data_mut().call_result = reason.as_bytes().to_vec();
    Ok(call_status::REFUSED)
}

/// `call`: runs another contract inside this transaction, with its own gas limit.
///
/// The callee gets `min(gas_limit, remaining gas)`; whatever it uses is charged to the
/// caller. If it does not succeed, its storage writes and events are undone and the
/// caller carries on with the status code. A contract already on the call stack cannot be
/// called again (no reentrancy), and the depth and instance count are bounded.
fn nested_call(
    caller: &mut Caller<'_, HostState>,
    address_pointer: i32,
    method_pointer: i32,
    method_length: i32,
    input_pointer: i32,
    input_length: i32,
    gas_limit: i64,
) -> HostResult<i32> {
    let s = schedule(caller);
    let method_length = length(method_length, limits::METHOD_NAME_BYTES_MAX, "method name")?;
    let input_length = length(input_length, limits::CALL_INPUT_BYTES_MAX, "call input")?;
    range(caller, address_pointer, 32)?;
    range(caller, method_pointer, method_length)?;
    range(caller, input_pointer, input_length)?;
    charge(
        caller,
        GasSchedule::cost(
            s.host_call_base + s.call_base,
            s.memory_copy_per_byte,
            32 + method_length + input_length,
        ),
    )?;
    let address: [u8; 32] = read(caller, address_pointer, 32)?
        .try_into()
        .map_err(|_| trap(HostTrap::PointerOutOfBounds))?;
    let address = Address(address);
    let Ok(method) = String::from_utf8(read(caller, method_pointer, method_length)?) else {
        return refuse(caller, "method name is not UTF-8");
    };
    let input = read(caller, input_pointer, input_length)?;

    if caller.data().frames.len() >= limits::CONTRACT_CALL_DEPTH_MAX {
        return refuse(caller, "call depth limit reached");
    }
    if caller.data().instances >= limits::CONTRACT_INSTANCES_PER_TRANSACTION_MAX {
        return refuse(caller, "contract instance limit of the transaction reached");
    }
    if caller.data().frames.iter().any(|frame| frame.contract == address) {
        return refuse(caller, "reentrant call refused: the contract is already on the call stack");
    }
    let code_hash = match caller.data().overlay.contract_code_hash(&address) {
        Ok(Some(code_hash)) => code_hash,
        Ok(None) => return refuse(caller, "no contract at that address"),
        Err(error) => return Err(state_failed(caller, error)),
    };
    let shared = Arc::clone(&caller.data().shared);
    let pre = match shared.instance_pre(&code_hash, || caller.data().overlay.code(&code_hash)) {
        Ok(Some(pre)) => pre,
        Ok(None) => return refuse(caller, "the contract's code is missing"),
        Err(crate::VmError::State(error)) => return Err(state_failed(caller, error)),
        Err(_) => return refuse(caller, "the contract's code could not be compiled"),
    };

    let metering = shared.metering;
    let caller_fuel = if metering { caller.get_fuel()? } else { 0 };
    let callee_limit = u64::try_from(gas_limit).unwrap_or(0).min(caller_fuel);
    if metering {
        caller.set_fuel(callee_limit)?;
    }
    let overlay_mark = caller.data().overlay.mark();
    let events_length = caller.data().events.len();
    let contract = caller.data().frame().contract;
    caller.data_mut().frames.push(Frame {
        contract: address,
        caller: contract,
        method,
        input,
        memory: None,
        return_data: Vec::new(),
    });
    let result = run_frame(&mut *caller, &pre, "pactum_call");
    let frame = caller.data_mut().frames.pop().expect("the callee's frame is on the stack");
    if caller.data().state_error.is_some() {
        return Err(trap(HostTrap::StateFailed));
    }
    let status = match classify(result) {
        Ok(status) => status,
        Err(reason) => {
            caller.data_mut().engine_error.get_or_insert(reason);
            return Err(trap(HostTrap::EngineFailed));
        }
    };
    if metering {
        let callee_used = match status {
            Status::OutOfGas => callee_limit,
            _ => callee_limit - caller.get_fuel()?.min(callee_limit),
        };
        caller.set_fuel(caller_fuel - callee_used)?;
    }
    let (code, result) = match status {
        Status::Success => (call_status::SUCCESS, frame.return_data),
        Status::Reverted { reason } => (call_status::REVERTED, reason.into_bytes()),
        Status::OutOfGas => (call_status::OUT_OF_GAS, b"out of gas".to_vec()),
        Status::Trapped { trap } => (call_status::TRAPPED, trap.to_string().into_bytes()),
    };
    if code != call_status::SUCCESS {
        caller.data_mut().overlay.rollback(overlay_mark);
        caller.data_mut().events.truncate(events_length);
    }
    caller.data_mut().call_result = result;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_reasons_are_bounded_utf8() {
        assert_eq!(bounded_reason(b"out of stock"), "out of stock");
        // Every invalid byte becomes a three-byte replacement character.
        let reason = bounded_reason(&[0xff; limits::REASON_BYTES_MAX]);
        assert!(reason.len() <= limits::REASON_BYTES_MAX);
        assert_eq!(reason.len(), limits::REASON_BYTES_MAX / 3 * 3);
        let long = "é".repeat(limits::REASON_BYTES_MAX);
        assert_eq!(bounded_reason(long.as_bytes()).len(), limits::REASON_BYTES_MAX);
    }
}
