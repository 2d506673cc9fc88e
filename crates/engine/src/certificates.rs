//! Certificate expiry alerts: about once an hour the engine looks at the
//! certificates that expire within 30 days and raises, for each, an
//! organization alert at 30 days, at 7 days and when it has expired — each
//! once, recorded on the certificate so that no node raises it twice.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use mailbridge_domain::alert::Alert;
use mailbridge_domain::certificate::{EXPIRY_FIX, expiry_alert_due, expiry_alert_message};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::{AlertScope, AlertSeverity, CertificateExpiryAlert};
use mailbridge_store::{Store, StoreResult};
use tokio::sync::watch;

use crate::Engine;

/// Checks now, then every `certificate_check_interval`, until shutdown.
pub async fn run(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if let Err(e) = check_certificate_expiry(&engine.store, Utc::now()).await {
            tracing::warn!(error = %e, "could not check certificate expiry");
        }
        tokio::select! {
            _ = tokio::time::sleep(engine.config.certificate_check_interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Raises the expiry alerts due at `now`; returns how many were raised.
pub async fn check_certificate_expiry(store: &Store, now: DateTime<Utc>) -> StoreResult<usize> {
    let mut raised = 0;
    for c in store
        .certificates_for_expiry_check(now + Duration::days(30))
        .await?
    {
        let cert = &c.certificate;
        let Some(stage) = expiry_alert_due(now, cert.not_after, c.raised) else {
            continue;
        };
        if !store
            .claim_certificate_alert(&cert.org_id, &cert.id, stage)
            .await?
        {
            continue;
        }
        let alert = Alert {
            id: new_id(),
            org_id: cert.org_id.clone(),
            scope: AlertScope::Organization,
            severity: match stage {
                CertificateExpiryAlert::Expired => AlertSeverity::Error,
                _ => AlertSeverity::Warning,
            },
            mailbox_id: None,
            profile_id: None,
            item_ref: None,
            message: expiry_alert_message(cert, stage, now),
            fix: Some(EXPIRY_FIX.to_owned()),
            recipient_ids: Vec::new(),
            created_at: Utc::now(),
        };
        match store.create_alert(&alert).await {
            Ok(_) => raised += 1,
            Err(e) => {
                tracing::error!(certificate = %cert.id, error = %e, "could not record a certificate expiry alert")
            }
        }
    }
    Ok(raised)
}
