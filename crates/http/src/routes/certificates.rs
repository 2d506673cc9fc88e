//! `/api/v1/orgs/{org_id}/certificates`: the organization's certificates for
//! server-to-server authentication with Exchange Online (administrators only).
//! A self-signed one can be generated for evaluation, or one uploaded as PEM or
//! PKCS#12. The private key is sealed at rest and never answered; the public
//! certificate downloads as PEM or DER (.cer) for the app registration.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::Utc;
use mailbridge_connectors::identity::material::{self, CertificateMaterial};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::certificate::{
    Certificate, DEFAULT_VALIDITY_DAYS, check_certificate_name, check_validity_days,
};
use mailbridge_domain::secret::Secret;
use mailbridge_domain::{CertificateSource, FieldError};
use mailbridge_store::NewCertificate;
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// A self-signed certificate to generate: RSA 2048, subject `CN=<name>`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateInput {
    /// Unique in the organization; also the certificate's common name.
    name: String,
    /// 1 to 1825, default 365.
    validity_days: Option<i64>,
}

/// A certificate to upload: either `certificate_pem` with `private_key_pem`, or
/// `pkcs12_base64` with `pkcs12_password`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadInput {
    /// Unique in the organization.
    name: String,
    /// `-----BEGIN CERTIFICATE-----`.
    certificate_pem: Option<String>,
    /// Write-only: `-----BEGIN PRIVATE KEY-----` (PKCS#8) or `RSA PRIVATE KEY`, unencrypted.
    #[schema(value_type = Option<String>, format = Password)]
    private_key_pem: Option<Secret>,
    /// Write-only: a .pfx / .p12 file in base64.
    #[schema(value_type = Option<String>, format = Password)]
    pkcs12_base64: Option<Secret>,
    /// Write-only: the PKCS#12 file's password.
    #[schema(value_type = Option<String>, format = Password)]
    pkcs12_password: Option<Secret>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
}

fn new_certificate(
    name: String,
    source: CertificateSource,
    m: CertificateMaterial,
) -> NewCertificate {
    NewCertificate {
        name,
        subject: m.subject,
        thumbprint: m.thumbprint,
        x5t_s256: m.x5t_s256,
        not_before: m.not_before,
        not_after: m.not_after,
        key_bits: m.key_bits,
        source,
        certificate_pem: m.certificate_pem,
        private_key_pem: m.private_key_pem,
    }
}

/// Generates an RSA 2048 key and a self-signed certificate for evaluation.
/// Register the downloaded .cer with the app registration before use.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/certificates/generate", tag = "certificates",
    request_body = GenerateInput,
    responses((status = 201, body = Certificate), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn generate(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(i): ApiJson<GenerateInput>,
) -> Result<(StatusCode, Json<Certificate>), ApiError> {
    auth.check(&s, &org_id, Resource::Certificates, Action::Create)
        .await?;
    let name = i.name.trim().to_owned();
    let days = i.validity_days.unwrap_or(DEFAULT_VALIDITY_DAYS);
    let mut errors = Vec::new();
    check_certificate_name(&mut errors, &name);
    check_validity_days(&mut errors, days);
    ApiError::check(errors)?;
    let cn = name.clone();
    // RSA key generation takes a moment of CPU: off the async workers.
    let m =
        tokio::task::spawn_blocking(move || material::generate_self_signed(&cn, Utc::now(), days))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let c = s
        .store
        .create_certificate(
            &org_id,
            &new_certificate(name, CertificateSource::Generated, m),
        )
        .await?;
    tracing::info!(certificate_id = %c.id, thumbprint = %c.thumbprint, "certificate generated");
    Ok((StatusCode::CREATED, Json(c)))
}

/// Uploads a certificate with its private key (PEM pair or PKCS#12). The key
/// must be RSA 2048 or more and belong to the certificate, which must not have
/// expired.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/certificates", tag = "certificates",
    request_body = UploadInput,
    responses((status = 201, body = Certificate), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(i): ApiJson<UploadInput>,
) -> Result<(StatusCode, Json<Certificate>), ApiError> {
    auth.check(&s, &org_id, Resource::Certificates, Action::Create)
        .await?;
    let name = i.name.trim().to_owned();
    let mut errors = Vec::new();
    check_certificate_name(&mut errors, &name);
    ApiError::check(errors)?;
    let now = Utc::now();
    let read = match (i.certificate_pem, i.private_key_pem, i.pkcs12_base64) {
        (Some(cert), Some(key), None) => material::from_pem(&cert, key.expose(), now),
        (None, None, Some(pfx)) => {
            let der = base64::engine::general_purpose::STANDARD
                .decode(pfx.expose().trim())
                .map_err(|_| {
                    ApiError::field(
                        "invalid_value",
                        "pkcs12_base64",
                        "pkcs12_base64 is not base64",
                    )
                })?;
            let password = i
                .pkcs12_password
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            material::from_pkcs12(&der, &password, now)
        }
        (Some(_), None, None) => {
            return Err(ApiError::required("private_key_pem"));
        }
        (None, Some(_), None) => {
            return Err(ApiError::required("certificate_pem"));
        }
        (None, None, None) => {
            return Err(ApiError::field(
                "missing_field",
                "certificate_pem",
                "give certificate_pem with private_key_pem, or pkcs12_base64 with pkcs12_password",
            ));
        }
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "pkcs12_base64",
                "give either certificate_pem with private_key_pem, or pkcs12_base64, not both",
            )]));
        }
    };
    let m = read.map_err(ApiError::validation)?;
    let c = s
        .store
        .create_certificate(
            &org_id,
            &new_certificate(name, CertificateSource::Uploaded, m),
        )
        .await?;
    tracing::info!(certificate_id = %c.id, thumbprint = %c.thumbprint, "certificate uploaded");
    Ok((StatusCode::CREATED, Json(c)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/certificates", tag = "certificates", params(ListParams),
    responses((status = 200, body = List<Certificate>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Certificate>>, ApiError> {
    auth.check(&s, &org_id, Resource::Certificates, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    Ok(Json(
        s.store.list_certificates(&org_id, &page).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/certificates/{id}", tag = "certificates",
    responses((status = 200, body = Certificate), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<Certificate>, ApiError> {
    auth.check(&s, &org_id, Resource::Certificates, Action::Read)
        .await?;
    Ok(Json(s.store.get_certificate(&org_id, &id).await?))
}

/// Deletes a certificate that no profile selects.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/certificates/{id}", tag = "certificates",
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Certificates, Action::Delete)
        .await?;
    s.store.delete_certificate(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A file name from the certificate's name: letters, digits, `-`, `_`, `.`.
fn file_name(c: &Certificate, extension: &str) -> String {
    let base: String = c
        .name
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || "-_.".contains(ch) {
                ch
            } else {
                '-'
            }
        })
        .collect();
    format!("{}.{extension}", base.trim_matches('-'))
}

async fn download(
    s: &AppState,
    auth: &Auth,
    org_id: &str,
    id: &str,
) -> Result<(Certificate, String), ApiError> {
    auth.check(s, org_id, Resource::Certificates, Action::Read)
        .await?;
    let c = s.store.get_certificate(org_id, id).await?;
    let pem = s.store.certificate_pem(org_id, id).await?;
    Ok((c, pem))
}

/// The public certificate as PEM.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/certificates/{id}/certificate.pem", tag = "certificates",
    responses((status = 200, content_type = "application/x-pem-file", body = String), (status = 404, body = ErrorBody)))]
pub async fn download_pem(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (c, pem) = download(&s, &auth, &org_id, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file_name(&c, "pem")),
            ),
        ],
        pem,
    )
        .into_response())
}

/// The public certificate as DER, the .cer file to upload to the app registration.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/certificates/{id}/certificate.cer", tag = "certificates",
    responses((status = 200, content_type = "application/pkix-cert", body = Vec<u8>), (status = 404, body = ErrorBody)))]
pub async fn download_cer(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (c, pem) = download(&s, &auth, &org_id, &id).await?;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pkix-cert".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file_name(&c, "cer")),
            ),
        ],
        der,
    )
        .into_response())
}
