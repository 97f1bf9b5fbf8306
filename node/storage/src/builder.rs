//! Builds well-formed, fully signed chains: blocks whose transactions are signed by real
//! client keys, whose commit certificates are signed by real validator keys, and whose
//! result roots follow from what the store recorded.
//!
//! Benchmarks, the crash-safety writer and audit tests use it to produce realistic chains
//! without a running cluster. It executes nothing: each transaction's receipt and state
//! writes are a fixed function of its height and position.

use pactum_types::crypto::domain;
use pactum_types::hash::{sha3_256, sha3_256_parts};
use pactum_types::receipt::receipts_root;
use pactum_types::{
    Address, Block, BlockHeader, ChainId, CommitCertificate, CommitSignature, Event, Hash, Keypair,
    Payload, Receipt, ReceiptStatus, UnsignedTransaction,
};

use crate::read::StoreRead;
use crate::state_hash::StateHash;
use crate::store::{StateChange, StateSpace, StorageError, Store};

/// A block with what executing it "produced".
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    pub block: Block,
    pub receipts: Vec<Receipt>,
    pub state_changes: Vec<StateChange>,
}

/// Produces consecutive blocks of one chain.
#[derive(Debug)]
pub struct ChainBuilder {
    chain_id: ChainId,
    validators: Vec<Keypair>,
    clients: Vec<Keypair>,
    contract: Address,
    height: u64,
    previous_hash: Hash,
    previous_receipts_root: Hash,
    previous_state_root: Hash,
}

fn derived_keypair(seed: u64, role: &[u8], index: usize) -> Keypair {
    let digest = sha3_256_parts(&[
        b"pactum.builder",
        role,
        &seed.to_be_bytes(),
        &(index as u64).to_be_bytes(),
    ]);
    Keypair::from_seed(&digest.0)
}

impl ChainBuilder {
    /// A builder for a new chain whose keys are derived from `seed`.
    pub fn new(chain_id: ChainId, validators: usize, clients: usize, seed: u64) -> Self {
        assert!(validators > 0 && clients > 0, "a chain needs validators and clients");
        Self {
            chain_id,
            validators: (0..validators)
                .map(|index| derived_keypair(seed, b"validator", index))
                .collect(),
            clients: (0..clients).map(|index| derived_keypair(seed, b"client", index)).collect(),
            contract: Address(sha3_256(b"pactum.builder.contract").0),
            height: 0,
            previous_hash: Hash::ZERO,
            previous_receipts_root: receipts_root(&[]),
            previous_state_root: StateHash::default().root(),
        }
    }

    /// Continues the chain already in `store` (after a restart).
    pub fn resume(mut self, store: &Store) -> Result<Self, StorageError> {
        let height = store.last_height();
        if height == 0 {
            return Ok(self);
        }
        let block = store.block(height)?.ok_or_else(|| StorageError::Corrupt {
            what: format!("block {height}"),
            detail: "missing".into(),
        })?;
        let outcome = store.block_outcome(height)?.ok_or_else(|| StorageError::Corrupt {
            what: format!("receipts of block {height}"),
            detail: "missing".into(),
        })?;
        self.height = height;
        self.previous_hash = block.hash();
        self.previous_receipts_root = receipts_root(&outcome.receipts);
        self.previous_state_root = outcome.state_root;
        Ok(self)
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    /// The next block, with `transactions` signed transfers.
    pub fn next_block(&self, transactions: usize) -> BuiltBlock {
        let height = self.height + 1;
        let signed: Vec<_> = (0..transactions)
            .map(|position| {
                let client = &self.clients[position % self.clients.len()];
                let mut input = Vec::with_capacity(48);
                input.extend_from_slice(&height.to_be_bytes());
                input.extend_from_slice(&(position as u64).to_be_bytes());
                input.extend_from_slice(&client.public_key().0);
                UnsignedTransaction {
                    chain_id: self.chain_id.clone(),
                    sender: client.public_key(),
                    nonce: height * 1_000_000 + position as u64,
                    gas_limit: 50_000,
                    payload: Payload::CallContract {
                        contract: self.contract,
                        method: "transfer".into(),
                        input,
                    },
                }
                .sign(client)
            })
            .collect();
        let receipts: Vec<Receipt> = signed
            .iter()
            .enumerate()
            .map(|(position, transaction)| Receipt {
                transaction_hash: transaction.hash(),
                status: ReceiptStatus::Success,
                gas_used: 20_000 + position as u64,
                events: vec![Event {
                    contract: self.contract,
                    topic: "Transfer".into(),
                    data: height.to_be_bytes().to_vec(),
                }],
                return_data: Vec::new(),
            })
            .collect();
        // Each transaction overwrites one of 64 keys, so state both grows and changes.
        let state_changes: Vec<StateChange> = (0..transactions)
            .map(|position| StateChange {
                space: StateSpace::Contract(self.contract),
                key: format!("balance/{}", (height as usize * 7 + position) % 64).into_bytes(),
                value: if (height + position as u64).is_multiple_of(11) {
                    None
                } else {
                    Some([height.to_be_bytes(), (position as u64).to_be_bytes()].concat())
                },
            })
            .collect();
        let proposer = &self.validators[(height as usize) % self.validators.len()];
        let header = BlockHeader {
            chain_id: self.chain_id.clone(),
            height,
            previous_hash: self.previous_hash,
            timestamp_ms: 1_767_225_600_000 + height * 500,
            proposer: proposer.public_key(),
            view: 0,
            sequence: height,
            transactions_root: pactum_types::block::transactions_root(&signed),
            previous_receipts_root: self.previous_receipts_root,
            previous_state_root: self.previous_state_root,
            validators_hash: Hash::ZERO,
        };
        let header_hash = header.hash();
        let quorum = 2 * ((self.validators.len() - 1) / 3) + 1;
        let signatures = self.validators[..quorum]
            .iter()
            .map(|validator| CommitSignature {
                validator: validator.public_key(),
                signature: validator.sign(domain::TEST_CHAIN_COMMIT, &header_hash.0),
            })
            .collect();
        let certificate =
            CommitCertificate::new(header.view, signatures).expect("validator keys are distinct");
        BuiltBlock {
            block: Block { header, transactions: signed, certificate },
            receipts,
            state_changes,
        }
    }

    /// Records that `built` was committed with `state_root`, so the next block links to it.
    pub fn committed(&mut self, built: &BuiltBlock, state_root: Hash) {
        assert_eq!(built.block.header.height, self.height + 1, "blocks are recorded in order");
        self.height += 1;
        self.previous_hash = built.block.hash();
        self.previous_receipts_root = receipts_root(&built.receipts);
        self.previous_state_root = state_root;
    }

    /// Builds and commits `blocks` blocks of `transactions` each into `store`.
    pub fn extend(
        &mut self,
        store: &mut Store,
        blocks: u64,
        transactions: usize,
    ) -> Result<(), StorageError> {
        for _ in 0..blocks {
            let built = self.next_block(transactions);
            let state_root = store.commit_block(crate::store::BlockCommit {
                block: &built.block,
                receipts: &built.receipts,
                state_changes: &built.state_changes,
            })?;
            self.committed(&built, state_root);
        }
        Ok(())
    }
}

/// The certificate check for chains this builder (and other test fixtures) make: every
/// signature is over the header hash under [`domain::TEST_CHAIN_COMMIT`]. A validator's
/// chain is checked against PBFT COMMITs instead (`pactum_runtime::certificate`).
/// Test chains are committed in the view they were proposed in, so the certificate's view
/// must be the header's.
pub fn check_test_chain_certificate(block: &Block) -> Result<(), String> {
    if block.certificate.view() != block.header.view {
        return Err(format!(
            "the certificate is of view {}, the header of view {}",
            block.certificate.view(),
            block.header.view
        ));
    }
    let signed = [domain::TEST_CHAIN_COMMIT, &block.hash().0].concat();
    block
        .certificate
        .verify_signatures(&|_| Some(signed.clone()))
        .map_err(|error| error.to_string())
}
