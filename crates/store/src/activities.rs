//! Activities: emails (with their parties), appointments and tasks.

use mailbridge_domain::RegardingType;
use mailbridge_domain::activity::{Appointment, Email, EmailParty, Task};
use sqlx::QueryBuilder;

use crate::{Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

pub(crate) const SELECT_EMAILS: &str =
    "SELECT t.id, t.org_id, t.subject, t.body, t.direction, t.status, t.message_id,
        t.in_reply_to, t.tracking_token, t.correlation_method, t.regarding_type, t.regarding_id,
        t.mailbox_id, t.status_reason, t.sent_at, t.received_at, t.created_at, t.updated_at
    FROM emails t";

const SELECT_APPOINTMENTS: &str =
    "SELECT t.id, t.org_id, t.subject, t.location, t.body, t.start, t.\"end\",
        t.all_day, t.status, t.owner_id, t.organizer, t.regarding_type, t.regarding_id,
        t.created_at, t.updated_at
    FROM appointments t";

const SELECT_TASKS: &str = "SELECT t.id, t.org_id, t.subject, t.description, t.start, t.due, t.completed_at,
        t.priority, t.status, t.owner_id, t.regarding_type, t.regarding_id, t.created_at, t.updated_at
    FROM tasks t";

/// Emails a mailbox holds: sent from it, or seen in it (one email can be in many).
pub fn emails_of_mailbox(mailbox_id: &str) -> Filter {
    Filter::AroundTwice(
        "(t.mailbox_id = ",
        mailbox_id.to_owned(),
        " OR EXISTS (SELECT 1 FROM email_mailboxes em WHERE em.email_id = t.id AND em.mailbox_id = ",
        "))",
    )
}

#[derive(sqlx::FromRow)]
struct PartyRow {
    email_id: String,
    #[sqlx(flatten)]
    party: EmailParty,
}

impl Store {
    /// Checks that a regarding record exists in the organization.
    async fn check_regarding(
        &self,
        org_id: &str,
        kind: Option<RegardingType>,
        id: Option<&str>,
    ) -> StoreResult<()> {
        let (Some(kind), Some(id)) = (kind, id) else {
            return Ok(());
        };
        let (table, extra) = match kind {
            RegardingType::Contact => ("parties", "AND kind = 'contact'"),
            RegardingType::Account => ("parties", "AND kind = 'account'"),
            RegardingType::Lead => ("parties", "AND kind = 'lead'"),
            RegardingType::Email => ("emails", ""),
        };
        let what = format!("a {kind}");
        self.check_reference("regarding_id", table, org_id, Some(id), extra, &what)
            .await
    }

    /// Checks that a regarding record exists (for callers outside this module).
    pub async fn check_regarding_exists(
        &self,
        org_id: &str,
        kind: RegardingType,
        id: &str,
    ) -> StoreResult<()> {
        self.check_regarding(org_id, Some(kind), Some(id)).await
    }

    async fn check_email_references(&self, e: &Email) -> StoreResult<()> {
        self.check_reference(
            "mailbox_id",
            "mailboxes",
            &e.org_id,
            e.mailbox_id.as_deref(),
            "",
            "a mailbox",
        )
        .await?;
        self.check_regarding(&e.org_id, e.regarding_type, e.regarding_id.as_deref())
            .await
    }

    fn message_id_taken(e: sqlx::Error, email: &Email) -> StoreError {
        if StoreError::is_unique_violation(&e) {
            StoreError::conflict(
                Some("message_id"),
                format!(
                    "an email with Message-ID <{}> already exists in this organization; one Message-ID is one email",
                    email.message_id.as_deref().unwrap_or_default()
                ),
            )
        } else {
            e.into()
        }
    }

    /// Creates an email with its parties in one transaction.
    pub async fn create_email(&self, e: &Email) -> StoreResult<Email> {
        self.check_email_references(e).await?;
        let t = now();
        let result: Result<(), sqlx::Error> = with_db!(&self.db, p => async {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO emails (id, org_id, subject, body, direction, status, message_id, in_reply_to,
                    tracking_token, correlation_method, regarding_type, regarding_id, mailbox_id,
                    status_reason, sent_at, received_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            )
            .bind(&e.id).bind(&e.org_id).bind(&e.subject).bind(&e.body).bind(e.direction).bind(e.status)
            .bind(&e.message_id).bind(&e.in_reply_to).bind(&e.tracking_token).bind(e.correlation_method)
            .bind(e.regarding_type).bind(&e.regarding_id).bind(&e.mailbox_id).bind(&e.status_reason)
            .bind(e.sent_at).bind(e.received_at).bind(t).bind(t)
            .execute(&mut *tx).await?;
            for (i, party) in e.parties.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO email_parties (email_id, position, role, address, party_type, party_id)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&e.id).bind(i as i64).bind(party.role).bind(&party.address).bind(party.party_type).bind(&party.party_id)
                .execute(&mut *tx).await?;
            }
            tx.commit().await
        }.await);
        result.map_err(|err| Self::message_id_taken(err, e))?;
        self.get_email(&e.org_id, &e.id).await
    }

    /// Replaces an email's fields and parties.
    pub async fn update_email(&self, e: &Email) -> StoreResult<Email> {
        self.check_email_references(e).await?;
        let result: Result<u64, sqlx::Error> = with_db!(&self.db, p => async {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE emails SET subject = $3, body = $4, direction = $5, status = $6, message_id = $7,
                    in_reply_to = $8, tracking_token = $9, correlation_method = $10, regarding_type = $11,
                    regarding_id = $12, mailbox_id = $13, status_reason = $14, sent_at = $15,
                    received_at = $16, updated_at = $17
                 WHERE org_id = $1 AND id = $2",
            )
            .bind(&e.org_id).bind(&e.id).bind(&e.subject).bind(&e.body).bind(e.direction).bind(e.status)
            .bind(&e.message_id).bind(&e.in_reply_to).bind(&e.tracking_token).bind(e.correlation_method)
            .bind(e.regarding_type).bind(&e.regarding_id).bind(&e.mailbox_id).bind(&e.status_reason)
            .bind(e.sent_at).bind(e.received_at).bind(now())
            .execute(&mut *tx).await?.rows_affected();
            sqlx::query("DELETE FROM email_parties WHERE email_id = $1").bind(&e.id).execute(&mut *tx).await?;
            for (i, party) in e.parties.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO email_parties (email_id, position, role, address, party_type, party_id)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&e.id).bind(i as i64).bind(party.role).bind(&party.address).bind(party.party_type).bind(&party.party_id)
                .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(n)
        }.await);
        if result.map_err(|err| Self::message_id_taken(err, e))? == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_email(&e.org_id, &e.id).await
    }

    pub async fn list_emails(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Email>> {
        let mut page: Page<Email> = self
            .list_records(SELECT_EMAILS, Some(org_id), filters, page)
            .await?;
        self.attach_parties(&mut page.items).await?;
        Ok(page)
    }

    pub async fn get_email(&self, org_id: &str, id: &str) -> StoreResult<Email> {
        let mut email: Email = self
            .get_record(SELECT_EMAILS, Some(org_id), id, &[])
            .await?;
        self.attach_parties(std::slice::from_mut(&mut email))
            .await?;
        Ok(email)
    }

    pub async fn delete_email(&self, org_id: &str, id: &str) -> StoreResult<()> {
        self.delete_record("emails", org_id, id).await
    }

    /// Loads the parties of a page of emails with one query.
    pub(crate) async fn attach_parties(&self, emails: &mut [Email]) -> StoreResult<()> {
        if emails.is_empty() {
            return Ok(());
        }
        let rows: Vec<PartyRow> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(
                "SELECT email_id, role, address, party_type, party_id FROM email_parties WHERE email_id IN (",
            );
            let mut ids = qb.separated(", ");
            for e in emails.iter() {
                ids.push_bind(e.id.clone());
            }
            qb.push(") ORDER BY email_id, position");
            qb.build_query_as::<PartyRow>().fetch_all(p).await?
        });
        for row in rows {
            if let Some(e) = emails.iter_mut().find(|e| e.id == row.email_id) {
                e.parties.push(row.party);
            }
        }
        Ok(())
    }

    pub async fn create_appointment(&self, a: &Appointment) -> StoreResult<Appointment> {
        self.check_reference(
            "owner_id",
            "users",
            &a.org_id,
            a.owner_id.as_deref(),
            "",
            "a user",
        )
        .await?;
        self.check_regarding(&a.org_id, a.regarding_type, a.regarding_id.as_deref())
            .await?;
        let t = now();
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO appointments (id, org_id, subject, location, body, start, \"end\", all_day, status,
                owner_id, organizer, regarding_type, regarding_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&a.id).bind(&a.org_id).bind(&a.subject).bind(&a.location).bind(&a.body).bind(a.start)
        .bind(a.end).bind(a.all_day).bind(a.status).bind(&a.owner_id).bind(&a.organizer)
        .bind(a.regarding_type).bind(&a.regarding_id).bind(t).bind(t)
        .execute(p).await?.rows_affected());
        self.get_appointment(&a.org_id, &a.id).await
    }

    pub async fn update_appointment(&self, a: &Appointment) -> StoreResult<Appointment> {
        self.check_reference(
            "owner_id",
            "users",
            &a.org_id,
            a.owner_id.as_deref(),
            "",
            "a user",
        )
        .await?;
        self.check_regarding(&a.org_id, a.regarding_type, a.regarding_id.as_deref())
            .await?;
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE appointments SET subject = $3, location = $4, body = $5, start = $6, \"end\" = $7,
                all_day = $8, status = $9, owner_id = $10, organizer = $11, regarding_type = $12,
                regarding_id = $13, updated_at = $14
             WHERE org_id = $1 AND id = $2",
        )
        .bind(&a.org_id).bind(&a.id).bind(&a.subject).bind(&a.location).bind(&a.body).bind(a.start)
        .bind(a.end).bind(a.all_day).bind(a.status).bind(&a.owner_id).bind(&a.organizer)
        .bind(a.regarding_type).bind(&a.regarding_id).bind(now())
        .execute(p).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_appointment(&a.org_id, &a.id).await
    }

    pub async fn list_appointments(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Appointment>> {
        self.list_records(SELECT_APPOINTMENTS, Some(org_id), filters, page)
            .await
    }

    pub async fn get_appointment(&self, org_id: &str, id: &str) -> StoreResult<Appointment> {
        self.get_record(SELECT_APPOINTMENTS, Some(org_id), id, &[])
            .await
    }

    pub async fn delete_appointment(&self, org_id: &str, id: &str) -> StoreResult<()> {
        self.delete_record("appointments", org_id, id).await
    }

    pub async fn create_task(&self, k: &Task) -> StoreResult<Task> {
        self.check_reference(
            "owner_id",
            "users",
            &k.org_id,
            k.owner_id.as_deref(),
            "",
            "a user",
        )
        .await?;
        self.check_regarding(&k.org_id, k.regarding_type, k.regarding_id.as_deref())
            .await?;
        let t = now();
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO tasks (id, org_id, subject, description, start, due, completed_at, priority, status,
                owner_id, regarding_type, regarding_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&k.id).bind(&k.org_id).bind(&k.subject).bind(&k.description).bind(k.start).bind(k.due)
        .bind(k.completed_at).bind(k.priority).bind(k.status).bind(&k.owner_id).bind(k.regarding_type)
        .bind(&k.regarding_id).bind(t).bind(t)
        .execute(p).await?.rows_affected());
        self.get_task(&k.org_id, &k.id).await
    }

    pub async fn update_task(&self, k: &Task) -> StoreResult<Task> {
        self.check_reference(
            "owner_id",
            "users",
            &k.org_id,
            k.owner_id.as_deref(),
            "",
            "a user",
        )
        .await?;
        self.check_regarding(&k.org_id, k.regarding_type, k.regarding_id.as_deref())
            .await?;
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE tasks SET subject = $3, description = $4, start = $5, due = $6, completed_at = $7,
                priority = $8, status = $9, owner_id = $10, regarding_type = $11, regarding_id = $12,
                updated_at = $13
             WHERE org_id = $1 AND id = $2",
        )
        .bind(&k.org_id).bind(&k.id).bind(&k.subject).bind(&k.description).bind(k.start).bind(k.due)
        .bind(k.completed_at).bind(k.priority).bind(k.status).bind(&k.owner_id).bind(k.regarding_type)
        .bind(&k.regarding_id).bind(now())
        .execute(p).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_task(&k.org_id, &k.id).await
    }

    pub async fn list_tasks(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Task>> {
        self.list_records(SELECT_TASKS, Some(org_id), filters, page)
            .await
    }

    pub async fn get_task(&self, org_id: &str, id: &str) -> StoreResult<Task> {
        self.get_record(SELECT_TASKS, Some(org_id), id, &[]).await
    }

    pub async fn delete_task(&self, org_id: &str, id: &str) -> StoreResult<()> {
        self.delete_record("tasks", org_id, id).await
    }
}
