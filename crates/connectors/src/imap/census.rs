//! What the completeness census asks of the selected folder: every UID up to a
//! checkpoint, and which of some UIDs are still there.

use mailbridge_domain::error_model::SyncError;

use super::ImapSession;
use super::fetch::uid_set;

impl ImapSession {
    /// The UIDs of the selected folder from 1 to `up_to_uid`, ascending
    /// (`UID SEARCH UID 1:n`: no `*`, so `QUIRK_UID_RANGE_LAST` cannot apply).
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn uids_up_to(&mut self, up_to_uid: u32) -> Result<Vec<u32>, SyncError> {
        if up_to_uid == 0 {
            return Ok(Vec::new());
        }
        self.search_uids(format!("UID 1:{up_to_uid}"), |u| u <= up_to_uid)
            .await
    }

    /// Of these UIDs (sorted, distinct), those still in the selected folder.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn uids_present(&mut self, uids: &[u32]) -> Result<Vec<u32>, SyncError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        self.search_uids(format!("UID {}", uid_set(uids)), |u| {
            uids.binary_search(&u).is_ok()
        })
        .await
    }

    async fn search_uids(
        &mut self,
        query: String,
        keep: impl Fn(u32) -> bool,
    ) -> Result<Vec<u32>, SyncError> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.session.uid_search(&query)).await;
        let uids = self.finish(&format!("UID SEARCH {query}"), result)?;
        let mut uids: Vec<u32> = uids.into_iter().filter(|&u| keep(u)).collect();
        uids.sort_unstable();
        Ok(uids)
    }
}
