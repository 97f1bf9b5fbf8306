//! Scenarios over real certificates from `pactum-certs`.

use pactum_certs::authority::{IssueRequest, create_authority, issue};
use pactum_certs::identity::{CertificateInfo, Role, certificates_from_pem};
use pactum_types::codec::Decode;
use pactum_types::{ChangeClass, Encode, GovernanceChange, Hash, Keypair, Policy};

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
    (Consortium::genesis(members, validators, 3, []), authorities)
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
        10,
        AT,
    )
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

    let next = apply(&consortium, &proposal.changes, AT).unwrap();
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
        apply(&consortium, &too_many, AT),
        Err(ChangeError::PolicyUnreachable { class: ChangeClass::Certificates, .. })
    ));
    let mut small = consortium.clone();
    small.validators.clear();
    small.members.retain(|name, _| name != "Org D");
    // Three members, at least three approvals: removing one leaves two.
    let remove = [GovernanceChange::RemoveMember { organisation: "Org C".into() }];
    assert!(matches!(apply(&small, &remove, AT), Err(ChangeError::PolicyUnreachable { .. })));
    let bad_fraction = [GovernanceChange::SetPolicy {
        class: ChangeClass::Policies,
        policy: Policy::MoreThan { numerator: 2, denominator: 2 },
    }];
    assert!(matches!(apply(&consortium, &bad_fraction, AT), Err(ChangeError::Refused { .. })));
}

#[test]
fn members_with_validators_and_validator_changes_wait_for_epochs() {
    let (consortium, _) = consortium();
    let remove = [GovernanceChange::RemoveMember { organisation: "Org D".into() }];
    let error = apply(&consortium, &remove, AT).unwrap_err().to_string();
    assert!(error.contains("runs 1 validators"), "{error}");
    let remove_validator =
        [GovernanceChange::RemoveValidator { validator: consortium.validators[0].public_key }];
    assert!(matches!(
        apply(&consortium, &remove_validator, AT),
        Err(ChangeError::NotSupported { change: "remove_validator", .. })
    ));
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
    let next = apply(&consortium, &revoke, AT).unwrap();
    assert!(next.is_revoked("Org B", &serial));
    assert!(next.trust_store().verify(&client, AT, None).is_err());
    assert!(matches!(apply(&next, &revoke, AT), Err(ChangeError::Refused { .. })), "twice");

    let validator_serial =
        CertificateInfo::from_der(&consortium.validators[1].certificate_der).unwrap().serial;
    let revoke_validator = [GovernanceChange::RevokeCertificate {
        organisation: "Org B".into(),
        serial: validator_serial,
    }];
    let error = apply(&consortium, &revoke_validator, AT).unwrap_err().to_string();
    assert!(error.contains("validator v1"), "{error}");
    let stranger = [GovernanceChange::RevokeCertificate { organisation: "Org Z".into(), serial }];
    assert!(apply(&consortium, &stranger, AT).is_err());
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
    let error = apply(&consortium, &drop_old, AT).unwrap_err().to_string();
    assert!(error.contains("validator v0 would no longer be trusted"), "{error}");
    let side_by_side = [GovernanceChange::UpdateMember {
        organisation: "Org A".into(),
        ca_certificates_der: vec![old, new],
    }];
    let next = apply(&consortium, &side_by_side, AT).unwrap();
    assert_eq!(next.members["Org A"].ca_certificates_der.len(), 2);
}

#[test]
fn a_new_member_needs_its_own_valid_ca() {
    let (consortium, authorities) = consortium();
    let wrong_name = [GovernanceChange::AddMember {
        organisation: "Org E".into(),
        ca_certificates_der: vec![der(&authorities[0].certificate_pem)],
    }];
    let error = apply(&consortium, &wrong_name, AT).unwrap_err().to_string();
    assert!(error.contains("\"Org A\"'s, not \"Org E\"'s"), "{error}");
    let leaf = [GovernanceChange::AddMember {
        organisation: "Org E".into(),
        ca_certificates_der: vec![certificate(&authorities[0], Role::Client, "x")],
    }];
    assert!(apply(&consortium, &leaf, AT).is_err());
    let expired = [add_member("Org E")];
    assert!(apply(&consortium, &expired, AT + 400 * 86_400).is_err(), "a CA expired at block time");
    assert!(matches!(apply(&consortium, &[], AT), Err(ChangeError::ChangeCount { .. })));
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
        GovernanceChange::RemoveValidator { validator: consortium.validators[0].public_key },
        GovernanceChange::RevokeCertificate { organisation: "Org B".into(), serial },
    ];
    let report = dry_run(&consortium, &changes, AT);
    let size = Size { members: 4, validators: 4, faults_tolerated: 1, quorum: 3 };
    assert_eq!(report.before, size);
    assert_eq!(report.after, None, "the bundle as a whole is refused");
    assert!(matches!(report.outcome, Err(ChangeError::NotSupported { index: 1, .. })));
    let results: Vec<bool> = report.checks.iter().map(|check| check.result.is_ok()).collect();
    assert_eq!(results, [true, false, true]);
    assert_eq!((report.voters, report.approvals_needed), (4, Some(3)));

    let report = dry_run(&consortium, &changes[..1], AT);
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
    let next = apply(&consortium, &set(only_a.clone()), AT).unwrap();
    assert_eq!(next.deploy_refusal("Org A", &code_hash), None);
    assert!(next.deploy_refusal("Org C", &code_hash).unwrap().contains("Org A only"));
    assert!(apply(&next, &set(only_a), AT).is_err(), "unchanged");
    let stranger = DeployPolicy::Organisations { organisations: vec!["Org Z".into()] };
    assert!(apply(&consortium, &set(stranger), AT).is_err());
    let empty = DeployPolicy::Organisations { organisations: vec![] };
    assert!(apply(&consortium, &set(empty), AT).is_err());

    let by_proposal = apply(&consortium, &set(DeployPolicy::ByProposal), AT).unwrap();
    assert!(by_proposal.deploy_refusal("Org A", &code_hash).unwrap().contains("approve_code"));
    let approve = [GovernanceChange::ApproveCode { code_hash }];
    let approved = apply(&by_proposal, &approve, AT).unwrap();
    assert_eq!(approved.deploy_refusal("Org C", &code_hash), None);
    assert!(apply(&approved, &approve, AT).is_err(), "approved twice");

    // Removing a member takes it off the allow-list, but never empties it.
    consortium.validators.clear();
    consortium.policies.insert(ChangeClass::Membership, Policy::AtLeast { count: 1 });
    let a_and_d =
        DeployPolicy::Organisations { organisations: vec!["Org A".into(), "Org D".into()] };
    let listed = apply(&consortium, &set(a_and_d), AT).unwrap();
    let remove = |name: &str| [GovernanceChange::RemoveMember { organisation: name.into() }];
    let without_d = apply(&listed, &remove("Org D"), AT).unwrap();
    assert_eq!(
        without_d.deploy_policy,
        DeployPolicy::Organisations { organisations: vec!["Org A".into()] }
    );
    let error = apply(&without_d, &remove("Org A"), AT).unwrap_err().to_string();
    assert!(error.contains("only organisation allowed to deploy"), "{error}");
}
