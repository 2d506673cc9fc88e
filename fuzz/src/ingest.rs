//! Message ingestion on arbitrary bytes: the engine's parse, then the pure
//! decisions the pipeline takes on its facts (token, subject, fingerprint,
//! correlation, tracking under every filter).

use mailbridge_domain::TrackingFilter;
use mailbridge_domain::ingest::{
    CorrelationLookup, FolderKind, TrackingContext, TrackingTokenFormat, correlate, decide,
    fingerprint, normalize_subject,
};

/// The default token format of an organization (`CRM:` + 3 + 4 digits).
fn token_format() -> TrackingTokenFormat {
    TrackingTokenFormat {
        prefix: "CRM:".to_owned(),
        base_number: 0,
        user_digits: 3,
        counter_digits: 4,
    }
}

/// Parses `data` as a message and decides it; panics when an invariant the
/// store and the look-ups rely on does not hold.
pub fn ingest_message(data: &[u8]) {
    let parsed = mailbridge_engine::parse::parse(data, vec!["$MailbridgeTracked".to_owned()]);
    let f = &parsed.facts;
    for a in f.all_addresses() {
        assert!(a.0.contains('@'), "an address without @: {:?}", a.0);
        assert_eq!(a.0, a.0.trim(), "an address with spaces around");
        assert!(!a.0.bytes().any(|b| b.is_ascii_uppercase()), "{:?}", a.0);
    }
    if let Some(id) = &f.message_id {
        assert!(!id.is_empty());
    } else {
        assert!(parsed.digest.is_some(), "no Message-ID and no digest");
    }
    for id in f.in_reply_to.iter().chain(&f.references) {
        assert!(!id.is_empty(), "an empty reference");
    }
    let format = token_format();
    let token = format.find(&f.subject);
    if let Some(t) = &token {
        assert!(f.subject.contains(t.as_str()));
    }
    let normalized = normalize_subject(&f.subject, &format.prefix);
    let _ = fingerprint(f, parsed.digest.as_deref().unwrap_or_default());
    let lookup = CorrelationLookup {
        by_message_id: f
            .in_reply_to
            .iter()
            .chain(&f.references)
            .map(|id| (id.clone(), "e-ref".to_owned()))
            .collect(),
        by_token: token.map(|_| "e-token".to_owned()),
        by_conversation: f.conversation_key.as_ref().map(|_| "e-conv".to_owned()),
        similar: vec![(
            "e-similar".to_owned(),
            f.all_addresses().map(|a| a.0.clone()).collect(),
        )],
        similarity_enabled: !normalized.is_empty(),
    };
    let correlation = correlate(f, Some(&format), &lookup);
    for filter in TrackingFilter::ALL {
        for folder in [FolderKind::Inbox, FolderKind::Sent] {
            for keyword in [false, true] {
                let decision = decide(&TrackingContext {
                    filter: *filter,
                    folder: &folder,
                    start: None,
                    received_at: f.date,
                    has_tracking_keyword: keyword,
                    already_tracked: None,
                    correlation: &correlation,
                    counterpart: None,
                });
                assert!(!decision.reason.is_empty(), "a decision without a reason");
            }
        }
    }
}
