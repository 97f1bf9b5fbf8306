//! A client of a validator's REST API, shared by the `pactum` client commands, the
//! benchmark and the end-to-end tests: JSON requests, signing keys (PEM or hex seed),
//! signing transactions with the account's next nonce, and contract arguments written as
//! `type:value`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pactum_runtime::clock::Stopwatch;
use pactum_sdk::Encode as _;
use pactum_types::crypto::Keypair;
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
    #[error("cannot read {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ClientError {
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

impl NodeClient {
    pub fn new(base: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Self { base: base.trim_end_matches('/').to_string(), agent: config.into() }
    }

    pub fn base(&self) -> &str {
        &self.base
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

    pub fn next_nonce(&self, key: &PublicKey) -> Result<u64, ClientError> {
        let account = self.get(&format!("/v1/accounts/{key}"))?.into_success("GET /v1/accounts")?;
        account["next_nonce"]
            .as_u64()
            .ok_or_else(|| answer_error("GET /v1/accounts", "no next_nonce"))
    }

    /// Submits a signed transaction (canonical bytes); its hash.
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
                pactum_sdk::Address(pactum_vm::account_address(&key).0).encode_to(&mut out);
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
    pactum_vm::contract_address(&pactum_vm::account_address(deployer), nonce)
}
