//! Exchange Online mailboxes, through Microsoft Graph: the same workloads as
//! IMAP/SMTP, adapted at the edge. Incoming reads each folder's delta pages and
//! gives every message a synthetic, increasing UID per (mailbox, folder) (the
//! store's `graph_items`), so that batch.rs and pipeline.rs decide and write it
//! unchanged; outgoing sends MIME with `sendMail` (Exchange saves the Sent copy);
//! Test & Enable gets a token, opens the Inbox and sends the test message.
//! Used only for profiles whose server type is `exchange_online`.

pub mod incoming;
pub mod notifications;
pub mod outgoing;
pub mod test_enable;

use std::sync::Arc;

use mailbridge_connectors::graph::{
    AccessTokens, GraphAnswer, GraphClient, GraphConfig, GraphMailbox, GraphObserver, TokenFuture,
};
use mailbridge_connectors::identity::{TokenRequest, TokenSource};
use mailbridge_domain::ServerType;
use mailbridge_domain::error_model::SyncError;

use crate::Engine;
use crate::context::{MailboxContext, config_error};
use crate::identity::TokenBasis;

/// The UIDVALIDITY of every Graph folder: UIDs are mailbridge's own and never
/// reassigned (an item keeps its UID when its folder is read again).
pub const GRAPH_UIDVALIDITY: u32 = 1;

/// Whether the mailbox's profile is synchronized through Graph.
pub fn uses_graph(ctx: &MailboxContext) -> bool {
    ctx.profile.settings.server_type == ServerType::ExchangeOnline
}

/// The identity layer's cached app-only tokens for one profile's request.
struct GraphTokens {
    source: Arc<TokenSource>,
    request: TokenRequest,
}

impl AccessTokens for GraphTokens {
    fn access_token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            self.source
                .token(&self.request)
                .await
                .map(|t| t.token)
                .map_err(SyncError::from)
        })
    }

    fn invalidate(&self) {
        self.source.invalidate(&self.request);
    }
}

/// One Graph client per profile, shared by every run and task of the node, so
/// that the 4-requests-per-mailbox limit holds across them and connections are
/// reused; replaced when what it was made from changes.
#[derive(Default)]
pub struct GraphClients {
    by_profile: std::sync::Mutex<std::collections::HashMap<String, (String, GraphClient)>>,
}

/// What a profile's client is made from, as a comparable key (no secret in it:
/// a changed secret changes the profile's `updated_at`; a certificate never
/// changes under its id).
fn client_key(ctx: &MailboxContext, base_url: &str, basis: &TokenBasis) -> String {
    format!(
        "{base_url}|{}|{}|{}|{}|{}",
        ctx.profile.settings.authority_url_or_default(),
        basis.tenant,
        basis.client_id,
        basis.credential_key(),
        ctx.profile.updated_at
    )
}

/// The Graph mailbox of `ctx` (its user is the mailbox's email address), with
/// the profile's token request; a missing credential is "Failed Authentication".
pub async fn mailbox(engine: &Engine, ctx: &MailboxContext) -> Result<GraphMailbox, SyncError> {
    let (client, user) = client(engine, ctx).await?;
    Ok(client.mailbox(&user))
}

/// The profile's shared Graph client and the user `ctx` addresses in it (the
/// mailbox's email address), for what is not mail (ACT's `GraphAct`).
pub(crate) async fn client(
    engine: &Engine,
    ctx: &MailboxContext,
) -> Result<(GraphClient, String), SyncError> {
    let user = ctx.mailbox.email_address.clone().ok_or_else(|| {
        config_error(
            "the mailbox has no email address to address it in Exchange Online",
            "set the owner's email address",
        )
    })?;
    // Only what tells whether the shared client still holds is read on each run;
    // the secret or certificate key is read (and decrypted, parsed) only when a
    // client is made.
    let basis = crate::identity::graph_token_basis(&engine.store, &ctx.profile)
        .await
        .map_err(SyncError::from)?;
    let base_url = format!(
        "{}/v1.0",
        ctx.profile
            .settings
            .graph_url_or_default()
            .trim_end_matches('/')
    );
    let key = client_key(ctx, &base_url, &basis);
    let cached = engine
        .graph_clients
        .by_profile
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&ctx.profile.id)
        .filter(|(k, _)| *k == key)
        .map(|(_, client)| client.clone());
    if let Some(client) = cached {
        return Ok((client, user));
    }
    let request = crate::identity::graph_token_request_from(&engine.store, &ctx.profile, &basis)
        .await
        .map_err(SyncError::from)?;
    let source = engine.token_source()?;
    let metrics = engine.metrics.clone();
    let cfg = GraphConfig {
        base_url,
        timeout: engine.config.network_timeout,
        extra_roots: engine.config.extra_roots.clone(),
        observer: Some(GraphObserver(Arc::new(move |a: GraphAnswer| {
            metrics.graph_answer(a.status);
        }))),
        ..GraphConfig::default()
    };
    let client = GraphClient::new(cfg, Arc::new(GraphTokens { source, request }))?;
    engine
        .graph_clients
        .by_profile
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(ctx.profile.id.clone(), (key, client.clone()));
    Ok((client, user))
}
