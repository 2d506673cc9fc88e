//! `/api/v1/orgs/{org_id}/webhooks`: webhook subscriptions of business apps
//! (administrators only), their delivery log, a retry of a failed delivery and a
//! test ping. The signing secret is answered once, when it is made (creation,
//! rotation), and never again.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::webhook::{WebhookDelivery, WebhookSubscription, validate_subscription};
use mailbridge_domain::{WebhookDeliveryStatus, WebhookEventType};
use mailbridge_store::PageRequest;
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::List;
use crate::{ApiError, AppState};

/// A new subscription.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where events are posted: an https (or http) URL with a host.
    url: String,
    description: Option<String>,
    /// The events to receive, at least one.
    event_types: Vec<WebhookEventType>,
    /// Default true.
    enabled: Option<bool>,
}

/// A change to a subscription: absent fields are kept.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    event_types: Option<Vec<WebhookEventType>>,
    enabled: Option<bool>,
}

/// A subscription with its signing secret: the only answer that shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    subscription: WebhookSubscription,
    /// `whsec_...`: verify each request's `webhook-signature` with it (see
    /// docs/WEBHOOKS.md). Keep it now; it is not shown again.
    secret: String,
}

/// A new signing secret, in force at once; shown only in this answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    secret: String,
}

/// The test event queued.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestQueued {
    /// Its `webhook-id`; its delivery is in the log.
    event_id: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// The previous page's `next_cursor` (an event id).
    cursor: Option<String>,
    limit: Option<u32>,
    status: Option<WebhookDeliveryStatus>,
}

/// Checks paging parameters; the delivery log's cursor is an event id.
fn paging(
    cursor: Option<String>,
    limit: Option<u32>,
    events: bool,
) -> Result<PageRequest, ApiError> {
    if events && let Some(c) = &cursor {
        let ok = c
            .strip_prefix("msg_")
            .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(ApiError::field(
                "invalid_value",
                "cursor",
                "cursor must be a next_cursor value from a previous page",
            ));
        }
        return crate::list::page_request(None, limit).map(|p| PageRequest { after: cursor, ..p });
    }
    crate::list::page_request(cursor, limit)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks", tag = "webhooks", request_body = WebhookInput,
    responses((status = 201, body = WebhookCreated), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(i): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Create)
        .await?;
    let t = chrono::Utc::now();
    let sub = WebhookSubscription {
        id: new_id(),
        org_id,
        url: i.url,
        description: i.description,
        event_types: i.event_types,
        enabled: i.enabled.unwrap_or(true),
        created_at: t,
        updated_at: t,
    };
    ApiError::check(validate_subscription(&sub))?;
    let (subscription, secret) = s.store.create_webhook(&sub).await?;
    tracing::info!(webhook_id = %subscription.id, "webhook subscription created");
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            subscription,
            secret: secret.expose().to_owned(),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/webhooks", tag = "webhooks", params(ListParams),
    responses((status = 200, body = List<WebhookSubscription>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<WebhookSubscription>>, ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Read)
        .await?;
    let page = paging(q.cursor, q.limit, false)?;
    Ok(Json(s.store.list_webhooks(&org_id, &page).await?.into()))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/webhooks/{id}", tag = "webhooks",
    responses((status = 200, body = WebhookSubscription), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<WebhookSubscription>, ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Read)
        .await?;
    Ok(Json(s.store.get_webhook(&org_id, &id).await?))
}

/// Changes a subscription; events already queued keep their deliveries. A
/// disabled subscription is paused: nothing new is queued for it and what is
/// queued waits until it is enabled again.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/webhooks/{id}", tag = "webhooks", request_body = WebhookPatch,
    responses((status = 200, body = WebhookSubscription), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(i): ApiJson<WebhookPatch>,
) -> Result<Json<WebhookSubscription>, ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Update)
        .await?;
    let mut sub = s.store.get_webhook(&org_id, &id).await?;
    set(&mut sub.url, i.url);
    set(&mut sub.description, i.description);
    set(&mut sub.event_types, i.event_types);
    set(&mut sub.enabled, i.enabled);
    ApiError::check(validate_subscription(&sub))?;
    Ok(Json(s.store.update_webhook(&sub).await?))
}

/// Deletes a subscription, its queued deliveries and its delivery log.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/webhooks/{id}", tag = "webhooks",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Delete)
        .await?;
    s.store.delete_webhook(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the signing secret at once: requests from now on are signed with
/// the new one only.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks/{id}/rotate-secret", tag = "webhooks",
    responses((status = 200, body = RotatedSecret), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<RotatedSecret>, ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Update)
        .await?;
    let secret = s.store.rotate_webhook_secret(&org_id, &id).await?;
    tracing::info!(webhook_id = %id, "webhook secret rotated");
    Ok(Json(RotatedSecret {
        secret: secret.expose().to_owned(),
    }))
}

/// The delivery log: each event queued for the subscription, newest first,
/// with every attempt and the receiver's answer.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/webhooks/{id}/deliveries", tag = "webhooks", params(DeliveryParams),
    responses((status = 200, body = List<WebhookDelivery>), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DeliveryParams>,
) -> Result<Json<List<WebhookDelivery>>, ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Read)
        .await?;
    let page = paging(q.cursor, q.limit, true)?;
    let log = s
        .store
        .list_webhook_deliveries(&org_id, &id, q.status, None, &page)
        .await?;
    Ok(Json(log.into()))
}

/// Queues a failed delivery again, due at once, with the whole retry schedule
/// ahead of it.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks/{id}/deliveries/{event_id}/retry", tag = "webhooks",
    responses((status = 200, body = WebhookDelivery), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id, event_id)): Path<(String, String, String)>,
) -> Result<Json<WebhookDelivery>, ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Update)
        .await?;
    Ok(Json(
        s.store
            .retry_webhook_delivery(&org_id, &id, &event_id)
            .await?,
    ))
}

/// Queues a `webhook.test` event for this subscription only.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks/{id}/test", tag = "webhooks",
    responses((status = 202, body = TestQueued), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn test(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<TestQueued>), ApiError> {
    auth.check(&s, &org_id, Resource::Webhooks, Action::Update)
        .await?;
    let event_id = s.store.queue_webhook_test(&org_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { event_id })))
}
