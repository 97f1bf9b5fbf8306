//! The binary's only access to the wall clock. Everything below the binary (types,
//! storage, consensus, the VM) receives time as an input instead.

#![allow(clippy::disallowed_methods, reason = "this module is the one sanctioned clock")]

use std::time::{Duration, Instant};

/// A started stopwatch for measurements.
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

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_seconds() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the system clock is after 1970");
    i64::try_from(since_epoch.as_secs()).expect("seconds since 1970 fit in i64")
}
