//! From a committed PBFT batch to a block, and back (ADR 0011).
//!
//! PBFT orders *proposals*: the view, the primary's timestamp and the transactions
//! (`pactum_consensus::encode_batch`). Every validator derives the block header from the
//! committed proposal and its own execution of the parent, so honest validators derive the
//! same block. The block's commit certificate is the 2f + 1 PBFT COMMITs that decided it;
//! anyone holding the validator set checks a block by rebuilding its proposal from the
//! block, hashing it and verifying the COMMITs ([`check_certificate`]).

use pactum_consensus::{
    BatchHeader, CertificateError, Config, Crypto, Delivery, Ed25519Crypto, Ed25519Verifier,
    Sequence, SignerSignature, Verifier, View, decode_batch, encode_batch,
};
use pactum_executor::ChainTip;
use pactum_types::hash::sha3_256;
use pactum_types::{
    Block, BlockHeader, ChainId, CommitCertificate, CommitSignature, Decode, Encode, Hash,
    PublicKey, Signature, Transaction, limits,
};
use thiserror::Error;

/// Why a committed batch or a fetched block cannot become a block of this chain.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProposalError {
    #[error("the committed batch at sequence {sequence} does not decode: {reason}")]
    Malformed { sequence: u64, reason: String },
    #[error(
        "the commit certificate of block {height} names replica {replica}, which is not a validator"
    )]
    UnknownReplica { height: u64, replica: u16 },
    #[error("the commit certificate of block {height} names {key}, which is not a validator")]
    UnknownSigner { height: u64, key: PublicKey },
    #[error("the commit certificate of block {height} is invalid: {reason}")]
    Certificate { height: u64, reason: String },
    #[error("the commit certificate of block {height} does not hold: {source}")]
    Consensus {
        height: u64,
        #[source]
        source: CertificateError,
    },
}

/// The PBFT proposal a block was ordered as: the null batch for a block without
/// transactions, otherwise its view, timestamp and transactions.
pub fn block_proposal(block: &Block) -> Vec<u8> {
    if block.transactions.is_empty() {
        return Vec::new();
    }
    let header = BatchHeader { view: block.header.view, timestamp_ms: block.header.timestamp_ms };
    let requests: Vec<Vec<u8>> = block.transactions.iter().map(Encode::to_bytes).collect();
    encode_batch(header, &requests)
}

/// Builds the block for a committed batch on top of `tip`. The batch passed every
/// backup's [`NodeCrypto::validate_request`], so each request is a canonical
/// transaction; anything else is a broken invariant reported as an error.
pub fn block_from_delivery(
    delivery: &Delivery,
    tip: &ChainTip,
    chain_id: &ChainId,
    epoch: &CertificateChecker,
    validators_hash: Hash,
) -> Result<Block, ProposalError> {
    let sequence = delivery.sequence.0;
    let malformed = |reason: String| ProposalError::Malformed { sequence, reason };
    let decoded =
        decode_batch(&delivery.batch, limits::BLOCK_TRANSACTIONS_MAX, limits::BLOCK_BODY_BYTES_MAX)
            .map_err(|error| malformed(error.to_string()))?;
    let transactions = decoded
        .requests
        .iter()
        .map(|request| Transaction::from_bytes(request))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| malformed(error.to_string()))?;
    let (view, timestamp_ms, proposer) = match decoded.header {
        Some(header) => {
            let primary = epoch.config.primary(View(header.view));
            let proposer = epoch
                .key(primary)
                .ok_or(ProposalError::UnknownReplica { height: sequence, replica: primary })?;
            (header.view, header.timestamp_ms, proposer)
        }
        // A null batch from a view change: an empty block at its parent's time.
        None => (0, tip.timestamp_ms, PublicKey([0; 32])),
    };
    let certificate = &delivery.certificate;
    let mut signatures = Vec::with_capacity(certificate.commits.len());
    for (replica, signature) in &certificate.commits {
        let validator = epoch
            .key(*replica)
            .ok_or(ProposalError::UnknownReplica { height: sequence, replica: *replica })?;
        signatures.push(CommitSignature { validator, signature: *signature });
    }
    let certificate = CommitCertificate::new(certificate.view.0, signatures).map_err(|error| {
        ProposalError::Certificate { height: sequence, reason: error.to_string() }
    })?;
    let header = BlockHeader {
        chain_id: chain_id.clone(),
        height: sequence,
        previous_hash: tip.block_hash,
        timestamp_ms,
        proposer,
        view,
        sequence,
        transactions_root: pactum_types::block::transactions_root(&transactions),
        previous_receipts_root: tip.receipts_root,
        previous_state_root: tip.state_root,
        validators_hash,
    };
    Ok(Block { header, transactions, certificate })
}

/// Checks stored blocks' commit certificates against a validator set: the one check the
/// node, state transfer and `pactum chain verify` share. It rebuilds the block's PBFT
/// proposal, hashes it, and verifies the certificate as the replica does
/// ([`pactum_consensus::CommitCertificate::verify`]: 2f + 1 distinct validators' valid
/// COMMITs of one view for that sequence number and digest, on this chain).
#[derive(Debug, Clone)]
pub struct CertificateChecker {
    config: Config,
    validators: Vec<PublicKey>,
    verifier: Ed25519Verifier,
}

impl CertificateChecker {
    /// `config` is the consensus configuration in force (its chain identity and members);
    /// `validators` the validators' keys by replica id.
    pub fn new(config: Config, validators: Vec<PublicKey>) -> Self {
        let verifier = Ed25519Verifier::new(validators.clone());
        Self { config, validators, verifier }
    }

    /// The checker of the epoch `consortium` is in: its members' COMMITs, under its
    /// identity (ADR 0021).
    pub fn for_epoch(genesis: &crate::Genesis, consortium: &pactum_governance::Consortium) -> Self {
        Self::new(
            genesis.epoch_config(consortium, Hash::ZERO),
            replica_keys(&consortium.validators),
        )
    }

    /// The epoch's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The key of member `replica`, if it is one.
    pub fn key(&self, replica: u16) -> Option<PublicKey> {
        if !self.config.is_member(replica) {
            return None;
        }
        self.validators.get(usize::from(replica)).copied()
    }

    pub fn check(&self, block: &Block) -> Result<(), ProposalError> {
        let height = block.header.height;
        let mut commits: Vec<SignerSignature> =
            Vec::with_capacity(block.certificate.signatures().len());
        for entry in block.certificate.signatures() {
            let replica = self
                .config
                .members
                .iter()
                .copied()
                .find(|replica| {
                    self.validators.get(usize::from(*replica)) == Some(&entry.validator)
                })
                .ok_or(ProposalError::UnknownSigner { height, key: entry.validator })?;
            commits.push((replica, entry.signature));
        }
        let certificate = pactum_consensus::CommitCertificate {
            view: View(block.certificate.view()),
            sequence: Sequence(block.header.sequence),
            digest: self.verifier.digest(&block_proposal(block)),
            commits,
        };
        certificate
            .verify(&self.config, &self.verifier)
            .map_err(|source| ProposalError::Consensus { height, source })
    }
}

/// The commit-certificate check of a whole stored chain, epoch by epoch (ADR 0021): each
/// block against the validator set in force at its height, read from the consortium
/// records in the store, and the set its header names against that one. What `pactum
/// chain verify` runs.
pub struct ChainAudit {
    genesis: crate::Genesis,
    first: std::sync::Arc<pactum_governance::Consortium>,
    store: pactum_storage::Store,
    /// The checker of the last epoch seen.
    checker: std::sync::Mutex<Option<(u64, CertificateChecker)>>,
}

impl std::fmt::Debug for ChainAudit {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ChainAudit").finish_non_exhaustive()
    }
}

impl ChainAudit {
    /// Over the store at `path` (opened again, read-only) of the chain of `genesis`.
    pub fn open(genesis: crate::Genesis, path: &std::path::Path) -> Result<Self, String> {
        let store =
            pactum_storage::Store::open_read_only(path).map_err(|error| error.to_string())?;
        let first = std::sync::Arc::new(genesis.consortium());
        Ok(Self { genesis, first, store, checker: std::sync::Mutex::new(None) })
    }

    pub fn check(&self, block: &Block) -> Result<(), String> {
        let height = block.header.height;
        let consortium = pactum_executor::governance::at_height(&self.store, &self.first, height)
            .map_err(|error| error.to_string())?;
        let expected = consortium.validator_set_hash();
        if block.header.validators_hash != expected {
            return Err(format!(
                "block {height} names validator set {}, but the set in force at its height \
                 (epoch {}) is {expected}",
                block.header.validators_hash, consortium.epoch
            ));
        }
        let mut cached =
            self.checker.lock().map_err(|_| "the audit lock is poisoned".to_string())?;
        if cached.as_ref().is_none_or(|(epoch, _)| *epoch != consortium.epoch) {
            *cached =
                Some((consortium.epoch, CertificateChecker::for_epoch(&self.genesis, &consortium)));
        }
        match cached.as_ref() {
            Some((_, checker)) => checker.check(block).map_err(|error| error.to_string()),
            None => Err("no checker".into()),
        }
    }
}

/// Keys by replica id for `validators` (each at its index); ids no validator of the set
/// holds get the zero key, which is no member's and verifies nothing.
pub fn replica_keys(validators: &[pactum_governance::Validator]) -> Vec<PublicKey> {
    let slots = validators.iter().map(|validator| usize::from(validator.index) + 1).max();
    let mut keys = vec![PublicKey([0; 32]); slots.unwrap_or(0)];
    for validator in validators {
        keys[usize::from(validator.index)] = validator.public_key;
    }
    keys
}

/// The digest a checkpoint certifies at a height: the block hash and the state root after
/// it, so a stable checkpoint certifies the chain's results, not only its order.
pub fn state_digest(block_hash: &Hash, state_root: &Hash) -> Hash {
    pactum_types::hash::sha3_256_parts(&[b"pactum.checkpoint.v1\0", &block_hash.0, &state_root.0])
}

/// The node's [`Crypto`]: Ed25519 and SHA3 as in [`Ed25519Crypto`], and a request is
/// orderable only if it is a canonical transaction for this chain with a valid signature.
/// Transactions this node already admitted are known valid (one hash lookup); any other
/// is verified here, so each transaction is verified once per validator.
#[derive(Debug)]
pub struct NodeCrypto {
    inner: Ed25519Crypto,
    chain_id: ChainId,
    known_valid: std::sync::Arc<crate::verified::VerifiedSet>,
    /// Whose share each request counts against when this node proposes.
    organisations: Option<SenderOrganisations>,
    /// Test-only Byzantine behaviour: sign every message with a wrong key.
    corrupt_signatures: bool,
}

impl NodeCrypto {
    pub fn new(
        inner: Ed25519Crypto,
        chain_id: ChainId,
        known_valid: std::sync::Arc<crate::verified::VerifiedSet>,
        corrupt_signatures: bool,
    ) -> Self {
        Self { inner, chain_id, known_valid, organisations: None, corrupt_signatures }
    }

    /// Groups requests by their sender's member organisation, as the ledger `reader`
    /// records it, for the primary's fair share of each batch.
    pub fn with_organisations(mut self, reader: pactum_executor::LedgerReader) -> Self {
        self.organisations = Some(SenderOrganisations::new(reader));
        self
    }
}

/// The member organisation of a transaction's sender, read from its enrolment on the
/// ledger (remembered: an enrolment's organisation never changes), as a fair-queuing
/// group. A sender with no enrolment (its own enrolment transaction, or one a faulty peer
/// relayed) is in a group of its own kind, [`UNENROLLED_GROUP`].
#[derive(Debug)]
struct SenderOrganisations {
    reader: pactum_executor::LedgerReader,
    known: std::sync::Mutex<std::collections::HashMap<PublicKey, u64>>,
}

/// The fair-queuing group of requests whose sender has no enrolment.
pub const UNENROLLED_GROUP: u64 = u64::MAX;

impl SenderOrganisations {
    fn new(reader: pactum_executor::LedgerReader) -> Self {
        Self { reader, known: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    fn group(&self, sender: &PublicKey) -> u64 {
        use pactum_storage::StoreRead as _;
        let mut known = self.known.lock().expect("organisation lock is never poisoned");
        if let Some(group) = known.get(sender) {
            return *group;
        }
        let record = self.reader.store().state_get(
            pactum_storage::StateSpace::Ledger,
            &pactum_executor::ledger::identity_key(sender),
        );
        let Ok(Some(record)) = record else { return UNENROLLED_GROUP };
        let Ok(enrolment) = pactum_executor::ledger::Enrolment::from_bytes(&record) else {
            return UNENROLLED_GROUP;
        };
        let digest = sha3_256(enrolment.organisation.as_bytes());
        let group = u64::from_be_bytes(digest.0[..8].try_into().expect("eight bytes"));
        // Bounded: forgetting only costs another read.
        if known.len() >= limits::VERIFIED_TRANSACTIONS_REMEMBERED_MAX {
            known.clear();
        }
        known.insert(*sender, group);
        group
    }
}

impl Verifier for NodeCrypto {
    fn verify(&self, signer: u16, bytes: &[u8], signature: &Signature) -> bool {
        self.inner.verify(signer, bytes, signature)
    }

    fn digest(&self, batch: &[u8]) -> Hash {
        self.inner.digest(batch)
    }
}

impl Crypto for NodeCrypto {
    fn sign(&self, bytes: &[u8]) -> Signature {
        let signature = self.inner.sign(bytes);
        if self.corrupt_signatures {
            let mut corrupted = signature;
            corrupted.0[7] ^= 0x5a;
            return corrupted;
        }
        signature
    }

    fn validate_request(&self, request: &[u8]) -> bool {
        if request.len() > limits::TRANSACTION_BYTES_MAX {
            return false;
        }
        let hash = sha3_256(request);
        if self.known_valid.contains(&hash) {
            return true;
        }
        let Ok(transaction) = Transaction::from_bytes(request) else { return false };
        let valid = transaction.unsigned.chain_id == self.chain_id
            && transaction.verify_signature().is_ok();
        if valid {
            self.known_valid.insert(hash);
        }
        valid
    }

    /// A transaction weighs its gas limit: a batch's add up to at most the block gas
    /// limit (`Config::batch_weight_max`).
    fn request_weight(&self, request: &[u8]) -> u64 {
        Transaction::from_bytes(request)
            .map_or(u64::MAX, |transaction| transaction.unsigned.gas_limit)
    }

    /// The sender's member organisation: each organisation's clients get an equal share
    /// of what this node proposes, by gas limit (ADR 0016).
    fn request_group(&self, request: &[u8]) -> u64 {
        let Some(organisations) = &self.organisations else { return 0 };
        Transaction::from_bytes(request).map_or(UNENROLLED_GROUP, |transaction| {
            organisations.group(&transaction.unsigned.sender)
        })
    }
}
