//! Leases: exactly one worker owns a mailbox at a time. A lease is a row update
//! that succeeds only when the mailbox is free or its lease has expired, so it is
//! atomic on both backends; a dead holder's lease simply expires.

use chrono::{DateTime, Utc};

use crate::{Store, StoreResult, with_db};

/// A mailbox with work due, as claimed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueWork {
    pub mailbox_id: String,
    pub org_id: String,
    pub profile_id: Option<String>,
    pub incoming_due: bool,
    pub outgoing_due: bool,
}

impl Store {
    /// Mailboxes assigned to `node` with incoming or outgoing work due at `now`
    /// that no other node's live lease holds (its own, left by a restart, is taken
    /// back at once) and that may process mail (approved, while
    /// approval is required). An email left `sending` under a free lease was
    /// interrupted: that is due too.
    pub async fn due_mailboxes(
        &self,
        node: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<DueWork>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT m.id AS mailbox_id, m.org_id, m.profile_id,
                (m.incoming_enabled AND m.incoming_method = 'server_side_sync'
                    AND (m.next_incoming_at IS NULL OR m.next_incoming_at <= $1)) AS incoming_due,
                (m.outgoing_enabled AND m.outgoing_method = 'server_side_sync'
                    AND (m.next_outgoing_at IS NULL OR m.next_outgoing_at <= $1)
                    AND EXISTS (SELECT 1 FROM emails e WHERE e.org_id = m.org_id AND e.mailbox_id = m.id
                        AND (e.status = 'sending'
                             OR (e.status = 'pending_send' AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= $1))))) AS outgoing_due
             FROM mailboxes m JOIN email_settings s ON s.org_id = m.org_id
             WHERE m.profile_id IS NOT NULL
               AND m.assigned_node = $3 AND m.assigned_until >= $1
               AND (m.lease_owner IS NULL OR m.lease_expires_at < $1 OR m.lease_owner = $3)
               AND (m.approval_status = 'approved'
                    OR (m.owner_type = 'user' AND NOT s.process_email_for_approved_users_only)
                    OR (m.owner_type = 'queue' AND NOT s.process_email_for_approved_queues_only))
               AND ((m.incoming_enabled AND m.incoming_method = 'server_side_sync'
                        AND (m.next_incoming_at IS NULL OR m.next_incoming_at <= $1))
                 OR (m.outgoing_enabled AND m.outgoing_method = 'server_side_sync'
                        AND (m.next_outgoing_at IS NULL OR m.next_outgoing_at <= $1)
                        AND EXISTS (SELECT 1 FROM emails e WHERE e.org_id = m.org_id AND e.mailbox_id = m.id
                            AND (e.status = 'sending'
                                 OR (e.status = 'pending_send' AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= $1))))))
             ORDER BY m.next_incoming_at, m.id
             LIMIT $2",
        ).bind(now).bind(limit).bind(node).fetch_all(p).await?))
    }

    /// Takes the lease of a mailbox for `node` until `until`; false when another
    /// live holder has it.
    pub async fn acquire_lease(
        &self,
        mailbox_id: &str,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET lease_owner = $2, lease_expires_at = $3
             WHERE id = $1 AND (lease_owner IS NULL OR lease_expires_at < $4 OR lease_owner = $2)",
        ).bind(mailbox_id).bind(node).bind(until).bind(now).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Extends a lease this node holds; false when it was lost (expired and taken).
    pub async fn renew_lease(
        &self,
        mailbox_id: &str,
        node: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2",
        ).bind(mailbox_id).bind(node).bind(until).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Gives a lease back.
    pub async fn release_lease(&self, mailbox_id: &str, node: &str) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2",
        ).bind(mailbox_id).bind(node).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Makes a mailbox's incoming work due now (a push told us of new mail).
    pub async fn wake_incoming(&self, mailbox_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET next_incoming_at = $2, idle_runs = 0 WHERE id = $1",
        ).bind(mailbox_id).bind(now).execute(p).await?.rows_affected());
        Ok(())
    }

    /// The mailboxes of a profile that a mail server's event names by `login`:
    /// those whose sign-in name (the mailbox's username, else its address) or
    /// address is `login`, compared without case.
    pub async fn mailboxes_for_login(
        &self,
        org_id: &str,
        profile_id: &str,
        login: &str,
    ) -> StoreResult<Vec<String>> {
        Ok(with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT id FROM mailboxes
             WHERE org_id = $1 AND profile_id = $2
               AND (LOWER(COALESCE(username, email_address)) = LOWER($3)
                    OR LOWER(email_address) = LOWER($3))
             ORDER BY id",
        ).bind(org_id).bind(profile_id).bind(login).fetch_all(p).await?))
    }

    /// Makes a mailbox's outgoing work due now (an email was queued).
    pub async fn wake_outgoing(&self, mailbox_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query("UPDATE mailboxes SET next_outgoing_at = $2 WHERE id = $1")
            .bind(mailbox_id).bind(now).execute(p).await?.rows_affected());
        Ok(())
    }

    /// The mailboxes assigned to `node` at `now` whose incoming sync is enabled
    /// and allowed, for its push watchers.
    pub async fn incoming_enabled_mailboxes(
        &self,
        node: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        Ok(with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT m.id FROM mailboxes m JOIN email_settings s ON s.org_id = m.org_id
             WHERE m.incoming_enabled AND m.incoming_method = 'server_side_sync' AND m.profile_id IS NOT NULL
               AND m.assigned_node = $1 AND m.assigned_until >= $2
               AND (m.approval_status = 'approved'
                    OR (m.owner_type = 'user' AND NOT s.process_email_for_approved_users_only)
                    OR (m.owner_type = 'queue' AND NOT s.process_email_for_approved_queues_only))
             ORDER BY m.id",
        ).bind(node).bind(now).fetch_all(p).await?))
    }
}

impl Store {
    /// The organization of a mailbox (for work found by mailbox id alone).
    pub async fn mailbox_org(&self, mailbox_id: &str) -> StoreResult<String> {
        let v: Option<String> = with_db!(&self.db, p => sqlx::query_scalar("SELECT org_id FROM mailboxes WHERE id = $1")
            .bind(mailbox_id).fetch_optional(p).await?);
        v.ok_or(crate::StoreError::NotFound)
    }
}

impl Store {
    /// The node holding a mailbox's live lease, if any.
    pub async fn lease_holder(
        &self,
        mailbox_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT lease_owner FROM mailboxes WHERE id = $1 AND lease_expires_at >= $2",
        ).bind(mailbox_id).bind(now).fetch_optional(p).await?);
        Ok(v.flatten())
    }
}
