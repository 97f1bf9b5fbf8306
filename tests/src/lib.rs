//! Pactum's whole-system tests live in this crate's `tests/` directory, with the helper
//! processes they spawn in `src/bin/`:
//!
//! - `crash-writer` commits blocks to a RocksDB store in a loop and reports each committed
//!   height on stdout, so that a test can kill it with SIGKILL at any instant and check
//!   what survived.
//!
//! - The PBFT cluster simulator is its own crate, `tests/sim` (`pactum-sim`), so that it
//!   builds without the storage engine.
//!
//! - [`devnet`] starts real validator processes through `pactum devnet` for the
//!   end-to-end tests (`tests/e2e.rs`) and does to them what the tests need: kill -9,
//!   restart, load, comparing what they report.

#![forbid(unsafe_code)]

pub mod devnet;

/// The chain id used by the crash-safety writer.
pub const CRASH_CHAIN_ID: &str = "pactum-crash";

/// Seed of the crash writer's keys; the test uses the same one to audit.
pub const CRASH_KEY_SEED: u64 = 7;
