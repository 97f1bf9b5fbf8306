//! Crash safety of the block store with real processes: a writer commits blocks in a
//! loop, and this test kills it with SIGKILL at random moments, then reopens the store and
//! checks that it holds a fully committed prefix with every index consistent, and that no
//! block the writer reported as committed was lost.
//!
//! The kill moments come from a seed printed at the start; rerun one with
//! `PACTUM_CRASH_SEED=<seed> cargo test -p pactum-tests --release --test crash_safety`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pactum_storage::Store;
use pactum_storage::audit::audit;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KILLS: usize = 24;

fn seed() -> u64 {
    match std::env::var("PACTUM_CRASH_SEED") {
        Ok(text) => text.parse().expect("PACTUM_CRASH_SEED is a number"),
        Err(_) => StdRng::from_os_rng().random(),
    }
}

#[test]
fn sigkill_at_random_moments_never_loses_or_tears_a_block() {
    let seed = seed();
    println!("crash-safety seed {seed} (replay: PACTUM_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    let mut reported_max = 0u64;
    let mut kills_mid_commit = 0usize;

    for kill in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the crash writer starts");
        let stdout = child.stdout.take().unwrap();
        let (lines_sender, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_sender.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until the writer has opened the store (or a few kills land during open),
        // then let it run for a random time before killing it.
        if kill % 6 != 5 {
            let first =
                lines.recv_timeout(Duration::from_secs(30)).expect("the writer reports opening");
            assert!(first.starts_with("opened "), "unexpected first line {first:?}");
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
        child.kill().expect("SIGKILL is delivered");
        let status = child.wait().unwrap();
        assert!(!status.success(), "the writer was killed, not finished");
        reader.join().unwrap();
        let mut reported = 0u64;
        let mut last_line = String::new();
        while let Ok(line) = lines.try_recv() {
            if let Some(height) = line.strip_prefix("committed ") {
                reported = height.parse().unwrap();
            }
            last_line = line;
        }
        reported_max = reported_max.max(reported);

        let store = Store::open(&path).unwrap_or_else(|error| {
            panic!("seed {seed}, kill {kill}: the store does not reopen after SIGKILL: {error}")
        });
        let height = store.last_height();
        assert!(
            height >= reported_max,
            "seed {seed}, kill {kill}: block {reported_max} was reported committed but the store reopened at {height}"
        );
        if height > reported {
            // Killed after the write was durable but before the report was read.
            kills_mid_commit += 1;
        }
        let report =
            audit(&store, &pactum_storage::builder::check_test_chain_certificate, &mut |_, _| {})
                .unwrap_or_else(|fault| {
                    panic!("seed {seed}, kill {kill}: the reopened store fails its audit: {fault}")
                });
        assert_eq!(report.blocks, height);
        println!(
            "kill {kill:>2}: reopened at height {height} ({} transactions), last line {last_line:?}",
            report.transactions
        );
    }
    assert!(reported_max > 0, "seed {seed}: the writer never committed a block");
    println!(
        "{KILLS} kills, final height {reported_max}, {kills_mid_commit} kills between a durable commit and its report"
    );
}
