//! Contract-call arguments as the SDK decodes them inside a contract: decoding never
//! panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pactum_sdk::{Address, Decode, Encode};

fn round_trip<T: Decode + Encode>(bytes: &[u8]) {
    if let Ok(value) = T::decode(bytes) {
        assert_eq!(value.encode(), bytes, "decoded arguments re-encode to their bytes");
    }
}

fuzz_target!(|bytes: &[u8]| {
    round_trip::<(Address, u128)>(bytes);
    round_trip::<(String,)>(bytes);
    round_trip::<(String, Vec<u8>, u64)>(bytes);
    round_trip::<(Vec<String>, bool, u32)>(bytes);
    round_trip::<Option<(Address, [u8; 32])>>(bytes);
});
