use chrono::{NaiveDate, TimeZone};

use super::*;
use crate::act::model::{Appointment as Event, ParticipationStatus, Recurrence};
use crate::act::samples;
use crate::party::ContactDetails;

/// A test database: Europe/Paris at +01:00 (the samples are in March 2026, before
/// the change to summer time), and UTC.
struct Winter;

impl TimeZones for Winter {
    fn to_utc(&self, local: NaiveDateTime, tz: &TimeZoneId) -> Option<DateTime<Utc>> {
        match tz.as_str() {
            "Europe/Paris" => Some(local.and_utc() - chrono::Duration::hours(1)),
            _ => UtcOnly.to_utc(local, tz),
        }
    }

    fn to_local(&self, at: DateTime<Utc>, tz: &TimeZoneId) -> Option<NaiveDateTime> {
        match tz.as_str() {
            "Europe/Paris" => Some(at.naive_utc() + chrono::Duration::hours(1)),
            _ => UtcOnly.to_local(at, tz),
        }
    }
}

fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("a valid instant")
}

fn blank_appointment() -> Appointment {
    let t = utc(2026, 1, 1, 0);
    Appointment {
        id: "0190a1b2-0000-7000-8000-000000000001".into(),
        org_id: "o1".into(),
        subject: String::new(),
        location: None,
        body: None,
        start: t,
        end: t,
        all_day: false,
        status: AppointmentStatus::Scheduled,
        owner_id: Some("u1".into()),
        organizer: None,
        organizer_name: None,
        regarding_type: None,
        regarding_id: None,
        ical_uid: None,
        time_zone: None,
        attendees: vec![],
        recurrence: None,
        exceptions: vec![],
        categories: vec![],
        version: 1,
        deleted_at: None,
        created_at: t,
        updated_at: t,
    }
}

fn blank_task() -> Task {
    let t = utc(2026, 1, 1, 0);
    Task {
        id: "0190a1b2-0000-7000-8000-000000000002".into(),
        org_id: "o1".into(),
        subject: String::new(),
        description: None,
        start: None,
        due: None,
        completed_at: None,
        priority: TaskPriority::Normal,
        status: TaskStatus::NotStarted,
        owner_id: Some("u1".into()),
        regarding_type: None,
        regarding_id: None,
        ical_uid: None,
        percent_complete: None,
        categories: vec![],
        version: 1,
        deleted_at: None,
        created_at: t,
        updated_at: t,
    }
}

fn blank_contact() -> PartyRecord {
    let t = utc(2026, 1, 1, 0);
    PartyRecord {
        id: "0190a1b2-0000-7000-8000-000000000003".into(),
        org_id: "o1".into(),
        name: String::new(),
        email: None,
        phone: None,
        company: None,
        account_id: None,
        active: true,
        owner_id: Some("u1".into()),
        given_name: None,
        family_name: None,
        job_title: None,
        details: ContactDetails::default(),
        ical_uid: None,
        version: 1,
        deleted_at: None,
        created_at: t,
        updated_at: t,
    }
}

/// Applies an item to a blank record and reads it back.
fn round_trip(blank: ActRecord, item: &ActItem) -> (ActRecord, ActItem) {
    let mut record = blank;
    record.apply(item, &Winter).expect("applies");
    let back = record.to_item(&Winter).expect("converts");
    (record, back)
}

#[test]
fn a_zoned_series_with_an_exception_and_attendees_round_trips() {
    let meeting = samples::meeting();
    let item = ActItem::Appointment(meeting.clone());
    let (record, back) = round_trip(ActRecord::Appointment(blank_appointment()), &item);
    let ActRecord::Appointment(a) = &record else {
        panic!("an appointment");
    };
    // The record holds instants and the zone; the series and its exception as given.
    assert_eq!(a.start, utc(2026, 3, 2, 9));
    assert_eq!(a.end, utc(2026, 3, 2, 10));
    assert_eq!(a.time_zone.as_deref(), Some("Europe/Paris"));
    assert!(!a.all_day);
    assert_eq!(a.organizer.as_deref(), Some("ana@contoso.com"));
    assert_eq!(a.organizer_name.as_deref(), Some("Ana Silva"));
    assert_eq!(a.attendees.len(), 2);
    assert_eq!(a.attendees[0].status, ParticipationStatus::Accepted);
    assert_eq!(a.exceptions.len(), 1);
    assert_eq!(a.ical_uid.as_deref(), Some("3f1c@crm.example.org"));
    assert_eq!(a.subject, "Quarterly review");
    assert_eq!(a.body.as_deref(), meeting.description.as_deref());
    assert_eq!(back, item);
}

#[test]
fn all_day_and_utc_appointments_round_trip() {
    let day = |d| EventTime::Date(NaiveDate::from_ymd_opt(2026, 5, d).expect("a date"));
    let cases: Vec<(&str, EventTime, EventTime, bool, Option<&str>)> = vec![
        ("all day", day(1), day(2), true, None),
        (
            "utc",
            EventTime::Utc(utc(2026, 5, 1, 8)),
            EventTime::Utc(utc(2026, 5, 1, 9)),
            false,
            None,
        ),
        (
            "named UTC zone",
            EventTime::Zoned {
                local: utc(2026, 5, 1, 8).naive_utc(),
                tz: TimeZoneId::new("UTC").expect("a zone"),
            },
            EventTime::Zoned {
                local: utc(2026, 5, 1, 9).naive_utc(),
                tz: TimeZoneId::new("UTC").expect("a zone"),
            },
            false,
            Some("UTC"),
        ),
    ];
    for (what, start, end, all_day, zone) in cases {
        let e = Event {
            start,
            end,
            recurrence: None,
            exceptions: vec![],
            ..samples::meeting()
        };
        let item = ActItem::Appointment(e);
        let (record, back) = round_trip(ActRecord::Appointment(blank_appointment()), &item);
        let ActRecord::Appointment(a) = &record else {
            panic!("an appointment");
        };
        assert_eq!(a.all_day, all_day, "{what}");
        assert_eq!(a.time_zone.as_deref(), zone, "{what}");
        assert_eq!(back, item, "{what}");
    }
}

#[test]
fn a_record_without_a_uid_gets_one_from_its_id() {
    let a = blank_appointment();
    let item = appointment_to_item(&a, &Winter).expect("converts");
    assert_eq!(item.uid, "0190a1b2-0000-7000-8000-000000000001@mailbridge");
    assert_eq!(item.start, EventTime::Utc(a.start));
}

#[test]
fn unknown_zones_and_other_kinds_are_refused() {
    let mut a = blank_appointment();
    a.time_zone = Some("America/New_York".into());
    assert_eq!(
        appointment_to_item(&a, &Winter),
        Err(ConversionError::UnknownTimeZone {
            field: "start",
            tz: "America/New_York".into()
        })
    );
    let e = Event {
        start: EventTime::Zoned {
            local: utc(2026, 3, 2, 10).naive_utc(),
            tz: TimeZoneId::new("Asia/Tokyo").expect("a zone"),
        },
        ..samples::meeting()
    };
    let err = apply_appointment(&mut blank_appointment(), &e, &Winter).expect_err("refused");
    assert!(
        err.to_string().contains("Asia/Tokyo"),
        "the error names the zone: {err}"
    );
    let mut task = ActRecord::Task(blank_task());
    assert_eq!(
        task.apply(&ActItem::Contact(samples::contact()), &Winter),
        Err(ConversionError::KindMismatch {
            item: ActKind::Contact,
            record: ActKind::Task
        })
    );
}

#[test]
fn appointment_statuses_map_both_ways() {
    // (record status, server status, record status after applying)
    let cases = [
        (
            AppointmentStatus::Scheduled,
            EventStatus::Cancelled,
            AppointmentStatus::Canceled,
        ),
        (
            AppointmentStatus::Completed,
            EventStatus::Confirmed,
            AppointmentStatus::Completed,
        ),
        (
            AppointmentStatus::Completed,
            EventStatus::Cancelled,
            AppointmentStatus::Canceled,
        ),
        (
            AppointmentStatus::Canceled,
            EventStatus::Confirmed,
            AppointmentStatus::Scheduled,
        ),
        (
            AppointmentStatus::Scheduled,
            EventStatus::Tentative,
            AppointmentStatus::Scheduled,
        ),
    ];
    for (before, server, after) in cases {
        let mut a = blank_appointment();
        a.status = before;
        let e = Event {
            status: server,
            ..samples::meeting()
        };
        apply_appointment(&mut a, &e, &Winter).expect("applies");
        assert_eq!(a.status, after, "{before} + {server:?}");
    }
}

#[test]
fn tasks_round_trip_and_dates_become_instants() {
    let mut k = samples::task();
    k.start = Some(EventTime::Utc(utc(2026, 3, 2, 8)));
    k.due = Some(EventTime::Utc(utc(2026, 3, 6, 16)));
    k.categories = vec!["Quotes".into()];
    let item = ActItem::Task(k);
    let (_, back) = round_trip(ActRecord::Task(blank_task()), &item);
    assert_eq!(back, item);

    // The sample's all-day start and Paris due come back as instants.
    let mut t = blank_task();
    apply_task(&mut t, &samples::task(), &Winter).expect("applies");
    assert_eq!(t.start, Some(utc(2026, 3, 2, 0)));
    assert_eq!(t.due, Some(utc(2026, 3, 6, 16)));
    assert_eq!(t.percent_complete, Some(20));
    assert_eq!(t.status, TaskStatus::InProgress);
    assert_eq!(t.priority, TaskPriority::Normal);

    let done = Todo {
        status: TodoStatus::Completed,
        completed_at: Some(samples::completed_at()),
        percent: Some(100),
        priority: None,
        ..samples::task()
    };
    apply_task(&mut t, &done, &Winter).expect("applies");
    assert_eq!(
        (t.status, t.completed_at, t.priority),
        (
            TaskStatus::Completed,
            Some(samples::completed_at()),
            TaskPriority::Normal
        )
    );
    assert!(ActRecord::Task(t).is_closed());
}

#[test]
fn contacts_round_trip_with_further_emails_phones_and_addresses() {
    let mut c = samples::contact();
    c.emails.push(ContactEmail {
        address: "bo@home.example".into(),
        kind: ContactUse::Home,
        preferred: false,
    });
    c.phones.push(ContactPhone {
        number: "+46 70 111 22 33".into(),
        kind: PhoneKind::Mobile,
    });
    c.note = Some("Met at the fair".into());
    c.categories = vec!["Buyers".into()];
    let item = ActItem::Contact(c);
    let (record, back) = round_trip(ActRecord::Contact(blank_contact()), &item);
    let ActRecord::Contact(p) = &record else {
        panic!("a contact");
    };
    assert_eq!(p.email.as_deref(), Some("bo@fabrikam.com"));
    assert_eq!(p.phone.as_deref(), Some("+46 8 123 45 67"));
    assert_eq!(p.details.emails.len(), 1);
    assert_eq!(p.details.phones[0].kind, PhoneKind::Mobile);
    assert_eq!(
        (p.given_name.as_deref(), p.family_name.as_deref()),
        (Some("Bo"), Some("Lindqvist"))
    );
    assert_eq!(p.company.as_deref(), Some("Fabrikam"));
    assert_eq!(p.job_title.as_deref(), Some("Buyer"));
    assert_eq!(back, item);

    // The preferred email becomes the record's email even when it is not first.
    let mut c = samples::contact();
    c.emails.insert(
        0,
        ContactEmail {
            address: "first@example.org".into(),
            kind: ContactUse::Other,
            preferred: false,
        },
    );
    let mut p = blank_contact();
    apply_contact(&mut p, &c);
    assert_eq!(p.email.as_deref(), Some("bo@fabrikam.com"));
    assert_eq!(p.details.emails[0].address, "first@example.org");
}

#[test]
fn facts_say_what_the_filters_need() {
    let mut a = blank_appointment();
    a.start = utc(2026, 3, 2, 9);
    a.end = utc(2026, 3, 2, 10);
    let single = ActRecord::Appointment(a.clone()).facts("u1", false, true);
    assert!(single.owned_by_user && single.linked && single.active && !single.closed);
    assert_eq!(
        (single.starts_at, single.ends_at),
        (Some(a.start), Some(a.end))
    );

    let series = |rrule: &str| {
        let mut s = a.clone();
        s.recurrence = Some(Recurrence {
            rrule: Some(rrule.into()),
            ..Recurrence::default()
        });
        ActRecord::Appointment(s).facts("u2", true, false)
    };
    let until = series("FREQ=WEEKLY;UNTIL=20260330T090000Z");
    assert!(!until.owned_by_user && until.regarding_owned_by_user);
    assert_eq!(until.ends_at, Some(utc(2026, 3, 31, 1)));
    assert_eq!(series("FREQ=WEEKLY;COUNT=4").ends_at, None);
    assert_eq!(series("FREQ=DAILY").ends_at, None);

    let mut c = blank_contact();
    c.active = false;
    let facts = ActRecord::Contact(c).facts("u1", false, false);
    assert!(!facts.active && !facts.closed && facts.starts_at.is_none());
    let mut t = blank_task();
    t.status = TaskStatus::Canceled;
    assert!(ActRecord::Task(t).facts("u1", false, false).closed);
}
