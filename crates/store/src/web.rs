//! What the web admin needs from the store: users' sign-in passwords (Argon2id),
//! and sessions. A session acts through an API token of its own, issued at sign-in
//! with the signed-in principal's rights and an expiry, and revoked at sign-out, so
//! that the pages go through exactly the API's authorization and validation. The
//! cookie's value is never stored, only its SHA-256; the session's token is sealed.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use mailbridge_domain::secret::Secret;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::tokens::IssuedToken;
use crate::{Store, StoreError, StoreResult, now, with_db};

/// The shortest password accepted for sign-in.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A session just opened: the cookie value and the form token, known only now.
#[derive(Debug, Clone)]
pub struct NewWebSession {
    pub cookie: String,
    pub csrf_token: String,
}

/// A live session, found by its cookie.
#[derive(Clone)]
pub struct WebSession {
    /// The bearer token the pages act with.
    pub token: String,
    pub token_id: String,
    /// The organization shown; `None` until a system administrator picks one.
    pub org_id: Option<String>,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("token_id", &self.token_id)
            .field("org_id", &self.org_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Who a password belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordOwner {
    pub org_id: String,
    pub user_id: String,
}

/// token_id, token_enc, org_id, csrf_token, expires_at.
type SessionRow = (String, String, Option<String>, String, DateTime<Utc>);

fn random_text() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn session_token_context(token_id: &str) -> String {
    format!("web_sessions.token:{token_id}")
}

/// An Argon2id PHC string for `password` (slow by design: call off the runtime's
/// worker threads for many).
fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2id with default parameters hashes any password")
        .to_string()
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Checks a new password; the message names what would be accepted.
pub fn check_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters (it has {chars})"
        ));
    }
    if chars > 1024 {
        return Err("the password must have at most 1024 characters".into());
    }
    Ok(())
}

impl Store {
    /// Sets (or, with `None`, removes) a user's sign-in password.
    pub async fn set_user_password(
        &self,
        org_id: &str,
        user_id: &str,
        password: Option<&Secret>,
    ) -> StoreResult<()> {
        let phc = match password {
            Some(p) => {
                check_password(p.expose()).map_err(|m| StoreError::invalid("password", m))?;
                let p = p.expose().to_owned();
                Some(
                    tokio::task::spawn_blocking(move || hash_password(&p))
                        .await
                        .expect("password hashing does not panic"),
                )
            }
            None => None,
        };
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE users SET password_hash = $3, updated_at = $4 WHERE org_id = $1 AND id = $2",
        ).bind(org_id).bind(user_id).bind(phc).bind(now()).execute(p).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The enabled user whose email address and password these are. An address
    /// used by users of several organizations signs in nobody (use a token).
    pub async fn verify_user_password(
        &self,
        email: &str,
        password: &Secret,
    ) -> StoreResult<Option<PasswordOwner>> {
        let rows: Vec<(String, String, String)> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT org_id, id, password_hash FROM users
             WHERE lower(email) = lower($1) AND password_hash IS NOT NULL AND disabled = FALSE
             LIMIT 2",
        ).bind(email.trim()).fetch_all(p).await?);
        // No user, or an address several organizations use: still spend the
        // hashing time, so that the answer's timing does not tell which.
        let (org_id, user_id, phc) = match <[_; 1]>::try_from(rows) {
            Ok([row]) => row,
            Err(_) => Default::default(),
        };
        let pw = password.expose().to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            if phc.is_empty() {
                let _ = hash_password(&pw);
                false
            } else {
                password_matches(&pw, &phc)
            }
        })
        .await
        .expect("password checking does not panic");
        Ok(ok.then_some(PasswordOwner { org_id, user_id }))
    }

    /// Issues the API token a web session acts with: the rights of `user_id` in
    /// `org_id`, or of the system administrator when both are `None`.
    pub async fn issue_session_token(
        &self,
        org_id: Option<&str>,
        user_id: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<IssuedToken> {
        let issued = self
            .insert_token(org_id, user_id, "web admin session")
            .await?;
        with_db!(&self.db, p => sqlx::query("UPDATE api_tokens SET expires_at = $2 WHERE id = $1")
            .bind(&issued.id).bind(expires_at).execute(p).await?.rows_affected());
        Ok(issued)
    }

    /// Opens a session acting with `token` (from [`Store::issue_session_token`]).
    pub async fn open_web_session(
        &self,
        token: &IssuedToken,
        org_id: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<NewWebSession> {
        let session = NewWebSession {
            cookie: random_text(),
            csrf_token: random_text(),
        };
        let sealed = self
            .cipher
            .seal(&session_token_context(&token.id), &token.token);
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO web_sessions (id_hash, token_id, token_enc, org_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(sha256_hex(&session.cookie)).bind(&token.id).bind(sealed).bind(org_id)
        .bind(&session.csrf_token).bind(now()).bind(expires_at)
        .execute(p).await?.rows_affected());
        Ok(session)
    }

    /// The live session of a cookie; `None` when unknown, expired or signed out.
    pub async fn web_session(&self, cookie: &str) -> StoreResult<Option<WebSession>> {
        let row: Option<SessionRow> = with_db!(&self.db, p => sqlx::query_as(
                "SELECT s.token_id, s.token_enc, s.org_id, s.csrf_token, s.expires_at
                 FROM web_sessions s JOIN api_tokens t ON t.id = s.token_id
                 WHERE s.id_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL",
            ).bind(sha256_hex(cookie)).bind(now()).fetch_optional(p).await?);
        let Some((token_id, sealed, org_id, csrf_token, expires_at)) = row else {
            return Ok(None);
        };
        let token = self
            .cipher
            .open(&session_token_context(&token_id), &sealed)?;
        Ok(Some(WebSession {
            token,
            token_id,
            org_id,
            csrf_token,
            expires_at,
        }))
    }

    /// Sets the organization a (system administrator's) session shows.
    pub async fn set_web_session_org(&self, cookie: &str, org_id: &str) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query("UPDATE web_sessions SET org_id = $2 WHERE id_hash = $1")
            .bind(sha256_hex(cookie)).bind(org_id).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Signs out: the session is deleted and its token revoked.
    pub async fn close_web_session(&self, cookie: &str) -> StoreResult<()> {
        let hash = sha256_hex(cookie);
        with_db!(&self.db, p => async {
            let mut tx = p.begin().await?;
            let token_id: Option<String> = sqlx::query_scalar(
                "DELETE FROM web_sessions WHERE id_hash = $1 RETURNING token_id",
            ).bind(&hash).fetch_optional(&mut *tx).await?;
            if let Some(token_id) = token_id {
                sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(token_id).bind(now()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), StoreError>(())
        }.await)
    }

    /// Deletes expired sessions (their tokens have expired with them).
    pub async fn purge_web_sessions(&self) -> StoreResult<u64> {
        Ok(
            with_db!(&self.db, p => sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now()).execute(p).await?.rows_affected()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(password_matches("correct horse battery", &phc));
        assert!(!password_matches("correct horse batterY", &phc));
        assert!(!password_matches("x", "not a phc string"));
    }

    #[test]
    fn short_passwords_are_refused_with_the_rule() {
        let e = check_password("short").unwrap_err();
        assert!(e.contains("at least 12 characters"), "{e}");
        assert!(check_password("twelve chars").is_ok());
    }
}
