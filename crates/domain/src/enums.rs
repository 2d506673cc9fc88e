//! The closed vocabularies of the model. Each is stored and sent as its snake_case
//! name; the names are part of the public API and of the database, so never rename one.

/// Defines a string-backed enum with serde, OpenAPI and `FromStr` support.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                 serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and serialized name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The accepted names, for error messages.
            pub fn expected() -> String {
                [$($text),+].join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<String as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'static str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'static str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl TryFrom<String> for $name {
            type Error = crate::enums::UnknownValue;
            fn try_from(s: String) -> Result<Self, crate::enums::UnknownValue> {
                s.parse()
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::enums::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(crate::enums::UnknownValue {
                        kind: stringify!($name),
                        value: s.to_owned(),
                        expected: $name::expected(),
                    }),
                }
            }
        }
    };
}

/// A stored or submitted name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind}; expected one of: {expected}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

string_enum!(
    /// The kind of mail system an email server profile connects to.
    ServerType {
        ExchangeOnline = "exchange_online",
        ExchangeServer = "exchange_server",
        ImapSmtp = "imap_smtp",
    }
);

string_enum!(
    /// How one direction of a mailbox is delivered.
    DeliveryMethod {
        None = "none",
        ServerSideSync = "server_side_sync",
        /// Mail pushed to mailbridge (the "email router" route).
        Router = "router",
    }
);

string_enum!(
    /// Whether an approver has approved the mailbox's email address.
    ApprovalStatus {
        Empty = "empty",
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
    }
);

string_enum!(
    /// The outcome of the last test or run of one workload of a mailbox.
    WorkloadStatus {
        NotRun = "not_run",
        Success = "success",
        Failure = "failure",
    }
);

string_enum!(
    /// Which incoming email of a user or queue is tracked.
    TrackingFilter {
        All = "all",
        /// Only replies to email sent from the service (the default).
        RepliesToTrackedEmail = "replies",
        KnownParties = "known_parties",
        EmailEnabledRecords = "email_enabled_records",
        None = "none",
    }
);

string_enum!(
    /// The role a user and their API tokens act with inside an organization.
    Role {
        OrgAdmin = "org_admin",
        Approver = "approver",
        User = "user",
    }
);

string_enum!(
    /// How mailbridge authenticates to the mail system of a profile.
    AuthenticationType {
        /// App-only tokens with the organization's certificate (Exchange Online).
        ServerToServer = "server_to_server",
        /// Each mailbox carries its own user name and password.
        CredentialsSpecifiedByUserOrQueue = "credentials_specified_by_user_or_queue",
        /// The profile carries one service account (impersonation).
        CredentialsSpecifiedInProfile = "credentials_specified_in_profile",
        /// OAuth 2.0 per user.
        Oauth = "oauth",
    }
);

string_enum!(
    /// Who owns a mailbox.
    OwnerType {
        User = "user",
        Queue = "queue",
    }
);

string_enum!(
    /// Whether an email came in or goes out.
    EmailDirection {
        Incoming = "incoming",
        Outgoing = "outgoing",
    }
);

string_enum!(
    /// The life cycle of an email activity.
    EmailStatus {
        Draft = "draft",
        PendingSend = "pending_send",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
        Received = "received",
        Canceled = "canceled",
    }
);

string_enum!(
    /// How an incoming email was linked to an existing conversation.
    CorrelationMethod {
        InReplyTo = "in_reply_to",
        TrackingToken = "tracking_token",
        Conversation = "conversation",
        Similarity = "similarity",
        None = "none",
    }
);

string_enum!(
    /// The role of an address on an email.
    PartyRole {
        From = "from",
        To = "to",
        Cc = "cc",
        Bcc = "bcc",
    }
);

string_enum!(
    /// The kind of record an address resolved to, in resolution priority order.
    PartyType {
        User = "user",
        Queue = "queue",
        Contact = "contact",
        Account = "account",
        Lead = "lead",
    }
);

string_enum!(
    /// The kinds of record an activity can be "regarding".
    RegardingType {
        Contact = "contact",
        Account = "account",
        Lead = "lead",
        Email = "email",
    }
);

string_enum!(
    /// What an alert is about.
    AlertScope {
        Item = "item",
        Mailbox = "mailbox",
        Profile = "profile",
        Organization = "organization",
    }
);

string_enum!(
    /// How serious an alert is.
    AlertSeverity {
        Information = "information",
        Warning = "warning",
        Error = "error",
    }
);

string_enum!(
    /// The kinds of background job.
    JobKind {
        /// Test the chosen mailboxes and enable what passed.
        TestAndEnable = "test_and_enable",
    }
);

string_enum!(
    /// The life cycle of a background job.
    JobStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
);

string_enum!(
    /// The life cycle of an appointment.
    AppointmentStatus {
        Scheduled = "scheduled",
        Completed = "completed",
        Canceled = "canceled",
    }
);

string_enum!(
    /// The life cycle of a task.
    TaskStatus {
        NotStarted = "not_started",
        InProgress = "in_progress",
        Completed = "completed",
        Canceled = "canceled",
    }
);

string_enum!(
    /// A task's priority.
    TaskPriority {
        Low = "low",
        Normal = "normal",
        High = "high",
    }
);

string_enum!(
    /// Whether an email between two users of the organization is tracked once or twice.
    EmailBetweenUsers {
        OneActivity = "one_activity",
        TwoActivities = "two_activities",
    }
);

string_enum!(
    /// ACT: what happens on the server when a linked record leaves its user's sync
    /// filters (the planner's `LeavingFilters`).
    ActLeavingFilters {
        /// The server item is deleted (the default).
        DeleteOnServer = "delete_on_server",
        /// Only the link is removed; the server item stays.
        Unlink = "unlink",
    }
);

string_enum!(
    /// ACT: what a task deleted on the mail system does to its record (the planner's
    /// `TaskDeletedOnServer`).
    ActTaskDeletedOnServer {
        /// The record is deleted too (the default).
        DeleteRecord = "delete_record",
        /// Only the link is removed; the record stays.
        Unlink = "unlink",
    }
);

string_enum!(
    /// What a webhook event reports; subscriptions list the types they receive.
    WebhookEventType {
        /// An email activity was created by incoming sync (or from Sent Items).
        EmailTracked = "email.tracked",
        EmailSent = "email.sent",
        /// An outgoing email gave up: its `status_reason` says why.
        EmailFailed = "email.failed",
        /// A workload of a mailbox changed status (not_run, success, failure).
        MailboxStatusChanged = "mailbox.status_changed",
        AlertRaised = "alert.raised",
        /// An appointment, contact or task changed (emitted by the ACT workload).
        ActItemChanged = "act.item_changed",
    }
);

string_enum!(
    /// Where one event stands for one webhook subscription.
    WebhookDeliveryStatus {
        Pending = "pending",
        /// Claimed by a node, being posted (the claim expires after a crash).
        Delivering = "delivering",
        Delivered = "delivered",
        /// Every attempt of the retry schedule failed; the retry endpoint resets it.
        Failed = "failed",
    }
);

string_enum!(
    /// Where an organization's certificate came from.
    CertificateSource {
        /// Generated by mailbridge (self-signed, for evaluation).
        Generated = "generated",
        /// Uploaded by an administrator (PEM or PKCS#12).
        Uploaded = "uploaded",
    }
);

string_enum!(
    /// The expiry alerts of a certificate, each raised once.
    CertificateExpiryAlert {
        /// 30 days or less remain.
        Within30Days = "within_30_days",
        /// 7 days or less remain.
        Within7Days = "within_7_days",
        Expired = "expired",
    }
);

string_enum!(
    /// Where a mailbox's discovered server location came from.
    DiscoverySource {
        /// RFC 6186 / RFC 8314 SRV records of the address's domain.
        Srv = "srv",
        /// A Mozilla autoconfig file (`config-v1.1.xml`) of the domain.
        Autoconfig = "autoconfig",
        /// Exchange Autodiscover v2 (JSON).
        AutodiscoverV2 = "autodiscover_v2",
        /// Exchange Server's own Autodiscover, POX (`autodiscover.xml`).
        AutodiscoverPox = "autodiscover_pox",
        /// Exchange Server's own Autodiscover, SOAP (`autodiscover.svc`,
        /// `GetUserSettings`).
        AutodiscoverSoap = "autodiscover_soap",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for v in DeliveryMethod::ALL {
            assert_eq!(v.as_str().parse::<DeliveryMethod>().unwrap(), *v);
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
        }
        assert_eq!(TrackingFilter::RepliesToTrackedEmail.as_str(), "replies");
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = "smtp".parse::<ServerType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`smtp` is not a valid ServerType; expected one of: exchange_online, exchange_server, imap_smtp"
        );
    }
}
