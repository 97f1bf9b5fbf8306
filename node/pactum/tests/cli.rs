//! The `pactum` binary as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

use pactum_storage::Store;
use pactum_storage::builder::ChainBuilder;
use pactum_types::ChainId;

fn pactum(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pactum")).args(arguments).output().expect("pactum runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn build_chain(path: &Path, blocks: u64) {
    let mut store = Store::open(path).unwrap();
    ChainBuilder::new(ChainId::new("pactum-cli").unwrap(), 4, 5, 3)
        .extend(&mut store, blocks, 6)
        .unwrap();
}

#[test]
fn help_lists_every_subcommand() {
    let output = pactum(&["--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for name in ["node", "devnet", "certs", "keys", "tx", "contract", "chain", "bench", "admin"] {
        assert!(
            help.lines().any(|line| line.trim_start().starts_with(name)),
            "--help lacks {name}:\n{help}"
        );
    }
}

#[test]
fn admin_serve_refuses_an_admin_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let directory = tempfile::tempdir().unwrap();
    let key = directory.path().join("admin.pem");
    std::fs::write(&key, "not checked: the mode is refused first").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let data = directory.path().join("console");
    let output = pactum(&[
        "admin",
        "serve",
        "--admin-key",
        key.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--tls-certificate",
        "missing.pem",
        "--tls-key",
        "missing.pem",
    ]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("can be read by other users") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!data.exists(), "nothing was written before the key was refused");
}

#[test]
fn chain_verify_passes_an_untouched_chain() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("data");
    build_chain(&path, 8);
    let output = pactum(&["chain", "verify", "--test-chain", "--data-dir", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("chain verified: 8 blocks, 48 transactions"), "{stdout}");
}

#[test]
fn chain_verify_names_the_block_changed_through_raw_rocksdb() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("data");
    build_chain(&path, 8);
    {
        let names = pactum_storage::ColumnFamily::ALL.map(|family| family.name());
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, names).unwrap();
        let blocks = db.cf_handle("blocks").unwrap();
        let mut bytes = db.get_cf(&blocks, 5u64.to_be_bytes()).unwrap().unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        db.put_cf(&blocks, 5u64.to_be_bytes(), &bytes).unwrap();
    }
    let output = pactum(&["chain", "verify", "--test-chain", "--data-dir", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("chain verify FAILED: block 5 is bad:"), "{stderr}");
}

#[test]
fn chain_verify_without_a_genesis_says_how_to_check_certificates() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("data");
    build_chain(&path, 2);
    let output = pactum(&["chain", "verify", "--data-dir", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("pass --genesis"), "{stderr}");
}

#[test]
fn client_commands_explain_an_unreachable_node() {
    let directory = tempfile::tempdir().unwrap();
    let key = directory.path().join("key");
    let created = pactum(&["keys", "new", "--out", key.to_str().unwrap()]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("public key:"));
    let shown = pactum(&["keys", "show", "--key", key.to_str().unwrap(), "--public"]);
    assert_eq!(text(&shown.stdout).trim().len(), 64);
    let again = pactum(&["keys", "new", "--out", key.to_str().unwrap()]);
    assert!(!again.status.success(), "keys new must not overwrite a key");
    let address = "ab".repeat(32);
    let output = pactum(&[
        "contract",
        "call",
        &address,
        "transfer",
        "u128:5",
        "--key",
        key.to_str().unwrap(),
        "--node",
        "http://127.0.0.1:9",
    ]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cannot reach the node at http://127.0.0.1:9"), "{stderr}");
    let bad = pactum(&[
        "contract",
        "query",
        &address,
        "balance",
        "u128-5",
        "--node",
        "http://127.0.0.1:9",
    ]);
    assert!(text(&bad.stderr).contains("must be written type:value"), "{}", text(&bad.stderr));
}

#[test]
fn chain_verify_of_a_missing_directory_is_a_clear_error() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("nothing-here");
    let output = pactum(&["chain", "verify", "--test-chain", "--data-dir", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("does not exist or holds no Pactum store"), "{stderr}");
    assert!(!path.exists(), "verify must not create a store");
}

#[test]
fn bench_storage_prints_figures() {
    let output = pactum(&["bench", "storage", "--blocks", "3", "--transactions", "20"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("blocks/s:") && stdout.contains("transactions/s:"), "{stdout}");
}
