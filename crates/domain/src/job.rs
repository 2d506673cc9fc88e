//! Background jobs such as Test & Enable, with their progress and per-item results.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{JobKind, JobStatus};

/// A background job.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Job {
    pub id: String,
    pub org_id: String,
    pub kind: JobKind,
    pub status: JobStatus,
    /// The profile whose mailboxes the job covers, when it was started for a profile.
    pub profile_id: Option<String>,
    pub progress_done: i64,
    pub progress_total: i64,
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub items: Vec<JobItem>,
    pub error: Option<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The job's result for one mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct JobItem {
    pub mailbox_id: String,
    pub status: JobStatus,
    pub message: Option<String>,
}
