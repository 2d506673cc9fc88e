//! "Sync items with this organization only": the organization claim on each
//! synchronized collection. A run writes its organization's claim where there is
//! none; finding another organization's claim stops ACT with the "configured with
//! another organization" error, unless the mailbox's box is ticked and Test & Enable
//! ran after that claim was written, which takes the claim over.
//!
//! Why Test & Enable too: two organizations that both tick the box would otherwise
//! take the claim from each other on every run. Ticking the box and running Test &
//! Enable is the administrator's decision to take the mailbox over; the organization
//! that lost it stops with the alert until its own administrator decides the same.

use chrono::{DateTime, Duration, Utc};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::mailbox::Mailbox;

use super::server::{ActServer, OrgClaim};

/// The words of the alert, as Dynamics administrators know them.
pub const CONFIGURED_WITH_ANOTHER_ORGANIZATION: &str = "configured with another organization";

/// What a claim found on a collection means for this mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimCheck {
    /// No claim: this organization writes its own.
    Unclaimed,
    Ours,
    /// Another organization's claim that this mailbox takes over.
    TakeOver,
    /// Another organization's claim that stops ACT.
    Foreign,
}

/// The meaning of `claim` for `mailbox` of organization `org`.
pub fn check(org: &str, mailbox: &Mailbox, claim: Option<&OrgClaim>) -> ClaimCheck {
    match claim {
        None => ClaimCheck::Unclaimed,
        Some(c) if c.organization == org => ClaimCheck::Ours,
        Some(c) if takes_over(mailbox, c) => ClaimCheck::TakeOver,
        Some(_) => ClaimCheck::Foreign,
    }
}

/// The box is ticked and Test & Enable ran after the claim was written. The claim's
/// time has whole seconds only, so a test must come a full second later.
fn takes_over(mailbox: &Mailbox, claim: &OrgClaim) -> bool {
    mailbox.sync_with_this_org_only
        && mailbox
            .tested_at
            .is_some_and(|t| t >= claim.claimed_at + Duration::seconds(1))
}

/// The permanent, mailbox-wide error of a foreign claim.
pub fn foreign_claim_error(claim: &OrgClaim) -> SyncError {
    SyncError {
        class: ErrorClass::Permanent,
        scope: ErrorScope::Mailbox,
        message: format!(
            "the mailbox is {CONFIGURED_WITH_ANOTHER_ORGANIZATION}: organization {} claimed its calendars, task lists and address books for synchronization on {}",
            claim.organization,
            claim.claimed_at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        fix: Some(
            "Tick \"Sync items with this organization only\" on the mailbox to take it over from the other organization, then run Test & Enable".to_owned(),
        ),
    }
}

/// Checks every collection the server synchronizes and writes this organization's
/// claim where there is none or where the mailbox takes it over.
///
/// # Errors
/// The foreign-claim error, or the server's.
pub async fn enforce<S: ActServer>(
    server: &S,
    org: &str,
    mailbox: &Mailbox,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    let mut hrefs: Vec<String> = Vec::new();
    let mut to_write = Vec::new();
    for c in server.collections() {
        if hrefs.contains(&c.href) {
            continue;
        }
        hrefs.push(c.href.clone());
        let claim = server.claim(&c).await?;
        match check(org, mailbox, claim.as_ref()) {
            ClaimCheck::Ours => {}
            ClaimCheck::Unclaimed => to_write.push(c),
            ClaimCheck::TakeOver => {
                tracing::info!(mailbox = %mailbox.id, collection = %c.href, "taking another organization's claim over");
                to_write.push(c);
            }
            ClaimCheck::Foreign => {
                let claim = claim.unwrap_or_else(|| OrgClaim {
                    organization: String::new(),
                    claimed_at: now,
                });
                return Err(foreign_claim_error(&claim));
            }
        }
    }
    let ours = OrgClaim {
        organization: org.to_owned(),
        claimed_at: now,
    };
    for c in &to_write {
        server.set_claim(c, &ours).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn mailbox(ticked: bool, tested_at: Option<&str>) -> Mailbox {
        let t = at("2026-01-01T00:00:00Z");
        Mailbox {
            id: "m".into(),
            org_id: "org-a".into(),
            name: "M".into(),
            owner_type: mailbridge_domain::OwnerType::User,
            owner_id: "u".into(),
            email_address: None,
            profile_id: None,
            incoming_method: mailbridge_domain::DeliveryMethod::None,
            outgoing_method: mailbridge_domain::DeliveryMethod::None,
            act_method: mailbridge_domain::DeliveryMethod::ServerSideSync,
            approval_status: mailbridge_domain::ApprovalStatus::Approved,
            incoming_status: mailbridge_domain::WorkloadStatus::NotRun,
            outgoing_status: mailbridge_domain::WorkloadStatus::NotRun,
            act_status: mailbridge_domain::WorkloadStatus::NotRun,
            incoming_enabled: false,
            outgoing_enabled: false,
            act_enabled: true,
            process_email_from: None,
            sync_with_this_org_only: ticked,
            track_sent_items: false,
            is_forward_mailbox: false,
            delete_after_processing: false,
            username: None,
            password_set: true,
            tested_at: tested_at.map(at),
            discovered_incoming_location: None,
            discovered_outgoing_location: None,
            discovered_source: None,
            discovered_at: None,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn claims_are_kept_taken_over_or_refused() {
        let claim = |org: &str| OrgClaim {
            organization: org.into(),
            claimed_at: at("2026-02-01T10:00:00Z"),
        };
        let cases = [
            (mailbox(false, None), None, ClaimCheck::Unclaimed),
            (mailbox(false, None), Some(claim("org-a")), ClaimCheck::Ours),
            (
                mailbox(false, None),
                Some(claim("org-b")),
                ClaimCheck::Foreign,
            ),
            // Ticked, but tested before the other organization claimed it.
            (
                mailbox(true, Some("2026-01-31T10:00:00Z")),
                Some(claim("org-b")),
                ClaimCheck::Foreign,
            ),
            // Within the claim's second: not known to be after it.
            (
                mailbox(true, Some("2026-02-01T10:00:00.500Z")),
                Some(claim("org-b")),
                ClaimCheck::Foreign,
            ),
            (
                mailbox(true, Some("2026-02-01T10:00:02Z")),
                Some(claim("org-b")),
                ClaimCheck::TakeOver,
            ),
            // Tested after the claim, but the box is not ticked.
            (
                mailbox(false, Some("2026-02-01T10:00:02Z")),
                Some(claim("org-b")),
                ClaimCheck::Foreign,
            ),
        ];
        for (m, c, expected) in cases {
            assert_eq!(check("org-a", &m, c.as_ref()), expected, "{m:?} {c:?}");
        }
        let e = foreign_claim_error(&claim("org-b"));
        assert!(e.message.contains(CONFIGURED_WITH_ANOTHER_ORGANIZATION));
        assert!(e.message.contains("org-b"));
        assert!(!e.message.ends_with('.'));
    }
}
