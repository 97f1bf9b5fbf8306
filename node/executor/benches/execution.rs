//! Executor throughput: blocks of token transfers executed in the VM and committed to
//! RocksDB with one synced `WriteBatch` each, on a real store in a temporary directory.
//!
//! Run with `cargo bench -p pactum-executor`. Building and signing each block is set-up
//! (not timed); the timed part is `Executor::execute_block`: nonce checks, the VM calls,
//! the block overlay and the synced commit. Figures, not assertions: see
//! `docs/benchmarks.md`.

use pactum_storage::StoreRead;
use std::cell::RefCell;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pactum_executor::{Executor, ExecutorOptions};
use pactum_sdk::Encode;
use pactum_storage::Store;
use pactum_types::block::transactions_root;
use pactum_types::crypto::domain;
use pactum_types::{
    Address, Block, BlockHeader, ChainId, CommitCertificate, CommitSignature, Keypair, Payload,
    ReceiptStatus, Transaction, UnsignedTransaction,
};
use pactum_vm::VmOptions;

const GAS: u64 = 1_000_000;
const SENDERS: usize = 100;
const RECIPIENTS: u64 = 64;

struct Account {
    keypair: Keypair,
    next_nonce: u64,
}

impl Account {
    fn new(index: usize) -> Self {
        let mut seed = [7u8; 32];
        seed[..8].copy_from_slice(&(index as u64).to_be_bytes());
        Self { keypair: Keypair::from_seed(&seed), next_nonce: 0 }
    }

    fn address(&self) -> Address {
        Address(self.keypair.public_key().0)
    }

    fn sign(&mut self, payload: Payload) -> Transaction {
        let transaction = UnsignedTransaction {
            chain_id: chain_id(),
            sender: self.keypair.public_key(),
            nonce: self.next_nonce,
            gas_limit: GAS,
            payload,
        }
        .sign(&self.keypair);
        self.next_nonce += 1;
        transaction
    }
}

fn chain_id() -> ChainId {
    ChainId::new("pactum-bench").expect("valid chain id")
}

fn next_block(executor: &Executor, transactions: Vec<Transaction>) -> Block {
    let tip = executor.tip();
    let height = tip.height + 1;
    let validators: Vec<Keypair> =
        (0..4u8).map(|index| Keypair::from_seed(&[200 + index; 32])).collect();
    let header = BlockHeader {
        chain_id: chain_id(),
        height,
        previous_hash: tip.block_hash,
        timestamp_ms: 1_767_225_600_000 + height * 500,
        proposer: validators[0].public_key(),
        view: 0,
        sequence: height,
        transactions_root: transactions_root(&transactions),
        previous_receipts_root: tip.receipts_root,
        previous_state_root: tip.state_root,
        validators_hash: pactum_types::Hash::ZERO,
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

fn execute_all_succeed(executor: &mut Executor, block: &Block) {
    let executed = executor.execute_block(block).expect("the block executes");
    for receipt in &executed.receipts {
        assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
    }
}

/// A store with the token deployed and every sender holding a balance.
fn setup(directory: &std::path::Path) -> (Executor, Address, Vec<Account>) {
    let store = Store::open(directory.join("db")).expect("store opens");
    let options = ExecutorOptions {
        vm: VmOptions {
            artifact_directory: Some(directory.join("artifacts")),
            ..VmOptions::default()
        },
        ..ExecutorOptions::new(chain_id())
    };
    let mut executor = Executor::open(store, options).expect("executor opens");
    let mut issuer = Account::new(usize::MAX);
    let token = pactum_vm::contract_address(&issuer.address(), 0);
    let deploy = issuer.sign(Payload::DeployContract {
        code: pactum_contract_wasm::TOKEN.to_vec(),
        init_input: (String::from("Bench Dollar"),).encode(),
    });
    let block = next_block(&executor, vec![deploy]);
    execute_all_succeed(&mut executor, &block);
    let senders: Vec<Account> = (0..SENDERS).map(Account::new).collect();
    let mints = senders
        .iter()
        .map(|sender| {
            issuer.sign(Payload::CallContract {
                contract: token,
                method: "mint".into(),
                input: (pactum_sdk::Address(sender.address().0), 1_000_000_000_000u128).encode(),
            })
        })
        .collect();
    let block = next_block(&executor, mints);
    execute_all_succeed(&mut executor, &block);
    (executor, token, senders)
}

fn transfer_block(
    executor: &Executor,
    senders: &mut [Account],
    token: Address,
    transfers: usize,
) -> Block {
    let transactions = (0..transfers)
        .map(|position| {
            let sender = &mut senders[position % SENDERS];
            let mut recipient = [9u8; 32];
            recipient[..8].copy_from_slice(&(position as u64 % RECIPIENTS).to_be_bytes());
            sender.sign(Payload::CallContract {
                contract: token,
                method: "transfer".into(),
                input: (pactum_sdk::Address(recipient), 1u128).encode(),
            })
        })
        .collect();
    next_block(executor, transactions)
}

fn blocks_of_transfers(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("execute_and_commit_token_transfers");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    for transfers in [100usize, 1_000] {
        let directory = tempfile::tempdir().expect("temporary directory");
        let (executor, token, mut senders) = setup(directory.path());
        let executor = RefCell::new(executor);
        // One block outside the measurement, so its receipts can be checked.
        let block = transfer_block(&executor.borrow(), &mut senders, token, transfers);
        execute_all_succeed(&mut executor.borrow_mut(), &block);
        group.throughput(Throughput::Elements(transfers as u64));
        group.bench_function(format!("{transfers}_per_block"), |bencher| {
            bencher.iter_batched(
                || transfer_block(&executor.borrow(), &mut senders, token, transfers),
                |block| executor.borrow_mut().execute_block(&block).expect("the block executes"),
                BatchSize::PerIteration,
            );
        });
        // Every measured transfer succeeded: the last block's receipts say so.
        let height = executor.borrow().tip().height;
        let outcome = executor.borrow().store().block_outcome(height).unwrap().unwrap();
        assert!(outcome.receipts.iter().all(|receipt| receipt.status == ReceiptStatus::Success));
    }
    group.finish();
}

criterion_group!(benches, blocks_of_transfers);
criterion_main!(benches);
