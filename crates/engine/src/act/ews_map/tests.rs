use super::*;
use mailbridge_connectors::ews::{CalendarItemType, ItemId, ModifiedOccurrence};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a time")
        .with_timezone(&Utc)
}

fn paris(local: &str) -> EventTime {
    EventTime::Zoned {
        local: chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").expect("a time"),
        tz: TimeZoneId::new("Europe/Paris").expect("an id"),
    }
}

fn appointment_in_paris() -> Appointment {
    Appointment {
        uid: "r-1@mailbridge".into(),
        summary: "Kick-off".into(),
        organizer: None,
        attendees: vec![Attendee {
            person: Person {
                email: "dana@example.org".into(),
                name: None,
            },
            role: AttendeeRole::Optional,
            status: ParticipationStatus::NeedsAction,
        }],
        start: paris("2026-07-06T09:00"),
        end: paris("2026-07-06T10:00"),
        location: Some("Room 2".into()),
        description: Some("Agenda".into()),
        status: EventStatus::Tentative,
        categories: vec!["Blue".into()],
        recurrence: Some(Recurrence {
            rrule: Some("FREQ=WEEKLY;COUNT=4;BYDAY=MO".into()),
            exdates: Vec::new(),
            rdates: Vec::new(),
        }),
        exceptions: Vec::new(),
    }
}

#[test]
fn an_appointment_is_written_as_an_instant_with_its_windows_zone_and_reads_back_the_same() {
    let a = appointment_in_paris();
    let item = calendar_item(&a).expect("writable");
    assert_eq!(item.start, at("2026-07-06T07:00:00Z"), "summer time");
    assert_eq!(
        item.start_time_zone.as_deref(),
        Some("Romance Standard Time")
    );
    assert_eq!(item.free_busy.as_deref(), Some("Tentative"));
    assert_eq!(item.optional_attendees.len(), 1);
    let r = item.recurrence.as_ref().expect("a pattern");
    assert_eq!(
        (r.pattern.kind.as_str(), r.range.number_of_occurrences),
        ("weekly", 4)
    );
    let back = appointment("AAMk1", &item, &HashMap::new()).expect("readable");
    assert_eq!(back, a);
}

#[test]
fn what_ews_cannot_hold_is_refused_with_the_reason() {
    let mut a = appointment_in_paris();
    a.recurrence.as_mut().expect("a series").rdates = vec![paris("2026-07-08T09:00")];
    assert!(calendar_item(&a).unwrap_err().contains("RDATE"));
    let mut a = appointment_in_paris();
    // Nepal has no Windows zone in mailbridge's table.
    if let EventTime::Zoned { tz, .. } = &mut a.start {
        *tz = TimeZoneId::new("Asia/Kathmandu").expect("an id");
    }
    assert!(calendar_item(&a).unwrap_err().contains("Windows id"));
}

#[test]
fn a_master_reads_with_its_exclusions_and_exceptions_in_its_zone() {
    let mut master = CalendarItem::new(
        "Weekly sync",
        at("2026-01-05T08:00:00Z"),
        at("2026-01-05T08:30:00Z"),
    );
    master.start_time_zone = Some("W. Europe Standard Time".into());
    master.item_type = Some(CalendarItemType::RecurringMaster);
    master.recurrence = calendar_item(&Appointment {
        start: EventTime::Utc(at("2026-01-05T08:00:00Z")),
        end: EventTime::Utc(at("2026-01-05T08:30:00Z")),
        ..appointment_in_paris()
    })
    .expect("writable")
    .recurrence;
    master.deleted_occurrences = vec![at("2026-01-12T08:00:00Z")];
    master.modified_occurrences = vec![ModifiedOccurrence {
        id: ItemId::new("EXC", None),
        start: at("2026-01-19T10:00:00Z"),
        end: at("2026-01-19T10:30:00Z"),
        original_start: at("2026-01-19T08:00:00Z"),
    }];
    let mut exception = CalendarItem::new(
        "Weekly sync (moved)",
        at("2026-01-19T10:00:00Z"),
        at("2026-01-19T10:30:00Z"),
    );
    exception.location = Some("Room 7".into());
    let exceptions = HashMap::from([("EXC".to_owned(), exception)]);
    let a = appointment("AAMkM", &master, &exceptions).expect("readable");
    let berlin = |local: &str| EventTime::Zoned {
        local: chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").expect("a time"),
        tz: TimeZoneId::new("Europe/Berlin").expect("an id"),
    };
    assert_eq!(a.start, berlin("2026-01-05T09:00"));
    let r = a.recurrence.expect("a series");
    assert_eq!(r.exdates, [berlin("2026-01-12T09:00")]);
    assert_eq!(a.exceptions.len(), 1);
    let o = &a.exceptions[0];
    assert_eq!(o.recurrence_id, berlin("2026-01-19T09:00"));
    assert_eq!(
        (o.summary.as_str(), o.location.as_deref()),
        ("Weekly sync (moved)", Some("Room 7"))
    );
    assert_eq!(o.start, berlin("2026-01-19T11:00"));
    assert_eq!(
        series_date(&master, at("2026-01-18T23:30:00Z")).to_string(),
        "2026-01-19"
    );
}

#[test]
fn contacts_and_tasks_keep_their_uid_in_a_property_and_round_trip() {
    let c = Contact {
        uid: "c-1@mailbridge".into(),
        formatted_name: "Dr. Bo Berg".into(),
        name: StructuredName {
            family: Some("Berg".into()),
            given: Some("Bo".into()),
            additional: None,
            prefix: Some("Dr.".into()),
            suffix: None,
        },
        emails: vec![ContactEmail {
            address: "bo@fabrikam.example".into(),
            kind: ContactUse::Other,
            preferred: true,
        }],
        phones: vec![
            ContactPhone {
                number: "+1 1".into(),
                kind: PhoneKind::Work,
            },
            ContactPhone {
                number: "+1 2".into(),
                kind: PhoneKind::Fax,
            },
        ],
        addresses: Vec::new(),
        organization: Some("Fabrikam".into()),
        title: None,
        note: Some("Met at the fair".into()),
        categories: vec!["Tracked".into()],
    };
    let item = contact_item(&c);
    assert_eq!(item.properties[UID_PROPERTY], "c-1@mailbridge");
    assert_eq!(item.phones[&PhoneKey::BusinessFax], "+1 2");
    assert_eq!(contact("AAMkC", &item), c);

    let statuses = [
        (TodoStatus::NeedsAction, TaskStatus::NotStarted),
        (TodoStatus::InProcess, TaskStatus::InProgress),
        (TodoStatus::Completed, TaskStatus::Completed),
        (TodoStatus::Cancelled, TaskStatus::Deferred),
    ];
    for (status, ews) in statuses {
        let t = Task {
            uid: "t-1@mailbridge".into(),
            summary: "Send the quote".into(),
            description: None,
            start: None,
            due: Some(EventTime::Date(
                NaiveDate::from_ymd_opt(2026, 3, 2).expect("a date"),
            )),
            completed_at: (status == TodoStatus::Completed).then(|| at("2026-03-01T10:00:00Z")),
            percent: Some(30),
            priority: Priority::new(1),
            status,
            categories: Vec::new(),
        };
        let item = task_item(&t).expect("writable");
        assert_eq!(item.status, ews);
        assert_eq!(task("AAMkT", &item), t, "{status:?}");
    }
}

#[test]
fn what_ews_cannot_carry_is_filled_in() {
    let mut record = appointment_in_paris();
    record.status = EventStatus::Cancelled;
    record.attendees[0].role = AttendeeRole::NonParticipant;
    let item = ActItem::Appointment(record.clone());
    let ews = calendar_item(&record).expect("writable");
    let mut back =
        ActItem::Appointment(appointment("AAMk1", &ews, &HashMap::new()).expect("readable"));
    assert_ne!(back, item, "EWS loses the status and the role");
    fill_uncarried(&mut back, &item);
    assert_eq!(back, item);
}
