//! Escrow scenarios (token and escrow contracts together), on the mock chain and in the VM.

use alloc::string::String;

use pactum_sdk::Address;
use pactum_sdk::testing::{Chain, account};

use crate::{Deal, OPEN, RELEASED};

#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub buyer: Address,
    pub seller: Address,
    pub arbiter: Address,
    pub token: Address,
    pub escrow: Address,
}

fn balance(chain: &mut impl Chain, token: Address, owner: Address) -> u128 {
    chain.call(owner, token, "balance", &(owner,)).returned()
}

pub fn setup(chain: &mut impl Chain) -> Setup {
    let (issuer, buyer) = (account("issuer"), account("buyer"));
    let token = chain.deploy(issuer, "token", &(String::from("Pactum Dollar"),));
    chain.call(issuer, token, "mint", &(buyer, 1_000u128)).expect_success();
    let escrow = chain.deploy(account("escrow-operator"), "escrow", &());
    Setup { buyer, seller: account("seller"), arbiter: account("arbiter"), token, escrow }
}

pub fn deal_pulls_tokens_and_releases_them_to_the_seller(chain: &mut impl Chain) {
    let s = setup(chain);
    chain.call(s.buyer, s.token, "approve", &(s.escrow, 400u128)).expect_success();
    let opened = chain.call(s.buyer, s.escrow, "open", &(s.seller, s.arbiter, s.token, 400u128));
    assert_eq!(opened.returned::<u64>(), 0);
    // The token's event (emitted in the nested call) comes first, then the escrow's.
    assert_eq!(opened.topics(), ["transfer", "deal_opened"]);
    assert_eq!((opened.events[0].contract, opened.events[1].contract), (s.token, s.escrow));
    assert_eq!(opened.events[0].decode::<(Address, Address, u128)>(), (s.buyer, s.escrow, 400));
    assert_eq!(balance(chain, s.token, s.buyer), 600);
    assert_eq!(balance(chain, s.token, s.escrow), 400);

    let by_seller = chain.call(s.seller, s.escrow, "release", &(0u64,));
    assert_eq!(by_seller.revert_reason(), Some("the caller may not settle deal 0 this way"));
    let released = chain.call(s.arbiter, s.escrow, "release", &(0u64,));
    assert_eq!(released.topics(), ["transfer", "deal_released"]);
    assert_eq!(balance(chain, s.token, s.seller), 400);
    assert_eq!(balance(chain, s.token, s.escrow), 0);
    let deal: Deal = chain.call(s.buyer, s.escrow, "deal", &(0u64,)).returned();
    assert_eq!((deal.state, deal.amount, deal.buyer), (RELEASED, 400, s.buyer));
    let again = chain.call(s.arbiter, s.escrow, "refund", &(0u64,));
    assert_eq!(again.revert_reason(), Some("deal 0 is not open"));
}

pub fn failed_token_calls_revert_the_deal_step(chain: &mut impl Chain) {
    let s = setup(chain);
    chain.call(s.buyer, s.token, "approve", &(s.escrow, 100u128)).expect_success();
    let too_much = chain.call(s.buyer, s.escrow, "open", &(s.seller, s.arbiter, s.token, 500u128));
    assert_eq!(
        too_much.revert_reason(),
        Some("inner call reverted: allowance exceeded: 100 < 500")
    );
    assert!(too_much.events.is_empty());
    assert_eq!(balance(chain, s.token, s.buyer), 1_000);
    assert_eq!(
        chain.call(s.buyer, s.token, "allowance", &(s.buyer, s.escrow)).returned::<u128>(),
        100
    );
    let unknown = chain.call(s.buyer, s.escrow, "deal", &(0u64,));
    assert_eq!(unknown.revert_reason(), Some("unknown deal"));
    // A deal over a contract that does not exist is refused by the VM and reverted here.
    let nowhere =
        chain.call(s.buyer, s.escrow, "open", &(s.seller, s.arbiter, account("no-token"), 5u128));
    assert_eq!(nowhere.revert_reason(), Some("inner call refused: no contract at that address"));
    let opened = chain.call(s.buyer, s.escrow, "open", &(s.seller, s.arbiter, s.token, 100u128));
    assert_eq!(opened.returned::<u64>(), 0);
    let deal: Deal = chain.call(s.buyer, s.escrow, "deal", &(0u64,)).returned();
    assert_eq!(deal.state, OPEN);
}
