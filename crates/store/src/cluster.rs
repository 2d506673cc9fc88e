//! Cluster mode: the nodes sharing this database (registration, heartbeats)
//! and the assignment of mailboxes to nodes. A node schedules and watches only
//! the mailboxes assigned to it; an assignment lasts until `assigned_until`,
//! which the holder's heartbeat renews, so a dead node's mailboxes become free
//! when its last renewal runs out. Claims skip rows another node is claiming
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has a single writer).
//!
//! The run lease (`lease_owner`, crate::sync::leases) stays the guard against
//! two runs of one mailbox: an assignment decides who starts runs, the lease
//! makes sure only one runs.

use chrono::{DateTime, Utc};
use mailbridge_domain::cluster::ClusterView;

use crate::{Backend, Store, StoreResult, with_db};

/// The condition for a mailbox that may have work (the union of the
/// scheduler's due conditions without the times), over `mailboxes m` joined
/// with `email_settings s`.
macro_rules! eligible {
    () => {
        "m.profile_id IS NOT NULL
         AND ((m.incoming_enabled AND m.incoming_method = 'server_side_sync')
           OR (m.outgoing_enabled AND m.outgoing_method = 'server_side_sync')
           OR (m.act_enabled AND m.act_method = 'server_side_sync'))
         AND (m.approval_status = 'approved'
              OR (m.owner_type = 'user' AND NOT s.process_email_for_approved_users_only)
              OR (m.owner_type = 'queue' AND NOT s.process_email_for_approved_queues_only))"
    };
}

/// What a node says about itself when it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
}

/// A node as the node view shows it, with the organization's mailboxes it holds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// The organization's mailboxes assigned to the node (live assignments).
    pub mailboxes: i64,
    /// Of those, the ones with a run in flight on it.
    pub running: i64,
}

/// One mailbox of a node, for the node view.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeMailbox {
    pub mailbox_id: String,
    pub email_address: String,
    pub assigned_until: DateTime<Utc>,
    pub running: bool,
}

impl Store {
    /// Records that `node` (re)started at `now`: a node id comes back after a
    /// restart (it is kept in the data directory), so the row is reused.
    pub async fn register_node(&self, node: &NodeInfo, now: DateTime<Utc>) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO nodes (id, hostname, pid, version, started_at, heartbeat_at, stopped_at)
             VALUES ($1, $2, $3, $4, $5, $5, NULL)
             ON CONFLICT (id) DO UPDATE SET hostname = $2, pid = $3, version = $4,
                started_at = $5, heartbeat_at = $5, stopped_at = NULL",
        ).bind(&node.id).bind(&node.hostname).bind(node.pid).bind(&node.version).bind(now)
            .execute(p).await?.rows_affected());
        Ok(())
    }

    /// The heartbeat: the node is alive at `now` and keeps its mailboxes until
    /// `until`. Mailboxes that can no longer have work are given back. Returns
    /// how many mailboxes the node holds afterwards.
    pub async fn node_heartbeat(
        &self,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<u64> {
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE nodes SET heartbeat_at = $2, stopped_at = NULL WHERE id = $1")
                .bind(node).bind(now).execute(&mut *tx).await?;
            sqlx::query(concat!(
                "UPDATE mailboxes SET assigned_node = NULL, assigned_until = NULL
                 WHERE assigned_node = $1 AND id NOT IN (
                    SELECT m.id FROM mailboxes m JOIN email_settings s ON s.org_id = m.org_id
                    WHERE m.assigned_node = $1 AND ", eligible!(), ")"))
                .bind(node).execute(&mut *tx).await?;
            let held = sqlx::query(
                "UPDATE mailboxes SET assigned_until = $2 WHERE assigned_node = $1")
                .bind(node).bind(until).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(held)
        })
    }

    /// The counts a node rebalances on: live nodes (heartbeat at or after
    /// `alive_since`, not stopped), mailboxes that may have work, and those
    /// `node` holds at `now`.
    pub async fn cluster_view(
        &self,
        node: &str,
        now: DateTime<Utc>,
        alive_since: DateTime<Utc>,
    ) -> StoreResult<ClusterView> {
        let (live, eligible, held): (i64, i64, i64) = with_db!(&self.db, p => sqlx::query_as(concat!(
            "SELECT
                (SELECT COUNT(*) FROM nodes WHERE stopped_at IS NULL AND heartbeat_at >= $2),
                COUNT(*),
                COALESCE(SUM(CASE WHEN m.assigned_node = $1 AND m.assigned_until >= $3 THEN 1 ELSE 0 END), 0)
             FROM mailboxes m JOIN email_settings s ON s.org_id = m.org_id
             WHERE ", eligible!()),
        ).bind(node).bind(alive_since).bind(now).fetch_one(p).await?);
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(ClusterView {
            live_nodes: count(live),
            eligible: count(eligible),
            held: count(held),
        })
    }

    /// Assigns up to `limit` free mailboxes (never assigned, or whose holder's
    /// assignment ran out before `now`) to `node` until `until`; the ones due
    /// soonest first. Returns how many it got.
    pub async fn claim_mailboxes(
        &self,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<u64> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The outer condition is checked again on the row as it is when updated,
        // so two nodes claiming at once never both get a mailbox.
        let sql = match self.backend() {
            Backend::Postgres => concat!(
                "UPDATE mailboxes SET assigned_node = $1, assigned_until = $2
                 WHERE (assigned_node IS NULL OR assigned_until < $3) AND id IN (
                    SELECT m.id FROM mailboxes m JOIN email_settings s ON s.org_id = m.org_id
                    WHERE (m.assigned_node IS NULL OR m.assigned_until < $3) AND ",
                eligible!(),
                "
                    ORDER BY (m.next_incoming_at IS NOT NULL), m.next_incoming_at, m.id
                    LIMIT $4 FOR UPDATE OF m SKIP LOCKED)"
            ),
            Backend::Sqlite => concat!(
                "UPDATE mailboxes SET assigned_node = $1, assigned_until = $2
                 WHERE (assigned_node IS NULL OR assigned_until < $3) AND id IN (
                    SELECT m.id FROM mailboxes m JOIN email_settings s ON s.org_id = m.org_id
                    WHERE (m.assigned_node IS NULL OR m.assigned_until < $3) AND ",
                eligible!(),
                "
                    ORDER BY (m.next_incoming_at IS NOT NULL), m.next_incoming_at, m.id
                    LIMIT $4)"
            ),
        };
        Ok(with_db!(&self.db, p => sqlx::query(sql)
            .bind(node).bind(until).bind(now).bind(limit).execute(p).await?.rows_affected()))
    }

    /// Gives back up to `limit` of `node`'s mailboxes, never one with a run in
    /// flight on it (its run lease live at `now`). Returns how many.
    pub async fn release_mailboxes(
        &self,
        node: &str,
        now: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<u64> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET assigned_node = NULL, assigned_until = NULL
             WHERE assigned_node = $1 AND id IN (
                SELECT id FROM mailboxes
                WHERE assigned_node = $1
                  AND (lease_owner IS NULL OR lease_owner <> $1 OR lease_expires_at < $2)
                ORDER BY id DESC LIMIT $3)",
        ).bind(node).bind(now).bind(limit).execute(p).await?.rows_affected()))
    }

    /// A node stopping cleanly: its mailboxes are free at once for the others,
    /// and the view shows it stopped rather than lost.
    pub async fn leave_cluster(&self, node: &str, now: DateTime<Utc>) -> StoreResult<()> {
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE mailboxes SET assigned_node = NULL, assigned_until = NULL WHERE assigned_node = $1")
                .bind(node).execute(&mut *tx).await?;
            sqlx::query("UPDATE nodes SET stopped_at = $2 WHERE id = $1")
                .bind(node).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Forgets nodes not heard of since `before` (stopped or lost long ago).
    pub async fn prune_nodes(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(
            with_db!(&self.db, p => sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1")
            .bind(before).execute(p).await?.rows_affected()),
        )
    }

    /// The node holding a mailbox's live assignment at `now`, if any.
    pub async fn mailbox_node(
        &self,
        mailbox_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT assigned_node FROM mailboxes WHERE id = $1 AND assigned_until >= $2",
        ).bind(mailbox_id).bind(now).fetch_optional(p).await?);
        Ok(v.flatten())
    }

    /// Every known node, newest heartbeat first, with the organization's
    /// mailboxes each holds at `now`.
    pub async fn list_nodes(&self, org_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<NodeRow>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT n.id, n.hostname, n.pid, n.version, n.started_at, n.heartbeat_at, n.stopped_at,
                COUNT(m.id) AS mailboxes,
                COALESCE(SUM(CASE WHEN m.lease_owner = n.id AND m.lease_expires_at >= $2 THEN 1 ELSE 0 END), 0) AS running
             FROM nodes n
             LEFT JOIN mailboxes m ON m.assigned_node = n.id AND m.assigned_until >= $2 AND m.org_id = $1
             GROUP BY n.id, n.hostname, n.pid, n.version, n.started_at, n.heartbeat_at, n.stopped_at
             ORDER BY n.heartbeat_at DESC, n.id",
        ).bind(org_id).bind(now).fetch_all(p).await?))
    }

    /// The organization's mailboxes `node` holds at `now`, by address, after
    /// the address `after` (keyset paging), at most `limit`.
    pub async fn node_mailboxes(
        &self,
        org_id: &str,
        node: &str,
        now: DateTime<Utc>,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<NodeMailbox>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT id AS mailbox_id, email_address, assigned_until,
                COALESCE(lease_owner = $2 AND lease_expires_at >= $3, FALSE) AS running
             FROM mailboxes
             WHERE org_id = $1 AND assigned_node = $2 AND assigned_until >= $3
               AND ($4 IS NULL OR email_address > $4)
             ORDER BY email_address
             LIMIT $5",
        ).bind(org_id).bind(node).bind(now).bind(after).bind(limit).fetch_all(p).await?))
    }
}
