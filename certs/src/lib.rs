//! Pactum's consortium PKI.
//!
//! - [`authority`]: create an organisation CA and issue role-bearing certificates (the
//!   library behind `pactum certs`).
//! - [`identity`]: read who a certificate names: organisation (`O`), role (the one `OU` that
//!   is `validator`, `client` or `admin`), name (`CN`), Ed25519 key, serial and validity.
//! - [`verify`]: check a certificate against trusted CA certificates and revocations *at a
//!   given time*, so the ledger can check against block time deterministically.
//! - [`tls`]: rustls client and server configurations for validator mutual TLS, with
//!   verifiers that apply those checks and whose trust can change at runtime.
//!
//! Certificates from any standard tool work: the role travels in a plain `OU` attribute
//! (see `docs/adr/0006-role-in-organisational-unit.md`).

#![forbid(unsafe_code)]

pub mod authority;
pub mod identity;
pub mod tls;
pub mod verify;

pub use identity::{CertificateInfo, Role};
pub use verify::{CertError, TrustStore, Verified};
