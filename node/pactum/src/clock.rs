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
