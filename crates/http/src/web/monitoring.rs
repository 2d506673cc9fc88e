//! Monitoring: the organization at a glance (mailboxes active, failed, pending;
//! emails tracked and sent; failures; the oldest lag), a throughput chart drawn on
//! the server as inline SVG, each email server profile and each mailbox (worst
//! first, paged): last successful runs, lag, items processed and failed, the
//! last completeness census and its gaps, errors.

use axum::Router;
use axum::extract::Query;
use axum::response::Html;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::WebState;
use super::error::WebError;
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new().route("/monitoring", get(page))
}

#[derive(Deserialize, Default)]
struct MonitoringQuery {
    /// `24h` or `1h`.
    #[serde(default)]
    window: String,
    /// `worst`, `lag`, `errors`, `name`.
    #[serde(default)]
    sort: String,
    #[serde(default)]
    cursor: String,
}

/// The sorts of the mailbox list: (key, text).
const SORTS: &[(&str, &str)] = &[
    ("worst", "Worst first"),
    ("lag", "Largest lag"),
    ("errors", "Most failures"),
    ("name", "Name"),
];

/// One bucket of the throughput series, as the API gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub tracked: i64,
    pub sent: i64,
    pub failed: i64,
}

/// A rectangle of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// `tracked`, `sent` or `failed`.
    pub series: &'static str,
    pub title: String,
}

/// A label on an axis at a position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tick {
    pub at: f64,
    pub label: String,
}

/// The geometry of the throughput chart: stacked bars per bucket (tracked, sent,
/// failed from the bottom), y ticks on a round scale, and time labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub max: i64,
    pub bars: Vec<Bar>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub total: i64,
}

/// The top of the scale: four ticks of a "round" step (1, 2 or 5 times a power
/// of ten), at least `n`, so that every tick is a whole number.
fn nice_max(n: i64) -> i64 {
    let mut scale = 1i64;
    loop {
        for m in [1, 2, 5] {
            if 4 * m * scale >= n {
                return 4 * m * scale;
            }
        }
        scale *= 10;
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Lays out the chart in a `width` × `height` box; `bucket_seconds` picks the
/// time labels (hours for hourly buckets, hh:mm otherwise).
pub fn chart(buckets: &[Bucket], bucket_seconds: i64, width: f64, height: f64) -> Chart {
    let (left, right, top, bottom) = (44.0, width - 8.0, 10.0, height - 24.0);
    let total: i64 = buckets.iter().map(|b| b.tracked + b.sent + b.failed).sum();
    let peak = buckets
        .iter()
        .map(|b| b.tracked + b.sent + b.failed)
        .max()
        .unwrap_or(0);
    let max = nice_max(peak);
    let plot_h = bottom - top;
    let n = buckets.len().max(1) as f64;
    let slot = (right - left) / n;
    let bar_w = round1((slot * 0.68).max(1.0));
    let mut bars = Vec::new();
    let mut x_ticks = Vec::new();
    let label_every = (buckets.len() / 8).max(1);
    for (i, b) in buckets.iter().enumerate() {
        let x = round1(left + i as f64 * slot + (slot - bar_w) / 2.0);
        let mut base = bottom;
        let when = if bucket_seconds >= 3600 {
            b.start.format("%H:00").to_string()
        } else {
            b.start.format("%H:%M").to_string()
        };
        for (series, value, what) in [
            ("tracked", b.tracked, "tracked"),
            ("sent", b.sent, "sent"),
            ("failed", b.failed, "failed"),
        ] {
            if value <= 0 {
                continue;
            }
            let h = round1(value as f64 / max as f64 * plot_h);
            base -= h;
            bars.push(Bar {
                x,
                y: round1(base),
                w: bar_w,
                h,
                series,
                title: format!("{when} UTC: {value} {what}"),
            });
        }
        if i % label_every == 0 {
            x_ticks.push(Tick {
                at: round1(left + i as f64 * slot + slot / 2.0),
                label: when,
            });
        }
    }
    let y_ticks = (0..=4)
        .map(|k| Tick {
            at: round1(bottom - plot_h * k as f64 / 4.0),
            label: (max * k / 4).to_string(),
        })
        .collect();
    Chart {
        width,
        height,
        left,
        right,
        top,
        bottom,
        max,
        bars,
        y_ticks,
        x_ticks,
        total,
    }
}

async fn page(s: Session, Query(q): Query<MonitoringQuery>) -> Result<Html<String>, WebError> {
    let window = if q.window == "1h" { "1h" } else { "24h" };
    let sort = SORTS
        .iter()
        .find(|(k, _)| *k == q.sort)
        .map(|(k, _)| *k)
        .unwrap_or("worst");
    let summary: Value = s
        .api
        .get(&format!(
            "{}?window={window}",
            s.org_api("monitoring/summary")
        ))
        .await?;
    let throughput: Value = s
        .api
        .get(&format!(
            "{}?window={window}",
            s.org_api("monitoring/throughput")
        ))
        .await?;
    let profiles: Value = s
        .api
        .get(&format!(
            "{}?window={window}",
            s.org_api("monitoring/profiles")
        ))
        .await?;
    let mq = {
        let mut mq = form_urlencoded::Serializer::new(String::new());
        mq.append_pair("window", window)
            .append_pair("sort", sort)
            .append_pair("limit", "25");
        if !q.cursor.is_empty() {
            mq.append_pair("cursor", &q.cursor);
        }
        mq.finish()
    };
    let mailboxes: Value = s
        .api
        .get(&format!("{}?{mq}", s.org_api("monitoring/mailboxes")))
        .await?;
    let buckets: Vec<Bucket> =
        serde_json::from_value(throughput["buckets"].clone()).unwrap_or_default();
    let bucket_seconds = throughput["bucket_seconds"].as_i64().unwrap_or(3600);
    let chart = chart(&buckets, bucket_seconds, 960.0, 220.0);
    let sums = buckets.iter().fold((0, 0, 0), |(t, s_, f), b| {
        (t + b.tracked, s_ + b.sent, f + b.failed)
    });
    html(
        "monitoring.html",
        json!({
            "layout": s.layout("monitoring", "Monitoring"),
            "window": window,
            "window_text": if window == "1h" { "last hour" } else { "last 24 hours" },
            "sort": sort,
            "sorts": SORTS,
            "summary": summary,
            "chart": chart,
            "sums": {"tracked": sums.0, "sent": sums.1, "failed": sums.2},
            "profiles": profiles["items"],
            "mailboxes": mailboxes["items"],
            "next_cursor": mailboxes["next_cursor"],
            "paged": !q.cursor.is_empty(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-03-01T{h:02}:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(7), 8);
        assert_eq!(nice_max(8), 8);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(120), 200);
        assert_eq!(nice_max(500), 800);
    }

    #[test]
    fn bars_stack_within_the_plot() {
        let buckets = vec![
            Bucket {
                start: at(10),
                tracked: 0,
                sent: 0,
                failed: 0,
            },
            Bucket {
                start: at(11),
                tracked: 4,
                sent: 2,
                failed: 2,
            },
        ];
        let c = chart(&buckets, 3600, 400.0, 200.0);
        assert_eq!(c.max, 8);
        assert_eq!(c.total, 8);
        assert_eq!(c.bars.len(), 3, "the empty bucket draws nothing");
        let plot_h = c.bottom - c.top;
        // A full-scale bucket fills the plot exactly, tracked at the bottom.
        let [tracked, sent, failed] = [&c.bars[0], &c.bars[1], &c.bars[2]];
        assert_eq!(tracked.series, "tracked");
        assert!((tracked.y + tracked.h - c.bottom).abs() < 0.11);
        assert!((sent.y + sent.h - tracked.y).abs() < 0.11);
        assert!((failed.y - c.top).abs() < 0.3, "{failed:?}");
        assert!((tracked.h - plot_h * 0.5).abs() < 0.11);
        // Bars of one bucket share x and stay inside their slot.
        assert!(
            c.bars
                .iter()
                .all(|b| b.x == tracked.x && b.x >= c.left && b.x + b.w <= c.right)
        );
        assert_eq!(failed.title, "11:00 UTC: 2 failed");
        assert_eq!(c.y_ticks.first().unwrap().label, "0");
        assert_eq!(c.y_ticks.last().unwrap().label, "8");
        assert_eq!(c.y_ticks.last().unwrap().at, c.top);
        assert_eq!(c.x_ticks[0].label, "10:00");
    }

    #[test]
    fn minute_buckets_are_labelled_with_minutes() {
        let b: Vec<Bucket> = (0..60)
            .map(|i| Bucket {
                start: at(9) + chrono::Duration::minutes(i),
                tracked: 1,
                sent: 0,
                failed: 0,
            })
            .collect();
        let c = chart(&b, 60, 960.0, 220.0);
        assert_eq!(c.x_ticks.len(), 9, "a label every 7 minutes");
        assert_eq!(c.x_ticks[1].label, "09:07");
        assert_eq!(c.bars.len(), 60);
    }
}
