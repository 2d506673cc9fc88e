//! `/metrics` with real traffic: mail delivered into Dovecot and tracked, an email
//! sent, one left queued; the counters move by at least what happened, and the
//! connection and queue gauges agree with what the engine holds.

use std::time::Duration;

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use serde_json::json;

use crate::common::{Backend, World, fast_engine, message, wait};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// One scrape, parsed strictly by an independent OpenMetrics parser.
pub(crate) async fn scrape(w: &World) -> Exposition {
    let text = w
        .client
        .get(format!("{}/metrics", w.base))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("not valid OpenMetrics: {e:?}\n{text}"))
}

/// The value of the sample of `family` with `labels` (0 when there is none yet:
/// a counter's series appears with its first increment).
pub(crate) fn value(exp: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    let fam = exp
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    fam.iter_samples()
        .find_map(|s| {
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
        .unwrap_or(0.0)
}

const TRACKED: (&str, &[(&str, &str)]) = (
    "mailbridge_items",
    &[("workload", "incoming"), ("outcome", "tracked")],
);
const INCOMING_RUNS: (&str, &[(&str, &str)]) = (
    "mailbridge_runs",
    &[("workload", "incoming"), ("outcome", "succeeded")],
);

#[tokio::test]
async fn metrics_move_with_real_traffic() {
    let w = World::start(Backend::Sqlite, fast_engine()).await;
    let (_, mailbox, login) = w.member("all").await;
    let (_, idle_mailbox, _) = w.member("all").await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    wait(
        "the first incoming run",
        Duration::from_secs(10),
        || async {
            let m = w.get(&format!("/mailboxes/{mailbox}")).await;
            (m["incoming_status"] == "success").then_some(())
        },
    )
    .await;
    wait("the IDLE connection", Duration::from_secs(10), || async {
        w.engine.is_watching(&mailbox).then_some(())
    })
    .await;

    let before = scrape(&w).await;
    assert_eq!(value(&before, "mailbridge_engine_running", &[]), 1.0);
    let tested = [("workload", "test_enable"), ("outcome", "succeeded")];
    assert_eq!(value(&before, "mailbridge_runs", &tested), 1.0);
    for protocol in ["imap", "smtp"] {
        let labels = [("protocol", protocol), ("workload", "test_enable")];
        assert_eq!(
            value(&before, "mailbridge_connections_opened", &labels),
            1.0,
            "Test & Enable signed in once by {protocol}"
        );
        assert_eq!(value(&before, "mailbridge_connections_open", &labels), 0.0);
    }
    let push = [("protocol", "imap"), ("workload", "push")];
    assert_eq!(
        value(&before, "mailbridge_connections_open", &push),
        1.0,
        "one IDLE held for the one enabled mailbox"
    );

    // Three messages delivered into Dovecot, each tracked.
    let mut ids = Vec::new();
    for i in 0..3 {
        let (raw, id) = message(
            "Carl <carl@fabrikam.com>",
            &[&login.address],
            &format!("Metrics {i}"),
            "",
        );
        w.servers.deliver(&login.address, &raw).await.unwrap();
        ids.push(id);
    }
    for id in &ids {
        wait(
            &format!("the email <{id}>"),
            Duration::from_secs(15),
            || async {
                w.emails(&format!("&message_id={id}"))
                    .await
                    .into_iter()
                    .next()
            },
        )
        .await;
    }
    // An email sent from the enabled mailbox, and one that stays queued: its
    // mailbox was never enabled.
    let sent = w
        .post(
            "/emails",
            json!({"from_mailbox_id": mailbox, "to": ["bob@example.org"], "subject": "Sent",
                   "body_text": "Hi", "send": true}),
        )
        .await;
    let sent_id = sent["id"].as_str().unwrap().to_owned();
    wait("the email to be sent", Duration::from_secs(15), || async {
        let e = w.get(&format!("/emails/{sent_id}")).await;
        (e["status"] == "sent").then_some(())
    })
    .await;
    w.post(
        "/emails",
        json!({"from_mailbox_id": idle_mailbox, "to": ["bob@example.org"], "subject": "Queued",
               "body_text": "Hi", "send": true}),
    )
    .await;

    let after = scrape(&w).await;
    let delta = |(family, labels): (&str, &[(&str, &str)])| {
        value(&after, family, labels) - value(&before, family, labels)
    };
    assert!(delta(TRACKED) >= 3.0, "tracked: +{}", delta(TRACKED));
    assert!(
        delta(INCOMING_RUNS) >= 1.0,
        "incoming runs: +{}",
        delta(INCOMING_RUNS)
    );
    let durations = value(
        &after,
        "mailbridge_run_duration_seconds",
        &[("workload", "incoming")],
    );
    assert!(
        durations >= value(&after, INCOMING_RUNS.0, INCOMING_RUNS.1),
        "every run has its duration"
    );
    let sent_items = [("workload", "outgoing"), ("outcome", "sent")];
    assert_eq!(value(&after, "mailbridge_items", &sent_items), 1.0);
    let smtp = [("protocol", "smtp"), ("workload", "outgoing")];
    assert!(value(&after, "mailbridge_connections_opened", &smtp) >= 1.0);
    let imap = [("protocol", "imap"), ("workload", "incoming")];
    assert!(
        value(&after, "mailbridge_connections_opened", &imap)
            > value(&before, "mailbridge_connections_opened", &imap)
    );
    // Every connection counted open was counted opened, and none is negative.
    let open = &after.families["mailbridge_connections_open"];
    for s in open.iter_samples() {
        let set = s.get_labelset().unwrap();
        let labels: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let now_open = value(&after, "mailbridge_connections_open", &labels);
        let opened = value(&after, "mailbridge_connections_opened", &labels);
        assert!(
            (0.0..=opened).contains(&now_open),
            "{labels:?}: {now_open} of {opened}"
        );
    }
    assert!(value(&after, "mailbridge_connections_open", &push) <= 1.0);
    // The store's side: the queued email, the enabled mailbox, no lag to speak of.
    let pending = [("status", "pending_send")];
    assert_eq!(value(&after, "mailbridge_outgoing_queue", &pending), 1.0);
    let incoming = [("workload", "incoming")];
    assert_eq!(
        value(&after, "mailbridge_mailboxes_enabled", &incoming),
        1.0
    );
    let lag = value(&after, "mailbridge_sync_lag_seconds", &incoming);
    assert!((0.0..30.0).contains(&lag), "incoming lag {lag}");
    assert_eq!(value(&after, "mailbridge_sync_overdue", &incoming), 0.0);
    assert_eq!(value(&after, "mailbridge_store_up", &[]), 1.0);
}
