//! Appointments, contacts and tasks (ACT) end to end for Exchange Server: the
//! engine and the API in this process against the testkit's EWS test server,
//! through an `exchange_server` profile whose service account impersonates the
//! mailboxes. The test server's helpers play Outlook (`add_item`,
//! `change_item`, ...). The runs are driven here (`act::run`, `act::run_with`):
//! the mailboxes are not enabled through Test & Enable, so the scheduler leaves
//! them be and each test says when a run happens.

use chrono::{Datelike, Days, NaiveDate, Utc};
use mailbridge_domain::act::model::{ActItem, ActKind};
use mailbridge_domain::error_model::SyncError;
use mailbridge_engine::MailboxContext;
use mailbridge_engine::act::ews::{CLAIM_FOLDER, CLAIM_PROPERTY};
use mailbridge_engine::act::server::{
    ActServer, OrgClaim, ServerChanges, ServerCollection, ServerFetch, WriteError, Written,
};
use mailbridge_engine::act::{self, ActReport, EwsServer};
use mailbridge_testkit::ews_server::{EwsTestServer, ItemKind, StoredItem};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine};
use crate::hosts::{EWS_ACCOUNT, EWS_PASSWORD, Ews, MailHost, Member};

/// A member of the EWS World whose mailbox synchronizes ACT only.
async fn act_member(e: &Ews) -> Member {
    let m = e.member("all").await;
    e.w.patch(
        &format!("/mailboxes/{}", m.mailbox),
        json!({"incoming_method": "none", "outgoing_method": "none", "act_method": "server_side_sync"}),
    )
    .await;
    m
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn context(w: &World, mailbox: &str) -> MailboxContext {
    MailboxContext::load(&w.store, &w.org, mailbox)
        .await
        .unwrap()
}

/// One ACT run of the mailbox, as the scheduler would start it.
async fn run(w: &World, mailbox: &str) -> ActReport {
    let ctx = context(w, mailbox).await;
    act::run(&w.engine, &ctx).await.unwrap()
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

/// The records of `path`.
async fn records(w: &World, path: &str) -> Vec<Value> {
    w.get(&format!("/{path}?limit=200")).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn record(w: &World, path: &str, field: &str, t: &str) -> Option<Value> {
    records(w, path).await.into_iter().find(|r| r[field] == t)
}

/// The items of a folder of the mailbox whose `field` is `t`.
fn on_server(
    ews: &EwsTestServer,
    mailbox: &str,
    folder: &str,
    field: &str,
    t: &str,
) -> Vec<StoredItem> {
    ews.items_in(mailbox, folder)
        .into_iter()
        .filter(|i| i.field_text(field).as_deref() == Some(t))
        .collect()
}

/// An instant `days` from now at `hour`:00 UTC, as the API takes it.
fn day_at(days: u64, hour: u32) -> String {
    let d = Utc::now().date_naive() + Days::new(days);
    format!("{d}T{hour:02}:00:00Z")
}

#[tokio::test]
async fn events_tasks_and_contacts_sync_both_ways() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        two_way(backend).await;
    }
}

async fn two_way(backend: Backend) {
    let e = Ews::start(backend).await;
    let (w, ews) = (&e.w, &e.ews);
    let m = act_member(&e).await;
    let user = id(&m.user);
    let (mailbox, address) = (m.mailbox.clone(), m.address.clone());

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
    let first = run(w, &mailbox).await;
    assert_eq!(
        (first.skipped, first.failed),
        (0, 0),
        "{first:?} {:?}",
        decisions(w, &mailbox, "").await
    );
    let event = on_server(ews, &address, "calendar", "Subject", "Kick-off");
    assert_eq!(event.len(), 1, "one event");
    let event = &event[0];
    assert_eq!(event.field_text("Location").as_deref(), Some("Room 2"));
    assert!(
        event.fields["StartTimeZone"].contains("Romance Standard Time"),
        "Europe/Paris as its Windows id: {:?}",
        event.fields
    );
    let server_task = on_server(ews, &address, "tasks", "Subject", "Send the quote");
    assert_eq!(server_task.len(), 1);
    assert_eq!(
        server_task[0].field_text("PercentComplete").as_deref(),
        Some("30")
    );
    let server_contact = on_server(ews, &address, "contacts", "DisplayName", "Bo Berg");
    assert_eq!(server_contact.len(), 1);
    assert!(
        server_contact[0].fields["EmailAddresses"].contains("bo@fabrikam.example"),
        "{:?}",
        server_contact[0].fields
    );
    // Nothing more to do: what was written reads back as written.
    let again = run(w, &mailbox).await;
    assert_eq!(
        (again.written, again.skipped, again.failed),
        (0, 0, 0),
        "{again:?}"
    );

    // Exchange → store: tagged items come in, untagged ones stay out.
    let standup = ews.add_calendar_item(&address, "Standup", &day_at(3, 9), &day_at(3, 10));
    ews.set_categories(&address, &standup, &["Tracked"]);
    ews.add_calendar_item(&address, "Private lunch", &day_at(4, 12), &day_at(4, 13));
    let outlook_task = ews.add_task(&address, "Call the printer", None);
    ews.set_categories(&address, &outlook_task, &["tracked"]);
    let outlook_contact = ews.add_contact(&address, "Ada", "Lind", "ada@northwind.example");
    ews.set_categories(&address, &outlook_contact, &["Tracked"]);
    run(w, &mailbox).await;
    let standup_record = record(w, "appointments", "subject", "Standup")
        .await
        .expect("the tagged event in the store");
    assert!(
        record(w, "appointments", "subject", "Private lunch")
            .await
            .is_none()
    );
    assert!(
        record(w, "tasks", "subject", "Call the printer")
            .await
            .is_some()
    );
    let ada = record(w, "contacts", "name", "Ada Lind")
        .await
        .expect("the tagged contact in the store");
    assert_eq!(ada["email"], "ada@northwind.example", "{ada}");

    // Edits both ways: Outlook's reach the record, the store's reach Exchange.
    ews.change_item(&address, &standup, "<t:Location>Room 9</t:Location>");
    w.patch(
        &format!("/appointments/{}", id(&appt)),
        json!({"subject": "Kick-off (moved)"}),
    )
    .await;
    w.patch(
        &format!("/tasks/{}", id(&task)),
        json!({"percent_complete": 60}),
    )
    .await;
    let report = run(w, &mailbox).await;
    assert_eq!((report.skipped, report.failed), (0, 0), "{report:?}");
    let standup_now = w
        .get(&format!("/appointments/{}", id(&standup_record)))
        .await;
    assert_eq!(standup_now["location"], "Room 9", "{standup_now}");
    assert_eq!(
        on_server(ews, &address, "calendar", "Subject", "Kick-off (moved)").len(),
        1
    );
    assert_eq!(
        on_server(ews, &address, "calendar", "Subject", "Kick-off").len(),
        0,
        "updated in place, not created again"
    );
    let t = on_server(ews, &address, "tasks", "Subject", "Send the quote");
    assert_eq!(t[0].field_text("PercentComplete").as_deref(), Some("60"));

    // A record deleted in the store is deleted in Exchange.
    let (status, _) = w
        .try_call(
            Method::DELETE,
            &format!("/api/v1/orgs/{}/contacts/{}", w.org, id(&contact)),
            Value::Null,
            &w.admin,
        )
        .await;
    assert!((200..300).contains(&status), "{status}");
    run(w, &mailbox).await;
    assert!(on_server(ews, &address, "contacts", "DisplayName", "Bo Berg").is_empty());
    let trail = decisions(w, &mailbox, &format!("&record_id={}", id(&contact))).await;
    assert_eq!(trail[0]["action"], "delete_on_server", "{trail:?}");
}

fn next_monday() -> NaiveDate {
    let today = Utc::now().date_naive() + Days::new(7);
    today + Days::new(u64::from((7 - today.weekday().num_days_from_monday()) % 7))
}

#[tokio::test]
async fn a_weekly_series_with_a_modified_and_a_deleted_occurrence_comes_in() {
    let e = Ews::start(Backend::Sqlite).await;
    let (w, ews) = (&e.w, &e.ews);
    let m = act_member(&e).await;
    let (mailbox, address) = (m.mailbox.clone(), m.address.clone());
    let first = next_monday();
    let (excluded, moved) = (first + Days::new(7), first + Days::new(14));
    let master = ews.add_item(
        &address,
        "calendar",
        ItemKind::CalendarItem,
        &format!(
            "<t:Subject>Weekly sync</t:Subject><t:Categories><t:String>Tracked</t:String></t:Categories>\
             <t:Start>{first}T08:00:00Z</t:Start><t:End>{first}T08:30:00Z</t:End>\
             <t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek></t:WeeklyRecurrence>\
             <t:NumberedRecurrence><t:StartDate>{first}</t:StartDate><t:NumberOfOccurrences>6</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>\
             <t:StartTimeZone Id=\"UTC\"/><t:EndTimeZone Id=\"UTC\"/>"
        ),
    );
    // The modified occurrence is an item of its own (Exchange keeps it with its
    // master; the test server keeps it elsewhere, read by its id only).
    let exception = ews.add_item(
        &address,
        "drafts",
        ItemKind::CalendarItem,
        &format!(
            "<t:Subject>Weekly sync (moved)</t:Subject>\
             <t:Start>{moved}T09:00:00Z</t:Start><t:End>{moved}T09:30:00Z</t:End>"
        ),
    );
    ews.change_item(
        &address,
        &master,
        &format!(
            "<t:ModifiedOccurrences><t:Occurrence><t:ItemId Id=\"{exception}\" ChangeKey=\"x\"/>\
             <t:Start>{moved}T09:00:00Z</t:Start><t:End>{moved}T09:30:00Z</t:End>\
             <t:OriginalStart>{moved}T08:00:00Z</t:OriginalStart></t:Occurrence></t:ModifiedOccurrences>\
             <t:DeletedOccurrences><t:DeletedOccurrence><t:Start>{excluded}T08:00:00Z</t:Start>\
             </t:DeletedOccurrence></t:DeletedOccurrences>"
        ),
    );
    let report = run(w, &mailbox).await;
    assert_eq!(
        (report.skipped, report.failed),
        (0, 0),
        "{report:?} {:?}",
        decisions(w, &mailbox, "").await
    );

    // In the store: the series, its exclusion and its exception.
    let series = record(w, "appointments", "subject", "Weekly sync")
        .await
        .expect("the series in the store");
    let rrule = series["recurrence"]["rrule"].as_str().unwrap();
    assert!(
        rrule.contains("FREQ=WEEKLY") && rrule.contains("COUNT=6") && rrule.contains("BYDAY=MO"),
        "{series}"
    );
    let exdates = series["recurrence"]["exdates"].to_string();
    assert!(exdates.contains(&excluded.to_string()), "{series}");
    assert_eq!(
        series["exceptions"][0]["summary"], "Weekly sync (moved)",
        "{series}"
    );
    assert!(
        series["exceptions"][0]["start"]
            .to_string()
            .contains(&format!("{moved}T09:00")),
        "{series}"
    );

    // A store edit goes back to the master; its occurrences are left as they are.
    w.patch(
        &format!("/appointments/{}", id(&series)),
        json!({"location": "Room 7"}),
    )
    .await;
    let report = run(w, &mailbox).await;
    assert_eq!(
        (report.skipped, report.failed),
        (0, 0),
        "{report:?} {:?}",
        decisions(w, &mailbox, "").await
    );
    let stored = ews.item(&address, &master).expect("the master");
    assert_eq!(stored.field_text("Location").as_deref(), Some("Room 7"));
    assert!(
        stored.fields["Recurrence"].contains("NumberOfOccurrences>6<"),
        "{:?}",
        stored.fields
    );
    let again = run(w, &mailbox).await;
    assert_eq!(
        (again.written, again.skipped, again.failed),
        (0, 0, 0),
        "{again:?}"
    );
    let trail = decisions(w, &mailbox, &format!("&record_id={}", id(&series))).await;
    let actions: Vec<&str> = trail
        .iter()
        .rev()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create_in_store", "update_server"], "{trail:?}");
}

#[tokio::test]
async fn a_store_series_with_an_exdate_and_an_exception_goes_to_exchange() {
    // In UTC, and in a zone one hour ahead in winter (the series is in winter:
    // the test server shifts occurrences by whole days of UTC).
    store_series_to_exchange(None).await;
    store_series_to_exchange(Some("Europe/Paris")).await;
}

/// The first Monday of the next December a week away or more: the weeks after it
/// are in winter time in Europe.
fn winter_monday() -> NaiveDate {
    let soon = Utc::now().date_naive() + Days::new(7);
    let december = |year| NaiveDate::from_ymd_opt(year, 12, 1).expect("a date");
    let mut d = december(soon.year());
    if d < soon {
        d = december(soon.year() + 1);
    }
    d + Days::new(u64::from((7 - d.weekday().num_days_from_monday()) % 7))
}

/// A weekly series made in the store, its times in `zone` (UTC when `None`).
async fn store_series_to_exchange(zone: Option<&str>) {
    let e = Ews::start(Backend::Sqlite).await;
    let (w, ews) = (&e.w, &e.ews);
    let m = act_member(&e).await;
    let user = id(&m.user);
    let (mailbox, address) = (m.mailbox.clone(), m.address.clone());
    let first = if zone.is_some() {
        winter_monday()
    } else {
        next_monday()
    };
    let (excluded, moved) = (first + Days::new(7), first + Days::new(14));
    // `hour` UTC on `d` (in winter: an hour later in Paris).
    let at = |d: NaiveDate, hour: u32| match zone {
        None => json!({"utc": format!("{d}T{hour:02}:00:00Z")}),
        Some(tz) => json!({"zoned": {"local": format!("{d}T{:02}:00:00", hour + 1), "tz": tz}}),
    };
    let series = w
        .post(
            "/appointments",
            json!({"subject": "Planning", "owner_id": user, "time_zone": zone,
                   "start": format!("{first}T08:00:00Z"), "end": format!("{first}T08:30:00Z"),
                   "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=6",
                                  "exdates": [at(excluded, 8)], "rdates": []},
                   "exceptions": [{"recurrence_id": at(moved, 8),
                                   "start": at(moved, 9), "end": at(moved, 10),
                                   "summary": "Planning (moved)", "location": "Room 3",
                                   "description": null, "status": "confirmed", "attendees": []}]}),
        )
        .await;
    assert_eq!(series["time_zone"].as_str(), zone, "{series}");
    let report = run(w, &mailbox).await;
    assert_eq!(
        (report.skipped, report.failed),
        (0, 0),
        "{zone:?} {report:?} {:?}",
        decisions(w, &mailbox, "").await
    );

    // In Exchange: one master, the EXDATE deleted, the exception modified.
    let masters = on_server(ews, &address, "calendar", "Subject", "Planning");
    assert_eq!(masters.len(), 1, "one master");
    let master = &masters[0];
    assert_eq!(
        master.field_text("CalendarItemType").as_deref(),
        Some("RecurringMaster")
    );
    let occurrences = ews.occurrences(&address, &master.id);
    assert_eq!(
        occurrences.deleted,
        [format!("{excluded}T08:00:00Z")],
        "{occurrences:?}"
    );
    assert_eq!(occurrences.modified.len(), 1, "{occurrences:?}");
    let (original_start, exception) = &occurrences.modified[0];
    assert_eq!(original_start, &format!("{moved}T08:00:00Z"));
    assert_eq!(exception.subject.as_deref(), Some("Planning (moved)"));
    assert_eq!(
        exception.field_text("Start").as_deref(),
        Some(format!("{moved}T09:00:00Z").as_str())
    );
    assert_eq!(exception.field_text("Location").as_deref(), Some("Room 3"));
    assert_eq!(
        exception.field_text("CalendarItemType").as_deref(),
        Some("Exception")
    );

    // A second run writes nothing: the series reads back as the store has it.
    let change_key = ews
        .item(&address, &master.id)
        .expect("the master")
        .change_key;
    let again = run(w, &mailbox).await;
    assert_eq!(
        (again.written, again.skipped, again.failed),
        (0, 0, 0),
        "{again:?} {:?}",
        decisions(w, &mailbox, "").await
    );
    assert_eq!(
        ews.item(&address, &master.id)
            .expect("the master")
            .change_key,
        change_key,
        "the master is not written again"
    );
    assert_eq!(ews.occurrences(&address, &master.id), occurrences);
    let record = w.get(&format!("/appointments/{}", id(&series))).await;
    assert_eq!(
        record["exceptions"].as_array().map(Vec::len),
        Some(1),
        "{record}"
    );
    assert_eq!(
        record["recurrence"]["exdates"].as_array().map(Vec::len),
        Some(1),
        "{record}"
    );
}

/// The Exchange side with a rival: before the first update it lets through,
/// "Outlook" edits the same item, so the engine's change key is stale.
struct Racing<'a> {
    inner: &'a EwsServer,
    outlook: &'a EwsTestServer,
    address: String,
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
            self.outlook
                .set_categories(&self.address, href, &["FromOutlook"]);
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
async fn a_stale_change_key_is_read_again_and_planned_anew() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        stale_change_key(backend).await;
    }
}

async fn stale_change_key(backend: Backend) {
    let e = Ews::start(backend).await;
    let (w, ews) = (&e.w, &e.ews);
    let m = act_member(&e).await;
    let (user, mailbox, address) = (id(&m.user), m.mailbox.clone(), m.address.clone());
    let ctx = context(w, &mailbox).await;
    let appt = w
        .post(
            "/appointments",
            json!({"subject": "Site visit", "start": day_at(30, 8), "end": day_at(30, 9),
                   "owner_id": user}),
        )
        .await;
    let first = run(w, &mailbox).await;
    assert!(first.written >= 1, "{first:?}");

    w.patch(
        &format!("/appointments/{}", id(&appt)),
        json!({"subject": "Site visit (with safety briefing)"}),
    )
    .await;
    let server = EwsServer::connect(&w.engine, &ctx).await.unwrap();
    let racing = Racing {
        inner: &server,
        outlook: ews,
        address: address.clone(),
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
    let event = on_server(
        ews,
        &address,
        "calendar",
        "Subject",
        "Site visit (with safety briefing)",
    );
    assert_eq!(event.len(), 1, "the store's subject in Exchange");
    assert_eq!(
        event[0].categories,
        ["FromOutlook"],
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

    // A sync state Exchange refuses reads the folders again, and nothing is
    // created twice or written.
    for folder in ["calendar", "tasks", "contacts"] {
        ews.invalidate_sync_states(&address, folder);
    }
    let again = run(w, &mailbox).await;
    assert_eq!(
        (again.written, again.skipped, again.failed),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(ews.items_in(&address, "calendar").len(), 1);
    assert_eq!(records(w, "appointments").await.len(), 1);
}

/// A second organization (another World) whose `exchange_server` profile uses
/// the same EWS test server and service account.
async fn second_organization(e: &Ews) -> (World, String) {
    let b = World::start(Backend::Sqlite, fast_engine()).await;
    let profile = b
        .post(
            "/email-server-profiles",
            json!({"name": "Exchange 2019", "server_type": "exchange_server", "auto_discover": false,
                   "allow_plaintext": true, "authentication_type": "credentials_specified_in_profile",
                   "incoming_server_location": e.ews.url(), "outgoing_server_location": e.ews.url(),
                   "incoming_username": EWS_ACCOUNT, "incoming_password": EWS_PASSWORD}),
        )
        .await;
    (b, id(&profile))
}

/// The same person's mailbox in the second organization, ACT only.
async fn same_person(b: &World, profile: &str, address: &str) -> String {
    let user = b
        .post(
            "/users",
            json!({"full_name": format!("User {address}"), "email": address, "tracking_filter": "all"}),
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

/// The organization claim as the claim item holds it.
fn claim_on_server(ews: &EwsTestServer, address: &str) -> Option<String> {
    let items = ews.items_in(address, &format!("Calendar/{CLAIM_FOLDER}"));
    assert!(items.len() <= 1, "one claim item: {items:?}");
    items.first()?.extended_property(CLAIM_PROPERTY)
}

#[tokio::test]
async fn the_org_claim_blocks_another_organization_until_it_takes_over() {
    let e = Ews::start(Backend::Postgres).await;
    let a = &e.w;
    let m = act_member(&e).await;
    let (mailbox_a, address) = (m.mailbox.clone(), m.address.clone());
    run(a, &mailbox_a).await;
    let claim = claim_on_server(&e.ews, &address).expect("organization A's claim");
    assert!(claim.starts_with(&format!("{};", a.org)), "{claim}");

    // Organization B, same person: ACT stops with the foreign claim, also in
    // Test & Enable's probe.
    let (b, profile_b) = second_organization(&e).await;
    let mailbox_b = same_person(&b, &profile_b, &address).await;
    let ctx_b = context(&b, &mailbox_b).await;
    let err = act::run(&b.engine, &ctx_b).await.unwrap_err();
    assert!(
        err.message
            .contains(act::CONFIGURED_WITH_ANOTHER_ORGANIZATION),
        "{err:?}"
    );
    let err = act::test(&b.engine, &ctx_b).await.unwrap_err();
    assert!(
        err.message
            .contains(act::CONFIGURED_WITH_ANOTHER_ORGANIZATION),
        "{err:?}"
    );
    assert!(
        claim_on_server(&e.ews, &address)
            .unwrap()
            .starts_with(&format!("{};", a.org))
    );

    // Ticking the box and testing again takes the claim over. (Test & Enable
    // is stood in for by its mark on the mailbox, `tested_at`.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    b.patch(
        &format!("/mailboxes/{mailbox_b}"),
        json!({"sync_with_this_org_only": true}),
    )
    .await;
    let mut ctx_b = context(&b, &mailbox_b).await;
    act::test(&b.engine, &ctx_b).await.unwrap();
    ctx_b.mailbox.tested_at = Some(Utc::now());
    act::run(&b.engine, &ctx_b).await.unwrap();
    let claim = claim_on_server(&e.ews, &address).expect("organization B's claim");
    assert!(claim.starts_with(&format!("{};", b.org)), "{claim}");

    // Organization A now finds B's claim and stops there.
    let ctx_a = context(a, &mailbox_a).await;
    let err = act::run(&a.engine, &ctx_a).await.unwrap_err();
    assert!(
        err.message
            .contains(act::CONFIGURED_WITH_ANOTHER_ORGANIZATION),
        "{err:?}"
    );
}
