//! Counters for the transport, read by tests and exported as metrics by the node.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pactum_certs::CertError;
use pactum_certs::tls::PeerRejection;

/// Why a connection was turned away or closed by this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    NoCertificate,
    UnknownIssuer,
    BadCertificateSignature,
    MalformedCertificate,
    Expired,
    NotYetValid,
    WrongRole,
    Revoked,
    HandshakeSignature,
    NotInValidatorSet,
    UnexpectedPeerKey,
    TlsProtocol,
    HandshakeTimeout,
    FrameTooLarge,
    BadFrame,
    IdleTimeout,
    TooManyConnections,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NoCertificate => "no_certificate",
            RejectReason::UnknownIssuer => "unknown_issuer",
            RejectReason::BadCertificateSignature => "bad_certificate_signature",
            RejectReason::MalformedCertificate => "malformed_certificate",
            RejectReason::Expired => "expired",
            RejectReason::NotYetValid => "not_yet_valid",
            RejectReason::WrongRole => "wrong_role",
            RejectReason::Revoked => "revoked",
            RejectReason::HandshakeSignature => "handshake_signature",
            RejectReason::NotInValidatorSet => "not_in_validator_set",
            RejectReason::UnexpectedPeerKey => "unexpected_peer_key",
            RejectReason::TlsProtocol => "tls_protocol",
            RejectReason::HandshakeTimeout => "handshake_timeout",
            RejectReason::FrameTooLarge => "frame_too_large",
            RejectReason::BadFrame => "bad_frame",
            RejectReason::IdleTimeout => "idle_timeout",
            RejectReason::TooManyConnections => "too_many_connections",
        }
    }

    /// Classifies a failed TLS handshake.
    pub(crate) fn of_handshake_error(error: &std::io::Error) -> RejectReason {
        if let Some(rejection) = PeerRejection::find(error) {
            return match rejection {
                PeerRejection::HandshakeSignature => RejectReason::HandshakeSignature,
                PeerRejection::Certificate(error) => match error {
                    CertError::UnknownIssuer { .. }
                    | CertError::OrganisationMismatch { .. }
                    | CertError::IssuerNotCa { .. }
                    | CertError::ChainTooLong { .. } => RejectReason::UnknownIssuer,
                    CertError::BadSignature { .. } => RejectReason::BadCertificateSignature,
                    CertError::Expired { .. } | CertError::AuthorityNotValid { .. } => {
                        RejectReason::Expired
                    }
                    CertError::NotYetValid { .. } => RejectReason::NotYetValid,
                    CertError::WrongRole { .. } => RejectReason::WrongRole,
                    CertError::Revoked { .. } => RejectReason::Revoked,
                    CertError::Malformed { .. }
                    | CertError::NotEd25519 { .. }
                    | CertError::NoRole
                    | CertError::AuthorityAsLeaf => RejectReason::MalformedCertificate,
                },
            };
        }
        let rustls_error = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match rustls_error {
            Some(rustls::Error::NoCertificatesPresented) => RejectReason::NoCertificate,
            _ => RejectReason::TlsProtocol,
        }
    }
}

/// Transport counters. All methods are cheap and lock-free except the rejection map,
/// which is touched only on the (rare) rejection path.
#[derive(Debug, Default)]
pub struct TransportStats {
    rejections: Mutex<BTreeMap<RejectReason, u64>>,
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
    connections_established: AtomicU64,
}

impl TransportStats {
    pub(crate) fn reject(&self, reason: RejectReason) {
        *self
            .rejections
            .lock()
            .expect("stats lock is never poisoned")
            .entry(reason)
            .or_default() += 1;
    }

    pub(crate) fn sent(&self) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn received(&self) {
        self.frames_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn established(&self) {
        self.connections_established.fetch_add(1, Ordering::Relaxed);
    }

    /// How many connections were turned away for `reason`.
    pub fn rejections(&self, reason: RejectReason) -> u64 {
        self.rejections
            .lock()
            .expect("stats lock is never poisoned")
            .get(&reason)
            .copied()
            .unwrap_or(0)
    }

    /// Every non-zero rejection counter.
    pub fn all_rejections(&self) -> BTreeMap<RejectReason, u64> {
        self.rejections.lock().expect("stats lock is never poisoned").clone()
    }

    pub fn frames_sent(&self) -> u64 {
        self.frames_sent.load(Ordering::Relaxed)
    }

    pub fn frames_received(&self) -> u64 {
        self.frames_received.load(Ordering::Relaxed)
    }

    pub fn connections_established(&self) -> u64 {
        self.connections_established.load(Ordering::Relaxed)
    }
}
