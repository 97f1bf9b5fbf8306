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

/// A root → intermediate → leaf chain made by `tests/pki/openssl-chain.sh` (openssl only),
/// with its leaf's organisation; every file is PEM in `directory`.
fn openssl_chain(directory: &Path, organisation: &str, role: &str, name: &str) {
    openssl_chain_with_root_path_length(directory, organisation, role, name, 1);
}

fn openssl_chain_with_root_path_length(
    directory: &Path,
    organisation: &str,
    role: &str,
    name: &str,
    path_length: u8,
) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pki/openssl-chain.sh");
    let output = Command::new("bash")
        .env("ROOT_PATHLEN", path_length.to_string())
        .arg(script)
        .arg(directory)
        .args([organisation, role, name])
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn pem_file(directory: &Path, file: &str) -> Vec<u8> {
    der(&std::fs::read_to_string(directory.join(file)).unwrap())
}

/// Enterprise PKIs issue through an intermediate CA: the chain is accepted when the
/// intermediate is presented (as TLS does) or listed with the member's CAs, and never
/// trusted on its own.
#[test]
fn a_chain_through_an_intermediate_ca_is_accepted_and_checked_link_by_link() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path();
    openssl_chain(path, "Supplier Co", "validator", "validator-9");
    let (root, intermediate, leaf) = (
        pem_file(path, "root.pem"),
        pem_file(path, "intermediate.pem"),
        pem_file(path, "leaf.pem"),
    );
    let now = CertificateInfo::from_der(&leaf).unwrap().not_before + 60;

    let trust = TrustStore::new();
    trust.add_authority(&root).unwrap();
    // The root alone does not know the intermediate.
    assert!(matches!(trust.verify(&leaf, now, None), Err(CertError::UnknownIssuer { .. })));
    let verified = trust.verify_chain(&leaf, &[&intermediate], now, Some(Role::Validator)).unwrap();
    assert_eq!(verified.info.name, "validator-9");
    // Listed with the member's CAs, the intermediate links the chain without being sent.
    trust.add_intermediate(&intermediate).unwrap();
    trust.verify(&leaf, now, Some(Role::Validator)).unwrap();
    trust.verify_authority(&intermediate, now).unwrap();

    // An intermediate confers no trust without its root.
    let orphan = TrustStore::new();
    orphan.add_intermediate(&intermediate).unwrap();
    assert!(orphan.verify(&leaf, now, None).is_err());
    assert!(orphan.verify_authority(&intermediate, now).is_err());
    // A presented certificate is never a root, even a self-signed one.
    let stranger = TrustStore::new();
    assert!(stranger.verify_chain(&leaf, &[&intermediate, &root], now, None).is_err());

    // Revoking the intermediate refuses everything it issued.
    let intermediate_info = CertificateInfo::from_der(&intermediate).unwrap();
    trust.revoke("Supplier Co", &intermediate_info.serial);
    assert!(matches!(trust.verify(&leaf, now, None), Err(CertError::Revoked { .. })));
}

#[test]
fn a_root_that_allows_no_intermediate_or_another_members_intermediate_breaks_the_chain() {
    let directory = tempfile::tempdir().unwrap();
    let (first, second) = (directory.path().join("a"), directory.path().join("b"));
    openssl_chain(&first, "Supplier Co", "client", "alice");
    openssl_chain(&second, "Carrier Co", "client", "bob");
    let leaf = pem_file(&first, "leaf.pem");
    let now = CertificateInfo::from_der(&leaf).unwrap().not_before + 60;
    // The other member's intermediate does not link Supplier Co's leaf to anything.
    let trust = TrustStore::new();
    trust.add_authority(&pem_file(&first, "root.pem")).unwrap();
    trust.add_intermediate(&pem_file(&second, "intermediate.pem")).unwrap();
    assert!(trust.verify(&leaf, now, None).is_err());
    // A root whose path length is 0 allows no intermediate under it.
    let strict = directory.path().join("c");
    openssl_chain_with_root_path_length(&strict, "Supplier Co", "client", "carol", 0);
    let trust = TrustStore::new();
    trust.add_authority(&pem_file(&strict, "root.pem")).unwrap();
    let intermediate = pem_file(&strict, "intermediate.pem");
    let error = trust
        .verify_chain(&pem_file(&strict, "leaf.pem"), &[&intermediate], now, None)
        .unwrap_err();
    assert!(matches!(error, CertError::ChainTooLong { .. }), "{error}");
}

/// Keys written by `pactum certs` work with the openssl command line, so an operator can
/// renew a certificate for the same key with openssl (OpenSSL 3.0 refuses the PKCS#8 v2
/// encoding ring writes by default; Pactum writes v1).
#[test]
fn private_keys_written_by_pactum_are_read_by_openssl() {
    let directory = tempfile::tempdir().unwrap();
    let ca = authority("Bank");
    let request =
        IssueRequest { role: Role::Validator, name: "v", subject_alt_names: &[], at: NOW, days: 1 };
    let leaf = authority::issue(&ca.certificate_pem, &ca.private_key_pem, &request).unwrap();
    for (file, pem) in [("ca.key", &ca.private_key_pem), ("leaf.key", &leaf.private_key_pem)] {
        std::fs::write(directory.path().join(file), pem).unwrap();
        openssl(directory.path(), &["pkey", "-in", file, "-noout"]);
        // And Pactum still reads its own keys.
        pactum_certs::tls::ed25519_seed_of_pem(pem).unwrap();
    }
}
