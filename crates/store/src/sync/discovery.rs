//! The server locations autodiscover found for a mailbox: written by the engine
//! after a lookup, read with the mailbox, cleared when they must be looked up again.

use chrono::{DateTime, Utc};
use mailbridge_domain::DiscoverySource;
use mailbridge_domain::autodiscover::DiscoveredLocation;

use crate::{Store, StoreResult, with_db};

impl Store {
    /// Records what autodiscover found for a mailbox and when.
    pub async fn set_discovered_location(
        &self,
        org_id: &str,
        mailbox_id: &str,
        incoming: Option<&str>,
        outgoing: Option<&str>,
        source: DiscoverySource,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET discovered_incoming_location = $3,
                discovered_outgoing_location = $4, discovered_source = $5, discovered_at = $6
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id).bind(mailbox_id).bind(incoming).bind(outgoing).bind(source)
        .bind(chrono::DurationRound::duration_trunc(at, chrono::Duration::microseconds(1)).unwrap_or(at))
        .execute(p).await?.rows_affected());
        Ok(())
    }

    /// What autodiscover last found for a mailbox, if anything.
    pub async fn discovered_location(
        &self,
        org_id: &str,
        mailbox_id: &str,
    ) -> StoreResult<Option<DiscoveredLocation>> {
        Ok(self.get_mailbox(org_id, mailbox_id).await?.discovered())
    }

    /// Forgets what autodiscover found, so that the next run looks again.
    pub async fn clear_discovered_location(
        &self,
        org_id: &str,
        mailbox_id: &str,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET discovered_incoming_location = NULL,
                discovered_outgoing_location = NULL, discovered_source = NULL, discovered_at = NULL
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id).bind(mailbox_id)
        .execute(p).await?.rows_affected());
        Ok(())
    }
}
