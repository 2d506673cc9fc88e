//! The owners of mailboxes (users and queues) and the email-enabled records that
//! addresses resolve to (contacts, accounts, leads).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::validation::{check_email_address, check_max_chars, check_required_text};
use crate::{Role, TrackingFilter, Validation};

/// A person of the organization, who owns a mailbox and signs in with a role.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub full_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub tracking_filter: TrackingFilter,
    /// A disabled user keeps their records but cannot sign in and syncs nothing.
    pub disabled: bool,
    pub mailbox_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A shared inbox such as support@ or sales@.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Queue {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub email: Option<String>,
    pub description: Option<String>,
    pub tracking_filter: TrackingFilter,
    pub mailbox_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A contact, account or lead: the three email-enabled record kinds share one shape.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct PartyRecord {
    pub id: String,
    pub org_id: String,
    /// Contacts and leads: the person's name; accounts: the company name.
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Contacts and leads: the company; accounts: unused.
    pub company: Option<String>,
    /// Contacts: the account they belong to.
    pub account_id: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Checks a user's or queue's display name and optional address.
pub fn validate_owner(name_field: &str, name: &str, email: Option<&str>) -> Validation {
    let mut errors = Vec::new();
    check_required_text(&mut errors, name_field, name, 200);
    if let Some(e) = email {
        check_email_address(&mut errors, "email", e);
    }
    errors
}

/// Checks a contact, account or lead.
pub fn validate_party(p: &PartyRecord) -> Validation {
    let mut errors = Vec::new();
    check_required_text(&mut errors, "name", &p.name, 200);
    if let Some(e) = &p.email {
        check_email_address(&mut errors, "email", e);
    }
    for (field, value) in [("phone", &p.phone), ("company", &p.company)] {
        if let Some(v) = value {
            check_max_chars(&mut errors, field, v, 200);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_rules() {
        assert!(validate_owner("full_name", "Alice", Some("alice@example.org")).is_empty());
        assert!(validate_owner("full_name", "Alice", None).is_empty());
        let errors = validate_owner("full_name", "", Some("alice"));
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["full_name", "email"]);
    }
}
