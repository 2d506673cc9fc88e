//! The administrator's CLI as scripts run it: the real `mailbridge` binary against
//! a server in this process (the API over a real engine, Dovecot and the SMTP
//! relay of the test harness), on loopback.

#[allow(dead_code)]
#[path = "sync/common.rs"]
mod common;

use std::time::Duration;

use common::{Backend, World, fast_engine, unique};
use serde_json::{Value, json};

/// What one run of the binary gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    #[track_caller]
    fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

/// Runs `mailbridge ARGS` against the World's server with `token` (none: no
/// token at all), bounded in time.
async fn mb(w: &World, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailbridge"));
    cmd.args(args)
        .env("MAILBRIDGE_SERVER", &w.base)
        .env_remove("MAILBRIDGE_ORG")
        .env_remove("MAILBRIDGE_TOKEN")
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("MAILBRIDGE_TOKEN", t);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the CLI finishes within 2 minutes")
        .expect("the CLI runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A Dovecot user and a mailbridge user on that address whose mailbox has
/// `password` but no profile and no approval yet. Returns the mailbox id.
async fn user(w: &World, password: Option<&str>) -> String {
    let name = unique("c");
    let login = w.servers.add_user(&name, &format!("pw-{name}")).await;
    let user = w
        .post(
            "/users",
            json!({"full_name": format!("Cli {name}"), "email": login.address}),
        )
        .await;
    let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
    let password = password.map_or(login.password.clone(), str::to_owned);
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"password": password}),
    )
    .await;
    mailbox
}

#[tokio::test]
async fn an_administrator_scripts_profiles_mailboxes_test_and_enable_and_alerts() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let admin = Some(w.admin.as_str());
    let dir = tempfile::tempdir().unwrap();

    // A profile from a file; the administrator's token finds the only organization.
    let file = dir.path().join("profile.json");
    let (imap, smtp) = (w.servers.imap_addr(), w.servers.smtp_addr());
    std::fs::write(
        &file,
        json!({"name": "CLI Dovecot", "server_type": "imap_smtp", "allow_plaintext": true,
               "incoming_server_location": format!("imap://{imap}"),
               "outgoing_server_location": format!("smtp://{smtp}")})
        .to_string(),
    )
    .unwrap();
    let file = file.display().to_string();
    let profile = mb(
        &w,
        admin,
        &[
            "profiles",
            "create",
            "--from-file",
            &file,
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(profile["name"], "CLI Dovecot");
    assert_eq!(profile["org_id"], w.org.as_str());
    let profile_id = profile["id"].as_str().unwrap().to_owned();
    let listed = mb(&w, admin, &["profiles", "list"]).await.ok();
    let header = listed.lines().next().unwrap();
    assert!(header.starts_with("ID  "), "{listed}");
    let row = listed
        .lines()
        .find(|l| l.starts_with(&profile_id))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        row.contains("CLI Dovecot") && row.contains("imap_smtp"),
        "{row}"
    );
    // Columns are aligned: every row's second column starts where the header's does.
    let name_at = header.find("NAME").unwrap();
    assert_eq!(&row[name_at..name_at + 11], "CLI Dovecot", "{listed}");

    // Change Multiple Records, then approval by the approver.
    let (a, b) = (user(&w, None).await, user(&w, None).await);
    let edited = mb(
        &w,
        admin,
        &[
            "mailboxes",
            "edit",
            &a,
            &b,
            "--profile",
            &profile_id,
            "--incoming",
            "server_side_sync",
            "--outgoing",
            "server_side_sync",
        ],
    )
    .await
    .ok();
    assert!(edited.contains(&a) && edited.contains(&b), "{edited}");
    for m in [&a, &b] {
        let got = w.get(&format!("/mailboxes/{m}")).await;
        assert_eq!(got["profile_id"], profile_id.as_str());
    }
    let org = w.org.as_str();
    let approved = mb(
        &w,
        Some(&w.approver),
        &["mailboxes", "approve", &a, &b, "--output", "json"],
    )
    .await
    .json();
    let statuses: Vec<&str> = approved
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["approval_status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["approved", "approved"]);
    let found = mb(
        &w,
        admin,
        &[
            "mailboxes",
            "list",
            "--profile",
            &profile_id,
            "--org",
            org,
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(found.as_array().unwrap().len(), 2, "{found}");

    // Test Connection, step by step.
    let tested = mb(
        &w,
        admin,
        &["profiles", "test", &profile_id, "--mailbox", &a],
    )
    .await
    .ok();
    assert!(tested.contains("incoming: passed"), "{tested}");
    assert!(tested.contains("outgoing: passed"), "{tested}");
    assert!(tested.contains("authenticate"), "{tested}");

    // Test & Enable to the end: progress lines (no terminal), the job's JSON.
    let run = mb(&w, admin, &["test-and-enable", &a, &b, "--output", "json"]).await;
    let stderr = run.stderr.clone();
    let job = run.json();
    assert_eq!(job["status"], "succeeded", "{job}");
    let items = job["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["status"] == "succeeded"), "{job}");
    assert!(
        stderr.contains("test-and-enable: 2/2 mailboxes tested"),
        "{stderr}"
    );
    let active = mb(
        &w,
        admin,
        &[
            "mailboxes",
            "list",
            "--status",
            "active",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    let ids: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&a.as_str()) && ids.contains(&b.as_str()),
        "{active}"
    );

    // A wrong password: the job fails that mailbox (exit 1), and an alert says so.
    let wrong = user(&w, Some("not-the-password")).await;
    w.patch(
        &format!("/mailboxes/{wrong}"),
        json!({"profile_id": profile_id}),
    )
    .await;
    mb(&w, Some(&w.approver), &["mailboxes", "approve", &wrong])
        .await
        .ok();
    let failed = mb(&w, admin, &["test-and-enable", &wrong]).await;
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    let row = failed
        .stdout
        .lines()
        .find(|l| l.starts_with(&wrong))
        .unwrap_or_else(|| panic!("{}", failed.stdout));
    assert!(row.contains("failed"), "{row}");
    assert!(
        failed.stderr.contains("1 of 1 mailboxes failed"),
        "{}",
        failed.stderr
    );
    let alerts = mb(
        &w,
        admin,
        &[
            "alerts",
            "list",
            "--severity",
            "error",
            "--mailbox",
            &wrong,
            "--output",
            "json",
        ],
    )
    .await
    .json();
    let alerts = alerts.as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["message"]
            .as_str()
            .unwrap()
            .contains("Test & Enable failed")),
        "{alerts:?}"
    );
    let table = mb(&w, admin, &["alerts", "list", "--mailbox", &wrong])
        .await
        .ok();
    assert!(table.starts_with("CREATED_AT"), "{table}");

    // A bad field: the API's message with its field, exit 3.
    let bad = mb(
        &w,
        admin,
        &[
            "profiles",
            "create",
            "--name",
            "Bad",
            "--server-type",
            "imap_smtp",
            "--incoming",
            "ftp://mail.example.org",
        ],
    )
    .await;
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("incoming_server_location"),
        "{}",
        bad.stderr
    );
    assert!(bad.stdout.is_empty());

    // No token, and a wrong one: how to pass one, exit 4; the token is never printed.
    let none = mb(&w, None, &["mailboxes", "list"]).await;
    assert_eq!(none.code, 4);
    assert!(none.stderr.contains("--token") && none.stderr.contains("MAILBRIDGE_TOKEN"));
    let refused = mb(&w, Some("mbt_wrong-token"), &["alerts", "list"]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refused the token"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("mbt_wrong-token"));
}

/// Runs `mailbridge hash-password` with `stdin` as its standard input.
fn hash_password(stdin: &str) -> Run {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailbridge"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("the password is written");
    let out = child.wait_with_output().expect("the CLI finishes");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn hash_password_prints_a_salted_argon2id_hash_of_the_line_read() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let verifies = |phc: &str, password: &str| {
        let hash = PasswordHash::new(phc).unwrap_or_else(|e| panic!("not PHC ({e}): {phc}"));
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    };
    let first = hash_password("correct horse: battery\n").ok();
    assert!(
        first.ends_with('\n') && first.lines().count() == 1,
        "{first:?}"
    );
    let first = first.trim_end();
    assert!(first.starts_with("$argon2id$v=19$"), "{first}");
    assert!(
        !first.contains("correct horse"),
        "the password is not printed"
    );
    assert!(verifies(first, "correct horse: battery"));
    assert!(
        !verifies(first, "correct horse: battery\n"),
        "the line ending is not part of it"
    );
    assert!(!verifies(first, "correct horse"));

    // The same password, without a line ending: another salt, another hash.
    let second = hash_password("correct horse: battery").ok();
    let second = second.trim_end();
    assert!(verifies(second, "correct horse: battery"));
    let salt = |phc: &str| PasswordHash::new(phc).unwrap().salt.unwrap().to_string();
    assert_ne!(salt(first), salt(second), "each run draws a new salt");
    assert_ne!(first, second);

    // No password, no hash: exit 6, the input is wrong.
    let empty = hash_password("\n");
    assert_eq!(empty.code, 6, "{}", empty.stderr);
    assert!(empty.stdout.is_empty(), "{}", empty.stdout);
    assert!(empty.stderr.contains("no password"), "{}", empty.stderr);
}
