//! `pactum bench devnet`: committed token transfers per second and commit latency of a
//! running devnet.
//!
//! It enrols and funds a set of senders, pre-signs every transfer (signing is not timed),
//! then submits them open loop at the set rate, sender `i` always to node `i mod n`, from
//! several client threads. A subscriber to node 1's event stream records when each block
//! commits; a transfer's latency is from its submission to the commit of its block. Only
//! transfers submitted after the warm-up count. It prints figures and asserts nothing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pactum_certs::Role;
use pactum_certs::authority::{CA_CERTIFICATE_FILE, CA_PRIVATE_KEY_FILE, IssueRequest, issue};
use pactum_certs::identity::certificates_from_pem;
use pactum_client::{
    NodeClient, encode_arguments, keypair_from_pem, load_key, parse_hex_array, signed_call,
};
use pactum_types::crypto::Keypair;
use pactum_types::{Address, ChainId, Encode, Hash, Payload, Transaction, UnsignedTransaction};
use serde_json::Value;

use crate::clock::{self, Stopwatch};
use crate::devnet::DEFAULT_DIRECTORY;

#[derive(Debug, Args)]
pub struct DevnetBenchArgs {
    /// The devnet's directory (`pactum devnet up --dir`).
    #[arg(long, default_value = DEFAULT_DIRECTORY)]
    dir: PathBuf,
    /// Transfers submitted per second, in total.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds at the start that do not count.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Distinct senders (each gets `rate × duration / senders` transfers).
    #[arg(long, default_value_t = 256)]
    senders: usize,
    /// Client threads submitting.
    #[arg(long, default_value_t = 32)]
    threads: usize,
}

struct Scheduled {
    node: usize,
    bytes: Vec<u8>,
    hash: Hash,
}

pub fn run(arguments: &DevnetBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        arguments.rate > 0 && arguments.duration > 0,
        "--rate and --duration must be positive"
    );
    anyhow::ensure!(
        arguments.senders > 0 && arguments.threads > 0,
        "--senders and --threads must be positive"
    );
    anyhow::ensure!(
        arguments.warmup < arguments.duration,
        "--warmup must be shorter than --duration"
    );
    let directory = &arguments.dir;
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
    let chain = nodes[0].chain_id()?;

    println!("enrolling and funding {} senders...", arguments.senders);
    let senders = fund_senders(directory, &nodes, &chain, &issuer, token, arguments.senders)?;
    let total = arguments.rate * arguments.duration;
    println!("signing {total} transfers (not timed)...");
    let schedule = sign_transfers(&senders, &chain, token, total, nodes.len());

    let commits: Arc<Mutex<HashMap<Hash, Duration>>> = Arc::new(Mutex::new(HashMap::new()));
    let watch = Stopwatch::start();
    subscribe(&nodes[0], Arc::clone(&commits), watch)?;
    let submitted_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..schedule.len()).map(|_| AtomicU64::new(u64::MAX)).collect());
    let schedule = Arc::new(schedule);
    let rejected = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
    let progress = ProgressBar::new(total);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} submitted, {msg}")
            .expect("the template is valid"),
    );
    let sent = Arc::new(AtomicUsize::new(0));
    let started = watch.elapsed();
    let mut workers = Vec::new();
    for worker in 0..arguments.threads {
        let (schedule, submitted_at, rejected, sent) = (
            Arc::clone(&schedule),
            Arc::clone(&submitted_at),
            Arc::clone(&rejected),
            Arc::clone(&sent),
        );
        let nodes = nodes.clone();
        let (rate, threads) = (arguments.rate, arguments.threads);
        workers.push(std::thread::spawn(move || {
            let mut index = worker;
            while index < schedule.len() {
                let due = started + Duration::from_secs_f64(index as f64 / rate as f64);
                let now = watch.elapsed();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let item = &schedule[index];
                submitted_at[index].store(watch.elapsed().as_micros() as u64, Ordering::Relaxed);
                match nodes[item.node].post_bytes("/v1/transactions", &item.bytes) {
                    Ok(answer) if answer.is_success() => {}
                    Ok(answer) => {
                        let code = answer.body["code"].as_str().unwrap_or("unknown").to_string();
                        *rejected.lock().expect("no panics").entry(code).or_default() += 1;
                        submitted_at[index].store(u64::MAX, Ordering::Relaxed);
                    }
                    Err(_) => {
                        *rejected
                            .lock()
                            .expect("no panics")
                            .entry("unreachable".into())
                            .or_default() += 1;
                        submitted_at[index].store(u64::MAX, Ordering::Relaxed);
                    }
                }
                sent.fetch_add(1, Ordering::Relaxed);
                index += threads;
            }
        }));
    }
    while sent.load(Ordering::Relaxed) < schedule.len() {
        std::thread::sleep(Duration::from_millis(250));
        progress.set_position(sent.load(Ordering::Relaxed) as u64);
        let committed = commits.lock().expect("no panics").len();
        progress.set_message(format!("{committed} committed"));
    }
    for worker in workers {
        let _ = worker.join();
    }
    let load_end = watch.elapsed();
    // Let the last transfers commit.
    let drain = Stopwatch::start();
    while drain.elapsed() < Duration::from_secs(30) {
        let committed = schedule
            .iter()
            .filter(|item| commits.lock().expect("no panics").contains_key(&item.hash))
            .count();
        progress.set_message(format!("{committed} committed"));
        if committed as u64 >= total - rejected.lock().expect("no panics").values().sum::<u64>() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    progress.finish_and_clear();

    report(arguments, &schedule, &submitted_at, &commits, &rejected, started, load_end)
}

fn report(
    arguments: &DevnetBenchArgs,
    schedule: &[Scheduled],
    submitted_at: &[AtomicU64],
    commits: &Mutex<HashMap<Hash, Duration>>,
    rejected: &Mutex<HashMap<String, u64>>,
    started: Duration,
    load_end: Duration,
) -> anyhow::Result<ExitCode> {
    let commits = commits.lock().expect("no panics");
    let window_start = started + Duration::from_secs(arguments.warmup);
    let mut latencies_ms = Vec::new();
    let mut committed_in_window = 0u64;
    let mut committed_total = 0u64;
    for (item, submitted) in schedule.iter().zip(submitted_at) {
        let submitted = submitted.load(Ordering::Relaxed);
        let Some(committed) = commits.get(&item.hash) else { continue };
        committed_total += 1;
        if *committed >= window_start && *committed <= load_end {
            committed_in_window += 1;
        }
        let submitted = Duration::from_micros(submitted);
        if submitted != Duration::from_micros(u64::MAX) && submitted >= window_start {
            latencies_ms.push(committed.saturating_sub(submitted).as_secs_f64() * 1000.0);
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    let percentile = |p: f64| -> f64 {
        if latencies_ms.is_empty() {
            return f64::NAN;
        }
        let index = ((latencies_ms.len() as f64 - 1.0) * p).round() as usize;
        latencies_ms[index]
    };
    let window = load_end.saturating_sub(window_start).as_secs_f64();
    let rejected = rejected.lock().expect("no panics");
    println!(
        "pactum bench devnet: {} validators, {} transfers/s offered for {} s ({} s warm-up), {} senders",
        arguments.dir.display(),
        arguments.rate,
        arguments.duration,
        arguments.warmup,
        arguments.senders
    );
    let load_seconds = load_end.saturating_sub(started).as_secs_f64();
    println!(
        "  submitted:            {} in {load_seconds:.1} s ({:.0}/s achieved by the client)",
        schedule.len(),
        schedule.len() as f64 / load_seconds
    );
    println!("  refused by nodes:     {}", rejected.values().sum::<u64>());
    for (code, count) in rejected.iter() {
        println!("    {code}: {count}");
    }
    println!("  committed:            {committed_total}");
    println!(
        "  committed TPS:        {:.0} (over the {window:.0} s after warm-up)",
        committed_in_window as f64 / window
    );
    println!(
        "  commit latency (ms):  p50 {:.0}  p95 {:.0}  p99 {:.0}  max {:.0}  ({} samples)",
        percentile(0.50),
        percentile(0.95),
        percentile(0.99),
        latencies_ms.last().copied().unwrap_or(f64::NAN),
        latencies_ms.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Records when each block commits, from node 1's event stream.
fn subscribe(
    node: &NodeClient,
    commits: Arc<Mutex<HashMap<Hash, Duration>>>,
    watch: Stopwatch,
) -> anyhow::Result<()> {
    let url = format!("{}/v1/events", node.base());
    let response = ureq::get(&url).call().with_context(|| format!("subscribing to {url}"))?;
    let reader = BufReader::new(response.into_body().into_reader());
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                if event != "block" {
                    continue;
                }
                let Ok(block) = serde_json::from_str::<Value>(data.trim()) else { continue };
                let now = watch.elapsed();
                let mut commits = commits.lock().expect("no panics");
                for hash in block["transactions"].as_array().into_iter().flatten() {
                    if let Some(Ok(bytes)) = hash.as_str().map(|text| parse_hex_array(text, "hash"))
                    {
                        commits.insert(Hash(bytes), now);
                    }
                }
            }
        }
    });
    Ok(())
}

/// Issues client certificates from the first member's CA, enrols the senders and mints
/// them tokens; waits for all of it to commit.
fn fund_senders(
    directory: &std::path::Path,
    nodes: &[NodeClient],
    chain: &ChainId,
    issuer: &Keypair,
    token: Address,
    count: usize,
) -> anyhow::Result<Vec<Keypair>> {
    let authority = directory.join("organisations/member-1");
    let ca_certificate = std::fs::read_to_string(authority.join(CA_CERTIFICATE_FILE))?;
    let ca_key = std::fs::read_to_string(authority.join(CA_PRIVATE_KEY_FILE))?;
    let mut senders = Vec::with_capacity(count);
    let mut pending = Vec::new();
    let submit = |node: &NodeClient, transaction: &Transaction| -> anyhow::Result<Hash> {
        Ok(node.submit(transaction)?)
    };
    for index in 0..count {
        let name = format!("bench-sender-{index}");
        let request = IssueRequest {
            role: Role::Client,
            name: &name,
            subject_alt_names: &[],
            at: clock::unix_seconds(),
            days: 1,
        };
        let issued = issue(&ca_certificate, &ca_key, &request)?;
        let keypair = keypair_from_pem(&issued.private_key_pem)?;
        let certificate_der = certificates_from_pem(issued.certificate_pem.as_bytes())?.remove(0);
        let enrol = UnsignedTransaction {
            chain_id: chain.clone(),
            sender: keypair.public_key(),
            nonce: 0,
            gas_limit: 1_000_000,
            payload: Payload::EnrolIdentity { certificate_der },
        }
        .sign(&keypair);
        pending.push(submit(&nodes[index % nodes.len()], &enrol)?);
        senders.push(keypair);
    }
    let first_nonce = nodes[0].next_nonce(&issuer.public_key())?;
    for (nonce, sender) in (first_nonce..).zip(&senders) {
        let input = encode_arguments(&[
            format!("account:{}", sender.public_key()),
            "u128:1000000000".into(),
        ])?;
        let mint = signed_call(chain, issuer, nonce, token, "mint", &input, 10_000_000);
        pending.push(submit(&nodes[0], &mint)?);
    }
    for hash in pending {
        let answer = nodes[0].wait_committed(&hash, Duration::from_secs(120))?;
        anyhow::ensure!(
            answer["receipt"]["status"] == "success",
            "setup transaction failed: {answer}"
        );
    }
    Ok(senders)
}

/// Pre-signs `total` transfers: transfer `j` is from sender `j mod senders`, with that
/// sender's next nonce, to node `sender mod nodes`.
fn sign_transfers(
    senders: &[Keypair],
    chain: &ChainId,
    token: Address,
    total: u64,
    nodes: usize,
) -> Vec<Scheduled> {
    let recipient = format!("address:{}", "5a".repeat(32));
    let input = encode_arguments(&[recipient, "u128:1".into()]).expect("valid arguments");
    let mut nonces = vec![1u64; senders.len()];
    (0..total as usize)
        .map(|index| {
            let sender_index = index % senders.len();
            let sender = &senders[sender_index];
            let nonce = nonces[sender_index];
            nonces[sender_index] += 1;
            let transaction =
                signed_call(chain, sender, nonce, token, "transfer", &input, 10_000_000);
            Scheduled {
                node: sender_index % nodes,
                hash: transaction.hash(),
                bytes: transaction.to_bytes(),
            }
        })
        .collect()
}
