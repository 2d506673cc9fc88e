//! Appointments, contacts and tasks (ACT): the two-sided sync between the store's
//! records and the items of a mail system, as pure data and decisions.
//!
//! The flow is *plan, then execute*: [`planner::plan_item`] turns the mapping row, the
//! store's side and the server's side of one item into [`planner::Action`]s, each with
//! its reason; the engine executes them with version-guarded writes. Where both sides
//! changed, [`merge::merge`] combines them by field class. docs/ACT-SYNC.md holds the
//! decision table and the conflict policy.

pub mod filters;
pub mod fingerprint;
pub mod merge;
pub mod model;
pub mod planner;
pub mod records;

#[cfg(test)]
mod samples;

pub use filters::{RecordFacts, SyncFilters, matches};
pub use fingerprint::{Fingerprint, fingerprint};
pub use merge::{FieldClass, MergeOutcome, Side, merge};
pub use model::{ActItem, ActKind};
pub use planner::{Action, ItemFacts, Link, OrgSettings, Resolution, plan_item};
