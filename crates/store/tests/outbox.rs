//! The outgoing queue's claims, on both SQLite and PostgreSQL: each due email is
//! claimed once, in order, with its parties and HTML body, and what a run did not
//! hand over goes back to the queue unless another claim has taken it since.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use mailbridge_domain::activity::{Email, EmailParty};
use mailbridge_domain::{EmailDirection, EmailStatus, PartyRole, Role, TrackingFilter};
use mailbridge_store::{Cipher, NewUser, Store};

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
    due_emails_are_claimed_once_in_order_with_parties,
    unsent_emails_go_back_unless_claimed_again,
    concurrent_claims_never_share_an_email,
);

/// A fresh store with one organization and two users' mailboxes.
struct Outbox {
    store: Store,
    org: String,
    mailbox: String,
    other_mailbox: String,
    _dir: tempfile::TempDir,
}

impl Outbox {
    async fn start(backend: Backend) -> Outbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => dir.path().join("outbox.db").display().to_string(),
            Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
        };
        let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
        let store = Store::open(&url, cipher).await.expect("store opens");
        let org = store
            .create_organization("Contoso", None)
            .await
            .expect("organization")
            .id;
        let mut mailboxes = Vec::new();
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
            mailboxes.push(user.mailbox_id);
        }
        Outbox {
            store,
            org,
            mailbox: mailboxes[0].clone(),
            other_mailbox: mailboxes[1].clone(),
            _dir: dir,
        }
    }

    /// An email of `mailbox` in `status`, to two recipients; its id sorts by `n`.
    async fn email(&self, mailbox: &str, n: usize, status: EmailStatus) -> String {
        let t = Utc::now();
        let party = |role, address: &str| EmailParty {
            role,
            address: address.to_owned(),
            party_type: None,
            party_id: None,
        };
        let e = Email {
            id: format!("email-{n:04}"),
            org_id: self.org.clone(),
            subject: format!("Quote {n}"),
            body: Some(format!("Body {n}")),
            direction: EmailDirection::Outgoing,
            status,
            message_id: Some(format!("quote-{n}@contoso.com")),
            in_reply_to: None,
            tracking_token: None,
            correlation_method: None,
            regarding_type: None,
            regarding_id: None,
            mailbox_id: Some(mailbox.to_owned()),
            parties: vec![
                party(PartyRole::To, &format!("to-{n}@fabrikam.com")),
                party(PartyRole::Cc, &format!("cc-{n}@fabrikam.com")),
            ],
            status_reason: None,
            sent_at: None,
            received_at: None,
            created_at: t,
            updated_at: t,
        };
        self.store.create_email(&e).await.expect("email").id
    }

    async fn status(&self, id: &str) -> EmailStatus {
        self.store
            .get_email(&self.org, id)
            .await
            .expect("email")
            .status
    }

    async fn claim(&self, limit: i64) -> Vec<mailbridge_store::OutgoingEmail> {
        self.store
            .claim_outgoing(&self.org, &self.mailbox, Utc::now(), limit)
            .await
            .expect("claim")
    }
}

fn ids(claimed: &[mailbridge_store::OutgoingEmail]) -> Vec<String> {
    claimed.iter().map(|o| o.email.id.clone()).collect()
}

async fn due_emails_are_claimed_once_in_order_with_parties(backend: Backend) {
    let o = Outbox::start(backend).await;
    let mut due = Vec::new();
    for n in [5, 1, 4, 2, 3] {
        due.push(o.email(&o.mailbox, n, EmailStatus::PendingSend).await);
    }
    due.sort();
    // Not due: a draft, another mailbox's email, one waiting for its retry.
    o.email(&o.mailbox, 6, EmailStatus::Draft).await;
    let other = o.email(&o.other_mailbox, 7, EmailStatus::PendingSend).await;
    let later = o.email(&o.mailbox, 8, EmailStatus::PendingSend).await;
    o.store
        .mark_send_retry(&later, Utc::now() + chrono::Duration::hours(1), "busy")
        .await
        .unwrap();
    o.store
        .set_email_body_html(&due[0], Some("<p>Body 1</p>"))
        .await
        .unwrap();

    let first = o.claim(3).await;
    assert_eq!(ids(&first), due[..3], "the oldest three, in order");
    let e = &first[0];
    assert_eq!(e.email.status, EmailStatus::Sending);
    assert_eq!(e.body_html.as_deref(), Some("<p>Body 1</p>"));
    assert_eq!(e.send_attempts, 0);
    assert_eq!(e.email.updated_at, e.claimed_at);
    let roles: Vec<(PartyRole, &str)> = e
        .email
        .parties
        .iter()
        .map(|p| (p.role, p.address.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            (PartyRole::To, "to-1@fabrikam.com"),
            (PartyRole::Cc, "cc-1@fabrikam.com")
        ]
    );
    assert!(
        first[1]
            .email
            .parties
            .iter()
            .all(|p| p.address.contains("-2@"))
    );
    assert_eq!(first[1].body_html, None);

    let second = o.claim(50).await;
    assert_eq!(
        ids(&second),
        due[3..],
        "the rest, never the first three again"
    );
    assert!(o.claim(50).await.is_empty(), "nothing due is left");
    for id in &due {
        assert_eq!(o.status(id).await, EmailStatus::Sending);
    }
    assert_eq!(o.status(&other).await, EmailStatus::PendingSend);
    assert_eq!(o.status(&later).await, EmailStatus::PendingSend);
    let in_flight: Vec<String> = o
        .store
        .in_flight(&o.mailbox)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(in_flight, due, "a stop now leaves them for the recovery");
}

async fn unsent_emails_go_back_unless_claimed_again(backend: Backend) {
    let o = Outbox::start(backend).await;
    for n in 1..=4 {
        o.email(&o.mailbox, n, EmailStatus::PendingSend).await;
    }
    let claimed = o.claim(10).await;
    assert_eq!(claimed.len(), 4);
    let at = claimed[0].claimed_at;
    // The first was sent; the run stopped before the rest.
    o.store
        .mark_sent(&claimed[0].email.id, Utc::now())
        .await
        .unwrap();
    let all = ids(&claimed);
    let released = o.store.release_outgoing(&o.org, &all, at).await.unwrap();
    assert_eq!(released, 3, "only the unsent ones move");
    assert_eq!(o.status(&all[0]).await, EmailStatus::Sent);
    for id in &all[1..] {
        assert_eq!(o.status(id).await, EmailStatus::PendingSend);
    }
    // Claimed again by a later run: the first run's late release leaves them alone.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let again = o.claim(10).await;
    assert_eq!(ids(&again), all[1..]);
    assert_ne!(again[0].claimed_at, at);
    let late = o.store.release_outgoing(&o.org, &all, at).await.unwrap();
    assert_eq!(late, 0);
    for id in &all[1..] {
        assert_eq!(o.status(id).await, EmailStatus::Sending);
    }
    // Another organization's release touches nothing.
    let stranger = o
        .store
        .release_outgoing("another-org", &all, again[0].claimed_at)
        .await
        .unwrap();
    assert_eq!(stranger, 0);
    let own = o
        .store
        .release_outgoing(&o.org, &all, again[0].claimed_at)
        .await
        .unwrap();
    assert_eq!(own, 3);
    assert_eq!(o.claim(10).await.len(), 3, "due again");
}

async fn concurrent_claims_never_share_an_email(backend: Backend) {
    let o = Outbox::start(backend).await;
    let mut all = BTreeSet::new();
    for n in 0..120 {
        all.insert(o.email(&o.mailbox, n, EmailStatus::PendingSend).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (store, org, mailbox) = (o.store.clone(), o.org.clone(), o.mailbox.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_outgoing(&org, &mailbox, Utc::now(), 7)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                assert!(batch.len() <= 7, "a claim never passes its limit");
                mine.extend(batch.into_iter().map(|e| e.email.id));
            }
        });
    }
    let mut seen = BTreeSet::new();
    let mut count = 0;
    while let Some(mine) = tasks.join_next().await {
        let mine = mine.expect("claimer");
        count += mine.len();
        seen.extend(mine);
    }
    assert_eq!(count, all.len(), "no email was claimed twice");
    assert_eq!(seen, all, "every email was claimed");
}
