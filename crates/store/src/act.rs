//! The store's side of appointments, contacts and tasks (ACT) sync, for the engine's
//! executor: the records a mailbox must consider with the facts its owner's filters
//! need, version-guarded record writes, the mapping table (`act_links`), the
//! collections with their sync tokens, the decision trail, the users' sync filters
//! and the organizations' ACT settings.
//!
//! **Version guard:** every record write adds one to the record's `version`. The
//! sync's writes name the version they planned from and write nothing when the row
//! has moved on ([`VersionedWrite::VersionMoved`]): the item is planned again, from
//! fresh facts, on the next run. Deletes leave tombstones, so a record deleted by
//! the API is still seen, and deleted on the server, by the next run.

mod decisions;
mod links;
mod records;
pub(crate) mod rows;

pub use decisions::{ActDecision, NewActDecision};
pub use links::{ActCollection, ActLink, ActLinkWrite};
pub use records::{ActCandidate, VersionedWrite};
