//! The mail host a scenario runs against: the test Dovecot with the SMTP relay
//! (IMAP/SMTP), Exchange Online as the testkit's Graph test server behind its
//! test identity provider, or Exchange Server as the testkit's EWS test server. Scenarios (scenarios.rs) are written once against
//! [`MailHost`] and run on each.

use std::time::Duration;

use mailbridge_connectors::{ImapConfig, ImapSession, SpecialUse};
use mailbridge_testkit::TestUser;
use mailbridge_testkit::ews_server::{EwsTestServer, ServiceAccount};
use mailbridge_testkit::graph_server::GraphTestServer;
use mailbridge_testkit::identity_server::{AppRegistration, TestIdentityProvider};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, unique, wait};

/// A user of the World whose mailbox is on the host, on its profile, approved.
pub struct Member {
    /// The user as the API answered its creation.
    pub user: Value,
    pub mailbox: String,
    pub address: String,
    /// The Dovecot login (IMAP/SMTP only).
    login: Option<TestUser>,
}

/// A folder of a member's mailbox.
#[derive(Debug, Clone, Copy)]
pub enum Folder<'a> {
    /// The Sent folder (IMAP's `\Sent` special use, Graph's Sent Items).
    Sent,
    /// A folder under the root, by its name (e.g. `Undeliverable`).
    Named(&'a str),
}

/// A message the connector sent out, as the host received it.
#[derive(Debug, Clone)]
pub struct SentOut {
    /// The address of the account it was sent as.
    pub sender: String,
    /// Every recipient, as the host saw them.
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

impl SentOut {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// What a scenario needs of the mail host.
pub trait MailHost {
    fn world(&self) -> &World;

    /// A new user with a mailbox on this host (tracking filter `filter`).
    async fn member(&self, filter: &str) -> Member;

    /// A message arrives in the member's Inbox.
    async fn deliver(&self, to: &Member, raw: &[u8]);

    /// The member files a message into `folder` (created when missing) from
    /// their mail client.
    async fn file(&self, to: &Member, folder: &str, raw: &[u8]);

    /// The raw messages of a folder (empty when the folder does not exist).
    async fn messages(&self, of: &Member, folder: Folder<'_>) -> Vec<Vec<u8>>;

    /// The member sent a message from another client: a copy appears in Sent only.
    async fn put_in_sent(&self, of: &Member, raw: &[u8]);

    /// Waits for the message with `message_id` that the connector sent out.
    async fn wait_sent_out(&self, from: &Member, message_id: &str, timeout: Duration) -> SentOut;

    /// How many messages of the folder hold `message_id`.
    async fn count_in(&self, of: &Member, folder: Folder<'_>, message_id: &str) -> usize {
        self.messages(of, folder)
            .await
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains(message_id))
            .count()
    }
}

// ---------------------------------------------------------------------------
// Dovecot (IMAP) and the SMTP relay.

/// The test Dovecot and SMTP relay, on the World's `imap_smtp` profile.
pub struct Dovecot {
    pub w: World,
}

impl Dovecot {
    pub async fn start(backend: Backend) -> Dovecot {
        Dovecot {
            w: World::start(backend, fast_engine()).await,
        }
    }

    fn login(m: &Member) -> &TestUser {
        m.login.as_ref().expect("a member made by the Dovecot host")
    }

    async fn session(&self, m: &Member) -> ImapSession {
        ImapSession::connect(&imap_for(&self.w, Self::login(m)))
            .await
            .unwrap()
    }

    /// The name of `folder` on the server, when it exists.
    async fn folder_name(session: &mut ImapSession, folder: Folder<'_>) -> Option<String> {
        let folders = session.list_folders().await.unwrap();
        match folder {
            Folder::Sent => folders
                .into_iter()
                .find(|f| f.special_use == Some(SpecialUse::Sent))
                .map(|f| f.name),
            Folder::Named(name) => folders.into_iter().find(|f| f.name == name).map(|f| f.name),
        }
    }
}

impl MailHost for Dovecot {
    fn world(&self) -> &World {
        &self.w
    }

    async fn member(&self, filter: &str) -> Member {
        let (user, mailbox, login) = self.w.member(filter).await;
        Member {
            user,
            mailbox,
            address: login.address.clone(),
            login: Some(login),
        }
    }

    async fn deliver(&self, to: &Member, raw: &[u8]) {
        self.w.servers.deliver(&to.address, raw).await.unwrap();
    }

    async fn file(&self, to: &Member, folder: &str, raw: &[u8]) {
        let mut session = self.session(to).await;
        if Self::folder_name(&mut session, Folder::Named(folder))
            .await
            .is_none()
        {
            let mut raw_imap = RawImap::login(&self.w, Self::login(to)).await;
            raw_imap.command(&format!("CREATE \"{folder}\"")).await;
        }
        session.append(folder, &[], raw).await.unwrap();
        session.logout().await;
    }

    async fn messages(&self, of: &Member, folder: Folder<'_>) -> Vec<Vec<u8>> {
        let mut session = self.session(of).await;
        let out = match Self::folder_name(&mut session, folder).await {
            Some(name) => {
                session.select(&name).await.unwrap();
                session.fetch_after(0, 10_000).await.unwrap()
            }
            None => Vec::new(),
        };
        session.logout().await;
        out.into_iter().map(|m| m.bytes).collect()
    }

    async fn put_in_sent(&self, of: &Member, raw: &[u8]) {
        let mut session = self.session(of).await;
        let sent = Self::folder_name(&mut session, Folder::Sent)
            .await
            .expect("a \\Sent folder");
        session.append(&sent, &["\\Seen"], raw).await.unwrap();
        session.logout().await;
    }

    async fn wait_sent_out(&self, from: &Member, message_id: &str, timeout: Duration) -> SentOut {
        let m = self
            .w
            .servers
            .wait_smtp_message(timeout, |m| m.text().contains(message_id))
            .await;
        // The relay records the login the client authenticated as (the bare name).
        let login = Self::login(from);
        let sender = match m.auth_user.as_deref() {
            Some(u) if u == login.login => login.address.clone(),
            other => other.unwrap_or_default().to_owned(),
        };
        SentOut {
            sender,
            recipients: m.rcpt_tos,
            raw: m.raw,
        }
    }
}

/// The IMAP settings of a Dovecot user, for the test's own sessions.
pub fn imap_for(w: &World, login: &TestUser) -> ImapConfig {
    ImapConfig {
        host: "127.0.0.1".into(),
        port: w.servers.imap_addr().port(),
        tls: mailbridge_domain::location::TlsPolicy::StartTlsIfOffered,
        auth: mailbridge_connectors::Auth::Password {
            username: login.login.clone(),
            password: mailbridge_domain::secret::Secret::new(login.password.clone()),
        },
        timeout: Duration::from_secs(10),
        extra_roots: Vec::new(),
    }
}

/// A minimal line-based IMAP client, standing for the user's mail client.
pub struct RawImap {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    tag: u32,
}

impl RawImap {
    pub async fn login(w: &World, login: &TestUser) -> RawImap {
        let stream = tokio::net::TcpStream::connect(w.servers.imap_addr())
            .await
            .unwrap();
        let mut c = RawImap {
            stream: tokio::io::BufReader::new(stream),
            tag: 0,
        };
        c.line().await;
        c.command(&format!("LOGIN {} {}", login.login, login.password))
            .await;
        c
    }

    async fn line(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut l = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut l))
            .await
            .unwrap()
            .unwrap();
        l
    }

    /// Sends one command and waits for its tagged OK (panics on anything else).
    pub async fn command(&mut self, cmd: &str) {
        use tokio::io::AsyncWriteExt;
        self.tag += 1;
        let tag = format!("c{}", self.tag);
        self.stream
            .get_mut()
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await
            .unwrap();
        loop {
            let l = self.line().await;
            if l.starts_with(&tag) {
                assert!(l.starts_with(&format!("{tag} OK")), "{cmd}: {l}");
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Exchange Online: the Graph test server and the test identity provider.

/// The application id registered with the test identity provider.
pub const GRAPH_APP: &str = "6f0e0b8e-2b3c-4c54-9f1d-8d2b9f0a1c11";

/// A World with an `exchange_online` profile pointing at a test identity
/// provider and a Graph test server.
pub struct Graph {
    pub w: World,
    /// Kept running for the test's life (not every test looks at it).
    #[allow(dead_code)]
    pub idp: TestIdentityProvider,
    pub graph: GraphTestServer,
    #[allow(dead_code)]
    pub tenant: String,
    /// The `exchange_online` profile (the World's own is the Dovecot one).
    pub profile: String,
}

impl Graph {
    /// The certificate generated through the API is registered with the
    /// provider when `register` says so.
    pub async fn start(backend: Backend, register: bool) -> Graph {
        let w = World::start(backend, fast_engine()).await;
        let idp = TestIdentityProvider::start().await;
        let tenant = idp.add_tenant();
        let graph = GraphTestServer::start_with(|url| idp.graph_token_check(&tenant, url)).await;
        let graph_url = graph.base_url().trim_end_matches("/v1.0").to_owned();
        let cert = w
            .post(
                "/certificates/generate",
                json!({"name": "Exchange Online", "validity_days": 30}),
            )
            .await;
        let cert_id = cert["id"].as_str().unwrap().to_owned();
        let app = if register {
            let pem = w
                .client
                .get(format!(
                    "{}/api/v1/orgs/{}/certificates/{cert_id}/certificate.pem",
                    w.base, w.org
                ))
                .bearer_auth(&w.admin)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            AppRegistration::new(GRAPH_APP).with_certificate_pem(&pem)
        } else {
            AppRegistration::new(GRAPH_APP)
        };
        idp.register_app(&tenant, app);
        let profile = w
            .post(
                "/email-server-profiles",
                json!({"name": "Exchange Online", "server_type": "exchange_online", "allow_plaintext": true,
                       "application_id": GRAPH_APP, "use_default_tenant_id": false, "tenant_id": tenant,
                       "certificate_id": cert_id, "authority_url": idp.authority_url(), "graph_url": graph_url,
                       "move_failed_to_undeliverable": true}),
            )
            .await;
        let profile = profile["id"].as_str().unwrap().to_owned();
        Graph {
            w,
            idp,
            graph,
            tenant,
            profile,
        }
    }

    /// The Graph folder of `folder`: a well-known name or a display name.
    fn folder<'a>(folder: Folder<'a>) -> &'a str {
        match folder {
            Folder::Sent => "sentitems",
            Folder::Named(name) => name,
        }
    }
}

impl MailHost for Graph {
    fn world(&self) -> &World {
        &self.w
    }

    async fn member(&self, filter: &str) -> Member {
        let address = format!("{}@contoso.example", unique("g"));
        self.graph.add_user(&address);
        let w = &self.w;
        let user = w
            .post("/users", json!({"full_name": format!("User {address}"), "email": address, "tracking_filter": filter}))
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        w.patch(
            &format!("/mailboxes/{mailbox}"),
            json!({"profile_id": self.profile}),
        )
        .await;
        let (status, v) = w
            .try_call(
                Method::POST,
                &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
                json!({"ids": [mailbox]}),
                &w.approver,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        Member {
            user,
            mailbox,
            address,
            login: None,
        }
    }

    async fn deliver(&self, to: &Member, raw: &[u8]) {
        self.graph.deliver(&to.address, "inbox", raw);
    }

    async fn file(&self, to: &Member, folder: &str, raw: &[u8]) {
        if self.graph.folder_id(&to.address, folder).is_none() {
            self.graph.create_folder(&to.address, None, folder);
        }
        self.graph.deliver(&to.address, folder, raw);
    }

    async fn messages(&self, of: &Member, folder: Folder<'_>) -> Vec<Vec<u8>> {
        self.graph
            .messages_in(&of.address, Self::folder(folder))
            .into_iter()
            .map(|m| m.mime)
            .collect()
    }

    async fn put_in_sent(&self, of: &Member, raw: &[u8]) {
        let id = self.graph.deliver(&of.address, "sentitems", raw);
        self.graph.set_read(&of.address, &id, true);
    }

    async fn wait_sent_out(&self, _from: &Member, message_id: &str, timeout: Duration) -> SentOut {
        let s = wait("the message sent through sendMail", timeout, || async {
            self.graph
                .sent_mail()
                .into_iter()
                .find(|s| String::from_utf8_lossy(&s.mime).contains(message_id))
        })
        .await;
        SentOut {
            sender: s.from_upn,
            recipients: s.recipients,
            raw: s.mime,
        }
    }
}

// ---------------------------------------------------------------------------
// Exchange Server: the EWS test server, a service account with impersonation.

/// The service account of the `exchange_server` profile.
pub const EWS_ACCOUNT: &str = "svc-mailbridge@contoso.example";
pub const EWS_PASSWORD: &str = "pw-ews-service-account";

/// A World with an `exchange_server` profile whose service account (Basic)
/// acts as each mailbox of an EWS test server by impersonation.
pub struct Ews {
    pub w: World,
    pub ews: EwsTestServer,
    /// The `exchange_server` profile (the World's own is the Dovecot one).
    pub profile: String,
}

impl Ews {
    pub async fn start(backend: Backend) -> Ews {
        Ews::start_with(
            backend,
            ServiceAccount::new(EWS_ACCOUNT, EWS_PASSWORD).impersonating_all(),
        )
        .await
    }

    /// With the service account as given (e.g. impersonating only some mailboxes).
    pub async fn start_with(backend: Backend, account: ServiceAccount) -> Ews {
        let w = World::start(backend, fast_engine()).await;
        let ews = EwsTestServer::start().await;
        ews.add_service_account(account);
        let profile = w
            .post(
                "/email-server-profiles",
                json!({"name": "Exchange 2019", "server_type": "exchange_server", "auto_discover": false,
                       "allow_plaintext": true, "authentication_type": "credentials_specified_in_profile",
                       "incoming_server_location": ews.url(), "outgoing_server_location": ews.url(),
                       "incoming_username": EWS_ACCOUNT, "incoming_password": EWS_PASSWORD,
                       "move_failed_to_undeliverable": true}),
            )
            .await;
        let profile = profile["id"].as_str().unwrap().to_owned();
        Ews { w, ews, profile }
    }

    /// The test server's name of `folder`: a distinguished name or a path.
    fn folder<'a>(folder: Folder<'a>) -> &'a str {
        match folder {
            Folder::Sent => "sentitems",
            Folder::Named(name) => name,
        }
    }
}

impl MailHost for Ews {
    fn world(&self) -> &World {
        &self.w
    }

    async fn member(&self, filter: &str) -> Member {
        let address = format!("{}@contoso.example", unique("e"));
        self.ews.add_mailbox(&address, &format!("User {address}"));
        let w = &self.w;
        let user = w
            .post("/users", json!({"full_name": format!("User {address}"), "email": address, "tracking_filter": filter}))
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        w.patch(
            &format!("/mailboxes/{mailbox}"),
            json!({"profile_id": self.profile}),
        )
        .await;
        let (status, v) = w
            .try_call(
                Method::POST,
                &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
                json!({"ids": [mailbox]}),
                &w.approver,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        Member {
            user,
            mailbox,
            address,
            login: None,
        }
    }

    async fn deliver(&self, to: &Member, raw: &[u8]) {
        self.ews.deliver(&to.address, "inbox", raw);
    }

    async fn file(&self, to: &Member, folder: &str, raw: &[u8]) {
        if self.ews.folder_id(&to.address, folder).is_none() {
            self.ews.create_folder(&to.address, None, folder);
        }
        self.ews.deliver(&to.address, folder, raw);
    }

    async fn messages(&self, of: &Member, folder: Folder<'_>) -> Vec<Vec<u8>> {
        self.ews
            .items_in(&of.address, Self::folder(folder))
            .into_iter()
            .filter_map(|i| i.mime)
            .collect()
    }

    async fn put_in_sent(&self, of: &Member, raw: &[u8]) {
        let id = self.ews.deliver(&of.address, "sentitems", raw);
        self.ews.set_read(&of.address, &id, true);
    }

    async fn wait_sent_out(&self, _from: &Member, message_id: &str, timeout: Duration) -> SentOut {
        let s = wait("the message sent through EWS", timeout, || async {
            self.ews
                .sent()
                .into_iter()
                .find(|s| String::from_utf8_lossy(&s.mime).contains(message_id))
        })
        .await;
        SentOut {
            sender: s.mailbox,
            recipients: s.recipients,
            raw: s.mime,
        }
    }
}
