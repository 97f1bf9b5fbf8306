//! The consortium configuration: who the members are, which CAs they trust, who validates,
//! the approval policy of each class of change, and what is revoked.
//!
//! The genesis file gives its first version; each applied proposal makes the next one.
//! The executor stores every version in the ledger's consortium space, so it is part of
//! the state root and readable at any height (`docs/storage.md`).

use std::collections::{BTreeMap, BTreeSet};

use pactum_certs::verify::TrustStore;
use pactum_types::codec::{Decode, DecodeError, Encode, Reader, write};
use pactum_types::gas::GasSchedule;
use pactum_types::hash::sha3_256;
use pactum_types::{
    ChangeClass, ConsensusParameters, DeployPolicy, Hash, Policy, PublicKey, limits,
};

use crate::parameters::boundary_interval;

/// A member organisation and the CA certificates (DER) its certificates chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Its CA certificates: one or more self-signed Ed25519 roots (more than one during a
    /// rotation) and any intermediate CAs under them.
    pub ca_certificates_der: Vec<Vec<u8>>,
}

/// A validator: its certificate's key is its consensus key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// Its replica id in every epoch it belongs to: the genesis validators are 0 to n − 1
    /// in genesis order, and each added validator takes the next index (never reused).
    pub index: u16,
    pub name: String,
    pub organisation: String,
    pub public_key: PublicKey,
    pub certificate_der: Vec<u8>,
    /// The intermediate CAs between its certificate and its member's root.
    pub chain_der: Vec<Vec<u8>>,
    /// `host:port` of its peer (mutual-TLS) endpoint.
    pub address: String,
    /// `host:port` of its REST API.
    pub api_address: String,
}

/// The validator set and parameters of the next epoch, between the proposal that changed
/// them and the boundary (ADR 0021, ADR 0022).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEpoch {
    /// The next epoch's validators, by index.
    pub validators: Vec<Validator>,
    /// The next epoch's consensus and block parameters.
    pub parameters: ConsensusParameters,
    /// Validators the change adds that have not announced themselves ready yet.
    pub waiting: BTreeSet<PublicKey>,
    /// The current epoch's last sequence number (height), set once nobody is waiting:
    /// the first checkpoint a whole watermark window past that block.
    pub last: Option<u64>,
}

impl PlannedEpoch {
    /// Whether `key` is a validator this plan adds (ready or not).
    pub fn adds(&self, key: &PublicKey, current: &[Validator]) -> bool {
        self.validators.iter().any(|validator| validator.public_key == *key)
            && !current.iter().any(|validator| validator.public_key == *key)
    }
}

/// One version of the consortium configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consortium {
    /// 1 at genesis; each applied proposal adds one.
    pub version: u64,
    /// By name.
    pub members: BTreeMap<String, Member>,
    /// The current epoch's validators, by index.
    pub validators: Vec<Validator>,
    /// The current epoch: 0 at genesis.
    pub epoch: u64,
    /// The height the current epoch started after (0 for the genesis epoch).
    pub epoch_start: u64,
    /// The index the next added validator takes.
    pub next_validator_index: u16,
    /// A validator-set or parameter change waiting for its boundary.
    pub planned: Option<PlannedEpoch>,
    /// The current epoch's consensus and block parameters.
    pub parameters: ConsensusParameters,
    /// The gas schedule contracts are charged by.
    pub gas_schedule: GasSchedule,
    /// The approval policy of every class of change.
    pub policies: BTreeMap<ChangeClass, Policy>,
    /// `(organisation, certificate serial)`.
    pub revoked: BTreeSet<(String, Vec<u8>)>,
    /// Who may deploy contracts.
    pub deploy_policy: DeployPolicy,
    /// Code hashes a proposal approved for deployment (under `DeployPolicy::ByProposal`).
    pub approved_code: BTreeSet<Hash>,
}

impl Consortium {
    /// The first version, from a genesis whose every class of change needs
    /// `approvals_required` organisations, and which charges gas by version 1.
    pub fn genesis(
        members: Vec<Member>,
        validators: Vec<Validator>,
        approvals_required: u16,
        revoked: impl IntoIterator<Item = (String, Vec<u8>)>,
        parameters: ConsensusParameters,
    ) -> Self {
        let policy = Policy::AtLeast { count: approvals_required };
        let next_validator_index = u16::try_from(validators.len()).unwrap_or(u16::MAX);
        Self {
            version: 1,
            members: members.into_iter().map(|member| (member.name.clone(), member)).collect(),
            validators,
            epoch: 0,
            epoch_start: 0,
            next_validator_index,
            planned: None,
            parameters,
            gas_schedule: GasSchedule::V1,
            policies: ChangeClass::ALL.into_iter().map(|class| (class, policy)).collect(),
            revoked: revoked.into_iter().collect(),
            deploy_policy: DeployPolicy::Open,
            approved_code: BTreeSet::new(),
        }
    }

    /// Why an identity of `organisation` may not deploy `code_hash`, if it may not.
    pub fn deploy_refusal(&self, organisation: &str, code_hash: &Hash) -> Option<String> {
        match &self.deploy_policy {
            DeployPolicy::Open => None,
            DeployPolicy::Organisations { organisations } => {
                (!organisations.iter().any(|allowed| allowed == organisation)).then(|| {
                    format!(
                        "the deploy policy allows deploys from {} only, not from {organisation:?}",
                        organisations.join(", ")
                    )
                })
            }
            DeployPolicy::ByProposal => (!self.approved_code.contains(code_hash)).then(|| {
                format!(
                    "the deploy policy is by proposal, and no proposal approved code {code_hash}: \
                     propose approve_code with this hash first"
                )
            }),
        }
    }

    pub fn is_member(&self, organisation: &str) -> bool {
        self.members.contains_key(organisation)
    }

    pub fn is_revoked(&self, organisation: &str, serial: &[u8]) -> bool {
        self.revoked.contains(&(organisation.to_owned(), serial.to_vec()))
    }

    /// The policy of `class` (every class has one; a missing one would be a damaged
    /// record, and needs every member).
    pub fn policy(&self, class: ChangeClass) -> Policy {
        self.policies.get(&class).copied().unwrap_or(Policy::All)
    }

    /// The validator with `key` in the current epoch.
    pub fn validator(&self, key: &PublicKey) -> Option<&Validator> {
        self.validators.iter().find(|validator| validator.public_key == *key)
    }

    /// Every validator the transport should connect to: the current epoch's and those a
    /// planned epoch adds (they catch up as observers before they vote).
    pub fn connected_validators(&self) -> Vec<&Validator> {
        let mut all: Vec<&Validator> = self.validators.iter().collect();
        if let Some(planned) = &self.planned {
            for validator in &planned.validators {
                if !all.iter().any(|known| known.public_key == validator.public_key) {
                    all.push(validator);
                }
            }
        }
        all
    }

    /// The current epoch's last height, once scheduled.
    pub fn epoch_last(&self) -> Option<u64> {
        self.planned.as_ref().and_then(|planned| planned.last)
    }

    /// The validator `key`, added by the planned epoch and waiting, announced itself ready
    /// in the block at `height`: once nobody waits, the current epoch ends a whole window
    /// later (ADR 0021). The next version, or why the announcement is refused.
    pub fn ready(&self, key: &PublicKey, height: u64) -> Result<Consortium, String> {
        let mut next = self.clone();
        let Some(planned) = next.planned.as_mut() else {
            return Err("no validator-set change is waiting for its validators".into());
        };
        if !planned.waiting.remove(key) {
            return Err(format!("{key} is not a validator waiting to join"));
        }
        if planned.waiting.is_empty() {
            planned.last = Some(schedule(height, &self.parameters, &planned.parameters));
        }
        next.version += 1;
        Ok(next)
    }

    /// At the end of the block at `height`: if it is the current epoch's last, the next
    /// version, in which the planned epoch is the current one.
    pub fn enter_next_epoch(&self, height: u64) -> Option<Consortium> {
        let planned = self.planned.as_ref().filter(|planned| planned.last == Some(height))?;
        let mut next = self.clone();
        next.validators = planned.validators.clone();
        next.parameters = planned.parameters.clone();
        next.epoch += 1;
        next.epoch_start = height;
        next.planned = None;
        next.version += 1;
        Some(next)
    }

    /// SHA3-256 of the current epoch's validator set (index and key of each, by index):
    /// what a block header commits to.
    pub fn validator_set_hash(&self) -> Hash {
        validator_set_hash(&self.validators)
    }

    /// A trust store holding exactly this version's CAs and revocations.
    pub fn trust_store(&self) -> TrustStore {
        let trust = TrustStore::new();
        self.fill(&trust);
        trust
    }

    /// Makes `trust` hold exactly this version's CAs and revocations, in place, so that
    /// the TLS verifiers sharing it follow governance without restarting.
    pub fn fill(&self, trust: &TrustStore) {
        let authorities: Vec<&[u8]> = self
            .members
            .values()
            .flat_map(|member| member.ca_certificates_der.iter().map(Vec::as_slice))
            .collect();
        // Roots and intermediates alike: `replace` tells them apart.
        trust.replace(&authorities, self.revoked.iter().cloned());
    }

    /// SHA3-256 of the canonical encoding.
    pub fn hash(&self) -> Hash {
        sha3_256(&self.to_bytes())
    }
}

impl Encode for Member {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::string(out, &self.name);
        write::length(out, self.ca_certificates_der.len());
        for certificate in &self.ca_certificates_der {
            write::bytes(out, certificate);
        }
    }
}

impl Decode for Member {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "organisation")?;
        let count = reader.length(limits::MEMBER_CA_CERTIFICATES_MAX, "CA certificates")?;
        let ca_certificates_der = (0..count)
            .map(|_| reader.byte_vec(limits::CERTIFICATE_BYTES_MAX, "CA certificate"))
            .collect::<Result<_, _>>()?;
        Ok(Self { name, ca_certificates_der })
    }
}

/// The last height of an epoch whose change was settled in the block at `height`: the
/// first checkpoint of both epochs a whole window of the current one past it.
pub(crate) fn schedule(
    height: u64,
    current: &ConsensusParameters,
    next: &ConsensusParameters,
) -> u64 {
    pactum_consensus::epoch_last_sequence(
        pactum_consensus::Sequence(height),
        boundary_interval(current, next),
        current.watermark_window,
    )
    .0
}

/// SHA3-256 of a validator set: each validator's index and key, in index order.
pub fn validator_set_hash(validators: &[Validator]) -> Hash {
    let mut bytes = b"pactum.validator-set.v1\0".to_vec();
    write::length(&mut bytes, validators.len());
    for validator in validators {
        write::u16(&mut bytes, validator.index);
        validator.public_key.encode_to(&mut bytes);
    }
    sha3_256(&bytes)
}

impl Encode for PlannedEpoch {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::sequence(out, &self.validators);
        self.parameters.encode_to(out);
        let waiting: Vec<PublicKey> = self.waiting.iter().copied().collect();
        write::sequence(out, &waiting);
        match self.last {
            Some(last) => {
                write::u8(out, 1);
                write::u64(out, last);
            }
            None => write::u8(out, 0),
        }
    }
}

impl Decode for PlannedEpoch {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let validators = reader.sequence(limits::VALIDATORS_MAX, "planned validators")?;
        let parameters = ConsensusParameters::decode_from(reader)?;
        let waiting: Vec<PublicKey> = reader.sequence(limits::VALIDATORS_MAX, "waiting")?;
        let last = match reader.u8("planned epoch end")? {
            0 => None,
            1 => Some(reader.u64("planned epoch end")?),
            tag => return Err(DecodeError::UnknownTag { what: "planned epoch end", tag }),
        };
        Ok(Self { validators, parameters, waiting: waiting.into_iter().collect(), last })
    }
}

impl Encode for Validator {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u16(out, self.index);
        write::string(out, &self.name);
        write::string(out, &self.organisation);
        self.public_key.encode_to(out);
        write::bytes(out, &self.certificate_der);
        write::length(out, self.chain_der.len());
        for der in &self.chain_der {
            write::bytes(out, der);
        }
        write::string(out, &self.address);
        write::string(out, &self.api_address);
    }
}

impl Decode for Validator {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            index: reader.u16("validator index")?,
            name: reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "validator name")?,
            organisation: reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "organisation")?,
            public_key: PublicKey::decode_from(reader)?,
            certificate_der: reader.byte_vec(limits::CERTIFICATE_BYTES_MAX, "certificate")?,
            chain_der: {
                let count = reader.length(limits::MEMBER_CA_CERTIFICATES_MAX, "chain")?;
                (0..count)
                    .map(|_| reader.byte_vec(limits::CERTIFICATE_BYTES_MAX, "chain certificate"))
                    .collect::<Result<_, _>>()?
            },
            address: reader.string(limits::NETWORK_ADDRESS_BYTES_MAX, "address")?,
            api_address: reader.string(limits::NETWORK_ADDRESS_BYTES_MAX, "API address")?,
        })
    }
}

/// Format version of the stored record.
const CONSORTIUM_FORMAT_VERSION: u8 = 3;

impl Encode for Consortium {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, CONSORTIUM_FORMAT_VERSION);
        write::u64(out, self.version);
        let members: Vec<Member> = self.members.values().cloned().collect();
        write::sequence(out, &members);
        write::sequence(out, &self.validators);
        write::u64(out, self.epoch);
        write::u64(out, self.epoch_start);
        write::u16(out, self.next_validator_index);
        match &self.planned {
            Some(planned) => {
                write::u8(out, 1);
                planned.encode_to(out);
            }
            None => write::u8(out, 0),
        }
        self.parameters.encode_to(out);
        self.gas_schedule.encode_to(out);
        write::length(out, self.policies.len());
        for (class, policy) in &self.policies {
            class.encode_to(out);
            policy.encode_to(out);
        }
        write::length(out, self.revoked.len());
        for (organisation, serial) in &self.revoked {
            write::string(out, organisation);
            write::bytes(out, serial);
        }
        self.deploy_policy.encode_to(out);
        let approved: Vec<Hash> = self.approved_code.iter().copied().collect();
        write::sequence(out, &approved);
    }
}

impl Decode for Consortium {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let format = reader.u8("consortium format")?;
        if format != CONSORTIUM_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "consortium",
                version: format,
                supported: CONSORTIUM_FORMAT_VERSION,
            });
        }
        let version = reader.u64("consortium version")?;
        let members: Vec<Member> = reader.sequence(limits::MEMBERS_MAX, "members")?;
        let validators = reader.sequence(limits::VALIDATORS_MAX, "validators")?;
        let epoch = reader.u64("epoch")?;
        let epoch_start = reader.u64("epoch start")?;
        let next_validator_index = reader.u16("next validator index")?;
        let planned = match reader.u8("planned epoch")? {
            0 => None,
            1 => Some(PlannedEpoch::decode_from(reader)?),
            tag => return Err(DecodeError::UnknownTag { what: "planned epoch", tag }),
        };
        let parameters = ConsensusParameters::decode_from(reader)?;
        let gas_schedule = GasSchedule::decode_from(reader)?;
        let policy_count = reader.length(ChangeClass::ALL.len(), "policies")?;
        let mut policies = BTreeMap::new();
        for _ in 0..policy_count {
            let class = ChangeClass::decode_from(reader)?;
            policies.insert(class, Policy::decode_from(reader)?);
        }
        let revoked_count = reader.length(limits::REVOCATIONS_MAX, "revocations")?;
        let mut revoked = BTreeSet::new();
        for _ in 0..revoked_count {
            let organisation =
                reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "organisation")?;
            revoked.insert((
                organisation,
                reader.byte_vec(limits::CERTIFICATE_SERIAL_BYTES_MAX, "serial")?,
            ));
        }
        let deploy_policy = DeployPolicy::decode_from(reader)?;
        let approved: Vec<Hash> = reader.sequence(limits::APPROVED_CODES_MAX, "approved code")?;
        Ok(Self {
            version,
            members: members.into_iter().map(|member| (member.name.clone(), member)).collect(),
            validators,
            epoch,
            epoch_start,
            next_validator_index,
            planned,
            parameters,
            gas_schedule,
            policies,
            revoked,
            deploy_policy,
            approved_code: approved.into_iter().collect(),
        })
    }
}
