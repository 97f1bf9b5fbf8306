//! PBFT (Castro and Liskov, OSDI '99 and TOCS 2002) as a pure state machine.
//!
//! A [`Replica`] is driven by [`Replica::step`]: each [`Input`] (a message from a peer, a
//! batch to propose, a timer firing, a report that a sequence number was executed) returns
//! the [`Effect`]s the caller must carry out, in order: persist records, send messages,
//! deliver committed batches, schedule timers, fetch state, report evidence.
//!
//! This crate must never do IO, read a clock or draw randomness. Time arrives as timeout
//! inputs, signing and verification go through the [`Crypto`] trait, so the simulator in
//! `tests/` can run thousands of seeded clusters in one thread.
//!
//! Implemented: the normal case (§4.2), checkpoints, watermarks and garbage collection
//! (§4.3), retransmission, state transfer to a stable checkpoint, crash recovery from
//! persisted records, and Byzantine input as evidence. Not yet implemented: view changes
//! (§4.4); until then a faulty primary stops progress. See `docs/protocol/pbft.md`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod message;
mod replica;

pub use message::{DOMAIN, Message, ReplicaId, Sequence, SignedMessage, View};
pub use replica::{
    Config, ConfigError, Crypto, Delivery, Effect, Evidence, Input, Record, Replica, TimeoutKind,
};
