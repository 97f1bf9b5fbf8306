//! Serving an axum router over HTTP or HTTPS, as the node's REST API and the admin
//! service both do: a bound on open connections (in all and per client address), a
//! per-address request rate, a deadline for the TLS handshake and for each request's
//! headers (hyper's header-read timeout), optional TLS with optional client certificates,
//! and a graceful shutdown.
//!
//! Past the connection bounds a new connection is closed at once, before any TLS or HTTP
//! work, so idle and slow-loris connections cost a file descriptor and nothing else. The
//! request-level limits (concurrency, bodies, timeouts, event streams) are each router's.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use pactum_types::limits;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// An error answer: `{"code", "message"}` with an HTTP status, as the REST API and the
/// admin API give them.
#[derive(Debug)]
pub struct ApiError {
    status: axum::http::StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(
        status: axum::http::StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(axum::http::StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(axum::http::StatusCode::NOT_FOUND, code, message)
    }

    /// A failure inside the server, logged.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "a request failed inside the server");
        Self::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string())
    }

    pub fn status(&self) -> axum::http::StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// `body` parsed as JSON, or a 400 `malformed_json` saying where it went wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request("malformed_json", error.to_string()))
}

/// A JSON request body whose every failure is an [`ApiError`]: 400 `malformed_json`, 400
/// `bad_body`, or 413 `body_too_large` past the router's body limit, rather than axum's
/// plain-text rejections. The content type is not checked: the body must parse.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        use axum::http::StatusCode;
        let body = axum::body::Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    rejection.body_text(),
                )
            } else {
                ApiError::bad_request("bad_body", rejection.body_text())
            }
        })?;
        parse_json(&body).map(JsonBody)
    }
}

/// How a router is served.
#[derive(Clone)]
pub struct ServeOptions {
    /// Serve HTTPS with this configuration (built by [`tls_config`]); plain HTTP if `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The request rate one client address may sustain, with a burst of as many.
    pub requests_per_second_per_address: NonZeroU32,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            requests_per_second_per_address: NonZeroU32::new(
                limits::API_REQUESTS_PER_SECOND_PER_ADDRESS_DEFAULT,
            )
            .expect("the default rate is positive"),
        }
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServeOptions")
            .field("tls", &self.tls.is_some())
            .field("requests_per_second_per_address", &self.requests_per_second_per_address)
            .finish()
    }
}

/// One token bucket per client address (governor's GCRA).
type AddressLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

/// The address a request came from, set by the accept loop.
#[derive(Debug, Clone, Copy)]
struct ClientAddress(IpAddr);

/// Answers 429 `rate_limited` once the client's address is past its rate.
async fn rate_limit(
    axum::extract::State(limiter): axum::extract::State<Arc<AddressLimiter>>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let address = request.extensions().get::<ClientAddress>().map(|client| client.0);
    if let Some(address) = address
        && limiter.check_key(&address).is_err()
    {
        let body = serde_json::json!({
            "code": "rate_limited",
            "message": format!(
                "{address} is sending more requests than this node serves one address; retry shortly"
            ),
        });
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, "1")],
            axum::Json(body),
        )
            .into_response();
    }
    next.run(request).await
}

/// The open connections of each client address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address; uncounted when dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    address: IpAddr,
}

impl PerAddress {
    fn take(table: &Arc<PerAddress>, address: IpAddr) -> Option<AddressSlot> {
        let mut open = table.0.lock().expect("the connection table is never poisoned");
        let count = open.entry(address).or_default();
        if *count >= limits::API_CONNECTIONS_PER_ADDRESS_MAX {
            return None;
        }
        *count += 1;
        Some(AddressSlot { table: Arc::clone(table), address })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().expect("the connection table is never poisoned");
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// What a connection holds while it is open.
struct Held {
    _permit: OwnedSemaphorePermit,
    _slot: AddressSlot,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests
/// finish (event streams are told to stop) and returns.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits::API_CONNECTIONS_MAX));
    let per_address = Arc::new(PerAddress::default());
    let acceptor = options.tls.map(TlsAcceptor::from);
    let limiter: Arc<AddressLimiter> = Arc::new(governor::RateLimiter::keyed(
        governor::Quota::per_second(options.requests_per_second_per_address),
    ));
    // Outermost: a client past its rate costs one map lookup.
    let router =
        router.layer(axum::middleware::from_fn_with_state(Arc::clone(&limiter), rate_limit));
    let (stop, stopping) = watch::channel(false);
    let mut accepted_since_sweep = 0u32;
    tokio::pin!(shutdown);
    loop {
        let (stream, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // wait a moment rather than spin.
                    tracing::warn!(%error, "the REST API could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::debug!(%address, "REST connection refused: the node holds its maximum");
            continue;
        };
        let Some(slot) = PerAddress::take(&per_address, address.ip()) else {
            tracing::debug!(%address, "REST connection refused: that address holds its maximum");
            continue;
        };
        let held = Held { _permit: permit, _slot: slot };
        // Forget the buckets of addresses that went quiet, now and then.
        accepted_since_sweep += 1;
        if accepted_since_sweep >= 1024 {
            accepted_since_sweep = 0;
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let router = router.clone();
        let acceptor = acceptor.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            serve_connection(stream, address, router, acceptor, stopping, held).await;
        });
    }
    let _ = stop.send(true);
    // Wait for the connections to finish (each holds a permit).
    let _ = connections.acquire_many(limits::API_CONNECTIONS_MAX as u32).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    address: SocketAddr,
    router: Router,
    acceptor: Option<TlsAcceptor>,
    stopping: watch::Receiver<bool>,
    held: Held,
) {
    let _ = stream.set_nodelay(true);
    match acceptor {
        None => serve_http(TokioIo::new(stream), address, router, stopping).await,
        Some(acceptor) => {
            let handshake = Duration::from_millis(limits::API_HANDSHAKE_TIMEOUT_MS);
            match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    serve_http(TokioIo::new(stream), address, router, stopping).await;
                }
                Ok(Err(error)) => tracing::debug!(%address, %error, "REST TLS handshake failed"),
                Err(_) => tracing::debug!(%address, "REST TLS handshake timed out"),
            }
        }
    }
    drop(held);
}

async fn serve_http<I>(
    io: TokioIo<I>,
    address: SocketAddr,
    router: Router,
    mut stopping: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let client = ClientAddress(address.ip());
    let service =
        TowerToHyperService::new(router.map_request(move |request: Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(client);
            request
        }));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits::API_HEADER_READ_TIMEOUT_MS))
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "a REST connection ended with an error");
                }
                break;
            }
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Why the REST API's TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{what} in {path}: {reason}")]
    Pem { what: &'static str, path: String, reason: String },
    #[error("the TLS configuration is refused: {0}")]
    Rustls(String),
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path)
        .map_err(|source| TlsSetupError::Read { path: path.display().to_string(), source })
}

/// A TLS configuration for the API: the server's certificate chain and private key (PEM;
/// ECDSA P-256 for browsers, which refuse Ed25519 server certificates; any key rustls
/// takes for other clients) and, if `client_cas` is given, the CA certificates a client
/// certificate must chain to (then every client must present one).
pub fn tls_config(
    certificate: &std::path::Path,
    private_key: &std::path::Path,
    client_cas: Option<&std::path::Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pem = |what, path: &std::path::Path, reason: String| TlsSetupError::Pem {
        what,
        path: path.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read_pem(certificate)?)
            .collect::<Result<_, _>>()
            .map_err(|error| pem("certificates", certificate, error.to_string()))?;
    if chain.is_empty() {
        return Err(pem("certificates", certificate, "no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read_pem(private_key)?)
        .map_err(|error| pem("private key", private_key, error.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| TlsSetupError::Rustls(error.to_string()))?;
    let builder = match client_cas {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in CertificateDer::pem_slice_iter(&read_pem(path)?) {
                let certificate =
                    certificate.map_err(|error| pem("CA certificates", path, error.to_string()))?;
                roots
                    .add(certificate)
                    .map_err(|error| pem("CA certificates", path, error.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|error| TlsSetupError::Rustls(error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| TlsSetupError::Rustls(error.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
