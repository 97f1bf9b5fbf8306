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
