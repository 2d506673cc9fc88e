//! `/metrics` parsed by an independent OpenMetrics parser, the store's gauges,
//! the optional metrics token, and the liveness and readiness probes.

use std::sync::Arc;
use std::time::Duration;

use mailbridge_engine::{Engine, EngineConfig};
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use serde_json::json;

use crate::common::{Backend, TestApp};

on_both_backends!(
    metrics_parse_and_count_the_store,
    readiness_waits_for_the_engine,
);

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Scrapes `base/metrics` and parses it strictly; panics on anything invalid.
async fn scrape(base: &str, token: Option<&str>) -> Exposition {
    let mut req = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("scrape");
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ctype.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ctype}"
    );
    let text = resp.text().await.expect("body");
    openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("not valid OpenMetrics: {e:?}\n{text}"))
}

/// The value of the sample of `family` whose labels include `labels`.
fn value(exp: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let fam = exp.families.get(family)?;
    fam.iter_samples().find_map(|s| {
        let set = s.get_labelset().ok()?;
        labels
            .iter()
            .all(|(k, v)| set.get_label_value(k) == Some(v))
            .then(|| match &s.value {
                OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
                OpenMetricsValue::Counter(c) => c.value.as_f64(),
                OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
                other => panic!("unexpected value {other:?}"),
            })
    })
}

async fn metrics_parse_and_count_the_store(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, _) = app.member(&org, "Alice", "user").await;
    app.member(&org, "Bob", "user").await;
    app.post(
        &format!("/api/v1/orgs/{org}/alerts"),
        &app.admin,
        json!({"scope": "mailbox", "severity": "warning", "mailbox_id": alice["mailbox_id"],
               "message": "Something to look at", "recipient_ids": [alice["id"]]}),
    )
    .await
    .expect(201);

    let exp = scrape(&app.base, None).await;
    let gauge = |f: &str, l: &[(&str, &str)]| value(&exp, f, l).unwrap_or_else(|| panic!("{f}"));
    assert_eq!(gauge("mailbridge_store_up", &[]), 1.0);
    assert_eq!(
        gauge(
            "mailbridge_mailboxes",
            &[("workload", "incoming"), ("status", "not_run")]
        ),
        2.0
    );
    assert_eq!(
        gauge(
            "mailbridge_mailboxes",
            &[("workload", "incoming"), ("status", "failure")]
        ),
        0.0,
        "every known status has a series"
    );
    assert_eq!(
        gauge("mailbridge_mailboxes_enabled", &[("workload", "incoming")]),
        0.0
    );
    let approvals: f64 = ["empty", "pending", "approved", "rejected"]
        .iter()
        .map(|a| gauge("mailbridge_mailboxes_approval", &[("approval", a)]))
        .sum();
    assert_eq!(approvals, 2.0);
    assert_eq!(gauge("mailbridge_alerts", &[("severity", "warning")]), 1.0);
    assert_eq!(gauge("mailbridge_alerts", &[("severity", "error")]), 0.0);
    assert_eq!(
        gauge("mailbridge_outgoing_queue", &[("status", "pending_send")]),
        0.0
    );
    assert_eq!(gauge("mailbridge_jobs", &[("status", "running")]), 0.0);
    assert_eq!(
        gauge("mailbridge_sync_lag_seconds", &[("workload", "incoming")]),
        0.0,
        "no mailbox runs: no lag"
    );
    let lag = &exp.families["mailbridge_sync_lag_seconds"];
    assert_eq!(lag.unit, "seconds");
    assert_eq!(lag.family_type, OpenMetricsType::Gauge);
    assert!(
        !exp.families.contains_key("mailbridge_runs"),
        "no engine in this process: no engine counters"
    );

    // A configured token closes /metrics to requests without it.
    let closed =
        mailbridge_http::with_metrics_token(mailbridge_http::app(app.store.clone()), "s3cret");
    let base = serve(closed).await;
    let client = reqwest::Client::new();
    for auth in [None, Some("wrong")] {
        let mut req = client.get(format!("{base}/metrics"));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("metrics_token")
        );
    }
    let exp = scrape(&base, Some("s3cret")).await;
    assert_eq!(value(&exp, "mailbridge_store_up", &[]), Some(1.0));
    let live = client.get(format!("{base}/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200, "the probes stay open");
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn readiness_waits_for_the_engine(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = reqwest::Client::new();
    let get = |base: String, path: &'static str| {
        let client = client.clone();
        async move {
            let resp = client.get(format!("{base}{path}")).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Without an engine in the process: ready when the store is.
    assert_eq!(get(app.base.clone(), "/livez").await.0, 200);
    let (status, body) = get(app.base.clone(), "/readyz").await;
    assert_eq!((status, &body["status"]), (200, &json!("ready")), "{body}");
    assert_eq!(get(app.base.clone(), "/healthz").await.0, 200);

    // With one: not ready until it runs.
    let config = EngineConfig {
        node_id: "metrics-test".into(),
        push: false,
        tick: Duration::from_millis(50),
        ..Default::default()
    };
    let engine: Arc<Engine> = Engine::new(app.store.clone(), config);
    let base = serve(mailbridge_http::app_for_engine(&engine)).await;
    let (status, body) = get(base.clone(), "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "the engine is not running");
    assert_eq!(get(base.clone(), "/livez").await.0, 200);
    let exp = scrape(&base, None).await;
    assert_eq!(value(&exp, "mailbridge_engine_running", &[]), Some(0.0));
    assert!(exp.families.contains_key("mailbridge_build"));

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(engine.clone().run(stopped));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(base.clone(), "/readyz").await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exp = scrape(&base, None).await;
    assert_eq!(value(&exp, "mailbridge_engine_running", &[]), Some(1.0));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the engine stops")
        .unwrap();
    assert_eq!(
        get(base, "/readyz").await.0,
        503,
        "a stopped engine is not ready"
    );
}
