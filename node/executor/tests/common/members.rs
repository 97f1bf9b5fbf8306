//! Member organisations with real CAs, their identities, and a governed executor.

use std::path::Path;
use std::sync::Arc;

use pactum_certs::authority::{IssueRequest, create_authority, issue};
use pactum_certs::identity::{CertificateInfo, certificates_from_pem};
use pactum_certs::{Role, tls::ed25519_seed_of_pem};
use pactum_executor::{Executor, ExecutorOptions};
use pactum_governance::{Consortium, Member};
use pactum_storage::Store;
use pactum_types::{ConsensusParameters, GovernanceAction, Keypair, Payload, Transaction};
use pactum_vm::VmOptions;

use super::{Account, GENESIS_TIME_MS, chain_id};

/// A member organisation: its CA, valid from a day before genesis for ten years.
pub struct Organisation {
    pub name: String,
    certificate_pem: String,
    key_pem: String,
    pub ca_der: Vec<u8>,
}

/// An identity's account, certificate (DER) and what the certificate says.
pub struct Identity {
    pub account: Account,
    pub der: Vec<u8>,
    pub info: CertificateInfo,
}

fn day_before_genesis() -> i64 {
    (GENESIS_TIME_MS / 1000) as i64 - 86_400
}

impl Organisation {
    pub fn new(name: &str) -> Self {
        let authority = create_authority(name, day_before_genesis(), 3650).unwrap();
        let ca_der = certificates_from_pem(authority.certificate_pem.as_bytes()).unwrap().remove(0);
        Self {
            name: name.into(),
            certificate_pem: authority.certificate_pem,
            key_pem: authority.private_key_pem,
            ca_der,
        }
    }

    /// A certificate with `role` valid for `days` from a day before genesis, and its key.
    pub fn identity(&self, role: Role, name: &str, days: u32) -> Identity {
        let request =
            IssueRequest { role, name, subject_alt_names: &[], at: day_before_genesis(), days };
        let issued = issue(&self.certificate_pem, &self.key_pem, &request).unwrap();
        let seed = ed25519_seed_of_pem(&issued.private_key_pem).unwrap();
        let der = certificates_from_pem(issued.certificate_pem.as_bytes()).unwrap().remove(0);
        let info = CertificateInfo::from_der(&der).unwrap();
        Identity {
            account: Account { keypair: Keypair::from_seed(&seed), next_nonce: 0 },
            der,
            info,
        }
    }

    /// A validator record (replica id `index`) with a fresh validator certificate, and
    /// its identity.
    pub fn validator(&self, index: u16, name: &str) -> (pactum_governance::Validator, Identity) {
        let identity = self.identity(Role::Validator, name, 365);
        let validator = pactum_governance::Validator {
            index,
            name: name.into(),
            organisation: self.name.clone(),
            public_key: identity.info.public_key,
            certificate_der: identity.der.clone(),
            chain_der: Vec::new(),
            address: format!("127.0.0.1:{}", 7000 + index),
            api_address: format!("127.0.0.1:{}", 8000 + index),
        };
        (validator, identity)
    }

    pub fn member(&self) -> Member {
        Member { name: self.name.clone(), ca_certificates_der: vec![self.ca_der.clone()] }
    }
}

/// A consortium of `organisations` (no validators: the executor does not need them)
/// where every class of change needs `approvals` organisations.
pub fn consortium(organisations: &[&Organisation], approvals: u16) -> Consortium {
    let members = organisations.iter().map(|organisation| organisation.member()).collect();
    Consortium::genesis(members, Vec::new(), approvals, [], ConsensusParameters::default())
}

/// An executor in `directory` governed by `consortium` from genesis.
pub fn open_governed(directory: &Path, consortium: &Consortium) -> Executor {
    let store = Store::open(directory.join("db")).unwrap();
    let options = ExecutorOptions {
        vm: VmOptions {
            artifact_directory: Some(directory.join("artifacts")),
            ..VmOptions::default()
        },
        consortium: Some(Arc::new(consortium.clone())),
        ..ExecutorOptions::new(chain_id())
    };
    Executor::open(store, options).unwrap()
}

impl Identity {
    pub fn enrol(&mut self) -> Transaction {
        let certificate_der = self.der.clone();
        self.account.sign(1_000_000, Payload::EnrolIdentity { certificate_der })
    }

    pub fn govern(&mut self, action: GovernanceAction) -> Transaction {
        self.account.sign(1_000_000, Payload::Governance { action })
    }
}
