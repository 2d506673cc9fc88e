//! The Graph connector's appointments, contacts and To Do tasks against the Graph
//! test server of the testkit, on loopback: create, read, update and delete with
//! `If-Match` (a stale etag is the precondition-failed result), a weekly series
//! with a modified and a cancelled occurrence, delta rounds that report what
//! Outlook changed, expired delta tokens, the organization claim, and the
//! `RRULE` ⇄ `patternedRecurrence` converter.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use mailbridge_connectors::graph::act::recurrence;
use mailbridge_connectors::graph::{
    ActChange, ActClaim, ActDelta, CLAIM_PROPERTY_ID, GraphAct, GraphActError, GraphClient,
    GraphConfig, RetryPolicy, StaticToken,
};
use mailbridge_domain::act::model::{
    Appointment, Attendee, AttendeeRole, Contact, ContactEmail, ContactPhone, ContactUse,
    EventStatus, EventTime, Occurrence, ParticipationStatus, Person, PhoneKind, Priority,
    Recurrence, StructuredName, Task, TimeZoneId, TodoStatus,
};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope};
use mailbridge_domain::secret::Secret;
use mailbridge_testkit::graph_server::{GraphTestServer, TestTokens};
use serde_json::json;

const BOB: &str = "bob@example.org";
const ROLES: [&str; 3] = [
    "Calendars.ReadWrite",
    "Contacts.ReadWrite",
    "Tasks.ReadWrite.All",
];
const CREATE_EVENT: &str = "POST /v1.0/users/{user}/calendar/events";

struct Setup {
    graph: GraphTestServer,
    tokens: TestTokens,
    client: GraphClient,
}

impl Setup {
    async fn new() -> Setup {
        mailbridge_connectors::tls::install_crypto_provider();
        let tokens = TestTokens::new("https://graph.microsoft.com");
        let graph = GraphTestServer::start(tokens.token_check()).await;
        graph.add_user(BOB);
        let client = client_with(&graph, &tokens.app_token(&ROLES));
        Setup {
            graph,
            tokens,
            client,
        }
    }

    fn bob(&self) -> GraphAct {
        GraphAct::new(&self.client, BOB).with_time_zone(paris())
    }
}

fn client_with(graph: &GraphTestServer, token: &str) -> GraphClient {
    let cfg = GraphConfig {
        base_url: graph.base_url().to_owned(),
        timeout: Duration::from_secs(10),
        delta_page_size: 3,
        retry: RetryPolicy {
            max_retries: 3,
            max_wait: Duration::from_secs(10),
        },
        ..GraphConfig::default()
    };
    GraphClient::new(cfg, Arc::new(StaticToken(Secret::new(token)))).expect("a Graph client")
}

fn paris() -> TimeZoneId {
    TimeZoneId::new("Europe/Paris").expect("an IANA id")
}

/// A Monday a week or two ahead: inside the calendar window.
fn next_monday() -> NaiveDate {
    let mut d = Utc::now().date_naive() + Days::new(7);
    while d.weekday() != chrono::Weekday::Mon {
        d = d + Days::new(1);
    }
    d
}

fn at(d: NaiveDate, h: u32) -> EventTime {
    EventTime::Zoned {
        local: NaiveDateTime::new(d, NaiveTime::from_hms_opt(h, 0, 0).expect("a time")),
        tz: paris(),
    }
}

fn meeting(d: NaiveDate, summary: &str) -> Appointment {
    Appointment {
        uid: format!("uid-{summary}"),
        summary: summary.to_owned(),
        organizer: None,
        attendees: vec![Attendee {
            person: Person {
                email: "dana@example.org".to_owned(),
                name: Some("Dana".to_owned()),
            },
            role: AttendeeRole::Optional,
            status: ParticipationStatus::NeedsAction,
        }],
        start: at(d, 9),
        end: at(d, 10),
        location: Some("Room 1".to_owned()),
        description: Some("Agenda".to_owned()),
        status: EventStatus::Tentative,
        categories: vec!["Customers".to_owned()],
        recurrence: None,
        exceptions: Vec::new(),
    }
}

/// What a round says, as (kind, id or summary) pairs, sorted.
fn summary<T>(delta: &ActDelta<T>, name: impl Fn(&T) -> String) -> Vec<String> {
    let mut out: Vec<String> = delta
        .changes
        .iter()
        .map(|c| match c {
            ActChange::Upserted(v) => format!("upserted {}", name(&v.item)),
            ActChange::Removed { id } => format!("removed {id}"),
            ActChange::Unreadable { id, error } => format!("unreadable {id}: {}", error.message),
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn events_are_created_read_updated_and_deleted_with_their_etag() {
    let s = Setup::new().await;
    let bob = s.bob();
    let d = next_monday();
    let want = meeting(d, "Review");
    let created = bob.create_event(&want).await.expect("created");
    let read = bob.get_event(&created.id).await.expect("read");
    assert_eq!(read, created);
    let got = &read.item;
    assert_eq!(
        (
            &got.summary,
            &got.start,
            &got.end,
            &got.location,
            &got.description
        ),
        (
            &want.summary,
            &want.start,
            &want.end,
            &want.location,
            &want.description
        )
    );
    assert_eq!(
        (got.status, &got.categories, &got.attendees),
        (want.status, &want.categories, &want.attendees)
    );
    assert_eq!(got.organizer.as_ref().map(|o| o.email.as_str()), Some(BOB));
    assert!(!got.uid.is_empty());

    // A second create with the same uid is the same event (transactionId).
    let again = bob.create_event(&want).await.expect("created again");
    assert_eq!(again.id, created.id);
    assert_eq!(s.graph.events(BOB).len(), 1);

    let mut changed = want.clone();
    changed.summary = "Review (moved)".to_owned();
    changed.start = at(d, 14);
    changed.end = at(d, 15);
    let updated = bob
        .update_event(&created.id, &created.etag, &changed)
        .await
        .expect("updated");
    assert_eq!(
        (&updated.item.summary, &updated.item.start),
        (&changed.summary, &changed.start)
    );
    assert_ne!(updated.etag, created.etag);

    // The etag read before the update is stale now: the precondition-failed result,
    // for an update and for a delete.
    let stale = bob.update_event(&created.id, &created.etag, &want).await;
    assert_eq!(
        stale,
        Err(GraphActError::PreconditionFailed {
            id: created.id.clone()
        })
    );
    let stale = bob.delete_event(&created.id, &created.etag).await;
    assert!(
        matches!(stale, Err(GraphActError::PreconditionFailed { .. })),
        "{stale:?}"
    );
    assert_eq!(
        s.graph
            .event(BOB, &created.id)
            .map(|e| e["subject"].clone()),
        Some(json!("Review (moved)"))
    );

    bob.delete_event(&created.id, &updated.etag)
        .await
        .expect("deleted");
    assert!(s.graph.event(BOB, &created.id).is_none());
    let gone = bob
        .get_event(&created.id)
        .await
        .expect_err("gone")
        .into_sync_error();
    assert_eq!(
        (gone.class, gone.scope),
        (ErrorClass::Permanent, ErrorScope::Item)
    );
}

#[tokio::test]
async fn a_weekly_series_keeps_its_modified_and_cancelled_occurrences() {
    let s = Setup::new().await;
    let bob = s.bob();
    let d = next_monday();
    let (moved, cancelled) = (d + Days::new(7), d + Days::new(21));
    let mut series = meeting(d, "Weekly");
    series.status = EventStatus::Confirmed;
    series.recurrence = Some(Recurrence {
        rrule: Some("FREQ=WEEKLY;COUNT=6;BYDAY=MO".to_owned()),
        exdates: vec![at(cancelled, 9)],
        rdates: Vec::new(),
    });
    series.exceptions = vec![Occurrence {
        recurrence_id: at(moved, 9),
        start: at(moved, 11),
        end: at(moved, 12),
        summary: "Weekly (late)".to_owned(),
        location: Some("Room 2".to_owned()),
        description: Some("Agenda".to_owned()),
        status: EventStatus::Confirmed,
        attendees: series.attendees.clone(),
    }];
    let created = bob.create_event(&series).await.expect("created");
    let got = &created.item;
    assert_eq!(got.recurrence, series.recurrence);
    assert_eq!(got.exceptions, series.exceptions);

    // What the server holds: six Mondays, one cancelled, one moved to 11:00.
    let instances = s
        .graph
        .event_instances(BOB, &created.id, d, d + Days::new(60));
    let kinds: Vec<(String, String)> = instances
        .iter()
        .map(|i| {
            (
                i["type"].as_str().unwrap_or("").to_owned(),
                i["start"]["dateTime"].as_str().unwrap_or("")[..16].to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [0, 7, 14, 28, 35]
        .iter()
        .map(|n| {
            let day = d + Days::new(*n);
            let (kind, hour) = if *n == 7 {
                ("exception", 11)
            } else {
                ("occurrence", 9)
            };
            (
                kind.to_owned(),
                format!("{}T{hour:02}:00", day.format("%Y-%m-%d")),
            )
        })
        .collect();
    assert_eq!(kinds, expected);

    // Writing the same series again changes no occurrence.
    let before = s.graph.requests();
    let same = bob
        .update_event(&created.id, &created.etag, &series)
        .await
        .expect("updated");
    assert_eq!(same.item.exceptions, series.exceptions);
    let patches = |r: &std::collections::BTreeMap<String, u64>| {
        r.get("PATCH /v1.0/users/{user}/events/{id}")
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        patches(&s.graph.requests()) - patches(&before),
        1,
        "only the master"
    );

    // Outlook cancels one more occurrence: the series reads with two EXDATEs.
    let third = s.graph.occurrence_id(&created.id, d + Days::new(14));
    s.graph.delete_event_on_server(BOB, &third);
    let late = s.graph.occurrence_id(&created.id, moved);
    let read = bob
        .get_event(&late)
        .await
        .expect("the series, from an occurrence id");
    assert_eq!(read.id, created.id);
    let exdates = read.item.recurrence.map(|r| r.exdates).unwrap_or_default();
    assert_eq!(exdates, [at(d + Days::new(14), 9), at(cancelled, 9)]);
}

#[tokio::test]
async fn calendar_deltas_report_what_outlook_changed() {
    let s = Setup::new().await;
    let bob = s.bob();
    let d = next_monday();
    let kept = bob
        .create_event(&meeting(d, "Kept"))
        .await
        .expect("created");
    let changed = bob
        .create_event(&meeting(d, "Changed"))
        .await
        .expect("created");
    let deleted = bob
        .create_event(&meeting(d, "Deleted"))
        .await
        .expect("created");
    let first = bob.events_delta(None).await.expect("a first round");
    assert_eq!(
        summary(&first, |a| a.summary.clone()),
        ["upserted Changed", "upserted Deleted", "upserted Kept"]
    );
    assert!(!first.restarted);

    // Outlook: a new event (with a Windows time zone), an edit, a delete, and a
    // new weekly series.
    let added = s.graph.add_event(
        BOB,
        json!({
            "subject": "From Outlook",
            "start": {"dateTime": format!("{d}T08:30:00.0000000"), "timeZone": "Romance Standard Time"},
            "end": {"dateTime": format!("{d}T09:00:00.0000000"), "timeZone": "Romance Standard Time"},
        }),
    );
    s.graph
        .update_event_on_server(BOB, &changed.id, json!({"subject": "Changed in Outlook"}));
    s.graph.delete_event_on_server(BOB, &deleted.id);
    let series = s.graph.add_event(
        BOB,
        json!({
            "subject": "Standup",
            "start": {"dateTime": format!("{d}T09:00:00.0000000"), "timeZone": "Europe/Paris"},
            "end": {"dateTime": format!("{d}T09:15:00.0000000"), "timeZone": "Europe/Paris"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "tuesday"], "firstDayOfWeek": "monday"},
                "range": {"type": "numbered", "startDate": d.to_string(), "numberOfOccurrences": 4}
            }
        }),
    );
    let second = bob
        .events_delta(Some(&first.delta_link))
        .await
        .expect("a second round");
    assert_eq!(
        summary(&second, |a| a.summary.clone()),
        [
            format!("removed {}", deleted.id),
            "upserted Changed in Outlook".to_owned(),
            "upserted From Outlook".to_owned(),
            "upserted Standup".to_owned(),
        ]
    );
    let upserted = |delta: &ActDelta<Appointment>, id: &str| {
        delta.changes.iter().find_map(|c| match c {
            ActChange::Upserted(v) if v.id == id => Some(v.item.clone()),
            _ => None,
        })
    };
    let outlook = upserted(&second, &added).expect("the Outlook event");
    let half_past_eight = d.and_hms_opt(8, 30, 0).expect("a time");
    assert_eq!(
        outlook.start,
        EventTime::Zoned {
            local: half_past_eight,
            tz: paris()
        },
        "Romance Standard Time is Europe/Paris"
    );
    let standup = upserted(&second, &series).expect("the series, once");
    assert_eq!(
        standup.recurrence.and_then(|r| r.rrule).as_deref(),
        Some("FREQ=WEEKLY;COUNT=4;BYDAY=MO,TU")
    );
    assert!(upserted(&second, &kept.id).is_none());

    // One occurrence cancelled in Outlook: the series again, its occurrence removed.
    let tuesday = s.graph.occurrence_id(&series, d + Days::new(1));
    s.graph.delete_event_on_server(BOB, &tuesday);
    let third = bob
        .events_delta(Some(&second.delta_link))
        .await
        .expect("a third round");
    assert_eq!(
        summary(&third, |a| a.summary.clone()),
        [format!("removed {tuesday}"), "upserted Standup".to_owned()]
    );
    let standup = upserted(&third, &series).expect("the series");
    assert_eq!(
        standup.recurrence.map(|r| r.exdates).unwrap_or_default(),
        [at(d + Days::new(1), 9)]
    );

    // An expired token: the view is read again from scratch.
    s.graph.expire_act_delta_tokens();
    let again = bob
        .events_delta(Some(&third.delta_link))
        .await
        .expect("a restarted round");
    assert!(again.restarted);
    assert_eq!(
        again.changes.len(),
        4,
        "{:?}",
        summary(&again, |a| a.summary.clone())
    );
}

fn dana() -> Contact {
    Contact {
        uid: "c-dana".to_owned(),
        formatted_name: "Dana Smith".to_owned(),
        name: StructuredName {
            family: Some("Smith".to_owned()),
            given: Some("Dana".to_owned()),
            ..StructuredName::default()
        },
        emails: vec![ContactEmail {
            address: "dana@example.org".to_owned(),
            kind: ContactUse::Other,
            preferred: true,
        }],
        phones: vec![ContactPhone {
            number: "+33 1 23 45 67 89".to_owned(),
            kind: PhoneKind::Work,
        }],
        addresses: Vec::new(),
        organization: Some("Contoso".to_owned()),
        title: Some("Buyer".to_owned()),
        note: None,
        categories: Vec::new(),
    }
}

#[tokio::test]
async fn contacts_round_trip_and_report_outlook_changes() {
    let s = Setup::new().await;
    let bob = s.bob();
    let folder = bob.default_contact_folder().await.expect("the folder");
    let created = bob.create_contact(&folder, &dana()).await.expect("created");
    let mut want = dana();
    want.uid = created.id.clone();
    assert_eq!(created.item, want);
    assert_eq!(bob.get_contact(&created.id).await.expect("read"), created);

    let first = bob.contacts_delta(&folder, None).await.expect("a round");
    assert_eq!(
        summary(&first, |c| c.formatted_name.clone()),
        ["upserted Dana Smith"]
    );

    let mut moved = want.clone();
    moved.title = Some("Head of purchasing".to_owned());
    let updated = bob
        .update_contact(&created.id, &created.etag, &moved)
        .await
        .expect("updated");
    assert_eq!(updated.item.title, moved.title);
    assert!(matches!(
        bob.update_contact(&created.id, &created.etag, &want).await,
        Err(GraphActError::PreconditionFailed { .. })
    ));

    let eve = s.graph.add_contact(
        BOB,
        json!({"displayName": "Eve", "emailAddresses": [{"address": "eve@example.org"}]}),
    );
    s.graph
        .update_contact_on_server(BOB, &created.id, json!({"companyName": "Fabrikam"}));
    let second = bob
        .contacts_delta(&folder, Some(&first.delta_link))
        .await
        .expect("a round");
    assert_eq!(
        summary(&second, |c| format!(
            "{} {:?}",
            c.formatted_name, c.organization
        )),
        [
            "upserted Dana Smith Some(\"Fabrikam\")",
            "upserted Eve None"
        ]
    );

    s.graph.delete_contact_on_server(BOB, &eve);
    let current = bob.get_contact(&created.id).await.expect("read");
    bob.delete_contact(&created.id, &current.etag)
        .await
        .expect("deleted");
    let third = bob
        .contacts_delta(&folder, Some(&second.delta_link))
        .await
        .expect("a round");
    let mut removed = vec![format!("removed {}", created.id), format!("removed {eve}")];
    removed.sort();
    assert_eq!(summary(&third, |c| c.formatted_name.clone()), removed);
    assert!(s.graph.contacts(BOB).is_empty());
}

#[tokio::test]
async fn tasks_live_in_a_list_found_or_created_by_name() {
    let s = Setup::new().await;
    let bob = s.bob();
    let list = bob.ensure_todo_list("mailbridge").await.expect("a list");
    let same = bob
        .ensure_todo_list("MailBridge")
        .await
        .expect("the same list");
    assert_eq!(list, same);
    assert_eq!(
        s.graph.todo_lists(BOB).len(),
        2,
        "the default list and ours"
    );

    let d = next_monday();
    let task = Task {
        uid: "t-1".to_owned(),
        summary: "Send the offer".to_owned(),
        description: Some("With the new prices".to_owned()),
        start: Some(EventTime::Date(d)),
        due: Some(EventTime::Date(d + Days::new(4))),
        completed_at: None,
        percent: None,
        priority: Priority::new(1),
        status: TodoStatus::InProcess,
        categories: vec!["Sales".to_owned()],
    };
    let created = bob.create_task(&list.id, &task).await.expect("created");
    let mut want = task.clone();
    want.uid = created.id.clone();
    assert_eq!(created.item, want);
    let first = bob.tasks_delta(&list.id, None).await.expect("a round");
    assert_eq!(
        summary(&first, |t| t.summary.clone()),
        ["upserted Send the offer"]
    );

    // To Do marks it done; mailbridge's stale write is refused.
    s.graph.update_task_on_server(
        BOB,
        &list.id,
        &created.id,
        json!({"status": "completed", "completedDateTime": {"dateTime": "2025-03-05T16:00:00.0000000", "timeZone": "UTC"}}),
    );
    assert!(matches!(
        bob.update_task(&list.id, &created.id, &created.etag, &want)
            .await,
        Err(GraphActError::PreconditionFailed { .. })
    ));
    let second = bob
        .tasks_delta(&list.id, Some(&first.delta_link))
        .await
        .expect("a round");
    let [ActChange::Upserted(done)] = second.changes.as_slice() else {
        panic!("one change: {:?}", second.changes)
    };
    assert_eq!(done.item.status, TodoStatus::Completed);
    assert_eq!(
        done.item.completed_at,
        Some("2025-03-05T16:00:00Z".parse().expect("a time"))
    );

    let mut reopened = done.item.clone();
    reopened.status = TodoStatus::NeedsAction;
    reopened.completed_at = None;
    let reopened = bob
        .update_task(&list.id, &done.id, &done.etag, &reopened)
        .await
        .expect("updated");
    assert_eq!(reopened.item.status, TodoStatus::NeedsAction);
    bob.delete_task(&list.id, &done.id, &reopened.etag)
        .await
        .expect("deleted");
    let third = bob
        .tasks_delta(&list.id, Some(&second.delta_link))
        .await
        .expect("a round");
    assert_eq!(
        summary(&third, |t| t.summary.clone()),
        [format!("removed {}", done.id)]
    );
    assert!(s.graph.tasks(BOB, &list.id).is_empty());
}

#[tokio::test]
async fn the_organization_claim_is_written_and_read_on_the_calendar() {
    let s = Setup::new().await;
    let bob = s.bob();
    assert_eq!(bob.read_claim().await.expect("read"), None);
    let claim = ActClaim {
        org_id: "org_4f1c".to_owned(),
        claimed_at: "2025-03-01T10:00:00Z".parse().expect("a time"),
    };
    bob.write_claim(&claim).await.expect("written");
    assert_eq!(bob.read_claim().await.expect("read"), Some(claim));
    assert_eq!(
        s.graph.calendar_property(BOB, CLAIM_PROPERTY_ID).as_deref(),
        Some("org_4f1c;2025-03-01T10:00:00Z")
    );
}

#[tokio::test]
async fn what_graph_cannot_hold_is_an_item_error_before_any_request() {
    let s = Setup::new().await;
    let bob = s.bob();
    let mut hourly = meeting(next_monday(), "Hourly");
    hourly.recurrence = Some(Recurrence {
        rrule: Some("FREQ=HOURLY;COUNT=3".to_owned()),
        ..Recurrence::default()
    });
    let e = bob
        .create_event(&hourly)
        .await
        .expect_err("refused")
        .into_sync_error();
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Item)
    );
    assert!(e.message.contains("HOURLY"), "{}", e.message);
    assert_eq!(s.graph.request_count(CREATE_EVENT), 0);
}

#[tokio::test]
async fn a_token_without_calendar_permission_is_a_profile_error() {
    let s = Setup::new().await;
    let client = client_with(&s.graph, &s.tokens.app_token(&["Mail.ReadWrite"]));
    let e = GraphAct::new(&client, BOB)
        .events_delta(None)
        .await
        .expect_err("denied");
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile)
    );
}

#[test]
fn rrules_convert_to_each_graph_pattern_and_back() {
    let start = NaiveDate::from_ymd_opt(2025, 3, 3).expect("a date");
    // (rule, Graph's JSON for it)
    let cases = [
        (
            "FREQ=DAILY;INTERVAL=2;COUNT=5",
            json!({"pattern": {"type": "daily", "interval": 2},
                   "range": {"type": "numbered", "startDate": "2025-03-03", "numberOfOccurrences": 5, "recurrenceTimeZone": "Europe/Paris"}}),
        ),
        (
            "FREQ=WEEKLY;UNTIL=20250630T235959Z;BYDAY=MO,TH",
            json!({"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"], "firstDayOfWeek": "monday"},
                   "range": {"type": "endDate", "startDate": "2025-03-03", "endDate": "2025-06-30", "recurrenceTimeZone": "Europe/Paris"}}),
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=3",
            json!({"pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 3},
                   "range": {"type": "noEnd", "startDate": "2025-03-03", "recurrenceTimeZone": "Europe/Paris"}}),
        ),
        (
            "FREQ=MONTHLY;BYDAY=1MO",
            json!({"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "first"},
                   "range": {"type": "noEnd", "startDate": "2025-03-03", "recurrenceTimeZone": "Europe/Paris"}}),
        ),
        (
            "FREQ=YEARLY;INTERVAL=2;BYMONTHDAY=3;BYMONTH=3",
            json!({"pattern": {"type": "absoluteYearly", "interval": 2, "month": 3, "dayOfMonth": 3},
                   "range": {"type": "noEnd", "startDate": "2025-03-03", "recurrenceTimeZone": "Europe/Paris"}}),
        ),
        (
            "FREQ=YEARLY;COUNT=3;BYDAY=-1MO;BYMONTH=3",
            json!({"pattern": {"type": "relativeYearly", "interval": 1, "month": 3, "daysOfWeek": ["monday"], "index": "last"},
                   "range": {"type": "numbered", "startDate": "2025-03-03", "numberOfOccurrences": 3, "recurrenceTimeZone": "Europe/Paris"}}),
        ),
    ];
    for (rule, graph) in cases {
        let converted = recurrence::to_graph(rule, start, Some("Europe/Paris")).expect(rule);
        assert_eq!(
            serde_json::to_value(&converted).expect("json"),
            graph,
            "{rule}"
        );
        let parsed: recurrence::PatternedRecurrence =
            serde_json::from_value(graph).expect("Graph's JSON");
        assert_eq!(recurrence::to_rrule(&parsed, false).expect(rule), rule);
    }
    let refused = [
        ("FREQ=SECONDLY", "SECONDLY"),
        ("FREQ=MONTHLY;BYDAY=5FR", "5th"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,15", "one day of the month"),
        ("FREQ=YEARLY;BYWEEKNO=1", "BYWEEKNO"),
        ("FREQ=WEEKLY;COUNT=2;UNTIL=20250401", "both COUNT and UNTIL"),
    ];
    for (rule, why) in refused {
        let e = recurrence::to_graph(rule, start, None).expect_err(rule);
        assert!(e.to_string().contains(why), "{rule}: {e}");
    }
}
