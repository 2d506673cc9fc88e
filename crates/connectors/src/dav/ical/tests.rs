use super::*;

/// A weekly series in Europe/Berlin with one instance excluded and one moved, as
/// Thunderbird writes it (the VTIMEZONE abridged).
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
SUMMARY:Stand-up\\, weekly\r
LOCATION:Room 1\r
ORGANIZER;CN=Alice:mailto:alice@example.org\r
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.org\r
SEQUENCE:2\r
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

fn berlin(y: i32, m: u32, d: u32, h: u32, min: u32) -> CalDateTime {
    CalDateTime::Zoned {
        local: NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .expect("valid"),
        tzid: "Europe/Berlin".to_owned(),
    }
}

#[test]
fn a_series_with_an_exception_is_read() {
    let r = CalendarResource::parse(SERIES).expect("parses");
    assert_eq!(r.uid(), Some("series-1@example.org"));
    assert_eq!(r.events.len(), 2);
    let master = &r.events[0];
    assert_eq!(master.recurrence_id, None);
    assert_eq!(master.start, Some(berlin(2026, 1, 5, 9, 0)));
    assert_eq!(
        master.rrule.as_deref(),
        Some("FREQ=WEEKLY;COUNT=10;BYDAY=MO")
    );
    assert_eq!(master.exdates, [berlin(2026, 1, 12, 9, 0)]);
    assert_eq!(master.summary.as_deref(), Some("Stand-up, weekly"));
    assert_eq!(master.sequence, Some(2));
    assert_eq!(
        master.attendees,
        [Attendee {
            address: "mailto:bob@example.org".to_owned(),
            name: Some("Bob".to_owned()),
            status: Some("ACCEPTED".to_owned()),
        }]
    );
    let moved = &r.events[1];
    assert_eq!(moved.recurrence_id, Some(berlin(2026, 1, 19, 9, 0)));
    assert_eq!(moved.start, Some(berlin(2026, 1, 19, 10, 0)));
    assert_eq!(r.timezones.len(), 1);
    assert!(
        r.timezones[0].starts_with("BEGIN:VTIMEZONE\r\n"),
        "{}",
        r.timezones[0]
    );
    assert!(
        r.timezones[0].contains("TZOFFSETTO:+0200"),
        "{}",
        r.timezones[0]
    );
}

#[test]
fn written_resources_read_back_the_same() {
    let r = CalendarResource::parse(SERIES).expect("parses");
    let text = r.to_ics().expect("writes");
    assert!(
        text.contains("RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO\r\n"),
        "{text}"
    );
    assert!(
        text.contains("DTSTART;TZID=Europe/Berlin:20260105T090000\r\n"),
        "{text}"
    );
    assert!(text.contains("BEGIN:DAYLIGHT\r\n"), "{text}");
    assert_eq!(CalendarResource::parse(&text).expect("reads back"), r);
}

#[test]
fn dates_keep_their_form() {
    let date = NaiveDate::from_ymd_opt(2026, 2, 3).expect("date");
    let at = date.and_hms_opt(4, 5, 6).expect("time");
    let cases = [
        CalDateTime::Date(date),
        CalDateTime::Floating(at),
        CalDateTime::Utc(at),
        CalDateTime::Zoned {
            local: at,
            tzid: "America/New_York".to_owned(),
        },
    ];
    for value in cases {
        let task = Task {
            uid: "t@example.org".to_owned(),
            due: Some(value.clone()),
            dtstamp: Some(CalDateTime::Utc(at)),
            ..Task::default()
        };
        let r = CalendarResource {
            tasks: vec![task],
            ..CalendarResource::default()
        };
        let text = r.to_ics().expect("writes");
        let back = CalendarResource::parse(&text).expect("reads back");
        assert_eq!(back.tasks[0].due.as_ref(), Some(&value), "{text}");
    }
}

#[test]
fn tasks_round_trip() {
    let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:todo-1\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:File the report\r\nDUE;VALUE=DATE:20260301\r\nSTATUS:IN-PROCESS\r\nPRIORITY:1\r\nPERCENT-COMPLETE:40\r\nCATEGORIES:work,urgent\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    let r = CalendarResource::parse(text).expect("parses");
    let t = &r.tasks[0];
    assert_eq!(t.status.as_deref(), Some("IN-PROCESS"));
    assert_eq!((t.priority, t.percent_complete), (Some(1), Some(40)));
    assert_eq!(t.categories, ["work", "urgent"]);
    let again = CalendarResource::parse(&r.to_ics().expect("writes")).expect("reads back");
    assert_eq!(again, r);
}

#[test]
fn unusable_data_is_refused() {
    let cases = [
        (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
            "no VEVENT or VTODO",
        ),
        (
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "has no UID",
        ),
        ("hello", "could not be read"),
    ];
    for (text, words) in cases {
        let e = CalendarResource::parse(text).expect_err(text);
        assert!(e.0.contains(words), "{text}: {e}");
    }
    let bad_rule = CalendarResource {
        events: vec![Event {
            uid: "u".to_owned(),
            rrule: Some("NOT A RULE".to_owned()),
            ..Event::default()
        }],
        ..CalendarResource::default()
    };
    assert!(bad_rule.to_ics().is_err());
}
