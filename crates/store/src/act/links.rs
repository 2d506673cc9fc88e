//! The mapping table (`act_links`): one record linked to one server item of a
//! mailbox, with both sides' versions and fingerprints when they were last in step;
//! and a mailbox's collections with their sync tokens (`act_collections`).

use chrono::{DateTime, Utc};
use mailbridge_domain::act::fingerprint::Fingerprint;
use mailbridge_domain::act::model::{ActItem, ActKind};
use mailbridge_domain::act::planner::Link;
use mailbridge_domain::ids::new_id;
use serde::Serialize;

use super::rows::{from_json, to_json};
use crate::{Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

/// One row of the mapping table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ActLink {
    pub id: String,
    pub org_id: String,
    pub mailbox_id: String,
    /// `appointment`, `task` or `contact`.
    pub kind: String,
    pub record_id: String,
    /// The calendar, task list or address book holding the item.
    pub collection_href: String,
    /// The item's href (CalDAV, CardDAV) or id (Exchange).
    pub server_href: String,
    pub server_uid: Option<String>,
    /// The record's version when both sides were last in step.
    pub record_version: i64,
    pub record_fingerprint: String,
    /// The item's ETag or change key when both sides were last in step.
    pub server_etag: Option<String>,
    pub server_fingerprint: String,
    /// The last synced item (the base of a three-way merge), as JSON; see
    /// [`ActLink::snapshot`].
    #[serde(skip)]
    pub snapshot_json: Option<String>,
    /// Why the last write for this item failed; cleared by the next successful sync.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub synced_at: DateTime<Utc>,
}

impl ActLink {
    pub fn act_kind(&self) -> Option<ActKind> {
        ActKind::ALL.into_iter().find(|k| k.as_str() == self.kind)
    }

    /// The last synced item, the base of a three-way merge.
    pub fn snapshot(&self) -> StoreResult<Option<ActItem>> {
        self.snapshot_json
            .as_deref()
            .map(|s| from_json("snapshot_json", s))
            .transpose()
    }

    /// The row as the planner takes it.
    pub fn planner_link(&self) -> Link {
        Link {
            record_id: self.record_id.clone(),
            server_id: self.server_href.clone(),
            record_version: self.record_version.to_string(),
            server_version: self.server_etag.clone().unwrap_or_default(),
            record_fingerprint: Fingerprint(self.record_fingerprint.clone()),
            server_fingerprint: Fingerprint(self.server_fingerprint.clone()),
            last_error: self.last_error.clone(),
        }
    }
}

/// What the executor writes into the mapping table after an item is in step.
#[derive(Debug, Clone, PartialEq)]
pub struct ActLinkWrite {
    pub kind: ActKind,
    pub record_id: String,
    pub collection_href: String,
    pub server_href: String,
    pub server_uid: Option<String>,
    pub record_version: i64,
    pub record_fingerprint: Fingerprint,
    pub server_etag: Option<String>,
    pub server_fingerprint: Fingerprint,
    /// The item both sides now hold.
    pub snapshot: Option<ActItem>,
}

/// A calendar, task list or address book of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ActCollection {
    pub mailbox_id: String,
    pub kind: String,
    pub href: String,
    /// The sync token of the last complete round; none: read it whole.
    pub sync_token: Option<String>,
    /// Items found here come into the store.
    pub tracked: bool,
    pub updated_at: DateTime<Utc>,
}

const SELECT_LINKS: &str = "SELECT t.id, t.org_id, t.mailbox_id, t.kind, t.record_id,
        t.collection_href, t.server_href, t.server_uid, t.record_version, t.record_fingerprint,
        t.server_etag, t.server_fingerprint, t.snapshot_json, t.last_error, t.last_error_at,
        t.synced_at
    FROM act_links t";

impl crate::records::Record for ActLink {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Store {
    /// Every link of a mailbox for one kind, by id: what the run plans from.
    pub async fn act_links(
        &self,
        org_id: &str,
        mailbox_id: &str,
        kind: ActKind,
    ) -> StoreResult<Vec<ActLink>> {
        let sql = format!(
            "{SELECT_LINKS} WHERE t.org_id = $1 AND t.mailbox_id = $2 AND t.kind = $3 ORDER BY t.id"
        );
        Ok(
            with_db!(&self.db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(org_id).bind(mailbox_id).bind(kind.as_str()).fetch_all(p).await?),
        )
    }

    /// A page of links (for the API), oldest first; `filters` narrow it.
    pub async fn list_act_links(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<ActLink>> {
        self.list_records(SELECT_LINKS, Some(org_id), filters, page)
            .await
    }

    /// Writes the link of a record after both sides are in step, and clears its last
    /// error. A link of another record to the same server item is replaced (the
    /// item now claims this record): one item, one record.
    pub async fn upsert_act_link(
        &self,
        org_id: &str,
        mailbox_id: &str,
        w: &ActLinkWrite,
    ) -> StoreResult<ActLink> {
        let snapshot = w.snapshot.as_ref().map(to_json).transpose()?;
        let t = now();
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "DELETE FROM act_links WHERE org_id = $1 AND mailbox_id = $2 AND server_href = $3
                    AND NOT (kind = $4 AND record_id = $5)",
            )
            .bind(org_id).bind(mailbox_id).bind(&w.server_href).bind(w.kind.as_str()).bind(&w.record_id)
            .execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO act_links (id, org_id, mailbox_id, kind, record_id, collection_href,
                    server_href, server_uid, record_version, record_fingerprint, server_etag,
                    server_fingerprint, snapshot_json, last_error, last_error_at, synced_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL, $14)
                 ON CONFLICT (mailbox_id, kind, record_id) DO UPDATE SET
                    collection_href = $6, server_href = $7, server_uid = $8, record_version = $9,
                    record_fingerprint = $10, server_etag = $11, server_fingerprint = $12,
                    snapshot_json = $13, last_error = NULL, last_error_at = NULL, synced_at = $14",
            )
            .bind(new_id()).bind(org_id).bind(mailbox_id).bind(w.kind.as_str()).bind(&w.record_id)
            .bind(&w.collection_href).bind(&w.server_href).bind(&w.server_uid).bind(w.record_version)
            .bind(w.record_fingerprint.as_str()).bind(&w.server_etag).bind(w.server_fingerprint.as_str())
            .bind(&snapshot).bind(t)
            .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        self.act_link(org_id, mailbox_id, w.kind, &w.record_id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The link of a record in a mailbox, if any.
    pub async fn act_link(
        &self,
        org_id: &str,
        mailbox_id: &str,
        kind: ActKind,
        record_id: &str,
    ) -> StoreResult<Option<ActLink>> {
        let sql = format!(
            "{SELECT_LINKS} WHERE t.org_id = $1 AND t.mailbox_id = $2 AND t.kind = $3 AND t.record_id = $4"
        );
        Ok(
            with_db!(&self.db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(org_id).bind(mailbox_id).bind(kind.as_str()).bind(record_id).fetch_optional(p).await?),
        )
    }

    /// Removes a record's link (the planner's `unlink`); whether there was one.
    pub async fn delete_act_link(
        &self,
        org_id: &str,
        mailbox_id: &str,
        kind: ActKind,
        record_id: &str,
    ) -> StoreResult<bool> {
        let n = with_db!(&self.db, p => sqlx::query(
            "DELETE FROM act_links WHERE org_id = $1 AND mailbox_id = $2 AND kind = $3 AND record_id = $4",
        )
        .bind(org_id).bind(mailbox_id).bind(kind.as_str()).bind(record_id)
        .execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    /// Records why a write for a linked item failed; the versions stay those of the
    /// last sync, so the item is planned again. Whether the link exists.
    pub async fn record_act_link_error(
        &self,
        org_id: &str,
        mailbox_id: &str,
        kind: ActKind,
        record_id: &str,
        error: &str,
    ) -> StoreResult<bool> {
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE act_links SET last_error = $5, last_error_at = $6
             WHERE org_id = $1 AND mailbox_id = $2 AND kind = $3 AND record_id = $4",
        )
        .bind(org_id).bind(mailbox_id).bind(kind.as_str()).bind(record_id).bind(error).bind(now())
        .execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    /// A mailbox's collections of one kind, by href.
    pub async fn act_collections(
        &self,
        org_id: &str,
        mailbox_id: &str,
        kind: ActKind,
    ) -> StoreResult<Vec<ActCollection>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT mailbox_id, kind, href, sync_token, tracked, updated_at FROM act_collections
             WHERE org_id = $1 AND mailbox_id = $2 AND kind = $3 ORDER BY href",
        )
        .bind(org_id).bind(mailbox_id).bind(kind.as_str()).fetch_all(p).await?))
    }

    /// Records a collection found on the server and whether items found there come
    /// in; its sync token stays.
    pub async fn upsert_act_collection(
        &self,
        org_id: &str,
        mailbox_id: &str,
        kind: ActKind,
        href: &str,
        tracked: bool,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO act_collections (org_id, mailbox_id, kind, href, sync_token, tracked, updated_at)
             VALUES ($1, $2, $3, $4, NULL, $5, $6)
             ON CONFLICT (mailbox_id, kind, href) DO UPDATE SET tracked = $5, updated_at = $6",
        )
        .bind(org_id).bind(mailbox_id).bind(kind.as_str()).bind(href).bind(tracked).bind(now())
        .execute(p).await?.rows_affected());
        Ok(())
    }

    /// A collection's sync token; `None` when unknown or never synced.
    pub async fn act_sync_token(
        &self,
        org_id: &str,
        mailbox_id: &str,
        kind: ActKind,
        href: &str,
    ) -> StoreResult<Option<String>> {
        let token: Option<Option<String>> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT sync_token FROM act_collections
             WHERE org_id = $1 AND mailbox_id = $2 AND kind = $3 AND href = $4",
        )
        .bind(org_id).bind(mailbox_id).bind(kind.as_str()).bind(href).fetch_optional(p).await?);
        Ok(token.flatten())
    }

    /// Stores a collection's sync token after a complete round (`None`: read it
    /// whole next time, e.g. after the server refused the token). A collection not
    /// recorded yet is added, untracked.
    pub async fn set_act_sync_token(
        &self,
        org_id: &str,
        mailbox_id: &str,
        kind: ActKind,
        href: &str,
        token: Option<&str>,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO act_collections (org_id, mailbox_id, kind, href, sync_token, tracked, updated_at)
             VALUES ($1, $2, $3, $4, $5, FALSE, $6)
             ON CONFLICT (mailbox_id, kind, href) DO UPDATE SET sync_token = $5, updated_at = $6",
        )
        .bind(org_id).bind(mailbox_id).bind(kind.as_str()).bind(href).bind(token).bind(now())
        .execute(p).await?.rows_affected());
        Ok(())
    }
}
