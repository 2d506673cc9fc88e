//! Autodiscover end to end: a profile with `auto_discover` and no locations; the
//! SRV records of the users' domains (on the fixture's DNS, on loopback) point at
//! the test Dovecot and SMTP server, or are missing.

use std::time::Duration;

use mailbridge_engine::EngineConfig;
use mailbridge_testkit::DiscoveryFixture;
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, message, unique, wait};

/// The World's engine asking the fixture's DNS and HTTPS server.
async fn world(backend: Backend, fixture: &DiscoveryFixture) -> World {
    World::start(
        backend,
        EngineConfig {
            discovery_nameserver: Some(fixture.dns_addr()),
            discovery_https_port: Some(fixture.https_port()),
            extra_roots: vec![fixture.ca_der()],
            ..fast_engine()
        },
    )
    .await
}

/// A Dovecot user and a mailbridge user whose address is at `domain` (Dovecot
/// signs `name@domain` in as `name`), on `profile`, approved. Returns (user,
/// mailbox id, the Dovecot address that receives the mail).
async fn member_at(w: &World, profile: &str, domain: &str) -> (Value, String, String) {
    let name = unique("ad");
    let login = w.servers.add_user(&name, &format!("pw-{name}")).await;
    let user = w
        .post(
            "/users",
            json!({"full_name": format!("User {name}"), "email": format!("{name}@{domain}"), "tracking_filter": "all"}),
        )
        .await;
    let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"profile_id": profile, "password": login.password}),
    )
    .await;
    let (status, v) = w
        .try_call(
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
            json!({"ids": [mailbox]}),
            &w.approver,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    (user, mailbox, login.address)
}

#[tokio::test]
async fn srv_records_locate_the_mailbox_and_a_domain_without_any_is_disabled() {
    let fixture = DiscoveryFixture::start(&["srv.test", "nowhere.test"]).await;
    let w = world(Backend::Sqlite, &fixture).await;
    let (imap, smtp) = (w.servers.imap_addr(), w.servers.smtp_addr());
    // STARTTLS services (RFC 6186) on the test servers, which speak plaintext:
    // the profile allows it. Implicit TLS is asked first and not published.
    fixture.add_srv("_imap._tcp.srv.test", 10, 1, imap.port(), "localhost.");
    fixture.add_srv(
        "_submission._tcp.srv.test",
        10,
        1,
        smtp.port(),
        "localhost.",
    );
    let owner = w
        .post(
            "/users",
            json!({"full_name": "Pat Profile Owner", "role": "org_admin"}),
        )
        .await;
    let profile = w
        .post(
            "/email-server-profiles",
            json!({"name": "Discovered", "server_type": "imap_smtp", "auto_discover": true,
                   "allow_plaintext": true, "owner_id": owner["id"]}),
        )
        .await;
    let profile = profile["id"].as_str().unwrap().to_owned();

    // Found: Test & Enable looks the servers up, stores them and passes.
    let (_, mailbox, inbox) = member_at(&w, &profile, "srv.test").await;
    let before = chrono::Utc::now();
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(
        m["discovered_incoming_location"],
        format!("imap://localhost:{}", imap.port())
    );
    assert_eq!(
        m["discovered_outgoing_location"],
        format!("smtp://localhost:{}", smtp.port())
    );
    assert_eq!(m["discovered_source"], "srv");
    let at: chrono::DateTime<chrono::Utc> = m["discovered_at"].as_str().unwrap().parse().unwrap();
    assert!(at >= before - chrono::Duration::seconds(1), "{at}");
    assert_eq!(
        (
            m["incoming_enabled"].as_bool(),
            m["outgoing_enabled"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let queries = fixture.dns_queries();
    let imaps = queries.iter().position(|q| q == "SRV _imaps._tcp.srv.test");
    let imap_q = queries.iter().position(|q| q == "SRV _imap._tcp.srv.test");
    assert!(
        imaps.is_some() && imaps < imap_q,
        "implicit TLS is asked first: {queries:?}"
    );

    // Mail is tracked through the discovered location.
    let (raw, id) = message("carl@fabrikam.com", &[&inbox], "Found by SRV", "");
    w.servers.deliver(&inbox, &raw).await.unwrap();
    let email = wait(
        &format!("the email <{id}>"),
        Duration::from_secs(20),
        || async {
            w.emails(&format!("&message_id={id}"))
                .await
                .into_iter()
                .next()
        },
    )
    .await;
    assert_eq!(email["subject"], "Found by SRV");

    // Not found: nothing is published for nowhere.test.
    let (lost_user, lost, _) = member_at(&w, &profile, "nowhere.test").await;
    let job = w.test_and_enable(&[&lost]).await;
    assert_eq!(job["status"], "failed", "{job}");
    let message = job["items"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("mailbox location could not be determined"),
        "{message}"
    );
    let m = w.get(&format!("/mailboxes/{lost}")).await;
    assert_eq!(
        (
            m["incoming_status"].as_str(),
            m["incoming_enabled"].as_bool()
        ),
        (Some("failure"), Some(false))
    );
    assert_eq!(
        (
            m["outgoing_status"].as_str(),
            m["outgoing_enabled"].as_bool()
        ),
        (Some("failure"), Some(false))
    );
    assert!(m["discovered_at"].is_null(), "{m}");
    let alerts = w
        .get(&format!("/alerts?mailbox_id={lost}&severity=error"))
        .await;
    let alert = &alerts["items"][0];
    let text = alert["message"].as_str().unwrap();
    assert!(
        text.contains("mailbox location could not be determined"),
        "{alert}"
    );
    // It names what was tried.
    for tried in [
        "https://autoconfig.nowhere.test:",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        "SRV _imaps._tcp.nowhere.test",
        "SRV _imap._tcp.nowhere.test",
        "SRV _submissions._tcp.nowhere.test",
        "SRV _submission._tcp.nowhere.test",
    ] {
        assert!(text.contains(tried), "{tried} in {text}");
    }
    assert_eq!(
        alert["fix"],
        "Enter the Incoming and Outgoing Server Locations on the email server profile and turn Auto Discover off, or publish autoconfig/SRV records for the domain"
    );
    let recipients = alert["recipient_ids"].as_array().unwrap();
    assert!(recipients.contains(&lost_user["id"]), "{alert}");
    assert!(recipients.contains(&owner["id"]), "{alert}");
}

#[tokio::test]
async fn a_scheduled_run_looks_again_and_disables_the_mailbox_when_records_go() {
    let fixture = DiscoveryFixture::start(&["gone.test"]).await;
    let w = World::start(
        Backend::Sqlite,
        EngineConfig {
            discovery_nameserver: Some(fixture.dns_addr()),
            discovery_https_port: Some(fixture.https_port()),
            extra_roots: vec![fixture.ca_der()],
            // Every run looks again.
            discovery_max_age: Duration::ZERO,
            ..fast_engine()
        },
    )
    .await;
    let (imap, smtp) = (w.servers.imap_addr(), w.servers.smtp_addr());
    // An autoconfig file this time, at the well-known location.
    fixture.serve_host("gone.test");
    fixture.set_http(
        "gone.test",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        mailbridge_testkit::HttpAnswer::xml(format!(
            r#"<clientConfig version="1.1"><emailProvider id="gone.test">
                <incomingServer type="imap"><hostname>localhost</hostname><port>{}</port><socketType>plain</socketType><username>%EMAILADDRESS%</username></incomingServer>
                <outgoingServer type="smtp"><hostname>localhost</hostname><port>{}</port><socketType>plain</socketType></outgoingServer>
            </emailProvider></clientConfig>"#,
            imap.port(),
            smtp.port()
        )),
    );
    let profile = w
        .post(
            "/email-server-profiles",
            json!({"name": "Discovered", "server_type": "imap_smtp", "auto_discover": true, "allow_plaintext": true}),
        )
        .await;
    let profile = profile["id"].as_str().unwrap().to_owned();
    let (_, mailbox, _) = member_at(&w, &profile, "gone.test").await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["discovered_source"], "autoconfig");
    assert_eq!(
        m["discovered_incoming_location"],
        format!("imap://localhost:{}", imap.port())
    );

    // The file goes away: the next scheduled run finds nothing and stops both.
    fixture.set_http(
        "gone.test",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        mailbridge_testkit::HttpAnswer::status(404),
    );
    let m = wait(
        "the mailbox to be disabled",
        Duration::from_secs(20),
        || async {
            let m = w.get(&format!("/mailboxes/{mailbox}")).await;
            (m["incoming_enabled"] == false && m["outgoing_enabled"] == false).then_some(m)
        },
    )
    .await;
    assert_eq!(m["incoming_status"], "failure");
    let alerts = w
        .get(&format!("/alerts?mailbox_id={mailbox}&severity=error"))
        .await;
    let items = alerts["items"].as_array().unwrap();
    let location_alerts: Vec<&Value> = items
        .iter()
        .filter(|a| {
            a["message"]
                .as_str()
                .is_some_and(|t| t.contains("mailbox location could not be determined"))
        })
        .collect();
    assert_eq!(
        location_alerts.len(),
        1,
        "one alert for both directions: {items:?}"
    );
    assert!(
        location_alerts[0]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 404"),
        "{location_alerts:?}"
    );
}

#[tokio::test]
async fn an_exchange_server_mailbox_gets_its_ews_endpoint_from_autodiscover_v2() {
    let fixture = DiscoveryFixture::start(&["contoso.test", "fabrikam.test"]).await;
    let w = world(Backend::Sqlite, &fixture).await;
    fixture.serve_host("autodiscover.contoso.test");
    let profile = w
        .post(
            "/email-server-profiles",
            json!({"name": "Exchange 2019", "server_type": "exchange_server", "auto_discover": true,
                   "authentication_type": "credentials_specified_by_user_or_queue"}),
        )
        .await;
    let profile = profile["id"].as_str().unwrap().to_owned();
    let (_, found, _) = member_at(&w, &profile, "contoso.test").await;
    let address = w.get(&format!("/mailboxes/{found}")).await["email_address"]
        .as_str()
        .unwrap()
        .to_owned();
    fixture.set_http(
        "autodiscover.contoso.test",
        &format!("/autodiscover/autodiscover.json/v1.0/{address}"),
        mailbridge_testkit::HttpAnswer::json(
            200,
            r#"{"Protocol":"EWS","Url":"https://mail.contoso.test/EWS/Exchange.asmx"}"#,
        ),
    );
    let job = w.test_and_enable(&[&found]).await;
    // The endpoint is found and stored.
    let m = w.get(&format!("/mailboxes/{found}")).await;
    assert_eq!(m["discovered_source"], "autodiscover_v2", "{m}");
    assert_eq!(
        m["discovered_incoming_location"],
        "https://mail.contoso.test/EWS/Exchange.asmx"
    );
    assert_eq!(
        m["discovered_outgoing_location"],
        "https://mail.contoso.test/EWS/Exchange.asmx"
    );
    assert!(m["discovered_at"].is_string(), "{m}");
    // No Exchange listens at mail.contoso.test: the test then fails connecting to
    // the endpoint found (tests/sync/ews.rs passes against the EWS test server).
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job.to_string().contains("mail.contoso.test"), "{job}");

    // A domain that publishes nothing: the location alert, naming the lookups.
    let (_, lost, _) = member_at(&w, &profile, "fabrikam.test").await;
    let job = w.test_and_enable(&[&lost]).await;
    assert_eq!(job["status"], "failed", "{job}");
    let alerts = w
        .get(&format!("/alerts?mailbox_id={lost}&severity=error"))
        .await;
    let text = alerts["items"][0]["message"].as_str().unwrap_or_default();
    assert!(
        text.contains("mailbox location could not be determined"),
        "{alerts}"
    );
    assert!(
        text.contains("GET https://autodiscover.fabrikam.test:")
            && text.contains("/autodiscover/autodiscover.json/v1.0/"),
        "the lookups are named: {text}"
    );
    let m = w.get(&format!("/mailboxes/{lost}")).await;
    assert!(m["discovered_incoming_location"].is_null(), "{m}");
}
