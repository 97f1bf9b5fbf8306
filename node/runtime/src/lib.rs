//! The validator runtime. Today: the genesis file, read and checked, and the durable
//! consensus log. The driver that runs
//! the PBFT replica over the mTLS transport with the mempool and the executor comes next
//! (issue 6); `docs/ARCHITECTURE.md` tracks what exists.

#![forbid(unsafe_code)]

pub mod consensus_log;
pub mod devnet;
pub mod genesis;

pub use consensus_log::{ConsensusLog, LogError};
pub use genesis::{Genesis, GenesisError, GenesisFile};
