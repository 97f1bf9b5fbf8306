//! Approval policies: how many organisations a proposal needs (ADR 0019).

use pactum_types::Policy;
use thiserror::Error;

/// Why a policy cannot be met, or is not a policy at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("policy \"{policy}\" needs at least one approval; use a count of 1 or more")]
    Empty { policy: Policy },
    #[error(
        "policy \"{policy}\" is not a fraction below one: the numerator must be smaller than the \
         denominator, and the denominator above zero"
    )]
    BadFraction { policy: Policy },
    #[error(
        "policy \"{policy}\" needs {required} approvals but the consortium would have {members} \
         members, so it could never be met"
    )]
    Unreachable { policy: Policy, required: usize, members: usize },
}

/// The number of approving organisations `policy` needs out of `members`, or why it can
/// never be met.
///
/// - `AtLeast(k)`: k, which must be between 1 and `members`;
/// - `MoreThan(num/den)`: the smallest count strictly above `members × num / den`;
/// - `All`: every member (at least one).
pub fn required_approvals(policy: Policy, members: usize) -> Result<usize, PolicyError> {
    let required = match policy {
        Policy::AtLeast { count: 0 } => return Err(PolicyError::Empty { policy }),
        Policy::AtLeast { count } => usize::from(count),
        Policy::MoreThan { numerator, denominator } => {
            if denominator == 0 || numerator >= denominator {
                return Err(PolicyError::BadFraction { policy });
            }
            // floor(members × num / den) + 1 is the least count c with c × den > members × num.
            members * usize::from(numerator) / usize::from(denominator) + 1
        }
        Policy::All => members.max(1),
    };
    if required > members {
        return Err(PolicyError::Unreachable { policy, required, members });
    }
    Ok(required)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quorum table, as text: one line per policy, the required count for 0..=7
    /// members (`-` where the policy cannot be met).
    fn table() -> String {
        let policies = [
            Policy::AtLeast { count: 1 },
            Policy::AtLeast { count: 3 },
            Policy::MoreThan { numerator: 1, denominator: 2 },
            Policy::MoreThan { numerator: 2, denominator: 3 },
            Policy::MoreThan { numerator: 0, denominator: 1 },
            Policy::All,
        ];
        let mut text = String::new();
        for policy in policies {
            let counts: Vec<String> = (0..=7)
                .map(|members| match required_approvals(policy, members) {
                    Ok(required) => required.to_string(),
                    Err(_) => "-".into(),
                })
                .collect();
            text.push_str(&format!("{:<16} {}\n", policy.to_string(), counts.join(" ")));
        }
        text
    }

    #[test]
    fn the_quorum_table_matches_its_golden_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/quorum-table.txt");
        let actual = table();
        if std::env::var_os("PACTUM_UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(path).unwrap();
        assert_eq!(actual, expected, "refresh with PACTUM_UPDATE_GOLDEN=1 after checking it");
    }

    #[test]
    fn more_than_a_fraction_is_strictly_more() {
        // 4 members, more than 1/2: 2 is exactly half, so 3.
        assert_eq!(required_approvals(Policy::MoreThan { numerator: 1, denominator: 2 }, 4), Ok(3));
        // 3 members, more than 2/3: 2 is exactly two thirds, so 3.
        assert_eq!(required_approvals(Policy::MoreThan { numerator: 2, denominator: 3 }, 3), Ok(3));
        assert_eq!(required_approvals(Policy::MoreThan { numerator: 2, denominator: 3 }, 5), Ok(4));
    }

    #[test]
    fn policies_that_cannot_be_met_are_errors() {
        assert!(matches!(
            required_approvals(Policy::AtLeast { count: 5 }, 4),
            Err(PolicyError::Unreachable { required: 5, members: 4, .. })
        ));
        assert!(matches!(
            required_approvals(Policy::AtLeast { count: 0 }, 4),
            Err(PolicyError::Empty { .. })
        ));
        assert!(matches!(
            required_approvals(Policy::MoreThan { numerator: 3, denominator: 3 }, 4),
            Err(PolicyError::BadFraction { .. })
        ));
        assert!(matches!(
            required_approvals(Policy::MoreThan { numerator: 1, denominator: 0 }, 4),
            Err(PolicyError::BadFraction { .. })
        ));
        assert!(required_approvals(Policy::All, 0).is_err());
    }
}
