//! The EWS test server over raw HTTP and XML, as a client that follows Microsoft's
//! EWS reference would talk to it: sync states and paging, impersonation, server
//! busy faults and back-off, invalid sync states, send and save, ChangeKey
//! conflicts, extended properties, folders, ACT items, and autodiscover.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailbridge_testkit::ews_server::{EwsTestServer, ItemKind, ServiceAccount};

const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
const BOB: &str = "bob@example.org";
const ALICE: &str = "alice@example.org";

/// A server with Bob's and Alice's mailboxes and a service account that may
/// impersonate both.
async fn server() -> EwsTestServer {
    let ews = EwsTestServer::start().await;
    ews.add_mailbox(BOB, "Bob");
    ews.add_mailbox(ALICE, "Alice");
    ews.add_service_account(ServiceAccount::new("svc@example.org", "secret").impersonating_all());
    ews
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// One answer: the HTTP status and the body.
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn doc(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.body).expect("well-formed XML")
    }

    /// Every `m:ResponseCode` of the response messages, in order.
    fn codes(&self) -> Vec<String> {
        self.texts(M, "ResponseCode")
    }

    /// The text of every element `{ns}name`.
    fn texts(&self, ns: &str, name: &str) -> Vec<String> {
        self.doc()
            .descendants()
            .filter(|n| n.has_tag_name((ns, name)))
            .map(|n| n.text().unwrap_or_default().to_owned())
            .collect()
    }

    fn text(&self, ns: &str, name: &str) -> String {
        self.texts(ns, name).into_iter().next().unwrap_or_default()
    }

    /// The `faultcode` of a SOAP fault.
    fn fault_code(&self) -> Option<String> {
        self.doc()
            .descendants()
            .find(|n| n.has_tag_name("faultcode"))
            .and_then(|n| n.text().map(str::to_owned))
    }

    /// `(Id, ChangeKey)` of every `t:ItemId`.
    fn item_ids(&self) -> Vec<(String, String)> {
        self.doc()
            .descendants()
            .filter(|n| n.has_tag_name((T, "ItemId")))
            .map(|n| {
                (
                    n.attribute("Id").unwrap_or_default().to_owned(),
                    n.attribute("ChangeKey").unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The kinds of change in `m:Changes`, in order (`Create`, `Update`, ...).
    fn changes(&self) -> Vec<String> {
        self.doc()
            .descendants()
            .find(|n| n.has_tag_name((M, "Changes")))
            .map(|c| {
                c.children()
                    .filter(|n| n.is_element())
                    .map(|n| n.tag_name().name().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    auth: Option<String>,
}

impl Client {
    fn new(url: &str, auth: Option<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            auth,
        }
    }

    fn svc(ews: &EwsTestServer) -> Client {
        Client::new(&ews.url(), Some(basic("svc@example.org", "secret")))
    }

    async fn post(&self, url: &str, body: String) -> Reply {
        let mut request = self
            .http
            .post(url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body);
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.expect("the server answers");
        Reply {
            status: response.status().as_u16(),
            body: response.text().await.expect("a body"),
        }
    }

    /// An EWS operation, impersonating `mailbox` when given.
    async fn call(&self, mailbox: Option<&str>, operation: &str) -> Reply {
        let impersonation = mailbox.map_or_else(String::new, |m| {
            format!(
                "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{m}\
                 </t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
            )
        });
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
             <soap:Envelope xmlns:soap=\"{SOAP}\" xmlns:m=\"{M}\" xmlns:t=\"{T}\">\
             <soap:Header><t:RequestServerVersion Version=\"Exchange2016\"/>{impersonation}</soap:Header>\
             <soap:Body>{operation}</soap:Body></soap:Envelope>"
        );
        self.post(&self.url, body).await
    }
}

fn sync_items(folder: &str, state: Option<&str>, max: usize) -> String {
    let state = state.map_or_else(String::new, |s| format!("<m:SyncState>{s}</m:SyncState>"));
    format!(
        "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>\
         <m:SyncFolderId><t:DistinguishedFolderId Id=\"{folder}\"/></m:SyncFolderId>{state}\
         <m:MaxChangesReturned>{max}</m:MaxChangesReturned></m:SyncFolderItems>"
    )
}

fn message(subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.net>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nHello\r\n"
    )
    .into_bytes()
}

/// Syncs a folder to its end, `max` changes a page; returns every change kind with
/// its item id, the pages it took and the final state.
async fn sync_all(
    c: &Client,
    mailbox: &str,
    folder: &str,
    state: Option<String>,
    max: usize,
) -> (Vec<(String, String)>, usize, String) {
    let mut state = state;
    let mut changes = Vec::new();
    for page in 1..=50 {
        let r = c
            .call(Some(mailbox), &sync_items(folder, state.as_deref(), max))
            .await;
        assert_eq!(r.codes(), ["NoError"], "{}", r.body);
        let kinds = r.changes();
        assert!(kinds.len() <= max, "a page holds at most {max}: {kinds:?}");
        let ids = r.item_ids();
        assert_eq!(kinds.len(), ids.len(), "{}", r.body);
        changes.extend(kinds.into_iter().zip(ids.into_iter().map(|(id, _)| id)));
        state = Some(r.text(M, "SyncState"));
        if r.text(M, "IncludesLastItemInRange") == "true" {
            return (changes, page, state.unwrap_or_default());
        }
    }
    panic!("the folder did not end within 50 pages");
}

#[tokio::test]
async fn sync_folder_items_pages_then_reports_each_kind_of_change() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let ids: Vec<String> = (0..5)
        .map(|i| ews.deliver(BOB, "inbox", &message(&format!("m{i}"), &format!("m{i}@x"))))
        .collect();

    let (changes, pages, state) = sync_all(&c, BOB, "inbox", None, 2).await;
    assert_eq!(pages, 3);
    let created: Vec<&str> = changes.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(created, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(changes.iter().all(|(k, _)| k == "Create"));

    // Nothing new: an empty, final page.
    let (none, _, _) = sync_all(&c, BOB, "inbox", Some(state.clone()), 2).await;
    assert!(none.is_empty(), "{none:?}");

    ews.set_read(BOB, &ids[0], true);
    ews.set_categories(BOB, &ids[1], &["Tracked"]);
    ews.delete_item(BOB, &ids[2]);
    let moved = ews.move_item(BOB, &ids[3], "junkemail");
    let fresh = ews.deliver(BOB, "inbox", &message("new", "new@x"));
    let (changes, _, _) = sync_all(&c, BOB, "inbox", Some(state.clone()), 512).await;
    let expected = [
        ("ReadFlagChange", &ids[0]),
        ("Update", &ids[1]),
        ("Delete", &ids[2]),
        ("Delete", &ids[3]),
        ("Create", &fresh),
    ];
    let got: Vec<(&str, &String)> = changes.iter().map(|(k, id)| (k.as_str(), id)).collect();
    assert_eq!(got, expected);
    let (junk, _, _) = sync_all(&c, BOB, "junkemail", None, 10).await;
    assert_eq!(junk, [("Create".to_owned(), moved)]);

    // A state is a point in time: replayed, it gives the same changes again.
    let (again, _, _) = sync_all(&c, BOB, "inbox", Some(state), 1).await;
    assert_eq!(again, changes);
    assert!(ews.request_count("SyncFolderItems") >= 10);
}

#[tokio::test]
async fn a_forged_foreign_or_invalidated_sync_state_is_refused() {
    let ews = server().await;
    let c = Client::svc(&ews);
    ews.deliver(BOB, "inbox", &message("a", "a@x"));
    let (_, _, inbox_state) = sync_all(&c, BOB, "inbox", None, 10).await;

    let forged = STANDARD.encode("\u{1}bob@example.org\ninbox\n1\n0");
    for (mailbox, folder, state) in [
        (BOB, "inbox", "garbage".to_owned()),
        (BOB, "inbox", forged),
        (BOB, "sentitems", inbox_state.clone()),
        (ALICE, "inbox", inbox_state.clone()),
    ] {
        let r = c
            .call(Some(mailbox), &sync_items(folder, Some(&state), 10))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.codes(),
            ["ErrorInvalidSyncStateData"],
            "{mailbox} {folder}"
        );
        assert_eq!(
            r.text(M, "MessageText"),
            "Synchronization state data is corrupt or otherwise invalid."
        );
    }

    let r = c
        .call(Some(BOB), &sync_items("inbox", Some(&inbox_state), 10))
        .await;
    assert_eq!(r.codes(), ["NoError"]);
    ews.invalidate_sync_states(BOB, "inbox");
    let r = c
        .call(Some(BOB), &sync_items("inbox", Some(&inbox_state), 10))
        .await;
    assert_eq!(r.codes(), ["ErrorInvalidSyncStateData"]);
    // Starting over works, and gives the folder's content again.
    let (changes, _, _) = sync_all(&c, BOB, "inbox", None, 10).await;
    assert_eq!(changes.len(), 1);

    let alice_inbox = ews.folder_id(ALICE, "inbox").expect("Alice's Inbox");
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>\
                 <m:SyncFolderId><t:FolderId Id=\"{alice_inbox}\"/></m:SyncFolderId>\
                 <m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["ErrorSyncFolderNotFound"]);

    let r = c.call(Some(BOB), &sync_items("inbox", None, 513)).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.fault_code().as_deref(), Some("a:ErrorSchemaValidation"));
}

#[tokio::test]
async fn credentials_and_impersonation_are_checked() {
    let ews = EwsTestServer::start().await;
    ews.add_mailbox(BOB, "Bob");
    ews.add_mailbox(ALICE, "Alice");
    ews.add_mailbox("carol@example.org", "Carol");
    ews.add_service_account(ServiceAccount::new("svc", "pw").impersonating(&[ALICE]));
    ews.add_service_account(ServiceAccount::new("carol", "pw").with_mailbox("carol@example.org"));
    ews.add_service_account(ServiceAccount::oauth("app").impersonating_all());
    ews.set_bearer_check(|token| (token == "good-token").then(|| "app".to_owned()));
    let get_inbox = "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>\
                     <m:FolderIds><t:DistinguishedFolderId Id=\"inbox\"/></m:FolderIds></m:GetFolder>";
    let svc = Client::new(&ews.url(), Some(basic("svc", "pw")));

    let r = svc.call(Some(ALICE), get_inbox).await;
    assert_eq!((r.status, r.codes()), (200, vec!["NoError".to_owned()]));
    assert_eq!(r.text(T, "DisplayName"), "Inbox");

    let r = svc.call(Some(BOB), get_inbox).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.fault_code().as_deref(),
        Some("a:ErrorImpersonateUserDenied")
    );
    assert_eq!(
        r.text(
            "http://schemas.microsoft.com/exchange/services/2006/errors",
            "ResponseCode"
        ),
        "ErrorImpersonateUserDenied"
    );

    let r = svc.call(Some("nobody@example.org"), get_inbox).await;
    assert_eq!(r.fault_code().as_deref(), Some("a:ErrorNonExistentMailbox"));

    // No impersonation: the account's own mailbox, or none.
    let r = svc.call(None, get_inbox).await;
    assert_eq!(r.codes(), ["ErrorMissingEmailAddress"]);
    let carol = Client::new(&ews.url(), Some(basic("carol", "pw")));
    let r = carol.call(None, get_inbox).await;
    assert_eq!(r.codes(), ["NoError"]);
    let r = carol.call(Some(BOB), get_inbox).await;
    assert_eq!(
        r.fault_code().as_deref(),
        Some("a:ErrorImpersonateUserDenied")
    );

    for auth in [
        None,
        Some(basic("svc", "wrong")),
        Some("Bearer bad-token".to_owned()),
    ] {
        let r = Client::new(&ews.url(), auth.clone())
            .call(Some(ALICE), get_inbox)
            .await;
        assert_eq!(r.status, 401, "{auth:?}");
    }
    let app = Client::new(&ews.url(), Some("Bearer good-token".to_owned()));
    let r = app.call(Some(BOB), get_inbox).await;
    assert_eq!(r.codes(), ["NoError"]);

    let log = ews.requests();
    let denied = log
        .iter()
        .find(|r| r.code == "ErrorImpersonateUserDenied")
        .expect("logged");
    assert_eq!(
        (
            denied.account.as_deref(),
            denied.mailbox.as_deref(),
            denied.impersonated
        ),
        (Some("svc"), Some(BOB), true)
    );
    assert_eq!(log.iter().filter(|r| r.status == 401).count(), 3);
}

#[tokio::test]
async fn server_busy_is_a_fault_with_back_off_and_early_requests_are_refused() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let back_off = Duration::from_millis(400);
    ews.server_busy_next(1, back_off);
    let r = c.call(Some(BOB), &sync_items("inbox", None, 10)).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.fault_code().as_deref(), Some("a:ErrorServerBusy"));
    let value = r
        .doc()
        .descendants()
        .find(|n| n.has_tag_name((T, "Value")))
        .map(|n| {
            (
                n.attribute("Name").map(str::to_owned),
                n.text().map(str::to_owned),
            )
        });
    assert_eq!(
        value,
        Some((Some("BackOffMilliseconds".into()), Some("400".into())))
    );

    // Too early: busy again, with what is left of the back-off.
    let r = c.call(Some(BOB), &sync_items("inbox", None, 10)).await;
    assert_eq!(r.fault_code().as_deref(), Some("a:ErrorServerBusy"));
    let left: u64 = r
        .doc()
        .descendants()
        .find(|n| n.has_tag_name((T, "Value")))
        .and_then(|n| n.text())
        .and_then(|t| t.parse().ok())
        .expect("a back-off");
    assert!(left <= 400 && left > 0, "{left}");
    assert_eq!(ews.requests_during_back_off(), 1);

    tokio::time::sleep(back_off).await;
    let r = c.call(Some(BOB), &sync_items("inbox", None, 10)).await;
    assert_eq!(r.codes(), ["NoError"]);
    let log = ews.requests();
    let busy: Vec<_> = log.iter().filter(|r| r.code == "ErrorServerBusy").collect();
    assert_eq!(busy.len(), 2);
    let ok = log.last().expect("the last request");
    assert!(ok.at.duration_since(busy[0].at) >= back_off);
    assert_eq!(ok.operation, "SyncFolderItems");
    assert_eq!(ok.mailbox.as_deref(), Some(BOB));
}

#[tokio::test]
async fn send_and_save_copy_records_the_message_and_saves_it_with_its_message_id() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let mime = b"From: Bob <bob@example.org>\r\nTo: ann@example.net\r\nCc: cy@example.net\r\n\
                 Subject: Quote\r\nMessage-ID: <out-1@example.org>\r\n\r\nSee attached\r\n";
    let claim = "<t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" \
                 PropertyName=\"mailbridge-claim\" PropertyType=\"String\"/><t:Value>org-1</t:Value>\
                 </t:ExtendedProperty>";
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:CreateItem MessageDisposition=\"SendAndSaveCopy\"><m:SavedItemFolderId>\
                 <t:DistinguishedFolderId Id=\"sentitems\"/></m:SavedItemFolderId><m:Items><t:Message>\
                 <t:MimeContent CharacterSet=\"UTF-8\">{}</t:MimeContent>{claim}</t:Message></m:Items>\
                 </m:CreateItem>",
                STANDARD.encode(mime)
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    assert!(
        r.item_ids().is_empty(),
        "a sent message's id is not answered"
    );

    let sent = ews.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].mime, mime);
    assert_eq!(sent[0].recipients, ["ann@example.net", "cy@example.net"]);
    assert_eq!(
        sent[0].internet_message_id.as_deref(),
        Some("<out-1@example.org>")
    );
    let copy = ews.items_in(BOB, "sentitems");
    assert_eq!(copy.len(), 1);
    assert_eq!(Some(&copy[0].id), sent[0].saved_copy_id.as_ref());
    assert_eq!(
        copy[0].internet_message_id.as_deref(),
        Some("<out-1@example.org>")
    );
    assert!(copy[0].is_read);
    assert_eq!(
        copy[0].extended_property("mailbridge-claim").as_deref(),
        Some("org-1")
    );

    // The copy over GetItem: its MIME byte for byte, its Message-ID and the claim.
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>\
                 <t:IncludeMimeContent>true</t:IncludeMimeContent><t:AdditionalProperties>\
                 <t:FieldURI FieldURI=\"message:InternetMessageId\"/>\
                 <t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" PropertyName=\"mailbridge-claim\" PropertyType=\"String\"/>\
                 </t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:GetItem>",
                copy[0].id
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"]);
    let doc = r.doc();
    let mime_el = doc
        .descendants()
        .find(|n| n.has_tag_name((T, "MimeContent")))
        .expect("MimeContent");
    assert_eq!(mime_el.attribute("CharacterSet"), Some("UTF-8"));
    assert_eq!(
        STANDARD
            .decode(mime_el.text().unwrap_or_default())
            .expect("base64"),
        mime
    );
    assert_eq!(r.text(T, "InternetMessageId"), "<out-1@example.org>");
    assert_eq!(r.text(T, "Value"), "org-1");

    // Properties instead of MIME: the server writes the message, and its Message-ID.
    let r = c
        .call(
            Some(BOB),
            "<m:CreateItem MessageDisposition=\"SendAndSaveCopy\"><m:Items><t:Message>\
             <t:Subject>Your mailbox is now connected</t:Subject><t:Body BodyType=\"Text\">Hi &amp; welcome</t:Body>\
             <t:ToRecipients><t:Mailbox><t:EmailAddress>Bob@Example.org</t:EmailAddress></t:Mailbox></t:ToRecipients>\
             </t:Message></m:Items></m:CreateItem>",
        )
        .await;
    assert_eq!(r.codes(), ["NoError"]);
    let sent = ews.sent();
    assert_eq!(sent[1].recipients, ["bob@example.org"]);
    assert!(!sent[1].from_mime);
    let text = String::from_utf8_lossy(&sent[1].mime).into_owned();
    assert!(
        text.contains("Subject: Your mailbox is now connected"),
        "{text}"
    );
    let saved = ews
        .item(BOB, sent[1].saved_copy_id.as_deref().expect("a copy"))
        .expect("saved");
    assert_eq!(saved.internet_message_id, sent[1].internet_message_id);

    // No recipient, and no disposition.
    let r = c
        .call(
            Some(BOB),
            "<m:CreateItem MessageDisposition=\"SendOnly\"><m:Items><t:Message><t:Subject>x</t:Subject>\
             </t:Message></m:Items></m:CreateItem>",
        )
        .await;
    assert_eq!(r.codes(), ["ErrorInvalidRecipients"]);
    let r = c
        .call(Some(BOB), "<m:CreateItem><m:Items><t:Message><t:Subject>x</t:Subject></t:Message></m:Items></m:CreateItem>")
        .await;
    assert_eq!(r.codes(), ["ErrorMessageDispositionRequired"]);
    assert_eq!(ews.sent().len(), 2);
}

fn set_categories(id: &str, change_key: &str, mode: &str, category: &str) -> String {
    format!(
        "<m:UpdateItem MessageDisposition=\"SaveOnly\" ConflictResolution=\"{mode}\"><m:ItemChanges>\
         <t:ItemChange><t:ItemId Id=\"{id}\" ChangeKey=\"{change_key}\"/><t:Updates><t:SetItemField>\
         <t:FieldURI FieldURI=\"item:Categories\"/><t:Message><t:Categories><t:String>{category}</t:String>\
         </t:Categories></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
    )
}

#[tokio::test]
async fn a_stale_change_key_is_an_irresolvable_conflict() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let id = ews.deliver(BOB, "inbox", &message("a", "a@x"));
    let first = ews.item(BOB, &id).expect("item").change_key;

    let r = c
        .call(
            Some(BOB),
            &set_categories(&id, &first, "NeverOverwrite", "Tracked"),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let (_, second) = r.item_ids().pop().expect("the new ChangeKey");
    assert_ne!(second, first);
    assert_eq!(ews.item(BOB, &id).expect("item").change_key, second);
    assert_eq!(ews.item(BOB, &id).expect("item").categories, ["Tracked"]);
    assert_eq!(r.text(T, "Count"), "0");

    // Someone else changes the item: the ChangeKey the client holds is stale.
    ews.set_read(BOB, &id, true);
    for mode in ["NeverOverwrite", "AutoResolve"] {
        let r = c
            .call(Some(BOB), &set_categories(&id, &second, mode, "Other"))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.codes(), ["ErrorIrresolvableConflict"], "{mode}");
    }
    assert_eq!(ews.item(BOB, &id).expect("item").categories, ["Tracked"]);
    let r = c
        .call(
            Some(BOB),
            &set_categories(&id, &second, "AlwaysOverwrite", "Other"),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"]);
    assert_eq!(ews.item(BOB, &id).expect("item").categories, ["Other"]);

    // Unknown and malformed ids.
    let moved = ews.move_item(BOB, &id, "junkemail");
    let r = c
        .call(Some(BOB), &set_categories(&id, "", "AutoResolve", "x"))
        .await;
    assert_eq!(r.codes(), ["ErrorItemNotFound"]);
    let r = c
        .call(
            Some(BOB),
            &set_categories("not-an-id", "", "AutoResolve", "x"),
        )
        .await;
    assert_eq!(r.codes(), ["ErrorInvalidIdMalformed"]);
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>\
                 <t:ItemId Id=\"{id}\"/><t:ItemId Id=\"{moved}\"/></m:ItemIds></m:GetItem>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["ErrorItemNotFound", "NoError"]);
    assert_eq!(
        r.text(M, "MessageText"),
        "The specified object was not found in the store."
    );
}

#[tokio::test]
async fn folders_are_created_found_synced_and_refused_when_they_exist() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let hierarchy = |state: Option<&str>| {
        let state = state.map_or_else(String::new, |s| format!("<m:SyncState>{s}</m:SyncState>"));
        format!(
            "<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape>\
             </m:FolderShape>{state}</m:SyncFolderHierarchy>"
        )
    };
    let r = c.call(Some(BOB), &hierarchy(None)).await;
    assert_eq!(r.codes(), ["NoError"]);
    let names = r.texts(T, "DisplayName");
    for name in [
        "Inbox",
        "Sent Items",
        "Deleted Items",
        "Calendar",
        "Contacts",
        "Tasks",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let doc = r.doc();
    let root = ews.folder_id(BOB, "msgfolderroot").expect("root");
    let inbox = doc
        .descendants()
        .find(|n| n.has_tag_name((T, "Folder")) && n.children().any(|c| c.text() == Some("Inbox")))
        .expect("the Inbox folder");
    let parent = inbox
        .children()
        .find(|n| n.has_tag_name((T, "ParentFolderId")))
        .and_then(|n| n.attribute("Id"));
    assert_eq!(parent, Some(root.as_str()));
    assert!(
        doc.descendants()
            .any(|n| n.has_tag_name((T, "CalendarFolder")))
    );
    let state = r.text(M, "SyncState");

    let create = |parent: &str| {
        format!(
            "<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id=\"{parent}\"/></m:ParentFolderId>\
             <m:Folders><t:Folder><t:DisplayName>Undeliverable</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"
        )
    };
    let r = c.call(Some(BOB), &create("msgfolderroot")).await;
    assert_eq!(r.codes(), ["NoError"]);
    let created = r
        .doc()
        .descendants()
        .find(|n| n.has_tag_name((T, "FolderId")))
        .and_then(|n| n.attribute("Id").map(str::to_owned))
        .expect("a FolderId");
    assert_eq!(
        ews.folder_id(BOB, "Undeliverable").as_deref(),
        Some(created.as_str())
    );
    let r = c.call(Some(BOB), &create("msgfolderroot")).await;
    assert_eq!(r.codes(), ["ErrorFolderExists"]);
    let r = c.call(Some(BOB), &create("inbox")).await;
    assert_eq!(r.codes(), ["NoError"], "the same name under another parent");

    let r = c.call(Some(BOB), &hierarchy(Some(&state))).await;
    assert_eq!(r.changes(), ["Create", "Create"]);
    assert_eq!(
        r.texts(T, "DisplayName"),
        ["Undeliverable", "Undeliverable"]
    );
    let r = c
        .call(Some(BOB), &hierarchy(Some(&r.text(M, "SyncState"))))
        .await;
    assert!(r.changes().is_empty());
    ews.invalidate_hierarchy_sync_states(BOB);
    let r = c.call(Some(BOB), &hierarchy(Some(&state))).await;
    assert_eq!(r.codes(), ["ErrorInvalidSyncStateData"]);

    let find = |traversal: &str, name: &str| {
        format!(
            "<m:FindFolder Traversal=\"{traversal}\"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>\
             <m:Restriction><t:IsEqualTo><t:FieldURI FieldURI=\"folder:DisplayName\"/><t:FieldURIOrConstant>\
             <t:Constant Value=\"{name}\"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>\
             <m:ParentFolderIds><t:DistinguishedFolderId Id=\"msgfolderroot\"/></m:ParentFolderIds></m:FindFolder>"
        )
    };
    let r = c.call(Some(BOB), &find("Shallow", "undeliverable")).await;
    assert_eq!(r.codes(), ["NoError"]);
    let doc = r.doc();
    let root_folder = doc
        .descendants()
        .find(|n| n.has_tag_name((M, "RootFolder")))
        .expect("RootFolder");
    assert_eq!(root_folder.attribute("TotalItemsInView"), Some("1"));
    assert_eq!(
        root_folder.attribute("IncludesLastItemInRange"),
        Some("true")
    );
    let r = c.call(Some(BOB), &find("Deep", "Undeliverable")).await;
    assert_eq!(r.texts(T, "DisplayName").len(), 2);
    let r = c.call(Some(BOB), &find("Shallow", "Nothing")).await;
    assert_eq!(r.texts(T, "DisplayName").len(), 0);

    // Alice's Inbox is no folder of Bob's mailbox.
    let alice_inbox = ews.folder_id(ALICE, "inbox").expect("Alice's Inbox");
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>\
                 <t:FolderId Id=\"{alice_inbox}\"/><t:DistinguishedFolderId Id=\"sentitems\"/>\
                 </m:FolderIds></m:GetFolder>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["ErrorFolderNotFound", "NoError"]);
}

#[tokio::test]
async fn calendar_items_contacts_and_tasks_are_saved_updated_and_deleted() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let r = c
        .call(
            Some(BOB),
            "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId>\
             <t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem>\
             <t:Subject>Standup</t:Subject><t:Start>2026-03-02T09:00:00Z</t:Start><t:End>2026-03-02T09:15:00Z</t:End>\
             <t:IsAllDayEvent>false</t:IsAllDayEvent><t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval>\
             </t:DailyRecurrence><t:NoEndRecurrence><t:StartDate>2026-03-02</t:StartDate></t:NoEndRecurrence>\
             </t:Recurrence></t:CalendarItem></m:Items></m:CreateItem>",
        )
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let (event, ck) = r.item_ids().pop().expect("an ItemId");
    let stored = ews.item(BOB, &event).expect("stored");
    assert_eq!(stored.kind, ItemKind::CalendarItem);
    assert_eq!(
        stored.field_text("CalendarItemType").as_deref(),
        Some("RecurringMaster")
    );

    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:UpdateItem ConflictResolution=\"AutoResolve\" SendMeetingInvitationsOrCancellations=\"SendToNone\">\
                 <m:ItemChanges><t:ItemChange><t:ItemId Id=\"{event}\" ChangeKey=\"{ck}\"/><t:Updates>\
                 <t:SetItemField><t:FieldURI FieldURI=\"calendar:Start\"/><t:CalendarItem>\
                 <t:Start>2026-03-02T10:00:00Z</t:Start></t:CalendarItem></t:SetItemField>\
                 <t:DeleteItemField><t:FieldURI FieldURI=\"calendar:Recurrence\"/></t:DeleteItemField>\
                 </t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>\
                 <t:FieldURI FieldURI=\"calendar:Start\"/><t:FieldURI FieldURI=\"calendar:End\"/>\
                 <t:FieldURI FieldURI=\"calendar:CalendarItemType\"/><t:FieldURI FieldURI=\"calendar:UID\"/>\
                 <t:FieldURI FieldURI=\"calendar:Recurrence\"/></t:AdditionalProperties></m:ItemShape>\
                 <m:ItemIds><t:ItemId Id=\"{event}\"/></m:ItemIds></m:GetItem>"
            ),
        )
        .await;
    assert_eq!(r.text(T, "Start"), "2026-03-02T10:00:00Z");
    assert_eq!(r.text(T, "CalendarItemType"), "Single");
    assert!(r.text(T, "UID").starts_with("040000008200E000"));
    assert!(r.texts(T, "Recurrence").is_empty());
    // Schema order: UID comes before Start, Start before End.
    let order: Vec<String> = r
        .doc()
        .descendants()
        .find(|n| n.has_tag_name((T, "CalendarItem")))
        .expect("CalendarItem")
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name().to_owned())
        .collect();
    assert_eq!(order, ["ItemId", "UID", "Start", "End", "CalendarItemType"]);

    let read_only = c
        .call(
            Some(BOB),
            &format!(
                "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" SendMeetingInvitationsOrCancellations=\"SendToNone\">\
                 <m:ItemChanges><t:ItemChange><t:ItemId Id=\"{event}\"/><t:Updates><t:SetItemField>\
                 <t:FieldURI FieldURI=\"calendar:CalendarItemType\"/><t:CalendarItem><t:CalendarItemType>Occurrence\
                 </t:CalendarItemType></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges>\
                 </m:UpdateItem>"
            ),
        )
        .await;
    assert_eq!(read_only.codes(), ["ErrorInvalidPropertySet"]);

    // A contact: its second address set by index.
    let contact = ews.add_contact(BOB, "Ann", "Lee", "ann@example.net");
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:UpdateItem ConflictResolution=\"AutoResolve\"><m:ItemChanges><t:ItemChange>\
                 <t:ItemId Id=\"{contact}\"/><t:Updates><t:SetItemField>\
                 <t:IndexedFieldURI FieldURI=\"contacts:EmailAddress\" FieldIndex=\"EmailAddress2\"/><t:Contact>\
                 <t:EmailAddresses><t:Entry Key=\"EmailAddress2\">ann@home.example</t:Entry></t:EmailAddresses>\
                 </t:Contact></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape>\
                 <m:ItemIds><t:ItemId Id=\"{contact}\"/></m:ItemIds></m:GetItem>"
            ),
        )
        .await;
    assert_eq!(r.text(T, "GivenName"), "Ann");
    assert_eq!(r.text(T, "DisplayName"), "Ann Lee");
    assert_eq!(r.texts(T, "Entry"), ["ann@example.net", "ann@home.example"]);

    // A task, then every ACT folder's sync sees what happened.
    let task = ews.add_task(BOB, "Call back", Some("2026-03-05T00:00:00Z"));
    assert_eq!(
        ews.item(BOB, &task)
            .expect("task")
            .field_text("Status")
            .as_deref(),
        Some("NotStarted")
    );
    let (tasks, _, state) = sync_all(&c, BOB, "tasks", None, 10).await;
    assert_eq!(tasks, [("Create".to_owned(), task.clone())]);
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:DeleteItem DeleteType=\"HardDelete\" AffectedTaskOccurrences=\"AllOccurrences\">\
                 <m:ItemIds><t:ItemId Id=\"{task}\"/></m:ItemIds></m:DeleteItem>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"]);
    let (tasks, _, _) = sync_all(&c, BOB, "tasks", Some(state), 10).await;
    assert_eq!(tasks, [("Delete".to_owned(), task)]);
    let (events, _, _) = sync_all(&c, BOB, "calendar", None, 10).await;
    assert_eq!(events, [("Create".to_owned(), event)]);
    let (contacts, _, _) = sync_all(&c, BOB, "contacts", None, 10).await;
    assert_eq!(contacts, [("Create".to_owned(), contact)]);
}

#[tokio::test]
async fn move_item_and_move_to_deleted_items_give_new_ids() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let id = ews.deliver(BOB, "inbox", &message("a", "a@x"));
    let undeliverable = ews.create_folder(BOB, None, "Undeliverable");
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:MoveItem><m:ToFolderId><t:FolderId Id=\"{undeliverable}\"/></m:ToFolderId>\
                 <m:ItemIds><t:ItemId Id=\"{id}\"/></m:ItemIds></m:MoveItem>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"]);
    let (moved, _) = r.item_ids().pop().expect("the moved item's id");
    assert_ne!(moved, id);
    assert_eq!(ews.items_in(BOB, "Undeliverable")[0].id, moved);
    assert!(ews.item(BOB, &id).is_none());

    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:DeleteItem DeleteType=\"MoveToDeletedItems\"><m:ItemIds><t:ItemId Id=\"{moved}\"/>\
                 <t:ItemId Id=\"{moved}\"/></m:ItemIds></m:DeleteItem>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError", "ErrorItemNotFound"]);
    assert_eq!(ews.items_in(BOB, "deleteditems").len(), 1);
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:MoveItem><m:ToFolderId><t:DistinguishedFolderId Id=\"inbox\"/></m:ToFolderId>\
                 <m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:MoveItem>",
                ews.items_in(BOB, "deleteditems")[0].id
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"]);
    assert_eq!(ews.items_in(BOB, "inbox")[0].subject.as_deref(), Some("a"));
}

#[tokio::test]
async fn autodiscover_answers_the_ews_url_in_both_flavours() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let pox = |address: &str, schema: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover \
             xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\
             <Request><EMailAddress>{address}</EMailAddress><AcceptableResponseSchema>{schema}\
             </AcceptableResponseSchema></Request></Autodiscover>"
        )
    };
    let outlook = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
    let r = c.post(&ews.autodiscover_xml_url(), pox(BOB, outlook)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.texts(outlook, "Type"), ["EXCH", "EXPR"]);
    assert_eq!(r.texts(outlook, "EwsUrl"), [ews.url(), ews.url()]);
    assert_eq!(r.text(outlook, "AutoDiscoverSMTPAddress"), BOB);

    let base = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
    for (address, schema, code) in [
        ("nobody@example.org", outlook, "500"),
        (
            BOB,
            "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006",
            "601",
        ),
    ] {
        let r = c
            .post(&ews.autodiscover_xml_url(), pox(address, schema))
            .await;
        assert_eq!(
            (r.status, r.text(base, "ErrorCode")),
            (200, code.to_owned())
        );
    }
    let r = c
        .post(&ews.autodiscover_xml_url(), "<Autodiscover/>".into())
        .await;
    assert_eq!(r.text(base, "ErrorCode"), "600");

    ews.set_ews_url("https://mail.example.org/EWS/Exchange.asmx");
    let ad = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
    let soap = format!(
        "<soap:Envelope xmlns:soap=\"{SOAP}\" xmlns:a=\"{ad}\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\">\
         <soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>\
         <wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action>\
         </soap:Header><soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users>\
         <a:User><a:Mailbox>{BOB}</a:Mailbox></a:User><a:User><a:Mailbox>nobody@example.org</a:Mailbox></a:User>\
         </a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting><a:Setting>InternalEwsUrl</a:Setting>\
         <a:Setting>NoSuchSetting</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage>\
         </soap:Body></soap:Envelope>"
    );
    let r = c.post(&ews.autodiscover_svc_url(), soap.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.texts(ad, "ErrorCode"),
        ["NoError", "NoError", "InvalidSetting", "InvalidUser"]
    );
    assert_eq!(r.texts(ad, "Name"), ["ExternalEwsUrl", "InternalEwsUrl"]);
    assert_eq!(
        r.texts(ad, "Value"),
        ["https://mail.example.org/EWS/Exchange.asmx"; 2]
    );
    assert_eq!(r.texts(ad, "SettingName"), ["NoSuchSetting"]);
    assert!(
        r.texts(ad, "ErrorMessage")
            .contains(&"Invalid user: 'nobody@example.org'".to_owned())
    );

    let anonymous = Client::new(&ews.url(), None);
    assert_eq!(
        anonymous
            .post(&ews.autodiscover_svc_url(), soap)
            .await
            .status,
        401
    );
    assert_eq!(
        anonymous
            .post(&ews.autodiscover_xml_url(), pox(BOB, outlook))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn requests_that_are_not_ews_are_refused_as_exchange_refuses_them() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let r = c.post(&ews.url(), "this is not xml".into()).await;
    assert_eq!(
        (r.status, r.fault_code()),
        (500, Some("a:ErrorSchemaValidation".to_owned()))
    );
    let r = c.call(Some(BOB), "<m:GetUserOofSettingsRequest/>").await;
    assert_eq!(r.fault_code().as_deref(), Some("a:ErrorInvalidRequest"));
    let r = c
        .http
        .post(ews.url())
        .header("Authorization", basic("svc@example.org", "secret"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status().as_u16(), 415);
    let r = c.http.get(ews.url()).send().await.expect("an answer");
    assert_eq!(r.status().as_u16(), 405);
    // IIS paths are not case-sensitive.
    let lower = Client::new(
        &ews.url().to_ascii_lowercase(),
        Some(basic("svc@example.org", "secret")),
    );
    let r = lower.call(Some(BOB), &sync_items("inbox", None, 1)).await;
    assert_eq!(r.codes(), ["NoError"]);
}

fn claim_uri() -> &'static str {
    "<t:ExtendedFieldURI DistinguishedPropertySetId=\"PublicStrings\" PropertyName=\"mailbridge-claim\" \
     PropertyType=\"String\"/>"
}

fn get_claim(id: &str) -> String {
    format!(
        "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>{}\
         </t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id=\"{id}\"/></m:ItemIds></m:GetItem>",
        claim_uri()
    )
}

#[tokio::test]
async fn an_extended_property_is_written_read_and_deleted() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let id = ews.add_calendar_item(
        BOB,
        "Review",
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    );
    let r = c.call(Some(BOB), &get_claim(&id)).await;
    assert_eq!(r.codes(), ["NoError"]);
    assert!(
        r.texts(T, "ExtendedProperty").is_empty(),
        "unset: not answered"
    );

    let update = |body: &str| {
        format!(
            "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" SendMeetingInvitationsOrCancellations=\"SendToNone\">\
             <m:ItemChanges><t:ItemChange><t:ItemId Id=\"{id}\"/><t:Updates>{body}</t:Updates></t:ItemChange>\
             </m:ItemChanges></m:UpdateItem>"
        )
    };
    let set = format!(
        "<t:SetItemField>{uri}<t:CalendarItem><t:ExtendedProperty>{uri}<t:Value>org &amp; co</t:Value>\
         </t:ExtendedProperty></t:CalendarItem></t:SetItemField>",
        uri = claim_uri()
    );
    let r = c.call(Some(BOB), &update(&set)).await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let r = c.call(Some(BOB), &get_claim(&id)).await;
    assert_eq!(r.text(T, "Value"), "org & co");
    let uri = r
        .doc()
        .descendants()
        .find(|n| n.has_tag_name((T, "ExtendedFieldURI")))
        .and_then(|n| n.attribute("PropertyName").map(str::to_owned));
    assert_eq!(uri.as_deref(), Some("mailbridge-claim"));
    assert_eq!(
        ews.item(BOB, &id)
            .expect("item")
            .extended_property("mailbridge-claim")
            .as_deref(),
        Some("org & co")
    );
    // Another client's claim is seen as it is.
    ews.set_extended_property(BOB, &id, "mailbridge-claim", "org-2");
    let r = c.call(Some(BOB), &get_claim(&id)).await;
    assert_eq!(r.text(T, "Value"), "org-2");

    let r = c
        .call(
            Some(BOB),
            &update(&format!(
                "<t:DeleteItemField>{}</t:DeleteItemField>",
                claim_uri()
            )),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"]);
    let r = c.call(Some(BOB), &get_claim(&id)).await;
    assert!(r.texts(T, "Value").is_empty(), "{}", r.body);
}

#[tokio::test]
async fn find_item_finds_a_sent_copy_by_its_internet_message_id() {
    let ews = server().await;
    let c = Client::svc(&ews);
    ews.deliver(BOB, "sentitems", &message("one", "one@x"));
    let two = ews.deliver(BOB, "sentitems", &message("two", "two@x"));
    let find = |value: &str| {
        format!(
            "<m:FindItem Traversal=\"Shallow\"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>\
             <m:IndexedPageItemView MaxEntriesReturned=\"10\" Offset=\"0\" BasePoint=\"Beginning\"/>\
             <m:Restriction><t:IsEqualTo><t:FieldURI FieldURI=\"message:InternetMessageId\"/>\
             <t:FieldURIOrConstant><t:Constant Value=\"{value}\"/></t:FieldURIOrConstant></t:IsEqualTo>\
             </m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id=\"sentitems\"/></m:ParentFolderIds>\
             </m:FindItem>"
        )
    };
    let r = c.call(Some(BOB), &find("&lt;two@x&gt;")).await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    assert_eq!(
        r.item_ids()
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        [two]
    );
    let r = c.call(Some(BOB), &find("&lt;three@x&gt;")).await;
    assert!(r.item_ids().is_empty());
}

#[tokio::test]
async fn a_large_message_with_a_byte_order_mark_is_sent() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let mut mime = b"To: ann@example.net\r\nSubject: big\r\n\r\n".to_vec();
    mime.extend(std::iter::repeat_n(b'x', 3 << 20));
    let body = format!(
        "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP}\" \
         xmlns:m=\"{M}\" xmlns:t=\"{T}\"><soap:Header><t:ExchangeImpersonation><t:ConnectingSID>\
         <t:SmtpAddress>{BOB}</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header>\
         <soap:Body><m:CreateItem MessageDisposition=\"SendOnly\"><m:Items><t:Message><t:MimeContent>{}\
         </t:MimeContent></t:Message></m:Items></m:CreateItem></soap:Body></soap:Envelope>",
        STANDARD.encode(&mime)
    );
    let r = c.post(&ews.url(), body).await;
    assert_eq!(r.codes(), ["NoError"]);
    let sent = ews.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].mime.ends_with(&mime),
        "the MIME, after the Message-ID the server added"
    );
    assert!(sent[0].saved_copy_id.is_none(), "SendOnly saves no copy");
    assert!(ews.items_in(BOB, "sentitems").is_empty());
}

/// Changes and small sync pages interleaved (a fixed pseudo-random sequence): the
/// client that applies every page ends with exactly the folder's items, and is
/// never told of an update to an item it was not told exists.
#[tokio::test]
async fn paged_sync_interleaved_with_changes_converges() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut known = std::collections::BTreeSet::new();
    let mut state: Option<String> = None;
    let mut live: Vec<String> = Vec::new();
    for step in 0..120 {
        match next(6) {
            0 | 1 => live.push(ews.deliver(BOB, "inbox", &message("m", &format!("s{step}@x")))),
            2 if !live.is_empty() => {
                let id = &live[next(live.len() as u64) as usize];
                ews.set_read(BOB, id, next(2) == 0);
            }
            3 if !live.is_empty() => {
                let id = &live[next(live.len() as u64) as usize];
                ews.set_categories(BOB, id, &[&format!("c{step}")]);
            }
            4 if !live.is_empty() => {
                let id = live.swap_remove(next(live.len() as u64) as usize);
                if next(2) == 0 {
                    ews.delete_item(BOB, &id);
                } else {
                    ews.move_item(BOB, &id, "deleteditems");
                }
            }
            _ => {
                let r = c
                    .call(Some(BOB), &sync_items("inbox", state.as_deref(), 2))
                    .await;
                assert_eq!(r.codes(), ["NoError"]);
                for (kind, (id, _)) in r.changes().into_iter().zip(r.item_ids()) {
                    match kind.as_str() {
                        "Create" => {
                            known.insert(id);
                        }
                        "Delete" => {
                            known.remove(&id);
                        }
                        _ => assert!(known.contains(&id), "step {step}: {kind} of unknown {id}"),
                    }
                }
                state = Some(r.text(M, "SyncState"));
            }
        }
    }
    let (rest, _, _) = sync_all(&c, BOB, "inbox", state, 2).await;
    for (kind, id) in rest {
        match kind.as_str() {
            "Create" => {
                known.insert(id);
            }
            "Delete" => {
                known.remove(&id);
            }
            _ => assert!(known.contains(&id), "{kind} of unknown {id}"),
        }
    }
    let server: std::collections::BTreeSet<String> = ews
        .items_in(BOB, "inbox")
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(known, server);
    assert_eq!(server.len(), live.len());
}

/// GetItem of items (`t:ItemId` or `t:OccurrenceItemId`) with the series properties.
fn get_series(ids: &str) -> String {
    format!(
        "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>\
         <t:FieldURI FieldURI=\"item:Subject\"/><t:FieldURI FieldURI=\"calendar:Start\"/>\
         <t:FieldURI FieldURI=\"calendar:End\"/><t:FieldURI FieldURI=\"calendar:CalendarItemType\"/>\
         <t:FieldURI FieldURI=\"calendar:ModifiedOccurrences\"/>\
         <t:FieldURI FieldURI=\"calendar:DeletedOccurrences\"/></t:AdditionalProperties></m:ItemShape>\
         <m:ItemIds>{ids}</m:ItemIds></m:GetItem>"
    )
}

fn occurrence_id(master: &str, index: u32) -> String {
    format!("<t:OccurrenceItemId RecurringMasterId=\"{master}\" InstanceIndex=\"{index}\"/>")
}

#[tokio::test]
async fn occurrences_are_read_modified_and_deleted_by_instance_index() {
    let ews = server().await;
    let c = Client::svc(&ews);
    // Mondays and Wednesdays from Wednesday 2026-03-04, five times: 4, 9, 11, 16, 18 March.
    let r = c
        .call(
            Some(BOB),
            "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId>\
             <t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem>\
             <t:Subject>Review</t:Subject><t:Start>2026-03-04T09:00:00Z</t:Start><t:End>2026-03-04T10:00:00Z</t:End>\
             <t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday Wednesday</t:DaysOfWeek>\
             </t:WeeklyRecurrence><t:NumberedRecurrence><t:StartDate>2026-03-04Z</t:StartDate>\
             <t:NumberOfOccurrences>5</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>\
             </t:CalendarItem></m:Items></m:CreateItem>",
        )
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let (master, master_ck) = r.item_ids().pop().expect("an ItemId");

    // GetItem: the third occurrence is Wednesday 11 March; 0 and 6 are out of range.
    let r = c
        .call(
            Some(BOB),
            &get_series(&format!(
                "{}{}{}",
                occurrence_id(&master, 3),
                occurrence_id(&master, 0),
                occurrence_id(&master, 6)
            )),
        )
        .await;
    assert_eq!(
        r.codes(),
        [
            "NoError",
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange"
        ],
        "{}",
        r.body
    );
    assert_eq!(r.text(T, "Start"), "2026-03-11T09:00:00Z");
    assert_eq!(r.text(T, "End"), "2026-03-11T10:00:00Z");
    assert_eq!(r.text(T, "CalendarItemType"), "Occurrence");
    assert_eq!(r.text(T, "Subject"), "Review");
    assert_ne!(r.item_ids()[0].0, master);

    // DeleteItem of the second (Monday 9 March): the master lists it and changes.
    let delete = |index: u32| {
        format!(
            "<m:DeleteItem DeleteType=\"HardDelete\" SendMeetingCancellations=\"SendToNone\">\
             <m:ItemIds>{}</m:ItemIds></m:DeleteItem>",
            occurrence_id(&master, index)
        )
    };
    let r = c.call(Some(BOB), &delete(2)).await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let r = c.call(Some(BOB), &delete(2)).await;
    assert_eq!(
        r.codes(),
        ["ErrorCalendarOccurrenceIsDeletedFromRecurrence"]
    );
    let r = c.call(Some(BOB), &delete(9)).await;
    assert_eq!(
        r.codes(),
        ["ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange"]
    );
    let r = c
        .call(Some(BOB), &get_series(&occurrence_id(&master, 2)))
        .await;
    assert_eq!(
        r.codes(),
        ["ErrorCalendarOccurrenceIsDeletedFromRecurrence"]
    );

    // UpdateItem of the fourth (Monday 16 March): an exception at 14:00.
    let update = |id: &str, subject: &str| {
        format!(
            "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" SendMeetingInvitationsOrCancellations=\"SendToNone\">\
             <m:ItemChanges><t:ItemChange>{id}<t:Updates>\
             <t:SetItemField><t:FieldURI FieldURI=\"item:Subject\"/><t:CalendarItem><t:Subject>{subject}</t:Subject>\
             </t:CalendarItem></t:SetItemField>\
             <t:SetItemField><t:FieldURI FieldURI=\"calendar:Start\"/><t:CalendarItem>\
             <t:Start>2026-03-16T14:00:00Z</t:Start></t:CalendarItem></t:SetItemField>\
             <t:SetItemField><t:FieldURI FieldURI=\"calendar:End\"/><t:CalendarItem>\
             <t:End>2026-03-16T15:00:00Z</t:End></t:CalendarItem></t:SetItemField>\
             </t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
        )
    };
    let r = c
        .call(Some(BOB), &update(&occurrence_id(&master, 4), "Moved"))
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let (exception, _) = r.item_ids().pop().expect("the exception's id");
    let r = c
        .call(
            Some(BOB),
            &get_series(&format!(
                "<t:ItemId Id=\"{master}\"/>{}",
                occurrence_id(&master, 4)
            )),
        )
        .await;
    assert_eq!(r.codes(), ["NoError", "NoError"], "{}", r.body);
    assert_eq!(r.texts(T, "OriginalStart"), ["2026-03-16T09:00:00Z"]);
    assert_eq!(
        r.texts(T, "Start"),
        [
            "2026-03-04T09:00:00Z",
            "2026-03-16T14:00:00Z",
            "2026-03-09T09:00:00Z",
            "2026-03-16T14:00:00Z"
        ],
        "master, its modified occurrence, its deleted occurrence, the exception: {}",
        r.body
    );
    assert_eq!(
        r.texts(T, "CalendarItemType"),
        ["RecurringMaster", "Exception"]
    );
    assert_eq!(r.texts(T, "Subject"), ["Review", "Moved"]);
    let ids = r.item_ids();
    assert_eq!(ids[0].0, master);
    assert_ne!(ids[0].1, master_ck, "the master's ChangeKey changed");
    assert_eq!(
        ids[1].0, exception,
        "ModifiedOccurrences names the exception"
    );
    assert_eq!(ids[2].0, exception, "the occurrence is the exception");

    // Updating the exception by its own id keeps one exception and changes the master.
    let before = ids[0].1.clone();
    let r = c
        .call(
            Some(BOB),
            &update(&format!("<t:ItemId Id=\"{exception}\"/>"), "Moved again"),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let r = c
        .call(
            Some(BOB),
            &get_series(&format!("<t:ItemId Id=\"{master}\"/>")),
        )
        .await;
    assert_eq!(r.texts(T, "OriginalStart").len(), 1);
    assert_ne!(r.item_ids()[0].1, before);

    // Exceptions are not items of the calendar folder.
    let (events, _, _) = sync_all(&c, BOB, "calendar", None, 10).await;
    assert_eq!(events, [("Create".to_owned(), master.clone())]);

    // Deleting the exception deletes its occurrence.
    let r = c
        .call(
            Some(BOB),
            &format!(
                "<m:DeleteItem DeleteType=\"HardDelete\"><m:ItemIds><t:ItemId Id=\"{exception}\"/>\
                 </m:ItemIds></m:DeleteItem>"
            ),
        )
        .await;
    assert_eq!(r.codes(), ["NoError"], "{}", r.body);
    let r = c
        .call(
            Some(BOB),
            &get_series(&format!("<t:ItemId Id=\"{master}\"/>")),
        )
        .await;
    assert!(r.texts(T, "OriginalStart").is_empty(), "{}", r.body);
    assert_eq!(
        r.texts(T, "Start"),
        [
            "2026-03-04T09:00:00Z",
            "2026-03-09T09:00:00Z",
            "2026-03-16T09:00:00Z"
        ]
    );
    assert!(ews.item(BOB, &exception).is_none());
}

#[tokio::test]
async fn occurrences_of_daily_and_monthly_series_and_of_a_single_item() {
    let ews = server().await;
    let c = Client::svc(&ews);
    let create = |recurrence: &str| {
        format!(
            "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId>\
             <t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem>\
             <t:Subject>S</t:Subject><t:Start>2026-01-15T08:30:00Z</t:Start><t:End>2026-01-15T09:00:00Z</t:End>\
             {recurrence}</t:CalendarItem></m:Items></m:CreateItem>"
        )
    };
    let mut masters = Vec::new();
    for recurrence in [
        "<t:Recurrence><t:DailyRecurrence><t:Interval>2</t:Interval></t:DailyRecurrence>\
         <t:EndDateRecurrence><t:StartDate>2026-01-15</t:StartDate><t:EndDate>2026-01-21</t:EndDate>\
         </t:EndDateRecurrence></t:Recurrence>",
        "<t:Recurrence><t:AbsoluteMonthlyRecurrence><t:Interval>2</t:Interval><t:DayOfMonth>15</t:DayOfMonth>\
         </t:AbsoluteMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-15</t:StartDate>\
         </t:NoEndRecurrence></t:Recurrence>",
        "",
    ] {
        let r = c.call(Some(BOB), &create(recurrence)).await;
        assert_eq!(r.codes(), ["NoError"], "{}", r.body);
        masters.push(r.item_ids().pop().expect("an ItemId").0);
    }
    let r = c
        .call(
            Some(BOB),
            &get_series(&format!(
                "{}{}{}{}",
                occurrence_id(&masters[0], 4),
                occurrence_id(&masters[0], 5),
                occurrence_id(&masters[1], 3),
                occurrence_id(&masters[2], 1)
            )),
        )
        .await;
    assert_eq!(
        r.codes(),
        [
            "NoError",
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
            "NoError",
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange"
        ],
        "{}",
        r.body
    );
    assert_eq!(
        r.texts(T, "Start"),
        ["2026-01-21T08:30:00Z", "2026-05-15T08:30:00Z"]
    );
}
