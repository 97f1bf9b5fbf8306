//! Proposals and their lifecycle: open → passed → applied, or rejected (the policy can no
//! longer be met), expired, withdrawn, or failed (its changes no longer pass when applied).

use pactum_types::codec::{Decode, DecodeError, Encode, Reader, write};
use pactum_types::{GovernanceChange, Hash, PublicKey, limits};
use thiserror::Error;

use crate::changes::{ChangeError, Context, apply, approvals_needed, voters};
use crate::consortium::Consortium;

/// One organisation's vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub organisation: String,
    pub approve: bool,
    /// The admin key that cast it.
    pub voter: PublicKey,
    /// The transaction that carried it (the proposing one for the proposer's vote).
    pub transaction: Hash,
    pub height: u64,
}

/// Where a proposal is in its lifecycle; every state but `Open` and `Passed` is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Open,
    /// Approved at `height`; its changes apply at the end of that block.
    Passed {
        height: u64,
    },
    /// Its changes were applied at the end of block `height`, and are in force from the
    /// next block.
    Applied {
        height: u64,
    },
    /// Enough organisations rejected it that the policy can no longer be met.
    Rejected {
        height: u64,
    },
    Expired {
        height: u64,
    },
    Withdrawn {
        height: u64,
    },
    /// It passed, but its changes no longer passed their checks when applied.
    Failed {
        height: u64,
        reason: String,
    },
}

impl Status {
    /// Every status's name, as [`Status::name`] gives it.
    pub const NAMES: [&'static str; 7] =
        ["open", "passed", "applied", "rejected", "expired", "withdrawn", "failed"];

    pub fn name(&self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Passed { .. } => "passed",
            Status::Applied { .. } => "applied",
            Status::Rejected { .. } => "rejected",
            Status::Expired { .. } => "expired",
            Status::Withdrawn { .. } => "withdrawn",
            Status::Failed { .. } => "failed",
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Status::Open)
    }
}

/// A proposal as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The hash of the proposing transaction.
    pub id: Hash,
    pub organisation: String,
    pub proposer: PublicKey,
    pub title: String,
    pub description: String,
    pub changes: Vec<GovernanceChange>,
    pub opened_at_height: u64,
    pub expires_at_height: u64,
    /// In the order cast; one per organisation.
    pub votes: Vec<Vote>,
    pub status: Status,
}

/// Why a governance action is refused. The transaction is reverted with this reason; its
/// nonce is used and its gas charged, as for any reverted transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GovernanceError {
    #[error(
        "governance needs a key enrolled with an admin certificate of a member; {sender} is \
         enrolled as {role} of {organisation:?}"
    )]
    NotAdmin { sender: PublicKey, role: String, organisation: String },
    #[error("{organisation:?} is not a member of the consortium")]
    NotMember { organisation: String },
    #[error("no proposal {proposal}")]
    UnknownProposal { proposal: Hash },
    #[error("proposal {proposal} is {status}, not open")]
    NotOpen { proposal: Hash, status: &'static str },
    #[error("{organisation:?} already voted on proposal {proposal}")]
    AlreadyVoted { proposal: Hash, organisation: String },
    #[error("{organisation:?} cannot vote on proposal {proposal}: the proposal removes it")]
    RemovedVoter { proposal: Hash, organisation: String },
    #[error("only the proposer's organisation ({proposer:?}) can withdraw proposal {proposal}")]
    NotProposer { proposal: Hash, proposer: String },
    #[error(
        "the expiry height {expires_at_height} must be after this block ({height}) and at most \
         {max} blocks ahead"
    )]
    BadExpiry { expires_at_height: u64, height: u64, max: u64 },
    #[error("the title is empty")]
    EmptyTitle,
    #[error(
        "{open} proposals are open ({organisation:?} has {of_member}); at most {max} may be, \
         {per_member_max} per member: wait for one to be decided or expire"
    )]
    TooManyOpen {
        open: usize,
        of_member: usize,
        organisation: String,
        max: usize,
        per_member_max: usize,
    },
    #[error("the readiness announcement is refused: {reason}")]
    NotReady { reason: String },
    #[error(transparent)]
    Change(#[from] ChangeError),
}

/// The count of a proposal's votes against what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Passed,
    Rejected,
    Open { approvals: usize, needed: usize, voters: usize },
}

impl Proposal {
    /// Opens a proposal from a `Propose` action. Its changes must pass against the
    /// current configuration at Unix time `at`; the proposer's organisation approves it.
    #[allow(clippy::too_many_arguments, reason = "one field each of the proposal record")]
    pub fn open(
        consortium: &Consortium,
        id: Hash,
        organisation: &str,
        proposer: PublicKey,
        title: &str,
        description: &str,
        expires_at_height: u64,
        changes: &[GovernanceChange],
        context: &Context,
    ) -> Result<Self, GovernanceError> {
        let height = context.height;
        if !consortium.is_member(organisation) {
            return Err(GovernanceError::NotMember { organisation: organisation.into() });
        }
        if title.trim().is_empty() {
            return Err(GovernanceError::EmptyTitle);
        }
        let max = limits::PROPOSAL_LIFETIME_BLOCKS_MAX;
        if expires_at_height <= height || expires_at_height - height > max {
            return Err(GovernanceError::BadExpiry { expires_at_height, height, max });
        }
        apply(consortium, changes, context)?;
        let proposal = Self {
            id,
            organisation: organisation.into(),
            proposer,
            title: title.into(),
            description: description.into(),
            changes: changes.to_vec(),
            opened_at_height: height,
            expires_at_height,
            votes: vec![Vote {
                organisation: organisation.into(),
                approve: true,
                voter: proposer,
                transaction: id,
                height,
            }],
            status: Status::Open,
        };
        if !voters(consortium, changes).contains(organisation) {
            return Err(GovernanceError::RemovedVoter {
                proposal: id,
                organisation: organisation.into(),
            });
        }
        Ok(proposal)
    }

    /// Records `organisation`'s vote.
    pub fn vote(&mut self, consortium: &Consortium, vote: Vote) -> Result<(), GovernanceError> {
        self.check_open()?;
        if !consortium.is_member(&vote.organisation) {
            return Err(GovernanceError::NotMember { organisation: vote.organisation });
        }
        if !voters(consortium, &self.changes).contains(&vote.organisation) {
            return Err(GovernanceError::RemovedVoter {
                proposal: self.id,
                organisation: vote.organisation,
            });
        }
        if self.votes.iter().any(|cast| cast.organisation == vote.organisation) {
            return Err(GovernanceError::AlreadyVoted {
                proposal: self.id,
                organisation: vote.organisation,
            });
        }
        self.votes.push(vote);
        Ok(())
    }

    pub fn withdraw(&mut self, organisation: &str, height: u64) -> Result<(), GovernanceError> {
        self.check_open()?;
        if organisation != self.organisation {
            return Err(GovernanceError::NotProposer {
                proposal: self.id,
                proposer: self.organisation.clone(),
            });
        }
        self.status = Status::Withdrawn { height };
        Ok(())
    }

    /// Counts the votes of the organisations that may vote on it now (members that the
    /// proposal does not remove) against the policy of its changes.
    pub fn tally(&self, consortium: &Consortium) -> Result<Tally, ChangeError> {
        let voters = voters(consortium, &self.changes);
        let needed = approvals_needed(consortium, &self.changes, voters.len())?;
        let counted = self.votes.iter().filter(|vote| voters.contains(&vote.organisation));
        let (approvals, rejections) =
            counted.fold(
                (0, 0),
                |(yes, no), vote| {
                    if vote.approve { (yes + 1, no) } else { (yes, no + 1) }
                },
            );
        if approvals >= needed {
            return Ok(Tally::Passed);
        }
        if voters.len() - rejections < needed {
            return Ok(Tally::Rejected);
        }
        Ok(Tally::Open { approvals, needed, voters: voters.len() })
    }

    fn check_open(&self) -> Result<(), GovernanceError> {
        if self.status.is_open() {
            Ok(())
        } else {
            Err(GovernanceError::NotOpen { proposal: self.id, status: self.status.name() })
        }
    }
}

impl Encode for Vote {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::string(out, &self.organisation);
        write::bool(out, self.approve);
        self.voter.encode_to(out);
        self.transaction.encode_to(out);
        write::u64(out, self.height);
    }
}

impl Decode for Vote {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            organisation: reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "organisation")?,
            approve: reader.bool("approve")?,
            voter: PublicKey::decode_from(reader)?,
            transaction: Hash::decode_from(reader)?,
            height: reader.u64("vote height")?,
        })
    }
}

impl Encode for Status {
    fn encode_to(&self, out: &mut Vec<u8>) {
        let (tag, height) = match self {
            Status::Open => (1, None),
            Status::Passed { height } => (2, Some(height)),
            Status::Applied { height } => (3, Some(height)),
            Status::Rejected { height } => (4, Some(height)),
            Status::Expired { height } => (5, Some(height)),
            Status::Withdrawn { height } => (6, Some(height)),
            Status::Failed { height, .. } => (7, Some(height)),
        };
        write::u8(out, tag);
        if let Some(height) = height {
            write::u64(out, *height);
        }
        if let Status::Failed { reason, .. } = self {
            write::string(out, reason);
        }
    }
}

impl Decode for Status {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = reader.u8("proposal status")?;
        if tag == 1 {
            return Ok(Status::Open);
        }
        let height = reader.u64("status height")?;
        match tag {
            2 => Ok(Status::Passed { height }),
            3 => Ok(Status::Applied { height }),
            4 => Ok(Status::Rejected { height }),
            5 => Ok(Status::Expired { height }),
            6 => Ok(Status::Withdrawn { height }),
            7 => Ok(Status::Failed {
                height,
                reason: reader.string(limits::REASON_BYTES_MAX, "failure reason")?,
            }),
            tag => Err(DecodeError::UnknownTag { what: "proposal status", tag }),
        }
    }
}

impl Encode for Proposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.id.encode_to(out);
        write::string(out, &self.organisation);
        self.proposer.encode_to(out);
        write::string(out, &self.title);
        write::string(out, &self.description);
        write::sequence(out, &self.changes);
        write::u64(out, self.opened_at_height);
        write::u64(out, self.expires_at_height);
        write::sequence(out, &self.votes);
        self.status.encode_to(out);
    }
}

impl Decode for Proposal {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: Hash::decode_from(reader)?,
            organisation: reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "organisation")?,
            proposer: PublicKey::decode_from(reader)?,
            title: reader.string(limits::PROPOSAL_TITLE_BYTES_MAX, "proposal title")?,
            description: reader
                .string(limits::PROPOSAL_DESCRIPTION_BYTES_MAX, "proposal description")?,
            changes: reader.sequence(limits::PROPOSAL_CHANGES_MAX, "proposal changes")?,
            opened_at_height: reader.u64("opened at")?,
            expires_at_height: reader.u64("expires at")?,
            votes: reader.sequence(limits::MEMBERS_MAX, "votes")?,
            status: Status::decode_from(reader)?,
        })
    }
}
