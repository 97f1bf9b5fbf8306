//! `pactum bench`: commands that measure Pactum's building blocks and print figures.
//! They never assert a speed; `docs/benchmarks.md` records what they printed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use pactum_storage::builder::ChainBuilder;
use pactum_storage::{BlockCommit, Store};
use pactum_types::crypto::{SignedMessage, domain, verify_batch, verify_single};
use pactum_types::hash::sha3_256;
use pactum_types::{ChainId, Keypair, Signature};

use crate::clock::Stopwatch;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Blocks committed per second to RocksDB, each one synced `WriteBatch`.
    Storage {
        /// Blocks to commit (after building and signing them, which is not timed).
        #[arg(long, default_value_t = 30)]
        blocks: u64,
        /// Transactions per block.
        #[arg(long, default_value_t = 1000)]
        transactions: usize,
        /// Where to put the store; a temporary directory by default.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Ed25519 verifications per second (single and batched) and SHA3-256 throughput.
    Crypto {
        /// Signatures to verify in each measurement.
        #[arg(long, default_value_t = 20_000)]
        signatures: usize,
        /// Signatures per batch.
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// How long the VM takes to spend a transaction's gas in a loop that does nothing
    /// else (the cheapest gas there is): what bounds a block's execution time.
    Vm {
        /// Gas for each call.
        #[arg(long, default_value_t = pactum_types::limits::TRANSACTION_GAS_MAX)]
        gas: u64,
        /// Calls to time.
        #[arg(long, default_value_t = 3)]
        calls: u32,
    },
    /// Frames/s and MB/s between two validators over loopback mutual TLS.
    Transport {
        /// Frames to send.
        #[arg(long, default_value_t = 200_000)]
        frames: u64,
        /// Payload bytes per frame.
        #[arg(long, default_value_t = 256)]
        bytes: usize,
    },
    /// Batches and transactions ordered per second by PBFT alone: n replicas in this
    /// process, real Ed25519 on every message, no network, no execution.
    Consensus {
        /// Replicas (n = 3f + 1 or more).
        #[arg(long, default_value_t = 4)]
        replicas: u16,
        /// Batches to order.
        #[arg(long, default_value_t = 2_000)]
        batches: u64,
        /// Transactions per batch.
        #[arg(long, default_value_t = 500)]
        transactions: usize,
        /// Bytes per transaction.
        #[arg(long, default_value_t = 200)]
        transaction_bytes: usize,
    },
    /// Committed token transfers per second and commit latency of a running devnet:
    /// open-loop load of pre-signed transfers at a set rate, spread over every node.
    Devnet(crate::bench_devnet::DevnetBenchArgs),
    /// The devnet under load while validators are killed with SIGKILL and restarted:
    /// counts accepted, committed, lost and duplicated transfers, checks that the
    /// validators agree and that every data directory passes `pactum chain verify`.
    Chaos(crate::bench_chaos::ChaosArgs),
}

pub fn run(arguments: BenchArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        BenchCommand::Storage { blocks, transactions, dir } => storage(blocks, transactions, dir),
        BenchCommand::Crypto { signatures, batch } => crypto(signatures, batch),
        BenchCommand::Vm { gas, calls } => vm(gas, calls),
        BenchCommand::Transport { frames, bytes } => transport(frames, bytes),
        BenchCommand::Consensus { replicas, batches, transactions, transaction_bytes } => {
            consensus(replicas, batches, transactions, transaction_bytes)
        }
        BenchCommand::Devnet(arguments) => crate::bench_devnet::run(&arguments),
        BenchCommand::Chaos(arguments) => crate::bench_chaos::run(&arguments),
    }
}

fn per_second(count: f64, elapsed: Duration) -> f64 {
    count / elapsed.as_secs_f64()
}

fn vm(gas: u64, calls: u32) -> anyhow::Result<ExitCode> {
    use pactum_vm::{BlockContext, CallRequest, DeployRequest, MemoryState, Vm, VmOptions};
    anyhow::ensure!(gas > 0 && calls > 0, "--gas and --calls must be positive");
    let code = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "pactum_init"))
             (func (export "pactum_call") (loop $spin (br $spin))))"#,
    )?;
    let vm = Vm::new(VmOptions::default())?;
    let mut state = std::sync::Arc::new(MemoryState::new());
    let block =
        BlockContext { height: 1, timestamp_ms: 1_767_225_600_000, ..BlockContext::default() };
    let deployer = pactum_types::Address([0xa1; 32]);
    let deploy =
        DeployRequest { deployer, nonce: 0, code: &code, init_input: &[], gas_limit: 10_000_000 };
    let deployed = vm.deploy(state.clone(), &block, &deploy)?;
    anyhow::ensure!(
        deployed.status == pactum_vm::Status::Success,
        "the spinner did not deploy: {:?}",
        deployed.status
    );
    let contract = deployed.contract;
    std::sync::Arc::make_mut(&mut state).apply(&deployed.write_set);
    let mut times = Vec::new();
    for _ in 0..calls {
        let request =
            CallRequest { caller: deployer, contract, method: "spin", input: &[], gas_limit: gas };
        let stopwatch = Stopwatch::start();
        let execution = vm.call(state.clone(), &block, &request)?;
        times.push(stopwatch.elapsed());
        anyhow::ensure!(execution.gas_used == gas, "the spinner used {} gas", execution.gas_used);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("vm: a loop spending {gas} gas, {calls} calls");
    println!("  median time (ms):    {:.0}", median.as_secs_f64() * 1000.0);
    println!("  Mgas/s:              {:.0}", per_second(gas as f64, median) / 1e6);
    Ok(ExitCode::SUCCESS)
}

fn storage(blocks: u64, transactions: usize, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(blocks > 0 && transactions > 0, "--blocks and --transactions must be positive");
    anyhow::ensure!(
        transactions <= pactum_types::limits::BLOCK_TRANSACTIONS_MAX,
        "--transactions is over the block limit of {}",
        pactum_types::limits::BLOCK_TRANSACTIONS_MAX
    );
    let temporary;
    let path = match dir {
        Some(path) => path,
        None => {
            temporary = tempfile::tempdir().context("cannot create a temporary directory")?;
            temporary.path().join("store")
        }
    };
    let mut store =
        Store::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let chain_id = ChainId::new("pactum-bench")?;
    let mut builder = ChainBuilder::new(chain_id, 4, 256, 1).resume(&store)?;
    println!("building and signing {blocks} blocks of {transactions} transactions (not timed)...");
    // Blocks are built one ahead: block h+1 needs the state root of block h, so build
    // block by block but time only the commits.
    let mut commit_time = Duration::ZERO;
    let mut latencies = Vec::with_capacity(blocks as usize);
    for _ in 0..blocks {
        let built = builder.next_block(transactions);
        let stopwatch = Stopwatch::start();
        let state_root = store.commit_block(BlockCommit {
            block: &built.block,
            receipts: &built.receipts,
            state_changes: &built.state_changes,
        })?;
        let elapsed = stopwatch.elapsed();
        commit_time += elapsed;
        latencies.push(elapsed);
        builder.committed(&built, state_root);
    }
    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() - 1) * p / 100];
    println!("storage: {blocks} blocks x {transactions} transactions, one synced WriteBatch each");
    println!("  blocks/s:            {:.1}", per_second(blocks as f64, commit_time));
    println!(
        "  transactions/s:      {:.0}",
        per_second((blocks * transactions as u64) as f64, commit_time)
    );
    println!(
        "  commit latency (ms): p50 {:.2}  p99 {:.2}",
        percentile(50).as_secs_f64() * 1000.0,
        percentile(99).as_secs_f64() * 1000.0
    );
    Ok(ExitCode::SUCCESS)
}

fn crypto(signatures: usize, batch: usize) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(signatures > 0 && batch > 0, "--signatures and --batch must be positive");
    let keys: Vec<Keypair> = (0..64u8).map(|index| Keypair::from_seed(&[index; 32])).collect();
    let public_keys: Vec<_> = keys.iter().map(Keypair::public_key).collect();
    let messages: Vec<Vec<u8>> = (0..signatures)
        .map(|index| [domain::TRANSACTION, &(index as u64).to_be_bytes(), &[0u8; 120]].concat())
        .collect();
    let signed: Vec<Signature> = messages
        .iter()
        .enumerate()
        .map(|(index, message)| keys[index % keys.len()].sign(&[], message))
        .collect();
    let items: Vec<SignedMessage<'_>> = messages
        .iter()
        .enumerate()
        .map(|(index, message)| SignedMessage {
            public_key: &public_keys[index % keys.len()],
            message,
            signature: &signed[index],
        })
        .collect();

    let stopwatch = Stopwatch::start();
    let valid = items.iter().filter(|item| verify_single(item)).count();
    let single = stopwatch.elapsed();
    anyhow::ensure!(valid == signatures, "a benchmark signature failed to verify");

    let stopwatch = Stopwatch::start();
    for chunk in items.chunks(batch) {
        verify_batch(chunk).map_err(|failed| anyhow::anyhow!("batch rejected items {failed:?}"))?;
    }
    let batched = stopwatch.elapsed();

    let data = vec![0xa5u8; 1 << 20];
    let rounds = 256;
    let stopwatch = Stopwatch::start();
    let mut digest = sha3_256(&data);
    for _ in 1..rounds {
        digest = sha3_256(&[&digest.0[..], &data[32..]].concat());
    }
    let hashing = stopwatch.elapsed();

    let small = stopwatch_small_hashes();

    println!("crypto: one thread");
    println!("  ed25519 verify, single:       {:.0}/s", per_second(signatures as f64, single));
    println!(
        "  ed25519 verify, batch of {batch:<4} {:.0}/s",
        per_second(signatures as f64, batched)
    );
    println!(
        "  sha3-256, 1 MiB messages:     {:.1} MB/s",
        per_second((rounds * data.len()) as f64 / 1e6, hashing)
    );
    println!("  sha3-256, 200-byte messages:  {:.0} hashes/s", small);
    Ok(ExitCode::SUCCESS)
}

/// Hashes per second for transaction-sized messages, the common case on the hot path.
fn stopwatch_small_hashes() -> f64 {
    let count = 200_000;
    let mut message = [0u8; 200];
    let stopwatch = Stopwatch::start();
    for index in 0..count {
        message[..8].copy_from_slice(&(index as u64).to_be_bytes());
        let digest = sha3_256(&message);
        message[8] ^= digest.0[0];
    }
    per_second(count as f64, stopwatch.elapsed())
}

fn transport(frames: u64, bytes: usize) -> anyhow::Result<ExitCode> {
    use pactum_certs::authority::{self, IssueRequest};
    use pactum_certs::tls::NodeIdentity;
    use pactum_certs::{Role, TrustStore};
    use pactum_net::{Peer, Transport, TransportConfig, TransportSettings};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;

    anyhow::ensure!(frames > 0 && bytes >= 8, "--frames must be positive and --bytes at least 8");
    let now = crate::clock::unix_seconds();
    let authority = authority::create_authority("Bench Org", now - 60, 1)?;
    let trust = Arc::new(TrustStore::new());
    trust.add_authority(&CertificateDer::from_pem_slice(authority.certificate_pem.as_bytes())?)?;
    let identity = |name: &str| -> anyhow::Result<NodeIdentity> {
        let request =
            IssueRequest { role: Role::Validator, name, subject_alt_names: &[], at: now, days: 1 };
        let issued =
            authority::issue(&authority.certificate_pem, &authority.private_key_pem, &request)?;
        Ok(NodeIdentity::from_der(
            CertificateDer::from_pem_slice(issued.certificate_pem.as_bytes())?,
            PrivateKeyDer::from_pem_slice(issued.private_key_pem.as_bytes())?,
        )?)
    };
    let (source_identity, target_identity) = (identity("source")?, identity("target")?);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let settings = TransportSettings::default();
        let target_key = target_identity.info.public_key;
        let source_key = source_identity.info.public_key;
        let (target, mut inbound) = Transport::start(TransportConfig {
            listen_address: "127.0.0.1:0".parse()?,
            identity: target_identity,
            trust: Arc::clone(&trust),
            validators: vec![],
            settings: settings.clone(),
        })
        .await?;
        let target_peer =
            Peer { public_key: target_key, address: target.local_address().to_string() };
        let (source, _) = Transport::start(TransportConfig {
            listen_address: "127.0.0.1:0".parse()?,
            identity: source_identity,
            trust,
            validators: vec![target_peer.clone()],
            settings,
        })
        .await?;
        let source_peer =
            Peer { public_key: source_key, address: source.local_address().to_string() };
        target.set_validators(vec![target_peer, source_peer]);
        // Warm up: one frame through, so the handshake is not timed.
        source.send_waiting(&target_key, vec![0; bytes]).await?;
        inbound.recv().await.ok_or_else(|| anyhow::anyhow!("the transport stopped"))?;

        let stopwatch = Stopwatch::start();
        let sender = tokio::spawn(async move {
            for index in 0..frames {
                let mut payload = vec![0u8; bytes];
                payload[..8].copy_from_slice(&index.to_be_bytes());
                source.send_waiting(&target_key, payload).await?;
            }
            anyhow::Ok(source)
        });
        for expected in 0..frames {
            let frame =
                inbound.recv().await.ok_or_else(|| anyhow::anyhow!("the transport stopped"))?;
            let index = u64::from_be_bytes(frame.payload[..8].try_into()?);
            anyhow::ensure!(
                index == expected,
                "frame {index} arrived where {expected} was expected"
            );
        }
        let elapsed = stopwatch.elapsed();
        let _source = sender.await??;
        println!(
            "transport: {frames} frames of {bytes} bytes, one direction, loopback TLS 1.3 mTLS"
        );
        println!("  frames/s: {:.0}", per_second(frames as f64, elapsed));
        println!("  MB/s:     {:.1}", per_second((frames * bytes as u64) as f64 / 1e6, elapsed));
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs n replicas in one thread, passing messages through a FIFO queue; the primary
/// proposes batches as fast as its watermark window allows, and every delivered batch is
/// reported executed at once. Every message is signed and verified with Ed25519.
fn consensus(
    replicas: u16,
    batches: u64,
    transactions: usize,
    transaction_bytes: usize,
) -> anyhow::Result<ExitCode> {
    use std::collections::VecDeque;

    use pactum_consensus::{Config, Ed25519Crypto, Effect, Input, Replica, Sequence};

    anyhow::ensure!(
        batches > 0 && transactions > 0,
        "--batches and --transactions must be positive"
    );
    let batch_bytes = transactions * transaction_bytes.max(8);
    anyhow::ensure!(
        batch_bytes <= pactum_types::limits::BLOCK_BODY_BYTES_MAX,
        "a batch of {batch_bytes} bytes is over the block body limit of {}",
        pactum_types::limits::BLOCK_BODY_BYTES_MAX
    );
    let config = Config {
        members: (0..replicas).collect(),
        epoch: 0,
        chain: sha3_256(b"pactum bench consensus"),
        start: Sequence::ZERO,
        start_digest: pactum_types::Hash::ZERO,
        checkpoint_interval: 16,
        watermark_window: 64,
        retransmit_interval_ms: 1_000,
        request_timeout_ms: 5_000,
        view_change_timeout_ms: 5_000,
        view_change_timeout_max_ms: 60_000,
        batch_requests_max: transactions,
        batch_bytes_max: batch_bytes.max(1),
        batch_timeout_ms: 10,
        batch_weight_max: u64::MAX,
        weight_ahead_max: u64::MAX,
        timestamp_skew_max_ms: 10_000,
        delivery_backlog_max: pactum_types::limits::EXECUTION_BACKLOG_BLOCKS_MAX,
        mutation: None,
    };
    config.validate()?;
    let keypairs: Vec<Keypair> =
        (0..replicas).map(|id| Keypair::from_seed(&sha3_256(&id.to_be_bytes()).0)).collect();
    let keys: Vec<_> = keypairs.iter().map(Keypair::public_key).collect();
    let mut nodes = Vec::new();
    for (id, keypair) in (0..replicas).zip(keypairs) {
        let crypto = Ed25519Crypto::new(keypair, keys.clone());
        nodes.push(Replica::new(id, config.clone(), crypto, &[], Sequence(0))?);
    }
    // Distinct requests, built before timing; the primary cuts them into full batches.
    let requests: Vec<Vec<u8>> = (0..batches * transactions as u64)
        .map(|index| {
            let mut request = vec![0u8; transaction_bytes.max(8)];
            request[..8].copy_from_slice(&index.to_be_bytes());
            request
        })
        .collect();
    println!(
        "consensus: {replicas} replicas, {batches} batches of {transactions} x {transaction_bytes} B, real Ed25519"
    );
    let mut queue: VecDeque<(u16, Input)> = VecDeque::new();
    let mut delivered = vec![0u64; usize::from(replicas)];
    let (mut messages, mut signatures_verified) = (0u64, 0u64);
    let stopwatch = Stopwatch::start();
    let mut next = 0usize;
    while delivered.iter().any(|count| *count < batches) {
        // Keep the primary fed: one new batch whenever the queue drains.
        if queue.is_empty() {
            anyhow::ensure!(
                next < requests.len(),
                "the cluster stalled before ordering every batch"
            );
            for request in &requests[next..(next + transactions).min(requests.len())] {
                queue.push_back((0, Input::Request { request: request.clone() }));
            }
            next = (next + transactions).min(requests.len());
        }
        while let Some((id, input)) = queue.pop_front() {
            if matches!(input, Input::Message(_)) {
                messages += 1;
                signatures_verified += 1;
            }
            for effect in nodes[usize::from(id)].step(input) {
                match effect {
                    Effect::Broadcast(message) => {
                        for to in (0..replicas).filter(|to| *to != id) {
                            queue.push_back((to, Input::Message(message.clone())));
                        }
                    }
                    Effect::Send { to, message } => queue.push_back((to, Input::Message(message))),
                    Effect::Deliver(delivery) => {
                        delivered[usize::from(id)] += 1;
                        // The batch digest stands in for the state digest: every replica
                        // computes the same one, so checkpoints become stable.
                        queue.push_back((
                            id,
                            Input::Executed {
                                sequence: delivery.sequence,
                                state_digest: delivery.certificate.digest,
                            },
                        ));
                    }
                    _ => {}
                }
            }
            // Feed the primary a window's worth ahead of what it delivered, so several
            // sequence numbers are in flight but its request queue stays bounded.
            let in_flight = next - delivered[0] as usize * transactions;
            if id == 0 && next < requests.len() && in_flight < 64 * transactions {
                for request in &requests[next..(next + transactions).min(requests.len())] {
                    queue.push_back((0, Input::Request { request: request.clone() }));
                }
                next = (next + transactions).min(requests.len());
            }
        }
    }
    let elapsed = stopwatch.elapsed();
    let ordered = batches as f64;
    println!("  batches/s:           {:.0}", per_second(ordered, elapsed));
    println!("  transactions/s:      {:.0}", per_second(ordered * transactions as f64, elapsed));
    println!(
        "  messages:            {messages} ({:.0}/s verified, {:.1} per batch per replica)",
        per_second(signatures_verified as f64, elapsed),
        messages as f64 / ordered / f64::from(replicas)
    );
    println!("  elapsed:             {:.2} s on one thread", elapsed.as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
