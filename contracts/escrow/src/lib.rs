//! Escrow of any token contract between a buyer and a seller, settled by an arbiter: the
//! sample of calls between contracts.
//!
//! The buyer approves this contract on the token, then `open`s a deal: the escrow pulls
//! the amount with the token's `transfer_from` (the token sees the escrow as its caller).
//! The buyer or the arbiter `release`s it to the seller; the seller or the arbiter
//! `refund`s it to the buyer. A failed token call reverts the whole deal step.

#![no_std]
#![allow(
    clippy::needless_pass_by_value,
    reason = "entry points own their decoded arguments, as `contract!` passes them"
)]

extern crate alloc;

use pactum_sdk::storage::{Map, Value};
use pactum_sdk::{Address, Result, ensure, env, record};

#[cfg(not(target_arch = "wasm32"))]
pub mod scenarios;

/// Gas each token call may use.
pub const TOKEN_CALL_GAS: u64 = 1_000_000;

pub const OPEN: u8 = 0;
pub const RELEASED: u8 = 1;
pub const REFUNDED: u8 = 2;

record! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Deal {
        pub buyer: Address,
        pub seller: Address,
        pub arbiter: Address,
        pub token: Address,
        pub amount: u128,
        pub state: u8,
    }
}

const NEXT_DEAL: Value<u64> = Value::new(b"next");
const DEALS: Map<u64, Deal> = Map::new(b"deal");

pactum_sdk::contract! {
    init() => init;
    methods {
        open(seller: Address, arbiter: Address, token: Address, amount: u128) -> u64;
        release(id: u64);
        refund(id: u64);
        deal(id: u64) -> Deal;
    }
}

pub fn init() -> Result<()> {
    NEXT_DEAL.set(&0);
    Ok(())
}

pub fn open(seller: Address, arbiter: Address, token: Address, amount: u128) -> Result<u64> {
    ensure!(amount > 0, "an escrow needs a positive amount");
    let buyer = env::caller();
    env::call::<()>(token, "transfer_from", &(buyer, env::self_address(), amount), TOKEN_CALL_GAS)?;
    let id = NEXT_DEAL.get_or(0);
    NEXT_DEAL.set(&(id + 1));
    DEALS.set(&id, &Deal { buyer, seller, arbiter, token, amount, state: OPEN });
    env::emit("deal_opened", &(id, buyer, seller, amount));
    Ok(id)
}

fn settle(id: u64, state: u8) -> Result<()> {
    let mut deal = DEALS.get(&id).ok_or("unknown deal")?;
    ensure!(deal.state == OPEN, "deal {id} is not open");
    let caller = env::caller();
    let (allowed, recipient, topic) = match state {
        RELEASED => (caller == deal.buyer || caller == deal.arbiter, deal.seller, "deal_released"),
        _ => (caller == deal.seller || caller == deal.arbiter, deal.buyer, "deal_refunded"),
    };
    ensure!(allowed, "the caller may not settle deal {id} this way");
    deal.state = state;
    DEALS.set(&id, &deal);
    env::call::<()>(deal.token, "transfer", &(recipient, deal.amount), TOKEN_CALL_GAS)?;
    env::emit(topic, &(id, recipient, deal.amount));
    Ok(())
}

pub fn release(id: u64) -> Result<()> {
    settle(id, RELEASED)
}

pub fn refund(id: u64) -> Result<()> {
    settle(id, REFUNDED)
}

pub fn deal(id: u64) -> Result<Deal> {
    DEALS.get(&id).ok_or_else(|| "unknown deal".into())
}

#[cfg(test)]
mod tests {
    use pactum_sdk::testing::MockChain;

    fn chain() -> MockChain {
        let mut chain = MockChain::new();
        chain.register("token", pactum_contract_token::NATIVE);
        chain.register("escrow", super::NATIVE);
        chain
    }

    #[test]
    fn deal_pulls_tokens_and_releases_them_to_the_seller() {
        super::scenarios::deal_pulls_tokens_and_releases_them_to_the_seller(&mut chain());
    }

    #[test]
    fn failed_token_calls_revert_the_deal_step() {
        super::scenarios::failed_token_calls_revert_the_deal_step(&mut chain());
    }
}
