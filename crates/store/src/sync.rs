//! The engine's side of the store: leases on mailboxes, per-folder sync state, the
//! ingest transaction with its decision trail, the outgoing queue, job claims and
//! workload health.

mod census;
mod decisions;
mod discovery;
mod folders;
mod graph_items;
mod ingest;
mod jobs;
mod leases;
mod outbox;
mod workloads;

pub use census::CensusState;
pub use decisions::Decision;
pub(crate) use decisions::SELECT as DECISIONS_SELECT;
pub use folders::{FolderState, TrackedFolder};
pub use ingest::{
    AttachmentInfo, AttachmentWrite, BatchLookups, IngestWrite, LookupKeys, Lookups,
    NewIncomingEmail,
};
pub use leases::DueWork;
pub use outbox::OutgoingEmail;
pub use workloads::Workload;
