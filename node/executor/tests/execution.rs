//! The executor against a real RocksDB store in a temporary directory, running the real
//! token and supply-chain contracts built by the normal build, with real Ed25519-signed
//! transactions and commit certificates.

mod common;

use common::*;
use pactum_executor::{ENROLMENT_NOT_EXECUTED, ExecutorError, GOVERNANCE_NOT_EXECUTED};
use pactum_sdk::{Decode, Encode};
use pactum_storage::StoreRead;
use pactum_storage::{BlockCommit, StateChange, StateSpace, Store};
use pactum_types::gas::GasSchedule;
use pactum_types::{
    Address, Block, BlockHeader, ChainId, CommitCertificate, CommitSignature, Encode as _,
    GovernanceAction, Hash, Payload, ReceiptStatus,
};

fn token_code() -> &'static [u8] {
    pactum_contract_wasm::TOKEN
}

/// Deploys the token from `issuer` in its own block and returns its address.
fn deploy_token(executor: &mut pactum_executor::Executor, issuer: &mut Account) -> Address {
    let token = issuer.next_contract_address();
    let executed = execute(executor, vec![issuer.deploy(token_code(), token_init("Test Dollar"))]);
    assert_eq!(executed.receipts[0].status, ReceiptStatus::Success, "{:?}", executed.receipts[0]);
    assert_eq!(
        executor.contract_code_hash(&token).unwrap(),
        Some(pactum_types::hash::sha3_256(token_code()))
    );
    token
}

#[test]
fn token_deploy_mint_and_transfers_across_blocks_read_back_through_query() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let mut issuer = Account::new(1);
    let mut alice = Account::new(2);
    let mut bob = Account::new(3);
    let carol = Account::new(4);

    let token = deploy_token(&mut executor, &mut issuer);
    assert_eq!(executor.tip().height, 1);
    assert_eq!(total_supply(&executor, token), 0);

    // Block 2: mints, and a transfer by Alice that needs the mint earlier in the block.
    let executed = execute(
        &mut executor,
        vec![
            issuer.call(token, "mint", mint_input(alice.address(), 1_000), GAS),
            issuer.call(token, "mint", mint_input(bob.address(), 500), GAS),
            alice.call(token, "transfer", transfer_input(carol.address(), 200), GAS),
        ],
    );
    for receipt in &executed.receipts {
        assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
        assert!(receipt.gas_used > 0);
        assert_eq!(receipt.events.len(), 1);
        assert_eq!(receipt.events[0].contract, token);
    }
    assert_eq!(executed.receipts[0].events[0].topic, "mint");
    assert_eq!(executed.receipts[2].events[0].topic, "transfer");
    let gas_total: u64 = executed.receipts.iter().map(|receipt| receipt.gas_used).sum();
    assert_eq!(executed.gas_used, gas_total);
    assert_eq!(balance(&executor, token, alice.address()), 800);
    assert_eq!(balance(&executor, token, carol.address()), 200);

    // Block 3: transfers in both directions.
    let executed = execute(
        &mut executor,
        vec![
            alice.call(token, "transfer", transfer_input(bob.address(), 300), GAS),
            bob.call(token, "transfer", transfer_input(carol.address(), 650), GAS),
        ],
    );
    assert!(executed.receipts.iter().all(|receipt| receipt.status == ReceiptStatus::Success));
    assert_eq!(balance(&executor, token, alice.address()), 500);
    assert_eq!(balance(&executor, token, bob.address()), 150);
    assert_eq!(balance(&executor, token, carol.address()), 850);
    assert_eq!(total_supply(&executor, token), 1_500);

    // Nonces are committed per sender; the receipts are in the store.
    assert_eq!(executor.next_nonce(&issuer.keypair.public_key()).unwrap(), 3);
    assert_eq!(executor.next_nonce(&alice.keypair.public_key()).unwrap(), 2);
    assert_eq!(executor.next_nonce(&carol.keypair.public_key()).unwrap(), 0);
    let stored = executor.store().block_outcome(3).unwrap().unwrap();
    assert_eq!(stored.receipts, executed.receipts);
    assert_eq!(stored.state_root, executed.state_root);
    assert_eq!(executor.store().state_root(), executed.state_root);
    assert_eq!(executor.tip().state_root, executed.state_root);
    assert_eq!(executor.tip().receipts_root, executed.receipts_root);
}

#[test]
fn a_reverting_call_charges_gas_changes_nothing_and_consumes_the_nonce() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let mut issuer = Account::new(1);
    let mut alice = Account::new(2);
    let bob = Account::new(3);
    let token = deploy_token(&mut executor, &mut issuer);
    execute(&mut executor, vec![issuer.call(token, "mint", mint_input(alice.address(), 100), GAS)]);

    let executed = execute(
        &mut executor,
        vec![alice.call(token, "transfer", transfer_input(bob.address(), 101), GAS)],
    );
    let receipt = &executed.receipts[0];
    assert_eq!(status_name(&receipt.status), "reverted");
    assert!(reason(&receipt.status).contains("insufficient balance"), "{receipt:?}");
    assert!(receipt.gas_used > 0 && receipt.gas_used < GAS);
    assert!(receipt.events.is_empty());
    // The only state change is Alice's nonce.
    assert_eq!(executed.state_changes, 1);
    assert_eq!(executor.next_nonce(&alice.keypair.public_key()).unwrap(), 1);
    assert_eq!(balance(&executor, token, alice.address()), 100);
    assert_eq!(balance(&executor, token, bob.address()), 0);

    // Her next nonce follows on.
    let executed = execute(
        &mut executor,
        vec![alice.call(token, "transfer", transfer_input(bob.address(), 40), GAS)],
    );
    assert_eq!(executed.receipts[0].status, ReceiptStatus::Success);
    assert_eq!(balance(&executor, token, bob.address()), 40);
}

#[test]
fn running_out_of_gas_charges_the_whole_limit_changes_nothing_and_consumes_the_nonce() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let mut issuer = Account::new(1);
    let mut alice = Account::new(2);
    let bob = Account::new(3);
    let token = deploy_token(&mut executor, &mut issuer);
    execute(&mut executor, vec![issuer.call(token, "mint", mint_input(alice.address(), 100), GAS)]);

    let gas_limit = 5_000;
    let executed = execute(
        &mut executor,
        vec![alice.call(token, "transfer", transfer_input(bob.address(), 10), gas_limit)],
    );
    let receipt = &executed.receipts[0];
    assert_eq!(receipt.status, ReceiptStatus::OutOfGas);
    assert_eq!(receipt.gas_used, gas_limit);
    assert!(receipt.events.is_empty());
    assert_eq!(executed.state_changes, 1);
    assert_eq!(executor.next_nonce(&alice.keypair.public_key()).unwrap(), 1);
    assert_eq!(balance(&executor, token, alice.address()), 100);
    assert_eq!(balance(&executor, token, bob.address()), 0);
}

#[test]
fn stale_duplicate_replayed_and_future_nonces_are_invalid_and_change_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let mut issuer = Account::new(1);
    let mut alice = Account::new(2);
    let bob = Account::new(3);
    let token = deploy_token(&mut executor, &mut issuer);

    // Two different transactions with the same nonce in one block: the first runs.
    let first = issuer.call(token, "mint", mint_input(alice.address(), 100), GAS);
    let rival = issuer.sign_with(
        chain_id(),
        1,
        GAS,
        Payload::CallContract {
            contract: token,
            method: "mint".into(),
            input: mint_input(bob.address(), 999),
        },
    );
    let executed = execute(&mut executor, vec![first.clone(), rival]);
    assert_eq!(executed.receipts[0].status, ReceiptStatus::Success);
    assert_eq!(status_name(&executed.receipts[1].status), "invalid");
    assert_eq!(
        reason(&executed.receipts[1].status),
        "nonce 1 was already used; the sender's next nonce is 2"
    );
    assert_eq!(executed.receipts[1].gas_used, 0);
    assert_eq!(balance(&executor, token, bob.address()), 0);
    let root_before = executor.tip().state_root;

    // A block of nothing but unacceptable transactions changes no state at all.
    let stale = issuer.sign_with(
        chain_id(),
        0,
        GAS,
        Payload::CallContract {
            contract: token,
            method: "mint".into(),
            input: mint_input(bob.address(), 5),
        },
    );
    let future = alice.sign_with(
        chain_id(),
        1,
        GAS,
        Payload::CallContract {
            contract: token,
            method: "transfer".into(),
            input: transfer_input(bob.address(), 5),
        },
    );
    let executed = execute(&mut executor, vec![stale, first, future]);
    let reasons: Vec<&str> =
        executed.receipts.iter().map(|receipt| reason(&receipt.status)).collect();
    assert_eq!(
        reasons,
        [
            "nonce 0 was already used; the sender's next nonce is 2",
            "nonce 1 was already used; the sender's next nonce is 2",
            "nonce 1 is ahead of the sender's next nonce 0; nonces cannot be skipped",
        ]
    );
    for receipt in &executed.receipts {
        assert_eq!(status_name(&receipt.status), "invalid");
        assert_eq!(receipt.gas_used, 0);
        assert!(receipt.events.is_empty() && receipt.return_data.is_empty());
    }
    assert_eq!(executed.state_changes, 0);
    assert_eq!(executed.state_root, root_before);
    assert_eq!(executor.next_nonce(&alice.keypair.public_key()).unwrap(), 0);
    assert_eq!(balance(&executor, token, alice.address()), 100);

    // Alice's skipped nonce 0 is still hers to use.
    let executed = execute(
        &mut executor,
        vec![alice.call(token, "transfer", transfer_input(bob.address(), 5), GAS)],
    );
    assert_eq!(executed.receipts[0].status, ReceiptStatus::Success);
}

#[test]
fn an_unknown_contract_gives_a_reverted_receipt_naming_it() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let mut alice = Account::new(2);
    let nowhere = Address([9; 32]);
    let executed = execute(&mut executor, vec![alice.call(nowhere, "transfer", Vec::new(), GAS)]);
    let receipt = &executed.receipts[0];
    assert_eq!(status_name(&receipt.status), "reverted");
    assert_eq!(reason(&receipt.status), format!("no contract is deployed at {nowhere}"));
    assert_eq!(receipt.gas_used, GasSchedule::V1.call_base);
    assert_eq!(executor.next_nonce(&alice.keypair.public_key()).unwrap(), 1);

    let query = executor.query(nowhere, "balance", &[], GAS, alice.address()).unwrap();
    assert_eq!(status_name(&query.status), "reverted");
    assert!(reason(&query.status).contains("no contract is deployed at"));
}

/// One block with every kind of outcome, for the mixed-block and determinism tests.
/// Returns the blocks executed (a setup block, then the mixed one).
fn mixed_chain(executor: &mut pactum_executor::Executor, wrong_chain: bool) -> Vec<Block> {
    let mut issuer = Account::new(1);
    let mut alice = Account::new(2);
    let mut bob = Account::new(3);
    let mut operator = Account::new(5);
    let token = issuer.next_contract_address();
    let setup = next_block(
        executor,
        vec![
            issuer.deploy(token_code(), token_init("Mixed")),
            issuer.call(token, "mint", mint_input(alice.address(), 1_000), GAS),
        ],
    );
    executor.execute_block(&setup).unwrap();

    let supply_chain = operator.next_contract_address();
    let product = (
        String::from("lot-7"),
        String::from("Valencia"),
        String::from("B-12"),
        [7u8; 32],
        String::from("warehouse 1"),
    )
        .encode();
    let mut transactions = vec![
        // 0: deploy the supply-chain contract; 1, 2: use it in the same block.
        operator.deploy(pactum_contract_wasm::SUPPLY_CHAIN, ().encode()),
        operator.call(
            supply_chain,
            "register_party",
            (sdk(operator.address()), String::from("Acme"), String::from("producer")).encode(),
            GAS,
        ),
        operator.call(supply_chain, "register_product", product, GAS),
        // 3: a transfer; 4: a revert; 5: out of gas.
        alice.call(token, "transfer", transfer_input(bob.address(), 250), GAS),
        alice.call(token, "transfer", transfer_input(bob.address(), 1_000_000), GAS),
        alice.call(token, "transfer", transfer_input(bob.address(), 1), 3_000),
        // 6: stale nonce; 7: future nonce.
        alice.sign_with(
            chain_id(),
            0,
            GAS,
            Payload::CallContract {
                contract: token,
                method: "transfer".into(),
                input: transfer_input(bob.address(), 1),
            },
        ),
        bob.sign_with(
            chain_id(),
            5,
            GAS,
            Payload::CallContract {
                contract: token,
                method: "transfer".into(),
                input: transfer_input(alice.address(), 1),
            },
        ),
        // 8: unknown contract; 9: governance; 10: enrolment.
        bob.call(Address([9; 32]), "anything", Vec::new(), GAS),
        bob.sign(
            GAS,
            Payload::Governance { action: GovernanceAction::Approve { proposal: Hash([1; 32]) } },
        ),
        bob.sign_with(
            chain_id(),
            1,
            GAS,
            Payload::EnrolIdentity { certificate_der: vec![1, 2, 3] },
        ),
        // 11: code that is not WebAssembly; 12: a method of the token that does not exist.
        bob.sign_with(
            chain_id(),
            1,
            GAS,
            Payload::DeployContract { code: b"not wasm".to_vec(), init_input: Vec::new() },
        ),
        bob.sign_with(
            chain_id(),
            2,
            GAS,
            Payload::CallContract { contract: token, method: "burn".into(), input: Vec::new() },
        ),
    ];
    // The governance transaction above used bob's counter; it stays unused on the ledger.
    bob.next_nonce = 3;
    if wrong_chain {
        // 13: a transaction signed for another chain.
        transactions.push(bob.sign_with(
            ChainId::new("another-chain").unwrap(),
            3,
            GAS,
            Payload::CallContract {
                contract: token,
                method: "transfer".into(),
                input: transfer_input(alice.address(), 1),
            },
        ));
    }
    let mixed = next_block(executor, transactions);
    executor.execute_block(&mixed).unwrap();
    vec![setup, mixed]
}

#[test]
fn a_block_mixing_every_outcome_gives_the_expected_receipts_in_order() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let blocks = mixed_chain(&mut executor, true);
    let outcome = executor.store().block_outcome(2).unwrap().unwrap();
    let receipts = &outcome.receipts;
    let statuses: Vec<&str> = receipts.iter().map(|receipt| status_name(&receipt.status)).collect();
    assert_eq!(
        statuses,
        [
            "success",
            "success",
            "success",
            "success",
            "reverted",
            "out_of_gas",
            "invalid",
            "invalid",
            "reverted",
            "invalid",
            "invalid",
            "reverted",
            "reverted",
            "invalid",
        ]
    );
    let reasons: Vec<&str> = receipts.iter().map(|receipt| reason(&receipt.status)).collect();
    assert!(reasons[4].contains("insufficient balance"));
    assert!(reasons[6].contains("nonce 0 was already used"));
    assert!(reasons[7].contains("nonce 5 is ahead of the sender's next nonce 0"));
    assert!(reasons[8].starts_with("no contract is deployed at"));
    assert_eq!(reasons[9], GOVERNANCE_NOT_EXECUTED);
    assert_eq!(reasons[10], ENROLMENT_NOT_EXECUTED);
    assert!(reasons[11].starts_with("deploy refused: contract code is not a valid WebAssembly"));
    assert!(reasons[12].contains("burn"), "{}", reasons[12]);
    assert!(reasons[13].contains("another-chain"));
    assert_eq!(receipts[5].gas_used, 3_000);
    let deploy_charge = GasSchedule::cost(
        GasSchedule::V1.deploy_base,
        GasSchedule::V1.deploy_per_byte,
        b"not wasm".len(),
    );
    assert_eq!(receipts[11].gas_used, deploy_charge);
    for (position, receipt) in receipts.iter().enumerate() {
        assert_eq!(receipt.transaction_hash, blocks[1].transactions[position].hash());
        if status_name(&receipt.status) == "invalid" {
            assert_eq!(receipt.gas_used, 0, "receipt {position}");
        } else {
            assert!(receipt.gas_used > 0, "receipt {position}");
        }
    }
    assert_eq!(receipts[2].events[0].topic, "product_registered");

    // What the block did, read back: one transfer of 250 and the registered product.
    let token = pactum_vm::contract_address(&address_of(&keypair(1)), 0);
    assert_eq!(balance(&executor, token, address_of(&keypair(2))), 750);
    assert_eq!(balance(&executor, token, address_of(&keypair(3))), 250);
    let supply_chain = pactum_vm::contract_address(&address_of(&keypair(5)), 0);
    let query = executor
        .query(supply_chain, "product", &(String::from("lot-7"),).encode(), GAS, Address([0; 32]))
        .unwrap();
    assert_eq!(query.status, ReceiptStatus::Success);
    let product = pactum_contract_supply_chain::Product::decode(&query.return_data).unwrap();
    assert_eq!(product.location, "warehouse 1");
    assert_eq!(product.custodian.0, address_of(&keypair(5)).0);
    // Nonces: Alice used 0 (block 1 had none of hers) ..= 2; Bob used 0 (unknown contract),
    // 1 (bad deploy) and 2 (unknown method); his governance and enrolment used nothing.
    assert_eq!(executor.next_nonce(&keypair(2).public_key()).unwrap(), 3);
    assert_eq!(executor.next_nonce(&keypair(3).public_key()).unwrap(), 3);
}

#[test]
fn the_same_blocks_on_two_fresh_stores_give_identical_receipts_and_state_roots() {
    let first_directory = tempfile::tempdir().unwrap();
    let mut first = open(first_directory.path());
    let blocks = mixed_chain(&mut first, true);

    // The second store gets the very same blocks; their headers carry the first store's
    // lagging roots, so any difference would also make the executor refuse a block.
    let second_directory = tempfile::tempdir().unwrap();
    let mut second = open(second_directory.path());
    for block in &blocks {
        let executed = second.execute_block(block).unwrap();
        let height = block.header.height;
        let expected = first.store().block_outcome(height).unwrap().unwrap();
        let got = second.store().block_outcome(height).unwrap().unwrap();
        assert_eq!(got.to_bytes(), expected.to_bytes(), "block {height}");
        assert_eq!(executed.state_root, expected.state_root);
    }
    assert_eq!(second.tip(), first.tip());
    assert_eq!(second.store().recompute_state_root().unwrap(), first.store().state_root());
}

#[test]
fn the_chain_audit_passes_on_an_executed_chain() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    // Every outcome except a transaction for another chain, which the audit refuses on
    // its own terms (consensus never orders one).
    mixed_chain(&mut executor, false);
    let mut issuer = Account::new(1);
    issuer.next_nonce = 2;
    let token = pactum_vm::contract_address(&issuer.address(), 0);
    execute(&mut executor, vec![issuer.call(token, "mint", mint_input(issuer.address(), 1), GAS)]);
    let report = pactum_storage::audit::audit(
        executor.store(),
        &pactum_storage::builder::check_test_chain_certificate,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.blocks, 3);
    assert_eq!(report.transactions, 2 + 13 + 1);
    assert_eq!(report.state_root, executor.tip().state_root);
    assert_eq!(report.last_block_hash, executor.tip().block_hash);
}

#[test]
fn reopening_continues_at_the_right_height_and_reuses_precompiled_artifacts() {
    let directory = tempfile::tempdir().unwrap();
    let mut issuer = Account::new(1);
    let alice = Account::new(2);
    let (token, tip) = {
        let mut executor = open(directory.path());
        let token = deploy_token(&mut executor, &mut issuer);
        execute(
            &mut executor,
            vec![issuer.call(token, "mint", mint_input(alice.address(), 70), GAS)],
        );
        assert_eq!(executor.vm().cache_stats().compiled, 1);
        (token, executor.tip().clone())
    };

    let mut executor = open(directory.path());
    assert_eq!(executor.tip(), &tip);
    assert_eq!(executor.tip().height, 2);
    assert_eq!(executor.next_nonce(&issuer.keypair.public_key()).unwrap(), 2);
    assert_eq!(balance(&executor, token, alice.address()), 70);
    let stats = executor.vm().cache_stats();
    assert_eq!((stats.compiled, stats.loaded_from_artifact), (0, 1));

    let executed = execute(
        &mut executor,
        vec![issuer.call(token, "mint", mint_input(alice.address(), 5), GAS)],
    );
    assert_eq!(executed.height, 3);
    assert_eq!(executed.receipts[0].status, ReceiptStatus::Success);
    assert_eq!(balance(&executor, token, alice.address()), 75);
    assert_eq!(executor.vm().cache_stats().compiled, 0);
}

#[test]
fn a_block_that_does_not_follow_the_tip_is_refused_with_nothing_written() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let mut issuer = Account::new(1);
    deploy_token(&mut executor, &mut issuer);
    let tip = executor.tip().clone();

    let mut block = next_block(&executor, Vec::new());
    block.header.previous_state_root = Hash([1; 32]);
    let error = executor.execute_block(&block).unwrap_err();
    assert!(
        matches!(error, ExecutorError::Diverged { height: 2, field: "previous state root", .. }),
        "{error}"
    );
    let mut block = next_block(&executor, Vec::new());
    block.header.height = 3;
    let error = executor.execute_block(&block).unwrap_err();
    assert!(matches!(error, ExecutorError::HeightOutOfOrder { expected: 2, got: 3 }), "{error}");
    let mut block = next_block(&executor, Vec::new());
    block.header.chain_id = ChainId::new("another-chain").unwrap();
    assert!(matches!(executor.execute_block(&block), Err(ExecutorError::WrongChain { .. })));

    assert_eq!(executor.tip(), &tip);
    assert_eq!(executor.store().last_height(), 1);
}

#[test]
fn a_vm_failure_aborts_the_whole_block_with_nothing_written() {
    // A damaged store: block 1 registers a contract whose code is missing from state.
    let directory = tempfile::tempdir().unwrap();
    let broken = Address([0x42; 32]);
    {
        let mut store = Store::open(directory.path().join("db")).unwrap();
        let validators = validators();
        let header = BlockHeader {
            chain_id: chain_id(),
            height: 1,
            previous_hash: Hash::ZERO,
            timestamp_ms: GENESIS_TIME_MS,
            proposer: validators[0].public_key(),
            view: 0,
            sequence: 1,
            transactions_root: pactum_types::block::transactions_root(&[]),
            previous_receipts_root: pactum_types::receipt::receipts_root(&[]),
            previous_state_root: store.state_root(),
            validators_hash: Hash::ZERO,
        };
        let header_hash = header.hash();
        let signatures = validators[..3]
            .iter()
            .map(|validator| CommitSignature {
                validator: validator.public_key(),
                signature: validator
                    .sign(pactum_types::crypto::domain::TEST_CHAIN_COMMIT, &header_hash.0),
            })
            .collect();
        let block = Block {
            header,
            transactions: Vec::new(),
            certificate: CommitCertificate::new(0, signatures).unwrap(),
        };
        let change = StateChange {
            space: StateSpace::Ledger,
            key: pactum_executor::ledger::contract_key(&broken),
            value: Some(vec![0x77; 32]),
        };
        store
            .commit_block(BlockCommit { block: &block, receipts: &[], state_changes: &[change] })
            .unwrap();
    }
    let mut executor = open(directory.path());
    let tip = executor.tip().clone();
    assert_eq!(tip.height, 1);
    let mut issuer = Account::new(1);
    let token = issuer.next_contract_address();
    let block = next_block(
        &executor,
        vec![
            issuer.deploy(token_code(), token_init("Lost")),
            issuer.call(broken, "anything", Vec::new(), GAS),
        ],
    );
    let error = executor.execute_block(&block).unwrap_err();
    match &error {
        ExecutorError::Vm { height: 2, position: 1, source, .. } => {
            assert!(matches!(source, pactum_vm::VmError::MissingCode { .. }), "{source}");
        }
        other => panic!("expected a VM failure, got {other}"),
    }
    assert!(error.to_string().contains("nothing of the block was written"));
    assert_eq!(executor.tip(), &tip);
    assert_eq!(executor.store().last_height(), 1);
    assert_eq!(executor.contract_code_hash(&token).unwrap(), None);
    assert_eq!(executor.next_nonce(&issuer.keypair.public_key()).unwrap(), 0);
    assert!(executor.store().receipt(&block.transactions[0].hash()).unwrap().is_none());
}

#[test]
fn a_query_runs_against_committed_state_and_commits_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let mut issuer = Account::new(1);
    let alice = Account::new(2);
    let bob = Account::new(3);
    let token = deploy_token(&mut executor, &mut issuer);
    execute(&mut executor, vec![issuer.call(token, "mint", mint_input(alice.address(), 100), GAS)]);
    let tip = executor.tip().clone();

    // A state-changing method run as a query succeeds, reports its event, and writes nothing.
    let query = executor
        .query(token, "transfer", &transfer_input(bob.address(), 60), GAS, alice.address())
        .unwrap();
    assert_eq!(query.status, ReceiptStatus::Success);
    assert_eq!(query.height, 2);
    assert_eq!(query.events.len(), 1);
    assert_eq!(query.events[0].topic, "transfer");
    assert!(query.gas_used > 0);
    assert_eq!(balance(&executor, token, alice.address()), 100);
    assert_eq!(balance(&executor, token, bob.address()), 0);
    assert_eq!(executor.tip(), &tip);
    assert_eq!(executor.store().state_root(), tip.state_root);
    assert_eq!(executor.next_nonce(&alice.keypair.public_key()).unwrap(), 0);

    // A query that runs out of gas or reverts says so in its status.
    let query = executor
        .query(token, "transfer", &transfer_input(bob.address(), 60), 2_500, alice.address())
        .unwrap();
    assert_eq!((query.status, query.gas_used), (ReceiptStatus::OutOfGas, 2_500));
    let query = executor
        .query(token, "transfer", &transfer_input(bob.address(), 101), GAS, alice.address())
        .unwrap();
    assert!(reason(&query.status).contains("insufficient balance"));
    let query = executor
        .query(
            token,
            "balance",
            &[],
            pactum_types::limits::TRANSACTION_GAS_MAX + 1,
            alice.address(),
        )
        .unwrap();
    assert_eq!(status_name(&query.status), "invalid");
    assert_eq!(query.gas_used, 0);
}

#[test]
fn an_executor_refuses_a_store_of_another_chain() {
    let directory = tempfile::tempdir().unwrap();
    {
        let mut executor = open(directory.path());
        execute(&mut executor, Vec::new());
    }
    let store = Store::open(directory.path().join("db")).unwrap();
    let options = pactum_executor::ExecutorOptions::new(ChainId::new("another-chain").unwrap());
    let error = pactum_executor::Executor::open(store, options).unwrap_err();
    assert!(matches!(error, ExecutorError::WrongChain { height: 1, .. }), "{error}");
}

#[test]
fn a_repeated_transaction_keeps_its_first_receipt_and_the_audit_passes() {
    let directory = tempfile::tempdir().unwrap();
    let mut executor = open(directory.path());
    let mut issuer = Account::new(1);
    let alice = Account::new(2);
    let token = deploy_token(&mut executor, &mut issuer);
    let mint = issuer.call(token, "mint", mint_input(alice.address(), 5), GAS);
    let hash = mint.hash();
    let first = execute(&mut executor, vec![mint.clone()]);
    assert_eq!(first.receipts[0].status, ReceiptStatus::Success);
    // A faulty primary repeats it, in a later block and twice within one block.
    let repeated = execute(&mut executor, vec![mint.clone(), mint]);
    for receipt in &repeated.receipts {
        assert_eq!(status_name(&receipt.status), "invalid", "{receipt:?}");
    }
    assert_eq!(balance(&executor, token, alice.address()), 5, "minted once");
    // The transaction's receipt is still the one that ran.
    let stored = executor.store().receipt(&hash).unwrap().unwrap();
    assert_eq!(stored.status, ReceiptStatus::Success);
    let location = executor.store().transaction_location(&hash).unwrap().unwrap();
    assert_eq!(location.height, first.height);
    let report = pactum_storage::audit::audit(
        executor.store(),
        &pactum_storage::builder::check_test_chain_certificate,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.transactions, 1 + 1 + 2, "deploy, mint, two repeats");
}
