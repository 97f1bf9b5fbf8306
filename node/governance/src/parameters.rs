//! The consensus and block parameters: their checks, and the PBFT configuration of an
//! epoch they make (ADR 0022).

use pactum_consensus::{Config, Sequence};
use pactum_types::{ConsensusParameters, Hash, limits};

/// The PBFT configuration of an epoch: its parameters, its members (validator indices,
/// ascending), its identity and its start (ADR 0021).
pub fn consensus_config(
    parameters: &ConsensusParameters,
    members: Vec<u16>,
    epoch: u64,
    chain: Hash,
    start: u64,
    start_digest: Hash,
) -> Config {
    Config {
        members,
        epoch,
        chain,
        start: Sequence(start),
        start_digest,
        checkpoint_interval: parameters.checkpoint_interval,
        watermark_window: parameters.watermark_window,
        retransmit_interval_ms: parameters.retransmit_interval_ms,
        request_timeout_ms: parameters.request_timeout_ms,
        view_change_timeout_ms: parameters.view_change_timeout_ms,
        view_change_timeout_max_ms: parameters.view_change_timeout_max_ms,
        batch_requests_max: parameters.batch_transactions_max,
        batch_bytes_max: parameters.batch_bytes_max,
        batch_timeout_ms: parameters.batch_timeout_ms,
        batch_weight_max: parameters.block_gas_max,
        weight_ahead_max: parameters.block_gas_max,
        timestamp_skew_max_ms: parameters.timestamp_skew_max_ms,
        delivery_backlog_max: limits::EXECUTION_BACKLOG_BLOCKS_MAX,
        mutation: None,
    }
}

/// Why `parameters` cannot be an epoch's parameters with validators `members`, if they
/// cannot. `current` is the parameters in force, when they replace them: the checkpoint
/// interval may then change only to a multiple or a divisor of the current one, so that
/// the epoch boundary is a checkpoint of both epochs ([`boundary_interval`]).
pub fn check_parameters(
    parameters: &ConsensusParameters,
    current: Option<&ConsensusParameters>,
    members: &[u16],
) -> Result<(), String> {
    for (name, value, min, max) in [
        ("block_gas_max", parameters.block_gas_max, limits::BLOCK_GAS_MIN, limits::BLOCK_GAS_MAX),
        (
            "block_state_bytes_max",
            parameters.block_state_bytes_max,
            limits::BLOCK_STATE_BYTES_MIN,
            limits::BLOCK_STATE_BYTES_MAX,
        ),
        (
            "block_receipt_bytes_max",
            parameters.block_receipt_bytes_max,
            limits::BLOCK_RECEIPT_BYTES_MIN,
            limits::BLOCK_RECEIPT_BYTES_MAX,
        ),
        (
            "timestamp_skew_max_ms",
            parameters.timestamp_skew_max_ms,
            limits::TIMESTAMP_SKEW_MIN_MS,
            limits::TIMESTAMP_SKEW_MAX_MS,
        ),
    ] {
        if !(min..=max).contains(&value) {
            return Err(format!("{name} must be {min} to {max}"));
        }
    }
    if parameters.batch_transactions_max == 0
        || parameters.batch_transactions_max > limits::BLOCK_TRANSACTIONS_MAX
    {
        return Err(format!(
            "batch_transactions_max must be 1 to {}",
            limits::BLOCK_TRANSACTIONS_MAX
        ));
    }
    if parameters.batch_bytes_max < limits::TRANSACTION_BYTES_MAX
        || parameters.batch_bytes_max > limits::BLOCK_BODY_BYTES_MAX
    {
        return Err(format!(
            "batch_bytes_max must be {} to {} (a batch must hold the largest transaction and fit \
             in a block)",
            limits::TRANSACTION_BYTES_MAX,
            limits::BLOCK_BODY_BYTES_MAX
        ));
    }
    for (name, value) in [
        ("batch_timeout_ms", parameters.batch_timeout_ms),
        ("retransmit_interval_ms", parameters.retransmit_interval_ms),
        ("request_timeout_ms", parameters.request_timeout_ms),
        ("view_change_timeout_ms", parameters.view_change_timeout_ms),
    ] {
        if value == 0 {
            return Err(format!("{name} must be positive"));
        }
    }
    if parameters.view_change_timeout_max_ms < parameters.view_change_timeout_ms {
        return Err("view_change_timeout_max_ms must be at least view_change_timeout_ms".into());
    }
    if let Some(current) = current {
        let (old, new) = (current.checkpoint_interval, parameters.checkpoint_interval);
        if new == 0 || !(old.is_multiple_of(new) || new.is_multiple_of(old)) {
            return Err(format!(
                "checkpoint_interval may change only to a multiple or a divisor of the current \
                 {old} (the epoch boundary must be a checkpoint of both epochs), not to {new}"
            ));
        }
    }
    consensus_config(parameters, members.to_vec(), 0, Hash::ZERO, 0, Hash::ZERO)
        .validate()
        .map_err(|error| error.to_string())
}

/// The interval the current epoch's last height is a multiple of: a checkpoint of the
/// current epoch and a valid start for the next, whose interval divides or is a multiple
/// of the current one ([`check_parameters`]).
pub(crate) fn boundary_interval(current: &ConsensusParameters, next: &ConsensusParameters) -> u64 {
    current.checkpoint_interval.max(next.checkpoint_interval)
}
