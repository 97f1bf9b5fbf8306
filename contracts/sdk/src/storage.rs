//! Typed contract storage. The VM namespaces every key by the contract's address, so a
//! contract sees only its own keys.
//!
//! Each [`Value`] and [`Map`] is declared with a short, distinct key (a `const`), and a
//! map's entries live under `key ":" encoded-map-key`. A stored value that no longer
//! decodes reverts the call: it can only come from a contract that changed its types.

use alloc::vec::Vec;
use core::marker::PhantomData;

use crate::codec::{Decode, Encode};
use crate::host;

fn decode_stored<T: Decode>(bytes: &[u8]) -> T {
    match T::decode(bytes) {
        Ok(value) => value,
        Err(_) => host::revert("stored value does not decode as its declared type"),
    }
}

/// One stored value of type `T`.
#[derive(Debug)]
pub struct Value<T> {
    key: &'static [u8],
    value_type: PhantomData<fn() -> T>,
}

impl<T: Encode + Decode> Value<T> {
    pub const fn new(key: &'static [u8]) -> Self {
        Self { key, value_type: PhantomData }
    }

    pub fn get(&self) -> Option<T> {
        host::storage_get(self.key).map(|bytes| decode_stored(&bytes))
    }

    pub fn get_or(&self, default: T) -> T {
        self.get().unwrap_or(default)
    }

    pub fn set(&self, value: &T) {
        host::storage_set(self.key, &value.encode());
    }

    pub fn remove(&self) {
        host::storage_remove(self.key);
    }
}

/// A map from `K` to `V` in storage.
#[derive(Debug)]
pub struct Map<K, V> {
    prefix: &'static [u8],
    types: PhantomData<fn() -> (K, V)>,
}

impl<K: Encode, V: Encode + Decode> Map<K, V> {
    pub const fn new(prefix: &'static [u8]) -> Self {
        Self { prefix, types: PhantomData }
    }

    fn key(&self, key: &K) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.prefix.len() + 40);
        bytes.extend_from_slice(self.prefix);
        bytes.push(b':');
        key.encode_to(&mut bytes);
        bytes
    }

    pub fn get(&self, key: &K) -> Option<V> {
        host::storage_get(&self.key(key)).map(|bytes| decode_stored(&bytes))
    }

    pub fn get_or(&self, key: &K, default: V) -> V {
        self.get(key).unwrap_or(default)
    }

    pub fn contains(&self, key: &K) -> bool {
        host::storage_get(&self.key(key)).is_some()
    }

    pub fn set(&self, key: &K, value: &V) {
        host::storage_set(&self.key(key), &value.encode());
    }

    pub fn remove(&self, key: &K) {
        host::storage_remove(&self.key(key));
    }
}
