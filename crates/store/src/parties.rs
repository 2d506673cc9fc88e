//! Contacts, accounts and leads: the email-enabled records that addresses resolve to.

use mailbridge_domain::party::PartyRecord;

use crate::{Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

const SELECT: &str = "SELECT t.id, t.org_id, t.name, t.email, t.phone, t.company, t.account_id,
        t.active, t.created_at, t.updated_at
    FROM parties t";

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

    pub async fn create_party(&self, kind: PartyKind, p: &PartyRecord) -> StoreResult<PartyRecord> {
        self.check_account(p, kind).await?;
        let t = now();
        with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO parties (id, org_id, kind, name, email, phone, company, account_id, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&p.id).bind(&p.org_id).bind(kind.as_str()).bind(&p.name).bind(&p.email).bind(&p.phone)
        .bind(&p.company).bind(&p.account_id).bind(p.active).bind(t).bind(t)
        .execute(pool).await?.rows_affected());
        self.get_party(kind, &p.org_id, &p.id).await
    }

    pub async fn list_parties(
        &self,
        kind: PartyKind,
        org_id: &str,
        mut filters: Vec<Filter>,
        page: &PageRequest,
    ) -> StoreResult<Page<PartyRecord>> {
        filters.push(Filter::Eq("t.kind", kind.as_str().to_owned()));
        self.list_records(SELECT, Some(org_id), &filters, page)
            .await
    }

    pub async fn get_party(
        &self,
        kind: PartyKind,
        org_id: &str,
        id: &str,
    ) -> StoreResult<PartyRecord> {
        self.get_record(
            SELECT,
            Some(org_id),
            id,
            &[Filter::Eq("t.kind", kind.as_str().to_owned())],
        )
        .await
    }

    pub async fn update_party(&self, kind: PartyKind, p: &PartyRecord) -> StoreResult<PartyRecord> {
        self.check_account(p, kind).await?;
        let n = with_db!(&self.db, pool => sqlx::query(
            "UPDATE parties SET name = $4, email = $5, phone = $6, company = $7, account_id = $8,
                active = $9, updated_at = $10
             WHERE org_id = $1 AND id = $2 AND kind = $3",
        )
        .bind(&p.org_id).bind(&p.id).bind(kind.as_str()).bind(&p.name).bind(&p.email).bind(&p.phone)
        .bind(&p.company).bind(&p.account_id).bind(p.active).bind(now())
        .execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_party(kind, &p.org_id, &p.id).await
    }

    pub async fn delete_party(&self, kind: PartyKind, org_id: &str, id: &str) -> StoreResult<()> {
        // Checked first so that a contact id under /accounts is a 404, not a delete.
        self.get_party(kind, org_id, id).await?;
        self.delete_record("parties", org_id, id).await
    }
}
