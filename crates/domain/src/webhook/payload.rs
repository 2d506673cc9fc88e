//! What each event says: the Standard Webhooks envelope `{"type", "timestamp",
//! "data"}` around ids and the fields an integration acts on. Never a secret, and
//! never an email's body or attachments (read them with `GET .../emails/{id}`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::activity::Email;
use crate::alert::Alert;
use crate::{
    AlertScope, AlertSeverity, CorrelationMethod, EmailDirection, EmailStatus, RegardingType,
    WorkloadStatus,
};

/// A new event id, `msg_` and a UUID v7 (time-ordered); sent as `webhook-id`,
/// the same on every attempt, so that receivers can drop a repeat.
pub fn new_event_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// The JSON body of an event.
pub fn envelope<T: Serialize>(event_type: &str, timestamp: DateTime<Utc>, data: &T) -> String {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        r#type: &'a str,
        timestamp: String,
        data: &'a T,
    }
    serde_json::to_string(&Envelope {
        r#type: event_type,
        timestamp: timestamp.to_rfc3339_opts(SecondsFormat::Micros, true),
        data,
    })
    .unwrap_or_else(|e| format!(r#"{{"type":"{event_type}","error":"{e}"}}"#))
}

/// `email.tracked`, `email.sent`, `email.failed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmailEvent {
    pub org_id: String,
    pub email_id: String,
    pub mailbox_id: Option<String>,
    pub direction: EmailDirection,
    pub status: EmailStatus,
    pub subject: String,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub correlation_method: Option<CorrelationMethod>,
    pub regarding_type: Option<RegardingType>,
    pub regarding_id: Option<String>,
    /// Why a send failed.
    pub status_reason: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
}

impl From<&Email> for EmailEvent {
    fn from(e: &Email) -> Self {
        EmailEvent {
            org_id: e.org_id.clone(),
            email_id: e.id.clone(),
            mailbox_id: e.mailbox_id.clone(),
            direction: e.direction,
            status: e.status,
            subject: e.subject.clone(),
            message_id: e.message_id.clone(),
            in_reply_to: e.in_reply_to.clone(),
            correlation_method: e.correlation_method,
            regarding_type: e.regarding_type,
            regarding_id: e.regarding_id.clone(),
            status_reason: e.status_reason.clone(),
            sent_at: e.sent_at,
            received_at: e.received_at,
        }
    }
}

/// The statuses of a mailbox's three workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadStatuses {
    pub incoming: WorkloadStatus,
    pub outgoing: WorkloadStatus,
    pub act: WorkloadStatus,
}

/// `mailbox.status_changed`: one workload's status moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailboxStatusEvent {
    pub org_id: String,
    pub mailbox_id: String,
    pub mailbox_name: String,
    pub email_address: Option<String>,
    /// `incoming`, `outgoing` or `act`.
    pub workload: &'static str,
    pub status_before: WorkloadStatus,
    pub status_after: WorkloadStatus,
    /// What failed, when it is a failure.
    pub error: Option<String>,
}

/// The workloads whose status differs, as (workload, before, after), in the
/// order incoming, outgoing, ACT.
pub fn status_changes(
    before: WorkloadStatuses,
    after: WorkloadStatuses,
) -> Vec<(&'static str, WorkloadStatus, WorkloadStatus)> {
    [
        ("incoming", before.incoming, after.incoming),
        ("outgoing", before.outgoing, after.outgoing),
        ("act", before.act, after.act),
    ]
    .into_iter()
    .filter(|(_, b, a)| b != a)
    .collect()
}

/// `act.item_changed`: the ACT workload applied a change to an appointment,
/// contact or task — in the store (from the mail system) or on the mail system
/// (from the store) — or linked or unlinked one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActItemEvent {
    pub org_id: String,
    pub mailbox_id: String,
    /// `appointment`, `task` or `contact`.
    pub kind: String,
    /// The record, when there is one (not for an item deleted on the server only).
    pub record_id: Option<String>,
    /// The item on the mail system (a CalDAV/CardDAV href or a Graph id).
    pub server_id: Option<String>,
    /// The planner's action, e.g. `create_in_store`, `update_server`,
    /// `delete_in_store`, `unlink`, `conflict(merge)`.
    pub action: String,
    /// Why, in a sentence (the decision trail's reason).
    pub reason: String,
}

/// `alert.raised`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    pub org_id: String,
    pub alert_id: String,
    pub scope: AlertScope,
    pub severity: AlertSeverity,
    pub mailbox_id: Option<String>,
    pub profile_id: Option<String>,
    pub item_ref: Option<String>,
    pub message: String,
    pub fix: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Alert> for AlertEvent {
    fn from(a: &Alert) -> Self {
        AlertEvent {
            org_id: a.org_id.clone(),
            alert_id: a.id.clone(),
            scope: a.scope,
            severity: a.severity,
            mailbox_id: a.mailbox_id.clone(),
            profile_id: a.profile_id.clone(),
            item_ref: a.item_ref.clone(),
            message: a.message.clone(),
            fix: a.fix.clone(),
            created_at: a.created_at,
        }
    }
}

/// `webhook.test`: the ping an administrator sends to check a receiver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestEvent {
    pub org_id: String,
    pub subscription_id: String,
    pub message: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkloadStatus::*;

    #[test]
    fn only_changed_workloads_are_reported() {
        let s = |incoming, outgoing, act| WorkloadStatuses {
            incoming,
            outgoing,
            act,
        };
        let cases = [
            (s(NotRun, NotRun, NotRun), s(NotRun, NotRun, NotRun), vec![]),
            (
                s(NotRun, Failure, NotRun),
                s(Success, Success, NotRun),
                vec![
                    ("incoming", NotRun, Success),
                    ("outgoing", Failure, Success),
                ],
            ),
            (
                s(Success, Success, Success),
                s(Success, Success, Failure),
                vec![("act", Success, Failure)],
            ),
        ];
        for (before, after, expected) in cases {
            assert_eq!(
                status_changes(before, after),
                expected,
                "{before:?} -> {after:?}"
            );
        }
    }

    #[test]
    fn the_envelope() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T10:00:00.5Z")
            .unwrap()
            .to_utc();
        let body = envelope(
            "webhook.test",
            t,
            &TestEvent {
                org_id: "o".into(),
                subscription_id: "s".into(),
                message: "hello",
            },
        );
        assert_eq!(
            body,
            r#"{"type":"webhook.test","timestamp":"2026-03-01T10:00:00.500000Z","data":{"org_id":"o","subscription_id":"s","message":"hello"}}"#
        );
        let id = new_event_id();
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
    }
}
