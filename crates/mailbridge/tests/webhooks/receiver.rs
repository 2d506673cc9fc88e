//! A webhook receiver on 127.0.0.1: records every request (headers, body, the
//! status it answered) and answers 500 while told to fail, else 204.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: String,
    pub answered: u16,
}

impl Received {
    pub fn id(&self) -> String {
        self.header("webhook-id")
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

#[derive(Default)]
struct Inner {
    /// Requests still to answer 500.
    fail_next: u64,
    requests: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, inner }
    }

    /// Answers 500 to the next `n` requests.
    pub fn fail_next(&self, n: u64) {
        self.inner.lock().unwrap().fail_next = n;
    }

    pub fn requests(&self) -> Vec<Received> {
        self.inner.lock().unwrap().requests.clone()
    }
}

async fn hook(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let mut inner = inner.lock().unwrap();
    let status = if inner.fail_next > 0 {
        inner.fail_next -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    inner.requests.push(Received {
        at: Instant::now(),
        headers,
        body,
        answered: status.as_u16(),
    });
    status
}
