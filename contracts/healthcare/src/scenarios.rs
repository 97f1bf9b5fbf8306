//! Healthcare scenarios, run on the mock chain and in the real VM.

use alloc::string::String;
use alloc::vec::Vec;

use pactum_sdk::Address;
use pactum_sdk::testing::{Chain, account};

use crate::{Access, AuditEntry, RecordReference};

#[derive(Debug, Clone, Copy)]
pub struct Actors {
    pub admin: Address,
    pub hospital: Address,
    pub lab: Address,
    pub patient: Address,
    pub contract: Address,
}

pub fn setup(chain: &mut impl Chain) -> Actors {
    let admin = account("health-admin");
    let contract = chain.deploy(admin, "healthcare", &());
    let actors = Actors {
        admin,
        hospital: account("hospital"),
        lab: account("lab"),
        patient: account("patient"),
        contract,
    };
    for (provider, name) in [(actors.hospital, "St. Mary's"), (actors.lab, "City Lab")] {
        let outcome =
            chain.call(admin, contract, "register_provider", &(provider, String::from(name)));
        assert_eq!(outcome.topics(), ["provider_registered"]);
    }
    assert_eq!(
        chain.call(actors.patient, contract, "register_patient", &()).topics(),
        ["patient_registered"]
    );
    actors
}

pub fn consent_governs_access_and_every_access_is_audited(chain: &mut impl Chain) {
    let actors = setup(chain);
    let (patient, hospital, lab, contract) =
        (actors.patient, actors.hospital, actors.lab, actors.contract);
    let pointer = String::from("s3://st-marys/records/7f3a");

    let refused =
        chain.call(hospital, contract, "add_record", &(patient, [1u8; 32], pointer.clone()));
    assert_eq!(refused.revert_reason(), Some("the patient has not granted this provider consent"));

    chain.set_block(20, 1_767_300_000_000);
    assert_eq!(
        chain.call(patient, contract, "grant_consent", &(hospital,)).topics(),
        ["consent_granted"]
    );
    let added =
        chain.call(hospital, contract, "add_record", &(patient, [1u8; 32], pointer.clone()));
    assert_eq!(added.topics(), ["record_added"]);
    assert_eq!(added.returned::<u32>(), 0);

    chain.set_block(21, 1_767_300_060_000);
    let read = chain.call(hospital, contract, "read_records", &(patient,));
    assert_eq!(read.topics(), ["records_read"]);
    let access: Access = read.returned();
    assert!(access.granted);
    let records = access.records;
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].provider, records[0].content_hash), (hospital, [1; 32]));
    assert_eq!(records[0].pointer, pointer);

    // The lab never got consent: refused, and the attempt is on the patient's trail.
    let lab_read = chain.call(lab, contract, "read_records", &(patient,));
    assert_eq!(lab_read.topics(), ["read_refused"]);
    assert_eq!(lab_read.returned::<Access>(), Access { granted: false, records: Vec::new() });

    chain.set_block(22, 1_767_300_120_000);
    assert_eq!(
        chain.call(patient, contract, "revoke_consent", &(hospital,)).topics(),
        ["consent_revoked"]
    );
    let after_revoke = chain.call(hospital, contract, "read_records", &(patient,));
    assert!(!after_revoke.returned::<Access>().granted);
    assert!(!chain.call(patient, contract, "has_consent", &(patient, hospital)).returned::<bool>());

    let own: Vec<RecordReference> = chain.call(patient, contract, "my_records", &()).returned();
    assert_eq!(own, records);

    let trail: Vec<AuditEntry> = chain.call(patient, contract, "audit_trail", &()).returned();
    let actions: Vec<(&str, Address, u64)> =
        trail.iter().map(|entry| (entry.action.as_str(), entry.actor, entry.height)).collect();
    assert_eq!(
        actions,
        [
            ("consent_granted", patient, 20),
            ("record_added", hospital, 20),
            ("records_read", hospital, 21),
            ("read_refused", lab, 21),
            ("consent_revoked", patient, 22),
            ("read_refused", hospital, 22),
        ]
    );
}

pub fn only_patients_read_their_audit_trail_and_only_admin_registers_providers(
    chain: &mut impl Chain,
) {
    let actors = setup(chain);
    let stranger = account("stranger");
    let trail = chain.call(stranger, actors.contract, "audit_trail", &());
    assert_eq!(trail.revert_reason(), Some("not a registered patient"));
    let rogue = chain.call(
        actors.hospital,
        actors.contract,
        "register_provider",
        &(stranger, String::from("Rogue")),
    );
    assert_eq!(rogue.revert_reason(), Some("only the administrator registers providers"));
    let unregistered = chain.call(
        stranger,
        actors.contract,
        "add_record",
        &(actors.patient, [2u8; 32], String::from("x")),
    );
    assert_eq!(unregistered.revert_reason(), Some("the caller is not a registered provider"));
    let snooping = chain.call(stranger, actors.contract, "read_records", &(actors.patient,));
    assert_eq!(snooping.revert_reason(), Some("the caller is not a registered provider"));
    let twice = chain.call(actors.patient, actors.contract, "register_patient", &());
    assert_eq!(twice.revert_reason(), Some("already registered"));
}
