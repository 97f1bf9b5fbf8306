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

/// Runs `pactum gov ARGUMENTS --key KEY --node NODE` and returns its standard output;
/// a failure exit fails the test with both outputs.
fn gov(node: &NodeClient, key: &Path, arguments: &[&str]) -> String {
    let output = Command::new(pactum_binary())
        .arg("gov")
        .args(arguments)
        .arg("--key")
        .arg(key)
        .args(["--node", node.base()])
        .output()
        .expect("pactum runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "pactum gov {arguments:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
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
    let input =
        encode_arguments(&[format!("account:{}", client.public_key()), "u128:0".into()]).unwrap();
    let call = Payload::CallContract {
        contract: devnet.contract("token"),
        method: "transfer".into(),
        input,
    };
    sign_payload(devnet.node(1), client, call, 10_000_000, None).unwrap()
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
    let listed = Command::new(pactum_binary())
        .args(["gov", "list", "--status", "applied", "--node", node.base()])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
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
    // The consortium keeps committing.
    let issuer_transfer = transfer(&devnet, &devnet.issuer());
    let hash = node.submit(&issuer_transfer).unwrap();
    node.wait_committed(&hash, TIMEOUT).unwrap();
}

#[test]
fn a_proposal_that_cannot_be_applied_is_refused_with_its_reason_and_changes_nothing() {
    let _serial = serial();
    let devnet = TestDevnet::up(4, 25_200, None);
    let node = devnet.node(1);
    let (_, admin) = devnet.enrolled_identities(1, 1, Role::Admin).remove(0);
    let (_, client) = devnet.enrolled_identities(1, 1, Role::Client).remove(0);
    let before = consortium(node);
    let validator: PublicKey =
        serde_json::from_value(before["validators"][0]["public_key"].clone()).unwrap();
    let changes = devnet.directory().join("changes.json");
    let cases: [(&str, Value, &str); 3] = [
        (
            "remove a validator",
            serde_json::json!([{ "change": "remove_validator", "validator": validator }]),
            "epoch reconfiguration is not implemented yet",
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
        let output = Command::new(pactum_binary())
            .args(["gov", "propose", "--title", what, "--changes"])
            .arg(&changes)
            .arg("--key")
            .arg(admin.join("private-key.pem"))
            .args(["--node", node.base()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{what}: {stdout}");
        assert!(stdout.contains("reverted") && stdout.contains(expected), "{what}: {stdout}");
    }
    // A client key cannot govern at all.
    std::fs::write(&changes, "[]").unwrap();
    let output = Command::new(pactum_binary())
        .args(["gov", "approve", &"ab".repeat(32), "--key"])
        .arg(client.join("private-key.pem"))
        .args(["--node", node.base()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("admin certificate"), "{stdout}");
    let after = consortium(node);
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["members"], before["members"]);
    let proposals = node.get("/v1/proposals").unwrap().into_success("proposals").unwrap();
    assert_eq!(proposals["proposals"].as_array().unwrap().len(), 0, "{proposals}");
}
