//! Issue 8's chaos test: four validator processes under token-transfer load while
//! validators are killed with SIGKILL and restarted (a random one, the primary, two in
//! quick succession, and once all four at once), through `pactum bench chaos`. Every
//! transfer a validator accepted must commit exactly once, every validator must hold the
//! same block at every height, no validator may count a restart as evidence, and every
//! data directory must pass `pactum chain verify`.
//!
//! The kill schedule comes from a seed printed first; replay one with
//! `PACTUM_CHAOS_SEED=<seed> cargo test --release -p pactum-tests --test chaos`. The soak
//! version is the same command with more cycles (`docs/benchmarks.md`).

use std::process::Command;

use pactum_tests::devnet::{TestDevnet, pactum_binary};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CYCLES: u32 = 6;

#[test]
fn kill_9_cycles_under_load_lose_and_duplicate_nothing_and_the_validators_agree() {
    let seed: u64 = match std::env::var("PACTUM_CHAOS_SEED") {
        Ok(text) => text.parse().expect("PACTUM_CHAOS_SEED is a number"),
        Err(_) => StdRng::from_os_rng().random(),
    };
    println!("chaos seed {seed} (replay: PACTUM_CHAOS_SEED={seed})");
    let devnet = TestDevnet::up(4, 23_000, None);
    let output = Command::new(pactum_binary())
        .args(["bench", "chaos", "--dir"])
        .arg(devnet.directory())
        .args(["--cycles", &CYCLES.to_string(), "--seed", &seed.to_string()])
        .args(["--rate", "200", "--senders", "32", "--threads", "8", "--drain", "120"])
        .output()
        .expect("pactum bench chaos runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "chaos failed (replay: PACTUM_CHAOS_SEED={seed}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figure = |label: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|line| line.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"));
        line.split_whitespace().nth(label.split_whitespace().count()).unwrap().parse().unwrap()
    };
    assert!(figure("accepted:") > 1_000, "the load ran:\n{stdout}");
    assert_eq!(figure("lost:"), 0);
    assert_eq!(figure("duplicated:"), 0);
    assert_eq!(figure("committed:"), figure("accepted:"));
    assert!(stdout.contains("killed every validator at once"), "{stdout}");
    // The command left the devnet running again: check agreement independently of it.
    let height = devnet.assert_agree(&[1, 2, 3, 4]);
    let reference = devnet.block_hashes(1, height);
    for validator in 2..=4 {
        assert_eq!(devnet.block_hashes(validator, height), reference, "validator-{validator}");
    }
}
