//! The checks every change passes, when proposed and again when applied, and what it
//! does to the configuration. Pure: the same configuration, changes and time give the
//! same answer on every validator.

use std::collections::BTreeSet;

use pactum_certs::identity::{CertificateInfo, Role};
use pactum_types::crypto::domain;
use pactum_types::{
    ChainId, ChangeClass, ConsensusParameters, DeployPolicy, GovernanceChange, NewValidator,
    Policy, PublicKey, join_message,
};
use thiserror::Error;

use crate::consortium::{Consortium, Member, PlannedEpoch, Validator, schedule};
use crate::parameters::check_parameters;
use crate::policy::{PolicyError, required_approvals};
use pactum_types::limits;

/// Why a bundle of changes cannot be applied. Each names the change (0-based position
/// in the bundle) it is about, where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChangeError {
    #[error("a proposal bundles 1 to {max} changes; this one has {count}")]
    ChangeCount { count: usize, max: usize },
    #[error("change {index} ({change}): {reason}")]
    Refused { index: usize, change: &'static str, reason: String },
    #[error("after these changes, the {class} policy could not be met: {source}")]
    PolicyUnreachable {
        class: ChangeClass,
        #[source]
        source: PolicyError,
    },
}

/// What the checks depend on besides the configuration: the block's time and height, and
/// the chain (a new validator's proof of possession names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Unix seconds: the block's time.
    pub at: i64,
    pub height: u64,
    pub chain: ChainId,
}

/// What a bundle changes in the next epoch, if anything: its validators, its parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct NextEpoch {
    validators: Option<Vec<Validator>>,
    parameters: Option<ConsensusParameters>,
}

/// Applies `changes`, in order, to a copy of `consortium` in the block `context`
/// describes, checking each; the result is the next version. Nothing is applied unless
/// all pass. Validator and parameter changes make the next epoch ([`PlannedEpoch`]): it
/// starts once every added validator announced itself ready, a whole window later.
pub fn apply(
    consortium: &Consortium,
    changes: &[GovernanceChange],
    context: &Context,
) -> Result<Consortium, ChangeError> {
    let (next, planned) = apply_each(consortium, changes, context)?;
    finish(consortium, next, planned, changes, context)
}

/// Applies and checks each change in turn: the configuration after them, and the next
/// epoch's validators and parameters if they change. The checks of the bundle as a whole are
/// [`finish`]'s.
pub(crate) fn apply_each(
    consortium: &Consortium,
    changes: &[GovernanceChange],
    context: &Context,
) -> Result<(Consortium, NextEpoch), ChangeError> {
    let at = context.at;
    if changes.is_empty() || changes.len() > limits::PROPOSAL_CHANGES_MAX {
        return Err(ChangeError::ChangeCount {
            count: changes.len(),
            max: limits::PROPOSAL_CHANGES_MAX,
        });
    }
    let mut next = consortium.clone();
    // The next epoch's validators and parameters, if the bundle changes them.
    let mut planned = NextEpoch::default();
    for (index, change) in changes.iter().enumerate() {
        let refused =
            |reason: String| ChangeError::Refused { index, change: change.name(), reason };
        match change {
            GovernanceChange::AddMember { organisation, ca_certificates_der } => {
                if next.is_member(organisation) {
                    return Err(refused(format!("{organisation:?} is already a member")));
                }
                if next.members.len() >= limits::MEMBERS_MAX {
                    return Err(refused(format!(
                        "the consortium has the most members allowed ({})",
                        limits::MEMBERS_MAX
                    )));
                }
                check_name(organisation).map_err(refused)?;
                check_authorities(organisation, ca_certificates_der, at).map_err(refused)?;
                next.members.insert(
                    organisation.clone(),
                    Member {
                        name: organisation.clone(),
                        ca_certificates_der: ca_certificates_der.clone(),
                    },
                );
            }
            GovernanceChange::RemoveMember { organisation } => {
                if !next.is_member(organisation) {
                    return Err(refused(format!("{organisation:?} is not a member")));
                }
                let set = planned.validators.as_ref().unwrap_or(&next.validators);
                let validators =
                    set.iter().filter(|validator| validator.organisation == *organisation).count();
                if validators > 0 {
                    return Err(refused(format!(
                        "{organisation:?} runs {validators} validators; remove them earlier in \
                         the same proposal"
                    )));
                }
                if next.members.len() == 1 {
                    return Err(refused("the last member cannot be removed".into()));
                }
                next.members.remove(organisation);
                if let DeployPolicy::Organisations { organisations } = &mut next.deploy_policy {
                    organisations.retain(|allowed| allowed != organisation);
                    if organisations.is_empty() {
                        return Err(refused(format!(
                            "{organisation:?} is the only organisation allowed to deploy; set \
                             another deploy policy in the same proposal first"
                        )));
                    }
                }
            }
            GovernanceChange::UpdateMember { organisation, ca_certificates_der } => {
                if !next.is_member(organisation) {
                    return Err(refused(format!("{organisation:?} is not a member")));
                }
                check_authorities(organisation, ca_certificates_der, at).map_err(refused)?;
                let member = Member {
                    name: organisation.clone(),
                    ca_certificates_der: ca_certificates_der.clone(),
                };
                // Every validator of the member must still chain to one of its CAs, or it
                // would be turned away by every peer.
                let mut trial = next.clone();
                trial.members.insert(organisation.clone(), member.clone());
                let trust = trial.trust_store();
                for validator in next.validators.iter().filter(|v| v.organisation == *organisation)
                {
                    let chain: Vec<&[u8]> = validator.chain_der.iter().map(Vec::as_slice).collect();
                    if let Err(error) =
                        trust.verify_chain(&validator.certificate_der, &chain, at, None)
                    {
                        return Err(refused(format!(
                            "validator {} would no longer be trusted: {error}; keep the CA that \
                             issued its certificate until it has a new one",
                            validator.name
                        )));
                    }
                }
                next.members.insert(organisation.clone(), member);
            }
            GovernanceChange::AddValidator { validator } => {
                if let Some(reason) = pending_change(&next) {
                    return Err(refused(reason));
                }
                let set = planned.validators.get_or_insert_with(|| next.validators.clone());
                let added = check_new_validator(&next, set, validator, context).map_err(refused)?;
                next.next_validator_index =
                    next.next_validator_index.checked_add(1).ok_or_else(|| {
                        refused("the consortium has used every validator index".into())
                    })?;
                set.push(added);
            }
            GovernanceChange::RemoveValidator { validator } => {
                if let Some(reason) = pending_change(&next) {
                    return Err(refused(reason));
                }
                let set = planned.validators.get_or_insert_with(|| next.validators.clone());
                let Some(position) = set.iter().position(|known| known.public_key == *validator)
                else {
                    return Err(refused(format!("no validator has key {validator}")));
                };
                set.remove(position);
            }
            // The code and the contract are the executor's to check (it has the VM and the
            // state); the configuration itself does not change.
            GovernanceChange::UpgradeContract { code, .. } => {
                if code.is_empty() {
                    return Err(refused("the new code is empty".into()));
                }
            }
            GovernanceChange::SetDeployPolicy { policy } => {
                if let DeployPolicy::Organisations { organisations } = policy {
                    if organisations.is_empty() {
                        return Err(refused("name at least one organisation".into()));
                    }
                    let mut seen = BTreeSet::new();
                    for organisation in organisations {
                        if !next.is_member(organisation) {
                            return Err(refused(format!("{organisation:?} is not a member")));
                        }
                        if !seen.insert(organisation) {
                            return Err(refused(format!("{organisation:?} is listed twice")));
                        }
                    }
                }
                if next.deploy_policy == *policy {
                    return Err(refused(format!("the deploy policy is already \"{policy}\"")));
                }
                next.deploy_policy = policy.clone();
            }
            GovernanceChange::ApproveCode { code_hash } => {
                if next.approved_code.contains(code_hash) {
                    return Err(refused(format!("code {code_hash} is already approved")));
                }
                if next.approved_code.len() >= limits::APPROVED_CODES_MAX {
                    return Err(refused(format!(
                        "the consortium holds the most approved code hashes allowed ({})",
                        limits::APPROVED_CODES_MAX
                    )));
                }
                next.approved_code.insert(*code_hash);
            }
            GovernanceChange::SetParameters { parameters } => {
                if planned.parameters.is_some() {
                    return Err(refused("the bundle sets the parameters twice".into()));
                }
                if let Some(reason) = pending_change(&next) {
                    return Err(refused(reason));
                }
                if *parameters == next.parameters {
                    return Err(refused("these are the parameters in force".into()));
                }
                planned.parameters = Some(parameters.clone());
            }
            GovernanceChange::SetGasSchedule { schedule } => {
                schedule.check_successor(&next.gas_schedule).map_err(refused)?;
                next.gas_schedule = *schedule;
            }
            GovernanceChange::SetPolicy { class, policy } => {
                check_policy_shape(*policy).map_err(|error| refused(error.to_string()))?;
                if next.policy(*class) == *policy {
                    return Err(refused(format!("the {class} policy is already \"{policy}\"")));
                }
                next.policies.insert(*class, *policy);
            }
            GovernanceChange::RevokeCertificate { organisation, serial } => {
                if !next.is_member(organisation) {
                    return Err(refused(format!("{organisation:?} is not a member")));
                }
                if serial.is_empty() {
                    return Err(refused("the serial is empty".into()));
                }
                if next.is_revoked(organisation, serial) {
                    return Err(refused(format!(
                        "certificate {} of {organisation:?} is already revoked",
                        hex::encode(serial)
                    )));
                }
                if next.revoked.len() >= limits::REVOCATIONS_MAX {
                    return Err(refused(format!(
                        "the consortium holds the most revocations allowed ({})",
                        limits::REVOCATIONS_MAX
                    )));
                }
                // A validator's certificate is revoked only with the validator removed
                // earlier in the bundle (and, to rotate its key, added again with a new
                // one): from the next block its handshakes are refused, and it votes until
                // the epoch boundary no more.
                let staying = planned.validators.as_ref().unwrap_or(&next.validators);
                if let Some(validator) = staying.iter().find(|validator| {
                    validator.organisation == *organisation
                        && CertificateInfo::from_der(&validator.certificate_der)
                            .is_ok_and(|info| info.serial == *serial)
                }) {
                    return Err(refused(format!(
                        "it is the certificate of validator {}; remove the validator earlier in \
                         the same proposal (and add it again with a new key to rotate it)",
                        validator.name
                    )));
                }
                next.revoked.insert((organisation.clone(), serial.clone()));
            }
        }
    }
    Ok((next, planned))
}

/// The checks of a bundle as a whole (the next epoch's set, every policy still
/// reachable), and the version number.
fn finish(
    consortium: &Consortium,
    mut next: Consortium,
    planned: NextEpoch,
    changes: &[GovernanceChange],
    context: &Context,
) -> Result<Consortium, ChangeError> {
    if planned.validators.is_some() || planned.parameters.is_some() {
        let index = changes.len() - 1;
        let refused =
            |reason: String| ChangeError::Refused { index, change: changes[index].name(), reason };
        let validators = planned.validators.unwrap_or_else(|| next.validators.clone());
        check_validator_set(&next, &validators).map_err(refused)?;
        let parameters = planned.parameters.unwrap_or_else(|| next.parameters.clone());
        let mut members: Vec<u16> = validators.iter().map(|validator| validator.index).collect();
        members.sort_unstable();
        check_parameters(&parameters, Some(&next.parameters), &members)
            .map_err(|reason| refused(format!("the next epoch's parameters: {reason}")))?;
        let waiting: BTreeSet<PublicKey> = validators
            .iter()
            .filter(|validator| next.validator(&validator.public_key).is_none())
            .map(|validator| validator.public_key)
            .collect();
        let last =
            waiting.is_empty().then(|| schedule(context.height, &next.parameters, &parameters));
        next.planned = Some(PlannedEpoch { validators, parameters, waiting, last });
    }
    for class in ChangeClass::ALL {
        required_approvals(next.policy(class), next.members.len())
            .map_err(|source| ChangeError::PolicyUnreachable { class, source })?;
    }
    next.version = consortium.version + 1;
    Ok(next)
}

/// Why another validator-set or parameter change must wait, if one is planned already:
/// the epoch boundary of a plan is fixed once scheduled, and two plans would not be
/// ordered.
fn pending_change(consortium: &Consortium) -> Option<String> {
    let planned = consortium.planned.as_ref()?;
    Some(match planned.last {
        Some(last) => format!(
            "a change of the validator set or parameters already takes effect after height \
             {last}; propose this one after it"
        ),
        None => format!(
            "a change of the validator set is waiting for {} new validators to announce \
             themselves ready; propose this one after it takes effect",
            planned.waiting.len()
        ),
    })
}

/// Checks a validator a proposal adds against the consortium (its members and CAs, as
/// changed so far by the bundle) and the set it joins; the validator with its index.
fn check_new_validator(
    consortium: &Consortium,
    set: &[Validator],
    validator: &NewValidator,
    context: &Context,
) -> Result<Validator, String> {
    let name = &validator.name;
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(format!("{name:?} is not a validator name"));
    }
    let info = CertificateInfo::from_der(&validator.certificate_der)
        .map_err(|error| format!("the certificate does not parse: {error}"))?;
    if info.role != Some(Role::Validator) {
        return Err(format!(
            "the certificate's role is {}, not validator",
            info.role.map_or("none (a CA)", Role::as_str)
        ));
    }
    if !consortium.is_member(&info.organisation) {
        return Err(format!(
            "the certificate is {:?}'s, which is not a member (add it earlier in the same \
             proposal)",
            info.organisation
        ));
    }
    let chain: Vec<&[u8]> = validator.chain_der.iter().map(Vec::as_slice).collect();
    consortium
        .trust_store()
        .verify_chain(&validator.certificate_der, &chain, context.at, Some(Role::Validator))
        .map_err(|error| format!("the certificate does not chain to its member's CA: {error}"))?;
    let key = info.public_key;
    let message = join_message(&context.chain, &key, &validator.network_address);
    key.verify(domain::VALIDATOR_JOIN, &message, &validator.proof).map_err(|_| {
        "the proof of possession does not verify: sign the join message for this chain, key \
         and address with the validator's key (`pactum certs join-request`)"
            .to_string()
    })?;
    // A key is never a second validator's, nor one the bundle removes; a name and the
    // addresses are free once the bundle removed their validator (a key rotation: the same
    // validator, its new key).
    if let Some(known) =
        set.iter().chain(consortium.validators.iter()).find(|known| known.public_key == key)
    {
        return Err(format!("key {key} is already a validator's ({})", known.name));
    }
    for known in set {
        if known.name == *name {
            return Err(format!("a validator is already named {name:?}"));
        }
        for address in [&validator.network_address, &validator.api_address] {
            if known.address == *address || known.api_address == *address {
                return Err(format!("address {address} is already validator {}'s", known.name));
            }
        }
    }
    for address in [&validator.network_address, &validator.api_address] {
        if !address.contains(':') {
            return Err(format!("{address:?} is not a host:port address"));
        }
    }
    if validator.network_address == validator.api_address {
        return Err("the network and API addresses are the same".into());
    }
    Ok(Validator {
        index: consortium.next_validator_index,
        name: name.clone(),
        organisation: info.organisation,
        public_key: key,
        certificate_der: validator.certificate_der.clone(),
        chain_der: validator.chain_der.clone(),
        address: validator.network_address.clone(),
        api_address: validator.api_address.clone(),
    })
}

/// The next epoch's set: between 4 and the most validators allowed, and every validator's
/// organisation still a member.
fn check_validator_set(consortium: &Consortium, validators: &[Validator]) -> Result<(), String> {
    let max = limits::VALIDATORS_MAX;
    if validators.len() < 4 || validators.len() > max {
        return Err(format!(
            "the validator set would have {} validators; PBFT needs 4 to {max} (n = 3f + 1 \
             tolerates f faulty ones)",
            validators.len()
        ));
    }
    if let Some(orphan) =
        validators.iter().find(|validator| !consortium.is_member(&validator.organisation))
    {
        return Err(format!(
            "validator {} belongs to {:?}, which is no longer a member; remove it in the same \
             proposal",
            orphan.name, orphan.organisation
        ));
    }
    Ok(())
}

/// The organisations whose votes count on `changes`: the current members, less those the
/// bundle removes.
pub fn voters(consortium: &Consortium, changes: &[GovernanceChange]) -> BTreeSet<String> {
    let removed: BTreeSet<&String> = changes
        .iter()
        .filter_map(|change| match change {
            GovernanceChange::RemoveMember { organisation } => Some(organisation),
            _ => None,
        })
        .collect();
    consortium.members.keys().filter(|name| !removed.contains(name)).cloned().collect()
}

/// How many of `voters` must approve `changes`: the most any of its classes' policies
/// needs.
pub fn approvals_needed(
    consortium: &Consortium,
    changes: &[GovernanceChange],
    voters: usize,
) -> Result<usize, ChangeError> {
    let classes: BTreeSet<ChangeClass> = changes.iter().map(GovernanceChange::class).collect();
    let mut needed = 1;
    for class in classes {
        let required = required_approvals(consortium.policy(class), voters)
            .map_err(|source| ChangeError::PolicyUnreachable { class, source })?;
        needed = needed.max(required);
    }
    Ok(needed)
}

fn check_policy_shape(policy: Policy) -> Result<(), PolicyError> {
    // Any member count large enough shows whether the policy is well formed.
    match required_approvals(policy, usize::from(u16::MAX)) {
        Err(error @ (PolicyError::Empty { .. } | PolicyError::BadFraction { .. })) => Err(error),
        _ => Ok(()),
    }
}

fn check_name(organisation: &str) -> Result<(), String> {
    if organisation.trim().is_empty() || organisation.chars().any(char::is_control) {
        return Err(format!("{organisation:?} is not an organisation name"));
    }
    Ok(())
}

/// Each CA is an Ed25519 CA of `organisation`, valid at `at`, listed once: at least one
/// self-signed root, and every other one an intermediate that chains to one of them.
fn check_authorities(organisation: &str, authorities: &[Vec<u8>], at: i64) -> Result<(), String> {
    if authorities.is_empty() || authorities.len() > limits::MEMBER_CA_CERTIFICATES_MAX {
        return Err(format!(
            "a member has 1 to {} CA certificates; {} given",
            limits::MEMBER_CA_CERTIFICATES_MAX,
            authorities.len()
        ));
    }
    let mut seen = BTreeSet::new();
    let trust = pactum_certs::verify::TrustStore::new();
    let mut roots = 0;
    for der in authorities {
        if trust.add_authority(der).is_ok() {
            roots += 1;
        } else {
            let _ = trust.add_intermediate(der);
        }
    }
    if roots == 0 {
        return Err("no CA certificate is a self-signed root".into());
    }
    for (position, der) in authorities.iter().enumerate() {
        if !seen.insert(der.as_slice()) {
            return Err(format!("CA certificate {position} is listed twice"));
        }
        let info = trust
            .verify_authority(der, at)
            .map_err(|error| format!("CA certificate {position}: {error}"))?;
        if info.organisation != organisation {
            return Err(format!(
                "CA certificate {position} is {:?}'s, not {organisation:?}'s",
                info.organisation
            ));
        }
        if at < info.not_before || at > info.not_after {
            return Err(format!(
                "CA certificate {position} is valid from {} to {} (Unix seconds), not at {at}",
                info.not_before, info.not_after
            ));
        }
    }
    Ok(())
}
