//! The inbound listener's store, on both SQLite and PostgreSQL: a received message
//! is written for all its recipients at once with a per-mailbox seq, claimed once
//! (never by two workers at a time), marked processed, or given back after a failure.

use std::time::Duration;

use mailbridge_domain::{DeliveryMethod, Role, TrackingFilter};
use mailbridge_store::{Cipher, InboundRecipient, NewUser, PageRequest, ReceivedMessage, Store};

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
    router_mailboxes_are_listed,
    a_message_is_stored_for_all_recipients_with_a_seq_each,
    claims_are_exclusive_and_processed_messages_are_not_claimed_again,
    a_released_message_is_claimed_again_and_a_given_up_one_is_not,
    a_failed_store_writes_nothing,
    a_mailbox_list_is_newest_first_paged_filtered_and_without_bytes,
    a_failed_message_is_retried_with_its_failed_decision_removed,
    only_a_failed_message_is_retried,
    counts_are_per_status_and_per_mailbox,
);

/// seq, raw, recipient, tag, status.
type Summary<'a> = (i64, &'a [u8], &'a str, Option<&'a str>, &'a str);

struct World {
    store: Store,
    org: String,
    /// Router mailboxes: sales@, support@.
    sales: String,
    support: String,
    _dir: tempfile::TempDir,
}

async fn world(backend: Backend) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => dir.path().join("inbound.db").display().to_string(),
        Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
    };
    let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
    let store = Store::open(&url, cipher).await.expect("store opens");
    let org = store
        .create_organization("Contoso", None)
        .await
        .expect("organization")
        .id;
    let mut ids = Vec::new();
    for (name, router) in [("sales", true), ("support", true), ("plain", false)] {
        let user = store
            .create_user(
                &org,
                NewUser {
                    full_name: name.to_owned(),
                    email: Some(format!("{name}@contoso.com")),
                    role: Role::User,
                    tracking_filter: TrackingFilter::None,
                },
            )
            .await
            .expect("user");
        if router {
            let mut m = store
                .get_mailbox(&org, &user.mailbox_id)
                .await
                .expect("mailbox");
            m.incoming_method = DeliveryMethod::Router;
            store.update_mailbox(&m, None).await.expect("update");
        }
        ids.push(user.mailbox_id);
    }
    World {
        store,
        sales: ids[0].clone(),
        support: ids[1].clone(),
        org,
        _dir: dir,
    }
}

impl World {
    fn recipient(&self, mailbox: &str, address: &str, tag: Option<&str>) -> InboundRecipient {
        InboundRecipient {
            org_id: self.org.clone(),
            mailbox_id: mailbox.to_owned(),
            recipient: address.to_owned(),
            tag: tag.map(str::to_owned),
        }
    }

    async fn receive(&self, raw: &[u8], recipients: &[InboundRecipient]) {
        self.store
            .store_inbound_message(&ReceivedMessage {
                raw,
                envelope_from: "alice@fabrikam.com",
                client_address: "127.0.0.1",
                recipients,
            })
            .await
            .expect("stored");
    }
}

async fn router_mailboxes_are_listed(backend: Backend) {
    let w = world(backend).await;
    let mut got = w.store.router_addresses().await.expect("addresses");
    got.sort();
    let mut want = vec![
        (
            w.org.clone(),
            w.sales.clone(),
            "sales@contoso.com".to_owned(),
        ),
        (
            w.org.clone(),
            w.support.clone(),
            "support@contoso.com".to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);

    // Each organization with a router mailbox, with its message size limit: the
    // default (25 MB) until its settings change it.
    let limits = w.store.router_message_limits().await.expect("limits");
    assert_eq!(limits, [(w.org.clone(), 25_600)]);
    let mut settings = w.store.get_email_settings(&w.org).await.expect("settings");
    settings.max_message_size_kb = 1_024;
    let saved = w
        .store
        .update_email_settings(&w.org, &settings)
        .await
        .expect("saved");
    assert_eq!(saved.max_message_size_kb, 1_024);
    let limits = w.store.router_message_limits().await.expect("limits");
    assert_eq!(limits, [(w.org.clone(), 1_024)]);
    // An organization without router mailboxes is not listed.
    w.store
        .create_organization("Fabrikam", None)
        .await
        .expect("org");
    let limits = w.store.router_message_limits().await.expect("limits");
    assert_eq!(limits.len(), 1);
}

async fn a_message_is_stored_for_all_recipients_with_a_seq_each(backend: Backend) {
    let w = world(backend).await;
    let both = [
        w.recipient(&w.sales, "sales+lead-x@contoso.com", Some("lead-x")),
        w.recipient(&w.support, "support@contoso.com", None),
    ];
    w.receive(b"first", &both).await;
    w.receive(b"second", &both[..1]).await;
    let sales = w
        .store
        .inbound_messages_of_mailbox(&w.org, &w.sales)
        .await
        .expect("sales");
    let summary: Vec<Summary> = sales
        .iter()
        .map(|m| {
            (
                m.seq,
                m.raw.as_slice(),
                m.recipient.as_str(),
                m.tag.as_deref(),
                m.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                1,
                b"first".as_slice(),
                "sales+lead-x@contoso.com",
                Some("lead-x"),
                "pending"
            ),
            (
                2,
                b"second".as_slice(),
                "sales+lead-x@contoso.com",
                Some("lead-x"),
                "pending"
            ),
        ]
    );
    assert_eq!(sales[0].envelope_from, "alice@fabrikam.com");
    assert_eq!(sales[0].client_address, "127.0.0.1");
    let support = w
        .store
        .inbound_messages_of_mailbox(&w.org, &w.support)
        .await
        .expect("support");
    assert_eq!(support.iter().map(|m| m.seq).collect::<Vec<_>>(), [1]);
}

async fn claims_are_exclusive_and_processed_messages_are_not_claimed_again(backend: Backend) {
    let w = world(backend).await;
    for i in 0..10 {
        w.receive(
            format!("m{i}").as_bytes(),
            &[w.recipient(&w.sales, "sales@contoso.com", None)],
        )
        .await;
    }
    let lease = Duration::from_secs(60);
    // Two workers claim at once: every message goes to exactly one.
    let (a, b) = tokio::join!(
        w.store.claim_inbound_messages("node-a", lease, 6),
        w.store.claim_inbound_messages("node-b", lease, 6),
    );
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    let mut seqs: Vec<i64> = a.iter().chain(&b).map(|m| m.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), a.len() + b.len(), "a message was claimed twice");
    assert_eq!(seqs.len(), 10);
    assert!(a.iter().all(|m| m.attempts == 1));
    // Another node cannot complete what it did not claim.
    assert!(
        !w.store
            .complete_inbound_message(&a[0].id, "node-b")
            .await
            .expect("complete")
    );
    for m in &a {
        assert!(
            w.store
                .complete_inbound_message(&m.id, "node-a")
                .await
                .expect("complete")
        );
    }
    assert!(
        w.store
            .claim_inbound_messages("node-c", lease, 100)
            .await
            .expect("claim")
            .is_empty()
    );
    let all = w
        .store
        .inbound_messages_of_mailbox(&w.org, &w.sales)
        .await
        .expect("list");
    assert_eq!(
        all.iter().filter(|m| m.status == "processed").count(),
        a.len()
    );
    // node-b's claims still hold: nobody else gets them.
    let others = w.store.claim_inbound_messages("node-c", lease, 100).await;
    assert!(others.expect("claim").is_empty());
    for m in &b {
        assert!(
            w.store
                .complete_inbound_message(&m.id, "node-b")
                .await
                .expect("complete")
        );
    }
}

async fn a_released_message_is_claimed_again_and_a_given_up_one_is_not(backend: Backend) {
    let w = world(backend).await;
    w.receive(b"x", &[w.recipient(&w.sales, "sales@contoso.com", None)])
        .await;
    w.receive(b"y", &[w.recipient(&w.sales, "sales@contoso.com", None)])
        .await;
    let lease = Duration::from_secs(60);
    // A claim whose node died (here: a lease of zero) runs out and is taken over.
    let dead = w
        .store
        .claim_inbound_messages("dead", Duration::ZERO, 10)
        .await;
    assert_eq!(dead.expect("claim").len(), 2);
    let claimed = w
        .store
        .claim_inbound_messages("n", lease, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    let stale = w
        .store
        .complete_inbound_message(&claimed[0].id, "dead")
        .await;
    assert!(
        !stale.expect("complete"),
        "the dead node's claim no longer holds"
    );
    assert!(
        w.store
            .release_inbound_message(&claimed[0].id, "n", "store down", false)
            .await
            .expect("release")
    );
    assert!(
        w.store
            .release_inbound_message(&claimed[1].id, "n", "unparseable", true)
            .await
            .expect("give up")
    );
    let again = w
        .store
        .claim_inbound_messages("n", lease, 10)
        .await
        .expect("claim");
    assert_eq!(
        again
            .iter()
            .map(|m| (m.seq, m.attempts))
            .collect::<Vec<_>>(),
        [(claimed[0].seq, 3)]
    );
    assert_eq!(again[0].last_error.as_deref(), Some("store down"));
    let all = w
        .store
        .inbound_messages_of_mailbox(&w.org, &w.sales)
        .await
        .expect("list");
    assert_eq!(all[1].status, "failed");
    assert_eq!(all[1].last_error.as_deref(), Some("unparseable"));
}

async fn a_failed_store_writes_nothing(backend: Backend) {
    let w = world(backend).await;
    // The second recipient's mailbox does not exist: the transaction fails and the
    // first recipient's row is not left behind either.
    let result = w
        .store
        .store_inbound_message(&ReceivedMessage {
            raw: b"z",
            envelope_from: "",
            client_address: "",
            recipients: &[
                w.recipient(&w.sales, "sales@contoso.com", None),
                w.recipient("no-such-mailbox", "ghost@contoso.com", None),
            ],
        })
        .await;
    assert!(result.is_err());
    assert!(
        w.store
            .inbound_messages_of_mailbox(&w.org, &w.sales)
            .await
            .expect("list")
            .is_empty()
    );
    // The seq it would have taken is not burnt either: the counter rolled back.
    w.receive(b"ok", &[w.recipient(&w.sales, "sales@contoso.com", None)])
        .await;
    let all = w
        .store
        .inbound_messages_of_mailbox(&w.org, &w.sales)
        .await
        .expect("list");
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1]);
}

/// Receives `n` messages for sales@ with the bodies `m1`, `m2`…
async fn receive_many(w: &World, n: usize) {
    for i in 1..=n {
        w.receive(
            format!("Subject: m{i}\r\n\r\nbody").as_bytes(),
            &[w.recipient(&w.sales, "sales@contoso.com", None)],
        )
        .await;
    }
}

/// Claims every pending message and gives up on the one with `seq`, releasing
/// the others back to pending.
async fn fail_seq(w: &World, seq: i64) -> String {
    let claimed = w
        .store
        .claim_inbound_messages("n", Duration::from_secs(60), 100)
        .await
        .expect("claim");
    let mut failed = None;
    for m in &claimed {
        let give_up = m.seq == seq && m.mailbox_id == w.sales;
        assert!(
            w.store
                .release_inbound_message(&m.id, "n", "boom", give_up)
                .await
                .expect("release")
        );
        if give_up {
            failed = Some(m.id.clone());
        }
    }
    failed.expect("the message was claimed")
}

async fn a_mailbox_list_is_newest_first_paged_filtered_and_without_bytes(backend: Backend) {
    let w = world(backend).await;
    receive_many(&w, 5).await;
    w.receive(
        b"other",
        &[w.recipient(&w.support, "support@contoso.com", None)],
    )
    .await;
    let mut seqs = Vec::new();
    let mut cursor = None;
    loop {
        let page = w
            .store
            .list_inbound_messages(
                &w.org,
                &w.sales,
                None,
                &PageRequest {
                    after: cursor.clone(),
                    limit: Some(2),
                },
            )
            .await
            .expect("list");
        assert!(page.items.len() <= 2);
        seqs.extend(page.items.iter().map(|m| m.seq));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seqs, [5, 4, 3, 2, 1], "newest first, every one once");
    let first = w
        .store
        .list_inbound_messages(&w.org, &w.sales, None, &PageRequest::default())
        .await
        .expect("list");
    let newest = &first.items[0];
    let raw = b"Subject: m5\r\n\r\nbody";
    assert_eq!(newest.size, raw.len() as i64);
    assert_eq!(newest.head, raw);
    assert_eq!(newest.recipient, "sales@contoso.com");
    assert_eq!(newest.envelope_from, "alice@fabrikam.com");
    assert_eq!(newest.status, "pending");
    // Only the head of a large message is read.
    let big = vec![b'a'; 20_000];
    w.receive(&big, &[w.recipient(&w.sales, "sales@contoso.com", None)])
        .await;
    let page = w
        .store
        .list_inbound_messages(&w.org, &w.sales, None, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(page.items[0].size, 20_000);
    assert_eq!(page.items[0].head.len(), 8192);

    fail_seq(&w, 2).await;
    let failed = w
        .store
        .list_inbound_messages(&w.org, &w.sales, Some("failed"), &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(failed.items.iter().map(|m| m.seq).collect::<Vec<_>>(), [2]);
    assert_eq!(failed.items[0].last_error.as_deref(), Some("boom"));
    let pending = w
        .store
        .list_inbound_messages(&w.org, &w.sales, Some("pending"), &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(
        pending.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [6, 5, 4, 3, 1]
    );
    // Another organization sees nothing of this mailbox.
    let other = w
        .store
        .create_organization("Fabrikam", None)
        .await
        .expect("organization");
    let none = w
        .store
        .list_inbound_messages(&other.id, &w.sales, None, &PageRequest::default())
        .await
        .expect("list");
    assert!(none.items.is_empty());
}

async fn a_failed_message_is_retried_with_its_failed_decision_removed(backend: Backend) {
    let w = world(backend).await;
    receive_many(&w, 2).await;
    let id = fail_seq(&w, 2).await;
    // What the worker records when it gives up on seq 2, and a decision taken on seq 1.
    for (uid, outcome) in [(2, "failed"), (1, "skipped")] {
        w.store
            .record_item_failure(
                &w.org, &w.sales, "router", 1, uid, None, None, outcome, "boom", true,
            )
            .await
            .expect("decision");
    }
    let decided = |w: &World| {
        let store = w.store.clone();
        let sales = w.sales.clone();
        async move {
            store
                .decided_uids(&sales, "router", 1, 1)
                .await
                .expect("decided")
                .into_iter()
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(decided(&w).await, [1, 2]);
    assert!(
        w.store
            .retry_inbound_message(&w.org, &w.sales, &id)
            .await
            .expect("retry")
    );
    assert_eq!(
        decided(&w).await,
        [1],
        "only the failed decision is removed"
    );
    let m = w
        .store
        .get_inbound_message(&w.org, &w.sales, &id)
        .await
        .expect("get");
    assert_eq!((m.status.as_str(), m.attempts), ("pending", 0));
    // The worker takes it again at once.
    let claimed = w
        .store
        .claim_inbound_messages("n2", Duration::from_secs(60), 100)
        .await
        .expect("claim");
    assert!(claimed.iter().any(|c| c.id == id && c.attempts == 1));
    // Retrying twice changes nothing the second time.
    assert!(
        !w.store
            .retry_inbound_message(&w.org, &w.sales, &id)
            .await
            .expect("retry")
    );
}

async fn only_a_failed_message_is_retried(backend: Backend) {
    let w = world(backend).await;
    receive_many(&w, 3).await;
    let failed = fail_seq(&w, 3).await;
    let all = w
        .store
        .inbound_messages_of_mailbox(&w.org, &w.sales)
        .await
        .expect("list");
    // seq 1 processed, seq 2 pending.
    let claimed = w
        .store
        .claim_inbound_messages("n", Duration::from_secs(60), 100)
        .await
        .expect("claim");
    let first = claimed.iter().find(|m| m.seq == 1).expect("seq 1");
    assert!(
        w.store
            .complete_inbound_message(&first.id, "n")
            .await
            .expect("complete")
    );
    for m in &all[..2] {
        assert!(
            !w.store
                .retry_inbound_message(&w.org, &w.sales, &m.id)
                .await
                .expect("retry"),
            "seq {} is not failed",
            m.seq
        );
    }
    let statuses = w
        .store
        .inbound_messages_of_mailbox(&w.org, &w.sales)
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.status)
        .collect::<Vec<_>>();
    assert_eq!(statuses, ["processed", "pending", "failed"]);
    // Not through another mailbox or organization either.
    assert!(
        !w.store
            .retry_inbound_message(&w.org, &w.support, &failed)
            .await
            .expect("retry")
    );
    let other = w
        .store
        .create_organization("Fabrikam", None)
        .await
        .expect("organization");
    assert!(
        !w.store
            .retry_inbound_message(&other.id, &w.sales, &failed)
            .await
            .expect("retry")
    );
    assert!(
        w.store
            .retry_inbound_message(&w.org, &w.sales, &failed)
            .await
            .expect("retry")
    );
}

async fn counts_are_per_status_and_per_mailbox(backend: Backend) {
    let w = world(backend).await;
    let empty = w
        .store
        .inbound_message_counts(&w.org, &w.sales)
        .await
        .expect("counts");
    assert_eq!(
        (empty.pending, empty.held, empty.processed, empty.failed),
        (0, 0, 0, 0)
    );
    receive_many(&w, 4).await;
    w.receive(
        b"other",
        &[w.recipient(&w.support, "support@contoso.com", None)],
    )
    .await;
    fail_seq(&w, 4).await;
    let claimed = w
        .store
        .claim_inbound_messages("n", Duration::from_secs(60), 100)
        .await
        .expect("claim");
    let one = claimed
        .iter()
        .find(|m| m.seq == 1 && m.mailbox_id == w.sales)
        .expect("seq 1");
    w.store
        .complete_inbound_message(&one.id, "n")
        .await
        .expect("complete");
    let two = claimed
        .iter()
        .find(|m| m.seq == 2 && m.mailbox_id == w.sales)
        .expect("seq 2");
    w.store
        .defer_inbound_messages(
            std::slice::from_ref(&two.id),
            "n",
            chrono::Utc::now() + chrono::Duration::minutes(5),
            "held: the mailbox is not approved",
        )
        .await
        .expect("defer");
    let c = w
        .store
        .inbound_message_counts(&w.org, &w.sales)
        .await
        .expect("counts");
    assert_eq!((c.pending, c.held, c.processed, c.failed), (2, 1, 1, 1));
    let s = w
        .store
        .inbound_message_counts(&w.org, &w.support)
        .await
        .expect("counts");
    assert_eq!((s.pending, s.held, s.processed, s.failed), (1, 0, 0, 0));
}
