//! Seeded random blocks: whatever a committed block holds (stale, skipped and rival
//! nonces, reverts, out of gas at any point, unknown contracts and methods, bad and good
//! deploys, governance), the executor gives every transaction a receipt, never fails, and
//! gives the same bytes on a second fresh store. A failure names its seed.

mod common;

use pactum_storage::StoreRead;
use std::collections::{BTreeMap, BTreeSet};

use common::*;
use pactum_sdk::Encode;
use pactum_types::{
    Address, Block, Encode as _, GovernanceAction, GovernanceChange, Hash, Payload, PublicKey,
    ReceiptStatus, Transaction,
};

const SEEDS: u64 = 6;
const BLOCKS: usize = 6;
const TRANSACTIONS_PER_BLOCK: usize = 30;
const ACCOUNTS: u8 = 4;

/// xorshift64*: a tiny seeded generator, so the test needs no RNG crate.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn random_transaction(
    generator: &mut Generator,
    accounts: &mut [Account],
    token: Address,
) -> Transaction {
    let sender_index = generator.below(accounts.len() as u64) as usize;
    let other = accounts[generator.below(accounts.len() as u64) as usize].address();
    let sender = &mut accounts[sender_index];
    // Mostly the right nonce, sometimes a stale or a skipped one.
    let nonce = match generator.below(10) {
        0 => sender.next_nonce.saturating_sub(1 + generator.below(2)),
        1 => sender.next_nonce + 1 + generator.below(2),
        _ => sender.next_nonce,
    };
    if nonce == sender.next_nonce {
        sender.next_nonce += 1;
    }
    let gas_limit = match generator.below(6) {
        0 => generator.below(20_000),
        1 => 2_000 + generator.below(14_000),
        _ => GAS,
    };
    let call = |method: &str, input: Vec<u8>| Payload::CallContract {
        contract: token,
        method: method.into(),
        input,
    };
    let payload = match generator.below(10) {
        0..=3 => call("transfer", transfer_input(other, u128::from(generator.below(3_000)))),
        4 => call("mint", mint_input(other, u128::from(generator.below(5_000)))),
        5 => call("approve", (sdk(other), u128::from(generator.below(1_000))).encode()),
        6 => call(
            "transfer_from",
            (sdk(other), sdk(sender.address()), u128::from(generator.below(500))).encode(),
        ),
        7 => match generator.below(3) {
            0 => call("no_such_method", Vec::new()),
            1 => Payload::CallContract {
                contract: Address([generator.below(256) as u8; 32]),
                method: "transfer".into(),
                input: Vec::new(),
            },
            _ => call("transfer", vec![1, 2, 3]),
        },
        8 => match generator.below(3) {
            0 => Payload::DeployContract {
                code: pactum_contract_wasm::TOKEN.to_vec(),
                init_input: token_init("Another"),
            },
            1 => {
                Payload::DeployContract { code: b"\0asm garbage".to_vec(), init_input: Vec::new() }
            }
            _ => Payload::DeployContract {
                code: pactum_contract_wasm::TOKEN.to_vec(),
                init_input: token_init(""),
            },
        },
        _ => Payload::Governance {
            action: GovernanceAction::Propose {
                title: "random".into(),
                description: String::new(),
                expires_at_height: 10,
                changes: vec![GovernanceChange::SetPolicy {
                    class: pactum_types::ChangeClass::Policies,
                    policy: pactum_types::Policy::AtLeast { count: 1 },
                }],
            },
        },
    };
    sender.sign_with(chain_id(), nonce, gas_limit, payload)
}

fn blocks_hashes(block: &Block) -> BTreeSet<Hash> {
    block.transactions.iter().map(Transaction::hash).collect()
}

/// Executes a random chain for `seed`; returns its blocks.
fn random_chain(seed: u64, executor: &mut pactum_executor::Executor) -> Vec<Block> {
    let mut generator = Generator(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut accounts: Vec<Account> = (1..=ACCOUNTS).map(Account::new).collect();
    let token = accounts[0].next_contract_address();
    let deploy = accounts[0].deploy(pactum_contract_wasm::TOKEN, token_init("Random"));
    let first = next_block(executor, vec![deploy]);
    executor.execute_block(&first).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    let mut seen: BTreeSet<Hash> = blocks_hashes(&first);
    let mut blocks = vec![first];
    for _ in 0..BLOCKS {
        // A byte-identical repeat of a transaction gets an Invalid receipt here too, but
        // the store's transaction index keeps only its last occurrence, which the audit
        // refuses (ADR 0010, consequences); so the generator repeats nonces, never bytes.
        let mut transactions = Vec::with_capacity(TRANSACTIONS_PER_BLOCK);
        while transactions.len() < TRANSACTIONS_PER_BLOCK {
            let transaction = random_transaction(&mut generator, &mut accounts, token);
            if seen.insert(transaction.hash()) {
                transactions.push(transaction);
            }
        }
        let block = next_block(executor, transactions);
        executor.execute_block(&block).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        blocks.push(block);
        // Senders learn their next nonce from the ledger, as clients would.
        for account in &mut accounts {
            account.next_nonce = executor.next_nonce(&account.keypair.public_key()).unwrap();
        }
    }
    blocks
}

#[test]
fn random_blocks_always_execute_and_replay_identically_on_a_fresh_store() {
    for seed in 0..SEEDS {
        let first_directory = tempfile::tempdir().unwrap();
        let mut first = open(first_directory.path());
        let blocks = random_chain(seed, &mut first);

        // Receipts follow the rules: invalid is free, out of gas costs the whole limit,
        // and a sender's nonce moved once per transaction that was not invalid.
        let mut used: BTreeMap<PublicKey, u64> = BTreeMap::new();
        let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
        for block in &blocks {
            let outcome = first.store().block_outcome(block.header.height).unwrap().unwrap();
            for (transaction, receipt) in block.transactions.iter().zip(&outcome.receipts) {
                *statuses.entry(status_name(&receipt.status)).or_default() += 1;
                match &receipt.status {
                    ReceiptStatus::Invalid { .. } => {
                        assert_eq!(receipt.gas_used, 0, "seed {seed}");
                    }
                    status => {
                        if *status == ReceiptStatus::OutOfGas {
                            assert_eq!(
                                receipt.gas_used, transaction.unsigned.gas_limit,
                                "seed {seed}"
                            );
                        }
                        assert!(receipt.gas_used <= transaction.unsigned.gas_limit, "seed {seed}");
                        *used.entry(transaction.unsigned.sender).or_default() += 1;
                    }
                }
            }
        }
        for (sender, count) in &used {
            assert_eq!(first.next_nonce(sender).unwrap(), *count, "seed {seed}");
        }
        // Every outcome occurs, or the generator is not exercising the executor.
        for name in ["success", "reverted", "out_of_gas", "invalid"] {
            assert!(
                statuses.get(name).copied().unwrap_or(0) > 0,
                "seed {seed}: no {name} in {statuses:?}"
            );
        }

        // The token's supply is exactly the sum of its holders' balances.
        let accounts: Vec<Account> = (1..=ACCOUNTS).map(Account::new).collect();
        let token = pactum_vm::contract_address(&accounts[0].address(), 0);
        let held: u128 =
            accounts.iter().map(|account| balance(&first, token, account.address())).sum();
        assert_eq!(held, total_supply(&first, token), "seed {seed}");

        let second_directory = tempfile::tempdir().unwrap();
        let mut second = open(second_directory.path());
        for block in &blocks {
            let height = block.header.height;
            second.execute_block(block).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
            let expected = first.store().block_outcome(height).unwrap().unwrap().to_bytes();
            let got = second.store().block_outcome(height).unwrap().unwrap().to_bytes();
            assert_eq!(got, expected, "seed {seed}, block {height}");
        }
        assert_eq!(second.tip(), first.tip(), "seed {seed}");
        assert_ne!(first.tip().state_root, Hash::ZERO);
        pactum_storage::audit::audit(
            first.store(),
            &pactum_storage::builder::check_test_chain_certificate,
            &mut |_, _| {},
        )
        .unwrap_or_else(|fault| panic!("seed {seed}: {fault}"));
    }
}
