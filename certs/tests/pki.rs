//! The PKI against itself and against certificates made by the `openssl` command line.

use std::path::Path;
use std::process::Command;

use pactum_certs::authority::{self, IssueRequest};
use pactum_certs::identity::certificates_from_pem;
use pactum_certs::{CertError, CertificateInfo, Role, TrustStore};

const NOW: i64 = 1_795_000_000; // 2026-11-18

fn der(pem: &str) -> Vec<u8> {
    certificates_from_pem(pem.as_bytes()).unwrap().remove(0)
}

fn authority(organisation: &str) -> authority::Issued {
    authority::create_authority(organisation, NOW - 86_400, 3650).unwrap()
}

fn issue(ca: &authority::Issued, role: Role, name: &str, at: i64, days: u32) -> Vec<u8> {
    let request = IssueRequest { role, name, subject_alt_names: &["127.0.0.1".into()], at, days };
    der(&authority::issue(&ca.certificate_pem, &ca.private_key_pem, &request)
        .unwrap()
        .certificate_pem)
}

#[test]
fn issued_certificates_carry_organisation_role_and_name() {
    let ca = authority("Hospital A");
    let leaf = issue(&ca, Role::Validator, "validator-1", NOW, 30);
    let info = CertificateInfo::from_der(&leaf).unwrap();
    assert_eq!(info.organisation, "Hospital A");
    assert_eq!(info.role, Some(Role::Validator));
    assert_eq!(info.name, "validator-1");
    assert!(!info.is_ca);
    let ca_info = CertificateInfo::from_der(&der(&ca.certificate_pem)).unwrap();
    assert!(ca_info.is_ca);
    assert_eq!(ca_info.role, None);
}

#[test]
fn verification_is_at_the_given_time() {
    let ca = authority("Hospital A");
    let trust = TrustStore::new();
    trust.add_authority(&der(&ca.certificate_pem)).unwrap();
    let leaf = issue(&ca, Role::Client, "alice", NOW, 10);
    assert!(trust.verify(&leaf, NOW + 3600, Some(Role::Client)).is_ok());
    assert!(matches!(trust.verify(&leaf, NOW + 11 * 86_400, None), Err(CertError::Expired { .. })));
    assert!(matches!(trust.verify(&leaf, NOW - 3600, None), Err(CertError::NotYetValid { .. })));
}

#[test]
fn foreign_ca_wrong_role_and_revoked_serial_are_refused() {
    let member = authority("Carrier");
    let foreign = authority("Carrier"); // same name, different key: an impostor CA
    let trust = TrustStore::new();
    trust.add_authority(&der(&member.certificate_pem)).unwrap();

    let impostor = issue(&foreign, Role::Validator, "v1", NOW, 30);
    let error = trust.verify(&impostor, NOW + 60, Some(Role::Validator)).unwrap_err();
    assert!(
        matches!(error, CertError::BadSignature { .. } | CertError::UnknownIssuer { .. }),
        "{error}"
    );

    let client = issue(&member, Role::Client, "c1", NOW, 30);
    assert_eq!(
        trust.verify(&client, NOW + 60, Some(Role::Validator)).unwrap_err(),
        CertError::WrongRole { actual: Role::Client, required: Role::Validator }
    );

    let validator = issue(&member, Role::Validator, "v1", NOW, 30);
    assert!(trust.verify(&validator, NOW + 60, Some(Role::Validator)).is_ok());
    let serial = CertificateInfo::from_der(&validator).unwrap().serial;
    trust.revoke("Carrier", &serial);
    assert!(matches!(trust.verify(&validator, NOW + 60, None), Err(CertError::Revoked { .. })));

    trust.remove_organisation("Carrier");
    assert!(matches!(trust.verify(&client, NOW + 60, None), Err(CertError::UnknownIssuer { .. })));
}

#[test]
fn a_ca_certificate_cannot_act_as_a_leaf_and_a_leaf_cannot_be_a_root() {
    let ca = authority("Bank");
    let trust = TrustStore::new();
    let ca_der = der(&ca.certificate_pem);
    trust.add_authority(&ca_der).unwrap();
    assert_eq!(trust.verify(&ca_der, NOW, None).unwrap_err(), CertError::AuthorityAsLeaf);
    let leaf = issue(&ca, Role::Admin, "ops", NOW, 30);
    assert!(trust.add_authority(&leaf).is_err());
}

#[test]
fn issuing_with_a_key_that_is_not_the_cas_is_refused() {
    let ca = authority("Bank");
    let other = authority("Bank");
    let request =
        IssueRequest { role: Role::Client, name: "x", subject_alt_names: &[], at: NOW, days: 1 };
    let error =
        authority::issue(&ca.certificate_pem, &other.private_key_pem, &request).unwrap_err();
    assert!(error.to_string().contains("does not belong to the CA certificate"), "{error}");
}

#[test]
fn private_keys_are_written_with_mode_0600_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().unwrap();
    let ca_directory = directory.path().join("ca");
    authority::init_authority_directory("Org", &ca_directory, NOW, 365).unwrap();
    let mode = std::fs::metadata(ca_directory.join(authority::CA_PRIVATE_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let request =
        IssueRequest { role: Role::Validator, name: "v", subject_alt_names: &[], at: NOW, days: 1 };
    let out = directory.path().join("v");
    authority::issue_into_directory(&ca_directory, &request, &out).unwrap();
    let mode =
        std::fs::metadata(out.join(authority::PRIVATE_KEY_FILE)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let error = authority::init_authority_directory("Org", &ca_directory, NOW, 365).unwrap_err();
    assert!(error.to_string().contains("refusing to overwrite"), "{error}");
}

fn openssl(directory: &Path, arguments: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(directory)
        .args(arguments)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a validator certificate made entirely by the openssl command line are
/// accepted exactly like Pactum's own.
#[test]
fn certificates_made_by_openssl_are_accepted() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path();
    std::fs::write(
        path.join("ca.cnf"),
        "[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n[v3_leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(path, &["genpkey", "-algorithm", "ed25519", "-out", "ca.key"]);
    openssl(
        path,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/O=Supplier Co/CN=Supplier Co CA",
            "-days",
            "365",
            "-config",
            "ca.cnf",
            "-extensions",
            "v3_ca",
            "-out",
            "ca.pem",
        ],
    );
    openssl(path, &["genpkey", "-algorithm", "ed25519", "-out", "v.key"]);
    openssl(
        path,
        &[
            "req",
            "-new",
            "-key",
            "v.key",
            "-subj",
            "/O=Supplier Co/OU=validator/CN=validator-9",
            "-config",
            "ca.cnf",
            "-out",
            "v.csr",
        ],
    );
    openssl(
        path,
        &[
            "x509",
            "-req",
            "-in",
            "v.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ca.cnf",
            "-extensions",
            "v3_leaf",
            "-out",
            "v.pem",
        ],
    );

    let ca_der = der(&std::fs::read_to_string(path.join("ca.pem")).unwrap());
    let leaf_der = der(&std::fs::read_to_string(path.join("v.pem")).unwrap());
    let trust = TrustStore::new();
    let ca_info = trust.add_authority(&ca_der).unwrap();
    assert_eq!(ca_info.organisation, "Supplier Co");
    let info = CertificateInfo::from_der(&leaf_der).unwrap();
    let now = info.not_before + 60;
    let verified = trust.verify(&leaf_der, now, Some(Role::Validator)).unwrap();
    assert_eq!(verified.info.role, Some(Role::Validator));
    assert_eq!(verified.info.name, "validator-9");
    assert_eq!(verified.info.organisation, "Supplier Co");
}
