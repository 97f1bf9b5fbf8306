//! Token-transfer load against a running devnet, and honest accounting of what happened
//! to every transfer, shared by `pactum bench devnet` and `pactum bench chaos`.
//!
//! - **Submitting.** Transfer `j` is from sender `j mod senders` with that sender's nonce
//!   `1 + j / senders`, offered first to validator `sender mod n`. A validator that is
//!   unreachable, busy or cannot persist it gets the same signed bytes offered to the next
//!   one, round after round, for up to [`OFFER_DEADLINE`]. A transfer counts as *accepted*
//!   once a validator answers `202` (or `200`, already committed). Nothing accepted is
//!   ever sent again: what a validator accepted must commit without help.
//! - **Following.** One thread per validator reads its event stream, reconnecting when the
//!   validator goes down and fetching any blocks it missed, and records each block's hash
//!   and transactions. A final sweep reads every validator's chain, so every validator's
//!   hash at every height is compared.
//! - **Counting.** Accepted, committed, lost (accepted, never committed), duplicated (one
//!   transaction at two places in the chain), refused by rule, and never accepted.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use pactum_certs::Role;
use pactum_certs::authority::{CA_CERTIFICATE_FILE, CA_PRIVATE_KEY_FILE, IssueRequest, issue};
use pactum_certs::identity::certificates_from_pem;
use pactum_client::{
    NodeClient, Submission, Validators, encode_arguments, keypair_from_pem, load_key,
    parse_hex_array, signed_call,
};
use pactum_types::crypto::Keypair;
use pactum_types::{Address, Block, ChainId, Encode, Hash, Payload, UnsignedTransaction};
use serde_json::Value;

use crate::clock::{self, Stopwatch};

/// How long a transfer is offered round the validators before the load gives up on it.
pub const OFFER_DEADLINE: Duration = Duration::from_secs(60);
/// The pause between rounds of offers when no validator took a transfer.
const OFFER_PAUSE: Duration = Duration::from_millis(200);
/// Blocks the final sweep reads per request of `/v1/chain`.
const CHAIN_PAGE: u64 = 100;

/// A devnet as the load sees it: its validators' REST APIs, chain, token and issuer.
pub struct Devnet {
    pub directory: PathBuf,
    pub nodes: Vec<NodeClient>,
    pub chain: ChainId,
    pub token: Address,
    issuer: Keypair,
}

impl Devnet {
    /// Reads a devnet laid out by `pactum devnet up` in `directory`.
    pub fn open(directory: &Path) -> anyhow::Result<Self> {
        let genesis =
            pactum_runtime::Genesis::load(&directory.join("genesis.json")).with_context(|| {
                format!("{} holds no devnet; run pactum devnet up", directory.display())
            })?;
        let nodes: Vec<NodeClient> = genesis
            .validators
            .iter()
            .map(|validator| NodeClient::new(&format!("http://{}", validator.api_address)))
            .collect();
        let contracts: Value = serde_json::from_str(
            &std::fs::read_to_string(directory.join("contracts.json"))
                .context("the devnet has not deployed its contracts yet")?,
        )?;
        let token = Address(parse_hex_array(
            contracts["contracts"]["token"]
                .as_str()
                .ok_or_else(|| anyhow!("no token in contracts.json"))?,
            "token address",
        )?);
        let issuer = load_key(&directory.join("clients/devnet-client/private-key.pem"))?;
        let chain = genesis.file.chain_id;
        Ok(Self { directory: directory.to_path_buf(), nodes, chain, token, issuer })
    }

    pub fn validators(&self) -> Validators {
        Validators::new(self.nodes.clone()).expect("a devnet has validators")
    }

    /// Issues client certificates from the first member's CA, enrols `count` senders and
    /// mints them tokens; waits for all of it to commit.
    pub fn fund_senders(&self, count: usize) -> anyhow::Result<Vec<Keypair>> {
        let authority = self.directory.join("organisations/member-1");
        let ca_certificate = std::fs::read_to_string(authority.join(CA_CERTIFICATE_FILE))?;
        let ca_key = std::fs::read_to_string(authority.join(CA_PRIVATE_KEY_FILE))?;
        let validators = self.validators();
        let mut senders = Vec::with_capacity(count);
        let mut transactions = Vec::new();
        for index in 0..count {
            let name = format!("bench-sender-{index}-{}", clock::unix_seconds());
            let request = IssueRequest {
                role: Role::Client,
                name: &name,
                subject_alt_names: &[],
                at: clock::unix_seconds(),
                days: 1,
            };
            let issued = issue(&ca_certificate, &ca_key, &request)?;
            let keypair = keypair_from_pem(&issued.private_key_pem)?;
            let certificate_der =
                certificates_from_pem(issued.certificate_pem.as_bytes())?.remove(0);
            transactions.push(
                UnsignedTransaction {
                    chain_id: self.chain.clone(),
                    sender: keypair.public_key(),
                    nonce: 0,
                    gas_limit: 1_000_000,
                    payload: Payload::EnrolIdentity { certificate_der },
                }
                .sign(&keypair),
            );
            senders.push(keypair);
        }
        let first_nonce = self.nodes[0].next_nonce(&self.issuer.public_key())?;
        for (nonce, sender) in (first_nonce..).zip(&senders) {
            let input = encode_arguments(&[
                format!("account:{}", sender.public_key()),
                "u128:1000000000".into(),
            ])?;
            transactions.push(signed_call(
                &self.chain,
                &self.issuer,
                nonce,
                self.token,
                "mint",
                &input,
                10_000_000,
            ));
        }
        for transaction in &transactions {
            let (_, submission) = validators.submit_once(&transaction.to_bytes(), 0);
            match submission {
                Submission::Pending | Submission::Committed => {}
                Submission::Refused(error) => return Err(error.into()),
                Submission::Retry(reason) => {
                    anyhow::bail!("no validator took a setup transaction: {reason}")
                }
            }
        }
        for transaction in &transactions {
            let answer =
                self.nodes[0].wait_committed(&transaction.hash(), Duration::from_secs(120))?;
            anyhow::ensure!(
                answer["receipt"]["status"] == "success",
                "setup transaction failed: {answer}"
            );
        }
        Ok(senders)
    }
}

/// One transfer: who first gets it, and its signed bytes.
pub struct Transfer {
    pub node: usize,
    pub hash: Hash,
    pub bytes: Vec<u8>,
}

/// The transfers of a run: transfer `j` is from sender `j mod senders`, nonce
/// `1 + j / senders`, so any of them can be made on demand.
pub struct Transfers {
    senders: Vec<Keypair>,
    chain: ChainId,
    token: Address,
    input: Vec<u8>,
    validators: usize,
    presigned: Vec<Transfer>,
}

impl Transfers {
    pub fn new(devnet: &Devnet, senders: Vec<Keypair>) -> Self {
        let recipient = format!("address:{}", "5a".repeat(32));
        let input = encode_arguments(&[recipient, "u128:1".into()]).expect("valid arguments");
        Self {
            senders,
            chain: devnet.chain.clone(),
            token: devnet.token,
            input,
            validators: devnet.nodes.len(),
            presigned: Vec::new(),
        }
    }

    /// Signs the first `count` transfers now, so signing is not part of what is timed.
    pub fn presign(&mut self, count: u64) {
        self.presigned = (0..count).map(|index| self.sign(index)).collect();
    }

    fn sign(&self, index: u64) -> Transfer {
        let count = self.senders.len() as u64;
        let sender_index = (index % count) as usize;
        let nonce = 1 + index / count;
        let transaction = signed_call(
            &self.chain,
            &self.senders[sender_index],
            nonce,
            self.token,
            "transfer",
            &self.input,
            10_000_000,
        );
        Transfer {
            node: sender_index % self.validators,
            hash: transaction.hash(),
            bytes: transaction.to_bytes(),
        }
    }

    fn get(&self, index: u64) -> std::borrow::Cow<'_, Transfer> {
        match self.presigned.get(index as usize) {
            Some(transfer) => std::borrow::Cow::Borrowed(transfer),
            None => std::borrow::Cow::Owned(self.sign(index)),
        }
    }
}

impl Clone for Transfer {
    fn clone(&self) -> Self {
        Self { node: self.node, hash: self.hash, bytes: self.bytes.clone() }
    }
}

/// Where a transaction was found in the chain, and when.
#[derive(Debug, Clone, Copy)]
struct Place {
    height: u64,
    position: usize,
    seen: Duration,
}

/// Everything the run has learned. One lock: the load is at most a few thousand
/// transfers a second.
#[derive(Default)]
struct Ledger {
    /// Accepted transfers: when first offered.
    accepted: HashMap<Hash, Duration>,
    refused: BTreeMap<String, u64>,
    never_accepted: u64,
    /// Transfers first offered to a validator that could not take them, then accepted by
    /// another.
    offered_elsewhere: u64,
    /// Every transaction seen in a block: its first place.
    places: HashMap<Hash, Place>,
    /// Transactions seen at a second place: (hash, first height, second height).
    duplicates: Vec<(Hash, u64, u64)>,
    /// The block hash at each height, as the first validator to report it said.
    blocks: BTreeMap<u64, Hash>,
    /// Validators that reported another hash for a height: (validator, height).
    disagreements: Vec<(usize, u64, Hash, Hash)>,
}

impl Ledger {
    fn record_block(
        &mut self,
        validator: usize,
        height: u64,
        hash: Hash,
        transactions: &[Hash],
        seen: Duration,
    ) {
        if let Some(known) = self.blocks.get(&height) {
            if *known != hash {
                self.disagreements.push((validator, height, *known, hash));
            }
            return;
        }
        self.blocks.insert(height, hash);
        for (position, transaction) in transactions.iter().enumerate() {
            match self.places.get(transaction) {
                Some(first) if (first.height, first.position) != (height, position) => {
                    self.duplicates.push((*transaction, first.height, height));
                }
                Some(_) => {}
                None => {
                    self.places.insert(*transaction, Place { height, position, seen });
                }
            }
        }
    }
}

/// A load run: the accounting, the followers and the submitters.
pub struct Run {
    nodes: Vec<NodeClient>,
    validators: Validators,
    transfers: Arc<Transfers>,
    ledger: Arc<Mutex<Ledger>>,
    watch: Stopwatch,
    /// Heights at or below this were committed before the run.
    start_height: u64,
    offered: Arc<AtomicU64>,
}

/// What the run counted, for the report.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub offered: u64,
    pub accepted: u64,
    pub refused: BTreeMap<String, u64>,
    pub never_accepted: u64,
    pub offered_elsewhere: u64,
    pub committed: u64,
    pub lost: Vec<Hash>,
    pub duplicated: Vec<(Hash, u64, u64)>,
    pub disagreements: Vec<String>,
    pub blocks: u64,
    /// Commit latencies (ms) of transfers first offered at or after the warm-up.
    pub latencies_ms: Vec<f64>,
    /// Transfers committed between the warm-up and the end of the load.
    pub committed_in_window: u64,
    pub window: Duration,
}

impl Outcome {
    /// Whether every accepted transfer committed exactly once and the validators agreed.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.disagreements.is_empty()
    }

    /// The latency at percentile `p` (0..=1), NaN without samples.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_ms.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_ms[index]
    }

    /// The accounting lines both benchmarks print.
    pub fn print_accounting(&self) {
        println!("  offered:              {}", self.offered);
        println!(
            "  accepted:             {} ({} after their first validator could not take them)",
            self.accepted, self.offered_elsewhere
        );
        println!("  refused by a rule:    {}", self.refused.values().sum::<u64>());
        for (code, count) in &self.refused {
            println!("    {code}: {count}");
        }
        println!(
            "  never accepted:       {} (no validator took them within {} s)",
            self.never_accepted,
            OFFER_DEADLINE.as_secs()
        );
        println!("  committed:            {} (in {} blocks)", self.committed, self.blocks);
        println!("  lost:                 {} (accepted, never committed)", self.lost.len());
        println!("  duplicated:           {} (committed at two places)", self.duplicated.len());
        for hash in self.lost.iter().take(10) {
            println!("    lost {hash}");
        }
        for (hash, first, second) in self.duplicated.iter().take(10) {
            println!("    duplicated {hash} at heights {first} and {second}");
        }
        println!("  disagreements:        {}", self.disagreements.len());
        for line in self.disagreements.iter().take(10) {
            println!("    {line}");
        }
    }
}

impl Run {
    pub fn new(devnet: &Devnet, transfers: Transfers) -> anyhow::Result<Self> {
        let start_height = devnet
            .nodes
            .iter()
            .filter_map(|node| node.status().ok())
            .filter_map(|status| status["height"].as_u64())
            .max()
            .ok_or_else(|| anyhow!("no validator of the devnet answers"))?;
        Ok(Self {
            nodes: devnet.nodes.clone(),
            validators: devnet.validators(),
            transfers: Arc::new(transfers),
            ledger: Arc::new(Mutex::new(Ledger::default())),
            watch: Stopwatch::start(),
            start_height,
            offered: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn elapsed(&self) -> Duration {
        self.watch.elapsed()
    }

    /// Starts one follower per validator (detached: it ends with the process).
    pub fn follow(&self) {
        for (index, node) in self.nodes.iter().enumerate() {
            let (node, ledger, watch) = (node.clone(), Arc::clone(&self.ledger), self.watch);
            let from = self.start_height + 1;
            std::thread::spawn(move || follow(index, &node, &ledger, watch, from));
        }
    }

    /// Offers transfers `0..` at `rate` per second from `threads` threads until `count`
    /// were offered or `stop` is set; returns when every thread is done.
    pub fn submit(&self, rate: u64, threads: usize, count: u64, stop: &AtomicBool) {
        let started = self.watch.elapsed();
        std::thread::scope(|scope| {
            for worker in 0..threads as u64 {
                scope.spawn(move || {
                    let mut index = worker;
                    while index < count && !stop.load(Ordering::Relaxed) {
                        let due = started + Duration::from_secs_f64(index as f64 / rate as f64);
                        let now = self.watch.elapsed();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        self.offer(&self.transfers.get(index));
                        index += threads as u64;
                    }
                });
            }
        });
    }

    /// Offers one transfer round the validators until one takes or refuses it.
    fn offer(&self, transfer: &Transfer) {
        let first_offered = self.watch.elapsed();
        self.offered.fetch_add(1, Ordering::Relaxed);
        loop {
            let (index, submission) = self.validators.submit_once(&transfer.bytes, transfer.node);
            let mut ledger = self.ledger.lock().expect("no panics");
            match submission {
                Submission::Pending | Submission::Committed => {
                    ledger.accepted.insert(transfer.hash, first_offered);
                    if index != transfer.node {
                        ledger.offered_elsewhere += 1;
                    }
                    return;
                }
                Submission::Refused(error) => {
                    let code = match &error {
                        pactum_client::ClientError::Node { code, .. } => code.clone(),
                        other => other.to_string(),
                    };
                    *ledger.refused.entry(code).or_default() += 1;
                    return;
                }
                Submission::Retry(_) if self.watch.elapsed() - first_offered > OFFER_DEADLINE => {
                    ledger.never_accepted += 1;
                    return;
                }
                Submission::Retry(_) => {}
            }
            drop(ledger);
            std::thread::sleep(OFFER_PAUSE);
        }
    }

    /// Accepted transfers not (yet) seen committed.
    pub fn uncommitted(&self) -> usize {
        let ledger = self.ledger.lock().expect("no panics");
        ledger.accepted.keys().filter(|hash| !ledger.places.contains_key(hash)).count()
    }

    pub fn committed(&self) -> usize {
        let ledger = self.ledger.lock().expect("no panics");
        ledger.accepted.keys().filter(|hash| ledger.places.contains_key(hash)).count()
    }

    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Relaxed)
    }

    /// Waits up to `limit` for every accepted transfer to commit, sweeping the validators'
    /// chains every few seconds for blocks the followers missed; returns how long it
    /// waited.
    pub fn drain(&self, limit: Duration) -> Duration {
        let watch = Stopwatch::start();
        while watch.elapsed() < limit {
            if self.uncommitted() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
            self.sweep();
        }
        watch.elapsed()
    }

    /// Reads every reachable validator's chain from the run's first height: each hash is
    /// compared with what was recorded, and blocks nobody recorded are fetched.
    pub fn sweep(&self) {
        for (index, node) in self.nodes.iter().enumerate() {
            let _ = self.sweep_one(index, node);
        }
    }

    fn sweep_one(&self, index: usize, node: &NodeClient) -> anyhow::Result<()> {
        let mut from = self.start_height + 1;
        loop {
            let page = node
                .get(&format!("/v1/chain?from={from}&limit={CHAIN_PAGE}"))?
                .into_success("GET /v1/chain")?;
            let mut missing = Vec::new();
            {
                let mut ledger = self.ledger.lock().expect("no panics");
                for summary in page["blocks"].as_array().into_iter().flatten() {
                    let (Some(height), Some(hash)) =
                        (summary["height"].as_u64(), summary["hash"].as_str())
                    else {
                        continue;
                    };
                    let hash = Hash(parse_hex_array(hash, "block hash")?);
                    match ledger.blocks.get(&height) {
                        Some(known) if *known != hash => {
                            let known = *known;
                            ledger.disagreements.push((index, height, known, hash));
                        }
                        Some(_) => {}
                        None => missing.push(height),
                    }
                }
            }
            for height in missing {
                let (hash, transactions) = fetch_block(node, height)?;
                let seen = self.watch.elapsed();
                self.ledger.lock().expect("no panics").record_block(
                    index,
                    height,
                    hash,
                    &transactions,
                    seen,
                );
            }
            match page["next"].as_u64() {
                Some(next) => from = next,
                None => return Ok(()),
            }
        }
    }

    /// The run's figures. `window` is (warm-up end, load end) on the run's clock.
    pub fn outcome(&self, window: (Duration, Duration)) -> Outcome {
        let ledger = self.ledger.lock().expect("no panics");
        let mut latencies_ms = Vec::new();
        let mut committed = 0;
        let mut committed_in_window = 0;
        let mut lost = Vec::new();
        for (hash, offered) in &ledger.accepted {
            match ledger.places.get(hash) {
                Some(place) => {
                    committed += 1;
                    if place.seen >= window.0 && place.seen <= window.1 {
                        committed_in_window += 1;
                    }
                    if *offered >= window.0 {
                        latencies_ms.push(place.seen.saturating_sub(*offered).as_secs_f64() * 1e3);
                    }
                }
                None => lost.push(*hash),
            }
        }
        latencies_ms.sort_by(f64::total_cmp);
        Outcome {
            offered: self.offered(),
            accepted: ledger.accepted.len() as u64,
            refused: ledger.refused.clone(),
            never_accepted: ledger.never_accepted,
            offered_elsewhere: ledger.offered_elsewhere,
            committed,
            lost,
            duplicated: ledger.duplicates.clone(),
            disagreements: ledger
                .disagreements
                .iter()
                .map(|(validator, height, first, other)| {
                    format!(
                        "validator-{} has block {other} at height {height}, another validator {first}",
                        validator + 1
                    )
                })
                .collect(),
            blocks: ledger.blocks.len() as u64,
            latencies_ms,
            committed_in_window,
            window: window.1.saturating_sub(window.0),
        }
    }
}

/// A block's hash and its transactions' hashes, from `GET /v1/blocks/{height}`.
fn fetch_block(node: &NodeClient, height: u64) -> anyhow::Result<(Hash, Vec<Hash>)> {
    let answer = node.get(&format!("/v1/blocks/{height}"))?.into_success("GET /v1/blocks")?;
    let hash = Hash(parse_hex_array(answer["hash"].as_str().unwrap_or(""), "block hash")?);
    let block: Block = serde_json::from_value(answer["block"].clone())
        .with_context(|| format!("block {height} from {}", node.base()))?;
    Ok((hash, block.transactions.iter().map(|transaction| transaction.hash()).collect()))
}

/// Follows one validator's blocks from height `from`: its event stream while it is up
/// (fetching any heights the stream skipped), reconnecting after it went down.
fn follow(index: usize, node: &NodeClient, ledger: &Mutex<Ledger>, watch: Stopwatch, from: u64) {
    let mut next = from;
    // Only block events: no contract has the zero address.
    let url = format!("{}/v1/events?contract={}", node.base(), "00".repeat(32));
    loop {
        let Ok(response) = ureq::get(&url).call() else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let reader = BufReader::new(response.into_body().into_reader());
        let mut event = String::new();
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_string();
                continue;
            }
            let Some(data) = line.strip_prefix("data:") else { continue };
            if event != "block" {
                continue;
            }
            let seen = watch.elapsed();
            let Ok(block) = serde_json::from_str::<Value>(data.trim()) else { continue };
            let Some(height) = block["height"].as_u64() else { continue };
            if height < next {
                continue;
            }
            // Heights the stream skipped (it connected late, or lagged): read them.
            while next < height {
                let Ok((hash, transactions)) = fetch_block(node, next) else { break };
                ledger.lock().expect("no panics").record_block(
                    index,
                    next,
                    hash,
                    &transactions,
                    watch.elapsed(),
                );
                next += 1;
            }
            if next < height {
                break;
            }
            let hashes = |value: &Value| -> Vec<Hash> {
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter_map(|text| parse_hex_array(text, "hash").ok().map(Hash))
                    .collect()
            };
            let Some(Ok(hash)) = block["hash"].as_str().map(|text| parse_hex_array(text, "hash"))
            else {
                continue;
            };
            ledger.lock().expect("no panics").record_block(
                index,
                height,
                Hash(hash),
                &hashes(&block["transactions"]),
                seen,
            );
            next = height + 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
