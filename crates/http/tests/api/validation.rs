//! Every validation rule of the foundation issue, as the API answers it: the
//! status, the code and the field at fault.

use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

on_both_backends!(
    profile_rules,
    profile_name_unique_per_organization,
    unknown_fields_are_named,
    other_rules
);

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn imap(extra: Value) -> Value {
    let mut body = json!({
        "name": "Dovecot",
        "server_type": "imap_smtp",
        "incoming_server_location": "imaps://mail.example.org",
        "outgoing_server_location": "smtps://mail.example.org",
    });
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

async fn profile_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let path = format!("/api/v1/orgs/{org}/email-server-profiles");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "polling below 0",
            imap(json!({"min_polling_interval_minutes": -1})),
            "min_polling_interval_minutes",
        ),
        (
            "polling above 1440",
            imap(json!({"min_polling_interval_minutes": 1441})),
            "min_polling_interval_minutes",
        ),
        (
            "connections 0",
            imap(json!({"max_concurrent_connections": 0})),
            "max_concurrent_connections",
        ),
        (
            "connections 301",
            imap(json!({"max_concurrent_connections": 301})),
            "max_concurrent_connections",
        ),
        (
            "no incoming location",
            imap(json!({"incoming_server_location": null})),
            "incoming_server_location",
        ),
        (
            "no outgoing location",
            imap(json!({"outgoing_server_location": null})),
            "outgoing_server_location",
        ),
        (
            "host:port without scheme",
            imap(json!({"incoming_server_location": "mail.example.org:993"})),
            "incoming_server_location",
        ),
        (
            "smtp scheme for incoming",
            imap(json!({"incoming_server_location": "smtps://mail.example.org"})),
            "incoming_server_location",
        ),
        ("blank name", imap(json!({"name": "  "})), "name"),
        (
            "tenant on imap",
            imap(json!({"tenant_id": TENANT})),
            "tenant_id",
        ),
        (
            "not a server type",
            imap(json!({"server_type": "pop3"})),
            "server_type",
        ),
        (
            "owner of nobody",
            imap(json!({"owner_id": "01a216bf-06cf-7442-976f-5f1410e77f48"})),
            "owner_id",
        ),
        (
            "profile credentials without password",
            imap(
                json!({"authentication_type": "credentials_specified_in_profile", "incoming_username": "svc"}),
            ),
            "incoming_password",
        ),
        (
            "exchange with a tenant that is not a guid",
            json!({
            "name": "EXO", "server_type": "exchange_online", "application_id": TENANT,
            "use_default_tenant_id": false, "tenant_id": "contoso.onmicrosoft.com"}),
            "tenant_id",
        ),
        (
            "exchange own tenant missing",
            json!({
            "name": "EXO", "server_type": "exchange_online", "application_id": TENANT,
            "use_default_tenant_id": false}),
            "tenant_id",
        ),
        (
            "exchange without application id",
            json!({"name": "EXO", "server_type": "exchange_online"}),
            "application_id",
        ),
        (
            "exchange over http",
            json!({
            "name": "EX", "server_type": "exchange_server", "auto_discover": false,
            "incoming_server_location": "http://ex.example.org/EWS/Exchange.asmx",
            "outgoing_server_location": "https://ex.example.org/EWS/Exchange.asmx"}),
            "incoming_server_location",
        ),
        ("missing server type", json!({"name": "X"}), "server_type"),
        ("missing name", json!({"server_type": "imap_smtp"}), "name"),
    ];
    for (case, body, field) in cases {
        let answer = app.post(&path, &app.admin, body).await;
        assert_eq!(answer.status, 422, "{case}: {}", answer.text);
        assert_eq!(
            answer.body["error"]["field"], field,
            "{case}: {}",
            answer.text
        );
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.len() > 15,
            "{case}: the message says what would be valid: {message}"
        );
    }
    // The plaintext refusal says how to allow it, and allowing it works.
    let http = json!({
        "name": "Lab EWS", "server_type": "exchange_server", "auto_discover": false,
        "incoming_server_location": "http://127.0.0.1:8081/ews", "outgoing_server_location": "http://127.0.0.1:8081/ews"});
    let refused = app
        .post(&path, &app.admin, http.clone())
        .await
        .error(422, "validation_failed");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("allow_plaintext: true"),
        "{refused}"
    );
    let mut allowed = http;
    allowed["allow_plaintext"] = json!(true);
    app.post(&path, &app.admin, allowed).await.expect(201);
    // Edges are valid, and the default tenant of the organization is used.
    app.post(&path, &app.admin, imap(json!({"name": "Edges", "min_polling_interval_minutes": 1440, "max_concurrent_connections": 300})))
        .await
        .expect(201);
    let exo = app
        .post(
            &path,
            &app.admin,
            json!({"name": "EXO", "server_type": "exchange_online", "application_id": TENANT}),
        )
        .await
        .expect(201);
    assert_eq!(exo["use_default_tenant_id"], true);
    assert_eq!(exo["auto_discover"], true);
    assert_eq!(exo["max_concurrent_connections"], 10);
    // A PATCH is validated on the whole result.
    let id = exo["id"].as_str().unwrap();
    let e = app
        .patch(
            &format!("{path}/{id}"),
            &app.admin,
            json!({"use_default_tenant_id": false}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "tenant_id");
    let e = app
        .patch(
            &format!("{path}/{id}"),
            &app.admin,
            json!({"server_type": "imap_smtp"}),
        )
        .await
        .error(422, "invalid_value");
    assert_eq!(e["field"], "server_type");
}

async fn profile_name_unique_per_organization(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = app.org("A").await;
    let b = app.org("B").await;
    app.imap_profile(&a, "Shared name").await;
    let e = app
        .post(
            &format!("/api/v1/orgs/{a}/email-server-profiles"),
            &app.admin,
            imap(json!({"name": "shared NAME"})),
        )
        .await
        .error(409, "conflict");
    assert_eq!(e["field"], "name");
    // Another organization may use the same name.
    app.imap_profile(&b, "Shared name").await;
    // Renaming onto a taken name is refused too.
    let other = app.imap_profile(&a, "Other").await;
    let e = app
        .patch(
            &format!(
                "/api/v1/orgs/{a}/email-server-profiles/{}",
                other["id"].as_str().unwrap()
            ),
            &app.admin,
            json!({"name": "Shared name"}),
        )
        .await
        .error(409, "conflict");
    assert_eq!(e["field"], "name");
}

async fn unknown_fields_are_named(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let cases = [
        (
            format!("/api/v1/orgs/{org}/email-server-profiles"),
            imap(json!({"polling": 5})),
            "polling",
        ),
        (
            format!("/api/v1/orgs/{org}/users"),
            json!({"full_name": "A", "mail": "a@example.org"}),
            "mail",
        ),
        (
            format!("/api/v1/orgs/{org}/contacts"),
            json!({"name": "A", "emailaddress1": "a@example.org"}),
            "emailaddress1",
        ),
        (
            "/api/v1/organizations".to_owned(),
            json!({"name": "X", "tenant": TENANT}),
            "tenant",
        ),
    ];
    for (path, body, field) in cases {
        let e = app
            .post(&path, &app.admin, body)
            .await
            .error(422, "unknown_field");
        assert_eq!(e["field"], field, "{path}");
        assert!(e["message"].as_str().unwrap().contains("expected"), "{e}");
    }
    let e = app
        .get(
            &format!("/api/v1/orgs/{org}/mailboxes?colour=red"),
            &app.admin,
        )
        .await
        .error(422, "unknown_parameter");
    assert_eq!(e["field"], "colour");
    let e = app
        .get(&format!("/api/v1/orgs/{org}/users?limit=0"), &app.admin)
        .await
        .error(422, "invalid_value");
    assert_eq!(e["field"], "limit");
    let e = app
        .post(
            &format!("/api/v1/orgs/{org}/users"),
            &app.admin,
            json!({"full_name": "A", "role": "admin"}),
        )
        .await
        .error(422, "invalid_value");
    assert_eq!(e["field"], "role");
    assert!(e["message"].as_str().unwrap().contains("org_admin"), "{e}");
}

async fn other_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let e = app
        .post(
            "/api/v1/organizations",
            &app.admin,
            json!({"name": "X", "default_tenant_id": "nope"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "default_tenant_id");
    let org = app.org("Contoso").await;
    let e = app
        .post(
            &format!("/api/v1/orgs/{org}/users"),
            &app.admin,
            json!({"full_name": "A", "email": "not-an-address"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "email");
    let e = app
        .patch(
            &format!("/api/v1/orgs/{org}/email-settings"),
            &app.admin,
            json!({"tracking_token_prefix": "CRM ID:"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "tracking_token_prefix");
    // The inbound listener's per-organization message size limit: 25 MB by default,
    // 1 KB to 150 MB; a value outside names the field and the range.
    let settings = format!("/api/v1/orgs/{org}/email-settings");
    let s = app.get(&settings, &app.admin).await.expect(200);
    assert_eq!(s["max_message_size_kb"], 25600);
    for bad in [0, 153_601] {
        let e = app
            .patch(&settings, &app.admin, json!({"max_message_size_kb": bad}))
            .await
            .error(422, "validation_failed");
        assert_eq!(e["field"], "max_message_size_kb");
        let message = e["message"].as_str().unwrap_or_default();
        assert!(message.contains("between 1 and 153600"), "{e}");
    }
    let s = app
        .patch(&settings, &app.admin, json!({"max_message_size_kb": 10240}))
        .await
        .expect(200);
    assert_eq!(s["max_message_size_kb"], 10240);
    let s = app.get(&settings, &app.admin).await.expect(200);
    assert_eq!(s["max_message_size_kb"], 10240);
    let e = app
        .patch(
            &format!("/api/v1/orgs/{org}/email-settings"),
            &app.admin,
            json!({"default_profile_id": "01a216bf-06cf-7442-976f-5f1410e77f48"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "default_profile_id");
    let e = app
        .post(
            &format!("/api/v1/orgs/{org}/appointments"),
            &app.admin,
            json!({"subject": "Call", "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T09:00:00Z"}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "end");
    // Not JSON at all.
    let resp = app
        .client
        .post(format!("{}/api/v1/orgs/{org}/users", app.base))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
}
