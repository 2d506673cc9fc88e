//! Certificates over the API: generated with a real validity or uploaded (PEM,
//! PKCS#12) with field-named refusals; the key is sealed at rest and never
//! answered; the public certificate downloads as PEM and DER; a profile selects
//! one, which then cannot be deleted; administrators only.

use base64::Engine as _;
use chrono::{Duration, Utc};
use mailbridge_connectors::identity::material::{generate_self_signed, to_pkcs12};
use mailbridge_store::with_db;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

on_both_backends!(
    a_generated_certificate_downloads_and_never_shows_its_key,
    uploads_are_checked_field_by_field,
    a_profile_selects_a_certificate_which_then_stays,
    certificates_are_for_the_organizations_administrators,
    the_web_admin_generates_lists_and_downloads_certificates
);

const APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

fn certificates(org: &str) -> String {
    format!("/api/v1/orgs/{org}/certificates")
}

async fn raw(app: &TestApp, path: &str, token: &str) -> (u16, String, Vec<u8>) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, r.bytes().await.unwrap().to_vec())
}

async fn a_generated_certificate_downloads_and_never_shows_its_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = certificates(&org);
    let c = app
        .post(
            &format!("{base}/generate"),
            &app.admin,
            json!({"name": "EXO evaluation"}),
        )
        .await
        .expect(201);
    assert_eq!(c["subject"], "CN=EXO evaluation");
    assert_eq!(c["source"], "generated");
    assert_eq!(c["key_bits"], 2048);
    let thumbprint = c["thumbprint"].as_str().unwrap().to_owned();
    assert_eq!(thumbprint.len(), 40);
    assert_eq!(thumbprint, thumbprint.to_uppercase());
    let days = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let validity = days(&c["not_after"]) - days(&c["not_before"]);
    assert_eq!(validity.num_days(), 365, "a real validity: {c}");
    let id = c["id"].as_str().unwrap().to_owned();

    let one = app.get(&format!("{base}/{id}"), &app.admin).await;
    let list = app.get(&base, &app.admin).await;
    for answer in [&one.text, &list.text] {
        assert!(!answer.contains("PRIVATE"), "{answer}");
        assert!(!answer.contains("private_key"), "{answer}");
    }
    assert_eq!(list.body["items"][0]["id"], id.as_str());

    let (status, ctype, pem) = raw(&app, &format!("{base}/{id}/certificate.pem"), &app.admin).await;
    assert_eq!((status, ctype.as_str()), (200, "application/x-pem-file"));
    let pem = String::from_utf8(pem).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let (status, ctype, der) = raw(&app, &format!("{base}/{id}/certificate.cer"), &app.admin).await;
    assert_eq!((status, ctype.as_str()), (200, "application/pkix-cert"));
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(
        der,
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    );

    // The key is sealed at rest.
    let sealed: String = with_db!(app.store.db(), p => sqlx::query_scalar(
        "SELECT private_key_enc FROM certificates WHERE id = $1").bind(&id).fetch_one(p).await.unwrap());
    assert!(sealed.starts_with("v1:") && !sealed.contains("PRIVATE KEY"));
    let key = app.store.certificate_private_key(&org, &id).await.unwrap();
    assert!(key.expose().starts_with("-----BEGIN PRIVATE KEY-----"));

    for (body, field, text) in [
        (
            json!({"name": "x", "validity_days": 0}),
            "validity_days",
            "between 1 and 1825",
        ),
        (
            json!({"name": "x", "validity_days": 1826}),
            "validity_days",
            "between 1 and 1825",
        ),
        (json!({"name": " "}), "name", "required"),
    ] {
        let e = app
            .post(&format!("{base}/generate"), &app.admin, body.clone())
            .await
            .error(422, "validation_failed");
        assert_eq!(e["field"], field, "{body}");
        assert!(e["message"].as_str().unwrap().contains(text), "{e}");
    }
    let e = app
        .post(
            &format!("{base}/generate"),
            &app.admin,
            json!({"name": "exo EVALUATION"}),
        )
        .await
        .error(409, "conflict");
    assert_eq!(e["field"], "name");

    app.delete(&format!("{base}/{id}"), &app.admin)
        .await
        .expect(204);
    app.get(&format!("{base}/{id}"), &app.admin)
        .await
        .error(404, "not_found");
}

async fn uploads_are_checked_field_by_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = certificates(&org);
    let now = Utc::now();
    let m = generate_self_signed("uploaded", now, 90).unwrap();
    let other = generate_self_signed("other", now, 90).unwrap();
    let old = generate_self_signed("old", now - Duration::days(40), 30).unwrap();
    let pem = |name: &str, c: &str, k: &str| json!({"name": name, "certificate_pem": c, "private_key_pem": k});

    let c = app
        .post(
            &base,
            &app.admin,
            pem("Uploaded", &m.certificate_pem, m.private_key_pem.expose()),
        )
        .await
        .expect(201);
    assert_eq!(c["source"], "uploaded");
    assert_eq!(c["thumbprint"], m.thumbprint.as_str());
    assert_eq!(c["x5t_s256"], m.x5t_s256.as_str());

    let e = app
        .post(
            &base,
            &app.admin,
            pem("Again", &m.certificate_pem, m.private_key_pem.expose()),
        )
        .await
        .error(409, "conflict");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("already stored as `Uploaded`"),
        "{e}"
    );

    let refused = [
        (
            pem(
                "Mismatch",
                &m.certificate_pem,
                other.private_key_pem.expose(),
            ),
            "private_key_pem",
            "does not belong to the certificate",
        ),
        (
            pem("Old", &old.certificate_pem, old.private_key_pem.expose()),
            "certificate_pem",
            "expired on",
        ),
        (
            pem("Junk", "not a certificate", m.private_key_pem.expose()),
            "certificate_pem",
            "no PEM certificate",
        ),
        (
            json!({"name": "Half", "certificate_pem": m.certificate_pem}),
            "private_key_pem",
            "required",
        ),
        (json!({"name": "None"}), "certificate_pem", "pkcs12_base64"),
        (
            json!({"name": "Pfx", "pkcs12_base64": "***"}),
            "pkcs12_base64",
            "not base64",
        ),
    ];
    for (body, field, text) in refused {
        let e = app.post(&base, &app.admin, body.clone()).await;
        assert_eq!(e.status, 422, "{}", e.text);
        let e = &e.body["error"];
        assert_eq!(e["field"], field, "{e}");
        assert!(e["message"].as_str().unwrap().contains(text), "{e}");
        assert!(
            !e.to_string().contains("BEGIN PRIVATE KEY"),
            "the key is not echoed"
        );
    }

    let pfx =
        base64::engine::general_purpose::STANDARD.encode(to_pkcs12(&other, "pfx-pass").unwrap());
    let e = app
        .post(
            &base,
            &app.admin,
            json!({"name": "Pfx", "pkcs12_base64": pfx, "pkcs12_password": "wrong"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "pkcs12_password");
    let c = app
        .post(
            &base,
            &app.admin,
            json!({"name": "Pfx", "pkcs12_base64": pfx, "pkcs12_password": "pfx-pass"}),
        )
        .await
        .expect(201);
    assert_eq!(c["thumbprint"], other.thumbprint.as_str());
    let list = app.get(&base, &app.admin).await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

async fn a_profile_selects_a_certificate_which_then_stays(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let other_org = app.org("Fabrikam").await;
    let cert = app
        .post(
            &format!("{}/generate", certificates(&org)),
            &app.admin,
            json!({"name": "EXO"}),
        )
        .await
        .expect(201);
    let foreign = app
        .post(
            &format!("{}/generate", certificates(&other_org)),
            &app.admin,
            json!({"name": "EXO"}),
        )
        .await
        .expect(201);
    let profiles = format!("/api/v1/orgs/{org}/email-server-profiles");
    let body = |cert: &Value| {
        json!({
            "name": "Exchange Online", "server_type": "exchange_online", "application_id": APP_ID,
            "certificate_id": cert["id"], "authority_url": "https://login.microsoftonline.us",
            "graph_url": "https://graph.microsoft.us",
        })
    };
    let e = app
        .post(&profiles, &app.admin, body(&foreign))
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "certificate_id");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("is not a certificate of this organization")
    );
    let e = app
        .post(&profiles, &app.admin, json!({"name": "P", "server_type": "exchange_online", "application_id": APP_ID, "authority_url": "ftp://x"}))
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "authority_url");

    let profile = app
        .post(&profiles, &app.admin, body(&cert))
        .await
        .expect(201);
    assert_eq!(profile["certificate_id"], cert["id"]);
    assert_eq!(profile["authority_url"], "https://login.microsoftonline.us");
    assert_eq!(profile["graph_url"], "https://graph.microsoft.us");

    let cert_path = format!("{}/{}", certificates(&org), cert["id"].as_str().unwrap());
    let e = app
        .delete(&cert_path, &app.admin)
        .await
        .error(409, "conflict");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("selected on the profile `Exchange Online`"),
        "{e}"
    );
    let profile_path = format!("{profiles}/{}", profile["id"].as_str().unwrap());
    let cleared = app
        .patch(&profile_path, &app.admin, json!({"certificate_id": null}))
        .await
        .expect(200);
    assert_eq!(cleared["certificate_id"], Value::Null);
    app.delete(&cert_path, &app.admin).await.expect(204);

    let imap = app
        .post(
            &profiles,
            &app.admin,
            json!({"name": "Dovecot", "server_type": "imap_smtp", "incoming_server_location": "imaps://mail.example.org",
                   "outgoing_server_location": "smtps://mail.example.org", "graph_url": "https://graph.microsoft.com"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(imap["field"], "graph_url");
}

async fn certificates_are_for_the_organizations_administrators(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let other = app.org("Fabrikam").await;
    let (_, admin) = app.member(&org, "Ada Admin", "org_admin").await;
    let (_, user) = app.member(&org, "Uma User", "user").await;
    let (_, outsider) = app.member(&other, "Olga Other", "org_admin").await;
    let base = certificates(&org);
    let c = app
        .post(
            &format!("{base}/generate"),
            &admin,
            json!({"name": "EXO", "validity_days": 30}),
        )
        .await
        .expect(201);
    let one = format!("{base}/{}", c["id"].as_str().unwrap());
    app.get(&base, &user).await.error(403, "forbidden");
    app.get(&format!("{one}/certificate.cer"), &user)
        .await
        .error(403, "forbidden");
    app.post(&format!("{base}/generate"), &user, json!({"name": "Mine"}))
        .await
        .error(403, "forbidden");
    let status = app.get(&one, &outsider).await.status;
    assert!(status == 403 || status == 404, "{status}");
    app.get(&one, &admin).await.expect(200);
}

/// `name=value` of the cookie `name` set by `resp`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// The value of hidden input `_csrf` in a page.
fn form_csrf(html: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let rest = &html[html.find(marker).expect("a CSRF field") + marker.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn the_web_admin_generates_lists_and_downloads_certificates(backend: Backend) {
    use reqwest::header::{COOKIE, LOCATION};
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (ada, _) = app.member(&org, "Ada Admin", "org_admin").await;
    app.call(
        reqwest::Method::PUT,
        &format!(
            "/api/v1/orgs/{org}/users/{}/password",
            ada["id"].as_str().unwrap()
        ),
        &app.admin,
        Some(json!({"password": "ada's long password"})),
    )
    .await
    .expect(204);
    let b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = b.get(format!("{}/sign-in", app.base)).send().await.unwrap();
    let signin = set_cookie(&page, "__Host-mb_signin").unwrap();
    let csrf = form_csrf(&page.text().await.unwrap());
    let ok = b
        .post(format!("{}/sign-in", app.base))
        .header(COOKIE, signin)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("method", "password"),
            ("email", "ada.admin@example.org"),
            ("password", "ada's long password"),
            ("next", "/certificates"),
        ])
        .send()
        .await
        .unwrap();
    let session = set_cookie(&ok, "__Host-mb_session").expect("signed in");
    let get = |path: &str| {
        b.get(format!("{}{path}", app.base))
            .header(COOKIE, &session)
            .send()
    };

    let html = get("/certificates").await.unwrap().text().await.unwrap();
    assert!(html.contains("No certificates yet"), "{html}");
    assert!(
        html.contains(">Certificates</a>"),
        "the site map links the page"
    );
    let csrf = form_csrf(&html);

    let bad = b
        .post(format!("{}/certificates/generate", app.base))
        .header(COOKIE, &session)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "Eval"),
            ("validity_days", "5000"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("between 1 and 1825"));

    let made = b
        .post(format!("{}/certificates/generate", app.base))
        .header(COOKIE, &session)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "Eval"),
            ("validity_days", "90"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 303);
    assert_eq!(made.headers()[LOCATION], "/certificates?notice=generated");
    let listed = app.get(&certificates(&org), &app.admin).await.expect(200);
    let c = &listed["items"][0];
    let html = get("/certificates?notice=generated")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(c["thumbprint"].as_str().unwrap()), "{html}");
    assert!(html.contains("Certificate generated"));

    let cer = get(&format!(
        "/certificates/{}/certificate.cer",
        c["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(cer.status(), 200);
    assert_eq!(cer.headers()["content-type"], "application/pkix-cert");
    assert_eq!(
        cer.headers()["content-disposition"],
        "attachment; filename=\"Eval.cer\""
    );
    assert!(!cer.bytes().await.unwrap().is_empty());

    let bad_upload = b
        .post(format!("{}/certificates/upload", app.base))
        .header(COOKIE, &session)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "Mine"),
            ("certificate_pem", "junk"),
            (
                "private_key_pem",
                "-----BEGIN PRIVATE KEY-----\nsecret-material\n-----END PRIVATE KEY-----",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_upload.status(), 422);
    let html = bad_upload.text().await.unwrap();
    assert!(html.contains("no PEM certificate"), "{html}");
    assert!(
        !html.contains("secret-material"),
        "the key is not written back"
    );

    // A PKCS#12 file, uploaded as a file (multipart) with its password.
    let pfx_material = generate_self_signed("Pfx", Utc::now(), 60).unwrap();
    let pfx = to_pkcs12(&pfx_material, "pfx-pass").unwrap();
    let upload = |password: &'static str, file: Option<Vec<u8>>, token: String| {
        let mut form = reqwest::multipart::Form::new()
            .text("_csrf", token)
            .text("name", "From Windows")
            .text("pkcs12_password", password);
        if let Some(bytes) = file {
            form = form.part(
                "pkcs12_file",
                reqwest::multipart::Part::bytes(bytes).file_name("contoso.pfx"),
            );
        }
        b.post(format!("{}/certificates/upload-pkcs12", app.base))
            .header(COOKIE, &session)
            .multipart(form)
            .send()
    };
    let forged = upload("pfx-pass", Some(pfx.clone()), "not-the-token".to_owned())
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        403,
        "the CSRF token is checked in a multipart form too"
    );
    let no_file = upload("pfx-pass", None, csrf.clone()).await.unwrap();
    assert_eq!(no_file.status(), 422);
    assert!(
        no_file
            .text()
            .await
            .unwrap()
            .contains("choose the .pfx or .p12 file")
    );
    let wrong = upload("wrong-pass", Some(pfx.clone()), csrf.clone())
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("pkcs12_password"), "{html}");
    assert!(
        !html.contains("wrong-pass"),
        "the password is not written back"
    );
    let ok = upload("pfx-pass", Some(pfx), csrf.clone()).await.unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()[LOCATION], "/certificates?notice=uploaded");
    let listed = app.get(&certificates(&org), &app.admin).await.expect(200);
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["thumbprint"] == pfx_material.thumbprint.as_str()
                && c["name"] == "From Windows"),
        "{listed}"
    );
}
