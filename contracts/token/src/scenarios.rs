//! Token scenarios, written against [`Chain`] so that they run on the mock chain (this
//! crate's unit tests) and in the real VM against the wasm build (`pactum-vm`'s tests).

use alloc::string::String;
use alloc::vec::Vec;

use pactum_sdk::Address;
use pactum_sdk::testing::{Chain, Status, account};

/// Deploys the token as `issuer` and returns its address.
pub fn deploy(chain: &mut impl Chain, issuer: Address) -> Address {
    chain.deploy(issuer, "token", &(String::from("Pactum Dollar"),))
}

pub fn balance(chain: &mut impl Chain, token: Address, owner: Address) -> u128 {
    chain.call(owner, token, "balance", &(owner,)).returned()
}

pub fn mint_transfer_and_balances(chain: &mut impl Chain) {
    let (issuer, alice, bob) = (account("issuer"), account("alice"), account("bob"));
    let token = deploy(chain, issuer);
    assert_eq!(chain.call(alice, token, "name", &()).returned::<String>(), "Pactum Dollar");
    assert_eq!(chain.call(alice, token, "issuer", &()).returned::<Address>(), issuer);

    let minted = chain.call(issuer, token, "mint", &(alice, 1_000u128));
    minted.expect_success();
    assert_eq!(minted.topics(), ["mint"]);
    assert_eq!(minted.events[0].decode::<(Address, u128)>(), (alice, 1_000));

    let sent = chain.call(alice, token, "transfer", &(bob, 300u128));
    sent.expect_success();
    assert_eq!(sent.topics(), ["transfer"]);
    assert_eq!(sent.events[0].decode::<(Address, Address, u128)>(), (alice, bob, 300));
    assert_eq!(sent.events[0].contract, token);

    assert_eq!(balance(chain, token, alice), 700);
    assert_eq!(balance(chain, token, bob), 300);
    assert_eq!(chain.call(bob, token, "total_supply", &()).returned::<u128>(), 1_000);
}

pub fn only_the_issuer_mints(chain: &mut impl Chain) {
    let (issuer, bob) = (account("issuer"), account("bob"));
    let token = deploy(chain, issuer);
    let refused = chain.call(bob, token, "mint", &(bob, 5u128));
    assert_eq!(refused.revert_reason(), Some("only the issuer may mint"));
    assert!(refused.events.is_empty());
    assert_eq!(balance(chain, token, bob), 0);
    assert_eq!(chain.call(bob, token, "total_supply", &()).returned::<u128>(), 0);
}

pub fn insufficient_balance_reverts_without_changes(chain: &mut impl Chain) {
    let (issuer, alice, bob) = (account("issuer"), account("alice"), account("bob"));
    let token = deploy(chain, issuer);
    chain.call(issuer, token, "mint", &(alice, 100u128)).expect_success();
    let refused = chain.call(alice, token, "transfer", &(bob, 101u128));
    assert_eq!(refused.revert_reason(), Some("insufficient balance: 100 < 101"));
    assert!(refused.return_data.is_empty() && refused.events.is_empty());
    assert_eq!(balance(chain, token, alice), 100);
    assert_eq!(balance(chain, token, bob), 0);
}

pub fn approve_and_transfer_from(chain: &mut impl Chain) {
    let (issuer, alice, bob, carol) =
        (account("issuer"), account("alice"), account("bob"), account("carol"));
    let token = deploy(chain, issuer);
    chain.call(issuer, token, "mint", &(alice, 500u128)).expect_success();
    let approved = chain.call(alice, token, "approve", &(carol, 200u128));
    assert_eq!(approved.topics(), ["approval"]);
    assert_eq!(chain.call(carol, token, "allowance", &(alice, carol)).returned::<u128>(), 200);

    let spent = chain.call(carol, token, "transfer_from", &(alice, bob, 150u128));
    assert_eq!(spent.topics(), ["transfer"]);
    assert_eq!(chain.call(carol, token, "allowance", &(alice, carol)).returned::<u128>(), 50);
    assert_eq!(balance(chain, token, alice), 350);
    assert_eq!(balance(chain, token, bob), 150);

    let overspent = chain.call(carol, token, "transfer_from", &(alice, bob, 51u128));
    assert_eq!(overspent.revert_reason(), Some("allowance exceeded: 50 < 51"));
    // Bob was never approved by Alice.
    let stranger = chain.call(bob, token, "transfer_from", &(alice, bob, 1u128));
    assert!(matches!(stranger.status, Status::Reverted(_)));
    assert_eq!(balance(chain, token, alice), 350);
}

pub fn unknown_methods_and_bad_arguments_revert(chain: &mut impl Chain) {
    let (issuer, alice) = (account("issuer"), account("alice"));
    let token = deploy(chain, issuer);
    let unknown = chain.call(alice, token, "steal", &());
    assert_eq!(unknown.revert_reason(), Some("unknown method `steal`"));
    let garbled = chain.call_raw(alice, token, "transfer", Vec::from([1u8, 2, 3]));
    assert!(garbled.revert_reason().is_some_and(|reason| reason.starts_with("bad input")));
}
