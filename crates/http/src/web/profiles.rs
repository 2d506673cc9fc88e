//! Email Server Profiles: the list, the record form (new and edit, every field of
//! the API's profile input in Dynamics' sections), Test Connection with its steps,
//! Test & Enable Mailboxes for the profile, and delete with a confirmation.
//!
//! Everything goes through the REST API, so the form shows the API's own
//! validation messages next to its fields.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use mailbridge_domain::ServerType;
use mailbridge_domain::profile::ProfileSettings;
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::api::ApiFailure;
use super::error::{WebError, see_other};
use super::form_values::{Field, Kind, Values, conditions, from_json, parse_form, shown, to_json};
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/profiles", get(list).post(create))
        .route("/profiles/new", get(new))
        .route("/profiles/{id}", get(edit).post(save))
        .route("/profiles/{id}/test-connection", post(test_connection))
        .route("/profiles/{id}/test-and-enable", post(test_and_enable))
        .route("/profiles/{id}/delete", get(confirm_delete).post(delete))
}

/// The fields of the API's profile input but `server_type` (sent on create only),
/// in the order their conditions depend on each other.
const FIELDS: &[Field] = &[
    Field::new("name", Kind::Text),
    Field::new("description", Kind::Optional),
    Field::new("owner_id", Kind::Optional),
    Field::new("use_default_tenant_id", Kind::Bool).when("server_type=exchange_online"),
    Field::new("tenant_id", Kind::Optional)
        .when("server_type=exchange_online;use_default_tenant_id=false")
        .cleared_when_hidden(),
    Field::new("auto_discover", Kind::Bool).when("server_type=exchange_online,exchange_server"),
    Field::new("incoming_server_location", Kind::Optional).when("auto_discover=false"),
    Field::new("outgoing_server_location", Kind::Optional).when("auto_discover=false"),
    Field::new("dav_location", Kind::Optional).when("server_type=imap_smtp"),
    Field::new("allow_plaintext", Kind::Bool),
    Field::new("authentication_type", Kind::Choice),
    Field::new("application_id", Kind::Optional).when("authentication_type=server_to_server,oauth"),
    Field::new("client_secret", Kind::Secret).when("authentication_type=server_to_server,oauth"),
    Field::new("certificate_id", Kind::Optional)
        .when("server_type=exchange_online;authentication_type=server_to_server")
        .cleared_when_hidden(),
    Field::new("authority_url", Kind::Optional).when("server_type=exchange_online"),
    Field::new("graph_url", Kind::Optional).when("server_type=exchange_online"),
    Field::new("incoming_username", Kind::Optional)
        .when("authentication_type=credentials_specified_in_profile"),
    Field::new("incoming_password", Kind::Secret)
        .when("authentication_type=credentials_specified_in_profile"),
    Field::new("use_same_settings_for_outgoing", Kind::Bool)
        .when("authentication_type=credentials_specified_in_profile"),
    Field::new("outgoing_username", Kind::Optional).when(
        "authentication_type=credentials_specified_in_profile;use_same_settings_for_outgoing=false",
    ),
    Field::new("outgoing_password", Kind::Secret).when(
        "authentication_type=credentials_specified_in_profile;use_same_settings_for_outgoing=false",
    ),
    Field::new("process_email_from", Kind::DateTime),
    Field::new("min_polling_interval_minutes", Kind::Int),
    Field::new("max_concurrent_connections", Kind::Int),
    Field::new("move_failed_to_undeliverable", Kind::Bool),
];

/// Write-only fields: the browser must never put them in a URL.
const SECRETS: &[&str] = &["incoming_password", "outgoing_password", "client_secret"];

/// Field labels as Dynamics administrators know them.
const LABELS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("description", "Description"),
    ("server_type", "Server Type"),
    ("owner_id", "Owner"),
    ("use_default_tenant_id", "Use Default Tenant ID"),
    ("tenant_id", "Tenant ID"),
    ("auto_discover", "Auto Discover Server Location"),
    ("incoming_server_location", "Incoming Server Location"),
    ("outgoing_server_location", "Outgoing Server Location"),
    ("dav_location", "CalDAV/CardDAV Location"),
    ("allow_plaintext", "Allow connections without TLS"),
    ("authentication_type", "Authentication Type"),
    ("application_id", "Application (client) ID"),
    ("client_secret", "Client Secret"),
    ("certificate_id", "Certificate"),
    ("authority_url", "Authority URL"),
    ("graph_url", "Microsoft Graph URL"),
    ("incoming_username", "User Name"),
    ("incoming_password", "Password"),
    (
        "use_same_settings_for_outgoing",
        "Use same settings for Outgoing",
    ),
    ("outgoing_username", "Outgoing User Name"),
    ("outgoing_password", "Outgoing Password"),
    ("process_email_from", "Process Email From"),
    (
        "min_polling_interval_minutes",
        "Minimum Polling Interval (minutes)",
    ),
    (
        "max_concurrent_connections",
        "Maximum Concurrent Connections",
    ),
    (
        "move_failed_to_undeliverable",
        "Move Failed Emails to Undeliverable Folder",
    ),
];

const SERVER_TYPES: &[(&str, &str)] = &[
    ("exchange_online", "Exchange Online"),
    ("exchange_server", "Exchange Server (on-premises)"),
    ("imap_smtp", "IMAP/SMTP Server"),
];

const AUTHENTICATION_TYPES: &[(&str, &str)] = &[
    ("server_to_server", "Server-to-Server Authentication"),
    (
        "credentials_specified_by_user_or_queue",
        "Credentials Specified by a User or Queue",
    ),
    (
        "credentials_specified_in_profile",
        "Credentials Specified in Email Server Profile",
    ),
    ("oauth", "OAuth"),
];

/// The authentication types a server type offers (the API's rule), default first.
fn authentication_types(server_type: &str) -> &'static [&'static str] {
    match server_type {
        "exchange_online" => &[
            "server_to_server",
            "oauth",
            "credentials_specified_in_profile",
        ],
        "exchange_server" => &[
            "credentials_specified_in_profile",
            "credentials_specified_by_user_or_queue",
            "server_to_server",
            "oauth",
        ],
        _ => &[
            "credentials_specified_by_user_or_queue",
            "credentials_specified_in_profile",
            "oauth",
        ],
    }
}

fn text_of(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, t)| *t)
}

/// The JSON body of the API call for a posted profile form.
fn profile_body(values: &Values, creating: bool) -> Value {
    let mut body = to_json(FIELDS, values);
    if creating && let Some(t) = values.get("server_type").filter(|t| !t.is_empty()) {
        body.insert("server_type".into(), Value::String(t.clone()));
    }
    Value::Object(body)
}

/// The values of a new profile of `server_type`: the model's defaults.
fn new_values(server_type: &str) -> Values {
    let st = server_type
        .parse::<ServerType>()
        .unwrap_or(ServerType::ImapSmtp);
    let defaults = serde_json::to_value(ProfileSettings::new(String::new(), st))
        .expect("profile settings serialize");
    let mut v = from_json(FIELDS, &defaults);
    v.insert("server_type".into(), st.as_str().into());
    v
}

/// The new form after its server type changed: what was typed stays, the type's
/// own defaults (autodiscover, authentication) replace those of the old type.
fn switch_type(typed: &Values) -> Values {
    let server_type = typed.get("server_type").map_or("imap_smtp", String::as_str);
    let mut v = new_values(server_type);
    for (k, val) in typed {
        let keep = match k.as_str() {
            "auto_discover" | "server_type" => false,
            "authentication_type" => authentication_types(server_type).contains(&val.as_str()),
            k => !SECRETS.contains(&k) && v.contains_key(k),
        };
        if keep {
            v.insert(k.clone(), val.clone());
        }
    }
    v
}

/// `{value, text}` pairs of a table, for selects.
fn options(table: &[(&str, &str)], keys: Option<&[&str]>) -> Value {
    let rows: Vec<Value> = table
        .iter()
        .filter(|(k, _)| keys.is_none_or(|keys| keys.contains(k)))
        .map(|(k, t)| json!([k, t]))
        .collect();
    Value::Array(rows)
}

/// The organization's users, for the Owner field (empty if the caller may not list them).
async fn users(s: &Session) -> Vec<Value> {
    let users: Result<Value, ApiFailure> = s
        .api
        .get(&format!("{}?limit=500", s.org_api("users")))
        .await;
    users
        .ok()
        .and_then(|u| u["items"].as_array().cloned())
        .unwrap_or_default()
}

/// The Certificate field's choices: the organization's default, then each
/// certificate with its thumbprint and end date (Exchange Online only).
async fn certificate_options(s: &Session, server_type: &str) -> Vec<Value> {
    let mut options = vec![json!([
        "",
        "— The organization's newest valid certificate (or the client secret) —"
    ])];
    if server_type != "exchange_online" {
        return options;
    }
    let page: Result<Value, ApiFailure> = s
        .api
        .get(&format!("{}?limit=100", s.org_api("certificates")))
        .await;
    for c in page
        .ok()
        .and_then(|p| p["items"].as_array().cloned())
        .unwrap_or_default()
    {
        let until = c["not_after"].as_str().unwrap_or_default();
        options.push(json!([
            c["id"],
            format!(
                "{} · {} · until {}",
                c["name"].as_str().unwrap_or_default(),
                c["thumbprint"].as_str().unwrap_or_default(),
                until.get(..10).unwrap_or(until)
            )
        ]));
    }
    options
}

/// The mailboxes of the profile (up to 500) and whether there are more.
async fn mailboxes_of(s: &Session, profile_id: &str) -> Result<(Vec<Value>, bool), ApiFailure> {
    let page: Value = s
        .api
        .get(&format!(
            "{}?limit=500&profile_id={}",
            s.org_api("mailboxes"),
            urlencode(profile_id)
        ))
        .await?;
    Ok((
        page["items"].as_array().cloned().unwrap_or_default(),
        !page["next_cursor"].is_null(),
    ))
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn count_text(n: usize, more: bool) -> String {
    if more { format!("{n}+") } else { n.to_string() }
}

// ---------------------------------------------------------------------------
// The list

#[derive(Deserialize, Default)]
struct ListFilters {
    #[serde(default)]
    search: String,
    #[serde(default)]
    server_type: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    deleted: String,
}

fn list_query(f: &ListFilters) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", "50");
    for (k, v) in [
        ("search", &f.search),
        ("server_type", &f.server_type),
        ("cursor", &f.cursor),
    ] {
        if !v.trim().is_empty() {
            q.append_pair(k, v.trim());
        }
    }
    q.finish()
}

async fn list(s: Session, Query(f): Query<ListFilters>) -> Result<Html<String>, WebError> {
    let page: Value = s
        .api
        .get(&format!(
            "{}?{}",
            s.org_api("email-server-profiles"),
            list_query(&f)
        ))
        .await?;
    let owners: serde_json::Map<String, Value> = users(&s)
        .await
        .into_iter()
        .filter_map(|u| Some((u["id"].as_str()?.to_owned(), u["full_name"].clone())))
        .collect();
    let mut rows = Vec::new();
    for p in page["items"].as_array().into_iter().flatten() {
        let id = p["id"].as_str().unwrap_or_default();
        let mailboxes = match mailboxes_of(&s, id).await {
            Ok((m, more)) => count_text(m.len(), more),
            Err(_) => "—".into(),
        };
        let owner = p["owner_id"]
            .as_str()
            .and_then(|o| owners.get(o))
            .cloned()
            .unwrap_or(Value::Null);
        rows.push(json!({"profile": p, "mailboxes": mailboxes, "owner": owner}));
    }
    html(
        "profiles.html",
        json!({
            "layout": s.layout("profiles", "Email Server Profiles"),
            "rows": rows,
            "next_cursor": page["next_cursor"],
            "filters": {"search": f.search, "server_type": f.server_type},
            "server_types": options(SERVER_TYPES, None),
            "type_names": SERVER_TYPES.iter().map(|(k, t)| (k.to_string(), *t)).collect::<std::collections::BTreeMap<_, _>>(),
            "auth_names": AUTHENTICATION_TYPES.iter().map(|(k, t)| (k.to_string(), *t)).collect::<std::collections::BTreeMap<_, _>>(),
            "deleted": f.deleted,
        }),
    )
}

// ---------------------------------------------------------------------------
// The record form

/// What the record form shows besides its values.
#[derive(Default)]
struct FormState {
    /// The stored profile (edit), for its facts and which secrets are set.
    profile: Option<Value>,
    errors: Option<ApiFailure>,
    /// What the summary above the errors says.
    error_title: &'static str,
    notice: Option<&'static str>,
}

async fn form_page(s: &Session, values: Values, st: FormState) -> Result<Response, WebError> {
    let server_type = values
        .get("server_type")
        .cloned()
        .unwrap_or_else(|| "imap_smtp".into());
    let mut owner_options = vec![json!(["", "— No owner —"])];
    for u in users(s).await {
        let text = match u["email"].as_str() {
            Some(e) => format!("{} ({e})", u["full_name"].as_str().unwrap_or_default()),
            None => u["full_name"].as_str().unwrap_or_default().to_owned(),
        };
        owner_options.push(json!([u["id"], text]));
    }
    let (mut mailboxes, mut other_mailboxes, mut mailbox_count) = (Vec::new(), Vec::new(), None);
    if let Some(p) = &st.profile {
        let id = p["id"].as_str().unwrap_or_default();
        if let Ok((m, more)) = mailboxes_of(s, id).await {
            mailbox_count = Some(count_text(m.len(), more));
            mailboxes = m;
        }
        // Test Connection may sign in as any mailbox of the organization (the
        // profile's own come first).
        let all: Result<Value, _> = s
            .api
            .get(&format!("{}?limit=100", s.org_api("mailboxes")))
            .await;
        if let Ok(all) = all {
            other_mailboxes = all["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["profile_id"].as_str() != Some(id))
                .cloned()
                .collect();
        }
    }
    let certificate_options = certificate_options(s, &server_type).await;
    let title = match &st.profile {
        Some(p) => p["name"]
            .as_str()
            .unwrap_or("Email Server Profile")
            .to_owned(),
        None => "New Email Server Profile".to_owned(),
    };
    let errors = st
        .errors
        .as_ref()
        .map(ApiFailure::field_messages)
        .unwrap_or_else(|| json!({}));
    let status = if st.errors.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = html(
        "profile_form.html",
        json!({
            "layout": s.layout("profiles", &title),
            "title": title,
            "profile": st.profile,
            "f": {
                "v": values,
                "shown": shown(FIELDS, &values),
                "when": conditions(FIELDS),
                "errors": errors,
            },
            "error": st.errors,
            "error_title": st.error_title,
            "notice": st.notice,
            "labels": LABELS.iter().map(|(k, t)| (k.to_string(), *t)).collect::<std::collections::BTreeMap<_, _>>(),
            "server_types": options(SERVER_TYPES, None),
            "server_type_name": text_of(SERVER_TYPES, &server_type).unwrap_or("Unknown"),
            "auth_options": options(AUTHENTICATION_TYPES, Some(authentication_types(&server_type))),
            "owner_options": owner_options,
            "mailboxes": mailboxes,
            "other_mailboxes": other_mailboxes,
            "mailbox_count": mailbox_count,
            "certificate_options": certificate_options,
        }),
    )?;
    Ok((status, page).into_response())
}

/// Whether a refusal of the API belongs on the form (rather than an error page).
fn shows_on_form(f: &ApiFailure) -> bool {
    matches!(f.status, 400 | 409 | 422)
}

/// `GET /profiles/new`; with the form's values in the query string when its
/// server type changed (htmx swaps the form).
async fn new(s: Session, Query(q): Query<Vec<(String, String)>>) -> Result<Response, WebError> {
    let typed: Values = q.into_iter().collect();
    let values = if typed.len() > 1 {
        switch_type(&typed)
    } else {
        new_values(typed.get("server_type").map_or("imap_smtp", String::as_str))
    };
    form_page(&s, values, FormState::default()).await
}

async fn create(s: Session, body: Bytes) -> Result<Response, WebError> {
    let values = parse_form(&body);
    let created: Result<Value, ApiFailure> = s
        .api
        .post(
            &s.org_api("email-server-profiles"),
            &profile_body(&values, true),
        )
        .await;
    match created {
        Ok(p) => Ok(see_other(&format!(
            "/profiles/{}?created=1",
            p["id"].as_str().unwrap_or_default()
        ))),
        Err(f) if shows_on_form(&f) => {
            let st = FormState {
                errors: Some(f),
                error_title: "The email server profile was not created",
                ..Default::default()
            };
            form_page(&s, values, st).await
        }
        Err(f) => Err(f.into()),
    }
}

#[derive(Deserialize, Default)]
struct EditNotice {
    created: Option<String>,
    saved: Option<String>,
}

async fn load(s: &Session, id: &str) -> Result<Value, WebError> {
    Ok(s.api
        .get(&s.org_api(&format!("email-server-profiles/{}", urlencode(id))))
        .await?)
}

/// The form's values for a stored profile.
fn stored_values(profile: &Value) -> Values {
    let mut v = from_json(FIELDS, profile);
    v.insert(
        "server_type".into(),
        profile["server_type"].as_str().unwrap_or_default().into(),
    );
    v
}

async fn edit(
    s: Session,
    Path(id): Path<String>,
    Query(n): Query<EditNotice>,
) -> Result<Response, WebError> {
    let profile = load(&s, &id).await?;
    let notice = if n.created.is_some() {
        Some(
            "The email server profile was created. Run Test Connection to check it, then Test & Enable Mailboxes.",
        )
    } else if n.saved.is_some() {
        Some("Your changes were saved.")
    } else {
        None
    };
    let st = FormState {
        notice,
        ..Default::default()
    };
    form_page(
        &s,
        stored_values(&profile),
        FormState {
            profile: Some(profile),
            ..st
        },
    )
    .await
}

async fn save(s: Session, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let profile = load(&s, &id).await?;
    let mut values = parse_form(&body);
    // The server type cannot change: the form's conditions follow the stored one.
    values.insert(
        "server_type".into(),
        profile["server_type"].as_str().unwrap_or_default().into(),
    );
    let saved: Result<Value, ApiFailure> = s
        .api
        .patch(
            &s.org_api(&format!("email-server-profiles/{}", urlencode(&id))),
            &profile_body(&values, false),
        )
        .await;
    match saved {
        Ok(_) => Ok(see_other(&format!("/profiles/{}?saved=1", urlencode(&id)))),
        Err(f) if shows_on_form(&f) => {
            let st = FormState {
                profile: Some(profile),
                errors: Some(f),
                error_title: "Your changes were not saved",
                ..Default::default()
            };
            form_page(&s, values, st).await
        }
        Err(f) => Err(f.into()),
    }
}

// ---------------------------------------------------------------------------
// Test Connection, Test & Enable Mailboxes

/// Test Connection's result, as the fragment that replaces the result panel.
async fn test_connection(
    s: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Html<String>, WebError> {
    let form = parse_form(&body);
    let mailbox_id = form.get("mailbox_id").filter(|m| !m.is_empty());
    let request = match mailbox_id {
        Some(m) => json!({"mailbox_id": m}),
        None => json!({}),
    };
    let result: Result<Value, ApiFailure> = s
        .api
        .post(
            &s.org_api(&format!(
                "email-server-profiles/{}/test-connection",
                urlencode(&id)
            )),
            &request,
        )
        .await;
    let (result, error) = match result {
        Ok(mut r) => {
            for direction in ["incoming", "outgoing"] {
                let split = r[direction]["error"].as_str().map(split_fix);
                if let Some((message, fix)) = split {
                    // A failed step already says what failed: then only the fix is new.
                    let said = r[direction]["steps"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|s| s["passed"] == false && s["detail"] == message.as_str());
                    r[direction]["error_message"] = if said {
                        Value::Null
                    } else {
                        Value::String(message)
                    };
                    r[direction]["fix"] = fix.map_or(Value::Null, Value::String);
                }
            }
            (Some(r), None)
        }
        Err(f) if f.status == 401 => return Err(f.into()),
        Err(f) => (None, Some(f)),
    };
    let mailbox = match result.as_ref().and_then(|r| r["mailbox_id"].as_str()) {
        Some(m) => s
            .api
            .get::<Value>(&s.org_api(&format!("mailboxes/{}", urlencode(m))))
            .await
            .ok(),
        None => None,
    };
    html(
        "profile_test.html",
        json!({
            "result": result,
            "error": error,
            "mailbox": mailbox,
            "tested_at": chrono::Utc::now().to_rfc3339(),
            "steps": STEP_NAMES.iter().map(|(k, t)| (k.to_string(), *t)).collect::<std::collections::BTreeMap<_, _>>(),
        }),
    )
}

/// Test Connection's `error` is `what failed (how to fix it)`: the two apart.
fn split_fix(error: &str) -> (String, Option<String>) {
    let text = error.trim();
    if let Some(inner) = text.strip_suffix(')') {
        // The opening parenthesis that matches the last closing one.
        let mut depth = 0usize;
        for (i, c) in inner.char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' if depth > 0 => depth -= 1,
                '(' => {
                    let (message, fix) = (inner[..i].trim_end(), inner[i + 1..].trim());
                    if !message.is_empty() && !fix.is_empty() {
                        return (message.to_owned(), Some(fix.to_owned()));
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    (text.to_owned(), None)
}

/// The steps of Test Connection as the reference names them.
const STEP_NAMES: &[(&str, &str)] = &[
    ("resolve", "Resolve"),
    ("connect", "Connect"),
    ("tls", "TLS"),
    ("authenticate", "Authenticate"),
    ("open_mailbox", "Open the mailbox"),
];

/// Starts Test & Enable for every mailbox of the profile, then shows the job.
async fn test_and_enable(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    let job: Result<Value, ApiFailure> = s
        .api
        .post(
            &s.org_api("mailboxes/test-and-enable"),
            &json!({"profile_id": id}),
        )
        .await;
    match job {
        Ok(job) => Ok(see_other(&format!(
            "/jobs/{}",
            urlencode(job["id"].as_str().unwrap_or_default())
        ))),
        Err(f) if shows_on_form(&f) || f.status == 403 => {
            let profile = load(&s, &id).await?;
            let st = FormState {
                errors: Some(f),
                error_title: "Test & Enable Mailboxes did not start",
                ..Default::default()
            };
            form_page(
                &s,
                stored_values(&profile),
                FormState {
                    profile: Some(profile),
                    ..st
                },
            )
            .await
        }
        Err(f) => Err(f.into()),
    }
}

// ---------------------------------------------------------------------------
// Delete

async fn delete_page(
    s: &Session,
    profile: Value,
    error: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let id = profile["id"].as_str().unwrap_or_default().to_owned();
    let mailboxes = mailboxes_of(s, &id)
        .await
        .map(|(m, more)| count_text(m.len(), more))
        .ok();
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let page = html(
        "profile_delete.html",
        json!({
            "layout": s.layout("profiles", "Delete email server profile"),
            "profile": profile,
            "mailbox_count": mailboxes,
            "error": error,
        }),
    )?;
    Ok((status, page).into_response())
}

async fn confirm_delete(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    let profile = load(&s, &id).await?;
    delete_page(&s, profile, None).await
}

async fn delete(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    let profile = load(&s, &id).await?;
    match s
        .api
        .delete(&s.org_api(&format!("email-server-profiles/{}", urlencode(&id))))
        .await
    {
        Ok(()) => Ok(see_other(&format!(
            "/profiles?deleted={}",
            urlencode(profile["name"].as_str().unwrap_or_default())
        ))),
        Err(f) if shows_on_form(&f) || f.status == 403 => delete_page(&s, profile, Some(f)).await,
        Err(f) => Err(f.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_imap_profile_sends_its_locations_and_no_exchange_fields() {
        let v = form(&[
            ("name", "Lab"),
            ("server_type", "imap_smtp"),
            ("description", ""),
            ("owner_id", ""),
            ("incoming_server_location", "imap://127.0.0.1:1143"),
            ("outgoing_server_location", "smtp://127.0.0.1:1587"),
            ("allow_plaintext", "true"),
            (
                "authentication_type",
                "credentials_specified_by_user_or_queue",
            ),
            // Fields of other types or modes, hidden in the browser, are not sent
            // even if a browser posted them.
            ("use_default_tenant_id", "true"),
            ("application_id", "x"),
            ("authority_url", "https://login.microsoftonline.us"),
            ("graph_url", "https://graph.microsoft.us"),
            ("incoming_username", "svc"),
            ("incoming_password", "pw"),
            ("process_email_from", ""),
            ("min_polling_interval_minutes", "0"),
            ("max_concurrent_connections", "10"),
            ("move_failed_to_undeliverable", "false"),
        ]);
        assert_eq!(
            profile_body(&v, true),
            json!({
                "name": "Lab", "server_type": "imap_smtp", "description": null, "owner_id": null,
                "tenant_id": null, "certificate_id": null,
                "incoming_server_location": "imap://127.0.0.1:1143",
                "outgoing_server_location": "smtp://127.0.0.1:1587",
                "allow_plaintext": true,
                "authentication_type": "credentials_specified_by_user_or_queue",
                "process_email_from": null, "min_polling_interval_minutes": 0,
                "max_concurrent_connections": 10, "move_failed_to_undeliverable": false,
            })
        );
        // On edit, the server type is not sent (it cannot change).
        assert!(profile_body(&v, false).get("server_type").is_none());
    }

    #[test]
    fn exchange_online_hides_locations_under_autodiscover_and_clears_a_hidden_tenant() {
        let v = form(&[
            ("name", "EXO"),
            ("server_type", "exchange_online"),
            ("use_default_tenant_id", "true"),
            ("tenant_id", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("auto_discover", "true"),
            ("incoming_server_location", "https://outlook.office365.com"),
            ("authentication_type", "server_to_server"),
            ("application_id", "app"),
            ("client_secret", ""),
            ("clear_client_secret", "true"),
        ]);
        let body = profile_body(&v, true);
        assert_eq!(body["tenant_id"], Value::Null);
        assert_eq!(body["use_default_tenant_id"], true);
        assert!(body.get("incoming_server_location").is_none());
        assert_eq!(body["application_id"], "app");
        assert_eq!(body["client_secret"], Value::Null);
        // Without autodiscover and with an own tenant, both are sent.
        let mut v = v;
        v.insert("auto_discover".into(), "false".into());
        v.insert("use_default_tenant_id".into(), "false".into());
        let body = profile_body(&v, true);
        assert_eq!(
            body["incoming_server_location"],
            "https://outlook.office365.com"
        );
        assert_eq!(body["tenant_id"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
    }

    #[test]
    fn profile_credentials_are_sent_only_in_that_mode_and_passwords_only_when_typed() {
        let v = form(&[
            ("server_type", "imap_smtp"),
            ("authentication_type", "credentials_specified_in_profile"),
            ("incoming_username", "svc@example.org"),
            ("incoming_password", ""),
            ("use_same_settings_for_outgoing", "false"),
            ("outgoing_username", "out@example.org"),
            ("outgoing_password", "pw2"),
        ]);
        let body = profile_body(&v, false);
        assert_eq!(body["incoming_username"], "svc@example.org");
        assert!(body.get("incoming_password").is_none(), "empty keeps");
        assert_eq!(body["outgoing_password"], "pw2");
        let mut v = v;
        v.insert("use_same_settings_for_outgoing".into(), "true".into());
        let body = profile_body(&v, false);
        assert!(body.get("outgoing_username").is_none());
        assert!(body.get("outgoing_password").is_none());
    }

    #[test]
    fn new_forms_start_from_the_models_defaults_and_switching_type_keeps_what_was_typed() {
        let v = new_values("exchange_online");
        assert_eq!(v["auto_discover"], "true");
        assert_eq!(v["authentication_type"], "server_to_server");
        assert_eq!(v["max_concurrent_connections"], "10");
        let v = new_values("imap_smtp");
        assert_eq!(v["auto_discover"], "false");
        assert_eq!(
            v["authentication_type"],
            "credentials_specified_by_user_or_queue"
        );

        let typed = form(&[
            ("server_type", "exchange_online"),
            ("name", "Typed"),
            ("auto_discover", "false"),
            (
                "authentication_type",
                "credentials_specified_by_user_or_queue",
            ),
            ("max_concurrent_connections", "4"),
            ("incoming_password", "never in a URL"),
        ]);
        let v = switch_type(&typed);
        assert_eq!(v["server_type"], "exchange_online");
        assert_eq!(v["name"], "Typed");
        assert_eq!(v["max_concurrent_connections"], "4");
        // Exchange Online's defaults replace what it does not offer.
        assert_eq!(v["auto_discover"], "true");
        assert_eq!(v["authentication_type"], "server_to_server");
        assert_eq!(v["incoming_password"], "");
    }

    #[test]
    fn test_connection_errors_split_into_what_failed_and_the_fix() {
        let cases = [
            (
                "authentication failed (check the password (or the user name))",
                (
                    "authentication failed",
                    Some("check the password (or the user name)"),
                ),
            ),
            ("no fix here", ("no fix here", None)),
            ("(only a fix)", ("(only a fix)", None)),
            ("unbalanced)", ("unbalanced)", None)),
        ];
        for (text, (message, fix)) in cases {
            assert_eq!(
                split_fix(text),
                (message.to_owned(), fix.map(str::to_owned)),
                "{text}"
            );
        }
    }

    #[test]
    fn every_field_has_a_label_and_the_list_query_skips_empty_filters() {
        for f in FIELDS {
            assert!(text_of(LABELS, f.name).is_some(), "{}", f.name);
        }
        let f = ListFilters {
            search: " lab ".into(),
            ..Default::default()
        };
        assert_eq!(list_query(&f), "limit=50&search=lab");
    }
}
