//! State transfer's side of the peer link (issue 9, finding 7): a peer gets one block
//! request served at a time, and `Blocks` answers are taken only from the peer this node
//! asked, while it waits. A Byzantine validator can then neither start an unbounded
//! number of block reads (each up to a frame of blocks) with 17-byte requests, nor fill
//! the state-transfer channel with answers nobody asked for.

use std::collections::HashSet;
use std::sync::Mutex;

use pactum_types::PublicKey;

#[derive(Debug, Default)]
pub(super) struct BlockExchange {
    /// Peers whose block request is being served.
    serving: Mutex<HashSet<PublicKey>>,
    /// The peer a state-transfer fetch is waiting on, if any.
    awaiting: Mutex<Option<PublicKey>>,
}

impl BlockExchange {
    /// Takes `peer`'s request if none of its requests is being served; the caller must
    /// call [`BlockExchange::served`] when done. A request refused here is dropped: an
    /// honest peer asks again (or another peer) when its wait runs out.
    pub(super) fn start_serving(&self, peer: PublicKey) -> bool {
        self.serving.lock().expect("the block exchange is never poisoned").insert(peer)
    }

    pub(super) fn served(&self, peer: &PublicKey) {
        self.serving.lock().expect("the block exchange is never poisoned").remove(peer);
    }

    /// This node now waits for `peer`'s answer (`None`: for nobody's).
    pub(super) fn await_from(&self, peer: Option<PublicKey>) {
        *self.awaiting.lock().expect("the block exchange is never poisoned") = peer;
    }

    /// Whether a `Blocks` frame from `peer` answers a request this node is waiting on.
    pub(super) fn awaited(&self, peer: &PublicKey) -> bool {
        self.awaiting.lock().expect("the block exchange is never poisoned").as_ref() == Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_one_block_request_served_at_a_time() {
        let exchange = BlockExchange::default();
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        assert!(exchange.start_serving(a));
        assert!(!exchange.start_serving(a), "a second request while the first is served");
        assert!(exchange.start_serving(b), "another peer is served alongside");
        exchange.served(&a);
        assert!(exchange.start_serving(a), "served, it may ask again");
    }

    #[test]
    fn only_the_peer_asked_is_listened_to_and_only_while_waiting() {
        let exchange = BlockExchange::default();
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        assert!(!exchange.awaited(&a), "nobody asked: unsolicited");
        exchange.await_from(Some(a));
        assert!(exchange.awaited(&a));
        assert!(!exchange.awaited(&b), "an answer from a peer not asked");
        exchange.await_from(None);
        assert!(!exchange.awaited(&a), "a late answer after the wait ended");
    }
}
