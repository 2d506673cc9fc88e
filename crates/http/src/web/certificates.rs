//! Certificates: the organization's certificates for Exchange Online
//! (server-to-server authentication), with their thumbprints and end dates;
//! generate a self-signed one for evaluation, upload one as PEM, download the
//! public certificate (.cer for the app registration, or PEM), delete one that
//! no profile selects. A PKCS#12 (.pfx) file is uploaded as a file with its
//! password (a multipart form); its bytes go to the API in base64.

use axum::extract::{Multipart, Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::api::ApiFailure;
use super::error::{WebError, see_other};
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/certificates", get(list))
        .route("/certificates/generate", post(generate))
        .route("/certificates/upload", post(upload))
        .route("/certificates/upload-pkcs12", post(upload_pkcs12))
        .route("/certificates/{id}/certificate.cer", get(download_cer))
        .route("/certificates/{id}/certificate.pem", get(download_pem))
        .route("/certificates/{id}/delete", post(delete))
}

#[derive(Deserialize, Default)]
struct Notice {
    #[serde(default)]
    notice: String,
}

/// Where a certificate stands: `valid`, `expiring` (30 days or less) or `expired`.
fn status_of(not_after: &str, now: DateTime<Utc>) -> &'static str {
    match DateTime::parse_from_rfc3339(not_after).map(|t| t.with_timezone(&Utc)) {
        Ok(t) if t <= now => "expired",
        Ok(t) if t - now <= chrono::Duration::days(30) => "expiring",
        Ok(_) => "valid",
        Err(_) => "unknown",
    }
}

fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

async fn page(
    s: &Session,
    notice: &str,
    form: Value,
    error: Option<ApiFailure>,
) -> Result<Html<String>, WebError> {
    let page: Value = s.api.get(&s.org_api("certificates?limit=200")).await?;
    let now = Utc::now();
    let rows: Vec<Value> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let status = status_of(c["not_after"].as_str().unwrap_or_default(), now);
            json!({"c": c, "status": status})
        })
        .collect();
    html(
        "certificates.html",
        json!({
            "layout": s.layout("certificates", "Certificates"),
            "rows": rows,
            "notice": notice,
            "form": form,
            "errors": error.as_ref().map(ApiFailure::field_messages).unwrap_or_else(|| json!({})),
            "error": error,
        }),
    )
}

async fn list(s: Session, Query(q): Query<Notice>) -> Result<Html<String>, WebError> {
    page(&s, &q.notice, json!({}), None).await
}

/// Shows a refusal on the page (validation, a name taken), or fails the request.
async fn refused(s: &Session, form: Value, e: ApiFailure) -> Result<Response, WebError> {
    if matches!(e.status, 400 | 409 | 422) {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        Ok((status, page(s, "", form, Some(e)).await?).into_response())
    } else {
        Err(e.into())
    }
}

async fn generate(
    s: Session,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let days = field(&pairs, "validity_days");
    let mut body = json!({"name": field(&pairs, "name").trim()});
    if !days.trim().is_empty() {
        body["validity_days"] = match days.trim().parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(days),
        };
    }
    match s
        .api
        .post::<Value>(&s.org_api("certificates/generate"), &body)
        .await
    {
        Ok(_) => Ok(see_other("/certificates?notice=generated")),
        Err(e) => refused(&s, json!({"generate": body}), e).await,
    }
}

async fn upload(
    s: Session,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let body = json!({
        "name": field(&pairs, "name").trim(),
        "certificate_pem": field(&pairs, "certificate_pem"),
        "private_key_pem": field(&pairs, "private_key_pem"),
    });
    match s.api.post::<Value>(&s.org_api("certificates"), &body).await {
        Ok(_) => Ok(see_other("/certificates?notice=uploaded")),
        // The key is never written back into the page.
        Err(e) => {
            let form = json!({"upload": {"name": body["name"], "certificate_pem": body["certificate_pem"]}});
            refused(&s, form, e).await
        }
    }
}

fn bad_upload(message: String) -> WebError {
    WebError::Api(ApiFailure {
        status: 400,
        code: "bad_request".to_owned(),
        message,
        field: None,
        details: Vec::new(),
    })
}

/// The fields of the PKCS#12 form: name, the file, its password.
async fn pkcs12_fields(mut form: Multipart) -> Result<(String, Vec<u8>, String), WebError> {
    let (mut name, mut file, mut password) = (String::new(), Vec::new(), String::new());
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad_upload(format!("the upload could not be read: {e}")))?
    {
        let what = field.name().unwrap_or_default().to_owned();
        let unreadable = |e: axum::extract::multipart::MultipartError| {
            bad_upload(format!("the field {what} could not be read: {e}"))
        };
        match what.as_str() {
            "name" => name = field.text().await.map_err(unreadable)?,
            "pkcs12_password" => password = field.text().await.map_err(unreadable)?,
            "pkcs12_file" => file = field.bytes().await.map_err(unreadable)?.to_vec(),
            _ => {}
        }
    }
    Ok((name, file, password))
}

async fn upload_pkcs12(s: Session, form: Multipart) -> Result<Response, WebError> {
    use base64::Engine as _;
    let (name, file, password) = pkcs12_fields(form).await?;
    let form = json!({"pkcs12": {"name": name.trim()}});
    if file.is_empty() {
        let missing = ApiFailure {
            status: 422,
            code: "validation_failed".to_owned(),
            message: "pkcs12_base64: choose the .pfx or .p12 file to upload".to_owned(),
            field: Some("pkcs12_base64".to_owned()),
            details: Vec::new(),
        };
        return refused(&s, form, missing).await;
    }
    let body = json!({
        "name": name.trim(),
        "pkcs12_base64": base64::engine::general_purpose::STANDARD.encode(&file),
        "pkcs12_password": password,
    });
    match s.api.post::<Value>(&s.org_api("certificates"), &body).await {
        Ok(_) => Ok(see_other("/certificates?notice=uploaded")),
        // Neither the file nor its password is written back into the page.
        Err(e) => refused(&s, form, e).await,
    }
}

async fn download(s: &Session, id: &str, file: &str) -> Result<Response, WebError> {
    let c: Value = s.api.get(&s.org_api(&format!("certificates/{id}"))).await?;
    let (content_type, bytes) = s
        .api
        .get_raw(&s.org_api(&format!("certificates/{id}/{file}")))
        .await?;
    let name: String = c["name"]
        .as_str()
        .unwrap_or("certificate")
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || "-_.".contains(ch) {
                ch
            } else {
                '-'
            }
        })
        .collect();
    let extension = file.rsplit('.').next().unwrap_or("cer");
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{extension}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn download_cer(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    download(&s, &id, "certificate.cer").await
}

async fn download_pem(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    download(&s, &id, "certificate.pem").await
}

async fn delete(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    match s
        .api
        .delete(&s.org_api(&format!("certificates/{id}")))
        .await
    {
        Ok(()) => Ok(see_other("/certificates?notice=deleted")),
        Err(e) => refused(&s, json!({}), e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_valid_expiring_or_expired() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(status_of("2026-03-01T00:00:00Z", now), "valid");
        assert_eq!(status_of("2026-01-20T00:00:00Z", now), "expiring");
        assert_eq!(status_of("2025-12-31T00:00:00Z", now), "expired");
        assert_eq!(status_of("soon", now), "unknown");
    }
}
