//! The sync-side model of appointments, tasks and contacts: what both the store and a
//! mail system (CalDAV, CardDAV, Exchange) can say about an item, in RFC 5545 / 6350
//! terms, so that the two sides are compared field by field.
//!
//! These types are separate from [`crate::activity`]'s records, which are what the
//! REST API shows: a record maps to one of these before it is compared or sent.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// The three kinds of item ACT synchronizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActKind {
    Appointment,
    Task,
    Contact,
}

impl ActKind {
    /// Every kind, in declaration order.
    pub const ALL: [ActKind; 3] = [ActKind::Appointment, ActKind::Task, ActKind::Contact];

    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActKind::Appointment => "appointment",
            ActKind::Task => "task",
            ActKind::Contact => "contact",
        }
    }
}

/// An IANA time zone id such as `Europe/Paris`, checked for shape only.
///
/// The domain carries no time zone database (no chrono-tz), so the id is not looked
/// up: the connector that resolves local times owns that. The shape check still keeps
/// Windows zone names ("W. Europe Standard Time") and free text out; a connector maps
/// those to IANA ids before building an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneId(String);

impl TimeZoneId {
    /// Checks the shape of an IANA id: `UTC`, or `Area/Location[/Sub]` parts made of
    /// ASCII letters, digits, `_`, `-` and `+`, each starting with a letter.
    pub fn new(id: &str) -> Result<Self, InvalidTimeZone> {
        let id = id.trim();
        let part_ok = |p: &str| {
            p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        };
        let parts: Vec<&str> = id.split('/').collect();
        let shaped = id.len() <= 64
            && parts.iter().all(|p| part_ok(p))
            && (parts.len() >= 2 || matches!(id, "UTC" | "GMT"));
        if shaped {
            Ok(TimeZoneId(id.to_owned()))
        } else {
            Err(InvalidTimeZone(id.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TimeZoneId {
    type Error = InvalidTimeZone;
    fn try_from(s: String) -> Result<Self, InvalidTimeZone> {
        TimeZoneId::new(&s)
    }
}

impl From<TimeZoneId> for String {
    fn from(t: TimeZoneId) -> String {
        t.0
    }
}

/// A time zone id that is not an IANA id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone id, such as Europe/Paris or America/New_York")]
pub struct InvalidTimeZone(pub String);

/// When something happens: an instant in UTC, a wall-clock time in a named zone, or a
/// whole day. A floating time (no zone) is given the user's zone by the connector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTime {
    Utc(DateTime<Utc>),
    Zoned {
        local: NaiveDateTime,
        tz: TimeZoneId,
    },
    /// An all-day value (`VALUE=DATE`).
    Date(NaiveDate),
}

impl EventTime {
    pub fn is_all_day(&self) -> bool {
        matches!(self, EventTime::Date(_))
    }
}

/// A person on a meeting, by address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Person {
    pub email: String,
    pub name: Option<String>,
}

/// An attendee's role (`ROLE`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AttendeeRole {
    Chair,
    #[default]
    Required,
    Optional,
    NonParticipant,
}

/// An attendee's answer (`PARTSTAT`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ParticipationStatus {
    #[default]
    NeedsAction,
    Accepted,
    Declined,
    Tentative,
    Delegated,
}

/// One attendee of a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attendee {
    pub person: Person,
    pub role: AttendeeRole,
    pub status: ParticipationStatus,
}

/// An appointment's status (`STATUS` of a `VEVENT`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    #[default]
    Confirmed,
    Tentative,
    Cancelled,
}

/// How a series repeats: the rule and the dates added or taken out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Recurrence {
    /// The `RRULE` value, e.g. `FREQ=WEEKLY;BYDAY=MO,WE`.
    pub rrule: Option<String>,
    /// `EXDATE`: occurrences taken out of the series.
    pub exdates: Vec<EventTime>,
    /// `RDATE`: occurrences added to the series.
    pub rdates: Vec<EventTime>,
}

/// One occurrence of a series that differs from the rule: an instance keyed by its
/// `RECURRENCE-ID` (the start it would have had).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Occurrence {
    pub recurrence_id: EventTime,
    pub start: EventTime,
    pub end: EventTime,
    pub summary: String,
    pub location: Option<String>,
    pub description: Option<String>,
    pub status: EventStatus,
    pub attendees: Vec<Attendee>,
}

/// An appointment, single or the master of a series with its exceptions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Appointment {
    /// The iCalendar `UID`, shared by the master and its exceptions.
    pub uid: String,
    pub summary: String,
    pub organizer: Option<Person>,
    pub attendees: Vec<Attendee>,
    pub start: EventTime,
    pub end: EventTime,
    pub location: Option<String>,
    pub description: Option<String>,
    pub status: EventStatus,
    pub categories: Vec<String>,
    pub recurrence: Option<Recurrence>,
    pub exceptions: Vec<Occurrence>,
}

impl Appointment {
    /// Whether the appointment lasts whole days.
    pub fn is_all_day(&self) -> bool {
        self.start.is_all_day()
    }
}

/// A task's priority, 1 (highest) to 9 (lowest), as RFC 5545 counts; no priority is
/// `None` where it is used (iCalendar's 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Priority(u8);

impl Priority {
    pub fn new(p: u8) -> Option<Priority> {
        (1..=9).contains(&p).then_some(Priority(p))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// The store's three levels: 1–4 high, 5 normal, 6–9 low (RFC 5545 §3.8.1.9).
    pub fn level(self) -> crate::TaskPriority {
        match self.0 {
            1..=4 => crate::TaskPriority::High,
            5 => crate::TaskPriority::Normal,
            _ => crate::TaskPriority::Low,
        }
    }

    /// The value a store level is sent as.
    pub fn of_level(level: crate::TaskPriority) -> Priority {
        match level {
            crate::TaskPriority::High => Priority(1),
            crate::TaskPriority::Normal => Priority(5),
            crate::TaskPriority::Low => Priority(9),
        }
    }
}

impl TryFrom<u8> for Priority {
    type Error = String;
    fn try_from(p: u8) -> Result<Self, String> {
        Priority::new(p).ok_or_else(|| format!("priority must be 1 to 9, not {p}"))
    }
}

impl From<Priority> for u8 {
    fn from(p: Priority) -> u8 {
        p.0
    }
}

/// A task's status (`STATUS` of a `VTODO`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TodoStatus {
    #[default]
    NeedsAction,
    InProcess,
    Completed,
    Cancelled,
}

impl TodoStatus {
    /// Completed or cancelled: the record no longer takes edits from the server.
    pub fn is_closed(self) -> bool {
        matches!(self, TodoStatus::Completed | TodoStatus::Cancelled)
    }
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Task {
    pub uid: String,
    pub summary: String,
    pub description: Option<String>,
    pub start: Option<EventTime>,
    pub due: Option<EventTime>,
    pub completed_at: Option<DateTime<Utc>>,
    /// `PERCENT-COMPLETE`, 0 to 100.
    pub percent: Option<u8>,
    pub priority: Option<Priority>,
    pub status: TodoStatus,
    pub categories: Vec<String>,
}

/// Where an email address or postal address is used.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ContactUse {
    Work,
    Home,
    #[default]
    Other,
}

/// What a phone number is.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    Work,
    Home,
    Mobile,
    Fax,
    Pager,
    #[default]
    Other,
}

/// The vCard `N` property.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StructuredName {
    pub family: Option<String>,
    pub given: Option<String>,
    pub additional: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContactEmail {
    pub address: String,
    pub kind: ContactUse,
    pub preferred: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContactPhone {
    pub number: String,
    pub kind: PhoneKind,
}

/// The vCard `ADR` property (without the post office box and extended address, which
/// neither the store nor Exchange keeps apart from the street).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PostalAddress {
    pub kind: ContactUse,
    pub street: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// A contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Contact {
    pub uid: String,
    /// The vCard `FN`.
    pub formatted_name: String,
    pub name: StructuredName,
    pub emails: Vec<ContactEmail>,
    pub phones: Vec<ContactPhone>,
    pub addresses: Vec<PostalAddress>,
    pub organization: Option<String>,
    pub title: Option<String>,
    pub note: Option<String>,
    pub categories: Vec<String>,
}

/// One item of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActItem {
    Appointment(Appointment),
    Task(Task),
    Contact(Contact),
}

impl ActItem {
    pub fn kind(&self) -> ActKind {
        match self {
            ActItem::Appointment(_) => ActKind::Appointment,
            ActItem::Task(_) => ActKind::Task,
            ActItem::Contact(_) => ActKind::Contact,
        }
    }

    pub fn uid(&self) -> &str {
        match self {
            ActItem::Appointment(a) => &a.uid,
            ActItem::Task(t) => &t.uid,
            ActItem::Contact(c) => &c.uid,
        }
    }

    /// Completed or cancelled (a cancelled appointment, a completed or cancelled
    /// task); contacts are never closed.
    pub fn is_closed(&self) -> bool {
        match self {
            ActItem::Appointment(a) => a.status == EventStatus::Cancelled,
            ActItem::Task(t) => t.status.is_closed(),
            ActItem::Contact(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_ids_are_checked_for_shape() {
        let cases = [
            ("Europe/Paris", true),
            ("America/Argentina/Buenos_Aires", true),
            ("Etc/GMT+5", true),
            ("UTC", true),
            (" Asia/Tokyo ", true),
            ("W. Europe Standard Time", false),
            ("Paris", false),
            ("Europe/", false),
            ("/Paris", false),
            ("Europe/../etc", false),
            ("", false),
        ];
        for (id, ok) in cases {
            assert_eq!(TimeZoneId::new(id).is_ok(), ok, "{id:?}");
        }
        assert_eq!(
            serde_json::from_str::<TimeZoneId>("\"Europe/Paris\"")
                .map(|t| t.as_str().to_owned())
                .ok(),
            Some("Europe/Paris".to_owned())
        );
        assert!(serde_json::from_str::<TimeZoneId>("\"Romance Standard Time\"").is_err());
    }

    #[test]
    fn priorities_are_one_to_nine_and_map_to_store_levels() {
        let cases = [
            (0, None),
            (1, Some(crate::TaskPriority::High)),
            (4, Some(crate::TaskPriority::High)),
            (5, Some(crate::TaskPriority::Normal)),
            (6, Some(crate::TaskPriority::Low)),
            (9, Some(crate::TaskPriority::Low)),
            (10, None),
        ];
        for (p, level) in cases {
            assert_eq!(Priority::new(p).map(Priority::level), level, "{p}");
        }
        for level in crate::TaskPriority::ALL {
            assert_eq!(Priority::of_level(*level).level(), *level);
        }
    }
}
