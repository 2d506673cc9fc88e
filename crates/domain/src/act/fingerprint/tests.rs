use super::*;
use crate::act::model::*;
use crate::act::samples::{attendee, contact, meeting, paris, task};

fn fp_a(a: Appointment) -> Fingerprint {
    fingerprint(&ActItem::Appointment(a))
}

/// A named edit of the sample meeting.
type Edit = fn(&mut Appointment);

#[test]
fn a_re_serialization_that_changes_nothing_is_not_a_change() {
    let base = fp_a(meeting());
    let cases: Vec<(&str, Edit)> = vec![
        ("attendees in another order", |a| a.attendees.reverse()),
        ("an attendee twice", |a| {
            let again = a.attendees[0].clone();
            a.attendees.push(again)
        }),
        ("mailto: and upper case addresses", |a| {
            for x in &mut a.attendees {
                x.person.email = format!("MAILTO:{}", x.person.email.to_uppercase());
            }
        }),
        ("white space in the summary", |a| {
            a.summary = "  Quarterly   review ".into()
        }),
        ("CRLF line ends and trailing blanks", |a| {
            a.description = Some("Agenda:  \r\n- numbers\r\n- plans\r\n\r\n".into())
        }),
        ("RRULE parts reordered, lower case, prefixed", |a| {
            if let Some(r) = &mut a.recurrence {
                r.rrule = Some("RRULE:count=10;BYDAY=MO;FREQ=WEEKLY".into());
            }
        }),
        ("an EXDATE repeated", |a| {
            if let Some(r) = &mut a.recurrence {
                r.exdates.push(paris(2026, 3, 16, 10, 0));
            }
        }),
        ("categories in other case", |a| {
            a.categories = vec![" customer".into(), "CUSTOMER".into()]
        }),
        ("a trailing blank in the location", |a| {
            a.location = Some("Room 4 ".into())
        }),
        ("another UID", |a| a.uid = "other@example.org".into()),
    ];
    for (what, edit) in cases {
        let mut a = meeting();
        edit(&mut a);
        assert_eq!(fp_a(a), base, "{what}");
    }
}

#[test]
fn a_change_of_content_is_a_change() {
    let base = fp_a(meeting());
    let cases: Vec<(&str, Edit)> = vec![
        ("new start", |a| a.start = paris(2026, 3, 2, 10, 30)),
        ("summary", |a| a.summary = "Annual review".into()),
        ("an attendee answers", |a| {
            a.attendees[1].status = ParticipationStatus::Accepted
        }),
        ("an attendee more", |a| {
            a.attendees
                .push(attendee("di@contoso.com", ParticipationStatus::NeedsAction))
        }),
        ("cancelled", |a| a.status = EventStatus::Cancelled),
        ("the rule", |a| {
            if let Some(r) = &mut a.recurrence {
                r.rrule = Some("FREQ=WEEKLY;BYDAY=TU;COUNT=10".into());
            }
        }),
        ("an exception removed", |a| a.exceptions.clear()),
        ("same wall clock, other zone", |a| {
            if let EventTime::Zoned { local, .. } = a.start {
                a.start = EventTime::Zoned {
                    local,
                    tz: TimeZoneId::new("Europe/Berlin").expect("valid"),
                };
            }
        }),
        ("location cleared", |a| a.location = Some("  ".into())),
    ];
    for (what, edit) in cases {
        let mut a = meeting();
        edit(&mut a);
        assert_ne!(fp_a(a), base, "{what}");
    }
}

#[test]
fn tasks_and_contacts_normalize_too() {
    let mut t = task();
    t.summary = " Send  the quote".into();
    assert_eq!(
        fingerprint(&ActItem::Task(t)),
        fingerprint(&ActItem::Task(task()))
    );
    let mut t = task();
    t.status = TodoStatus::Completed;
    assert_ne!(
        fingerprint(&ActItem::Task(t)),
        fingerprint(&ActItem::Task(task()))
    );

    let mut c = contact();
    c.phones[0].number = "+46 (8) 123-45-67".into();
    c.emails[0].address = " Bo@Fabrikam.com".into();
    assert_eq!(
        fingerprint(&ActItem::Contact(c)),
        fingerprint(&ActItem::Contact(contact()))
    );
    let mut c = contact();
    c.title = Some("Head buyer".into());
    assert_ne!(
        fingerprint(&ActItem::Contact(c)),
        fingerprint(&ActItem::Contact(contact()))
    );
}

#[test]
fn fingerprints_are_versioned_hex() {
    let f = fp_a(meeting());
    assert!(f.as_str().starts_with("1:"));
    assert_eq!(f.as_str().len(), 2 + 64);
    assert!(f.as_str()[2..].chars().all(|c| c.is_ascii_hexdigit()));
}
