//! Microsoft To Do tasks ⇄ [`Task`].
//!
//! Mapping: `title` ⇄ summary, `body` (text) ⇄ description, `importance` ⇄
//! priority (high ⇄ 1, normal ⇄ 5, low ⇄ 9: the store's three levels),
//! `status` ⇄ status (`notStarted` ⇄ needs action, `inProgress` ⇄ in process,
//! `completed` ⇄ completed, `deferred` ⇄ cancelled, and `waitingOnOthers` reads
//! as in process), `startDateTime`/`dueDateTime` ⇄ start/due (To Do keeps dates:
//! a midnight time reads back as a date), `completedDateTime` ⇄ completed at,
//! `categories`. To Do has no percent complete: it is read as none and not
//! written. The uid is Graph's id.

use chrono::{DateTime, NaiveTime, Utc};
use mailbridge_domain::act::model::{EventTime, Priority, Task, TodoStatus};
use mailbridge_domain::error_model::SyncError;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::ItemBody;
use super::zones::{self, DateTimeTimeZone};
use super::{ActChange, ActDelta, GraphAct, GraphActError, Versioned, id_and_etag, is_removed};
use crate::graph::client::segment;

/// A To Do list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TodoList {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    /// `defaultList`, `flaggedEmails` or `none`.
    #[serde(default)]
    pub wellknown_list_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTask {
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<ItemBody>,
    #[serde(default)]
    importance: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    start_date_time: Option<DateTimeTimeZone>,
    #[serde(default)]
    due_date_time: Option<DateTimeTimeZone>,
    #[serde(default)]
    completed_date_time: Option<DateTimeTimeZone>,
    #[serde(default)]
    categories: Option<Vec<String>>,
}

fn date_or_time(v: &DateTimeTimeZone) -> Result<EventTime, String> {
    let local = zones::parse_local(&v.date_time).map_err(|e| e.to_string())?;
    zones::event_time(v, local.time() == NaiveTime::MIN).map_err(|e| e.to_string())
}

fn task(t: &RawTask) -> Result<Task, String> {
    let status = match t.status.as_deref() {
        Some("inProgress" | "waitingOnOthers") => TodoStatus::InProcess,
        Some("completed") => TodoStatus::Completed,
        Some("deferred") => TodoStatus::Cancelled,
        _ => TodoStatus::NeedsAction,
    };
    let priority = match t.importance.as_deref() {
        Some("high") => Priority::new(1),
        Some("low") => Priority::new(9),
        _ => Priority::new(5),
    };
    let completed_at = match &t.completed_date_time {
        None => None,
        Some(c) => Some(
            match zones::event_time(c, false).map_err(|e| e.to_string())? {
                EventTime::Utc(u) => u,
                // A completion time in another zone is kept as its wall-clock time in UTC:
                // To Do answers UTC unless asked otherwise.
                EventTime::Zoned { local, .. } => DateTime::from_naive_utc_and_offset(local, Utc),
                EventTime::Date(d) => {
                    DateTime::from_naive_utc_and_offset(d.and_time(NaiveTime::MIN), Utc)
                }
            },
        ),
    };
    Ok(Task {
        uid: t.id.clone(),
        summary: t.title.clone().unwrap_or_default(),
        description: t
            .body
            .as_ref()
            .and_then(|b| b.content.as_ref())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        start: t.start_date_time.as_ref().map(date_or_time).transpose()?,
        due: t.due_date_time.as_ref().map(date_or_time).transpose()?,
        completed_at,
        percent: None,
        priority,
        status,
        categories: t.categories.clone().unwrap_or_default(),
    })
}

fn task_json(t: &Task, zone: &str) -> Value {
    let status = match t.status {
        TodoStatus::NeedsAction => "notStarted",
        TodoStatus::InProcess => "inProgress",
        TodoStatus::Completed => "completed",
        TodoStatus::Cancelled => "deferred",
    };
    let importance = match t.priority.map(Priority::get) {
        Some(1..=4) => "high",
        Some(6..=9) => "low",
        _ => "normal",
    };
    json!({
        "title": t.summary,
        "body": { "contentType": "text", "content": t.description.clone().unwrap_or_default() },
        "importance": importance,
        "status": status,
        "startDateTime": t.start.as_ref().map(|s| zones::graph_time(s, zone)),
        "dueDateTime": t.due.as_ref().map(|d| zones::graph_time(d, zone)),
        "completedDateTime": t.completed_at.map(|c| zones::graph_time(&EventTime::Utc(c), "UTC")),
        "categories": t.categories,
    })
}

fn versioned(v: &Value) -> Result<Versioned<Task>, String> {
    let raw: RawTask =
        serde_json::from_value(v.clone()).map_err(|e| format!("the task cannot be read: {e}"))?;
    let (id, etag) = id_and_etag(v);
    Ok(Versioned {
        id,
        etag,
        item: task(&raw)?,
    })
}

impl GraphAct {
    fn tasks_of(&self, list_id: &str) -> String {
        format!("{}/todo/lists/{}/tasks", self.prefix(), segment(list_id))
    }

    /// The user's To Do lists.
    ///
    /// # Errors
    /// A classified error.
    pub async fn todo_lists(&self) -> Result<Vec<TodoList>, SyncError> {
        let what = "list the To Do lists";
        self.list_all(format!("{}/todo/lists", self.prefix()), what)
            .await?
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| self.unreadable(what, &e.to_string())))
            .collect()
    }

    /// The To Do list named `display_name` (case-insensitive), created when missing.
    ///
    /// # Errors
    /// A classified error.
    pub async fn ensure_todo_list(&self, display_name: &str) -> Result<TodoList, SyncError> {
        if let Some(l) = self
            .todo_lists()
            .await?
            .into_iter()
            .find(|l| l.display_name.eq_ignore_ascii_case(display_name))
        {
            return Ok(l);
        }
        let what = "create a To Do list";
        let v = self
            .request(
                Method::POST,
                format!("{}/todo/lists", self.prefix()),
                Some(json!({ "displayName": display_name })),
                None,
                what,
                display_name,
            )
            .await
            .map_err(GraphActError::into_sync_error)?;
        serde_json::from_value(v).map_err(|e| self.unreadable(what, &e.to_string()))
    }

    /// The changes of a To Do list since `state` (`None`: the first round).
    ///
    /// # Errors
    /// A classified error.
    pub async fn tasks_delta(
        &self,
        list_id: &str,
        state: Option<&str>,
    ) -> Result<ActDelta<Task>, SyncError> {
        let first = format!("{}/delta", self.tasks_of(list_id));
        let (entries, delta_link, restarted) = self
            .delta_entries(first, state, "read the changes of the tasks")
            .await?;
        let changes = entries
            .iter()
            .map(|e| {
                let (id, _) = id_and_etag(e);
                if is_removed(e) {
                    return ActChange::Removed { id };
                }
                match versioned(e) {
                    Ok(v) => ActChange::Upserted(v),
                    Err(why) => ActChange::Unreadable {
                        id,
                        error: self.item_error("read a task", &why),
                    },
                }
            })
            .collect();
        Ok(ActDelta {
            changes,
            delta_link,
            restarted,
        })
    }

    /// A task with its version.
    ///
    /// # Errors
    /// A classified error.
    pub async fn get_task(
        &self,
        list_id: &str,
        id: &str,
    ) -> Result<Versioned<Task>, GraphActError> {
        let what = "read a task";
        let v = self
            .get_json(format!("{}/{}", self.tasks_of(list_id), segment(id)), what)
            .await?;
        versioned(&v).map_err(|why| self.item_error(what, &why).into())
    }

    /// Creates a task in a list.
    ///
    /// # Errors
    /// A classified error.
    pub async fn create_task(
        &self,
        list_id: &str,
        t: &Task,
    ) -> Result<Versioned<Task>, GraphActError> {
        let what = "create a task";
        let v = self
            .request(
                Method::POST,
                self.tasks_of(list_id),
                Some(task_json(t, self.time_zone())),
                None,
                what,
                &t.uid,
            )
            .await?;
        versioned(&v).map_err(|why| self.item_error(what, &why).into())
    }

    /// Replaces a task if it is still at `etag`.
    ///
    /// # Errors
    /// [`GraphActError::PreconditionFailed`] when it changed since; a classified error.
    pub async fn update_task(
        &self,
        list_id: &str,
        id: &str,
        etag: &str,
        t: &Task,
    ) -> Result<Versioned<Task>, GraphActError> {
        let what = "update a task";
        let v = self
            .request(
                Method::PATCH,
                format!("{}/{}", self.tasks_of(list_id), segment(id)),
                Some(task_json(t, self.time_zone())),
                Some(etag),
                what,
                id,
            )
            .await?;
        versioned(&v).map_err(|why| self.item_error(what, &why).into())
    }

    /// Deletes a task if it is still at `etag`.
    ///
    /// # Errors
    /// [`GraphActError::PreconditionFailed`] when it changed since; a classified error.
    pub async fn delete_task(
        &self,
        list_id: &str,
        id: &str,
        etag: &str,
    ) -> Result<(), GraphActError> {
        self.request(
            Method::DELETE,
            format!("{}/{}", self.tasks_of(list_id), segment(id)),
            None,
            Some(etag),
            "delete a task",
            id,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn tasks_round_trip_through_graph_json() {
        let statuses = [
            TodoStatus::NeedsAction,
            TodoStatus::InProcess,
            TodoStatus::Completed,
            TodoStatus::Cancelled,
        ];
        for (i, status) in statuses.into_iter().enumerate() {
            let t = Task {
                uid: "t1".to_owned(),
                summary: "Call back".to_owned(),
                description: Some("About the offer".to_owned()),
                start: Some(EventTime::Date(
                    NaiveDate::from_ymd_opt(2025, 3, 1).expect("a date"),
                )),
                due: Some(EventTime::Date(
                    NaiveDate::from_ymd_opt(2025, 3, 7).expect("a date"),
                )),
                completed_at: (status == TodoStatus::Completed)
                    .then(|| "2025-03-05T16:00:00Z".parse().expect("a time")),
                percent: None,
                priority: Priority::new([1, 5, 9, 5][i]),
                status,
                categories: vec!["Sales".to_owned()],
            };
            let mut v = task_json(&t, "Europe/Paris");
            v["id"] = json!("t1");
            v["@odata.etag"] = json!("W/\"e\"");
            assert_eq!(versioned(&v).expect("a task").item, t, "{status:?}");
        }
        let waiting =
            json!({"id": "t2", "title": "x", "status": "waitingOnOthers", "importance": "low"});
        let t = versioned(&waiting).expect("a task").item;
        assert_eq!(
            (t.status, t.priority.map(Priority::get)),
            (TodoStatus::InProcess, Some(9))
        );
    }
}
