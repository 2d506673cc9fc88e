//! Activities: emails (with their parties), appointments and tasks. Every write of
//! an appointment or task adds one to its `version`; a delete leaves a tombstone
//! (`deleted_at`) that the API's reads hide and the ACT sync still sees.

use mailbridge_domain::RegardingType;
use mailbridge_domain::activity::{Appointment, Email, EmailParty, Task};
use sqlx::QueryBuilder;

use crate::act::rows::{
    AppointmentRow, LIVE, SELECT_APPOINTMENTS, SELECT_TASKS, TaskRow, page_of, to_json,
};
use crate::{Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

pub(crate) const SELECT_EMAILS: &str =
    "SELECT t.id, t.org_id, t.subject, t.body, t.direction, t.status, t.message_id,
        t.in_reply_to, t.tracking_token, t.correlation_method, t.regarding_type, t.regarding_id,
        t.mailbox_id, t.status_reason, t.sent_at, t.received_at, t.created_at, t.updated_at
    FROM emails t";

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
            RegardingType::Contact => ("parties", "AND kind = 'contact' AND deleted_at IS NULL"),
            RegardingType::Account => ("parties", "AND kind = 'account' AND deleted_at IS NULL"),
            RegardingType::Lead => ("parties", "AND kind = 'lead' AND deleted_at IS NULL"),
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

    async fn check_activity_references(
        &self,
        org_id: &str,
        owner_id: Option<&str>,
        regarding_type: Option<RegardingType>,
        regarding_id: Option<&str>,
    ) -> StoreResult<()> {
        self.check_reference("owner_id", "users", org_id, owner_id, "", "a user")
            .await?;
        self.check_regarding(org_id, regarding_type, regarding_id)
            .await
    }

    pub(crate) fn ical_uid_taken(e: sqlx::Error, uid: Option<&str>) -> StoreError {
        if StoreError::is_unique_violation(&e) {
            StoreError::conflict(
                Some("ical_uid"),
                format!(
                    "another record of this organization has the UID `{}`; one UID is one record",
                    uid.unwrap_or_default()
                ),
            )
        } else {
            e.into()
        }
    }

    /// Creates an appointment at version 1.
    pub async fn create_appointment(&self, a: &Appointment) -> StoreResult<Appointment> {
        self.check_activity_references(
            &a.org_id,
            a.owner_id.as_deref(),
            a.regarding_type,
            a.regarding_id.as_deref(),
        )
        .await?;
        self.insert_appointment(a)
            .await
            .map_err(|e| Self::ical_uid_taken(e, a.ical_uid.as_deref()))?;
        self.get_appointment(&a.org_id, &a.id).await
    }

    pub(crate) async fn insert_appointment(&self, a: &Appointment) -> Result<(), sqlx::Error> {
        let json = AppointmentJson::of(a)?;
        let t = now();
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO appointments (id, org_id, subject, location, body, start, \"end\", all_day, status,
                owner_id, organizer, regarding_type, regarding_id, created_at, updated_at, organizer_name,
                ical_uid, time_zone, attendees_json, recurrence_json, exceptions_json, categories_json,
                version, deleted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                $19, $20, $21, $22, 1, NULL)",
        )
        .bind(&a.id).bind(&a.org_id).bind(&a.subject).bind(&a.location).bind(&a.body).bind(a.start)
        .bind(a.end).bind(a.all_day).bind(a.status).bind(&a.owner_id).bind(&a.organizer)
        .bind(a.regarding_type).bind(&a.regarding_id).bind(t).bind(t).bind(&a.organizer_name)
        .bind(&a.ical_uid).bind(&a.time_zone).bind(&json.attendees).bind(&json.recurrence)
        .bind(&json.exceptions).bind(&json.categories)
        .execute(p).await.map(|_| ()))
    }

    /// Writes an appointment's fields and adds one to its version. With
    /// `expected_version`, only if the row still has that version (0 rows: moved).
    /// Returns the number of rows written (0 or 1); a tombstone is never written.
    pub(crate) async fn write_appointment(
        &self,
        a: &Appointment,
        expected_version: Option<i64>,
    ) -> Result<u64, sqlx::Error> {
        let json = AppointmentJson::of(a)?;
        with_db!(&self.db, p => sqlx::query(
            "UPDATE appointments SET subject = $3, location = $4, body = $5, start = $6, \"end\" = $7,
                all_day = $8, status = $9, owner_id = $10, organizer = $11, regarding_type = $12,
                regarding_id = $13, updated_at = $14, organizer_name = $15, ical_uid = $16,
                time_zone = $17, attendees_json = $18, recurrence_json = $19, exceptions_json = $20,
                categories_json = $21, version = version + 1
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL
                AND ($22 IS NULL OR version = $22)",
        )
        .bind(&a.org_id).bind(&a.id).bind(&a.subject).bind(&a.location).bind(&a.body).bind(a.start)
        .bind(a.end).bind(a.all_day).bind(a.status).bind(&a.owner_id).bind(&a.organizer)
        .bind(a.regarding_type).bind(&a.regarding_id).bind(now()).bind(&a.organizer_name)
        .bind(&a.ical_uid).bind(&a.time_zone).bind(&json.attendees).bind(&json.recurrence)
        .bind(&json.exceptions).bind(&json.categories).bind(expected_version)
        .execute(p).await.map(|r| r.rows_affected()))
    }

    /// Replaces an appointment's fields (not a tombstone's) and adds one to its version.
    pub async fn update_appointment(&self, a: &Appointment) -> StoreResult<Appointment> {
        self.check_activity_references(
            &a.org_id,
            a.owner_id.as_deref(),
            a.regarding_type,
            a.regarding_id.as_deref(),
        )
        .await?;
        let n = self
            .write_appointment(a, None)
            .await
            .map_err(|e| Self::ical_uid_taken(e, a.ical_uid.as_deref()))?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_appointment(&a.org_id, &a.id).await
    }

    /// Appointments that are not deleted.
    pub async fn list_appointments(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Appointment>> {
        let mut filters = filters.to_vec();
        filters.push(LIVE);
        let page: Page<AppointmentRow> = self
            .list_records(SELECT_APPOINTMENTS, Some(org_id), &filters, page)
            .await?;
        page_of(page, AppointmentRow::into_model)
    }

    /// An appointment that is not deleted.
    pub async fn get_appointment(&self, org_id: &str, id: &str) -> StoreResult<Appointment> {
        let row: AppointmentRow = self
            .get_record(SELECT_APPOINTMENTS, Some(org_id), id, &[LIVE])
            .await?;
        row.into_model()
    }

    /// Deletes an appointment: it becomes a tombstone, with its version moved on.
    pub async fn delete_appointment(&self, org_id: &str, id: &str) -> StoreResult<()> {
        self.tombstone("appointments", org_id, id, None)
            .await?
            .then_some(())
            .ok_or(StoreError::NotFound)
    }

    /// Creates a task at version 1.
    pub async fn create_task(&self, k: &Task) -> StoreResult<Task> {
        self.check_activity_references(
            &k.org_id,
            k.owner_id.as_deref(),
            k.regarding_type,
            k.regarding_id.as_deref(),
        )
        .await?;
        self.insert_task(k)
            .await
            .map_err(|e| Self::ical_uid_taken(e, k.ical_uid.as_deref()))?;
        self.get_task(&k.org_id, &k.id).await
    }

    pub(crate) async fn insert_task(&self, k: &Task) -> Result<(), sqlx::Error> {
        let categories = to_json(&k.categories).map_err(into_sqlx)?;
        let t = now();
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO tasks (id, org_id, subject, description, start, due, completed_at, priority, status,
                owner_id, regarding_type, regarding_id, created_at, updated_at, ical_uid, percent_complete,
                categories_json, version, deleted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1, NULL)",
        )
        .bind(&k.id).bind(&k.org_id).bind(&k.subject).bind(&k.description).bind(k.start).bind(k.due)
        .bind(k.completed_at).bind(k.priority).bind(k.status).bind(&k.owner_id).bind(k.regarding_type)
        .bind(&k.regarding_id).bind(t).bind(t).bind(&k.ical_uid).bind(k.percent_complete)
        .bind(&categories)
        .execute(p).await.map(|_| ()))
    }

    /// Writes a task's fields and adds one to its version; see [`Self::write_appointment`].
    pub(crate) async fn write_task(
        &self,
        k: &Task,
        expected_version: Option<i64>,
    ) -> Result<u64, sqlx::Error> {
        let categories = to_json(&k.categories).map_err(into_sqlx)?;
        with_db!(&self.db, p => sqlx::query(
            "UPDATE tasks SET subject = $3, description = $4, start = $5, due = $6, completed_at = $7,
                priority = $8, status = $9, owner_id = $10, regarding_type = $11, regarding_id = $12,
                updated_at = $13, ical_uid = $14, percent_complete = $15, categories_json = $16,
                version = version + 1
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL
                AND ($17 IS NULL OR version = $17)",
        )
        .bind(&k.org_id).bind(&k.id).bind(&k.subject).bind(&k.description).bind(k.start).bind(k.due)
        .bind(k.completed_at).bind(k.priority).bind(k.status).bind(&k.owner_id).bind(k.regarding_type)
        .bind(&k.regarding_id).bind(now()).bind(&k.ical_uid).bind(k.percent_complete).bind(&categories)
        .bind(expected_version)
        .execute(p).await.map(|r| r.rows_affected()))
    }

    /// Replaces a task's fields (not a tombstone's) and adds one to its version.
    pub async fn update_task(&self, k: &Task) -> StoreResult<Task> {
        self.check_activity_references(
            &k.org_id,
            k.owner_id.as_deref(),
            k.regarding_type,
            k.regarding_id.as_deref(),
        )
        .await?;
        let n = self
            .write_task(k, None)
            .await
            .map_err(|e| Self::ical_uid_taken(e, k.ical_uid.as_deref()))?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_task(&k.org_id, &k.id).await
    }

    /// Tasks that are not deleted.
    pub async fn list_tasks(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Task>> {
        let mut filters = filters.to_vec();
        filters.push(LIVE);
        let page: Page<TaskRow> = self
            .list_records(SELECT_TASKS, Some(org_id), &filters, page)
            .await?;
        page_of(page, TaskRow::into_model)
    }

    /// A task that is not deleted.
    pub async fn get_task(&self, org_id: &str, id: &str) -> StoreResult<Task> {
        let row: TaskRow = self
            .get_record(SELECT_TASKS, Some(org_id), id, &[LIVE])
            .await?;
        row.into_model()
    }

    /// Deletes a task: it becomes a tombstone, with its version moved on.
    pub async fn delete_task(&self, org_id: &str, id: &str) -> StoreResult<()> {
        self.tombstone("tasks", org_id, id, None)
            .await?
            .then_some(())
            .ok_or(StoreError::NotFound)
    }

    /// Makes a live record of `table` a tombstone and adds one to its version; with
    /// `expected_version`, only if the row still has it. Whether a row was written.
    pub(crate) async fn tombstone(
        &self,
        table: &'static str,
        org_id: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<bool> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET deleted_at = $3, updated_at = $3, version = version + 1
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL AND ($4 IS NULL OR version = $4)"
        ));
        let t = now();
        let n = with_db!(&self.db, p => sqlx::query(sql).bind(org_id).bind(id).bind(t).bind(expected_version)
            .execute(p).await?.rows_affected());
        Ok(n > 0)
    }
}

/// An appointment's JSON columns.
struct AppointmentJson {
    attendees: String,
    recurrence: Option<String>,
    exceptions: String,
    categories: String,
}

impl AppointmentJson {
    fn of(a: &Appointment) -> Result<AppointmentJson, sqlx::Error> {
        Ok(AppointmentJson {
            attendees: to_json(&a.attendees).map_err(into_sqlx)?,
            recurrence: a
                .recurrence
                .as_ref()
                .map(to_json)
                .transpose()
                .map_err(into_sqlx)?,
            exceptions: to_json(&a.exceptions).map_err(into_sqlx)?,
            categories: to_json(&a.categories).map_err(into_sqlx)?,
        })
    }
}

/// A store error met while preparing a query, as the query's error.
pub(crate) fn into_sqlx(e: StoreError) -> sqlx::Error {
    match e {
        StoreError::Database(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}
