use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use pactum_certs::tls::{NodeIdentity, PresentedIdentity, client_config, server_config};
use pactum_certs::{CertificateInfo, TrustStore};
use pactum_types::{PublicKey, limits};
use rustls::pki_types::ServerName;
use thiserror::Error;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use crate::frame::{FrameError, FrameKind, read_frame, write_frame};
use crate::inbound::{FairQueue, Inbound, PeerQueueBounds};
use crate::stats::{RejectReason, TransportStats};

/// Another validator: its consensus key and where to dial it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub public_key: PublicKey,
    /// `host:port`.
    pub address: String,
}

/// Timing and sizing. Defaults suit a LAN or loopback consortium.
#[derive(Debug, Clone)]
pub struct TransportSettings {
    pub frame_payload_bytes_max: usize,
    pub send_queue_frames_max: usize,
    pub send_queue_bytes_max: usize,
    /// A burst of writes to a peer not done by then drops the connection (it is dialled
    /// again).
    pub write_timeout: Duration,
    /// Per peer: frames and bytes received and not yet taken.
    pub inbound_queue_frames_max: usize,
    pub inbound_queue_bytes_max: usize,
    /// Inbound connections still in their TLS handshake, in all and from one address.
    pub pending_handshakes_max: usize,
    pub pending_handshakes_per_address_max: usize,
    /// Further handshake slots only a connection from a validator's own address (the host
    /// of its `host:port`) may take once the others are full, so anonymous callers
    /// holding every general slot cannot keep a validator from reconnecting.
    pub pending_handshakes_reserved_max: usize,
    /// A connection that has not finished its TLS handshake by then is dropped.
    pub handshake_timeout: Duration,
    /// How often an otherwise idle outbound connection sends a keep-alive.
    pub keepalive_interval: Duration,
    /// An inbound connection silent this long (no frame, not even a keep-alive) is closed.
    pub idle_timeout: Duration,
    pub reconnect_backoff_initial: Duration,
    pub reconnect_backoff_max: Duration,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            frame_payload_bytes_max: limits::NETWORK_FRAME_BYTES_MAX,
            send_queue_frames_max: limits::PEER_SEND_QUEUE_FRAMES_MAX,
            send_queue_bytes_max: limits::PEER_SEND_QUEUE_BYTES_MAX,
            write_timeout: Duration::from_millis(limits::PEER_WRITE_TIMEOUT_MS),
            inbound_queue_frames_max: limits::INBOUND_QUEUE_FRAMES_MAX,
            inbound_queue_bytes_max: limits::INBOUND_QUEUE_BYTES_MAX,
            pending_handshakes_max: limits::PENDING_HANDSHAKES_MAX,
            pending_handshakes_per_address_max: limits::PENDING_HANDSHAKES_PER_ADDRESS_MAX,
            pending_handshakes_reserved_max: limits::PENDING_HANDSHAKES_RESERVED_MAX,
            handshake_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            reconnect_backoff_initial: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(5),
        }
    }
}

/// What a transport needs to start.
#[derive(Debug)]
pub struct TransportConfig {
    pub listen_address: SocketAddr,
    pub identity: NodeIdentity,
    pub trust: Arc<TrustStore>,
    /// The validator set, this node included or not (it never dials itself).
    pub validators: Vec<Peer>,
    pub settings: TransportSettings,
}

/// A frame received from an authenticated validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFrame {
    pub from: PublicKey,
    pub payload: Vec<u8>,
}

#[derive(Debug, Error)]
pub enum NetError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] pactum_certs::tls::TlsError),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("{peer} is not a validator this node talks to")]
    UnknownPeer { peer: PublicKey },
    #[error("the send queue to {peer} is full ({capacity} frames or {bytes_max} bytes)")]
    QueueFull { peer: PublicKey, capacity: usize, bytes_max: usize },
    #[error("frame of {length} bytes is over the limit of {max}")]
    TooLarge { length: usize, max: usize },
    #[error("the transport has shut down")]
    Closed,
}

struct OutboundPeer {
    peer: Peer,
    queue: mpsc::Sender<Vec<u8>>,
    /// Bytes in `queue`, taken off by the connection as it writes them.
    queued_bytes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// What an outbound queue holds and who to charge its bytes to.
#[derive(Clone)]
struct QueueHandle {
    queue: mpsc::Sender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
}

struct Shared {
    local_key: PublicKey,
    settings: TransportSettings,
    stats: TransportStats,
    /// The current validator set, by key.
    validators: RwLock<HashMap<PublicKey, Peer>>,
    /// Keys with a live, authenticated outbound connection.
    connected: RwLock<HashMap<PublicKey, bool>>,
    /// Frames received, per peer, taken in turn by the node.
    inbound: Arc<FairQueue>,
    /// Per validator key, its live inbound connection: a number, how to close it, and the
    /// certificate chain it presented (leaf first), checked again when trust changes.
    inbound_live: Mutex<HashMap<PublicKey, LiveEntry>>,
    /// Per validator key, the live connection this node dialled, likewise.
    outbound_live: Mutex<HashMap<PublicKey, LiveEntry>>,
    connection_numbers: AtomicU64,
    /// Inbound connections in their handshake, per address.
    pending: Mutex<HashMap<IpAddr, usize>>,
    /// The addresses the validators are dialled at: connections from them may take the
    /// reserved handshake slots.
    validator_addresses: RwLock<HashSet<IpAddr>>,
}

impl Shared {
    fn is_validator_address(&self, address: IpAddr) -> bool {
        self.validator_addresses
            .read()
            .expect("validator address lock is never poisoned")
            .contains(&address)
    }
}

/// The IP addresses `host:port` stands for: an IP literal as it is, a name as the
/// system resolver answers (nothing if it cannot).
fn addresses_of(address: &str) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    match address.parse::<SocketAddr>() {
        Ok(parsed) => vec![parsed.ip()],
        Err(_) => address
            .to_socket_addrs()
            .map(|resolved| resolved.map(|socket| socket.ip()).collect())
            .unwrap_or_default(),
    }
}

/// One live connection (see `Shared::inbound_live` and `Shared::outbound_live`).
struct LiveEntry {
    number: u64,
    close: Arc<tokio::sync::Notify>,
    chain: Vec<Vec<u8>>,
}

/// A running transport. Dropping it (or calling [`Transport::shutdown`]) stops every task.
pub struct Transport {
    shared: Arc<Shared>,
    local_address: SocketAddr,
    connector: TlsConnector,
    outbound: RwLock<HashMap<PublicKey, OutboundPeer>>,
    listener_task: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    /// The certificate this node presents, replaceable for a renewal of the same key.
    presented: Arc<PresentedIdentity>,
    /// The runtime the transport's tasks run on, so that the validator set can be replaced
    /// from any thread.
    runtime: tokio::runtime::Handle,
    /// The trust store the TLS verifiers share.
    trust: Arc<TrustStore>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Transport")
            .field("local_key", &self.shared.local_key)
            .field("local_address", &self.local_address)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Binds the listener and starts dialling every other validator.
    pub async fn start(config: TransportConfig) -> Result<(Self, Inbound), NetError> {
        let local_key = config.identity.info.public_key;
        let presented = Arc::new(PresentedIdentity::new(&config.identity)?);
        let server = Arc::new(server_config(Arc::clone(&presented), Arc::clone(&config.trust))?);
        let client = Arc::new(client_config(Arc::clone(&presented), Arc::clone(&config.trust))?);
        let listener = TcpListener::bind(config.listen_address)
            .await
            .map_err(|source| NetError::Listen { address: config.listen_address, source })?;
        let local_address = listener
            .local_addr()
            .map_err(|source| NetError::Listen { address: config.listen_address, source })?;
        let queue = FairQueue::new(PeerQueueBounds {
            frames: config.settings.inbound_queue_frames_max,
            bytes: config.settings.inbound_queue_bytes_max,
        });
        let inbound = Inbound::new(Arc::clone(&queue));
        let (shutdown, shutdown_signal) = watch::channel(false);
        let shared = Arc::new(Shared {
            local_key,
            settings: config.settings,
            stats: TransportStats::default(),
            validators: RwLock::new(HashMap::new()),
            connected: RwLock::new(HashMap::new()),
            inbound: queue,
            inbound_live: Mutex::new(HashMap::new()),
            outbound_live: Mutex::new(HashMap::new()),
            connection_numbers: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            validator_addresses: RwLock::new(HashSet::new()),
        });
        let listener_task = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(server),
            Arc::clone(&shared),
            shutdown_signal,
        ));
        let transport = Self {
            shared,
            local_address,
            connector: TlsConnector::from(client),
            outbound: RwLock::new(HashMap::new()),
            listener_task,
            shutdown,
            presented,
            runtime: tokio::runtime::Handle::current(),
            trust: Arc::clone(&config.trust),
        };
        transport.set_validators(config.validators);
        info!(address = %local_address, key = %local_key, "transport listening");
        Ok((transport, inbound))
    }

    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    pub fn stats(&self) -> &TransportStats {
        &self.shared.stats
    }

    /// Replaces the validator set: dials new members, stops dialling removed ones, closes
    /// the inbound connections of keys outside the set, and from now on refuses them.
    /// Callable from any thread.
    pub fn set_validators(&self, validators: Vec<Peer>) {
        let set: HashMap<PublicKey, Peer> =
            validators.into_iter().map(|peer| (peer.public_key, peer)).collect();
        let mut outbound = self.outbound.write().expect("outbound lock is never poisoned");
        outbound.retain(|key, existing| {
            let keep = set.get(key).is_some_and(|peer| *peer == existing.peer);
            if !keep {
                existing.task.abort();
            }
            keep
        });
        for (key, peer) in &set {
            if *key == self.shared.local_key || outbound.contains_key(key) {
                continue;
            }
            let (queue, frames) = mpsc::channel(self.shared.settings.send_queue_frames_max);
            let queued_bytes = Arc::new(AtomicUsize::new(0));
            let task = self.runtime.spawn(dial_loop(
                peer.clone(),
                self.connector.clone(),
                Arc::clone(&self.shared),
                Outgoing { frames, queued_bytes: Arc::clone(&queued_bytes) },
                self.shutdown.subscribe(),
            ));
            outbound.insert(*key, OutboundPeer { peer: peer.clone(), queue, queued_bytes, task });
        }
        *self
            .shared
            .validator_addresses
            .write()
            .expect("validator address lock is never poisoned") =
            set.values().flat_map(|peer| addresses_of(&peer.address)).collect();
        let removed: Vec<Arc<tokio::sync::Notify>> = {
            let live = self.shared.inbound_live.lock().expect("inbound lock is never poisoned");
            live.iter()
                .filter(|(key, _)| !set.contains_key(key))
                .map(|(_, entry)| Arc::clone(&entry.close))
                .collect()
        };
        *self.shared.validators.write().expect("validator lock is never poisoned") = set;
        for close in removed {
            close.notify_one();
        }
    }

    /// Checks the certificate of every live connection, inbound and outbound, again
    /// against the trust store as it is now, at Unix time `at` (after a revocation, a CA
    /// removed or rotated): a connection whose certificate no longer passes is closed, and
    /// a new handshake with it is refused (an outbound one keeps being retried, and
    /// refused, until the peer presents a certificate that passes). Returns the keys whose
    /// connections it closed, each once.
    pub fn recheck_connections(&self, at: i64) -> Vec<PublicKey> {
        let mut closed = Vec::new();
        for live in [&self.shared.inbound_live, &self.shared.outbound_live] {
            self.recheck(
                &live.lock().expect("live connection lock is never poisoned"),
                at,
                &mut closed,
            );
        }
        closed.sort_unstable();
        closed.dedup();
        closed
    }

    fn recheck(&self, live: &HashMap<PublicKey, LiveEntry>, at: i64, closed: &mut Vec<PublicKey>) {
        for (key, entry) in live {
            let Some((leaf, intermediates)) = entry.chain.split_first() else { continue };
            let intermediates: Vec<&[u8]> = intermediates.iter().map(Vec::as_slice).collect();
            if let Err(error) = self.trust.verify_chain(
                leaf,
                &intermediates,
                at,
                Some(pactum_certs::Role::Validator),
            ) {
                warn!(key = %key, %error, "closing a connection whose certificate is no longer trusted");
                entry.close.notify_one();
                closed.push(*key);
            }
        }
    }

    fn queue_to(&self, to: &PublicKey, payload: &[u8]) -> Result<QueueHandle, SendError> {
        let max = self.shared.settings.frame_payload_bytes_max;
        if payload.len() > max {
            return Err(SendError::TooLarge { length: payload.len(), max });
        }
        let outbound = self.outbound.read().expect("outbound lock is never poisoned");
        outbound
            .get(to)
            .map(|peer| QueueHandle {
                queue: peer.queue.clone(),
                queued_bytes: Arc::clone(&peer.queued_bytes),
            })
            .ok_or(SendError::UnknownPeer { peer: *to })
    }

    fn queue_full(&self, peer: PublicKey) -> SendError {
        let settings = &self.shared.settings;
        SendError::QueueFull {
            peer,
            capacity: settings.send_queue_frames_max,
            bytes_max: settings.send_queue_bytes_max,
        }
    }

    /// Queues a frame for `to` without waiting; a queue full in frames or in bytes is an
    /// error the caller handles (consensus retransmits, so dropping under pressure is
    /// safe).
    pub fn send(&self, to: &PublicKey, payload: Vec<u8>) -> Result<(), SendError> {
        let handle = self.queue_to(to, &payload)?;
        let length = payload.len();
        let queued = handle.queued_bytes.fetch_add(length, Ordering::AcqRel);
        if queued > 0 && queued.saturating_add(length) > self.shared.settings.send_queue_bytes_max {
            handle.queued_bytes.fetch_sub(length, Ordering::AcqRel);
            return Err(self.queue_full(*to));
        }
        handle.queue.try_send(payload).map_err(|error| {
            handle.queued_bytes.fetch_sub(length, Ordering::AcqRel);
            match error {
                mpsc::error::TrySendError::Full(_) => self.queue_full(*to),
                mpsc::error::TrySendError::Closed(_) => SendError::Closed,
            }
        })
    }

    /// Queues a frame for `to`, waiting while the queue is full in frames (bulk senders:
    /// benchmarks and tests).
    pub async fn send_waiting(&self, to: &PublicKey, payload: Vec<u8>) -> Result<(), SendError> {
        let handle = self.queue_to(to, &payload)?;
        let length = payload.len();
        handle.queued_bytes.fetch_add(length, Ordering::AcqRel);
        handle.queue.send(payload).await.map_err(|_| {
            handle.queued_bytes.fetch_sub(length, Ordering::AcqRel);
            SendError::Closed
        })
    }

    /// Presents `identity` (a renewed certificate for this node's key) from the next
    /// handshake on; connections already open keep theirs.
    pub fn replace_identity(&self, identity: &NodeIdentity) -> Result<(), NetError> {
        Ok(self.presented.replace(identity)?)
    }

    /// Validators with a live outbound connection.
    pub fn connected_peers(&self) -> Vec<PublicKey> {
        let connected = self.shared.connected.read().expect("connected lock is never poisoned");
        let mut keys: Vec<PublicKey> =
            connected.iter().filter(|(_, live)| **live).map(|(key, _)| *key).collect();
        keys.sort();
        keys
    }

    /// Stops the listener and every connection.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        self.shared.inbound.close();
        self.listener_task.abort();
        for peer in self.outbound.read().expect("outbound lock is never poisoned").values() {
            peer.task.abort();
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn peer_key_of(
    certificates: Option<&[rustls::pki_types::CertificateDer<'_>]>,
) -> Option<PublicKey> {
    let certificate = certificates?.first()?;
    CertificateInfo::from_der(certificate).ok().map(|info| info.public_key)
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let pending = Arc::new(Semaphore::new(shared.settings.pending_handshakes_max));
    let reserved = Arc::new(Semaphore::new(shared.settings.pending_handshakes_reserved_max));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, address) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = Arc::clone(&pending).try_acquire_owned().or_else(|full| {
            if shared.is_validator_address(address.ip()) {
                Arc::clone(&reserved).try_acquire_owned()
            } else {
                Err(full)
            }
        });
        let Ok(slot) = slot else {
            warn!(peer = %address, reason = RejectReason::TooManyConnections.as_str(), "rejected a connection");
            shared.stats.reject(RejectReason::TooManyConnections);
            continue;
        };
        let Some(from_address) = PendingFromAddress::take(&shared, address.ip()) else {
            debug!(peer = %address, reason = RejectReason::TooManyConnections.as_str(), "rejected a connection: its address has too many handshakes under way");
            shared.stats.reject(RejectReason::TooManyConnections);
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let handshaking = (slot, from_address);
            if let Err(reason) =
                serve_inbound(stream, address, acceptor, &shared, handshaking).await
            {
                shared.stats.reject(reason);
            }
        });
    }
}

/// One address's share of the pending handshakes, given back when dropped.
struct PendingFromAddress {
    shared: Arc<Shared>,
    address: IpAddr,
}

impl PendingFromAddress {
    fn take(shared: &Arc<Shared>, address: IpAddr) -> Option<Self> {
        let mut pending = shared.pending.lock().expect("pending lock is never poisoned");
        let count = pending.entry(address).or_insert(0);
        if *count >= shared.settings.pending_handshakes_per_address_max {
            return None;
        }
        *count += 1;
        Some(Self { shared: Arc::clone(shared), address })
    }
}

impl Drop for PendingFromAddress {
    fn drop(&mut self) {
        let mut pending = self.shared.pending.lock().expect("pending lock is never poisoned");
        if let Some(count) = pending.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                pending.remove(&self.address);
            }
        }
    }
}

/// A validator's live connection in one direction, unregistered when dropped (unless a
/// newer one with the same key has replaced it). `replaced` fires when it must close: a
/// newer connection replaced it, its validator left the set, or its certificate is no
/// longer trusted.
struct LiveConnection<'a> {
    live: &'a Mutex<HashMap<PublicKey, LiveEntry>>,
    key: PublicKey,
    number: u64,
    replaced: Arc<tokio::sync::Notify>,
}

impl<'a> LiveConnection<'a> {
    /// Registers this connection (which presented `chain`) in `live` as `key`'s only one,
    /// closing the one it had before.
    fn register(
        shared: &Shared,
        live: &'a Mutex<HashMap<PublicKey, LiveEntry>>,
        key: PublicKey,
        chain: Vec<Vec<u8>>,
    ) -> Self {
        let number = shared.connection_numbers.fetch_add(1, Ordering::Relaxed);
        let replaced = Arc::new(tokio::sync::Notify::new());
        let entry = LiveEntry { number, close: Arc::clone(&replaced), chain };
        let previous =
            live.lock().expect("live connection lock is never poisoned").insert(key, entry);
        if let Some(previous) = previous {
            previous.close.notify_one();
        }
        Self { live, key, number, replaced }
    }
}

impl Drop for LiveConnection<'_> {
    fn drop(&mut self) {
        let mut live = self.live.lock().expect("live connection lock is never poisoned");
        if live.get(&self.key).is_some_and(|entry| entry.number == self.number) {
            live.remove(&self.key);
        }
    }
}

/// The certificate chain a TLS peer presented, leaf first.
fn presented_chain(certificates: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> Vec<Vec<u8>> {
    certificates
        .unwrap_or_default()
        .iter()
        .map(|certificate| certificate.as_ref().to_vec())
        .collect()
}

/// Handshakes with and then reads from one inbound connection. Returns the reason if this
/// side turned the peer away. `handshaking` (a pending-handshake slot and its address's
/// share) is given back once the peer is authenticated.
async fn serve_inbound(
    stream: TcpStream,
    address: SocketAddr,
    acceptor: TlsAcceptor,
    shared: &Shared,
    handshaking: (tokio::sync::OwnedSemaphorePermit, PendingFromAddress),
) -> Result<(), RejectReason> {
    let _ = stream.set_nodelay(true);
    let reject = |reason: RejectReason, detail: &dyn std::fmt::Display| {
        warn!(peer = %address, reason = reason.as_str(), %detail, "rejected a connection");
        reason
    };
    let mut tls = match tokio::time::timeout(
        shared.settings.handshake_timeout,
        acceptor.accept(stream),
    )
    .await
    {
        Err(_) => return Err(reject(RejectReason::HandshakeTimeout, &"no TLS handshake in time")),
        Ok(Err(error)) => return Err(reject(RejectReason::of_handshake_error(&error), &error)),
        Ok(Ok(tls)) => tls,
    };
    let Some(peer_key) = peer_key_of(tls.get_ref().1.peer_certificates()) else {
        return Err(reject(RejectReason::NoCertificate, &"no certificate after the handshake"));
    };
    let known =
        shared.validators.read().expect("validator lock is never poisoned").contains_key(&peer_key);
    if !known {
        let _ = tls.shutdown().await;
        return Err(reject(RejectReason::NotInValidatorSet, &peer_key));
    }
    // Authenticated: from here the connection is the validator's own, not a pending one.
    drop(handshaking);
    let chain = presented_chain(tls.get_ref().1.peer_certificates());
    let live = LiveConnection::register(shared, &shared.inbound_live, peer_key, chain);
    debug!(peer = %address, key = %peer_key, "inbound connection authenticated");
    shared.stats.established();
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(
                shared.settings.idle_timeout,
                read_frame(&mut tls, shared.settings.frame_payload_bytes_max),
            ) => frame,
            () = live.replaced.notified() => {
                debug!(peer = %address, key = %peer_key, "inbound connection replaced by a newer one from the same validator");
                return Ok(());
            }
        };
        match frame {
            Err(_) => {
                return Err(reject(RejectReason::IdleTimeout, &"no frame or keep-alive in time"));
            }
            Ok(Err(FrameError::Closed)) => return Ok(()),
            Ok(Err(error @ FrameError::TooLarge { .. })) => {
                return Err(reject(RejectReason::FrameTooLarge, &error));
            }
            Ok(Err(FrameError::Io(error))) => {
                debug!(peer = %address, %error, "inbound connection failed");
                return Ok(());
            }
            Ok(Err(error)) => return Err(reject(RejectReason::BadFrame, &error)),
            Ok(Ok((FrameKind::KeepAlive, _))) => {}
            Ok(Ok((FrameKind::Data, payload))) => {
                shared.stats.received();
                if shared.inbound.push(peer_key, payload).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// A peer's queue of frames to send, and the count of their bytes.
struct Outgoing {
    frames: mpsc::Receiver<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
}

impl Outgoing {
    fn taken(&self, payload: &[u8]) {
        self.queued_bytes.fetch_sub(payload.len(), Ordering::AcqRel);
    }
}

/// Keeps one outbound connection to `peer` alive and drains its queue into it.
async fn dial_loop(
    peer: Peer,
    connector: TlsConnector,
    shared: Arc<Shared>,
    mut frames: Outgoing,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = shared.settings.reconnect_backoff_initial;
    let server_name = ServerName::try_from("pactum-validator").expect("a valid DNS name");
    loop {
        if *shutdown.borrow() {
            return;
        }
        match connect(&peer, &connector, server_name.clone(), &shared).await {
            Ok(tls) => {
                backoff = shared.settings.reconnect_backoff_initial;
                let chain = presented_chain(tls.get_ref().1.peer_certificates());
                let live = LiveConnection::register(
                    &shared,
                    &shared.outbound_live,
                    peer.public_key,
                    chain,
                );
                set_connected(&shared, peer.public_key, true);
                shared.stats.established();
                let outcome = pump(tls, &mut frames, &shared, &mut shutdown, &live.replaced).await;
                set_connected(&shared, peer.public_key, false);
                drop(live);
                match outcome {
                    Pump::Shutdown => return,
                    Pump::Failed(error) => {
                        debug!(peer = %peer.address, %error, "outbound connection lost; reconnecting");
                    }
                }
            }
            Err(reason) => {
                debug!(peer = %peer.address, reason, "connect failed; retrying in {backoff:?}");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(shared.settings.reconnect_backoff_max);
    }
}

fn set_connected(shared: &Shared, key: PublicKey, live: bool) {
    shared.connected.write().expect("connected lock is never poisoned").insert(key, live);
}

async fn connect(
    peer: &Peer,
    connector: &TlsConnector,
    server_name: ServerName<'static>,
    shared: &Shared,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, &'static str> {
    let timeout = shared.settings.handshake_timeout;
    let stream = tokio::time::timeout(timeout, TcpStream::connect(&peer.address))
        .await
        .map_err(|_| "TCP connect timed out")?
        .map_err(|_| "TCP connect failed")?;
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(timeout, connector.connect(server_name, stream)).await {
        Err(_) => {
            shared.stats.reject(RejectReason::HandshakeTimeout);
            return Err("TLS handshake timed out");
        }
        Ok(Err(error)) => {
            let reason = RejectReason::of_handshake_error(&error);
            warn!(peer = %peer.address, reason = reason.as_str(), %error, "rejected the peer we dialled");
            shared.stats.reject(reason);
            return Err("TLS handshake failed");
        }
        Ok(Ok(tls)) => tls,
    };
    // The certificate chains to a member CA with the validator role (checked by the
    // verifier); above TLS, it must also be the very validator we meant to dial.
    if peer_key_of(tls.get_ref().1.peer_certificates()) != Some(peer.public_key) {
        warn!(peer = %peer.address, reason = RejectReason::UnexpectedPeerKey.as_str(), "the dialled peer has another key");
        shared.stats.reject(RejectReason::UnexpectedPeerKey);
        return Err("the peer's certificate key is not the expected validator key");
    }
    Ok(tls)
}

enum Pump {
    Shutdown,
    Failed(std::io::Error),
}

async fn pump(
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    outgoing: &mut Outgoing,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
    close: &tokio::sync::Notify,
) -> Pump {
    let mut writer = BufWriter::with_capacity(64 * 1024, tls);
    let mut keepalive = tokio::time::interval(shared.settings.keepalive_interval);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let write_timeout = shared.settings.write_timeout;
    loop {
        let result = tokio::select! {
            frame = outgoing.frames.recv() => match frame {
                None => return Pump::Shutdown,
                Some(payload) => {
                    outgoing.taken(&payload);
                    let burst = async {
                        write_frame(&mut writer, FrameKind::Data, &payload).await?;
                        shared.stats.sent();
                        // Drain what is already queued before flushing, so bursts share
                        // syscalls.
                        while let Ok(payload) = outgoing.frames.try_recv() {
                            outgoing.taken(&payload);
                            write_frame(&mut writer, FrameKind::Data, &payload).await?;
                            shared.stats.sent();
                        }
                        writer.flush().await
                    };
                    within(write_timeout, burst).await
                }
            },
            _ = keepalive.tick() => {
                let beat = async {
                    write_frame(&mut writer, FrameKind::KeepAlive, &[]).await?;
                    writer.flush().await
                };
                within(write_timeout, beat).await
            }
            _ = shutdown.changed() => return Pump::Shutdown,
            () = close.notified() => {
                return Pump::Failed(std::io::Error::other(
                    "closed: the peer's certificate is no longer trusted",
                ));
            }
        };
        if let Err(error) = result {
            return Pump::Failed(error);
        }
    }
}

/// `write`, or a timed-out error if the peer has not taken the bytes within `limit`.
async fn within(
    limit: Duration,
    write: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    match tokio::time::timeout(limit, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the peer took no bytes for {} ms", limit.as_millis()),
        )),
    }
}
