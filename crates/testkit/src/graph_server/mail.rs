//! The message and folder endpoints: get a message and its MIME (`$value`), update
//! its categories, move it, delete it (to Deleted Items), list and create
//! folders (well-known names accepted wherever a folder id is), and `sendMail`
//! in JSON or MIME.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::Shared;
use super::auth::{Need, authorize};
use super::errors::{bad_request, graph_error, item_not_found, user_not_found};
use super::ops::{self, OpError};
use super::state::{SentMail, State as MailState};

fn op_error(e: OpError, user: &str) -> Response {
    match e {
        OpError::NoUser => user_not_found(user),
        OpError::NoFolder | OpError::NoMessage => item_not_found(),
        OpError::FolderExists => graph_error(
            StatusCode::CONFLICT,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ),
    }
}

fn json_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|_| bad_request("BadRequest", "Unable to read JSON request payload."))
}

fn find_user(st: &MailState, user: &str) -> Result<String, Response> {
    st.user_key(user).ok_or_else(|| user_not_found(user))
}

fn find_folder(st: &MailState, uid: &str, folder: &str) -> Result<String, Response> {
    st.users[uid].folder_key(folder).ok_or_else(item_not_found)
}

pub(crate) async fn get_message(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Read) {
        return r;
    }
    let st = shared.lock();
    let uid = match find_user(&st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let select: Option<Vec<String>> = query
        .get("$select")
        .map(|s| s.split(',').map(|f| f.trim().to_owned()).collect());
    match st.users[&uid].messages.get(&id) {
        Some(m) => axum::Json(m.to_json(select.as_deref())).into_response(),
        None => item_not_found(),
    }
}

pub(crate) async fn get_mime(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Read) {
        return r;
    }
    let st = shared.lock();
    let uid = match find_user(&st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match st.users[&uid].messages.get(&id) {
        Some(m) => ([(header::CONTENT_TYPE, "text/plain")], m.mime.clone()).into_response(),
        None => item_not_found(),
    }
}

pub(crate) async fn patch_message(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::ReadWrite) {
        return r;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let categories = body.get("categories").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    let is_read = body.get("isRead").and_then(Value::as_bool);
    let response = {
        let mut st = shared.lock();
        let uid = match find_user(&st, &user) {
            Ok(u) => u,
            Err(r) => return r,
        };
        match ops::update(&mut st, &uid, &id, categories, is_read) {
            Ok(()) => axum::Json(st.users[&uid].messages[&id].to_json(None)).into_response(),
            Err(e) => op_error(e, &user),
        }
    };
    shared.flush_notices();
    response
}

/// `DELETE /users/{id}/messages/{id}`: `204 No Content`. The message goes to
/// Deleted Items, as Outlook's Delete (it keeps its immutable id; the folder it
/// left reports it `@removed`); one already in Deleted Items goes for good (to
/// the Recoverable Items, which Graph's mail folders do not show).
pub(crate) async fn delete_message(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::ReadWrite) {
        return r;
    }
    let response = {
        let mut st = shared.lock();
        let uid = match find_user(&st, &user) {
            Ok(u) => u,
            Err(r) => return r,
        };
        let u = &st.users[&uid];
        let trash = u.folder_key("deleteditems");
        let done = match (u.messages.get(&id), trash) {
            (None, _) => Err(OpError::NoMessage),
            (Some(m), Some(trash)) if m.folder_id != trash => {
                ops::move_message(&mut st, &uid, &id, &trash)
            }
            (Some(_), _) => ops::delete(&mut st, &uid, &id),
        };
        match done {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => op_error(e, &user),
        }
    };
    shared.flush_notices();
    response
}

pub(crate) async fn move_message(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::ReadWrite) {
        return r;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(dest) = body.get("destinationId").and_then(Value::as_str) else {
        return bad_request("ErrorInvalidIdMalformed", "Id is malformed.");
    };
    let response = {
        let mut st = shared.lock();
        let uid = match find_user(&st, &user) {
            Ok(u) => u,
            Err(r) => return r,
        };
        let fid = match find_folder(&st, &uid, dest) {
            Ok(f) => f,
            Err(r) => return r,
        };
        match ops::move_message(&mut st, &uid, &id, &fid) {
            Ok(()) => (
                StatusCode::CREATED,
                axum::Json(st.users[&uid].messages[&id].to_json(None)),
            )
                .into_response(),
            Err(e) => op_error(e, &user),
        }
    };
    shared.flush_notices();
    response
}

/// Folder lists page like other collections: `$top` (default 10) and a next link.
fn folder_page(
    shared: &Shared,
    st: &MailState,
    uid: &str,
    parent: &str,
    query: &HashMap<String, String>,
    path: &str,
) -> Response {
    let u = &st.users[uid];
    let top: usize = query
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(10)
        .max(1);
    let skip: usize = query.get("$skip").and_then(|t| t.parse().ok()).unwrap_or(0);
    let children: Vec<Value> = u
        .folders
        .values()
        .filter(|f| f.parent_id.as_deref() == Some(parent))
        .map(|f| u.folder_json(f))
        .collect();
    let page: Vec<Value> = children.iter().skip(skip).take(top).cloned().collect();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#users('{uid}')/mailFolders", shared.base),
        "value": page,
    });
    if skip + top < children.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}{path}?$top={top}&$skip={}",
            shared.origin(),
            skip + top
        ));
    }
    axum::Json(body).into_response()
}

pub(crate) async fn list_folders(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Read) {
        return r;
    }
    let st = shared.lock();
    let uid = match find_user(&st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let root = st.users[&uid].root_id();
    folder_page(&shared, &st, &uid, &root, &query, uri.path())
}

pub(crate) async fn list_children(
    State(shared): State<Arc<Shared>>,
    Path((user, folder)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Read) {
        return r;
    }
    let st = shared.lock();
    let uid = match find_user(&st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let fid = match find_folder(&st, &uid, &folder) {
        Ok(f) => f,
        Err(r) => return r,
    };
    folder_page(&shared, &st, &uid, &fid, &query, uri.path())
}

/// Escapes a query value: everything but unreserved characters.
fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The one `$filter` the messages of a folder take here:
/// `internetMessageId eq '<id>'` (quotes inside doubled, as OData writes them).
fn message_id_filter(filter: &str) -> Option<String> {
    let literal = filter
        .trim()
        .strip_prefix("internetMessageId eq '")?
        .strip_suffix('\'')?;
    Some(literal.replace("''", "'"))
}

/// The messages of a folder, oldest first, paged by `$top` (default 10) and
/// `$skip`; `$select` as on a single message. Of `$filter`, only equality on
/// `internetMessageId` is understood; anything else is refused as Graph refuses
/// a filter it cannot apply.
pub(crate) async fn list_messages(
    State(shared): State<Arc<Shared>>,
    Path((user, folder)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Read) {
        return r;
    }
    let wanted = match query.get("$filter") {
        None => None,
        Some(f) => match message_id_filter(f) {
            Some(id) => Some(id),
            None => return bad_request("BadRequest", "Invalid filter clause"),
        },
    };
    let select: Option<Vec<String>> = query
        .get("$select")
        .map(|s| s.split(',').map(|f| f.trim().to_owned()).collect());
    let top: usize = query
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(10)
        .max(1);
    let skip: usize = query.get("$skip").and_then(|t| t.parse().ok()).unwrap_or(0);
    let st = shared.lock();
    let uid = match find_user(&st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let fid = match find_folder(&st, &uid, &folder) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut matching: Vec<&super::state::Message> = st.users[&uid]
        .messages
        .values()
        .filter(|m| m.folder_id == fid)
        .filter(|m| {
            wanted
                .as_deref()
                .is_none_or(|w| m.internet_message_id.as_deref() == Some(w))
        })
        .collect();
    matching.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(top)
        .map(|m| m.to_json(select.as_deref()))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#users('{uid}')/mailFolders('{fid}')/messages", shared.base),
        "value": page,
    });
    if skip + top < matching.len() {
        let mut next = format!(
            "{}{}?$top={top}&$skip={}",
            shared.origin(),
            uri.path(),
            skip + top
        );
        for key in ["$filter", "$select"] {
            if let Some(v) = query.get(key) {
                next.push_str(&format!("&{key}={}", query_escape(v)));
            }
        }
        body["@odata.nextLink"] = json!(next);
    }
    axum::Json(body).into_response()
}

pub(crate) async fn get_folder(
    State(shared): State<Arc<Shared>>,
    Path((user, folder)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Read) {
        return r;
    }
    let st = shared.lock();
    let uid = match find_user(&st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let fid = match find_folder(&st, &uid, &folder) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let u = &st.users[&uid];
    axum::Json(u.folder_json(&u.folders[&fid])).into_response()
}

async fn create(
    shared: &Shared,
    user: &str,
    parent: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    if let Err(r) = authorize(&shared.check, headers, Need::ReadWrite) {
        return r;
    }
    let body = match json_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = body
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return bad_request(
            "ErrorInvalidRequest",
            "The displayName property is required.",
        );
    };
    let mut st = shared.lock();
    let uid = match find_user(&st, user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let parent = match parent {
        Some(p) => match find_folder(&st, &uid, p) {
            Ok(f) => f,
            Err(r) => return r,
        },
        None => st.users[&uid].root_id(),
    };
    match ops::create_folder(&mut st, &uid, &parent, name) {
        Ok(fid) => {
            let u = &st.users[&uid];
            (
                StatusCode::CREATED,
                axum::Json(u.folder_json(&u.folders[&fid])),
            )
                .into_response()
        }
        Err(e) => op_error(e, user),
    }
}

pub(crate) async fn create_folder(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(&shared, &user, None, &headers, &body).await
}

pub(crate) async fn create_child(
    State(shared): State<Arc<Shared>>,
    Path((user, folder)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(&shared, &user, Some(&folder), &headers, &body).await
}

/// `POST /users/{user}/sendMail` (learn.microsoft.com/graph/api/user-sendmail): JSON
/// with `message` and `saveToSentItems` (default true), or base64 MIME with
/// `Content-Type: text/plain`, which is always saved to Sent Items. 202, no body.
pub(crate) async fn send_mail(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Send) {
        return r;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let upn = {
        let st = shared.lock();
        match find_user(&st, &user) {
            Ok(uid) => st.users[&uid].upn.clone(),
            Err(r) => return r,
        }
    };
    let (mime, save, was_mime) = if content_type.starts_with("text/plain") {
        let text: String = String::from_utf8_lossy(&body).split_whitespace().collect();
        match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
            Ok(mime) if !mime.is_empty() => (mime, true, true),
            _ => {
                return bad_request(
                    "ErrorMimeContentInvalidBase64String",
                    "Invalid base64 string for MIME content.",
                );
            }
        }
    } else {
        let body = match json_body(&body) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(message) = body.get("message") else {
            return bad_request("ErrorInvalidRequest", "The message parameter is required.");
        };
        let save = body
            .get("saveToSentItems")
            .is_none_or(|v| v.as_bool() != Some(false) && v.as_str() != Some("false"));
        (mime_from_json(&upn, message), save, false)
    };
    let recipients = recipients_of(&mime);
    if recipients.is_empty() {
        return bad_request(
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
        );
    }
    {
        let mut st = shared.lock();
        let Some(uid) = st.user_key(&user) else {
            return user_not_found(&user);
        };
        let saved_copy_id = if save {
            let sent = st.users[&uid].folder_key("sentitems").unwrap_or_default();
            ops::deliver(&mut st, &uid, &sent, mime.clone(), true).ok()
        } else {
            None
        };
        st.sent.push(SentMail {
            user_id: uid,
            from_upn: upn,
            mime,
            recipients,
            saved_copy_id,
            was_mime,
        });
        if st.lost_send_answers > 0 {
            st.lost_send_answers -= 1;
            drop(st);
            shared.flush_notices();
            return graph_error(
                StatusCode::GATEWAY_TIMEOUT,
                "UnknownError",
                "The gateway did not receive a timely response.",
            );
        }
    }
    shared.flush_notices();
    StatusCode::ACCEPTED.into_response()
}

/// Every To, Cc and Bcc address of a MIME message, lower case.
fn recipients_of(mime: &[u8]) -> Vec<String> {
    let Some(parsed) = mail_parser::MessageParser::default().parse(mime) else {
        return Vec::new();
    };
    [parsed.to(), parsed.cc(), parsed.bcc()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address().map(str::to_ascii_lowercase))
        .collect()
}

/// A plain MIME rendering of a JSON message (subject, text or HTML body, recipients).
fn mime_from_json(from: &str, message: &Value) -> Vec<u8> {
    let list = |field: &str| -> String {
        message
            .get(field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.pointer("/emailAddress/address").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let subject = message.get("subject").and_then(Value::as_str).unwrap_or("");
    let html = message
        .pointer("/body/contentType")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("html"));
    let content = message
        .pointer("/body/content")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut out = format!(
        "From: {from}\r\nSubject: {subject}\r\nMessage-ID: <{}@graph.test>\r\nDate: {}\r\nMIME-Version: 1.0\r\n",
        uuid::Uuid::new_v4().simple(),
        chrono::Utc::now().to_rfc2822()
    );
    for (field, name) in [
        ("toRecipients", "To"),
        ("ccRecipients", "Cc"),
        ("bccRecipients", "Bcc"),
    ] {
        let value = list(field);
        if !value.is_empty() {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let kind = if html { "text/html" } else { "text/plain" };
    out.push_str(&format!(
        "Content-Type: {kind}; charset=utf-8\r\n\r\n{content}\r\n"
    ));
    out.into_bytes()
}
