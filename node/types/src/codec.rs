//! Pactum's canonical binary encoding.
//!
//! Every value has exactly one encoding, and decoding accepts only that encoding:
//! - integers are fixed-width big-endian (no varints, so no overlong forms);
//! - byte strings and sequences carry a `u32` big-endian length prefix that is checked
//!   against the field's limit *before* anything is allocated;
//! - enums carry a one-byte tag, and unknown tags are rejected;
//! - booleans are `0` or `1`, nothing else;
//! - sets (such as the signers of a commit certificate) are sorted and free of duplicates;
//! - a value must use its input exactly: trailing bytes are an error.
//!
//! Because of this, `encode(decode(bytes)) == bytes` for every input that decodes, which the
//! property tests in `tests/encoding.rs` check on arbitrary and mutated inputs.

use thiserror::Error;

/// Why a byte string is not the canonical encoding of a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("input ends early: {what} needs {needed} more bytes")]
    UnexpectedEnd { what: &'static str, needed: usize },
    #[error("{trailing} trailing bytes after the encoded value")]
    TrailingBytes { trailing: usize },
    #[error("{what} has length {length}, over the limit of {max}")]
    TooLong { what: &'static str, length: u64, max: usize },
    #[error("unknown {what} tag {tag}")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("unsupported {what} format version {version} (this build reads version {supported})")]
    UnsupportedVersion { what: &'static str, version: u8, supported: u8 },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: &'static str },
}

/// A value with a canonical byte encoding.
pub trait Encode {
    /// Appends the canonical encoding of `self` to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The canonical encoding of `self` as a fresh vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from the front of `reader`.
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a value that must use all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let value = Self::decode_from(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

/// A cursor over encoded input. Every read is bounds-checked.
#[derive(Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    /// Succeeds only if the whole input has been read.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { trailing: self.input.len() })
        }
    }

    pub fn take(&mut self, count: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.input.len() < count {
            return Err(DecodeError::UnexpectedEnd { what, needed: count - self.input.len() });
        }
        let (head, tail) = self.input.split_at(count);
        self.input = tail;
        Ok(head)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid { what, reason: "boolean byte is neither 0 nor 1" }),
        }
    }

    /// Reads a `u32` length prefix and checks it against `max` before anything is allocated.
    pub fn length(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let length = self.u32(what)?;
        let length = usize::try_from(length).map_err(|_| DecodeError::TooLong {
            what,
            length: u64::from(length),
            max,
        })?;
        if length > max {
            return Err(DecodeError::TooLong { what, length: length as u64, max });
        }
        Ok(length)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let length = self.length(max, what)?;
        self.take(length, what)
    }

    /// A length-prefixed byte string copied into a vector.
    pub fn byte_vec(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        Ok(self.bytes(max, what)?.to_vec())
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes.
    pub fn string(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(max, what)?;
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { what })?;
        Ok(text.to_owned())
    }

    /// A count-prefixed sequence of at most `max` values.
    pub fn sequence<T: Decode>(
        &mut self,
        max: usize,
        what: &'static str,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.length(max, what)?;
        // Each element takes at least one byte, so a count larger than the remaining input
        // is certainly truncated; refusing it here keeps the allocation honest.
        if count > self.remaining() {
            return Err(DecodeError::UnexpectedEnd { what, needed: count - self.remaining() });
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::decode_from(self)?);
        }
        Ok(items)
    }
}

/// Writers for the primitive encodings, shared by all `Encode` implementations.
pub mod write {
    pub fn u8(out: &mut Vec<u8>, value: u8) {
        out.push(value);
    }

    pub fn u16(out: &mut Vec<u8>, value: u16) {
        out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn u32(out: &mut Vec<u8>, value: u32) {
        out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn u64(out: &mut Vec<u8>, value: u64) {
        out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn bool(out: &mut Vec<u8>, value: bool) {
        out.push(u8::from(value));
    }

    /// Writes a `u32` length prefix.
    ///
    /// # Panics
    /// If `length` does not fit in `u32`. Every encoded field is bounded by a limit far
    /// below that, so reaching it means a local invariant is broken.
    pub fn length(out: &mut Vec<u8>, length: usize) {
        let length = u32::try_from(length).expect("encoded lengths are bounded by limits");
        u32(out, length);
    }

    pub fn bytes(out: &mut Vec<u8>, value: &[u8]) {
        length(out, value.len());
        out.extend_from_slice(value);
    }

    pub fn string(out: &mut Vec<u8>, value: &str) {
        bytes(out, value.as_bytes());
    }

    pub fn sequence<T: super::Encode>(out: &mut Vec<u8>, items: &[T]) {
        length(out, items.len());
        for item in items {
            item.encode_to(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_over_limit_is_refused_before_allocation() {
        let mut input = Vec::new();
        write::u32(&mut input, u32::MAX);
        let error = Reader::new(&input).bytes(16, "field").unwrap_err();
        assert_eq!(
            error,
            DecodeError::TooLong { what: "field", length: u64::from(u32::MAX), max: 16 }
        );
    }

    #[test]
    fn booleans_other_than_zero_and_one_are_refused() {
        assert!(Reader::new(&[0]).bool("flag").is_ok());
        assert!(Reader::new(&[1]).bool("flag").is_ok());
        assert!(Reader::new(&[2]).bool("flag").is_err());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut reader = Reader::new(&[1, 2]);
        reader.u8("first").unwrap();
        assert_eq!(reader.finish(), Err(DecodeError::TrailingBytes { trailing: 1 }));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut input = Vec::new();
        write::bytes(&mut input, &[0xff, 0xfe]);
        assert_eq!(
            Reader::new(&input).string(16, "name"),
            Err(DecodeError::InvalidUtf8 { what: "name" })
        );
    }
}
