//! The Pactum admin service: the admin REST API and the web console of one member
//! organisation (`docs/console.md`, ADR 0023).
//!
//! It talks to validators only through their REST API (`pactum-client`), and it never
//! links the runtime, storage or consensus crates. It holds the organisation's admin key
//! and signs governance transactions with it when a logged-in operator asks; every such
//! action is written to the audit log first.
//!
//! - [`session`]: the one-time login token, session cookies and CSRF tokens;
//! - [`audit`]: the audit log and its CSV export;
//! - [`identities`]: the client identities the console acts as besides the admin key;
//! - [`api`]: the admin REST API (`admin/openapi.json`);
//! - `assets/`: the console (HTML, CSS and one script, embedded in the binary).

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod events;
pub mod identities;
pub mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pactum_client::NodeClient;
use pactum_types::crypto::Keypair;
use thiserror::Error;

/// How to run the admin service.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// The REST API of this organisation's validator, for example `http://127.0.0.1:8701`
    /// (for `https://`, `PACTUM_API_CA_CERT` names the CA to trust).
    pub node: String,
    /// The PEM private key of an identity enrolled under this organisation's `admin`
    /// certificate. Readable by its owner only (mode 0600).
    pub admin_key: PathBuf,
    /// Where the login token and the audit log are kept.
    pub data_dir: PathBuf,
    /// The HTTPS address to listen on.
    pub listen: SocketAddr,
    /// The console's certificate chain (PEM; an ECDSA P-256 key, which browsers accept)
    /// and its private key.
    pub tls_certificate: PathBuf,
    pub tls_key: PathBuf,
}

#[derive(Debug, Error)]
pub enum AdminError {
    #[error(
        "the admin key {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyExposed { path: String, mode: u32 },
    #[error("cannot read the admin key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("cannot use the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("the console's TLS certificate or key: {0}")]
    Tls(#[from] pactum_http::TlsSetupError),
    #[error("the node: {reason}")]
    Node { reason: String },
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
}

/// The service's shared state.
pub struct Console {
    pub(crate) node: NodeClient,
    pub(crate) keypair: Arc<Keypair>,
    pub(crate) sessions: session::Sessions,
    pub(crate) audit: audit::AuditLog,
    pub(crate) identities: identities::Identities,
    /// Event streams passed through at once (`events::STREAMS_MAX`).
    pub(crate) event_streams: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Console")
            .field("node", &self.node.base())
            .field("admin_key", &self.keypair.public_key())
            .finish_non_exhaustive()
    }
}

/// A running admin service, before it is served.
pub struct Started {
    pub address: SocketAddr,
    /// The first login token (also in `DATA_DIR/login-token`).
    pub token: String,
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Arc<rustls::ServerConfig>,
}

/// Checks the options, loads the key, opens the audit log, binds the listener.
pub async fn start(options: AdminOptions) -> Result<Started, AdminError> {
    let keypair = load_admin_key(&options.admin_key)?;
    let data_dir = &options.data_dir;
    let data_error = |source| AdminError::DataDir { path: data_dir.display().to_string(), source };
    std::fs::create_dir_all(data_dir).map_err(data_error)?;
    let (sessions, token) =
        session::Sessions::new(data_dir.join("login-token")).map_err(data_error)?;
    let audit = audit::AuditLog::open(data_dir.join("audit.jsonl")).map_err(data_error)?;
    let identities =
        identities::Identities::open(data_dir.join("identities")).map_err(data_error)?;
    let tls = pactum_http::tls_config(&options.tls_certificate, &options.tls_key, None)?;
    let node = NodeClient::connect(&options.node)
        .map_err(|error| AdminError::Node { reason: error.to_string() })?;
    let console = Arc::new(Console {
        node,
        keypair: Arc::new(keypair),
        sessions,
        audit,
        identities,
        event_streams: Arc::new(tokio::sync::Semaphore::new(events::STREAMS_MAX)),
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| AdminError::Listen { address: options.listen, source })?;
    let address = listener
        .local_addr()
        .map_err(|source| AdminError::Listen { address: options.listen, source })?;
    Ok(Started { address, token, listener, router: api::router(console), tls })
}

impl std::fmt::Debug for Started {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Started").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Started {
    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let options = pactum_http::ServeOptions { tls: Some(self.tls), ..Default::default() };
        pactum_http::serve_router(self.listener, self.router, options, shutdown).await
    }
}

/// Writes `contents` to `path` with `mode` (0600 for a secret), synced, through a
/// temporary file renamed over it, so a reader never sees half of it.
pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// The admin key, refused if others may read its file.
fn load_admin_key(path: &Path) -> Result<Keypair, AdminError> {
    use std::os::unix::fs::PermissionsExt as _;
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path)
        .map_err(|error| AdminError::Key { path: shown.clone(), reason: error.to_string() })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AdminError::KeyExposed { path: shown, mode });
    }
    pactum_client::load_key(path)
        .map_err(|error| AdminError::Key { path: shown, reason: error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("key.pem");
        std::fs::write(&path, "not a key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_admin_key(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = load_admin_key(&path).unwrap_err().to_string();
        assert!(error.contains("cannot read the admin key"), "{error}");
    }
}
