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
    /// Frames/s and MB/s between two validators over loopback mutual TLS.
    Transport {
        /// Frames to send.
        #[arg(long, default_value_t = 200_000)]
        frames: u64,
        /// Payload bytes per frame.
        #[arg(long, default_value_t = 256)]
        bytes: usize,
    },
    /// Committed TPS and latency of a running devnet (not built yet).
    Devnet {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        arguments: Vec<String>,
    },
}

pub fn run(arguments: BenchArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        BenchCommand::Storage { blocks, transactions, dir } => storage(blocks, transactions, dir),
        BenchCommand::Crypto { signatures, batch } => crypto(signatures, batch),
        BenchCommand::Transport { frames, bytes } => transport(frames, bytes),
        BenchCommand::Devnet { .. } => {
            eprintln!(
                "pactum bench devnet: not built yet. It needs the devnet (issue 6); nothing was done."
            );
            Ok(ExitCode::from(2))
        }
    }
}

fn per_second(count: f64, elapsed: Duration) -> f64 {
    count / elapsed.as_secs_f64()
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
