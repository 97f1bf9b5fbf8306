//! The validator runtime. Today: the genesis file, read and checked. The driver that runs
//! the PBFT replica over the mTLS transport with the mempool and the executor comes next
//! (issue 6); `docs/ARCHITECTURE.md` tracks what exists.

#![forbid(unsafe_code)]

pub mod genesis;

pub use genesis::{Genesis, GenesisError, GenesisFile};
