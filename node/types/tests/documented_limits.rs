//! Every limit `docs/contract-abi.md` names carries its value, and the value is the one in
//! `limits.rs`: a contract author reads the numbers there, so they must not drift.

use pactum_types::limits;

const ABI: &str = include_str!("../../../docs/contract-abi.md");

/// The limits the ABI document may name, with their values.
fn value_of(name: &str) -> Option<u64> {
    Some(match name {
        "CONTRACT_CODE_BYTES_MAX" => limits::CONTRACT_CODE_BYTES_MAX as u64,
        "CONTRACT_TABLES_MAX" => limits::CONTRACT_TABLES_MAX as u64,
        "CONTRACT_TABLE_ELEMENTS_MAX" => limits::CONTRACT_TABLE_ELEMENTS_MAX as u64,
        "CONTRACT_FUNCTIONS_MAX" => limits::CONTRACT_FUNCTIONS_MAX as u64,
        "CONTRACT_TYPES_MAX" => limits::CONTRACT_TYPES_MAX as u64,
        "CONTRACT_GLOBALS_MAX" => limits::CONTRACT_GLOBALS_MAX as u64,
        "CONTRACT_DATA_SEGMENTS_MAX" => limits::CONTRACT_DATA_SEGMENTS_MAX as u64,
        "CONTRACT_FUNCTION_BODY_BYTES_MAX" => limits::CONTRACT_FUNCTION_BODY_BYTES_MAX as u64,
        "CONTRACT_FUNCTION_LOCALS_MAX" => limits::CONTRACT_FUNCTION_LOCALS_MAX,
        "CONTRACT_MEMORY_BYTES_MAX" => limits::CONTRACT_MEMORY_BYTES_MAX as u64,
        "TRANSACTION_MEMORY_BYTES_MAX" => limits::TRANSACTION_MEMORY_BYTES_MAX as u64,
        "CONTRACT_WASM_STACK_BYTES_MAX" => limits::CONTRACT_WASM_STACK_BYTES_MAX as u64,
        "CONTRACT_CALL_DEPTH_MAX" => limits::CONTRACT_CALL_DEPTH_MAX as u64,
        "CONTRACT_INSTANCES_PER_TRANSACTION_MAX" => {
            limits::CONTRACT_INSTANCES_PER_TRANSACTION_MAX as u64
        }
        "CALL_INPUT_BYTES_MAX" => limits::CALL_INPUT_BYTES_MAX as u64,
        "METHOD_NAME_BYTES_MAX" => limits::METHOD_NAME_BYTES_MAX as u64,
        "RETURN_DATA_BYTES_MAX" => limits::RETURN_DATA_BYTES_MAX as u64,
        "STATE_KEY_BYTES_MAX" => limits::STATE_KEY_BYTES_MAX as u64,
        "STATE_VALUE_BYTES_MAX" => limits::STATE_VALUE_BYTES_MAX as u64,
        "EVENT_TOPIC_BYTES_MAX" => limits::EVENT_TOPIC_BYTES_MAX as u64,
        "EVENT_DATA_BYTES_MAX" => limits::EVENT_DATA_BYTES_MAX as u64,
        "EVENTS_PER_TRANSACTION_MAX" => limits::EVENTS_PER_TRANSACTION_MAX as u64,
        "REASON_BYTES_MAX" => limits::REASON_BYTES_MAX as u64,
        _ => return None,
    })
}

/// `512 KiB`, `16 MiB`, `1,024`, `256 bytes` → the number.
fn parse_value(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    let number: u64 = words.next()?.replace(',', "").parse().ok()?;
    Some(match words.next() {
        Some("KiB") => number * 1024,
        Some("MiB") => number * 1024 * 1024,
        _ => number,
    })
}

#[test]
fn every_limit_the_contract_abi_names_carries_its_value_from_limits_rs() {
    let mut checked = 0;
    let mut rest = ABI;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        let name = &after[..end];
        rest = &after[end + 1..];
        let is_limit = name.ends_with("_MAX")
            && name.chars().all(|character| character.is_ascii_uppercase() || character == '_');
        if !is_limit || name.contains("MAX /") {
            continue;
        }
        let expected = value_of(name)
            .unwrap_or_else(|| panic!("docs/contract-abi.md names {name}: add it to this test"));
        let following = rest.trim_start();
        let value = following
            .strip_prefix('(')
            .and_then(|inside| inside.split_once(')'))
            .and_then(|(inside, _)| parse_value(inside))
            .unwrap_or_else(|| panic!("`{name}` is not followed by its value in parentheses"));
        assert_eq!(value, expected, "docs/contract-abi.md gives {name} as {value}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} limits found: did the document change shape?");
}
