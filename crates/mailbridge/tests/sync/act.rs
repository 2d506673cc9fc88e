//! Appointments, contacts and tasks (ACT) end to end: the engine and the API in
//! this process against the real Radicale of the test harness, whose users share
//! their passwords with Dovecot. A `DavClient` in the test plays the user's
//! calendar and address book app.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mailbridge_connectors::dav::{
    CalendarResource, CollectionKind, DavClient, DavConfig, ItemFormat,
};
use mailbridge_domain::act::model::{ActItem, ActKind};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::secret::Secret;
use mailbridge_engine::MailboxContext;
use mailbridge_engine::act::dav_map::{contact_from_card, item_from_resource};
use mailbridge_engine::act::server::{
    ActServer, OrgClaim, ServerChanges, ServerCollection, ServerFetch, WriteError, Written,
};
use mailbridge_engine::act::{self, DavServer};
use mailbridge_testkit::TestUser;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, wait};
use crate::metrics::{scrape, value};

const SLOW: Duration = Duration::from_secs(30);

/// A World whose profile has Radicale as its CalDAV/CardDAV location.
async fn act_world(backend: Backend) -> World {
    let w = World::start(backend, fast_engine()).await;
    let dav = w.servers.dav_url().to_owned();
    w.patch(
        &format!("/email-server-profiles/{}", w.profile),
        json!({"dav_location": dav}),
    )
    .await;
    w
}

/// A member whose mailbox synchronizes ACT only (email off), signing in with the
/// bare login Radicale knows.
async fn act_member(w: &World) -> (String, String, TestUser) {
    let (user, mailbox, login) = w.member("all").await;
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"username": login.login, "incoming_method": "none", "outgoing_method": "none",
               "act_method": "server_side_sync"}),
    )
    .await;
    (user["id"].as_str().unwrap().to_owned(), mailbox, login)
}

/// The same person's mailbox in another World (another organization).
async fn same_person(w: &World, login: &TestUser) -> (String, String) {
    let user = w
        .post(
            "/users",
            json!({"full_name": format!("User {}", login.login), "email": login.address, "tracking_filter": "all"}),
        )
        .await;
    let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"profile_id": w.profile, "password": login.password, "username": login.login,
               "incoming_method": "none", "outgoing_method": "none", "act_method": "server_side_sync"}),
    )
    .await;
    let (status, v) = w
        .try_call(
            Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
            json!({"ids": [mailbox]}),
            &w.approver,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    (user["id"].as_str().unwrap().to_owned(), mailbox)
}

/// The user's calendar and address book app.
fn app(w: &World, login: &TestUser) -> DavClient {
    DavClient::new(DavConfig::new(
        w.servers.dav_url(),
        login.login.clone(),
        Secret::new(login.password.clone()),
    ))
    .unwrap()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn mailbox_json(w: &World, mailbox: &str) -> Value {
    w.get(&format!("/mailboxes/{mailbox}")).await
}

async fn wait_act_status(w: &World, mailbox: &str, status: &str) -> Value {
    wait(&format!("ACT status {status}"), SLOW, || async {
        let m = mailbox_json(w, mailbox).await;
        (m["act_status"] == status).then_some(m)
    })
    .await
}

/// The collection the engine chose for `kind`, once it has.
async fn collection(w: &World, mailbox: &str, kind: ActKind) -> String {
    wait("the collections", SLOW, || async {
        w.store
            .act_collections(&w.org, mailbox, kind)
            .await
            .unwrap()
            .into_iter()
            .next()
            .map(|c| c.href)
    })
    .await
}

/// Every item of a collection as the app reads it: (href, etag, item).
async fn items(app: &DavClient, href: &str, kind: ActKind) -> Vec<(String, String, ActItem)> {
    let listing = app.full_listing(href).await.unwrap();
    let hrefs: Vec<String> = listing.changed.iter().map(|v| v.href.clone()).collect();
    if hrefs.is_empty() {
        return Vec::new();
    }
    let ck = match kind {
        ActKind::Contact => CollectionKind::AddressBook,
        _ => CollectionKind::Calendar,
    };
    let fetched = app.multiget(href, ck, &hrefs).await.unwrap();
    fetched
        .items
        .into_iter()
        .filter_map(|f| {
            let item = match kind {
                ActKind::Contact => Some(ActItem::Contact(contact_from_card(
                    &mailbridge_connectors::dav::Contact::parse(&f.data).ok()?,
                    &f.href,
                ))),
                _ => item_from_resource(kind, &CalendarResource::parse(&f.data).ok()?)
                    .ok()
                    .flatten(),
            }?;
            Some((f.href, f.etag, item))
        })
        .collect()
}

fn title(item: &ActItem) -> &str {
    match item {
        ActItem::Appointment(a) => &a.summary,
        ActItem::Task(t) => &t.summary,
        ActItem::Contact(c) => &c.formatted_name,
    }
}

/// The item titled `t` on the server, once it is there.
async fn on_server(
    app: &DavClient,
    href: &str,
    kind: ActKind,
    t: &str,
) -> (String, String, ActItem) {
    wait(&format!("{t:?} on the server"), SLOW, || async {
        items(app, href, kind)
            .await
            .into_iter()
            .find(|(_, _, i)| title(i) == t)
    })
    .await
}

async fn gone_from_server(app: &DavClient, href: &str, kind: ActKind, t: &str) {
    wait(&format!("{t:?} gone from the server"), SLOW, || async {
        (!items(app, href, kind)
            .await
            .iter()
            .any(|(_, _, i)| title(i) == t))
        .then_some(())
    })
    .await;
}

/// The record of `path` (appointments, tasks, contacts) with `field` = `t`, once there.
async fn in_store(w: &World, path: &str, field: &str, t: &str) -> Value {
    wait(&format!("{t:?} in {path}"), SLOW, || async {
        let page = w.get(&format!("/{path}?limit=200")).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[field] == t)
            .cloned()
    })
    .await
}

fn ics(component: &str, uid: &str, lines: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test app//EN\r\nBEGIN:{component}\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{lines}END:{component}\r\nEND:VCALENDAR\r\n"
    )
}

async fn decisions(w: &World, mailbox: &str, query: &str) -> Vec<Value> {
    w.get(&format!(
        "/mailboxes/{mailbox}/act-decisions?limit=500{query}"
    ))
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn has_decision(w: &World, mailbox: &str, action: &str, record: &str) -> Value {
    wait(&format!("a {action} decision"), SLOW, || async {
        decisions(w, mailbox, &format!("&record_id={record}"))
            .await
            .into_iter()
            .find(|d| d["action"] == action && d["outcome"] == "done")
    })
    .await
}

#[tokio::test]
async fn events_tasks_and_contacts_sync_both_ways() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        two_way(backend).await;
    }
}

async fn two_way(backend: Backend) {
    let w = act_world(backend).await;
    let (user, mailbox, login) = act_member(&w).await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let m = wait_act_status(&w, &mailbox, "success").await;
    assert_eq!(m["act_enabled"], true);
    let app = app(&w, &login);
    let calendar = collection(&w, &mailbox, ActKind::Appointment).await;
    let tasks = collection(&w, &mailbox, ActKind::Task).await;
    let contacts = collection(&w, &mailbox, ActKind::Contact).await;
    assert!(calendar != tasks, "tasks get a list of their own");

    // Store → server: records the user owns.
    let appt = w
        .post(
            "/appointments",
            json!({"subject": "Kick-off", "start": "2026-05-04T08:00:00Z", "end": "2026-05-04T09:00:00Z",
                   "time_zone": "Europe/Paris", "location": "Room 2", "owner_id": user}),
        )
        .await;
    let task = w
        .post(
            "/tasks",
            json!({"subject": "Send the quote", "due": "2026-05-08T16:00:00Z", "owner_id": user}),
        )
        .await;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Bo Berg", "email": "bo@fabrikam.example", "owner_id": user}),
        )
        .await;
    let (_, _, event) = on_server(&app, &calendar, ActKind::Appointment, "Kick-off").await;
    let ActItem::Appointment(e) = &event else {
        panic!()
    };
    assert_eq!(e.location.as_deref(), Some("Room 2"));
    assert_eq!(
        serde_json::to_value(&e.start).unwrap(),
        json!({"zoned": {"local": "2026-05-04T10:00:00", "tz": "Europe/Paris"}})
    );
    let (task_href, task_etag, _) = on_server(&app, &tasks, ActKind::Task, "Send the quote").await;
    on_server(&app, &contacts, ActKind::Contact, "Bo Berg").await;

    // Server → store: items the app puts in the tracked collections.
    app.create(
        &calendar,
        "lunch.ics",
        ItemFormat::ICalendar,
        &ics(
            "VEVENT",
            "lunch@app.example",
            "DTSTART:20260506T110000Z\r\nDTEND:20260506T120000Z\r\nSUMMARY:Lunch with Bo\r\n",
        ),
    )
    .await
    .unwrap();
    app.create(
        &tasks,
        "call.ics",
        ItemFormat::ICalendar,
        &ics(
            "VTODO",
            "call@app.example",
            "SUMMARY:Call Bo\r\nSTATUS:NEEDS-ACTION\r\nPRIORITY:1\r\n",
        ),
    )
    .await
    .unwrap();
    app.create(
        &contacts,
        "cy.vcf",
        ItemFormat::VCard,
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:cy@app.example\r\nFN:Cy Dahl\r\nN:Dahl;Cy;;;\r\nEMAIL;TYPE=WORK:cy@fabrikam.example\r\nEND:VCARD\r\n",
    )
    .await
    .unwrap();
    let lunch = in_store(&w, "appointments", "subject", "Lunch with Bo").await;
    assert_eq!(lunch["owner_id"], user.as_str());
    assert_eq!(lunch["ical_uid"], "lunch@app.example");
    let call = in_store(&w, "tasks", "subject", "Call Bo").await;
    assert_eq!(call["priority"], "high");
    let cy = in_store(&w, "contacts", "name", "Cy Dahl").await;
    assert_eq!(cy["email"], "cy@fabrikam.example");

    // Updates both ways.
    w.patch(
        &format!("/appointments/{}", id(&appt)),
        json!({"subject": "Kick-off (agenda attached)"}),
    )
    .await;
    on_server(
        &app,
        &calendar,
        ActKind::Appointment,
        "Kick-off (agenda attached)",
    )
    .await;
    let (_, _, t) = on_server(&app, &tasks, ActKind::Task, "Send the quote").await;
    let ActItem::Task(mut t) = t else { panic!() };
    let current = app.etag_of(&task_href).await.unwrap();
    assert_eq!(current, task_etag, "nothing rewrote the task meanwhile");
    t.summary = "Send the revised quote".into();
    t.status = mailbridge_domain::act::model::TodoStatus::InProcess;
    t.percent = Some(50);
    let text = act::dav_map::resource_from_item(&ActItem::Task(t), None)
        .unwrap()
        .to_ics()
        .unwrap();
    app.update(&task_href, &current, ItemFormat::ICalendar, &text)
        .await
        .unwrap();
    let revised = in_store(&w, "tasks", "subject", "Send the revised quote").await;
    assert_eq!(revised["id"], task["id"]);
    assert_eq!(revised["status"], "in_progress");
    assert_eq!(revised["percent_complete"], 50);

    // Deletes: a record deleted in the store goes from the server; a task deleted
    // on the server deletes its record; an appointment deleted there stays.
    let (status, _) = w
        .try_call(
            Method::DELETE,
            &format!("/api/v1/orgs/{}/contacts/{}", w.org, id(&contact)),
            Value::Null,
            &w.admin,
        )
        .await;
    assert_eq!(status, 204);
    gone_from_server(&app, &contacts, ActKind::Contact, "Bo Berg").await;
    let (call_href, call_etag, _) = on_server(&app, &tasks, ActKind::Task, "Call Bo").await;
    app.delete(&call_href, &call_etag).await.unwrap();
    wait("the task deleted in the store", SLOW, || async {
        let (status, _) = w
            .try_call(
                Method::GET,
                &format!("/api/v1/orgs/{}/tasks/{}", w.org, id(&call)),
                Value::Null,
                &w.admin,
            )
            .await;
        (status == 404).then_some(())
    })
    .await;
    let (lunch_href, lunch_etag, _) =
        on_server(&app, &calendar, ActKind::Appointment, "Lunch with Bo").await;
    app.delete(&lunch_href, &lunch_etag).await.unwrap();
    has_decision(&w, &mailbox, "unlink", &id(&lunch)).await;
    w.get(&format!("/appointments/{}", id(&lunch))).await;

    // The trail and the links tell what happened.
    for (action, record) in [
        ("create_on_server", id(&appt)),
        ("update_server", id(&appt)),
        ("create_in_store", id(&lunch)),
        ("create_in_store", id(&cy)),
        ("update_store", id(&task)),
        ("delete_on_server", id(&contact)),
        ("delete_in_store", id(&call)),
    ] {
        let d = has_decision(&w, &mailbox, action, &record).await;
        assert!(!d["reason"].as_str().unwrap().is_empty(), "{d}");
    }
    let links = w
        .get(&format!("/mailboxes/{mailbox}/act-links?limit=100"))
        .await;
    let linked: Vec<&str> = links["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["record_id"].as_str().unwrap())
        .collect();
    for (record, expected) in [
        (id(&appt), true),
        (id(&task), true),
        (id(&cy), true),
        (id(&contact), false),
        (id(&call), false),
        (id(&lunch), false),
    ] {
        assert_eq!(
            linked.contains(&record.as_str()),
            expected,
            "{record}: {links}"
        );
    }

    // Statuses and metrics moved.
    let m = mailbox_json(&w, &mailbox).await;
    assert_eq!(m["act_status"], "success");
    let exp = scrape(&w).await;
    assert!(
        value(
            &exp,
            "mailbridge_runs",
            &[("workload", "act"), ("outcome", "succeeded")]
        ) >= 2.0
    );
    assert!(
        value(
            &exp,
            "mailbridge_items",
            &[("workload", "act"), ("outcome", "written")]
        ) >= 10.0
    );
}

const SERIES: &str = "BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test app//EN\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:weekly-sync@app.example\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260105T090000\r
DTEND;TZID=Europe/Berlin:20260105T093000\r
RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO\r
EXDATE;TZID=Europe/Berlin:20260112T090000\r
SUMMARY:Weekly sync\r
ATTENDEE;CN=Bo;PARTSTAT=ACCEPTED:mailto:bo@fabrikam.example\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:weekly-sync@app.example\r
DTSTAMP:20260101T000000Z\r
RECURRENCE-ID;TZID=Europe/Berlin:20260119T090000\r
DTSTART;TZID=Europe/Berlin:20260119T100000\r
DTEND;TZID=Europe/Berlin:20260119T103000\r
SUMMARY:Weekly sync (moved)\r
END:VEVENT\r
END:VCALENDAR\r
";

#[tokio::test]
async fn a_recurring_series_with_an_exception_survives_a_round_trip() {
    let w = act_world(Backend::Sqlite).await;
    let (_, mailbox, login) = act_member(&w).await;
    w.test_and_enable(&[&mailbox]).await;
    wait_act_status(&w, &mailbox, "success").await;
    let app = app(&w, &login);
    let calendar = collection(&w, &mailbox, ActKind::Appointment).await;
    app.create(&calendar, "weekly.ics", ItemFormat::ICalendar, SERIES)
        .await
        .unwrap();
    let before = item_from_resource(
        ActKind::Appointment,
        &CalendarResource::parse(SERIES).unwrap(),
    )
    .unwrap()
    .unwrap();

    // In the store: the series, its exception and its zone.
    let record = in_store(&w, "appointments", "subject", "Weekly sync").await;
    assert_eq!(record["time_zone"], "Europe/Berlin");
    assert_eq!(
        record["recurrence"]["rrule"],
        "FREQ=WEEKLY;COUNT=10;BYDAY=MO"
    );
    assert_eq!(record["exceptions"][0]["summary"], "Weekly sync (moved)");
    assert_eq!(record["start"], "2026-01-05T08:00:00Z");

    // Back to the server through a store edit: only the edit differs.
    w.patch(
        &format!("/appointments/{}", id(&record)),
        json!({"location": "Room 7"}),
    )
    .await;
    let after = wait("the edit on the server", SLOW, || async {
        items(&app, &calendar, ActKind::Appointment)
            .await
            .into_iter()
            .map(|(_, _, i)| i)
            .find(
                |i| matches!(i, ActItem::Appointment(a) if a.location.as_deref() == Some("Room 7")),
            )
    })
    .await;
    let ActItem::Appointment(mut expected) = before else {
        panic!()
    };
    expected.location = Some("Room 7".into());
    assert_eq!(after, ActItem::Appointment(expected));
    // The server kept the VTIMEZONE the app defined.
    let (href, _, _) = on_server(&app, &calendar, ActKind::Appointment, "Weekly sync").await;
    let text = app.get(&href).await.unwrap().data;
    assert!(text.contains("BEGIN:VTIMEZONE"), "{text}");
}

#[tokio::test]
async fn edits_on_both_sides_are_merged_and_the_loser_is_in_the_trail() {
    let w = act_world(Backend::Sqlite).await;
    let (user, mailbox, login) = act_member(&w).await;
    w.test_and_enable(&[&mailbox]).await;
    wait_act_status(&w, &mailbox, "success").await;
    let app = app(&w, &login);
    let calendar = collection(&w, &mailbox, ActKind::Appointment).await;
    let appt = w
        .post(
            "/appointments",
            json!({"subject": "Budget review", "start": "2026-06-01T08:00:00Z", "end": "2026-06-01T09:00:00Z",
                   "categories": ["Finance"], "owner_id": user}),
        )
        .await;
    let (href, etag, item) =
        on_server(&app, &calendar, ActKind::Appointment, "Budget review").await;
    wait("the link", SLOW, || async {
        let l = w
            .store
            .act_link(&w.org, &mailbox, ActKind::Appointment, &id(&appt))
            .await
            .unwrap()?;
        (l.server_etag.as_deref() == Some(etag.as_str())).then_some(())
    })
    .await;

    // Hold the mailbox's lease so that no run sees one edit without the other.
    // (A run may hold it now: wait for its end.)
    wait("the mailbox's lease", SLOW, || async {
        let now = Utc::now();
        w.store
            .acquire_lease(
                &mailbox,
                "the-test",
                now,
                now + chrono::Duration::seconds(60),
            )
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    w.patch(
        &format!("/appointments/{}", id(&appt)),
        json!({"subject": "Budget review (store)", "categories": ["Finance", "Board"]}),
    )
    .await;
    let ActItem::Appointment(mut a) = item else {
        panic!()
    };
    a.summary = "Budget review (phone)".into();
    a.start = mailbridge_domain::act::model::EventTime::Utc(at("2026-06-01T10:00:00Z"));
    a.end = mailbridge_domain::act::model::EventTime::Utc(at("2026-06-01T11:00:00Z"));
    a.categories.push("Travel".into());
    let text = act::dav_map::resource_from_item(&ActItem::Appointment(a), None)
        .unwrap()
        .to_ics()
        .unwrap();
    app.update(&href, &etag, ItemFormat::ICalendar, &text)
        .await
        .unwrap();
    w.store.release_lease(&mailbox, "the-test").await.unwrap();
    w.engine.wake.notify_one();

    // The store organizes the meeting (no organizer): the store's subject wins the
    // content, the phone's time (changed on that side only) is taken, categories
    // are merged.
    let d = has_decision(&w, &mailbox, "conflict(merge, organizer=store)", &id(&appt)).await;
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("Budget review (phone)"),
        "the loser is kept: {reason}"
    );
    let record = wait("the merge in the store", SLOW, || async {
        let r = w.get(&format!("/appointments/{}", id(&appt))).await;
        (r["start"] == "2026-06-01T10:00:00Z").then_some(r)
    })
    .await;
    assert_eq!(record["subject"], "Budget review (store)");
    let mut categories: Vec<&str> = record["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    categories.sort();
    assert_eq!(categories, ["Board", "Finance", "Travel"]);
    let (_, _, merged) = on_server(
        &app,
        &calendar,
        ActKind::Appointment,
        "Budget review (store)",
    )
    .await;
    let ActItem::Appointment(m) = merged else {
        panic!()
    };
    assert_eq!(
        m.start,
        mailbridge_domain::act::model::EventTime::Utc(at("2026-06-01T10:00:00Z"))
    );
    assert_eq!(m.categories.len(), 3, "{:?}", m.categories);
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The server side with a rival: before the first update it lets go through, the
/// "phone" edits the same item, so the engine's write finds a newer ETag (412).
struct Racing<'a> {
    inner: &'a DavServer,
    phone: DavClient,
    raced: std::sync::atomic::AtomicBool,
}

impl ActServer for Racing<'_> {
    fn collections(&self) -> Vec<ServerCollection> {
        self.inner.collections()
    }

    async fn changes(
        &self,
        c: &ServerCollection,
        token: Option<&str>,
    ) -> Result<ServerChanges, SyncError> {
        self.inner.changes(c, token).await
    }

    async fn fetch(
        &self,
        c: &ServerCollection,
        hrefs: &[String],
    ) -> Result<ServerFetch, SyncError> {
        self.inner.fetch(c, hrefs).await
    }

    async fn create(&self, c: &ServerCollection, item: &ActItem) -> Result<Written, WriteError> {
        self.inner.create(c, item).await
    }

    async fn update(
        &self,
        c: &ServerCollection,
        href: &str,
        if_match: &str,
        item: &ActItem,
    ) -> Result<Written, WriteError> {
        if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let current = self.phone.get(href).await.unwrap();
            let mut res = CalendarResource::parse(&current.data).unwrap();
            res.events[0].categories.push("FromPhone".into());
            self.phone
                .update(
                    href,
                    &current.etag,
                    ItemFormat::ICalendar,
                    &res.to_ics().unwrap(),
                )
                .await
                .unwrap();
        }
        self.inner.update(c, href, if_match, item).await
    }

    async fn delete(&self, href: &str, if_match: &str) -> Result<(), WriteError> {
        self.inner.delete(href, if_match).await
    }

    async fn claim(&self, c: &ServerCollection) -> Result<Option<OrgClaim>, SyncError> {
        self.inner.claim(c).await
    }

    async fn set_claim(&self, c: &ServerCollection, claim: &OrgClaim) -> Result<(), SyncError> {
        self.inner.set_claim(c, claim).await
    }

    fn read_back(&self, item: &ActItem) -> ActItem {
        self.inner.read_back(item)
    }
}

#[tokio::test]
async fn a_stale_etag_is_read_again_and_planned_anew() {
    let w = act_world(Backend::Sqlite).await;
    let (user, mailbox, login) = act_member(&w).await;
    // Not enabled: this test runs the executor itself, the scheduler leaves it be.
    let ctx = MailboxContext::load(&w.store, &w.org, &mailbox)
        .await
        .unwrap();
    let dav = DavServer::connect(&w.engine, &ctx).await.unwrap();
    let appt = w
        .post(
            "/appointments",
            json!({"subject": "Site visit", "start": "2026-07-01T08:00:00Z", "end": "2026-07-01T09:00:00Z",
                   "owner_id": user}),
        )
        .await;
    let first = act::run_with(&w.engine, &ctx, &dav).await.unwrap();
    assert!(first.written >= 1, "{first:?}");

    w.patch(
        &format!("/appointments/{}", id(&appt)),
        json!({"subject": "Site visit (with safety briefing)"}),
    )
    .await;
    let racing = Racing {
        inner: &dav,
        phone: app(&w, &login),
        raced: Default::default(),
    };
    let report = act::run_with(&w.engine, &ctx, &racing).await.unwrap();
    assert_eq!(
        (report.skipped, report.failed),
        (0, 0),
        "{report:?} {:?}",
        decisions(&w, &mailbox, "").await
    );

    // The lost race is in the trail, then the new plan from fresh facts.
    let trail = decisions(&w, &mailbox, &format!("&record_id={}", id(&appt))).await;
    let actions: Vec<(String, String)> = trail
        .iter()
        .rev()
        .map(|d| {
            (
                d["action"].as_str().unwrap().to_owned(),
                d["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let stale = trail
        .iter()
        .find(|d| d["outcome"] == "skipped")
        .expect("the lost race");
    assert_eq!(stale["action"], "update_server");
    assert!(stale["error"].as_str().unwrap().contains("412"), "{stale}");
    let after_race: Vec<&str> = actions
        .iter()
        .skip_while(|(_, o)| o != "skipped")
        .skip(1)
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(
        after_race,
        [
            "conflict(merge, organizer=store)",
            "update_store",
            "update_server"
        ],
        "{actions:?}"
    );
    let calendar = collection(&w, &mailbox, ActKind::Appointment).await;
    let (_, _, item) = on_server(
        &app(&w, &login),
        &calendar,
        ActKind::Appointment,
        "Site visit (with safety briefing)",
    )
    .await;
    let ActItem::Appointment(a) = item else {
        panic!()
    };
    assert_eq!(a.categories, ["FromPhone"], "the phone's edit is kept");
    let record = w.get(&format!("/appointments/{}", id(&appt))).await;
    assert_eq!(record["categories"], json!(["FromPhone"]));
    let link = w
        .store
        .act_link(&w.org, &mailbox, ActKind::Appointment, &id(&appt))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.last_error, None);
}

#[tokio::test]
async fn the_org_claim_blocks_another_organization_until_it_takes_over() {
    let a = act_world(Backend::Postgres).await;
    let (_, mailbox_a, login) = act_member(&a).await;
    a.test_and_enable(&[&mailbox_a]).await;
    wait_act_status(&a, &mailbox_a, "success").await;
    let app = app(&a, &login);
    let calendar = collection(&a, &mailbox_a, ActKind::Appointment).await;
    let claim_of = |org: String| {
        let app = app.clone();
        let calendar = calendar.clone();
        async move {
            app.claim(&calendar)
                .await
                .unwrap()
                .filter(|c| c.organization == org)
        }
    };
    wait("organization A's claim", SLOW, || claim_of(a.org.clone())).await;

    // Organization B, same person: its Test & Enable fails ACT with the alert.
    let b = act_world(Backend::Sqlite).await;
    let (_, mailbox_b) = same_person(&b, &login).await;
    let job = b.test_and_enable(&[&mailbox_b]).await;
    let item = &job["items"][0];
    assert_eq!(item["status"], "failed", "{job}");
    assert_eq!(mailbox_json(&b, &mailbox_b).await["act_status"], "failure");
    assert!(
        item["message"]
            .as_str()
            .unwrap()
            .contains(act::CONFIGURED_WITH_ANOTHER_ORGANIZATION),
        "{job}"
    );
    let alerts = b
        .get(&format!("/alerts?mailbox_id={mailbox_b}&severity=error"))
        .await;
    let alert = &alerts["items"][0];
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains(act::CONFIGURED_WITH_ANOTHER_ORGANIZATION),
        "{alerts}"
    );
    assert_eq!(mailbox_json(&b, &mailbox_b).await["act_enabled"], false);

    // Ticking the box (and testing again) takes the claim over.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b.patch(
        &format!("/mailboxes/{mailbox_b}"),
        json!({"sync_with_this_org_only": true}),
    )
    .await;
    let job = b.test_and_enable(&[&mailbox_b]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    wait("organization B's claim", SLOW, || claim_of(b.org.clone())).await;
    wait_act_status(&b, &mailbox_b, "success").await;

    // Organization A now finds B's claim: ACT stops there, with the alert.
    let m = wait_act_status(&a, &mailbox_a, "failure").await;
    assert_eq!(m["act_enabled"], false);
    let alerts = a
        .get(&format!("/alerts?mailbox_id={mailbox_a}&severity=error"))
        .await;
    assert!(
        alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["message"]
                .as_str()
                .unwrap()
                .contains(act::CONFIGURED_WITH_ANOTHER_ORGANIZATION)),
        "{alerts}"
    );
    let exp = scrape(&a).await;
    assert!(
        value(
            &exp,
            "mailbridge_runs",
            &[("workload", "act"), ("outcome", "failed_permanent")]
        ) >= 1.0
    );
}
