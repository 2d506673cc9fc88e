//! Mailboxes: the grid with its views (All, Active, Failed, Pending approval),
//! search and paging; the command bar's Edit (Change Multiple Records), Approve
//! Email and Test & Enable Mailboxes on the selected rows; and one mailbox's page
//! with its settings, statuses, last runs, alerts and decision trail, where a
//! queue's mailbox is also made a forward mailbox and a router mailbox shows what
//! the email router received (with a retry of a failed message).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::api::ApiFailure;
use super::error::{WebError, see_other};
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/mailboxes", get(grid))
        .route("/mailboxes/edit", post(edit_form))
        .route("/mailboxes/bulk-edit", post(bulk_edit))
        .route("/mailboxes/approve", post(approve))
        .route("/mailboxes/test-and-enable", post(test_and_enable))
        .route("/mailboxes/{id}", get(page))
        .route("/mailboxes/{id}/forwarding", post(save_forwarding))
        .route(
            "/mailboxes/{id}/inbound-messages/{message_id}/retry",
            post(retry_inbound),
        )
}

/// The views of the grid: (key, title).
pub const VIEWS: &[(&str, &str)] = &[
    ("all", "All mailboxes"),
    ("active", "Active mailboxes"),
    ("failed", "Failed mailboxes"),
    ("pending_approval", "Pending email approval"),
];

/// The grid's page size.
const PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct GridQuery {
    #[serde(default)]
    view: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    /// What the last command did: `updated`, `approved`.
    #[serde(default)]
    done: String,
    #[serde(default)]
    n: String,
}

/// The view asked for, or `all` for anything unknown.
fn view_key(view: &str) -> &'static str {
    VIEWS
        .iter()
        .find(|(k, _)| *k == view)
        .map(|(k, _)| *k)
        .unwrap_or("all")
}

/// The API query of the grid for a view, search text and cursor.
fn list_query(view: &str, q: &str, cursor: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("limit", &PAGE.to_string());
    let view = view_key(view);
    if view != "all" {
        s.append_pair("view", view);
    }
    if !q.trim().is_empty() {
        s.append_pair("search", q.trim());
    }
    if !cursor.is_empty() {
        s.append_pair("cursor", cursor);
    }
    s.finish()
}

/// The grid's own query string (for links that keep the view and search).
fn grid_query(view: &str, q: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("view", view_key(view));
    if !q.trim().is_empty() {
        s.append_pair("q", q.trim());
    }
    s.finish()
}

/// Every email server profile's name by id; none for a role that may not read
/// profiles (an approver).
async fn profile_names(s: &Session) -> Result<HashMap<String, String>, WebError> {
    let profiles: Value = match s
        .api
        .get(&format!("{}?limit=500", s.org_api("email-server-profiles")))
        .await
    {
        Ok(p) => p,
        Err(e) if e.status == 403 => return Ok(HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(profiles["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?.to_owned(), p["name"].as_str()?.to_owned())))
        .collect())
}

fn notice(done: &str, n: &str) -> Value {
    let n: usize = n.parse().unwrap_or(0);
    let plural = if n == 1 { "mailbox" } else { "mailboxes" };
    match done {
        "updated" => json!({"tone": "good", "text": format!(
            "{n} {plural} updated. A changed profile or delivery method must be tested again: select them and choose Test & Enable Mailboxes.")}),
        "approved" => json!({"tone": "good", "text": format!("Email approved for {n} {plural}.")}),
        "forwarding" => json!({"tone": "good", "text": "Forward mailbox settings saved."}),
        "retried" => json!({"tone": "good", "text":
            "The message will be sent through the pipeline again at the email router's next run."}),
        _ => Value::Null,
    }
}

async fn grid(s: Session, Query(g): Query<GridQuery>) -> Result<Response, WebError> {
    render_grid(&s, &g, None).await
}

async fn render_grid(
    s: &Session,
    g: &GridQuery,
    failure: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let view = view_key(&g.view);
    let list: Value = s
        .api
        .get(&format!(
            "{}?{}",
            s.org_api("mailboxes"),
            list_query(view, &g.q, &g.cursor)
        ))
        .await?;
    let counts_q = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !g.q.trim().is_empty() {
            q.append_pair("search", g.q.trim());
        }
        q.finish()
    };
    let counts: Value = s
        .api
        .get(&format!("{}?{counts_q}", s.org_api("mailboxes/counts")))
        .await?;
    let names = profile_names(s).await?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    for m in &mut items {
        let name = m["profile_id"].as_str().and_then(|p| names.get(p)).cloned();
        m["profile_name"] = json!(name);
    }
    let views: Vec<Value> = VIEWS
        .iter()
        .map(|(k, t)| json!({"key": k, "title": t, "count": counts[*k], "current": *k == view}))
        .collect();
    let title = VIEWS
        .iter()
        .find(|(k, _)| *k == view)
        .map(|(_, t)| *t)
        .unwrap_or("Mailboxes");
    Ok(html(
        "mailboxes.html",
        json!({
            "layout": s.layout("mailboxes", "Mailboxes"),
            "view": view,
            "view_title": title,
            "views": views,
            "q": g.q,
            "query": grid_query(view, &g.q),
            "mailboxes": items,
            "next_cursor": list["next_cursor"],
            "paged": !g.cursor.is_empty(),
            "notice": notice(&g.done, &g.n),
            "failure": failure,
        }),
    )?
    .into_response())
}

/// A posted form: every value of each name, in order.
fn form(body: &[u8]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    out
}

fn first<'a>(f: &'a HashMap<String, Vec<String>>, name: &str) -> &'a str {
    f.get(name)
        .and_then(|v| v.first())
        .map(String::as_str)
        .unwrap_or("")
}

fn ids(f: &HashMap<String, Vec<String>>) -> Vec<String> {
    f.get("ids").cloned().unwrap_or_default()
}

/// Where a command returns: the grid as it was, or a mailbox page. Only paths of
/// this section are accepted.
fn return_to(f: &HashMap<String, Vec<String>>) -> String {
    let r = first(f, "return_to");
    if r.starts_with("/mailboxes") && !r.starts_with("//") && !r.contains("://") {
        r.to_owned()
    } else {
        "/mailboxes".to_owned()
    }
}

/// Adds `done` and `n` to a return path's query.
fn with_done(path: &str, done: &str, n: usize) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}done={done}&n={n}")
}

/// The grid again with a command's failure, or the mailbox page.
async fn refused(
    s: &Session,
    f: &HashMap<String, Vec<String>>,
    failure: ApiFailure,
) -> Result<Response, WebError> {
    let back = return_to(f);
    if let Some(id) = back.strip_prefix("/mailboxes/") {
        return render_page(s, id, "", Some(failure), Value::Null, None).await;
    }
    let g = GridQuery {
        view: first(f, "view").to_owned(),
        q: first(f, "q").to_owned(),
        ..Default::default()
    };
    render_grid(s, &g, Some(failure)).await
}

fn nothing_selected() -> ApiFailure {
    ApiFailure {
        status: 422,
        code: "missing_field".into(),
        message: "Select at least one mailbox first.".into(),
        field: Some("ids".into()),
        details: Vec::new(),
    }
}

const METHODS: &[(&str, &str)] = &[
    ("server_side_sync", "Server-Side Synchronization"),
    ("router", "Email Router"),
    ("none", "None"),
];

/// Change Multiple Records: the form for the selected mailboxes.
async fn edit_form(s: Session, body: Bytes) -> Result<Response, WebError> {
    let f = form(&body);
    render_edit(&s, &f, None).await
}

async fn render_edit(
    s: &Session,
    f: &HashMap<String, Vec<String>>,
    failure: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let ids = ids(f);
    if ids.is_empty() {
        return refused(s, f, nothing_selected()).await;
    }
    let mut selected = Vec::new();
    for id in ids.iter().take(500) {
        let m: Value = s.api.get(&s.org_api(&format!("mailboxes/{id}"))).await?;
        selected.push(m);
    }
    let names = profile_names(s).await?;
    let mut profiles: Vec<(String, String)> = names.into_iter().collect();
    profiles.sort_by_key(|p| p.1.to_lowercase());
    let errors = failure
        .as_ref()
        .map(ApiFailure::field_messages)
        .unwrap_or_else(|| json!({}));
    Ok(html(
        "mailboxes_edit.html",
        json!({
            "layout": s.layout("mailboxes", "Change Multiple Records"),
            "selected": selected,
            "profiles": profiles,
            "methods": METHODS,
            "values": {
                "profile_id": first(f, "profile_id"),
                "incoming_method": first(f, "incoming_method"),
                "outgoing_method": first(f, "outgoing_method"),
                "act_method": first(f, "act_method"),
            },
            "return_to": return_to(f),
            "failure": failure,
            "errors": errors,
        }),
    )?
    .into_response())
}

/// The bulk API's body from the edit form: only the fields given a value.
fn bulk_body(f: &HashMap<String, Vec<String>>) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("ids".into(), json!(ids(f)));
    match first(f, "profile_id") {
        "" => {}
        "__none" => {
            body.insert("profile_id".into(), Value::Null);
        }
        p => {
            body.insert("profile_id".into(), json!(p));
        }
    }
    for name in ["incoming_method", "outgoing_method", "act_method"] {
        let v = first(f, name);
        if !v.is_empty() {
            body.insert(name.into(), json!(v));
        }
    }
    Value::Object(body)
}

async fn bulk_edit(s: Session, body: Bytes) -> Result<Response, WebError> {
    let f = form(&body);
    let body = bulk_body(&f);
    match s.api.patch::<Value>(&s.org_api("mailboxes"), &body).await {
        Ok(changed) => {
            let n = changed["items"].as_array().map_or(0, Vec::len);
            Ok(see_other(&with_done(&return_to(&f), "updated", n)))
        }
        Err(e) if e.status == 401 || e.status >= 500 => Err(e.into()),
        Err(e) => render_edit(&s, &f, Some(e)).await,
    }
}

async fn approve(s: Session, body: Bytes) -> Result<Response, WebError> {
    let f = form(&body);
    let ids = ids(&f);
    if ids.is_empty() {
        return refused(&s, &f, nothing_selected()).await;
    }
    match s
        .api
        .post::<Value>(&s.org_api("mailboxes/approve"), &json!({"ids": ids}))
        .await
    {
        Ok(_) => Ok(see_other(&with_done(&return_to(&f), "approved", ids.len()))),
        Err(e) if e.status == 401 || e.status >= 500 => Err(e.into()),
        Err(e) => refused(&s, &f, e).await,
    }
}

async fn test_and_enable(s: Session, body: Bytes) -> Result<Response, WebError> {
    let f = form(&body);
    let ids = ids(&f);
    if ids.is_empty() {
        return refused(&s, &f, nothing_selected()).await;
    }
    match s
        .api
        .post::<Value>(
            &s.org_api("mailboxes/test-and-enable"),
            &json!({"ids": ids}),
        )
        .await
    {
        Ok(job) => Ok(see_other(&format!(
            "/jobs/{}",
            job["id"].as_str().unwrap_or_default()
        ))),
        Err(e) if e.status == 401 || e.status >= 500 => Err(e.into()),
        Err(e) => refused(&s, &f, e).await,
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    /// The decision trail's cursor.
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    done: String,
    #[serde(default)]
    n: String,
}

async fn page(
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    render_page(&s, &id, &q.cursor, None, notice(&q.done, &q.n), None).await
}

/// A posted checkbox: the `toggle` macro sends a hidden `false` before the box's
/// `true`, so the last value is the one that counts.
fn ticked(f: &HashMap<String, Vec<String>>, name: &str) -> bool {
    f.get(name).and_then(|v| v.last()).map(String::as_str) == Some("true")
}

/// The API's body from the forward mailbox form: both fields, always.
fn forwarding_body(f: &HashMap<String, Vec<String>>) -> Value {
    json!({
        "is_forward_mailbox": ticked(f, "is_forward_mailbox"),
        "delete_after_processing": ticked(f, "delete_after_processing"),
    })
}

/// Saves a queue mailbox's forward mailbox settings; a refusal shows the page
/// again with the boxes as posted and the API's message next to its field.
async fn save_forwarding(
    s: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let posted = forwarding_body(&form(&body));
    match s
        .api
        .patch::<Value>(&s.org_api(&format!("mailboxes/{id}")), &posted)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/mailboxes/{id}?done=forwarding"))),
        Err(e) if e.status == 401 || e.status >= 500 => Err(e.into()),
        Err(e) => render_page(&s, &id, "", Some(e), Value::Null, Some(posted)).await,
    }
}

/// Sends a message the email router gave up on through the pipeline again; a
/// refusal (the message is no longer failed) shows the page with the API's reason.
async fn retry_inbound(
    s: Session,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let path = s.org_api(&format!(
        "mailboxes/{id}/inbound-messages/{message_id}/retry"
    ));
    match s.api.post::<Value>(&path, &json!({})).await {
        Ok(_) => Ok(see_other(&format!("/mailboxes/{id}?done=retried#inbound"))),
        Err(e) if e.status == 401 || e.status >= 500 => Err(e.into()),
        Err(e) => render_page(&s, &id, "", Some(e), Value::Null, None).await,
    }
}

/// One workload's row on the mailbox page.
fn workload(name: &str, m: &Value, h: &Value, key: &str, runs: bool) -> Value {
    json!({
        "name": name,
        "method": m[format!("{key}_method")],
        "status": m[format!("{key}_status")],
        "enabled": m[format!("{key}_enabled")],
        "last_success_at": if runs { h[format!("last_{key}_success_at")].clone() } else { Value::Null },
        "next_at": if runs { h[format!("next_{key}_at")].clone() } else { Value::Null },
        "failures": if runs { h[format!("{key}_failures")].clone() } else { json!(0) },
        "error": if runs { h[format!("{key}_error")].clone() } else { Value::Null },
    })
}

async fn render_page(
    s: &Session,
    id: &str,
    cursor: &str,
    failure: Option<ApiFailure>,
    notice: Value,
    forwarding: Option<Value>,
) -> Result<Response, WebError> {
    let m: Value = s.api.get(&s.org_api(&format!("mailboxes/{id}"))).await?;
    // The forward mailbox form: as posted after a refusal, else as stored.
    let forwarding = forwarding.unwrap_or_else(|| {
        json!({
            "is_forward_mailbox": m["is_forward_mailbox"].as_bool().unwrap_or(false),
            "delete_after_processing": m["delete_after_processing"].as_bool().unwrap_or(false),
        })
    });
    let errors = failure
        .as_ref()
        .map(ApiFailure::field_messages)
        .unwrap_or_else(|| json!({}));
    let health: Value = s
        .api
        .get(&s.org_api(&format!("monitoring/mailboxes/{id}")))
        .await?;
    let alerts: Value = s
        .api
        .get(&format!("{}?mailbox_id={id}&limit=20", s.org_api("alerts")))
        .await?;
    let mut alerts = alerts["items"].as_array().cloned().unwrap_or_default();
    alerts.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    let trail_q = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", "20")
            .append_pair("order", "newest_first");
        if !cursor.is_empty() {
            q.append_pair("cursor", cursor);
        }
        q.finish()
    };
    let trail: Value = s
        .api
        .get(&format!(
            "{}?{trail_q}",
            s.org_api(&format!("mailboxes/{id}/messages"))
        ))
        .await?;
    // What the email router received, for a mailbox it delivers to.
    let (inbound, inbound_counts) = if m["incoming_method"] == "router" {
        let list: Value = s
            .api
            .get(&format!(
                "{}?limit=50",
                s.org_api(&format!("mailboxes/{id}/inbound-messages"))
            ))
            .await?;
        let counts: Value = s
            .api
            .get(&s.org_api(&format!("mailboxes/{id}/inbound-messages/counts")))
            .await?;
        (list["items"].clone(), counts)
    } else {
        (Value::Null, Value::Null)
    };
    let profile_name = match m["profile_id"].as_str() {
        Some(p) => profile_names(s).await?.remove(p),
        None => None,
    };
    let workloads = vec![
        workload("Incoming email", &m, &health, "incoming", true),
        workload("Outgoing email", &m, &health, "outgoing", true),
        workload(
            "Appointments, contacts and tasks",
            &m,
            &health,
            "act",
            false,
        ),
    ];
    let title = m["name"].as_str().unwrap_or("Mailbox").to_owned();
    Ok(html(
        "mailbox.html",
        json!({
            "layout": s.layout("mailboxes", &title),
            "m": m,
            "health": health,
            "profile_name": profile_name,
            "workloads": workloads,
            "alerts": alerts,
            "trail": trail["items"],
            "next_cursor": trail["next_cursor"],
            "paged": !cursor.is_empty(),
            "failure": failure,
            "notice": notice,
            "forwarding": forwarding,
            "errors": errors,
            "inbound": inbound,
            "inbound_counts": inbound_counts,
        }),
    )?
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_become_api_filters() {
        assert_eq!(list_query("failed", "", ""), "limit=50&view=failed");
        assert_eq!(list_query("all", "", ""), "limit=50");
        assert_eq!(
            list_query("nonsense", " ann ", "c1"),
            "limit=50&search=ann&cursor=c1"
        );
        assert_eq!(
            list_query("pending_approval", "", ""),
            "limit=50&view=pending_approval"
        );
        assert_eq!(grid_query("active", "x y"), "view=active&q=x+y");
    }

    #[test]
    fn the_bulk_body_holds_only_the_fields_given() {
        let f = form(b"ids=a&ids=b&profile_id=&incoming_method=server_side_sync&outgoing_method=&act_method=none");
        assert_eq!(
            bulk_body(&f),
            json!({"ids": ["a", "b"], "incoming_method": "server_side_sync", "act_method": "none"})
        );
        let f = form(b"ids=a&profile_id=__none");
        assert_eq!(bulk_body(&f), json!({"ids": ["a"], "profile_id": null}));
    }

    #[test]
    fn the_forwarding_body_takes_the_last_value_of_each_box() {
        let f =
            form(b"is_forward_mailbox=false&is_forward_mailbox=true&delete_after_processing=false");
        assert_eq!(
            forwarding_body(&f),
            json!({"is_forward_mailbox": true, "delete_after_processing": false})
        );
        assert_eq!(
            forwarding_body(&form(b"")),
            json!({"is_forward_mailbox": false, "delete_after_processing": false})
        );
    }

    #[test]
    fn commands_return_only_within_the_section() {
        let f = form(b"return_to=%2Fmailboxes%3Fview%3Dfailed");
        assert_eq!(return_to(&f), "/mailboxes?view=failed");
        let f = form(b"return_to=https%3A%2F%2Fevil.example");
        assert_eq!(return_to(&f), "/mailboxes");
        assert_eq!(
            with_done("/mailboxes?view=all", "approved", 3),
            "/mailboxes?view=all&done=approved&n=3"
        );
    }
}
