//! Governance transactions, and the consortium's records in [`StateSpace::Consortium`]
//! (part of the state root like every other state entry; `docs/storage.md`):
//!
//! - `current` -> the configuration in force (absent until the first applied proposal:
//!   then the genesis version is in force);
//! - `version/` || (`u64::MAX` - height), big-endian -> the configuration applied at the
//!   end of block `height`, in force from the next block (the inverted height makes a
//!   forward scan find the latest version at or below a height first);
//! - `proposal/` || id -> a proposal;
//! - `open` -> the open proposals, in the order opened: each its id (32 bytes) and its
//!   expiry height (8 bytes, big-endian), so that expiring them reads one record a block.
//!
//! The rules themselves are `pactum-governance`'s; this module runs them against the
//! block's state. Proposals that pass in a block are applied at its end, in the order
//! they passed, each checked again against the configuration as it then stands; open
//! proposals past their expiry height expire at the end of the block.

use std::collections::BTreeMap;
use std::sync::Arc;

use pactum_governance::{
    ChangeError, Consortium, Context, GovernanceError, Proposal, Status, Tally, Vote, apply,
};
use pactum_storage::{StateChange, StateSpace, StorageError, StoreRead};
use pactum_types::codec::{Decode, Encode};
use pactum_types::{
    Address, ChainId, Event, GovernanceAction, GovernanceChange, Hash, PublicKey, limits,
};

use crate::state::BlockState;
use crate::state::ledger::Enrolment;

/// The executor's check of one contract upgrade against the block's state: why the code
/// cannot replace the contract's (no such contract, code the VM refuses), if it cannot.
pub(crate) type UpgradeCheck<'a> =
    &'a dyn Fn(&BlockState, &Address, &[u8]) -> Result<Option<String>, StorageError>;

/// The first contract upgrade among `changes` that `check` refuses, as the change error
/// a proposal of them is answered with.
fn upgrade_refusal(
    changes: &[GovernanceChange],
    state: &BlockState,
    check: UpgradeCheck<'_>,
) -> Result<Option<ChangeError>, StorageError> {
    for (index, change) in changes.iter().enumerate() {
        if let GovernanceChange::UpgradeContract { contract, code } = change
            && let Some(reason) = check(state, contract, code)?
        {
            return Ok(Some(ChangeError::Refused { index, change: change.name(), reason }));
        }
    }
    Ok(None)
}

pub const CURRENT_KEY: &[u8] = b"current";
pub const VERSION_PREFIX: &[u8] = b"version/";
pub const PROPOSAL_PREFIX: &[u8] = b"proposal/";
pub const OPEN_KEY: &[u8] = b"open";

/// The address governance events are emitted from: no contract has it (ADR 0019).
pub const GOVERNANCE_ADDRESS: Address = Address([0; 32]);

pub fn proposal_key(id: &Hash) -> Vec<u8> {
    [PROPOSAL_PREFIX, &id.0[..]].concat()
}

fn version_key(height: u64) -> Vec<u8> {
    [VERSION_PREFIX, &(u64::MAX - height).to_be_bytes()[..]].concat()
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt { what: what.to_string(), detail: error.to_string() }
}

fn decode_consortium(bytes: &[u8]) -> Result<Consortium, StorageError> {
    Consortium::from_bytes(bytes).map_err(|error| corrupt("the consortium configuration", error))
}

/// The configuration in force after the last committed block of `store`.
pub fn current(
    store: &dyn StoreRead,
    genesis: &Arc<Consortium>,
) -> Result<Arc<Consortium>, StorageError> {
    match store.state_get(StateSpace::Consortium, CURRENT_KEY)? {
        Some(bytes) => Ok(Arc::new(decode_consortium(&bytes)?)),
        None => Ok(Arc::clone(genesis)),
    }
}

/// The configuration in force for block `height` (the one applied last at a height
/// below it, or genesis).
pub fn at_height(
    store: &dyn StoreRead,
    genesis: &Arc<Consortium>,
    height: u64,
) -> Result<Arc<Consortium>, StorageError> {
    let Some(below) = height.checked_sub(1) else { return Ok(Arc::clone(genesis)) };
    // Versions are keyed by inverted height: the first key at or after `version_key(below)`
    // is the latest applied at or below `below`.
    let after = below.checked_add(1).map(|above| (u64::MAX - above).to_be_bytes());
    let found = store.state_scan(
        StateSpace::Consortium,
        VERSION_PREFIX,
        after.as_ref().map(|bytes| &bytes[..]),
        1,
    )?;
    match found.into_iter().next() {
        Some((_, bytes)) => Ok(Arc::new(decode_consortium(&bytes)?)),
        None => Ok(Arc::clone(genesis)),
    }
}

pub fn proposal(store: &dyn StoreRead, id: &Hash) -> Result<Option<Proposal>, StorageError> {
    store
        .state_get(StateSpace::Consortium, &proposal_key(id))?
        .map(|bytes| Proposal::from_bytes(&bytes).map_err(|error| corrupt("a proposal", error)))
        .transpose()
}

/// Up to `limit` proposals in id order, after `after` when given.
pub fn proposals(
    store: &dyn StoreRead,
    after: Option<&Hash>,
    limit: usize,
) -> Result<Vec<Proposal>, StorageError> {
    store
        .state_scan(StateSpace::Consortium, PROPOSAL_PREFIX, after.map(|id| &id.0[..]), limit)?
        .into_iter()
        .map(|(_, bytes)| {
            Proposal::from_bytes(&bytes).map_err(|error| corrupt("a proposal", error))
        })
        .collect()
}

/// An open proposal's id and expiry height.
type OpenEntry = (Hash, u64);

const OPEN_ENTRY_BYTES: usize = 40;

fn open_entries(store: &dyn StoreRead) -> Result<Vec<OpenEntry>, StorageError> {
    let bytes = store.state_get(StateSpace::Consortium, OPEN_KEY)?.unwrap_or_default();
    if bytes.len() % OPEN_ENTRY_BYTES != 0
        || bytes.len() / OPEN_ENTRY_BYTES > limits::OPEN_PROPOSALS_MAX
    {
        return Err(corrupt("the open proposals", format!("{} bytes", bytes.len())));
    }
    Ok(bytes
        .chunks_exact(OPEN_ENTRY_BYTES)
        .map(|chunk| {
            let (id, expiry) = chunk.split_at(32);
            let id = Hash(id.try_into().expect("32 bytes"));
            (id, u64::from_be_bytes(expiry.try_into().expect("8 bytes")))
        })
        .collect())
}

/// What the governance rules need from the chain: its identity (a new validator's proof
/// of possession names it).
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub chain: ChainId,
}

impl Rules {
    fn context(&self, height: u64, at: i64) -> Context {
        Context { at, height, chain: self.chain.clone() }
    }
}

/// The governance of one block: its view of the configuration and the proposals it
/// touched, written out by [`BlockGovernance::finish`].
pub(crate) struct BlockGovernance {
    store: Arc<dyn StoreRead>,
    rules: Rules,
    consortium: Arc<Consortium>,
    /// Whether the configuration changed in this block (a proposal applied, a validator
    /// announced itself ready, an epoch began).
    changed: bool,
    touched: BTreeMap<Hash, Proposal>,
    /// Loaded on first use.
    open: Option<Vec<OpenEntry>>,
    /// Passed in this block, to apply at its end.
    passed: Vec<Hash>,
}

/// What a block's governance wrote, and the configuration it leaves in force.
pub(crate) struct GovernanceOutcome {
    pub changes: Vec<StateChange>,
    /// `Some` when a proposal was applied.
    pub consortium: Option<Arc<Consortium>>,
}

impl BlockGovernance {
    pub(crate) fn new(
        store: Arc<dyn StoreRead>,
        consortium: Arc<Consortium>,
        rules: Rules,
    ) -> Self {
        Self {
            store,
            rules,
            consortium,
            changed: false,
            touched: BTreeMap::new(),
            open: None,
            passed: Vec::new(),
        }
    }

    /// `sender`, a validator the planned epoch adds, announces itself ready in the block
    /// at `height`: once nobody waits, the current epoch's end is scheduled (ADR 0021).
    pub(crate) fn ready(
        &mut self,
        sender: PublicKey,
        height: u64,
    ) -> Result<Vec<Event>, GovernanceError> {
        let next = self
            .consortium
            .ready(&sender, height)
            .map_err(|reason| GovernanceError::NotReady { reason })?;
        self.consortium = Arc::new(next);
        self.changed = true;
        Ok(vec![Event {
            contract: GOVERNANCE_ADDRESS,
            topic: "governance.validator_ready".into(),
            data: sender.0.to_vec(),
        }])
    }

    fn open_list(&mut self) -> Result<&mut Vec<OpenEntry>, StorageError> {
        if self.open.is_none() {
            self.open = Some(open_entries(self.store.as_ref())?);
        }
        Ok(self.open.get_or_insert_with(Vec::new))
    }

    fn load(&mut self, id: &Hash) -> Result<Option<&mut Proposal>, StorageError> {
        if !self.touched.contains_key(id) {
            let Some(stored) = proposal(self.store.as_ref(), id)? else { return Ok(None) };
            self.touched.insert(*id, stored);
        }
        Ok(self.touched.get_mut(id))
    }

    /// Runs one governance action from `sender` (enrolled as `enrolment`), carried by the
    /// transaction `transaction` of block `height` at Unix time `at`. The events of its
    /// receipt, or why it is reverted.
    /// The configuration in force for this block.
    pub(crate) fn consortium(&self) -> &Consortium {
        &self.consortium
    }

    #[allow(clippy::too_many_arguments, reason = "the action, its sender and its block")]
    pub(crate) fn execute(
        &mut self,
        action: &GovernanceAction,
        sender: PublicKey,
        enrolment: &Enrolment,
        transaction: Hash,
        height: u64,
        at: i64,
        state: &BlockState,
        check: UpgradeCheck<'_>,
    ) -> Result<Result<Vec<Event>, GovernanceError>, StorageError> {
        if enrolment.role != "admin" {
            return Ok(Err(GovernanceError::NotAdmin {
                sender,
                role: enrolment.role.clone(),
                organisation: enrolment.organisation.clone(),
            }));
        }
        let organisation = enrolment.organisation.as_str();
        let consortium = Arc::clone(&self.consortium);
        let (id, topic) = match action {
            GovernanceAction::Propose { title, description, expires_at_height, changes } => {
                let proposal = match Proposal::open(
                    &consortium,
                    transaction,
                    organisation,
                    sender,
                    title,
                    description,
                    *expires_at_height,
                    changes,
                    &self.rules.context(height, at),
                ) {
                    Ok(proposal) => proposal,
                    Err(error) => return Ok(Err(error)),
                };
                if let Some(error) = upgrade_refusal(changes, state, check)? {
                    return Ok(Err(error.into()));
                }
                let open = self.open_list()?.clone();
                let of_member = count_of(&open, &self.touched, self.store.as_ref(), organisation)?;
                let open = self.open_list()?;
                if open.len() >= limits::OPEN_PROPOSALS_MAX
                    || of_member >= limits::OPEN_PROPOSALS_PER_MEMBER_MAX
                {
                    return Ok(Err(GovernanceError::TooManyOpen {
                        open: open.len(),
                        of_member,
                        organisation: organisation.into(),
                        max: limits::OPEN_PROPOSALS_MAX,
                        per_member_max: limits::OPEN_PROPOSALS_PER_MEMBER_MAX,
                    }));
                }
                open.push((transaction, *expires_at_height));
                self.touched.insert(transaction, proposal);
                (transaction, "governance.proposed")
            }
            GovernanceAction::Approve { proposal: id }
            | GovernanceAction::Reject { proposal: id } => {
                let approve = matches!(action, GovernanceAction::Approve { .. });
                let vote = Vote {
                    organisation: organisation.into(),
                    approve,
                    voter: sender,
                    transaction,
                    height,
                };
                let Some(proposal) = self.load(id)? else {
                    return Ok(Err(GovernanceError::UnknownProposal { proposal: *id }));
                };
                if let Err(error) = proposal.vote(&consortium, vote) {
                    return Ok(Err(error));
                }
                (*id, if approve { "governance.approved" } else { "governance.rejected" })
            }
            // A new validator's own announcement, not an admin's (`BlockGovernance::ready`).
            GovernanceAction::Ready => {
                return Ok(Err(GovernanceError::NotReady {
                    reason: format!("{sender} is not a validator waiting to join"),
                }));
            }
            GovernanceAction::Withdraw { proposal: id } => {
                let Some(proposal) = self.load(id)? else {
                    return Ok(Err(GovernanceError::UnknownProposal { proposal: *id }));
                };
                if let Err(error) = proposal.withdraw(organisation, height) {
                    return Ok(Err(error));
                }
                (*id, "governance.withdrawn")
            }
        };
        let mut events = vec![event(topic, &id)];
        if let Some(outcome) = self.settle(&id, height)? {
            events.push(event(outcome, &id));
        }
        Ok(Ok(events))
    }

    /// Moves an open proposal to passed or rejected if its votes decide it. The event
    /// topic of the decision, if any.
    fn settle(&mut self, id: &Hash, height: u64) -> Result<Option<&'static str>, StorageError> {
        let consortium = Arc::clone(&self.consortium);
        let Some(proposal) = self.load(id)? else { return Ok(None) };
        if !proposal.status.is_open() {
            return Ok(None);
        }
        let decided = match proposal.tally(&consortium) {
            Ok(Tally::Passed) => {
                proposal.status = Status::Passed { height };
                self.passed.push(*id);
                "governance.passed"
            }
            Ok(Tally::Rejected) => {
                proposal.status = Status::Rejected { height };
                "governance.closed"
            }
            Ok(Tally::Open { .. }) => return Ok(None),
            // The policy cannot be met any more (members left): the proposal cannot pass.
            Err(error) => {
                proposal.status = Status::Failed { height, reason: error.to_string() };
                "governance.failed"
            }
        };
        Ok(Some(decided))
    }

    /// Applies the proposals that passed, expires the open ones whose time is up, and
    /// returns the block's consortium-space writes.
    pub(crate) fn finish(
        mut self,
        height: u64,
        at: i64,
        state: &mut BlockState,
        check: UpgradeCheck<'_>,
    ) -> Result<GovernanceOutcome, StorageError> {
        let context = self.rules.context(height, at);
        let mut applied = false;
        // Applying one proposal can decide others (a member left, so fewer votes are
        // needed); each round settles every open proposal again. Each round closes at
        // least one proposal or ends, so there are at most as many rounds as proposals.
        loop {
            for id in std::mem::take(&mut self.passed) {
                let Some(proposal) = self.touched.get_mut(&id) else { continue };
                let next = match apply(&self.consortium, &proposal.changes, &context) {
                    Ok(next) => match upgrade_refusal(&proposal.changes, state, check)? {
                        Some(error) => Err(error),
                        None => Ok(next),
                    },
                    Err(error) => Err(error),
                };
                match next {
                    Ok(next) => {
                        for change in &proposal.changes {
                            if let GovernanceChange::UpgradeContract { contract, code } = change {
                                state.upgrade_contract(*contract, code.clone());
                            }
                        }
                        proposal.status = Status::Applied { height };
                        self.consortium = Arc::new(next);
                        applied = true;
                    }
                    Err(error) => {
                        proposal.status = Status::Failed { height, reason: error.to_string() };
                    }
                }
            }
            if !applied {
                break;
            }
            let open: Vec<OpenEntry> = self.open_list()?.clone();
            for (id, _) in &open {
                self.settle(id, height)?;
            }
            if self.passed.is_empty() {
                break;
            }
        }
        // One read a block: the open list holds each proposal's expiry height.
        let open: Vec<OpenEntry> = self.open_list()?.clone();
        for (id, expires_at_height) in &open {
            if *expires_at_height <= height
                && let Some(proposal) = self.load(id)?
                && proposal.status.is_open()
            {
                proposal.status = Status::Expired { height };
            }
        }
        let still_open: Vec<OpenEntry> = open
            .into_iter()
            .filter(|(id, _)| self.touched.get(id).is_none_or(|proposal| proposal.status.is_open()))
            .collect();
        let mut changes = Vec::new();
        if still_open.len() != self.open_list()?.len() || !self.touched.is_empty() {
            let bytes: Vec<u8> = still_open
                .iter()
                .flat_map(|(id, expiry)| [&id.0[..], &expiry.to_be_bytes()[..]].concat())
                .collect();
            changes.push(change(OPEN_KEY.to_vec(), bytes));
        }
        for (id, proposal) in &self.touched {
            changes.push(change(proposal_key(id), proposal.to_bytes()));
        }
        // The epoch whose last block this is ends: the planned set is in force from the
        // next block on.
        if let Some(next) = self.consortium.enter_next_epoch(height) {
            self.consortium = Arc::new(next);
            self.changed = true;
        }
        let consortium = (applied || self.changed).then(|| {
            let bytes = self.consortium.to_bytes();
            changes.push(change(version_key(height), bytes.clone()));
            changes.push(change(CURRENT_KEY.to_vec(), bytes));
            Arc::clone(&self.consortium)
        });
        changes.sort_by(|left, right| left.key.cmp(&right.key));
        Ok(GovernanceOutcome { changes, consortium })
    }
}

/// How many open proposals `organisation` has.
fn count_of(
    open: &[OpenEntry],
    touched: &BTreeMap<Hash, Proposal>,
    store: &dyn StoreRead,
    organisation: &str,
) -> Result<usize, StorageError> {
    let mut count = 0;
    for (id, _) in open {
        let mine = match touched.get(id) {
            Some(proposal) => proposal.organisation == organisation,
            None => {
                proposal(store, id)?.is_some_and(|proposal| proposal.organisation == organisation)
            }
        };
        count += usize::from(mine);
    }
    Ok(count)
}

fn change(key: Vec<u8>, value: Vec<u8>) -> StateChange {
    StateChange { space: StateSpace::Consortium, key, value: Some(value) }
}

fn event(topic: &str, id: &Hash) -> Event {
    Event { contract: GOVERNANCE_ADDRESS, topic: topic.into(), data: id.0.to_vec() }
}
