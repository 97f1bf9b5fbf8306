//! Shared helpers of the VM's integration tests: a [`VmChain`] that runs the contract
//! scenarios in the real VM, and WAT builders for hand-written (and hostile) contracts.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use pactum_sdk::testing::{Chain, Event as SdkEvent, Outcome, Status as SdkStatus};
use pactum_types::Address;
use pactum_vm::{
    BlockContext, CallRequest, DeployRequest, Execution, MemoryState, Status, Vm, VmOptions,
};

/// Gas given to every scenario transaction.
pub const GAS: u64 = 50_000_000;

/// A chain that executes in the real VM against the wasm builds of the contracts.
pub struct VmChain {
    pub vm: Vm,
    pub state: Arc<MemoryState>,
    pub block: BlockContext,
    nonces: BTreeMap<Address, u64>,
    /// Every execution, in order, for determinism checks and gas figures.
    pub executions: Vec<Execution>,
}

impl VmChain {
    pub fn new() -> Self {
        Self::with_vm(Vm::new(VmOptions::default()).expect("engine builds"))
    }

    pub fn with_vm(vm: Vm) -> Self {
        Self {
            vm,
            state: Arc::new(MemoryState::new()),
            block: BlockContext {
                height: 1,
                timestamp_ms: 1_767_225_600_000,
                ..BlockContext::default()
            },
            nonces: BTreeMap::new(),
            executions: Vec::new(),
        }
    }

    pub fn deploy_code(&mut self, deployer: Address, code: &[u8], init_input: &[u8]) -> Execution {
        let nonce = self.nonces.entry(deployer).or_insert(0);
        let request = DeployRequest { deployer, nonce: *nonce, code, init_input, gas_limit: GAS };
        *nonce += 1;
        let execution =
            self.vm.deploy(self.state.clone(), &self.block, &request).expect("deploy runs");
        self.finish(execution)
    }

    pub fn call_contract(
        &mut self,
        caller: Address,
        contract: Address,
        method: &str,
        input: &[u8],
        gas_limit: u64,
    ) -> Execution {
        let request = CallRequest { caller, contract, method, input, gas_limit };
        let execution = self.vm.call(self.state.clone(), &self.block, &request).expect("call runs");
        self.finish(execution)
    }

    fn finish(&mut self, execution: Execution) -> Execution {
        if execution.status == Status::Success {
            Arc::make_mut(&mut self.state).apply(&execution.write_set);
        } else {
            assert!(execution.write_set.is_empty(), "a failed execution carries no writes");
            assert!(execution.events.is_empty(), "a failed execution carries no events");
        }
        self.executions.push(execution.clone());
        execution
    }
}

pub fn to_vm(address: pactum_sdk::Address) -> Address {
    Address(address.0)
}

pub fn to_sdk(address: Address) -> pactum_sdk::Address {
    pactum_sdk::Address(address.0)
}

pub fn outcome(execution: &Execution) -> Outcome {
    Outcome {
        status: match &execution.status {
            Status::Success => SdkStatus::Success,
            Status::Reverted { reason } => SdkStatus::Reverted(reason.clone()),
            Status::OutOfGas => SdkStatus::OutOfGas,
            Status::Trapped { trap } => SdkStatus::Trapped(trap.to_string()),
        },
        return_data: execution.return_data.clone(),
        events: execution
            .events
            .iter()
            .map(|event| SdkEvent {
                contract: to_sdk(event.contract),
                topic: event.topic.clone(),
                data: event.data.clone(),
            })
            .collect(),
        gas_used: execution.gas_used,
    }
}

impl Chain for VmChain {
    fn deploy_raw(
        &mut self,
        deployer: pactum_sdk::Address,
        contract: &str,
        init_input: Vec<u8>,
    ) -> (pactum_sdk::Address, Outcome) {
        let code = pactum_contract_wasm::by_name(contract)
            .unwrap_or_else(|| panic!("no wasm build of `{contract}`"));
        let execution = self.deploy_code(to_vm(deployer), code, &init_input);
        (to_sdk(execution.contract), outcome(&execution))
    }

    fn call_raw(
        &mut self,
        caller: pactum_sdk::Address,
        contract: pactum_sdk::Address,
        method: &str,
        input: Vec<u8>,
    ) -> Outcome {
        let execution = self.call_contract(to_vm(caller), to_vm(contract), method, &input, GAS);
        outcome(&execution)
    }

    fn set_block(&mut self, height: u64, timestamp_ms: u64) {
        self.block = BlockContext { height, timestamp_ms, ..BlockContext::default() };
    }
}

/// Every host function's import line, for modules that want the whole ABI.
pub fn all_imports() -> String {
    pactum_vm::HOST_FUNCTIONS
        .iter()
        .map(|function| {
            let kind = |types: &[pactum_vm::AbiType]| {
                types
                    .iter()
                    .map(|t| match t {
                        pactum_vm::AbiType::I32 => "i32",
                        pactum_vm::AbiType::I64 => "i64",
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let params = if function.params.is_empty() {
                String::new()
            } else {
                format!("(param {})", kind(function.params))
            };
            let results = if function.results.is_empty() {
                String::new()
            } else {
                format!("(result {})", kind(function.results))
            };
            format!(
                "(import \"pactum_v1\" \"{0}\" (func ${0} {params} {results}))\n",
                function.name
            )
        })
        .collect()
}

/// A contract in WAT importing the whole ABI, with one page of memory, an empty
/// `pactum_init` and `call_body` as `pactum_call`. `extra` adds module fields.
pub fn wat_contract(call_body: &str, extra: &str) -> Vec<u8> {
    let text = format!(
        "(module\n{imports}\n(memory (export \"memory\") 1)\n{extra}\n\
         (func (export \"pactum_init\"))\n(func (export \"pactum_call\") {call_body})\n)",
        imports = all_imports()
    );
    wat::parse_str(&text).unwrap_or_else(|error| panic!("WAT does not parse: {error}\n{text}"))
}

pub fn alice() -> Address {
    Address([0xa1; 32])
}

pub fn bob() -> Address {
    Address([0xb0; 32])
}
