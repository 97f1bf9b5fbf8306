//! The consensus log: every [`Record`] the PBFT replica asks to persist, written to the
//! store's `consensus_log` column family before any message that depends on it is sent.
//!
//! Records are keyed by a counter (8 bytes, big-endian), so reading the column family in
//! key order replays them in the order they were written, which is what
//! [`pactum_consensus::Replica::new`] expects. One call to [`ConsensusLog::persist`] writes
//! one step's records (or a few steps') in one synced batch. When a record raises the log
//! floor (a stable checkpoint, or a NEW-VIEW of a later view), the log is compacted:
//! records the floor makes obsolete ([`Record::obsolete`]) are dropped in the same synced
//! rewrite, so the log stays bounded by the watermark window and the current view.
//!
//! The log belongs to one epoch (ADR 0021), named by the record under the key `epoch`
//! (the counters are 8 bytes, so it cannot collide): a replica of another epoch starts
//! from an empty log, whatever a crash left.

use pactum_consensus::{LogFloor, Record};
use pactum_storage::{StorageError, Store};
use pactum_types::codec::{Decode, Encode};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "consensus-log record {key} cannot be read ({reason}); the data directory is damaged or was written by a newer pactum"
    )]
    Corrupt { key: String, reason: String },
}

/// The key of the record naming the log's epoch.
const EPOCH_KEY: &[u8] = b"epoch";

/// The replica's durable log, mirrored in memory for compaction.
#[derive(Debug)]
pub struct ConsensusLog {
    /// The epoch the records belong to.
    epoch: u64,
    next_key: u64,
    records: Vec<(u64, Record)>,
    floor: LogFloor,
    /// Synced writes so far (one per `persist` call with records).
    writes: u64,
}

impl ConsensusLog {
    /// Reads the log of `epoch`; returns it with its records in write order. A log of
    /// another epoch (or one written before logs named their epoch, which is epoch 0's)
    /// is emptied, durably, first.
    pub fn open(store: &Store, epoch: u64) -> Result<(Self, Vec<Record>), LogError> {
        let mut records = Vec::new();
        let mut logged_epoch = 0;
        for (key, value) in store.consensus_log()? {
            let corrupt = |reason: String| LogError::Corrupt { key: hex(&key), reason };
            if key == EPOCH_KEY {
                let bytes: [u8; 8] = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("the epoch is not 8 bytes".into()))?;
                logged_epoch = u64::from_be_bytes(bytes);
                continue;
            }
            let counter: [u8; 8] =
                key.as_slice().try_into().map_err(|_| corrupt("the key is not 8 bytes".into()))?;
            let record = Record::from_bytes(&value).map_err(|error| corrupt(error.to_string()))?;
            records.push((u64::from_be_bytes(counter), record));
        }
        if logged_epoch != epoch {
            store.consensus_log_rewrite(&[epoch_record(epoch)])?;
            records.clear();
        }
        let next_key = records.last().map_or(0, |(key, _)| key + 1);
        let mut floor = LogFloor::default();
        for (_, record) in &records {
            floor.observe(record);
        }
        let replay = records.iter().map(|(_, record)| record.clone()).collect();
        Ok((Self { epoch, next_key, records, floor, writes: 0 }, replay))
    }

    /// Starts the log of `epoch`: every record of the previous one is dropped in one
    /// synced write.
    pub fn start_epoch(&mut self, store: &Store, epoch: u64) -> Result<(), LogError> {
        store.consensus_log_rewrite(&[epoch_record(epoch)])?;
        self.epoch = epoch;
        self.records.clear();
        self.floor = LogFloor::default();
        self.writes += 1;
        Ok(())
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Durably appends records (synced, all or nothing), compacting the log if one of them
    /// raises the floor.
    pub fn persist(&mut self, store: &Store, records: &[Record]) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut compact = false;
        for record in records {
            compact |= self.floor.observe(record);
        }
        let appended: Vec<(u64, Record)> = records
            .iter()
            .map(|record| {
                self.next_key += 1;
                (self.next_key - 1, record.clone())
            })
            .collect();
        if compact {
            // Keys only grow, so the surviving records stay in write order.
            let floor = self.floor;
            let kept: Vec<(u64, Record)> = self
                .records
                .iter()
                .chain(&appended)
                .filter(|(_, record)| !record.obsolete(&floor))
                .cloned()
                .collect();
            let mut rewrite = encode(&kept);
            rewrite.push(epoch_record(self.epoch));
            store.consensus_log_rewrite(&rewrite)?;
            self.records = kept;
        } else {
            store.consensus_log_append(&encode(&appended))?;
            self.records.extend(appended);
        }
        self.writes += 1;
        Ok(())
    }

    /// Synced writes this log made since it was opened.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Records currently in the log.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

fn epoch_record(epoch: u64) -> (Vec<u8>, Vec<u8>) {
    (EPOCH_KEY.to_vec(), epoch.to_be_bytes().to_vec())
}

fn encode(records: &[(u64, Record)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    records.iter().map(|(key, record)| (key.to_be_bytes().to_vec(), record.to_bytes())).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
