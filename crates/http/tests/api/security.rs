//! Every route of the API against the organization boundary, the permission
//! matrix and the bearer token, driven by the OpenAPI document; and secrets that
//! never reach an answer or a log line.
//!
//! `ROUTES` names, for each documented (method, path), the (Resource, Action) its
//! handler asks `Auth::check` for and how it narrows `OwnOnly`. What each role may
//! do is not written here a second time: it is what `authz::access` answers for
//! that pair. A route in the document and not in the table (or the reverse)
//! fails `every_route_is_classified`, so a new route cannot go untested.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use mailbridge_domain::Role;
use mailbridge_domain::authz::{Access, Action, Resource, access};
use mailbridge_store::{Cipher, Store};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Answer, Backend, TestApp};

on_both_backends!(
    every_route_is_classified,
    other_organizations_get_nothing,
    roles_follow_the_matrix,
    a_token_is_required,
    secrets_never_reach_answers_or_logs,
);

/// How a route narrows the matrix's `OwnOnly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// The matrix never answers `OwnOnly` here; if it starts to, the table must
    /// say how the route narrows it (the test stops with that message).
    Never,
    /// `OwnOnly` is the caller's own organization, named in the path.
    Org,
    /// A collection the handler filters to the caller's own records.
    Filtered,
    /// The path's mailbox: the caller's own, anyone else's is a 404.
    Mailbox,
    /// The path's alert: one addressed to the caller, any other is a 404.
    Alert,
    /// An organization-wide view: `OwnOnly` is not enough (403).
    Whole,
    /// The path's user: the caller themselves need Users Read only, anyone
    /// else takes the route's action.
    SelfOr,
}

#[derive(Debug, Clone, Copy)]
enum Guard {
    /// `Auth::check(resource, action)` for the organization in the path.
    Checks(Resource, Action, Own),
    /// Any valid token; the answer is about the caller only.
    AnyToken,
    /// No bearer token, authenticated otherwise; the reason is the string.
    Public(&'static str),
}

use Action::{Approve, Create, Delete, Read, Update};
use Guard::{AnyToken, Checks, Public};
use Resource::{
    Activities, Alerts, Certificates, EmailSettings, Jobs, Mailboxes, Organizations, Parties,
    Profiles, Queues, Tokens, Users, Webhooks,
};

const GRAPH_PUBLIC: &str = "Microsoft Graph posts without an Authorization header; each item's clientState is checked against its subscription's sealed secret";

/// Every documented route: (method, path, guard). `{org_id}` routes below
/// `/api/v1/orgs` and `/api/v1/organizations/{org_id}` are organization-scoped.
#[rustfmt::skip]
const ROUTES: &[(&str, &str, Guard)] = &[
    ("get", "/api/v1/me", AnyToken),
    ("get", "/api/v1/organizations", Checks(Organizations, Read, Own::Filtered)),
    ("post", "/api/v1/organizations", Checks(Organizations, Create, Own::Never)),
    ("get", "/api/v1/organizations/{org_id}", Checks(Organizations, Read, Own::Org)),
    ("patch", "/api/v1/organizations/{org_id}", Checks(Organizations, Update, Own::Org)),
    ("post", "/api/v1/graph/notifications/{org_id}", Public(GRAPH_PUBLIC)),
    ("get", "/api/v1/orgs/{org_id}/users", Checks(Users, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/users", Checks(Users, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/users/{id}", Checks(Users, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/users/{id}", Checks(Users, Update, Own::Never)),
    ("put", "/api/v1/orgs/{org_id}/users/{id}/password", Checks(Users, Update, Own::SelfOr)),
    ("get", "/api/v1/orgs/{org_id}/users/{id}/sync-filters", Checks(Users, Read, Own::Never)),
    ("put", "/api/v1/orgs/{org_id}/users/{id}/sync-filters", Checks(Users, Update, Own::SelfOr)),
    ("get", "/api/v1/orgs/{org_id}/queues", Checks(Queues, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/queues", Checks(Queues, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/queues/{id}", Checks(Queues, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/queues/{id}", Checks(Queues, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/queues/{id}", Checks(Queues, Delete, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/contacts", Checks(Parties, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/contacts", Checks(Parties, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/contacts/{id}", Checks(Parties, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/contacts/{id}", Checks(Parties, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/contacts/{id}", Checks(Parties, Delete, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/accounts", Checks(Parties, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/accounts", Checks(Parties, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/accounts/{id}", Checks(Parties, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/accounts/{id}", Checks(Parties, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/accounts/{id}", Checks(Parties, Delete, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/leads", Checks(Parties, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/leads", Checks(Parties, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/leads/{id}", Checks(Parties, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/leads/{id}", Checks(Parties, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/leads/{id}", Checks(Parties, Delete, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/email-server-profiles", Checks(Profiles, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/email-server-profiles", Checks(Profiles, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/email-server-profiles/{id}", Checks(Profiles, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/email-server-profiles/{id}", Checks(Profiles, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/email-server-profiles/{id}", Checks(Profiles, Delete, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/email-server-profiles/{id}/test-connection", Checks(Profiles, Update, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/email-server-profiles/{id}/mail-events", Checks(Profiles, Update, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes", Checks(Mailboxes, Read, Own::Filtered)),
    ("patch", "/api/v1/orgs/{org_id}/mailboxes", Checks(Mailboxes, Update, Own::Whole)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes/counts", Checks(Mailboxes, Read, Own::Filtered)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes/{id}", Checks(Mailboxes, Read, Own::Mailbox)),
    ("patch", "/api/v1/orgs/{org_id}/mailboxes/{id}", Checks(Mailboxes, Update, Own::Mailbox)),
    ("post", "/api/v1/orgs/{org_id}/mailboxes/approve", Checks(Mailboxes, Approve, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/mailboxes/reject", Checks(Mailboxes, Approve, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/mailboxes/apply-default-settings", Checks(Mailboxes, Update, Own::Whole)),
    ("post", "/api/v1/orgs/{org_id}/mailboxes/test-and-enable", Checks(Jobs, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes/{id}/act-decisions", Checks(Mailboxes, Read, Own::Mailbox)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes/{id}/act-links", Checks(Mailboxes, Read, Own::Mailbox)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes/{id}/messages", Checks(Mailboxes, Read, Own::Mailbox)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes/{id}/inbound-messages", Checks(Mailboxes, Read, Own::Mailbox)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes/{id}/inbound-messages/counts", Checks(Mailboxes, Read, Own::Mailbox)),
    ("post", "/api/v1/orgs/{org_id}/mailboxes/{id}/inbound-messages/{message_id}/retry", Checks(Mailboxes, Update, Own::Mailbox)),
    ("get", "/api/v1/orgs/{org_id}/mailboxes/{id}/tracked-folders", Checks(Mailboxes, Read, Own::Mailbox)),
    ("post", "/api/v1/orgs/{org_id}/mailboxes/{id}/tracked-folders", Checks(Mailboxes, Update, Own::Mailbox)),
    ("delete", "/api/v1/orgs/{org_id}/mailboxes/{id}/tracked-folders/{folder_id}", Checks(Mailboxes, Update, Own::Mailbox)),
    ("get", "/api/v1/orgs/{org_id}/email-settings", Checks(EmailSettings, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/email-settings", Checks(EmailSettings, Update, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/emails", Checks(Activities, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/emails", Checks(Activities, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/emails/{id}", Checks(Activities, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/emails/{id}", Checks(Activities, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/emails/{id}", Checks(Activities, Delete, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/emails/{id}/send", Checks(Activities, Update, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/emails/{id}/decisions", Checks(Activities, Read, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/appointments", Checks(Activities, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/appointments", Checks(Activities, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/appointments/{id}", Checks(Activities, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/appointments/{id}", Checks(Activities, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/appointments/{id}", Checks(Activities, Delete, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/tasks", Checks(Activities, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/tasks", Checks(Activities, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/tasks/{id}", Checks(Activities, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/tasks/{id}", Checks(Activities, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/tasks/{id}", Checks(Activities, Delete, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/alerts", Checks(Alerts, Read, Own::Filtered)),
    ("post", "/api/v1/orgs/{org_id}/alerts", Checks(Alerts, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/alerts/{id}", Checks(Alerts, Read, Own::Alert)),
    ("delete", "/api/v1/orgs/{org_id}/alerts/{id}", Checks(Alerts, Delete, Own::Alert)),
    ("get", "/api/v1/orgs/{org_id}/jobs", Checks(Jobs, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/jobs", Checks(Jobs, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/jobs/{id}", Checks(Jobs, Read, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/jobs/{id}/items", Checks(Jobs, Read, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/monitoring/summary", Checks(Mailboxes, Read, Own::Whole)),
    ("get", "/api/v1/orgs/{org_id}/monitoring/profiles", Checks(Mailboxes, Read, Own::Whole)),
    ("get", "/api/v1/orgs/{org_id}/monitoring/mailboxes", Checks(Mailboxes, Read, Own::Whole)),
    ("get", "/api/v1/orgs/{org_id}/monitoring/mailboxes/{id}", Checks(Mailboxes, Read, Own::Mailbox)),
    ("get", "/api/v1/orgs/{org_id}/monitoring/throughput", Checks(Mailboxes, Read, Own::Whole)),
    ("get", "/api/v1/orgs/{org_id}/monitoring/nodes", Checks(Mailboxes, Read, Own::Whole)),
    ("get", "/api/v1/orgs/{org_id}/monitoring/nodes/{node_id}/mailboxes", Checks(Mailboxes, Read, Own::Whole)),
    ("get", "/api/v1/orgs/{org_id}/tokens", Checks(Tokens, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/tokens", Checks(Tokens, Create, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/tokens/{id}", Checks(Tokens, Delete, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/webhooks", Checks(Webhooks, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/webhooks", Checks(Webhooks, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/webhooks/{id}", Checks(Webhooks, Read, Own::Never)),
    ("patch", "/api/v1/orgs/{org_id}/webhooks/{id}", Checks(Webhooks, Update, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/webhooks/{id}", Checks(Webhooks, Delete, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/webhooks/{id}/rotate-secret", Checks(Webhooks, Update, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/webhooks/{id}/deliveries", Checks(Webhooks, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/webhooks/{id}/deliveries/{event_id}/retry", Checks(Webhooks, Update, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/webhooks/{id}/test", Checks(Webhooks, Update, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/certificates", Checks(Certificates, Read, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/certificates", Checks(Certificates, Create, Own::Never)),
    ("post", "/api/v1/orgs/{org_id}/certificates/generate", Checks(Certificates, Create, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/certificates/{id}", Checks(Certificates, Read, Own::Never)),
    ("delete", "/api/v1/orgs/{org_id}/certificates/{id}", Checks(Certificates, Delete, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/certificates/{id}/certificate.pem", Checks(Certificates, Read, Own::Never)),
    ("get", "/api/v1/orgs/{org_id}/certificates/{id}/certificate.cer", Checks(Certificates, Read, Own::Never)),
];

/// Routes outside the OpenAPI document (they are not part of the REST contract),
/// found in the source by `undocumented_routes_are_classified`, with the reason
/// each is open or how it is protected.
#[rustfmt::skip]
const UNDOCUMENTED: &[(&str, &str)] = &[
    ("/healthz", "public probe: a status and the store's reachability, no records"),
    ("/livez", "public probe: the process answers"),
    ("/readyz", "public probe: store and migrations ready, no records"),
    ("/metrics", "numbers across organizations, never names or ids; a bearer metrics token when configured (with_metrics_token, tests/api/metrics.rs)"),
    ("/api/v1/openapi.json", "public: the contract itself, no data"),
    ("/sign-in", "public: the sign-in form (throttled, CSRF double-submit cookie)"),
    ("/assets/{name}", "public: the web admin's static CSS and scripts"),
];

/// Web admin pages: a session cookie, and every read and write through the REST
/// API in process with the session's token (ARCHITECTURE.md), so the table above
/// is their authorization. Without a session they never answer 2xx.
const WEB_SESSION: &str = "web admin page";

/// Which (method, path) pairs the OpenAPI document lists.
async fn documented(app: &TestApp) -> BTreeSet<(String, String)> {
    let doc = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .expect("openapi")
        .json::<Value>()
        .await
        .expect("openapi json");
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                routes.insert((method.clone(), path.clone()));
            }
        }
    }
    routes
}

async fn every_route_is_classified(backend: Backend) {
    let app = TestApp::start(backend).await;
    let documented = documented(&app).await;
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(table.len(), ROUTES.len(), "a route is listed twice");
    let unclassified: Vec<_> = documented.difference(&table).collect();
    assert!(
        unclassified.is_empty(),
        "routes in the OpenAPI document that security.rs's ROUTES does not classify (add each with the Resource and Action its handler checks): {unclassified:?}"
    );
    let stale: Vec<_> = table.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "ROUTES lists routes the API no longer has: {stale:?}"
    );
    // An organization-scoped route that is neither checked nor public would be
    // reachable across organizations by construction.
    for (method, path, guard) in ROUTES {
        if path.contains("{org_id}") {
            assert!(
                !matches!(guard, AnyToken),
                "{method} {path} names an organization but checks no permission"
            );
        }
    }
}

/// The `.route("...")` literals of the http crate's source, outside the
/// OpenAPI document; each must be in `UNDOCUMENTED` or be a web page, and no web
/// page answers without a session.
#[tokio::test]
async fn undocumented_routes_are_classified() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            // The web admin: `web.rs` and the `web/` folder.
            let is_web = path.file_name().is_some_and(|n| n == "web.rs")
                || path.components().any(|c| c.as_os_str() == "web");
            let mut rest = text.as_str();
            while let Some(at) = rest.find(".route(") {
                rest = &rest[at + ".route(".len()..];
                let literal = rest.trim_start();
                if let Some(lit) = literal.strip_prefix('"') {
                    let end = lit.find('"').expect("closing quote");
                    found.insert(lit[..end].to_owned(), is_web);
                }
            }
        }
    }
    assert!(found.contains_key("/metrics"), "the scan finds routes");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let app = TestApp::start(Backend::Sqlite).await;
    for (path, is_web) in &found {
        if let Some((_, reason)) = UNDOCUMENTED.iter().find(|(p, _)| p == path) {
            assert!(!reason.is_empty());
            continue;
        }
        assert!(
            *is_web,
            "{path} is routed outside the OpenAPI document and outside the web admin; classify it in security.rs's UNDOCUMENTED"
        );
        // A web page: no session, no page (a redirect to sign in, or a refusal).
        let url = format!(
            "{}{}",
            app.base,
            path.replace("{id}", "x").replace("{event_id}", "x")
        );
        for method in [Method::GET, Method::POST] {
            let status = client
                .request(method.clone(), &url)
                .send()
                .await
                .expect("request")
                .status();
            assert!(
                !status.is_success(),
                "{WEB_SESSION} {method} {path} answers {status} without a session"
            );
        }
    }
}

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Past authorization: 2xx, or a refusal of the input (400, 409, 422).
    Allowed,
    Forbidden,
    NotFound,
}

/// Whose record the path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whose {
    /// Someone else's in the caller's organization (the fixture's owner).
    Other,
    /// The caller's own (their mailbox, their user, an alert addressed to them).
    Mine,
}

fn expectation(
    resource: Resource,
    action: Action,
    own: Own,
    role: Option<Role>,
    whose: Whose,
    route: &str,
) -> Expect {
    let (resource, action) = if own == Own::SelfOr && whose == Whose::Mine {
        (Users, Read)
    } else {
        (resource, action)
    };
    match access(role, resource, action) {
        Access::Denied => Expect::Forbidden,
        Access::Allowed => Expect::Allowed,
        Access::OwnOnly => match (own, whose) {
            (Own::Org | Own::Filtered, _) => Expect::Allowed,
            (Own::Whole, _) => Expect::Forbidden,
            (Own::Mailbox | Own::Alert, Whose::Mine) => Expect::Allowed,
            (Own::Mailbox | Own::Alert, Whose::Other) => Expect::NotFound,
            (Own::Never | Own::SelfOr, _) => panic!(
                "the matrix answers OwnOnly for {role:?} {resource:?} {action:?} on {route}; say in ROUTES how the route narrows it"
            ),
        },
    }
}

/// Someone who calls the API.
struct Caller {
    role: Option<Role>,
    token: String,
    user_id: Option<String>,
    mailbox_id: Option<String>,
    /// An alert addressed to this caller only.
    alert_id: Option<String>,
}

/// An organization with one record of each kind and a member of each role.
struct World {
    org: String,
    /// One record of each kind, by the collection name that precedes `{id}`.
    records: BTreeMap<&'static str, String>,
    folder: String,
    event: String,
    /// A message received by the email router, by mailbox (the fixture owner's
    /// and each member's).
    inbound: BTreeMap<String, String>,
    /// The system administrator, then one member per role.
    callers: Vec<Caller>,
}

/// Marks every record of a world, so that an answer showing one is found by text.
const MARK: &str = "world-data-7f3a";

/// The references a new record may need.
struct Refs<'a> {
    user: &'a str,
    mailbox: &'a str,
    contact: &'a str,
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

/// Creates a record of `kind` (the collection name in the path) as the system
/// administrator; returns its id.
async fn create(app: &TestApp, org: &str, kind: &str, r: &Refs<'_>) -> String {
    let base = format!("/api/v1/orgs/{org}");
    // Names are unique per organization for some kinds.
    let n = uuid::Uuid::now_v7().simple().to_string();
    let (path, body) = match kind {
        "users" => ("users", json!({"full_name": format!("{MARK} user {n}")})),
        "queues" => ("queues", json!({"name": format!("{MARK} queue {n}")})),
        "contacts" | "accounts" | "leads" => (kind, json!({"name": format!("{MARK} {kind} {n}")})),
        "email-server-profiles" => (
            kind,
            json!({"name": format!("{MARK} profile {n}"), "server_type": "imap_smtp",
                   "incoming_server_location": "imaps://127.0.0.1:9",
                   "outgoing_server_location": "smtps://127.0.0.1:9"}),
        ),
        "emails" => ("emails", json!({"subject": format!("{MARK} email {n}")})),
        "appointments" => (
            kind,
            json!({"subject": format!("{MARK} call {n}"), "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z"}),
        ),
        "tasks" => ("tasks", json!({"subject": format!("{MARK} task {n}")})),
        "alerts" => (
            "alerts",
            json!({"scope": "mailbox", "severity": "error", "mailbox_id": r.mailbox,
                   "message": format!("{MARK} alert {n}"), "recipient_ids": [r.user]}),
        ),
        "jobs" => (
            "jobs",
            json!({"kind": "test_and_enable", "mailbox_ids": [r.mailbox]}),
        ),
        "tokens" => ("tokens", json!({"user_id": r.user})),
        "webhooks" => (
            "webhooks",
            json!({"url": "https://crm.example.org/hooks", "event_types": ["email.tracked"],
                   "description": MARK}),
        ),
        "certificates" => (
            "certificates/generate",
            json!({"name": format!("{MARK} cert {n}")}),
        ),
        "tracked-folders" => {
            let folder = format!("Customers/{}", uuid::Uuid::now_v7().simple());
            let path = format!("{base}/mailboxes/{}/tracked-folders", r.mailbox);
            let body =
                json!({"folder": folder, "regarding_type": "contact", "regarding_id": r.contact});
            let answer = app.post(&path, &app.admin, body).await;
            return id_of(&answer.expect(201));
        }
        other => panic!("no way to create {other}"),
    };
    let answer = app.post(&format!("{base}/{path}"), &app.admin, body).await;
    id_of(&answer.expect(201))
}

async fn build_world(app: &TestApp, name: &str) -> World {
    let org = app.org(&format!("{MARK} {name}")).await;
    let base = format!("/api/v1/orgs/{org}");
    // The owner of the fixture's records: a user other than every caller.
    let owner = app
        .post(
            &format!("{base}/users"),
            &app.admin,
            json!({"full_name": format!("{MARK} owner"), "email": format!("owner.{name}@example.org")}),
        )
        .await
        .expect(201);
    let owner_id = id_of(&owner);
    let mailbox = owner["mailbox_id"].as_str().expect("mailbox").to_owned();
    let mut records = BTreeMap::new();
    records.insert("users", owner_id.clone());
    records.insert("mailboxes", mailbox.clone());
    let contact = create(
        app,
        &org,
        "contacts",
        &Refs {
            user: "",
            mailbox: "",
            contact: "",
        },
    )
    .await;
    records.insert("contacts", contact.clone());
    let refs = Refs {
        user: &owner_id,
        mailbox: &mailbox,
        contact: &contact,
    };
    for kind in [
        "queues",
        "accounts",
        "leads",
        "email-server-profiles",
        "emails",
        "appointments",
        "tasks",
        "alerts",
        "jobs",
        "tokens",
        "webhooks",
        "certificates",
    ] {
        records.insert(kind, create(app, &org, kind, &refs).await);
    }
    let folder = create(app, &org, "tracked-folders", &refs).await;
    let queued = app
        .post(
            &format!("{base}/webhooks/{}/test", records["webhooks"]),
            &app.admin,
            json!({}),
        )
        .await
        .expect(202);
    let event = queued["event_id"].as_str().expect("event id").to_owned();
    let mut callers = vec![Caller {
        role: None,
        token: app.admin.clone(),
        user_id: None,
        mailbox_id: None,
        alert_id: None,
    }];
    for (role, role_name) in [
        (Role::OrgAdmin, "org_admin"),
        (Role::Approver, "approver"),
        (Role::User, "user"),
    ] {
        let (user, token) = app
            .member(&org, &format!("{name} {role_name}"), role_name)
            .await;
        let user_id = id_of(&user);
        let mailbox_id = user["mailbox_id"].as_str().expect("mailbox").to_owned();
        let mine = Refs {
            user: &user_id,
            mailbox: &mailbox_id,
            contact: &contact,
        };
        let alert_id = create(app, &org, "alerts", &mine).await;
        callers.push(Caller {
            role: Some(role),
            token,
            user_id: Some(user_id),
            mailbox_id: Some(mailbox_id),
            alert_id: Some(alert_id),
        });
    }
    let mut inbound = BTreeMap::new();
    let mailboxes = world_mailboxes(&records, &callers);
    for mailbox in mailboxes {
        let stored = app
            .store
            .store_inbound_message(&mailbridge_store::ReceivedMessage {
                raw: format!("Subject: {MARK} routed\r\n\r\nbody\r\n").as_bytes(),
                envelope_from: "carl@example.org",
                client_address: "127.0.0.1",
                recipients: &[mailbridge_store::InboundRecipient {
                    org_id: org.clone(),
                    mailbox_id: mailbox.clone(),
                    recipient: "routed@example.org".to_owned(),
                    tag: None,
                }],
            })
            .await
            .expect("inbound message");
        inbound.insert(mailbox, stored[0].id.clone());
    }
    World {
        org,
        records,
        folder,
        event,
        inbound,
        callers,
    }
}

/// The fixture owner's mailbox and each member's.
fn world_mailboxes(records: &BTreeMap<&'static str, String>, callers: &[Caller]) -> Vec<String> {
    std::iter::once(records["mailboxes"].clone())
        .chain(callers.iter().filter_map(|c| c.mailbox_id.clone()))
        .collect()
}

/// The path of `template` in `world`: the fixture's records, or the caller's own
/// where `whose` says so, or `fresh` for the last parameter (a record to delete).
fn fill(
    template: &str,
    world: &World,
    caller: Option<&Caller>,
    whose: Whose,
    fresh: Option<&str>,
) -> String {
    let segments: Vec<&str> = template.split('/').collect();
    let last_param = segments.iter().rposition(|s| s.starts_with('{'));
    let mut out = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        let value = match *seg {
            _ if Some(i) == last_param && fresh.is_some() && *seg != "{org_id}" => {
                fresh.map(str::to_owned)
            }
            "{org_id}" => Some(world.org.clone()),
            "{folder_id}" => Some(world.folder.clone()),
            "{event_id}" => Some(world.event.clone()),
            // The router's message of the mailbox the path names two segments before.
            "{message_id}" => Some(
                world
                    .inbound
                    .get(&out[i - 2])
                    .unwrap_or_else(|| panic!("no inbound message in {template}"))
                    .clone(),
            ),
            // Node ids are not organizations' records: any name is checked alike.
            "{node_id}" => Some("node-security-test".to_owned()),
            "{id}" => {
                let kind = segments[i - 1];
                let mine = match (whose, caller, kind) {
                    (Whose::Mine, Some(c), "mailboxes") => c.mailbox_id.clone(),
                    (Whose::Mine, Some(c), "users") => c.user_id.clone(),
                    (Whose::Mine, Some(c), "alerts") => c.alert_id.clone(),
                    _ => None,
                };
                Some(mine.unwrap_or_else(|| {
                    world
                        .records
                        .get(kind)
                        .unwrap_or_else(|| panic!("no fixture record for {kind} in {template}"))
                        .clone()
                }))
            }
            s if s.starts_with('{') => panic!("unknown path parameter {s} in {template}"),
            _ => None,
        };
        out.push(value.unwrap_or_else(|| (*seg).to_owned()));
    }
    out.join("/")
}

/// A body the route accepts (or refuses as input, past authorization).
fn body(method: &str, template: &str, world: &World) -> Option<Value> {
    let tail = template
        .strip_prefix("/api/v1/orgs/{org_id}/")
        .unwrap_or(template);
    let mailbox = &world.records["mailboxes"];
    let owner = &world.records["users"];
    let contact = &world.records["contacts"];
    let b = match (method, tail) {
        ("post", "/api/v1/organizations") => json!({"name": format!("{MARK} new org")}),
        ("patch", "/api/v1/organizations/{org_id}") => json!({"default_tenant_id": null}),
        ("post", "/api/v1/graph/notifications/{org_id}") => json!({"value": []}),
        ("post", "users") => json!({"full_name": format!("{MARK} new user")}),
        ("patch", "users/{id}") => json!({"tracking_filter": "all"}),
        ("put", "users/{id}/password") => json!({"password": "Correct-Horse-Battery-9"}),
        ("put", "users/{id}/sync-filters") => json!({}),
        ("post", "queues") => json!({"name": format!("{MARK} new queue")}),
        ("patch", "queues/{id}") => json!({"description": "changed"}),
        ("post", "contacts" | "accounts" | "leads") => json!({"name": format!("{MARK} new")}),
        ("patch", "contacts/{id}" | "accounts/{id}" | "leads/{id}") => {
            json!({"phone": "+1 555 0100"})
        }
        ("post", "email-server-profiles") => json!({
            "name": format!("{MARK} new profile"), "server_type": "imap_smtp",
            "incoming_server_location": "imaps://127.0.0.1:9",
            "outgoing_server_location": "smtps://127.0.0.1:9"}),
        ("patch", "email-server-profiles/{id}") => json!({"description": "changed"}),
        ("post", "email-server-profiles/{id}/test-connection") => json!({}),
        ("post", "email-server-profiles/{id}/mail-events") => {
            json!({"event": "messageNew", "user": "nobody@example.org"})
        }
        ("patch", "mailboxes") => json!({"ids": [], "incoming_method": "none"}),
        ("patch", "mailboxes/{id}") => json!({"track_sent_items": true}),
        ("post", "mailboxes/approve" | "mailboxes/reject" | "mailboxes/apply-default-settings") => {
            json!({"ids": []})
        }
        ("post", "mailboxes/test-and-enable") => json!({"ids": [mailbox]}),
        ("post", "mailboxes/{id}/tracked-folders") => json!({
            "folder": format!("Customers/{}", uuid::Uuid::now_v7().simple()),
            "regarding_type": "contact", "regarding_id": contact}),
        ("patch", "email-settings") => json!({"tracking_token_enabled": true}),
        ("post", "emails") => json!({"subject": format!("{MARK} new email")}),
        ("patch", "emails/{id}" | "tasks/{id}" | "appointments/{id}") => {
            json!({"subject": format!("{MARK} changed")})
        }
        ("post", "appointments") => json!({"subject": format!("{MARK} new call"),
            "start": "2026-12-02T09:00:00Z", "end": "2026-12-02T10:00:00Z"}),
        ("post", "tasks") => json!({"subject": format!("{MARK} new task")}),
        ("post", "alerts") => {
            json!({"scope": "mailbox", "severity": "warning", "mailbox_id": mailbox,
            "message": format!("{MARK} new alert"), "recipient_ids": [owner]})
        }
        ("post", "jobs") => json!({"kind": "test_and_enable", "mailbox_ids": [mailbox]}),
        ("post", "tokens") => json!({"user_id": owner}),
        ("post", "webhooks") => json!({"url": "https://crm.example.org/new",
            "event_types": ["alert.raised"]}),
        ("patch", "webhooks/{id}") => json!({"description": "changed"}),
        ("post", "certificates") => json!({"name": "not a certificate"}),
        ("post", "certificates/generate") => json!({"name": format!("{MARK} new cert")}),
        ("post", _) => return None,
        ("get" | "delete", _) => return None,
        (m, t) => panic!("no body for {m} {t}; add one to security.rs's body()"),
    };
    Some(b)
}

fn method_of(m: &str) -> Method {
    Method::from_bytes(m.to_ascii_uppercase().as_bytes()).expect("method")
}

/// The collection a DELETE route removes a record of (its last parameter's).
fn deleted_kind(template: &str) -> &str {
    if template.ends_with("{folder_id}") {
        return "tracked-folders";
    }
    let segments: Vec<&str> = template.split('/').collect();
    segments[segments.len() - 2]
}

#[track_caller]
fn check(answer: &Answer, expect: Expect, what: &str) {
    let ok = match expect {
        Expect::Allowed => !matches!(answer.status, 401 | 403 | 404 | 405) && answer.status < 500,
        Expect::Forbidden => answer.status == 403,
        Expect::NotFound => answer.status == 404,
    };
    assert!(
        ok,
        "{what}: expected {expect:?}, got {}: {}",
        answer.status, answer.text
    );
}

async fn roles_follow_the_matrix(backend: Backend) {
    let app = TestApp::start(backend).await;
    let world = build_world(&app, "alpha").await;
    let contact = world.records["contacts"].clone();
    send_as_another_mailbox_is_refused(&app, &world).await;
    for caller in &world.callers {
        for (method, template, guard) in ROUTES {
            let what = format!("{:?} {method} {template}", caller.role);
            let Checks(resource, action, own) = *guard else {
                if matches!(guard, AnyToken) {
                    let path = fill(template, &world, Some(caller), Whose::Other, None);
                    let answer = app
                        .call(method_of(method), &path, &caller.token, None)
                        .await;
                    check(&answer, Expect::Allowed, &what);
                }
                continue;
            };
            let narrowed = matches!(own, Own::Mailbox | Own::Alert | Own::SelfOr);
            let targets: &[Whose] = if narrowed && caller.role.is_some() {
                &[Whose::Other, Whose::Mine]
            } else {
                &[Whose::Other]
            };
            for &whose in targets {
                let expect = expectation(resource, action, own, caller.role, whose, template);
                // A record to delete is made for each call that may delete it, so that
                // the fixture stays whole for the calls after it.
                let fresh = if *method == "delete" && expect == Expect::Allowed {
                    let user = caller.user_id.as_deref().unwrap_or(&world.records["users"]);
                    let mailbox = match whose {
                        Whose::Mine => caller.mailbox_id.as_deref(),
                        Whose::Other => None,
                    }
                    .unwrap_or(&world.records["mailboxes"]);
                    let refs = Refs {
                        user,
                        mailbox,
                        contact: &contact,
                    };
                    Some(create(&app, &world.org, deleted_kind(template), &refs).await)
                } else {
                    None
                };
                let path = fill(template, &world, Some(caller), whose, fresh.as_deref());
                let answer = app
                    .call(
                        method_of(method),
                        &path,
                        &caller.token,
                        body(method, template, &world),
                    )
                    .await;
                check(&answer, expect, &format!("{what} ({whose:?}'s record)"));
                if let (Own::Filtered, Some(_)) = (own, caller.role)
                    && access(caller.role, resource, action) == Access::OwnOnly
                {
                    // A filtered list shows none of the fixture owner's records.
                    for kind in ["mailboxes", "alerts"] {
                        assert!(
                            !answer.text.contains(&world.records[kind]),
                            "{what} shows another user's {kind}: {}",
                            answer.text
                        );
                    }
                }
            }
        }
    }
}

/// Beyond the matrix: Activities Update lets a user send email, but only as their
/// own mailbox (`send::check`); another user's mailbox is refused.
async fn send_as_another_mailbox_is_refused(app: &TestApp, world: &World) {
    let base = format!("/api/v1/orgs/{}", world.org);
    let email = app
        .post(
            &format!("{base}/emails"),
            &app.admin,
            json!({"subject": "As the owner", "from_mailbox_id": world.records["mailboxes"],
                   "to": ["carl@example.org"]}),
        )
        .await
        .expect(201);
    for caller in world
        .callers
        .iter()
        .filter(|c| matches!(c.role, Some(Role::User | Role::Approver)))
    {
        let path = format!("{base}/emails/{}/send", id_of(&email));
        app.post(&path, &caller.token, json!({}))
            .await
            .error(403, "forbidden");
    }
}

async fn other_organizations_get_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alpha = build_world(&app, "alpha").await;
    let beta = build_world(&app, "beta").await;
    let alpha_ids: Vec<&String> = alpha
        .records
        .values()
        .chain([&alpha.folder, &alpha.event, &alpha.org])
        .chain(alpha.inbound.values())
        .collect();
    for caller in beta.callers.iter().filter(|c| c.role.is_some()) {
        for (method, template, guard) in ROUTES {
            let Checks(..) = guard else { continue };
            if !template.contains("{org_id}") {
                continue;
            }
            let what = format!("beta's {:?} {method} {template}", caller.role);
            // Alpha's URL with alpha's ids: refused before anything is read.
            let path = fill(template, &alpha, None, Whose::Other, None);
            let answer = app
                .call(
                    method_of(method),
                    &path,
                    &caller.token,
                    body(method, template, &alpha),
                )
                .await;
            assert!(
                matches!(answer.status, 403 | 404),
                "{what}: {} {}",
                answer.status,
                answer.text
            );
            assert!(!answer.text.contains(MARK), "{what}: {}", answer.text);
            for id in &alpha_ids {
                assert!(!answer.text.contains(id.as_str()), "{what} shows {id}");
            }
            // Beta's own URL naming alpha's records: unknown in beta.
            if template.matches('{').count() > 1 {
                let mixed = fill(template, &alpha, None, Whose::Other, None)
                    .replacen(&alpha.org, &beta.org, 1);
                let answer = app
                    .call(
                        method_of(method),
                        &mixed,
                        &caller.token,
                        body(method, template, &beta),
                    )
                    .await;
                if (200..300).contains(&answer.status) {
                    for id in &alpha_ids {
                        assert!(
                            !answer.text.contains(id.as_str()),
                            "{what} (beta's URL, alpha's ids) shows {id}: {}",
                            answer.text
                        );
                    }
                    assert!(
                        *method == "get",
                        "{what} (beta's URL, alpha's ids) changed something: {} {}",
                        answer.status,
                        answer.text
                    );
                } else {
                    assert!(
                        matches!(answer.status, 403 | 404 | 422),
                        "{what} (beta's URL, alpha's ids): {} {}",
                        answer.status,
                        answer.text
                    );
                }
            }
        }
        // Beta's members list only their own organization.
        let orgs = app
            .get("/api/v1/organizations", &caller.token)
            .await
            .expect(200);
        assert!(!orgs.to_string().contains(&alpha.org));
    }
    // Alpha's records all survived beta's attempts.
    for (method, template, guard) in ROUTES {
        let Checks(_, Read, _) = guard else { continue };
        if *method != "get" || !template.ends_with("{id}") || !template.contains("{org_id}") {
            continue;
        }
        let path = fill(template, &alpha, None, Whose::Other, None);
        app.get(&path, &app.admin).await.expect(200);
    }
}

async fn a_token_is_required(backend: Backend) {
    let app = TestApp::start(backend).await;
    let world = build_world(&app, "alpha").await;
    for (method, template, guard) in ROUTES {
        let path = fill(template, &world, None, Whose::Other, None);
        let send = |token: Option<&str>| {
            let mut req = app
                .client
                .request(method_of(method), format!("{}{path}", app.base));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body(method, template, &world) {
                req = req.json(&b);
            }
            req.send()
        };
        let status = send(None).await.expect("request").status().as_u16();
        let wrong = send(Some("mbt_not-a-token")).await.expect("request");
        let wrong = wrong.status().as_u16();
        match guard {
            Public(reason) => {
                assert!(!reason.is_empty());
                assert_ne!(status, 401, "{method} {template} is public: {reason}");
            }
            Checks(..) | AnyToken => {
                assert_eq!(status, 401, "{method} {template} without a token");
                assert_eq!(wrong, 401, "{method} {template} with an unknown token");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Secrets: never in an answer, never in a log line.

/// Log lines of this test process (every test of it, at debug and below).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the API tests");
        buffer
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every secret the test sets carries this marker, which scripts/check-secret-leaks
/// also looks for in a whole test run's output.
const CANARY: &str = "LEAKCANARY";

/// The API on a store whose key the test knows (`TestApp` keeps its own).
struct Keyed {
    base: String,
    client: reqwest::Client,
    admin: String,
    store: Store,
    key: String,
    _dir: tempfile::TempDir,
}

impl Keyed {
    async fn start(backend: Backend) -> Keyed {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => dir.path().join("test.db").display().to_string(),
            Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
        };
        let key = Cipher::generate_key();
        let store = Store::open(&url, Cipher::from_base64(&key).expect("key"))
            .await
            .expect("store opens");
        let admin = store
            .issue_system_admin_token("test")
            .await
            .expect("admin token")
            .token;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let router = mailbridge_http::app(store.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        Keyed {
            base,
            client: reqwest::Client::new(),
            admin,
            store,
            key,
            _dir: dir,
        }
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, token, Some(body)).await
    }
}

async fn secrets_never_reach_answers_or_logs(backend: Backend) {
    let logs = captured_logs();
    let app = Keyed::start(backend).await;
    let mut secrets: Vec<String> = vec![app.key.clone()];
    let secret = |what: &str| format!("{CANARY}-{what}-{}", uuid::Uuid::now_v7().simple());
    let mut answers: Vec<(String, String)> = Vec::new();
    let org = id_of(
        &app.post(
            "/api/v1/organizations",
            &app.admin,
            json!({"name": "Contoso"}),
        )
        .await
        .expect(201),
    );
    let base = format!("/api/v1/orgs/{org}");

    // Profile secrets.
    let (incoming, outgoing, client) = (secret("imap"), secret("smtp"), secret("client"));
    secrets.extend([incoming.clone(), outgoing.clone(), client.clone()]);
    let profile_body = json!({
        "name": "Service account", "server_type": "imap_smtp",
        "incoming_server_location": "imaps://127.0.0.1:9", "outgoing_server_location": "smtps://127.0.0.1:9",
        "authentication_type": "credentials_specified_in_profile",
        "incoming_username": "svc", "incoming_password": incoming,
        "use_same_settings_for_outgoing": false, "outgoing_username": "svc-out", "outgoing_password": outgoing,
        "client_secret": client});
    let created = app
        .post(
            &format!("{base}/email-server-profiles"),
            &app.admin,
            profile_body.clone(),
        )
        .await;
    answers.push(("profile create".into(), created.text.clone()));
    let profile = id_of(&created.expect(201));

    // A member, their token, their mailbox's and their sign-in password.
    let user = app
        .post(
            &format!("{base}/users"),
            &app.admin,
            json!({"full_name": "Alice", "email": "alice@example.org", "role": "user"}),
        )
        .await
        .expect(201);
    let token = app
        .post(
            &format!("{base}/tokens"),
            &app.admin,
            json!({"user_id": user["id"]}),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    secrets.push(token.clone());
    let user_id = id_of(&user);
    let mailbox = user["mailbox_id"].as_str().expect("mailbox").to_owned();
    let (mailbox_pw, signin_pw) = (secret("mailbox"), secret("signin"));
    secrets.extend([mailbox_pw.clone(), signin_pw.clone()]);
    let patched = app
        .patch(
            &format!("{base}/mailboxes/{mailbox}"),
            &token,
            json!({"password": mailbox_pw, "profile_id": profile}),
        )
        .await;
    answers.push(("mailbox patch by its user".into(), patched.text.clone()));
    let patched = app
        .patch(
            &format!("{base}/mailboxes/{mailbox}"),
            &app.admin,
            json!({"password": mailbox_pw, "profile_id": profile}),
        )
        .await;
    answers.push(("mailbox patch".into(), patched.text.clone()));
    patched.expect(200);
    let set = app
        .call(
            Method::PUT,
            &format!("{base}/users/{user_id}/password"),
            &token,
            Some(json!({"password": signin_pw})),
        )
        .await;
    answers.push(("password".into(), set.text.clone()));
    set.expect(204);

    // An API token is shown once, when issued.
    let issued = app
        .post(
            &format!("{base}/tokens"),
            &app.admin,
            json!({"user_id": user_id}),
        )
        .await
        .expect(201);
    let issued_token = issued["token"].as_str().expect("token").to_owned();
    secrets.push(issued_token);
    secrets.push(app.admin.clone());

    // A webhook's signing secret is shown once at creation and once per rotation.
    let hook = app
        .post(
            &format!("{base}/webhooks"),
            &app.admin,
            json!({"url": "https://crm.example.org/hooks", "event_types": ["email.tracked"]}),
        )
        .await
        .expect(201);
    let hook_id = id_of(&hook);
    let first_secret = hook["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let rotated = app
        .post(
            &format!("{base}/webhooks/{hook_id}/rotate-secret"),
            &app.admin,
            json!({}),
        )
        .await
        .expect(200);
    secrets.push(first_secret);
    secrets.push(rotated["secret"].as_str().expect("rotated").to_owned());
    let event = app
        .post(
            &format!("{base}/webhooks/{hook_id}/test"),
            &app.admin,
            json!({}),
        )
        .await
        .expect(202);

    // Certificates: an uploaded key and a generated one never leave the store.
    let material = mailbridge_connectors::identity::material::generate_self_signed(
        "uploaded",
        chrono::Utc::now(),
        90,
    )
    .expect("material");
    let uploaded = app
        .post(
            &format!("{base}/certificates"),
            &app.admin,
            json!({"name": "Uploaded", "certificate_pem": material.certificate_pem,
                   "private_key_pem": material.private_key_pem.expose()}),
        )
        .await;
    answers.push(("certificate upload".into(), uploaded.text.clone()));
    let uploaded = id_of(&uploaded.expect(201));
    let generated = app
        .post(
            &format!("{base}/certificates/generate"),
            &app.admin,
            json!({"name": "Generated"}),
        )
        .await;
    answers.push(("certificate generate".into(), generated.text.clone()));
    let generated = id_of(&generated.expect(201));
    for cert in [&uploaded, &generated] {
        let key = app
            .store
            .certificate_private_key(&org, cert)
            .await
            .expect("key stored");
        secrets.extend(key_lines(key.expose()));
    }

    // Every read of those records, as each kind of caller.
    let reads = [
        format!("{base}/email-server-profiles"),
        format!("{base}/email-server-profiles/{profile}"),
        format!("{base}/mailboxes"),
        format!("{base}/mailboxes/{mailbox}"),
        format!("{base}/users"),
        format!("{base}/users/{user_id}"),
        format!("{base}/tokens"),
        format!("{base}/webhooks"),
        format!("{base}/webhooks/{hook_id}"),
        format!("{base}/webhooks/{hook_id}/deliveries"),
        format!("{base}/certificates"),
        format!("{base}/certificates/{uploaded}"),
        format!("{base}/certificates/{uploaded}/certificate.pem"),
        format!("{base}/certificates/{generated}/certificate.pem"),
        format!("{base}/certificates/{generated}/certificate.cer"),
        format!("{base}/monitoring/mailboxes/{mailbox}"),
        "/api/v1/me".to_owned(),
        "/api/v1/openapi.json".to_owned(),
    ];
    for path in &reads {
        for who in [&app.admin, &token] {
            let answer = app.get(path, who).await;
            answers.push((format!("GET {path}"), answer.text));
        }
    }
    let retried = app
        .post(
            &format!(
                "{base}/webhooks/{hook_id}/deliveries/{}/retry",
                event["event_id"].as_str().unwrap_or("x")
            ),
            &app.admin,
            json!({}),
        )
        .await;
    answers.push(("webhook retry".into(), retried.text));
    let kept = app
        .patch(
            &format!("{base}/email-server-profiles/{profile}"),
            &app.admin,
            json!({"description": "changed"}),
        )
        .await;
    answers.push(("profile patch".into(), kept.text));
    let hook_patch = app
        .patch(
            &format!("{base}/webhooks/{hook_id}"),
            &app.admin,
            json!({"description": "changed"}),
        )
        .await;
    answers.push(("webhook patch".into(), hook_patch.text));
    let tested = app
        .post(
            &format!("{base}/email-server-profiles/{profile}/test-connection"),
            &app.admin,
            json!({"mailbox_id": mailbox}),
        )
        .await;
    answers.push(("test connection".into(), tested.text));

    // Bad input that carries a secret: the refusal never repeats it.
    let leaked_in_url = secret("url");
    secrets.push(leaked_in_url.clone());
    let bad_inputs = [
        (
            "profile without a name",
            "post",
            "email-server-profiles".to_owned(),
            json!({"server_type": "imap_smtp", "auto_discover": true, "incoming_password": incoming}),
        ),
        (
            "password of the wrong type",
            "post",
            "email-server-profiles".to_owned(),
            json!({"name": "X", "server_type": "imap_smtp", "auto_discover": true, "incoming_password": {"value": incoming}}),
        ),
        (
            "password under an unknown field",
            "post",
            "email-server-profiles".to_owned(),
            json!({"name": "X", "server_type": "imap_smtp", "auto_discover": true, "incoming_pasword": incoming}),
        ),
        (
            "credentials in a location",
            "post",
            "email-server-profiles".to_owned(),
            json!({"name": "X", "server_type": "imap_smtp",
                   "incoming_server_location": format!("imaps://svc:{leaked_in_url}@mail.example.org"),
                   "outgoing_server_location": "smtps://mail.example.org"}),
        ),
        (
            "credentials in an unparsable location",
            "post",
            "email-server-profiles".to_owned(),
            json!({"name": "X", "server_type": "imap_smtp",
                   "incoming_server_location": format!("imaps://svc:{leaked_in_url}@[mail"),
                   "outgoing_server_location": "smtps://mail.example.org"}),
        ),
        (
            "credentials in a location without a scheme",
            "post",
            "email-server-profiles".to_owned(),
            json!({"name": "X", "server_type": "imap_smtp",
                   "incoming_server_location": format!("svc:{leaked_in_url}@mail.example.org"),
                   "outgoing_server_location": "smtps://mail.example.org"}),
        ),
        (
            "credentials in a DAV location of another scheme",
            "post",
            "email-server-profiles".to_owned(),
            json!({"name": "X", "server_type": "imap_smtp", "auto_discover": true,
                   "dav_location": format!("ftp://svc:{leaked_in_url}@dav.example.org/")}),
        ),
        (
            "credentials in an unparsable authority URL",
            "post",
            "email-server-profiles".to_owned(),
            json!({"name": "X", "server_type": "exchange_online",
                   "authority_url": format!("https://svc:{leaked_in_url}@[login")}),
        ),
        (
            "credentials in an unparsable webhook URL",
            "post",
            "webhooks".to_owned(),
            json!({"url": format!("https://svc:{leaked_in_url}@[crm"), "event_types": ["email.tracked"]}),
        ),
        (
            "mailbox password with a bad field",
            "patch",
            format!("mailboxes/{mailbox}"),
            json!({"password": mailbox_pw, "incoming_method": "carrier_pigeon"}),
        ),
        (
            "sign-in password of the wrong type",
            "put",
            format!("users/{user_id}/password"),
            json!({"password": [signin_pw]}),
        ),
        (
            "webhook secret in a patch",
            "patch",
            format!("webhooks/{hook_id}"),
            json!({"secret": incoming}),
        ),
        (
            "key in a bad upload",
            "post",
            "certificates".to_owned(),
            json!({"name": "Bad", "certificate_pem": "not pem", "private_key_pem": material.private_key_pem.expose()}),
        ),
    ];
    for (what, method, tail, input) in bad_inputs {
        let answer = app
            .call(
                method_of(method),
                &format!("{base}/{tail}"),
                &app.admin,
                Some(input),
            )
            .await;
        assert!(
            (400..500).contains(&answer.status),
            "{what}: {} {}",
            answer.status,
            answer.text
        );
        answers.push((what.to_owned(), answer.text));
    }
    // Malformed JSON cut inside a secret.
    let cut = app
        .client
        .post(format!("{}{base}/email-server-profiles", app.base))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"name\": \"X\", \"incoming_password\": \"{incoming}"
        ))
        .send()
        .await
        .expect("request");
    answers.push(("cut JSON".into(), cut.text().await.expect("body")));

    // The webhook secrets appear exactly where they are handed out, nowhere else.
    for (what, text) in &answers {
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{what} shows a secret ({}…): {text}",
                &s[..s.len().min(12)]
            );
        }
        assert!(!text.contains(CANARY), "{what} shows a secret: {text}");
    }
    // Give spawned work (the access log, the store's writes) a moment to log.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let log = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    assert!(
        log.contains("/email-server-profiles"),
        "the capture holds the requests' log lines"
    );
    for s in &secrets {
        assert!(
            !log.contains(s.as_str()),
            "the log holds a secret ({}…)",
            &s[..s.len().min(12)]
        );
    }
    assert!(!log.contains(CANARY), "the log holds a secret");
    std::io::stderr().flush().ok();
}

/// The base64 lines of a PEM private key: any of them in a text is the key leaking.
fn key_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        .map(str::to_owned)
        .collect()
}
