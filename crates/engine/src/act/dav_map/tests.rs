use chrono::{NaiveDate, NaiveDateTime};
use mailbridge_connectors::dav::{self, CalendarResource};
use mailbridge_domain::act::model::*;

use super::*;

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, 0))
        .expect("a valid time")
}

fn berlin(l: NaiveDateTime) -> EventTime {
    EventTime::Zoned {
        local: l,
        tz: TimeZoneId::new("Europe/Berlin").expect("an id"),
    }
}

fn read(kind: ActKind, ics: &str) -> ActItem {
    let res = CalendarResource::parse(ics).expect("parses");
    item_from_resource(kind, &res)
        .expect("maps")
        .expect("of that kind")
}

/// Through iCalendar text and back: what a server stores and gives back.
fn round_trip(item: &ActItem) -> ActItem {
    let res = resource_from_item(item, None).expect("a calendar item");
    let text = res.to_ics().expect("writes");
    read(item.kind(), &text)
}

const SERIES: &str = "BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:series-1@example.org\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260105T090000\r
DTEND;TZID=Europe/Berlin:20260105T093000\r
RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO\r
EXDATE;TZID=Europe/Berlin:20260112T090000\r
SUMMARY:Stand-up\r
LOCATION:Room 1\r
ORGANIZER;CN=Alice:mailto:alice@example.org\r
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.org\r
CATEGORIES:Work,Tracked\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:series-1@example.org\r
DTSTAMP:20260101T000000Z\r
RECURRENCE-ID;TZID=Europe/Berlin:20260119T090000\r
DTSTART;TZID=Europe/Berlin:20260119T100000\r
DTEND;TZID=Europe/Berlin:20260119T103000\r
SUMMARY:Stand-up (moved)\r
END:VEVENT\r
END:VCALENDAR\r
";

#[test]
fn a_recurring_series_with_an_exception_maps_both_ways() {
    let item = read(ActKind::Appointment, SERIES);
    let ActItem::Appointment(a) = &item else {
        panic!("{item:?}");
    };
    assert_eq!(a.uid, "series-1@example.org");
    assert_eq!(a.start, berlin(local(2026, 1, 5, 9, 0)));
    assert_eq!(a.end, berlin(local(2026, 1, 5, 9, 30)));
    let r = a.recurrence.as_ref().expect("a series");
    assert!(
        r.rrule
            .as_deref()
            .is_some_and(|r| r.contains("FREQ=WEEKLY"))
    );
    assert_eq!(r.exdates, [berlin(local(2026, 1, 12, 9, 0))]);
    assert_eq!(a.exceptions.len(), 1);
    let x = &a.exceptions[0];
    assert_eq!(x.recurrence_id, berlin(local(2026, 1, 19, 9, 0)));
    assert_eq!(x.start, berlin(local(2026, 1, 19, 10, 0)));
    assert_eq!(x.summary, "Stand-up (moved)");
    assert_eq!(
        a.organizer.as_ref().map(|p| p.email.as_str()),
        Some("alice@example.org")
    );
    assert_eq!(a.attendees[0].status, ParticipationStatus::Accepted);
    assert!(tracked_by_category(&item));
    assert_eq!(round_trip(&item), item);
    assert_eq!(read_back(&item), item);
}

#[test]
fn all_day_events_and_their_implicit_ends() {
    let cases = [
        (
            "DTSTART;VALUE=DATE:20260310\r\nDTEND;VALUE=DATE:20260312\r\n",
            EventTime::Date(NaiveDate::from_ymd_opt(2026, 3, 12).expect("date")),
        ),
        // No end: an all-day event lasts its day (RFC 5545 section 3.6.1).
        (
            "DTSTART;VALUE=DATE:20260310\r\n",
            EventTime::Date(NaiveDate::from_ymd_opt(2026, 3, 11).expect("date")),
        ),
        (
            "DTSTART;VALUE=DATE:20260310\r\nDURATION:P2D\r\n",
            EventTime::Date(NaiveDate::from_ymd_opt(2026, 3, 12).expect("date")),
        ),
    ];
    for (lines, end) in cases {
        let ics = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTAMP:20260101T000000Z\r\n{lines}SUMMARY:Fair\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
        let item = read(ActKind::Appointment, &ics);
        let ActItem::Appointment(a) = &item else {
            panic!("{item:?}")
        };
        assert!(a.is_all_day(), "{lines}");
        assert_eq!(a.end, end, "{lines}");
        assert_eq!(round_trip(&item), item, "{lines}");
    }
}

#[test]
fn time_zones_are_read_as_iana_ids_or_refused() {
    let event = |start: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:z\r\nDTSTAMP:20260101T000000Z\r\n{start}\r\nSUMMARY:Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
    let cases = [
        (
            "DTSTART;TZID=Europe/Berlin:20260105T090000",
            Ok(berlin(local(2026, 1, 5, 9, 0))),
        ),
        (
            "DTSTART;TZID=/mozilla.org/20050126_1/Europe/Berlin:20260105T090000",
            Ok(berlin(local(2026, 1, 5, 9, 0))),
        ),
        (
            "DTSTART:20260105T090000Z",
            Ok(EventTime::Utc(local(2026, 1, 5, 9, 0).and_utc())),
        ),
        // Floating: read as UTC.
        (
            "DTSTART:20260105T090000",
            Ok(EventTime::Utc(local(2026, 1, 5, 9, 0).and_utc())),
        ),
        (
            "DTSTART;TZID=W. Europe Standard Time:20260105T090000",
            Err("time zone"),
        ),
    ];
    for (line, expected) in cases {
        let res = CalendarResource::parse(&event(line)).expect("parses");
        let got = item_from_resource(ActKind::Appointment, &res).map(|i| match i {
            Some(ActItem::Appointment(a)) => a.start,
            other => panic!("{other:?}"),
        });
        match (got, expected) {
            (Ok(t), Ok(e)) => assert_eq!(t, e, "{line}"),
            (Err(why), Err(words)) => assert!(why.contains(words), "{line}: {why}"),
            (got, expected) => panic!("{line}: {got:?} instead of {expected:?}"),
        }
    }
}

#[test]
fn tasks_map_their_progress_both_ways() {
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t-1\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:File the report\r\nDUE:20260320T170000Z\r\nSTATUS:IN-PROCESS\r\nPERCENT-COMPLETE:40\r\nPRIORITY:1\r\nCATEGORIES:tracked\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    let item = read(ActKind::Task, ics);
    let ActItem::Task(t) = &item else {
        panic!("{item:?}")
    };
    assert_eq!(t.status, TodoStatus::InProcess);
    assert_eq!(t.percent, Some(40));
    assert_eq!(t.priority.map(Priority::get), Some(1));
    assert_eq!(
        t.due,
        Some(EventTime::Utc(local(2026, 3, 20, 17, 0).and_utc()))
    );
    assert!(
        tracked_by_category(&item),
        "categories compare without case"
    );
    assert_eq!(round_trip(&item), item);
    // Not an appointment: a calendar read for appointments leaves it out.
    let res = CalendarResource::parse(ics).expect("parses");
    assert_eq!(item_from_resource(ActKind::Appointment, &res), Ok(None));

    let done = Task {
        status: TodoStatus::Completed,
        completed_at: Some(local(2026, 3, 19, 8, 0).and_utc()),
        percent: Some(100),
        ..t.clone()
    };
    assert_eq!(
        round_trip(&ActItem::Task(done.clone())),
        ActItem::Task(done)
    );
    // A completion time without a status is a completed task.
    let ics = ics
        .replace("STATUS:IN-PROCESS\r\n", "")
        .replace("PRIORITY:1", "COMPLETED:20260319T080000Z");
    let ActItem::Task(t) = read(ActKind::Task, &ics) else {
        panic!()
    };
    assert_eq!(t.status, TodoStatus::Completed);
}

#[test]
fn vcards_map_to_contacts_and_back() {
    let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c-1\r\nFN:Bob Builder\r\nN:Builder;Bob;;;\r\nEMAIL;TYPE=INTERNET;TYPE=WORK;TYPE=PREF:bob@example.org\r\nEMAIL;TYPE=HOME:bob@home.example\r\nTEL;TYPE=CELL:+49 170 1234567\r\nTEL;TYPE=WORK:+49 30 1234\r\nORG:Example GmbH\r\nTITLE:Site manager\r\nNOTE:Likes tea\r\nEND:VCARD\r\n";
    let card = dav::Contact::parse(v3).expect("parses");
    let c = contact_from_card(&card, "fallback");
    assert_eq!(c.uid, "c-1");
    assert_eq!(c.name.family.as_deref(), Some("Builder"));
    assert_eq!(
        c.emails
            .iter()
            .map(|e| (e.address.as_str(), e.kind, e.preferred))
            .collect::<Vec<_>>(),
        [
            ("bob@example.org", ContactUse::Work, true),
            ("bob@home.example", ContactUse::Home, false)
        ]
    );
    assert_eq!(
        c.phones.iter().map(|p| p.kind).collect::<Vec<_>>(),
        [PhoneKind::Mobile, PhoneKind::Work]
    );
    let back = card_from_contact(&c, Some(&card));
    assert_eq!(
        back.version,
        dav::CardVersion::V3,
        "the server's version is kept"
    );
    let again = dav::Contact::parse(&back.to_vcf()).expect("reads back");
    assert_eq!(contact_from_card(&again, "fallback"), c);
    assert_eq!(read_back(&ActItem::Contact(c.clone())), ActItem::Contact(c));
    // Without a UID, the item's name stands in.
    let bare = dav::Contact::parse("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Eve\r\nEND:VCARD\r\n")
        .expect("parses");
    assert_eq!(contact_from_card(&bare, "eve.vcf").uid, "eve.vcf");
}

#[test]
fn what_dav_cannot_carry_is_kept_from_the_record() {
    let ActItem::Appointment(server) = read(ActKind::Appointment, SERIES) else {
        panic!()
    };
    let mut record = server.clone();
    record.attendees[0].role = AttendeeRole::Optional;
    if let Some(r) = &mut record.recurrence {
        r.rdates = vec![berlin(local(2026, 4, 1, 9, 0))];
    }
    let mut got = ActItem::Appointment(server);
    keep_unmapped(&mut got, &ActItem::Appointment(record.clone()));
    assert_eq!(got, ActItem::Appointment(record));

    let contact = Contact {
        uid: "c".into(),
        formatted_name: "C".into(),
        name: StructuredName::default(),
        emails: vec![],
        phones: vec![],
        addresses: vec![PostalAddress {
            kind: ContactUse::Work,
            street: Some("1 Main St".into()),
            locality: None,
            region: None,
            postal_code: None,
            country: None,
        }],
        organization: None,
        title: None,
        note: None,
        categories: vec!["VIP".into()],
    };
    let mut from_server = read_back(&ActItem::Contact(contact.clone()));
    assert_ne!(from_server, ActItem::Contact(contact.clone()));
    keep_unmapped(&mut from_server, &ActItem::Contact(contact.clone()));
    assert_eq!(from_server, ActItem::Contact(contact));
}

#[test]
fn durations_are_read_as_rfc_5545_writes_them() {
    let cases = [
        ("PT1H", Some(Duration::hours(1))),
        ("PT1H30M", Some(Duration::minutes(90))),
        ("P1D", Some(Duration::days(1))),
        ("P2W", Some(Duration::weeks(2))),
        ("-PT15M", Some(Duration::minutes(-15))),
        ("P1DT12H", Some(Duration::hours(36))),
        ("P", None),
        ("PT5", None),
        ("1H", None),
        ("P1H", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_duration(text), expected, "{text}");
    }
}
