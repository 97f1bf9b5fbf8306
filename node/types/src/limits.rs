//! Every maximum in Pactum lives here, so that the bounds of the system can be read in one
//! place and their relationships checked at compile time.
//!
//! A limit is named for the quantity it bounds, with its unit and the `_max` qualifier last
//! (`transaction_bytes_max`), written in SCREAMING_CASE because it is a constant.
//! Decoders enforce these limits before they allocate, so a hostile length prefix can never
//! make a node reserve more memory than the limit allows.

/// Bytes in a chain id (`pactum-devnet`, `supply-chain-prod`, ...).
pub const CHAIN_ID_BYTES_MAX: usize = 64;

/// Bytes in a contract method name.
pub const METHOD_NAME_BYTES_MAX: usize = 64;

/// Bytes of call input (arguments) carried by one transaction or query.
pub const CALL_INPUT_BYTES_MAX: usize = 64 * 1024;

/// Bytes of WebAssembly code in one deploy transaction.
pub const CONTRACT_CODE_BYTES_MAX: usize = 512 * 1024;

/// Bytes of a DER certificate carried in an enrolment or governance transaction.
pub const CERTIFICATE_BYTES_MAX: usize = 8 * 1024;

/// Bytes in an organisation name.
pub const ORGANISATION_NAME_BYTES_MAX: usize = 64;

/// Bytes in a certificate serial number (RFC 5280 allows at most 20 octets).
pub const CERTIFICATE_SERIAL_BYTES_MAX: usize = 20;

/// Bytes in a network address of a validator (`host:port`).
pub const NETWORK_ADDRESS_BYTES_MAX: usize = 256;

/// Bytes in a governance proposal's title.
pub const PROPOSAL_TITLE_BYTES_MAX: usize = 200;

/// Bytes in a governance proposal's description.
pub const PROPOSAL_DESCRIPTION_BYTES_MAX: usize = 4 * 1024;

/// Changes one governance proposal bundles.
pub const PROPOSAL_CHANGES_MAX: usize = 16;

/// CA certificates (a root and its rotations) one member may have at once.
pub const MEMBER_CA_CERTIFICATES_MAX: usize = 4;

/// Member organisations in the consortium.
pub const MEMBERS_MAX: usize = 64;

/// Proposals open at once, consortium-wide; an expired or decided one frees its place.
pub const OPEN_PROPOSALS_MAX: usize = 64;

/// Proposals one organisation may have open at once, so that no member can take every
/// place of [`OPEN_PROPOSALS_MAX`].
pub const OPEN_PROPOSALS_PER_MEMBER_MAX: usize = 8;

/// How many blocks ahead a proposal's expiry height may be.
pub const PROPOSAL_LIFETIME_BLOCKS_MAX: u64 = 1_000_000;

/// Revoked certificates the consortium configuration holds.
pub const REVOCATIONS_MAX: usize = 65_536;

/// Code hashes approved for deployment under the `by_proposal` deploy policy.
pub const APPROVED_CODES_MAX: usize = 4_096;

/// Consortium versions (one per applied proposal) the ledger indexes by height.
pub const CONSORTIUM_VERSIONS_MAX: usize = 1_000_000;

/// Bytes of one encoded transaction, signature included.
pub const TRANSACTION_BYTES_MAX: usize = CONTRACT_CODE_BYTES_MAX + CALL_INPUT_BYTES_MAX + 4 * 1024;

/// Transactions in one block.
pub const BLOCK_TRANSACTIONS_MAX: usize = 10_000;

/// Bytes of one encoded block body (all its transactions together).
pub const BLOCK_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Signatures in one commit certificate; also the largest validator set.
pub const VALIDATORS_MAX: usize = 256;

/// Bytes of return data a receipt may carry.
pub const RETURN_DATA_BYTES_MAX: usize = 64 * 1024;

/// Bytes of a revert or invalidity reason.
pub const REASON_BYTES_MAX: usize = 1024;

/// Events one transaction may emit.
pub const EVENTS_PER_TRANSACTION_MAX: usize = 256;

/// Bytes of an event topic.
pub const EVENT_TOPIC_BYTES_MAX: usize = 64;

/// Bytes of an event's data.
pub const EVENT_DATA_BYTES_MAX: usize = 4 * 1024;

/// Bytes of one contract storage key.
pub const STATE_KEY_BYTES_MAX: usize = 256;

/// Bytes of one contract storage value.
pub const STATE_VALUE_BYTES_MAX: usize = 64 * 1024;

/// State writes one block may make (all its transactions together): past it, as past
/// `block_state_bytes_max`, the transaction is reverted.
pub const BLOCK_STATE_CHANGES_MAX: usize = 1_000_000;

/// Gas one transaction may ask for.
pub const TRANSACTION_GAS_MAX: u64 = 1_000_000_000;

/// The genesis default of the block gas limit (`consensus.block_gas_max`): the gas limits
/// of one block's transactions add up to at most this. A transaction's own gas limit must
/// fit, so a lower block gas limit also lowers the highest gas limit admitted. At about
/// 125 million gas a second on the reference machine, a full block executes in at most
/// about 8 s; a consortium whose contracts need less lowers it in its genesis.
pub const BLOCK_GAS_DEFAULT: u64 = 1_000_000_000;

/// The range allowed for `consensus.block_gas_max`.
pub const BLOCK_GAS_MIN: u64 = 1_000_000;
pub const BLOCK_GAS_MAX: u64 = 10 * TRANSACTION_GAS_MAX;

/// The genesis default of `consensus.block_state_bytes_max`: the bytes of keys, values and
/// contract code one block may write. A transaction whose writes would go past it is
/// reverted (its gas is charged; nothing it wrote is kept).
pub const BLOCK_STATE_BYTES_DEFAULT: u64 = 16 * 1024 * 1024;

/// The range allowed for `consensus.block_state_bytes_max`.
pub const BLOCK_STATE_BYTES_MIN: u64 = 1024 * 1024;
pub const BLOCK_STATE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// The genesis default of `consensus.block_receipt_bytes_max`: the bytes of events and
/// return data one block's receipts may hold; past it a transaction is reverted.
pub const BLOCK_RECEIPT_BYTES_DEFAULT: u64 = 8 * 1024 * 1024;

/// The range allowed for `consensus.block_receipt_bytes_max`.
pub const BLOCK_RECEIPT_BYTES_MIN: u64 = 64 * 1024;
pub const BLOCK_RECEIPT_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// The genesis default of `consensus.timestamp_skew_max_ms`: a backup prepares a batch
/// only if the primary's timestamp is within this of its own clock.
pub const TIMESTAMP_SKEW_DEFAULT_MS: u64 = 15_000;

/// The range allowed for `consensus.timestamp_skew_max_ms`.
pub const TIMESTAMP_SKEW_MIN_MS: u64 = 1_000;
pub const TIMESTAMP_SKEW_MAX_MS: u64 = 600_000;

/// REST requests one node handles at once; more are answered 503 `overloaded` at once
/// rather than queued, so a flood of callers cannot build an unbounded backlog.
pub const API_CONCURRENT_REQUESTS_MAX: usize = 64;

/// TCP connections the REST API holds open at once; past it a new connection is closed
/// at once (before TLS or HTTP), so idle or slow connections cannot exhaust the node.
pub const API_CONNECTIONS_MAX: usize = 1024;

/// Connections one client address may hold open at once.
pub const API_CONNECTIONS_PER_ADDRESS_MAX: usize = 64;

/// How long a client has to finish the TLS handshake before its connection is closed.
pub const API_HANDSHAKE_TIMEOUT_MS: u64 = 5_000;

/// How long a connection may wait for a request's headers (hyper's header-read timeout,
/// which also bounds how long a kept-alive connection may sit idle) before it is closed.
/// Longer than HTTP clients keep idle pooled connections (ureq: 15 s), so that a client
/// never reuses one the node has just closed.
pub const API_HEADER_READ_TIMEOUT_MS: u64 = 20_000;

/// The default request rate one client address may sustain (a burst of as many is
/// allowed); past it requests are answered 429 `rate_limited`. `node.json` may set
/// `api_requests_per_second_per_address`.
pub const API_REQUESTS_PER_SECOND_PER_ADDRESS_DEFAULT: u32 = 1_000;

/// Event streams (`GET /v1/events`) one node serves at once; more are answered 503
/// `too_many_streams`.
pub const API_EVENT_STREAMS_MAX: usize = 256;

/// Store reads and queries the REST API runs at once, each on a blocking thread (never on
/// the async threads) and on a snapshot beside the executor; more wait their turn.
pub const API_READS_MAX: usize = 16;

/// Gas one read-only query may use: a hundredth of a transaction's, because a query
/// costs the node the same work and nobody pays for it. Also its default.
pub const QUERY_GAS_MAX: u64 = 10_000_000;

/// How far a signed query's signing time may be from the node's clock, either way, in
/// milliseconds: the window in which a captured signed query can be replayed.
pub const QUERY_SIGNATURE_SKEW_MS_MAX: u64 = 60_000;

/// Bytes of linear memory one contract instance may grow to (256 wasm pages of 64 KiB).
pub const CONTRACT_MEMORY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Bytes of linear memory all contract instances of one transaction may hold together.
pub const TRANSACTION_MEMORY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Elements of one contract table (function pointers for indirect calls).
pub const CONTRACT_TABLE_ELEMENTS_MAX: usize = 10_000;

/// Functions one contract module may have, imported and defined. Like the limits below,
/// checked on the module's bytes before anything is compiled: compiling is the costly
/// part of a deploy, and it grows with functions, locals and body sizes.
pub const CONTRACT_FUNCTIONS_MAX: usize = 4_096;

/// Bytes of one function body of a contract module.
pub const CONTRACT_FUNCTION_BODY_BYTES_MAX: usize = 128 * 1024;

/// Locals one function of a contract module may declare (parameters not counted).
pub const CONTRACT_FUNCTION_LOCALS_MAX: u64 = 1_024;

/// Globals one contract module may declare.
pub const CONTRACT_GLOBALS_MAX: usize = 256;

/// Tables one contract module may declare.
pub const CONTRACT_TABLES_MAX: usize = 1;

/// Data segments one contract module may declare.
pub const CONTRACT_DATA_SEGMENTS_MAX: usize = 1_024;

/// Function types one contract module may declare.
pub const CONTRACT_TYPES_MAX: usize = 1_024;

/// Bytes of native stack that WebAssembly code of one transaction may use.
pub const CONTRACT_WASM_STACK_BYTES_MAX: usize = 512 * 1024;

/// Depth of nested contract calls: the transaction's own call is depth 1.
pub const CONTRACT_CALL_DEPTH_MAX: usize = 8;

/// Contract instances one transaction may create (its own call plus nested calls).
pub const CONTRACT_INSTANCES_PER_TRANSACTION_MAX: usize = 64;

/// Compiled contract modules a VM keeps in memory.
pub const CONTRACT_MODULE_CACHE_ENTRIES_MAX: usize = 256;

/// Bytes of a whole encoded block (header, body, certificate) as stored.
pub const BLOCK_BYTES_MAX: usize = BLOCK_BODY_BYTES_MAX + 64 * 1024;

/// Bytes of one frame's payload between validators; a whole block must fit in one.
pub const NETWORK_FRAME_BYTES_MAX: usize = BLOCK_BYTES_MAX + 64 * 1024;

/// Bytes of the largest PBFT message a validator builds or accepts (a NEW-VIEW at the
/// largest window and validator set a genesis allows, or a PRE-PREPARE with the largest
/// batch). A genesis whose worst case would exceed it is refused.
pub const CONSENSUS_MESSAGE_BYTES_MAX: usize = NETWORK_FRAME_BYTES_MAX - 1024;

/// Sequence numbers in the largest PBFT watermark window (L) a genesis may set; also the
/// most prepared certificates one VIEW-CHANGE and the most re-proposals one NEW-VIEW carry.
pub const WATERMARK_WINDOW_MAX: u64 = 1024;

/// Frames queued for one peer before `send` answers "queue full".
pub const PEER_SEND_QUEUE_FRAMES_MAX: usize = 4096;

/// Bytes queued for one peer before `send` answers "queue full" (a frame larger than
/// this still goes alone into an empty queue).
pub const PEER_SEND_QUEUE_BYTES_MAX: usize = 4 * NETWORK_FRAME_BYTES_MAX;

/// How long one write to a peer (a burst of queued frames and its flush) may take before
/// the connection is dropped and dialled again, so a peer that stops reading cannot hold
/// this node's queue.
pub const PEER_WRITE_TIMEOUT_MS: u64 = 20_000;

/// Frames received from one peer and not yet taken by the node; past it only that peer's
/// connection waits. Peers are served in turn.
pub const INBOUND_QUEUE_FRAMES_MAX: usize = 4096;

/// Bytes received from one peer and not yet taken by the node.
pub const INBOUND_QUEUE_BYTES_MAX: usize = 4 * NETWORK_FRAME_BYTES_MAX;

/// Inbound connections still in their TLS handshake (not yet authenticated) a validator
/// holds at once; an authenticated validator holds one connection of its own beside them
/// (a newer one from the same key replaces it), so unauthenticated callers cannot take a
/// validator's place.
pub const PENDING_HANDSHAKES_MAX: usize = 64;

/// Inbound connections in their TLS handshake from one address at once.
pub const PENDING_HANDSHAKES_PER_ADDRESS_MAX: usize = 8;

/// Handshake slots beyond [`PENDING_HANDSHAKES_MAX`] that only connections from a
/// validator's own address may take (a validator reconnecting while anonymous callers
/// hold every general slot).
pub const PENDING_HANDSHAKES_RESERVED_MAX: usize = 16;

/// Transactions one validator's mempool holds: waiting, ready and in flight together.
pub const MEMPOOL_TRANSACTIONS_MAX: usize = 100_000;

/// Bytes of encoded transactions one validator's mempool holds.
pub const MEMPOOL_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Transactions of one sender that one mempool holds at once.
pub const MEMPOOL_SENDER_TRANSACTIONS_MAX: usize = 1024;

/// How far past a sender's next nonce a transaction's nonce may be and still be admitted
/// to wait for its predecessors.
pub const MEMPOOL_NONCES_AHEAD_MAX: u64 = 1024;

/// How long a transaction may wait in a mempool behind a missing nonce of its sender
/// before it is dropped as `expired` (milliseconds): the default, and the most a node's
/// `mempool_gap_wait_ms` may set. Long enough for a restarted validator to recover and
/// gossip the missing transaction again; short enough that a sender learns of the gap
/// within a minute.
pub const MEMPOOL_GAP_WAIT_MS_MAX: u64 = 60_000;

/// The least `mempool_gap_wait_ms` a node may set (milliseconds).
pub const MEMPOOL_GAP_WAIT_MS_MIN: u64 = 1_000;

/// Admission batches waiting for the mempool log writer; admission waits when it is full.
pub const MEMPOOL_LOG_QUEUE_MAX: usize = 256;

/// Expired transactions a node remembers, to answer `expired` rather than `unknown`.
pub const EXPIRED_TRANSACTIONS_REMEMBERED_MAX: usize = 100_000;

/// Transactions one gossip frame carries between validators.
pub const GOSSIP_TRANSACTIONS_PER_FRAME_MAX: usize = 4096;

/// Bytes of transactions one gossip frame carries.
pub const GOSSIP_FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Blocks one state-transfer answer carries (fewer when their bytes would not fit a frame).
pub const STATE_TRANSFER_BLOCKS_PER_FRAME_MAX: usize = 64;

/// Transactions a node's admission stage takes in one batch (one batch verification).
pub const ADMISSION_BATCH_TRANSACTIONS_MAX: usize = 1024;

/// Submissions waiting for the admission stage; past it a client hears "busy".
pub const ADMISSION_QUEUE_MAX: usize = 16_384;

/// Peers' consensus messages handed to the consensus stage and not yet stepped through.
/// Small on purpose: behind it, the transport's per-peer queues are taken in turn, so a
/// flooding validator's messages wait in its own queue, and an honest vote waits behind
/// at most this many.
pub const CONSENSUS_PEER_QUEUE_MAX: usize = 256;

/// Committed blocks consensus delivers ahead of execution: the replica holds further
/// decisions back until execution catches up, so it never waits on the executor.
pub const EXECUTION_BACKLOG_BLOCKS_MAX: u64 = 256;

/// Commands queued for the execution stage: the delivery backlog and room for state
/// transfer requests, which the replica issues at most one at a time per tick.
pub const EXECUTION_QUEUE_MAX: usize = EXECUTION_BACKLOG_BLOCKS_MAX as usize + 64;

/// Reports (executed blocks, transferred state), client requests and timers queued for
/// the consensus stage, apart from peers' messages.
pub const CONSENSUS_LOCAL_QUEUE_MAX: usize = 4096;

/// Consensus events the consensus stage steps through before it writes their records in
/// one synced write (and only then sends what they produced).
pub const CONSENSUS_STEPS_PER_WRITE_MAX: usize = 256;

/// Transaction hashes a node remembers as verified (admitted or validated in a proposal).
pub const VERIFIED_TRANSACTIONS_REMEMBERED_MAX: usize = 1 << 20;

/// Committed-block notifications buffered for each event-stream subscriber; a subscriber
/// further behind is told it lagged.
pub const EVENT_STREAM_BUFFER_BLOCKS_MAX: usize = 1024;

/// Bytes of a REST request body. A contract deployment is the largest request.
pub const API_REQUEST_BODY_BYTES_MAX: usize = 2 * TRANSACTION_BYTES_MAX + 64 * 1024;

/// Blocks one `GET /v1/chain` page returns.
pub const API_CHAIN_PAGE_BLOCKS_MAX: u64 = 100;

/// Stored block bytes one `GET /v1/chain` page reads; a page ends early (with `next`)
/// rather than go past it, so a page of the largest blocks cannot make the node decode
/// 100 of them at once.
pub const API_CHAIN_PAGE_READ_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Proposals in one page of `GET /v1/proposals`.
pub const API_PROPOSALS_PAGE_MAX: usize = 100;

/// Contracts one `GET /v1/contracts` page returns.
pub const API_CONTRACTS_PAGE_MAX: usize = 1000;

// Relationships between the limits, checked when the crate compiles.
const _: () = assert!(GOSSIP_FRAME_BYTES_MAX + 64 * 1024 < NETWORK_FRAME_BYTES_MAX);
const _: () = assert!(GOSSIP_FRAME_BYTES_MAX >= TRANSACTION_BYTES_MAX);
const _: () = assert!(EXECUTION_QUEUE_MAX > 0 && ADMISSION_BATCH_TRANSACTIONS_MAX > 0);
const _: () = assert!(TRANSACTION_BYTES_MAX > CONTRACT_CODE_BYTES_MAX + CALL_INPUT_BYTES_MAX);
const _: () = assert!(TRANSACTION_BYTES_MAX <= BLOCK_BODY_BYTES_MAX);
const _: () = assert!(TRANSACTION_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(BLOCK_BYTES_MAX <= u32::MAX as usize);
// A certificate holds at most one signature per validator: 32-byte key + 64-byte signature.
const _: () = assert!(VALIDATORS_MAX * (32 + 64) + 1024 < BLOCK_BYTES_MAX - BLOCK_BODY_BYTES_MAX);
const _: () = assert!(EVENTS_PER_TRANSACTION_MAX * EVENT_DATA_BYTES_MAX <= 16 * 1024 * 1024);
const _: () = assert!(BLOCK_TRANSACTIONS_MAX <= u32::MAX as usize);
const _: () = assert!(NETWORK_FRAME_BYTES_MAX > BLOCK_BYTES_MAX);
const _: () = assert!(NETWORK_FRAME_BYTES_MAX < u32::MAX as usize);
const _: () = assert!(PENDING_HANDSHAKES_PER_ADDRESS_MAX <= PENDING_HANDSHAKES_MAX);
// A PRE-PREPARE carries a whole block body with a small header around it.
const _: () = assert!(CONSENSUS_MESSAGE_BYTES_MAX > BLOCK_BODY_BYTES_MAX + 1024);
const _: () = assert!(CONSENSUS_MESSAGE_BYTES_MAX < NETWORK_FRAME_BYTES_MAX);
// A full block of transactions fits in the mempool, and so does the largest transaction.
const _: () = assert!(MEMPOOL_TRANSACTIONS_MAX >= BLOCK_TRANSACTIONS_MAX);
const _: () = assert!(MEMPOOL_BYTES_MAX >= BLOCK_BODY_BYTES_MAX);
const _: () = assert!(MEMPOOL_BYTES_MAX >= TRANSACTION_BYTES_MAX);
const _: () = assert!(MEMPOOL_SENDER_TRANSACTIONS_MAX <= MEMPOOL_TRANSACTIONS_MAX);
// A window of zero would refuse even a sender's next nonce.
const _: () = assert!(MEMPOOL_NONCES_AHEAD_MAX >= 1);
const _: () = assert!(CONTRACT_MEMORY_BYTES_MAX.is_multiple_of(65536));
const _: () = assert!(TRANSACTION_MEMORY_BYTES_MAX >= CONTRACT_MEMORY_BYTES_MAX);
const _: () = assert!(CONTRACT_INSTANCES_PER_TRANSACTION_MAX >= CONTRACT_CALL_DEPTH_MAX);
const _: () = assert!(CONTRACT_CODE_BYTES_MAX <= CONTRACT_MEMORY_BYTES_MAX);
const _: () = assert!(CONTRACT_MODULE_CACHE_ENTRIES_MAX > 0);

const _: () = assert!(OPEN_PROPOSALS_PER_MEMBER_MAX <= OPEN_PROPOSALS_MAX);
const _: () = assert!(
    PROPOSAL_CHANGES_MAX * (MEMBER_CA_CERTIFICATES_MAX * CERTIFICATE_BYTES_MAX + 1024)
        + PROPOSAL_TITLE_BYTES_MAX
        + PROPOSAL_DESCRIPTION_BYTES_MAX
        < TRANSACTION_BYTES_MAX
);
