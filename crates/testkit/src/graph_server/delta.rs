//! `GET /users/{user}/mailFolders/{folder}/messages/delta`
//! (learn.microsoft.com/graph/delta-query-messages): a round of pages linked by
//! `@odata.nextLink` (`$skiptoken`) ending with an `@odata.deltaLink`
//! (`$deltatoken`); the next round from that link returns what changed since —
//! created or updated messages in full, and `@removed` entries for what left the
//! folder. Pages hold 10 entries unless `Prefer: odata.maxpagesize` asks otherwise.
//! An unknown or expired token answers 410 Gone with `syncStateNotFound` and a
//! `Location` header holding the initial request (delta-query-overview,
//! "Synchronization reset" and "Token duration").

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::auth::{Need, authorize};
use super::errors::{graph_error, item_not_found, user_not_found};
use super::state::{DeltaEntry, DeltaMark, DeltaRound, State as MailState};

/// Graph's page size for messages when the client states no preference.
const DEFAULT_PAGE: usize = 10;

/// `odata.maxpagesize=N` from the `Prefer` headers.
pub(crate) fn max_page_size(headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        .find_map(|n| n.trim().parse().ok())
}

pub(crate) async fn delta(
    State(shared): State<Arc<Shared>>,
    Path((user, folder)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = authorize(&shared.check, &headers, Need::Read) {
        return denied;
    }
    let page = max_page_size(&headers).unwrap_or(DEFAULT_PAGE).max(1);
    let mut st = shared.lock();
    let Some(uid) = st.user_key(&user) else {
        return user_not_found(&user);
    };
    let Some(fid) = st.users[&uid].folder_key(&folder) else {
        return item_not_found();
    };
    let link = format!(
        "{}/users/{uid}/mailFolders/{fid}/messages/delta",
        shared.base
    );
    let mut round = if let Some(skip) = query.get("$skiptoken") {
        match st.rounds.remove(skip) {
            Some(r) if r.user_id == uid && r.folder_id == fid => r,
            _ => return gone(&link),
        }
    } else if let Some(token) = query.get("$deltatoken") {
        match st.marks.get(token) {
            Some(mark) if mark.user_id == uid && mark.folder_id == fid => {
                let mark = mark.clone();
                round_since(&st, &mark)
            }
            _ => return gone(&link),
        }
    } else {
        let select = query
            .get("$select")
            .map(|s| s.split(',').map(|f| f.trim().to_owned()).collect());
        round_since(
            &st,
            &DeltaMark {
                user_id: uid.clone(),
                folder_id: fid.clone(),
                seq: 0,
                select,
            },
        )
    };
    let n = page.min(round.entries.len());
    let taken: Vec<DeltaEntry> = round.entries.drain(..n).collect();
    let value: Vec<Value> = {
        let u = &st.users[&uid];
        taken
            .iter()
            .map(|entry| match entry {
                DeltaEntry::Message(id) => match u.messages.get(id) {
                    Some(m) if m.folder_id == fid => m.to_json(round.select.as_deref()),
                    _ => removed(id),
                },
                DeltaEntry::Removed(id) => removed(id),
            })
            .collect()
    };
    let token = st.new_token();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#Collection(message)", shared.base),
        "value": value,
    });
    if round.entries.is_empty() {
        body["@odata.deltaLink"] = json!(format!("{link}?$deltatoken={token}"));
        st.marks.insert(
            token,
            DeltaMark {
                user_id: uid,
                folder_id: fid,
                seq: round.end_seq,
                select: round.select,
            },
        );
    } else {
        body["@odata.nextLink"] = json!(format!("{link}?$skiptoken={token}"));
        st.rounds.insert(token, round);
    }
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("odata.maxpagesize={page}")) {
        response.headers_mut().insert("preference-applied", v);
    }
    response
}

fn removed(id: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.message",
        "id": id,
        "@removed": { "reason": "deleted" },
    })
}

/// The entries of a round that starts after `mark.seq` (0: everything in the folder).
fn round_since(st: &MailState, mark: &DeltaMark) -> DeltaRound {
    let u = &st.users[&mark.user_id];
    let mut changed: Vec<(u64, &str)> = u
        .messages
        .values()
        .filter(|m| m.folder_id == mark.folder_id && m.changed_seq > mark.seq)
        .map(|m| (m.changed_seq, m.id.as_str()))
        .collect();
    changed.sort_unstable();
    let mut entries: VecDeque<DeltaEntry> = changed
        .iter()
        .map(|(_, id)| DeltaEntry::Message((*id).to_owned()))
        .collect();
    if mark.seq > 0 {
        let mut seen = BTreeSet::new();
        for t in u
            .tombstones
            .iter()
            .filter(|t| t.folder_id == mark.folder_id && t.seq > mark.seq)
        {
            let still_here = u
                .messages
                .get(&t.message_id)
                .is_some_and(|m| m.folder_id == mark.folder_id);
            if !still_here && seen.insert(t.message_id.clone()) {
                entries.push_back(DeltaEntry::Removed(t.message_id.clone()));
            }
        }
    }
    DeltaRound {
        user_id: mark.user_id.clone(),
        folder_id: mark.folder_id.clone(),
        entries,
        end_seq: st.seq,
        select: mark.select.clone(),
    }
}

/// 410 Gone: the state token is unknown or expired; start again from `initial`.
fn gone(initial: &str) -> Response {
    let mut response = graph_error(
        StatusCode::GONE,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    );
    if let Ok(v) = HeaderValue::from_str(initial) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_read_from_any_prefer_header() {
        let cases: [(&[&str], Option<usize>); 4] = [
            (&["odata.maxpagesize=2"], Some(2)),
            (
                &["IdType=\"ImmutableId\"", "odata.maxpagesize=50"],
                Some(50),
            ),
            (&["IdType=\"ImmutableId\", odata.maxpagesize=7"], Some(7)),
            (&["IdType=\"ImmutableId\""], None),
        ];
        for (values, expected) in cases {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append("prefer", HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(max_page_size(&headers), expected, "{values:?}");
        }
    }
}
