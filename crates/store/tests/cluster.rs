//! Cluster mode in the store, on both SQLite and PostgreSQL: nodes register and
//! beat; mailboxes that may have work are claimed by one node at a time, never
//! by two even when nodes claim at once; a heartbeat keeps them, a clean stop
//! gives them back, and a dead node's assignments run out and are taken over.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use mailbridge_domain::cluster::ClusterView;
use mailbridge_domain::profile::ProfileSettings;
use mailbridge_domain::{ApprovalStatus, Role, ServerType, TrackingFilter};
use mailbridge_store::{Cipher, NewUser, NodeInfo, ProfileSecretChanges, Store};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One `#[tokio::test]` per backend for each named async function taking a `Backend`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(super::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name(super::Backend::Postgres).await
                }
            }
        )+
    };
}

on_both_backends!(
    only_mailboxes_that_may_have_work_are_claimed,
    concurrent_claims_never_share_a_mailbox,
    heartbeats_keep_assignments_and_dead_nodes_lose_them,
    a_clean_stop_gives_everything_back,
    a_mailbox_with_a_run_in_flight_is_not_given_back,
    the_node_view_counts_per_organization,
    a_restarted_node_finds_its_own_leased_mailboxes_due,
);

struct Cluster {
    store: Store,
    org: String,
    /// Mailboxes with a profile, incoming enabled and approved.
    eligible: Vec<String>,
    /// Mailboxes without a profile.
    idle: Vec<String>,
    _dir: tempfile::TempDir,
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.to_owned(),
        hostname: "host".to_owned(),
        pid: 1,
        version: "test".to_owned(),
    }
}

impl Cluster {
    async fn start(backend: Backend, eligible: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => dir.path().join("cluster.db").display().to_string(),
            Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
        };
        let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
        let store = Store::open(&url, cipher).await.expect("store opens");
        let org = store
            .create_organization("Contoso", None)
            .await
            .expect("organization")
            .id;
        let mut c = Cluster {
            eligible: Vec::new(),
            idle: Vec::new(),
            org,
            store,
            _dir: dir,
        };
        c.eligible = c.mailboxes("u", eligible, true).await;
        c.idle = c.mailboxes("idle", 3, false).await;
        c
    }

    /// `n` users' mailboxes; with a profile, incoming enabled and approved when `work`.
    async fn mailboxes(&self, prefix: &str, n: usize, work: bool) -> Vec<String> {
        let profile = if work {
            let mut s = ProfileSettings::new(format!("{prefix} profile"), ServerType::ImapSmtp);
            s.incoming_server_location = Some("imaps://127.0.0.1:993".to_owned());
            s.outgoing_server_location = Some("smtps://127.0.0.1:465".to_owned());
            Some(
                self.store
                    .create_profile(&self.org, &s, &ProfileSecretChanges::default())
                    .await
                    .expect("profile")
                    .id,
            )
        } else {
            None
        };
        let mut ids = Vec::new();
        for i in 0..n {
            let user = self
                .store
                .create_user(
                    &self.org,
                    NewUser {
                        full_name: format!("{prefix} {i}"),
                        email: Some(format!("{prefix}{i:04}@contoso.com")),
                        role: Role::User,
                        tracking_filter: TrackingFilter::None,
                    },
                )
                .await
                .expect("user");
            if let Some(p) = &profile {
                let mut m = self
                    .store
                    .get_mailbox(&self.org, &user.mailbox_id)
                    .await
                    .expect("mailbox");
                m.profile_id = Some(p.clone());
                m.incoming_enabled = true;
                self.store.update_mailbox(&m, None).await.expect("update");
            }
            ids.push(user.mailbox_id);
        }
        if work {
            self.store
                .set_approval(&self.org, &ids, ApprovalStatus::Approved)
                .await
                .expect("approve");
        }
        ids
    }

    async fn view(&self, node: &str) -> ClusterView {
        let now = Utc::now();
        self.store
            .cluster_view(node, now, now - Duration::seconds(60))
            .await
            .expect("view")
    }

    /// The mailboxes each of `nodes` holds now.
    async fn held(&self, nodes: &[&str]) -> Vec<BTreeSet<String>> {
        let mut out = Vec::new();
        for n in nodes {
            let page = self
                .store
                .node_mailboxes(&self.org, n, Utc::now(), None, 10_000)
                .await
                .expect("node mailboxes");
            out.push(page.into_iter().map(|m| m.mailbox_id).collect());
        }
        out
    }
}

fn soon() -> chrono::DateTime<Utc> {
    Utc::now() + Duration::seconds(60)
}

async fn only_mailboxes_that_may_have_work_are_claimed(backend: Backend) {
    let c = Cluster::start(backend, 4).await;
    c.store.register_node(&node("a"), Utc::now()).await.unwrap();
    let v = c.view("a").await;
    assert_eq!((v.live_nodes, v.eligible, v.held), (1, 4, 0));
    let got = c
        .store
        .claim_mailboxes("a", Utc::now(), soon(), 100)
        .await
        .unwrap();
    assert_eq!(got, 4, "the three mailboxes without a profile stay free");
    let held = &c.held(&["a"]).await[0];
    assert_eq!(held, &c.eligible.iter().cloned().collect::<BTreeSet<_>>());
    assert!(c.idle.iter().all(|m| !held.contains(m)));
    // A second claim finds nothing free.
    assert_eq!(
        c.store
            .claim_mailboxes("b", Utc::now(), soon(), 100)
            .await
            .unwrap(),
        0
    );
    // A mailbox whose incoming is turned off is given back by the heartbeat.
    let mut m = c.store.get_mailbox(&c.org, &c.eligible[0]).await.unwrap();
    m.incoming_enabled = false;
    c.store.update_mailbox(&m, None).await.unwrap();
    let kept = c
        .store
        .node_heartbeat("a", Utc::now(), soon())
        .await
        .unwrap();
    assert_eq!(kept, 3);
    assert_eq!(
        c.store
            .mailbox_node(&c.eligible[0], Utc::now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        c.store
            .mailbox_node(&c.eligible[1], Utc::now())
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
}

async fn concurrent_claims_never_share_a_mailbox(backend: Backend) {
    let c = Cluster::start(backend, 60).await;
    let nodes = ["n1", "n2", "n3", "n4"];
    for n in nodes {
        c.store.register_node(&node(n), Utc::now()).await.unwrap();
    }
    // Every node claims in small bites at once until nothing is free.
    let mut tasks = tokio::task::JoinSet::new();
    for n in nodes {
        let store = c.store.clone();
        tasks.spawn(async move {
            let mut total = 0;
            for _ in 0..40 {
                total += store
                    .claim_mailboxes(n, Utc::now(), soon(), 4)
                    .await
                    .expect("claim");
            }
            total
        });
    }
    let mut claimed = 0;
    while let Some(t) = tasks.join_next().await {
        claimed += t.unwrap();
    }
    assert_eq!(claimed, 60, "each mailbox claimed exactly once in all");
    let held = c.held(&nodes).await;
    let mut union = BTreeSet::new();
    for h in &held {
        for m in h {
            assert!(union.insert(m.clone()), "{m} held by two nodes");
        }
    }
    assert_eq!(union.len(), 60);
}

async fn heartbeats_keep_assignments_and_dead_nodes_lose_them(backend: Backend) {
    let c = Cluster::start(backend, 6).await;
    let t0 = Utc::now();
    for n in ["a", "b"] {
        c.store.register_node(&node(n), t0).await.unwrap();
    }
    // Short assignments: 2 seconds.
    let short = |t: chrono::DateTime<Utc>| t + Duration::seconds(2);
    assert_eq!(
        c.store
            .claim_mailboxes("a", t0, short(t0), 3)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        c.store
            .claim_mailboxes("b", t0, short(t0), 3)
            .await
            .unwrap(),
        3
    );
    // Three seconds on: "a" beat in time, "b" did not.
    let t1 = t0 + Duration::seconds(1);
    assert_eq!(c.store.node_heartbeat("a", t1, short(t1)).await.unwrap(), 3);
    let t3 = t0 + Duration::seconds(3);
    let live_since = t3 - Duration::seconds(2);
    let v = c.store.cluster_view("a", t3, live_since).await.unwrap();
    assert_eq!((v.live_nodes, v.held), (1, 3), "b is no longer live");
    // "a" takes b's mailboxes: they are free once b's assignment ran out.
    assert_eq!(
        c.store
            .claim_mailboxes("a", t3, short(t3), 10)
            .await
            .unwrap(),
        3
    );
    let view = c.store.list_nodes(&c.org, t3).await.unwrap();
    let count = |id: &str| view.iter().find(|n| n.id == id).map(|n| n.mailboxes);
    assert_eq!((count("a"), count("b")), (Some(6), Some(0)));
}

async fn a_clean_stop_gives_everything_back(backend: Backend) {
    let c = Cluster::start(backend, 5).await;
    c.store.register_node(&node("a"), Utc::now()).await.unwrap();
    c.store
        .claim_mailboxes("a", Utc::now(), soon(), 10)
        .await
        .unwrap();
    c.store.leave_cluster("a", Utc::now()).await.unwrap();
    let nodes = c.store.list_nodes(&c.org, Utc::now()).await.unwrap();
    assert!(nodes[0].stopped_at.is_some());
    assert_eq!(nodes[0].mailboxes, 0);
    assert_eq!(
        c.view("b").await.live_nodes,
        0,
        "a stopped node is not live"
    );
    assert_eq!(
        c.store
            .claim_mailboxes("b", Utc::now(), soon(), 10)
            .await
            .unwrap(),
        5,
        "free at once, without waiting for the assignment to run out"
    );
    // Registering again (a restart) makes it live again.
    c.store.register_node(&node("a"), Utc::now()).await.unwrap();
    assert_eq!(c.view("b").await.live_nodes, 1);
}

async fn a_mailbox_with_a_run_in_flight_is_not_given_back(backend: Backend) {
    let c = Cluster::start(backend, 3).await;
    let now = Utc::now();
    c.store.claim_mailboxes("a", now, soon(), 10).await.unwrap();
    // A run holds the lease of the first mailbox.
    assert!(
        c.store
            .acquire_lease(&c.eligible[0], "a", now, soon())
            .await
            .unwrap()
    );
    assert_eq!(
        c.store
            .release_mailboxes("a", Utc::now(), 10)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        c.store
            .mailbox_node(&c.eligible[0], Utc::now())
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
    let running = c
        .store
        .node_mailboxes(&c.org, "a", Utc::now(), None, 10)
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    assert!(running[0].running);
}

async fn the_node_view_counts_per_organization(backend: Backend) {
    let c = Cluster::start(backend, 4).await;
    let other = c
        .store
        .create_organization("Fabrikam", None)
        .await
        .unwrap()
        .id;
    let now = Utc::now();
    c.store.register_node(&node("a"), now).await.unwrap();
    c.store.claim_mailboxes("a", now, soon(), 10).await.unwrap();
    let mine = c.store.list_nodes(&c.org, Utc::now()).await.unwrap();
    let theirs = c.store.list_nodes(&other, Utc::now()).await.unwrap();
    assert_eq!((mine[0].mailboxes, theirs[0].mailboxes), (4, 0));
    assert!(
        c.store
            .node_mailboxes(&other, "a", Utc::now(), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "another organization sees none of these mailboxes"
    );
    // Keyset pages by address cover every mailbox once.
    let first = c
        .store
        .node_mailboxes(&c.org, "a", Utc::now(), None, 3)
        .await
        .unwrap();
    let rest = c
        .store
        .node_mailboxes(&c.org, "a", Utc::now(), Some(&first[2].email_address), 3)
        .await
        .unwrap();
    assert_eq!((first.len(), rest.len()), (3, 1));
}

async fn a_restarted_node_finds_its_own_leased_mailboxes_due(backend: Backend) {
    let c = Cluster::start(backend, 1).await;
    let m = &c.eligible[0];
    let now = Utc::now();
    c.store.claim_mailboxes("a", now, soon(), 10).await.unwrap();
    // A run of "a" held the lease when the process was killed; "a" restarts.
    assert!(c.store.acquire_lease(m, "a", now, soon()).await.unwrap());
    let due = c.store.due_mailboxes("a", Utc::now(), 10).await.unwrap();
    assert_eq!(due.len(), 1, "its own lease does not make it wait: {due:?}");
    assert!(due[0].incoming_due);
    // Another node's live lease still keeps it out.
    c.store.release_lease(m, "a").await.unwrap();
    assert!(
        c.store
            .acquire_lease(m, "b", Utc::now(), soon())
            .await
            .unwrap()
    );
    assert!(
        c.store
            .due_mailboxes("a", Utc::now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}
