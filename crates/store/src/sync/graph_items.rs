//! Exchange Online (Microsoft Graph) folders: the synthetic UID of each message
//! Graph reports, per (mailbox, folder), and the folder's delta link.

use crate::{Store, StoreResult, now, with_db};

impl Store {
    /// The UID of each item id (in order), giving an item seen for the first time
    /// the folder's next UID. One worker runs a mailbox at a time (its lease), so
    /// the next UID is not contended; an item already mapped keeps its UID.
    pub async fn graph_uids(
        &self,
        mailbox_id: &str,
        folder: &str,
        item_ids: &[String],
    ) -> StoreResult<Vec<u32>> {
        let mut out = Vec::with_capacity(item_ids.len());
        for id in item_ids {
            let uid: i64 = with_db!(&self.db, p => {
                let mut tx = p.begin().await?;
                sqlx::query(
                    "INSERT INTO graph_items (mailbox_id, folder, item_id, uid)
                     SELECT $1, $2, $3, COALESCE(MAX(uid), 0) + 1 FROM graph_items WHERE mailbox_id = $1 AND folder = $2
                     ON CONFLICT (mailbox_id, folder, item_id) DO NOTHING",
                ).bind(mailbox_id).bind(folder).bind(id).execute(&mut *tx).await?;
                let uid: i64 = sqlx::query_scalar(
                    "SELECT uid FROM graph_items WHERE mailbox_id = $1 AND folder = $2 AND item_id = $3",
                ).bind(mailbox_id).bind(folder).bind(id).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                uid
            });
            out.push(u32::try_from(uid).unwrap_or(u32::MAX));
        }
        Ok(out)
    }

    /// The folder's stored delta (or next) link, if any.
    pub async fn folder_sync_state(
        &self,
        mailbox_id: &str,
        folder: &str,
    ) -> StoreResult<Option<String>> {
        let row: Option<Option<String>> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT sync_state FROM folder_sync WHERE mailbox_id = $1 AND folder = $2",
        ).bind(mailbox_id).bind(folder).fetch_optional(p).await?);
        Ok(row.flatten())
    }

    /// Stores (or, with `None`, clears) the folder's delta link.
    pub async fn set_folder_sync_state(
        &self,
        mailbox_id: &str,
        folder: &str,
        uidvalidity: u32,
        state: Option<&str>,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE folder_sync SET sync_state = $4, updated_at = $5
             WHERE mailbox_id = $1 AND folder = $2 AND uidvalidity = $3",
        ).bind(mailbox_id).bind(folder).bind(i64::from(uidvalidity)).bind(state).bind(now())
        .execute(p).await?.rows_affected());
        Ok(())
    }
}
