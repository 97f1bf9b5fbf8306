//! The identities the console acts as besides the admin key: client certificates of this
//! organisation with their keys, kept in `DATA_DIR/identities/NAME/` (the key readable by
//! its owner only), enrolled on the ledger when added.

use std::path::PathBuf;

use pactum_certs::authority::{CERTIFICATE_FILE, PRIVATE_KEY_FILE};
use pactum_certs::identity::{CertificateInfo, Role, certificates_from_pem};
use pactum_types::crypto::Keypair;

/// The name the admin key goes by.
pub const ADMIN: &str = "admin";

/// One identity: its name, certificate and key.
pub struct Identity {
    pub name: String,
    pub info: CertificateInfo,
    pub certificate_der: Vec<u8>,
    pub keypair: Keypair,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Identity")
            .field("name", &self.name)
            .field("public_key", &self.info.public_key)
            .finish_non_exhaustive()
    }
}

/// The identities directory.
#[derive(Debug)]
pub struct Identities {
    directory: PathBuf,
}

impl Identities {
    pub fn open(directory: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&directory)?;
        Ok(Self { directory })
    }

    /// Checks a certificate and its key, as an operator hands them over: a name of 1 to 32
    /// lower-case letters, digits and dashes (not `admin`), a client certificate (PEM)
    /// and the PKCS#8 Ed25519 key (PEM) of its public key.
    pub fn check(
        name: &str,
        certificate_pem: &str,
        private_key_pem: &str,
    ) -> Result<Identity, String> {
        let well_formed = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if !well_formed || name == ADMIN {
            return Err(format!(
                "{name:?} is not an identity name: 1 to 32 lower-case letters, digits and dashes, not \"admin\""
            ));
        }
        let der = certificates_from_pem(certificate_pem.as_bytes())
            .map_err(|error| format!("the certificate: {error}"))?
            .into_iter()
            .next()
            .ok_or("the certificate field holds no PEM certificate")?;
        let info =
            CertificateInfo::from_der(&der).map_err(|error| format!("the certificate: {error}"))?;
        if info.role != Some(Role::Client) {
            return Err("that is not a client certificate (its role must be client)".into());
        }
        let keypair = pactum_client::keypair_from_pem(private_key_pem)
            .map_err(|error| format!("the private key: {error}"))?;
        if keypair.public_key() != info.public_key {
            return Err("the private key is not the key of the certificate".into());
        }
        Ok(Identity { name: name.to_owned(), info, certificate_der: der, keypair })
    }

    /// Keeps `identity` (refusing a name in use); the key file is mode 0600.
    pub fn save(
        &self,
        identity: &Identity,
        certificate_pem: &str,
        private_key_pem: &str,
    ) -> Result<(), String> {
        let directory = self.directory.join(&identity.name);
        std::fs::create_dir(&directory)
            .map_err(|_| format!("an identity named {:?} exists already", identity.name))?;
        crate::write_file(&directory.join(PRIVATE_KEY_FILE), private_key_pem, 0o600)
            .and_then(|()| {
                crate::write_file(&directory.join(CERTIFICATE_FILE), certificate_pem, 0o644)
            })
            .map_err(|error| format!("cannot keep the identity: {error}"))
    }

    /// Every identity kept, by name.
    pub fn list(&self) -> Vec<Identity> {
        let mut names: Vec<String> = std::fs::read_dir(&self.directory)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort();
        names.into_iter().filter_map(|name| self.load(&name).ok()).collect()
    }

    /// The identity `name`.
    pub fn load(&self, name: &str) -> Result<Identity, String> {
        let directory = self.directory.join(name);
        let read = |file: &str| {
            std::fs::read_to_string(directory.join(file))
                .map_err(|_| format!("there is no identity named {name:?}"))
        };
        Self::check(name, &read(CERTIFICATE_FILE)?, &read(PRIVATE_KEY_FILE)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pactum_certs::authority::{IssueRequest, create_authority, issue};

    fn issued(role: Role, name: &str) -> pactum_certs::authority::Issued {
        let at = pactum_clock::unix_seconds();
        let ca = create_authority("Member 2", at - 60, 30).unwrap();
        let request = IssueRequest { role, name, subject_alt_names: &[], at: at - 60, days: 30 };
        issue(&ca.certificate_pem, &ca.private_key_pem, &request).unwrap()
    }

    #[test]
    fn only_a_client_certificate_with_its_own_key_is_kept_once() {
        let directory = tempfile::tempdir().unwrap();
        let identities = Identities::open(directory.path().join("identities")).unwrap();
        let alice = issued(Role::Client, "alice");
        let other = issued(Role::Client, "bob");
        let admin = issued(Role::Admin, "carol");
        let refuse = |name: &str, certificate: &str, key: &str| {
            Identities::check(name, certificate, key).unwrap_err()
        };
        assert!(
            refuse("Alice", &alice.certificate_pem, &alice.private_key_pem)
                .contains("not an identity name")
        );
        assert!(
            refuse("admin", &alice.certificate_pem, &alice.private_key_pem)
                .contains("not an identity name")
        );
        assert!(
            refuse("alice", &alice.certificate_pem, &other.private_key_pem).contains("not the key")
        );
        assert!(refuse("carol", &admin.certificate_pem, &admin.private_key_pem).contains("client"));
        let identity =
            Identities::check("alice", &alice.certificate_pem, &alice.private_key_pem).unwrap();
        identities.save(&identity, &alice.certificate_pem, &alice.private_key_pem).unwrap();
        let again = identities.save(&identity, &alice.certificate_pem, &alice.private_key_pem);
        assert!(again.unwrap_err().contains("exists already"));
        let kept = identities.list();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].keypair.public_key(), identity.info.public_key);
        use std::os::unix::fs::PermissionsExt as _;
        let key_file = directory.path().join("identities").join("alice").join(PRIVATE_KEY_FILE);
        assert_eq!(std::fs::metadata(key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
