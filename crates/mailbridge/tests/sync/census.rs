//! The completeness census end to end: a message lost between the server and
//! the decision trail (delivered while the test holds the mailbox's lease, the
//! checkpoint then moved past it, as a lost write would leave it) is found by
//! the next census, reported (metric, alert, monitoring API and page) and
//! back-filled exactly once; a message present before the mailbox was enabled
//! and one the user deleted are no gaps; a second census finds nothing. On
//! Dovecot (both databases) and on Exchange Online (the Graph test server).

use std::time::Duration;

use chrono::Utc;
use mailbridge_connectors::ImapSession;
use mailbridge_store::{CensusState, with_db};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::common::{Backend, World, email_by_message_id, fast_engine, message, wait};
use crate::hosts::{Graph, MailHost, RawImap, imap_for};
use crate::metrics::{scrape, value};

/// The test's name in leases: holding a mailbox's lease keeps the engine off it.
const TEST_NODE: &str = "census-test";

#[tokio::test]
async fn a_lost_message_is_found_reported_and_backfilled_once_on_sqlite() {
    lost_message_on_dovecot(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_lost_message_is_found_reported_and_backfilled_once_on_postgres() {
    lost_message_on_dovecot(Backend::Postgres).await;
}

#[tokio::test]
async fn a_lost_exchange_online_message_is_found_and_backfilled_once() {
    lost_message_on_exchange_online(Backend::Sqlite).await;
}

/// Takes the mailbox's lease for the test (waiting for a run in progress).
async fn hold(w: &World, mailbox: &str) {
    wait("the mailbox's lease", Duration::from_secs(30), || async {
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(60);
        w.store
            .acquire_lease(mailbox, TEST_NODE, now, until)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
}

/// Makes the census due, gives the lease back and makes the incoming run (which
/// does the census) due now.
async fn census_now(w: &World, mailbox: &str) {
    w.store
        .request_census(&w.org, mailbox, Utc::now())
        .await
        .unwrap();
    w.store.release_lease(mailbox, TEST_NODE).await.unwrap();
    w.store.wake_incoming(mailbox, Utc::now()).await.unwrap();
    w.engine.wake.notify_one();
}

/// The mailbox's census once one finished after `after` (if given).
async fn census_after(
    w: &World,
    mailbox: &str,
    after: Option<chrono::DateTime<Utc>>,
) -> CensusState {
    wait("a census", Duration::from_secs(30), || async {
        let c = w.store.mailbox_census(&w.org, mailbox).await.unwrap()?;
        let at = c.last_census_at?;
        after.is_none_or(|a| at > a).then_some(c)
    })
    .await
}

/// The census alerts of the mailbox.
async fn census_alerts(w: &World, mailbox: &str) -> Vec<Value> {
    let page = w
        .get(&format!("/alerts?mailbox_id={mailbox}&limit=100"))
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["message"].as_str().unwrap_or("").contains("census"))
        .cloned()
        .collect()
}

type Exposition = openmetrics_parser::MetricsExposition<
    openmetrics_parser::OpenMetricsType,
    openmetrics_parser::OpenMetricsValue,
>;

/// A counter without labels.
fn count(exp: &Exposition, family: &str) -> f64 {
    value(exp, family, &[])
}

/// The monitoring page as an organization administrator sees it.
async fn monitoring_page(w: &World) -> String {
    let admin = w
        .post(
            "/users",
            json!({"full_name": "Olga Admin", "role": "org_admin"}),
        )
        .await;
    let token = w.post("/tokens", json!({"user_id": admin["id"]})).await;
    let token = token["token"].as_str().unwrap();
    let b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no cookie {name}"))
    };
    let form = b.get(format!("{}/sign-in", w.base)).send().await.unwrap();
    let signin = cookie(&form, "__Host-mb_signin");
    let html = form.text().await.unwrap();
    let at = html.find("name=\"_csrf\" value=\"").unwrap() + "name=\"_csrf\" value=\"".len();
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let signed = b
        .post(format!("{}/sign-in", w.base))
        .header(COOKIE, signin)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("_csrf", csrf),
                ("method", "token"),
                ("token", token),
                ("next", "/monitoring"),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let session = cookie(&signed, "__Host-mb_session");
    let page = b
        .get(format!("{}/monitoring?sort=name", w.base))
        .header(COOKIE, session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

/// The cells of the mailbox's row in the page's mailbox table.
fn row_of<'a>(html: &'a str, mailbox: &str) -> &'a str {
    let table = &html[html.find("id=\"mailboxes-health\"").expect("the table")..];
    let at = table
        .find(&format!("/mailboxes/{mailbox}\""))
        .expect("the mailbox's row");
    let row = &table[at..];
    &row[..row.find("</tr>").unwrap()]
}

async fn lost_message_on_dovecot(backend: Backend) {
    let w = World::start(backend, fast_engine()).await;
    let (_, mailbox, login) = w.member("all").await;
    // In the Inbox before the mailbox is enabled: the first run decides it.
    let (before, before_id) = message(
        "carl@fabrikam.com",
        &[&login.address],
        "Before enabling",
        "",
    );
    w.servers.deliver(&login.address, &before).await.unwrap();
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let mut processed = Vec::new();
    for i in 0..3 {
        let (raw, id) = message(
            "carl@fabrikam.com",
            &[&login.address],
            &format!("Quote {i}"),
            "",
        );
        w.servers.deliver(&login.address, &raw).await.unwrap();
        processed.push(id);
    }
    for id in &processed {
        email_by_message_id(&w, id, Duration::from_secs(20)).await;
    }
    wait(
        "the decision on the message from before",
        Duration::from_secs(10),
        || async {
            w.decisions(&mailbox, &format!("&message_id={before_id}"))
                .await
                .into_iter()
                .next()
        },
    )
    .await;
    // The user deletes a processed message: it leaves the server, no gap.
    let deleted = &w
        .decisions(&mailbox, &format!("&message_id={}", processed[1]))
        .await[0];
    let mut client = RawImap::login(&w, &login).await;
    client.command("SELECT INBOX").await;
    client
        .command(&format!("UID STORE {} +FLAGS (\\Deleted)", deleted["uid"]))
        .await;
    client.command("EXPUNGE").await;

    // A lost message: delivered while the engine is kept off the mailbox, then
    // the checkpoint moved past it as if it had been processed.
    hold(&w, &mailbox).await;
    let (raw, lost) = message("carl@fabrikam.com", &[&login.address], "Lost", "");
    w.servers.deliver(&login.address, &raw).await.unwrap();
    let mut session = ImapSession::connect(&imap_for(&w, &login)).await.unwrap();
    let inbox = session.select("INBOX").await.unwrap();
    session.logout().await;
    let lost_uid = i64::from(inbox.uidnext - 1);
    let moved = with_db!(w.store.db(), p => sqlx::query(
        "UPDATE folder_sync SET last_uid = $1 WHERE mailbox_id = $2 AND folder = 'INBOX' AND last_uid < $1",
    ).bind(lost_uid).bind(&mailbox).execute(p).await.unwrap().rows_affected());
    assert_eq!(moved, 1, "the checkpoint moved past the lost message");
    let metrics_before = scrape(&w).await;
    census_now(&w, &mailbox).await;

    let first = census_after(&w, &mailbox, None).await;
    assert_eq!(
        (first.census_gaps, first.census_backfilled),
        (1, 1),
        "{first:?}"
    );
    let email = email_by_message_id(&w, &lost, Duration::from_secs(5)).await;
    assert_eq!(email["decision"]["outcome"], "tracked", "{email}");
    let decisions = w.decisions(&mailbox, &format!("&message_id={lost}")).await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["uid"], lost_uid);
    let m = scrape(&w).await;
    let delta = |family: &str| count(&m, family) - count(&metrics_before, family);
    assert_eq!(delta("mailbridge_census_gaps_found"), 1.0);
    assert_eq!(delta("mailbridge_census_backfilled"), 1.0);
    assert!(value(&m, "mailbridge_census_runs", &[("outcome", "succeeded")]) >= 1.0);
    let alerts = census_alerts(&w, &mailbox).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let text = alerts[0]["message"].as_str().unwrap();
    for part in ["found 1 message", "INBOX", "back-filled"] {
        assert!(text.contains(part), "{part} is not in: {text}");
    }
    assert_eq!(alerts[0]["scope"], "mailbox");
    let health = w.get(&format!("/monitoring/mailboxes/{mailbox}")).await;
    assert_eq!(health["census_gaps"], 1, "{health}");
    assert!(health["last_census_at"].is_string(), "{health}");
    let html = monitoring_page(&w).await;
    assert!(html.contains("<th>Last census</th>"), "the column is shown");
    assert!(html.contains("Census gaps</th>"), "the column is shown");
    let row = row_of(&html, &mailbox);
    assert!(
        row.contains("title=\"Found on the server, never processed; back-filled\">1</span>"),
        "{row}"
    );

    // The next census: nothing is missing, nothing is processed again.
    hold(&w, &mailbox).await;
    census_now(&w, &mailbox).await;
    let second = census_after(&w, &mailbox, first.last_census_at).await;
    assert_eq!(
        (second.census_gaps, second.census_backfilled),
        (0, 0),
        "{second:?}"
    );
    let m = scrape(&w).await;
    assert_eq!(
        count(&m, "mailbridge_census_gaps_found")
            - count(&metrics_before, "mailbridge_census_gaps_found"),
        1.0,
        "no new gap"
    );
    assert_eq!(census_alerts(&w, &mailbox).await.len(), 1, "no new alert");
    assert_eq!(
        w.emails(&format!("&message_id={lost}")).await.len(),
        1,
        "one email per Message-ID"
    );
    assert_eq!(
        w.decisions(&mailbox, &format!("&message_id={lost}"))
            .await
            .len(),
        1,
        "one decision"
    );
    let health = w.get(&format!("/monitoring/mailboxes/{mailbox}")).await;
    assert_eq!(health["census_gaps"], 0, "{health}");

    // The API document describes the new fields.
    let doc: Value = w
        .client
        .get(format!("{}/api/v1/openapi.json", w.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let props = &doc["components"]["schemas"]["MailboxHealth"]["properties"];
    for field in ["last_census_at", "census_gaps"] {
        assert!(props.get(field).is_some(), "{field} is documented: {props}");
    }
}

async fn lost_message_on_exchange_online(backend: Backend) {
    let x = Graph::start(backend, true).await;
    let w = &x.w;
    let member = x.member("all").await;
    let mailbox = member.mailbox.clone();
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (raw, kept) = message("carol@fabrikam.example", &[&member.address], "Kept", "");
    x.deliver(&member, &raw).await;
    let (raw, lost) = message("carol@fabrikam.example", &[&member.address], "Lost", "");
    let item = x.graph.deliver(&member.address, "inbox", &raw);
    for id in [&kept, &lost] {
        email_by_message_id(w, id, Duration::from_secs(20)).await;
    }

    // Lost after the delta link moved past it: its email, decision and UID are
    // gone (a lost write), and it arrived long enough ago to be counted.
    hold(w, &mailbox).await;
    let email_id = w.emails(&format!("&message_id={lost}")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    with_db!(w.store.db(), p => {
        sqlx::query("DELETE FROM message_decisions WHERE mailbox_id = $1 AND email_id = $2")
            .bind(&mailbox).bind(&email_id).execute(p).await.unwrap();
        sqlx::query("DELETE FROM emails WHERE id = $1")
            .bind(&email_id).execute(p).await.unwrap();
        sqlx::query("DELETE FROM graph_items WHERE mailbox_id = $1 AND item_id = $2")
            .bind(&mailbox).bind(&item).execute(p).await.unwrap();
    });
    assert!(w.emails(&format!("&message_id={lost}")).await.is_empty());
    x.graph
        .backdate(&member.address, &item, Duration::from_secs(600));
    let metrics_before = scrape(w).await;
    census_now(w, &mailbox).await;

    let first = census_after(w, &mailbox, None).await;
    assert_eq!(
        (first.census_gaps, first.census_backfilled),
        (1, 1),
        "{first:?}"
    );
    let email = email_by_message_id(w, &lost, Duration::from_secs(5)).await;
    assert_eq!(email["decision"]["outcome"], "tracked", "{email}");
    assert_eq!(
        w.decisions(&mailbox, &format!("&message_id={lost}"))
            .await
            .len(),
        1
    );
    let m = scrape(w).await;
    assert_eq!(
        count(&m, "mailbridge_census_gaps_found")
            - count(&metrics_before, "mailbridge_census_gaps_found"),
        1.0
    );
    let alerts = census_alerts(w, &mailbox).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0]["message"]
            .as_str()
            .unwrap()
            .contains("found 1 message in the folder Inbox"),
        "{}",
        alerts[0]
    );

    hold(w, &mailbox).await;
    census_now(w, &mailbox).await;
    let second = census_after(w, &mailbox, first.last_census_at).await;
    assert_eq!(second.census_gaps, 0, "{second:?}");
    for id in [&kept, &lost] {
        assert_eq!(w.emails(&format!("&message_id={id}")).await.len(), 1);
        assert_eq!(
            w.decisions(&mailbox, &format!("&message_id={id}"))
                .await
                .len(),
            1
        );
    }
    assert_eq!(census_alerts(w, &mailbox).await.len(), 1, "no new alert");
}

#[tokio::test]
async fn a_gap_that_cannot_be_backfilled_is_reported_once_and_given_up() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, login) = w.member("all").await;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Gone Soon", "email": "gone@fabrikam.com"}),
        )
        .await;
    let mut client = RawImap::login(&w, &login).await;
    client.command("CREATE \"Customers\"").await;
    w.post(
        &format!("/mailboxes/{mailbox}/tracked-folders"),
        json!({"folder": "Customers", "regarding_type": "contact", "regarding_id": contact["id"]}),
    )
    .await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (raw, first_id) = message("gone@fabrikam.com", &[&login.address], "Filed first", "");
    let mut session = ImapSession::connect(&imap_for(&w, &login)).await.unwrap();
    session.append("Customers", &[], &raw).await.unwrap();
    email_by_message_id(&w, &first_id, Duration::from_secs(20)).await;

    // Lost in the tracked folder, whose record is then deleted: every attempt
    // at it fails.
    hold(&w, &mailbox).await;
    let (raw, lost) = message("gone@fabrikam.com", &[&login.address], "Filed, lost", "");
    session.append("Customers", &[], &raw).await.unwrap();
    let folder = session.select("Customers").await.unwrap();
    session.logout().await;
    let lost_uid = i64::from(folder.uidnext - 1);
    with_db!(w.store.db(), p => sqlx::query(
        "UPDATE folder_sync SET last_uid = $1 WHERE mailbox_id = $2 AND folder = 'Customers'",
    ).bind(lost_uid).bind(&mailbox).execute(p).await.unwrap().rows_affected());
    w.call(
        reqwest::Method::DELETE,
        &format!(
            "/api/v1/orgs/{}/contacts/{}",
            w.org,
            contact["id"].as_str().unwrap()
        ),
        Value::Null,
    )
    .await;
    census_now(&w, &mailbox).await;
    let mut census = census_after(&w, &mailbox, None).await;
    assert_eq!(
        (census.census_gaps, census.census_backfilled),
        (1, 0),
        "{census:?}"
    );
    let alerts = census_alerts(&w, &mailbox).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let text = alerts[0]["message"].as_str().unwrap();
    assert!(
        text.contains("found 1 message in the folder Customers")
            && text.contains("0 of them were back-filled")
            && text.contains("1 could not be yet"),
        "{text}"
    );

    // Each census tries it again without a new census alert; after the last
    // attempt it is given up like any message (Undeliverable, an item alert),
    // and it is gone from the folder: nothing is left to find.
    for attempt in 2..=4 {
        hold(&w, &mailbox).await;
        census_now(&w, &mailbox).await;
        census = census_after(&w, &mailbox, census.last_census_at).await;
        assert_eq!(census.census_gaps, 0, "census {attempt}: {census:?}");
        let d = &w.decisions(&mailbox, &format!("&message_id={lost}")).await;
        assert_eq!(d.len(), 1, "{d:?}");
        let expected = if attempt == 2 { "retrying" } else { "failed" };
        assert_eq!(d[0]["outcome"], expected, "census {attempt}: {d:?}");
        assert_eq!(d[0]["attempts"], attempt.min(3), "census {attempt}: {d:?}");
    }
    assert_eq!(
        census_alerts(&w, &mailbox).await.len(),
        1,
        "no new census alert"
    );
    let items = w
        .get(&format!("/alerts?scope=item&mailbox_id={mailbox}"))
        .await;
    assert_eq!(items["items"].as_array().unwrap().len(), 1, "{items}");
    let mut session = ImapSession::connect(&imap_for(&w, &login)).await.unwrap();
    let undeliverable = session.select("Undeliverable").await.unwrap();
    assert_eq!(undeliverable.exists, 1);
    session.logout().await;
    assert!(w.emails(&format!("&message_id={lost}")).await.is_empty());
}
