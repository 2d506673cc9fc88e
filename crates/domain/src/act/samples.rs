//! Items the ACT tests start from: one of each kind, as a store would send them.

use chrono::{NaiveDate, TimeZone, Utc};

use super::model::*;

pub fn paris(y: i32, m: u32, d: u32, h: u32, min: u32) -> EventTime {
    let local = NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|day| day.and_hms_opt(h, min, 0))
        .expect("a valid sample time");
    EventTime::Zoned {
        local,
        tz: TimeZoneId::new("Europe/Paris").expect("a valid zone"),
    }
}

pub fn attendee(email: &str, status: ParticipationStatus) -> Attendee {
    Attendee {
        person: Person {
            email: email.to_owned(),
            name: None,
        },
        role: AttendeeRole::Required,
        status,
    }
}

/// A weekly meeting organized by Ana, with one moved occurrence.
pub fn meeting() -> Appointment {
    Appointment {
        uid: "3f1c@crm.example.org".into(),
        summary: "Quarterly review".into(),
        organizer: Some(Person {
            email: "ana@contoso.com".into(),
            name: Some("Ana Silva".into()),
        }),
        attendees: vec![
            attendee("bo@fabrikam.com", ParticipationStatus::Accepted),
            attendee("cy@contoso.com", ParticipationStatus::NeedsAction),
        ],
        start: paris(2026, 3, 2, 10, 0),
        end: paris(2026, 3, 2, 11, 0),
        location: Some("Room 4".into()),
        description: Some("Agenda:\n- numbers\n- plans".into()),
        status: EventStatus::Confirmed,
        categories: vec!["Customer".into()],
        recurrence: Some(Recurrence {
            rrule: Some("FREQ=WEEKLY;BYDAY=MO;COUNT=10".into()),
            exdates: vec![paris(2026, 3, 16, 10, 0)],
            rdates: vec![],
        }),
        exceptions: vec![Occurrence {
            recurrence_id: paris(2026, 3, 9, 10, 0),
            start: paris(2026, 3, 9, 14, 0),
            end: paris(2026, 3, 9, 15, 0),
            summary: "Quarterly review (moved)".into(),
            location: Some("Room 4".into()),
            description: None,
            status: EventStatus::Confirmed,
            attendees: vec![],
        }],
    }
}

pub fn task() -> Task {
    Task {
        uid: "task-7@crm.example.org".into(),
        summary: "Send the quote".into(),
        description: Some("Include the discount".into()),
        start: Some(EventTime::Date(
            NaiveDate::from_ymd_opt(2026, 3, 2).expect("a valid date"),
        )),
        due: Some(paris(2026, 3, 6, 17, 0)),
        completed_at: None,
        percent: Some(20),
        priority: Priority::new(5),
        status: TodoStatus::InProcess,
        categories: vec![],
    }
}

pub fn contact() -> Contact {
    Contact {
        uid: "contact-9@crm.example.org".into(),
        formatted_name: "Bo Lindqvist".into(),
        name: StructuredName {
            family: Some("Lindqvist".into()),
            given: Some("Bo".into()),
            ..StructuredName::default()
        },
        emails: vec![ContactEmail {
            address: "bo@fabrikam.com".into(),
            kind: ContactUse::Work,
            preferred: true,
        }],
        phones: vec![ContactPhone {
            number: "+46 8 123 45 67".into(),
            kind: PhoneKind::Work,
        }],
        addresses: vec![PostalAddress {
            kind: ContactUse::Work,
            street: Some("Drottninggatan 1".into()),
            locality: Some("Stockholm".into()),
            region: None,
            postal_code: Some("111 51".into()),
            country: Some("Sweden".into()),
        }],
        organization: Some("Fabrikam".into()),
        title: Some("Buyer".into()),
        note: None,
        categories: vec![],
    }
}

pub fn completed_at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 5, 16, 30, 0)
        .single()
        .expect("a valid instant")
}
