//! The IMAP connector: one logged-in connection ([`ImapSession`]) that lists
//! folders, reads new messages by UID without touching `\Seen`, moves and appends,
//! and waits with IDLE. Every network operation is bounded by the configured timeout
//! and every failure is a classified [`SyncError`].
//!
//! Server quirks handled here, each named where it is handled:
//! - `QUIRK_UID_RANGE_LAST`: `UID FETCH n:*` and `UID SEARCH UID n:*` return the
//!   last message even when its UID is below `n` (RFC 3501 6.4.8: `*` is the largest
//!   UID in use), so results are filtered by UID.
//! - `QUIRK_CAPABILITY_AFTER_LOGIN`: Dovecot (and others) list IDLE, MOVE, CONDSTORE
//!   and friends only after login, so capabilities are asked again after it.
//! - `QUIRK_XOAUTH2_ERROR_CHALLENGE`: a refused XOAUTH2 token comes back as a `+`
//!   challenge holding a JSON error, which must be answered with an empty line before
//!   the server sends the tagged NO.
//! - `QUIRK_UNSOLICITED_CHANNEL`: async-imap keeps at most 100 unsolicited responses
//!   and drops the rest, so every command drains them.

use std::time::Duration;

use async_imap::types::UnsolicitedResponse;
use chrono::{DateTime, Utc};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;

use crate::errors::Endpoint;
use crate::tls::Stream;

mod census;
mod delete;
mod eof;
mod errors;
mod fetch;
mod folders;
mod idle;
mod login;
mod preauth;
mod probe;
mod store;

pub use probe::imap_test;

/// Where and how to reach an IMAP server.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsPolicy,
    pub auth: Auth,
    /// The bound of every network operation (connect, TLS, each command).
    pub timeout: Duration,
    /// Extra trusted CA certificates (DER) besides the web PKI roots, for lab servers.
    pub extra_roots: Vec<Vec<u8>>,
}

/// How to log in.
#[derive(Debug, Clone)]
pub enum Auth {
    /// AUTHENTICATE PLAIN when offered, else LOGIN.
    Password { username: String, password: Secret },
    /// XOAUTH2 (or OAUTHBEARER when only that is offered).
    OAuth2 {
        username: String,
        access_token: Secret,
    },
}

impl Auth {
    pub fn username(&self) -> &str {
        match self {
            Auth::Password { username, .. } | Auth::OAuth2 { username, .. } => username,
        }
    }

    pub(crate) fn secret(&self) -> &str {
        match self {
            Auth::Password { password, .. } => password.expose(),
            Auth::OAuth2 { access_token, .. } => access_token.expose(),
        }
    }
}

/// What the server can do, read after login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub idle: bool,
    pub move_: bool,
    pub condstore: bool,
    pub qresync: bool,
    pub uidplus: bool,
    pub special_use: bool,
    /// Every capability as the server spelled it, sorted.
    pub all: Vec<String>,
}

impl Capabilities {
    /// From the capability atoms as the server sent them.
    pub fn from_atoms<S: AsRef<str>>(atoms: impl IntoIterator<Item = S>) -> Capabilities {
        let mut all: Vec<String> = atoms.into_iter().map(|a| a.as_ref().to_owned()).collect();
        all.sort();
        all.dedup();
        let has = |name: &str| all.iter().any(|a| a.eq_ignore_ascii_case(name));
        Capabilities {
            idle: has("IDLE"),
            move_: has("MOVE"),
            condstore: has("CONDSTORE") || has("QRESYNC"),
            qresync: has("QRESYNC"),
            uidplus: has("UIDPLUS"),
            special_use: has("SPECIAL-USE"),
            all,
        }
    }

    /// Whether the server lists `name` (case-insensitive), e.g. `AUTH=PLAIN`.
    pub fn has(&self, name: &str) -> bool {
        self.all.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// A folder of the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The name as the server spells it (modified UTF-7 for non-ASCII names).
    pub name: String,
    pub special_use: Option<SpecialUse>,
}

/// The special uses of RFC 6154 that mailbridge cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
    All,
}

/// The state of a folder when it was selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderState {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub exists: u32,
    /// With CONDSTORE (enabled whenever the server offers it).
    pub highestmodseq: Option<u64>,
}

/// One message as fetched: its UID, flags, dates and exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: u32,
    /// System flags like `\Seen` and keywords, as the server spelled them.
    pub flags: Vec<String>,
    pub internal_date: Option<DateTime<Utc>>,
    pub size: u32,
    pub bytes: Vec<u8>,
}

/// Why [`ImapSession::idle`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleOutcome {
    /// The server reported new or changed messages (EXISTS, RECENT, FETCH, EXPUNGE).
    Changed,
    Timeout,
}

type Session = async_imap::Session<eof::EofIsError<Stream>>;

/// One logged-in IMAP connection.
#[derive(Debug)]
pub struct ImapSession {
    session: Session,
    capabilities: Capabilities,
    endpoint: Endpoint,
    username: String,
    timeout: Duration,
    /// The selected folder and its message count as last reported.
    selected: Option<(String, u32)>,
    /// The server reported new or changed messages outside an IDLE (seen while
    /// draining unsolicited responses); the next `idle` returns at once.
    changed: bool,
}

impl ImapSession {
    /// Connects, secures and logs in; see [`ImapSession::connect_traced`].
    ///
    /// # Errors
    /// A classified [`SyncError`] for each failure.
    pub async fn connect(cfg: &ImapConfig) -> Result<ImapSession, SyncError> {
        login::connect(cfg, &mut crate::Trace::none()).await
    }

    /// Connects (resolve, TCP), secures the connection as `cfg.tls` says (implicit
    /// TLS; STARTTLS required; STARTTLS if offered; none), authenticates, then reads
    /// the capabilities again, recording the steps `resolve`, `connect`, `tls` and
    /// `authenticate` with details for Test Connection.
    ///
    /// # Errors
    /// A classified [`SyncError`] for each failure; its step is recorded as failed.
    pub async fn connect_traced(
        cfg: &ImapConfig,
        steps: &mut Vec<crate::TestStep>,
    ) -> Result<ImapSession, SyncError> {
        login::connect(cfg, &mut crate::Trace::new(steps)).await
    }

    /// The capabilities read after login.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Asks the server for news (and keeps the connection alive).
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn noop(&mut self) -> Result<(), SyncError> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.session.noop()).await;
        self.finish("NOOP", result)
    }

    /// Logs out, ignoring failures: the connection is dropped either way.
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.session.logout()).await;
    }

    /// Turns the outcome of a command bounded by the timeout into a classified
    /// result, and drains unsolicited responses.
    fn finish<T>(
        &mut self,
        what: &str,
        result: Result<async_imap::error::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, SyncError> {
        self.drain_unsolicited();
        match result {
            Err(_) => Err(self.endpoint.timed_out(what, self.timeout)),
            Ok(Err(e)) => Err(errors::classify(&self.endpoint, what, &e)),
            Ok(Ok(value)) => Ok(value),
        }
    }

    /// `QUIRK_UNSOLICITED_CHANNEL`: empties async-imap's bounded channel, keeping
    /// what matters: the message count and whether something changed.
    fn drain_unsolicited(&mut self) {
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            self.note_unsolicited(&response);
        }
    }

    fn note_unsolicited(&mut self, response: &UnsolicitedResponse) {
        match response {
            UnsolicitedResponse::Exists(n) => {
                if let Some((_, exists)) = &mut self.selected {
                    if *n > *exists {
                        self.changed = true;
                    }
                    *exists = *n;
                }
            }
            UnsolicitedResponse::Recent(n) if *n > 0 => self.changed = true,
            UnsolicitedResponse::Expunge(_) => {
                if let Some((_, exists)) = &mut self.selected {
                    *exists = exists.saturating_sub(1);
                }
            }
            _ => {}
        }
    }
}
