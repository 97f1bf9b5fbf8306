//! `pactum admin serve`: the admin service and web console of one member organisation
//! (`docs/console.md`, ADR 0023).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Serve the admin REST API and the web console over HTTPS until stopped; prints the
    /// console's address and a one-time login token.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The REST API of your organisation's validator.
    #[arg(long, default_value = pactum_client::DEFAULT_NODE)]
    node: String,
    /// The PEM private key of an identity enrolled under your organisation's admin
    /// certificate; it signs governance transactions. Mode 0600.
    #[arg(long)]
    admin_key: PathBuf,
    /// Where the login token and the audit log are kept.
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8800")]
    listen: SocketAddr,
    /// The console's certificate chain, PEM: an ECDSA P-256 key issued by your member CA
    /// (`pactum certs issue --role admin --key-type ecdsa-p256 --san HOST`).
    #[arg(long)]
    tls_certificate: PathBuf,
    /// The console certificate's private key, PEM.
    #[arg(long)]
    tls_key: PathBuf,
}

pub fn run(arguments: AdminArgs) -> anyhow::Result<ExitCode> {
    let AdminCommand::Serve(arguments) = arguments.command;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PACTUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the admin service's runtime")?;
    runtime.block_on(async move {
        let options = pactum_admin::AdminOptions {
            node: arguments.node,
            admin_key: arguments.admin_key,
            data_dir: arguments.data_dir.clone(),
            listen: arguments.listen,
            tls_certificate: arguments.tls_certificate,
            tls_key: arguments.tls_key,
        };
        let started = pactum_admin::start(options).await?;
        println!("console: https://{}/", started.address);
        println!(
            "login token: {} (also in {})",
            started.token,
            arguments.data_dir.join("login-token").display()
        );
        started.serve(stop_signal()).await.context("the admin service stopped")?;
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}

/// Completes on SIGTERM or Ctrl-C.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
