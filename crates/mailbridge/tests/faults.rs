//! Faults on the wire: the engine and the API in this process, with a testkit
//! `FaultProxy` in front of each server mailbridge talks to (Dovecot IMAP, the SMTP
//! server, Radicale) that drops, stalls and truncates connections at random points.
//! Messages arrive, emails are sent and ACT items are created on both sides while
//! the faults last; then the faults stop, the engine converges, and every message,
//! email and item must be there exactly once.
//!
//! The seed is printed; `MAILBRIDGE_FAULT_SEED=<seed>` replays the same fault plans
//! (docs/TESTING.md, "Fault proxy").

#[path = "faults/world.rs"]
mod world;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mailbridge_domain::act::model::ActKind;
use mailbridge_testkit::fault_proxy::{FaultConfig, FaultProxy, FaultStats, fault_seed};
use serde_json::json;

use world::{App, Backend, Counts, Member, World, norm_id};

/// Messages delivered into the Inbox while the faults last.
const MESSAGES: usize = 300;
/// Emails queued for sending while the faults last.
const EMAILS: usize = 60;
/// ACT items of each kind (appointment, contact) created on each side.
const ACT_ITEMS: usize = 3;
/// How long the faults last at least, from the first delivery; then until every
/// proxy struck [`MIN_FAULTS`] and every kind struck, [`MAX_FAULT_PHASE`] at most.
const FAULT_PHASE: Duration = Duration::from_secs(20);
const MIN_FAULTS: u64 = 2;
const MAX_FAULT_PHASE: Duration = Duration::from_secs(40);
/// The bound of the clean phase that follows.
const CONVERGE: Duration = Duration::from_secs(45);

/// The end of SMTP's DATA: the request whose answer must not be lost.
const END_OF_DATA: &[u8] = b"\r\n.\r\n";

/// The proxies' fault settings for the random phase (IMAP, SMTP, DAV), with rates
/// fitted to how each protocol uses connections: IMAP and SMTP hold one connection
/// per run, Radicale (HTTP/1.0) takes one per request, a dozen per ACT run. Stalls
/// last up to a second past the network timeout: the longer ones make the engine
/// give up on the connection, the shorter ones only slow it.
fn random_faults(network_timeout: Duration) -> [FaultConfig; 3] {
    let base = FaultConfig {
        probability: 0.7,
        stall_min: Duration::from_millis(200),
        stall_max: network_timeout + Duration::from_secs(1),
        ..FaultConfig::default()
    };
    [
        // A run moves from a few hundred bytes (nothing new) to 100 KB (a few
        // batches of 50): the log-uniform offsets hit both.
        FaultConfig {
            probability: 0.9,
            max_offset: 64 * 1024,
            ..base.clone()
        },
        // About 700 bytes per email towards the server, 60 back.
        FaultConfig {
            max_offset: 4 * 1024,
            unrepeatable_request_end: Some(END_OF_DATA.to_vec()),
            ..base.clone()
        },
        FaultConfig {
            probability: 0.15,
            max_offset: 4 * 1024,
            ..base
        },
    ]
}

/// A proxy in front of each server the profile uses.
struct Proxies {
    imap: FaultProxy,
    smtp: FaultProxy,
    dav: FaultProxy,
}

impl Proxies {
    async fn start(w: &World, seed: u64, [imap, smtp, dav]: [FaultConfig; 3]) -> Proxies {
        let dav_addr = w
            .servers
            .dav_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the DAV URL is http://127.0.0.1:PORT/");
        Proxies {
            imap: FaultProxy::start("imap", w.servers.imap_addr(), seed, imap).await,
            smtp: FaultProxy::start("smtp", w.servers.smtp_addr(), seed, smtp).await,
            dav: FaultProxy::start("dav", dav_addr, seed, dav).await,
        }
    }

    fn set_faults(&self, on: bool) {
        for p in [&self.imap, &self.smtp, &self.dav] {
            p.set_faults(on);
        }
    }

    /// Every proxy struck MIN_FAULTS, and every kind struck.
    fn enough_faults(&self) -> bool {
        let t = self.total();
        [&self.imap, &self.smtp, &self.dav]
            .iter()
            .all(|p| p.stats().faults() >= MIN_FAULTS)
            && t.drops > 0
            && t.stalls > 0
            && t.truncations > 0
    }

    fn total(&self) -> FaultStats {
        self.imap.stats() + self.smtp.stats() + self.dav.stats()
    }

    fn report(&self) -> String {
        format!(
            "imap: {}; smtp: {} (after the end of DATA: {}); dav: {}",
            self.imap.stats(),
            self.smtp.stats(),
            self.smtp.stats().unanswered,
            self.dav.stats()
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_and_duplicate_nothing_on_sqlite() {
    faults_scenario(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_and_duplicate_nothing_on_postgres() {
    faults_scenario(Backend::Postgres).await;
}

async fn faults_scenario(backend: Backend) {
    let t0 = Instant::now();
    let seed = fault_seed();
    eprintln!(
        "fault seed {seed} ({backend:?}); replay with {}={seed}",
        mailbridge_testkit::fault_proxy::SEED_VAR
    );
    let config = world::engine_config();
    let faults = random_faults(config.network_timeout);
    let mut w = World::start(backend, config).await;
    let proxies = Proxies::start(&w, seed, faults).await;
    w.profile(proxies.imap.addr(), proxies.smtp.addr(), proxies.dav.addr())
        .await;
    let m = w.member().await;

    // Test & Enable and the first ACT run in a clean phase: they are what an
    // administrator does once; the faults are for the runs that follow.
    let job = w.test_and_enable(&m.mailbox).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    w.wait_act_success(&m.mailbox).await;
    let app = App::new(&w, &m).await;
    eprintln!("set up in {:?}", t0.elapsed());

    proxies.set_faults(true);
    let faults_from = Instant::now();
    let expected = tokio::join!(
        deliver(&w, &m),
        queue_emails(&w, &m),
        create_act_items(&w, &m, &app),
    );
    let remaining = FAULT_PHASE.saturating_sub(faults_from.elapsed());
    tokio::time::sleep(remaining).await;
    while !proxies.enough_faults() && faults_from.elapsed() < MAX_FAULT_PHASE {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let during = w.counts(&m, &app, &expected.0, &expected.1).await;
    eprintln!(
        "after {:?} of faults: {} | {}",
        faults_from.elapsed(),
        proxies.report(),
        during.summary()
    );
    proxies.set_faults(false);
    let faults = proxies.total();

    // The clean phase: polled every half second until everything is there once,
    // within CONVERGE.
    let clean_from = Instant::now();
    let (incoming, outgoing) = (&expected.0, &expected.1);
    let act_titles = &expected.2;
    loop {
        let c = w.counts(&m, &app, incoming, outgoing).await;
        if c.complete(act_titles) {
            break;
        }
        assert!(
            clean_from.elapsed() < CONVERGE,
            "not converged {CONVERGE:?} after the faults stopped: {}\nmailbox: {}\nfaults: {}",
            c.summary(),
            w.mailbox(&m.mailbox).await,
            proxies.report()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let converged_in = clean_from.elapsed();
    // A few more runs of every workload (polled every 1-2 s) must change nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = w.counts(&m, &app, incoming, outgoing).await;
    let mailbox = w.mailbox(&m.mailbox).await;
    eprintln!(
        "converged {converged_in:?} after the faults stopped; {:?} in all",
        t0.elapsed()
    );
    eprintln!("per proxy: {}", proxies.report());
    eprintln!("{}", c.summary());

    let sent_copies = w.sent_copies(&m, outgoing);
    let copies_missing = outgoing
        .iter()
        .filter(|id| !sent_copies.contains_key(*id))
        .count();
    let copies_twice: usize = sent_copies.values().map(|n| n.saturating_sub(1)).sum();
    let act = act_figures(&c, act_titles);
    let items = MESSAGES + EMAILS + act_titles.len();
    let lost = c.incoming.lost + c.outgoing.lost + act.lost;
    let duplicated = c.incoming.duplicated + c.outgoing.duplicated + act.duplicated;
    eprintln!(
        "faults: drops={} stalls={} truncations={} connections={} | messages={items} lost={lost} duplicated={duplicated} \
         (incoming {MESSAGES}: lost={} duplicated={}; outgoing {EMAILS}: lost={} duplicated={} with {} faults after the end of DATA; \
         act {}: lost={} duplicated={}; Sent copies missing={copies_missing} duplicated={copies_twice}) seed={seed}",
        faults.drops,
        faults.stalls,
        faults.truncations,
        faults.connections,
        c.incoming.lost,
        c.incoming.duplicated,
        c.outgoing.lost,
        c.outgoing.duplicated,
        faults.unanswered,
        act_titles.len(),
        act.lost,
        act.duplicated,
    );

    for (what, t) in [
        ("incoming emails", &c.incoming),
        ("decisions", &c.decisions),
        ("emails at the SMTP server", &c.outgoing),
    ] {
        if !t.twice.is_empty() {
            eprintln!("{what} more than once: {:?}", t.twice);
        }
    }

    // The faults happened: every kind, on every proxy.
    for (name, p) in [
        ("imap", &proxies.imap),
        ("smtp", &proxies.smtp),
        ("dav", &proxies.dav),
    ] {
        assert!(
            p.stats().faults() >= MIN_FAULTS,
            "fewer than {MIN_FAULTS} faults struck on {name}: {}",
            p.stats()
        );
    }
    assert!(
        faults.drops > 0 && faults.stalls > 0 && faults.truncations > 0,
        "every kind of fault struck: {faults}"
    );
    // Nothing disabled: every fault is transient.
    for field in ["incoming_enabled", "outgoing_enabled", "act_enabled"] {
        assert_eq!(mailbox[field], true, "{field}: {mailbox}");
    }

    // Incoming: one email and one decision per Message-ID.
    assert_eq!(
        (c.incoming.lost, c.incoming.duplicated),
        (0, 0),
        "incoming emails: {:?}",
        c.incoming
    );
    assert_eq!(
        (c.decisions.lost, c.decisions.duplicated),
        (0, 0),
        "decisions: {:?}",
        c.decisions
    );

    // Outgoing: every email was sent, and reached the SMTP server.
    assert_eq!(c.outgoing.lost, 0, "emails lost: {:?}", c.outgoing);
    assert!(c.unsent.is_empty(), "emails not sent: {:?}", c.unsent);
    assert_eq!(
        (c.outgoing_emails.lost, c.outgoing_emails.duplicated),
        (0, 0),
        "one email each: {:?}",
        c.outgoing_emails
    );
    // FIXME: SMTP's lost-reply window (RFC 5321 4.1.1.4, RFC 1047): when the
    // connection breaks after the server received DATA's final dot but before its
    // 250 reached the engine, outgoing.rs records a transient failure and sends the
    // email again, so the server has it twice. Today's behaviour is asserted: any
    // duplicate is explained by a fault the proxy struck in that window (a reply
    // lost, truncated or stalled past the network timeout), never by anything else.
    assert!(
        c.outgoing.duplicated as u64 <= proxies.smtp.stats().unanswered,
        "{} emails arrived twice, more than the {} faults after the end of DATA: {:?}",
        c.outgoing.duplicated,
        proxies.smtp.stats().unanswered,
        c.outgoing
    );

    // ACT: every item once in the store and once on the server.
    assert_eq!(
        (act.lost, act.duplicated),
        (0, 0),
        "ACT: {:?} {:?}",
        c.store_items,
        c.server_items
    );

    // The copy to Sent is tried three times (outgoing.rs, `copy_to_sent`), each
    // retry looking for it in Sent first: a copy goes missing only when all three
    // attempts were struck by a fault (logged, the email stays Sent), so each
    // missing copy accounts for at least three IMAP faults; none is saved twice.
    let imap_faults = proxies.imap.stats().faults();
    assert!(
        copies_missing as u64 * 3 <= imap_faults,
        "{copies_missing} copies missing from Sent: more than the {imap_faults} IMAP faults explain"
    );
    assert_eq!(copies_twice, 0, "copies in Sent twice: {sent_copies:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(90),
        "the test stays bounded: {:?}",
        t0.elapsed()
    );
}

/// The SMTP lost-reply window, aimed at: the connection is dropped right after the
/// server received the end of DATA, before its 250 reaches the engine. The server
/// has the message; the engine cannot know it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_lost_after_data_sends_the_email_twice() {
    let seed = fault_seed();
    let config = world::engine_config();
    let [imap, _, dav] = random_faults(config.network_timeout);
    let aimed = FaultConfig {
        probability: 1.0,
        drop_weight: 1,
        stall_weight: 0,
        truncate_weight: 0,
        unrepeatable_request_end: Some(END_OF_DATA.to_vec()),
        strike_unanswered: true,
        ..FaultConfig::default()
    };
    let mut w = World::start(Backend::Sqlite, config).await;
    let proxies = Proxies::start(&w, seed, [imap, aimed, dav]).await;
    w.profile(proxies.imap.addr(), proxies.smtp.addr(), proxies.dav.addr())
        .await;
    let m = w.member().await;
    let job = w.test_and_enable(&m.mailbox).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // Only SMTP fails, and only until the first reply to DATA is lost.
    proxies.smtp.set_faults(true);
    let e = w
        .post(
            "/emails",
            json!({"from_mailbox_id": m.mailbox, "to": ["buyer@fabrikam.example"],
                   "subject": "Quote", "body_text": "One quote.", "send": true}),
        )
        .await;
    let id = norm_id(e["message_id"].as_str().unwrap());
    let email = e["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxies.smtp.stats().drops == 0 {
        assert!(
            Instant::now() < deadline,
            "the reply to DATA was not struck"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxies.smtp.set_faults(false);
    let stats = proxies.smtp.stats();
    assert_eq!((stats.drops, stats.unanswered), (1, 1), "{stats:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = w.get(&format!("/emails/{email}")).await;
        if e["status"] == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "not sent after the fault: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The next polls must not send it again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let copies = w
        .servers
        .smtp_received()
        .iter()
        .filter(|r| r.header("Message-ID").is_some_and(|h| norm_id(&h) == id))
        .count();
    eprintln!("a reply to DATA lost: the SMTP server received <{id}> {copies} times (seed {seed})");
    // FIXME: the email was sent once by the engine's account but arrives twice:
    // the send that lost its 250 is recorded as a transient failure
    // (outgoing.rs, `SendLoop::send`) and sent again a retry delay later. The right
    // answer is 1; closing the window needs the send and its record in one step
    // the server confirms, or not repeating a send whose DATA was complete.
    assert_eq!(copies, 2, "today's behaviour: sent twice");
}

/// Delivers MESSAGES into the Inbox in 10 waves a second apart (straight into the
/// Maildir, as a mail server's delivery agent does); returns their Message-IDs.
async fn deliver(w: &World, m: &Member) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let per_wave = MESSAGES.div_ceil(10);
    for i in 0..MESSAGES {
        if i > 0 && i % per_wave == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let id = format!("fault-{i}-{}@test.example.org", m.login.login);
        let raw = format!(
            "From: sender{}@fabrikam.example\r\nTo: {}\r\nSubject: Order {i}\r\nMessage-ID: <{id}>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nBody of order {i}.\r\n",
            i % 7,
            m.login.address
        );
        w.servers.write_to_inbox(&m.login.login, raw.as_bytes());
        ids.insert(id);
    }
    ids
}

/// Queues EMAILS for sending in 20 waves a second apart (an outgoing run, and an
/// SMTP connection, for most), to recipients outside the test domain (the SMTP
/// server records them without delivering); returns their Message-IDs.
async fn queue_emails(w: &World, m: &Member) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let per_wave = EMAILS.div_ceil(20);
    for i in 0..EMAILS {
        if i > 0 && i % per_wave == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let e = w
            .post(
                "/emails",
                json!({"from_mailbox_id": m.mailbox, "to": [format!("buyer{i}@fabrikam.example")],
                       "subject": format!("Quote {i}"), "body_text": format!("Quote number {i}."),
                       "send": true}),
            )
            .await;
        // The engine, woken by the queueing, may have claimed it already.
        assert!(
            ["pending_send", "sending", "sent"].contains(&e["status"].as_str().unwrap_or_default()),
            "{e}"
        );
        ids.insert(norm_id(e["message_id"].as_str().unwrap()));
    }
    ids
}

/// ACT_ITEMS appointments and contacts created in the store and as many in the
/// user's app (straight on Radicale); returns every title, by kind.
async fn create_act_items(w: &World, m: &Member, app: &App) -> Vec<(ActKind, String)> {
    let mut titles = Vec::new();
    for i in 0..ACT_ITEMS {
        let subject = format!("Store meeting {i}");
        w.post(
            "/appointments",
            json!({"subject": subject, "start": format!("2026-06-0{}T08:00:00Z", i + 1),
                   "end": format!("2026-06-0{}T09:00:00Z", i + 1), "owner_id": m.user}),
        )
        .await;
        titles.push((ActKind::Appointment, subject));
        let name = format!("Store Contact{i}");
        w.post(
            "/contacts",
            json!({"name": name, "email": format!("store{i}@fabrikam.example"), "owner_id": m.user}),
        )
        .await;
        titles.push((ActKind::Contact, name));
        let summary = format!("App meeting {i}");
        app.create_event(i, &summary).await;
        titles.push((ActKind::Appointment, summary));
        let name = format!("App Contact{i}");
        app.create_contact(i, &name).await;
        titles.push((ActKind::Contact, name));
    }
    titles
}

#[derive(Debug, Default)]
struct ActFigures {
    lost: usize,
    duplicated: usize,
}

/// Lost: a title missing on either side; duplicated: every extra copy on either side.
fn act_figures(c: &Counts, titles: &[(ActKind, String)]) -> ActFigures {
    let mut f = ActFigures::default();
    for side in [&c.store_items, &c.server_items] {
        for t in titles {
            match side.get(t).copied().unwrap_or(0) {
                0 => f.lost += 1,
                n => f.duplicated += n - 1,
            }
        }
    }
    f
}

/// An email left `sending` by a stop, whose copy reached Sent: the next run looks
/// for it there by Message-ID (outgoing.rs, `recover_in_flight`) and must mark it
/// sent without sending it again. Here the IMAP connection is closed in an orderly
/// way (FIN) just before the answer to that search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_before_the_sent_search_answer_does_not_send_again() {
    use mailbridge_connectors::{Auth, ImapConfig, ImapSession, SpecialUse};
    let seed = fault_seed();
    let config = world::engine_config();
    let [_, smtp, dav] = random_faults(config.network_timeout);
    let mut w = World::start(Backend::Sqlite, config).await;
    let mid = format!("{}.reached@example.org", uuid::Uuid::now_v7().simple());
    let aimed = FaultConfig {
        probability: 1.0,
        drop_weight: 1,
        stall_weight: 0,
        truncate_weight: 0,
        reset_probability: 0.0,
        // The end of `UID SEARCH HEADER Message-ID "<mid>"`.
        unrepeatable_request_end: Some(format!("{mid}\"\r\n").into_bytes()),
        strike_unanswered: true,
        ..FaultConfig::default()
    };
    let proxies = Proxies::start(&w, seed, [aimed, smtp, dav]).await;
    w.profile(proxies.imap.addr(), proxies.smtp.addr(), proxies.dav.addr())
        .await;
    let m = w.member().await;
    let job = w.test_and_enable(&m.mailbox).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // The copy in Sent, straight on Dovecot.
    let imap = ImapConfig {
        host: "127.0.0.1".into(),
        port: w.servers.imap_addr().port(),
        tls: mailbridge_domain::location::TlsPolicy::StartTlsIfOffered,
        auth: Auth::Password {
            username: m.login.login.clone(),
            password: mailbridge_domain::secret::Secret::new(m.login.password.clone()),
        },
        timeout: Duration::from_secs(10),
        extra_roots: Vec::new(),
    };
    let mut session = ImapSession::connect(&imap).await.unwrap();
    let sent = session
        .find_special_use(SpecialUse::Sent)
        .await
        .unwrap()
        .unwrap();
    let copy = format!(
        "From: {}\r\nTo: buyer@fabrikam.example\r\nSubject: Reached\r\nMessage-ID: <{mid}>\r\n\r\nx\r\n",
        m.login.address
    );
    session
        .append(&sent, &["\\Seen"], copy.as_bytes())
        .await
        .unwrap();
    session.logout().await;

    // Only that search's answer is struck (an orderly close before its first byte).
    proxies.imap.set_faults(true);
    let e = w
        .post(
            "/emails",
            json!({"from_mailbox_id": m.mailbox, "to": ["buyer@fabrikam.example"],
                   "subject": "Reached", "status": "sending", "message_id": mid}),
        )
        .await;
    let email = e["id"].as_str().unwrap().to_owned();
    // Once the search's answer was cut, the connection works again: the failed
    // search is retried on the next run.
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxies.imap.stats().drops == 0 {
        assert!(Instant::now() < deadline, "the search was never struck");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxies.imap.set_faults(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = w.get(&format!("/emails/{email}")).await;
        if e["status"] == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = proxies.imap.stats();
    let sent_again = w
        .servers
        .smtp_received()
        .iter()
        .filter(|r| r.header("Message-ID").is_some_and(|h| norm_id(&h) == mid))
        .count();
    eprintln!("the search's answer cut: {stats:?}; sent again {sent_again} times (seed {seed})");
    assert_eq!((stats.drops, stats.unanswered), (1, 1), "{stats:?}");
    // async-imap 0.12 would end a response at an orderly close between two
    // responses and answer Ok with what it had ("no such message"): the recovery
    // then sent the email again. The IMAP connector makes that end an error
    // (connectors/src/imap/eof.rs): the search fails, the run is retried, and the
    // copy is found.
    assert_eq!(sent_again, 0, "found in Sent, not sent again");
}
