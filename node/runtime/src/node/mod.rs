//! One validator: the PBFT replica over the mTLS transport, the mempool, the executor, and
//! state transfer, each a stage that owns its state and talks to the others over bounded
//! channels.
//!
//! ```text
//!  REST / gossip ──▶ admission ──(ready txs)──▶ consensus ──(committed batches)──▶ execution
//!                    (mempool,                  (replica, consensus log,          (executor,
//!                     batch verify)              timers, sends)                    state transfer)
//!  transport ──▶ inbound dispatch ──▶ consensus / admission / block serving / execution
//! ```
//!
//! - **Consensus** (a thread) owns the [`Replica`] and the [`ConsensusLog`]. It carries out
//!   the replica's effects in order; every record is synced to RocksDB before any later
//!   effect (a send) runs: persist before send.
//! - **Execution** (a thread) derives each committed block from its proposal
//!   ([`crate::proposal`]), executes it in one synced write, reports the state digest
//!   back for checkpoints, evicts its transactions from the mempool and publishes it to
//!   event subscribers. It also performs state transfer: it fetches blocks with their
//!   commit certificates from peers and verifies each before executing it.
//! - **Admission** (a thread) batches submissions from clients and peers into the mempool
//!   (one batch signature verification), gossips client transactions, and hands ready
//!   transactions to consensus.
//!
//! Nothing a peer sends can panic the node: frames that do not decode, messages that claim
//! another sender, and invalid blocks are counted as evidence and dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use pactum_certs::identity::{CertificateInfo, Role};
use pactum_certs::tls::NodeIdentity;
use pactum_certs::verify::{CertError, TrustStore};
use pactum_consensus::{
    CheckpointCertificate, Crypto, Delivery, Ed25519Crypto, Effect, Input, Message, Replica,
    ReplicaId, Sequence, SignedMessage, TimeoutKind, View,
};
use pactum_executor::{
    ExecutedBlock, Executor, ExecutorError, ExecutorOptions, LedgerReader, QueryOutcome,
};
use pactum_mempool::{
    Mempool, MempoolConfig, NonceState, OrganisationShare, Rejection, SignerRegistry, Source,
};
use pactum_net::{Peer, Transport, TransportConfig, TransportSettings};
use pactum_storage::{MempoolLog, StateSpace, StorageError, Store, StoreRead};
use pactum_types::crypto::Keypair;
use pactum_types::{
    Address, Block, Decode, Encode, EnvelopeFault, Event, Hash, PublicKey, Receipt, limits,
};
use pactum_vm::VmOptions;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{error, info, warn};

use crate::clock::{Stopwatch, unix_millis, unix_seconds};
use crate::consensus_log::{ConsensusLog, LogError};
use crate::devnet::NodeConfig;
use crate::genesis::Genesis;
use crate::metrics::Metrics;
use crate::proposal::{CertificateChecker, NodeCrypto, block_from_delivery, state_digest};
use crate::verified::VerifiedSet;
use crate::wire::Wire;

mod admission;
mod block_exchange;

pub use admission::Accepted;
use admission::{ExpiredTransactions, forget_durable, gossip_frames};

/// How long state transfer waits for one peer's answer before asking another.
const STATE_TRANSFER_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Submissions remembered for commit-latency measurement.
const LATENCY_TRACKED_MAX: usize = 200_000;

/// Test-only misbehaviour, for the end-to-end Byzantine test. A node never runs with one
/// unless told to on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByzantineMode {
    /// Every PBFT message this node signs carries a corrupted signature.
    BadSignatures,
    /// As primary, this node sends each backup a different well-formed, validly signed
    /// batch for the same sequence number (the same transactions, stamped a different
    /// millisecond): equivocation that only a view change can end.
    Equivocate,
    /// As primary, this node adds to what it orders, about once a second, a validly
    /// signed transaction from a key the ledger never enrolled: what a Byzantine primary
    /// can do that an honest node's mempool would refuse.
    IncludeUnenrolled,
    /// Besides its honest work, while the file [`FLOOD_SWITCH_FILE`] exists in its data
    /// directory, this node sends every other validator [`FLOOD_MESSAGES_PER_SECOND`]
    /// validly signed COMMITs for sequence numbers far beyond any window: each costs its
    /// receiver a signature check and does nothing.
    FloodUseless,
}

/// Test-only ([`ByzantineMode::FloodUseless`]): useless signed messages a second, to each
/// other validator.
pub const FLOOD_MESSAGES_PER_SECOND: u64 = 4_000;

/// Test-only ([`ByzantineMode::FloodUseless`]): the flood runs while this file exists in
/// the node's data directory.
pub const FLOOD_SWITCH_FILE: &str = "flood-for-tests";

/// Everything a node needs to start.
#[derive(Debug)]
pub struct NodeOptions {
    pub config: NodeConfig,
    pub genesis: Genesis,
    pub byzantine_for_tests: Option<ByzantineMode>,
    /// Test-only: start even if the consortium would refuse this node's own certificate,
    /// so a test can watch the other validators refuse it.
    pub skip_own_certificate_check_for_tests: bool,
    /// Test-only: while this file exists the execution stage executes nothing, so a test
    /// can hold execution far behind consensus and watch the node stay responsive.
    pub execution_pause_for_tests: Option<PathBuf>,
}

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("cannot load this node's certificate and key: {0}")]
    Identity(#[from] pactum_certs::tls::TlsError),
    #[error("this node's key {key} is not a validator in the genesis file")]
    NotAValidator { key: PublicKey },
    #[error("this node's certificate is not acceptable to the consortium: {0}")]
    Certificate(#[from] CertError),
    #[error("the data directory {path} belongs to another chain (genesis {found}, not {expected})")]
    OtherChain { path: PathBuf, found: String, expected: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad listen address {address}: {reason}")]
    Address { address: String, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Net(#[from] pactum_net::NetError),
    #[error("the consensus configuration is invalid: {0}")]
    Consensus(#[from] pactum_consensus::ConfigError),
    #[error("the mempool configuration is invalid: {0}")]
    Mempool(#[from] pactum_mempool::ConfigError),
    #[error("mempool_gap_wait_ms is {value}; it must be between {min} and {max}")]
    GapWait { value: u64, min: u64, max: u64 },
}

/// Where a transaction stands, for `GET /v1/transactions/{hash}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionStatus {
    Pending,
    Committed {
        height: u64,
        position: u32,
        receipt: Receipt,
    },
    /// This node dropped it after it waited too long behind `missing_nonce`; sending it
    /// again (once the missing transaction is sent) admits it again.
    Expired {
        nonce: u64,
        missing_nonce: u64,
        waited_ms: u64,
    },
    Unknown,
}

/// An account as `GET /v1/accounts/{public_key}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    pub public_key: PublicKey,
    /// The address contracts see as the caller.
    pub address: Address,
    pub next_nonce: u64,
    /// (organisation, role) once enrolled.
    pub enrolment: Option<(String, String)>,
    /// The account's transactions in this node's mempool, if any.
    pub pending: Option<pactum_mempool::SenderPending>,
    /// How long this node lets a transaction wait behind a missing nonce (milliseconds).
    pub gap_wait_ms: u64,
}

/// A committed block as the event stream announces it.
#[derive(Debug, Clone)]
pub struct CommittedBlock {
    pub height: u64,
    pub block_hash: Hash,
    pub timestamp_ms: u64,
    pub transactions: Vec<Hash>,
    /// Every event of the block: (transaction hash, contract event).
    pub events: Vec<(Hash, Event)>,
    pub state_root: Hash,
}

/// A validator's view of one peer (or itself) for `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorStatus {
    pub name: String,
    pub organisation: String,
    pub public_key: PublicKey,
    pub address: String,
    pub api_address: String,
    pub is_self: bool,
    pub connected: bool,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    pub organisation: String,
    pub public_key: PublicKey,
    pub replica_id: ReplicaId,
    pub chain_id: String,
    pub view: u64,
    pub primary: String,
    pub in_view_change: bool,
    pub height: u64,
    pub last_block_hash: Hash,
    pub last_block_time_ms: u64,
    pub state_root: Hash,
    pub stable_checkpoint: u64,
    pub validators: Vec<ValidatorStatus>,
    pub n: usize,
    pub f: usize,
    pub quorum: usize,
    pub mempool_transactions: usize,
    /// The certificates this validator depends on, with their expiry.
    pub certificates: Vec<crate::expiry::WatchedCertificate>,
    /// One sentence per certificate within 30, 7 or 1 days of expiry, or expired.
    pub warnings: Vec<String>,
}

#[derive(Debug, Default)]
struct ConsensusStatus {
    view: u64,
    in_view_change: bool,
    stable_checkpoint: u64,
    /// The last sequence consensus handed to execution.
    last_delivered: u64,
}

/// What the REST API (and tests) may ask of a running node. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("NodeHandle").field("name", &self.shared.name).finish()
    }
}

struct Shared {
    name: String,
    organisation: String,
    /// This validator's certificate (DER), watched for expiry; replaced by a reload.
    own_certificate_der: RwLock<Vec<u8>>,
    /// Where its certificate (with any chain) and key are read from, again on `SIGHUP`.
    certificate_path: PathBuf,
    private_key_path: PathBuf,
    /// Why the last certificate reload was refused, until one succeeds.
    reload_error: Mutex<Option<String>>,
    public_key: PublicKey,
    replica_id: ReplicaId,
    genesis: Genesis,
    /// The validators' keys in replica order (from the genesis), for certificates.
    validator_keys: Vec<PublicKey>,
    ledger: RwLock<Executor>,
    /// Reads for the REST API and peers, beside the executor: they never take its lock.
    reader: LedgerReader,
    /// Bounds the REST API's concurrent reads ([`NodeHandle::blocking_read`]).
    api_reads: tokio::sync::Semaphore,
    mempool: Mutex<Mempool>,
    /// The durable mempool log: client transactions accepted and not yet settled. Only the
    /// log writer thread (and recovery, before it starts) writes it.
    mempool_log: MempoolLog,
    /// Settled transactions for the log writer to delete from the log.
    log_deletes: Mutex<Vec<Hash>>,
    /// Transactions dropped after waiting too long behind a missing nonce (bounded).
    expired: Mutex<ExpiredTransactions>,
    /// How long a transaction may wait behind a missing nonce (milliseconds).
    gap_wait_ms: u64,
    /// Test-only misbehaviour of this node, if any.
    byzantine_for_tests: Option<ByzantineMode>,
    trust: Arc<TrustStore>,
    verified: Arc<VerifiedSet>,
    metrics: Metrics,
    status: Mutex<ConsensusStatus>,
    events: broadcast::Sender<Arc<CommittedBlock>>,
    admission: std::sync::mpsc::SyncSender<Submission>,
    /// Reports, requests and timers for the consensus stage (taken before peers' messages).
    consensus: mpsc::Sender<LocalEvent>,
    /// Peers' consensus messages.
    consensus_peers: mpsc::Sender<SignedMessage>,
    transport: Transport,
    /// When each transaction was admitted here (bounded), for commit latency.
    admitted_at: Mutex<LatencyTracker>,
    /// Set when the node shuts down; the admission stage stops at its next tick.
    stopping: std::sync::atomic::AtomicBool,
    /// One block request served per peer; answers taken only from the peer asked.
    block_exchange: block_exchange::BlockExchange,
}

#[derive(Default)]
struct LatencyTracker {
    started: HashMap<Hash, Stopwatch>,
    order: VecDeque<Hash>,
}

impl LatencyTracker {
    fn insert(&mut self, hash: Hash) {
        if self.started.insert(hash, Stopwatch::start()).is_none() {
            self.order.push_back(hash);
        }
        while self.order.len() > LATENCY_TRACKED_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.started.remove(&oldest);
            }
        }
    }
}

/// A transaction for the admission stage.
struct Submission {
    bytes: Vec<u8>,
    source: Source,
    reply: Option<oneshot::Sender<Result<Accepted, SubmitError>>>,
}

/// What the consensus stage hears from the node itself: it is taken before any peer's
/// message, so execution reports are never stuck behind a flood of votes.
enum LocalEvent {
    Requests(Vec<Vec<u8>>),
    Withdraw(Vec<Hash>),
    Timeout(TimeoutKind),
    Executed { sequence: u64, state_digest: Hash },
    StateTransferred { sequence: u64, state_digest: Hash, requests: Vec<Hash> },
    StateTransferFailed { sequence: u64 },
    Shutdown,
}

enum ExecutionCommand {
    Deliver(Delivery),
    Transfer { checkpoint: CheckpointCertificate },
    Shutdown,
}

/// Why a submission was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError {
    #[error("{0}")]
    Rejected(Rejection),
    #[error("the node is busy: its admission queue is full; retry shortly")]
    Busy,
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error(
        "the node could not write the transaction to its mempool log ({0}); it is not accepted: retry, or send it to another validator"
    )]
    NotDurable(String),
}

/// The ledger's view for admission: enrolled identities and nonces from committed state,
/// read from a snapshot beside the executor (never its lock, which a block holds while
/// it runs). Take it while holding the mempool's lock: the mempool then never sees an
/// older ledger than the one its last `committed` call reflected.
struct LedgerView<'a> {
    ledger: &'a pactum_executor::LedgerSnapshot,
    trust: &'a TrustStore,
}

impl SignerRegistry for LedgerView<'_> {
    /// The executor's rule ([`pactum_executor::signer_fault`]) at this node's clock.
    fn signer_fault(&self, key: &PublicKey) -> Option<EnvelopeFault> {
        self.signer(key).0
    }

    fn organisation(&self, key: &PublicKey) -> Option<String> {
        self.signer(key).1
    }

    /// One read of the enrolment record for the fault and the organisation.
    fn signer(&self, key: &PublicKey) -> (Option<EnvelopeFault>, Option<String>) {
        let unknown = Some(EnvelopeFault::UnknownSigner { sender: *key });
        let identity = pactum_executor::ledger::identity_key(key);
        let Ok(record) = self.ledger.store().state_get(StateSpace::Ledger, &identity) else {
            return (unknown, None);
        };
        let at = unix_seconds().max(0) as u64;
        let fault = pactum_executor::signer_fault(key, record.as_deref(), self.trust, at)
            .unwrap_or(unknown);
        let organisation = record
            .and_then(|record| pactum_executor::ledger::Enrolment::from_bytes(&record).ok())
            .map(|enrolment| enrolment.organisation);
        (fault, organisation)
    }

    fn enrolment_fault(&self, key: &PublicKey, certificate_der: &[u8]) -> Option<EnvelopeFault> {
        let sender = *key;
        match self.trust.verify(certificate_der, unix_seconds(), None) {
            Ok(verified)
                if verified.info.public_key == *key
                    && matches!(verified.info.role, Some(Role::Client | Role::Admin)) =>
            {
                None
            }
            Err(CertError::Revoked { organisation, serial }) => {
                Some(EnvelopeFault::RevokedSigner { sender, organisation, serial })
            }
            Err(CertError::Expired { not_after, at }) => Some(EnvelopeFault::ExpiredSigner {
                sender,
                not_after: not_after.max(0) as u64,
                at: at.max(0) as u64,
            }),
            _ => Some(EnvelopeFault::UnknownSigner { sender }),
        }
    }
}

impl NonceState for LedgerView<'_> {
    fn next_nonce(&self, sender: &PublicKey) -> u64 {
        // A read failure refuses the transaction as stale rather than admit it blindly.
        self.ledger.next_nonce(sender).unwrap_or(u64::MAX)
    }
}

/// A running validator.
pub struct Node {
    handle: NodeHandle,
    threads: Vec<JoinHandle<()>>,
    execution: std::sync::mpsc::SyncSender<ExecutionCommand>,
    inbound_task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Node").field("handle", &self.handle).finish_non_exhaustive()
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io { path: path.to_path_buf(), source }
}

/// Checks (or, on first start, records) which chain the data directory belongs to.
fn claim_data_directory(data_dir: &Path, genesis: &Genesis) -> Result<(), NodeError> {
    std::fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
    let marker = data_dir.join("genesis-hash");
    let expected = genesis.hash.to_hex();
    match std::fs::read_to_string(&marker) {
        Ok(found) if found.trim() == expected => {}
        Ok(found) => {
            return Err(NodeError::OtherChain {
                path: data_dir.to_path_buf(),
                found: found.trim().to_string(),
                expected,
            });
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&marker, format!("{expected}\n")).map_err(io_error(&marker))?;
        }
        Err(error) => return Err(io_error(&marker)(error)),
    }
    // A copy of the genesis beside the data, so `pactum chain verify DATA_DIR` can check
    // certificates against the validator set without being told where the genesis is.
    let copy = data_dir.join("genesis.json");
    if !copy.exists() {
        let text = serde_json::to_string_pretty(&genesis.file).unwrap_or_default();
        std::fs::write(&copy, text).map_err(io_error(&copy))?;
    }
    Ok(())
}

impl Node {
    /// Opens the node's stores, starts the transport and every stage. Must be called
    /// inside a tokio runtime.
    pub async fn start(options: NodeOptions) -> Result<Node, NodeError> {
        let NodeOptions {
            config,
            genesis,
            byzantine_for_tests,
            skip_own_certificate_check_for_tests,
            execution_pause_for_tests,
        } = options;
        let identity = NodeIdentity::load(&config.certificate, &config.private_key)?;
        let seed = identity.ed25519_seed()?;
        let own_certificate_der = identity.certificate.as_ref().to_vec();
        let public_key = identity.info.public_key;
        let replica_id =
            genesis.replica_id(&public_key).ok_or(NodeError::NotAValidator { key: public_key })?;
        let validator = &genesis.validators[usize::from(replica_id)];
        let trust = Arc::new(genesis.trust_store());
        // A node whose own certificate the consortium would refuse says so at once.
        if !skip_own_certificate_check_for_tests {
            trust.verify_chain(
                identity.certificate.as_ref(),
                &identity.chain_der(),
                unix_seconds(),
                Some(Role::Validator),
            )?;
        }

        claim_data_directory(&config.data_dir, &genesis)?;
        let ledger_store = Store::open(config.data_dir.join("ledger"))?;
        let consensus_store = Store::open(config.data_dir.join("consensus"))?;
        let mempool_log = MempoolLog::open(config.data_dir.join("mempool"))?;
        let mut executor_options = ExecutorOptions::new(genesis.file.chain_id.clone());
        executor_options.vm = VmOptions {
            artifact_directory: Some(config.data_dir.join("compiled-contracts")),
            ..VmOptions::default()
        };
        executor_options.consortium = Some(Arc::new(genesis.consortium()));
        executor_options.budget = genesis.block_budget();
        let executor = Executor::open(ledger_store, executor_options)?;
        // Peers, admission and the executor trust the configuration governance left.
        if let Some(consortium) = executor.consortium() {
            consortium.fill(&trust);
        }
        let last_executed = executor.tip().height;
        let (log, records) = ConsensusLog::open(&consensus_store)?;
        info!(
            name = %validator.name, replica = replica_id, height = last_executed,
            records = records.len(), "opened the ledger and the consensus log"
        );

        let verified = Arc::new(VerifiedSet::new());
        let keys = genesis.validator_keys();
        let crypto = NodeCrypto::new(
            Ed25519Crypto::new(Keypair::from_seed(&seed), keys.clone()),
            genesis.file.chain_id.clone(),
            Arc::clone(&verified),
            byzantine_for_tests == Some(ByzantineMode::BadSignatures),
        )
        .with_organisations(executor.reader());
        let replica = Replica::new(
            replica_id,
            genesis.consensus_config(),
            crypto,
            &records,
            Sequence(last_executed),
        )?;
        // Test-only equivocation signs its forged PRE-PREPAREs with this node's own key.
        let equivocation = (byzantine_for_tests == Some(ByzantineMode::Equivocate))
            .then(|| Ed25519Crypto::new(Keypair::from_seed(&seed), keys.clone()));

        let listen: SocketAddr =
            config.listen.parse().map_err(|error: std::net::AddrParseError| {
                NodeError::Address { address: config.listen.clone(), reason: error.to_string() }
            })?;
        let peers: Vec<Peer> = genesis
            .validators
            .iter()
            .map(|validator| Peer {
                public_key: validator.public_key,
                address: validator.address.clone(),
            })
            .collect();
        let settings = TransportSettings {
            frame_payload_bytes_max: limits::NETWORK_FRAME_BYTES_MAX,
            ..TransportSettings::default()
        };
        let (transport, inbound) = Transport::start(TransportConfig {
            listen_address: listen,
            identity,
            trust: Arc::clone(&trust),
            validators: peers,
            settings,
        })
        .await?;

        let mut mempool_config = MempoolConfig::new(genesis.file.chain_id.clone());
        // Each member organisation's clients get an equal share of the pool.
        mempool_config.organisation_share =
            Some(OrganisationShare::equal(&mempool_config, genesis.organisations.len()));
        mempool_config.gas_limit_max =
            genesis.file.consensus.block_gas_max.min(limits::TRANSACTION_GAS_MAX);
        let mempool = Mempool::new(mempool_config)?;
        let gap_wait_ms = config.mempool_gap_wait_ms.unwrap_or(limits::MEMPOOL_GAP_WAIT_MS_MAX);
        if !(limits::MEMPOOL_GAP_WAIT_MS_MIN..=limits::MEMPOOL_GAP_WAIT_MS_MAX)
            .contains(&gap_wait_ms)
        {
            return Err(NodeError::GapWait {
                value: gap_wait_ms,
                min: limits::MEMPOOL_GAP_WAIT_MS_MIN,
                max: limits::MEMPOOL_GAP_WAIT_MS_MAX,
            });
        }
        let (admission_sender, admission_receiver) =
            std::sync::mpsc::sync_channel(limits::ADMISSION_QUEUE_MAX);
        let (consensus_sender, consensus_receiver) =
            mpsc::channel(limits::CONSENSUS_LOCAL_QUEUE_MAX);
        let (peers_sender, peers_receiver) = mpsc::channel(limits::CONSENSUS_PEER_QUEUE_MAX);
        let (events, _) = broadcast::channel(limits::EVENT_STREAM_BUFFER_BLOCKS_MAX);
        let (execution_sender, execution_receiver) =
            std::sync::mpsc::sync_channel(limits::EXECUTION_QUEUE_MAX);
        let (blocks_sender, blocks_receiver) = std::sync::mpsc::sync_channel(64);

        let shared = Arc::new(Shared {
            name: validator.name.clone(),
            organisation: validator.organisation.clone(),
            own_certificate_der: RwLock::new(own_certificate_der),
            certificate_path: config.certificate.clone(),
            private_key_path: config.private_key.clone(),
            reload_error: Mutex::new(None),
            public_key,
            replica_id,
            validator_keys: keys,
            genesis,
            reader: executor.reader(),
            api_reads: tokio::sync::Semaphore::new(limits::API_READS_MAX),
            ledger: RwLock::new(executor),
            mempool: Mutex::new(mempool),
            mempool_log,
            log_deletes: Mutex::new(Vec::new()),
            expired: Mutex::new(ExpiredTransactions::default()),
            gap_wait_ms,
            byzantine_for_tests,
            trust,
            verified,
            metrics: Metrics::default(),
            status: Mutex::new(ConsensusStatus::default()),
            events,
            admission: admission_sender,
            consensus: consensus_sender,
            consensus_peers: peers_sender,
            transport,
            admitted_at: Mutex::new(LatencyTracker::default()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            block_exchange: block_exchange::BlockExchange::default(),
        });
        shared.metrics.height.store(last_executed, Ordering::Relaxed);
        let handle = NodeHandle { shared: Arc::clone(&shared) };
        let runtime = tokio::runtime::Handle::current();

        let mut threads = Vec::new();
        let consensus_shared = Arc::clone(&shared);
        let consensus_execution = execution_sender.clone();
        let consensus_runtime = runtime;
        threads.push(spawn_thread("consensus", move || {
            let inputs = ConsensusInputs { local: consensus_receiver, peers: peers_receiver };
            let mut carrier = EffectCarrier {
                shared: &consensus_shared,
                log,
                store: &consensus_store,
                execution: &consensus_execution,
                runtime: &consensus_runtime,
                equivocation,
            };
            run_consensus(&consensus_shared, replica, &mut carrier, inputs);
        }));
        let execution_shared = Arc::clone(&shared);
        threads.push(spawn_thread("execution", move || {
            run_execution(
                &execution_shared,
                &execution_receiver,
                &blocks_receiver,
                execution_pause_for_tests.as_deref(),
            );
        }));
        let (log_writer, promises) = std::sync::mpsc::sync_channel(limits::MEMPOOL_LOG_QUEUE_MAX);
        let admission_shared = Arc::clone(&shared);
        threads.push(spawn_thread("admission", move || {
            admission::run_admission(&admission_shared, &admission_receiver, &log_writer);
        }));
        let writer_shared = Arc::clone(&shared);
        threads.push(spawn_thread("mempool-log", move || {
            admission::run_log_writer(&writer_shared, &promises);
        }));
        let inbound_task = tokio::spawn(run_inbound(Arc::clone(&shared), inbound, blocks_sender));
        if byzantine_for_tests == Some(ByzantineMode::FloodUseless) {
            let crypto =
                Ed25519Crypto::new(Keypair::from_seed(&seed), shared.validator_keys.clone());
            let switch = config.data_dir.join(FLOOD_SWITCH_FILE);
            tokio::spawn(flood_useless(Arc::clone(&shared), crypto, switch));
        }
        Ok(Node { handle, threads, execution: execution_sender, inbound_task })
    }

    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops every stage, waits for the block being executed to finish, and closes the
    /// stores. Nothing committed is lost; the consensus log lets the replica resume.
    pub async fn shutdown(self) {
        let shared = &self.handle.shared;
        shared.stopping.store(true, Ordering::Relaxed);
        shared.transport.shutdown();
        self.inbound_task.abort();
        let _ = shared.consensus.send(LocalEvent::Shutdown).await;
        let _ = self.execution.send(ExecutionCommand::Shutdown);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        info!(name = %shared.name, "stopped");
    }
}

fn spawn_thread(name: &str, body: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("pactum-{name}"))
        .spawn(body)
        .expect("the operating system can start a thread")
}

// ---- Consensus stage ----

/// The consensus stage's two input queues.
struct ConsensusInputs {
    local: mpsc::Receiver<LocalEvent>,
    peers: mpsc::Receiver<SignedMessage>,
}

impl ConsensusInputs {
    /// Waits for the next event, the node's own before any peer's.
    fn next(&mut self, runtime: &tokio::runtime::Handle) -> Option<ConsensusInput> {
        runtime.block_on(async {
            tokio::select! {
                biased;
                Some(event) = self.local.recv() => Some(ConsensusInput::Local(event)),
                Some(message) = self.peers.recv() => Some(ConsensusInput::Peer(message)),
                else => None,
            }
        })
    }

    /// An event that is already waiting, if any.
    fn ready(&mut self) -> Option<ConsensusInput> {
        if let Ok(event) = self.local.try_recv() {
            return Some(ConsensusInput::Local(event));
        }
        self.peers.try_recv().ok().map(ConsensusInput::Peer)
    }
}

enum ConsensusInput {
    Local(LocalEvent),
    Peer(SignedMessage),
}

/// Runs the replica: takes what is waiting (up to [`limits::CONSENSUS_STEPS_PER_WRITE_MAX`]
/// events), steps the replica through it, and has the carrier write every record of those
/// steps in one synced write before it sends anything (persist before send, one write per
/// group of steps). It never waits on another stage: deliveries go to execution through a
/// queue the replica's backlog bound keeps from filling.
fn run_consensus(
    shared: &Arc<Shared>,
    mut replica: Replica<NodeCrypto>,
    carrier: &mut EffectCarrier<'_>,
    mut inputs: ConsensusInputs,
) {
    replica.observe_time(unix_millis());
    let mut effects = replica.start();
    // The last executed block again: a crash after the executor committed a checkpoint's
    // block but before the replica persisted its CHECKPOINT left that vote unsigned.
    let tip = shared.ledger.read().expect("ledger lock is never poisoned").tip().clone();
    if tip.height > 0 {
        effects.extend(replica.step(Input::Executed {
            sequence: Sequence(tip.height),
            state_digest: state_digest(&tip.block_hash, &tip.state_root),
        }));
    }
    if carrier.carry(effects).is_err() {
        return;
    }
    update_status(shared, &replica);
    let mut view_entered = replica.view();
    while let Some(first) = inputs.next(carrier.runtime) {
        let mut events = vec![first];
        while events.len() < limits::CONSENSUS_STEPS_PER_WRITE_MAX {
            match inputs.ready() {
                Some(event) => events.push(event),
                None => break,
            }
        }
        replica.observe_time(unix_millis());
        let mut effects = Vec::new();
        let mut stopping = false;
        for event in events {
            for input in consensus_inputs(event, &mut stopping) {
                effects.extend(replica.step(input));
            }
        }
        if carrier.carry(effects).is_err() || stopping {
            return;
        }
        if replica.view() != view_entered {
            view_entered = replica.view();
            shared.metrics.view_changes.fetch_add(1, Ordering::Relaxed);
        }
        update_status(shared, &replica);
    }
}

fn consensus_inputs(event: ConsensusInput, stopping: &mut bool) -> Vec<Input> {
    match event {
        ConsensusInput::Peer(message) => vec![Input::Message(message)],
        ConsensusInput::Local(event) => match event {
            LocalEvent::Shutdown => {
                *stopping = true;
                Vec::new()
            }
            LocalEvent::Requests(requests) => {
                requests.into_iter().map(|request| Input::Request { request }).collect()
            }
            LocalEvent::Withdraw(requests) => vec![Input::Withdraw { requests }],
            LocalEvent::Timeout(kind) => vec![Input::Timeout(kind)],
            LocalEvent::Executed { sequence, state_digest } => {
                vec![Input::Executed { sequence: Sequence(sequence), state_digest }]
            }
            LocalEvent::StateTransferred { sequence, state_digest, requests } => {
                vec![Input::StateTransferred {
                    sequence: Sequence(sequence),
                    state_digest,
                    requests,
                }]
            }
            LocalEvent::StateTransferFailed { sequence } => {
                vec![Input::StateTransferFailed { sequence: Sequence(sequence) }]
            }
        },
    }
}

fn update_status(shared: &Shared, replica: &Replica<NodeCrypto>) {
    let mut status = shared.status.lock().expect("status lock is never poisoned");
    status.view = replica.view().0;
    status.stable_checkpoint = replica.low_watermark().0;
    status.in_view_change = replica.in_view_change();
    status.last_delivered = replica.last_delivered().0;
    shared.metrics.view.store(status.view, Ordering::Relaxed);
    shared.metrics.stable_checkpoint.store(status.stable_checkpoint, Ordering::Relaxed);
}

struct EffectCarrier<'a> {
    shared: &'a Arc<Shared>,
    log: ConsensusLog,
    store: &'a Store,
    execution: &'a std::sync::mpsc::SyncSender<ExecutionCommand>,
    runtime: &'a tokio::runtime::Handle,
    /// Test-only ([`ByzantineMode::Equivocate`]): this node's key, to sign the different
    /// batches it sends each backup as primary.
    equivocation: Option<Ed25519Crypto>,
}

/// The consensus stage cannot go on (the log could not be written): the node stops
/// taking part rather than risk sending a vote it did not persist.
struct Halt;

impl EffectCarrier<'_> {
    /// Carries out the effects of one or more steps: every record first, in one synced
    /// write, then the rest in order.
    fn carry(&mut self, effects: Vec<Effect>) -> Result<(), Halt> {
        let (records, effects) = Effect::split_records(effects);
        if !records.is_empty() {
            if let Err(error) = self.log.persist(self.store, &records) {
                error!(%error, "cannot write the consensus log; this validator stops voting");
                return Err(Halt);
            }
            self.shared.metrics.consensus_log_writes.fetch_add(1, Ordering::Relaxed);
        }
        for effect in effects {
            self.carry_one(effect)?;
        }
        Ok(())
    }

    fn carry_one(&mut self, effect: Effect) -> Result<(), Halt> {
        let shared = self.shared;
        match effect {
            Effect::Persist(_) => {}
            Effect::Broadcast(message) => {
                let own_primary_pre_prepare = message.sender == shared.replica_id
                    && matches!(message.message, Message::PrePrepare { .. });
                let frame = Wire::Consensus(message.clone()).to_bytes();
                for (index, validator) in shared.genesis.validators.iter().enumerate() {
                    if validator.public_key == shared.public_key {
                        continue;
                    }
                    let frame = match &self.equivocation {
                        Some(crypto) if own_primary_pre_prepare && index % 2 == 1 => {
                            equivocate(crypto, &shared.genesis.consensus_config().chain, &message)
                                .map_or_else(
                                    || frame.clone(),
                                    |forged| Wire::Consensus(forged).to_bytes(),
                                )
                        }
                        _ => frame.clone(),
                    };
                    self.send(&validator.public_key, frame);
                }
            }
            Effect::Send { to, message } => {
                if let Some(validator) = shared.genesis.validators.get(usize::from(to)) {
                    self.send(&validator.public_key, Wire::Consensus(message).to_bytes());
                }
            }
            Effect::Deliver(delivery) => {
                // The replica delivers at most its backlog ahead of execution, and the
                // queue has room for that: a full queue is a broken invariant.
                if let Err(error) = self.execution.try_send(ExecutionCommand::Deliver(delivery)) {
                    error!(
                        full = matches!(error, std::sync::mpsc::TrySendError::Full(_)),
                        "the execution queue refused a delivery; this validator stops"
                    );
                    return Err(Halt);
                }
            }
            Effect::ScheduleTimeout { kind, after_ms } => {
                let consensus = shared.consensus.clone();
                self.runtime.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    let _ = consensus.send(LocalEvent::Timeout(kind)).await;
                });
            }
            Effect::RequestStateTransfer { checkpoint } => {
                let sequence = checkpoint.sequence.0;
                if self.execution.try_send(ExecutionCommand::Transfer { checkpoint }).is_err() {
                    // Execution is busy with a full backlog: the replica asks again.
                    warn!(sequence, "the execution queue is full; the state transfer waits");
                    let _ = shared.consensus.try_send(LocalEvent::StateTransferFailed { sequence });
                }
            }
            Effect::Evidence(evidence) => {
                warn!(?evidence, "evidence from a peer");
                shared.metrics.record_evidence(evidence.kind());
            }
            Effect::Relay { to, requests } => {
                // A backup's timer found these transactions not executed: the primary may
                // never have received them. They go as gossip, frame by frame.
                shared.metrics.requests_relayed.fetch_add(requests.len() as u64, Ordering::Relaxed);
                if let Some(primary) = shared.genesis.validators.get(usize::from(to)) {
                    for frame in gossip_frames(requests) {
                        self.send(&primary.public_key, frame);
                    }
                }
            }
            Effect::RequestRefused { .. } => {
                // The transaction stays in the mempool, in flight; it is offered again
                // once commits release the replica's queue.
                shared.metrics.requests_refused.fetch_add(1, Ordering::Relaxed);
                shared.mempool.lock().expect("mempool lock is never poisoned").release_in_flight();
            }
            Effect::ViewEntered { view, primary } => {
                info!(view = view.0, primary, "entered view");
            }
        }
        Ok(())
    }

    fn send(&self, key: &PublicKey, frame: Vec<u8>) {
        match self.shared.transport.send(key, frame) {
            Ok(()) => {}
            Err(pactum_net::SendError::TooLarge { .. }) => {
                // The configuration check bounds every consensus message below the frame
                // limit, so this is a bug worth hearing about.
                error!(peer = %key, "a consensus message is larger than a frame");
            }
            Err(_) => {
                self.shared.metrics.consensus_sends_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Test-only equivocation: the same PRE-PREPARE with its batch stamped a millisecond
/// later (another digest), signed with this node's key.
fn equivocate(
    crypto: &Ed25519Crypto,
    chain: &Hash,
    message: &SignedMessage,
) -> Option<SignedMessage> {
    let Message::PrePrepare { view, sequence, batch, .. } = &message.message else { return None };
    let decoded = pactum_consensus::decode_batch(
        batch,
        limits::BLOCK_TRANSACTIONS_MAX,
        limits::BLOCK_BODY_BYTES_MAX,
    )
    .ok()?;
    let header = decoded.header?;
    let later =
        pactum_consensus::BatchHeader { view: header.view, timestamp_ms: header.timestamp_ms + 1 };
    let batch = pactum_consensus::encode_batch(later, &decoded.requests);
    let digest = pactum_types::hash::sha3_256(&batch);
    let forged = Message::PrePrepare { view: *view, sequence: *sequence, digest, batch };
    let signature = crypto.sign(&forged.signing_bytes(chain, message.sender));
    Some(SignedMessage { sender: message.sender, message: forged, signature })
}

/// Test-only ([`ByzantineMode::FloodUseless`]): while `switch` exists, every 10 ms a burst
/// of COMMITs this node signs for the current view and for sequence numbers far beyond
/// every window, sent to every other validator while their send queues take them. Runs
/// until the node stops.
async fn flood_useless(shared: Arc<Shared>, crypto: Ed25519Crypto, switch: PathBuf) {
    const BURSTS_PER_SECOND: u64 = 100;
    let chain = shared.genesis.consensus_config().chain;
    let mut counter: u64 = 0;
    let mut ticks = tokio::time::interval(Duration::from_millis(1_000 / BURSTS_PER_SECOND));
    while !shared.stopping.load(Ordering::Relaxed) {
        ticks.tick().await;
        if !switch.exists() {
            continue;
        }
        let (view, delivered) = {
            let status = shared.status.lock().expect("status lock is never poisoned");
            (status.view, status.last_delivered)
        };
        for _ in 0..FLOOD_MESSAGES_PER_SECOND / BURSTS_PER_SECOND {
            counter += 1;
            let message = Message::Commit {
                view: View(view),
                sequence: Sequence(delivered + 1_000_000 + counter % 1_000),
                digest: pactum_types::hash::sha3_256(&counter.to_be_bytes()),
            };
            let signature = crypto.sign(&message.signing_bytes(&chain, shared.replica_id));
            let frame =
                Wire::Consensus(SignedMessage { sender: shared.replica_id, message, signature })
                    .to_bytes();
            for validator in &shared.genesis.validators {
                if validator.public_key != shared.public_key {
                    let _ = shared.transport.send(&validator.public_key, frame.clone());
                }
            }
        }
    }
}

// ---- Execution stage ----

fn run_execution(
    shared: &Arc<Shared>,
    commands: &std::sync::mpsc::Receiver<ExecutionCommand>,
    blocks: &std::sync::mpsc::Receiver<(PublicKey, Vec<Vec<u8>>)>,
    pause_for_tests: Option<&Path>,
) {
    let mut early: BTreeMap<u64, Delivery> = BTreeMap::new();
    let checker = shared.genesis.certificate_checker();
    while let Ok(command) = commands.recv() {
        if let Some(pause) = pause_for_tests
            && pause.exists()
        {
            warn!(file = %pause.display(), "test-only: execution pauses while the file exists");
            while pause.exists() && !shared.stopping.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let result = match command {
            ExecutionCommand::Shutdown => break,
            ExecutionCommand::Deliver(delivery) => {
                early.insert(delivery.sequence.0, delivery);
                execute_ready(shared, &checker, &mut early)
            }
            ExecutionCommand::Transfer { checkpoint } => {
                transfer_state(shared, &checker, blocks, &checkpoint)
                    .and_then(|()| execute_ready(shared, &checker, &mut early))
            }
        };
        if let Err(error) = result {
            error!(%error, "execution stopped; this validator no longer applies blocks");
            return;
        }
    }
}

/// Executes the delivered blocks that follow the tip, in order. A block is stored only if
/// its commit certificate verifies, with the check state transfer and `pactum chain
/// verify` apply: a replica delivers nothing else, so a failure here is a broken
/// invariant and execution stops rather than store a block peers would refuse.
fn execute_ready(
    shared: &Arc<Shared>,
    checker: &CertificateChecker,
    early: &mut BTreeMap<u64, Delivery>,
) -> Result<(), ExecutorError> {
    loop {
        let tip = shared.ledger.read().expect("ledger lock is never poisoned").tip().clone();
        early.retain(|sequence, _| *sequence > tip.height);
        let Some(delivery) = early.remove(&(tip.height + 1)) else { return Ok(()) };
        let keys = &shared.validator_keys;
        let block = match block_from_delivery(&delivery, &tip, &shared.genesis.file.chain_id, keys)
        {
            Ok(block) => block,
            Err(error) => {
                // Every backup validated the batch, so this is a broken invariant.
                error!(%error, "a committed batch does not form a block");
                return Err(ExecutorError::Missing { what: error.to_string() });
            }
        };
        if let Err(error) = checker.check(&block) {
            error!(%error, "a delivered block's commit certificate does not verify");
            return Err(ExecutorError::Missing { what: error.to_string() });
        }
        let executed = execute_block(shared, &block)?;
        report_executed(shared, &block, &executed, Origin::Delivered);
    }
}

/// Executes a committed block; when it applied a governance proposal, the node's trust
/// store (peers' TLS, admission) takes the new configuration's CAs and revocations from
/// the next block on, as the executor does.
fn execute_block(shared: &Shared, block: &Block) -> Result<ExecutedBlock, ExecutorError> {
    let mut ledger = shared.ledger.write().expect("ledger lock is never poisoned");
    let before = ledger.consortium().map(|consortium| consortium.version);
    let executed = ledger.execute_block(block)?;
    if let Some(consortium) = ledger.consortium()
        && Some(consortium.version) != before
    {
        consortium.fill(&shared.trust);
        info!(
            height = executed.height,
            version = consortium.version,
            "a governance proposal changed the consortium configuration"
        );
    }
    Ok(executed)
}

/// Whether a committed block is reported to the replica as executed: yes for a block it
/// delivered; no for one fetched by state transfer, which ends with one
/// `StateTransferred` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Delivered,
    Transferred,
}

/// After a block is committed: checkpoint input, mempool eviction (telling the replica
/// which pending transactions will never be ordered), metrics and events.
fn report_executed(shared: &Arc<Shared>, block: &Block, executed: &ExecutedBlock, origin: Origin) {
    let sequence = block.header.sequence;
    let digest = state_digest(&executed.block_hash, &executed.state_root);
    if origin == Origin::Delivered {
        let _ =
            shared.consensus.blocking_send(LocalEvent::Executed { sequence, state_digest: digest });
    }
    let hashes: Vec<Hash> =
        executed.receipts.iter().map(|receipt| receipt.transaction_hash).collect();
    let stale = {
        let mut mempool = shared.mempool.lock().expect("mempool lock is never poisoned");
        let ledger = shared.reader.snapshot();
        let view = LedgerView { ledger: &ledger, trust: &shared.trust };
        let stale = mempool.committed(
            hashes
                .iter()
                .zip(&block.transactions)
                .map(|(hash, transaction)| (*hash, transaction.unsigned.sender)),
            &view,
        );
        // Settled: the mempool log no longer needs them.
        forget_durable(shared, &mut mempool);
        stale
    };
    if !stale.is_empty() {
        let _ = shared.consensus.blocking_send(LocalEvent::Withdraw(stale));
    }
    {
        let mut tracker = shared.admitted_at.lock().expect("latency lock is never poisoned");
        for hash in &hashes {
            if let Some(started) = tracker.started.remove(hash) {
                shared.metrics.record_commit_latency(started.elapsed().as_secs_f64());
            }
        }
    }
    shared.metrics.height.store(executed.height, Ordering::Relaxed);
    shared.metrics.blocks_committed.fetch_add(1, Ordering::Relaxed);
    shared.metrics.transactions_committed.fetch_add(hashes.len() as u64, Ordering::Relaxed);
    let events = executed
        .receipts
        .iter()
        .flat_map(|receipt| {
            receipt.events.iter().map(|event| (receipt.transaction_hash, event.clone()))
        })
        .collect();
    let _ = shared.events.send(Arc::new(CommittedBlock {
        height: executed.height,
        block_hash: executed.block_hash,
        timestamp_ms: block.header.timestamp_ms,
        transactions: hashes,
        events,
        state_root: executed.state_root,
    }));
    // Commits free room in the replica's queue and make successors ready.
    let _ = shared.admission.try_send(Submission {
        bytes: Vec::new(),
        source: Source::Peer,
        reply: None,
    });
}

/// The checkpoint digest at `height` from what the store holds (the tip, or an earlier
/// block and its outcome).
fn digest_at(shared: &Shared, height: u64) -> Result<Option<Hash>, ExecutorError> {
    let ledger = shared.ledger.read().expect("ledger lock is never poisoned");
    let tip = ledger.tip();
    if tip.height == height {
        return Ok(Some(state_digest(&tip.block_hash, &tip.state_root)));
    }
    let (Some(block), Some(outcome)) =
        (ledger.store().block(height)?, ledger.store().block_outcome(height)?)
    else {
        return Ok(None);
    };
    Ok(Some(state_digest(&block.hash(), &outcome.state_root)))
}

/// Brings the ledger to the checkpoint's sequence number by fetching committed blocks
/// from peers, verifying each one's commit certificate ([`CertificateChecker`]) before
/// executing it, then checks the result against the checkpoint's digest. It always
/// answers the replica, for exactly the sequence number asked: `StateTransferred`, or
/// `StateTransferFailed` if no peer served blocks that check out (the replica asks again).
/// Only a local failure (the store) or a state that contradicts the checkpoint's f + 1
/// signers is an error.
fn transfer_state(
    shared: &Arc<Shared>,
    checker: &CertificateChecker,
    answers: &std::sync::mpsc::Receiver<(PublicKey, Vec<Vec<u8>>)>,
    checkpoint: &CheckpointCertificate,
) -> Result<(), ExecutorError> {
    let sequence = checkpoint.sequence.0;
    let expected = checkpoint.state_digest;
    let requests = fetch_blocks(shared, checker, answers, sequence)?;
    let reached = shared.ledger.read().expect("ledger lock is never poisoned").tip().height;
    if reached < sequence {
        warn!(sequence, reached, "state transfer gave up for now; the replica will ask again");
        shared.metrics.state_transfers_failed.fetch_add(1, Ordering::Relaxed);
        let _ = shared.consensus.blocking_send(LocalEvent::StateTransferFailed { sequence });
        return Ok(());
    }
    let digest = digest_at(shared, sequence)?.ok_or_else(|| ExecutorError::Missing {
        what: format!("block {sequence} after state transfer"),
    })?;
    if digest != expected {
        error!(sequence, "after state transfer this node's state differs from the checkpoint");
        return Err(ExecutorError::Diverged {
            height: sequence,
            field: "checkpoint digest",
            expected,
            found: digest,
        });
    }
    shared.metrics.state_transfers.fetch_add(1, Ordering::Relaxed);
    info!(sequence, "state transfer complete");
    let _ = shared.consensus.blocking_send(LocalEvent::StateTransferred {
        sequence,
        state_digest: digest,
        requests,
    });
    Ok(())
}

/// Fetches and executes blocks up to `sequence` from peers in turn; returns the hashes of
/// the transactions it executed. Stops after a bounded number of fruitless attempts.
fn fetch_blocks(
    shared: &Arc<Shared>,
    checker: &CertificateChecker,
    answers: &std::sync::mpsc::Receiver<(PublicKey, Vec<Vec<u8>>)>,
    sequence: u64,
) -> Result<Vec<Hash>, ExecutorError> {
    let peers: Vec<PublicKey> =
        shared.validator_keys.iter().copied().filter(|key| *key != shared.public_key).collect();
    let mut requests = Vec::new();
    let mut attempt = 0usize;
    let mut failures = 0usize;
    loop {
        let tip = shared.ledger.read().expect("ledger lock is never poisoned").tip().clone();
        if tip.height >= sequence || failures > peers.len() * 8 {
            return Ok(requests);
        }
        let peer = peers[attempt % peers.len()];
        attempt += 1;
        let from = tip.height + 1;
        let to = sequence.min(from + limits::STATE_TRANSFER_BLOCKS_PER_FRAME_MAX as u64 - 1);
        let request = Wire::BlocksRequest { from, to }.to_bytes();
        // Drain answers that came too late for an earlier request, then listen to this peer.
        while answers.try_recv().is_ok() {}
        shared.block_exchange.await_from(Some(peer));
        if shared.transport.send(&peer, request).is_err() {
            shared.block_exchange.await_from(None);
            failures += 1;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let deadline = Stopwatch::start();
        let mut progressed = false;
        while deadline.elapsed() < STATE_TRANSFER_ANSWER_TIMEOUT {
            let remaining = STATE_TRANSFER_ANSWER_TIMEOUT.saturating_sub(deadline.elapsed());
            let Ok((from_peer, raw_blocks)) = answers.recv_timeout(remaining) else { break };
            if from_peer != peer {
                continue;
            }
            shared.block_exchange.await_from(None);
            for raw in raw_blocks {
                let Ok(block) = Block::from_bytes(&raw) else {
                    shared.metrics.record_evidence("bad_transferred_block");
                    break;
                };
                let tip =
                    shared.ledger.read().expect("ledger lock is never poisoned").tip().clone();
                if block.header.height != tip.height + 1 || block.header.height > sequence {
                    break;
                }
                if let Err(error) = checker.check(&block) {
                    warn!(%error, "a peer sent a block that fails its certificate");
                    shared.metrics.record_evidence("bad_transferred_block");
                    break;
                }
                let executed = match execute_block(shared, &block) {
                    Ok(executed) => executed,
                    Err(
                        ExecutorError::Diverged { .. } | ExecutorError::HeightOutOfOrder { .. },
                    ) => {
                        shared.metrics.record_evidence("bad_transferred_block");
                        break;
                    }
                    Err(error) => return Err(error),
                };
                requests.extend(executed.receipts.iter().map(|receipt| receipt.transaction_hash));
                report_executed(shared, &block, &executed, Origin::Transferred);
                progressed = true;
            }
            break;
        }
        shared.block_exchange.await_from(None);
        if !progressed {
            failures += 1;
        }
    }
}

// ---- Inbound dispatch ----

async fn run_inbound(
    shared: Arc<Shared>,
    mut inbound: pactum_net::Inbound,
    blocks: std::sync::mpsc::SyncSender<(PublicKey, Vec<Vec<u8>>)>,
) {
    while let Some(frame) = inbound.recv().await {
        let Some(sender) = shared.genesis.replica_id(&frame.from) else { continue };
        let message = match Wire::from_bytes(&frame.payload) {
            Ok(message) => message,
            Err(error) => {
                warn!(peer = sender, %error, "a frame from a validator does not decode");
                shared.metrics.record_evidence("undecodable_frame");
                continue;
            }
        };
        match message {
            Wire::Consensus(message) => {
                // The transport authenticated the peer; it may only speak for itself.
                if message.sender != sender {
                    shared.metrics.record_evidence("impersonation");
                    continue;
                }
                if shared.consensus_peers.send(message).await.is_err() {
                    return;
                }
            }
            Wire::Transactions(transactions) => {
                for bytes in transactions {
                    let submission = Submission { bytes, source: Source::Peer, reply: None };
                    // Gossip is best effort: a backup that misses a transaction verifies
                    // it when a proposal brings it.
                    if shared.admission.try_send(submission).is_err() {
                        break;
                    }
                }
            }
            Wire::BlocksRequest { from, to } => {
                // One request per peer at a time; another one meanwhile is dropped.
                if !shared.block_exchange.start_serving(frame.from) {
                    shared.metrics.record_dropped("block_request_while_serving");
                    continue;
                }
                let shared = Arc::clone(&shared);
                let peer = frame.from;
                tokio::task::spawn_blocking(move || {
                    serve_blocks(&shared, peer, from, to);
                    shared.block_exchange.served(&peer);
                });
            }
            Wire::Blocks(raw) => {
                // Only the answer this node waits for; anything else is dropped unread.
                if shared.block_exchange.awaited(&frame.from) {
                    let _ = blocks.try_send((frame.from, raw));
                } else {
                    shared.metrics.record_dropped("unsolicited_blocks");
                }
            }
        }
    }
}

fn serve_blocks(shared: &Shared, peer: PublicKey, from: u64, to: u64) {
    let mut raw_blocks = Vec::new();
    let mut bytes = 0usize;
    {
        // Beside the executor, never holding its lock.
        let ledger = shared.reader.snapshot();
        let last = ledger.tip().height.min(to);
        let mut height = from.max(1);
        while height <= last && raw_blocks.len() < limits::STATE_TRANSFER_BLOCKS_PER_FRAME_MAX {
            let Ok(Some(raw)) = ledger.store().raw_block(height) else { break };
            bytes += raw.len() + 4;
            if bytes > limits::NETWORK_FRAME_BYTES_MAX - 64 * 1024 && !raw_blocks.is_empty() {
                break;
            }
            raw_blocks.push(raw);
            height += 1;
        }
    }
    let _ = shared.transport.send(&peer, Wire::Blocks(raw_blocks).to_bytes());
}

// ---- What the API asks ----

impl NodeHandle {
    /// Admits a client transaction (canonical bytes): pending (and durable here), already
    /// committed, or the rule it failed.
    pub async fn submit(&self, bytes: Vec<u8>) -> Result<Accepted, SubmitError> {
        if bytes.is_empty() {
            return Err(SubmitError::Rejected(Rejection::Malformed {
                reason: pactum_types::DecodeError::Invalid {
                    what: "transaction",
                    reason: "empty body",
                },
            }));
        }
        let (reply, answer) = oneshot::channel();
        let submission = Submission { bytes, source: Source::Client, reply: Some(reply) };
        self.shared.admission.try_send(submission).map_err(|error| match error {
            std::sync::mpsc::TrySendError::Full(_) => SubmitError::Busy,
            std::sync::mpsc::TrySendError::Disconnected(_) => SubmitError::ShuttingDown,
        })?;
        answer.await.map_err(|_| SubmitError::ShuttingDown)?
    }

    /// Runs `read` (store reads, a query) on a blocking thread, never on the async threads,
    /// with at most [`limits::API_READS_MAX`] at a time; the others wait their turn. Reads
    /// go through the node's ledger reader, so execution never waits for them.
    pub async fn blocking_read<T, F>(&self, read: F) -> Result<T, tokio::task::JoinError>
    where
        F: FnOnce(&NodeHandle) -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit =
            self.shared.api_reads.acquire().await.expect("the read semaphore is never closed");
        let handle = self.clone();
        tokio::task::spawn_blocking(move || read(&handle)).await
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn chain_id(&self) -> &pactum_types::ChainId {
        &self.shared.genesis.file.chain_id
    }

    pub fn genesis(&self) -> &Genesis {
        &self.shared.genesis
    }

    pub fn transaction(&self, hash: &Hash) -> Result<TransactionStatus, StorageError> {
        let ledger = self.shared.reader.snapshot();
        if let Some(location) = ledger.store().transaction_location(hash)?
            && let Some(receipt) = ledger.store().receipt(hash)?
        {
            return Ok(TransactionStatus::Committed {
                height: location.height,
                position: location.position,
                receipt,
            });
        }
        drop(ledger);
        if self.shared.mempool.lock().expect("mempool lock is never poisoned").contains(hash) {
            return Ok(TransactionStatus::Pending);
        }
        if let Some(expired) =
            self.shared.expired.lock().expect("expired lock is never poisoned").get(hash)
        {
            return Ok(TransactionStatus::Expired {
                nonce: expired.nonce,
                missing_nonce: expired.missing_nonce,
                waited_ms: expired.waited_ms,
            });
        }
        Ok(TransactionStatus::Unknown)
    }

    /// An account's next nonce and, if enrolled, its organisation and role.
    pub fn account(&self, key: &PublicKey) -> Result<AccountStatus, ExecutorError> {
        let ledger = self.shared.reader.snapshot();
        let next_nonce = ledger.next_nonce(key)?;
        let record = ledger
            .store()
            .state_get(StateSpace::Ledger, &pactum_executor::ledger::identity_key(key))?;
        let enrolment = record
            .map(|record| pactum_executor::ledger::Enrolment::from_bytes(&record))
            .transpose()
            .map_err(|error| StorageError::Corrupt {
                what: format!("the enrolment of {key}"),
                detail: error.to_string(),
            })?
            .map(|enrolment| (enrolment.organisation, enrolment.role));
        drop(ledger);
        let pending =
            self.shared.mempool.lock().expect("mempool lock is never poisoned").sender_pending(key);
        Ok(AccountStatus {
            public_key: *key,
            address: pactum_vm::account_address(key),
            next_nonce,
            enrolment,
            pending,
            gap_wait_ms: self.shared.gap_wait_ms,
        })
    }

    pub fn height(&self) -> u64 {
        self.shared.reader.tip().height
    }

    /// The encoded block at `height`, exactly as stored.
    pub fn raw_block(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.shared.reader.store().raw_block(height)
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        self.shared.reader.store().block(height)
    }

    /// The receipts and state root stored beside block `height`.
    pub fn block_outcome(
        &self,
        height: u64,
    ) -> Result<Option<pactum_storage::BlockOutcome>, StorageError> {
        self.shared.reader.store().block_outcome(height)
    }

    pub fn state(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.shared.reader.store().state_get(StateSpace::Contract(*contract), key)
    }

    /// The consortium configuration in force for block `height`, or after the last
    /// committed block when `height` is `None`; with the height it was read at.
    pub fn consortium(
        &self,
        height: Option<u64>,
    ) -> Result<(u64, Arc<pactum_governance::Consortium>), ExecutorError> {
        let snapshot = self.shared.reader.snapshot();
        let tip = snapshot.tip().height;
        let consortium = match height {
            Some(height) => snapshot.consortium_at(height)?,
            None => snapshot.consortium()?,
        };
        let consortium = consortium.ok_or_else(|| ExecutorError::Missing {
            what: "the consortium configuration".into(),
        })?;
        Ok((tip, consortium))
    }

    /// Proposals in id order after `after` (exclusive), with the configuration they are
    /// counted against.
    pub fn proposals(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<(Vec<pactum_governance::Proposal>, Arc<pactum_governance::Consortium>), ExecutorError>
    {
        let snapshot = self.shared.reader.snapshot();
        let proposals = snapshot.proposals(after, limit)?;
        let consortium = snapshot.consortium()?.ok_or_else(|| ExecutorError::Missing {
            what: "the consortium configuration".into(),
        })?;
        Ok((proposals, consortium))
    }

    pub fn proposal(
        &self,
        id: &Hash,
    ) -> Result<
        Option<(pactum_governance::Proposal, Arc<pactum_governance::Consortium>)>,
        ExecutorError,
    > {
        let snapshot = self.shared.reader.snapshot();
        let Some(proposal) = snapshot.proposal(id)? else { return Ok(None) };
        let consortium = snapshot.consortium()?.ok_or_else(|| ExecutorError::Missing {
            what: "the consortium configuration".into(),
        })?;
        Ok(Some((proposal, consortium)))
    }

    /// Reads this node's certificate and key files again (on `SIGHUP`) and presents the
    /// certificate from the next TLS handshake on, if it is for the same key and the
    /// consortium accepts it now as a validator's: a certificate renewed with the same key
    /// needs no governance vote. A refused one leaves the current one in place, and the
    /// reason stays in the status's warnings until a reload succeeds.
    pub fn reload_certificate(&self) -> Result<CertificateInfo, NodeError> {
        let shared = &self.shared;
        let outcome = (|| -> Result<NodeIdentity, NodeError> {
            let identity = NodeIdentity::load(&shared.certificate_path, &shared.private_key_path)?;
            shared.trust.verify_chain(
                identity.certificate.as_ref(),
                &identity.chain_der(),
                unix_seconds(),
                Some(Role::Validator),
            )?;
            shared.transport.replace_identity(&identity)?;
            Ok(identity)
        })();
        let mut reload_error = shared.reload_error.lock().expect("reload lock is never poisoned");
        match outcome {
            Ok(identity) => {
                *shared.own_certificate_der.write().expect("certificate lock is never poisoned") =
                    identity.certificate.as_ref().to_vec();
                *reload_error = None;
                info!(
                    serial = %identity.info.serial_hex(),
                    not_after = identity.info.not_after,
                    "presenting the reloaded certificate from the next handshake on"
                );
                Ok(identity.info)
            }
            Err(error) => {
                warn!(%error, "the certificate reload was refused; keeping the current certificate");
                *reload_error = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// Deployed contracts after `after` (exclusive), with their code hashes.
    pub fn contracts(
        &self,
        after: Option<&Address>,
        limit: usize,
    ) -> Result<Vec<(Address, Hash)>, StorageError> {
        let entries = self.shared.reader.store().state_scan(
            StateSpace::Ledger,
            pactum_executor::ledger::CONTRACT_PREFIX,
            after.map(|address| &address.0[..]),
            limit,
        )?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, value)| {
                let address: [u8; 32] =
                    key.get(pactum_executor::ledger::CONTRACT_PREFIX.len()..)?.try_into().ok()?;
                let code_hash: [u8; 32] = value.as_slice().try_into().ok()?;
                Some((Address(address), Hash(code_hash)))
            })
            .collect())
    }

    /// A deployed contract's code hash and code size.
    pub fn contract(&self, address: &Address) -> Result<Option<(Hash, usize)>, StorageError> {
        let ledger = self.shared.reader.snapshot();
        let Some(code_hash) = ledger.contract_code_hash(address).map_err(|error| match error {
            ExecutorError::Storage(storage) => storage,
            other => {
                StorageError::Corrupt { what: "contract record".into(), detail: other.to_string() }
            }
        })?
        else {
            return Ok(None);
        };
        let size = ledger
            .store()
            .state_get(StateSpace::Ledger, &pactum_executor::ledger::code_key(&code_hash))?
            .map_or(0, |code| code.len());
        Ok(Some((code_hash, size)))
    }

    /// A read-only, gas-limited call against the committed state; commits nothing.
    pub fn query(
        &self,
        contract: Address,
        method: &str,
        input: &[u8],
        gas_limit: u64,
        caller: Address,
    ) -> Result<QueryOutcome, ExecutorError> {
        self.shared.reader.snapshot().query(contract, method, input, gas_limit, caller)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.shared.events.subscribe()
    }

    pub fn status(&self) -> NodeStatus {
        let shared = &self.shared;
        let tip = shared.reader.tip();
        let last_block_time_ms = tip.timestamp_ms;
        let consensus = {
            let status = shared.status.lock().expect("status lock is never poisoned");
            (status.view, status.in_view_change, status.stable_checkpoint)
        };
        let config = shared.genesis.consensus_config();
        let connected = shared.transport.connected_peers();
        let validators = shared
            .genesis
            .validators
            .iter()
            .map(|validator| {
                let is_self = validator.public_key == shared.public_key;
                ValidatorStatus {
                    name: validator.name.clone(),
                    organisation: validator.organisation.clone(),
                    public_key: validator.public_key,
                    address: validator.address.clone(),
                    api_address: validator.api_address.clone(),
                    is_self,
                    connected: is_self || connected.contains(&validator.public_key),
                }
            })
            .collect();
        let primary = usize::from(config.primary(View(consensus.0)));
        let now = unix_seconds();
        // The configuration in force; a read failure watches only this node's own.
        let consortium = shared.reader.snapshot().consortium().ok().flatten();
        let own = shared.own_certificate_der.read().expect("certificate lock is never poisoned");
        let certificates = match &consortium {
            Some(consortium) => crate::expiry::watched(&shared.name, &own, consortium),
            None => crate::expiry::watched(&shared.name, &own, &shared.genesis.consortium()),
        };
        drop(own);
        let mut warnings: Vec<String> =
            certificates.iter().filter_map(|certificate| certificate.warning(now)).collect();
        if let Some(error) =
            shared.reload_error.lock().expect("reload lock is never poisoned").as_ref()
        {
            warnings.push(format!("the last certificate reload was refused: {error}"));
        }
        NodeStatus {
            name: shared.name.clone(),
            organisation: shared.organisation.clone(),
            public_key: shared.public_key,
            replica_id: shared.replica_id,
            chain_id: shared.genesis.file.chain_id.to_string(),
            view: consensus.0,
            primary: shared.genesis.validators[primary].name.clone(),
            in_view_change: consensus.1,
            height: tip.height,
            last_block_hash: tip.block_hash,
            last_block_time_ms,
            state_root: tip.state_root,
            stable_checkpoint: consensus.2,
            validators,
            n: config.replicas(),
            f: config.faults_tolerated(),
            quorum: config.quorum(),
            certificates,
            warnings,
            mempool_transactions: shared
                .mempool
                .lock()
                .expect("mempool lock is never poisoned")
                .len(),
        }
    }

    /// Prometheus text for `GET /metrics`.
    pub fn metrics_text(&self) -> String {
        let status = self.status();
        let peers: Vec<(String, bool)> = status
            .validators
            .iter()
            .filter(|validator| !validator.is_self)
            .map(|validator| (validator.name.clone(), validator.connected))
            .collect();
        let rejections: Vec<(&'static str, u64)> = self
            .shared
            .transport
            .stats()
            .all_rejections()
            .into_iter()
            .map(|(reason, count)| (reason.as_str(), count))
            .collect();
        let mut text = self.shared.metrics.render(status.mempool_transactions, &peers, &rejections);
        crate::metrics::render_certificate_expiry(&mut text, &status.certificates, unix_seconds());
        text
    }

    /// Evidence counted so far, by kind (for tests and status).
    pub fn evidence_counts(&self) -> BTreeMap<&'static str, u64> {
        self.shared.metrics.evidence_counts()
    }
}
