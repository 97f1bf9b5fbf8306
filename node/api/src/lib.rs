//! The validator's REST API, versioned under `/v1`, JSON in and out, described by the
//! OpenAPI document `docs/api/openapi.json` (served at `/v1/openapi.json`).
//!
//! Every error is `{"code", "message"}` with a 4xx or 5xx status; `code` is stable and
//! machine-readable (for a refused transaction, the admission rule that failed). Bodies
//! are bounded by [`limits::API_REQUEST_BODY_BYTES_MAX`] and every request by
//! [`REQUEST_TIMEOUT`]; no input makes the node panic.
//!
//! The API only talks to the node through [`NodeHandle`]: it never touches the replica,
//! the mempool or RocksDB itself.

#![forbid(unsafe_code)]

mod governance;

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use futures_util::stream::Stream;
use pactum_mempool::{Rejection, RejectionCode};
use pactum_runtime::NodeHandle;
use pactum_runtime::clock::unix_millis;
use pactum_runtime::node::{Accepted, CommittedBlock, SubmitError, TransactionStatus};
use pactum_types::crypto::Signature;
use pactum_types::query::QuerySigning;
use pactum_types::{Address, Block, Decode, Encode, Hash, PublicKey, Transaction, limits};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::{Semaphore, broadcast};
use tower::ServiceBuilder;

pub use pactum_http::{ServeOptions, TlsSetupError, tls_config};

/// The OpenAPI 3 document, kept in `docs/api/openapi.json`.
pub const OPENAPI_DOCUMENT: &str = include_str!("../../../docs/api/openapi.json");

/// How long one request may take before it is answered 503 `timeout` (an event stream
/// only needs to start within it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The API's routes over `node`.
pub fn router(node: NodeHandle) -> Router {
    Router::new()
        .route("/v1/transactions", post(submit_transaction))
        .route("/v1/transactions/{hash}", get(transaction))
        .route("/v1/accounts/{public_key}", get(account))
        .route("/v1/blocks/latest", get(latest_block))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/chain", get(chain))
        .route("/v1/state/{contract}/{key}", get(state))
        .route("/v1/contracts", get(contracts))
        .route("/v1/contracts/{address}", get(contract))
        .route("/v1/consortium", get(governance::consortium))
        .route("/v1/epochs", get(governance::epochs))
        .route("/v1/proposals", get(governance::proposals))
        .route("/v1/proposals/{id}", get(governance::proposal))
        .route("/v1/proposals/dry-run", post(governance::dry_run))
        .route("/v1/query", post(query))
        .route("/v1/events", get(events))
        .route("/v1/status", get(status))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits::API_REQUEST_BODY_BYTES_MAX))
        .layer(middleware::from_fn(timeout))
        .layer(Extension(EventStreams(Arc::new(Semaphore::new(limits::API_EVENT_STREAMS_MAX)))))
        // Outermost: past the concurrency limit a request is shed with 503 at once.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(limits::API_CONCURRENT_REQUESTS_MAX),
        )
        .with_state(node)
}

/// The permits for open event streams: each stream holds one while it lives.
#[derive(Clone)]
struct EventStreams(Arc<Semaphore>);

/// The answer to a request shed by the concurrency limit.
async fn overloaded(error: BoxError) -> ApiError {
    if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "the node is answering its maximum of {} requests; retry shortly",
                limits::API_CONCURRENT_REQUESTS_MAX
            ),
        )
    } else {
        ApiError::internal(error)
    }
}

/// Serves the API on `listener` until `shutdown` completes, within the connection bounds
/// and deadlines of [`server`], over TLS if `options` say so.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: NodeHandle,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    pactum_http::serve_router(listener, router(node), options, shutdown).await
}

// ---- Errors ----

pub use pactum_http::ApiError;

/// The HTTP status of each admission rule.
pub fn rejection_status(code: RejectionCode) -> StatusCode {
    match code {
        RejectionCode::Malformed
        | RejectionCode::GasLimitTooHigh
        | RejectionCode::WrongChain
        | RejectionCode::BadSignature => StatusCode::BAD_REQUEST,
        RejectionCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RejectionCode::UnknownSigner
        | RejectionCode::RevokedSigner
        | RejectionCode::ExpiredSigner
        | RejectionCode::FormerMember => StatusCode::FORBIDDEN,
        RejectionCode::StaleNonce | RejectionCode::NonceTaken => StatusCode::CONFLICT,
        RejectionCode::NonceTooFarAhead => StatusCode::UNPROCESSABLE_ENTITY,
        RejectionCode::SenderQueueFull
        | RejectionCode::OrganisationShareFull
        | RejectionCode::MempoolFull => StatusCode::TOO_MANY_REQUESTS,
    }
}

fn rejected(rejection: &Rejection) -> ApiError {
    let code = rejection.code();
    ApiError::new(rejection_status(code), code.as_str(), rejection.to_string())
}

fn body_error(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over {} bytes", limits::API_REQUEST_BODY_BYTES_MAX),
        )
    } else {
        ApiError::bad_request("bad_body", rejection.body_text())
    }
}

async fn timeout(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", REQUEST_TIMEOUT.as_secs()),
        )
        .into_response(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /v1/openapi.json",
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no_route", "no such endpoint; see /v1/openapi.json")
}

fn parse_fixed<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| {
        ApiError::bad_request("bad_parameter", format!("{what} must be {} hex characters", N * 2))
    })?;
    Ok(bytes)
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    pactum_http::parse_json(body)
}

// ---- Transactions ----

#[derive(Debug, Serialize)]
struct Submitted {
    hash: Hash,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u32>,
}

/// `POST /v1/transactions`: a signed transaction as JSON (`application/json`, the flat
/// form of `docs/api/json.md`) or its canonical bytes (`application/octet-stream`).
async fn submit_transaction(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let body = body.map_err(|rejection| body_error(&rejection))?;
    let binary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/octet-stream"));
    let bytes = if binary {
        body.to_vec()
    } else {
        let transaction: Transaction = json_body(&body)?;
        transaction.to_bytes()
    };
    match node.submit(bytes).await {
        Ok(Accepted::Pending(hash)) => Ok((
            StatusCode::ACCEPTED,
            Json(Submitted { hash, status: "pending", height: None, position: None }),
        )),
        // The same transaction again, already committed: its place, never an error.
        Ok(Accepted::Committed { hash, height, position }) => Ok((
            StatusCode::OK,
            Json(Submitted {
                hash,
                status: "committed",
                height: Some(height),
                position: Some(position),
            }),
        )),
        Err(SubmitError::Rejected(rejection)) => Err(rejected(&rejection)),
        Err(SubmitError::Busy) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            SubmitError::Busy.to_string(),
        )),
        Err(SubmitError::ShuttingDown) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            SubmitError::ShuttingDown.to_string(),
        )),
        Err(error @ SubmitError::NotDurable(_)) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_durable", error.to_string()))
        }
    }
}

async fn transaction(
    State(node): State<NodeHandle>,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let hash = Hash(parse_fixed(&hash, "the transaction hash")?);
    match read(&node, move |node| node.transaction(&hash)).await? {
        TransactionStatus::Committed { height, position, receipt } => Ok(Json(json!({
            "hash": hash,
            "status": "committed",
            "height": height,
            "position": position,
            "receipt": receipt,
        }))),
        TransactionStatus::Pending => Ok(Json(json!({ "hash": hash, "status": "pending" }))),
        TransactionStatus::Expired { nonce, missing_nonce, waited_ms } => Ok(Json(json!({
            "hash": hash,
            "status": "expired",
            "reason": format!(
                "nonce {nonce} waited {} s behind missing nonce {missing_nonce}; this node dropped it (send nonce {missing_nonce}, then this transaction again)",
                waited_ms / 1000
            ),
        }))),
        TransactionStatus::Unknown => Err(ApiError::not_found(
            "unknown_transaction",
            format!("transaction {hash} is neither pending here nor committed"),
        )),
    }
}

/// `GET /v1/accounts/{public_key}`: the next nonce to sign with, and the enrolment.
async fn account(
    State(node): State<NodeHandle>,
    Path(public_key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = PublicKey(parse_fixed(&public_key, "the public key")?);
    let account = read(&node, move |node| node.account(&key)).await?;
    let (organisation, role) = match &account.enrolment {
        Some((organisation, role)) => (Some(organisation.clone()), Some(role.clone())),
        None => (None, None),
    };
    let now_ms = unix_millis();
    let (pending, gap) = match &account.pending {
        Some(pending) => {
            let gap = pending.missing_nonce.map(|missing| {
                let expires_in_ms = pending
                    .oldest_waiting_admitted_ms
                    .map(|admitted| (admitted + account.gap_wait_ms).saturating_sub(now_ms));
                json!({
                    "missing_nonce": missing,
                    "waiting_nonces": pending.waiting,
                    "expires_in_ms": expires_in_ms,
                })
            });
            (pending.pending.clone(), gap)
        }
        None => (Vec::new(), None),
    };
    Ok(Json(json!({
        "public_key": account.public_key,
        "address": account.address,
        "next_nonce": account.next_nonce,
        "pending_nonces": pending,
        "nonce_gap": gap,
        "enrolled": account.enrolment.is_some(),
        "organisation": organisation,
        "role": role,
    })))
}

// ---- Blocks and the chain ----

/// Runs a read of the node's store (or a query) off the async threads, behind the node's
/// bound on concurrent reads; the read's own failure is answered 500.
async fn read<T, E, F>(node: &NodeHandle, read: F) -> Result<T, ApiError>
where
    F: FnOnce(&NodeHandle) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    node.blocking_read(read).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
}

fn block_json(block: &Block) -> Value {
    let transaction_hashes: Vec<Hash> = block.transactions.iter().map(Transaction::hash).collect();
    json!({ "hash": block.hash(), "block": block, "transaction_hashes": transaction_hashes })
}

async fn latest_block(State(node): State<NodeHandle>) -> Result<Json<Value>, ApiError> {
    let height = node.height();
    if height == 0 {
        return Err(ApiError::not_found("no_blocks", "no block has been committed yet"));
    }
    let block = read(&node, move |node| node.block(height)).await?;
    let block = block.ok_or_else(|| ApiError::internal(format!("block {height} is missing")))?;
    Ok(Json(block_json(&block)))
}

async fn block(
    State(node): State<NodeHandle>,
    Path(height): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let height: u64 = height.parse().map_err(|_| {
        ApiError::bad_request(
            "bad_parameter",
            format!("the height must be an integer from 0 to {}", u64::MAX),
        )
    })?;
    match read(&node, move |node| node.block(height)).await? {
        Some(block) => Ok(Json(block_json(&block))),
        None => Err(ApiError::not_found("unknown_block", format!("there is no block {height}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainQuery {
    from: Option<u64>,
    limit: Option<u64>,
}

async fn chain(
    State(node): State<NodeHandle>,
    query: Result<Query<ChainQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|error| query_error(&error))?;
    let from = query.from.unwrap_or(1).max(1);
    let limit = page_limit(query.limit, 20, limits::API_CHAIN_PAGE_BLOCKS_MAX)?;
    let (height, blocks, next) = read(&node, move |node| chain_page(node, from, limit)).await?;
    Ok(Json(json!({ "height": height, "blocks": blocks, "next": next })))
}

/// Summaries of blocks `from`.. (at most `limit`, and no more stored bytes than
/// [`limits::API_CHAIN_PAGE_READ_BYTES_MAX`] unless the first block alone is larger):
/// the tip's height, the summaries and the next height to ask for, if any.
fn chain_page(
    node: &NodeHandle,
    from: u64,
    limit: u64,
) -> Result<(u64, Vec<Value>, Option<u64>), String> {
    page_of_blocks(node.height(), from, limit, limits::API_CHAIN_PAGE_READ_BYTES_MAX, |height| {
        node.raw_block(height).map_err(|error| error.to_string())
    })
}

/// Blocks `from..` up to `limit` of them and up to the tip at `height`, read with
/// `raw_block`, stopping before the one that would take the bytes read past `bytes_max`
/// (but always at least one): the tip, the page, and where the next page starts.
fn page_of_blocks(
    height: u64,
    from: u64,
    limit: u64,
    bytes_max: usize,
    raw_block: impl Fn(u64) -> Result<Option<Vec<u8>>, String>,
) -> Result<(u64, Vec<Value>, Option<u64>), String> {
    let last = height.min(from.saturating_add(limit - 1));
    let mut blocks = Vec::new();
    let mut bytes = 0usize;
    let mut current = from;
    while current <= last {
        let raw = raw_block(current)?
            .ok_or_else(|| format!("block {current} is missing below the tip"))?;
        bytes = bytes.saturating_add(raw.len());
        if !blocks.is_empty() && bytes > bytes_max {
            break;
        }
        let block = Block::from_bytes(&raw).map_err(|error| format!("block {current}: {error}"))?;
        let header = &block.header;
        blocks.push(json!({
            "height": header.height,
            "hash": block.hash(),
            "previous_hash": header.previous_hash,
            "timestamp_ms": header.timestamp_ms,
            "proposer": header.proposer,
            "view": header.view,
            "transactions": block.transactions.len(),
            "certificate_signatures": block.certificate.signatures().len(),
        }));
        current += 1;
    }
    let next = (current <= height).then_some(current);
    Ok((height, blocks, next))
}

// ---- State and contracts ----

async fn state(
    State(node): State<NodeHandle>,
    Path((contract, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let contract = Address(parse_fixed(&contract, "the contract address")?);
    let key = hex::decode(&key)
        .map_err(|_| ApiError::bad_request("bad_parameter", "the key must be hex"))?;
    if key.len() > limits::STATE_KEY_BYTES_MAX {
        return Err(ApiError::bad_request(
            "bad_parameter",
            format!("a state key is at most {} bytes", limits::STATE_KEY_BYTES_MAX),
        ));
    }
    if read(&node, move |node| node.contract_code_hash(&contract)).await?.is_none() {
        return Err(ApiError::not_found(
            "unknown_contract",
            format!("no contract is deployed at {contract}"),
        ));
    }
    let wanted = key.clone();
    match read(&node, move |node| node.state(&contract, &wanted)).await? {
        Some(value) => Ok(Json(json!({
            "contract": contract,
            "key": hex::encode(&key),
            "value": hex::encode(value),
            "height": node.height(),
        }))),
        None => Err(ApiError::not_found(
            "unknown_key",
            format!("contract {contract} holds nothing under key {}", hex::encode(&key)),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractsQuery {
    after: Option<String>,
    limit: Option<u64>,
}

async fn contracts(
    State(node): State<NodeHandle>,
    query: Result<Query<ContractsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|error| query_error(&error))?;
    let after = match &query.after {
        Some(text) => Some(Address(parse_fixed(text, "after")?)),
        None => None,
    };
    let limit = page_limit(query.limit, 100, limits::API_CONTRACTS_PAGE_MAX as u64)? as usize;
    let found = read(&node, move |node| node.contracts(after.as_ref(), limit)).await?;
    let next = (found.len() == limit).then(|| found.last().map(|(address, _)| *address)).flatten();
    let contracts: Vec<Value> = found
        .iter()
        .map(|(address, code_hash)| json!({ "address": address, "code_hash": code_hash }))
        .collect();
    Ok(Json(json!({ "contracts": contracts, "next_after": next })))
}

async fn contract(
    State(node): State<NodeHandle>,
    Path(address): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let address = Address(parse_fixed(&address, "the contract address")?);
    match read(&node, move |node| node.contract(&address)).await? {
        Some((code_hash, code)) => {
            // The interface the contract declares (`pactum_types::interface`): clients
            // build argument forms and decode return data from it. A module without one
            // has `null`; one that does not parse has `null` and the reason.
            let (interface, interface_error) = match pactum_types::interface::of_module(&code) {
                Ok(interface) => (json!(interface), Value::Null),
                Err(error) => (Value::Null, json!(error)),
            };
            Ok(Json(json!({
                "address": address,
                "code_hash": code_hash,
                "code_bytes": code.len(),
                "interface": interface,
                "interface_error": interface_error,
            })))
        }
        None => Err(ApiError::not_found(
            "unknown_contract",
            format!("no contract is deployed at {address}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    contract: Address,
    method: String,
    /// Hex.
    #[serde(default)]
    input: String,
    /// At most `limits::QUERY_GAS_MAX`, which is also the default. `null` is refused,
    /// as the document says.
    #[serde(default, deserialize_with = "present_u64")]
    gas_limit: Option<u64>,
    /// The first version took the caller from here unchecked; it is refused with a clear
    /// answer now, so that a client relying on it learns to sign instead.
    caller: Option<Value>,
    /// The caller's proof of its key: the query then runs as that key's account.
    signer: Option<QuerySigner>,
}

/// An optional field that, when present, must be a number: absent is `None`, `null` an
/// error.
fn present_u64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    u64::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuerySigner {
    public_key: PublicKey,
    /// Milliseconds since the Unix epoch, by the signer's clock.
    signed_at_ms: u64,
    /// Hex of the 64-byte Ed25519 signature over `pactum_types::query::QuerySigning`.
    signature: String,
}

/// The account a query runs as: the zero address, or the signer's once its signature,
/// its freshness and its enrolment check out.
async fn query_caller(
    node: &NodeHandle,
    request: &QueryRequest,
    input: &[u8],
    gas_limit: u64,
) -> Result<Address, ApiError> {
    let Some(signer) = &request.signer else { return Ok(Address([0; 32])) };
    let signature = hex::decode(&signer.signature)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .map(Signature)
        .ok_or_else(|| {
            ApiError::bad_request("bad_parameter", "signer.signature must be 64 bytes of hex")
        })?;
    let signing = QuerySigning {
        chain_id: node.chain_id(),
        contract: &request.contract,
        method: &request.method,
        input,
        gas_limit,
        signer: &signer.public_key,
        signed_at_ms: signer.signed_at_ms,
    };
    if signing.verify(&signature).is_err() {
        return Err(ApiError::bad_request(
            "bad_signature",
            format!(
                "the query's signature does not verify under {}: it must sign this chain, the \
                 contract, method, input and gas_limit as sent, the key and signed_at_ms",
                signer.public_key
            ),
        ));
    }
    let now_ms = unix_millis();
    if !signing.fresh_at(now_ms) {
        return Err(ApiError::bad_request(
            "stale_signature",
            format!(
                "the query was signed at {} ms but this node's clock reads {now_ms} ms; a signed \
                 query is accepted within {} ms of it: sign it again",
                signer.signed_at_ms,
                limits::QUERY_SIGNATURE_SKEW_MS_MAX
            ),
        ));
    }
    let key = signer.public_key;
    let account = read(node, move |node| node.account(&key)).await?;
    if account.enrolment.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_signer",
            format!("the query's signer {key} is not an enrolled identity on this ledger"),
        ));
    }
    Ok(account.address)
}

/// A page size: `default` when absent, 0 counts as 1, over `max` refused.
fn page_limit(limit: Option<u64>, default: u64, max: u64) -> Result<u64, ApiError> {
    match limit {
        None => Ok(default),
        Some(limit) if limit > max => Err(ApiError::bad_request(
            "bad_parameter",
            format!("limit {limit} is over the page maximum of {max}"),
        )),
        Some(limit) => Ok(limit.max(1)),
    }
}

/// A query string that does not parse, told in the API's words rather than the
/// framework's: which parameter, and what it must be.
fn query_error(rejection: &QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let detail = text.split_once("query string: ").map_or(text.as_str(), |(_, detail)| detail);
    let detail = detail
        .replace("number too large to fit in target type", &format!("over {}", u64::MAX))
        .replace("invalid digit found in string", "not a non-negative integer");
    ApiError::bad_request(
        "bad_parameter",
        format!("a query parameter is not valid ({detail}); see /v1/openapi.json"),
    )
}

/// `POST /v1/query`: a read-only call against the committed state. Reverts, running out
/// of gas and unknown contracts are answered 200 with their status, like a receipt.
async fn query(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|rejection| body_error(&rejection))?;
    let request: QueryRequest = json_body(&body)?;
    if request.caller.is_some() {
        return Err(ApiError::bad_request(
            "unsigned_caller",
            "a query cannot name its caller: sign it (`signer` with public_key, signed_at_ms \
             and signature; `pactum contract query --key`) to run as your account, or leave \
             the caller out to run as the zero address",
        ));
    }
    let input = hex::decode(&request.input)
        .map_err(|_| ApiError::bad_request("bad_parameter", "input must be hex"))?;
    let gas_limit = request.gas_limit.unwrap_or(limits::QUERY_GAS_MAX);
    if gas_limit > limits::QUERY_GAS_MAX {
        return Err(ApiError::bad_request(
            "gas_limit_too_high",
            format!("a query may use at most {} gas; {gas_limit} was asked", limits::QUERY_GAS_MAX),
        ));
    }
    let caller = query_caller(&node, &request, &input, gas_limit).await?;
    let outcome = read(&node, move |node| {
        node.query(request.contract, &request.method, &input, gas_limit, caller)
    })
    .await?;
    let receipt = pactum_types::Receipt {
        transaction_hash: Hash::ZERO,
        status: outcome.status,
        gas_used: outcome.gas_used,
        events: outcome.events,
        return_data: outcome.return_data,
    };
    let mut value = serde_json::to_value(&receipt).map_err(ApiError::internal)?;
    if let Some(object) = value.as_object_mut() {
        object.remove("transaction_hash");
        object.insert("height".into(), json!(outcome.height));
    }
    Ok(Json(value))
}

// ---- Events ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Only contract events of this contract.
    contract: Option<String>,
    /// Only contract events with this topic.
    topic: Option<String>,
    /// Whether to send `block` events too (default true).
    blocks: Option<bool>,
}

struct EventFilter {
    contract: Option<Address>,
    topic: Option<String>,
    blocks: bool,
}

fn sse_events(block: &CommittedBlock, filter: &EventFilter) -> Vec<SseEvent> {
    let mut out = Vec::new();
    if filter.blocks {
        let data = json!({
            "height": block.height,
            "hash": block.block_hash,
            "timestamp_ms": block.timestamp_ms,
            "transactions": block.transactions,
            "state_root": block.state_root,
        });
        out.push(SseEvent::default().event("block").data(data.to_string()));
    }
    for (transaction, event) in &block.events {
        if filter.contract.is_some_and(|contract| contract != event.contract)
            || filter.topic.as_ref().is_some_and(|topic| *topic != event.topic)
        {
            continue;
        }
        let data = json!({
            "height": block.height,
            "transaction": transaction,
            "contract": event.contract,
            "topic": event.topic,
            "data": hex::encode(&event.data),
        });
        out.push(SseEvent::default().event("contract_event").data(data.to_string()));
    }
    out
}

/// `GET /v1/events`: server-sent events of committed blocks (`block`) and contract events
/// (`contract_event`) from now on. A subscriber too slow to keep up gets a `lagged` event
/// saying how many blocks it missed, then continues.
async fn events(
    State(node): State<NodeHandle>,
    Extension(streams): Extension<EventStreams>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(query) = query.map_err(|error| query_error(&error))?;
    // Held by the stream for as long as the client stays connected.
    let permit = streams.0.try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "the node serves at most {} event streams at once; retry later or follow \
                 another validator",
                limits::API_EVENT_STREAMS_MAX
            ),
        )
    })?;
    let contract = match &query.contract {
        Some(text) => Some(Address(parse_fixed(text, "contract")?)),
        None => None,
    };
    let filter = EventFilter { contract, topic: query.topic, blocks: query.blocks.unwrap_or(true) };
    let receiver = node.subscribe();
    let stream = futures_util::stream::unfold(
        (receiver, filter, Vec::<SseEvent>::new(), permit),
        |(mut receiver, filter, mut queued, permit)| async move {
            loop {
                if let Some(event) = queued.pop() {
                    return Some((Ok(event), (receiver, filter, queued, permit)));
                }
                match receiver.recv().await {
                    Ok(block) => {
                        queued = sse_events(&block, &filter);
                        queued.reverse();
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let event = SseEvent::default()
                            .event("lagged")
                            .data(json!({ "missed_blocks": missed }).to_string());
                        return Some((Ok(event), (receiver, filter, queued, permit)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

// ---- Status, metrics, health, the document ----

async fn status(State(node): State<NodeHandle>) -> Json<Value> {
    let status = node.status();
    let validators: Vec<Value> = status
        .validators
        .iter()
        .map(|validator| {
            json!({
                "name": validator.name,
                "organisation": validator.organisation,
                "public_key": validator.public_key,
                "address": validator.address,
                "api_address": validator.api_address,
                "self": validator.is_self,
                "connected": validator.connected,
            })
        })
        .collect();
    let now = pactum_runtime::clock::unix_seconds();
    let certificates: Vec<Value> = status
        .certificates
        .iter()
        .map(|certificate| {
            json!({
                "kind": certificate.kind.as_str(),
                "name": certificate.name,
                "organisation": certificate.organisation,
                "serial": certificate.serial,
                "not_after": certificate.not_after,
                "seconds_left": certificate.seconds_left(now),
            })
        })
        .collect();
    Json(json!({
        "node": status.name,
        "organisation": status.organisation,
        "public_key": status.public_key,
        "replica_id": status.replica_id,
        "chain_id": status.chain_id,
        "epoch": status.epoch,
        "epoch_start": status.epoch_start,
        "epoch_last": status.epoch_last,
        "view": status.view,
        "primary": status.primary,
        "in_view_change": status.in_view_change,
        "height": status.height,
        "last_block_hash": status.last_block_hash,
        "last_block_time_ms": status.last_block_time_ms,
        "state_root": status.state_root,
        "stable_checkpoint": status.stable_checkpoint,
        "validators": validators,
        "n": status.n,
        "f": status.f,
        "quorum": status.quorum,
        "mempool_transactions": status.mempool_transactions,
        "certificates": certificates,
        "warnings": status.warnings,
    }))
}

async fn metrics(State(node): State<NodeHandle>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], node.metrics_text())
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_DOCUMENT)
}

/// Decodes canonical transaction bytes, for clients that hold them.
pub fn decode_transaction(bytes: &[u8]) -> Result<Transaction, pactum_types::DecodeError> {
    Transaction::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/v1/chain` page stops before the block that would take it past its byte budget,
    /// holds at least one block however large, and says where the next page starts.
    #[test]
    fn a_chain_page_is_bounded_in_bytes_read() {
        let builder = pactum_storage::builder::ChainBuilder::new(
            pactum_types::ChainId::new("pactum-page").unwrap(),
            4,
            16,
            1,
        );
        // Five blocks of the same size (the page reads them by height, never checks it).
        let raw = vec![builder.next_block(20).block.to_bytes(); 5];
        let size = raw[0].len();
        let read = |height: u64| Ok(raw.get(height as usize - 1).cloned());
        // Room for two blocks and a half: two, and the next page starts at the third.
        let (tip, blocks, next) = page_of_blocks(5, 1, 100, size * 5 / 2, read).unwrap();
        assert_eq!((tip, blocks.len(), next), (5, 2, Some(3)));
        // A budget smaller than one block still gives one.
        let (_, blocks, next) = page_of_blocks(5, 4, 100, 1, read).unwrap();
        assert_eq!((blocks.len(), next), (1, Some(5)));
        // Enough room: the rest of the chain, and no next page.
        let (_, blocks, next) = page_of_blocks(5, 3, 100, usize::MAX, read).unwrap();
        assert_eq!((blocks.len(), next), (3, None));
    }

    /// Every route this file registers is in the OpenAPI document, and every documented
    /// path is a route: the document cannot drift from the code unnoticed.
    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let document: Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        let documented: std::collections::BTreeSet<String> =
            document["paths"].as_object().unwrap().keys().cloned().collect();
        let source = include_str!("lib.rs");
        let routed: std::collections::BTreeSet<String> = source
            .lines()
            .filter_map(|line| line.trim().strip_prefix(".route(\""))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_string)
            .collect();
        assert!(routed.len() >= 15, "{routed:?}");
        assert_eq!(routed, documented);
    }

    #[test]
    fn every_admission_rule_has_a_client_error_status() {
        for code in RejectionCode::ALL {
            assert!(rejection_status(code).is_client_error(), "{code:?}");
        }
    }
}
