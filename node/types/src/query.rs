//! A read-only call signed by its caller.
//!
//! A query runs as the zero address unless its caller proves its key: the caller signs
//! the query's exact content and the time it signed it, and the node runs the query as
//! that key's account only if the signature verifies, the time is within
//! [`limits::QUERY_SIGNATURE_SKEW_MS_MAX`] of the node's clock, and the key is enrolled.
//! Without this a contract that guards reads by `caller` (the healthcare sample's records)
//! would answer anyone who names a patient's address.

use crate::block::Address;
use crate::codec::{Encode, write};
use crate::crypto::{Keypair, PublicKey, Signature, SignatureError, domain};
use crate::limits;
use crate::transaction::ChainId;

/// What a query's caller signs: everything that decides the answer, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySigning<'a> {
    pub chain_id: &'a ChainId,
    pub contract: &'a Address,
    pub method: &'a str,
    pub input: &'a [u8],
    pub gas_limit: u64,
    pub signer: &'a PublicKey,
    /// Milliseconds since the Unix epoch, by the caller's clock.
    pub signed_at_ms: u64,
}

impl QuerySigning<'_> {
    /// The bytes signed, without the domain tag.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.method.len() + self.input.len());
        self.chain_id.encode_to(&mut out);
        self.contract.encode_to(&mut out);
        write::string(&mut out, self.method);
        write::bytes(&mut out, self.input);
        write::u64(&mut out, self.gas_limit);
        self.signer.encode_to(&mut out);
        write::u64(&mut out, self.signed_at_ms);
        out
    }

    /// Signs the query with `keypair`, which must be the `signer`'s.
    pub fn sign(&self, keypair: &Keypair) -> Signature {
        keypair.sign(domain::QUERY, &self.to_bytes())
    }

    /// Checks `signature` by the signer over the query.
    pub fn verify(&self, signature: &Signature) -> Result<(), SignatureError> {
        self.signer.verify(domain::QUERY, &self.to_bytes(), signature)
    }

    /// Whether the signing time is close enough to `now_ms` (the node's clock) to be
    /// accepted: a signed query cannot be replayed much later.
    pub fn fresh_at(&self, now_ms: u64) -> bool {
        self.signed_at_ms.abs_diff(now_ms) <= limits::QUERY_SIGNATURE_SKEW_MS_MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query<'a>(chain: &'a ChainId, signer: &'a PublicKey, input: &'a [u8]) -> QuerySigning<'a> {
        QuerySigning {
            chain_id: chain,
            contract: &Address([7; 32]),
            method: "my_records",
            input,
            gas_limit: 1_000,
            signer,
            signed_at_ms: 1_000_000,
        }
    }

    #[test]
    fn a_signature_covers_every_field_and_is_not_a_transaction_signature() {
        let keypair = Keypair::from_seed(&[1; 32]);
        let signer = keypair.public_key();
        let chain = ChainId::new("pactum-test").unwrap();
        let signed = query(&chain, &signer, b"in");
        let signature = signed.sign(&keypair);
        assert!(signed.verify(&signature).is_ok());

        let other_chain = ChainId::new("other").unwrap();
        let changed = [
            QuerySigning { chain_id: &other_chain, ..signed.clone() },
            QuerySigning { contract: &Address([8; 32]), ..signed.clone() },
            QuerySigning { method: "read_records", ..signed.clone() },
            QuerySigning { input: b"out", ..signed.clone() },
            QuerySigning { gas_limit: 1_001, ..signed.clone() },
            QuerySigning { signed_at_ms: 1_000_001, ..signed.clone() },
        ];
        for query in changed {
            assert!(query.verify(&signature).is_err(), "{query:?}");
        }
        let stranger = Keypair::from_seed(&[2; 32]).public_key();
        assert!(QuerySigning { signer: &stranger, ..signed.clone() }.verify(&signature).is_err());
        // The same bytes signed as a transaction do not pass as a query.
        let as_transaction = keypair.sign(domain::TRANSACTION, &signed.to_bytes());
        assert!(signed.verify(&as_transaction).is_err());
    }

    #[test]
    fn freshness_is_a_window_on_both_sides_of_the_node_clock() {
        let keypair = Keypair::from_seed(&[1; 32]);
        let signer = keypair.public_key();
        let chain = ChainId::new("pactum-test").unwrap();
        let signed = query(&chain, &signer, b"");
        let skew = limits::QUERY_SIGNATURE_SKEW_MS_MAX;
        assert!(signed.fresh_at(1_000_000 + skew));
        assert!(signed.fresh_at(1_000_000 - skew));
        assert!(!signed.fresh_at(1_000_000 + skew + 1));
        assert!(!signed.fresh_at(1_000_000 - skew - 1));
    }
}
