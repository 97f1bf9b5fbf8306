//! Reading committed records: one implementation of every read, over the live database
//! (the writer's [`Store`], or a [`StoreReader`] beside it) or over a RocksDB snapshot
//! ([`StoreSnapshot`]), which sees the store exactly as it was after one committed block
//! however many blocks commit while it is read.

use std::sync::Arc;

use pactum_types::{Block, Decode, Hash, Receipt};
use rocksdb::{DB, DBIteratorWithThreadMode, IteratorMode, SnapshotWithThreadMode};

use crate::state_hash::StateHash;
use crate::store::{
    BlockOutcome, ColumnFamily, META_LAST_HEIGHT, META_STATE_HASH, StateEntry, StateSpace,
    StorageError, Store, TransactionLocation, column_family, height_key, read_u64, storage_key,
};

/// Where a read goes: the live database, or one snapshot of it.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)]
pub struct Source<'a> {
    db: &'a DB,
    snapshot: Option<&'a SnapshotWithThreadMode<'a, DB>>,
}

impl<'a> Source<'a> {
    fn family(self, family: ColumnFamily) -> &'a rocksdb::ColumnFamily {
        self.db.cf_handle(family.name()).expect("every column family is opened with the store")
    }

    fn get(
        self,
        family: ColumnFamily,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, rocksdb::Error> {
        let handle = self.family(family);
        match self.snapshot {
            Some(snapshot) => snapshot.get_cf(&handle, key),
            None => self.db.get_cf(&handle, key),
        }
    }

    fn iterator(
        self,
        family: ColumnFamily,
        mode: IteratorMode<'_>,
    ) -> DBIteratorWithThreadMode<'a, DB> {
        let handle = self.family(family);
        match self.snapshot {
            Some(snapshot) => snapshot.iterator_cf(&handle, mode),
            None => self.db.iterator_cf(&handle, mode),
        }
    }
}

/// The reads of committed records, the same over the live store and over a snapshot.
pub trait StoreRead: Send + Sync {
    /// Where this reader's reads go.
    fn source(&self) -> Source<'_>;

    /// Height of the last committed block as this reader sees it; 0 when none is.
    fn committed_height(&self) -> Result<u64, StorageError> {
        match self
            .source()
            .get(ColumnFamily::Meta, META_LAST_HEIGHT)
            .map_err(StorageError::rocks("read"))?
        {
            Some(bytes) => read_u64(&bytes, "last committed height"),
            None => Ok(0),
        }
    }

    /// The running state hash after the last committed block as this reader sees it.
    fn committed_state_hash(&self) -> Result<StateHash, StorageError> {
        match self
            .source()
            .get(ColumnFamily::Meta, META_STATE_HASH)
            .map_err(StorageError::rocks("read"))?
        {
            Some(bytes) => StateHash::from_bytes(&bytes).ok_or_else(|| StorageError::Corrupt {
                what: "state hash".into(),
                detail: format!("{} bytes instead of {}", bytes.len(), crate::state_hash::BYTES),
            }),
            None => Ok(StateHash::default()),
        }
    }

    /// The state root after the last committed block as this reader sees it.
    fn committed_state_root(&self) -> Result<Hash, StorageError> {
        Ok(self.committed_state_hash()?.root())
    }

    /// The encoded block at `height`, exactly as stored.
    fn raw_block(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.source()
            .get(ColumnFamily::Blocks, height_key(height))
            .map_err(StorageError::rocks("read block"))
    }

    fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        self.raw_block(height)?
            .map(|bytes| {
                Block::from_bytes(&bytes)
                    .map_err(|error| StorageError::corrupt(format!("block {height}"), &error))
            })
            .transpose()
    }

    fn block_outcome(&self, height: u64) -> Result<Option<BlockOutcome>, StorageError> {
        self.source()
            .get(ColumnFamily::Receipts, height_key(height))
            .map_err(StorageError::rocks("read receipts"))?
            .map(|bytes| {
                BlockOutcome::from_bytes(&bytes).map_err(|error| {
                    StorageError::corrupt(format!("receipts of block {height}"), &error)
                })
            })
            .transpose()
    }

    fn transaction_location(
        &self,
        hash: &Hash,
    ) -> Result<Option<TransactionLocation>, StorageError> {
        self.source()
            .get(ColumnFamily::TransactionIndex, hash.0)
            .map_err(StorageError::rocks("read transaction index"))?
            .map(|bytes| {
                TransactionLocation::from_bytes(&bytes).map_err(|error| {
                    StorageError::corrupt(format!("index entry of {hash}"), &error)
                })
            })
            .transpose()
    }

    /// The receipt of a committed transaction.
    fn receipt(&self, hash: &Hash) -> Result<Option<Receipt>, StorageError> {
        let Some(location) = self.transaction_location(hash)? else {
            return Ok(None);
        };
        let outcome =
            self.block_outcome(location.height)?.ok_or_else(|| StorageError::Corrupt {
                what: format!("receipts of block {}", location.height),
                detail: "missing".into(),
            })?;
        outcome.receipts.into_iter().nth(location.position as usize).map(Some).ok_or_else(|| {
            StorageError::Corrupt {
                what: format!("index entry of {hash}"),
                detail: format!("position {} is past the block's receipts", location.position),
            }
        })
    }

    /// Reads a state value as of the last committed block.
    fn state_get(&self, space: StateSpace, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.source()
            .get(column_family(space), storage_key(space, key))
            .map_err(StorageError::rocks("read state"))
    }

    /// Up to `limit` state entries of `space` whose keys start with `prefix`, in key order,
    /// starting at `prefix ‖ after` exclusive when `after` is given (for pagination). Keys
    /// are returned without the space's prefix.
    fn state_scan(
        &self,
        space: StateSpace,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<StateEntry>, StorageError> {
        let full_prefix = storage_key(space, prefix);
        let space_prefix_length = full_prefix.len() - prefix.len();
        let start = match after {
            Some(after) => storage_key(space, &[prefix, after].concat()),
            None => full_prefix.clone(),
        };
        let mode = IteratorMode::From(&start, rocksdb::Direction::Forward);
        let mut entries = Vec::new();
        for entry in self.source().iterator(column_family(space), mode) {
            let (key, value) = entry.map_err(StorageError::rocks("scan state"))?;
            if !key.starts_with(&full_prefix) || entries.len() >= limit {
                break;
            }
            if after.is_some() && *key == *start {
                continue;
            }
            entries.push((key[space_prefix_length..].to_vec(), value.to_vec()));
        }
        Ok(entries)
    }
}

/// A read handle on a [`Store`] for other threads: it reads the live database beside the
/// writer, never waiting for it, and takes snapshots. Cheap to clone.
#[derive(Clone)]
pub struct StoreReader {
    db: Arc<DB>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("StoreReader").field("path", &self.db.path()).finish()
    }
}

impl StoreReader {
    pub(crate) fn new(db: Arc<DB>) -> Self {
        Self { db }
    }

    /// The store as it is now, held however many blocks commit after.
    pub fn snapshot(&self) -> StoreSnapshot {
        StoreSnapshot(OwnedSnapshot::new(Arc::clone(&self.db), |db| db.snapshot()))
    }
}

impl StoreRead for StoreReader {
    fn source(&self) -> Source<'_> {
        Source { db: &self.db, snapshot: None }
    }
}

impl StoreRead for Store {
    fn source(&self) -> Source<'_> {
        Source { db: self.db(), snapshot: None }
    }
}

type Snapshot<'a> = SnapshotWithThreadMode<'a, DB>;

self_cell::self_cell!(
    struct OwnedSnapshot {
        owner: Arc<DB>,
        #[covariant]
        dependent: Snapshot,
    }
);

/// The store exactly as it was when the snapshot was taken: every read sees the same
/// committed block, and the writer never waits for it.
pub struct StoreSnapshot(OwnedSnapshot);

impl std::fmt::Debug for StoreSnapshot {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StoreSnapshot")
            .field("path", &self.0.borrow_owner().path())
            .finish()
    }
}

impl StoreRead for StoreSnapshot {
    fn source(&self) -> Source<'_> {
        Source { db: self.0.borrow_owner(), snapshot: Some(self.0.borrow_dependent()) }
    }
}
