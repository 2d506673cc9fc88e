//! The OpenAPI document is generated from the handlers and covers the contract.

use serde_json::Value;

use crate::common::{Backend, TestApp};

on_both_backends!(document_covers_the_public_paths);

async fn document_covers_the_public_paths(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/organizations", &["get", "post"][..]),
        ("/api/v1/organizations/{org_id}", &["get", "patch"]),
        ("/api/v1/orgs/{org_id}/email-settings", &["get", "patch"]),
        ("/api/v1/orgs/{org_id}/tokens", &["get", "post"]),
        ("/api/v1/orgs/{org_id}/mailboxes", &["get", "patch"]),
        ("/api/v1/orgs/{org_id}/mailboxes/{id}", &["get", "patch"]),
        ("/api/v1/orgs/{org_id}/mailboxes/approve", &["post"]),
        ("/api/v1/orgs/{org_id}/users/{id}", &["get", "patch"]),
        ("/api/v1/orgs/{org_id}/alerts/{id}", &["get", "delete"]),
        ("/api/v1/orgs/{org_id}/jobs/{id}", &["get"]),
    ];
    for (path, methods) in expected {
        for m in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*m)).is_some(),
                "{m} {path} is documented"
            );
        }
    }
    for kind in [
        "users",
        "queues",
        "contacts",
        "accounts",
        "leads",
        "email-server-profiles",
        "emails",
        "appointments",
        "tasks",
        "alerts",
        "jobs",
    ] {
        let path = format!("/api/v1/orgs/{{org_id}}/{kind}");
        for m in ["get", "post"] {
            assert!(paths[&path].get(m).is_some(), "{m} {path} is documented");
        }
    }
    // Operation ids are unique, as OpenAPI requires.
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op.get("operationId").and_then(Value::as_str))
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "duplicate operationIds");
    assert!(total >= 60, "{total} operations");
    // Secrets appear as write-only password fields.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ProfileInput"]["properties"]["incoming_password"]["format"],
        "password"
    );
    assert!(
        schemas["EmailServerProfile"]["properties"]
            .get("incoming_password")
            .is_none()
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
