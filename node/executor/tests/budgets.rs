//! What one block may use, whatever its primary put in it (issue 9's second and third
//! findings: no block gas limit, no bound on what a block writes, and an unchecked block
//! time). Every validator applies the same rules in the same order, so the receipts and
//! the state root agree.

mod common;

use common::{Account, GENESIS_TIME_MS, chain_id, next_block_at, reason, status_name};
use pactum_executor::{BlockBudget, Executor, ExecutorOptions};
use pactum_storage::Store;
use pactum_types::{Address, Payload, limits};
use pactum_vm::VmOptions;

fn open_with(directory: &std::path::Path, budget: BlockBudget) -> Executor {
    let store = Store::open(directory.join("db")).expect("store opens");
    let options = ExecutorOptions {
        vm: VmOptions {
            artifact_directory: Some(directory.join("artifacts")),
            ..VmOptions::default()
        },
        budget,
        ..ExecutorOptions::new(chain_id())
    };
    Executor::open(store, options).expect("executor opens")
}

/// A contract whose call does `body` `count` times; `body` may use `$i` (the round) and
/// the imports `storage_set` and `event_emit`.
fn looping_contract(count: u32, body: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
  (import "pactum_v1" "storage_set" (func $storage_set (param i32 i32 i32 i32)))
  (import "pactum_v1" "event_emit" (func $event_emit (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "pactum_init"))
  (func (export "pactum_call")
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
        {body}
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))"#
    );
    wat::parse_str(&text).expect("the WAT parses")
}

/// Writes 64 KiB under a 4-byte key `$i`, `count` times.
fn writer(count: u32) -> Vec<u8> {
    looping_contract(
        count,
        "(i32.store (i32.const 0) (local.get $i))
         (call $storage_set (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 65536))",
    )
}

/// Emits a 4 KiB event, `count` times.
fn emitter(count: u32) -> Vec<u8> {
    looping_contract(
        count,
        "(call $event_emit (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4096))",
    )
}

fn call(account: &mut Account, contract: Address, gas_limit: u64) -> pactum_types::Transaction {
    account.call(contract, "run", Vec::new(), gas_limit)
}

#[test]
fn a_block_holds_transactions_up_to_its_gas_limit_whatever_the_primary_cut() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = common::open(directory.path());
    let mut sender = Account::new(1);
    let limit = 400_000_000;
    // A faulty primary put three transactions of 400 million gas each into one block: over
    // the default block gas limit of a billion. Calls to no contract: each is refused by
    // the VM (a revert) once it is admitted to the block.
    let nowhere = Address([0x42; 32]);
    let transactions: Vec<_> = (0..3).map(|_| call(&mut sender, nowhere, limit)).collect();
    let block = next_block_at(&executor, transactions, GENESIS_TIME_MS + 500);
    let executed = executor.execute_block(&block).unwrap();
    let statuses: Vec<&str> =
        executed.receipts.iter().map(|receipt| status_name(&receipt.status)).collect();
    assert_eq!(statuses, ["reverted", "reverted", "invalid"]);
    assert!(
        reason(&executed.receipts[2].status).contains("does not fit in the block"),
        "{:?}",
        executed.receipts[2].status
    );
    assert!(limits::BLOCK_GAS_DEFAULT < 3 * limit);
    // The refused transaction did not use its nonce: the sender's next nonce is 2.
    assert_eq!(executor.next_nonce(&sender.keypair.public_key()).unwrap(), 2);
}

/// Deploys `code` under `budget`, then runs one block in which two accounts call it;
/// the executor, the contract, the second caller and that block.
fn two_calls_in_one_block(
    directory: &std::path::Path,
    budget: BlockBudget,
    code: Vec<u8>,
) -> (Executor, Address, Account, pactum_executor::ExecutedBlock) {
    let mut executor = open_with(directory, budget);
    let mut deployer = Account::new(1);
    let contract = deployer.next_contract_address();
    let deploy =
        deployer.sign(20_000_000, Payload::DeployContract { code, init_input: Vec::new() });
    let block = next_block_at(&executor, vec![deploy], GENESIS_TIME_MS + 500);
    assert_eq!(status_name(&executor.execute_block(&block).unwrap().receipts[0].status), "success");
    let (mut first, mut second) = (Account::new(2), Account::new(3));
    let transactions =
        vec![call(&mut first, contract, 20_000_000), call(&mut second, contract, 20_000_000)];
    let block = next_block_at(&executor, transactions, GENESIS_TIME_MS + 1_000);
    let executed = executor.execute_block(&block).unwrap();
    (executor, contract, second, executed)
}

#[test]
fn a_transaction_past_the_blocks_state_budget_is_reverted_and_charged() {
    let directory = tempfile::tempdir().unwrap();
    let budget = BlockBudget { state_bytes_max: 1024 * 1024, ..BlockBudget::default() };
    // Each call writes 10 x 64 KiB (640 KiB): two do not fit in a 1 MiB block.
    let (mut executor, contract, mut second, executed) =
        two_calls_in_one_block(directory.path(), budget, writer(10));
    assert_eq!(status_name(&executed.receipts[0].status), "success");
    assert_eq!(status_name(&executed.receipts[1].status), "reverted");
    assert!(reason(&executed.receipts[1].status).contains("state budget"));
    assert!(executed.receipts[1].gas_used > 0, "the work done is charged");
    assert_eq!(executor.next_nonce(&second.keypair.public_key()).unwrap(), 1, "the nonce is used");
    // In the next block it fits.
    let block = next_block_at(
        &executor,
        vec![call(&mut second, contract, 20_000_000)],
        GENESIS_TIME_MS + 1_500,
    );
    assert_eq!(status_name(&executor.execute_block(&block).unwrap().receipts[0].status), "success");
}

#[test]
fn a_transaction_past_the_blocks_receipt_budget_is_reverted() {
    let directory = tempfile::tempdir().unwrap();
    let budget = BlockBudget { receipt_bytes_max: 64 * 1024, ..BlockBudget::default() };
    // Each call emits 12 events of 4 KiB (48 KiB of receipt): two do not fit in 64 KiB.
    let (_, _, _, executed) = two_calls_in_one_block(directory.path(), budget, emitter(12));
    assert_eq!(status_name(&executed.receipts[0].status), "success");
    assert_eq!(executed.receipts[0].events.len(), 12);
    assert_eq!(status_name(&executed.receipts[1].status), "reverted");
    assert!(reason(&executed.receipts[1].status).contains("receipt budget"));
    assert!(executed.receipts[1].events.is_empty(), "a reverted receipt holds no events");
}

#[test]
fn block_time_only_moves_forward_and_survives_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = common::open(directory.path());
    let first = next_block_at(&executor, Vec::new(), GENESIS_TIME_MS + 10_000);
    executor.execute_block(&first).unwrap();
    // The next primary's clock is 3 s behind the last one's (within the allowed skew):
    // its block runs 1 ms after its parent.
    let second = next_block_at(&executor, Vec::new(), GENESIS_TIME_MS + 7_000);
    executor.execute_block(&second).unwrap();
    assert_eq!(executor.tip().timestamp_ms, GENESIS_TIME_MS + 10_001);
    drop(executor);
    let mut executor = common::open(directory.path());
    assert_eq!(executor.tip().timestamp_ms, GENESIS_TIME_MS + 10_001, "after a restart too");
    let third = next_block_at(&executor, Vec::new(), GENESIS_TIME_MS + 9_000);
    executor.execute_block(&third).unwrap();
    assert_eq!(executor.tip().timestamp_ms, GENESIS_TIME_MS + 10_002);
}
