//! Exchange Online mailboxes, through Microsoft Graph: the same workloads as
//! IMAP/SMTP, adapted at the edge. Incoming reads each folder's delta pages and
//! gives every message a synthetic, increasing UID per (mailbox, folder) (the
//! store's `graph_items`), so that batch.rs and pipeline.rs decide and write it
//! unchanged; outgoing sends MIME with `sendMail` (Exchange saves the Sent copy);
//! Test & Enable gets a token, opens the Inbox and sends the test message.
//! Used only for profiles whose server type is `exchange_online`.

pub mod incoming;
pub mod outgoing;
pub mod test_enable;

use std::sync::Arc;

use mailbridge_connectors::graph::{
    AccessTokens, GraphClient, GraphConfig, GraphMailbox, TokenFuture,
};
use mailbridge_connectors::identity::{TokenRequest, TokenSource};
use mailbridge_domain::ServerType;
use mailbridge_domain::error_model::SyncError;

use crate::Engine;
use crate::context::{MailboxContext, config_error};

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

/// The Graph mailbox of `ctx` (its user is the mailbox's email address), with
/// the profile's token request; a missing credential is "Failed Authentication".
pub async fn mailbox(engine: &Engine, ctx: &MailboxContext) -> Result<GraphMailbox, SyncError> {
    let request = crate::identity::graph_token_request(&engine.store, &ctx.profile)
        .await
        .map_err(SyncError::from)?;
    let source = engine.token_source()?;
    let base_url = format!(
        "{}/v1.0",
        ctx.profile
            .settings
            .graph_url_or_default()
            .trim_end_matches('/')
    );
    let cfg = GraphConfig {
        base_url,
        timeout: engine.config.network_timeout,
        extra_roots: engine.config.extra_roots.clone(),
        ..GraphConfig::default()
    };
    let client = GraphClient::new(cfg, Arc::new(GraphTokens { source, request }))?;
    let user = ctx.mailbox.email_address.clone().ok_or_else(|| {
        config_error(
            "the mailbox has no email address to address it in Exchange Online",
            "set the owner's email address",
        )
    })?;
    Ok(client.mailbox(&user))
}
