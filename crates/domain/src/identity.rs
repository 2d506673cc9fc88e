//! App-only authentication with Microsoft Entra ID (OAuth 2.0 client credentials):
//! the causes of "Failed Authentication", each with a plain cause and its fix,
//! the classifier that turns the identity provider's error answer into one, and
//! which credential a profile uses. Pure: the token client in the connectors does
//! the requests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error_model::{ErrorClass, ErrorScope, SyncError};

/// Microsoft's public cloud: where tokens are asked for by default.
pub const DEFAULT_AUTHORITY_URL: &str = "https://login.microsoftonline.com";
/// Microsoft Graph in the public cloud: the resource tokens are asked for by default.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";

/// The Microsoft Graph application permissions mailbridge needs for Exchange Online.
pub const GRAPH_ROLES: &[&str] = &[
    "Mail.ReadWrite",
    "Mail.Send",
    "Calendars.ReadWrite",
    "Contacts.ReadWrite",
    "Tasks.ReadWrite.All",
];

/// Why app-only authentication failed. Each says what happened and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No certificate (nor client secret) to authenticate with.
    CertificateMissing,
    /// The stored certificate or key cannot be read (wrong store key, damaged PEM).
    CertificateUnreadable { detail: String },
    /// The certificate's validity ended: checked before any request.
    CertificateExpired {
        thumbprint: String,
        not_after: DateTime<Utc>,
    },
    /// AADSTS700027: the assertion's signing certificate is not on the app registration.
    CertificateNotRegistered { thumbprint: Option<String> },
    /// AADSTS90002 (tenant not found) or AADSTS900023 (not a valid tenant identifier).
    UnknownTenant { tenant: String, code: u32 },
    /// AADSTS700016: no such application in the tenant.
    ApplicationNotFound { client_id: String },
    /// AADSTS7000112: the application is disabled in the tenant.
    ApplicationDisabled { client_id: String },
    /// AADSTS65001, or a token without the Graph application permissions needed:
    /// an administrator has not granted consent.
    NoAdminConsent { missing_roles: Vec<String> },
    /// AADSTS7000215: the client secret is wrong.
    InvalidClientSecret,
    /// AADSTS7000222: the client secret expired.
    ClientSecretExpired,
    /// AADSTS700024 (or AADSTS500133): the assertion is outside its validity
    /// period as the identity provider sees it, i.e. this server's clock is off.
    AssertionOutOfTime { code: u32 },
    /// The identity provider refused the assertion itself (audience, issuer,
    /// format, replay): AADSTS700023, 700021, 50027, 50013.
    AssertionRejected { code: u32, description: String },
    /// The identity provider is busy, throttling or unreachable: retried later.
    Unavailable {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// Another refusal, with the identity provider's words.
    Rejected {
        code: Option<u32>,
        description: String,
    },
}

impl AuthFailure {
    /// What happened, in plain words.
    pub fn cause(&self) -> String {
        match self {
            AuthFailure::CertificateMissing => {
                "no certificate: the profile names none and the organization has no valid certificate".into()
            }
            AuthFailure::CertificateUnreadable { detail } => {
                format!("the certificate or its private key cannot be read ({detail})")
            }
            AuthFailure::CertificateExpired {
                thumbprint,
                not_after,
            } => format!(
                "the certificate {thumbprint} expired on {}",
                not_after.format("%Y-%m-%d %H:%M UTC")
            ),
            AuthFailure::CertificateNotRegistered { thumbprint } => match thumbprint {
                Some(t) => format!(
                    "the certificate {t} is not registered with the app registration (AADSTS700027)"
                ),
                None => "the signing certificate is not registered with the app registration (AADSTS700027)".into(),
            },
            AuthFailure::UnknownTenant { tenant, code } => {
                format!("the tenant `{tenant}` is not known to the identity provider (AADSTS{code})")
            }
            AuthFailure::ApplicationNotFound { client_id } => format!(
                "the application `{client_id}` was not found in the tenant (AADSTS700016)"
            ),
            AuthFailure::ApplicationDisabled { client_id } => {
                format!("the application `{client_id}` is disabled in the tenant (AADSTS7000112)")
            }
            AuthFailure::NoAdminConsent { missing_roles } if missing_roles.is_empty() => {
                "an administrator has not granted consent to the application (AADSTS65001)".into()
            }
            AuthFailure::NoAdminConsent { missing_roles } => format!(
                "an administrator has not granted consent: the token lacks the application permissions {}",
                missing_roles.join(", ")
            ),
            AuthFailure::InvalidClientSecret => {
                "the client secret is not valid for the application (AADSTS7000215)".into()
            }
            AuthFailure::ClientSecretExpired => {
                "the client secret has expired (AADSTS7000222)".into()
            }
            AuthFailure::AssertionOutOfTime { code } => format!(
                "the identity provider finds the client assertion outside its valid time range (AADSTS{code}): this server's clock is off"
            ),
            AuthFailure::AssertionRejected { code, description } => {
                format!("the identity provider refused the client assertion (AADSTS{code}: {description})")
            }
            AuthFailure::Unavailable { detail, .. } => {
                format!("the identity provider is unavailable ({detail})")
            }
            AuthFailure::Rejected {
                code: Some(code),
                description,
            } => format!("the identity provider refused the request (AADSTS{code}: {description})"),
            AuthFailure::Rejected {
                code: None,
                description,
            } => format!("the identity provider refused the request ({description})"),
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        match self {
            AuthFailure::CertificateMissing => "generate or upload a certificate under Certificates, register it with the app registration in Microsoft Entra ID (Certificates & secrets), and select it on the profile, or set the app's client secret on the profile".into(),
            AuthFailure::CertificateUnreadable { .. } => "upload the certificate and its key again (or generate a new one), register it with the app registration and select it on the profile; if every certificate fails this way, check that this server runs with the store's secret.key".into(),
            AuthFailure::CertificateExpired { .. } => "generate or upload a new certificate, register it with the app registration, then select it on the profile".into(),
            AuthFailure::CertificateNotRegistered { .. } => "download the certificate (.cer) from mailbridge and upload it to the app registration under Certificates & secrets; check that the thumbprint shown there is the certificate's, and that the profile's Application (client) ID is that app's".into(),
            AuthFailure::UnknownTenant { .. } => "check the tenant ID (the Directory (tenant) ID on the app registration's Overview page): the profile's own, or the organization's default when Use Default Tenant ID is on; and that the authority URL is the tenant's cloud".into(),
            AuthFailure::ApplicationNotFound { .. } => "check the profile's Application (client) ID against the app registration's Overview page, and that the app belongs to (or was consented to in) this tenant".into(),
            AuthFailure::ApplicationDisabled { .. } => "enable the application in the tenant (Enterprise applications, Properties, Enabled for users to sign in)".into(),
            AuthFailure::NoAdminConsent { .. } => format!(
                "in the app registration's API permissions, add the Microsoft Graph application permissions {} and select Grant admin consent",
                GRAPH_ROLES.join(", ")
            ),
            AuthFailure::InvalidClientSecret => "set the client secret's Value (not its Secret ID) on the profile, or use a certificate instead".into(),
            AuthFailure::ClientSecretExpired => "create a new client secret under Certificates & secrets, set it on the profile, or use a certificate instead".into(),
            AuthFailure::AssertionOutOfTime { .. } => "synchronize this server's clock (NTP): assertions are accepted only within their validity, with about 5 minutes of skew".into(),
            AuthFailure::AssertionRejected { code, .. } => format!(
                "check that the profile's authority URL is the token service of the tenant's cloud; if it is, report this as a bug with the code AADSTS{code}"
            ),
            AuthFailure::Unavailable { .. } => "nothing to do: mailbridge retries later; if it lasts, check that this server reaches the authority URL".into(),
            AuthFailure::Rejected { code: Some(code), .. } => format!(
                "look the code up on https://login.microsoftonline.com/error?code={code} and correct the app registration or the profile"
            ),
            AuthFailure::Rejected { code: None, .. } => "check the profile's authority URL, tenant ID and Application (client) ID".into(),
        }
    }

    /// Whether trying again later can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthFailure::Unavailable { .. })
    }

    /// The failure in the error model: profile-wide, permanent except when the
    /// identity provider is unavailable. The message reads
    /// "Failed Authentication: <cause> — <fix>".
    pub fn to_sync_error(&self) -> SyncError {
        let class = match self {
            AuthFailure::Unavailable { retry_after, .. } => ErrorClass::Transient {
                retry_after: *retry_after,
            },
            _ => ErrorClass::Permanent,
        };
        SyncError {
            class,
            scope: ErrorScope::Profile,
            message: self.to_string(),
            fix: Some(self.fix()),
        }
    }
}

impl From<AuthFailure> for SyncError {
    fn from(f: AuthFailure) -> SyncError {
        f.to_sync_error()
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Failed Authentication: {} — {}",
            self.cause(),
            self.fix()
        )
    }
}

/// The error answer of the Microsoft identity platform's token endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AadErrorResponse {
    /// The OAuth 2.0 error: `invalid_client`, `invalid_request`, `unauthorized_client`, ...
    #[serde(default)]
    pub error: String,
    /// Starts with `AADSTSnnnnnn: ` followed by the explanation, trace and correlation ids.
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub error_codes: Vec<u32>,
}

impl AadErrorResponse {
    /// The AADSTS code: the first of `error_codes`, else the one the description starts with.
    pub fn code(&self) -> Option<u32> {
        self.error_codes.first().copied().or_else(|| {
            let rest = self.error_description.strip_prefix("AADSTS")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    }

    /// The explanation without the code, trace and correlation ids: its first line.
    pub fn explanation(&self) -> String {
        let first = self.error_description.lines().next().unwrap_or_default();
        let text = match first.split_once(": ") {
            Some((code, text)) if code.starts_with("AADSTS") => text,
            _ => first,
        };
        let text = text.trim();
        if text.is_empty() {
            self.error.clone()
        } else {
            text.to_owned()
        }
    }
}

/// What the classifier may name in its messages.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub tenant: &'a str,
    pub client_id: &'a str,
    /// The SHA-1 thumbprint of the signing certificate, in certificate mode.
    pub thumbprint: Option<&'a str>,
}

/// Classifies a refused token request from its HTTP status and answer.
pub fn classify_token_error(
    status: u16,
    answer: &AadErrorResponse,
    retry_after: Option<Duration>,
    ctx: &RequestContext<'_>,
) -> AuthFailure {
    if status == 429 || status >= 500 || answer.error == "temporarily_unavailable" {
        return AuthFailure::Unavailable {
            detail: format!("HTTP {status}: {}", answer.explanation()),
            retry_after,
        };
    }
    let Some(code) = answer.code() else {
        return AuthFailure::Rejected {
            code: None,
            description: format!("HTTP {status}: {}", answer.explanation()),
        };
    };
    match code {
        700027 => AuthFailure::CertificateNotRegistered {
            thumbprint: ctx.thumbprint.map(str::to_owned),
        },
        90002 | 900023 => AuthFailure::UnknownTenant {
            tenant: ctx.tenant.to_owned(),
            code,
        },
        700016 => AuthFailure::ApplicationNotFound {
            client_id: ctx.client_id.to_owned(),
        },
        7000112 => AuthFailure::ApplicationDisabled {
            client_id: ctx.client_id.to_owned(),
        },
        65001 => AuthFailure::NoAdminConsent {
            missing_roles: Vec::new(),
        },
        7000215 => AuthFailure::InvalidClientSecret,
        7000222 => AuthFailure::ClientSecretExpired,
        700024 | 500133 => AuthFailure::AssertionOutOfTime { code },
        700023 | 700021 | 50027 | 50013 => AuthFailure::AssertionRejected {
            code,
            description: answer.explanation(),
        },
        _ => AuthFailure::Rejected {
            code: Some(code),
            description: answer.explanation(),
        },
    }
}

/// The application permissions of `required` a token's `roles` lack.
pub fn missing_roles(required: &[String], granted: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !granted.iter().any(|g| g.eq_ignore_ascii_case(r)))
        .cloned()
        .collect()
}

/// Which credential a server-to-server profile authenticates with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialChoice {
    /// This certificate of the organization.
    Certificate { id: String },
    /// The profile's client secret.
    ClientSecret,
    /// Nothing to authenticate with.
    Missing,
}

/// The profile's certificate when it names one; else its client secret when it
/// has one; else the organization's newest certificate that is valid now.
pub fn choose_credential(
    profile_certificate_id: Option<&str>,
    client_secret_set: bool,
    newest_valid_certificate_id: Option<&str>,
) -> CredentialChoice {
    match (
        profile_certificate_id,
        client_secret_set,
        newest_valid_certificate_id,
    ) {
        (Some(id), _, _) => CredentialChoice::Certificate { id: id.to_owned() },
        (None, true, _) => CredentialChoice::ClientSecret,
        (None, false, Some(id)) => CredentialChoice::Certificate { id: id.to_owned() },
        (None, false, None) => CredentialChoice::Missing,
    }
}

/// Whether a cached token should be replaced: when less than a fifth of its
/// lifetime or less than five minutes remain, whichever comes first (MSAL
/// refreshes five minutes ahead; the fifth covers short-lived tokens).
pub fn token_refresh_due(
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let lifetime = expires_at - issued_at;
    let margin = std::cmp::min(lifetime / 5, chrono::Duration::minutes(5));
    now >= expires_at - margin
}

#[cfg(test)]
mod tests;
