//! The contract scenarios of `contracts/*/src/scenarios.rs`, run in the real VM against
//! the wasm builds: the same assertions that the mock chain passes.

mod common;

use common::VmChain;
use pactum_vm::Status;

#[test]
fn token_scenarios_pass_in_the_vm() {
    pactum_contract_token::scenarios::mint_transfer_and_balances(&mut VmChain::new());
    pactum_contract_token::scenarios::only_the_issuer_mints(&mut VmChain::new());
    pactum_contract_token::scenarios::insufficient_balance_reverts_without_changes(
        &mut VmChain::new(),
    );
    pactum_contract_token::scenarios::approve_and_transfer_from(&mut VmChain::new());
    pactum_contract_token::scenarios::unknown_methods_and_bad_arguments_revert(&mut VmChain::new());
}

#[test]
fn supply_chain_scenarios_pass_in_the_vm() {
    pactum_contract_supply_chain::scenarios::product_journey_with_full_provenance(
        &mut VmChain::new(),
    );
    pactum_contract_supply_chain::scenarios::only_the_custodian_transfers_and_only_to_registered_parties(
        &mut VmChain::new(),
    );
    pactum_contract_supply_chain::scenarios::recall_freezes_custody_and_is_restricted(
        &mut VmChain::new(),
    );
}

#[test]
fn healthcare_scenarios_pass_in_the_vm() {
    pactum_contract_healthcare::scenarios::consent_governs_access_and_every_access_is_audited(
        &mut VmChain::new(),
    );
    pactum_contract_healthcare::scenarios::only_patients_read_their_audit_trail_and_only_admin_registers_providers(
        &mut VmChain::new(),
    );
}

#[test]
fn escrow_scenarios_with_calls_between_contracts_pass_in_the_vm() {
    pactum_contract_escrow::scenarios::deal_pulls_tokens_and_releases_them_to_the_seller(
        &mut VmChain::new(),
    );
    pactum_contract_escrow::scenarios::failed_token_calls_revert_the_deal_step(&mut VmChain::new());
}

#[test]
fn reverted_calls_charge_gas_and_change_nothing() {
    let mut chain = VmChain::new();
    pactum_contract_token::scenarios::insufficient_balance_reverts_without_changes(&mut chain);
    let reverted: Vec<_> = chain
        .executions
        .iter()
        .filter(|execution| matches!(execution.status, Status::Reverted { .. }))
        .collect();
    assert!(!reverted.is_empty());
    for execution in reverted {
        assert!(execution.gas_used > 0);
        assert!(execution.write_set.is_empty() && execution.events.is_empty());
        assert!(execution.return_data.is_empty());
    }
}

#[test]
fn token_gas_figures_are_reported() {
    let mut chain = VmChain::new();
    pactum_contract_token::scenarios::mint_transfer_and_balances(&mut chain);
    for execution in &chain.executions {
        println!("{:?} gas {}", execution.status, execution.gas_used);
        assert!(execution.gas_used > 0);
    }
}

/// Each sample's wasm build carries the interface its `contract!` and `record!`
/// declarations describe (the section survives the size-optimised, stripped build), and
/// it is the interface the crate's native `INTERFACE` constants give.
#[test]
fn every_sample_module_declares_the_interface_of_its_source() {
    use pactum_types::interface::{Interface, Type, of_module};
    let samples = [
        ("token", pactum_contract_token::INTERFACE, String::new()),
        (
            "supply-chain",
            pactum_contract_supply_chain::INTERFACE,
            [
                pactum_contract_supply_chain::Party::INTERFACE,
                pactum_contract_supply_chain::Product::INTERFACE,
                pactum_contract_supply_chain::Step::INTERFACE,
            ]
            .concat(),
        ),
        (
            "healthcare",
            pactum_contract_healthcare::INTERFACE,
            [
                pactum_contract_healthcare::RecordReference::INTERFACE,
                pactum_contract_healthcare::Access::INTERFACE,
                pactum_contract_healthcare::AuditEntry::INTERFACE,
            ]
            .concat(),
        ),
        (
            "escrow",
            pactum_contract_escrow::INTERFACE,
            pactum_contract_escrow::Deal::INTERFACE.into(),
        ),
    ];
    for (name, methods, records) in samples {
        let module = pactum_contract_wasm::by_name(name).unwrap();
        let declared = of_module(module)
            .unwrap_or_else(|error| panic!("{name}: {error}"))
            .unwrap_or_else(|| panic!("{name}'s module has no interface section"));
        let mut source = Interface::parse(&format!("{methods}{records}")).unwrap();
        let mut from_module = declared.clone();
        for interface in [&mut source, &mut from_module] {
            interface.records.sort_by(|a, b| a.name.cmp(&b.name));
        }
        assert_eq!(from_module, source, "{name}");
    }
    let token = of_module(pactum_contract_wasm::TOKEN).unwrap().unwrap();
    assert_eq!(token.methods.len(), 9);
    assert_eq!(token.method("balance").unwrap().returns, Type::U128);
    assert_eq!(token.init[0].kind, Type::String);
    let health = of_module(pactum_contract_wasm::HEALTHCARE).unwrap().unwrap();
    assert_eq!(
        health.method("read_records").unwrap().returns,
        Type::Record { name: "Access".into() }
    );
    assert_eq!(health.method("register_patient").unwrap().returns, Type::Unit);
}
