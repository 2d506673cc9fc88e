//! Mailboxes: one user's or queue's connection to their mailbox on a mail system,
//! and the rules for creating and changing them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::organization::EmailSettings;
use crate::validation::check_email_address;
use crate::{ApprovalStatus, DeliveryMethod, FieldError, OwnerType, Validation, WorkloadStatus};

/// A mailbox, as the API shows it (its password is write-only: only `password_set`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Mailbox {
    pub id: String,
    pub org_id: String,
    /// The owner's display name, copied for lists.
    pub name: String,
    pub owner_type: OwnerType,
    pub owner_id: String,
    pub email_address: Option<String>,
    pub profile_id: Option<String>,
    pub incoming_method: DeliveryMethod,
    pub outgoing_method: DeliveryMethod,
    pub act_method: DeliveryMethod,
    pub approval_status: ApprovalStatus,
    pub incoming_status: WorkloadStatus,
    pub outgoing_status: WorkloadStatus,
    pub act_status: WorkloadStatus,
    /// Set by Test & Enable for each workload that passed.
    pub incoming_enabled: bool,
    pub outgoing_enabled: bool,
    pub act_enabled: bool,
    /// Only mail received after this is processed; never earlier than the profile's.
    pub process_email_from: Option<DateTime<Utc>>,
    pub sync_with_this_org_only: bool,
    /// Also track mail in the mailbox's Sent folder.
    pub track_sent_items: bool,
    /// A forward mailbox (a queue's only): it receives copies forwarded by many
    /// users, and each is tracked as its original recipient's
    /// (`ingest::forward`). Read as `false` by queries that predate it.
    #[cfg_attr(feature = "sqlx", sqlx(default))]
    pub is_forward_mailbox: bool,
    /// A forward mailbox's processed messages are deleted from it once their
    /// decision is written.
    #[cfg_attr(feature = "sqlx", sqlx(default))]
    pub delete_after_processing: bool,
    /// The mailbox's own sign-in name, when the profile takes credentials from mailboxes.
    pub username: Option<String>,
    pub password_set: bool,
    pub tested_at: Option<DateTime<Utc>>,
    /// Where autodiscover found the mailbox's servers, when its profile has
    /// `auto_discover` (in the profile's location syntax; for Exchange, the EWS
    /// URL serves both directions, as on a profile).
    pub discovered_incoming_location: Option<String>,
    pub discovered_outgoing_location: Option<String>,
    /// How the locations were found: `srv`, `autoconfig`, `autodiscover_v2`,
    /// `autodiscover_pox` or `autodiscover_soap`.
    pub discovered_source: Option<crate::DiscoverySource>,
    pub discovered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields a bulk edit (Change Multiple Records) may set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryChange {
    /// `Some(None)` clears the profile.
    pub profile_id: Option<Option<String>>,
    pub incoming_method: Option<DeliveryMethod>,
    pub outgoing_method: Option<DeliveryMethod>,
    pub act_method: Option<DeliveryMethod>,
}

/// The approval status a mailbox gets for a (new) address.
pub fn approval_for_address(email: Option<&str>) -> ApprovalStatus {
    match email {
        Some(_) => ApprovalStatus::Pending,
        None => ApprovalStatus::Empty,
    }
}

/// Who a new mailbox belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxOwner {
    pub org_id: String,
    pub owner_type: OwnerType,
    pub owner_id: String,
    pub name: String,
    pub email: Option<String>,
}

/// The mailbox that a new user or queue gets, with the organization's defaults.
pub fn new_mailbox(
    id: String,
    owner: MailboxOwner,
    settings: &EmailSettings,
    now: DateTime<Utc>,
) -> Mailbox {
    let MailboxOwner {
        org_id,
        owner_type,
        owner_id,
        name,
        email,
    } = owner;
    Mailbox {
        id,
        org_id,
        name,
        owner_type,
        owner_id,
        approval_status: approval_for_address(email.as_deref()),
        email_address: email,
        profile_id: settings.default_profile_id.clone(),
        incoming_method: settings.default_incoming_method,
        outgoing_method: settings.default_outgoing_method,
        act_method: settings.default_act_method,
        incoming_status: WorkloadStatus::NotRun,
        outgoing_status: WorkloadStatus::NotRun,
        act_status: WorkloadStatus::NotRun,
        incoming_enabled: false,
        outgoing_enabled: false,
        act_enabled: false,
        process_email_from: None,
        sync_with_this_org_only: false,
        track_sent_items: false,
        is_forward_mailbox: false,
        delete_after_processing: false,
        username: None,
        password_set: false,
        tested_at: None,
        discovered_incoming_location: None,
        discovered_outgoing_location: None,
        discovered_source: None,
        discovered_at: None,
        created_at: now,
        updated_at: now,
    }
}

impl Mailbox {
    /// Applies a delivery change. A workload whose profile or method changed must
    /// be tested and enabled again, so its status returns to `not_run` and it is
    /// disabled.
    pub fn apply_delivery_change(&mut self, change: &DeliveryChange) {
        let profile_changed = matches!(&change.profile_id, Some(p) if *p != self.profile_id);
        if let Some(p) = &change.profile_id {
            self.profile_id = p.clone();
        }
        let workloads = [
            (
                change.incoming_method,
                &mut self.incoming_method,
                &mut self.incoming_status,
                &mut self.incoming_enabled,
            ),
            (
                change.outgoing_method,
                &mut self.outgoing_method,
                &mut self.outgoing_status,
                &mut self.outgoing_enabled,
            ),
            (
                change.act_method,
                &mut self.act_method,
                &mut self.act_status,
                &mut self.act_enabled,
            ),
        ];
        for (new_method, method, status, enabled) in workloads {
            let method_changed = matches!(new_method, Some(m) if m != *method);
            if let Some(m) = new_method {
                *method = m;
            }
            if profile_changed || method_changed {
                *status = WorkloadStatus::NotRun;
                *enabled = false;
            }
        }
        if profile_changed {
            self.clear_discovered();
        }
    }

    /// Forgets the discovered locations: they belong to one profile and address.
    pub fn clear_discovered(&mut self) {
        self.discovered_incoming_location = None;
        self.discovered_outgoing_location = None;
        self.discovered_source = None;
        self.discovered_at = None;
    }

    /// Changes the address; a new address must be approved again.
    pub fn set_email_address(&mut self, email: Option<String>) {
        if email != self.email_address {
            self.approval_status = approval_for_address(email.as_deref());
            self.email_address = email;
            self.clear_discovered();
            self.incoming_enabled = false;
            self.outgoing_enabled = false;
            self.act_enabled = false;
        }
    }
}

/// Checks a mailbox against its profile's start date.
pub fn validate_mailbox(
    m: &Mailbox,
    profile_process_email_from: Option<DateTime<Utc>>,
) -> Validation {
    let mut errors = Vec::new();
    if let Some(e) = &m.email_address {
        check_email_address(&mut errors, "email_address", e);
    }
    if let (Some(mine), Some(profiles)) = (m.process_email_from, profile_process_email_from)
        && mine < profiles
    {
        errors.push(FieldError::new(
                "process_email_from",
                format!(
                    "process_email_from must not be earlier than the profile's ({}); choose that time or later",
                    profiles.to_rfc3339()
                ),
            ));
    }
    if m.is_forward_mailbox && m.owner_type != OwnerType::Queue {
        errors.push(FieldError::new(
            "is_forward_mailbox",
            "only a queue's mailbox can be a forward mailbox: a user's mailbox holds that user's own mail; create a queue for the forward mailbox",
        ));
    }
    if m.delete_after_processing && !m.is_forward_mailbox {
        errors.push(FieldError::new(
            "delete_after_processing",
            "delete_after_processing applies to forward mailboxes only; set is_forward_mailbox too, or leave it off",
        ));
    }
    errors
}

/// The mailbox fields that a user (not an administrator) may change on their own
/// mailbox: its delivery settings, never its profile, address or approval.
pub const USER_EDITABLE_MAILBOX_FIELDS: &[&str] = &[
    "incoming_method",
    "outgoing_method",
    "act_method",
    "process_email_from",
    "sync_with_this_org_only",
    "track_sent_items",
    "username",
    "password",
];

#[cfg(test)]
mod tests;
