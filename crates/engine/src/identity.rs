//! The app-only token request of an Exchange Online profile: its tenant (its
//! own or the organization's default), its application, its authority and Graph
//! URLs, and its credential (the profile's certificate, else its client secret,
//! else the organization's newest valid certificate), read from the store.
//! Whatever is missing or unreadable is a "Failed Authentication" cause.

use chrono::Utc;
use mailbridge_connectors::identity::{CertificateCredential, ClientCredentials, TokenRequest};
use mailbridge_domain::identity::{AuthFailure, CredentialChoice, choose_credential};
use mailbridge_domain::profile::EmailServerProfile;
use mailbridge_store::{ProfileSecret, Store, StoreError};

/// What a store failure means for authentication.
fn store_failure(e: StoreError) -> AuthFailure {
    match e {
        StoreError::Crypto(detail) => AuthFailure::CertificateUnreadable {
            detail: format!("the stored key cannot be decrypted: {detail}"),
        },
        StoreError::NotFound => AuthFailure::CertificateMissing,
        other => AuthFailure::Unavailable {
            detail: format!("the store failed: {other}"),
            retry_after: None,
        },
    }
}

/// What a profile's token request is made of, read without its secret or key:
/// enough to tell whether a request made from it earlier still holds (a changed
/// client secret changes the profile's `updated_at`; a certificate never changes
/// under its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBasis {
    pub tenant: String,
    pub client_id: String,
    /// Never [`CredentialChoice::Missing`].
    pub credential: CredentialChoice,
}

impl TokenBasis {
    /// The credential as a key, e.g. `certificate:<id>` or `secret`.
    pub fn credential_key(&self) -> String {
        match &self.credential {
            CredentialChoice::Certificate { id } => format!("certificate:{id}"),
            CredentialChoice::ClientSecret => "secret".to_owned(),
            CredentialChoice::Missing => "missing".to_owned(),
        }
    }
}

/// The token request for Microsoft Graph on behalf of `profile`.
pub async fn graph_token_request(
    store: &Store,
    profile: &EmailServerProfile,
) -> Result<TokenRequest, AuthFailure> {
    let basis = graph_token_basis(store, profile).await?;
    graph_token_request_from(store, profile, &basis).await
}

/// The tenant, application and chosen credential of `profile`'s token request.
pub async fn graph_token_basis(
    store: &Store,
    profile: &EmailServerProfile,
) -> Result<TokenBasis, AuthFailure> {
    let s = &profile.settings;
    let tenant = if s.use_default_tenant_id {
        store
            .get_organization(&profile.org_id)
            .await
            .map_err(store_failure)?
            .default_tenant_id
    } else {
        s.tenant_id.clone()
    };
    // Profile validation requires both; an organization whose default tenant was
    // removed afterwards is said plainly.
    let tenant = tenant.ok_or_else(|| AuthFailure::UnknownTenant {
        tenant: "(none set)".into(),
        code: 900023,
    })?;
    let client_id = s
        .application_id
        .clone()
        .ok_or_else(|| AuthFailure::ApplicationNotFound {
            client_id: "(none set)".into(),
        })?;
    let newest = if s.certificate_id.is_none() && !profile.secrets.client_secret_set {
        store
            .newest_valid_certificate(&profile.org_id, Utc::now())
            .await
            .map_err(store_failure)?
            .map(|c| c.id)
    } else {
        None
    };
    let credential = choose_credential(
        s.certificate_id.as_deref(),
        profile.secrets.client_secret_set,
        newest.as_deref(),
    );
    if credential == CredentialChoice::Missing {
        return Err(AuthFailure::CertificateMissing);
    }
    Ok(TokenBasis {
        tenant,
        client_id,
        credential,
    })
}

/// The token request made from `basis`: the client secret or the certificate
/// and its key read (and decrypted) from the store.
pub async fn graph_token_request_from(
    store: &Store,
    profile: &EmailServerProfile,
    basis: &TokenBasis,
) -> Result<TokenRequest, AuthFailure> {
    let s = &profile.settings;
    let credentials = match &basis.credential {
        CredentialChoice::Missing => return Err(AuthFailure::CertificateMissing),
        CredentialChoice::ClientSecret => {
            let secret = store
                .profile_secret(&profile.org_id, &profile.id, ProfileSecret::ClientSecret)
                .await
                .map_err(store_failure)?
                .ok_or(AuthFailure::CertificateMissing)?;
            ClientCredentials::Secret(secret)
        }
        CredentialChoice::Certificate { id } => {
            let pem = store
                .certificate_pem(&profile.org_id, id)
                .await
                .map_err(store_failure)?;
            let key = store
                .certificate_private_key(&profile.org_id, id)
                .await
                .map_err(store_failure)?;
            ClientCredentials::Certificate(CertificateCredential::from_pem(&pem, key)?)
        }
    };
    Ok(TokenRequest::for_graph(
        &s.authority_url_or_default(),
        &basis.tenant,
        &basis.client_id,
        &s.graph_url_or_default(),
        credentials,
    ))
}
