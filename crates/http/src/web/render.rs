//! Templates: MiniJinja, compiled into the binary, HTML auto-escaped, and strict
//! about undefined values so that a misspelt field fails the tests instead of
//! rendering blank.

use std::sync::LazyLock;

use axum::response::Html;
use chrono::{DateTime, Utc};
use minijinja::{Environment, UndefinedBehavior, Value};

use super::error::WebError;

/// Every template, by name. Pages add theirs here.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "sync_macros.html",
        include_str!("../../web/templates/sync_macros.html"),
    ),
    (
        "mailboxes.html",
        include_str!("../../web/templates/mailboxes.html"),
    ),
    (
        "mailboxes_edit.html",
        include_str!("../../web/templates/mailboxes_edit.html"),
    ),
    (
        "mailbox.html",
        include_str!("../../web/templates/mailbox.html"),
    ),
    ("job.html", include_str!("../../web/templates/job.html")),
    (
        "job_progress.html",
        include_str!("../../web/templates/job_progress.html"),
    ),
    (
        "monitoring.html",
        include_str!("../../web/templates/monitoring.html"),
    ),
    ("nodes.html", include_str!("../../web/templates/nodes.html")),
    (
        "emails.html",
        include_str!("../../web/templates/emails.html"),
    ),
    ("email.html", include_str!("../../web/templates/email.html")),
    ("base.html", include_str!("../../web/templates/base.html")),
    (
        "macros.html",
        include_str!("../../web/templates/macros.html"),
    ),
    ("error.html", include_str!("../../web/templates/error.html")),
    (
        "signin.html",
        include_str!("../../web/templates/signin.html"),
    ),
    (
        "organizations.html",
        include_str!("../../web/templates/organizations.html"),
    ),
    (
        "alerts.html",
        include_str!("../../web/templates/alerts.html"),
    ),
    (
        "record_macros.html",
        include_str!("../../web/templates/record_macros.html"),
    ),
    (
        "profiles.html",
        include_str!("../../web/templates/profiles.html"),
    ),
    (
        "profile_form.html",
        include_str!("../../web/templates/profile_form.html"),
    ),
    (
        "profile_test.html",
        include_str!("../../web/templates/profile_test.html"),
    ),
    (
        "profile_delete.html",
        include_str!("../../web/templates/profile_delete.html"),
    ),
    (
        "settings.html",
        include_str!("../../web/templates/settings.html"),
    ),
    (
        "webhooks.html",
        include_str!("../../web/templates/webhooks.html"),
    ),
    (
        "certificates.html",
        include_str!("../../web/templates/certificates.html"),
    ),
    (
        "webhook.html",
        include_str!("../../web/templates/webhook.html"),
    ),
    (
        "webhook_form.html",
        include_str!("../../web/templates/webhook_form.html"),
    ),
    (
        "webhook_secret.html",
        include_str!("../../web/templates/webhook_secret.html"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
    }
    env.add_filter("datetime", datetime);
    env.add_filter("ago", ago);
    env.add_filter("label", label);
    env
});

/// Renders template `name` with `ctx`.
pub fn render_page(name: &str, ctx: impl serde::Serialize) -> Result<String, WebError> {
    ENV.get_template(name)
        .and_then(|t| t.render(minijinja::value::Serde(ctx)))
        .map_err(|e| WebError::Template(format!("{name}: {e:#}")))
}

/// Renders template `name` as an HTML answer.
pub fn html(name: &str, ctx: impl serde::Serialize) -> Result<Html<String>, WebError> {
    render_page(name, ctx).map(Html)
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `2026-11-26 12:40 UTC` from an RFC 3339 time; `—` for none.
fn datetime(v: Value) -> String {
    match parse_time(&v) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None if v.is_none() || v.is_undefined() => "—".into(),
        None => v.to_string(),
    }
}

/// `3 min ago`, `in 2 h` from an RFC 3339 time; `never` for none.
fn ago(v: Value) -> String {
    let Some(t) = parse_time(&v) else {
        return "never".into();
    };
    let secs = (Utc::now() - t).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let text = match n {
        0..=59 => {
            return if future {
                "in a moment".into()
            } else {
                "just now".into()
            };
        }
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// `pending_approval` → `Pending approval`.
fn label(v: Value) -> String {
    let s = v
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string());
    let s = s.replace(['_', '-'], " ");
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn filters_read_like_the_product() {
        assert_eq!(label(Value::from("pending_approval")), "Pending approval");
        assert_eq!(
            datetime(Value::from("2026-11-26T12:40:05Z")),
            "2026-11-26 12:40 UTC"
        );
        assert_eq!(datetime(Value::from(())), "—");
        assert_eq!(ago(Value::from(())), "never");
        let t = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
        assert_eq!(ago(Value::from(t)), "5 min ago");
    }
}
