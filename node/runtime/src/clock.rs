//! The runtime's only access to the wall clock (the binary has its own for the CLI). The
//! replica, the mempool and the executor receive time from here as input: the primary's
//! proposal timestamp, commit-latency measurements, enrolment checks at admission.

#![allow(clippy::disallowed_methods, reason = "this module is the runtime's one sanctioned clock")]

use std::time::{Duration, Instant};

/// Milliseconds since the Unix epoch.
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
