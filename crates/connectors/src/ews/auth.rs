//! OAuth for Exchange Server with hybrid modern authentication: app-only tokens
//! from the identity layer's [`TokenSource`] (client credentials with the
//! profile's certificate or secret) for the resource `https://<exchange host>`,
//! whose `.default` scope grants what the app registration was consented
//! (`full_access_as_app` for EWS with impersonation).

use std::sync::Arc;

use mailbridge_domain::error_model::SyncError;

use crate::graph::{AccessTokens, TokenFuture};
use crate::identity::{ClientCredentials, TokenRequest, TokenSource};

/// The application permission EWS needs for app-only access with impersonation.
pub const EWS_ROLE: &str = "full_access_as_app";

/// The token request for the Exchange server at `ews_url`: scope
/// `https://<host>/.default` (the EWS URL's host, as registered among the
/// service principal names of Office 365 Exchange Online in a hybrid setup).
///
/// # Errors
/// In words, when the URL has no host.
pub fn exchange_token_request(
    authority_url: &str,
    tenant: &str,
    client_id: &str,
    ews_url: &str,
    credentials: ClientCredentials,
) -> Result<TokenRequest, String> {
    let url = reqwest::Url::parse(ews_url).map_err(|e| format!("{ews_url} is not a URL: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("{ews_url} names no host"))?;
    Ok(TokenRequest {
        authority_url: authority_url.trim_end_matches('/').to_owned(),
        tenant: tenant.to_owned(),
        client_id: client_id.to_owned(),
        scope: format!("https://{host}/.default"),
        credentials,
        required_roles: vec![EWS_ROLE.to_owned()],
    })
}

/// A profile's cached app-only tokens for its Exchange server, for
/// [`super::EwsAuth::OAuth`].
pub struct ExchangeTokens {
    pub source: Arc<TokenSource>,
    pub request: TokenRequest,
}

impl AccessTokens for ExchangeTokens {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mailbridge_domain::secret::Secret;

    #[test]
    fn the_scope_is_the_exchange_host() {
        let r = exchange_token_request(
            "https://login.microsoftonline.com/",
            "tenant-1",
            "client-1",
            "https://mail.contoso.com:443/EWS/Exchange.asmx",
            ClientCredentials::Secret(Secret::new("s")),
        )
        .expect("a request");
        assert_eq!(r.scope, "https://mail.contoso.com/.default");
        assert_eq!(r.authority_url, "https://login.microsoftonline.com");
        assert_eq!(r.required_roles, vec!["full_access_as_app"]);
        assert!(
            exchange_token_request(
                "a",
                "t",
                "c",
                "not a url",
                ClientCredentials::Secret(Secret::new("s"))
            )
            .is_err()
        );
    }
}
