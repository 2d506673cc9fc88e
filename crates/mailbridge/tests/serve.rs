//! `mailbridge serve` as an operator runs it: the real binary, on SQLite and on
//! PostgreSQL, with bootstrap files, data kept across a restart, a clean stop on
//! SIGTERM, and logs that never carry a secret.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::Server;

use serde_json::{Value, json};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const PASSWORD: &str = "Imap-Pa55-7c1d";
const MAILBOX_PASSWORD: &str = "Mbx-Pa55-9e2f";
const CLIENT_SECRET: &str = "Client-5ecret-3a4b";

async fn restart_keeps_data_and_logs_no_secret(database: Option<String>) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let first = Server::start(&data, database.as_deref(), "first.log").await;
    let admin = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(admin.starts_with("mbt_"));
    assert_eq!(mode(&data.join("admin.token")), 0o600);
    assert_eq!(mode(&data.join("secret.key")), 0o600);
    assert_eq!(mode(&data), 0o700, "the data directory is private");

    use reqwest::Method;
    let (s, org) = first
        .call(
            Method::POST,
            "/api/v1/organizations",
            &admin,
            Some(json!({"name": "Contoso"})),
        )
        .await;
    assert_eq!(s, 201, "{org}");
    let org = org["id"].as_str().unwrap().to_owned();
    let (s, profile) = first
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/email-server-profiles"),
            &admin,
            Some(json!({"name": "Dovecot", "server_type": "imap_smtp", "auto_discover": true,
                        "authentication_type": "credentials_specified_in_profile",
                        "incoming_username": "svc", "incoming_password": PASSWORD, "client_secret": CLIENT_SECRET})),
        )
        .await;
    assert_eq!(s, 201, "{profile}");
    let (s, user) = first
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/users"),
            &admin,
            Some(json!({"full_name": "Alice", "email": "alice@example.org", "role": "org_admin"})),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    let (s, token) = first
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/tokens"),
            &admin,
            Some(json!({"user_id": user["id"]})),
        )
        .await;
    assert_eq!(s, 201);
    let user_token = token["token"].as_str().unwrap().to_owned();
    let mailbox = user["mailbox_id"].as_str().unwrap();
    let (s, _) = first
        .call(
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/mailboxes/{mailbox}"),
            &user_token,
            Some(json!({"password": MAILBOX_PASSWORD})),
        )
        .await;
    assert_eq!(s, 200);
    // A failed sign-in with a token-like value must not log it either.
    let (s, _) = first
        .call(
            Method::GET,
            "/api/v1/organizations",
            "mbt_wrong-token-value-0000",
            None,
        )
        .await;
    assert_eq!(s, 401);
    let first_log = first.stop().await;
    assert!(
        first_log.contains("admin.token"),
        "the log names the token file"
    );

    let second = Server::start(&data, database.as_deref(), "second.log").await;
    assert_eq!(
        std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim(),
        admin,
        "the token is issued once"
    );
    let (s, got) = second
        .call(
            Method::GET,
            &format!("/api/v1/organizations/{org}"),
            &admin,
            None,
        )
        .await;
    assert_eq!((s, got["name"].as_str()), (200, Some("Contoso")));
    let (s, p) = second
        .call(
            Method::GET,
            &format!(
                "/api/v1/orgs/{org}/email-server-profiles/{}",
                profile["id"].as_str().unwrap()
            ),
            &user_token,
            None,
        )
        .await;
    assert_eq!(s, 200, "the user's token still works: {p}");
    assert_eq!(p["incoming_password_set"], true);
    assert_eq!(p["client_secret_set"], true);
    let (s, m) = second
        .call(
            Method::GET,
            &format!("/api/v1/orgs/{org}/mailboxes/{mailbox}"),
            &user_token,
            None,
        )
        .await;
    assert_eq!((s, &m["password_set"]), (200, &json!(true)));
    let second_log = second.stop().await;

    for (name, log) in [("first", &first_log), ("second", &second_log)] {
        for secret in [
            PASSWORD,
            MAILBOX_PASSWORD,
            CLIENT_SECRET,
            admin.as_str(),
            user_token.as_str(),
            "mbt_wrong-token-value-0000",
        ] {
            assert!(
                !log.contains(secret),
                "the {name} log holds a secret ({}...)",
                &secret[..6]
            );
        }
        let key = std::fs::read_to_string(data.join("secret.key")).unwrap();
        assert!(
            !log.contains(key.trim()),
            "the {name} log holds the store key"
        );
        for line in log.lines() {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        }
    }
}

#[tokio::test]
async fn restart_keeps_data_and_logs_no_secret_on_sqlite() {
    restart_keeps_data_and_logs_no_secret(None).await;
}

#[tokio::test]
async fn restart_keeps_data_and_logs_no_secret_on_postgres() {
    restart_keeps_data_and_logs_no_secret(Some(mailbridge_testkit::fresh_postgres_url().await))
        .await;
}

/// Runs the binary expecting it to refuse to start; returns its log.
fn refuses_to_start(data: &Path, database: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailbridge"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", mailbridge_testkit::free_port()));
    if let Some(db) = database {
        cmd.arg("--database").arg(db);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "the server must refuse to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_lost_or_wrong_store_key_is_refused_not_replaced() {
    let db = mailbridge_testkit::fresh_postgres_url().await;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    Server::start(&data, Some(&db), "a.log").await.stop().await;
    // Another node's data directory without the key: it must not invent a new one.
    let other = root.path().join("other");
    let log = refuses_to_start(&other, Some(&db));
    assert!(log.contains("no secret key was found"), "{log}");
    assert!(
        !other.join("secret.key").exists(),
        "no new key is left behind"
    );
    // A different key is detected before any secret is touched.
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("secret.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let log = refuses_to_start(&other, Some(&db));
    assert!(
        log.contains("not the key this store was created with"),
        "{log}"
    );
    // The original key works.
    std::fs::copy(data.join("secret.key"), other.join("secret.key")).unwrap();
    Server::start(&other, Some(&db), "b.log").await.stop().await;
}

#[test]
fn configuration_errors_name_the_setting() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("mailbridge.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1\"\ndatabse = \"postgres://x\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailbridge"))
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("databse"), "{err}");
}
