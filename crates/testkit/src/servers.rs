//! [`TestServers`]: where the servers started by scripts/test-servers listen, and the
//! operations tests need on them.

use std::env;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::headers::{header_value, mailbox_address};
use crate::lmtp::{self, LmtpError};
use crate::maildir;
use crate::postgres;
use crate::smtp_sink::{self, ReceivedMessage};
use crate::users::{self, PROVISIONED_USERS, TestUser};

const NOT_RUNNING: &str = "mail test servers are not running: run the tests with ./scripts/test";

/// Envelope sender for [`TestServers::deliver`] when the message has no usable `From:`.
const FALLBACK_SENDER: &str = "testkit@example.org";

/// The running test servers, as described by the `MAILBRIDGE_TEST_*` variables.
#[derive(Debug, Clone)]
pub struct TestServers {
    dir: PathBuf,
    imap: SocketAddr,
    lmtp: SocketAddr,
    smtp: SocketAddr,
    smtp_sink: PathBuf,
    dav_url: String,
    pg_url: String,
    mail_dir: PathBuf,
    dovecot_passwd: PathBuf,
    dovecot_conf: Option<PathBuf>,
    radicale_htpasswd: PathBuf,
}

impl TestServers {
    /// Reads the variables that `./scripts/test` exports.
    ///
    /// # Panics
    /// When a variable is missing or malformed: "mail test servers are not running:
    /// run the tests with ./scripts/test".
    pub fn from_env() -> TestServers {
        match Self::read_vars(|name| env::var(name).ok()) {
            Ok(servers) => servers,
            Err(problem) => panic!("{NOT_RUNNING} ({problem})"),
        }
    }

    /// Like [`TestServers::from_env`], but `None` instead of a panic.
    pub fn try_from_env() -> Option<TestServers> {
        Self::read_vars(|name| env::var(name).ok()).ok()
    }

    fn read_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<TestServers, String> {
        let var = |name: &str| match lookup(name) {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(format!("{name} is empty")),
            None => Err(format!("{name} is not set")),
        };
        let path = |name: &str| var(name).map(PathBuf::from);
        let addr = |name: &str| {
            let value = var(name)?;
            value
                .parse::<SocketAddr>()
                .map_err(|error| format!("{name}={value:?} is not an address: {error}"))
        };
        Ok(TestServers {
            dir: path("MAILBRIDGE_TEST_DIR")?,
            imap: addr("MAILBRIDGE_TEST_IMAP")?,
            lmtp: addr("MAILBRIDGE_TEST_LMTP")?,
            smtp: addr("MAILBRIDGE_TEST_SMTP")?,
            smtp_sink: path("MAILBRIDGE_TEST_SMTP_SINK")?,
            dav_url: var("MAILBRIDGE_TEST_DAV_URL")?,
            pg_url: var("MAILBRIDGE_TEST_PG_URL")?,
            mail_dir: path("MAILBRIDGE_TEST_MAIL_DIR")?,
            dovecot_passwd: path("MAILBRIDGE_TEST_DOVECOT_PASSWD")?,
            dovecot_conf: path("MAILBRIDGE_TEST_DOVECOT_CONF").ok(),
            radicale_htpasswd: path("MAILBRIDGE_TEST_RADICALE_HTPASSWD")?,
        })
    }

    /// Dovecot IMAP (no TLS; LOGIN and AUTHENTICATE PLAIN/LOGIN).
    pub fn imap_addr(&self) -> SocketAddr {
        self.imap
    }

    /// Dovecot LMTP, delivering into the same mailboxes.
    pub fn lmtp_addr(&self) -> SocketAddr {
        self.lmtp
    }

    /// The SMTP server (no TLS; AUTH PLAIN/LOGIN required before MAIL).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp
    }

    /// Radicale's root URL, ending in `/`; a user's collections live under `<url><login>/`.
    pub fn dav_url(&self) -> &str {
        &self.dav_url
    }

    /// The admin URL of the test PostgreSQL (database `postgres`, user `postgres`, no
    /// password). Tests should use [`TestServers::fresh_postgres_url`] instead.
    pub fn pg_url(&self) -> &str {
        &self.pg_url
    }

    /// The root of the maildirs: user `name` has `<mail_dir>/<name>/Maildir`.
    pub fn mail_dir(&self) -> &Path {
        &self.mail_dir
    }

    /// `<mail_dir>/<name>/Maildir`; it exists once Dovecot has delivered to or logged in
    /// the user.
    pub fn maildir(&self, name: &str) -> PathBuf {
        self.mail_dir.join(name).join("Maildir")
    }

    /// Writes `raw` straight into the INBOX of user `name` (a file in its Maildir
    /// `new/`), without LMTP: the fast way to fill a mailbox, and the stored bytes are
    /// exactly `raw`. Dovecot sees the message at its next look at the folder (IMAP
    /// SELECT, NOOP or IDLE, or `doveadm index`). Returns the file's path.
    ///
    /// # Panics
    /// When the file cannot be written or given to Dovecot's mail user.
    pub fn write_to_inbox(&self, name: &str, raw: &[u8]) -> PathBuf {
        maildir::write_new_message(&self.mail_dir, &self.maildir(name), raw)
    }

    /// The folder that holds every server's files and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Dovecot's configuration file, for `doveadm -c <file> ...`.
    pub fn dovecot_conf(&self) -> Option<&Path> {
        self.dovecot_conf.as_deref()
    }

    /// The folder where the SMTP server writes one JSON file per message.
    pub fn smtp_sink_dir(&self) -> &Path {
        &self.smtp_sink
    }

    /// A provisioned user (alice, bob, carol, dave) or one added by
    /// [`TestServers::add_user`].
    ///
    /// # Panics
    /// When no such user exists.
    pub fn user(&self, name: &str) -> TestUser {
        match users::dovecot_password(&self.dovecot_passwd, name) {
            Some(password) => TestUser::new(name, &password),
            None => panic!(
                "no test user {name:?}: the provisioned users are {PROVISIONED_USERS:?}; \
                 add others with TestServers::add_user"
            ),
        }
    }

    /// Adds a user to Dovecot (and so the SMTP server) and Radicale while they run.
    /// Idempotent: adding the same name and password again changes nothing.
    ///
    /// Returns once Dovecot is sure to see the new user (up to about one second, see
    /// docs/TESTING.md).
    ///
    /// # Panics
    /// When `name` is not lower-case (`[a-z0-9._-]`), when the password holds `:` or a
    /// line break, or when `name` already exists with another password.
    pub async fn add_user(&self, name: &str, password: &str) -> TestUser {
        self.add_user_with(name, password, &[]).await
    }

    /// Like [`TestServers::add_user`], with Dovecot settings of the user's own
    /// (userdb fields), e.g. `[("mailbridge_push_url", url)]` to have Dovecot call
    /// a mailbridge when mail is delivered to this user
    /// (`contrib/dovecot/mailbridge-push.lua`). A user that exists keeps the
    /// settings it was added with.
    pub async fn add_user_with(
        &self,
        name: &str,
        password: &str,
        userdb: &[(&str, &str)],
    ) -> TestUser {
        let added = users::append_user_with(
            &self.dir.join("users.lock"),
            &self.dovecot_passwd,
            &self.radicale_htpasswd,
            name,
            password,
            userdb,
        );
        if added.dovecot {
            tokio::time::sleep(users::dovecot_reload_delay()).await;
        }
        TestUser::new(name, password)
    }

    /// Delivers a raw RFC 5322 message into the INBOX of `to` (an address such as
    /// `bob@example.org`) by LMTP. The envelope sender is the `From:` address of the
    /// message, or `testkit@example.org` without one.
    ///
    /// Line endings become CRLF. Dovecot prepends `Return-Path`, `Delivered-To` and
    /// `Received` header fields; the rest is stored as given.
    ///
    /// # Errors
    /// [`LmtpError::Rejected`] when Dovecot answers a step with a non-2xx reply (550 at
    /// `RCPT TO` for an unknown user), other variants when the connection fails or the
    /// delivery takes longer than 20 seconds.
    pub async fn deliver(&self, to: &str, raw: &[u8]) -> Result<(), LmtpError> {
        let sender = header_value(raw, "from")
            .and_then(|from| mailbox_address(&from))
            .unwrap_or_else(|| FALLBACK_SENDER.to_owned());
        self.deliver_from(&sender, to, raw).await
    }

    /// Like [`TestServers::deliver`] with an explicit envelope sender (`""` for `<>`).
    ///
    /// # Errors
    /// As [`TestServers::deliver`].
    pub async fn deliver_from(&self, sender: &str, to: &str, raw: &[u8]) -> Result<(), LmtpError> {
        lmtp::deliver(self.lmtp, sender, to, raw).await
    }

    /// Every message the SMTP server has accepted so far, in order of arrival.
    ///
    /// The sink is shared by all tests of a run (they may run in parallel): pick your
    /// own messages out, e.g. by Message-ID or recipient.
    pub fn smtp_received(&self) -> Vec<ReceivedMessage> {
        smtp_sink::read_sink(&self.smtp_sink)
    }

    /// Waits until the SMTP server has accepted at least `count` messages in all, and
    /// returns them all, polling every 50 ms.
    ///
    /// # Panics
    /// After `timeout`, listing what did arrive.
    pub async fn wait_smtp_received(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedMessage> {
        self.wait_smtp_until(timeout, &format!("{count} message(s)"), |messages| {
            (messages.len() >= count).then(|| messages.to_vec())
        })
        .await
    }

    /// Waits until a message matching `predicate` has arrived at the SMTP server and
    /// returns the first such one. Safer than a count when tests run in parallel.
    ///
    /// # Panics
    /// After `timeout`, listing what did arrive.
    pub async fn wait_smtp_message(
        &self,
        timeout: Duration,
        predicate: impl Fn(&ReceivedMessage) -> bool,
    ) -> ReceivedMessage {
        self.wait_smtp_until(timeout, "a matching message", |messages| {
            messages.iter().find(|message| predicate(message)).cloned()
        })
        .await
    }

    async fn wait_smtp_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&[ReceivedMessage]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.smtp_received();
            if let Some(found) = check(&messages) {
                return found;
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = messages
                    .iter()
                    .map(|m| format!("{} from {} to {:?}", m.id, m.mail_from, m.rcpt_tos))
                    .collect();
                panic!(
                    "the SMTP server did not receive {what} within {timeout:?}; it has {}: {seen:#?}",
                    messages.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates a new, empty database `mb_test_<uuid>` on the test PostgreSQL and
    /// returns its URL, so that each test has its own database.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached or refuses.
    pub async fn fresh_postgres_url(&self) -> String {
        postgres::create_fresh_database(&self.pg_url).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::TestServers;

    fn vars() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("MAILBRIDGE_TEST_DIR", "/t"),
            ("MAILBRIDGE_TEST_IMAP", "127.0.0.1:1143"),
            ("MAILBRIDGE_TEST_LMTP", "127.0.0.1:1024"),
            ("MAILBRIDGE_TEST_SMTP", "127.0.0.1:1025"),
            ("MAILBRIDGE_TEST_SMTP_SINK", "/t/smtp/sink"),
            ("MAILBRIDGE_TEST_DAV_URL", "http://127.0.0.1:5232/"),
            (
                "MAILBRIDGE_TEST_PG_URL",
                "postgres://postgres@127.0.0.1:5433/postgres",
            ),
            ("MAILBRIDGE_TEST_MAIL_DIR", "/t/mail"),
            ("MAILBRIDGE_TEST_DOVECOT_PASSWD", "/t/dovecot/passwd"),
            ("MAILBRIDGE_TEST_RADICALE_HTPASSWD", "/t/radicale/htpasswd"),
        ])
    }

    fn read(vars: &BTreeMap<&str, &str>) -> Result<TestServers, String> {
        TestServers::read_vars(|name| vars.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn read_vars_reads_every_server() {
        let servers = read(&vars()).expect("complete variables");
        assert_eq!(servers.imap_addr().port(), 1143);
        assert_eq!(servers.smtp_addr().port(), 1025);
        assert_eq!(servers.dav_url(), "http://127.0.0.1:5232/");
        assert_eq!(servers.maildir("bob").to_str(), Some("/t/mail/bob/Maildir"));
        assert_eq!(servers.dovecot_conf(), None);
    }

    #[test]
    fn read_vars_names_the_missing_or_bad_variable() {
        let mut missing = vars();
        missing.remove("MAILBRIDGE_TEST_PG_URL");
        assert_eq!(
            read(&missing).err().as_deref(),
            Some("MAILBRIDGE_TEST_PG_URL is not set")
        );

        let mut bad = vars();
        bad.insert("MAILBRIDGE_TEST_LMTP", "localhost");
        let error = read(&bad).err().unwrap_or_default();
        assert!(
            error.starts_with("MAILBRIDGE_TEST_LMTP=\"localhost\" is not an address"),
            "{error}"
        );
    }
}
