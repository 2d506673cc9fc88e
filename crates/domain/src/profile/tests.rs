use super::*;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn imap() -> ProfileSettings {
    let mut p = ProfileSettings::new("Dovecot".into(), ServerType::ImapSmtp);
    p.incoming_server_location = Some("imaps://mail.example.org".into());
    p.outgoing_server_location = Some("smtps://mail.example.org".into());
    p
}

fn online() -> ProfileSettings {
    let mut p = ProfileSettings::new("Exchange Online".into(), ServerType::ExchangeOnline);
    p.application_id = Some(TENANT.into());
    p
}

fn fields(p: &ProfileSettings, ctx: &ProfileContext<'_>) -> Vec<String> {
    validate_profile(p, ctx)
        .into_iter()
        .map(|e| e.field)
        .collect()
}

fn with_tenant() -> ProfileContext<'static> {
    ProfileContext {
        org_default_tenant_id: Some(TENANT),
        ..Default::default()
    }
}

#[test]
fn defaults_are_valid() {
    assert!(fields(&imap(), &ProfileContext::default()).is_empty());
    assert!(fields(&online(), &with_tenant()).is_empty());
    let p = online();
    assert!(p.auto_discover && p.use_default_tenant_id && p.use_same_settings_for_outgoing);
    assert_eq!(p.max_concurrent_connections, 10);
    assert_eq!(p.authentication_type, AuthenticationType::ServerToServer);
}

#[test]
fn each_rule_names_its_field() {
    type Case = (
        &'static str,
        fn(&mut ProfileSettings),
        &'static [&'static str],
    );
    let imap_cases: &[Case] = &[
        ("blank name", |p| p.name = " ".into(), &["name"]),
        ("long name", |p| p.name = "n".repeat(101), &["name"]),
        (
            "polling -1",
            |p| p.min_polling_interval_minutes = -1,
            &["min_polling_interval_minutes"],
        ),
        (
            "polling 1441",
            |p| p.min_polling_interval_minutes = 1441,
            &["min_polling_interval_minutes"],
        ),
        (
            "polling 1440 ok",
            |p| p.min_polling_interval_minutes = 1440,
            &[],
        ),
        (
            "connections 0",
            |p| p.max_concurrent_connections = 0,
            &["max_concurrent_connections"],
        ),
        (
            "connections 301",
            |p| p.max_concurrent_connections = 301,
            &["max_concurrent_connections"],
        ),
        (
            "connections 300 ok",
            |p| p.max_concurrent_connections = 300,
            &[],
        ),
        (
            "no locations",
            |p| {
                p.incoming_server_location = None;
                p.outgoing_server_location = None;
            },
            &["incoming_server_location", "outgoing_server_location"],
        ),
        (
            "no locations but autodiscover",
            |p| {
                p.incoming_server_location = None;
                p.outgoing_server_location = None;
                p.auto_discover = true;
            },
            &[],
        ),
        (
            "bad scheme",
            |p| p.incoming_server_location = Some("pop3://x".into()),
            &["incoming_server_location"],
        ),
        (
            "tenant on imap",
            |p| p.tenant_id = Some(TENANT.into()),
            &["tenant_id"],
        ),
        (
            "server-to-server on imap",
            |p| p.authentication_type = AuthenticationType::ServerToServer,
            &["authentication_type"],
        ),
        (
            "profile credentials missing",
            |p| {
                p.authentication_type = AuthenticationType::CredentialsSpecifiedInProfile;
            },
            &["incoming_username", "incoming_password"],
        ),
        (
            "separate outgoing credentials missing",
            |p| {
                p.authentication_type = AuthenticationType::CredentialsSpecifiedInProfile;
                p.incoming_username = Some("svc".into());
                p.use_same_settings_for_outgoing = false;
            },
            &[
                "incoming_password",
                "outgoing_username",
                "outgoing_password",
            ],
        ),
    ];
    for (name, change, expected) in imap_cases {
        let mut p = imap();
        change(&mut p);
        assert_eq!(fields(&p, &ProfileContext::default()), *expected, "{name}");
    }
    let online_cases: &[Case] = &[
        (
            "tenant not a guid",
            |p| {
                p.use_default_tenant_id = false;
                p.tenant_id = Some("contoso.onmicrosoft.com".into());
            },
            &["tenant_id"],
        ),
        (
            "own tenant ok",
            |p| {
                p.use_default_tenant_id = false;
                p.tenant_id = Some(TENANT.into());
            },
            &[],
        ),
        (
            "own tenant missing",
            |p| p.use_default_tenant_id = false,
            &["tenant_id"],
        ),
        (
            "tenant with default",
            |p| p.tenant_id = Some(TENANT.into()),
            &["tenant_id"],
        ),
        (
            "no application id",
            |p| p.application_id = None,
            &["application_id"],
        ),
        (
            "application id not a guid",
            |p| p.application_id = Some("app".into()),
            &["application_id"],
        ),
        (
            "imap scheme on exchange",
            |p| {
                p.auto_discover = false;
                p.incoming_server_location = Some("imaps://outlook.office365.com".into());
                p.outgoing_server_location = Some("https://graph.microsoft.com/v1.0".into());
            },
            &["incoming_server_location"],
        ),
    ];
    for (name, change, expected) in online_cases {
        let mut p = online();
        change(&mut p);
        assert_eq!(fields(&p, &with_tenant()), *expected, "{name}");
    }
}

#[test]
fn default_tenant_needs_one_on_the_organization() {
    let errors = validate_profile(&online(), &ProfileContext::default());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "use_default_tenant_id");
    assert!(
        errors[0]
            .message
            .contains("default_tenant_id on the organization")
    );
}

#[test]
fn plaintext_needs_the_flag() {
    let mut p = ProfileSettings::new("Lab".into(), ServerType::ExchangeServer);
    p.incoming_server_location = Some("http://127.0.0.1:8081/ews".into());
    p.outgoing_server_location = Some("http://127.0.0.1:8081/ews".into());
    assert_eq!(
        fields(&p, &ProfileContext::default()),
        ["incoming_server_location", "outgoing_server_location"]
    );
    p.allow_plaintext = true;
    assert!(fields(&p, &ProfileContext::default()).is_empty());
}

#[test]
fn identity_fields_belong_to_exchange_online_and_are_checked() {
    let mut p = online();
    p.certificate_id = Some("0190a0b0-c0d0-7e0f-8001-020304050607".into());
    p.authority_url = Some("https://login.microsoftonline.us".into());
    p.graph_url = Some("https://graph.microsoft.us/".into());
    assert!(fields(&p, &with_tenant()).is_empty());
    assert_eq!(p.graph_url_or_default(), "https://graph.microsoft.us");
    assert_eq!(
        online().authority_url_or_default(),
        "https://login.microsoftonline.com"
    );
    assert_eq!(
        online().graph_url_or_default(),
        "https://graph.microsoft.com"
    );

    type Change = fn(&mut ProfileSettings);
    let cases: Vec<(Change, &str)> = vec![
        (
            |p| p.certificate_id = Some("not-an-id".into()),
            "certificate_id",
        ),
        (
            |p| {
                p.certificate_id = Some("0190a0b0-c0d0-7e0f-8001-020304050607".into());
                p.authentication_type = AuthenticationType::Oauth;
            },
            "certificate_id",
        ),
        (
            |p| p.authority_url = Some("login.microsoftonline.com".into()),
            "authority_url",
        ),
        (
            |p| p.authority_url = Some("http://127.0.0.1:9000".into()),
            "authority_url",
        ),
        (
            |p| p.graph_url = Some("ftp://graph.example".into()),
            "graph_url",
        ),
        (
            |p| p.graph_url = Some("https://graph.example/?x=1".into()),
            "graph_url",
        ),
    ];
    for (change, field) in cases {
        let mut p = online();
        change(&mut p);
        assert_eq!(fields(&p, &with_tenant()), [field], "{p:?}");
    }
    // Lab servers: http with allow_plaintext.
    let mut p = online();
    p.allow_plaintext = true;
    p.authority_url = Some("http://127.0.0.1:9000".into());
    assert!(fields(&p, &with_tenant()).is_empty());

    let mut p = imap();
    p.graph_url = Some("https://graph.microsoft.com".into());
    assert_eq!(fields(&p, &ProfileContext::default()), ["graph_url"]);
}

#[test]
fn dav_location_belongs_to_imap_smtp_profiles() {
    let mut p = imap();
    p.dav_location = Some("https://dav.example.org/".into());
    assert!(fields(&p, &ProfileContext::default()).is_empty());
    p.dav_location = Some("http://dav.example.org/".into());
    assert_eq!(fields(&p, &ProfileContext::default()), ["dav_location"]);
    p.allow_plaintext = true;
    assert!(fields(&p, &ProfileContext::default()).is_empty());
    let mut o = online();
    o.dav_location = Some("https://dav.example.org/".into());
    let errors = validate_profile(&o, &with_tenant());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "dav_location");
    assert!(
        errors[0].message.contains("remove it"),
        "{}",
        errors[0].message
    );
}
