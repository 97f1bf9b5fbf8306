//! The checkers can fail: each planted bug ([`Mutation`], a test-only switch) breaks a rule
//! of PBFT, and the simulator catches every one of them, as a safety violation, within a
//! CI budget of scenarios. The table printed here (mutant, the first scenario that caught
//! it, what it saw) is the one in `docs/protocol/pbft.md`.

use pactum_consensus::Mutation;
use pactum_sim::{Scenario, run_scenario};

/// Swarm seeds, then epoch-change scenarios, then view-change stress scenarios, then
/// random Twins scenarios, tried in turn for each mutant until one catches it.
const SWARM_BUDGET: u64 = 200;
const EPOCH_BUDGET: u64 = 500;
const STRESS_BUDGET: u64 = 5_000;
const TWINS_BUDGET: u64 = 1_000;

fn candidates() -> impl Iterator<Item = Scenario> {
    (0..SWARM_BUDGET)
        .map(Scenario::from_seed)
        .chain((0..EPOCH_BUDGET).map(Scenario::epoch_change))
        .chain((0..STRESS_BUDGET).map(Scenario::view_change_stress))
        .chain((0..TWINS_BUDGET).map(Scenario::twins_random))
}

#[test]
fn every_planted_bug_is_caught_within_the_ci_budget() {
    let mut table = Vec::new();
    let mut missed = Vec::new();
    for mutation in Mutation::ALL {
        let mut tried = 0;
        let caught = candidates().find_map(|scenario| {
            tried += 1;
            run_scenario(Scenario { mutation: Some(mutation), ..scenario })
                .err()
                .filter(|failure| failure.violation.is_safety())
        });
        match caught {
            Some(failure) => {
                assert!(
                    failure.replay.contains(&format!("--mutation {}", mutation.name())),
                    "the replay command names the mutant: {}",
                    failure.replay
                );
                table.push(format!(
                    "| {} | {} (after {tried} scenarios) | {} |",
                    mutation.name(),
                    failure
                        .replay
                        .trim_start_matches("cargo run --release -p pactum-sim --bin simulate -- "),
                    failure.violation
                ));
            }
            None => missed.push(mutation.name()),
        }
    }
    println!("| mutant | first caught by | violation |\n|---|---|---|\n{}", table.join("\n"));
    assert!(missed.is_empty(), "not caught within the budget: {missed:?}");
}
