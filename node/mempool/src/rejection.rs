//! Why a transaction was not admitted, with a stable machine-readable code per rule.

use pactum_types::{DecodeError, EnvelopeFault, Hash, PublicKey};
use thiserror::Error;

/// The admission rule a transaction failed. The REST API answers `{code, message}` with
/// [`RejectionCode::as_str`] and the [`Rejection`]'s `Display` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectionCode {
    Malformed,
    TooLarge,
    GasLimitTooHigh,
    WrongChain,
    BadSignature,
    UnknownSigner,
    RevokedSigner,
    ExpiredSigner,
    FormerMember,
    StaleNonce,
    NonceTaken,
    NonceTooFarAhead,
    SenderQueueFull,
    OrganisationShareFull,
    MempoolFull,
}

impl RejectionCode {
    /// Every code, in a fixed order (for metrics labels and documentation).
    pub const ALL: [RejectionCode; 15] = [
        RejectionCode::Malformed,
        RejectionCode::TooLarge,
        RejectionCode::GasLimitTooHigh,
        RejectionCode::WrongChain,
        RejectionCode::BadSignature,
        RejectionCode::UnknownSigner,
        RejectionCode::RevokedSigner,
        RejectionCode::ExpiredSigner,
        RejectionCode::FormerMember,
        RejectionCode::StaleNonce,
        RejectionCode::NonceTaken,
        RejectionCode::NonceTooFarAhead,
        RejectionCode::SenderQueueFull,
        RejectionCode::OrganisationShareFull,
        RejectionCode::MempoolFull,
    ];

    /// The stable snake_case code. Clients match on it; it never changes meaning.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectionCode::Malformed => "malformed",
            RejectionCode::TooLarge => "too_large",
            RejectionCode::GasLimitTooHigh => "gas_limit_too_high",
            RejectionCode::WrongChain => "wrong_chain",
            RejectionCode::BadSignature => "bad_signature",
            RejectionCode::UnknownSigner => "unknown_signer",
            RejectionCode::RevokedSigner => "revoked_signer",
            RejectionCode::ExpiredSigner => "expired_signer",
            RejectionCode::FormerMember => "former_member",
            RejectionCode::StaleNonce => "stale_nonce",
            RejectionCode::NonceTaken => "nonce_taken",
            RejectionCode::NonceTooFarAhead => "nonce_too_far_ahead",
            RejectionCode::SenderQueueFull => "sender_queue_full",
            RejectionCode::OrganisationShareFull => "organisation_share_full",
            RejectionCode::MempoolFull => "mempool_full",
        }
    }

    /// The position of this code in [`RejectionCode::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether the same bytes may be admitted later without change: the pool or the
    /// sender's queue may drain. Every other rejection is final for those bytes.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            RejectionCode::MempoolFull
                | RejectionCode::OrganisationShareFull
                | RejectionCode::SenderQueueFull
                | RejectionCode::NonceTooFarAhead
        )
    }
}

impl std::fmt::Display for RejectionCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why the mempool refused a transaction. Each variant is one admission rule and carries
/// the values that broke it, so the message tells the client what to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("the transaction is not a canonical encoding: {reason}")]
    Malformed { reason: DecodeError },
    #[error("the signature does not verify under the sender key {sender}")]
    BadSignature { sender: PublicKey },
    /// A rule the executor applies again at block time, with the same reason.
    #[error(transparent)]
    Envelope(#[from] EnvelopeFault),
    #[error(
        "sender {sender} already has a different pending transaction {pending} with nonce {nonce}"
    )]
    NonceTaken { sender: PublicKey, nonce: u64, pending: Hash },
    #[error(
        "nonce {nonce} of sender {sender} is too far ahead: the next nonce is {next_nonce} and at most {window} nonces from it may wait"
    )]
    NonceTooFarAhead { sender: PublicKey, nonce: u64, next_nonce: u64, window: u64 },
    #[error(
        "sender {sender} already has {max} pending transactions, the most one sender may have; retry once some commit"
    )]
    SenderQueueFull { sender: PublicKey, max: usize },
    #[error(
        "the senders of {organisation} already hold its share of the mempool ({transactions} transactions, {bytes} bytes; limits {transactions_max} and {bytes_max}); retry later"
    )]
    OrganisationShareFull {
        organisation: String,
        transactions: usize,
        bytes: usize,
        transactions_max: usize,
        bytes_max: usize,
    },
    #[error(
        "the mempool is full ({transactions} transactions, {bytes} bytes; limits {transactions_max} and {bytes_max}); retry later"
    )]
    MempoolFull { transactions: usize, bytes: usize, transactions_max: usize, bytes_max: usize },
}

impl Rejection {
    pub fn code(&self) -> RejectionCode {
        match self {
            Rejection::Malformed { .. } => RejectionCode::Malformed,
            Rejection::Envelope(fault) => match fault {
                EnvelopeFault::TooLarge { .. } => RejectionCode::TooLarge,
                EnvelopeFault::WrongChain { .. } => RejectionCode::WrongChain,
                EnvelopeFault::GasLimitTooHigh { .. } | EnvelopeFault::BlockGasFull { .. } => {
                    RejectionCode::GasLimitTooHigh
                }
                EnvelopeFault::StaleNonce { .. } | EnvelopeFault::LastNonce { .. } => {
                    RejectionCode::StaleNonce
                }
                EnvelopeFault::NonceAhead { .. } => RejectionCode::NonceTooFarAhead,
                EnvelopeFault::UnknownSigner { .. } => RejectionCode::UnknownSigner,
                EnvelopeFault::RevokedSigner { .. } => RejectionCode::RevokedSigner,
                EnvelopeFault::ExpiredSigner { .. } => RejectionCode::ExpiredSigner,
                EnvelopeFault::FormerMember { .. } => RejectionCode::FormerMember,
            },
            Rejection::BadSignature { .. } => RejectionCode::BadSignature,
            Rejection::NonceTaken { .. } => RejectionCode::NonceTaken,
            Rejection::NonceTooFarAhead { .. } => RejectionCode::NonceTooFarAhead,
            Rejection::SenderQueueFull { .. } => RejectionCode::SenderQueueFull,
            Rejection::OrganisationShareFull { .. } => RejectionCode::OrganisationShareFull,
            Rejection::MempoolFull { .. } => RejectionCode::MempoolFull,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_indexed_in_order() {
        for (position, code) in RejectionCode::ALL.iter().enumerate() {
            assert_eq!(code.index(), position);
        }
        let mut names: Vec<&str> = RejectionCode::ALL.iter().map(|code| code.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RejectionCode::ALL.len());
    }
}
