//! JSON forms for the REST API: fixed-size values and byte strings as lowercase hex.
//!
//! The forms are documented, with examples, in `docs/api/json.md`; the golden JSON in
//! `tests/golden/` pins them.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::block::Address;
use crate::crypto::{PublicKey, Signature};
use crate::hash::Hash;

fn decode_fixed<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
    what: &'static str,
) -> Result<[u8; N], D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text.as_ref(), &mut bytes)
        .map_err(|_| D::Error::custom(format!("{what} must be {} hex characters", N * 2)))?;
    Ok(bytes)
}

macro_rules! hex_json {
    ($type:ty, $length:literal, $what:literal) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&hex::encode(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                decode_fixed::<D, $length>(deserializer, $what).map(Self)
            }
        }
    };
}

hex_json!(Hash, 32, "hash");
hex_json!(PublicKey, 32, "public key");
hex_json!(Signature, 64, "signature");
hex_json!(Address, 32, "contract address");

/// `#[serde(with = "crate::json::hex_bytes")]` for `Vec<u8>` fields.
/// A list of byte strings as a JSON array of hex strings.
pub mod hex_byte_vecs {
    use super::*;

    pub fn serialize<S: Serializer>(items: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        let texts: Vec<String> = items.iter().map(hex::encode).collect();
        texts.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        let texts = <Vec<String>>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|text| hex::decode(text).map_err(|_| D::Error::custom("expected hex strings")))
            .collect()
    }
}

pub mod hex_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        hex::decode(text.as_ref()).map_err(|_| D::Error::custom("expected a hex string"))
    }
}
