//! Reads beside the executor (issue 9, finding 5): the REST API and peers read committed
//! blocks and state through a `LedgerReader`, never through the executor's lock. A
//! snapshot sees one committed block however many commit while it is read, and the
//! executor commits while snapshots are held on other threads.

mod common;

use common::*;
use pactum_sdk::{Decode, Encode};
use pactum_storage::StoreRead;
use pactum_types::{Address, ReceiptStatus};

fn balance_in(snapshot: &pactum_executor::LedgerSnapshot, token: Address, owner: Address) -> u128 {
    let outcome = snapshot
        .query(token, "balance", &(sdk(owner),).encode(), GAS, owner)
        .expect("the query runs");
    assert_eq!(outcome.status, ReceiptStatus::Success, "balance query: {outcome:?}");
    u128::decode(&outcome.return_data).expect("a balance decodes")
}

#[test]
fn a_snapshot_keeps_its_block_while_the_executor_commits_the_next() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let reader = executor.reader();
    let mut issuer = Account::new(1);
    let alice = Account::new(2);
    let token = issuer.next_contract_address();
    let deploy = issuer.deploy(pactum_contract_wasm::TOKEN, token_init("Test Dollar"));
    let mint = issuer.call(token, "mint", mint_input(alice.address(), 100), GAS);
    execute(&mut executor, vec![deploy, mint]);
    assert_eq!(reader.tip().height, 1);

    // Held on another thread across the next commit, as an API read would be.
    let before = reader.snapshot();
    let held = std::thread::spawn(move || {
        let seen = balance_in(&before, token, alice.address());
        (before, seen)
    });
    let mint = issuer.call(token, "mint", mint_input(Account::new(2).address(), 50), GAS);
    let executed = execute(&mut executor, vec![mint]);
    assert_eq!(executed.receipts[0].status, ReceiptStatus::Success);
    let (before, seen) = held.join().unwrap();

    // The old snapshot still stands at block 1, whole: tip, blocks, state and queries.
    assert_eq!(seen, 100);
    assert_eq!(before.tip().height, 1);
    assert_eq!(before.store().committed_height().unwrap(), 1);
    assert!(before.store().raw_block(2).unwrap().is_none());
    assert_eq!(balance_in(&before, token, Account::new(2).address()), 100);

    // A new one, and the live reads, see block 2; the reader's tip is the executor's.
    let after = reader.snapshot();
    assert_eq!(after.tip(), executor.tip());
    assert_eq!(reader.tip(), *executor.tip());
    assert_eq!(balance_in(&after, token, Account::new(2).address()), 150);
    assert!(reader.store().raw_block(2).unwrap().is_some());
    assert_eq!(after.store().committed_state_root().unwrap(), executor.tip().state_root);
    assert_eq!(after.next_nonce(&issuer.keypair.public_key()).unwrap(), 3);
    assert_eq!(
        after.contract_code_hash(&token).unwrap(),
        Some(pactum_types::hash::sha3_256(pactum_contract_wasm::TOKEN))
    );
}
