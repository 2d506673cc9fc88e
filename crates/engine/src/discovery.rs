//! Autodiscover in the engine: before a run or a test, an IMAP/SMTP mailbox whose
//! profile has `auto_discover` gets its server locations looked up when it has
//! none, when they are older than `discovery_max_age`, or when they no longer pass
//! the profile's rules (`allow_plaintext` turned off); they are stored on the
//! mailbox with the time and the source, and connections use them. An Exchange
//! Server mailbox gets its EWS endpoint from Exchange Autodiscover v2 (JSON) the
//! same way, or, when v2 finds nothing, from Exchange's own Autodiscover (POX,
//! then SOAP, with the profile's credentials), stored as both its incoming and
//! its outgoing location. Exchange Online mailboxes need no lookup: Microsoft
//! Graph has one address per cloud (the profile's Graph URL).

use std::time::Duration;

use chrono::Utc;
use mailbridge_connectors::autodiscover::{
    AutodiscoverCredentials, DiscoveryConfig, LegacyMethod, discover_exchange,
    discover_exchange_legacy, discover_imap_smtp,
};
use mailbridge_domain::autodiscover::v2::V2Protocol;
use mailbridge_domain::autodiscover::{Attempt, Found};
use mailbridge_domain::error_model::{ErrorClass, SyncError};
use mailbridge_domain::location::{Direction, parse_location};
use mailbridge_domain::{AuthenticationType, DeliveryMethod, DiscoverySource, ServerType};
use mailbridge_store::{ProfileSecret, Store};

use crate::config::EngineConfig;
use crate::context::{MailboxContext, config_error, store_error};

/// The longest wait for one DNS query or HTTP request of a discovery: a lookup
/// that takes longer is not worth holding a run for.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The connectors' discovery settings from the engine's.
pub fn discovery_config(cfg: &EngineConfig) -> DiscoveryConfig {
    DiscoveryConfig {
        nameserver: cfg.discovery_nameserver,
        https_port: cfg.discovery_https_port,
        timeout: cfg.network_timeout.min(LOOKUP_TIMEOUT),
        extra_roots: cfg.extra_roots.clone(),
    }
}

impl MailboxContext {
    /// Whether this mailbox's locations come from autodiscover rather than from
    /// its profile.
    pub fn uses_autodiscover(&self) -> bool {
        let s = &self.profile.settings;
        s.auto_discover
            && matches!(
                s.server_type,
                ServerType::ImapSmtp | ServerType::ExchangeServer
            )
    }

    /// The directions synchronized with the mail server, which need a location.
    fn needed(&self) -> Vec<Direction> {
        let m = &self.mailbox;
        let mut d = Vec::new();
        if m.incoming_method == DeliveryMethod::ServerSideSync {
            d.push(Direction::Incoming);
        }
        if m.outgoing_method == DeliveryMethod::ServerSideSync {
            d.push(Direction::Outgoing);
        }
        d
    }

    /// Whether the stored locations can be used now: present for every needed
    /// direction, young enough, and still valid for the profile.
    fn discovered_is_usable(&self, cfg: &EngineConfig) -> bool {
        let Some(found) = self.mailbox.discovered() else {
            return false;
        };
        if found.is_stale(Utc::now(), cfg.discovery_max_age) {
            return false;
        }
        let s = &self.profile.settings;
        self.needed().into_iter().all(|d| {
            let text = match d {
                Direction::Incoming => &found.incoming,
                Direction::Outgoing => &found.outgoing,
            };
            text.as_deref().is_some_and(|t| {
                parse_location("discovered", t, s.server_type, d, s.allow_plaintext).is_ok()
            })
        })
    }

    /// Looks the mailbox's locations up when it uses autodiscover and they are
    /// missing, old or no longer valid, or always with `force` (Test & Enable);
    /// stores what was found and keeps it in this context.
    ///
    /// # Errors
    /// "mailbox location could not be determined", naming every lookup and the
    /// fix: permanent when nothing is published, transient when a lookup got no
    /// answer.
    pub async fn discover(
        &mut self,
        store: &Store,
        cfg: &EngineConfig,
        force: bool,
    ) -> Result<(), SyncError> {
        let needed = self.needed();
        if !self.uses_autodiscover() || needed.is_empty() {
            return Ok(());
        }
        if !force && self.discovered_is_usable(cfg) {
            return Ok(());
        }
        let email = self.mailbox.email_address.clone().ok_or_else(|| {
            config_error(
                "the mailbox has no email address to look its servers up by",
                "set the owner's email address, or enter the server locations on the profile and turn Auto Discover off",
            )
        })?;
        let allow_plaintext = self.profile.settings.allow_plaintext;
        let found = if self.profile.settings.server_type == ServerType::ExchangeServer {
            // One EWS endpoint serves both directions.
            let (ews, attempts) = self.discover_ews(store, cfg, &email).await?;
            mailbridge_connectors::autodiscover::ImapSmtpDiscovery {
                incoming: Some(ews.clone()),
                outgoing: Some(ews),
                attempts,
            }
        } else {
            discover_imap_smtp(&email, allow_plaintext, &discovery_config(cfg)).await
        };
        let attempts: Vec<String> = found.attempts.iter().map(ToString::to_string).collect();
        let missing = needed.iter().any(|d| match d {
            Direction::Incoming => found.incoming.is_none(),
            Direction::Outgoing => found.outgoing.is_none(),
        });
        if missing {
            let err = mailbridge_domain::autodiscover::location_unknown(&email, &found.attempts);
            tracing::warn!(mailbox = %self.mailbox.id, error = %err.message, "autodiscover found no usable location");
            return Err(err);
        }
        let source = found
            .incoming
            .as_ref()
            .or(found.outgoing.as_ref())
            .map(|f| f.source)
            .unwrap_or(mailbridge_domain::DiscoverySource::Srv);
        let incoming = found.incoming.map(|f| f.location);
        let outgoing = found.outgoing.map(|f| f.location);
        let at = Utc::now();
        store
            .set_discovered_location(
                &self.mailbox.org_id,
                &self.mailbox.id,
                incoming.as_deref(),
                outgoing.as_deref(),
                source,
                at,
            )
            .await
            .map_err(store_error)?;
        tracing::info!(mailbox = %self.mailbox.id, incoming = ?incoming, outgoing = ?outgoing,
            source = %source, lookups = ?attempts, "autodiscover found the mailbox's servers");
        let m = &mut self.mailbox;
        m.discovered_incoming_location = incoming;
        m.discovered_outgoing_location = outgoing;
        m.discovered_source = Some(source);
        m.discovered_at = Some(at);
        Ok(())
    }

    /// The EWS endpoint of an Exchange Server mailbox: Autodiscover v2 (JSON,
    /// anonymous), then Exchange's own Autodiscover (POX, then SOAP) with the
    /// profile's credentials when v2 found nothing. A failure names the
    /// lookups of both.
    async fn discover_ews(
        &self,
        store: &Store,
        cfg: &EngineConfig,
        email: &str,
    ) -> Result<(Found, Vec<Attempt>), SyncError> {
        let allow_plaintext = self.profile.settings.allow_plaintext;
        let dcfg = discovery_config(cfg);
        let v2 = match discover_exchange(
            ServerType::ExchangeServer,
            email,
            V2Protocol::Ews,
            allow_plaintext,
            &dcfg,
        )
        .await
        {
            Ok(found) => return Ok(found),
            Err(e) => e,
        };
        let Some(credentials) = self.legacy_credentials(store).await? else {
            tracing::warn!(mailbox = %self.mailbox.id, error = %v2.message, "Exchange Autodiscover found no EWS endpoint");
            return Err(v2);
        };
        match discover_exchange_legacy(email, &credentials, allow_plaintext, &dcfg).await {
            Ok((found, attempts)) => {
                let source = match found.method {
                    LegacyMethod::Pox => DiscoverySource::AutodiscoverPox,
                    LegacyMethod::Soap => DiscoverySource::AutodiscoverSoap,
                };
                let found = Found {
                    location: found.ews_url,
                    source,
                    username: None,
                };
                Ok((found, attempts))
            }
            Err(legacy) => {
                let tried = legacy
                    .message
                    .split_once("; tried ")
                    .map_or(legacy.message.as_str(), |(_, t)| t);
                let mut e = v2;
                e.message = format!("{}; then {tried}", e.message);
                if matches!(legacy.class, ErrorClass::Transient { .. }) {
                    e.class = legacy.class;
                }
                tracing::warn!(mailbox = %self.mailbox.id, error = %e.message, "Exchange Autodiscover found no EWS endpoint");
                Err(e)
            }
        }
    }

    /// The credentials Exchange's own Autodiscover is asked with (it refuses
    /// anonymous callers): the profile's service account, or the mailbox's own
    /// account. `None` for OAuth profiles: their tokens are for EWS's host,
    /// which is what is being looked for.
    async fn legacy_credentials(
        &self,
        store: &Store,
    ) -> Result<Option<AutodiscoverCredentials>, SyncError> {
        let s = &self.profile.settings;
        let (user, password) = match s.authentication_type {
            AuthenticationType::CredentialsSpecifiedInProfile => {
                let password = store
                    .profile_secret(
                        &self.mailbox.org_id,
                        &self.profile.id,
                        ProfileSecret::IncomingPassword,
                    )
                    .await
                    .map_err(store_error)?;
                (s.incoming_username.clone(), password)
            }
            AuthenticationType::CredentialsSpecifiedByUserOrQueue => {
                let password = store
                    .mailbox_password(&self.mailbox.org_id, &self.mailbox.id)
                    .await
                    .map_err(store_error)?;
                let user = self
                    .mailbox
                    .username
                    .clone()
                    .or_else(|| self.mailbox.email_address.clone());
                (user, password)
            }
            _ => return Ok(None),
        };
        Ok(user
            .zip(password)
            .map(|(user, password)| AutodiscoverCredentials::Basic { user, password }))
    }
}
