//! Executes the planner's actions for one kind of one mailbox: reads both sides,
//! pairs them into items, plans each ([`plan_item`]) and runs its actions with
//! version-guarded writes, then updates the mapping row and the decision trail.
//!
//! A server write that loses a race (412) reads that item again and plans it once
//! more in the same run; a second loss, or a record that moved meanwhile, leaves
//! the item for the next run (its link keeps the last error, and the collection's
//! sync token stays where it was, so the server's change is read again).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use mailbridge_domain::act::fingerprint::{Fingerprint, fingerprint};
use mailbridge_domain::act::merge::{MergePolicy, Side, merge};
use mailbridge_domain::act::model::{ActItem, ActKind};
use mailbridge_domain::act::planner::{
    Action, ItemFacts, Resolution, Seen, ServerSide, ServerState, StoreSide, StoreState, plan_item,
    server_state, store_state,
};
use mailbridge_domain::act::records::ActRecord;
use mailbridge_domain::act::{OrgSettings, RecordFacts, SyncFilters, matches};
use mailbridge_domain::error_model::{ErrorScope, SyncError};
use mailbridge_store::{ActLink, ActLinkWrite, NewActDecision, StoreError, VersionedWrite};
use serde_json::json;

use super::dav_map::tracked_by_category;
use super::server::{ActServer, ServerCollection, ServerItem, WriteError};
use super::tz::ChronoTz;
use crate::Engine;
use crate::context::{MailboxContext, store_error};
use crate::metrics::{ItemOutcome, Workload};

/// What a run did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActReport {
    /// Writes done (on either side).
    pub written: usize,
    /// Items left for the next run (a lost race).
    pub skipped: usize,
    /// Items that failed (their error is on the link and in the trail).
    pub failed: usize,
}

/// The server side of an item as the run saw it.
#[derive(Debug, Clone)]
enum Remote {
    /// Linked and not reported changed: the link's version and fingerprint stand.
    Unchanged,
    Present(Box<ServerItem>, Box<ActItem>),
    Deleted,
    /// No server item (an unlinked record).
    None,
}

/// One item to plan: its link, its record and what the server said.
#[derive(Debug, Clone)]
struct Work {
    link: Option<ActLink>,
    record: Option<ActRecord>,
    regarding_owned: bool,
    remote: Remote,
}

/// How an item's execution ended.
enum Ended {
    Done,
    /// A server write lost a race: plan again from the item at `href`.
    Stale {
        href: String,
    },
    Skipped(String),
    Failed(String),
}

/// The run of one mailbox's ACT sync, shared by its kinds.
pub struct Executor<'a, S: ActServer> {
    pub engine: &'a Engine,
    pub ctx: &'a MailboxContext,
    pub server: &'a S,
    pub user_id: &'a str,
    pub filters: &'a SyncFilters,
    pub settings: OrgSettings,
    /// Unlinked records updated after this are new to the sync (`None`: all are).
    pub since: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    pub report: ActReport,
    pub decisions: Vec<NewActDecision>,
}

fn updated_at(r: &ActRecord) -> DateTime<Utc> {
    match r {
        ActRecord::Appointment(a) => a.updated_at,
        ActRecord::Task(t) => t.updated_at,
        ActRecord::Contact(c) => c.updated_at,
    }
}

fn organizer_email(item: &ActItem) -> Option<&str> {
    match item {
        ActItem::Appointment(a) => a.organizer.as_ref().map(|p| p.email.as_str()),
        _ => None,
    }
}

impl<'a, S: ActServer> Executor<'a, S> {
    fn org(&self) -> &'a str {
        &self.ctx.mailbox.org_id
    }

    fn mailbox(&self) -> &'a str {
        &self.ctx.mailbox.id
    }

    /// Synchronizes one collection's kind; the decisions stay in `self.decisions`.
    ///
    /// # Errors
    /// Mailbox-wide failures (the server's, the store's); item failures are recorded.
    pub async fn sync_kind(&mut self, c: &ServerCollection) -> Result<(), SyncError> {
        let store = &self.engine.store;
        let (org, mailbox, kind) = (self.org(), self.mailbox(), c.kind);
        let token = store
            .act_sync_token(org, mailbox, kind, &c.href)
            .await
            .map_err(store_error)?;
        let changes = self.server.changes(c, token.as_deref()).await?;
        let all_links = store
            .act_links(org, mailbox, kind)
            .await
            .map_err(store_error)?;
        let linked_records: HashSet<String> =
            all_links.iter().map(|l| l.record_id.clone()).collect();
        let links: Vec<ActLink> = all_links
            .into_iter()
            .filter(|l| l.collection_href == c.href)
            .collect();
        let by_href: HashMap<&str, &ActLink> =
            links.iter().map(|l| (l.server_href.as_str(), l)).collect();

        // Fetch what changed, unless it is the version this mailbox last wrote or
        // read; and every linked item whose last write failed.
        let mut to_fetch: Vec<String> = changes
            .changed
            .iter()
            .filter(|(href, version)| {
                by_href.get(href.as_str()).is_none_or(|l| {
                    l.server_etag.as_deref() != Some(version.as_str()) || l.last_error.is_some()
                })
            })
            .map(|(href, _)| href.clone())
            .collect();
        for l in &links {
            if l.last_error.is_some()
                && !to_fetch.contains(&l.server_href)
                && !changes.deleted.contains(&l.server_href)
            {
                to_fetch.push(l.server_href.clone());
            }
        }
        let fetched = if to_fetch.is_empty() {
            Default::default()
        } else {
            self.server.fetch(c, &to_fetch).await?
        };
        let mut remote: HashMap<String, Remote> = HashMap::new();
        let mut unreadable: Vec<(ServerItem, String)> = Vec::new();
        for item in fetched.items {
            match item.item.clone() {
                Ok(parsed) => {
                    remote.insert(
                        item.href.clone(),
                        Remote::Present(Box::new(item), Box::new(parsed)),
                    );
                }
                Err(why) => unreadable.push((item, why)),
            }
        }
        for href in fetched.missing.iter().chain(&changes.deleted) {
            remote.insert(href.clone(), Remote::Deleted);
        }
        if changes.full {
            let listed: HashSet<&str> = changes.changed.iter().map(|(h, _)| h.as_str()).collect();
            for l in &links {
                if !listed.contains(l.server_href.as_str()) {
                    remote.insert(l.server_href.clone(), Remote::Deleted);
                }
            }
        }

        let candidates = store
            .act_records_for_owner(org, self.user_id, kind)
            .await
            .map_err(store_error)?;
        let mut records: HashMap<String, (ActRecord, RecordFacts)> = candidates
            .into_iter()
            .map(|c| (c.record.id().to_owned(), (c.record, c.facts)))
            .collect();

        let mut work: Vec<Work> = Vec::new();
        let mut handled: HashSet<String> = HashSet::new();
        for l in &links {
            let record = match records.remove(&l.record_id) {
                Some(r) => Some(r),
                None => store
                    .act_record(org, kind, &l.record_id)
                    .await
                    .map_err(store_error)?
                    .map(|r| {
                        let facts = r.facts(self.user_id, false, true);
                        (r, facts)
                    }),
            };
            handled.insert(l.record_id.clone());
            work.push(Work {
                link: Some(l.clone()),
                regarding_owned: record
                    .as_ref()
                    .is_some_and(|(_, f)| f.regarding_owned_by_user),
                record: record.map(|(r, _)| r),
                remote: remote.remove(&l.server_href).unwrap_or(Remote::Unchanged),
            });
        }
        // New or changed server items without a link: paired with the record they
        // claim by UID (the record's stored UID, or the one mailbridge gives it).
        let uids: HashMap<String, String> = records
            .iter()
            .filter(|(id, _)| !linked_records.contains(*id))
            .map(|(id, (r, _))| (r.uid(), id.clone()))
            .collect();
        let mut unlinked: Vec<(String, Remote)> = remote.into_iter().collect();
        unlinked.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, r) in unlinked {
            let Remote::Present(_, item) = &r else {
                continue;
            };
            let mut record = None;
            if let Some(id) = uids.get(item.uid())
                && !handled.contains(id)
            {
                record = records.remove(id);
            } else if let Some(found) = store
                .act_record_by_uid(org, kind, item.uid())
                .await
                .map_err(store_error)?
                && !linked_records.contains(found.id())
                && !handled.contains(found.id())
            {
                let facts = found.facts(self.user_id, false, false);
                record = Some((found, facts));
            }
            if let Some((r, _)) = &record {
                handled.insert(r.id().to_owned());
            }
            work.push(Work {
                link: None,
                regarding_owned: record
                    .as_ref()
                    .is_some_and(|(_, f)| f.regarding_owned_by_user),
                record: record.map(|(r, _)| r),
                remote: r,
            });
        }
        let mut rest: Vec<(ActRecord, RecordFacts)> = records
            .into_values()
            .filter(|(r, _)| !handled.contains(r.id()) && !linked_records.contains(r.id()))
            .collect();
        rest.sort_by(|a, b| a.0.id().cmp(b.0.id()));
        for (r, f) in rest {
            work.push(Work {
                link: None,
                regarding_owned: f.regarding_owned_by_user,
                record: Some(r),
                remote: Remote::None,
            });
        }

        for (item, why) in unreadable {
            let link = by_href.get(item.href.as_str());
            self.fail_item(
                kind,
                link.map(|l| l.record_id.clone()),
                Some(item.href.clone()),
                "read",
                "the server item cannot be read",
                &why,
            )
            .await?;
        }

        let mut keep_token = false;
        for w in work {
            let skipped_before = self.report.skipped;
            self.sync_item(c, w, true).await?;
            keep_token |= self.report.skipped > skipped_before;
        }
        if !keep_token {
            store
                .set_act_sync_token(org, mailbox, kind, &c.href, changes.token.as_deref())
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    /// Records an item failure: in the trail, on its link, in the metrics.
    async fn fail_item(
        &mut self,
        kind: ActKind,
        record_id: Option<String>,
        href: Option<String>,
        action: &str,
        reason: &str,
        error: &str,
    ) -> Result<(), SyncError> {
        if let Some(id) = &record_id {
            self.engine
                .store
                .record_act_link_error(self.org(), self.mailbox(), kind, id, error)
                .await
                .map_err(store_error)?;
        }
        self.decisions.push(NewActDecision {
            kind,
            record_id,
            server_href: href,
            action: action.to_owned(),
            reason: reason.to_owned(),
            outcome: "failed".to_owned(),
            error: Some(error.to_owned()),
        });
        self.report.failed += 1;
        self.engine
            .metrics
            .items(Workload::Act, ItemOutcome::Failed, 1);
        Ok(())
    }

    /// Plans and executes one item; a lost server race reads the item again and
    /// plans it once more when `retry`.
    async fn sync_item(
        &mut self,
        c: &ServerCollection,
        w: Work,
        retry: bool,
    ) -> Result<(), SyncError> {
        let ended = self.execute(c, &w, retry).await?;
        let (org, mailbox, kind) = (self.org(), self.mailbox(), c.kind);
        let record_id = w
            .record
            .as_ref()
            .map(|r| r.id().to_owned())
            .or_else(|| w.link.as_ref().map(|l| l.record_id.clone()));
        match ended {
            Ended::Done => Ok(()),
            Ended::Stale { href } => {
                let store = &self.engine.store;
                let fetched = self.server.fetch(c, std::slice::from_ref(&href)).await?;
                let remote = match fetched.items.into_iter().next() {
                    Some(item) => match item.item.clone() {
                        Ok(parsed) => Remote::Present(Box::new(item), Box::new(parsed)),
                        Err(why) => {
                            return self
                                .fail_item(
                                    kind,
                                    record_id,
                                    Some(href),
                                    "read",
                                    "the server item cannot be read",
                                    &why,
                                )
                                .await;
                        }
                    },
                    None => Remote::Deleted,
                };
                let record = match &record_id {
                    Some(id) => store.act_record(org, kind, id).await.map_err(store_error)?,
                    None => None,
                };
                let link = match &record_id {
                    Some(id) => store
                        .act_link(org, mailbox, kind, id)
                        .await
                        .map_err(store_error)?,
                    None => None,
                };
                let again = Work {
                    link,
                    record,
                    regarding_owned: w.regarding_owned,
                    remote,
                };
                Box::pin(self.sync_item(c, again, false)).await
            }
            Ended::Skipped(why) => {
                if let Some(id) = &record_id {
                    self.engine
                        .store
                        .record_act_link_error(org, mailbox, kind, id, &why)
                        .await
                        .map_err(store_error)?;
                }
                self.report.skipped += 1;
                self.engine
                    .metrics
                    .items(Workload::Act, ItemOutcome::Skipped, 1);
                Ok(())
            }
            Ended::Failed(why) => {
                if let Some(id) = &record_id {
                    self.engine
                        .store
                        .record_act_link_error(org, mailbox, kind, id, &why)
                        .await
                        .map_err(store_error)?;
                }
                self.report.failed += 1;
                self.engine
                    .metrics
                    .items(Workload::Act, ItemOutcome::Failed, 1);
                Ok(())
            }
        }
    }

    /// The planner's facts about an item, with both sides' items.
    fn facts(
        &self,
        kind: ActKind,
        w: &Work,
        tracked_collection: bool,
    ) -> Result<(ItemFacts, Option<ActItem>), String> {
        let link = w.link.as_ref().map(ActLink::planner_link);
        let mut record_item = None;
        let (seen, matches_filters, version, closed) = match &w.record {
            None => (Seen::Missing, false, None, false),
            Some(r) if r.is_deleted() => (
                Seen::Deleted,
                false,
                Some(r.version().to_string()),
                r.is_closed(),
            ),
            Some(r) => {
                let item = r.to_item(&ChronoTz).map_err(|e| e.to_string())?;
                let fp = fingerprint(&item);
                let facts = r.facts(self.user_id, w.regarding_owned, w.link.is_some());
                let in_filters = matches(self.filters, &facts, self.now);
                let new = self.since.is_none_or(|s| updated_at(r) > s);
                record_item = Some(item);
                (
                    Seen::Present {
                        fingerprint: fp,
                        new_since_last_run: new,
                    },
                    in_filters,
                    Some(r.version().to_string()),
                    r.is_closed(),
                )
            }
        };
        let store_fp = match &seen {
            Seen::Present { fingerprint, .. } => Some(fingerprint.clone()),
            _ => None,
        };
        let store = StoreSide {
            state: store_state(link.as_ref(), &seen, matches_filters),
            version,
            fingerprint: store_fp,
            closed,
        };
        let (server_seen, server_version, tracked) = match &w.remote {
            Remote::Unchanged => match &w.link {
                Some(l) => (
                    Seen::Present {
                        fingerprint: Fingerprint(l.server_fingerprint.clone()),
                        new_since_last_run: false,
                    },
                    l.server_etag.clone(),
                    tracked_collection,
                ),
                None => (Seen::Missing, None, false),
            },
            Remote::Present(s, item) => (
                Seen::Present {
                    fingerprint: fingerprint(item),
                    new_since_last_run: true,
                },
                Some(s.version.clone()),
                tracked_collection || tracked_by_category(item),
            ),
            Remote::Deleted => (Seen::Deleted, None, false),
            Remote::None => (Seen::Missing, None, false),
        };
        let server = ServerSide {
            state: server_state(link.as_ref(), &server_seen),
            version: server_version,
            fingerprint: match &server_seen {
                Seen::Present { fingerprint, .. } => Some(fingerprint.clone()),
                _ => None,
            },
            tracked,
        };
        let organizer = record_item
            .as_ref()
            .and_then(organizer_email)
            .or(match &w.remote {
                Remote::Present(_, item) => organizer_email(item),
                _ => None,
            });
        let address = self.ctx.mailbox.email_address.as_deref().unwrap_or("");
        let we_organize = organizer.is_none_or(|o| o.eq_ignore_ascii_case(address));
        Ok((
            ItemFacts {
                kind,
                link,
                store,
                server,
                we_organize,
            },
            record_item,
        ))
    }

    /// Plans one item and runs its actions in order.
    async fn execute(
        &mut self,
        c: &ServerCollection,
        w: &Work,
        retry: bool,
    ) -> Result<Ended, SyncError> {
        let kind = c.kind;
        let store = &self.engine.store;
        let (org, mailbox) = (self.org(), self.mailbox());
        let (facts, record_item) = match self.facts(kind, w, c.tracked) {
            Ok(f) => f,
            Err(why) => {
                let record_id = w.record.as_ref().map(|r| r.id().to_owned());
                self.fail_item(
                    kind,
                    record_id,
                    None,
                    "read",
                    "the record cannot be read",
                    &why,
                )
                .await?;
                return Ok(Ended::Done);
            }
        };
        let plan = plan_item(&facts, &self.settings);

        // What the item looks like as the run goes.
        let mut record = w.record.clone();
        let mut record_item = record_item;
        let (mut href, mut server_version, mut server_item) = match (&w.remote, &w.link) {
            (Remote::Present(s, item), _) => (
                Some(s.href.clone()),
                Some(s.version.clone()),
                Some(ActItem::clone(item)),
            ),
            (Remote::Unchanged, Some(l)) => (
                Some(l.server_href.clone()),
                l.server_etag.clone(),
                l.snapshot().ok().flatten(),
            ),
            (_, Some(l)) => (Some(l.server_href.clone()), l.server_etag.clone(), None),
            _ => (None, None, None),
        };
        let mut server_fp = facts.server.fingerprint.clone();
        let mut outcome: Option<ActItem> = None;
        let mut unlink = false;
        let mut wrote = false;
        let mut ended = Ended::Done;

        // A `nothing` is worth a line in the trail when something was noticed.
        let noteworthy = facts.store.state == StoreState::Changed
            || facts.server.state == ServerState::Changed
            || (facts.link.is_some()
                && !(facts.store.state == StoreState::Unchanged
                    && facts.server.state == ServerState::Unchanged));
        for action in &plan {
            let mut reason = action.reason().to_owned();
            let mut result: Result<(), (String, &'static str)> = Ok(());
            match action {
                Action::Nothing { .. } if !noteworthy => continue,
                Action::Nothing { .. } | Action::Link { .. } => {}
                Action::Unlink { .. } => unlink = true,
                Action::Conflict { resolution, .. } => {
                    let (Some(mine), Some(theirs)) = (&record_item, &server_item) else {
                        continue;
                    };
                    let mut theirs = theirs.clone();
                    self.server.keep_unmapped(&mut theirs, mine);
                    let base = w.link.as_ref().and_then(|l| l.snapshot().ok().flatten());
                    let (merged, lost) = resolve(*resolution, base.as_ref(), mine, &theirs);
                    if lost != json!([]) {
                        reason = format!("{reason}; the losing side had: {lost}");
                    }
                    outcome = Some(merged);
                }
                Action::UpdateStore {
                    expected_version, ..
                } => {
                    let (Some(r), Some(theirs)) = (&record, &server_item) else {
                        continue;
                    };
                    let item = match &outcome {
                        Some(o) => o.clone(),
                        None => {
                            let mut t = theirs.clone();
                            if let Some(mine) = &record_item {
                                self.server.keep_unmapped(&mut t, mine);
                            }
                            t
                        }
                    };
                    let expected = expected_version
                        .as_deref()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(r.version());
                    match store
                        .update_record_if_version(org, kind, r.id(), expected, &item, &ChronoTz)
                        .await
                    {
                        Ok(VersionedWrite::Written(new)) => {
                            record_item = new.to_item(&ChronoTz).ok();
                            record = Some(*new);
                            wrote = true;
                        }
                        Ok(VersionedWrite::VersionMoved { .. } | VersionedWrite::Gone) => {
                            result = Err((
                                "the record changed since it was read; it is planned again on the next run".into(),
                                "skipped",
                            ));
                        }
                        Err(e @ (StoreError::Invalid(_) | StoreError::Conflict { .. })) => {
                            result = Err((e.to_string(), "failed"));
                        }
                        Err(e) => return Err(store_error(e)),
                    }
                }
                Action::UpdateServer { if_match, .. } => {
                    let Some(h) = href.clone() else { continue };
                    let Some(item) = outcome.clone().or_else(|| record_item.clone()) else {
                        continue;
                    };
                    let if_match = if_match
                        .clone()
                        .filter(|v| !v.is_empty())
                        .or_else(|| server_version.clone())
                        .unwrap_or_default();
                    match self.server.update(c, &h, &if_match, &item).await {
                        Ok(written) => {
                            let back = self.server.read_back(&item);
                            server_fp = Some(fingerprint(&back));
                            server_item = Some(back);
                            server_version = Some(written.version);
                            wrote = true;
                        }
                        Err(e) => {
                            ended = self.server_write_failed(e, retry, &h)?;
                            self.push_failure(kind, &record, &href, action, &reason, &ended);
                            break;
                        }
                    }
                }
                Action::CreateOnServer { .. } => {
                    let (Some(r), Some(mine)) = (&record, &record_item) else {
                        continue;
                    };
                    match self.server.create(c, mine).await {
                        Ok(written) => {
                            let back = self.server.read_back(mine);
                            server_fp = Some(fingerprint(&back));
                            server_item = Some(back);
                            href = Some(written.href);
                            server_version = Some(written.version);
                            wrote = true;
                            // Keep the UID the item was created with on the record.
                            if let Ok(VersionedWrite::Written(new)) = store
                                .update_record_if_version(
                                    org,
                                    kind,
                                    r.id(),
                                    r.version(),
                                    mine,
                                    &ChronoTz,
                                )
                                .await
                            {
                                record_item = new.to_item(&ChronoTz).ok();
                                record = Some(*new);
                            }
                        }
                        Err(e) => {
                            ended = self.server_write_failed(e, retry, "")?;
                            self.push_failure(kind, &record, &href, action, &reason, &ended);
                            break;
                        }
                    }
                }
                Action::CreateInStore { .. } => {
                    let Some(theirs) = &server_item else { continue };
                    match store
                        .create_record_from_server(org, self.user_id, theirs, &ChronoTz)
                        .await
                    {
                        Ok(new) => {
                            record_item = new.to_item(&ChronoTz).ok();
                            record = Some(new);
                            wrote = true;
                        }
                        Err(e @ (StoreError::Invalid(_) | StoreError::Conflict { .. })) => {
                            result = Err((e.to_string(), "failed"));
                        }
                        Err(e) => return Err(store_error(e)),
                    }
                }
                Action::DeleteOnServer { if_match, .. } => {
                    let Some(h) = href.clone() else { continue };
                    let if_match = if_match
                        .clone()
                        .filter(|v| !v.is_empty())
                        .or_else(|| server_version.clone())
                        .unwrap_or_default();
                    match self.server.delete(&h, &if_match).await {
                        Ok(()) => {
                            unlink = true;
                            wrote = true;
                        }
                        Err(e) => {
                            ended = self.server_write_failed(e, retry, &h)?;
                            self.push_failure(kind, &record, &href, action, &reason, &ended);
                            break;
                        }
                    }
                }
                Action::DeleteInStore {
                    expected_version, ..
                } => {
                    let Some(r) = &record else { continue };
                    let expected = expected_version
                        .as_deref()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(r.version());
                    match store
                        .delete_record_if_version(org, kind, r.id(), expected)
                        .await
                    {
                        Ok(VersionedWrite::Written(_)) => {
                            unlink = true;
                            wrote = true;
                        }
                        Ok(_) => {
                            result = Err((
                                "the record changed since it was read; it is planned again on the next run".into(),
                                "skipped",
                            ));
                        }
                        Err(e) => return Err(store_error(e)),
                    }
                }
            }
            match result {
                Ok(()) => {
                    self.push_decision(kind, &record, &href, action, &reason, "done", None);
                    if !matches!(
                        action,
                        Action::Nothing { .. } | Action::Conflict { .. } | Action::Link { .. }
                    ) {
                        self.report.written += 1;
                        self.engine
                            .metrics
                            .items(Workload::Act, ItemOutcome::Written, 1);
                    }
                }
                Err((why, outcome_name)) => {
                    ended = if outcome_name == "skipped" {
                        Ended::Skipped(why)
                    } else {
                        Ended::Failed(why)
                    };
                    self.push_failure(kind, &record, &href, action, &reason, &ended);
                    break;
                }
            }
        }
        if !matches!(ended, Ended::Done) {
            // A write failed: a partly written item is planned again from fresh facts.
            return Ok(ended);
        }
        let linked_before = w.link.is_some();
        if unlink
            || record.is_none()
            || record.as_ref().is_some_and(ActRecord::is_deleted)
            || href.is_none()
        {
            if let Some(l) = &w.link {
                store
                    .delete_act_link(org, mailbox, kind, &l.record_id)
                    .await
                    .map_err(store_error)?;
            }
            return Ok(Ended::Done);
        }
        // Linked now (kept, claimed or created): the row takes what the run observed.
        let links_now = linked_before
            || plan.iter().any(|a| {
                matches!(
                    a,
                    Action::Link { .. }
                        | Action::CreateOnServer { .. }
                        | Action::CreateInStore { .. }
                )
            });
        let (Some(r), Some(mine), Some(h), Some(sfp)) = (&record, &record_item, &href, &server_fp)
        else {
            return Ok(Ended::Done);
        };
        if !links_now {
            return Ok(Ended::Done);
        }
        let write = ActLinkWrite {
            kind,
            record_id: r.id().to_owned(),
            collection_href: c.href.clone(),
            server_href: h.clone(),
            server_uid: server_item.as_ref().map(|i| i.uid().to_owned()),
            record_version: r.version(),
            record_fingerprint: fingerprint(mine),
            server_etag: server_version.clone(),
            server_fingerprint: sfp.clone(),
            snapshot: Some(outcome.clone().unwrap_or_else(|| mine.clone())),
        };
        let same = w.link.as_ref().is_some_and(|l| {
            !wrote
                && l.record_id == write.record_id
                && l.server_href == write.server_href
                && l.record_version == write.record_version
                && l.record_fingerprint == write.record_fingerprint.0
                && l.server_etag == write.server_etag
                && l.server_fingerprint == write.server_fingerprint.0
                && l.last_error.is_none()
        });
        if !same {
            store
                .upsert_act_link(org, mailbox, &write)
                .await
                .map_err(store_error)?;
        }
        Ok(Ended::Done)
    }

    /// A failed server write: a lost race plans again (once), an item's failure is
    /// recorded as such, anything else stops the run.
    fn server_write_failed(
        &mut self,
        e: WriteError,
        retry: bool,
        href: &str,
    ) -> Result<Ended, SyncError> {
        Ok(match e {
            WriteError::Stale { href: stale } if retry => Ended::Stale {
                href: if href.is_empty() { stale } else { href.to_owned() },
            },
            WriteError::Stale { .. } => Ended::Skipped(
                "the server item changed again while it was written; it is planned again on the next run"
                    .to_owned(),
            ),
            WriteError::Failed(e) if e.scope == ErrorScope::Item => Ended::Failed(match &e.fix {
                Some(fix) => format!("{} ({fix})", e.message),
                None => e.message,
            }),
            WriteError::Failed(e) => return Err(e),
        })
    }

    /// The trail's line for an action that did not complete.
    fn push_failure(
        &mut self,
        kind: ActKind,
        record: &Option<ActRecord>,
        href: &Option<String>,
        action: &Action,
        reason: &str,
        ended: &Ended,
    ) {
        let (outcome, error) = match ended {
            Ended::Done => return,
            Ended::Stale { .. } => ("skipped", STALE.to_owned()),
            Ended::Skipped(why) => ("skipped", why.clone()),
            Ended::Failed(why) => ("failed", why.clone()),
        };
        self.push_decision(kind, record, href, action, reason, outcome, Some(&error));
    }

    #[allow(clippy::too_many_arguments)]
    fn push_decision(
        &mut self,
        kind: ActKind,
        record: &Option<ActRecord>,
        href: &Option<String>,
        action: &Action,
        reason: &str,
        outcome: &str,
        error: Option<&str>,
    ) {
        self.decisions.push(NewActDecision {
            kind,
            record_id: record.as_ref().map(|r| r.id().to_owned()),
            server_href: href.clone(),
            action: action.label(),
            reason: reason.to_owned(),
            outcome: outcome.to_owned(),
            error: error.map(str::to_owned),
        });
    }
}

/// The error a lost race is recorded with before the item is planned again.
const STALE: &str =
    "the server item changed since it was read (HTTP 412); it is read again and planned anew";

/// Settles a conflict: the item both sides get, and what the losing side had.
fn resolve(
    resolution: Resolution,
    base: Option<&ActItem>,
    store: &ActItem,
    server: &ActItem,
) -> (ActItem, serde_json::Value) {
    let organizer = match resolution {
        Resolution::StoreWins => {
            return (
                store.clone(),
                json!([{ "side": "server", "value": server }]),
            );
        }
        Resolution::MergeByFieldClass { organizer } => organizer.unwrap_or(Side::Store),
    };
    let policy = MergePolicy { organizer };
    let lost = |l: &[mailbridge_domain::act::merge::Lost]| {
        serde_json::to_value(l).unwrap_or_else(|_| json!([]))
    };
    match (store, server) {
        (ActItem::Appointment(s), ActItem::Appointment(v)) => {
            let b = match base {
                Some(ActItem::Appointment(b)) => Some(b),
                _ => None,
            };
            let out = merge(b, s, v, &policy);
            (ActItem::Appointment(out.merged), lost(&out.lost))
        }
        (ActItem::Task(s), ActItem::Task(v)) => {
            let b = match base {
                Some(ActItem::Task(b)) => Some(b),
                _ => None,
            };
            let out = merge(b, s, v, &policy);
            (ActItem::Task(out.merged), lost(&out.lost))
        }
        (ActItem::Contact(s), ActItem::Contact(v)) => {
            let b = match base {
                Some(ActItem::Contact(b)) => Some(b),
                _ => None,
            };
            let out = merge(b, s, v, &policy);
            (ActItem::Contact(out.merged), lost(&out.lost))
        }
        _ => (
            store.clone(),
            json!([{ "side": "server", "value": server }]),
        ),
    }
}
