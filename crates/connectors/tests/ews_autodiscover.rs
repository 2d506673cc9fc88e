//! Exchange's own Autodiscover (POX, then SOAP) against the discovery fixture
//! (DNS and HTTPS on loopback): the EWS URL of a POX answer, the SOAP fallback
//! after a `redirectAddr`, the `_autodiscover._tcp` SRV target, and a redirect
//! out of the domain refused (the service account's password stays home).

use std::time::Duration;

use mailbridge_connectors::autodiscover::{
    AutodiscoverCredentials, DiscoveryConfig, LegacyMethod, discover_exchange_legacy,
};
use mailbridge_domain::autodiscover::Outcome;
use mailbridge_domain::error_model::ErrorClass;
use mailbridge_domain::secret::Secret;
use mailbridge_testkit::{DiscoveryFixture, HttpAnswer};

const POX: &str = "/autodiscover/autodiscover.xml";
const SOAP: &str = "/autodiscover/autodiscover.svc";

fn config(fixture: &DiscoveryFixture) -> DiscoveryConfig {
    DiscoveryConfig {
        nameserver: Some(fixture.dns_addr()),
        https_port: Some(fixture.https_port()),
        timeout: Duration::from_secs(3),
        extra_roots: vec![fixture.ca_der()],
    }
}

fn service_account() -> AutodiscoverCredentials {
    AutodiscoverCredentials::Basic {
        user: "CONTOSO\\svc-mailbridge".to_owned(),
        password: Secret::new("pw-autodiscover"),
    }
}

fn pox_settings(external: &str, internal: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <User><DisplayName>Bob</DisplayName></User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol><Type>EXCH</Type><EwsUrl>{internal}</EwsUrl></Protocol>
      <Protocol><Type>EXPR</Type><EwsUrl>{external}</EwsUrl></Protocol>
    </Account>
  </Response>
</Autodiscover>"#
    )
}

#[tokio::test]
async fn pox_gives_the_external_ews_url() {
    let fixture = DiscoveryFixture::start(&["contoso.test"]).await;
    fixture.serve_host("autodiscover.contoso.test");
    fixture.set_http(
        "autodiscover.contoso.test",
        POX,
        HttpAnswer::xml(pox_settings(
            "https://mail.contoso.test/EWS/Exchange.asmx",
            "https://mbx01.contoso.local/EWS/Exchange.asmx",
        )),
    );
    let (found, attempts) = discover_exchange_legacy(
        "bob@contoso.test",
        &service_account(),
        false,
        &config(&fixture),
    )
    .await
    .expect("found");
    assert_eq!(found.ews_url, "https://mail.contoso.test/EWS/Exchange.asmx");
    assert_eq!(found.method, LegacyMethod::Pox);
    assert_eq!(
        found.urls.internal.as_deref(),
        Some("https://mbx01.contoso.local/EWS/Exchange.asmx")
    );
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(matches!(attempts[0].outcome, Outcome::Found(_)));
    assert_eq!(
        fixture.http_requests(),
        [format!("autodiscover.contoso.test{POX}")]
    );
}

#[tokio::test]
async fn a_redirect_address_is_followed_and_soap_answers_where_pox_does_not() {
    let fixture = DiscoveryFixture::start(&["litware.test", "exchange.litware.test"]).await;
    // No autodiscover.litware.test at all; the domain redirects the address.
    fixture.serve_host("litware.test");
    fixture.set_http(
        "litware.test",
        POX,
        HttpAnswer::xml(
            r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><Action>redirectAddr</Action><RedirectAddr>kim@exchange.litware.test</RedirectAddr></Account></Response></Autodiscover>"#,
        ),
    );
    // The new address's Autodiscover host publishes SOAP only (POX is 404).
    fixture.serve_host("autodiscover.exchange.litware.test");
    fixture.set_http(
        "autodiscover.exchange.litware.test",
        SOAP,
        HttpAnswer::xml(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response><ErrorCode>NoError</ErrorCode><UserResponses><UserResponse><ErrorCode>NoError</ErrorCode><UserSettings><UserSetting><Name>ExternalEwsUrl</Name><Value>https://mail.litware.test/EWS/Exchange.asmx</Value></UserSetting></UserSettings></UserResponse></UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"#,
        ),
    );
    let (found, attempts) = discover_exchange_legacy(
        "kim@litware.test",
        &service_account(),
        false,
        &config(&fixture),
    )
    .await
    .expect("found");
    assert_eq!(found.ews_url, "https://mail.litware.test/EWS/Exchange.asmx");
    assert_eq!(found.method, LegacyMethod::Soap);
    assert_eq!(found.address, "kim@exchange.litware.test");
    let said: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    assert!(
        said[0].contains("autodiscover.litware.test") && said[0].contains("no such name"),
        "{said:?}"
    );
    assert!(
        said[1].contains("redirects to the address kim@exchange.litware.test"),
        "{said:?}"
    );
    assert!(
        said.iter().any(|s| s.contains(&format!(
            "autodiscover.exchange.litware.test:{}{POX}: HTTP 404",
            fixture.https_port()
        ))),
        "{said:?}"
    );
    assert!(
        said.last()
            .is_some_and(|s| s.contains("found https://mail.litware.test/EWS/Exchange.asmx")),
        "{said:?}"
    );
}

#[tokio::test]
async fn the_srv_target_is_asked_when_the_domain_s_hosts_are_not() {
    let fixture = DiscoveryFixture::start(&["fabrikam.test"]).await;
    fixture.add_srv(
        "_autodiscover._tcp.fabrikam.test",
        0,
        0,
        fixture.https_port(),
        "ex2019.fabrikam.test.",
    );
    fixture.serve_host("ex2019.fabrikam.test");
    fixture.set_http(
        "ex2019.fabrikam.test",
        POX,
        HttpAnswer::xml(pox_settings(
            "https://ex2019.fabrikam.test/EWS/Exchange.asmx",
            "https://ex2019.fabrikam.test/EWS/Exchange.asmx",
        )),
    );
    let (found, attempts) = discover_exchange_legacy(
        "dana@fabrikam.test",
        &service_account(),
        false,
        &config(&fixture),
    )
    .await
    .expect("found");
    assert_eq!(
        found.ews_url,
        "https://ex2019.fabrikam.test/EWS/Exchange.asmx"
    );
    assert!(
        attempts
            .iter()
            .any(|a| a.what == "SRV _autodiscover._tcp.fabrikam.test"
                && a.outcome == Outcome::Found("ex2019.fabrikam.test".to_owned())),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_out_of_the_domain() {
    let fixture = DiscoveryFixture::start(&["contoso.test", "evil.test"]).await;
    fixture.serve_host("autodiscover.contoso.test");
    fixture.serve_host("evil.test");
    fixture.set_http(
        "autodiscover.contoso.test",
        POX,
        HttpAnswer::Redirect(fixture.url("evil.test", POX)),
    );
    fixture.set_http(
        "evil.test",
        POX,
        HttpAnswer::xml(pox_settings(
            "https://evil.test/EWS/Exchange.asmx",
            "https://evil.test/EWS/Exchange.asmx",
        )),
    );
    let e = discover_exchange_legacy(
        "bob@contoso.test",
        &service_account(),
        false,
        &config(&fixture),
    )
    .await
    .expect_err("nothing usable");
    assert_eq!(e.class, ErrorClass::Permanent, "{}", e.message);
    assert!(e.message.contains("outside contoso.test"), "{}", e.message);
    assert!(!e.message.contains("pw-autodiscover"));
    assert!(
        !fixture
            .http_requests()
            .iter()
            .any(|r| r.starts_with("evil.test")),
        "{:?}",
        fixture.http_requests()
    );
}
