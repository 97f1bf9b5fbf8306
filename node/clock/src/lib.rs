//! Pactum's only access to the wall clock. The replica, the mempool, the executor and the
//! VM never read it: they receive time as input from the crates that use this one (the
//! node runtime, the binary, the client and the admin service), so that the simulator
//! can replay them.

#![forbid(unsafe_code)]
#![allow(clippy::disallowed_methods, reason = "this crate is the one sanctioned clock")]

use std::time::{Duration, Instant};

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> i64 {
    i64::try_from(unix_millis() / 1000).unwrap_or(i64::MAX)
}

/// A started stopwatch.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}
