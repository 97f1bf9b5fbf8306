//! What a bundle of changes would do, without proposing it: every check's result, the
//! approvals it would need, and the consortium's size and fault tolerance before and
//! after. The REST API serves it so that an operator (or the console) sees a proposal's
//! effect before anyone signs it.

use crate::changes::{ChangeError, Context, apply, apply_each, approvals_needed, voters};
use crate::consortium::Consortium;
use pactum_types::GovernanceChange;

/// The consortium's size and what PBFT tolerates at that size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub members: usize,
    /// n.
    pub validators: usize,
    /// f = ⌊(n − 1) / 3⌋.
    pub faults_tolerated: usize,
    /// n − f.
    pub quorum: usize,
}

impl Size {
    /// The size in force once every planned change took effect (the next epoch's
    /// validators, if a validator-set change is planned).
    pub fn of(consortium: &Consortium) -> Self {
        let validators = consortium
            .planned
            .as_ref()
            .map_or(consortium.validators.len(), |planned| planned.validators.len());
        Self::with(consortium.members.len(), validators)
    }

    /// The size of the epoch `consortium` is in (its current validators).
    pub fn current(consortium: &Consortium) -> Self {
        Self::with(consortium.members.len(), consortium.validators.len())
    }

    fn with(members: usize, validators: usize) -> Self {
        let faults_tolerated = pactum_consensus::faults_tolerated(validators);
        Self { members, validators, faults_tolerated, quorum: validators - faults_tolerated }
    }
}

/// One change's check, run after the changes before it that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub change: &'static str,
    pub result: Result<(), ChangeError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    pub before: Size,
    /// `None` when the bundle as a whole would be refused.
    pub after: Option<Size>,
    /// The bundle as a whole: what a proposal of it would be answered.
    pub outcome: Result<(), ChangeError>,
    pub checks: Vec<Check>,
    /// The organisations that would vote, and how many approvals the bundle needs.
    pub voters: usize,
    pub approvals_needed: Option<usize>,
}

/// Runs every check of `changes` against `consortium` in the block `context` describes:
/// each change after those before it that passed, then the bundle as a whole.
pub fn dry_run(consortium: &Consortium, changes: &[GovernanceChange], context: &Context) -> DryRun {
    let mut passed: Vec<GovernanceChange> = Vec::with_capacity(changes.len());
    let mut checks = Vec::with_capacity(changes.len());
    for (index, change) in changes.iter().enumerate() {
        let mut trial = passed.clone();
        trial.push(change.clone());
        let result = match apply_each(consortium, &trial, context) {
            Ok(_) => {
                passed.push(change.clone());
                Ok(())
            }
            Err(error) => Err(renumber(error, index)),
        };
        checks.push(Check { change: change.name(), result });
    }
    let whole = apply(consortium, changes, context);
    let voters = voters(consortium, changes).len();
    DryRun {
        before: Size::of(consortium),
        after: whole.as_ref().ok().map(Size::of),
        outcome: whole.map(|_| ()),
        checks,
        voters,
        approvals_needed: approvals_needed(consortium, changes, voters).ok(),
    }
}

/// A one-change check names position 0; give it its place in the bundle.
fn renumber(error: ChangeError, index: usize) -> ChangeError {
    match error {
        ChangeError::Refused { change, reason, .. } => {
            ChangeError::Refused { index, change, reason }
        }
        other => other,
    }
}
