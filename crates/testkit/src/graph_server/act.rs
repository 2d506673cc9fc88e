//! The calendar, contacts and To Do endpoints of the Graph test server, built from
//! Microsoft's Graph documentation: events of the default calendar (series with
//! `patternedRecurrence`, their instances, modified and cancelled occurrences),
//! `calendarView/delta` over a window, contacts of the default folder
//! (`contactFolders/contacts`) and their delta, To Do lists and tasks and their
//! delta, and single-value extended properties on the calendar.
//!
//! Every change bumps the item's `changeKey` and `@odata.etag`; `If-Match` with
//! an older etag answers `412` with `ErrorIrresolvableConflict`, as Exchange does.
//! Delta queries give state tokens (`$skiptoken` pages, `$deltatoken` rounds)
//! and `@removed` entries for deletions; an unknown token answers 410 Gone with
//! `syncStateNotFound`. A change to a series reports all its instances in the
//! view again (the master changed), and a cancelled occurrence is `@removed`.
//! Permissions are checked per area: `Calendars.ReadWrite`, `Contacts.ReadWrite`
//! and `Tasks.ReadWrite.All` (or their `.Read` forms for reads).
//! The server does not convert times between zones (it has no time zone
//! database): it answers in the zone an item was written in, whatever
//! `Prefer: outlook.timezone` asks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{Days, NaiveDate};
use serde_json::{Value, json};

use super::act_state::{
    ActMark, ActPage, ActUser, Event, Exception, Item, merge, now_text, occurrence_id,
    parse_occurrence_id, with_version,
};
use super::auth::{Need, authorize};
use super::delta::max_page_size;
use super::errors::{access_denied, bad_request, graph_error, item_not_found, user_not_found};
use super::state::State as MailState;
use super::{GraphTestServer, Shared};

/// Graph's page size for delta queries when the client states no preference.
const DEFAULT_PAGE: usize = 10;

type Params = Query<HashMap<String, String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Calendars,
    Contacts,
    Tasks,
}

/// The permissions a token carries (`roles`, or `scp` for delegated tokens). The
/// signature was checked by `authorize` first.
fn granted(headers: &HeaderMap) -> Vec<String> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap_or("");
    let claims: Value = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let mut out: Vec<String> = claims["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(scp) = claims["scp"].as_str() {
        out.extend(scp.split_whitespace().map(str::to_owned));
    }
    out
}

fn permit(shared: &Shared, headers: &HeaderMap, area: Area, write: bool) -> Result<(), Response> {
    authorize(&shared.check, headers, Need::Any)?;
    let roles = granted(headers);
    let has = |p: &str| roles.iter().any(|r| r.eq_ignore_ascii_case(p));
    let ok = match area {
        Area::Calendars => has("Calendars.ReadWrite") || (!write && has("Calendars.Read")),
        Area::Contacts => has("Contacts.ReadWrite") || (!write && has("Contacts.Read")),
        Area::Tasks => {
            has("Tasks.ReadWrite.All")
                || has("Tasks.ReadWrite")
                || (!write && (has("Tasks.Read.All") || has("Tasks.Read")))
        }
    };
    if ok { Ok(()) } else { Err(access_denied()) }
}

/// The user's id, with their ACT folders made on first use.
fn act_user(st: &mut MailState, user: &str) -> Result<String, Response> {
    let uid = st.user_key(user).ok_or_else(|| user_not_found(user))?;
    if !st.act.users.contains_key(&uid) {
        let calendar_id = st.new_id("Cale");
        let contact_folder_id = st.new_id("Cfld");
        let list_id = st.new_id("List");
        let seq = st.next_seq();
        let mut au = ActUser {
            calendar_id,
            contact_folder_id,
            ..ActUser::default()
        };
        au.lists.insert(
            list_id.clone(),
            Item {
                json: json!({"displayName": "Tasks", "wellknownListName": "defaultList", "isOwner": true, "isShared": false}),
                seq,
            },
        );
        au.tasks.insert(list_id, Default::default());
        st.act.users.insert(uid.clone(), au);
    }
    Ok(uid)
}

fn json_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| bad_request("BadRequest", "Unable to read JSON request payload."))
}

/// `If-Match` against the item's current version: 412 when it is stale.
fn check_if_match(headers: &HeaderMap, seq: u64) -> Result<(), Response> {
    let Some(v) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let key = super::act_state::change_key(seq);
    let given = v.trim().trim_start_matches("W/").trim_matches('"');
    if given == "*" || given == key {
        return Ok(());
    }
    Err(graph_error(
        StatusCode::PRECONDITION_FAILED,
        "ErrorIrresolvableConflict",
        "The change key passed in the request does not match the current change key for the item.",
    ))
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

fn date_param(q: &HashMap<String, String>, k: &str) -> Option<NaiveDate> {
    let v = q.get(k)?;
    NaiveDate::parse_from_str(v.get(..10)?, "%Y-%m-%d").ok()
}

// ----- delta -------------------------------------------------------------------

/// The entries of `mark.collection` changed after `mark.seq`.
fn entries_since(st: &MailState, mark: &ActMark) -> Vec<Value> {
    let Some(au) = st.act.users.get(&mark.user_id) else {
        return Vec::new();
    };
    let mut changed: Vec<(u64, Vec<Value>)> = Vec::new();
    let items =
        |m: &std::collections::BTreeMap<String, Item>, kind: &str| -> Vec<(u64, Vec<Value>)> {
            m.iter()
                .filter(|(_, i)| i.seq > mark.seq)
                .map(|(id, i)| (i.seq, vec![with_version(&i.json, id, i.seq, kind)]))
                .collect()
        };
    if mark.collection == "contacts" {
        changed = items(&au.contacts, "#microsoft.graph.contact");
    } else if let Some(list) = mark.collection.strip_prefix("tasks:") {
        if let Some(tasks) = au.tasks.get(list) {
            changed = items(tasks, "#microsoft.graph.todoTask");
        }
    } else if mark.collection == "calendar" {
        let (from, to) = mark.window.unwrap_or((NaiveDate::MIN, NaiveDate::MAX));
        for (id, e) in &au.events {
            if e.seq <= mark.seq {
                continue;
            }
            if e.is_series() {
                changed.push((e.seq, e.instances_between(id, from, to)));
            } else if e.date().is_some_and(|d| d >= from && d <= to) {
                changed.push((e.seq, vec![e.to_json(id)]));
            }
        }
    }
    changed.sort_by_key(|(seq, _)| *seq);
    let mut out: Vec<Value> = changed.into_iter().flat_map(|(_, v)| v).collect();
    if mark.seq > 0 {
        for (c, id, seq) in &au.tombstones {
            if *c == mark.collection && *seq > mark.seq {
                out.push(json!({ "id": id, "@removed": { "reason": "deleted" } }));
            }
        }
    }
    out
}

/// One page of a delta round: from a `$skiptoken`, a `$deltatoken`, or `start`.
fn serve_delta(
    st: &mut MailState,
    link: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    start: ActMark,
) -> Response {
    let gone = || {
        let mut r = graph_error(
            StatusCode::GONE,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        );
        if let Ok(v) = HeaderValue::from_str(link) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    };
    let mut page = if let Some(skip) = q.get("$skiptoken") {
        match st.act.pages.remove(skip) {
            Some(p) if p.end.user_id == start.user_id && p.end.collection == start.collection => p,
            _ => return gone(),
        }
    } else {
        let mark = if let Some(token) = q.get("$deltatoken") {
            match st.act.marks.get(token) {
                Some(m) if m.user_id == start.user_id && m.collection == start.collection => {
                    m.clone()
                }
                _ => return gone(),
            }
        } else {
            start
        };
        let entries: VecDeque<Value> = entries_since(st, &mark).into();
        ActPage {
            entries,
            end: ActMark {
                seq: st.seq,
                ..mark
            },
        }
    };
    let n = max_page_size(headers)
        .unwrap_or(DEFAULT_PAGE)
        .max(1)
        .min(page.entries.len());
    let value: Vec<Value> = page.entries.drain(..n).collect();
    let token = st.new_token();
    let mut body = json!({ "value": value });
    if page.entries.is_empty() {
        body["@odata.deltaLink"] = json!(format!("{link}?$deltatoken={token}"));
        st.act.marks.insert(token, page.end);
    } else {
        body["@odata.nextLink"] = json!(format!("{link}?$skiptoken={token}"));
        st.act.pages.insert(token, page);
    }
    axum::Json(body).into_response()
}

// ----- calendar ----------------------------------------------------------------

fn calendar_json(au: &ActUser, q: &HashMap<String, String>) -> Value {
    let seq = au.calendar.as_ref().map_or(1, |c| c.seq);
    let mut v = with_version(
        &json!({"name": "Calendar", "canEdit": true, "isDefaultCalendar": true}),
        &au.calendar_id,
        seq,
        "#microsoft.graph.calendar",
    );
    if let Some(expand) = q.get("$expand")
        && expand.starts_with("singleValueExtendedProperties")
    {
        // `($filter=id eq '...')`: the one property, else all of them.
        let wanted = expand
            .split_once("id eq '")
            .and_then(|(_, rest)| rest.rsplit_once('\''))
            .map(|(id, _)| id.replace("''", "'"));
        let props: Vec<Value> = au
            .calendar_props
            .iter()
            .filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(id)))
            .map(|(id, value)| json!({ "id": id, "value": value }))
            .collect();
        v["singleValueExtendedProperties"] = json!(props);
    }
    v
}

pub(crate) async fn get_calendar(
    State(shared): State<Arc<Shared>>,
    Path(p): Path<HashMap<String, String>>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = permit(&shared, &headers, Area::Calendars, false) {
        return r;
    }
    let mut st = shared.lock();
    let uid = match act_user(&mut st, &p["user"]) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let au = &st.act.users[&uid];
    if p.get("id").is_some_and(|id| *id != au.calendar_id) {
        return item_not_found();
    }
    axum::Json(calendar_json(au, &q)).into_response()
}

pub(crate) async fn patch_calendar(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = permit(&shared, &headers, Area::Calendars, true) {
        return r;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = shared.lock();
    let uid = match act_user(&mut st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if st.act.users[&uid].calendar_id != id {
        return item_not_found();
    }
    let seq = st.next_seq();
    let au = st.act.users.get_mut(&uid).expect("the user was just made");
    for p in body["singleValueExtendedProperties"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(pid), Some(value)) = (p["id"].as_str(), p["value"].as_str()) {
            au.calendar_props.insert(pid.to_owned(), value.to_owned());
        }
    }
    au.calendar = Some(Item {
        json: Value::Null,
        seq,
    });
    axum::Json(calendar_json(au, &HashMap::new())).into_response()
}

pub(crate) async fn calendar_delta(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = permit(&shared, &headers, Area::Calendars, false) {
        return r;
    }
    let mut st = shared.lock();
    let uid = match act_user(&mut st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let window = match (
        date_param(&q, "startDateTime"),
        date_param(&q, "endDateTime"),
    ) {
        (Some(a), Some(b)) => Some((a, b)),
        _ if q.contains_key("$skiptoken") || q.contains_key("$deltatoken") => None,
        _ => {
            return bad_request(
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            );
        }
    };
    let link = format!("{}/users/{uid}/calendarView/delta", shared.base);
    let start = ActMark {
        user_id: uid,
        collection: "calendar".to_owned(),
        seq: 0,
        window,
    };
    serve_delta(&mut st, &link, &q, &headers, start)
}

pub(crate) async fn create_event(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = permit(&shared, &headers, Area::Calendars, true) {
        return r;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = shared.lock();
    let uid = match act_user(&mut st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = insert_event(&mut st, &uid, &body);
    created(st.act.users[&uid].events[&id].to_json(&id))
}

/// Stores a new event (or finds the one with the same `transactionId`); its id.
fn insert_event(st: &mut MailState, uid: &str, body: &Value) -> String {
    if let Some(tx) = body["transactionId"].as_str()
        && let Some((id, _)) = st.act.users[uid]
            .events
            .iter()
            .find(|(_, e)| e.json["transactionId"].as_str() == Some(tx))
    {
        return id.clone();
    }
    let id = st.new_id("Evnt");
    let seq = st.next_seq();
    let upn = st.users.get(uid).map(|u| u.upn.clone()).unwrap_or_default();
    let mut json = json!({
        "createdDateTime": now_text(),
        "lastModifiedDateTime": now_text(),
        "iCalUId": format!("040000008200E00074C5B7101A82E008{}", uuid::Uuid::new_v4().simple()),
        "subject": "", "isAllDay": false, "isCancelled": false, "showAs": "busy",
        "categories": [], "attendees": [], "recurrence": null,
        "body": {"contentType": "text", "content": ""},
        "location": {"displayName": ""},
        "organizer": {"emailAddress": {"name": upn, "address": upn}},
    });
    merge(&mut json, body);
    if let Some(attendees) = json["attendees"].as_array_mut() {
        for a in attendees {
            if a.get("status").is_none() {
                a["status"] = json!({"response": "none", "time": "0001-01-01T00:00:00Z"});
            }
        }
    }
    let au = st.act.users.get_mut(uid).expect("an ACT user");
    au.events.insert(
        id.clone(),
        Event {
            json,
            seq,
            exceptions: Default::default(),
            cancelled: Default::default(),
        },
    );
    id
}

/// An event or an instance by id.
fn find_event(au: &ActUser, id: &str) -> Option<Value> {
    if let Some(e) = au.events.get(id) {
        return Some(e.to_json(id));
    }
    let (master, date) = parse_occurrence_id(id)?;
    au.events.get(&master)?.instance(&master, date)
}

pub(crate) async fn get_event(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = permit(&shared, &headers, Area::Calendars, false) {
        return r;
    }
    let mut st = shared.lock();
    let uid = match act_user(&mut st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match find_event(&st.act.users[&uid], &id) {
        Some(v) => axum::Json(v).into_response(),
        None => item_not_found(),
    }
}

/// Changes an event or one occurrence (which becomes an exception).
fn update_event(
    st: &mut MailState,
    uid: &str,
    id: &str,
    headers: Option<&HeaderMap>,
    patch: &Value,
) -> Result<Value, Response> {
    let seq = st.next_seq();
    let au = st.act.users.get_mut(uid).expect("an ACT user");
    if let Some(e) = au.events.get_mut(id) {
        if let Some(h) = headers {
            check_if_match(h, e.seq)?;
        }
        merge(&mut e.json, patch);
        e.json["lastModifiedDateTime"] = json!(now_text());
        e.seq = seq;
        return Ok(e.to_json(id));
    }
    let (master, date) = parse_occurrence_id(id).ok_or_else(item_not_found)?;
    let e = au.events.get_mut(&master).ok_or_else(item_not_found)?;
    if e.instance(&master, date).is_none() {
        return Err(item_not_found());
    }
    if let Some(h) = headers {
        let current_seq = e.exceptions.get(&date).map_or(e.seq, |x| x.seq);
        check_if_match(h, current_seq)?;
    }
    let mut json = e
        .exceptions
        .get(&date)
        .map_or_else(|| e.occurrence_base(date), |x| x.json.clone());
    merge(&mut json, patch);
    json["lastModifiedDateTime"] = json!(now_text());
    e.exceptions.insert(date, Exception { json, seq });
    // Exchange keeps the exceptions in the master: it changes too.
    e.seq = seq;
    e.instance(&master, date).ok_or_else(item_not_found)
}

/// Deletes an event (a whole series) or cancels one occurrence.
fn remove_event(
    st: &mut MailState,
    uid: &str,
    id: &str,
    headers: Option<&HeaderMap>,
) -> Result<(), Response> {
    let seq = st.next_seq();
    let au = st.act.users.get_mut(uid).expect("an ACT user");
    if let Some(e) = au.events.get(id) {
        if let Some(h) = headers {
            check_if_match(h, e.seq)?;
        }
        // The instances a calendar view showed go with their series.
        let first = e.date().unwrap_or(NaiveDate::MIN);
        let instances = e.instances_between(id, first, first + Days::new(3 * 366));
        for i in instances {
            if let Some(iid) = i["id"].as_str() {
                au.tombstones
                    .push(("calendar".to_owned(), iid.to_owned(), seq));
            }
        }
        au.events.remove(id);
        au.tombstones
            .push(("calendar".to_owned(), id.to_owned(), seq));
        return Ok(());
    }
    let (master, date) = parse_occurrence_id(id).ok_or_else(item_not_found)?;
    let e = au.events.get_mut(&master).ok_or_else(item_not_found)?;
    if e.instance(&master, date).is_none() {
        return Err(item_not_found());
    }
    if let Some(h) = headers {
        check_if_match(h, e.exceptions.get(&date).map_or(e.seq, |x| x.seq))?;
    }
    e.exceptions.remove(&date);
    e.cancelled.insert(date);
    e.seq = seq;
    au.tombstones
        .push(("calendar".to_owned(), id.to_owned(), seq));
    Ok(())
}

pub(crate) async fn patch_event(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = permit(&shared, &headers, Area::Calendars, true) {
        return r;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = shared.lock();
    let uid = match act_user(&mut st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match update_event(&mut st, &uid, &id, Some(&headers), &body) {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn delete_event(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = permit(&shared, &headers, Area::Calendars, true) {
        return r;
    }
    let mut st = shared.lock();
    let uid = match act_user(&mut st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match remove_event(&mut st, &uid, &id, Some(&headers)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn instances(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = permit(&shared, &headers, Area::Calendars, false) {
        return r;
    }
    let (Some(from), Some(to)) = (
        date_param(&q, "startDateTime"),
        date_param(&q, "endDateTime"),
    ) else {
        return bad_request(
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        );
    };
    let mut st = shared.lock();
    let uid = match act_user(&mut st, &user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match st.act.users[&uid].events.get(&id) {
        Some(e) => {
            axum::Json(json!({ "value": e.instances_between(&id, from, to) })).into_response()
        }
        None => item_not_found(),
    }
}

// ----- contacts and tasks ------------------------------------------------------

/// A collection of plain items: the default contacts folder, or one To Do list.
#[derive(Debug, Clone)]
enum Coll {
    Contacts,
    Tasks(String),
}

impl Coll {
    fn name(&self) -> String {
        match self {
            Coll::Contacts => "contacts".to_owned(),
            Coll::Tasks(list) => format!("tasks:{list}"),
        }
    }

    fn odata_type(&self) -> &'static str {
        match self {
            Coll::Contacts => "#microsoft.graph.contact",
            Coll::Tasks(_) => "#microsoft.graph.todoTask",
        }
    }

    fn area(&self) -> Area {
        match self {
            Coll::Contacts => Area::Contacts,
            Coll::Tasks(_) => Area::Tasks,
        }
    }

    fn items<'a>(
        &self,
        au: &'a mut ActUser,
    ) -> Option<&'a mut std::collections::BTreeMap<String, Item>> {
        match self {
            Coll::Contacts => Some(&mut au.contacts),
            Coll::Tasks(list) => au.tasks.get_mut(list),
        }
    }
}

/// The contacts folder a path names (its id or `contacts`), checked.
fn contacts_of(au: &ActUser, folder: &str) -> Result<Coll, Response> {
    if folder.eq_ignore_ascii_case("contacts") || folder == au.contact_folder_id {
        Ok(Coll::Contacts)
    } else {
        Err(item_not_found())
    }
}

fn defaults(c: &Coll, upn: &str) -> Value {
    match c {
        Coll::Contacts => json!({
            "createdDateTime": now_text(), "displayName": "", "emailAddresses": [],
            "businessPhones": [], "homePhones": [], "categories": [],
        }),
        Coll::Tasks(_) => json!({
            "createdDateTime": now_text(), "title": "", "status": "notStarted",
            "importance": "normal", "isReminderOn": false, "categories": [],
            "body": {"contentType": "text", "content": ""}, "createdBy": upn,
        }),
    }
}

fn insert_item(st: &mut MailState, uid: &str, c: &Coll, body: &Value) -> Result<Value, Response> {
    let id = st.new_id(match c {
        Coll::Contacts => "Cont",
        Coll::Tasks(_) => "Task",
    });
    let seq = st.next_seq();
    let upn = st.users.get(uid).map(|u| u.upn.clone()).unwrap_or_default();
    let au = st.act.users.get_mut(uid).expect("an ACT user");
    let parent = au.contact_folder_id.clone();
    let items = c.items(au).ok_or_else(item_not_found)?;
    let mut json = defaults(c, &upn);
    merge(&mut json, body);
    json["lastModifiedDateTime"] = json!(now_text());
    if matches!(c, Coll::Contacts) {
        json["parentFolderId"] = json!(parent);
    }
    let v = with_version(&json, &id, seq, c.odata_type());
    items.insert(id, Item { json, seq });
    Ok(v)
}

fn update_item(
    st: &mut MailState,
    uid: &str,
    c: &Coll,
    id: &str,
    headers: Option<&HeaderMap>,
    patch: &Value,
) -> Result<Value, Response> {
    let seq = st.next_seq();
    let au = st.act.users.get_mut(uid).expect("an ACT user");
    let item = c
        .items(au)
        .and_then(|m| m.get_mut(id))
        .ok_or_else(item_not_found)?;
    if let Some(h) = headers {
        check_if_match(h, item.seq)?;
    }
    merge(&mut item.json, patch);
    item.json["lastModifiedDateTime"] = json!(now_text());
    item.seq = seq;
    Ok(with_version(&item.json, id, seq, c.odata_type()))
}

fn remove_item(
    st: &mut MailState,
    uid: &str,
    c: &Coll,
    id: &str,
    headers: Option<&HeaderMap>,
) -> Result<(), Response> {
    let seq = st.next_seq();
    let au = st.act.users.get_mut(uid).expect("an ACT user");
    let items = c.items(au).ok_or_else(item_not_found)?;
    let current = items.get(id).ok_or_else(item_not_found)?;
    if let Some(h) = headers {
        check_if_match(h, current.seq)?;
    }
    items.remove(id);
    au.tombstones.push((c.name(), id.to_owned(), seq));
    Ok(())
}

/// The shared shape of the item handlers: authorize, find the user, run `f`.
fn with_user(
    shared: &Shared,
    headers: &HeaderMap,
    area: Area,
    write: bool,
    user: &str,
    f: impl FnOnce(&mut MailState, &str) -> Result<Response, Response>,
) -> Response {
    if let Err(r) = permit(shared, headers, area, write) {
        return r;
    }
    let mut st = shared.lock();
    let uid = match act_user(&mut st, user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    f(&mut st, &uid).unwrap_or_else(|r| r)
}

pub(crate) async fn get_contact_folder(
    State(shared): State<Arc<Shared>>,
    Path((user, folder)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    with_user(
        &shared,
        &headers,
        Area::Contacts,
        false,
        &user,
        |st, uid| {
            let au = &st.act.users[uid];
            contacts_of(au, &folder)?;
            Ok(axum::Json(json!({"id": au.contact_folder_id, "displayName": "Contacts", "parentFolderId": ""}))
            .into_response())
        },
    )
}

pub(crate) async fn contacts_delta(
    State(shared): State<Arc<Shared>>,
    Path((user, folder)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    let base = shared.base.clone();
    with_user(
        &shared,
        &headers,
        Area::Contacts,
        false,
        &user,
        |st, uid| {
            let au = &st.act.users[uid];
            contacts_of(au, &folder)?;
            let link = format!(
                "{base}/users/{uid}/contactFolders/{}/contacts/delta",
                au.contact_folder_id
            );
            let start = ActMark {
                user_id: uid.to_owned(),
                collection: "contacts".to_owned(),
                seq: 0,
                window: None,
            };
            Ok(serve_delta(st, &link, &q, &headers, start))
        },
    )
}

pub(crate) async fn create_contact(
    State(shared): State<Arc<Shared>>,
    Path((user, folder)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    with_user(&shared, &headers, Area::Contacts, true, &user, |st, uid| {
        let c = contacts_of(&st.act.users[uid], &folder)?;
        let body = json_body(&body)?;
        insert_item(st, uid, &c, &body).map(created)
    })
}

/// GET, PATCH or DELETE of one contact or task.
async fn item_op(
    shared: Arc<Shared>,
    method: axum::http::Method,
    user: String,
    coll: Coll,
    id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let write = method != axum::http::Method::GET;
    let area = coll.area();
    with_user(
        &shared,
        &headers,
        area,
        write,
        &user,
        |st, uid| match method.as_str() {
            "GET" => {
                let au = st.act.users.get_mut(uid).expect("an ACT user");
                let item = coll
                    .items(au)
                    .and_then(|m| m.get(&id))
                    .ok_or_else(item_not_found)?;
                Ok(
                    axum::Json(with_version(&item.json, &id, item.seq, coll.odata_type()))
                        .into_response(),
                )
            }
            "PATCH" => {
                let patch = json_body(&body)?;
                update_item(st, uid, &coll, &id, Some(&headers), &patch)
                    .map(|v| axum::Json(v).into_response())
            }
            _ => remove_item(st, uid, &coll, &id, Some(&headers))
                .map(|()| StatusCode::NO_CONTENT.into_response()),
        },
    )
}

pub(crate) async fn contact(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    item_op(shared, method, user, Coll::Contacts, id, headers, body).await
}

pub(crate) async fn task(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    Path((user, list, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    item_op(shared, method, user, Coll::Tasks(list), id, headers, body).await
}

fn list_json(id: &str, l: &Item) -> Value {
    with_version(&l.json, id, l.seq, "#microsoft.graph.todoTaskList")
}

pub(crate) async fn todo_lists(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let write = method == axum::http::Method::POST;
    with_user(&shared, &headers, Area::Tasks, write, &user, |st, uid| {
        if !write {
            let lists: Vec<Value> = st.act.users[uid]
                .lists
                .iter()
                .map(|(id, l)| list_json(id, l))
                .collect();
            return Ok(axum::Json(json!({ "value": lists })).into_response());
        }
        let body = json_body(&body)?;
        let name = body["displayName"].as_str().unwrap_or("").to_owned();
        if name.is_empty() {
            return Err(bad_request("invalidRequest", "displayName is required."));
        }
        Ok(created(insert_list(st, uid, &name)))
    })
}

fn insert_list(st: &mut MailState, uid: &str, name: &str) -> Value {
    let id = st.new_id("List");
    let seq = st.next_seq();
    let au = st.act.users.get_mut(uid).expect("an ACT user");
    let item = Item {
        json: json!({"displayName": name, "wellknownListName": "none", "isOwner": true, "isShared": false}),
        seq,
    };
    let v = list_json(&id, &item);
    au.lists.insert(id.clone(), item);
    au.tasks.insert(id, Default::default());
    v
}

pub(crate) async fn tasks_delta(
    State(shared): State<Arc<Shared>>,
    Path((user, list)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    let base = shared.base.clone();
    with_user(&shared, &headers, Area::Tasks, false, &user, |st, uid| {
        if !st.act.users[uid].lists.contains_key(&list) {
            return Err(item_not_found());
        }
        let link = format!("{base}/users/{uid}/todo/lists/{list}/tasks/delta");
        let start = ActMark {
            user_id: uid.to_owned(),
            collection: Coll::Tasks(list.clone()).name(),
            seq: 0,
            window: None,
        };
        Ok(serve_delta(st, &link, &q, &headers, start))
    })
}

pub(crate) async fn create_task(
    State(shared): State<Arc<Shared>>,
    Path((user, list)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    with_user(&shared, &headers, Area::Tasks, true, &user, |st, uid| {
        let body = json_body(&body)?;
        insert_item(st, uid, &Coll::Tasks(list.clone()), &body).map(created)
    })
}

// ----- for tests -----------------------------------------------------------------

impl GraphTestServer {
    fn act_do<T>(&self, user: &str, f: impl FnOnce(&mut MailState, &str) -> T) -> T {
        let mut st = self.shared.lock();
        let uid = act_user(&mut st, user)
            .unwrap_or_else(|_| panic!("{user} is not a user of the Graph test server"));
        f(&mut st, &uid)
    }

    /// Adds an event to the user's calendar as Outlook would (Graph's JSON: `subject`,
    /// `start`, `end`, `recurrence`, ...); returns its id.
    pub fn add_event(&self, user: &str, event: Value) -> String {
        self.act_do(user, |st, uid| insert_event(st, uid, &event))
    }

    /// The user's events (single ones and series masters), as Graph shows them.
    pub fn events(&self, user: &str) -> Vec<Value> {
        self.act_do(user, |st, uid| {
            st.act.users[uid]
                .events
                .iter()
                .map(|(id, e)| e.to_json(id))
                .collect()
        })
    }

    /// An event or an occurrence, as Graph shows it.
    pub fn event(&self, user: &str, id: &str) -> Option<Value> {
        self.act_do(user, |st, uid| find_event(&st.act.users[uid], id))
    }

    /// The instances of a series between two dates (inclusive).
    pub fn event_instances(
        &self,
        user: &str,
        id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<Value> {
        self.act_do(user, |st, uid| {
            st.act.users[uid]
                .events
                .get(id)
                .map(|e| e.instances_between(id, from, to))
                .unwrap_or_default()
        })
    }

    /// The id of the occurrence of series `master` on `date`.
    pub fn occurrence_id(&self, master: &str, date: NaiveDate) -> String {
        occurrence_id(master, date)
    }

    /// Changes an event or one occurrence as a user in Outlook would (Graph's PATCH).
    ///
    /// # Panics
    /// For an unknown event.
    pub fn update_event_on_server(&self, user: &str, id: &str, patch: Value) {
        self.act_do(user, |st, uid| update_event(st, uid, id, None, &patch))
            .unwrap_or_else(|_| panic!("no event {id}"));
    }

    /// Deletes an event (a whole series) or cancels one occurrence, as in Outlook.
    ///
    /// # Panics
    /// For an unknown event.
    pub fn delete_event_on_server(&self, user: &str, id: &str) {
        self.act_do(user, |st, uid| remove_event(st, uid, id, None))
            .unwrap_or_else(|_| panic!("no event {id}"));
    }

    /// Adds a contact to the default contacts folder; returns its id.
    pub fn add_contact(&self, user: &str, contact: Value) -> String {
        self.act_do(user, |st, uid| {
            insert_item(st, uid, &Coll::Contacts, &contact)
        })
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
    }

    /// The contacts of the default folder.
    pub fn contacts(&self, user: &str) -> Vec<Value> {
        self.act_do(user, |st, uid| {
            st.act.users[uid]
                .contacts
                .iter()
                .map(|(id, i)| with_version(&i.json, id, i.seq, Coll::Contacts.odata_type()))
                .collect()
        })
    }

    /// Changes a contact as a user in Outlook would.
    ///
    /// # Panics
    /// For an unknown contact.
    pub fn update_contact_on_server(&self, user: &str, id: &str, patch: Value) {
        self.act_do(user, |st, uid| {
            update_item(st, uid, &Coll::Contacts, id, None, &patch)
        })
        .unwrap_or_else(|_| panic!("no contact {id}"));
    }

    /// Deletes a contact as a user in Outlook would.
    ///
    /// # Panics
    /// For an unknown contact.
    pub fn delete_contact_on_server(&self, user: &str, id: &str) {
        self.act_do(user, |st, uid| {
            remove_item(st, uid, &Coll::Contacts, id, None)
        })
        .unwrap_or_else(|_| panic!("no contact {id}"));
    }

    /// Creates a To Do list; returns its id.
    pub fn add_todo_list(&self, user: &str, name: &str) -> String {
        self.act_do(user, |st, uid| insert_list(st, uid, name))["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The user's To Do lists.
    pub fn todo_lists(&self, user: &str) -> Vec<Value> {
        self.act_do(user, |st, uid| {
            st.act.users[uid]
                .lists
                .iter()
                .map(|(id, l)| list_json(id, l))
                .collect()
        })
    }

    /// Adds a task to a list; returns its id.
    ///
    /// # Panics
    /// For an unknown list.
    pub fn add_task(&self, user: &str, list: &str, task: Value) -> String {
        self.act_do(user, |st, uid| {
            insert_item(st, uid, &Coll::Tasks(list.to_owned()), &task)
        })
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|_| panic!("no list {list}"))
    }

    /// The tasks of a list.
    pub fn tasks(&self, user: &str, list: &str) -> Vec<Value> {
        let c = Coll::Tasks(list.to_owned());
        self.act_do(user, |st, uid| {
            st.act.users[uid]
                .tasks
                .get(list)
                .map(|m| {
                    m.iter()
                        .map(|(id, i)| with_version(&i.json, id, i.seq, c.odata_type()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Changes a task as a user in To Do would.
    ///
    /// # Panics
    /// For an unknown task.
    pub fn update_task_on_server(&self, user: &str, list: &str, id: &str, patch: Value) {
        let c = Coll::Tasks(list.to_owned());
        self.act_do(user, |st, uid| update_item(st, uid, &c, id, None, &patch))
            .unwrap_or_else(|_| panic!("no task {id}"));
    }

    /// Deletes a task as a user in To Do would.
    ///
    /// # Panics
    /// For an unknown task.
    pub fn delete_task_on_server(&self, user: &str, list: &str, id: &str) {
        let c = Coll::Tasks(list.to_owned());
        self.act_do(user, |st, uid| remove_item(st, uid, &c, id, None))
            .unwrap_or_else(|_| panic!("no task {id}"));
    }

    /// The value of a single-value extended property of the user's default calendar.
    pub fn calendar_property(&self, user: &str, property_id: &str) -> Option<String> {
        self.act_do(user, |st, uid| {
            st.act.users[uid]
                .calendar_props
                .iter()
                .find(|(id, _)| id.eq_ignore_ascii_case(property_id))
                .map(|(_, v)| v.clone())
        })
    }

    /// Forgets every calendar, contacts and To Do delta token: the next delta
    /// request with one gets 410.
    pub fn expire_act_delta_tokens(&self) {
        let mut st = self.shared.lock();
        st.act.marks.clear();
        st.act.pages.clear();
    }
}
