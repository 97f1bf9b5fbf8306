//! Token contract throughput in the VM: transfers per second including instantiation,
//! host calls and the write overlay; metered versus unmetered; instantiation latency.
//!
//! Run with `cargo bench -p pactum-vm --bench token`. Figures, not assertions: see
//! `docs/benchmarks.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pactum_sdk::Encode;
use pactum_types::Address;
use pactum_vm::{
    BlockContext, CallRequest, DeployRequest, INSTANCE_POOL_SLOTS_DEFAULT, MemoryState, Status, Vm,
    VmOptions,
};

const GAS: u64 = 10_000_000;

fn issuer() -> Address {
    Address([1; 32])
}

/// A VM with the token deployed and the issuer holding a large balance.
fn setup(metering: bool, instance_pool_slots: u32) -> (Vm, Arc<MemoryState>, Address) {
    let vm = Vm::new(VmOptions { metering, instance_pool_slots, ..VmOptions::default() })
        .expect("engine builds");
    let mut state = MemoryState::new();
    let block =
        BlockContext { height: 1, timestamp_ms: 1_767_225_600_000, ..BlockContext::default() };
    let init = (String::from("Bench Dollar"),).encode();
    let request = DeployRequest {
        deployer: issuer(),
        nonce: 0,
        code: pactum_contract_wasm::TOKEN,
        init_input: &init,
        gas_limit: GAS,
    };
    let deployed = vm.deploy(Arc::new(state.clone()), &block, &request).expect("deploy runs");
    assert_eq!(deployed.status, Status::Success);
    state.apply(&deployed.write_set);
    let token = deployed.contract;
    let mint = (pactum_sdk::Address(issuer().0), 1_000_000_000_000u128).encode();
    let request = CallRequest {
        caller: issuer(),
        contract: token,
        method: "mint",
        input: &mint,
        gas_limit: GAS,
    };
    let minted = vm.call(Arc::new(state.clone()), &block, &request).expect("mint runs");
    assert_eq!(minted.status, Status::Success);
    state.apply(&minted.write_set);
    (vm, Arc::new(state), token)
}

fn transfers(criterion: &mut Criterion) {
    let block =
        BlockContext { height: 2, timestamp_ms: 1_767_225_601_000, ..BlockContext::default() };
    let transfer = (pactum_sdk::Address([2; 32]), 1u128).encode();
    let mut group = criterion.benchmark_group("token_transfer");
    group.throughput(Throughput::Elements(1));
    for (name, metering, instance_pool_slots) in [
        ("metered", true, INSTANCE_POOL_SLOTS_DEFAULT),
        ("unmetered", false, INSTANCE_POOL_SLOTS_DEFAULT),
        ("metered_on_demand_allocator", true, 0),
    ] {
        let (vm, state, token) = setup(metering, instance_pool_slots);
        let request = CallRequest {
            caller: issuer(),
            contract: token,
            method: "transfer",
            input: &transfer,
            gas_limit: GAS,
        };
        let check = vm.call(state.clone(), &block, &request).expect("transfer runs");
        assert_eq!(check.status, Status::Success);
        if metering {
            println!("token transfer gas used: {}", check.gas_used);
        }
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                let execution =
                    vm.call(state.clone(), &block, black_box(&request)).expect("transfer runs");
                black_box(execution)
            })
        });
    }
    group.finish();
}

fn instantiation(criterion: &mut Criterion) {
    let block =
        BlockContext { height: 2, timestamp_ms: 1_767_225_601_000, ..BlockContext::default() };
    let (vm, state, token) = setup(true, INSTANCE_POOL_SLOTS_DEFAULT);
    let mut group = criterion.benchmark_group("instantiation");
    // The cheapest call of the token: instantiate, dispatch to an unknown method, revert.
    let request =
        CallRequest { caller: issuer(), contract: token, method: "", input: &[], gas_limit: GAS };
    group.bench_function("token_instantiate_and_revert", |bencher| {
        bencher.iter(|| black_box(vm.call(state.clone(), &block, &request).expect("call runs")))
    });
    // An empty contract: instantiation and the call itself, nothing else.
    let empty = wat::parse_str(
        "(module (memory (export \"memory\") 1) (func (export \"pactum_init\")) (func (export \"pactum_call\")))",
    )
    .expect("WAT parses");
    let request = DeployRequest {
        deployer: issuer(),
        nonce: 1,
        code: &empty,
        init_input: &[],
        gas_limit: GAS,
    };
    let deployed = vm.deploy(state.clone(), &block, &request).expect("deploy runs");
    let mut with_empty = state.as_ref().clone();
    with_empty.apply(&deployed.write_set);
    let with_empty = Arc::new(with_empty);
    let request = CallRequest {
        caller: issuer(),
        contract: deployed.contract,
        method: "x",
        input: &[],
        gas_limit: GAS,
    };
    group.bench_function("empty_contract_call", |bencher| {
        bencher
            .iter(|| black_box(vm.call(with_empty.clone(), &block, &request).expect("call runs")))
    });
    // Cold path: validate and compile the token from bytes (what the artifact store saves).
    group.sample_size(10);
    group.bench_function("token_validate_and_compile", |bencher| {
        bencher.iter(|| {
            let vm = Vm::new(VmOptions::default()).expect("engine builds");
            let request = DeployRequest {
                deployer: issuer(),
                nonce: 0,
                code: pactum_contract_wasm::TOKEN,
                init_input: &(String::from("T"),).encode(),
                gas_limit: GAS,
            };
            black_box(
                vm.deploy(Arc::new(MemoryState::new()), &block, &request).expect("deploy runs"),
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = transfers, instantiation
}
criterion_main!(benches);
