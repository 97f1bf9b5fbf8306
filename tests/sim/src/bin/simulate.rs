//! Runs simulator scenarios: replays one, or soaks a range. Prints a line per failing
//! scenario and a summary with the rate, and exits non-zero on any failure.
//!
//! ```text
//! simulate --seed S                       replay the swarm scenario of seed S
//! simulate --seeds A..B                   swarm scenarios A..B
//! simulate --twins-enumerated I --phases K   replay Twins scenario I of the enumeration
//! simulate --twins A..B --phases K        Twins scenarios A..B of the enumeration
//! simulate --twins-random S               replay random Twins scenario S
//! simulate --twins-random-range A..B      random Twins scenarios A..B
//! simulate --stress A..B                  view-change stress scenarios A..B (or one)
//! simulate --epoch-change A..B            epoch-change scenarios A..B (or one)
//! options: --mutation NAME (a planted bug), --jobs N (threads), --verbose
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use pactum_consensus::Mutation;
use pactum_sim::{Scenario, run_scenario};

fn usage() -> ExitCode {
    eprintln!(
        "usage: simulate (--seed S | --seeds A..B | --stress A..B | --epoch-change A..B \
         | --twins-enumerated I --phases K \
         | --twins A..B --phases K | --twins-random S | --twins-random-range A..B) [--mutation NAME] \
         [--jobs N] [--verbose]\n\
         mutations: {}",
        Mutation::ALL.iter().map(|mutation| mutation.name()).collect::<Vec<_>>().join(", ")
    );
    ExitCode::from(2)
}

fn range(value: &str) -> Option<std::ops::Range<u64>> {
    match value.split_once("..") {
        Some((first, end)) => {
            let (first, end) = (first.parse().ok()?, end.parse().ok()?);
            (first < end).then_some(first..end)
        }
        None => value.parse::<u64>().ok().map(|seed| seed..seed + 1),
    }
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        arguments
            .iter()
            .position(|argument| argument == flag)
            .and_then(|index| arguments.get(index + 1))
    };
    let verbose = arguments.iter().any(|argument| argument == "--verbose");
    let mutation = match value("--mutation") {
        Some(name) => match Mutation::from_name(name) {
            Some(mutation) => Some(mutation),
            None => return usage(),
        },
        None => None,
    };
    let jobs: u64 = value("--jobs").and_then(|jobs| jobs.parse().ok()).unwrap_or(1).max(1);
    let phases: u32 = value("--phases").and_then(|phases| phases.parse().ok()).unwrap_or(3);
    type Make = fn(u64, u32) -> Scenario;
    let (ids, make): (std::ops::Range<u64>, Make) =
        if let Some(seeds) = value("--seed").or(value("--seeds")).and_then(|value| range(value)) {
            (seeds, |seed, _| Scenario::from_seed(seed))
        } else if let Some(seeds) = value("--stress").and_then(|value| range(value)) {
            (seeds, |seed, _| Scenario::view_change_stress(seed))
        } else if let Some(seeds) = value("--epoch-change").and_then(|value| range(value)) {
            (seeds, |seed, _| Scenario::epoch_change(seed))
        } else if let Some(indices) =
            value("--twins-enumerated").or(value("--twins")).and_then(|value| range(value))
        {
            (indices, Scenario::twins_enumerated)
        } else if let Some(seeds) =
            value("--twins-random").or(value("--twins-random-range")).and_then(|value| range(value))
        {
            (seeds, |seed, _| Scenario::twins_random(seed))
        } else {
            return usage();
        };
    let total = ids.end - ids.start;
    // The soak's own wall-clock rate, for its summary line; nothing simulated reads it.
    #[allow(clippy::disallowed_methods, reason = "the soak reports its real-time rate")]
    let started = Instant::now();
    let failures = AtomicU64::new(0);
    let next = AtomicU64::new(ids.start);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    if id >= ids.end {
                        return;
                    }
                    let scenario = Scenario { mutation, ..make(id, phases) };
                    match run_scenario(scenario.clone()) {
                        Ok(report) => {
                            if verbose || total == 1 {
                                println!("{id}: ok {report:?}\n  scenario: {scenario:?}");
                            }
                        }
                        Err(failure) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            println!("{failure}");
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} passed, {failures} failed, in {seconds:.1} s ({:.0} scenarios/s, {jobs} threads)",
        total - failures,
        total as f64 / seconds.max(1e-9)
    );
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
