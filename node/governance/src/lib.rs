//! Pactum's governance rules: the consortium configuration, proposals, approval
//! policies, and the checks every change passes (ADR 0019, `docs/governance.md`).
//!
//! Everything here is a pure function of a configuration, a proposal and the block's
//! height and time: the executor runs it identically on every validator and stores what
//! it returns. It must never read a clock, the disk or the network; it knows nothing of
//! storage, and of consensus only the epoch rule and the configuration that parameters
//! make.

#![forbid(unsafe_code)]

pub mod changes;
pub mod consortium;
pub mod dry_run;
pub mod parameters;
pub mod policy;
pub mod proposal;

pub use changes::{ChangeError, Context, apply, approvals_needed, voters};
pub use consortium::{Consortium, Member, PlannedEpoch, Validator, validator_set_hash};
pub use dry_run::{Check, DryRun, Size, dry_run};
pub use parameters::{check_parameters, consensus_config};
pub use policy::{PolicyError, required_approvals};
pub use proposal::{GovernanceError, Proposal, Status, Tally, Vote};

#[cfg(test)]
mod tests;
