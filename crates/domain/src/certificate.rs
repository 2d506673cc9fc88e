//! Certificates of an organization for server-to-server authentication with
//! Exchange Online: what the API shows of one (never its private key), the checks
//! an upload or a generation request must pass, and the pure decision of which
//! expiry alert is due.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::validation::check_required_text;
use crate::{CertificateExpiryAlert, CertificateSource, FieldError, Validation};

/// A certificate as the API shows it: public facts only.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Certificate {
    pub id: String,
    pub org_id: String,
    /// The administrator's name for it, unique in the organization.
    pub name: String,
    /// The certificate's subject, e.g. `CN=mailbridge`.
    pub subject: String,
    /// The SHA-1 thumbprint in upper-case hexadecimal, as Microsoft Entra ID shows it
    /// under Certificates & secrets.
    pub thumbprint: String,
    /// The SHA-256 thumbprint in base64url, sent as `x5t#S256` in client assertions.
    pub x5t_s256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The RSA key's size in bits.
    pub key_bits: i64,
    pub source: CertificateSource,
    pub created_at: DateTime<Utc>,
}

/// A generated certificate's default validity.
pub const DEFAULT_VALIDITY_DAYS: i64 = 365;
/// The longest validity a generated certificate may have (five years).
pub const MAX_VALIDITY_DAYS: i64 = 1825;
/// The smallest RSA key accepted, as Microsoft Entra ID requires.
pub const MIN_RSA_BITS: i64 = 2048;

/// Checks a certificate's name.
pub fn check_certificate_name(errors: &mut Validation, name: &str) {
    check_required_text(errors, "name", name, 100);
}

/// Checks the validity asked for a generated certificate.
pub fn check_validity_days(errors: &mut Validation, days: i64) {
    if !(1..=MAX_VALIDITY_DAYS).contains(&days) {
        errors.push(FieldError::new(
            "validity_days",
            format!(
                "validity_days must be between 1 and {MAX_VALIDITY_DAYS} (five years), got {days}"
            ),
        ));
    }
}

/// The public-key algorithm of an uploaded key or certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa {
        bits: i64,
    },
    /// Another algorithm, by name (e.g. `EC`).
    Other(String),
}

/// What was read from an upload, for [`validate_upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFacts {
    /// The field the certificate came from (`certificate_pem` or `pkcs12_base64`).
    pub certificate_field: &'static str,
    /// The field the key came from (`private_key_pem` or `pkcs12_base64`).
    pub key_field: &'static str,
    pub certificate_key: KeyAlgorithm,
    pub private_key: KeyAlgorithm,
    /// Whether the private key's public half is the certificate's public key.
    pub key_matches_certificate: bool,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

/// Checks that an uploaded certificate and key can sign client assertions:
/// RSA of 2048 bits or more, the key of this very certificate, not expired.
pub fn validate_upload(f: &UploadFacts, now: DateTime<Utc>) -> Validation {
    let mut errors = Vec::new();
    let rsa = |field: &str, alg: &KeyAlgorithm, what: &str, errors: &mut Validation| match alg {
        KeyAlgorithm::Rsa { bits } if *bits >= MIN_RSA_BITS => true,
        KeyAlgorithm::Rsa { bits } => {
            errors.push(FieldError::new(
                field,
                format!(
                    "the {what} is RSA {bits}; Microsoft Entra ID needs RSA {MIN_RSA_BITS} or more: generate a certificate here or upload a larger key"
                ),
            ));
            false
        }
        KeyAlgorithm::Other(name) => {
            errors.push(FieldError::new(
                field,
                format!(
                    "the {what} is {name}; client assertions are signed with RS256, which needs an RSA key of {MIN_RSA_BITS} bits or more"
                ),
            ));
            false
        }
    };
    let cert_ok = rsa(
        f.certificate_field,
        &f.certificate_key,
        "certificate's key",
        &mut errors,
    );
    let key_ok = rsa(f.key_field, &f.private_key, "private key", &mut errors);
    if cert_ok && key_ok && !f.key_matches_certificate {
        errors.push(FieldError::new(
            f.key_field,
            "the private key does not belong to the certificate; upload the key that was created with this certificate",
        ));
    }
    if f.not_after <= now {
        errors.push(FieldError::new(
            f.certificate_field,
            format!(
                "the certificate expired on {}; upload a current certificate or generate one",
                f.not_after.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    } else if f.not_before > f.not_after {
        errors.push(FieldError::new(
            f.certificate_field,
            "the certificate's validity period ends before it starts",
        ));
    }
    errors
}

/// Which expiry alerts were raised for a certificate already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertsRaised {
    pub within_30_days: bool,
    pub within_7_days: bool,
    pub expired: bool,
}

/// The expiry alert due for a certificate now, if any. Each threshold alerts
/// once; a certificate that is already past a later threshold gets only the
/// latest one (an upload with five days left is told about the 7 days, not the 30).
pub fn expiry_alert_due(
    now: DateTime<Utc>,
    not_after: DateTime<Utc>,
    raised: AlertsRaised,
) -> Option<CertificateExpiryAlert> {
    let left = not_after - now;
    let (stage, done) = if left <= Duration::zero() {
        (CertificateExpiryAlert::Expired, raised.expired)
    } else if left <= Duration::days(7) {
        (
            CertificateExpiryAlert::Within7Days,
            raised.within_7_days || raised.expired,
        )
    } else if left <= Duration::days(30) {
        (
            CertificateExpiryAlert::Within30Days,
            raised.within_30_days || raised.within_7_days || raised.expired,
        )
    } else {
        return None;
    };
    (!done).then_some(stage)
}

/// The fix every expiry alert gives.
pub const EXPIRY_FIX: &str = "generate or upload a new certificate, register it with the app registration in Microsoft Entra ID (Certificates & secrets), then select it on the Exchange Online profiles that use this one";

/// The words of an expiry alert for a certificate.
pub fn expiry_alert_message(
    c: &Certificate,
    stage: CertificateExpiryAlert,
    now: DateTime<Utc>,
) -> String {
    let when = c.not_after.format("%Y-%m-%d %H:%M UTC");
    match stage {
        CertificateExpiryAlert::Expired => format!(
            "Certificate `{}` (thumbprint {}) expired on {when}: Exchange Online profiles that use it fail with Failed Authentication",
            c.name, c.thumbprint
        ),
        _ => {
            let days = (c.not_after - now).num_hours().div_euclid(24).max(0);
            format!(
                "Certificate `{}` (thumbprint {}) expires on {when}, in {days} day{}",
                c.name,
                c.thumbprint,
                if days == 1 { "" } else { "s" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateExpiryAlert::*;

    fn at(days: i64, hours: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::days(days)
            + Duration::hours(hours)
    }

    #[test]
    fn expiry_alerts_fire_once_per_threshold() {
        let none = AlertsRaised::default();
        let d30 = AlertsRaised {
            within_30_days: true,
            ..none
        };
        let d7 = AlertsRaised {
            within_7_days: true,
            ..d30
        };
        let all = AlertsRaised {
            expired: true,
            ..d7
        };
        let now = at(0, 0);
        let cases = [
            (at(31, 0), none, None),
            (at(30, 1), none, None),
            (at(30, 0), none, Some(Within30Days)),
            (at(20, 0), none, Some(Within30Days)),
            (at(20, 0), d30, None),
            (at(7, 1), d30, None),
            (at(7, 0), d30, Some(Within7Days)),
            // Uploaded with five days left: the 7-day alert only.
            (at(5, 0), none, Some(Within7Days)),
            (at(5, 0), d7, None),
            (at(0, 1), d7, None),
            (at(0, 0), d7, Some(Expired)),
            (at(-3, 0), none, Some(Expired)),
            (at(-3, 0), all, None),
            // An expired alert raised covers the earlier ones.
            (
                at(5, 0),
                AlertsRaised {
                    expired: true,
                    ..none
                },
                None,
            ),
        ];
        for (not_after, raised, expected) in cases {
            assert_eq!(
                expiry_alert_due(now, not_after, raised),
                expected,
                "{not_after} {raised:?}"
            );
        }
    }

    fn facts() -> UploadFacts {
        UploadFacts {
            certificate_field: "certificate_pem",
            key_field: "private_key_pem",
            certificate_key: KeyAlgorithm::Rsa { bits: 2048 },
            private_key: KeyAlgorithm::Rsa { bits: 2048 },
            key_matches_certificate: true,
            not_before: at(-1, 0),
            not_after: at(365, 0),
        }
    }

    #[test]
    fn uploads_are_checked_field_by_field() {
        let now = at(0, 0);
        let check = |f: UploadFacts| -> Vec<(String, String)> {
            validate_upload(&f, now)
                .into_iter()
                .map(|e| (e.field, e.message))
                .collect()
        };
        assert!(check(facts()).is_empty());
        let cases: [(UploadFacts, &str, &str); 5] = [
            (
                UploadFacts {
                    key_matches_certificate: false,
                    ..facts()
                },
                "private_key_pem",
                "does not belong to the certificate",
            ),
            (
                UploadFacts {
                    not_after: at(-1, 0),
                    not_before: at(-30, 0),
                    ..facts()
                },
                "certificate_pem",
                "the certificate expired on 2025-12-31 00:00 UTC",
            ),
            (
                UploadFacts {
                    certificate_key: KeyAlgorithm::Rsa { bits: 1024 },
                    private_key: KeyAlgorithm::Rsa { bits: 1024 },
                    ..facts()
                },
                "certificate_pem",
                "RSA 1024",
            ),
            (
                UploadFacts {
                    certificate_key: KeyAlgorithm::Other("EC".into()),
                    private_key: KeyAlgorithm::Other("EC".into()),
                    ..facts()
                },
                "private_key_pem",
                "is EC; client assertions are signed with RS256",
            ),
            (
                UploadFacts {
                    certificate_field: "pkcs12_base64",
                    key_field: "pkcs12_base64",
                    key_matches_certificate: false,
                    ..facts()
                },
                "pkcs12_base64",
                "does not belong",
            ),
        ];
        for (f, field, text) in cases {
            let errors = check(f.clone());
            assert!(
                errors.iter().any(|(fl, m)| fl == field && m.contains(text)),
                "{f:?}: {errors:?}"
            );
        }
    }

    #[test]
    fn validity_and_name_are_bounded() {
        for (days, ok) in [
            (0, false),
            (1, true),
            (365, true),
            (1825, true),
            (1826, false),
        ] {
            let mut errors = Vec::new();
            check_validity_days(&mut errors, days);
            assert_eq!(errors.is_empty(), ok, "{days}");
        }
        let mut errors = Vec::new();
        check_certificate_name(&mut errors, "  ");
        assert_eq!(errors[0].field, "name");
    }

    #[test]
    fn alert_messages_name_the_certificate_and_the_day() {
        let c = Certificate {
            id: "c".into(),
            org_id: "o".into(),
            name: "EXO".into(),
            subject: "CN=EXO".into(),
            thumbprint: "AB12".into(),
            x5t_s256: "x".into(),
            not_before: at(-300, 0),
            not_after: at(6, 12),
            key_bits: 2048,
            source: CertificateSource::Generated,
            created_at: at(-300, 0),
        };
        assert_eq!(
            expiry_alert_message(&c, Within7Days, at(0, 0)),
            "Certificate `EXO` (thumbprint AB12) expires on 2026-01-07 12:00 UTC, in 6 days"
        );
        assert!(
            expiry_alert_message(&c, Expired, at(7, 0)).contains("fail with Failed Authentication")
        );
    }
}
