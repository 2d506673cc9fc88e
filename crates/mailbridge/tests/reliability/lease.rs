//! A run whose lease is taken stops sending: the mailbox's lease is given to
//! another owner in the database while a backlog is being sent (what a node that
//! takes over a mailbox after a long database outage does), and the node must
//! not hand one more email to the SMTP server than the one in flight.

use std::time::{Duration, Instant};

use mailbridge_testkit::TestServers;
use serde_json::json;

use crate::deployment::{Deployment, FAST, sent_counts, unique, until};
use crate::latency::Relay;

const EMAILS: usize = 60;
/// Long, so that the scheduler's own renewal (every third of it) does not find
/// the lease taken during the test's look: only the run's check before each send
/// can stop it.
const LEASE: &str = "60";
/// How long the test watches the SMTP server while the lease is taken.
const WATCH: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_run_whose_lease_is_taken_sends_nothing_more() {
    let t0 = Instant::now();
    let servers = TestServers::from_env();
    let url = servers.fresh_postgres_url().await;
    let mut env: Vec<(&str, &str)> = FAST
        .iter()
        .copied()
        .filter(|(k, _)| *k != "MAILBRIDGE_LEASE_SECONDS")
        .collect();
    env.push(("MAILBRIDGE_LEASE_SECONDS", LEASE));
    let (d, node) = Deployment::start(Some(url.clone()), &env).await;
    let smtp = Relay::start(servers.smtp_addr(), Duration::from_millis(40)).await;
    let profile = d.imap_profile(&node, &servers, smtp.addr).await;
    let tag = unique("lease");
    let login = servers.add_user(&tag, "pw-lease").await;
    let mailbox = d.mailbox(&node, &profile, &login, true).await;
    let mut names = Vec::new();
    for n in 0..EMAILS {
        let name = format!("{tag}-{n}");
        d.post(
            &node,
            "/emails",
            json!({"from_mailbox_id": mailbox, "to": [format!("{name}@elsewhere.example")],
                   "subject": name, "body_text": "Hello", "send": true}),
        )
        .await;
        names.push(name);
    }
    let job = d
        .test_and_enable(&node, std::slice::from_ref(&mailbox))
        .await;
    d.wait_job(&node, &job).await;
    until("5 emails sent", Duration::from_secs(60), || async {
        let n = sent(&servers, &names);
        if n >= 5 {
            Ok(())
        } else {
            Err(format!("{n} sent"))
        }
    })
    .await;

    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let set_owner = |owner: Option<&'static str>| {
        let (db, mailbox) = (&db, &mailbox);
        async move {
            sqlx::query(
                "UPDATE mailboxes SET lease_owner = $2, lease_expires_at = $3 WHERE id = $1",
            )
            .bind(mailbox)
            .bind(owner)
            .bind(owner.map(|_| chrono::Utc::now() + chrono::Duration::hours(1)))
            .execute(db)
            .await
            .unwrap();
        }
    };
    set_owner(Some("another-node")).await;
    let at_theft = sent(&servers, &names);
    tokio::time::sleep(WATCH).await;
    let while_taken = sent(&servers, &names) - at_theft;
    // Given back: the node's next run sends the rest.
    set_owner(None).await;
    until("every email sent", Duration::from_secs(90), || async {
        let n = sent(&servers, &names);
        if n >= EMAILS {
            Ok(())
        } else {
            Err(format!("{n} of {EMAILS} sent"))
        }
    })
    .await;
    node.stop().await;
    db.close().await;
    let counts = sent_counts(&servers, &names);
    let twice = counts.values().filter(|n| **n > 1).count();
    println!(
        "lease_taken: emails={EMAILS} sent_before={at_theft} sent_while_taken={while_taken} \
         watched_seconds={} sent_twice={twice} seconds={:.1}",
        WATCH.as_secs(),
        t0.elapsed().as_secs_f64()
    );
    assert!(at_theft < EMAILS, "the lease was taken mid-backlog");
    assert!(
        while_taken <= 1,
        "only the email in flight goes out once the lease is taken, not {while_taken}"
    );
    assert_eq!(twice, 0, "no email sent twice: {counts:?}");
}

/// How many of the emails reached the SMTP server.
fn sent(servers: &TestServers, names: &[String]) -> usize {
    sent_counts(servers, names)
        .values()
        .filter(|n| **n > 0)
        .count()
}
