//! The HTTP server's connection handling, the REST API's and the admin service's (issue
//! 9, finding 5): bounded connections per client address, a deadline for a request's
//! headers, and TLS with optional client certificates. Served over a real socket with a trivial router: these rules are the
//! server's, not any route's.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use pactum_certs::Role;
use pactum_certs::authority::{IssueRequest, KeyType, create_authority, issue, issue_with_key};
use pactum_http::{ServeOptions, serve_router, tls_config};
use pactum_types::limits;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

fn router() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

/// Starts the server on a loopback port; it stops when the returned sender drops.
async fn start(options: ServeOptions) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_router(listener, router(), options, async move {
        let _ = stopped.await;
    }));
    (address, stop)
}

/// Whether the server closed `stream` within `within` (a read returns end of file).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 64];
    matches!(tokio::time::timeout(within, stream.read(&mut buffer)).await, Ok(Ok(0) | Err(_)))
}

async fn get_hello(stream: &mut TcpStream) -> String {
    stream.write_all(REQUEST).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let (address, _stop) = start(ServeOptions::default()).await;
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = tokio::time::Instant::now();
    let deadline = Duration::from_millis(limits::API_HEADER_READ_TIMEOUT_MS);
    assert!(
        closed_within(&mut slow, deadline + Duration::from_secs(3)).await,
        "a connection holding half its headers stays open"
    );
    assert!(started.elapsed() >= deadline - Duration::from_millis(500));
    // A well-behaved client is answered.
    let mut client = TcpStream::connect(address).await.unwrap();
    let answer = get_hello(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let (address, _stop) = start(ServeOptions::default()).await;
    let mut held = Vec::new();
    for _ in 0..limits::API_CONNECTIONS_PER_ADDRESS_MAX {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    // Give the server time to take them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(address).await.unwrap();
    assert!(closed_within(&mut extra, Duration::from_secs(2)).await, "the extra one was served");
    // A held connection still works.
    let answer = get_hello(&mut held[0]).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Once they go, the address may connect again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = TcpStream::connect(address).await.unwrap();
    let answer = get_hello(&mut again).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A member CA, an ECDSA P-256 server certificate for 127.0.0.1 and an Ed25519 client
/// certificate from it, as files.
struct Pki {
    directory: tempfile::TempDir,
    ca_pem: String,
}

impl Pki {
    fn new() -> Self {
        let at = pactum_clock::unix_seconds() - 60;
        let authority = create_authority("Member 1", at, 30).unwrap();
        let (ca, ca_key) = (&authority.certificate_pem, &authority.private_key_pem);
        let loopback = ["127.0.0.1".to_string()];
        let request = IssueRequest {
            role: Role::Admin,
            name: "api",
            subject_alt_names: &loopback,
            at,
            days: 30,
        };
        let server = issue_with_key(ca, ca_key, &request, KeyType::EcdsaP256).unwrap();
        let request = IssueRequest {
            role: Role::Client,
            name: "client",
            subject_alt_names: &[],
            at,
            days: 30,
        };
        let client = issue(ca, ca_key, &request).unwrap();
        let directory = tempfile::tempdir().unwrap();
        for (name, contents) in [
            ("server.pem", &server.certificate_pem),
            ("server-key.pem", &server.private_key_pem),
            ("client.pem", &client.certificate_pem),
            ("client-key.pem", &client.private_key_pem),
            ("ca.pem", ca),
        ] {
            std::fs::File::create(directory.path().join(name))
                .unwrap()
                .write_all(contents.as_bytes())
                .unwrap();
        }
        Self { directory, ca_pem: authority.certificate_pem }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.directory.path().join(name)
    }

    fn options(&self, require_client_certificates: bool) -> ServeOptions {
        let client_cas = require_client_certificates.then(|| self.path("ca.pem"));
        let (certificate, key) = (self.path("server.pem"), self.path("server-key.pem"));
        let tls = tls_config(&certificate, &key, client_cas.as_deref()).unwrap();
        ServeOptions { tls: Some(tls), ..ServeOptions::default() }
    }

    /// A TLS client trusting the CA, presenting the client certificate if asked.
    fn connector(&self, with_certificate: bool) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots);
        let config = if with_certificate {
            let chain = CertificateDer::pem_file_iter(self.path("client.pem"))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(self.path("client-key.pem")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// GET /hello over TLS: the answer, or the error.
async fn get_over_tls(
    address: std::net::SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> std::io::Result<String> {
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::IpAddress(address.ip().into());
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(REQUEST).await?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_tls_with_an_ecdsa_certificate_from_the_members_ca() {
    let pki = Pki::new();
    let (address, _stop) = start(pki.options(false)).await;
    let answer = get_over_tls(address, &pki.connector(false)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"), "{answer}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(address).await.unwrap();
    plain.write_all(REQUEST).await.unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(7), plain.read_to_end(&mut bytes)).await;
    assert!(!String::from_utf8_lossy(&bytes).contains("hello"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_client_certificates_required_only_a_member_certificate_gets_in() {
    let pki = Pki::new();
    let (address, _stop) = start(pki.options(true)).await;
    let answer = get_over_tls(address, &pki.connector(true)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Without a certificate the handshake (or the first read) fails.
    let refused = get_over_tls(address, &pki.connector(false)).await;
    assert!(
        refused.as_ref().is_err() || !refused.as_ref().unwrap().contains("hello"),
        "{refused:?}"
    );
}

/// The `pactum` client commands' HTTP client speaks TLS too: it trusts the member's CA
/// and presents its client certificate when the node asks for one; without the CA it is
/// refused with a clear error, and without a certificate the node refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_client_talks_to_a_node_serving_tls_and_requiring_client_certificates() {
    use pactum_client::{NodeClient, TlsClientOptions};
    let pki = Pki::new();
    let (address, _stop) = start(pki.options(true)).await;
    let base = format!("https://{address}");
    let with_certificate = TlsClientOptions {
        ca_certificates: pki.path("ca.pem"),
        client_certificate: Some((pki.path("client.pem"), pki.path("client-key.pem"))),
    };
    let without_certificate =
        TlsClientOptions { client_certificate: None, ..with_certificate.clone() };
    let (answer, refused) = tokio::task::spawn_blocking(move || {
        let client = NodeClient::with_tls(&base, &with_certificate).unwrap();
        let answer = client.get_text("/hello").unwrap();
        let refused = NodeClient::with_tls(&base, &without_certificate).unwrap().get("/hello");
        (answer, refused)
    })
    .await
    .unwrap();
    assert_eq!(answer, "hello");
    assert!(refused.is_err(), "{refused:?}");
    let missing =
        TlsClientOptions { ca_certificates: pki.path("nothing.pem"), ..Default::default() };
    let error = NodeClient::with_tls("https://127.0.0.1:1", &missing).unwrap_err().to_string();
    assert!(error.contains("nothing.pem"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_request_rate_gets_429_and_later_gets_in_again() {
    let rate = std::num::NonZeroU32::new(5).unwrap();
    let options = ServeOptions { requests_per_second_per_address: rate, ..ServeOptions::default() };
    let (address, _stop) = start(options).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let mut client = TcpStream::connect(address).await.unwrap();
        let answer = get_hello(&mut client).await;
        statuses.push(answer[9..12].to_string());
        if answer.contains(" 429 ") {
            assert!(
                answer.contains("rate_limited") && answer.contains("retry-after: 1"),
                "{answer}"
            );
        }
    }
    let limited = statuses.iter().filter(|status| *status == "429").count();
    assert!(statuses[0] == "200" && limited >= 10, "{statuses:?}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    assert!(get_hello(&mut client).await.starts_with("HTTP/1.1 200"));
}
