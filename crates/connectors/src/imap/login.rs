//! Connecting and logging in: TCP, TLS as the policy says, the greeting,
//! authentication, and the capabilities after login.

use async_imap::Authenticator;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::location::TlsPolicy;

use super::preauth::PreAuth;
use super::{Auth, Capabilities, ImapConfig, ImapSession, errors::response_text};
use crate::Trace;
use crate::errors::{Endpoint, error, scrub};
use crate::tls::{self, Stream};

pub(super) async fn connect(
    cfg: &ImapConfig,
    trace: &mut Trace<'_>,
) -> Result<ImapSession, SyncError> {
    let endpoint = Endpoint {
        protocol: "IMAP",
        host: cfg.host.clone(),
        port: cfg.port,
    };
    let tcp = crate::net::connect_tcp(&endpoint, cfg.timeout, trace).await?;
    let secured = secure(cfg, &endpoint, tcp).await;
    let (pre, capabilities) = trace
        .step("tls", secured, |(_, _, detail)| detail.clone())
        .map(|(pre, caps, _)| (pre, caps))?;
    let logged_in = authenticate(cfg, &endpoint, pre, &capabilities).await;
    let (session, _) = trace.step("authenticate", logged_in, |(_, mechanism)| {
        format!("logged in as {} with {mechanism}", cfg.auth.username())
    })?;
    let mut session = ImapSession {
        session,
        capabilities: Capabilities::default(),
        endpoint,
        username: cfg.auth.username().to_owned(),
        timeout: cfg.timeout,
        selected: None,
        changed: false,
    };
    // QUIRK_CAPABILITY_AFTER_LOGIN: the list before login is not the real one.
    let result = tokio::time::timeout(cfg.timeout, session.session.capabilities()).await;
    let capabilities = session.finish("CAPABILITY", result)?;
    session.capabilities = Capabilities::from_atoms(capabilities.iter().map(capability_name));
    Ok(session)
}

fn capability_name(c: &async_imap::types::Capability) -> String {
    use async_imap::types::Capability;
    match c {
        Capability::Imap4rev1 => "IMAP4rev1".to_owned(),
        Capability::Auth(mechanism) => format!("AUTH={mechanism}"),
        Capability::Atom(atom) => atom.clone(),
    }
}

/// TLS as the policy says, the greeting and the capabilities before login, with
/// the detail of the `tls` step.
async fn secure<'a>(
    cfg: &ImapConfig,
    endpoint: &'a Endpoint,
    tcp: tokio::net::TcpStream,
) -> Result<(PreAuth<'a>, Capabilities, String), SyncError> {
    let timeout = cfg.timeout;
    if cfg.tls == TlsPolicy::Implicit {
        let stream = tls::handshake(tcp, endpoint, &cfg.extra_roots, timeout).await?;
        let detail = established(&stream, endpoint);
        let mut pre = PreAuth::new(stream, endpoint, timeout);
        let caps = greet(&mut pre, endpoint).await?;
        return Ok((pre, caps, detail));
    }
    let mut pre = PreAuth::new(Stream::Plain(tcp), endpoint, timeout);
    let caps = greet(&mut pre, endpoint).await?;
    let offered = caps.has("STARTTLS");
    match (cfg.tls, offered) {
        (TlsPolicy::StartTlsRequired | TlsPolicy::StartTlsIfOffered, true) => {
            let tcp = pre.starttls().await?;
            let stream = tls::handshake(tcp, endpoint, &cfg.extra_roots, timeout).await?;
            let detail = format!("STARTTLS: {}", established(&stream, endpoint));
            let mut pre = PreAuth::new(stream, endpoint, timeout);
            // Capabilities from before STARTTLS must be forgotten (RFC 3501 6.2.1).
            let caps = Capabilities::from_atoms(pre.capability().await?);
            Ok((pre, caps, detail))
        }
        (TlsPolicy::StartTlsRequired, false) => Err(endpoint.starttls_missing()),
        (TlsPolicy::StartTlsIfOffered, false) => Ok((
            pre,
            caps,
            "the server does not offer STARTTLS; continuing without TLS as the profile allows plaintext".to_owned(),
        )),
        _ => Ok((
            pre,
            caps,
            "not used: the profile allows plaintext".to_owned(),
        )),
    }
}

fn established(stream: &Stream, endpoint: &Endpoint) -> String {
    format!(
        "{} established; the certificate of {} is trusted",
        stream.tls_version().unwrap_or_else(|| "TLS".to_owned()),
        endpoint.host
    )
}

/// Reads the greeting and the capabilities before login.
async fn greet(pre: &mut PreAuth<'_>, endpoint: &Endpoint) -> Result<Capabilities, SyncError> {
    let greeting = pre.greeting().await?;
    if greeting.preauth {
        // A login nobody asked for cannot be trusted to be the configured user (and
        // is how STARTTLS-stripping attacks start).
        return Err(endpoint.protocol("the server logged in without credentials (PREAUTH)"));
    }
    match greeting.capabilities {
        Some(atoms) => Ok(Capabilities::from_atoms(atoms)),
        None => Ok(Capabilities::from_atoms(pre.capability().await?)),
    }
}

/// Logs in with the best mechanism both sides know; returns its name.
async fn authenticate(
    cfg: &ImapConfig,
    endpoint: &Endpoint,
    pre: PreAuth<'_>,
    caps: &Capabilities,
) -> Result<(super::Session, &'static str), SyncError> {
    let plaintext = !pre.is_tls();
    let client = async_imap::Client::new(super::eof::EofIsError(pre.into_stream()?));
    let user = cfg.auth.username();
    let (mechanism, attempt) = match &cfg.auth {
        Auth::Password { username, password } => {
            if caps.has("AUTH=PLAIN") {
                let plain = Plain(format!("\0{username}\0{}", password.expose()));
                let fut = client.authenticate("PLAIN", plain);
                (
                    "AUTHENTICATE PLAIN",
                    tokio::time::timeout(cfg.timeout, fut).await,
                )
            } else if caps.has("LOGINDISABLED") {
                return Err(no_mechanism(endpoint, "password login", plaintext));
            } else {
                let fut = client.login(username, password.expose());
                ("LOGIN", tokio::time::timeout(cfg.timeout, fut).await)
            }
        }
        Auth::OAuth2 {
            username,
            access_token,
        } => {
            let (name, mechanism, initial, after_error) = if caps.has("AUTH=XOAUTH2") {
                (
                    "AUTHENTICATE XOAUTH2",
                    "XOAUTH2",
                    crate::sasl::xoauth2(username, access_token.expose()),
                    "",
                )
            } else if caps.has("AUTH=OAUTHBEARER") {
                (
                    "AUTHENTICATE OAUTHBEARER",
                    "OAUTHBEARER",
                    crate::sasl::oauthbearer(username, &cfg.host, cfg.port, access_token.expose()),
                    "\x01",
                )
            } else {
                return Err(no_mechanism(
                    endpoint,
                    "OAuth2 (XOAUTH2 or OAUTHBEARER)",
                    false,
                ));
            };
            let fut = client.authenticate(
                mechanism,
                Bearer {
                    initial,
                    after_error,
                    sent: false,
                },
            );
            (name, tokio::time::timeout(cfg.timeout, fut).await)
        }
    };
    match attempt {
        Err(_) => Err(endpoint.timed_out(mechanism, cfg.timeout)),
        Ok(Ok(session)) => Ok((session, mechanism)),
        Ok(Err((e, _client))) => Err(login_failed(endpoint, user, cfg.auth.secret(), &e)),
    }
}

fn login_failed(
    endpoint: &Endpoint,
    user: &str,
    secret: &str,
    e: &async_imap::error::Error,
) -> SyncError {
    use async_imap::error::Error;
    match e {
        Error::No(text) => {
            let text = scrub(&response_text(text), secret);
            if text.to_ascii_uppercase().contains("UNAVAILABLE") {
                error(
                    crate::errors::TRANSIENT,
                    ErrorScope::Mailbox,
                    format!("the IMAP server {endpoint} cannot log in {user} right now: {text}"),
                    "Nothing to do: it is retried later",
                )
            } else {
                endpoint.auth_rejected(user, &text)
            }
        }
        Error::Validate(_) => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "the user name or password for {user} holds a line break, which IMAP cannot send"
            ),
            "Check the mailbox's user name and password, then run Test & Enable",
        ),
        other => {
            let classified = super::errors::classify(endpoint, "the login", other);
            SyncError {
                message: scrub(&classified.message, secret),
                ..classified
            }
        }
    }
}

fn no_mechanism(endpoint: &Endpoint, what: &str, plaintext: bool) -> SyncError {
    let fix = if plaintext {
        "Use TLS (imaps:// or STARTTLS): the server accepts passwords only over TLS"
    } else {
        "Choose the authentication the server supports in the email server profile"
    };
    error(
        ErrorClass::Permanent,
        ErrorScope::Profile,
        format!("the IMAP server {endpoint} does not accept {what} on this connection"),
        fix,
    )
}

/// SASL PLAIN (RFC 4616): the whole answer at the first (empty) challenge.
struct Plain(String);

impl Authenticator for Plain {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        std::mem::take(&mut self.0)
    }
}

/// XOAUTH2 and OAUTHBEARER: the token first; `QUIRK_XOAUTH2_ERROR_CHALLENGE`: a
/// second challenge carries the server's JSON error and is answered (empty for
/// XOAUTH2, `^A` for OAUTHBEARER, RFC 7628 3.2.3) so that the tagged NO follows.
struct Bearer {
    initial: String,
    after_error: &'static str,
    sent: bool,
}

impl Authenticator for Bearer {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        if self.sent {
            self.after_error.to_owned()
        } else {
            self.sent = true;
            std::mem::take(&mut self.initial)
        }
    }
}
