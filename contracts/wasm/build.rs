//! Builds the sample contracts for `wasm32-unknown-unknown` with a nested `cargo build`.
//!
//! The nested build uses its own target directory under `OUT_DIR` (sharing the outer one
//! would deadlock on its lock) and a clean environment: the outer build's `RUSTFLAGS`,
//! `CARGO_ENCODED_RUSTFLAGS`, `CARGO_*` variables and wrappers (clippy's, for one) must
//! not leak into a build for another target. Contract-only profile settings (size
//! optimisation, LTO, `panic = "abort"`, no debug info, a 64 KiB stack) are passed with
//! `--config`, so the workspace's own release profile is left alone.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// The contract packages; each builds to `<package with underscores>.wasm`.
const CONTRACTS: [&str; 4] = [
    "pactum-contract-token",
    "pactum-contract-supply-chain",
    "pactum-contract-healthcare",
    "pactum-contract-escrow",
];

/// Environment variables the nested cargo may inherit; everything else is cleared.
const KEPT_VARIABLES: [&str; 6] =
    ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "TMPDIR"];

fn main() {
    let manifest_directory =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_directory
        .parent()
        .and_then(|contracts| contracts.parent())
        .expect("contracts/wasm sits two levels below the workspace root")
        .to_path_buf();
    let out_directory = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_directory = out_directory.join("wasm-target");

    for watched in [
        "contracts/sdk",
        "contracts/token",
        "contracts/supply-chain",
        "contracts/healthcare",
        "contracts/escrow",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let mut command = Command::new(cargo);
    command.env_clear();
    for name in KEPT_VARIABLES {
        if let Some(value) = env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .current_dir(&workspace)
        .args(["build", "--release", "--locked", "--offline", "--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&target_directory)
        .args([
            "--config",
            "profile.release.opt-level=\"z\"",
            "--config",
            "profile.release.lto=true",
            "--config",
            "profile.release.codegen-units=1",
            "--config",
            "profile.release.panic=\"abort\"",
            "--config",
            "profile.release.debug=false",
            "--config",
            "profile.release.strip=true",
            "--config",
            "profile.release.incremental=false",
            "--config",
            "target.wasm32-unknown-unknown.rustflags=[\"-C\", \"link-arg=-zstack-size=65536\"]",
        ]);
    for package in CONTRACTS {
        command.args(["-p", package]);
    }
    let output = command.output().expect("run the nested cargo build of the contracts");
    assert!(
        output.status.success(),
        "building the contracts for wasm32-unknown-unknown failed (is the target installed? \
         scripts/setup.sh adds it):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Surface the nested build's warnings; its output is otherwise swallowed.
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        if line.starts_with("warning") {
            println!("cargo:warning=contracts for wasm32: {line}");
        }
    }
    for package in CONTRACTS {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let built = target_directory.join("wasm32-unknown-unknown/release").join(&file);
        std::fs::copy(&built, out_directory.join(&file))
            .unwrap_or_else(|error| panic!("copy {}: {error}", built.display()));
    }
}
