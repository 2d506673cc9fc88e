//! Settings: defaults, then a TOML file (`--config`), then `MAILBRIDGE_*`
//! environment variables, then command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// `mailbridge serve` flags.
#[derive(clap::Args, Debug, Default, Serialize)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where the embedded database, admin.token and secret.key live [default: ./mailbridge-data].
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// A postgres://user:password@host/db URL; SQLite in the data directory when absent.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The address the HTTP API listens on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Log format: auto (text on a terminal, JSON otherwise), text or json.
    #[arg(long, value_name = "FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Auto,
    Text,
    Json,
}

/// Every setting of `mailbridge serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Option<String>,
    /// The store key in base64 (32 bytes); `<data_dir>/secret.key` when absent.
    pub secret_key: Option<String>,
    /// A file holding the store key, instead of `<data_dir>/secret.key`.
    pub secret_key_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `mailbridge=debug,info`.
    pub log: String,
    /// Run the synchronization engine on this node (false: API only).
    pub engine: bool,
    /// The polling interval of an active mailbox (a profile's minimum still applies).
    pub poll_interval_seconds: u64,
    /// The longest interval an idle mailbox backs off to.
    pub max_idle_poll_seconds: u64,
    /// The wait after a transient failure.
    pub retry_delay_seconds: u64,
    /// Transient failures before they count as permanent.
    pub max_retries: u32,
    /// How long a mailbox lease lasts without renewal.
    pub lease_seconds: u64,
    /// How often the scheduler looks for due work, in milliseconds.
    pub tick_millis: u64,
    /// Hold an IMAP IDLE connection per enabled mailbox.
    pub push: bool,
    /// This node's name in mailbox leases; `<data_dir>/node.id` when absent, so
    /// a restarted node takes its own leases back at once.
    pub node_id: Option<String>,
    /// A PEM file of extra certificate authorities to trust for mail servers (lab
    /// servers with their own CA); the web PKI roots are always trusted.
    pub extra_ca_file: Option<PathBuf>,
    /// Webhooks: the waits, in seconds, after each failed attempt; the delivery
    /// fails after the last (default: Standard Webhooks' 5 s, 5 min, 30 min, 2 h,
    /// 5 h, 10 h, 10 h).
    pub webhook_retry_seconds: Vec<f64>,
    /// Webhooks: how long a receiver has to answer.
    pub webhook_timeout_seconds: u64,
    /// Webhooks: how often an idle worker looks for due deliveries, in milliseconds.
    pub webhook_poll_millis: u64,
    /// A bearer token that `/metrics` then requires (`Authorization: Bearer
    /// <token>`); `/metrics` is open when absent, as Prometheus expects.
    pub metrics_token: Option<String>,
    /// Autodiscover: the DNS server (`ip:port`) asked for SRV records and host
    /// addresses; the system's (`/etc/resolv.conf`) when absent.
    pub discovery_nameserver: Option<SocketAddr>,
    /// Autodiscover: a port that replaces 443 in autoconfig and Autodiscover URLs.
    /// For loopback test fixtures only; leave it unset in production.
    pub discovery_https_port: Option<u16>,
    /// Autodiscover: how long a discovered server location is used before it is
    /// looked up again.
    pub discovery_max_age_seconds: u64,
    /// Exchange Online change notifications: the public HTTPS base URL under
    /// which Microsoft Graph reaches this service (e.g. `https://mailbridge.example.org`;
    /// Graph posts to `<url>/api/v1/graph/notifications/<org_id>`). Off when
    /// absent: Exchange Online mailboxes are then polled only.
    pub graph_notification_url: Option<String>,
    /// How often certificate expiry is checked (alerts 30 and 7 days ahead, and
    /// when a certificate has expired).
    pub certificate_check_seconds: u64,
    /// How often each mailbox's completeness census runs: the server's messages
    /// of every processed folder are compared with what was processed, and gaps
    /// are reported (metric, alert) and back-filled.
    pub census_interval_seconds: u64,
    /// The push route ("email router"): the address the SMTP listener binds,
    /// e.g. `0.0.0.0:2525`. Off when absent.
    pub smtp_listen: Option<SocketAddr>,
    /// The address the LMTP listener binds (for an MTA on the same network that
    /// delivers by LMTP). Off when absent.
    pub lmtp_listen: Option<SocketAddr>,
    /// The name in the listener's greeting; the machine's host name when absent.
    pub inbound_hostname: Option<String>,
    /// PEM certificate chain and private key for STARTTLS; both or neither.
    pub inbound_tls_cert_file: Option<PathBuf>,
    pub inbound_tls_key_file: Option<PathBuf>,
    /// Client networks that may deliver without SMTP AUTH (CIDR, e.g.
    /// `10.0.0.0/8`); every other client must authenticate (after STARTTLS).
    pub inbound_allowed_clients: Vec<String>,
    /// SMTP AUTH accounts: a file of `user:hash` lines (Argon2id PHC strings from
    /// `mailbridge hash-password`), readable by the service's user only.
    pub inbound_auth_file: Option<PathBuf>,
    /// The largest message any organization may receive, advertised as SIZE
    /// (organizations set lower limits in their email settings).
    pub inbound_max_message_size_kb: u64,
    /// Connections the listeners hold at once; more are answered 421.
    pub inbound_max_connections: usize,
    /// Days a processed pushed message's raw copy is kept (its email and decision
    /// stay); failed messages are kept until retried.
    pub inbound_retention_days: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("mailbridge-data"),
            database: None,
            secret_key: None,
            secret_key_file: None,
            log_format: LogFormat::Auto,
            log: "info".to_owned(),
            engine: true,
            poll_interval_seconds: 60,
            max_idle_poll_seconds: 900,
            retry_delay_seconds: 300,
            max_retries: 10,
            lease_seconds: 120,
            tick_millis: 1000,
            push: true,
            node_id: None,
            extra_ca_file: None,
            webhook_retry_seconds: mailbridge_domain::webhook::retry::RetrySchedule::default()
                .delays
                .iter()
                .map(std::time::Duration::as_secs_f64)
                .collect(),
            webhook_timeout_seconds: 10,
            webhook_poll_millis: 1000,
            metrics_token: None,
            discovery_nameserver: None,
            discovery_https_port: None,
            discovery_max_age_seconds: 24 * 3600,
            graph_notification_url: None,
            certificate_check_seconds: 3600,
            census_interval_seconds: 6 * 3600,
            smtp_listen: None,
            lmtp_listen: None,
            inbound_hostname: None,
            inbound_tls_cert_file: None,
            inbound_tls_key_file: None,
            inbound_allowed_clients: Vec::new(),
            inbound_auth_file: None,
            inbound_max_message_size_kb: 50 * 1024,
            inbound_max_connections: 100,
            inbound_retention_days: 7,
        }
    }
}

/// The environment variables read, without their `MAILBRIDGE_` prefix: exactly
/// the settings' names (other `MAILBRIDGE_*` variables, such as the test harness's,
/// are not settings).
fn env_keys() -> Vec<String> {
    match serde_json::to_value(Settings::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

impl Settings {
    pub fn load(args: &ServeArgs) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = &args.config {
            anyhow::ensure!(
                file.is_file(),
                "the configuration file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(
                Env::prefixed("MAILBRIDGE_")
                    .only(&env_keys().iter().map(String::as_str).collect::<Vec<_>>()),
            )
            .merge(Serialized::defaults(args));
        figment
            .extract()
            .context("read the settings (file, MAILBRIDGE_* variables, flags)")
    }

    /// The engine's settings.
    pub fn engine_config(
        &self,
        node_id: String,
    ) -> anyhow::Result<mailbridge_engine::EngineConfig> {
        use std::time::Duration;
        let extra_roots = match &self.extra_ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("read extra_ca_file {}", path.display()))?;
                mailbridge_connectors::tls::roots_from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("extra_ca_file {}: {e}", path.display()))?
            }
            None => Vec::new(),
        };
        Ok(mailbridge_engine::EngineConfig {
            node_id,
            extra_roots,
            tick: Duration::from_millis(self.tick_millis.max(10)),
            lease: Duration::from_secs(self.lease_seconds.max(1)),
            push: self.push,
            timing: mailbridge_domain::schedule::Timing {
                poll: Duration::from_secs(self.poll_interval_seconds.max(1)),
                max_idle_poll: Duration::from_secs(self.max_idle_poll_seconds.max(1)),
                retry_delay: Duration::from_secs(self.retry_delay_seconds),
                max_retries: self.max_retries,
            },
            webhook_retry: mailbridge_domain::webhook::retry::RetrySchedule {
                delays: self
                    .webhook_retry_seconds
                    .iter()
                    .map(|s| Duration::from_secs_f64(s.clamp(0.0, 1e9)))
                    .collect(),
            },
            webhook_timeout: Duration::from_secs(self.webhook_timeout_seconds.clamp(1, 300)),
            webhook_lease: Duration::from_secs(self.webhook_timeout_seconds.clamp(1, 300) * 2 + 40),
            webhook_poll: Duration::from_millis(self.webhook_poll_millis.max(10)),
            discovery_nameserver: self.discovery_nameserver,
            discovery_https_port: self.discovery_https_port,
            discovery_max_age: Duration::from_secs(self.discovery_max_age_seconds.max(60)),
            graph_notification_url: self
                .graph_notification_url
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| u.trim_end_matches('/').to_owned()),
            certificate_check_interval: Duration::from_secs(self.certificate_check_seconds.max(60)),
            census_interval: Duration::from_secs(self.census_interval_seconds.max(60)),
            ..Default::default()
        })
    }

    /// The inbound listener's settings; `None` when neither SMTP nor LMTP listens.
    /// Every error names the setting and how to fix it.
    pub fn inbound_config(
        &self,
    ) -> anyhow::Result<Option<mailbridge_engine::inbound::InboundConfig>> {
        if self.smtp_listen.is_none() && self.lmtp_listen.is_none() {
            return Ok(None);
        }
        let hostname = match &self.inbound_hostname {
            Some(h) => h.trim().to_owned(),
            None => gethostname::gethostname().to_string_lossy().into_owned(),
        };
        anyhow::ensure!(
            !hostname.is_empty() && !hostname.contains(char::is_whitespace),
            "inbound_hostname {hostname:?} is not a host name: set a name such as mx.example.org"
        );
        let mut c = mailbridge_engine::inbound::InboundConfig::disabled(hostname);
        c.smtp_listen = self.smtp_listen;
        c.lmtp_listen = self.lmtp_listen;
        c.tls = match (&self.inbound_tls_cert_file, &self.inbound_tls_key_file) {
            (Some(cert), Some(key)) => Some(
                mailbridge_engine::inbound::tls::server_config_from_files(cert, key).map_err(
                    |e| anyhow::anyhow!("inbound_tls_cert_file / inbound_tls_key_file: {e}"),
                )?,
            ),
            (None, None) => None,
            _ => anyhow::bail!(
                "inbound_tls_cert_file and inbound_tls_key_file go together: set both (STARTTLS) or neither"
            ),
        };
        c.allowed_clients = self
            .inbound_allowed_clients
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse().map_err(|e| {
                    anyhow::anyhow!("inbound_allowed_clients[{i}] {s:?}: {e}; write a network as 10.0.0.0/8 or an address as 192.0.2.7/32")
                })
            })
            .collect::<anyhow::Result<_>>()?;
        if let Some(path) = &self.inbound_auth_file {
            c.users = read_auth_file(path)?;
        }
        anyhow::ensure!(
            c.tls.is_some() || c.users.is_empty(),
            "inbound_auth_file is set but STARTTLS is not: SMTP AUTH is offered only on TLS; set inbound_tls_cert_file and inbound_tls_key_file"
        );
        anyhow::ensure!(
            !c.allowed_clients.is_empty() || !c.users.is_empty(),
            "the inbound listener would accept no client: set inbound_allowed_clients (e.g. your MTA's address) or inbound_auth_file with STARTTLS"
        );
        anyhow::ensure!(
            (1..=150 * 1024).contains(&self.inbound_max_message_size_kb),
            "inbound_max_message_size_kb {} is out of range: use 1 to 153600 (150 MB)",
            self.inbound_max_message_size_kb
        );
        c.max_message_size = self.inbound_max_message_size_kb * 1024;
        anyhow::ensure!(
            self.inbound_max_connections >= 1,
            "inbound_max_connections must be at least 1"
        );
        c.max_connections = self.inbound_max_connections;
        Ok(Some(c))
    }

    /// The settings of the worker that processes pushed mail (on every node
    /// running the engine).
    pub fn inbound_worker_config(
        &self,
    ) -> anyhow::Result<mailbridge_engine::inbound::worker::WorkerConfig> {
        anyhow::ensure!(
            (1..=3650).contains(&self.inbound_retention_days),
            "inbound_retention_days {} is out of range: use 1 to 3650",
            self.inbound_retention_days
        );
        Ok(mailbridge_engine::inbound::worker::WorkerConfig {
            retention: std::time::Duration::from_secs(self.inbound_retention_days * 24 * 3600),
            ..Default::default()
        })
    }

    /// The database to open: the configured URL, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => self.data_dir.join("mailbridge.db").display().to_string(),
        }
    }
}

/// SMTP AUTH accounts, `user:hash` per line (`#` starts a comment), the hash an
/// Argon2id PHC string as `mailbridge hash-password` prints it; a password in the
/// clear is refused. The file is still readable by its owner only.
fn read_auth_file(
    path: &std::path::Path,
) -> anyhow::Result<
    std::collections::BTreeMap<String, mailbridge_engine::inbound::auth::PasswordHashString>,
> {
    use mailbridge_engine::inbound::auth::PasswordHashString;
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).with_context(|| format!("inbound_auth_file {}", path.display()))?;
    anyhow::ensure!(
        meta.permissions().mode() & 0o077 == 0,
        "inbound_auth_file {} can be read by other users: chmod 600 it",
        path.display()
    );
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("inbound_auth_file {}", path.display()))?;
    let mut users = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line
            .split_once(':')
            .filter(|(u, h)| !u.is_empty() && !h.is_empty())
        else {
            anyhow::bail!(
                "inbound_auth_file {} line {}: write user:hash, the hash made by `mailbridge hash-password`",
                path.display(),
                n + 1
            );
        };
        let hash = PasswordHashString::parse(hash).map_err(|e| {
            // Only the line number: the line may hold a password in the clear.
            anyhow::anyhow!(
                "inbound_auth_file {} line {}: {user}'s password is not an Argon2id hash ({e}); \
                 passwords are not kept in the clear: replace it with the output of \
                 `mailbridge hash-password`",
                path.display(),
                n + 1
            )
        })?;
        users.insert(user.to_owned(), hash);
    }
    Ok(users)
}

#[cfg(test)]
// figment::Jail closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "mb.toml",
                "listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\nlog = \"debug\"",
            )?;
            jail.set_env("MAILBRIDGE_DATA_DIR", "/from/env");
            jail.set_env("MAILBRIDGE_TEST_SOMETHING", "ignored");
            let args = ServeArgs {
                config: Some("mb.toml".into()),
                listen: Some("127.0.0.1:9100".parse().unwrap()),
                ..Default::default()
            };
            let s = Settings::load(&args).map_err(|e| e.to_string())?;
            assert_eq!(s.listen.port(), 9100, "flag beats file");
            assert_eq!(s.data_dir, PathBuf::from("/from/env"), "env beats file");
            assert_eq!(s.log, "debug", "file beats default");
            assert_eq!(s.database_url(), "/from/env/mailbridge.db");
            Ok(())
        });
    }

    #[test]
    fn unknown_settings_in_the_file_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("mb.toml", "listne = \"127.0.0.1:9000\"")?;
            let args = ServeArgs {
                config: Some("mb.toml".into()),
                ..Default::default()
            };
            let err = format!("{:#}", Settings::load(&args).unwrap_err());
            assert!(err.contains("listne"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn engine_settings_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MAILBRIDGE_LEASE_SECONDS", "5");
            jail.set_env("MAILBRIDGE_TICK_MILLIS", "100");
            jail.set_env("MAILBRIDGE_PUSH", "false");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(e.lease.as_secs(), 5);
            assert_eq!(e.tick.as_millis(), 100);
            assert!(!e.push);
            Ok(())
        });
    }

    #[test]
    fn webhook_settings_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(e.webhook_retry, Default::default(), "the standard schedule");
            jail.set_env("MAILBRIDGE_WEBHOOK_RETRY_SECONDS", "[0.2, 1]");
            jail.set_env("MAILBRIDGE_WEBHOOK_POLL_MILLIS", "100");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            let millis: Vec<u128> = e
                .webhook_retry
                .delays
                .iter()
                .map(|d| d.as_millis())
                .collect();
            assert_eq!(millis, [200, 1000]);
            assert_eq!(e.webhook_poll.as_millis(), 100);
            Ok(())
        });
    }

    #[test]
    fn discovery_settings_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(
                (
                    e.discovery_nameserver,
                    e.discovery_https_port,
                    e.discovery_max_age.as_secs()
                ),
                (None, None, 86_400),
                "the system's DNS, port 443, a day"
            );
            jail.set_env("MAILBRIDGE_DISCOVERY_NAMESERVER", "127.0.0.1:5353");
            jail.set_env("MAILBRIDGE_DISCOVERY_HTTPS_PORT", "8443");
            jail.set_env("MAILBRIDGE_DISCOVERY_MAX_AGE_SECONDS", "3600");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(
                e.discovery_nameserver,
                Some("127.0.0.1:5353".parse().unwrap())
            );
            assert_eq!(e.discovery_https_port, Some(8443));
            assert_eq!(e.discovery_max_age.as_secs(), 3600);
            Ok(())
        });
    }

    #[test]
    fn certificate_check_interval_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(
                e.certificate_check_interval.as_secs(),
                3600,
                "hourly by default"
            );
            jail.set_env("MAILBRIDGE_CERTIFICATE_CHECK_SECONDS", "600");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(e.certificate_check_interval.as_secs(), 600);
            Ok(())
        });
    }

    #[test]
    fn census_interval_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(
                e.census_interval.as_secs(),
                6 * 3600,
                "six hours by default"
            );
            jail.set_env("MAILBRIDGE_CENSUS_INTERVAL_SECONDS", "1800");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(e.census_interval.as_secs(), 1800);
            Ok(())
        });
    }

    #[test]
    fn graph_notification_url_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(e.graph_notification_url, None, "off by default");
            jail.set_env(
                "MAILBRIDGE_GRAPH_NOTIFICATION_URL",
                "https://mb.example.org/",
            );
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let e = s.engine_config("n1".into()).map_err(|e| e.to_string())?;
            assert_eq!(
                e.graph_notification_url.as_deref(),
                Some("https://mb.example.org")
            );
            Ok(())
        });
    }

    #[test]
    fn a_bad_extra_ca_file_is_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ca.pem", "not a certificate")?;
            jail.set_env("MAILBRIDGE_EXTRA_CA_FILE", "ca.pem");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let err = format!("{:#}", s.engine_config("n1".into()).unwrap_err());
            assert!(err.contains("extra_ca_file ca.pem"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_inbound_listener_is_off_by_default_and_named_in_errors() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            assert!(s.inbound_config().map_err(|e| e.to_string())?.is_none());
            jail.set_env("MAILBRIDGE_SMTP_LISTEN", "127.0.0.1:2525");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let err = format!("{:#}", s.inbound_config().unwrap_err());
            assert!(
                err.contains("inbound_allowed_clients"),
                "no client could deliver: {err}"
            );
            jail.set_env(
                "MAILBRIDGE_INBOUND_ALLOWED_CLIENTS",
                "[\"10.0.0.0/8\", \"10.1.2.300/32\"]",
            );
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let err = format!("{:#}", s.inbound_config().unwrap_err());
            assert!(err.contains("inbound_allowed_clients[1]"), "{err}");
            jail.set_env("MAILBRIDGE_INBOUND_ALLOWED_CLIENTS", "[\"10.0.0.0/8\"]");
            jail.set_env("MAILBRIDGE_INBOUND_HOSTNAME", "mx.contoso.test");
            jail.set_env("MAILBRIDGE_INBOUND_MAX_MESSAGE_SIZE_KB", "1024");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let c = s.inbound_config().map_err(|e| e.to_string())?.expect("on");
            assert_eq!(c.smtp_listen, Some("127.0.0.1:2525".parse().unwrap()));
            assert_eq!(c.lmtp_listen, None);
            assert_eq!(c.hostname, "mx.contoso.test");
            assert_eq!(c.max_message_size, 1024 * 1024);
            assert_eq!(c.allowed_clients.len(), 1);
            jail.set_env("MAILBRIDGE_INBOUND_TLS_CERT_FILE", "cert.pem");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let err = format!("{:#}", s.inbound_config().unwrap_err());
            assert!(err.contains("inbound_tls_key_file"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn inbound_retention_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let c = s.inbound_worker_config().map_err(|e| e.to_string())?;
            assert_eq!(c.retention.as_secs(), 7 * 24 * 3600, "a week by default");
            jail.set_env("MAILBRIDGE_INBOUND_RETENTION_DAYS", "30");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let c = s.inbound_worker_config().map_err(|e| e.to_string())?;
            assert_eq!(c.retention.as_secs(), 30 * 24 * 3600);
            jail.set_env("MAILBRIDGE_INBOUND_RETENTION_DAYS", "0");
            let s = Settings::load(&ServeArgs::default()).map_err(|e| e.to_string())?;
            let err = format!("{:#}", s.inbound_worker_config().unwrap_err());
            assert!(err.contains("inbound_retention_days"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_inbound_auth_file_must_be_private_and_well_formed() {
        use mailbridge_engine::inbound::auth::PasswordHashString;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        let relay = PasswordHashString::hash("s3cret-pass");
        let backup = PasswordHashString::hash("other:colon");
        std::fs::write(
            &path,
            format!(
                "# relay accounts\nrelay:{}\n\n  backup:{}  \n",
                relay.as_str(),
                backup.as_str()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", read_auth_file(&path).unwrap_err());
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let users = read_auth_file(&path).unwrap();
        assert_eq!(users.keys().collect::<Vec<_>>(), ["backup", "relay"]);
        assert_eq!(users["relay"], relay);
        assert!(users["relay"].matches("s3cret-pass"));
        assert!(users["backup"].matches("other:colon"));
        assert!(!users["backup"].matches("s3cret-pass"));

        // A password in the clear is refused, naming the line and the fix, and
        // the password does not reach the message.
        std::fs::write(
            &path,
            format!("# accounts\nrelay:{}\nbackup:plain-pass\n", relay.as_str()),
        )
        .unwrap();
        let err = format!("{:#}", read_auth_file(&path).unwrap_err());
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("line 3")
                && err.contains("mailbridge hash-password"),
            "{err}"
        );
        assert!(!err.contains("plain-pass"), "{err}");
        // So is a hash other than Argon2id's.
        std::fs::write(
            &path,
            format!(
                "relay:{}\n",
                relay.as_str().replace("$argon2id$", "$argon2i$")
            ),
        )
        .unwrap();
        let err = format!("{:#}", read_auth_file(&path).unwrap_err());
        assert!(err.contains("line 1") && err.contains("argon2id"), "{err}");

        std::fs::write(&path, "relay\n").unwrap();
        let err = format!("{:#}", read_auth_file(&path).unwrap_err());
        assert!(err.contains("line 1") && err.contains("user:hash"), "{err}");
    }

    #[test]
    fn defaults() {
        let s = Settings::load(&ServeArgs::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url(), "mailbridge-data/mailbridge.db");
    }
}
