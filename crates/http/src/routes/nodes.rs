//! `/api/v1/orgs/{org_id}/monitoring/nodes`: the node view. Which mailbridge
//! nodes share the database, whether each is alive, and which of the
//! organization's mailboxes each holds (schedules and watches) right now.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use mailbridge_store::{NodeMailbox, NodeRow};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::ApiQuery;
use crate::list::List;
use crate::{ApiError, AppState};

/// Whether a node works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Its heartbeat is recent.
    Alive,
    /// It stopped cleanly and gave its mailboxes back.
    Stopped,
    /// No heartbeat for longer than the lease time: it died or lost the
    /// database; its mailboxes go to the other nodes as its assignments run out.
    Lost,
}

/// A node sharing the database.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Node {
    /// The node's name in leases (`node_id` in the configuration, else kept in
    /// its data directory).
    id: String,
    hostname: String,
    pid: i64,
    version: String,
    state: NodeState,
    started_at: DateTime<Utc>,
    heartbeat_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
    /// The organization's mailboxes assigned to this node now.
    mailboxes: i64,
    /// Of those, the ones with a run in flight on it.
    running: i64,
}

/// The state of a node seen at `now`, with `lease` as the heartbeat's limit.
fn state_of(n: &NodeRow, now: DateTime<Utc>, lease: chrono::Duration) -> NodeState {
    if n.stopped_at.is_some() {
        NodeState::Stopped
    } else if n.heartbeat_at >= now - lease {
        NodeState::Alive
    } else {
        NodeState::Lost
    }
}

fn lease(s: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(s.engine.lease).unwrap_or(chrono::Duration::minutes(2))
}

/// Every node that ran on this database in the last week, the latest heartbeat
/// first, with the organization's mailboxes each holds.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/monitoring/nodes", tag = "monitoring", operation_id = "list_nodes",
    responses((status = 200, body = List<Node>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
) -> Result<Json<List<Node>>, ApiError> {
    crate::routes::monitoring::org_wide(&s, &auth, &org_id).await?;
    let now = Utc::now();
    let lease = lease(&s);
    let items = s
        .store
        .list_nodes(&org_id, now)
        .await?
        .into_iter()
        .map(|n| Node {
            state: state_of(&n, now, lease),
            id: n.id,
            hostname: n.hostname,
            pid: n.pid,
            version: n.version,
            started_at: n.started_at,
            heartbeat_at: n.heartbeat_at,
            stopped_at: n.stopped_at,
            mailboxes: n.mailboxes,
            running: n.running,
        })
        .collect();
    Ok(Json(List::of(items)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NodeMailboxParams {
    /// A `next_cursor` of a previous page.
    cursor: Option<String>,
    /// 1 to 500 (default 100).
    limit: Option<u32>,
}

/// A mailbox a node holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeldMailbox {
    mailbox_id: String,
    email_address: String,
    /// Until when the assignment lasts unless the node's heartbeat renews it.
    assigned_until: DateTime<Utc>,
    /// A run is in flight on the node.
    running: bool,
}

impl From<NodeMailbox> for HeldMailbox {
    fn from(m: NodeMailbox) -> Self {
        HeldMailbox {
            mailbox_id: m.mailbox_id,
            email_address: m.email_address,
            assigned_until: m.assigned_until,
            running: m.running,
        }
    }
}

/// The organization's mailboxes a node holds now, by address.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/monitoring/nodes/{node_id}/mailboxes", tag = "monitoring", operation_id = "list_node_mailboxes",
    params(NodeMailboxParams),
    responses((status = 200, body = List<HeldMailbox>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn mailboxes(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, node_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<NodeMailboxParams>,
) -> Result<Json<List<HeldMailbox>>, ApiError> {
    crate::routes::monitoring::org_wide(&s, &auth, &org_id).await?;
    let limit = match q.limit {
        None => 100,
        Some(l) if (1..=500).contains(&l) => l,
        Some(l) => {
            return Err(ApiError::field(
                "invalid_value",
                "limit",
                format!("limit must be between 1 and 500, got {l}"),
            ));
        }
    };
    // The cursor is the last address of the previous page, hex-encoded so that
    // it is opaque and URL-safe.
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::field(
                "invalid_value",
                "cursor",
                "cursor must be a next_cursor value from a previous page",
            )
        })?),
    };
    let mut items = s
        .store
        .node_mailboxes(
            &org_id,
            &node_id,
            Utc::now(),
            after.as_deref(),
            i64::from(limit) + 1,
        )
        .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|m| encode_cursor(&m.email_address))
    } else {
        None
    };
    Ok(Json(List {
        items: items.into_iter().map(HeldMailbox::from).collect(),
        next_cursor,
    }))
}

fn encode_cursor(address: &str) -> String {
    address.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 2000 || !cursor.is_ascii() {
        return None;
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for a in ["anna@contoso.com", "ünïcode@exämple.org", ""] {
            assert_eq!(decode_cursor(&encode_cursor(a)).as_deref(), Some(a));
        }
        for bad in ["abc", "zz", "ff", "é1"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_node_is_lost_once_its_heartbeat_is_older_than_the_lease() {
        let now = Utc::now();
        let lease = chrono::Duration::seconds(120);
        let row = |beat: DateTime<Utc>, stopped: Option<DateTime<Utc>>| NodeRow {
            id: "n".into(),
            hostname: "h".into(),
            pid: 1,
            version: "0".into(),
            started_at: now - chrono::Duration::hours(1),
            heartbeat_at: beat,
            stopped_at: stopped,
            mailboxes: 0,
            running: 0,
        };
        assert_eq!(state_of(&row(now, None), now, lease), NodeState::Alive);
        assert_eq!(
            state_of(&row(now - chrono::Duration::seconds(121), None), now, lease),
            NodeState::Lost
        );
        assert_eq!(
            state_of(&row(now, Some(now)), now, lease),
            NodeState::Stopped
        );
    }
}
