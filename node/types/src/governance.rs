//! What a governance transaction carries: the actions on a proposal, the changes a
//! proposal bundles, and the approval policies that decide when it passes.
//!
//! The rules that decide whether a change is acceptable and when a proposal passes live
//! in `pactum-governance`; this module only gives them a canonical encoding and a JSON
//! form (`docs/governance.md`, ADR 0019).

use serde::{Deserialize, Serialize};

use crate::block::Address;
use crate::codec::{Decode, DecodeError, Encode, Reader, write};
use crate::crypto::{PublicKey, Signature};
use crate::gas::GasSchedule;
use crate::hash::Hash;
use crate::limits;
use crate::parameters::ConsensusParameters;
use crate::transaction::ChainId;

/// A governance step, signed by a key enrolled with an `admin` certificate of a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GovernanceAction {
    /// Open a proposal: an atomic bundle of changes. The proposer's organisation counts
    /// as its first approval. Its id is the hash of the proposing transaction.
    Propose {
        title: String,
        description: String,
        /// The proposal expires at the end of this block if it has not passed by then.
        expires_at_height: u64,
        changes: Vec<GovernanceChange>,
    },
    /// The sender's organisation approves the open proposal `proposal`.
    Approve { proposal: Hash },
    /// The sender's organisation rejects the open proposal `proposal`.
    Reject { proposal: Hash },
    /// The proposer's organisation withdraws its open proposal `proposal`.
    Withdraw { proposal: Hash },
    /// Signed by a validator an applied proposal added, once its node has caught up: it
    /// is ready to vote. The next epoch is scheduled once every new validator is ready
    /// (ADR 0021).
    Ready,
}

/// A validator a proposal adds: its certificate and the intermediate CAs between it and
/// its member's root, the addresses others reach it at, and its proof of possession of
/// the key: its signature over [`join_message`] under `domain::VALIDATOR_JOIN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewValidator {
    pub name: String,
    #[serde(with = "crate::json::hex_bytes")]
    pub certificate_der: Vec<u8>,
    #[serde(with = "crate::json::hex_byte_vecs", default)]
    pub chain_der: Vec<Vec<u8>>,
    /// `host:port` of its peer (mutual-TLS) endpoint.
    pub network_address: String,
    /// `host:port` of its REST API.
    pub api_address: String,
    pub proof: Signature,
}

/// What a new validator's key signs to prove it is held by whoever asks to join: the
/// chain, the key itself and the address it will listen on, so a proof is good for one
/// chain and one validator entry only.
pub fn join_message(chain: &ChainId, public_key: &PublicKey, network_address: &str) -> Vec<u8> {
    let mut out = Vec::new();
    chain.encode_to(&mut out);
    public_key.encode_to(&mut out);
    write::string(&mut out, network_address);
    out
}

/// The classes of change; each has its own approval policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeClass {
    /// Adding, removing or updating a member organisation (its CAs).
    Membership,
    /// Adding or removing validators.
    Validators,
    /// Revoking certificates.
    Certificates,
    /// Setting an approval policy.
    Policies,
    /// Deploying or upgrading contracts by proposal.
    Contracts,
    /// The consensus and block parameters and the gas schedule.
    Parameters,
}

impl ChangeClass {
    pub const ALL: [ChangeClass; 6] = [
        ChangeClass::Membership,
        ChangeClass::Validators,
        ChangeClass::Certificates,
        ChangeClass::Policies,
        ChangeClass::Contracts,
        ChangeClass::Parameters,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeClass::Membership => "membership",
            ChangeClass::Validators => "validators",
            ChangeClass::Certificates => "certificates",
            ChangeClass::Policies => "policies",
            ChangeClass::Contracts => "contracts",
            ChangeClass::Parameters => "parameters",
        }
    }

    fn tag(self) -> u8 {
        match self {
            ChangeClass::Membership => 1,
            ChangeClass::Validators => 2,
            ChangeClass::Certificates => 3,
            ChangeClass::Policies => 4,
            ChangeClass::Contracts => 5,
            ChangeClass::Parameters => 6,
        }
    }
}

impl std::fmt::Display for ChangeClass {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How many of the current member organisations must approve a change of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Policy {
    /// At least `count` organisations.
    AtLeast { count: u16 },
    /// More than `numerator / denominator` of the organisations.
    MoreThan { numerator: u16, denominator: u16 },
    /// Every organisation.
    All,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::AtLeast { count } => write!(formatter, "at least {count}"),
            Policy::MoreThan { numerator, denominator } => {
                write!(formatter, "more than {numerator}/{denominator}")
            }
            Policy::All => formatter.write_str("all"),
        }
    }
}

/// Who may deploy contracts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeployPolicy {
    /// Any enrolled identity (the genesis policy).
    Open,
    /// Identities enrolled under these member organisations.
    Organisations { organisations: Vec<String> },
    /// Only code whose hash a proposal approved (`approve_code`), by any enrolled
    /// identity.
    ByProposal,
}

impl std::fmt::Display for DeployPolicy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeployPolicy::Open => formatter.write_str("open"),
            DeployPolicy::Organisations { organisations } => {
                write!(formatter, "organisations {}", organisations.join(", "))
            }
            DeployPolicy::ByProposal => formatter.write_str("by proposal"),
        }
    }
}

/// One change to the consortium's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum GovernanceChange {
    /// A new member organisation with its CA certificates (DER): one or more self-signed
    /// Ed25519 CAs whose organisation is `organisation`.
    AddMember {
        organisation: String,
        #[serde(with = "crate::json::hex_byte_vecs")]
        ca_certificates_der: Vec<Vec<u8>>,
    },
    /// Removes a member organisation and every identity enrolled under it.
    RemoveMember { organisation: String },
    /// Replaces a member's CA certificates. A rotation lists the old and the new CA side
    /// by side, and a later update drops the old one.
    UpdateMember {
        organisation: String,
        #[serde(with = "crate::json::hex_byte_vecs")]
        ca_certificates_der: Vec<Vec<u8>>,
    },
    /// Adds a validator; it votes from the epoch after it announced itself ready.
    AddValidator { validator: NewValidator },
    /// Removes the validator with this key from the next epoch on.
    RemoveValidator { validator: PublicKey },
    /// Sets the approval policy of one class of change.
    SetPolicy { class: ChangeClass, policy: Policy },
    /// Revokes the certificate `serial` of `organisation`: identities enrolled with it
    /// can no longer transact, and it enrols nothing again.
    RevokeCertificate {
        organisation: String,
        #[serde(with = "crate::json::hex_bytes")]
        serial: Vec<u8>,
    },
    /// Replaces the code of the contract at `contract`, keeping its storage and address.
    UpgradeContract {
        contract: Address,
        #[serde(with = "crate::json::hex_bytes")]
        code: Vec<u8>,
    },
    /// Sets who may deploy contracts.
    SetDeployPolicy { policy: DeployPolicy },
    /// Approves code (by its SHA3-256 hash) for deployment under the `by_proposal` policy.
    ApproveCode { code_hash: Hash },
    /// Replaces the consensus and block parameters from the next epoch on (ADR 0022).
    SetParameters { parameters: ConsensusParameters },
    /// Replaces the gas schedule from the block after the proposal is applied; the new
    /// schedule's version is the current one's plus one.
    SetGasSchedule { schedule: GasSchedule },
}

impl GovernanceChange {
    /// The class whose policy governs this change.
    pub fn class(&self) -> ChangeClass {
        match self {
            GovernanceChange::AddMember { .. }
            | GovernanceChange::RemoveMember { .. }
            | GovernanceChange::UpdateMember { .. } => ChangeClass::Membership,
            GovernanceChange::AddValidator { .. } | GovernanceChange::RemoveValidator { .. } => {
                ChangeClass::Validators
            }
            GovernanceChange::SetPolicy { .. } => ChangeClass::Policies,
            GovernanceChange::RevokeCertificate { .. } => ChangeClass::Certificates,
            GovernanceChange::UpgradeContract { .. }
            | GovernanceChange::SetDeployPolicy { .. }
            | GovernanceChange::ApproveCode { .. } => ChangeClass::Contracts,
            GovernanceChange::SetParameters { .. } | GovernanceChange::SetGasSchedule { .. } => {
                ChangeClass::Parameters
            }
        }
    }

    /// The change's name as in its JSON `change` field.
    pub fn name(&self) -> &'static str {
        match self {
            GovernanceChange::AddMember { .. } => "add_member",
            GovernanceChange::RemoveMember { .. } => "remove_member",
            GovernanceChange::UpdateMember { .. } => "update_member",
            GovernanceChange::AddValidator { .. } => "add_validator",
            GovernanceChange::RemoveValidator { .. } => "remove_validator",
            GovernanceChange::SetPolicy { .. } => "set_policy",
            GovernanceChange::RevokeCertificate { .. } => "revoke_certificate",
            GovernanceChange::UpgradeContract { .. } => "upgrade_contract",
            GovernanceChange::SetDeployPolicy { .. } => "set_deploy_policy",
            GovernanceChange::ApproveCode { .. } => "approve_code",
            GovernanceChange::SetParameters { .. } => "set_parameters",
            GovernanceChange::SetGasSchedule { .. } => "set_gas_schedule",
        }
    }
}

impl Encode for GovernanceAction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            GovernanceAction::Propose { title, description, expires_at_height, changes } => {
                write::u8(out, 1);
                write::string(out, title);
                write::string(out, description);
                write::u64(out, *expires_at_height);
                write::sequence(out, changes);
            }
            GovernanceAction::Approve { proposal } => {
                write::u8(out, 2);
                proposal.encode_to(out);
            }
            GovernanceAction::Reject { proposal } => {
                write::u8(out, 3);
                proposal.encode_to(out);
            }
            GovernanceAction::Withdraw { proposal } => {
                write::u8(out, 4);
                proposal.encode_to(out);
            }
            GovernanceAction::Ready => write::u8(out, 5),
        }
    }
}

impl Decode for GovernanceAction {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("governance action")? {
            1 => Ok(GovernanceAction::Propose {
                title: reader.string(limits::PROPOSAL_TITLE_BYTES_MAX, "proposal title")?,
                description: reader
                    .string(limits::PROPOSAL_DESCRIPTION_BYTES_MAX, "proposal description")?,
                expires_at_height: reader.u64("expiry height")?,
                changes: reader.sequence(limits::PROPOSAL_CHANGES_MAX, "proposal changes")?,
            }),
            2 => Ok(GovernanceAction::Approve { proposal: Hash::decode_from(reader)? }),
            3 => Ok(GovernanceAction::Reject { proposal: Hash::decode_from(reader)? }),
            4 => Ok(GovernanceAction::Withdraw { proposal: Hash::decode_from(reader)? }),
            5 => Ok(GovernanceAction::Ready),
            tag => Err(DecodeError::UnknownTag { what: "governance action", tag }),
        }
    }
}

impl Encode for NewValidator {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::string(out, &self.name);
        write::bytes(out, &self.certificate_der);
        write_certificates(out, &self.chain_der);
        write::string(out, &self.network_address);
        write::string(out, &self.api_address);
        self.proof.encode_to(out);
    }
}

impl Decode for NewValidator {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            name: reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "validator name")?,
            certificate_der: reader.byte_vec(limits::CERTIFICATE_BYTES_MAX, "certificate")?,
            chain_der: read_certificates(reader)?,
            network_address: reader.string(limits::NETWORK_ADDRESS_BYTES_MAX, "network address")?,
            api_address: reader.string(limits::NETWORK_ADDRESS_BYTES_MAX, "API address")?,
            proof: Signature::decode_from(reader)?,
        })
    }
}

impl Encode for ChangeClass {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, self.tag());
    }
}

impl Decode for ChangeClass {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = reader.u8("change class")?;
        ChangeClass::ALL
            .into_iter()
            .find(|class| class.tag() == tag)
            .ok_or(DecodeError::UnknownTag { what: "change class", tag })
    }
}

impl Encode for Policy {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Policy::AtLeast { count } => {
                write::u8(out, 1);
                write::u16(out, *count);
            }
            Policy::MoreThan { numerator, denominator } => {
                write::u8(out, 2);
                write::u16(out, *numerator);
                write::u16(out, *denominator);
            }
            Policy::All => write::u8(out, 3),
        }
    }
}

impl Decode for Policy {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("policy")? {
            1 => Ok(Policy::AtLeast { count: reader.u16("policy count")? }),
            2 => Ok(Policy::MoreThan {
                numerator: reader.u16("policy numerator")?,
                denominator: reader.u16("policy denominator")?,
            }),
            3 => Ok(Policy::All),
            tag => Err(DecodeError::UnknownTag { what: "policy", tag }),
        }
    }
}

impl Encode for DeployPolicy {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            DeployPolicy::Open => write::u8(out, 1),
            DeployPolicy::Organisations { organisations } => {
                write::u8(out, 2);
                write::length(out, organisations.len());
                for organisation in organisations {
                    write::string(out, organisation);
                }
            }
            DeployPolicy::ByProposal => write::u8(out, 3),
        }
    }
}

impl Decode for DeployPolicy {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("deploy policy")? {
            1 => Ok(DeployPolicy::Open),
            2 => {
                let count = reader.length(limits::MEMBERS_MAX, "deploy organisations")?;
                let organisations = (0..count)
                    .map(|_| reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "organisation"))
                    .collect::<Result<_, _>>()?;
                Ok(DeployPolicy::Organisations { organisations })
            }
            3 => Ok(DeployPolicy::ByProposal),
            tag => Err(DecodeError::UnknownTag { what: "deploy policy", tag }),
        }
    }
}

/// CA certificates, count-prefixed, each length-prefixed.
fn write_certificates(out: &mut Vec<u8>, certificates: &[Vec<u8>]) {
    write::length(out, certificates.len());
    for certificate in certificates {
        write::bytes(out, certificate);
    }
}

fn read_certificates(reader: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let count = reader.length(limits::MEMBER_CA_CERTIFICATES_MAX, "CA certificates")?;
    (0..count).map(|_| reader.byte_vec(limits::CERTIFICATE_BYTES_MAX, "CA certificate")).collect()
}

impl Encode for GovernanceChange {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            GovernanceChange::AddMember { organisation, ca_certificates_der } => {
                write::u8(out, 1);
                write::string(out, organisation);
                write_certificates(out, ca_certificates_der);
            }
            GovernanceChange::RemoveMember { organisation } => {
                write::u8(out, 2);
                write::string(out, organisation);
            }
            GovernanceChange::AddValidator { validator } => {
                write::u8(out, 3);
                validator.encode_to(out);
            }
            GovernanceChange::RemoveValidator { validator } => {
                write::u8(out, 4);
                validator.encode_to(out);
            }
            GovernanceChange::SetPolicy { class, policy } => {
                write::u8(out, 5);
                class.encode_to(out);
                policy.encode_to(out);
            }
            GovernanceChange::RevokeCertificate { organisation, serial } => {
                write::u8(out, 6);
                write::string(out, organisation);
                write::bytes(out, serial);
            }
            GovernanceChange::UpgradeContract { contract, code } => {
                write::u8(out, 7);
                contract.encode_to(out);
                write::bytes(out, code);
            }
            GovernanceChange::UpdateMember { organisation, ca_certificates_der } => {
                write::u8(out, 8);
                write::string(out, organisation);
                write_certificates(out, ca_certificates_der);
            }
            GovernanceChange::SetDeployPolicy { policy } => {
                write::u8(out, 9);
                policy.encode_to(out);
            }
            GovernanceChange::ApproveCode { code_hash } => {
                write::u8(out, 10);
                code_hash.encode_to(out);
            }
            GovernanceChange::SetParameters { parameters } => {
                write::u8(out, 11);
                parameters.encode_to(out);
            }
            GovernanceChange::SetGasSchedule { schedule } => {
                write::u8(out, 12);
                schedule.encode_to(out);
            }
        }
    }
}

impl Decode for GovernanceChange {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let organisation = |reader: &mut Reader<'_>| {
            reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "organisation")
        };
        match reader.u8("governance change")? {
            1 => Ok(GovernanceChange::AddMember {
                organisation: organisation(reader)?,
                ca_certificates_der: read_certificates(reader)?,
            }),
            2 => Ok(GovernanceChange::RemoveMember { organisation: organisation(reader)? }),
            3 => {
                Ok(GovernanceChange::AddValidator { validator: NewValidator::decode_from(reader)? })
            }
            4 => {
                Ok(GovernanceChange::RemoveValidator { validator: PublicKey::decode_from(reader)? })
            }
            5 => Ok(GovernanceChange::SetPolicy {
                class: ChangeClass::decode_from(reader)?,
                policy: Policy::decode_from(reader)?,
            }),
            6 => Ok(GovernanceChange::RevokeCertificate {
                organisation: organisation(reader)?,
                serial: reader.byte_vec(limits::CERTIFICATE_SERIAL_BYTES_MAX, "serial")?,
            }),
            7 => Ok(GovernanceChange::UpgradeContract {
                contract: Address::decode_from(reader)?,
                code: reader.byte_vec(limits::CONTRACT_CODE_BYTES_MAX, "contract code")?,
            }),
            8 => Ok(GovernanceChange::UpdateMember {
                organisation: organisation(reader)?,
                ca_certificates_der: read_certificates(reader)?,
            }),
            9 => {
                Ok(GovernanceChange::SetDeployPolicy { policy: DeployPolicy::decode_from(reader)? })
            }
            10 => Ok(GovernanceChange::ApproveCode { code_hash: Hash::decode_from(reader)? }),
            11 => Ok(GovernanceChange::SetParameters {
                parameters: ConsensusParameters::decode_from(reader)?,
            }),
            12 => {
                Ok(GovernanceChange::SetGasSchedule { schedule: GasSchedule::decode_from(reader)? })
            }
            tag => Err(DecodeError::UnknownTag { what: "governance change", tag }),
        }
    }
}
