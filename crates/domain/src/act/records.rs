//! The store's records ⇄ the sync model's items: an appointment, task or contact as
//! the REST API shows it becomes an [`ActItem`] before it is fingerprinted, planned or
//! sent, and a server's item is written back onto a record field by field.
//!
//! Record-only fields (id, owner, regarding record, version) are never touched by an
//! item. Local times need a time zone database, which the domain does not carry: the
//! caller passes one as [`TimeZones`].
//!
//! What a record cannot hold is dropped on the way in, so a server item may come back
//! slightly different from what the server sent: a tentative appointment comes back
//! confirmed, a task's start and due come back as instants (an all-day due date as
//! midnight UTC), a contact's first email and phone come back as `work`, and the
//! additional names, prefix and suffix of the vCard `N` are not kept. The planner
//! compares each side with its own last fingerprint, so this never looks like a change.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::filters::RecordFacts;
use super::model::{
    ActItem, ActKind, Appointment as Event, Contact, ContactEmail, ContactPhone, ContactUse,
    EventStatus, EventTime, Person, PhoneKind, Priority, StructuredName, Task as Todo, TimeZoneId,
    TodoStatus,
};
use crate::activity::{Appointment, Task};
use crate::party::PartyRecord;
use crate::{AppointmentStatus, TaskPriority, TaskStatus};

/// A time zone database: wall-clock times in IANA zones ⇄ instants.
pub trait TimeZones {
    /// The instant a wall-clock time names in `tz`: in a fold (the hour repeated when
    /// clocks go back) the earlier one; `None` for an unknown zone or a time that does
    /// not exist (the hour skipped when clocks go forward).
    fn to_utc(&self, local: NaiveDateTime, tz: &TimeZoneId) -> Option<DateTime<Utc>>;
    /// The wall-clock time in `tz` at an instant; `None` for an unknown zone.
    fn to_local(&self, at: DateTime<Utc>, tz: &TimeZoneId) -> Option<NaiveDateTime>;
}

/// A database that knows only `UTC` and `GMT`, for callers without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct UtcOnly;

impl TimeZones for UtcOnly {
    fn to_utc(&self, local: NaiveDateTime, tz: &TimeZoneId) -> Option<DateTime<Utc>> {
        matches!(tz.as_str(), "UTC" | "GMT").then(|| local.and_utc())
    }

    fn to_local(&self, at: DateTime<Utc>, tz: &TimeZoneId) -> Option<NaiveDateTime> {
        matches!(tz.as_str(), "UTC" | "GMT").then(|| at.naive_utc())
    }
}

/// A record or item that cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The zone is not an IANA id, or the time zone database does not know it.
    #[error("{field}: the time zone {tz:?} is not known; use an IANA id such as Europe/Paris")]
    UnknownTimeZone { field: &'static str, tz: String },
    /// A wall-clock time the database cannot place: an unknown zone, or a time
    /// skipped by a daylight-saving change.
    #[error(
        "{field}: {local} cannot be placed in {tz}: the zone is unknown or clocks skip that time"
    )]
    NoSuchLocalTime {
        field: &'static str,
        local: NaiveDateTime,
        tz: String,
    },
    /// An item of one kind was applied to a record of another.
    #[error("a {} item cannot be written to a {} record", item.as_str(), record.as_str())]
    KindMismatch { item: ActKind, record: ActKind },
}

/// The UID mailbridge gives a record that has none yet (the record id is a UUID,
/// unique everywhere): stored in `ical_uid` when the record is first linked.
pub fn record_uid(record_id: &str) -> String {
    format!("{record_id}@mailbridge")
}

/// One record of any kind the sync handles.
#[derive(Debug, Clone, PartialEq)]
pub enum ActRecord {
    Appointment(Appointment),
    Task(Task),
    /// A party record of kind `contact`.
    Contact(PartyRecord),
}

impl ActRecord {
    pub fn kind(&self) -> ActKind {
        match self {
            ActRecord::Appointment(_) => ActKind::Appointment,
            ActRecord::Task(_) => ActKind::Task,
            ActRecord::Contact(_) => ActKind::Contact,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            ActRecord::Appointment(a) => &a.id,
            ActRecord::Task(t) => &t.id,
            ActRecord::Contact(c) => &c.id,
        }
    }

    /// The row version the record was read at.
    pub fn version(&self) -> i64 {
        match self {
            ActRecord::Appointment(a) => a.version,
            ActRecord::Task(t) => t.version,
            ActRecord::Contact(c) => c.version,
        }
    }

    pub fn owner_id(&self) -> Option<&str> {
        match self {
            ActRecord::Appointment(a) => a.owner_id.as_deref(),
            ActRecord::Task(t) => t.owner_id.as_deref(),
            ActRecord::Contact(c) => c.owner_id.as_deref(),
        }
    }

    /// The record is a tombstone.
    pub fn is_deleted(&self) -> bool {
        match self {
            ActRecord::Appointment(a) => a.deleted_at.is_some(),
            ActRecord::Task(t) => t.deleted_at.is_some(),
            ActRecord::Contact(c) => c.deleted_at.is_some(),
        }
    }

    /// Completed or cancelled (for a tombstone: it was when deleted); contacts never.
    pub fn is_closed(&self) -> bool {
        match self {
            ActRecord::Appointment(a) => matches!(
                a.status,
                AppointmentStatus::Completed | AppointmentStatus::Canceled
            ),
            ActRecord::Task(t) => matches!(t.status, TaskStatus::Completed | TaskStatus::Canceled),
            ActRecord::Contact(_) => false,
        }
    }

    /// The UID the item has on the server: the stored one, else [`record_uid`].
    pub fn uid(&self) -> String {
        let stored = match self {
            ActRecord::Appointment(a) => a.ical_uid.as_deref(),
            ActRecord::Task(t) => t.ical_uid.as_deref(),
            ActRecord::Contact(c) => c.ical_uid.as_deref(),
        };
        stored.map_or_else(|| record_uid(self.id()), str::to_owned)
    }

    /// The record as a sync item.
    pub fn to_item(&self, tz: &dyn TimeZones) -> Result<ActItem, ConversionError> {
        Ok(match self {
            ActRecord::Appointment(a) => ActItem::Appointment(appointment_to_item(a, tz)?),
            ActRecord::Task(t) => ActItem::Task(task_to_item(t)),
            ActRecord::Contact(c) => ActItem::Contact(contact_to_item(c)),
        })
    }

    /// Writes an item's fields onto the record; record-only fields stay.
    pub fn apply(&mut self, item: &ActItem, tz: &dyn TimeZones) -> Result<(), ConversionError> {
        match (self, item) {
            (ActRecord::Appointment(a), ActItem::Appointment(e)) => apply_appointment(a, e, tz),
            (ActRecord::Task(t), ActItem::Task(k)) => apply_task(t, k, tz),
            (ActRecord::Contact(c), ActItem::Contact(v)) => {
                apply_contact(c, v);
                Ok(())
            }
            (record, item) => Err(ConversionError::KindMismatch {
                item: item.kind(),
                record: record.kind(),
            }),
        }
    }

    /// What the user's filters need to know about the record. `user_id` is the
    /// mailbox's owner; `regarding_owned` says whether the record regards a record the
    /// user owns (contacts: whose account the user owns); `linked`, whether the
    /// mailbox has a link for it.
    pub fn facts(&self, user_id: &str, regarding_owned: bool, linked: bool) -> RecordFacts {
        let (starts_at, ends_at) = match self {
            ActRecord::Appointment(a) => (Some(a.start), series_end(a)),
            _ => (None, None),
        };
        RecordFacts {
            kind: self.kind(),
            owned_by_user: self.owner_id() == Some(user_id),
            regarding_owned_by_user: regarding_owned,
            active: match self {
                ActRecord::Contact(c) => c.active,
                _ => true,
            },
            closed: self.is_closed(),
            linked,
            starts_at,
            ends_at,
        }
    }
}

/// The end of an appointment's last occurrence: its end for a single appointment,
/// the RRULE's UNTIL for a series that has one, else `None` (endless, or counted:
/// counting occurrences needs the rule expanded, so a counted series is treated as
/// open-ended, which keeps it in a window rather than dropping it).
fn series_end(a: &Appointment) -> Option<DateTime<Utc>> {
    let Some(r) = &a.recurrence else {
        return Some(a.end);
    };
    let until = r
        .rrule
        .as_deref()?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("UNTIL="))?;
    let date = NaiveDate::parse_from_str(until.get(..8)?, "%Y%m%d").ok()?;
    // The whole last day counts: an UNTIL date or time on that day.
    let last = date.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc();
    Some(last + (a.end - a.start))
}

fn zone(field: &'static str, tz: &str) -> Result<TimeZoneId, ConversionError> {
    TimeZoneId::new(tz).map_err(|_| ConversionError::UnknownTimeZone {
        field,
        tz: tz.to_owned(),
    })
}

/// An instant of a record as an item's time: a date when all-day, a wall-clock time
/// when the record has a zone, else UTC.
fn event_time(
    field: &'static str,
    at: DateTime<Utc>,
    all_day: bool,
    time_zone: Option<&str>,
    tz: &dyn TimeZones,
) -> Result<EventTime, ConversionError> {
    if all_day {
        return Ok(EventTime::Date(at.date_naive()));
    }
    let Some(name) = time_zone else {
        return Ok(EventTime::Utc(at));
    };
    let id = zone(field, name)?;
    let local = tz
        .to_local(at, &id)
        .ok_or_else(|| ConversionError::UnknownTimeZone {
            field,
            tz: name.to_owned(),
        })?;
    Ok(EventTime::Zoned { local, tz: id })
}

/// An item's time as an instant (a date: its midnight in UTC).
fn instant(
    field: &'static str,
    t: &EventTime,
    tz: &dyn TimeZones,
) -> Result<DateTime<Utc>, ConversionError> {
    match t {
        EventTime::Utc(at) => Ok(*at),
        EventTime::Date(d) => Ok(d.and_time(chrono::NaiveTime::MIN).and_utc()),
        EventTime::Zoned { local, tz: id } => {
            tz.to_utc(*local, id)
                .ok_or_else(|| ConversionError::NoSuchLocalTime {
                    field,
                    local: *local,
                    tz: id.as_str().to_owned(),
                })
        }
    }
}

/// An appointment record as a sync item.
pub fn appointment_to_item(a: &Appointment, tz: &dyn TimeZones) -> Result<Event, ConversionError> {
    let zone = a.time_zone.as_deref();
    Ok(Event {
        uid: ActRecord::Appointment(a.clone()).uid(),
        summary: a.subject.clone(),
        organizer: a.organizer.as_ref().map(|email| Person {
            email: email.clone(),
            name: a.organizer_name.clone(),
        }),
        attendees: a.attendees.clone(),
        start: event_time("start", a.start, a.all_day, zone, tz)?,
        end: event_time("end", a.end, a.all_day, zone, tz)?,
        location: a.location.clone(),
        description: a.body.clone(),
        status: match a.status {
            AppointmentStatus::Canceled => EventStatus::Cancelled,
            AppointmentStatus::Scheduled | AppointmentStatus::Completed => EventStatus::Confirmed,
        },
        categories: a.categories.clone(),
        recurrence: a.recurrence.clone(),
        exceptions: a.exceptions.clone(),
    })
}

/// Writes a server's appointment onto a record. A completed record stays completed
/// unless the server cancels it.
pub fn apply_appointment(
    a: &mut Appointment,
    e: &Event,
    tz: &dyn TimeZones,
) -> Result<(), ConversionError> {
    a.start = instant("start", &e.start, tz)?;
    a.end = instant("end", &e.end, tz)?;
    a.all_day = e.start.is_all_day();
    a.time_zone = match &e.start {
        EventTime::Zoned { tz, .. } => Some(tz.as_str().to_owned()),
        EventTime::Utc(_) | EventTime::Date(_) => None,
    };
    a.ical_uid = Some(e.uid.clone());
    a.subject = e.summary.clone();
    a.organizer = e.organizer.as_ref().map(|p| p.email.clone());
    a.organizer_name = e.organizer.as_ref().and_then(|p| p.name.clone());
    a.attendees = e.attendees.clone();
    a.location = e.location.clone();
    a.body = e.description.clone();
    a.status = match (e.status, a.status) {
        (EventStatus::Cancelled, _) => AppointmentStatus::Canceled,
        (_, AppointmentStatus::Completed) => AppointmentStatus::Completed,
        _ => AppointmentStatus::Scheduled,
    };
    a.categories = e.categories.clone();
    a.recurrence = e.recurrence.clone();
    a.exceptions = e.exceptions.clone();
    Ok(())
}

/// A task record as a sync item.
pub fn task_to_item(t: &Task) -> Todo {
    Todo {
        uid: ActRecord::Task(t.clone()).uid(),
        summary: t.subject.clone(),
        description: t.description.clone(),
        start: t.start.map(EventTime::Utc),
        due: t.due.map(EventTime::Utc),
        completed_at: t.completed_at,
        percent: t.percent_complete.and_then(|p| u8::try_from(p).ok()),
        priority: Some(Priority::of_level(t.priority)),
        status: match t.status {
            TaskStatus::NotStarted => TodoStatus::NeedsAction,
            TaskStatus::InProgress => TodoStatus::InProcess,
            TaskStatus::Completed => TodoStatus::Completed,
            TaskStatus::Canceled => TodoStatus::Cancelled,
        },
        categories: t.categories.clone(),
    }
}

/// Writes a server's task onto a record.
pub fn apply_task(t: &mut Task, k: &Todo, tz: &dyn TimeZones) -> Result<(), ConversionError> {
    t.start = k
        .start
        .as_ref()
        .map(|s| instant("start", s, tz))
        .transpose()?;
    t.due = k.due.as_ref().map(|d| instant("due", d, tz)).transpose()?;
    t.ical_uid = Some(k.uid.clone());
    t.subject = k.summary.clone();
    t.description = k.description.clone();
    t.completed_at = k.completed_at;
    t.percent_complete = k.percent.map(i64::from);
    t.priority = k.priority.map_or(TaskPriority::Normal, Priority::level);
    t.status = match k.status {
        TodoStatus::NeedsAction => TaskStatus::NotStarted,
        TodoStatus::InProcess => TaskStatus::InProgress,
        TodoStatus::Completed => TaskStatus::Completed,
        TodoStatus::Cancelled => TaskStatus::Canceled,
    };
    t.categories = k.categories.clone();
    Ok(())
}

/// A contact record as a sync item: its email first (preferred, work), then the
/// further ones; its phone first (work), then the further ones.
pub fn contact_to_item(p: &PartyRecord) -> Contact {
    let d = &p.details;
    let mut emails: Vec<ContactEmail> = p
        .email
        .iter()
        .map(|address| ContactEmail {
            address: address.clone(),
            kind: ContactUse::Work,
            preferred: true,
        })
        .collect();
    emails.extend(d.emails.iter().cloned());
    let mut phones: Vec<ContactPhone> = p
        .phone
        .iter()
        .map(|number| ContactPhone {
            number: number.clone(),
            kind: PhoneKind::Work,
        })
        .collect();
    phones.extend(d.phones.iter().cloned());
    Contact {
        uid: ActRecord::Contact(p.clone()).uid(),
        formatted_name: p.name.clone(),
        name: StructuredName {
            family: p.family_name.clone(),
            given: p.given_name.clone(),
            ..StructuredName::default()
        },
        emails,
        phones,
        addresses: d.addresses.clone(),
        organization: p.company.clone(),
        title: p.job_title.clone(),
        note: d.note.clone(),
        categories: d.categories.clone(),
    }
}

/// Writes a server's contact onto a record: the preferred email (else the first)
/// becomes `email` and the first phone `phone`; the others go to the details.
pub fn apply_contact(p: &mut PartyRecord, c: &Contact) {
    let primary = c
        .emails
        .iter()
        .position(|e| e.preferred)
        .or((!c.emails.is_empty()).then_some(0));
    p.email = primary.map(|i| c.emails[i].address.clone());
    p.details.emails = c
        .emails
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != primary)
        .map(|(_, e)| e.clone())
        .collect();
    p.phone = c.phones.first().map(|ph| ph.number.clone());
    p.details.phones = c.phones.iter().skip(1).cloned().collect();
    p.ical_uid = Some(c.uid.clone());
    p.name = c.formatted_name.clone();
    p.given_name = c.name.given.clone();
    p.family_name = c.name.family.clone();
    p.company = c.organization.clone();
    p.job_title = c.title.clone();
    p.details.addresses = c.addresses.clone();
    p.details.note = c.note.clone();
    p.details.categories = c.categories.clone();
}

#[cfg(test)]
mod tests;
