//! A signed PBFT message from a peer: decoding never panics, and whatever decodes is the
//! one canonical encoding of its value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pactum_consensus::SignedMessage;
use pactum_types::{Decode, Encode};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(message) = SignedMessage::from_bytes(bytes) {
        assert_eq!(message.to_bytes(), bytes, "a decoded message re-encodes to its bytes");
    }
});
