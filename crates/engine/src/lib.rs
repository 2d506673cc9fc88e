//! mailbridge's engine: the per-mailbox workloads (incoming, outgoing, ACT) with
//! their leases and schedules, background jobs such as Test & Enable, and alerts.
//! It is written once against the connector traits of `mailbridge-connectors`.
//!
//! Today it holds the start-up recovery only; the workloads, the lease loop and
//! the job runner arrive with server-side synchronization (issue 3).

use mailbridge_store::{Store, StoreResult};

/// Repairs what a stopped process left behind: jobs it was running go back to
/// the queue so that they run again.
pub async fn recover_after_restart(store: &Store) -> StoreResult<()> {
    let requeued = store.requeue_interrupted_jobs().await?;
    if requeued > 0 {
        tracing::warn!(
            jobs = requeued,
            "jobs interrupted by the last stop were queued again"
        );
    }
    Ok(())
}
