//! How appointments, tasks and contacts are read: each model with its JSON columns
//! (attendees, recurrence, exceptions, categories, contact details), which the
//! domain's row derive skips, parsed here.

use mailbridge_domain::activity::{Appointment, Task};
use mailbridge_domain::party::{ContactDetails, PartyRecord};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::records::Record;
use crate::{StoreError, StoreResult};

pub(crate) const SELECT_APPOINTMENTS: &str =
    "SELECT t.id, t.org_id, t.subject, t.location, t.body, t.start, t.\"end\",
        t.all_day, t.status, t.owner_id, t.organizer, t.organizer_name, t.regarding_type,
        t.regarding_id, t.ical_uid, t.time_zone, t.version, t.deleted_at, t.created_at,
        t.updated_at, t.attendees_json, t.recurrence_json, t.exceptions_json, t.categories_json
    FROM appointments t";

pub(crate) const SELECT_TASKS: &str =
    "SELECT t.id, t.org_id, t.subject, t.description, t.start, t.due, t.completed_at,
        t.priority, t.status, t.owner_id, t.regarding_type, t.regarding_id, t.ical_uid,
        t.percent_complete, t.version, t.deleted_at, t.created_at, t.updated_at, t.categories_json
    FROM tasks t";

pub(crate) const SELECT_PARTIES: &str =
    "SELECT t.id, t.org_id, t.name, t.email, t.phone, t.company, t.account_id,
        t.active, t.owner_id, t.given_name, t.family_name, t.job_title, t.ical_uid, t.version,
        t.deleted_at, t.created_at, t.updated_at, t.details_json
    FROM parties t";

/// The condition that hides tombstones from the API's reads.
pub(crate) const LIVE: crate::Filter = crate::Filter::Sql("t.deleted_at IS NULL");

/// A JSON column's text.
pub(crate) fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))
}

/// A JSON column's value; a column that does not parse is a decoding error.
pub(crate) fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Database(sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: e.into(),
        })
    })
}

#[derive(sqlx::FromRow)]
pub(crate) struct AppointmentRow {
    #[sqlx(flatten)]
    record: Appointment,
    attendees_json: String,
    recurrence_json: Option<String>,
    exceptions_json: String,
    categories_json: String,
}

impl AppointmentRow {
    pub(crate) fn into_model(self) -> StoreResult<Appointment> {
        let mut a = self.record;
        a.attendees = from_json("attendees_json", &self.attendees_json)?;
        a.recurrence = self
            .recurrence_json
            .as_deref()
            .map(|r| from_json("recurrence_json", r))
            .transpose()?;
        a.exceptions = from_json("exceptions_json", &self.exceptions_json)?;
        a.categories = from_json("categories_json", &self.categories_json)?;
        Ok(a)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    #[sqlx(flatten)]
    record: Task,
    categories_json: String,
}

impl TaskRow {
    pub(crate) fn into_model(self) -> StoreResult<Task> {
        let mut t = self.record;
        t.categories = from_json("categories_json", &self.categories_json)?;
        Ok(t)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PartyRow {
    #[sqlx(flatten)]
    record: PartyRecord,
    details_json: String,
}

impl PartyRow {
    pub(crate) fn into_model(self) -> StoreResult<PartyRecord> {
        let mut p = self.record;
        p.details = from_json::<ContactDetails>("details_json", &self.details_json)?;
        Ok(p)
    }
}

impl Record for AppointmentRow {
    fn id(&self) -> &str {
        &self.record.id
    }
}

impl Record for TaskRow {
    fn id(&self) -> &str {
        &self.record.id
    }
}

impl Record for PartyRow {
    fn id(&self) -> &str {
        &self.record.id
    }
}

/// Parses every row of a page.
pub(crate) fn page_of<R, T>(
    page: crate::Page<R>,
    into: impl Fn(R) -> StoreResult<T>,
) -> StoreResult<crate::Page<T>> {
    let next_cursor = page.next_cursor;
    let items = page
        .items
        .into_iter()
        .map(into)
        .collect::<StoreResult<_>>()?;
    Ok(crate::Page { items, next_cursor })
}
