//! Architecture Invariant: the admin service talks to validators only through their REST
//! API; it never links the runtime, storage, consensus, executor, mempool, network,
//! governance-rules or VM crates. Checked on the resolved dependency graph of this
//! machine's target (`cargo tree`, normal dependencies only).

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn the_admin_service_links_no_node_internals() {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["tree", "-p", "pactum-admin", "-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let linked: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    // The check reads the graph it claims to: what the admin service does use is there.
    for used in ["pactum-client", "pactum-http", "pactum-types", "axum"] {
        assert!(linked.contains(used), "{used} missing from {linked:?}");
    }
    for forbidden in [
        "pactum-runtime",
        "pactum-storage",
        "pactum-consensus",
        "pactum-executor",
        "pactum-mempool",
        "pactum-net",
        "pactum-vm",
        "pactum-governance",
        "rocksdb",
        "wasmtime",
    ] {
        assert!(!linked.contains(forbidden), "pactum-admin links {forbidden}");
    }
}
