//! Supply-chain provenance.
//!
//! The deployer is the administrator and registers the parties (producers, carriers,
//! inspectors, retailers). A registered party registers a product (origin, batch,
//! metadata hash) and becomes its custodian; only the current custodian may hand it to
//! another registered party, with a location. Any registered party records inspections
//! and IoT sensor readings (temperature in millidegrees Celsius, humidity, ...) and may
//! flag a product; the administrator or the product's registrant recalls it, after which
//! custody no longer moves. Every step is appended to the product's history, which
//! `history` returns in full, and emits an event.

#![no_std]
#![allow(
    clippy::needless_pass_by_value,
    reason = "entry points own their decoded arguments, as `contract!` passes them"
)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use pactum_sdk::storage::{Map, Value};
use pactum_sdk::{Address, Result, ensure, env, record};

#[cfg(not(target_arch = "wasm32"))]
pub mod scenarios;

record! {
    /// A registered party.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Party {
        pub name: String,
        pub role: String,
    }
}

record! {
    /// A product's current record.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Product {
        pub origin: String,
        pub batch: String,
        pub metadata_hash: [u8; 32],
        pub registrant: Address,
        pub custodian: Address,
        pub location: String,
        pub flagged: bool,
        pub recalled: bool,
        pub history_length: u32,
    }
}

record! {
    /// One step of a product's history. `kind` is one of `registered`, `custody`,
    /// `inspection`, `reading`, `flagged`, `recalled`; the other fields are filled as the
    /// kind needs (a reading's sensor goes in `detail` and its value in `value`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Step {
        pub kind: String,
        pub actor: Address,
        pub height: u64,
        pub timestamp_ms: u64,
        pub custodian: Address,
        pub location: String,
        pub detail: String,
        pub value: i64,
        pub hash: [u8; 32],
    }
}

/// History steps one product may have.
pub const HISTORY_STEPS_MAX: u32 = 10_000;

const ADMIN: Value<Address> = Value::new(b"admin");
const PARTIES: Map<Address, Party> = Map::new(b"party");
const PRODUCTS: Map<String, Product> = Map::new(b"product");
const HISTORY: Map<(String, u32), Step> = Map::new(b"step");

pactum_sdk::contract! {
    init() => init;
    methods {
        register_party(party: Address, name: String, role: String);
        party(party: Address) -> Option<Party>;
        register_product(id: String, origin: String, batch: String, metadata_hash: [u8; 32], location: String);
        transfer_custody(id: String, to: Address, location: String);
        record_inspection(id: String, passed: bool, report_hash: [u8; 32], notes: String);
        record_reading(id: String, sensor: String, value: i64);
        flag(id: String, reason: String);
        recall(id: String, reason: String);
        product(id: String) -> Product;
        history(id: String) -> Vec<Step>;
    }
}

pub fn init() -> Result<()> {
    ADMIN.set(&env::caller());
    Ok(())
}

fn registered_caller() -> Result<Address> {
    let caller = env::caller();
    ensure!(PARTIES.contains(&caller), "the caller is not a registered party");
    Ok(caller)
}

fn load(id: &String) -> Result<Product> {
    PRODUCTS.get(id).ok_or_else(|| alloc::format!("unknown product `{id}`").into())
}

fn step(kind: &str, actor: Address, product: &Product) -> Step {
    Step {
        kind: String::from(kind),
        actor,
        height: env::block_height(),
        timestamp_ms: env::block_timestamp_ms(),
        custodian: product.custodian,
        location: product.location.clone(),
        detail: String::new(),
        value: 0,
        hash: [0; 32],
    }
}

/// Appends `step` to the history, saves the product and emits the step as an event.
fn append(id: &String, product: &mut Product, step: Step) -> Result<()> {
    ensure!(product.history_length < HISTORY_STEPS_MAX, "the product's history is full");
    HISTORY.set(&(id.clone(), product.history_length), &step);
    product.history_length += 1;
    PRODUCTS.set(id, product);
    let topic = match step.kind.as_str() {
        "registered" => "product_registered",
        "custody" => "custody_transferred",
        "inspection" => "inspection_recorded",
        "reading" => "sensor_reading",
        "flagged" => "product_flagged",
        _ => "product_recalled",
    };
    env::emit(topic, &(id, step));
    Ok(())
}

pub fn register_party(party: Address, name: String, role: String) -> Result<()> {
    ensure!(Some(env::caller()) == ADMIN.get(), "only the administrator registers parties");
    ensure!(!name.is_empty() && !role.is_empty(), "a party needs a name and a role");
    let record = Party { name, role };
    PARTIES.set(&party, &record);
    env::emit("party_registered", &(party, record));
    Ok(())
}

pub fn party(party: Address) -> Result<Option<Party>> {
    Ok(PARTIES.get(&party))
}

pub fn register_product(
    id: String,
    origin: String,
    batch: String,
    metadata_hash: [u8; 32],
    location: String,
) -> Result<()> {
    let caller = registered_caller()?;
    ensure!(!id.is_empty() && id.len() <= 64, "a product id has 1 to 64 bytes");
    ensure!(!PRODUCTS.contains(&id), "product `{id}` is already registered");
    let mut product = Product {
        origin,
        batch,
        metadata_hash,
        registrant: caller,
        custodian: caller,
        location,
        flagged: false,
        recalled: false,
        history_length: 0,
    };
    let mut registered = step("registered", caller, &product);
    registered.detail = alloc::format!("origin {}, batch {}", product.origin, product.batch);
    registered.hash = metadata_hash;
    append(&id, &mut product, registered)
}

pub fn transfer_custody(id: String, to: Address, location: String) -> Result<()> {
    let caller = registered_caller()?;
    let mut product = load(&id)?;
    ensure!(product.custodian == caller, "only the current custodian may transfer custody");
    ensure!(!product.recalled, "product `{id}` is recalled");
    ensure!(PARTIES.contains(&to), "the new custodian is not a registered party");
    ensure!(to != caller, "the custodian already holds the product");
    product.custodian = to;
    product.location = location;
    let transferred = step("custody", caller, &product);
    append(&id, &mut product, transferred)
}

pub fn record_inspection(
    id: String,
    passed: bool,
    report_hash: [u8; 32],
    notes: String,
) -> Result<()> {
    let caller = registered_caller()?;
    let mut product = load(&id)?;
    let mut inspection = step("inspection", caller, &product);
    inspection.detail = notes;
    inspection.value = i64::from(passed);
    inspection.hash = report_hash;
    append(&id, &mut product, inspection)
}

pub fn record_reading(id: String, sensor: String, value: i64) -> Result<()> {
    let caller = registered_caller()?;
    let mut product = load(&id)?;
    let mut reading = step("reading", caller, &product);
    reading.detail = sensor;
    reading.value = value;
    append(&id, &mut product, reading)
}

pub fn flag(id: String, reason: String) -> Result<()> {
    let caller = registered_caller()?;
    let mut product = load(&id)?;
    product.flagged = true;
    let mut flagged = step("flagged", caller, &product);
    flagged.detail = reason;
    append(&id, &mut product, flagged)
}

pub fn recall(id: String, reason: String) -> Result<()> {
    let caller = env::caller();
    let mut product = load(&id)?;
    ensure!(
        Some(caller) == ADMIN.get() || caller == product.registrant,
        "only the administrator or the registrant may recall a product"
    );
    ensure!(!product.recalled, "product `{id}` is already recalled");
    product.recalled = true;
    let mut recalled = step("recalled", caller, &product);
    recalled.detail = reason;
    append(&id, &mut product, recalled)
}

pub fn product(id: String) -> Result<Product> {
    load(&id)
}

pub fn history(id: String) -> Result<Vec<Step>> {
    let product = load(&id)?;
    let mut steps = Vec::with_capacity(product.history_length as usize);
    for index in 0..product.history_length {
        let step = HISTORY.get(&(id.clone(), index));
        steps.push(step.ok_or("history step missing")?);
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use pactum_sdk::testing::MockChain;

    fn chain() -> MockChain {
        let mut chain = MockChain::new();
        chain.register("supply-chain", super::NATIVE);
        chain
    }

    #[test]
    fn product_journey_with_full_provenance() {
        super::scenarios::product_journey_with_full_provenance(&mut chain());
    }

    #[test]
    fn only_the_custodian_transfers_and_only_to_registered_parties() {
        super::scenarios::only_the_custodian_transfers_and_only_to_registered_parties(&mut chain());
    }

    #[test]
    fn recall_freezes_custody_and_is_restricted() {
        super::scenarios::recall_freezes_custody_and_is_restricted(&mut chain());
    }
}
