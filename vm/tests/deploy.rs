//! Deploy-time validation, the module cache and the precompiled artifacts.

mod common;

use common::{GAS, VmChain, alice, bob, wat_contract};
use pactum_types::hash::sha3_256;
use pactum_vm::{DeployError, Status, Vm, VmOptions};

fn module(fields: &str) -> Vec<u8> {
    wat::parse_str(format!("(module {fields})")).unwrap()
}

const EXPORTS: &str = "(memory (export \"memory\") 1) (func (export \"pactum_init\")) (func (export \"pactum_call\"))";

#[test]
fn every_abi_function_links_with_its_documented_signature() {
    let mut chain = VmChain::new();
    let deployed = chain.deploy_code(alice(), &wat_contract("", ""), &[]);
    assert_eq!(deployed.status, Status::Success);
}

#[test]
fn each_deploy_rule_has_its_own_error() {
    let vm = Vm::new(VmOptions::default()).unwrap();
    assert!(matches!(
        vm.validate(b"\0asm\x01\0\0\0garbage"),
        Err(DeployError::InvalidModule { .. })
    ));
    assert!(matches!(vm.validate(b"not wasm at all"), Err(DeployError::InvalidModule { .. })));
    assert_eq!(
        vm.validate(&module("(memory (export \"memory\") 1) (func (export \"pactum_init\"))")),
        Err(DeployError::MissingExport { name: "pactum_call", kind: "function () -> ()" })
    );
    assert_eq!(
        vm.validate(&module("(func (export \"pactum_init\")) (func (export \"pactum_call\"))")),
        Err(DeployError::MissingExport { name: "memory", kind: "memory" })
    );
    assert_eq!(
        vm.validate(&module(
            "(memory (export \"memory\") 1) (func (export \"pactum_init\")) (func (export \"pactum_call\") (param i32))"
        )),
        Err(DeployError::MissingExport { name: "pactum_call", kind: "function () -> ()" })
    );
    assert_eq!(
        vm.validate(&module(&format!("{EXPORTS} (func $boot) (start $boot)"))),
        Err(DeployError::StartFunction)
    );
    assert_eq!(
        vm.validate(&module("(memory (export \"memory\") 300) (func (export \"pactum_init\")) (func (export \"pactum_call\"))")),
        Err(DeployError::MemoryTooLarge { pages: 300, max: 256 })
    );
    assert_eq!(
        vm.validate(&module(&format!("{EXPORTS} (table 20000 funcref)"))),
        Err(DeployError::TableTooLarge { elements: 20_000, max: 10_000 })
    );
    assert_eq!(vm.validate(&module(EXPORTS)), Ok(()));
}

#[test]
fn non_deterministic_and_disabled_features_are_refused() {
    let vm = Vm::new(VmOptions::default()).unwrap();
    let cases = [
        // Threads: shared memory and atomics.
        "(memory (export \"memory\") 1 1 shared) (func (export \"pactum_init\")) (func (export \"pactum_call\"))",
        // SIMD (and with it relaxed SIMD).
        &format!("{EXPORTS} (func (result v128) (v128.const i32x4 0 0 0 0))"),
        &format!(
            "{EXPORTS} (func (param v128 v128 v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))"
        ),
        // Several memories.
        &format!("{EXPORTS} (memory 1)"),
        // Tail calls.
        &format!("{EXPORTS} (func $f (return_call $f))"),
    ];
    for case in cases {
        let code = wat::parse_str(format!("(module {case})")).unwrap();
        assert!(
            matches!(vm.validate(&code), Err(DeployError::InvalidModule { .. })),
            "accepted: {case}"
        );
    }
}

#[test]
fn the_rust_contracts_pass_validation() {
    let vm = Vm::new(VmOptions::default()).unwrap();
    for code in [
        pactum_contract_wasm::TOKEN,
        pactum_contract_wasm::SUPPLY_CHAIN,
        pactum_contract_wasm::HEALTHCARE,
    ] {
        assert_eq!(vm.validate(code), Ok(()));
    }
}

#[test]
fn deploying_charges_per_code_byte_and_too_little_gas_deploys_nothing() {
    let mut chain = VmChain::new();
    let code = pactum_contract_wasm::TOKEN;
    let init = pactum_sdk::Encode::encode(&(String::from("T"),));
    let request = pactum_vm::DeployRequest {
        deployer: alice(),
        nonce: 0,
        code,
        init_input: &init,
        gas_limit: 10_000,
    };
    let starved = chain.vm.deploy(chain.state.clone(), &chain.block, &request).unwrap();
    assert_eq!((starved.status, starved.gas_used), (Status::OutOfGas, 10_000));
    assert!(starved.write_set.is_empty());
    let deployed = chain.deploy_code(alice(), code, &init);
    let schedule = pactum_types::gas::GasSchedule::V1;
    assert!(
        deployed.gas_used > schedule.deploy_base + schedule.deploy_per_byte * code.len() as u64
    );
    let registered = &deployed.write_set.contracts[&deployed.contract];
    assert_eq!(registered.code_hash, sha3_256(code));
    assert_eq!(deployed.contract, pactum_vm::contract_address(&alice(), 0));
}

#[test]
fn a_restarted_vm_loads_precompiled_artifacts_instead_of_compiling() {
    let directory = tempfile::tempdir().unwrap();
    let options = VmOptions {
        artifact_directory: Some(directory.path().to_path_buf()),
        ..VmOptions::default()
    };
    let mut chain = VmChain::with_vm(Vm::new(options.clone()).unwrap());
    let init = pactum_sdk::Encode::encode(&(String::from("T"),));
    let token = chain.deploy_code(alice(), pactum_contract_wasm::TOKEN, &init).contract;
    assert_eq!(chain.vm.cache_stats().compiled, 1);
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 1);

    // "Restart": a new VM over the same state and artifact directory.
    let state = chain.state.clone();
    let mut restarted = VmChain::with_vm(Vm::new(options.clone()).unwrap());
    restarted.state = state.clone();
    let input = pactum_sdk::Encode::encode(&(common::to_sdk(bob()), 5u128));
    let from_artifact = restarted.call_contract(alice(), token, "mint", &input, GAS);
    assert_eq!(from_artifact.status, Status::Success);
    let stats = restarted.vm.cache_stats();
    assert_eq!((stats.compiled, stats.loaded_from_artifact), (0, 1));
    // The loaded module behaves exactly like the compiled one.
    assert_eq!(chain.call_contract(alice(), token, "mint", &input, GAS), from_artifact);

    // A corrupted artifact is detected and the module recompiled.
    for entry in std::fs::read_dir(directory.path()).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    let mut again = VmChain::with_vm(Vm::new(options).unwrap());
    again.state = state;
    assert_eq!(again.call_contract(alice(), token, "mint", &input, GAS).status, Status::Success);
    let stats = again.vm.cache_stats();
    assert_eq!((stats.compiled, stats.loaded_from_artifact), (1, 0));
}

#[test]
fn the_module_cache_is_bounded_and_evicts_the_least_recently_used() {
    let options = VmOptions { module_cache_entries: 2, ..VmOptions::default() };
    let mut chain = VmChain::with_vm(Vm::new(options).unwrap());
    let contracts: Vec<_> = (0..3)
        .map(|index| {
            // Three different modules (different data), so three code hashes.
            let code = wat_contract("", &format!("(data (i32.const 0) \"{index}\")"));
            chain.deploy_code(alice(), &code, &[]).contract
        })
        .collect();
    let stats = chain.vm.cache_stats();
    assert_eq!((stats.entries, stats.evicted, stats.compiled), (2, 1, 3));
    // The first module was evicted; calling it compiles it again from state.
    assert_eq!(chain.call_contract(bob(), contracts[0], "x", b"", GAS).status, Status::Success);
    let stats = chain.vm.cache_stats();
    assert_eq!((stats.entries, stats.compiled), (2, 4));
    assert_eq!(chain.call_contract(bob(), contracts[0], "x", b"", GAS).status, Status::Success);
    assert_eq!(chain.vm.cache_stats().compiled, 4);
}

#[test]
fn a_module_too_large_to_compile_cheaply_is_refused_before_compilation() {
    // Issue 9: deploy validation capped no function or local count, so a module within
    // the code size limit could make every validator compile for a long time.
    use pactum_types::limits;
    let vm = Vm::new(VmOptions::default()).unwrap();
    let many_locals =
        format!("{EXPORTS} (func (local i64) (local i64) {})", "(local i32) ".repeat(2_000));
    assert_eq!(
        vm.validate(&module(&many_locals)),
        Err(DeployError::FunctionTooLarge {
            index: 2,
            what: "declares locals:",
            count: 2_002,
            max: limits::CONTRACT_FUNCTION_LOCALS_MAX,
        })
    );
    let functions = format!("{EXPORTS} {}", "(func)".repeat(limits::CONTRACT_FUNCTIONS_MAX));
    assert_eq!(
        vm.validate(&module(&functions)),
        Err(DeployError::TooMany {
            what: "functions",
            count: limits::CONTRACT_FUNCTIONS_MAX as u64 + 2,
            max: limits::CONTRACT_FUNCTIONS_MAX as u64,
        })
    );
    let globals = format!("{EXPORTS} {}", "(global i32 (i32.const 0))".repeat(300));
    assert!(matches!(
        vm.validate(&module(&globals)),
        Err(DeployError::TooMany { what: "globals", count: 300, .. })
    ));
    let tables = format!("{EXPORTS} (table 1 funcref) (table 1 funcref)");
    assert!(matches!(
        vm.validate(&module(&tables)),
        Err(DeployError::TooMany { what: "tables", count: 2, .. })
    ));
    let segments = format!("{EXPORTS} {}", "(data (i32.const 0) \"x\")".repeat(1_100));
    assert!(matches!(
        vm.validate(&module(&segments)),
        Err(DeployError::TooMany { what: "data segments", count: 1_100, .. })
    ));
    let big_body = format!("{EXPORTS} (func {})", "(drop (i32.const 0)) ".repeat(70_000));
    assert!(matches!(
        vm.validate(&module(&big_body)),
        Err(DeployError::FunctionTooLarge { index: 2, what: "has a body of bytes", .. })
    ));
    // Every sample contract stays well inside the limits (they deploy in the other tests).
}

#[test]
fn a_deploy_that_does_not_succeed_leaves_no_compiled_module_behind() {
    // Issue 9: compiled artifacts were kept when the deploy reverted, so anyone could
    // fill a validator's disk and cache with modules no contract uses.
    let directory = tempfile::tempdir().unwrap();
    let options = VmOptions {
        artifact_directory: Some(directory.path().to_path_buf()),
        ..VmOptions::default()
    };
    let mut chain = VmChain::with_vm(Vm::new(options).unwrap());
    let trapping = module(
        "(memory (export \"memory\") 1) (func (export \"pactum_init\") unreachable) (func (export \"pactum_call\"))",
    );
    let deployed = chain.deploy_code(alice(), &trapping, &[]);
    assert!(matches!(deployed.status, Status::Trapped { .. }), "{:?}", deployed.status);
    assert_eq!(chain.vm.cache_stats().compiled, 1, "it was compiled to run its init");
    assert_eq!(chain.vm.cache_stats().entries, 0, "and is no longer cached");
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 0, "nor on disk");
    // The same code deployed successfully keeps its module.
    let good = module(EXPORTS);
    assert_eq!(chain.deploy_code(bob(), &good, &[]).status, Status::Success);
    assert_eq!(chain.vm.cache_stats().entries, 1);
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 1);
}
