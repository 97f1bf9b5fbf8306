//! Determinism: NaNs are canonical, and the same sequence of calls run twice in fresh
//! engines gives byte-identical receipts and state.

mod common;

use common::{GAS, VmChain, alice, bob, wat_contract};
use pactum_types::{Encode, Hash};
use pactum_vm::Status;

/// Stores the bit patterns of NaN-producing operations under "nan":
/// f32 0/0, f32 (NaN with payload + 1), f64 sqrt(-1), f64 (negative NaN * 2), and
/// a f32 -> f64 promotion of a signalling NaN.
fn nan_contract() -> Vec<u8> {
    wat_contract(
        "(i32.store (i32.const 0) (i32.reinterpret_f32 (f32.div (f32.const 0) (f32.const 0)))) \
         (i32.store (i32.const 4) (i32.reinterpret_f32 (f32.add (f32.reinterpret_i32 (i32.const 0x7fa00001)) (f32.const 1)))) \
         (i64.store (i32.const 8) (i64.reinterpret_f64 (f64.sqrt (f64.const -1)))) \
         (i64.store (i32.const 16) (i64.reinterpret_f64 (f64.mul (f64.reinterpret_i64 (i64.const 0xfff8000000000123)) (f64.const 2)))) \
         (i64.store (i32.const 24) (i64.reinterpret_f64 (f64.promote_f32 (f32.reinterpret_i32 (i32.const 0xff800001))))) \
         (call $storage_set (i32.const 100) (i32.const 3) (i32.const 0) (i32.const 32)) \
         (call $return_set (i32.const 0) (i32.const 32))",
        "(data (i32.const 100) \"nan\")",
    )
}

#[test]
fn every_nan_has_the_canonical_bit_pattern() {
    let mut chain = VmChain::new();
    let contract = chain.deploy_code(alice(), &nan_contract(), &[]).contract;
    let data = chain.call_contract(bob(), contract, "nan", b"", GAS).return_data;
    let f32_bits = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
    let f64_bits = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
    assert_eq!(f32_bits(0), 0x7fc0_0000);
    assert_eq!(f32_bits(4), 0x7fc0_0000);
    assert_eq!(f64_bits(8), 0x7ff8_0000_0000_0000);
    assert_eq!(f64_bits(16), 0x7ff8_0000_0000_0000);
    assert_eq!(f64_bits(24), 0x7ff8_0000_0000_0000);
}

/// A mixed workload: the sample contracts' scenarios (calls between contracts included), NaN arithmetic, and hostile
/// calls (out of gas, trap, revert). Returns every receipt's encoding and the final state.
fn workload() -> (Vec<Vec<u8>>, pactum_vm::MemoryState) {
    let mut chain = VmChain::new();
    pactum_contract_token::scenarios::mint_transfer_and_balances(&mut chain);
    pactum_contract_token::scenarios::approve_and_transfer_from(&mut chain);
    pactum_contract_supply_chain::scenarios::product_journey_with_full_provenance(&mut chain);
    pactum_contract_healthcare::scenarios::consent_governs_access_and_every_access_is_audited(
        &mut chain,
    );
    let nan = chain.deploy_code(alice(), &nan_contract(), &[]).contract;
    chain.call_contract(bob(), nan, "nan", b"", GAS);
    let spin = chain.deploy_code(alice(), &wat_contract("(loop $l (br $l))", ""), &[]).contract;
    assert_eq!(chain.call_contract(bob(), spin, "spin", b"", 123_457).status, Status::OutOfGas);
    let recursion = "(func $down (call $down))";
    let deep = chain.deploy_code(alice(), &wat_contract("(call $down)", recursion), &[]).contract;
    assert!(matches!(
        chain.call_contract(bob(), deep, "deep", b"", GAS).status,
        Status::Trapped { .. }
    ));
    let receipts = chain
        .executions
        .iter()
        .enumerate()
        .map(|(index, execution)| execution.receipt(Hash([index as u8; 32])).to_bytes())
        .collect();
    (receipts, chain.state.as_ref().clone())
}

#[test]
fn the_same_calls_in_fresh_engines_give_identical_receipts_and_state() {
    let (first_receipts, first_state) = workload();
    let (second_receipts, second_state) = workload();
    assert!(first_receipts.len() > 40);
    assert_eq!(first_receipts, second_receipts);
    assert_eq!(first_state, second_state);
}
