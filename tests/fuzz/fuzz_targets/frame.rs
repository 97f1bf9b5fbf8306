//! The transport's framing of a peer's byte stream: reading frames never panics, never
//! returns more than the payload limit, and consumes exactly what it reports.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pactum_net::frame::read_frame;

const PAYLOAD_MAX: usize = 4096;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().build().expect("a runtime starts")
    })
}

fuzz_target!(|bytes: &[u8]| {
    runtime().block_on(async {
        let mut stream = bytes;
        // At most as many frames as there are bytes: each takes at least its header.
        for _ in 0..=bytes.len() {
            match read_frame(&mut stream, PAYLOAD_MAX).await {
                Ok((_, payload)) => assert!(payload.len() <= PAYLOAD_MAX),
                Err(_) => break,
            }
        }
    });
});
