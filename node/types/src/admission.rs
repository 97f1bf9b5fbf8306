//! The rules about a transaction's envelope (its size, chain, gas limit, nonce and
//! signer) that decide whether it runs at all, each with one typed reason. The mempool
//! applies them at admission and the executor again at block time, with the same reason:
//! a transaction a faulty primary orders against a rule gets an `Invalid` receipt whose
//! reason is the text a client would have been given at admission.

use thiserror::Error;

use crate::{ChainId, PublicKey};

/// Why a transaction may not run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeFault {
    #[error("the transaction is {bytes} bytes, over the limit of {max} bytes")]
    TooLarge { bytes: usize, max: usize },
    #[error("the transaction is for chain '{found}', but this is chain '{expected}'")]
    WrongChain { expected: ChainId, found: ChainId },
    #[error("gas limit {gas_limit} exceeds the maximum {max}")]
    GasLimitTooHigh { gas_limit: u64, max: u64 },
    /// Block time only: the block's earlier transactions took its gas limit.
    #[error(
        "gas limit {gas_limit} does not fit in the block: {reserved} of the block gas limit {max} is taken"
    )]
    BlockGasFull { gas_limit: u64, reserved: u64, max: u64 },
    #[error("nonce {nonce} was already used; the sender's next nonce is {next_nonce}")]
    StaleNonce { sender: PublicKey, nonce: u64, next_nonce: u64 },
    /// Block time only: a block runs a sender's nonces in order, without gaps (the
    /// mempool holds such a transaction until the gap fills).
    #[error(
        "nonce {nonce} is ahead of the sender's next nonce {next_nonce}; nonces cannot be skipped"
    )]
    NonceAhead { sender: PublicKey, nonce: u64, next_nonce: u64 },
    #[error("nonce {nonce} is the last; it cannot be used")]
    LastNonce { sender: PublicKey, nonce: u64 },
    #[error("the sender {sender} is not an enrolled identity on this ledger")]
    UnknownSigner { sender: PublicKey },
    #[error("the sender {sender}'s certificate {serial} of {organisation} is revoked")]
    RevokedSigner { sender: PublicKey, organisation: String, serial: String },
    #[error(
        "the sender {sender}'s enrolment certificate expired at {not_after} (Unix seconds); \
         the time is {at}: enrol a renewed certificate"
    )]
    ExpiredSigner { sender: PublicKey, not_after: u64, at: u64 },
    #[error(
        "the sender {sender} is enrolled under {organisation}, which is no longer a member of \
         the consortium"
    )]
    FormerMember { sender: PublicKey, organisation: String },
}
