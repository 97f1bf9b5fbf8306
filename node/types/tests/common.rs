//! Sample values and proptest strategies shared by the encoding tests.

#![allow(dead_code)]

use pactum_types::*;
use proptest::collection::vec;
use proptest::prelude::*;

pub fn keypair(byte: u8) -> Keypair {
    Keypair::from_seed(&[byte; 32])
}

pub fn chain_id() -> ChainId {
    ChainId::new("pactum-golden").unwrap()
}

fn transaction(nonce: u64, payload: Payload) -> Transaction {
    let sender = keypair(1);
    UnsignedTransaction {
        chain_id: chain_id(),
        sender: sender.public_key(),
        nonce,
        gas_limit: 250_000,
        payload,
    }
    .sign(&sender)
}

/// One sample of every payload, governance action and governance change.
pub fn sample_transactions() -> Vec<(&'static str, Transaction)> {
    let changes = vec![
        (
            "add_member",
            GovernanceChange::AddMember {
                organisation: "Hospital B".into(),
                ca_certificates_der: vec![vec![0x30, 0x82, 0x01]],
            },
        ),
        ("remove_member", GovernanceChange::RemoveMember { organisation: "Hospital B".into() }),
        (
            "add_validator",
            GovernanceChange::AddValidator {
                validator: NewValidator {
                    name: "validator-5".into(),
                    certificate_der: vec![0x30, 0x03],
                    chain_der: Vec::new(),
                    network_address: "127.0.0.1:7100".into(),
                    api_address: "127.0.0.1:8100".into(),
                    proof: Signature([7; 64]),
                },
            },
        ),
        (
            "remove_validator",
            GovernanceChange::RemoveValidator { validator: keypair(9).public_key() },
        ),
        (
            "update_member",
            GovernanceChange::UpdateMember {
                organisation: "Hospital B".into(),
                ca_certificates_der: vec![vec![0x30, 0x82, 0x01], vec![0x30, 0x82, 0x02]],
            },
        ),
        (
            "set_policy_at_least",
            GovernanceChange::SetPolicy {
                class: ChangeClass::Membership,
                policy: Policy::AtLeast { count: 3 },
            },
        ),
        (
            "set_policy_more_than",
            GovernanceChange::SetPolicy {
                class: ChangeClass::Validators,
                policy: Policy::MoreThan { numerator: 2, denominator: 3 },
            },
        ),
        (
            "set_policy_all",
            GovernanceChange::SetPolicy { class: ChangeClass::Contracts, policy: Policy::All },
        ),
        (
            "set_deploy_policy_organisations",
            GovernanceChange::SetDeployPolicy {
                policy: DeployPolicy::Organisations {
                    organisations: vec!["Hospital A".into(), "Carrier".into()],
                },
            },
        ),
        (
            "set_deploy_policy_by_proposal",
            GovernanceChange::SetDeployPolicy { policy: DeployPolicy::ByProposal },
        ),
        ("approve_code", GovernanceChange::ApproveCode { code_hash: Hash([9; 32]) }),
        (
            "revoke_certificate",
            GovernanceChange::RevokeCertificate {
                organisation: "Carrier".into(),
                serial: vec![0x01, 0x7f],
            },
        ),
        (
            "upgrade_contract",
            GovernanceChange::UpgradeContract {
                contract: Address([4; 32]),
                code: b"\0asm\x01\0\0\0".to_vec(),
            },
        ),
    ];
    let mut samples = vec![
        (
            "tx_deploy",
            transaction(
                1,
                Payload::DeployContract {
                    code: b"\0asm\x01\0\0\0".to_vec(),
                    init_input: vec![1, 2],
                },
            ),
        ),
        (
            "tx_call",
            transaction(
                2,
                Payload::CallContract {
                    contract: Address([3; 32]),
                    method: "transfer".into(),
                    input: vec![0xaa; 40],
                },
            ),
        ),
        (
            "tx_enrol",
            transaction(
                3,
                Payload::EnrolIdentity { certificate_der: vec![0x30, 0x82, 0x02, 0x10] },
            ),
        ),
        (
            "tx_approve",
            transaction(
                4,
                Payload::Governance {
                    action: GovernanceAction::Approve { proposal: Hash([6; 32]) },
                },
            ),
        ),
        (
            "tx_reject",
            transaction(
                5,
                Payload::Governance {
                    action: GovernanceAction::Reject { proposal: Hash([6; 32]) },
                },
            ),
        ),
        (
            "tx_withdraw",
            transaction(
                6,
                Payload::Governance {
                    action: GovernanceAction::Withdraw { proposal: Hash([6; 32]) },
                },
            ),
        ),
        ("tx_ready", transaction(7, Payload::Governance { action: GovernanceAction::Ready })),
        (
            "tx_propose_bundle",
            transaction(
                7,
                Payload::Governance {
                    action: GovernanceAction::Propose {
                        title: "Onboard Hospital B".into(),
                        description: "Its CA, then its policy.".into(),
                        expires_at_height: 1_000,
                        changes: vec![
                            GovernanceChange::AddMember {
                                organisation: "Hospital B".into(),
                                ca_certificates_der: vec![vec![0x30, 0x82, 0x01]],
                            },
                            GovernanceChange::RemoveMember { organisation: "Clinic C".into() },
                        ],
                    },
                },
            ),
        ),
    ];
    for (index, (name, change)) in changes.into_iter().enumerate() {
        let name: &'static str = Box::leak(format!("tx_propose_{name}").into_boxed_str());
        samples.push((
            name,
            transaction(
                10 + index as u64,
                Payload::Governance {
                    action: GovernanceAction::Propose {
                        title: name.to_string(),
                        description: String::new(),
                        expires_at_height: 100,
                        changes: vec![change],
                    },
                },
            ),
        ));
    }
    samples
}

pub fn sample_receipts() -> Vec<(&'static str, Receipt)> {
    let event = Event { contract: Address([3; 32]), topic: "Transfer".into(), data: vec![1, 2, 3] };
    let receipt = |status| Receipt {
        transaction_hash: Hash([8; 32]),
        status,
        gas_used: 21_000,
        events: vec![event.clone()],
        return_data: vec![0x01],
    };
    vec![
        ("receipt_success", receipt(ReceiptStatus::Success)),
        (
            "receipt_reverted",
            receipt(ReceiptStatus::Reverted { reason: "insufficient balance".into() }),
        ),
        ("receipt_out_of_gas", receipt(ReceiptStatus::OutOfGas)),
        (
            "receipt_invalid",
            receipt(ReceiptStatus::Invalid { reason: "nonce already used".into() }),
        ),
        ("receipt_trapped", receipt(ReceiptStatus::Trapped { reason: "stack overflow".into() })),
    ]
}

pub fn sample_block() -> Block {
    let transactions: Vec<Transaction> =
        sample_transactions().into_iter().map(|(_, tx)| tx).take(3).collect();
    let header = BlockHeader {
        chain_id: chain_id(),
        height: 7,
        previous_hash: Hash([0x11; 32]),
        timestamp_ms: 1_767_225_600_000,
        proposer: keypair(20).public_key(),
        view: 2,
        sequence: 9,
        transactions_root: block::transactions_root(&transactions),
        previous_receipts_root: Hash([0x22; 32]),
        previous_state_root: Hash([0x33; 32]),
        validators_hash: Hash([0x44; 32]),
    };
    let hash = header.hash();
    let signatures = (20..23)
        .map(|byte| {
            let validator = keypair(byte);
            CommitSignature {
                validator: validator.public_key(),
                signature: validator.sign(crypto::domain::TEST_CHAIN_COMMIT, &hash.0),
            }
        })
        .collect();
    let certificate = CommitCertificate::new(header.view, signatures).unwrap();
    Block { header, transactions, certificate }
}

// ---- proptest strategies ----

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9 é/._-]{{0,{max}}}"))
        .unwrap()
        .prop_filter("within bytes", move |s| s.len() <= max)
}

pub fn arb_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

pub fn arb_address() -> impl Strategy<Value = Address> {
    any::<[u8; 32]>().prop_map(Address)
}

pub fn arb_public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}

pub fn arb_signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&a);
        bytes[32..].copy_from_slice(&b);
        Signature(bytes)
    })
}

pub fn arb_chain_id() -> impl Strategy<Value = ChainId> {
    "[a-z0-9._-]{1,64}".prop_map(|s| ChainId::new(s).unwrap())
}

fn arb_change() -> impl Strategy<Value = GovernanceChange> {
    prop_oneof![
        (text(64), vec(bytes(64), 0..4)).prop_map(|(organisation, ca_certificates_der)| {
            GovernanceChange::AddMember { organisation, ca_certificates_der }
        }),
        (text(64), vec(bytes(64), 0..4)).prop_map(|(organisation, ca_certificates_der)| {
            GovernanceChange::UpdateMember { organisation, ca_certificates_der }
        }),
        text(64).prop_map(|organisation| GovernanceChange::RemoveMember { organisation }),
        (text(40), bytes(64), vec(bytes(64), 0..3), text(40), text(40), arb_hash()).prop_map(
            |(name, certificate_der, chain_der, network_address, api_address, proof)| {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(&proof.0);
                GovernanceChange::AddValidator {
                    validator: NewValidator {
                        name,
                        certificate_der,
                        chain_der,
                        network_address,
                        api_address,
                        proof: Signature(signature),
                    },
                }
            }
        ),
        arb_public_key().prop_map(|validator| GovernanceChange::RemoveValidator { validator }),
        (0u8..5, any::<u16>(), any::<u16>(), 0u8..3).prop_map(|(class, a, b, rule)| {
            let class = ChangeClass::ALL[usize::from(class)];
            let policy = match rule {
                0 => Policy::AtLeast { count: a },
                1 => Policy::MoreThan { numerator: a, denominator: b },
                _ => Policy::All,
            };
            GovernanceChange::SetPolicy { class, policy }
        }),
        (text(64), bytes(20)).prop_map(|(organisation, serial)| {
            GovernanceChange::RevokeCertificate { organisation, serial }
        }),
        (arb_address(), bytes(64))
            .prop_map(|(contract, code)| GovernanceChange::UpgradeContract { contract, code }),
        vec(text(64), 0..4).prop_map(|organisations| GovernanceChange::SetDeployPolicy {
            policy: DeployPolicy::Organisations { organisations }
        }),
        Just(GovernanceChange::SetDeployPolicy { policy: DeployPolicy::Open }),
        arb_hash().prop_map(|code_hash| GovernanceChange::ApproveCode { code_hash }),
    ]
}

pub fn arb_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (bytes(128), bytes(32))
            .prop_map(|(code, init_input)| Payload::DeployContract { code, init_input }),
        (arb_address(), text(64), bytes(64)).prop_map(|(contract, method, input)| {
            Payload::CallContract { contract, method, input }
        }),
        (text(64), text(64), any::<u64>(), vec(arb_change(), 0..4)).prop_map(
            |(title, description, expires_at_height, changes)| Payload::Governance {
                action: GovernanceAction::Propose {
                    title,
                    description,
                    expires_at_height,
                    changes
                }
            }
        ),
        (arb_hash(), 0u8..4).prop_map(|(proposal, kind)| Payload::Governance {
            action: match kind {
                0 => GovernanceAction::Approve { proposal },
                1 => GovernanceAction::Reject { proposal },
                2 => GovernanceAction::Ready,
                _ => GovernanceAction::Withdraw { proposal },
            }
        }),
        bytes(64).prop_map(|certificate_der| Payload::EnrolIdentity { certificate_der }),
    ]
}

pub fn arb_transaction() -> impl Strategy<Value = Transaction> {
    (
        arb_chain_id(),
        arb_public_key(),
        any::<u64>(),
        0..=limits::TRANSACTION_GAS_MAX,
        arb_payload(),
        arb_signature(),
    )
        .prop_map(|(chain_id, sender, nonce, gas_limit, payload, signature)| Transaction {
            unsigned: UnsignedTransaction { chain_id, sender, nonce, gas_limit, payload },
            signature,
        })
}

pub fn arb_receipt() -> impl Strategy<Value = Receipt> {
    let status = prop_oneof![
        Just(ReceiptStatus::Success),
        text(100).prop_map(|reason| ReceiptStatus::Reverted { reason }),
        Just(ReceiptStatus::OutOfGas),
        text(100).prop_map(|reason| ReceiptStatus::Invalid { reason }),
        text(100).prop_map(|reason| ReceiptStatus::Trapped { reason }),
    ];
    let event = (arb_address(), text(64), bytes(64)).prop_map(|(contract, topic, data)| Event {
        contract,
        topic,
        data,
    });
    (arb_hash(), status, any::<u64>(), vec(event, 0..4), bytes(64)).prop_map(
        |(transaction_hash, status, gas_used, events, return_data)| Receipt {
            transaction_hash,
            status,
            gas_used,
            events,
            return_data,
        },
    )
}

pub fn arb_block() -> impl Strategy<Value = Block> {
    let header = (
        arb_chain_id(),
        any::<u64>(),
        arb_hash(),
        any::<u64>(),
        arb_public_key(),
        any::<u64>(),
        any::<u64>(),
        arb_hash(),
        arb_hash(),
        arb_hash(),
    )
        .prop_map(
            |(
                chain_id,
                height,
                previous_hash,
                timestamp_ms,
                proposer,
                view,
                sequence,
                transactions_root,
                previous_receipts_root,
                previous_state_root,
            )| BlockHeader {
                chain_id,
                height,
                previous_hash,
                timestamp_ms,
                proposer,
                view,
                sequence,
                transactions_root,
                previous_receipts_root,
                previous_state_root,
                validators_hash: previous_state_root,
            },
        );
    let signature = (arb_public_key(), arb_signature())
        .prop_map(|(validator, signature)| CommitSignature { validator, signature });
    (header, vec(arb_transaction(), 0..4), vec(signature, 0..5)).prop_filter_map(
        "distinct signers",
        |(header, transactions, signatures)| {
            CommitCertificate::new(header.sequence, signatures).ok().map(|certificate| Block {
                header,
                transactions,
                certificate,
            })
        },
    )
}
