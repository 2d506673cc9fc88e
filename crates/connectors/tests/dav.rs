//! The CalDAV/CardDAV connector against the Radicale the test servers start: each
//! test works as a user of its own, so tests run in parallel without meeting.

use mailbridge_connectors::dav::{
    CalDateTime, CalendarComponent, CalendarResource, Claim, Collection, CollectionKind, Contact,
    DavClient, DavConfig, DavError, Event, ItemFormat, Task, Typed,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::secret::Secret;
use mailbridge_testkit::TestServers;

/// A user of its own and a client acting as it.
async fn fresh_user(prefix: &str) -> (TestServers, String, DavClient) {
    let servers = TestServers::from_env();
    let name = format!("{prefix}-{}", uuid::Uuid::now_v7().simple());
    let user = servers.add_user(&name, "pw-dav").await;
    let client = client_as(&servers, &user.login, &user.password);
    (servers, name, client)
}

fn client_as(servers: &TestServers, login: &str, password: &str) -> DavClient {
    DavClient::new(DavConfig::new(
        servers.dav_url(),
        login,
        Secret::new(password),
    ))
    .expect("client")
}

fn failed(e: DavError) -> SyncError {
    match e {
        DavError::Failed(e) => e,
        other => panic!("expected a classified failure, got {other:?}"),
    }
}

fn event_ics(uid: &str, summary: &str) -> String {
    CalendarResource {
        events: vec![Event {
            uid: uid.to_owned(),
            summary: Some(summary.to_owned()),
            start: Some(CalDateTime::Utc(at(2026, 4, 1, 9))),
            end: Some(CalDateTime::Utc(at(2026, 4, 1, 10))),
            ..Event::default()
        }],
        ..CalendarResource::default()
    }
    .to_ics()
    .expect("writes")
}

fn at(y: i32, m: u32, d: u32, h: u32) -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, 0, 0))
        .expect("valid")
}

async fn calendar(client: &DavClient, home: &str, name: &str) -> Collection {
    client
        .create_calendar(home, name, name, CalendarComponent::Event)
        .await
        .expect("MKCALENDAR")
}

#[tokio::test]
async fn discovery_finds_the_principal_and_homes_of_a_fresh_user() {
    let (servers, name, client) = fresh_user("disc").await;
    let found = client.discover().await.expect("discovery");
    let home = format!("/{name}/");
    assert_eq!(found.principal, home);
    assert_eq!(found.calendar_homes, std::slice::from_ref(&home));
    assert_eq!(found.addressbook_homes, std::slice::from_ref(&home));
    assert!(found.collections.is_empty(), "{:?}", found.collections);

    // From a location with a path that names no principal, the well-known URL
    // (301 to / on Radicale) finds it.
    let elsewhere = DavClient::new(DavConfig::new(
        format!("{}nowhere/", servers.dav_url()),
        name.as_str(),
        Secret::new("pw-dav"),
    ))
    .expect("client");
    assert_eq!(
        elsewhere.discover().await.expect("discovery").principal,
        home
    );

    let wrong = client_as(&servers, &name, "wrong");
    let e = failed(wrong.discover().await.expect_err("wrong password"));
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox)
    );
    assert!(e.message.contains("user name or password"), "{}", e.message);
}

#[tokio::test]
async fn calendars_task_lists_and_address_books_are_created() {
    let (_servers, name, client) = fresh_user("mk").await;
    let home = format!("/{name}/");
    let events = client
        .create_calendar(&home, "events", "Appointments", CalendarComponent::Event)
        .await
        .expect("calendar");
    let tasks = client
        .create_calendar(&home, "tasks", "Tasks", CalendarComponent::Task)
        .await
        .expect("task list");
    let contacts = client
        .create_address_book(&home, "contacts", "Contacts")
        .await
        .expect("address book");
    assert_eq!(events.href, format!("{home}events/"));
    assert_eq!(events.display_name.as_deref(), Some("Appointments"));
    assert!(events.holds_events() && !events.holds_tasks());
    assert!(tasks.holds_tasks() && !tasks.holds_events());
    assert_eq!(contacts.kind, CollectionKind::AddressBook);
    for c in [&events, &tasks, &contacts] {
        assert!(c.sync_token.is_some(), "{c:?}");
        assert!(c.ctag.is_some(), "{c:?}");
    }

    let found = client.discover().await.expect("discovery");
    let listed: Vec<(&str, CollectionKind, Vec<String>)> = found
        .collections
        .iter()
        .map(|c| (c.href.as_str(), c.kind, c.components.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (
                contacts.href.as_str(),
                CollectionKind::AddressBook,
                Vec::new()
            ),
            (
                events.href.as_str(),
                CollectionKind::Calendar,
                vec!["VEVENT".to_owned()]
            ),
            (
                tasks.href.as_str(),
                CollectionKind::Calendar,
                vec!["VTODO".to_owned()]
            ),
        ]
    );
}

/// Create, read, update with the right and a stale ETag, create over an existing
/// item, delete with a stale and the right ETag, read the deleted item.
async fn check_versioned_writes(
    client: &DavClient,
    collection: &str,
    name: &str,
    format: ItemFormat,
    first: &str,
    second: &str,
) {
    let created = client
        .create(collection, name, format, first)
        .await
        .expect("create");
    assert_eq!(created.href, format!("{collection}{name}"));
    let read = client.get(&created.href).await.expect("get");
    assert_eq!(read.etag, created.etag);

    let again = client.create(collection, name, format, first).await;
    assert!(
        matches!(again, Err(DavError::PreconditionFailed { .. })),
        "{again:?}"
    );

    let updated = client
        .update(&created.href, &created.etag, format, second)
        .await
        .expect("update");
    assert_ne!(updated, created.etag);
    let stale = client
        .update(&created.href, &created.etag, format, first)
        .await;
    assert_eq!(
        stale,
        Err(DavError::PreconditionFailed {
            href: created.href.clone()
        })
    );
    let stale_delete = client.delete(&created.href, &created.etag).await;
    assert!(
        matches!(stale_delete, Err(DavError::PreconditionFailed { .. })),
        "{stale_delete:?}"
    );
    let read = client.get(&created.href).await.expect("get after update");
    assert_eq!(read.etag, updated);

    client
        .delete(&created.href, &updated)
        .await
        .expect("delete");
    let gone = failed(client.get(&created.href).await.expect_err("deleted"));
    assert_eq!(
        (gone.class, gone.scope),
        (ErrorClass::Permanent, ErrorScope::Item)
    );
    assert!(gone.message.contains("has no item"), "{}", gone.message);
}

#[tokio::test]
async fn events_tasks_and_contacts_are_written_under_their_etags() {
    let (_servers, name, client) = fresh_user("put").await;
    let home = format!("/{name}/");
    let events = calendar(&client, &home, "events").await;
    let tasks = client
        .create_calendar(&home, "tasks", "Tasks", CalendarComponent::Task)
        .await
        .expect("task list");
    let contacts = client
        .create_address_book(&home, "contacts", "Contacts")
        .await
        .expect("address book");

    check_versioned_writes(
        &client,
        &events.href,
        "e1.ics",
        ItemFormat::ICalendar,
        &event_ics("e1", "Kick-off"),
        &event_ics("e1", "Kick-off (moved)"),
    )
    .await;

    let task = |status: &str| {
        CalendarResource {
            tasks: vec![Task {
                uid: "t1".to_owned(),
                summary: Some("Send the offer".to_owned()),
                due: Some(CalDateTime::Date(
                    chrono::NaiveDate::from_ymd_opt(2026, 5, 1).expect("date"),
                )),
                status: Some(status.to_owned()),
                ..Task::default()
            }],
            ..CalendarResource::default()
        }
        .to_ics()
        .expect("writes")
    };
    check_versioned_writes(
        &client,
        &tasks.href,
        "t1.ics",
        ItemFormat::ICalendar,
        &task("NEEDS-ACTION"),
        &task("COMPLETED"),
    )
    .await;

    let contact = |title: &str| {
        Contact {
            uid: Some("c1".to_owned()),
            formatted_name: Some("Bob Builder".to_owned()),
            emails: vec![Typed {
                value: "bob@example.org".to_owned(),
                types: vec!["work".to_owned()],
            }],
            title: Some(title.to_owned()),
            ..Contact::default()
        }
        .to_vcf()
    };
    check_versioned_writes(
        &client,
        &contacts.href,
        "c1.vcf",
        ItemFormat::VCard,
        &contact("Site manager"),
        &contact("Director"),
    )
    .await;
}

#[tokio::test]
async fn sync_collection_reports_creates_updates_and_deletes_since_a_token() {
    let (_servers, name, client) = fresh_user("sync").await;
    let cal = calendar(&client, &format!("/{name}/"), "events").await;
    let start = client
        .sync_collection(&cal.href, None)
        .await
        .expect("first sync");
    assert!(start.full && start.changed.is_empty() && start.deleted.is_empty());
    let t0 = start.token.expect("a token");

    let fmt = ItemFormat::ICalendar;
    let a = client
        .create(&cal.href, "a.ics", fmt, &event_ics("a", "A"))
        .await
        .expect("a");
    let b = client
        .create(&cal.href, "b.ics", fmt, &event_ics("b", "B"))
        .await
        .expect("b");
    let delta = client
        .sync_collection(&cal.href, Some(&t0))
        .await
        .expect("sync");
    assert!(!delta.full);
    assert_eq!(delta.changed, [a.clone(), b.clone()]);
    assert!(delta.deleted.is_empty());
    let t1 = delta.token.expect("a token");
    assert_ne!(t1, t0);

    let a_etag = client
        .update(&a.href, &a.etag, fmt, &event_ics("a", "A, renamed"))
        .await
        .expect("update a");
    client.delete(&b.href, &b.etag).await.expect("delete b");
    let delta = client
        .sync_collection(&cal.href, Some(&t1))
        .await
        .expect("sync");
    assert_eq!(delta.changed.len(), 1);
    assert_eq!(
        (
            delta.changed[0].href.as_str(),
            delta.changed[0].etag.as_str()
        ),
        (a.href.as_str(), a_etag.as_str())
    );
    assert_eq!(delta.deleted, std::slice::from_ref(&b.href));
    let t2 = delta.token.expect("a token");

    let fetched = client
        .multiget(
            &cal.href,
            CollectionKind::Calendar,
            &[a.href.clone(), b.href.clone()],
        )
        .await
        .expect("multiget");
    assert_eq!(fetched.items.len(), 1);
    assert_eq!(fetched.items[0].etag, a_etag);
    let parsed = CalendarResource::parse(&fetched.items[0].data).expect("parses");
    assert_eq!(parsed.events[0].summary.as_deref(), Some("A, renamed"));
    assert_eq!(fetched.missing, std::slice::from_ref(&b.href));

    let quiet = client
        .sync_collection(&cal.href, Some(&t2))
        .await
        .expect("sync");
    assert!(
        quiet.changed.is_empty() && quiet.deleted.is_empty(),
        "{quiet:?}"
    );
}

#[tokio::test]
async fn an_invalid_token_restarts_with_a_full_listing() {
    let (_servers, name, client) = fresh_user("resync").await;
    let cal = calendar(&client, &format!("/{name}/"), "events").await;
    let a = client
        .create(
            &cal.href,
            "a.ics",
            ItemFormat::ICalendar,
            &event_ics("a", "A"),
        )
        .await
        .expect("a");

    for refused in ["http://radicale.org/ns/sync/0000", "not-a-token"] {
        let delta = client
            .sync_collection(&cal.href, Some(refused))
            .await
            .expect("restarts");
        assert!(delta.full, "{delta:?}");
        assert_eq!(delta.changed, std::slice::from_ref(&a));
        assert!(delta.deleted.is_empty());
        let token = delta.token.expect("the collection's token");
        let next = client
            .sync_collection(&cal.href, Some(&token))
            .await
            .expect("sync from the new token");
        assert!(!next.full);
        assert!(
            next.changed.is_empty() && next.deleted.is_empty(),
            "{next:?}"
        );
    }
}

/// A weekly series in Europe/Berlin with one date excluded and one instance moved.
const SERIES: &str = "BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Example//Client//EN\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:DAYLIGHT\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
TZNAME:CEST\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r
END:DAYLIGHT\r
BEGIN:STANDARD\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
TZNAME:CET\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r
END:STANDARD\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:series-1@example.org\r
DTSTAMP:20260101T120000Z\r
DTSTART;TZID=Europe/Berlin:20260105T090000\r
DTEND;TZID=Europe/Berlin:20260105T093000\r
RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO\r
EXDATE;TZID=Europe/Berlin:20260112T090000\r
SUMMARY:Stand-up\r
ORGANIZER;CN=Alice:mailto:alice@example.org\r
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION:mailto:bob@example.org\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:series-1@example.org\r
DTSTAMP:20260101T120000Z\r
RECURRENCE-ID;TZID=Europe/Berlin:20260119T090000\r
DTSTART;TZID=Europe/Berlin:20260119T100000\r
DTEND;TZID=Europe/Berlin:20260119T103000\r
SUMMARY:Stand-up (moved)\r
END:VEVENT\r
END:VCALENDAR\r
";

#[tokio::test]
async fn a_recurring_series_with_an_exception_round_trips() {
    let (_servers, name, client) = fresh_user("series").await;
    let cal = calendar(&client, &format!("/{name}/"), "events").await;
    let series = CalendarResource::parse(SERIES).expect("parses");
    let written = series.to_ics().expect("writes");
    let stored = client
        .create(&cal.href, "series-1.ics", ItemFormat::ICalendar, &written)
        .await
        .expect("PUT");

    let got = client.get(&stored.href).await.expect("GET");
    let back = CalendarResource::parse(&got.data).expect("reads back");
    assert_same_meaning(&back, &series);
    assert_eq!(back.events[1].recurrence_id, series.events[1].recurrence_id);

    let fetched = client
        .multiget(
            &cal.href,
            CollectionKind::Calendar,
            std::slice::from_ref(&stored.href),
        )
        .await
        .expect("multiget");
    let via_report = CalendarResource::parse(&fetched.items[0].data).expect("reads back");
    assert_same_meaning(&via_report, &series);
}

/// Equal but for the text of the VTIMEZONEs: Radicale writes them again with the
/// observances and their properties in its own order.
fn assert_same_meaning(got: &CalendarResource, expected: &CalendarResource) {
    assert_eq!(got.events, expected.events);
    assert_eq!(got.tasks, expected.tasks);
    let canonical = |r: &CalendarResource| -> Vec<Vec<Vec<String>>> {
        r.timezones.iter().map(|tz| observances(tz)).collect()
    };
    assert_eq!(canonical(got), canonical(expected));
}

/// A VTIMEZONE as its blocks (the zone's own lines, then each observance), each a
/// sorted list of lines, the blocks sorted.
fn observances(tz: &str) -> Vec<Vec<String>> {
    let mut blocks: Vec<Vec<String>> = vec![Vec::new()];
    let mut current = 0;
    for line in tz.lines() {
        match line {
            "BEGIN:STANDARD" | "BEGIN:DAYLIGHT" => {
                blocks.push(vec![line.to_owned()]);
                current = blocks.len() - 1;
            }
            "END:STANDARD" | "END:DAYLIGHT" => current = 0,
            _ => blocks[current].push(line.to_owned()),
        }
    }
    for b in &mut blocks {
        b.sort();
    }
    blocks.sort();
    blocks
}

#[tokio::test]
async fn the_claim_property_is_written_and_read() {
    let (_servers, name, client) = fresh_user("claim").await;
    let home = format!("/{name}/");
    let cal = calendar(&client, &home, "events").await;
    assert_eq!(cal.claim, None);
    let claim = Claim {
        organization: "org-42".to_owned(),
        claimed_at: chrono::DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc),
    };
    client.set_claim(&cal.href, &claim).await.expect("set");
    assert_eq!(
        client.claim(&cal.href).await.expect("read"),
        Some(claim.clone())
    );
    let listed = client.list_collections(&home).await.expect("list");
    assert_eq!(listed[0].claim, Some(claim));

    client.clear_claim(&cal.href).await.expect("clear");
    assert_eq!(client.claim(&cal.href).await.expect("read"), None);
}

#[tokio::test]
async fn another_users_collections_are_refused() {
    let (servers, name, client) = fresh_user("own").await;
    let (_, other, other_client) = fresh_user("other").await;
    let theirs = calendar(&other_client, &format!("/{other}/"), "events").await;

    let e = failed(
        client
            .list_collections(&format!("/{other}/"))
            .await
            .expect_err("not ours"),
    );
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox)
    );
    assert!(e.message.contains("denied"), "{}", e.message);
    assert!(e.message.contains(&name), "{}", e.message);

    let e = failed(
        client
            .create(
                &theirs.href,
                "x.ics",
                ItemFormat::ICalendar,
                &event_ics("x", "X"),
            )
            .await
            .expect_err("not ours"),
    );
    assert!(e.message.contains("denied"), "{}", e.message);
    let e = failed(
        client
            .sync_collection(&theirs.href, None)
            .await
            .expect_err("not ours"),
    );
    assert!(e.message.contains("HTTP 403"), "{}", e.message);
    drop(servers);
}

#[tokio::test]
async fn a_missing_collection_is_not_found() {
    let (_servers, name, client) = fresh_user("gone").await;
    let e = failed(
        client
            .collection(&format!("/{name}/nothing-here/"))
            .await
            .expect_err("missing"),
    );
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox)
    );
    assert!(e.message.contains("has no collection"), "{}", e.message);
}
