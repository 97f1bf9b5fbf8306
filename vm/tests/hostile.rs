//! Hostile contracts: each ends with a receipt of the right status, no state change beyond
//! gas, and a VM that goes on serving the next call.

mod common;

use common::{GAS, VmChain, alice, bob, wat_contract};
use pactum_types::Hash;
use pactum_types::limits;
use pactum_vm::{DeployError, DeployRequest, Status, Trap, VmError, contract_address};

/// Deploys a well-behaved token and runs a transfer: the VM still serves.
fn assert_still_serves(chain: &mut VmChain) {
    let code = pactum_contract_wasm::TOKEN;
    let issuer = common::to_sdk(alice());
    let deployed =
        chain.deploy_code(alice(), code, &pactum_sdk::Encode::encode(&(String::from("After"),)));
    assert_eq!(deployed.status, Status::Success);
    let input = pactum_sdk::Encode::encode(&(issuer, 10u128));
    let minted = chain.call_contract(alice(), deployed.contract, "mint", &input, GAS);
    assert_eq!(minted.status, Status::Success);
}

/// Deploys `code` (whose `pactum_init` does nothing) and returns its address.
fn deploy(chain: &mut VmChain, code: &[u8]) -> pactum_types::Address {
    let execution = chain.deploy_code(alice(), code, &[]);
    assert_eq!(execution.status, Status::Success, "{:?}", execution.status);
    execution.contract
}

/// Calls `contract` and checks the failure left the state exactly as it was.
fn call_expecting(
    chain: &mut VmChain,
    contract: pactum_types::Address,
    gas_limit: u64,
    status: &Status,
) -> u64 {
    let before = chain.state.as_ref().clone();
    let execution = chain.call_contract(bob(), contract, "attack", b"", gas_limit);
    assert_eq!(&execution.status, status);
    assert!(
        execution.write_set.is_empty()
            && execution.events.is_empty()
            && execution.return_data.is_empty()
    );
    assert_eq!(chain.state.as_ref(), &before, "no state change beyond gas");
    assert!(execution.gas_used > 0);
    execution.gas_used
}

/// Writes a storage key and emits an event before the hostile part, so that a discarded
/// overlay is visible.
const WRITE_FIRST: &str = "(call $storage_set (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4)) \
                           (call $event_emit (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4))";

#[test]
fn infinite_loop_runs_out_of_gas_and_is_charged_the_whole_limit() {
    let mut chain = VmChain::new();
    let contract = deploy(
        &mut chain,
        &wat_contract(&format!("{WRITE_FIRST} (loop $forever (br $forever))"), ""),
    );
    let used = call_expecting(&mut chain, contract, 2_000_000, &Status::OutOfGas);
    assert_eq!(used, 2_000_000);
    assert_still_serves(&mut chain);
}

#[test]
fn memory_grow_bomb_traps_at_the_memory_cap() {
    let mut chain = VmChain::new();
    let bomb = format!("{WRITE_FIRST} (loop $grow (drop (memory.grow (i32.const 16))) (br $grow))");
    let contract = deploy(&mut chain, &wat_contract(&bomb, ""));
    call_expecting(&mut chain, contract, GAS, &Status::Trapped { trap: Trap::MemoryLimitExceeded });
    // One huge request traps the same way.
    let huge = deploy(&mut chain, &wat_contract("(drop (memory.grow (i32.const 30000)))", ""));
    call_expecting(&mut chain, huge, GAS, &Status::Trapped { trap: Trap::MemoryLimitExceeded });
    assert_still_serves(&mut chain);
}

#[test]
fn unbounded_recursion_traps_with_a_stack_overflow() {
    let mut chain = VmChain::new();
    let recursion = "(func $down (param i64) (call $down (i64.add (local.get 0) (i64.const 1))))";
    let contract = deploy(
        &mut chain,
        &wat_contract(&format!("{WRITE_FIRST} (call $down (i64.const 0))"), recursion),
    );
    call_expecting(
        &mut chain,
        contract,
        500_000_000,
        &Status::Trapped { trap: Trap::StackOverflow },
    );
    assert_still_serves(&mut chain);
}

#[test]
fn oversized_data_segments_are_refused_at_deploy() {
    let mut chain = VmChain::new();
    // A segment beyond the module's initial memory.
    let outside = wat_contract("", "(data (i32.const 70000) \"beyond the first page\")");
    let request = DeployRequest {
        deployer: alice(),
        nonce: 0,
        code: &outside,
        init_input: &[],
        gas_limit: GAS,
    };
    let refused = chain.vm.deploy(chain.state.clone(), &chain.block, &request);
    assert!(
        matches!(
            refused,
            Err(VmError::Deploy(DeployError::DataSegmentOutOfBounds {
                index: 0,
                start: 70_000,
                ..
            }))
        ),
        "{refused:?}"
    );
    // A segment that makes the module larger than the code limit.
    let filler = "a".repeat(limits::CONTRACT_CODE_BYTES_MAX);
    let text = format!(
        "(module (memory (export \"memory\") 16) (data (i32.const 0) \"{filler}\") \
         (func (export \"pactum_init\")) (func (export \"pactum_call\")))"
    );
    let big = wat::parse_str(&text).unwrap();
    let request = DeployRequest { code: &big, ..request };
    let refused = chain.vm.deploy(chain.state.clone(), &chain.block, &request);
    assert!(
        matches!(refused, Err(VmError::Deploy(DeployError::CodeTooLarge { .. }))),
        "{refused:?}"
    );
    assert!(chain.state.contracts.is_empty());
    assert_still_serves(&mut chain);
}

#[test]
fn unknown_imports_are_refused_at_deploy() {
    let vm = VmChain::new().vm;
    let cases = [
        ("(import \"env\" \"clock_now\" (func (result i64)))", "env", "clock_now"),
        (
            "(import \"wasi_snapshot_preview1\" \"random_get\" (func (param i32 i32) (result i32)))",
            "wasi_snapshot_preview1",
            "random_get",
        ),
        // A real ABI name with the wrong signature.
        ("(import \"pactum_v1\" \"storage_get\" (func (param i32)))", "pactum_v1", "storage_get"),
        ("(import \"pactum_v1\" \"height\" (global i64))", "pactum_v1", "height"),
    ];
    for (import, module, name) in cases {
        let text = format!(
            "(module {import} (memory (export \"memory\") 1) (func (export \"pactum_init\")) (func (export \"pactum_call\")))"
        );
        let code = wat::parse_str(&text).unwrap();
        match vm.validate(&code) {
            Err(DeployError::UnknownImport {
                module: refused_module, name: refused_name, ..
            }) => {
                assert_eq!((refused_module.as_str(), refused_name.as_str()), (module, name));
            }
            other => panic!("{import}: {other:?}"),
        }
    }
}

#[test]
fn out_of_bounds_pointers_to_host_calls_trap() {
    let mut chain = VmChain::new();
    let attacks = [
        // A key range running past the end of memory.
        "(call $storage_set (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 1))",
        // A pointer far outside memory.
        "(call $storage_set (i32.const 0) (i32.const 4) (i32.const -16) (i32.const 8))",
        // A negative length.
        "(drop (call $storage_get (i32.const 0) (i32.const -1) (i32.const 0) (i32.const 0)))",
        // Writing the caller's address past the end.
        "(call $caller (i32.const 65535))",
        "(call $sha3_256 (i32.const 0) (i32.const 8) (i32.const 65520))",
        "(call $event_emit (i32.const 65535) (i32.const 2) (i32.const 0) (i32.const 0))",
        "(call $return_set (i32.const 70000) (i32.const 1))",
    ];
    for attack in attacks {
        let contract = deploy(&mut chain, &wat_contract(&format!("{WRITE_FIRST} {attack}"), ""));
        call_expecting(
            &mut chain,
            contract,
            GAS,
            &Status::Trapped { trap: Trap::HostPointerOutOfBounds },
        );
    }
    assert_still_serves(&mut chain);
}

#[test]
fn oversized_host_arguments_trap_and_event_count_is_bounded() {
    let mut chain = VmChain::new();
    let long_key = "(call $storage_set (i32.const 0) (i32.const 4096) (i32.const 0) (i32.const 1))";
    let contract = deploy(&mut chain, &wat_contract(long_key, ""));
    call_expecting(
        &mut chain,
        contract,
        GAS,
        &Status::Trapped { trap: Trap::HostLimitExceeded { what: "storage key" } },
    );
    let many_events = "(local $n i32) (loop $emit \
         (call $event_emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)) \
         (local.set $n (i32.add (local.get $n) (i32.const 1))) \
         (br_if $emit (i32.lt_u (local.get $n) (i32.const 1000))))";
    let contract = deploy(&mut chain, &wat_contract(many_events, ""));
    call_expecting(
        &mut chain,
        contract,
        GAS,
        &Status::Trapped { trap: Trap::HostLimitExceeded { what: "events per transaction" } },
    );
    assert_still_serves(&mut chain);
}

/// The address of the contract `alice()` deploys with nonce `nonce`, as WAT data bytes.
fn address_data(nonce: u64) -> String {
    contract_address(&alice(), nonce).0.iter().map(|byte| format!("\\{byte:02x}")).collect()
}

#[test]
fn reentrant_calls_are_refused_and_the_caller_decides() {
    let mut chain = VmChain::new();
    // A (nonce 0) calls B (nonce 1) and stores B's return data under "seen".
    // B calls back into A, stores the status it got under "back" and returns it.
    let a = wat_contract(
        "(local $status i32) \
         (local.set $status (call $call (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 0) (i64.const 1000000))) \
         (if (i32.ne (local.get $status) (i32.const 0)) (then unreachable)) \
         (call $call_result_copy (i32.const 300)) \
         (call $storage_set (i32.const 210) (i32.const 4) (i32.const 300) (call $call_result_size))",
        &format!(
            "(data (i32.const 100) \"{}\") (data (i32.const 200) \"x\") (data (i32.const 210) \"seen\")",
            address_data(1)
        ),
    );
    let b = wat_contract(
        "(i32.store8 (i32.const 300) (call $call (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 0) (i64.const 100000))) \
         (call $storage_set (i32.const 210) (i32.const 4) (i32.const 300) (i32.const 1)) \
         (call $return_set (i32.const 300) (i32.const 1))",
        &format!(
            "(data (i32.const 100) \"{}\") (data (i32.const 200) \"x\") (data (i32.const 210) \"back\")",
            address_data(0)
        ),
    );
    let a_address = deploy(&mut chain, &a);
    let b_address = deploy(&mut chain, &b);
    assert_eq!(
        (a_address, b_address),
        (contract_address(&alice(), 0), contract_address(&alice(), 1))
    );
    let execution = chain.call_contract(bob(), a_address, "go", b"", GAS);
    assert_eq!(execution.status, Status::Success);
    let refused = vec![pactum_vm::call_status::REFUSED as u8];
    assert_eq!(chain.state.storage.get(&(b_address, b"back".to_vec())), Some(&refused));
    assert_eq!(chain.state.storage.get(&(a_address, b"seen".to_vec())), Some(&refused));
    assert_still_serves(&mut chain);
}

#[test]
fn a_failed_inner_call_is_undone_and_its_gas_charged_to_the_caller() {
    let mut chain = VmChain::new();
    // A writes "a", calls B with 50,000 gas, stores B's status under "status".
    let a = wat_contract(
        "(call $storage_set (i32.const 210) (i32.const 1) (i32.const 210) (i32.const 1)) \
         (i32.store8 (i32.const 300) (call $call (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 0) (i64.const 50000))) \
         (call $storage_set (i32.const 220) (i32.const 6) (i32.const 300) (i32.const 1))",
        &format!(
            "(data (i32.const 100) \"{}\") (data (i32.const 200) \"x\") (data (i32.const 210) \"a\") (data (i32.const 220) \"status\")",
            address_data(1)
        ),
    );
    // B writes "b" and emits an event, then loops forever.
    let b = wat_contract(&format!("{WRITE_FIRST} (loop $spin (br $spin))"), "");
    let a_address = deploy(&mut chain, &a);
    let b_address = deploy(&mut chain, &b);
    let execution = chain.call_contract(bob(), a_address, "go", b"", GAS);
    assert_eq!(execution.status, Status::Success);
    assert!(
        execution.gas_used > 50_000,
        "the callee's whole limit is charged: {}",
        execution.gas_used
    );
    assert!(execution.events.is_empty(), "the callee's event was discarded");
    let keys: Vec<_> = execution.write_set.storage.keys().cloned().collect();
    assert_eq!(keys, [(a_address, b"a".to_vec()), (a_address, b"status".to_vec())]);
    assert_eq!(
        chain.state.storage.get(&(a_address, b"status".to_vec())),
        Some(&vec![pactum_vm::call_status::OUT_OF_GAS as u8])
    );
    assert!(!chain.state.storage.keys().any(|(contract, _)| *contract == b_address));
}

#[test]
fn state_view_failure_is_an_error_not_a_receipt() {
    struct Failing;
    impl pactum_vm::StateView for Failing {
        fn storage(
            &self,
            _: &pactum_types::Address,
            _: &[u8],
        ) -> Result<Option<Vec<u8>>, pactum_vm::StateError> {
            Err(pactum_vm::StateError { reason: String::from("disk on fire") })
        }
        fn contract_code_hash(
            &self,
            _: &pactum_types::Address,
        ) -> Result<Option<Hash>, pactum_vm::StateError> {
            Ok(None)
        }
        fn code(&self, _: &Hash) -> Result<Option<std::sync::Arc<Vec<u8>>>, pactum_vm::StateError> {
            Ok(None)
        }
    }
    let chain = VmChain::new();
    let code = wat_contract("", "");
    let init_reads = wat::parse_str(format!(
        "(module {} (memory (export \"memory\") 1) \
         (func (export \"pactum_init\") (drop (call $storage_get (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0)))) \
         (func (export \"pactum_call\")))",
        common::all_imports()
    ))
    .unwrap();
    let request = DeployRequest {
        deployer: alice(),
        nonce: 0,
        code: &init_reads,
        init_input: &[],
        gas_limit: GAS,
    };
    let result = chain.vm.deploy(std::sync::Arc::new(Failing), &chain.block, &request);
    assert_eq!(
        result,
        Err(VmError::State(pactum_vm::StateError { reason: String::from("disk on fire") }))
    );
    let request = DeployRequest { code: &code, ..request };
    assert!(chain.vm.deploy(std::sync::Arc::new(Failing), &chain.block, &request).is_ok());
}

#[test]
fn an_exhausted_instance_pool_is_an_error_never_a_receipt() {
    // A pool of two slots: A calls B, B calls C, and C finds no free slot.
    let options =
        pactum_vm::VmOptions { instance_pool_slots: 2, ..pactum_vm::VmOptions::default() };
    let mut chain = VmChain::with_vm(pactum_vm::Vm::new(options).unwrap());
    let caller_of = |nonce: u64| {
        wat_contract(
            "(drop (call $call (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 0) (i64.const 1000000)))",
            &format!(
                "(data (i32.const 100) \"{}\") (data (i32.const 200) \"x\")",
                address_data(nonce)
            ),
        )
    };
    let a = deploy(&mut chain, &caller_of(1));
    deploy(&mut chain, &caller_of(2));
    deploy(&mut chain, &wat_contract("", ""));
    let before = chain.state.as_ref().clone();
    let request = pactum_vm::CallRequest {
        caller: bob(),
        contract: a,
        method: "go",
        input: b"",
        gas_limit: GAS,
    };
    let result = chain.vm.call(chain.state.clone(), &chain.block, &request);
    assert!(matches!(result, Err(VmError::Engine { .. })), "{result:?}");
    assert_eq!(chain.state.as_ref(), &before);
    // With the slots back, a shallower call works.
    let b = contract_address(&alice(), 1);
    let request = pactum_vm::CallRequest { contract: b, ..request };
    assert_eq!(
        chain.vm.call(chain.state.clone(), &chain.block, &request).unwrap().status,
        Status::Success
    );
}

#[test]
fn memory_is_capped_per_transaction_across_nested_calls() {
    let mut chain = VmChain::new();
    // Five contracts (nonces 0..5), each growing its memory to 15 MiB and then calling
    // the next one; each stores the status of its call under "status". Four of them fit
    // in TRANSACTION_MEMORY_BYTES_MAX (64 MiB); the fifth traps growing.
    let grow_then_call = |next: u64| {
        wat_contract(
            "(if (i32.lt_s (memory.grow (i32.const 239)) (i32.const 0)) (then unreachable)) \
             (i32.store8 (i32.const 300) (call $call (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 0) (i64.const 10000000))) \
             (call $storage_set (i32.const 210) (i32.const 6) (i32.const 300) (i32.const 1))",
            &format!(
                "(data (i32.const 100) \"{}\") (data (i32.const 200) \"x\") (data (i32.const 210) \"status\")",
                address_data(next)
            ),
        )
    };
    let addresses: Vec<_> =
        (0..5).map(|nonce| deploy(&mut chain, &grow_then_call(nonce + 1))).collect();
    let execution = chain.call_contract(bob(), addresses[0], "go", b"", GAS);
    assert_eq!(execution.status, Status::Success);
    let status = |index: usize| {
        chain
            .state
            .storage
            .get(&(addresses[index], b"status".to_vec()))
            .map(|value| value[0] as i32)
    };
    // The first three called a contract that succeeded; the fourth's callee trapped.
    assert_eq!(
        (0..5).map(status).collect::<Vec<_>>(),
        [
            Some(pactum_vm::call_status::SUCCESS),
            Some(pactum_vm::call_status::SUCCESS),
            Some(pactum_vm::call_status::SUCCESS),
            Some(pactum_vm::call_status::TRAPPED),
            None,
        ]
    );
    assert_still_serves(&mut chain);
}
