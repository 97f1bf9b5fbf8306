//! The deterministic cluster simulator: every replica of a PBFT cluster in one thread, on
//! virtual time, with a simulated network and storage, all driven by one seeded RNG.
//!
//! Each seed draws its own fault rates (swarm testing): message drop, duplication, delay
//! and reordering; a partition that heals; skewed timers; replicas that crash (sometimes in
//! the middle of carrying out a step's effects) and restart from what they persisted;
//! Byzantine replicas that equivocate as primary, send bad signatures, conflicting votes,
//! out-of-window spam, replays of old messages and view-change floods; silent replicas
//! (a silent primary among them). About a third of the seeds make the first primary
//! faulty, so view changes are exercised. After a fault phase the faults heal and a
//! liveness phase follows.
//!
//! Checkers: no two honest replicas ever deliver different batches at one sequence number,
//! state digests agree at every checkpoint, and once faults heal every proposed batch is
//! delivered by every honest replica within a bounded virtual time. The same seed always
//! produces the same trace hash.

use std::collections::BTreeMap;
use std::fmt;

use pactum_consensus::{
    Config, Crypto, Delivery, Ed25519Crypto, Effect, Input, Message, Record, Replica, ReplicaId,
    Sequence, SignedMessage, TimeoutKind,
};
use pactum_types::crypto::Keypair;
use pactum_types::hash::{sha3_256, sha3_256_parts};
use pactum_types::{Hash, Signature};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Cheap deterministic signatures for most seeds: SHA3 keyed by a per-replica secret.
/// Forgery is impossible for the simulated Byzantine replicas because they never see the
/// other replicas' secrets.
#[derive(Debug, Clone)]
pub struct FastCrypto {
    id: ReplicaId,
    secrets: Vec<[u8; 32]>,
}

fn fast_signature(secret: &[u8; 32], bytes: &[u8]) -> Signature {
    let first = sha3_256_parts(&[secret, bytes]);
    let second = sha3_256(&first.0);
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&first.0);
    signature[32..].copy_from_slice(&second.0);
    Signature(signature)
}

impl Crypto for FastCrypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        fast_signature(&self.secrets[usize::from(self.id)], bytes)
    }

    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        self.secrets
            .get(usize::from(signer))
            .is_some_and(|secret| fast_signature(secret, bytes) == *signature)
    }

    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}

/// Either crypto, so one simulator drives both.
#[derive(Debug)]
pub enum SimCrypto {
    Fast(FastCrypto),
    Ed25519(Box<Ed25519Crypto>),
}

impl Crypto for SimCrypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        match self {
            SimCrypto::Fast(crypto) => crypto.sign(bytes),
            SimCrypto::Ed25519(crypto) => crypto.sign(bytes),
        }
    }

    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &Signature) -> bool {
        match self {
            SimCrypto::Fast(crypto) => crypto.verify(signer, bytes, signature),
            SimCrypto::Ed25519(crypto) => crypto.verify(signer, bytes, signature),
        }
    }

    fn digest(&self, batch: &[u8]) -> Hash {
        sha3_256(batch)
    }
}

/// Events one seed may handle; healthy seeds use a few hundred thousand at most.
pub const EVENTS_PER_SEED_MAX: u64 = 20_000_000;

/// The fault profile of one seed, drawn from the seed itself.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub replicas: u16,
    pub checkpoint_interval: u64,
    pub watermark_window: u64,
    pub proposals: usize,
    pub drop_per_mille: u32,
    pub duplicate_per_mille: u32,
    pub delay_max_ms: u64,
    pub crashing: Vec<ReplicaId>,
    /// Replicas that corrupt what they send (see `Simulation::corrupt`).
    pub byzantine: Vec<ReplicaId>,
    /// Replicas that receive but never send.
    pub silent: Vec<ReplicaId>,
    /// `(from_ms, until_ms, side)`: messages between `side` and the rest are lost.
    pub partition: Option<(u64, u64, Vec<ReplicaId>)>,
    /// Each replica's timers run at this percentage of the requested duration.
    pub timer_skew_percent: Vec<u64>,
    pub real_signatures: bool,
    pub fault_phase_ms: u64,
    /// Virtual time allowed after the faults heal for every request to be delivered.
    pub liveness_budget_ms: u64,
    /// Run the replicas with the deliberately broken quorum of 2f (test-only), to show
    /// the checkers catch an unsafe rule.
    pub broken_quorum: bool,
    /// Batching: the primary cuts a batch at this many requests or after this timeout.
    pub batch_requests_max: usize,
    pub batch_timeout_ms: u64,
}

impl Scenario {
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5ca1_ab1e);
        let replicas = [4u16, 4, 7, 10][rng.random_range(0..4)];
        let faults = usize::from((replicas - 1) / 3);
        let checkpoint_interval = [2u64, 4, 8][rng.random_range(0..3)];
        let watermark_window = checkpoint_interval * rng.random_range(2..=4);
        let mut candidates: Vec<ReplicaId> = (1..replicas).collect();
        let faulty = rng.random_range(0..=faults);
        let mut chosen = Vec::new();
        // A third of the seeds start with a faulty primary.
        if faulty > 0 && rng.random_bool(0.35) {
            chosen.push(0);
        }
        while chosen.len() < faulty {
            let index = rng.random_range(0..candidates.len());
            chosen.push(candidates.remove(index));
        }
        let (mut byzantine, mut silent, mut crashing) = (Vec::new(), Vec::new(), Vec::new());
        for replica in chosen {
            match rng.random_range(0..3) {
                0 => byzantine.push(replica),
                1 => silent.push(replica),
                _ => crashing.push(replica),
            }
        }
        let fault_phase_ms = rng.random_range(500..=3_000);
        let partition = rng.random_bool(0.3).then(|| {
            let from = rng.random_range(0..fault_phase_ms);
            let until = (from + rng.random_range(100..=2_000)).min(fault_phase_ms);
            let mut side: Vec<ReplicaId> = (0..replicas).filter(|_| rng.random_bool(0.5)).collect();
            if side.is_empty() {
                side.push(rng.random_range(0..replicas));
            }
            (from, until, side)
        });
        let skewed = rng.random_bool(0.3);
        let timer_skew_percent =
            (0..replicas).map(|_| if skewed { rng.random_range(50..=200) } else { 100 }).collect();
        Self {
            seed,
            replicas,
            checkpoint_interval,
            watermark_window,
            proposals: rng.random_range(10..=60),
            drop_per_mille: if rng.random_bool(0.3) { 0 } else { rng.random_range(0..=200) },
            duplicate_per_mille: rng.random_range(0..=100),
            delay_max_ms: rng.random_range(1..=40),
            crashing,
            byzantine,
            silent,
            partition,
            timer_skew_percent,
            real_signatures: seed.is_multiple_of(10) && replicas == 4,
            fault_phase_ms,
            liveness_budget_ms: 60_000,
            broken_quorum: false,
            batch_requests_max: [1, 1, 2, 4, 8][rng.random_range(0..5)],
            batch_timeout_ms: rng.random_range(1..=50),
        }
    }
}

/// Why a seed failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two honest replicas delivered different batches at one sequence number.
    Divergence { sequence: Sequence, first: ReplicaId, second: ReplicaId },
    /// Two honest replicas had different states at one checkpoint.
    StateDivergence { sequence: Sequence, replica: ReplicaId },
    /// A replica delivered out of order.
    OutOfOrder { replica: ReplicaId, expected: Sequence, got: Sequence },
    /// The seed handled more events than any healthy run needs (a message or timer storm,
    /// such as a timer that re-arms itself without letting time pass).
    EventStorm { at_ms: u64, events: u64 },
    /// After the faults healed, not every request was delivered in time.
    NoProgress { replica: ReplicaId, delivered: usize, proposed: usize },
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Divergence { sequence, first, second } => write!(
                formatter,
                "safety: replicas {first} and {second} delivered different batches at sequence {sequence}"
            ),
            Violation::StateDivergence { sequence, replica } => {
                write!(
                    formatter,
                    "safety: replica {replica} has a different state at sequence {sequence}"
                )
            }
            Violation::OutOfOrder { replica, expected, got } => {
                write!(formatter, "replica {replica} delivered sequence {got}, expected {expected}")
            }
            Violation::EventStorm { at_ms, events } => write!(
                formatter,
                "storm: {events} events by virtual time {at_ms} ms, more than a healthy run needs"
            ),
            Violation::NoProgress { replica, delivered, proposed } => write!(
                formatter,
                "liveness: replica {replica} delivered {delivered} of {proposed} requests after the faults healed"
            ),
        }
    }
}

/// What a passing seed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub trace_hash: Hash,
    pub messages_delivered: u64,
    pub evidence: u64,
    pub delivered: usize,
    pub virtual_ms: u64,
    pub crashes: u64,
    pub state_transfers: u64,
    /// The highest view any honest replica entered.
    pub highest_view: u64,
}

#[derive(Debug)]
enum Event {
    Message { to: ReplicaId, message: SignedMessage },
    Timer { replica: ReplicaId, kind: TimeoutKind, incarnation: u64 },
    Propose { index: usize },
    Crash { replica: ReplicaId },
    Restart { replica: ReplicaId },
    RetryTransfer { replica: ReplicaId, sequence: Sequence, state_digest: Hash },
}

struct Node {
    replica: Option<Replica<SimCrypto>>,
    /// The durable consensus log (synced on every persist in this storage model).
    records: Vec<Record>,
    /// Delivered and executed batches: (sequence, digest).
    ledger: Vec<(Sequence, Hash)>,
    /// State digest after each executed sequence.
    state: Hash,
    /// Every request digest in the batches of `ledger`.
    delivered: std::collections::BTreeSet<Hash>,
    incarnation: u64,
    byzantine: bool,
    silent: bool,
    /// The next step of this replica is cut short by a crash: only a prefix of its
    /// effects is carried out.
    crash_mid_step: bool,
    /// What a Byzantine replica received, for replaying later (bounded).
    seen: std::collections::VecDeque<SignedMessage>,
}

/// One simulated cluster.
pub struct Simulation {
    scenario: Scenario,
    config: Config,
    rng: StdRng,
    now: u64,
    counter: u64,
    events: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    secrets: Vec<[u8; 32]>,
    /// First delivered digest per sequence, with who delivered it.
    decided: BTreeMap<Sequence, (Hash, ReplicaId)>,
    /// State digest per checkpoint sequence, with who reached it first.
    checkpoint_states: BTreeMap<Sequence, Hash>,
    trace: Vec<u8>,
    report: Report,
    proposed: usize,
    proposed_digests: std::collections::BTreeSet<Hash>,
    /// The request digests of every batch delivered anywhere, by batch digest.
    batch_contents: BTreeMap<Hash, Vec<Hash>>,
    /// `PACTUM_SIM_TRACE=1`: print every input and effect to stderr.
    tracing: bool,
}

impl fmt::Debug for Simulation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Simulation")
            .field("scenario", &self.scenario)
            .finish_non_exhaustive()
    }
}

fn make_crypto(scenario: &Scenario, secrets: &[[u8; 32]], id: ReplicaId) -> SimCrypto {
    if scenario.real_signatures {
        let keypairs: Vec<Keypair> = secrets.iter().map(Keypair::from_seed).collect();
        let keys = keypairs.iter().map(Keypair::public_key).collect();
        SimCrypto::Ed25519(Box::new(Ed25519Crypto::new(
            Keypair::from_seed(&secrets[usize::from(id)]),
            keys,
        )))
    } else {
        SimCrypto::Fast(FastCrypto { id, secrets: secrets.to_vec() })
    }
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Self {
        let config = Config {
            replicas: scenario.replicas,
            checkpoint_interval: scenario.checkpoint_interval,
            watermark_window: scenario.watermark_window,
            retransmit_interval_ms: 200,
            request_timeout_ms: 600,
            view_change_timeout_ms: 600,
            view_change_timeout_max_ms: 10_000,
            batch_requests_max: scenario.batch_requests_max,
            batch_bytes_max: 4096,
            batch_timeout_ms: scenario.batch_timeout_ms,
            broken_quorum_for_tests: scenario.broken_quorum,
        };
        let secrets: Vec<[u8; 32]> = (0..scenario.replicas)
            .map(|id| {
                sha3_256_parts(&[b"sim-secret", &scenario.seed.to_be_bytes(), &id.to_be_bytes()]).0
            })
            .collect();
        let rng = StdRng::seed_from_u64(scenario.seed);
        let mut simulation = Self {
            config,
            rng,
            now: 0,
            counter: 0,
            events: BTreeMap::new(),
            nodes: Vec::new(),
            secrets,
            decided: BTreeMap::new(),
            checkpoint_states: BTreeMap::new(),
            trace: Vec::new(),
            report: Report {
                trace_hash: Hash::ZERO,
                messages_delivered: 0,
                evidence: 0,
                delivered: 0,
                virtual_ms: 0,
                crashes: 0,
                state_transfers: 0,
                highest_view: 0,
            },
            proposed: 0,
            proposed_digests: std::collections::BTreeSet::new(),
            batch_contents: BTreeMap::new(),
            tracing: std::env::var_os("PACTUM_SIM_TRACE").is_some(),
            scenario,
        };
        for id in 0..simulation.scenario.replicas {
            let byzantine = simulation.scenario.byzantine.contains(&id);
            let silent = simulation.scenario.silent.contains(&id);
            simulation.nodes.push(Node {
                replica: None,
                records: Vec::new(),
                ledger: Vec::new(),
                state: Hash::ZERO,
                delivered: std::collections::BTreeSet::new(),
                incarnation: 0,
                byzantine,
                silent,
                crash_mid_step: false,
                seen: std::collections::VecDeque::new(),
            });
            // A fresh replica has nothing to recover, so booting it cannot fail a check.
            let _ = simulation.boot(id);
        }
        simulation
    }

    fn boot(&mut self, id: ReplicaId) -> Result<(), Violation> {
        let crypto = make_crypto(&self.scenario, &self.secrets, id);
        let node = &mut self.nodes[usize::from(id)];
        let last_executed = node.ledger.last().map_or(0, |(sequence, _)| *sequence);
        let mut replica =
            Replica::new(id, self.config.clone(), crypto, &node.records, last_executed)
                .expect("the simulator's configuration is valid");
        let effects = replica.start();
        node.replica = Some(replica);
        node.incarnation += 1;
        self.apply_checked(id, effects)
    }

    fn schedule(&mut self, after_ms: u64, event: Event) {
        self.counter += 1;
        self.events.insert((self.now + after_ms, self.counter), event);
    }

    fn honest(&self, id: ReplicaId) -> bool {
        let node = &self.nodes[usize::from(id)];
        !node.byzantine && !node.silent
    }

    /// Runs the scenario to the end.
    pub fn run(mut self) -> Result<Report, Violation> {
        let scenario = self.scenario.clone();
        for index in 0..scenario.proposals {
            let at = self.rng.random_range(0..scenario.fault_phase_ms);
            self.schedule(at, Event::Propose { index });
        }
        for &replica in &scenario.crashing {
            let crash_at = self.rng.random_range(0..scenario.fault_phase_ms);
            let restart_after = self.rng.random_range(50..=scenario.fault_phase_ms);
            self.schedule(crash_at, Event::Crash { replica });
            self.schedule(
                (crash_at + restart_after).min(scenario.fault_phase_ms),
                Event::Restart { replica },
            );
        }
        let deadline = scenario.fault_phase_ms + scenario.liveness_budget_ms;
        let mut handled = 0u64;
        while let Some(((time, _), event)) = self.events.pop_first() {
            if time > deadline {
                break;
            }
            handled += 1;
            if handled > EVENTS_PER_SEED_MAX {
                return Err(Violation::EventStorm { at_ms: time, events: handled });
            }
            self.now = time;
            self.handle(event)?;
            if self.now > scenario.fault_phase_ms && self.all_delivered() {
                break;
            }
        }
        for id in 0..scenario.replicas {
            if !self.honest(id) {
                continue;
            }
            let delivered = self.delivered_batches(id);
            if delivered < scenario.proposals && std::env::var_os("PACTUM_SIM_DEBUG").is_some() {
                for (index, node) in self.nodes.iter().enumerate() {
                    if let Some(replica) = &node.replica {
                        eprintln!("replica {index}: {replica:#?}");
                    }
                }
            }
            if delivered < scenario.proposals {
                return Err(Violation::NoProgress {
                    replica: id,
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

    /// Distinct proposed requests that replica `id` has delivered.
    fn delivered_batches(&self, id: ReplicaId) -> usize {
        let delivered = &self.nodes[usize::from(id)].delivered;
        delivered.iter().filter(|digest| self.proposed_digests.contains(digest)).count()
    }

    fn all_delivered(&self) -> bool {
        self.proposed == self.scenario.proposals
            && (0..self.scenario.replicas)
                .all(|id| !self.honest(id) || self.delivered_batches(id) >= self.scenario.proposals)
    }

    fn faults_active(&self) -> bool {
        self.now <= self.scenario.fault_phase_ms
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Message { to, message } => {
                self.trace.extend_from_slice(&self.now.to_be_bytes());
                self.trace.extend_from_slice(&to.to_be_bytes());
                self.trace.extend_from_slice(&message.signature.0[..8]);
                self.report.messages_delivered += 1;
                let node = &mut self.nodes[usize::from(to)];
                if node.byzantine {
                    if node.seen.len() >= 64 {
                        node.seen.pop_front();
                    }
                    node.seen.push_back(message.clone());
                }
                self.input(to, Input::Message(message))
            }
            Event::Timer { replica, kind, incarnation } => {
                if self.nodes[usize::from(replica)].incarnation != incarnation {
                    return Ok(());
                }
                self.input(replica, Input::Timeout(kind))
            }
            Event::Propose { index } => {
                // The client sends its request to every replica (PBFT §4.1): the primary
                // batches and orders it, and the backups watch that it gets ordered.
                self.proposed += 1;
                let request = [
                    &self.scenario.seed.to_be_bytes()[..],
                    &(index as u64).to_be_bytes(),
                    b"request",
                ]
                .concat();
                self.proposed_digests.insert(sha3_256(&request));
                for replica in 0..self.scenario.replicas {
                    self.input(replica, Input::Request { request: request.clone() })?;
                }
                Ok(())
            }
            Event::Crash { replica } => {
                // Half the crashes strike in the middle of the replica's next step.
                if self.rng.random_bool(0.5) {
                    self.nodes[usize::from(replica)].crash_mid_step = true;
                } else {
                    self.crash(replica);
                }
                Ok(())
            }
            Event::Restart { replica } => {
                if self.nodes[usize::from(replica)].crash_mid_step {
                    // It never stepped after the crash was scheduled: crash it now.
                    self.crash(replica);
                }
                if self.nodes[usize::from(replica)].replica.is_none() {
                    self.boot(replica)?;
                }
                Ok(())
            }
            Event::RetryTransfer { replica, sequence, state_digest } => {
                self.state_transfer(replica, sequence, state_digest)
            }
        }
    }

    fn crash(&mut self, id: ReplicaId) {
        let node = &mut self.nodes[usize::from(id)];
        node.crash_mid_step = false;
        if node.replica.take().is_some() {
            node.incarnation += 1;
            self.report.crashes += 1;
        }
    }

    fn input(&mut self, id: ReplicaId, input: Input) -> Result<(), Violation> {
        let Some(replica) = self.nodes[usize::from(id)].replica.as_mut() else {
            return Ok(());
        };
        if self.tracing {
            eprintln!("{:>6} r{id} <- {}", self.now, describe_input(&input));
        }
        let mut effects = replica.step(input);
        let crash = self.nodes[usize::from(id)].crash_mid_step;
        if crash {
            // The process dies part-way through: later effects never happen.
            let kept = self.rng.random_range(0..=effects.len());
            effects.truncate(kept);
        }
        if self.tracing {
            for effect in &effects {
                eprintln!("{:>6} r{id} -> {}", self.now, describe_effect(effect));
            }
        }
        let result = self.apply_checked(id, effects);
        if crash {
            self.crash(id);
        }
        result
    }

    fn apply_checked(&mut self, id: ReplicaId, effects: Vec<Effect>) -> Result<(), Violation> {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Persist(record) => {
                    let node = &mut self.nodes[usize::from(id)];
                    if let Record::Stable { sequence, .. } = record {
                        node.records.retain(|kept| !kept.obsolete_at(sequence));
                    }
                    node.records.push(record);
                }
                Effect::Broadcast(message) => {
                    for to in 0..self.scenario.replicas {
                        if to != id {
                            self.send(id, to, message.clone());
                        }
                    }
                }
                Effect::Send { to, message } => self.send(id, to, message),
                Effect::Deliver(delivery) => {
                    let more = self.deliver(id, &delivery)?;
                    queue.extend(more);
                }
                Effect::ScheduleTimeout { kind, after_ms } => {
                    let incarnation = self.nodes[usize::from(id)].incarnation;
                    // Skewed, but never zero: a timer always lets virtual time move on.
                    let after_ms =
                        (after_ms * self.scenario.timer_skew_percent[usize::from(id)] / 100).max(1);
                    self.schedule(after_ms, Event::Timer { replica: id, kind, incarnation });
                }
                Effect::RequestStateTransfer { sequence, state_digest, .. } => {
                    self.state_transfer(id, sequence, state_digest)?;
                }
                Effect::Evidence(_) => {
                    if self.honest(id) {
                        self.report.evidence += 1;
                    }
                }
                Effect::RequestRefused { .. } => {}
                Effect::ViewEntered { view, .. } => {
                    if self.honest(id) {
                        self.report.highest_view = self.report.highest_view.max(view);
                    }
                }
            }
        }
        Ok(())
    }

    /// Executes a delivered batch: checks it against every other honest replica's
    /// delivery at that sequence, extends the state digest, and reports it executed.
    fn deliver(&mut self, id: ReplicaId, delivery: &Delivery) -> Result<Vec<Effect>, Violation> {
        // Silent and crashing replicas run the honest code, so their deliveries are checked
        // too; only a replica that corrupts its own messages may hold a different ledger.
        let honest = !self.nodes[usize::from(id)].byzantine;
        let node = &mut self.nodes[usize::from(id)];
        let expected = node.ledger.last().map_or(1, |(sequence, _)| sequence + 1);
        if delivery.sequence != expected {
            return Err(Violation::OutOfOrder { replica: id, expected, got: delivery.sequence });
        }
        node.ledger.push((delivery.sequence, delivery.digest));
        let requests: Vec<Hash> = pactum_consensus::batch_requests(
            &delivery.batch,
            self.config.batch_requests_max,
            self.config.batch_bytes_max,
        )
        .map(|requests| requests.iter().map(|request| sha3_256(request)).collect())
        .unwrap_or_default();
        node.delivered.extend(requests.iter().copied());
        self.batch_contents.insert(delivery.digest, requests);
        node.state = sha3_256_parts(&[&node.state.0, &delivery.digest.0]);
        let state = node.state;
        if honest {
            match self.decided.get(&delivery.sequence) {
                Some((digest, first)) if *digest != delivery.digest => {
                    return Err(Violation::Divergence {
                        sequence: delivery.sequence,
                        first: *first,
                        second: id,
                    });
                }
                Some(_) => {}
                None => {
                    self.decided.insert(delivery.sequence, (delivery.digest, id));
                }
            }
            if delivery.sequence.is_multiple_of(self.scenario.checkpoint_interval) {
                match self.checkpoint_states.get(&delivery.sequence) {
                    Some(expected) if *expected != state => {
                        return Err(Violation::StateDivergence {
                            sequence: delivery.sequence,
                            replica: id,
                        });
                    }
                    Some(_) => {}
                    None => {
                        self.checkpoint_states.insert(delivery.sequence, state);
                    }
                }
            }
        }
        self.trace.extend_from_slice(b"deliver");
        self.trace.extend_from_slice(&delivery.digest.0[..8]);
        let Some(replica) = self.nodes[usize::from(id)].replica.as_mut() else {
            return Ok(Vec::new());
        };
        Ok(replica.step(Input::Executed { sequence: delivery.sequence, state_digest: state }))
    }

    /// Copies the ledger prefix up to `sequence` from an honest replica whose state there
    /// matches the proven digest; retries later if none has it yet.
    fn state_transfer(
        &mut self,
        id: ReplicaId,
        sequence: Sequence,
        state_digest: Hash,
    ) -> Result<(), Violation> {
        if self.nodes[usize::from(id)].replica.is_none() {
            return Ok(());
        }
        let source = (0..self.scenario.replicas).find(|&other| {
            other != id
                && self.honest(other)
                && self.nodes[usize::from(other)].ledger.len() as u64 >= sequence
                && replay_state(&self.nodes[usize::from(other)].ledger[..sequence as usize])
                    == state_digest
        });
        let Some(source) = source else {
            self.schedule(100, Event::RetryTransfer { replica: id, sequence, state_digest });
            return Ok(());
        };
        let prefix = self.nodes[usize::from(source)].ledger[..sequence as usize].to_vec();
        let node = &mut self.nodes[usize::from(id)];
        // The transferred prefix must agree with what this replica already delivered.
        for (index, (own_sequence, own_digest)) in node.ledger.iter().enumerate() {
            if prefix.get(index).is_some_and(|(_, digest)| digest != own_digest) {
                return Err(Violation::Divergence {
                    sequence: *own_sequence,
                    first: source,
                    second: id,
                });
            }
        }
        let contents = &self.batch_contents;
        let covered: Vec<Hash> = prefix
            .iter()
            .flat_map(|(_, digest)| contents.get(digest).cloned().unwrap_or_default())
            .collect();
        if (node.ledger.len() as u64) < sequence {
            node.delivered.extend(covered.iter().copied());
            node.ledger = prefix;
            node.state = state_digest;
        }
        self.report.state_transfers += 1;
        self.input(id, Input::StateTransferred { sequence, state_digest, requests: covered })
    }

    fn send(&mut self, from: ReplicaId, to: ReplicaId, message: SignedMessage) {
        let node = &self.nodes[usize::from(from)];
        if node.silent {
            return;
        }
        if node.byzantine {
            for message in self.corrupt(from, message) {
                self.transmit(from, to, message);
            }
        } else {
            self.transmit(from, to, message);
        }
    }

    fn partitioned(&self, from: ReplicaId, to: ReplicaId) -> bool {
        self.scenario.partition.as_ref().is_some_and(|(start, end, side)| {
            (*start..*end).contains(&self.now) && side.contains(&from) != side.contains(&to)
        })
    }

    fn transmit(&mut self, from: ReplicaId, to: ReplicaId, message: SignedMessage) {
        if self.faults_active() && self.rng.random_range(0..1000) < self.scenario.drop_per_mille {
            return;
        }
        if self.partitioned(from, to) {
            return;
        }
        let delay = self.rng.random_range(1..=self.scenario.delay_max_ms);
        if self.faults_active()
            && self.rng.random_range(0..1000) < self.scenario.duplicate_per_mille
        {
            let again = self.rng.random_range(1..=self.scenario.delay_max_ms * 3);
            self.schedule(again, Event::Message { to, message: message.clone() });
        }
        self.schedule(delay, Event::Message { to, message });
    }

    /// A Byzantine replica's outgoing traffic: bad signatures, conflicting votes signed
    /// with its own key, and out-of-window spam, mixed with honest messages.
    fn corrupt(&mut self, from: ReplicaId, message: SignedMessage) -> Vec<SignedMessage> {
        let crypto = make_crypto(&self.scenario, &self.secrets, from);
        let roll = self.rng.random_range(0..100);
        let resign = |message: Message| {
            let signature = crypto.sign(&message.signing_bytes(from));
            SignedMessage { sender: from, message, signature }
        };
        match (roll, &message.message) {
            // An equivocating primary: each replica may get a different batch for the same
            // (view, sequence).
            (0..=49, Message::PrePrepare { view, sequence, .. }) if message.sender == from => {
                let batch: Vec<u8> = (0..16).map(|_| self.rng.random()).collect();
                let digest = sha3_256(&batch);
                vec![resign(Message::PrePrepare {
                    view: *view,
                    sequence: *sequence,
                    digest,
                    batch,
                })]
            }
            (0..=24, _) => {
                let mut forged = message;
                forged.signature.0[0] ^= 0xff;
                vec![forged]
            }
            (25..=49, Message::Prepare { view, sequence, .. }) => {
                let digest = Hash(self.rng.random());
                vec![resign(Message::Prepare { view: *view, sequence: *sequence, digest }), message]
            }
            (25..=49, Message::Commit { view, sequence, .. }) => {
                let digest = Hash(self.rng.random());
                vec![resign(Message::Commit { view: *view, sequence: *sequence, digest })]
            }
            (25..=49, Message::Checkpoint { sequence, .. }) => {
                let state_digest = Hash(self.rng.random());
                vec![resign(Message::Checkpoint { sequence: *sequence, state_digest })]
            }
            (50..=59, _) => {
                let sequence = self.rng.random_range(1_000_000..2_000_000);
                let digest = Hash(self.rng.random());
                vec![resign(Message::Commit { view: 0, sequence, digest }), message]
            }
            (60..=64, _) => {
                let digest = Hash(self.rng.random());
                vec![resign(Message::PrePrepare {
                    view: 0,
                    sequence: 1,
                    digest,
                    batch: b"forged".to_vec(),
                })]
            }
            (65..=69, _) => {
                // A view-change flood: VIEW-CHANGEs for arbitrary views.
                let new_view = self.rng.random_range(1..200);
                let flood = resign(Message::ViewChange {
                    new_view,
                    stable_sequence: 0,
                    stable_digest: Hash::ZERO,
                    checkpoint_proof: Vec::new(),
                    prepared: Vec::new(),
                });
                vec![flood, message]
            }
            (70..=79, _) => {
                // A replay of something received earlier: old views, old sequence numbers,
                // other replicas' signatures.
                let seen = &self.nodes[usize::from(from)].seen;
                if seen.is_empty() {
                    vec![message]
                } else {
                    let index = self.rng.random_range(0..seen.len());
                    vec![seen[index].clone(), message]
                }
            }
            _ => vec![message],
        }
    }
}

fn replay_state(ledger: &[(Sequence, Hash)]) -> Hash {
    ledger.iter().fold(Hash::ZERO, |state, (_, digest)| sha3_256_parts(&[&state.0, &digest.0]))
}

/// Runs one seed; on failure the error names the seed and the command that replays it.
pub fn run_seed(seed: u64) -> Result<Report, String> {
    run_scenario(Scenario::from_seed(seed))
}

/// Runs a scenario; on failure the error names the seed and the command that replays it.
pub fn run_scenario(scenario: Scenario) -> Result<Report, String> {
    let description = format!("{scenario:?}");
    let seed = scenario.seed;
    let flag = if scenario.broken_quorum { " --broken-quorum" } else { "" };
    Simulation::new(scenario).run().map_err(|violation| {
        format!(
            "simulator seed {seed} failed: {violation}\n  scenario: {description}\n  replay: cargo run --release -p pactum-tests --bin simulate -- --seed {seed}{flag}"
        )
    })
}

fn describe_message(message: &SignedMessage) -> String {
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
        Message::ViewChange { new_view, stable_sequence, prepared, .. } => {
            format!("view-change v{new_view} h{stable_sequence} prepared {}", prepared.len())
        }
        Message::NewView { view, pre_prepares, .. } => {
            format!("new-view v{view} pre-prepares {}", pre_prepares.len())
        }
        Message::Suspect { view } => format!("suspect v{view}"),
    };
    format!("{body} from r{}", message.sender)
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..3].iter().map(|byte| format!("{byte:02x}")).collect()
}

fn describe_input(input: &Input) -> String {
    match input {
        Input::Message(message) => describe_message(message),
        Input::Request { request } => format!("request {}", hex_prefix(&sha3_256(request).0)),
        Input::Timeout(kind) => format!("timeout {kind:?}"),
        Input::Executed { sequence, .. } => format!("executed s{sequence}"),
        Input::StateTransferred { sequence, .. } => format!("state transferred s{sequence}"),
    }
}

fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::Persist(_) => "persist".to_string(),
        Effect::Broadcast(message) => format!("broadcast {}", describe_message(message)),
        Effect::Send { to, message } => format!("send r{to} {}", describe_message(message)),
        Effect::Deliver(delivery) => {
            format!("DELIVER s{} {}", delivery.sequence, hex_prefix(&delivery.digest.0))
        }
        Effect::ScheduleTimeout { kind, after_ms } => format!("timer {kind:?} in {after_ms}"),
        Effect::RequestStateTransfer { sequence, .. } => format!("STATE TRANSFER s{sequence}"),
        Effect::Evidence(evidence) => format!("evidence {evidence:?}"),
        Effect::RequestRefused { .. } => "request refused".to_string(),
        Effect::ViewEntered { view, primary } => format!("VIEW {view} primary r{primary}"),
    }
}
