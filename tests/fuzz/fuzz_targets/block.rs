//! A block from a peer (state transfer) or the store: decoding never panics, and whatever
//! decodes is the one canonical encoding of its value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pactum_types::{Block, Decode, Encode};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(block) = Block::from_bytes(bytes) {
        assert_eq!(block.to_bytes(), bytes, "a decoded block re-encodes to its bytes");
        let _ = block.hash();
    }
});
