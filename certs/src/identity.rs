//! Reading a certificate's identity with x509-parser.

use std::fmt;

use pactum_types::PublicKey;
use pactum_types::hash::sha3_256;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::OID_SIG_ED25519;

use crate::verify::CertError;

/// What a certificate holder may do in the consortium.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Runs a validator node: may join the validator mesh.
    Validator,
    /// Signs and submits transactions.
    Client,
    /// Operates the admin service.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Validator, Role::Client, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Validator => "validator",
            Role::Client => "client",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Everything Pactum reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub organisation: String,
    /// `None` for a CA certificate, which carries no role.
    pub role: Option<Role>,
    pub name: String,
    pub public_key: PublicKey,
    /// The serial number's big-endian bytes.
    pub serial: Vec<u8>,
    /// Validity bounds, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
}

impl CertificateInfo {
    /// SHA3-256 of the raw Ed25519 public key, hex: the key's fingerprint.
    pub fn fingerprint(&self) -> String {
        sha3_256(&self.public_key.0).to_hex()
    }

    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }

    /// Reads a DER certificate. Fails if it does not parse, has no single organisation or
    /// common name, or its key is not Ed25519. A leaf must carry exactly one role `OU`.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let certificate = parse(der)?;
        Self::from_parsed(&certificate)
    }

    pub(crate) fn from_parsed(certificate: &X509Certificate<'_>) -> Result<Self, CertError> {
        let subject = certificate.subject();
        let single = |values: Vec<&str>, what: &'static str| -> Result<String, CertError> {
            match values.as_slice() {
                [value] => Ok((*value).to_owned()),
                [] => Err(CertError::Malformed { reason: format!("the subject has no {what}") }),
                _ => {
                    Err(CertError::Malformed { reason: format!("the subject has several {what}s") })
                }
            }
        };
        let organisation = single(
            subject.iter_organization().filter_map(|value| value.as_str().ok()).collect(),
            "organisation (O)",
        )?;
        let name = single(
            subject.iter_common_name().filter_map(|value| value.as_str().ok()).collect(),
            "common name (CN)",
        )?;
        let roles: Vec<Role> = subject
            .iter_organizational_unit()
            .filter_map(|value| value.as_str().ok())
            .filter_map(Role::parse)
            .collect();
        let is_ca = certificate.is_ca();
        let role = match (roles.as_slice(), is_ca) {
            ([], true) => None,
            ([role], false) => Some(*role),
            ([], false) => {
                return Err(CertError::NoRole);
            }
            (_, false) => {
                return Err(CertError::Malformed {
                    reason: "the subject has more than one role OU".into(),
                });
            }
            (_, true) => {
                return Err(CertError::Malformed {
                    reason: "a CA certificate carries a role".into(),
                });
            }
        };
        let spki = certificate.public_key();
        if spki.algorithm.algorithm != OID_SIG_ED25519 {
            return Err(CertError::NotEd25519 {
                algorithm: spki.algorithm.algorithm.to_id_string(),
            });
        }
        let key: [u8; 32] = spki.subject_public_key.data.as_ref().try_into().map_err(|_| {
            CertError::Malformed { reason: "the Ed25519 key is not 32 bytes".into() }
        })?;
        Ok(Self {
            organisation,
            role,
            name,
            public_key: PublicKey(key),
            serial: certificate.raw_serial().to_vec(),
            not_before: certificate.validity().not_before.timestamp(),
            not_after: certificate.validity().not_after.timestamp(),
            is_ca,
        })
    }
}

pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    let (rest, certificate) = x509_parser::parse_x509_certificate(der).map_err(|error| {
        CertError::Malformed { reason: format!("not an X.509 certificate: {error}") }
    })?;
    if !rest.is_empty() {
        return Err(CertError::Malformed { reason: "trailing bytes after the certificate".into() });
    }
    Ok(certificate)
}

/// Reads every `CERTIFICATE` block of a PEM file, in order.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    let mut certificates = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block =
            block.map_err(|error| CertError::Malformed { reason: format!("bad PEM: {error}") })?;
        if block.label == "CERTIFICATE" {
            certificates.push(block.contents);
        }
    }
    if certificates.is_empty() {
        return Err(CertError::Malformed {
            reason: "no CERTIFICATE block in the PEM input".into(),
        });
    }
    Ok(certificates)
}
