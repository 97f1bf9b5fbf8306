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
//! (§4.3), view changes (§4.4) behind a non-binding suspicion step, the f + 1 join rule
//! and doubling timeouts (§4.5.2), retransmission, state transfer to a stable checkpoint,
//! learning decisions from commit certificates of views a replica has not entered, crash
//! recovery from persisted records, and Byzantine input as evidence. See
//! `docs/protocol/pbft.md`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod batch;
mod ed25519;
mod message;
mod record;
mod replica;

pub use batch::{BatchHeader, DecodedBatch, batch_requests, decode_batch, encode_batch};
pub use ed25519::Ed25519Crypto;
pub use message::{
    DOMAIN, Message, PREPARED_CERTIFICATES_MAX, PreparedCertificate, ReplicaId, Sequence,
    SignedMessage, View,
};
pub use record::RECORD_FORMAT_VERSION;
pub use replica::{
    Config, ConfigError, Crypto, Delivery, Effect, Evidence, Input, PENDING_REQUESTS_MAX, Record,
    Replica, TimeoutKind, VIEW_CHANGE_VIEWS_AHEAD_MAX,
};
