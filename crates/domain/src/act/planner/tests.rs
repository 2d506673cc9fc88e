//! The decision table: one row per case, wildcards (`None`) where a fact does not
//! matter. Every combination of facts must match exactly one row, the planner must
//! give that row's actions for each of them, and docs/ACT-SYNC.md must hold every row.

use super::*;
use crate::act::model::ActKind::{Appointment, Contact, Task};

const L: bool = true;
const U: bool = false;
use ServerState as V;
use StoreState as S;

/// One row: the facts it covers and the actions expected.
#[derive(Clone)]
struct Row {
    linked: bool,
    store: StoreState,
    server: ServerState,
    kind: Option<ActKind>,
    tracked: Option<bool>,
    organizer: Option<bool>,
    closed: Option<bool>,
    leaving: Option<LeavingFilters>,
    task_deleted: Option<TaskDeletedOnServer>,
    expect: &'static [&'static str],
}

fn row(
    linked: bool,
    store: StoreState,
    server: ServerState,
    expect: &'static [&'static str],
) -> Row {
    Row {
        linked,
        store,
        server,
        kind: None,
        tracked: None,
        organizer: None,
        closed: None,
        leaving: None,
        task_deleted: None,
        expect,
    }
}

impl Row {
    fn kind(mut self, k: ActKind) -> Row {
        self.kind = Some(k);
        self
    }
    fn tracked(mut self, b: bool) -> Row {
        self.tracked = Some(b);
        self
    }
    fn organizer(mut self, b: bool) -> Row {
        self.organizer = Some(b);
        self
    }
    fn closed(mut self, b: bool) -> Row {
        self.closed = Some(b);
        self
    }
    fn leaving(mut self, l: LeavingFilters) -> Row {
        self.leaving = Some(l);
        self
    }
    fn task_deleted(mut self, t: TaskDeletedOnServer) -> Row {
        self.task_deleted = Some(t);
        self
    }

    fn covers(&self, c: &Combo) -> bool {
        fn fits<T: PartialEq>(pattern: Option<T>, value: T) -> bool {
            pattern.is_none_or(|p| p == value)
        }
        self.linked == c.linked
            && self.store == c.store
            && self.server == c.server
            && fits(self.kind, c.kind)
            && fits(self.tracked, c.tracked)
            && fits(self.organizer, c.organizer)
            && fits(self.closed, c.closed)
            && fits(self.leaving, c.leaving)
            && fits(self.task_deleted, c.task_deleted)
    }
}

const DEL: LeavingFilters = LeavingFilters::DeleteOnServer;
const UNL: LeavingFilters = LeavingFilters::Unlink;
const DEL_REC: TaskDeletedOnServer = TaskDeletedOnServer::DeleteRecord;
const UNL_REC: TaskDeletedOnServer = TaskDeletedOnServer::Unlink;

const MERGE_STORE: &[&str] = &[
    "conflict(merge, organizer=store)",
    "update_store",
    "update_server",
];
const MERGE_SERVER: &[&str] = &[
    "conflict(merge, organizer=server)",
    "update_store",
    "update_server",
];
const MERGE: &[&str] = &["conflict(merge)", "update_store", "update_server"];
const STORE_WINS: &[&str] = &["conflict(store_wins)", "update_server"];
const LINK_MERGE_STORE: &[&str] = &[
    "link",
    "conflict(merge, organizer=store)",
    "update_store",
    "update_server",
];
const LINK_MERGE_SERVER: &[&str] = &[
    "link",
    "conflict(merge, organizer=server)",
    "update_store",
    "update_server",
];
const LINK_MERGE: &[&str] = &["link", "conflict(merge)", "update_store", "update_server"];
const LINK_STORE_WINS: &[&str] = &["link", "conflict(store_wins)", "update_server"];

/// The decision table, in the order docs/ACT-SYNC.md shows it.
fn table() -> Vec<Row> {
    let mut t = vec![
        // Linked, the record cannot be seen any more.
        row(L, S::Absent, V::Absent, &["unlink"]),
        row(L, S::Absent, V::Unchanged, &["unlink"]),
        row(L, S::Absent, V::Changed, &["unlink"]),
        row(L, S::Absent, V::Deleted, &["unlink"]),
        // Linked, the record did not change.
        row(L, S::Unchanged, V::Unchanged, &["nothing"]),
        row(L, S::Unchanged, V::Changed, &["nothing"]).closed(true),
        row(L, S::Unchanged, V::Changed, &["update_store"]).closed(false),
    ];
    for gone in [V::Absent, V::Deleted] {
        t.extend([
            row(L, S::Unchanged, gone, &["unlink"]).kind(Appointment),
            row(L, S::Unchanged, gone, &["unlink"])
                .kind(Task)
                .closed(true),
            row(L, S::Unchanged, gone, &["delete_in_store"])
                .kind(Task)
                .closed(false)
                .task_deleted(DEL_REC),
            row(L, S::Unchanged, gone, &["unlink"])
                .kind(Task)
                .closed(false)
                .task_deleted(UNL_REC),
            row(L, S::Unchanged, gone, &["unlink"]).kind(Contact),
        ]);
    }
    // Linked, the record changed.
    t.extend([
        row(L, S::Changed, V::Unchanged, &["update_server"]),
        row(L, S::Changed, V::Changed, STORE_WINS).closed(true),
        row(L, S::Changed, V::Changed, MERGE_STORE)
            .closed(false)
            .kind(Appointment)
            .organizer(true),
        row(L, S::Changed, V::Changed, MERGE_SERVER)
            .closed(false)
            .kind(Appointment)
            .organizer(false),
        row(L, S::Changed, V::Changed, MERGE)
            .closed(false)
            .kind(Task),
        row(L, S::Changed, V::Changed, MERGE)
            .closed(false)
            .kind(Contact),
    ]);
    for gone in [V::Absent, V::Deleted] {
        t.extend([
            row(L, S::Changed, gone, &["unlink"]).closed(true),
            row(L, S::Changed, gone, &["create_on_server"]).closed(false),
        ]);
    }
    // Linked, the record was deleted.
    t.extend([
        row(L, S::Deleted, V::Absent, &["unlink"]),
        row(L, S::Deleted, V::Unchanged, &["delete_on_server"]),
        row(L, S::Deleted, V::Changed, &["delete_on_server"]).closed(true),
        row(L, S::Deleted, V::Changed, &["create_in_store"]).closed(false),
        row(L, S::Deleted, V::Deleted, &["unlink"]),
    ]);
    // Linked, the record left the filters.
    t.extend([
        row(L, S::OutOfFilters, V::Absent, &["unlink"]),
        row(L, S::OutOfFilters, V::Unchanged, &["delete_on_server"]).leaving(DEL),
        row(L, S::OutOfFilters, V::Unchanged, &["unlink"]).leaving(UNL),
        row(L, S::OutOfFilters, V::Changed, &["delete_on_server"])
            .closed(true)
            .leaving(DEL),
        row(L, S::OutOfFilters, V::Changed, &["unlink"])
            .closed(true)
            .leaving(UNL),
        row(
            L,
            S::OutOfFilters,
            V::Changed,
            &["update_store", "delete_on_server"],
        )
        .closed(false)
        .leaving(DEL),
        row(L, S::OutOfFilters, V::Changed, &["update_store", "unlink"])
            .closed(false)
            .leaving(UNL),
        row(L, S::OutOfFilters, V::Deleted, &["unlink"]),
    ]);
    // Unlinked, no record: server items come in when tracked.
    for none in [S::Absent, S::Deleted] {
        t.extend([
            row(U, none, V::Absent, &["nothing"]),
            row(U, none, V::Unchanged, &["nothing"]),
            row(U, none, V::Changed, &["create_in_store"]).tracked(true),
            row(U, none, V::Changed, &["nothing"]).tracked(false),
            row(U, none, V::Deleted, &["nothing"]),
        ]);
    }
    // Unlinked, the record did not change.
    t.extend([
        row(U, S::Unchanged, V::Absent, &["nothing"]),
        row(U, S::Unchanged, V::Unchanged, &["nothing"]),
        row(U, S::Unchanged, V::Changed, &["nothing"]).tracked(false),
        row(U, S::Unchanged, V::Changed, &["nothing"])
            .tracked(true)
            .closed(true),
        row(U, S::Unchanged, V::Changed, &["link", "update_store"])
            .tracked(true)
            .closed(false),
        row(U, S::Unchanged, V::Deleted, &["nothing"]),
    ]);
    // Unlinked, the record is new or changed: records in the filters go to the server.
    t.extend([
        row(U, S::Changed, V::Absent, &["create_on_server"]),
        row(U, S::Changed, V::Unchanged, &["link", "update_server"]),
        row(U, S::Changed, V::Changed, LINK_STORE_WINS).closed(true),
        row(U, S::Changed, V::Changed, LINK_MERGE_STORE)
            .closed(false)
            .kind(Appointment)
            .organizer(true),
        row(U, S::Changed, V::Changed, LINK_MERGE_SERVER)
            .closed(false)
            .kind(Appointment)
            .organizer(false),
        row(U, S::Changed, V::Changed, LINK_MERGE)
            .closed(false)
            .kind(Task),
        row(U, S::Changed, V::Changed, LINK_MERGE)
            .closed(false)
            .kind(Contact),
        row(U, S::Changed, V::Deleted, &["create_on_server"]),
    ]);
    // Unlinked, the record is outside the filters.
    for server in ServerState::ALL {
        t.push(row(U, S::OutOfFilters, server, &["nothing"]));
    }
    t
}

/// One full combination of facts.
#[derive(Debug, Clone, Copy)]
struct Combo {
    linked: bool,
    store: StoreState,
    server: ServerState,
    kind: ActKind,
    tracked: bool,
    organizer: bool,
    closed: bool,
    leaving: LeavingFilters,
    task_deleted: TaskDeletedOnServer,
}

/// Every combination. A state added to an enum must be added to its `ALL` (the
/// matches below do not compile until it is looked at) and then to the table.
fn combos() -> Vec<Combo> {
    for s in StoreState::ALL {
        match s {
            S::Absent | S::Unchanged | S::Changed | S::Deleted | S::OutOfFilters => {}
        }
    }
    for v in ServerState::ALL {
        match v {
            V::Absent | V::Unchanged | V::Changed | V::Deleted => {}
        }
    }
    let mut out = Vec::new();
    for linked in [L, U] {
        for store in StoreState::ALL {
            for server in ServerState::ALL {
                for kind in ActKind::ALL {
                    for tracked in [true, false] {
                        for organizer in [true, false] {
                            for closed in [true, false] {
                                for leaving in [DEL, UNL] {
                                    for task_deleted in [DEL_REC, UNL_REC] {
                                        out.push(Combo {
                                            linked,
                                            store,
                                            server,
                                            kind,
                                            tracked,
                                            organizer,
                                            closed,
                                            leaving,
                                            task_deleted,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn fp(s: &str) -> Fingerprint {
    Fingerprint(format!("1:{s}"))
}

fn link() -> Link {
    Link {
        record_id: "rec-1".into(),
        server_id: "/calendars/ana/default/3f1c.ics".into(),
        record_version: "r1".into(),
        server_version: "\"e1\"".into(),
        record_fingerprint: fp("base"),
        server_fingerprint: fp("base"),
        last_error: None,
    }
}

fn facts(c: &Combo) -> (ItemFacts, OrgSettings) {
    let store_present = matches!(c.store, S::Unchanged | S::Changed | S::OutOfFilters);
    let server_present = matches!(c.server, V::Unchanged | V::Changed);
    let (record_version, server_version) = match (c.store, c.server) {
        (S::Unchanged, _) | (_, V::Unchanged) => ("r1", "\"e1\""),
        _ => ("r2", "\"e2\""),
    };
    let facts = ItemFacts {
        kind: c.kind,
        link: c.linked.then(link),
        store: StoreSide {
            state: c.store,
            version: store_present.then(|| record_version.to_owned()),
            fingerprint: store_present.then(|| fp("store")),
            closed: c.closed,
        },
        server: ServerSide {
            state: c.server,
            version: server_present.then(|| server_version.to_owned()),
            fingerprint: server_present.then(|| fp("server")),
            tracked: c.tracked,
        },
        we_organize: c.organizer,
    };
    let settings = OrgSettings {
        leaving_filters: c.leaving,
        task_deleted_on_server: c.task_deleted,
    };
    (facts, settings)
}

fn labels(plan: &[Action]) -> Vec<String> {
    plan.iter().map(Action::label).collect()
}

#[test]
fn every_combination_of_facts_has_exactly_one_row() {
    let table = table();
    let mut problems = Vec::new();
    for c in combos() {
        let n = table.iter().filter(|r| r.covers(&c)).count();
        if n != 1 {
            problems.push(format!("{n} rows for {c:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
}

#[test]
fn the_planner_follows_the_table() {
    let table = table();
    for (i, r) in table.iter().enumerate() {
        let mut first: Option<Vec<Action>> = None;
        for c in combos().iter().filter(|c| r.covers(c)) {
            let (f, settings) = facts(c);
            let plan = plan_item(&f, &settings);
            assert_eq!(labels(&plan), r.expect, "row {i}, {c:?}");
            // A wildcard means the fact does not matter: the same decision, the same
            // reasons, whatever its value.
            let shape: Vec<(String, &str)> = plan.iter().map(|a| (a.label(), a.reason())).collect();
            if let Some(first) = &first {
                let first: Vec<(String, &str)> =
                    first.iter().map(|a| (a.label(), a.reason())).collect();
                assert_eq!(shape, first, "row {i}, {c:?}");
            } else {
                first = Some(plan);
            }
        }
        assert!(first.is_some(), "row {i} covers no combination");
    }
}

/// The table as docs/ACT-SYNC.md shows it, one line per row.
fn markdown_rows() -> Vec<String> {
    let any = |o: Option<String>| o.unwrap_or_else(|| "any".into());
    let yes_no = |b: Option<bool>| any(b.map(|b| if b { "yes" } else { "no" }.to_owned()));
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    table()
        .iter()
        .map(|r| {
            let c = combos()
                .into_iter()
                .find(|c| r.covers(c))
                .expect("each row covers a combination");
            let (f, settings) = facts(&c);
            let plan = plan_item(&f, &settings);
            let why: Vec<&str> = plan.iter().map(Action::reason).collect();
            format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if r.linked { "linked" } else { "unlinked" },
                name(serde_json::json!(r.store)),
                name(serde_json::json!(r.server)),
                any(r.kind.map(|k| k.as_str().to_owned())),
                yes_no(r.tracked),
                yes_no(r.organizer),
                yes_no(r.closed),
                any(r.leaving.map(|l| name(serde_json::json!(l)))),
                any(r.task_deleted.map(|t| name(serde_json::json!(t)))),
                r.expect.join(", "),
                why.join("; "),
            )
        })
        .collect()
}

#[test]
fn the_docs_hold_the_whole_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ACT-SYNC.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let rows = markdown_rows();
    let missing: Vec<&String> = rows.iter().filter(|r| !doc.contains(r.as_str())).collect();
    assert!(
        missing.is_empty(),
        "docs/ACT-SYNC.md misses {} rows; the table is:\n{}",
        missing.len(),
        rows.join("\n")
    );
}

#[test]
fn writes_name_the_version_they_expect() {
    let settings = OrgSettings::default();
    let mut f = facts(&Combo {
        linked: L,
        store: S::Changed,
        server: V::Unchanged,
        kind: Task,
        tracked: false,
        organizer: false,
        closed: false,
        leaving: DEL,
        task_deleted: DEL_REC,
    })
    .0;
    let plan = plan_item(&f, &settings);
    assert!(matches!(&plan[..], [Action::UpdateServer { if_match: Some(e), .. }] if e == "\"e1\""));

    // The server changed and the record was deleted while completed: the delete names
    // the ETag just seen, not the one in the mapping row.
    f.store = StoreSide {
        state: S::Deleted,
        version: None,
        fingerprint: None,
        closed: true,
    };
    f.server.state = V::Changed;
    f.server.version = Some("\"e2\"".into());
    let plan = plan_item(&f, &settings);
    assert!(
        matches!(&plan[..], [Action::DeleteOnServer { if_match: Some(e), .. }] if e == "\"e2\"")
    );

    // Both changed: each side's write names the version this run saw.
    f.store = StoreSide {
        state: S::Changed,
        version: Some("r2".into()),
        fingerprint: Some(fp("store")),
        closed: false,
    };
    f.server.fingerprint = Some(fp("server"));
    let plan = plan_item(&f, &settings);
    assert!(matches!(
        &plan[..],
        [
            Action::Conflict { .. },
            Action::UpdateStore { expected_version: Some(r), .. },
            Action::UpdateServer { if_match: Some(e), .. },
        ] if r == "r2" && e == "\"e2\""
    ));
}

#[test]
fn the_same_change_on_both_sides_is_no_conflict() {
    for linked in [L, U] {
        let (mut f, settings) = facts(&Combo {
            linked,
            store: S::Changed,
            server: V::Changed,
            kind: Appointment,
            tracked: true,
            organizer: false,
            closed: false,
            leaving: DEL,
            task_deleted: DEL_REC,
        });
        f.server.fingerprint = f.store.fingerprint.clone();
        let expected: &[&str] = if linked {
            &["nothing"]
        } else {
            &["link", "nothing"]
        };
        assert_eq!(labels(&plan_item(&f, &settings)), expected);
    }
}

#[test]
fn states_come_from_fingerprints_for_links_and_from_the_feed_otherwise() {
    let l = link();
    let present = |f: &str, new: bool| Seen::Present {
        fingerprint: fp(f),
        new_since_last_run: new,
    };
    let store_cases = [
        (Some(&l), present("base", true), true, S::Unchanged),
        (Some(&l), present("edited", false), true, S::Changed),
        (Some(&l), present("base", false), false, S::OutOfFilters),
        (Some(&l), Seen::Deleted, true, S::Deleted),
        (Some(&l), Seen::Missing, true, S::Absent),
        (None, present("x", true), true, S::Changed),
        (None, present("x", false), true, S::Unchanged),
        (None, present("x", true), false, S::OutOfFilters),
    ];
    for (link, seen, in_filters, expected) in store_cases {
        assert_eq!(store_state(link, &seen, in_filters), expected, "{seen:?}");
    }
    let server_cases = [
        (Some(&l), present("base", true), V::Unchanged),
        (Some(&l), present("edited", false), V::Changed),
        (Some(&l), Seen::Deleted, V::Deleted),
        (None, Seen::Missing, V::Absent),
        (None, present("x", true), V::Changed),
        (None, present("x", false), V::Unchanged),
    ];
    for (link, seen, expected) in server_cases {
        assert_eq!(server_state(link, &seen), expected, "{seen:?}");
    }
}

#[test]
fn a_batch_is_planned_item_by_item() {
    let settings = OrgSettings::default();
    let items: Vec<ItemFacts> = combos().iter().take(3).map(|c| facts(c).0).collect();
    let plans = plan(&items, &settings);
    assert_eq!(plans.len(), 3);
    for (p, i) in plans.iter().zip(&items) {
        assert_eq!(p, &plan_item(i, &settings));
    }
}
