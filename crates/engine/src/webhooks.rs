//! The webhook worker: claims due deliveries from the store's outbox, posts
//! each signed (Standard Webhooks) to its subscription's URL, and records every
//! attempt; the retry schedule decides what follows a failure. Deliveries of
//! different order keys (mailboxes) go out concurrently, each key strictly in
//! event order: a claim holds only the first open delivery of each key.
//! Delivery is at least once: a node that stops after a receiver answered but
//! before the answer was recorded posts the event again (same `webhook-id`).

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt as _;
use mailbridge_domain::destination::{forbidden_host, is_forbidden};
use mailbridge_domain::webhook::signature::sign;
use mailbridge_store::{AfterAttempt, AttemptResult, ClaimedDelivery};
use tokio::sync::watch;

use crate::Engine;

/// Deliveries claimed per round.
const CLAIM_BATCH: i64 = 64;

pub async fn run(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let config = &engine.config;
    let client = match reqwest::Client::builder()
        .dns_resolver(Arc::new(NoLinkLocal))
        .timeout(config.webhook_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mailbridge/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the webhook worker cannot start its HTTP client");
            return;
        }
    };
    match engine.store.release_webhook_claims(&config.node_id).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            deliveries = n,
            "webhook deliveries interrupted by the last stop are due again"
        ),
        Err(e) => tracing::error!(error = %e, "could not release this node's webhook claims"),
    }
    while !*shutdown.borrow() {
        let claimed = engine
            .store
            .claim_webhook_deliveries(&config.node_id, config.webhook_lease, CLAIM_BATCH)
            .await;
        match claimed {
            Ok(batch) if !batch.is_empty() => {
                // Posted to the end even when a stop comes meanwhile (each is
                // bounded by the timeout), so that no answer goes unrecorded.
                futures::stream::iter(batch)
                    .for_each_concurrent(config.webhook_concurrency.max(1), |d| {
                        deliver(&engine, &client, d)
                    })
                    .await;
                // The next events of those keys may be due now.
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not claim webhook deliveries"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.webhook_poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One attempt: post, record, schedule.
async fn deliver(engine: &Engine, client: &reqwest::Client, d: ClaimedDelivery) {
    let at = Utc::now();
    let started = Instant::now();
    let (status_code, error) = post(client, &d, at.timestamp()).await;
    let result = AttemptResult {
        at,
        status_code,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        error,
    };
    let attempts = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
    let next = match &result.error {
        None => AfterAttempt::Delivered,
        Some(_) => match engine.config.webhook_retry.after_failure(attempts) {
            Some(wait) => AfterAttempt::RetryAt(
                Utc::now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(10)),
            ),
            None => AfterAttempt::GiveUp,
        },
    };
    match next {
        AfterAttempt::Delivered => {
            tracing::debug!(event = %d.event_id, subscription = %d.subscription_id, "webhook delivered")
        }
        AfterAttempt::RetryAt(when) => {
            tracing::info!(event = %d.event_id, subscription = %d.subscription_id, attempts,
                error = result.error.as_deref().unwrap_or_default(), retry_at = %when, "webhook attempt failed; will retry")
        }
        AfterAttempt::GiveUp => {
            tracing::warn!(event = %d.event_id, subscription = %d.subscription_id, attempts,
                error = result.error.as_deref().unwrap_or_default(), "webhook delivery failed after its last attempt")
        }
    }
    match engine.store.record_webhook_attempt(&d, &result, next).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(event = %d.event_id, "a webhook claim expired during its attempt; another may repeat it")
        }
        Err(e) => {
            tracing::error!(event = %d.event_id, error = %e, "could not record a webhook attempt")
        }
    }
}

/// Posts one delivery: the receiver's status (when it answered) and, unless it
/// answered 2xx, why the attempt failed.
async fn post(
    client: &reqwest::Client,
    d: &ClaimedDelivery,
    timestamp: i64,
) -> (Option<u16>, Option<String>) {
    // A subscription made before address literals were checked is refused here
    // too (names are checked by the resolver).
    if let Some(why) = refused_destination(&d.url) {
        return (
            None,
            Some(format!(
                "not sent: {why}; subscribe the receiver's own address"
            )),
        );
    }
    let signature = match sign(d.secret.expose(), &d.event_id, timestamp, &d.payload) {
        Ok(s) => s,
        Err(e) => return (None, Some(format!("{e}; rotate the subscription's secret"))),
    };
    let request = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone());
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let error = (!status.is_success()).then(|| {
                let hint = if status.is_redirection() {
                    "; redirects are not followed: subscribe the final URL"
                } else {
                    ""
                };
                format!("the receiver answered {status}{hint}")
            });
            (Some(status.as_u16()), error)
        }
        Err(e) => (None, Some(describe(&e))),
    }
}

/// A network failure in plain words, without the URL.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "the receiver did not answer in time".to_owned();
    }
    let mut text = if e.is_connect() {
        "could not connect to the receiver".to_owned()
    } else {
        "the request to the receiver failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = last {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

/// Why a receiver's URL is refused, when its host is a forbidden address literal.
fn refused_destination(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host().and_then(|h| forbidden_host(&h)))
}

/// Resolves receivers' names like the system does, without the link-local
/// addresses (`domain::destination`): a name that points at a metadata service
/// is never connected to.
struct NoLinkLocal;

impl reqwest::dns::Resolve for NoLinkLocal {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<std::net::SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| !is_forbidden(a.ip()))
                .collect();
            if allowed.is_empty() && !found.is_empty() {
                return Err(format!(
                    "{host} resolves only to link-local addresses, where cloud metadata services answer; webhooks are not sent there"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod destination_tests {
    use reqwest::dns::Resolve;

    use super::*;

    #[test]
    fn metadata_literals_are_refused_before_sending() {
        assert!(refused_destination("http://169.254.169.254/latest/meta-data/").is_some());
        assert!(refused_destination("http://[fe80::1]:8080/hook").is_some());
        assert!(refused_destination("http://127.0.0.1:8080/hook").is_none());
        assert!(refused_destination("https://crm.example.org/hook").is_none());
    }

    #[tokio::test]
    async fn names_resolve_to_their_allowed_addresses() {
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let addrs: Vec<std::net::SocketAddr> = NoLinkLocal.resolve(name).await.unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
