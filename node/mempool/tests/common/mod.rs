//! A small ledger view, keys and transactions shared by the mempool tests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use pactum_mempool::{
    Admitted, Mempool, MempoolConfig, NonceState, PooledTransaction, Rejection, RejectionCode,
    SignerRegistry, Source,
};
use pactum_types::{
    Address, ChainId, Encode, EnvelopeFault, Hash, Keypair, Payload, PublicKey, Transaction,
    UnsignedTransaction,
};

pub const CHAIN: &str = "pactum-test";

pub fn chain_id() -> ChainId {
    ChainId::new(CHAIN).unwrap()
}

pub fn key(index: u8) -> Keypair {
    Keypair::from_seed(&[index.wrapping_add(1); 32])
}

/// What this test ledger says about a signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerStatus {
    Enrolled,
    Unknown,
    Revoked,
    Expired,
}

/// The ledger as the runtime would show it: enrolment and committed nonces.
#[derive(Debug, Default)]
pub struct Ledger {
    statuses: HashMap<PublicKey, SignerStatus>,
    nonces: HashMap<PublicKey, u64>,
    organisations: HashMap<PublicKey, String>,
}

impl Ledger {
    /// A ledger where the keys `0..count` are enrolled.
    pub fn with_enrolled(count: u8) -> Self {
        let mut ledger = Self::default();
        for index in 0..count {
            ledger.set_status(&key(index), SignerStatus::Enrolled);
        }
        ledger
    }

    pub fn set_status(&mut self, keypair: &Keypair, status: SignerStatus) {
        self.statuses.insert(keypair.public_key(), status);
    }

    pub fn set_organisation(&mut self, keypair: &Keypair, organisation: &str) {
        self.organisations.insert(keypair.public_key(), organisation.to_string());
    }

    pub fn set_next_nonce(&mut self, sender: &PublicKey, next_nonce: u64) {
        self.nonces.insert(*sender, next_nonce);
    }
}

/// The certificate bytes this test ledger accepts for an enrolment: `b"cert:"` and the key.
pub fn test_certificate(key: &PublicKey) -> Vec<u8> {
    [&b"cert:"[..], &key.0].concat()
}

impl SignerRegistry for Ledger {
    fn signer_fault(&self, key: &PublicKey) -> Option<EnvelopeFault> {
        let sender = *key;
        match self.statuses.get(key).copied().unwrap_or(SignerStatus::Unknown) {
            SignerStatus::Enrolled => None,
            SignerStatus::Unknown => Some(EnvelopeFault::UnknownSigner { sender }),
            SignerStatus::Revoked => Some(EnvelopeFault::RevokedSigner {
                sender,
                organisation: "Member".into(),
                serial: "01".into(),
            }),
            SignerStatus::Expired => {
                Some(EnvelopeFault::ExpiredSigner { sender, not_after: 1, at: 2 })
            }
        }
    }

    fn enrolment_fault(&self, key: &PublicKey, certificate_der: &[u8]) -> Option<EnvelopeFault> {
        (certificate_der != test_certificate(key))
            .then_some(EnvelopeFault::UnknownSigner { sender: *key })
    }

    fn organisation(&self, key: &PublicKey) -> Option<String> {
        self.organisations.get(key).cloned()
    }
}

impl NonceState for Ledger {
    fn next_nonce(&self, sender: &PublicKey) -> u64 {
        self.nonces.get(sender).copied().unwrap_or(0)
    }
}

pub fn unsigned(keypair: &Keypair, nonce: u64, variant: u8) -> UnsignedTransaction {
    UnsignedTransaction {
        chain_id: chain_id(),
        sender: keypair.public_key(),
        nonce,
        gas_limit: 50_000,
        payload: Payload::CallContract {
            contract: Address([7; 32]),
            method: "transfer".into(),
            input: vec![variant; 8],
        },
    }
}

pub fn transaction(keypair: &Keypair, nonce: u64) -> Transaction {
    unsigned(keypair, nonce, 0).sign(keypair)
}

pub fn encoded(keypair: &Keypair, nonce: u64) -> Vec<u8> {
    transaction(keypair, nonce).to_bytes()
}

/// The encoded size of every transaction `encoded` makes.
pub fn transaction_bytes() -> usize {
    encoded(&key(0), 0).len()
}

pub fn config() -> MempoolConfig {
    MempoolConfig {
        transactions_max: 64,
        bytes_max: 64 * transaction_bytes(),
        sender_transactions_max: 16,
        nonces_ahead_max: 16,
        ..MempoolConfig::new(chain_id())
    }
}

pub fn mempool() -> Mempool {
    Mempool::new(config()).unwrap()
}

/// Admits one transaction from a client.
pub fn admit_one(
    pool: &mut Mempool,
    ledger: &Ledger,
    bytes: Vec<u8>,
) -> Result<Admitted, Rejection> {
    let mut answers = pool.admit(vec![bytes], Source::Client, ledger, ledger, 0);
    assert_eq!(answers.len(), 1);
    answers.remove(0)
}

/// Admits one transaction that must be refused with `code`, and checks the mempool is
/// exactly as it was: same transactions, same size, invariants intact.
pub fn assert_refused(
    pool: &mut Mempool,
    ledger: &Ledger,
    bytes: Vec<u8>,
    code: RejectionCode,
) -> Rejection {
    let before: Vec<Hash> = held(pool);
    let bytes_before = pool.bytes();
    let rejected_before = pool.counters().rejected(code);
    let rejection = match admit_one(pool, ledger, bytes) {
        Err(rejection) => rejection,
        Ok(admitted) => panic!("expected {code}, got {admitted:?}"),
    };
    assert_eq!(rejection.code(), code, "{rejection}");
    assert_eq!(held(pool), before, "a rejection changed the mempool");
    assert_eq!(pool.bytes(), bytes_before);
    assert_eq!(pool.counters().rejected(code), rejected_before + 1);
    pool.check_invariants().unwrap();
    rejection
}

/// The hashes held, sorted.
pub fn held(pool: &Mempool) -> Vec<Hash> {
    let mut hashes: Vec<Hash> = pool.hashes().copied().collect();
    hashes.sort();
    hashes
}

pub fn hashes(batch: &[Arc<PooledTransaction>]) -> Vec<Hash> {
    batch.iter().map(|pooled| pooled.hash()).collect()
}

pub fn senders_and_nonces(batch: &[Arc<PooledTransaction>]) -> Vec<(PublicKey, u64)> {
    batch.iter().map(|pooled| (*pooled.sender(), pooled.nonce())).collect()
}

/// Commits `batch` on the ledger and tells the mempool.
pub fn commit(pool: &mut Mempool, ledger: &mut Ledger, batch: &[Arc<PooledTransaction>]) {
    for pooled in batch {
        assert_eq!(pooled.nonce(), ledger.next_nonce(pooled.sender()), "committed out of order");
        ledger.set_next_nonce(pooled.sender(), pooled.nonce() + 1);
    }
    pool.committed(batch.iter().map(|pooled| (pooled.hash(), *pooled.sender())), &*ledger);
    pool.check_invariants().unwrap();
}
