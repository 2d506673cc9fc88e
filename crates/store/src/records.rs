//! Generic reads shared by every resource: one record by id, and filtered pages.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, QueryBuilder};

use crate::page::{into_page, push_filters};
use crate::{Filter, Page, PageRequest, Store, StoreError, StoreResult, with_db};

/// A model that can be read from a row of either backend.
pub(crate) trait Record:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
    fn id(&self) -> &str;
}

macro_rules! record {
    ($($t:ty),+) => { $(impl Record for $t { fn id(&self) -> &str { &self.id } })+ };
}

use mailbridge_domain::activity::{Appointment, Email, Task};
use mailbridge_domain::alert::Alert;
use mailbridge_domain::certificate::Certificate;
use mailbridge_domain::job::Job;
use mailbridge_domain::mailbox::Mailbox;
use mailbridge_domain::organization::Organization;
use mailbridge_domain::party::{PartyRecord, Queue, User};
use mailbridge_domain::profile::EmailServerProfile;
record!(
    Organization,
    User,
    Queue,
    PartyRecord,
    EmailServerProfile,
    Mailbox,
    Email,
    Appointment,
    Task,
    Alert,
    Job,
    Certificate
);

impl Store {
    /// A page of records. `select` is `SELECT ... FROM table t [JOIN ...]`; the
    /// organization, filters, cursor and order are added here.
    pub(crate) async fn list_records<T: Record>(
        &self,
        select: &'static str,
        org_id: Option<&str>,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<T>> {
        let limit = page.limit();
        let rows: Vec<T> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(select);
            qb.push(" WHERE 1 = 1");
            if let Some(org) = org_id {
                qb.push(" AND t.org_id = ").push_bind(org.to_owned());
            }
            push_filters(&mut qb, filters);
            if let Some(after) = &page.after {
                qb.push(" AND t.id > ").push_bind(after.clone());
            }
            qb.push(" ORDER BY t.id LIMIT ").push_bind(i64::from(limit) + 1);
            qb.build_query_as::<T>().fetch_all(p).await?
        });
        Ok(into_page(rows, limit, T::id))
    }

    /// One record by id, within an organization (`None`: organizations themselves).
    pub(crate) async fn get_record<T: Record>(
        &self,
        select: &'static str,
        org_id: Option<&str>,
        id: &str,
        filters: &[Filter],
    ) -> StoreResult<T> {
        let row: Option<T> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(select);
            qb.push(" WHERE t.id = ").push_bind(id.to_owned());
            if let Some(org) = org_id {
                qb.push(" AND t.org_id = ").push_bind(org.to_owned());
            }
            push_filters(&mut qb, filters);
            qb.build_query_as::<T>().fetch_optional(p).await?
        });
        row.ok_or(StoreError::NotFound)
    }

    /// Deletes one record of an organization; `NotFound` when there was none.
    pub(crate) async fn delete_record(
        &self,
        table: &'static str,
        org_id: &str,
        id: &str,
    ) -> StoreResult<()> {
        let sql = sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE org_id = $1 AND id = $2"));
        let result = with_db!(&self.db, p => sqlx::query(sql).bind(org_id).bind(id).execute(p).await.map(|r| r.rows_affected()));
        match result {
            Ok(0) => Err(StoreError::NotFound),
            Ok(_) => Ok(()),
            Err(e) if StoreError::is_foreign_key_violation(&e) => Err(StoreError::conflict(
                None,
                "this record is still used by other records; remove those references first",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a record of `table` with this id exists in the organization.
    pub(crate) async fn exists(
        &self,
        table: &'static str,
        org_id: &str,
        id: &str,
        extra: &'static str,
    ) -> StoreResult<bool> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE org_id = $1 AND id = $2 {extra}"
        ));
        let n: i64 = with_db!(&self.db, p => sqlx::query_scalar(sql).bind(org_id).bind(id).fetch_one(p).await?);
        Ok(n > 0)
    }

    /// Fails with a field error unless the referenced record exists in the organization.
    pub(crate) async fn check_reference(
        &self,
        field: &str,
        table: &'static str,
        org_id: &str,
        id: Option<&str>,
        extra: &'static str,
        what: &str,
    ) -> StoreResult<()> {
        if let Some(id) = id
            && !self.exists(table, org_id, id, extra).await?
        {
            return Err(StoreError::invalid(
                field,
                format!("{field} `{id}` is not {what} of this organization"),
            ));
        }
        Ok(())
    }
}
