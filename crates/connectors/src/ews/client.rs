//! The HTTP side of the EWS connector: SOAP 1.1 over HTTPS with reqwest, the
//! profile's credentials on every request (Basic for a service account, or an
//! OAuth bearer token for hybrid modern authentication; NTLM is refused, see
//! [`EwsAuth::Ntlm`]), impersonation of the mailbox (the SOAP header and the
//! `X-AnchorMailbox` HTTP header, which routes the request to the mailbox's
//! server), redirects never followed (credentials stay with the configured
//! host), and `ErrorServerBusy` waited out and retried (see `throttle`).

use std::sync::Arc;
use std::time::Duration;

use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::secret::Secret;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use roxmltree::Node;

use super::errors::{EwsError, Failed, classify, classify_status};
use super::soap::{Answer, MessageError, envelope, read_answer};
use super::throttle::{MAILBOX_CONCURRENCY, MailboxLimiter, RetryPolicy, plan_back_off};
use crate::errors::{Endpoint, error};
use crate::graph::AccessTokens;

/// How the connector proves who it is.
#[derive(Clone)]
pub enum EwsAuth {
    /// A service account's user name (`DOMAIN\user` or `user@domain`) and password,
    /// sent as HTTP Basic authentication (over HTTPS only, unless the profile
    /// allows plaintext).
    Basic { user: String, password: Secret },
    /// A bearer token for `https://<exchange host>/.default` (hybrid modern
    /// authentication), e.g. [`super::ExchangeTokens`] over the identity layer's
    /// app-only tokens.
    OAuth(Arc<dyn AccessTokens>),
    /// NTLM is not supported: it authenticates one TCP connection, which reqwest's
    /// connection pool cannot pin, and no maintained NTLM crate fits the HTTP
    /// stack. A client with it is refused with a configuration error saying to
    /// enable Basic authentication (over HTTPS) or OAuth.
    Ntlm { user: String, password: Secret },
}

impl std::fmt::Debug for EwsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EwsAuth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .finish_non_exhaustive(),
            EwsAuth::OAuth(_) => f.write_str("OAuth"),
            EwsAuth::Ntlm { user, .. } => f
                .debug_struct("Ntlm")
                .field("user", user)
                .finish_non_exhaustive(),
        }
    }
}

/// Where Exchange is, how to authenticate and whom to act as.
#[derive(Debug, Clone)]
pub struct EwsConfig {
    /// The EWS endpoint, e.g. `https://mail.contoso.com/EWS/Exchange.asmx`.
    pub url: String,
    pub auth: EwsAuth,
    /// The mailbox to act as through `ApplicationImpersonation` (its primary SMTP
    /// address); `None` acts as the authenticated account's own mailbox.
    pub impersonate: Option<String>,
    /// The bound of each request.
    pub timeout: Duration,
    /// Extra trusted CA certificates (DER), for a server with an internal CA.
    pub extra_roots: Vec<Vec<u8>>,
    /// `http://` URLs are refused unless the profile allows plaintext.
    pub allow_plaintext: bool,
    /// How often and how long `ErrorServerBusy` is waited out before the
    /// failure goes to the engine.
    pub retry: RetryPolicy,
    /// Requests at once per mailbox.
    pub mailbox_concurrency: usize,
    /// Told of every answer and every back-off (metrics, tests); none by default.
    pub observer: Option<EwsObserver>,
}

impl EwsConfig {
    pub fn new(url: impl Into<String>, auth: EwsAuth) -> EwsConfig {
        EwsConfig {
            url: url.into(),
            auth,
            impersonate: None,
            timeout: Duration::from_secs(60),
            extra_roots: Vec::new(),
            allow_plaintext: false,
            retry: RetryPolicy::default(),
            mailbox_concurrency: MAILBOX_CONCURRENCY,
            observer: None,
        }
    }
}

/// What a client tells its observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EwsEvent {
    /// An HTTP answer (each retry counts again); `busy` when it said Exchange
    /// was busy (`ErrorServerBusy`, or HTTP 429/503 without an EWS answer), so
    /// that a [`EwsEvent::BackedOff`] follows unless the retries are spent.
    Answered { status: u16, busy: bool },
    /// Exchange said it was busy (`code`, usually `ErrorServerBusy`) and the
    /// client waits `wait` before trying again.
    BackedOff { code: String, wait: Duration },
}

/// A callback told of each [`EwsEvent`]; it must be quick (it runs inline).
#[derive(Clone)]
pub struct EwsObserver(pub Arc<dyn Fn(EwsEvent) + Send + Sync>);

impl std::fmt::Debug for EwsObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EwsObserver")
    }
}

struct Inner {
    http: reqwest::Client,
    url: Url,
    endpoint: Endpoint,
    cfg: EwsConfig,
    limiter: MailboxLimiter,
}

/// An EWS client. Cheap to clone; [`EwsClient::impersonating`] gives a client for
/// another mailbox that shares the connection pool and the per-mailbox limits.
#[derive(Clone)]
pub struct EwsClient {
    inner: Arc<Inner>,
    impersonate: Option<String>,
}

impl std::fmt::Debug for EwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsClient")
            .field("url", &self.inner.url.as_str())
            .field("impersonate", &self.impersonate)
            .finish_non_exhaustive()
    }
}

/// A successful request's response messages, each a value or Exchange's refusal.
pub(crate) type Outcomes<T> = Vec<Result<T, MessageError>>;

impl EwsClient {
    /// # Errors
    /// A permanent, profile-wide error for an unusable URL, extra root or
    /// authentication method (NTLM).
    pub fn new(cfg: EwsConfig) -> Result<EwsClient, SyncError> {
        if let EwsAuth::Ntlm { .. } = cfg.auth {
            return Err(ntlm_refused());
        }
        let url = Url::parse(cfg.url.trim()).map_err(|e| bad_url(&cfg.url, &e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if cfg.allow_plaintext => {}
            "http" => {
                return Err(bad_url(
                    &cfg.url,
                    "it is http://, and credentials are sent over HTTPS only unless the profile allows plaintext",
                ));
            }
            _ => return Err(bad_url(&cfg.url, "it is not an https:// URL")),
        }
        let Some(host) = url.host_str().map(str::to_owned) else {
            return Err(bad_url(&cfg.url, "it has no host"));
        };
        let tls = crate::tls::client_config(&cfg.extra_roots)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mailbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad_url(&cfg.url, &e.to_string()))?;
        let endpoint = Endpoint {
            protocol: "EWS",
            port: url.port_or_known_default().unwrap_or(443),
            host,
        };
        let impersonate = cfg.impersonate.clone();
        let limiter = MailboxLimiter::new(cfg.mailbox_concurrency);
        Ok(EwsClient {
            inner: Arc::new(Inner {
                http,
                url,
                endpoint,
                cfg,
                limiter,
            }),
            impersonate,
        })
    }

    /// The same client acting as `address` (its primary SMTP address).
    pub fn impersonating(&self, address: &str) -> EwsClient {
        EwsClient {
            inner: Arc::clone(&self.inner),
            impersonate: Some(address.trim().to_owned()),
        }
    }

    /// The mailbox requests act as, for messages: the impersonated address, or
    /// the authenticated account.
    pub fn mailbox(&self) -> &str {
        match (&self.impersonate, &self.inner.cfg.auth) {
            (Some(address), _) => address,
            (None, EwsAuth::Basic { user, .. } | EwsAuth::Ntlm { user, .. }) => user,
            (None, EwsAuth::OAuth(_)) => "of the application",
        }
    }

    /// The EWS URL.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// A `Failed` for this client's mailbox.
    pub(crate) fn failed<'a>(
        &'a self,
        what: &'a str,
        target: super::errors::Target,
        subject: &'a str,
    ) -> Failed<'a> {
        Failed {
            what,
            mailbox: self.mailbox(),
            target,
            subject,
        }
    }

    /// Sends one operation (`body` is the `<m:Operation>` element) and reads its
    /// response messages with `read`, waiting out `ErrorServerBusy` within the
    /// retry policy and trying a refused token once more with a new one.
    ///
    /// # Errors
    /// Transport failures, a fault, an answer that is not EWS's, each classified.
    pub(crate) async fn call<T>(
        &self,
        body: &str,
        f: &Failed<'_>,
        mut read: impl FnMut(Node<'_, '_>) -> Result<T, String>,
    ) -> Result<Outcomes<T>, EwsError> {
        let request = envelope(body, self.impersonate.as_deref());
        let policy = self.inner.cfg.retry;
        let key = self.mailbox().to_owned();
        let mut retries = 0;
        let mut refreshed = false;
        loop {
            let (status, retry_after, text) = {
                let _permit = self.inner.limiter.acquire(&key).await;
                self.attempt(&request).await?
            };
            let oauth = matches!(self.inner.cfg.auth, EwsAuth::OAuth(_));
            if status == 401 {
                self.tell(EwsEvent::Answered {
                    status,
                    busy: false,
                });
                if let EwsAuth::OAuth(tokens) = &self.inner.cfg.auth
                    && !refreshed
                {
                    refreshed = true;
                    tokens.invalidate();
                    continue;
                }
                return Err(classify_status(401, "", None, f, oauth, self.url()).into());
            }
            // Ok: Exchange was busy; Err: what the call returns.
            let read: Result<MessageError, Result<Outcomes<T>, EwsError>> =
                match read_answer(&text, &mut read) {
                    Ok(Answer::Fault(e)) if e.code == "ErrorServerBusy" => Ok(e),
                    Ok(Answer::Fault(e)) => Err(Err(classify(&e, f))),
                    Ok(Answer::Messages(messages)) => match all_busy(&messages) {
                        // Every message is "busy": nothing was done, so all of it is
                        // sent again. Otherwise each message keeps its own outcome.
                        Some(busy) => Ok(busy),
                        None => Err(Ok(messages)),
                    },
                    Err(why) if (200..300).contains(&status) => {
                        Err(Err(self.inner.endpoint.protocol(&why).into()))
                    }
                    Err(_) if matches!(status, 429 | 503) => Ok(MessageError {
                        code: format!("HTTP {status}"),
                        text: String::new(),
                        back_off: retry_after,
                    }),
                    Err(_) => {
                        let detail = snippet(&text);
                        Err(Err(classify_status(
                            status,
                            &detail,
                            retry_after,
                            f,
                            oauth,
                            self.url(),
                        )
                        .into()))
                    }
                };
            self.tell(EwsEvent::Answered {
                status,
                busy: read.is_ok(),
            });
            let busy = match read {
                Ok(busy) => busy,
                Err(done) => return done,
            };
            retries += 1;
            match plan_back_off(busy.back_off, retries, policy) {
                Some(wait) => {
                    tracing::debug!(
                        mailbox = key,
                        what = f.what,
                        code = busy.code,
                        wait_ms = wait.as_millis() as u64,
                        "Exchange is busy; waiting"
                    );
                    self.tell(EwsEvent::BackedOff {
                        code: busy.code.clone(),
                        wait,
                    });
                    tokio::time::sleep(wait).await;
                }
                None if busy.code.starts_with("HTTP ") => {
                    return Err(
                        classify_status(status, "", busy.back_off, f, oauth, self.url()).into(),
                    );
                }
                None => return Err(classify(&busy, f)),
            }
        }
    }

    /// The one outcome of a request about one thing.
    ///
    /// # Errors
    /// Exchange's refusal, classified; no message at all is a protocol error.
    pub(crate) fn single<T>(&self, outcomes: Outcomes<T>, f: &Failed<'_>) -> Result<T, EwsError> {
        match outcomes.into_iter().next() {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(classify(&e, f)),
            None => Err(self
                .protocol(&format!("no response message when asked to {}", f.what))
                .into()),
        }
    }

    /// An answer this client did not expect, in words.
    pub(crate) fn protocol(&self, why: &str) -> SyncError {
        self.inner.endpoint.protocol(why)
    }

    fn tell(&self, event: EwsEvent) {
        if let Some(EwsObserver(tell)) = &self.inner.cfg.observer {
            tell(event);
        }
    }

    async fn attempt(&self, request: &str) -> Result<(u16, Option<Duration>, String), SyncError> {
        let mut builder = self
            .inner
            .http
            .post(self.inner.url.clone())
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header(reqwest::header::ACCEPT, "text/xml");
        if let Some(address) = &self.impersonate {
            // Routes the request to the server that holds the mailbox (Exchange
            // 2013+: "Add the X-AnchorMailbox header when using impersonation").
            builder = builder.header("X-AnchorMailbox", address.as_str());
        }
        builder = match &self.inner.cfg.auth {
            EwsAuth::Basic { user, password } => builder.basic_auth(user, Some(password.expose())),
            EwsAuth::OAuth(tokens) => {
                let token = tokens.access_token().await?;
                builder.header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            }
            EwsAuth::Ntlm { .. } => return Err(ntlm_refused()),
        };
        let response = builder
            .body(request.to_owned())
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(|e| self.transport(&e))?;
        Ok((
            status,
            retry_after,
            scrub_secret(&text, &self.inner.cfg.auth),
        ))
    }

    /// A reqwest failure, classified by its cause.
    fn transport(&self, e: &reqwest::Error) -> SyncError {
        let endpoint = &self.inner.endpoint;
        if e.is_timeout() {
            return endpoint.timed_out("a request", self.inner.cfg.timeout);
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(tls) = s.downcast_ref::<rustls::Error>() {
                return endpoint.tls(tls);
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return endpoint.io(io);
            }
            source = s.source();
        }
        if e.is_connect() {
            return endpoint.unreachable(&e.to_string());
        }
        endpoint.connection_lost(&e.to_string())
    }
}

/// The first refusal when every message is `ErrorServerBusy` (and there is one).
fn all_busy<T>(messages: &Outcomes<T>) -> Option<MessageError> {
    let mut first = None;
    for m in messages {
        match m {
            Err(e) if e.code == "ErrorServerBusy" => {
                first.get_or_insert_with(|| e.clone());
            }
            _ => return None,
        }
    }
    first
}

/// An answer's first words, for a message (HTML error pages are long).
fn snippet(text: &str) -> String {
    let t: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() {
        return String::new();
    }
    let cut: String = t.chars().take(160).collect();
    format!(": {cut}")
}

/// Removes the password from a server's text, in case it echoes it.
fn scrub_secret(text: &str, auth: &EwsAuth) -> String {
    match auth {
        EwsAuth::Basic { password, .. } => crate::errors::scrub(text, password.expose()),
        _ => text.to_owned(),
    }
}

fn bad_url(url: &str, why: &str) -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Profile,
        format!("the EWS URL {url} cannot be used: {why}"),
        "Set the profile's EWS URL to https://<server>/EWS/Exchange.asmx (or turn Auto Discover on)",
    )
}

fn ntlm_refused() -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Profile,
        "NTLM authentication is not supported for Exchange Server profiles".to_owned(),
        "Enable Basic authentication on the EWS virtual directory (Set-WebServicesVirtualDirectory -Identity \"<server>\\EWS (Default Web Site)\" -BasicAuthentication $true; it is used over HTTPS only) and choose Basic in the profile, or use OAuth with hybrid modern authentication",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic() -> EwsAuth {
        EwsAuth::Basic {
            user: "CONTOSO\\svc-mailbridge".to_owned(),
            password: Secret::new("hunter22"),
        }
    }

    #[test]
    fn unusable_configurations_are_refused_for_the_profile() {
        let cases = [
            ("not a url", basic(), false, "cannot be used"),
            (
                "ftp://mail.contoso.com/EWS/Exchange.asmx",
                basic(),
                false,
                "not an https",
            ),
            (
                "http://mail.contoso.com/EWS/Exchange.asmx",
                basic(),
                false,
                "plaintext",
            ),
            (
                "https://mail.contoso.com/EWS/Exchange.asmx",
                EwsAuth::Ntlm {
                    user: "u".to_owned(),
                    password: Secret::new("p"),
                },
                false,
                "NTLM",
            ),
        ];
        for (url, auth, plaintext, words) in cases {
            let mut cfg = EwsConfig::new(url, auth);
            cfg.allow_plaintext = plaintext;
            let e = EwsClient::new(cfg).expect_err(url);
            assert_eq!(
                (e.class, e.scope),
                (ErrorClass::Permanent, ErrorScope::Profile),
                "{url}"
            );
            assert!(e.message.contains(words), "{url}: {}", e.message);
        }
        let mut lab = EwsConfig::new("http://127.0.0.1:8080/EWS/Exchange.asmx", basic());
        lab.allow_plaintext = true;
        assert!(EwsClient::new(lab).is_ok());
    }

    #[test]
    fn ntlm_is_refused_with_the_way_to_basic_or_oauth() {
        let e = EwsClient::new(EwsConfig::new(
            "https://mail.contoso.com/EWS/Exchange.asmx",
            EwsAuth::Ntlm {
                user: "u".to_owned(),
                password: Secret::new("secret-pw"),
            },
        ))
        .expect_err("NTLM");
        let fix = e.fix.unwrap_or_default();
        assert!(
            fix.contains("BasicAuthentication $true") && fix.contains("OAuth"),
            "{fix}"
        );
        assert!(!e.message.contains("secret-pw"));
    }

    #[test]
    fn the_mailbox_named_is_the_impersonated_one_or_the_account() {
        let client = EwsClient::new(EwsConfig::new(
            "https://mail.contoso.com/EWS/Exchange.asmx",
            basic(),
        ))
        .expect("client");
        assert_eq!(client.mailbox(), "CONTOSO\\svc-mailbridge");
        let bob = client.impersonating(" bob@contoso.com ");
        assert_eq!(bob.mailbox(), "bob@contoso.com");
        assert!(format!("{bob:?}").contains("bob@contoso.com"));
        assert!(!format!("{:?}", basic()).contains("hunter22"));
    }

    #[test]
    fn long_answers_are_cut_and_echoed_passwords_hidden() {
        assert_eq!(snippet(""), "");
        assert_eq!(
            snippet("<html>\n  Bad   gateway </html>"),
            ": <html> Bad gateway </html>"
        );
        assert_eq!(snippet(&"x".repeat(500)).len(), 162);
        assert_eq!(scrub_secret("echo hunter22", &basic()), "echo ***");
    }
}
