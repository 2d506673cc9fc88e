//! The identity layer for Exchange Online: certificate material (generated for
//! evaluation, or read from an upload), client assertions (RFC 7523) and the
//! app-only token source with its cache. Failures are the domain's
//! [`AuthFailure`](mailbridge_domain::identity::AuthFailure) causes, which read
//! "Failed Authentication: <cause> — <fix>".

pub mod assertion;
pub mod material;
mod token;

pub use token::{
    AccessToken, CertificateCredential, ClientCredentials, JWT_BEARER, TokenRequest, TokenSource,
};
