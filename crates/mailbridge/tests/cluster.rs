//! Cluster mode end to end: three `mailbridge serve` nodes on one PostgreSQL
//! database share the mailboxes, mail flows in and out, one node is killed with
//! SIGKILL: its mailboxes go to the other two within the lease time, and no
//! message is lost or processed twice, no email sent twice, no webhook event
//! lost (and repeated only when its delivery was in flight on the killed node). A node that joins
//! then takes its share from the others.

mod support;
mod webhooks {
    // Shared with tests/webhooks.rs, which uses all of it.
    #[allow(dead_code)]
    pub mod receiver;
}

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mailbridge_testkit::TestServers;
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;
use webhooks::receiver::Receiver;

/// Seconds a node keeps its mailboxes without a heartbeat.
const LEASE_SECONDS: u64 = 5;
const MAILBOXES: usize = 9;
/// Messages delivered to each mailbox before and after the kill.
const ROUND: usize = 12;
/// Emails sent from each mailbox before and after the kill.
const SENDS: usize = 2;

const FAST: &[(&str, &str)] = &[
    ("MAILBRIDGE_LOG", "info,mailbridge_engine=debug"),
    ("MAILBRIDGE_TICK_MILLIS", "100"),
    ("MAILBRIDGE_POLL_INTERVAL_SECONDS", "1"),
    ("MAILBRIDGE_MAX_IDLE_POLL_SECONDS", "2"),
    ("MAILBRIDGE_RETRY_DELAY_SECONDS", "1"),
    ("MAILBRIDGE_LEASE_SECONDS", "5"),
];

async fn ok(s: &Server, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, v) = s.call(method.clone(), path, token, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

struct Cluster {
    _root: tempfile::TempDir,
    nodes: Vec<Option<Server>>,
    admin: String,
    org: String,
    url: String,
    db: sqlx::PgPool,
}

impl Cluster {
    async fn start(servers: &TestServers) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let url = servers.fresh_postgres_url().await;
        let data = |i: usize| -> PathBuf { root.path().join(format!("node{i}")) };
        let first = Server::start_with(&data(0), Some(&url), "node0.log", FAST).await;
        let admin = std::fs::read_to_string(data(0).join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        // The other nodes share the store key (secrets are sealed with it).
        let key = std::fs::read_to_string(data(0).join("secret.key")).unwrap();
        let mut nodes = vec![Some(first)];
        for i in 1..3 {
            std::fs::create_dir_all(data(i)).unwrap();
            std::fs::write(data(i).join("secret.key"), &key).unwrap();
            nodes.push(Some(
                Server::start_with(&data(i), Some(&url), &format!("node{i}.log"), FAST).await,
            ));
        }
        let org = ok(
            nodes[0].as_ref().unwrap(),
            Method::POST,
            "/api/v1/organizations",
            &admin,
            Some(json!({"name": "Cluster"})),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let db = sqlx::PgPool::connect(&url).await.unwrap();
        Cluster {
            _root: root,
            nodes,
            admin,
            org,
            url,
            db,
        }
    }

    /// A live node: requests go to any of them (each serves the whole API).
    fn any(&self, n: usize) -> &Server {
        self.nodes
            .iter()
            .flatten()
            .cycle()
            .nth(n)
            .expect("a live node")
    }

    async fn call(&self, via: usize, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/api/v1/orgs/{}{path}", self.org);
        ok(self.any(via), method, &path, &self.admin, Some(body)).await
    }

    async fn get(&self, via: usize, path: &str) -> Value {
        let path = format!("/api/v1/orgs/{}{path}", self.org);
        ok(self.any(via), Method::GET, &path, &self.admin, None).await
    }

    /// The node view: (node id, state, mailboxes held) per node.
    async fn view(&self, via: usize) -> Vec<(String, String, i64)> {
        self.get(via, "/monitoring/nodes").await["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["id"].as_str().unwrap().to_owned(),
                    n["state"].as_str().unwrap().to_owned(),
                    n["mailboxes"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    /// Waits (bounded) until `check` holds on the node view; returns the view.
    async fn wait_view(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&[(String, String, i64)]) -> bool,
    ) -> Vec<(String, String, i64)> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.view(0).await;
            if check(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what} within {within:?}: {v:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Queues `SENDS` emails from each mailbox, through the nodes in turn;
    /// returns their Message-IDs.
    async fn send_round(&self, round: usize, mailboxes: &[String], tag: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for (m, mailbox) in mailboxes.iter().enumerate() {
            for i in 0..SENDS {
                let email = self
                    .call(
                        m + i,
                        Method::POST,
                        "/emails",
                        json!({"from_mailbox_id": mailbox, "to": ["partner@fabrikam.com"],
                               "subject": format!("Out {round} {m} {i} {tag}"), "send": true}),
                    )
                    .await;
                // The service gives queued emails their Message-ID.
                let mid = email["message_id"]
                    .as_str()
                    .expect("a Message-ID")
                    .to_owned();
                ids.push(mid);
            }
        }
        ids
    }

    /// Every Message-ID of the organization's tracked (incoming) emails.
    async fn incoming_ids(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT message_id FROM emails WHERE org_id = $1 AND direction = 'incoming'",
        )
        .bind(&self.org)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }
}

fn message(i: usize, tag: &str, to: &str) -> (String, String) {
    let id = format!("cluster-{i}-{tag}@test.example.org");
    let raw = format!(
        "From: sender{}@fabrikam.com\r\nTo: {to}\r\nSubject: Cluster {i}\r\nMessage-ID: <{id}>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nBody {i}\r\n",
        i % 7,
    );
    (raw, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_survive_a_sigkill() {
    let servers = TestServers::from_env();
    let t0 = Instant::now();
    let mut c = Cluster::start(&servers).await;
    let profile = c
        .call(
            0,
            Method::POST,
            "/email-server-profiles",
            json!({"name": "Dovecot", "server_type": "imap_smtp", "allow_plaintext": true,
                   "incoming_server_location": format!("imap://{}", servers.imap_addr()),
                   "outgoing_server_location": format!("smtp://{}", servers.smtp_addr())}),
        )
        .await;
    let receiver = Receiver::start().await;
    c.call(
        2,
        Method::POST,
        "/webhooks",
        json!({"url": receiver.url, "event_types": ["email.tracked"]}),
    )
    .await;
    let tag = format!("c{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let mut logins = Vec::new();
    let mut mailboxes = Vec::new();
    for i in 0..MAILBOXES {
        let login = servers.add_user(&format!("{tag}u{i}"), "pw-cluster").await;
        let user = c
            .call(
                i,
                Method::POST,
                "/users",
                json!({"full_name": format!("User {i}"), "email": login.address, "tracking_filter": "all"}),
            )
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        c.call(
            i,
            Method::PATCH,
            &format!("/mailboxes/{mailbox}"),
            json!({"profile_id": profile["id"], "password": "pw-cluster"}),
        )
        .await;
        mailboxes.push(mailbox);
        logins.push(login);
    }
    // Approving addresses takes the approver role.
    let approver = c
        .call(
            0,
            Method::POST,
            "/users",
            json!({"full_name": "Ann", "role": "approver"}),
        )
        .await;
    let approver = c
        .call(
            0,
            Method::POST,
            "/tokens",
            json!({"user_id": approver["id"]}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        c.any(2),
        Method::POST,
        &format!("/api/v1/orgs/{}/mailboxes/approve", c.org),
        &approver,
        Some(json!({"ids": mailboxes})),
    )
    .await;
    c.call(
        1,
        Method::POST,
        "/mailboxes/test-and-enable",
        json!({"ids": mailboxes}),
    )
    .await;

    // Load spreads: each node holds its share of the nine.
    let spread = c
        .wait_view(
            "three live nodes holding 3 mailboxes each",
            Duration::from_secs(60),
            |v| v.len() == 3 && v.iter().all(|(_, state, n)| state == "alive" && *n == 3),
        )
        .await;
    eprintln!("spread at {:?}: {spread:?}", t0.elapsed());

    let mut expected = BTreeSet::new();
    let mut sent_ids = BTreeSet::new();
    let deliver_round = |round: usize| {
        let mut ids = Vec::new();
        for (m, login) in logins.iter().enumerate() {
            for i in 0..ROUND {
                let (raw, id) = message(round * 1000 + m * 100 + i, &tag, &login.address);
                servers.write_to_inbox(&login.login, raw.as_bytes());
                ids.push(id);
            }
        }
        ids
    };
    expected.extend(deliver_round(1));
    sent_ids.extend(c.send_round(1, &mailboxes, &tag).await);

    // Mail is flowing: kill the node holding the most once some has arrived.
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.incoming_ids().await.len() < MAILBOXES * ROUND / 3 {
        assert!(Instant::now() < deadline, "ingest did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let victim_id = spread[0].0.clone();
    let victim = (0..3)
        .find(|&i| {
            std::fs::read_to_string(c._root.path().join(format!("node{i}/node.id")))
                .is_ok_and(|id| id.trim() == victim_id)
        })
        .unwrap_or_else(|| panic!("which process is {victim_id}?"));
    let mut killed = c.nodes[victim].take().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let killed_at = Instant::now();
    eprintln!("killed {victim_id} (node{victim}) at {:?}", t0.elapsed());
    expected.extend(deliver_round(2));
    sent_ids.extend(c.send_round(2, &mailboxes, &tag).await);

    // Its mailboxes go to the survivors once its assignments run out.
    let after = c
        .wait_view(
            "the survivors holding all nine",
            Duration::from_secs(LEASE_SECONDS * 4),
            |v| {
                v.iter()
                    .filter(|(_, s, _)| s == "alive")
                    .map(|(_, _, n)| n)
                    .sum::<i64>()
                    == MAILBOXES as i64
                    && v.iter()
                        .any(|(id, s, n)| id == &victim_id && s == "lost" && *n == 0)
            },
        )
        .await;
    let takeover = killed_at.elapsed();
    eprintln!("taken over in {takeover:?}: {after:?}");
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 3),
        "taken over within the lease time (plus a heartbeat and a tick): {takeover:?}"
    );

    // Everything arrives, once.
    let deadline = Instant::now() + Duration::from_secs(90);
    let ids = loop {
        let ids = c.incoming_ids().await;
        let found = ids.iter().filter(|i| expected.contains(*i)).count();
        if found >= expected.len() {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "only {found} of {} messages",
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut per_id: BTreeMap<&String, usize> = BTreeMap::new();
    for id in ids.iter().filter(|i| expected.contains(*i)) {
        *per_id.entry(id).or_default() += 1;
    }
    let duplicated = per_id.values().filter(|n| **n > 1).count();
    let lost = expected.len() - per_id.len();
    let decisions: Vec<String> = sqlx::query_scalar(
        "SELECT message_id FROM message_decisions WHERE org_id = $1 AND message_id IS NOT NULL",
    )
    .bind(&c.org)
    .fetch_all(&c.db)
    .await
    .unwrap();
    let mut decided: BTreeMap<String, usize> = BTreeMap::new();
    for d in decisions {
        *decided
            .entry(d.trim_matches(|ch| ch == '<' || ch == '>').to_owned())
            .or_default() += 1;
    }
    let decided_twice = decided.values().filter(|n| **n > 1).count();

    // Every queued email goes out, once.
    let sink_deadline = Instant::now() + Duration::from_secs(60);
    let out: BTreeMap<String, usize> = loop {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for m in servers.smtp_received() {
            for mid in &sent_ids {
                if m.text().contains(mid.as_str()) {
                    *seen.entry(mid.clone()).or_default() += 1;
                }
            }
        }
        if seen.len() == sent_ids.len() || Instant::now() > sink_deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A little longer: a second copy would come soon after the first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent_twice = servers
        .smtp_received()
        .iter()
        .flat_map(|m| {
            sent_ids
                .iter()
                .filter(move |mid| m.text().contains(mid.as_str()))
        })
        .count()
        - out.len();
    // Every email.tracked event reaches the receiver; a repeat is allowed only
    // for a delivery that was in flight when its node was killed (the receiver
    // had it, the node died before recording it): receivers dedupe by webhook-id.
    let hook_deadline = Instant::now() + Duration::from_secs(60);
    let tracked_ids: BTreeSet<String> = sqlx::query_as::<_, (String, String)>(
        "SELECT id, message_id FROM emails WHERE org_id = $1 AND direction = 'incoming'",
    )
    .bind(&c.org)
    .fetch_all(&c.db)
    .await
    .unwrap()
    .into_iter()
    .filter(|(_, mid)| expected.contains(mid))
    .map(|(id, _)| id)
    .collect();
    let (events, repeated) = loop {
        let mut first: BTreeMap<String, (Instant, usize)> = BTreeMap::new();
        let mut delivered = BTreeSet::new();
        for r in receiver.requests().iter().filter(|r| r.ok()) {
            let body = r.json();
            if let Some(email) = body["data"]["email_id"].as_str() {
                delivered.insert(email.to_owned());
            }
            let e = first.entry(r.id()).or_insert((r.at, 0));
            e.1 += 1;
        }
        if tracked_ids.is_subset(&delivered) || Instant::now() > hook_deadline {
            assert!(
                tracked_ids.is_subset(&delivered),
                "{} of {} email.tracked events delivered",
                tracked_ids.intersection(&delivered).count(),
                tracked_ids.len()
            );
            let repeated: Vec<(String, Instant)> = first
                .into_iter()
                .filter(|(_, (_, n))| *n > 1)
                .map(|(id, (at, _))| (id, at))
                .collect();
            break (delivered.len(), repeated);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (id, at) in &repeated {
        assert!(
            *at <= killed_at,
            "event {id} delivered twice though its first delivery came after the kill"
        );
    }
    eprintln!(
        "cluster: nodes=3 killed=1 takeover_ms={} messages={} lost={lost} duplicated={duplicated} decided_twice={decided_twice} emails={} sent={} sent_twice={sent_twice} webhook_events={events} webhook_repeats={} seconds={}",
        takeover.as_millis(),
        expected.len(),
        sent_ids.len(),
        out.len(),
        repeated.len(),
        t0.elapsed().as_secs()
    );
    assert_eq!(lost, 0, "no message lost");
    assert_eq!(duplicated, 0, "no message tracked twice");
    assert_eq!(decided_twice, 0, "no message decided twice");
    assert_eq!(out.len(), sent_ids.len(), "every email sent");
    assert_eq!(sent_twice, 0, "no email sent twice");

    // A new node takes its share: the others give mailboxes back to it.
    let key = std::fs::read_to_string(c._root.path().join("node1/secret.key")).unwrap();
    let fresh = c._root.path().join("node3");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("secret.key"), key).unwrap();
    c.nodes.push(Some(
        Server::start_with(&fresh, Some(&c.url), "node3.log", FAST).await,
    ));
    let joined = Instant::now();
    let rebalanced = c
        .wait_view(
            "the new node holding its share",
            Duration::from_secs(30),
            |v| v.iter().filter(|(_, s, n)| s == "alive" && *n == 3).count() == 3,
        )
        .await;
    eprintln!("rebalanced in {:?}: {rebalanced:?}", joined.elapsed());

    // Clean stops give the mailboxes back: the view shows them stopped.
    for node in c.nodes.iter_mut() {
        if let Some(s) = node.take() {
            s.stop().await;
        }
    }
    let (stopped, held): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM nodes WHERE stopped_at IS NOT NULL),
                (SELECT COUNT(*) FROM mailboxes WHERE assigned_node IS NOT NULL)",
    )
    .fetch_one(&c.db)
    .await
    .unwrap();
    assert_eq!((stopped, held), (3, 0));
}
