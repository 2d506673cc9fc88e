//! Everything a workload needs to know about one mailbox, loaded once per run,
//! and the connection settings derived from it.

use mailbridge_connectors::{Auth, ImapConfig, SmtpConfig};
use mailbridge_domain::autodiscover;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::location::{Direction, parse_location};
use mailbridge_domain::mailbox::Mailbox;
use mailbridge_domain::organization::EmailSettings;
use mailbridge_domain::profile::EmailServerProfile;
use mailbridge_domain::{AuthenticationType, OwnerType, ServerType, TrackingFilter};
use mailbridge_store::{ProfileSecret, Store, StoreError};

use crate::config::EngineConfig;

/// One mailbox with its profile, its organization's settings and its owner's filter.
#[derive(Debug, Clone)]
pub struct MailboxContext {
    pub mailbox: Mailbox,
    pub profile: EmailServerProfile,
    pub settings: EmailSettings,
    pub filter: TrackingFilter,
    /// The users who hear about this mailbox: its owner (when a user) and the
    /// profile's owner.
    pub owner_user: Option<String>,
    pub profile_owner: Option<String>,
    pub track_sent_items: bool,
}

/// A permanent, mailbox-scoped error about configuration.
pub fn config_error(message: impl Into<String>, fix: impl Into<String>) -> SyncError {
    SyncError {
        class: ErrorClass::Permanent,
        scope: ErrorScope::Mailbox,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

/// A store failure during a run: transient (the database may come back).
pub fn store_error(e: StoreError) -> SyncError {
    SyncError {
        class: ErrorClass::Transient { retry_after: None },
        scope: ErrorScope::Mailbox,
        message: format!("the store failed: {e}"),
        fix: Some("check the database; the run is retried".to_owned()),
    }
}

impl MailboxContext {
    pub async fn load(
        store: &Store,
        org_id: &str,
        mailbox_id: &str,
    ) -> Result<MailboxContext, SyncError> {
        let mailbox = store
            .get_mailbox(org_id, mailbox_id)
            .await
            .map_err(store_error)?;
        if mailbox.profile_id.is_none() {
            return Err(config_error(
                "the mailbox has no email server profile",
                "choose a profile for the mailbox",
            ));
        }
        Self::for_mailbox(store, mailbox).await
    }

    /// A mailbox whose mail is pushed to the service (incoming method `router`):
    /// it needs no server, so no profile. Without one, the context holds a
    /// profile with the defaults and no id (its alerts name no profile).
    pub async fn load_router(
        store: &Store,
        org_id: &str,
        mailbox_id: &str,
    ) -> Result<MailboxContext, SyncError> {
        let mailbox = store
            .get_mailbox(org_id, mailbox_id)
            .await
            .map_err(store_error)?;
        Self::for_mailbox(store, mailbox).await
    }

    /// The context of a mailbox: its profile (the defaults when it has none), its
    /// organization's settings and its owner's filter.
    async fn for_mailbox(store: &Store, mailbox: Mailbox) -> Result<MailboxContext, SyncError> {
        let profile = match &mailbox.profile_id {
            Some(id) => store
                .get_profile(&mailbox.org_id, id)
                .await
                .map_err(store_error)?,
            None => EmailServerProfile {
                id: String::new(),
                org_id: mailbox.org_id.clone(),
                settings: mailbridge_domain::profile::ProfileSettings::new(
                    "(none: email router)".to_owned(),
                    ServerType::ImapSmtp,
                ),
                secrets: Default::default(),
                created_at: mailbox.created_at,
                updated_at: mailbox.updated_at,
            },
        };
        Self::with_profile(store, mailbox, profile).await
    }

    async fn with_profile(
        store: &Store,
        mailbox: Mailbox,
        profile: EmailServerProfile,
    ) -> Result<MailboxContext, SyncError> {
        let org_id = mailbox.org_id.as_str();
        let settings = store
            .get_email_settings(org_id)
            .await
            .map_err(store_error)?;
        let (filter, owner_user) = match mailbox.owner_type {
            OwnerType::User => {
                let u = store
                    .get_user(org_id, &mailbox.owner_id)
                    .await
                    .map_err(store_error)?;
                (u.tracking_filter, Some(u.id))
            }
            OwnerType::Queue => (
                store
                    .get_queue(org_id, &mailbox.owner_id)
                    .await
                    .map_err(store_error)?
                    .tracking_filter,
                None,
            ),
        };
        let track_sent_items = mailbox.track_sent_items;
        let profile_owner = profile.settings.owner_id.clone();
        Ok(MailboxContext {
            mailbox,
            profile,
            settings,
            filter,
            owner_user,
            profile_owner,
            track_sent_items,
        })
    }

    /// Whether the mailbox may process mail now: approved, or its organization
    /// does not require approval for its kind of owner.
    pub fn may_process(&self) -> bool {
        let required = match self.mailbox.owner_type {
            OwnerType::User => self.settings.process_email_for_approved_users_only,
            OwnerType::Queue => self.settings.process_email_for_approved_queues_only,
        };
        !required || self.mailbox.approval_status == mailbridge_domain::ApprovalStatus::Approved
    }

    /// The people to alert about this mailbox.
    pub fn recipients(&self, include_profile_owner: bool) -> Vec<String> {
        let mut r: Vec<String> = self.owner_user.iter().cloned().collect();
        if include_profile_owner {
            r.extend(self.profile_owner.iter().cloned());
        }
        r.sort();
        r.dedup();
        r
    }

    fn location(
        &self,
        direction: Direction,
    ) -> Result<mailbridge_domain::location::ServerLocation, SyncError> {
        let s = &self.profile.settings;
        if s.server_type != ServerType::ImapSmtp {
            return Err(config_error(
                format!(
                    "{} profiles are not synchronized by this version",
                    s.server_type
                ),
                "use an imap_smtp profile",
            ));
        }
        if self.uses_autodiscover() {
            // Looked up by `discover` before the run; absent only when it was not.
            let text = match direction {
                Direction::Incoming => &self.mailbox.discovered_incoming_location,
                Direction::Outgoing => &self.mailbox.discovered_outgoing_location,
            };
            let text = text.as_deref().ok_or_else(|| {
                config_error(
                    format!(
                        "{} for {}: autodiscover has not run for the mailbox",
                        autodiscover::LOCATION_UNKNOWN,
                        self.mailbox
                            .email_address
                            .as_deref()
                            .unwrap_or("the mailbox")
                    ),
                    "run Test & Enable for the mailbox, which looks its servers up",
                )
            })?;
            return parse_location(
                "discovered",
                text,
                s.server_type,
                direction,
                s.allow_plaintext,
            )
            .map_err(|e| config_error(e.message, autodiscover::LOCATION_UNKNOWN_FIX));
        }
        let (field, text) = match direction {
            Direction::Incoming => ("incoming_server_location", &s.incoming_server_location),
            Direction::Outgoing => ("outgoing_server_location", &s.outgoing_server_location),
        };
        let text = text.as_deref().ok_or_else(|| {
            config_error(
                format!("the profile has no {field}"),
                format!("set {field} on the profile, or turn auto_discover on"),
            )
        })?;
        parse_location(field, text, s.server_type, direction, s.allow_plaintext)
            .map_err(|e| config_error(e.message, format!("correct {field} on the profile")))
    }

    async fn credentials(&self, store: &Store, direction: Direction) -> Result<Auth, SyncError> {
        let s = &self.profile.settings;
        let org = &self.mailbox.org_id;
        match s.authentication_type {
            AuthenticationType::CredentialsSpecifiedByUserOrQueue => {
                let username = self
                    .mailbox
                    .username
                    .clone()
                    .or_else(|| self.mailbox.email_address.clone())
                    .ok_or_else(|| {
                        config_error(
                            "the mailbox has no user name or address to sign in with",
                            "set the mailbox's username",
                        )
                    })?;
                let password = store.mailbox_password(org, &self.mailbox.id).await.map_err(store_error)?.ok_or_else(|| {
                    config_error(
                        "the mailbox has no password, and its profile takes credentials from each mailbox",
                        "set the mailbox's password (PATCH /mailboxes/{id} with password), then run Test & Enable",
                    )
                })?;
                Ok(Auth::Password { username, password })
            }
            AuthenticationType::CredentialsSpecifiedInProfile => {
                let outgoing =
                    direction == Direction::Outgoing && !s.use_same_settings_for_outgoing;
                let (user, which) = if outgoing {
                    (&s.outgoing_username, ProfileSecret::OutgoingPassword)
                } else {
                    (&s.incoming_username, ProfileSecret::IncomingPassword)
                };
                let username = user.clone().ok_or_else(|| {
                    config_error("the profile has no user name", "set it on the profile")
                })?;
                let password = store
                    .profile_secret(org, &self.profile.id, which)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| {
                        config_error("the profile has no password", "set it on the profile")
                    })?;
                Ok(Auth::Password { username, password })
            }
            other => Err(config_error(
                format!("{other} authentication is not available for IMAP/SMTP in this version"),
                "use credentials_specified_by_user_or_queue or credentials_specified_in_profile",
            )),
        }
    }

    pub async fn imap(&self, store: &Store, cfg: &EngineConfig) -> Result<ImapConfig, SyncError> {
        let loc = self.location(Direction::Incoming)?;
        Ok(ImapConfig {
            host: loc.host,
            port: loc.port,
            tls: loc.tls,
            auth: self.credentials(store, Direction::Incoming).await?,
            timeout: cfg.network_timeout,
            extra_roots: cfg.extra_roots.clone(),
        })
    }

    pub async fn smtp(&self, store: &Store, cfg: &EngineConfig) -> Result<SmtpConfig, SyncError> {
        let loc = self.location(Direction::Outgoing)?;
        Ok(SmtpConfig {
            host: loc.host,
            port: loc.port,
            tls: loc.tls,
            auth: Some(self.credentials(store, Direction::Outgoing).await?),
            timeout: cfg.network_timeout,
            extra_roots: cfg.extra_roots.clone(),
            hello_name: "mailbridge.localhost".to_owned(),
        })
    }

    /// The address the mailbox sends as.
    pub fn address(&self) -> Result<String, SyncError> {
        self.mailbox.email_address.clone().ok_or_else(|| {
            config_error(
                "the mailbox has no email address",
                "set the owner's email address",
            )
        })
    }
}
