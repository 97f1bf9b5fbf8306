//! The runtime's clock, from `pactum-clock` (the one sanctioned access to the wall
//! clock). The replica, the mempool and the executor receive time from here as input: the
//! primary's proposal timestamp, commit-latency measurements, enrolment checks at
//! admission.

pub use pactum_clock::{Stopwatch, unix_millis, unix_seconds};
