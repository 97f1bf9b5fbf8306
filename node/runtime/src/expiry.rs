//! Certificate expiry watch: the certificates a validator depends on (its own, every
//! validator's, every member CA in force), each with the seconds until it expires, and a
//! warning once one is within 30, 7 or 1 days of it. An expired certificate stops a
//! permissioned network (peers refuse it); this says so weeks before.
//!
//! Pure: the caller passes the time.

use pactum_certs::identity::CertificateInfo;
use pactum_governance::Consortium;

/// Days before expiry at which a warning starts, most urgent last.
pub const WARNING_DAYS: [i64; 3] = [30, 7, 1];

const DAY_SECONDS: i64 = 86_400;

/// What a watched certificate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKind {
    /// This validator's own TLS and consensus certificate.
    Node,
    Validator,
    MemberCa,
}

impl CertificateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateKind::Node => "node",
            CertificateKind::Validator => "validator",
            CertificateKind::MemberCa => "member_ca",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedCertificate {
    pub kind: CertificateKind,
    /// The validator's name, or the organisation for a CA.
    pub name: String,
    pub organisation: String,
    pub serial: String,
    /// Unix seconds.
    pub not_after: i64,
}

impl WatchedCertificate {
    fn of(kind: CertificateKind, name: &str, der: &[u8]) -> Option<Self> {
        let info = CertificateInfo::from_der(der).ok()?;
        Some(Self {
            kind,
            name: name.to_owned(),
            organisation: info.organisation.clone(),
            serial: info.serial_hex(),
            not_after: info.not_after,
        })
    }

    pub fn seconds_left(&self, now: i64) -> i64 {
        self.not_after.saturating_sub(now)
    }

    /// The most urgent warning threshold (in days) the certificate is within at `now`, 0
    /// once it has expired, `None` while it has more than 30 days.
    pub fn warning_days(&self, now: i64) -> Option<i64> {
        let left = self.seconds_left(now);
        if left <= 0 {
            return Some(0);
        }
        WARNING_DAYS.iter().rev().copied().find(|days| left <= days * DAY_SECONDS)
    }

    /// A sentence for the node's status, if the certificate is within a threshold.
    pub fn warning(&self, now: i64) -> Option<String> {
        let days = self.warning_days(now)?;
        let what = match self.kind {
            CertificateKind::Node => format!("this validator's certificate ({})", self.name),
            CertificateKind::Validator => format!("validator {}'s certificate", self.name),
            CertificateKind::MemberCa => format!("the CA certificate of {}", self.organisation),
        };
        Some(if days == 0 {
            format!("{what} (serial {}) has expired", self.serial)
        } else {
            let hours = self.seconds_left(now) / 3600;
            format!(
                "{what} (serial {}) expires within {days} day{} ({hours} hours left): renew it",
                self.serial,
                if days == 1 { "" } else { "s" }
            )
        })
    }
}

/// The certificates to watch: `own` (this validator's), the validators' and the member
/// CAs of `consortium`, the own certificate first.
pub fn watched(own_name: &str, own: &[u8], consortium: &Consortium) -> Vec<WatchedCertificate> {
    let mut watched: Vec<WatchedCertificate> =
        WatchedCertificate::of(CertificateKind::Node, own_name, own).into_iter().collect();
    for validator in &consortium.validators {
        watched.extend(WatchedCertificate::of(
            CertificateKind::Validator,
            &validator.name,
            &validator.certificate_der,
        ));
    }
    for member in consortium.members.values() {
        for der in &member.ca_certificates_der {
            watched.extend(WatchedCertificate::of(CertificateKind::MemberCa, &member.name, der));
        }
    }
    watched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_after: i64) -> WatchedCertificate {
        WatchedCertificate {
            kind: CertificateKind::Validator,
            name: "validator-2".into(),
            organisation: "Member 2".into(),
            serial: "4d01".into(),
            not_after,
        }
    }

    #[test]
    fn warnings_start_at_30_7_and_1_days_and_say_expired_after() {
        let now = 1_800_000_000;
        let cases = [
            (31 * DAY_SECONDS, None),
            (30 * DAY_SECONDS, Some(30)),
            (8 * DAY_SECONDS, Some(30)),
            (7 * DAY_SECONDS, Some(7)),
            (DAY_SECONDS + 1, Some(7)),
            (DAY_SECONDS, Some(1)),
            (1, Some(1)),
            (0, Some(0)),
            (-5, Some(0)),
        ];
        for (left, expected) in cases {
            assert_eq!(certificate(now + left).warning_days(now), expected, "{left} s left");
        }
        let soon = certificate(now + 3 * DAY_SECONDS).warning(now).unwrap();
        assert!(soon.contains("validator validator-2's certificate (serial 4d01) expires within 7 days (72 hours left)"), "{soon}");
        let gone = certificate(now - 1).warning(now).unwrap();
        assert!(gone.ends_with("has expired"), "{gone}");
        assert_eq!(certificate(now + 40 * DAY_SECONDS).warning(now), None);
    }
}
