//! The genesis file: a consortium made with `pactum_certs` is accepted, and each rule
//! refuses the genesis that breaks it with a message naming the cause.

use pactum_certs::Role;
use pactum_certs::authority::{IssueRequest, Issued, create_authority, issue};
use pactum_runtime::genesis::{
    ConsensusParameters, GenesisFile, GovernancePolicy, OrganisationEntry, ValidatorEntry,
};
use pactum_runtime::{Genesis, GenesisError};
use pactum_types::ChainId;

const NOW: i64 = 1_790_000_000;

struct Consortium {
    authorities: Vec<(String, Issued)>,
    file: GenesisFile,
}

fn validator_certificate(authority: &Issued, name: &str, role: Role, at: i64) -> Issued {
    issue(
        &authority.certificate_pem,
        &authority.private_key_pem,
        &IssueRequest { role, name, subject_alt_names: &["127.0.0.1".to_string()], at, days: 30 },
    )
    .unwrap()
}

/// Four organisations with one validator each.
fn consortium() -> Consortium {
    let mut authorities = Vec::new();
    let mut organisations = Vec::new();
    let mut validators = Vec::new();
    for index in 0..4u16 {
        let name = format!("Member {index}");
        let authority = create_authority(&name, NOW, 365).unwrap();
        let certificate =
            validator_certificate(&authority, &format!("validator-{index}"), Role::Validator, NOW);
        organisations.push(OrganisationEntry {
            name: name.clone(),
            ca_certificate: authority.certificate_pem.clone(),
        });
        validators.push(ValidatorEntry {
            name: format!("validator-{index}"),
            organisation: name.clone(),
            certificate: certificate.certificate_pem,
            address: format!("127.0.0.1:{}", 7000 + index),
            api_address: format!("127.0.0.1:{}", 8000 + index),
        });
        authorities.push((name, authority));
    }
    let file = GenesisFile {
        chain_id: ChainId::new("pactum-test").unwrap(),
        genesis_time: NOW,
        organisations,
        validators,
        governance: GovernancePolicy { approvals_required: 3 },
        gas_schedule_version: 1,
        consensus: ConsensusParameters::default(),
        revoked: Vec::new(),
    };
    Consortium { authorities, file }
}

fn refused(file: GenesisFile) -> String {
    match Genesis::check(file) {
        Ok(_) => panic!("the genesis was accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_consortium_made_by_pactum_certs_is_accepted_and_round_trips_through_json() {
    let consortium = consortium();
    let json = serde_json::to_string_pretty(&consortium.file).unwrap();
    let genesis = Genesis::from_json(&json).unwrap();
    assert_eq!(genesis.validators.len(), 4);
    let config = genesis.consensus_config();
    assert_eq!((config.replicas(), config.quorum()), (4, 3));
    for (index, validator) in genesis.validators.iter().enumerate() {
        assert_eq!(genesis.replica_id(&validator.public_key), Some(index as u16));
    }
    // The hash ignores formatting but not values.
    let compact = serde_json::to_string(&consortium.file).unwrap();
    assert_eq!(Genesis::from_json(&compact).unwrap().hash, genesis.hash);
    let mut changed = consortium.file;
    changed.consensus.batch_timeout_ms += 1;
    assert_ne!(Genesis::check(changed).unwrap().hash, genesis.hash);
    // The trust store it builds accepts the validators' certificates.
    let trust = genesis.trust_store();
    for validator in &genesis.validators {
        trust.verify(&validator.certificate_der, NOW, Some(Role::Validator)).unwrap();
    }
}

#[test]
fn each_rule_refuses_the_genesis_that_breaks_it() {
    let base = consortium();
    let mut cases: Vec<(&str, GenesisFile, &str)> = Vec::new();

    let mut file = base.file.clone();
    file.validators.pop();
    cases.push(("three validators", file, "at least 4"));

    let mut file = base.file.clone();
    let first =
        pactum_certs::identity::certificates_from_pem(file.validators[0].certificate.as_bytes())
            .unwrap()
            .remove(0);
    let serial = pactum_certs::CertificateInfo::from_der(&first).unwrap().serial_hex();
    let organisation = file.validators[0].organisation.clone();
    file.revoked = vec![pactum_runtime::genesis::RevokedEntry { organisation, serial }];
    cases.push(("a validator whose certificate is revoked", file, "revoked"));

    let mut file = base.file.clone();
    file.revoked = vec![pactum_runtime::genesis::RevokedEntry {
        organisation: "Nobody".into(),
        serial: "01".into(),
    }];
    cases.push(("a revocation by a non-member", file, "not a member"));

    let mut file = base.file.clone();
    file.organisations[1].name = file.organisations[0].name.clone();
    cases.push(("an organisation twice", file, "listed twice"));

    let mut file = base.file.clone();
    file.organisations[0].name = "Someone Else".into();
    cases.push(("a CA for another name", file, "names organisation"));

    let mut file = base.file.clone();
    file.organisations[0].ca_certificate = file.validators[0].certificate.clone();
    cases.push(("a leaf as CA", file, "CA certificate"));

    let mut file = base.file.clone();
    file.validators[0].organisation = "Nobody".into();
    cases.push(("a validator of a non-member", file, "not a member"));

    let mut file = base.file.clone();
    file.validators[0].organisation = file.validators[1].organisation.clone();
    cases.push(("a validator claiming another member", file, "belongs to"));

    let mut file = base.file.clone();
    let (_, authority) = &base.authorities[0];
    file.validators[0].certificate =
        validator_certificate(authority, "client", Role::Client, NOW).certificate_pem;
    cases.push(("a client certificate", file, "certificate refused"));

    let mut file = base.file.clone();
    file.validators[0].certificate =
        validator_certificate(authority, "late", Role::Validator, NOW + 86_400).certificate_pem;
    cases.push(("a certificate not yet valid at genesis", file, "certificate refused"));

    let mut file = base.file.clone();
    let foreign = create_authority("Member 0", NOW, 365).unwrap();
    file.validators[0].certificate =
        validator_certificate(&foreign, "impostor", Role::Validator, NOW).certificate_pem;
    cases.push((
        "a certificate from a foreign CA with the member's name",
        file,
        "certificate refused",
    ));

    let mut file = base.file.clone();
    file.validators[1].certificate = file.validators[0].certificate.clone();
    file.validators[1].organisation = file.validators[0].organisation.clone();
    cases.push(("one key twice", file, "another validator's key"));

    let mut file = base.file.clone();
    file.validators[1].address = file.validators[0].address.clone();
    cases.push(("one address twice", file, "used twice"));

    let mut file = base.file.clone();
    file.validators[0].certificate = "not a certificate".into();
    cases.push(("garbage PEM", file, "validator-0"));

    let mut file = base.file.clone();
    file.consensus.block_gas_max = 999_999;
    cases.push(("a block gas limit below the range", file, "block_gas_max must be"));

    let mut file = base.file.clone();
    file.consensus.block_state_bytes_max = u64::MAX;
    cases.push(("a block state budget above the range", file, "block_state_bytes_max must be"));

    let mut file = base.file.clone();
    file.consensus.block_receipt_bytes_max = 0;
    cases.push(("no receipt budget", file, "block_receipt_bytes_max must be"));

    let mut file = base.file.clone();
    file.consensus.timestamp_skew_max_ms = 0;
    cases.push(("no timestamp skew", file, "timestamp_skew_max_ms must be"));

    let mut file = base.file.clone();
    file.governance.approvals_required = 5;
    cases.push(("more approvals than members", file, "choose 1 to 4"));

    let mut file = base.file.clone();
    file.gas_schedule_version = 99;
    cases.push(("an unknown gas schedule", file, "gas schedule version 99"));

    let mut file = base.file.clone();
    file.consensus.watermark_window = file.consensus.checkpoint_interval;
    cases.push(("a window below two checkpoints", file, "watermark window"));

    let mut file = base.file.clone();
    file.consensus.batch_bytes_max = 10;
    cases.push(("batches too small for a transaction", file, "batch_bytes_max"));

    let mut file = base.file.clone();
    file.consensus.view_change_timeout_max_ms = 1;
    cases.push(("a cap below the view-change timeout", file, "view_change_timeout_max_ms"));

    for (name, file, expected) in cases {
        let message = refused(file);
        assert!(message.contains(expected), "{name}: {message:?} does not mention {expected:?}");
    }
}

#[test]
fn malformed_json_and_unknown_fields_are_refused() {
    assert!(matches!(Genesis::from_json("{"), Err(GenesisError::Json(_))));
    let mut value = serde_json::to_value(consortium().file).unwrap();
    value["surprise"] = serde_json::json!(1);
    let error = Genesis::from_json(&value.to_string()).unwrap_err().to_string();
    assert!(error.contains("unknown field"), "{error}");
    let missing = Genesis::load(std::path::Path::new("/nonexistent/genesis.json")).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/genesis.json"));
}
