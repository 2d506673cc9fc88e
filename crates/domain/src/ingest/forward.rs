//! Forward mailboxes: which message a copy in a forward mailbox stands for, and
//! whose it is. A forward mailbox receives copies of many users' mail; each copy
//! is tracked as if it had arrived in the mailbox of its original recipient.
//!
//! The precedence, first match wins (each address only counts when it is one of
//! the organization's users and not the forward mailbox itself):
//!
//! 1. `Resent-From`, then `Resent-Sender`, of the topmost resent block (RFC 5322
//!    §3.6.6: a redirect names the person it was resent for, and the agent that
//!    did it). The message itself is the original.
//! 2. `X-Sieve-Redirected-From` (Dovecot Pigeonhole's redirect adds it instead of
//!    a resent block). The message itself is the original.
//! 3. `Delivered-To`, then `X-Original-To`, topmost first (a copy the MTA made at
//!    delivery, Postfix `always_bcc` / `recipient_bcc_maps`). The message itself
//!    is the original.
//! 4. The `From` of a message carrying a forwarded `message/rfc822` attachment
//!    (Outlook's "forward as attachment", an Exchange rule): the forwarding user
//!    is the recipient and the attached message is the original.
//!
//! The explicit redirect and delivery headers come before the attachment because
//! a redirected or copied message may itself carry an attached message, which is
//! then part of the original, not the original.

use super::facts::Address;

/// What the engine read of a message in a forward mailbox, for attribution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardHeaders {
    /// The outer message's `From`.
    pub from: Option<Address>,
    /// `Resent-From` of the topmost resent block.
    pub resent_from: Vec<Address>,
    /// `Resent-Sender` of the topmost resent block.
    pub resent_sender: Option<Address>,
    /// `X-Sieve-Redirected-From`.
    pub sieve_redirected_from: Option<Address>,
    /// Every `Delivered-To`, topmost (latest) first.
    pub delivered_to: Vec<Address>,
    /// Every `X-Original-To`, topmost first.
    pub original_to: Vec<Address>,
    /// Whether the message carries a forwarded `message/rfc822` attachment.
    pub has_attached_message: bool,
}

impl ForwardHeaders {
    /// Every address the headers name, for the look-up of users.
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.from
            .iter()
            .chain(&self.resent_from)
            .chain(&self.resent_sender)
            .chain(&self.sieve_redirected_from)
            .chain(&self.delivered_to)
            .chain(&self.original_to)
    }
}

/// Which part of the copy is the message to track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackedPart {
    /// The message in the forward mailbox, as it is.
    Outer,
    /// Its first attached `message/rfc822`.
    Attached,
}

/// Which header named the original recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientSource {
    ResentFrom,
    ResentSender,
    SieveRedirectedFrom,
    DeliveredTo,
    OriginalTo,
    ForwardedBy,
}

impl RecipientSource {
    pub fn header(self) -> &'static str {
        match self {
            RecipientSource::ResentFrom => "Resent-From",
            RecipientSource::ResentSender => "Resent-Sender",
            RecipientSource::SieveRedirectedFrom => "X-Sieve-Redirected-From",
            RecipientSource::DeliveredTo => "Delivered-To",
            RecipientSource::OriginalTo => "X-Original-To",
            RecipientSource::ForwardedBy => "From (forwarded as attachment)",
        }
    }
}

/// The original recipient: an organization's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRecipient {
    pub address: Address,
    pub user_id: String,
    pub source: RecipientSource,
}

/// The result of [`attribute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// Track `part` as a message of `recipient`'s mailbox.
    Attributed {
        part: TrackedPart,
        recipient: OriginalRecipient,
    },
    /// No header names one of the organization's users: the copy is skipped
    /// with this reason.
    Unattributed { reason: String },
}

/// Attributes a copy in the forward mailbox `forward_address` to the original
/// recipient; `user_of` answers the user id of an address of the organization's
/// users (already lower-cased, as [`Address`] is).
pub fn attribute(
    h: &ForwardHeaders,
    forward_address: &Address,
    user_of: impl Fn(&Address) -> Option<String>,
) -> Attribution {
    let find = |candidates: &mut dyn Iterator<Item = &Address>, source: RecipientSource| {
        candidates.filter(|a| *a != forward_address).find_map(|a| {
            user_of(a).map(|user_id| OriginalRecipient {
                address: a.clone(),
                user_id,
                source,
            })
        })
    };
    use RecipientSource as S;
    let outer = [
        (
            &mut h.resent_from.iter() as &mut dyn Iterator<Item = &Address>,
            S::ResentFrom,
        ),
        (&mut h.resent_sender.iter(), S::ResentSender),
        (&mut h.sieve_redirected_from.iter(), S::SieveRedirectedFrom),
        (&mut h.delivered_to.iter(), S::DeliveredTo),
        (&mut h.original_to.iter(), S::OriginalTo),
    ];
    for (candidates, source) in outer {
        if let Some(recipient) = find(candidates, source) {
            return Attribution::Attributed {
                part: TrackedPart::Outer,
                recipient,
            };
        }
    }
    if h.has_attached_message
        && let Some(recipient) = find(&mut h.from.iter(), S::ForwardedBy)
    {
        return Attribution::Attributed {
            part: TrackedPart::Attached,
            recipient,
        };
    }
    let named: Vec<&str> = h
        .resent_from
        .iter()
        .chain(&h.resent_sender)
        .chain(&h.sieve_redirected_from)
        .chain(&h.delivered_to)
        .chain(&h.original_to)
        .chain(h.from.iter().filter(|_| h.has_attached_message))
        .filter(|a| *a != forward_address)
        .map(|a| a.0.as_str())
        .collect();
    let reason = match named.is_empty() {
        true => "no Resent-From, Resent-Sender, X-Sieve-Redirected-From, Delivered-To or \
                 X-Original-To header and no forwarded attachment names the original recipient; \
                 forward the message as an attachment or redirect it"
            .to_owned(),
        false => format!(
            "the original recipient is not one of the organization's users ({}); add the user \
             or forward from the user's own address",
            named.join(", ")
        ),
    };
    Attribution::Unattributed { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Address {
        Address::new(s)
    }

    fn users(addr: &Address) -> Option<String> {
        match addr.0.as_str() {
            "alice@contoso.com" => Some("u-alice".into()),
            "bob@contoso.com" => Some("u-bob".into()),
            // The forward mailbox's own address as a user must never win.
            "fwd@contoso.com" => Some("u-fwd".into()),
            _ => None,
        }
    }

    fn check(h: ForwardHeaders, expected: Option<(TrackedPart, &str, RecipientSource)>) {
        let got = attribute(&h, &a("fwd@contoso.com"), users);
        match (got, expected) {
            (Attribution::Attributed { part, recipient }, Some((p, user, source))) => {
                assert_eq!(
                    (part, recipient.user_id.as_str(), recipient.source),
                    (p, user, source),
                    "{h:?}"
                )
            }
            (Attribution::Unattributed { reason }, None) => assert!(!reason.is_empty()),
            (got, expected) => panic!("{h:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn precedence() {
        use RecipientSource as S;
        use TrackedPart::*;
        type Expected = Option<(TrackedPart, &'static str, S)>;
        let cases: Vec<(&str, ForwardHeaders, Expected)> = vec![
            (
                "Outlook forward as attachment: the forwarding user, the attached message",
                ForwardHeaders {
                    from: Some(a("Alice@Contoso.com")),
                    delivered_to: vec![a("fwd@contoso.com")],
                    has_attached_message: true,
                    ..Default::default()
                },
                Some((Attached, "u-alice", S::ForwardedBy)),
            ),
            (
                "Sieve redirect with a resent block: Resent-From names the user",
                ForwardHeaders {
                    from: Some(a("carl@fabrikam.com")),
                    resent_from: vec![a("bob@contoso.com")],
                    resent_sender: Some(a("mailer-daemon@contoso.com")),
                    delivered_to: vec![a("fwd@contoso.com")],
                    ..Default::default()
                },
                Some((Outer, "u-bob", S::ResentFrom)),
            ),
            (
                "Resent-Sender when Resent-From is not a user",
                ForwardHeaders {
                    resent_from: vec![a("shared@contoso.com")],
                    resent_sender: Some(a("alice@contoso.com")),
                    ..Default::default()
                },
                Some((Outer, "u-alice", S::ResentSender)),
            ),
            (
                "Pigeonhole's redirect header",
                ForwardHeaders {
                    from: Some(a("carl@fabrikam.com")),
                    sieve_redirected_from: Some(a("bob@contoso.com")),
                    ..Default::default()
                },
                Some((Outer, "u-bob", S::SieveRedirectedFrom)),
            ),
            (
                "Postfix always_bcc copy: the user's Delivered-To below the forward mailbox's",
                ForwardHeaders {
                    from: Some(a("carl@fabrikam.com")),
                    delivered_to: vec![a("fwd@contoso.com"), a("alice@contoso.com")],
                    ..Default::default()
                },
                Some((Outer, "u-alice", S::DeliveredTo)),
            ),
            (
                "Postfix recipient_bcc_maps copy: X-Original-To names the user",
                ForwardHeaders {
                    from: Some(a("carl@fabrikam.com")),
                    delivered_to: vec![a("fwd@contoso.com")],
                    original_to: vec![a("bob@contoso.com")],
                    ..Default::default()
                },
                Some((Outer, "u-bob", S::OriginalTo)),
            ),
            (
                "a redirected message carrying an attached message: the redirect wins",
                ForwardHeaders {
                    from: Some(a("alice@contoso.com")),
                    resent_from: vec![a("bob@contoso.com")],
                    has_attached_message: true,
                    ..Default::default()
                },
                Some((Outer, "u-bob", S::ResentFrom)),
            ),
            (
                "an attachment forwarded by a stranger is not attributed",
                ForwardHeaders {
                    from: Some(a("carl@fabrikam.com")),
                    has_attached_message: true,
                    ..Default::default()
                },
                None,
            ),
            (
                "the From of a message without an attachment names the sender, not the recipient",
                ForwardHeaders {
                    from: Some(a("alice@contoso.com")),
                    delivered_to: vec![a("fwd@contoso.com")],
                    ..Default::default()
                },
                None,
            ),
            (
                "only the forward mailbox itself",
                ForwardHeaders {
                    delivered_to: vec![a("fwd@contoso.com")],
                    original_to: vec![a("fwd@contoso.com")],
                    ..Default::default()
                },
                None,
            ),
        ];
        for (name, h, expected) in cases {
            eprintln!("{name}");
            check(h, expected);
        }
    }

    #[test]
    fn the_reason_names_the_strangers() {
        let h = ForwardHeaders {
            resent_from: vec![a("dave@other.org")],
            delivered_to: vec![a("fwd@contoso.com")],
            ..Default::default()
        };
        match attribute(&h, &a("fwd@contoso.com"), users) {
            Attribution::Unattributed { reason } => {
                assert!(reason.contains("dave@other.org"), "{reason}");
                assert!(!reason.contains("fwd@contoso.com"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
