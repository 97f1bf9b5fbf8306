//! Runs simulator seeds: `simulate --seed S` replays one; `simulate --seeds A..B` soaks a
//! range. Prints a line per failing seed and a summary, and exits non-zero on any failure.
//! `--broken-quorum` runs the replicas with the test-only quorum of 2f, to watch the
//! checkers catch it.

use std::process::ExitCode;

use pactum_tests::simulator::{Scenario, run_scenario};

fn usage() -> ExitCode {
    eprintln!("usage: simulate --seed SEED | --seeds FIRST..END [--verbose] [--broken-quorum]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let verbose = arguments.iter().any(|argument| argument == "--verbose");
    let broken_quorum = arguments.iter().any(|argument| argument == "--broken-quorum");
    let range =
        match arguments.iter().position(|argument| argument == "--seed" || argument == "--seeds") {
            Some(index) => {
                let Some(value) = arguments.get(index + 1) else { return usage() };
                match value.split_once("..") {
                    Some((first, end)) => match (first.parse::<u64>(), end.parse::<u64>()) {
                        (Ok(first), Ok(end)) if first < end => first..end,
                        _ => return usage(),
                    },
                    None => match value.parse::<u64>() {
                        Ok(seed) => seed..seed + 1,
                        Err(_) => return usage(),
                    },
                }
            }
            None => return usage(),
        };
    let total = range.end - range.start;
    let mut failures = 0u64;
    for seed in range {
        let scenario = Scenario { broken_quorum, ..Scenario::from_seed(seed) };
        match run_scenario(scenario) {
            Ok(report) => {
                if verbose || total == 1 {
                    println!(
                        "seed {seed}: ok {report:?}\n  scenario: {:?}",
                        Scenario::from_seed(seed)
                    );
                }
            }
            Err(message) => {
                failures += 1;
                println!("{message}");
            }
        }
    }
    println!("{} passed, {failures} failed", total - failures);
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
