//! The mempool log: the transactions clients gave a validator that are not yet settled,
//! in their own small RocksDB (transaction hash -> canonical bytes), so that a `202
//! Accepted` survives a crash of the node that gave it.
//!
//! It is its own database, not a column family of the ledger or consensus store: its
//! synced writes (one per admission batch) then never queue behind, or hold up, the
//! consensus log's, and a store from before it existed needs no migration. Its values are
//! signed transactions, which do not compress, so it stores them uncompressed.

use std::path::{Path, PathBuf};

use pactum_types::Hash;
use rocksdb::{DB, IteratorMode, Options, WriteBatch, WriteOptions};

use crate::store::{StorageError, map_open_error};

/// A node's durable mempool log.
pub struct MempoolLog {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for MempoolLog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("MempoolLog").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The log's memtable size: also how much log is written before the WAL rolls over.
const MEMTABLE_BYTES: usize = 4 * 1024 * 1024;

impl MempoolLog {
    /// Opens (creating if needed) the log in `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(rocksdb::DBCompressionType::None);
        options.set_max_open_files(64);
        // Every client answer waits for a synced write here, so the WAL's fdatasync must
        // be cheap: small memtables roll the WAL over often, and recycled WAL files are
        // overwritten in place, so a sync flushes data blocks without growing the file
        // (no file-size metadata to journal). Recycling needs point-in-time recovery.
        options.set_write_buffer_size(MEMTABLE_BYTES);
        options.set_recycle_log_file_num(4);
        options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
        let db = DB::open(&options, &path).map_err(|source| map_open_error(&path, source))?;
        Ok(Self { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds `put` (transaction hash, canonical bytes) and removes `delete`, in one batch.
    /// With `sync` the batch is on disk (it survives a machine crash) before this returns;
    /// without, it survives a crash of the process only.
    pub fn write(
        &self,
        put: &[(Hash, &[u8])],
        delete: &[Hash],
        sync: bool,
    ) -> Result<(), StorageError> {
        if put.is_empty() && delete.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for hash in delete {
            batch.delete(hash.0);
        }
        for (hash, bytes) in put {
            batch.put(hash.0, bytes);
        }
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(batch, &options).map_err(StorageError::rocks("write the mempool log"))
    }

    /// Every transaction in the log, as (hash, canonical bytes), in hash order.
    pub fn entries(&self) -> Result<Vec<(Hash, Vec<u8>)>, StorageError> {
        let mut entries = Vec::new();
        for entry in self.db.iterator(IteratorMode::Start) {
            let (key, value) = entry.map_err(StorageError::rocks("read the mempool log"))?;
            let hash: [u8; 32] = key.as_ref().try_into().map_err(|_| StorageError::Corrupt {
                what: "a mempool log key".into(),
                detail: format!("expected 32 bytes, found {}", key.len()),
            })?;
            entries.push((Hash(hash), value.to_vec()));
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_put_stays_until_it_is_deleted_across_reopen() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("mempool");
        let (first, second, third) = (Hash([1; 32]), Hash([2; 32]), Hash([3; 32]));
        {
            let log = MempoolLog::open(&path).unwrap();
            log.write(&[(first, b"one"), (second, b"two")], &[], true).unwrap();
            log.write(&[(third, b"three")], &[first], false).unwrap();
            log.write(&[], &[], true).unwrap();
        }
        let log = MempoolLog::open(&path).unwrap();
        assert_eq!(
            log.entries().unwrap(),
            vec![(second, b"two".to_vec()), (third, b"three".to_vec())]
        );
    }

    #[test]
    fn a_second_opener_is_told_the_log_is_in_use() {
        let directory = tempfile::tempdir().unwrap();
        let _log = MempoolLog::open(directory.path()).unwrap();
        assert!(matches!(MempoolLog::open(directory.path()), Err(StorageError::Locked { .. })));
    }
}
