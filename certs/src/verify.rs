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
    #[error(
        "the chain through {issuer} is longer than {max} intermediate CAs, or longer than a CA's \
         path length allows"
    )]
    ChainTooLong { issuer: String, max: usize },
    #[error("{issuer} issued this certificate but is not a CA (basicConstraints CA:TRUE)")]
    IssuerNotCa { issuer: String },
}

/// Intermediate CAs a chain may have between a leaf and its member's root.
pub const CHAIN_INTERMEDIATES_MAX: usize = 3;

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
    /// A self-signed root: a chain may end here. An intermediate only links a chain to
    /// a root; it confers no trust by itself.
    root: bool,
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
        let (info, root) = Self::authority_info(der)?;
        if !root {
            let organisation = info.organisation;
            return Err(CertError::BadSignature { organisation });
        }
        self.insert(der, &info, true);
        Ok(info)
    }

    /// Adds a member's intermediate CA (an Ed25519 CA certificate that is not
    /// self-signed): chains may pass through it to one of the member's roots. It is
    /// checked against the roots when a chain is verified, not here.
    pub fn add_intermediate(&self, der: &[u8]) -> Result<CertificateInfo, CertError> {
        let (info, _) = Self::authority_info(der)?;
        self.insert(der, &info, false);
        Ok(info)
    }

    /// A CA certificate's identity, and whether it is self-signed.
    fn authority_info(der: &[u8]) -> Result<(CertificateInfo, bool), CertError> {
        let certificate = parse(der)?;
        let info = CertificateInfo::from_parsed(&certificate)?;
        if !info.is_ca {
            return Err(CertError::Malformed {
                reason: "a trust root must be a CA certificate (basicConstraints CA:TRUE)".into(),
            });
        }
        let self_signed = certificate.subject().as_raw() == certificate.issuer().as_raw()
            && certificate.verify_signature(None).is_ok();
        Ok((info, self_signed))
    }

    fn insert(&self, der: &[u8], info: &CertificateInfo, root: bool) {
        let mut state = self.state.write().expect("trust store lock is never poisoned");
        state.authorities.retain(|authority| authority.der != der);
        let organisation = info.organisation.clone();
        state.authorities.push(Authority { der: der.to_vec(), organisation, root });
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
            if fresh.add_authority(der).is_err() {
                let _ = fresh.add_intermediate(der);
            }
        }
        let mut next = fresh.state.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        next.revoked = revoked.into_iter().collect();
        *self.state.write().expect("trust store lock is never poisoned") = next;
    }

    /// Whether `organisation` has a trusted CA here (is a member).
    pub fn has_organisation(&self, organisation: &str) -> bool {
        let state = self.state.read().expect("trust store lock is never poisoned");
        state
            .authorities
            .iter()
            .any(|authority| authority.root && authority.organisation == organisation)
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

    /// Checks `der` at Unix time `at`: it parses, names one organisation and role, chains
    /// (through the member's intermediate CAs in this store) to that organisation's
    /// trusted root, every certificate of the chain is valid at `at` and unrevoked.
    /// `required_role`, when given, must match.
    pub fn verify(
        &self,
        der: &[u8],
        at: i64,
        required_role: Option<Role>,
    ) -> Result<Verified, CertError> {
        self.verify_chain(der, &[], at, required_role)
    }

    /// Like [`TrustStore::verify`], with `presented` intermediate CAs (as a TLS peer
    /// sends them) as well as the store's: a chain still has to end at a trusted root of
    /// the leaf's organisation, and every CA on it has to be that organisation's.
    pub fn verify_chain(
        &self,
        der: &[u8],
        presented: &[&[u8]],
        at: i64,
        required_role: Option<Role>,
    ) -> Result<Verified, CertError> {
        let certificate = parse(der)?;
        let info = CertificateInfo::from_parsed(&certificate)?;
        if info.is_ca {
            return Err(CertError::AuthorityAsLeaf);
        }
        if presented.len() > CHAIN_INTERMEDIATES_MAX {
            return Err(CertError::ChainTooLong {
                issuer: certificate.issuer().to_string(),
                max: CHAIN_INTERMEDIATES_MAX,
            });
        }
        if at < info.not_before {
            return Err(CertError::NotYetValid { not_before: info.not_before, at });
        }
        if at > info.not_after {
            return Err(CertError::Expired { not_after: info.not_after, at });
        }
        let state = self.state.read().expect("trust store lock is never poisoned");
        if state.revoked.contains(&(info.organisation.clone(), info.serial.clone())) {
            let serial = info.serial_hex();
            return Err(CertError::Revoked { organisation: info.organisation, serial });
        }
        chain_to_root(&state, certificate, presented, &info.organisation, 0, at)?;
        if let (Some(required), Some(actual)) = (required_role, info.role)
            && required != actual
        {
            return Err(CertError::WrongRole { actual, required });
        }
        Ok(Verified { info })
    }
}

impl TrustStore {
    /// Checks that the CA certificate `der` (an intermediate of a member) chains to one of
    /// that member's trusted roots here, each CA on the way valid at `at` and unrevoked. A
    /// trusted root passes as it is.
    pub fn verify_authority(&self, der: &[u8], at: i64) -> Result<CertificateInfo, CertError> {
        let (info, self_signed) = Self::authority_info(der)?;
        let state = self.state.read().expect("trust store lock is never poisoned");
        let trusted_root = self_signed
            && state.authorities.iter().any(|authority| authority.root && authority.der == der);
        if !trusted_root {
            chain_to_root(&state, parse(der)?, &[], &info.organisation, 1, at)?;
        }
        Ok(info)
    }
}

/// Walks from `certificate` up through the store's CAs and `presented` ones to a trusted
/// root of `organisation`: every CA on the way must be that organisation's, a CA, valid at
/// `at`, unrevoked, and allow the path length below it (`below`: the CA certificates
/// between the start of the path and the next issuer).
fn chain_to_root(
    state: &TrustState,
    certificate: x509_parser::certificate::X509Certificate<'_>,
    presented: &[&[u8]],
    organisation: &str,
    mut below: usize,
    at: i64,
) -> Result<(), CertError> {
    let mut candidates: Vec<(&[u8], bool)> = state
        .authorities
        .iter()
        .map(|authority| (authority.der.as_slice(), authority.root))
        .collect();
    candidates.extend(presented.iter().map(|der| (*der, false)));
    let mut current = certificate;
    loop {
        let (issuer_der, root) = issuer_of(&current, &candidates, organisation)?;
        let issuer = parse(issuer_der)?;
        let issuer_info = CertificateInfo::from_parsed(&issuer)?;
        if !issuer_info.is_ca {
            return Err(CertError::IssuerNotCa { issuer: issuer.subject().to_string() });
        }
        if issuer_info.organisation != organisation {
            return Err(CertError::OrganisationMismatch {
                certificate: organisation.to_owned(),
                authority: issuer_info.organisation,
            });
        }
        if at < issuer_info.not_before || at > issuer_info.not_after {
            return Err(CertError::AuthorityNotValid {
                organisation: issuer_info.organisation,
                at,
            });
        }
        if state.revoked.contains(&(issuer_info.organisation.clone(), issuer_info.serial.clone())) {
            let serial = issuer_info.serial_hex();
            return Err(CertError::Revoked { organisation: issuer_info.organisation, serial });
        }
        let path_length = issuer
            .basic_constraints()
            .ok()
            .flatten()
            .and_then(|constraints| constraints.value.path_len_constraint);
        let too_long = CertError::ChainTooLong {
            issuer: issuer.subject().to_string(),
            max: CHAIN_INTERMEDIATES_MAX,
        };
        if path_length.is_some_and(|allowed| below > allowed as usize) {
            return Err(too_long);
        }
        if root {
            return Ok(());
        }
        below += 1;
        if below > CHAIN_INTERMEDIATES_MAX {
            return Err(too_long);
        }
        current = issuer;
    }
}

/// The candidate CA (DER, and whether it is a trusted root) that issued `certificate`:
/// its subject is the certificate's issuer and its key verifies the certificate's
/// signature. A trusted root is preferred.
fn issuer_of<'a>(
    certificate: &x509_parser::certificate::X509Certificate<'_>,
    candidates: &[(&'a [u8], bool)],
    organisation: &str,
) -> Result<(&'a [u8], bool), CertError> {
    let issuer_raw = certificate.issuer().as_raw();
    let mut issuer_found = false;
    let mut found = None;
    for (der, root) in candidates {
        let Ok(candidate) = parse(der) else { continue };
        if candidate.subject().as_raw() != issuer_raw {
            continue;
        }
        issuer_found = true;
        if certificate.verify_signature(Some(candidate.public_key())).is_ok() {
            if *root {
                return Ok((der, true));
            }
            found.get_or_insert((*der, false));
        }
    }
    match found {
        Some(found) => Ok(found),
        None if issuer_found => {
            Err(CertError::BadSignature { organisation: organisation.to_owned() })
        }
        None => Err(CertError::UnknownIssuer { issuer: certificate.issuer().to_string() }),
    }
}
