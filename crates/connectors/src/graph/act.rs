//! Appointments, contacts and To Do tasks of one Exchange Online mailbox over
//! Microsoft Graph, as the domain's [`Appointment`], [`Contact`] and [`Task`]:
//! delta rounds, reads, and writes that name the version they expect.
//!
//! What Graph offers, and what is used (each from Microsoft's Graph documentation):
//! - **Calendar changes**: `GET /users/{id}/calendarView/delta?startDateTime&endDateTime`.
//!   v1.0 tracks changes of a calendar *view* only (the unbounded
//!   `/calendars/{id}/events/delta` is beta), so the default calendar is read
//!   through a window (by default 90 days back, 2 years ahead; [`CalendarWindow`]).
//!   The view holds single events and the *instances* of series; an instance names
//!   its `seriesMasterId`, and the series is then read whole: the master (its
//!   `patternedRecurrence` as an `RRULE`, see [`recurrence`]) and its instances
//!   (`/events/{id}/instances`), where `type: exception` are the modified
//!   occurrences and the dates the pattern gives but no instance has are the
//!   cancelled ones (`EXDATE`). (`exceptionOccurrences`/`cancelledOccurrences` are
//!   beta only.) Writing a series writes the master, then deletes the occurrences
//!   of its `EXDATE`s and patches those of its exceptions; a deleted occurrence
//!   cannot be restored through Graph.
//! - **Contacts**: `GET /users/{id}/contactFolders/{id}/contacts/delta` on the
//!   default folder (the well-known name `contacts`); CRUD on `/contacts/{id}`.
//! - **Tasks**: To Do (`/users/{id}/todo/lists`, application permission
//!   `Tasks.ReadWrite.All`): a list found or created by display name,
//!   `GET /todo/lists/{id}/tasks/delta`, CRUD on its tasks.
//! - **Versions**: every item carries `@odata.etag` (`W/"<changeKey>"`); updates and
//!   deletes send it as `If-Match`, and a stale one is `412 Precondition Failed`
//!   ([`GraphActError::PreconditionFailed`]): the engine reads again and re-plans.
//!   Throttled writes are retried after their `Retry-After` by the client, as
//!   every request is.
//! - **Time zones**: reads ask `Prefer: outlook.timezone="<mailbox zone>"` (an IANA
//!   id, UTC by default: [`GraphAct::with_time_zone`]) and
//!   `outlook.body-content-type="text"`; writes send IANA ids, which Graph accepts.
//!   Windows zone names Graph answers are mapped with a table of the common ones
//!   ([`zones::WINDOWS_ZONES`]); IANA ids pass through; anything else is an item
//!   error. Without a time zone database, times are kept in the zone Graph answers
//!   in: set the mailbox's zone to the user's so that wall-clock times stay theirs.
//! - **The organization claim** ("sync items with this organization only"): a
//!   single-value extended property (`String {GUID} Name MailbridgeActClaim`,
//!   [`CLAIM_PROPERTY_ID`]) on the mailbox's default calendar, read with
//!   `$expand=singleValueExtendedProperties($filter=id eq '...')` and written with a
//!   PATCH of the calendar. It needs only `Calendars.ReadWrite`, which ACT has
//!   anyway; an open extension on the user would need `User.ReadWrite.All` on the
//!   whole directory. The value is `org id;claim time` (RFC 3339).
//!
//! What the domain has and Graph does not keep is documented where it is mapped
//! (`events`, `contacts`, `tasks`).

use chrono::{DateTime, NaiveDate, Utc};
use mailbridge_domain::act::model::TimeZoneId;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Body, GraphClient, Request, segment};
use super::errors::{Failed, classify, is_resync, parse_error_body};
use crate::errors::{TRANSIENT, error};

mod contacts;
mod events;
pub mod recurrence;
mod tasks;
pub mod zones;

pub use tasks::TodoList;

/// The id of the single-value extended property that holds the organization claim
/// on the mailbox's default calendar.
pub const CLAIM_PROPERTY_ID: &str =
    "String {6f1d2c84-3b7a-4e59-9a0c-5d8e2f41b7c3} Name MailbridgeActClaim";

/// A failed ACT operation over Graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphActError {
    /// `412 Precondition Failed`: the item changed in the mailbox since the etag
    /// the write named was read.
    #[error("the item {id} changed in the mailbox since it was read")]
    PreconditionFailed { id: String },
    /// Anything else, classified.
    #[error(transparent)]
    Failed(#[from] SyncError),
}

impl GraphActError {
    /// As a classified error: a lost race is transient and concerns the item only.
    pub fn into_sync_error(self) -> SyncError {
        match self {
            GraphActError::PreconditionFailed { id } => error(
                TRANSIENT,
                ErrorScope::Item,
                format!("the item {id} changed in Exchange Online since it was read"),
                "Nothing to do: the item is read again and the change planned anew",
            ),
            GraphActError::Failed(e) => e,
        }
    }
}

/// An item with its Graph id and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub id: String,
    /// `@odata.etag`, to send back as `If-Match`.
    pub etag: String,
    pub item: T,
}

/// One change of a delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActChange<T> {
    /// New or changed (Graph does not say which).
    Upserted(Versioned<T>),
    /// Deleted (or, for the calendar, out of the window).
    Removed { id: String },
    /// Changed, but it cannot be read as the domain's item (an unknown time zone,
    /// say): an item-level error; the rest of the round goes on.
    Unreadable { id: String, error: SyncError },
}

/// A whole delta round of one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActDelta<T> {
    pub changes: Vec<ActChange<T>>,
    /// Where the next round starts: store it as the collection's sync state.
    pub delta_link: String,
    /// The stored state had expired (410 Gone, `syncStateNotFound`), so the
    /// collection was read again from scratch: every item is in `changes`.
    pub restarted: bool,
}

/// The calendar view the calendar's delta rounds follow, relative to the day a
/// round starts from no state (Graph keeps the window in its tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarWindow {
    pub days_back: u32,
    pub days_ahead: u32,
}

impl Default for CalendarWindow {
    fn default() -> CalendarWindow {
        CalendarWindow {
            days_back: 90,
            days_ahead: 730,
        }
    }
}

/// The organization claim on a mailbox: which organization syncs its ACT items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActClaim {
    pub org_id: String,
    pub claimed_at: DateTime<Utc>,
}

impl ActClaim {
    /// `org id;claim time`.
    pub fn to_value(&self) -> String {
        format!(
            "{};{}",
            self.org_id,
            self.claimed_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    /// Reads `org id;claim time`.
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn parse(value: &str) -> Result<ActClaim, String> {
        let (org, at) = value
            .trim()
            .rsplit_once(';')
            .ok_or_else(|| format!("{value:?} is not `org id;claim time`"))?;
        if org.is_empty() {
            return Err(format!("{value:?} names no organization"));
        }
        let claimed_at = DateTime::parse_from_rfc3339(at)
            .map_err(|e| format!("{at:?} is not an RFC 3339 time: {e}"))?
            .with_timezone(&Utc);
        Ok(ActClaim {
            org_id: org.to_owned(),
            claimed_at,
        })
    }
}

/// The appointments, contacts and tasks of one mailbox.
#[derive(Debug, Clone)]
pub struct GraphAct {
    client: GraphClient,
    user: String,
    /// `/users/{user}`, escaped.
    prefix: String,
    /// An IANA id (`UTC` unless set).
    time_zone: String,
    window: CalendarWindow,
}

impl GraphAct {
    /// The ACT items of `user` (an id or principal name, named as for the mail).
    pub fn new(client: &GraphClient, user: &str) -> GraphAct {
        GraphAct {
            client: client.clone(),
            user: user.to_owned(),
            prefix: format!("/users/{}", segment(user)),
            time_zone: "UTC".to_owned(),
            window: CalendarWindow::default(),
        }
    }

    /// Times are read in this zone (the user's; UTC by default).
    #[must_use]
    pub fn with_time_zone(mut self, time_zone: TimeZoneId) -> GraphAct {
        self.time_zone = time_zone.as_str().to_owned();
        self
    }

    /// The calendar view of the calendar's delta rounds.
    #[must_use]
    pub fn with_calendar_window(mut self, window: CalendarWindow) -> GraphAct {
        self.window = window;
        self
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn time_zone(&self) -> &str {
        &self.time_zone
    }

    pub(crate) fn window(&self) -> CalendarWindow {
        self.window
    }

    fn prefer(&self) -> String {
        format!(
            "outlook.timezone=\"{}\", outlook.body-content-type=\"text\"",
            self.time_zone
        )
    }

    pub(crate) fn unreadable(&self, what: &str, why: &str) -> SyncError {
        error(
            TRANSIENT,
            ErrorScope::Mailbox,
            format!(
                "Microsoft Graph answered unexpectedly when asked to {what} for the mailbox {}: {why}",
                self.user
            ),
            "It is retried; report this if it persists",
        )
    }

    /// An item the domain cannot take or Graph cannot hold: this item only.
    pub(crate) fn item_error(&self, what: &str, why: &str) -> SyncError {
        error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!("cannot {what} in the mailbox {}: {why}", self.user),
            "Change the item so that Exchange can hold it; the other items go on",
        )
    }

    /// One request; `if_match` makes it conditional (see the module docs). The JSON
    /// answer (`Null` for none).
    ///
    /// # Errors
    /// [`GraphActError::PreconditionFailed`] for 412 (`id` names the item),
    /// else a classified error.
    pub(crate) async fn request(
        &self,
        method: Method,
        target: String,
        body: Option<Value>,
        if_match: Option<&str>,
        what: &str,
        id: &str,
    ) -> Result<Value, GraphActError> {
        let failed = Failed {
            what,
            mailbox: &self.user,
        };
        let req = Request {
            method,
            target,
            body: body.map_or(Body::None, Body::Json),
            prefer: Some(self.prefer()),
            if_match: if_match.map(str::to_owned),
        };
        let r = self.client.send(&self.user, &req, what).await?;
        let retry_after = r.retry_after();
        let (status, bytes) = (r.status, r.body);
        if status == 412 {
            return Err(GraphActError::PreconditionFailed { id: id.to_owned() });
        }
        if !(200..300).contains(&status) {
            return Err(classify(status, &parse_error_body(&bytes), retry_after, &failed).into());
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| GraphActError::Failed(self.unreadable(what, &e.to_string())))
    }

    /// A plain read.
    pub(crate) async fn get_json(&self, target: String, what: &str) -> Result<Value, SyncError> {
        self.request(Method::GET, target, None, None, what, "")
            .await
            .map_err(GraphActError::into_sync_error)
    }

    /// A plain read; `None` when the item is gone (404 `ErrorItemNotFound`).
    pub(crate) async fn get_optional(
        &self,
        target: String,
        what: &str,
    ) -> Result<Option<Value>, SyncError> {
        let req = Request {
            method: Method::GET,
            target,
            body: Body::None,
            prefer: Some(self.prefer()),
            if_match: None,
        };
        let r = self.client.send(&self.user, &req, what).await?;
        if r.status == 404 && r.error_body().has_code("ErrorItemNotFound") {
            return Ok(None);
        }
        let r = r.check(&Failed {
            what,
            mailbox: &self.user,
        })?;
        serde_json::from_slice(&r.body)
            .map(Some)
            .map_err(|e| self.unreadable(what, &e.to_string()))
    }

    /// Every page of a collection.
    pub(crate) async fn list_all(
        &self,
        first: String,
        what: &str,
    ) -> Result<Vec<Value>, SyncError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        while let Some(target) = next.take() {
            let page = self.get_json(target, what).await?;
            if let Some(items) = page.get("value").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            next = page
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Ok(out)
    }

    /// A whole delta round from `state` (or from `first` with no state), its raw
    /// entries in order; an expired state starts again from `first`, once.
    pub(crate) async fn delta_entries(
        &self,
        first: String,
        state: Option<&str>,
        what: &str,
    ) -> Result<(Vec<Value>, String, bool), SyncError> {
        let mut entries = Vec::new();
        let mut target = state.map_or_else(|| first.clone(), str::to_owned);
        let mut from_state = state.is_some();
        let mut restarted = false;
        loop {
            let req = Request {
                method: Method::GET,
                target: target.clone(),
                body: Body::None,
                prefer: Some(format!(
                    "{}, odata.maxpagesize={}",
                    self.prefer(),
                    self.client.config().delta_page_size
                )),
                if_match: None,
            };
            let r = self.client.send(&self.user, &req, what).await?;
            if !r.is_success() && from_state && is_resync(r.status, &r.error_body()) {
                if restarted {
                    return Err(self.unreadable(what, "the delta state expired again at once"));
                }
                tracing::info!(
                    mailbox = self.user,
                    status = r.status,
                    "{what}: the delta state expired; reading again"
                );
                restarted = true;
                from_state = false;
                entries.clear();
                target = first.clone();
                continue;
            }
            let r = r.check(&Failed {
                what,
                mailbox: &self.user,
            })?;
            let page: Value = serde_json::from_slice(&r.body)
                .map_err(|e| self.unreadable(what, &e.to_string()))?;
            if let Some(items) = page.get("value").and_then(Value::as_array) {
                entries.extend(items.iter().cloned());
            }
            let link = |k: &str| page.get(k).and_then(Value::as_str).map(str::to_owned);
            match (link("@odata.nextLink"), link("@odata.deltaLink")) {
                (Some(next), _) => {
                    target = next;
                    from_state = true;
                }
                (None, Some(delta)) => return Ok((entries, delta, restarted)),
                (None, None) => {
                    return Err(self.unreadable(
                        what,
                        "the delta page has neither @odata.nextLink nor @odata.deltaLink",
                    ));
                }
            }
        }
    }

    /// The default calendar's id.
    async fn calendar_id(&self) -> Result<String, SyncError> {
        let what = "read the default calendar";
        let v = self
            .get_json(format!("{}/calendar?$select=id", self.prefix), what)
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.unreadable(what, "the calendar has no id"))
    }

    /// The organization claim, when one is set.
    ///
    /// # Errors
    /// A classified error; a value that is not a claim is a permanent mailbox
    /// error (someone else wrote the property).
    pub async fn read_claim(&self) -> Result<Option<ActClaim>, SyncError> {
        let id = self.calendar_id().await?;
        let filter = segment(&format!("id eq '{CLAIM_PROPERTY_ID}'"));
        let what = "read the organization claim";
        let v = self
            .get_json(
                format!(
                    "{}/calendars/{}?$expand=singleValueExtendedProperties($filter={filter})",
                    self.prefix,
                    segment(&id)
                ),
                what,
            )
            .await?;
        let value = v
            .get("singleValueExtendedProperties")
            .and_then(Value::as_array)
            .and_then(|props| {
                props.iter().find(|p| {
                    p.get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|i| i.eq_ignore_ascii_case(CLAIM_PROPERTY_ID))
                })
            })
            .and_then(|p| p.get("value"))
            .and_then(Value::as_str);
        match value {
            None | Some("") => Ok(None),
            Some(text) => ActClaim::parse(text).map(Some).map_err(|why| {
                error(
                    ErrorClass::Permanent,
                    ErrorScope::Mailbox,
                    format!(
                        "the organization claim on the calendar of {} cannot be read: {why}",
                        self.user
                    ),
                    "Claim the mailbox again from this organization (it overwrites the value)",
                )
            }),
        }
    }

    /// Writes the organization claim (replacing any other).
    ///
    /// # Errors
    /// A classified error.
    pub async fn write_claim(&self, claim: &ActClaim) -> Result<(), SyncError> {
        let id = self.calendar_id().await?;
        let body = json!({
            "singleValueExtendedProperties": [
                { "id": CLAIM_PROPERTY_ID, "value": claim.to_value() }
            ]
        });
        self.request(
            Method::PATCH,
            format!("{}/calendars/{}", self.prefix, segment(&id)),
            Some(body),
            None,
            "write the organization claim",
            &id,
        )
        .await
        .map_err(GraphActError::into_sync_error)?;
        Ok(())
    }
}

/// `id` and `@odata.etag` of an item.
pub(crate) fn id_and_etag(v: &Value) -> (String, String) {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let etag = match text("@odata.etag") {
        e if e.is_empty() => format!("W/\"{}\"", text("changeKey")),
        e => e,
    };
    (text("id"), etag)
}

/// Whether a delta entry is a removal.
pub(crate) fn is_removed(v: &Value) -> bool {
    v.get("@removed").is_some()
}

/// Today's date (UTC), for windows and horizons.
pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_written_and_read_as_org_and_time() {
        let claim = ActClaim {
            org_id: "org_7f3a".to_owned(),
            claimed_at: "2025-03-01T10:00:00Z".parse().expect("a time"),
        };
        assert_eq!(claim.to_value(), "org_7f3a;2025-03-01T10:00:00Z");
        assert_eq!(ActClaim::parse(&claim.to_value()), Ok(claim));
        let refused = ["", "org", ";2025-03-01T10:00:00Z", "org;yesterday"];
        for v in refused {
            assert!(ActClaim::parse(v).is_err(), "{v:?}");
        }
        assert_eq!(
            ActClaim::parse("a;b;2025-03-01T11:00:00+01:00").map(|c| (c.org_id, c.claimed_at)),
            Ok((
                "a;b".to_owned(),
                "2025-03-01T10:00:00Z".parse().expect("a time")
            ))
        );
    }

    #[test]
    fn lost_races_are_transient_item_errors() {
        let e = GraphActError::PreconditionFailed { id: "x".to_owned() }.into_sync_error();
        assert_eq!((e.class, e.scope), (TRANSIENT, ErrorScope::Item));
    }
}
