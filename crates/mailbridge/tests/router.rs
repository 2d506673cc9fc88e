//! The email router as it runs in production: the `mailbridge serve` binary with
//! its SMTP and LMTP listeners turned on by settings, a real Postfix relaying to
//! each on loopback, and tracked emails read back through the API; then a clean
//! stop on SIGTERM.

mod support;

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailbridge_testkit::private_postfix::{NextHop, PrivatePostfix};
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const WAIT: Duration = Duration::from_secs(30);

struct Api<'a> {
    server: &'a Server,
    admin: String,
    org: String,
}

impl Api<'_> {
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let url = format!("/api/v1/orgs/{}{path}", self.org);
        let (status, v) = self.server.call(method, &url, token, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(Method::POST, path, &self.admin, Some(body)).await
    }

    /// A user whose mailbox receives by the push route, approved.
    async fn router_user(&self, name: &str, approver: &str) -> (Value, String) {
        let user = self
            .post(
                "/users",
                json!({"full_name": name, "email": format!("{name}@crm.contoso.test"), "tracking_filter": "all"}),
            )
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        self.call(
            Method::PATCH,
            &format!("/mailboxes/{mailbox}"),
            &self.admin,
            Some(json!({"incoming_method": "router"})),
        )
        .await;
        self.call(
            Method::POST,
            "/mailboxes/approve",
            approver,
            Some(json!({"ids": [mailbox]})),
        )
        .await;
        (user, mailbox)
    }

    /// The email with this Message-ID, once there is one.
    async fn email(&self, message_id: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let page = self
                .call(
                    Method::GET,
                    &format!("/emails?message_id={message_id}"),
                    &self.admin,
                    None,
                )
                .await;
            if let Some(e) = page["items"].as_array().unwrap().first() {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no email <{message_id}> after {WAIT:?}: {}",
                self.server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn decisions(&self, mailbox: &str, message_id: &str) -> Vec<Value> {
        let page = self
            .call(
                Method::GET,
                &format!("/mailboxes/{mailbox}/messages?message_id={message_id}"),
                &self.admin,
                None,
            )
            .await;
        page["items"].as_array().unwrap().clone()
    }
}

async fn submit(postfix: &PrivatePostfix, to: &[&str], raw: &[u8]) {
    let smtp = postfix.smtp_addr();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .timeout(Some(WAIT))
        .build();
    let envelope = Envelope::new(
        Some("carl@fabrikam.com".parse().unwrap()),
        to.iter().map(|a| a.parse().unwrap()).collect(),
    )
    .unwrap();
    if let Err(e) = transport.send_raw(&envelope, raw).await {
        panic!(
            "Postfix refused the submission: {e}; {}",
            postfix.log_tail()
        );
    }
}

fn message(to: &str, subject: &str) -> (Vec<u8>, String) {
    let id = format!("{}@fabrikam.com", uuid::Uuid::now_v7().simple());
    let raw = format!(
        "From: Carl <carl@fabrikam.com>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Date: {}\r\nMessage-ID: <{id}>\r\n\r\nPlease send a quote.\r\n",
        chrono::Utc::now().to_rfc2822()
    );
    (raw.into_bytes(), id)
}

async fn postfix_delivers_tracked_emails_through_serve(database: Option<String>) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let smtp_port = mailbridge_testkit::free_port();
    let lmtp_port = mailbridge_testkit::free_port();
    let smtp_listen = format!("127.0.0.1:{smtp_port}");
    let lmtp_listen = format!("127.0.0.1:{lmtp_port}");
    let server = Server::start_with(
        &data,
        database.as_deref(),
        "serve.log",
        &[
            ("MAILBRIDGE_SMTP_LISTEN", &smtp_listen),
            ("MAILBRIDGE_LMTP_LISTEN", &lmtp_listen),
            ("MAILBRIDGE_INBOUND_HOSTNAME", "mx.mailbridge.test"),
            ("MAILBRIDGE_INBOUND_ALLOWED_CLIENTS", "[\"127.0.0.1/32\"]"),
        ],
    )
    .await;
    let log = server.log_text();
    assert!(
        log.contains("inbound listener accepting mail") && log.contains(&smtp_listen),
        "the listeners are announced: {log}"
    );
    let admin = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let (status, org) = server
        .call(
            Method::POST,
            "/api/v1/organizations",
            &admin,
            Some(json!({"name": "Contoso"})),
        )
        .await;
    assert_eq!(status, 201, "{org}");
    let api = Api {
        server: &server,
        admin,
        org: org["id"].as_str().unwrap().to_owned(),
    };
    let approver = api
        .post(
            "/users",
            json!({"full_name": "Ann Approver", "role": "approver"}),
        )
        .await;
    let approver = api
        .post("/tokens", json!({"user_id": approver["id"]}))
        .await;
    let approver = approver["token"].as_str().unwrap().to_owned();
    let contact = api
        .post(
            "/contacts",
            json!({"name": "Carl", "email": "carl@fabrikam.com"}),
        )
        .await;
    let (rita, rita_mb) = api.router_user("rita", &approver).await;
    let (_, sam_mb) = api.router_user("sam", &approver).await;

    // Over SMTP: Rita's email, from the contact.
    let smtp = PrivatePostfix::start(NextHop::Smtp(([127, 0, 0, 1], smtp_port).into())).await;
    let (raw, id) = message("rita@crm.contoso.test", "Quote");
    submit(&smtp, &["rita@crm.contoso.test"], &raw).await;
    let email = api.email(&id).await;
    assert_eq!(email["mailbox_id"], rita_mb.as_str(), "{email}");
    assert_eq!(email["direction"], "incoming", "{email}");
    let parties = email["parties"].as_array().unwrap();
    let party = |role: &str| parties.iter().find(|p| p["role"] == role).cloned().unwrap();
    assert_eq!(party("from")["party_id"], contact["id"], "{email}");
    assert_eq!(party("to")["party_id"], rita["id"], "{email}");
    let d = api.decisions(&rita_mb, &id).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (&d[0]["outcome"], &d[0]["folder"]),
        (&json!("tracked"), &json!("router"))
    );
    smtp.wait_for_delivery("rita@crm.contoso.test", "sent", WAIT)
        .await;

    // Over LMTP, one message for Rita and Sam: one email, decided in both.
    let lmtp = PrivatePostfix::start(NextHop::Lmtp(([127, 0, 0, 1], lmtp_port).into())).await;
    let (raw, id) = message("rita@crm.contoso.test, sam@crm.contoso.test", "Both");
    submit(
        &lmtp,
        &["rita@crm.contoso.test", "sam@crm.contoso.test"],
        &raw,
    )
    .await;
    let email = api.email(&id).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let both = [&rita_mb, &sam_mb];
        let mut decided = 0;
        for mb in both {
            let d = api.decisions(mb, &id).await;
            decided += d.iter().filter(|d| d["email_id"] == email["id"]).count();
        }
        if decided == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "both decisions on <{id}>");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = api
        .call(
            Method::GET,
            &format!("/emails?message_id={id}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "one Message-ID, one email"
    );

    // The push route counts like synchronized mail.
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tracked: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("mailbridge_items_total")
                && l.contains("workload=\"incoming\"")
                && l.contains("outcome=\"tracked\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("an incoming tracked counter: {metrics}"));
    assert!(tracked >= 2.0, "{tracked}");
    drop((smtp, lmtp));
    server.stop().await;
}

#[tokio::test]
async fn postfix_delivers_tracked_emails_through_serve_on_sqlite() {
    postfix_delivers_tracked_emails_through_serve(None).await;
}

#[tokio::test]
async fn postfix_delivers_tracked_emails_through_serve_on_postgres() {
    let url = mailbridge_testkit::TestServers::from_env()
        .fresh_postgres_url()
        .await;
    postfix_delivers_tracked_emails_through_serve(Some(url)).await;
}
