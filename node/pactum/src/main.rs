//! `pactum`: the one binary of Pactum. Each subcommand lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod bench;
mod bench_chaos;
mod bench_devnet;
mod bench_load;
mod certs;
mod chain;
mod clock;
mod commands;
mod devnet;
mod devnet_consoles;
mod gov;
mod node;

/// Pactum: a permissioned ledger run by a consortium of organisations.
#[derive(Debug, Parser)]
#[command(name = "pactum", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one validator node.
    Node(node::NodeArgs),
    /// Start and stop a local multi-validator consortium.
    Devnet(devnet::DevnetArgs),
    /// Consortium PKI: create CAs, issue and inspect certificates.
    Certs(certs::CertsArgs),
    /// Create and show client signing keys.
    Keys(commands::KeysArgs),
    /// Enrol signers, submit signed transactions, show transactions.
    Tx(commands::TxArgs),
    /// Deploy, call and query contracts.
    Contract(commands::ContractArgs),
    /// Propose changes to the consortium, vote on them, and read proposals.
    Gov(gov::GovArgs),
    /// Inspect and audit a chain.
    Chain(chain::ChainArgs),
    /// Measure Pactum's building blocks and print the figures.
    Bench(bench::BenchArgs),
    /// Run the admin service and web console of one member organisation.
    Admin(admin::AdminArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(arguments) => report(node::run(arguments)),
        Command::Devnet(arguments) => report(devnet::run(arguments)),
        Command::Certs(arguments) => report(certs::run(arguments)),
        Command::Keys(arguments) => report(commands::keys(arguments)),
        Command::Tx(arguments) => report(commands::tx(arguments)),
        Command::Contract(arguments) => report(commands::contract(arguments)),
        Command::Gov(arguments) => report(gov::gov(arguments)),
        Command::Admin(arguments) => report(admin::run(arguments)),
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
