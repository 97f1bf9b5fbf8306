//! The genesis file: the consortium a chain starts with.
//!
//! It is JSON (operators write and review it by hand, and `pactum devnet` generates it):
//! the chain id and genesis time, the member organisations with their CA certificates,
//! the validators with their certificates and addresses, the governance approval policy,
//! the gas schedule version and the consensus parameters. [`Genesis::from_json`] reads it
//! and checks every rule below; a node refuses to start on a genesis that fails one.
//!
//! - organisations have distinct names, and each `ca_certificate` holds a self-signed
//!   Ed25519 root CA whose organisation (`O`) is the name given, optionally followed by
//!   intermediate CAs of the same organisation that chain to it (PEM, root first);
//! - a validator's `certificate` may be followed by the intermediate CAs between it and
//!   its member's root (leaf first, as TLS presents it);
//! - there are at least 4 validators (PBFT tolerates a fault from n = 4) and at most
//!   [`limits::VALIDATORS_MAX`]; each validator's certificate chains to the CA of the
//!   organisation it names, carries the validator role, and is valid at genesis time;
//!   validator keys, names and addresses are distinct;
//! - the governance policy needs between 1 and all organisations;
//! - the gas schedule version is one this build knows;
//! - the consensus parameters form a valid PBFT configuration and batches fit in a block.
//!
//! The validators' order in the file is their replica id: validator `i` is replica `i`,
//! and replica `v mod n` is the primary of view `v`.

use std::collections::BTreeSet;
use std::path::Path;

use pactum_certs::identity::{CertificateInfo, Role, certificates_from_pem};
use pactum_certs::verify::{CHAIN_INTERMEDIATES_MAX, CertError, TrustStore};
use pactum_consensus::Config;
pub use pactum_types::ConsensusParameters;
use pactum_types::codec::write;
use pactum_types::hash::sha3_256;
use pactum_types::{ChainId, Hash, PublicKey, limits};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Gas schedule versions this build can execute.
pub const GAS_SCHEDULE_VERSIONS: &[u32] = &[1];

/// The genesis file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    pub chain_id: ChainId,
    /// Unix seconds. Certificates are checked at this time, and block 1 comes after it.
    pub genesis_time: i64,
    pub organisations: Vec<OrganisationEntry>,
    pub validators: Vec<ValidatorEntry>,
    pub governance: GovernancePolicy,
    pub gas_schedule_version: u32,
    pub consensus: ConsensusParameters,
    /// Certificates revoked from the start (say, a validator's previous certificate):
    /// no node accepts them, as peer or signer. Later revocations are governance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<RevokedEntry>,
}

/// A revoked certificate: its organisation and serial number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedEntry {
    pub organisation: String,
    /// The certificate's serial number, hex.
    pub serial: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationEntry {
    pub name: String,
    /// The organisation's CA certificate, PEM.
    pub ca_certificate: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
    pub name: String,
    pub organisation: String,
    /// The validator's certificate, PEM; its key is the validator's consensus key.
    pub certificate: String,
    /// `host:port` where the validator accepts other validators' mutual-TLS connections.
    pub address: String,
    /// `host:port` of the validator's REST API.
    pub api_address: String,
}

/// Governance changes take effect once `approvals_required` member organisations approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernancePolicy {
    pub approvals_required: usize,
}

/// A member organisation, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub name: String,
    /// Its root CA.
    pub ca_der: Vec<u8>,
    /// Intermediate CAs under the root that issue its certificates.
    pub intermediates_der: Vec<Vec<u8>>,
}

/// A validator, checked: the consortium configuration's own record.
pub use pactum_governance::Validator;

/// A genesis that passed every check.
#[derive(Debug, Clone)]
pub struct Genesis {
    pub file: GenesisFile,
    pub organisations: Vec<Organisation>,
    /// In replica-id order.
    pub validators: Vec<Validator>,
    /// `(organisation, serial)` of every certificate revoked at genesis.
    pub revoked: Vec<(String, Vec<u8>)>,
    /// Identifies this genesis: SHA3-256 over a canonical encoding of everything in it.
    pub hash: Hash,
}

#[derive(Debug, Error)]
pub enum GenesisError {
    #[error("cannot read the genesis file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the genesis file is not valid genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("organisation {name:?}: {reason}")]
    Organisation { name: String, reason: String },
    #[error("validator {name:?}: {reason}")]
    Validator { name: String, reason: String },
    #[error(
        "the governance policy needs {required} approvals, but there are {organisations} organisations; choose 1 to {organisations}"
    )]
    Governance { required: usize, organisations: usize },
    #[error(
        "gas schedule version {0} is unknown to this build of pactum (it knows {GAS_SCHEDULE_VERSIONS:?})"
    )]
    GasSchedule(u32),
    #[error("consensus parameters: {0}")]
    Consensus(String),
    #[error(
        "genesis has {count} validators; PBFT needs at least 4 and Pactum allows at most {max}"
    )]
    ValidatorCount { count: usize, max: usize },
}

fn organisation_error(name: &str, reason: impl Into<String>) -> GenesisError {
    GenesisError::Organisation { name: name.to_owned(), reason: reason.into() }
}

fn validator_error(name: &str, reason: impl Into<String>) -> GenesisError {
    GenesisError::Validator { name: name.to_owned(), reason: reason.into() }
}

/// The certificates in `pem`, DER: one, then at most `max - 1` more (a chain).
fn certificates(pem: &str, max: usize) -> Result<Vec<Vec<u8>>, String> {
    let certificates = certificates_from_pem(pem.as_bytes()).map_err(|error| error.to_string())?;
    match certificates.len() {
        0 => Err("no PEM certificate found".into()),
        count if count > max => Err(format!("{count} certificates where at most {max} may be")),
        _ => Ok(certificates),
    }
}

impl Genesis {
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| GenesisError::Read { path: path.display().to_string(), source })?;
        Self::from_json(&text)
    }

    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        Self::check(serde_json::from_str(text)?)
    }

    /// Checks a genesis file against every rule in the module documentation.
    pub fn check(file: GenesisFile) -> Result<Self, GenesisError> {
        let trust = TrustStore::new();
        let mut organisations = Vec::new();
        let mut names = BTreeSet::new();
        for entry in &file.organisations {
            if !names.insert(entry.name.as_str()) {
                return Err(organisation_error(&entry.name, "listed twice"));
            }
            let mut ders = certificates(&entry.ca_certificate, limits::MEMBER_CA_CERTIFICATES_MAX)
                .map_err(|reason| organisation_error(&entry.name, reason))?;
            let der = ders.remove(0);
            let info = trust
                .add_authority(&der)
                .map_err(|error| organisation_error(&entry.name, error.to_string()))?;
            // Intermediate CAs follow the root; each must chain to it.
            for intermediate in &ders {
                trust.add_intermediate(intermediate).map_err(|error| {
                    organisation_error(&entry.name, format!("intermediate CA: {error}"))
                })?;
            }
            for (position, intermediate) in ders.iter().enumerate() {
                trust.verify_authority(intermediate, file.genesis_time).map_err(|error| {
                    organisation_error(&entry.name, format!("intermediate CA {position}: {error}"))
                })?;
            }
            if info.organisation != entry.name {
                return Err(organisation_error(
                    &entry.name,
                    format!("its CA certificate names organisation {:?}", info.organisation),
                ));
            }
            organisations.push(Organisation {
                name: entry.name.clone(),
                ca_der: der,
                intermediates_der: ders,
            });
        }
        if organisations.is_empty() {
            return Err(organisation_error("", "genesis lists no organisations"));
        }
        let mut revoked = Vec::new();
        for entry in &file.revoked {
            if !names.contains(entry.organisation.as_str()) {
                return Err(organisation_error(
                    &entry.organisation,
                    "a revocation names an organisation that is not a member",
                ));
            }
            let serial = hex::decode(&entry.serial)
                .ok()
                .filter(|serial| {
                    !serial.is_empty() && serial.len() <= limits::CERTIFICATE_SERIAL_BYTES_MAX
                })
                .ok_or_else(|| {
                    organisation_error(
                        &entry.organisation,
                        format!("revoked serial {:?} is not 1 to 20 bytes of hex", entry.serial),
                    )
                })?;
            trust.revoke(&entry.organisation, &serial);
            revoked.push((entry.organisation.clone(), serial));
        }

        let count = file.validators.len();
        if !(4..=limits::VALIDATORS_MAX).contains(&count) {
            return Err(GenesisError::ValidatorCount { count, max: limits::VALIDATORS_MAX });
        }
        let mut validators = Vec::new();
        let (mut keys, mut validator_names, mut addresses) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for entry in &file.validators {
            let fail = |reason: String| validator_error(&entry.name, reason);
            if !names.contains(entry.organisation.as_str()) {
                return Err(fail(format!("organisation {:?} is not a member", entry.organisation)));
            }
            let mut chain =
                certificates(&entry.certificate, 1 + CHAIN_INTERMEDIATES_MAX).map_err(fail)?;
            let der = chain.remove(0);
            let presented: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
            let verified = trust
                .verify_chain(&der, &presented, file.genesis_time, Some(Role::Validator))
                .map_err(|error: CertError| fail(format!("certificate refused: {error}")))?;
            let CertificateInfo { organisation, public_key, .. } = verified.info;
            if organisation != entry.organisation {
                return Err(fail(format!(
                    "its certificate belongs to {organisation:?}, not {:?}",
                    entry.organisation
                )));
            }
            if !validator_names.insert(entry.name.clone()) {
                return Err(fail("the name is used twice".into()));
            }
            if !keys.insert(public_key.0) {
                return Err(fail("its key is another validator's key".into()));
            }
            for address in [&entry.address, &entry.api_address] {
                if address.parse::<std::net::SocketAddr>().is_err() && !address.contains(':') {
                    return Err(fail(format!("{address:?} is not a host:port address")));
                }
                if !addresses.insert(address.clone()) {
                    return Err(fail(format!("address {address} is used twice")));
                }
            }
            validators.push(Validator {
                index: u16::try_from(validators.len()).unwrap_or(u16::MAX),
                name: entry.name.clone(),
                organisation,
                public_key,
                certificate_der: der,
                chain_der: chain,
                address: entry.address.clone(),
                api_address: entry.api_address.clone(),
            });
        }

        let required = file.governance.approvals_required;
        if required == 0 || required > organisations.len() {
            return Err(GenesisError::Governance { required, organisations: organisations.len() });
        }
        if !GAS_SCHEDULE_VERSIONS.contains(&file.gas_schedule_version) {
            return Err(GenesisError::GasSchedule(file.gas_schedule_version));
        }
        let members: Vec<u16> = validators.iter().map(|validator| validator.index).collect();
        pactum_governance::check_parameters(&file.consensus, None, &members)
            .map_err(GenesisError::Consensus)?;

        let hash = genesis_hash(&file, &organisations, &validators, &revoked);
        Ok(Self { file, organisations, validators, revoked, hash })
    }

    /// The PBFT configuration: the genesis parameters, the validator count, and the genesis
    /// hash as the chain identity every consensus signature covers.
    pub fn consensus_config(&self) -> Config {
        self.epoch_config(&self.consortium(), Hash::ZERO)
    }

    /// A trust store holding the member CAs and the revocations.
    /// The consortium configuration's first version: every class of change needs
    /// `approvals_required` organisations (`AtLeast`).
    pub fn consortium(&self) -> pactum_governance::Consortium {
        let members = self
            .organisations
            .iter()
            .map(|organisation| pactum_governance::Member {
                name: organisation.name.clone(),
                ca_certificates_der: std::iter::once(&organisation.ca_der)
                    .chain(&organisation.intermediates_der)
                    .cloned()
                    .collect(),
            })
            .collect();
        let validators = self.validators.clone();
        // Checked when the genesis was read: between 1 and the organisations' count.
        let approvals = u16::try_from(self.file.governance.approvals_required).unwrap_or(u16::MAX);
        pactum_governance::Consortium::genesis(
            members,
            validators,
            approvals,
            self.revoked.clone(),
            self.file.consensus.clone(),
        )
    }

    /// A trust store holding the genesis members' CAs and revocations.
    pub fn trust_store(&self) -> TrustStore {
        self.consortium().trust_store()
    }

    /// The replica id of the validator holding `key`, if it is one.
    /// The PBFT configuration of the epoch `consortium` is in: its validators (by index),
    /// its parameters, its identity, and its start, whose state digest is `start_digest`
    /// (ADR 0021, ADR 0022).
    pub fn epoch_config(
        &self,
        consortium: &pactum_governance::Consortium,
        start_digest: Hash,
    ) -> Config {
        let mut members: Vec<u16> =
            consortium.validators.iter().map(|validator| validator.index).collect();
        members.sort_unstable();
        pactum_governance::consensus_config(
            &consortium.parameters,
            members,
            consortium.epoch,
            pactum_consensus::epoch_identity(&self.hash, consortium.epoch),
            consortium.epoch_start,
            start_digest,
        )
    }

    /// What governance checks a bundle of changes against, for a block at `height` and
    /// Unix time `at` of this chain.
    pub fn governance_context(&self, height: u64, at: i64) -> pactum_governance::Context {
        pactum_governance::Context { at, height, chain: self.file.chain_id.clone() }
    }

    pub fn replica_id(&self, key: &PublicKey) -> Option<u16> {
        self.validators
            .iter()
            .position(|validator| validator.public_key == *key)
            .and_then(|index| u16::try_from(index).ok())
    }

    pub fn validator_keys(&self) -> Vec<PublicKey> {
        self.validators.iter().map(|validator| validator.public_key).collect()
    }
}

/// SHA3-256 over a canonical encoding of the checked genesis: formatting, key order and
/// PEM line breaks in the file do not change it, any value does.
fn genesis_hash(
    file: &GenesisFile,
    organisations: &[Organisation],
    validators: &[Validator],
    revoked: &[(String, Vec<u8>)],
) -> Hash {
    let mut bytes = b"pactum.genesis.v1\0".to_vec();
    write::string(&mut bytes, file.chain_id.as_str());
    write::u64(&mut bytes, file.genesis_time as u64);
    write::u32(&mut bytes, organisations.len() as u32);
    for organisation in organisations {
        write::string(&mut bytes, &organisation.name);
        write::bytes(&mut bytes, &organisation.ca_der);
    }
    write::u32(&mut bytes, validators.len() as u32);
    for validator in validators {
        write::string(&mut bytes, &validator.name);
        write::string(&mut bytes, &validator.organisation);
        write::bytes(&mut bytes, &validator.certificate_der);
        write::string(&mut bytes, &validator.address);
        write::string(&mut bytes, &validator.api_address);
    }
    write::u64(&mut bytes, file.governance.approvals_required as u64);
    write::u32(&mut bytes, file.gas_schedule_version);
    let parameters = &file.consensus;
    for value in [
        parameters.batch_transactions_max as u64,
        parameters.batch_bytes_max as u64,
        parameters.batch_timeout_ms,
        parameters.checkpoint_interval,
        parameters.watermark_window,
        parameters.retransmit_interval_ms,
        parameters.request_timeout_ms,
        parameters.view_change_timeout_ms,
        parameters.view_change_timeout_max_ms,
        parameters.block_gas_max,
        parameters.block_state_bytes_max,
        parameters.block_receipt_bytes_max,
        parameters.timestamp_skew_max_ms,
    ] {
        write::u64(&mut bytes, value);
    }
    // Appended only when present, so a genesis without revocations keeps its hash.
    if !revoked.is_empty() {
        write::u32(&mut bytes, revoked.len() as u32);
        for (organisation, serial) in revoked {
            write::string(&mut bytes, organisation);
            write::bytes(&mut bytes, serial);
        }
    }
    // Likewise intermediate CAs and validators' chains, each section tagged.
    let intermediates = organisations.iter().any(|o| !o.intermediates_der.is_empty());
    let chains = validators.iter().any(|validator| !validator.chain_der.is_empty());
    if intermediates || chains {
        bytes.extend_from_slice(b"\0chains");
        for organisation in organisations {
            write::u32(&mut bytes, organisation.intermediates_der.len() as u32);
            for der in &organisation.intermediates_der {
                write::bytes(&mut bytes, der);
            }
        }
        for validator in validators {
            write::u32(&mut bytes, validator.chain_der.len() as u32);
            for der in &validator.chain_der {
                write::bytes(&mut bytes, der);
            }
        }
    }
    sha3_256(&bytes)
}
