//! One helper per boundary: `TestApp` starts the API on a fresh store and talks
//! to it over HTTP.

use mailbridge_store::{Cipher, Store};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates, for each named async test function taking a `Backend`, a module
/// with one `#[tokio::test]` per backend.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )+
    };
}

/// A running API on a fresh, empty store.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The system administrator's token.
    pub admin: String,
    pub store: Store,
    _dir: tempfile::TempDir,
}

/// An answer: status and JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The body, after checking the status.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self.body
    }

    /// The error's field, after checking status and code.
    #[track_caller]
    pub fn error(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.body["error"]["code"], code,
            "unexpected code; body: {}",
            self.text
        );
        self.body["error"].clone()
    }
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => dir.path().join("test.db").display().to_string(),
            Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
        };
        let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
        let store = Store::open(&url, cipher).await.expect("store opens");
        let admin = store
            .issue_system_admin_token("test")
            .await
            .expect("admin token")
            .token;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = mailbridge_http::app(store.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        TestApp {
            base,
            client: reqwest::Client::new(),
            admin,
            store,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Answer { status, body, text }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, token, None).await
    }

    /// A new organization (with a default tenant ID); returns its id.
    pub async fn org(&self, name: &str) -> String {
        let body =
            json!({"name": name, "default_tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47"});
        let org = self
            .post("/api/v1/organizations", &self.admin, body)
            .await
            .expect(201);
        org["id"].as_str().expect("org id").to_owned()
    }

    /// A new user of `org` with `role`, and a token for them.
    pub async fn member(&self, org: &str, name: &str, role: &str) -> (Value, String) {
        let email = format!("{}@example.org", name.to_lowercase().replace(' ', "."));
        let body = json!({"full_name": name, "email": email, "role": role});
        let user = self
            .post(&format!("/api/v1/orgs/{org}/users"), &self.admin, body)
            .await
            .expect(201);
        let token = self
            .post(
                &format!("/api/v1/orgs/{org}/tokens"),
                &self.admin,
                json!({"user_id": user["id"]}),
            )
            .await
            .expect(201);
        (user, token["token"].as_str().expect("token").to_owned())
    }

    /// An IMAP/SMTP profile of `org`; returns it.
    pub async fn imap_profile(&self, org: &str, name: &str) -> Value {
        let body = json!({
            "name": name,
            "server_type": "imap_smtp",
            "incoming_server_location": "imaps://mail.example.org",
            "outgoing_server_location": "smtps://mail.example.org",
        });
        self.post(
            &format!("/api/v1/orgs/{org}/email-server-profiles"),
            &self.admin,
            body,
        )
        .await
        .expect(201)
    }
}
