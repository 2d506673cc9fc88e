//! The engine's side of jobs: claim one, report each item, finish.

use mailbridge_domain::WorkloadStatus;
use mailbridge_domain::job::Job;

use crate::{Store, StoreResult, now, with_db};

impl Store {
    /// Claims the oldest queued job for `node`; `None` when there is none.
    pub async fn claim_job(&self, node: &str) -> StoreResult<Option<Job>> {
        let candidates: Vec<(String, String)> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT org_id, id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 5",
        ).fetch_all(p).await?);
        for (org_id, id) in candidates {
            let n = with_db!(&self.db, p => sqlx::query(
                "UPDATE jobs SET status = 'running', claimed_by = $2, started_at = $3 WHERE id = $1 AND status = 'queued'",
            ).bind(&id).bind(node).bind(now()).execute(p).await?.rows_affected());
            if n == 1 {
                return Ok(Some(self.get_job(&org_id, &id).await?));
            }
        }
        Ok(None)
    }

    /// Records one item's result and the job's progress.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_job_item(
        &self,
        job_id: &str,
        mailbox_id: &str,
        passed: bool,
        incoming: WorkloadStatus,
        outgoing: WorkloadStatus,
        act: WorkloadStatus,
        message: &str,
    ) -> StoreResult<()> {
        let status = if passed { "succeeded" } else { "failed" };
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE job_items SET status = $3, message = $4, incoming_status = $5, outgoing_status = $6, act_status = $7
                 WHERE job_id = $1 AND mailbox_id = $2",
            ).bind(job_id).bind(mailbox_id).bind(status).bind(message).bind(incoming).bind(outgoing).bind(act)
            .execute(&mut *tx).await?;
            sqlx::query("UPDATE jobs SET progress_done = progress_done + 1 WHERE id = $1").bind(job_id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Ends a job: `succeeded` when every item passed, else `failed`.
    pub async fn finish_job(&self, job_id: &str, error: Option<&str>) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE jobs SET finished_at = $2, error = $3,
                status = CASE WHEN $3 IS NULL AND NOT EXISTS (SELECT 1 FROM job_items i WHERE i.job_id = jobs.id AND i.status <> 'succeeded')
                              THEN 'succeeded' ELSE 'failed' END
             WHERE id = $1",
        ).bind(job_id).bind(now()).bind(error).execute(p).await?.rows_affected());
        Ok(())
    }
}
