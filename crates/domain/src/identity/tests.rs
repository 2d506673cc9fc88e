use chrono::Duration as Span;

use super::*;

const CTX: RequestContext<'static> = RequestContext {
    tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    client_id: "11111111-2222-3333-4444-555555555555",
    thumbprint: Some("AB12CD"),
};

fn answer(error: &str, code: u32, text: &str) -> AadErrorResponse {
    AadErrorResponse {
        error: error.into(),
        error_description: format!(
            "AADSTS{code}: {text}\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-01-09 02:02:12Z"
        ),
        error_codes: vec![code],
    }
}

#[test]
fn aad_answers_are_classified_by_their_code() {
    let cases = [
        (
            answer(
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on application.",
            ),
            AuthFailure::CertificateNotRegistered {
                thumbprint: Some("AB12CD".into()),
            },
        ),
        (
            answer("invalid_request", 90002, "Tenant not found."),
            AuthFailure::UnknownTenant {
                tenant: CTX.tenant.into(),
                code: 90002,
            },
        ),
        (
            answer(
                "invalid_request",
                900023,
                "Specified tenant identifier is neither a valid DNS name, nor a valid external domain.",
            ),
            AuthFailure::UnknownTenant {
                tenant: CTX.tenant.into(),
                code: 900023,
            },
        ),
        (
            answer(
                "unauthorized_client",
                700016,
                "Application was not found in the directory.",
            ),
            AuthFailure::ApplicationNotFound {
                client_id: CTX.client_id.into(),
            },
        ),
        (
            answer("unauthorized_client", 7000112, "Application is disabled."),
            AuthFailure::ApplicationDisabled {
                client_id: CTX.client_id.into(),
            },
        ),
        (
            answer(
                "invalid_grant",
                65001,
                "The user or administrator has not consented to use the application.",
            ),
            AuthFailure::NoAdminConsent {
                missing_roles: vec![],
            },
        ),
        (
            answer("invalid_client", 7000215, "Invalid client secret provided."),
            AuthFailure::InvalidClientSecret,
        ),
        (
            answer(
                "invalid_client",
                7000222,
                "The provided client secret keys are expired.",
            ),
            AuthFailure::ClientSecretExpired,
        ),
        (
            answer(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            ),
            AuthFailure::AssertionOutOfTime { code: 700024 },
        ),
        (
            answer(
                "invalid_client",
                700023,
                "Client assertion audience claim does not match Realm issuer.",
            ),
            AuthFailure::AssertionRejected {
                code: 700023,
                description: "Client assertion audience claim does not match Realm issuer.".into(),
            },
        ),
        (
            answer(
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' isn't valid.",
            ),
            AuthFailure::Rejected {
                code: Some(70011),
                description: "The provided value for the input parameter 'scope' isn't valid."
                    .into(),
            },
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            classify_token_error(400, &body, None, &CTX),
            expected,
            "{body:?}"
        );
    }
}

#[test]
fn the_code_is_read_from_the_description_when_error_codes_is_absent() {
    let mut a = answer("invalid_client", 700027, "Key not found.");
    a.error_codes.clear();
    assert_eq!(a.code(), Some(700027));
    assert_eq!(a.explanation(), "Key not found.");
    let bare = AadErrorResponse {
        error: "invalid_client".into(),
        ..Default::default()
    };
    assert_eq!(bare.code(), None);
    assert_eq!(
        classify_token_error(401, &bare, None, &CTX),
        AuthFailure::Rejected {
            code: None,
            description: "HTTP 401: invalid_client".into()
        }
    );
}

#[test]
fn throttling_and_server_errors_are_transient() {
    let wait = Some(std::time::Duration::from_secs(30));
    for status in [429, 500, 503] {
        let f = classify_token_error(status, &AadErrorResponse::default(), wait, &CTX);
        assert!(f.is_transient(), "{status}");
        assert_eq!(
            f.to_sync_error().class,
            ErrorClass::Transient { retry_after: wait }
        );
    }
    let busy = AadErrorResponse {
        error: "temporarily_unavailable".into(),
        ..Default::default()
    };
    assert!(classify_token_error(400, &busy, None, &CTX).is_transient());
}

#[test]
fn every_cause_reads_failed_authentication_with_its_fix_and_is_profile_wide() {
    let causes = [
        AuthFailure::CertificateMissing,
        AuthFailure::CertificateUnreadable {
            detail: "not PEM".into(),
        },
        AuthFailure::CertificateExpired {
            thumbprint: "AB".into(),
            not_after: DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        },
        AuthFailure::CertificateNotRegistered { thumbprint: None },
        AuthFailure::UnknownTenant {
            tenant: "t".into(),
            code: 90002,
        },
        AuthFailure::ApplicationNotFound {
            client_id: "c".into(),
        },
        AuthFailure::NoAdminConsent {
            missing_roles: vec!["Mail.Send".into()],
        },
        AuthFailure::InvalidClientSecret,
        AuthFailure::ClientSecretExpired,
        AuthFailure::AssertionOutOfTime { code: 700024 },
    ];
    for c in causes {
        let e = c.to_sync_error();
        assert!(
            e.message.starts_with("Failed Authentication: "),
            "{}",
            e.message
        );
        assert!(e.message.contains(" — "), "{}", e.message);
        assert_eq!(e.scope, ErrorScope::Profile);
        assert_eq!(e.class, ErrorClass::Permanent, "{c:?}");
        assert!(e.fix.is_some_and(|f| !f.is_empty()));
    }
    assert_eq!(
        AuthFailure::CertificateExpired {
            thumbprint: "AB".into(),
            not_after: DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
        .to_string(),
        "Failed Authentication: the certificate AB expired on 2025-06-01 00:00 UTC — generate or upload a new certificate, register it with the app registration, then select it on the profile"
    );
}

#[test]
fn missing_roles_are_named() {
    let required: Vec<String> = GRAPH_ROLES.iter().map(|r| r.to_string()).collect();
    let granted = vec!["mail.readwrite".to_owned(), "Mail.Send".to_owned()];
    assert_eq!(
        missing_roles(&required, &granted),
        [
            "Calendars.ReadWrite",
            "Contacts.ReadWrite",
            "Tasks.ReadWrite.All"
        ]
    );
    assert!(missing_roles(&required, &required).is_empty());
}

#[test]
fn the_credential_is_the_profiles_then_the_secret_then_the_newest_certificate() {
    use CredentialChoice::*;
    let cases = [
        (
            Some("c1"),
            true,
            Some("c2"),
            Certificate { id: "c1".into() },
        ),
        (None, true, Some("c2"), ClientSecret),
        (None, false, Some("c2"), Certificate { id: "c2".into() }),
        (None, false, None, Missing),
    ];
    for (profile, secret, newest, expected) in cases {
        assert_eq!(choose_credential(profile, secret, newest), expected);
    }
}

#[test]
fn tokens_are_refreshed_ahead_of_expiry() {
    let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let hour = t0 + Span::hours(1);
    let short = t0 + Span::seconds(10);
    let cases = [
        (t0, hour, t0 + Span::minutes(30), false),
        (t0, hour, t0 + Span::minutes(54), false),
        (t0, hour, t0 + Span::minutes(55), true),
        (t0, hour, t0 + Span::minutes(70), true),
        (t0, short, t0 + Span::seconds(7), false),
        (t0, short, t0 + Span::seconds(8), true),
    ];
    for (issued, expires, now, due) in cases {
        assert_eq!(token_refresh_due(issued, expires, now), due, "{now}");
    }
}
