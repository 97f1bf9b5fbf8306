//! The Pactum ledger's data model.
//!
//! This crate owns the shapes of everything the ledger stores or signs: transactions,
//! blocks, commit certificates and receipts; their single canonical binary encoding and
//! their JSON forms; SHA3-256 hashing, Merkle roots and Ed25519 signatures; and the
//! [`limits`] that bound every one of them.
//!
//! It must never do IO, read a clock, or know about consensus, storage or the network:
//! it is shared by every other Pactum crate, the contract VM's host side included.

#![forbid(unsafe_code)]

pub mod admission;
pub mod block;
pub mod codec;
pub mod crypto;
pub mod gas;
pub mod governance;
pub mod hash;
pub mod interface;
pub mod json;
pub mod limits;
pub mod merkle;
pub mod parameters;
pub mod query;
pub mod receipt;
pub mod transaction;

pub use admission::EnvelopeFault;
pub use block::{Address, Block, BlockHeader, CommitCertificate, CommitSignature};
pub use codec::{Decode, DecodeError, Encode};
pub use crypto::{Keypair, PublicKey, Signature};
pub use governance::{
    ChangeClass, DeployPolicy, GovernanceAction, GovernanceChange, NewValidator, Policy,
    join_message,
};
pub use hash::Hash;
pub use parameters::ConsensusParameters;
pub use receipt::{Event, Receipt, ReceiptStatus};
pub use transaction::{ChainId, Payload, Transaction, UnsignedTransaction};
