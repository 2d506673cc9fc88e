//! What the listener's tests share: a SQLite store with router mailboxes
//! sales@ and support@ of contoso.com (and an ordinary mailbox plain@), and the
//! listener on loopback (SMTP and LMTP) trusting 127.0.0.1.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use lettre::Address;
use mailbridge_domain::{DeliveryMethod, Role, TrackingFilter};
use mailbridge_engine::inbound::{InboundConfig, InboundListener};
use mailbridge_store::{Cipher, Db, InboundMessage, NewUser, Store};
use tokio::task::JoinHandle;

/// The listener's command and data timeouts in tests.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct World {
    pub store: Store,
    pub org: String,
    pub sales: String,
    pub support: String,
    pub smtp: SocketAddr,
    pub lmtp: SocketAddr,
    pub tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A SQLite store with router mailboxes sales@ and support@ (and an ordinary
/// mailbox plain@), and a listener on loopback configured by `configure`.
pub async fn world(configure: impl FnOnce(&mut InboundConfig)) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
    let store = Store::open(&dir.path().join("inbound.db").display().to_string(), cipher)
        .await
        .expect("store opens");
    let org = store
        .create_organization("Contoso", None)
        .await
        .expect("org")
        .id;
    let mut ids = Vec::new();
    for (name, router) in [("sales", true), ("support", true), ("plain", false)] {
        ids.push(mailbox(&store, &org, &format!("{name}@contoso.com"), router).await);
    }
    let mut config = InboundConfig::disabled("mx.test");
    config.smtp_listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.lmtp_listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.allowed_clients = vec!["127.0.0.1/32".parse().expect("cidr")];
    config.max_message_size = 2_000;
    config.command_timeout = TIMEOUT;
    config.data_timeout = TIMEOUT;
    config.router_cache = Duration::ZERO;
    configure(&mut config);
    let listener = InboundListener::bind(store.clone(), config)
        .await
        .expect("bind");
    let smtp = listener.smtp_addr().expect("smtp");
    let lmtp = listener.lmtp_addr().expect("lmtp");
    World {
        store,
        org,
        sales: ids[0].clone(),
        support: ids[1].clone(),
        smtp,
        lmtp,
        tasks: listener.spawn(),
        _dir: dir,
    }
}

/// A user's mailbox with this address, taking its mail from the listener if `router`.
pub async fn mailbox(store: &Store, org: &str, email: &str, router: bool) -> String {
    let user = store
        .create_user(
            org,
            NewUser {
                full_name: email.to_owned(),
                email: Some(email.to_owned()),
                role: Role::User,
                tracking_filter: TrackingFilter::None,
            },
        )
        .await
        .expect("user");
    if router {
        let mut m = store
            .get_mailbox(org, &user.mailbox_id)
            .await
            .expect("mailbox");
        m.incoming_method = DeliveryMethod::Router;
        store.update_mailbox(&m, None).await.expect("update");
    }
    user.mailbox_id
}

/// Sets an organization's `max_message_size_kb`.
pub async fn set_message_limit(store: &Store, org: &str, kb: i64) {
    let mut s = store.get_email_settings(org).await.expect("settings");
    s.max_message_size_kb = kb;
    store.update_email_settings(org, &s).await.expect("saved");
}

impl World {
    pub async fn stored(&self, mailbox: &str) -> Vec<InboundMessage> {
        self.store
            .inbound_messages_of_mailbox(&self.org, mailbox)
            .await
            .expect("list")
    }

    pub async fn sqlite(&self, sql: &'static str) {
        let Db::Sqlite(pool) = self.store.db() else {
            panic!("a SQLite store")
        };
        sqlx::query(sql).execute(pool).await.expect(sql);
    }
}

pub fn address(s: &str) -> Address {
    s.parse().expect("address")
}
