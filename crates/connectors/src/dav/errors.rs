//! CalDAV/CardDAV failures: a lost race on a version-guarded write is its own variant
//! ([`DavError::PreconditionFailed`], the executor re-reads and re-plans); everything
//! else is a classified [`SyncError`] in the connectors' words.

use std::time::Duration;

use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};

use crate::errors::{Endpoint, TRANSIENT, error};

/// A failed DAV operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DavError {
    /// `412 Precondition Failed` on a write: the item changed (or, for a create, came
    /// into existence) on the server since it was read.
    #[error("the item {href} changed on the server since it was read")]
    PreconditionFailed { href: String },
    /// Anything else, classified.
    #[error(transparent)]
    Failed(#[from] SyncError),
}

impl DavError {
    /// As a classified error: a lost race is transient and concerns the item only.
    pub fn into_sync_error(self) -> SyncError {
        match self {
            DavError::PreconditionFailed { href } => error(
                TRANSIENT,
                ErrorScope::Item,
                format!("the item {href} changed on the CalDAV/CardDAV server since it was read"),
                "Nothing to do: the item is read again and the change planned anew",
            ),
            DavError::Failed(e) => e,
        }
    }

    /// The classified error, when this is one.
    pub fn as_sync_error(&self) -> Option<&SyncError> {
        match self {
            DavError::Failed(e) => Some(e),
            DavError::PreconditionFailed { .. } => None,
        }
    }
}

/// What a request was about, for the scope and words of its failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A principal, home set or collection: a failure stops the mailbox's ACT sync.
    Collection,
    /// One calendar object or vCard: a failure concerns that item only.
    Item,
}

/// A non-success status as a [`DavError`].
pub(crate) fn classify(
    endpoint: &Endpoint,
    user: &str,
    status: u16,
    href: &str,
    what: &str,
    target: Target,
    retry_after: Option<Duration>,
) -> DavError {
    let scope = match target {
        Target::Collection => ErrorScope::Mailbox,
        Target::Item => ErrorScope::Item,
    };
    let e = match status {
        412 => {
            return DavError::PreconditionFailed {
                href: href.to_owned(),
            };
        }
        401 => endpoint.auth_rejected(user, &format!("HTTP 401 while trying to {what}")),
        403 => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "the {} server {endpoint} denied {user} access to {href} (HTTP 403 while trying to {what})",
                endpoint.protocol
            ),
            "Point the mailbox at collections its user owns or has been granted write access to on the server, then run Test & Enable",
        ),
        404 | 410 => match target {
            Target::Collection => error(
                ErrorClass::Permanent,
                ErrorScope::Mailbox,
                format!(
                    "the {} server {endpoint} has no collection {href} (HTTP {status} while trying to {what})",
                    endpoint.protocol
                ),
                "The collection was deleted or moved on the server: run Test & Enable to discover the mailbox's collections again",
            ),
            Target::Item => error(
                ErrorClass::Permanent,
                ErrorScope::Item,
                format!(
                    "the {} server {endpoint} has no item {href} (HTTP {status} while trying to {what})",
                    endpoint.protocol
                ),
                "Nothing to do: the item was deleted on the server and the next synchronization notices it",
            ),
        },
        408 | 429 | 500..=599 if status != 501 && status != 507 => error(
            ErrorClass::Transient { retry_after },
            ErrorScope::Mailbox,
            format!(
                "the {} server {endpoint} could not {what} just now (HTTP {status})",
                endpoint.protocol
            ),
            "Nothing to do if this is rare: it is retried; if it persists, check the server's logs",
        ),
        507 => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "the {} server {endpoint} is out of space for {user} (HTTP 507 while trying to {what})",
                endpoint.protocol
            ),
            "Free space or raise the user's quota on the server, then run Test & Enable",
        ),
        _ => error(
            ErrorClass::Permanent,
            scope,
            format!(
                "the {} server {endpoint} refused to {what} {href} (HTTP {status})",
                endpoint.protocol
            ),
            "Check that the server supports CalDAV/CardDAV at the profile's DAV location; if it does, report the server software and this message",
        ),
    };
    DavError::Failed(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            protocol: "CalDAV/CardDAV",
            host: "dav.example.org".to_owned(),
            port: 443,
        }
    }

    #[test]
    fn statuses_map_onto_classes_and_scopes() {
        use ErrorClass::Permanent;
        let cases = [
            (
                401,
                Target::Item,
                Permanent,
                ErrorScope::Mailbox,
                "user name or password",
            ),
            (
                403,
                Target::Item,
                Permanent,
                ErrorScope::Mailbox,
                "denied alice access",
            ),
            (
                404,
                Target::Collection,
                Permanent,
                ErrorScope::Mailbox,
                "has no collection",
            ),
            (
                404,
                Target::Item,
                Permanent,
                ErrorScope::Item,
                "has no item",
            ),
            (
                503,
                Target::Item,
                TRANSIENT,
                ErrorScope::Mailbox,
                "just now",
            ),
            (
                507,
                Target::Collection,
                Permanent,
                ErrorScope::Mailbox,
                "out of space",
            ),
            (415, Target::Item, Permanent, ErrorScope::Item, "refused to"),
        ];
        for (status, target, class, scope, words) in cases {
            let e = classify(
                &endpoint(),
                "alice",
                status,
                "/alice/c/",
                "read",
                target,
                None,
            );
            let DavError::Failed(e) = e else {
                panic!("{status} gave {e:?}");
            };
            assert_eq!((e.class, e.scope), (class, scope), "{status}");
            assert!(e.message.contains(words), "{status}: {}", e.message);
            assert!(!e.message.ends_with('.'), "{}", e.message);
        }
    }

    #[test]
    fn a_lost_race_is_its_own_variant_and_transient_for_the_item() {
        let e = classify(
            &endpoint(),
            "alice",
            412,
            "/alice/c/1.ics",
            "update",
            Target::Item,
            None,
        );
        assert_eq!(
            e,
            DavError::PreconditionFailed {
                href: "/alice/c/1.ics".to_owned()
            }
        );
        let s = e.into_sync_error();
        assert_eq!((s.class, s.scope), (TRANSIENT, ErrorScope::Item));
    }

    #[test]
    fn retry_after_is_kept_for_busy_servers() {
        let wait = Some(Duration::from_secs(30));
        let e = classify(
            &endpoint(),
            "alice",
            503,
            "/",
            "read",
            Target::Collection,
            wait,
        );
        let e = e.as_sync_error().cloned().expect("classified");
        assert_eq!(e.class, ErrorClass::Transient { retry_after: wait });
    }
}
