//! The PBFT simulator as a test: hundreds of seeds with swarm-drawn faults, determinism,
//! and a check that the fault mix really is exercised.
//!
//! A failure prints the seed and the command that replays it. More seeds:
//! `cargo run --release -p pactum-tests --bin simulate -- --seeds 0..100000`.

use pactum_tests::simulator::{Scenario, Simulation, run_scenario, run_seed};

const CI_SEEDS: u64 = 600;

#[test]
fn hundreds_of_seeds_keep_safety_and_liveness() {
    let mut failures = Vec::new();
    let mut sizes = std::collections::BTreeSet::new();
    let (mut evidence, mut crashes, mut transfers, mut real) = (0, 0, 0, 0);
    let (mut new_views, mut faulty_primaries, mut partitions) = (0, 0, 0);
    for seed in 0..CI_SEEDS {
        let scenario = Scenario::from_seed(seed);
        sizes.insert(scenario.replicas);
        real += u64::from(scenario.real_signatures);
        faulty_primaries += u64::from(
            [&scenario.byzantine, &scenario.silent, &scenario.crashing]
                .iter()
                .any(|faulty| faulty.contains(&0)),
        );
        partitions += u64::from(scenario.partition.is_some());
        match run_seed(seed) {
            Ok(report) => {
                evidence += report.evidence;
                crashes += report.crashes;
                transfers += report.state_transfers;
                new_views += u64::from(report.highest_view > 0);
            }
            Err(message) => failures.push(message),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CI_SEEDS} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The swarm really exercised what it claims to.
    assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![4, 7, 10]);
    assert!(real > 10, "only {real} seeds used real Ed25519");
    assert!(evidence > 1000, "Byzantine replicas produced only {evidence} pieces of evidence");
    assert!(crashes > 50, "only {crashes} crashes");
    assert!(transfers > 10, "only {transfers} state transfers");
    assert!(faulty_primaries > 50, "only {faulty_primaries} seeds with a faulty first primary");
    assert!(partitions > 100, "only {partitions} seeds with a partition");
    assert!(new_views > 100, "only {new_views} seeds changed views");
    println!(
        "{CI_SEEDS} seeds: {evidence} evidence, {crashes} crashes, {transfers} state transfers, \
         {real} with real Ed25519, {faulty_primaries} with a faulty first primary, \
         {partitions} with a partition, {new_views} changed views"
    );
}

#[test]
fn a_seed_replays_to_the_same_trace() {
    for seed in [1, 2, 3, 10, 20, 77, 123, 999] {
        let first = Simulation::new(Scenario::from_seed(seed)).run().unwrap();
        let second = Simulation::new(Scenario::from_seed(seed)).run().unwrap();
        assert_eq!(first, second, "seed {seed} is not deterministic");
    }
    let (one, two) = (run_seed(1).unwrap(), run_seed(2).unwrap());
    assert_ne!(one.trace_hash, two.trace_hash, "different seeds give different traces");
}

/// The checkers can fail: with the test-only quorum of 2f instead of 2f + 1, the simulator
/// finds a safety violation within the CI seed budget.
#[test]
fn a_broken_quorum_rule_is_caught_within_the_ci_budget() {
    let caught = (0..CI_SEEDS).find_map(|seed| {
        let scenario = Scenario { broken_quorum: true, ..Scenario::from_seed(seed) };
        run_scenario(scenario).err().filter(|message| message.contains("safety"))
    });
    let message = caught.expect("a quorum of 2f must break safety on some seed");
    assert!(message.contains("--broken-quorum"), "the replay command names the switch");
    println!("caught: {message}");
}
