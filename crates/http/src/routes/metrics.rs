//! `/metrics` (OpenMetrics text: the engine's counters and, read from the store
//! at scrape time, the state of mailboxes, queues, jobs and alerts), `/livez` and
//! `/readyz`. Outside the API and its document, like `/healthz`; docs/METRICS.md
//! lists every metric.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use mailbridge_domain::{AlertSeverity, ApprovalStatus, JobStatus, WorkloadStatus};
use mailbridge_store::{Store, StoreResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;

use crate::{ApiError, AppState};

/// The content type of `/metrics`, which Prometheus negotiates and parses.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A mailbox whose next poll is this much past due counts as overdue (the
/// scheduler normally takes due work within a tick of a second).
const OVERDUE_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// The bearer token `/metrics` requires, when one is configured.
#[derive(Clone)]
struct MetricsToken(Arc<str>);

/// Makes `/metrics` answer only requests that carry `Authorization: Bearer <token>`.
pub fn with_metrics_token(app: Router, token: &str) -> Router {
    app.layer(Extension(MetricsToken(token.into())))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
}

/// Compares in time independent of where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /metrics`.
async fn metrics(
    State(s): State<AppState>,
    token: Option<Extension<MetricsToken>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(Extension(MetricsToken(want))) = token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same_secret(given.trim().as_bytes(), want.as_bytes()) {
            return Err(ApiError::unauthorized(
                "/metrics requires the configured metrics_token: send Authorization: Bearer <metrics_token>",
            ));
        }
    }
    let store_registry = store_gauges(&s.store).await;
    let mut body = String::new();
    let encoded = (|| {
        if let Some(m) = &s.engine_metrics {
            encode_registry(&mut body, m.registry())?;
        }
        encode_registry(&mut body, &store_registry)?;
        encode_eof(&mut body)
    })();
    if let Err(e) = encoded {
        tracing::error!(error = %e, "metrics could not be encoded");
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the metrics could not be encoded",
        ));
    }
    Ok(([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkloadStatusLabels {
    workload: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkloadLabels {
    workload: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApprovalLabels {
    approval: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SeverityLabels {
    severity: &'static str,
}

type Seconds = Family<WorkloadLabels, Gauge<f64, AtomicU64>>;

fn seconds_since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
    t.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
}

/// The store's side of the metrics, one query each, read now. A store that does
/// not answer gives `mailbridge_store_up 0` and no other gauge: the engine's
/// counters are still served.
async fn store_gauges(store: &Store) -> Registry {
    let mut r = Registry::with_prefix("mailbridge");
    let up = Gauge::<i64>::default();
    r.register(
        "store_up",
        "1 when the store answered the queries of this scrape, else 0",
        up.clone(),
    );
    match read_store(store, &mut r).await {
        Ok(()) => {
            up.set(1);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the store did not answer");
            r = Registry::with_prefix("mailbridge");
            r.register(
                "store_up",
                "1 when the store answered the queries of this scrape, else 0",
                up,
            );
        }
    }
    r
}

async fn read_store(store: &Store, r: &mut Registry) -> StoreResult<()> {
    let now = Utc::now();
    let late = now - OVERDUE_AFTER;
    let (statuses, incoming, queue, jobs, alerts, webhooks) = tokio::join!(
        store.mailbox_status_counts(),
        store.incoming_lag(late),
        store.outgoing_queue(now, late),
        store.unfinished_jobs(),
        store.alerts_by_severity(),
        store.webhook_outbox(),
    );
    let (statuses, incoming, queue) = (statuses?, incoming?, queue?);
    let (jobs, alerts, webhooks) = (jobs?, alerts?, webhooks?);

    let by_status = Family::<WorkloadStatusLabels, Gauge>::default();
    let enabled = Family::<WorkloadLabels, Gauge>::default();
    let approval = Family::<ApprovalLabels, Gauge>::default();
    for w in ["incoming", "outgoing", "act"] {
        for st in WorkloadStatus::ALL {
            let labels = WorkloadStatusLabels {
                workload: w,
                status: st.as_str(),
            };
            by_status.get_or_create(&labels).set(0);
        }
    }
    for w in ["incoming", "outgoing"] {
        enabled
            .get_or_create(&WorkloadLabels { workload: w })
            .set(0);
    }
    for a in ApprovalStatus::ALL {
        let labels = ApprovalLabels {
            approval: a.as_str(),
        };
        approval.get_or_create(&labels).set(0);
    }
    for c in &statuses {
        for (w, st) in [
            ("incoming", c.incoming_status),
            ("outgoing", c.outgoing_status),
            ("act", c.act_status),
        ] {
            let labels = WorkloadStatusLabels {
                workload: w,
                status: st.as_str(),
            };
            by_status.get_or_create(&labels).inc_by(c.mailboxes);
        }
        for (w, on) in [
            ("incoming", c.incoming_enabled),
            ("outgoing", c.outgoing_enabled),
        ] {
            if on {
                enabled
                    .get_or_create(&WorkloadLabels { workload: w })
                    .inc_by(c.mailboxes);
            }
        }
        let labels = ApprovalLabels {
            approval: c.approval_status.as_str(),
        };
        approval.get_or_create(&labels).inc_by(c.mailboxes);
    }
    r.register(
        "mailboxes",
        "Mailboxes by workload and the status of its last test or run",
        by_status,
    );
    r.register(
        "mailboxes_enabled",
        "Mailboxes with the workload enabled",
        enabled,
    );
    r.register(
        "mailboxes_approval",
        "Mailboxes by the approval of their email address",
        approval,
    );

    let lag = Seconds::default();
    let overdue = Family::<WorkloadLabels, Gauge>::default();
    let incoming_lag = if incoming.mailboxes > 0 {
        seconds_since(incoming.oldest_success, now)
    } else {
        0.0
    };
    lag.get_or_create(&WorkloadLabels {
        workload: "incoming",
    })
    .set(incoming_lag);
    lag.get_or_create(&WorkloadLabels {
        workload: "outgoing",
    })
    .set(seconds_since(queue.oldest_due, now));
    overdue
        .get_or_create(&WorkloadLabels {
            workload: "incoming",
        })
        .set(incoming.overdue);
    overdue
        .get_or_create(&WorkloadLabels {
            workload: "outgoing",
        })
        .set(queue.overdue);
    r.register_with_unit(
        "sync_lag",
        "incoming: time since the oldest last successful run among mailboxes that may run; outgoing: how long the longest-waiting due email has waited",
        Unit::Seconds,
        lag,
    );
    r.register(
        "sync_overdue",
        "incoming: mailboxes whose next run is more than 60 s past due; outgoing: queued emails more than 60 s past due",
        overdue,
    );

    let outgoing = Family::<StatusLabels, Gauge>::default();
    for (st, n) in [("pending_send", queue.pending), ("sending", queue.sending)] {
        let labels = StatusLabels {
            status: st.to_owned(),
        };
        outgoing.get_or_create(&labels).set(n);
    }
    r.register(
        "outgoing_queue",
        "Emails queued to send (pending_send) and being sent (sending)",
        outgoing,
    );

    let job_gauge = Family::<StatusLabels, Gauge>::default();
    for st in [JobStatus::Queued, JobStatus::Running] {
        let n = jobs.iter().find(|(s, _)| *s == st).map_or(0, |(_, n)| *n);
        let labels = StatusLabels {
            status: st.as_str().to_owned(),
        };
        job_gauge.get_or_create(&labels).set(n);
    }
    r.register("jobs", "Background jobs not finished, by status", job_gauge);

    let alert_gauge = Family::<SeverityLabels, Gauge>::default();
    for sev in AlertSeverity::ALL {
        let n = alerts.iter().find(|(s, _)| s == sev).map_or(0, |(_, n)| *n);
        let labels = SeverityLabels {
            severity: sev.as_str(),
        };
        alert_gauge.get_or_create(&labels).set(n);
    }
    r.register(
        "alerts",
        "Alerts (kept until dismissed), by severity",
        alert_gauge,
    );

    if let Some(rows) = webhooks {
        let outbox = Family::<StatusLabels, Gauge>::default();
        for st in ["pending", "delivering"] {
            let n = rows.iter().find(|(s, _)| s == st).map_or(0, |(_, n)| *n);
            let labels = StatusLabels {
                status: st.to_owned(),
            };
            outbox.get_or_create(&labels).set(n);
        }
        r.register(
            "webhook_outbox",
            "Webhook deliveries waiting (pending) or being delivered (delivering)",
            outbox,
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct Probe {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `GET /livez`: 200 while the process serves requests.
async fn livez() -> Json<Probe> {
    Json(Probe {
        status: "alive",
        reason: None,
    })
}

/// `GET /readyz`: 200 when the store answers with every migration applied and,
/// on a node that runs an engine, the engine runs; else 503 with the reason.
async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Probe>) {
    let reason = match s.store.pending_migrations().await {
        Err(e) => {
            // The reason is public: the error (which may name the database host)
            // goes to the log only.
            tracing::warn!(error = %e, "readiness: the store does not answer");
            Some("the store does not answer".to_owned())
        }
        Ok(pending) if !pending.is_empty() => Some(format!(
            "migrations not applied: {}",
            pending
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Ok(_) => match &s.engine_metrics {
            Some(m) if !m.engine_running() => Some("the engine is not running".to_owned()),
            _ => None,
        },
    };
    match reason {
        None => (
            StatusCode::OK,
            Json(Probe {
                status: "ready",
                reason: None,
            }),
        ),
        Some(reason) => {
            tracing::warn!(reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Probe {
                    status: "not_ready",
                    reason: Some(reason),
                }),
            )
        }
    }
}
