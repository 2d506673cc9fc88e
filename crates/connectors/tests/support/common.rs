//! Helpers shared by the connector tests: configurations for the test servers,
//! unique users and messages, and a raw IMAP client playing "another mail program".

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mailbridge_connectors::{Auth, ImapConfig, SmtpConfig};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;
use mailbridge_testkit::{TestServers, TestUser};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[id.len() - 12..])
}

/// A user of this test only, so that mailbox assertions see nothing else.
pub async fn fresh_user(servers: &TestServers, prefix: &str) -> TestUser {
    let name = unique(prefix);
    let password = format!("pw-{name}");
    servers.add_user(&name, &password).await
}

pub fn password(user: &TestUser) -> Auth {
    Auth::Password {
        username: user.login.clone(),
        password: Secret::new(user.password.clone()),
    }
}

pub fn imap_config(addr: SocketAddr, auth: Auth) -> ImapConfig {
    ImapConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls: TlsPolicy::StartTlsIfOffered,
        auth,
        timeout: TIMEOUT,
        extra_roots: Vec::new(),
    }
}

pub fn imap_for(servers: &TestServers, user: &TestUser) -> ImapConfig {
    imap_config(servers.imap_addr(), password(user))
}

pub fn smtp_for(servers: &TestServers, auth: Option<Auth>) -> SmtpConfig {
    let addr = servers.smtp_addr();
    SmtpConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls: TlsPolicy::StartTlsIfOffered,
        auth,
        timeout: TIMEOUT,
        extra_roots: Vec::new(),
        hello_name: "mailbridge.test".to_owned(),
    }
}

/// A message with a unique Message-ID; returns (id, bytes).
pub fn message(from: &str, to: &str, subject: &str) -> (String, Vec<u8>) {
    let id = format!("<{}@mailbridge.test>", unique("m"));
    let raw = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {id}\r\n\
         Date: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nHello\r\n.a line that starts with a dot\r\nBye\r\n"
    );
    (id, raw.into_bytes())
}

pub fn has_message_id(bytes: &[u8], id: &str) -> bool {
    String::from_utf8_lossy(bytes).contains(&format!("Message-ID: {id}\r\n"))
}

/// A port where nothing listens (a moment ago).
pub fn closed_port() -> u16 {
    mailbridge_testkit::free_port()
}

/// Another mail program: raw IMAP commands, each checked for OK.
pub struct RawImap {
    reader: BufReader<TcpStream>,
    tag: u32,
}

impl RawImap {
    pub async fn login(addr: SocketAddr, user: &TestUser) -> RawImap {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut raw = RawImap {
            reader: BufReader::new(tcp),
            tag: 0,
        };
        let greeting = raw.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
        raw.ok(&format!("LOGIN {} {}", user.login, user.password))
            .await;
        raw
    }

    /// Runs `command` and returns its untagged lines; panics unless OK.
    pub async fn ok(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("r{}", self.tag);
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .expect("write");
        let mut untagged = Vec::new();
        loop {
            let line = self.line().await;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{command}: {line}");
                return untagged;
            }
            untagged.push(line);
        }
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(TIMEOUT, self.reader.read_line(&mut line))
            .await
            .expect("an answer in time")
            .expect("read");
        line
    }
}
