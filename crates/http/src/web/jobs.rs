//! A background job's live progress (Test & Enable): a progress bar, the items
//! counted by outcome, and each mailbox's result. While the job runs, the progress
//! block asks for itself again every second (htmx); once finished it stops.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::error::WebError;
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/jobs/{id}", get(page))
        .route("/jobs/{id}/progress", get(progress))
}

/// Items shown per page.
const PAGE: u32 = 100;

#[derive(Deserialize, Default)]
struct ItemsQuery {
    #[serde(default)]
    cursor: String,
}

/// Whether a job has ended.
fn finished(status: &str) -> bool {
    matches!(status, "succeeded" | "failed")
}

/// Percent done, 0 to 100.
fn percent(done: i64, total: i64) -> i64 {
    if total <= 0 {
        0
    } else {
        (done.clamp(0, total) * 100) / total
    }
}

/// What the progress block shows.
async fn context(s: &Session, id: &str, cursor: &str) -> Result<Value, WebError> {
    let job: Value = s
        .api
        .get(&format!("{}?items=false", s.org_api(&format!("jobs/{id}"))))
        .await?;
    let query = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", &PAGE.to_string());
        if !cursor.is_empty() {
            q.append_pair("cursor", cursor);
        }
        q.finish()
    };
    let items: Value = s
        .api
        .get(&format!(
            "{}?{query}",
            s.org_api(&format!("jobs/{id}/items"))
        ))
        .await?;
    let status = job["status"].as_str().unwrap_or_default().to_owned();
    let done = job["progress_done"].as_i64().unwrap_or(0);
    let total = job["progress_total"].as_i64().unwrap_or(0);
    let counts = &items["counts"];
    let pending = counts["queued"].as_i64().unwrap_or(0) + counts["running"].as_i64().unwrap_or(0);
    Ok(json!({
        "job": job,
        "finished": finished(&status),
        "percent": percent(done, total),
        "counts": counts,
        "pending": pending,
        "items": items["items"],
        "next_cursor": items["next_cursor"],
        "cursor": cursor,
    }))
}

async fn page(
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Result<Html<String>, WebError> {
    let mut ctx = context(&s, &id, &q.cursor).await?;
    ctx["layout"] = s.layout("mailboxes", "Test & Enable Mailboxes");
    html("job.html", ctx)
}

/// The progress block alone, for htmx.
async fn progress(
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Result<Html<String>, WebError> {
    html("job_progress.html", context(&s, &id, &q.cursor).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_a_bounded_percentage() {
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(3, 3), 100);
        assert_eq!(percent(5, 3), 100);
        assert!(finished("failed") && finished("succeeded"));
        assert!(!finished("running") && !finished("queued"));
    }
}
