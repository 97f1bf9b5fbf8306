//! The checks every change passes, when proposed and again when applied, and what it
//! does to the configuration. Pure: the same configuration, changes and time give the
//! same answer on every validator.

use std::collections::BTreeSet;

use pactum_certs::identity::CertificateInfo;
use pactum_types::{ChangeClass, DeployPolicy, GovernanceChange, Policy};
use thiserror::Error;

use crate::consortium::{Consortium, Member};
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
    #[error(
        "change {index} ({change}) is not supported by this version: {reason}; nothing was changed"
    )]
    NotSupported { index: usize, change: &'static str, reason: &'static str },
    #[error("after these changes, the {class} policy could not be met: {source}")]
    PolicyUnreachable {
        class: ChangeClass,
        #[source]
        source: PolicyError,
    },
}

/// Why validator-set changes are refused until epochs exist.
const EPOCHS_MISSING: &str = "validator-set changes take effect at an epoch boundary, and epoch \
    reconfiguration is not implemented yet";

/// Applies `changes`, in order, to a copy of `consortium` at Unix time `at` (the block's),
/// checking each; the result is the next version. Nothing is applied unless all pass.
pub fn apply(
    consortium: &Consortium,
    changes: &[GovernanceChange],
    at: i64,
) -> Result<Consortium, ChangeError> {
    if changes.is_empty() || changes.len() > limits::PROPOSAL_CHANGES_MAX {
        return Err(ChangeError::ChangeCount {
            count: changes.len(),
            max: limits::PROPOSAL_CHANGES_MAX,
        });
    }
    let mut next = consortium.clone();
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
                let validators = next
                    .validators
                    .iter()
                    .filter(|validator| validator.organisation == *organisation)
                    .count();
                if validators > 0 {
                    return Err(refused(format!(
                        "{organisation:?} runs {validators} validators; remove them in the same \
                         proposal ({EPOCHS_MISSING})"
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
            GovernanceChange::AddValidator { .. } | GovernanceChange::RemoveValidator { .. } => {
                return Err(ChangeError::NotSupported {
                    index,
                    change: change.name(),
                    reason: EPOCHS_MISSING,
                });
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
                if let Some(validator) = next.validators.iter().find(|validator| {
                    validator.organisation == *organisation
                        && CertificateInfo::from_der(&validator.certificate_der)
                            .is_ok_and(|info| info.serial == *serial)
                }) {
                    return Err(refused(format!(
                        "it is the certificate of validator {}, which must rotate its key in the \
                         same proposal ({EPOCHS_MISSING})",
                        validator.name
                    )));
                }
                next.revoked.insert((organisation.clone(), serial.clone()));
            }
        }
    }
    for class in ChangeClass::ALL {
        required_approvals(next.policy(class), next.members.len())
            .map_err(|source| ChangeError::PolicyUnreachable { class, source })?;
    }
    next.version = consortium.version + 1;
    Ok(next)
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
