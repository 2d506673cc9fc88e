//! Autodiscover against the discovery fixture (DNS and HTTPS on loopback): SRV
//! records, autoconfig files, Autodiscover v2 with a redirect, and the error that
//! names every lookup when nothing is found.

use std::time::Duration;

use mailbridge_connectors::autodiscover::{DiscoveryConfig, discover_exchange, discover_imap_smtp};
use mailbridge_domain::autodiscover::Outcome;
use mailbridge_domain::autodiscover::v2::V2Protocol;
use mailbridge_domain::error_model::ErrorClass;
use mailbridge_domain::{DiscoverySource, ServerType};
use mailbridge_testkit::{DiscoveryFixture, HttpAnswer};

fn config(fixture: &DiscoveryFixture) -> DiscoveryConfig {
    DiscoveryConfig {
        nameserver: Some(fixture.dns_addr()),
        https_port: Some(fixture.https_port()),
        timeout: Duration::from_secs(3),
        extra_roots: vec![fixture.ca_der()],
    }
}

const AUTOCONFIG: &str = r#"<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="fabrikam.test">
  <incomingServer type="imap"><hostname>imap.%EMAILDOMAIN%</hostname><port>993</port>
    <socketType>SSL</socketType><username>%EMAILLOCALPART%</username></incomingServer>
  <outgoingServer type="smtp"><hostname>smtp.fabrikam.test</hostname><port>587</port>
    <socketType>STARTTLS</socketType><username>%EMAILADDRESS%</username></outgoingServer>
</emailProvider></clientConfig>"#;

#[tokio::test]
async fn srv_records_give_both_locations_implicit_tls_first() {
    let fixture = DiscoveryFixture::start(&["contoso.test"]).await;
    // Two IMAPS targets: the lower priority wins whatever the weights.
    fixture.add_srv(
        "_imaps._tcp.contoso.test",
        20,
        100,
        993,
        "backup.contoso.test.",
    );
    fixture.add_srv("_imaps._tcp.contoso.test", 10, 1, 993, "mail.contoso.test.");
    fixture.add_srv("_imap._tcp.contoso.test", 0, 0, 143, "mail.contoso.test.");
    // Implicit-TLS submission decidedly not offered; STARTTLS submission is.
    fixture.add_srv("_submissions._tcp.contoso.test", 0, 0, 0, ".");
    fixture.add_srv(
        "_submission._tcp.contoso.test",
        0,
        0,
        587,
        "smtp.contoso.test.",
    );

    let found = discover_imap_smtp("bob@contoso.test", false, &config(&fixture)).await;
    let incoming = found.incoming.clone().expect("incoming");
    let outgoing = found.outgoing.clone().expect("outgoing");
    assert_eq!(incoming.location, "imaps://mail.contoso.test:993");
    assert_eq!(outgoing.location, "smtp://smtp.contoso.test:587");
    assert_eq!(
        (incoming.source, outgoing.source),
        (DiscoverySource::Srv, DiscoverySource::Srv)
    );
    let lines: Vec<String> = found.attempts.iter().map(ToString::to_string).collect();
    assert!(
        lines[0].starts_with(&format!(
            "GET https://autoconfig.contoso.test:{}/mail/config-v1.1.xml?emailaddress=bob%40contoso.test: autoconfig.contoso.test: no such name",
            fixture.https_port()
        )),
        "{lines:#?}"
    );
    assert_eq!(
        lines[2..],
        [
            "SRV _imaps._tcp.contoso.test: found imaps://mail.contoso.test:993",
            "SRV _submissions._tcp.contoso.test: the domain says it does not offer the service (target `.`)",
            "SRV _submission._tcp.contoso.test: found smtp://smtp.contoso.test:587",
        ],
        "_imap._tcp is not asked once _imaps._tcp answered"
    );
    assert!(
        !fixture
            .dns_queries()
            .contains(&"SRV _imap._tcp.contoso.test".to_owned())
    );
}

#[tokio::test]
async fn an_autoconfig_file_gives_both_locations_and_the_user_name() {
    let fixture = DiscoveryFixture::start(&["fabrikam.test"]).await;
    fixture.serve_host("autoconfig.fabrikam.test");
    fixture.set_http(
        "autoconfig.fabrikam.test",
        "/mail/config-v1.1.xml",
        HttpAnswer::xml(AUTOCONFIG),
    );
    let found = discover_imap_smtp("ann@fabrikam.test", false, &config(&fixture)).await;
    let (incoming, outgoing) = found.into_locations("ann@fabrikam.test").unwrap();
    assert_eq!(incoming.location, "imaps://imap.fabrikam.test:993");
    assert_eq!(incoming.username.as_deref(), Some("ann"));
    assert_eq!(outgoing.location, "smtp://smtp.fabrikam.test:587");
    assert_eq!(outgoing.username.as_deref(), Some("ann@fabrikam.test"));
    assert_eq!(incoming.source, DiscoverySource::Autoconfig);
    assert_eq!(
        fixture.http_requests(),
        ["autoconfig.fabrikam.test/mail/config-v1.1.xml?emailaddress=ann%40fabrikam.test"],
        "one file, no SRV needed"
    );
    assert!(fixture.dns_queries().iter().all(|q| !q.starts_with("SRV")));
}

#[tokio::test]
async fn the_well_known_file_after_a_404_and_srv_for_what_it_lacks() {
    let fixture = DiscoveryFixture::start(&["tailspin.test"]).await;
    fixture.serve_host("autoconfig.tailspin.test");
    fixture.serve_host("tailspin.test");
    fixture.set_http(
        "autoconfig.tailspin.test",
        "/mail/config-v1.1.xml",
        HttpAnswer::status(404),
    );
    // Only IMAP in the file, and only in plaintext: refused without allow_plaintext.
    fixture.set_http(
        "tailspin.test",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        HttpAnswer::xml(
            r#"<clientConfig><emailProvider id="tailspin.test">
              <incomingServer type="imap"><hostname>mail.tailspin.test</hostname><port>143</port><socketType>plain</socketType></incomingServer>
            </emailProvider></clientConfig>"#,
        ),
    );
    fixture.add_srv("_imap._tcp.tailspin.test", 0, 0, 143, "mail.tailspin.test.");
    fixture.add_srv(
        "_submissions._tcp.tailspin.test",
        0,
        0,
        465,
        "mail.tailspin.test.",
    );

    let strict = discover_imap_smtp("cy@tailspin.test", false, &config(&fixture)).await;
    let lines: Vec<String> = strict.attempts.iter().map(ToString::to_string).collect();
    assert!(lines[0].ends_with("HTTP 404"), "{lines:#?}");
    assert!(
        lines[1].contains("only plaintext IMAP servers") && lines[1].contains("no SMTP server"),
        "{lines:#?}"
    );
    let (incoming, outgoing) = strict.into_locations("cy@tailspin.test").unwrap();
    assert_eq!(
        (incoming.location.as_str(), incoming.source),
        ("imap://mail.tailspin.test:143", DiscoverySource::Srv)
    );
    assert_eq!(outgoing.location, "smtps://mail.tailspin.test:465");

    // A lab profile takes the plaintext server of the file.
    let lab = discover_imap_smtp("cy@tailspin.test", true, &config(&fixture)).await;
    let incoming = lab.incoming.unwrap();
    assert_eq!(
        (incoming.location.as_str(), incoming.source),
        ("imap://mail.tailspin.test:143", DiscoverySource::Autoconfig)
    );
}

#[tokio::test]
async fn nothing_found_names_every_lookup() {
    let fixture = DiscoveryFixture::start(&["nowhere.test"]).await;
    // A file that is not XML at the first place, nothing anywhere else.
    fixture.serve_host("autoconfig.nowhere.test");
    fixture.set_http(
        "autoconfig.nowhere.test",
        "/mail/config-v1.1.xml",
        HttpAnswer::xml("<clientConfig><emailProvider>"),
    );
    let found = discover_imap_smtp("dee@nowhere.test", false, &config(&fixture)).await;
    let err = found.into_locations("dee@nowhere.test").unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent, "everything answered");
    assert!(
        err.message
            .starts_with("mailbox location could not be determined for dee@nowhere.test; tried GET https://autoconfig.nowhere.test:"),
        "{}",
        err.message
    );
    for part in [
        "not XML",
        "/.well-known/autoconfig/mail/config-v1.1.xml: nowhere.test: no such name",
        "SRV _imaps._tcp.nowhere.test: no such name",
        "SRV _imap._tcp.nowhere.test: no such name",
        "SRV _submissions._tcp.nowhere.test: no such name",
        "SRV _submission._tcp.nowhere.test: no such name",
    ] {
        assert!(err.message.contains(part), "{part} in {}", err.message);
    }
    assert!(
        err.fix
            .unwrap()
            .contains("Incoming and Outgoing Server Locations")
    );
}

#[tokio::test]
async fn a_server_error_or_an_untrusted_certificate_is_transient() {
    let fixture = DiscoveryFixture::start(&["flaky.test"]).await;
    fixture.serve_host("autoconfig.flaky.test");
    fixture.set_http(
        "autoconfig.flaky.test",
        "/mail/config-v1.1.xml",
        HttpAnswer::status(503),
    );
    let found = discover_imap_smtp("eve@flaky.test", false, &config(&fixture)).await;
    assert_eq!(
        found.attempts[0].outcome,
        Outcome::Failed("HTTP 503".into())
    );
    let err = found.into_locations("eve@flaky.test").unwrap_err();
    assert!(matches!(err.class, ErrorClass::Transient { .. }), "{err:?}");

    // Without the fixture's CA, TLS verification refuses the server.
    let untrusted = DiscoveryConfig {
        extra_roots: Vec::new(),
        ..config(&fixture)
    };
    let found = discover_imap_smtp("eve@flaky.test", false, &untrusted).await;
    match &found.attempts[0].outcome {
        Outcome::Failed(why) => assert!(why.to_lowercase().contains("certificate"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(
        fixture.http_requests().len() == 1,
        "no request over an untrusted connection"
    );
}

#[tokio::test]
async fn autodiscover_v2_follows_a_redirect_to_the_ews_url() {
    let fixture = DiscoveryFixture::start(&["contoso.test", "mail.contoso.test"]).await;
    let path = "/autodiscover/autodiscover.json/v1.0/bob@contoso.test";
    fixture.serve_host("autodiscover.contoso.test");
    fixture.serve_host("mail.contoso.test");
    fixture.set_http(
        "autodiscover.contoso.test",
        path,
        HttpAnswer::Redirect(format!(
            "{}?Protocol=EWS",
            fixture.url("mail.contoso.test", path)
        )),
    );
    fixture.set_http(
        "mail.contoso.test",
        path,
        HttpAnswer::json(
            200,
            r#"{"Protocol":"EWS","Url":"https://mail.contoso.test/EWS/Exchange.asmx"}"#,
        ),
    );
    let (found, attempts) = discover_exchange(
        ServerType::ExchangeServer,
        "bob@contoso.test",
        V2Protocol::Ews,
        false,
        &config(&fixture),
    )
    .await
    .unwrap();
    assert_eq!(
        found.location,
        "https://mail.contoso.test/EWS/Exchange.asmx"
    );
    assert_eq!(found.source, DiscoverySource::AutodiscoverV2);
    assert_eq!(attempts.len(), 1);
    assert!(
        attempts[0]
            .to_string()
            .contains("(redirected to https://mail.contoso.test:"),
        "{}",
        attempts[0]
    );
    assert_eq!(
        fixture.http_requests(),
        [
            format!("autodiscover.contoso.test{path}?Protocol=EWS"),
            format!("mail.contoso.test{path}?Protocol=EWS"),
        ]
    );
}

#[tokio::test]
async fn autodiscover_v2_falls_back_to_the_domain_and_reports_exchange_errors() {
    let fixture = DiscoveryFixture::start(&["litware.test"]).await;
    let path = "/autodiscover/autodiscover.json/v1.0/kim@litware.test";
    fixture.serve_host("autodiscover.litware.test");
    fixture.serve_host("litware.test");
    fixture.set_http(
        "autodiscover.litware.test",
        path,
        HttpAnswer::json(
            400,
            r#"{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'EWS' is invalid."}"#,
        ),
    );
    fixture.set_http(
        "litware.test",
        path,
        HttpAnswer::json(
            200,
            r#"{"Protocol":"EWS","Url":"https://ews.litware.test/EWS/Exchange.asmx"}"#,
        ),
    );
    let (found, attempts) = discover_exchange(
        ServerType::ExchangeServer,
        "kim@litware.test",
        V2Protocol::Ews,
        false,
        &config(&fixture),
    )
    .await
    .unwrap();
    assert_eq!(found.location, "https://ews.litware.test/EWS/Exchange.asmx");
    assert!(
        attempts[0]
            .to_string()
            .ends_with("HTTP 400: Exchange answered InvalidProtocol: The given protocol value 'EWS' is invalid."),
        "{}",
        attempts[0]
    );

    // Nothing at all, for Exchange Online: Microsoft's endpoint is asked last.
    let err = discover_exchange(
        ServerType::ExchangeOnline,
        "kim@nothing.test",
        V2Protocol::Ews,
        false,
        &config(&fixture),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(
        err.message.contains("outlook.office365.com: no such name"),
        "{}",
        err.message
    );
}
