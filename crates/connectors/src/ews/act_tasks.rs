//! Tasks: subject, notes, categories, importance, start, due and completion
//! dates, percent complete and status. Exchange keeps a task's dates as dates at
//! midnight (`StartDate`, `DueDate`); completing a task (`Status` `Completed`)
//! sets `PercentComplete` to 100 and `CompleteDate` itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use roxmltree::Node;

use super::act::{ActKind, Common, EwsVersioned, update_common, write_common};
use super::client::EwsClient;
use super::errors::EwsError;
use super::model::{DistinguishedFolder, FolderRef, ItemId, ItemRef};
use super::properties::update_request;
use super::xml::{XmlWriter, date_time, format_date_time, text};

/// `TaskStatusType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskStatus {
    #[default]
    NotStarted,
    InProgress,
    Completed,
    WaitingOnOthers,
    Deferred,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::NotStarted => "NotStarted",
            TaskStatus::InProgress => "InProgress",
            TaskStatus::Completed => "Completed",
            TaskStatus::WaitingOnOthers => "WaitingOnOthers",
            TaskStatus::Deferred => "Deferred",
        }
    }

    fn parse(s: &str) -> Option<TaskStatus> {
        [
            TaskStatus::NotStarted,
            TaskStatus::InProgress,
            TaskStatus::Completed,
            TaskStatus::WaitingOnOthers,
            TaskStatus::Deferred,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// `ImportanceChoicesType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Importance {
    Low,
    #[default]
    Normal,
    High,
}

impl Importance {
    pub fn as_str(self) -> &'static str {
        match self {
            Importance::Low => "Low",
            Importance::Normal => "Normal",
            Importance::High => "High",
        }
    }

    fn parse(s: &str) -> Option<Importance> {
        [Importance::Low, Importance::Normal, Importance::High]
            .into_iter()
            .find(|i| i.as_str() == s)
    }
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskItem {
    pub subject: String,
    /// Notes, plain text.
    pub body: Option<String>,
    pub categories: Vec<String>,
    pub importance: Importance,
    pub start_date: Option<DateTime<Utc>>,
    pub due_date: Option<DateTime<Utc>>,
    pub complete_date: Option<DateTime<Utc>>,
    /// 0 to 100.
    pub percent_complete: Option<u8>,
    pub status: TaskStatus,
    /// `PublicStrings` String properties, by name.
    pub properties: BTreeMap<String, String>,
}

impl ActKind for TaskItem {
    const NOUN: &'static str = "task";
    const FIELDS: &'static [&'static str] = &[
        "item:Importance",
        "task:CompleteDate",
        "task:DueDate",
        "task:PercentComplete",
        "task:StartDate",
        "task:Status",
    ];

    fn read(item: Node<'_, '_>) -> Result<TaskItem, String> {
        let common = Common::read(item);
        let status = match text(item, "Status") {
            None => TaskStatus::NotStarted,
            Some(s) => TaskStatus::parse(&s).ok_or_else(|| format!("its status {s} is unknown"))?,
        };
        Ok(TaskItem {
            subject: common.subject,
            body: common.body,
            categories: common.categories,
            importance: text(item, "Importance")
                .and_then(|i| Importance::parse(&i))
                .unwrap_or_default(),
            start_date: date_time(item, "StartDate"),
            due_date: date_time(item, "DueDate"),
            complete_date: date_time(item, "CompleteDate"),
            percent_complete: text(item, "PercentComplete")
                .and_then(|p| p.parse::<f64>().ok())
                .map(|p| p.clamp(0.0, 100.0).round() as u8),
            status,
            properties: common.properties,
        })
    }
}

/// The `t:Task` of a creation, in schema order.
pub(crate) fn write_item(t: &TaskItem) -> String {
    let mut w = XmlWriter::new();
    w.open("t:Task", &[]);
    write_common(
        &mut w,
        &t.subject,
        t.body.as_deref(),
        &t.categories,
        Some(t.importance.as_str()),
        &t.properties,
    );
    if let Some(d) = t
        .complete_date
        .filter(|_| t.status == TaskStatus::Completed)
    {
        w.leaf("t:CompleteDate", &format_date_time(d));
    }
    if let Some(d) = t.due_date {
        w.leaf("t:DueDate", &format_date_time(d));
    }
    if let Some(p) = t.percent_complete {
        w.leaf("t:PercentComplete", &p.min(100).to_string());
    }
    if let Some(d) = t.start_date {
        w.leaf("t:StartDate", &format_date_time(d));
    }
    w.leaf("t:Status", t.status.as_str()).close("t:Task");
    w.finish()
}

/// The `UpdateItem` that makes the task at `target` what `t` says. The status
/// is written last, so that it wins over the percentage when they disagree.
pub(crate) fn update_item_request(
    target: &ItemRef,
    change_key: Option<&str>,
    t: &TaskItem,
) -> String {
    update_request(target, change_key, change_key.is_some(), "t:Task", |u| {
        update_common(
            u,
            &t.subject,
            t.body.as_deref(),
            &t.categories,
            &t.properties,
        );
        u.set("item:Importance", |w| {
            w.leaf("t:Importance", t.importance.as_str());
        });
        let date = |d: Option<DateTime<Utc>>| d.map(format_date_time);
        u.text(
            "task:StartDate",
            "t:StartDate",
            date(t.start_date).as_deref(),
        );
        u.text("task:DueDate", "t:DueDate", date(t.due_date).as_deref());
        if let Some(p) = t.percent_complete {
            u.set("task:PercentComplete", |w| {
                w.leaf("t:PercentComplete", &p.min(100).to_string());
            });
        }
        u.set("task:Status", |w| {
            w.leaf("t:Status", t.status.as_str());
        });
        if let Some(d) = t
            .complete_date
            .filter(|_| t.status == TaskStatus::Completed)
        {
            u.set("task:CompleteDate", |w| {
                w.leaf("t:CompleteDate", &format_date_time(d));
            });
        }
    })
}

impl EwsClient {
    /// Tasks by reference, in the order asked, each with the `PublicStrings`
    /// properties `properties`.
    ///
    /// # Errors
    /// When the request as a whole failed; per item, in the list.
    pub async fn get_tasks(
        &self,
        refs: &[ItemRef],
        properties: &[&str],
    ) -> Result<Vec<Result<EwsVersioned<TaskItem>, EwsError>>, EwsError> {
        self.get_act::<TaskItem>(refs, properties).await
    }

    /// Creates a task in `folder` (the default Tasks when `None`).
    ///
    /// # Errors
    /// Classified.
    pub async fn create_task(
        &self,
        folder: Option<&FolderRef>,
        t: &TaskItem,
    ) -> Result<ItemId, EwsError> {
        let tasks = FolderRef::Distinguished(DistinguishedFolder::Tasks);
        self.create_act(folder.unwrap_or(&tasks), &write_item(t), TaskItem::NOUN)
            .await
    }

    /// Makes the task at `target` what `t` says, provided it is still at
    /// `change_key` (else [`EwsError::Conflict`]).
    ///
    /// # Errors
    /// Classified.
    pub async fn update_task(
        &self,
        target: &ItemRef,
        change_key: Option<&str>,
        t: &TaskItem,
    ) -> Result<ItemId, EwsError> {
        self.update_act(
            &update_item_request(target, change_key, t),
            target,
            TaskItem::NOUN,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = r#"<t:Task xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <t:ItemId Id="AAMkT" ChangeKey="EwAAABYA"/>
  <t:Subject>Call the supplier</t:Subject>
  <t:Body BodyType="Text">About the order</t:Body>
  <t:Importance>High</t:Importance>
  <t:CompleteDate>2026-01-09T00:00:00Z</t:CompleteDate>
  <t:DueDate>2026-01-10T00:00:00Z</t:DueDate>
  <t:PercentComplete>100</t:PercentComplete>
  <t:StartDate>2026-01-05T00:00:00Z</t:StartDate>
  <t:Status>Completed</t:Status>
</t:Task>"#;

    fn read() -> TaskItem {
        let doc = roxmltree::Document::parse(TASK).expect("xml");
        TaskItem::read(doc.root_element()).expect("reads")
    }

    #[test]
    fn a_task_is_read_and_written_back_in_schema_order() {
        let t = read();
        assert_eq!(t.status, TaskStatus::Completed);
        assert_eq!(t.importance, Importance::High);
        assert_eq!(t.percent_complete, Some(100));
        let xml = write_item(&t);
        let order = [
            "<t:Subject>",
            "<t:Body",
            "<t:Importance>",
            "<t:CompleteDate>",
            "<t:DueDate>",
            "<t:PercentComplete>",
            "<t:StartDate>",
            "<t:Status>",
        ];
        let positions: Vec<_> = order
            .iter()
            .map(|n| xml.find(n).unwrap_or_else(|| panic!("{n} in {xml}")))
            .collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{xml}");
        let text = xml.replace("<t:Task>", "<t:Task xmlns:t=\"t\">");
        let doc = roxmltree::Document::parse(&text).expect("xml");
        assert_eq!(TaskItem::read(doc.root_element()).expect("reads"), t);
    }

    #[test]
    fn an_open_task_writes_no_completion_date_and_removes_missing_dates() {
        let mut t = read();
        t.status = TaskStatus::InProgress;
        t.percent_complete = Some(40);
        t.due_date = None;
        assert!(!write_item(&t).contains("CompleteDate"));
        let xml = update_item_request(&ItemRef::Item(ItemId::new("AAMkT", None)), Some("EwA"), &t);
        assert!(xml.contains(
            "<t:DeleteItemField><t:FieldURI FieldURI=\"task:DueDate\"/></t:DeleteItemField>"
        ));
        assert!(xml.contains("<t:Status>InProgress</t:Status>"));
        assert!(!xml.contains("task:CompleteDate"));
        assert!(xml.find("task:PercentComplete") < xml.find("task:Status"));
    }

    #[test]
    fn an_unknown_status_is_an_item_problem() {
        let text = TASK.replace("Completed</t:Status>", "Paused</t:Status>");
        let doc = roxmltree::Document::parse(&text).expect("xml");
        assert!(TaskItem::read(doc.root_element()).is_err());
    }
}
