//! Sign-in (a user's password or an API token), sign-out, and the organization
//! picker of system administrators.

use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Instant;

use chrono::{Duration, Utc};
use mailbridge_domain::secret::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::error::{WebError, see_other};
use super::render::html;
use super::session::{SESSION_COOKIE, SESSION_HOURS, SIGNIN_COOKIE, SignedIn, cookie, set_cookie};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/sign-in", get(form).post(sign_in))
        .route("/sign-out", axum::routing::post(sign_out))
        .route(
            "/organizations",
            get(organizations).post(choose_organization),
        )
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only a path of this site: never `//host` or `https://…` (no open redirect).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
}

fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn form_page(csrf: &str, next: &str, method: &str, email: &str, error: Option<&str>) -> Response {
    let page = html(
        "signin.html",
        json!({"csrf": csrf, "next": next, "method": method, "email": email, "error": error}),
    );
    let mut r = page.into_response();
    if let Ok(v) = set_cookie(SIGNIN_COOKIE, csrf, 3600).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn form(headers: HeaderMap, Query(q): Query<Next>) -> Response {
    let csrf = cookie(&headers, SIGNIN_COOKIE)
        .map(str::to_owned)
        .unwrap_or_else(random_token);
    form_page(&csrf, &local_path(q.next.as_deref()), "password", "", None)
}

#[derive(Deserialize)]
struct SignInForm {
    _csrf: String,
    method: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    next: Option<String>,
}

async fn sign_in(
    State(s): State<WebState>,
    Form(f): Form<SignInForm>,
) -> Result<Response, WebError> {
    let next = local_path(f.next.as_deref());
    // Sessions past their time are cleared here, where new ones are made.
    if let Err(e) = s.store.purge_web_sessions().await {
        tracing::warn!(error = %e, "web admin: expired sessions were not cleared");
    }
    let expires = Utc::now() + Duration::hours(SESSION_HOURS);
    let principal = if f.method == "token" {
        s.store
            .authenticate(f.token.trim())
            .await?
            .map(|t| (t.org_id, t.user_id))
    } else {
        let email = f.email.trim().to_owned();
        let locked = s
            .throttle
            .lock()
            .expect("not poisoned")
            .check(&email, Instant::now());
        if let Err(wait) = locked {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            let message = format!(
                "Too many wrong passwords for this address. Try again in {minutes} minute(s), \
                 or sign in with an API token."
            );
            return Ok(form_page(
                &f._csrf,
                &next,
                "password",
                &f.email,
                Some(&message),
            ));
        }
        let owner = s
            .store
            .verify_user_password(&email, &Secret::new(f.password))
            .await?;
        let mut throttle = s.throttle.lock().expect("not poisoned");
        match owner {
            Some(o) => {
                throttle.clear(&email);
                Some((Some(o.org_id), Some(o.user_id)))
            }
            None => {
                throttle.record_failure(&email, Instant::now());
                None
            }
        }
    };
    let Some((org_id, user_id)) = principal else {
        let message = if f.method == "token" {
            "This API token is unknown, revoked or expired, or its user is disabled."
        } else {
            "The email address or password is wrong, or the user is disabled. An address \
             used in several organizations must sign in with an API token."
        };
        return Ok(form_page(
            &f._csrf,
            &next,
            &f.method,
            &f.email,
            Some(message),
        ));
    };
    let token = s
        .store
        .issue_session_token(org_id.as_deref(), user_id.as_deref(), expires)
        .await?;
    let session = s
        .store
        .open_web_session(&token, org_id.as_deref(), expires)
        .await?;
    let to = if org_id.is_none() && next == "/" {
        "/organizations".to_owned()
    } else {
        next
    };
    let mut r = see_other(&to);
    let h = r.headers_mut();
    for c in [
        set_cookie(SESSION_COOKIE, &session.cookie, SESSION_HOURS * 3600),
        set_cookie(SIGNIN_COOKIE, "", 0),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

async fn sign_out(State(s): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        s.store.close_web_session(c).await?;
    }
    let mut r = see_other("/sign-in");
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", 0).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

async fn organizations(who: SignedIn) -> Result<Response, WebError> {
    if !who.is_system_admin() {
        return Ok(see_other("/"));
    }
    let orgs: Value = who.api.get("/api/v1/organizations?limit=200").await?;
    Ok(html(
        "organizations.html",
        json!({"csrf": who.csrf, "organizations": orgs["items"], "current": who.org_id}),
    )?
    .into_response())
}

#[derive(Deserialize)]
struct Choice {
    org_id: String,
}

async fn choose_organization(
    State(s): State<WebState>,
    who: SignedIn,
    Form(c): Form<Choice>,
) -> Result<Response, WebError> {
    if !who.is_system_admin() {
        return Ok(see_other("/"));
    }
    // Through the API, so that an unknown id is refused as any other.
    let _: Value = who
        .api
        .get(&format!("/api/v1/organizations/{}", c.org_id))
        .await?;
    s.store.set_web_session_org(&who.cookie, &c.org_id).await?;
    Ok(see_other("/"))
}
