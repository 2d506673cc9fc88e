//! EWS items ⇄ the domain's ACT model, pure: calendar items (masters with their
//! pattern, modified and deleted occurrences), contacts and tasks, as
//! `act/graph.rs` maps Graph's events (the recurrence through the Graph
//! connector's `PatternedRecurrence`, which EWS's `Recurrence` shares).
//!
//! **Times**: EWS gives UTC instants and the meeting's Windows zone id; a zone
//! mailbridge knows (the Graph connector's Windows table, then chrono-tz) makes a
//! wall-clock time in its IANA zone, UTC an instant, an all-day item its date in
//! that zone. Writes send the instant and the Windows id of the IANA zone; an
//! all-day appointment is written from midnight UTC in the zone `UTC`.
//!
//! **Kept in `PublicStrings` properties**: the UID of a contact or task
//! ([`UID_PROPERTY`]; Exchange gives those none) and a contact's name prefix
//! ([`PREFIX_PROPERTY`]).
//!
//! **What EWS cannot carry** (filled in by [`fill_uncarried`] from the last
//! synced item or the item written, as on Graph): the kinds of a contact's
//! emails, phones and addresses beyond EWS's slots, `RDATE`s, an attendee's chair
//! or non-participant role, a cancelled status written by mailbridge
//! (`IsCancelled` is read-only: it is written as busy), a task's missing
//! priority (Exchange always has an importance).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use mailbridge_connectors::ews::{
    AddressKey, Attendee as EwsAttendee, CalendarItem, ContactItem, EmailAddress, EmailKey,
    Importance, PhoneKey, PhysicalAddress, TaskItem, TaskStatus,
};
use mailbridge_connectors::graph::act::recurrence::{self, PatternedRecurrence};
use mailbridge_connectors::graph::act::zones;
use mailbridge_domain::act::model::{
    ActItem, Appointment, Attendee, AttendeeRole, Contact, ContactEmail, ContactPhone, ContactUse,
    EventStatus, EventTime, Occurrence, ParticipationStatus, Person, PhoneKind, PostalAddress,
    Priority, Recurrence, StructuredName, Task, TimeZoneId, TodoStatus,
};
use mailbridge_domain::act::records::TimeZones as _;

use super::tz::{ChronoTz, zone};

/// The `PublicStrings` property holding the domain UID of a contact or task.
pub const UID_PROPERTY: &str = "MailbridgeUid";
/// The `PublicStrings` property holding a contact's name prefix (`Dr.`).
pub const PREFIX_PROPERTY: &str = "MailbridgeNamePrefix";

fn text(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn is_utc(tz: &TimeZoneId) -> bool {
    matches!(tz.as_str(), "UTC" | "GMT" | "Etc/UTC" | "Etc/GMT")
}

/// The IANA zone of a Windows zone id EWS gave, when there is one.
fn iana(windows: Option<&str>) -> Result<Option<TimeZoneId>, String> {
    let Some(name) = windows.filter(|n| !n.trim().is_empty()) else {
        return Ok(None);
    };
    let tz = zones::iana_zone(name).map_err(|e| e.to_string())?;
    if !is_utc(&tz) && zone(tz.as_str()).is_none() {
        return Err(format!("the time zone {name:?} is unknown to mailbridge"));
    }
    Ok(Some(tz))
}

/// The local date and time of an instant in `tz` (UTC without one).
fn local(at: DateTime<Utc>, tz: Option<&TimeZoneId>) -> chrono::NaiveDateTime {
    tz.filter(|t| !is_utc(t))
        .and_then(|t| ChronoTz.to_local(at, t))
        .unwrap_or_else(|| at.naive_utc())
}

/// An instant EWS gave as the domain's time, in the item's zone.
fn event_time(at: DateTime<Utc>, tz: Option<&TimeZoneId>, all_day: bool) -> EventTime {
    let wall = local(at, tz);
    if all_day {
        return EventTime::Date(wall.date());
    }
    match tz.filter(|t| !is_utc(t)) {
        Some(tz) => EventTime::Zoned {
            local: wall,
            tz: tz.clone(),
        },
        None => EventTime::Utc(at),
    }
}

/// The instant of a domain time (a date: midnight UTC).
pub fn instant(t: &EventTime) -> Result<DateTime<Utc>, String> {
    match t {
        EventTime::Utc(u) => Ok(*u),
        EventTime::Zoned { local, tz } => ChronoTz
            .to_utc(*local, tz)
            .ok_or_else(|| format!("{local} does not exist in the time zone {}", tz.as_str())),
        EventTime::Date(d) => Ok(d.and_time(NaiveTime::MIN).and_utc()),
    }
}

/// The Windows zone id EWS takes for the zone of `t`.
fn windows_zone(t: &EventTime) -> Result<String, String> {
    match t {
        EventTime::Zoned { tz, .. } if !is_utc(tz) => zones::windows_zone(tz.as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "Exchange names time zones by Windows id, and mailbridge knows none for {}",
                    tz.as_str()
                )
            }),
        _ => Ok("UTC".to_owned()),
    }
}

fn person(m: &EmailAddress) -> Option<Person> {
    let email = m.email.trim();
    (!email.is_empty()).then(|| Person {
        email: email.to_owned(),
        name: text(m.name.as_ref()),
    })
}

fn attendee(a: &EwsAttendee, role: AttendeeRole) -> Option<Attendee> {
    let status = match a.response.as_deref() {
        Some("Accept" | "Organizer") => ParticipationStatus::Accepted,
        Some("Decline") => ParticipationStatus::Declined,
        Some("Tentative") => ParticipationStatus::Tentative,
        _ => ParticipationStatus::NeedsAction,
    };
    Some(Attendee {
        person: person(&a.mailbox)?,
        role,
        status,
    })
}

fn attendees(item: &CalendarItem) -> Vec<Attendee> {
    let required = item
        .required_attendees
        .iter()
        .filter_map(|a| attendee(a, AttendeeRole::Required));
    let optional = item
        .optional_attendees
        .iter()
        .filter_map(|a| attendee(a, AttendeeRole::Optional));
    required.chain(optional).collect()
}

fn status(item: &CalendarItem) -> EventStatus {
    if item.is_cancelled {
        EventStatus::Cancelled
    } else if item.free_busy.as_deref() == Some("Tentative") {
        EventStatus::Tentative
    } else {
        EventStatus::Confirmed
    }
}

/// The date an instant of a series falls on in the series' zone.
fn local_date(at: DateTime<Utc>, tz: Option<&TimeZoneId>) -> NaiveDate {
    local(at, tz).date()
}

/// The date an instant of `item`'s series (an original start) falls on in the
/// series' zone.
pub fn series_date(item: &CalendarItem, at: DateTime<Utc>) -> NaiveDate {
    let tz = iana(item.start_time_zone.as_deref()).ok().flatten();
    local_date(at, tz.as_ref())
}

/// A calendar item (for a master, with its exception items by id) as an
/// appointment; `id` is its item id, the UID when it has none.
///
/// # Errors
/// An item the domain cannot hold, in words.
pub fn appointment(
    id: &str,
    item: &CalendarItem,
    exceptions: &HashMap<String, CalendarItem>,
) -> Result<Appointment, String> {
    let tz = iana(item.start_time_zone.as_deref())?;
    let tz = tz.as_ref();
    let start = event_time(item.start, tz, item.is_all_day);
    let mut recurrence_out = None;
    let mut occurrences = Vec::new();
    if let Some(pr) = &item.recurrence {
        let rrule = recurrence::to_rrule(pr, item.is_all_day).map_err(|e| e.to_string())?;
        let exdates = item
            .deleted_occurrences
            .iter()
            .map(|d| zones::on_date(&start, local_date(*d, tz)))
            .collect();
        for m in &item.modified_occurrences {
            let recurrence_id = zones::on_date(&start, local_date(m.original_start, tz));
            let own = exceptions.get(&m.id.id);
            let (s, e) = own.map_or((m.start, m.end), |x| (x.start, x.end));
            occurrences.push(Occurrence {
                recurrence_id,
                start: event_time(s, tz, item.is_all_day),
                end: event_time(e, tz, item.is_all_day),
                summary: own.map_or_else(|| item.subject.clone(), |x| x.subject.clone()),
                location: text(own.map_or(item.location.as_ref(), |x| x.location.as_ref())),
                description: text(own.map_or(item.body.as_ref(), |x| x.body.as_ref())),
                status: status(own.unwrap_or(item)),
                attendees: attendees(own.unwrap_or(item)),
            });
        }
        occurrences.sort_by(|a, b| a.recurrence_id.cmp(&b.recurrence_id));
        recurrence_out = Some(Recurrence {
            rrule: Some(rrule),
            exdates,
            rdates: Vec::new(),
        });
    }
    Ok(Appointment {
        uid: item
            .uid
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| id.to_owned()),
        summary: item.subject.clone(),
        organizer: item.organizer.as_ref().and_then(person),
        attendees: attendees(item),
        start,
        end: event_time(item.end, tz, item.is_all_day),
        location: text(item.location.as_ref()),
        description: text(item.body.as_ref()),
        status: status(item),
        categories: item.categories.clone(),
        recurrence: recurrence_out,
        exceptions: occurrences,
    })
}

fn ews_attendees(list: &[Attendee], optional: bool) -> Vec<EwsAttendee> {
    list.iter()
        .filter(|a| {
            matches!(
                a.role,
                AttendeeRole::Optional | AttendeeRole::NonParticipant
            ) == optional
        })
        .map(|a| EwsAttendee {
            mailbox: EmailAddress {
                name: a.person.name.clone(),
                email: a.person.email.clone(),
            },
            response: None,
        })
        .collect()
}

fn free_busy(s: EventStatus) -> &'static str {
    match s {
        EventStatus::Tentative => "Tentative",
        EventStatus::Confirmed | EventStatus::Cancelled => "Busy",
    }
}

/// The `Recurrence` of an appointment, when it repeats.
pub fn ews_recurrence(a: &Appointment) -> Result<Option<PatternedRecurrence>, String> {
    let Some(r) = &a.recurrence else {
        return Ok(None);
    };
    if !r.rdates.is_empty() {
        return Err("Exchange cannot add single dates (RDATE) to a series".to_owned());
    }
    let Some(rule) = &r.rrule else {
        return Ok(None);
    };
    recurrence::to_graph(rule, zones::local_date(&a.start), None)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// An appointment as the calendar item to create or write (the master only: its
/// exceptions and exclusions are written to the occurrences afterwards).
///
/// # Errors
/// What EWS cannot hold (an RDATE, a rule outside Outlook's patterns, a zone
/// without a Windows id), in words.
pub fn calendar_item(a: &Appointment) -> Result<CalendarItem, String> {
    let zone = windows_zone(&a.start)?;
    let mut item = CalendarItem::new(a.summary.clone(), instant(&a.start)?, instant(&a.end)?);
    item.uid = Some(a.uid.clone());
    item.body = a.description.clone();
    item.location = a.location.clone();
    item.categories = a.categories.clone();
    item.is_all_day = a.is_all_day();
    item.start_time_zone = Some(zone.clone());
    item.end_time_zone = Some(zone);
    item.free_busy = Some(free_busy(a.status).to_owned());
    item.required_attendees = ews_attendees(&a.attendees, false);
    item.optional_attendees = ews_attendees(&a.attendees, true);
    item.recurrence = ews_recurrence(a)?;
    Ok(item)
}

/// One exception of a series as the occurrence's calendar item.
///
/// # Errors
/// A time that does not exist in its zone.
pub fn occurrence_item(o: &Occurrence) -> Result<CalendarItem, String> {
    let mut item = CalendarItem::new(o.summary.clone(), instant(&o.start)?, instant(&o.end)?);
    item.body = o.description.clone();
    item.location = o.location.clone();
    item.is_all_day = o.start.is_all_day();
    item.free_busy = Some(free_busy(o.status).to_owned());
    item.required_attendees = ews_attendees(&o.attendees, false);
    item.optional_attendees = ews_attendees(&o.attendees, true);
    Ok(item)
}

/// The 1-based index of the occurrence of `pr` on `date` (`InstanceIndex`).
pub fn instance_index(pr: &PatternedRecurrence, date: NaiveDate) -> Option<u32> {
    recurrence::occurrence_dates(pr, date)
        .iter()
        .position(|d| *d == date)
        .and_then(|i| u32::try_from(i + 1).ok())
}

const PHONES: [(PhoneKey, PhoneKind); 10] = [
    (PhoneKey::BusinessPhone, PhoneKind::Work),
    (PhoneKey::BusinessPhone2, PhoneKind::Work),
    (PhoneKey::HomePhone, PhoneKind::Home),
    (PhoneKey::HomePhone2, PhoneKind::Home),
    (PhoneKey::MobilePhone, PhoneKind::Mobile),
    (PhoneKey::BusinessFax, PhoneKind::Fax),
    (PhoneKey::HomeFax, PhoneKind::Fax),
    (PhoneKey::OtherFax, PhoneKind::Fax),
    (PhoneKey::Pager, PhoneKind::Pager),
    (PhoneKey::OtherTelephone, PhoneKind::Other),
];

const ADDRESSES: [(AddressKey, ContactUse); 3] = [
    (AddressKey::Business, ContactUse::Work),
    (AddressKey::Home, ContactUse::Home),
    (AddressKey::Other, ContactUse::Other),
];

/// A contact as the domain's; `id` is its item id, the UID when it has none.
pub fn contact(id: &str, c: &ContactItem) -> Contact {
    let name = StructuredName {
        family: text(c.surname.as_ref()),
        given: text(c.given_name.as_ref()),
        additional: text(c.middle_name.as_ref()),
        prefix: text(c.properties.get(PREFIX_PROPERTY)),
        suffix: text(c.generation.as_ref()),
    };
    let formatted_name = text(c.display_name.as_ref())
        .or_else(|| {
            let parts: Vec<&str> = [&name.given, &name.family]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .or_else(|| text(c.file_as.as_ref()))
        .unwrap_or_default();
    Contact {
        uid: text(c.properties.get(UID_PROPERTY)).unwrap_or_else(|| id.to_owned()),
        formatted_name,
        name,
        emails: c
            .emails
            .iter()
            .filter(|(_, a)| !a.trim().is_empty())
            .enumerate()
            .map(|(i, (_, a))| ContactEmail {
                address: a.trim().to_owned(),
                kind: ContactUse::Other,
                preferred: i == 0,
            })
            .collect(),
        phones: PHONES
            .iter()
            .filter_map(|(key, kind)| {
                let number = text(c.phones.get(key))?;
                Some(ContactPhone {
                    number,
                    kind: *kind,
                })
            })
            .collect(),
        addresses: ADDRESSES
            .iter()
            .filter_map(|(key, kind)| {
                let a = c.addresses.iter().find(|a| a.key == *key)?;
                Some(PostalAddress {
                    kind: *kind,
                    street: text(a.street.as_ref()),
                    locality: text(a.city.as_ref()),
                    region: text(a.state.as_ref()),
                    postal_code: text(a.postal_code.as_ref()),
                    country: text(a.country.as_ref()),
                })
            })
            .collect(),
        organization: text(c.company_name.as_ref()),
        title: text(c.job_title.as_ref()),
        note: text(c.body.as_ref()),
        categories: c.categories.clone(),
    }
}

/// A domain contact as EWS's: the emails in EWS's three slots (preferred
/// first), the phones and addresses in the slots of their kind; what has no
/// slot left is not written.
pub fn contact_item(c: &Contact) -> ContactItem {
    let mut emails: Vec<&ContactEmail> = c.emails.iter().collect();
    emails.sort_by_key(|e| !e.preferred);
    let mut phones = BTreeMap::new();
    for p in &c.phones {
        if let Some((key, _)) = PHONES
            .iter()
            .find(|(key, kind)| *kind == p.kind && !phones.contains_key(key))
        {
            phones.insert(*key, p.number.clone());
        }
    }
    let mut addresses: Vec<PhysicalAddress> = Vec::new();
    for a in &c.addresses {
        let Some((key, _)) = ADDRESSES.iter().find(|(_, kind)| *kind == a.kind) else {
            continue;
        };
        if addresses.iter().any(|x| x.key == *key) {
            continue;
        }
        addresses.push(PhysicalAddress {
            key: *key,
            street: a.street.clone(),
            city: a.locality.clone(),
            state: a.region.clone(),
            country: a.country.clone(),
            postal_code: a.postal_code.clone(),
        });
    }
    let mut properties = BTreeMap::from([(UID_PROPERTY.to_owned(), c.uid.clone())]);
    if let Some(prefix) = &c.name.prefix {
        properties.insert(PREFIX_PROPERTY.to_owned(), prefix.clone());
    }
    ContactItem {
        display_name: Some(c.formatted_name.clone()),
        file_as: None,
        given_name: c.name.given.clone(),
        middle_name: c.name.additional.clone(),
        surname: c.name.family.clone(),
        generation: c.name.suffix.clone(),
        nickname: None,
        company_name: c.organization.clone(),
        job_title: c.title.clone(),
        department: None,
        emails: EmailKey::ALL
            .iter()
            .copied()
            .zip(emails.iter().map(|e| e.address.clone()))
            .collect(),
        phones,
        addresses,
        body: c.note.clone(),
        categories: c.categories.clone(),
        properties,
    }
}

/// A task date: a date at midnight UTC (how Exchange keeps them), else the
/// instant.
fn task_time(at: DateTime<Utc>) -> EventTime {
    if at.time() == NaiveTime::MIN {
        EventTime::Date(at.date_naive())
    } else {
        EventTime::Utc(at)
    }
}

/// A task as the domain's; `id` is its item id, the UID when it has none.
pub fn task(id: &str, t: &TaskItem) -> Task {
    let status = match t.status {
        TaskStatus::NotStarted => TodoStatus::NeedsAction,
        TaskStatus::InProgress | TaskStatus::WaitingOnOthers => TodoStatus::InProcess,
        TaskStatus::Completed => TodoStatus::Completed,
        TaskStatus::Deferred => TodoStatus::Cancelled,
    };
    let priority = match t.importance {
        Importance::High => Priority::new(1),
        Importance::Normal => Priority::new(5),
        Importance::Low => Priority::new(9),
    };
    Task {
        uid: text(t.properties.get(UID_PROPERTY)).unwrap_or_else(|| id.to_owned()),
        summary: t.subject.clone(),
        description: text(t.body.as_ref()),
        start: t.start_date.map(task_time),
        due: t.due_date.map(task_time),
        completed_at: t.complete_date.filter(|_| status == TodoStatus::Completed),
        percent: t.percent_complete,
        priority,
        status,
        categories: t.categories.clone(),
    }
}

/// A domain task as EWS's. A cancelled task is written `Deferred`, which reads
/// back as cancelled.
///
/// # Errors
/// A time that does not exist in its zone.
pub fn task_item(t: &Task) -> Result<TaskItem, String> {
    let status = match t.status {
        TodoStatus::NeedsAction => TaskStatus::NotStarted,
        TodoStatus::InProcess => TaskStatus::InProgress,
        TodoStatus::Completed => TaskStatus::Completed,
        TodoStatus::Cancelled => TaskStatus::Deferred,
    };
    let importance = match t.priority.map(Priority::get) {
        Some(1..=4) => Importance::High,
        Some(6..) => Importance::Low,
        _ => Importance::Normal,
    };
    let date = |d: Option<&EventTime>| d.map(instant).transpose();
    Ok(TaskItem {
        subject: t.summary.clone(),
        body: t.description.clone(),
        categories: t.categories.clone(),
        importance,
        start_date: date(t.start.as_ref())?,
        due_date: date(t.due.as_ref())?,
        complete_date: t.completed_at.filter(|_| status == TaskStatus::Completed),
        percent_complete: t.percent,
        status,
        properties: BTreeMap::from([(UID_PROPERTY.to_owned(), t.uid.clone())]),
    })
}

/// Fills in, on an item as Exchange holds it, what EWS cannot carry from `from`
/// (the item last synchronized, or the item just written); see the module docs.
pub fn fill_uncarried(server: &mut ActItem, from: &ActItem) {
    match (server, from) {
        (ActItem::Task(s), ActItem::Task(f)) => {
            // Exchange always has an importance: "normal" is no priority.
            if f.priority.is_none() && s.priority == Priority::new(5) {
                s.priority = None;
            }
            if s.percent.is_none() {
                s.percent = f.percent;
            }
        }
        (ActItem::Contact(s), ActItem::Contact(f)) => {
            for e in &mut s.emails {
                if let Some(k) = f
                    .emails
                    .iter()
                    .find(|k| k.address.eq_ignore_ascii_case(&e.address))
                {
                    e.kind = k.kind;
                    e.preferred = k.preferred;
                }
            }
            let written = contact(&f.uid, &contact_item(f));
            for p in &f.phones {
                if !written.phones.contains(p) && !s.phones.contains(p) {
                    s.phones.push(p.clone());
                }
            }
            for a in &f.addresses {
                if !written.addresses.contains(a) && !s.addresses.contains(a) {
                    s.addresses.push(a.clone());
                }
            }
            for e in f.emails.iter().skip(EmailKey::ALL.len()) {
                if !s.emails.contains(e) {
                    s.emails.push(e.clone());
                }
            }
        }
        (ActItem::Appointment(s), ActItem::Appointment(f)) => {
            if f.status == EventStatus::Cancelled && s.status == EventStatus::Confirmed {
                s.status = EventStatus::Cancelled;
            }
            for a in &mut s.attendees {
                if let Some(k) = f
                    .attendees
                    .iter()
                    .find(|k| k.person.email.eq_ignore_ascii_case(&a.person.email))
                {
                    let carried = match a.role {
                        AttendeeRole::Required => k.role == AttendeeRole::Chair,
                        AttendeeRole::Optional => k.role == AttendeeRole::NonParticipant,
                        _ => false,
                    };
                    if carried {
                        a.role = k.role;
                    }
                }
            }
            if let (Some(sr), Some(fr)) = (&mut s.recurrence, &f.recurrence)
                && sr.rdates.is_empty()
            {
                sr.rdates = fr.rdates.clone();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
