//! Batches: what a PRE-PREPARE orders. A batch is a sequence of client requests (in the
//! node, transactions or their hashes), encoded canonically: a `u32` count, then each
//! request as `u32` length and bytes. The empty byte string is the null batch a NEW-VIEW
//! uses to fill a gap (PBFT §4.4).

use pactum_types::codec::{DecodeError, Reader, write};

/// Encodes `requests` as one batch.
pub fn encode_batch<R: AsRef<[u8]>>(requests: &[R]) -> Vec<u8> {
    let bytes: usize = requests.iter().map(|request| request.as_ref().len() + 4).sum();
    let mut out = Vec::with_capacity(4 + bytes);
    write::u32(&mut out, requests.len() as u32);
    for request in requests {
        write::bytes(&mut out, request.as_ref());
    }
    out
}

/// The requests of a batch, borrowed from it. The null batch (no bytes) holds none.
/// At most `requests_max` requests and `bytes_max` bytes of requests are accepted.
pub fn batch_requests(
    batch: &[u8],
    requests_max: usize,
    bytes_max: usize,
) -> Result<Vec<&[u8]>, DecodeError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = Reader::new(batch);
    let count = reader.length(requests_max, "batch requests")?;
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
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_bounds_are_enforced() {
        let requests = [b"one".to_vec(), Vec::new(), b"three".to_vec()];
        let batch = encode_batch(&requests);
        let decoded = batch_requests(&batch, 3, 8).unwrap();
        assert_eq!(decoded, vec![&b"one"[..], &b""[..], &b"three"[..]]);
        assert!(batch_requests(&batch, 2, 8).is_err(), "too many requests");
        assert!(batch_requests(&batch, 3, 7).is_err(), "too many bytes");
        assert!(batch_requests(&batch[..batch.len() - 1], 3, 8).is_err(), "truncated");
        assert!(batch_requests(&[batch.clone(), vec![0]].concat(), 3, 8).is_err(), "trailing");
        assert!(batch_requests(&[], 0, 0).unwrap().is_empty(), "the null batch");
    }
}
