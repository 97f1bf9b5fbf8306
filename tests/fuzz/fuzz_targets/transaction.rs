//! A client's or a peer's transaction bytes: decoding never panics, and whatever decodes
//! is the one canonical encoding of its value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pactum_types::{Decode, Encode, Transaction};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(transaction) = Transaction::from_bytes(bytes) {
        assert_eq!(transaction.to_bytes(), bytes, "a decoded transaction re-encodes to its bytes");
        let _ = transaction.hash();
    }
});
