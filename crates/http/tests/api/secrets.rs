//! Secrets are write-only: never in an answer, and sealed at rest.

use mailbridge_store::{ProfileSecret, with_db};
use serde_json::json;

use crate::common::{Backend, TestApp};

on_both_backends!(secrets_are_write_only_and_sealed);

const SECRETS: [&str; 4] = [
    "imap-Pa55word!",
    "smtp-Pa55word!",
    "client-5ecret-value",
    "mailbox-Pa55word!",
];

#[track_caller]
fn assert_no_secret(text: &str, what: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows a secret: {text}");
    }
}

async fn secrets_are_write_only_and_sealed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let base = format!("/api/v1/orgs/{org}");
    let created = app
        .post(
            &format!("{base}/email-server-profiles"),
            &app.admin,
            json!({
                "name": "Service account", "server_type": "imap_smtp",
                "incoming_server_location": "imaps://mail.example.org", "outgoing_server_location": "smtps://mail.example.org",
                "authentication_type": "credentials_specified_in_profile",
                "incoming_username": "svc", "incoming_password": SECRETS[0],
                "use_same_settings_for_outgoing": false, "outgoing_username": "svc-out", "outgoing_password": SECRETS[1],
                "client_secret": SECRETS[2]
            }),
        )
        .await;
    assert_no_secret(&created.text, "profile create");
    let profile = created.expect(201);
    assert_eq!(profile["incoming_password_set"], true);
    assert_eq!(profile["outgoing_password_set"], true);
    assert_eq!(profile["client_secret_set"], true);
    let id = profile["id"].as_str().unwrap().to_owned();
    let (user, token) = app.member(&org, "Alice", "user").await;
    let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
    let patched = app
        .patch(
            &format!("{base}/mailboxes/{mailbox}"),
            &token,
            json!({"password": SECRETS[3]}),
        )
        .await;
    assert_no_secret(&patched.text, "mailbox patch");
    assert_eq!(patched.expect(200)["password_set"], true);
    let reads = [
        format!("{base}/email-server-profiles"),
        format!("{base}/email-server-profiles/{id}"),
        format!("{base}/mailboxes"),
        format!("{base}/mailboxes/{mailbox}"),
        "/api/v1/openapi.json".to_owned(),
    ];
    for path in &reads {
        let answer = app.get(path, &app.admin).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_no_secret(&answer.text, path);
    }
    // A PATCH without the secret keeps it; null clears it.
    let kept = app
        .patch(
            &format!("{base}/email-server-profiles/{id}"),
            &app.admin,
            json!({"description": "svc"}),
        )
        .await
        .expect(200);
    assert_eq!(kept["incoming_password_set"], true);
    assert_eq!(
        app.store
            .profile_secret(&org, &id, ProfileSecret::IncomingPassword)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        SECRETS[0],
        "the connector side reads the secret back"
    );
    let e = app
        .patch(
            &format!("{base}/email-server-profiles/{id}"),
            &app.admin,
            json!({"incoming_password": null}),
        )
        .await
        .error(422, "validation_failed");
    assert_eq!(
        e["field"], "incoming_password",
        "the service account needs its password"
    );
    let cleared = app
        .patch(
            &format!("{base}/email-server-profiles/{id}"),
            &app.admin,
            json!({"client_secret": null}),
        )
        .await
        .expect(200);
    assert_eq!(cleared["client_secret_set"], false);
    // At rest: the columns hold sealed values, never the plaintext.
    let sealed: Vec<Option<String>> = with_db!(app.store.db(), p => {
        let mut values = Vec::new();
        let row: (Option<String>, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT incoming_password_enc, outgoing_password_enc, client_secret_enc FROM email_server_profiles WHERE id = $1",
        ).bind(&id).fetch_one(p).await.unwrap();
        values.extend([row.0, row.1, row.2]);
        let m: Option<String> = sqlx::query_scalar("SELECT password_enc FROM mailboxes WHERE id = $1")
            .bind(&mailbox).fetch_one(p).await.unwrap();
        values.push(m);
        values
    });
    let present: Vec<&String> = sealed.iter().flatten().collect();
    assert_eq!(
        present.len(),
        3,
        "incoming, outgoing and the mailbox's password are stored"
    );
    for v in present {
        assert!(v.starts_with("v1:"), "sealed format: {v}");
        assert_no_secret(v, "a stored column");
    }
}
