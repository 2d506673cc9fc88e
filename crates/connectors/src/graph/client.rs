//! The HTTP side of the Graph connector: one [`GraphClient`] per profile (cheap to
//! clone; clones share the connection pool and the per-mailbox limits), a bearer
//! token from an [`AccessTokens`] provider on every request, and
//! `Prefer: IdType="ImmutableId"` so that message ids survive moves
//! (learn.microsoft.com/graph/outlook-immutable-id). Throttled requests wait their
//! `Retry-After` and are retried (see `throttle`); a refused token is dropped from
//! the provider's cache and tried once more.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::secret::Secret;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, Url};

use super::errors::{Failed, GraphErrorBody, classify, parse_error_body};
use super::throttle::{
    MAILBOX_CONCURRENCY, MailboxLimiter, RetryPolicy, parse_retry_after, plan_retry,
};
use crate::errors::{Endpoint, error};

/// Graph's global endpoint.
pub const GRAPH_BASE_URL: &str = "https://graph.microsoft.com/v1.0";

/// The header that asks for immutable ids on every request.
pub(crate) const PREFER_IMMUTABLE_IDS: &str = "IdType=\"ImmutableId\"";

/// A future returned by [`AccessTokens::access_token`].
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Secret, SyncError>> + Send + 'a>>;

/// Where access tokens for Graph come from: the profile's app-only credentials
/// (client credentials with a certificate or secret) in production, a fixed token
/// in tests. Implementations cache tokens until shortly before they expire.
pub trait AccessTokens: Send + Sync {
    /// A token for `https://graph.microsoft.com/.default`.
    ///
    /// # Errors
    /// A classified [`SyncError`] (authentication failures are permanent, profile-wide).
    fn access_token(&self) -> TokenFuture<'_>;

    /// Graph refused the last token (401): forget it so the next call gets a new one.
    fn invalidate(&self) {}
}

/// A fixed token (delegated tokens handed in from outside, and tests).
#[derive(Debug, Clone)]
pub struct StaticToken(pub Secret);

impl AccessTokens for StaticToken {
    fn access_token(&self) -> TokenFuture<'_> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// Where Graph is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// [`GRAPH_BASE_URL`], or a national cloud's, or a test server's (`http://127.0.0.1:PORT/v1.0`).
    pub base_url: String,
    /// The bound of each request.
    pub timeout: Duration,
    /// Requests at once per mailbox (Outlook allows 4 per app).
    pub mailbox_concurrency: usize,
    pub retry: RetryPolicy,
    /// Messages per delta page (`Prefer: odata.maxpagesize`).
    pub delta_page_size: u32,
    /// Extra trusted CA certificates (DER), for a lab proxy.
    pub extra_roots: Vec<Vec<u8>>,
    /// Told of every answer Graph gives (for metrics); none by default.
    pub observer: Option<GraphObserver>,
}

/// What a client tells its observer: one answer from Graph per request sent
/// (retries count again), with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphAnswer {
    pub status: u16,
}

impl GraphAnswer {
    /// Graph asked to wait (429 throttled, 503 unavailable, 504 gateway timeout).
    pub fn throttled(self) -> bool {
        super::throttle::is_retryable(self.status)
    }
}

/// A callback told of each [`GraphAnswer`]; it must be quick (it runs inline).
#[derive(Clone)]
pub struct GraphObserver(pub Arc<dyn Fn(GraphAnswer) + Send + Sync>);

impl std::fmt::Debug for GraphObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphObserver")
    }
}

impl Default for GraphConfig {
    fn default() -> GraphConfig {
        GraphConfig {
            base_url: GRAPH_BASE_URL.to_owned(),
            timeout: Duration::from_secs(60),
            mailbox_concurrency: MAILBOX_CONCURRENCY,
            retry: RetryPolicy::default(),
            delta_page_size: 100,
            extra_roots: Vec::new(),
            observer: None,
        }
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json(serde_json::Value),
    /// Base64 MIME for `sendMail` (`Content-Type: text/plain`).
    Text(String),
}

/// One request, relative to the base URL (`/users/...`) or a link Graph returned.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub target: String,
    pub body: Body,
    /// More `Prefer` preferences (e.g. `odata.maxpagesize=100`).
    pub prefer: Option<String>,
    /// `If-Match`: the item's `@odata.etag`, for a write that must not overwrite
    /// a change made meanwhile (412 otherwise).
    pub if_match: Option<String>,
}

/// A response, whatever its status.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?;
        parse_retry_after(value, chrono::Utc::now())
    }

    pub(crate) fn error_body(&self) -> GraphErrorBody {
        parse_error_body(&self.body)
    }

    /// `Ok(self)` for a success, else the classified error.
    pub(crate) fn check(self, f: &Failed<'_>) -> Result<Response, SyncError> {
        if self.is_success() {
            return Ok(self);
        }
        Err(classify(
            self.status,
            &self.error_body(),
            self.retry_after(),
            f,
        ))
    }
}

struct Inner {
    http: reqwest::Client,
    cfg: GraphConfig,
    base: Url,
    endpoint: Endpoint,
    tokens: Arc<dyn AccessTokens>,
    limiter: MailboxLimiter,
}

/// A Graph client for one profile.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.inner.cfg.base_url)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// A client of `cfg.base_url` authenticating with `tokens`. Create one per
    /// profile and share it: the per-mailbox limit holds across its clones only.
    ///
    /// # Errors
    /// A permanent, profile-wide error for an unusable base URL or extra root.
    pub fn new(cfg: GraphConfig, tokens: Arc<dyn AccessTokens>) -> Result<GraphClient, SyncError> {
        let base = Url::parse(cfg.base_url.trim_end_matches('/'))
            .map_err(|e| bad_base_url(&cfg.base_url, &e.to_string()))?;
        let Some(host) = base.host_str().map(str::to_owned) else {
            return Err(bad_base_url(&cfg.base_url, "it has no host"));
        };
        let tls = crate::tls::client_config(&cfg.extra_roots)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| bad_base_url(&cfg.base_url, &e.to_string()))?;
        let endpoint = Endpoint {
            protocol: "Microsoft Graph",
            port: base.port_or_known_default().unwrap_or(443),
            host,
        };
        let limiter = MailboxLimiter::new(cfg.mailbox_concurrency);
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                base,
                endpoint,
                tokens,
                limiter,
                cfg,
            }),
        })
    }

    /// The mail of one mailbox (a user id or principal name, as Graph's `/users/{id}`
    /// takes it). Name each mailbox one way only: the concurrency limit is per name.
    pub fn mailbox(&self, user: &str) -> super::GraphMailbox {
        super::GraphMailbox::new(self.clone(), user)
    }

    pub(crate) fn config(&self) -> &GraphConfig {
        &self.inner.cfg
    }

    /// The absolute URL of a target: a path below the base URL, or a link Graph gave
    /// (which must point at the same origin, so that the token goes nowhere else).
    fn url(&self, target: &str) -> Result<Url, SyncError> {
        if target.starts_with('/') {
            let joined = format!("{}{target}", self.inner.base.as_str().trim_end_matches('/'));
            return Url::parse(&joined).map_err(|e| self.foreign_link(target, &e.to_string()));
        }
        let url = Url::parse(target).map_err(|e| self.foreign_link(target, &e.to_string()))?;
        if url.origin() != self.inner.base.origin() {
            return Err(self.foreign_link(target, "it points at another host"));
        }
        Ok(url)
    }

    fn foreign_link(&self, target: &str, why: &str) -> SyncError {
        let shown: String = target.chars().take(120).collect();
        error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!("Microsoft Graph returned a link that cannot be followed ({why}): {shown}"),
            "Check the profile's Graph base URL; report this if it persists",
        )
    }

    /// Sends a request for `mailbox` within its concurrency limit, retrying throttled
    /// answers after their `Retry-After` and a refused token once with a new one.
    /// Returns the final answer whatever its status.
    ///
    /// # Errors
    /// Transport failures (classified), and a throttled request whose retries ran out
    /// or whose `Retry-After` is beyond the policy's longest wait (transient, with it).
    pub(crate) async fn send(
        &self,
        mailbox: &str,
        req: &Request,
        what: &str,
    ) -> Result<Response, SyncError> {
        let url = self.url(&req.target)?;
        let policy = self.inner.cfg.retry;
        let mut retries = 0;
        let mut refreshed = false;
        loop {
            let response = {
                let _permit = self.inner.limiter.acquire(mailbox).await;
                self.attempt(&url, req).await?
            };
            if let Some(GraphObserver(tell)) = &self.inner.cfg.observer {
                tell(GraphAnswer {
                    status: response.status,
                });
            }
            if response.status == 401 && !refreshed {
                refreshed = true;
                self.inner.tokens.invalidate();
                continue;
            }
            retries += 1;
            // A gateway timeout can come after the service did the work: a POST
            // (sendMail above all) is not repeated here; its caller decides (the
            // outgoing workload looks in Sent Items before sending again).
            if response.status == 504 && req.method == Method::POST {
                return Ok(response);
            }
            match plan_retry(response.status, response.retry_after(), retries, policy) {
                Some(wait) => {
                    tracing::debug!(
                        mailbox,
                        what,
                        status = response.status,
                        wait_ms = wait.as_millis() as u64,
                        "Graph throttled; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                None => return Ok(response),
            }
        }
    }

    async fn attempt(&self, url: &Url, req: &Request) -> Result<Response, SyncError> {
        let token = self.inner.tokens.access_token().await?;
        let prefer = match &req.prefer {
            Some(p) => format!("{PREFER_IMMUTABLE_IDS}, {p}"),
            None => PREFER_IMMUTABLE_IDS.to_owned(),
        };
        let mut builder = self
            .inner
            .http
            .request(req.method.clone(), url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header("Prefer", prefer);
        if let Some(etag) = &req.if_match {
            builder = builder.header(reqwest::header::IF_MATCH, etag.as_str());
        }
        builder = match &req.body {
            Body::None => builder,
            Body::Json(v) => builder.json(v),
            Body::Text(t) => builder.header(CONTENT_TYPE, "text/plain").body(t.clone()),
        };
        let response = builder.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport(&e))?
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// A reqwest failure, classified by its cause.
    fn transport(&self, e: &reqwest::Error) -> SyncError {
        let endpoint = &self.inner.endpoint;
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
        if e.is_timeout() {
            return endpoint.timed_out("a request", self.inner.cfg.timeout);
        }
        if e.is_connect() {
            return endpoint.unreachable(&e.to_string());
        }
        endpoint.connection_lost(&e.to_string())
    }
}

fn bad_base_url(url: &str, why: &str) -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Profile,
        format!("the Microsoft Graph URL {url} cannot be used: {why}"),
        "Set the profile's Graph URL to https://graph.microsoft.com/v1.0 (or the national cloud's)",
    )
}

/// Percent-encodes one path segment (ids hold `=`, `+`, `/` and `-`).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_escape_everything_but_unreserved_characters() {
        let cases = [
            ("AAMkAD-x_y.z~", "AAMkAD-x_y.z~"),
            ("AQMk+a/b==", "AQMk%2Ba%2Fb%3D%3D"),
            ("bob@example.org", "bob%40example.org"),
            ("a b", "a%20b"),
        ];
        for (raw, expected) in cases {
            assert_eq!(segment(raw), expected, "{raw}");
        }
    }

    #[test]
    fn links_to_another_origin_are_refused() {
        let client = GraphClient::new(
            GraphConfig {
                base_url: "https://graph.microsoft.com/v1.0".to_owned(),
                ..GraphConfig::default()
            },
            Arc::new(StaticToken(Secret::new("t"))),
        )
        .expect("a client");
        let ok = [
            "/users/x/messages",
            "https://graph.microsoft.com/v1.0/users/x/mailFolders('inbox')/messages/delta?$deltatoken=a",
        ];
        for target in ok {
            assert!(client.url(target).is_ok(), "{target}");
        }
        let refused = [
            "https://evil.example.org/v1.0/users/x",
            "http://graph.microsoft.com/v1.0/users/x",
            "https://graph.microsoft.com:8443/v1.0/users/x",
        ];
        for target in refused {
            let e = client.url(target).expect_err(target);
            assert_eq!(
                (e.class, e.scope),
                (ErrorClass::Permanent, ErrorScope::Mailbox)
            );
        }
    }
}
