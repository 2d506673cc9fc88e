//! The web admin's sign-in, sessions and CSRF protection over real HTTP, and the
//! password endpoint they rest on.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::common::{Backend, TestApp};

on_both_backends!(
    users_set_their_own_password_and_administrators_anyones,
    password_sign_in_opens_a_session_that_sign_out_ends,
    changes_need_the_session_csrf_token_and_this_site,
    password_guessing_is_slowed_down,
);

/// A client that follows no redirects, so that each answer can be inspected.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the cookie `name` set by `resp`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// The value of hidden input `_csrf` in a page.
fn form_csrf(html: &str) -> String {
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("the page has a CSRF field");
    let rest = &html[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Sets `user`'s password as the system administrator.
async fn set_password(app: &TestApp, org: &str, user: &serde_json::Value, password: &str) {
    app.call(
        reqwest::Method::PUT,
        &format!(
            "/api/v1/orgs/{org}/users/{}/password",
            user["id"].as_str().unwrap()
        ),
        &app.admin,
        Some(json!({"password": password})),
    )
    .await
    .expect(204);
}

/// Signs in with a password; returns the session cookie (`name=value`).
async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    let b = browser();
    let page = b.get(format!("{}/sign-in", app.base)).send().await.unwrap();
    let signin_cookie = set_cookie(&page, "__Host-mb_signin").expect("a sign-in cookie");
    let csrf = form_csrf(&page.text().await.unwrap());
    b.post(format!("{}/sign-in", app.base))
        .header(COOKIE, signin_cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("method", "password"),
            ("email", email),
            ("password", password),
            ("next", "/alerts"),
        ])
        .send()
        .await
        .unwrap()
}

async fn users_set_their_own_password_and_administrators_anyones(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let other = app.org("Fabrikam").await;
    let (alice, alice_token) = app.member(&org, "Alice", "user").await;
    let (bob, _) = app.member(&org, "Bob", "user").await;
    let path = |u: &serde_json::Value| {
        format!(
            "/api/v1/orgs/{org}/users/{}/password",
            u["id"].as_str().unwrap()
        )
    };
    let put = |path: String, token: String, body: serde_json::Value| {
        let app = &app;
        async move {
            app.call(reqwest::Method::PUT, &path, &token, Some(body))
                .await
        }
    };

    let e = put(
        path(&alice),
        alice_token.clone(),
        json!({"password": "short"}),
    )
    .await
    .error(422, "validation_failed");
    assert!(
        e.to_string().contains("at least 12 characters"),
        "the rule is named: {e}"
    );
    put(
        path(&alice),
        alice_token.clone(),
        json!({"password": "alice's long password"}),
    )
    .await
    .expect(204);
    // A user may not set someone else's; an administrator may.
    put(
        path(&bob),
        alice_token.clone(),
        json!({"password": "bob's long password!"}),
    )
    .await
    .error(403, "forbidden");
    put(
        path(&bob),
        app.admin.clone(),
        json!({"password": "bob's long password!"}),
    )
    .await
    .expect(204);
    // Another organization's path does not exist for this organization's users.
    put(
        format!(
            "/api/v1/orgs/{other}/users/{}/password",
            bob["id"].as_str().unwrap()
        ),
        alice_token.clone(),
        json!({"password": "x".repeat(20)}),
    )
    .await
    .error(404, "not_found");
    // The password is never returned, and only its hash is stored.
    let got = app
        .get(
            &format!("/api/v1/orgs/{org}/users/{}", alice["id"].as_str().unwrap()),
            &app.admin,
        )
        .await
        .expect(200);
    assert!(!got.to_string().contains("password"), "{got}");
    let owner = app
        .store
        .verify_user_password(
            "alice@example.org",
            &mailbridge_domain::secret::Secret::new("alice's long password"),
        )
        .await
        .unwrap()
        .expect("the password verifies");
    assert_eq!(owner.user_id, alice["id"].as_str().unwrap());
    assert!(
        app.store
            .verify_user_password(
                "alice@example.org",
                &mailbridge_domain::secret::Secret::new("alice's long passworD"),
            )
            .await
            .unwrap()
            .is_none()
    );
}

async fn password_sign_in_opens_a_session_that_sign_out_ends(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, _) = app.member(&org, "Alice", "org_admin").await;
    set_password(&app, &org, &alice, "alice's long password").await;

    // A wrong password: the form again, with a message, and no session.
    let wrong = sign_in(&app, "alice@example.org", "not her password").await;
    assert_eq!(wrong.status(), StatusCode::OK);
    assert!(set_cookie(&wrong, "__Host-mb_session").is_none());
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("email address or password is wrong")
    );

    let ok = sign_in(&app, "Alice@Example.org", "alice's long password").await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[LOCATION], "/alerts");
    let raw = ok
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("__Host-mb_session="))
        .unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(raw.contains(attr), "{raw} lacks {attr}");
    }
    let session = set_cookie(&ok, "__Host-mb_session").unwrap();

    let b = browser();
    let page = b
        .get(format!("{}/alerts", app.base))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Alice") && html.contains("Contoso"), "{html}");
    assert!(
        !html.contains("mbt_"),
        "the session's API token never reaches the page"
    );

    // Signing out ends the session and revokes its token.
    let csrf = form_csrf(&html);
    let out = b
        .post(format!("{}/sign-out", app.base))
        .header(COOKIE, &session)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = b
        .get(format!("{}/alerts", app.base))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert!(
        after.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/sign-in")
    );

    // A `next` that leaves the site is not followed.
    let b = browser();
    let page = b.get(format!("{}/sign-in", app.base)).send().await.unwrap();
    let signin_cookie = set_cookie(&page, "__Host-mb_signin").unwrap();
    let csrf = form_csrf(&page.text().await.unwrap());
    let r = b
        .post(format!("{}/sign-in", app.base))
        .header(COOKIE, signin_cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("method", "token"),
            ("token", app.admin.as_str()),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/organizations");
}

async fn changes_need_the_session_csrf_token_and_this_site(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let alert = app
        .post(
            &format!("/api/v1/orgs/{org}/alerts"),
            &app.admin,
            json!({"scope": "organization", "severity": "warning", "message": "Check me"}),
        )
        .await
        .expect(201);
    let (alice, _) = app.member(&org, "Alice", "org_admin").await;
    set_password(&app, &org, &alice, "alice's long password").await;
    let ok = sign_in(&app, "alice@example.org", "alice's long password").await;
    let session = set_cookie(&ok, "__Host-mb_session").unwrap();
    let b = browser();
    let html = b
        .get(format!("{}/alerts", app.base))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Check me"));
    let csrf = form_csrf(&html);
    let dismiss = format!(
        "{}/alerts/{}/dismiss",
        app.base,
        alert["id"].as_str().unwrap()
    );

    // Without the token, with a wrong one, or from another site: refused.
    let refused = [
        b.post(&dismiss).header(COOKIE, &session),
        b.post(&dismiss)
            .header(COOKIE, &session)
            .header("x-csrf-token", "not-the-token"),
        b.post(&dismiss)
            .header(COOKIE, &session)
            .form(&[("_csrf", "not-the-token")]),
        b.post(&dismiss)
            .header(COOKIE, &session)
            .header("x-csrf-token", &csrf)
            .header("sec-fetch-site", "cross-site"),
    ];
    for req in refused {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().starts_with("Refused:"));
    }
    app.get(
        &format!(
            "/api/v1/orgs/{org}/alerts/{}",
            alert["id"].as_str().unwrap()
        ),
        &app.admin,
    )
    .await
    .expect(200);

    // With it (as htmx sends it), the alert is dismissed.
    let r = b
        .post(&dismiss)
        .header(COOKIE, &session)
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.get(
        &format!(
            "/api/v1/orgs/{org}/alerts/{}",
            alert["id"].as_str().unwrap()
        ),
        &app.admin,
    )
    .await
    .error(404, "not_found");
}

async fn password_guessing_is_slowed_down(backend: Backend) {
    let app = TestApp::start(backend).await;
    let org = app.org("Contoso").await;
    let (alice, _) = app.member(&org, "Alice", "user").await;
    set_password(&app, &org, &alice, "alice's long password").await;
    for _ in 0..5 {
        let r = sign_in(&app, "alice@example.org", "a wrong guess").await;
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("email address or password is wrong")
        );
    }
    // The right password is refused now too, with the reason and the way out.
    let r = sign_in(&app, "ALICE@example.org", "alice's long password").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(&r, "__Host-mb_session").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("Too many wrong passwords"), "{page}");
    assert!(page.contains("API token"), "{page}");
    // Another address is not locked.
    let (bob, _) = app.member(&org, "Bob", "user").await;
    set_password(&app, &org, &bob, "bob's long password!").await;
    let r = sign_in(&app, "bob@example.org", "bob's long password!").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
