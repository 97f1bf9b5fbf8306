//! Calls built from a contract's declared interface (`pactum_types::interface`): JSON
//! arguments encoded by the method's argument types, and return data decoded into JSON by
//! its return type.
//!
//! The JSON forms: `bool` is a boolean; `u8`, `u16`, `u32` and `i32` are numbers; the
//! 64- and 128-bit integers are decimal strings (a number is taken too, when JavaScript can
//! hold it exactly); `string` a string; `address`, `[u8; N]` and `Vec<u8>` hex strings; other
//! vectors and tuples arrays; `Option` `null` or the value; a record an object of its
//! fields; `()` `null`.

use pactum_sdk::{Decode as _, Encode as _};
use pactum_types::interface::{Field, Interface, Type};
use serde_json::{Map, Value, json};

use crate::{ClientError, NodeClient, invalid};

/// How deeply records and containers may nest: an interface is any deployer's text, and a
/// record that holds itself must not recurse without end.
const DEPTH_MAX: usize = 32;

/// The interface the contract at `contract` declares, as the node reads it: `None` when
/// it declares none (or one that does not parse).
pub fn fetch(node: &NodeClient, contract: &str) -> Result<Option<Interface>, ClientError> {
    let answer = node.get(&format!("/v1/contracts/{contract}"))?.into_success("the contract")?;
    match &answer["interface"] {
        Value::Null => Ok(None),
        interface => serde_json::from_value(interface.clone())
            .map(Some)
            .map_err(|error| invalid(format!("the node's interface document: {error}"))),
    }
}

/// The input of a call to `method` with `values`, one per declared argument.
pub fn encode_call(
    interface: &Interface,
    method: &str,
    values: &[Value],
) -> Result<Vec<u8>, ClientError> {
    let declared = interface
        .method(method)
        .ok_or_else(|| invalid(format!("the contract declares no method {method:?}")))?;
    encode_arguments(interface, method, &declared.arguments, values)
}

/// `values` encoded as the tuple of `fields`' types (a method's or the init's arguments).
pub fn encode_arguments(
    interface: &Interface,
    what: &str,
    fields: &[Field],
    values: &[Value],
) -> Result<Vec<u8>, ClientError> {
    if values.len() != fields.len() {
        return Err(invalid(format!(
            "{what} takes {} arguments ({}), not {}",
            fields.len(),
            fields.iter().map(|field| field.name.as_str()).collect::<Vec<_>>().join(", "),
            values.len()
        )));
    }
    let mut out = Vec::new();
    for (field, value) in fields.iter().zip(values) {
        encode(interface, &field.kind, value, &mut out, 0)
            .map_err(|error| invalid(format!("argument {}: {error}", field.name)))?;
    }
    Ok(out)
}

/// `data`, returned by `method`, as JSON.
pub fn decode_return(
    interface: &Interface,
    method: &str,
    data: &[u8],
) -> Result<Value, ClientError> {
    let declared = interface
        .method(method)
        .ok_or_else(|| invalid(format!("the contract declares no method {method:?}")))?;
    let mut input = data;
    let value = decode(interface, &declared.returns, &mut input, 0)
        .map_err(|error| invalid(format!("the return data of {method}: {error}")))?;
    if !input.is_empty() {
        return Err(invalid(format!(
            "the return data of {method} has {} bytes more than its declared type",
            input.len()
        )));
    }
    Ok(value)
}

fn integer<T: std::str::FromStr>(value: &Value, kind: &str) -> Result<T, String> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        _ => return Err(format!("{value} is not a {kind}")),
    };
    text.parse().map_err(|_| format!("{text:?} is not a {kind}"))
}

fn hex_bytes(value: &Value, what: &str) -> Result<Vec<u8>, String> {
    let text = value.as_str().ok_or_else(|| format!("{value} is not a hex string ({what})"))?;
    let text = text.trim();
    hex::decode(text.strip_prefix("0x").unwrap_or(text))
        .map_err(|_| format!("{text:?} is not hex ({what})"))
}

fn fixed<const N: usize>(value: &Value, what: &str) -> Result<[u8; N], String> {
    let bytes = hex_bytes(value, what)?;
    bytes.try_into().map_err(|_| format!("{what} is {N} bytes, {} hex digits", 2 * N))
}

fn encode(
    interface: &Interface,
    kind: &Type,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), String> {
    if depth > DEPTH_MAX {
        return Err(format!("types nest more than {DEPTH_MAX} deep"));
    }
    match kind {
        Type::Unit => {}
        Type::Bool => {
            value.as_bool().ok_or_else(|| format!("{value} is not a bool"))?.encode_to(out)
        }
        Type::U8 => integer::<u8>(value, "u8")?.encode_to(out),
        Type::U16 => integer::<u16>(value, "u16")?.encode_to(out),
        Type::U32 => integer::<u32>(value, "u32")?.encode_to(out),
        Type::U64 => integer::<u64>(value, "u64")?.encode_to(out),
        Type::U128 => integer::<u128>(value, "u128")?.encode_to(out),
        Type::I32 => integer::<i32>(value, "i32")?.encode_to(out),
        Type::I64 => integer::<i64>(value, "i64")?.encode_to(out),
        Type::I128 => integer::<i128>(value, "i128")?.encode_to(out),
        Type::String => {
            value.as_str().ok_or_else(|| format!("{value} is not a string"))?.encode_to(out);
        }
        Type::Address => out.extend_from_slice(&fixed::<32>(value, "an address")?),
        Type::FixedBytes { length } => {
            let bytes = hex_bytes(value, "the value")?;
            if bytes.len() != *length {
                return Err(format!("the value is {length} bytes"));
            }
            out.extend_from_slice(&bytes);
        }
        Type::Vec { item } if **item == Type::U8 => hex_bytes(value, "bytes")?.encode_to(out),
        Type::Vec { item } => {
            let items = value.as_array().ok_or_else(|| format!("{value} is not an array"))?;
            (items.len() as u32).encode_to(out);
            for item_value in items {
                encode(interface, item, item_value, out, depth + 1)?;
            }
        }
        Type::Option { item } => match value {
            Value::Null => out.push(0),
            present => {
                out.push(1);
                encode(interface, item, present, out, depth + 1)?;
            }
        },
        Type::Tuple { items } => {
            let values = value.as_array().filter(|values| values.len() == items.len());
            let values = values
                .ok_or_else(|| format!("{value} is not an array of {} values", items.len()))?;
            for (item, item_value) in items.iter().zip(values) {
                encode(interface, item, item_value, out, depth + 1)?;
            }
        }
        Type::Record { name } => {
            let record =
                interface.record(name).ok_or_else(|| format!("no record {name} is declared"))?;
            let object = value.as_object().ok_or_else(|| format!("{value} is not a {name}"))?;
            for field in &record.fields {
                let field_value = object
                    .get(&field.name)
                    .ok_or_else(|| format!("{name} needs its field {}", field.name))?;
                encode(interface, &field.kind, field_value, out, depth + 1)
                    .map_err(|error| format!("{name}.{}: {error}", field.name))?;
            }
        }
    }
    Ok(())
}

fn decode(
    interface: &Interface,
    kind: &Type,
    input: &mut &[u8],
    depth: usize,
) -> Result<Value, String> {
    if depth > DEPTH_MAX {
        return Err(format!("types nest more than {DEPTH_MAX} deep"));
    }
    let error = |error: pactum_sdk::DecodeError| error.to_string();
    Ok(match kind {
        Type::Unit => Value::Null,
        Type::Bool => json!(bool::decode_from(input).map_err(error)?),
        Type::U8 => json!(u8::decode_from(input).map_err(error)?),
        Type::U16 => json!(u16::decode_from(input).map_err(error)?),
        Type::U32 => json!(u32::decode_from(input).map_err(error)?),
        Type::I32 => json!(i32::decode_from(input).map_err(error)?),
        Type::U64 => json!(u64::decode_from(input).map_err(error)?.to_string()),
        Type::U128 => json!(u128::decode_from(input).map_err(error)?.to_string()),
        Type::I64 => json!(i64::decode_from(input).map_err(error)?.to_string()),
        Type::I128 => json!(i128::decode_from(input).map_err(error)?.to_string()),
        Type::String => json!(String::decode_from(input).map_err(error)?),
        Type::Address => json!(hex::encode(<[u8; 32]>::decode_from(input).map_err(error)?)),
        Type::FixedBytes { length } => {
            if input.len() < *length {
                return Err(format!("cannot decode {length} bytes"));
            }
            let (bytes, rest) = input.split_at(*length);
            *input = rest;
            json!(hex::encode(bytes))
        }
        Type::Vec { item } if **item == Type::U8 => {
            json!(hex::encode(Vec::<u8>::decode_from(input).map_err(error)?))
        }
        Type::Vec { item } => {
            let count = u32::decode_from(input).map_err(error)?;
            let mut items = Vec::new();
            for _ in 0..count {
                let before = input.len();
                items.push(decode(interface, item, input, depth + 1)?);
                // A vector of values that take no bytes could claim 2^32 of them.
                if input.len() == before {
                    return Err("a vector of values that take no bytes".into());
                }
            }
            Value::Array(items)
        }
        Type::Option { item } => match u8::decode_from(input).map_err(error)? {
            0 => Value::Null,
            1 => decode(interface, item, input, depth + 1)?,
            _ => return Err("cannot decode Option".into()),
        },
        Type::Tuple { items } => Value::Array(
            items
                .iter()
                .map(|item| decode(interface, item, input, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Type::Record { name } => {
            let record =
                interface.record(name).ok_or_else(|| format!("no record {name} is declared"))?;
            let mut object = Map::new();
            for field in &record.fields {
                let value = decode(interface, &field.kind, input, depth + 1)
                    .map_err(|error| format!("{name}.{}: {error}", field.name))?;
                object.insert(field.name.clone(), value);
            }
            Value::Object(object)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface() -> Interface {
        Interface::parse(
            "init()\n\
             method register_product(id: String, metadata_hash: [u8; 32], amount: u128, passed: bool)\n\
             method history(id: String) -> Vec<Step>\n\
             method party(who: Address) -> Option<Party>\n\
             method loop_forever() -> Loop\n\
             record Step{kind: String, value: i64, data: Vec<u8>}\n\
             record Party{name: String, roles: Vec<(String, u32)>}\n\
             record Loop{again: Loop}\n",
        )
        .unwrap()
    }

    #[test]
    fn arguments_encode_as_the_sdk_encodes_their_types() {
        let hash = [7u8; 32];
        let input = encode_call(
            &interface(),
            "register_product",
            &[
                json!("crate-1"),
                json!(hex::encode(hash)),
                json!("340282366920938463463374607431768211455"),
                json!(true),
            ],
        )
        .unwrap();
        assert_eq!(input, ("crate-1", hash, u128::MAX, true).encode());
        let error = |values: &[Value]| {
            encode_call(&interface(), "register_product", values).unwrap_err().to_string()
        };
        assert!(
            error(&[json!("x")]).contains("takes 4 arguments (id, metadata_hash, amount, passed)")
        );
        assert!(error(&[json!("x"), json!("00"), json!(1), json!(true)]).contains("metadata_hash"));
        assert!(
            error(&[json!("x"), json!(hex::encode(hash)), json!(-1), json!(true)])
                .contains("not a u128")
        );
        let unknown = encode_call(&interface(), "mint", &[]).unwrap_err().to_string();
        assert!(unknown.contains("declares no method \"mint\""));
    }

    #[test]
    fn return_data_decodes_into_records_vectors_options_and_tuples() {
        let steps = vec![("custody", -5i64, vec![1u8, 2]), ("recalled", 0, vec![])];
        let mut data = Vec::new();
        (steps.len() as u32).encode_to(&mut data);
        for step in &steps {
            step.encode_to(&mut data);
        }
        let decoded = decode_return(&interface(), "history", &data).unwrap();
        assert_eq!(
            decoded,
            json!([{"kind": "custody", "value": "-5", "data": "0102"}, {"kind": "recalled", "value": "0", "data": ""}])
        );
        let party = Some(("Acme", vec![("carrier", 3u32)])).encode();
        assert_eq!(
            decode_return(&interface(), "party", &party).unwrap(),
            json!({"name": "Acme", "roles": [["carrier", 3]]})
        );
        assert_eq!(decode_return(&interface(), "party", &[0]).unwrap(), Value::Null);
        let trailing = decode_return(&interface(), "party", &[0, 0]).unwrap_err().to_string();
        assert!(trailing.contains("1 bytes more"));
        let short = decode_return(&interface(), "history", &[1, 0, 0, 0]).unwrap_err().to_string();
        assert!(short.contains("Step.kind"), "{short}");
        // A record that holds itself ends at the depth limit, not in a stack overflow.
        let deep = decode_return(&interface(), "loop_forever", &[]).unwrap_err().to_string();
        assert!(deep.contains("nest more than"), "{deep}");
    }
}
