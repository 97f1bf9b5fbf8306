//! `pactum bench chaos`: token-transfer load on a running devnet while validators are
//! killed with SIGKILL and restarted, then the proof that nothing accepted was lost.
//!
//! Each cycle lets the load run for a random while, then kills: a random validator, the
//! primary, two validators in quick succession, or (once per run, halfway) all of them at
//! once; after a random pause it restarts them with `pactum devnet up --only`. The kind of
//! each cycle and every wait come from one seed, printed first. After the last cycle the
//! load stops and the command waits (bounded) for every accepted transfer, then checks:
//!
//! - every accepted transfer is committed exactly once (it follows every validator's
//!   blocks, [`crate::bench_load`]);
//! - every validator has the same block at every height;
//! - no validator counted evidence against a peer (restarts are not Byzantine acts);
//! - after a clean stop, `pactum chain verify` passes on every data directory.
//!
//! It exits non-zero if any check fails, and restarts the devnet before it returns.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use pactum_client::NodeClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::bench_load::{Devnet, OFFER_DEADLINE, Run, Transfers};
use crate::clock::Stopwatch;
use crate::devnet::{DEFAULT_DIRECTORY, running_pid, validator_directory};

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// The devnet's directory (`pactum devnet up --dir`); it must be running.
    #[arg(long, default_value = DEFAULT_DIRECTORY)]
    dir: PathBuf,
    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 20)]
    cycles: u32,
    /// Transfers offered per second, in total.
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Distinct senders.
    #[arg(long, default_value_t = 256)]
    senders: usize,
    /// Client threads submitting.
    #[arg(long, default_value_t = 16)]
    threads: usize,
    /// The seed of the kill schedule (default: a fresh one, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The longest a cycle lets the load run before it kills, in seconds (at least 1).
    #[arg(long, default_value_t = 5.0)]
    run_max: f64,
    /// The longest killed validators stay down, in seconds.
    #[arg(long, default_value_t = 3.0)]
    down_max: f64,
    /// Seconds to wait after the load for accepted transfers to commit.
    #[arg(long, default_value_t = 120)]
    drain: u64,
    /// Test-only: the `pactum` binary that restarts the validators (default: this one),
    /// to run the same chaos against another build.
    #[arg(long, hide = true)]
    devnet_binary: Option<PathBuf>,
}

/// What one cycle kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    One,
    Primary,
    TwoQuickly,
    All,
}

impl Kill {
    fn name(self) -> &'static str {
        match self {
            Kill::One => "a random validator",
            Kill::Primary => "the primary",
            Kill::TwoQuickly => "two validators in quick succession",
            Kill::All => "every validator at once",
        }
    }
}

/// The kind of cycle `cycle` of `cycles`: the first three are one of each partial kind,
/// the middle one kills everything, the rest are drawn from `rng`.
fn kind_of(cycle: u32, cycles: u32, rng: &mut StdRng) -> Kill {
    match cycle {
        _ if cycle == cycles / 2 => Kill::All,
        0 => Kill::Primary,
        1 => Kill::TwoQuickly,
        2 => Kill::One,
        _ => match rng.random_range(0..10) {
            0..=3 => Kill::One,
            4..=6 => Kill::Primary,
            _ => Kill::TwoQuickly,
        },
    }
}

pub fn run(arguments: &ChaosArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        arguments.cycles > 0 && arguments.rate > 0,
        "--cycles and --rate must be positive"
    );
    anyhow::ensure!(
        arguments.senders > 0 && arguments.threads > 0,
        "--senders and --threads must be positive"
    );
    anyhow::ensure!(
        arguments.run_max >= 1.0 && arguments.down_max >= 0.0,
        "--run-max must be at least 1 and --down-max at least 0"
    );
    let seed = arguments.seed.unwrap_or_else(|| StdRng::from_os_rng().random());
    println!("pactum bench chaos: seed {seed} (replay: --seed {seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let devnet = Devnet::open(&arguments.dir)?;
    let binary = match &arguments.devnet_binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe().context("finding the pactum executable")?,
    };
    let validators = devnet.nodes.len();
    println!("enrolling and funding {} senders...", arguments.senders);
    let senders = devnet.fund_senders(arguments.senders)?;
    let transfers = Transfers::new(&devnet, senders);
    let run = Run::new(&devnet, transfers)?;
    run.follow();

    // The load runs until the cycles are over; its count only bounds it.
    let stop = AtomicBool::new(false);
    let bound_seconds =
        f64::from(arguments.cycles) * (arguments.run_max + arguments.down_max + 30.0);
    let count = (arguments.rate as f64 * bound_seconds) as u64;
    let mut evidence = 0u64;
    let mut kills = 0usize;
    let watch = Stopwatch::start();
    let chaos = std::thread::scope(|scope| -> anyhow::Result<()> {
        let load = scope.spawn(|| run.submit(arguments.rate, arguments.threads, count, &stop));
        let outcome = (|| -> anyhow::Result<()> {
            for cycle in 0..arguments.cycles {
                let kind = kind_of(cycle, arguments.cycles, &mut rng);
                std::thread::sleep(Duration::from_secs_f64(
                    rng.random_range(1.0..=arguments.run_max),
                ));
                let victims = victims(kind, &devnet.nodes, &mut rng);
                for (position, victim) in victims.iter().enumerate() {
                    if kind == Kill::TwoQuickly && position > 0 {
                        std::thread::sleep(Duration::from_millis(rng.random_range(0..500)));
                    }
                    evidence += evidence_total(&devnet.nodes[*victim]);
                    kill(&arguments.dir, *victim)?;
                    kills += 1;
                }
                let down = rng.random_range(0.0..=arguments.down_max);
                println!(
                    "[{:>6.1} s] cycle {}/{}: killed {} ({}), down {down:.1} s; {} offered, {} committed",
                    watch.elapsed().as_secs_f64(),
                    cycle + 1,
                    arguments.cycles,
                    kind.name(),
                    names(&victims),
                    run.offered(),
                    run.committed(),
                );
                std::thread::sleep(Duration::from_secs_f64(down));
                start(&binary, &arguments.dir, &victims)?;
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        let _ = load.join();
        outcome
    });
    chaos?;
    let load_end = run.elapsed();
    println!(
        "cycles done ({kills} kills in {:.0} s); waiting up to {} s for accepted transfers to commit...",
        watch.elapsed().as_secs_f64(),
        arguments.drain
    );
    let waited = run.drain(Duration::from_secs(arguments.drain));
    run.sweep();
    let outcome = run.outcome((Duration::ZERO, load_end));
    evidence += devnet.nodes.iter().map(evidence_total).sum::<u64>();

    println!("stopping the devnet to verify every data directory...");
    devnet_command(&binary, &arguments.dir, &["down"], &[])?;
    let mut verify_failures = Vec::new();
    for index in 0..validators {
        let data = validator_directory(&arguments.dir, index).join("data");
        let output = Command::new(std::env::current_exe()?)
            .args(["chain", "verify", "--data-dir"])
            .arg(&data)
            .output()
            .context("running pactum chain verify")?;
        if !output.status.success() {
            verify_failures.push(format!(
                "validator-{}: {}{}",
                index + 1,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    devnet_command(&binary, &arguments.dir, &["up"], &[])?;

    println!(
        "pactum bench chaos: {validators} validators, {} cycles ({kills} kills), seed {seed}, {} transfers/s offered, {} senders",
        arguments.cycles, arguments.rate, arguments.senders
    );
    println!(
        "  load:                 {:.0} s, then {:.0} s until the last accepted transfer committed",
        load_end.as_secs_f64(),
        waited.as_secs_f64()
    );
    outcome.print_accounting();
    println!("  evidence against peers: {evidence}");
    println!(
        "  chain verify:         {}",
        if verify_failures.is_empty() {
            "passed on every data directory".to_string()
        } else {
            verify_failures.join("; ")
        }
    );
    let clean = outcome.is_clean() && verify_failures.is_empty() && evidence == 0;
    if !outcome.lost.is_empty() && outcome.never_accepted > 0 {
        println!(
            "  (transfers no validator took within {} s make later transfers of their senders wait behind a gap)",
            OFFER_DEADLINE.as_secs()
        );
    }
    if clean {
        println!("PASSED: every accepted transfer committed exactly once; the validators agree");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("FAILED (replay: --seed {seed})");
        Ok(ExitCode::FAILURE)
    }
}

/// The validators (0-based) a cycle of `kind` kills.
fn victims(kind: Kill, nodes: &[NodeClient], rng: &mut StdRng) -> Vec<usize> {
    let count = nodes.len();
    match kind {
        Kill::One => vec![rng.random_range(0..count)],
        Kill::Primary => vec![primary(nodes).unwrap_or_else(|| rng.random_range(0..count))],
        Kill::TwoQuickly => {
            let first = rng.random_range(0..count);
            let second = (first + rng.random_range(1..count)) % count;
            vec![first, second]
        }
        Kill::All => (0..count).collect(),
    }
}

/// The primary (0-based) as the first validator that answers sees it.
fn primary(nodes: &[NodeClient]) -> Option<usize> {
    nodes.iter().find_map(|node| {
        let status = node.status().ok()?;
        let name = status["primary"].as_str()?.to_string();
        let number: usize = name.strip_prefix("validator-")?.parse().ok()?;
        number.checked_sub(1)
    })
}

fn names(victims: &[usize]) -> String {
    victims.iter().map(|index| format!("validator-{}", index + 1)).collect::<Vec<_>>().join(", ")
}

/// The evidence a validator has counted since it started (0 if it does not answer).
fn evidence_total(node: &NodeClient) -> u64 {
    let Ok(text) = node.get_text("/metrics") else { return 0 };
    text.lines()
        .filter(|line| line.starts_with("pactum_evidence_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// SIGKILL of validator `index` (0-based); returns once it is gone.
fn kill(directory: &Path, index: usize) -> anyhow::Result<()> {
    let Some(pid) = running_pid(directory, index) else {
        return Ok(());
    };
    let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status()?;
    if !status.success() {
        bail!("kill -9 {pid} (validator-{}) failed", index + 1);
    }
    let watch = Stopwatch::start();
    while running_pid(directory, index).is_some() {
        if watch.elapsed() > Duration::from_secs(10) {
            bail!("validator-{} (pid {pid}) survived kill -9 for 10 s", index + 1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Restarts the given validators (0-based) with `pactum devnet up --only`.
fn start(binary: &Path, directory: &Path, victims: &[usize]) -> anyhow::Result<()> {
    devnet_command(binary, directory, &["up"], victims)
}

fn devnet_command(
    binary: &Path,
    directory: &Path,
    command: &[&str],
    only: &[usize],
) -> anyhow::Result<()> {
    let mut process = Command::new(binary);
    process.arg("devnet").args(command).arg("--dir").arg(directory);
    for index in only {
        process.args(["--only", &(index + 1).to_string()]);
    }
    let output = process.output().context("running pactum devnet")?;
    if !output.status.success() {
        bail!(
            "pactum devnet {} failed: {}{}",
            command.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
