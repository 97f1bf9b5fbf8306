use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pactum_types::codec::{Reader, write};
use pactum_types::{Address, Block, Decode, DecodeError, Encode, Hash, Receipt, limits};
use rocksdb::{ColumnFamilyDescriptor, DB, IteratorMode, Options, WriteBatch, WriteOptions};
use thiserror::Error;

use crate::read::{StoreRead, StoreReader};
use crate::state_hash::StateHash;

/// The on-disk layout version this build reads and writes. Bump it with a migration
/// whenever a column family's keys or values change shape.
pub const SCHEMA_VERSION: u32 = 1;

/// The column families, each holding one kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnFamily {
    /// height (u64 BE) -> encoded `Block`.
    Blocks,
    /// transaction hash -> height (u64 BE) || position (u32 BE).
    TransactionIndex,
    /// height (u64 BE) -> encoded `BlockOutcome` (state root after the block, receipts).
    Receipts,
    /// contract address || key -> value.
    State,
    /// consortium configuration key -> value (members, validators, policies, revocations).
    Consortium,
    /// consensus log key -> record, owned by the consensus runtime.
    ConsensusLog,
    /// schema version, last committed height, the running state hash.
    Meta,
}

impl ColumnFamily {
    pub const ALL: [ColumnFamily; 7] = [
        ColumnFamily::Blocks,
        ColumnFamily::TransactionIndex,
        ColumnFamily::Receipts,
        ColumnFamily::State,
        ColumnFamily::Consortium,
        ColumnFamily::ConsensusLog,
        ColumnFamily::Meta,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ColumnFamily::Blocks => "blocks",
            ColumnFamily::TransactionIndex => "transaction_index",
            ColumnFamily::Receipts => "receipts",
            ColumnFamily::State => "state",
            ColumnFamily::Consortium => "consortium",
            ColumnFamily::ConsensusLog => "consensus_log",
            ColumnFamily::Meta => "meta",
        }
    }
}

const META_SCHEMA_VERSION: &[u8] = b"schema_version";
pub(crate) const META_LAST_HEIGHT: &[u8] = b"last_committed_height";
pub(crate) const META_STATE_HASH: &[u8] = b"state_hash";

/// Errors from the store. Messages name the data directory and say what to do.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("RocksDB failed to {operation}: {source}")]
    Rocks {
        operation: &'static str,
        #[source]
        source: rocksdb::Error,
    },
    #[error(
        "data directory {path} is in use by another process (is a node already running on it?)"
    )]
    Locked { path: PathBuf },
    #[error(
        "data directory {path} has schema version {found}, newer than the version {supported} \
         this build of pactum understands; upgrade pactum to open it"
    )]
    SchemaTooNew { path: PathBuf, found: u32, supported: u32 },
    #[error(
        "data directory {path} has schema version {found}, which this build of pactum \
         (schema {supported}) cannot read and has no migration for"
    )]
    SchemaUnknown { path: PathBuf, found: u32, supported: u32 },
    #[error("data directory {path} has an unreadable schema version record ({detail})")]
    SchemaUnreadable { path: PathBuf, detail: String },
    #[error(
        "data directory {path} holds data but no Pactum schema version; it is not a Pactum store"
    )]
    NotAPactumStore { path: PathBuf },
    #[error("data directory {path} does not exist or holds no Pactum store")]
    Missing { path: PathBuf },
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("cannot commit block at height {got}: the next height is {expected}")]
    HeightOutOfOrder { expected: u64, got: u64 },
    #[error("block at height {height} is inconsistent with what came with it: {detail}")]
    InconsistentCommit { height: u64, detail: String },
    #[error("the store was opened read-only")]
    ReadOnly,
}

impl StorageError {
    pub(crate) fn rocks(operation: &'static str) -> impl FnOnce(rocksdb::Error) -> StorageError {
        move |source| StorageError::Rocks { operation, source }
    }

    pub(crate) fn corrupt(what: impl Into<String>, error: &DecodeError) -> StorageError {
        StorageError::Corrupt { what: what.into(), detail: error.to_string() }
    }
}

/// One state entry: `(key, value)`.
pub type StateEntry = (Vec<u8>, Vec<u8>);

/// One consensus-log record: `(key, value)`.
pub type ConsensusLogRecord = (Vec<u8>, Vec<u8>);

/// Where a state key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateSpace {
    /// A contract's own storage.
    Contract(Address),
    /// The consortium configuration, changed only by governance.
    Consortium,
    /// The executor's own records about the ledger: account nonces, deployed contracts
    /// and their code. Stored in the `state` column family under [`LEDGER_PREFIX`], so
    /// they are part of the state root like any contract entry.
    Ledger,
}

/// The reserved 32-byte prefix of [`StateSpace::Ledger`] keys in the `state` column
/// family. Contract entries start with the contract's address, a SHA3-256 output; no
/// contract can have the all-zero address (that would take a preimage of zero), and only
/// the executor writes this space, so ledger records and contract storage never collide.
pub const LEDGER_PREFIX: [u8; 32] = [0; 32];

/// One write produced by executing a block: `None` removes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub space: StateSpace,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

impl StateChange {
    /// The key as stored in its column family (and as hashed into the state root).
    fn storage_key(&self) -> Vec<u8> {
        storage_key(self.space, &self.key)
    }

    fn column_family(&self) -> ColumnFamily {
        column_family(self.space)
    }
}

pub(crate) fn column_family(space: StateSpace) -> ColumnFamily {
    match space {
        StateSpace::Contract(_) | StateSpace::Ledger => ColumnFamily::State,
        StateSpace::Consortium => ColumnFamily::Consortium,
    }
}

pub(crate) fn storage_key(space: StateSpace, key: &[u8]) -> Vec<u8> {
    match space {
        StateSpace::Contract(address) => [&address.0[..], key].concat(),
        StateSpace::Ledger => [&LEDGER_PREFIX[..], key].concat(),
        StateSpace::Consortium => key.to_vec(),
    }
}

/// Everything that one committed block writes.
#[derive(Debug, Clone, Copy)]
pub struct BlockCommit<'a> {
    pub block: &'a Block,
    pub receipts: &'a [Receipt],
    pub state_changes: &'a [StateChange],
}

/// What executing a block produced, stored beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// The state root after this block; the next header carries it.
    pub state_root: Hash,
    pub receipts: Vec<Receipt>,
}

impl Encode for BlockOutcome {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.state_root.encode_to(out);
        write::sequence(out, &self.receipts);
    }
}

impl Decode for BlockOutcome {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            state_root: Hash::decode_from(reader)?,
            receipts: reader.sequence(limits::BLOCK_TRANSACTIONS_MAX, "receipts")?,
        })
    }
}

/// Where a committed transaction sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionLocation {
    pub height: u64,
    pub position: u32,
}

impl TransactionLocation {
    fn to_bytes(self) -> [u8; 12] {
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&self.height.to_be_bytes());
        bytes[8..].copy_from_slice(&self.position.to_be_bytes());
        bytes
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let location = Self { height: reader.u64("height")?, position: reader.u32("position")? };
        reader.finish()?;
        Ok(location)
    }
}

/// An open Pactum store.
pub struct Store {
    db: Arc<DB>,
    path: PathBuf,
    read_only: bool,
    last_height: u64,
    state_hash: StateHash,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("path", &self.path)
            .field("last_height", &self.last_height)
            .finish_non_exhaustive()
    }
}

fn options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    // Every committed block is one synced write; RocksDB's own WAL gives the atomicity.
    options.set_max_open_files(512);
    options
}

pub(crate) fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

pub(crate) fn read_u64(bytes: &[u8], what: &str) -> Result<u64, StorageError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        what: what.to_owned(),
        detail: format!("expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

impl Store {
    /// Opens (creating if needed) the store in `path` for reading and writing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let descriptors = ColumnFamily::ALL
            .iter()
            .map(|family| ColumnFamilyDescriptor::new(family.name(), Options::default()));
        let db = DB::open_cf_descriptors(&options(), &path, descriptors)
            .map_err(|source| map_open_error(&path, source))?;
        Self::finish_open(db, path, false)
    }

    /// Opens an existing store without taking its lock, so an audit can run beside a live
    /// node. Never writes.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        if !path.join("CURRENT").exists() {
            return Err(StorageError::Missing { path });
        }
        let names = ColumnFamily::ALL.iter().map(|family| family.name());
        let db = DB::open_cf_for_read_only(&options(), &path, names, false)
            .map_err(|source| map_open_error(&path, source))?;
        Self::finish_open(db, path, true)
    }

    fn finish_open(db: DB, path: PathBuf, read_only: bool) -> Result<Self, StorageError> {
        let meta = db.cf_handle(ColumnFamily::Meta.name()).expect("column family opened");
        let version = db.get_cf(&meta, META_SCHEMA_VERSION).map_err(StorageError::rocks("read"))?;
        match version {
            None => {
                let blocks = db.cf_handle(ColumnFamily::Blocks.name()).expect("opened");
                let has_blocks = db.iterator_cf(&blocks, IteratorMode::Start).next().is_some();
                if has_blocks {
                    return Err(StorageError::NotAPactumStore { path });
                }
                if read_only {
                    return Err(StorageError::Missing { path });
                }
                let mut options = WriteOptions::default();
                options.set_sync(true);
                let mut batch = WriteBatch::default();
                batch.put_cf(&meta, META_SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes());
                batch.put_cf(&meta, META_LAST_HEIGHT, 0u64.to_be_bytes());
                db.write_opt(batch, &options).map_err(StorageError::rocks("initialise"))?;
            }
            Some(bytes) => {
                let found: [u8; 4] =
                    bytes.as_slice().try_into().map_err(|_| StorageError::SchemaUnreadable {
                        path: path.clone(),
                        detail: format!("{} bytes instead of 4", bytes.len()),
                    })?;
                let found = u32::from_be_bytes(found);
                if found > SCHEMA_VERSION {
                    return Err(StorageError::SchemaTooNew {
                        path,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                if found != SCHEMA_VERSION {
                    return Err(StorageError::SchemaUnknown {
                        path,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
        }
        let mut store = Self {
            db: Arc::new(db),
            path,
            read_only,
            last_height: 0,
            state_hash: StateHash::default(),
        };
        store.load_meta()?;
        Ok(store)
    }

    /// Reads the cached meta records and checks them against the blocks on disk.
    fn load_meta(&mut self) -> Result<(), StorageError> {
        let last_height = self.committed_height()?;
        let state_hash = self.committed_state_hash()?;
        // The meta height and the blocks must agree: the block at the last height exists,
        // and none exists after it. Both are written in the same batch, so a mismatch
        // means the store was damaged outside Pactum.
        if last_height > 0 && self.raw_block(last_height)?.is_none() {
            return Err(StorageError::Corrupt {
                what: "meta".into(),
                detail: format!("last committed height is {last_height} but that block is missing"),
            });
        }
        if self.raw_block(last_height + 1)?.is_some() {
            return Err(StorageError::Corrupt {
                what: "meta".into(),
                detail: format!(
                    "last committed height is {last_height} but block {} exists",
                    last_height + 1
                ),
            });
        }
        self.last_height = last_height;
        self.state_hash = state_hash;
        Ok(())
    }

    fn cf(&self, family: ColumnFamily) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(family.name()).expect("every column family is opened with the store")
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// A read handle for other threads, which reads beside this writer without waiting
    /// for it and takes snapshots.
    pub fn reader(&self) -> StoreReader {
        StoreReader::new(Arc::clone(&self.db))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Height of the last committed block; 0 when none is.
    pub fn last_height(&self) -> u64 {
        self.last_height
    }

    /// The state root after the last committed block.
    pub fn state_root(&self) -> Hash {
        self.state_hash.root()
    }

    /// Commits one block atomically: block, receipts, transaction index, state changes and
    /// meta go to RocksDB in a single synced `WriteBatch`. Returns the new state root.
    pub fn commit_block(&mut self, commit: BlockCommit<'_>) -> Result<Hash, StorageError> {
        if self.read_only {
            return Err(StorageError::ReadOnly);
        }
        let header = &commit.block.header;
        let height = header.height;
        let expected = self.last_height + 1;
        if height != expected {
            return Err(StorageError::HeightOutOfOrder { expected, got: height });
        }
        let transactions = &commit.block.transactions;
        if commit.receipts.len() != transactions.len() {
            return Err(StorageError::InconsistentCommit {
                height,
                detail: format!(
                    "{} receipts for {} transactions",
                    commit.receipts.len(),
                    transactions.len()
                ),
            });
        }
        let hashes: Vec<Hash> = transactions.iter().map(|transaction| transaction.hash()).collect();
        if let Some(position) = hashes
            .iter()
            .zip(commit.receipts)
            .position(|(hash, receipt)| *hash != receipt.transaction_hash)
        {
            return Err(StorageError::InconsistentCommit {
                height,
                detail: format!("receipt {position} is not for transaction {position}"),
            });
        }

        let blocks = self.cf(ColumnFamily::Blocks);
        let index = self.cf(ColumnFamily::TransactionIndex);
        let receipts = self.cf(ColumnFamily::Receipts);
        let meta = self.cf(ColumnFamily::Meta);
        let mut batch = WriteBatch::default();
        batch.put_cf(&blocks, height_key(height), commit.block.to_bytes());
        // The index points at a transaction's first occurrence, which holds its real
        // receipt: a byte-identical repeat (which the executor answers `invalid`, its nonce
        // being used) must not hide it.
        let mut seen = std::collections::HashSet::new();
        for (position, hash) in hashes.iter().enumerate() {
            if !seen.insert(*hash) || self.transaction_location(hash)?.is_some() {
                continue;
            }
            let location = TransactionLocation { height, position: position as u32 };
            batch.put_cf(&index, hash.0, location.to_bytes());
        }

        // Apply the state changes in order to the running hash. A key written twice in one
        // block must see its own earlier write, not the value on disk.
        let mut state_hash = self.state_hash.clone();
        let mut pending: HashMap<(ColumnFamily, Vec<u8>), Option<Vec<u8>>> = HashMap::new();
        for change in commit.state_changes {
            let family = change.column_family();
            let key = change.storage_key();
            let previous = match pending.get(&(family, key.clone())) {
                Some(value) => value.clone(),
                None => self
                    .db
                    .get_cf(&self.cf(family), &key)
                    .map_err(StorageError::rocks("read state"))?,
            };
            if let Some(previous) = &previous {
                state_hash.remove(&hash_key(family, &key), previous);
            }
            let handle = self.cf(family);
            match &change.value {
                Some(value) => {
                    state_hash.insert(&hash_key(family, &key), value);
                    batch.put_cf(&handle, &key, value);
                }
                None => batch.delete_cf(&handle, &key),
            }
            pending.insert((family, key), change.value.clone());
        }
        let state_root = state_hash.root();
        let outcome = BlockOutcome { state_root, receipts: commit.receipts.to_vec() };
        batch.put_cf(&receipts, height_key(height), outcome.to_bytes());
        batch.put_cf(&meta, META_LAST_HEIGHT, height.to_be_bytes());
        batch.put_cf(&meta, META_STATE_HASH, state_hash.to_bytes());

        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(StorageError::rocks("commit block"))?;
        self.last_height = height;
        self.state_hash = state_hash;
        Ok(state_root)
    }

    /// Recomputes the state hash from every stored entry, for audits and snapshot checks.
    pub fn recompute_state_root(&self) -> Result<Hash, StorageError> {
        let mut state_hash = StateHash::default();
        for family in [ColumnFamily::State, ColumnFamily::Consortium] {
            for entry in self.db.iterator_cf(&self.cf(family), IteratorMode::Start) {
                let (key, value) = entry.map_err(StorageError::rocks("scan state"))?;
                state_hash.insert(&hash_key(family, &key), &value);
            }
        }
        Ok(state_hash.root())
    }

    /// Every transaction-index entry, for audits: `(hash, location)`.
    pub fn transaction_index(
        &self,
    ) -> impl Iterator<Item = Result<(Hash, TransactionLocation), StorageError>> + '_ {
        self.db.iterator_cf(&self.cf(ColumnFamily::TransactionIndex), IteratorMode::Start).map(
            |entry| {
                let (key, value) = entry.map_err(StorageError::rocks("scan transaction index"))?;
                let hash: [u8; 32] =
                    key.as_ref().try_into().map_err(|_| StorageError::Corrupt {
                        what: "transaction index".into(),
                        detail: format!("key of {} bytes", key.len()),
                    })?;
                let location = TransactionLocation::from_bytes(&value)
                    .map_err(|error| StorageError::corrupt("transaction index entry", &error))?;
                Ok((Hash(hash), location))
            },
        )
    }

    /// The highest height that has a block record, whatever meta says (for audits).
    pub fn highest_stored_block(&self) -> Result<u64, StorageError> {
        match self.db.iterator_cf(&self.cf(ColumnFamily::Blocks), IteratorMode::End).next() {
            None => Ok(0),
            Some(entry) => {
                let (key, _) = entry.map_err(StorageError::rocks("scan blocks"))?;
                read_u64(&key, "block key")
            }
        }
    }

    /// Writes one consensus-log record, synced before returning (persist before send).
    pub fn consensus_log_put(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::ReadOnly);
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db
            .put_cf_opt(&self.cf(ColumnFamily::ConsensusLog), key, value, &options)
            .map_err(StorageError::rocks("write consensus log"))
    }

    /// Writes several consensus-log records in one synced batch: all or none survive a
    /// crash.
    pub fn consensus_log_append(&self, records: &[ConsensusLogRecord]) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::ReadOnly);
        }
        let family = self.cf(ColumnFamily::ConsensusLog);
        let mut batch = WriteBatch::default();
        for (key, value) in records {
            batch.put_cf(&family, key, value);
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(StorageError::rocks("write consensus log"))
    }

    /// Replaces the whole consensus log with `records` in one synced batch (compaction
    /// after a stable checkpoint): a crash leaves either the old log or the new one.
    pub fn consensus_log_rewrite(
        &self,
        records: &[ConsensusLogRecord],
    ) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::ReadOnly);
        }
        let family = self.cf(ColumnFamily::ConsensusLog);
        let mut batch = WriteBatch::default();
        for entry in self.db.iterator_cf(&family, IteratorMode::Start) {
            let (key, _) = entry.map_err(StorageError::rocks("scan consensus log"))?;
            batch.delete_cf(&family, key);
        }
        for (key, value) in records {
            batch.put_cf(&family, key, value);
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(StorageError::rocks("rewrite consensus log"))
    }

    /// Every consensus-log record in key order.
    pub fn consensus_log(&self) -> Result<Vec<ConsensusLogRecord>, StorageError> {
        self.db
            .iterator_cf(&self.cf(ColumnFamily::ConsensusLog), IteratorMode::Start)
            .map(|entry| {
                entry
                    .map(|(key, value)| (key.to_vec(), value.to_vec()))
                    .map_err(StorageError::rocks("scan consensus log"))
            })
            .collect()
    }

    /// Deletes consensus-log records with keys in `[start, end)` (garbage collection below
    /// a stable checkpoint).
    pub fn consensus_log_delete_range(&self, start: &[u8], end: &[u8]) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::ReadOnly);
        }
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(&self.cf(ColumnFamily::ConsensusLog), start, end);
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(StorageError::rocks("truncate consensus log"))
    }
}

/// The key hashed into the state root: the column family is part of it, so a contract
/// entry and a consortium entry with the same bytes never cancel each other.
fn hash_key(family: ColumnFamily, key: &[u8]) -> Vec<u8> {
    let tag = match family {
        ColumnFamily::Consortium => 1u8,
        _ => 0u8,
    };
    [&[tag][..], key].concat()
}

pub(crate) fn map_open_error(path: &Path, source: rocksdb::Error) -> StorageError {
    let text = source.to_string();
    if text.contains("lock")
        && (text.contains("Resource temporarily unavailable")
            || text.contains("No locks available"))
    {
        StorageError::Locked { path: path.to_path_buf() }
    } else {
        StorageError::Rocks { operation: "open the data directory", source }
    }
}
