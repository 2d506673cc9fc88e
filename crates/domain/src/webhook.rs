//! Webhooks for business apps: subscriptions and their validation, the events
//! they receive (`payload`), the Standard Webhooks signature (`signature`) and
//! the retry schedule of a delivery (`retry`). Pure: the store writes events, the
//! engine posts them.

pub mod payload;
pub mod retry;
pub mod signature;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::validation::check_max_chars;
use crate::{FieldError, Validation, WebhookDeliveryStatus, WebhookEventType};

/// The event type of the ping `POST .../webhooks/{id}/test` queues: sent to that
/// subscription only, whatever its event types.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// The longest URL accepted.
pub const MAX_URL_CHARS: usize = 2000;

/// One subscription of an organization: where its events go, and which.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookSubscription {
    pub id: String,
    pub org_id: String,
    /// The receiver's endpoint: `https://` (or `http://`) with a host.
    pub url: String,
    pub description: Option<String>,
    /// The events it receives, at least one.
    pub event_types: Vec<WebhookEventType>,
    /// A disabled subscription receives nothing (events are not queued for it).
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookSubscription {
    /// The event types as stored: their names separated by single spaces.
    pub fn event_types_text(&self) -> String {
        join_event_types(&self.event_types)
    }
}

/// One event for one subscription, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct WebhookDelivery {
    /// The event's id, sent as `webhook-id`.
    pub event_id: String,
    pub event_type: String,
    pub mailbox_id: Option<String>,
    pub status: WebhookDeliveryStatus,
    /// Attempts since the delivery was queued (or retried by hand).
    pub attempts: i64,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Every attempt, oldest first.
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub log: Vec<WebhookAttempt>,
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct WebhookAttempt {
    #[serde(skip)]
    pub event_id: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; absent when it could not be reached.
    pub status_code: Option<i64>,
    /// Why the attempt failed; absent when it succeeded.
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Event type names separated by single spaces (the stored form), sorted and
/// without duplicates.
pub fn join_event_types(types: &[WebhookEventType]) -> String {
    let mut types = types.to_vec();
    types.sort();
    types.dedup();
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads the stored form back; unknown names (from a newer version) are dropped.
pub fn split_event_types(text: &str) -> Vec<WebhookEventType> {
    text.split(' ').filter_map(|t| t.parse().ok()).collect()
}

/// Checks what an administrator can set on a subscription.
pub fn validate_subscription(s: &WebhookSubscription) -> Validation {
    let mut errors = Vec::new();
    if let Some(e) = check_url(&s.url) {
        errors.push(e);
    }
    if s.event_types.is_empty() {
        errors.push(FieldError::new(
            "event_types",
            format!(
                "event_types must list at least one of: {}",
                WebhookEventType::expected()
            ),
        ));
    }
    if let Some(d) = &s.description {
        check_max_chars(&mut errors, "description", d, 500);
    }
    errors
}

fn check_url(text: &str) -> Option<FieldError> {
    let bad = |why: &str| {
        Some(FieldError::new(
            "url",
            format!("url {why}, such as https://crm.example.org/hooks/mailbridge"),
        ))
    };
    if text.chars().count() > MAX_URL_CHARS {
        return bad(&format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let Ok(url) = url::Url::parse(text) else {
        return bad(&format!(
            "`{}` is not a URL; give an absolute http(s) URL",
            crate::location::shown_location(text)
        ));
    };
    if !matches!(url.scheme(), "https" | "http") {
        return bad(&format!("must use https or http, not {}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("must name a host");
    }
    if let Some(why) = url
        .host()
        .as_ref()
        .and_then(crate::destination::forbidden_host)
    {
        return bad(&format!(
            "names a forbidden address: {why}; give the receiver's own address"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // It would be stored and shown in clear; the signature authenticates us.
        return bad(
            "must not carry a user name or password (the signature authenticates mailbridge)",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(url: &str, types: &[WebhookEventType]) -> WebhookSubscription {
        let t = Utc::now();
        WebhookSubscription {
            id: "s".into(),
            org_id: "o".into(),
            url: url.into(),
            description: None,
            event_types: types.to_vec(),
            enabled: true,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn urls_and_event_types() {
        let one = &[WebhookEventType::EmailTracked][..];
        // (url, event types, the error's field and part of its message)
        type Case<'a> = (&'a str, &'a [WebhookEventType], Option<(&'a str, &'a str)>);
        let cases: [Case; 10] = [
            ("https://crm.example.org/hooks", one, None),
            ("http://127.0.0.1:8080/in", one, None),
            (
                "http://169.254.169.254/latest/meta-data/",
                one,
                Some(("url", "names a forbidden address: 169.254.169.254")),
            ),
            (
                "http://[fd00:ec2::254]/",
                one,
                Some(("url", "link-local or unspecified")),
            ),
            (
                "ftp://crm.example.org/",
                one,
                Some(("url", "must use https or http, not ftp")),
            ),
            ("crm.example.org/hooks", one, Some(("url", "is not a URL"))),
            ("https://", one, Some(("url", "is not a URL"))),
            (
                "https://u:p@crm.example.org/",
                one,
                Some(("url", "must not carry a user name")),
            ),
            (
                "https://crm.example.org/",
                &[],
                Some(("event_types", "at least one of: email.tracked")),
            ),
            (
                "mailto:a@b.org",
                one,
                Some(("url", "must use https or http")),
            ),
        ];
        for (url, types, expected) in cases {
            let errors = validate_subscription(&sub(url, types));
            match expected {
                None => assert!(errors.is_empty(), "{url}: {errors:?}"),
                Some((field, text)) => {
                    assert_eq!(errors.len(), 1, "{url}: {errors:?}");
                    assert_eq!(errors[0].field, field, "{url}");
                    assert!(
                        errors[0].message.contains(text),
                        "{url}: {}",
                        errors[0].message
                    );
                }
            }
        }
    }

    #[test]
    fn event_types_are_stored_sorted_once() {
        use WebhookEventType::*;
        let text = join_event_types(&[AlertRaised, EmailTracked, AlertRaised]);
        assert_eq!(text, "email.tracked alert.raised");
        assert_eq!(split_event_types(&text), [EmailTracked, AlertRaised]);
        assert_eq!(split_event_types("email.sent future.thing"), [EmailSent]);
    }
}
