//! The schema order of an item's elements (types.xsd: `ItemType`, then
//! `MessageType`, `CalendarItemType`, `ContactItemType`, `TaskType`), the
//! properties the server computes, and what the `Default` shape answers.

use super::state::ItemKind;

/// `ItemType`'s elements in schema order (types.xsd); kind-specific ones follow.
const ITEM_ORDER: [&str; 41] = [
    "MimeContent",
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Attachments",
    "DateTimeReceived",
    "Size",
    "Categories",
    "Importance",
    "InReplyTo",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "DateTimeCreated",
    "ResponseObjects",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderNextTime",
    "ReminderMinutesBeforeStart",
    "DisplayCc",
    "DisplayTo",
    "DisplayBcc",
    "HasAttachments",
    "ExtendedProperty",
    "Culture",
    "EffectiveRights",
    "LastModifiedName",
    "LastModifiedTime",
    "IsAssociated",
    "WebClientReadFormQueryString",
    "WebClientEditFormQueryString",
    "ConversationId",
    "UniqueBody",
    "Flag",
];

const MESSAGE_ORDER: [&str; 19] = [
    "Sender",
    "ToRecipients",
    "CcRecipients",
    "BccRecipients",
    "IsReadReceiptRequested",
    "IsDeliveryReceiptRequested",
    "ConversationIndex",
    "ConversationTopic",
    "From",
    "InternetMessageId",
    "IsRead",
    "IsResponseRequested",
    "References",
    "ReplyTo",
    "ReceivedBy",
    "ReceivedRepresenting",
    "ApprovalRequestData",
    "VotingInformation",
    "ReminderMessageData",
];

const CALENDAR_ORDER: [&str; 44] = [
    "UID",
    "RecurrenceId",
    "DateTimeStamp",
    "Start",
    "End",
    "OriginalStart",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "Location",
    "When",
    "IsMeeting",
    "IsCancelled",
    "IsRecurring",
    "MeetingRequestWasSent",
    "IsResponseRequested",
    "CalendarItemType",
    "MyResponseType",
    "Organizer",
    "RequiredAttendees",
    "OptionalAttendees",
    "Resources",
    "ConflictingMeetingCount",
    "AdjacentMeetingCount",
    "ConflictingMeetings",
    "AdjacentMeetings",
    "Duration",
    "TimeZone",
    "AppointmentReplyTime",
    "AppointmentSequenceNumber",
    "AppointmentState",
    "Recurrence",
    "FirstOccurrence",
    "LastOccurrence",
    "ModifiedOccurrences",
    "DeletedOccurrences",
    "MeetingTimeZone",
    "StartTimeZone",
    "EndTimeZone",
    "ConferenceType",
    "AllowNewTimeProposal",
    "IsOnlineMeeting",
    "MeetingWorkspaceUrl",
    "NetShowUrl",
    "EnhancedLocation",
];

const CONTACT_ORDER: [&str; 30] = [
    "FileAs",
    "FileAsMapping",
    "DisplayName",
    "GivenName",
    "Initials",
    "MiddleName",
    "Nickname",
    "CompleteName",
    "CompanyName",
    "EmailAddresses",
    "PhysicalAddresses",
    "PhoneNumbers",
    "AssistantName",
    "Birthday",
    "BusinessHomePage",
    "Children",
    "Companies",
    "ContactSource",
    "Department",
    "Generation",
    "ImAddresses",
    "JobTitle",
    "Manager",
    "Mileage",
    "OfficeLocation",
    "PostalAddressIndex",
    "Profession",
    "SpouseName",
    "Surname",
    "WeddingAnniversary",
];

const TASK_ORDER: [&str; 22] = [
    "ActualWork",
    "AssignedTime",
    "BillingInformation",
    "ChangeCount",
    "Companies",
    "CompleteDate",
    "Contacts",
    "DelegationState",
    "Delegator",
    "DueDate",
    "IsAssignmentEditable",
    "IsComplete",
    "IsRecurring",
    "IsTeamTask",
    "Mileage",
    "Owner",
    "PercentComplete",
    "Recurrence",
    "StartDate",
    "Status",
    "StatusDescription",
    "TotalWork",
];

/// Properties the server computes; SetItemField and DeleteItemField of them are
/// ErrorInvalidPropertySet / ErrorInvalidPropertyDelete.
const READ_ONLY: [&str; 15] = [
    "ItemId",
    "ParentFolderId",
    "DateTimeReceived",
    "Size",
    "DateTimeCreated",
    "LastModifiedTime",
    "HasAttachments",
    "CalendarItemType",
    "ModifiedOccurrences",
    "DeletedOccurrences",
    "FirstOccurrence",
    "LastOccurrence",
    "IsRecurring",
    "MimeContent",
    "InternetMessageId",
];

/// What `BaseShape` `Default` answers beyond the id, per kind (an approximation of
/// Exchange's default shapes).
pub(crate) fn default_shape(kind: ItemKind) -> &'static [&'static str] {
    match kind {
        ItemKind::Message => &[
            "Subject",
            "HasAttachments",
            "DateTimeReceived",
            "From",
            "ToRecipients",
            "IsRead",
        ],
        ItemKind::CalendarItem => &[
            "Subject",
            "HasAttachments",
            "Start",
            "End",
            "IsAllDayEvent",
            "LegacyFreeBusyStatus",
            "Location",
            "CalendarItemType",
            "Organizer",
        ],
        ItemKind::Contact => &[
            "Subject",
            "FileAs",
            "DisplayName",
            "GivenName",
            "Surname",
            "CompanyName",
            "EmailAddresses",
            "PhoneNumbers",
        ],
        ItemKind::Task => &[
            "Subject",
            "DueDate",
            "PercentComplete",
            "StartDate",
            "Status",
        ],
    }
}

/// Where an element goes among an item's children.
pub(crate) fn order_key(kind: ItemKind, name: &str) -> (usize, usize) {
    if let Some(i) = ITEM_ORDER.iter().position(|n| *n == name) {
        return (0, i);
    }
    let list: &[&str] = match kind {
        ItemKind::Message => &MESSAGE_ORDER,
        ItemKind::CalendarItem => &CALENDAR_ORDER,
        ItemKind::Contact => &CONTACT_ORDER,
        ItemKind::Task => &TASK_ORDER,
    };
    match list.iter().position(|n| *n == name) {
        Some(i) => (1, i),
        None => (2, 0),
    }
}

pub(crate) fn is_read_only(name: &str) -> bool {
    READ_ONLY.contains(&name)
}
