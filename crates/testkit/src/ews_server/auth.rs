//! Who is calling and as whom: HTTP Basic of a configured service account, or a
//! bearer token a test's closure maps to one (OAuth); the `t:ExchangeImpersonation`
//! header then names the mailbox, which the account may open only with the
//! ApplicationImpersonation role for it. NTLM and Negotiate are not emulated.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Which mailboxes an account may impersonate (Exchange's ApplicationImpersonation
/// management role, assigned for the whole organization or a management scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Impersonation {
    /// No ApplicationImpersonation role: only the account's own mailbox.
    None,
    /// The role for the whole organization.
    AllMailboxes,
    /// The role scoped to these primary SMTP addresses.
    Mailboxes(Vec<String>),
}

/// A service account (or user) that may call the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// The user name as sent in HTTP Basic (`svc@example.org`, `EXAMPLE\svc`), or the
    /// name a bearer check answers; compared without regard to case.
    pub user: String,
    /// `None`: the account cannot use Basic (OAuth only).
    pub password: Option<String>,
    /// The account's own mailbox, used when a request has no impersonation header.
    pub mailbox: Option<String>,
    pub impersonation: Impersonation,
}

impl ServiceAccount {
    /// An account with a password, no mailbox and no impersonation right.
    pub fn new(user: &str, password: &str) -> ServiceAccount {
        ServiceAccount {
            user: user.to_owned(),
            password: Some(password.to_owned()),
            mailbox: None,
            impersonation: Impersonation::None,
        }
    }

    /// An account only a bearer token can stand for.
    pub fn oauth(user: &str) -> ServiceAccount {
        ServiceAccount {
            password: None,
            ..ServiceAccount::new(user, "")
        }
    }

    /// The account's own mailbox.
    pub fn with_mailbox(mut self, address: &str) -> ServiceAccount {
        self.mailbox = Some(address.to_ascii_lowercase());
        self
    }

    /// ApplicationImpersonation for every mailbox.
    pub fn impersonating_all(mut self) -> ServiceAccount {
        self.impersonation = Impersonation::AllMailboxes;
        self
    }

    /// ApplicationImpersonation for these mailboxes only.
    pub fn impersonating(mut self, addresses: &[&str]) -> ServiceAccount {
        self.impersonation =
            Impersonation::Mailboxes(addresses.iter().map(|a| a.to_ascii_lowercase()).collect());
        self
    }

    /// Whether the account may open `mailbox` (its own, or by impersonation).
    pub fn may_impersonate(&self, mailbox: &str) -> bool {
        if self
            .mailbox
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(mailbox))
        {
            return true;
        }
        match &self.impersonation {
            Impersonation::None => false,
            Impersonation::AllMailboxes => true,
            Impersonation::Mailboxes(list) => list.iter().any(|m| m.eq_ignore_ascii_case(mailbox)),
        }
    }
}

/// Maps a bearer token to the name of a configured account (`None`: the token is
/// refused, 401).
pub type BearerCheck = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Basic,
    Bearer,
}

/// The account of a request, or the 401 to answer.
pub(crate) fn authenticate(
    accounts: &[ServiceAccount],
    bearer: Option<&BearerCheck>,
    headers: &HeaderMap,
) -> Result<(ServiceAccount, Scheme), Response> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("Basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            let found = accounts.iter().find(|a| {
                a.user.eq_ignore_ascii_case(user) && a.password.as_deref() == Some(password)
            });
            if let Some(account) = found {
                return Ok((account.clone(), Scheme::Basic));
            }
        }
        return Err(unauthorized(bearer.is_some(), false));
    }
    if scheme.eq_ignore_ascii_case("Bearer") {
        let name = bearer.and_then(|check| check(rest));
        let found = name.and_then(|n| accounts.iter().find(|a| a.user.eq_ignore_ascii_case(&n)));
        return match found {
            Some(account) => Ok((account.clone(), Scheme::Bearer)),
            None => Err(unauthorized(bearer.is_some(), true)),
        };
    }
    Err(unauthorized(bearer.is_some(), false))
}

/// 401 with the schemes this server offers (Exchange also offers Negotiate and NTLM,
/// which are not emulated).
fn unauthorized(bearer: bool, bad_token: bool) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, "").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"127.0.0.1\""),
    );
    if bearer {
        let value = if bad_token {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(auth).expect("header"),
        );
        h
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn basic_and_bearer_are_checked() {
        let accounts = vec![
            ServiceAccount::new("EXAMPLE\\svc", "s3cret:colon"),
            ServiceAccount::oauth("app"),
        ];
        let check: BearerCheck = Arc::new(|t| (t == "good").then(|| "APP".to_owned()));
        let cases: [(String, Option<&str>); 7] = [
            (basic("example\\SVC", "s3cret:colon"), Some("EXAMPLE\\svc")),
            (basic("EXAMPLE\\svc", "wrong"), None),
            (basic("nobody", "s3cret:colon"), None),
            (basic("app", ""), None),
            ("Bearer good".into(), Some("app")),
            ("Bearer bad".into(), None),
            (String::new(), None),
        ];
        for (auth, expected) in cases {
            let got = authenticate(&accounts, Some(&check), &headers(&auth));
            assert_eq!(
                got.ok().map(|(a, _)| a.user),
                expected.map(str::to_owned),
                "{auth}"
            );
        }
    }

    #[test]
    fn a_401_offers_basic_and_bearer_when_configured() {
        let r = authenticate(&[], None, &HeaderMap::new()).expect_err("401");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers().get_all(header::WWW_AUTHENTICATE).iter().count(),
            1
        );
        let check: BearerCheck = Arc::new(|_| None);
        let r = authenticate(&[], Some(&check), &headers("Bearer x")).expect_err("401");
        let offered: Vec<_> = r
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            offered,
            [
                "Basic realm=\"127.0.0.1\"",
                "Bearer error=\"invalid_token\""
            ]
        );
    }

    #[test]
    fn impersonation_rights() {
        let own = ServiceAccount::new("u", "p").with_mailbox("U@example.org");
        let all = ServiceAccount::new("s", "p").impersonating_all();
        let some = ServiceAccount::new("s", "p").impersonating(&["Alice@example.org"]);
        let cases = [
            (&own, "u@example.org", true),
            (&own, "alice@example.org", false),
            (&all, "anyone@example.org", true),
            (&some, "alice@EXAMPLE.org", true),
            (&some, "bob@example.org", false),
        ];
        for (account, mailbox, expected) in cases {
            assert_eq!(
                account.may_impersonate(mailbox),
                expected,
                "{} {mailbox}",
                account.user
            );
        }
    }
}
