//! Correlation: linking a new email to an existing conversation, tried in the
//! reference's order — In-Reply-To/References, tracking token, conversation
//! headers (Thread-Index), then (optionally) similarity.

use std::collections::BTreeMap;

use super::facts::MessageFacts;
use super::token::TrackingTokenFormat;
use crate::CorrelationMethod;

/// What the store knows that correlation may use; gathered by the engine.
#[derive(Debug, Clone, Default)]
pub struct CorrelationLookup {
    /// Known emails by Message-ID, for the ids the message refers to.
    pub by_message_id: BTreeMap<String, String>,
    /// The email carrying the tracking token found in the subject.
    pub by_token: Option<String>,
    /// The newest email of the same Thread-Index conversation.
    pub by_conversation: Option<String>,
    /// Emails with the same normalized subject, with their addresses.
    pub similar: Vec<(String, Vec<String>)>,
    pub similarity_enabled: bool,
}

/// The result: how, to which email, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    pub method: CorrelationMethod,
    pub email_id: Option<String>,
    pub reason: String,
}

/// Correlates a message; `CorrelationMethod::None` when nothing matched.
pub fn correlate(
    facts: &MessageFacts,
    token_format: Option<&TrackingTokenFormat>,
    lookup: &CorrelationLookup,
) -> Correlation {
    let referenced = facts
        .in_reply_to
        .iter()
        .chain(facts.references.iter().rev());
    for id in referenced {
        if let Some(email) = lookup.by_message_id.get(id) {
            let header = if facts.in_reply_to.contains(id) {
                "In-Reply-To"
            } else {
                "References"
            };
            return Correlation {
                method: CorrelationMethod::InReplyTo,
                email_id: Some(email.clone()),
                reason: format!("{header} names <{id}>, a tracked email"),
            };
        }
    }
    if let (Some(format), Some(email)) = (token_format, &lookup.by_token)
        && let Some(token) = format.find(&facts.subject)
    {
        return Correlation {
            method: CorrelationMethod::TrackingToken,
            email_id: Some(email.clone()),
            reason: format!("the subject carries the tracking token {token}"),
        };
    }
    if let (Some(key), Some(email)) = (&facts.conversation_key, &lookup.by_conversation) {
        return Correlation {
            method: CorrelationMethod::Conversation,
            email_id: Some(email.clone()),
            reason: format!("Thread-Index conversation {key} is tracked"),
        };
    }
    if lookup.similarity_enabled {
        let mine: Vec<&str> = facts.all_addresses().map(|a| a.0.as_str()).collect();
        for (email, addresses) in &lookup.similar {
            let shared = addresses
                .iter()
                .filter(|a| mine.contains(&a.as_str()))
                .count();
            if shared >= 2 {
                return Correlation {
                    method: CorrelationMethod::Similarity,
                    email_id: Some(email.clone()),
                    reason: format!("same subject and {shared} shared addresses"),
                };
            }
        }
    }
    let reason = if facts.in_reply_to.is_empty() && facts.references.is_empty() {
        "no In-Reply-To or References, no tracking token, no known conversation".to_owned()
    } else {
        "the messages it replies to are not tracked, and no token or conversation matched"
            .to_owned()
    };
    Correlation {
        method: CorrelationMethod::None,
        email_id: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::super::facts::Address;
    use super::*;

    fn facts() -> MessageFacts {
        MessageFacts {
            subject: "Re: Quote CRM:00010042".into(),
            in_reply_to: vec!["out-1@mb".into()],
            references: vec!["root@x".into(), "out-1@mb".into()],
            conversation_key: Some("abcd".into()),
            from: Some(Address::new("carl@fabrikam.com")),
            to: vec![Address::new("alice@example.org")],
            ..Default::default()
        }
    }

    fn fmt() -> TrackingTokenFormat {
        TrackingTokenFormat {
            prefix: "CRM:".into(),
            base_number: 0,
            user_digits: 3,
            counter_digits: 4,
        }
    }

    #[test]
    fn the_order_of_the_reference() {
        let full = CorrelationLookup {
            by_message_id: [("out-1@mb".to_owned(), "e1".to_owned())].into(),
            by_token: Some("e2".into()),
            by_conversation: Some("e3".into()),
            similar: vec![(
                "e4".into(),
                vec!["carl@fabrikam.com".into(), "alice@example.org".into()],
            )],
            similarity_enabled: true,
        };
        let f = facts();
        let m = |l: &CorrelationLookup| {
            let c = correlate(&f, Some(&fmt()), l);
            (c.method, c.email_id)
        };
        assert_eq!(m(&full), (CorrelationMethod::InReplyTo, Some("e1".into())));
        let mut l = full.clone();
        l.by_message_id.clear();
        assert_eq!(m(&l), (CorrelationMethod::TrackingToken, Some("e2".into())));
        l.by_token = None;
        assert_eq!(m(&l), (CorrelationMethod::Conversation, Some("e3".into())));
        l.by_conversation = None;
        assert_eq!(m(&l), (CorrelationMethod::Similarity, Some("e4".into())));
        l.similarity_enabled = false;
        assert_eq!(m(&l), (CorrelationMethod::None, None));
        l.similarity_enabled = true;
        l.similar[0].1.pop();
        assert_eq!(
            m(&l),
            (CorrelationMethod::None, None),
            "one shared address is not enough"
        );
    }

    #[test]
    fn references_count_and_tokens_need_tokens_on_the_org() {
        let mut f = facts();
        f.in_reply_to.clear();
        let l = CorrelationLookup {
            by_message_id: [("root@x".to_owned(), "e9".to_owned())].into(),
            ..Default::default()
        };
        let c = correlate(&f, None, &l);
        assert_eq!(c.method, CorrelationMethod::InReplyTo);
        assert!(c.reason.starts_with("References"), "{}", c.reason);
        let l = CorrelationLookup {
            by_token: Some("e2".into()),
            ..Default::default()
        };
        assert_eq!(
            correlate(&f, None, &l).method,
            CorrelationMethod::None,
            "tokens off"
        );
    }
}
