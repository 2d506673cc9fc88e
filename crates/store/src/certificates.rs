//! Certificates of an organization for server-to-server authentication. The
//! public certificate is kept as PEM and can be downloaded; the private key is
//! sealed with the store key and leaves the store only through
//! [`Store::certificate_private_key`], for a connector.

use chrono::{DateTime, Utc};
use mailbridge_domain::certificate::{AlertsRaised, Certificate};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::secret::Secret;
use mailbridge_domain::{CertificateExpiryAlert, CertificateSource};

use crate::{Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

const COLUMNS: &str = "t.id, t.org_id, t.name, t.subject, t.thumbprint, t.x5t_s256, t.not_before,
        t.not_after, t.key_bits, t.source, t.created_at";
const SELECT: &str =
    "SELECT t.id, t.org_id, t.name, t.subject, t.thumbprint, t.x5t_s256, t.not_before,
        t.not_after, t.key_bits, t.source, t.created_at
    FROM certificates t";

/// A certificate to store: its public facts, its PEM and its private key.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub name: String,
    pub subject: String,
    pub thumbprint: String,
    pub x5t_s256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub key_bits: i64,
    pub source: CertificateSource,
    pub certificate_pem: String,
    /// PKCS#8 PEM.
    pub private_key_pem: Secret,
}

/// A certificate near or past its expiry, with the alerts raised for it so far.
#[derive(Debug, Clone)]
pub struct ExpiringCertificate {
    pub certificate: Certificate,
    pub raised: AlertsRaised,
}

#[derive(sqlx::FromRow)]
struct ExpiringRow {
    #[sqlx(flatten)]
    certificate: Certificate,
    alerted_30_days_at: Option<DateTime<Utc>>,
    alerted_7_days_at: Option<DateTime<Utc>>,
    alerted_expired_at: Option<DateTime<Utc>>,
}

fn key_context(id: &str) -> String {
    format!("certificates.private_key_enc:{id}")
}

fn alert_column(stage: CertificateExpiryAlert) -> &'static str {
    match stage {
        CertificateExpiryAlert::Within30Days => "alerted_30_days_at",
        CertificateExpiryAlert::Within7Days => "alerted_7_days_at",
        CertificateExpiryAlert::Expired => "alerted_expired_at",
    }
}

impl Store {
    /// Stores a certificate with its sealed private key.
    pub async fn create_certificate(
        &self,
        org_id: &str,
        c: &NewCertificate,
    ) -> StoreResult<Certificate> {
        let id = new_id();
        let sealed = self
            .cipher
            .seal(&key_context(&id), c.private_key_pem.expose());
        let result = with_db!(&self.db, p => sqlx::query(
            "INSERT INTO certificates (id, org_id, name, subject, thumbprint, x5t_s256, not_before, not_after,
                key_bits, source, certificate_pem, private_key_enc, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&id).bind(org_id).bind(&c.name).bind(&c.subject).bind(&c.thumbprint).bind(&c.x5t_s256)
        .bind(c.not_before).bind(c.not_after).bind(c.key_bits).bind(c.source).bind(&c.certificate_pem)
        .bind(&sealed).bind(now())
        .execute(p).await.map(|_| ()));
        if let Err(e) = result {
            if !StoreError::is_unique_violation(&e) {
                return Err(e.into());
            }
            return Err(self.duplicate(org_id, c).await);
        }
        self.get_certificate(org_id, &id).await
    }

    /// Which unique rule a new certificate broke, said plainly.
    async fn duplicate(&self, org_id: &str, c: &NewCertificate) -> StoreError {
        let same: Result<Option<String>, sqlx::Error> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT name FROM certificates WHERE org_id = $1 AND thumbprint = $2",
        )
        .bind(org_id).bind(&c.thumbprint).fetch_optional(p).await);
        match same {
            Ok(Some(name)) => StoreError::conflict(
                Some("certificate"),
                format!(
                    "this certificate (thumbprint {}) is already stored as `{name}`",
                    c.thumbprint
                ),
            ),
            Ok(None) => StoreError::conflict(
                Some("name"),
                format!(
                    "a certificate named `{}` already exists in this organization; choose another name",
                    c.name
                ),
            ),
            Err(e) => e.into(),
        }
    }

    pub async fn list_certificates(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Certificate>> {
        self.list_records(SELECT, Some(org_id), &[], page).await
    }

    pub async fn get_certificate(&self, org_id: &str, id: &str) -> StoreResult<Certificate> {
        self.get_record(SELECT, Some(org_id), id, &[]).await
    }

    /// The public certificate as PEM, for download and for the connectors.
    pub async fn certificate_pem(&self, org_id: &str, id: &str) -> StoreResult<String> {
        let pem: Option<String> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT certificate_pem FROM certificates WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id).bind(id).fetch_optional(p).await?);
        pem.ok_or(StoreError::NotFound)
    }

    /// The private key (PKCS#8 PEM) in clear, for a connector. Never for the API.
    pub async fn certificate_private_key(&self, org_id: &str, id: &str) -> StoreResult<Secret> {
        let sealed: Option<String> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT private_key_enc FROM certificates WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id).bind(id).fetch_optional(p).await?);
        let sealed = sealed.ok_or(StoreError::NotFound)?;
        Ok(Secret::new(self.cipher.open(&key_context(id), &sealed)?))
    }

    /// The organization's most recently added certificate that is valid at `at`:
    /// the one a profile that names none uses.
    pub async fn newest_valid_certificate(
        &self,
        org_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Certificate>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE t.org_id = $1 AND t.not_before <= $2 AND t.not_after > $2
             ORDER BY t.created_at DESC, t.id DESC LIMIT 1"
        ));
        Ok(
            with_db!(&self.db, p => sqlx::query_as(sql).bind(org_id).bind(at).fetch_optional(p).await?),
        )
    }

    /// Deletes a certificate that no profile names.
    pub async fn delete_certificate(&self, org_id: &str, id: &str) -> StoreResult<()> {
        let users: Vec<String> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT name FROM email_server_profiles WHERE org_id = $1 AND certificate_id = $2 ORDER BY name",
        )
        .bind(org_id).bind(id).fetch_all(p).await?);
        if !users.is_empty() {
            return Err(StoreError::conflict(
                None,
                format!(
                    "the certificate is selected on the profile{} {}; select another certificate there first",
                    if users.len() == 1 { "" } else { "s" },
                    users
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        self.delete_record("certificates", org_id, id).await
    }

    /// Every organization's certificates that expire before `horizon` and still
    /// owe an alert, soonest first.
    pub async fn certificates_for_expiry_check(
        &self,
        horizon: DateTime<Utc>,
    ) -> StoreResult<Vec<ExpiringCertificate>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, t.alerted_30_days_at, t.alerted_7_days_at, t.alerted_expired_at
             FROM certificates t
             WHERE t.not_after <= $1 AND t.alerted_expired_at IS NULL
             ORDER BY t.not_after, t.id"
        ));
        let rows: Vec<ExpiringRow> =
            with_db!(&self.db, p => sqlx::query_as(sql).bind(horizon).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|r| ExpiringCertificate {
                certificate: r.certificate,
                raised: AlertsRaised {
                    within_30_days: r.alerted_30_days_at.is_some(),
                    within_7_days: r.alerted_7_days_at.is_some(),
                    expired: r.alerted_expired_at.is_some(),
                },
            })
            .collect())
    }

    /// Records that an expiry alert is being raised; false when another node
    /// recorded it first (then it raises it, not this one).
    pub async fn claim_certificate_alert(
        &self,
        org_id: &str,
        id: &str,
        stage: CertificateExpiryAlert,
    ) -> StoreResult<bool> {
        let column = alert_column(stage);
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE certificates SET {column} = $3 WHERE org_id = $1 AND id = $2 AND {column} IS NULL"
        ));
        let n = with_db!(&self.db, p => sqlx::query(sql).bind(org_id).bind(id).bind(now()).execute(p).await?.rows_affected());
        Ok(n == 1)
    }
}
