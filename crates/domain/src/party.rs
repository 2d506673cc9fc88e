//! The owners of mailboxes (users and queues) and the email-enabled records that
//! addresses resolve to (contacts, accounts, leads).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::act::model::{ContactEmail, ContactPhone, PostalAddress};

use crate::validation::{check_email_address, check_max_chars, check_required_text};
use crate::{FieldError, Role, TrackingFilter, Validation};

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
    /// The user who owns the record (contacts: whose mailbox it syncs to).
    pub owner_id: Option<String>,
    /// Contacts and leads: the vCard's structured name.
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub job_title: Option<String>,
    /// Further emails, phones and postal addresses, the note and the categories.
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub details: ContactDetails,
    /// The vCard UID the contact has on mail systems; set by the sync when absent.
    pub ical_uid: Option<String>,
    /// The row version: every write adds one. Sync writes name the version they read.
    pub version: i64,
    /// Set when the record was deleted (a tombstone the sync still sees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a contact holds beyond its one email and phone, in the sync model's terms.
/// Every field may be left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ContactDetails {
    /// Emails besides `email`, each with its use (`work`, `home`, `other`).
    #[schema(value_type = Vec<Object>)]
    pub emails: Vec<ContactEmail>,
    /// Phones besides `phone`, each with its kind (`work`, `home`, `mobile`, `fax`,
    /// `pager`, `other`).
    #[schema(value_type = Vec<Object>)]
    pub phones: Vec<ContactPhone>,
    #[schema(value_type = Vec<Object>)]
    pub addresses: Vec<PostalAddress>,
    pub note: Option<String>,
    pub categories: Vec<String>,
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
    for (field, value) in [
        ("phone", &p.phone),
        ("company", &p.company),
        ("given_name", &p.given_name),
        ("family_name", &p.family_name),
        ("job_title", &p.job_title),
    ] {
        if let Some(v) = value {
            check_max_chars(&mut errors, field, v, 200);
        }
    }
    crate::activity::check_ical_uid(&mut errors, p.ical_uid.as_deref());
    let d = &p.details;
    for (i, e) in d.emails.iter().enumerate() {
        check_email_address(
            &mut errors,
            &format!("details.emails[{i}].address"),
            &e.address,
        );
    }
    for (i, ph) in d.phones.iter().enumerate() {
        let digits = ph.number.chars().filter(char::is_ascii_digit).count();
        if digits == 0 || ph.number.chars().count() > 50 {
            errors.push(FieldError::new(
                format!("details.phones[{i}].number"),
                "a phone number has digits and at most 50 characters, such as +46 8 123 45 67",
            ));
        }
    }
    for (i, a) in d.addresses.iter().enumerate() {
        let parts = [
            &a.street,
            &a.locality,
            &a.region,
            &a.postal_code,
            &a.country,
        ];
        if parts
            .iter()
            .all(|v| v.as_deref().is_none_or(|t| t.trim().is_empty()))
        {
            errors.push(FieldError::new(
                format!("details.addresses[{i}]"),
                "an address needs at least one of street, locality, region, postal_code, country",
            ));
        }
    }
    if let Some(n) = &d.note {
        check_max_chars(&mut errors, "details.note", n, 10_000);
    }
    let mut category_errors = Vec::new();
    crate::activity::check_categories(&mut category_errors, &d.categories);
    errors.extend(category_errors.into_iter().map(|mut e| {
        e.field = format!("details.{}", e.field);
        e
    }));
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
