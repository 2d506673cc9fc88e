//! The pure ACT planner: from what the mapping table last knew and what each side
//! reports now, the actions that bring one item's two sides back in step, each with
//! the reason the decision trail records.
//!
//! The engine executes the plan with version-guarded writes: every update or delete
//! names the version it expects (`If-Match` with the ETag or the change key on the
//! server, the record's row version in the store), so a lost race fails and the item
//! is planned again on the next run, never overwritten blindly. After each action
//! (also after `Nothing`), the mapping row takes the versions and fingerprints the run
//! observed, and the last error if a write failed.
//!
//! The decisions, in short (docs/ACT-SYNC.md has the full table):
//! - Records that match the user's filters go to the server; server items come in when
//!   tracked. Once linked, changes flow both ways, tracked or not.
//! - A record that leaves the filters is deleted on the server, or only unlinked
//!   ([`LeavingFilters`]); a server change made meanwhile is applied first.
//! - A deletion on the server deletes a task's record ([`TaskDeletedOnServer`]) and
//!   only unlinks an appointment or a contact: the store keeps its records.
//! - Delete against change: the change wins (the deleted side is recreated and the
//!   link renewed), unless the record is completed or cancelled.
//! - Completed or cancelled records ignore the server's edits.
//! - Both changed: a conflict, merged by field class ([`super::merge`]), the meeting's
//!   organizer winning its schedule, attendees and status.
//! - Unlinked items are planned by the change feed: an unchanged unlinked record
//!   (say, one unlinked on purpose) is left alone until it changes again. The first run,
//!   and a run after the user's filters change, report every record as changed.

use serde::Serialize;

use super::fingerprint::Fingerprint;
use super::merge::Side;
use super::model::ActKind;

/// The store's side of an item, as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    /// No record (none was ever paired with the server item, or it cannot be seen).
    Absent,
    /// Present, matching the filters, not changed since the last sync.
    Unchanged,
    /// Present, matching the filters, changed since the last sync (or new).
    Changed,
    /// Deleted since the last sync.
    Deleted,
    /// Present but no longer matching the user's filters.
    OutOfFilters,
}

impl StoreState {
    pub const ALL: [StoreState; 5] = [
        StoreState::Absent,
        StoreState::Unchanged,
        StoreState::Changed,
        StoreState::Deleted,
        StoreState::OutOfFilters,
    ];
}

/// The server's side of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// No item (for a linked item: not found any more, which counts as deleted).
    Absent,
    Unchanged,
    Changed,
    Deleted,
}

impl ServerState {
    pub const ALL: [ServerState; 4] = [
        ServerState::Absent,
        ServerState::Unchanged,
        ServerState::Changed,
        ServerState::Deleted,
    ];
}

/// A row of the mapping table: one record linked to one server item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub record_id: String,
    /// The item's href (CalDAV, CardDAV) or id (Exchange).
    pub server_id: String,
    /// The record's row version when both sides were last in step.
    pub record_version: String,
    /// The item's ETag or change key when both sides were last in step.
    pub server_version: String,
    pub record_fingerprint: Fingerprint,
    pub server_fingerprint: Fingerprint,
    /// The last write that failed for this item, for the mailbox's error view.
    pub last_error: Option<String>,
}

/// What the store reports about the item's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSide {
    pub state: StoreState,
    /// The record's current row version, when present.
    pub version: Option<String>,
    /// The fingerprint of the record's current content, when present.
    pub fingerprint: Option<Fingerprint>,
    /// The record is completed or cancelled (for a deleted record: it was).
    pub closed: bool,
}

/// What the server reports about the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSide {
    pub state: ServerState,
    /// The item's current ETag or change key, when present.
    pub version: Option<String>,
    pub fingerprint: Option<Fingerprint>,
    /// The user tracked the item: a tracked category, or a tracked calendar or address
    /// book holds it.
    pub tracked: bool,
}

/// Everything the planner knows about one item. The caller pairs an unlinked record
/// and an unlinked server item into one `ItemFacts` when the item claims the record
/// (the record id mailbridge writes into the items it creates, or the same UID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFacts {
    pub kind: ActKind,
    pub link: Option<Link>,
    pub store: StoreSide,
    pub server: ServerSide,
    /// Appointments: our user organizes the meeting.
    pub we_organize: bool,
}

/// What happens on the server when a linked record leaves the user's filters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeavingFilters {
    #[default]
    DeleteOnServer,
    Unlink,
}

/// What a task deleted on the server does to its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskDeletedOnServer {
    #[default]
    DeleteRecord,
    Unlink,
}

/// The organization's settings the planner follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OrgSettings {
    pub leaving_filters: LeavingFilters,
    pub task_deleted_on_server: TaskDeletedOnServer,
}

/// How a conflict is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "resolution")]
pub enum Resolution {
    /// Both sides are merged by field class; for appointments, `organizer` is the
    /// side whose schedule, attendees and status win.
    MergeByFieldClass { organizer: Option<Side> },
    /// The record is completed or cancelled: the server's edit is ignored and the
    /// store's version is written over it (the server's is kept in the conflict record).
    StoreWins,
}

/// One step of a plan. The executor keeps the losing version of a conflict in the
/// conflict record, so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Create the item on the server from the record, and link them.
    CreateOnServer {
        reason: &'static str,
    },
    /// Create a record from the server's item, and link them.
    CreateInStore {
        reason: &'static str,
    },
    /// Write the record (or the merge) to the server item, if it still has `if_match`.
    UpdateServer {
        if_match: Option<String>,
        reason: &'static str,
    },
    /// Write the item (or the merge) to the record, if it still has `expected_version`.
    UpdateStore {
        expected_version: Option<String>,
        reason: &'static str,
    },
    DeleteOnServer {
        if_match: Option<String>,
        reason: &'static str,
    },
    DeleteInStore {
        expected_version: Option<String>,
        reason: &'static str,
    },
    /// Record the link between a record and an item that claims it.
    Link {
        reason: &'static str,
    },
    /// Remove the mapping row; neither side is touched.
    Unlink {
        reason: &'static str,
    },
    /// Both sides changed; the actions after it write the outcome.
    Conflict {
        resolution: Resolution,
        reason: &'static str,
    },
    Nothing {
        reason: &'static str,
    },
}

impl Action {
    /// Why the action was chosen, for the decision trail.
    pub fn reason(&self) -> &'static str {
        match self {
            Action::CreateOnServer { reason }
            | Action::CreateInStore { reason }
            | Action::UpdateServer { reason, .. }
            | Action::UpdateStore { reason, .. }
            | Action::DeleteOnServer { reason, .. }
            | Action::DeleteInStore { reason, .. }
            | Action::Link { reason }
            | Action::Unlink { reason }
            | Action::Conflict { reason, .. }
            | Action::Nothing { reason } => reason,
        }
    }

    /// A short name: `update_server`, `conflict(merge, organizer=store)`.
    pub fn label(&self) -> String {
        let side = |s: &Side| match s {
            Side::Store => "store",
            Side::Server => "server",
        };
        match self {
            Action::CreateOnServer { .. } => "create_on_server".into(),
            Action::CreateInStore { .. } => "create_in_store".into(),
            Action::UpdateServer { .. } => "update_server".into(),
            Action::UpdateStore { .. } => "update_store".into(),
            Action::DeleteOnServer { .. } => "delete_on_server".into(),
            Action::DeleteInStore { .. } => "delete_in_store".into(),
            Action::Link { .. } => "link".into(),
            Action::Unlink { .. } => "unlink".into(),
            Action::Nothing { .. } => "nothing".into(),
            Action::Conflict { resolution, .. } => match resolution {
                Resolution::StoreWins => "conflict(store_wins)".into(),
                Resolution::MergeByFieldClass { organizer: None } => "conflict(merge)".into(),
                Resolution::MergeByFieldClass { organizer: Some(s) } => {
                    format!("conflict(merge, organizer={})", side(s))
                }
            },
        }
    }
}

/// What a side's listing says about an item, before it is compared with the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not listed.
    Missing,
    /// Reported deleted (a tombstone, a sync-collection 404, a delta deletion).
    Deleted,
    /// Present with this content; `new_since_last_run` is what the change feed says
    /// (it only decides for items without a link).
    Present {
        fingerprint: Fingerprint,
        new_since_last_run: bool,
    },
}

/// The store's state: a linked record changed when its fingerprint differs from the
/// mapping row's, so a save that changed nothing is no change.
pub fn store_state(link: Option<&Link>, seen: &Seen, matches_filters: bool) -> StoreState {
    match seen {
        Seen::Missing => StoreState::Absent,
        Seen::Deleted => StoreState::Deleted,
        Seen::Present { .. } if !matches_filters => StoreState::OutOfFilters,
        Seen::Present {
            fingerprint,
            new_since_last_run,
        } => {
            let changed = match link {
                Some(l) => *fingerprint != l.record_fingerprint,
                None => *new_since_last_run,
            };
            if changed {
                StoreState::Changed
            } else {
                StoreState::Unchanged
            }
        }
    }
}

/// The server's state: a new ETag with the same content is no change.
pub fn server_state(link: Option<&Link>, seen: &Seen) -> ServerState {
    match seen {
        Seen::Missing => ServerState::Absent,
        Seen::Deleted => ServerState::Deleted,
        Seen::Present {
            fingerprint,
            new_since_last_run,
        } => {
            let changed = match link {
                Some(l) => *fingerprint != l.server_fingerprint,
                None => *new_since_last_run,
            };
            if changed {
                ServerState::Changed
            } else {
                ServerState::Unchanged
            }
        }
    }
}

/// The plan for a batch of items, in their order.
pub fn plan(items: &[ItemFacts], settings: &OrgSettings) -> Vec<Vec<Action>> {
    items.iter().map(|i| plan_item(i, settings)).collect()
}

/// The actions for one item.
pub fn plan_item(facts: &ItemFacts, settings: &OrgSettings) -> Vec<Action> {
    match &facts.link {
        Some(link) => plan_linked(facts, link, settings),
        None => plan_unlinked(facts),
    }
}

/// The server side of a linked item, with "not found" folded into "deleted".
#[derive(Clone, Copy)]
enum Remote {
    Unchanged,
    Changed,
    Gone,
}

fn plan_linked(f: &ItemFacts, link: &Link, settings: &OrgSettings) -> Vec<Action> {
    use Action as A;
    let if_match = || {
        f.server
            .version
            .clone()
            .or(Some(link.server_version.clone()))
    };
    let expected = || {
        f.store
            .version
            .clone()
            .or(Some(link.record_version.clone()))
    };
    let closed = f.store.closed;
    let remote = match f.server.state {
        ServerState::Unchanged => Remote::Unchanged,
        ServerState::Changed => Remote::Changed,
        ServerState::Absent | ServerState::Deleted => Remote::Gone,
    };
    let leave = || match settings.leaving_filters {
        LeavingFilters::DeleteOnServer => A::DeleteOnServer {
            if_match: if_match(),
            reason: "the record left the user's filters; the organization deletes such items on the server",
        },
        LeavingFilters::Unlink => A::Unlink {
            reason: "the record left the user's filters; the organization only unlinks such items",
        },
    };
    match (f.store.state, remote) {
        (StoreState::Absent, Remote::Gone) => vec![A::Unlink {
            reason: "neither the record nor the server item exists any more",
        }],
        (StoreState::Absent, _) => vec![A::Unlink {
            reason: "the record can no longer be seen; the link is dropped and nothing is deleted",
        }],
        (StoreState::Unchanged, Remote::Unchanged) => vec![A::Nothing {
            reason: "neither side changed",
        }],
        (StoreState::Unchanged, Remote::Changed) if closed => vec![A::Nothing {
            reason: "the record is completed or cancelled; the server's edit is ignored",
        }],
        (StoreState::Unchanged, Remote::Changed) => vec![A::UpdateStore {
            expected_version: expected(),
            reason: "the server item changed",
        }],
        (StoreState::Unchanged, Remote::Gone) => deleted_on_server(f, settings, expected()),
        (StoreState::Changed, Remote::Unchanged) => vec![A::UpdateServer {
            if_match: if_match(),
            reason: "the record changed",
        }],
        (StoreState::Changed, Remote::Changed) => both_changed(f, if_match(), expected()),
        (StoreState::Changed, Remote::Gone) if closed => vec![A::Unlink {
            reason: "the server item was deleted; a completed or cancelled record is not recreated",
        }],
        (StoreState::Changed, Remote::Gone) => vec![A::CreateOnServer {
            reason: "the record changed after the server item was deleted; the change wins and the item is recreated",
        }],
        (StoreState::Deleted, Remote::Unchanged) => vec![A::DeleteOnServer {
            if_match: if_match(),
            reason: "the record was deleted",
        }],
        (StoreState::Deleted, Remote::Changed) if closed => vec![A::DeleteOnServer {
            if_match: if_match(),
            reason: "the record was deleted; it was completed or cancelled, so the server's edit does not bring it back",
        }],
        (StoreState::Deleted, Remote::Changed) => vec![A::CreateInStore {
            reason: "the server item changed after the record was deleted; the change wins and the record is recreated",
        }],
        (StoreState::Deleted, Remote::Gone) => vec![A::Unlink {
            reason: "both sides deleted the item",
        }],
        (StoreState::OutOfFilters, Remote::Gone) => vec![A::Unlink {
            reason: "the record left the user's filters and the server item is gone",
        }],
        (StoreState::OutOfFilters, Remote::Unchanged) => vec![leave()],
        (StoreState::OutOfFilters, Remote::Changed) if closed => vec![leave()],
        (StoreState::OutOfFilters, Remote::Changed) => vec![
            A::UpdateStore {
                expected_version: expected(),
                reason: "the server item changed before the record left the filters; its change is kept",
            },
            leave(),
        ],
    }
}

/// A linked item deleted on the server while its record did not change.
fn deleted_on_server(
    f: &ItemFacts,
    settings: &OrgSettings,
    expected: Option<String>,
) -> Vec<Action> {
    let action = match (f.kind, settings.task_deleted_on_server) {
        (ActKind::Task, _) if f.store.closed => Action::Unlink {
            reason: "the task was deleted on the server; a completed or cancelled task's record is kept",
        },
        (ActKind::Task, TaskDeletedOnServer::DeleteRecord) => Action::DeleteInStore {
            expected_version: expected,
            reason: "the task was deleted on the server; the organization deletes its record",
        },
        (ActKind::Task, TaskDeletedOnServer::Unlink) => Action::Unlink {
            reason: "the task was deleted on the server; the organization keeps its record",
        },
        (ActKind::Appointment | ActKind::Contact, _) => Action::Unlink {
            reason: "the item was deleted on the server; appointments and contacts stay in the store",
        },
    };
    vec![action]
}

/// Both sides changed since the last sync.
fn both_changed(f: &ItemFacts, if_match: Option<String>, expected: Option<String>) -> Vec<Action> {
    if f.store.fingerprint.is_some() && f.store.fingerprint == f.server.fingerprint {
        return vec![Action::Nothing {
            reason: "both sides made the same change",
        }];
    }
    if f.store.closed {
        return vec![
            Action::Conflict {
                resolution: Resolution::StoreWins,
                reason: "both sides changed; the record is completed or cancelled, so the server's edit is ignored",
            },
            Action::UpdateServer {
                if_match,
                reason: "the store's version is written to the server",
            },
        ];
    }
    let organizer = (f.kind == ActKind::Appointment).then_some(if f.we_organize {
        Side::Store
    } else {
        Side::Server
    });
    vec![
        Action::Conflict {
            resolution: Resolution::MergeByFieldClass { organizer },
            reason: "both sides changed; merged by field class",
        },
        Action::UpdateStore {
            expected_version: expected,
            reason: "the merge is written to the record",
        },
        Action::UpdateServer {
            if_match,
            reason: "the merge is written to the server",
        },
    ]
}

fn plan_unlinked(f: &ItemFacts) -> Vec<Action> {
    use Action as A;
    let s = &f.server;
    let if_match = || s.version.clone();
    match (f.store.state, s.state) {
        (StoreState::OutOfFilters, _) => vec![A::Nothing {
            reason: "the record is outside the user's filters and not linked",
        }],
        (StoreState::Absent | StoreState::Deleted, ServerState::Changed) if s.tracked => {
            vec![A::CreateInStore {
                reason: "a tracked server item, new or changed",
            }]
        }
        (StoreState::Absent | StoreState::Deleted, ServerState::Changed) => vec![A::Nothing {
            reason: "the server item is not tracked",
        }],
        (StoreState::Absent | StoreState::Deleted, _) => vec![A::Nothing {
            reason: "no record and no new server item",
        }],
        (StoreState::Unchanged, ServerState::Changed) if !s.tracked => vec![A::Nothing {
            reason: "the server item is not tracked",
        }],
        (StoreState::Unchanged, ServerState::Changed) if f.store.closed => vec![A::Nothing {
            reason: "the record is completed or cancelled; the server's edit is ignored",
        }],
        (StoreState::Unchanged, ServerState::Changed) => vec![
            A::Link {
                reason: "a tracked server item claims the record",
            },
            A::UpdateStore {
                expected_version: f.store.version.clone(),
                reason: "the server item changed",
            },
        ],
        (StoreState::Unchanged, _) => vec![A::Nothing {
            reason: "the record is not linked and did not change; it is pushed when it changes",
        }],
        (StoreState::Changed, ServerState::Absent | ServerState::Deleted) => {
            vec![A::CreateOnServer {
                reason: "the record matches the user's filters",
            }]
        }
        (StoreState::Changed, ServerState::Unchanged) => vec![
            A::Link {
                reason: "the server item claims the record",
            },
            A::UpdateServer {
                if_match: if_match(),
                reason: "the record changed",
            },
        ],
        (StoreState::Changed, ServerState::Changed) => {
            let mut plan = vec![A::Link {
                reason: "the server item claims the record",
            }];
            plan.extend(both_changed(f, if_match(), f.store.version.clone()));
            plan
        }
    }
}

#[cfg(test)]
mod tests;
