//! The HTTP side of the DAV connector: one [`DavClient`] per mailbox (its own
//! credentials), Basic authentication on every request, redirects not followed
//! automatically (discovery follows them itself, on the same origin only, so that
//! credentials never go to another host), and every failure classified.

use std::time::Duration;

use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::secret::Secret;
use reqwest::header::{CONTENT_TYPE, ETAG, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, Url};

use super::errors::{DavError, Target, classify};
use super::xml::{Multistatus, parse_multistatus};
use crate::errors::{Endpoint, error};

/// Where the server is and whom to act as.
#[derive(Debug, Clone)]
pub struct DavConfig {
    /// The profile's DAV location: a context path (`https://dav.example.org/dav/`),
    /// or only the origin, from which `/.well-known/caldav` is tried (RFC 6764).
    pub base_url: String,
    pub user: String,
    pub password: Secret,
    /// The bound of each request.
    pub timeout: Duration,
    /// Extra trusted CA certificates (DER), for a lab server.
    pub extra_roots: Vec<Vec<u8>>,
}

impl DavConfig {
    pub fn new(base_url: impl Into<String>, user: impl Into<String>, password: Secret) -> Self {
        DavConfig {
            base_url: base_url.into(),
            user: user.into(),
            password,
            timeout: Duration::from_secs(60),
            extra_roots: Vec::new(),
        }
    }
}

/// A CalDAV/CardDAV client for one mailbox's user. Cheap to clone.
#[derive(Clone)]
pub struct DavClient {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    pub(crate) endpoint: Endpoint,
    pub(crate) user: String,
    password: Secret,
    timeout: Duration,
}

impl std::fmt::Debug for DavClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DavClient")
            .field("base", &self.base.as_str())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A response, whatever its status.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn etag(&self) -> Option<String> {
        let value = self.headers.get(ETAG)?.to_str().ok()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    pub(crate) fn location(&self) -> Option<String> {
        Some(self.headers.get(LOCATION)?.to_str().ok()?.to_owned())
    }

    fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?;
        value.trim().parse::<u64>().ok().map(Duration::from_secs)
    }
}

/// One request: method, target href (an absolute path on the server, or a full URL
/// of the same origin), headers and body.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub href: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<(&'static str, String)>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: &'a str, href: &'a str) -> Request<'a> {
        Request {
            method,
            href,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn xml(mut self, body: String) -> Self {
        self.body = Some(("application/xml; charset=utf-8", body));
        self
    }

    pub(crate) fn body(mut self, content_type: &'static str, body: String) -> Self {
        self.body = Some((content_type, body));
        self
    }
}

impl DavClient {
    /// # Errors
    /// A permanent, profile-wide error for an unusable URL or extra root.
    pub fn new(cfg: DavConfig) -> Result<DavClient, SyncError> {
        let base = Url::parse(&cfg.base_url).map_err(|e| bad_url(&cfg.base_url, &e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad_url(&cfg.base_url, "it is not an http(s) URL"));
        }
        let Some(host) = base.host_str().map(str::to_owned) else {
            return Err(bad_url(&cfg.base_url, "it has no host"));
        };
        let tls = crate::tls::client_config(&cfg.extra_roots)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| bad_url(&cfg.base_url, &e.to_string()))?;
        let endpoint = Endpoint {
            protocol: "CalDAV/CardDAV",
            port: base.port_or_known_default().unwrap_or(443),
            host,
        };
        Ok(DavClient {
            http,
            base,
            endpoint,
            user: cfg.user,
            password: cfg.password,
            timeout: cfg.timeout,
        })
    }

    /// The base URL's path (the discovery's starting point).
    pub fn base_path(&self) -> &str {
        self.base.path()
    }

    /// The absolute URL of an href; a full URL must have the base URL's origin.
    pub(crate) fn url(&self, href: &str) -> Result<Url, SyncError> {
        let url = self
            .base
            .join(href)
            .map_err(|e| self.foreign(href, &e.to_string()))?;
        if url.origin() != self.base.origin() {
            return Err(self.foreign(href, "it points at another host"));
        }
        Ok(url)
    }

    fn foreign(&self, href: &str, why: &str) -> SyncError {
        let shown: String = href.chars().take(160).collect();
        error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "the CalDAV/CardDAV server {} named a location that cannot be followed ({why}): {shown}",
                self.endpoint
            ),
            "Set the profile's DAV location to the server that holds the collections, then run Test & Enable",
        )
    }

    /// Sends one request; returns the answer whatever its status.
    pub(crate) async fn send(&self, req: Request<'_>) -> Result<Response, SyncError> {
        let url = self.url(req.href)?;
        let method = Method::from_bytes(req.method.as_bytes())
            .map_err(|e| self.foreign(req.method, &e.to_string()))?;
        let mut builder = self
            .http
            .request(method, url)
            .basic_auth(&self.user, Some(self.password.expose()));
        for (name, value) in req.headers {
            builder = builder.header(name, value);
        }
        if let Some((content_type, body)) = req.body {
            builder = builder.header(CONTENT_TYPE, content_type).body(body);
        }
        let response = builder.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|e| self.transport(&e))?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Sends a request that must succeed.
    pub(crate) async fn expect_success(
        &self,
        req: Request<'_>,
        what: &str,
        target: Target,
    ) -> Result<Response, DavError> {
        let href = req.href.to_owned();
        let response = self.send(req).await?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(self.refused(&response, &href, what, target))
        }
    }

    /// Sends a PROPFIND or REPORT that must answer 207, and reads the multistatus.
    pub(crate) async fn multistatus(
        &self,
        req: Request<'_>,
        what: &str,
        target: Target,
    ) -> Result<Multistatus, DavError> {
        let href = req.href.to_owned();
        let response = self.expect_success(req, what, target).await?;
        self.read_multistatus(&response, &href, what)
    }

    pub(crate) fn read_multistatus(
        &self,
        response: &Response,
        href: &str,
        what: &str,
    ) -> Result<Multistatus, DavError> {
        if response.status != 207 {
            return Err(self
                .endpoint
                .protocol(&format!(
                    "HTTP {} instead of 207 Multi-Status for {href} while trying to {what}",
                    response.status
                ))
                .into());
        }
        parse_multistatus(&response.body).map_err(|e| {
            self.endpoint
                .protocol(&format!(
                    "the answer for {href} while trying to {what}: {e}"
                ))
                .into()
        })
    }

    /// A non-success answer, classified.
    pub(crate) fn refused(
        &self,
        response: &Response,
        href: &str,
        what: &str,
        target: Target,
    ) -> DavError {
        classify(
            &self.endpoint,
            &self.user,
            response.status,
            href,
            what,
            target,
            response.retry_after(),
        )
    }

    /// A reqwest failure, classified by its cause.
    fn transport(&self, e: &reqwest::Error) -> SyncError {
        let endpoint = &self.endpoint;
        if e.is_timeout() {
            return endpoint.timed_out("a request", self.timeout);
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

fn bad_url(url: &str, why: &str) -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Profile,
        format!("the DAV location {url} cannot be used: {why}"),
        "Set the profile's DAV location to the server's http(s) URL, e.g. https://dav.example.org/",
    )
}

/// Percent-encodes one path segment (a collection or item name) so that it stays
/// one segment whatever it holds.
pub(crate) fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `parent` (ending in `/` or not) joined with one encoded segment.
pub(crate) fn child_href(parent: &str, name: &str, collection: bool) -> String {
    let mut href = parent.to_owned();
    if !href.ends_with('/') {
        href.push('/');
    }
    href.push_str(&segment(name));
    if collection {
        href.push('/');
    }
    href
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> DavClient {
        DavClient::new(DavConfig::new(base, "alice", Secret::new("pw"))).expect("client")
    }

    #[test]
    fn hrefs_resolve_on_the_same_origin_only() {
        let c = client("http://127.0.0.1:5232/dav/");
        let cases = [
            ("/alice/cal/", Some("http://127.0.0.1:5232/alice/cal/")),
            ("http://127.0.0.1:5232/x/", Some("http://127.0.0.1:5232/x/")),
            ("https://evil.example/x/", None),
            ("http://127.0.0.1:9999/x/", None),
        ];
        for (href, expected) in cases {
            assert_eq!(
                c.url(href).ok().map(|u| u.to_string()).as_deref(),
                expected,
                "{href}"
            );
        }
    }

    #[test]
    fn names_become_one_segment() {
        let cases = [
            ("/alice/", "a b/c.ics", false, "/alice/a%20b%2Fc.ics"),
            ("/alice", "cal", true, "/alice/cal/"),
            ("/alice/", "x@y.vcf", false, "/alice/x@y.vcf"),
        ];
        for (parent, name, collection, expected) in cases {
            assert_eq!(child_href(parent, name, collection), expected);
        }
    }

    #[test]
    fn unusable_locations_are_refused_for_the_profile() {
        for base in ["not a url", "ftp://dav.example.org/"] {
            let e = DavClient::new(DavConfig::new(base, "a", Secret::new("p"))).expect_err(base);
            assert_eq!(e.scope, ErrorScope::Profile);
        }
    }
}
