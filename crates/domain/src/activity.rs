//! Activities: the records synchronization creates and consumes (email,
//! appointment, task).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::validation::{check_email_address, check_max_chars};
use crate::{
    AppointmentStatus, CorrelationMethod, EmailDirection, EmailStatus, FieldError, PartyRole,
    PartyType, RegardingType, TaskPriority, TaskStatus, Validation,
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
    pub organizer: Option<String>,
    pub regarding_type: Option<RegardingType>,
    pub regarding_id: Option<String>,
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
    if t.regarding_type.is_some() != t.regarding_id.is_some() {
        errors.push(FieldError::new(
            "regarding_id",
            "regarding_type and regarding_id are given together or not at all",
        ));
    }
    errors
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
