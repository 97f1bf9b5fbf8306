//! Canonical encoding: golden vectors, round trips, and rejection of every non-canonical
//! form. Refresh the golden files with `PACTUM_UPDATE_GOLDEN=1 cargo test -p pactum-types`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use pactum_types::*;
use proptest::prelude::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn updating() -> bool {
    std::env::var_os("PACTUM_UPDATE_GOLDEN").is_some()
}

/// Compares `actual` with the golden file `name`, or rewrites the file when updating.
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if updating() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} is missing; run with PACTUM_UPDATE_GOLDEN=1", path.display())
    });
    assert!(
        expected == actual,
        "{} differs from the encoding this build produces.\n--- golden\n{expected}\n--- actual\n{actual}\n\
         If the change is intended, bump the format version and refresh with PACTUM_UPDATE_GOLDEN=1.",
        path.display()
    );
}

fn all_samples() -> BTreeMap<String, (Vec<u8>, serde_json::Value, Option<Hash>)> {
    let mut samples = BTreeMap::new();
    for (name, transaction) in sample_transactions() {
        samples.insert(
            name.to_owned(),
            (
                transaction.to_bytes(),
                serde_json::to_value(&transaction).unwrap(),
                Some(transaction.hash()),
            ),
        );
    }
    for (name, receipt) in sample_receipts() {
        samples.insert(
            name.to_owned(),
            (receipt.to_bytes(), serde_json::to_value(&receipt).unwrap(), None),
        );
    }
    let block = sample_block();
    samples.insert(
        "block".into(),
        (block.to_bytes(), serde_json::to_value(&block).unwrap(), Some(block.hash())),
    );
    samples
}

#[test]
fn encodings_match_golden_vectors() {
    let mut text = String::from("# name hex-encoding (refresh with PACTUM_UPDATE_GOLDEN=1)\n");
    let mut hashes = String::from("# name sha3-256 (transactions: signed bytes; blocks: header)\n");
    for (name, (bytes, _, hash)) in all_samples() {
        text.push_str(&format!("{name} {}\n", hex::encode(bytes)));
        if let Some(hash) = hash {
            hashes.push_str(&format!("{name} {hash}\n"));
        }
    }
    check_golden("encoding.txt", &text);
    check_golden("hashes.txt", &hashes);
}

#[test]
fn json_forms_match_golden_files() {
    let mut text = String::new();
    for (name, (_, json, _)) in all_samples() {
        text.push_str(&format!("## {name}\n{}\n", serde_json::to_string_pretty(&json).unwrap()));
    }
    check_golden("json.txt", &text);
}

#[test]
fn golden_samples_round_trip_in_both_forms() {
    for (name, transaction) in sample_transactions() {
        assert_eq!(
            Transaction::from_bytes(&transaction.to_bytes()).unwrap(),
            transaction,
            "{name}"
        );
        let json = serde_json::to_string(&transaction).unwrap();
        assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), transaction, "{name}");
        assert!(transaction.verify_signature().is_ok(), "{name}");
    }
    for (name, receipt) in sample_receipts() {
        assert_eq!(Receipt::from_bytes(&receipt.to_bytes()).unwrap(), receipt, "{name}");
        let json = serde_json::to_string(&receipt).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), receipt, "{name}");
    }
    let block = sample_block();
    assert_eq!(Block::from_bytes(&block.to_bytes()).unwrap(), block);
    let json = serde_json::to_string(&block).unwrap();
    assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), block);
    let signed = [crypto::domain::TEST_CHAIN_COMMIT, &block.hash().0].concat();
    assert!(block.certificate.verify_signatures(&|_| Some(signed.clone())).is_ok());
    let other = [crypto::domain::TEST_CHAIN_COMMIT, &[0u8; 32][..]].concat();
    assert!(block.certificate.verify_signatures(&|_| Some(other.clone())).is_err());
    assert!(block.certificate.verify_signatures(&|_| None).is_err(), "unknown signers");
}

#[test]
fn json_rejects_malformed_hex_and_unknown_fields() {
    let (_, transaction) = sample_transactions().remove(0);
    let mut json = serde_json::to_value(&transaction).unwrap();
    json["sender"] = serde_json::Value::String("zz".into());
    assert!(serde_json::from_value::<Transaction>(json).is_err());
    let mut json = serde_json::to_value(&transaction).unwrap();
    json["surprise"] = serde_json::Value::Bool(true);
    assert!(serde_json::from_value::<Transaction>(json).is_err());
    let mut json = serde_json::to_value(&transaction).unwrap();
    json["chain_id"] = serde_json::Value::String("Not Valid".into());
    assert!(serde_json::from_value::<Transaction>(json).is_err());
}

#[test]
fn unsorted_or_duplicate_certificate_signers_are_not_canonical() {
    let block = sample_block();
    let bytes = block.to_bytes();
    let header_length = block.header.to_bytes().len();
    let body_length = bytes.len() - header_length - 4 - 3 * 96;
    let certificate_start = header_length + body_length + 4;
    // Swap the first two (validator, signature) entries.
    let mut swapped = bytes.clone();
    let (first, second) = (certificate_start, certificate_start + 96);
    let first_entry = bytes[first..first + 96].to_vec();
    swapped[first..first + 96].copy_from_slice(&bytes[second..second + 96]);
    swapped[second..second + 96].copy_from_slice(&first_entry);
    assert!(matches!(
        Block::from_bytes(&swapped),
        Err(DecodeError::Invalid { what: "commit certificate", .. })
    ));
    // Duplicate the first entry in place of the second.
    let mut duplicated = bytes;
    duplicated[second..second + 96].copy_from_slice(&first_entry);
    assert!(Block::from_bytes(&duplicated).is_err());
}

#[test]
fn unknown_versions_and_tags_are_refused() {
    let (_, transaction) = sample_transactions().remove(0);
    let mut bytes = transaction.to_bytes();
    bytes[0] = 2;
    assert_eq!(
        Transaction::from_bytes(&bytes),
        Err(DecodeError::UnsupportedVersion { what: "transaction", version: 2, supported: 1 })
    );
    let mut bytes = sample_block().to_bytes();
    bytes[0] = 0;
    assert!(matches!(
        Block::from_bytes(&bytes),
        Err(DecodeError::UnsupportedVersion { what: "block", .. })
    ));
}

/// A mutation of an encoding: flip a byte, drop one, insert one, truncate, or append.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { position: usize, mask: u8 },
    Remove { position: usize },
    Insert { position: usize, byte: u8 },
    Truncate { length: usize },
    Append { byte: u8 },
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(position, mask)| Mutation::Flip { position, mask }),
        any::<usize>().prop_map(|position| Mutation::Remove { position }),
        (any::<usize>(), any::<u8>())
            .prop_map(|(position, byte)| Mutation::Insert { position, byte }),
        any::<usize>().prop_map(|length| Mutation::Truncate { length }),
        any::<u8>().prop_map(|byte| Mutation::Append { byte }),
    ]
}

fn apply(bytes: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match *mutation {
        Mutation::Flip { position, mask } => out[position % bytes.len()] ^= mask,
        Mutation::Remove { position } => {
            out.remove(position % bytes.len());
        }
        Mutation::Insert { position, byte } => out.insert(position % (bytes.len() + 1), byte),
        Mutation::Truncate { length } => out.truncate(length % bytes.len()),
        Mutation::Append { byte } => out.push(byte),
    }
    out
}

/// The canonical-encoding property: whatever decodes re-encodes to exactly the input, and
/// a changed input never decodes to the original value.
fn assert_canonical<T: Encode + Decode + PartialEq + std::fmt::Debug>(
    value: &T,
    mutation: &Mutation,
) {
    let bytes = value.to_bytes();
    let decoded = T::from_bytes(&bytes).expect("encodings decode");
    assert_eq!(&decoded, value);
    let mutated = apply(&bytes, mutation);
    if mutated == bytes {
        return;
    }
    if let Ok(other) = T::from_bytes(&mutated) {
        assert_ne!(&other, value, "two encodings of one value: {mutation:?}");
        assert_eq!(
            other.to_bytes(),
            mutated,
            "a non-canonical encoding was accepted: {mutation:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn transactions_are_canonical(transaction in arb_transaction(), mutation in arb_mutation()) {
        assert_canonical(&transaction, &mutation);
        let json = serde_json::to_string(&transaction).unwrap();
        prop_assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), transaction);
    }

    #[test]
    fn receipts_are_canonical(receipt in arb_receipt(), mutation in arb_mutation()) {
        assert_canonical(&receipt, &mutation);
        let json = serde_json::to_string(&receipt).unwrap();
        prop_assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), receipt);
    }

    #[test]
    fn blocks_are_canonical(block in arb_block(), mutation in arb_mutation()) {
        assert_canonical(&block, &mutation);
        let json = serde_json::to_string(&block).unwrap();
        prop_assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), block);
    }

    #[test]
    fn arbitrary_bytes_decode_only_to_their_own_encoding(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(transaction) = Transaction::from_bytes(&bytes) {
            prop_assert_eq!(transaction.to_bytes(), bytes.clone());
        }
        if let Ok(receipt) = Receipt::from_bytes(&bytes) {
            prop_assert_eq!(receipt.to_bytes(), bytes.clone());
        }
        if let Ok(block) = Block::from_bytes(&bytes) {
            prop_assert_eq!(block.to_bytes(), bytes);
        }
    }

    #[test]
    fn different_lists_never_share_a_merkle_root(
        left in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..12),
        right in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..12),
    ) {
        if left != right {
            prop_assert_ne!(merkle::root(&left), merkle::root(&right));
        }
    }

    #[test]
    fn extending_a_list_by_its_last_leaf_changes_the_root(
        list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 1..12),
    ) {
        let mut extended = list.clone();
        extended.push(list.last().unwrap().clone());
        prop_assert_ne!(merkle::root(&list), merkle::root(&extended));
    }
}
