//! Smoke tests: each server that ./scripts/test starts works end to end, as the
//! testkit promises. Run with `./scripts/test -p mailbridge-testkit`.

#[path = "support/wire.rs"]
mod wire;

use std::time::Duration;

use base64::Engine as _;
use mailbridge_testkit::{LmtpError, TestServers, fresh_postgres_url};
use sqlx::{Connection as _, PgConnection};
use wire::{Imap, Smtp, http_request};

const WAIT: Duration = Duration::from_secs(10);

fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[id.len() - 12..])
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn basic_auth(login: &str, password: &str) -> (&'static str, String) {
    (
        "Authorization",
        format!("Basic {}", b64(&format!("{login}:{password}"))),
    )
}

fn message(from: &str, to: &str, message_id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\
         Date: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nFirst line\r\n.a line that starts with a dot\r\nLast line\r\n"
    )
    .into_bytes()
}

/// The message with `message_id` in the INBOX of `login`, fetched over IMAP.
async fn fetch_from_inbox(
    servers: &TestServers,
    login: &str,
    password: &str,
    message_id: &str,
) -> Vec<u8> {
    let mut imap = Imap::login(servers.imap_addr(), login, password).await;
    let select = imap.command("SELECT INBOX").await;
    assert!(select.is_ok(), "SELECT INBOX: {}", select.status);
    let uids = imap
        .uid_search(&format!("HEADER Message-ID \"{message_id}\""))
        .await;
    assert_eq!(uids.len(), 1, "one message {message_id} in {login}'s INBOX");
    imap.fetch_body(uids[0]).await
}

#[tokio::test]
async fn imap_login_lists_idle_and_move_and_refuses_a_bad_password() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    assert_eq!(alice.address, "alice@example.org");
    assert_eq!(alice.password, "pw-alice");

    let mut imap = Imap::connect(servers.imap_addr()).await;
    assert!(
        imap.greeting.starts_with("* OK"),
        "greeting {:?}",
        imap.greeting
    );
    let login = imap
        .command(&format!("LOGIN {} {}", alice.login, alice.password))
        .await;
    assert!(login.is_ok(), "LOGIN: {}", login.status);
    let capability = imap.command("CAPABILITY").await;
    assert!(capability.is_ok());
    let text = capability.untagged_text();
    let capabilities: Vec<&str> = text
        .lines()
        .find_map(|line| line.strip_prefix("* CAPABILITY "))
        .expect("a CAPABILITY line")
        .split_whitespace()
        .collect();
    for wanted in ["IDLE", "MOVE", "UIDPLUS", "CONDSTORE", "SPECIAL-USE"] {
        assert!(
            capabilities.contains(&wanted),
            "{wanted} in {capabilities:?}"
        );
    }
    let list = imap.command("LIST \"\" \"*\"").await;
    let folders = list.untagged_text();
    for special in ["\\Sent", "\\Drafts", "\\Trash", "\\Archive"] {
        assert!(folders.contains(special), "{special} in {folders}");
    }

    // The full address logs in as the same user (auth_username_format = %Ln).
    Imap::login(servers.imap_addr(), &alice.address, &alice.password).await;

    let mut refused = Imap::connect(servers.imap_addr()).await;
    let answer = refused.command("LOGIN alice not-the-password").await;
    assert!(
        answer.status.starts_with("NO"),
        "bad password answered {}",
        answer.status
    );
    assert!(
        answer.status.contains("AUTHENTICATIONFAILED"),
        "{}",
        answer.status
    );
}

#[tokio::test]
async fn lmtp_delivery_appears_in_the_inbox() {
    let servers = TestServers::from_env();
    let carol = servers.user("carol");
    let message_id = format!("<{}@example.org>", unique("lmtp-"));
    let raw = message(
        "Dave <dave@example.org>",
        &carol.address,
        &message_id,
        "LMTP smoke",
    );

    servers
        .deliver(&carol.address, &raw)
        .await
        .expect("LMTP delivery");

    let stored = fetch_from_inbox(&servers, &carol.login, &carol.password, &message_id).await;
    let stored_text = String::from_utf8_lossy(&stored);
    assert!(
        stored.ends_with(&raw),
        "the stored message ends with what was sent: {stored_text}"
    );
    // The envelope sender comes from the From: field.
    assert!(
        stored_text.starts_with("Return-Path: <dave@example.org>\r\n"),
        "{stored_text}"
    );
    assert!(
        servers.maildir(&carol.login).join("cur").is_dir()
            || servers.maildir(&carol.login).join("new").is_dir()
    );
}

#[tokio::test]
async fn lmtp_refuses_an_unknown_recipient() {
    let servers = TestServers::from_env();
    let error = servers
        .deliver("nobody-here@example.org", b"Subject: lost\r\n\r\nx\r\n")
        .await
        .expect_err("an unknown user is refused");
    match error {
        LmtpError::Rejected { step, code, .. } => {
            assert_eq!((step, code), ("RCPT TO", 550), "{error}");
        }
        other => panic!("expected a 550 at RCPT TO, got {other}"),
    }
}

#[tokio::test]
async fn smtp_relays_to_the_sink_and_the_inbox() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let bob = servers.user("bob");
    let first_id = format!("<{}@example.org>", unique("smtp-a-"));
    let second_id = format!("<{}@example.org>", unique("smtp-b-"));
    let first = message(&alice.address, &bob.address, &first_id, "SMTP smoke 1");
    let second = message(&alice.address, &bob.address, &second_id, "SMTP smoke 2");

    let mut smtp = Smtp::connect(servers.smtp_addr()).await;
    let (code, extensions) = smtp.command("EHLO client.example.org").await;
    assert_eq!(code, 250, "EHLO: {extensions}");
    assert!(
        extensions.contains("AUTH LOGIN PLAIN") || extensions.contains("AUTH PLAIN LOGIN"),
        "{extensions}"
    );
    let plain = b64(&format!("\0{}\0{}", alice.address, alice.password));
    let (code, text) = smtp.command(&format!("AUTH PLAIN {plain}")).await;
    assert_eq!(code, 235, "AUTH PLAIN: {text}");
    for raw in [&first, &second] {
        assert_eq!(
            smtp.command(&format!("MAIL FROM:<{}>", alice.address))
                .await
                .0,
            250
        );
        assert_eq!(
            smtp.command(&format!("RCPT TO:<{}>", bob.address)).await.0,
            250
        );
        assert_eq!(
            smtp.command("RCPT TO:<partner@elsewhere.test>").await.0,
            250
        );
        let (code, text) = smtp.data(raw).await;
        assert_eq!(code, 250, "end of DATA: {text}");
    }
    assert_eq!(smtp.command("QUIT").await.0, 221);

    let has_id = |id: &str| {
        let id = id.to_owned();
        move |m: &mailbridge_testkit::ReceivedMessage| {
            m.header("message-id").as_deref() == Some(id.as_str())
        }
    };
    let received = servers.wait_smtp_message(WAIT, has_id(&first_id)).await;
    assert_eq!(received.mail_from, alice.address);
    assert_eq!(
        received.rcpt_tos,
        [bob.address.as_str(), "partner@elsewhere.test"]
    );
    assert_eq!(received.auth_user.as_deref(), Some("alice"));
    assert_eq!(received.raw, first, "the sink holds the message as sent");
    assert_eq!(received.lmtp_delivered, [bob.address.as_str()]);
    assert!(received.lmtp_refused.is_empty());

    // Both are in the sink, in the order they were sent.
    servers.wait_smtp_message(WAIT, has_id(&second_id)).await;
    let all = servers.wait_smtp_received(2, WAIT).await;
    let position = |id: &str| all.iter().position(has_id(id)).expect("in the sink");
    assert!(position(&first_id) < position(&second_id));

    let stored = fetch_from_inbox(&servers, &bob.login, &bob.password, &first_id).await;
    assert!(
        stored.ends_with(&first),
        "{}",
        String::from_utf8_lossy(&stored)
    );
}

#[tokio::test]
async fn smtp_requires_authentication_and_the_right_password() {
    let servers = TestServers::from_env();
    let dave = servers.user("dave");

    let mut smtp = Smtp::connect(servers.smtp_addr()).await;
    assert_eq!(smtp.command("EHLO client.example.org").await.0, 250);
    let (code, text) = smtp.command("MAIL FROM:<dave@example.org>").await;
    assert_eq!(code, 530, "MAIL before AUTH: {text}");
    let bad = b64(&format!("\0{}\0wrong", dave.login));
    let (code, text) = smtp.command(&format!("AUTH PLAIN {bad}")).await;
    assert_eq!(code, 535, "bad password: {text}");

    // AUTH LOGIN works too, with the bare user name.
    assert_eq!(smtp.command("AUTH LOGIN").await.0, 334);
    assert_eq!(smtp.command(&b64(&dave.login)).await.0, 334);
    let (code, text) = smtp.command(&b64(&dave.password)).await;
    assert_eq!(code, 235, "AUTH LOGIN: {text}");
    assert_eq!(smtp.command("MAIL FROM:<dave@example.org>").await.0, 250);
    assert_eq!(smtp.command("QUIT").await.0, 221);
}

#[tokio::test]
async fn radicale_answers_propfind_for_the_owner_only() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let dav: std::net::SocketAddr = servers
        .dav_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("DAV URL is http://127.0.0.1:PORT/");
    let propfind = |login: &str, password: &str, path: &str| {
        let headers = vec![
            basic_auth(login, password),
            ("Depth", "0".to_owned()),
            ("Content-Type", "application/xml; charset=utf-8".to_owned()),
        ];
        let path = path.to_owned();
        async move {
            let body = r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>"#;
            http_request(dav, "PROPFIND", &path, &headers, body).await
        }
    };

    let (status, body) = propfind(&alice.login, &alice.password, "/alice/").await;
    assert_eq!(status, 207, "{body}");
    assert!(body.contains("/alice/"), "{body}");
    assert_eq!(propfind(&alice.login, "wrong", "/alice/").await.0, 401);
    assert_eq!(
        propfind(&alice.login, &alice.password, "/bob/").await.0,
        403
    );
}

#[tokio::test]
async fn fresh_postgres_databases_are_separate() {
    let (first, second) = tokio::join!(fresh_postgres_url(), fresh_postgres_url());
    assert_ne!(first, second);
    let mut names = Vec::new();
    for url in [&first, &second] {
        let mut conn = PgConnection::connect(url)
            .await
            .expect("connect to the fresh database");
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .expect("SELECT 1");
        assert_eq!(one, 1);
        let name: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut conn)
            .await
            .expect("current_database()");
        assert!(
            name.starts_with("mb_test_") && url.ends_with(&format!("/{name}")),
            "{name} in {url}"
        );
        names.push(name);
    }
    assert_ne!(names[0], names[1]);

    let mut conn = PgConnection::connect(&first).await.expect("connect");
    sqlx::query("CREATE TABLE only_here (id int)")
        .execute(&mut conn)
        .await
        .expect("create table");
    let mut other = PgConnection::connect(&second).await.expect("connect");
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_here')::text")
        .fetch_one(&mut other)
        .await
        .expect("to_regclass");
    assert_eq!(
        found, None,
        "a table made in one database is not in the other"
    );
}

#[tokio::test]
async fn added_users_work_everywhere_without_a_restart() {
    let servers = TestServers::from_env();
    let name = unique("user-");
    let user = servers.add_user(&name, "pw-new").await;
    assert_eq!(
        user,
        servers.add_user(&name, "pw-new").await,
        "add_user is idempotent"
    );
    assert_eq!(servers.user(&name), user);
    let lines = std::fs::read_to_string(servers.dir().join("dovecot/passwd")).expect("passwd");
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.starts_with(&format!("{name}:")))
            .count(),
        1
    );

    // IMAP.
    Imap::login(servers.imap_addr(), &user.login, &user.password).await;
    // LMTP.
    let message_id = format!("<{}@example.org>", unique("new-"));
    let raw = message(
        "alice@example.org",
        &user.address,
        &message_id,
        "to a new user",
    );
    servers
        .deliver(&user.address, &raw)
        .await
        .expect("LMTP delivery to the new user");
    fetch_from_inbox(&servers, &user.login, &user.password, &message_id).await;
    // SMTP.
    let mut smtp = Smtp::connect(servers.smtp_addr()).await;
    assert_eq!(smtp.command("EHLO client.example.org").await.0, 250);
    let plain = b64(&format!("\0{}\0{}", user.address, user.password));
    assert_eq!(smtp.command(&format!("AUTH PLAIN {plain}")).await.0, 235);
    // Radicale.
    let dav: std::net::SocketAddr = servers
        .dav_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("DAV address");
    let headers = [
        basic_auth(&user.login, &user.password),
        ("Depth", "0".to_owned()),
    ];
    let (status, body) = http_request(dav, "PROPFIND", &format!("/{name}/"), &headers, "").await;
    assert_eq!(status, 207, "{body}");
}

#[tokio::test]
async fn messages_written_into_the_maildir_appear_over_imap() {
    let servers = TestServers::from_env();
    let user = servers.add_user(&unique("bulk-"), "pw-bulk").await;
    let raws: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let id = format!("<{}@example.org>", unique(&format!("bulk{i}-")));
            message(
                "alice@example.org",
                &user.address,
                &id,
                &format!("bulk {i}"),
            )
        })
        .collect();
    for raw in &raws {
        let path = servers.write_to_inbox(&user.login, raw);
        assert!(path.starts_with(servers.maildir(&user.login).join("new")));
    }

    let mut imap = Imap::login(servers.imap_addr(), &user.login, &user.password).await;
    let select = imap.command("SELECT INBOX").await;
    assert!(select.is_ok(), "SELECT INBOX: {}", select.status);
    assert!(
        select.untagged_text().contains("* 3 EXISTS"),
        "{}",
        select.untagged_text()
    );
    let uids = imap.uid_search("ALL").await;
    assert_eq!(uids.len(), 3);
    let mut bodies = Vec::new();
    for uid in uids {
        bodies.push(imap.fetch_body(uid).await);
    }
    bodies.sort();
    let mut expected = raws.clone();
    expected.sort();
    assert_eq!(bodies, expected, "stored exactly as written");
}
