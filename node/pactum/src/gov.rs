//! `pactum gov`: propose changes to the consortium, vote on proposals, and read them.
//! Every action is a transaction signed with a key enrolled under an `admin`
//! certificate of a member (`docs/governance.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use pactum_client::changes::{self, GOVERNANCE_GAS};
use pactum_client::{NodeClient, load_key, parse_hex_array, sign_payload};
use pactum_types::{GovernanceAction, GovernanceChange, Hash, Payload};
use serde_json::Value;

use crate::commands::{Signing, submit_and_report};

#[derive(Debug, Args)]
pub struct GovArgs {
    #[command(subcommand)]
    command: GovCommand,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "one command is parsed per process")]
enum GovCommand {
    /// Propose a bundle of changes; your organisation approves it. Prints its id.
    Propose {
        #[command(flatten)]
        signing: Signing,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The proposal expires this many blocks after the current height.
        #[arg(long, default_value_t = 10_000)]
        expires_in: u64,
        /// A JSON file holding an array of changes (docs/governance.md).
        #[arg(long)]
        changes: Option<PathBuf>,
        #[command(flatten)]
        flags: ChangeFlags,
        /// Only check the changes against the configuration in force (each check's
        /// result, n/f/quorum before and after); nothing is signed or sent.
        #[arg(long)]
        dry_run: bool,
    },
    /// Approve an open proposal for your organisation.
    Approve {
        proposal: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Reject an open proposal for your organisation.
    Reject {
        proposal: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Withdraw an open proposal of your organisation.
    Withdraw {
        proposal: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Show one proposal: its changes, votes and status.
    Show {
        proposal: String,
        #[arg(long, default_value = pactum_client::DEFAULT_NODE)]
        node: String,
    },
    /// List proposals (all, or those with `--status`).
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value = pactum_client::DEFAULT_NODE)]
        node: String,
    },
}

pub fn gov(arguments: GovArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        GovCommand::Propose {
            signing,
            title,
            description,
            expires_in,
            changes,
            flags,
            dry_run,
        } => {
            let node = NodeClient::connect(&signing.node)?;
            let changes = collect_changes(&node, changes, &flags)?;
            if dry_run {
                return report_dry_run(&node, &changes);
            }
            let height = node.status()?["height"].as_u64().unwrap_or(0);
            let action = GovernanceAction::Propose {
                title,
                description,
                expires_at_height: height + expires_in.max(1),
                changes,
            };
            let transaction = sign(&node, &signing, action)?;
            println!("proposal id: {}", transaction.hash());
            submit_and_report(&node, &transaction, signing.no_wait)
        }
        GovCommand::Approve { proposal, signing } => {
            vote(&signing, GovernanceAction::Approve { proposal: proposal_id(&proposal)? })
        }
        GovCommand::Reject { proposal, signing } => {
            vote(&signing, GovernanceAction::Reject { proposal: proposal_id(&proposal)? })
        }
        GovCommand::Withdraw { proposal, signing } => {
            vote(&signing, GovernanceAction::Withdraw { proposal: proposal_id(&proposal)? })
        }
        GovCommand::Show { proposal, node } => {
            let id = proposal_id(&proposal)?;
            let answer = NodeClient::connect(&node)?
                .get(&format!("/v1/proposals/{id}"))?
                .into_success("GET /v1/proposals")?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(ExitCode::SUCCESS)
        }
        GovCommand::List { status, node } => {
            let path = match &status {
                Some(status) => format!("/v1/proposals?status={status}"),
                None => "/v1/proposals".into(),
            };
            let answer =
                NodeClient::connect(&node)?.get(&path)?.into_success("GET /v1/proposals")?;
            for proposal in answer["proposals"].as_array().cloned().unwrap_or_default() {
                print_summary(&proposal);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_summary(proposal: &Value) {
    let votes = proposal["votes"].as_array().map_or(0, Vec::len);
    println!(
        "{}  {:<9} {:>3} votes  {}  ({})",
        proposal["id"].as_str().unwrap_or(""),
        proposal["status"].as_str().unwrap_or(""),
        votes,
        proposal["title"].as_str().unwrap_or(""),
        proposal["organisation"].as_str().unwrap_or("")
    );
}

fn proposal_id(text: &str) -> anyhow::Result<Hash> {
    Ok(Hash(parse_hex_array(text, "the proposal id")?))
}

fn sign(
    node: &NodeClient,
    signing: &Signing,
    action: GovernanceAction,
) -> anyhow::Result<pactum_types::Transaction> {
    let keypair = load_key(&signing.key)?;
    let payload = Payload::Governance { action };
    Ok(sign_payload(node, &keypair, payload, GOVERNANCE_GAS, signing.nonce)?)
}

fn vote(signing: &Signing, action: GovernanceAction) -> anyhow::Result<ExitCode> {
    let node = NodeClient::connect(&signing.node)?;
    let transaction = sign(&node, signing, action)?;
    submit_and_report(&node, &transaction, signing.no_wait)
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The changes given by flags rather than a JSON file.
#[derive(Debug, Args)]
struct ChangeFlags {
    /// Add the organisation of this PEM CA certificate as a member (repeatable).
    #[arg(long)]
    add_member: Vec<PathBuf>,
    /// Revoke this PEM certificate (repeatable).
    #[arg(long)]
    revoke_certificate: Vec<PathBuf>,
    /// Approve this WebAssembly file's code for deployment (repeatable).
    #[arg(long)]
    approve_code: Vec<PathBuf>,
    /// Replace a contract's code: ADDRESS=FILE.wasm (repeatable).
    #[arg(long)]
    upgrade_contract: Vec<String>,
    /// Add the validator of this join request (`pactum certs join-request`); it votes
    /// from the epoch after it announced itself ready (repeatable).
    #[arg(long)]
    add_validator: Vec<PathBuf>,
    /// Remove the validator with this public key (hex) from the next epoch on
    /// (repeatable).
    #[arg(long)]
    remove_validator: Vec<String>,
    /// Change one consensus or block parameter from the next epoch on, the others staying
    /// as they are: NAME=VALUE, for example block_gas_max=500000000 (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    set_parameter: Vec<String>,
    /// Change one cost of the gas schedule from the block after the proposal is applied,
    /// the others staying as they are (the schedule's version goes up by one):
    /// NAME=VALUE, for example call_base=3000 (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    set_gas: Vec<String>,
}

/// Asks the node to check `changes` and prints its report; success only if a proposal of
/// them would be opened now.
fn report_dry_run(node: &NodeClient, changes: &[GovernanceChange]) -> anyhow::Result<ExitCode> {
    let body = serde_json::json!({ "changes": changes });
    let report = node.post_json("/v1/proposals/dry-run", &body)?.into_success("dry run")?;
    let size = |side: &Value| {
        format!(
            "{} members, n = {}, f = {}, quorum {}",
            side["members"], side["n"], side["f"], side["quorum"]
        )
    };
    for check in report["checks"].as_array().cloned().unwrap_or_default() {
        let verdict = match check["reason"].as_str() {
            Some(reason) => format!("refused: {reason}"),
            None => "ok".into(),
        };
        println!(
            "  change {} ({}): {verdict}",
            check["index"],
            check["change"].as_str().unwrap_or("")
        );
    }
    println!("before: {}", size(&report["before"]));
    if report["valid"] == true {
        println!("after:  {}", size(&report["after"]));
        println!(
            "valid: it needs {} of {} organisations' approvals",
            report["approvals_needed"], report["voters"]
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("refused: {}", report["reason"].as_str().unwrap_or(""));
        Ok(ExitCode::FAILURE)
    }
}

fn read_wasm(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let code = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !code.starts_with(b"\0asm") {
        bail!("{} is not a WebAssembly module", path.display());
    }
    Ok(code)
}

/// The changes of a proposal: those of the JSON file, then one per flag: members added,
/// validators removed, validators added, certificates revoked (so a bundle can remove a
/// validator, add it again with a new key and revoke its old certificate), code approved,
/// contracts upgraded.
fn collect_changes(
    node: &NodeClient,
    file: Option<PathBuf>,
    flags: &ChangeFlags,
) -> anyhow::Result<Vec<GovernanceChange>> {
    let mut changes: Vec<GovernanceChange> = match file {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON array of changes", path.display()))?
        }
        None => Vec::new(),
    };
    for path in &flags.add_member {
        changes.push(changes::add_member(&read(path)?)?);
    }
    for key in &flags.remove_validator {
        let validator = pactum_types::PublicKey(parse_hex_array(key, "the validator's key")?);
        changes.push(GovernanceChange::RemoveValidator { validator });
    }
    for path in &flags.add_validator {
        let text = String::from_utf8_lossy(&read(path)?).into_owned();
        let change = changes::add_validator(&text)
            .with_context(|| format!("{} is not a join request", path.display()))?;
        changes.push(change);
    }
    for path in &flags.revoke_certificate {
        changes.push(changes::revoke_certificate(&read(path)?)?);
    }
    for path in &flags.approve_code {
        let code_hash = pactum_types::hash::sha3_256(&read_wasm(path)?);
        changes.push(GovernanceChange::ApproveCode { code_hash });
    }
    for argument in &flags.upgrade_contract {
        let (address, path) = argument.split_once('=').ok_or_else(|| {
            anyhow!("--upgrade-contract takes ADDRESS=FILE.wasm, not {argument:?}")
        })?;
        let contract = pactum_types::Address(parse_hex_array(address, "the contract address")?);
        let code = read_wasm(&PathBuf::from(path))?;
        changes.push(GovernanceChange::UpgradeContract { contract, code });
    }
    if !flags.set_parameter.is_empty() || !flags.set_gas.is_empty() {
        let consortium = node.get("/v1/consortium")?.into_success("the consortium")?;
        let settings = |texts: &[String], flag: &str| -> anyhow::Result<Vec<(String, u64)>> {
            texts
                .iter()
                .map(|text| changes::parse_setting(text).with_context(|| flag.to_owned()))
                .collect()
        };
        if !flags.set_parameter.is_empty() {
            let settings = settings(&flags.set_parameter, "--set-parameter")?;
            changes
                .push(changes::set_parameters(&consortium, &settings).context("--set-parameter")?);
        }
        if !flags.set_gas.is_empty() {
            let settings = settings(&flags.set_gas, "--set-gas")?;
            changes.push(changes::set_gas_schedule(&consortium, &settings).context("--set-gas")?);
        }
    }
    if changes.is_empty() {
        bail!(
            "a proposal needs at least one change: --changes FILE, --add-member, \
             --add-validator, --remove-validator, --revoke-certificate, --approve-code, \
             --upgrade-contract, --set-parameter or --set-gas"
        );
    }
    Ok(changes)
}
