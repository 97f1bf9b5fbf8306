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
        /// The node's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Show blocks from a node's REST API (not built yet).
    Show {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        arguments: Vec<String>,
    },
}

pub fn run(arguments: ChainArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        ChainCommand::Verify { data_dir } => verify(&data_dir),
        ChainCommand::Show { .. } => {
            eprintln!(
                "pactum chain show: not built yet. It needs the node's REST API (issue 6); \
                 nothing was done."
            );
            Ok(ExitCode::from(2))
        }
    }
}

fn verify(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(data_dir)
        .with_context(|| format!("cannot open {}", data_dir.display()))?;
    let total = store.last_height();
    // indicatif draws only when stderr is a terminal, so logs and tests see plain text.
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "verifying {bar:40} {pos}/{len} blocks ({per_sec}, eta {eta})",
        )
        .expect("the template is valid"),
    );
    let outcome = audit(&store, &mut |done, _| bar.set_position(done));
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
            println!(
                "  note: commit certificates were checked for valid, distinct signatures over \
                 each header; they are not yet checked against a validator set, because this \
                 chain has no on-ledger validator set yet"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(AuditFault::Storage(error)) => Err(error).context("the audit could not read the store"),
        Err(fault) => {
            eprintln!("chain verify FAILED: {fault}");
            Ok(ExitCode::FAILURE)
        }
    }
}
