//! Organizations (tenants) and their email configuration settings.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::validation::{check_guid, check_range, check_required_text};
use crate::{
    ActLeavingFilters, ActTaskDeletedOnServer, DeliveryMethod, EmailBetweenUsers, FieldError,
    Validation,
};

/// A tenant: everything else belongs to exactly one organization.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Organization {
    pub id: String,
    pub name: String,
    /// The Microsoft Entra directory (tenant) ID used by profiles with
    /// `use_default_tenant_id`.
    pub default_tenant_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Checks an organization's editable fields.
pub fn validate_organization(name: &str, default_tenant_id: Option<&str>) -> Validation {
    let mut errors = Vec::new();
    check_required_text(&mut errors, "name", name, 160);
    if let Some(t) = default_tenant_id {
        check_guid(&mut errors, "default_tenant_id", t);
    }
    errors
}

/// The organization's email configuration settings: defaults for new mailboxes,
/// approval, tracking tokens and limits.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct EmailSettings {
    pub default_profile_id: Option<String>,
    pub default_incoming_method: DeliveryMethod,
    pub default_outgoing_method: DeliveryMethod,
    pub default_act_method: DeliveryMethod,
    /// Process email only for users whose mailbox address is approved.
    pub process_email_for_approved_users_only: bool,
    /// Process email only for queues whose mailbox address is approved.
    pub process_email_for_approved_queues_only: bool,
    pub tracking_token_enabled: bool,
    /// Written before the token's digits in the subject, e.g. `CRM:`.
    pub tracking_token_prefix: String,
    /// The deployment's base number, the first part of every token.
    pub tracking_token_base_number: i64,
    pub tracking_token_user_digits: i64,
    pub tracking_token_counter_digits: i64,
    /// Attachments above this size (KB) are not stored; 0 stores none.
    pub max_attachment_size_kb: i64,
    /// Messages above this size (KB) pushed to the inbound listener (the email
    /// router route) are refused with 552; the node's own limit still caps it.
    pub max_message_size_kb: i64,
    pub email_between_users: EmailBetweenUsers,
    /// Also correlate by similarity: the same normalized subject and at least two
    /// shared addresses (off by default).
    pub similarity_correlation: bool,
    /// ACT: a linked record leaving its user's filters deletes the server item
    /// (default) or only unlinks it.
    pub act_leaving_filters: ActLeavingFilters,
    /// ACT: a task deleted on the mail system deletes its record (default) or only
    /// unlinks it.
    pub act_task_deleted_on_server: ActTaskDeletedOnServer,
}

impl EmailSettings {
    /// The settings the ACT planner follows.
    pub fn act_settings(&self) -> crate::act::OrgSettings {
        use crate::act::planner::{LeavingFilters, TaskDeletedOnServer};
        crate::act::OrgSettings {
            leaving_filters: match self.act_leaving_filters {
                ActLeavingFilters::DeleteOnServer => LeavingFilters::DeleteOnServer,
                ActLeavingFilters::Unlink => LeavingFilters::Unlink,
            },
            task_deleted_on_server: match self.act_task_deleted_on_server {
                ActTaskDeletedOnServer::DeleteRecord => TaskDeletedOnServer::DeleteRecord,
                ActTaskDeletedOnServer::Unlink => TaskDeletedOnServer::Unlink,
            },
        }
    }
}

/// 25 MB, the default message size limit of Exchange Online and Dynamics 365.
pub const DEFAULT_MAX_MESSAGE_SIZE_KB: i64 = 25_600;

/// 150 MB, the largest message size limit Exchange Online allows.
pub const MAX_MESSAGE_SIZE_KB: i64 = 153_600;

/// A message size limit in KB as bytes (1 KB = 1024 bytes); nothing below zero.
pub fn message_size_limit_bytes(kb: i64) -> u64 {
    u64::try_from(kb).unwrap_or(0).saturating_mul(1024)
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            default_profile_id: None,
            default_incoming_method: DeliveryMethod::ServerSideSync,
            default_outgoing_method: DeliveryMethod::ServerSideSync,
            default_act_method: DeliveryMethod::None,
            process_email_for_approved_users_only: true,
            process_email_for_approved_queues_only: true,
            tracking_token_enabled: true,
            tracking_token_prefix: "CRM:".to_owned(),
            tracking_token_base_number: 0,
            tracking_token_user_digits: 3,
            tracking_token_counter_digits: 4,
            max_attachment_size_kb: 5120,
            max_message_size_kb: DEFAULT_MAX_MESSAGE_SIZE_KB,
            email_between_users: EmailBetweenUsers::OneActivity,
            similarity_correlation: false,
            act_leaving_filters: ActLeavingFilters::DeleteOnServer,
            act_task_deleted_on_server: ActTaskDeletedOnServer::DeleteRecord,
        }
    }
}

/// Checks the settings (the default profile's existence is checked by the caller).
pub fn validate_email_settings(s: &EmailSettings) -> Validation {
    let mut errors = Vec::new();
    let prefix = &s.tracking_token_prefix;
    if prefix.is_empty() || prefix.chars().count() > 20 || prefix.chars().any(char::is_whitespace) {
        errors.push(FieldError::new(
            "tracking_token_prefix",
            "tracking_token_prefix must be 1 to 20 characters without spaces, such as CRM:",
        ));
    } else if prefix.ends_with(|c: char| c.is_ascii_digit()) {
        // The token's numbers follow the prefix: a prefix ending in a digit would
        // make where it ends (and so which token a subject holds) ambiguous.
        errors.push(FieldError::new(
            "tracking_token_prefix",
            "tracking_token_prefix must not end with a digit (the token's numbers follow it); end it with a letter or a sign, such as CRM:",
        ));
    }
    check_range(
        &mut errors,
        "tracking_token_base_number",
        s.tracking_token_base_number,
        0,
        2_147_483_647,
    );
    check_range(
        &mut errors,
        "tracking_token_user_digits",
        s.tracking_token_user_digits,
        1,
        9,
    );
    check_range(
        &mut errors,
        "tracking_token_counter_digits",
        s.tracking_token_counter_digits,
        1,
        9,
    );
    check_range(
        &mut errors,
        "max_attachment_size_kb",
        s.max_attachment_size_kb,
        0,
        131_072,
    );
    check_range(
        &mut errors,
        "max_message_size_kb",
        s.max_message_size_kb,
        1,
        MAX_MESSAGE_SIZE_KB,
    );
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_reference() {
        let s = EmailSettings::default();
        assert!(validate_email_settings(&s).is_empty());
        assert!(
            s.process_email_for_approved_users_only && s.process_email_for_approved_queues_only
        );
        assert_eq!(s.act_settings(), crate::act::OrgSettings::default());
        assert_eq!(
            message_size_limit_bytes(s.max_message_size_kb),
            25 * 1024 * 1024
        );
    }

    #[test]
    fn message_size_limits() {
        for (kb, valid) in [
            (1, true),
            (25_600, true),
            (153_600, true),
            (0, false),
            (153_601, false),
        ] {
            let s = EmailSettings {
                max_message_size_kb: kb,
                ..EmailSettings::default()
            };
            let errors = validate_email_settings(&s);
            assert_eq!(errors.is_empty(), valid, "{kb}");
            if !valid {
                assert_eq!(
                    errors[0].message,
                    format!("max_message_size_kb must be between 1 and 153600, got {kb}")
                );
            }
        }
        assert_eq!(message_size_limit_bytes(1), 1024);
        assert_eq!(message_size_limit_bytes(-5), 0);
    }

    #[test]
    fn bad_settings_name_their_field() {
        type Case = (fn(&mut EmailSettings), &'static str);
        let cases: &[Case] = &[
            (
                |s| s.tracking_token_prefix = String::new(),
                "tracking_token_prefix",
            ),
            (
                |s| s.tracking_token_prefix = "CRM ID:".into(),
                "tracking_token_prefix",
            ),
            (
                |s| s.tracking_token_prefix = "7".into(),
                "tracking_token_prefix",
            ),
            (
                |s| s.tracking_token_prefix = "CRM7".into(),
                "tracking_token_prefix",
            ),
            (
                |s| s.tracking_token_user_digits = 0,
                "tracking_token_user_digits",
            ),
            (
                |s| s.tracking_token_counter_digits = 10,
                "tracking_token_counter_digits",
            ),
            (
                |s| s.max_attachment_size_kb = 131_073,
                "max_attachment_size_kb",
            ),
            (|s| s.max_message_size_kb = 0, "max_message_size_kb"),
            (|s| s.max_message_size_kb = -1, "max_message_size_kb"),
            (|s| s.max_message_size_kb = 153_601, "max_message_size_kb"),
            (
                |s| s.tracking_token_base_number = -1,
                "tracking_token_base_number",
            ),
        ];
        for (change, field) in cases {
            let mut s = EmailSettings::default();
            change(&mut s);
            let errors = validate_email_settings(&s);
            assert_eq!(errors.len(), 1, "{field}");
            assert_eq!(errors[0].field, *field);
        }
    }

    #[test]
    fn organization_rules() {
        assert!(validate_organization("Contoso", None).is_empty());
        assert_eq!(validate_organization("", None)[0].field, "name");
        assert_eq!(
            validate_organization("Contoso", Some("x"))[0].field,
            "default_tenant_id"
        );
    }
}
