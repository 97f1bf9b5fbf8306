//! The transactions this node knows to be valid: admitted by its mempool (signature
//! verified in a batch) or checked when a proposal brought them. Consulted when a backup
//! validates a proposal, so each transaction is verified once per validator. Bounded:
//! the oldest entries are forgotten first (forgetting only costs a second verification).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use pactum_types::{Hash, limits};

#[derive(Debug, Default)]
pub struct VerifiedSet {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    members: HashSet<Hash>,
    order: VecDeque<Hash>,
}

impl VerifiedSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.inner.lock().expect("verified-set lock is never poisoned").members.contains(hash)
    }

    pub fn insert(&self, hash: Hash) {
        self.insert_all(std::iter::once(hash));
    }

    pub fn insert_all(&self, hashes: impl IntoIterator<Item = Hash>) {
        let mut inner = self.inner.lock().expect("verified-set lock is never poisoned");
        for hash in hashes {
            if inner.members.insert(hash) {
                inner.order.push_back(hash);
            }
        }
        while inner.order.len() > limits::VERIFIED_TRANSACTIONS_REMEMBERED_MAX {
            if let Some(oldest) = inner.order.pop_front() {
                inner.members.remove(&oldest);
            }
        }
    }
}
