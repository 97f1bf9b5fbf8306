//! The gas schedule and the gas of fixed WAT calls, pinned in `tests/golden/gas.txt`.
//!
//! Any change of the schedule, of the fuel wasmtime charges, or of the host charges
//! changes receipts, and so must be deliberate: a new schedule version. Refresh with
//! `PACTUM_UPDATE_GOLDEN=1 cargo test --release -p pactum-vm --test gas_golden`.
//! (WAT, not the Rust contracts, whose code changes with the compiler.)

mod common;

use std::fmt::Write;
use std::path::PathBuf;

use common::{GAS, VmChain, alice, bob, wat_contract};
use pactum_types::gas::GasSchedule;

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("PACTUM_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} is missing; run with PACTUM_UPDATE_GOLDEN=1", path.display())
    });
    assert!(
        expected == actual,
        "{} differs from the gas this build charges.\n--- golden\n{expected}\n--- actual\n{actual}\n\
         If the change is intended, add a new gas schedule version and refresh with PACTUM_UPDATE_GOLDEN=1.",
        path.display()
    );
}

#[test]
fn gas_schedule_and_call_costs_match_the_golden_file() {
    let mut golden = String::from("# gas schedule\n");
    writeln!(golden, "{:#?}", GasSchedule::V1).unwrap();
    golden.push_str("# gas used by fixed calls (WAT contracts)\n");

    let loop_1000 = "(local $n i32) (loop $l (local.set $n (i32.add (local.get $n) (i32.const 1))) \
                     (br_if $l (i32.lt_u (local.get $n) (i32.const 1000))))";
    let cases: [(&str, String); 8] = [
        ("empty_call", String::new()),
        ("loop_1000_iterations", loop_1000.to_string()),
        ("storage_set_8_byte_key_64_byte_value", "(call $storage_set (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 64))".into()),
        ("storage_get_absent_8_byte_key", "(drop (call $storage_get (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 64)))".into()),
        ("event_5_byte_topic_100_bytes", "(call $event_emit (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 100))".into()),
        ("sha3_256_of_1000_bytes", "(call $sha3_256 (i32.const 0) (i32.const 1000) (i32.const 0))".into()),
        ("ed25519_verify_32_bytes", "(drop (call $ed25519_verify (i32.const 0) (i32.const 0) (i32.const 32) (i32.const 0)))".into()),
        ("revert_10_bytes", "(call $revert (i32.const 0) (i32.const 10))".into()),
    ];
    let mut chain = VmChain::new();
    for (name, body) in cases {
        let contract = chain.deploy_code(alice(), &wat_contract(&body, ""), &[]).contract;
        let execution = chain.call_contract(bob(), contract, "run", b"", GAS);
        writeln!(golden, "{name} {:?} {}", execution.status, execution.gas_used).unwrap();
    }
    let deployed = chain.deploy_code(alice(), &wat_contract("", ""), &[]);
    writeln!(
        golden,
        "deploy_empty_contract_{}_bytes {}",
        wat_contract("", "").len(),
        deployed.gas_used
    )
    .unwrap();
    check_golden("gas.txt", &golden);
}
