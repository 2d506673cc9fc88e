//! The mail server restarts in the middle of a sync: the sync resumes, and no
//! message is lost or tracked twice. The restart is of a Dovecot of this test's
//! own (the testkit's `PrivateDovecot`), so that the tests running alongside keep
//! their shared Dovecot.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mailbridge_testkit::PrivateDovecot;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, message, unique, wait};

const MESSAGES: usize = 1500;

/// The Message-IDs of the mailbox's emails, one entry per email.
async fn tracked_ids(w: &World, mailbox: &str) -> Vec<String> {
    w.emails(&format!("&mailbox_id={mailbox}"))
        .await
        .iter()
        .map(|e| e["message_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn dovecot_restarted_mid_sync_resumes_without_loss_or_duplicates() {
    // The documented retry policy, raised for this test: fast_engine() allows 2
    // retries 1 s apart, and a Dovecot that is down for 2 s (plus about 1 s to stop)
    // uses them up, so the mailbox's incoming email would be disabled as permanently
    // failing (checked: "transient failures exhausted the retries; now permanent").
    // In production the retry delay is 5 minutes, 10 times.
    let mut engine = fast_engine();
    engine.timing.max_retries = 20;
    let w = World::start(Backend::Sqlite, engine).await;
    let mut dovecot = PrivateDovecot::start().await;
    let name = unique("r");
    let login = dovecot.add_user(&name, &format!("pw-{name}")).await;

    // A profile of its own for the private Dovecot; outgoing stays the shared SMTP
    // server but is not used (the mailbox's outgoing method is none).
    let profile = w
        .post(
            "/email-server-profiles",
            json!({"name": "Private Dovecot", "server_type": "imap_smtp", "allow_plaintext": true,
                   "incoming_server_location": format!("imap://{}", dovecot.imap_addr()),
                   "outgoing_server_location": format!("smtp://{}", w.servers.smtp_addr()),
                   "move_failed_to_undeliverable": true}),
        )
        .await;
    let user = w
        .post(
            "/users",
            json!({"full_name": format!("User {name}"), "email": login.address, "tracking_filter": "all"}),
        )
        .await;
    let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"profile_id": profile["id"], "password": login.password, "outgoing_method": "none"}),
    )
    .await;
    let (status, v) = w
        .try_call(
            Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
            json!({"ids": [mailbox]}),
            &w.approver,
        )
        .await;
    assert_eq!(status, 200, "{v}");

    let t0 = Instant::now();
    let mut expected = BTreeSet::new();
    for i in 0..MESSAGES {
        let (raw, id) = message(
            &format!("sender{}@fabrikam.com", i % 17),
            &[&login.address],
            &format!("Message {i}"),
            "",
        );
        dovecot.write_to_inbox(&login.login, &raw);
        expected.insert(id);
    }
    eprintln!("{MESSAGES} messages written in {:?}", t0.elapsed());

    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let enabled = Instant::now();

    // Mid-sync: once a couple of hundred are tracked (the decision list holds up
    // to 500, enough to see 200).
    wait("200 tracked messages", Duration::from_secs(60), || async {
        let d = w.decisions(&mailbox, "&outcome=tracked").await;
        (d.len() >= 200).then_some(())
    })
    .await;
    let at_stop = Instant::now();
    dovecot.stop().await;
    let tracked_at_stop = tracked_ids(&w, &mailbox).await.len();
    eprintln!(
        "Dovecot stopped {:?} after Test & Enable, with {tracked_at_stop} tracked (stop took {:?})",
        at_stop - enabled,
        at_stop.elapsed()
    );
    assert!(
        tracked_at_stop < MESSAGES,
        "stopped mid-sync: {tracked_at_stop} of {MESSAGES} were tracked already"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = w.get(&format!("/mailboxes/{mailbox}")).await;
    eprintln!(
        "while down: incoming_status {}, incoming_enabled {}",
        down["incoming_status"], down["incoming_enabled"]
    );
    assert_eq!(
        down["incoming_enabled"], true,
        "still enabled while down: {down}"
    );
    dovecot.start_again().await;
    let restarted = Instant::now();

    // Polled twice a second: listing 1,500 emails every 50 ms would slow the
    // engine, which shares this test's thread.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = w.get(&format!("/mailboxes/{mailbox}")).await;
        assert_eq!(
            m["incoming_enabled"], true,
            "the restart disabled incoming email: {m}"
        );
        let ids = tracked_ids(&w, &mailbox).await;
        if ids.len() >= MESSAGES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {MESSAGES} tracked 60 s after the restart: {m}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "all tracked {:?} after the restart ({:?} in all)",
        restarted.elapsed(),
        enabled.elapsed()
    );

    // A few more polls (1 s apart) must not track anything again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ids = tracked_ids(&w, &mailbox).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "tracked more than once: {twice:?}");
    let found: BTreeSet<String> = counts.keys().map(|id| (*id).to_owned()).collect();
    let missing: Vec<_> = expected.difference(&found).collect();
    let strangers: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && strangers.is_empty(),
        "missing {missing:?}; not written by the test {strangers:?}"
    );
    assert_eq!(ids.len(), MESSAGES, "exactly one email per message");
    // And no message ended in a failure.
    let failed: Vec<Value> = w.decisions(&mailbox, "&outcome=failed").await;
    assert!(failed.is_empty(), "{failed:?}");
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["incoming_status"], "success", "{m}");
}
