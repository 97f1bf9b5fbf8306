//! What a contract can read (a [`StateView`]) and what one execution wrote (a
//! [`WriteSet`]), with the write overlay in between.
//!
//! The VM never writes to the state view. Every write of a transaction lands in its
//! [`Overlay`]; the overlay becomes the transaction's write set only when the transaction
//! succeeds, and is dropped otherwise. Nested calls mark the overlay's journal, so a
//! failed inner call undoes exactly its own writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use pactum_types::{Address, Hash};
use thiserror::Error;

/// The state a transaction executes against: contract storage and deployed contracts.
///
/// The node's executor implements it over RocksDB (plus the writes of the earlier
/// transactions of the block); [`MemoryState`] implements it over `BTreeMap`s for tests.
/// An `Err` is an operating error of the node (a disk failure), never a contract outcome:
/// the VM returns it as [`crate::VmError::State`] instead of a receipt.
pub trait StateView: Send + Sync {
    /// The value stored under `key` in `contract`'s storage.
    fn storage(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    /// The code hash of the contract deployed at `address`, if any.
    fn contract_code_hash(&self, address: &Address) -> Result<Option<Hash>, StateError>;

    /// The code whose SHA3-256 hash is `code_hash`, if any contract was deployed with it.
    fn code(&self, code_hash: &Hash) -> Result<Option<Arc<Vec<u8>>>, StateError>;
}

/// The state view could not answer (for example, a disk read failed).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("state view failed: {reason}")]
pub struct StateError {
    pub reason: String,
}

/// One contract deployed by a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedContract {
    pub code_hash: Hash,
    pub code: Arc<Vec<u8>>,
}

/// Everything a successful transaction changed, in a canonical (sorted) order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSet {
    /// `(contract, key) -> Some(value)` for a write, `None` for a removal.
    pub storage: BTreeMap<(Address, Vec<u8>), Option<Vec<u8>>>,
    /// Contracts deployed by the transaction.
    pub contracts: BTreeMap<Address, DeployedContract>,
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.storage.is_empty() && self.contracts.is_empty()
    }
}

/// An in-memory state, for tests, benchmarks and the contract harness's real-VM runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    pub storage: BTreeMap<(Address, Vec<u8>), Vec<u8>>,
    pub contracts: BTreeMap<Address, Hash>,
    pub codes: BTreeMap<Hash, Arc<Vec<u8>>>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a successful transaction's writes.
    pub fn apply(&mut self, write_set: &WriteSet) {
        for ((contract, key), value) in &write_set.storage {
            match value {
                Some(value) => {
                    self.storage.insert((*contract, key.clone()), value.clone());
                }
                None => {
                    self.storage.remove(&(*contract, key.clone()));
                }
            }
        }
        for (address, deployed) in &write_set.contracts {
            self.contracts.insert(*address, deployed.code_hash);
            self.codes.insert(deployed.code_hash, Arc::clone(&deployed.code));
        }
    }
}

impl StateView for MemoryState {
    fn storage(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.storage.get(&(*contract, key.to_vec())).cloned())
    }

    fn contract_code_hash(&self, address: &Address) -> Result<Option<Hash>, StateError> {
        Ok(self.contracts.get(address).copied())
    }

    fn code(&self, code_hash: &Hash) -> Result<Option<Arc<Vec<u8>>>, StateError> {
        Ok(self.codes.get(code_hash).cloned())
    }
}

/// A storage write's key and the overlay entry it replaced (`None`: there was none).
type JournalEntry = (Address, Vec<u8>, Option<Option<Vec<u8>>>);

/// A transaction's pending writes over a state view, with a journal for nested calls.
pub(crate) struct Overlay {
    base: Arc<dyn StateView>,
    writes: WriteSet,
    /// For every write, the overlay entry it replaced (`None`: there was none).
    journal: Vec<JournalEntry>,
}

/// A point in the overlay's journal to roll back to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverlayMark {
    journal_length: usize,
}

impl Overlay {
    pub(crate) fn new(base: Arc<dyn StateView>) -> Self {
        Self { base, writes: WriteSet::default(), journal: Vec::new() }
    }

    pub(crate) fn get(
        &self,
        contract: &Address,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StateError> {
        // The lookup key is built only to probe the map; writes are rare next to reads.
        match self.writes.storage.get(&(*contract, key.to_vec())) {
            Some(value) => Ok(value.clone()),
            None => self.base.storage(contract, key),
        }
    }

    pub(crate) fn set(&mut self, contract: Address, key: Vec<u8>, value: Option<Vec<u8>>) {
        let previous = self.writes.storage.insert((contract, key.clone()), value);
        self.journal.push((contract, key, previous));
    }

    pub(crate) fn mark(&self) -> OverlayMark {
        OverlayMark { journal_length: self.journal.len() }
    }

    /// Undoes every storage write made since `mark`.
    pub(crate) fn rollback(&mut self, mark: OverlayMark) {
        while self.journal.len() > mark.journal_length {
            let Some((contract, key, previous)) = self.journal.pop() else { break };
            match previous {
                Some(value) => {
                    self.writes.storage.insert((contract, key), value);
                }
                None => {
                    self.writes.storage.remove(&(contract, key));
                }
            }
        }
    }

    pub(crate) fn deploy(&mut self, address: Address, deployed: DeployedContract) {
        self.writes.contracts.insert(address, deployed);
    }

    pub(crate) fn contract_code_hash(&self, address: &Address) -> Result<Option<Hash>, StateError> {
        match self.writes.contracts.get(address) {
            Some(deployed) => Ok(Some(deployed.code_hash)),
            None => self.base.contract_code_hash(address),
        }
    }

    pub(crate) fn code(&self, code_hash: &Hash) -> Result<Option<Arc<Vec<u8>>>, StateError> {
        if let Some(deployed) =
            self.writes.contracts.values().find(|deployed| deployed.code_hash == *code_hash)
        {
            return Ok(Some(Arc::clone(&deployed.code)));
        }
        self.base.code(code_hash)
    }

    pub(crate) fn into_write_set(self) -> WriteSet {
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_exactly_the_writes_before_the_mark() {
        let contract = Address([1; 32]);
        let mut base = MemoryState::new();
        base.storage.insert((contract, b"a".to_vec()), b"base".to_vec());
        let mut overlay = Overlay::new(Arc::new(base));
        overlay.set(contract, b"a".to_vec(), Some(b"one".to_vec()));
        let mark = overlay.mark();
        overlay.set(contract, b"a".to_vec(), None);
        overlay.set(contract, b"b".to_vec(), Some(b"two".to_vec()));
        assert_eq!(overlay.get(&contract, b"a").unwrap(), None);
        overlay.rollback(mark);
        assert_eq!(overlay.get(&contract, b"a").unwrap(), Some(b"one".to_vec()));
        assert_eq!(overlay.get(&contract, b"b").unwrap(), None);
        let write_set = overlay.into_write_set();
        assert_eq!(write_set.storage.len(), 1);
    }
}
