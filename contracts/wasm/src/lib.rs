//! The sample contracts built for `wasm32-unknown-unknown` by this crate's build script,
//! embedded as bytes for the VM's tests and benchmarks. Nothing here is checked in: the
//! normal build produces them from `contracts/`.

/// The token contract (`contracts/token`).
pub const TOKEN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pactum_contract_token.wasm"));

/// The supply-chain contract (`contracts/supply-chain`).
pub const SUPPLY_CHAIN: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pactum_contract_supply_chain.wasm"));

/// The healthcare contract (`contracts/healthcare`).
pub const HEALTHCARE: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pactum_contract_healthcare.wasm"));

/// The escrow contract (`contracts/escrow`).
pub const ESCROW: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pactum_contract_escrow.wasm"));

/// The module registered under `name` in the contract scenarios (`token`,
/// `supply-chain`, `healthcare`, `escrow`).
pub fn by_name(name: &str) -> Option<&'static [u8]> {
    match name {
        "token" => Some(TOKEN),
        "supply-chain" => Some(SUPPLY_CHAIN),
        "healthcare" => Some(HEALTHCARE),
        "escrow" => Some(ESCROW),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_contract_is_a_wasm_module() {
        for name in ["token", "supply-chain", "healthcare", "escrow"] {
            let code = super::by_name(name).unwrap();
            assert_eq!(&code[..4], b"\0asm", "{name}");
        }
    }
}
