//! Raising alerts for a mailbox: to its owner, and to the profile's owner when
//! the profile is concerned. A failure to write an alert is logged, never fatal.

use chrono::Utc;
use mailbridge_domain::alert::Alert;
use mailbridge_domain::ids::new_id;
use mailbridge_domain::{AlertScope, AlertSeverity};
use mailbridge_store::Store;

use crate::context::MailboxContext;

#[allow(clippy::too_many_arguments)]
pub async fn raise(
    store: &Store,
    ctx: &MailboxContext,
    scope: AlertScope,
    severity: AlertSeverity,
    item_ref: Option<String>,
    message: String,
    fix: &str,
    to_profile_owner: bool,
) {
    let alert = Alert {
        id: new_id(),
        org_id: ctx.mailbox.org_id.clone(),
        scope,
        severity,
        mailbox_id: (scope != AlertScope::Profile).then(|| ctx.mailbox.id.clone()),
        // A router mailbox may have no profile (its context's has no id).
        profile_id: (!ctx.profile.id.is_empty()).then(|| ctx.profile.id.clone()),
        item_ref,
        message,
        fix: Some(fix.to_owned()),
        recipient_ids: ctx.recipients(to_profile_owner),
        created_at: Utc::now(),
    };
    if let Err(e) = store.create_alert(&alert).await {
        tracing::error!(mailbox = %ctx.mailbox.id, error = %e, "could not record an alert");
    }
}
