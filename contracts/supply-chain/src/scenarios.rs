//! Supply-chain scenarios, run on the mock chain and in the real VM.

use alloc::string::String;
use alloc::vec::Vec;

use pactum_sdk::Address;
use pactum_sdk::testing::{Chain, account};

use crate::{Product, Step};

fn text(value: &str) -> String {
    String::from(value)
}

#[derive(Debug, Clone, Copy)]
pub struct Parties {
    pub admin: Address,
    pub farm: Address,
    pub carrier: Address,
    pub inspector: Address,
    pub shop: Address,
    pub contract: Address,
}

/// Deploys the contract and registers four parties.
pub fn setup(chain: &mut impl Chain) -> Parties {
    let admin = account("consortium-admin");
    let contract = chain.deploy(admin, "supply-chain", &());
    let parties = Parties {
        admin,
        farm: account("farm"),
        carrier: account("carrier"),
        inspector: account("inspector"),
        shop: account("shop"),
        contract,
    };
    for (party, name, role) in [
        (parties.farm, "Green Farm", "producer"),
        (parties.carrier, "Cold Freight", "carrier"),
        (parties.inspector, "Food Lab", "inspector"),
        (parties.shop, "Corner Shop", "retailer"),
    ] {
        let outcome =
            chain.call(admin, contract, "register_party", &(party, text(name), text(role)));
        assert_eq!(outcome.topics(), ["party_registered"]);
    }
    parties
}

fn register_lot(chain: &mut impl Chain, parties: &Parties, id: &str) {
    let outcome = chain.call(
        parties.farm,
        parties.contract,
        "register_product",
        &(text(id), text("Valencia, ES"), text("B-2026-11"), [7u8; 32], text("farm gate")),
    );
    assert_eq!(outcome.topics(), ["product_registered"]);
}

pub fn product_journey_with_full_provenance(chain: &mut impl Chain) {
    let parties = setup(chain);
    chain.set_block(10, 1_767_225_600_000);
    register_lot(chain, &parties, "lot-1");

    chain.set_block(11, 1_767_225_660_000);
    let moved = chain.call(
        parties.farm,
        parties.contract,
        "transfer_custody",
        &(text("lot-1"), parties.carrier, text("truck 42")),
    );
    assert_eq!(moved.topics(), ["custody_transferred"]);
    let reading = chain.call(
        parties.carrier,
        parties.contract,
        "record_reading",
        &(text("lot-1"), text("temperature_mC"), 3_500i64),
    );
    assert_eq!(reading.topics(), ["sensor_reading"]);
    let inspected = chain.call(
        parties.inspector,
        parties.contract,
        "record_inspection",
        &(text("lot-1"), true, [9u8; 32], text("no damage")),
    );
    assert_eq!(inspected.topics(), ["inspection_recorded"]);

    chain.set_block(12, 1_767_225_720_000);
    let delivered = chain.call(
        parties.carrier,
        parties.contract,
        "transfer_custody",
        &(text("lot-1"), parties.shop, text("Corner Shop, Madrid")),
    );
    assert_eq!(delivered.topics(), ["custody_transferred"]);
    let flagged = chain.call(
        parties.shop,
        parties.contract,
        "flag",
        &(text("lot-1"), text("warm on arrival")),
    );
    assert_eq!(flagged.topics(), ["product_flagged"]);

    let product: Product =
        chain.call(parties.admin, parties.contract, "product", &(text("lot-1"),)).returned();
    assert_eq!(product.custodian, parties.shop);
    assert_eq!(product.location, "Corner Shop, Madrid");
    assert!(product.flagged && !product.recalled);
    assert_eq!(product.metadata_hash, [7; 32]);

    let history: Vec<Step> =
        chain.call(parties.admin, parties.contract, "history", &(text("lot-1"),)).returned();
    let kinds: Vec<&str> = history.iter().map(|step| step.kind.as_str()).collect();
    assert_eq!(kinds, ["registered", "custody", "reading", "inspection", "custody", "flagged"]);
    assert_eq!(history[0].actor, parties.farm);
    assert_eq!((history[0].height, history[0].timestamp_ms), (10, 1_767_225_600_000));
    assert_eq!((history[1].custodian, history[1].location.as_str()), (parties.carrier, "truck 42"));
    assert_eq!((history[2].detail.as_str(), history[2].value), ("temperature_mC", 3_500));
    assert_eq!((history[3].value, history[3].hash), (1, [9; 32]));
    assert_eq!(history[4].height, 12);
    assert_eq!(history[5].detail, "warm on arrival");
}

pub fn only_the_custodian_transfers_and_only_to_registered_parties(chain: &mut impl Chain) {
    let parties = setup(chain);
    register_lot(chain, &parties, "lot-2");
    let stolen = chain.call(
        parties.carrier,
        parties.contract,
        "transfer_custody",
        &(text("lot-2"), parties.carrier, text("elsewhere")),
    );
    assert_eq!(stolen.revert_reason(), Some("only the current custodian may transfer custody"));
    let outsider = account("outsider");
    let to_outsider = chain.call(
        parties.farm,
        parties.contract,
        "transfer_custody",
        &(text("lot-2"), outsider, text("?")),
    );
    assert_eq!(to_outsider.revert_reason(), Some("the new custodian is not a registered party"));
    let unregistered =
        chain.call(outsider, parties.contract, "record_reading", &(text("lot-2"), text("t"), 1i64));
    assert_eq!(unregistered.revert_reason(), Some("the caller is not a registered party"));
    let not_admin = chain.call(
        parties.farm,
        parties.contract,
        "register_party",
        &(outsider, text("x"), text("y")),
    );
    assert_eq!(not_admin.revert_reason(), Some("only the administrator registers parties"));
    let duplicate = chain.call(
        parties.farm,
        parties.contract,
        "register_product",
        &(text("lot-2"), text("x"), text("y"), [0u8; 32], text("z")),
    );
    assert_eq!(duplicate.revert_reason(), Some("product `lot-2` is already registered"));
    let history: Vec<Step> =
        chain.call(parties.admin, parties.contract, "history", &(text("lot-2"),)).returned();
    assert_eq!(history.len(), 1);
}

pub fn recall_freezes_custody_and_is_restricted(chain: &mut impl Chain) {
    let parties = setup(chain);
    register_lot(chain, &parties, "lot-3");
    let by_carrier =
        chain.call(parties.carrier, parties.contract, "recall", &(text("lot-3"), text("no")));
    assert_eq!(
        by_carrier.revert_reason(),
        Some("only the administrator or the registrant may recall a product")
    );
    let recalled =
        chain.call(parties.admin, parties.contract, "recall", &(text("lot-3"), text("salmonella")));
    assert_eq!(recalled.topics(), ["product_recalled"]);
    let frozen = chain.call(
        parties.farm,
        parties.contract,
        "transfer_custody",
        &(text("lot-3"), parties.carrier, text("x")),
    );
    assert_eq!(frozen.revert_reason(), Some("product `lot-3` is recalled"));
    let product: Product =
        chain.call(parties.admin, parties.contract, "product", &(text("lot-3"),)).returned();
    assert!(product.recalled);
    assert_eq!(product.custodian, parties.farm);
    let unknown = chain.call(parties.admin, parties.contract, "product", &(text("nope"),));
    assert_eq!(unknown.revert_reason(), Some("unknown product `nope`"));
}
