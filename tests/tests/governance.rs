//! Governance on a running devnet (real validator processes over mTLS): a client
//! certificate revoked by a proposal that three of four organisations approve with the
//! `pactum gov` commands, from their own admin keys; what cannot be changed yet is refused
//! with its reason and changes nothing.

#![allow(clippy::disallowed_methods, reason = "end-to-end tests time their own waits")]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pactum_certs::Role;
use pactum_client::{NodeClient, encode_arguments, sign_payload};
use pactum_tests::devnet::{TestDevnet, pactum_binary, wait_until};
use pactum_types::{Payload, PublicKey};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

/// One devnet at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `pactum gov ARGUMENTS [--key KEY] --node NODE`; whether it succeeded and its
/// standard output.
fn run_gov(node: &NodeClient, key: Option<&Path>, arguments: &[&str]) -> (bool, String) {
    let mut command = Command::new(pactum_binary());
    command.arg("gov").args(arguments);
    if let Some(key) = key {
        command.arg("--key").arg(key);
    }
    let output = command.args(["--node", node.base()]).output().expect("pactum runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.success(), format!("{stdout}{stderr}"))
}

/// [`run_gov`] with a key, for a command that must succeed; its output.
fn gov(node: &NodeClient, key: &Path, arguments: &[&str]) -> String {
    let (success, output) = run_gov(node, Some(key), arguments);
    assert!(success, "pactum gov {arguments:?} failed:\n{output}");
    output
}

/// Makes a root → intermediate → leaf chain in `directory` with the openssl command line
/// (`tests/pki/openssl-chain.sh`).
fn openssl_chain(directory: &Path, organisation: &str, role: &str, name: &str) {
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("pki/openssl-chain.sh"))
        .arg(directory)
        .args([organisation, role, name])
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn proposal(node: &NodeClient, id: &str) -> Value {
    node.get(&format!("/v1/proposals/{id}")).unwrap().into_success("proposal").unwrap()
}

fn consortium(node: &NodeClient) -> Value {
    node.get("/v1/consortium").unwrap().into_success("consortium").unwrap()
}

/// A token transfer of 0 from `client` to itself: it commits (reverted or not) while the
/// client may transact.
fn transfer(devnet: &TestDevnet, client: &pactum_types::Keypair) -> pactum_types::Transaction {
    transfer_via(devnet, devnet.node(1), client)
}

/// [`transfer`], its nonce read from `node`.
fn transfer_via(
    devnet: &TestDevnet,
    node: &NodeClient,
    client: &pactum_types::Keypair,
) -> pactum_types::Transaction {
    let input =
        encode_arguments(&[format!("account:{}", client.public_key()), "u128:0".into()]).unwrap();
    let call = Payload::CallContract {
        contract: devnet.contract("token"),
        method: "transfer".into(),
        input,
    };
    sign_payload(node, client, call, 10_000_000, None).unwrap()
}

#[test]
fn a_client_certificate_revoked_by_three_of_four_organisations_stops_transacting() {
    let _serial = serial();
    let devnet = TestDevnet::up(4, 25_000, None);
    let node = devnet.node(1);
    // One admin per organisation for the first three (the genesis policy: 3 of 4).
    let admins: Vec<(pactum_types::Keypair, std::path::PathBuf)> = (1..=3)
        .map(|organisation| devnet.enrolled_identities(organisation, 1, Role::Admin).remove(0))
        .collect();
    let (client, client_directory) = devnet.enrolled_identities(2, 1, Role::Client).remove(0);
    let before = transfer(&devnet, &client);
    let hash = node.submit(&before).unwrap();
    node.wait_committed(&hash, TIMEOUT).unwrap();
    let client_certificate = client_directory.join("certificate.pem");
    assert_eq!(consortium(node)["version"], 1);

    // Organisation 1 proposes; 2 and 3 approve, each from its own key and node.
    let started = std::time::Instant::now();
    let proposed = gov(
        node,
        &admins[0].1.join("private-key.pem"),
        &[
            "propose",
            "--title",
            "Revoke a lost client certificate",
            "--revoke-certificate",
            client_certificate.to_str().unwrap(),
        ],
    );
    let id = proposed
        .lines()
        .find_map(|line| line.strip_prefix("proposal id: "))
        .unwrap_or_else(|| panic!("no proposal id in:\n{proposed}"))
        .trim()
        .to_string();
    assert!(proposed.contains("governance.proposed"), "{proposed}");
    let open = proposal(node, &id);
    assert_eq!(open["status"], "open", "{open}");
    assert_eq!(open["tally"]["needed"], 3, "{open}");
    let approved = gov(devnet.node(2), &admins[1].1.join("private-key.pem"), &["approve", &id]);
    assert!(approved.contains("governance.approved"), "{approved}");
    let passed = gov(devnet.node(3), &admins[2].1.join("private-key.pem"), &["approve", &id]);
    assert!(passed.contains("governance.passed"), "{passed}");

    // Applied on every validator, with each organisation's vote and transaction.
    for index in 1..=4 {
        let node = devnet.node(index);
        wait_until("the proposal applied", TIMEOUT, || proposal(node, &id)["status"] == "applied");
        let applied = proposal(node, &id);
        let voters: Vec<&str> = applied["votes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["organisation"].as_str().unwrap())
            .collect();
        assert_eq!(voters, ["Member 1", "Member 2", "Member 3"], "{applied}");
        let consortium = consortium(node);
        assert_eq!(consortium["version"], 2, "validator-{index}: {consortium}");
        assert_eq!(consortium["revoked"].as_array().unwrap().len(), 1, "{consortium}");
    }
    println!(
        "governance figure: a revocation took 3 commands (propose, approve, approve) and {:.1} s \
         from the proposal to applied on all four validators",
        started.elapsed().as_secs_f64()
    );
    let (_, listed) = run_gov(node, None, &["list", "--status", "applied"]);
    assert!(listed.contains(&id) && listed.contains("applied"), "{listed}");

    // The client's next transaction is refused at admission, on every node, and its
    // certificate no longer enrols.
    for index in 1..=4 {
        let answer = devnet
            .node(index)
            .post_bytes(
                "/v1/transactions",
                &pactum_types::Encode::to_bytes(&transfer(&devnet, &client)),
            )
            .unwrap();
        assert_eq!(answer.status, 403, "validator-{index}: {answer:?}");
        assert_eq!(answer.body["code"], "revoked_signer", "{answer:?}");
    }
    let pem = std::fs::read(&client_certificate).unwrap();
    let der = pactum_certs::identity::certificates_from_pem(&pem).unwrap().remove(0);
    let enrol = sign_payload(
        node,
        &client,
        Payload::EnrolIdentity { certificate_der: der },
        1_000_000,
        None,
    )
    .unwrap();
    let answer =
        node.post_bytes("/v1/transactions", &pactum_types::Encode::to_bytes(&enrol)).unwrap();
    assert_eq!(answer.body["code"], "revoked_signer", "{answer:?}");
    // The consortium keeps committing, and every data directory audits clean across
    // the change (the consortium records are in the state root the audit recomputes).
    let issuer_transfer = transfer(&devnet, &devnet.issuer());
    let hash = node.submit(&issuer_transfer).unwrap();
    node.wait_committed(&hash, TIMEOUT).unwrap();
    devnet.stop(&[]);
    for stdout in devnet.verify_chains(&[1, 2, 3, 4]) {
        assert!(stdout.contains("chain verified"), "{stdout}");
    }
}

#[test]
fn a_proposal_that_cannot_be_applied_is_refused_with_its_reason_and_changes_nothing() {
    let _serial = serial();
    let devnet = TestDevnet::up(4, 25_200, None);
    let node = devnet.node(1);
    let (_, admin) = devnet.enrolled_identities(1, 1, Role::Admin).remove(0);
    let admin_key = admin.join("private-key.pem");
    let (_, client) = devnet.enrolled_identities(1, 1, Role::Client).remove(0);
    let before = consortium(node);
    let validator: PublicKey =
        serde_json::from_value(before["validators"][0]["public_key"].clone()).unwrap();
    let changes = devnet.directory().join("changes.json");
    let nobody = pactum_types::Keypair::from_seed(&[9; 32]).public_key();
    let cases: [(&str, Value, &str); 4] = [
        (
            "remove one of four validators",
            serde_json::json!([{ "change": "remove_validator", "validator": validator }]),
            "would have 3 validators; PBFT needs 4",
        ),
        (
            "remove a validator that does not exist",
            serde_json::json!([{ "change": "remove_validator", "validator": nobody }]),
            "no validator has key",
        ),
        (
            "an impossible policy",
            serde_json::json!([{
                "change": "set_policy",
                "class": "membership",
                "policy": { "rule": "at_least", "count": 5 }
            }]),
            "could never be met",
        ),
        (
            "remove a member that runs validators",
            serde_json::json!([{ "change": "remove_member", "organisation": "Member 4" }]),
            "runs 1 validators",
        ),
    ];
    for (what, json, expected) in cases {
        std::fs::write(&changes, json.to_string()).unwrap();
        let arguments = ["propose", "--title", what, "--changes", changes.to_str().unwrap()];
        let (success, stdout) = run_gov(node, Some(&admin_key), &arguments);
        assert!(!success, "{what}: {stdout}");
        assert!(stdout.contains("reverted") && stdout.contains(expected), "{what}: {stdout}");
    }
    // The dry run says the same before anyone signs, with the size before and after: from
    // the command line...
    let remove = serde_json::json!([{ "change": "remove_validator", "validator": validator }]);
    std::fs::write(&changes, remove.to_string()).unwrap();
    let arguments =
        ["propose", "--dry-run", "--title", "check", "--changes", changes.to_str().unwrap()];
    let (success, stdout) = run_gov(node, Some(&admin_key), &arguments);
    assert!(!success, "{stdout}");
    assert!(stdout.contains("before: 4 members, n = 4, f = 1, quorum 3"), "{stdout}");
    assert!(stdout.contains("refused: ") && stdout.contains("would have 3 validators"), "{stdout}");
    // ... and from the REST API.
    let new_member_ca = {
        let pki = devnet.directory().join("dry-run-ca");
        openssl_chain(&pki, "Member 5", "client", "nobody");
        let pem = std::fs::read(pki.join("root.pem")).unwrap();
        hex::encode(pactum_certs::identity::certificates_from_pem(&pem).unwrap().remove(0))
    };
    let body = serde_json::json!({ "changes": [
        { "change": "add_member", "organisation": "Member 5", "ca_certificates_der": [new_member_ca] },
        { "change": "remove_validator", "validator": validator },
    ]});
    let report =
        node.post_json("/v1/proposals/dry-run", &body).unwrap().into_success("dry run").unwrap();
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["checks"][0]["ok"], true, "{report}");
    assert!(report["reason"].as_str().unwrap().contains("would have 3 validators"), "{report}");
    assert_eq!(report["before"], serde_json::json!({"members": 4, "n": 4, "f": 1, "quorum": 3}));
    assert_eq!(report["after"], Value::Null);
    let body = serde_json::json!({ "changes": [body["changes"][0].clone()] });
    let report =
        node.post_json("/v1/proposals/dry-run", &body).unwrap().into_success("dry run").unwrap();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["after"]["members"], 5, "{report}");
    assert_eq!(report["approvals_needed"], 3, "{report}");

    // A client key cannot govern at all.
    let client_key = client.join("private-key.pem");
    let (_, stdout) = run_gov(node, Some(&client_key), &["approve", &"ab".repeat(32)]);
    assert!(stdout.contains("admin certificate"), "{stdout}");
    let after = consortium(node);
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["members"], before["members"]);
    let proposals = node.get("/v1/proposals").unwrap().into_success("proposals").unwrap();
    assert_eq!(proposals["proposals"].as_array().unwrap().len(), 0, "{proposals}");
}

/// An enterprise PKI issues through an intermediate CA: member 4's root, intermediate and
/// validator certificate are made with the openssl command line alone
/// (`tests/pki/openssl-chain.sh`), the genesis lists the root and the intermediate, and
/// validator-4 presents its chain in TLS. It connects, follows the chain and agrees.
#[test]
fn a_validator_whose_certificate_comes_through_an_intermediate_ca_runs() {
    let _serial = serial();
    let devnet = TestDevnet::up_edited(4, 25_400, None, |directory| {
        let pki = directory.join("openssl-member-4");
        openssl_chain(&pki, "Member 4", "validator", "validator-4");
        let read = |file: &str| std::fs::read_to_string(pki.join(file)).unwrap();
        let path = directory.join("genesis.json");
        let mut genesis: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        genesis["organisations"][3]["ca_certificate"] = Value::String(read("ca-chain.pem"));
        genesis["validators"][3]["certificate"] = Value::String(read("leaf-chain.pem"));
        // openssl dates its certificates from the second it signs them (no backdating):
        // the consortium starts just after.
        let issued = pactum_certs::CertificateInfo::from_der(
            &pactum_certs::identity::certificates_from_pem(read("leaf.pem").as_bytes())
                .unwrap()
                .remove(0),
        )
        .unwrap()
        .not_before;
        let start = genesis["genesis_time"].as_i64().unwrap().max(issued + 1);
        genesis["genesis_time"] = Value::from(start);
        std::fs::write(&path, genesis.to_string()).unwrap();
        let validator = directory.join("validators/validator-4");
        std::fs::write(validator.join("certificate.pem"), read("leaf-chain.pem")).unwrap();
        std::fs::write(validator.join("private-key.pem"), read("leaf.key")).unwrap();
        // Member 4 now issues from its intermediate: `devnet up` enrols member 4's admin
        // with a certificate the intermediate issues (the member lists the intermediate).
        let authority = directory.join("organisations/member-4");
        std::fs::write(authority.join("ca-certificate.pem"), read("intermediate.pem")).unwrap();
        std::fs::write(authority.join("ca-private-key.pem"), read("intermediate.key")).unwrap();
    });
    // `devnet up` waited for all four to connect before deploying the samples.
    let status = devnet.status(1);
    let validators = status["validators"].as_array().unwrap();
    assert!(validators.iter().all(|validator| validator["connected"] == true), "{status}");
    let transaction = transfer(&devnet, &devnet.issuer());
    let hash = devnet.node(1).submit(&transaction).unwrap();
    let committed = devnet.node(4).wait_committed(&hash, TIMEOUT).unwrap();
    let height = committed["height"].as_u64().unwrap();
    wait_until("validator-4 at the same height", TIMEOUT, || devnet.height(4) >= height);
    // Validator-4's certificate shows the openssl chain's organisation and is watched.
    let watched = devnet.status(4)["certificates"].clone();
    let own = watched.as_array().unwrap().iter().find(|c| c["kind"] == "node").unwrap().clone();
    assert_eq!(own["organisation"], "Member 4", "{watched}");
    assert!(own["seconds_left"].as_i64().unwrap() > 300 * 86_400, "{own}");
    // Ten certificates watched (its own, four validators', five member CAs: member 4
    // lists its root and its intermediate), none near expiry; each is a metric.
    assert_eq!(watched.as_array().unwrap().len(), 10, "{watched}");
    assert_eq!(devnet.status(4)["warnings"], serde_json::json!([]));
    let metrics = devnet.node(4).get_text("/metrics").unwrap();
    let samples =
        metrics.lines().filter(|line| line.starts_with("pactum_certificate_expiry_seconds{"));
    assert_eq!(samples.count(), 10, "{metrics}");
    let consortium = consortium(devnet.node(4));
    assert_eq!(consortium["members"][3]["ca_certificates"].as_array().unwrap().len(), 2);
}

/// Issues validator-2 a certificate for its own key from member 2's CA with openssl,
/// valid `days`, written over its certificate file; returns the new serial (hex).
fn renew_validator_2(devnet: &TestDevnet, days: u32, key: &Path) -> String {
    let directory = devnet.validator_directory(2);
    let authority = devnet.directory().join("organisations/member-2");
    std::fs::write(
        directory.join("renew.cnf"),
        "[req]\ndistinguished_name=dn\n[dn]\n[leaf]\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    let run = |arguments: &[&str]| {
        let output =
            Command::new("openssl").current_dir(&directory).args(arguments).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    let key = key.to_str().unwrap();
    let subject = "/O=Member 2/OU=validator/CN=validator-2";
    run(&[
        "req",
        "-new",
        "-key",
        key,
        "-subj",
        subject,
        "-config",
        "renew.cnf",
        "-out",
        "renew.csr",
    ]);
    let ca = authority.join("ca-certificate.pem");
    let ca_key = authority.join("ca-private-key.pem");
    run(&[
        "x509",
        "-req",
        "-in",
        "renew.csr",
        "-CA",
        ca.to_str().unwrap(),
        "-CAkey",
        ca_key.to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        &days.to_string(),
        "-extfile",
        "renew.cnf",
        "-extensions",
        "leaf",
        "-out",
        "certificate.pem",
    ]);
    let pem = std::fs::read(directory.join("certificate.pem")).unwrap();
    let der = pactum_certs::identity::certificates_from_pem(&pem).unwrap().remove(0);
    pactum_certs::CertificateInfo::from_der(&der).unwrap().serial_hex()
}

fn own_certificate(devnet: &TestDevnet, validator: usize) -> Value {
    let status = devnet.status(validator);
    status["certificates"].as_array().unwrap().iter().find(|c| c["kind"] == "node").unwrap().clone()
}

/// A certificate renewed for the same key needs no vote: SIGHUP makes the validator
/// present it from the next handshake, its peers accept it, and its expiry is watched
/// (10 days: a warning). A certificate for another key is refused and the old one kept.
#[test]
fn a_validator_renews_its_certificate_for_the_same_key_on_sighup() {
    let _serial = serial();
    let devnet = TestDevnet::up(4, 25_600, None);
    let key = devnet.validator_directory(2).join("private-key.pem");
    let before = own_certificate(&devnet, 2);
    let serial = renew_validator_2(&devnet, 10, &key);
    devnet.signal(2, "HUP");
    wait_until("validator-2 presents its renewed certificate", TIMEOUT, || {
        own_certificate(&devnet, 2)["serial"] == serial.as_str()
    });
    assert_ne!(before["serial"], serial.as_str());
    let warnings = devnet.status(2)["warnings"].clone();
    assert!(
        warnings[0].as_str().unwrap().contains("this validator's certificate (validator-2)")
            && warnings[0].as_str().unwrap().contains("expires within 30 days"),
        "{warnings}"
    );
    // A fresh handshake with validator-2 (validator-3 restarted) takes the new certificate.
    devnet.stop(&[3]);
    devnet.start(&[3]);
    wait_until("validator-3 reconnects to validator-2", TIMEOUT, || {
        devnet.status(3)["validators"][1]["connected"] == true
    });
    let transaction = transfer(&devnet, &devnet.issuer());
    let hash = devnet.node(3).submit(&transaction).unwrap();
    devnet.node(2).wait_committed(&hash, TIMEOUT).unwrap();

    // A certificate for another key is refused; the renewed one stays.
    let stranger = devnet.directory().join("stranger.key");
    let output = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&stranger)
        .output()
        .unwrap();
    assert!(output.status.success());
    renew_validator_2(&devnet, 30, &stranger);
    devnet.signal(2, "HUP");
    wait_until("the refused reload is reported", TIMEOUT, || {
        devnet.status(2)["warnings"].to_string().contains("reload was refused")
    });
    assert_eq!(own_certificate(&devnet, 2)["serial"], serial.as_str());
}

/// A validator process that is not part of the devnet's layout (a joining organisation's),
/// killed when dropped.
struct ExtraValidator {
    child: std::process::Child,
    data: std::path::PathBuf,
}

impl ExtraValidator {
    /// Runs `pactum node run` for the validator in `directory` (certificate.pem,
    /// private-key.pem) of the devnet's chain, peers on `p2p`, REST API on `api`.
    fn start(devnet: &TestDevnet, directory: &Path, p2p: u16, api: u16) -> Self {
        let config = serde_json::json!({
            "genesis": devnet.directory().join("genesis.json"),
            "data_dir": directory.join("data"),
            "certificate": directory.join("certificate.pem"),
            "private_key": directory.join("private-key.pem"),
            "listen": format!("127.0.0.1:{p2p}"),
            "api_listen": format!("127.0.0.1:{api}"),
        });
        let path = directory.join("node.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let log = std::fs::File::create(directory.join("node.log")).unwrap();
        let child = Command::new(pactum_binary())
            .args(["node", "run", "--config"])
            .arg(&path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("pactum runs");
        Self { child, data: directory.join("data") }
    }

    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for ExtraValidator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `pactum ARGUMENTS` and asserts it succeeded.
fn pactum(arguments: &[&str]) -> String {
    let output = Command::new(pactum_binary()).args(arguments).output().expect("pactum runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "pactum {arguments:?} failed:\n{text}");
    text
}

/// The keys that signed block `height`'s commit certificate, as `node` serves it.
fn signers(node: &NodeClient, height: u64) -> Vec<String> {
    let block = node.get(&format!("/v1/blocks/{height}")).unwrap().into_success("block").unwrap();
    block["block"]["certificate"]["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|signature| signature["validator"].as_str().unwrap().to_string())
        .collect()
}

/// Issues a validator certificate `name` under the CA in `authority` into `directory`,
/// and writes its join request for peers on `p2p` and the REST API on `api`; the request's
/// path.
fn validator_join_request(
    authority: &Path,
    directory: &Path,
    name: &str,
    p2p: u16,
    api: u16,
) -> std::path::PathBuf {
    let (authority, out) = (authority.to_str().unwrap(), directory.to_str().unwrap());
    pactum(&[
        "certs",
        "issue",
        "--ca",
        authority,
        "--role",
        "validator",
        "--name",
        name,
        "--san",
        "127.0.0.1",
        "--out",
        out,
    ]);
    let join = directory.join("join.json");
    pactum(&[
        "certs",
        "join-request",
        "--validator",
        out,
        "--name",
        name,
        "--address",
        &format!("127.0.0.1:{p2p}"),
        "--api-address",
        &format!("127.0.0.1:{api}"),
        "--chain-id",
        "pactum-devnet",
        "--out",
        join.to_str().unwrap(),
    ]);
    join
}

/// `pactum gov propose ARGUMENTS` by organisation 1's admin, approved by organisations 2
/// and 3 from their own keys and nodes; the proposal's id.
fn propose_and_approve(
    devnet: &TestDevnet,
    admins: &[std::path::PathBuf],
    arguments: &[&str],
) -> String {
    let id = proposal_id_in(&gov(devnet.node(1), &admins[0], arguments));
    gov(devnet.node(2), &admins[1], &["approve", &id]);
    gov(devnet.node(3), &admins[2], &["approve", &id]);
    id
}

/// The admin keys of organisations 1 to 3 (the genesis policy needs three) and a client of
/// organisation 2, enrolled.
fn admins_and_client(devnet: &TestDevnet) -> (Vec<std::path::PathBuf>, pactum_types::Keypair) {
    let admins = (1..=3)
        .map(|organisation| {
            devnet
                .enrolled_identities(organisation, 1, Role::Admin)
                .remove(0)
                .1
                .join("private-key.pem")
        })
        .collect();
    let (client, _) = devnet.enrolled_identities(2, 1, Role::Client).remove(0);
    (admins, client)
}

/// "Member 5" onboarded: its CA, validator certificate and join request (3 commands), a
/// proposal by `admins[0]` approved by `admins[1]` and `admins[2]` (3 commands), and its
/// validator started from the genesis (1 command), peers on `p2p`, REST API on `api`.
struct Onboarded {
    validator: ExtraValidator,
    node: NodeClient,
    key: String,
    commands: usize,
    started: std::time::Instant,
}

fn onboard_member_5(
    devnet: &TestDevnet,
    admins: &[std::path::PathBuf],
    p2p: u16,
    api: u16,
) -> Onboarded {
    let node = devnet.node(1);
    let joining = devnet.directory().join("member-5");
    let (ca, validator) = (joining.join("ca"), joining.join("validator-5"));
    pactum(&["certs", "init-ca", "--org", "Member 5", "--out", ca.to_str().unwrap()]);
    let join = validator_join_request(&ca, &validator, "validator-5", p2p, api);
    let started = std::time::Instant::now();
    let id = propose_and_approve(
        devnet,
        admins,
        &[
            "propose",
            "--title",
            "Onboard Member 5",
            "--add-member",
            ca.join("ca-certificate.pem").to_str().unwrap(),
            "--add-validator",
            join.to_str().unwrap(),
        ],
    );
    assert_eq!(proposal(node, &id)["status"], "applied");
    let planned = consortium(node);
    assert_eq!(planned["epoch"], 0, "{planned}");
    assert_eq!(planned["planned_epoch"]["validators"].as_array().unwrap().len(), 5, "{planned}");
    assert_eq!(planned["planned_epoch"]["last"], Value::Null, "not before it is ready");
    let key = planned["planned_epoch"]["waiting"][0].as_str().unwrap().to_string();
    let extra = ExtraValidator::start(devnet, &validator, p2p, api);
    wait_until("the epoch with five validators", Duration::from_secs(120), || {
        devnet.status(1)["epoch"] == 1 && devnet.status(1)["n"] == 5
    });
    Onboarded {
        validator: extra,
        node: NodeClient::new(&format!("http://127.0.0.1:{api}")),
        key,
        commands: 7,
        started,
    }
}

fn proposal_id_in(output: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix("proposal id: "))
        .unwrap_or_else(|| panic!("no proposal id in:\n{output}"))
        .trim()
        .to_string()
}

/// Commits a transfer through `node` and returns the height it committed at.
fn commit_through(devnet: &TestDevnet, node: &NodeClient, client: &pactum_types::Keypair) -> u64 {
    let hash = node.submit(&transfer_via(devnet, node, client)).unwrap();
    node.wait_committed(&hash, Duration::from_secs(90)).unwrap();
    node.status().unwrap()["height"].as_u64().unwrap()
}

/// Issue 14, acceptance 1: a fifth organisation, with its own CA and validator, is
/// onboarded by one proposal that three organisations approve from their own admin keys.
/// Its validator catches up as an observer, announces itself ready, and from the epoch
/// boundary on it votes (its signatures are in commit certificates); n = 5 then keeps
/// committing with a validator killed, and every data directory audits clean across the
/// epochs. Prints the onboarding figure (commands, seconds from proposal to voting).
#[test]
fn a_fifth_organisation_is_onboarded_with_one_proposal_and_its_validator_votes() {
    let _serial = serial();
    let devnet = TestDevnet::up(4, 25_800, None);
    let node = devnet.node(1);
    let (admins, client) = admins_and_client(&devnet);
    let mut fifth = onboard_member_5(&devnet, &admins, 25_804, 25_904);
    // It votes: its signature is in a commit certificate of the new epoch.
    let first = consortium(node)["epoch_start"].as_u64().unwrap() + 1;
    let mut voted_at = None;
    wait_until("validator-5's signature in a commit certificate", TIMEOUT, || {
        let height = commit_through(&devnet, node, &client);
        voted_at = (first..=height).find(|height| signers(node, *height).contains(&fifth.key));
        voted_at.is_some()
    });
    let seconds = fifth.started.elapsed().as_secs_f64();
    println!(
        "onboarding figure: {} commands (3 by the new organisation, 1 proposal, 2 \
         approvals, 1 to start its validator); {seconds:.1} s from the proposal to the new \
         validator's first commit signature (block {})",
        fifth.commands,
        voted_at.unwrap()
    );
    let status = fifth.node.status().unwrap();
    assert_eq!(status["epoch"], 1, "{status}");
    assert_eq!(status["replica_id"], 4, "{status}");

    // n = 5 tolerates one fault: with validator-1 killed, the other four commit.
    devnet.kill(1);
    let height = commit_through(&devnet, devnet.node(2), &client);
    assert!(signers(devnet.node(2), height).contains(&fifth.key));

    // Every data directory audits clean across the epochs, the new one's too.
    devnet.stop(&[2, 3, 4]);
    fifth.validator.stop();
    audit_every_data_directory(&devnet, &fifth.validator.data);
}

/// Issue 14, acceptance 2: with five validators (Member 5 onboarded), a proposal removes
/// validator-4. It takes effect at the next epoch boundary, scheduled at once: the four
/// left keep committing, validator-4 no longer votes, its peers drop it (it can no longer
/// follow them), and every data directory audits clean across three epochs.
#[test]
fn a_removed_validator_stops_at_the_boundary_and_the_four_left_keep_committing() {
    let _serial = serial();
    let devnet = TestDevnet::up(4, 26_000, None);
    let node = devnet.node(1);
    let (admins, client) = admins_and_client(&devnet);
    let mut fifth = onboard_member_5(&devnet, &admins, 26_004, 26_104);
    let removed = consortium(node)["validators"][3]["public_key"].as_str().unwrap().to_string();
    assert_eq!(consortium(node)["validators"][3]["name"], "validator-4");

    propose_and_approve(
        &devnet,
        &admins,
        &["propose", "--title", "Retire validator-4", "--remove-validator", &removed],
    );
    let planned = consortium(node);
    assert!(planned["planned_epoch"]["last"].is_u64(), "a removal needs no readiness: {planned}");
    wait_until("the epoch without validator-4", Duration::from_secs(120), || {
        commit_through(&devnet, node, &client);
        devnet.status(1)["epoch"] == 2 && devnet.status(1)["n"] == 4
    });
    let boundary = consortium(node)["epoch_start"].as_u64().unwrap();
    let height = commit_through(&devnet, node, &client);
    let signed: Vec<String> = (boundary + 1..=height).flat_map(|h| signers(node, h)).collect();
    assert!(
        !signed.is_empty() && !signed.contains(&removed),
        "validator-4 voted after the boundary"
    );
    // Validator-5 takes part in epoch 2 (a quorum is 3 of 4, so a certificate may or
    // may not carry its signature).
    wait_until("validator-5 in epoch 2 at the others' height", TIMEOUT, || {
        let status = fifth.node.status().unwrap();
        status["epoch"] == 2
            && status["replica_id"] == 4
            && status["height"].as_u64() >= Some(height)
    });
    // Validator-4 is an observer now; its former peers no longer serve it.
    let status = devnet.status(4);
    assert_eq!(status["replica_id"], Value::Null, "{status}");
    let names: Vec<String> = devnet.status(1)["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|validator| validator["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["validator-1", "validator-2", "validator-3", "validator-5"]);
    // The epochs, newest first: five validators in epoch 1, four in 0 and 2.
    let epochs = node.get("/v1/epochs").unwrap().into_success("epochs").unwrap();
    let listed: Vec<(u64, u64)> = epochs["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|epoch| (epoch["epoch"].as_u64().unwrap(), epoch["n"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, [(2, 4), (1, 5), (0, 4)], "{epochs}");
    assert_eq!(epochs["epochs"][1]["last"], boundary, "{epochs}");
    assert_eq!(epochs["epochs"][0]["last"], Value::Null, "{epochs}");
    let page = node.get("/v1/epochs?limit=1&before=2").unwrap().into_success("epochs").unwrap();
    assert_eq!(page["epochs"][0]["epoch"], 1, "{page}");
    assert_eq!(page["next"], 1, "{page}");
    let stalled = devnet.height(4);
    for _ in 0..3 {
        commit_through(&devnet, node, &client);
    }
    assert!(
        devnet.height(4) <= stalled.max(boundary),
        "the removed validator was still served blocks"
    );

    devnet.stop(&[]);
    fifth.validator.stop();
    audit_every_data_directory(&devnet, &fifth.validator.data);
}

/// `pactum chain verify` passes on the four devnet validators' data directories and on
/// `extra` (a validator outside the devnet's layout), across every epoch.
fn audit_every_data_directory(devnet: &TestDevnet, extra: &Path) {
    for output in devnet.verify_chains(&[1, 2, 3, 4]) {
        assert!(output.contains("chain verified"), "{output}");
    }
    let audit = pactum(&["chain", "verify", "--data-dir", extra.to_str().unwrap()]);
    assert!(audit.contains("chain verified"), "{audit}");
}

/// How many connections validator `validator` refused for `reason` (its metrics).
fn peer_rejections(devnet: &TestDevnet, validator: usize, reason: &str) -> u64 {
    let text = devnet.node(validator).get_text("/metrics").unwrap();
    let prefix = format!("pactum_peer_rejections_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.trim().parse().unwrap())
}

/// Issue 14, acceptance 3 (the validator half): one bundle removes validator-4, adds it
/// again with a new key and revokes its old certificate. From the next block the old
/// certificate is refused: the live connections resting on it are closed and its next
/// handshakes refused. Validator-4 restarts with its new key, catches up, announces
/// itself ready and votes from the epoch boundary on; the chain audits clean.
#[test]
fn a_validator_key_is_rotated_and_its_old_certificate_revoked_in_one_bundle() {
    let _serial = serial();
    let devnet = TestDevnet::up(4, 26_400, None);
    let node = devnet.node(1);
    let (admins, client) = admins_and_client(&devnet);
    let old_key = consortium(node)["validators"][3]["public_key"].as_str().unwrap().to_string();
    let old_certificate = devnet.validator_directory(4).join("certificate.pem");

    // The new key, from member 4's CA, for the same name and addresses.
    let rotated = devnet.directory().join("validator-4-rotated");
    let authority = devnet.directory().join("organisations/member-4");
    let (p2p, api) = (devnet.peer_address(4).port(), devnet.api_address(4).port());
    let join = validator_join_request(&authority, &rotated, "validator-4", p2p, api);
    let revoked_before = peer_rejections(&devnet, 1, "revoked");
    let id = propose_and_approve(
        &devnet,
        &admins,
        &[
            "propose",
            "--title",
            "Rotate validator-4's key",
            "--remove-validator",
            &old_key,
            "--add-validator",
            join.to_str().unwrap(),
            "--revoke-certificate",
            old_certificate.to_str().unwrap(),
        ],
    );
    assert_eq!(proposal(node, &id)["status"], "applied");

    // The old certificate is refused at once: its connections are closed, and validator-4,
    // still running with it, is turned away when it connects again.
    wait_until("the old certificate refused by TLS", TIMEOUT, || {
        peer_rejections(&devnet, 1, "revoked") > revoked_before
    });
    // Three validators still make a quorum of the four.
    commit_through(&devnet, node, &client);

    // Validator-4 comes back with its new key (and a fresh data directory).
    devnet.stop(&[4]);
    let mut restarted = ExtraValidator::start(&devnet, &rotated, p2p, api);
    wait_until("the epoch with validator-4's new key", Duration::from_secs(120), || {
        commit_through(&devnet, node, &client);
        devnet.status(1)["epoch"] == 1
    });
    let after = consortium(node);
    let keys: Vec<&str> = after["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|validator| validator["public_key"].as_str().unwrap())
        .collect();
    assert!(!keys.contains(&old_key.as_str()), "{after}");
    assert_eq!(after["validators"][3]["name"], "validator-4", "{after}");
    assert_eq!(after["validators"][3]["index"], 4, "a new key is a new replica id: {after}");
    let height = commit_through(&devnet, node, &client);
    let rotated_node = NodeClient::new(&format!("http://127.0.0.1:{api}"));
    wait_until("validator-4 voting with its new key", TIMEOUT, || {
        let status = rotated_node.status().unwrap();
        status["epoch"] == 1
            && status["replica_id"] == 4
            && status["height"].as_u64() >= Some(height)
    });

    devnet.stop(&[1, 2, 3]);
    restarted.stop();
    audit_every_data_directory(&devnet, &restarted.data);
}

/// The gas a committed transaction used, from `node`'s answer about it.
fn gas_used(node: &NodeClient, hash: &pactum_types::Hash) -> u64 {
    let answer = node.wait_committed(hash, TIMEOUT).unwrap();
    answer["receipt"]["gas_used"].as_u64().unwrap_or_else(|| panic!("no gas used in {answer}"))
}

/// Issue 14, build point 3 (parameters and the gas schedule): one proposal sets a lower
/// block gas limit and a smaller checkpoint interval and window for the next epoch, and a
/// dearer `call_base` from the next block. The schedule applies at once (the same
/// transfer costs 1,000 gas more), the parameters at the epoch boundary: the new epoch's
/// replicas checkpoint every 8 blocks, and a transaction over the new block gas limit is
/// refused at the door with the limit. Proposals that break a rule are refused with
/// their reason. Every data directory audits clean across the change.
#[test]
fn parameters_and_the_gas_schedule_change_by_proposal_without_a_restart() {
    let _serial = serial();
    let devnet = TestDevnet::up(4, 26_400, None);
    let node = devnet.node(1);
    let (admins, client) = admins_and_client(&devnet);
    let before = consortium(node);
    assert_eq!(before["parameters"]["checkpoint_interval"], 16, "{before}");
    assert_eq!(before["gas_schedule"]["version"], 1, "{before}");
    // Refused with a clear reason, nothing proposed: a limit out of range, an interval
    // that neither divides nor is a multiple of the current one, a name that is not one.
    for (flags, reason) in [
        (vec!["--set-parameter", "block_gas_max=10"], "block_gas_max must be"),
        (
            vec![
                "--set-parameter",
                "checkpoint_interval=24",
                "--set-parameter",
                "watermark_window=96",
            ],
            "multiple or a divisor of the current 16",
        ),
        (vec!["--set-parameter", "block_gas_limit=1"], "have no \"block_gas_limit\""),
        (vec!["--set-gas", "storage_write_base=1"], "storage writes must cost more than reads"),
    ] {
        let mut arguments = vec!["propose", "--title", "bad", "--dry-run"];
        arguments.extend(flags);
        let (success, output) = run_gov(node, Some(&admins[0]), &arguments);
        assert!(!success && output.contains(reason), "{arguments:?}:\n{output}");
    }
    assert_eq!(consortium(node)["version"], before["version"], "nothing changed");

    // The same transfer twice before, to know what it costs by schedule version 1.
    commit_through(&devnet, node, &client);
    let cost_v1 = gas_used(node, &node.submit(&transfer(&devnet, &client)).unwrap());
    let id = propose_and_approve(
        &devnet,
        &admins,
        &[
            "propose",
            "--title",
            "Smaller blocks, tighter checkpoints, dearer calls",
            "--set-parameter",
            "block_gas_max=20000000",
            "--set-parameter",
            "checkpoint_interval=8",
            "--set-parameter",
            "watermark_window=32",
            "--set-gas",
            "call_base=3000",
        ],
    );
    assert_eq!(proposal(node, &id)["status"], "applied");
    let planned = consortium(node);
    assert_eq!(planned["gas_schedule"]["version"], 2, "{planned}");
    assert_eq!(planned["gas_schedule"]["call_base"], 3000, "{planned}");
    assert_eq!(planned["parameters"]["block_gas_max"], before["parameters"]["block_gas_max"]);
    assert_eq!(planned["planned_epoch"]["parameters"]["block_gas_max"], 20_000_000);
    assert!(planned["planned_epoch"]["last"].is_u64(), "nobody to wait for: {planned}");
    // From the next block, contracts are charged by version 2.
    let cost_v2 = gas_used(node, &node.submit(&transfer(&devnet, &client)).unwrap());
    assert_eq!(cost_v2, cost_v1 + 1_000, "call_base went from 2,000 to 3,000");

    wait_until("the epoch with the new parameters", Duration::from_secs(120), || {
        commit_through(&devnet, node, &client);
        devnet.status(1)["epoch"] == 1
    });
    let entered = consortium(node);
    assert_eq!(entered["parameters"]["block_gas_max"], 20_000_000, "{entered}");
    assert_eq!(entered["parameters"]["checkpoint_interval"], 8, "{entered}");
    assert_eq!(entered["planned_epoch"], Value::Null, "{entered}");
    // The new epoch's replicas checkpoint every 8 blocks: a stable checkpoint that the old
    // interval of 16 would never have taken.
    wait_until("a checkpoint at an odd multiple of 8", Duration::from_secs(120), || {
        commit_through(&devnet, node, &client);
        (1..=4).all(|validator| devnet.status(validator)["epoch"] == 1)
            && devnet.status(1)["stable_checkpoint"].as_u64().is_some_and(|c| c % 16 == 8)
    });
    // A transaction over the new block gas limit is refused at the door, with the limit.
    let call = Payload::CallContract {
        contract: devnet.contract("token"),
        method: "transfer".into(),
        input: encode_arguments(&[format!("account:{}", client.public_key()), "u128:0".into()])
            .unwrap(),
    };
    let heavy = sign_payload(node, &client, call, 30_000_000, None).unwrap();
    let error = node.submit(&heavy).unwrap_err().to_string();
    assert!(error.contains("exceeds the maximum 20000000"), "{error}");
    commit_through(&devnet, node, &client);

    devnet.stop(&[]);
    for output in devnet.verify_chains(&[1, 2, 3, 4]) {
        assert!(output.contains("chain verified"), "{output}");
    }
}
