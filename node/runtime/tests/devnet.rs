//! Laying out a local consortium: the genesis it writes passes every genesis rule, keys are
//! private, a second run reuses the layout, and bad plans are refused.

use std::os::unix::fs::PermissionsExt;

use pactum_certs::Role;
use pactum_runtime::Genesis;
use pactum_runtime::devnet::{DevnetError, DevnetPlan, NodeConfig, prepare};
use pactum_types::ChainId;

const NOW: i64 = 1_790_000_000;

fn plan(directory: &std::path::Path, validators: usize) -> DevnetPlan {
    DevnetPlan {
        directory: directory.to_path_buf(),
        validators,
        chain_id: ChainId::new("pactum-devnet").unwrap(),
        p2p_base_port: 17_000,
        api_base_port: 18_000,
        now: NOW,
    }
}

#[test]
fn a_devnet_layout_holds_a_valid_genesis_and_one_private_key_per_validator() {
    let directory = tempfile::tempdir().unwrap();
    let devnet = prepare(&plan(directory.path(), 4)).unwrap();
    assert!(devnet.created);
    // The file on disk is a genesis a node accepts.
    let genesis = Genesis::load(&devnet.genesis_path).unwrap();
    assert_eq!(genesis.hash, devnet.genesis.hash);
    assert_eq!(genesis.organisations.len(), 4, "one member organisation per validator");
    assert_eq!(genesis.file.governance.approvals_required, 3);
    let trust = genesis.trust_store();
    for (index, path) in devnet.node_configs.iter().enumerate() {
        let config = NodeConfig::load(path).unwrap();
        assert_eq!(config.genesis, devnet.genesis_path);
        assert_eq!(config.listen, format!("127.0.0.1:{}", 17_000 + index));
        assert_eq!(config.api_listen, format!("127.0.0.1:{}", 18_000 + index));
        assert_eq!(genesis.validators[index].address, config.listen);
        // The certificate in the config is the one in genesis, and it verifies.
        let pem = std::fs::read(&config.certificate).unwrap();
        let der = pactum_certs::identity::certificates_from_pem(&pem).unwrap().remove(0);
        assert_eq!(der, genesis.validators[index].certificate_der);
        trust.verify(&der, NOW, Some(Role::Validator)).unwrap();
        let mode = std::fs::metadata(&config.private_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", config.private_key.display());
    }
}

#[test]
fn preparing_again_reuses_the_layout_and_a_different_size_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let first = prepare(&plan(directory.path(), 4)).unwrap();
    let genesis_bytes = std::fs::read(&first.genesis_path).unwrap();
    let again = prepare(&plan(directory.path(), 4)).unwrap();
    assert!(!again.created);
    assert_eq!(again.genesis.hash, first.genesis.hash);
    assert_eq!(std::fs::read(&first.genesis_path).unwrap(), genesis_bytes, "nothing rewritten");
    let error = prepare(&plan(directory.path(), 7)).unwrap_err();
    assert!(matches!(error, DevnetError::DifferentSize { existing: 4, .. }), "{error}");
    assert!(error.to_string().contains("--validators 4"));
}

#[test]
fn bad_plans_are_refused_before_anything_is_written() {
    let directory = tempfile::tempdir().unwrap();
    let error = prepare(&plan(directory.path(), 3)).unwrap_err();
    assert!(error.to_string().contains("at least 4 validators"), "{error}");
    let mut high = plan(directory.path(), 4);
    high.api_base_port = 65_534;
    assert!(matches!(prepare(&high).unwrap_err(), DevnetError::Ports { .. }));
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 0, "nothing written");
    // Seven validators make a valid genesis too (f = 2).
    let seven = tempfile::tempdir().unwrap();
    let devnet = prepare(&plan(seven.path(), 7)).unwrap();
    assert_eq!(devnet.genesis.consensus_config().quorum(), 5);
}
