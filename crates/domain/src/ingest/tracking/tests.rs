use chrono::TimeZone;

use super::*;

fn none() -> Correlation {
    Correlation {
        method: CorrelationMethod::None,
        email_id: None,
        reason: "no match".into(),
    }
}

fn reply() -> Correlation {
    Correlation {
        method: CorrelationMethod::InReplyTo,
        email_id: Some("e1".into()),
        reason: "In-Reply-To names <x>".into(),
    }
}

struct Case {
    name: &'static str,
    filter: TrackingFilter,
    folder: FolderKind,
    received_day: u32,
    keyword: bool,
    already: Option<&'static str>,
    correlation: Correlation,
    counterpart: Option<PartyType>,
    expected: (Outcome, TrackingRule),
}

fn base(name: &'static str, filter: TrackingFilter, expected: (Outcome, TrackingRule)) -> Case {
    Case {
        name,
        filter,
        folder: FolderKind::Inbox,
        received_day: 10,
        keyword: false,
        already: None,
        correlation: none(),
        counterpart: None,
        expected,
    }
}

#[test]
fn every_rule() {
    use Outcome::*;
    use TrackingFilter as F;
    use TrackingRule::*;
    let tracked = FolderKind::Tracked {
        regarding_type: RegardingType::Account,
        regarding_id: "a1".into(),
    };
    let cases = vec![
        Case {
            received_day: 1,
            keyword: true,
            ..base(
                "before start wins over everything",
                F::All,
                (Skip, BeforeStartDate),
            )
        },
        Case {
            already: Some("e7"),
            ..base("same Message-ID links", F::None, (Link, AlreadyTracked))
        },
        Case {
            keyword: true,
            ..base(
                "keyword overrides filter none",
                F::None,
                (Track, TrackingKeyword),
            )
        },
        Case {
            folder: tracked,
            ..base(
                "tracked folder overrides filter",
                F::None,
                (Track, TrackedFolder),
            )
        },
        base("filter none", F::None, (Skip, FilterNone)),
        base("filter all", F::All, (Track, All)),
        Case {
            correlation: reply(),
            ..base("a reply", F::RepliesToTrackedEmail, (Track, Reply))
        },
        base("not a reply", F::RepliesToTrackedEmail, (Skip, NotAReply)),
        Case {
            counterpart: Some(PartyType::Contact),
            ..base("from a contact", F::KnownParties, (Track, KnownParty))
        },
        Case {
            counterpart: Some(PartyType::User),
            ..base(
                "a user is not a known party",
                F::KnownParties,
                (Skip, NotFromKnownParty),
            )
        },
        Case {
            counterpart: Some(PartyType::Queue),
            ..base(
                "a queue is email-enabled",
                F::EmailEnabledRecords,
                (Track, EmailEnabledRecord),
            )
        },
        base(
            "unknown sender",
            F::EmailEnabledRecords,
            (Skip, NotFromEmailEnabledRecord),
        ),
    ];
    let start = Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap();
    for c in cases {
        let ctx = TrackingContext {
            filter: c.filter,
            folder: &c.folder,
            start: Some(start),
            received_at: Some(
                Utc.with_ymd_and_hms(2026, 11, c.received_day, 0, 0, 0)
                    .unwrap(),
            ),
            has_tracking_keyword: c.keyword,
            already_tracked: c.already,
            correlation: &c.correlation,
            counterpart: c.counterpart,
        };
        let d = decide(&ctx);
        assert_eq!((d.outcome, d.rule), c.expected, "{}", c.name);
        assert!(!d.reason.is_empty(), "{}: a reason is always given", c.name);
    }
}
