//! The frames validators sent this node, queued per peer and taken in turn.
//!
//! One queue shared by every peer lets one validator's flood of valid but useless frames
//! stand in front of everyone else's votes. Here each peer has its own bounded queue (in
//! frames and in bytes); the node takes one frame from each peer that has any, round
//! robin, so a flooding peer delays another peer's frame by at most one frame of its own,
//! and when its queue is full only its own connection waits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pactum_types::PublicKey;
use tokio::sync::Notify;

use crate::transport::InboundFrame;

/// How much one peer may have queued and not yet taken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerQueueBounds {
    pub frames: usize,
    /// A frame larger than this is still queued when the peer's queue is empty.
    pub bytes: usize,
}

#[derive(Default)]
struct PeerQueue {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
}

#[derive(Default)]
struct State {
    queues: HashMap<PublicKey, PeerQueue>,
    /// Peers with at least one queued frame, in the order they are served.
    turn: VecDeque<PublicKey>,
    /// The transport stopped: no frame will be queued again.
    closed: bool,
    /// The receiver is gone: queued frames would never be taken.
    abandoned: bool,
}

pub(crate) struct FairQueue {
    state: Mutex<State>,
    bounds: PeerQueueBounds,
    /// Wakes the receiver when a frame arrives or the transport stops.
    arrived: Notify,
    /// Wakes connections waiting for room in their peer's queue.
    room: Notify,
}

/// The receiver went away; the connection should stop reading.
#[derive(Debug)]
pub(crate) struct Abandoned;

impl FairQueue {
    pub(crate) fn new(bounds: PeerQueueBounds) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            bounds,
            arrived: Notify::new(),
            room: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below leaves the state whole before it can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `payload` from `from`, waiting while that peer's queue is full (only this
    /// peer's connection waits).
    pub(crate) async fn push(&self, from: PublicKey, payload: Vec<u8>) -> Result<(), Abandoned> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            {
                let mut state = self.lock();
                if state.abandoned {
                    return Err(Abandoned);
                }
                let queue = state.queues.entry(from).or_default();
                let fits = queue.frames.is_empty()
                    || (queue.frames.len() < self.bounds.frames
                        && queue.bytes.saturating_add(payload.len()) <= self.bounds.bytes);
                if fits {
                    let was_empty = queue.frames.is_empty();
                    queue.bytes += payload.len();
                    queue.frames.push_back(payload);
                    if was_empty {
                        state.turn.push_back(from);
                    }
                    drop(state);
                    self.arrived.notify_one();
                    return Ok(());
                }
                // Registered before the lock is released, so a frame taken in between
                // still wakes this connection.
                room.as_mut().enable();
            }
            room.await;
        }
    }

    /// No frame will be queued again; the receiver gets `None` once it has taken the rest.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_one();
    }

    fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        state.queues.clear();
        state.turn.clear();
        drop(state);
        self.room.notify_waiters();
    }

    fn take(&self) -> Option<Option<InboundFrame>> {
        let mut state = self.lock();
        let Some(from) = state.turn.pop_front() else {
            return state.closed.then_some(None);
        };
        let queue = state.queues.get_mut(&from).expect("a peer in turn has a queue");
        let payload = queue.frames.pop_front().expect("a peer in turn has a frame");
        queue.bytes -= payload.len();
        if queue.frames.is_empty() {
            state.queues.remove(&from);
        } else {
            state.turn.push_back(from);
        }
        drop(state);
        self.room.notify_waiters();
        Some(Some(InboundFrame { from, payload }))
    }
}

/// The frames authenticated validators sent this node, one peer at a time in turn.
pub struct Inbound {
    queue: Arc<FairQueue>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Inbound").finish_non_exhaustive()
    }
}

impl Inbound {
    pub(crate) fn new(queue: Arc<FairQueue>) -> Self {
        Self { queue }
    }

    /// The next frame, from the next peer in turn; `None` once the transport has stopped
    /// and every queued frame was taken.
    pub async fn recv(&mut self) -> Option<InboundFrame> {
        loop {
            let arrived = self.queue.arrived.notified();
            if let Some(frame) = self.queue.take() {
                return frame;
            }
            arrived.await;
        }
    }
}

impl Drop for Inbound {
    fn drop(&mut self) {
        self.queue.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey([byte; 32])
    }

    #[tokio::test]
    async fn peers_are_served_in_turn_whatever_one_of_them_queued() {
        let queue = FairQueue::new(PeerQueueBounds { frames: 1000, bytes: 1 << 20 });
        let mut inbound = Inbound::new(Arc::clone(&queue));
        for index in 0..500u32 {
            queue.push(key(1), index.to_be_bytes().to_vec()).await.unwrap();
        }
        queue.push(key(2), b"vote".to_vec()).await.unwrap();
        let first = inbound.recv().await.unwrap();
        let second = inbound.recv().await.unwrap();
        assert_eq!(first.from, key(1));
        assert_eq!(second, InboundFrame { from: key(2), payload: b"vote".to_vec() });
        // The flooding peer's frames keep their order.
        for index in 1..500u32 {
            let frame = inbound.recv().await.unwrap();
            assert_eq!(frame.payload, index.to_be_bytes().to_vec());
        }
        queue.close();
        assert_eq!(inbound.recv().await, None);
    }

    #[tokio::test]
    async fn a_full_queue_holds_up_only_its_own_peer() {
        let queue = FairQueue::new(PeerQueueBounds { frames: 2, bytes: 10 });
        let mut inbound = Inbound::new(Arc::clone(&queue));
        queue.push(key(1), vec![0; 6]).await.unwrap();
        // Over the bytes bound: this peer waits...
        let waiting = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.push(key(1), vec![1; 6]).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // ...while another peer's frame goes straight in.
        queue.push(key(2), vec![2; 6]).await.unwrap();
        assert_eq!(inbound.recv().await.unwrap().payload, vec![0; 6]);
        assert_eq!(inbound.recv().await.unwrap().payload, vec![2; 6]);
        waiting.await.unwrap().unwrap();
        assert_eq!(inbound.recv().await.unwrap().payload, vec![1; 6]);
        // A frame larger than the bound still passes alone.
        queue.push(key(3), vec![3; 64]).await.unwrap();
        assert_eq!(inbound.recv().await.unwrap().payload.len(), 64);
        drop(inbound);
        assert!(queue.push(key(1), vec![4]).await.is_err());
    }
}
