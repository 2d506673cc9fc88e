//! Server-side synchronization of email end to end: the engine and the API in
//! this process, against the real Dovecot and SMTP servers of the test harness
//! and the testkit's Graph test server (Exchange Online) and EWS test server
//! (Exchange Server). `scenarios` runs the same scenarios on every host (`hosts`).

mod act;
mod act_ews;
mod act_graph;
mod autodiscover;
mod census;
mod common;
mod ews;
mod forward;
mod forward_exchange;
mod graph;
mod graph_notifications;
mod hosts;
mod incoming;
mod mail_events;
mod metrics;
mod outgoing;
mod restart;
mod router;
mod scenarios;
mod test_enable;
