//! A fungible token: the deployer is the issuer and the only one who may mint; holders
//! transfer, approve spenders and spenders transfer from the holders who approved them.
//!
//! Every change emits an event: `mint`, `transfer`, `approval`.

#![no_std]
#![allow(
    clippy::needless_pass_by_value,
    reason = "entry points own their decoded arguments, as `contract!` passes them"
)]

extern crate alloc;

use alloc::string::String;

use pactum_sdk::storage::{Map, Value};
use pactum_sdk::{Address, Result, ensure, env};

#[cfg(not(target_arch = "wasm32"))]
pub mod scenarios;

const ISSUER: Value<Address> = Value::new(b"issuer");
const NAME: Value<String> = Value::new(b"name");
const SUPPLY: Value<u128> = Value::new(b"supply");
const BALANCES: Map<Address, u128> = Map::new(b"balance");
const ALLOWANCES: Map<(Address, Address), u128> = Map::new(b"allowance");

pactum_sdk::contract! {
    init(name: String) => init;
    methods {
        mint(to: Address, amount: u128);
        transfer(to: Address, amount: u128);
        balance(owner: Address) -> u128;
        approve(spender: Address, amount: u128);
        allowance(owner: Address, spender: Address) -> u128;
        transfer_from(owner: Address, to: Address, amount: u128);
        total_supply() -> u128;
        issuer() -> Address;
        name() -> String;
    }
}

pub fn init(name: String) -> Result<()> {
    ensure!(!name.is_empty(), "the token needs a name");
    ISSUER.set(&env::caller());
    NAME.set(&name);
    SUPPLY.set(&0);
    Ok(())
}

pub fn mint(to: Address, amount: u128) -> Result<()> {
    ensure!(Some(env::caller()) == ISSUER.get(), "only the issuer may mint");
    let supply = SUPPLY.get_or(0).checked_add(amount);
    let Some(supply) = supply else { return Err("total supply would overflow".into()) };
    SUPPLY.set(&supply);
    BALANCES.set(&to, &(BALANCES.get_or(&to, 0) + amount));
    env::emit("mint", &(to, amount));
    Ok(())
}

fn move_balance(from: Address, to: Address, amount: u128) -> Result<()> {
    let from_balance = BALANCES.get_or(&from, 0);
    ensure!(from_balance >= amount, "insufficient balance: {from_balance} < {amount}");
    if from != to {
        BALANCES.set(&from, &(from_balance - amount));
        // Cannot overflow: every balance is at most the total supply, a u128.
        BALANCES.set(&to, &(BALANCES.get_or(&to, 0) + amount));
    }
    env::emit("transfer", &(from, to, amount));
    Ok(())
}

pub fn transfer(to: Address, amount: u128) -> Result<()> {
    move_balance(env::caller(), to, amount)
}

pub fn balance(owner: Address) -> Result<u128> {
    Ok(BALANCES.get_or(&owner, 0))
}

pub fn approve(spender: Address, amount: u128) -> Result<()> {
    let owner = env::caller();
    ALLOWANCES.set(&(owner, spender), &amount);
    env::emit("approval", &(owner, spender, amount));
    Ok(())
}

pub fn allowance(owner: Address, spender: Address) -> Result<u128> {
    Ok(ALLOWANCES.get_or(&(owner, spender), 0))
}

pub fn transfer_from(owner: Address, to: Address, amount: u128) -> Result<()> {
    let spender = env::caller();
    let allowed = ALLOWANCES.get_or(&(owner, spender), 0);
    ensure!(allowed >= amount, "allowance exceeded: {allowed} < {amount}");
    ALLOWANCES.set(&(owner, spender), &(allowed - amount));
    move_balance(owner, to, amount)
}

pub fn total_supply() -> Result<u128> {
    Ok(SUPPLY.get_or(0))
}

pub fn issuer() -> Result<Address> {
    ISSUER.get().ok_or_else(|| "not initialised".into())
}

pub fn name() -> Result<String> {
    NAME.get().ok_or_else(|| "not initialised".into())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use pactum_sdk::testing::MockChain;

    fn chain() -> MockChain {
        let mut chain = MockChain::new();
        chain.register("token", super::NATIVE);
        chain
    }

    #[test]
    fn mint_transfer_and_balances() {
        super::scenarios::mint_transfer_and_balances(&mut chain());
    }

    #[test]
    fn only_the_issuer_mints() {
        super::scenarios::only_the_issuer_mints(&mut chain());
    }

    #[test]
    fn insufficient_balance_reverts_without_changes() {
        super::scenarios::insufficient_balance_reverts_without_changes(&mut chain());
    }

    #[test]
    fn approve_and_transfer_from() {
        super::scenarios::approve_and_transfer_from(&mut chain());
    }

    #[test]
    fn unknown_methods_and_bad_arguments_revert() {
        super::scenarios::unknown_methods_and_bad_arguments_revert(&mut chain());
    }

    #[test]
    fn gas_report_counts_host_calls_per_method() {
        let mut chain = chain();
        super::scenarios::mint_transfer_and_balances(&mut chain);
        let report = chain.gas_report();
        std::println!("{report}");
        let lines = chain.gas_lines();
        let transfer =
            lines[&(std::string::String::from("pactum-contract-token"), "transfer".into())];
        assert!(transfer.calls >= 1);
        // A transfer reads two balances and writes two: at least two storage writes.
        assert!(transfer.max >= 2 * pactum_types::gas::GasSchedule::V1.storage_write_base);
    }
}
