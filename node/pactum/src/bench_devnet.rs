//! `pactum bench devnet`: committed token transfers per second and commit latency of a
//! running devnet, and an honest count of what happened to every transfer.
//!
//! It enrols and funds a set of senders, pre-signs every transfer (signing is not timed),
//! then offers them open loop at the set rate from several client threads, sender `i`
//! first to validator `i mod n` and to the others when that one cannot take it
//! ([`crate::bench_load`]). It follows commits on every validator. A transfer's latency
//! is from its first offer to the first validator reporting its block. Only transfers
//! offered after the warm-up count towards latency, and only commits between the warm-up
//! and the end of the load towards throughput. It never asserts a speed; it exits
//! non-zero when an accepted transfer is not committed exactly once or the validators
//! disagree.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Args;

use crate::bench_load::{Devnet, Run, Transfers};
use crate::devnet::DEFAULT_DIRECTORY;

#[derive(Debug, Args)]
pub struct DevnetBenchArgs {
    /// The devnet's directory (`pactum devnet up --dir`).
    #[arg(long, default_value = DEFAULT_DIRECTORY)]
    dir: PathBuf,
    /// Transfers offered per second, in total.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds at the start that do not count.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Distinct senders (each gets `rate × duration / senders` transfers).
    #[arg(long, default_value_t = 256)]
    senders: usize,
    /// Client threads submitting.
    #[arg(long, default_value_t = 32)]
    threads: usize,
    /// Seconds to wait after the load for accepted transfers to commit.
    #[arg(long, default_value_t = 60)]
    drain: u64,
}

pub fn run(arguments: &DevnetBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        arguments.rate > 0 && arguments.duration > 0,
        "--rate and --duration must be positive"
    );
    anyhow::ensure!(
        arguments.senders > 0 && arguments.threads > 0,
        "--senders and --threads must be positive"
    );
    anyhow::ensure!(
        arguments.warmup < arguments.duration,
        "--warmup must be shorter than --duration"
    );
    let devnet = Devnet::open(&arguments.dir)?;
    println!("enrolling and funding {} senders...", arguments.senders);
    let senders = devnet.fund_senders(arguments.senders)?;
    let total = arguments.rate * arguments.duration;
    println!("signing {total} transfers (not timed)...");
    let mut transfers = Transfers::new(&devnet, senders);
    transfers.presign(total);

    let run = Run::new(&devnet, transfers)?;
    run.follow();
    let started = run.elapsed();
    run.submit(arguments.rate, arguments.threads, total, &AtomicBool::new(false));
    let load_end = run.elapsed();
    println!("load done; waiting up to {} s for accepted transfers to commit...", arguments.drain);
    run.drain(Duration::from_secs(arguments.drain));
    run.sweep();
    let outcome = run.outcome((started + Duration::from_secs(arguments.warmup), load_end));

    let load_seconds = load_end.saturating_sub(started).as_secs_f64();
    println!(
        "pactum bench devnet: {} validators in {}, {} transfers/s offered for {} s ({} s warm-up), {} senders",
        devnet.nodes.len(),
        arguments.dir.display(),
        arguments.rate,
        arguments.duration,
        arguments.warmup,
        arguments.senders
    );
    println!(
        "  load:                 {} offered in {load_seconds:.1} s ({:.0}/s achieved by the client)",
        outcome.offered,
        outcome.offered as f64 / load_seconds
    );
    outcome.print_accounting();
    println!(
        "  committed TPS:        {:.0} (over the {:.0} s after warm-up)",
        outcome.committed_in_window as f64 / outcome.window.as_secs_f64(),
        outcome.window.as_secs_f64()
    );
    println!(
        "  commit latency (ms):  p50 {:.0}  p95 {:.0}  p99 {:.0}  max {:.0}  ({} samples)",
        outcome.percentile(0.50),
        outcome.percentile(0.95),
        outcome.percentile(0.99),
        outcome.latencies_ms.last().copied().unwrap_or(f64::NAN),
        outcome.latencies_ms.len()
    );
    if outcome.is_clean() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "FAILED: an accepted transfer was not committed exactly once, or validators disagree"
        );
        Ok(ExitCode::FAILURE)
    }
}
