//! Nodes: the mailbridge nodes sharing the database (alive, stopped or lost,
//! their last heartbeat) and how many of the organization's mailboxes each holds;
//! choosing a node lists its mailboxes, paged.

use axum::Router;
use axum::extract::Query;
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::error::WebError;
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new().route("/nodes", get(page))
}

#[derive(Deserialize, Default)]
struct NodesQuery {
    /// The node whose mailboxes are listed.
    #[serde(default)]
    node: String,
    #[serde(default)]
    cursor: String,
}

/// The API path of a node's mailboxes, with the page's cursor.
fn held_path(node: &str, cursor: &str) -> String {
    let node: String = form_urlencoded::byte_serialize(node.as_bytes()).collect();
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", "100");
    if !cursor.is_empty() {
        q.append_pair("cursor", cursor);
    }
    format!("monitoring/nodes/{node}/mailboxes?{}", q.finish())
}

async fn page(s: Session, Query(q): Query<NodesQuery>) -> Result<Html<String>, WebError> {
    let nodes: Value = s.api.get(&s.org_api("monitoring/nodes")).await?;
    let items = nodes["items"].as_array().cloned().unwrap_or_default();
    // Without a choice, the first node holding mailboxes is shown.
    let chosen = if q.node.is_empty() {
        items
            .iter()
            .find(|n| n["mailboxes"].as_i64().unwrap_or(0) > 0)
            .and_then(|n| n["id"].as_str())
            .unwrap_or_default()
            .to_owned()
    } else {
        q.node.clone()
    };
    let held: Value = if chosen.is_empty() {
        json!({"items": [], "next_cursor": null})
    } else {
        s.api
            .get(&s.org_api(&held_path(&chosen, &q.cursor)))
            .await?
    };
    let alive = items.iter().filter(|n| n["state"] == "alive").count();
    let total: i64 = items.iter().filter_map(|n| n["mailboxes"].as_i64()).sum();
    html(
        "nodes.html",
        json!({
            "layout": s.layout("nodes", "Nodes"),
            "nodes": items,
            "alive": alive,
            "total": total,
            "chosen": chosen,
            "held": held["items"],
            "next_cursor": held["next_cursor"],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_and_cursors_are_escaped_in_the_api_path() {
        assert_eq!(
            held_path("node-1", ""),
            "monitoring/nodes/node-1/mailboxes?limit=100"
        );
        assert_eq!(
            held_path("a/b c", "6162"),
            "monitoring/nodes/a%2Fb+c/mailboxes?limit=100&cursor=6162"
        );
    }
}
