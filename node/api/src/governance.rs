//! `GET /v1/consortium` and `GET /v1/proposals[/{id}]`: the consortium configuration and
//! the governance proposals, as typed JSON replies (ADR 0019, `docs/governance.md`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use pactum_certs::identity::CertificateInfo;
use pactum_governance::{Consortium, DryRun, Proposal, Size, Status, Tally};
use pactum_runtime::NodeHandle;
use pactum_runtime::clock::unix_seconds;
use pactum_types::gas::GasSchedule;
use pactum_types::{
    ChangeClass, ConsensusParameters, DeployPolicy, GovernanceChange, Hash, Policy, PublicKey,
    limits,
};
use serde::{Deserialize, Serialize};

use crate::{ApiError, body_error, json_body, page_limit, parse_fixed, query_error, read};

#[derive(Debug, Serialize)]
pub(crate) struct CertificateJson {
    serial: String,
    fingerprint: String,
    not_before: i64,
    not_after: i64,
    /// DER, hex.
    der: String,
}

impl CertificateJson {
    fn of(der: &[u8]) -> Self {
        let (serial, fingerprint, not_before, not_after) = match CertificateInfo::from_der(der) {
            Ok(info) => (info.serial_hex(), info.fingerprint(), info.not_before, info.not_after),
            // Checked before it reached the ledger; show what there is.
            Err(_) => (String::new(), String::new(), 0, 0),
        };
        Self { serial, fingerprint, not_before, not_after, der: hex::encode(der) }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct MemberJson {
    name: String,
    ca_certificates: Vec<CertificateJson>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ValidatorJson {
    /// Its replica id in every epoch it belongs to.
    index: u16,
    name: String,
    organisation: String,
    public_key: PublicKey,
    address: String,
    api_address: String,
    certificate: CertificateJson,
}

#[derive(Debug, Serialize)]
pub(crate) struct PlannedEpochJson {
    /// The next epoch's validators.
    validators: Vec<ValidatorJson>,
    /// Added validators that have not announced themselves ready yet.
    waiting: Vec<PublicKey>,
    /// The next epoch's consensus and block parameters.
    parameters: ConsensusParameters,
    /// The current epoch's last height, once nobody waits.
    last: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct RevokedJson {
    organisation: String,
    serial: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ConsortiumJson {
    /// The committed height the configuration was read at.
    read_at_height: u64,
    version: u64,
    members: Vec<MemberJson>,
    /// The current epoch (ADR 0021), the height it started after, and its validators.
    epoch: u64,
    epoch_start: u64,
    validators: Vec<ValidatorJson>,
    /// A validator-set or parameter change waiting for its boundary, if any.
    planned_epoch: Option<PlannedEpochJson>,
    /// The current epoch's consensus and block parameters (ADR 0022).
    parameters: ConsensusParameters,
    /// The gas schedule in force.
    gas_schedule: GasSchedule,
    policies: std::collections::BTreeMap<ChangeClass, Policy>,
    revoked: Vec<RevokedJson>,
    deploy_policy: DeployPolicy,
    approved_code: Vec<Hash>,
}

fn validators_json(validators: &[pactum_governance::Validator]) -> Vec<ValidatorJson> {
    validators
        .iter()
        .map(|validator| ValidatorJson {
            index: validator.index,
            name: validator.name.clone(),
            organisation: validator.organisation.clone(),
            public_key: validator.public_key,
            address: validator.address.clone(),
            api_address: validator.api_address.clone(),
            certificate: CertificateJson::of(&validator.certificate_der),
        })
        .collect()
}

fn consortium_json(read_at_height: u64, consortium: &Consortium) -> ConsortiumJson {
    ConsortiumJson {
        read_at_height,
        version: consortium.version,
        members: consortium
            .members
            .values()
            .map(|member| MemberJson {
                name: member.name.clone(),
                ca_certificates: member
                    .ca_certificates_der
                    .iter()
                    .map(|der| CertificateJson::of(der))
                    .collect(),
            })
            .collect(),
        epoch: consortium.epoch,
        epoch_start: consortium.epoch_start,
        validators: validators_json(&consortium.validators),
        planned_epoch: consortium.planned.as_ref().map(|planned| PlannedEpochJson {
            validators: validators_json(&planned.validators),
            waiting: planned.waiting.iter().copied().collect(),
            parameters: planned.parameters.clone(),
            last: planned.last,
        }),
        parameters: consortium.parameters.clone(),
        gas_schedule: consortium.gas_schedule,
        policies: consortium.policies.clone(),
        revoked: consortium
            .revoked
            .iter()
            .map(|(organisation, serial)| RevokedJson {
                organisation: organisation.clone(),
                serial: hex::encode(serial),
            })
            .collect(),
        deploy_policy: consortium.deploy_policy.clone(),
        approved_code: consortium.approved_code.iter().copied().collect(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsortiumQuery {
    /// The configuration in force for this block (default: after the last one).
    height: Option<u64>,
}

pub(crate) async fn consortium(
    State(node): State<NodeHandle>,
    query: Result<Query<ConsortiumQuery>, QueryRejection>,
) -> Result<Json<ConsortiumJson>, ApiError> {
    let Query(query) = query.map_err(|error| query_error(&error))?;
    let height = query.height;
    let (tip, consortium) = read(&node, move |node| node.consortium(height)).await?;
    Ok(Json(consortium_json(tip, &consortium)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EpochsQuery {
    /// Only epochs numbered below this one (the next page).
    before: Option<u64>,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub(crate) struct EpochJson {
    epoch: u64,
    /// The height the epoch started after (its first block is the next one).
    start: u64,
    /// Its last height: once a change scheduled it (the current epoch), or when it ended.
    last: Option<u64>,
    validators: Vec<ValidatorJson>,
    n: usize,
    f: usize,
    quorum: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct EpochsJson {
    read_at_height: u64,
    epochs: Vec<EpochJson>,
    /// The `before` of the next page, if there are older epochs.
    next: Option<u64>,
}

/// `GET /v1/epochs`: the validator-set epochs, newest first (ADR 0021).
pub(crate) async fn epochs(
    State(node): State<NodeHandle>,
    query: Result<Query<EpochsQuery>, QueryRejection>,
) -> Result<Json<EpochsJson>, ApiError> {
    let Query(query) = query.map_err(|error| query_error(&error))?;
    let max = limits::API_PROPOSALS_PAGE_MAX;
    let limit = query.limit.unwrap_or(max);
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request("bad_parameter", format!("limit must be 1 to {max}")));
    }
    let before = query.before;
    let (tip, found) = read(&node, move |node| node.epochs(before, limit)).await?;
    let next = found
        .last()
        .map(|(consortium, _)| consortium.epoch)
        .filter(|epoch| *epoch > 0 && found.len() == limit);
    let epochs = found
        .iter()
        .map(|(consortium, last)| {
            let size = Size::current(consortium);
            EpochJson {
                epoch: consortium.epoch,
                start: consortium.epoch_start,
                last: *last,
                validators: validators_json(&consortium.validators),
                n: size.validators,
                f: size.faults_tolerated,
                quorum: size.quorum,
            }
        })
        .collect();
    Ok(Json(EpochsJson { read_at_height: tip, epochs, next }))
}

#[derive(Debug, Serialize)]
pub(crate) struct VoteJson {
    organisation: String,
    approve: bool,
    voter: PublicKey,
    transaction: Hash,
    height: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct TallyJson {
    approvals: usize,
    needed: usize,
    voters: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct ProposalJson {
    id: Hash,
    organisation: String,
    proposer: PublicKey,
    title: String,
    description: String,
    changes: Vec<GovernanceChange>,
    opened_at_height: u64,
    expires_at_height: u64,
    votes: Vec<VoteJson>,
    /// `open`, `passed`, `applied`, `rejected`, `expired`, `withdrawn` or `failed`.
    status: &'static str,
    /// The block where the status was reached (absent while open).
    status_height: Option<u64>,
    /// Why it failed, for `failed`.
    failure_reason: Option<String>,
    /// For an open proposal: its approvals against what its policy needs now.
    tally: Option<TallyJson>,
}

fn proposal_json(proposal: Proposal, consortium: &Consortium) -> ProposalJson {
    let tally = match (proposal.status.is_open(), proposal.tally(consortium)) {
        (true, Ok(Tally::Open { approvals, needed, voters })) => {
            Some(TallyJson { approvals, needed, voters })
        }
        _ => None,
    };
    let (status_height, failure_reason) = match &proposal.status {
        Status::Open => (None, None),
        Status::Passed { height }
        | Status::Applied { height }
        | Status::Rejected { height }
        | Status::Expired { height }
        | Status::Withdrawn { height } => (Some(*height), None),
        Status::Failed { height, reason } => (Some(*height), Some(reason.clone())),
    };
    ProposalJson {
        id: proposal.id,
        status: proposal.status.name(),
        status_height,
        failure_reason,
        tally,
        organisation: proposal.organisation,
        proposer: proposal.proposer,
        title: proposal.title,
        description: proposal.description,
        changes: proposal.changes,
        opened_at_height: proposal.opened_at_height,
        expires_at_height: proposal.expires_at_height,
        votes: proposal
            .votes
            .into_iter()
            .map(|vote| VoteJson {
                organisation: vote.organisation,
                approve: vote.approve,
                voter: vote.voter,
                transaction: vote.transaction,
                height: vote.height,
            })
            .collect(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposalsQuery {
    after: Option<String>,
    limit: Option<u64>,
    /// Only proposals with this status.
    status: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ProposalsPage {
    proposals: Vec<ProposalJson>,
    /// Pass as `after` for the next page (absent on the last one).
    next_after: Option<Hash>,
}

pub(crate) async fn proposals(
    State(node): State<NodeHandle>,
    query: Result<Query<ProposalsQuery>, QueryRejection>,
) -> Result<Json<ProposalsPage>, ApiError> {
    let Query(query) = query.map_err(|error| query_error(&error))?;
    let after = match &query.after {
        Some(text) => Some(Hash(parse_fixed(text, "after")?)),
        None => None,
    };
    if let Some(status) = &query.status
        && !Status::NAMES.contains(&status.as_str())
    {
        return Err(ApiError::bad_request(
            "bad_parameter",
            format!("status must be one of {}", Status::NAMES.join(", ")),
        ));
    }
    let limit = page_limit(query.limit, 50, limits::API_PROPOSALS_PAGE_MAX as u64)? as usize;
    let (found, consortium) =
        read(&node, move |node| node.proposals(after.as_ref(), limit)).await?;
    // The page is cut before filtering, so a page may hold fewer than `limit` matches.
    let next_after = (found.len() == limit).then(|| found.last().map(|p| p.id)).flatten();
    let proposals = found
        .into_iter()
        .filter(|proposal| query.status.as_deref().is_none_or(|s| s == proposal.status.name()))
        .map(|proposal| proposal_json(proposal, &consortium))
        .collect();
    Ok(Json(ProposalsPage { proposals, next_after }))
}

pub(crate) async fn proposal(
    State(node): State<NodeHandle>,
    Path(id): Path<String>,
) -> Result<Json<ProposalJson>, ApiError> {
    let id = Hash(parse_fixed(&id, "the proposal id")?);
    match read(&node, move |node| node.proposal(&id)).await? {
        Some((proposal, consortium)) => Ok(Json(proposal_json(proposal, &consortium))),
        None => Err(ApiError::not_found("unknown_proposal", format!("there is no proposal {id}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DryRunRequest {
    changes: Vec<GovernanceChange>,
}

#[derive(Debug, Serialize)]
pub(crate) struct SizeJson {
    members: usize,
    n: usize,
    f: usize,
    quorum: usize,
}

impl From<Size> for SizeJson {
    fn from(size: Size) -> Self {
        Self {
            members: size.members,
            n: size.validators,
            f: size.faults_tolerated,
            quorum: size.quorum,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct CheckJson {
    index: usize,
    change: &'static str,
    ok: bool,
    /// Why the change is refused, when it is.
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DryRunJson {
    /// Whether a proposal of these changes would be opened now.
    valid: bool,
    /// Why not, when it would not.
    reason: Option<String>,
    checks: Vec<CheckJson>,
    before: SizeJson,
    /// The size after, when the bundle is valid.
    after: Option<SizeJson>,
    voters: usize,
    approvals_needed: Option<usize>,
    /// The committed height the checks ran at.
    height: u64,
}

fn dry_run_json(report: DryRun, height: u64) -> DryRunJson {
    DryRunJson {
        valid: report.outcome.is_ok(),
        reason: report.outcome.err().map(|error| error.to_string()),
        checks: report
            .checks
            .into_iter()
            .enumerate()
            .map(|(index, check)| CheckJson {
                index,
                change: check.change,
                ok: check.result.is_ok(),
                reason: check.result.err().map(|error| error.to_string()),
            })
            .collect(),
        before: report.before.into(),
        after: report.after.map(SizeJson::from),
        voters: report.voters,
        approvals_needed: report.approvals_needed,
        height,
    }
}

/// `POST /v1/proposals/dry-run`: every check of a bundle of changes against the
/// configuration in force, at this node's clock, and what it would need and leave.
pub(crate) async fn dry_run(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DryRunJson>, ApiError> {
    let body = body.map_err(|rejection| body_error(&rejection))?;
    let request: DryRunRequest = json_body(&body)?;
    if request.changes.len() > limits::PROPOSAL_CHANGES_MAX {
        return Err(ApiError::bad_request(
            "bad_parameter",
            format!("a proposal bundles at most {} changes", limits::PROPOSAL_CHANGES_MAX),
        ));
    }
    let at = unix_seconds();
    let (height, report) = read(&node, move |node| {
        node.consortium(None).map(|(height, consortium)| {
            // As if proposed in the next block.
            let context = node.genesis().governance_context(height + 1, at);
            (height, pactum_governance::dry_run(&consortium, &request.changes, &context))
        })
    })
    .await?;
    Ok(Json(dry_run_json(report, height)))
}
