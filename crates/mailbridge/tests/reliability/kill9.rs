//! `kill -9` of a node at 20 random points of a 10,000-message ingest, each kill
//! followed by a restart: afterwards exactly 10,000 email activities, every
//! Message-ID once, each message decided once. On PostgreSQL and on SQLite.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mailbridge_testkit::TestServers;

use crate::deployment::{
    Deployment, FAST, Reader, Rng, SEED_VAR, alive, fault_seed, kill9, message, tally, unique,
    until,
};
use crate::support::Server;

const MESSAGES: usize = 10_000;
const KILLS: usize = 20;
/// Kills fall below this count of activities, so that each lands mid-ingest. The
/// margin covers what can still be committed before the kill arrives: the point
/// is seen up to one batch (200) late, and during the drawn delay (up to 150 ms)
/// an ingest of ~2,500 messages/s commits two more batches. 500 was too little
/// (a kill drawn at 9,414 landed after the last message).
const KILL_BELOW: u64 = 9_000;
/// The longest wait drawn after a kill point is reached, so that a kill lands
/// anywhere in the batch being fetched, decided or written (not only right after
/// a commit, which is when the count moves).
const MAX_DELAY_MS: u64 = 150;

/// The kill points: one activity count drawn in each of [`KILLS`] equal slices of
/// `1..KILL_BELOW` (so that they spread over the whole ingest), each with a delay.
fn kill_points(rng: &mut Rng) -> Vec<(u64, Duration)> {
    let width = (KILL_BELOW - 1) / KILLS as u64;
    (0..KILLS as u64)
        .map(|k| {
            let at = 1 + k * width + rng.below(width);
            (at, Duration::from_millis(rng.below(MAX_DELAY_MS + 1)))
        })
        .collect()
}

#[tokio::test]
async fn kill_9_at_20_random_points_on_postgres() {
    let servers = TestServers::from_env();
    let url = servers.fresh_postgres_url().await;
    kill_9_during_ingest("postgres", &servers, Some(url)).await;
}

#[tokio::test]
async fn kill_9_at_20_random_points_on_sqlite() {
    let servers = TestServers::from_env();
    kill_9_during_ingest("sqlite", &servers, None).await;
}

async fn kill_9_during_ingest(backend: &str, servers: &TestServers, database: Option<String>) {
    let t0 = Instant::now();
    let seed = fault_seed();
    eprintln!("kill9 on {backend}: seed {seed} ({SEED_VAR}={seed} replays the kill points)");
    let mut rng = Rng(seed);
    let points = kill_points(&mut rng);

    let (d, mut node) = Deployment::start(database, FAST).await;
    let profile = d.imap_profile(&node, servers, servers.smtp_addr()).await;
    let name = unique("kill");
    let login = servers.add_user(&name, "pw-kill9").await;
    let mailbox = d.mailbox(&node, &profile, &login, false).await;
    let mut expected = BTreeSet::new();
    for i in 0..MESSAGES {
        let (raw, id) = message(&name, i, &login.address);
        servers.write_to_inbox(&login.login, &raw);
        expected.insert(id);
    }
    eprintln!("{MESSAGES} messages written in {:?}", t0.elapsed());

    let db = d.reader().await;
    let started = Instant::now();
    d.test_and_enable(&node, std::slice::from_ref(&mailbox))
        .await;
    let mut at_kill = Vec::new();
    for (k, (point, delay)) in points.iter().enumerate() {
        let reached = reach(&db, &d.org, &mut node, *point).await;
        tokio::time::sleep(*delay).await;
        kill9(node);
        let n = db.emails(&d.org).await.unwrap();
        eprintln!(
            "kill {} at {point}+{delay:?}: {reached} activities at the point, {n} at the kill, {:?} in",
            k + 1,
            started.elapsed()
        );
        assert!(
            (n as usize) < MESSAGES,
            "kill {} landed mid-ingest ({n} of {MESSAGES})",
            k + 1
        );
        at_kill.push(n);
        node = d.node("a", &format!("a-{}.log", k + 1)).await;
    }

    until(
        "every message ingested after the last restart",
        Duration::from_secs(180),
        || async {
            let n = db.emails(&d.org).await.map_err(|e| e.to_string())?;
            if n as usize >= MESSAGES {
                Ok(())
            } else {
                Err(format!("{n} of {MESSAGES}"))
            }
        },
    )
    .await;
    let ingest = started.elapsed();
    // A clean stop: whatever the last run was doing is over before the count.
    node.stop().await;
    let emails = db.emails(&d.org).await.unwrap() as usize;
    let activities = tally(&expected, &db.emails_by_message_id(&d.org).await);
    let decisions = tally(&expected, &db.decisions_by_message_id(&d.org).await);
    db.close().await;
    println!(
        "kill9: backend={backend} seed={seed} kills={} messages={MESSAGES} activities={emails} \
         lost={} duplicated={} decisions={} decided_twice={} ingest_seconds={:.1} seconds={:.1}",
        at_kill.len(),
        activities.lost,
        activities.duplicated,
        decisions.found,
        decisions.duplicated,
        ingest.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
    );
    println!("kill9: activities at each kill {at_kill:?}");
    assert_eq!(at_kill.len(), KILLS);
    assert_eq!(emails, MESSAGES, "exactly {MESSAGES} email activities");
    assert_eq!(activities.lost, 0, "no message lost");
    assert_eq!(activities.duplicated, 0, "no message twice");
    assert_eq!(activities.found, MESSAGES);
    assert_eq!(decisions.lost, 0, "a decision for every message");
    assert_eq!(decisions.duplicated, 0, "no message decided twice");
}

/// Waits (bounded) until the organization has `point` activities; returns the
/// count then. Panics when the node dies meanwhile.
async fn reach(db: &Reader, org: &str, node: &mut Server, point: u64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(alive(node), "the node died: {}", node.log_text());
        let n = db.emails(org).await.unwrap();
        if n as u64 >= point {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{n} activities, not {point}, after 120 s: {}",
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
