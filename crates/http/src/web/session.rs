//! Sessions and CSRF protection.
//!
//! The session cookie is `__Host-` prefixed (HTTPS, or `localhost`/`127.0.0.1`,
//! which browsers treat as secure), `Secure`, `HttpOnly` and `SameSite=Lax`. Every
//! request that changes something (any method but GET and HEAD) must carry the
//! session's CSRF token, in the `_csrf` form field or the `X-CSRF-Token` header
//! (htmx sends it from the page's `hx-headers`), and must not come from another
//! site (`Sec-Fetch-Site`). Sign-in itself is protected by a double-submit cookie.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mailbridge_domain::Role;
use mailbridge_store::TokenInfo;
use serde_json::{Value, json};

use super::WebState;
use super::api::Api;
use super::error::WebError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-mb_session";
/// The sign-in form's double-submit cookie.
pub const SIGNIN_COOKIE: &str = "__Host-mb_signin";
/// How long a session lasts from sign-in.
pub const SESSION_HOURS: i64 = 12;

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for a secure, script-invisible cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}")
}

/// A signed-in browser, with or without an organization chosen.
pub struct SignedIn {
    pub cookie: String,
    pub api: Api,
    pub csrf: String,
    pub org_id: Option<String>,
    pub who: TokenInfo,
}

impl SignedIn {
    pub fn is_system_admin(&self) -> bool {
        self.who.org_id.is_none()
    }
}

impl FromRequestParts<WebState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &WebState) -> Result<Self, WebError> {
        let sign_in = || WebError::SignIn {
            next: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
        };
        let cookie = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(sign_in)?
            .to_owned();
        let session = s.store.web_session(&cookie).await?.ok_or_else(sign_in)?;
        let who = s
            .store
            .authenticate(&session.token)
            .await?
            .ok_or_else(sign_in)?;
        Ok(SignedIn {
            api: Api::new(s.api.clone(), session.token),
            csrf: session.csrf_token,
            org_id: session.org_id.or_else(|| who.org_id.clone()),
            cookie,
            who,
        })
    }
}

/// A signed-in browser looking at one organization: what every page but the
/// organization picker needs.
pub struct Session {
    pub api: Api,
    pub csrf: String,
    pub org_id: String,
    pub org_name: String,
    pub user_name: String,
    pub role: Option<Role>,
}

impl FromRequestParts<WebState> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &WebState) -> Result<Self, WebError> {
        let signed_in = SignedIn::from_request_parts(parts, s).await?;
        let Some(org_id) = signed_in.org_id.clone() else {
            return Err(WebError::Redirect("/organizations".into()));
        };
        let org_name = s.store.get_organization(&org_id).await?.name;
        let user_name = match (&signed_in.who.org_id, &signed_in.who.user_id) {
            (Some(org), Some(user)) => s.store.get_user(org, user).await?.full_name,
            _ => "System administrator".to_owned(),
        };
        Ok(Session {
            api: signed_in.api,
            csrf: signed_in.csrf,
            org_id,
            org_name,
            user_name,
            role: signed_in.who.role,
        })
    }
}

impl Session {
    /// The path of the organization's API collection `rest` (e.g. `mailboxes`).
    pub fn org_api(&self, rest: &str) -> String {
        format!("/api/v1/orgs/{}/{rest}", self.org_id)
    }

    /// What the layout needs, for the page of navigation section `section`.
    pub fn layout(&self, section: &str, title: &str) -> Value {
        json!({
            "section": section,
            "title": title,
            "csrf": self.csrf,
            "org": {"id": self.org_id, "name": self.org_name},
            "user": {"name": self.user_name, "role": self.role.map(|r| r.as_str())},
        })
    }
}

/// Refuses a state-changing request without the session's CSRF token or from
/// another site.
pub async fn verify_csrf(State(s): State<WebState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let refuse = |why: &str| {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("Refused: {why}. Reload the page and try again."),
        )
            .into_response()
    };
    if let Some(site) = req.headers().get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return refuse("the request came from another site");
    }
    let expected = if req.uri().path() == "/sign-in" {
        cookie(req.headers(), SIGNIN_COOKIE).map(str::to_owned)
    } else {
        match cookie(req.headers(), SESSION_COOKIE) {
            Some(c) => match s.store.web_session(c).await {
                Ok(Some(session)) => Some(session.csrf_token),
                Ok(None) => None,
                Err(e) => return WebError::from(e).into_response(),
            },
            None => None,
        }
    };
    let Some(expected) = expected else {
        // No session: the handler's extractor sends the browser to sign in.
        return next.run(req).await;
    };
    if let Some(sent) = req.headers().get("x-csrf-token") {
        if constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            return next.run(req).await;
        }
        return refuse("the form's security token does not match this session");
    }
    // A form post: read the body to find `_csrf`, then hand it on unchanged.
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return refuse("the form is larger than 4 MiB");
    };
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    let sent = if multipart {
        multipart_csrf(&parts.headers, bytes.clone()).await
    } else {
        form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.into_owned())
    };
    match sent {
        Some(sent) if constant_time_eq(sent.as_bytes(), expected.as_bytes()) => {
            next.run(Request::from_parts(parts, bytes.into())).await
        }
        _ => refuse("the form's security token is missing or does not match this session"),
    }
}

/// The `_csrf` field of a `multipart/form-data` body (a file upload form).
async fn multipart_csrf(headers: &HeaderMap, body: axum::body::Bytes) -> Option<String> {
    use axum::extract::{FromRequest, Multipart};
    let mut req = Request::new(axum::body::Body::from(body));
    *req.headers_mut() = headers.clone();
    let mut form = Multipart::from_request(req, &()).await.ok()?;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("_csrf") {
            return field.text().await.ok();
        }
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; __Host-mb_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn session_cookies_are_secure_and_hidden_from_scripts() {
        let c = set_cookie(SESSION_COOKIE, "v", 60);
        for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
