//! Exchange Server end to end, what only EWS has: impersonation refused, a sync
//! state Exchange no longer accepts, ErrorServerBusy's back-off, Exchange's own
//! Autodiscover (POX and SOAP), and sending with the copy saved in Sent Items
//! where a lost answer sends nothing twice. The set-up (the testkit's EWS test
//! server, a service account with ApplicationImpersonation, an
//! `exchange_server` profile) is hosts.rs's [`Ews`], shared with the scenarios
//! run on every host.

use std::time::Duration;

use mailbridge_engine::EngineConfig;
use mailbridge_testkit::ews_server::{EwsTestServer, ServiceAccount};
use mailbridge_testkit::{DiscoveryFixture, HttpAnswer};
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, message, unique, wait};
use crate::hosts::{EWS_ACCOUNT, EWS_PASSWORD, Ews, MailHost};

const T: Duration = Duration::from_secs(20);

async fn enable(w: &World, mailbox: &str) {
    let job = w.test_and_enable(&[mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
}

async fn wait_email(w: &World, message_id: &str) -> Vec<Value> {
    wait("the email to be tracked", T, || async {
        let e = w.emails(&format!("&message_id={message_id}")).await;
        (!e.is_empty()).then_some(e)
    })
    .await
}

/// A service account without ApplicationImpersonation for the mailbox: Test &
/// Enable fails, the mailbox stays disabled, and the alert names the role to
/// grant. Once granted, Test & Enable passes; taken away again, the next run
/// disables the mailbox with the same fix.
#[tokio::test]
async fn impersonation_denied_is_permanent_and_the_alert_names_the_fix() {
    let x = Ews::start_with(
        Backend::Sqlite,
        ServiceAccount::new(EWS_ACCOUNT, EWS_PASSWORD).impersonating(&["someone@contoso.example"]),
    )
    .await;
    let w = &x.w;
    let m = x.member("all").await;
    let job = w.test_and_enable(&[&m.mailbox]).await;
    assert_eq!(job["status"], "failed", "{job}");
    let mb = w.get(&format!("/mailboxes/{}", m.mailbox)).await;
    assert_eq!(mb["incoming_status"], "failure", "{mb}");
    assert_eq!(mb["outgoing_status"], "failure", "{mb}");
    assert_eq!(mb["incoming_enabled"], false, "{mb}");
    let alerts = w
        .get(&format!("/alerts?mailbox_id={}&severity=error", m.mailbox))
        .await;
    let text = alerts["items"][0]["message"].as_str().unwrap_or_default();
    assert!(
        text.contains("does not let the service account act as the mailbox"),
        "{alerts}"
    );
    assert!(
        text.contains("New-ManagementRoleAssignment") && text.contains("ApplicationImpersonation"),
        "the alert names the fix: {alerts}"
    );
    assert!(
        x.ews
            .requests()
            .iter()
            .any(|r| r.code == "ErrorImpersonateUserDenied"),
        "Exchange refused the impersonation"
    );

    // Granted: Test & Enable passes and mail flows.
    x.ews.add_service_account(
        ServiceAccount::new(EWS_ACCOUNT, EWS_PASSWORD).impersonating(&[&m.address]),
    );
    enable(w, &m.mailbox).await;
    let (raw, id) = message("carol@fabrikam.example", &[&m.address], "Granted", "");
    x.deliver(&m, &raw).await;
    wait_email(w, &id).await;

    // Taken away: the scheduled run is refused, permanently.
    x.ews.add_service_account(
        ServiceAccount::new(EWS_ACCOUNT, EWS_PASSWORD).impersonating(&["someone@contoso.example"]),
    );
    let mb = wait("incoming to be disabled", T, || async {
        let v = w.get(&format!("/mailboxes/{}", m.mailbox)).await;
        (v["incoming_enabled"] == false).then_some(v)
    })
    .await;
    assert_eq!(mb["incoming_status"], "failure", "{mb}");
    let alerts = w
        .get(&format!("/alerts?mailbox_id={}&severity=error", m.mailbox))
        .await;
    let named = alerts["items"].as_array().unwrap().iter().any(|a| {
        let all = format!("{} {}", a["message"], a["fix"]);
        all.contains("act as the mailbox") && all.contains("ApplicationImpersonation")
    });
    assert!(named, "an alert with the fix after the run: {alerts}");
}

/// Exchange refuses the Inbox's stored sync state: the folder is read again
/// from the start, known messages keep their UIDs and decisions (nothing is
/// processed twice), and new mail arrives.
#[tokio::test]
async fn an_invalid_sync_state_restarts_the_folder_without_duplicates() {
    let x = Ews::start(Backend::Sqlite).await;
    let w = &x.w;
    let m = x.member("all").await;
    enable(w, &m.mailbox).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (raw, id) = message(
            "carol@fabrikam.example",
            &[&m.address],
            &format!("Order {i}"),
            "",
        );
        x.deliver(&m, &raw).await;
        ids.push(id);
    }
    for id in &ids {
        assert_eq!(wait_email(w, id).await.len(), 1);
    }
    x.ews.invalidate_sync_states(&m.address, "inbox");
    let (raw, after) = message("carol@fabrikam.example", &[&m.address], "After", "");
    x.deliver(&m, &raw).await;
    assert_eq!(wait_email(w, &after).await.len(), 1);
    ids.push(after);
    assert!(
        x.ews
            .requests()
            .iter()
            .any(|r| r.operation == "SyncFolderItems" && r.code == "ErrorInvalidSyncStateData"),
        "the stored state was refused"
    );
    // A few more polls: still one email and one decision per message.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        assert_eq!(
            w.emails(&format!("&message_id={id}")).await.len(),
            1,
            "{id}"
        );
        let d = w.decisions(&m.mailbox, &format!("&message_id={id}")).await;
        assert_eq!(d.len(), 1, "one decision for {id}: {d:?}");
    }
}

/// ErrorServerBusy with a back-off: no request reaches the server until the
/// back-off has run out, the mail still arrives, and the throttled answers are
/// counted in `/metrics`.
#[tokio::test]
async fn server_busy_back_off_is_honoured_and_the_mail_still_arrives() {
    let x = Ews::start(Backend::Sqlite).await;
    let w = &x.w;
    let m = x.member("all").await;
    enable(w, &m.mailbox).await;
    let back_off = Duration::from_millis(1500);
    x.ews.server_busy_next(2, back_off);
    let (raw, id) = message("carol@fabrikam.example", &[&m.address], "Busy", "");
    x.deliver(&m, &raw).await;
    wait_email(w, &id).await;
    let log = x.ews.requests();
    assert_eq!(
        x.ews.requests_during_back_off(),
        0,
        "no request during a back-off: {log:#?}"
    );
    let busy: Vec<_> = log
        .iter()
        .enumerate()
        .filter(|(_, r)| r.code == "ErrorServerBusy")
        .collect();
    assert_eq!(busy.len(), 2, "{log:#?}");
    for (i, r) in busy {
        let next = log.get(i + 1).expect("a request after the busy answer");
        assert!(
            next.at.duration_since(r.at) >= back_off,
            "the next request waited the back-off: {:?}",
            next.at.duration_since(r.at)
        );
    }
    let text = w
        .client
        .get(format!("{}/metrics", w.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let throttled = text
        .lines()
        .find_map(|l| l.strip_prefix("mailbridge_ews_requests_total{outcome=\"throttled\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(throttled, Some(2.0), "{text}");
    assert!(
        text.contains("mailbridge_ews_requests_total{outcome=\"ok\"}"),
        "{text}"
    );
}

/// Exchange's own Autodiscover on loopback: the fixture's DNS and HTTPS stand for
/// `autodiscover.<domain>`, answering what the EWS test server answers to the
/// same request (POX for one domain, SOAP only for the other, where POX is 404).
/// Autodiscover v2 finds nothing first; the EWS URL found is stored with its
/// source, and Test & Enable then passes against the EWS test server.
#[tokio::test]
async fn exchange_autodiscover_pox_and_soap_find_the_ews_endpoint() {
    let fixture = DiscoveryFixture::start(&["contoso.test", "fabrikam.test"]).await;
    let w = World::start(
        Backend::Sqlite,
        EngineConfig {
            discovery_nameserver: Some(fixture.dns_addr()),
            discovery_https_port: Some(fixture.https_port()),
            extra_roots: vec![fixture.ca_der()],
            ..fast_engine()
        },
    )
    .await;
    let ews = EwsTestServer::start().await;
    ews.add_service_account(ServiceAccount::new(EWS_ACCOUNT, EWS_PASSWORD).impersonating_all());
    let profile = w
        .post(
            "/email-server-profiles",
            json!({"name": "Exchange 2019", "server_type": "exchange_server", "auto_discover": true,
                   "allow_plaintext": true, "authentication_type": "credentials_specified_in_profile",
                   "incoming_username": EWS_ACCOUNT, "incoming_password": EWS_PASSWORD}),
        )
        .await;
    let profile = profile["id"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    for (domain, source) in [
        ("contoso.test", "autodiscover_pox"),
        ("fabrikam.test", "autodiscover_soap"),
    ] {
        let host = format!("autodiscover.{domain}");
        let address = format!("{}@{domain}", unique("ad"));
        ews.add_mailbox(&address, "Autodiscovered");
        let mailbox = member(&w, &profile, &address).await;
        fixture.serve_host(&host);
        let (url, path, body) = if source == "autodiscover_pox" {
            let body = mailbridge_domain::autodiscover::legacy::pox_request(&address);
            (
                ews.autodiscover_xml_url(),
                "/autodiscover/autodiscover.xml",
                body,
            )
        } else {
            let url = fixture.url(&host, "/autodiscover/autodiscover.svc");
            let body = mailbridge_domain::autodiscover::legacy::soap_request(&address, &url);
            (
                ews.autodiscover_svc_url(),
                "/autodiscover/autodiscover.svc",
                body,
            )
        };
        let answer = http
            .post(url)
            .basic_auth(EWS_ACCOUNT, Some(EWS_PASSWORD))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        fixture.set_http(&host, path, HttpAnswer::xml(answer.text().await.unwrap()));
        let job = w.test_and_enable(&[&mailbox]).await;
        let m = w.get(&format!("/mailboxes/{mailbox}")).await;
        assert_eq!(m["discovered_source"], source, "{m} {job}");
        assert_eq!(m["discovered_incoming_location"], ews.url(), "{m}");
        assert_eq!(m["discovered_outgoing_location"], ews.url(), "{m}");
        assert_eq!(job["status"], "succeeded", "{job}");
        let asked = fixture.http_requests();
        assert!(
            asked
                .iter()
                .any(|r| r.contains(&host) && r.contains("autodiscover.json")),
            "Autodiscover v2 was asked first: {asked:?}"
        );
        // The mailbox's mail now flows through the endpoint found.
        let (raw, id) = message("carol@fabrikam.example", &[&address], "Discovered", "");
        ews.deliver(&address, "inbox", &raw);
        wait_email(&w, &id).await;
    }
    // The answers the fixture served were the EWS test server's own.
    assert_eq!(ews.request_count("Autodiscover"), 1);
    assert_eq!(ews.request_count("GetUserSettings"), 1);
}

/// A user with a mailbox at `address` on `profile`, approved.
async fn member(w: &World, profile: &str, address: &str) -> String {
    let user = w
        .post(
            "/users",
            json!({"full_name": format!("User {address}"), "email": address, "tracking_filter": "all"}),
        )
        .await;
    let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"profile_id": profile}),
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
    mailbox
}

/// Sent once, from MIME, with one copy in Sent Items; a send whose answer was
/// lost (Exchange sent it, the answer was a 504) is found in Sent Items and not
/// sent again; of two emails a stop left in `sending`, the one whose copy is in
/// Sent Items is marked sent without a send and the other is sent once.
#[tokio::test]
async fn outgoing_is_sent_once_with_its_copy_and_a_lost_answer_is_not_resent() {
    let x = Ews::start(Backend::Sqlite).await;
    let w = &x.w;
    let m = x.member("none").await;
    enable(w, &m.mailbox).await;
    let sends_of = |mid: &str| {
        x.ews
            .sent()
            .iter()
            .filter(|s| String::from_utf8_lossy(&s.mime).contains(mid))
            .count()
    };
    let copies_of = |mid: &str| {
        x.ews
            .items_in(&m.address, "sentitems")
            .iter()
            .filter(|i| {
                i.internet_message_id
                    .as_deref()
                    .is_some_and(|v| v.contains(mid))
            })
            .count()
    };
    let wait_sent = |id: String| async move {
        wait("the email to be sent", Duration::from_secs(30), || async {
            let e = w.get(&format!("/emails/{id}")).await;
            (e["status"] == "sent" || e["status"] == "failed").then_some(e)
        })
        .await
    };

    let created = w
        .post(
            "/emails",
            json!({"from_mailbox_id": m.mailbox, "to": ["dave@fabrikam.example"],
                   "bcc": ["erin@fabrikam.example"], "subject": "Your quote",
                   "body_text": "Please find the quote.", "send": true}),
        )
        .await;
    let mid = created["message_id"].as_str().unwrap().to_owned();
    let e = wait_sent(created["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(e["status"], "sent", "{e}");
    let sent: Vec<_> = x
        .ews
        .sent()
        .into_iter()
        .filter(|s| String::from_utf8_lossy(&s.mime).contains(&mid))
        .collect();
    assert_eq!(sent.len(), 1, "sent once");
    assert!(sent[0].from_mime, "sent as MIME");
    assert_eq!(sent[0].mailbox, m.address);
    assert!(sent[0].saved_copy_id.is_some(), "SendAndSaveCopy");
    let mut rcpts = sent[0].recipients.clone();
    rcpts.sort();
    assert_eq!(rcpts, ["dave@fabrikam.example", "erin@fabrikam.example"]);
    assert_eq!(copies_of(&mid), 1, "one copy in Sent Items");

    // The answer is lost after Exchange sent it: the retry finds the copy.
    x.ews.lose_next_send_answers(1);
    let lost = w
        .post(
            "/emails",
            json!({"from_mailbox_id": m.mailbox, "to": ["dave@fabrikam.example"],
                   "subject": "Answer lost", "send": true}),
        )
        .await;
    let lost_mid = lost["message_id"].as_str().unwrap().to_owned();
    let e = wait_sent(lost["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(e["status"], "sent", "{e}");
    assert_eq!(
        sends_of(&lost_mid),
        1,
        "sent once though its answer was lost"
    );
    assert_eq!(copies_of(&lost_mid), 1);
    assert!(
        x.ews
            .requests()
            .iter()
            .any(|r| r.operation == "CreateItem" && r.status == 504),
        "the answer was lost"
    );

    // Two emails a stop left in `sending`: one had reached Exchange, one had not.
    let reached = format!("{}.reached@example.org", uuid::Uuid::now_v7().simple());
    let never = format!("{}.never@example.org", uuid::Uuid::now_v7().simple());
    x.ews.deliver(
        &m.address,
        "sentitems",
        format!(
            "From: {}\r\nTo: dave@fabrikam.example\r\nSubject: Reached\r\nMessage-ID: <{reached}>\r\n\r\nx\r\n",
            m.address
        )
        .as_bytes(),
    );
    let mut ids = Vec::new();
    for (mid, subject) in [(&reached, "Reached"), (&never, "Never")] {
        let e = w
            .post(
                "/emails",
                json!({"from_mailbox_id": m.mailbox, "to": ["dave@fabrikam.example"],
                       "subject": subject, "status": "sending", "message_id": mid}),
            )
            .await;
        ids.push(e["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let e = wait_sent(id.clone()).await;
        assert_eq!(e["status"], "sent", "{e}");
    }
    assert_eq!(
        sends_of(&reached),
        0,
        "its copy was in Sent Items: not sent again"
    );
    assert_eq!(sends_of(&never), 1, "it never reached Exchange: sent once");
}
