//! The transport against a real listener on loopback: honest validators exchange frames in
//! order, and every kind of bad peer is turned away, logged with its reason and counted,
//! while the listener keeps serving honest peers.

#![allow(
    clippy::disallowed_methods,
    reason = "certificates are issued relative to the wall clock, as rustls checks them against it"
)]

use std::sync::Arc;
use std::time::Duration;

use pactum_certs::authority::{self, IssueRequest, Issued};
use pactum_certs::tls::{NodeIdentity, PeerVerifier};
use pactum_certs::{CertificateInfo, Role, TrustStore};
use pactum_net::{
    Inbound, InboundFrame, Peer, RejectReason, Transport, TransportConfig, TransportSettings,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

struct Pki {
    member: Issued,
    foreign: Issued,
    trust: Arc<TrustStore>,
}

impl Pki {
    fn new() -> Self {
        let member = authority::create_authority("Member Org", now() - 30 * DAY, 3650).unwrap();
        let foreign = authority::create_authority("Intruder Org", now() - 30 * DAY, 3650).unwrap();
        let trust = Arc::new(TrustStore::new());
        trust
            .add_authority(
                &CertificateDer::from_pem_slice(member.certificate_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        Self { member, foreign, trust }
    }

    fn issue_under(ca: &Issued, role: Role, name: &str, at: i64, days: u32) -> Issued {
        let request =
            IssueRequest { role, name, subject_alt_names: &["127.0.0.1".into()], at, days };
        authority::issue(&ca.certificate_pem, &ca.private_key_pem, &request).unwrap()
    }

    fn issue(&self, role: Role, name: &str) -> Issued {
        Self::issue_under(&self.member, role, name, now(), 30)
    }
}

fn identity(issued: &Issued) -> NodeIdentity {
    NodeIdentity::from_der(
        CertificateDer::from_pem_slice(issued.certificate_pem.as_bytes()).unwrap(),
        PrivateKeyDer::from_pem_slice(issued.private_key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn key_of(issued: &Issued) -> pactum_types::PublicKey {
    identity(issued).info.public_key
}

fn test_settings() -> TransportSettings {
    TransportSettings {
        frame_payload_bytes_max: 1024 * 1024,
        handshake_timeout: Duration::from_millis(700),
        keepalive_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(3),
        reconnect_backoff_initial: Duration::from_millis(20),
        reconnect_backoff_max: Duration::from_millis(200),
        ..TransportSettings::default()
    }
}

async fn start(
    issued: &Issued,
    trust: &Arc<TrustStore>,
    validators: Vec<Peer>,
) -> (Transport, Inbound) {
    Transport::start(TransportConfig {
        listen_address: "127.0.0.1:0".parse().unwrap(),
        identity: identity(issued),
        trust: Arc::clone(trust),
        validators,
        settings: test_settings(),
    })
    .await
    .unwrap()
}

/// Two honest validators, `a` (the listener under test) and `b`, each dialling the other.
struct Pair {
    a: Transport,
    a_inbound: Inbound,
    b: Transport,
    b_key: pactum_types::PublicKey,
    /// `b`'s certificate serial.
    b_serial: Vec<u8>,
    a_key: pactum_types::PublicKey,
    sequence: u64,
}

impl Pair {
    async fn new(pki: &Pki) -> Self {
        let a_cert = pki.issue(Role::Validator, "validator-a");
        let b_cert = pki.issue(Role::Validator, "validator-b");
        let (a_key, b_key) = (key_of(&a_cert), key_of(&b_cert));
        // `a` knows `b`'s key from the start (so `b`'s first connection is accepted); `b`'s
        // address is filled in once `b` is listening.
        let placeholder = Peer { public_key: b_key, address: "127.0.0.1:1".into() };
        let (a, a_inbound) = start(&a_cert, &pki.trust, vec![placeholder]).await;
        let a_peer = Peer { public_key: a_key, address: a.local_address().to_string() };
        let (b, _b_inbound) = start(&b_cert, &pki.trust, vec![a_peer.clone()]).await;
        let b_peer = Peer { public_key: b_key, address: b.local_address().to_string() };
        a.set_validators(vec![a_peer.clone(), b_peer.clone()]);
        b.set_validators(vec![a_peer, b_peer]);
        let b_serial = identity(&b_cert).info.serial;
        Self { a, a_inbound, b, b_key, b_serial, a_key, sequence: 0 }
    }

    /// The listener still serves honest peers: a fresh frame from `b` arrives at `a`.
    /// The transport may lose a frame handed to a connection that then fails (ADR 0007),
    /// so the frame is re-sent, a bounded number of times, until one copy arrives.
    async fn assert_honest_traffic_flows(&mut self) {
        self.sequence += 1;
        let payload = format!("honest {}", self.sequence).into_bytes();
        for _attempt in 0..5 {
            self.b.send_waiting(&self.a_key, payload.clone()).await.unwrap();
            match tokio::time::timeout(Duration::from_secs(3), self.a_inbound.recv()).await {
                Ok(Some(frame)) => {
                    assert_eq!(frame, InboundFrame { from: self.b_key, payload });
                    // Drop any duplicate copies of this frame that were re-sent.
                    while let Ok(Some(_)) =
                        tokio::time::timeout(Duration::from_millis(50), self.a_inbound.recv()).await
                    {
                    }
                    return;
                }
                Ok(None) => panic!("the transport stopped"),
                Err(_) => continue,
            }
        }
        panic!("no honest frame arrived; counters: {:?}", self.a.stats().all_rejections());
    }

    /// Waits until the counter for `reason` exceeds `before`.
    async fn wait_for_rejection_after(&self, reason: RejectReason, before: u64) {
        for _ in 0..200 {
            if self.a.stats().rejections(reason) > before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "no new {} rejection; counters: {:?}",
            reason.as_str(),
            self.a.stats().all_rejections()
        );
    }

    fn count(&self, reason: RejectReason) -> u64 {
        self.a.stats().rejections(reason)
    }
}

fn client_config_with(
    chain_pem: Option<&str>,
    key_pem: Option<&str>,
    trust: &Arc<TrustStore>,
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier::new(Arc::clone(trust))));
    match (chain_pem, key_pem) {
        (Some(chain), Some(key)) => {
            let certificate = CertificateDer::from_pem_slice(chain.as_bytes()).unwrap();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            let signing_key = provider.key_provider.load_private_key(key).unwrap();
            // Built by hand so that a key that does not match the certificate is not caught
            // on this side: the listener must catch it.
            let certified =
                Arc::new(rustls::sign::CertifiedKey::new(vec![certificate], signing_key));
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(certified)))
        }
        _ => builder.with_no_client_auth(),
    }
}

#[derive(Debug)]
struct FixedClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Connects with `config`, tries to send a frame, and reads until the listener closes.
async fn attempt(config: rustls::ClientConfig, address: std::net::SocketAddr) {
    let stream = TcpStream::connect(address).await.unwrap();
    let connector = TlsConnector::from(Arc::new(config));
    let Ok(Ok(mut tls)) = tokio::time::timeout(
        Duration::from_secs(5),
        connector.connect(ServerName::try_from("pactum-validator").unwrap(), stream),
    )
    .await
    else {
        return;
    };
    let _ = tls.write_all(&[0, 0, 0, 6, 1, b'h', b'e', b'l', b'l', b'o']).await;
    let _ = tls.flush().await;
    let mut buffer = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buffer)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peers_are_rejected_with_their_reason_and_honest_peers_keep_being_served() {
    let pki = Pki::new();
    let mut pair = Pair::new(&pki).await;
    pair.assert_honest_traffic_flows().await;
    let address = pair.a.local_address();
    let trust = &pki.trust;

    // No client certificate at all.
    let before = pair.count(RejectReason::NoCertificate);
    attempt(client_config_with(None, None, trust), address).await;
    pair.wait_for_rejection_after(RejectReason::NoCertificate, before).await;
    pair.assert_honest_traffic_flows().await;

    // A validator certificate from a CA that is not a member.
    let before = pair.count(RejectReason::UnknownIssuer);
    let foreign = Pki::issue_under(&pki.foreign, Role::Validator, "impostor", now(), 30);
    attempt(
        client_config_with(Some(&foreign.certificate_pem), Some(&foreign.private_key_pem), trust),
        address,
    )
    .await;
    pair.wait_for_rejection_after(RejectReason::UnknownIssuer, before).await;
    pair.assert_honest_traffic_flows().await;

    // Expired, and not yet valid.
    let before = pair.count(RejectReason::Expired);
    let expired = Pki::issue_under(&pki.member, Role::Validator, "old", now() - 20 * DAY, 1);
    attempt(
        client_config_with(Some(&expired.certificate_pem), Some(&expired.private_key_pem), trust),
        address,
    )
    .await;
    pair.wait_for_rejection_after(RejectReason::Expired, before).await;
    let before = pair.count(RejectReason::NotYetValid);
    let future = Pki::issue_under(&pki.member, Role::Validator, "future", now() + 20 * DAY, 30);
    attempt(
        client_config_with(Some(&future.certificate_pem), Some(&future.private_key_pem), trust),
        address,
    )
    .await;
    pair.wait_for_rejection_after(RejectReason::NotYetValid, before).await;
    pair.assert_honest_traffic_flows().await;

    // Client- and admin-role certificates acting as validators.
    for role in [Role::Client, Role::Admin] {
        let before = pair.a.stats().rejections(RejectReason::WrongRole);
        let issued = pki.issue(role, "not-a-validator");
        attempt(
            client_config_with(Some(&issued.certificate_pem), Some(&issued.private_key_pem), trust),
            address,
        )
        .await;
        for _ in 0..200 {
            if pair.a.stats().rejections(RejectReason::WrongRole) > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(pair.a.stats().rejections(RejectReason::WrongRole), before + 1, "{role}");
    }
    pair.assert_honest_traffic_flows().await;

    // A revoked serial: revoked at runtime, no restart.
    let before = pair.count(RejectReason::Revoked);
    let revoked = pki.issue(Role::Validator, "revoked");
    let serial = CertificateInfo::from_der(&identity(&revoked).certificate).unwrap().serial;
    trust.revoke("Member Org", &serial);
    attempt(
        client_config_with(Some(&revoked.certificate_pem), Some(&revoked.private_key_pem), trust),
        address,
    )
    .await;
    pair.wait_for_rejection_after(RejectReason::Revoked, before).await;

    // A certificate presented without its private key (another key signs the handshake).
    let before = pair.count(RejectReason::HandshakeSignature);
    let stolen = pki.issue(Role::Validator, "stolen");
    let other_key = pki.issue(Role::Validator, "thief");
    attempt(
        client_config_with(Some(&stolen.certificate_pem), Some(&other_key.private_key_pem), trust),
        address,
    )
    .await;
    pair.wait_for_rejection_after(RejectReason::HandshakeSignature, before).await;
    pair.assert_honest_traffic_flows().await;

    // A valid validator certificate whose key is not in the validator set.
    let before = pair.count(RejectReason::NotInValidatorSet);
    let outsider = pki.issue(Role::Validator, "outsider");
    attempt(
        client_config_with(Some(&outsider.certificate_pem), Some(&outsider.private_key_pem), trust),
        address,
    )
    .await;
    pair.wait_for_rejection_after(RejectReason::NotInValidatorSet, before).await;

    // Plain garbage instead of TLS.
    let before = pair.count(RejectReason::TlsProtocol);
    let mut garbage = TcpStream::connect(address).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: pactum\r\n\r\nthis is not TLS at all")
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(5), garbage.read(&mut buffer)).await;
    pair.wait_for_rejection_after(RejectReason::TlsProtocol, before).await;
    pair.assert_honest_traffic_flows().await;

    // A connection that opens and stalls.
    let before = pair.count(RejectReason::HandshakeTimeout);
    let stalled = TcpStream::connect(address).await.unwrap();
    pair.wait_for_rejection_after(RejectReason::HandshakeTimeout, before).await;
    drop(stalled);

    // An authenticated validator that sends a frame over the limit.
    let before = pair.count(RejectReason::FrameTooLarge);
    let b_certificate = pki.issue(Role::Validator, "validator-b2");
    pair.a.set_validators(vec![
        Peer { public_key: pair.a_key, address: address.to_string() },
        Peer { public_key: pair.b_key, address: pair.b.local_address().to_string() },
        Peer { public_key: key_of(&b_certificate), address: "127.0.0.1:1".into() },
    ]);
    let stream = TcpStream::connect(address).await.unwrap();
    let connector = TlsConnector::from(Arc::new(client_config_with(
        Some(&b_certificate.certificate_pem),
        Some(&b_certificate.private_key_pem),
        trust,
    )));
    let mut tls =
        connector.connect(ServerName::try_from("pactum-validator").unwrap(), stream).await.unwrap();
    let oversized = (2 * 1024 * 1024u32).to_be_bytes();
    tls.write_all(&oversized).await.unwrap();
    tls.write_all(&[1]).await.unwrap();
    tls.flush().await.unwrap();
    pair.wait_for_rejection_after(RejectReason::FrameTooLarge, before).await;
    pair.assert_honest_traffic_flows().await;

    let counters = pair.a.stats().all_rejections();
    println!("rejections counted by the listener: {counters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_honest_validators_exchange_100000_frames_in_order() {
    let pki = Pki::new();
    let mut pair = Pair::new(&pki).await;
    const FRAMES: u64 = 100_000;
    let sender = tokio::spawn({
        let b = pair.b;
        let a_key = pair.a_key;
        async move {
            for index in 0..FRAMES {
                let mut payload = index.to_be_bytes().to_vec();
                payload.extend_from_slice(&[0xab; 56]);
                b.send_waiting(&a_key, payload).await.unwrap();
            }
            b
        }
    });
    for expected in 0..FRAMES {
        let frame = tokio::time::timeout(Duration::from_secs(30), pair.a_inbound.recv())
            .await
            .unwrap_or_else(|_| panic!("frame {expected} did not arrive"))
            .unwrap();
        assert_eq!(frame.from, pair.b_key);
        let index = u64::from_be_bytes(frame.payload[..8].try_into().unwrap());
        assert_eq!(index, expected, "frames arrive in order");
        assert_eq!(frame.payload.len(), 64);
    }
    pair.b = sender.await.unwrap();
    assert_eq!(pair.a.stats().frames_received(), FRAMES);
    assert_eq!(pair.a.connected_peers(), vec![pair.b_key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reconnected_with_backoff() {
    let pki = Pki::new();
    let a_cert = pki.issue(Role::Validator, "a");
    let b_cert = pki.issue(Role::Validator, "b");
    let placeholder = Peer { public_key: key_of(&b_cert), address: "127.0.0.1:1".into() };
    let (a, mut a_inbound) = start(&a_cert, &pki.trust, vec![placeholder]).await;
    let a_peer = Peer { public_key: key_of(&a_cert), address: a.local_address().to_string() };
    let (b, _) = start(&b_cert, &pki.trust, vec![a_peer.clone()]).await;
    a.set_validators(vec![
        a_peer.clone(),
        Peer { public_key: key_of(&b_cert), address: b.local_address().to_string() },
    ]);
    b.send_waiting(&a_peer.public_key, b"before".to_vec()).await.unwrap();
    let before = tokio::time::timeout(Duration::from_secs(10), a_inbound.recv()).await;
    assert_eq!(before.expect("the first frame arrives").unwrap().payload, b"before");

    // Stop `a` and start it again on the same port: `b` reconnects by itself.
    let address = a.local_address();
    a.shutdown();
    drop(a);
    drop(a_inbound);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a2, mut a2_inbound) = Transport::start(TransportConfig {
        listen_address: address,
        identity: identity(&a_cert),
        trust: Arc::clone(&pki.trust),
        validators: vec![
            a_peer.clone(),
            Peer { public_key: key_of(&b_cert), address: b.local_address().to_string() },
        ],
        settings: test_settings(),
    })
    .await
    .unwrap();
    // Frames sent while the connection was down may be lost (consensus retransmits);
    // keep sending until one arrives.
    let mut received = None;
    for _attempt in 0..100 {
        let _ = b.send(&a_peer.public_key, b"after".to_vec());
        match tokio::time::timeout(Duration::from_millis(100), a2_inbound.recv()).await {
            Ok(Some(frame)) => {
                received = Some(frame);
                break;
            }
            Ok(None) => panic!("the restarted transport's inbound queue closed"),
            Err(_) => {}
        }
    }
    let received = received.expect("b reconnects to the restarted a within 10 s");
    assert_eq!(received.payload, b"after");
    assert_eq!(a2.stats().all_rejections().len(), 0, "{:?}", a2.stats().all_rejections());
}

// ---- One Byzantine validator or anonymous caller cannot starve the others (issue 9,
// finding 7) ----

/// Validators `a` (the listener under test), `b` and `c`, each knowing the others.
async fn trio(pki: &Pki) -> [(Transport, Inbound, pactum_types::PublicKey); 3] {
    let certificates =
        ["validator-a", "validator-b", "validator-c"].map(|name| pki.issue(Role::Validator, name));
    let keys = certificates.each_ref().map(key_of);
    let placeholders: Vec<Peer> =
        keys.iter().map(|key| Peer { public_key: *key, address: "127.0.0.1:1".into() }).collect();
    let mut started = Vec::new();
    for certificate in &certificates {
        started.push(start(certificate, &pki.trust, placeholders.clone()).await);
    }
    let peers: Vec<Peer> = started
        .iter()
        .zip(keys)
        .map(|((transport, _), key)| Peer {
            public_key: key,
            address: transport.local_address().to_string(),
        })
        .collect();
    for (transport, _) in &started {
        transport.set_validators(peers.clone());
    }
    let mut started = started.into_iter().zip(keys).map(|((t, i), k)| (t, i, k));
    [started.next().unwrap(), started.next().unwrap(), started.next().unwrap()]
}

async fn wait_for_frames(transport: &Transport, count: u64) {
    for _ in 0..400 {
        if transport.stats().frames_received() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("only {} frames arrived, {count} expected", transport.stats().frames_received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_validator_does_not_hold_up_another_validators_frames() {
    let pki = Pki::new();
    let [(a, mut a_inbound, a_key), (b, _b_inbound, b_key), (c, _c_inbound, c_key)] =
        trio(&pki).await;
    // `c` floods `a` with frames `a` has not taken yet...
    const FLOOD: u64 = 2_000;
    for index in 0..FLOOD {
        c.send_waiting(&a_key, [b"flood".as_slice(), &index.to_be_bytes()].concat()).await.unwrap();
    }
    wait_for_frames(&a, FLOOD).await;
    // ...then `b` sends one vote. It is taken next but one, not after the whole flood.
    b.send_waiting(&a_key, b"vote".to_vec()).await.unwrap();
    wait_for_frames(&a, FLOOD + 1).await;
    let first = a_inbound.recv().await.unwrap();
    let second = a_inbound.recv().await.unwrap();
    assert_eq!(first.from, c_key);
    assert_eq!(second, InboundFrame { from: b_key, payload: b"vote".to_vec() });
    // The flood itself arrives whole and in order.
    for index in 1..FLOOD {
        let frame = a_inbound.recv().await.unwrap();
        assert_eq!(frame.from, c_key);
        assert_eq!(frame.payload[5..], index.to_be_bytes());
    }
}

/// Opens a TLS connection to `address` as `issued`, returning it once authenticated.
async fn connect_as(
    issued: &Issued,
    trust: &Arc<TrustStore>,
    address: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config =
        client_config_with(Some(&issued.certificate_pem), Some(&issued.private_key_pem), trust);
    let stream = TcpStream::connect(address).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("pactum-validator").unwrap(), stream)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_connection_from_a_validator_replaces_its_older_one() {
    let pki = Pki::new();
    let mut pair = Pair::new(&pki).await;
    // A third validator the listener knows; nothing else dials with its key.
    let c = pki.issue(Role::Validator, "validator-c");
    let c_peer = Peer { public_key: key_of(&c), address: "127.0.0.1:1".into() };
    let a_peer = Peer { public_key: pair.a_key, address: pair.a.local_address().to_string() };
    let b_peer = Peer { public_key: pair.b_key, address: pair.b.local_address().to_string() };
    pair.a.set_validators(vec![a_peer, b_peer, c_peer]);
    let address = pair.a.local_address();
    let mut older = connect_as(&c, &pki.trust, address).await;
    let established = pair.a.stats().connections_established();
    let _newer = connect_as(&c, &pki.trust, address).await;
    // The listener closes the older one at once (well before its 3 s idle timeout).
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(1_500), older.read(&mut buffer))
        .await
        .expect("the older connection is closed once the newer one is authenticated");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(pair.a.stats().connections_established() > established);
    pair.assert_honest_traffic_flows().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_pending_handshakes() {
    let pki = Pki::new();
    let mut pair = Pair::new(&pki).await;
    pair.assert_honest_traffic_flows().await;
    let address = pair.a.local_address();
    let before = pair.count(RejectReason::TooManyConnections);
    // Connections that never start TLS, all from this address.
    let mut held = Vec::new();
    for _ in 0..pactum_types::limits::PENDING_HANDSHAKES_PER_ADDRESS_MAX {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    let mut over = TcpStream::connect(address).await.unwrap();
    pair.wait_for_rejection_after(RejectReason::TooManyConnections, before).await;
    let mut buffer = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(500), over.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "the connection over the share is closed");
    // The validator already connected is not one of them: its traffic flows.
    pair.assert_honest_traffic_flows().await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_queue_is_bounded_in_bytes() {
    let pki = Pki::new();
    let a = pki.issue(Role::Validator, "validator-a");
    let b = pki.issue(Role::Validator, "validator-b");
    let unreachable = Peer { public_key: key_of(&b), address: "127.0.0.1:1".into() };
    let (transport, _inbound) = Transport::start(TransportConfig {
        listen_address: "127.0.0.1:0".parse().unwrap(),
        identity: identity(&a),
        trust: Arc::clone(&pki.trust),
        validators: vec![unreachable],
        settings: TransportSettings { send_queue_bytes_max: 1_000, ..test_settings() },
    })
    .await
    .unwrap();
    let to = key_of(&b);
    transport.send(&to, vec![1; 600]).unwrap();
    assert!(matches!(
        transport.send(&to, vec![2; 600]),
        Err(pactum_net::SendError::QueueFull { bytes_max: 1_000, .. })
    ));
    transport.send(&to, vec![3; 400]).unwrap();
    assert!(transport.send(&to, vec![4; 1]).is_err());
}

/// A connection from `source` (an address on this host) to `to` that never starts TLS.
async fn connect_from(source: &str, to: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_held_open_from_other_addresses_cannot_keep_a_validator_out() {
    let pki = Pki::new();
    let a_cert = pki.issue(Role::Validator, "validator-a");
    let c_cert = pki.issue(Role::Validator, "validator-c");
    // `c` is a validator at 127.0.0.1; the anonymous callers come from 127.0.0.2 and
    // 127.0.0.3, each within its per-address share, together holding every general slot
    // (handshakes that would last a minute).
    let c_peer = Peer { public_key: key_of(&c_cert), address: "127.0.0.1:1".into() };
    let (a, _a_inbound) = Transport::start(TransportConfig {
        listen_address: "127.0.0.1:0".parse().unwrap(),
        identity: identity(&a_cert),
        trust: Arc::clone(&pki.trust),
        validators: vec![c_peer],
        settings: TransportSettings {
            pending_handshakes_max: 4,
            pending_handshakes_per_address_max: 2,
            handshake_timeout: Duration::from_secs(60),
            ..test_settings()
        },
    })
    .await
    .unwrap();
    let address = a.local_address();
    let mut held = Vec::new();
    for source in ["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"] {
        held.push(connect_from(source, address).await);
    }
    // A fifth anonymous caller, from a new address, finds no slot...
    let before = a.stats().rejections(RejectReason::TooManyConnections);
    let mut over = connect_from("127.0.0.4", address).await;
    let mut buffer = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), over.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "the caller over the limit is closed");
    assert!(a.stats().rejections(RejectReason::TooManyConnections) > before);
    // ...but the validator, dialling from its own address, is authenticated at once.
    let established = a.stats().connections_established();
    let _validator =
        tokio::time::timeout(Duration::from_secs(5), connect_as(&c_cert, &pki.trust, address))
            .await
            .expect("a validator's handshake gets a reserved slot");
    // The client side finishes its handshake a moment before the listener counts it.
    for _ in 0..200 {
        if a.stats().connections_established() > established {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(a.stats().connections_established() > established);
    drop(held);
}

/// ADR 0021: the node replaces the validator set from its execution thread, outside the
/// runtime (the first epoch test found `set_validators` panicking there). A validator
/// taken out of the set has its live inbound connection closed at once, and a new one is
/// dialled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_set_is_replaced_from_any_thread_and_a_removed_validators_connection_closes() {
    let pki = Pki::new();
    let pair = Pair::new(&pki).await;
    let c = pki.issue(Role::Validator, "validator-c");
    let address = pair.a.local_address();
    let mut from_c = {
        let c_peer = Peer { public_key: key_of(&c), address: "127.0.0.1:1".into() };
        let a_peer = Peer { public_key: pair.a_key, address: address.to_string() };
        let b_peer = Peer { public_key: pair.b_key, address: pair.b.local_address().to_string() };
        pair.a.set_validators(vec![a_peer, b_peer, c_peer]);
        connect_as(&c, &pki.trust, address).await
    };
    // The listener registers the connection once its side of the handshake is done.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // From a plain thread: `b` stays (and a new key is dialled), `c` is removed.
    let a = Arc::new(pair.a);
    let replaced = {
        let a = Arc::clone(&a);
        let peers = vec![
            Peer { public_key: pair.a_key, address: address.to_string() },
            Peer { public_key: pair.b_key, address: pair.b.local_address().to_string() },
            Peer {
                public_key: key_of(&pki.issue(Role::Validator, "validator-d")),
                address: "127.0.0.1:1".into(),
            },
        ];
        std::thread::spawn(move || a.set_validators(peers))
    };
    replaced.join().expect("set_validators runs outside the runtime");
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(1_500), from_c.read(&mut buffer))
        .await
        .expect("the removed validator's connection is closed at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

/// Issue 14: a revocation closes the live connection that rests on the revoked
/// certificate (the node rechecks its connections whenever the consortium's CAs or
/// revocations change), and the validator's next handshake is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_whose_certificate_is_revoked_is_closed_on_recheck() {
    let pki = Pki::new();
    let mut pair = Pair::new(&pki).await;
    let c = pki.issue(Role::Validator, "validator-c");
    let address = pair.a.local_address();
    let a_peer = Peer { public_key: pair.a_key, address: address.to_string() };
    let b_peer = Peer { public_key: pair.b_key, address: pair.b.local_address().to_string() };
    let c_peer = Peer { public_key: key_of(&c), address: "127.0.0.1:1".into() };
    pair.a.set_validators(vec![a_peer, b_peer, c_peer]);
    let mut from_c = connect_as(&c, &pki.trust, address).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pair.a.recheck_connections(now()).is_empty(), "nothing to close yet");
    let serial = CertificateInfo::from_der(
        &CertificateDer::from_pem_slice(c.certificate_pem.as_bytes()).unwrap(),
    )
    .unwrap()
    .serial;
    pki.trust.revoke("Member Org", &serial);
    assert_eq!(pair.a.recheck_connections(now()), vec![key_of(&c)]);
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(1_500), from_c.read(&mut buffer))
        .await
        .expect("the revoked validator's connection is closed at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let before = pair.count(RejectReason::Revoked);
    let stream = TcpStream::connect(address).await.unwrap();
    let connector = TlsConnector::from(Arc::new(client_config_with(
        Some(&c.certificate_pem),
        Some(&c.private_key_pem),
        &pki.trust,
    )));
    let _ = connector.connect(ServerName::try_from("pactum-validator").unwrap(), stream).await;
    pair.wait_for_rejection_after(RejectReason::Revoked, before).await;
    pair.assert_honest_traffic_flows().await;
}

/// Issue 14: the connection a validator dialled is checked again too. Once `b`'s
/// certificate is revoked, `a` closes both its connection from `b` and the one it opened
/// to `b`, and its next dials to `b` are refused by its own verifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_a_validator_dialled_is_closed_when_its_peers_certificate_is_revoked() {
    let pki = Pki::new();
    let mut pair = Pair::new(&pki).await;
    pair.assert_honest_traffic_flows().await;
    for _ in 0..100 {
        if pair.a.connected_peers().contains(&pair.b_key) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pair.a.connected_peers().contains(&pair.b_key), "a dialled b");
    assert!(pair.a.recheck_connections(now()).is_empty(), "nothing to close yet");
    let before = pair.count(RejectReason::Revoked);
    pki.trust.revoke("Member Org", &pair.b_serial);
    assert_eq!(pair.a.recheck_connections(now()), vec![pair.b_key], "each key once");
    for _ in 0..100 {
        if !pair.a.connected_peers().contains(&pair.b_key) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!pair.a.connected_peers().contains(&pair.b_key), "a's connection to b is closed");
    // `a` keeps dialling `b`, and its verifier refuses `b`'s certificate each time.
    pair.wait_for_rejection_after(RejectReason::Revoked, before).await;
    assert!(!pair.a.connected_peers().contains(&pair.b_key));
}
