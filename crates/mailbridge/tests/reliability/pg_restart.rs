//! PostgreSQL restarted under load: two nodes on a PostgreSQL cluster of this
//! test's own (the testkit's `PrivatePostgres`, so that the shared server of the
//! other tests stays up), mail delivered continuously to four mailboxes and a
//! queue of emails being sent through an SMTP server 40 ms away; the database
//! stops — once as a crash (immediate) for 3 s, once as an administrator's
//! restart (fast) for 20 s — and starts again. With no action from anyone the
//! nodes keep running, say so on /healthz while it is down and recover /healthz
//! and /readyz after, every message arrives once and every email is sent once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mailbridge_testkit::{PrivatePostgres, StopMode, TestServers, TestUser};
use reqwest::Method;
use serde_json::{Value, json};

use crate::deployment::{Deployment, FAST, alive, message, sent_counts, tally, unique, until};
use crate::latency::Relay;
use crate::support::Server;

const MAILBOXES: usize = 4;
/// Emails queued before sending starts; the restarts happen while they are sent.
const BACKLOG: usize = 300;
/// Emails queued after the last restart.
const AFTER: usize = 40;
/// How long the SMTP server's every answer takes to arrive: each email then
/// takes a few tenths of a second, and the backlog a few tens of seconds.
const SMTP_LATENCY: Duration = Duration::from_millis(40);
/// One message to each mailbox this often, from the start to the end.
const FEED_EVERY: Duration = Duration::from_millis(100);

/// One restart of the database.
struct Restart {
    mode: StopMode,
    /// How much of the backlog is sent when it comes.
    after_sent: usize,
    /// How long the database stays down.
    down: Duration,
}

const RESTARTS: [Restart; 2] = [
    // A crash, back in seconds: the nodes' store calls wait for it (the pool
    // reconnects within its acquire timeout), except those in flight.
    Restart {
        mode: StopMode::Immediate,
        after_sent: BACKLOG / 4,
        down: Duration::from_secs(3),
    },
    // An administrator's restart that takes longer than the pool's acquire
    // timeout (15 s): every store call meanwhile fails, and the nodes go through
    // their error paths.
    Restart {
        mode: StopMode::Fast,
        after_sent: BACKLOG * 2 / 3,
        down: Duration::from_secs(20),
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_recovers_without_operator_action() {
    let t0 = Instant::now();
    let servers = TestServers::from_env();
    let mut pg = PrivatePostgres::start().await;
    let url = pg.fresh_database_url().await;
    // A lease the outages stay well within, as production's 120 s does: the
    // scheduler renews every third of it, and a renewal the outage holds up waits
    // the pool's 15 s before it fails and the next comes a third later; with 30 s,
    // a 20 s outage let a lease and a node's mailboxes lapse in one run under load,
    // another node took a mailbox over and 39 emails went out twice (which
    // `lease::a_run_whose_lease_is_taken_sends_nothing_more` now guards against).
    let mut env: Vec<(&str, &str)> = FAST
        .iter()
        .copied()
        .filter(|(k, _)| *k != "MAILBRIDGE_LEASE_SECONDS")
        .collect();
    env.push(("MAILBRIDGE_LEASE_SECONDS", "90"));
    let (d, a) = Deployment::start(Some(url), &env).await;
    let b = d.node("b", "b-0.log").await;
    let mut nodes = [a, b];

    let smtp = Relay::start(servers.smtp_addr(), SMTP_LATENCY).await;
    let profile = d.imap_profile(&nodes[0], &servers, smtp.addr).await;
    let tag = unique("pgr");
    let mut logins = Vec::new();
    let mut mailboxes = Vec::new();
    for i in 0..MAILBOXES {
        let login = servers.add_user(&format!("{tag}m{i}"), "pw-pgr").await;
        mailboxes.push(d.mailbox(&nodes[0], &profile, &login, true).await);
        logins.push(login);
    }
    // Queued before Test & Enable turns sending on: they wait, then go out
    // together, for as long as the restarts take.
    let mut queued = queue(&d, &nodes[0], &mailboxes, &format!("{tag}-out"), BACKLOG).await;
    let job = d.test_and_enable(&nodes[0], &mailboxes).await;
    d.wait_job(&nodes[0], &job).await;

    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = tokio::spawn(feed(
        servers.clone(),
        logins.clone(),
        tag.clone(),
        feeding.clone(),
    ));
    let mut unhealthy = Vec::new();
    let mut sent_at_stop = Vec::new();
    let mut recovery = Vec::new();
    let mut downtime = Vec::new();
    for (r, restart) in RESTARTS.iter().enumerate() {
        let sent = until(
            &format!(
                "{} emails sent before restart {}",
                restart.after_sent,
                r + 1
            ),
            Duration::from_secs(60),
            || async {
                let n = sent_counts(&servers, &queued)
                    .values()
                    .filter(|n| **n > 0)
                    .count();
                if n >= restart.after_sent {
                    Ok(n)
                } else {
                    Err(format!("{n} sent"))
                }
            },
        )
        .await;
        sent_at_stop.push(sent);
        // Every mailbox that is sending waits for an SMTP answer when the
        // database stops, and finishes its email while it is down.
        smtp.hold(true);
        tokio::time::sleep(Duration::from_millis(300)).await;
        pg.stop(restart.mode).await;
        smtp.hold(false);
        let down = Instant::now();
        let mut failed_probes = 0;
        while down.elapsed() < restart.down {
            for n in nodes.iter_mut() {
                assert!(alive(n), "a node died: {}", n.log_text());
                if probe(n, "/healthz").await != Some(200) {
                    failed_probes += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        pg.start_again().await;
        downtime.push(down.elapsed().as_millis());
        let up = Instant::now();
        unhealthy.push(failed_probes);
        for n in nodes.iter_mut() {
            let ms = recovered(n, up).await;
            recovery.push(ms);
        }
    }
    // Queueing and sending still work after the last restart.
    queued.extend(queue(&d, &nodes[0], &mailboxes, &format!("{tag}-after"), AFTER).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    feeding.store(false, Ordering::SeqCst);
    let expected = feeder.await.unwrap();
    let messages = expected.len();

    let db = d.reader().await;
    until(
        "every message in, every email sent",
        Duration::from_secs(120),
        || async {
            let incoming = tally(&expected, &db.emails_by_message_id(&d.org).await);
            let statuses = outgoing_statuses(&db, &d.org).await;
            let sent = statuses.get("sent").copied().unwrap_or(0) as usize;
            if incoming.lost == 0 && sent == queued.len() {
                Ok(())
            } else {
                Err(format!(
                    "{} messages lost so far; outgoing {statuses:?}",
                    incoming.lost
                ))
            }
        },
    )
    .await;
    // Nothing was disabled for an operator to turn on again.
    for m in &mailboxes {
        let mb = d
            .call(
                &nodes[0],
                Method::GET,
                &format!("/mailboxes/{m}"),
                Value::Null,
            )
            .await;
        assert!(
            mb["incoming_enabled"] == true && mb["outgoing_enabled"] == true,
            "mailbox {m} still enabled: {mb}"
        );
    }
    for n in &mut nodes {
        assert!(alive(n), "a node died: {}", n.log_text());
    }
    // Clean stops: the runs in flight end before the counts.
    let [a, b] = nodes;
    a.stop().await;
    b.stop().await;

    let activities = tally(&expected, &db.emails_by_message_id(&d.org).await);
    let decisions = tally(&expected, &db.decisions_by_message_id(&d.org).await);
    let statuses = outgoing_statuses(&db, &d.org).await;
    db.close().await;
    let sends = sent_counts(&servers, &queued);
    let sent_once = sends.values().filter(|n| **n == 1).count();
    let sent_twice = sends.values().filter(|n| **n > 1).count();
    let unsent = sends.values().filter(|n| **n == 0).count();
    println!(
        "pg_restart: restarts={} modes=immediate,fast down_ms={downtime:?} nodes=2 mailboxes={MAILBOXES} \
         messages={messages} activities={} lost={} duplicated={} decided_twice={} \
         emails_queued={} sent_at_each_stop={sent_at_stop:?} sent_once={sent_once} \
         sent_twice={sent_twice} unsent={unsent} failed_health_probes_while_down={unhealthy:?} \
         recovered_ms={recovery:?} seconds={:.1}",
        RESTARTS.len(),
        activities.found,
        activities.lost,
        activities.duplicated,
        decisions.duplicated,
        queued.len(),
        t0.elapsed().as_secs_f64(),
    );
    assert!(
        sent_at_stop.iter().all(|n| *n < BACKLOG),
        "each restart came while the backlog was being sent: {sent_at_stop:?}"
    );
    assert!(
        unhealthy.iter().all(|n| *n > 0),
        "/healthz reported each outage: {unhealthy:?}"
    );
    assert_eq!(activities.lost, 0, "no message lost");
    assert_eq!(activities.duplicated, 0, "no message twice");
    assert_eq!(decisions.lost, 0, "a decision for every message");
    assert_eq!(decisions.duplicated, 0, "no message decided twice");
    assert_eq!(
        statuses.get("sent").copied().unwrap_or(0) as usize,
        queued.len(),
        "every email sent: {statuses:?}"
    );
    assert_eq!(unsent, 0, "every email reached the SMTP server");
    let twice: Vec<_> = sends.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "no email sent twice: {twice:?}");
}

/// Delivers one message to each mailbox every [`FEED_EVERY`] until `feeding`
/// ends; returns their Message-IDs.
async fn feed(
    servers: TestServers,
    logins: Vec<TestUser>,
    tag: String,
    feeding: Arc<AtomicBool>,
) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    while feeding.load(Ordering::SeqCst) {
        for login in &logins {
            let (raw, id) = message(&tag, ids.len(), &login.address);
            servers.write_to_inbox(&login.login, &raw);
            ids.insert(id);
        }
        tokio::time::sleep(FEED_EVERY).await;
    }
    ids
}

/// Queues `count` emails from the mailboxes in turn, each to an outside
/// recipient of its own (the SMTP server records them only), `<prefix>-<n>` as
/// recipient and subject; returns those names.
async fn queue(
    d: &Deployment,
    node: &Server,
    mailboxes: &[String],
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut names = Vec::new();
    for n in 0..count {
        let name = format!("{prefix}-{n}");
        d.post(
            node,
            "/emails",
            json!({"from_mailbox_id": mailboxes[n % mailboxes.len()],
                   "to": [format!("{name}@elsewhere.example")],
                   "subject": name, "body_text": "Hello", "send": true}),
        )
        .await;
        names.push(name);
    }
    names
}

async fn outgoing_statuses(db: &crate::deployment::Reader, org: &str) -> BTreeMap<String, i64> {
    db.groups(
        "SELECT status, COUNT(*) FROM emails WHERE org_id = $1 AND direction = 'outgoing' GROUP BY status",
        org,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|(s, n)| (s.unwrap_or_default(), n))
    .collect()
}

/// The status of `GET path` on the node within half a second; None without an
/// answer (a node waits for the database up to its pool's acquire timeout).
async fn probe(node: &Server, path: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let r = client.get(format!("{}{path}", node.base)).send().await;
    r.ok().map(|r| r.status().as_u16())
}

/// Waits (bounded) until the node answers 200 on /healthz and /readyz; returns
/// the milliseconds since `up`.
async fn recovered(node: &mut Server, up: Instant) -> u128 {
    let deadline = up + Duration::from_secs(60);
    loop {
        assert!(alive(node), "a node died: {}", node.log_text());
        if probe(node, "/healthz").await == Some(200) && probe(node, "/readyz").await == Some(200) {
            return up.elapsed().as_millis();
        }
        assert!(
            Instant::now() < deadline,
            "the node did not recover within 60 s of the restart: {}",
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
