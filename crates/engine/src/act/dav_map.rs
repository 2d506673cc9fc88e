//! CalDAV/CardDAV data ⇄ the sync model: a calendar object resource becomes an
//! appointment (the master `VEVENT` with its exceptions) or a task (`VTODO`), a
//! vCard a contact; and back.
//!
//! What the connector's values cannot carry is not sent and is kept from the
//! record when a server item is written to it ([`keep_unmapped`]): an attendee's
//! role, `RDATE`s, a contact's postal addresses and categories. Floating times (no
//! zone) are read as UTC. A `TZID` is read when it is an IANA id chrono-tz knows,
//! also at the end of a path such as `/mozilla.org/20050126_1/Europe/Berlin`;
//! another zone makes the item unreadable (its error is recorded, nothing guessed).
//! Items mailbridge writes name their zone by `TZID` without a `VTIMEZONE` unless
//! the server's copy had one (FIXME: generate a `VTIMEZONE` from chrono-tz; the
//! servers tested resolve IANA ids without it).

use chrono::{DateTime, Duration, NaiveDateTime, Timelike as _, Utc};
use mailbridge_connectors::dav::{self, CalDateTime, CalendarResource, CardVersion, Typed};
use mailbridge_domain::act::model::{
    ActItem, ActKind, Appointment, Attendee, Contact, ContactEmail, ContactPhone, ContactUse,
    EventStatus, EventTime, Occurrence, ParticipationStatus, Person, PhoneKind, Priority,
    Recurrence, StructuredName, Task, TimeZoneId, TodoStatus,
};
use mailbridge_domain::act::records::TimeZones;

use super::tz::{ChronoTz, zone};

/// Why a server item cannot be read into the model.
pub type MapError = String;

/// The item of `kind` a calendar resource holds; `None` when it holds another kind
/// (a task in a calendar read for appointments).
pub fn item_from_resource(
    kind: ActKind,
    res: &CalendarResource,
) -> Result<Option<ActItem>, MapError> {
    match kind {
        ActKind::Appointment if !res.events.is_empty() => {
            Ok(Some(ActItem::Appointment(appointment_from(res)?)))
        }
        ActKind::Task if !res.tasks.is_empty() => Ok(Some(ActItem::Task(task_from(res)?))),
        _ => Ok(None),
    }
}

/// A contact from a vCard; `fallback_uid` (from the item's href) when it has none.
pub fn contact_from_card(card: &dav::Contact, fallback_uid: &str) -> Contact {
    let has = |t: &Typed, name: &str| t.types.iter().any(|x| x == name);
    let email_use = |t: &Typed| {
        if has(t, "work") {
            ContactUse::Work
        } else if has(t, "home") {
            ContactUse::Home
        } else {
            ContactUse::Other
        }
    };
    let phone_kind = |t: &Typed| {
        if has(t, "cell") || has(t, "mobile") {
            PhoneKind::Mobile
        } else if has(t, "fax") {
            PhoneKind::Fax
        } else if has(t, "pager") {
            PhoneKind::Pager
        } else if has(t, "work") {
            PhoneKind::Work
        } else if has(t, "home") {
            PhoneKind::Home
        } else {
            PhoneKind::Other
        }
    };
    let names: Vec<&str> = [&card.given_name, &card.family_name]
        .into_iter()
        .filter_map(|n| n.as_deref())
        .collect();
    Contact {
        uid: card.uid.clone().unwrap_or_else(|| fallback_uid.to_owned()),
        formatted_name: card
            .formatted_name
            .clone()
            .unwrap_or_else(|| names.join(" ")),
        name: StructuredName {
            family: card.family_name.clone(),
            given: card.given_name.clone(),
            ..StructuredName::default()
        },
        emails: card
            .emails
            .iter()
            .map(|t| ContactEmail {
                address: t.value.trim_start_matches("mailto:").to_owned(),
                kind: email_use(t),
                preferred: has(t, "pref"),
            })
            .collect(),
        phones: card
            .phones
            .iter()
            .map(|t| ContactPhone {
                number: t.value.trim_start_matches("tel:").to_owned(),
                kind: phone_kind(t),
            })
            .collect(),
        addresses: Vec::new(),
        organization: card.organization.clone(),
        title: card.title.clone(),
        note: card.note.clone(),
        categories: Vec::new(),
    }
}

/// A vCard for a contact, in the version of the server's copy when there is one.
pub fn card_from_contact(c: &Contact, previous: Option<&dav::Contact>) -> dav::Contact {
    let email_types = |e: &ContactEmail| {
        let mut types: Vec<String> = match e.kind {
            ContactUse::Work => vec!["work".into()],
            ContactUse::Home => vec!["home".into()],
            ContactUse::Other => vec![],
        };
        if e.preferred {
            types.push("pref".into());
        }
        types
    };
    let phone_type = |p: &ContactPhone| match p.kind {
        PhoneKind::Work => Some("work"),
        PhoneKind::Home => Some("home"),
        PhoneKind::Mobile => Some("cell"),
        PhoneKind::Fax => Some("fax"),
        PhoneKind::Pager => Some("pager"),
        PhoneKind::Other => None,
    };
    dav::Contact {
        version: previous.map_or(CardVersion::V4, |p| p.version),
        uid: Some(c.uid.clone()),
        formatted_name: Some(c.formatted_name.clone()),
        family_name: c.name.family.clone(),
        given_name: c.name.given.clone(),
        emails: c
            .emails
            .iter()
            .map(|e| Typed {
                value: e.address.clone(),
                types: email_types(e),
            })
            .collect(),
        phones: c
            .phones
            .iter()
            .map(|p| Typed {
                value: p.number.clone(),
                types: phone_type(p).into_iter().map(str::to_owned).collect(),
            })
            .collect(),
        organization: c.organization.clone(),
        title: c.title.clone(),
        note: c.note.clone(),
    }
}

/// A calendar resource for an appointment or a task. The server's copy, when
/// given, lends its `VTIMEZONE`s, `DTSTAMP` and `SEQUENCE` (one more, as a changed
/// event must say, RFC 5546 section 2.1.4).
pub fn resource_from_item(
    item: &ActItem,
    previous: Option<&CalendarResource>,
) -> Option<CalendarResource> {
    let timezones = previous.map(|p| p.timezones.clone()).unwrap_or_default();
    match item {
        ActItem::Appointment(a) => {
            let sequence = previous
                .and_then(|p| p.events.first())
                .and_then(|e| e.sequence)
                .map(|s| s + 1);
            Some(CalendarResource {
                events: events_of(a, sequence),
                tasks: Vec::new(),
                timezones,
            })
        }
        ActItem::Task(t) => {
            let sequence = previous
                .and_then(|p| p.tasks.first())
                .and_then(|t| t.sequence)
                .map(|s| s + 1);
            Some(CalendarResource {
                events: Vec::new(),
                tasks: vec![todo_of(t, sequence)],
                timezones,
            })
        }
        ActItem::Contact(_) => None,
    }
}

/// Whether the user tracked the item by category (`Tracked` or
/// `$MailbridgeTracked`, as email's keywords).
pub fn tracked_by_category(item: &ActItem) -> bool {
    let categories = match item {
        ActItem::Appointment(a) => &a.categories,
        ActItem::Task(t) => &t.categories,
        ActItem::Contact(c) => &c.categories,
    };
    categories.iter().any(|c| {
        crate::pipeline::TRACKING_KEYWORDS
            .iter()
            .any(|t| t.eq_ignore_ascii_case(c.trim()))
    })
}

/// Fills in, on an item read from the server, what DAV cannot carry from the
/// record's item (see the module's notes), so that writing it to the record loses
/// nothing the server never had.
pub fn keep_unmapped(server: &mut ActItem, record: &ActItem) {
    match (server, record) {
        (ActItem::Appointment(s), ActItem::Appointment(r)) => {
            for a in &mut s.attendees {
                if let Some(known) = r
                    .attendees
                    .iter()
                    .find(|k| k.person.email.eq_ignore_ascii_case(&a.person.email))
                {
                    a.role = known.role;
                }
            }
            if let (Some(sr), Some(rr)) = (&mut s.recurrence, &r.recurrence) {
                sr.rdates = rr.rdates.clone();
            }
        }
        (ActItem::Contact(s), ActItem::Contact(r)) => {
            s.addresses = r.addresses.clone();
            s.categories = r.categories.clone();
        }
        _ => {}
    }
}

/// What the server gives back for an item mailbridge writes: the item through the
/// DAV mapping and back, for the fingerprint its server side will have.
pub fn read_back(item: &ActItem) -> ActItem {
    match item {
        ActItem::Contact(c) => {
            let card = card_from_contact(c, None);
            ActItem::Contact(contact_from_card(&card, &c.uid))
        }
        _ => resource_from_item(item, None)
            .and_then(|r| item_from_resource(item.kind(), &r).ok().flatten())
            .unwrap_or_else(|| item.clone()),
    }
}

fn appointment_from(res: &CalendarResource) -> Result<Appointment, MapError> {
    let master = res
        .events
        .iter()
        .find(|e| e.recurrence_id.is_none())
        .or_else(|| res.events.first())
        .ok_or("the calendar data holds no VEVENT")?;
    let start = time("DTSTART", master.start.as_ref())?;
    let end = end_of(master, &start)?;
    let length = length_of(&start, &end);
    let exdates = master
        .exdates
        .iter()
        .map(|d| time("EXDATE", Some(d)))
        .collect::<Result<Vec<_>, _>>()?;
    let recurrence = (master.rrule.is_some() || !exdates.is_empty()).then(|| Recurrence {
        rrule: master.rrule.clone(),
        exdates,
        rdates: Vec::new(),
    });
    let mut exceptions = Vec::new();
    for e in res.events.iter().filter(|e| e.recurrence_id.is_some()) {
        if std::ptr::eq(e, master) {
            continue;
        }
        let recurrence_id = time("RECURRENCE-ID", e.recurrence_id.as_ref())?;
        let start = match &e.start {
            Some(_) => time("DTSTART", e.start.as_ref())?,
            None => recurrence_id.clone(),
        };
        let end = match (&e.end, &e.duration) {
            (None, None) => shift(&start, length),
            _ => end_of(e, &start)?,
        };
        exceptions.push(Occurrence {
            recurrence_id,
            start,
            end,
            summary: e
                .summary
                .clone()
                .or_else(|| master.summary.clone())
                .unwrap_or_default(),
            location: e.location.clone(),
            description: e.description.clone(),
            status: event_status(e.status.as_deref()),
            attendees: e.attendees.iter().map(attendee_from).collect(),
        });
    }
    Ok(Appointment {
        uid: master.uid.clone(),
        summary: master.summary.clone().unwrap_or_default(),
        organizer: master.organizer.as_ref().map(|o| Person {
            email: address(&o.address),
            name: o.name.clone(),
        }),
        attendees: master.attendees.iter().map(attendee_from).collect(),
        start,
        end,
        location: master.location.clone(),
        description: master.description.clone(),
        status: event_status(master.status.as_deref()),
        categories: master.categories.clone(),
        recurrence,
        exceptions,
    })
}

fn events_of(a: &Appointment, sequence: Option<i64>) -> Vec<dav::Event> {
    let organizer = a.organizer.as_ref().map(|p| dav::Attendee {
        address: format!("mailto:{}", p.email),
        name: p.name.clone(),
        status: None,
    });
    let master = dav::Event {
        uid: a.uid.clone(),
        recurrence_id: None,
        summary: Some(a.summary.clone()).filter(|s| !s.is_empty()),
        description: a.description.clone(),
        location: a.location.clone(),
        start: Some(cal_time(&a.start)),
        end: Some(cal_time(&a.end)),
        duration: None,
        rrule: a.recurrence.as_ref().and_then(|r| r.rrule.clone()),
        exdates: a
            .recurrence
            .iter()
            .flat_map(|r| r.exdates.iter().map(cal_time))
            .collect(),
        status: status_text(a.status),
        sequence,
        organizer: organizer.clone(),
        attendees: a.attendees.iter().map(attendee_to).collect(),
        categories: a.categories.clone(),
        dtstamp: None,
    };
    let mut events = vec![master];
    for o in &a.exceptions {
        events.push(dav::Event {
            uid: a.uid.clone(),
            recurrence_id: Some(cal_time(&o.recurrence_id)),
            summary: Some(o.summary.clone()).filter(|s| !s.is_empty()),
            description: o.description.clone(),
            location: o.location.clone(),
            start: Some(cal_time(&o.start)),
            end: Some(cal_time(&o.end)),
            status: status_text(o.status),
            sequence,
            organizer: organizer.clone(),
            attendees: o.attendees.iter().map(attendee_to).collect(),
            ..dav::Event::default()
        });
    }
    events
}

fn task_from(res: &CalendarResource) -> Result<Task, MapError> {
    let t = res
        .tasks
        .iter()
        .find(|t| t.recurrence_id.is_none())
        .or_else(|| res.tasks.first())
        .ok_or("the calendar data holds no VTODO")?;
    let completed_at = match &t.completed {
        Some(c) => Some(instant("COMPLETED", c)?),
        None => None,
    };
    let status = match t.status.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("IN-PROCESS") => TodoStatus::InProcess,
        Some("COMPLETED") => TodoStatus::Completed,
        Some("CANCELLED") => TodoStatus::Cancelled,
        Some(_) => TodoStatus::NeedsAction,
        None if completed_at.is_some() => TodoStatus::Completed,
        None => TodoStatus::NeedsAction,
    };
    Ok(Task {
        uid: t.uid.clone(),
        summary: t.summary.clone().unwrap_or_default(),
        description: t.description.clone(),
        start: t
            .start
            .as_ref()
            .map(|s| time("DTSTART", Some(s)))
            .transpose()?,
        due: t.due.as_ref().map(|d| time("DUE", Some(d))).transpose()?,
        completed_at,
        percent: t
            .percent_complete
            .and_then(|p| u8::try_from(p.clamp(0, 100)).ok()),
        priority: t
            .priority
            .and_then(|p| u8::try_from(p).ok())
            .and_then(Priority::new),
        status,
        categories: t.categories.clone(),
    })
}

fn todo_of(t: &Task, sequence: Option<i64>) -> dav::Task {
    dav::Task {
        uid: t.uid.clone(),
        recurrence_id: None,
        summary: Some(t.summary.clone()).filter(|s| !s.is_empty()),
        description: t.description.clone(),
        start: t.start.as_ref().map(cal_time),
        due: t.due.as_ref().map(cal_time),
        completed: t
            .completed_at
            .map(|c| CalDateTime::Utc(whole_seconds(c.naive_utc()))),
        status: Some(
            match t.status {
                TodoStatus::NeedsAction => "NEEDS-ACTION",
                TodoStatus::InProcess => "IN-PROCESS",
                TodoStatus::Completed => "COMPLETED",
                TodoStatus::Cancelled => "CANCELLED",
            }
            .to_owned(),
        ),
        priority: t.priority.map(|p| i64::from(p.get())),
        percent_complete: t.percent.map(i64::from),
        rrule: None,
        sequence,
        categories: t.categories.clone(),
        dtstamp: None,
    }
}

fn event_status(text: Option<&str>) -> EventStatus {
    match text.map(str::to_ascii_uppercase).as_deref() {
        Some("TENTATIVE") => EventStatus::Tentative,
        Some("CANCELLED") => EventStatus::Cancelled,
        _ => EventStatus::Confirmed,
    }
}

/// `STATUS` is written only when it says more than the default (confirmed).
fn status_text(s: EventStatus) -> Option<String> {
    match s {
        EventStatus::Confirmed => None,
        EventStatus::Tentative => Some("TENTATIVE".to_owned()),
        EventStatus::Cancelled => Some("CANCELLED".to_owned()),
    }
}

fn address(calendar_address: &str) -> String {
    let a = calendar_address.trim();
    match a.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => a[7..].to_owned(),
        _ => a.to_owned(),
    }
}

fn attendee_from(a: &dav::Attendee) -> Attendee {
    Attendee {
        person: Person {
            email: address(&a.address),
            name: a.name.clone(),
        },
        role: Default::default(),
        status: match a.status.as_deref() {
            Some("ACCEPTED") => ParticipationStatus::Accepted,
            Some("DECLINED") => ParticipationStatus::Declined,
            Some("TENTATIVE") => ParticipationStatus::Tentative,
            Some("DELEGATED") => ParticipationStatus::Delegated,
            _ => ParticipationStatus::NeedsAction,
        },
    }
}

fn attendee_to(a: &Attendee) -> dav::Attendee {
    dav::Attendee {
        address: format!("mailto:{}", a.person.email),
        name: a.person.name.clone(),
        status: Some(
            match a.status {
                ParticipationStatus::NeedsAction => "NEEDS-ACTION",
                ParticipationStatus::Accepted => "ACCEPTED",
                ParticipationStatus::Declined => "DECLINED",
                ParticipationStatus::Tentative => "TENTATIVE",
                ParticipationStatus::Delegated => "DELEGATED",
            }
            .to_owned(),
        ),
    }
}

/// The IANA id a `TZID` names, if chrono-tz knows it: the id itself, or its last
/// `Area/Location` at the end of a path-like id.
fn iana(tzid: &str) -> Option<TimeZoneId> {
    let tzid = tzid.trim();
    let mut candidates = vec![tzid.to_owned()];
    let parts: Vec<&str> = tzid.split('/').filter(|p| !p.is_empty()).collect();
    for n in [3, 2] {
        if parts.len() > n {
            candidates.push(parts[parts.len() - n..].join("/"));
        }
    }
    candidates
        .iter()
        .find(|c| zone(c).is_some())
        .and_then(|c| TimeZoneId::new(c).ok())
}

fn time(field: &str, value: Option<&CalDateTime>) -> Result<EventTime, MapError> {
    Ok(match value.ok_or_else(|| format!("{field} is missing"))? {
        CalDateTime::Date(d) => EventTime::Date(*d),
        CalDateTime::Utc(t) | CalDateTime::Floating(t) => EventTime::Utc(t.and_utc()),
        CalDateTime::Zoned { local, tzid } => match iana(tzid) {
            Some(tz) => EventTime::Zoned { local: *local, tz },
            None => {
                return Err(format!(
                    "{field}: the time zone {tzid:?} is not an IANA time zone mailbridge knows"
                ));
            }
        },
    })
}

fn instant(field: &str, value: &CalDateTime) -> Result<DateTime<Utc>, MapError> {
    match time(field, Some(value))? {
        EventTime::Utc(t) => Ok(t),
        EventTime::Date(d) => Ok(d.and_time(chrono::NaiveTime::MIN).and_utc()),
        EventTime::Zoned { local, tz } => ChronoTz
            .to_utc(local, &tz)
            .ok_or_else(|| format!("{field}: {local} does not exist in {}", tz.as_str())),
    }
}

fn whole_seconds(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap_or(t)
}

fn cal_time(t: &EventTime) -> CalDateTime {
    match t {
        EventTime::Date(d) => CalDateTime::Date(*d),
        EventTime::Utc(t) => CalDateTime::Utc(whole_seconds(t.naive_utc())),
        EventTime::Zoned { local, tz } => CalDateTime::Zoned {
            local: whole_seconds(*local),
            tzid: tz.as_str().to_owned(),
        },
    }
}

/// The end of an event: `DTEND`, else `DTSTART` plus `DURATION`, else (RFC 5545
/// section 3.6.1) the next day for an all-day event and the start itself otherwise.
fn end_of(e: &dav::Event, start: &EventTime) -> Result<EventTime, MapError> {
    if e.end.is_some() {
        return time("DTEND", e.end.as_ref());
    }
    if let Some(d) = &e.duration {
        let length = parse_duration(d).ok_or_else(|| format!("DURATION {d:?} is not valid"))?;
        return Ok(shift(start, length));
    }
    Ok(match start {
        EventTime::Date(_) => shift(start, Duration::days(1)),
        _ => start.clone(),
    })
}

/// How long an event lasts, in the start's own terms (days for all-day events).
fn length_of(start: &EventTime, end: &EventTime) -> Duration {
    match (start, end) {
        (EventTime::Date(a), EventTime::Date(b)) => *b - *a,
        (EventTime::Utc(a), EventTime::Utc(b)) => *b - *a,
        (EventTime::Zoned { local: a, .. }, EventTime::Zoned { local: b, .. }) => *b - *a,
        _ => Duration::zero(),
    }
}

fn shift(t: &EventTime, by: Duration) -> EventTime {
    match t {
        EventTime::Date(d) => EventTime::Date(*d + Duration::days(by.num_days())),
        EventTime::Utc(at) => EventTime::Utc(*at + by),
        EventTime::Zoned { local, tz } => EventTime::Zoned {
            local: *local + by,
            tz: tz.clone(),
        },
    }
}

/// An RFC 5545 `DURATION` value (section 3.3.6): `[+-]P[nW][nD][T[nH][nM][nS]]`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let rest = rest.strip_prefix('P')?;
    let mut total = Duration::zero();
    let mut number = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' if number.is_empty() => in_time = true,
            unit => {
                let n: i64 = number.parse().ok()?;
                number.clear();
                any = true;
                total += match (unit, in_time) {
                    ('W', false) => Duration::weeks(n),
                    ('D', false) => Duration::days(n),
                    ('H', true) => Duration::hours(n),
                    ('M', true) => Duration::minutes(n),
                    ('S', true) => Duration::seconds(n),
                    _ => return None,
                };
            }
        }
    }
    (any && number.is_empty()).then_some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests;
