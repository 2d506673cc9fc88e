//! Email server profiles: how to reach one mail system, shared by many mailboxes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::location::{Direction, parse_location};
use crate::validation::{check_guid, check_max_chars, check_range, check_required_text};
use crate::{AuthenticationType, FieldError, ServerType, Validation};

/// The editable, non-secret settings of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ProfileSettings {
    pub name: String,
    pub description: Option<String>,
    pub server_type: ServerType,
    /// The user who receives profile-level alerts.
    pub owner_id: Option<String>,
    /// Use the organization's default tenant ID (Exchange Online).
    pub use_default_tenant_id: bool,
    pub tenant_id: Option<String>,
    /// The Application (client) ID of the app registration (server-to-server and OAuth).
    pub application_id: Option<String>,
    /// The organization's certificate that signs client assertions (Exchange Online,
    /// server-to-server); none: the client secret when set, else the organization's
    /// newest valid certificate.
    pub certificate_id: Option<String>,
    /// The token service (Exchange Online); none: Microsoft's public cloud,
    /// `https://login.microsoftonline.com`. National clouds have their own.
    pub authority_url: Option<String>,
    /// Microsoft Graph, both the resource tokens are asked for and where Graph
    /// requests go (Exchange Online); none: `https://graph.microsoft.com`.
    pub graph_url: Option<String>,
    pub auto_discover: bool,
    pub incoming_server_location: Option<String>,
    pub outgoing_server_location: Option<String>,
    /// Only mail received after this is processed for the profile's mailboxes.
    pub process_email_from: Option<DateTime<Utc>>,
    pub min_polling_interval_minutes: i64,
    pub max_concurrent_connections: i64,
    pub move_failed_to_undeliverable: bool,
    /// Allows connecting without TLS (lab servers only).
    pub allow_plaintext: bool,
    pub authentication_type: AuthenticationType,
    /// The service account for `credentials_specified_in_profile`.
    pub incoming_username: Option<String>,
    pub use_same_settings_for_outgoing: bool,
    pub outgoing_username: Option<String>,
    /// `imap_smtp` only: the CalDAV/CardDAV base URL where appointments, contacts
    /// and tasks are synchronized; none: ACT has no server to talk to.
    pub dav_location: Option<String>,
}

/// Which write-only secrets a profile holds. The values never leave the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ProfileSecretsSet {
    pub incoming_password_set: bool,
    pub outgoing_password_set: bool,
    pub client_secret_set: bool,
}

/// A stored email server profile, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct EmailServerProfile {
    pub id: String,
    pub org_id: String,
    #[serde(flatten)]
    #[cfg_attr(feature = "sqlx", sqlx(flatten))]
    pub settings: ProfileSettings,
    #[serde(flatten)]
    #[cfg_attr(feature = "sqlx", sqlx(flatten))]
    pub secrets: ProfileSecretsSet,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const DEFAULT_MAX_CONCURRENT_CONNECTIONS: i64 = 10;

impl ProfileSettings {
    /// A new profile's settings with the reference's defaults.
    pub fn new(name: String, server_type: ServerType) -> Self {
        ProfileSettings {
            name,
            description: None,
            server_type,
            owner_id: None,
            use_default_tenant_id: true,
            tenant_id: None,
            application_id: None,
            certificate_id: None,
            authority_url: None,
            graph_url: None,
            auto_discover: server_type == ServerType::ExchangeOnline,
            incoming_server_location: None,
            outgoing_server_location: None,
            process_email_from: None,
            min_polling_interval_minutes: 0,
            max_concurrent_connections: DEFAULT_MAX_CONCURRENT_CONNECTIONS,
            move_failed_to_undeliverable: false,
            allow_plaintext: false,
            authentication_type: default_authentication_type(server_type),
            incoming_username: None,
            use_same_settings_for_outgoing: true,
            outgoing_username: None,
            dav_location: None,
        }
    }
}

/// The authentication a new profile of a server type starts with.
pub fn default_authentication_type(server_type: ServerType) -> AuthenticationType {
    match server_type {
        ServerType::ExchangeOnline => AuthenticationType::ServerToServer,
        _ => AuthenticationType::CredentialsSpecifiedByUserOrQueue,
    }
}

/// Facts outside the profile that its validation needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProfileContext<'a> {
    /// The organization's default tenant ID, if it has one.
    pub org_default_tenant_id: Option<&'a str>,
    pub secrets: ProfileSecretsSet,
}

/// Checks a whole profile (after defaults and any patch were applied).
pub fn validate_profile(p: &ProfileSettings, ctx: &ProfileContext<'_>) -> Validation {
    let mut errors = Vec::new();
    check_required_text(&mut errors, "name", &p.name, 100);
    if let Some(d) = &p.description {
        check_max_chars(&mut errors, "description", d, 2000);
    }
    check_range(
        &mut errors,
        "min_polling_interval_minutes",
        p.min_polling_interval_minutes,
        0,
        1440,
    );
    check_range(
        &mut errors,
        "max_concurrent_connections",
        p.max_concurrent_connections,
        1,
        300,
    );
    check_tenant(&mut errors, p, ctx);
    check_identity(&mut errors, p);
    check_locations(&mut errors, p);
    check_dav_location(&mut errors, p);
    check_authentication(&mut errors, p, ctx);
    errors
}

fn check_tenant(errors: &mut Validation, p: &ProfileSettings, ctx: &ProfileContext<'_>) {
    if p.server_type != ServerType::ExchangeOnline {
        if p.tenant_id.is_some() {
            errors.push(FieldError::new(
                "tenant_id",
                "tenant_id applies only to exchange_online profiles; remove it",
            ));
        }
        return;
    }
    match (&p.tenant_id, p.use_default_tenant_id) {
        (Some(_), true) => errors.push(FieldError::new(
            "tenant_id",
            "tenant_id is not used while use_default_tenant_id is true; remove it or set use_default_tenant_id: false",
        )),
        (Some(t), false) => check_guid(errors, "tenant_id", t),
        (None, false) => errors.push(FieldError::new(
            "tenant_id",
            "tenant_id is required when use_default_tenant_id is false; give the directory (tenant) ID as a GUID",
        )),
        (None, true) if ctx.org_default_tenant_id.is_none() => errors.push(FieldError::new(
            "use_default_tenant_id",
            "the organization has no default tenant ID; set default_tenant_id on the organization or give tenant_id with use_default_tenant_id: false",
        )),
        (None, true) => {}
    }
}

/// The token service and Graph of an Exchange Online profile, and its certificate.
fn check_identity(errors: &mut Validation, p: &ProfileSettings) {
    let fields = [
        ("certificate_id", &p.certificate_id),
        ("authority_url", &p.authority_url),
        ("graph_url", &p.graph_url),
    ];
    if p.server_type != ServerType::ExchangeOnline {
        for (field, value) in fields {
            if value.is_some() {
                errors.push(FieldError::new(
                    field,
                    format!("{field} applies only to exchange_online profiles; remove it"),
                ));
            }
        }
        return;
    }
    if let Some(id) = &p.certificate_id {
        if !crate::ids::is_valid_id(id) {
            errors.push(FieldError::new(
                "certificate_id",
                format!("certificate_id `{id}` is not a certificate id; use the id of one of the organization's certificates"),
            ));
        } else if p.authentication_type != AuthenticationType::ServerToServer {
            errors.push(FieldError::new(
                "certificate_id",
                "certificate_id is used only with server_to_server authentication; remove it or set authentication_type: server_to_server",
            ));
        }
    }
    for (field, value) in [
        ("authority_url", &p.authority_url),
        ("graph_url", &p.graph_url),
    ] {
        if let Some(text) = value
            && let Err(e) = check_base_url(field, text, p.allow_plaintext)
        {
            errors.push(e);
        }
    }
}

/// A base URL such as an authority or Graph: https (http only with
/// `allow_plaintext`, for lab servers), a host, no user, query or fragment.
fn check_base_url(field: &str, text: &str, allow_plaintext: bool) -> Result<(), FieldError> {
    let err = |m: String| FieldError::new(field, m);
    let url = url::Url::parse(text.trim()).map_err(|e| {
        err(format!(
            "{field} `{}` is not a URL ({e}); write it like https://login.microsoftonline.us",
            crate::location::shown_location(text)
        ))
    })?;
    match url.scheme() {
        "https" => {}
        "http" if allow_plaintext => {}
        "http" => {
            return Err(err(format!(
                "{field} must use https; http is allowed only with allow_plaintext (lab servers)"
            )));
        }
        other => return Err(err(format!("{field} must use https, not {other}"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err(format!("{field} must name a host")));
    }
    let extra = !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some();
    if extra {
        return Err(err(format!(
            "{field} must be a plain base URL without user, query or fragment"
        )));
    }
    Ok(())
}

impl ProfileSettings {
    /// The token service, without a trailing slash.
    pub fn authority_url_or_default(&self) -> String {
        base_url(
            self.authority_url.as_deref(),
            crate::identity::DEFAULT_AUTHORITY_URL,
        )
    }

    /// Microsoft Graph, without a trailing slash.
    pub fn graph_url_or_default(&self) -> String {
        base_url(
            self.graph_url.as_deref(),
            crate::identity::DEFAULT_GRAPH_URL,
        )
    }
}

fn base_url(value: Option<&str>, default: &str) -> String {
    value
        .unwrap_or(default)
        .trim()
        .trim_end_matches('/')
        .to_owned()
}

fn check_locations(errors: &mut Validation, p: &ProfileSettings) {
    let fields = [
        (
            "incoming_server_location",
            &p.incoming_server_location,
            Direction::Incoming,
        ),
        (
            "outgoing_server_location",
            &p.outgoing_server_location,
            Direction::Outgoing,
        ),
    ];
    for (field, value, direction) in fields {
        match value {
            Some(text) => {
                if let Err(e) = parse_location(field, text, p.server_type, direction, p.allow_plaintext) {
                    errors.push(e);
                }
            }
            None if !p.auto_discover => errors.push(FieldError::new(
                field,
                format!("{field} is required when auto_discover is false; give a URL or set auto_discover: true"),
            )),
            None => {}
        }
    }
}

fn check_dav_location(errors: &mut Validation, p: &ProfileSettings) {
    let Some(text) = &p.dav_location else {
        return;
    };
    if p.server_type != ServerType::ImapSmtp {
        errors.push(FieldError::new(
            "dav_location",
            format!(
                "dav_location is used only by imap_smtp profiles ({} profiles sync appointments, contacts and tasks through their own server); remove it",
                p.server_type
            ),
        ));
    } else if let Err(e) =
        crate::location::parse_dav_location("dav_location", text, p.allow_plaintext)
    {
        errors.push(e);
    }
}

fn check_authentication(errors: &mut Validation, p: &ProfileSettings, ctx: &ProfileContext<'_>) {
    use AuthenticationType::*;
    let allowed: &[AuthenticationType] = match p.server_type {
        ServerType::ExchangeOnline => &[ServerToServer, Oauth, CredentialsSpecifiedInProfile],
        ServerType::ExchangeServer => &[
            CredentialsSpecifiedInProfile,
            CredentialsSpecifiedByUserOrQueue,
            ServerToServer,
            Oauth,
        ],
        ServerType::ImapSmtp => &[
            CredentialsSpecifiedByUserOrQueue,
            CredentialsSpecifiedInProfile,
            Oauth,
        ],
    };
    if !allowed.contains(&p.authentication_type) {
        let names: Vec<_> = allowed.iter().map(|a| a.as_str()).collect();
        errors.push(FieldError::new(
            "authentication_type",
            format!(
                "{} is not available for {} profiles; use one of: {}",
                p.authentication_type,
                p.server_type,
                names.join(", ")
            ),
        ));
        return;
    }
    match p.authentication_type {
        ServerToServer | Oauth => match &p.application_id {
            Some(id) => check_guid(errors, "application_id", id),
            None => errors.push(FieldError::new(
                "application_id",
                format!(
                    "application_id is required for {}; give the Application (client) ID of the app registration",
                    p.authentication_type
                ),
            )),
        },
        CredentialsSpecifiedInProfile => {
            check_account(errors, "incoming", &p.incoming_username, ctx.secrets.incoming_password_set);
            if !p.use_same_settings_for_outgoing {
                check_account(errors, "outgoing", &p.outgoing_username, ctx.secrets.outgoing_password_set);
            }
        }
        CredentialsSpecifiedByUserOrQueue => {}
    }
}

fn check_account(
    errors: &mut Validation,
    direction: &str,
    user: &Option<String>,
    password_set: bool,
) {
    let user_field = format!("{direction}_username");
    match user {
        Some(u) if !u.trim().is_empty() => {}
        _ => errors.push(FieldError::new(
            &user_field,
            format!("{user_field} is required for credentials_specified_in_profile"),
        )),
    }
    if !password_set {
        let field = format!("{direction}_password");
        errors.push(FieldError::new(
            &field,
            format!("{field} is required for credentials_specified_in_profile"),
        ));
    }
}

#[cfg(test)]
mod tests;
