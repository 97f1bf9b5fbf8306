//! What one simulated run does to the cluster: drawn from a seed (swarm testing: each seed
//! draws its own fault rates), or a Twins scenario (Bano et al., OPODIS 2021) enumerated
//! or drawn at random.

use pactum_consensus::{Mutation, ReplicaId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How a Byzantine replica misbehaves. It always signs with its own key only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Random corruption: bad signatures, conflicting votes, junk PRE-PREPAREs,
    /// out-of-window spam, replays of what it received, VIEW-CHANGE floods.
    Corrupt,
    /// Collusion: as primary, a different well-formed batch to each half of the replicas;
    /// as backup, a PREPARE and a COMMIT for every PRE-PREPARE it sees; its VIEW-CHANGEs
    /// leave out its prepared certificates; as new primary, it withholds, delays and
    /// replays its NEW-VIEW.
    Equivocate,
    /// As primary, it leaves chosen requests out of the batches it orders (and orders the
    /// others normally).
    Censor,
    /// As new primary, it withholds its NEW-VIEW from some replicas, delays it past every
    /// timeout for others, and replays it much later.
    WithholdNewView,
    /// As new primary, it sends half the replicas a NEW-VIEW whose re-proposals do not
    /// follow from its VIEW-CHANGEs (the null batch everywhere), validly signed.
    ForgeNewView,
}

/// A time-bounded network partition: `side` cannot reach the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub from_ms: u64,
    pub until_ms: u64,
    pub side: Vec<ReplicaId>,
}

/// One phase of a Twins scenario: which side each replica is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwinsPhase {
    /// Replicas (bit `id`) on the second copy's side; the rest are on the first's.
    pub side_b: u16,
    /// Whether replicas on different sides still talk to each other (only the copies are
    /// split) or the phase is a true partition of every node.
    pub others_connected: bool,
}

/// Two copies of replica `twin` with the same key and unmodified code, each connected to
/// a different subset of the others, phase by phase (each `phase_ms` long); the copies
/// never talk to each other. After the last phase the second copy stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwinsPlan {
    pub twin: ReplicaId,
    pub phases: Vec<TwinsPhase>,
    pub phase_ms: u64,
}

/// A validator-set change (ADR 0021) that the client requests during the run: a request
/// which, once executed at sequence h, ends the genesis epoch at the first checkpoint a
/// whole window past h; the new set orders everything after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconfiguration {
    /// When the client sends the request.
    pub at_ms: u64,
    /// Replicas that join: the ids from `Scenario::replicas` on, this many.
    pub joining: u16,
    /// Replicas of the genesis set that leave.
    pub leaving: Vec<ReplicaId>,
    /// This replica crashes as soon as the first replica enters the new epoch, and
    /// restarts up to 1.5 s later.
    pub crash_at_boundary: Option<ReplicaId>,
    /// These replicas are cut off from the rest for this many milliseconds from the moment
    /// the first replica delivers the change (with the primary among them, a view change
    /// across the boundary; a partition that heals after the change was decided).
    pub isolate_at_decision: Option<(Vec<ReplicaId>, u64)>,
    /// The new epoch's checkpoint interval and watermark window, when the change sets new
    /// parameters too (ADR 0022): the boundary is then a checkpoint of both epochs.
    pub window: Option<(u64, u64)>,
}

impl Reconfiguration {
    /// The members of the new epoch, ascending.
    pub fn members_after(&self, replicas: u16) -> Vec<ReplicaId> {
        (0..replicas + self.joining).filter(|id| !self.leaving.contains(id)).collect()
    }
}

/// Where a scenario came from, so a failure can say how to replay it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Seed,
    ViewChangeStress,
    EpochChange,
    TwinsEnumerated { index: u64, phases: u32 },
    TwinsRandom,
}

/// The fault profile of one run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub origin: Origin,
    pub seed: u64,
    pub replicas: u16,
    pub checkpoint_interval: u64,
    pub watermark_window: u64,
    pub proposals: usize,
    pub drop_per_mille: u32,
    pub duplicate_per_mille: u32,
    pub delay_max_ms: u64,
    /// Messages delivered very late (1–10 s, past every timeout), as stale frames in a
    /// send queue that survived a reconnect.
    pub stale_per_mille: u32,
    /// Honest replicas that crash and restart from what they persisted (any number of
    /// them: safety must hold whatever crashes), each `crashes_each` times.
    pub crashing: Vec<ReplicaId>,
    pub crashes_each: u32,
    /// Every replica crashes at once at this time (a power cut) and restarts later.
    pub cluster_crash_ms: Option<u64>,
    /// Byzantine replicas (at most f together with the silent ones and the twins).
    pub byzantine: Vec<(ReplicaId, Strategy)>,
    /// Replicas that receive but never send.
    pub silent: Vec<ReplicaId>,
    /// Partitions in force, each for its own time span.
    pub partitions: Vec<Partition>,
    pub twins: Option<TwinsPlan>,
    /// Each replica's timers run at this percentage of the requested duration.
    pub timer_skew_percent: Vec<u64>,
    pub real_signatures: bool,
    pub fault_phase_ms: u64,
    /// Virtual time allowed after the faults heal for every request to be delivered.
    pub liveness_budget_ms: u64,
    pub batch_requests_max: usize,
    pub batch_timeout_ms: u64,
    /// Execution reports each delivered batch up to this long after its delivery.
    pub execution_lag_ms: u64,
    /// Deliveries allowed ahead of execution.
    pub delivery_backlog_max: u64,
    /// A planted bug (test-only), to show the checkers catch it.
    pub mutation: Option<Mutation>,
    /// A validator-set change during the run, if any.
    pub reconfiguration: Option<Reconfiguration>,
}

impl Scenario {
    pub fn faults_tolerated(&self) -> usize {
        usize::from((self.replicas - 1) / 3)
    }

    /// Every replica that ever exists: the genesis set and the ones that join.
    pub fn keys(&self) -> u16 {
        self.replicas + self.reconfiguration.as_ref().map_or(0, |change| change.joining)
    }

    /// The replicas that are faulty in PBFT's sense: Byzantine, silent or doubled.
    fn faulty(&self) -> Vec<ReplicaId> {
        self.byzantine
            .iter()
            .map(|(id, _)| *id)
            .chain(self.silent.iter().copied())
            .chain(self.twins.as_ref().map(|plan| plan.twin))
            .collect()
    }

    /// Draws a validator-set change for a third of the swarm seeds (from its own stream,
    /// so the rest of each seed's scenario is what it always was): up to three joiners and
    /// any leavers, keeping n ≥ 4 and at most f faulty replicas in the new set too.
    fn draw_reconfiguration(&mut self) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x0e90_c4a5);
        if !rng.random_bool(0.35) {
            return;
        }
        let faulty = self.faulty();
        for _ in 0..8 {
            let joining = rng.random_range(0..=3u16);
            let leaving: Vec<ReplicaId> =
                (0..self.replicas).filter(|_| rng.random_bool(0.2)).collect();
            if joining == 0 && leaving.is_empty() {
                continue;
            }
            let change = Reconfiguration {
                at_ms: rng.random_range(0..=self.fault_phase_ms),
                joining,
                leaving,
                crash_at_boundary: None,
                isolate_at_decision: None,
                window: None,
            };
            let members = change.members_after(self.replicas);
            let faulty_members = members.iter().filter(|id| faulty.contains(id)).count();
            if members.len() >= 4
                && members.len() <= pactum_types::limits::VALIDATORS_MAX
                && faulty_members <= (members.len() - 1) / 3
            {
                self.timer_skew_percent.resize(usize::from(self.replicas + joining), 100);
                self.reconfiguration = Some(change);
                return;
            }
        }
    }

    /// An epoch-change scenario: n = 4 (or 5), one validator-set change under one of the
    /// situations ADR 0021 names, chosen by `seed % 5`, with drops, delays, stale frames,
    /// execution lag and crashes drawn from the seed:
    /// 0. the primary of the genesis epoch is removed at the boundary;
    /// 1. a replica crashes as the first one enters the new epoch;
    /// 2. the primary is cut off once the change is decided, so a view change runs across
    ///    the boundary;
    /// 3. a joiner is cut off until long after the boundary, and catches up late;
    /// 4. a partition splits the cluster while the change is decided and heals after.
    pub fn epoch_change(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0e90_c4a6);
        let replicas = [4u16, 5][rng.random_range(0..2)];
        let fault_phase_ms = rng.random_range(1_500..=4_000);
        let at_ms = rng.random_range(0..fault_phase_ms / 2);
        let situation = seed % 5;
        let joining = if situation == 3 { 1 } else { rng.random_range(0..=2) };
        let mut leaving = Vec::new();
        if situation == 0 {
            leaving.push(0);
        } else if rng.random_bool(0.3) {
            leaving.push(rng.random_range(0..replicas));
        }
        // The new set has at least 4 members.
        let joining = joining.max((4 + leaving.len() as u16).saturating_sub(replicas));
        let keys = replicas + joining;
        let (crash_at_boundary, isolate_at_decision) = match situation {
            1 => (Some(rng.random_range(0..keys)), None),
            2 => (None, Some((vec![0], rng.random_range(1_000..=3_000)))),
            3 => (None, Some((vec![replicas], rng.random_range(2_000..=6_000)))),
            4 => {
                let side: Vec<ReplicaId> = (0..keys).filter(|_| rng.random_bool(0.5)).collect();
                (None, Some((side, rng.random_range(200..=2_000))))
            }
            _ => (None, None),
        };
        let crashing = (0..keys).filter(|_| rng.random_bool(0.15)).collect();
        Self {
            origin: Origin::EpochChange,
            seed,
            replicas,
            checkpoint_interval: [2, 4][rng.random_range(0..2)],
            watermark_window: 8,
            proposals: rng.random_range(10..=40),
            drop_per_mille: if rng.random_bool(0.3) { 0 } else { rng.random_range(0..=150) },
            duplicate_per_mille: rng.random_range(0..=50),
            delay_max_ms: rng.random_range(1..=40),
            stale_per_mille: if rng.random_bool(0.6) { 0 } else { rng.random_range(1..=20) },
            crashing,
            crashes_each: 1,
            cluster_crash_ms: None,
            byzantine: Vec::new(),
            silent: Vec::new(),
            partitions: Vec::new(),
            twins: None,
            timer_skew_percent: vec![100; usize::from(keys)],
            real_signatures: false,
            fault_phase_ms,
            liveness_budget_ms: 60_000,
            batch_requests_max: [1, 2, 4][rng.random_range(0..3)],
            batch_timeout_ms: rng.random_range(1..=20),
            execution_lag_ms: if rng.random_bool(0.5) { 0 } else { rng.random_range(1..=300) },
            delivery_backlog_max: [2, 64][rng.random_range(0..2)],
            mutation: None,
            reconfiguration: Some(Reconfiguration {
                at_ms,
                joining,
                leaving,
                crash_at_boundary,
                isolate_at_decision,
                window: new_window(seed),
            }),
        }
    }

    /// A swarm scenario drawn from `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5ca1_ab1e);
        let replicas = [4u16, 4, 7, 10][rng.random_range(0..4)];
        let faults = usize::from((replicas - 1) / 3);
        let checkpoint_interval = [2u64, 4, 8][rng.random_range(0..3)];
        let watermark_window = checkpoint_interval * rng.random_range(2..=4);
        let fault_phase_ms = rng.random_range(500..=3_000);
        let mut candidates: Vec<ReplicaId> = (1..replicas).collect();
        let faulty = rng.random_range(0..=faults);
        let mut chosen = Vec::new();
        // A third of the seeds start with a faulty primary.
        if faulty > 0 && rng.random_bool(0.35) {
            chosen.push(0);
        }
        while chosen.len() < faulty {
            chosen.push(candidates.remove(rng.random_range(0..candidates.len())));
        }
        let colluding = faulty > 1 && rng.random_bool(0.3);
        let (mut byzantine, mut silent) = (Vec::new(), Vec::new());
        for replica in chosen {
            if colluding {
                byzantine.push((replica, Strategy::Equivocate));
                continue;
            }
            match rng.random_range(0..7) {
                0 => byzantine.push((replica, Strategy::Corrupt)),
                1 => byzantine.push((replica, Strategy::Equivocate)),
                2 => byzantine.push((replica, Strategy::Censor)),
                3 => byzantine.push((replica, Strategy::WithholdNewView)),
                4 => byzantine.push((replica, Strategy::ForgeNewView)),
                _ => silent.push(replica),
            }
        }
        // Crashes are not faults in PBFT's sense (a replica that recovers from its log is
        // correct): any number of replicas may crash, honest ones included.
        let faulty_ids: Vec<ReplicaId> =
            byzantine.iter().map(|(id, _)| *id).chain(silent.iter().copied()).collect();
        let crashing: Vec<ReplicaId> =
            (0..replicas).filter(|id| !faulty_ids.contains(id) && rng.random_bool(0.25)).collect();
        let partitions = rng.random_bool(0.3).then(|| {
            let from_ms = rng.random_range(0..fault_phase_ms);
            let until_ms = (from_ms + rng.random_range(100..=2_000)).min(fault_phase_ms);
            let mut side: Vec<ReplicaId> = (0..replicas).filter(|_| rng.random_bool(0.5)).collect();
            if side.is_empty() {
                side.push(rng.random_range(0..replicas));
            }
            Partition { from_ms, until_ms, side }
        });
        let partitions: Vec<Partition> = partitions.into_iter().collect();
        let skewed = rng.random_bool(0.3);
        let timer_skew_percent =
            (0..replicas).map(|_| if skewed { rng.random_range(50..=200) } else { 100 }).collect();
        // Some seeds double a faulty replica instead (Twins) for the first part of the run.
        let twins = (!silent.is_empty() && rng.random_bool(0.4)).then(|| {
            let twin = silent.remove(0);
            let phases = (0..rng.random_range(1..=4))
                .map(|_| TwinsPhase {
                    side_b: (0..replicas)
                        .filter(|id| *id != twin && rng.random_bool(0.5))
                        .fold(0u16, |mask, id| mask | (1 << id)),
                    others_connected: rng.random_bool(0.5),
                })
                .collect::<Vec<TwinsPhase>>();
            let phase_ms = (fault_phase_ms / phases.len() as u64).max(1);
            TwinsPlan { twin, phases, phase_ms }
        });
        let mut scenario = Self {
            origin: Origin::Seed,
            seed,
            replicas,
            checkpoint_interval,
            watermark_window,
            proposals: rng.random_range(10..=60),
            drop_per_mille: if rng.random_bool(0.3) { 0 } else { rng.random_range(0..=200) },
            duplicate_per_mille: rng.random_range(0..=100),
            delay_max_ms: rng.random_range(1..=40),
            stale_per_mille: if rng.random_bool(0.5) { 0 } else { rng.random_range(1..=20) },
            crashes_each: rng.random_range(1..=3),
            crashing,
            cluster_crash_ms: rng.random_bool(0.1).then(|| rng.random_range(0..fault_phase_ms)),
            byzantine,
            silent,
            partitions,
            twins,
            timer_skew_percent,
            real_signatures: seed.is_multiple_of(10) && replicas == 4,
            fault_phase_ms,
            liveness_budget_ms: 60_000,
            batch_requests_max: [1, 1, 2, 4, 8][rng.random_range(0..5)],
            batch_timeout_ms: rng.random_range(1..=50),
            execution_lag_ms: if rng.random_bool(0.5) { 0 } else { rng.random_range(1..=300) },
            delivery_backlog_max: [2, 4, 64][rng.random_range(0..3)],
            mutation: None,
            reconfiguration: None,
        };
        scenario.draw_reconfiguration();
        scenario
    }

    /// A Twins scenario: n = 4, replica `plan.twin` doubled, no other fault but message
    /// delays (and, from `seed`, drops and crashes of the others), so that any safety
    /// violation comes from equivocation and forgotten state produced by correct code.
    pub fn twins(seed: u64, plan: TwinsPlan) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x7710_5eed);
        let fault_phase_ms = plan.phase_ms * plan.phases.len() as u64;
        let crashing: Vec<ReplicaId> =
            (0..4).filter(|id| *id != plan.twin && rng.random_bool(0.15)).collect();
        Self {
            origin: Origin::TwinsRandom,
            seed,
            replicas: 4,
            checkpoint_interval: 2,
            watermark_window: [4, 8][rng.random_range(0..2)],
            proposals: rng.random_range(8..=24),
            drop_per_mille: if rng.random_bool(0.5) { 0 } else { rng.random_range(0..=100) },
            duplicate_per_mille: rng.random_range(0..=50),
            delay_max_ms: rng.random_range(1..=30),
            stale_per_mille: if rng.random_bool(0.7) { 0 } else { rng.random_range(1..=20) },
            crashing,
            crashes_each: 1,
            cluster_crash_ms: None,
            byzantine: Vec::new(),
            silent: Vec::new(),
            partitions: Vec::new(),
            twins: Some(plan),
            timer_skew_percent: vec![100; 4],
            real_signatures: false,
            fault_phase_ms,
            liveness_budget_ms: 60_000,
            batch_requests_max: [1, 2][rng.random_range(0..2)],
            batch_timeout_ms: rng.random_range(1..=20),
            execution_lag_ms: if rng.random_bool(0.7) { 0 } else { rng.random_range(1..=100) },
            delivery_backlog_max: [2, 64][rng.random_range(0..2)],
            mutation: None,
            reconfiguration: None,
        }
    }

    /// The Twins scenario number `index` of the enumeration over n = 4: the doubled
    /// replica (4 choices) and, for each of `phases` phases, which of the other three are
    /// on the second copy's side and whether the sides are a true partition (16 choices
    /// each). Phases last 1.2 s, long enough for request timers and a view change to run
    /// inside one.
    pub fn twins_enumerated(index: u64, phases: u32) -> Self {
        let per_twin = 16u64.pow(phases);
        let twin = ((index / per_twin) % 4) as ReplicaId;
        let mut rest = index % per_twin;
        let others: Vec<ReplicaId> = (0..4).filter(|id| *id != twin).collect();
        let mut plan_phases = Vec::new();
        for _ in 0..phases {
            let choice = rest % 16;
            rest /= 16;
            let side_b = others
                .iter()
                .enumerate()
                .filter(|(bit, _)| choice & (1 << bit) != 0)
                .fold(0u16, |mask, (_, id)| mask | (1 << id));
            plan_phases.push(TwinsPhase { side_b, others_connected: choice & 8 != 0 });
        }
        let scenario = Self::twins(index, TwinsPlan { twin, phases: plan_phases, phase_ms: 1_200 });
        Scenario { origin: Origin::TwinsEnumerated { index, phases }, ..scenario }
    }

    /// How many scenarios [`Scenario::twins_enumerated`] has for `phases` phases.
    pub fn twins_enumeration_size(phases: u32) -> u64 {
        4 * 16u64.pow(phases)
    }

    /// A random Twins scenario (for soaks beyond the enumeration): random doubled replica,
    /// 2–6 phases of random length.
    pub fn twins_random(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0715_7015);
        let twin = rng.random_range(0..4);
        let phases = (0..rng.random_range(2..=6))
            .map(|_| TwinsPhase {
                side_b: (0..4u16)
                    .filter(|id| *id != twin && rng.random_bool(0.5))
                    .fold(0, |mask, id| mask | (1 << id)),
                others_connected: rng.random_bool(0.5),
            })
            .collect();
        let plan = TwinsPlan { twin, phases, phase_ms: rng.random_range(300..=2_000) };
        Self::twins(seed, plan)
    }

    /// Whether this replica runs the honest code and only the honest code acts for it (so
    /// its deliveries are checked): everyone but the Byzantine replicas. Silent replicas,
    /// crashing ones and both copies of a twin run unmodified code.
    pub fn runs_honest_code(&self, id: ReplicaId) -> bool {
        !self.byzantine.iter().any(|(byzantine, _)| *byzantine == id)
    }

    /// Whether this replica must make progress once faults heal: not Byzantine, silent,
    /// doubled, or leaving the validator set.
    pub fn must_progress(&self, id: ReplicaId) -> bool {
        self.runs_honest_code(id)
            && self.reconfiguration.as_ref().is_none_or(|change| !change.leaving.contains(&id))
            && !self.silent.contains(&id)
            && self.twins.as_ref().is_none_or(|plan| plan.twin != id)
    }

    /// A view-change stress scenario: n = 4, one Byzantine replica that forges or plays
    /// games with its NEW-VIEWs (placed so it becomes primary early), and partitions that
    /// cut each primary in turn off for a while, so views change again and again while
    /// requests keep coming, with drops, stale frames and crashes of the others. This is
    /// where rules about NEW-VIEWs and decisions across views are put to the test.
    pub fn view_change_stress(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0005_7e55);
        let byzantine_id: ReplicaId = rng.random_range(1..4);
        let strategy =
            if rng.random_bool(0.5) { Strategy::ForgeNewView } else { Strategy::Equivocate };
        // Long enough for a request to be relayed, time out again and be suspected.
        let phase_ms = rng.random_range(1_500..=3_000);
        let phases = rng.random_range(3..=6);
        let fault_phase_ms = phase_ms * phases;
        let mut partitions = Vec::new();
        for phase in 0..phases {
            if rng.random_bool(0.7) {
                // Cut off the primary of the view the cluster has probably reached.
                partitions.push(Partition {
                    from_ms: phase * phase_ms + rng.random_range(0..phase_ms / 4),
                    until_ms: (phase + 1) * phase_ms,
                    side: vec![(phase % 4) as ReplicaId],
                });
            }
        }
        let crashing = (0..4).filter(|id| *id != byzantine_id && rng.random_bool(0.3)).collect();
        Self {
            origin: Origin::ViewChangeStress,
            seed,
            replicas: 4,
            checkpoint_interval: [2, 4][rng.random_range(0..2)],
            watermark_window: 8,
            proposals: rng.random_range(10..=40),
            drop_per_mille: rng.random_range(0..=150),
            duplicate_per_mille: rng.random_range(0..=50),
            delay_max_ms: rng.random_range(1..=40),
            stale_per_mille: if rng.random_bool(0.5) { 0 } else { rng.random_range(1..=30) },
            crashing,
            crashes_each: rng.random_range(1..=2),
            cluster_crash_ms: None,
            byzantine: vec![(byzantine_id, strategy)],
            silent: Vec::new(),
            partitions,
            twins: None,
            timer_skew_percent: vec![100; 4],
            real_signatures: false,
            fault_phase_ms,
            liveness_budget_ms: 60_000,
            batch_requests_max: [1, 2, 4][rng.random_range(0..3)],
            batch_timeout_ms: rng.random_range(1..=20),
            execution_lag_ms: if rng.random_bool(0.5) { 0 } else { rng.random_range(1..=200) },
            delivery_backlog_max: [2, 64][rng.random_range(0..2)],
            mutation: None,
            reconfiguration: None,
        }
    }

    /// The command that replays this scenario.
    pub fn replay_command(&self) -> String {
        let base = "cargo run --release -p pactum-sim --bin simulate --";
        let mutation = self.mutation.map_or(String::new(), |m| format!(" --mutation {}", m.name()));
        match self.origin {
            Origin::Seed => format!("{base} --seed {}{mutation}", self.seed),
            Origin::ViewChangeStress => format!("{base} --stress {}{mutation}", self.seed),
            Origin::EpochChange => format!("{base} --epoch-change {}{mutation}", self.seed),
            Origin::TwinsEnumerated { index, phases } => {
                format!("{base} --twins-enumerated {index} --phases {phases}{mutation}")
            }
            Origin::TwinsRandom => format!("{base} --twins-random {}{mutation}", self.seed),
        }
    }

    pub fn strategy(&self, id: ReplicaId) -> Option<Strategy> {
        self.byzantine.iter().find(|(byzantine, _)| *byzantine == id).map(|(_, strategy)| *strategy)
    }
}

/// Half the epoch-change scenarios also change the checkpoint interval and window at the
/// boundary (drawn from their own stream, so the rest of a scenario is as before).
fn new_window(seed: u64) -> Option<(u64, u64)> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x71d0_3a55);
    let windows = [(2u64, 4u64), (2, 8), (4, 8), (4, 16), (8, 16), (8, 32)];
    rng.random_bool(0.5).then(|| windows[rng.random_range(0..windows.len())])
}
