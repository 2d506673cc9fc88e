//! Server-side synchronization of email end to end: the engine and the API in
//! this process, against the real Dovecot and SMTP servers of the test harness.

mod autodiscover;
mod common;
mod graph;
mod incoming;
mod mail_events;
mod metrics;
mod outgoing;
mod restart;
mod test_enable;
