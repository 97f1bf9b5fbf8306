//! Scenarios over real certificates from `pactum-certs`.

use pactum_certs::authority::{IssueRequest, create_authority, issue};
use pactum_certs::identity::{CertificateInfo, Role, certificates_from_pem};
use pactum_types::codec::Decode;
use pactum_types::gas::GasSchedule;
use pactum_types::{
    ChainId, ChangeClass, ConsensusParameters, Encode, GovernanceChange, Hash, Keypair, Policy,
};

use super::*;

const AT: i64 = 1_800_000_000;

struct Authority {
    certificate_pem: String,
    key_pem: String,
}

fn der(pem: &str) -> Vec<u8> {
    certificates_from_pem(pem.as_bytes()).unwrap().remove(0)
}

fn authority(organisation: &str) -> Authority {
    let issued = create_authority(organisation, AT - 100, 365).unwrap();
    Authority { certificate_pem: issued.certificate_pem, key_pem: issued.private_key_pem }
}

fn certificate(authority: &Authority, role: Role, name: &str) -> Vec<u8> {
    let request = IssueRequest { role, name, subject_alt_names: &[], at: AT - 100, days: 30 };
    der(&issue(&authority.certificate_pem, &authority.key_pem, &request).unwrap().certificate_pem)
}

/// Four members, one validator each, every class at least three approvals.
fn consortium() -> (Consortium, Vec<Authority>) {
    let names = ["Org A", "Org B", "Org C", "Org D"];
    let authorities: Vec<Authority> = names.iter().map(|name| authority(name)).collect();
    let members = names
        .iter()
        .zip(&authorities)
        .map(|(name, authority)| Member {
            name: (*name).into(),
            ca_certificates_der: vec![der(&authority.certificate_pem)],
        })
        .collect();
    let validators = names
        .iter()
        .zip(&authorities)
        .enumerate()
        .map(|(index, (name, authority))| {
            let certificate_der = certificate(authority, Role::Validator, &format!("v{index}"));
            Validator {
                index: index as u16,
                name: format!("v{index}"),
                organisation: (*name).into(),
                public_key: CertificateInfo::from_der(&certificate_der).unwrap().public_key,
                certificate_der,
                chain_der: Vec::new(),
                address: format!("127.0.0.1:{}", 7000 + index),
                api_address: format!("127.0.0.1:{}", 8000 + index),
            }
        })
        .collect();
    (Consortium::genesis(members, validators, 3, [], ConsensusParameters::default()), authorities)
}

fn admin(seed: u8) -> pactum_types::PublicKey {
    Keypair::from_seed(&[seed; 32]).public_key()
}

fn open(
    consortium: &Consortium,
    organisation: &str,
    changes: &[GovernanceChange],
) -> Result<Proposal, GovernanceError> {
    Proposal::open(
        consortium,
        Hash([7; 32]),
        organisation,
        admin(1),
        "a title",
        "",
        100,
        changes,
        &context(),
    )
}

/// A block at height 10, time `AT`, of chain "test".
fn context() -> Context {
    context_at(AT)
}

fn context_at(at: i64) -> Context {
    Context { at, height: 10, chain: ChainId::new("test").unwrap() }
}

fn vote(organisation: &str, approve: bool) -> Vote {
    Vote {
        organisation: organisation.into(),
        approve,
        voter: admin(2),
        transaction: Hash([8; 32]),
        height: 11,
    }
}

fn add_member(name: &str) -> GovernanceChange {
    GovernanceChange::AddMember {
        organisation: name.into(),
        ca_certificates_der: vec![der(&authority(name).certificate_pem)],
    }
}

#[test]
fn a_proposal_passes_at_its_policy_and_applying_it_makes_the_next_version() {
    let (consortium, _) = consortium();
    let changes = [add_member("Org E")];
    let mut proposal = open(&consortium, "Org A", &changes).unwrap();
    assert_eq!(proposal.tally(&consortium), Ok(Tally::Open { approvals: 1, needed: 3, voters: 4 }));
    proposal.vote(&consortium, vote("Org B", true)).unwrap();
    assert!(matches!(proposal.tally(&consortium), Ok(Tally::Open { approvals: 2, .. })));
    proposal.vote(&consortium, vote("Org C", true)).unwrap();
    assert_eq!(proposal.tally(&consortium), Ok(Tally::Passed));

    let next = apply(&consortium, &proposal.changes, &context()).unwrap();
    assert_eq!(next.version, 2);
    assert!(next.is_member("Org E"));
    assert!(next.trust_store().has_organisation("Org E"));
    assert!(!consortium.is_member("Org E"), "the old version is unchanged");
}

#[test]
fn one_vote_per_organisation_and_only_from_members() {
    let (consortium, _) = consortium();
    let mut proposal = open(&consortium, "Org A", &[add_member("Org E")]).unwrap();
    assert!(matches!(
        proposal.vote(&consortium, vote("Org A", true)),
        Err(GovernanceError::AlreadyVoted { .. })
    ));
    assert!(matches!(
        proposal.vote(&consortium, vote("Org Z", true)),
        Err(GovernanceError::NotMember { .. })
    ));
    assert!(matches!(
        open(&consortium, "Org Z", &[add_member("Org E")]),
        Err(GovernanceError::NotMember { .. })
    ));
}

#[test]
fn a_proposal_is_rejected_once_its_policy_can_no_longer_be_met() {
    let (consortium, _) = consortium();
    let mut proposal = open(&consortium, "Org A", &[add_member("Org E")]).unwrap();
    proposal.vote(&consortium, vote("Org B", false)).unwrap();
    assert!(matches!(proposal.tally(&consortium), Ok(Tally::Open { .. })), "3 of 4 still possible");
    proposal.vote(&consortium, vote("Org C", false)).unwrap();
    assert_eq!(proposal.tally(&consortium), Ok(Tally::Rejected));
}

#[test]
fn only_the_proposers_organisation_withdraws_and_a_closed_proposal_takes_no_votes() {
    let (consortium, _) = consortium();
    let mut proposal = open(&consortium, "Org A", &[add_member("Org E")]).unwrap();
    assert!(matches!(proposal.withdraw("Org B", 12), Err(GovernanceError::NotProposer { .. })));
    proposal.withdraw("Org A", 12).unwrap();
    assert_eq!(proposal.status, Status::Withdrawn { height: 12 });
    assert!(matches!(
        proposal.vote(&consortium, vote("Org B", true)),
        Err(GovernanceError::NotOpen { status: "withdrawn", .. })
    ));
}

#[test]
fn a_member_the_proposal_removes_does_not_vote_or_count() {
    let (mut consortium, _) = consortium();
    consortium.validators.retain(|validator| validator.organisation != "Org D");
    consortium.policies.insert(ChangeClass::Membership, Policy::All);
    let changes = [GovernanceChange::RemoveMember { organisation: "Org D".into() }];
    let mut proposal = open(&consortium, "Org A", &changes).unwrap();
    assert!(matches!(
        proposal.vote(&consortium, vote("Org D", false)),
        Err(GovernanceError::RemovedVoter { .. })
    ));
    proposal.vote(&consortium, vote("Org B", true)).unwrap();
    proposal.vote(&consortium, vote("Org C", true)).unwrap();
    assert_eq!(proposal.tally(&consortium), Ok(Tally::Passed), "all of the three that remain");
}

#[test]
fn changes_that_would_leave_a_policy_unreachable_are_refused() {
    let (consortium, _) = consortium();
    let too_many = [GovernanceChange::SetPolicy {
        class: ChangeClass::Certificates,
        policy: Policy::AtLeast { count: 5 },
    }];
    assert!(matches!(
        apply(&consortium, &too_many, &context()),
        Err(ChangeError::PolicyUnreachable { class: ChangeClass::Certificates, .. })
    ));
    let mut small = consortium.clone();
    small.validators.clear();
    small.members.retain(|name, _| name != "Org D");
    // Three members, at least three approvals: removing one leaves two.
    let remove = [GovernanceChange::RemoveMember { organisation: "Org C".into() }];
    assert!(matches!(
        apply(&small, &remove, &context()),
        Err(ChangeError::PolicyUnreachable { .. })
    ));
    let bad_fraction = [GovernanceChange::SetPolicy {
        class: ChangeClass::Policies,
        policy: Policy::MoreThan { numerator: 2, denominator: 2 },
    }];
    assert!(matches!(
        apply(&consortium, &bad_fraction, &context()),
        Err(ChangeError::Refused { .. })
    ));
}

#[test]
fn a_member_with_validators_goes_only_with_them_and_the_set_keeps_four() {
    let (consortium, _) = consortium();
    let remove = [GovernanceChange::RemoveMember { organisation: "Org D".into() }];
    let error = apply(&consortium, &remove, &context()).unwrap_err().to_string();
    assert!(error.contains("runs 1 validators"), "{error}");
    let remove_validator =
        GovernanceChange::RemoveValidator { validator: consortium.validators[3].public_key };
    // Four validators: removing one would leave three.
    let error = apply(&consortium, std::slice::from_ref(&remove_validator), &context())
        .unwrap_err()
        .to_string();
    assert!(error.contains("would have 3 validators; PBFT needs 4"), "{error}");
    let stranger = [GovernanceChange::RemoveValidator { validator: admin(9) }];
    let error = apply(&consortium, &stranger, &context()).unwrap_err().to_string();
    assert!(error.contains("no validator has key"), "{error}");
}
#[test]
fn revocations_are_checked() {
    let (consortium, authorities) = consortium();
    let client = certificate(&authorities[1], Role::Client, "alice");
    let serial = CertificateInfo::from_der(&client).unwrap().serial;
    let revoke = [GovernanceChange::RevokeCertificate {
        organisation: "Org B".into(),
        serial: serial.clone(),
    }];
    let next = apply(&consortium, &revoke, &context()).unwrap();
    assert!(next.is_revoked("Org B", &serial));
    assert!(next.trust_store().verify(&client, AT, None).is_err());
    assert!(matches!(apply(&next, &revoke, &context()), Err(ChangeError::Refused { .. })), "twice");

    let validator_serial =
        CertificateInfo::from_der(&consortium.validators[1].certificate_der).unwrap().serial;
    let revoke_validator = [GovernanceChange::RevokeCertificate {
        organisation: "Org B".into(),
        serial: validator_serial,
    }];
    let error = apply(&consortium, &revoke_validator, &context()).unwrap_err().to_string();
    assert!(error.contains("validator v1"), "{error}");
    let stranger = [GovernanceChange::RevokeCertificate { organisation: "Org Z".into(), serial }];
    assert!(apply(&consortium, &stranger, &context()).is_err());
}

#[test]
fn a_ca_rotation_keeps_the_old_ca_until_its_validators_have_moved() {
    let (consortium, authorities) = consortium();
    let old = der(&authorities[0].certificate_pem);
    let new = der(&authority("Org A").certificate_pem);
    let drop_old = [GovernanceChange::UpdateMember {
        organisation: "Org A".into(),
        ca_certificates_der: vec![new.clone()],
    }];
    let error = apply(&consortium, &drop_old, &context()).unwrap_err().to_string();
    assert!(error.contains("validator v0 would no longer be trusted"), "{error}");
    let side_by_side = [GovernanceChange::UpdateMember {
        organisation: "Org A".into(),
        ca_certificates_der: vec![old, new],
    }];
    let next = apply(&consortium, &side_by_side, &context()).unwrap();
    assert_eq!(next.members["Org A"].ca_certificates_der.len(), 2);
}

#[test]
fn a_new_member_needs_its_own_valid_ca() {
    let (consortium, authorities) = consortium();
    let wrong_name = [GovernanceChange::AddMember {
        organisation: "Org E".into(),
        ca_certificates_der: vec![der(&authorities[0].certificate_pem)],
    }];
    let error = apply(&consortium, &wrong_name, &context()).unwrap_err().to_string();
    assert!(error.contains("\"Org A\"'s, not \"Org E\"'s"), "{error}");
    let leaf = [GovernanceChange::AddMember {
        organisation: "Org E".into(),
        ca_certificates_der: vec![certificate(&authorities[0], Role::Client, "x")],
    }];
    assert!(apply(&consortium, &leaf, &context()).is_err());
    let expired = [add_member("Org E")];
    assert!(
        apply(&consortium, &expired, &context_at(AT + 400 * 86_400)).is_err(),
        "a CA expired at block time"
    );
    assert!(matches!(apply(&consortium, &[], &context()), Err(ChangeError::ChangeCount { .. })));
    assert!(matches!(
        open(&consortium, "Org A", &[add_member("Org A")]),
        Err(GovernanceError::Change(_))
    ));
}

#[test]
fn records_round_trip_through_their_encoding() {
    let (consortium, _) = consortium();
    let bytes = consortium.to_bytes();
    assert_eq!(Consortium::from_bytes(&bytes).unwrap(), consortium);
    let mut proposal = open(&consortium, "Org A", &[add_member("Org E")]).unwrap();
    proposal.vote(&consortium, vote("Org B", false)).unwrap();
    proposal.status = Status::Failed { height: 12, reason: "why".into() };
    assert_eq!(Proposal::from_bytes(&proposal.to_bytes()).unwrap(), proposal);
}

#[test]
fn a_dry_run_reports_every_check_and_the_size_before_and_after() {
    let (consortium, authorities) = consortium();
    let client = certificate(&authorities[1], Role::Client, "bob");
    let serial = CertificateInfo::from_der(&client).unwrap().serial;
    let changes = [
        add_member("Org E"),
        GovernanceChange::RemoveValidator { validator: admin(9) },
        GovernanceChange::RevokeCertificate { organisation: "Org B".into(), serial },
    ];
    let report = dry_run(&consortium, &changes, &context());
    let size = Size { members: 4, validators: 4, faults_tolerated: 1, quorum: 3 };
    assert_eq!(report.before, size);
    assert_eq!(report.after, None, "the bundle as a whole is refused");
    assert!(matches!(report.outcome, Err(ChangeError::Refused { index: 1, .. })));
    let results: Vec<bool> = report.checks.iter().map(|check| check.result.is_ok()).collect();
    assert_eq!(results, [true, false, true]);
    assert_eq!((report.voters, report.approvals_needed), (4, Some(3)));
    // Each change can pass on its own while the bundle cannot: four validators less one.
    let remove =
        [GovernanceChange::RemoveValidator { validator: consortium.validators[0].public_key }];
    let report = dry_run(&consortium, &remove, &context());
    assert!(report.checks[0].result.is_ok());
    let error = report.outcome.unwrap_err().to_string();
    assert!(error.contains("would have 3 validators"), "{error}");

    let report = dry_run(&consortium, &changes[..1], &context());
    assert_eq!(report.after, Some(Size { members: 5, ..size }));
    assert_eq!(report.outcome, Ok(()));
}

#[test]
fn the_deploy_policy_names_members_and_approved_code() {
    use pactum_types::DeployPolicy;
    let (mut consortium, _) = consortium();
    let code_hash = Hash([5; 32]);
    assert_eq!(consortium.deploy_refusal("Org C", &code_hash), None, "open at genesis");
    let only_a = DeployPolicy::Organisations { organisations: vec!["Org A".into()] };
    let set = |policy: DeployPolicy| [GovernanceChange::SetDeployPolicy { policy }];
    let next = apply(&consortium, &set(only_a.clone()), &context()).unwrap();
    assert_eq!(next.deploy_refusal("Org A", &code_hash), None);
    assert!(next.deploy_refusal("Org C", &code_hash).unwrap().contains("Org A only"));
    assert!(apply(&next, &set(only_a), &context()).is_err(), "unchanged");
    let stranger = DeployPolicy::Organisations { organisations: vec!["Org Z".into()] };
    assert!(apply(&consortium, &set(stranger), &context()).is_err());
    let empty = DeployPolicy::Organisations { organisations: vec![] };
    assert!(apply(&consortium, &set(empty), &context()).is_err());

    let by_proposal = apply(&consortium, &set(DeployPolicy::ByProposal), &context()).unwrap();
    assert!(by_proposal.deploy_refusal("Org A", &code_hash).unwrap().contains("approve_code"));
    let approve = [GovernanceChange::ApproveCode { code_hash }];
    let approved = apply(&by_proposal, &approve, &context()).unwrap();
    assert_eq!(approved.deploy_refusal("Org C", &code_hash), None);
    assert!(apply(&approved, &approve, &context()).is_err(), "approved twice");

    // Removing a member takes it off the allow-list, but never empties it.
    consortium.validators.clear();
    consortium.policies.insert(ChangeClass::Membership, Policy::AtLeast { count: 1 });
    let a_and_d =
        DeployPolicy::Organisations { organisations: vec!["Org A".into(), "Org D".into()] };
    let listed = apply(&consortium, &set(a_and_d), &context()).unwrap();
    let remove = |name: &str| [GovernanceChange::RemoveMember { organisation: name.into() }];
    let without_d = apply(&listed, &remove("Org D"), &context()).unwrap();
    assert_eq!(
        without_d.deploy_policy,
        DeployPolicy::Organisations { organisations: vec!["Org A".into()] }
    );
    let error = apply(&without_d, &remove("Org A"), &context()).unwrap_err().to_string();
    assert!(error.contains("only organisation allowed to deploy"), "{error}");
}

/// A validator certificate of `authority` with its key, and the `AddValidator` change for
/// it on chain "test" (with a valid proof of possession unless `forged`).
fn new_validator(authority: &Authority, name: &str, port: u16) -> (GovernanceChange, Keypair) {
    let request = IssueRequest {
        role: Role::Validator,
        name,
        subject_alt_names: &[],
        at: AT - 100,
        days: 30,
    };
    let issued = issue(&authority.certificate_pem, &authority.key_pem, &request).unwrap();
    let keypair = Keypair::from_seed(
        &pactum_certs::tls::ed25519_seed_of_pem(&issued.private_key_pem).unwrap(),
    );
    let network_address = format!("127.0.0.1:{port}");
    let message = pactum_types::join_message(
        &ChainId::new("test").unwrap(),
        &keypair.public_key(),
        &network_address,
    );
    let proof = keypair.sign(pactum_types::crypto::domain::VALIDATOR_JOIN, &message);
    let change = GovernanceChange::AddValidator {
        validator: pactum_types::NewValidator {
            name: name.into(),
            certificate_der: der(&issued.certificate_pem),
            chain_der: Vec::new(),
            network_address,
            api_address: format!("127.0.0.1:{}", port + 1000),
            proof,
        },
    };
    (change, keypair)
}

#[test]
fn onboarding_an_organisation_with_its_validator_takes_one_proposal_and_a_readiness() {
    let (consortium, _) = consortium();
    let org_e = authority("Org E");
    let add_member = GovernanceChange::AddMember {
        organisation: "Org E".into(),
        ca_certificates_der: vec![der(&org_e.certificate_pem)],
    };
    let (add_validator, keypair) = new_validator(&org_e, "v4", 7004);
    let bundle = [add_member, add_validator];
    let next = apply(&consortium, &bundle, &context()).unwrap();
    // Nothing changes for consensus yet: the new validator is planned and waiting.
    assert_eq!(next.validators, consortium.validators);
    let planned = next.planned.clone().unwrap();
    assert_eq!(planned.validators.len(), 5);
    assert_eq!(planned.validators[4].index, 4);
    assert_eq!(planned.validators[4].organisation, "Org E");
    assert_eq!(planned.waiting.iter().copied().collect::<Vec<_>>(), vec![keypair.public_key()]);
    assert_eq!(planned.last, None);
    assert_eq!(next.next_validator_index, 5);
    assert_eq!(next.connected_validators().len(), 5, "the joiner is dialled to catch up");
    assert_eq!(Size::of(&next).quorum, 4, "n = 5 after: f = 1, quorum 4");
    // Another validator change waits for this one.
    let (again, _) = new_validator(&org_e, "v5", 7005);
    let error = apply(&next, &[again], &context()).unwrap_err().to_string();
    assert!(error.contains("waiting for 1 new validators"), "{error}");
    // Only the waiting validator announces itself ready; then the epoch ends a window on.
    assert!(next.ready(&admin(9), 20).is_err());
    let ready = next.ready(&keypair.public_key(), 20).unwrap();
    assert_eq!(ready.epoch_last(), Some(96), "the first checkpoint at or after 20 + 64");
    assert!(ready.ready(&keypair.public_key(), 21).is_err(), "once");
    assert!(ready.enter_next_epoch(95).is_none());
    let entered = ready.enter_next_epoch(96).unwrap();
    assert_eq!((entered.epoch, entered.epoch_start), (1, 96));
    assert_eq!(entered.validators.len(), 5);
    assert_eq!(entered.planned, None);
    assert_ne!(entered.validator_set_hash(), consortium.validator_set_hash());
    // Every version round-trips through its encoding.
    for version in [&next, &ready, &entered] {
        assert_eq!(&Consortium::from_bytes(&version.to_bytes()).unwrap(), version);
    }
}

#[test]
fn a_removal_needs_no_readiness_and_is_scheduled_at_once() {
    let (consortium, _) = consortium();
    let org_e = authority("Org E");
    let mut with_five = consortium;
    with_five.members.insert(
        "Org E".into(),
        Member { name: "Org E".into(), ca_certificates_der: vec![der(&org_e.certificate_pem)] },
    );
    let (add, keypair) = new_validator(&org_e, "v4", 7004);
    let planned = apply(&with_five, &[add], &context()).unwrap();
    let five = planned.ready(&keypair.public_key(), 10).unwrap().enter_next_epoch(80).unwrap();
    let remove = GovernanceChange::RemoveValidator { validator: five.validators[0].public_key };
    let next = apply(&five, &[remove], &context()).unwrap();
    let planned = next.planned.unwrap();
    assert!(planned.waiting.is_empty());
    assert_eq!(planned.last, Some(80), "decided at 10: the first checkpoint at or after 74");
    let indices: Vec<u16> = planned.validators.iter().map(|validator| validator.index).collect();
    assert_eq!(indices, vec![1, 2, 3, 4], "indices are never reused or shifted");
}

#[test]
fn a_validator_that_does_not_check_out_is_refused_with_its_reason() {
    let (consortium, authorities) = consortium();
    let refusal = |change: GovernanceChange| {
        apply(&consortium, &[change], &context()).unwrap_err().to_string()
    };
    // A proof of possession for another chain.
    let (mut forged, _) = new_validator(&authorities[0], "v4", 7004);
    if let GovernanceChange::AddValidator { validator } = &mut forged {
        validator.proof = Keypair::from_seed(&[5; 32])
            .sign(pactum_types::crypto::domain::VALIDATOR_JOIN, b"something else");
    }
    assert!(refusal(forged).contains("proof of possession does not verify"));
    // A client certificate.
    let (mut client, _) = new_validator(&authorities[0], "v4", 7004);
    if let GovernanceChange::AddValidator { validator } = &mut client {
        validator.certificate_der = certificate(&authorities[0], Role::Client, "c");
    }
    assert!(refusal(client).contains("role is client"));
    // An organisation that is not a member.
    let (stranger, _) = new_validator(&authority("Org X"), "v4", 7004);
    assert!(refusal(stranger).contains("not a member"));
    // An address already in use, and a name already taken.
    let (taken, _) = new_validator(&authorities[0], "v4", 7000);
    assert!(refusal(taken).contains("address 127.0.0.1:7000 is already validator v0's"));
    let (named, _) = new_validator(&authorities[0], "v1", 7004);
    assert!(refusal(named).contains("already named \"v1\""));
    // The dry run reports the same before anything is signed.
    let (ok, _) = new_validator(&authorities[0], "v4", 7004);
    let report = dry_run(&consortium, &[ok], &context());
    assert!(report.outcome.is_ok());
    assert_eq!(report.after.unwrap().validators, 5);
}

#[test]
fn a_validator_key_is_rotated_by_one_bundle_that_also_revokes_the_old_certificate() {
    let (consortium, authorities) = consortium();
    let old = consortium.validators[1].clone();
    let old_serial = CertificateInfo::from_der(&old.certificate_der).unwrap().serial;
    // The same name and addresses, a new key from the same organisation.
    let (mut add, keypair) = new_validator(&authorities[1], "v1", 7001);
    if let GovernanceChange::AddValidator { validator } = &mut add {
        validator.api_address = old.api_address.clone();
    }
    let remove = GovernanceChange::RemoveValidator { validator: old.public_key };
    let revoke =
        GovernanceChange::RevokeCertificate { organisation: "Org B".into(), serial: old_serial };
    // Revoking a validator's certificate while it stays is refused; after its removal, not.
    let error = apply(&consortium, &[revoke.clone(), remove.clone(), add.clone()], &context())
        .unwrap_err()
        .to_string();
    assert!(error.contains("remove the validator earlier"), "{error}");
    let next = apply(&consortium, &[remove, add, revoke], &context()).unwrap();
    let planned = next.planned.clone().unwrap();
    assert_eq!(planned.validators.len(), 4);
    let rotated = planned.validators.iter().find(|validator| validator.name == "v1").unwrap();
    assert_eq!(rotated.public_key, keypair.public_key());
    assert_eq!(rotated.index, 4, "a new key is a new replica id");
    assert_eq!(
        (rotated.address.as_str(), rotated.api_address.as_str()),
        ("127.0.0.1:7001", old.api_address.as_str())
    );
    assert_eq!(planned.waiting.iter().copied().collect::<Vec<_>>(), vec![keypair.public_key()]);
    // The old certificate is refused from the next block, though the epoch still counts it.
    assert!(
        next.is_revoked("Org B", &CertificateInfo::from_der(&old.certificate_der).unwrap().serial)
    );
    assert!(next.trust_store().verify(&old.certificate_der, AT, None).is_err());
    assert_eq!(next.validators[1].public_key, old.public_key);
}

#[test]
fn new_parameters_take_effect_at_the_next_epoch_boundary() {
    let (consortium, _) = consortium();
    let mut parameters = ConsensusParameters { block_gas_max: 5_000_000, ..Default::default() };
    let set = |parameters: &ConsensusParameters| GovernanceChange::SetParameters {
        parameters: parameters.clone(),
    };
    let next = apply(&consortium, &[set(&parameters)], &context()).unwrap();
    assert_eq!(next.parameters, consortium.parameters, "in force only from the boundary");
    let planned = next.planned.clone().unwrap();
    assert_eq!(planned.parameters.block_gas_max, 5_000_000);
    assert_eq!(planned.validators, consortium.validators, "the same validators");
    assert_eq!(planned.last, Some(80), "nobody to wait for: scheduled at once");
    let entered = next.enter_next_epoch(80).unwrap();
    assert_eq!((entered.epoch, entered.parameters.block_gas_max), (1, 5_000_000));
    assert_eq!(Consortium::from_bytes(&entered.to_bytes()).unwrap(), entered);
    // A second change waits for the first.
    parameters.block_gas_max = 6_000_000;
    let error = apply(&next, &[set(&parameters)], &context()).unwrap_err().to_string();
    assert!(error.contains("already takes effect after height 80"), "{error}");
    // What is in force already, or out of range, or a window the interval does not
    // divide, is refused with its reason.
    let refusal = |parameters: ConsensusParameters| {
        apply(&consortium, &[set(&parameters)], &context()).unwrap_err().to_string()
    };
    assert!(refusal(ConsensusParameters::default()).contains("the parameters in force"));
    let error = refusal(ConsensusParameters { block_gas_max: 10, ..Default::default() });
    assert!(error.contains("block_gas_max must be"), "{error}");
    let error = refusal(ConsensusParameters { watermark_window: 72, ..Default::default() });
    assert!(error.contains("window"), "{error}");
    let error = refusal(ConsensusParameters {
        checkpoint_interval: 24,
        watermark_window: 96,
        ..Default::default()
    });
    assert!(error.contains("multiple or a divisor of the current 16"), "{error}");
}

#[test]
fn a_larger_checkpoint_interval_puts_the_boundary_on_a_checkpoint_of_both_epochs() {
    let (consortium, _) = consortium();
    let parameters = ConsensusParameters {
        checkpoint_interval: 32,
        watermark_window: 128,
        ..Default::default()
    };
    let next =
        apply(&consortium, &[GovernanceChange::SetParameters { parameters }], &context()).unwrap();
    // Decided at 10 with the current window 64: the first multiple of 32 at or after 74.
    assert_eq!(next.epoch_last(), Some(96));
    let entered = next.enter_next_epoch(96).unwrap();
    let members: Vec<u16> = entered.validators.iter().map(|v| v.index).collect();
    let config = consensus_config(
        &entered.parameters,
        members,
        entered.epoch,
        Hash::ZERO,
        entered.epoch_start,
        Hash::ZERO,
    );
    assert_eq!(config.validate(), Ok(()), "the boundary is a valid start for the new interval");
}

#[test]
fn a_gas_schedule_is_the_next_version_and_applies_with_the_proposal() {
    let (consortium, _) = consortium();
    let schedule = GasSchedule { version: 2, call_base: 3_000, ..GasSchedule::V1 };
    let change = GovernanceChange::SetGasSchedule { schedule };
    let next = apply(&consortium, std::slice::from_ref(&change), &context()).unwrap();
    assert_eq!(next.gas_schedule, schedule);
    assert_eq!(next.planned, None, "no epoch change for a schedule");
    let error = apply(&next, &[change], &context()).unwrap_err().to_string();
    assert!(error.contains("must be version 3"), "{error}");
    assert_eq!(Consortium::from_bytes(&next.to_bytes()).unwrap(), next);
}
