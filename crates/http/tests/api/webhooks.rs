//! Webhook subscriptions over the API: validation names the field, the secret is
//! shown once (creation, rotation) and sealed at rest, the test ping lands in the
//! delivery log, and only an organization's administrators see its webhooks.

use mailbridge_store::with_db;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

on_both_backends!(
    subscriptions_validate_and_show_the_secret_once,
    webhooks_are_for_the_organizations_administrators
);

async fn subscriptions_validate_and_show_the_secret_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let hooks = format!("/api/v1/orgs/{org}/webhooks");
    let admin = &app.admin;
    let valid = json!({"url": "https://crm.example.org/hooks", "event_types": ["email.tracked", "alert.raised"]});

    let invalid = [
        (
            json!({"event_types": ["email.tracked"]}),
            "missing_field",
            "url",
            "url is required",
        ),
        (
            json!({"url": "ftp://crm.example.org/", "event_types": ["email.tracked"]}),
            "validation_failed",
            "url",
            "url must use https or http, not ftp",
        ),
        (
            json!({"url": "https://u:p@crm.example.org/", "event_types": ["email.tracked"]}),
            "validation_failed",
            "url",
            "must not carry a user name or password",
        ),
        (
            json!({"url": "https://crm.example.org/", "event_types": []}),
            "validation_failed",
            "event_types",
            "event_types must list at least one of: email.tracked, email.sent",
        ),
        (
            json!({"url": "https://crm.example.org/", "event_types": ["email.opened"]}),
            "invalid_value",
            "event_types[0]",
            "email.tracked",
        ),
        (
            json!({"url": "https://crm.example.org/", "event_types": ["email.sent"], "secret": "mine"}),
            "unknown_field",
            "secret",
            "is not a field",
        ),
    ];
    for (body, code, field, text) in invalid {
        let e = app.post(&hooks, admin, body.clone()).await.error(422, code);
        assert_eq!(e["field"], field, "{body}: {e}");
        assert!(e["message"].as_str().unwrap().contains(text), "{body}: {e}");
    }

    let created = app.post(&hooks, admin, valid).await.expect(201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["event_types"],
        json!(["email.tracked", "alert.raised"])
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let one = format!("{hooks}/{id}");

    let no_secret = |answer: &crate::common::Answer, secret: &str, what: &str| {
        assert!(
            !answer.text.contains(secret),
            "{what} shows the secret: {}",
            answer.text
        );
        assert!(
            !answer.text.contains("\"secret\""),
            "{what}: {}",
            answer.text
        );
    };
    for path in [&hooks, &one] {
        let answer = app.get(path, admin).await;
        assert_eq!(answer.status, 200, "{path}");
        no_secret(&answer, &secret, path);
    }
    let sealed: String = with_db!(app.store.db(), p => sqlx::query_scalar(
        "SELECT secret_enc FROM webhook_subscriptions WHERE id = $1",
    ).bind(&id).fetch_one(p).await)
    .unwrap();
    assert!(
        sealed.starts_with("v1:") && !sealed.contains(&secret[6..]),
        "sealed at rest"
    );

    let patched = app
        .patch(
            &one,
            admin,
            json!({"event_types": ["email.sent"], "description": "CRM", "enabled": false}),
        )
        .await;
    no_secret(&patched, &secret, "PATCH");
    let patched = patched.expect(200);
    assert_eq!(patched["event_types"], json!(["email.sent"]));
    assert_eq!(
        (
            patched["description"].as_str(),
            patched["enabled"].as_bool()
        ),
        (Some("CRM"), Some(false))
    );
    let e = app
        .patch(&one, admin, json!({"url": "not a url"}))
        .await
        .error(422, "validation_failed");
    assert_eq!(e["field"], "url");
    let cleared = app
        .patch(&one, admin, json!({"description": null}))
        .await
        .expect(200);
    assert_eq!(cleared["description"], Value::Null);

    let rotated = app
        .post(&format!("{one}/rotate-secret"), admin, json!({}))
        .await
        .expect(200);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    no_secret(
        &app.get(&one, admin).await,
        new_secret,
        "GET after rotation",
    );

    // The test ping: refused while disabled, then queued for this subscription.
    let e = app
        .post(&format!("{one}/test"), admin, json!({}))
        .await
        .error(409, "conflict");
    assert_eq!(e["field"], "enabled");
    app.patch(&one, admin, json!({"enabled": true}))
        .await
        .expect(200);
    let queued = app
        .post(&format!("{one}/test"), admin, json!({}))
        .await
        .expect(202);
    let event_id = queued["event_id"].as_str().unwrap().to_owned();
    assert!(event_id.starts_with("msg_"), "{event_id}");
    let log = app
        .get(&format!("{one}/deliveries"), admin)
        .await
        .expect(200);
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(items[0]["event_id"], event_id.as_str());
    assert_eq!(items[0]["event_type"], "webhook.test");
    assert_eq!(items[0]["status"], "pending");
    assert_eq!(items[0]["log"], json!([]));
    let pending = app
        .get(&format!("{one}/deliveries?status=pending"), admin)
        .await
        .expect(200);
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    let failed = app
        .get(&format!("{one}/deliveries?status=failed"), admin)
        .await
        .expect(200);
    assert_eq!(failed["items"], json!([]));

    let e = app
        .get(&format!("{one}/deliveries?status=lost"), admin)
        .await
        .error(422, "invalid_value");
    assert_eq!(e["field"], "status");
    let e = app
        .get(&format!("{one}/deliveries?cursor=nope"), admin)
        .await
        .error(422, "invalid_value");
    assert_eq!(e["field"], "cursor");
    let e = app
        .post(
            &format!("{one}/deliveries/{event_id}/retry"),
            admin,
            json!({}),
        )
        .await
        .error(409, "conflict");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("only a failed delivery can be retried"),
        "{e}"
    );
    app.post(
        &format!("{one}/deliveries/msg_0190a0b0c0d0e0f00102030405060708/retry"),
        admin,
        json!({}),
    )
    .await
    .error(404, "not_found");

    let doc = app.get("/api/v1/openapi.json", admin).await.expect(200);
    for (path, method) in [
        ("/api/v1/orgs/{org_id}/webhooks", "post"),
        ("/api/v1/orgs/{org_id}/webhooks/{id}", "patch"),
        ("/api/v1/orgs/{org_id}/webhooks/{id}/rotate-secret", "post"),
        ("/api/v1/orgs/{org_id}/webhooks/{id}/deliveries", "get"),
        (
            "/api/v1/orgs/{org_id}/webhooks/{id}/deliveries/{event_id}/retry",
            "post",
        ),
        ("/api/v1/orgs/{org_id}/webhooks/{id}/test", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }

    app.delete(&one, admin).await.expect(204);
    app.get(&one, admin).await.error(404, "not_found");
    app.get(&format!("{one}/deliveries"), admin)
        .await
        .error(404, "not_found");
}

async fn webhooks_are_for_the_organizations_administrators(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let other = app.org("Fabrikam").await;
    let hooks = format!("/api/v1/orgs/{org}/webhooks");
    let body = json!({"url": "https://crm.example.org/hooks", "event_types": ["email.sent"]});
    let (_, org_admin) = app.member(&org, "Olga Admin", "org_admin").await;
    let (_, user) = app.member(&org, "Ursula User", "user").await;
    let (_, approver) = app.member(&org, "Ann Approver", "approver").await;
    let (_, stranger) = app.member(&other, "Sam Stranger", "org_admin").await;

    let created = app.post(&hooks, &org_admin, body.clone()).await.expect(201);
    let one = format!("{hooks}/{}", created["id"].as_str().unwrap());
    app.get(&hooks, &org_admin).await.expect(200);

    for token in [&user, &approver] {
        let e = app
            .post(&hooks, token, body.clone())
            .await
            .error(403, "forbidden");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("may not create webhooks"),
            "{e}"
        );
        app.get(&hooks, token).await.error(403, "forbidden");
        app.get(&format!("{one}/deliveries"), token)
            .await
            .error(403, "forbidden");
        app.post(&format!("{one}/rotate-secret"), token, json!({}))
            .await
            .error(403, "forbidden");
    }

    // Another organization's administrator sees nothing of it, whatever the path.
    for path in [hooks.clone(), one.clone(), format!("{one}/deliveries")] {
        app.get(&path, &stranger).await.error(404, "not_found");
    }
    app.patch(&one, &stranger, json!({"enabled": false}))
        .await
        .error(404, "not_found");
    app.post(&format!("{one}/rotate-secret"), &stranger, json!({}))
        .await
        .error(404, "not_found");
    app.post(&format!("{one}/test"), &stranger, json!({}))
        .await
        .error(404, "not_found");
    app.delete(&one, &stranger).await.error(404, "not_found");
    let theirs = format!(
        "/api/v1/orgs/{other}/webhooks/{}",
        created["id"].as_str().unwrap()
    );
    app.get(&theirs, &stranger).await.error(404, "not_found");
    app.post(&format!("{theirs}/rotate-secret"), &stranger, json!({}))
        .await
        .error(404, "not_found");
    app.get(&one, &org_admin).await.expect(200);
}
