//! Batches: what a PRE-PREPARE orders. A batch is a *proposal*: the view it was first
//! proposed in and the primary's clock when it cut it, then a sequence of client requests
//! (in the node, transactions). Canonically: `u64` view, `u64` timestamp in milliseconds,
//! `u32` count (at least 1), then each request as `u32` length and bytes. The empty byte
//! string is the null batch a NEW-VIEW uses to fill a gap (PBFT §4.4); no other batch is
//! empty, so a block without transactions can only come from a null batch.
//!
//! The view and timestamp travel inside the batch, so they are covered by its digest and
//! survive re-proposal in a later view unchanged: every replica derives the same block
//! header from a committed batch, whichever view it learned the decision in.

use pactum_types::codec::{DecodeError, Reader, write};

/// The view and timestamp a proposal carries before its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchHeader {
    /// The view whose primary cut the batch.
    pub view: u64,
    /// The primary's clock when it cut the batch, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Encodes `requests` as one proposal. `requests` must not be empty.
pub fn encode_batch<R: AsRef<[u8]>>(header: BatchHeader, requests: &[R]) -> Vec<u8> {
    debug_assert!(!requests.is_empty(), "only the null batch is empty");
    let bytes: usize = requests.iter().map(|request| request.as_ref().len() + 4).sum();
    let mut out = Vec::with_capacity(20 + bytes);
    write::u64(&mut out, header.view);
    write::u64(&mut out, header.timestamp_ms);
    write::u32(&mut out, requests.len() as u32);
    for request in requests {
        write::bytes(&mut out, request.as_ref());
    }
    out
}

/// A decoded proposal: its header and its requests, borrowed from the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBatch<'b> {
    /// `None` for the null batch.
    pub header: Option<BatchHeader>,
    pub requests: Vec<&'b [u8]>,
}

/// Decodes a batch. The null batch (no bytes) holds no header and no requests. At most
/// `requests_max` requests and `bytes_max` bytes of requests are accepted, and a batch
/// that is not null holds at least one request.
pub fn decode_batch(
    batch: &[u8],
    requests_max: usize,
    bytes_max: usize,
) -> Result<DecodedBatch<'_>, DecodeError> {
    if batch.is_empty() {
        return Ok(DecodedBatch { header: None, requests: Vec::new() });
    }
    let mut reader = Reader::new(batch);
    let header =
        BatchHeader { view: reader.u64("batch view")?, timestamp_ms: reader.u64("batch time")? };
    let count = reader.length(requests_max, "batch requests")?;
    if count == 0 {
        return Err(DecodeError::Invalid {
            what: "batch",
            reason: "a proposal holds at least one request; only the null batch is empty",
        });
    }
    let mut requests = Vec::with_capacity(count);
    let mut total = 0usize;
    for _ in 0..count {
        let request = reader.bytes(bytes_max, "request")?;
        total += request.len();
        if total > bytes_max {
            return Err(DecodeError::TooLong {
                what: "batch",
                length: total as u64,
                max: bytes_max,
            });
        }
        requests.push(request);
    }
    reader.finish()?;
    Ok(DecodedBatch { header: Some(header), requests })
}

/// The requests of a batch (see [`decode_batch`]).
pub fn batch_requests(
    batch: &[u8],
    requests_max: usize,
    bytes_max: usize,
) -> Result<Vec<&[u8]>, DecodeError> {
    decode_batch(batch, requests_max, bytes_max).map(|decoded| decoded.requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: BatchHeader = BatchHeader { view: 3, timestamp_ms: 1_700_000_000_000 };

    #[test]
    fn batches_round_trip_and_bounds_are_enforced() {
        let requests = [b"one".to_vec(), Vec::new(), b"three".to_vec()];
        let batch = encode_batch(HEADER, &requests);
        let decoded = decode_batch(&batch, 3, 8).unwrap();
        assert_eq!(decoded.header, Some(HEADER));
        assert_eq!(decoded.requests, vec![&b"one"[..], &b""[..], &b"three"[..]]);
        assert!(batch_requests(&batch, 2, 8).is_err(), "too many requests");
        assert!(batch_requests(&batch, 3, 7).is_err(), "too many bytes");
        assert!(batch_requests(&batch[..batch.len() - 1], 3, 8).is_err(), "truncated");
        assert!(batch_requests(&[batch.clone(), vec![0]].concat(), 3, 8).is_err(), "trailing");
        let null = decode_batch(&[], 0, 0).unwrap();
        assert!(null.header.is_none() && null.requests.is_empty(), "the null batch");
    }

    #[test]
    fn a_proposal_without_requests_is_refused() {
        let mut empty = Vec::new();
        write::u64(&mut empty, 1);
        write::u64(&mut empty, 2);
        write::u32(&mut empty, 0);
        assert!(decode_batch(&empty, 10, 10).is_err());
    }
}
