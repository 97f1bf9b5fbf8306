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
use pactum_governance::Consortium;
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
    /// `None` while this node is an observer (not a validator of the current epoch).
    pub replica_id: Option<ReplicaId>,
    pub chain_id: String,
    /// The current epoch, its first height after genesis's 0 (ADR 0021), and where it
    /// ends once a validator-set change scheduled that.
    pub epoch: u64,
    pub epoch_start: u64,
    pub epoch_last: Option<u64>,
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

/// One validator-set epoch: the configuration in force during it, and its last height
/// (once scheduled, for the current one).
pub type EpochRecord = (Arc<Consortium>, Option<u64>);

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
    genesis: Genesis,
    /// The consortium configuration after the last executed block, and what the hot
    /// paths look up in it, derived once per change.
    membership: RwLock<Arc<Membership>>,
    /// Whether this node runs no replica now (a validator a planned epoch adds, catching
    /// up; or one an epoch removed): it follows the ledger from its peers' blocks.
    observer: std::sync::atomic::AtomicBool,
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
    consensus_peers: mpsc::Sender<(u64, SignedMessage)>,
    /// The execution stage's queue, for catch-up requests (dropped when it is full), and
    /// when one was last asked for.
    catch_up: std::sync::mpsc::SyncSender<ExecutionCommand>,
    catch_up_asked: Mutex<Option<Stopwatch>>,
    transport: Transport,
    /// When each transaction was admitted here (bounded), for commit latency.
    admitted_at: Mutex<LatencyTracker>,
    /// Set when the node shuts down; the admission stage stops at its next tick.
    stopping: std::sync::atomic::AtomicBool,
    /// One block request served per peer; answers taken only from the peer asked.
    block_exchange: block_exchange::BlockExchange,
}

/// A consortium configuration with what the node looks up in it on every frame and block:
/// the validators it talks to (the current epoch's and a planned one's) by key and by
/// replica id, and the hash of the set in force, which block headers name.
struct Membership {
    consortium: Arc<Consortium>,
    replicas: HashMap<PublicKey, ReplicaId>,
    keys: BTreeMap<ReplicaId, PublicKey>,
    validators_hash: Hash,
}

impl Membership {
    fn new(consortium: Arc<Consortium>) -> Self {
        let connected = consortium.connected_validators();
        Self {
            replicas: connected
                .iter()
                .map(|validator| (validator.public_key, validator.index))
                .collect(),
            keys: connected
                .iter()
                .map(|validator| (validator.index, validator.public_key))
                .collect(),
            validators_hash: consortium.validator_set_hash(),
            consortium,
        }
    }
}

impl Shared {
    fn membership(&self) -> Arc<Membership> {
        Arc::clone(&self.membership.read().expect("membership lock is never poisoned"))
    }

    /// The configuration in force for the next block.
    fn consortium(&self) -> Arc<Consortium> {
        Arc::clone(&self.membership().consortium)
    }

    /// The replica id of `key` in the current or the planned epoch.
    fn replica_of(&self, key: &PublicKey) -> Option<ReplicaId> {
        self.membership
            .read()
            .expect("membership lock is never poisoned")
            .replicas
            .get(key)
            .copied()
    }

    /// The key of replica `replica` in the current or the planned epoch.
    fn key_of(&self, replica: ReplicaId) -> Option<PublicKey> {
        self.membership
            .read()
            .expect("membership lock is never poisoned")
            .keys
            .get(&replica)
            .copied()
    }

    /// This node's replica id, if it is (or will be) a validator.
    fn own_replica(&self) -> Option<ReplicaId> {
        self.replica_of(&self.public_key)
    }

    /// The keys of every other validator this node talks to (current and planned).
    fn peer_keys(&self) -> Vec<PublicKey> {
        let membership = self.membership();
        membership.replicas.keys().copied().filter(|key| *key != self.public_key).collect()
    }

    /// The executor left a new configuration: peers' TLS and admission trust its CAs and
    /// revocations, and the transport dials exactly its validators (current and planned).
    fn adopt(&self, consortium: Arc<Consortium>) {
        consortium.fill(&self.trust);
        self.transport.set_validators(transport_peers(&consortium));
        // A revocation (or a CA taken away) ends the live connections resting on it.
        let closed = self.transport.recheck_connections(unix_seconds());
        if !closed.is_empty() {
            warn!(
                count = closed.len(),
                "closed connections whose certificates are no longer trusted"
            );
        }
        // A transaction must fit in a block of the epoch in force (ADR 0022).
        self.mempool
            .lock()
            .expect("mempool lock is never poisoned")
            .set_gas_limit_max(gas_limit_max(&consortium));
        *self.membership.write().expect("membership lock is never poisoned") =
            Arc::new(Membership::new(consortium));
    }
}

/// The largest gas limit a transaction may set: what one block of the current epoch may
/// use, and never more than any transaction may.
fn gas_limit_max(consortium: &Consortium) -> u64 {
    consortium.parameters.block_gas_max.min(limits::TRANSACTION_GAS_MAX)
}

/// The validators the transport connects to: the current epoch's and the planned one's.
fn transport_peers(consortium: &Consortium) -> Vec<Peer> {
    consortium
        .connected_validators()
        .into_iter()
        .map(|validator| Peer {
            public_key: validator.public_key,
            address: validator.address.clone(),
        })
        .collect()
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
    /// A timer of the replica of `epoch` fired.
    Timeout {
        epoch: u64,
        kind: TimeoutKind,
    },
    /// The consortium configuration changed (an epoch was scheduled or began).
    ConsortiumChanged,
    Executed {
        sequence: u64,
        state_digest: Hash,
    },
    StateTransferred {
        sequence: u64,
        state_digest: Hash,
        requests: Vec<Hash>,
    },
    StateTransferFailed {
        sequence: u64,
    },
    Shutdown,
}

enum ExecutionCommand {
    Deliver(Delivery),
    Transfer {
        checkpoint: CheckpointCertificate,
    },
    /// Fetch and execute every block peers have past this node's tip (from `peer` first):
    /// how an observer follows the ledger and a replica left behind in an earlier epoch
    /// catches up (ADR 0021).
    CatchUp {
        peer: Option<PublicKey>,
    },
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
    /// A validator the planned epoch adds may announce itself ready with its own key.
    fn joiner_fault(&self, key: &PublicKey) -> Option<EnvelopeFault> {
        let waiting = self.ledger.consortium().ok().flatten().is_some_and(|consortium| {
            consortium.planned.as_ref().is_some_and(|planned| planned.waiting.contains(key))
        });
        (!waiting).then_some(EnvelopeFault::UnknownSigner { sender: *key })
    }

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
        let trust = Arc::new(genesis.trust_store());
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
        let executor = Executor::open(ledger_store, executor_options)?;
        // Peers, admission and the executor trust the configuration governance left.
        let consortium = match executor.consortium() {
            Some(consortium) => Arc::clone(consortium),
            None => Arc::new(genesis.consortium()),
        };
        consortium.fill(&trust);
        // A validator of the current epoch, or one a planned epoch adds, or a node that
        // follows the ledger until a proposal makes it a validator (ADR 0021). A node whose
        // own certificate the consortium would refuse says so at once.
        let validator = consortium
            .connected_validators()
            .into_iter()
            .find(|validator| validator.public_key == public_key)
            .cloned();
        if !skip_own_certificate_check_for_tests {
            let verdict = trust.verify_chain(
                identity.certificate.as_ref(),
                &identity.chain_der(),
                unix_seconds(),
                Some(Role::Validator),
            );
            match (&validator, verdict) {
                (_, Ok(_)) => {}
                (Some(_), Err(error)) => return Err(error.into()),
                (None, Err(error)) => warn!(
                    %error,
                    "this node's certificate is not trusted by the consortium as this node \
                     knows it yet; it follows the ledger as an observer"
                ),
            }
        }
        let (name, organisation) = match &validator {
            Some(validator) => (validator.name.clone(), validator.organisation.clone()),
            None => (identity.info.name.clone(), identity.info.organisation.clone()),
        };
        let last_executed = executor.tip().height;
        let (log, records) = ConsensusLog::open(&consensus_store, consortium.epoch)?;
        info!(
            %name, epoch = consortium.epoch, replica = ?validator.as_ref().map(|v| v.index),
            height = last_executed, records = records.len(),
            "opened the ledger and the consensus log"
        );
        let verified = Arc::new(VerifiedSet::new());

        let listen: SocketAddr =
            config.listen.parse().map_err(|error: std::net::AddrParseError| {
                NodeError::Address { address: config.listen.clone(), reason: error.to_string() }
            })?;
        let peers = transport_peers(&consortium);
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
        mempool_config.gas_limit_max = gas_limit_max(&consortium);
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
        let reader = executor.reader();
        let (events, _) = broadcast::channel(limits::EVENT_STREAM_BUFFER_BLOCKS_MAX);
        let (execution_sender, execution_receiver) =
            std::sync::mpsc::sync_channel(limits::EXECUTION_QUEUE_MAX);
        let (blocks_sender, blocks_receiver) = std::sync::mpsc::sync_channel(64);

        let shared = Arc::new(Shared {
            name,
            organisation,
            own_certificate_der: RwLock::new(own_certificate_der),
            certificate_path: config.certificate.clone(),
            private_key_path: config.private_key.clone(),
            reload_error: Mutex::new(None),
            public_key,
            genesis,
            membership: RwLock::new(Arc::new(Membership::new(consortium))),
            observer: std::sync::atomic::AtomicBool::new(false),
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
            catch_up: execution_sender.clone(),
            catch_up_asked: Mutex::new(None),
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
        let consensus_verified = Arc::clone(&shared.verified);
        threads.push(spawn_thread("consensus", move || {
            let inputs = ConsensusInputs { local: consensus_receiver, peers: peers_receiver };
            let mut carrier = EffectCarrier {
                shared: &consensus_shared,
                log,
                store: &consensus_store,
                execution: &consensus_execution,
                runtime: &consensus_runtime,
                epoch: 0,
                peers: BTreeMap::new(),
                equivocation_seed: (byzantine_for_tests == Some(ByzantineMode::Equivocate))
                    .then_some(seed),
                equivocation: None,
            };
            let keys = ReplicaKeys {
                seed,
                verified: consensus_verified,
                reader,
                byzantine: byzantine_for_tests,
            };
            run_consensus(&consensus_shared, &keys, &records, &mut carrier, inputs);
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
        tokio::spawn(follow_as_observer(Arc::clone(&shared), execution_sender.clone(), seed));
        if byzantine_for_tests == Some(ByzantineMode::FloodUseless) {
            let switch = config.data_dir.join(FLOOD_SWITCH_FILE);
            tokio::spawn(flood_useless(Arc::clone(&shared), seed, switch));
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
    peers: mpsc::Receiver<(u64, SignedMessage)>,
}

impl ConsensusInputs {
    /// Waits for the next event, the node's own before any peer's.
    fn next(&mut self, runtime: &tokio::runtime::Handle) -> Option<ConsensusInput> {
        runtime.block_on(async {
            tokio::select! {
                biased;
                Some(event) = self.local.recv() => Some(ConsensusInput::Local(event)),
                Some((epoch, message)) = self.peers.recv() => {
                    Some(ConsensusInput::Peer { epoch, message })
                }
                else => None,
            }
        })
    }

    /// An event that is already waiting, if any.
    fn ready(&mut self) -> Option<ConsensusInput> {
        if let Ok(event) = self.local.try_recv() {
            return Some(ConsensusInput::Local(event));
        }
        self.peers.try_recv().ok().map(|(epoch, message)| ConsensusInput::Peer { epoch, message })
    }
}

enum ConsensusInput {
    Local(LocalEvent),
    Peer { epoch: u64, message: SignedMessage },
}

/// What the consensus stage builds each epoch's replica from.
struct ReplicaKeys {
    seed: [u8; 32],
    verified: Arc<VerifiedSet>,
    reader: LedgerReader,
    byzantine: Option<ByzantineMode>,
}

/// The replica of the epoch `consortium` is in, for this node (if it is a member), from
/// the records of that epoch's log, above `last_executed`.
fn epoch_replica(
    shared: &Shared,
    keys: &ReplicaKeys,
    consortium: &Consortium,
    records: &[pactum_consensus::Record],
    last_executed: u64,
) -> Option<Replica<NodeCrypto>> {
    let own = consortium.validator(&shared.public_key)?.index;
    if last_executed < consortium.epoch_start {
        return None;
    }
    let start_digest = match digest_at(shared, consortium.epoch_start) {
        Ok(Some(digest)) => digest,
        Ok(None) if consortium.epoch_start == 0 => Hash::ZERO,
        Ok(None) | Err(_) => {
            error!(start = consortium.epoch_start, "the epoch's first block is not stored");
            return None;
        }
    };
    let config = shared.genesis.epoch_config(consortium, start_digest);
    let replica_keys = crate::proposal::replica_keys(&consortium.validators);
    let crypto = NodeCrypto::new(
        Ed25519Crypto::new(Keypair::from_seed(&keys.seed), replica_keys),
        shared.genesis.file.chain_id.clone(),
        Arc::clone(&keys.verified),
        keys.byzantine == Some(ByzantineMode::BadSignatures),
    )
    .with_organisations(keys.reader.clone());
    match Replica::new(own, config, crypto, records, Sequence(last_executed)) {
        Ok(replica) => Some(replica),
        Err(error) => {
            error!(%error, epoch = consortium.epoch, "cannot start this epoch's replica");
            None
        }
    }
}

/// The consensus stage's replica, if this node is a member of the epoch its ledger is in.
struct Stage<'k> {
    keys: &'k ReplicaKeys,
    replica: Option<Replica<NodeCrypto>>,
    view_entered: View,
}

impl Stage<'_> {
    /// Brings the replica in line with the ledger (ADR 0021): tells it where its epoch
    /// ends once the executor scheduled that; once the ledger is past it, replaces it with
    /// the next epoch's replica on a fresh log (or none, if this node is not a member);
    /// and starts one when an observer's ledger reaches an epoch it belongs to.
    fn settle(
        &mut self,
        shared: &Arc<Shared>,
        carrier: &mut EffectCarrier<'_>,
    ) -> Result<(), Halt> {
        let consortium = shared.consortium();
        if let Some(replica) = self.replica.as_mut()
            && replica.config().epoch == consortium.epoch
        {
            if let Some(last) = consortium.epoch_last()
                && replica.epoch_last().is_none()
            {
                replica.observe_time(unix_millis());
                let effects = replica.step(Input::EpochEnds { last: Sequence(last) });
                carrier.carry(effects)?;
            }
            return Ok(());
        }
        let tip = shared.reader.tip().height;
        if self.replica.is_some() {
            info!(epoch = consortium.epoch, height = tip, "the epoch ended; its replica stops");
            self.replica = None;
            // What it held but did not order is the next epoch's to order.
            shared.mempool.lock().expect("mempool lock is never poisoned").release_in_flight();
        }
        let Some(replica) = epoch_replica(shared, self.keys, &consortium, &[], tip) else {
            become_observer(shared, &consortium, tip);
            return Ok(());
        };
        if let Err(error) = carrier.log.start_epoch(carrier.store, consortium.epoch) {
            error!(%error, "cannot start the consensus log of the new epoch; this validator stops voting");
            return Err(Halt);
        }
        info!(epoch = consortium.epoch, replica = replica.id(), height = tip, "joined the epoch");
        shared.metrics.epoch.store(consortium.epoch, Ordering::Relaxed);
        self.start(shared, replica, carrier)
    }

    /// Starts `replica`: its first effects, the last executed block reported again, and
    /// the epoch's end if it is known already.
    fn start(
        &mut self,
        shared: &Arc<Shared>,
        mut replica: Replica<NodeCrypto>,
        carrier: &mut EffectCarrier<'_>,
    ) -> Result<(), Halt> {
        shared.observer.store(false, Ordering::Relaxed);
        carrier.enter_epoch(shared, &replica);
        replica.observe_time(unix_millis());
        let mut effects = replica.start();
        // A crash after the executor committed an epoch's end leaves nothing to vote on:
        // tell the replica where its epoch ends before anything else.
        if let Some(last) = shared.consortium().epoch_last() {
            effects.extend(replica.step(Input::EpochEnds { last: Sequence(last) }));
        }
        // The last executed block again: a crash after the executor committed a
        // checkpoint's block but before the replica persisted its CHECKPOINT left that
        // vote unsigned.
        let tip = shared.reader.tip();
        if tip.height > 0 {
            effects.extend(replica.step(Input::Executed {
                sequence: Sequence(tip.height),
                state_digest: state_digest(&tip.block_hash, &tip.state_root),
            }));
        }
        self.view_entered = replica.view();
        self.replica = Some(replica);
        carrier.carry(effects)
    }
}

/// This node runs no replica of the epoch its ledger is in: it follows the ledger from its
/// peers' blocks ([`follow_as_observer`]).
fn become_observer(shared: &Shared, consortium: &Consortium, height: u64) {
    if !shared.observer.swap(true, Ordering::Relaxed) {
        info!(
            epoch = consortium.epoch,
            height, "not a validator of this epoch: following the ledger as an observer"
        );
    }
}

/// Runs the replica: takes what is waiting (up to [`limits::CONSENSUS_STEPS_PER_WRITE_MAX`]
/// events), steps the replica through it, and has the carrier write every record of those
/// steps in one synced write before it sends anything (persist before send, one write per
/// group of steps). It never waits on another stage: deliveries go to execution through a
/// queue the replica's backlog bound keeps from filling. Between groups it follows the
/// ledger's epochs ([`Stage::settle`]).
fn run_consensus(
    shared: &Arc<Shared>,
    keys: &ReplicaKeys,
    records: &[pactum_consensus::Record],
    carrier: &mut EffectCarrier<'_>,
    mut inputs: ConsensusInputs,
) {
    let mut stage = Stage { keys, replica: None, view_entered: View::ZERO };
    let consortium = shared.consortium();
    let tip = shared.reader.tip().height;
    shared.metrics.epoch.store(consortium.epoch, Ordering::Relaxed);
    match epoch_replica(shared, keys, &consortium, records, tip) {
        Some(replica) => {
            if stage.start(shared, replica, carrier).is_err() {
                return;
            }
        }
        None => become_observer(shared, &consortium, tip),
    }
    if let Some(replica) = &stage.replica {
        update_status(shared, replica);
    }
    let mut answered: HashMap<ReplicaId, Stopwatch> = HashMap::new();
    while let Some(first) = inputs.next(carrier.runtime) {
        let mut events = vec![first];
        while events.len() < limits::CONSENSUS_STEPS_PER_WRITE_MAX {
            match inputs.ready() {
                Some(event) => events.push(event),
                None => break,
            }
        }
        let mut effects = Vec::new();
        let mut stopping = false;
        let epoch = stage.replica.as_ref().map(|replica| replica.config().epoch);
        if let Some(replica) = stage.replica.as_mut() {
            replica.observe_time(unix_millis());
        }
        for event in events {
            if let ConsensusInput::Peer { epoch: theirs, message } = &event
                && Some(*theirs) != epoch
            {
                let ours = epoch.unwrap_or_else(|| shared.consortium().epoch);
                other_epoch(shared, ours, *theirs, message.sender, &mut answered);
                continue;
            }
            for input in consensus_inputs(event, epoch, &mut stopping) {
                if let Some(replica) = stage.replica.as_mut() {
                    effects.extend(replica.step(input));
                }
            }
        }
        if carrier.carry(effects).is_err() || stopping {
            return;
        }
        if stage.settle(shared, carrier).is_err() {
            return;
        }
        if let Some(replica) = &stage.replica {
            if replica.view() != stage.view_entered {
                stage.view_entered = replica.view();
                shared.metrics.view_changes.fetch_add(1, Ordering::Relaxed);
            }
            update_status(shared, replica);
        }
    }
}

/// A peer's consensus message of another epoch than this node's replica (or, with none,
/// than its ledger). From a later epoch: this node is behind, and catches up from blocks
/// (`request_catch_up` asks at most once a second). From an earlier one: the peer is behind, and is told this
/// node's epoch and height (at most once a second each), so that it catches up.
fn other_epoch(
    shared: &Shared,
    ours: u64,
    theirs: u64,
    sender: ReplicaId,
    answered: &mut HashMap<ReplicaId, Stopwatch>,
) {
    const HINT_INTERVAL: Duration = Duration::from_secs(1);
    let Some(peer) = shared.key_of(sender) else { return };
    if theirs > ours {
        request_catch_up(shared, Some(peer));
        return;
    }
    if answered.get(&sender).is_none_or(|last| last.elapsed() >= HINT_INTERVAL) {
        answered.insert(sender, Stopwatch::start());
        let height = shared.reader.tip().height;
        let _ = shared.transport.send(&peer, Wire::Epoch { epoch: ours, height }.to_bytes());
    }
}

/// Asks the execution stage to fetch the blocks peers have past this node's tip, at most
/// once a second whoever asks (a peer's claim that it is ahead cannot be checked before
/// its blocks are, so a lying peer gets no more than that).
fn request_catch_up(shared: &Shared, peer: Option<PublicKey>) {
    const CATCH_UP_INTERVAL: Duration = Duration::from_secs(1);
    {
        let mut last = shared.catch_up_asked.lock().expect("catch-up lock is never poisoned");
        if last.as_ref().is_some_and(|asked| asked.elapsed() < CATCH_UP_INTERVAL) {
            shared.metrics.record_dropped("catch_up_too_soon");
            return;
        }
        *last = Some(Stopwatch::start());
    }
    if shared.catch_up.try_send(ExecutionCommand::CatchUp { peer }).is_err() {
        shared.metrics.record_dropped("catch_up_while_busy");
    }
}

fn consensus_inputs(event: ConsensusInput, epoch: Option<u64>, stopping: &mut bool) -> Vec<Input> {
    match event {
        ConsensusInput::Peer { message, .. } => vec![Input::Message(message)],
        ConsensusInput::Local(event) => match event {
            LocalEvent::Shutdown => {
                *stopping = true;
                Vec::new()
            }
            LocalEvent::Requests(requests) => {
                requests.into_iter().map(|request| Input::Request { request }).collect()
            }
            LocalEvent::Withdraw(requests) => vec![Input::Withdraw { requests }],
            // A timer of an earlier epoch's replica is not this one's.
            LocalEvent::Timeout { epoch: armed, kind } => {
                if Some(armed) == epoch {
                    vec![Input::Timeout(kind)]
                } else {
                    Vec::new()
                }
            }
            LocalEvent::ConsortiumChanged => Vec::new(),
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
    /// The epoch of the replica whose effects these are, and its other members' keys.
    epoch: u64,
    peers: BTreeMap<ReplicaId, PublicKey>,
    /// Test-only ([`ByzantineMode::Equivocate`]): this node's key, to sign the different
    /// batches it sends each backup as primary.
    equivocation_seed: Option<[u8; 32]>,
    equivocation: Option<Ed25519Crypto>,
}

/// The consensus stage cannot go on (the log could not be written): the node stops
/// taking part rather than risk sending a vote it did not persist.
struct Halt;

impl EffectCarrier<'_> {
    /// From now on the effects are `replica`'s: its epoch, its members.
    fn enter_epoch(&mut self, shared: &Shared, replica: &Replica<NodeCrypto>) {
        let config = replica.config();
        let consortium = shared.consortium();
        self.epoch = config.epoch;
        self.peers = consortium
            .validators
            .iter()
            .filter(|validator| {
                config.is_member(validator.index) && validator.index != replica.id()
            })
            .map(|validator| (validator.index, validator.public_key))
            .collect();
        if let Some(seed) = &self.equivocation_seed {
            self.equivocation = Some(Ed25519Crypto::new(
                Keypair::from_seed(seed),
                crate::proposal::replica_keys(&consortium.validators),
            ));
        }
    }

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
                let own_primary_pre_prepare = matches!(message.message, Message::PrePrepare { .. });
                let epoch = self.epoch;
                let frame = Wire::Consensus { epoch, message: message.clone() }.to_bytes();
                for (index, key) in &self.peers {
                    let frame = match &self.equivocation {
                        Some(crypto) if own_primary_pre_prepare && index % 2 == 1 => {
                            let chain =
                                pactum_consensus::epoch_identity(&shared.genesis.hash, epoch);
                            equivocate(crypto, &chain, &message).map_or_else(
                                || frame.clone(),
                                |forged| Wire::Consensus { epoch, message: forged }.to_bytes(),
                            )
                        }
                        _ => frame.clone(),
                    };
                    self.send(key, frame);
                }
            }
            Effect::Send { to, message } => {
                if let Some(key) = self.peers.get(&to) {
                    let frame = Wire::Consensus { epoch: self.epoch, message }.to_bytes();
                    self.send(key, frame);
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
                let epoch = self.epoch;
                self.runtime.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    let _ = consensus.send(LocalEvent::Timeout { epoch, kind }).await;
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
                if let Some(primary) = self.peers.get(&to) {
                    for frame in gossip_frames(requests) {
                        self.send(primary, frame);
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
async fn flood_useless(shared: Arc<Shared>, seed: [u8; 32], switch: PathBuf) {
    const BURSTS_PER_SECOND: u64 = 100;
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
        let consortium = shared.consortium();
        let Some(own) = consortium.validator(&shared.public_key).map(|validator| validator.index)
        else {
            continue;
        };
        let epoch = consortium.epoch;
        let chain = pactum_consensus::epoch_identity(&shared.genesis.hash, epoch);
        let crypto = Ed25519Crypto::new(
            Keypair::from_seed(&seed),
            crate::proposal::replica_keys(&consortium.validators),
        );
        for _ in 0..FLOOD_MESSAGES_PER_SECOND / BURSTS_PER_SECOND {
            counter += 1;
            let message = Message::Commit {
                view: View(view),
                sequence: Sequence(delivered + 1_000_000 + counter % 1_000),
                digest: pactum_types::hash::sha3_256(&counter.to_be_bytes()),
            };
            let signature = crypto.sign(&message.signing_bytes(&chain, own));
            let message = SignedMessage { sender: own, message, signature };
            let frame = Wire::Consensus { epoch, message }.to_bytes();
            for validator in &consortium.validators {
                if validator.public_key != shared.public_key {
                    let _ = shared.transport.send(&validator.public_key, frame.clone());
                }
            }
        }
    }
}

/// An observer (a node that runs no replica now) follows the ledger: every second it has
/// execution catch up from its peers' blocks. A validator that a planned epoch adds
/// announces itself ready once a catch-up brought nothing new (it holds what its peers
/// hold), and again every few seconds until the ledger has the announcement (ADR 0021).
async fn follow_as_observer(
    shared: Arc<Shared>,
    execution: std::sync::mpsc::SyncSender<ExecutionCommand>,
    seed: [u8; 32],
) {
    const ANNOUNCE_AGAIN: Duration = Duration::from_secs(5);
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut previous = u64::MAX;
    let mut announced: Option<Stopwatch> = None;
    while !shared.stopping.load(Ordering::Relaxed) {
        ticks.tick().await;
        if !shared.observer.load(Ordering::Relaxed) {
            continue;
        }
        let height = shared.reader.tip().height;
        let caught_up = height == previous;
        previous = height;
        if execution.try_send(ExecutionCommand::CatchUp { peer: None }).is_err() {
            continue;
        }
        let waiting = shared
            .consortium()
            .planned
            .as_ref()
            .is_some_and(|planned| planned.waiting.contains(&shared.public_key));
        if waiting
            && caught_up
            && announced.as_ref().is_none_or(|last| last.elapsed() >= ANNOUNCE_AGAIN)
        {
            announced = Some(Stopwatch::start());
            announce_ready(&shared, &seed, height);
        }
    }
}

/// Sends every validator this node's readiness announcement, signed with its validator
/// key (which the executor accepts from a validator the planned epoch adds).
fn announce_ready(shared: &Shared, seed: &[u8; 32], height: u64) {
    let keypair = Keypair::from_seed(seed);
    let nonce = shared.reader.snapshot().next_nonce(&shared.public_key).unwrap_or(0);
    let unsigned = pactum_types::UnsignedTransaction {
        chain_id: shared.genesis.file.chain_id.clone(),
        sender: shared.public_key,
        nonce,
        gas_limit: gas_limit_max(&shared.consortium()),
        payload: pactum_types::Payload::Governance {
            action: pactum_types::GovernanceAction::Ready,
        },
    };
    let transaction = unsigned.sign(&keypair).to_bytes();
    info!(height, nonce, "caught up: announcing this validator ready to join the next epoch");
    for frame in gossip_frames(vec![transaction]) {
        for peer in shared.peer_keys() {
            let _ = shared.transport.send(&peer, frame.clone());
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
    let mut checker = EpochChecker::default();
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
                execute_ready(shared, &mut checker, &mut early)
            }
            ExecutionCommand::Transfer { checkpoint } => {
                transfer_state(shared, &mut checker, blocks, &checkpoint)
                    .and_then(|()| execute_ready(shared, &mut checker, &mut early))
            }
            ExecutionCommand::CatchUp { peer } => catch_up(shared, &mut checker, blocks, peer)
                .and_then(|()| execute_ready(shared, &mut checker, &mut early)),
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
    checker: &mut EpochChecker,
    early: &mut BTreeMap<u64, Delivery>,
) -> Result<(), ExecutorError> {
    loop {
        let tip = shared.ledger.read().expect("ledger lock is never poisoned").tip().clone();
        early.retain(|sequence, _| *sequence > tip.height);
        let Some(delivery) = early.remove(&(tip.height + 1)) else { return Ok(()) };
        let validators_hash = shared.membership().validators_hash;
        let checker = checker.current(shared);
        let block = match block_from_delivery(
            &delivery,
            &tip,
            &shared.genesis.file.chain_id,
            checker,
            validators_hash,
        ) {
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

/// The certificate check of the epoch in force for the next block: rebuilt when the
/// ledger enters another epoch (ADR 0021).
#[derive(Default)]
struct EpochChecker {
    checker: Option<(u64, CertificateChecker)>,
}

impl EpochChecker {
    fn current(&mut self, shared: &Shared) -> &CertificateChecker {
        let consortium = shared.consortium();
        if self.checker.as_ref().is_some_and(|(epoch, _)| *epoch != consortium.epoch) {
            self.checker = None;
        }
        &self
            .checker
            .get_or_insert_with(|| {
                (consortium.epoch, CertificateChecker::for_epoch(&shared.genesis, &consortium))
            })
            .1
    }
}

/// Executes a committed block; when it changed the consortium configuration (a proposal
/// applied, a validator ready, an epoch began), the node takes it from the next block
/// on, as the executor does: its trust store (peers' TLS, admission), the transport's
/// peers, and the consensus stage's epoch.
fn execute_block(shared: &Shared, block: &Block) -> Result<ExecutedBlock, ExecutorError> {
    let mut ledger = shared.ledger.write().expect("ledger lock is never poisoned");
    let before = ledger.consortium().map(|consortium| consortium.version);
    let executed = ledger.execute_block(block)?;
    let after = ledger.consortium().cloned();
    drop(ledger);
    if let Some(consortium) = after
        && Some(consortium.version) != before
    {
        info!(
            height = executed.height,
            version = consortium.version,
            epoch = consortium.epoch,
            epoch_last = ?consortium.epoch_last(),
            "the consortium configuration changed"
        );
        shared.adopt(consortium);
        let _ = shared.consensus.blocking_send(LocalEvent::ConsortiumChanged);
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
    checker: &mut EpochChecker,
    answers: &std::sync::mpsc::Receiver<(PublicKey, Vec<Vec<u8>>)>,
    checkpoint: &CheckpointCertificate,
) -> Result<(), ExecutorError> {
    let sequence = checkpoint.sequence.0;
    let expected = checkpoint.state_digest;
    let requests = fetch_blocks(shared, checker, answers, sequence, None)?;
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

/// Brings an observer (or a replica left behind in an earlier epoch) up to what its
/// peers hold: fetches and executes blocks past its tip until a round of peers has
/// nothing more, `peer` (one that showed it is ahead) asked first.
fn catch_up(
    shared: &Arc<Shared>,
    checker: &mut EpochChecker,
    answers: &std::sync::mpsc::Receiver<(PublicKey, Vec<Vec<u8>>)>,
    peer: Option<PublicKey>,
) -> Result<(), ExecutorError> {
    let before = shared.reader.tip().height;
    let requests = fetch_blocks(shared, checker, answers, u64::MAX, peer)?;
    let tip = shared.reader.tip();
    if tip.height > before {
        info!(from = before, to = tip.height, "caught up from peers' blocks");
        // A replica of the epoch the ledger is still in learns what was executed without
        // it, as after a state transfer (a replica of an earlier epoch is replaced).
        let _ = shared.consensus.blocking_send(LocalEvent::StateTransferred {
            sequence: tip.height,
            state_digest: state_digest(&tip.block_hash, &tip.state_root),
            requests,
        });
    }
    Ok(())
}

/// Fetches and executes blocks up to `sequence` from peers in turn (`first` first), each
/// checked against the epoch in force at its height; returns the hashes of the
/// transactions it executed. Stops after a bounded number of fruitless attempts (at once
/// when catching up without a target, once every peer answered nothing new).
fn fetch_blocks(
    shared: &Arc<Shared>,
    checker: &mut EpochChecker,
    answers: &std::sync::mpsc::Receiver<(PublicKey, Vec<Vec<u8>>)>,
    sequence: u64,
    first: Option<PublicKey>,
) -> Result<Vec<Hash>, ExecutorError> {
    let mut peers: Vec<PublicKey> = shared.peer_keys();
    if let Some(first) = first
        && let Some(position) = peers.iter().position(|key| *key == first)
    {
        peers.rotate_left(position);
    }
    if peers.is_empty() {
        return Ok(Vec::new());
    }
    // Without a target, a round of peers with nothing new ends it.
    let patience = if sequence == u64::MAX { peers.len() } else { peers.len() * 8 };
    let mut requests = Vec::new();
    let mut attempt = 0usize;
    let mut failures = 0usize;
    loop {
        let tip = shared.ledger.read().expect("ledger lock is never poisoned").tip().clone();
        if tip.height >= sequence || failures >= patience {
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
                if let Err(error) = checker.current(shared).check(&block) {
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
        if progressed {
            failures = 0;
        } else {
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
        let Some(sender) = shared.replica_of(&frame.from) else { continue };
        let message = match Wire::from_bytes(&frame.payload) {
            Ok(message) => message,
            Err(error) => {
                warn!(peer = sender, %error, "a frame from a validator does not decode");
                shared.metrics.record_evidence("undecodable_frame");
                continue;
            }
        };
        match message {
            Wire::Consensus { epoch, message } => {
                // The transport authenticated the peer; it may only speak for itself.
                if message.sender != sender {
                    shared.metrics.record_evidence("impersonation");
                    continue;
                }
                if shared.consensus_peers.send((epoch, message)).await.is_err() {
                    return;
                }
            }
            Wire::Epoch { epoch, height } => {
                // A peer in a later epoch, or far ahead: catch up from its blocks.
                let consortium = shared.consortium();
                if epoch > consortium.epoch && height > shared.reader.tip().height {
                    request_catch_up(&shared, Some(frame.from));
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
    pub fn consortium(&self, height: Option<u64>) -> Result<(u64, Arc<Consortium>), ExecutorError> {
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

    /// The validator-set epochs, newest first: the current one, then each before it (at
    /// most `limit`, from epoch `before` down when given), each with the configuration
    /// in force during it and the height it ended at (ADR 0021).
    pub fn epochs(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(u64, Vec<EpochRecord>), ExecutorError> {
        let snapshot = self.shared.reader.snapshot();
        let tip = snapshot.tip().height;
        let mut current = snapshot.consortium()?.ok_or_else(|| ExecutorError::Missing {
            what: "the consortium configuration".into(),
        })?;
        let mut ended = current.epoch_last();
        let mut epochs = Vec::new();
        while epochs.len() < limit {
            let epoch = current.epoch;
            let start = current.epoch_start;
            if before.is_none_or(|before| epoch < before) {
                epochs.push((Arc::clone(&current), ended));
            }
            if epoch == 0 {
                break;
            }
            // The configuration in force for the epoch's first block's predecessor: the
            // previous epoch, which ended at `start`.
            current = snapshot.consortium_at(start)?.ok_or_else(|| ExecutorError::Missing {
                what: format!("the configuration in force at height {start}"),
            })?;
            ended = Some(start);
        }
        Ok((tip, epochs))
    }

    /// Proposals in id order after `after` (exclusive), with the configuration they are
    /// counted against.
    pub fn proposals(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<(Vec<pactum_governance::Proposal>, Arc<Consortium>), ExecutorError> {
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
    ) -> Result<Option<(pactum_governance::Proposal, Arc<Consortium>)>, ExecutorError> {
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

    /// A deployed contract's code hash, or `None` when nothing is deployed at `address`.
    pub fn contract_code_hash(&self, address: &Address) -> Result<Option<Hash>, StorageError> {
        let ledger = self.shared.reader.snapshot();
        ledger.contract_code_hash(address).map_err(|error| match error {
            ExecutorError::Storage(storage) => storage,
            other => {
                StorageError::Corrupt { what: "contract record".into(), detail: other.to_string() }
            }
        })
    }

    /// A deployed contract's code hash and code.
    pub fn contract(&self, address: &Address) -> Result<Option<(Hash, Vec<u8>)>, StorageError> {
        let Some(code_hash) = self.contract_code_hash(address)? else {
            return Ok(None);
        };
        let ledger = self.shared.reader.snapshot();
        let code = ledger
            .store()
            .state_get(StateSpace::Ledger, &pactum_executor::ledger::code_key(&code_hash))?
            .unwrap_or_default();
        Ok(Some((code_hash, code)))
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
        let epoch = shared.consortium();
        let config = shared.genesis.epoch_config(&epoch, Hash::ZERO);
        let connected = shared.transport.connected_peers();
        let validators = epoch
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
        let primary = config.primary(View(consensus.0));
        let primary = epoch
            .validators
            .iter()
            .find(|validator| validator.index == primary)
            .map_or_else(String::new, |validator| validator.name.clone());
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
            replica_id: epoch.validator(&shared.public_key).map(|validator| validator.index),
            chain_id: shared.genesis.file.chain_id.to_string(),
            epoch: epoch.epoch,
            epoch_start: epoch.epoch_start,
            epoch_last: epoch.epoch_last(),
            view: consensus.0,
            primary,
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
