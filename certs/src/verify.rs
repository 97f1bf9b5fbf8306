//! Checking a certificate against the consortium's trust roots at a given time.

use std::collections::HashSet;
use std::sync::RwLock;

use thiserror::Error;

use crate::identity::{CertificateInfo, Role, parse};

/// Why a certificate is not accepted. Each variant is a reason a peer is turned away.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertError {
    #[error("malformed certificate: {reason}")]
    Malformed { reason: String },
    #[error("the certificate key is not Ed25519 (algorithm {algorithm})")]
    NotEd25519 { algorithm: String },
    #[error("the certificate carries no role (an OU of validator, client or admin)")]
    NoRole,
    #[error("no trusted member CA issued this certificate (issuer {issuer})")]
    UnknownIssuer { issuer: String },
    #[error("the certificate's signature does not verify under the CA of {organisation}")]
    BadSignature { organisation: String },
    #[error("the certificate names organisation {certificate} but its CA is {authority}'s")]
    OrganisationMismatch { certificate: String, authority: String },
    #[error("the certificate expired at {not_after} (checked at {at})")]
    Expired { not_after: i64, at: i64 },
    #[error("the certificate is not valid until {not_before} (checked at {at})")]
    NotYetValid { not_before: i64, at: i64 },
    #[error("the CA certificate of {organisation} is not valid at {at}")]
    AuthorityNotValid { organisation: String, at: i64 },
    #[error("the certificate has role {actual}, but {required} is required")]
    WrongRole { actual: Role, required: Role },
    #[error("the certificate {serial} of {organisation} is revoked")]
    Revoked { organisation: String, serial: String },
    #[error("a CA certificate cannot be used as an end-entity certificate")]
    AuthorityAsLeaf,
}

/// A certificate that chains to a trusted CA, is valid at the time checked, and is not
/// revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub info: CertificateInfo,
}

#[derive(Debug, Clone)]
struct Authority {
    der: Vec<u8>,
    organisation: String,
}

#[derive(Debug, Default)]
struct TrustState {
    authorities: Vec<Authority>,
    /// `(organisation, serial bytes)`.
    revoked: HashSet<(String, Vec<u8>)>,
}

/// The member CAs and revoked serials a node trusts. Shared by the TLS verifiers and
/// updated at runtime (when governance adds a member or revokes a certificate) without
/// restarting anything.
#[derive(Debug, Default)]
pub struct TrustStore {
    state: RwLock<TrustState>,
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member CA. It must be a self-signed Ed25519 CA certificate.
    pub fn add_authority(&self, der: &[u8]) -> Result<CertificateInfo, CertError> {
        let certificate = parse(der)?;
        let info = CertificateInfo::from_parsed(&certificate)?;
        if !info.is_ca {
            return Err(CertError::Malformed {
                reason: "a trust root must be a CA certificate (basicConstraints CA:TRUE)".into(),
            });
        }
        if certificate.verify_signature(None).is_err() {
            return Err(CertError::BadSignature { organisation: info.organisation });
        }
        let mut state = self.state.write().expect("trust store lock is never poisoned");
        state.authorities.retain(|authority| authority.der != der);
        state
            .authorities
            .push(Authority { der: der.to_vec(), organisation: info.organisation.clone() });
        Ok(info)
    }

    /// Replaces every CA and revocation at once (a governance change applied): a
    /// verification runs wholly before or wholly after it. An authority that is not a
    /// self-signed CA is left out (governance checked each before it reached the ledger).
    pub fn replace(
        &self,
        authorities: &[&[u8]],
        revoked: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) {
        let fresh = TrustStore::new();
        for der in authorities {
            let _ = fresh.add_authority(der);
        }
        let mut next = fresh.state.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        next.revoked = revoked.into_iter().collect();
        *self.state.write().expect("trust store lock is never poisoned") = next;
    }

    /// Whether `organisation` has a trusted CA here (is a member).
    pub fn has_organisation(&self, organisation: &str) -> bool {
        let state = self.state.read().expect("trust store lock is never poisoned");
        state.authorities.iter().any(|authority| authority.organisation == organisation)
    }

    /// Removes every CA of `organisation` (a member left the consortium).
    pub fn remove_organisation(&self, organisation: &str) {
        let mut state = self.state.write().expect("trust store lock is never poisoned");
        state.authorities.retain(|authority| authority.organisation != organisation);
    }

    pub fn revoke(&self, organisation: &str, serial: &[u8]) {
        let mut state = self.state.write().expect("trust store lock is never poisoned");
        state.revoked.insert((organisation.to_owned(), serial.to_vec()));
    }

    /// Whether the certificate `serial` of `organisation` is revoked.
    pub fn is_revoked(&self, organisation: &str, serial: &[u8]) -> bool {
        let state = self.state.read().expect("trust store lock is never poisoned");
        state.revoked.contains(&(organisation.to_owned(), serial.to_vec()))
    }

    /// Checks `der` at Unix time `at`: it parses, names one organisation and role, is
    /// signed by that organisation's trusted CA, both are valid at `at`, and the serial is
    /// not revoked. `required_role`, when given, must match.
    pub fn verify(
        &self,
        der: &[u8],
        at: i64,
        required_role: Option<Role>,
    ) -> Result<Verified, CertError> {
        let certificate = parse(der)?;
        let info = CertificateInfo::from_parsed(&certificate)?;
        if info.is_ca {
            return Err(CertError::AuthorityAsLeaf);
        }
        let state = self.state.read().expect("trust store lock is never poisoned");
        let issuer_raw = certificate.issuer().as_raw();
        let mut issuer_found = false;
        let mut authority_match = None;
        for authority in &state.authorities {
            let authority_certificate = parse(&authority.der)?;
            if authority_certificate.subject().as_raw() != issuer_raw {
                continue;
            }
            issuer_found = true;
            if certificate.verify_signature(Some(authority_certificate.public_key())).is_ok() {
                authority_match = Some((authority, authority_certificate));
                break;
            }
        }
        let Some((authority, authority_certificate)) = authority_match else {
            return Err(if issuer_found {
                CertError::BadSignature { organisation: certificate.issuer().to_string() }
            } else {
                CertError::UnknownIssuer { issuer: certificate.issuer().to_string() }
            });
        };
        if authority.organisation != info.organisation {
            return Err(CertError::OrganisationMismatch {
                certificate: info.organisation,
                authority: authority.organisation.clone(),
            });
        }
        let authority_validity = authority_certificate.validity();
        if at < authority_validity.not_before.timestamp()
            || at > authority_validity.not_after.timestamp()
        {
            return Err(CertError::AuthorityNotValid {
                organisation: authority.organisation.clone(),
                at,
            });
        }
        if at < info.not_before {
            return Err(CertError::NotYetValid { not_before: info.not_before, at });
        }
        if at > info.not_after {
            return Err(CertError::Expired { not_after: info.not_after, at });
        }
        if state.revoked.contains(&(info.organisation.clone(), info.serial.clone())) {
            let serial = info.serial_hex();
            return Err(CertError::Revoked { organisation: info.organisation, serial });
        }
        if let (Some(required), Some(actual)) = (required_role, info.role)
            && required != actual
        {
            return Err(CertError::WrongRole { actual, required });
        }
        Ok(Verified { info })
    }
}
