//! Pactum's durable store, on RocksDB.
//!
//! This crate owns the on-disk layout: the column families, the schema version, and the
//! rule that a block, its receipts, its state changes and the new heights are written in
//! one synced `WriteBatch`. After `kill -9` at any instant the store reopens at the last
//! fully committed block.
//!
//! It knows nothing of consensus rules or contract execution: callers hand it blocks that
//! are already committed and the state changes that executing them produced. It checks the
//! local invariants it can (heights follow on, receipts match transactions) and treats a
//! violation as the caller's bug, reported as an error rather than written.

#![forbid(unsafe_code)]

pub mod audit;
pub mod builder;
mod mempool_log;
mod read;
pub mod state_hash;
mod store;

pub use mempool_log::MempoolLog;
pub use read::{Source, StoreRead, StoreReader, StoreSnapshot};
pub use store::{
    BlockCommit, BlockOutcome, ColumnFamily, LEDGER_PREFIX, SCHEMA_VERSION, StateChange,
    StateSpace, StorageError, Store, TransactionLocation,
};
