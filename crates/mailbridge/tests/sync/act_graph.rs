//! Appointments, contacts and tasks (ACT) end to end for Exchange Online: the
//! engine and the API in this process against the testkit's Graph test server
//! behind its test identity provider. The Graph test server's helpers play
//! Outlook and To Do (`add_event`, `update_task_on_server`, ...).

use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, Utc};
use mailbridge_connectors::graph::CLAIM_PROPERTY_ID;
use mailbridge_domain::act::model::{ActItem, ActKind};
use mailbridge_domain::error_model::SyncError;
use mailbridge_engine::MailboxContext;
use mailbridge_engine::act::server::{
    ActServer, OrgClaim, ServerChanges, ServerCollection, ServerFetch, WriteError, Written,
};
use mailbridge_engine::act::{self, GraphServer};
use mailbridge_testkit::graph_server::GraphTestServer;
use mailbridge_testkit::identity_server::AppRegistration;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, wait};
use crate::hosts::{Graph, MailHost, Member};
use crate::metrics::{scrape, value};

const SLOW: Duration = Duration::from_secs(30);

/// The application of the second organization, in the same tenant.
const SECOND_APP: &str = "0b7d4f1e-5a2c-4e8b-9c3d-2f6a1e0d9b77";

/// A member of the Graph World whose mailbox synchronizes ACT only.
async fn act_member(g: &Graph) -> Member {
    let m = g.member("all").await;
    g.w.patch(
        &format!("/mailboxes/{}", m.mailbox),
        json!({"incoming_method": "none", "outgoing_method": "none", "act_method": "server_side_sync"}),
    )
    .await;
    m
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn user_id(m: &Member) -> String {
    id(&m.user)
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

/// Waits for a complete ACT run that started after now.
async fn next_run(w: &World, mailbox: &str) {
    let after = Utc::now();
    w.engine.wake.notify_one();
    wait("a later ACT run", SLOW, || async {
        let state = w.store.act_run_state(mailbox).await.unwrap();
        state.act_synced_from.filter(|t| *t > after).map(|_| ())
    })
    .await;
}

/// The To Do list the engine chose, once it has.
async fn task_list(w: &World, mailbox: &str) -> String {
    let href = wait("the task list", SLOW, || async {
        w.store
            .act_collections(&w.org, mailbox, ActKind::Task)
            .await
            .unwrap()
            .into_iter()
            .next()
            .map(|c| c.href)
    })
    .await;
    href.trim_start_matches("todo/lists/").to_owned()
}

/// The first item of `items` whose `field` is `t`, once there.
async fn on_server<F>(what: &str, t: &str, field: &str, items: F) -> Value
where
    F: Fn() -> Vec<Value>,
{
    wait(&format!("{what} {t:?} in Exchange"), SLOW, || async {
        items().into_iter().find(|v| v[field] == t)
    })
    .await
}

async fn gone_from_server<F>(what: &str, t: &str, field: &str, items: F)
where
    F: Fn() -> Vec<Value>,
{
    wait(
        &format!("{what} {t:?} gone from Exchange"),
        SLOW,
        || async { (!items().iter().any(|v| v[field] == t)).then_some(()) },
    )
    .await;
}

/// The record of `path` with `field` = `t`, once there.
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

/// An instant `days` from now at `hour`:00 UTC, as the API takes it.
fn day_at(days: u64, hour: u32) -> String {
    let d = Utc::now().date_naive() + Days::new(days);
    format!("{d}T{hour:02}:00:00Z")
}

/// Graph's `dateTimeTimeZone`.
fn graph_time(date: NaiveDate, time: &str, zone: &str) -> Value {
    json!({"dateTime": format!("{date}T{time}.0000000"), "timeZone": zone})
}

#[tokio::test]
async fn events_tasks_and_contacts_sync_both_ways() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        two_way(backend).await;
    }
}

async fn two_way(backend: Backend) {
    let g = Graph::start(backend, true).await;
    let w = &g.w;
    let m = act_member(&g).await;
    let (user, mailbox, upn) = (user_id(&m), m.mailbox.clone(), m.address.clone());
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let status = wait_act_status(w, &mailbox, "success").await;
    assert_eq!(status["act_enabled"], true);
    let list = task_list(w, &mailbox).await;
    let graph = &g.graph;
    let events = || graph.events(&upn);
    let tasks = || graph.tasks(&upn, &list);
    let contacts = || graph.contacts(&upn);

    // Store → Exchange: records the user owns.
    let appt = w
        .post(
            "/appointments",
            json!({"subject": "Kick-off", "start": day_at(20, 8), "end": day_at(20, 9),
                   "time_zone": "Europe/Paris", "location": "Room 2", "owner_id": user}),
        )
        .await;
    let task = w
        .post(
            "/tasks",
            json!({"subject": "Send the quote", "due": day_at(25, 16), "percent_complete": 30,
                   "owner_id": user}),
        )
        .await;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Bo Berg", "email": "bo@fabrikam.example", "owner_id": user}),
        )
        .await;
    let event = on_server("the event", "Kick-off", "subject", events).await;
    assert_eq!(event["location"]["displayName"], "Room 2");
    assert_eq!(event["start"]["timeZone"], "Europe/Paris", "{event}");
    let todo = on_server("the task", "Send the quote", "title", tasks).await;
    on_server("the contact", "Bo Berg", "displayName", contacts).await;

    // Exchange → store: items the user tracked with the category; an untracked
    // one stays out.
    let soon = Utc::now().date_naive() + Days::new(22);
    graph.add_event(
        &upn,
        json!({"subject": "Private dentist", "start": graph_time(soon, "07:00:00", "UTC"),
               "end": graph_time(soon, "08:00:00", "UTC")}),
    );
    let lunch_id = graph.add_event(
        &upn,
        json!({"subject": "Lunch with Bo", "start": graph_time(soon, "11:00:00", "UTC"),
               "end": graph_time(soon, "12:00:00", "UTC"), "categories": ["Tracked"]}),
    );
    let call_id = graph.add_task(
        &upn,
        &list,
        json!({"title": "Call Bo", "importance": "high", "status": "notStarted", "categories": ["Tracked"]}),
    );
    graph.add_contact(
        &upn,
        json!({"displayName": "Cy Dahl", "givenName": "Cy", "surname": "Dahl",
               "emailAddresses": [{"address": "cy@fabrikam.example", "name": "Cy Dahl"}],
               "categories": ["Tracked"]}),
    );
    let lunch = in_store(w, "appointments", "subject", "Lunch with Bo").await;
    assert_eq!(lunch["owner_id"], user.as_str());
    let call = in_store(w, "tasks", "subject", "Call Bo").await;
    assert_eq!(call["priority"], "high");
    let cy = in_store(w, "contacts", "name", "Cy Dahl").await;
    assert_eq!(cy["email"], "cy@fabrikam.example");
    let page = w.get("/appointments?limit=200").await;
    assert!(
        !page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["subject"] == "Private dentist"),
        "an untracked event stays out: {page}"
    );

    // Outlook edits what Graph carries of a contact (its address, a category):
    // the record takes both.
    let cy_id = graph
        .contacts(&upn)
        .iter()
        .find(|c| c["displayName"] == "Cy Dahl")
        .and_then(|c| c["id"].as_str().map(str::to_owned))
        .expect("Cy on the server");
    graph.update_contact_on_server(
        &upn,
        &cy_id,
        json!({"businessAddress": {"street": "1 Harbour Road", "city": "Oslo", "countryOrRegion": "Norway"},
               "categories": ["Tracked", "VIP"]}),
    );
    let cy_after = wait(
        "the Outlook edit in the record",
        Duration::from_secs(30),
        || async {
            let c = w.get(&format!("/contacts/{}", id(&cy))).await;
            let has_address = c["details"]["addresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["street"] == "1 Harbour Road"));
            has_address.then_some(c)
        },
    )
    .await;
    assert!(
        cy_after["details"]["categories"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x == "VIP")),
        "{cy_after}"
    );

    // Updates both ways; To Do's edit keeps the percent To Do cannot hold.
    w.patch(
        &format!("/appointments/{}", id(&appt)),
        json!({"subject": "Kick-off (agenda attached)"}),
    )
    .await;
    on_server("the event", "Kick-off (agenda attached)", "subject", events).await;
    graph.update_task_on_server(
        &upn,
        &list,
        todo["id"].as_str().unwrap(),
        json!({"title": "Send the revised quote", "status": "inProgress"}),
    );
    let revised = in_store(w, "tasks", "subject", "Send the revised quote").await;
    assert_eq!(revised["id"], task["id"]);
    assert_eq!(revised["status"], "in_progress");
    assert_eq!(revised["percent_complete"], 30, "{revised}");

    // Deletes: a record deleted in the store goes from Exchange; a task deleted in
    // To Do deletes its record; an event deleted in Outlook only unlinks.
    let (status, _) = w
        .try_call(
            Method::DELETE,
            &format!("/api/v1/orgs/{}/contacts/{}", w.org, id(&contact)),
            Value::Null,
            &w.admin,
        )
        .await;
    assert_eq!(status, 204);
    gone_from_server("the contact", "Bo Berg", "displayName", contacts).await;
    graph.delete_task_on_server(&upn, &list, &call_id);
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
    graph.delete_event_on_server(&upn, &lunch_id);
    has_decision(w, &mailbox, "unlink", &id(&lunch)).await;
    w.get(&format!("/appointments/{}", id(&lunch))).await;

    // The trail and the links tell what happened.
    for (action, record) in [
        ("create_on_server", id(&appt)),
        ("update_server", id(&appt)),
        ("create_on_server", id(&task)),
        ("create_on_server", id(&contact)),
        ("create_in_store", id(&lunch)),
        ("create_in_store", id(&cy)),
        ("update_store", id(&task)),
        ("delete_on_server", id(&contact)),
        ("delete_in_store", id(&call)),
    ] {
        let d = has_decision(w, &mailbox, action, &record).await;
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

    // What Exchange cannot carry (the task's percent, the contact's email kind)
    // never reads as a change of Exchange's side: later runs write nothing more.
    next_run(w, &mailbox).await;
    next_run(w, &mailbox).await;
    for (record, expected) in [
        (id(&appt), vec!["create_on_server", "update_server"]),
        (id(&task), vec!["create_on_server", "update_store"]),
        (id(&cy), vec!["create_in_store", "update_store"]),
    ] {
        let mut actions: Vec<String> = decisions(w, &mailbox, &format!("&record_id={record}"))
            .await
            .iter()
            .map(|d| d["action"].as_str().unwrap().to_owned())
            .collect();
        actions.reverse();
        assert_eq!(actions, expected, "{record}");
    }
    let m = mailbox_json(w, &mailbox).await;
    assert_eq!(m["act_status"], "success");
    let exp = scrape(w).await;
    assert!(
        value(
            &exp,
            "mailbridge_runs",
            &[("workload", "act"), ("outcome", "succeeded")]
        ) >= 1.0
    );
}

/// The next Monday at least a week from today.
fn next_monday() -> NaiveDate {
    let today = Utc::now().date_naive() + Days::new(7);
    today + Days::new(u64::from((7 - today.weekday().num_days_from_monday()) % 7))
}

#[tokio::test]
async fn a_weekly_series_with_a_modified_and_an_excluded_occurrence_round_trips() {
    let g = Graph::start(Backend::Sqlite, true).await;
    let w = &g.w;
    let m = act_member(&g).await;
    let (mailbox, upn) = (m.mailbox.clone(), m.address.clone());
    let first = next_monday();
    let zone = "W. Europe Standard Time";
    let master = g.graph.add_event(
        &upn,
        json!({"subject": "Weekly sync", "categories": ["Tracked"],
               "start": graph_time(first, "09:00:00", zone), "end": graph_time(first, "09:30:00", zone),
               "recurrence": {
                   "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
                   "range": {"type": "numbered", "startDate": first.to_string(), "numberOfOccurrences": 6}}}),
    );
    let (excluded, moved) = (first + Days::new(7), first + Days::new(14));
    g.graph
        .delete_event_on_server(&upn, &g.graph.occurrence_id(&master, excluded));
    g.graph.update_event_on_server(
        &upn,
        &g.graph.occurrence_id(&master, moved),
        json!({"subject": "Weekly sync (moved)", "start": graph_time(moved, "10:00:00", zone),
               "end": graph_time(moved, "10:30:00", zone)}),
    );
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // In the store: the series, its exclusion, its exception and its zone.
    let record = in_store(w, "appointments", "subject", "Weekly sync").await;
    assert_eq!(record["time_zone"], "Europe/Berlin", "{record}");
    let rrule = record["recurrence"]["rrule"].as_str().unwrap();
    assert!(
        rrule.contains("FREQ=WEEKLY") && rrule.contains("COUNT=6") && rrule.contains("BYDAY=MO"),
        "{record}"
    );
    assert_eq!(
        record["recurrence"]["exdates"].as_array().map(Vec::len),
        Some(1),
        "{record}"
    );
    assert_eq!(record["exceptions"][0]["summary"], "Weekly sync (moved)");

    // A store edit goes back to the series; the occurrences stay as they were.
    w.patch(
        &format!("/appointments/{}", id(&record)),
        json!({"location": "Room 7"}),
    )
    .await;
    let series = wait("the edit in Exchange", SLOW, || async {
        g.graph
            .event(&upn, &master)
            .filter(|e| e["location"]["displayName"] == "Room 7")
    })
    .await;
    assert_eq!(series["subject"], "Weekly sync");
    let instances = g
        .graph
        .event_instances(&upn, &master, first, first + Days::new(40));
    let on = |d: NaiveDate| {
        instances
            .iter()
            .find(|i| {
                i["start"]["dateTime"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&d.to_string()))
            })
            .cloned()
    };
    assert_eq!(instances.len(), 5, "{instances:?}");
    assert!(on(excluded).is_none(), "the excluded occurrence stays out");
    let exception = on(moved).expect("the moved occurrence");
    assert_eq!(exception["subject"], "Weekly sync (moved)");
    assert!(
        exception["start"]["dateTime"]
            .as_str()
            .unwrap()
            .contains("T10:00:00"),
        "{exception}"
    );

    // Nothing more to do: the series written reads back as written.
    next_run(w, &mailbox).await;
    let trail = decisions(w, &mailbox, &format!("&record_id={}", id(&record))).await;
    let actions: Vec<&str> = trail
        .iter()
        .rev()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create_in_store", "update_server"], "{trail:?}");
}

/// The Exchange side with a rival: before the first update it lets through,
/// "Outlook" edits the same event, so the engine's write finds a newer etag (412).
struct Racing<'a> {
    inner: &'a GraphServer,
    outlook: &'a GraphTestServer,
    upn: String,
    raced: std::sync::atomic::AtomicBool,
}

impl ActServer for Racing<'_> {
    fn keep_unmapped(&self, server: &mut ActItem, record: &ActItem) {
        self.inner.keep_unmapped(server, record);
    }

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
            let event = href.trim_start_matches("events/");
            self.outlook.update_event_on_server(
                &self.upn,
                event,
                json!({"categories": ["FromOutlook"]}),
            );
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
    let g = Graph::start(Backend::Sqlite, true).await;
    let w = &g.w;
    let m = act_member(&g).await;
    let (user, mailbox, upn) = (user_id(&m), m.mailbox.clone(), m.address.clone());
    // Not enabled: this test runs the executor itself, the scheduler leaves it be.
    let ctx = MailboxContext::load(&w.store, &w.org, &mailbox)
        .await
        .unwrap();
    let appt = w
        .post(
            "/appointments",
            json!({"subject": "Site visit", "start": day_at(30, 8), "end": day_at(30, 9),
                   "owner_id": user}),
        )
        .await;
    let server = GraphServer::connect(&w.engine, &ctx).await.unwrap();
    let first = act::run_with(&w.engine, &ctx, &server).await.unwrap();
    assert!(first.written >= 1, "{first:?}");

    w.patch(
        &format!("/appointments/{}", id(&appt)),
        json!({"subject": "Site visit (with safety briefing)"}),
    )
    .await;
    let server = GraphServer::connect(&w.engine, &ctx).await.unwrap();
    let racing = Racing {
        inner: &server,
        outlook: &g.graph,
        upn: upn.clone(),
        raced: Default::default(),
    };
    let report = act::run_with(&w.engine, &ctx, &racing).await.unwrap();
    assert_eq!(
        (report.skipped, report.failed),
        (0, 0),
        "{report:?} {:?}",
        decisions(w, &mailbox, "").await
    );

    // The lost race is in the trail, then the new plan from fresh facts.
    let trail = decisions(w, &mailbox, &format!("&record_id={}", id(&appt))).await;
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
    let event = g
        .graph
        .events(&upn)
        .into_iter()
        .find(|e| e["subject"] == "Site visit (with safety briefing)")
        .expect("the store's subject in Exchange");
    assert_eq!(
        event["categories"],
        json!(["FromOutlook"]),
        "Outlook's edit is kept"
    );
    let record = w.get(&format!("/appointments/{}", id(&appt))).await;
    assert_eq!(record["categories"], json!(["FromOutlook"]));
    let link = w
        .store
        .act_link(&w.org, &mailbox, ActKind::Appointment, &id(&appt))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.last_error, None);

    // An expired delta link reads everything again and changes nothing.
    g.graph.expire_act_delta_tokens();
    let server = GraphServer::connect(&w.engine, &ctx).await.unwrap();
    let again = act::run_with(&w.engine, &ctx, &server).await.unwrap();
    assert_eq!((again.written, again.skipped, again.failed), (0, 0, 0));
}

/// A second organization (another World) whose `exchange_online` profile points
/// at the same Graph test server and tenant, with an application of its own.
async fn second_organization(g: &Graph) -> (World, String) {
    let b = World::start(Backend::Sqlite, fast_engine()).await;
    let cert = b
        .post(
            "/certificates/generate",
            json!({"name": "Exchange Online", "validity_days": 30}),
        )
        .await;
    let cert_id = id(&cert);
    let pem = b
        .client
        .get(format!(
            "{}/api/v1/orgs/{}/certificates/{cert_id}/certificate.pem",
            b.base, b.org
        ))
        .bearer_auth(&b.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    g.idp.register_app(
        &g.tenant,
        AppRegistration::new(SECOND_APP).with_certificate_pem(&pem),
    );
    let graph_url = g.graph.base_url().trim_end_matches("/v1.0").to_owned();
    let profile = b
        .post(
            "/email-server-profiles",
            json!({"name": "Exchange Online", "server_type": "exchange_online", "allow_plaintext": true,
                   "application_id": SECOND_APP, "use_default_tenant_id": false, "tenant_id": g.tenant,
                   "certificate_id": cert_id, "authority_url": g.idp.authority_url(), "graph_url": graph_url}),
        )
        .await;
    (b, id(&profile))
}

/// The same person's mailbox in the second organization, ACT only.
async fn same_person(b: &World, profile: &str, upn: &str) -> String {
    let user = b
        .post(
            "/users",
            json!({"full_name": format!("User {upn}"), "email": upn, "tracking_filter": "all"}),
        )
        .await;
    let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
    b.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"profile_id": profile, "incoming_method": "none", "outgoing_method": "none",
               "act_method": "server_side_sync"}),
    )
    .await;
    let (status, v) = b
        .try_call(
            Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/approve", b.org),
            json!({"ids": [mailbox]}),
            &b.approver,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    mailbox
}

#[tokio::test]
async fn the_org_claim_blocks_another_organization_until_it_takes_over() {
    let g = Graph::start(Backend::Postgres, true).await;
    let a = &g.w;
    let m = act_member(&g).await;
    let (mailbox_a, upn) = (m.mailbox.clone(), m.address.clone());
    a.test_and_enable(&[&mailbox_a]).await;
    wait_act_status(a, &mailbox_a, "success").await;
    let claim_of = |org: &str| {
        g.graph
            .calendar_property(&upn, CLAIM_PROPERTY_ID)
            .filter(|v| v.starts_with(&format!("{org};")))
    };
    wait("organization A's claim", SLOW, || async {
        claim_of(&a.org)
    })
    .await;

    // Organization B, same person: its Test & Enable fails ACT with the alert.
    let (b, profile_b) = second_organization(&g).await;
    let mailbox_b = same_person(&b, &profile_b, &upn).await;
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
    assert!(
        alerts["items"][0]["message"]
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
    wait("organization B's claim", SLOW, || async {
        claim_of(&b.org)
    })
    .await;
    wait_act_status(&b, &mailbox_b, "success").await;

    // Organization A now finds B's claim: ACT stops there, with the alert.
    let status = wait_act_status(a, &mailbox_a, "failure").await;
    assert_eq!(status["act_enabled"], false);
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
    let exp = scrape(a).await;
    assert!(
        value(
            &exp,
            "mailbridge_runs",
            &[("workload", "act"), ("outcome", "failed_permanent")]
        ) >= 1.0
    );
}
