//! The host ABI seen from a contract: identities, block context, storage namespacing,
//! hashing, signatures, and the per-byte gas schedule.

mod common;

use common::{GAS, VmChain, alice, bob, wat_contract};
use pactum_types::crypto::Keypair;
use pactum_types::gas::GasSchedule;
use pactum_types::hash::sha3_256;
use pactum_vm::{BlockContext, Status};

#[test]
fn caller_own_address_and_block_context_come_from_the_call_and_the_header() {
    let mut chain = VmChain::new();
    // Return data: caller (32) || self (32) || height (8) || timestamp (8).
    let code = wat_contract(
        "(call $caller (i32.const 0)) (call $self_address (i32.const 32)) \
         (i64.store (i32.const 64) (call $block_height)) (i64.store (i32.const 72) (call $block_timestamp_ms)) \
         (call $return_set (i32.const 0) (i32.const 80))",
        "",
    );
    let contract = chain.deploy_code(alice(), &code, &[]).contract;
    chain.block =
        BlockContext { height: 77, timestamp_ms: 1_767_225_600_123, ..BlockContext::default() };
    let execution = chain.call_contract(bob(), contract, "whoami", b"", GAS);
    let data = &execution.return_data;
    assert_eq!(&data[..32], &bob().0);
    assert_eq!(&data[32..64], &contract.0);
    assert_eq!(u64::from_le_bytes(data[64..72].try_into().unwrap()), 77);
    assert_eq!(u64::from_le_bytes(data[72..80].try_into().unwrap()), 1_767_225_600_123);
}

#[test]
fn input_and_method_reach_the_contract_and_return_data_comes_back() {
    let mut chain = VmChain::new();
    let code = wat_contract(
        "(local $m i32) (local.set $m (call $method_size)) (call $method_copy (i32.const 0)) \
         (call $input_copy (local.get $m)) \
         (call $return_set (i32.const 0) (i32.add (local.get $m) (call $input_size)))",
        "",
    );
    let contract = chain.deploy_code(alice(), &code, &[]).contract;
    let execution = chain.call_contract(bob(), contract, "echo", b"-payload", GAS);
    assert_eq!(execution.return_data, b"echo-payload");
}

#[test]
fn storage_is_namespaced_per_contract() {
    let mut chain = VmChain::new();
    // Each contract stores its input under the same key "k" and returns what it read first.
    let code = wat_contract(
        "(local $found i32) \
         (local.set $found (call $storage_get (i32.const 0) (i32.const 1) (i32.const 100) (i32.const 100))) \
         (call $input_copy (i32.const 200)) \
         (call $storage_set (i32.const 0) (i32.const 1) (i32.const 200) (call $input_size)) \
         (if (i32.ge_s (local.get $found) (i32.const 0)) (then (call $return_set (i32.const 100) (local.get $found))))",
        "(data (i32.const 0) \"k\")",
    );
    let first = chain.deploy_code(alice(), &code, &[]).contract;
    let second = chain.deploy_code(alice(), &code, &[]).contract;
    assert_ne!(first, second);
    assert!(chain.call_contract(bob(), first, "put", b"one", GAS).return_data.is_empty());
    assert!(chain.call_contract(bob(), second, "put", b"two", GAS).return_data.is_empty());
    assert_eq!(chain.call_contract(bob(), first, "put", b"three", GAS).return_data, b"one");
    assert_eq!(chain.call_contract(bob(), second, "put", b"four", GAS).return_data, b"two");
    assert_eq!(chain.state.storage.get(&(first, b"k".to_vec())), Some(&b"three".to_vec()));
}

#[test]
fn storage_get_reports_the_full_length_when_the_buffer_is_short_and_remove_deletes() {
    let mut chain = VmChain::new();
    let code = wat_contract(
        "(call $storage_set (i32.const 0) (i32.const 1) (i32.const 10) (i32.const 11)) \
         (i32.store (i32.const 100) (call $storage_get (i32.const 0) (i32.const 1) (i32.const 108) (i32.const 4))) \
         (call $storage_remove (i32.const 0) (i32.const 1)) \
         (i32.store (i32.const 104) (call $storage_get (i32.const 0) (i32.const 1) (i32.const 108) (i32.const 4))) \
         (call $return_set (i32.const 100) (i32.const 12))",
        "(data (i32.const 0) \"k\") (data (i32.const 10) \"hello world\")",
    );
    let contract = chain.deploy_code(alice(), &code, &[]).contract;
    let execution = chain.call_contract(bob(), contract, "x", b"", GAS);
    let data = execution.return_data;
    assert_eq!(i32::from_le_bytes(data[0..4].try_into().unwrap()), 11);
    assert_eq!(i32::from_le_bytes(data[4..8].try_into().unwrap()), pactum_vm::STORAGE_ABSENT);
    assert_eq!(&data[8..12], b"hell");
    assert_eq!(execution.write_set.storage.get(&(contract, b"k".to_vec())), Some(&None));
}

#[test]
fn sha3_and_ed25519_verify_match_pactum_types() {
    let mut chain = VmChain::new();
    // Input: key (32) || signature (64) || message. Returns sha3(message) || verify result.
    let code = wat_contract(
        "(local $length i32) (local.set $length (i32.sub (call $input_size) (i32.const 96))) \
         (call $input_copy (i32.const 0)) \
         (call $sha3_256 (i32.const 96) (local.get $length) (i32.const 4096)) \
         (i32.store8 (i32.const 4128) (call $ed25519_verify (i32.const 0) (i32.const 96) (local.get $length) (i32.const 32))) \
         (call $return_set (i32.const 4096) (i32.const 33))",
        "",
    );
    let contract = chain.deploy_code(alice(), &code, &[]).contract;
    let key = Keypair::from_seed(&[5; 32]);
    let message = b"ship lot-7 to Madrid";
    let signature = key.sign(&[], message);
    let input =
        |signature: &[u8; 64]| [&key.public_key().0[..], &signature[..], &message[..]].concat();
    let valid = chain.call_contract(bob(), contract, "check", &input(&signature.0), GAS);
    assert_eq!(&valid.return_data[..32], &sha3_256(message).0);
    assert_eq!(valid.return_data[32], 1);
    let mut forged = signature.0;
    forged[3] ^= 1;
    assert_eq!(
        chain.call_contract(bob(), contract, "check", &input(&forged), GAS).return_data[32],
        0
    );
}

#[test]
fn host_calls_charge_base_plus_per_byte_from_the_schedule() {
    let mut chain = VmChain::new();
    // Hashes `input_size` bytes of (zero) memory: same instructions whatever the size.
    let code = wat_contract("(call $sha3_256 (i32.const 0) (call $input_size) (i32.const 0))", "");
    let contract = chain.deploy_code(alice(), &code, &[]).contract;
    let small = chain.call_contract(bob(), contract, "h", &[], GAS).gas_used;
    let large = chain.call_contract(bob(), contract, "h", &[0; 1000], GAS).gas_used;
    assert_eq!(large - small, 1000 * GasSchedule::V1.sha3_per_byte);

    // A write of the same bytes costs more than a read of them.
    let write = wat_contract(
        "(call $storage_set (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 64))",
        "",
    );
    let read = wat_contract(
        "(drop (call $storage_get (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 64)))",
        "",
    );
    let write = chain.deploy_code(alice(), &write, &[]).contract;
    let read = chain.deploy_code(alice(), &read, &[]).contract;
    let write_gas = chain.call_contract(bob(), write, "w", b"", GAS).gas_used;
    let read_gas = chain.call_contract(bob(), read, "r", b"", GAS).gas_used;
    assert!(
        write_gas > read_gas + GasSchedule::V1.storage_write_base / 2,
        "{write_gas} vs {read_gas}"
    );
}

#[test]
fn revert_reasons_reach_the_receipt() {
    let mut chain = VmChain::new();
    let code = wat_contract(
        "(call $revert (i32.const 0) (i32.const 12))",
        "(data (i32.const 0) \"out of stock\")",
    );
    let contract = chain.deploy_code(alice(), &code, &[]).contract;
    let execution = chain.call_contract(bob(), contract, "x", b"", GAS);
    assert_eq!(execution.status, Status::Reverted { reason: String::from("out of stock") });
    let receipt = execution.receipt(pactum_types::Hash::ZERO);
    assert_eq!(
        receipt.status,
        pactum_types::ReceiptStatus::Reverted { reason: String::from("out of stock") }
    );
    assert_eq!(receipt.gas_used, execution.gas_used);
}

#[test]
fn a_long_revert_reason_is_cut_not_turned_into_a_trap() {
    let mut chain = VmChain::new();
    let code = wat_contract("(call $revert (i32.const 0) (i32.const 5000))", "");
    let contract = chain.deploy_code(alice(), &code, &[]).contract;
    let execution = chain.call_contract(bob(), contract, "x", b"", GAS);
    let Status::Reverted { reason } = &execution.status else { panic!("{:?}", execution.status) };
    assert_eq!(reason.len(), pactum_types::limits::REASON_BYTES_MAX);
    // The receipt still encodes and decodes.
    let receipt = execution.receipt(pactum_types::Hash::ZERO);
    let bytes = pactum_types::Encode::to_bytes(&receipt);
    assert_eq!(<pactum_types::Receipt as pactum_types::Decode>::from_bytes(&bytes), Ok(receipt));
}
