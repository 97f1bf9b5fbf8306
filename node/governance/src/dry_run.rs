//! What a bundle of changes would do, without proposing it: every check's result, the
//! approvals it would need, and the consortium's size and fault tolerance before and
//! after. The REST API serves it so that an operator (or the console) sees a proposal's
//! effect before anyone signs it.

use crate::changes::{ChangeError, apply, approvals_needed, voters};
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
    pub fn of(consortium: &Consortium) -> Self {
        let validators = consortium.validators.len();
        let faults_tolerated = pactum_consensus::faults_tolerated(validators);
        Self {
            members: consortium.members.len(),
            validators,
            faults_tolerated,
            quorum: validators - faults_tolerated,
        }
    }
}

/// One change's check, run against the configuration the changes before it left (or, if
/// one of those failed, the last one that passed).
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

/// Runs every check of `changes` at Unix time `at` against `consortium`.
pub fn dry_run(consortium: &Consortium, changes: &[GovernanceChange], at: i64) -> DryRun {
    let mut current = consortium.clone();
    let mut checks = Vec::with_capacity(changes.len());
    for (index, change) in changes.iter().enumerate() {
        let result = match apply(&current, std::slice::from_ref(change), at) {
            Ok(next) => {
                current = next;
                Ok(())
            }
            Err(error) => Err(renumber(error, index)),
        };
        checks.push(Check { change: change.name(), result });
    }
    let whole = apply(consortium, changes, at);
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
        ChangeError::NotSupported { change, reason, .. } => {
            ChangeError::NotSupported { index, change, reason }
        }
        other => other,
    }
}
