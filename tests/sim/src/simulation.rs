//! The simulation: every replica (and twin copy) of a cluster in one thread, on virtual
//! time, with a simulated network, storage and executor, all driven by one seeded RNG.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use pactum_consensus::{
    CheckpointCertificate, CommitCertificate, Config, Delivery, Effect, Input, LogFloor, Message,
    Mutation, Record, Replica, ReplicaId, Sequence, SignedMessage, TimeoutKind, Verifier, View,
    batch_requests, epoch_identity, epoch_last_sequence,
};
use pactum_types::hash::{sha3_256, sha3_256_parts};
use pactum_types::{Encode, Hash, limits};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::crypto::SimCrypto;
use crate::scenario::{Partition, Scenario, Strategy};

/// Events one run may handle; healthy runs use a few hundred thousand at most.
pub const EVENTS_PER_RUN_MAX: u64 = 5_000_000;

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two replicas running the honest code delivered different batches at one sequence
    /// number.
    Divergence { sequence: u64, first: String, second: String },
    /// A delivery (or a transferred block) whose commit certificate does not verify.
    BadCertificate { replica: String, sequence: u64, error: String },
    /// A replica executed one request twice that an honest primary put into two batches
    /// of one view.
    DuplicateExecution { replica: String, sequence: u64, request: String },
    /// An honest primary proposed a request its own ledger already holds.
    Reproposed { replica: String, request: String },
    /// A replica entered a view below one it had entered before (across restarts too).
    ViewWentBack { replica: String, from: u64, to: u64 },
    /// A state transfer ended at another state than the checkpoint it was asked for.
    StateDivergence { replica: String, sequence: u64 },
    /// A replica delivered out of order.
    OutOfOrder { replica: String, expected: u64, got: u64 },
    /// A replica running the honest code signed two different votes (or PRE-PREPAREs) for
    /// one view and sequence number, or voted in a view below one it had asked to leave
    /// (PBFT §4.4), across restarts too.
    HonestEquivocation { replica: String, what: String },
    /// An honest primary's NEW-VIEW does not re-propose what its VIEW-CHANGEs imply
    /// (PBFT §4.4: for each sequence number, the digest of the highest-view certificate).
    WrongNewView { replica: String, sequence: u64 },
    /// A replica's decision at a sequence number changed.
    DecisionChanged { replica: String, sequence: u64 },
    /// A replica built a message larger than a frame may carry.
    MessageTooLarge { replica: String, kind: &'static str, bytes: usize },
    /// A replica's own invariants failed (`Replica::check_invariants` panicked).
    Invariant { replica: String, message: String },
    /// More events than any healthy run needs (a message or timer storm).
    EventStorm { at_ms: u64, events: u64 },
    /// After the faults healed, not every request was delivered in time.
    NoProgress { replica: String, delivered: usize, proposed: usize },
    /// After the faults healed, a replica of the new validator set never entered its
    /// epoch (ADR 0021).
    NoEpochChange { replica: String, epoch: u64 },
}

impl Violation {
    /// Whether this is a safety violation (as opposed to liveness or a storm).
    pub fn is_safety(&self) -> bool {
        !matches!(
            self,
            Violation::EventStorm { .. }
                | Violation::NoProgress { .. }
                | Violation::NoEpochChange { .. }
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Divergence { sequence, first, second } => write!(
                formatter,
                "safety: {first} and {second} delivered different batches at sequence {sequence}"
            ),
            Violation::BadCertificate { replica, sequence, error } => write!(
                formatter,
                "safety: {replica} delivered sequence {sequence} with a certificate that does not verify: {error}"
            ),
            Violation::DuplicateExecution { replica, sequence, request } => write!(
                formatter,
                "safety: {replica} executed request {request} a second time at sequence {sequence}"
            ),
            Violation::Reproposed { replica, request } => write!(
                formatter,
                "safety: {replica}, an honest primary, proposed request {request} again after delivering it"
            ),
            Violation::ViewWentBack { replica, from, to } => {
                write!(formatter, "safety: {replica} went back from view {from} to view {to}")
            }
            Violation::StateDivergence { replica, sequence } => write!(
                formatter,
                "safety: {replica} transferred to a state other than the checkpoint at {sequence}"
            ),
            Violation::OutOfOrder { replica, expected, got } => {
                write!(formatter, "safety: {replica} delivered sequence {got}, expected {expected}")
            }
            Violation::HonestEquivocation { replica, what } => {
                write!(formatter, "safety: {replica}, running the honest code, {what}")
            }
            Violation::WrongNewView { replica, sequence } => write!(
                formatter,
                "safety: {replica}'s NEW-VIEW does not re-propose the highest-view certificate at sequence {sequence}"
            ),
            Violation::DecisionChanged { replica, sequence } => {
                write!(formatter, "safety: {replica}'s decision at sequence {sequence} changed")
            }
            Violation::MessageTooLarge { replica, kind, bytes } => write!(
                formatter,
                "safety: {replica} built a {kind} of {bytes} bytes, over the {}-byte limit",
                limits::CONSENSUS_MESSAGE_BYTES_MAX
            ),
            Violation::Invariant { replica, message } => {
                write!(formatter, "safety: {replica} broke an invariant: {message}")
            }
            Violation::EventStorm { at_ms, events } => write!(
                formatter,
                "storm: {events} events by virtual time {at_ms} ms, more than a healthy run needs"
            ),
            Violation::NoProgress { replica, delivered, proposed } => write!(
                formatter,
                "liveness: {replica} delivered {delivered} of {proposed} requests after the faults healed"
            ),
            Violation::NoEpochChange { replica, epoch } => write!(
                formatter,
                "liveness: {replica} is still in epoch {epoch} after the faults healed; the validator-set change never reached it"
            ),
        }
    }
}

/// What a passing run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub trace_hash: Hash,
    pub messages_delivered: u64,
    pub evidence: u64,
    pub delivered: usize,
    pub virtual_ms: u64,
    pub crashes: u64,
    pub state_transfers: u64,
    pub failed_transfers: u64,
    pub batches_fetched: u64,
    /// The highest view any replica running the honest code entered.
    pub highest_view: u64,
    /// Replicas (copies) that entered a new epoch, and those that caught up to one from
    /// their peers' blocks (a joiner, or a replica left behind in the old epoch).
    pub epoch_changes: u64,
    pub epoch_catch_ups: u64,
}

#[derive(Debug)]
enum Event {
    Message {
        to: usize,
        /// The epoch the message belongs to (the node's frame carries it).
        epoch: u64,
        message: SignedMessage,
    },
    Timer {
        node: usize,
        kind: TimeoutKind,
        incarnation: u64,
    },
    Propose {
        index: usize,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Executed {
        node: usize,
        incarnation: u64,
        sequence: Sequence,
        state: Hash,
    },
    Transfer {
        node: usize,
        incarnation: u64,
        checkpoint: CheckpointCertificate,
    },
    StopTwin,
    /// Requests a backup relayed to the primary arrive.
    Relayed {
        node: usize,
        requests: Vec<Vec<u8>>,
    },
    /// The client sends the request that changes the validator set.
    Reconfigure,
    /// A node that saw a later epoch's message catches up from its peers' blocks.
    CatchUp {
        node: usize,
    },
    /// The client re-sends every request nobody has delivered yet (PBFT §4.1: a client
    /// that gets no reply retransmits; requests are not persisted by replicas, so a crash
    /// of every replica loses them).
    ClientRetry,
}

/// How often the simulated client re-sends requests nobody has delivered.
const CLIENT_RETRY_MS: u64 = 3_000;

/// One block of a simulated ledger.
#[derive(Debug, Clone)]
struct Block {
    batch: Vec<u8>,
    certificate: CommitCertificate,
}

/// A replica process (or one copy of a twin) with its disk.
struct Node {
    id: ReplicaId,
    /// The epoch this node is in: 0, or 1 once it executed the genesis epoch's last
    /// sequence number (or caught up past it).
    epoch: u64,
    /// Crashed and not restarted yet (a node with no replica that is not down is an
    /// observer: a joiner before its epoch, or a replica that left).
    down: bool,
    /// A catch-up is scheduled.
    catch_up_pending: bool,
    /// 0, or 1 for the second copy of a twin.
    copy: u8,
    replica: Option<Replica<SimCrypto>>,
    /// The durable consensus log (each step's records are written atomically).
    records: Vec<Record>,
    floor: LogFloor,
    /// Delivered blocks; the first `executed` of them are durable.
    ledger: Vec<Block>,
    /// State digest after each block of `ledger`.
    states: Vec<Hash>,
    executed: u64,
    /// When the last scheduled `Executed` report fires (they fire in order).
    execution_ready_ms: u64,
    /// Request digests in `ledger`, each with the batch that held it first: its epoch, the
    /// view whose primary cut it, and the view of its commit certificate.
    requests: BTreeMap<Hash, (u64, u64, u64)>,
    incarnation: u64,
    /// The next step is cut short by a crash.
    crash_mid_step: bool,
    /// Stopped for good (the second copy of a twin once the faults heal).
    stopped: bool,
    /// What a Byzantine replica received, for replays (bounded).
    seen: VecDeque<SignedMessage>,
    /// (view, sequence, digest) an equivocating replica already voted for.
    voted: BTreeSet<(View, Sequence, Hash)>,
    /// What this node signed and sent, for the equivocation check: digest by (message
    /// kind, view, sequence), and the highest view it sent a VIEW-CHANGE for.
    signed: BTreeMap<(&'static str, View, Sequence), Hash>,
    left_view: View,
    /// The decisions this replica made, as last seen (checked never to change).
    decisions: BTreeMap<Sequence, Hash>,
    max_view_entered: View,
}

impl Node {
    fn name(&self) -> String {
        if self.copy == 0 { format!("r{}", self.id) } else { format!("r{}'", self.id) }
    }

    fn state(&self) -> Hash {
        self.states.last().copied().unwrap_or(Hash::ZERO)
    }
}

/// One simulated cluster.
pub struct Simulation {
    pub(crate) scenario: Scenario,
    /// Each epoch's configuration, as the checkers use it (the replicas' has the
    /// scenario's planted bug, if any): epoch 0 from the start, epoch 1 once the
    /// validator-set change is executed. Epoch 1's start digest is each node's own state
    /// there, filled in when it boots.
    epochs: Vec<Config>,
    /// The sequence number of the block that changed the validator set.
    reconfigured_at: Option<u64>,
    /// Partitions added during the run (`Reconfiguration::isolate_at_decision`).
    isolations: Vec<Partition>,
    /// Whether the first replica entered the new epoch.
    boundary_reached: bool,
    pub(crate) rng: StdRng,
    now: u64,
    counter: u64,
    events: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    pub(crate) secrets: Arc<Vec<[u8; 32]>>,
    verifier: SimCrypto,
    /// First delivered digest per sequence, with who delivered it.
    decided: BTreeMap<u64, (Hash, String)>,
    trace: Vec<u8>,
    report: Report,
    proposed: BTreeSet<Hash>,
    /// Every request, by digest.
    requests: BTreeMap<Hash, Vec<u8>>,
    proposals_made: usize,
    /// Requests some replica delivered.
    delivered_anywhere: BTreeSet<Hash>,
    /// Requests the client re-sent: a replica may see these twice, and executes them once
    /// (in the node, the nonce rule).
    retransmitted: BTreeSet<Hash>,
    /// `PACTUM_SIM_TRACE=1`: print every input and effect to stderr.
    tracing: bool,
}

/// The request that changes the validator set in a scenario with a reconfiguration.
fn reconfiguration_request(seed: u64) -> Vec<u8> {
    [&seed.to_be_bytes()[..], b"reconfigure the validator set"].concat()
}

impl fmt::Debug for Simulation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Simulation")
            .field("scenario", &self.scenario)
            .finish_non_exhaustive()
    }
}

/// How many messages of each kind a replica built that were checked against the limit.
fn message_bytes(message: &SignedMessage) -> usize {
    message.to_bytes().len()
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Self {
        let chain = sha3_256_parts(&[b"sim-chain", &scenario.seed.to_be_bytes()]);
        let honest = Config {
            members: (0..scenario.replicas).collect(),
            epoch: 0,
            chain,
            start: Sequence::ZERO,
            start_digest: Hash::ZERO,
            checkpoint_interval: scenario.checkpoint_interval,
            watermark_window: scenario.watermark_window,
            retransmit_interval_ms: 200,
            request_timeout_ms: 600,
            view_change_timeout_ms: 600,
            view_change_timeout_max_ms: 10_000,
            batch_requests_max: scenario.batch_requests_max,
            batch_bytes_max: 4096,
            batch_timeout_ms: scenario.batch_timeout_ms,
            batch_weight_max: crate::crypto::SIM_BATCH_WEIGHT_MAX,
            // Binds under bursts, not always: the simulator keeps the pipelining that
            // finds view-change bugs.
            weight_ahead_max: 8 * crate::crypto::SIM_BATCH_WEIGHT_MAX,
            timestamp_skew_max_ms: 10_000,
            delivery_backlog_max: scenario.delivery_backlog_max,
            mutation: None,
        };
        let secrets: Arc<Vec<[u8; 32]>> = Arc::new(
            (0..scenario.keys())
                .map(|id| {
                    sha3_256_parts(&[
                        b"sim-secret",
                        &scenario.seed.to_be_bytes(),
                        &id.to_be_bytes(),
                    ])
                    .0
                })
                .collect(),
        );
        let verifier = SimCrypto::new(&secrets, 0, scenario.real_signatures);
        let mut simulation = Self {
            epochs: vec![honest],
            reconfigured_at: None,
            isolations: Vec::new(),
            boundary_reached: false,
            rng: StdRng::seed_from_u64(scenario.seed),
            now: 0,
            counter: 0,
            events: BTreeMap::new(),
            nodes: Vec::new(),
            secrets,
            verifier,
            decided: BTreeMap::new(),
            trace: Vec::new(),
            report: Report::default(),
            proposed: BTreeSet::new(),
            requests: BTreeMap::new(),
            proposals_made: 0,
            delivered_anywhere: BTreeSet::new(),
            retransmitted: BTreeSet::new(),
            tracing: std::env::var_os("PACTUM_SIM_TRACE").is_some(),
            scenario,
        };
        let twin = simulation.scenario.twins.as_ref().map(|plan| plan.twin);
        let copies = (0..simulation.scenario.keys())
            .map(|id| (id, 0u8))
            .chain(twin.map(|id| (id, 1u8)))
            .collect::<Vec<_>>();
        for (id, copy) in copies {
            simulation.nodes.push(Node {
                id,
                epoch: 0,
                down: false,
                catch_up_pending: false,
                copy,
                replica: None,
                records: Vec::new(),
                floor: LogFloor::default(),
                ledger: Vec::new(),
                states: Vec::new(),
                executed: 0,
                execution_ready_ms: 0,
                requests: BTreeMap::new(),
                incarnation: 0,
                crash_mid_step: false,
                stopped: false,
                seen: VecDeque::new(),
                voted: BTreeSet::new(),
                signed: BTreeMap::new(),
                left_view: View::ZERO,
                decisions: BTreeMap::new(),
                max_view_entered: View::ZERO,
            });
        }
        simulation
    }

    pub(crate) fn crypto_of(&self, id: ReplicaId) -> SimCrypto {
        SimCrypto::new(&self.secrets, id, self.scenario.real_signatures)
    }

    /// The chain identity node `node` signs with: its epoch's.
    pub(crate) fn chain_of(&self, node: usize) -> Hash {
        self.epochs[self.nodes[node].epoch as usize].chain
    }

    pub(crate) fn batch_limits(&self) -> (usize, usize) {
        (self.epochs[0].batch_requests_max, self.epochs[0].batch_bytes_max)
    }

    /// The members of node `node`'s epoch.
    pub(crate) fn members_of(&self, node: usize) -> Vec<ReplicaId> {
        self.epochs[self.nodes[node].epoch as usize].members.clone()
    }

    /// The epoch a sequence number belongs to.
    fn epoch_of(&self, sequence: u64) -> u64 {
        match self.epochs.get(1) {
            Some(next) if sequence > next.start.0 => 1,
            _ => 0,
        }
    }

    /// The configuration the checkers verify a block at `sequence` against.
    fn honest_for(&self, sequence: u64) -> &Config {
        &self.epochs[self.epoch_of(sequence) as usize]
    }

    fn boot(&mut self, node: usize) -> Result<(), Violation> {
        let id = self.nodes[node].id;
        let epoch = self.nodes[node].epoch as usize;
        let executed = Sequence(self.nodes[node].executed);
        let mut config = Config { mutation: self.scenario.mutation, ..self.epochs[epoch].clone() };
        if !config.is_member(id) {
            // An observer: a joiner before its epoch (it follows the ledger), or a
            // replica that left.
            self.nodes[node].incarnation += 1;
            if self.scenario.reconfiguration.is_some()
                && epoch == 0
                && !self.nodes[node].catch_up_pending
            {
                self.nodes[node].catch_up_pending = true;
                self.push(1_000, Event::CatchUp { node });
            }
            return Ok(());
        }
        if config.start > Sequence::ZERO {
            config.start_digest = self.nodes[node].states[config.start.0 as usize - 1];
        }
        let crypto = self.crypto_of(id);
        let mut replica = Replica::new(id, config, crypto, &self.nodes[node].records, executed)
            .expect("the simulator's configuration is valid");
        replica.observe_time(self.now);
        let mut effects = replica.start();
        // As the node does: the last executed sequence again, with its state.
        if executed > Sequence::ZERO {
            let state_digest = self.nodes[node].states[executed.0 as usize - 1];
            effects.extend(replica.step(Input::Executed { sequence: executed, state_digest }));
        }
        let name = self.nodes[node].name();
        if self.tracing {
            eprintln!("{:>6} {name} STARTED (executed {})", self.now, executed.0);
        }
        if replica.view() < self.nodes[node].max_view_entered {
            return Err(Violation::ViewWentBack {
                replica: name,
                from: self.nodes[node].max_view_entered.0,
                to: replica.view().0,
            });
        }
        self.nodes[node].replica = Some(replica);
        self.nodes[node].incarnation += 1;
        self.apply(node, effects)?;
        self.settle_epoch(node)
    }

    /// Delivers `message` of `epoch` to node `to` after `after_ms`, bypassing the
    /// network's faults (a Byzantine replica's deliberate delay or replay).
    pub(crate) fn push_message(
        &mut self,
        after_ms: u64,
        to: usize,
        epoch: u64,
        message: SignedMessage,
    ) {
        self.push(after_ms, Event::Message { to, epoch, message });
    }

    pub(crate) fn epoch_of_node(&self, node: usize) -> u64 {
        self.nodes[node].epoch
    }

    pub(crate) fn node_id(&self, node: usize) -> ReplicaId {
        self.nodes[node].id
    }

    pub(crate) fn nodes_of(&self, id: ReplicaId) -> Vec<usize> {
        self.instances_of(id)
    }

    pub(crate) fn remember_seen(&mut self, node: usize, message: &SignedMessage) {
        let seen = &mut self.nodes[node].seen;
        if seen.len() >= 64 {
            seen.pop_front();
        }
        seen.push_back(message.clone());
    }

    pub(crate) fn seen(&self, node: usize) -> &VecDeque<SignedMessage> {
        &self.nodes[node].seen
    }

    /// Whether an equivocating replica votes for (view, sequence, digest) now (once).
    pub(crate) fn first_vote(&mut self, node: usize, key: (View, Sequence, Hash)) -> bool {
        self.nodes[node].voted.insert(key)
    }

    fn push(&mut self, after_ms: u64, event: Event) {
        self.counter += 1;
        self.events.insert((self.now + after_ms, self.counter), event);
    }

    pub(crate) fn faults_active(&self) -> bool {
        self.now < self.scenario.fault_phase_ms
    }

    fn alive(&self, node: usize) -> bool {
        self.nodes[node].replica.is_some() && !self.nodes[node].stopped
    }

    /// Runs the scenario to the end.
    pub fn run(mut self) -> Result<Report, Violation> {
        let scenario = self.scenario.clone();
        for node in 0..self.nodes.len() {
            self.boot(node)?;
        }
        for index in 0..scenario.proposals {
            let at = self.rng.random_range(0..scenario.fault_phase_ms);
            self.push(at, Event::Propose { index });
        }
        for &replica in &scenario.crashing {
            for _ in 0..scenario.crashes_each {
                let crash_at = self.rng.random_range(0..scenario.fault_phase_ms);
                let down_for = self.rng.random_range(50..=scenario.fault_phase_ms / 2 + 50);
                let restart_at = (crash_at + down_for).min(scenario.fault_phase_ms);
                let nodes: Vec<usize> = self.instances_of(replica);
                for node in nodes {
                    self.push(crash_at, Event::Crash { node });
                    self.push(restart_at, Event::Restart { node });
                }
            }
        }
        if let Some(at) = scenario.cluster_crash_ms {
            let restart_at = (at + self.rng.random_range(50..=500)).min(scenario.fault_phase_ms);
            for node in 0..self.nodes.len() {
                self.push(at, Event::Crash { node });
                self.push(restart_at, Event::Restart { node });
            }
        }
        if scenario.twins.is_some() {
            self.push(scenario.fault_phase_ms, Event::StopTwin);
        }
        if let Some(change) = &scenario.reconfiguration {
            // Joiners follow the ledger as observers from the start (`boot`).
            self.push(change.at_ms, Event::Reconfigure);
        }
        self.push(CLIENT_RETRY_MS, Event::ClientRetry);
        let deadline = scenario.fault_phase_ms + scenario.liveness_budget_ms;
        let mut handled = 0u64;
        while let Some(((time, _), event)) = self.events.pop_first() {
            if time > deadline {
                break;
            }
            handled += 1;
            if handled > EVENTS_PER_RUN_MAX {
                return Err(Violation::EventStorm { at_ms: time, events: handled });
            }
            self.now = time;
            self.handle(event)?;
            if self.now > scenario.fault_phase_ms && self.all_delivered() {
                break;
            }
        }
        for node in 0..self.nodes.len() {
            if !self.must_progress(node) {
                continue;
            }
            let delivered = self.delivered_proposals(node);
            if self.reconfigured_at.is_some() || scenario.reconfiguration.is_some() {
                let epoch = self.nodes[node].epoch;
                if epoch == 0 {
                    return Err(Violation::NoEpochChange {
                        replica: self.nodes[node].name(),
                        epoch,
                    });
                }
            }
            if delivered < scenario.proposals {
                if std::env::var_os("PACTUM_SIM_DEBUG").is_some() {
                    for other in &self.nodes {
                        if let Some(replica) = &other.replica {
                            eprintln!("{}: {replica:#?}", other.name());
                        }
                    }
                }
                return Err(Violation::NoProgress {
                    replica: self.nodes[node].name(),
                    delivered,
                    proposed: scenario.proposals,
                });
            }
        }
        self.report.trace_hash = sha3_256(&self.trace);
        self.report.virtual_ms = self.now;
        self.report.delivered = scenario.proposals;
        Ok(self.report)
    }

    fn instances_of(&self, id: ReplicaId) -> Vec<usize> {
        (0..self.nodes.len()).filter(|node| self.nodes[*node].id == id).collect()
    }

    fn must_progress(&self, node: usize) -> bool {
        self.nodes[node].copy == 0 && self.scenario.must_progress(self.nodes[node].id)
    }

    /// Whether every replica that must make progress entered the new epoch (if the
    /// scenario changes the validator set).
    fn epochs_settled(&self) -> bool {
        self.scenario.reconfiguration.is_none()
            || (0..self.nodes.len())
                .all(|node| !self.must_progress(node) || self.nodes[node].epoch > 0)
    }

    fn delivered_proposals(&self, node: usize) -> usize {
        self.nodes[node].requests.keys().filter(|digest| self.proposed.contains(*digest)).count()
    }

    fn all_delivered(&self) -> bool {
        self.proposals_made == self.scenario.proposals
            && self.epochs_settled()
            && (0..self.nodes.len()).all(|node| {
                !self.must_progress(node)
                    || self.delivered_proposals(node) >= self.scenario.proposals
            })
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Message { to, epoch, message } => {
                if self.nodes[to].down || self.nodes[to].stopped {
                    return Ok(());
                }
                if epoch > self.nodes[to].epoch && !self.nodes[to].catch_up_pending {
                    // A later epoch's message: this node is behind (or a joiner). If it
                    // does not get there by itself soon, it catches up from its peers.
                    self.nodes[to].catch_up_pending = true;
                    self.push(300, Event::CatchUp { node: to });
                }
                if epoch < self.nodes[to].epoch {
                    // An earlier epoch's message: the sender is behind. The node answers
                    // with its epoch, and the sender catches up if it does not get there
                    // by itself soon.
                    let delay = self.rng.random_range(1..=self.scenario.delay_max_ms);
                    for sender in self.instances_of(message.sender) {
                        if self.connected(to, sender) && !self.nodes[sender].catch_up_pending {
                            self.nodes[sender].catch_up_pending = true;
                            self.push(delay + 300, Event::CatchUp { node: sender });
                        }
                    }
                }
                if epoch != self.nodes[to].epoch || !self.alive(to) {
                    return Ok(());
                }
                self.trace.extend_from_slice(&self.now.to_be_bytes());
                self.trace.extend_from_slice(&(to as u64).to_be_bytes());
                self.trace.extend_from_slice(&message.signature.0[..8]);
                self.report.messages_delivered += 1;
                let id = self.nodes[to].id;
                if let Some(strategy) = self.scenario.strategy(id) {
                    self.byzantine_received(to, strategy, &message);
                }
                self.input(to, Input::Message(message))
            }
            Event::Timer { node, kind, incarnation } => {
                if self.nodes[node].incarnation != incarnation {
                    return Ok(());
                }
                self.input(node, Input::Timeout(kind))
            }
            Event::Propose { index } => {
                if !(0..self.nodes.len()).any(|node| self.must_progress(node) && self.alive(node)) {
                    // Every replica is down: the client tries again shortly.
                    self.push(50, Event::Propose { index });
                    return Ok(());
                }
                // The client sends its request to every replica (PBFT §4.1): the primary
                // batches and orders it, the backups watch that it gets executed.
                self.proposals_made += 1;
                let request = [
                    &self.scenario.seed.to_be_bytes()[..],
                    &(index as u64).to_be_bytes(),
                    b"request",
                ]
                .concat();
                self.proposed.insert(sha3_256(&request));
                self.requests.insert(sha3_256(&request), request.clone());
                for node in 0..self.nodes.len() {
                    self.request(node, request.clone())?;
                }
                Ok(())
            }
            Event::Crash { node } => {
                // Half the crashes strike in the middle of the replica's next step.
                if self.rng.random_bool(0.5) {
                    self.nodes[node].crash_mid_step = true;
                } else {
                    self.crash(node);
                }
                Ok(())
            }
            Event::Restart { node } => {
                if self.nodes[node].crash_mid_step {
                    self.crash(node);
                }
                if self.nodes[node].down && !self.nodes[node].stopped {
                    self.nodes[node].down = false;
                    self.boot(node)?;
                }
                Ok(())
            }
            Event::Executed { node, incarnation, sequence, state } => {
                if self.nodes[node].incarnation != incarnation {
                    return Ok(());
                }
                self.nodes[node].executed = self.nodes[node].executed.max(sequence.0);
                self.input(node, Input::Executed { sequence, state_digest: state })?;
                self.settle_epoch(node)
            }
            Event::Transfer { node, incarnation, checkpoint } => {
                if self.nodes[node].incarnation != incarnation || !self.alive(node) {
                    return Ok(());
                }
                self.state_transfer(node, &checkpoint)?;
                self.settle_epoch(node)
            }
            Event::CatchUp { node } => self.catch_up(node),
            Event::Reconfigure => {
                let request = reconfiguration_request(self.scenario.seed);
                self.requests.insert(sha3_256(&request), request.clone());
                for node in 0..self.nodes.len() {
                    self.request(node, request.clone())?;
                }
                Ok(())
            }
            Event::ClientRetry => {
                let lost: Vec<(Hash, Vec<u8>)> = self
                    .requests
                    .iter()
                    .filter(|(digest, _)| !self.delivered_anywhere.contains(*digest))
                    .map(|(digest, request)| (*digest, request.clone()))
                    .collect();
                for (digest, request) in lost {
                    self.retransmitted.insert(digest);
                    for node in 0..self.nodes.len() {
                        self.request(node, request.clone())?;
                    }
                }
                self.push(CLIENT_RETRY_MS, Event::ClientRetry);
                Ok(())
            }
            Event::Relayed { node, requests } => {
                for request in requests {
                    self.request(node, request)?;
                }
                Ok(())
            }
            Event::StopTwin => {
                for node in 0..self.nodes.len() {
                    if self.nodes[node].copy == 1 {
                        self.crash(node);
                        self.nodes[node].stopped = true;
                    }
                }
                Ok(())
            }
        }
    }

    /// Hands a client request to a node, as its mempool would: one whose effect the node's
    /// ledger already holds is refused (in the node, a stale nonce).
    fn request(&mut self, node: usize, request: Vec<u8>) -> Result<(), Violation> {
        if self.nodes[node].requests.contains_key(&sha3_256(&request)) {
            return Ok(());
        }
        self.input(node, Input::Request { request })
    }

    fn crash(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        state.crash_mid_step = false;
        state.down = true;
        if state.replica.take().is_some() {
            state.incarnation += 1;
            self.report.crashes += 1;
            if self.tracing {
                eprintln!("{:>6} {} CRASHED (executed {})", self.now, state.name(), state.executed);
            }
        }
        // What was delivered but not yet executed was only in memory.
        self.forget_unexecuted(node);
    }

    /// Drops what node `node` delivered but did not execute, and what it knew of those
    /// blocks' requests.
    fn forget_unexecuted(&mut self, node: usize) {
        let (requests_max, bytes_max) = self.batch_limits();
        let executed = self.nodes[node].executed as usize;
        self.nodes[node].ledger.truncate(executed);
        self.nodes[node].states.truncate(executed);
        let mut requests = BTreeMap::new();
        for block in &self.nodes[node].ledger {
            let sequence = block.certificate.sequence.0;
            let views = (
                self.epoch_of(sequence),
                cut_view(&block.batch, requests_max, bytes_max),
                block.certificate.view.0,
            );
            for request in request_digests(&block.batch, requests_max, bytes_max) {
                requests.entry(request).or_insert(views);
            }
        }
        self.nodes[node].requests = requests;
    }

    /// ADR 0021, as the node's executor does it: once node `node` executed the block that
    /// changed the validator set, its replica learns where the epoch ends; once it
    /// executed that last sequence number, the node enters the next epoch.
    fn settle_epoch(&mut self, node: usize) -> Result<(), Violation> {
        let Some(reconfigured_at) = self.reconfigured_at else { return Ok(()) };
        if self.nodes[node].epoch > 0 || self.nodes[node].executed < reconfigured_at {
            return Ok(());
        }
        let last = self.epochs[1].start;
        let told = match &self.nodes[node].replica {
            Some(replica) => replica.epoch_last().is_some(),
            None => return Ok(()),
        };
        if !told {
            self.input(node, Input::EpochEnds { last })?;
        }
        if self.nodes[node].replica.as_ref().is_some_and(Replica::epoch_finished) {
            self.enter_epoch(node)?;
        }
        Ok(())
    }

    /// The node leaves the genesis epoch's replica behind and starts the next epoch's (if
    /// it is a member): a fresh consensus log, view 0, and the requests it holds that its
    /// ledger does not (in the node, the mempool offers them again).
    fn enter_epoch(&mut self, node: usize) -> Result<(), Violation> {
        self.forget_unexecuted(node);
        let state = &mut self.nodes[node];
        state.epoch = 1;
        state.replica = None;
        state.records.clear();
        state.floor = LogFloor::default();
        state.signed.clear();
        state.left_view = View::ZERO;
        state.max_view_entered = View::ZERO;
        state.decisions.clear();
        state.voted.clear();
        state.seen.clear();
        state.execution_ready_ms = self.now;
        if self.tracing {
            eprintln!(
                "{:>6} {} ENTERS EPOCH 1 (executed {})",
                self.now,
                state.name(),
                state.executed
            );
        }
        self.report.epoch_changes += 1;
        if !self.boundary_reached {
            self.boundary_reached = true;
            let crash =
                self.scenario.reconfiguration.as_ref().and_then(|change| change.crash_at_boundary);
            if let Some(replica) = crash {
                let crash_at = self.rng.random_range(0..=100);
                let restart_at = crash_at + self.rng.random_range(200..=1_500);
                for target in self.instances_of(replica) {
                    self.push(crash_at, Event::Crash { node: target });
                    self.push(restart_at, Event::Restart { node: target });
                }
            }
        }
        self.boot(node)?;
        let held: Vec<Vec<u8>> = self
            .requests
            .iter()
            .filter(|(digest, _)| !self.nodes[node].requests.contains_key(*digest))
            .map(|(_, request)| request.clone())
            .collect();
        for request in held {
            self.request(node, request)?;
        }
        Ok(())
    }

    /// A node catches up from its peers' blocks, as the node's block sync does: each
    /// block's commit certificate is checked against the validator set in force at its
    /// height before it is applied. An observer (a joiner before its epoch) follows the
    /// ledger this way all along, polling every second; a replica that saw a later
    /// epoch's message (or was told it is behind) jumps past the boundary.
    fn catch_up(&mut self, node: usize) -> Result<(), Violation> {
        const OBSERVER_POLL_MS: u64 = 1_000;
        self.nodes[node].catch_up_pending = false;
        if self.nodes[node].down || self.nodes[node].stopped || self.nodes[node].epoch > 0 {
            return Ok(());
        }
        let observer = self.nodes[node].replica.is_none();
        if observer {
            self.nodes[node].catch_up_pending = true;
            self.push(OBSERVER_POLL_MS, Event::CatchUp { node });
        }
        let last = self.epochs.get(1).map(|next| next.start.0);
        // A replica of the old epoch jumps only past its end; an observer takes any block.
        let wanted = match (observer, last) {
            (true, _) => self.nodes[node].executed + 1,
            (false, Some(last)) => last,
            (false, None) => return Ok(()),
        };
        let have = self.nodes[node].executed;
        let sources = self.shuffled(
            (0..self.nodes.len())
                .filter(|other| {
                    *other != node
                        && !self.nodes[*other].down
                        && !self.nodes[*other].stopped
                        && self.nodes[*other].executed >= wanted
                })
                .collect(),
        );
        for source in sources {
            let until = self.nodes[source].executed as usize;
            let Some(blocks) = self.fetch_blocks(source, have, until as u64) else { continue };
            // The old epoch's replica and what it delivered unexecuted are left behind.
            self.nodes[node].replica = None;
            self.nodes[node].incarnation += 1;
            self.forget_unexecuted(node);
            for block in blocks {
                self.append_block(node, block)?;
            }
            self.nodes[node].executed = until as u64;
            if self.epochs.get(1).is_none_or(|next| (until as u64) < next.start.0) {
                // An observer still in the genesis epoch: it follows on.
                return Ok(());
            }
            self.report.epoch_catch_ups += 1;
            return self.enter_epoch(node);
        }
        if !observer {
            // Nobody to catch up from yet: try again later.
            self.nodes[node].catch_up_pending = true;
            self.push(500, Event::CatchUp { node });
        }
        Ok(())
    }

    fn input(&mut self, node: usize, input: Input) -> Result<(), Violation> {
        let name = self.nodes[node].name();
        if self.nodes[node].stopped {
            return Ok(());
        }
        let Some(replica) = self.nodes[node].replica.as_mut() else { return Ok(()) };
        if self.tracing {
            eprintln!("{:>6} {name} <- {}", self.now, describe_input(&input));
        }
        // Every replica reads the one virtual clock (the node reads its wall clock).
        replica.observe_time(self.now);
        let step = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let effects = replica.step(input);
            replica.check_invariants();
            effects
        }));
        let effects = match step {
            Ok(effects) => {
                self.check_decisions(node)?;
                effects
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_string()))
                    .unwrap_or_else(|| "a panic".into());
                return Err(Violation::Invariant { replica: name, message });
            }
        };
        if self.tracing {
            for effect in &effects {
                eprintln!("{:>6} {name} -> {}", self.now, describe_effect(effect));
            }
        }
        self.apply(node, effects)
    }

    /// Carries out a step's effects as the node does: every record in one atomic write,
    /// then the rest in order. A crash in the middle of the step keeps a prefix: the write
    /// is all or nothing (a torn or unsynced write is lost whole), and sends come only
    /// after it. With the planted bug `SendBeforePersist`, sends come first.
    fn apply(&mut self, node: usize, effects: Vec<Effect>) -> Result<(), Violation> {
        let (records, others) = Effect::split_records(effects);
        let mut plan: Vec<Option<Effect>> = Vec::with_capacity(others.len() + 1);
        if self.scenario.mutation == Some(Mutation::SendBeforePersist) {
            plan.extend(others.into_iter().map(Some));
            plan.push(None);
        } else {
            plan.push(None);
            plan.extend(others.into_iter().map(Some));
        }
        let crash = self.nodes[node].crash_mid_step;
        if crash {
            let kept = self.rng.random_range(0..=plan.len());
            plan.truncate(kept);
        }
        let mut records = Some(records);
        for step in plan {
            match step {
                None => {
                    if let Some(records) = records.take() {
                        // What a replica persists as sent, it has signed, sent or not.
                        for record in &records {
                            if let Record::Sent(message) = record {
                                self.check_signed(node, message)?;
                            }
                        }
                        self.persist(node, records);
                    }
                }
                Some(effect) => self.carry(node, effect)?,
            }
        }
        if crash {
            self.crash(node);
        }
        Ok(())
    }

    fn persist(&mut self, node: usize, records: Vec<Record>) {
        let state = &mut self.nodes[node];
        let mut compact = false;
        for record in records {
            compact |= state.floor.observe(&record);
            state.records.push(record);
        }
        if compact {
            let floor = state.floor;
            state.records.retain(|record| !record.obsolete(&floor));
        }
    }

    fn carry(&mut self, node: usize, effect: Effect) -> Result<(), Violation> {
        let id = self.nodes[node].id;
        match effect {
            Effect::Persist(_) => {}
            Effect::Broadcast(message) => {
                self.check_size(node, &message)?;
                self.check_signed(node, &message)?;
                for to in self.members_of(node) {
                    if to != id {
                        self.send(node, to, message.clone());
                    }
                }
            }
            Effect::Send { to, message } => {
                self.check_size(node, &message)?;
                self.check_signed(node, &message)?;
                if matches!(message.message, Message::FetchBatch { .. }) {
                    self.report.batches_fetched += 1;
                }
                self.send(node, to, message);
            }
            Effect::Deliver(delivery) => self.deliver(node, delivery)?,
            Effect::ScheduleTimeout { kind, after_ms } => {
                let incarnation = self.nodes[node].incarnation;
                // Skewed, but never zero: a timer always lets virtual time move on.
                let skew =
                    self.scenario.timer_skew_percent.get(usize::from(id)).copied().unwrap_or(100);
                let after_ms = (after_ms * skew / 100).max(1);
                self.push(after_ms, Event::Timer { node, kind, incarnation });
            }
            Effect::RequestStateTransfer { checkpoint } => {
                let incarnation = self.nodes[node].incarnation;
                let after = self.rng.random_range(1..=50);
                self.push(after, Event::Transfer { node, incarnation, checkpoint });
            }
            Effect::Evidence(_) => {
                if self.scenario.runs_honest_code(id) {
                    self.report.evidence += 1;
                }
            }
            Effect::RequestRefused { .. } => {}
            Effect::Relay { to, requests } => {
                if self.scenario.silent.contains(&id) {
                    return Ok(());
                }
                // A relayed request is a retransmission: the primary may see it again after
                // it lost what it executed (a restart), and execution skips it then.
                self.retransmitted.extend(requests.iter().map(|request| sha3_256(request)));
                for target in self.instances_of(to) {
                    if self.connected(node, target)
                        && !(self.faults_active()
                            && self.rng.random_range(0..1000) < self.scenario.drop_per_mille)
                    {
                        let delay = self.rng.random_range(1..=self.scenario.delay_max_ms);
                        self.push(
                            delay,
                            Event::Relayed { node: target, requests: requests.clone() },
                        );
                    }
                }
            }
            Effect::ViewEntered { view, .. } => {
                let state = &mut self.nodes[node];
                if view <= state.max_view_entered && view != View::ZERO {
                    return Err(Violation::ViewWentBack {
                        replica: state.name(),
                        from: state.max_view_entered.0,
                        to: view.0,
                    });
                }
                state.max_view_entered = view;
                if self.scenario.runs_honest_code(id) {
                    self.report.highest_view = self.report.highest_view.max(view.0);
                }
            }
        }
        Ok(())
    }

    /// PBFT's promises of a correct replica, checked on what it signs (persists as sent, or
    /// sends): one PRE-PREPARE,
    /// one PREPARE and one COMMIT per (view, sequence), and no vote in a view below one
    /// it sent a VIEW-CHANGE for. Every copy of a twin is checked on its own.
    fn check_signed(&mut self, node: usize, message: &SignedMessage) -> Result<(), Violation> {
        let state = &mut self.nodes[node];
        if !self.scenario.runs_honest_code(state.id) || message.sender != state.id {
            return Ok(());
        }
        let (view, sequence, digest) = match &message.message {
            Message::PrePrepare { view, sequence, digest, .. }
            | Message::Prepare { view, sequence, digest }
            | Message::Commit { view, sequence, digest } => (*view, *sequence, *digest),
            Message::ViewChange { new_view, .. } => {
                state.left_view = state.left_view.max(*new_view);
                return Ok(());
            }
            // A NEW-VIEW's re-proposals are the new primary's PRE-PREPAREs of that view.
            Message::NewView { view, view_changes, pre_prepares } => {
                if let Some(sequence) = wrong_reproposal(view_changes, pre_prepares) {
                    return Err(Violation::WrongNewView { replica: state.name(), sequence });
                }
                for reproposal in pre_prepares {
                    state
                        .signed
                        .entry(("pre-prepare", *view, reproposal.sequence))
                        .or_insert(reproposal.digest);
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        let kind = message.message.kind();
        match state.signed.get(&(kind, view, sequence)) {
            // The same message again (a retransmission): it promises nothing new.
            Some(earlier) if *earlier == digest => Ok(()),
            Some(_) => {
                let what =
                    format!("signed two different {kind}s for view {view}, sequence {sequence}");
                Err(Violation::HonestEquivocation { replica: state.name(), what })
            }
            None if view < state.left_view => {
                let what = format!(
                    "signed a new {kind} of view {view} after a VIEW-CHANGE for view {}",
                    state.left_view
                );
                Err(Violation::HonestEquivocation { replica: state.name(), what })
            }
            None => {
                state.signed.insert((kind, view, sequence), digest);
                match &message.message {
                    Message::PrePrepare { batch, .. } => self.check_fresh_batch(node, batch),
                    _ => Ok(()),
                }
            }
        }
    }

    /// An honest primary never proposes, in a batch it cuts, a request its own ledger
    /// already holds (unless a client sent it again, and execution then skips it).
    fn check_fresh_batch(&self, node: usize, batch: &[u8]) -> Result<(), Violation> {
        let state = &self.nodes[node];
        if !self.honest_primary(state.id) {
            return Ok(());
        }
        let (requests_max, bytes_max) = self.batch_limits();
        let duplicate =
            request_digests(batch, requests_max, bytes_max).into_iter().find(|request| {
                state.requests.contains_key(request) && !self.retransmitted.contains(request)
            });
        match duplicate {
            Some(request) => Err(Violation::Reproposed {
                replica: state.name(),
                request: hex_prefix(&request.0),
            }),
            None => Ok(()),
        }
    }

    /// Decisions are immutable: every decision a replica made before is still the same
    /// (or pruned below its stable checkpoint).
    fn check_decisions(&mut self, node: usize) -> Result<(), Violation> {
        let state = &mut self.nodes[node];
        let Some(replica) = &state.replica else { return Ok(()) };
        for certificate in replica.decisions() {
            match state.decisions.insert(certificate.sequence, certificate.digest) {
                Some(earlier) if earlier != certificate.digest => {
                    let sequence = certificate.sequence.0;
                    return Err(Violation::DecisionChanged { replica: state.name(), sequence });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check_size(&self, node: usize, message: &SignedMessage) -> Result<(), Violation> {
        if !self.scenario.runs_honest_code(self.nodes[node].id) {
            return Ok(());
        }
        let bytes = message_bytes(message);
        if bytes > limits::CONSENSUS_MESSAGE_BYTES_MAX {
            return Err(Violation::MessageTooLarge {
                replica: self.nodes[node].name(),
                kind: message.message.kind(),
                bytes,
            });
        }
        Ok(())
    }

    /// Whether `from` and `to` (nodes) can talk now: no partition between them, and, for
    /// a twin, only with the peers of its copy in the current phase.
    fn connected(&self, from: usize, to: usize) -> bool {
        let (a, b) = (&self.nodes[from], &self.nodes[to]);
        if a.stopped || b.stopped {
            return false;
        }
        if self.scenario.partitions.iter().chain(&self.isolations).any(|partition| {
            (partition.from_ms..partition.until_ms).contains(&self.now)
                && partition.side.contains(&a.id) != partition.side.contains(&b.id)
        }) {
            return false;
        }
        if let Some(plan) = &self.scenario.twins
            && self.faults_active()
        {
            let phase = ((self.now / plan.phase_ms.max(1)) as usize).min(plan.phases.len() - 1);
            let phase = plan.phases[phase];
            let side = |node: &Node| {
                if node.id == plan.twin {
                    node.copy
                } else {
                    u8::from(phase.side_b & (1 << node.id) != 0)
                }
            };
            let twin_link = a.id == plan.twin || b.id == plan.twin;
            if (twin_link || !phase.others_connected) && side(a) != side(b) {
                return false;
            }
        }
        true
    }

    /// Sends `message` from node `from` to replica `to` (to whichever of its copies `from`
    /// can reach), through the sender's Byzantine strategy if it has one.
    pub(crate) fn send(&mut self, from: usize, to: ReplicaId, message: SignedMessage) {
        let id = self.nodes[from].id;
        if self.scenario.silent.contains(&id) {
            return;
        }
        let outgoing = match self.scenario.strategy(id) {
            Some(strategy) => self.byzantine_outgoing(from, to, strategy, message),
            None => vec![(message, 0)],
        };
        let epoch = self.nodes[from].epoch;
        for (message, extra_ms) in outgoing {
            for target in self.instances_of(to) {
                if self.connected(from, target) {
                    self.transmit(target, epoch, message.clone(), extra_ms);
                }
            }
        }
    }

    fn transmit(&mut self, to: usize, epoch: u64, message: SignedMessage, extra_ms: u64) {
        let faults = self.faults_active();
        if faults && self.rng.random_range(0..1000) < self.scenario.drop_per_mille {
            return;
        }
        let mut delay = self.rng.random_range(1..=self.scenario.delay_max_ms) + extra_ms;
        if faults && self.rng.random_range(0..1000) < self.scenario.stale_per_mille {
            // A stale frame: delivered long after it was sent, past every timeout.
            delay += self.rng.random_range(1_000..=10_000);
        }
        if faults && self.rng.random_range(0..1000) < self.scenario.duplicate_per_mille {
            let again = self.rng.random_range(1..=self.scenario.delay_max_ms * 3);
            self.push(again, Event::Message { to, epoch, message: message.clone() });
        }
        self.push(delay, Event::Message { to, epoch, message });
    }

    /// Checks a block a replica delivered or received by state transfer against everything
    /// the checkers know, then appends it to the replica's ledger.
    fn append_block(&mut self, node: usize, block: Block) -> Result<(), Violation> {
        let name = self.nodes[node].name();
        let honest = self.scenario.runs_honest_code(self.nodes[node].id);
        let sequence = block.certificate.sequence.0;
        let expected = self.nodes[node].ledger.len() as u64 + 1;
        let (requests_max, bytes_max) = self.batch_limits();
        let requests = request_digests(&block.batch, requests_max, bytes_max);
        let digest = block.certificate.digest;
        let epoch = self.epoch_of(sequence);
        if honest {
            if sequence != expected {
                return Err(Violation::OutOfOrder { replica: name, expected, got: sequence });
            }
            if let Err(error) = block.certificate.verify(self.honest_for(sequence), &self.verifier)
            {
                let error = error.to_string();
                return Err(Violation::BadCertificate { replica: name, sequence, error });
            }
            if self.verifier.digest(&block.batch) != digest {
                let error = "the batch does not hash to the certificate's digest".to_string();
                return Err(Violation::BadCertificate { replica: name, sequence, error });
            }
            match self.decided.get(&sequence) {
                Some((first_digest, first)) if *first_digest != digest => {
                    return Err(Violation::Divergence {
                        sequence,
                        first: first.clone(),
                        second: name,
                    });
                }
                Some(_) => {}
                None => {
                    self.decided.insert(sequence, (digest, name.clone()));
                }
            }
            // A request may be ordered twice, and execution skips the second copy (in the
            // node, the nonce rule): by a faulty primary (a Byzantine replica, or a doubled
            // one), or by honest primaries of two views when the later one never saw the
            // earlier batch (view 3 ordered it while only one replica had prepared view
            // 2's batch, which view 4 then re-proposed: PBFT orders it again, and the
            // paper's replicas drop it by client timestamp). What an honest primary must
            // never do: put a request into two batches of its view, or cut a batch
            // holding a request of a batch decided in an earlier view (every NEW-VIEW
            // since re-proposes that batch, and a primary cuts nothing before it holds
            // every re-proposed batch); nor propose one its own ledger holds
            // (`check_fresh_batch`).
            // Across epochs, an honest primary of the later epoch held the earlier epoch's
            // ledger when it cut its batch: it knew.
            let (cut, decided_in) =
                (cut_view(&block.batch, requests_max, bytes_max), block.certificate.view.0);
            let duplicate = requests.iter().find(|request| {
                let Some(&(first_epoch, first_cut, first_decided_in)) =
                    self.nodes[node].requests.get(*request)
                else {
                    return false;
                };
                if self.retransmitted.contains(*request) {
                    return false;
                }
                if first_epoch != epoch {
                    return self.honest_primary(self.primary_of(epoch, cut));
                }
                let knew = |later_cut: u64, earlier_decided_in: u64| {
                    later_cut > earlier_decided_in
                        && self.honest_primary(self.primary_of(epoch, later_cut))
                };
                (first_cut == cut && self.honest_primary(self.primary_of(epoch, cut)))
                    || knew(cut, first_decided_in)
                    || knew(first_cut, decided_in)
            });
            if let Some(request) = duplicate {
                let request = hex_prefix(&request.0);
                return Err(Violation::DuplicateExecution { replica: name, sequence, request });
            }
        }
        if honest && self.reconfigured_at.is_none() {
            let change = sha3_256(&reconfiguration_request(self.scenario.seed));
            if requests.contains(&change) {
                self.schedule_epoch(sequence);
            }
        }
        self.delivered_anywhere.extend(requests.iter().copied());
        let state = &mut self.nodes[node];
        let next = sha3_256_parts(&[&state.state().0, &digest.0]);
        state.states.push(next);
        let views =
            (epoch, cut_view(&block.batch, requests_max, bytes_max), block.certificate.view.0);
        for request in requests {
            state.requests.entry(request).or_insert(views);
        }
        state.ledger.push(block);
        self.trace.extend_from_slice(b"deliver");
        self.trace.extend_from_slice(&digest.0[..8]);
        Ok(())
    }

    /// Executes a delivered batch: checks it, extends the state, and reports it executed
    /// after the scenario's execution lag (in order).
    fn deliver(&mut self, node: usize, delivery: Delivery) -> Result<(), Violation> {
        let Delivery { sequence, batch, certificate } = delivery;
        if certificate.sequence != sequence {
            let error = "the certificate is for another sequence number".to_string();
            return Err(Violation::BadCertificate {
                replica: self.nodes[node].name(),
                sequence: sequence.0,
                error,
            });
        }
        self.append_block(node, Block { batch, certificate })?;
        let lag = if self.scenario.execution_lag_ms == 0 {
            0
        } else {
            self.rng.random_range(0..=self.scenario.execution_lag_ms)
        };
        let state = &mut self.nodes[node];
        let at = state.execution_ready_ms.max(self.now) + lag;
        state.execution_ready_ms = at;
        let (incarnation, digest) = (state.incarnation, state.state());
        self.push(at - self.now, Event::Executed { node, incarnation, sequence, state: digest });
        Ok(())
    }

    /// State transfer through the real certificate check: fetch the missing blocks from
    /// some replica (a Byzantine one may serve a corrupted block), verify each block's
    /// commit certificate and digest before applying it, and check the resulting state
    /// against the checkpoint the replica asked for.
    fn state_transfer(
        &mut self,
        node: usize,
        checkpoint: &CheckpointCertificate,
    ) -> Result<(), Violation> {
        let target = checkpoint.sequence.0;
        let have = self.nodes[node].ledger.len() as u64;
        let name = self.nodes[node].name();
        if have >= target {
            let state = self.nodes[node].states[target as usize - 1];
            if state != checkpoint.state_digest
                && self.scenario.runs_honest_code(self.nodes[node].id)
            {
                return Err(Violation::StateDivergence { replica: name, sequence: target });
            }
            self.nodes[node].executed = self.nodes[node].executed.max(target);
            let input = Input::StateTransferred {
                sequence: checkpoint.sequence,
                state_digest: state,
                requests: Vec::new(),
            };
            return self.input(node, input);
        }
        let sources = self.shuffled(
            (0..self.nodes.len()).filter(|other| *other != node && self.alive(*other)).collect(),
        );
        for source in sources {
            if (self.nodes[source].ledger.len() as u64) < target {
                continue;
            }
            let Some(blocks) = self.fetch_blocks(source, have, target) else { continue };
            let mut covered = Vec::new();
            let (requests_max, bytes_max) = self.batch_limits();
            for block in blocks {
                covered.extend(request_digests(&block.batch, requests_max, bytes_max));
                self.append_block(node, block)?;
            }
            let state = self.nodes[node].state();
            if state != checkpoint.state_digest {
                return Err(Violation::StateDivergence { replica: name, sequence: target });
            }
            self.nodes[node].executed = target;
            self.report.state_transfers += 1;
            let input = Input::StateTransferred {
                sequence: checkpoint.sequence,
                state_digest: state,
                requests: covered,
            };
            return self.input(node, input);
        }
        self.report.failed_transfers += 1;
        self.input(node, Input::StateTransferFailed { sequence: checkpoint.sequence })
    }
}

impl Simulation {
    /// `nodes` in an order drawn from the run's RNG.
    fn shuffled(&mut self, mut nodes: Vec<usize>) -> Vec<usize> {
        for index in (1..nodes.len()).rev() {
            let swap = self.rng.random_range(0..=index);
            nodes.swap(index, swap);
        }
        nodes
    }

    /// Blocks `have + 1..=until` as `source` serves them (a corrupting replica may damage
    /// one), if every one's commit certificate verifies against the set in force at its
    /// height and its batch against the certificate's digest; a bad answer is evidence.
    fn fetch_blocks(&mut self, source: usize, have: u64, until: u64) -> Option<Vec<Block>> {
        let mut blocks: Vec<Block> =
            self.nodes[source].ledger[have as usize..until as usize].to_vec();
        if self.scenario.strategy(self.nodes[source].id) == Some(Strategy::Corrupt)
            && !blocks.is_empty()
            && self.rng.random_bool(0.5)
        {
            let index = self.rng.random_range(0..blocks.len());
            blocks[index].batch.push(0xff);
        }
        let valid = blocks.iter().enumerate().all(|(offset, block)| {
            let sequence = have + offset as u64 + 1;
            block.certificate.sequence.0 == sequence
                && block.certificate.verify(self.honest_for(sequence), &self.verifier).is_ok()
                && self.verifier.digest(&block.batch) == block.certificate.digest
        });
        if !valid {
            self.report.evidence += 1;
            return None;
        }
        Some(blocks)
    }
}

/// The simulator's own reading of PBFT §4.4, independent of the replica's: the new view
/// re-proposes, for every sequence number above the highest checkpoint among the chosen
/// VIEW-CHANGEs up to the highest prepared one, the digest of the certificate of the
/// highest view (the null batch where none). The first sequence number where `carried`
/// says otherwise, if any.
fn wrong_reproposal(
    view_changes: &[SignedMessage],
    carried: &[pactum_consensus::Reproposal],
) -> Option<u64> {
    let mut low = Sequence::ZERO;
    let mut highest: BTreeMap<Sequence, (View, Hash)> = BTreeMap::new();
    for view_change in view_changes {
        let Message::ViewChange { checkpoint, prepared, .. } = &view_change.message else {
            continue;
        };
        low = low.max(checkpoint.sequence);
        for certificate in prepared {
            let entry = highest
                .entry(certificate.sequence)
                .or_insert((certificate.view, certificate.digest));
            if certificate.view > entry.0 {
                *entry = (certificate.view, certificate.digest);
            }
        }
    }
    let high = highest.keys().next_back().copied().unwrap_or(low).max(low);
    let null = sha3_256(&[]);
    let expected: Vec<(Sequence, Hash)> = (low.0 + 1..=high.0)
        .map(Sequence)
        .map(|sequence| (sequence, highest.get(&sequence).map_or(null, |(_, digest)| *digest)))
        .collect();
    let carried: Vec<(Sequence, Hash)> =
        carried.iter().map(|reproposal| (reproposal.sequence, reproposal.digest)).collect();
    if carried == expected {
        return None;
    }
    let differs = expected
        .iter()
        .zip(&carried)
        .find(|(expected, carried)| expected != carried)
        .map_or_else(|| expected.len().min(carried.len()), |(expected, _)| expected.0.0 as usize);
    Some(differs as u64)
}

impl Simulation {
    /// The primary of `view` in `epoch`.
    fn primary_of(&self, epoch: u64, view: u64) -> ReplicaId {
        self.epochs[epoch as usize].primary(View(view))
    }

    /// The validator-set change was ordered at `sequence`: the genesis epoch ends at the
    /// first checkpoint of both epochs a whole window later (ADR 0021, ADR 0022; the planted bug
    /// `EpochBoundaryInsideWindow` ends it at the next checkpoint instead), and the new
    /// set orders everything after. Every replica learns this when it executes
    /// `sequence`; the moment one of them does, the scenario's isolation starts.
    fn schedule_epoch(&mut self, sequence: u64) {
        let Some(change) = self.scenario.reconfiguration.clone() else { return };
        let genesis = self.epochs[0].clone();
        let (next_interval, next_window) =
            change.window.unwrap_or((genesis.checkpoint_interval, genesis.watermark_window));
        // A checkpoint of both epochs (ADR 0022): one interval divides the other.
        let interval = genesis.checkpoint_interval.max(next_interval);
        let window = genesis.watermark_window;
        let last = if self.scenario.mutation == Some(Mutation::EpochBoundaryInsideWindow) {
            Sequence((sequence + 1).div_ceil(interval) * interval)
        } else {
            epoch_last_sequence(Sequence(sequence), interval, window)
        };
        self.reconfigured_at = Some(sequence);
        self.epochs.push(Config {
            members: change.members_after(self.scenario.replicas),
            epoch: 1,
            chain: epoch_identity(&genesis.chain, 1),
            start: last,
            start_digest: Hash::ZERO,
            checkpoint_interval: next_interval,
            watermark_window: next_window,
            ..genesis
        });
        if let Some((side, for_ms)) = change.isolate_at_decision {
            self.isolations.push(Partition {
                from_ms: self.now,
                until_ms: self.now + for_ms,
                side,
            });
        }
    }

    fn honest_primary(&self, id: ReplicaId) -> bool {
        self.scenario.runs_honest_code(id)
            && self.scenario.twins.as_ref().is_none_or(|plan| plan.twin != id)
    }
}

/// The view whose primary cut a batch (the null batch: 0, and it holds no request).
fn cut_view(batch: &[u8], requests_max: usize, bytes_max: usize) -> u64 {
    pactum_consensus::decode_batch(batch, requests_max, bytes_max)
        .ok()
        .and_then(|decoded| decoded.header)
        .map_or(0, |header| header.view)
}

fn request_digests(batch: &[u8], requests_max: usize, bytes_max: usize) -> Vec<Hash> {
    batch_requests(batch, requests_max, bytes_max)
        .map(|requests| requests.iter().map(|request| sha3_256(request)).collect())
        .unwrap_or_default()
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..3].iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn describe_message(message: &SignedMessage) -> String {
    let short = |hash: &Hash| hex_prefix(&hash.0);
    let body = match &message.message {
        Message::PrePrepare { view, sequence, digest, .. } => {
            format!("pre-prepare v{view} s{sequence} {}", short(digest))
        }
        Message::Prepare { view, sequence, digest } => {
            format!("prepare v{view} s{sequence} {}", short(digest))
        }
        Message::Commit { view, sequence, digest } => {
            format!("commit v{view} s{sequence} {}", short(digest))
        }
        Message::Checkpoint { sequence, state_digest } => {
            format!("checkpoint s{sequence} {}", short(state_digest))
        }
        Message::ViewChange { new_view, checkpoint, prepared } => {
            format!("view-change v{new_view} h{} prepared {}", checkpoint.sequence, prepared.len())
        }
        Message::NewView { view, pre_prepares, .. } => {
            format!("new-view v{view} re-proposals {}", pre_prepares.len())
        }
        Message::Suspect { view } => format!("suspect v{view}"),
        Message::FetchBatch { digest } => format!("fetch-batch {}", short(digest)),
        Message::Batch { digest, .. } => format!("batch {}", short(digest)),
        Message::FetchNewView { view } => format!("fetch-new-view (in v{view})"),
        Message::Decided { certificate } => {
            format!("decided s{} v{}", certificate.sequence, certificate.view)
        }
    };
    format!("{body} from r{}", message.sender)
}

fn describe_input(input: &Input) -> String {
    match input {
        Input::Message(message) => describe_message(message),
        Input::Request { request } => format!("request {}", hex_prefix(&sha3_256(request).0)),
        Input::Withdraw { requests } => format!("withdraw {}", requests.len()),
        Input::Timeout(kind) => format!("timeout {kind:?}"),
        Input::Executed { sequence, .. } => format!("executed s{sequence}"),
        Input::StateTransferred { sequence, .. } => format!("state transferred s{sequence}"),
        Input::StateTransferFailed { sequence } => format!("state transfer failed s{sequence}"),
        Input::EpochEnds { last } => format!("epoch ends at s{last}"),
    }
}

fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::Persist(_) => "persist".to_string(),
        Effect::Broadcast(message) => format!("broadcast {}", describe_message(message)),
        Effect::Send { to, message } => format!("send r{to} {}", describe_message(message)),
        Effect::Deliver(delivery) => format!(
            "DELIVER s{} {} (certificate of view {})",
            delivery.sequence,
            hex_prefix(&delivery.certificate.digest.0),
            delivery.certificate.view
        ),
        Effect::ScheduleTimeout { kind, after_ms } => format!("timer {kind:?} in {after_ms}"),
        Effect::RequestStateTransfer { checkpoint } => {
            format!("STATE TRANSFER s{}", checkpoint.sequence)
        }
        Effect::Evidence(evidence) => format!("evidence {evidence:?}"),
        Effect::RequestRefused { .. } => "request refused".to_string(),
        Effect::Relay { to, requests } => format!("relay {} requests to r{to}", requests.len()),
        Effect::ViewEntered { view, primary } => format!("VIEW {view} primary r{primary}"),
    }
}

/// Runs a scenario; on failure the error names the violation, the scenario and the
/// command that replays it.
pub fn run_scenario(scenario: Scenario) -> Result<Report, Failure> {
    let description = format!("{scenario:?}");
    let replay = scenario.replay_command();
    Simulation::new(scenario).run().map_err(|violation| Failure { violation, description, replay })
}

/// A failed run: what went wrong and how to see it again.
#[derive(Debug, Clone)]
pub struct Failure {
    pub violation: Violation,
    pub description: String,
    pub replay: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}\n  scenario: {}\n  replay: {}",
            self.violation, self.description, self.replay
        )
    }
}
