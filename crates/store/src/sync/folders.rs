//! Per-folder sync state and folder-level tracking.

use chrono::Utc;
use mailbridge_domain::RegardingType;
use serde::Serialize;

use crate::{Store, StoreError, StoreResult, now, with_db};

/// Where a mailbox stands in one folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderState {
    pub uidvalidity: u32,
    pub last_uid: u32,
    /// HIGHESTMODSEQ after the last complete run (CONDSTORE servers).
    pub highestmodseq: Option<u64>,
}

/// A folder mapped to a regarding record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TrackedFolder {
    pub id: String,
    pub mailbox_id: String,
    pub folder: String,
    pub regarding_type: RegardingType,
    pub regarding_id: String,
    pub created_at: chrono::DateTime<Utc>,
}

impl Store {
    pub async fn folder_state(
        &self,
        mailbox_id: &str,
        folder: &str,
    ) -> StoreResult<Option<FolderState>> {
        let row: Option<(i64, i64, Option<i64>)> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT uidvalidity, last_uid, highestmodseq FROM folder_sync WHERE mailbox_id = $1 AND folder = $2",
        ).bind(mailbox_id).bind(folder).fetch_optional(p).await?);
        Ok(row.map(|(v, u, m)| FolderState {
            uidvalidity: v as u32,
            last_uid: u as u32,
            highestmodseq: m.map(|m| m as u64),
        }))
    }

    /// Starts a folder afresh under a (new) UIDVALIDITY: every message is looked at
    /// again; those already tracked are linked, not duplicated.
    pub async fn reset_folder(
        &self,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
    ) -> StoreResult<()> {
        let t = now();
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO folder_sync (mailbox_id, folder, uidvalidity, last_uid, highestmodseq, updated_at)
             VALUES ($1, $2, $3, 0, NULL, $4)
             ON CONFLICT (mailbox_id, folder) DO UPDATE SET uidvalidity = $3, last_uid = 0, highestmodseq = NULL, updated_at = $4",
        ).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).bind(t).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Advances a folder's checkpoint (never backwards).
    pub async fn advance_folder(
        &self,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
        last_uid: u32,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE folder_sync SET last_uid = $4, updated_at = $5
             WHERE mailbox_id = $1 AND folder = $2 AND uidvalidity = $3 AND last_uid < $4",
        ).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).bind(i64::from(last_uid)).bind(now())
        .execute(p).await?.rows_affected());
        Ok(())
    }

    /// Records the HIGHESTMODSEQ a complete run saw.
    pub async fn set_folder_modseq(
        &self,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
        modseq: Option<u64>,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE folder_sync SET highestmodseq = $4 WHERE mailbox_id = $1 AND folder = $2 AND uidvalidity = $3",
        ).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).bind(modseq.map(|m| m as i64))
        .execute(p).await?.rows_affected());
        Ok(())
    }

    pub async fn tracked_folders(
        &self,
        org_id: &str,
        mailbox_id: &str,
    ) -> StoreResult<Vec<TrackedFolder>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT id, mailbox_id, folder, regarding_type, regarding_id, created_at FROM tracked_folders
             WHERE org_id = $1 AND mailbox_id = $2 ORDER BY folder",
        ).bind(org_id).bind(mailbox_id).fetch_all(p).await?))
    }

    /// Maps a folder of a mailbox to a regarding record (checked to exist).
    pub async fn add_tracked_folder(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        kind: RegardingType,
        regarding_id: &str,
    ) -> StoreResult<TrackedFolder> {
        self.get_mailbox(org_id, mailbox_id).await?;
        self.check_regarding_exists(org_id, kind, regarding_id)
            .await?;
        let id = mailbridge_domain::ids::new_id();
        let result = with_db!(&self.db, p => sqlx::query(
            "INSERT INTO tracked_folders (id, org_id, mailbox_id, folder, regarding_type, regarding_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ).bind(&id).bind(org_id).bind(mailbox_id).bind(folder).bind(kind).bind(regarding_id).bind(now())
        .execute(p).await.map(|r| r.rows_affected()));
        match result {
            Err(e) if StoreError::is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    Some("folder"),
                    format!("the folder `{folder}` is already tracked; delete that mapping first"),
                ));
            }
            other => {
                other?;
            }
        }
        let all = self.tracked_folders(org_id, mailbox_id).await?;
        all.into_iter()
            .find(|f| f.id == id)
            .ok_or(StoreError::NotFound)
    }

    pub async fn delete_tracked_folder(
        &self,
        org_id: &str,
        mailbox_id: &str,
        id: &str,
    ) -> StoreResult<()> {
        let n = with_db!(&self.db, p => sqlx::query(
            "DELETE FROM tracked_folders WHERE org_id = $1 AND mailbox_id = $2 AND id = $3",
        ).bind(org_id).bind(mailbox_id).bind(id).execute(p).await?.rows_affected());
        if n == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}
