//! The binary's clock, from `pactum-clock` (the one sanctioned access to the wall clock).
//! Everything below the binary (types, storage, consensus, the VM) receives time as an
//! input instead.

pub use pactum_clock::{Stopwatch, unix_seconds};
