//! The decision trail: what the engine decided for every message it looked at,
//! readable per mailbox and per email.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Filter, Page, PageRequest, Store, StoreResult, with_db};

/// One message the engine looked at, and what it decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Decision {
    pub id: String,
    pub org_id: String,
    pub mailbox_id: String,
    pub folder: String,
    pub uidvalidity: i64,
    pub uid: i64,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub from_address: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    /// `tracked`, `linked`, `skipped`, `retrying` or `failed`.
    pub outcome: String,
    /// The rule that decided, e.g. `reply_to_tracked_email` or `not_a_reply`.
    pub rule: String,
    /// Why, in a sentence.
    pub reason: String,
    pub correlation_method: Option<String>,
    pub correlated_email_id: Option<String>,
    pub email_id: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const SELECT: &str =
    "SELECT t.id, t.org_id, t.mailbox_id, t.folder, t.uidvalidity, t.uid, t.message_id, t.subject,
        t.from_address, t.received_at, t.outcome, t.rule, t.reason, t.correlation_method,
        t.correlated_email_id, t.email_id, t.attempts, t.error, t.created_at, t.updated_at
    FROM message_decisions t";

impl crate::records::Record for Decision {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Store {
    /// The latest decision of each of these emails, by email id, in one query.
    pub async fn decisions_for_emails(
        &self,
        org_id: &str,
        email_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Decision>> {
        let mut out = std::collections::HashMap::new();
        if email_ids.is_empty() {
            return Ok(out);
        }
        let rows: Vec<Decision> = with_db!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(SELECT);
            qb.push(" WHERE t.org_id = ").push_bind(org_id.to_owned()).push(" AND t.email_id IN (");
            let mut sep = qb.separated(", ");
            for id in email_ids {
                sep.push_bind(id.clone());
            }
            qb.push(") ORDER BY t.id");
            qb.build_query_as::<Decision>().fetch_all(p).await?
        });
        for d in rows {
            if let Some(e) = d.email_id.clone() {
                out.insert(e, d);
            }
        }
        Ok(out)
    }

    pub async fn list_decisions(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Decision>> {
        self.list_records(SELECT, Some(org_id), filters, page).await
    }
}
