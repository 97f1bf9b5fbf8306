//! rustls configurations for validator-to-validator mutual TLS.
//!
//! TLS 1.3 only, Ed25519 only. Both sides present a certificate, and both sides run the
//! same [`PeerVerifier`]: the peer's certificate must chain to a trusted member CA, carry the
//! validator role, be valid at the handshake time, and not be revoked. The trust store is
//! shared, so a governance change applies to the next handshake without a restart.
//! Hostnames are not checked: a validator is known by its key, and the transport checks
//! that key against the validator set above TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};
use thiserror::Error;

use crate::identity::{CertificateInfo, Role};
use crate::verify::{CertError, TrustStore};

/// Why the TLS layer turned a peer away; carried inside `rustls::Error` so the transport
/// can log and count the precise reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeerRejection {
    #[error("{0}")]
    Certificate(#[from] CertError),
    #[error(
        "the handshake signature does not match the certificate's key (no private key for it?)"
    )]
    HandshakeSignature,
}

impl PeerRejection {
    fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(self))))
    }

    /// Finds a `PeerRejection` inside an error from a TLS handshake, if there is one.
    pub fn find(error: &(dyn std::error::Error + 'static)) -> Option<PeerRejection> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(error) = current {
            if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
                error.downcast_ref::<rustls::Error>()
            {
                return other.0.downcast_ref::<PeerRejection>().cloned();
            }
            if let Some(inner) =
                error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref)
            {
                current = Some(inner);
                continue;
            }
            current = error.source();
        }
        None
    }
}

/// Errors building a TLS configuration.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Certificate(#[from] CertError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// This node's certificate and private key.
#[derive(Debug)]
pub struct NodeIdentity {
    pub certificate: CertificateDer<'static>,
    /// The intermediate CAs between the certificate and its member's root, presented in
    /// TLS after it (empty for a certificate the root issued).
    pub chain: Vec<CertificateDer<'static>>,
    pub private_key: PrivateKeyDer<'static>,
    pub info: CertificateInfo,
}

impl NodeIdentity {
    /// Loads a PEM certificate, followed in the same file by any intermediate CAs
    /// (leaf first, as `openssl` and corporate CAs write a chain), and a PEM PKCS#8
    /// private key.
    pub fn load(certificate_path: &Path, private_key_path: &Path) -> Result<Self, TlsError> {
        let file_error = |path: &Path, reason: String| TlsError::File {
            path: path.display().to_string(),
            reason,
        };
        let mut certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(certificate_path)
                .and_then(|iter| iter.collect::<Result<_, _>>())
                .map_err(|error| file_error(certificate_path, error.to_string()))?;
        if certificates.is_empty() {
            return Err(file_error(certificate_path, "no PEM certificate found".into()));
        }
        let certificate = certificates.remove(0);
        let private_key = PrivateKeyDer::from_pem_file(private_key_path)
            .map_err(|error| file_error(private_key_path, error.to_string()))?;
        let mut identity = Self::from_der(certificate, private_key)?;
        identity.chain = certificates;
        Ok(identity)
    }

    /// The certificate and its intermediates, as TLS presents them.
    pub fn presented_chain(&self) -> Vec<CertificateDer<'static>> {
        std::iter::once(self.certificate.clone()).chain(self.chain.iter().cloned()).collect()
    }

    /// The intermediates as DER slices.
    pub fn chain_der(&self) -> Vec<&[u8]> {
        self.chain.iter().map(AsRef::as_ref).collect()
    }

    pub fn from_der(
        certificate: CertificateDer<'static>,
        private_key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let info = CertificateInfo::from_der(&certificate)?;
        Ok(Self { certificate, chain: Vec::new(), private_key, info })
    }

    /// The Ed25519 seed of the private key (PKCS#8 v1 or v2), which is also the node's
    /// consensus signing key: one identity per key. Fails unless the key is Ed25519 and
    /// matches the certificate.
    pub fn ed25519_seed(&self) -> Result<[u8; 32], TlsError> {
        let seed = ed25519_seed_of_pkcs8(self.private_key.secret_der())?;
        let public = pactum_types::crypto::Keypair::from_seed(&seed).public_key();
        if public != self.info.public_key {
            return Err(TlsError::File {
                path: "private key".into(),
                reason: "the private key does not belong to the certificate".into(),
            });
        }
        Ok(seed)
    }
}

/// The 32-byte Ed25519 seed inside a PKCS#8 (v1 or v2) private key.
pub fn ed25519_seed_of_pkcs8(der: &[u8]) -> Result<[u8; 32], TlsError> {
    // AlgorithmIdentifier { id-Ed25519 (1.3.101.112) } then the OCTET STRING wrapping the
    // 32-byte CurvePrivateKey OCTET STRING (RFC 8410 §7).
    const MARKER: [u8; 9] = [0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let not_ed25519 = || TlsError::File {
        path: "private key".into(),
        reason: "the private key is not an Ed25519 PKCS#8 key".into(),
    };
    let start =
        der.windows(MARKER.len()).position(|window| window == MARKER).ok_or_else(not_ed25519)?
            + MARKER.len();
    der.get(start..start + 32).and_then(|bytes| bytes.try_into().ok()).ok_or_else(not_ed25519)
}

/// The Ed25519 seed of a PEM PKCS#8 private key (as `pactum certs issue` or
/// `openssl genpkey -algorithm ed25519` write it).
pub fn ed25519_seed_of_pem(pem: &str) -> Result<[u8; 32], TlsError> {
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|error| TlsError::File {
        path: "private key".into(),
        reason: error.to_string(),
    })?;
    ed25519_seed_of_pkcs8(key.secret_der())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Verifies the other side of a validator connection, in either direction.
#[derive(Debug)]
pub struct PeerVerifier {
    trust: Arc<TrustStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    pub fn new(trust: Arc<TrustStore>) -> Self {
        Self { trust, algorithms: provider().signature_verification_algorithms }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let at = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let presented: Vec<&[u8]> = intermediates.iter().map(AsRef::as_ref).collect();
        self.trust
            .verify_chain(end_entity, &presented, at, Some(Role::Validator))
            .map(|_| ())
            .map_err(|error| PeerRejection::Certificate(error).into_rustls())
    }

    fn refuse_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not accepted".into()))
    }

    fn schemes() -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn handshake_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, certificate, signature, &self.algorithms)
            .map_err(|_| PeerRejection::HandshakeSignature.into_rustls())
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _certificate: &CertificateDer<'_>,
        _signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::refuse_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Self::schemes()
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _certificate: &CertificateDer<'_>,
        _signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::refuse_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Self::schemes()
    }
}

/// The certificate (with its chain) and key this node presents, replaceable while
/// connections run: a renewed certificate for the same key (`SIGHUP`) is presented from
/// the next handshake on. The key never changes: it is the node's consensus key.
#[derive(Debug)]
pub struct PresentedIdentity {
    public_key: pactum_types::PublicKey,
    current: std::sync::RwLock<Arc<CertifiedKey>>,
}

impl PresentedIdentity {
    pub fn new(identity: &NodeIdentity) -> Result<Self, TlsError> {
        Ok(Self {
            public_key: identity.info.public_key,
            current: std::sync::RwLock::new(Arc::new(certified_key(identity)?)),
        })
    }

    /// Presents `identity` from now on. It must be for the same key.
    pub fn replace(&self, identity: &NodeIdentity) -> Result<(), TlsError> {
        if identity.info.public_key != self.public_key {
            return Err(TlsError::File {
                path: "certificate".into(),
                reason: format!(
                    "the new certificate is for key {}, but this node's key is {}: a validator's \
                     key changes only by governance",
                    identity.info.public_key, self.public_key
                ),
            });
        }
        let key = Arc::new(certified_key(identity)?);
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = key;
        Ok(())
    }

    fn get(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

fn certified_key(identity: &NodeIdentity) -> Result<CertifiedKey, TlsError> {
    Ok(CertifiedKey::from_der(
        identity.presented_chain(),
        identity.private_key.clone_key(),
        &provider(),
    )?)
}

impl ResolvesServerCert for PresentedIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

impl ResolvesClientCert for PresentedIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The listening side: TLS 1.3, client certificates mandatory.
pub fn server_config(
    identity: Arc<PresentedIdentity>,
    trust: Arc<TrustStore>,
) -> Result<ServerConfig, TlsError> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(PeerVerifier::new(trust)))
        .with_cert_resolver(identity);
    Ok(config)
}

/// The dialling side: TLS 1.3, presenting this node's certificate.
pub fn client_config(
    identity: Arc<PresentedIdentity>,
    trust: Arc<TrustStore>,
) -> Result<ClientConfig, TlsError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier::new(trust)))
        .with_client_cert_resolver(identity);
    Ok(config)
}
