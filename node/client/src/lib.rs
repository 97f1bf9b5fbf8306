//! A client of a validator's REST API, shared by the `pactum` client commands, the
//! benchmark and the end-to-end tests: JSON requests, signing keys (PEM or hex seed),
//! signing transactions with the account's next nonce, contract arguments written as
//! `type:value`, and [`Validators`], which submits a transaction and follows it to its
//! commit across the consortium's validators, resending the same signed bytes to another
//! validator when one is unreachable or slow.

#![forbid(unsafe_code)]

pub mod changes;
pub mod interface;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pactum_clock::Stopwatch;
use pactum_sdk::Encode as _;
use pactum_types::crypto::Keypair;
use pactum_types::query::QuerySigning;
use pactum_types::{Address, ChainId, Hash, Payload, PublicKey, Transaction, UnsignedTransaction};
use serde_json::Value;
use thiserror::Error;

/// What went wrong talking to a node, or preparing what to send it.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach the node at {base}: {reason} (is it running?)")]
    Unreachable { base: String, reason: String },
    #[error("{what}: the node answered {status} {code}: {message}")]
    Node { what: String, status: u16, code: String, message: String },
    #[error("the node's answer to {what} is not what this client expects: {reason}")]
    Answer { what: String, reason: String },
    #[error("transaction {hash} was not committed within {seconds} s (last answer: {last})")]
    NotCommitted { hash: Hash, seconds: u64, last: String },
    #[error("transaction {hash} expired: {reason}")]
    Expired { hash: Hash, reason: String },
    #[error("cannot read {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Invalid(message.into())
}

fn answer_error(what: &str, reason: impl Into<String>) -> ClientError {
    ClientError::Answer { what: what.into(), reason: reason.into() }
}

/// The node a client command talks to unless told otherwise (validator 1 of a devnet).
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8701";

/// A node's REST API.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

/// A JSON answer: the HTTP status and the body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body of a successful answer, or the node's `{code, message}` as an error.
    pub fn into_success(self, what: &str) -> Result<Value, ClientError> {
        if self.is_success() {
            return Ok(self.body);
        }
        let text =
            |field: &str| self.body.get(field).and_then(Value::as_str).unwrap_or("").to_string();
        Err(ClientError::Node {
            what: what.into(),
            status: self.status,
            code: text("code"),
            message: text("message"),
        })
    }
}

/// What a client trusts and presents when its node serves the REST API over TLS
/// (`https://`): the CA certificate(s) that issued the API's certificate (the member's
/// CA), and the client certificate and key to present when the node requires one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsClientOptions {
    pub ca_certificates: PathBuf,
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

/// The environment variables [`NodeClient::connect`] reads for an `https://` node.
pub const ENV_API_CA_CERT: &str = "PACTUM_API_CA_CERT";
pub const ENV_API_CLIENT_CERT: &str = "PACTUM_API_CLIENT_CERT";
pub const ENV_API_CLIENT_KEY: &str = "PACTUM_API_CLIENT_KEY";

fn read_file(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|error| ClientError::File { path: path.to_path_buf(), reason: error.to_string() })
}

fn pem_error(path: &Path, reason: impl std::fmt::Display) -> ClientError {
    ClientError::File { path: path.to_path_buf(), reason: format!("not usable PEM: {reason}") }
}

fn agent_builder() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
}

impl NodeClient {
    /// A client for a node at an `http://` address (an `https://` one needs
    /// [`NodeClient::connect`] or [`NodeClient::with_tls`]).
    pub fn new(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_string(), agent: agent_builder().build().into() }
    }

    /// A client for `base`: plain HTTP for `http://`; for `https://`, TLS 1.3 trusting
    /// the CA certificate(s) in the file named by `PACTUM_API_CA_CERT`, and presenting
    /// the certificate and key named by `PACTUM_API_CLIENT_CERT` and
    /// `PACTUM_API_CLIENT_KEY` when both are set.
    pub fn connect(base: &str) -> Result<Self, ClientError> {
        if !base.starts_with("https://") {
            return Ok(Self::new(base));
        }
        let ca_certificates = std::env::var_os(ENV_API_CA_CERT).map(PathBuf::from).ok_or_else(|| {
            invalid(format!(
                "{base} is served over TLS: set {ENV_API_CA_CERT} to the PEM file of the CA that issued its certificate"
            ))
        })?;
        let client_certificate =
            match (std::env::var_os(ENV_API_CLIENT_CERT), std::env::var_os(ENV_API_CLIENT_KEY)) {
                (Some(certificate), Some(key)) => Some((certificate.into(), key.into())),
                (None, None) => None,
                _ => {
                    return Err(invalid(format!(
                        "set both {ENV_API_CLIENT_CERT} and {ENV_API_CLIENT_KEY}, or neither"
                    )));
                }
            };
        Self::with_tls(base, &TlsClientOptions { ca_certificates, client_certificate })
    }

    /// A client for an `https://` node with `options`.
    pub fn with_tls(base: &str, options: &TlsClientOptions) -> Result<Self, ClientError> {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
        let certificates = |path: &Path| -> Result<Vec<Certificate<'static>>, ClientError> {
            let pem = read_file(path)?;
            let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(Ok(certificate)),
                    Ok(_) => None,
                    Err(error) => Some(Err(pem_error(path, error))),
                })
                .collect::<Result<_, _>>()?;
            if certificates.is_empty() {
                return Err(pem_error(path, "no certificate in it"));
            }
            Ok(certificates)
        };
        let roots = certificates(&options.ca_certificates)?;
        let client = match &options.client_certificate {
            Some((certificate, key)) => {
                let chain = certificates(certificate)?;
                let key = PrivateKey::from_pem(&read_file(key)?).map_err(|e| pem_error(key, e))?;
                Some(ClientCert::new_with_certs(&chain, key))
            }
            None => None,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .root_certs(RootCerts::new_with_certs(&roots))
            .client_cert(client)
            .build();
        let agent = agent_builder().tls_config(tls).build().into();
        Ok(Self { base: base.trim_end_matches('/').to_string(), agent })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP agent, with the TLS trust this client was built with: for requests this
    /// client does not make itself (other services of the same host, custom headers).
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    fn answer(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, ClientError> {
        let unreachable =
            |reason: String| ClientError::Unreachable { base: self.base.clone(), reason };
        let mut response = result.map_err(|error| unreachable(error.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|error| unreachable(error.to_string()))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    pub fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.answer(self.agent.get(format!("{}{path}", self.base)).call())
    }

    /// A text answer (`/metrics`).
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let answer = self.get(path)?;
        match answer.body {
            Value::String(text) => Ok(text),
            other => Ok(other.to_string()),
        }
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Answer, ClientError> {
        let url = format!("{}{path}", self.base);
        self.answer(
            self.agent.post(url).header("content-type", "application/json").send(body.to_string()),
        )
    }

    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Result<Answer, ClientError> {
        let url = format!("{}{path}", self.base);
        self.answer(
            self.agent.post(url).header("content-type", "application/octet-stream").send(body),
        )
    }

    pub fn status(&self) -> Result<Value, ClientError> {
        self.get("/v1/status")?.into_success("GET /v1/status")
    }

    pub fn chain_id(&self) -> Result<ChainId, ClientError> {
        let status = self.status()?;
        let chain = status["chain_id"]
            .as_str()
            .ok_or_else(|| answer_error("GET /v1/status", "no chain_id"))?;
        ChainId::new(chain).map_err(|error| answer_error("GET /v1/status", error.to_string()))
    }

    /// Runs a read-only call (`POST /v1/query`) and returns the node's answer: a receipt
    /// status, gas, events and return data. Signed by `caller`, the contract sees that
    /// key's account as its caller; unsigned, the zero address.
    pub fn query(
        &self,
        contract: Address,
        method: &str,
        input: &[u8],
        gas_limit: u64,
        caller: Option<&Keypair>,
    ) -> Result<Value, ClientError> {
        let chain_id = match caller {
            Some(_) => Some(self.chain_id()?),
            None => None,
        };
        let body = query_body(
            chain_id.as_ref(),
            contract,
            method,
            input,
            gas_limit,
            caller,
            pactum_clock::unix_millis(),
        );
        self.post_json("/v1/query", &body)?.into_success("POST /v1/query")
    }

    pub fn next_nonce(&self, key: &PublicKey) -> Result<u64, ClientError> {
        let account = self.get(&format!("/v1/accounts/{key}"))?.into_success("GET /v1/accounts")?;
        account["next_nonce"]
            .as_u64()
            .ok_or_else(|| answer_error("GET /v1/accounts", "no next_nonce"))
    }

    /// Submits a signed transaction (canonical bytes) to this node only; its hash.
    pub fn submit(&self, transaction: &Transaction) -> Result<Hash, ClientError> {
        use pactum_types::Encode as _;
        let body = self
            .post_bytes("/v1/transactions", &transaction.to_bytes())?
            .into_success("POST /v1/transactions")?;
        let hash = body["hash"]
            .as_str()
            .ok_or_else(|| answer_error("POST /v1/transactions", "no hash"))?;
        Ok(Hash(parse_hex_array(hash, "transaction hash")?))
    }

    /// Waits until `hash` is committed; its `GET /v1/transactions` answer.
    pub fn wait_committed(&self, hash: &Hash, timeout: Duration) -> Result<Value, ClientError> {
        let watch = Stopwatch::start();
        loop {
            let answer = self.get(&format!("/v1/transactions/{hash}"))?;
            if answer.is_success() && answer.body["status"] == "committed" {
                return Ok(answer.body);
            }
            if watch.elapsed() > timeout {
                return Err(ClientError::NotCommitted {
                    hash: *hash,
                    seconds: timeout.as_secs(),
                    last: format!("{} {}", answer.status, answer.body),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How long [`Validators`] follows a pending transaction on one validator before it sends
/// it to the next one as well.
const RESEND_AFTER: Duration = Duration::from_secs(10);
/// How often [`Validators`] asks about a pending transaction.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The pause after every validator was tried and none took the transaction.
const ROUND_PAUSE: Duration = Duration::from_millis(250);

/// Refusal codes that may come from one validator's lagging view of the ledger rather
/// than from the transaction: another validator may take it.
const LOCAL_VIEW_REFUSALS: [&str; 2] = ["unknown_signer", "nonce_too_far_ahead"];

/// What one validator said to a submission.
#[derive(Debug)]
pub enum Submission {
    /// `202`: pending there (and durable there).
    Pending,
    /// `200`: the same transaction is already committed.
    Committed,
    /// Unreachable, busy, shutting down or unable to persist it: try another validator.
    Retry(String),
    /// Refused under an admission rule: sending it again cannot help.
    Refused(ClientError),
}

impl Submission {
    fn of(outcome: Result<Answer, ClientError>) -> Self {
        let answer = match outcome {
            Ok(answer) => answer,
            Err(error) => return Submission::Retry(error.to_string()),
        };
        match answer.status {
            202 => Submission::Pending,
            200 if answer.body["status"] == "committed" => Submission::Committed,
            // Busy, rate-limited, shutting down, not durable, or a node fault: another
            // validator (or the same one a moment later) may take it.
            429 | 500..=599 => Submission::Retry(format!("{} {}", answer.status, answer.body)),
            _ => match answer.into_success("POST /v1/transactions") {
                Ok(body) => Submission::Retry(format!("unexpected answer {body}")),
                Err(error) => Submission::Refused(error),
            },
        }
    }
}

/// The validators of a consortium, as a client sees them: submits a transaction and
/// follows it until it commits, resending the same signed bytes to another validator
/// when one is unreachable, busy, or has not committed it for a while. Resending is
/// safe: a validator answers a transaction it already holds, or has committed, with its
/// status.
#[derive(Debug, Clone)]
pub struct Validators {
    nodes: Vec<NodeClient>,
}

impl Validators {
    /// `nodes`, tried in this order (at least one).
    pub fn new(nodes: Vec<NodeClient>) -> Result<Self, ClientError> {
        if nodes.is_empty() {
            return Err(invalid("at least one node is needed"));
        }
        Ok(Self { nodes })
    }

    /// `first`, then the other validators `first` lists in `GET /v1/status` (by their
    /// REST addresses). When `first` cannot say, it is the only one.
    pub fn discover(first: NodeClient) -> Self {
        let mut nodes = vec![first];
        // Over TLS the client trusts its own organisation's CA, which did not issue the
        // other members' API certificates: it talks to its own node only.
        if nodes[0].base().starts_with("https://") {
            return Self { nodes };
        }
        if let Ok(status) = nodes[0].status() {
            for validator in status["validators"].as_array().into_iter().flatten() {
                if validator["self"] == true {
                    continue;
                }
                if let Some(address) = validator["api_address"].as_str() {
                    let base = format!("http://{address}");
                    if nodes.iter().all(|node| node.base() != base) {
                        nodes.push(NodeClient::new(&base));
                    }
                }
            }
        }
        Self { nodes }
    }

    pub fn nodes(&self) -> &[NodeClient] {
        &self.nodes
    }

    /// Offers `bytes` to the validators in turn from `start`, once round all of them,
    /// until one takes it (pending, or already committed) or refuses it for good. A
    /// refusal that may only reflect that validator's lagging view of the ledger (an
    /// unknown signer, a nonce too far ahead) is kept while the others are asked, and
    /// returned only if none takes it. `Retry` with the last reason when none would.
    pub fn submit_once(&self, bytes: &[u8], start: usize) -> (usize, Submission) {
        let mut last = Submission::Retry("no validator was asked".into());
        let mut local_refusal: Option<(usize, Submission)> = None;
        for offset in 0..self.nodes.len() {
            let index = (start + offset) % self.nodes.len();
            let submission =
                Submission::of(self.nodes[index].post_bytes("/v1/transactions", bytes));
            match submission {
                Submission::Retry(_) => last = submission,
                Submission::Refused(ClientError::Node { ref code, .. })
                    if LOCAL_VIEW_REFUSALS.contains(&code.as_str()) =>
                {
                    local_refusal.get_or_insert((index, submission));
                }
                _ => return (index, submission),
            }
        }
        local_refusal.unwrap_or((start % self.nodes.len(), last))
    }

    /// Submits `transaction` and waits until it is committed; its `GET
    /// /v1/transactions/{hash}` answer. Sends the same signed bytes to the next validator
    /// whenever the current one is unreachable, busy, or has held it pending for
    /// [`RESEND_AFTER`]. Fails at once when a validator refuses it under an admission
    /// rule or says it expired behind a missing nonce, and after `timeout` otherwise.
    pub fn submit_and_wait(
        &self,
        transaction: &Transaction,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        use pactum_types::Encode as _;
        let bytes = transaction.to_bytes();
        let hash = transaction.hash();
        let watch = Stopwatch::start();
        let mut current = 0usize;
        let mut last = String::from("nothing yet");
        while watch.elapsed() < timeout {
            let (index, submission) = self.submit_once(&bytes, current);
            current = index;
            match submission {
                Submission::Refused(error) => return Err(error),
                Submission::Retry(reason) => {
                    last = reason;
                    std::thread::sleep(ROUND_PAUSE);
                    continue;
                }
                Submission::Pending | Submission::Committed => {}
            }
            match self.follow(current, &hash, &watch, timeout)? {
                Followed::Committed(answer) => return Ok(answer),
                Followed::Resend(reason) => {
                    last = reason;
                    current = (current + 1) % self.nodes.len();
                }
                Followed::Again(reason) => {
                    last = reason;
                    std::thread::sleep(POLL_INTERVAL);
                }
            }
        }
        Err(ClientError::NotCommitted { hash, seconds: timeout.as_secs(), last })
    }

    /// Polls validator `index` about `hash` until it commits there, or something says to
    /// send it again.
    fn follow(
        &self,
        index: usize,
        hash: &Hash,
        watch: &Stopwatch,
        timeout: Duration,
    ) -> Result<Followed, ClientError> {
        let node = &self.nodes[index];
        let since = Stopwatch::start();
        while watch.elapsed() < timeout {
            let answer = match node.get(&format!("/v1/transactions/{hash}")) {
                Ok(answer) => answer,
                Err(error) => return Ok(Followed::Resend(error.to_string())),
            };
            match (answer.status, answer.body["status"].as_str()) {
                (200, Some("committed")) => return Ok(Followed::Committed(answer.body)),
                (200, Some("expired")) => {
                    let reason = answer.body["reason"].as_str().unwrap_or("").to_string();
                    return Err(ClientError::Expired { hash: *hash, reason });
                }
                (200, Some("pending")) if since.elapsed() >= RESEND_AFTER => {
                    return Ok(Followed::Resend(format!(
                        "pending at {} for {} s",
                        node.base(),
                        RESEND_AFTER.as_secs()
                    )));
                }
                (200, Some("pending")) => {}
                // Unknown here (a validator that lost it, or one behind): offer it again.
                (404, _) => return Ok(Followed::Again(format!("unknown at {}", node.base()))),
                (status, _) => {
                    return Ok(Followed::Resend(format!(
                        "{} answered {status} {}",
                        node.base(),
                        answer.body
                    )));
                }
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        Ok(Followed::Again("timed out".into()))
    }
}

enum Followed {
    Committed(Value),
    /// Send it to the next validator.
    Resend(String),
    /// Send it to the same validator again.
    Again(String),
}

pub fn parse_hex_array<const N: usize>(text: &str, what: &str) -> Result<[u8; N], ClientError> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|_| invalid(format!("{what} must be {} hex characters", N * 2)))?;
    Ok(bytes)
}

/// Reads a signing key: a PEM PKCS#8 Ed25519 private key (as `pactum certs issue` and
/// `openssl genpkey -algorithm ed25519` write) or a file holding the 32-byte seed in hex
/// (as `pactum keys new` writes).
pub fn load_key(path: &Path) -> Result<Keypair, ClientError> {
    let file_error = |reason: String| ClientError::File { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|error| file_error(error.to_string()))?;
    if text.contains("-----BEGIN") {
        return keypair_from_pem(&text).map_err(|error| file_error(error.to_string()));
    }
    let seed = parse_hex_array::<32>(&text, "a key file")
        .map_err(|error| file_error(error.to_string()))?;
    Ok(Keypair::from_seed(&seed))
}

/// The signing key in a PEM PKCS#8 Ed25519 private key.
pub fn keypair_from_pem(text: &str) -> Result<Keypair, ClientError> {
    pactum_certs::tls::ed25519_seed_of_pem(text)
        .map(|seed| Keypair::from_seed(&seed))
        .map_err(|error| invalid(format!("not an Ed25519 PKCS#8 private key: {error}")))
}

/// A signed call of `method` of `contract` from `keypair`, with `nonce`, built offline
/// (for pre-signed load).
pub fn signed_call(
    chain: &ChainId,
    keypair: &Keypair,
    nonce: u64,
    contract: Address,
    method: &str,
    input: &[u8],
    gas_limit: u64,
) -> Transaction {
    let payload =
        Payload::CallContract { contract, method: method.to_string(), input: input.to_vec() };
    UnsignedTransaction {
        chain_id: chain.clone(),
        sender: keypair.public_key(),
        nonce,
        gas_limit,
        payload,
    }
    .sign(keypair)
}

/// Signs `payload` from `keypair` with its next nonce (asked of the node unless given).
pub fn sign_payload(
    node: &NodeClient,
    keypair: &Keypair,
    payload: Payload,
    gas_limit: u64,
    nonce: Option<u64>,
) -> Result<Transaction, ClientError> {
    let sender = keypair.public_key();
    let nonce = match nonce {
        Some(nonce) => nonce,
        None => node.next_nonce(&sender)?,
    };
    let unsigned =
        UnsignedTransaction { chain_id: node.chain_id()?, sender, nonce, gas_limit, payload };
    Ok(unsigned.sign(keypair))
}

/// The body of `POST /v1/query`. With a `caller` (and the chain it signs for) it carries
/// the caller's signature over the query and `now_ms`, so that the node runs it as the
/// caller's account; without one the contract sees the zero address.
pub fn query_body(
    chain_id: Option<&ChainId>,
    contract: Address,
    method: &str,
    input: &[u8],
    gas_limit: u64,
    caller: Option<&Keypair>,
    now_ms: u64,
) -> Value {
    let mut body = serde_json::json!({
        "contract": contract,
        "method": method,
        "input": hex::encode(input),
        "gas_limit": gas_limit,
    });
    if let (Some(chain_id), Some(keypair)) = (chain_id, caller) {
        let signer = keypair.public_key();
        let signing = QuerySigning {
            chain_id,
            contract: &contract,
            method,
            input,
            gas_limit,
            signer: &signer,
            signed_at_ms: now_ms,
        };
        body["signer"] = serde_json::json!({
            "public_key": signer,
            "signed_at_ms": now_ms,
            "signature": hex::encode(signing.sign(keypair).0),
        });
    }
    body
}

/// Encodes contract arguments written as `type:value`: `u8`, `u32`, `u64`, `u128`,
/// `bool`, `string`, `bytes` (hex), `address` (hex), `account` (an Ed25519 public key in
/// hex, turned into the address contracts see for it). The encoding is the SDK's.
pub fn encode_arguments(arguments: &[String]) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    for argument in arguments {
        let (kind, value) = argument.split_once(':').ok_or_else(|| {
            invalid(format!("argument {argument:?} must be written type:value, e.g. u128:5"))
        })?;
        let bad =
            |error: &dyn std::fmt::Display| invalid(format!("argument {argument:?}: {error}"));
        match kind {
            "u8" => value.parse::<u8>().map_err(|e| bad(&e))?.encode_to(&mut out),
            "u32" => value.parse::<u32>().map_err(|e| bad(&e))?.encode_to(&mut out),
            "u64" => value.parse::<u64>().map_err(|e| bad(&e))?.encode_to(&mut out),
            "u128" => value.parse::<u128>().map_err(|e| bad(&e))?.encode_to(&mut out),
            "bool" => value.parse::<bool>().map_err(|e| bad(&e))?.encode_to(&mut out),
            "string" => value.to_string().encode_to(&mut out),
            "bytes" => hex::decode(value).map_err(|e| bad(&e))?.encode_to(&mut out),
            "address" => {
                pactum_sdk::Address(parse_hex_array(value, "an address")?).encode_to(&mut out);
            }
            "account" => {
                let key = PublicKey(parse_hex_array(value, "a public key")?);
                pactum_sdk::Address(pactum_types::block::account_address(&key).0)
                    .encode_to(&mut out);
            }
            other => {
                return Err(invalid(format!(
                    "argument {argument:?}: unknown type {other:?} (u8, u32, u64, u128, bool, string, bytes, address, account)"
                )));
            }
        }
    }
    Ok(out)
}

/// Decodes return data as `kind` (the same type names as [`encode_arguments`]) for display.
pub fn decode_return(kind: &str, data: &[u8]) -> Result<String, ClientError> {
    use pactum_sdk::Decode as _;
    let shown = match kind {
        "u8" => u8::decode(data).map(|value| value.to_string()),
        "u32" => u32::decode(data).map(|value| value.to_string()),
        "u64" => u64::decode(data).map(|value| value.to_string()),
        "u128" => u128::decode(data).map(|value| value.to_string()),
        "bool" => bool::decode(data).map(|value| value.to_string()),
        "string" => String::decode(data),
        "address" => pactum_sdk::Address::decode(data).map(|address| hex::encode(address.0)),
        "bytes" => Vec::<u8>::decode(data).map(hex::encode),
        other => return Err(invalid(format!("unknown return type {other:?}"))),
    };
    shown.map_err(|error| invalid(format!("the return data is not a {kind}: {}", error.what)))
}

/// The contract address a deployment by `deployer` with `nonce` creates.
pub fn deployed_address(deployer: &PublicKey, nonce: u64) -> Address {
    pactum_types::block::contract_address(&pactum_types::block::account_address(deployer), nonce)
}
