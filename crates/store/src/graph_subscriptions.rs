//! Microsoft Graph change-notification subscriptions of Exchange Online mailboxes
//! (migration 0011): one row per (mailbox, folder) the engine keeps a subscription
//! on. The `clientState` secret that authenticates Graph's notifications is sealed
//! with the store key and leaves the store only through
//! [`Store::graph_subscription_for_notification`], to check a notification. A row
//! is changed by one node at a time, under its lease
//! ([`Store::claim_graph_subscription`]); the notification endpoint only flags it.

use chrono::{DateTime, Utc};
use mailbridge_domain::secret::Secret;

use crate::{Store, StoreResult, now, with_db};

/// A subscription row, without its secret: what the engine plans with.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GraphSubscriptionRow {
    pub org_id: String,
    pub mailbox_id: String,
    pub folder: String,
    /// Graph's subscription id; `None` while there is none (to create).
    pub subscription_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The lifetime Graph granted at the last creation or renewal, in minutes.
    pub lifetime_minutes: i64,
    /// Graph asked for a reauthorization (`reauthorizationRequired`).
    pub renew_requested: bool,
    /// After a failure, no attempt before this time.
    pub retry_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Notifications naming this subscription whose `clientState` did not match.
    pub rejected_notifications: i64,
}

/// What a successful creation or renewal wrote.
#[derive(Debug, Clone)]
pub struct GraphSubscriptionGranted<'a> {
    pub subscription_id: &'a str,
    pub expires_at: DateTime<Utc>,
    pub lifetime_minutes: i64,
}

const COLUMNS: &str = "org_id, mailbox_id, folder, subscription_id, expires_at, lifetime_minutes,
    renew_requested, retry_at, last_error, rejected_notifications";

fn secret_context(mailbox_id: &str, folder: &str) -> String {
    format!("graph_subscriptions.client_state_enc:{mailbox_id}:{folder}")
}

impl Store {
    /// Every organization's mailboxes that want change notifications: incoming
    /// enabled by server-side sync (and processed under the approval rules, as
    /// for push) on an `exchange_online` profile, as (org, mailbox) pairs.
    pub async fn graph_notification_mailboxes(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT m.org_id, m.id FROM mailboxes m
             JOIN email_settings s ON s.org_id = m.org_id
             JOIN email_server_profiles f ON f.org_id = m.org_id AND f.id = m.profile_id
             WHERE m.incoming_enabled AND m.incoming_method = 'server_side_sync'
               AND f.server_type = 'exchange_online'
               AND (m.approval_status = 'approved'
                    OR (m.owner_type = 'user' AND NOT s.process_email_for_approved_users_only)
                    OR (m.owner_type = 'queue' AND NOT s.process_email_for_approved_queues_only))
             ORDER BY m.org_id, m.id",
        ).fetch_all(p).await?))
    }

    /// Every organization's subscription rows.
    pub async fn graph_subscriptions(&self) -> StoreResult<Vec<GraphSubscriptionRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM graph_subscriptions ORDER BY org_id, mailbox_id, folder"
        ));
        Ok(with_db!(&self.db, p => sqlx::query_as(sql).fetch_all(p).await?))
    }

    /// The rows of one mailbox.
    pub async fn graph_subscriptions_of_mailbox(
        &self,
        org_id: &str,
        mailbox_id: &str,
    ) -> StoreResult<Vec<GraphSubscriptionRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM graph_subscriptions WHERE org_id = $1 AND mailbox_id = $2 ORDER BY folder"
        ));
        Ok(
            with_db!(&self.db, p => sqlx::query_as(sql).bind(org_id).bind(mailbox_id).fetch_all(p).await?),
        )
    }

    /// Takes the row of (mailbox, folder) for `node` until `until`, when it is
    /// free, its lease expired or already `node`'s; with `create_missing`, a
    /// missing row is inserted first. Returns the row as claimed, or `None` when
    /// another node holds it (or it does not exist).
    pub async fn claim_graph_subscription(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        node: &str,
        until: DateTime<Utc>,
        create_missing: bool,
    ) -> StoreResult<Option<GraphSubscriptionRow>> {
        let at = now();
        if create_missing {
            with_db!(&self.db, p => sqlx::query(
                "INSERT INTO graph_subscriptions (org_id, mailbox_id, folder, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (org_id, mailbox_id, folder) DO NOTHING",
            ).bind(org_id).bind(mailbox_id).bind(folder).bind(at)
            .execute(p).await?.rows_affected());
        }
        let claimed = with_db!(&self.db, p => sqlx::query(
            "UPDATE graph_subscriptions SET lease_owner = $4, lease_expires_at = $5
             WHERE org_id = $1 AND mailbox_id = $2 AND folder = $3
               AND (lease_owner IS NULL OR lease_owner = $4 OR lease_expires_at < $6)",
        ).bind(org_id).bind(mailbox_id).bind(folder).bind(node).bind(until).bind(at)
        .execute(p).await?.rows_affected());
        if claimed == 0 {
            return Ok(None);
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM graph_subscriptions WHERE org_id = $1 AND mailbox_id = $2 AND folder = $3"
        ));
        Ok(
            with_db!(&self.db, p => sqlx::query_as(sql).bind(org_id).bind(mailbox_id).bind(folder)
            .fetch_optional(p).await?),
        )
    }

    /// Gives the row's lease back without changing it.
    pub async fn release_graph_subscription(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        node: &str,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE graph_subscriptions SET lease_owner = NULL, lease_expires_at = NULL
             WHERE org_id = $1 AND mailbox_id = $2 AND folder = $3 AND lease_owner = $4",
        ).bind(org_id).bind(mailbox_id).bind(folder).bind(node).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Records a subscription just created, with its sealed `clientState`, and
    /// releases the lease.
    pub async fn graph_subscription_created(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        node: &str,
        granted: &GraphSubscriptionGranted<'_>,
        client_state: &Secret,
    ) -> StoreResult<()> {
        let sealed = self
            .cipher
            .seal(&secret_context(mailbox_id, folder), client_state.expose());
        with_db!(&self.db, p => sqlx::query(
            "UPDATE graph_subscriptions SET subscription_id = $5, client_state_enc = $6, expires_at = $7,
                lifetime_minutes = $8, renew_requested = FALSE, retry_at = NULL, last_error = NULL,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = $9
             WHERE org_id = $1 AND mailbox_id = $2 AND folder = $3 AND lease_owner = $4",
        ).bind(org_id).bind(mailbox_id).bind(folder).bind(node).bind(granted.subscription_id)
        .bind(&sealed).bind(granted.expires_at).bind(granted.lifetime_minutes).bind(now())
        .execute(p).await?.rows_affected());
        Ok(())
    }

    /// Records a renewal (the subscription id is unchanged) and releases the lease.
    pub async fn graph_subscription_renewed(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        node: &str,
        granted: &GraphSubscriptionGranted<'_>,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE graph_subscriptions SET expires_at = $6, lifetime_minutes = $7, renew_requested = FALSE,
                retry_at = NULL, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = $8
             WHERE org_id = $1 AND mailbox_id = $2 AND folder = $3 AND lease_owner = $4
               AND subscription_id = $5",
        ).bind(org_id).bind(mailbox_id).bind(folder).bind(node).bind(granted.subscription_id)
        .bind(granted.expires_at).bind(granted.lifetime_minutes).bind(now())
        .execute(p).await?.rows_affected());
        Ok(())
    }

    /// Records a failed attempt (`error` holds no secret) and when to try again,
    /// and releases the lease; with `forget`, the subscription is also dropped
    /// (gone at Graph), so that the next attempt creates one.
    #[allow(clippy::too_many_arguments)]
    pub async fn graph_subscription_failed(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
        node: &str,
        error: &str,
        retry_at: DateTime<Utc>,
        forget: bool,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE graph_subscriptions SET last_error = $5, retry_at = $6,
                subscription_id = CASE WHEN $7 THEN NULL ELSE subscription_id END,
                client_state_enc = CASE WHEN $7 THEN NULL ELSE client_state_enc END,
                expires_at = CASE WHEN $7 THEN NULL ELSE expires_at END,
                renew_requested = CASE WHEN $7 THEN FALSE ELSE renew_requested END,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = $8
             WHERE org_id = $1 AND mailbox_id = $2 AND folder = $3 AND lease_owner = $4",
        ).bind(org_id).bind(mailbox_id).bind(folder).bind(node).bind(error).bind(retry_at).bind(forget)
        .bind(now()).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Deletes the row (its subscription ended or was never made).
    pub async fn delete_graph_subscription(
        &self,
        org_id: &str,
        mailbox_id: &str,
        folder: &str,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "DELETE FROM graph_subscriptions WHERE org_id = $1 AND mailbox_id = $2 AND folder = $3",
        ).bind(org_id).bind(mailbox_id).bind(folder).execute(p).await?.rows_affected());
        Ok(())
    }

    /// The mailbox a subscription of the organization belongs to and its
    /// `clientState` in clear, to check a notification; `None` for an unknown id.
    pub async fn graph_subscription_for_notification(
        &self,
        org_id: &str,
        subscription_id: &str,
    ) -> StoreResult<Option<(String, Secret)>> {
        let row: Option<(String, String, Option<String>)> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT mailbox_id, folder, client_state_enc FROM graph_subscriptions
             WHERE org_id = $1 AND subscription_id = $2",
        ).bind(org_id).bind(subscription_id).fetch_optional(p).await?);
        let Some((mailbox_id, folder, Some(sealed))) = row else {
            return Ok(None);
        };
        let secret = self
            .cipher
            .open(&secret_context(&mailbox_id, &folder), &sealed)?;
        Ok(Some((mailbox_id, Secret::new(secret))))
    }

    /// Counts a notification naming the subscription whose `clientState` did
    /// not match.
    pub async fn graph_notification_rejected(
        &self,
        org_id: &str,
        subscription_id: &str,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE graph_subscriptions SET rejected_notifications = rejected_notifications + 1
             WHERE org_id = $1 AND subscription_id = $2",
        ).bind(org_id).bind(subscription_id).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Flags the subscription for renewal at once (Graph sent
    /// `reauthorizationRequired`); false when the id is unknown.
    pub async fn request_graph_subscription_renewal(
        &self,
        org_id: &str,
        subscription_id: &str,
    ) -> StoreResult<bool> {
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE graph_subscriptions SET renew_requested = TRUE, retry_at = NULL, updated_at = $3
             WHERE org_id = $1 AND subscription_id = $2",
        ).bind(org_id).bind(subscription_id).bind(now()).execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    /// Drops a subscription Graph removed (`subscriptionRemoved`), so that it is
    /// created again; false when the id is unknown.
    pub async fn graph_subscription_removed(
        &self,
        org_id: &str,
        subscription_id: &str,
    ) -> StoreResult<bool> {
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE graph_subscriptions SET subscription_id = NULL, client_state_enc = NULL,
                expires_at = NULL, renew_requested = FALSE, retry_at = NULL,
                last_error = 'Microsoft Graph removed the subscription', updated_at = $3
             WHERE org_id = $1 AND subscription_id = $2",
        ).bind(org_id).bind(subscription_id).bind(now()).execute(p).await?.rows_affected());
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use mailbridge_domain::{Role, TrackingFilter};

    use super::*;
    use crate::{Cipher, NewUser};

    #[derive(Debug, Clone, Copy)]
    enum Backend {
        Sqlite,
        Postgres,
    }

    #[tokio::test]
    async fn a_subscription_row_lives_on_sqlite() {
        a_subscription_row_lives(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn a_subscription_row_lives_on_postgres() {
        a_subscription_row_lives(Backend::Postgres).await
    }

    async fn a_subscription_row_lives(backend: Backend) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => dir.path().join("subs.db").display().to_string(),
            Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
        };
        let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
        let store = Store::open(&url, cipher).await.expect("store opens");
        let org = store
            .create_organization("Contoso", None)
            .await
            .expect("organization")
            .id;
        let mailbox = store
            .create_user(
                &org,
                NewUser {
                    full_name: "Alice".to_owned(),
                    email: Some("alice@contoso.com".to_owned()),
                    role: Role::User,
                    tracking_filter: TrackingFilter::None,
                },
            )
            .await
            .expect("user")
            .mailbox_id;
        let (org, mb) = (org.as_str(), mailbox.as_str());
        let later = Utc::now() + Duration::minutes(2);

        // Created under a lease that a second node cannot take meanwhile.
        let row = store
            .claim_graph_subscription(org, mb, "inbox", "n1", later, true)
            .await
            .unwrap()
            .expect("claimed");
        assert_eq!(row.subscription_id, None);
        assert!(
            store
                .claim_graph_subscription(org, mb, "inbox", "n2", later, true)
                .await
                .unwrap()
                .is_none(),
            "held by n1"
        );
        let expires = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let granted = GraphSubscriptionGranted {
            subscription_id: "s1",
            expires_at: expires,
            lifetime_minutes: 4230,
        };
        store
            .graph_subscription_created(org, mb, "inbox", "n1", &granted, &Secret::new("cs-1"))
            .await
            .unwrap();
        let rows = store.graph_subscriptions().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].subscription_id.as_deref(), Some("s1"));
        assert_eq!(rows[0].expires_at, Some(expires));
        assert_eq!(rows[0].lifetime_minutes, 4230);

        // A notification finds the mailbox and the secret; of its organization only.
        let (m, secret) = store
            .graph_subscription_for_notification(org, "s1")
            .await
            .unwrap()
            .expect("known");
        assert_eq!((m.as_str(), secret.expose()), (mb, "cs-1"));
        assert!(
            store
                .graph_subscription_for_notification("other-org", "s1")
                .await
                .unwrap()
                .is_none()
        );
        store.graph_notification_rejected(org, "s1").await.unwrap();
        assert!(
            store
                .request_graph_subscription_renewal(org, "s1")
                .await
                .unwrap()
        );
        assert!(
            !store
                .request_graph_subscription_renewal(org, "nope")
                .await
                .unwrap()
        );
        let row = &store.graph_subscriptions_of_mailbox(org, mb).await.unwrap()[0];
        assert_eq!((row.rejected_notifications, row.renew_requested), (1, true));

        // Renewed by the other node once the lease is free.
        store
            .claim_graph_subscription(org, mb, "inbox", "n2", later, false)
            .await
            .unwrap()
            .expect("free again");
        let renewed = GraphSubscriptionGranted {
            expires_at: expires + Duration::hours(1),
            ..granted
        };
        store
            .graph_subscription_renewed(org, mb, "inbox", "n2", &renewed)
            .await
            .unwrap();
        let row = &store.graph_subscriptions_of_mailbox(org, mb).await.unwrap()[0];
        assert_eq!(row.expires_at, Some(expires + Duration::hours(1)));
        assert!(!row.renew_requested);

        // A failure keeps the subscription, or forgets it.
        let retry = DateTime::parse_from_rfc3339("2029-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for forget in [false, true] {
            store
                .claim_graph_subscription(org, mb, "inbox", "n1", later, false)
                .await
                .unwrap()
                .expect("claimed");
            store
                .graph_subscription_failed(org, mb, "inbox", "n1", "it failed", retry, forget)
                .await
                .unwrap();
            let row = &store.graph_subscriptions_of_mailbox(org, mb).await.unwrap()[0];
            assert_eq!(row.last_error.as_deref(), Some("it failed"));
            assert_eq!(row.retry_at, Some(retry));
            assert_eq!(row.subscription_id.is_none(), forget);
        }
        assert!(
            store
                .graph_subscription_for_notification(org, "s1")
                .await
                .unwrap()
                .is_none(),
            "forgotten"
        );

        // Removed by Graph: ready to be created again.
        store
            .claim_graph_subscription(org, mb, "inbox", "n1", later, false)
            .await
            .unwrap()
            .expect("claimed");
        let again = GraphSubscriptionGranted {
            subscription_id: "s2",
            ..granted
        };
        store
            .graph_subscription_created(org, mb, "inbox", "n1", &again, &Secret::new("cs-2"))
            .await
            .unwrap();
        assert!(store.graph_subscription_removed(org, "s2").await.unwrap());
        let row = &store.graph_subscriptions_of_mailbox(org, mb).await.unwrap()[0];
        assert_eq!((row.subscription_id.as_deref(), row.retry_at), (None, None));

        // Not an Exchange Online mailbox: not wanted.
        assert!(
            store
                .graph_notification_mailboxes()
                .await
                .unwrap()
                .is_empty()
        );
        store
            .delete_graph_subscription(org, mb, "inbox")
            .await
            .unwrap();
        assert!(store.graph_subscriptions().await.unwrap().is_empty());
    }
}
