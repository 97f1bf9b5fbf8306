//! The RocksDB store against real RocksDB: commits, reads, schema checks, state roots and
//! the audit's detection of damage made through the raw RocksDB API.

use pactum_storage::StoreRead;
use pactum_storage::audit::{AuditFault, audit};
use pactum_storage::builder::ChainBuilder;
use pactum_storage::{BlockCommit, ColumnFamily, StateChange, StateSpace, StorageError, Store};
use pactum_types::{Address, ChainId, Encode};

fn chain_id() -> ChainId {
    ChainId::new("pactum-test").unwrap()
}

fn new_chain(path: &std::path::Path, blocks: u64, transactions: usize) -> ChainBuilder {
    let mut store = Store::open(path).unwrap();
    let mut builder = ChainBuilder::new(chain_id(), 4, 3, 42);
    builder.extend(&mut store, blocks, transactions).unwrap();
    builder
}

fn raw_db(path: &std::path::Path) -> rocksdb::DB {
    let names: Vec<&str> = ColumnFamily::ALL.iter().map(|family| family.name()).collect();
    rocksdb::DB::open_cf(&rocksdb::Options::default(), path, names).unwrap()
}

fn audit_at(path: &std::path::Path) -> Result<pactum_storage::audit::AuditReport, AuditFault> {
    let store = Store::open_read_only(path).unwrap();
    audit(&store, &pactum_storage::builder::check_test_chain_certificate, &mut |_, _| {})
}

#[test]
fn committed_blocks_read_back_and_survive_reopen() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    let builder = new_chain(&path, 5, 4);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.last_height(), 5);
    let block = store.block(3).unwrap().unwrap();
    assert_eq!(block.header.height, 3);
    assert_eq!(block.transactions.len(), 4);
    let hash = block.transactions[2].hash();
    let location = store.transaction_location(&hash).unwrap().unwrap();
    assert_eq!((location.height, location.position), (3, 2));
    assert_eq!(store.receipt(&hash).unwrap().unwrap().transaction_hash, hash);
    assert_eq!(store.recompute_state_root().unwrap(), store.state_root());
    assert_eq!(store.block_outcome(5).unwrap().unwrap().state_root, store.state_root());
    assert!(store.block(6).unwrap().is_none());
    assert_eq!(builder.height(), 5);
}

#[test]
fn out_of_order_and_inconsistent_commits_are_refused_and_write_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    let builder = new_chain(&path, 2, 2);
    let mut store = Store::open(&path).unwrap();
    let next = builder.next_block(2);

    let mut skipped = next.block.clone();
    skipped.header.height = 4;
    let error = store
        .commit_block(BlockCommit { block: &skipped, receipts: &next.receipts, state_changes: &[] })
        .unwrap_err();
    assert!(matches!(error, StorageError::HeightOutOfOrder { expected: 3, got: 4 }), "{error}");

    let error = store
        .commit_block(BlockCommit {
            block: &next.block,
            receipts: &next.receipts[..1],
            state_changes: &[],
        })
        .unwrap_err();
    assert!(matches!(error, StorageError::InconsistentCommit { height: 3, .. }), "{error}");

    let mut swapped = next.receipts.clone();
    swapped.swap(0, 1);
    let error = store
        .commit_block(BlockCommit { block: &next.block, receipts: &swapped, state_changes: &[] })
        .unwrap_err();
    assert!(error.to_string().contains("receipt 0 is not for transaction 0"), "{error}");

    assert_eq!(store.last_height(), 2);
    assert!(store.block(3).unwrap().is_none());
}

#[test]
fn a_key_written_twice_in_one_block_hashes_like_its_final_value() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    let builder = new_chain(&path, 1, 1);
    let mut store = Store::open(&path).unwrap();
    let next = builder.next_block(1);
    let space = StateSpace::Contract(Address([5; 32]));
    let change = |value: Option<&[u8]>| StateChange {
        space,
        key: b"k".to_vec(),
        value: value.map(<[u8]>::to_vec),
    };
    let changes =
        vec![change(Some(b"first")), change(Some(b"second")), change(None), change(Some(b"final"))];
    let state_root = store
        .commit_block(BlockCommit {
            block: &next.block,
            receipts: &next.receipts,
            state_changes: &changes,
        })
        .unwrap();
    assert_eq!(store.state_get(space, b"k").unwrap().as_deref(), Some(&b"final"[..]));
    assert_eq!(store.recompute_state_root().unwrap(), state_root);
}

#[test]
fn consortium_and_contract_spaces_are_separate() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    let builder = new_chain(&path, 1, 1);
    let mut store = Store::open(&path).unwrap();
    let next = builder.next_block(1);
    let changes = vec![StateChange {
        space: StateSpace::Consortium,
        key: b"policy".to_vec(),
        value: Some(b"3-of-4".to_vec()),
    }];
    store
        .commit_block(BlockCommit {
            block: &next.block,
            receipts: &next.receipts,
            state_changes: &changes,
        })
        .unwrap();
    assert_eq!(
        store.state_get(StateSpace::Consortium, b"policy").unwrap().as_deref(),
        Some(&b"3-of-4"[..])
    );
    assert_eq!(store.state_get(StateSpace::Contract(Address([0; 32])), b"policy").unwrap(), None);
    assert_eq!(store.recompute_state_root().unwrap(), store.state_root());
}

#[test]
fn ledger_records_live_under_the_reserved_prefix_and_count_in_the_state_root() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    let builder = new_chain(&path, 1, 1);
    let mut store = Store::open(&path).unwrap();
    let root_before = store.state_root();
    let next = builder.next_block(1);
    let changes = vec![
        StateChange {
            space: StateSpace::Ledger,
            key: b"nonce/k".to_vec(),
            value: Some(7u64.to_be_bytes().to_vec()),
        },
        StateChange {
            space: StateSpace::Consortium,
            key: b"nonce/k".to_vec(),
            value: Some(b"other".to_vec()),
        },
    ];
    let state_root = store
        .commit_block(BlockCommit {
            block: &next.block,
            receipts: &next.receipts,
            state_changes: &changes,
        })
        .unwrap();
    assert_ne!(state_root, root_before);
    assert_eq!(
        store.state_get(StateSpace::Ledger, b"nonce/k").unwrap().as_deref(),
        Some(&7u64.to_be_bytes()[..])
    );
    assert_eq!(
        store.state_get(StateSpace::Consortium, b"nonce/k").unwrap().as_deref(),
        Some(&b"other"[..])
    );
    // The ledger space is the state column family under the reserved all-zero prefix.
    assert_eq!(
        store
            .state_get(StateSpace::Contract(Address(pactum_storage::LEDGER_PREFIX)), b"nonce/k")
            .unwrap()
            .as_deref(),
        Some(&7u64.to_be_bytes()[..])
    );
    assert_eq!(store.recompute_state_root().unwrap(), state_root);
}

#[test]
fn schema_version_mismatches_are_refused_with_a_clear_message() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    new_chain(&path, 1, 1);
    let set_version = |bytes: &[u8]| {
        let db = raw_db(&path);
        db.put_cf(&db.cf_handle("meta").unwrap(), b"schema_version", bytes).unwrap();
    };

    set_version(&7u32.to_be_bytes());
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StorageError::SchemaTooNew { found: 7, supported: 1, .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("schema version 7") && message.contains("upgrade pactum"),
        "{message}"
    );
    assert!(Store::open_read_only(&path).is_err());

    set_version(&0u32.to_be_bytes());
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StorageError::SchemaUnknown { found: 0, .. }), "{error}");

    set_version(b"v1!");
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StorageError::SchemaUnreadable { .. }), "{error}");

    set_version(&1u32.to_be_bytes());
    assert_eq!(Store::open(&path).unwrap().last_height(), 1);
}

#[test]
fn a_rocksdb_without_a_schema_version_is_not_a_pactum_store() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("foreign");
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&options, &path, ["blocks"]).unwrap();
        db.put_cf(&db.cf_handle("blocks").unwrap(), 1u64.to_be_bytes(), b"x").unwrap();
    }
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StorageError::NotAPactumStore { .. }), "{error}");
}

#[test]
fn a_second_writer_is_refused_while_the_store_is_open() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    let _first = Store::open(&path).unwrap();
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StorageError::Locked { .. }), "{error}");
    // A read-only audit may still open it.
    assert!(Store::open_read_only(&path).is_ok());
}

#[test]
fn an_untouched_chain_passes_the_audit() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    new_chain(&path, 6, 5);
    let report = audit_at(&path).unwrap();
    assert_eq!(report.blocks, 6);
    assert_eq!(report.transactions, 30);
    assert_eq!(report.chain_id, Some(chain_id()));
}

/// Changes every byte of a stored block in turn, through the raw RocksDB API, and checks
/// that the audit fails and names that block. The block in the middle of the chain is
/// changed at every position; the last block (no successor to link to it) too.
#[test]
fn changing_any_byte_of_a_stored_block_fails_the_audit_at_that_height() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    new_chain(&path, 3, 2);
    let db = raw_db(&path);
    let blocks = db.cf_handle("blocks").unwrap();
    for height in [2u64, 3] {
        let key = height.to_be_bytes();
        let original = db.get_cf(&blocks, key).unwrap().unwrap();
        for position in 0..original.len() {
            let mut damaged = original.clone();
            damaged[position] ^= 0x01;
            db.put_cf(&blocks, key, &damaged).unwrap();
            match audit_at(&path) {
                Err(AuditFault::Block { height: named, reason }) => {
                    assert_eq!(
                        named, height,
                        "byte {position} of block {height}: blamed block {named}: {reason}"
                    );
                }
                other => panic!("byte {position} of block {height} changed, audit said {other:?}"),
            }
        }
        db.put_cf(&blocks, key, &original).unwrap();
    }
    assert!(audit_at(&path).is_ok());
}

#[test]
fn damaged_receipts_index_and_state_are_named() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    new_chain(&path, 3, 2);
    let db = raw_db(&path);

    // A receipt changed: the next header's receipts root no longer matches.
    let receipts = db.cf_handle("receipts").unwrap();
    let original = db.get_cf(&receipts, 1u64.to_be_bytes()).unwrap().unwrap();
    let mut damaged = original.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    db.put_cf(&receipts, 1u64.to_be_bytes(), &damaged).unwrap();
    let fault = audit_at(&path).unwrap_err();
    assert!(matches!(fault, AuditFault::Block { height: 1 | 2, .. }), "{fault}");
    db.put_cf(&receipts, 1u64.to_be_bytes(), &original).unwrap();

    // An index entry removed.
    let store = Store::open_read_only(&path).unwrap();
    let hash = store.block(2).unwrap().unwrap().transactions[1].hash();
    drop(store);
    let index = db.cf_handle("transaction_index").unwrap();
    let entry = db.get_cf(&index, hash.0).unwrap().unwrap();
    db.delete_cf(&index, hash.0).unwrap();
    let fault = audit_at(&path).unwrap_err();
    assert!(
        fault.to_string().contains("block 2") && fault.to_string().contains("not indexed"),
        "{fault}"
    );
    db.put_cf(&index, hash.0, &entry).unwrap();

    // A state value changed behind the ledger's back.
    let state = db.cf_handle("state").unwrap();
    let (key, value) =
        db.iterator_cf(&state, rocksdb::IteratorMode::Start).next().unwrap().unwrap();
    db.put_cf(&state, &key, [&value[..], b"!"].concat()).unwrap();
    let fault = audit_at(&path).unwrap_err();
    assert!(
        matches!(fault, AuditFault::Store { .. }) && fault.to_string().contains("state"),
        "{fault}"
    );
    db.put_cf(&state, &key, &value).unwrap();

    // A block stored past the last committed height.
    let blocks = db.cf_handle("blocks").unwrap();
    let block = db.get_cf(&blocks, 3u64.to_be_bytes()).unwrap().unwrap();
    db.put_cf(&blocks, 9u64.to_be_bytes(), &block).unwrap();
    let fault = audit_at(&path).unwrap_err();
    assert!(
        fault.to_string().contains("block 9 is stored past the last committed height 3"),
        "{fault}"
    );
}

#[test]
fn block_bytes_are_stored_canonically() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("store");
    new_chain(&path, 2, 2);
    let store = Store::open_read_only(&path).unwrap();
    let raw = store.raw_block(2).unwrap().unwrap();
    assert_eq!(store.block(2).unwrap().unwrap().to_bytes(), raw);
}
