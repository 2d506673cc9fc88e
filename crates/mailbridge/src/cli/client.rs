//! The REST API as the commands use it: bearer token, the organization's paths,
//! the error envelope turned into a [`Failure`], lists read page by page.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{CliResult, Connection, Failure, Output};

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    /// The organization's id.
    pub org: String,
    pub output: Output,
}

const NO_TOKEN: &str = "no API token: pass --token TOKEN or set MAILBRIDGE_TOKEN (the administrator's token is in <data_dir>/admin.token; others are issued by POST /api/v1/orgs/{org_id}/tokens)";

impl Client {
    /// A client of `conn.server`, its organization found when not given.
    pub async fn connect(conn: &Connection) -> CliResult<Client> {
        let token = conn
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::Auth(NO_TOKEN.to_owned()))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| Failure::Server(format!("cannot create an HTTP client: {e}")))?;
        let mut client = Client {
            http,
            base: conn.server.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            org: String::new(),
            output: conn.output,
        };
        client.org = match conn.org.as_deref().filter(|o| !o.is_empty()) {
            Some(org) => org.to_owned(),
            None => client.find_org().await?,
        };
        Ok(client)
    }

    /// The token's organization (`GET /api/v1/me`); for the administrator's
    /// token, the only organization if there is exactly one.
    async fn find_org(&self) -> CliResult<String> {
        let me = self.call(Method::GET, "/api/v1/me", None).await?;
        if let Some(org) = me["org_id"].as_str() {
            return Ok(org.to_owned());
        }
        let orgs = self
            .call(Method::GET, "/api/v1/organizations?limit=2", None)
            .await?;
        match orgs["items"].as_array().map(Vec::as_slice) {
            Some([only]) => Ok(only["id"].as_str().unwrap_or_default().to_owned()),
            Some([]) => Err(Failure::Refused(
                "there is no organization yet: create one with POST /api/v1/organizations".to_owned(),
            )),
            _ => Err(Failure::Refused(
                "the system administrator's token acts in any organization: pass --org ID (or set MAILBRIDGE_ORG)".to_owned(),
            )),
        }
    }

    /// A path under the organization: `/mailboxes` → `/api/v1/orgs/{org}/mailboxes`.
    pub fn org_path(&self, path: &str) -> String {
        format!("/api/v1/orgs/{}{path}", self.org)
    }

    pub async fn get(&self, path: &str) -> CliResult<Value> {
        self.call(Method::GET, &self.org_path(path), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> CliResult<Value> {
        self.call(Method::POST, &self.org_path(path), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> CliResult<Value> {
        self.call(Method::PATCH, &self.org_path(path), Some(body))
            .await
    }

    /// Every record of a list (following `next_cursor`), at most `max`.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
        max: usize,
    ) -> CliResult<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", max.clamp(1, 500).to_string()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let qs = serde_urlencoded::to_string(&q)
                .map_err(|e| Failure::Input(format!("cannot encode the query: {e}")))?;
            let page = self.get(&format!("{path}?{qs}")).await?;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() || items.len() >= max {
                items.truncate(max);
                return Ok(items);
            }
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> CliResult<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            Failure::Server(format!(
                "cannot reach the server at {}: {} (is `mailbridge serve` running? set --server or MAILBRIDGE_SERVER)",
                self.base,
                root_cause(&e)
            ))
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::Server(format!("the server's answer was cut off: {e}")))?;
        let json: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(json);
        }
        Err(failure(status, &json))
    }
}

/// The deepest cause of a transport error (reqwest's own message is generic).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The API's error envelope as a failure: its message, the field at fault, and
/// for 401 how to pass a token.
fn failure(status: StatusCode, body: &Value) -> Failure {
    let e = &body["error"];
    let message = e["message"]
        .as_str()
        .map_or_else(|| format!("the server answered {status}"), str::to_owned);
    let text = match e["field"].as_str().filter(|f| !f.is_empty()) {
        Some(field) => format!("{field}: {message}"),
        None => message,
    };
    match status {
        StatusCode::UNAUTHORIZED => Failure::Auth(format!(
            "the server refused the token: {text}; pass a valid token with --token or MAILBRIDGE_TOKEN"
        )),
        StatusCode::FORBIDDEN => Failure::Auth(format!("not allowed: {text}")),
        s if s.is_client_error() => Failure::Refused(match e["code"].as_str() {
            Some(code) => format!("{text} ({code})"),
            None => text,
        }),
        _ => Failure::Server(format!("the server failed ({status}): {text}")),
    }
}
