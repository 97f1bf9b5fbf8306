//! The client commands: `pactum keys`, `pactum tx`, `pactum contract`. Each talks to any
//! node's REST API (`--node`), and every failure names what failed and why.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use pactum_certs::identity::certificates_from_pem;
use pactum_types::crypto::Keypair;
use pactum_types::{Address, Hash, Payload, Transaction};
use serde_json::Value;

use pactum_client::{
    DEFAULT_NODE, NodeClient, Submission, Validators, decode_return, deployed_address,
    encode_arguments, load_key, parse_hex_array, sign_payload,
};

/// How long a client command waits for its transaction to commit.
const WAIT_TIMEOUT: Duration = Duration::from_secs(120);

// ---- keys ----

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an Ed25519 signing key; the seed is written in hex with mode 0600.
    New {
        /// The key file to create (it must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Show a key's public key and the address contracts see for it.
    Show {
        /// A key file (`keys new`) or a PEM private key (`certs issue`).
        #[arg(long)]
        key: PathBuf,
        /// Print only the public key in hex.
        #[arg(long)]
        public: bool,
    },
}

pub fn keys(arguments: KeysArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        KeysCommand::New { out } => {
            let keypair = Keypair::generate().map_err(|error| anyhow!("{error}"))?;
            pactum_certs::authority::write_new_file(
                &out,
                &format!("{}\n", hex::encode(keypair.seed())),
                true,
            )
            .with_context(|| format!("writing {}", out.display()))?;
            println!("created a signing key in {}", out.display());
            print_key(&keypair);
            println!(
                "enrol it with a client certificate from your organisation's CA before it signs \
                 transactions: pactum tx enrol --key {} --certificate CERT.pem",
                out.display()
            );
        }
        KeysCommand::Show { key, public } => {
            let keypair = load_key(&key)?;
            if public {
                println!("{}", keypair.public_key());
            } else {
                print_key(&keypair);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_key(keypair: &Keypair) {
    println!("  public key: {}", keypair.public_key());
    println!("  address:    {}", pactum_vm::account_address(&keypair.public_key()));
}

// ---- tx ----

#[derive(Debug, Args)]
pub struct TxArgs {
    #[command(subcommand)]
    command: TxCommand,
}

#[derive(Debug, Args)]
pub(crate) struct Signing {
    /// The signer's key file.
    #[arg(long)]
    pub(crate) key: PathBuf,
    /// The node to talk to first. When it cannot take the transaction (unreachable, busy)
    /// or has not committed it within 10 s, the same signed transaction goes to the other
    /// validators it lists.
    #[arg(long, default_value = DEFAULT_NODE)]
    pub(crate) node: String,
    /// The nonce to sign with (default: the account's next nonce, asked of the node).
    #[arg(long)]
    pub(crate) nonce: Option<u64>,
    /// Do not wait for the commit: print the hash once a validator has accepted it.
    #[arg(long)]
    pub(crate) no_wait: bool,
}

#[derive(Debug, Subcommand)]
enum TxCommand {
    /// Enrol the key as a transaction signer with a client certificate for that key.
    Enrol {
        #[command(flatten)]
        signing: Signing,
        /// The PEM client (or admin) certificate issued by a member CA for this key.
        #[arg(long)]
        certificate: PathBuf,
    },
    /// Submit a signed transaction from a JSON file (the form of docs/api/json.md).
    Send {
        /// The JSON file.
        file: PathBuf,
        /// The node to talk to first (the others it lists are tried when it cannot).
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        /// Do not wait for the commit: print the hash once a validator has accepted it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show a transaction: pending, or committed with its block and receipt.
    Show {
        hash: String,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
    },
}

pub fn tx(arguments: TxArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        TxCommand::Enrol { signing, certificate } => {
            let node = NodeClient::connect(&signing.node)?;
            let keypair = load_key(&signing.key)?;
            let pem = std::fs::read(&certificate)
                .with_context(|| format!("cannot read {}", certificate.display()))?;
            let certificate_der = certificates_from_pem(&pem)?
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("{} holds no certificate", certificate.display()))?;
            let payload = Payload::EnrolIdentity { certificate_der };
            let transaction = sign_payload(&node, &keypair, payload, 1_000_000, signing.nonce)?;
            submit_and_report(&node, &transaction, signing.no_wait)
        }
        TxCommand::Send { file, node, no_wait } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let transaction: Transaction = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a signed transaction", file.display()))?;
            submit_and_report(&NodeClient::connect(&node)?, &transaction, no_wait)
        }
        TxCommand::Show { hash, node } => {
            let hash = Hash(parse_hex_array(&hash, "the transaction hash")?);
            let answer = NodeClient::connect(&node)?
                .get(&format!("/v1/transactions/{hash}"))?
                .into_success("GET /v1/transactions")?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Submits to `node` (or, when it cannot take it, to another validator it lists), then,
/// unless told not to, waits for the commit, sending the same signed bytes to another
/// validator if one is unreachable or slow, and prints the receipt. A receipt other than
/// success is a failure exit.
pub(crate) fn submit_and_report(
    node: &NodeClient,
    transaction: &Transaction,
    no_wait: bool,
) -> anyhow::Result<ExitCode> {
    use pactum_types::Encode as _;
    let validators = Validators::discover(node.clone());
    let hash = transaction.hash();
    if no_wait {
        let (index, submission) = validators.submit_once(&transaction.to_bytes(), 0);
        let base = validators.nodes()[index].base();
        match submission {
            Submission::Pending => println!("submitted {hash} to {base} (pending)"),
            Submission::Committed => println!("{hash} is already committed"),
            Submission::Refused(error) => return Err(error.into()),
            Submission::Retry(reason) => bail!("no validator took {hash}: {reason}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("submitted {hash}; waiting for the commit (--no-wait to return at once)");
    let answer = validators.submit_and_wait(transaction, WAIT_TIMEOUT)?;
    print_receipt(&answer);
    Ok(if answer["receipt"]["status"] == "success" { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_receipt(answer: &Value) {
    let receipt = &answer["receipt"];
    println!("committed in block {} (position {})", answer["height"], answer["position"]);
    print!("  status:   {}", receipt["status"].as_str().unwrap_or("?"));
    if let Some(reason) = receipt.get("reason").and_then(Value::as_str) {
        print!(" ({reason})");
    }
    println!();
    println!("  gas used: {}", receipt["gas_used"]);
    if let Some(events) = receipt["events"].as_array() {
        for event in events {
            println!(
                "  event:    {} {} {}",
                event["contract"].as_str().unwrap_or(""),
                event["topic"].as_str().unwrap_or(""),
                event["data"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(data) = receipt["return_data"].as_str().filter(|data| !data.is_empty()) {
        println!("  returned: {data}");
    }
}

// ---- contract ----

#[derive(Debug, Args)]
pub struct ContractArgs {
    #[command(subcommand)]
    command: ContractCommand,
}

#[derive(Debug, Subcommand)]
enum ContractCommand {
    /// Deploy a WebAssembly contract; prints its address.
    Deploy {
        /// The contract, built for wasm32-unknown-unknown.
        file: PathBuf,
        /// Arguments of its `init`, as type:value (u64:5, string:x, account:KEY, ...).
        init: Vec<String>,
        #[command(flatten)]
        signing: Signing,
        #[arg(long, default_value_t = 500_000_000)]
        gas_limit: u64,
    },
    /// Call a contract method in a transaction.
    Call {
        address: String,
        method: String,
        /// Arguments as type:value (u8, u32, u64, u128, bool, string, bytes, address, account).
        arguments: Vec<String>,
        #[command(flatten)]
        signing: Signing,
        #[arg(long, default_value_t = 10_000_000)]
        gas_limit: u64,
    },
    /// Run a method read-only against the committed state; nothing is committed.
    Query {
        address: String,
        method: String,
        arguments: Vec<String>,
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
        #[arg(long, default_value_t = 10_000_000)]
        gas_limit: u64,
        /// Decode the return data as this type (u64, u128, string, address, bool, bytes).
        #[arg(long)]
        returns: Option<String>,
        /// Sign the query with this key (PEM), so that the contract sees its account as
        /// the caller; the key must be enrolled. Unsigned, the caller is the zero address.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// List deployed contracts.
    List {
        #[arg(long, default_value = DEFAULT_NODE)]
        node: String,
    },
}

pub fn contract(arguments: ContractArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        ContractCommand::Deploy { file, init, signing, gas_limit } => {
            let code =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if !code.starts_with(b"\0asm") {
                bail!("{} is not a WebAssembly module", file.display());
            }
            let node = NodeClient::connect(&signing.node)?;
            let keypair = load_key(&signing.key)?;
            let init_input = encode_arguments(&init)?;
            let nonce = match signing.nonce {
                Some(nonce) => nonce,
                None => node.next_nonce(&keypair.public_key())?,
            };
            let payload = Payload::DeployContract { code, init_input };
            let transaction = sign_payload(&node, &keypair, payload, gas_limit, Some(nonce))?;
            println!("contract address: {}", deployed_address(&keypair.public_key(), nonce));
            submit_and_report(&node, &transaction, signing.no_wait)
        }
        ContractCommand::Call { address, method, arguments, signing, gas_limit } => {
            let contract = Address(parse_hex_array(&address, "the contract address")?);
            let node = NodeClient::connect(&signing.node)?;
            let keypair = load_key(&signing.key)?;
            let input = encode_arguments(&arguments)?;
            let payload = Payload::CallContract { contract, method, input };
            let transaction = sign_payload(&node, &keypair, payload, gas_limit, signing.nonce)?;
            submit_and_report(&node, &transaction, signing.no_wait)
        }
        ContractCommand::Query { address, method, arguments, node, gas_limit, returns, key } => {
            let contract = Address(parse_hex_array(&address, "the contract address")?);
            let caller = key.as_deref().map(load_key).transpose()?;
            let input = encode_arguments(&arguments)?;
            let answer = NodeClient::connect(&node)?.query(
                contract,
                &method,
                &input,
                gas_limit,
                caller.as_ref(),
            )?;
            let status = answer["status"].as_str().unwrap_or("?");
            if status != "success" {
                eprintln!(
                    "the query ended {status}: {}",
                    answer.get("reason").and_then(Value::as_str).unwrap_or("")
                );
                return Ok(ExitCode::FAILURE);
            }
            let data = hex::decode(answer["return_data"].as_str().unwrap_or(""))?;
            match returns {
                Some(kind) => println!("{}", decode_return(&kind, &data)?),
                None => println!("{}", hex::encode(data)),
            }
            Ok(ExitCode::SUCCESS)
        }
        ContractCommand::List { node } => {
            let answer = NodeClient::connect(&node)?
                .get("/v1/contracts")?
                .into_success("GET /v1/contracts")?;
            for contract in answer["contracts"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{}  code {}",
                    contract["address"].as_str().unwrap_or(""),
                    contract["code_hash"].as_str().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
