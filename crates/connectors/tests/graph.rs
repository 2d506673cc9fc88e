//! The Graph connector against the Graph test server of the testkit, on loopback:
//! delta rounds and their paging, an expired delta link, MIME, moves, categories,
//! sending, deletion, throttling, the per-mailbox concurrency limit,
//! authentication failures, `$batch` and change-notification subscriptions.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailbridge_connectors::graph::{
    DeltaChange, DeltaStep, GraphAnswer, GraphClient, GraphConfig, GraphMailbox, GraphObserver,
    LifecycleEvent, Notification, RetryPolicy, StaticToken, WellKnownFolder, parse_notifications,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope};
use mailbridge_domain::secret::Secret;
use mailbridge_testkit::graph_server::{GraphTestServer, TestTokens};

const BOB: &str = "bob@example.org";
const DELTA: &str = "GET /v1.0/users/{user}/mailFolders/{folder}/messages/delta";
const MIME: &str = "GET /v1.0/users/{user}/messages/{id}/$value";
const CREATE_FOLDER: &str = "POST /v1.0/users/{user}/mailFolders";
const MOVE: &str = "POST /v1.0/users/{user}/messages/{id}/move";

struct Setup {
    graph: GraphTestServer,
    tokens: TestTokens,
    client: GraphClient,
}

impl Setup {
    async fn new(page_size: u32) -> Setup {
        mailbridge_connectors::tls::install_crypto_provider();
        let tokens = TestTokens::new("https://graph.microsoft.com");
        let graph = GraphTestServer::start(tokens.token_check()).await;
        graph.add_user(BOB);
        let token = tokens.app_token(&["Mail.ReadWrite", "Mail.Send"]);
        let client = client_with(&graph, &token, page_size);
        Setup {
            graph,
            tokens,
            client,
        }
    }

    fn bob(&self) -> GraphMailbox {
        self.client.mailbox(BOB)
    }

    fn deliver(&self, n: usize) -> String {
        self.graph.deliver(BOB, "inbox", &mime(n))
    }
}

fn client_with(graph: &GraphTestServer, token: &str, page_size: u32) -> GraphClient {
    let cfg = GraphConfig {
        base_url: graph.base_url().to_owned(),
        timeout: Duration::from_secs(10),
        delta_page_size: page_size,
        retry: RetryPolicy {
            max_retries: 3,
            max_wait: Duration::from_secs(10),
        },
        ..GraphConfig::default()
    };
    GraphClient::new(cfg, Arc::new(StaticToken(Secret::new(token)))).expect("a Graph client")
}

fn mime(n: usize) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: Message {n}\r\n\
         Message-ID: <m{n}@example.org>\r\nDate: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\nBody {n}\r\n"
    )
    .into_bytes()
}

fn subjects(changes: &[DeltaChange]) -> BTreeSet<String> {
    changes
        .iter()
        .filter_map(|c| match c {
            DeltaChange::Upserted(m) => m.subject.clone(),
            DeltaChange::Removed { .. } => None,
        })
        .collect()
}

async fn inbox_id(bob: &GraphMailbox) -> String {
    bob.well_known_folder(WellKnownFolder::Inbox)
        .await
        .expect("the inbox")
        .id
}

#[tokio::test]
async fn the_first_delta_round_pages_by_the_preferred_size() {
    let s = Setup::new(2).await;
    for n in 1..=5 {
        s.deliver(n);
    }
    let bob = s.bob();
    let inbox = inbox_id(&bob).await;
    let mut state: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let DeltaStep::Batch(b) = bob
            .delta_page(&inbox, state.as_deref())
            .await
            .expect("a page")
        else {
            panic!("no restart on a first round");
        };
        pages.push(b.changes.len());
        state = Some(b.state.clone());
        if !b.more {
            assert!(b.state.contains("$deltatoken="), "{}", b.state);
            break;
        }
        assert!(b.state.contains("$skiptoken="), "{}", b.state);
    }
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(s.graph.request_count(DELTA), 3);
    assert_eq!(s.graph.requests_without_immutable_ids(), 0);
    let round = bob
        .delta_round(&inbox, state.as_deref())
        .await
        .expect("an empty round");
    assert!(round.changes.is_empty(), "{:?}", round.changes);
}

#[tokio::test]
async fn the_next_round_has_new_changed_and_removed_messages() {
    let s = Setup::new(10).await;
    let ids: Vec<String> = (1..=4).map(|n| s.deliver(n)).collect();
    let bob = s.bob();
    let inbox = inbox_id(&bob).await;
    let first = bob
        .delta_round(&inbox, None)
        .await
        .expect("the first round");
    assert_eq!(subjects(&first.changes).len(), 4);

    let new = s.deliver(5);
    s.graph.delete_message(BOB, &ids[0]);
    s.graph.set_categories(BOB, &ids[1], &["Tracked"]);
    s.graph.move_message(BOB, &ids[2], "archive");

    let next = bob
        .delta_round(&inbox, Some(&first.delta_link))
        .await
        .expect("the next round");
    assert!(!next.restarted);
    let mut upserted = Vec::new();
    let mut removed = BTreeSet::new();
    for c in &next.changes {
        match c {
            DeltaChange::Upserted(m) => upserted.push((m.id.clone(), m.categories.clone())),
            DeltaChange::Removed { id, .. } => {
                removed.insert(id.clone());
            }
        }
    }
    upserted.sort();
    let mut expected = vec![
        (ids[1].clone(), vec!["Tracked".to_owned()]),
        (new, Vec::new()),
    ];
    expected.sort();
    assert_eq!(upserted, expected);
    assert_eq!(removed, BTreeSet::from([ids[0].clone(), ids[2].clone()]));
}

#[tokio::test]
async fn an_expired_delta_link_restarts_with_one_clean_full_read() {
    let s = Setup::new(2).await;
    for n in 1..=3 {
        s.deliver(n);
    }
    let bob = s.bob();
    let inbox = inbox_id(&bob).await;
    let first = bob
        .delta_round(&inbox, None)
        .await
        .expect("the first round");
    s.deliver(4);
    s.graph.expire_delta_tokens();

    let step = bob
        .delta_page(&inbox, Some(&first.delta_link))
        .await
        .expect("a step");
    assert_eq!(step, DeltaStep::Restart);

    let again = bob
        .delta_round(&inbox, Some(&first.delta_link))
        .await
        .expect("a re-read");
    assert!(again.restarted);
    let ids: Vec<&str> = again
        .changes
        .iter()
        .map(|c| match c {
            DeltaChange::Upserted(m) => m.id.as_str(),
            DeltaChange::Removed { id, .. } => id.as_str(),
        })
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (4, 4),
        "every message once: {ids:?}"
    );
    assert_eq!(
        subjects(&again.changes),
        (1..=4).map(|n| format!("Message {n}")).collect()
    );
    let after = bob
        .delta_round(&inbox, Some(&again.delta_link))
        .await
        .expect("the state works again");
    assert!(after.changes.is_empty() && !after.restarted);
}

#[tokio::test]
async fn mime_is_returned_as_delivered() {
    let s = Setup::new(10).await;
    let id = s.deliver(1);
    let bytes = s.bob().fetch_mime(&id).await.expect("the MIME");
    assert_eq!(bytes, mime(1));
    let m = s.bob().message(&id).await.expect("the message");
    assert_eq!(m.internet_message_id.as_deref(), Some("<m1@example.org>"));
}

#[tokio::test]
async fn undeliverable_is_created_once_and_moves_keep_the_id() {
    let s = Setup::new(10).await;
    let id = s.deliver(1);
    let bob = s.bob();
    let folder = bob.ensure_folder("Undeliverable").await.expect("created");
    let again = bob.ensure_folder("Undeliverable").await.expect("found");
    assert_eq!(folder.id, again.id);
    assert_eq!(s.graph.request_count(CREATE_FOLDER), 1);

    let moved = bob.move_to(&id, &folder.id).await.expect("moved");
    assert_eq!(moved.id, id, "an immutable id survives the move");
    assert_eq!(moved.parent_folder_id.as_deref(), Some(folder.id.as_str()));
    assert_eq!(
        s.graph.message(BOB, &id).expect("stored").folder_id,
        folder.id
    );
    let names: Vec<String> = bob
        .list_folders()
        .await
        .expect("folders")
        .into_iter()
        .map(|f| f.display_name)
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "Undeliverable").count(),
        1,
        "{names:?}"
    );
}

#[tokio::test]
async fn categories_are_the_tracking_keyword() {
    let s = Setup::new(10).await;
    let id = s.deliver(1);
    s.graph.add_category(BOB, &id, "Red");
    let bob = s.bob();
    let mut categories = bob.message(&id).await.expect("read").categories;
    categories.push("Tracked".to_owned());
    let updated = bob.set_categories(&id, &categories).await.expect("updated");
    assert_eq!(updated.categories, ["Red", "Tracked"]);
    assert_eq!(
        s.graph.message(BOB, &id).expect("stored").categories,
        ["Red", "Tracked"]
    );
}

#[tokio::test]
async fn mime_is_sent_as_the_mailbox_and_saved_to_sent_items() {
    let s = Setup::new(10).await;
    let raw = b"From: bob@example.org\r\nTo: carol@example.net\r\nCc: dan@example.net\r\nSubject: Quote\r\nMessage-ID: <q1@example.org>\r\n\r\nHello\r\n";
    s.bob().send_mime(raw).await.expect("sent");
    let sent = s.graph.sent_mail();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].mime, raw);
    assert!(sent[0].was_mime);
    assert_eq!(sent[0].recipients, ["carol@example.net", "dan@example.net"]);
    let copies = s.graph.messages_in(BOB, "sentitems");
    assert_eq!(copies.len(), 1);
    assert_eq!(Some(copies[0].id.clone()), sent[0].saved_copy_id);
    assert_eq!(
        copies[0].internet_message_id.as_deref(),
        Some("<q1@example.org>")
    );
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_is_found_in_sent_items_by_message_id() {
    let s = Setup::new(10).await;
    let bob = s.bob();
    let raw = b"From: bob@example.org\r\nTo: carol@example.net\r\nSubject: Quote\r\nMessage-ID: <o'neil.1@example.org>\r\n\r\nHello\r\n";
    s.graph.lose_next_send_answers(1);
    let e = bob.send_mime(raw).await.expect_err("the answer is lost");
    assert!(
        matches!(e.class, ErrorClass::Transient { .. }),
        "a lost answer is transient: {e:?}"
    );
    assert_eq!(s.graph.sent_mail().len(), 1, "yet it was sent");
    let copy = s.graph.messages_in(BOB, "sentitems")[0].id.clone();
    // With or without brackets; the quote in it is escaped as OData wants.
    for id in ["<o'neil.1@example.org>", "o'neil.1@example.org"] {
        let found = bob.find_by_message_id("sentitems", id).await.unwrap();
        assert_eq!(found, vec![copy.clone()], "{id}");
    }
    let none = bob
        .find_by_message_id("sentitems", "<other@example.org>")
        .await
        .unwrap();
    assert!(none.is_empty());
    // Only in the folder asked about.
    assert!(
        bob.find_by_message_id("inbox", "<o'neil.1@example.org>")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn throttled_requests_wait_the_retry_after_then_succeed() {
    let s = Setup::new(10).await;
    let id = s.deliver(1);
    // An observer (the engine's metrics) is told of every answer.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tell = seen.clone();
    let observed = GraphClient::new(
        GraphConfig {
            base_url: s.graph.base_url().to_owned(),
            observer: Some(GraphObserver(Arc::new(move |a: GraphAnswer| {
                tell.lock().unwrap().push((a.status, a.throttled()));
            }))),
            ..GraphConfig::default()
        },
        Arc::new(StaticToken(Secret::new(
            s.tokens.app_token(&["Mail.ReadWrite"]),
        ))),
    )
    .unwrap();
    s.graph.throttle_next(1, Duration::from_secs(1));
    s.graph.unavailable_next(1, Duration::from_secs(1));
    let started = Instant::now();
    let bytes = observed
        .mailbox(BOB)
        .fetch_mime(&id)
        .await
        .expect("the MIME after two waits");
    assert_eq!(
        *seen.lock().unwrap(),
        [(429, true), (503, true), (200, false)]
    );
    let waited = started.elapsed();
    assert_eq!(bytes, mime(1));
    assert!(waited >= Duration::from_secs(2), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(6), "waited {waited:?}");
    assert_eq!(s.graph.request_count(MIME), 3);
}

#[tokio::test]
async fn a_retry_after_beyond_the_longest_wait_goes_back_to_the_engine() {
    let s = Setup::new(10).await;
    let id = s.deliver(1);
    s.graph.throttle_next(1, Duration::from_secs(90));
    let started = Instant::now();
    let e = s.bob().fetch_mime(&id).await.expect_err("not waited for");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        (e.class, e.scope),
        (
            ErrorClass::Transient {
                retry_after: Some(Duration::from_secs(90))
            },
            ErrorScope::Mailbox
        )
    );
}

#[tokio::test]
async fn at_most_four_requests_run_at_once_per_mailbox() {
    let s = Setup::new(10).await;
    s.graph.add_user("carol@example.org");
    let ids: Vec<String> = (1..=12).map(|n| s.deliver(n)).collect();
    let carol_ids: Vec<String> = (1..=6)
        .map(|n| s.graph.deliver("carol@example.org", "inbox", &mime(n)))
        .collect();
    s.graph.set_latency(Duration::from_millis(100));
    let bob = s.bob();
    // Two handles of the same mailbox (from clones of the client) share the limit.
    let other = s.client.clone().mailbox(BOB);
    let carol = s.client.mailbox("carol@example.org");
    let (a, b, c) = tokio::join!(
        bob.fetch_mime_many(&ids[..6]),
        other.fetch_mime_many(&ids[6..]),
        carol.fetch_mime_many(&carol_ids)
    );
    for r in a.iter().chain(&b).chain(&c) {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(s.graph.max_concurrency(BOB), 4);
    assert_eq!(s.graph.max_concurrency("carol@example.org"), 4);
}

#[tokio::test]
async fn bad_tokens_fail_authentication_for_the_profile() {
    let s = Setup::new(10).await;
    let stranger = TestTokens::new("https://graph.microsoft.com");
    let cases = [
        (
            "signed by another key",
            stranger.app_token(&["Mail.ReadWrite"]),
        ),
        ("expired", s.tokens.expired_token(&["Mail.ReadWrite"])),
        ("not a JWT", "not-a-token".to_owned()),
    ];
    for (why, token) in cases {
        let client = client_with(&s.graph, &token, 10);
        let e = client
            .mailbox(BOB)
            .well_known_folder(WellKnownFolder::Inbox)
            .await
            .expect_err(why);
        assert_eq!(
            (e.class, e.scope),
            (ErrorClass::Permanent, ErrorScope::Profile),
            "{why}"
        );
        assert!(
            e.message.starts_with("Failed Authentication: "),
            "{why}: {}",
            e.message
        );
    }
    let read_only = client_with(&s.graph, &s.tokens.app_token(&["Mail.Read"]), 10);
    let e = read_only
        .mailbox(BOB)
        .send_mime(&mime(1))
        .await
        .expect_err("no Mail.Send");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile)
    );
    assert!(e.message.contains("denied"), "{}", e.message);
    let e = s
        .client
        .mailbox("nobody@example.org")
        .well_known_folder(WellKnownFolder::Inbox)
        .await
        .expect_err("no such mailbox");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox)
    );
}

#[tokio::test]
async fn batched_moves_take_one_round_trip_per_twenty() {
    let s = Setup::new(10).await;
    let ids: Vec<String> = (1..=25).map(|n| s.deliver(n)).collect();
    let bob = s.bob();
    let folder = bob
        .ensure_folder("Undeliverable")
        .await
        .expect("the folder");
    let before = s.graph.round_trips();
    // The first request inside the batch is throttled and sent again in a second batch.
    s.graph.throttle_next(1, Duration::from_secs(1));
    let results = bob.move_many(&ids, &folder.id).await.expect("the batches");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        s.graph.round_trips() - before,
        3,
        "two batches, then one for the throttled move"
    );
    assert_eq!(s.graph.request_count(MOVE), 26);
    assert_eq!(s.graph.batched_requests(), 26);
    assert_eq!(s.graph.messages_in(BOB, "Undeliverable").len(), 25);
    assert_eq!(s.graph.requests_without_immutable_ids(), 0);

    let tagged: Vec<(String, Vec<String>)> = ids[..3]
        .iter()
        .map(|id| (id.clone(), vec!["Tracked".to_owned()]))
        .collect();
    let results = bob.set_categories_many(&tagged).await.expect("a batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        s.graph.message(BOB, &ids[0]).expect("stored").categories,
        ["Tracked"]
    );
    let gone = bob
        .move_many(&["AAMkNoSuchMessage=".to_owned()], &folder.id)
        .await
        .expect("a batch");
    let e = gone[0].as_ref().expect_err("an unknown message");
    assert_eq!(e.scope, ErrorScope::Item);
}

#[tokio::test]
async fn deleted_messages_go_to_deleted_items_then_for_good() {
    let s = Setup::new(10).await;
    let ids: Vec<String> = (1..=3).map(|n| s.deliver(n)).collect();
    let bob = s.bob();
    let results = bob.delete_many(&ids[..2]).await.expect("a batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        s.graph
            .request_count("DELETE /v1.0/users/{user}/messages/{id}"),
        2
    );
    let inbox: Vec<String> = s
        .graph
        .messages_in(BOB, "inbox")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(inbox, [ids[2].clone()], "only the third stays");
    let trash = s.graph.messages_in(BOB, "deleteditems");
    assert_eq!(trash.len(), 2, "restorable from Deleted Items");
    // Deleted again from Deleted Items: gone; then unknown, an item error.
    let again = bob.delete_many(&ids[..1]).await.expect("a batch");
    assert!(again[0].is_ok(), "{again:?}");
    assert!(s.graph.message(BOB, &ids[0]).is_none());
    let gone = bob.delete_many(&ids[..1]).await.expect("a batch");
    let e = gone[0].as_ref().expect_err("gone");
    assert_eq!(e.scope, ErrorScope::Item);
}

/// A notification endpoint of a test's own: it answers the validation handshake
/// and keeps what is posted.
async fn notification_endpoint() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    use axum::extract::{Query, State};
    use std::collections::HashMap;
    type Posts = Arc<Mutex<Vec<Vec<u8>>>>;
    async fn receive(
        State(posts): State<Posts>,
        Query(q): Query<HashMap<String, String>>,
        body: axum::body::Bytes,
    ) -> (
        axum::http::StatusCode,
        [(&'static str, &'static str); 1],
        String,
    ) {
        if let Some(token) = q.get("validationToken") {
            return (
                axum::http::StatusCode::OK,
                [("content-type", "text/plain")],
                token.clone(),
            );
        }
        posts.lock().unwrap().push(body.to_vec());
        (
            axum::http::StatusCode::ACCEPTED,
            [("content-type", "text/plain")],
            String::new(),
        )
    }
    let posts: Posts = Arc::default();
    let app = axum::Router::new()
        .route("/notify", axum::routing::post(receive))
        .route("/lifecycle", axum::routing::post(receive))
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), posts)
}

async fn wait_for_posts(posts: &Mutex<Vec<Vec<u8>>>, n: usize) -> Vec<Vec<u8>> {
    for _ in 0..100 {
        if posts.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    posts.lock().unwrap().clone()
}

#[tokio::test]
async fn subscriptions_wake_on_new_mail_renew_and_report_lifecycle_events() {
    let s = Setup::new(10).await;
    let (url, posts) = notification_endpoint().await;
    let bob = s.bob();
    let inbox = inbox_id(&bob).await;
    let sub = bob
        .subscribe(
            &inbox,
            &format!("{url}/notify"),
            Some(&format!("{url}/lifecycle")),
            "s3cret",
            4230,
        )
        .await
        .expect("subscribed");
    assert_eq!(s.graph.subscriptions().len(), 1);

    s.deliver(1);
    let got = wait_for_posts(&posts, 1).await;
    let notes = parse_notifications(&got[0], "s3cret").expect("a notification");
    match &notes[..] {
        [
            Notification::Changed {
                subscription_id,
                change_type,
                trusted,
                ..
            },
        ] => {
            assert_eq!(
                (subscription_id.as_str(), change_type.as_str(), *trusted),
                (sub.id.as_str(), "created", true)
            );
        }
        other => panic!("{other:?}"),
    }

    let renewed = bob
        .renew_subscription(&sub.id, 4000)
        .await
        .expect("renewed");
    assert!(renewed.expiration_date_time < sub.expiration_date_time);
    let status = s
        .graph
        .send_lifecycle_event(&sub.id, "reauthorizationRequired")
        .await;
    assert_eq!(status, 202);
    let got = wait_for_posts(&posts, 2).await;
    let notes = parse_notifications(&got[1], "s3cret").expect("an event");
    assert!(matches!(
        &notes[..],
        [Notification::Lifecycle {
            event: LifecycleEvent::ReauthorizationRequired,
            trusted: true,
            ..
        }]
    ));

    s.graph.set_subscription_max_minutes(60);
    let e = bob
        .renew_subscription(&sub.id, 120)
        .await
        .expect_err("beyond the limit");
    assert_eq!(e.class, ErrorClass::Permanent);
    bob.delete_subscription(&sub.id).await.expect("deleted");
    assert!(s.graph.subscriptions().is_empty());

    let e = bob
        .subscribe(&inbox, "http://127.0.0.1:9/nowhere", None, "x", 30)
        .await
        .expect_err("validation fails");
    assert!(e.message.contains("ValidationError"), "{}", e.message);
}
