//! API tokens. A token is 32 random bytes shown once; the store keeps only its
//! SHA-256, so a copy of the database does not hold usable tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use mailbridge_domain::Role;
use mailbridge_domain::ids::new_id;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Store, StoreError, StoreResult, now, with_db};

/// Every token starts with this, so that secret scanners can recognise one.
pub const TOKEN_PREFIX: &str = "mbt_";

/// A token just issued: the only time its value is known.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedToken {
    pub id: String,
    pub token: String,
}

/// What a presented token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub token_id: String,
    /// `None` for the system administrator.
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub role: Option<Role>,
}

/// A token as listed (never its value).
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct TokenSummary {
    pub id: String,
    pub user_id: Option<String>,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", B64.encode(bytes))
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    org_id: Option<String>,
    user_id: Option<String>,
    role: Option<String>,
    disabled: Option<bool>,
}

impl Store {
    /// Whether any system administrator token exists (bootstrap is done).
    pub async fn has_system_admin_token(&self) -> StoreResult<bool> {
        let n: i64 = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_tokens WHERE org_id IS NULL AND revoked_at IS NULL",
        ).fetch_one(p).await?);
        Ok(n > 0)
    }

    /// Issues a token for the system administrator.
    pub async fn issue_system_admin_token(&self, name: &str) -> StoreResult<IssuedToken> {
        self.insert_token(None, None, name).await
    }

    /// Issues a token for a user of an organization; it acts with the user's role.
    pub async fn issue_user_token(
        &self,
        org_id: &str,
        user_id: &str,
        name: &str,
    ) -> StoreResult<IssuedToken> {
        self.check_reference(
            "user_id",
            "users",
            org_id,
            Some(user_id),
            "AND disabled = FALSE",
            "an enabled user",
        )
        .await?;
        self.insert_token(Some(org_id), Some(user_id), name).await
    }

    pub(crate) async fn insert_token(
        &self,
        org_id: Option<&str>,
        user_id: Option<&str>,
        name: &str,
    ) -> StoreResult<IssuedToken> {
        let issued = IssuedToken {
            id: new_id(),
            token: generate(),
        };
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO api_tokens (id, org_id, user_id, name, token_hash, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&issued.id).bind(org_id).bind(user_id).bind(name).bind(hash(&issued.token)).bind(now())
        .execute(p).await?.rows_affected());
        Ok(issued)
    }

    /// Resolves a presented token; `None` for unknown, revoked or disabled users' tokens.
    pub async fn authenticate(&self, token: &str) -> StoreResult<Option<TokenInfo>> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row: Option<TokenRow> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT t.id, t.org_id, t.user_id, u.role, u.disabled
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL
               AND (t.expires_at IS NULL OR t.expires_at > $2)",
        ).bind(hash(token)).bind(now()).fetch_optional(p).await?);
        let Some(row) = row else { return Ok(None) };
        if row.disabled == Some(true) {
            return Ok(None);
        }
        let role = match row.role {
            Some(r) => Some(
                r.parse::<Role>()
                    .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?,
            ),
            None => None,
        };
        if row.org_id.is_some() && role.is_none() {
            return Ok(None);
        }
        Ok(Some(TokenInfo {
            token_id: row.id,
            org_id: row.org_id,
            user_id: row.user_id,
            role,
        }))
    }

    pub async fn list_tokens(&self, org_id: &str) -> StoreResult<Vec<TokenSummary>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT id, user_id, name, created_at FROM api_tokens
             WHERE org_id = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2) ORDER BY id",
        ).bind(org_id).bind(now()).fetch_all(p).await?))
    }

    pub async fn revoke_token(&self, org_id: &str, id: &str) -> StoreResult<()> {
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE api_tokens SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
        ).bind(org_id).bind(id).bind(now()).execute(p).await?.rows_affected());
        if n == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = super::generate();
        let b = super::generate();
        assert_ne!(a, b);
        assert!(a.starts_with("mbt_") && a.len() == 4 + 43);
        assert_eq!(super::hash("x").len(), 64);
        assert_ne!(super::hash(&a), a);
    }
}
