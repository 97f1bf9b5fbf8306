//! The executor enforces who may transact, whatever the primary ordered: a signer must be
//! enrolled, unrevoked and unexpired at the block's time (issue 9's first finding: a
//! Byzantine primary got transactions from unenrolled keys committed, because only an
//! honest node's mempool checked enrolment).

mod common;

use common::members::{Organisation, consortium, open_governed};
use common::{Account, GENESIS_TIME_MS, next_block_at, reason, status_name};
use pactum_certs::Role;
use pactum_executor::Executor;
use pactum_types::{Address, GovernanceAction, GovernanceChange, Payload, Receipt};

const DAY_MS: u64 = 86_400_000;

fn run(
    executor: &mut Executor,
    transactions: Vec<pactum_types::Transaction>,
    at: u64,
) -> Vec<Receipt> {
    let block = next_block_at(executor, transactions, at);
    executor.execute_block(&block).unwrap().receipts
}

fn enrol(account: &mut Account, der: &[u8]) -> pactum_types::Transaction {
    account.sign(1_000_000, Payload::EnrolIdentity { certificate_der: der.to_vec() })
}

fn call_nowhere(account: &mut Account) -> pactum_types::Transaction {
    let payload = Payload::CallContract {
        contract: Address([0x55; 32]),
        method: "anything".into(),
        input: Vec::new(),
    };
    account.sign(1_000_000, payload)
}

#[test]
fn a_block_from_a_byzantine_primary_cannot_run_a_transaction_of_a_key_the_ledger_does_not_accept() {
    let directory = tempfile::tempdir().unwrap();
    let member = Organisation::new("Member 1");
    let mut executor = open_governed(directory.path(), &consortium(&[&member], 1));
    let identity = member.identity(Role::Client, "client", 30);
    let (mut client, der, info) = (identity.account, identity.der, identity.info);
    let short = member.identity(Role::Client, "short-lived", 2);
    let (mut short_lived, short_der) = (short.account, short.der);
    let mut admin = member.identity(Role::Admin, "admin", 30);
    let mut stranger = Account::new(77);
    let t0 = GENESIS_TIME_MS;

    // A stranger's call, ordered before any enrolment: the primary's mempool would have
    // refused it, but a Byzantine primary ordered it anyway.
    let receipts = run(
        &mut executor,
        vec![
            call_nowhere(&mut stranger),
            enrol(&mut client, &der),
            enrol(&mut short_lived, &short_der),
            call_nowhere(&mut client),
        ],
        t0,
    );
    let statuses: Vec<&str> = receipts.iter().map(|receipt| status_name(&receipt.status)).collect();
    assert_eq!(statuses, ["invalid", "success", "success", "reverted"], "{receipts:?}");
    assert!(reason(&receipts[0].status).contains("not an enrolled identity"), "{receipts:?}");
    // The refused transaction used no nonce: the stranger's next nonce is still 0.
    assert_eq!(executor.next_nonce(&stranger.keypair.public_key()).unwrap(), 0);

    // Expired at the block's time: two days after issue plus a day of margin.
    let later = t0 + 3 * DAY_MS;
    let receipts =
        run(&mut executor, vec![call_nowhere(&mut short_lived), call_nowhere(&mut client)], later);
    assert_eq!(status_name(&receipts[0].status), "invalid", "{receipts:?}");
    assert!(reason(&receipts[0].status).contains("expired"), "{receipts:?}");
    assert_eq!(status_name(&receipts[1].status), "reverted", "{receipts:?}");

    // Revoked by governance (one member, one approval): from the next block on, the
    // client's transactions do not run.
    let revoke = GovernanceAction::Propose {
        title: "revoke the client".into(),
        description: String::new(),
        expires_at_height: 100,
        changes: vec![GovernanceChange::RevokeCertificate {
            organisation: info.organisation.clone(),
            serial: info.serial,
        }],
    };
    let receipts = run(
        &mut executor,
        vec![admin.enrol(), admin.govern(revoke), call_nowhere(&mut client)],
        later,
    );
    let statuses: Vec<&str> = receipts.iter().map(|receipt| status_name(&receipt.status)).collect();
    assert_eq!(
        statuses,
        ["success", "success", "reverted"],
        "the revocation applies after its block"
    );
    let receipts = run(&mut executor, vec![call_nowhere(&mut client)], later + 1_000);
    assert_eq!(status_name(&receipts[0].status), "invalid", "{receipts:?}");
    assert!(reason(&receipts[0].status).contains("revoked"), "{receipts:?}");
}
