//! Deleting processed messages from the selected folder (a forward mailbox's
//! option): `\Deleted`, then UID EXPUNGE of exactly those UIDs.

use futures::TryStreamExt as _;
use mailbridge_domain::error_model::SyncError;

use super::ImapSession;

impl ImapSession {
    /// Deletes messages `uids` of the selected folder. Without UIDPLUS they are
    /// only flagged `\Deleted` (a plain EXPUNGE would also remove what others
    /// flagged, which is not ours to remove) and the server's own expunge
    /// removes them later. UIDs no longer there are not an error.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn delete_uids(&mut self, uids: &[u32]) -> Result<(), SyncError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let timeout = self.timeout;
        let store = async {
            let updates = self
                .session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?;
            updates.try_collect::<Vec<_>>().await
        };
        let result = tokio::time::timeout(timeout, store).await;
        self.finish(&format!("UID STORE {set} +FLAGS (\\Deleted)"), result)?;
        if self.capabilities.uidplus {
            let expunge = async {
                let expunged = self.session.uid_expunge(&set).await?;
                expunged.try_collect::<Vec<_>>().await
            };
            let result = tokio::time::timeout(timeout, expunge).await;
            self.finish(&format!("UID EXPUNGE {set}"), result)?;
        }
        Ok(())
    }
}
