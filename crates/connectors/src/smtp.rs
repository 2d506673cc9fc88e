//! The SMTP connector: sends one message as a mailbox, and tests a submission
//! server (connect, TLS, authenticate) without sending. Built on lettre's
//! connection, one command at a time, so that each refusal is classified by the
//! step it came from: a refused recipient is that message's problem, a refused
//! login the mailbox's.
//!
//! Quirks handled here:
//! - `QUIRK_DATA_TERMINATOR`: lettre always ends DATA with `CRLF . CRLF`, so a
//!   message's own final CRLF is left off, else the server would store an extra
//!   empty line.
//! - `QUIRK_BARE_LF`: messages with bare LF line ends are sent with CRLF, which SMTP
//!   requires (RFC 5321 2.3.8); many servers refuse bare LF outright.
//! - `QUIRK_XOAUTH2_ERROR_CHALLENGE`: a refused XOAUTH2 token comes back as a `334`
//!   challenge holding a JSON error, which must be answered with an empty line before
//!   the server sends its 535. lettre's `auth` gives up on that challenge with an
//!   error of its own (which read as a protocol fault, retried forever), so XOAUTH2 is
//!   spoken here.

use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, CertificateStore, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Severity;
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::location::TlsPolicy;

use crate::errors::Endpoint;
use crate::imap::Auth;
use crate::tls::{self, Stream};
use crate::{TestStep, Trace};

mod errors;
mod message;

use errors::Stage;

/// Where and how to reach an SMTP submission server.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsPolicy,
    /// `None`: send without authentication (a relay that trusts this host).
    pub auth: Option<Auth>,
    /// The bound of every network operation (connect, TLS, each command).
    pub timeout: Duration,
    /// Extra trusted CA certificates (DER) besides the web PKI roots, for lab servers.
    pub extra_roots: Vec<Vec<u8>>,
    /// The EHLO name.
    pub hello_name: String,
}

/// Sends `message` (RFC 5322 bytes) from `envelope_from` (`""` for the null
/// sender) to `recipients`. All or nothing: when the server refuses one recipient,
/// the transaction is abandoned (RSET) and nothing is sent.
///
/// # Errors
/// A classified [`SyncError`]: a refused recipient or message is permanent for the
/// item (5xx) or transient (4xx); a refused login is permanent for the mailbox.
pub async fn smtp_send(
    cfg: &SmtpConfig,
    envelope_from: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<(), SyncError> {
    let mut session = SmtpSession::connect(cfg).await?;
    let result = session.send(envelope_from, recipients, message).await;
    session.quit().await;
    result
}

/// One authenticated SMTP connection for sending several messages in a row,
/// saving a connection and a login per message. After an error other than a
/// refused recipient or message, drop it and connect again.
pub struct SmtpSession(Smtp);

impl SmtpSession {
    /// Connects, secures and authenticates.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn connect(cfg: &SmtpConfig) -> Result<SmtpSession, SyncError> {
        Smtp::open(cfg, &mut Trace::none()).await.map(SmtpSession)
    }

    /// Sends one message, all or nothing, like [`smtp_send`].
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn send(
        &mut self,
        envelope_from: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<(), SyncError> {
        let sender = message::address(envelope_from, "sender")?;
        let rcpts = recipients
            .iter()
            .map(|r| message::address(r, "recipient")?.ok_or_else(message::empty_recipient))
            .collect::<Result<Vec<_>, _>>()?;
        if rcpts.is_empty() {
            return Err(message::no_recipients());
        }
        let body = message::for_data(message);
        self.0.transaction(sender, rcpts, &body, message).await
    }

    /// Says QUIT and closes.
    pub async fn quit(self) {
        self.0.quit().await;
    }
}

/// Connects, secures and authenticates without sending, recording the steps
/// `resolve`, `connect`, `tls` and `authenticate`.
///
/// # Errors
/// The first failure, classified; its step is recorded as failed.
pub async fn smtp_test(cfg: &SmtpConfig, steps: &mut Vec<TestStep>) -> Result<(), SyncError> {
    let smtp = Smtp::open(cfg, &mut Trace::new(steps)).await?;
    smtp.quit().await;
    Ok(())
}

/// One open, authenticated connection.
struct Smtp {
    conn: AsyncSmtpConnection,
    endpoint: Endpoint,
    timeout: Duration,
    secret: String,
    /// Over TLS, implicit or after STARTTLS. lettre's `is_encrypted` says no for
    /// implicit TLS, which it sees as a custom transport.
    encrypted: bool,
}

impl Smtp {
    async fn open(cfg: &SmtpConfig, trace: &mut Trace<'_>) -> Result<Smtp, SyncError> {
        let endpoint = Endpoint {
            protocol: "SMTP",
            host: cfg.host.clone(),
            port: cfg.port,
        };
        let secret = cfg
            .auth
            .as_ref()
            .map(|a| a.secret().to_owned())
            .unwrap_or_default();
        let tcp = crate::net::connect_tcp(&endpoint, cfg.timeout, trace).await?;
        let secured = secure(cfg, &endpoint, tcp).await;
        let (conn, _) = trace.step("tls", secured, |(_, detail)| detail.clone())?;
        let encrypted = cfg.tls == TlsPolicy::Implicit || conn.is_encrypted();
        let mut smtp = Smtp {
            conn,
            endpoint,
            timeout: cfg.timeout,
            secret,
            encrypted,
        };
        let authenticated = smtp.authenticate(cfg).await;
        trace.step("authenticate", authenticated, |detail| detail.clone())?;
        Ok(smtp)
    }

    async fn authenticate(&mut self, cfg: &SmtpConfig) -> Result<String, SyncError> {
        let Some(auth) = &cfg.auth else {
            return Ok("not used: the profile sends without authentication".to_owned());
        };
        let mechanisms: &[Mechanism] = match auth {
            Auth::Password { .. } => &[Mechanism::Plain, Mechanism::Login],
            Auth::OAuth2 { .. } => &[Mechanism::Xoauth2],
        };
        let Some(mechanism) = self.conn.server_info().get_auth_mechanism(mechanisms) else {
            return Err(errors::no_mechanism(&self.endpoint, auth, self.encrypted));
        };
        match auth {
            Auth::Password { username, password } => {
                let credentials = Credentials::new(username.clone(), password.expose().to_owned());
                let login = self
                    .conn
                    .auth(std::slice::from_ref(&mechanism), &credentials);
                let result = tokio::time::timeout(self.timeout, login).await;
                self.check(Stage::Auth(username), result)?;
            }
            Auth::OAuth2 {
                username,
                access_token,
            } => self.xoauth2(username, access_token.expose()).await?,
        }
        Ok(format!(
            "logged in as {} with AUTH {mechanism}",
            auth.username()
        ))
    }

    /// `AUTH XOAUTH2` with the token as initial response; see
    /// `QUIRK_XOAUTH2_ERROR_CHALLENGE` for the answer to a refusal.
    async fn xoauth2(&mut self, user: &str, token: &str) -> Result<(), SyncError> {
        use base64::Engine as _;
        let stage = Stage::Auth(user);
        let initial =
            base64::engine::general_purpose::STANDARD.encode(crate::sasl::xoauth2(user, token));
        let command = format!("AUTH XOAUTH2 {initial}\r\n");
        let result = tokio::time::timeout(self.timeout, self.conn.command(command)).await;
        let mut response = self.check(stage, result)?;
        if response.has_code(334) {
            // The JSON error; the 5xx that follows the empty answer is the refusal.
            let result = tokio::time::timeout(self.timeout, self.conn.command("\r\n")).await;
            response = self.check(stage, result)?;
        }
        if response.code().severity == Severity::PositiveCompletion {
            Ok(())
        } else {
            Err(self.endpoint.protocol(&format!(
                "AUTH XOAUTH2 ended with {} instead of 235",
                response.code()
            )))
        }
    }

    async fn transaction(
        &mut self,
        sender: Option<lettre::Address>,
        recipients: Vec<lettre::Address>,
        body: &[u8],
        original: &[u8],
    ) -> Result<(), SyncError> {
        let info = self.conn.server_info();
        let mut parameters = Vec::new();
        if !original.is_ascii() && info.supports_feature(Extension::EightBitMime) {
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let utf8 = sender
            .iter()
            .chain(&recipients)
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if utf8 && info.supports_feature(Extension::SmtpUtfEight) {
            parameters.push(MailParameter::SmtpUtfEight);
        }
        let result = tokio::time::timeout(
            self.timeout,
            self.conn.command(Mail::new(sender, parameters)),
        )
        .await;
        self.check(Stage::MailFrom, result)?;
        for rcpt in recipients {
            let result = tokio::time::timeout(
                self.timeout,
                self.conn.command(Rcpt::new(rcpt.clone(), vec![])),
            )
            .await;
            if let Err(e) = self.check(Stage::Rcpt(AsRef::<str>::as_ref(&rcpt)), result) {
                // Leave the session clean for the next message (or the QUIT).
                let _ = tokio::time::timeout(self.timeout, self.conn.command(Rset)).await;
                return Err(e);
            }
        }
        let result = tokio::time::timeout(self.timeout, self.conn.command(Data)).await;
        self.check(Stage::Data, result)?;
        // The whole message is bounded by one timeout per started megabyte, at least one.
        let budget =
            self.timeout * (1 + u32::try_from(body.len() / 1_000_000).unwrap_or(u32::MAX - 1));
        let result = tokio::time::timeout(budget, self.conn.message(body)).await;
        self.check(Stage::Message, result)?;
        Ok(())
    }

    fn check<T>(
        &self,
        stage: Stage<'_>,
        result: Result<Result<T, lettre::transport::smtp::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, SyncError> {
        match result {
            Err(_) => Err(self.endpoint.timed_out(&stage.what(), self.timeout)),
            Ok(Err(e)) => Err(errors::classify(&self.endpoint, stage, &e, &self.secret)),
            Ok(Ok(value)) => Ok(value),
        }
    }

    async fn quit(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.conn.quit()).await;
    }
}

/// TLS as the policy says, the greeting and EHLO, with the detail of the `tls` step.
async fn secure(
    cfg: &SmtpConfig,
    endpoint: &Endpoint,
    tcp: tokio::net::TcpStream,
) -> Result<(AsyncSmtpConnection, String), SyncError> {
    let hello = ClientId::Domain(cfg.hello_name.clone());
    let timeout = cfg.timeout;
    let greet = |stream: Stream| async {
        let connecting = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello);
        match tokio::time::timeout(timeout, connecting).await {
            Err(_) => Err(endpoint.timed_out("the greeting and EHLO", timeout)),
            Ok(Err(e)) => Err(errors::classify(endpoint, Stage::Greeting, &e, "")),
            Ok(Ok(conn)) => Ok(conn),
        }
    };
    if cfg.tls == TlsPolicy::Implicit {
        let stream = tls::handshake(tcp, endpoint, &cfg.extra_roots, timeout).await?;
        let detail = format!(
            "{} established; the certificate of {} is trusted",
            stream.tls_version().unwrap_or_else(|| "TLS".to_owned()),
            endpoint.host
        );
        return Ok((greet(stream).await?, detail));
    }
    let mut conn = greet(Stream::Plain(tcp)).await?;
    let offered = conn.can_starttls();
    match (cfg.tls, offered) {
        (TlsPolicy::StartTlsRequired | TlsPolicy::StartTlsIfOffered, true) => {
            let parameters = tls_parameters(cfg, endpoint)?;
            let upgrade = conn.starttls(parameters, &hello);
            match tokio::time::timeout(timeout, upgrade).await {
                Err(_) => return Err(endpoint.timed_out("STARTTLS", timeout)),
                Ok(Err(e)) => return Err(errors::classify(endpoint, Stage::StartTls, &e, "")),
                Ok(Ok(())) => {}
            }
            Ok((
                conn,
                format!("STARTTLS: TLS established; the certificate of {} is trusted", endpoint.host),
            ))
        }
        (TlsPolicy::StartTlsRequired, false) => Err(endpoint.starttls_missing()),
        (TlsPolicy::StartTlsIfOffered, false) => Ok((
            conn,
            "the server does not offer STARTTLS; continuing without TLS as the profile allows plaintext".to_owned(),
        )),
        _ => Ok((conn, "not used: the profile allows plaintext".to_owned())),
    }
}

/// lettre's TLS settings matching [`tls::client_config`]: web PKI roots plus the
/// profile's extra roots, verification on.
fn tls_parameters(cfg: &SmtpConfig, endpoint: &Endpoint) -> Result<TlsParameters, SyncError> {
    tls::install_crypto_provider();
    let mut builder =
        TlsParameters::builder(cfg.host.clone()).certificate_store(CertificateStore::WebpkiRoots);
    for (i, der) in cfg.extra_roots.iter().enumerate() {
        let cert = lettre::transport::smtp::client::Certificate::from_der(der.clone())
            .map_err(|e| crate::errors::bad_extra_root(i, &e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| endpoint.tls_failed(&e.to_string()))
}
