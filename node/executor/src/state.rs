//! The state a block executes against: the committed state in RocksDB plus the writes of
//! the block's earlier transactions.
//!
//! Every transaction of a block runs in the VM against a [`BlockState`], so it sees what
//! the transactions before it wrote. A successful transaction's write set is applied to
//! the block state; a failed one's is never seen here (the VM discards it). Nothing
//! reaches RocksDB until the whole block is done, when [`BlockState::into_state_changes`]
//! turns the block's writes into the one list `Store::commit_block` writes in one batch.

use std::collections::HashMap;
use std::sync::Arc;

use pactum_storage::{StateChange, StateSpace, StorageError, StoreRead};
use pactum_types::{Address, Hash, PublicKey};
use pactum_vm::{StateError, StateView, WriteSet};

/// The executor's own records, kept in [`StateSpace::Ledger`] so that they are part of
/// the state root. `docs/storage.md` lists them.
pub mod ledger {
    use pactum_types::codec::{DecodeError, Reader, write};
    use pactum_types::{Address, Hash, PublicKey, limits};

    /// `nonce/` || sender's Ed25519 key (32 bytes) -> the next nonce the sender may use,
    /// `u64` big-endian. Absent means 0.
    pub const NONCE_PREFIX: &[u8] = b"nonce/";
    /// `contract/` || contract address (32 bytes) -> the SHA3-256 hash of its code.
    pub const CONTRACT_PREFIX: &[u8] = b"contract/";
    /// `code/` || code hash (32 bytes) -> the WebAssembly module, stored once however
    /// many contracts share it.
    pub const CODE_PREFIX: &[u8] = b"code/";
    /// A block runs at its header's time, or 1 ms after its parent's if that is not
    /// earlier, so block time only moves forward (ADR 0016). When a block ran at another
    /// time than its header's, this holds its height and that time (8 + 8 bytes,
    /// big-endian); at any other height the header's time is the block's.
    pub const BLOCK_TIME_KEY: &[u8] = b"block-time";
    /// `identity/` || the identity's Ed25519 key (32 bytes) -> its enrolment: the
    /// organisation, the role and the certificate serial, each as `u32` length and bytes.
    /// Present means enrolled.
    pub const IDENTITY_PREFIX: &[u8] = b"identity/";

    pub fn identity_key(identity: &PublicKey) -> Vec<u8> {
        [IDENTITY_PREFIX, &identity.0[..]].concat()
    }

    /// An enrolment as stored under [`identity_key`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Enrolment {
        pub organisation: String,
        pub role: String,
        pub serial: Vec<u8>,
        /// When the enrolling certificate expires, Unix seconds. `None` only in records
        /// written by the first version, which did not keep it.
        pub not_after: Option<u64>,
    }

    impl Enrolment {
        pub fn to_bytes(&self) -> Vec<u8> {
            let mut record = Vec::new();
            write::string(&mut record, &self.organisation);
            write::string(&mut record, &self.role);
            write::bytes(&mut record, &self.serial);
            if let Some(not_after) = self.not_after {
                write::u64(&mut record, not_after);
            }
            record
        }

        pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
            let mut reader = Reader::new(bytes);
            let organisation =
                reader.string(limits::ORGANISATION_NAME_BYTES_MAX, "organisation")?;
            let role = reader.string(16, "role")?;
            let serial = reader.byte_vec(limits::CERTIFICATE_SERIAL_BYTES_MAX, "serial")?;
            let not_after = match reader.remaining() {
                0 => None,
                _ => Some(reader.u64("not after")?),
            };
            reader.finish()?;
            Ok(Self { organisation, role, serial, not_after })
        }
    }

    pub fn nonce_key(sender: &PublicKey) -> Vec<u8> {
        [NONCE_PREFIX, &sender.0[..]].concat()
    }

    pub fn contract_key(address: &Address) -> Vec<u8> {
        [CONTRACT_PREFIX, &address.0[..]].concat()
    }

    pub fn code_key(code_hash: &Hash) -> Vec<u8> {
        [CODE_PREFIX, &code_hash.0[..]].concat()
    }
}

fn state_error(error: &StorageError) -> StateError {
    StateError { reason: error.to_string() }
}

/// Reads a stored next nonce.
pub(crate) fn decode_nonce(bytes: &[u8]) -> Result<u64, StorageError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        what: "account nonce".into(),
        detail: format!("expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

fn decode_code_hash(bytes: &[u8]) -> Result<Hash, StorageError> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        what: "contract record".into(),
        detail: format!("expected a 32-byte code hash, found {} bytes", bytes.len()),
    })?;
    Ok(Hash(array))
}

/// The committed state a contract sees, with nothing pending.
pub(crate) fn committed_next_nonce(
    store: &dyn StoreRead,
    sender: &PublicKey,
) -> Result<u64, StorageError> {
    match store.state_get(StateSpace::Ledger, &ledger::nonce_key(sender))? {
        Some(bytes) => decode_nonce(&bytes),
        None => Ok(0),
    }
}

pub(crate) fn committed_code_hash(
    store: &dyn StoreRead,
    address: &Address,
) -> Result<Option<Hash>, StorageError> {
    store
        .state_get(StateSpace::Ledger, &ledger::contract_key(address))?
        .map(|bytes| decode_code_hash(&bytes))
        .transpose()
}

/// The committed state plus the writes of the block so far.
pub(crate) struct BlockState {
    /// The committed state: the live store while a block executes, or a snapshot of it
    /// for a query.
    store: Arc<dyn StoreRead>,
    /// contract -> key -> `Some(value)` written or `None` removed. Two levels, so that a
    /// read probes with the borrowed key instead of allocating one.
    storage: HashMap<Address, HashMap<Vec<u8>, Option<Vec<u8>>>>,
    contracts: HashMap<Address, Hash>,
    codes: HashMap<Hash, Arc<Vec<u8>>>,
    nonces: HashMap<PublicKey, u64>,
    identities: HashMap<PublicKey, Vec<u8>>,
    block_time_ms: Option<(u64, u64)>,
}

impl BlockState {
    pub(crate) fn new(store: Arc<dyn StoreRead>) -> Self {
        Self {
            store,
            storage: HashMap::new(),
            contracts: HashMap::new(),
            codes: HashMap::new(),
            nonces: HashMap::new(),
            identities: HashMap::new(),
            block_time_ms: None,
        }
    }

    /// The next nonce `sender` may use, counting the block's earlier transactions.
    pub(crate) fn next_nonce(&self, sender: &PublicKey) -> Result<u64, StorageError> {
        match self.nonces.get(sender) {
            Some(nonce) => Ok(*nonce),
            None => committed_next_nonce(self.store.as_ref(), sender),
        }
    }

    /// The enrolment record of `identity`, counting the block's earlier enrolments.
    pub(crate) fn identity(&self, identity: &PublicKey) -> Result<Option<Vec<u8>>, StorageError> {
        match self.identities.get(identity) {
            Some(record) => Ok(Some(record.clone())),
            None => self.store.state_get(StateSpace::Ledger, &ledger::identity_key(identity)),
        }
    }

    /// Records an enrolment (see [`ledger::IDENTITY_PREFIX`]).
    pub(crate) fn set_identity(&mut self, identity: PublicKey, record: Vec<u8>) {
        self.identities.insert(identity, record);
    }

    /// The code hash of the contract at `address`, counting the block's earlier writes.
    pub(crate) fn code_hash_of(&self, address: &Address) -> Result<Option<Hash>, StorageError> {
        match self.contracts.get(address) {
            Some(code_hash) => Ok(Some(*code_hash)),
            None => committed_code_hash(self.store.as_ref(), address),
        }
    }

    /// Points the contract at `address` at `code` (a governance upgrade): its storage
    /// and address stay; calls run the new code from the next block.
    pub(crate) fn upgrade_contract(&mut self, address: Address, code: Vec<u8>) {
        let code_hash = pactum_types::hash::sha3_256(&code);
        self.contracts.insert(address, code_hash);
        self.codes.entry(code_hash).or_insert_with(|| Arc::new(code));
    }

    /// Records that the block at `height` ran at `time_ms`, not its header's time.
    pub(crate) fn set_block_time(&mut self, height: u64, time_ms: u64) {
        self.block_time_ms = Some((height, time_ms));
    }

    pub(crate) fn set_next_nonce(&mut self, sender: PublicKey, next: u64) {
        self.nonces.insert(sender, next);
    }

    /// Applies a successful transaction's writes, so later transactions see them.
    pub(crate) fn apply(&mut self, write_set: WriteSet) {
        for ((contract, key), value) in write_set.storage {
            self.storage.entry(contract).or_default().insert(key, value);
        }
        for (address, deployed) in write_set.contracts {
            self.contracts.insert(address, deployed.code_hash);
            self.codes.entry(deployed.code_hash).or_insert(deployed.code);
        }
    }

    /// The block's writes as state changes, in a canonical order (contract storage by
    /// contract and key, then ledger records by key), ready for `Store::commit_block`.
    /// Code already stored by an earlier block is not written again.
    pub(crate) fn into_state_changes(self) -> Result<Vec<StateChange>, StorageError> {
        let mut storage: Vec<(Address, Vec<u8>, Option<Vec<u8>>)> = self
            .storage
            .into_iter()
            .flat_map(|(contract, entries)| {
                entries.into_iter().map(move |(key, value)| (contract, key, value))
            })
            .collect();
        storage.sort_unstable_by(|left, right| (left.0, &left.1).cmp(&(right.0, &right.1)));

        let mut ledger_entries: Vec<(Vec<u8>, Vec<u8>)> =
            Vec::with_capacity(self.nonces.len() + self.contracts.len() + self.codes.len());
        for (sender, next) in &self.nonces {
            ledger_entries.push((ledger::nonce_key(sender), next.to_be_bytes().to_vec()));
        }
        for (address, code_hash) in &self.contracts {
            ledger_entries.push((ledger::contract_key(address), code_hash.0.to_vec()));
        }
        for (identity, record) in &self.identities {
            ledger_entries.push((ledger::identity_key(identity), record.clone()));
        }
        if let Some((height, time_ms)) = self.block_time_ms {
            let value = [height.to_be_bytes(), time_ms.to_be_bytes()].concat();
            ledger_entries.push((ledger::BLOCK_TIME_KEY.to_vec(), value));
        }
        for (code_hash, code) in &self.codes {
            let key = ledger::code_key(code_hash);
            if self.store.state_get(StateSpace::Ledger, &key)?.is_none() {
                ledger_entries.push((key, code.as_ref().clone()));
            }
        }
        ledger_entries.sort_unstable_by(|left, right| left.0.cmp(&right.0));

        let mut changes = Vec::with_capacity(storage.len() + ledger_entries.len());
        changes.extend(storage.into_iter().map(|(contract, key, value)| StateChange {
            space: StateSpace::Contract(contract),
            key,
            value,
        }));
        changes.extend(ledger_entries.into_iter().map(|(key, value)| StateChange {
            space: StateSpace::Ledger,
            key,
            value: Some(value),
        }));
        Ok(changes)
    }
}

impl StateView for BlockState {
    fn storage(&self, contract: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(value) = self.storage.get(contract).and_then(|entries| entries.get(key)) {
            return Ok(value.clone());
        }
        self.store.state_get(StateSpace::Contract(*contract), key).map_err(|e| state_error(&e))
    }

    fn contract_code_hash(&self, address: &Address) -> Result<Option<Hash>, StateError> {
        if let Some(code_hash) = self.contracts.get(address) {
            return Ok(Some(*code_hash));
        }
        committed_code_hash(self.store.as_ref(), address).map_err(|e| state_error(&e))
    }

    fn code(&self, code_hash: &Hash) -> Result<Option<Arc<Vec<u8>>>, StateError> {
        if let Some(code) = self.codes.get(code_hash) {
            return Ok(Some(Arc::clone(code)));
        }
        self.store
            .state_get(StateSpace::Ledger, &ledger::code_key(code_hash))
            .map(|code| code.map(Arc::new))
            .map_err(|e| state_error(&e))
    }
}
