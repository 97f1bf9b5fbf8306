//! The offline chain audit behind `pactum chain verify`.
//!
//! It walks every stored block from height 1 and checks, in order: the block decodes
//! canonically; its height matches its key; the chain id is the chain's; the parent hash
//! links; the transactions root matches the body; every transaction is for this chain and
//! carries a valid signature; the commit certificate passes the caller's check (for a node's
//! chain: a quorum of the genesis validators' PBFT COMMITs over the block's proposal, ADR
//! 0011, checked by `pactum_runtime::certificate`); the receipts stored beside it match its transactions; the next header's result
//! roots match the stored receipts and state root; and the transaction index points at the
//! block. After the walk it checks that nothing is stored past the last committed height
//! and that the state on disk hashes to the last state root.
//!
//! Storage knows nothing of consensus, so the certificate check is passed in.

use pactum_types::crypto::{SignedMessage, verify_batch};
use pactum_types::receipt::receipts_root;
use pactum_types::{Block, ChainId, Decode, Hash};
use thiserror::Error;

use crate::read::StoreRead;
use crate::state_hash::StateHash;
use crate::store::{BlockOutcome, StorageError, Store};

/// The first fault found.
#[derive(Debug, Error)]
pub enum AuditFault {
    #[error("block {height} is bad: {reason}")]
    Block { height: u64, reason: String },
    #[error("the store is bad after the last block: {reason}")]
    Store { reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a clean audit covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub blocks: u64,
    pub transactions: u64,
    pub chain_id: Option<ChainId>,
    pub last_block_hash: Hash,
    pub state_root: Hash,
}

fn fault(height: u64, reason: impl Into<String>) -> AuditFault {
    AuditFault::Block { height, reason: reason.into() }
}

/// Audits the whole chain in `store`. `progress(done, total)` is called after each block.
pub fn audit(
    store: &Store,
    check_certificate: &dyn Fn(&Block) -> Result<(), String>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditReport, AuditFault> {
    let last_height = store.last_height();
    let mut chain_id: Option<ChainId> = None;
    let mut previous_hash = Hash::ZERO;
    let mut previous_outcome =
        BlockOutcome { state_root: StateHash::default().root(), receipts: Vec::new() };
    let mut transactions_total = 0u64;
    // Distinct transactions: repeats share their first occurrence's index entry.
    let mut indexed_total = 0u64;

    for height in 1..=last_height {
        let raw = store
            .raw_block(height)?
            .ok_or_else(|| fault(height, "the block is missing from the store"))?;
        let block = Block::from_bytes(&raw)
            .map_err(|error| fault(height, format!("the stored bytes do not decode: {error}")))?;
        let header = &block.header;
        if header.height != height {
            return Err(fault(height, format!("its header says height {}", header.height)));
        }
        match &chain_id {
            None => chain_id = Some(header.chain_id.clone()),
            Some(expected) if *expected != header.chain_id => {
                return Err(fault(
                    height,
                    format!("chain id {} differs from the chain's {}", header.chain_id, expected),
                ));
            }
            Some(_) => {}
        }
        if header.previous_hash != previous_hash {
            return Err(fault(
                height,
                format!(
                    "previous hash {} does not match the hash {} of block {}",
                    header.previous_hash,
                    previous_hash,
                    height - 1
                ),
            ));
        }
        let computed_root = block.computed_transactions_root();
        if computed_root != header.transactions_root {
            return Err(fault(
                height,
                format!(
                    "transactions root {} does not match the body's root {}",
                    header.transactions_root, computed_root
                ),
            ));
        }
        check_transactions(&block)?;
        check_certificate(&block)
            .map_err(|error| fault(height, format!("commit certificate: {error}")))?;

        let expected_receipts_root = receipts_root(&previous_outcome.receipts);
        if header.previous_receipts_root != expected_receipts_root {
            return Err(fault(
                height,
                format!(
                    "previous receipts root {} does not match the stored receipts of block {} (root {})",
                    header.previous_receipts_root,
                    height - 1,
                    expected_receipts_root
                ),
            ));
        }
        if header.previous_state_root != previous_outcome.state_root {
            return Err(fault(
                height,
                format!(
                    "previous state root {} does not match the stored state root {} after block {}",
                    header.previous_state_root,
                    previous_outcome.state_root,
                    height - 1
                ),
            ));
        }

        let outcome = match store.block_outcome(height) {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return Err(fault(height, "its receipts are missing from the store")),
            Err(StorageError::Corrupt { detail, .. }) => {
                return Err(fault(height, format!("its stored receipts do not decode: {detail}")));
            }
            Err(error) => return Err(error.into()),
        };
        if outcome.receipts.len() != block.transactions.len() {
            return Err(fault(
                height,
                format!(
                    "{} receipts are stored for {} transactions",
                    outcome.receipts.len(),
                    block.transactions.len()
                ),
            ));
        }
        for (position, (transaction, receipt)) in
            block.transactions.iter().zip(&outcome.receipts).enumerate()
        {
            let hash = transaction.hash();
            if receipt.transaction_hash != hash {
                return Err(fault(
                    height,
                    format!(
                        "receipt {position} is for {}, not for transaction {hash}",
                        receipt.transaction_hash
                    ),
                ));
            }
            let location = match store.transaction_location(&hash) {
                Err(StorageError::Corrupt { detail, .. }) => {
                    return Err(fault(
                        height,
                        format!(
                            "the index entry of transaction {position} does not decode: {detail}"
                        ),
                    ));
                }
                other => other?,
            };
            match location {
                Some(location)
                    if location.height == height && location.position as usize == position =>
                {
                    indexed_total += 1;
                }
                // A repeat of an earlier transaction: the index keeps the first occurrence.
                Some(location)
                    if (location.height, location.position as usize) < (height, position)
                        && holds_transaction(store, &block, height, location, &hash)? => {}
                Some(location) => {
                    return Err(fault(
                        height,
                        format!(
                            "transaction {position} ({hash}) is indexed at block {} position {}",
                            location.height, location.position
                        ),
                    ));
                }
                None => {
                    return Err(fault(
                        height,
                        format!("transaction {position} ({hash}) is not indexed"),
                    ));
                }
            }
        }

        transactions_total += block.transactions.len() as u64;
        previous_hash = header.hash();
        previous_outcome = outcome;
        progress(height, last_height);
    }

    let highest = store.highest_stored_block()?;
    if highest > last_height {
        return Err(AuditFault::Store {
            reason: format!(
                "block {highest} is stored past the last committed height {last_height}"
            ),
        });
    }
    let mut index_entries = 0u64;
    for entry in store.transaction_index() {
        let (hash, location) = entry?;
        if location.height > last_height || location.height == 0 {
            return Err(AuditFault::Store {
                reason: format!(
                    "transaction {hash} is indexed at block {}, which is not committed",
                    location.height
                ),
            });
        }
        index_entries += 1;
    }
    if index_entries != indexed_total {
        return Err(AuditFault::Store {
            reason: format!(
                "the transaction index has {index_entries} entries for {indexed_total} distinct committed transactions"
            ),
        });
    }
    let state_root = store.recompute_state_root()?;
    if state_root != previous_outcome.state_root || state_root != store.state_root() {
        return Err(AuditFault::Store {
            reason: format!(
                "the stored state hashes to {state_root}, but the last block's state root is {}",
                previous_outcome.state_root
            ),
        });
    }
    Ok(AuditReport {
        blocks: last_height,
        transactions: transactions_total,
        chain_id,
        last_block_hash: previous_hash,
        state_root,
    })
}

fn check_transactions(block: &Block) -> Result<(), AuditFault> {
    let height = block.header.height;
    if let Some((position, transaction)) = block
        .transactions
        .iter()
        .enumerate()
        .find(|(_, transaction)| transaction.unsigned.chain_id != block.header.chain_id)
    {
        return Err(fault(
            height,
            format!(
                "transaction {position} ({}) is for chain {}",
                transaction.hash(),
                transaction.unsigned.chain_id
            ),
        ));
    }
    let messages: Vec<Vec<u8>> =
        block.transactions.iter().map(|transaction| transaction.signing_message()).collect();
    let items: Vec<SignedMessage<'_>> = block
        .transactions
        .iter()
        .zip(&messages)
        .map(|(transaction, message)| transaction.signed_message(message))
        .collect();
    verify_batch(&items).map_err(|failed| {
        let position = failed[0];
        fault(
            height,
            format!(
                "transaction {position} ({}) has an invalid signature",
                block.transactions[position].hash()
            ),
        )
    })
}

/// Whether the transaction at `location` (in an earlier block, or earlier in `block` at
/// `height`) is the one with `hash`.
fn holds_transaction(
    store: &Store,
    block: &Block,
    height: u64,
    location: crate::TransactionLocation,
    hash: &Hash,
) -> Result<bool, AuditFault> {
    let position = location.position as usize;
    if location.height == height {
        return Ok(block.transactions.get(position).is_some_and(|earlier| earlier.hash() == *hash));
    }
    let earlier = store.block(location.height)?;
    Ok(earlier
        .and_then(|earlier| {
            earlier.transactions.get(position).map(|transaction| transaction.hash())
        })
        .is_some_and(|earlier| earlier == *hash))
}
