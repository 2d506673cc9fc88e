//! Background jobs and their per-mailbox items.

use mailbridge_domain::job::{Job, JobItem};
use sqlx::QueryBuilder;

use crate::{Filter, Page, PageRequest, Store, StoreResult, now, with_db};

pub(crate) const SELECT: &str =
    "SELECT t.id, t.org_id, t.kind, t.status, t.profile_id, t.progress_done, t.progress_total,
        t.error, t.created_by, t.created_at, t.started_at, t.finished_at
    FROM jobs t";

#[derive(sqlx::FromRow)]
struct ItemRow {
    job_id: String,
    #[sqlx(flatten)]
    item: JobItem,
}

impl Store {
    /// Queues a job with one item per mailbox (checked to be the organization's).
    pub async fn create_job(&self, j: &Job) -> StoreResult<Job> {
        self.check_reference(
            "profile_id",
            "email_server_profiles",
            &j.org_id,
            j.profile_id.as_deref(),
            "",
            "an email server profile",
        )
        .await?;
        for (i, item) in j.items.iter().enumerate() {
            self.check_reference(
                &format!("mailbox_ids[{i}]"),
                "mailboxes",
                &j.org_id,
                Some(&item.mailbox_id),
                "",
                "a mailbox",
            )
            .await?;
        }
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO jobs (id, org_id, kind, status, profile_id, progress_done, progress_total, error,
                    created_by, created_at, started_at, finished_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&j.id).bind(&j.org_id).bind(j.kind).bind(j.status).bind(&j.profile_id).bind(j.progress_done)
            .bind(j.items.len() as i64).bind(&j.error).bind(&j.created_by).bind(now()).bind(j.started_at)
            .bind(j.finished_at)
            .execute(&mut *tx).await?;
            for (i, item) in j.items.iter().enumerate() {
                sqlx::query("INSERT INTO job_items (job_id, position, mailbox_id, status, message) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&j.id).bind(i as i64).bind(&item.mailbox_id).bind(item.status).bind(&item.message)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        self.get_job(&j.org_id, &j.id).await
    }

    pub async fn list_jobs(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Job>> {
        let mut page: Page<Job> = self
            .list_records(SELECT, Some(org_id), filters, page)
            .await?;
        self.attach_items(&mut page.items).await?;
        Ok(page)
    }

    pub async fn get_job(&self, org_id: &str, id: &str) -> StoreResult<Job> {
        let mut job: Job = self.get_record(SELECT, Some(org_id), id, &[]).await?;
        self.attach_items(std::slice::from_mut(&mut job)).await?;
        Ok(job)
    }

    /// The ids of every mailbox of a profile, for a job started for the profile.
    pub async fn mailbox_ids_of_profile(
        &self,
        org_id: &str,
        profile_id: &str,
    ) -> StoreResult<Vec<String>> {
        Ok(with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT id FROM mailboxes WHERE org_id = $1 AND profile_id = $2 ORDER BY id",
        ).bind(org_id).bind(profile_id).fetch_all(p).await?))
    }

    /// Returns jobs left `running` by a process that stopped to the queue, so that
    /// they run again instead of showing `running` forever. Called at start-up by a
    /// single-node deployment.
    pub async fn requeue_interrupted_jobs(&self) -> StoreResult<u64> {
        Ok(with_db!(&self.db, p => sqlx::query(
            "UPDATE jobs SET status = 'queued', started_at = NULL WHERE status = 'running'",
        ).execute(p).await?.rows_affected()))
    }

    async fn attach_items(&self, jobs: &mut [Job]) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let rows: Vec<ItemRow> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new("SELECT job_id, mailbox_id, status, message FROM job_items WHERE job_id IN (");
            let mut ids = qb.separated(", ");
            for j in jobs.iter() {
                ids.push_bind(j.id.clone());
            }
            qb.push(") ORDER BY job_id, position");
            qb.build_query_as::<ItemRow>().fetch_all(p).await?
        });
        for row in rows {
            if let Some(j) = jobs.iter_mut().find(|j| j.id == row.job_id) {
                j.items.push(row.item);
            }
        }
        Ok(())
    }
}
