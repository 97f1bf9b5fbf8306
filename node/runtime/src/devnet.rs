//! Laying out a local consortium: one CA per member organisation, a validator certificate
//! per member, the genesis file and each validator's node configuration. `pactum devnet up`
//! (issue 6) will start validators from this layout; today it is the part that prepares
//! it, so that the layout can be checked on its own.
//!
//! ```text
//! DIR/genesis.json
//! DIR/organisations/member-N/{ca-certificate.pem, ca-private-key.pem}
//! DIR/validators/validator-N/{certificate.pem, private-key.pem, ca-certificate.pem, node.json}
//! DIR/validators/validator-N/data/          (the validator's RocksDB, created by the node)
//! ```
//!
//! Preparing a directory that already holds a devnet reuses it unchanged (state persists
//! across down and up); nothing is ever overwritten.

use std::path::{Path, PathBuf};

use pactum_certs::Role;
use pactum_certs::authority::{
    AuthorityError, CA_CERTIFICATE_FILE, CERTIFICATE_FILE, IssueRequest, PRIVATE_KEY_FILE,
    init_authority_directory, issue_into_directory, write_new_file,
};
use pactum_types::ChainId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::genesis::{
    ConsensusParameters, Genesis, GenesisError, GenesisFile, GovernancePolicy, OrganisationEntry,
    ValidatorEntry,
};

/// Days the devnet's certificates are valid.
const DEVNET_CERTIFICATE_DAYS: u32 = 365;

/// What to lay out.
#[derive(Debug, Clone)]
pub struct DevnetPlan {
    pub directory: PathBuf,
    /// One member organisation per validator; at least 4.
    pub validators: usize,
    pub chain_id: ChainId,
    /// Validator `i` listens for validators on `127.0.0.1:(p2p_base_port + i)` and serves
    /// its REST API on `127.0.0.1:(api_base_port + i)`.
    pub p2p_base_port: u16,
    pub api_base_port: u16,
    /// Unix seconds: genesis time and the certificates' start (the caller reads the clock).
    pub now: i64,
}

/// One validator's node configuration (`node.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub genesis: PathBuf,
    pub data_dir: PathBuf,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// Where to accept other validators' mutual-TLS connections.
    pub listen: String,
    /// Where to serve the REST API.
    pub api_listen: String,
    /// How long a transaction may wait in the mempool behind a missing nonce before it is
    /// dropped as expired, in milliseconds (default and maximum
    /// `limits::MEMPOOL_GAP_WAIT_MS_MAX`; at least 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mempool_gap_wait_ms: Option<u64>,
    /// The request rate one client address may sustain on the REST API (default
    /// `limits::API_REQUESTS_PER_SECOND_PER_ADDRESS_DEFAULT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_requests_per_second_per_address: Option<u32>,
    /// Serve the REST API over TLS (`docs/operations.md`); plain HTTP if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_tls: Option<ApiTls>,
}

/// The REST API's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTls {
    /// The server's certificate chain (PEM), from the organisation's CA: ECDSA P-256 for
    /// browsers (`pactum certs issue --role api --key-type ecdsa-p256`).
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// If set, every client must present a certificate that chains to one of these CA
    /// certificates (PEM), for example the member CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_certificates: Option<PathBuf>,
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<Self, DevnetError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| DevnetError::Io { path: path.to_path_buf(), source })?;
        serde_json::from_str(&text).map_err(|error| DevnetError::Config {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })
    }
}

/// A laid-out devnet.
#[derive(Debug, Clone)]
pub struct Devnet {
    pub genesis: Genesis,
    pub genesis_path: PathBuf,
    /// Each validator's `node.json`, in replica-id order.
    pub node_configs: Vec<PathBuf>,
    /// Whether this call created the layout (false: an existing one was reused).
    pub created: bool,
}

#[derive(Debug, Error)]
pub enum DevnetError {
    #[error("a devnet needs at least 4 validators (PBFT tolerates one fault from 4), got {0}")]
    TooFewValidators(usize),
    #[error("ports {base}..{end} do not fit below 65536")]
    Ports { base: u16, end: usize },
    #[error(
        "{directory} already holds a devnet of {existing} validators; use --validators {existing}, or remove the directory to start afresh"
    )]
    DifferentSize { directory: PathBuf, existing: usize },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid node configuration: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    #[error(transparent)]
    Genesis(#[from] GenesisError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevnetError + '_ {
    move |source| DevnetError::Io { path: path.to_path_buf(), source }
}

/// Lays out the devnet described by `plan`, or reuses the one already there.
pub fn prepare(plan: &DevnetPlan) -> Result<Devnet, DevnetError> {
    if plan.validators < 4 {
        return Err(DevnetError::TooFewValidators(plan.validators));
    }
    for base in [plan.p2p_base_port, plan.api_base_port] {
        let end = usize::from(base) + plan.validators;
        if end > usize::from(u16::MAX) {
            return Err(DevnetError::Ports { base, end });
        }
    }
    let genesis_path = plan.directory.join("genesis.json");
    let node_configs: Vec<PathBuf> = (0..plan.validators)
        .map(|index| validator_directory(&plan.directory, index).join("node.json"))
        .collect();
    if genesis_path.exists() {
        let genesis = Genesis::load(&genesis_path)?;
        if genesis.validators.len() != plan.validators {
            return Err(DevnetError::DifferentSize {
                directory: plan.directory.clone(),
                existing: genesis.validators.len(),
            });
        }
        return Ok(Devnet { genesis, genesis_path, node_configs, created: false });
    }

    let mut organisations = Vec::new();
    let mut validators = Vec::new();
    for (index, node_config) in node_configs.iter().enumerate() {
        let organisation = format!("Member {}", index + 1);
        let authority = plan.directory.join("organisations").join(format!("member-{}", index + 1));
        init_authority_directory(&organisation, &authority, plan.now, DEVNET_CERTIFICATE_DAYS)?;
        let name = format!("validator-{}", index + 1);
        let directory = validator_directory(&plan.directory, index);
        let request = IssueRequest {
            role: Role::Validator,
            name: &name,
            subject_alt_names: &["127.0.0.1".to_string(), "localhost".to_string()],
            at: plan.now,
            days: DEVNET_CERTIFICATE_DAYS,
        };
        issue_into_directory(&authority, &request, &directory)?;
        let read = |path: PathBuf| std::fs::read_to_string(&path).map_err(io(&path));
        let ca_certificate = read(authority.join(CA_CERTIFICATE_FILE))?;
        let certificate = read(directory.join(CERTIFICATE_FILE))?;
        let listen = format!("127.0.0.1:{}", usize::from(plan.p2p_base_port) + index);
        let api_listen = format!("127.0.0.1:{}", usize::from(plan.api_base_port) + index);
        organisations.push(OrganisationEntry { name: organisation.clone(), ca_certificate });
        validators.push(ValidatorEntry {
            name,
            organisation,
            certificate,
            address: listen.clone(),
            api_address: api_listen.clone(),
        });
        let config = NodeConfig {
            mempool_gap_wait_ms: None,
            api_tls: None,
            api_requests_per_second_per_address: None,
            genesis: genesis_path.clone(),
            data_dir: directory.join("data"),
            certificate: directory.join(CERTIFICATE_FILE),
            private_key: directory.join(PRIVATE_KEY_FILE),
            listen,
            api_listen,
        };
        let text = serde_json::to_string_pretty(&config).map_err(GenesisError::Json)?;
        write_new_file(node_config, &text, false)?;
    }
    let file = GenesisFile {
        chain_id: plan.chain_id.clone(),
        genesis_time: plan.now,
        organisations,
        validators,
        governance: GovernancePolicy { approvals_required: plan.validators / 2 + 1 },
        gas_schedule_version: 1,
        consensus: ConsensusParameters::default(),
        revoked: Vec::new(),
    };
    // Check before writing: a genesis that would not start a node is never written.
    let genesis = Genesis::check(file)?;
    let text = serde_json::to_string_pretty(&genesis.file).map_err(GenesisError::Json)?;
    // The genesis goes last: its presence marks a complete layout.
    write_new_file(&genesis_path, &text, false)?;
    Ok(Devnet { genesis, genesis_path, node_configs, created: true })
}

fn validator_directory(directory: &Path, index: usize) -> PathBuf {
    directory.join("validators").join(format!("validator-{}", index + 1))
}
