//! Contacts, accounts and leads: the email-enabled records that addresses resolve to.
//! Every write adds one to a record's `version`; a deleted contact stays as a
//! tombstone (`deleted_at`) for the ACT sync, hidden from the API and from address
//! resolution. Accounts and leads are deleted outright.

use mailbridge_domain::party::PartyRecord;

use crate::act::rows::{LIVE, PartyRow, SELECT_PARTIES as SELECT, page_of, to_json};
use crate::{Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

/// Which of the three kinds a party record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyKind {
    Contact,
    Account,
    Lead,
}

impl PartyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartyKind::Contact => "contact",
            PartyKind::Account => "account",
            PartyKind::Lead => "lead",
        }
    }
}

impl Store {
    async fn check_account(&self, p: &PartyRecord, kind: PartyKind) -> StoreResult<()> {
        if p.account_id.is_some() && kind != PartyKind::Contact {
            return Err(StoreError::invalid(
                "account_id",
                "only contacts belong to an account; remove account_id",
            ));
        }
        self.check_reference(
            "account_id",
            "parties",
            &p.org_id,
            p.account_id.as_deref(),
            "AND kind = 'account'",
            "an account",
        )
        .await
    }

    /// Creates a contact, account or lead at version 1.
    pub async fn create_party(&self, kind: PartyKind, p: &PartyRecord) -> StoreResult<PartyRecord> {
        self.check_account(p, kind).await?;
        self.check_reference(
            "owner_id",
            "users",
            &p.org_id,
            p.owner_id.as_deref(),
            "",
            "a user",
        )
        .await?;
        self.insert_party(kind, p)
            .await
            .map_err(|e| Self::party_uid_taken(e, p))?;
        self.get_party(kind, &p.org_id, &p.id).await
    }

    fn party_uid_taken(e: sqlx::Error, p: &PartyRecord) -> StoreError {
        if StoreError::is_unique_violation(&e) {
            StoreError::conflict(
                Some("ical_uid"),
                format!(
                    "another record of this organization has the UID `{}`; one UID is one record",
                    p.ical_uid.as_deref().unwrap_or_default()
                ),
            )
        } else {
            e.into()
        }
    }

    pub(crate) async fn insert_party(
        &self,
        kind: PartyKind,
        p: &PartyRecord,
    ) -> Result<(), sqlx::Error> {
        let details = to_json(&p.details).map_err(crate::activities::into_sqlx)?;
        let t = now();
        with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO parties (id, org_id, kind, name, email, phone, company, account_id, active,
                created_at, updated_at, owner_id, given_name, family_name, job_title, details_json,
                ical_uid, version, deleted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1, NULL)",
        )
        .bind(&p.id).bind(&p.org_id).bind(kind.as_str()).bind(&p.name).bind(&p.email).bind(&p.phone)
        .bind(&p.company).bind(&p.account_id).bind(p.active).bind(t).bind(t).bind(&p.owner_id)
        .bind(&p.given_name).bind(&p.family_name).bind(&p.job_title).bind(&details).bind(&p.ical_uid)
        .execute(pool).await.map(|_| ()))
    }

    /// Writes a record's fields and adds one to its version; with `expected_version`,
    /// only if the row still has it. Rows written (0 or 1); never a tombstone.
    pub(crate) async fn write_party(
        &self,
        kind: PartyKind,
        p: &PartyRecord,
        expected_version: Option<i64>,
    ) -> Result<u64, sqlx::Error> {
        let details = to_json(&p.details).map_err(crate::activities::into_sqlx)?;
        with_db!(&self.db, pool => sqlx::query(
            "UPDATE parties SET name = $4, email = $5, phone = $6, company = $7, account_id = $8,
                active = $9, updated_at = $10, owner_id = $11, given_name = $12, family_name = $13,
                job_title = $14, details_json = $15, ical_uid = $16, version = version + 1
             WHERE org_id = $1 AND id = $2 AND kind = $3 AND deleted_at IS NULL
                AND ($17 IS NULL OR version = $17)",
        )
        .bind(&p.org_id).bind(&p.id).bind(kind.as_str()).bind(&p.name).bind(&p.email).bind(&p.phone)
        .bind(&p.company).bind(&p.account_id).bind(p.active).bind(now()).bind(&p.owner_id)
        .bind(&p.given_name).bind(&p.family_name).bind(&p.job_title).bind(&details).bind(&p.ical_uid)
        .bind(expected_version)
        .execute(pool).await.map(|r| r.rows_affected()))
    }

    pub async fn list_parties(
        &self,
        kind: PartyKind,
        org_id: &str,
        mut filters: Vec<Filter>,
        page: &PageRequest,
    ) -> StoreResult<Page<PartyRecord>> {
        filters.push(Filter::Eq("t.kind", kind.as_str().to_owned()));
        filters.push(LIVE);
        let page: Page<PartyRow> = self
            .list_records(SELECT, Some(org_id), &filters, page)
            .await?;
        page_of(page, PartyRow::into_model)
    }

    pub async fn get_party(
        &self,
        kind: PartyKind,
        org_id: &str,
        id: &str,
    ) -> StoreResult<PartyRecord> {
        let row: PartyRow = self
            .get_record(
                SELECT,
                Some(org_id),
                id,
                &[Filter::Eq("t.kind", kind.as_str().to_owned()), LIVE],
            )
            .await?;
        row.into_model()
    }

    /// Replaces a record's fields (not a tombstone's) and adds one to its version.
    pub async fn update_party(&self, kind: PartyKind, p: &PartyRecord) -> StoreResult<PartyRecord> {
        self.check_account(p, kind).await?;
        self.check_reference(
            "owner_id",
            "users",
            &p.org_id,
            p.owner_id.as_deref(),
            "",
            "a user",
        )
        .await?;
        let n = self
            .write_party(kind, p, None)
            .await
            .map_err(|e| Self::party_uid_taken(e, p))?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_party(kind, &p.org_id, &p.id).await
    }

    pub async fn delete_party(&self, kind: PartyKind, org_id: &str, id: &str) -> StoreResult<()> {
        // Checked first so that a contact id under /accounts is a 404, not a delete.
        self.get_party(kind, org_id, id).await?;
        if kind == PartyKind::Contact {
            return self
                .tombstone("parties", org_id, id, None)
                .await?
                .then_some(())
                .ok_or(StoreError::NotFound);
        }
        self.delete_record("parties", org_id, id).await
    }
}
