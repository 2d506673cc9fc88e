//! EWS failures as the domain's error model. Exchange says what went wrong in a
//! `ResponseCode` (per response message, or in a SOAP fault for the whole
//! request) and, for the transport, in the HTTP status; the code, not the text,
//! is what to branch on (learn.microsoft.com, "ResponseCode" in the EWS
//! reference). Two outcomes are variants of their own because the engine acts on
//! them: a refused sync state ([`EwsError::SyncStateInvalid`]: read the folder
//! again from no state) and a stale change key on a guarded write
//! ([`EwsError::Conflict`]: read the item again and re-plan).

use std::time::Duration;

use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};

use super::soap::MessageError;
use crate::errors::{TRANSIENT, error};

/// The role an administrator grants the service account so that it may act as
/// each mailbox.
pub const IMPERSONATION_FIX: &str = "Grant the service account the ApplicationImpersonation role (in the Exchange Management Shell: New-ManagementRoleAssignment -Name mailbridge-impersonation -Role ApplicationImpersonation -User <service account>, optionally with -CustomRecipientWriteScope to limit it to the synchronized mailboxes), then run Test & Enable";

/// A failed EWS operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EwsError {
    /// `ErrorInvalidSyncStateData`: Exchange no longer accepts the stored sync
    /// state of the folder. Drop it and synchronize the folder again from an
    /// empty state; items come again, and the engine's Message-ID and link
    /// look-ups keep them from being duplicated.
    #[error("Exchange refused the stored synchronization state of the folder {folder}")]
    SyncStateInvalid { folder: String },
    /// `ErrorIrresolvableConflict`: the item changed in the mailbox since the
    /// change key the write named was read.
    #[error("the item {id} changed in the mailbox since it was read")]
    Conflict { id: String },
    /// Anything else, classified.
    #[error(transparent)]
    Failed(#[from] SyncError),
}

impl EwsError {
    /// As a classified error: a refused state and a lost race are transient.
    pub fn into_sync_error(self) -> SyncError {
        match self {
            EwsError::SyncStateInvalid { folder } => error(
                TRANSIENT,
                ErrorScope::Mailbox,
                format!("Exchange refused the stored synchronization state of the folder {folder}"),
                "Nothing to do: the folder is read again from the start, and what was already synchronized is recognized",
            ),
            EwsError::Conflict { id } => error(
                TRANSIENT,
                ErrorScope::Item,
                format!("the item {id} changed in Exchange since it was read"),
                "Nothing to do: the item is read again and the change planned anew",
            ),
            EwsError::Failed(e) => e,
        }
    }

    /// The classified error, when this is one.
    pub fn as_sync_error(&self) -> Option<&SyncError> {
        match self {
            EwsError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EwsError> for SyncError {
    fn from(e: EwsError) -> SyncError {
        e.into_sync_error()
    }
}

/// What a request was about, for the scope of an unknown failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A folder or the mailbox itself: a failure stops the mailbox's workload.
    Mailbox,
    /// One item: a failure concerns that item only.
    Item,
}

/// What a failed request was, for the words of the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failed<'a> {
    /// e.g. `read the changes of the folder inbox`.
    pub what: &'a str,
    /// The mailbox (its SMTP address, or the service account's name).
    pub mailbox: &'a str,
    pub target: Target,
    /// The folder or item concerned, for the distinct variants.
    pub subject: &'a str,
}

/// Response codes that ask to try again later; a back-off, when Exchange gives
/// one, is the delay.
const TRANSIENT_CODES: &[&str] = &[
    "ErrorServerBusy",
    "ErrorTimeoutExpired",
    "ErrorInternalServerTransientError",
    "ErrorInternalServerError",
    "ErrorMailboxStoreUnavailable",
    "ErrorMailboxMoveInProgress",
    "ErrorConnectionFailed",
    "ErrorExceededConnectionCount",
    "ErrorExceededSubscriptionCount",
    "ErrorTooManyObjectsOpened",
    "ErrorBatchProcessingStopped",
    "ErrorADUnavailable",
    "ErrorCrossSiteRequest",
    "ErrorProxyServiceDiscoveryFailed",
    "ErrorDataSourceOperation",
];

/// Response codes about one item: its id, its content or what it asks for.
const ITEM_CODES: &[&str] = &[
    "ErrorItemNotFound",
    "ErrorInvalidIdMalformed",
    "ErrorInvalidIdEmpty",
    "ErrorInvalidIdNotAnItemAttachmentId",
    "ErrorInvalidIdXml",
    "ErrorInvalidIdMalformedEwsLegacyIdFormat",
    "ErrorInvalidChangeKey",
    "ErrorChangeKeyRequiredForWriteOperations",
    "ErrorItemCorrupt",
    "ErrorCorruptData",
    "ErrorMimeContentConversionFailed",
    "ErrorMimeContentInvalid",
    "ErrorMimeContentInvalidBase64String",
    "ErrorMessageSizeExceeded",
    "ErrorInvalidRecipients",
    "ErrorInvalidPropertySet",
    "ErrorInvalidPropertyRequest",
    "ErrorInvalidPropertyForOperation",
    "ErrorInvalidExtendedPropertyValue",
    "ErrorInvalidExtendedProperty",
    "ErrorInvalidValueForProperty",
    "ErrorCalendarInvalidRecurrence",
    "ErrorCalendarEndDateIsEarlierThanStartDate",
    "ErrorCalendarDurationIsTooLong",
    "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
    "ErrorInvalidOccurrenceId",
    "ErrorOccurrenceCrossingBoundary",
    "ErrorInvalidPercentCompleteValue",
    "ErrorSchemaValidation",
    "ErrorFolderExists",
    "ErrorMoveCopyFailed",
    "ErrorCannotDeleteObject",
];

/// The failure of one response message (or of the whole request, for a fault).
pub(crate) fn classify(e: &MessageError, f: &Failed<'_>) -> EwsError {
    let (what, mailbox) = (f.what, f.mailbox);
    let code = e.code.as_str();
    let said = if e.text.is_empty() {
        code.to_owned()
    } else {
        format!("{code}: {}", e.text)
    };
    let failure = match code {
        "ErrorInvalidSyncStateData" => {
            return EwsError::SyncStateInvalid {
                folder: f.subject.to_owned(),
            };
        }
        "ErrorIrresolvableConflict" => {
            return EwsError::Conflict {
                id: f.subject.to_owned(),
            };
        }
        "ErrorServerBusy" => error(
            ErrorClass::Transient {
                retry_after: e.back_off,
            },
            ErrorScope::Mailbox,
            format!(
                "Exchange is throttling the service account and did not {what} for the mailbox {mailbox} ({said})"
            ),
            "Nothing to do: it is retried after the back-off Exchange asked for; if it persists, give the service account a throttling policy with a higher EWS budget (New-ThrottlingPolicy, Set-ThrottlingPolicyAssociation)",
        ),
        "ErrorImpersonateUserDenied" | "ErrorImpersonationDenied" | "ErrorImpersonationFailed" => {
            error(
                ErrorClass::Permanent,
                ErrorScope::Mailbox,
                format!(
                    "Exchange does not let the service account act as the mailbox {mailbox}, so it could not {what} ({said})"
                ),
                IMPERSONATION_FIX,
            )
        }
        "ErrorNonExistentMailbox" | "ErrorMailboxNotFound" | "ErrorInvalidSmtpAddress" => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!("Exchange has no mailbox {mailbox}, so it could not {what} ({said})"),
            "Check the mailbox's email address: it must be the primary SMTP address of a mailbox of this Exchange organization; then run Test & Enable",
        ),
        "ErrorAccessDenied" | "ErrorSendAsDenied" | "ErrorDelegateNoUser" => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "Exchange denied the service account access to the mailbox {mailbox} when asked to {what} ({said})"
            ),
            IMPERSONATION_FIX,
        ),
        "ErrorMailboxConfiguration" | "ErrorMailboxLogonFailed" => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!("Exchange could not open the mailbox {mailbox} to {what} ({said})"),
            "Check in the Exchange admin center that the mailbox exists, is enabled and has EWS access (Get-CASMailbox <address> | Format-List EwsEnabled); then run Test & Enable",
        ),
        "ErrorQuotaExceeded" => error(
            ErrorClass::Transient {
                retry_after: e.back_off,
            },
            ErrorScope::Mailbox,
            format!(
                "the mailbox {mailbox} is over its quota, so Exchange could not {what} ({said})"
            ),
            "Free space in the mailbox (or raise its quota); it is retried later",
        ),
        "ErrorFolderNotFound" | "ErrorSyncFolderNotFound" | "ErrorParentFolderNotFound" => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "the folder {} is gone from the mailbox {mailbox}, so Exchange could not {what} ({said})",
                f.subject
            ),
            "If the folder was deleted or renamed on purpose, update the mailbox's tracked folders; then run Test & Enable",
        ),
        "ErrorInvalidServerVersion" | "ErrorInvalidRequestServerVersion" => error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!("the Exchange server refused the EWS schema version Exchange2016 ({said})"),
            "mailbridge needs Exchange Server 2016, 2019 or Subscription Edition: check the profile's EWS URL points at one",
        ),
        code if TRANSIENT_CODES.contains(&code) => error(
            ErrorClass::Transient {
                retry_after: e.back_off,
            },
            ErrorScope::Mailbox,
            format!("Exchange could not {what} for the mailbox {mailbox} just now ({said})"),
            "Nothing to do if this is rare: it is retried; if it persists, check the Exchange server's health (Get-ServerHealth) and its event log",
        ),
        code if ITEM_CODES.contains(&code) => error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!("Exchange refused to {what} in the mailbox {mailbox} ({said})"),
            item_fix(code),
        ),
        _ => match f.target {
            // An unknown refusal about one item stays with that item.
            Target::Item => error(
                ErrorClass::Permanent,
                ErrorScope::Item,
                format!("Exchange refused to {what} in the mailbox {mailbox} ({said})"),
                "Report this message with the item concerned; the other items go on",
            ),
            Target::Mailbox => error(
                TRANSIENT,
                ErrorScope::Mailbox,
                format!("Exchange could not {what} for the mailbox {mailbox} ({said})"),
                "It is retried; if it persists, report the Exchange version and this message",
            ),
        },
    };
    EwsError::Failed(failure)
}

fn item_fix(code: &str) -> &'static str {
    match code {
        "ErrorItemNotFound" | "ErrorInvalidIdMalformed" | "ErrorInvalidIdEmpty" => {
            "Nothing to do: the item was deleted or moved away meanwhile"
        }
        "ErrorMessageSizeExceeded" => {
            "The message is larger than Exchange accepts: raise the organization's or the connector's maximum message size, or send a smaller message"
        }
        "ErrorInvalidRecipients" => "Check the message's recipients' addresses",
        _ => "Report this message with the item concerned; the other items go on",
    }
}

/// What the HTTP answer said when it was not a SOAP answer EWS wrote.
pub(crate) fn classify_status(
    status: u16,
    detail: &str,
    retry_after: Option<Duration>,
    f: &Failed<'_>,
    oauth: bool,
    url: &str,
) -> SyncError {
    let (what, mailbox) = (f.what, f.mailbox);
    match status {
        401 if oauth => error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!(
                "Failed Authentication: Exchange at {url} refused the profile's access token (HTTP 401)"
            ),
            "Check that hybrid modern authentication is enabled for Exchange Server (the EWS URL registered as a service principal name of Office 365 Exchange Online) and that the app registration has the full_access_as_app permission with admin consent; then run Test & Enable",
        ),
        401 => error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!(
                "Exchange at {url} refused the service account's user name or password (HTTP 401)"
            ),
            "Check the service account's user name (DOMAIN\\user or user@domain) and password in the email server profile, and that Basic authentication is enabled on the EWS virtual directory (Get-WebServicesVirtualDirectory | Format-List BasicAuthentication); then run Test & Enable",
        ),
        403 => error(
            ErrorClass::Permanent,
            ErrorScope::Mailbox,
            format!(
                "Exchange at {url} denied access when asked to {what} for the mailbox {mailbox} (HTTP 403{detail})"
            ),
            "Check that EWS is enabled for the mailbox and the service account (Set-CASMailbox <address> -EwsEnabled $true) and that no EWS application policy blocks mailbridge; then run Test & Enable",
        ),
        300..=399 => error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!(
                "{url} redirects elsewhere (HTTP {status}{detail}); credentials are not sent after a redirect"
            ),
            "Set the profile's EWS URL to the address the server redirects to (usually https://<server>/EWS/Exchange.asmx), or turn Auto Discover on",
        ),
        404 | 405 => error(
            ErrorClass::Permanent,
            ErrorScope::Profile,
            format!("{url} is not an EWS endpoint (HTTP {status})"),
            "Set the profile's EWS URL to https://<server>/EWS/Exchange.asmx (or turn Auto Discover on)",
        ),
        413 => error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!(
                "Exchange at {url} refused a request too large to {what} for the mailbox {mailbox} (HTTP 413)"
            ),
            "The item is larger than the EWS virtual directory accepts: raise maxAllowedContentLength and maxReceivedMessageSize in its web.config, or send a smaller message",
        ),
        408 | 429 | 500..=599 => error(
            ErrorClass::Transient { retry_after },
            ErrorScope::Mailbox,
            format!(
                "Exchange at {url} could not {what} for the mailbox {mailbox} just now (HTTP {status}{detail})"
            ),
            "Nothing to do if this is rare: it is retried; if it persists, check the Exchange server's health and the IIS logs of the EWS virtual directory",
        ),
        _ => error(
            TRANSIENT,
            ErrorScope::Mailbox,
            format!(
                "Exchange at {url} answered HTTP {status} when asked to {what} for the mailbox {mailbox}{detail}"
            ),
            "It is retried; if it persists, check the profile's EWS URL and any proxy in front of Exchange",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(code: &str, back_off: Option<Duration>) -> MessageError {
        MessageError {
            code: code.to_owned(),
            text: "words".to_owned(),
            back_off,
        }
    }

    fn failed(target: Target) -> Failed<'static> {
        Failed {
            what: "read the changes of the folder inbox",
            mailbox: "bob@contoso.com",
            target,
            subject: "inbox",
        }
    }

    /// The error mapping table: response code, target → class, scope.
    #[test]
    fn response_codes_map_onto_the_error_model() {
        let wait = Some(Duration::from_millis(1500));
        let busy = ErrorClass::Transient { retry_after: wait };
        let cases = [
            (
                "ErrorServerBusy",
                Target::Mailbox,
                busy,
                ErrorScope::Mailbox,
            ),
            ("ErrorServerBusy", Target::Item, busy, ErrorScope::Mailbox),
            (
                "ErrorTimeoutExpired",
                Target::Item,
                busy,
                ErrorScope::Mailbox,
            ),
            (
                "ErrorMailboxStoreUnavailable",
                Target::Mailbox,
                busy,
                ErrorScope::Mailbox,
            ),
            (
                "ErrorItemNotFound",
                Target::Item,
                ErrorClass::Permanent,
                ErrorScope::Item,
            ),
            (
                "ErrorItemNotFound",
                Target::Mailbox,
                ErrorClass::Permanent,
                ErrorScope::Item,
            ),
            (
                "ErrorMessageSizeExceeded",
                Target::Item,
                ErrorClass::Permanent,
                ErrorScope::Item,
            ),
            (
                "ErrorImpersonateUserDenied",
                Target::Item,
                ErrorClass::Permanent,
                ErrorScope::Mailbox,
            ),
            (
                "ErrorNonExistentMailbox",
                Target::Mailbox,
                ErrorClass::Permanent,
                ErrorScope::Mailbox,
            ),
            (
                "ErrorAccessDenied",
                Target::Item,
                ErrorClass::Permanent,
                ErrorScope::Mailbox,
            ),
            (
                "ErrorFolderNotFound",
                Target::Mailbox,
                ErrorClass::Permanent,
                ErrorScope::Mailbox,
            ),
            (
                "ErrorQuotaExceeded",
                Target::Item,
                busy,
                ErrorScope::Mailbox,
            ),
            (
                "ErrorInvalidServerVersion",
                Target::Mailbox,
                ErrorClass::Permanent,
                ErrorScope::Profile,
            ),
            (
                "ErrorSomethingNew",
                Target::Item,
                ErrorClass::Permanent,
                ErrorScope::Item,
            ),
            (
                "ErrorSomethingNew",
                Target::Mailbox,
                TRANSIENT,
                ErrorScope::Mailbox,
            ),
        ];
        for (code, target, class, scope) in cases {
            match classify(&message(code, wait), &failed(target)) {
                EwsError::Failed(e) => {
                    assert_eq!((e.class, e.scope), (class, scope), "{code} {target:?}");
                    assert!(e.fix.is_some(), "{code}");
                    assert!(
                        e.message.contains("bob@contoso.com") || scope == ErrorScope::Profile,
                        "{code}: {}",
                        e.message
                    );
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_refused_sync_state_and_a_stale_change_key_are_their_own_variants() {
        assert_eq!(
            classify(
                &message("ErrorInvalidSyncStateData", None),
                &failed(Target::Mailbox)
            ),
            EwsError::SyncStateInvalid {
                folder: "inbox".to_owned()
            }
        );
        assert_eq!(
            classify(
                &message("ErrorIrresolvableConflict", None),
                &failed(Target::Item)
            ),
            EwsError::Conflict {
                id: "inbox".to_owned()
            }
        );
        let restart = EwsError::SyncStateInvalid {
            folder: "inbox".to_owned(),
        }
        .into_sync_error();
        assert_eq!(
            (restart.class, restart.scope),
            (TRANSIENT, ErrorScope::Mailbox)
        );
        let race = SyncError::from(EwsError::Conflict { id: "x".to_owned() });
        assert_eq!((race.class, race.scope), (TRANSIENT, ErrorScope::Item));
    }

    #[test]
    fn impersonation_refusals_say_how_to_grant_the_role() {
        let EwsError::Failed(e) = classify(
            &message("ErrorImpersonateUserDenied", None),
            &failed(Target::Mailbox),
        ) else {
            panic!("a classified error")
        };
        let fix = e.fix.unwrap_or_default();
        assert!(fix.contains("ApplicationImpersonation"), "{fix}");
        assert!(fix.contains("New-ManagementRoleAssignment"), "{fix}");
    }

    /// The HTTP half of the table: status → class, scope.
    #[test]
    fn statuses_map_onto_the_error_model() {
        let url = "https://mail.contoso.com/EWS/Exchange.asmx";
        let wait = Some(Duration::from_secs(3));
        let cases = [
            (401, false, ErrorClass::Permanent, ErrorScope::Profile),
            (401, true, ErrorClass::Permanent, ErrorScope::Profile),
            (403, false, ErrorClass::Permanent, ErrorScope::Mailbox),
            (404, false, ErrorClass::Permanent, ErrorScope::Profile),
            (413, false, ErrorClass::Permanent, ErrorScope::Item),
            (
                503,
                false,
                ErrorClass::Transient { retry_after: wait },
                ErrorScope::Mailbox,
            ),
            (
                500,
                false,
                ErrorClass::Transient { retry_after: wait },
                ErrorScope::Mailbox,
            ),
            (
                429,
                false,
                ErrorClass::Transient { retry_after: wait },
                ErrorScope::Mailbox,
            ),
            (302, false, ErrorClass::Permanent, ErrorScope::Profile),
            (418, false, TRANSIENT, ErrorScope::Mailbox),
        ];
        for (status, oauth, class, scope) in cases {
            let e = classify_status(status, "", wait, &failed(Target::Mailbox), oauth, url);
            assert_eq!((e.class, e.scope), (class, scope), "{status} {oauth}");
        }
        let basic = classify_status(401, "", None, &failed(Target::Mailbox), false, url);
        assert!(
            basic
                .fix
                .unwrap_or_default()
                .contains("service account's user name"),
            "the fix names the credentials to check"
        );
    }
}
