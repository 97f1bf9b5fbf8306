//! `pactum node run`: one validator process, until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use pactum_runtime::devnet::NodeConfig;
use pactum_runtime::{ByzantineMode, Genesis, Node, NodeOptions};

#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

/// Test-only misbehaviours a validator can be started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ByzantineArgument {
    /// Every PBFT message carries a corrupted signature.
    BadSignatures,
    /// As primary, a different well-formed batch to each backup.
    Equivocate,
    /// As primary, orders transactions from keys the ledger never enrolled.
    IncludeUnenrolled,
    /// Floods the other validators with validly signed, useless COMMITs.
    FloodUseless,
}

impl ByzantineArgument {
    pub fn name(self) -> &'static str {
        match self {
            ByzantineArgument::BadSignatures => "bad-signatures",
            ByzantineArgument::Equivocate => "equivocate",
            ByzantineArgument::IncludeUnenrolled => "include-unenrolled",
            ByzantineArgument::FloodUseless => "flood-useless",
        }
    }

    fn mode(self) -> ByzantineMode {
        match self {
            ByzantineArgument::BadSignatures => ByzantineMode::BadSignatures,
            ByzantineArgument::Equivocate => ByzantineMode::Equivocate,
            ByzantineArgument::IncludeUnenrolled => ByzantineMode::IncludeUnenrolled,
            ByzantineArgument::FloodUseless => ByzantineMode::FloodUseless,
        }
    }
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Run a validator: PBFT over mutual TLS, the mempool, the executor and the REST API.
    Run {
        /// The node's configuration (`node.json`: genesis, data directory, certificate,
        /// key and listen addresses).
        #[arg(long)]
        config: PathBuf,
        /// Test-only misbehaviour for the end-to-end Byzantine test.
        #[arg(long, value_enum, hide = true)]
        byzantine_for_tests: Option<ByzantineArgument>,
        /// Test-only: start even with a certificate the consortium refuses.
        #[arg(long, hide = true)]
        skip_own_certificate_check_for_tests: bool,
        /// Test-only: the executor executes nothing while this file exists.
        #[arg(long, hide = true)]
        execution_pause_for_tests: Option<PathBuf>,
    },
}

pub fn run(arguments: NodeArgs) -> anyhow::Result<ExitCode> {
    let NodeCommand::Run {
        config,
        byzantine_for_tests,
        skip_own_certificate_check_for_tests,
        execution_pause_for_tests,
    } = arguments.command;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PACTUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).init();
    let node_config = NodeConfig::load(&config)?;
    let genesis = Genesis::load(&node_config.genesis)
        .with_context(|| format!("reading the genesis {}", node_config.genesis.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("pactum-io")
        .build()
        .context("starting the async runtime")?;
    // The REST API runs on a runtime of its own, so no load on it can take the threads
    // that carry the transport and consensus.
    let api_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("pactum-api")
        .build()
        .context("starting the REST API's runtime")?;
    let api = api_runtime.handle().clone();
    runtime.block_on(async move {
        let api_listen = node_config.api_listen.clone();
        let mut serve_options = pactum_api::ServeOptions::default();
        if let Some(tls) = &node_config.api_tls {
            serve_options.tls = Some(
                pactum_api::tls_config(
                    &tls.certificate,
                    &tls.private_key,
                    tls.client_ca_certificates.as_deref(),
                )
                .context("setting up TLS for the REST API")?,
            );
        }
        if let Some(rate) = node_config.api_requests_per_second_per_address {
            serve_options.requests_per_second_per_address = std::num::NonZeroU32::new(rate)
                .context("api_requests_per_second_per_address must be at least 1")?;
        }
        let scheme = if serve_options.tls.is_some() { "https" } else { "http" };
        let options = NodeOptions {
            config: node_config,
            genesis,
            byzantine_for_tests: byzantine_for_tests.map(ByzantineArgument::mode),
            skip_own_certificate_check_for_tests,
            execution_pause_for_tests,
        };
        let node = Node::start(options).await.context("starting the validator")?;
        let listener = std::net::TcpListener::bind(&api_listen)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .with_context(|| format!("binding the REST API to {api_listen}"))?;
        let handle = node.handle();
        println!("pactum node {} is running; REST API on {scheme}://{api_listen}", handle.name());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = api.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            pactum_api::serve(listener, handle, serve_options, async move {
                let _ = stopped.await;
            })
            .await
        });
        wait_for_signal(&node.handle()).await;
        tracing::info!("shutting down");
        let _ = stop.send(());
        // Open event streams never end by themselves: give connections a moment, then go.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), server).await;
        node.shutdown().await;
        anyhow::Ok(())
    })?;
    api_runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGTERM or Ctrl-C. Meanwhile each SIGHUP reloads the node's certificate
/// (a renewal for the same key), logging whether it was taken.
async fn wait_for_signal(handle: &pactum_runtime::NodeHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut hangup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hangup.recv() => {
                let handle = handle.clone();
                // Reading files and parsing certificates is blocking work.
                let _ = tokio::task::spawn_blocking(move || handle.reload_certificate()).await;
            }
        }
    }
}
