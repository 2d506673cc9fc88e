//! Server-side synchronization of a mailbox through the API: its decision trail,
//! its tracked folders, Test & Enable, and Test Connection of a profile.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_connectors::{TestStep, imap_test, smtp_test};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::job::Job;
use mailbridge_domain::{JobKind, RegardingType};
use mailbridge_engine::MailboxContext;
use mailbridge_store::{Decision, Filter, TrackedFolder};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionParams {
    cursor: Option<String>,
    limit: Option<u32>,
    /// `tracked`, `linked`, `skipped`, `retrying` or `failed`.
    outcome: Option<String>,
    /// The rule that decided, e.g. `not_a_reply`.
    rule: Option<String>,
    folder: Option<String>,
    /// With or without angle brackets.
    message_id: Option<String>,
    /// `oldest_first` (the default) or `newest_first`.
    order: Option<crate::routes::monitoring::Order>,
}

/// Every message the engine looked at in this mailbox, with what it decided and
/// why: tracked or not, by which rule, which correlation.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/messages", tag = "mailboxes", params(DecisionParams),
    responses((status = 200, body = List<Decision>), (status = 404, body = ErrorBody)))]
pub async fn messages(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DecisionParams>,
) -> Result<Json<List<Decision>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    crate::routes::mailboxes::visible(&s, &scope, &id).await?;
    let page = page_request(q.cursor, q.limit)?;
    let eq = [
        ("t.mailbox_id", Some(id)),
        ("t.outcome", q.outcome),
        ("t.rule", q.rule),
        ("t.folder", q.folder),
        (
            "t.message_id",
            q.message_id
                .map(|m| mailbridge_domain::activity::normalize_message_id(&m)),
        ),
    ];
    let filters: Vec<Filter> = eq
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| Filter::Eq(c, v)))
        .collect();
    let page = match q.order.unwrap_or_default() {
        crate::routes::monitoring::Order::OldestFirst => {
            s.store.list_decisions(&org_id, &filters, &page).await?
        }
        crate::routes::monitoring::Order::NewestFirst => {
            s.store
                .list_decisions_newest_first(&org_id, &filters, &page)
                .await?
        }
    };
    Ok(Json(page.into()))
}

/// A folder to track to a record.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackedFolderInput {
    /// The folder's full IMAP name, e.g. `Customers/Fabrikam`.
    folder: String,
    regarding_type: RegardingType,
    regarding_id: String,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/tracked-folders", tag = "mailboxes",
    responses((status = 200, body = List<TrackedFolder>), (status = 404, body = ErrorBody)))]
pub async fn list_tracked_folders(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<List<TrackedFolder>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    crate::routes::mailboxes::visible(&s, &scope, &id).await?;
    Ok(Json(List::of(s.store.tracked_folders(&org_id, &id).await?)))
}

/// Folder-level tracking: mail put into the folder is tracked and regards the record.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/tracked-folders", tag = "mailboxes",
    request_body = TrackedFolderInput,
    responses((status = 201, body = TrackedFolder), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_tracked_folder(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(i): ApiJson<TrackedFolderInput>,
) -> Result<(StatusCode, Json<TrackedFolder>), ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Update)
        .await?;
    crate::routes::mailboxes::visible(&s, &scope, &id).await?;
    let folder = i.folder.trim();
    if folder.is_empty() || folder.eq_ignore_ascii_case("INBOX") {
        return Err(ApiError::field(
            "invalid_value",
            "folder",
            "name a folder other than the Inbox, e.g. Customers/Fabrikam",
        ));
    }
    let f = s
        .store
        .add_tracked_folder(&org_id, &id, folder, i.regarding_type, &i.regarding_id)
        .await?;
    Ok((StatusCode::CREATED, Json(f)))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/tracked-folders/{folder_id}", tag = "mailboxes",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_tracked_folder(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id, folder_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Update)
        .await?;
    crate::routes::mailboxes::visible(&s, &scope, &id).await?;
    s.store
        .delete_tracked_folder(&org_id, &id, &folder_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The mailboxes to test and enable: listed, or every mailbox of a profile.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestAndEnableInput {
    #[serde(default)]
    ids: Vec<String>,
    profile_id: Option<String>,
}

/// Test & Enable as a background job; follow its progress in `jobs`.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/mailboxes/test-and-enable", tag = "mailboxes",
    request_body = TestAndEnableInput,
    responses((status = 202, body = Job), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn test_and_enable(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(i): ApiJson<TestAndEnableInput>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Jobs, Action::Create)
        .await?;
    let job = crate::routes::jobs::queue(
        &s,
        &scope,
        org_id,
        JobKind::TestAndEnable,
        "ids",
        i.ids,
        i.profile_id,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Which mailbox's credentials Test Connection signs in with.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestConnectionInput {
    /// A mailbox of the profile; the profile's first mailbox when absent.
    mailbox_id: Option<String>,
}

/// One step of a connection test.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StepView {
    /// `resolve`, `connect`, `tls`, `authenticate`, `open_mailbox`.
    name: String,
    passed: bool,
    detail: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DirectionResult {
    passed: bool,
    steps: Vec<StepView>,
    /// What failed and how to fix it.
    error: Option<String>,
}

/// The result of Test Connection.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestConnectionResult {
    mailbox_id: String,
    incoming: DirectionResult,
    outgoing: DirectionResult,
}

fn steps(list: Vec<TestStep>) -> Vec<StepView> {
    list.into_iter()
        .map(|s| StepView {
            name: s.name.to_owned(),
            passed: s.passed,
            detail: s.detail,
        })
        .collect()
}

fn failed(e: &mailbridge_domain::error_model::SyncError) -> Option<String> {
    Some(match &e.fix {
        Some(fix) => format!("{} ({fix})", e.message),
        None => e.message.clone(),
    })
}

/// Tests the profile now, step by step, without enabling anything.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/email-server-profiles/{id}/test-connection", tag = "email-server-profiles",
    request_body = TestConnectionInput,
    responses((status = 200, body = TestConnectionResult), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn test_connection(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(i): ApiJson<TestConnectionInput>,
) -> Result<Json<TestConnectionResult>, ApiError> {
    auth.check(&s, &org_id, Resource::Profiles, Action::Update)
        .await?;
    s.store.get_profile(&org_id, &id).await?;
    let mailbox_id = match i.mailbox_id {
        Some(m) => m,
        None => s
            .store
            .mailbox_ids_of_profile(&org_id, &id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ApiError::field(
                    "missing_field",
                    "mailbox_id",
                    "the profile has no mailboxes; give mailbox_id of a mailbox to sign in as",
                )
            })?,
    };
    let mut ctx = MailboxContext::load(&s.store, &org_id, &mailbox_id)
        .await
        .map_err(|e| ApiError::field("invalid_value", "mailbox_id", e.message))?;
    if ctx.profile.id != id {
        // Test this profile with that mailbox's credentials.
        ctx.profile = s.store.get_profile(&org_id, &id).await?;
    }
    // A profile with auto_discover: look the mailbox's servers up first (and keep
    // what was found); a failure is each direction's error.
    if let Err(e) = ctx.discover(&s.store, &s.engine, true).await {
        let failure = || DirectionResult {
            passed: false,
            steps: Vec::new(),
            error: failed(&e),
        };
        return Ok(Json(TestConnectionResult {
            mailbox_id,
            incoming: failure(),
            outgoing: failure(),
        }));
    }
    let incoming = match ctx.imap(&s.store, &s.engine).await {
        Ok(cfg) => {
            let (list, result) = imap_test(&cfg).await;
            DirectionResult {
                passed: result.is_ok(),
                steps: steps(list),
                error: result.err().as_ref().and_then(failed),
            }
        }
        Err(e) => DirectionResult {
            passed: false,
            steps: Vec::new(),
            error: failed(&e),
        },
    };
    let outgoing = match ctx.smtp(&s.store, &s.engine).await {
        Ok(cfg) => {
            let mut list = Vec::new();
            let result = smtp_test(&cfg, &mut list).await;
            DirectionResult {
                passed: result.is_ok(),
                steps: steps(list),
                error: result.err().as_ref().and_then(failed),
            }
        }
        Err(e) => DirectionResult {
            passed: false,
            steps: Vec::new(),
            error: failed(&e),
        },
    };
    Ok(Json(TestConnectionResult {
        mailbox_id,
        incoming,
        outgoing,
    }))
}
