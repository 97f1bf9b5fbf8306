//! Governance transactions run by the executor: proposals open, collect one vote per
//! organisation from admin keys, pass at their policy and apply at the end of their
//! block; what they change is in force from the next block, readable at any height, and
//! survives a restart.

mod common;

use common::members::{Identity, Organisation, consortium, open_governed};
use common::{GENESIS_TIME_MS, next_block_at, reason, status_name};
use pactum_certs::Role;
use pactum_executor::Executor;
use pactum_governance::{Consortium, Status};
use pactum_storage::StoreRead;
use pactum_types::gas::GasSchedule;
use pactum_types::{
    Address, ChangeClass, ConsensusParameters, GovernanceAction, GovernanceChange, Hash, Payload,
    Policy, Receipt, Transaction,
};

struct Fixture {
    _directory: tempfile::TempDir,
    executor: Executor,
    organisations: Vec<Organisation>,
    /// One enrolled admin per organisation.
    admins: Vec<Identity>,
    genesis: Consortium,
}

/// Four members, every class needing three approvals, an admin of each enrolled.
fn fixture() -> Fixture {
    let directory = tempfile::tempdir().unwrap();
    let organisations: Vec<Organisation> =
        ["Org A", "Org B", "Org C", "Org D"].iter().map(|name| Organisation::new(name)).collect();
    let genesis = consortium(&organisations.iter().collect::<Vec<_>>(), 3);
    let mut executor = open_governed(directory.path(), &genesis);
    let mut admins: Vec<Identity> = organisations
        .iter()
        .map(|organisation| organisation.identity(Role::Admin, "admin", 365))
        .collect();
    let enrolments = admins.iter_mut().map(Identity::enrol).collect();
    let receipts = run(&mut executor, enrolments);
    assert!(receipts.iter().all(|receipt| status_name(&receipt.status) == "success"));
    Fixture { _directory: directory, executor, organisations, admins, genesis }
}

/// Four members with one validator each, every class needing three approvals, an admin
/// of each enrolled; PBFT checkpoints every 2 blocks, window 4.
fn fixture_with_validators() -> Fixture {
    let directory = tempfile::tempdir().unwrap();
    let organisations: Vec<Organisation> =
        ["Org A", "Org B", "Org C", "Org D"].iter().map(|name| Organisation::new(name)).collect();
    let validators = organisations
        .iter()
        .enumerate()
        .map(|(index, organisation)| organisation.validator(index as u16, &format!("v{index}")).0)
        .collect();
    let members = organisations.iter().map(Organisation::member).collect();
    let parameters =
        ConsensusParameters { checkpoint_interval: 2, watermark_window: 4, ..Default::default() };
    let genesis = Consortium::genesis(members, validators, 3, [], parameters);
    let mut executor = open_governed(directory.path(), &genesis);
    let mut admins: Vec<Identity> = organisations
        .iter()
        .map(|organisation| organisation.identity(Role::Admin, "admin", 365))
        .collect();
    run(&mut executor, admins.iter_mut().map(Identity::enrol).collect());
    Fixture { _directory: directory, executor, organisations, admins, genesis }
}

fn run(executor: &mut Executor, transactions: Vec<Transaction>) -> Vec<Receipt> {
    let at = GENESIS_TIME_MS + (executor.tip().height + 1) * 1_000;
    let block = next_block_at(executor, transactions, at);
    executor.execute_block(&block).unwrap().receipts
}

fn propose(changes: Vec<GovernanceChange>, expires_at_height: u64) -> GovernanceAction {
    GovernanceAction::Propose {
        title: "a change".into(),
        description: "why".into(),
        expires_at_height,
        changes,
    }
}

fn topics(receipt: &Receipt) -> Vec<&str> {
    receipt.events.iter().map(|event| event.topic.as_str()).collect()
}

fn proposal_status(executor: &Executor, id: &Hash) -> Status {
    executor.reader().snapshot().proposal(id).unwrap().unwrap().status
}

fn call_nowhere(identity: &mut Identity) -> Transaction {
    let payload =
        Payload::CallContract { contract: Address([0x55; 32]), method: "m".into(), input: vec![] };
    identity.account.sign(1_000_000, payload)
}

#[test]
fn a_revocation_passes_at_three_of_four_and_applies_from_the_next_block() {
    let mut f = fixture();
    let mut client = f.organisations[1].identity(Role::Client, "client", 365);
    let receipts = run(&mut f.executor, vec![client.enrol()]);
    assert_eq!(status_name(&receipts[0].status), "success");
    let change = GovernanceChange::RevokeCertificate {
        organisation: "Org B".into(),
        serial: client.info.serial.clone(),
    };
    let proposing = f.admins[0].govern(propose(vec![change], 50));
    let id = proposing.hash();
    let receipts = run(&mut f.executor, vec![proposing]);
    assert_eq!(topics(&receipts[0]), ["governance.proposed"], "{receipts:?}");
    assert_eq!(proposal_status(&f.executor, &id), Status::Open);

    let approve = GovernanceAction::Approve { proposal: id };
    let receipts = run(
        &mut f.executor,
        vec![
            f.admins[1].govern(approve.clone()),
            f.admins[1].govern(approve.clone()),
            f.admins[2].govern(approve),
            call_nowhere(&mut client),
        ],
    );
    let height = f.executor.tip().height;
    assert_eq!(topics(&receipts[0]), ["governance.approved"], "{receipts:?}");
    assert_eq!(status_name(&receipts[1].status), "reverted", "one vote per organisation");
    assert!(reason(&receipts[1].status).contains("already voted"), "{receipts:?}");
    assert_eq!(topics(&receipts[2]), ["governance.approved", "governance.passed"]);
    // In force only after its block: the client's call in the same block still ran.
    assert_eq!(status_name(&receipts[3].status), "reverted", "{receipts:?}");
    assert_eq!(proposal_status(&f.executor, &id), Status::Applied { height });

    let receipts = run(&mut f.executor, vec![call_nowhere(&mut client)]);
    assert_eq!(status_name(&receipts[0].status), "invalid");
    assert!(reason(&receipts[0].status).contains("revoked"), "{receipts:?}");
    // Its certificate enrols nothing again, under another key's name or its own.
    client.account.next_nonce = 0;
    let mut again = Identity { account: client.account, der: client.der, info: client.info };
    let receipts = run(&mut f.executor, vec![again.enrol()]);
    assert_eq!(status_name(&receipts[0].status), "invalid", "{receipts:?}");

    // Readable at any height: version 1 up to the block that applied it, 2 after.
    let snapshot = f.executor.reader().snapshot();
    assert_eq!(snapshot.consortium_at(height).unwrap().unwrap().version, 1);
    assert_eq!(snapshot.consortium_at(height + 1).unwrap().unwrap().version, 2);
    assert_eq!(snapshot.consortium().unwrap().unwrap().version, 2);
    assert_eq!(*snapshot.consortium_at(1).unwrap().unwrap(), f.genesis);
}

#[test]
fn only_admins_of_members_govern_and_bad_proposals_change_nothing() {
    let mut f = fixture();
    let mut client = f.organisations[0].identity(Role::Client, "client", 365);
    run(&mut f.executor, vec![client.enrol()]);
    let add = GovernanceChange::AddMember {
        organisation: "Org E".into(),
        ca_certificates_der: vec![Organisation::new("Org E").ca_der],
    };
    let by_client = client.govern(propose(vec![add.clone()], 50));
    let too_few = f.admins[0].govern(propose(
        vec![GovernanceChange::SetPolicy {
            class: ChangeClass::Membership,
            policy: Policy::AtLeast { count: 5 },
        }],
        50,
    ));
    let past = f.admins[0].govern(propose(vec![add], 1));
    let unknown = f.admins[1].govern(GovernanceAction::Approve { proposal: Hash([3; 32]) });
    let receipts = run(&mut f.executor, vec![by_client, too_few, past, unknown]);
    let reasons: Vec<&str> = receipts.iter().map(|receipt| reason(&receipt.status)).collect();
    assert!(reasons[0].contains("admin certificate"), "{reasons:?}");
    assert!(
        reasons[1].contains("could not be met") || reasons[1].contains("could never be met"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("expiry height"), "{reasons:?}");
    assert!(reasons[3].contains("no proposal"), "{reasons:?}");
    assert!(receipts.iter().all(|receipt| status_name(&receipt.status) == "reverted"));
    // Reverted governance uses its nonce, like any reverted transaction.
    assert_eq!(f.executor.next_nonce(&client.account.keypair.public_key()).unwrap(), 2);
    let snapshot = f.executor.reader().snapshot();
    assert_eq!(*snapshot.consortium().unwrap().unwrap(), f.genesis);
    assert!(snapshot.proposals(None, 10).unwrap().is_empty());
}

#[test]
fn rejections_close_a_proposal_and_open_ones_expire_at_their_height() {
    let mut f = fixture();
    let add = |name: &str| GovernanceChange::AddMember {
        organisation: name.into(),
        ca_certificates_der: vec![Organisation::new(name).ca_der],
    };
    let rejected = f.admins[0].govern(propose(vec![add("Org E")], 50));
    let expiring = f.admins[0].govern(propose(vec![add("Org F")], 4));
    let withdrawn = f.admins[1].govern(propose(vec![add("Org G")], 50));
    let (rejected_id, expiring_id, withdrawn_id) =
        (rejected.hash(), expiring.hash(), withdrawn.hash());
    run(&mut f.executor, vec![rejected, expiring, withdrawn]);
    assert_eq!(f.executor.tip().height, 2);
    let reject = GovernanceAction::Reject { proposal: rejected_id };
    let receipts = run(
        &mut f.executor,
        vec![
            f.admins[1].govern(reject.clone()),
            f.admins[2].govern(reject),
            f.admins[0].govern(GovernanceAction::Withdraw { proposal: withdrawn_id }),
            f.admins[1].govern(GovernanceAction::Withdraw { proposal: withdrawn_id }),
        ],
    );
    assert_eq!(topics(&receipts[1]), ["governance.rejected", "governance.closed"]);
    assert!(reason(&receipts[2].status).contains("only the proposer's organisation"));
    assert_eq!(topics(&receipts[3]), ["governance.withdrawn"]);
    assert_eq!(proposal_status(&f.executor, &rejected_id), Status::Rejected { height: 3 });
    assert_eq!(proposal_status(&f.executor, &withdrawn_id), Status::Withdrawn { height: 3 });
    assert_eq!(proposal_status(&f.executor, &expiring_id), Status::Open);
    run(&mut f.executor, vec![]);
    assert_eq!(proposal_status(&f.executor, &expiring_id), Status::Expired { height: 4 });
    let late = f.admins[1].govern(GovernanceAction::Approve { proposal: expiring_id });
    let receipts = run(&mut f.executor, vec![late]);
    assert!(reason(&receipts[0].status).contains("expired, not open"), "{receipts:?}");
}

#[test]
fn a_removed_members_identities_stop_transacting_and_a_restart_keeps_the_configuration() {
    let mut f = fixture();
    let mut client = f.organisations[3].identity(Role::Client, "client", 365);
    run(&mut f.executor, vec![client.enrol()]);
    let remove = GovernanceChange::RemoveMember { organisation: "Org D".into() };
    let proposing = f.admins[0].govern(propose(vec![remove], 50));
    let id = proposing.hash();
    let approve = GovernanceAction::Approve { proposal: id };
    // Org D may not vote on its own removal; the three others pass it.
    let receipts = run(
        &mut f.executor,
        vec![
            proposing,
            f.admins[3].govern(approve.clone()),
            f.admins[1].govern(approve.clone()),
            f.admins[2].govern(approve),
        ],
    );
    assert!(reason(&receipts[1].status).contains("the proposal removes it"), "{receipts:?}");
    assert_eq!(topics(&receipts[3]), ["governance.approved", "governance.passed"]);
    let receipts = run(&mut f.executor, vec![call_nowhere(&mut client)]);
    assert_eq!(status_name(&receipts[0].status), "invalid");
    assert!(reason(&receipts[0].status).contains("no longer a member"), "{receipts:?}");

    // Reopened on the same store, the executor governs by the stored configuration.
    let directory = f._directory;
    drop(f.executor);
    let mut executor = open_governed(directory.path(), &f.genesis);
    let consortium = executor.consortium().unwrap();
    assert_eq!(consortium.version, 2);
    assert!(!consortium.is_member("Org D"));
    client.account.next_nonce -= 1; // the invalid call used no nonce
    let receipts = run(&mut executor, vec![call_nowhere(&mut client)]);
    assert!(reason(&receipts[0].status).contains("no longer a member"), "{receipts:?}");
}

#[test]
fn two_executors_running_the_same_governance_blocks_agree_on_every_state_root() {
    let mut first = fixture();
    let directory = tempfile::tempdir().unwrap();
    let mut second = open_governed(directory.path(), &first.genesis);
    // Replay the first executor's blocks on the second, then add governance blocks to
    // both, checking the state roots after each.
    let replay = |from: &Executor, to: &mut Executor| {
        for height in to.tip().height + 1..=from.tip().height {
            let block = from.store().block(height).unwrap().unwrap();
            to.execute_block(&block).unwrap();
        }
        assert_eq!(from.tip().state_root, to.tip().state_root);
    };
    replay(&first.executor, &mut second);
    let change = GovernanceChange::SetPolicy {
        class: ChangeClass::Certificates,
        policy: Policy::MoreThan { numerator: 1, denominator: 2 },
    };
    let proposing = first.admins[2].govern(propose(vec![change], 20));
    let id = proposing.hash();
    run(&mut first.executor, vec![proposing]);
    replay(&first.executor, &mut second);
    let approve = GovernanceAction::Approve { proposal: id };
    let votes = vec![first.admins[0].govern(approve.clone()), first.admins[1].govern(approve)];
    run(&mut first.executor, votes);
    replay(&first.executor, &mut second);
    assert_eq!(
        second.consortium().unwrap().policy(ChangeClass::Certificates),
        Policy::MoreThan { numerator: 1, denominator: 2 }
    );
}

#[test]
fn the_deploy_policy_is_checked_before_the_vm_runs_a_deploy() {
    let mut f = fixture();
    let mut alice = f.organisations[0].identity(Role::Client, "alice", 365);
    let mut bob = f.organisations[1].identity(Role::Client, "bob", 365);
    run(&mut f.executor, vec![alice.enrol(), bob.enrol()]);
    let only_a = pactum_types::DeployPolicy::Organisations { organisations: vec!["Org A".into()] };
    let proposing =
        f.admins[0].govern(propose(vec![GovernanceChange::SetDeployPolicy { policy: only_a }], 50));
    let approve = GovernanceAction::Approve { proposal: proposing.hash() };
    let votes = vec![f.admins[1].govern(approve.clone()), f.admins[2].govern(approve)];
    run(&mut f.executor, vec![proposing]);
    run(&mut f.executor, votes);

    let token = pactum_contract_wasm::TOKEN;
    let deploy =
        |identity: &mut Identity| identity.account.deploy(token, common::token_init("Coin"));
    let receipts = run(&mut f.executor, vec![deploy(&mut bob), deploy(&mut alice)]);
    assert_eq!(status_name(&receipts[0].status), "reverted", "{receipts:?}");
    assert!(reason(&receipts[0].status).contains("Org A only"), "{receipts:?}");
    assert!(receipts[0].gas_used > 0, "a refused deploy pays the deploy charge");
    assert_eq!(status_name(&receipts[1].status), "success", "{receipts:?}");

    // By proposal: only approved code deploys, from any member.
    let pass = |changes: Vec<GovernanceChange>, f: &mut Fixture| {
        let proposing = f.admins[0].govern(propose(changes, 50));
        let approve = GovernanceAction::Approve { proposal: proposing.hash() };
        let votes = vec![f.admins[1].govern(approve.clone()), f.admins[2].govern(approve)];
        run(&mut f.executor, vec![proposing]);
        let receipts = run(&mut f.executor, votes);
        assert_eq!(topics(&receipts[1]), ["governance.approved", "governance.passed"]);
    };
    let by_proposal = pactum_types::DeployPolicy::ByProposal;
    pass(vec![GovernanceChange::SetDeployPolicy { policy: by_proposal }], &mut f);
    let receipts = run(&mut f.executor, vec![deploy(&mut alice)]);
    assert!(reason(&receipts[0].status).contains("no proposal approved code"), "{receipts:?}");
    let code_hash = pactum_types::hash::sha3_256(token);
    pass(vec![GovernanceChange::ApproveCode { code_hash }], &mut f);
    let receipts = run(&mut f.executor, vec![deploy(&mut bob)]);
    assert_eq!(status_name(&receipts[0].status), "success", "approved code, any member");
}

#[test]
fn an_upgrade_keeps_the_contracts_address_and_storage_and_runs_the_new_code() {
    use pactum_storage::StateSpace;
    let mut f = fixture();
    let mut alice = f.organisations[0].identity(Role::Client, "alice", 365);
    run(&mut f.executor, vec![alice.enrol()]);
    let token = alice.account.next_contract_address();
    let deploy = alice.account.deploy(pactum_contract_wasm::TOKEN, common::token_init("Coin"));
    assert_eq!(status_name(&run(&mut f.executor, vec![deploy])[0].status), "success");
    let storage = |executor: &Executor| {
        executor.store().state_scan(StateSpace::Contract(token), b"", None, 1_000).unwrap()
    };
    let before = storage(&f.executor);
    assert!(!before.is_empty());

    let upgrade =
        |code: &[u8], contract| GovernanceChange::UpgradeContract { contract, code: code.to_vec() };
    let garbage = f.admins[0].govern(propose(vec![upgrade(b"\0asm garbage", token)], 50));
    let nowhere = f.admins[0]
        .govern(propose(vec![upgrade(pactum_contract_wasm::ESCROW, Address([7; 32]))], 50));
    let receipts = run(&mut f.executor, vec![garbage, nowhere]);
    assert!(reason(&receipts[0].status).contains("the new code is refused"), "{receipts:?}");
    assert!(reason(&receipts[1].status).contains("no contract is deployed at"), "{receipts:?}");

    let proposing =
        f.admins[0].govern(propose(vec![upgrade(pactum_contract_wasm::ESCROW, token)], 50));
    let approve = GovernanceAction::Approve { proposal: proposing.hash() };
    let votes = vec![f.admins[1].govern(approve.clone()), f.admins[2].govern(approve)];
    run(&mut f.executor, vec![proposing]);
    run(&mut f.executor, votes);
    let escrow_hash = pactum_types::hash::sha3_256(pactum_contract_wasm::ESCROW);
    assert_eq!(f.executor.contract_code_hash(&token).unwrap(), Some(escrow_hash));
    assert_eq!(storage(&f.executor), before, "the storage stays");
    // The token's methods are gone: the contract runs the new code.
    let call = alice.account.call(token, "total_supply", Vec::new(), common::GAS);
    let receipts = run(&mut f.executor, vec![call]);
    assert_ne!(status_name(&receipts[0].status), "success", "{receipts:?}");
}

#[test]
fn a_new_validator_joins_at_the_epoch_boundary_after_announcing_itself_ready() {
    let Fixture { _directory, mut executor, mut admins, genesis, .. } = fixture_with_validators();

    // Org E and its validator, in one proposal; the join request proves the key.
    let org_e = Organisation::new("Org E");
    let (record, mut joiner) = org_e.validator(99, "v4");
    let network_address = "127.0.0.1:7004".to_string();
    let message =
        pactum_types::join_message(&common::chain_id(), &record.public_key, &network_address);
    let proof = joiner.account.keypair.sign(pactum_types::crypto::domain::VALIDATOR_JOIN, &message);
    let changes = vec![
        GovernanceChange::AddMember {
            organisation: "Org E".into(),
            ca_certificates_der: vec![org_e.ca_der],
        },
        GovernanceChange::AddValidator {
            validator: pactum_types::NewValidator {
                name: "v4".into(),
                certificate_der: record.certificate_der.clone(),
                chain_der: Vec::new(),
                network_address,
                api_address: "127.0.0.1:8004".into(),
                proof,
            },
        },
    ];
    // A validator announcing itself ready before any proposal added it is refused.
    let early = joiner.govern(GovernanceAction::Ready);
    let receipts = run(&mut executor, vec![early]);
    assert_eq!(status_name(&receipts[0].status), "invalid", "{:?}", receipts[0]);
    joiner.account.next_nonce = 0;
    let open = admins[0].govern(propose(changes, 100));
    let id = open.hash();
    let approvals = vec![
        admins[1].govern(GovernanceAction::Approve { proposal: id }),
        admins[2].govern(GovernanceAction::Approve { proposal: id }),
    ];
    run(&mut executor, vec![open]);
    run(&mut executor, approvals);
    let planned = executor.consortium().unwrap().clone();
    assert_eq!(planned.epoch, 0);
    assert_eq!(planned.validators.len(), 4, "nothing changes before the boundary");
    let plan = planned.planned.clone().unwrap();
    assert_eq!(plan.validators.len(), 5);
    assert_eq!(plan.validators[4].index, 4, "the next index, whatever the record said");
    assert!(plan.waiting.contains(&record.public_key));
    assert_eq!(plan.last, None, "not scheduled before the new validator is ready");

    // Caught up, the new validator announces itself ready with its own key.
    let receipts = run(&mut executor, vec![joiner.govern(GovernanceAction::Ready)]);
    assert_eq!(status_name(&receipts[0].status), "success", "{:?}", receipts[0]);
    assert_eq!(topics(&receipts[0]), vec!["governance.validator_ready"]);
    let ready_at = executor.tip().height;
    let last = executor.consortium().unwrap().epoch_last().unwrap();
    // The first checkpoint (every 2 blocks) at or after a whole window (4) past it.
    assert_eq!(last, (ready_at + 4).div_ceil(2) * 2);
    assert!(last >= ready_at + 4 && last.is_multiple_of(2));
    // Once is enough: a second announcement is not from a waiting validator.
    let receipts = run(&mut executor, vec![joiner.govern(GovernanceAction::Ready)]);
    assert_eq!(status_name(&receipts[0].status), "invalid");

    // Up to the boundary the old set is in force; the block at `last` ends the epoch.
    let old_set = genesis.validator_set_hash();
    while executor.tip().height < last {
        assert_eq!(executor.consortium().unwrap().validator_set_hash(), old_set);
        run(&mut executor, Vec::new());
    }
    let entered = executor.consortium().unwrap().clone();
    assert_eq!((entered.epoch, entered.epoch_start), (1, last));
    assert_eq!(entered.validators.len(), 5);
    assert_eq!(entered.planned, None);
    // A block that names the old set after the boundary is refused.
    let mut stale = next_block_at(&executor, Vec::new(), GENESIS_TIME_MS + 1_000_000);
    stale.header.validators_hash = old_set;
    let error = executor.execute_block(&stale).unwrap_err().to_string();
    assert!(error.contains("validator set"), "{error}");
    // The configuration at every height says which set was in force.
    let snapshot = executor.reader().snapshot();
    assert_eq!(snapshot.consortium_at(last).unwrap().unwrap().epoch, 0);
    assert_eq!(snapshot.consortium_at(last + 1).unwrap().unwrap().epoch, 1);
}

#[test]
fn a_gas_schedule_applies_from_the_next_block_and_a_block_gas_limit_from_the_next_epoch() {
    let mut f = fixture_with_validators();
    let mut client = f.organisations[0].identity(Role::Client, "client", 365);
    run(&mut f.executor, vec![client.enrol()]);
    let parameters =
        ConsensusParameters { block_gas_max: 2_000_000, ..f.genesis.parameters.clone() };
    let schedule = GasSchedule { version: 2, call_base: 5_000, ..GasSchedule::V1 };
    let changes = vec![
        GovernanceChange::SetParameters { parameters },
        GovernanceChange::SetGasSchedule { schedule },
    ];
    let open = f.admins[0].govern(propose(changes, 100));
    let id = open.hash();
    run(&mut f.executor, vec![open]);
    let approvals = vec![
        f.admins[1].govern(GovernanceAction::Approve { proposal: id }),
        f.admins[2].govern(GovernanceAction::Approve { proposal: id }),
        call_nowhere(&mut client),
    ];
    let receipts = run(&mut f.executor, approvals);
    let applied_at = f.executor.tip().height;
    assert_eq!(proposal_status(&f.executor, &id), Status::Applied { height: applied_at });
    assert_eq!(receipts[2].gas_used, GasSchedule::V1.call_base, "the old schedule in its block");
    // From the next block contracts are charged by version 2...
    let receipts = run(&mut f.executor, vec![call_nowhere(&mut client)]);
    assert_eq!(receipts[0].gas_used, 5_000, "{receipts:?}");
    assert_eq!(f.executor.consortium().unwrap().gas_schedule, schedule);
    // ...while the block gas limit waits for the epoch boundary: two transactions of 1.5
    // million gas still fit in one block.
    let last = f.executor.consortium().unwrap().epoch_last().unwrap();
    assert_eq!(last, (applied_at + 4).div_ceil(2) * 2);
    let heavy = |client: &mut Identity| {
        let payload = Payload::CallContract {
            contract: Address([0x55; 32]),
            method: "m".into(),
            input: vec![],
        };
        client.account.sign(1_500_000, payload)
    };
    let mut other = f.organisations[1].identity(Role::Client, "other", 365);
    run(&mut f.executor, vec![other.enrol()]);
    let receipts = run(&mut f.executor, vec![heavy(&mut client), heavy(&mut other)]);
    assert!(receipts.iter().all(|receipt| status_name(&receipt.status) == "reverted"));
    while f.executor.tip().height < last {
        run(&mut f.executor, Vec::new());
    }
    let entered = f.executor.consortium().unwrap().clone();
    assert_eq!((entered.epoch, entered.parameters.block_gas_max), (1, 2_000_000));
    assert_eq!(entered.validators, f.genesis.validators, "the same validators");
    // After it the second no longer fits: invalid, its nonce unused.
    let receipts = run(&mut f.executor, vec![heavy(&mut client), heavy(&mut other)]);
    assert_eq!(status_name(&receipts[0].status), "reverted");
    assert_eq!(status_name(&receipts[1].status), "invalid", "{receipts:?}");
    assert!(reason(&receipts[1].status).contains("2000000"), "{receipts:?}");
}
