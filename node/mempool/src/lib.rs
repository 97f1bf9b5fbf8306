//! The validator mempool: the transactions a validator holds between admission and commit.
//!
//! The mempool owns every pending transaction of one validator. It admits raw transaction
//! bytes from clients (REST) and peers (gossip) in batches, checking each admission rule
//! and verifying all surviving signatures with one batch verification, so each transaction
//! is verified exactly once per validator. It orders each sender's transactions by nonce:
//! a transaction becomes *ready* only when every earlier nonce of its sender is committed
//! or ready. The primary takes ready transactions with [`Mempool::ready_batch`]; committed
//! blocks evict theirs with [`Mempool::committed`]. Transactions a client gave this node
//! wait in the gossip queue for the runtime to send to the other validators. A transaction
//! that waits behind a missing nonce of its sender for longer than the runtime allows is
//! dropped by [`Mempool::expire_waiting`], so no sender stalls forever; the transactions
//! the runtime logged durably are reported back when they leave
//! ([`Mempool::take_forgotten_durable`]), so its log never outgrows the pool.
//!
//! It must never do IO, read a clock (time comes in as arguments), spawn tasks or draw randomness: it is a plain data
//! structure that the node runtime owns and drives from a blocking task. The ledger's view
//! of signers and nonces comes in through the [`SignerRegistry`] and [`NonceState`]
//! traits. Every collection it holds is bounded by [`MempoolConfig`], whose defaults and
//! ceilings are the `MEMPOOL_*` constants of [`pactum_types::limits`].

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod pool;
mod rejection;

pub use pool::{
    Admitted, Counters, Expired, Mempool, MempoolStatus, PooledTransaction, SenderPending, Source,
};
pub use rejection::{Rejection, RejectionCode};

use pactum_types::{ChainId, EnvelopeFault, PublicKey, limits};
use thiserror::Error;

/// The ledger's committed view of identities, supplied by the runtime. A signer the
/// ledger accepts has no fault; any other gets the same [`EnvelopeFault`] the executor
/// would give it at block time.
pub trait SignerRegistry {
    /// Why the ledger does not accept `key` as a signer now, if it does not.
    fn signer_fault(&self, key: &PublicKey) -> Option<EnvelopeFault>;

    /// Why `certificate_der` may not enrol `key` now, if it may not (it must chain to a
    /// member CA, be valid, not be revoked, and certify `key`). The executor checks it
    /// again at the block's time.
    fn enrolment_fault(&self, key: &PublicKey, certificate_der: &[u8]) -> Option<EnvelopeFault> {
        let _ = certificate_der;
        Some(EnvelopeFault::UnknownSigner { sender: *key })
    }

    /// Why `key` may not announce itself ready as a validator that a planned epoch adds
    /// (ADR 0021), if it may not. Such a key is enrolled as no identity.
    fn joiner_fault(&self, key: &PublicKey) -> Option<EnvelopeFault> {
        Some(EnvelopeFault::UnknownSigner { sender: *key })
    }

    /// The member organisation an enrolled `key` belongs to, for the organisation's share
    /// of the pool ([`MempoolConfig::organisation_share`]); `None` counts against no share.
    fn organisation(&self, key: &PublicKey) -> Option<String> {
        let _ = key;
        None
    }

    /// [`SignerRegistry::signer_fault`] and [`SignerRegistry::organisation`] together,
    /// as admission asks for both; a registry that reads one record for both overrides
    /// it to read it once.
    fn signer(&self, key: &PublicKey) -> (Option<EnvelopeFault>, Option<String>) {
        (self.signer_fault(key), self.organisation(key))
    }
}

/// The ledger's committed nonces, supplied by the runtime.
pub trait NonceState {
    /// The next nonce the ledger will accept from `sender` (0 for a sender never seen).
    fn next_nonce(&self, sender: &PublicKey) -> u64;
}

impl<T: SignerRegistry + ?Sized> SignerRegistry for &T {
    fn signer_fault(&self, key: &PublicKey) -> Option<EnvelopeFault> {
        (**self).signer_fault(key)
    }

    fn enrolment_fault(&self, key: &PublicKey, certificate_der: &[u8]) -> Option<EnvelopeFault> {
        (**self).enrolment_fault(key, certificate_der)
    }

    fn organisation(&self, key: &PublicKey) -> Option<String> {
        (**self).organisation(key)
    }

    fn joiner_fault(&self, key: &PublicKey) -> Option<EnvelopeFault> {
        (**self).joiner_fault(key)
    }

    fn signer(&self, key: &PublicKey) -> (Option<EnvelopeFault>, Option<String>) {
        (**self).signer(key)
    }
}

impl<T: NonceState + ?Sized> NonceState for &T {
    fn next_nonce(&self, sender: &PublicKey) -> u64 {
        (**self).next_nonce(sender)
    }
}

/// The bounds and chain of one mempool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Only transactions for this chain are admitted.
    pub chain_id: ChainId,
    /// Transactions held at once, waiting, ready and in flight together.
    pub transactions_max: usize,
    /// Bytes of encoded transactions held at once.
    pub bytes_max: usize,
    /// Transactions of one sender held at once.
    pub sender_transactions_max: usize,
    /// A nonce may be at most this far past the sender's next nonce (exclusive).
    pub nonces_ahead_max: u64,
    /// What the senders of one member organisation may hold at once, so that one
    /// member's clients cannot crowd out the others'; `None` for no shares.
    pub organisation_share: Option<OrganisationShare>,
    /// The highest gas limit admitted: the chain's block gas limit, when it is below
    /// [`limits::TRANSACTION_GAS_MAX`] (a transaction that cannot fit in any block is
    /// refused here rather than left waiting).
    pub gas_limit_max: u64,
}

/// One member organisation's share of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrganisationShare {
    pub transactions_max: usize,
    pub bytes_max: usize,
}

impl OrganisationShare {
    /// An equal share of `config`'s pool for each of `organisations` members (at least
    /// room for one transaction of the largest size).
    pub fn equal(config: &MempoolConfig, organisations: usize) -> Self {
        let members = organisations.max(1);
        Self {
            transactions_max: config.transactions_max.div_ceil(members).max(1),
            bytes_max: config.bytes_max.div_ceil(members).max(limits::TRANSACTION_BYTES_MAX),
        }
    }
}

impl MempoolConfig {
    /// The configuration with every bound at its `limits` default.
    pub fn new(chain_id: ChainId) -> Self {
        Self {
            chain_id,
            transactions_max: limits::MEMPOOL_TRANSACTIONS_MAX,
            bytes_max: limits::MEMPOOL_BYTES_MAX,
            sender_transactions_max: limits::MEMPOOL_SENDER_TRANSACTIONS_MAX,
            nonces_ahead_max: limits::MEMPOOL_NONCES_AHEAD_MAX,
            organisation_share: None,
            gas_limit_max: limits::TRANSACTION_GAS_MAX,
        }
    }

    /// Checks that every bound is at least 1 and at most its `limits` ceiling, and that a
    /// sender's share is at most the whole pool.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |name: &'static str, value: u64, max: u64| {
            if value == 0 || value > max {
                Err(ConfigError::OutOfRange { name, value, max })
            } else {
                Ok(())
            }
        };
        check(
            "transactions_max",
            self.transactions_max as u64,
            limits::MEMPOOL_TRANSACTIONS_MAX as u64,
        )?;
        check("bytes_max", self.bytes_max as u64, limits::MEMPOOL_BYTES_MAX as u64)?;
        // One sender's share can be no more than the whole pool.
        let sender_ceiling = limits::MEMPOOL_SENDER_TRANSACTIONS_MAX.min(self.transactions_max);
        check(
            "sender_transactions_max",
            self.sender_transactions_max as u64,
            sender_ceiling as u64,
        )?;
        check("nonces_ahead_max", self.nonces_ahead_max, limits::MEMPOOL_NONCES_AHEAD_MAX)?;
        if let Some(share) = &self.organisation_share {
            check(
                "organisation_share.transactions_max",
                share.transactions_max as u64,
                self.transactions_max as u64,
            )?;
            check(
                "organisation_share.bytes_max",
                share.bytes_max as u64,
                self.bytes_max.max(limits::TRANSACTION_BYTES_MAX) as u64,
            )?;
        }
        Ok(())
    }
}

/// A [`MempoolConfig`] that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("mempool setting {name} is {value}; it must be between 1 and {max}")]
    OutOfRange { name: &'static str, value: u64, max: u64 },
}
