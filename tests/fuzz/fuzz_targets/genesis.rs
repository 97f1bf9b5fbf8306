//! A genesis file, as an operator (or a member sending one round) hands it to a node:
//! checking never panics, whatever the bytes; a file that passes every check passes them
//! again after a round trip through JSON, with the same genesis hash. The module is the
//! node's own (`node/runtime/src/genesis.rs`), built here without the node's storage.
#![no_main]

#[path = "../../../node/runtime/src/genesis.rs"]
#[allow(dead_code)]
mod genesis;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(checked) = genesis::Genesis::from_json(text) {
        let again = serde_json::to_string(&checked.file).expect("a checked genesis serialises");
        let reread = genesis::Genesis::from_json(&again).expect("a checked genesis checks again");
        assert_eq!(reread.hash, checked.hash, "the genesis hash survives a JSON round trip");
    }
});
