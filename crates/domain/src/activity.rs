//! Activities: the records synchronization creates and consumes (email,
//! appointment, task).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::validation::{check_email_address, check_max_chars};
use crate::{
    AppointmentStatus, CorrelationMethod, EmailDirection, EmailStatus, FieldError, PartyRole,
    PartyType, RegardingType, TaskPriority, TaskStatus, Validation, act,
};

/// One address on an email and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
#[serde(deny_unknown_fields)]
pub struct EmailParty {
    pub role: PartyRole,
    pub address: String,
    /// The record the address resolved to; absent when unresolved.
    #[serde(default)]
    pub party_type: Option<PartyType>,
    #[serde(default)]
    pub party_id: Option<String>,
}

/// An email activity.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Email {
    pub id: String,
    pub org_id: String,
    pub subject: String,
    pub body: Option<String>,
    pub direction: EmailDirection,
    pub status: EmailStatus,
    /// The RFC 5322 Message-ID, without angle brackets; one Message-ID is one email.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub tracking_token: Option<String>,
    pub correlation_method: Option<CorrelationMethod>,
    pub regarding_type: Option<RegardingType>,
    pub regarding_id: Option<String>,
    /// The mailbox it was received in or is sent from.
    pub mailbox_id: Option<String>,
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub parties: Vec<EmailParty>,
    pub status_reason: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An appointment.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Appointment {
    pub id: String,
    pub org_id: String,
    pub subject: String,
    pub location: Option<String>,
    pub body: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub all_day: bool,
    pub status: AppointmentStatus,
    /// The user who owns the record.
    pub owner_id: Option<String>,
    /// The organizer's address.
    pub organizer: Option<String>,
    /// The organizer's display name, as the mail system shows it.
    pub organizer_name: Option<String>,
    pub regarding_type: Option<RegardingType>,
    pub regarding_id: Option<String>,
    /// The iCalendar UID the appointment has on mail systems; set by the sync when
    /// absent. One live appointment per UID in an organization.
    pub ical_uid: Option<String>,
    /// The IANA time zone the appointment was scheduled in, e.g. `Europe/Paris`;
    /// none: UTC. `start` and `end` stay instants.
    pub time_zone: Option<String>,
    /// The attendees with their role and answer (the sync model's `Attendee`).
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    #[schema(value_type = Vec<Object>)]
    pub attendees: Vec<act::model::Attendee>,
    /// A series: its RRULE and the dates added or taken out; none: one appointment.
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    #[schema(value_type = Option<Object>)]
    pub recurrence: Option<act::model::Recurrence>,
    /// A series' occurrences that differ from the rule, by RECURRENCE-ID.
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    #[schema(value_type = Vec<Object>)]
    pub exceptions: Vec<act::model::Occurrence>,
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub categories: Vec<String>,
    /// The row version: every write adds one. Sync writes name the version they read.
    pub version: i64,
    /// Set when the record was deleted: a tombstone the sync still sees, which the
    /// API no longer shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Task {
    pub id: String,
    pub org_id: String,
    pub subject: String,
    pub description: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub due: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub priority: TaskPriority,
    pub status: TaskStatus,
    pub owner_id: Option<String>,
    pub regarding_type: Option<RegardingType>,
    pub regarding_id: Option<String>,
    /// The iCalendar UID the task has on mail systems; set by the sync when absent.
    pub ical_uid: Option<String>,
    /// 0 to 100; none: not tracked.
    pub percent_complete: Option<i64>,
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub categories: Vec<String>,
    /// The row version: every write adds one. Sync writes name the version they read.
    pub version: i64,
    /// Set when the record was deleted (a tombstone the sync still sees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Removes the angle brackets around a Message-ID, as it is stored.
pub fn normalize_message_id(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// Checks an email's own fields (references are checked by the caller).
pub fn validate_email(e: &Email) -> Validation {
    let mut errors = Vec::new();
    check_max_chars(&mut errors, "subject", &e.subject, 2000);
    for (i, p) in e.parties.iter().enumerate() {
        check_email_address(&mut errors, &format!("parties[{i}].address"), &p.address);
        if p.party_type.is_some() != p.party_id.is_some() {
            errors.push(FieldError::new(
                format!("parties[{i}].party_id"),
                "party_type and party_id are given together or not at all",
            ));
        }
    }
    if e.parties
        .iter()
        .filter(|p| p.role == PartyRole::From)
        .count()
        > 1
    {
        errors.push(FieldError::new(
            "parties",
            "an email has at most one from party",
        ));
    }
    if e.regarding_type.is_some() != e.regarding_id.is_some() {
        errors.push(FieldError::new(
            "regarding_id",
            "regarding_type and regarding_id are given together or not at all",
        ));
    }
    if let Some(m) = &e.message_id
        && (m.is_empty() || m.contains(char::is_whitespace) || !m.contains('@'))
    {
        errors.push(FieldError::new(
            "message_id",
            "message_id must look like id-left@id-right (RFC 5322), without spaces",
        ));
    }
    errors
}

/// Checks an appointment.
pub fn validate_appointment(a: &Appointment) -> Validation {
    let mut errors = Vec::new();
    crate::validation::check_required_text(&mut errors, "subject", &a.subject, 400);
    if a.end < a.start {
        errors.push(FieldError::new("end", "end must not be before start"));
    }
    check_ical_uid(&mut errors, a.ical_uid.as_deref());
    if let Some(tz) = &a.time_zone
        && let Err(e) = act::model::TimeZoneId::new(tz)
    {
        errors.push(FieldError::new("time_zone", e.to_string()));
    }
    if a.all_day && a.time_zone.is_some() {
        errors.push(FieldError::new(
            "time_zone",
            "an all-day appointment has no time zone; remove time_zone or set all_day: false",
        ));
    }
    if let Some(o) = &a.organizer {
        check_email_address(&mut errors, "organizer", o);
    }
    for (i, at) in a.attendees.iter().enumerate() {
        check_email_address(
            &mut errors,
            &format!("attendees[{i}].person.email"),
            &at.person.email,
        );
    }
    if let Some(r) = &a.recurrence {
        check_rrule(&mut errors, r.rrule.as_deref());
        if r.rrule.is_none() && r.rdates.is_empty() {
            errors.push(FieldError::new(
                "recurrence",
                "a recurrence needs an rrule or rdates; give one or set recurrence to null",
            ));
        }
    } else if !a.exceptions.is_empty() {
        errors.push(FieldError::new(
            "exceptions",
            "exceptions belong to a series; set recurrence or remove the exceptions",
        ));
    }
    for (i, o) in a.exceptions.iter().enumerate() {
        check_max_chars(
            &mut errors,
            &format!("exceptions[{i}].summary"),
            &o.summary,
            400,
        );
    }
    check_categories(&mut errors, &a.categories);
    if a.regarding_type.is_some() != a.regarding_id.is_some() {
        errors.push(FieldError::new(
            "regarding_id",
            "regarding_type and regarding_id are given together or not at all",
        ));
    }
    errors
}

/// Checks a task.
pub fn validate_task(t: &Task) -> Validation {
    let mut errors = Vec::new();
    crate::validation::check_required_text(&mut errors, "subject", &t.subject, 400);
    if let (Some(s), Some(d)) = (t.start, t.due)
        && d < s
    {
        errors.push(FieldError::new("due", "due must not be before start"));
    }
    check_ical_uid(&mut errors, t.ical_uid.as_deref());
    if let Some(p) = t.percent_complete
        && !(0..=100).contains(&p)
    {
        errors.push(FieldError::new(
            "percent_complete",
            format!("percent_complete must be 0 to 100, not {p}"),
        ));
    }
    check_categories(&mut errors, &t.categories);
    if t.regarding_type.is_some() != t.regarding_id.is_some() {
        errors.push(FieldError::new(
            "regarding_id",
            "regarding_type and regarding_id are given together or not at all",
        ));
    }
    errors
}

/// An iCalendar/vCard UID: 1 to 255 characters, no control characters.
pub(crate) fn check_ical_uid(errors: &mut Validation, uid: Option<&str>) {
    if let Some(u) = uid
        && (u.trim().is_empty() || u.chars().count() > 255 || u.chars().any(char::is_control))
    {
        errors.push(FieldError::new(
            "ical_uid",
            "ical_uid must be 1 to 255 characters without control characters, such as 3f1c@crm.example.org",
        ));
    }
}

/// An RRULE value names its frequency (RFC 5545 §3.3.10); the rest is the mail
/// system's to interpret.
fn check_rrule(errors: &mut Validation, rrule: Option<&str>) {
    let Some(r) = rrule else { return };
    let freq = r
        .split(';')
        .find_map(|part| part.trim().strip_prefix("FREQ="));
    let known = [
        "SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY",
    ];
    if !freq.is_some_and(|f| known.contains(&f.to_ascii_uppercase().as_str())) || r.len() > 1000 {
        errors.push(FieldError::new(
            "recurrence.rrule",
            "recurrence.rrule must be an RFC 5545 RRULE value with FREQ, such as FREQ=WEEKLY;BYDAY=MO",
        ));
    }
}

/// Categories: at most 50, each 1 to 100 characters.
pub(crate) fn check_categories(errors: &mut Validation, categories: &[String]) {
    if categories.len() > 50 {
        errors.push(FieldError::new("categories", "at most 50 categories"));
    }
    for (i, c) in categories.iter().enumerate() {
        if c.trim().is_empty() || c.chars().count() > 100 {
            errors.push(FieldError::new(
                format!("categories[{i}]"),
                "a category is 1 to 100 characters",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stored_without_brackets() {
        assert_eq!(
            normalize_message_id(" <abc@example.org> "),
            "abc@example.org"
        );
        assert_eq!(normalize_message_id("abc@example.org"), "abc@example.org");
    }
}
