//! `pactum`: the one binary of Pactum. Each subcommand lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod certs;
mod chain;
mod clock;

/// Pactum: a permissioned ledger run by a consortium of organisations.
#[derive(Debug, Parser)]
#[command(name = "pactum", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one validator node (not built yet).
    Node(NotBuilt),
    /// Start and stop a local multi-validator consortium (not built yet).
    Devnet(NotBuilt),
    /// Consortium PKI: create CAs, issue and inspect certificates.
    Certs(certs::CertsArgs),
    /// Create and show client signing keys (not built yet).
    Keys(NotBuilt),
    /// Build, sign and submit transactions (not built yet).
    Tx(NotBuilt),
    /// Deploy, call and query contracts (not built yet).
    Contract(NotBuilt),
    /// Inspect and audit a chain.
    Chain(chain::ChainArgs),
    /// Measure Pactum's building blocks and print the figures.
    Bench(bench::BenchArgs),
    /// Run the admin service and web console (not built yet).
    Admin(NotBuilt),
}

/// Arguments of a subcommand that is not built yet: accepted and ignored, so that the
/// answer is always the plain "not built yet" message.
#[derive(Debug, clap::Args)]
struct NotBuilt {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    arguments: Vec<String>,
}

fn not_built(name: &str, arrives_with: &str) -> ExitCode {
    eprintln!(
        "pactum {name}: not built yet. This subcommand arrives with {arrives_with}; \
         nothing was done."
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(_) => not_built("node", "the validator node work (issue 6)"),
        Command::Devnet(_) => not_built("devnet", "the validator node work (issue 6)"),
        Command::Certs(arguments) => report(certs::run(arguments)),
        Command::Keys(_) => not_built("keys", "the client commands (issue 6)"),
        Command::Tx(_) => not_built("tx", "the client commands (issue 6)"),
        Command::Contract(_) => {
            not_built("contract", "the contract VM and client commands (issues 3 and 6)")
        }
        Command::Admin(_) => not_built("admin", "the admin service"),
        Command::Chain(arguments) => report(chain::run(arguments)),
        Command::Bench(arguments) => report(bench::run(arguments)),
    }
}

/// Prints an error chain and maps the outcome to an exit code.
fn report(outcome: anyhow::Result<ExitCode>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
