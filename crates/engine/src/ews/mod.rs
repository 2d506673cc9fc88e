//! Exchange Server (on premises) through EWS: one client per profile and node,
//! acting as each mailbox by impersonation (or, with credentials per mailbox, a
//! client per mailbox). The EWS URL is the profile's location, or the one
//! Autodiscover found for the mailbox.
//!
//! The workloads, as for Exchange Online: `incoming.rs` (each folder's
//! `SyncFolderItems` pages, synthetic UIDs, then batch.rs), `outgoing.rs`
//! (`SendAndSaveCopy`, Sent Items looked at before anything is sent again),
//! `test_enable.rs`. There is no push: EWS mailboxes are polled.

pub mod incoming;
pub mod outgoing;
pub mod test_enable;

use std::sync::Arc;

use mailbridge_connectors::ews::{
    EwsAuth, EwsClient, EwsConfig, EwsEvent, EwsObserver, ExchangeTokens, exchange_token_request,
};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::{AuthenticationType, ServerType};
use mailbridge_store::ProfileSecret;

use crate::Engine;
use crate::context::{MailboxContext, config_error, store_error};

/// The UIDVALIDITY of every EWS folder: UIDs are mailbridge's own (the store's
/// `graph_items`, keyed by EWS item ids here) and never reassigned. Not Graph's
/// value, so that a profile switched between Exchange Online and Exchange
/// Server starts its folders afresh rather than mixing the two kinds of ids.
pub const EWS_UIDVALIDITY: u32 = 2;

/// Whether the mailbox's profile speaks EWS (Exchange Server on premises).
pub fn uses_ews(ctx: &MailboxContext) -> bool {
    ctx.profile.settings.server_type == ServerType::ExchangeServer
}

/// One EWS client per profile, shared by the node's runs (its connection pool
/// and per-mailbox request limit with them); replaced when the profile changes.
#[derive(Default)]
pub struct EwsClients {
    by_profile: std::sync::Mutex<std::collections::HashMap<String, (String, EwsClient)>>,
}

/// The EWS endpoint of the mailbox: discovered, or the profile's.
pub(crate) fn ews_url(ctx: &MailboxContext) -> Result<String, SyncError> {
    let s = &ctx.profile.settings;
    if ctx.uses_autodiscover() {
        return ctx
            .mailbox
            .discovered_incoming_location
            .clone()
            .ok_or_else(|| {
                config_error(
                    "the EWS endpoint of the mailbox is unknown: Autodiscover has not run for it",
                    "run Test & Enable for the mailbox, which looks it up",
                )
            });
    }
    s.incoming_server_location.clone().ok_or_else(|| {
        config_error(
            "the profile has no incoming_server_location (the EWS URL)",
            "set incoming_server_location to https://<server>/EWS/Exchange.asmx, or turn auto_discover on",
        )
    })
}

fn config(engine: &Engine, ctx: &MailboxContext, url: String, auth: EwsAuth) -> EwsConfig {
    let mut cfg = EwsConfig::new(url, auth);
    cfg.timeout = engine.config.network_timeout;
    cfg.extra_roots = engine.config.extra_roots.clone();
    cfg.allow_plaintext = ctx.profile.settings.allow_plaintext;
    let metrics = engine.metrics.clone();
    cfg.observer = Some(EwsObserver(Arc::new(move |event| {
        if let EwsEvent::Answered { status, busy } = event {
            metrics.ews_answer(status, busy);
        }
    })));
    cfg
}

/// The client acting as the mailbox of `ctx`.
pub(crate) async fn client(engine: &Engine, ctx: &MailboxContext) -> Result<EwsClient, SyncError> {
    let url = ews_url(ctx)?;
    let s = &ctx.profile.settings;
    let address = ctx.address()?;
    match s.authentication_type {
        AuthenticationType::CredentialsSpecifiedByUserOrQueue => {
            // The mailbox's own account: no impersonation, no sharing.
            let user = ctx
                .mailbox
                .username
                .clone()
                .unwrap_or_else(|| address.clone());
            let password = engine
                .store
                .mailbox_password(&ctx.mailbox.org_id, &ctx.mailbox.id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| {
                    config_error(
                        "the mailbox has no password, and its profile takes credentials from each mailbox",
                        "set the mailbox's password (PATCH /mailboxes/{id} with password), then run Test & Enable",
                    )
                })?;
            EwsClient::new(config(engine, ctx, url, EwsAuth::Basic { user, password }))
        }
        other => {
            let key = format!(
                "{url}|{other}|{}|{}",
                s.incoming_username.as_deref().unwrap_or_default(),
                ctx.profile.updated_at
            );
            if let Some((k, c)) = engine
                .ews_clients
                .by_profile
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&ctx.profile.id)
                && *k == key
            {
                return Ok(c.impersonating(&address));
            }
            let auth = profile_auth(engine, ctx, &url, other).await?;
            let shared = EwsClient::new(config(engine, ctx, url, auth))?;
            engine
                .ews_clients
                .by_profile
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(ctx.profile.id.clone(), (key, shared.clone()));
            Ok(shared.impersonating(&address))
        }
    }
}

/// The profile's own identity: its service account, or the app's certificate.
async fn profile_auth(
    engine: &Engine,
    ctx: &MailboxContext,
    url: &str,
    kind: AuthenticationType,
) -> Result<EwsAuth, SyncError> {
    let s = &ctx.profile.settings;
    match kind {
        AuthenticationType::CredentialsSpecifiedInProfile => {
            let user = s.incoming_username.clone().ok_or_else(|| {
                config_error(
                    "the profile has no user name for its service account",
                    "set incoming_username on the profile (DOMAIN\\user or user@domain)",
                )
            })?;
            let password = engine
                .store
                .profile_secret(
                    &ctx.mailbox.org_id,
                    &ctx.profile.id,
                    ProfileSecret::IncomingPassword,
                )
                .await
                .map_err(store_error)?
                .ok_or_else(|| {
                    config_error(
                        "the profile has no password for its service account",
                        "set incoming_password on the profile",
                    )
                })?;
            Ok(EwsAuth::Basic { user, password })
        }
        _ => {
            // Hybrid modern authentication: the app-only token of the profile's
            // app registration, for the Exchange server's host.
            let graph = crate::identity::graph_token_request(&engine.store, &ctx.profile)
                .await
                .map_err(SyncError::from)?;
            let request = exchange_token_request(
                &graph.authority_url,
                &graph.tenant,
                &graph.client_id,
                url,
                graph.credentials,
            )
            .map_err(|e| config_error(e, "correct the EWS URL of the profile"))?;
            Ok(EwsAuth::OAuth(Arc::new(ExchangeTokens {
                source: engine.token_source()?,
                request,
            })))
        }
    }
}
