//! `pactum chain`: inspect and audit a chain's data directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pactum_storage::Store;
use pactum_storage::audit::{AuditFault, audit};

#[derive(Debug, Args)]
pub struct ChainArgs {
    #[command(subcommand)]
    command: ChainCommand,
}

#[derive(Debug, Subcommand)]
enum ChainCommand {
    /// Audit every stored block offline: hash links, heights, roots, signatures, commit
    /// certificates, receipts and indexes. Exits non-zero on the first fault.
    Verify {
        /// The node's data directory (the one in its node.json), or a bare store.
        #[arg(long)]
        data_dir: PathBuf,
        /// The chain's genesis file, whose validators must have signed each block
        /// (default: the copy the node keeps in its data directory).
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Test-only: the chain was built by a test fixture that signs header hashes.
        #[arg(long, hide = true)]
        test_chain: bool,
    },
    /// Show the latest blocks (or a range) from a node's REST API.
    Show {
        #[arg(long, default_value = pactum_client::DEFAULT_NODE)]
        node: String,
        /// First height to show (default: the last `limit` blocks).
        #[arg(long)]
        from: Option<u64>,
        #[arg(long, default_value_t = 10)]
        limit: u64,
    },
}

pub fn run(arguments: ChainArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        ChainCommand::Verify { data_dir, genesis, test_chain } => {
            verify(&data_dir, genesis.as_deref(), test_chain)
        }
        ChainCommand::Show { node, from, limit } => show(&node, from, limit),
    }
}

fn show(node: &str, from: Option<u64>, limit: u64) -> anyhow::Result<ExitCode> {
    let client = pactum_client::NodeClient::connect(node)?;
    let status = client.status()?;
    let height = status["height"].as_u64().unwrap_or(0);
    let limit = limit.clamp(1, 100);
    let from = from.unwrap_or_else(|| height.saturating_sub(limit - 1).max(1));
    let page = client
        .get(&format!("/v1/chain?from={from}&limit={limit}"))?
        .into_success("GET /v1/chain")?;
    println!(
        "chain {} at height {height}, view {} (primary {}), stable checkpoint {}",
        status["chain_id"].as_str().unwrap_or("?"),
        status["view"],
        status["primary"].as_str().unwrap_or("?"),
        status["stable_checkpoint"]
    );
    println!("{:>8}  {:<64}  {:>5}  {:>4}  time (ms)", "height", "hash", "txs", "view");
    for block in page["blocks"].as_array().cloned().unwrap_or_default() {
        println!(
            "{:>8}  {:<64}  {:>5}  {:>4}  {}",
            block["height"],
            block["hash"].as_str().unwrap_or(""),
            block["transactions"],
            block["view"],
            block["timestamp_ms"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How the audit checks a block's commit certificate.
type CertificateCheck = dyn Fn(&pactum_types::Block) -> Result<(), String>;

fn verify(data_dir: &Path, genesis: Option<&Path>, test_chain: bool) -> anyhow::Result<ExitCode> {
    // A node's data directory holds the ledger store and a copy of its genesis.
    let node_layout = data_dir.join("ledger").exists();
    let store_path = if node_layout { data_dir.join("ledger") } else { data_dir.to_path_buf() };
    let genesis_path = genesis
        .map(Path::to_path_buf)
        .or_else(|| node_layout.then(|| data_dir.join("genesis.json")));
    let certificates: Box<CertificateCheck> = match (&genesis_path, test_chain) {
        (_, true) => Box::new(pactum_storage::builder::check_test_chain_certificate),
        (Some(path), false) => {
            let genesis = pactum_runtime::Genesis::load(path)
                .with_context(|| format!("reading the genesis {}", path.display()))?;
            let audit = pactum_runtime::proposal::ChainAudit::open(genesis, &store_path).map_err(
                |error| anyhow::anyhow!("cannot open {}: {error}", store_path.display()),
            )?;
            Box::new(move |block: &pactum_types::Block| audit.check(block))
        }
        (None, false) => anyhow::bail!(
            "{} is not a node's data directory; pass --genesis so that commit certificates can be checked against the validators",
            data_dir.display()
        ),
    };
    let store = Store::open_read_only(&store_path)
        .with_context(|| format!("cannot open {}", store_path.display()))?;
    let total = store.last_height();
    // indicatif draws only when stderr is a terminal, so logs and tests see plain text.
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "verifying {bar:40} {pos}/{len} blocks ({per_sec}, eta {eta})",
        )
        .expect("the template is valid"),
    );
    let outcome = audit(&store, &*certificates, &mut |done, _| bar.set_position(done));
    bar.finish_and_clear();
    match outcome {
        Ok(report) => {
            println!(
                "chain verified: {} blocks, {} transactions",
                report.blocks, report.transactions
            );
            if let Some(chain_id) = &report.chain_id {
                println!("  chain id:        {chain_id}");
            }
            println!("  last block hash: {}", report.last_block_hash);
            println!("  state root:      {}", report.state_root);
            if test_chain {
                println!("  note: certificates were checked as a test chain's header signatures");
            } else {
                println!(
                    "  commit certificates: a quorum of the PBFT COMMITs of the validator set in force at each block's height"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(AuditFault::Storage(error)) => Err(error).context("the audit could not read the store"),
        Err(fault) => {
            eprintln!("chain verify FAILED: {fault}");
            Ok(ExitCode::FAILURE)
        }
    }
}
