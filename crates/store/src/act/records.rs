//! The records a mailbox's ACT run considers, and the sync's version-guarded writes
//! of records.

use mailbridge_domain::act::model::{ActItem, ActKind};
use mailbridge_domain::act::records::{ActRecord, TimeZones};
use mailbridge_domain::act::{RecordFacts, SyncFilters};
use mailbridge_domain::activity::{Appointment, Task};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::party::{ContactDetails, PartyRecord};
use mailbridge_domain::{AppointmentStatus, FieldError, TaskPriority, TaskStatus};

use super::rows::{
    AppointmentRow, PartyRow, SELECT_APPOINTMENTS, SELECT_PARTIES, SELECT_TASKS, TaskRow,
    from_json, to_json,
};
use crate::{PartyKind, Store, StoreError, StoreResult, now, with_db};

/// A record the run must consider, with what the owner's filters need to know.
#[derive(Debug, Clone, PartialEq)]
pub struct ActCandidate {
    pub record: ActRecord,
    pub facts: RecordFacts,
}

/// What a version-guarded write did.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionedWrite {
    /// Written: the record as it now is (a tombstone after a delete), with its new
    /// version, for the link's `record_version` and fingerprint.
    Written(Box<ActRecord>),
    /// Someone changed the record since the plan read it: nothing was written. The
    /// item is planned again on the next run.
    VersionMoved { current: i64 },
    /// No live record: there never was one, or it is already a tombstone.
    Gone,
}

#[derive(sqlx::FromRow)]
struct AppointmentCandidate {
    #[sqlx(flatten)]
    row: AppointmentRow,
    regarding_owned: bool,
    linked: bool,
}

#[derive(sqlx::FromRow)]
struct TaskCandidate {
    #[sqlx(flatten)]
    row: TaskRow,
    regarding_owned: bool,
    linked: bool,
}

#[derive(sqlx::FromRow)]
struct ContactCandidate {
    #[sqlx(flatten)]
    row: PartyRow,
    regarding_owned: bool,
    linked: bool,
}

/// `select` with the candidate columns added and the conditions of a mailbox's
/// candidates: live records the user owns or that regard a record the user owns,
/// and every record (tombstones too) linked in the mailbox. `$1` org, `$2` user,
/// `$3` mailbox, `$4` kind.
fn candidates_sql(select: &str, from: &str, regarding: &str, extra: &str) -> String {
    let linked = "EXISTS (SELECT 1 FROM act_links l
            WHERE l.mailbox_id = $3 AND l.kind = $4 AND l.record_id = t.id)";
    let columns = select.replacen(
        &format!(" FROM {from}"),
        &format!(", {regarding} AS regarding_owned, {linked} AS linked FROM {from}"),
        1,
    );
    format!(
        "{columns} WHERE t.org_id = $1 {extra}
            AND ((t.deleted_at IS NULL AND (t.owner_id = $2 OR {regarding})) OR {linked})
         ORDER BY t.id"
    )
}

/// Appointments and tasks regarding a contact, account or lead the user owns.
const REGARDING_PARTY: &str = "EXISTS (SELECT 1 FROM parties r
        WHERE r.org_id = t.org_id AND r.id = t.regarding_id AND r.owner_id = $2
            AND t.regarding_type IN ('contact', 'account', 'lead'))";

/// Contacts of an account the user owns.
const REGARDING_ACCOUNT: &str = "EXISTS (SELECT 1 FROM parties r
        WHERE r.org_id = t.org_id AND r.id = t.account_id AND r.owner_id = $2)";

fn conversion(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(vec![FieldError::new("item", e.to_string())])
}

impl Store {
    /// Every record of `kind` the ACT run of `user_id`'s mailbox must consider, by
    /// id: the live records the user owns, those regarding a record the user owns
    /// (appointments and tasks: their regarding contact, account or lead; contacts:
    /// their account), and every record linked in the user's mailbox, tombstones and
    /// records now owned by someone else included. Each comes with its
    /// [`RecordFacts`]; the caller applies the user's filters
    /// (`mailbridge_domain::act::matches`). A tombstone that was never linked is
    /// left out: there is nothing on the server to delete.
    pub async fn act_records_for_owner(
        &self,
        org_id: &str,
        user_id: &str,
        kind: ActKind,
    ) -> StoreResult<Vec<ActCandidate>> {
        let mailbox: Option<String> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT id FROM mailboxes WHERE org_id = $1 AND owner_type = 'user' AND owner_id = $2",
        )
        .bind(org_id).bind(user_id).fetch_optional(p).await?);
        let mailbox = mailbox.ok_or(StoreError::NotFound)?;
        let facts = |r: ActRecord, regarding: bool, linked: bool| ActCandidate {
            facts: r.facts(user_id, regarding, linked),
            record: r,
        };
        let out = match kind {
            ActKind::Appointment => {
                let sql = sqlx::AssertSqlSafe(candidates_sql(
                    SELECT_APPOINTMENTS,
                    "appointments t",
                    REGARDING_PARTY,
                    "",
                ));
                let rows: Vec<AppointmentCandidate> = with_db!(&self.db, p => sqlx::query_as(sql)
                    .bind(org_id).bind(user_id).bind(&mailbox).bind(kind.as_str())
                    .fetch_all(p).await?);
                rows.into_iter()
                    .map(|c| {
                        let r = ActRecord::Appointment(c.row.into_model()?);
                        Ok(facts(r, c.regarding_owned, c.linked))
                    })
                    .collect::<StoreResult<Vec<_>>>()?
            }
            ActKind::Task => {
                let sql = sqlx::AssertSqlSafe(candidates_sql(
                    SELECT_TASKS,
                    "tasks t",
                    REGARDING_PARTY,
                    "",
                ));
                let rows: Vec<TaskCandidate> = with_db!(&self.db, p => sqlx::query_as(sql)
                    .bind(org_id).bind(user_id).bind(&mailbox).bind(kind.as_str())
                    .fetch_all(p).await?);
                rows.into_iter()
                    .map(|c| {
                        let r = ActRecord::Task(c.row.into_model()?);
                        Ok(facts(r, c.regarding_owned, c.linked))
                    })
                    .collect::<StoreResult<Vec<_>>>()?
            }
            ActKind::Contact => {
                let sql = sqlx::AssertSqlSafe(candidates_sql(
                    SELECT_PARTIES,
                    "parties t",
                    REGARDING_ACCOUNT,
                    "AND t.kind = 'contact'",
                ));
                let rows: Vec<ContactCandidate> = with_db!(&self.db, p => sqlx::query_as(sql)
                    .bind(org_id).bind(user_id).bind(&mailbox).bind(kind.as_str())
                    .fetch_all(p).await?);
                rows.into_iter()
                    .map(|c| {
                        let r = ActRecord::Contact(c.row.into_model()?);
                        Ok(facts(r, c.regarding_owned, c.linked))
                    })
                    .collect::<StoreResult<Vec<_>>>()?
            }
        };
        Ok(out)
    }

    /// One record of `kind` by id, tombstones included; `None` when there is none.
    pub async fn act_record(
        &self,
        org_id: &str,
        kind: ActKind,
        id: &str,
    ) -> StoreResult<Option<ActRecord>> {
        self.act_record_where(org_id, kind, "t.id = $2", id).await
    }

    /// The live record of `kind` with this iCalendar/vCard UID, if any: how the
    /// executor pairs a server item with a record it claims by UID.
    pub async fn act_record_by_uid(
        &self,
        org_id: &str,
        kind: ActKind,
        uid: &str,
    ) -> StoreResult<Option<ActRecord>> {
        self.act_record_where(
            org_id,
            kind,
            "t.ical_uid = $2 AND t.deleted_at IS NULL",
            uid,
        )
        .await
    }

    async fn act_record_where(
        &self,
        org_id: &str,
        kind: ActKind,
        condition: &str,
        value: &str,
    ) -> StoreResult<Option<ActRecord>> {
        let (select, extra) = match kind {
            ActKind::Appointment => (SELECT_APPOINTMENTS, ""),
            ActKind::Task => (SELECT_TASKS, ""),
            ActKind::Contact => (SELECT_PARTIES, " AND t.kind = 'contact'"),
        };
        let sql = format!("{select} WHERE t.org_id = $1 AND {condition}{extra}");
        let sql = sqlx::AssertSqlSafe(sql);
        Ok(match kind {
            ActKind::Appointment => {
                let row: Option<AppointmentRow> = with_db!(&self.db, p => sqlx::query_as(sql)
                    .bind(org_id).bind(value).fetch_optional(p).await?);
                row.map(|r| r.into_model().map(ActRecord::Appointment))
                    .transpose()?
            }
            ActKind::Task => {
                let row: Option<TaskRow> = with_db!(&self.db, p => sqlx::query_as(sql)
                    .bind(org_id).bind(value).fetch_optional(p).await?);
                row.map(|r| r.into_model().map(ActRecord::Task))
                    .transpose()?
            }
            ActKind::Contact => {
                let row: Option<PartyRow> = with_db!(&self.db, p => sqlx::query_as(sql)
                    .bind(org_id).bind(value).fetch_optional(p).await?);
                row.map(|r| r.into_model().map(ActRecord::Contact))
                    .transpose()?
            }
        })
    }

    /// Writes a server's item onto a live record, only if the record still has
    /// `expected_version` (the version the plan read): the sync's `update_store`.
    /// Record-only fields (owner, regarding, id) stay. Also sets the record's UID
    /// from the item, so writing a record's own item back (`record.to_item()`) after
    /// `create_on_server` stores the UID it was created with.
    ///
    /// Answers [`VersionedWrite::VersionMoved`] when the record changed meanwhile
    /// (nothing is written), [`VersionedWrite::Gone`] when it is a tombstone or
    /// missing; an item the record cannot take (an unknown time zone) is
    /// `StoreError::Invalid` naming `item`.
    pub async fn update_record_if_version(
        &self,
        org_id: &str,
        kind: ActKind,
        id: &str,
        expected_version: i64,
        item: &ActItem,
        tz: &(dyn TimeZones + Sync),
    ) -> StoreResult<VersionedWrite> {
        let Some(mut record) = self.act_record(org_id, kind, id).await? else {
            return Ok(VersionedWrite::Gone);
        };
        if record.is_deleted() {
            return Ok(VersionedWrite::Gone);
        }
        if record.version() != expected_version {
            return Ok(VersionedWrite::VersionMoved {
                current: record.version(),
            });
        }
        record.apply(item, tz).map_err(conversion)?;
        let uid = record.uid();
        let written = match &record {
            ActRecord::Appointment(a) => self.write_appointment(a, Some(expected_version)).await,
            ActRecord::Task(t) => self.write_task(t, Some(expected_version)).await,
            ActRecord::Contact(c) => {
                self.write_party(PartyKind::Contact, c, Some(expected_version))
                    .await
            }
        }
        .map_err(|e| Self::ical_uid_taken(e, Some(&uid)))?;
        self.after_guarded_write(org_id, kind, id, written).await
    }

    /// Makes a live record a tombstone, only if it still has `expected_version`: the
    /// sync's `delete_in_store`.
    pub async fn delete_record_if_version(
        &self,
        org_id: &str,
        kind: ActKind,
        id: &str,
        expected_version: i64,
    ) -> StoreResult<VersionedWrite> {
        let table = match kind {
            ActKind::Appointment => "appointments",
            ActKind::Task => "tasks",
            ActKind::Contact => "parties",
        };
        let written = self
            .tombstone(table, org_id, id, Some(expected_version))
            .await?;
        self.after_guarded_write(org_id, kind, id, u64::from(written))
            .await
    }

    async fn after_guarded_write(
        &self,
        org_id: &str,
        kind: ActKind,
        id: &str,
        written: u64,
    ) -> StoreResult<VersionedWrite> {
        let now = self.act_record(org_id, kind, id).await?;
        Ok(match now {
            Some(r) if written > 0 => VersionedWrite::Written(Box::new(r)),
            Some(r) if !r.is_deleted() => VersionedWrite::VersionMoved {
                current: r.version(),
            },
            _ => VersionedWrite::Gone,
        })
    }

    /// Creates a record from a server's item, owned by `owner_id` (the mailbox's
    /// user), at version 1: the sync's `create_in_store`. A live record with the
    /// item's UID already exists: `StoreError::Conflict` on `ical_uid` (pair the
    /// item with it instead, see [`Self::act_record_by_uid`]).
    pub async fn create_record_from_server(
        &self,
        org_id: &str,
        owner_id: &str,
        item: &ActItem,
        tz: &(dyn TimeZones + Sync),
    ) -> StoreResult<ActRecord> {
        let mut record = blank(org_id, owner_id, item.kind());
        record.apply(item, tz).map_err(conversion)?;
        let uid = record.uid();
        let result = match &record {
            ActRecord::Appointment(a) => self.insert_appointment(a).await,
            ActRecord::Task(t) => self.insert_task(t).await,
            ActRecord::Contact(c) => self.insert_party(PartyKind::Contact, c).await,
        };
        result.map_err(|e| Self::ical_uid_taken(e, Some(&uid)))?;
        self.act_record(org_id, item.kind(), record.id())
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A user's ACT sync filters; the defaults when never set.
    pub async fn sync_filters(&self, org_id: &str, user_id: &str) -> StoreResult<SyncFilters> {
        let stored: Option<Option<String>> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT sync_filters_json FROM users WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id).bind(user_id).fetch_optional(p).await?);
        match stored.ok_or(StoreError::NotFound)? {
            Some(json) => from_json("sync_filters_json", &json),
            None => Ok(SyncFilters::default()),
        }
    }

    /// Replaces a user's ACT sync filters (checked by the caller with
    /// `SyncFilters::validate`).
    pub async fn set_sync_filters(
        &self,
        org_id: &str,
        user_id: &str,
        filters: &SyncFilters,
    ) -> StoreResult<SyncFilters> {
        let json = to_json(filters)?;
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE users SET sync_filters_json = $3, updated_at = $4 WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id).bind(user_id).bind(&json).bind(now()).execute(p).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.sync_filters(org_id, user_id).await
    }
}

/// An empty record of `kind` for the server's item to be applied onto.
fn blank(org_id: &str, owner_id: &str, kind: ActKind) -> ActRecord {
    let t = now();
    let id = new_id();
    let org_id = org_id.to_owned();
    let owner_id = Some(owner_id.to_owned());
    match kind {
        ActKind::Appointment => ActRecord::Appointment(Appointment {
            id,
            org_id,
            subject: String::new(),
            location: None,
            body: None,
            start: t,
            end: t,
            all_day: false,
            status: AppointmentStatus::Scheduled,
            owner_id,
            organizer: None,
            organizer_name: None,
            regarding_type: None,
            regarding_id: None,
            ical_uid: None,
            time_zone: None,
            attendees: vec![],
            recurrence: None,
            exceptions: vec![],
            categories: vec![],
            version: 1,
            deleted_at: None,
            created_at: t,
            updated_at: t,
        }),
        ActKind::Task => ActRecord::Task(Task {
            id,
            org_id,
            subject: String::new(),
            description: None,
            start: None,
            due: None,
            completed_at: None,
            priority: TaskPriority::Normal,
            status: TaskStatus::NotStarted,
            owner_id,
            regarding_type: None,
            regarding_id: None,
            ical_uid: None,
            percent_complete: None,
            categories: vec![],
            version: 1,
            deleted_at: None,
            created_at: t,
            updated_at: t,
        }),
        ActKind::Contact => ActRecord::Contact(PartyRecord {
            id,
            org_id,
            name: String::new(),
            email: None,
            phone: None,
            company: None,
            account_id: None,
            active: true,
            owner_id,
            given_name: None,
            family_name: None,
            job_title: None,
            details: ContactDetails::default(),
            ical_uid: None,
            version: 1,
            deleted_at: None,
            created_at: t,
            updated_at: t,
        }),
    }
}
