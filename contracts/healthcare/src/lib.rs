//! Healthcare record references with patient consent and an audit trail.
//!
//! The deployer is the administrator and registers providers (hospitals, clinics,
//! laboratories). Patients register themselves. The ledger never holds medical data:
//! a record is a reference, the SHA3-256 hash of the document and a pointer to where the
//! provider keeps it. A patient grants and revokes consent per provider; a provider adds
//! and reads a patient's records only while it holds consent. Every access (adding or
//! reading records, and consent changes) is appended to the patient's audit trail, which
//! only the patient can read. Every step emits an event.
//!
//! A registered provider's read without consent is refused and is itself recorded
//! (`read_refused`): the patient sees every attempt, allowed or not. The call does not
//! revert (a revert would discard the entry); it returns `Access { granted: false }`.
//! Other refusals (an unregistered caller or patient, a write without consent) revert, and
//! the reverted transaction and its reason stay visible in the ledger's receipts.

#![no_std]
#![allow(
    clippy::needless_pass_by_value,
    reason = "entry points own their decoded arguments, as `contract!` passes them"
)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use pactum_sdk::storage::{Map, Value};
use pactum_sdk::{Address, Result, ensure, env, record};

#[cfg(not(target_arch = "wasm32"))]
pub mod scenarios;

record! {
    /// A reference to a medical record kept off the ledger.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RecordReference {
        pub provider: Address,
        pub content_hash: [u8; 32],
        pub pointer: String,
        pub height: u64,
        pub timestamp_ms: u64,
    }
}

record! {
    /// What a provider's read gave: the records when the patient consents, none (and
    /// `granted: false`) when not.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Access {
        pub granted: bool,
        pub records: Vec<RecordReference>,
    }
}

record! {
    /// One entry of a patient's audit trail. `action` is `consent_granted`,
    /// `consent_revoked`, `record_added`, `records_read` or `read_refused`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AuditEntry {
        pub actor: Address,
        pub action: String,
        pub height: u64,
        pub timestamp_ms: u64,
    }
}

/// Records one patient may have, and audit entries one patient's trail may hold.
pub const RECORDS_MAX: u32 = 10_000;
pub const AUDIT_ENTRIES_MAX: u32 = 100_000;

const ADMIN: Value<Address> = Value::new(b"admin");
const PROVIDERS: Map<Address, String> = Map::new(b"provider");
const PATIENTS: Map<Address, u32> = Map::new(b"patient");
const CONSENT: Map<(Address, Address), bool> = Map::new(b"consent");
const RECORDS: Map<(Address, u32), RecordReference> = Map::new(b"record");
const AUDIT_LENGTH: Map<Address, u32> = Map::new(b"audit_length");
const AUDIT: Map<(Address, u32), AuditEntry> = Map::new(b"audit");

pactum_sdk::contract! {
    init() => init;
    methods {
        register_provider(provider: Address, name: String);
        register_patient();
        grant_consent(provider: Address);
        revoke_consent(provider: Address);
        has_consent(patient: Address, provider: Address) -> bool;
        add_record(patient: Address, content_hash: [u8; 32], pointer: String) -> u32;
        read_records(patient: Address) -> Access;
        my_records() -> Vec<RecordReference>;
        audit_trail() -> Vec<AuditEntry>;
    }
}

pub fn init() -> Result<()> {
    ADMIN.set(&env::caller());
    Ok(())
}

fn audit(patient: Address, actor: Address, action: &str) -> Result<()> {
    let length = AUDIT_LENGTH.get_or(&patient, 0);
    ensure!(length < AUDIT_ENTRIES_MAX, "the patient's audit trail is full");
    let entry = AuditEntry {
        actor,
        action: String::from(action),
        height: env::block_height(),
        timestamp_ms: env::block_timestamp_ms(),
    };
    AUDIT.set(&(patient, length), &entry);
    AUDIT_LENGTH.set(&patient, &(length + 1));
    Ok(())
}

fn registered_patient(patient: Address) -> Result<u32> {
    PATIENTS.get(&patient).ok_or_else(|| "not a registered patient".into())
}

fn consenting_provider(patient: Address) -> Result<Address> {
    let provider = env::caller();
    ensure!(PROVIDERS.contains(&provider), "the caller is not a registered provider");
    registered_patient(patient)?;
    ensure!(
        CONSENT.get_or(&(patient, provider), false),
        "the patient has not granted this provider consent"
    );
    Ok(provider)
}

pub fn register_provider(provider: Address, name: String) -> Result<()> {
    ensure!(Some(env::caller()) == ADMIN.get(), "only the administrator registers providers");
    ensure!(!name.is_empty(), "a provider needs a name");
    PROVIDERS.set(&provider, &name);
    env::emit("provider_registered", &(provider, name));
    Ok(())
}

pub fn register_patient() -> Result<()> {
    let patient = env::caller();
    ensure!(!PATIENTS.contains(&patient), "already registered");
    PATIENTS.set(&patient, &0);
    env::emit("patient_registered", &patient);
    Ok(())
}

pub fn grant_consent(provider: Address) -> Result<()> {
    let patient = env::caller();
    registered_patient(patient)?;
    ensure!(PROVIDERS.contains(&provider), "not a registered provider");
    CONSENT.set(&(patient, provider), &true);
    audit(patient, patient, "consent_granted")?;
    env::emit("consent_granted", &(patient, provider));
    Ok(())
}

pub fn revoke_consent(provider: Address) -> Result<()> {
    let patient = env::caller();
    registered_patient(patient)?;
    CONSENT.remove(&(patient, provider));
    audit(patient, patient, "consent_revoked")?;
    env::emit("consent_revoked", &(patient, provider));
    Ok(())
}

pub fn has_consent(patient: Address, provider: Address) -> Result<bool> {
    Ok(CONSENT.get_or(&(patient, provider), false))
}

pub fn add_record(patient: Address, content_hash: [u8; 32], pointer: String) -> Result<u32> {
    let provider = consenting_provider(patient)?;
    ensure!(!pointer.is_empty() && pointer.len() <= 256, "a pointer has 1 to 256 bytes");
    let count = registered_patient(patient)?;
    ensure!(count < RECORDS_MAX, "the patient has too many records");
    let reference = RecordReference {
        provider,
        content_hash,
        pointer,
        height: env::block_height(),
        timestamp_ms: env::block_timestamp_ms(),
    };
    RECORDS.set(&(patient, count), &reference);
    PATIENTS.set(&patient, &(count + 1));
    audit(patient, provider, "record_added")?;
    env::emit("record_added", &(patient, provider, content_hash));
    Ok(count)
}

fn records_of(patient: Address) -> Result<Vec<RecordReference>> {
    let count = registered_patient(patient)?;
    let mut records = Vec::with_capacity(count as usize);
    for index in 0..count {
        records.push(RECORDS.get(&(patient, index)).ok_or("record missing")?);
    }
    Ok(records)
}

/// A provider reads a patient's record references. The read is audited, and so is a
/// read refused for want of consent.
pub fn read_records(patient: Address) -> Result<Access> {
    let provider = env::caller();
    ensure!(PROVIDERS.contains(&provider), "the caller is not a registered provider");
    registered_patient(patient)?;
    if !CONSENT.get_or(&(patient, provider), false) {
        audit(patient, provider, "read_refused")?;
        env::emit("read_refused", &(patient, provider));
        return Ok(Access { granted: false, records: Vec::new() });
    }
    audit(patient, provider, "records_read")?;
    env::emit("records_read", &(patient, provider));
    Ok(Access { granted: true, records: records_of(patient)? })
}

/// A patient reads their own record references.
pub fn my_records() -> Result<Vec<RecordReference>> {
    records_of(env::caller())
}

/// A patient reads their own audit trail.
pub fn audit_trail() -> Result<Vec<AuditEntry>> {
    let patient = env::caller();
    registered_patient(patient)?;
    let length = AUDIT_LENGTH.get_or(&patient, 0);
    let mut entries = Vec::with_capacity(length as usize);
    for index in 0..length {
        entries.push(AUDIT.get(&(patient, index)).ok_or("audit entry missing")?);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use pactum_sdk::testing::MockChain;

    fn chain() -> MockChain {
        let mut chain = MockChain::new();
        chain.register("healthcare", super::NATIVE);
        chain
    }

    #[test]
    fn consent_governs_access_and_every_access_is_audited() {
        super::scenarios::consent_governs_access_and_every_access_is_audited(&mut chain());
    }

    #[test]
    fn only_patients_read_their_audit_trail_and_only_admin_registers_providers() {
        super::scenarios::only_patients_read_their_audit_trail_and_only_admin_registers_providers(
            &mut chain(),
        );
    }
}
