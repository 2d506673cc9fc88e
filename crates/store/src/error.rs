//! The store's errors.

use mailbridge_domain::FieldError;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such record in this organization.
    #[error("not found")]
    NotFound,
    /// The change collides with existing data (a taken name, a record still in use).
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    /// The input breaks a rule that needs the store to check (a reference to a
    /// record that does not exist in the organization).
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored secret cannot be decrypted with this store key: {0}")]
    Crypto(String),
}

impl StoreError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> StoreError {
        StoreError::Invalid(vec![FieldError::new(field, message)])
    }

    pub(crate) fn conflict(field: Option<&str>, message: impl Into<String>) -> StoreError {
        StoreError::Conflict {
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Whether the database refused a write for a unique constraint.
    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
    }

    /// Whether the database refused a write for a foreign key.
    pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
    }
}
