//! A contract written in C, built with clang and wasm-ld (no Rust SDK), deploys and runs
//! in the VM exactly as `docs/contract-abi.md` says another toolchain's module must look.
//! `scripts/setup.sh` installs clang and lld; without them this test fails, it does not
//! skip.

mod common;

use std::path::Path;
use std::process::Command;

use common::{VmChain, alice, bob};
use pactum_vm::Status;

/// Builds `contracts/c/counter.c` with the command its header gives.
fn build_counter(out: &Path) -> Vec<u8> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/c/counter.c");
    let wasm = out.join("counter.wasm");
    let output = Command::new("clang")
        .args([
            "--target=wasm32-unknown-unknown",
            "-O2",
            "-nostdlib",
            "-fno-builtin",
            "-Wl,--no-entry",
            "-Wl,--export=pactum_init",
            "-Wl,--export=pactum_call",
            "-Wl,--strip-all",
            "-o",
        ])
        .arg(&wasm)
        .arg(&source)
        .output()
        .expect("clang runs (scripts/setup.sh installs clang and lld)");
    assert!(
        output.status.success(),
        "clang could not build the C contract (scripts/setup.sh installs clang and lld):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(wasm).unwrap()
}

fn counter(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

#[test]
fn a_c_contract_built_with_clang_deploys_and_counts_per_caller() {
    let directory = tempfile::tempdir().unwrap();
    let code = build_counter(directory.path());
    let mut chain = VmChain::new();
    let deployed = chain.deploy_code(alice(), &code, &[]);
    assert_eq!(deployed.status, Status::Success, "{:?}", deployed.status);
    let contract = deployed.contract;
    for expected in 1..=3 {
        let execution = chain.call_contract(alice(), contract, "increment", &[], 1_000_000);
        assert_eq!(execution.status, Status::Success, "{:?}", execution.status);
        assert_eq!(counter(&execution.return_data), expected);
    }
    let bob_count = chain.call_contract(bob(), contract, "get", &[], 1_000_000);
    assert_eq!(counter(&bob_count.return_data), 0, "each caller has its own counter");
    let alice_count = chain.call_contract(alice(), contract, "get", &[], 1_000_000);
    assert_eq!(counter(&alice_count.return_data), 3);
    let unknown = chain.call_contract(alice(), contract, "reset", &[], 1_000_000);
    assert!(
        matches!(&unknown.status, Status::Reverted { reason } if reason == "unknown method"),
        "{:?}",
        unknown.status
    );
}
