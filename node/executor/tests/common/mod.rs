//! Shared helpers of the executor's tests: signed transactions from real Ed25519 keys,
//! blocks whose headers link to the executor's tip (ADR 0002) and carry commit
//! certificates signed by real validator keys, and token queries.

#![allow(dead_code)]

pub mod members;

use std::path::Path;

use pactum_executor::{ExecutedBlock, Executor, ExecutorOptions};
use pactum_sdk::{Decode, Encode};
use pactum_storage::Store;
use pactum_types::block::transactions_root;
use pactum_types::crypto::domain;
use pactum_types::{
    Address, Block, BlockHeader, ChainId, CommitCertificate, CommitSignature, Keypair, Payload,
    ReceiptStatus, Transaction, UnsignedTransaction,
};
use pactum_vm::VmOptions;

pub const CHAIN: &str = "pactum-executor-test";
pub const GAS: u64 = 10_000_000;
pub const GENESIS_TIME_MS: u64 = 1_767_225_600_000;

pub fn chain_id() -> ChainId {
    ChainId::new(CHAIN).expect("valid chain id")
}

pub fn keypair(seed: u8) -> Keypair {
    Keypair::from_seed(&[seed; 32])
}

pub fn address_of(keypair: &Keypair) -> Address {
    Address(keypair.public_key().0)
}

pub fn sdk(address: Address) -> pactum_sdk::Address {
    pactum_sdk::Address(address.0)
}

/// Opens a store in `directory` and an executor over it, with precompiled artifacts kept
/// beside the store.
pub fn open(directory: &Path) -> Executor {
    let store = Store::open(directory.join("db")).expect("store opens");
    let options = ExecutorOptions {
        vm: VmOptions {
            artifact_directory: Some(directory.join("artifacts")),
            ..VmOptions::default()
        },
        ..ExecutorOptions::new(chain_id())
    };
    Executor::open(store, options).expect("executor opens")
}

/// A client account that numbers its own nonces.
pub struct Account {
    pub keypair: Keypair,
    pub next_nonce: u64,
}

impl Account {
    pub fn new(seed: u8) -> Self {
        Self { keypair: keypair(seed), next_nonce: 0 }
    }

    pub fn address(&self) -> Address {
        address_of(&self.keypair)
    }

    /// A transaction with an explicit nonce and chain; the account's counter is untouched.
    pub fn sign_with(
        &self,
        chain: ChainId,
        nonce: u64,
        gas_limit: u64,
        payload: Payload,
    ) -> Transaction {
        UnsignedTransaction {
            chain_id: chain,
            sender: self.keypair.public_key(),
            nonce,
            gas_limit,
            payload,
        }
        .sign(&self.keypair)
    }

    /// A transaction with the account's next nonce, which it then counts as used.
    pub fn sign(&mut self, gas_limit: u64, payload: Payload) -> Transaction {
        let transaction = self.sign_with(chain_id(), self.next_nonce, gas_limit, payload);
        self.next_nonce += 1;
        transaction
    }

    pub fn deploy(&mut self, code: &[u8], init_input: Vec<u8>) -> Transaction {
        self.sign(GAS, Payload::DeployContract { code: code.to_vec(), init_input })
    }

    pub fn call(
        &mut self,
        contract: Address,
        method: &str,
        input: Vec<u8>,
        gas_limit: u64,
    ) -> Transaction {
        self.sign(gas_limit, Payload::CallContract { contract, method: method.into(), input })
    }

    /// The address its next transaction would deploy a contract at.
    pub fn next_contract_address(&self) -> Address {
        pactum_vm::contract_address(&self.address(), self.next_nonce)
    }
}

pub fn validators() -> Vec<Keypair> {
    (0..4).map(|index| keypair(200 + index)).collect()
}

/// The next block after the executor's tip, committed by 3 of 4 validators.
pub fn next_block(executor: &Executor, transactions: Vec<Transaction>) -> Block {
    let height = executor.tip().height + 1;
    next_block_at(executor, transactions, GENESIS_TIME_MS + height * 500)
}

/// The next block, with the primary's time `timestamp_ms`.
pub fn next_block_at(
    executor: &Executor,
    transactions: Vec<Transaction>,
    timestamp_ms: u64,
) -> Block {
    let tip = executor.tip();
    let height = tip.height + 1;
    let validators = validators();
    let header = BlockHeader {
        chain_id: chain_id(),
        height,
        previous_hash: tip.block_hash,
        timestamp_ms,
        proposer: validators[(height as usize) % validators.len()].public_key(),
        view: 0,
        sequence: height,
        transactions_root: transactions_root(&transactions),
        previous_receipts_root: tip.receipts_root,
        previous_state_root: tip.state_root,
        // The set in force, as every validator derives it (none without a consortium).
        validators_hash: executor
            .consortium()
            .map_or(pactum_types::Hash::ZERO, |consortium| consortium.validator_set_hash()),
    };
    let header_hash = header.hash();
    let signatures = validators[..3]
        .iter()
        .map(|validator| CommitSignature {
            validator: validator.public_key(),
            signature: validator.sign(domain::TEST_CHAIN_COMMIT, &header_hash.0),
        })
        .collect();
    let certificate = CommitCertificate::new(header.view, signatures).expect("distinct validators");
    Block { header, transactions, certificate }
}

/// Executes the next block made of `transactions`.
pub fn execute(executor: &mut Executor, transactions: Vec<Transaction>) -> ExecutedBlock {
    let block = next_block(executor, transactions);
    executor.execute_block(&block).expect("the block executes")
}

pub fn status_name(status: &ReceiptStatus) -> &'static str {
    match status {
        ReceiptStatus::Success => "success",
        ReceiptStatus::Reverted { .. } => "reverted",
        ReceiptStatus::OutOfGas => "out_of_gas",
        ReceiptStatus::Invalid { .. } => "invalid",
        ReceiptStatus::Trapped { .. } => "trapped",
    }
}

pub fn reason(status: &ReceiptStatus) -> &str {
    match status {
        ReceiptStatus::Reverted { reason }
        | ReceiptStatus::Invalid { reason }
        | ReceiptStatus::Trapped { reason } => reason,
        ReceiptStatus::Success | ReceiptStatus::OutOfGas => "",
    }
}

pub fn token_init(name: &str) -> Vec<u8> {
    (String::from(name),).encode()
}

pub fn mint_input(to: Address, amount: u128) -> Vec<u8> {
    (sdk(to), amount).encode()
}

pub fn transfer_input(to: Address, amount: u128) -> Vec<u8> {
    (sdk(to), amount).encode()
}

/// A token balance read through a read-only query of the committed state.
pub fn balance(executor: &Executor, token: Address, owner: Address) -> u128 {
    let outcome = executor
        .query(token, "balance", &(sdk(owner),).encode(), GAS, owner)
        .expect("the query runs");
    assert_eq!(outcome.status, ReceiptStatus::Success, "balance query: {outcome:?}");
    u128::decode(&outcome.return_data).expect("a balance decodes")
}

pub fn total_supply(executor: &Executor, token: Address) -> u128 {
    let outcome = executor.query(token, "total_supply", &[], GAS, token).expect("the query runs");
    assert_eq!(outcome.status, ReceiptStatus::Success);
    u128::decode(&outcome.return_data).expect("a supply decodes")
}
