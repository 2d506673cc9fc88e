//! Test support for mailbridge: the real servers that `./scripts/test` starts.
//!
//! `scripts/test-servers` runs Dovecot (IMAP + LMTP), an SMTP server that relays into
//! Dovecot and records what it receives, Radicale (CalDAV/CardDAV) and PostgreSQL on
//! loopback, and exports their addresses as `MAILBRIDGE_TEST_*` variables.
//! [`TestServers::from_env`] reads them; its methods deliver mail, read what the SMTP
//! server received, add users and hand out fresh PostgreSQL databases.
//!
//! ```no_run
//! # async fn example() {
//! let servers = mailbridge_testkit::TestServers::from_env();
//! let bob = servers.user("bob");
//! servers
//!     .deliver(&bob.address, b"Subject: hello\r\n\r\nHi Bob\r\n")
//!     .await
//!     .expect("LMTP delivery");
//! # }
//! ```
//!
//! See docs/TESTING.md for the whole harness.

mod discovery_fixture;
pub mod ews_server;
pub mod fault_proxy;
pub mod graph_server;
mod headers;
pub mod hostile;
pub mod identity_server;
mod lmtp;
mod maildir;
mod postgres;
mod private_dovecot;
pub mod private_postfix;
mod private_postgres;
mod servers;
mod smtp_sink;
mod users;

pub use discovery_fixture::{DiscoveryFixture, HttpAnswer};
pub use lmtp::LmtpError;
pub use private_dovecot::PrivateDovecot;
pub use private_postgres::{PrivatePostgres, StopMode};
pub use servers::TestServers;
pub use smtp_sink::ReceivedMessage;
pub use users::{DOMAIN, PROVISIONED_USERS, TestUser};

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).
///
/// Another process may take it before the caller binds it; that is rare enough for
/// tests that start a server right away.
///
/// # Panics
/// When no port can be bound on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// Creates a new, empty database on the test PostgreSQL and returns its URL.
///
/// Shorthand for `TestServers::from_env().fresh_postgres_url()`.
pub async fn fresh_postgres_url() -> String {
    TestServers::from_env().fresh_postgres_url().await
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_port_is_bindable() {
        let port = super::free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
