//! mailbridge's store: one interface over embedded SQLite and PostgreSQL.
//!
//! Every query is written once in SQL that both backends accept (`$N` parameters,
//! portable types) and runs through [`with_db!`], which expands it once per
//! backend, so each backend gets native, statically typed code. Migrations live in
//! one folder per backend and are kept in step. Secrets are sealed with the store
//! key before they are written and are never selected into a model.

mod act;
mod act_schedule;
mod activities;
mod alerts;
mod certificates;
mod cluster;
pub mod crypto;
mod error;
mod graph_subscriptions;
mod inbound;
mod jobs;
mod mailboxes;
mod meta;
mod monitoring;
mod organizations;
mod owners;
pub mod page;
mod parties;
mod profiles;
mod records;
mod stats;
mod sync;
mod tokens;
mod web;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use act::*;
pub use act_schedule::ActRunState;
pub use activities::emails_of_mailbox;
pub use alerts::alerts_for_recipient;
pub use certificates::{ExpiringCertificate, NewCertificate};
pub use cluster::{NodeInfo, NodeMailbox, NodeRow};
pub use crypto::Cipher;
pub use error::{StoreError, StoreResult};
pub use graph_subscriptions::{GraphSubscriptionGranted, GraphSubscriptionRow};
pub use inbound::{
    HELD_PREFIX, InboundCounts, InboundMessage, InboundMessageSummary, InboundReceipt,
    InboundRecipient, ReceivedMessage,
};
pub use meta::KeyCheck;
pub use monitoring::{
    HealthSort, JobItemCounts, JobItemView, MailboxHealth, MailboxViewCounts, MonitoringSummary,
    ProfileHealth, Scope as ThroughputScope, ThroughputBucket, bucket_starts, mailbox_view_filter,
};
pub use owners::{NewQueue, NewUser};
pub use page::{Filter, Page, PageRequest};
pub use parties::PartyKind;
pub use profiles::{ProfileSecret, ProfileSecretChanges};
pub use stats::{IncomingLag, MailboxStatusCount, OutgoingQueue};
pub use sync::*;
pub use tokens::{IssuedToken, TokenInfo, TokenSummary};
pub use web::{NewWebSession, PasswordOwner, WebSession, check_password};
pub use webhooks::{AfterAttempt, AttemptResult, ClaimedDelivery};

/// The database behind the store.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool of whichever backend is in use.
/// The body is compiled once per backend.
#[macro_export]
macro_rules! with_db {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($p) => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

/// The store: cheap to clone, shared by the engine and the HTTP surface.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    cipher: Cipher,
}

/// Which backend a store uses, for logs and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Store {
    /// Opens the database named by `database`: a `postgres://` (or `postgresql://`)
    /// URL, or the path of an SQLite file (created when missing), and runs the
    /// migrations of that backend.
    pub async fn open(database: &str, cipher: Cipher) -> StoreResult<Store> {
        let db = if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(15))
                .connect(database)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Db::Postgres(pool)
        } else {
            let path = database.strip_prefix("sqlite://").unwrap_or(database);
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL with NORMAL stays consistent after a crash; a power cut may lose
                // the last transactions, never corrupt the file.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(15));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Db::Sqlite(pool)
        };
        Ok(Store { db, cipher })
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database, for the engine's own queries.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Answers when the database answers a trivial query.
    pub async fn ping(&self) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        with_db!(&self.db, p => p.close().await)
    }
}

/// The current time, truncated to microseconds so that both backends store and
/// return the same value (PostgreSQL keeps microseconds).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    let t = chrono::Utc::now();
    chrono::DurationRound::duration_trunc(t, chrono::Duration::microseconds(1)).unwrap_or(t)
}
