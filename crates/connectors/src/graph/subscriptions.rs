//! Change notifications that wake a mailbox (learn.microsoft.com/graph/change-notifications-overview):
//! a subscription on a folder's messages, renewed before it expires (4,230 minutes
//! at most for mail in the limits this client keeps), and the notifications and
//! lifecycle events Graph posts, read and checked against the `clientState`. The
//! HTTP endpoint that receives them (and echoes the `validationToken` of the
//! validation handshake as `text/plain`) belongs to the http crate.

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use mailbridge_domain::error_model::SyncError;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{Body, segment};
use super::mail::GraphMailbox;

/// The longest lifetime asked for a message subscription, in minutes. Graph's
/// subscription documentation gave 4,230 minutes for mail (newer pages allow more
/// for basic notifications); asking for this works under both.
pub const MAX_MESSAGE_SUBSCRIPTION_MINUTES: i64 = 4230;

/// An active subscription.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub resource: String,
    pub expiration_date_time: DateTime<Utc>,
}

/// Whether a subscription expiring at `expiration` should be renewed now: when less
/// than `margin` is left.
pub fn renewal_due(expiration: DateTime<Utc>, now: DateTime<Utc>, margin: ChronoDuration) -> bool {
    expiration - now < margin
}

/// A lifecycle event (learn.microsoft.com/graph/change-notifications-lifecycle-events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// Renew (reauthorize) the subscription soon, or it is removed.
    ReauthorizationRequired,
    /// The subscription is gone: create it again.
    SubscriptionRemoved,
    /// Notifications were lost: read the mailbox by delta (polling does).
    Missed,
    Other(String),
}

/// One item of a notification post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A message was created, updated or deleted.
    Changed {
        subscription_id: String,
        change_type: String,
        /// e.g. `Users/{user-id}/Messages/{message-id}`.
        resource: String,
        /// Whether `clientState` matched the secret given when subscribing; a
        /// notification that does not match must be ignored.
        trusted: bool,
    },
    Lifecycle {
        subscription_id: String,
        event: LifecycleEvent,
        trusted: bool,
    },
}

/// Reads a notification post (`{"value": [...]}`), checking each item's
/// `clientState` against `client_state` (in constant time).
///
/// # Errors
/// What is wrong, in words.
pub fn parse_notifications(body: &[u8], client_state: &str) -> Result<Vec<Notification>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the notification is not JSON: {e}"))?;
    let items = v
        .get("value")
        .and_then(Value::as_array)
        .ok_or("the notification has no value array")?;
    let text = |item: &Value, k: &str| item.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    Ok(items
        .iter()
        .map(|item| {
            let trusted = constant_time_eq(
                text(item, "clientState").as_bytes(),
                client_state.as_bytes(),
            );
            let subscription_id = text(item, "subscriptionId");
            match item.get("lifecycleEvent").and_then(Value::as_str) {
                Some(event) => Notification::Lifecycle {
                    subscription_id,
                    event: match event {
                        "reauthorizationRequired" => LifecycleEvent::ReauthorizationRequired,
                        "subscriptionRemoved" => LifecycleEvent::SubscriptionRemoved,
                        "missed" => LifecycleEvent::Missed,
                        other => LifecycleEvent::Other(other.to_owned()),
                    },
                    trusted,
                },
                None => Notification::Changed {
                    subscription_id,
                    change_type: text(item, "changeType"),
                    resource: text(item, "resource"),
                    trusted,
                },
            }
        })
        .collect())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn expiry(now: DateTime<Utc>, minutes: i64) -> String {
    let minutes = minutes.clamp(1, MAX_MESSAGE_SUBSCRIPTION_MINUTES);
    (now + ChronoDuration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl GraphMailbox {
    /// Subscribes to created messages of a folder (id or well-known name). Graph first
    /// checks `notification_url` (and `lifecycle_url`) with the validation handshake.
    ///
    /// # Errors
    /// A classified [`SyncError`] (a failed validation is a 400, permanent).
    pub async fn subscribe(
        &self,
        folder_id: &str,
        notification_url: &str,
        lifecycle_url: Option<&str>,
        client_state: &str,
        minutes: i64,
    ) -> Result<Subscription, SyncError> {
        let mut body = json!({
            "changeType": "created",
            "notificationUrl": notification_url,
            "resource": format!("users/{}/mailFolders('{}')/messages", self.user(), folder_id),
            "expirationDateTime": expiry(Utc::now(), minutes),
            "clientState": client_state,
        });
        if let Some(url) = lifecycle_url {
            body["lifecycleNotificationUrl"] = json!(url);
        }
        self.subscription_call(
            Method::POST,
            "/subscriptions".to_owned(),
            Body::Json(body),
            "subscribe to new mail",
        )
        .await
    }

    /// Extends a subscription by `minutes` from now.
    ///
    /// # Errors
    /// A classified [`SyncError`] (a subscription gone is permanent for the mailbox).
    pub async fn renew_subscription(
        &self,
        id: &str,
        minutes: i64,
    ) -> Result<Subscription, SyncError> {
        let body = json!({ "expirationDateTime": expiry(Utc::now(), minutes) });
        self.subscription_call(
            Method::PATCH,
            format!("/subscriptions/{}", segment(id)),
            Body::Json(body),
            "renew a subscription",
        )
        .await
    }

    /// Ends a subscription.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn delete_subscription(&self, id: &str) -> Result<(), SyncError> {
        self.call(
            Method::DELETE,
            format!("/subscriptions/{}", segment(id)),
            Body::None,
            "end a subscription",
        )
        .await?;
        Ok(())
    }

    async fn subscription_call(
        &self,
        method: Method,
        target: String,
        body: Body,
        what: &str,
    ) -> Result<Subscription, SyncError> {
        let r = self.call(method, target, body, what).await?;
        serde_json::from_slice(&r.body).map_err(|e| {
            crate::errors::error(
                crate::errors::TRANSIENT,
                mailbridge_domain::error_model::ErrorScope::Mailbox,
                format!("Microsoft Graph answered a subscription unexpectedly: {e}"),
                "It is retried; report this if it persists",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_and_lifecycle_events_are_read_and_checked() {
        let body = br#"{"value":[
            {"subscriptionId":"s1","changeType":"created","resource":"Users/u/Messages/m","clientState":"secret","tenantId":"t"},
            {"subscriptionId":"s1","lifecycleEvent":"reauthorizationRequired","clientState":"secret"},
            {"subscriptionId":"s2","lifecycleEvent":"missed","clientState":"wrong"}]}"#;
        let got = parse_notifications(body, "secret").expect("notifications");
        assert_eq!(
            got,
            [
                Notification::Changed {
                    subscription_id: "s1".to_owned(),
                    change_type: "created".to_owned(),
                    resource: "Users/u/Messages/m".to_owned(),
                    trusted: true
                },
                Notification::Lifecycle {
                    subscription_id: "s1".to_owned(),
                    event: LifecycleEvent::ReauthorizationRequired,
                    trusted: true
                },
                Notification::Lifecycle {
                    subscription_id: "s2".to_owned(),
                    event: LifecycleEvent::Missed,
                    trusted: false
                },
            ]
        );
        assert!(parse_notifications(b"{}", "secret").is_err());
    }

    #[test]
    fn renewal_is_due_within_the_margin() {
        let now = Utc::now();
        let margin = ChronoDuration::hours(12);
        let cases = [
            (ChronoDuration::hours(48), false),
            (ChronoDuration::hours(13), false),
            (ChronoDuration::hours(11), true),
            (ChronoDuration::minutes(-5), true),
        ];
        for (left, due) in cases {
            assert_eq!(renewal_due(now + left, now, margin), due, "{left}");
        }
    }

    #[test]
    fn expirations_stay_within_the_mail_limit() {
        let now = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(expiry(now, 60), "2025-01-01T01:00:00Z");
        assert_eq!(expiry(now, 10_000), "2025-01-03T22:30:00Z");
        assert_eq!(expiry(now, 0), "2025-01-01T00:01:00Z");
    }
}
