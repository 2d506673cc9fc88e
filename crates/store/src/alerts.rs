//! Alerts and their recipients.

use mailbridge_domain::alert::Alert;
use sqlx::QueryBuilder;

use crate::webhooks::events::{NewEvent, emit_events};
use crate::{Backend, Filter, Page, PageRequest, Store, StoreResult, now, with_db};

const SELECT: &str =
    "SELECT t.id, t.org_id, t.scope, t.severity, t.mailbox_id, t.profile_id, t.item_ref,
        t.message, t.fix, t.created_at
    FROM alerts t";

/// The filter that keeps alerts addressed to one user.
pub fn alerts_for_recipient(user_id: &str) -> Filter {
    Filter::Around(
        "EXISTS (SELECT 1 FROM alert_recipients r WHERE r.alert_id = t.id AND r.user_id = ",
        user_id.to_owned(),
        ")",
    )
}

#[derive(sqlx::FromRow)]
struct RecipientRow {
    alert_id: String,
    user_id: String,
}

impl Store {
    pub async fn create_alert(&self, a: &Alert) -> StoreResult<Alert> {
        self.check_reference(
            "mailbox_id",
            "mailboxes",
            &a.org_id,
            a.mailbox_id.as_deref(),
            "",
            "a mailbox",
        )
        .await?;
        self.check_reference(
            "profile_id",
            "email_server_profiles",
            &a.org_id,
            a.profile_id.as_deref(),
            "",
            "an email server profile",
        )
        .await?;
        for (i, user) in a.recipient_ids.iter().enumerate() {
            self.check_reference(
                &format!("recipient_ids[{i}]"),
                "users",
                &a.org_id,
                Some(user),
                "",
                "a user",
            )
            .await?;
        }
        // Every alert written is a new one (the engine decides whether to raise
        // one at all, e.g. at most one profile alert an hour): each is raised.
        let events = [NewEvent::alert(a, now())];
        let postgres = self.backend() == Backend::Postgres;
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO alerts (id, org_id, scope, severity, mailbox_id, profile_id, item_ref, message, fix, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&a.id).bind(&a.org_id).bind(a.scope).bind(a.severity).bind(&a.mailbox_id).bind(&a.profile_id)
            .bind(&a.item_ref).bind(&a.message).bind(&a.fix).bind(a.created_at)
            .execute(&mut *tx).await?;
            let mut recipients = a.recipient_ids.clone();
            recipients.sort();
            recipients.dedup();
            for user in &recipients {
                sqlx::query("INSERT INTO alert_recipients (alert_id, user_id) VALUES ($1, $2)")
                    .bind(&a.id).bind(user).execute(&mut *tx).await?;
            }
            emit_events!(&mut *tx, &events, postgres);
            tx.commit().await?;
        });
        self.get_alert(&a.org_id, &a.id, &[]).await
    }

    pub async fn list_alerts(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Alert>> {
        let mut page: Page<Alert> = self
            .list_records(SELECT, Some(org_id), filters, page)
            .await?;
        self.attach_recipients(&mut page.items).await?;
        Ok(page)
    }

    pub async fn get_alert(
        &self,
        org_id: &str,
        id: &str,
        filters: &[Filter],
    ) -> StoreResult<Alert> {
        let mut alert: Alert = self.get_record(SELECT, Some(org_id), id, filters).await?;
        self.attach_recipients(std::slice::from_mut(&mut alert))
            .await?;
        Ok(alert)
    }

    /// How many profile alerts a profile got since `since` (to raise one at most
    /// once in a window).
    pub async fn profile_alerts_since(
        &self,
        org_id: &str,
        profile_id: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<i64> {
        Ok(with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM alerts WHERE org_id = $1 AND scope = 'profile' AND profile_id = $2 AND created_at >= $3",
        ).bind(org_id).bind(profile_id).bind(since).fetch_one(p).await?))
    }

    /// Dismisses an alert.
    pub async fn delete_alert(&self, org_id: &str, id: &str) -> StoreResult<()> {
        self.delete_record("alerts", org_id, id).await
    }

    async fn attach_recipients(&self, alerts: &mut [Alert]) -> StoreResult<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let rows: Vec<RecipientRow> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new("SELECT alert_id, user_id FROM alert_recipients WHERE alert_id IN (");
            let mut ids = qb.separated(", ");
            for a in alerts.iter() {
                ids.push_bind(a.id.clone());
            }
            qb.push(") ORDER BY alert_id, user_id");
            qb.build_query_as::<RecipientRow>().fetch_all(p).await?
        });
        for row in rows {
            if let Some(a) = alerts.iter_mut().find(|a| a.id == row.alert_id) {
                a.recipient_ids.push(row.user_id);
            }
        }
        Ok(())
    }
}
