//! `pactum certs`: the consortium PKI on the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use pactum_certs::authority::{self, IssueRequest};
use pactum_certs::identity::certificates_from_pem;
use pactum_certs::{CertificateInfo, Role};

use crate::clock;

#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArgument {
    Validator,
    Client,
    Admin,
}

impl From<RoleArgument> for Role {
    fn from(role: RoleArgument) -> Self {
        match role {
            RoleArgument::Validator => Role::Validator,
            RoleArgument::Client => Role::Client,
            RoleArgument::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Create an organisation's CA (self-signed Ed25519); the key is written with mode 0600.
    InitCa {
        /// The organisation's name; it becomes the O of every certificate the CA issues.
        #[arg(long)]
        org: String,
        /// Directory to write ca-certificate.pem and ca-private-key.pem into.
        #[arg(long)]
        out: PathBuf,
        /// Days the CA is valid.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue an Ed25519 certificate for a validator, client or admin under a CA.
    Issue {
        /// The CA directory made by `init-ca`.
        #[arg(long)]
        ca: PathBuf,
        #[arg(long, value_enum)]
        role: RoleArgument,
        /// The holder's name (CN).
        #[arg(long)]
        name: String,
        /// A DNS name or IP address the holder is reached at; repeat for several.
        #[arg(long = "san")]
        subject_alt_names: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Directory to write certificate.pem, private-key.pem and ca-certificate.pem into.
        #[arg(long)]
        out: PathBuf,
        /// The key: ed25519 for every ledger identity; ecdsa-p256 for a TLS server that
        /// browsers reach (the REST API), which refuse Ed25519 server keys.
        #[arg(long, value_enum, default_value_t = KeyTypeArgument::Ed25519)]
        key_type: KeyTypeArgument,
    },
    /// Show who a certificate names, its key fingerprint, validity and serial.
    Inspect {
        /// A PEM certificate file.
        file: PathBuf,
    },
    /// Write a validator's request to join a chain: its certificate (and intermediate
    /// CAs), addresses and proof of possession of its key (a signature over the chain,
    /// the key and the address). An admin proposes it with `pactum gov propose
    /// --add-validator FILE`.
    JoinRequest {
        /// The validator's directory made by `issue` (certificate.pem, private-key.pem);
        /// certificate.pem may hold intermediate CAs after the validator's certificate.
        #[arg(long)]
        validator: PathBuf,
        /// The validator's name in the consortium.
        #[arg(long)]
        name: String,
        /// Where peers reach its mutual-TLS endpoint (host:port).
        #[arg(long)]
        address: String,
        /// Where clients reach its REST API (host:port).
        #[arg(long)]
        api_address: String,
        /// The chain it joins (the genesis `chain_id`).
        #[arg(long)]
        chain_id: String,
        /// The JSON file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(arguments: CertsArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        CertsCommand::InitCa { org, out, days } => {
            let info =
                authority::init_authority_directory(&org, &out, clock::unix_seconds(), days)?;
            println!("created the CA of {} in {}", info.organisation, out.display());
            print_info(&info);
        }
        CertsCommand::Issue { ca, role, name, subject_alt_names, days, out, key_type } => {
            let request = IssueRequest {
                role: role.into(),
                name: &name,
                subject_alt_names: &subject_alt_names,
                at: clock::unix_seconds(),
                days,
            };
            match key_type {
                KeyTypeArgument::Ed25519 => {
                    let info = authority::issue_into_directory(&ca, &request, &out)?;
                    println!(
                        "issued a {} certificate for {} in {}",
                        request.role,
                        name,
                        out.display()
                    );
                    print_info(&info);
                }
                KeyTypeArgument::EcdsaP256 => {
                    authority::issue_server_into_directory(&ca, &request, &out)?;
                    println!(
                        "issued an ECDSA P-256 {} certificate for {} in {} (a TLS server certificate, not a ledger identity)",
                        request.role,
                        name,
                        out.display()
                    );
                }
            }
        }
        CertsCommand::JoinRequest { validator, name, address, api_address, chain_id, out } => {
            let request = join_request(&validator, name, address, api_address, &chain_id)?;
            let json = serde_json::to_string_pretty(&request)?;
            std::fs::write(&out, json)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote the join request of {} to {}", request.name, out.display());
        }
        CertsCommand::Inspect { file } => {
            let pem =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let certificates =
                certificates_from_pem(&pem).with_context(|| file.display().to_string())?;
            for der in certificates {
                let info =
                    CertificateInfo::from_der(&der).with_context(|| file.display().to_string())?;
                print_info(&info);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A validator's join request: its certificate and chain from `directory`, and the
/// proof of possession signed with its key there.
pub fn join_request(
    directory: &std::path::Path,
    name: String,
    network_address: String,
    api_address: String,
    chain_id: &str,
) -> anyhow::Result<pactum_types::NewValidator> {
    let certificate_path = directory.join("certificate.pem");
    let pem = std::fs::read(&certificate_path)
        .with_context(|| format!("cannot read {}", certificate_path.display()))?;
    let mut certificates = certificates_from_pem(&pem)?.into_iter();
    let certificate_der = certificates
        .next()
        .with_context(|| format!("{} holds no certificate", certificate_path.display()))?;
    let chain_der: Vec<Vec<u8>> = certificates.collect();
    let info = CertificateInfo::from_der(&certificate_der)?;
    if info.role != Some(Role::Validator) {
        anyhow::bail!("{} is not a validator certificate", certificate_path.display());
    }
    let key_path = directory.join("private-key.pem");
    let key_pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("cannot read {}", key_path.display()))?;
    let keypair =
        pactum_types::Keypair::from_seed(&pactum_certs::tls::ed25519_seed_of_pem(&key_pem)?);
    if keypair.public_key() != info.public_key {
        anyhow::bail!("{} is not the key of {}", key_path.display(), certificate_path.display());
    }
    let chain = pactum_types::ChainId::new(chain_id)?;
    let message = pactum_types::join_message(&chain, &info.public_key, &network_address);
    let proof = keypair.sign(pactum_types::crypto::domain::VALIDATOR_JOIN, &message);
    Ok(pactum_types::NewValidator {
        name,
        certificate_der,
        chain_der,
        network_address,
        api_address,
        proof,
    })
}

fn format_time(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|time| time.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix_seconds} (Unix seconds)"))
}

fn print_info(info: &CertificateInfo) {
    println!("  organisation: {}", info.organisation);
    match info.role {
        Some(role) => println!("  role:         {role}"),
        None => println!("  role:         (certificate authority)"),
    }
    println!("  name:         {}", info.name);
    println!("  public key:   {}", info.public_key);
    println!("  fingerprint:  {} (SHA3-256 of the key)", info.fingerprint());
    println!("  valid from:   {}", format_time(info.not_before));
    println!("  valid until:  {}", format_time(info.not_after));
    println!("  serial:       {}", info.serial_hex());
}

/// `--key-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyTypeArgument {
    Ed25519,
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
}
