//! Whether a message is tracked, by which rule, and why — the answer the decision
//! trail records for every message the engine looks at.

use chrono::{DateTime, Utc};

use super::correlation::Correlation;
use crate::{CorrelationMethod, PartyType, RegardingType, TrackingFilter};

/// Where the message was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderKind {
    Inbox,
    /// A folder mapped to a regarding record (folder-level tracking).
    Tracked {
        regarding_type: RegardingType,
        regarding_id: String,
    },
    Sent,
}

/// What the decision needs besides the message.
#[derive(Debug, Clone)]
pub struct TrackingContext<'a> {
    pub filter: TrackingFilter,
    pub folder: &'a FolderKind,
    /// The later of the profile's and the mailbox's start dates.
    pub start: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub has_tracking_keyword: bool,
    /// The email that already holds this Message-ID (or fingerprint).
    pub already_tracked: Option<&'a str>,
    pub correlation: &'a Correlation,
    /// What the other side resolved to: the sender of an incoming message, the
    /// best-resolved recipient of a sent one.
    pub counterpart: Option<PartyType>,
}

/// The rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingRule {
    BeforeStartDate,
    AlreadyTracked,
    TrackingKeyword,
    TrackedFolder,
    All,
    Reply,
    KnownParty,
    EmailEnabledRecord,
    FilterNone,
    NotAReply,
    NotFromKnownParty,
    NotFromEmailEnabledRecord,
}

impl TrackingRule {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingRule::BeforeStartDate => "before_start_date",
            TrackingRule::AlreadyTracked => "already_tracked",
            TrackingRule::TrackingKeyword => "tracking_keyword",
            TrackingRule::TrackedFolder => "tracked_folder",
            TrackingRule::All => "filter_all",
            TrackingRule::Reply => "reply_to_tracked_email",
            TrackingRule::KnownParty => "from_known_party",
            TrackingRule::EmailEnabledRecord => "from_email_enabled_record",
            TrackingRule::FilterNone => "filter_none",
            TrackingRule::NotAReply => "not_a_reply",
            TrackingRule::NotFromKnownParty => "not_from_known_party",
            TrackingRule::NotFromEmailEnabledRecord => "not_from_email_enabled_record",
        }
    }
}

/// What happens to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new email activity.
    Track,
    /// The email exists (another mailbox, an earlier sync): link this mailbox to it.
    Link,
    Skip,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Track => "tracked",
            Outcome::Link => "linked",
            Outcome::Skip => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingDecision {
    pub outcome: Outcome,
    pub rule: TrackingRule,
    /// A sentence for "why was this (not) tracked?".
    pub reason: String,
}

fn decision(outcome: Outcome, rule: TrackingRule, reason: impl Into<String>) -> TrackingDecision {
    TrackingDecision {
        outcome,
        rule,
        reason: reason.into(),
    }
}

/// Decides, in this order: the start date; one Message-ID one email; a tracking
/// keyword or a tracked folder (tracked whatever the filter); then the owner's
/// tracking filter.
pub fn decide(ctx: &TrackingContext<'_>) -> TrackingDecision {
    use Outcome::*;
    use TrackingRule::*;
    if let (Some(start), Some(received)) = (ctx.start, ctx.received_at)
        && received < start
    {
        return decision(
            Skip,
            BeforeStartDate,
            format!(
                "received {} before the start date {}",
                received.to_rfc3339(),
                start.to_rfc3339()
            ),
        );
    }
    if let Some(email) = ctx.already_tracked {
        return decision(
            Link,
            AlreadyTracked,
            format!("the same message is already tracked as email {email}"),
        );
    }
    if ctx.has_tracking_keyword {
        return decision(Track, TrackingKeyword, "tagged with the tracking keyword");
    }
    if let FolderKind::Tracked {
        regarding_type,
        regarding_id,
    } = ctx.folder
    {
        return decision(
            Track,
            TrackedFolder,
            format!("in a folder tracked to {regarding_type} {regarding_id}"),
        );
    }
    let is_reply = ctx.correlation.method != CorrelationMethod::None;
    let party = ctx.counterpart;
    let known = matches!(
        party,
        Some(PartyType::Contact | PartyType::Account | PartyType::Lead)
    );
    match ctx.filter {
        TrackingFilter::None => decision(Skip, FilterNone, "the owner's tracking filter is none"),
        TrackingFilter::All => decision(Track, All, "the owner tracks all email"),
        TrackingFilter::RepliesToTrackedEmail if is_reply => {
            decision(Track, Reply, ctx.correlation.reason.clone())
        }
        TrackingFilter::RepliesToTrackedEmail => decision(
            Skip,
            NotAReply,
            format!(
                "the owner tracks replies to tracked email only, and {}",
                ctx.correlation.reason
            ),
        ),
        TrackingFilter::KnownParties if known => decision(
            Track,
            KnownParty,
            format!(
                "the other party is a known {}",
                party.map_or("", |p| p.as_str())
            ),
        ),
        TrackingFilter::KnownParties => decision(
            Skip,
            NotFromKnownParty,
            "the owner tracks email from contacts, accounts and leads only, and the other party is none of them",
        ),
        TrackingFilter::EmailEnabledRecords if party.is_some() => decision(
            Track,
            EmailEnabledRecord,
            format!("the other party is a {}", party.map_or("", |p| p.as_str())),
        ),
        TrackingFilter::EmailEnabledRecords => decision(
            Skip,
            NotFromEmailEnabledRecord,
            "the owner tracks email from email-enabled records only, and the other party matches no record",
        ),
    }
}

#[cfg(test)]
mod tests;
