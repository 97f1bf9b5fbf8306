//! The PBFT simulator in CI: a fixed range of swarm seeds, a fresh random range on every
//! run (printed, so a failure replays), determinism, and a check that the fault mix really
//! is exercised.
//!
//! A failure prints the violation and the command that replays it. More seeds:
//! `cargo run --release -p pactum-sim --bin simulate -- --seeds 0..100000 --jobs 2`.

use pactum_sim::{Report, Scenario, Simulation, Strategy, run_scenario, run_seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Fixed seeds every CI run covers.
const FIXED_SEEDS: u64 = 400;
/// Fresh seeds every CI run adds.
const FRESH_SEEDS: u64 = 100;

fn run_range(seeds: std::ops::Range<u64>) -> (Vec<Report>, Vec<String>) {
    let (mut reports, mut failures) = (Vec::new(), Vec::new());
    for seed in seeds {
        match run_seed(seed) {
            Ok(report) => reports.push(report),
            Err(failure) => failures.push(failure.to_string()),
        }
    }
    (reports, failures)
}

#[test]
fn fixed_seeds_keep_safety_and_liveness_under_every_fault() {
    let (reports, failures) = run_range(0..FIXED_SEEDS);
    assert!(
        failures.is_empty(),
        "{} of {FIXED_SEEDS} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The swarm really exercised what it claims to.
    let scenarios: Vec<Scenario> = (0..FIXED_SEEDS).map(Scenario::from_seed).collect();
    let count = |predicate: &dyn Fn(&Scenario) -> bool| {
        scenarios.iter().filter(|scenario| predicate(scenario)).count()
    };
    let sizes: std::collections::BTreeSet<u16> =
        scenarios.iter().map(|scenario| scenario.replicas).collect();
    assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![4, 7, 10]);
    let strategy = |wanted: Strategy| {
        count(&|scenario| scenario.byzantine.iter().any(|(_, strategy)| *strategy == wanted))
    };
    let figures = [
        ("real Ed25519", count(&|scenario| scenario.real_signatures), 10),
        ("a faulty first primary", count(&|scenario| !scenario.must_progress(0)), 40),
        ("a partition", count(&|scenario| !scenario.partitions.is_empty()), 80),
        ("Twins", count(&|scenario| scenario.twins.is_some()), 20),
        ("a whole-cluster crash", count(&|scenario| scenario.cluster_crash_ms.is_some()), 20),
        ("more than f crashing", count(&|s| s.crashing.len() > s.faults_tolerated()), 20),
        ("stale frames", count(&|scenario| scenario.stale_per_mille > 0), 100),
        ("execution lag", count(&|scenario| scenario.execution_lag_ms > 0), 100),
        ("colluding replicas", count(&|s| s.byzantine.len() > 1), 5),
        ("a corrupting replica", strategy(Strategy::Corrupt), 20),
        ("an equivocating replica", strategy(Strategy::Equivocate), 20),
        ("a censoring replica", strategy(Strategy::Censor), 20),
        ("a NEW-VIEW withholder", strategy(Strategy::WithholdNewView), 20),
        ("a NEW-VIEW forger", strategy(Strategy::ForgeNewView), 20),
        ("a validator-set change", count(&|s| s.reconfiguration.is_some()), 100),
        (
            "a joiner",
            count(&|s| s.reconfiguration.as_ref().is_some_and(|change| change.joining > 0)),
            60,
        ),
        (
            "a validator leaving",
            count(&|s| s.reconfiguration.as_ref().is_some_and(|c| !c.leaving.is_empty())),
            60,
        ),
    ];
    for (what, seen, at_least) in figures {
        assert!(seen >= at_least, "only {seen} seeds with {what}");
    }
    let sum = |field: fn(&Report) -> u64| reports.iter().map(field).sum::<u64>();
    let view_changes = reports.iter().filter(|report| report.highest_view > 0).count();
    let (evidence, crashes, transfers, fetched) = (
        sum(|report| report.evidence),
        sum(|report| report.crashes),
        sum(|report| report.state_transfers),
        sum(|report| report.batches_fetched),
    );
    assert!(evidence > 1_000, "Byzantine replicas produced only {evidence} pieces of evidence");
    assert!(crashes > 200, "only {crashes} crashes");
    assert!(transfers > 20, "only {transfers} state transfers");
    assert!(fetched > 20, "only {fetched} batches fetched by digest");
    assert!(view_changes > 60, "only {view_changes} seeds changed views");
    let epoch_changes = sum(|report| report.epoch_changes);
    assert!(epoch_changes > 400, "only {epoch_changes} replicas entered a new epoch");
    println!(
        "{FIXED_SEEDS} seeds: {evidence} evidence, {crashes} crashes, {transfers} state transfers, \
         {fetched} batch fetches, {view_changes} with view changes, {epoch_changes} epoch \
         entries; {}",
        figures
            .iter()
            .map(|(what, seen, _)| format!("{seen} with {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
fn a_fresh_random_range_keeps_safety_and_liveness() {
    // `PACTUM_SIM_FRESH_START` replays a range a CI run printed.
    let start = match std::env::var("PACTUM_SIM_FRESH_START") {
        Ok(value) => value.parse().expect("PACTUM_SIM_FRESH_START is a number"),
        Err(_) => StdRng::from_os_rng().random_range(1_000_000..u64::MAX / 2),
    };
    println!(
        "fresh seeds {start}..{} (replay with PACTUM_SIM_FRESH_START={start})",
        start + FRESH_SEEDS
    );
    let (_, failures) = run_range(start..start + FRESH_SEEDS);
    assert!(
        failures.is_empty(),
        "{} fresh seeds failed (PACTUM_SIM_FRESH_START={start}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_scenario_replays_to_the_same_trace() {
    for seed in [1, 2, 3, 10, 20, 77, 123, 999] {
        let first = Simulation::new(Scenario::from_seed(seed)).run().unwrap();
        let second = Simulation::new(Scenario::from_seed(seed)).run().unwrap();
        assert_eq!(first, second, "seed {seed} is not deterministic");
    }
    let twins = Scenario::twins_enumerated(77, 3);
    let first = run_scenario(twins.clone()).unwrap();
    assert_eq!(first, run_scenario(twins).unwrap(), "a Twins scenario is deterministic");
    let (one, two) = (run_seed(1).unwrap(), run_seed(2).unwrap());
    assert_ne!(one.trace_hash, two.trace_hash, "different seeds give different traces");
}
