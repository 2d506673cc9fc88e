//! The fault suite (docs/RELIABILITY.md): the real binary run as child processes
//! against the test servers on loopback, faults injected at points drawn from a
//! seeded generator (`MAILBRIDGE_FAULT_SEED` replays a run), and after each run
//! the figures printed and checked: faults injected, messages, lost, duplicated.

mod deployment;
mod kill9;
mod latency;
mod lease;
mod pg_restart;
#[path = "../support/mod.rs"]
mod support;
