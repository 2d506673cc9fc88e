//! The IMAP connector against the real Dovecot that ./scripts/test starts.

#[path = "support/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use mailbridge_connectors::{IdleOutcome, ImapSession, SpecialUse, imap_test};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;
use mailbridge_testkit::TestServers;

const TRANSIENT: ErrorClass = ErrorClass::Transient { retry_after: None };

#[tokio::test]
async fn login_reads_the_capabilities_after_login() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let session = ImapSession::connect(&imap_for(&servers, &alice))
        .await
        .expect("logged in");
    let caps = session.capabilities();
    assert!(caps.idle, "{:?}", caps.all);
    assert!(caps.move_, "{:?}", caps.all);
    assert!(caps.condstore, "{:?}", caps.all);
    assert!(caps.qresync, "{:?}", caps.all);
    assert!(caps.uidplus, "{:?}", caps.all);
    assert!(caps.special_use, "{:?}", caps.all);
    assert!(caps.has("IMAP4rev1"), "{:?}", caps.all);
    session.logout().await;
}

#[tokio::test]
async fn a_wrong_password_is_permanent_for_the_mailbox_and_not_shown() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let wrong = "not-alices-secret-4711";
    let cfg = imap_config(
        servers.imap_addr(),
        mailbridge_connectors::Auth::Password {
            username: alice.login.clone(),
            password: Secret::new(wrong),
        },
    );
    let e = ImapSession::connect(&cfg).await.expect_err("refused");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox),
        "{e:?}"
    );
    assert!(
        e.message
            .starts_with("the IMAP server rejected the user name or password for alice"),
        "{}",
        e.message
    );
    assert_eq!(
        e.fix.as_deref(),
        Some("Check the mailbox's user name and password, then run Test & Enable")
    );
    assert!(!format!("{e:?}").contains(wrong), "{e:?}");
}

#[tokio::test]
async fn a_refused_connection_is_transient_for_the_profile() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let port = closed_port();
    let mut cfg = imap_for(&servers, &alice);
    cfg.port = port;
    let started = Instant::now();
    let e = ImapSession::connect(&cfg).await.expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        (e.class, e.scope),
        (TRANSIENT, ErrorScope::Profile),
        "{e:?}"
    );
    assert!(
        e.fix
            .as_deref()
            .unwrap_or("")
            .contains(&format!("127.0.0.1:{port}")),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_unknown_host_is_transient_for_the_profile() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let mut cfg = imap_for(&servers, &alice);
    cfg.host = "no-such-host.invalid".to_owned();
    cfg.timeout = Duration::from_secs(5);
    let e = ImapSession::connect(&cfg).await.expect_err("unresolvable");
    assert_eq!(
        (e.class, e.scope),
        (TRANSIENT, ErrorScope::Profile),
        "{e:?}"
    );
    assert!(e.message.contains("could not be resolved"), "{}", e.message);
}

#[tokio::test]
async fn starttls_required_against_a_plaintext_server_is_permanent_for_the_profile() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let mut cfg = imap_for(&servers, &alice);
    cfg.tls = TlsPolicy::StartTlsRequired;
    let e = ImapSession::connect(&cfg).await.expect_err("no STARTTLS");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile),
        "{e:?}"
    );
    assert!(
        e.message.contains("does not offer STARTTLS"),
        "{}",
        e.message
    );
    assert!(
        e.fix.as_deref().unwrap_or("").contains("allow_plaintext"),
        "{e:?}"
    );
}

#[tokio::test]
async fn fetch_after_returns_new_messages_ascending_and_honours_max() {
    let servers = TestServers::from_env();
    let user = fresh_user(&servers, "fetch").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (id, raw) = message("carol@example.org", &user.address, &format!("fetch {n}"));
        servers
            .deliver(&user.address, &raw)
            .await
            .expect("delivered");
        ids.push(id);
    }
    let mut imap = ImapSession::connect(&imap_for(&servers, &user))
        .await
        .expect("login");
    let state = imap.select("INBOX").await.expect("selected");
    assert_eq!(state.exists, 3);
    assert!(state.uidvalidity > 0);
    assert_eq!(
        state.uidnext, 4,
        "Dovecot numbers a new folder's messages from 1"
    );
    assert!(
        state.highestmodseq.is_some(),
        "CONDSTORE is enabled: {state:?}"
    );

    let first_two = imap.fetch_after(0, 2).await.expect("fetched");
    assert_eq!(first_two.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
    assert!(has_message_id(&first_two[0].bytes, &ids[0]));
    assert!(has_message_id(&first_two[1].bytes, &ids[1]));
    assert_eq!(first_two[0].size as usize, first_two[0].bytes.len());
    assert!(first_two[0].internal_date.is_some());

    let rest = imap.fetch_after(2, 10).await.expect("fetched");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].uid, 3);
    assert!(has_message_id(&rest[0].bytes, &ids[2]));
    // Dovecot adds its trace fields on top; the rest is byte for byte.
    let text = String::from_utf8_lossy(&rest[0].bytes);
    assert!(
        text.ends_with("\r\n\r\nHello\r\n.a line that starts with a dot\r\nBye\r\n"),
        "{text}"
    );

    // QUIRK_UID_RANGE_LAST: `UID 4:*` answers UID 3; nothing is newer than 3.
    assert!(imap.fetch_after(3, 10).await.expect("fetched").is_empty());
    assert!(imap.uids_after(3).await.expect("searched").is_empty());
    assert_eq!(imap.uids_after(1).await.expect("searched"), [2, 3]);
    assert!(
        imap.fetch_after(u32::MAX, 10)
            .await
            .expect("fetched")
            .is_empty()
    );
    imap.logout().await;
}

#[tokio::test]
async fn fetching_never_sets_seen_and_fetches_messages_seen_elsewhere() {
    let servers = TestServers::from_env();
    let user = fresh_user(&servers, "seen").await;
    let (read_id, read) = message("carol@example.org", &user.address, "read elsewhere");
    let (unread_id, unread) = message("carol@example.org", &user.address, "unread");
    servers
        .deliver(&user.address, &read)
        .await
        .expect("delivered");
    servers
        .deliver(&user.address, &unread)
        .await
        .expect("delivered");

    let mut other = RawImap::login(servers.imap_addr(), &user).await;
    other.ok("SELECT INBOX").await;
    other.ok("UID STORE 1 +FLAGS (\\Seen)").await;

    let mut imap = ImapSession::connect(&imap_for(&servers, &user))
        .await
        .expect("login");
    imap.select("INBOX").await.expect("selected");
    let fetched = imap.fetch_after(0, 10).await.expect("fetched");
    assert_eq!(fetched.len(), 2);
    assert!(has_message_id(&fetched[0].bytes, &read_id));
    assert!(
        fetched[0].flags.iter().any(|f| f == "\\Seen"),
        "{:?}",
        fetched[0].flags
    );
    assert!(has_message_id(&fetched[1].bytes, &unread_id));
    assert!(
        !fetched[1].flags.iter().any(|f| f == "\\Seen"),
        "{:?}",
        fetched[1].flags
    );

    // Fetched once with its body: still unseen, for us and for the other program.
    let again = imap.fetch_after(1, 10).await.expect("fetched");
    assert!(
        !again[0].flags.iter().any(|f| f == "\\Seen"),
        "{:?}",
        again[0].flags
    );
    let lines = other.ok("UID FETCH 2 (FLAGS)").await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("FETCH") && !l.contains("\\Seen")),
        "{lines:?}"
    );
    imap.logout().await;
}

#[tokio::test]
async fn a_missing_folder_is_permanent_for_the_mailbox() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let mut imap = ImapSession::connect(&imap_for(&servers, &alice))
        .await
        .expect("login");
    let e = imap.select("No Such Folder").await.expect_err("missing");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox),
        "{e:?}"
    );
    assert!(
        e.message.contains("No Such Folder does not exist"),
        "{}",
        e.message
    );
    // The session is still usable.
    imap.select("INBOX").await.expect("selected");
    imap.noop().await.expect("noop");
    imap.logout().await;
}

#[tokio::test]
async fn idle_reports_a_delivery_at_once_and_times_out_when_nothing_arrives() {
    let servers = TestServers::from_env();
    let user = fresh_user(&servers, "idle").await;
    let mut imap = ImapSession::connect(&imap_for(&servers, &user))
        .await
        .expect("login");
    imap.select("INBOX").await.expect("selected");

    let started = Instant::now();
    let (imap, outcome) = imap.idle(Duration::from_millis(700)).await.expect("idled");
    assert_eq!(outcome, IdleOutcome::Timeout);
    assert!(
        started.elapsed() >= Duration::from_millis(650),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let (id, raw) = message("carol@example.org", &user.address, "while idling");
    let delivery = {
        let servers = TestServers::from_env();
        let to = user.address.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            servers.deliver(&to, &raw).await.expect("delivered");
            Instant::now()
        })
    };
    let (mut imap, outcome) = imap.idle(Duration::from_secs(15)).await.expect("idled");
    let noticed = Instant::now();
    let delivered = delivery.await.expect("delivery task");
    assert_eq!(outcome, IdleOutcome::Changed);
    assert!(
        noticed.duration_since(delivered) < Duration::from_secs(2),
        "noticed {:?} after the delivery",
        noticed.duration_since(delivered)
    );
    // DONE was sent: the session works, and the message is there.
    let fetched = imap.fetch_after(0, 10).await.expect("fetched");
    assert_eq!(fetched.len(), 1);
    assert!(has_message_id(&fetched[0].bytes, &id));
    let (imap, outcome) = imap.idle(Duration::from_millis(300)).await.expect("idled");
    assert_eq!(outcome, IdleOutcome::Timeout, "nothing new since the fetch");
    imap.logout().await;
}

#[tokio::test]
async fn move_to_creates_the_folder_and_moves_the_message() {
    let servers = TestServers::from_env();
    let user = fresh_user(&servers, "move").await;
    let (keep_id, keep) = message("carol@example.org", &user.address, "stays");
    let (moved_id, moved) = message("carol@example.org", &user.address, "undeliverable");
    servers
        .deliver(&user.address, &keep)
        .await
        .expect("delivered");
    servers
        .deliver(&user.address, &moved)
        .await
        .expect("delivered");

    let mut imap = ImapSession::connect(&imap_for(&servers, &user))
        .await
        .expect("login");
    imap.select("INBOX").await.expect("selected");
    assert!(
        !imap
            .list_folders()
            .await
            .expect("listed")
            .iter()
            .any(|f| f.name == "Undeliverable")
    );
    imap.move_to(2, "Undeliverable").await.expect("moved");
    // Moving again finds nothing to move and is not an error.
    imap.move_to(2, "Undeliverable").await.expect("moved twice");

    let inbox = imap.fetch_after(0, 10).await.expect("fetched");
    assert_eq!(inbox.len(), 1);
    assert!(has_message_id(&inbox[0].bytes, &keep_id));
    let folders = imap.list_folders().await.expect("listed");
    assert!(
        folders.iter().any(|f| f.name == "Undeliverable"),
        "{folders:?}"
    );

    let state = imap.select("Undeliverable").await.expect("selected");
    assert_eq!(state.exists, 1);
    let there = imap.fetch_after(0, 10).await.expect("fetched");
    assert_eq!(there.len(), 1);
    assert!(has_message_id(&there[0].bytes, &moved_id));
    imap.logout().await;
}

#[tokio::test]
async fn append_to_the_special_use_sent_folder_and_read_it_back() {
    let servers = TestServers::from_env();
    let user = fresh_user(&servers, "append").await;
    let mut imap = ImapSession::connect(&imap_for(&servers, &user))
        .await
        .expect("login");
    let folders = imap.list_folders().await.expect("listed");
    assert!(
        folders
            .iter()
            .any(|f| f.name == "Sent" && f.special_use == Some(SpecialUse::Sent)),
        "{folders:?}"
    );
    let sent = imap
        .find_special_use(SpecialUse::Sent)
        .await
        .expect("listed")
        .expect("a Sent folder");
    assert_eq!(sent, "Sent");
    assert_eq!(
        imap.find_special_use(SpecialUse::Trash)
            .await
            .expect("listed")
            .as_deref(),
        Some("Trash")
    );

    let (id, raw) = message(
        &user.address,
        "carol@example.org",
        "a copy of what was sent",
    );
    imap.append(&sent, &["\\Seen", "mailbridge-tracked"], &raw)
        .await
        .expect("appended");
    imap.select(&sent).await.expect("selected");
    let fetched = imap.fetch_after(0, 10).await.expect("fetched");
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].bytes, raw, "appended byte for byte");
    assert!(has_message_id(&fetched[0].bytes, &id));
    assert!(
        fetched[0].flags.iter().any(|f| f == "\\Seen"),
        "{:?}",
        fetched[0].flags
    );
    assert!(
        fetched[0].flags.iter().any(|f| f == "mailbridge-tracked"),
        "{:?}",
        fetched[0].flags
    );

    let e = imap
        .append("No Such Folder", &[], &raw)
        .await
        .expect_err("missing folder");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox),
        "{e:?}"
    );
    let e = imap
        .append(&sent, &["two words"], &raw)
        .await
        .expect_err("bad flag");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Item),
        "{e:?}"
    );
    // Still usable after both refusals.
    imap.noop().await.expect("noop");
    imap.logout().await;
}

#[tokio::test]
async fn imap_test_records_each_step() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let (steps, result) = imap_test(&imap_for(&servers, &alice)).await;
    result.expect("passed");
    let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["resolve", "connect", "tls", "authenticate", "open_mailbox"]
    );
    assert!(steps.iter().all(|s| s.passed), "{steps:#?}");
    assert!(
        steps[2].detail.contains("does not offer STARTTLS"),
        "{steps:#?}"
    );
    assert_eq!(
        steps[3].detail,
        "logged in as alice with AUTHENTICATE PLAIN"
    );
    assert!(steps[4].detail.starts_with("INBOX holds"), "{steps:#?}");

    let mut cfg = imap_for(&servers, &alice);
    cfg.auth = mailbridge_connectors::Auth::Password {
        username: "alice".to_owned(),
        password: Secret::new("wrong-password-0815"),
    };
    let (steps, result) = imap_test(&cfg).await;
    let e = result.expect_err("refused");
    let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
    assert_eq!(names, ["resolve", "connect", "tls", "authenticate"]);
    assert!(!steps[3].passed);
    assert_eq!(steps[3].detail, e.message);
    assert!(!format!("{steps:?}").contains("wrong-password-0815"));

    let mut cfg = imap_for(&servers, &alice);
    cfg.port = closed_port();
    let (steps, result) = imap_test(&cfg).await;
    assert!(result.is_err());
    assert_eq!(
        steps.iter().map(|s| (s.name, s.passed)).collect::<Vec<_>>(),
        [("resolve", true), ("connect", false)]
    );
}

#[tokio::test]
async fn plaintext_policy_none_logs_in_without_asking_for_starttls() {
    let servers = TestServers::from_env();
    let alice = servers.user("alice");
    let mut cfg = imap_for(&servers, &alice);
    cfg.tls = TlsPolicy::None;
    let mut steps = Vec::new();
    let mut imap = ImapSession::connect_traced(&cfg, &mut steps)
        .await
        .expect("login");
    assert_eq!(steps[2].detail, "not used: the profile allows plaintext");
    imap.noop().await.expect("noop");
    imap.logout().await;
}
