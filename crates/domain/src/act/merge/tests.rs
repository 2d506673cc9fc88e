use super::*;
use crate::act::model::*;
use crate::act::samples::{attendee, completed_at, contact, meeting, paris, task};

const WE_ORGANIZE: MergePolicy = MergePolicy {
    organizer: Side::Store,
};
const THEY_ORGANIZE: MergePolicy = MergePolicy {
    organizer: Side::Server,
};

fn settled<T>(o: &MergeOutcome<T>, class: FieldClass) -> Settled {
    o.classes
        .iter()
        .find(|(c, _)| *c == class)
        .map(|(_, s)| s.clone())
        .expect("the class is merged")
}

#[test]
fn appointments_merge_by_field_class() {
    let base = meeting();
    // The store moved the meeting and changed the text; the server moved it elsewhere,
    // changed the location and an attendee accepted.
    let mut store = meeting();
    store.start = paris(2026, 3, 2, 9, 0);
    store.end = paris(2026, 3, 2, 10, 0);
    store.summary = "Quarterly review, Q1".into();
    let mut server = meeting();
    server.start = paris(2026, 3, 2, 15, 0);
    server.end = paris(2026, 3, 2, 16, 0);
    server.location = Some("Teams".into());
    server.attendees[1].status = ParticipationStatus::Accepted;

    struct Case {
        policy: MergePolicy,
        start: EventTime,
        schedule: Settled,
    }
    let cases = [
        Case {
            policy: WE_ORGANIZE,
            start: paris(2026, 3, 2, 9, 0),
            schedule: Settled::Conflict {
                winner: Side::Store,
                rule: Rule::Organizer,
            },
        },
        Case {
            policy: THEY_ORGANIZE,
            start: paris(2026, 3, 2, 15, 0),
            schedule: Settled::Conflict {
                winner: Side::Server,
                rule: Rule::Organizer,
            },
        },
    ];
    for case in cases {
        let o = merge(Some(&base), &store, &server, &case.policy);
        assert_eq!(o.merged.start, case.start);
        assert_eq!(settled(&o, FieldClass::Schedule), case.schedule);
        // Content: both changed different fields of the class, so the class
        // conflicts and the store wins it; the server's location is kept for the trail.
        assert_eq!(o.merged.summary, "Quarterly review, Q1");
        assert_eq!(o.merged.location, Some("Room 4".into()));
        assert_eq!(
            settled(&o, FieldClass::Content),
            Settled::Conflict {
                winner: Side::Store,
                rule: Rule::Store
            }
        );
        assert!(o.lost.iter().any(|l| l.class == FieldClass::Content
            && l.side == Side::Server
            && l.value["location"] == "Teams"));
        // Only the server changed the attendees: its answer is taken either way.
        assert_eq!(o.merged.attendees[1].status, ParticipationStatus::Accepted);
        assert_eq!(
            settled(&o, FieldClass::Attendees),
            Settled::OneSide { side: Side::Server }
        );
        assert_eq!(settled(&o, FieldClass::Status), Settled::Unchanged);
        assert!(o.had_conflict());
    }
}

#[test]
fn the_organizer_list_keeps_the_answers_the_server_received() {
    let base = meeting();
    let mut store = meeting();
    store
        .attendees
        .push(attendee("di@contoso.com", ParticipationStatus::NeedsAction));
    let mut server = meeting();
    server.attendees[1].status = ParticipationStatus::Declined;
    server.attendees.remove(0);

    let o = merge(Some(&base), &store, &server, &WE_ORGANIZE);
    let got: Vec<(&str, ParticipationStatus)> = o
        .merged
        .attendees
        .iter()
        .map(|a| (a.person.email.as_str(), a.status))
        .collect();
    assert_eq!(
        got,
        [
            ("bo@fabrikam.com", ParticipationStatus::Accepted),
            ("cy@contoso.com", ParticipationStatus::Declined),
            ("di@contoso.com", ParticipationStatus::NeedsAction),
        ]
    );
    assert_eq!(
        settled(&o, FieldClass::Attendees),
        Settled::Combined {
            rule: Rule::OrganizerListServerAnswers
        }
    );
    // The server's list (without Bo) lost and is kept.
    assert!(o.lost.iter().any(|l| l.side == Side::Server));

    let o = merge(Some(&base), &store, &server, &THEY_ORGANIZE);
    assert_eq!(o.merged.attendees, server.attendees);
}

/// A status and a percent.
type Progress = (TodoStatus, Option<u8>);

#[test]
fn tasks_merge_progress_by_the_side_further_along() {
    let base = task();
    use TodoStatus::{Cancelled, Completed, InProcess};
    let cases: Vec<(&str, Progress, Progress, Side)> = vec![
        (
            "server completed",
            (InProcess, Some(50)),
            (Completed, None),
            Side::Server,
        ),
        (
            "store cancelled",
            (Cancelled, None),
            (InProcess, Some(90)),
            Side::Store,
        ),
        (
            "same status, more done",
            (InProcess, Some(40)),
            (InProcess, Some(60)),
            Side::Server,
        ),
        (
            "a tie goes to the store",
            (Completed, None),
            (Completed, None),
            Side::Store,
        ),
    ];
    for (what, (s_status, s_pct), (v_status, v_pct), winner) in cases {
        let mut store = task();
        store.status = s_status;
        store.percent = s_pct;
        let mut server = task();
        server.status = v_status;
        server.percent = v_pct;
        if v_status == TodoStatus::Completed {
            server.completed_at = Some(completed_at());
        }
        let o = merge(Some(&base), &store, &server, &THEY_ORGANIZE);
        let expected = if winner == Side::Store {
            &store
        } else {
            &server
        };
        assert_eq!(o.merged.status, expected.status, "{what}");
        assert_eq!(o.merged.completed_at, expected.completed_at, "{what}");
        assert_eq!(
            settled(&o, FieldClass::Progress),
            Settled::Conflict {
                winner,
                rule: Rule::FurthestProgress
            },
            "{what}"
        );
    }
}

#[test]
fn a_change_on_one_side_is_taken_without_conflict() {
    let base = task();
    let mut store = task();
    store.summary = "Send the revised quote".into();
    let mut server = task();
    server.due = Some(paris(2026, 3, 9, 17, 0));
    server.summary = " Send the  quote".into(); // re-serialized, not changed
    let o = merge(Some(&base), &store, &server, &THEY_ORGANIZE);
    assert_eq!(o.merged.summary, "Send the revised quote");
    assert_eq!(o.merged.due, Some(paris(2026, 3, 9, 17, 0)));
    assert!(!o.had_conflict());
    assert!(o.lost.is_empty());
    assert_eq!(
        o.classes,
        [
            (FieldClass::Dates, Settled::OneSide { side: Side::Server }),
            (FieldClass::Progress, Settled::Unchanged),
            (FieldClass::Content, Settled::OneSide { side: Side::Store }),
            (FieldClass::Categories, Settled::Unchanged),
        ]
    );
}

#[test]
fn contacts_merge_their_lists_as_sets() {
    let base = contact();
    let mut store = contact();
    store.emails.push(ContactEmail {
        address: "bo.home@example.net".into(),
        kind: ContactUse::Home,
        preferred: false,
    });
    store.phones.clear(); // the store removed the work number
    store.title = Some("Head buyer".into());
    store.categories = vec!["VIP".into()];
    let mut server = contact();
    server.emails[0].address = "BO@fabrikam.com".into(); // same entry, other case
    server.phones.push(ContactPhone {
        number: "+46 70 555 01 02".into(),
        kind: PhoneKind::Mobile,
    });
    server.title = Some("Purchasing lead".into());
    server.categories = vec!["vip".into(), "Stockholm".into()];

    let o = merge(Some(&base), &store, &server, &THEY_ORGANIZE);
    let emails: Vec<&str> = o.merged.emails.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(emails, ["bo@fabrikam.com", "bo.home@example.net"]);
    let phones: Vec<&str> = o.merged.phones.iter().map(|p| p.number.as_str()).collect();
    assert_eq!(phones, ["+46 70 555 01 02"]);
    assert_eq!(o.merged.categories, ["VIP", "Stockholm"]);
    assert_eq!(
        settled(&o, FieldClass::Reachability),
        Settled::Combined {
            rule: Rule::SetMerge
        }
    );
    // Organization: both changed the title; the store wins, the server's is kept.
    assert_eq!(o.merged.title.as_deref(), Some("Head buyer"));
    assert!(
        o.lost
            .iter()
            .any(|l| l.class == FieldClass::Organization && l.value["title"] == "Purchasing lead")
    );
}

#[test]
fn without_a_base_every_difference_is_settled_by_the_rules() {
    let store = contact();
    let mut server = contact();
    server.formatted_name = "Bo Lindqvist (Fabrikam)".into();
    server.emails.push(ContactEmail {
        address: "bo@lindqvist.se".into(),
        kind: ContactUse::Home,
        preferred: false,
    });
    let o = merge(None, &store, &server, &THEY_ORGANIZE);
    assert_eq!(o.merged.formatted_name, "Bo Lindqvist");
    assert_eq!(
        o.merged.emails.len(),
        2,
        "a set merge without a base is a union"
    );
    assert_eq!(settled(&o, FieldClass::Organization), Settled::Same);
}

#[test]
fn every_kind_names_its_classes_once() {
    for kind in ActKind::ALL {
        let list = classes(kind);
        let mut names: Vec<FieldClass> = list.iter().map(|(c, _)| *c).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), list.len(), "{kind:?}");
        assert!(list.iter().any(|(c, _)| *c == FieldClass::Categories));
    }
}

#[test]
fn the_docs_state_each_class_rule() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ACT-SYNC.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let rule_text = |r: Rule| match r {
        Rule::Organizer => "the organizer's side |",
        Rule::OrganizerListServerAnswers => "the organizer's list; answers from the server |",
        Rule::Store => "the store |",
        Rule::FurthestProgress => "the side further along |",
        Rule::SetMerge => "set merge |",
    };
    for kind in ActKind::ALL {
        for (class, rule) in classes(kind) {
            let kind_name = if *class == FieldClass::Categories {
                "all"
            } else {
                kind.as_str()
            };
            let class_name = serde_json::json!(class);
            let start = format!(
                "| {kind_name} | {} | ",
                class_name.as_str().unwrap_or_default()
            );
            let line = doc.lines().find(|l| l.starts_with(&start));
            assert!(
                line.is_some_and(|l| l.ends_with(rule_text(*rule))),
                "docs/ACT-SYNC.md: {start}... {}",
                rule_text(*rule)
            );
        }
    }
}
