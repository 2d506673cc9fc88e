//! Change notifications (learn.microsoft.com/graph/change-notifications-delivery-webhooks):
//! `POST /subscriptions` validates the notification URL first (a POST with
//! `?validationToken=` that must echo the token as `text/plain` with 200 within
//! 10 s), refuses an expiration beyond the resource's limit, and then posts
//! `{"value": [...]}` for each created, updated or deleted message of the resource;
//! `PATCH` renews, `DELETE` ends. Lifecycle events (`reauthorizationRequired`,
//! `subscriptionRemoved`, `missed`) go to `lifecycleNotificationUrl` on demand.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::Shared;
use super::auth::{Need, authorize};
use super::errors::{bad_request, graph_error, item_not_found};
use super::state::Subscription;

/// The users and folder a subscription resource names: `users/{u}/messages`,
/// `users/{u}/mailFolders('{f}')/messages` or `users/{u}/mailFolders/{f}/messages`.
pub(crate) fn parse_resource(resource: &str) -> Option<(String, Option<String>)> {
    let r = resource.trim_start_matches('/');
    let (head, rest) = r.split_once('/')?;
    if !head.eq_ignore_ascii_case("users") {
        return None;
    }
    let (user, rest) = rest.split_once('/')?;
    if rest.eq_ignore_ascii_case("messages") {
        return Some((user.to_owned(), None));
    }
    let folder_part = rest
        .strip_suffix("/messages")
        .or_else(|| rest.strip_suffix("/Messages"))?;
    let folder = if let Some(inner) = folder_part
        .strip_prefix("mailFolders('")
        .or_else(|| folder_part.strip_prefix("MailFolders('"))
    {
        inner.strip_suffix("')")?
    } else {
        folder_part
            .strip_prefix("mailFolders/")
            .or_else(|| folder_part.strip_prefix("MailFolders/"))?
    };
    Some((user.to_owned(), Some(folder.to_owned())))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn to_json(s: &Subscription) -> Value {
    json!({
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.app_id,
        "changeType": s.change_type,
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": time(s.expiration),
        "creatorId": s.user_id,
    })
}

/// Checks an expiration against the limit: in the future and at most the limit away.
fn check_expiration(shared: &Shared, value: Option<&Value>) -> Result<DateTime<Utc>, Response> {
    let max = shared.lock().subscription_max_minutes;
    let expiration = value
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            bad_request(
                "ExtensionError",
                "expirationDateTime is required and must be a date and time.",
            )
        })?;
    let now = Utc::now();
    if expiration <= now {
        return Err(bad_request(
            "ExtensionError",
            "Subscription expiration must be in the future.",
        ));
    }
    if expiration > now + chrono::Duration::minutes(max) {
        return Err(bad_request(
            "ExtensionError",
            &format!("Subscription expiration can only be {max} minutes in the future."),
        ));
    }
    Ok(expiration)
}

/// The validation handshake: the endpoint must echo the token with 200.
async fn validate(shared: &Shared, url: &str) -> bool {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let Ok(mut target) = reqwest::Url::parse(url) else {
        return false;
    };
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let sent = shared
        .http
        .post(target)
        .header("content-type", "text/plain; charset=utf-8")
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(r) if r.status() == StatusCode::OK => r.text().await.is_ok_and(|body| body == token),
        _ => false,
    }
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authorize(&shared.check, &headers, Need::Read) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("BadRequest", "Unable to read JSON request payload.");
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(resource), Some(change_type), Some(notification_url)) = (
        text("resource"),
        text("changeType"),
        text("notificationUrl"),
    ) else {
        return bad_request(
            "InvalidRequest",
            "resource, changeType and notificationUrl are required.",
        );
    };
    let Some((user, folder)) = parse_resource(&resource) else {
        return bad_request(
            "InvalidRequest",
            "The resource is not a supported message resource.",
        );
    };
    let expiration = match check_expiration(&shared, body.get("expirationDateTime")) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let (user_id, folder_id) = {
        let st = shared.lock();
        let Some(uid) = st.user_key(&user) else {
            return item_not_found();
        };
        let fid = match &folder {
            Some(f) => match st.users[&uid].folder_key(f) {
                Some(fid) => Some(fid),
                None => return item_not_found(),
            },
            None => None,
        };
        (uid, fid)
    };
    let lifecycle_url = text("lifecycleNotificationUrl");
    for url in std::iter::once(&notification_url).chain(lifecycle_url.as_ref()) {
        if !validate(&shared, url).await {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
            );
        }
    }
    let mut st = shared.lock();
    let id = uuid::Uuid::new_v4().to_string();
    let subscription = Subscription {
        id: id.clone(),
        resource,
        user_id,
        folder_id,
        change_type,
        notification_url,
        lifecycle_url,
        client_state: text("clientState"),
        expiration,
        app_id: caller.app_id,
        tenant_id: caller.tenant,
    };
    let answer = to_json(&subscription);
    st.subscriptions.insert(id, subscription);
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

pub(crate) async fn renew(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Read) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("BadRequest", "Unable to read JSON request payload.");
    };
    let expiration = match check_expiration(&shared, body.get("expirationDateTime")) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mut st = shared.lock();
    match st.subscriptions.get_mut(&id) {
        Some(s) => {
            s.expiration = expiration;
            axum::Json(to_json(s)).into_response()
        }
        None => graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The object was not found.",
        ),
    }
}

pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Read) {
        return r;
    }
    match shared.lock().subscriptions.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The object was not found.",
        ),
    }
}

/// The payload of one change notification (basic, without resource data).
pub(crate) fn change_payload(
    s: &Subscription,
    change_type: &str,
    user_id: &str,
    message_id: &str,
) -> Value {
    let resource = format!("Users/{user_id}/Messages/{message_id}");
    json!({ "value": [{
        "subscriptionId": s.id,
        "subscriptionExpirationDateTime": time(s.expiration),
        "changeType": change_type,
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Message",
            "@odata.id": resource,
            "id": message_id,
        },
        "clientState": s.client_state,
        "tenantId": s.tenant_id,
    }]})
}

/// The payload of a lifecycle event.
pub(crate) fn lifecycle_payload(s: &Subscription, event: &str) -> Value {
    json!({ "value": [{
        "subscriptionId": s.id,
        "subscriptionExpirationDateTime": time(s.expiration),
        "lifecycleEvent": event,
        "clientState": s.client_state,
        "tenantId": s.tenant_id,
        "resource": s.resource,
    }]})
}
