//! Pactum's validator transport.
//!
//! It owns the TCP listener and one outbound connection per peer, all over TLS 1.3 with
//! mutual authentication (the verifiers live in `pactum-certs`). It moves opaque frames:
//! it knows nothing of PBFT, blocks or transactions.
//!
//! - A peer's identity is the Ed25519 key in its certificate, never a field of a message;
//!   above TLS the key must be in the current validator set.
//! - Frames are length-prefixed and bounded ([`frame`]); per-peer send queues are bounded
//!   in frames and bytes, and a write that stalls drops the connection; received frames
//!   wait in per-peer bounded queues and are taken in turn ([`Inbound`]).
//! - Connections in their TLS handshake are capped in all and per address; an
//!   authenticated validator has one inbound connection (a newer one replaces it).
//! - Outbound connections reconnect with capped exponential backoff; both sides send
//!   keep-alives, and a connection silent for the idle timeout is closed.
//! - Every rejected connection is logged with its reason and counted in [`TransportStats`].
//! - Trust roots and revocations change at runtime through the shared `TrustStore`; the
//!   validator set through [`Transport::set_validators`].

#![forbid(unsafe_code)]

pub mod frame;
mod inbound;
mod stats;
mod transport;

pub use inbound::Inbound;
pub use stats::{RejectReason, TransportStats};
pub use transport::{
    InboundFrame, NetError, Peer, SendError, Transport, TransportConfig, TransportSettings,
};
