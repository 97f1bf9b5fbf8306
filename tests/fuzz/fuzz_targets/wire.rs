//! What a validator sends another over the transport, after the frame: a PBFT message,
//! gossiped transactions, a block request or a state-transfer answer. Decoding never
//! panics, and whatever decodes is the one canonical encoding of its value. The module is
//! the node's own (`node/runtime/src/wire.rs`), built here without the node's storage.
#![no_main]

#[path = "../../../node/runtime/src/wire.rs"]
#[allow(dead_code)]
mod wire;

use libfuzzer_sys::fuzz_target;
use pactum_types::{Decode, Encode};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(message) = wire::Wire::from_bytes(bytes) {
        assert_eq!(message.to_bytes(), bytes, "a decoded wire message re-encodes to its bytes");
    }
});
