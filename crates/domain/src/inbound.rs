//! The inbound listener's pure half (the "email router" push route): the SMTP
//! (RFC 5321) and LMTP (RFC 2033) server state machine and the recipient check.
//! Bytes are read and written by the engine; nothing here does I/O.
//!
//! Authentication policy: `AUTH PLAIN` and `AUTH LOGIN` are offered and accepted only
//! on a TLS-protected connection (after `STARTTLS`), because both send the password
//! in clear. A client whose address is on the allow-list needs no authentication at
//! all. Every other client is answered `530 5.7.0` at `MAIL FROM`.

pub mod cidr;
pub mod command;
pub mod recipient;
pub mod reply;
pub mod session;

pub use recipient::{RecipientMatch, RouterAddresses, Tag};
pub use reply::Reply;
pub use session::{DeliveryOutcome, Envelope, Output, Protocol, Session, SessionConfig};
