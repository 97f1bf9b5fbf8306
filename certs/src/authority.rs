//! Creating organisation CAs and issuing certificates (the library behind `pactum certs`).
//!
//! Time is an argument (`at`, Unix seconds) rather than read from a clock, so issuing is
//! reproducible in tests; the command line passes the current time.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use thiserror::Error;
use time::{Duration, OffsetDateTime};

use crate::identity::{CertificateInfo, Role, certificates_from_pem};
use crate::verify::CertError;

/// File names inside a CA directory and an issued certificate's directory.
pub const CA_CERTIFICATE_FILE: &str = "ca-certificate.pem";
pub const CA_PRIVATE_KEY_FILE: &str = "ca-private-key.pem";
pub const CERTIFICATE_FILE: &str = "certificate.pem";
pub const PRIVATE_KEY_FILE: &str = "private-key.pem";

/// Most days a certificate may be valid.
pub const VALIDITY_DAYS_MAX: u32 = 3650;

#[derive(Debug, Error)]
pub enum AuthorityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already exists; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Certificate {
        path: PathBuf,
        #[source]
        source: CertError,
    },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("the operating system's random number generator failed: {0}")]
    Entropy(String),
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_pem: String,
    pub private_key_pem: String,
}

fn time_at(at: i64) -> Result<OffsetDateTime, AuthorityError> {
    OffsetDateTime::from_unix_timestamp(at)
        .map_err(|error| AuthorityError::Invalid { what: "time", reason: error.to_string() })
}

fn random_serial() -> Result<SerialNumber, AuthorityError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| AuthorityError::Entropy(error.to_string()))?;
    // A positive INTEGER with no leading zero byte: clear the top bit, set the next one.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn validity(params: &mut CertificateParams, at: i64, days: u32) -> Result<(), AuthorityError> {
    if days == 0 || days > VALIDITY_DAYS_MAX {
        return Err(AuthorityError::Invalid {
            what: "validity",
            reason: format!("{days} days; choose 1 to {VALIDITY_DAYS_MAX}"),
        });
    }
    // Backdate by five minutes so peers with slightly slow clocks accept a fresh certificate.
    params.not_before = time_at(at)? - Duration::minutes(5);
    params.not_after = time_at(at)? + Duration::days(i64::from(days));
    Ok(())
}

fn check_name(what: &'static str, value: &str) -> Result<(), AuthorityError> {
    if value.trim().is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
        return Err(AuthorityError::Invalid {
            what,
            reason: format!("{value:?}: use 1 to 64 printable characters"),
        });
    }
    Ok(())
}

/// A new Ed25519 key whose PEM form (`serialize_pem`) is PKCS#8 v1 (RFC 5208: the
/// seed alone), which every tool reads; ring generates v2 (RFC 5958, with the public key),
/// which OpenSSL 3.0 refuses, so an operator could not renew a certificate for a key
/// `pactum certs` wrote.
fn ed25519_key() -> Result<KeyPair, AuthorityError> {
    let generated = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let seed = crate::tls::ed25519_seed_of_pkcs8(generated.serialized_der()).map_err(|error| {
        AuthorityError::Invalid { what: "generated key", reason: error.to_string() }
    })?;
    // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }
    let mut v1 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    v1.extend_from_slice(&seed);
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(v1);
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)?)
}

/// Creates a self-signed Ed25519 CA for `organisation`, valid from `at` for `days`.
pub fn create_authority(organisation: &str, at: i64, days: u32) -> Result<Issued, AuthorityError> {
    check_name("organisation", organisation)?;
    let key = ed25519_key()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, organisation);
    name.push(DnType::CommonName, format!("{organisation} CA"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(random_serial()?);
    validity(&mut params, at, days)?;
    let certificate = params.self_signed(&key)?;
    Ok(Issued { certificate_pem: certificate.pem(), private_key_pem: key.serialize_pem() })
}

/// What to put in an end-entity certificate.
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    pub role: Role,
    pub name: &'a str,
    /// DNS names or IP addresses.
    pub subject_alt_names: &'a [String],
    pub at: i64,
    pub days: u32,
}

/// The key of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// Every Pactum identity: validators, clients, admins.
    #[default]
    Ed25519,
    /// For a TLS server that browsers reach (the REST API): browsers refuse Ed25519
    /// server keys. Not a ledger identity.
    EcdsaP256,
}

/// Issues an Ed25519 certificate under the CA given as PEM certificate and key. The
/// organisation is the CA's; the role goes into the `OU`.
pub fn issue(
    authority_certificate_pem: &str,
    authority_key_pem: &str,
    request: &IssueRequest<'_>,
) -> Result<Issued, AuthorityError> {
    issue_with_key(authority_certificate_pem, authority_key_pem, request, KeyType::Ed25519)
}

/// Issues a certificate with a key of `key_type` under the CA given as PEM certificate
/// and key.
pub fn issue_with_key(
    authority_certificate_pem: &str,
    authority_key_pem: &str,
    request: &IssueRequest<'_>,
    key_type: KeyType,
) -> Result<Issued, AuthorityError> {
    check_name("name", request.name)?;
    let authority_der = certificates_from_pem(authority_certificate_pem.as_bytes())
        .map_err(|source| AuthorityError::Certificate {
            path: PathBuf::from("<CA certificate>"),
            source,
        })?
        .remove(0);
    let authority_info = CertificateInfo::from_der(&authority_der).map_err(|source| {
        AuthorityError::Certificate { path: PathBuf::from("<CA certificate>"), source }
    })?;
    if !authority_info.is_ca {
        return Err(AuthorityError::Invalid {
            what: "CA certificate",
            reason: "it is not a CA (basicConstraints CA:TRUE)".into(),
        });
    }
    let authority_key = KeyPair::from_pem(authority_key_pem)?;
    if authority_key.public_key_raw() != authority_info.public_key.0 {
        return Err(AuthorityError::Invalid {
            what: "CA private key",
            reason: "it does not belong to the CA certificate".into(),
        });
    }
    let issuer = Issuer::from_ca_cert_der(&authority_der.into(), authority_key)?;

    let key = match key_type {
        KeyType::Ed25519 => ed25519_key()?,
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
    };
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, authority_info.organisation.as_str());
    name.push(DnType::OrganizationalUnitName, request.role.as_str());
    name.push(DnType::CommonName, request.name);
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    for entry in request.subject_alt_names {
        params.subject_alt_names.push(match entry.parse::<IpAddr>() {
            Ok(address) => SanType::IpAddress(address),
            Err(_) => SanType::DnsName(entry.as_str().try_into().map_err(|_| {
                AuthorityError::Invalid {
                    what: "subject alternative name",
                    reason: format!("{entry:?} is neither an IP address nor a DNS name"),
                }
            })?),
        });
    }
    validity(&mut params, request.at, request.days)?;
    let certificate = params.signed_by(&key, &issuer)?;
    Ok(Issued { certificate_pem: certificate.pem(), private_key_pem: key.serialize_pem() })
}

/// Writes `contents` to a new file; private keys get mode 0600. Never overwrites.
pub fn write_new_file(path: &Path, contents: &str, private: bool) -> Result<(), AuthorityError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(if private { 0o600 } else { 0o644 });
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            AuthorityError::Exists { path: path.to_path_buf() }
        } else {
            AuthorityError::Io { path: path.to_path_buf(), source }
        }
    })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| AuthorityError::Io { path: path.to_path_buf(), source })
}

fn read(path: &Path) -> Result<String, AuthorityError> {
    std::fs::read_to_string(path)
        .map_err(|source| AuthorityError::Io { path: path.to_path_buf(), source })
}

fn create_dir(path: &Path) -> Result<(), AuthorityError> {
    std::fs::create_dir_all(path)
        .map_err(|source| AuthorityError::Io { path: path.to_path_buf(), source })
}

/// `pactum certs init-ca`: writes the CA certificate and its 0600 key into `out`.
pub fn init_authority_directory(
    organisation: &str,
    out: &Path,
    at: i64,
    days: u32,
) -> Result<CertificateInfo, AuthorityError> {
    create_dir(out)?;
    let issued = create_authority(organisation, at, days)?;
    write_new_file(&out.join(CA_PRIVATE_KEY_FILE), &issued.private_key_pem, true)?;
    write_new_file(&out.join(CA_CERTIFICATE_FILE), &issued.certificate_pem, false)?;
    certificate_info_of_pem(&issued.certificate_pem, &out.join(CA_CERTIFICATE_FILE))
}

/// `pactum certs issue`: issues under the CA in `authority_directory` and writes the
/// certificate, its 0600 key and a copy of the CA certificate into `out`.
pub fn issue_into_directory(
    authority_directory: &Path,
    request: &IssueRequest<'_>,
    out: &Path,
) -> Result<CertificateInfo, AuthorityError> {
    let authority_certificate = read(&authority_directory.join(CA_CERTIFICATE_FILE))?;
    let authority_key = read(&authority_directory.join(CA_PRIVATE_KEY_FILE))?;
    let issued = issue(&authority_certificate, &authority_key, request)?;
    write_issued(out, &issued, &authority_certificate)?;
    certificate_info_of_pem(&issued.certificate_pem, &out.join(CERTIFICATE_FILE))
}

/// Issues an ECDSA P-256 server certificate (for the REST API over TLS) under the CA in
/// `authority_directory` into `out`, as `issue_into_directory` does.
pub fn issue_server_into_directory(
    authority_directory: &Path,
    request: &IssueRequest<'_>,
    out: &Path,
) -> Result<(), AuthorityError> {
    let authority_certificate = read(&authority_directory.join(CA_CERTIFICATE_FILE))?;
    let authority_key = read(&authority_directory.join(CA_PRIVATE_KEY_FILE))?;
    let issued =
        issue_with_key(&authority_certificate, &authority_key, request, KeyType::EcdsaP256)?;
    write_issued(out, &issued, &authority_certificate)
}

fn write_issued(
    out: &Path,
    issued: &Issued,
    authority_certificate: &str,
) -> Result<(), AuthorityError> {
    create_dir(out)?;
    write_new_file(&out.join(PRIVATE_KEY_FILE), &issued.private_key_pem, true)?;
    write_new_file(&out.join(CERTIFICATE_FILE), &issued.certificate_pem, false)?;
    write_new_file(&out.join(CA_CERTIFICATE_FILE), authority_certificate, false)
}

fn certificate_info_of_pem(pem: &str, path: &Path) -> Result<CertificateInfo, AuthorityError> {
    let der = certificates_from_pem(pem.as_bytes())
        .map_err(|source| AuthorityError::Certificate { path: path.to_path_buf(), source })?
        .remove(0);
    CertificateInfo::from_der(&der)
        .map_err(|source| AuthorityError::Certificate { path: path.to_path_buf(), source })
}
