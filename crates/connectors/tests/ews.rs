//! The EWS client against a small loopback stub that plays scripted answers:
//! what goes on the wire (impersonation header, `X-AnchorMailbox`, Basic or
//! bearer credentials), `ErrorServerBusy` waited out with its
//! `BackOffMilliseconds` (and given up within bounds), and how transport and
//! HTTP failures are classified. The full EWS behaviour is tested against the
//! testkit's EWS server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailbridge_connectors::ews::{
    DistinguishedFolder, EwsAuth, EwsClient, EwsConfig, EwsError, EwsEvent, EwsObserver, FolderRef,
    ItemChange, RetryPolicy,
};
use mailbridge_connectors::graph::{AccessTokens, TokenFuture};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::secret::Secret;

/// One request the stub received.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    anchor: Option<String>,
    body: String,
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<(u16, String)>>,
    seen: Mutex<Vec<Seen>>,
    /// Wait this long before answering (timeouts).
    delay: Mutex<Duration>,
}

async fn answer(
    axum::extract::State(script): axum::extract::State<Arc<Script>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> (
    axum::http::StatusCode,
    [(&'static str, &'static str); 1],
    String,
) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    script.seen.lock().unwrap().push(Seen {
        authorization: header("authorization"),
        anchor: header("x-anchormailbox"),
        body,
    });
    let delay = *script.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (status, body) = script
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((500, "no more scripted answers".to_owned()));
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        [("content-type", "text/xml; charset=utf-8")],
        body,
    )
}

/// A stub EWS endpoint on loopback; its URL and script.
async fn stub(answers: Vec<(u16, String)>) -> (String, Arc<Script>) {
    let script = Arc::new(Script::default());
    script.answers.lock().unwrap().extend(answers);
    let app = axum::Router::new()
        .route("/EWS/Exchange.asmx", axum::routing::post(answer))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/EWS/Exchange.asmx"), script)
}

fn basic() -> EwsAuth {
    EwsAuth::Basic {
        user: "CONTOSO\\svc-mailbridge".to_owned(),
        password: Secret::new("pw-ews-service"),
    }
}

/// A client of `url` (plaintext allowed: loopback), quick retries, an
/// observer that keeps every event.
fn client(url: &str, auth: EwsAuth) -> (EwsClient, Arc<Mutex<Vec<EwsEvent>>>) {
    let events: Arc<Mutex<Vec<EwsEvent>>> = Arc::default();
    let keep = events.clone();
    let mut cfg = EwsConfig::new(url, auth);
    cfg.allow_plaintext = true;
    cfg.timeout = Duration::from_secs(5);
    cfg.retry = RetryPolicy {
        max_retries: 3,
        max_wait: Duration::from_secs(2),
    };
    cfg.observer = Some(EwsObserver(Arc::new(move |e| keep.lock().unwrap().push(e))));
    (EwsClient::new(cfg).expect("a client"), events)
}

fn busy_fault(back_off_ms: u64) -> (u16, String) {
    (
        500,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode><faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message><t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"#
        ),
    )
}

fn sync_answer(message: &str) -> (u16, String) {
    (
        200,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:SyncFolderItemsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>{message}</m:ResponseMessages></m:SyncFolderItemsResponse></s:Body></s:Envelope>"#
        ),
    )
}

fn one_created() -> (u16, String) {
    sync_answer(
        r#"<m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SyncState>STATE-2</m:SyncState><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange><m:Changes><t:Create><t:Message><t:ItemId Id="AAMk1" ChangeKey="CQ1"/></t:Message></t:Create></m:Changes></m:SyncFolderItemsResponseMessage>"#,
    )
}

fn inbox() -> FolderRef {
    FolderRef::Distinguished(DistinguishedFolder::Inbox)
}

fn failed(e: EwsError) -> SyncError {
    match e {
        EwsError::Failed(e) => e,
        other => panic!("expected a classified failure, got {other:?}"),
    }
}

fn back_offs(events: &Mutex<Vec<EwsEvent>>) -> Vec<Duration> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            EwsEvent::BackedOff { wait, .. } => Some(*wait),
            EwsEvent::Answered { .. } => None,
        })
        .collect()
}

#[tokio::test]
async fn server_busy_is_waited_out_with_its_back_off_then_the_request_succeeds() {
    let (url, script) = stub(vec![busy_fault(120), busy_fault(80), one_created()]).await;
    let (client, events) = client(&url, basic());
    let bob = client.impersonating("bob@contoso.com");
    let started = std::time::Instant::now();
    let page = bob
        .sync_folder_items(&inbox(), Some("STATE-1"), 100)
        .await
        .expect("a page after the back-offs");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "both back-offs were waited"
    );
    assert_eq!(page.sync_state, "STATE-2");
    assert!(matches!(&page.changes[..], [ItemChange::Created(i)] if i.id.id == "AAMk1"));
    assert_eq!(
        back_offs(&events),
        [Duration::from_millis(120), Duration::from_millis(80)],
        "each BackOffMilliseconds was honoured and recorded"
    );
    let seen = script.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "the same request was sent three times");
    for request in &seen {
        assert_eq!(request.anchor.as_deref(), Some("bob@contoso.com"));
        assert!(
            request.body.contains("<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>bob@contoso.com</t:PrimarySmtpAddress>"),
            "{}",
            request.body
        );
        assert!(
            request
                .body
                .contains("<t:RequestServerVersion Version=\"Exchange2016\"/>")
        );
        assert!(request.body.contains("<m:SyncState>STATE-1</m:SyncState>"));
        assert!(
            request
                .authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
        );
    }
}

#[tokio::test]
async fn a_back_off_beyond_the_policy_goes_to_the_engine_as_transient_with_its_delay() {
    let (url, script) = stub(vec![busy_fault(300_000)]).await;
    let (client, events) = client(&url, basic());
    let e = failed(
        client
            .impersonating("bob@contoso.com")
            .sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("busy"),
    );
    assert_eq!(
        (e.class, e.scope),
        (
            ErrorClass::Transient {
                retry_after: Some(Duration::from_secs(300))
            },
            ErrorScope::Mailbox
        )
    );
    assert!(e.message.contains("throttling"), "{}", e.message);
    assert!(
        back_offs(&events).is_empty(),
        "nothing was waited in the client"
    );
    assert_eq!(script.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (url, script) = stub(vec![busy_fault(10); 10]).await;
    let (client, events) = client(&url, basic());
    let e = failed(
        client
            .sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("still busy"),
    );
    assert_eq!(
        e.class,
        ErrorClass::Transient {
            retry_after: Some(Duration::from_millis(10))
        }
    );
    assert_eq!(back_offs(&events).len(), 3, "max_retries waits");
    assert_eq!(
        script.seen.lock().unwrap().len(),
        4,
        "the first try and three retries"
    );
}

#[tokio::test]
async fn a_refused_sync_state_is_its_own_error_for_the_engine_to_restart_the_folder() {
    let refused = sync_answer(
        r#"<m:SyncFolderItemsResponseMessage ResponseClass="Error"><m:MessageText>Synchronization state data is corrupt or otherwise invalid.</m:MessageText><m:ResponseCode>ErrorInvalidSyncStateData</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:SyncFolderItemsResponseMessage>"#,
    );
    let (url, _script) = stub(vec![refused, one_created()]).await;
    let (client, _) = client(&url, basic());
    let e = client
        .sync_folder_items(&inbox(), Some("OLD"), 10)
        .await
        .expect_err("refused");
    assert_eq!(
        e,
        EwsError::SyncStateInvalid {
            folder: "inbox".to_owned()
        }
    );
    // The engine starts the folder again from no state.
    let page = client
        .sync_folder_items(&inbox(), None, 10)
        .await
        .expect("a page");
    assert_eq!(page.changes.len(), 1);
}

#[tokio::test]
async fn impersonation_refused_is_permanent_for_the_mailbox_with_the_role_to_grant() {
    let denied = sync_answer(
        r#"<m:SyncFolderItemsResponseMessage ResponseClass="Error"><m:MessageText>The account does not have permission to impersonate the requested user.</m:MessageText><m:ResponseCode>ErrorImpersonateUserDenied</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:SyncFolderItemsResponseMessage>"#,
    );
    let (url, _script) = stub(vec![denied]).await;
    let (client, _) = client(&url, basic());
    let e = failed(
        client
            .impersonating("bob@contoso.com")
            .sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("denied"),
    );
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Mailbox)
    );
    assert!(e.message.contains("bob@contoso.com"), "{}", e.message);
    assert!(
        e.fix
            .unwrap_or_default()
            .contains("ApplicationImpersonation")
    );
}

#[tokio::test]
async fn http_401_is_permanent_for_the_profile_and_names_no_secret() {
    let (url, _script) = stub(vec![(
        401,
        "<html>401 - Unauthorized: pw-ews-service</html>".to_owned(),
    )])
    .await;
    let (client, _) = client(&url, basic());
    let e = failed(
        client
            .sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("401"),
    );
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile)
    );
    assert!(
        e.fix
            .as_deref()
            .unwrap_or("")
            .contains("service account's user name")
    );
    let text = format!("{} {}", e.message, e.fix.unwrap_or_default());
    assert!(!text.contains("pw-ews-service"), "{text}");
}

/// A token provider that counts what it hands out and what it is told to drop.
struct CountingTokens {
    issued: AtomicUsize,
    dropped: AtomicUsize,
}

impl AccessTokens for CountingTokens {
    fn access_token(&self) -> TokenFuture<'_> {
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(Secret::new(format!("token-{n}"))) })
    }

    fn invalidate(&self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    let (url, script) = stub(vec![(401, String::new()), one_created()]).await;
    let tokens = Arc::new(CountingTokens {
        issued: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
    });
    let (renewed, _) = client(&url, EwsAuth::OAuth(tokens.clone()));
    renewed
        .sync_folder_items(&inbox(), None, 10)
        .await
        .expect("the second token works");
    assert_eq!(tokens.dropped.load(Ordering::SeqCst), 1);
    let seen = script.seen.lock().unwrap().clone();
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer token-0"));
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer token-1"));

    let (url, _script) = stub(vec![(401, String::new()), (401, String::new())]).await;
    let (client, _) = client(&url, EwsAuth::OAuth(tokens.clone()));
    let e = failed(
        client
            .sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("refused twice"),
    );
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile)
    );
    assert!(
        e.message.starts_with("Failed Authentication: "),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn transport_failures_are_classified() {
    // Nobody listens: transient, for the profile (the server is unreachable).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        l.local_addr().expect("addr").port()
    };
    let (closed, _) = client(
        &format!("http://127.0.0.1:{port}/EWS/Exchange.asmx"),
        basic(),
    );
    let e = failed(
        closed
            .sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("refused"),
    );
    assert_eq!(
        e.class,
        ErrorClass::Transient { retry_after: None },
        "{}",
        e.message
    );

    // HTTPS to a server that speaks HTTP: the TLS handshake fails, for the profile.
    let (url, _script) = stub(Vec::new()).await;
    let https = url.replace("http://", "https://");
    let (tls, _) = client(&https, basic());
    let e = failed(
        tls.sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("no TLS"),
    );
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile),
        "{}",
        e.message
    );
    assert!(e.message.contains("TLS"), "{}", e.message);

    // No answer within the timeout: transient.
    let (url, script) = stub(vec![one_created()]).await;
    *script.delay.lock().unwrap() = Duration::from_millis(800);
    let mut cfg = EwsConfig::new(url, basic());
    cfg.allow_plaintext = true;
    cfg.timeout = Duration::from_millis(200);
    let slow = EwsClient::new(cfg).expect("a client");
    let e = failed(
        slow.sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("too slow"),
    );
    assert_eq!(
        (e.class, e.scope),
        (
            ErrorClass::Transient { retry_after: None },
            ErrorScope::Mailbox
        )
    );

    // A proxy's 502 page: transient for the mailbox, with the page's first words.
    let (url, _script) = stub(vec![(
        502,
        "<html><body>Bad gateway</body></html>".to_owned(),
    )])
    .await;
    let (gateway, _) = client(&url, basic());
    let e = failed(
        gateway
            .sync_folder_items(&inbox(), None, 10)
            .await
            .expect_err("502"),
    );
    assert_eq!(
        (e.class, e.scope),
        (
            ErrorClass::Transient { retry_after: None },
            ErrorScope::Mailbox
        )
    );
    assert!(e.message.contains("Bad gateway"), "{}", e.message);
}

#[tokio::test]
async fn busy_messages_are_retried_only_when_all_of_the_request_was_refused() {
    let get = |messages: &str| {
        (
            200,
            format!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>{messages}</m:ResponseMessages></m:GetItemResponse></s:Body></s:Envelope>"#
            ),
        )
    };
    let busy = r#"<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>busy</m:MessageText><m:ResponseCode>ErrorServerBusy</m:ResponseCode><m:MessageXml><t:Value Name="BackOffMilliseconds">20</t:Value></m:MessageXml></m:GetItemResponseMessage>"#;
    let ok = r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message><t:ItemId Id="AAMk2" ChangeKey="CQ"/><t:Subject>Hi</t:Subject></t:Message></m:Items></m:GetItemResponseMessage>"#;
    let ids = [
        mailbridge_connectors::ews::ItemId::new("AAMk1", None),
        mailbridge_connectors::ews::ItemId::new("AAMk2", None),
    ];
    let (url, script) = stub(vec![
        get(&format!("{busy}{busy}")),
        get(&format!("{busy}{ok}")),
    ])
    .await;
    let (client, events) = client(&url, basic());
    let items = client.get_items(&ids, false).await.expect("answers");
    assert_eq!(
        back_offs(&events),
        [Duration::from_millis(20)],
        "all busy: sent again once"
    );
    assert_eq!(
        script.seen.lock().unwrap().len(),
        2,
        "part done: not sent again"
    );
    let e = failed(items[0].clone().expect_err("busy"));
    assert_eq!(
        e.class,
        ErrorClass::Transient {
            retry_after: Some(Duration::from_millis(20))
        }
    );
    assert_eq!(
        items[1].as_ref().expect("read").subject.as_deref(),
        Some("Hi")
    );
}
