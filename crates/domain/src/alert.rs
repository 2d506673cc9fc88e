//! Alerts: what the alerts wall shows, each with a plain-language cause and a fix.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::validation::check_required_text;
use crate::{AlertScope, AlertSeverity, FieldError, Validation};

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Alert {
    pub id: String,
    pub org_id: String,
    pub scope: AlertScope,
    pub severity: AlertSeverity,
    pub mailbox_id: Option<String>,
    pub profile_id: Option<String>,
    /// For item-scoped alerts: the server's id of the item.
    pub item_ref: Option<String>,
    pub message: String,
    pub fix: Option<String>,
    /// The users who see it besides administrators.
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub recipient_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Checks that an alert names what its scope says it is about.
pub fn validate_alert(a: &Alert) -> Validation {
    let mut errors = Vec::new();
    check_required_text(&mut errors, "message", &a.message, 4000);
    let missing = match a.scope {
        AlertScope::Mailbox | AlertScope::Item if a.mailbox_id.is_none() => Some("mailbox_id"),
        AlertScope::Profile if a.profile_id.is_none() => Some("profile_id"),
        _ => None,
    };
    if let Some(field) = missing {
        errors.push(FieldError::new(
            field,
            format!("{field} is required for {} alerts", a.scope),
        ));
    }
    errors
}
