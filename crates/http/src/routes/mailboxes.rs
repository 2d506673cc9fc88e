//! `/api/v1/orgs/{org_id}/mailboxes`: each user's and queue's connection to their
//! mailbox. Mailboxes are created and deleted with their owner. Users see and
//! change only their own mailbox's delivery settings; approving addresses takes
//! the approver role.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::mailbox::{DeliveryChange, Mailbox, USER_EDITABLE_MAILBOX_FIELDS};
use mailbridge_domain::secret::Secret;
use mailbridge_domain::{ApprovalStatus, DeliveryMethod, OwnerType, WorkloadStatus};
use mailbridge_store::{Filter, MailboxViewCounts, mailbox_view_filter};
use serde::Deserialize;

use crate::auth::{Auth, Scope};
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of one mailbox that can be written. The address follows the owner's.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxInput {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    profile_id: Option<Option<String>>,
    incoming_method: Option<DeliveryMethod>,
    outgoing_method: Option<DeliveryMethod>,
    act_method: Option<DeliveryMethod>,
    /// Not earlier than the profile's.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    process_email_from: Option<Option<DateTime<Utc>>>,
    sync_with_this_org_only: Option<bool>,
    /// Also track mail in the Sent folder.
    track_sent_items: Option<bool>,
    /// A forward mailbox (a queue's only): copies forwarded by many users, each
    /// tracked as its original recipient's.
    is_forward_mailbox: Option<bool>,
    /// Delete a forward mailbox's messages once processed (forward mailboxes only).
    delete_after_processing: Option<bool>,
    /// The mailbox's own sign-in name, for profiles that take credentials from mailboxes.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    username: Option<Option<String>>,
    /// Write-only.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<Option<Secret>>,
}

impl MailboxInput {
    /// The names of the fields present in the input.
    fn present(&self) -> Vec<&'static str> {
        let fields = [
            ("profile_id", self.profile_id.is_some()),
            ("incoming_method", self.incoming_method.is_some()),
            ("outgoing_method", self.outgoing_method.is_some()),
            ("act_method", self.act_method.is_some()),
            ("process_email_from", self.process_email_from.is_some()),
            (
                "sync_with_this_org_only",
                self.sync_with_this_org_only.is_some(),
            ),
            ("track_sent_items", self.track_sent_items.is_some()),
            ("is_forward_mailbox", self.is_forward_mailbox.is_some()),
            (
                "delete_after_processing",
                self.delete_after_processing.is_some(),
            ),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
        ];
        fields
            .into_iter()
            .filter(|(_, p)| *p)
            .map(|(f, _)| f)
            .collect()
    }
}

/// Change Multiple Records: the mailboxes and the fields to set on all of them.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkMailboxInput {
    ids: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    profile_id: Option<Option<String>>,
    incoming_method: Option<DeliveryMethod>,
    outgoing_method: Option<DeliveryMethod>,
    act_method: Option<DeliveryMethod>,
}

/// The mailboxes to approve or reject.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxIds {
    ids: Vec<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    profile_id: Option<String>,
    owner_type: Option<OwnerType>,
    approval_status: Option<ApprovalStatus>,
    incoming_status: Option<WorkloadStatus>,
    outgoing_status: Option<WorkloadStatus>,
    act_status: Option<WorkloadStatus>,
    /// Exact address, case-insensitive.
    email_address: Option<String>,
    /// Part of the name or address.
    search: Option<String>,
    /// A view of the Mailboxes grid; `all` when absent.
    view: Option<MailboxView>,
}

/// The views of the Mailboxes grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailboxView {
    All,
    /// At least one workload enabled and none failed.
    Active,
    /// At least one workload failed (incoming, outgoing or ACT status `failure`).
    Failed,
    /// The address waits for an approver.
    PendingApproval,
}

impl MailboxView {
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxView::All => "all",
            MailboxView::Active => "active",
            MailboxView::Failed => "failed",
            MailboxView::PendingApproval => "pending_approval",
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CountParams {
    profile_id: Option<String>,
    /// Part of the name or address.
    search: Option<String>,
}

fn own_filters(scope: &Scope) -> Vec<Filter> {
    match (scope.own_only(), scope.user_id()) {
        (true, Some(user)) => vec![
            Filter::Eq("t.owner_type", OwnerType::User.as_str().to_owned()),
            Filter::Eq("t.owner_id", user.to_owned()),
        ],
        _ => Vec::new(),
    }
}

/// Reads a mailbox the caller may see; another user's is a 404.
pub(crate) async fn visible(s: &AppState, scope: &Scope, id: &str) -> Result<Mailbox, ApiError> {
    let m = s.store.get_mailbox(&scope.org_id, id).await?;
    if scope.own_only()
        && !(m.owner_type == OwnerType::User && Some(m.owner_id.as_str()) == scope.user_id())
    {
        return Err(ApiError::not_found());
    }
    Ok(m)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes", tag = "mailboxes", params(ListParams),
    responses((status = 200, body = List<Mailbox>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Mailbox>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let mut filters = own_filters(&scope);
    let eq = [
        ("t.profile_id", q.profile_id),
        ("t.owner_type", q.owner_type.map(|v| v.as_str().to_owned())),
        (
            "t.approval_status",
            q.approval_status.map(|v| v.as_str().to_owned()),
        ),
        (
            "t.incoming_status",
            q.incoming_status.map(|v| v.as_str().to_owned()),
        ),
        (
            "t.outgoing_status",
            q.outgoing_status.map(|v| v.as_str().to_owned()),
        ),
        ("t.act_status", q.act_status.map(|v| v.as_str().to_owned())),
    ];
    filters.extend(
        eq.into_iter()
            .filter_map(|(col, v)| v.map(|v| Filter::Eq(col, v))),
    );
    if let Some(e) = q.email_address {
        filters.push(Filter::EqIgnoreCase("t.email_address", e));
    }
    if let Some(text) = q.search.filter(|t| !t.trim().is_empty()) {
        filters.push(Filter::Search(
            &["t.name", "t.email_address"],
            text.trim().to_owned(),
        ));
    }
    if let Some(f) = q.view.and_then(|v| mailbox_view_filter(v.as_str())) {
        filters.push(f);
    }
    Ok(Json(
        s.store
            .list_mailboxes(&org_id, &filters, &page)
            .await?
            .into(),
    ))
}

/// How many mailboxes each view of the Mailboxes grid holds (`all`, `active`,
/// `failed`, `pending_approval`), among those matching the search.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes/counts", tag = "mailboxes", params(CountParams),
    responses((status = 200, body = MailboxViewCounts), (status = 404, body = ErrorBody)))]
pub async fn counts(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<CountParams>,
) -> Result<Json<MailboxViewCounts>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    let mut filters = own_filters(&scope);
    if let Some(p) = q.profile_id {
        filters.push(Filter::Eq("t.profile_id", p));
    }
    if let Some(text) = q.search.filter(|t| !t.trim().is_empty()) {
        filters.push(Filter::Search(
            &["t.name", "t.email_address"],
            text.trim().to_owned(),
        ));
    }
    Ok(Json(s.store.mailbox_view_counts(&org_id, &filters).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes/{id}", tag = "mailboxes",
    responses((status = 200, body = Mailbox), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<Mailbox>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    Ok(Json(visible(&s, &scope, &id).await?))
}

/// Changing the profile or a delivery method returns that workload to `not_run`
/// and disables it until Test & Enable passes again.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/mailboxes/{id}", tag = "mailboxes", request_body = MailboxInput,
    responses((status = 200, body = Mailbox), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<MailboxInput>,
) -> Result<Json<Mailbox>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Update)
        .await?;
    let mut m = visible(&s, &scope, &id).await?;
    if scope.own_only()
        && let Some(field) = input
            .present()
            .into_iter()
            .find(|f| !USER_EDITABLE_MAILBOX_FIELDS.contains(f))
    {
        let mut e = ApiError::forbidden(format!(
            "you may change only the delivery settings of your own mailbox; {field} is set by an administrator"
        ));
        e.field = Some(field.to_owned());
        return Err(e);
    }
    m.apply_delivery_change(&DeliveryChange {
        profile_id: input.profile_id,
        incoming_method: input.incoming_method,
        outgoing_method: input.outgoing_method,
        act_method: input.act_method,
    });
    set(&mut m.process_email_from, input.process_email_from);
    set(
        &mut m.sync_with_this_org_only,
        input.sync_with_this_org_only,
    );
    set(&mut m.track_sent_items, input.track_sent_items);
    set(&mut m.is_forward_mailbox, input.is_forward_mailbox);
    set(
        &mut m.delete_after_processing,
        input.delete_after_processing,
    );
    set(&mut m.username, input.username);
    Ok(Json(s.store.update_mailbox(&m, input.password).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/mailboxes", tag = "mailboxes", request_body = BulkMailboxInput,
    responses((status = 200, body = List<Mailbox>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn bulk_update(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<BulkMailboxInput>,
) -> Result<Json<List<Mailbox>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Update)
        .await?;
    if scope.own_only() {
        return Err(ApiError::forbidden(
            "changing many mailboxes at once takes the org_admin role",
        ));
    }
    let change = DeliveryChange {
        profile_id: input.profile_id,
        incoming_method: input.incoming_method,
        outgoing_method: input.outgoing_method,
        act_method: input.act_method,
    };
    if change == DeliveryChange::default() {
        return Err(ApiError::field(
            "missing_field",
            "profile_id",
            "name at least one field to set: profile_id, incoming_method, outgoing_method or act_method",
        ));
    }
    let items = s
        .store
        .bulk_update_mailboxes(&org_id, &input.ids, &change)
        .await?;
    Ok(Json(List::of(items)))
}

/// Sets the approval status of the listed mailboxes (the approver privilege).
async fn decide(
    s: AppState,
    auth: Auth,
    org_id: String,
    ids: Vec<String>,
    status: ApprovalStatus,
) -> Result<Json<List<Mailbox>>, ApiError> {
    auth.check(&s, &org_id, Resource::Mailboxes, Action::Approve)
        .await?;
    let items = s.store.set_approval(&org_id, &ids, status).await?;
    Ok(Json(List::of(items)))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/mailboxes/approve", tag = "mailboxes", request_body = MailboxIds,
    responses((status = 200, body = List<Mailbox>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn approve(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<MailboxIds>,
) -> Result<Json<List<Mailbox>>, ApiError> {
    decide(s, auth, org_id, input.ids, ApprovalStatus::Approved).await
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/mailboxes/reject", tag = "mailboxes", request_body = MailboxIds,
    responses((status = 200, body = List<Mailbox>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reject(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<MailboxIds>,
) -> Result<Json<List<Mailbox>>, ApiError> {
    decide(s, auth, org_id, input.ids, ApprovalStatus::Rejected).await
}

/// Apply Default Settings: sets the organization's default profile and delivery
/// methods on the listed mailboxes (in one transaction).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/mailboxes/apply-default-settings", tag = "mailboxes", request_body = MailboxIds,
    responses((status = 200, body = List<Mailbox>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply_default_settings(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<MailboxIds>,
) -> Result<Json<List<Mailbox>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Update)
        .await?;
    if scope.own_only() {
        return Err(ApiError::forbidden(
            "applying the default settings takes the org_admin role",
        ));
    }
    let d = s.store.get_email_settings(&org_id).await?;
    let change = DeliveryChange {
        profile_id: Some(d.default_profile_id),
        incoming_method: Some(d.default_incoming_method),
        outgoing_method: Some(d.default_outgoing_method),
        act_method: Some(d.default_act_method),
    };
    Ok(Json(List::of(
        s.store
            .bulk_update_mailboxes(&org_id, &input.ids, &change)
            .await?,
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActTrailParams {
    cursor: Option<String>,
    limit: Option<u32>,
    /// `appointment`, `task` or `contact`.
    #[param(value_type = Option<String>)]
    kind: Option<mailbridge_domain::act::ActKind>,
    /// The record the decisions are about.
    record_id: Option<String>,
    /// `done`, `skipped` or `failed`.
    outcome: Option<String>,
}

/// The ACT decision trail of a mailbox, newest first: every action the sync chose
/// for an appointment, task or contact, why, and how it went.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/act-decisions", tag = "mailboxes",
    params(ActTrailParams),
    responses((status = 200, body = List<mailbridge_store::ActDecision>), (status = 404, body = ErrorBody)))]
pub async fn act_decisions(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ActTrailParams>,
) -> Result<Json<List<mailbridge_store::ActDecision>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    visible(&s, &scope, &id).await?;
    let page = page_request(q.cursor, q.limit)?;
    let filters = act_filters(id, q.kind, q.record_id, q.outcome);
    Ok(Json(
        s.store
            .list_act_decisions(&org_id, &filters, &page)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActLinkParams {
    cursor: Option<String>,
    limit: Option<u32>,
    /// `appointment`, `task` or `contact`.
    #[param(value_type = Option<String>)]
    kind: Option<mailbridge_domain::act::ActKind>,
    record_id: Option<String>,
    /// Only links whose last write failed.
    failing: Option<bool>,
}

/// The mailbox's ACT links: which record is synced to which server item, the
/// versions both sides had at the last sync, and the last error of each.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/act-links", tag = "mailboxes",
    params(ActLinkParams),
    responses((status = 200, body = List<mailbridge_store::ActLink>), (status = 404, body = ErrorBody)))]
pub async fn act_links(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ActLinkParams>,
) -> Result<Json<List<mailbridge_store::ActLink>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    visible(&s, &scope, &id).await?;
    let page = page_request(q.cursor, q.limit)?;
    let mut filters = act_filters(id, q.kind, q.record_id, None);
    match q.failing {
        Some(true) => filters.push(Filter::Sql("t.last_error IS NOT NULL")),
        Some(false) => filters.push(Filter::Sql("t.last_error IS NULL")),
        None => {}
    }
    Ok(Json(
        s.store
            .list_act_links(&org_id, &filters, &page)
            .await?
            .into(),
    ))
}

fn act_filters(
    mailbox_id: String,
    kind: Option<mailbridge_domain::act::ActKind>,
    record_id: Option<String>,
    outcome: Option<String>,
) -> Vec<Filter> {
    let eq = [
        ("t.mailbox_id", Some(mailbox_id)),
        ("t.kind", kind.map(|k| k.as_str().to_owned())),
        ("t.record_id", record_id),
        ("t.outcome", outcome),
    ];
    eq.into_iter()
        .filter_map(|(c, v)| v.map(|v| Filter::Eq(c, v)))
        .collect()
}
