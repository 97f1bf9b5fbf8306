//! The executor enforces who may transact, whatever the primary ordered: a signer must be
//! enrolled, unrevoked and unexpired at the block's time (issue 9's first finding: a
//! Byzantine primary got transactions from unenrolled keys committed, because only an
//! honest node's mempool checked enrolment).

mod common;

use std::sync::Arc;

use common::{Account, GENESIS_TIME_MS, chain_id, next_block_at, reason, status_name};
use pactum_certs::authority::{IssueRequest, create_authority, issue};
use pactum_certs::identity::{CertificateInfo, certificates_from_pem};
use pactum_certs::verify::TrustStore;
use pactum_certs::{Role, tls::ed25519_seed_of_pem};
use pactum_executor::{Executor, ExecutorOptions};
use pactum_storage::Store;
use pactum_types::{Address, Keypair, Payload, Receipt};
use pactum_vm::VmOptions;

const DAY_MS: u64 = 86_400_000;

struct Member {
    certificate_pem: String,
    key_pem: String,
}

impl Member {
    fn new(trust: &TrustStore) -> Self {
        let at = (GENESIS_TIME_MS / 1000) as i64 - 86_400;
        let authority = create_authority("Member 1", at, 3650).unwrap();
        let der = certificates_from_pem(authority.certificate_pem.as_bytes()).unwrap();
        trust.add_authority(&der[0]).unwrap();
        Self { certificate_pem: authority.certificate_pem, key_pem: authority.private_key_pem }
    }

    /// A client certificate valid for `days` from a day before genesis, and its key.
    fn client(&self, name: &str, days: u32) -> (Account, Vec<u8>, CertificateInfo) {
        let request = IssueRequest {
            role: Role::Client,
            name,
            subject_alt_names: &[],
            at: (GENESIS_TIME_MS / 1000) as i64 - 86_400,
            days,
        };
        let issued = issue(&self.certificate_pem, &self.key_pem, &request).unwrap();
        let seed = ed25519_seed_of_pem(&issued.private_key_pem).unwrap();
        let der = certificates_from_pem(issued.certificate_pem.as_bytes()).unwrap().remove(0);
        let info = CertificateInfo::from_der(&der).unwrap();
        let account = Account { keypair: Keypair::from_seed(&seed), next_nonce: 0 };
        (account, der, info)
    }
}

fn open(directory: &std::path::Path, trust: Arc<TrustStore>) -> Executor {
    let store = Store::open(directory.join("db")).unwrap();
    let options = ExecutorOptions {
        vm: VmOptions {
            artifact_directory: Some(directory.join("artifacts")),
            ..VmOptions::default()
        },
        trust: Some(trust),
        ..ExecutorOptions::new(chain_id())
    };
    Executor::open(store, options).unwrap()
}

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
    let trust = Arc::new(TrustStore::new());
    let member = Member::new(&trust);
    let mut executor = open(directory.path(), Arc::clone(&trust));
    let (mut client, der, info) = member.client("client", 30);
    let (mut short_lived, short_der, _) = member.client("short-lived", 2);
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

    // Revoked: from the next block on, the client's transactions do not run.
    trust.revoke(&info.organisation, &info.serial);
    let receipts = run(&mut executor, vec![call_nowhere(&mut client)], later + 1_000);
    assert_eq!(status_name(&receipts[0].status), "invalid", "{receipts:?}");
    assert!(reason(&receipts[0].status).contains("revoked"), "{receipts:?}");
}
