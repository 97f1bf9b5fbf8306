//! Governance changes built from what an operator has at hand (a CA certificate, a join
//! request, NAME=VALUE settings), shared by `pactum gov propose` and the admin console.

use pactum_certs::identity::{CertificateInfo, certificates_from_pem};
use pactum_types::gas::GasSchedule;
use pactum_types::{ConsensusParameters, GovernanceChange, NewValidator};
use serde_json::Value;

use crate::{ClientError, invalid};

/// The gas limit of a governance transaction.
pub const GOVERNANCE_GAS: u64 = 1_000_000;

/// The first certificate of a PEM text, DER.
pub fn first_certificate(pem: &[u8], what: &str) -> Result<Vec<u8>, ClientError> {
    certificates_from_pem(pem)
        .map_err(|error| invalid(format!("{what}: {error}")))?
        .into_iter()
        .next()
        .ok_or_else(|| invalid(format!("{what} holds no PEM certificate")))
}

/// Adds the organisation of the CA certificate in `pem` (its O) as a member.
pub fn add_member(pem: &[u8]) -> Result<GovernanceChange, ClientError> {
    let der = first_certificate(pem, "the CA certificate")?;
    let info = CertificateInfo::from_der(&der)
        .map_err(|error| invalid(format!("the CA certificate: {error}")))?;
    Ok(GovernanceChange::AddMember {
        organisation: info.organisation,
        ca_certificates_der: vec![der],
    })
}

/// Revokes the certificate in `pem` (its organisation and serial).
pub fn revoke_certificate(pem: &[u8]) -> Result<GovernanceChange, ClientError> {
    let der = first_certificate(pem, "the certificate")?;
    let info = CertificateInfo::from_der(&der)
        .map_err(|error| invalid(format!("the certificate: {error}")))?;
    Ok(GovernanceChange::RevokeCertificate { organisation: info.organisation, serial: info.serial })
}

/// Adds the validator of a join request (`pactum certs join-request`'s JSON).
pub fn add_validator(join_request: &str) -> Result<GovernanceChange, ClientError> {
    let validator: NewValidator = serde_json::from_str(join_request)
        .map_err(|error| invalid(format!("not a join request: {error}")))?;
    Ok(GovernanceChange::AddValidator { validator })
}

/// Sets the consensus and block parameters to those in force (`consortium`, as
/// `GET /v1/consortium` serves it) with `settings` changed.
pub fn set_parameters(
    consortium: &Value,
    settings: &[(String, u64)],
) -> Result<GovernanceChange, ClientError> {
    let object = with_fields(&consortium["parameters"], settings, "parameters")?;
    let parameters: ConsensusParameters = serde_json::from_value(object)
        .map_err(|error| invalid(format!("the parameters are not valid: {error}")))?;
    Ok(GovernanceChange::SetParameters { parameters })
}

/// Sets the gas schedule to the one in force with `settings` changed and the next version.
pub fn set_gas_schedule(
    consortium: &Value,
    settings: &[(String, u64)],
) -> Result<GovernanceChange, ClientError> {
    let mut current = consortium["gas_schedule"].clone();
    let version = current["version"].as_u64().unwrap_or(0);
    current["version"] = Value::from(version + 1);
    let object = with_fields(&current, settings, "gas schedule")?;
    let schedule: GasSchedule = serde_json::from_value(object)
        .map_err(|error| invalid(format!("the gas schedule is not valid: {error}")))?;
    Ok(GovernanceChange::SetGasSchedule { schedule })
}

/// `NAME=VALUE` (a whole number; `_` separators allowed).
pub fn parse_setting(text: &str) -> Result<(String, u64), ClientError> {
    let (name, value) =
        text.split_once('=').ok_or_else(|| invalid(format!("{text:?} is not NAME=VALUE")))?;
    let number = value
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| invalid(format!("{name}: {value:?} is not a whole number")))?;
    Ok((name.trim().to_owned(), number))
}

/// `current` (a JSON object of numbers) with each setting's field replaced.
fn with_fields(
    current: &Value,
    settings: &[(String, u64)],
    what: &str,
) -> Result<Value, ClientError> {
    let mut object = current.clone();
    let Some(fields) = object.as_object_mut() else {
        return Err(invalid(format!(
            "the node did not serve the {what} in force; is it a Pactum node of this version?"
        )));
    };
    for (name, value) in settings {
        let known = fields.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        let field = fields.get_mut(name).ok_or_else(|| {
            invalid(format!("the {what} have no {name:?}; the names are {known}"))
        })?;
        *field = Value::from(*value);
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_change_only_the_named_fields_and_bad_names_are_refused() {
        let consortium = serde_json::json!({
            "parameters": serde_json::to_value(ConsensusParameters::default()).unwrap(),
            "gas_schedule": serde_json::to_value(GasSchedule::V1).unwrap(),
        });
        let setting = parse_setting("block_gas_max=5_000_000").unwrap();
        let GovernanceChange::SetParameters { parameters } =
            set_parameters(&consortium, &[setting]).unwrap()
        else {
            panic!("not set_parameters")
        };
        assert_eq!(
            parameters,
            ConsensusParameters { block_gas_max: 5_000_000, ..ConsensusParameters::default() }
        );
        let GovernanceChange::SetGasSchedule { schedule } =
            set_gas_schedule(&consortium, &[("call_base".into(), 3_000)]).unwrap()
        else {
            panic!("not set_gas_schedule")
        };
        assert_eq!(schedule, GasSchedule { version: 2, call_base: 3_000, ..GasSchedule::V1 });
        let error = set_parameters(&consortium, &[("block_gas".into(), 1)]).unwrap_err();
        assert!(error.to_string().contains("no \"block_gas\""), "{error}");
        assert!(parse_setting("x=ten").is_err());
        assert!(parse_setting("x").is_err());
    }
}
