//! The ingest decisions, pure: given the facts of one message and what the store
//! knows, decide whether it is tracked, by which rule, and what it correlates to.
//! The engine gathers the facts and the look-ups; this module only decides, so the
//! decision trail records exactly what was computed.

pub mod correlation;
pub mod facts;
pub mod forward;
pub mod resolution;
pub mod token;
pub mod tracking;

pub use correlation::{Correlation, CorrelationLookup, correlate};
pub use facts::{Address, MessageFacts, fingerprint, normalize_subject};
pub use forward::{
    Attribution, ForwardHeaders, OriginalRecipient, RecipientSource, TrackedPart, attribute,
};
pub use resolution::{Candidate, resolve_address};
pub use token::TrackingTokenFormat;
pub use tracking::{FolderKind, Outcome, TrackingContext, TrackingDecision, TrackingRule, decide};
