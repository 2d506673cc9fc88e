//! Incoming email: tracking, parties, push, one email per Message-ID, start dates,
//! \Seen, UIDVALIDITY and the decision trail (Undeliverable is a scenario run on
//! every host: scenarios.rs).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Backend, World, email_by_message_id, fast_engine, message, wait};
use crate::hosts::{RawImap, imap_for};

#[tokio::test]
async fn delivered_mail_is_tracked_with_parties_at_once_by_idle() {
    // A long poll: only IMAP IDLE can make the email appear quickly.
    let mut engine = fast_engine();
    engine.timing.poll = Duration::from_secs(600);
    engine.timing.max_idle_poll = Duration::from_secs(600);
    let w = World::start(Backend::Sqlite, engine).await;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Carl", "email": "carl@fabrikam.com"}),
        )
        .await;
    let (user, mailbox, login) = w.member("all").await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    // Once the first run is done and the IDLE connection is open.
    wait(
        "the first incoming run",
        Duration::from_secs(10),
        || async {
            let m = w.get(&format!("/mailboxes/{mailbox}")).await;
            (m["incoming_status"] == "success").then_some(())
        },
    )
    .await;
    wait("the IDLE connection", Duration::from_secs(10), || async {
        w.engine.is_watching(&mailbox).then_some(())
    })
    .await;
    let (raw, id) = message(
        "Carl <carl@fabrikam.com>",
        &[&login.address, "dana@elsewhere.org"],
        "Order 1",
        "",
    );
    let started = Instant::now();
    // Delivered by SMTP: the relay accepts it and hands it to Dovecot.
    let smtp = mailbridge_connectors::SmtpConfig {
        host: "127.0.0.1".into(),
        port: w.servers.smtp_addr().port(),
        tls: mailbridge_domain::location::TlsPolicy::StartTlsIfOffered,
        auth: Some(mailbridge_connectors::Auth::Password {
            username: login.login.clone(),
            password: mailbridge_domain::secret::Secret::new(login.password.clone()),
        }),
        timeout: Duration::from_secs(10),
        extra_roots: Vec::new(),
        hello_name: "test.localhost".into(),
    };
    mailbridge_connectors::smtp_send(
        &smtp,
        "carl@fabrikam.com",
        std::slice::from_ref(&login.address),
        &raw,
    )
    .await
    .unwrap();
    let email = email_by_message_id(&w, &id, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "tracked {elapsed:?} after delivery; IDLE should make it under 2 s"
    );
    assert_eq!(email["direction"], "incoming");
    assert_eq!(email["status"], "received");
    assert_eq!(email["correlation_method"], "none");
    let parties = email["parties"].as_array().unwrap();
    let find = |addr: &str| {
        parties
            .iter()
            .find(|p| p["address"] == addr)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("carl@fabrikam.com")["party_type"], "contact");
    assert_eq!(find("carl@fabrikam.com")["party_id"], contact["id"]);
    assert_eq!(find("carl@fabrikam.com")["role"], "from");
    assert_eq!(find(&login.address)["party_type"], "user");
    assert_eq!(find(&login.address)["party_id"], user["id"]);
    assert_eq!(
        find("dana@elsewhere.org")["party_type"],
        serde_json::Value::Null
    );
    assert_eq!(email["decision"]["rule"], "filter_all");
    assert_eq!(email["decision"]["outcome"], "tracked");
}

#[tokio::test]
async fn one_message_to_two_mailboxes_is_one_email() {
    let w = World::start(Backend::Postgres, fast_engine()).await;
    let (_, m1, alice) = w.member("all").await;
    let (_, m2, bob) = w.member("all").await;
    w.test_and_enable(&[&m1, &m2]).await;
    let (raw, id) = message(
        "carl@fabrikam.com",
        &[&alice.address, &bob.address],
        "For both",
        "",
    );
    w.servers.deliver(&alice.address, &raw).await.unwrap();
    w.servers.deliver(&bob.address, &raw).await.unwrap();
    let email = email_by_message_id(&w, &id, Duration::from_secs(10)).await;
    // Both mailboxes looked at it: one tracked it, the other linked to it.
    for m in [&m1, &m2] {
        wait("both decisions", Duration::from_secs(10), || async {
            let d = w.decisions(m, &format!("&message_id={id}")).await;
            d.first().filter(|d| d["email_id"] == email["id"]).cloned()
        })
        .await;
    }
    let all = w.emails(&format!("&message_id={id}")).await;
    assert_eq!(all.len(), 1, "one Message-ID, one email");
    let to: Vec<_> = email["parties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "to")
        .map(|p| p["address"].clone())
        .collect();
    assert_eq!(to.len(), 2, "both recipients on the one email: {email}");
    let mut outcomes = Vec::new();
    for m in [&m1, &m2] {
        outcomes.push(
            w.decisions(m, &format!("&message_id={id}")).await[0]["outcome"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    outcomes.sort();
    assert_eq!(outcomes, ["linked", "tracked"]);
}

/// Writes a message straight into a Maildir folder: `seen` as if another client
/// had read it, `age` back-dates its arrival (Dovecot's INTERNALDATE for Maildir
/// is the file's modification time).
fn write_maildir(
    w: &World,
    login: &mailbridge_testkit::TestUser,
    raw: &[u8],
    seen: bool,
    age: Option<Duration>,
) {
    let path = w.servers.write_to_inbox(&login.login, raw);
    if let Some(age) = age {
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() - age).unwrap();
    }
    if seen {
        let dir = path.parent().unwrap().parent().unwrap().join("cur");
        let name = format!("{}:2,S", path.file_name().unwrap().to_string_lossy());
        std::fs::rename(&path, dir.join(name)).unwrap();
    }
}

#[tokio::test]
async fn start_dates_apply_and_seen_mail_is_still_processed() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, login) = w.member("all").await;
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"process_email_from": start.to_rfc3339()}),
    )
    .await;
    let (old, old_id) = message("carl@fabrikam.com", &[&login.address], "Old news", "");
    write_maildir(&w, &login, &old, false, Some(Duration::from_secs(3 * 3600)));
    let (seen, seen_id) = message(
        "carl@fabrikam.com",
        &[&login.address],
        "Already read elsewhere",
        "",
    );
    write_maildir(&w, &login, &seen, true, None);
    w.test_and_enable(&[&mailbox]).await;
    let email = email_by_message_id(&w, &seen_id, Duration::from_secs(10)).await;
    assert_eq!(
        email["decision"]["outcome"], "tracked",
        "\\Seen does not stop tracking"
    );
    let d = wait(
        "the decision on the old message",
        Duration::from_secs(10),
        || async {
            w.decisions(&mailbox, &format!("&message_id={old_id}"))
                .await
                .into_iter()
                .next()
        },
    )
    .await;
    assert_eq!(d["outcome"], "skipped");
    assert_eq!(d["rule"], "before_start_date");
    assert!(
        w.emails(&format!("&message_id={old_id}")).await.is_empty(),
        "not processed into an email"
    );
}

#[tokio::test]
async fn the_trail_answers_why_for_each_skip_rule() {
    let w = World::start(Backend::Postgres, fast_engine()).await;
    w.post(
        "/accounts",
        json!({"name": "Fabrikam", "email": "info@fabrikam.com"}),
    )
    .await;
    let cases = [
        (
            "replies",
            "not_a_reply",
            "tracks replies to tracked email only",
        ),
        (
            "known_parties",
            "not_from_known_party",
            "contacts, accounts and leads only",
        ),
        (
            "email_enabled_records",
            "not_from_email_enabled_record",
            "email-enabled records only",
        ),
        ("none", "filter_none", "tracking filter is none"),
    ];
    let mut ids = Vec::new();
    for (filter, _, _) in &cases {
        let (_, mailbox, login) = w.member(filter).await;
        let (raw, id) = message("stranger@nowhere.org", &[&login.address], "Hello", "");
        w.servers.deliver(&login.address, &raw).await.unwrap();
        // From a known account: tracked under known_parties, skipped under none.
        let (raw2, id2) = message(
            "info@fabrikam.com",
            &[&login.address],
            "From a known party",
            "",
        );
        w.servers.deliver(&login.address, &raw2).await.unwrap();
        ids.push((mailbox, id, id2));
    }
    let all: Vec<&str> = ids.iter().map(|(m, _, _)| m.as_str()).collect();
    w.test_and_enable(&all).await;
    for ((filter, rule, words), (mailbox, id, id2)) in cases.iter().zip(&ids) {
        let d = wait("the decision", Duration::from_secs(10), || async {
            w.decisions(mailbox, &format!("&message_id={id}"))
                .await
                .into_iter()
                .next()
        })
        .await;
        assert_eq!(
            (d["outcome"].as_str(), d["rule"].as_str()),
            (Some("skipped"), Some(*rule)),
            "{filter}: {d}"
        );
        assert!(
            d["reason"].as_str().unwrap().contains(words),
            "{filter}: {}",
            d["reason"]
        );
        let d2 = wait("the second decision", Duration::from_secs(10), || async {
            w.decisions(mailbox, &format!("&message_id={id2}"))
                .await
                .into_iter()
                .next()
        })
        .await;
        let expected = match *filter {
            "known_parties" => "from_known_party",
            "email_enabled_records" => "from_email_enabled_record",
            "replies" => "not_a_reply",
            _ => "filter_none",
        };
        assert_eq!(d2["rule"], expected, "{filter}: {d2}");
    }
    // Skipped messages are listed by outcome too.
    let skipped: Vec<String> = w
        .decisions(&ids[3].0, "&outcome=skipped")
        .await
        .iter()
        .map(|d| d["message_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        skipped.contains(&ids[3].1) && skipped.contains(&ids[3].2),
        "{skipped:?}"
    );
}

#[tokio::test]
async fn a_new_uidvalidity_duplicates_nothing() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, login) = w.member("all").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (raw, id) = message(
            "carl@fabrikam.com",
            &[&login.address],
            &format!("Before {i}"),
            "",
        );
        w.servers.deliver(&login.address, &raw).await.unwrap();
        ids.push(id);
    }
    w.test_and_enable(&[&mailbox]).await;
    for id in &ids {
        email_by_message_id(&w, id, Duration::from_secs(10)).await;
    }
    // The server announces a new UIDVALIDITY (as after a restore or a rebuild).
    let conf = w
        .servers
        .dovecot_conf()
        .expect("the harness's Dovecot configuration");
    let validity = (chrono::Utc::now().timestamp() % 1_000_000_000 + 7) as u32;
    let out = std::process::Command::new("doveadm")
        .arg("-c")
        .arg(conf)
        .args([
            "mailbox",
            "update",
            "-u",
            &login.login,
            "--uid-validity",
            &validity.to_string(),
            "INBOX",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "doveadm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (raw, after) = message("carl@fabrikam.com", &[&login.address], "After", "");
    w.servers.deliver(&login.address, &raw).await.unwrap();
    email_by_message_id(&w, &after, Duration::from_secs(15)).await;
    // The old messages were looked at again under the new UIDVALIDITY and linked.
    wait("the re-read", Duration::from_secs(15), || async {
        let linked = w.decisions(&mailbox, "&outcome=linked").await;
        (linked.len() >= 5).then_some(())
    })
    .await;
    for id in ids.iter().chain([&after]) {
        assert_eq!(
            w.emails(&format!("&message_id={id}")).await.len(),
            1,
            "{id} once"
        );
    }
    // Nothing of the mailbox is there twice (it also holds Test & Enable's message).
    let mut seen: Vec<String> = w
        .emails(&format!("&mailbox_id={mailbox}"))
        .await
        .iter()
        .map(|e| e["message_id"].as_str().unwrap().to_owned())
        .collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "no Message-ID twice");
    assert_eq!(total, 7, "5 before, 1 after, and the test message");
}

#[tokio::test]
async fn a_full_mailbox_is_ingested_once() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, login) = w.member("all").await;
    let n = 300;
    for i in 0..n {
        let (raw, _) = message(
            "carl@fabrikam.com",
            &[&login.address],
            &format!("Bulk {i}"),
            "",
        );
        w.servers.write_to_inbox(&login.login, &raw);
    }
    let started = std::time::Instant::now();
    w.test_and_enable(&[&mailbox]).await;
    wait("every message", Duration::from_secs(60), || async {
        let d = w.decisions(&mailbox, "&outcome=tracked").await;
        (d.len() > n).then_some(())
    })
    .await;
    eprintln!("{n} messages in {:?}", started.elapsed());
}

#[tokio::test]
async fn attachments_over_the_limit_are_recorded_not_stored() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    w.patch("/email-settings", json!({"max_attachment_size_kb": 1}))
        .await;
    let (_, mailbox, login) = w.member("all").await;
    let big = "QUJD".repeat(1024); // 3 KiB once decoded
    let id = format!("{}@test.example.org", uuid::Uuid::now_v7().simple());
    let raw = format!(
        "From: carl@fabrikam.com\r\nTo: {}\r\nSubject: Files\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nTwo files.\r\n\
--b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"small.txt\"\r\n\r\nsmall\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{big}\r\n--b1--\r\n",
        login.address
    );
    w.servers
        .deliver(&login.address, raw.as_bytes())
        .await
        .unwrap();
    w.test_and_enable(&[&mailbox]).await;
    let email = email_by_message_id(&w, &id, Duration::from_secs(10)).await;
    let files = email["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{email}");
    assert_eq!(
        (files[0]["file_name"].as_str(), files[0]["stored"].as_bool()),
        (Some("small.txt"), Some(true))
    );
    assert_eq!(
        (files[1]["file_name"].as_str(), files[1]["stored"].as_bool()),
        (Some("big.bin"), Some(false))
    );
    assert_eq!(
        files[1]["size"], 3072,
        "the size of what was not stored is recorded"
    );
    assert_eq!(email["body"].as_str().map(str::trim), Some("Two files."));
}

#[tokio::test]
async fn a_password_rejected_later_disables_incoming_and_alerts() {
    let w = World::start(Backend::Postgres, fast_engine()).await;
    let owner = w
        .post(
            "/users",
            json!({"full_name": "Pat Profile Owner", "role": "org_admin"}),
        )
        .await;
    w.patch(
        &format!("/email-server-profiles/{}", w.profile),
        json!({"owner_id": owner["id"]}),
    )
    .await;
    let (user, mailbox, _) = w.member("all").await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded");
    // The password changes behind mailbridge's back (here: the stored one).
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"password": "changed-elsewhere"}),
    )
    .await;
    let m = wait(
        "the workload to be disabled",
        Duration::from_secs(15),
        || async {
            let m = w.get(&format!("/mailboxes/{mailbox}")).await;
            (m["incoming_enabled"] == false).then_some(m)
        },
    )
    .await;
    assert_eq!(m["incoming_status"], "failure");
    let alert = wait("the alert", Duration::from_secs(10), || async {
        let alerts = w
            .get(&format!(
                "/alerts?mailbox_id={mailbox}&severity=error&scope=mailbox"
            ))
            .await;
        alerts["items"].as_array().unwrap().first().cloned()
    })
    .await;
    assert!(
        alert["message"].as_str().unwrap().contains("stopped"),
        "{alert}"
    );
    assert!(
        alert["fix"].as_str().unwrap().contains("password"),
        "{alert}"
    );
    assert!(
        alert["recipient_ids"]
            .as_array()
            .unwrap()
            .contains(&user["id"])
    );
    // The profile's only mailbox failed: more than half, so its owner hears of it.
    // (It is raised just after the mailbox's alert: wait for it.)
    let pa = wait("the profile alert", Duration::from_secs(10), || async {
        let alerts = w
            .get(&format!("/alerts?scope=profile&profile_id={}", w.profile))
            .await;
        alerts["items"].as_array().unwrap().first().cloned()
    })
    .await;
    assert!(
        pa["recipient_ids"]
            .as_array()
            .unwrap()
            .contains(&owner["id"]),
        "{pa}"
    );
    // It stays disabled: no more runs, no more alerts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = w
        .get(&format!(
            "/alerts?mailbox_id={mailbox}&severity=error&scope=mailbox"
        ))
        .await;
    assert_eq!(again["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_message_tagged_later_is_tracked() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, login) = w.member("none").await;
    let (raw, id) = message(
        "stranger@nowhere.org",
        &[&login.address],
        "Track me later",
        "",
    );
    w.servers.deliver(&login.address, &raw).await.unwrap();
    w.test_and_enable(&[&mailbox]).await;
    let d = wait("the skip", Duration::from_secs(10), || async {
        w.decisions(&mailbox, &format!("&message_id={id}"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(d["rule"], "filter_none");
    // The user tags it in their mail client.
    let cfg = imap_for(&w, &login);
    let mut session = mailbridge_connectors::ImapSession::connect(&cfg)
        .await
        .unwrap();
    session.select("INBOX").await.unwrap();
    let uid = session
        .fetch_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|m| String::from_utf8_lossy(&m.bytes).contains(&id))
        .unwrap()
        .uid;
    session.logout().await;
    let mut raw_imap = RawImap::login(&w, &login).await;
    raw_imap.command("SELECT INBOX").await;
    raw_imap
        .command(&format!("UID STORE {uid} +FLAGS ($MailbridgeTracked)"))
        .await;
    let email = email_by_message_id(&w, &id, Duration::from_secs(10)).await;
    assert_eq!(email["decision"]["rule"], "tracking_keyword");
    assert_eq!(email["decision"]["outcome"], "tracked");
    assert_eq!(w.emails(&format!("&message_id={id}")).await.len(), 1);
}
