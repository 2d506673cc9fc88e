//! The ACT decision trail: every action the planner chose for an item of a mailbox,
//! why, and how its execution went; newest first for the API.

use chrono::{DateTime, Utc};
use mailbridge_domain::act::model::ActKind;
use mailbridge_domain::ids::new_id;
use serde::Serialize;

use mailbridge_domain::WebhookEventType;
use mailbridge_domain::webhook::payload::ActItemEvent;

use crate::webhooks::events::{NewEvent, emit_events};
use crate::{Filter, Page, PageRequest, Store, StoreResult, now, with_db};

/// One decision as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ActDecision {
    pub id: String,
    pub org_id: String,
    pub mailbox_id: String,
    /// `appointment`, `task` or `contact`.
    pub kind: String,
    pub record_id: Option<String>,
    pub server_href: Option<String>,
    /// The action's label, e.g. `update_server` or `conflict(merge, organizer=store)`.
    pub action: String,
    /// Why, in a sentence (the planner's reason).
    pub reason: String,
    /// `done`, `skipped` (a lost race: planned again on the next run) or `failed`.
    pub outcome: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A decision to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActDecision {
    pub kind: ActKind,
    pub record_id: Option<String>,
    pub server_href: Option<String>,
    pub action: String,
    pub reason: String,
    pub outcome: String,
    pub error: Option<String>,
}

const SELECT: &str = "SELECT t.id, t.org_id, t.mailbox_id, t.kind, t.record_id, t.server_href,
        t.action, t.reason, t.outcome, t.error, t.created_at
    FROM act_decisions t";

impl crate::records::Record for ActDecision {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Store {
    /// Appends a run's decisions for a mailbox, in order, in one transaction, with
    /// an `act.item_changed` webhook event for each change applied (outcome
    /// `done`, action other than `nothing`).
    pub async fn append_act_decisions(
        &self,
        org_id: &str,
        mailbox_id: &str,
        decisions: &[NewActDecision],
    ) -> StoreResult<()> {
        if decisions.is_empty() {
            return Ok(());
        }
        let t = now();
        let postgres = self.backend() == crate::Backend::Postgres;
        // Each change the run applied is an `act.item_changed` event, written in
        // this transaction with its line of the trail.
        let events: Vec<NewEvent> = decisions
            .iter()
            .filter(|d| d.outcome == "done" && d.action != "nothing")
            .map(|d| {
                NewEvent::new(
                    org_id,
                    WebhookEventType::ActItemChanged.as_str(),
                    Some(mailbox_id),
                    &ActItemEvent {
                        org_id: org_id.to_owned(),
                        mailbox_id: mailbox_id.to_owned(),
                        kind: d.kind.as_str().to_owned(),
                        record_id: d.record_id.clone(),
                        server_id: d.server_href.clone(),
                        action: d.action.clone(),
                        reason: d.reason.clone(),
                    },
                    t,
                )
            })
            .collect();
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            for d in decisions {
                // Ids are UUID v7: in order within the run, so newest first reads back
                // the last decision first.
                sqlx::query(
                    "INSERT INTO act_decisions (id, org_id, mailbox_id, kind, record_id, server_href,
                        action, reason, outcome, error, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(new_id()).bind(org_id).bind(mailbox_id).bind(d.kind.as_str()).bind(&d.record_id)
                .bind(&d.server_href).bind(&d.action).bind(&d.reason).bind(&d.outcome).bind(&d.error).bind(t)
                .execute(&mut *tx).await?;
            }
            emit_events!(&mut *tx, &events, postgres);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A page of the trail, newest first; the cursor is the last id of the previous
    /// page. `filters` narrow it (the API passes the mailbox).
    pub async fn list_act_decisions(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<ActDecision>> {
        self.list_records_newest_first(SELECT, org_id, filters, page)
            .await
    }
}
