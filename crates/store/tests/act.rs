//! The store's side of ACT sync, on both SQLite and PostgreSQL: the records a
//! mailbox considers, version-guarded writes that lose a race instead of
//! overwriting, tombstones, records created from server items, the mapping table,
//! collections with their sync tokens, the decision trail and the sync filters.

use chrono::{TimeZone, Utc};
use mailbridge_domain::act::SyncFilters;
use mailbridge_domain::act::filters::{DateWindow, KindFilter};
use mailbridge_domain::act::fingerprint::{Fingerprint, fingerprint};
use mailbridge_domain::act::model::*;
use mailbridge_domain::act::records::{ActRecord, UtcOnly};
use mailbridge_domain::activity::Task as TaskRecord;
use mailbridge_domain::ids::new_id;
use mailbridge_domain::party::{ContactDetails, PartyRecord};
use mailbridge_domain::{
    ActLeavingFilters, ActTaskDeletedOnServer, RegardingType, Role, TaskPriority, TaskStatus,
    TrackingFilter,
};
use mailbridge_store::{
    ActLinkWrite, Cipher, Filter, NewActDecision, NewUser, PageRequest, PartyKind, Store,
    StoreError, VersionedWrite,
};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One `#[tokio::test]` per backend for each named async function taking a `Backend`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Backend::Postgres).await
                }
            }
        )+
    };
}

on_both_backends!(
    a_mailbox_considers_owned_regarding_and_linked_records,
    sync_writes_name_the_version_they_read,
    server_items_become_records_and_read_back_whole,
    links_collections_and_the_decision_trail,
    filters_and_organization_settings,
);

/// A fresh store with one organization and two users.
struct Act {
    store: Store,
    org: String,
    alice: String,
    alice_mailbox: String,
    bob: String,
    _dir: tempfile::TempDir,
}

impl Act {
    async fn start(backend: Backend) -> Act {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => dir.path().join("act.db").display().to_string(),
            Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
        };
        let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
        let store = Store::open(&url, cipher).await.expect("store opens");
        let org = store
            .create_organization("Contoso", None)
            .await
            .expect("organization")
            .id;
        let mut users = Vec::new();
        for name in ["Alice", "Bob"] {
            let user = store
                .create_user(
                    &org,
                    NewUser {
                        full_name: name.to_owned(),
                        email: Some(format!("{}@contoso.com", name.to_lowercase())),
                        role: Role::User,
                        tracking_filter: TrackingFilter::None,
                    },
                )
                .await
                .expect("user");
            users.push(user);
        }
        Act {
            store,
            org,
            alice: users[0].id.clone(),
            alice_mailbox: users[0].mailbox_id.clone(),
            bob: users[1].id.clone(),
            _dir: dir,
        }
    }

    async fn task(&self, subject: &str, owner: &str) -> TaskRecord {
        let t = Utc::now();
        let task = TaskRecord {
            id: new_id(),
            org_id: self.org.clone(),
            subject: subject.to_owned(),
            description: None,
            start: None,
            due: None,
            completed_at: None,
            priority: TaskPriority::Normal,
            status: TaskStatus::NotStarted,
            owner_id: Some(owner.to_owned()),
            regarding_type: None,
            regarding_id: None,
            ical_uid: None,
            percent_complete: Some(10),
            categories: vec!["Quotes".into()],
            version: 1,
            deleted_at: None,
            created_at: t,
            updated_at: t,
        };
        self.store.create_task(&task).await.expect("task")
    }

    async fn party(&self, kind: PartyKind, name: &str, owner: Option<&str>) -> PartyRecord {
        let t = Utc::now();
        let p = PartyRecord {
            id: new_id(),
            org_id: self.org.clone(),
            name: name.to_owned(),
            email: None,
            phone: None,
            company: None,
            account_id: None,
            active: true,
            owner_id: owner.map(str::to_owned),
            given_name: None,
            family_name: None,
            job_title: None,
            details: ContactDetails::default(),
            ical_uid: None,
            version: 1,
            deleted_at: None,
            created_at: t,
            updated_at: t,
        };
        self.store.create_party(kind, &p).await.expect("party")
    }

    fn link(&self, kind: ActKind, record_id: &str, href: &str) -> ActLinkWrite {
        ActLinkWrite {
            kind,
            record_id: record_id.to_owned(),
            collection_href: "/dav/alice/tasks/".into(),
            server_href: href.to_owned(),
            server_uid: Some(format!("{record_id}@mailbridge")),
            record_version: 1,
            record_fingerprint: Fingerprint("1:aa".into()),
            server_etag: Some("\"e1\"".into()),
            server_fingerprint: Fingerprint("1:bb".into()),
            snapshot: None,
        }
    }

    async fn candidates(&self, kind: ActKind) -> Vec<(String, bool, bool, bool, bool)> {
        self.store
            .act_records_for_owner(&self.org, &self.alice, kind)
            .await
            .expect("candidates")
            .into_iter()
            .map(|c| {
                (
                    c.record.id().to_owned(),
                    c.facts.owned_by_user,
                    c.facts.regarding_owned_by_user,
                    c.facts.linked,
                    c.record.is_deleted(),
                )
            })
            .collect()
    }
}

async fn a_mailbox_considers_owned_regarding_and_linked_records(backend: Backend) {
    let a = Act::start(backend).await;
    let own = a.task("Alice's own", &a.alice).await;
    let bobs = a.task("Bob's", &a.bob).await;
    // Bob's task regarding an account Alice owns.
    let account = a
        .party(PartyKind::Account, "Fabrikam", Some(&a.alice))
        .await;
    let mut regarding = a.task("Regarding Alice's account", &a.bob).await;
    regarding.regarding_type = Some(RegardingType::Account);
    regarding.regarding_id = Some(account.id.clone());
    a.store.update_task(&regarding).await.expect("update");

    let mut expected = vec![
        (own.id.clone(), true, false, false, false),
        (regarding.id.clone(), false, true, false, false),
    ];
    expected.sort();
    assert_eq!(a.candidates(ActKind::Task).await, expected);

    // A record linked in the mailbox is considered whoever owns it, and so is its
    // tombstone; an unlinked tombstone is not.
    a.store
        .upsert_act_link(
            &a.org,
            &a.alice_mailbox,
            &a.link(ActKind::Task, &bobs.id, "/t/bobs.ics"),
        )
        .await
        .expect("link");
    a.store.delete_task(&a.org, &bobs.id).await.expect("delete");
    a.store
        .delete_task(&a.org, &regarding.id)
        .await
        .expect("delete");
    let got = a.candidates(ActKind::Task).await;
    let mut expected = vec![
        (own.id.clone(), true, false, false, false),
        (bobs.id.clone(), false, false, true, true),
    ];
    expected.sort();
    assert_eq!(got, expected);

    // The API no longer shows a tombstone, and deleting it again is a 404.
    assert!(matches!(
        a.store.get_task(&a.org, &bobs.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        a.store.delete_task(&a.org, &bobs.id).await,
        Err(StoreError::NotFound)
    ));
    let listed = a
        .store
        .list_tasks(&a.org, &[], &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);

    // Contacts: owned, and those of an account Alice owns; accounts are no contacts.
    let mine = a.party(PartyKind::Contact, "Carl", Some(&a.alice)).await;
    let mut of_account = a.party(PartyKind::Contact, "Dana", Some(&a.bob)).await;
    of_account.account_id = Some(account.id.clone());
    a.store
        .update_party(PartyKind::Contact, &of_account)
        .await
        .expect("update");
    a.party(PartyKind::Contact, "Eve", Some(&a.bob)).await;
    let mut expected = vec![
        (mine.id.clone(), true, false, false, false),
        (of_account.id.clone(), false, true, false, false),
    ];
    expected.sort();
    assert_eq!(a.candidates(ActKind::Contact).await, expected);
    assert!(a.candidates(ActKind::Appointment).await.is_empty());
}

async fn sync_writes_name_the_version_they_read(backend: Backend) {
    let a = Act::start(backend).await;
    let task = a.task("Send the quote", &a.alice).await;
    assert_eq!(task.version, 1);
    let record = ActRecord::Task(task.clone());
    let mut item = match record.to_item(&UtcOnly).expect("item") {
        ActItem::Task(t) => t,
        other => panic!("a task, not {other:?}"),
    };
    item.summary = "Send the quote today".into();
    item.status = TodoStatus::InProcess;
    let item = ActItem::Task(item);

    // Someone edits the record through the API: its version moves on.
    let mut edited = task.clone();
    edited.description = Some("edited".into());
    let edited = a.store.update_task(&edited).await.expect("update");
    assert_eq!(edited.version, 2);

    // The sync planned from version 1: nothing is written.
    let w = a
        .store
        .update_record_if_version(&a.org, ActKind::Task, &task.id, 1, &item, &UtcOnly)
        .await
        .expect("write");
    assert_eq!(w, VersionedWrite::VersionMoved { current: 2 });
    let now = a.store.get_task(&a.org, &task.id).await.expect("task");
    assert_eq!(
        (now.subject.as_str(), now.description.as_deref()),
        ("Send the quote", Some("edited"))
    );

    // Planned again from version 2: written, record-only fields kept.
    let w = a
        .store
        .update_record_if_version(&a.org, ActKind::Task, &task.id, 2, &item, &UtcOnly)
        .await
        .expect("write");
    let VersionedWrite::Written(written) = w else {
        panic!("written: {w:?}");
    };
    let ActRecord::Task(t) = *written else {
        panic!("a task");
    };
    assert_eq!(t.version, 3);
    assert_eq!(t.subject, "Send the quote today");
    assert_eq!(t.status, TaskStatus::InProgress);
    assert_eq!(t.owner_id.as_deref(), Some(a.alice.as_str()));
    assert_eq!(t.ical_uid, Some(format!("{}@mailbridge", task.id)));
    assert_eq!(t.categories, ["Quotes"]);

    // Deletes are guarded the same way, and leave a tombstone.
    let w = a
        .store
        .delete_record_if_version(&a.org, ActKind::Task, &task.id, 2)
        .await
        .expect("delete");
    assert_eq!(w, VersionedWrite::VersionMoved { current: 3 });
    let w = a
        .store
        .delete_record_if_version(&a.org, ActKind::Task, &task.id, 3)
        .await
        .expect("delete");
    let VersionedWrite::Written(tomb) = w else {
        panic!("written: {w:?}");
    };
    assert!(tomb.is_deleted());
    assert_eq!(tomb.version(), 4);
    for w in [
        a.store
            .delete_record_if_version(&a.org, ActKind::Task, &task.id, 4)
            .await
            .expect("delete"),
        a.store
            .update_record_if_version(&a.org, ActKind::Task, &task.id, 4, &item, &UtcOnly)
            .await
            .expect("write"),
        a.store
            .update_record_if_version(&a.org, ActKind::Task, &new_id(), 1, &item, &UtcOnly)
            .await
            .expect("write"),
    ] {
        assert_eq!(w, VersionedWrite::Gone);
    }
    // An item of another kind is refused, naming the item.
    let other = a.task("Other", &a.alice).await;
    let err = a
        .store
        .update_record_if_version(
            &a.org,
            ActKind::Task,
            &other.id,
            1,
            &ActItem::Contact(contact()),
            &UtcOnly,
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(err, StoreError::Invalid(ref f) if f[0].field == "item"),
        "{err:?}"
    );
}

fn utc(d: u32, h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0)
        .single()
        .expect("a valid instant")
}

fn meeting() -> Appointment {
    let attendee = |email: &str, status| Attendee {
        person: Person {
            email: email.into(),
            name: Some("Bo".into()),
        },
        role: AttendeeRole::Required,
        status,
    };
    Appointment {
        uid: "3f1c@crm.example.org".into(),
        summary: "Quarterly review".into(),
        organizer: Some(Person {
            email: "ana@contoso.com".into(),
            name: Some("Ana Silva".into()),
        }),
        attendees: vec![
            attendee("bo@fabrikam.com", ParticipationStatus::Accepted),
            attendee("cy@contoso.com", ParticipationStatus::NeedsAction),
        ],
        start: EventTime::Utc(utc(2, 9)),
        end: EventTime::Utc(utc(2, 10)),
        location: Some("Room 4".into()),
        description: Some("Agenda".into()),
        status: EventStatus::Confirmed,
        categories: vec!["Customer".into()],
        recurrence: Some(Recurrence {
            rrule: Some("FREQ=WEEKLY;BYDAY=MO;COUNT=10".into()),
            exdates: vec![EventTime::Utc(utc(16, 9))],
            rdates: vec![],
        }),
        exceptions: vec![Occurrence {
            recurrence_id: EventTime::Utc(utc(9, 9)),
            start: EventTime::Utc(utc(9, 13)),
            end: EventTime::Utc(utc(9, 14)),
            summary: "Quarterly review (moved)".into(),
            location: None,
            description: None,
            status: EventStatus::Confirmed,
            attendees: vec![],
        }],
    }
}

fn contact() -> Contact {
    Contact {
        uid: "contact-9@crm.example.org".into(),
        formatted_name: "Bo Lindqvist".into(),
        name: StructuredName {
            family: Some("Lindqvist".into()),
            given: Some("Bo".into()),
            ..StructuredName::default()
        },
        emails: vec![
            ContactEmail {
                address: "bo@fabrikam.com".into(),
                kind: ContactUse::Work,
                preferred: true,
            },
            ContactEmail {
                address: "bo@home.example".into(),
                kind: ContactUse::Home,
                preferred: false,
            },
        ],
        phones: vec![ContactPhone {
            number: "+46 8 123 45 67".into(),
            kind: PhoneKind::Work,
        }],
        addresses: vec![PostalAddress {
            kind: ContactUse::Work,
            street: Some("Drottninggatan 1".into()),
            locality: Some("Stockholm".into()),
            region: None,
            postal_code: Some("111 51".into()),
            country: Some("Sweden".into()),
        }],
        organization: Some("Fabrikam".into()),
        title: Some("Buyer".into()),
        note: Some("Met at the fair".into()),
        categories: vec!["Buyers".into()],
    }
}

async fn server_items_become_records_and_read_back_whole(backend: Backend) {
    let a = Act::start(backend).await;
    for item in [ActItem::Appointment(meeting()), ActItem::Contact(contact())] {
        let record = a
            .store
            .create_record_from_server(&a.org, &a.alice, &item, &UtcOnly)
            .await
            .expect("created");
        assert_eq!(record.version(), 1);
        assert_eq!(record.owner_id(), Some(a.alice.as_str()));
        assert_eq!(record.to_item(&UtcOnly).expect("item"), item);
        assert_eq!(
            fingerprint(&record.to_item(&UtcOnly).expect("item")),
            fingerprint(&item)
        );
        let by_uid = a
            .store
            .act_record_by_uid(&a.org, item.kind(), item.uid())
            .await
            .expect("read")
            .expect("found by UID");
        assert_eq!(by_uid, record);
        // One UID is one live record.
        let again = a
            .store
            .create_record_from_server(&a.org, &a.alice, &item, &UtcOnly)
            .await
            .expect_err("a second record with the UID");
        assert!(
            matches!(&again, StoreError::Conflict { field: Some(f), .. } if f == "ical_uid"),
            "{again:?}"
        );
    }
    // The API reads the appointment with its series, exception and attendees.
    let record = a
        .store
        .act_record_by_uid(&a.org, ActKind::Appointment, "3f1c@crm.example.org")
        .await
        .expect("read")
        .expect("found");
    let api = a
        .store
        .get_appointment(&a.org, record.id())
        .await
        .expect("get");
    assert_eq!(api.attendees.len(), 2);
    assert_eq!(api.exceptions.len(), 1);
    assert_eq!(api.organizer_name.as_deref(), Some("Ana Silva"));
    assert_eq!(api.start, utc(2, 9));
    // Deleted, the UID is free for a record created again from the server.
    a.store
        .delete_appointment(&a.org, record.id())
        .await
        .expect("delete");
    let again = a
        .store
        .create_record_from_server(&a.org, &a.alice, &ActItem::Appointment(meeting()), &UtcOnly)
        .await
        .expect("created again");
    assert_ne!(again.id(), record.id());
}

async fn links_collections_and_the_decision_trail(backend: Backend) {
    let a = Act::start(backend).await;
    let m = a.alice_mailbox.clone();
    let t1 = a.task("One", &a.alice).await;
    let t2 = a.task("Two", &a.alice).await;
    let mut w = a.link(ActKind::Task, &t1.id, "/t/1.ics");
    w.snapshot = Some(ActItem::Contact(contact()));
    let link = a.store.upsert_act_link(&a.org, &m, &w).await.expect("link");
    assert_eq!(link.planner_link().record_version, "1");
    assert_eq!(link.planner_link().server_version, "\"e1\"");
    assert_eq!(link.snapshot().expect("parses"), w.snapshot);
    assert_eq!(link.act_kind(), Some(ActKind::Task));

    // A failed write is recorded; the next successful sync clears it.
    assert!(
        a.store
            .record_act_link_error(&a.org, &m, ActKind::Task, &t1.id, "412 Precondition Failed")
            .await
            .expect("error")
    );
    let links = a
        .store
        .act_links(&a.org, &m, ActKind::Task)
        .await
        .expect("links");
    assert_eq!(
        links[0].last_error.as_deref(),
        Some("412 Precondition Failed")
    );
    assert!(links[0].last_error_at.is_some());
    w.record_version = 3;
    w.server_etag = Some("\"e2\"".into());
    let link = a.store.upsert_act_link(&a.org, &m, &w).await.expect("link");
    assert_eq!((link.record_version, link.last_error), (3, None));

    // The same server item claimed by another record replaces the first link.
    a.store
        .upsert_act_link(&a.org, &m, &a.link(ActKind::Task, &t2.id, "/t/1.ics"))
        .await
        .expect("link");
    let links = a
        .store
        .act_links(&a.org, &m, ActKind::Task)
        .await
        .expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].record_id, t2.id);
    let page = a
        .store
        .list_act_links(
            &a.org,
            &[Filter::Eq("t.mailbox_id", m.clone())],
            &PageRequest::default(),
        )
        .await
        .expect("page");
    assert_eq!(page.items.len(), 1);
    assert!(
        a.store
            .delete_act_link(&a.org, &m, ActKind::Task, &t2.id)
            .await
            .expect("unlink")
    );
    assert!(
        !a.store
            .delete_act_link(&a.org, &m, ActKind::Task, &t2.id)
            .await
            .expect("unlink")
    );

    // Collections: tracked flag and sync token, independently.
    let href = "/dav/alice/calendar/";
    assert_eq!(
        a.store
            .act_sync_token(&a.org, &m, ActKind::Appointment, href)
            .await
            .expect("token"),
        None
    );
    a.store
        .upsert_act_collection(&a.org, &m, ActKind::Appointment, href, true)
        .await
        .expect("collection");
    a.store
        .set_act_sync_token(&a.org, &m, ActKind::Appointment, href, Some("t-1"))
        .await
        .expect("token");
    a.store
        .upsert_act_collection(&a.org, &m, ActKind::Appointment, href, true)
        .await
        .expect("collection");
    a.store
        .set_act_sync_token(
            &a.org,
            &m,
            ActKind::Appointment,
            "/dav/alice/other/",
            Some("x"),
        )
        .await
        .expect("token");
    let cols = a
        .store
        .act_collections(&a.org, &m, ActKind::Appointment)
        .await
        .expect("collections");
    let got: Vec<(&str, Option<&str>, bool)> = cols
        .iter()
        .map(|c| (c.href.as_str(), c.sync_token.as_deref(), c.tracked))
        .collect();
    assert_eq!(
        got,
        [
            ("/dav/alice/calendar/", Some("t-1"), true),
            ("/dav/alice/other/", Some("x"), false)
        ]
    );
    a.store
        .set_act_sync_token(&a.org, &m, ActKind::Appointment, href, None)
        .await
        .expect("token");
    assert_eq!(
        a.store
            .act_sync_token(&a.org, &m, ActKind::Appointment, href)
            .await
            .expect("token"),
        None
    );

    // The trail, newest first, paged.
    let decision = |n: usize| NewActDecision {
        kind: ActKind::Task,
        record_id: Some(t1.id.clone()),
        server_href: Some(format!("/t/{n}.ics")),
        action: "update_server".into(),
        reason: format!("the record changed ({n})"),
        outcome: if n == 3 { "failed" } else { "done" }.into(),
        error: (n == 3).then(|| "412 Precondition Failed".into()),
    };
    // A business app subscribed to ACT changes hears of each applied one.
    let t = Utc::now();
    a.store
        .create_webhook(&mailbridge_domain::webhook::WebhookSubscription {
            id: new_id(),
            org_id: a.org.clone(),
            url: "http://127.0.0.1:9/hook".to_owned(),
            description: None,
            event_types: vec![mailbridge_domain::WebhookEventType::ActItemChanged],
            enabled: true,
            created_at: t,
            updated_at: t,
        })
        .await
        .expect("subscription");
    let nothing = NewActDecision {
        action: "nothing".into(),
        ..decision(4)
    };
    a.store
        .append_act_decisions(
            &a.org,
            &m,
            &[decision(1), decision(2), decision(3), nothing],
        )
        .await
        .expect("append");
    // One event per applied change (not the failed one, not "nothing"), in
    // order; a delivery is claimed one at a time per mailbox.
    let mut payloads = Vec::new();
    for _ in 0..4 {
        let claimed = a
            .store
            .claim_webhook_deliveries("n1", std::time::Duration::from_secs(60), 10)
            .await
            .expect("claim");
        let Some(d) = claimed.into_iter().next() else {
            break;
        };
        assert_eq!(d.event_type, "act.item_changed");
        let v: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        payloads.push(v["data"].clone());
        let delivered = mailbridge_store::AttemptResult {
            at: Utc::now(),
            status_code: Some(204),
            error: None,
            duration_ms: 1,
        };
        a.store
            .record_webhook_attempt(&d, &delivered, mailbridge_store::AfterAttempt::Delivered)
            .await
            .expect("delivered");
    }
    let hrefs: Vec<&str> = payloads
        .iter()
        .map(|p| p["server_id"].as_str().unwrap())
        .collect();
    assert_eq!(hrefs, ["/t/1.ics", "/t/2.ics"], "{payloads:?}");
    assert_eq!(payloads[0]["kind"], "task");
    assert_eq!(payloads[0]["action"], "update_server");
    assert_eq!(payloads[0]["mailbox_id"], m.as_str());
    assert_eq!(payloads[0]["record_id"], t1.id.as_str());
    let filters = [Filter::Eq("t.mailbox_id", m.clone())];
    let first = a
        .store
        .list_act_decisions(
            &a.org,
            &filters,
            &PageRequest {
                after: None,
                limit: Some(2),
            },
        )
        .await
        .expect("page");
    let hrefs: Vec<_> = first
        .items
        .iter()
        .map(|d| d.server_href.clone().unwrap_or_default())
        .collect();
    assert_eq!(hrefs, ["/t/4.ics", "/t/3.ics"]);
    assert_eq!(first.items[0].action, "nothing");
    assert_eq!(
        first.items[1].error.as_deref(),
        Some("412 Precondition Failed")
    );
    let second = a
        .store
        .list_act_decisions(
            &a.org,
            &filters,
            &PageRequest {
                after: first.next_cursor.clone(),
                limit: Some(2),
            },
        )
        .await
        .expect("page");
    let hrefs: Vec<_> = second
        .items
        .iter()
        .map(|d| d.server_href.clone().unwrap_or_default())
        .collect();
    assert_eq!(hrefs, ["/t/2.ics", "/t/1.ics"]);
}

async fn filters_and_organization_settings(backend: Backend) {
    let a = Act::start(backend).await;
    assert_eq!(
        a.store
            .sync_filters(&a.org, &a.alice)
            .await
            .expect("filters"),
        SyncFilters::default()
    );
    let f = SyncFilters {
        appointments: KindFilter {
            window: Some(DateWindow {
                days_back: 30,
                days_ahead: 90,
            }),
            ..KindFilter::default()
        },
        tasks: KindFilter {
            include_closed: true,
            ..KindFilter::default()
        },
        contacts: KindFilter {
            include_regarding_owned: true,
            ..KindFilter::default()
        },
    };
    assert_eq!(
        a.store
            .set_sync_filters(&a.org, &a.alice, &f)
            .await
            .expect("set"),
        f
    );
    assert_eq!(
        a.store.sync_filters(&a.org, &a.bob).await.expect("filters"),
        SyncFilters::default()
    );
    assert!(matches!(
        a.store.sync_filters(&a.org, &new_id()).await,
        Err(StoreError::NotFound)
    ));

    let mut s = a.store.get_email_settings(&a.org).await.expect("settings");
    assert_eq!(s.act_leaving_filters, ActLeavingFilters::DeleteOnServer);
    assert_eq!(
        s.act_task_deleted_on_server,
        ActTaskDeletedOnServer::DeleteRecord
    );
    s.act_leaving_filters = ActLeavingFilters::Unlink;
    s.act_task_deleted_on_server = ActTaskDeletedOnServer::Unlink;
    let s = a
        .store
        .update_email_settings(&a.org, &s)
        .await
        .expect("settings");
    assert_eq!(
        (s.act_leaving_filters, s.act_task_deleted_on_server),
        (ActLeavingFilters::Unlink, ActTaskDeletedOnServer::Unlink)
    );
}
