//! The validator runtime: the genesis file, the durable consensus log, the node driver
//! that runs the PBFT replica over the mTLS transport with the mempool and the executor,
//! and the layout of a local devnet. `docs/ARCHITECTURE.md` describes the stages.

#![forbid(unsafe_code)]

pub mod clock;
pub mod consensus_log;
pub mod devnet;
pub mod expiry;
pub mod genesis;
pub mod metrics;
pub mod node;
pub mod proposal;
pub mod verified;
pub mod wire;

pub use consensus_log::{ConsensusLog, LogError};
pub use genesis::{Genesis, GenesisError, GenesisFile};
pub use node::{
    ByzantineMode, FLOOD_MESSAGES_PER_SECOND, FLOOD_SWITCH_FILE, Node, NodeError, NodeHandle,
    NodeOptions,
};
