//! The argument and storage encoding: fixed-width little-endian integers, `u32`
//! length prefixes, one byte for `bool` and the `Option` tag, and tuples field by field.
//!
//! Decoding is strict: a value has one encoding, trailing bytes are refused, and a
//! length prefix is checked against the bytes actually present before anything is
//! allocated.

use alloc::string::String;
use alloc::vec::Vec;

use crate::Address;

/// Bytes that do not decode as the expected type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub what: &'static str,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(formatter, "cannot decode {}", self.what)
    }
}

pub trait Encode {
    fn encode_to(&self, out: &mut Vec<u8>);

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

pub trait Decode: Sized {
    /// Decodes one value from the front of `input`, advancing it.
    fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError>;

    /// Decodes exactly one value: trailing bytes are an error.
    fn decode(mut bytes: &[u8]) -> Result<Self, DecodeError> {
        let value = Self::decode_from(&mut bytes)?;
        if !bytes.is_empty() {
            return Err(DecodeError { what: "trailing bytes" });
        }
        Ok(value)
    }
}

fn take<'a>(
    input: &mut &'a [u8],
    length: usize,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    if input.len() < length {
        return Err(DecodeError { what });
    }
    let (head, tail) = input.split_at(length);
    *input = tail;
    Ok(head)
}

macro_rules! integers {
    ($($type:ty),*) => {$(
        impl Encode for $type {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
        impl Decode for $type {
            fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
                let bytes = take(input, core::mem::size_of::<$type>(), stringify!($type))?;
                let mut array = [0u8; core::mem::size_of::<$type>()];
                array.copy_from_slice(bytes);
                Ok(<$type>::from_le_bytes(array))
            }
        }
    )*};
}

integers!(u8, u16, u32, u64, u128, i32, i64, i128);

impl Encode for bool {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match take(input, 1, "bool")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError { what: "bool" }),
        }
    }
}

fn encode_length(length: usize, out: &mut Vec<u8>) {
    // Every encoded collection lives in a contract's memory, which is far below 4 GiB.
    (length as u32).encode_to(out);
}

impl Encode for [u8] {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_length(self.len(), out);
        out.extend_from_slice(self);
    }
}

impl Encode for str {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.as_bytes().encode_to(out);
    }
}

impl Encode for String {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.as_str().encode_to(out);
    }
}

impl Decode for String {
    fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let length = u32::decode_from(input)? as usize;
        let bytes = take(input, length, "string")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError { what: "UTF-8 string" })
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_length(self.len(), out);
        for item in self {
            item.encode_to(out);
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let length = u32::decode_from(input)? as usize;
        // Every item takes at least one byte, except zero-sized ones, which never occur
        // in contract data; bound the reservation by the bytes present.
        let mut items = Vec::with_capacity(length.min(input.len()));
        for _ in 0..length {
            items.push(T::decode_from(input)?);
        }
        Ok(items)
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.encode_to(out);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match take(input, 1, "option tag")?[0] {
            0 => Ok(None),
            1 => Ok(Some(T::decode_from(input)?)),
            _ => Err(DecodeError { what: "option tag" }),
        }
    }
}

impl Encode for [u8; 32] {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl Decode for [u8; 32] {
    fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let mut array = [0u8; 32];
        array.copy_from_slice(take(input, 32, "32 bytes")?);
        Ok(array)
    }
}

impl Encode for [u8; 64] {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl Decode for [u8; 64] {
    fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let mut array = [0u8; 64];
        array.copy_from_slice(take(input, 64, "64 bytes")?);
        Ok(array)
    }
}

impl Encode for Address {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
    }
}

impl Decode for Address {
    fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Address(<[u8; 32]>::decode_from(input)?))
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode_to(&self, out: &mut Vec<u8>) {
        (**self).encode_to(out);
    }
}

macro_rules! tuples {
    ($(($($name:ident),*)),*) => {$(
        impl<$($name: Encode),*> Encode for ($($name,)*) {
            #[allow(non_snake_case, unused_variables)]
            fn encode_to(&self, out: &mut Vec<u8>) {
                let ($($name,)*) = self;
                $($name.encode_to(out);)*
            }
        }
        impl<$($name: Decode),*> Decode for ($($name,)*) {
            #[allow(unused_variables)]
            fn decode_from(input: &mut &[u8]) -> Result<Self, DecodeError> {
                Ok(($($name::decode_from(input)?,)*))
            }
        }
    )*};
}

tuples!(
    (),
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G)
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn values_round_trip_and_trailing_bytes_are_refused() {
        let value = (Address([3; 32]), 500u128, String::from("lot-7"), Some(vec![1u64, 2]), true);
        let bytes = value.encode();
        assert_eq!(<(Address, u128, String, Option<Vec<u64>>, bool)>::decode(&bytes), Ok(value));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(<(Address, u128, String, Option<Vec<u64>>, bool)>::decode(&longer).is_err());
        assert!(<(Address, u128)>::decode(&bytes[..40]).is_err());
    }

    #[test]
    fn hostile_lengths_and_tags_are_refused() {
        assert!(String::decode(&[255, 255, 255, 255, b'a']).is_err());
        assert!(<Vec<u64>>::decode(&[255, 255, 255, 255]).is_err());
        assert!(bool::decode(&[2]).is_err());
        assert!(<Option<u8>>::decode(&[7, 1]).is_err());
    }
}
