//! `GET /api/v1/me`: who a token belongs to.

use crate::common::{Backend, TestApp};

on_both_backends!(me_names_the_caller_and_its_organization);

async fn me_names_the_caller_and_its_organization(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, token) = app.member(&org, "Alice", "org_admin").await;
    let me = app.get("/api/v1/me", &token).await.expect(200);
    assert_eq!(me["kind"], "member");
    assert_eq!(me["org_id"], org.as_str());
    assert_eq!(me["role"], "org_admin");
    assert_eq!(me["user"]["id"], alice["id"]);
    let admin = app.get("/api/v1/me", &app.admin).await.expect(200);
    assert_eq!(admin["kind"], "system_admin");
    assert!(admin["org_id"].is_null());
    app.get("/api/v1/me", "mbt_not_a_token")
        .await
        .error(401, "unauthorized");
}
