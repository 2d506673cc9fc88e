//! `mailbridge serve` as an operator runs it: the real binary, on SQLite and on
//! PostgreSQL, with bootstrap files, data kept across a restart, a clean stop on
//! SIGTERM, and logs that never carry a secret.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Starts the binary and waits (bounded) until /healthz answers.
    async fn start(data_dir: &Path, database: Option<&str>, log_name: &str) -> Server {
        let port = mailbridge_testkit::free_port();
        let log = data_dir.parent().unwrap().join(log_name);
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailbridge"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--log-format")
            .arg("json")
            // The most verbose level: even there, nothing secret may appear.
            .env("MAILBRIDGE_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(db) = database {
            cmd.arg("--database").arg(db);
        }
        let child = cmd.spawn().expect("the binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Server { child, base, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", server.base)).await
                && r.status() == 200
            {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the server exited with {status}: {}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not answer /healthz within 30 s: {}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for a successful exit.
    async fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "SIGTERM ends the server cleanly, got {status}: {}",
                    self.log_text()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop within 15 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = self.log_text();
        assert!(
            log.contains("\"stopped\""),
            "the server says it stopped: {log}"
        );
        log
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

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
