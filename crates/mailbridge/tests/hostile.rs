//! Hostile input end to end: the testkit's corpus of malformed, truncated,
//! oversized and unusual messages (`mailbridge_testkit::hostile`) written into a
//! Dovecot Inbox, then Test & Enable. Every message must end with exactly one
//! decision — tracked or linked to an email, or skipped or failed with a reason —
//! and the engine must go on working: nothing crashes, nothing is dropped silently.

#[path = "sync/common.rs"]
#[allow(dead_code)]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Backend, World, email_by_message_id, fast_engine, message};
use mailbridge_testkit::hostile::{self, HostileMessage};
use serde_json::Value;

/// Every decision of the mailbox's Inbox, all pages.
async fn inbox_decisions(w: &World, mailbox: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = w
            .get(&format!(
                "/mailboxes/{mailbox}/messages?limit=500&folder=INBOX{cursor}"
            ))
            .await;
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// UID → Maildir base name, from Dovecot's `dovecot-uidlist` (lines
/// `<uid> [<extensions>] :<file name>` after a header line).
fn uid_to_file(maildir: &Path) -> HashMap<i64, String> {
    let list = std::fs::read_to_string(maildir.join("dovecot-uidlist")).unwrap_or_default();
    list.lines()
        .skip(1)
        .filter_map(|line| {
            let (uid, rest) = line.split_once(' ')?;
            let file = rest.rsplit_once(':').map_or(rest, |(_, f)| f);
            Some((uid.parse().ok()?, base_name(file)))
        })
        .collect()
}

/// A Maildir file name without its `:2,<flags>` info.
fn base_name(file: &str) -> String {
    file.split(":2,").next().unwrap_or(file).to_owned()
}

async fn hostile_corpus_is_tracked_or_failed_with_a_reason(backend: Backend) {
    let w = World::start(backend, fast_engine()).await;
    let (_, mailbox, login) = w.member("all").await;
    let mut corpus: Vec<HostileMessage> = hostile::corpus(hostile::DEFAULT_SEED);
    corpus.extend(hostile::regressions());
    let mut by_file = HashMap::new();
    for m in &corpus {
        let path = w.servers.write_to_inbox(&login.login, &m.raw);
        let file = path.file_name().unwrap().to_string_lossy();
        by_file.insert(base_name(&file), m.name.clone());
    }
    let started = Instant::now();
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // Bounded: every message decided, none still waiting for a retry. On
    // timeout the checks below name the messages left without a decision.
    // Test & Enable's own test message ("Your mailbox is now connected") lands
    // in the same Inbox: one more.
    let total = corpus.len() + 1;
    let deadline = Instant::now() + Duration::from_secs(100);
    let decisions = loop {
        let d = inbox_decisions(&w, &mailbox).await;
        let settled = d.iter().filter(|x| x["outcome"] != "retrying").count();
        if settled >= total || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "{} of {total} hostile messages decided in {:?}; the mailbox: {}",
        decisions.len(),
        started.elapsed(),
        w.get(&format!("/mailboxes/{mailbox}")).await
    );

    let names = uid_to_file(&w.servers.maildir(&login.login));
    let name_of = |uid: i64| {
        names
            .get(&uid)
            .and_then(|f| by_file.get(f))
            .cloned()
            .unwrap_or_else(|| format!("not of the corpus/uid {uid}"))
    };
    let mut per_uid: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for d in &decisions {
        per_uid
            .entry(d["uid"].as_i64().unwrap())
            .or_default()
            .push(d);
    }
    let twice: Vec<String> = per_uid
        .iter()
        .filter(|(_, d)| d.len() != 1)
        .map(|(uid, _)| name_of(*uid))
        .collect();
    assert!(twice.is_empty(), "more than one decision: {twice:?}");
    // The corpus is decided by name too: every message written has its decision.
    let decided: std::collections::BTreeSet<String> = per_uid.keys().map(|u| name_of(*u)).collect();
    let missing: Vec<&str> = corpus
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| !decided.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} messages without a decision, first: {:?}",
        missing.len(),
        &missing[..missing.len().min(40)]
    );

    let mut uids_of: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for uid in per_uid.keys() {
        uids_of.entry(name_of(*uid)).or_default().push(*uid);
    }
    let extra: Vec<_> = uids_of
        .iter()
        .filter(|(name, u)| u.len() > 1 || name.starts_with("not of the corpus/"))
        .collect();
    assert_eq!(
        per_uid.len(),
        total,
        "one decision per message written and the test message; others: {extra:?}"
    );

    let mut summary: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (uid, d) in &per_uid {
        let d = d[0];
        let name = name_of(*uid);
        let outcome = d["outcome"].as_str().unwrap_or_default();
        let reason = d["reason"].as_str().unwrap_or_default();
        let has_email = d["email_id"].as_str().is_some_and(|e| !e.is_empty());
        let ok = match outcome {
            "tracked" | "linked" => has_email && !reason.is_empty(),
            "skipped" | "failed" => !reason.trim().is_empty(),
            _ => false,
        };
        if !ok {
            wrong.push(format!("{name}: {outcome} {reason:?} email {has_email}"));
        }
        let category = name.split('/').next().unwrap_or_default().to_owned();
        *summary.entry((category, outcome.to_owned())).or_default() += 1;
    }
    eprintln!("outcomes by category: {summary:?}");
    assert!(
        wrong.is_empty(),
        "decisions without an email or a reason: {wrong:#?}"
    );
    // The engine is still well: the workload succeeds and a plain message that
    // arrives now is tracked.
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["incoming_status"], "success", "{m}");
    let (raw, id) = message("carl@fabrikam.example", &[&login.address], "After", "");
    w.servers.write_to_inbox(&login.login, &raw);
    email_by_message_id(&w, &id, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn hostile_corpus_on_sqlite() {
    hostile_corpus_is_tracked_or_failed_with_a_reason(Backend::Sqlite).await;
}

#[tokio::test]
async fn hostile_corpus_on_postgres() {
    hostile_corpus_is_tracked_or_failed_with_a_reason(Backend::Postgres).await;
}
