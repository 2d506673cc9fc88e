//! Facts about the store itself.

use crate::{Store, StoreError, StoreResult, with_db};

const KEY_CHECK: &str = "key_check";
const KEY_CHECK_PLAINTEXT: &str = "mailbridge store key check";

/// Whether the configured store key is the one this store's secrets were sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The key opened the check value written by an earlier start.
    Matches,
    /// No check value existed: one was written with this key (a new store).
    Recorded,
}

impl Store {
    /// Verifies the store key against the check value, or records one.
    pub async fn verify_key(&self) -> StoreResult<KeyCheck> {
        let existing: Option<String> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT value FROM store_meta WHERE name = $1",
        ).bind(KEY_CHECK).fetch_optional(p).await?);
        match existing {
            Some(sealed) => match self.cipher.open(KEY_CHECK, &sealed) {
                Ok(text) if text == KEY_CHECK_PLAINTEXT => Ok(KeyCheck::Matches),
                _ => Err(StoreError::Crypto(
                    "the configured secret key is not the key this store was created with; restore the original secret.key (or secret_key setting)".to_owned(),
                )),
            },
            None => {
                let sealed = self.cipher.seal(KEY_CHECK, KEY_CHECK_PLAINTEXT);
                with_db!(&self.db, p => sqlx::query("INSERT INTO store_meta (name, value) VALUES ($1, $2)")
                    .bind(KEY_CHECK).bind(sealed).execute(p).await?.rows_affected());
                Ok(KeyCheck::Recorded)
            }
        }
    }

    /// Whether the store holds any organization or token yet.
    pub async fn is_empty(&self) -> StoreResult<bool> {
        let n: i64 = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM organizations) + (SELECT COUNT(*) FROM api_tokens)",
        ).fetch_one(p).await?);
        Ok(n == 0)
    }
}
