//! Validator-set changes (ADR 0021), half of them with a new checkpoint interval and
//! window (ADR 0022), under faults: every epoch-change scenario keeps safety
//! and liveness, each situation the ADR names is exercised, and the replicas really cross
//! the boundary (enter the new epoch, or catch up to it from their peers' blocks).
//!
//! More: `cargo run --release -p pactum-sim --bin simulate -- --epoch-change 0..100000 --jobs 2`.

use pactum_sim::{Scenario, run_scenario};

const SCENARIOS: u64 = 1_000;

#[test]
fn epoch_changes_under_faults_keep_safety_and_liveness() {
    let mut failures = Vec::new();
    let (mut entered, mut caught_up, mut view_changes) = (0, 0, 0);
    for seed in 0..SCENARIOS {
        match run_scenario(Scenario::epoch_change(seed)) {
            Ok(report) => {
                entered += report.epoch_changes;
                caught_up += report.epoch_catch_ups;
                view_changes += u64::from(report.highest_view > 0);
            }
            Err(failure) => failures.push(failure.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {SCENARIOS} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // What the scenarios claim to exercise, they do.
    let scenarios: Vec<Scenario> = (0..SCENARIOS).map(Scenario::epoch_change).collect();
    let count = |predicate: &dyn Fn(&Scenario) -> bool| {
        scenarios.iter().filter(|scenario| predicate(scenario)).count()
    };
    let change = |scenario: &Scenario| scenario.reconfiguration.clone().expect("a change");
    let figures = [
        ("the first primary removed", count(&|s| change(s).leaving.contains(&0)), 150),
        ("a joiner", count(&|s| change(s).joining > 0), 300),
        ("a crash at the boundary", count(&|s| change(s).crash_at_boundary.is_some()), 150),
        ("an isolation at the decision", count(&|s| change(s).isolate_at_decision.is_some()), 450),
        ("a new checkpoint interval and window", count(&|s| change(s).window.is_some()), 400),
    ];
    for (what, seen, at_least) in figures {
        assert!(seen >= at_least, "only {seen} scenarios with {what}");
    }
    assert!(entered > 3_000, "only {entered} replicas entered the new epoch");
    assert!(caught_up > 100, "only {caught_up} replicas caught up to the new epoch");
    assert!(view_changes > 100, "only {view_changes} scenarios changed views");
    println!(
        "{SCENARIOS} epoch-change scenarios: {entered} epoch entries, {caught_up} catch-ups, \
         {view_changes} with view changes"
    );
}

#[test]
fn an_epoch_change_replays_to_the_same_trace() {
    for seed in [0, 1, 2, 3, 4] {
        let first = run_scenario(Scenario::epoch_change(seed)).unwrap();
        assert_eq!(first, run_scenario(Scenario::epoch_change(seed)).unwrap(), "seed {seed}");
        assert!(first.epoch_changes > 0, "seed {seed} crossed no boundary");
    }
}
