//! The deterministic PBFT cluster simulator: every replica of a cluster in one thread, on
//! virtual time, with a simulated network, storage and executor, all driven by one seeded
//! RNG. The replicas run the real `pactum-consensus` code.
//!
//! Each seed draws its own faults (swarm testing): message drop, duplication, delay,
//! reordering and stale frames delivered long after they were sent; a partition that
//! heals; skewed timers; crashes of any replicas, repeated, sometimes in the middle of a
//! step (the step's records are written whole or not at all, and nothing is sent before
//! they are), and of the whole cluster at once; execution that lags delivery; Byzantine
//! replicas (at most f) with a [`Strategy`]; silent replicas; and Twins: two copies of one
//! replica with the same key, each talking to a different subset of the others. A fault
//! phase is followed by a liveness phase once the faults heal.
//!
//! Checkers: no two replicas running the honest code deliver different batches at one
//! sequence number; every delivered (or transferred) block's commit certificate verifies
//! against the honest quorum; no replica executes a request twice; no replica goes back
//! to an earlier view, across restarts too; state transfer ends at the state its
//! checkpoint proves; no message exceeds the message limit; every replica's own
//! invariants hold after every step; and once faults heal, every request reaches every
//! replica that must make progress, even while a primary orders other batches.
//!
//! A failure names its violation and the command that replays it; the same scenario always
//! produces the same trace hash.

#![forbid(unsafe_code)]

mod byzantine;
mod crypto;
mod scenario;
mod simulation;

pub use crypto::{FastCrypto, SimCrypto};
pub use scenario::{Origin, Partition, Scenario, Strategy, TwinsPhase, TwinsPlan};
pub use simulation::{EVENTS_PER_RUN_MAX, Failure, Report, Simulation, Violation, run_scenario};

/// Runs the swarm scenario of `seed`.
pub fn run_seed(seed: u64) -> Result<Report, Failure> {
    run_scenario(Scenario::from_seed(seed))
}
